/*
 * barrier: `episodes` rounds of: write my slot = round, sense-reversing
 * barrier, check every slot == round, barrier. A barrier that lets anyone
 * through early is caught by the slot check. Check also: exactly one
 * VCPU per barrier episode was the last arrival. Every VCPU's wait in
 * each episode (arrival to release, rdtsc) goes to the simulator's
 * barrier_wait histogram (lat_record).
 * arg0: rounds (default 50).
 */
#include "rt.h"

WORKLOAD("barrier", 50, 0, 0, 0, 0, 0, 0, 0);

static barrier_t bar ALIGNED(CACHELINE);
static u64 *slots;  /* per VCPU, padded */
static u32 *senses; /* per VCPU, padded */
static volatile u64 last_arrivals;

void workload_init(void)
{
	barrier_init(&bar, nr_cpus);
	slots = heap_alloc(nr_cpus * CACHELINE, CACHELINE);
	senses = heap_alloc(nr_cpus * CACHELINE, CACHELINE);
}

static void wait_all(struct cpu *c)
{
	u64 t0 = rdtsc();
	int last = barrier_wait(&bar, &senses[c->id * (CACHELINE / 4)]);
	lat_record(LAT_BARRIER_WAIT, rdtsc() - t0);
	if (last)
		xadd_u64(&last_arrivals, 1);
}

void workload_run(struct cpu *c)
{
	u64 rounds = arg(0);
	for (u64 r = 1; r <= rounds; r++) {
		WRITE_ONCE(slots[c->id * (CACHELINE / 8)], r);
		wait_all(c);
		for (u32 i = 0; i < nr_cpus; i++) {
			u64 v = READ_ONCE(slots[i * (CACHELINE / 8)]);
			if (v != r)
				guest_fail("round %lu: VCPU %u sees VCPU %u's slot at %lu", r, c->id, i, v);
		}
		wait_all(c);
	}
}

void workload_check(void)
{
	u64 expected = 2 * arg(0);
	if (last_arrivals != expected)
		guest_fail("%lu last arrivals, expected one per episode (%lu)", last_arrivals,
			   expected);
	printf("barrier: %lu episodes on %u VCPUs\n", expected, nr_cpus);
}
