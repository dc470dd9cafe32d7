/*
 * memcpy: glibc-style SSE2 memcpy and memset (the shapes of glibc's
 * memmove-vec-unaligned-erms and memset-vec-unaligned-erms, SSE2 flavour)
 * over many sizes and alignments, every byte verified.
 *   copy, n < 16: two overlapping GPR moves of 8, 4, 2 or 1 bytes;
 *   16..32, 33..64, 65..128: 2, 4 or 8 unaligned 16-byte loads (movups)
 *   from both ends, then the stores (overlapping in the middle);
 *   > 128: the first 16 and last 64 bytes loaded unaligned, a loop of 4
 *   unaligned loads and 4 aligned stores (movaps) to the 16-aligned
 *   destination, non-temporal stores (movntdq, then sfence) from arg1
 *   bytes up, then the saved head and tail stored.
 *   set: the byte broadcast to an XMM register (movd, punpcklbw,
 *   punpcklwd, pshufd; pxor for 0), the same size classes (GPR stores
 *   below 16, overlapping movups, a movaps / movntdq loop).
 * Cases: every size 0..128 at four (source, destination) misalignments,
 * then 2^k - 1, 2^k, 2^k + 1 and 3 * 2^(k-1) + 5 for 2^k = 256 .. arg0 at
 * two, for copy and for set; cases are dealt round-robin to the VCPUs,
 * each with its own buffers. Check: every destination byte equals the
 * source (or the fill value), the 16 guard bytes on each side are
 * untouched, and the cases run add up to the expected count. Reports
 * bytes copied and set and the cycles VCPU 0 spent in the copies.
 * arg0: largest power-of-two size (default 4096, 256..2^24);
 * arg1: non-temporal threshold in bytes (default 2048).
 */
#include "rt.h"

WORKLOAD("memcpy", 4096, 2048, 0, 0, 0, 0, 0, 0);

typedef char v16 __attribute__((vector_size(16)));

#define GUARD 16
#define GUARD_BYTE 0xa5
#define SMALL_MAX 128

struct job {
	u8 *src, *dst;
	u64 cases, bytes, cycles;
} ALIGNED(CACHELINE);

static struct job jobs[MAX_VCPUS];
static u64 nt_threshold;

static const u8 small_align[4][2] = { { 0, 0 }, { 1, 0 }, { 0, 7 }, { 13, 3 } };
static const u8 large_align[2][2] = { { 0, 0 }, { 5, 11 } };

#define BLOCK(p) (*(char(*)[16])(p))

static inline v16 loadu(const void *p)
{
	v16 r;
	__asm__("movups %1, %0" : "=x"(r) : "m"(BLOCK(p)));
	return r;
}

static inline void storeu(void *p, v16 v)
{
	__asm__("movups %1, %0" : "=m"(BLOCK(p)) : "x"(v));
}

static inline void storea(void *p, v16 v)
{
	__asm__("movaps %1, %0" : "=m"(BLOCK(p)) : "x"(v));
}

static inline void storent(void *p, v16 v)
{
	__asm__("movntdq %1, %0" : "=m"(BLOCK(p)) : "x"(v));
}

static inline void sfence(void)
{
	__asm__ __volatile__("sfence" ::: "memory");
}

static inline u64 ld64(const u8 *p)
{
	u64 v;
	__builtin_memcpy(&v, p, 8);
	return v;
}

static inline void st64(u8 *p, u64 v)
{
	__builtin_memcpy(p, &v, 8);
}

static void copy_small(u8 *d, const u8 *s, u64 n)
{
	if (n >= 8) {
		u64 a = ld64(s), b = ld64(s + n - 8);
		st64(d, a);
		st64(d + n - 8, b);
	} else if (n >= 4) {
		u32 a, b;
		__builtin_memcpy(&a, s, 4);
		__builtin_memcpy(&b, s + n - 4, 4);
		__builtin_memcpy(d, &a, 4);
		__builtin_memcpy(d + n - 4, &b, 4);
	} else if (n >= 2) {
		u16 a, b;
		__builtin_memcpy(&a, s, 2);
		__builtin_memcpy(&b, s + n - 2, 2);
		__builtin_memcpy(d, &a, 2);
		__builtin_memcpy(d + n - 2, &b, 2);
	} else if (n == 1) {
		*d = *s;
	}
}

static void sse_memcpy(u8 *d, const u8 *s, u64 n)
{
	if (n < 16) {
		copy_small(d, s, n);
	} else if (n <= 32) {
		v16 a = loadu(s), b = loadu(s + n - 16);
		storeu(d, a);
		storeu(d + n - 16, b);
	} else if (n <= 64) {
		v16 a = loadu(s), b = loadu(s + 16), c = loadu(s + n - 32), e = loadu(s + n - 16);
		storeu(d, a);
		storeu(d + 16, b);
		storeu(d + n - 32, c);
		storeu(d + n - 16, e);
	} else if (n <= SMALL_MAX) {
		v16 a = loadu(s), b = loadu(s + 16), c = loadu(s + 32), e = loadu(s + 48);
		v16 f = loadu(s + n - 64), g = loadu(s + n - 48), h = loadu(s + n - 32),
		    k = loadu(s + n - 16);
		storeu(d, a);
		storeu(d + 16, b);
		storeu(d + 32, c);
		storeu(d + 48, e);
		storeu(d + n - 64, f);
		storeu(d + n - 48, g);
		storeu(d + n - 32, h);
		storeu(d + n - 16, k);
	} else {
		v16 head = loadu(s);
		v16 t0 = loadu(s + n - 64), t1 = loadu(s + n - 48), t2 = loadu(s + n - 32),
		    t3 = loadu(s + n - 16);
		u8 *end = d + n - 64;
		u8 *p = (u8 *)(((uintptr_t)d + 16) & ~(uintptr_t)15);
		const u8 *q = s + (p - d);
		int nt = n >= nt_threshold;
		for (; p < end; p += 64, q += 64) {
			v16 a = loadu(q), b = loadu(q + 16), c = loadu(q + 32), e = loadu(q + 48);
			if (nt) {
				storent(p, a);
				storent(p + 16, b);
				storent(p + 32, c);
				storent(p + 48, e);
			} else {
				storea(p, a);
				storea(p + 16, b);
				storea(p + 32, c);
				storea(p + 48, e);
			}
		}
		if (nt)
			sfence();
		storeu(end, t0);
		storeu(end + 16, t1);
		storeu(end + 32, t2);
		storeu(end + 48, t3);
		storeu(d, head);
	}
}

static v16 broadcast(u8 c)
{
	v16 v;
	if (c == 0) {
		__asm__("pxor %0, %0" : "=x"(v));
		return v;
	}
	__asm__("movd %k1, %0\n\t"
		"punpcklbw %0, %0\n\t"
		"punpcklwd %0, %0\n\t"
		"pshufd $0, %0, %0"
		: "=&x"(v)
		: "r"((u32)c));
	return v;
}

static void sse_memset(u8 *d, u8 c, u64 n)
{
	if (n < 16) {
		u64 w = 0x0101010101010101UL * c;
		if (n >= 8) {
			st64(d, w);
			st64(d + n - 8, w);
		} else if (n >= 4) {
			__builtin_memcpy(d, &w, 4);
			__builtin_memcpy(d + n - 4, &w, 4);
		} else if (n >= 2) {
			__builtin_memcpy(d, &w, 2);
			__builtin_memcpy(d + n - 2, &w, 2);
		} else if (n == 1) {
			*d = c;
		}
		return;
	}
	v16 v = broadcast(c);
	if (n <= 32) {
		storeu(d, v);
		storeu(d + n - 16, v);
	} else if (n <= 64) {
		storeu(d, v);
		storeu(d + 16, v);
		storeu(d + n - 32, v);
		storeu(d + n - 16, v);
	} else {
		storeu(d, v);
		u8 *end = d + n - 64;
		u8 *p = (u8 *)(((uintptr_t)d + 16) & ~(uintptr_t)15);
		int nt = n >= nt_threshold;
		for (; p < end; p += 64) {
			if (nt) {
				storent(p, v);
				storent(p + 16, v);
				storent(p + 32, v);
				storent(p + 48, v);
			} else {
				storea(p, v);
				storea(p + 16, v);
				storea(p + 32, v);
				storea(p + 48, v);
			}
		}
		if (nt)
			sfence();
		storeu(end, v);
		storeu(end + 16, v);
		storeu(end + 32, v);
		storeu(end + 48, v);
	}
}

/* The sizes past SMALL_MAX, in order; returns how many (fills `out`). */
static u64 large_sizes(u64 *out)
{
	u64 k = 0;
	for (u64 p = 256; p <= arg(0); p *= 2) {
		u64 s[4] = { p - 1, p, p + 1, 3 * (p / 2) + 5 };
		for (int i = 0; i < 4; i++)
			if (out)
				out[k++] = s[i];
			else
				k++;
	}
	return k;
}

static u64 total_cases(void)
{
	return 2 * ((SMALL_MAX + 1) * ARRAY_SIZE(small_align) +
		    large_sizes(NULL) * ARRAY_SIZE(large_align));
}

void workload_init(void)
{
	u64 max = arg(0);
	if (max < 256 || max > (1UL << 24) || (max & (max - 1)))
		guest_fail("arg0 %lu: a power of two in 256..2^24", max);
	nt_threshold = arg(1);
	u64 bytes = 2 * max + 64 + 2 * GUARD;
	for (unsigned i = 0; i < nr_cpus; i++) {
		struct job *j = &jobs[i];
		j->src = heap_alloc_raw(bytes, PAGE_SIZE);
		j->dst = heap_alloc_raw(bytes, PAGE_SIZE);
		u64 seed = 0x6d656d637079UL + i;
		for (u64 b = 0; b < bytes; b += 8) {
			u64 r = splitmix64(&seed);
			__builtin_memcpy(j->src + b, &r, 8);
		}
	}
}

/* Runs one case (copy if `set` < 0, else memset with `set`) and checks it. */
static void one_case(struct job *j, u64 n, u64 sa, u64 da, int set)
{
	u8 *d = j->dst + GUARD + da;
	const u8 *s = j->src + sa;
	memset(d - GUARD, GUARD_BYTE, n + 2 * GUARD);
	u64 t0 = rdtsc();
	if (set < 0)
		sse_memcpy(d, s, n);
	else
		sse_memset(d, (u8)set, n);
	j->cycles += rdtsc() - t0;
	for (u64 i = 0; i < GUARD; i++)
		if (d[-1 - (s64)i] != GUARD_BYTE || d[n + i] != GUARD_BYTE)
			guest_fail("%s of %lu bytes (src +%lu, dst +%lu) wrote a guard byte",
				   set < 0 ? "copy" : "set", n, sa, da);
	for (u64 i = 0; i < n; i++) {
		u8 want = set < 0 ? s[i] : (u8)set;
		if (d[i] != want)
			guest_fail("%s of %lu bytes (src +%lu, dst +%lu): byte %lu is %02x, not %02x",
				   set < 0 ? "copy" : "set", n, sa, da, i, d[i], want);
	}
	j->cases++;
	j->bytes += n;
}

void workload_run(struct cpu *cp)
{
	struct job *j = &jobs[cp->id];
	u64 large[4 * 24];
	u64 nl = large_sizes(large), idx = 0;
	for (int op = 0; op < 2; op++) {
		for (u64 n = 0; n <= SMALL_MAX; n++)
			for (u64 a = 0; a < ARRAY_SIZE(small_align); a++, idx++)
				if (idx % nr_cpus == cp->id)
					one_case(j, n, small_align[a][0], small_align[a][1],
						 op ? (int)((n * 7 + a) & 0xff) : -1);
		for (u64 l = 0; l < nl; l++)
			for (u64 a = 0; a < ARRAY_SIZE(large_align); a++, idx++)
				if (idx % nr_cpus == cp->id)
					one_case(j, large[l], large_align[a][0], large_align[a][1],
						 op ? (int)(l % 3 == 0 ? 0 : l * 37 & 0xff) : -1);
	}
}

void workload_check(void)
{
	u64 cases = 0, bytes = 0;
	for (unsigned i = 0; i < nr_cpus; i++) {
		cases += jobs[i].cases;
		bytes += jobs[i].bytes;
	}
	if (cases != total_cases())
		guest_fail("%lu cases ran, expected %lu", cases, total_cases());
	printf("memcpy: %lu cases up to %lu bytes, %lu bytes copied and set, %lu VCPUs, "
	       "VCPU 0 %lu cycles in the copies\n",
	       cases, arg(0) + arg(0) / 2 + 5, bytes, (u64)nr_cpus, jobs[0].cycles);
}
