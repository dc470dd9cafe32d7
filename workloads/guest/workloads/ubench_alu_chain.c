/*
 * ubench-alu-chain: one dependent chain of `imul reg, reg` (x = x * m, m
 * an odd constant held in a register), 30 per iteration unrolled in one
 * asm loop; the loop counter runs beside it. Each imul waits for the
 * previous one, so a core reaches one imul per multiply latency.
 * Measured loop: 32 instructions per iteration (30 imul + dec + jnz).
 * Check: the final x equals the closed form x0 * m^(30 * iterations)
 * (wrapping 64-bit arithmetic, square and multiply in C).
 * Reports TSC cycles per imul (hundredths).
 * VCPU 0 runs the loop; any other VCPUs do nothing.
 * arg0: iterations (default 5000: 160k instructions, 150k imuls).
 */
#include "ubench_common.h"

WORKLOAD("ubench-alu-chain", 5000, 0, 0, 0, 0, 0, 0, 0);

#define IMULS_PER_ITER 30
#define INSNS_PER_ITER (IMULS_PER_ITER + 2)
#define X0 0x0123456789abcdefUL
#define M 0x9e3779b97f4a7c15UL

static u64 result, cycles;

void workload_init(void)
{
}

#define I1 "imulq %[m], %[x]\n\t"
#define I5 I1 I1 I1 I1 I1
#define I30 I5 I5 I5 I5 I5 I5

void workload_run(struct cpu *c)
{
	if (c->id != 0)
		return;
	u64 n = arg(0), x = X0, m = M;
	roi_begin();
	u64 t0 = rdtsc();
	__asm__ __volatile__("1:\n\t" I30
			     "decq %[n]\n\t"
			     "jnz 1b\n\t"
			     : [n] "+r"(n), [x] "+r"(x)
			     : [m] "r"(m)
			     : "cc");
	u64 t1 = rdtsc();
	roi_end();
	cycles = t1 - t0;
	result = x;
}

void workload_check(void)
{
	u64 iters = arg(0), imuls = iters * IMULS_PER_ITER;
	u64 want = ubench_mul_pow(X0, M, imuls);
	if (result != want)
		guest_fail("chain value %lx, expected %lx", result, want);
	u64 per = ubench_hundredths(cycles, imuls);
	printf("ubench-alu-chain: %lu iterations, %lu instructions, %lu cycles, "
	       "%lu.%02lu cycles/imul\n",
	       iters, iters * INSNS_PER_ITER, cycles, UBENCH_FIX(per));
}
