/*
 * hello: every VCPU checks in and prints a line; VCPU 0 checks that all of
 * them did, that each one's IPI port is distinct, and that an IPI to every
 * VCPU is delivered.
 * arg0: unused.
 */
#include "rt.h"

WORKLOAD("hello", 0, 0, 0, 0, 0, 0, 0, 0);

static volatile u32 checked_in;
static u64 *seen_port; /* per VCPU: its IPI port */

void workload_init(void)
{
	seen_port = heap_alloc(nr_cpus * sizeof(u64), CACHELINE);
}

void workload_run(struct cpu *c)
{
	printf("hello from VCPU %u of %u (IPI port %u)\n", c->id, nr_cpus, c->ipi_port);
	seen_port[c->id] = c->ipi_port;
	xadd_u32(&checked_in, 1);
	smp_barrier();
	/* Each VCPU pokes its right neighbour and waits for its own poke,
	 * which may well have arrived already: it is the only IPI it gets. */
	long rc = evtchn_send(cpus[(c->id + 1) % nr_cpus].ipi_port);
	if (rc < 0)
		guest_fail("EVTCHNOP_send from VCPU %u returned %ld", c->id, rc);
	WAIT_EVENT(c->ipi_count >= 1);
	smp_barrier();
}

void workload_check(void)
{
	if (checked_in != nr_cpus)
		guest_fail("%u of %u VCPUs checked in", checked_in, nr_cpus);
	for (u32 i = 0; i < nr_cpus; i++)
		for (u32 j = 0; j < i; j++)
			if (seen_port[i] == seen_port[j] || seen_port[i] == 0)
				guest_fail("VCPU %u and %u share IPI port %lu", i, j, seen_port[i]);
	for (u32 i = 0; i < nr_cpus; i++)
		if (cpus[i].ipi_count != 1)
			guest_fail("VCPU %u handled %lu IPIs, expected 1", i, cpus[i].ipi_count);
	printf("hello: %u VCPUs checked in, every IPI delivered once\n", nr_cpus);
}
