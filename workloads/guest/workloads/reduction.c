/*
 * reduction: a[i] = 3i + 1 for i < n, initialised and summed in parallel
 * (contiguous chunks, one padded partial per VCPU), then combined by
 * VCPU 0. Check: the sum equals the closed form 3n(n-1)/2 + n, every round.
 * arg0: elements (default 65536); arg1: rounds (default 2).
 */
#include "rt.h"

WORKLOAD("reduction", 65536, 2, 0, 0, 0, 0, 0, 0);

static u64 *a;
static u64 *partial; /* per VCPU, padded */
static u64 *results; /* per round, written by VCPU 0 */

void workload_init(void)
{
	a = heap_alloc_raw(arg(0) * sizeof(u64), PAGE_SIZE); /* every VCPU fills its chunk */
	partial = heap_alloc(nr_cpus * CACHELINE, CACHELINE);
	results = heap_alloc(arg(1) * sizeof(u64), CACHELINE);
}

static void chunk(u32 id, u64 n, u64 *lo, u64 *hi)
{
	*lo = n * id / nr_cpus;
	*hi = n * (id + 1) / nr_cpus;
}

void workload_run(struct cpu *c)
{
	u64 n = arg(0), lo, hi;
	chunk(c->id, n, &lo, &hi);
	for (u64 i = lo; i < hi; i++)
		a[i] = 3 * i + 1;
	for (u64 r = 0; r < arg(1); r++) {
		smp_barrier();
		u64 s = 0;
		for (u64 i = lo; i < hi; i++)
			s += a[i];
		partial[c->id * 8] = s;
		smp_barrier();
		if (c->id == 0) {
			u64 total = 0;
			for (u32 i = 0; i < nr_cpus; i++)
				total += partial[i * 8];
			results[r] = total;
		}
	}
}

void workload_check(void)
{
	u64 n = arg(0);
	u64 expected = 3 * (n * (n - 1) / 2) + n;
	for (u64 r = 0; r < arg(1); r++)
		if (results[r] != expected)
			guest_fail("round %lu: sum %lu, expected %lu", r, results[r], expected);
	printf("reduction: %lu elements, %lu rounds, sum %lu\n", n, arg(1), expected);
}
