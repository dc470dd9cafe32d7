/*
 * false-sharing: each VCPU increments its own counter `iters` times, first
 * with the counters packed next to each other (8 per cache line), then
 * padded to one line each. Check: every counter ends at `iters`. Reports
 * the slowest VCPU's TSC cycles for both layouts.
 * arg0: increments per VCPU (default 2000).
 */
#include "rt.h"

WORKLOAD("false-sharing", 2000, 0, 0, 0, 0, 0, 0, 0);

static volatile u64 *packed; /* counter i at packed[i] */
static volatile u64 *padded; /* counter i at padded[i * 8] */
static u64 *cycles;          /* [i * 8] packed, [i * 8 + 1] padded */

void workload_init(void)
{
	packed = heap_alloc(nr_cpus * sizeof(u64), CACHELINE);
	padded = heap_alloc(nr_cpus * CACHELINE, CACHELINE);
	cycles = heap_alloc(nr_cpus * CACHELINE, CACHELINE);
}

static u64 bump(volatile u64 *ctr, u64 iters)
{
	u64 t0 = rdtsc();
	for (u64 i = 0; i < iters; i++)
		*ctr = *ctr + 1;
	return rdtsc() - t0;
}

void workload_run(struct cpu *c)
{
	u64 iters = arg(0);
	cycles[c->id * 8] = bump(&packed[c->id], iters);
	smp_barrier();
	cycles[c->id * 8 + 1] = bump(&padded[c->id * 8], iters);
}

void workload_check(void)
{
	u64 iters = arg(0), worst_packed = 0, worst_padded = 0;
	for (u32 i = 0; i < nr_cpus; i++) {
		if (packed[i] != iters || padded[i * 8] != iters)
			guest_fail("VCPU %u counters packed %lu padded %lu, expected %lu", i, packed[i],
				   padded[i * 8], iters);
		if (cycles[i * 8] > worst_packed)
			worst_packed = cycles[i * 8];
		if (cycles[i * 8 + 1] > worst_padded)
			worst_padded = cycles[i * 8 + 1];
	}
	printf("false-sharing: %lu increments per VCPU; slowest VCPU %lu cycles packed, %lu padded\n",
	       iters, worst_packed, worst_padded);
}
