/*
 * Small pure helpers shared by guest and host tests: the pvclock scale
 * (xen-abi.md §2.1), a seeded generator, a random cyclic permutation, and the
 * values the self-checking workloads compare against.
 */
#ifndef SMPSIM_PURE_H
#define SMPSIM_PURE_H
#include "types.h"

/* ns = ((delta shifted by shift) * mul) >> 32, with a 128-bit product. */
static inline u64 pvclock_scale_delta(u64 delta, u32 mul, s8 shift)
{
	if (shift < 0)
		delta >>= -shift;
	else
		delta <<= shift;
	return (u64)(((unsigned __int128)delta * mul) >> 32);
}

/* Index of the lowest set bit of a non-zero word. Plain BSF, so that the
 * guests need no BMI1 (gcc's __builtin_ctzl emits TZCNT). */
static inline unsigned ctz64(u64 w)
{
	u64 r;
	__asm__("bsfq %1, %0" : "=r"(r) : "rm"(w) : "cc");
	return (unsigned)r;
}

/* splitmix64: a seeded, deterministic generator. */
static inline u64 splitmix64(u64 *state)
{
	u64 z = (*state += 0x9e3779b97f4a7c15UL);
	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9UL;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebUL;
	return z ^ (z >> 31);
}

/* Uniform-ish value in [0, n) (n > 0); the bias is irrelevant here. */
static inline u64 rand_below(u64 *state, u64 n)
{
	return splitmix64(state) % n;
}

/*
 * Sattolo's algorithm: next[] becomes a single cycle through all n slots.
 * next is written through a stride so it can live in cache-line-sized nodes:
 * slot i's successor is stored at base[i * stride_words].
 */
static inline void sattolo_cycle(u64 *base, u64 n, u64 stride_words, u64 seed)
{
	u64 st = seed;
	for (u64 i = 0; i < n; i++)
		base[i * stride_words] = i;
	for (u64 i = n - 1; i > 0; i--) {
		u64 j = rand_below(&st, i); /* j < i: this makes one cycle */
		u64 t = base[i * stride_words];
		base[i * stride_words] = base[j * stride_words];
		base[j * stride_words] = t;
	}
	/* i -> base[i] is now one n-cycle, so base[i] is i's successor. */
}

/* Value the ring producers send for sequence number seq of stream id. */
static inline u64 ring_value(u64 stream, u64 seq)
{
	u64 st = (stream << 40) ^ seq;
	return splitmix64(&st);
}

#endif
