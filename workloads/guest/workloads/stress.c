/*
 * stress: a many-VCPU exercise of everything at once. Each round, every
 * VCPU sends one IPI to the VCPU `round` places to its right (so each VCPU
 * receives exactly one), waits for its own, increments a ticket-locked
 * shared counter, and meets the others at the barrier. Check: every VCPU
 * handled exactly `rounds` IPIs and the counter is VCPUs * rounds.
 * arg0: rounds (default 8).
 */
#include "rt.h"

WORKLOAD("stress", 8, 0, 0, 0, 0, 0, 0, 0);

static ticketlock_t lock ALIGNED(CACHELINE) = TICKETLOCK_INIT;
static volatile u64 counter ALIGNED(CACHELINE);

void workload_init(void)
{
}

void workload_run(struct cpu *c)
{
	u64 rounds = arg(0);
	for (u64 r = 1; r <= rounds; r++) {
		u32 target = (u32)((c->id + r) % nr_cpus);
		long rc = evtchn_send(cpus[target].ipi_port);
		if (rc < 0)
			guest_fail("VCPU %u: send to VCPU %u returned %ld", c->id, target, rc);
		WAIT_EVENT(c->ipi_count >= r);
		ticket_lock(&lock);
		counter = counter + 1;
		ticket_unlock(&lock);
		smp_barrier(); /* nobody sends round r+1 before all handled round r */
	}
}

void workload_check(void)
{
	u64 rounds = arg(0);
	for (u32 i = 0; i < nr_cpus; i++)
		if (cpus[i].ipi_count != rounds)
			guest_fail("VCPU %u handled %lu IPIs, expected %lu", i, cpus[i].ipi_count, rounds);
	if (counter != (u64)nr_cpus * rounds)
		guest_fail("counter is %lu, expected %lu", counter, (u64)nr_cpus * rounds);
	printf("stress: %u VCPUs, %lu rounds of IPI + lock + barrier\n", nr_cpus, rounds);
}
