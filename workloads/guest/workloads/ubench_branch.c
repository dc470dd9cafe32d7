/*
 * ubench-branch: a conditional branch per iteration on a bit of an
 * xorshift64 generator stepped in the same asm loop. Mode 0 tests bit 32
 * of the generator (random: a predictor misses about half the time);
 * mode 1 runs the same loop with a zero test mask (the branch always goes
 * the same way: perfectly predictable). The cycles of mode 0 minus those
 * of mode 1, divided by the mispredicts, are the mispredict penalty.
 * Measured loop: 13 instructions per iteration (9 generator, test, jz,
 * dec, jnz), plus 1 (an add) when the branch falls through.
 * Check: the final generator state and the fall-through count equal the
 * same generator run in C.
 * Reports TSC cycles per iteration (hundredths).
 * VCPU 0 runs the loop; any other VCPUs do nothing.
 * arg0: iterations (default 16384: about 221k instructions in mode 0,
 * 213k in mode 1); arg1: mode, 0 = unpredictable (default), 1 = predictable.
 */
#include "ubench_common.h"

WORKLOAD("ubench-branch", 16384, 0, 0, 0, 0, 0, 0, 0);

#define INSNS_PER_ITER 13
#define SEED 0x123456789abcdef1UL
#define RANDOM_BIT (1UL << 32)

static u64 result, fallthrough, cycles;

void workload_init(void)
{
	if (arg(1) > 1)
		guest_fail("mode %lu: 0 (unpredictable) or 1 (predictable)", arg(1));
}

static u64 mask(void)
{
	return arg(1) == 0 ? RANDOM_BIT : 0;
}

void workload_run(struct cpu *c)
{
	if (c->id != 0)
		return;
	u64 n = arg(0), x = SEED, m = mask(), cnt = 0, t;
	roi_begin();
	u64 t0 = rdtsc();
	__asm__ __volatile__("1:\n\t"
			     "movq %[x], %[t]\n\tshlq $13, %[t]\n\txorq %[t], %[x]\n\t"
			     "movq %[x], %[t]\n\tshrq $7, %[t]\n\txorq %[t], %[x]\n\t"
			     "movq %[x], %[t]\n\tshlq $17, %[t]\n\txorq %[t], %[x]\n\t"
			     "testq %[m], %[x]\n\t"
			     "jz 2f\n\t"
			     "addq $1, %[cnt]\n"
			     "2:\n\t"
			     "decq %[n]\n\t"
			     "jnz 1b\n\t"
			     : [n] "+r"(n), [x] "+r"(x), [cnt] "+r"(cnt), [t] "=&r"(t)
			     : [m] "r"(m)
			     : "cc");
	u64 t1 = rdtsc();
	roi_end();
	cycles = t1 - t0;
	result = x;
	fallthrough = cnt;
}

void workload_check(void)
{
	u64 iters = arg(0), x = SEED, m = mask(), cnt = 0;
	for (u64 i = 0; i < iters; i++) {
		x ^= x << 13;
		x ^= x >> 7;
		x ^= x << 17;
		cnt += (x & m) != 0;
	}
	if (result != x || fallthrough != cnt)
		guest_fail("generator %lx, %lu fall-throughs; expected %lx and %lu", result,
			   fallthrough, x, cnt);
	u64 per = ubench_hundredths(cycles, iters);
	printf("ubench-branch: mode %lu (%s), %lu iterations, %lu instructions, "
	       "%lu fall-throughs, %lu cycles, %lu.%02lu cycles/iteration\n",
	       arg(1), arg(1) ? "predictable" : "unpredictable", iters,
	       iters * INSNS_PER_ITER + cnt, cnt, cycles, UBENCH_FIX(per));
}
