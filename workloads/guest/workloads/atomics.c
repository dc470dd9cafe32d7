/*
 * atomics: every width of compare-and-exchange, locked and not, with the
 * compare equal and not equal.
 *
 * Shared part: every VCPU adds 1 to a counter of each width `iters` times
 * through a lock cmpxchg retry loop (1, 2, 4 and 8 bytes), through lock
 * cmpxchg8b on a 64-bit pair (low half +1, high half +3) and through lock
 * cmpxchg16b on a 128-bit pair (low +1, high +5). A torn or lost update
 * shows in the totals.
 * Private part: on its own line, each VCPU runs unlocked cmpxchg8b and
 * cmpxchg16b with a compare that fails (memory unchanged, edx:eax /
 * rdx:rax loaded with it, ZF clear) and one that succeeds (memory
 * replaced, ZF set), and an unlocked cmpxchg of each width both ways.
 * Check: every counter == VCPUs * iters (mod its width), every private
 * result as x86 defines it.
 * arg0: increments per VCPU per width (default 100).
 */
#include "rt.h"

WORKLOAD("atomics", 100, 0, 0, 0, 0, 0, 0, 0);

struct pair8 {
	u32 lo, hi;
};
struct pair16 {
	u64 lo, hi;
} ALIGNED(16);

static volatile u8 c1 ALIGNED(CACHELINE);
static volatile u16 c2 ALIGNED(CACHELINE);
static volatile u32 c4 ALIGNED(CACHELINE);
static volatile u64 c8 ALIGNED(CACHELINE);
static volatile struct pair8 p8 ALIGNED(CACHELINE);
static volatile struct pair16 p16 ALIGNED(CACHELINE);
static struct pair16 *priv; /* per VCPU, one line each */

#define CAS(suffix, type)                                                        \
	static inline int cas_##suffix(volatile type *p, type *old, type new)    \
	{                                                                        \
		unsigned char ok;                                                \
		__asm__ __volatile__("lock cmpxchg %3, %1; sete %0"              \
				     : "=q"(ok), "+m"(*p), "+a"(*old)            \
				     : "q"(new)                                  \
				     : "memory", "cc");                          \
		return ok;                                                       \
	}                                                                        \
	static inline int xchg_plain_##suffix(volatile type *p, type *old, type new) \
	{                                                                        \
		unsigned char ok;                                                \
		__asm__ __volatile__("cmpxchg %3, %1; sete %0"                   \
				     : "=q"(ok), "+m"(*p), "+a"(*old)            \
				     : "q"(new)                                  \
				     : "memory", "cc");                          \
		return ok;                                                       \
	}
CAS(1, u8)
CAS(2, u16)
CAS(4, u32)
CAS(8, u64)

/* cmpxchg8b: compares edx:eax with *p; on success stores ecx:ebx. */
static inline int cas8b(volatile struct pair8 *p, struct pair8 *old, struct pair8 new, int locked)
{
	unsigned char ok;
	if (locked)
		__asm__ __volatile__("lock cmpxchg8b %1; sete %0"
				     : "=q"(ok), "+m"(*p), "+a"(old->lo), "+d"(old->hi)
				     : "b"(new.lo), "c"(new.hi)
				     : "memory", "cc");
	else
		__asm__ __volatile__("cmpxchg8b %1; sete %0"
				     : "=q"(ok), "+m"(*p), "+a"(old->lo), "+d"(old->hi)
				     : "b"(new.lo), "c"(new.hi)
				     : "memory", "cc");
	return ok;
}

/* cmpxchg16b: compares rdx:rax with *p; on success stores rcx:rbx. */
static inline int cas16b(volatile struct pair16 *p, struct pair16 *old, struct pair16 new, int locked)
{
	unsigned char ok;
	if (locked)
		__asm__ __volatile__("lock cmpxchg16b %1; sete %0"
				     : "=q"(ok), "+m"(*p), "+a"(old->lo), "+d"(old->hi)
				     : "b"(new.lo), "c"(new.hi)
				     : "memory", "cc");
	else
		__asm__ __volatile__("cmpxchg16b %1; sete %0"
				     : "=q"(ok), "+m"(*p), "+a"(old->lo), "+d"(old->hi)
				     : "b"(new.lo), "c"(new.hi)
				     : "memory", "cc");
	return ok;
}

void workload_init(void)
{
	priv = heap_alloc(nr_cpus * CACHELINE, CACHELINE);
}

#define ADD_ONE(suffix, type, ctr)                                  \
	do {                                                        \
		type old = ctr;                                     \
		while (!cas_##suffix(&ctr, &old, (type)(old + 1)))  \
			cpu_relax();                                \
	} while (0)

static void shared_part(u64 iters)
{
	for (u64 i = 0; i < iters; i++) {
		ADD_ONE(1, u8, c1);
		ADD_ONE(2, u16, c2);
		ADD_ONE(4, u32, c4);
		ADD_ONE(8, u64, c8);
		struct pair8 o8 = { p8.lo, p8.hi };
		while (!cas8b(&p8, &o8, (struct pair8){ o8.lo + 1, o8.hi + 3 }, 1))
			cpu_relax();
		struct pair16 o16 = { p16.lo, p16.hi };
		while (!cas16b(&p16, &o16, (struct pair16){ o16.lo + 1, o16.hi + 5 }, 1))
			cpu_relax();
	}
}

#define CHECK(cond, ...)                       \
	do {                                   \
		if (!(cond))                   \
			guest_fail(__VA_ARGS__); \
	} while (0)

static void private_part(struct cpu *c)
{
	volatile struct pair16 *m = &priv[c->id * (CACHELINE / sizeof(struct pair16))];
	u64 base = 0x1000 + c->id;
	m->lo = base;
	m->hi = ~base;

	/* cmpxchg16b, compare fails: memory kept, rdx:rax = memory. */
	struct pair16 o = { base + 1, ~base };
	CHECK(!cas16b(m, &o, (struct pair16){ 7, 8 }, 0), "cmpxchg16b: unequal compare succeeded");
	CHECK(o.lo == base && o.hi == ~base, "cmpxchg16b: rdx:rax %lx:%lx after a failed compare", o.hi, o.lo);
	CHECK(m->lo == base && m->hi == ~base, "cmpxchg16b: memory changed by a failed compare");
	/* compare succeeds: memory replaced. */
	CHECK(cas16b(m, &o, (struct pair16){ 7, 8 }, 0), "cmpxchg16b: equal compare failed");
	CHECK(m->lo == 7 && m->hi == 8, "cmpxchg16b: memory %lx:%lx after a swap", m->hi, m->lo);

	/* cmpxchg8b on the low 8 bytes, both ways. */
	volatile struct pair8 *m8 = (volatile struct pair8 *)m;
	struct pair8 q = { 6, 0 };
	CHECK(!cas8b(m8, &q, (struct pair8){ 1, 2 }, 0), "cmpxchg8b: unequal compare succeeded");
	CHECK(q.lo == 7 && q.hi == 0, "cmpxchg8b: edx:eax %x:%x after a failed compare", q.hi, q.lo);
	CHECK(cas8b(m8, &q, (struct pair8){ 1, 2 }, 0), "cmpxchg8b: equal compare failed");
	CHECK(m8->lo == 1 && m8->hi == 2 && m->hi == 8, "cmpxchg8b: memory after a swap");

	/* Plain cmpxchg of each width, both ways, on the high half. */
	volatile u64 *w = &m->hi;
	u64 o64 = 9;
	CHECK(!xchg_plain_8(w, &o64, 10) && o64 == 8 && *w == 8, "cmpxchg q: unequal");
	CHECK(xchg_plain_8(w, &o64, 10) && *w == 10, "cmpxchg q: equal");
	u32 o32 = 11;
	CHECK(!xchg_plain_4((volatile u32 *)w, &o32, 12) && o32 == 10, "cmpxchg d: unequal");
	CHECK(xchg_plain_4((volatile u32 *)w, &o32, 12) && *w == 12, "cmpxchg d: equal");
	u16 o16 = 13;
	CHECK(!xchg_plain_2((volatile u16 *)w, &o16, 14) && o16 == 12, "cmpxchg w: unequal");
	CHECK(xchg_plain_2((volatile u16 *)w, &o16, 14) && *w == 14, "cmpxchg w: equal");
	u8 o8 = 15;
	CHECK(!xchg_plain_1((volatile u8 *)w, &o8, 16) && o8 == 14, "cmpxchg b: unequal");
	CHECK(xchg_plain_1((volatile u8 *)w, &o8, 16) && *w == 16, "cmpxchg b: equal");
}

void workload_run(struct cpu *c)
{
	private_part(c);
	shared_part(arg(0));
}

void workload_check(void)
{
	u64 n = (u64)nr_cpus * arg(0);
	CHECK(c1 == (u8)n, "cmpxchg b counter %u, expected %u", c1, (u8)n);
	CHECK(c2 == (u16)n, "cmpxchg w counter %u, expected %u", c2, (u16)n);
	CHECK(c4 == (u32)n, "cmpxchg d counter %u, expected %u", c4, (u32)n);
	CHECK(c8 == n, "cmpxchg q counter %lu, expected %lu", c8, n);
	CHECK(p8.lo == (u32)n && p8.hi == (u32)(3 * n), "cmpxchg8b pair %x:%x, expected %x:%x",
	      p8.hi, p8.lo, (u32)(3 * n), (u32)n);
	CHECK(p16.lo == n && p16.hi == 5 * n, "cmpxchg16b pair %lx:%lx, expected %lx:%lx",
	      p16.hi, p16.lo, 5 * n, n);
	printf("atomics: %lu updates of each width, cmpxchg8b/16b pairs %x:%x %lx:%lx\n", n,
	       p8.hi, p8.lo, p16.hi, p16.lo);
}
