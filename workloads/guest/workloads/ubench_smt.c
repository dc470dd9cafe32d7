/*
 * ubench-smt: a latency-bound loop (a dependent chain of 10 `imul reg, reg`
 * per iteration, the loop counter beside it) whose total work, `iters`
 * iterations, is split evenly between all VCPUs. Run it with 1 VCPU, then
 * with 2 VCPUs on the two SMT contexts of one core: the chain leaves most
 * of the back end idle, so two contexts should finish the same total work
 * in nearly half the cycles.
 * Sequence: every VCPU sets up, barrier, VCPU 0 calls roi_begin, barrier,
 * every VCPU runs its share, barrier, VCPU 0 calls roi_end.
 * Measured loop: 12 instructions per iteration (10 imul + dec + jnz).
 * Check: each VCPU's final value equals its closed form
 * x0(v) * m^(10 * share(v)) (wrapping 64-bit arithmetic).
 * Reports the cycles between the barriers around the work (VCPU 0's TSC),
 * per iteration of the total work (hundredths), and each VCPU's own cycles.
 * arg0: total iterations (default 16000: 192k instructions in all).
 */
#include "ubench_common.h"

WORKLOAD("ubench-smt", 16000, 0, 0, 0, 0, 0, 0, 0);

#define IMULS_PER_ITER 10
#define INSNS_PER_ITER (IMULS_PER_ITER + 2)
#define M 0x9e3779b97f4a7c15UL

struct slot {
	u64 value;  /* final chain value */
	u64 cycles; /* this VCPU's own loop, TSC cycles */
	u64 pad[6];
};

static struct slot *slots; /* per VCPU, one line each */
static u64 wall;           /* VCPU 0: barrier to barrier */

void workload_init(void)
{
	slots = heap_alloc(nr_cpus * sizeof(struct slot), CACHELINE);
}

static u64 share(u32 id)
{
	u64 n = arg(0);
	return n * (id + 1) / nr_cpus - n * id / nr_cpus;
}

static u64 x0_of(u32 id)
{
	return 0x0123456789abcdefUL + 2 * (u64)id;
}

#define I1 "imulq %[m], %[x]\n\t"
#define I10 I1 I1 I1 I1 I1 I1 I1 I1 I1 I1

static u64 chain(u64 iters, u64 x, u64 *cycles)
{
	u64 m = M, t0 = rdtsc();
	if (iters)
		__asm__ __volatile__("1:\n\t" I10
				     "decq %[n]\n\t"
				     "jnz 1b\n\t"
				     : [n] "+r"(iters), [x] "+r"(x)
				     : [m] "r"(m)
				     : "cc");
	*cycles = rdtsc() - t0;
	return x;
}

void workload_run(struct cpu *c)
{
	u64 iters = share(c->id), x = x0_of(c->id), own;
	smp_barrier();
	if (c->id == 0)
		roi_begin();
	smp_barrier();
	u64 t0 = rdtsc();
	x = chain(iters, x, &own);
	slots[c->id].value = x;
	slots[c->id].cycles = own;
	smp_barrier();
	if (c->id == 0) {
		wall = rdtsc() - t0;
		roi_end();
	}
}

void workload_check(void)
{
	u64 max_own = 0;
	for (u32 v = 0; v < nr_cpus; v++) {
		u64 want = ubench_mul_pow(x0_of(v), M, share(v) * IMULS_PER_ITER);
		if (slots[v].value != want)
			guest_fail("VCPU %u: chain value %lx, expected %lx", v, slots[v].value, want);
		if (slots[v].cycles > max_own)
			max_own = slots[v].cycles;
	}
	u64 n = arg(0), per = ubench_hundredths(wall, n);
	printf("ubench-smt: %u VCPUs, %lu iterations in all, %lu instructions, %lu cycles, "
	       "%lu.%02lu cycles/iteration, slowest VCPU loop %lu cycles\n",
	       nr_cpus, n, n * INSNS_PER_ITER, wall, UBENCH_FIX(per), max_own);
}
