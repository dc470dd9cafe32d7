/*
 * ubench-alu-indep: eight independent chains of 1-cycle ALU ops (r8..r15
 * style registers: each chain alternates add and xor with its own
 * constants), 32 ops per iteration unrolled in one asm loop, so an
 * out-of-order core can issue as many per cycle as its width allows.
 * Measured loop: 34 instructions per iteration (32 ALU + dec + jnz).
 * Check: every chain's final value equals the same arithmetic done in C.
 * Reports TSC cycles per iteration and instructions per cycle (hundredths).
 * VCPU 0 runs the loop; any other VCPUs do nothing.
 * arg0: iterations (default 6000: 204k instructions).
 */
#include "ubench_common.h"

WORKLOAD("ubench-alu-indep", 6000, 0, 0, 0, 0, 0, 0, 0);

#define CHAINS 8
#define OPS_PER_ITER 32
#define INSNS_PER_ITER (OPS_PER_ITER + 2)

/* Chain i, one iteration: add A(i), xor X(i), add A(i), xor X(i). */
#define A(i) (0x11 * ((i) + 1))
#define X(i) (0x5a5a0 + (i))

static u64 result[CHAINS];
static u64 cycles;

void workload_init(void)
{
}

static u64 reference(unsigned i, u64 iters)
{
	u64 v = 0x1000 * i;
	for (u64 k = 0; k < iters; k++)
		for (int r = 0; r < 2; r++) {
			v += A(i);
			v ^= X(i);
		}
	return v;
}

#define STR_(x) #x
#define STR(x) STR_(x)
#define STEP(i) "addq $" STR(A(i)) ", %[v" #i "]\n\txorq $" STR(X(i)) ", %[v" #i "]\n\t"
#define ROUND STEP(0) STEP(1) STEP(2) STEP(3) STEP(4) STEP(5) STEP(6) STEP(7)

void workload_run(struct cpu *c)
{
	if (c->id != 0)
		return;
	u64 n = arg(0);
	u64 v0 = 0, v1 = 0x1000, v2 = 0x2000, v3 = 0x3000, v4 = 0x4000, v5 = 0x5000,
	    v6 = 0x6000, v7 = 0x7000;
	roi_begin();
	u64 t0 = rdtsc();
	__asm__ __volatile__("1:\n\t" ROUND ROUND
			     "decq %[n]\n\t"
			     "jnz 1b\n\t"
			     : [n] "+r"(n), [v0] "+r"(v0), [v1] "+r"(v1), [v2] "+r"(v2),
			       [v3] "+r"(v3), [v4] "+r"(v4), [v5] "+r"(v5), [v6] "+r"(v6),
			       [v7] "+r"(v7)
			     :
			     : "cc");
	u64 t1 = rdtsc();
	roi_end();
	cycles = t1 - t0;
	result[0] = v0, result[1] = v1, result[2] = v2, result[3] = v3;
	result[4] = v4, result[5] = v5, result[6] = v6, result[7] = v7;
}

void workload_check(void)
{
	u64 iters = arg(0);
	for (unsigned i = 0; i < CHAINS; i++) {
		u64 want = reference(i, iters);
		if (result[i] != want)
			guest_fail("chain %u: %lx, expected %lx", i, result[i], want);
	}
	u64 insns = iters * INSNS_PER_ITER;
	u64 per = ubench_hundredths(cycles, iters), ipc = ubench_hundredths(insns, cycles);
	printf("ubench-alu-indep: %lu iterations, %lu instructions, %lu cycles, "
	       "%lu.%02lu cycles/iteration, IPC %lu.%02lu\n",
	       iters, insns, cycles, UBENCH_FIX(per), UBENCH_FIX(ipc));
}
