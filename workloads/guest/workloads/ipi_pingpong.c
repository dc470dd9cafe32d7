/*
 * ipi-pingpong: VCPUs 2k and 2k+1 bounce an event-channel IPI back and
 * forth (a lone last VCPU pings itself). The initiator times each round
 * trip with rdtsc (each also goes to the simulator's evtchn_rtt histogram
 * through lat_record). Check: every VCPU handled exactly `iters` IPIs.
 * arg0: round trips per pair (default 50).
 */
#include "rt.h"

WORKLOAD("ipi-pingpong", 50, 0, 0, 0, 0, 0, 0, 0);

struct rtt {
	u64 sum, min, max, count;
	u64 pad[4];
};
static struct rtt *rtts;

void workload_init(void)
{
	rtts = heap_alloc(nr_cpus * sizeof(struct rtt), CACHELINE);
}

static void initiate(struct cpu *c, struct cpu *peer, u64 iters)
{
	struct rtt *r = &rtts[c->id];
	r->min = ~0UL;
	for (u64 i = 0; i < iters; i++) {
		u64 before = c->ipi_count;
		u64 t0 = rdtsc();
		long rc = evtchn_send(peer->ipi_port);
		if (rc < 0)
			guest_fail("VCPU %u: send to port %u returned %ld", c->id, peer->ipi_port, rc);
		WAIT_EVENT(c->ipi_count > before);
		u64 d = rdtsc() - t0;
		r->sum += d;
		r->min = d < r->min ? d : r->min;
		r->max = d > r->max ? d : r->max;
		r->count++;
		lat_record(LAT_EVTCHN_RTT, d);
	}
}

static void respond(struct cpu *c, struct cpu *peer, u64 iters)
{
	for (u64 i = 0; i < iters; i++) {
		WAIT_EVENT(c->ipi_count > i);
		long rc = evtchn_send(peer->ipi_port);
		if (rc < 0)
			guest_fail("VCPU %u: send to port %u returned %ld", c->id, peer->ipi_port, rc);
	}
}

void workload_run(struct cpu *c)
{
	u32 partner = c->id ^ 1;
	u64 iters = arg(0);
	if (partner >= nr_cpus)
		initiate(c, c, iters);
	else if (c->id % 2 == 0)
		initiate(c, &cpus[partner], iters);
	else
		respond(c, &cpus[partner], iters);
}

void workload_check(void)
{
	u64 iters = arg(0);
	u64 sum = 0, count = 0, min = ~0UL, max = 0;
	for (u32 i = 0; i < nr_cpus; i++) {
		if (cpus[i].ipi_count != iters)
			guest_fail("VCPU %u handled %lu IPIs, expected %lu", i, cpus[i].ipi_count, iters);
		if (rtts[i].count == 0)
			continue;
		sum += rtts[i].sum;
		count += rtts[i].count;
		min = rtts[i].min < min ? rtts[i].min : min;
		max = rtts[i].max > max ? rtts[i].max : max;
	}
	u64 expected = (nr_cpus + 1) / 2 * iters;
	if (count != expected)
		guest_fail("%lu round trips timed, expected %lu", count, expected);
	printf("ipi-pingpong: %lu round trips, TSC cycles min %lu avg %lu max %lu (avg %lu ns)\n",
	       count, min, sum / count, max, tsc_delta_to_ns(sum / count));
}
