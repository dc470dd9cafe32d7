/*
 * pointer-chase: each VCPU builds a random cyclic permutation (Sattolo,
 * seeded by its id) over its own nodes of one cache line each, then walks
 * it: the walk must return to node 0 after exactly `nodes` steps, every lap.
 * Reports TSC cycles per dependent load.
 * arg0: nodes per VCPU (default 4096); arg1: laps (default 2).
 */
#include "rt.h"

WORKLOAD("pointer-chase", 4096, 2, 0, 0, 0, 0, 0, 0);

#define NODE_WORDS (CACHELINE / 8)
static u64 **regions; /* per VCPU */
static u64 *cycles;   /* per VCPU, padded */

void workload_init(void)
{
	regions = heap_alloc(nr_cpus * sizeof(u64 *), CACHELINE);
	cycles = heap_alloc(nr_cpus * CACHELINE, CACHELINE);
	for (u32 i = 0; i < nr_cpus; i++)
		regions[i] = heap_alloc_raw(arg(0) * CACHELINE, PAGE_SIZE); /* Sattolo fills it */
}

void workload_run(struct cpu *c)
{
	u64 n = arg(0), *base = regions[c->id];
	sattolo_cycle(base, n, NODE_WORDS, 0x5eed0000 + c->id);
	u64 t0 = rdtsc();
	for (u64 lap = 0; lap < arg(1); lap++) {
		u64 pos = 0, steps = 0;
		do {
			pos = base[pos * NODE_WORDS];
			steps++;
		} while (pos != 0 && steps <= n);
		if (steps != n)
			guest_fail("VCPU %u lap %lu: cycle length %lu, expected %lu", c->id, lap, steps, n);
	}
	cycles[c->id * 8] = rdtsc() - t0;
}

void workload_check(void)
{
	u64 steps = arg(0) * arg(1), sum = 0;
	for (u32 i = 0; i < nr_cpus; i++)
		sum += cycles[i * 8];
	printf("pointer-chase: %lu loads per VCPU, average %lu cycles per load\n", steps,
	       sum / nr_cpus / (steps ? steps : 1));
}
