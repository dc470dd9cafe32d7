/*
 * timer: on every VCPU, with VIRQ_TIMER bound: a single-shot timer
 * (VCPUOP_set_singleshot_timer) must not fire before its deadline; so must
 * set_timer_op; SCHEDOP_poll with a timeout must return no earlier than it;
 * a periodic timer (VCPUOP_set_periodic_timer) must deliver `ticks` ticks
 * spanning at least (ticks-1) periods; after stop_periodic_timer only the
 * next single-shot event may arrive. Time is read from vcpu_time_info.
 * arg0: period in us (default 1000, Xen's minimum); arg1: ticks (default 5);
 * arg2: single-shot delay in us (default 500).
 */
#include "rt.h"

WORKLOAD("timer", 1000, 5, 500, 0, 0, 0, 0, 0);

#define SLACK_NS 1000 /* rounding of the tsc->ns scale */

static u64 *periodic_ns; /* per VCPU, padded: span of the periodic ticks */

void workload_init(void)
{
	periodic_ns = heap_alloc(nr_cpus * CACHELINE, CACHELINE);
}

static void check_not_early(struct cpu *c, const char *what, u64 deadline)
{
	u64 t = now_ns();
	if (t + SLACK_NS < deadline)
		guest_fail("VCPU %u: %s returned at %lu ns, before its deadline %lu ns", c->id, what, t,
			   deadline);
}

static void singleshot(struct cpu *c, u64 delay)
{
	u64 before = c->timer_count;
	u64 deadline = now_ns() + delay;
	long rc = timer_set_singleshot(deadline);
	if (rc < 0)
		guest_fail("VCPU %u: set_singleshot_timer returned %ld", c->id, rc);
	WAIT_EVENT(c->timer_count > before);
	check_not_early(c, "single-shot timer", deadline);
}

static void timer_op(struct cpu *c, u64 delay)
{
	u64 before = c->timer_count;
	u64 deadline = now_ns() + delay;
	long rc = set_timer_op(deadline);
	if (rc < 0)
		guest_fail("VCPU %u: set_timer_op returned %ld", c->id, rc);
	WAIT_EVENT(c->timer_count > before);
	check_not_early(c, "set_timer_op timer", deadline);
}

static void poll_timeout(struct cpu *c, u64 delay)
{
	u32 port = c->ipi_port; /* nobody sends to it during this test */
	local_irq_disable();
	u64 deadline = now_ns() + delay;
	long rc = sched_poll(&port, 1, deadline);
	local_irq_enable();
	if (rc < 0)
		guest_fail("VCPU %u: SCHEDOP_poll returned %ld", c->id, rc);
	check_not_early(c, "SCHEDOP_poll timeout", deadline);
}

static void periodic(struct cpu *c, u64 period, u64 ticks)
{
	u64 before = c->timer_count;
	long rc = timer_set_periodic(period);
	if (rc < 0)
		guest_fail("VCPU %u: set_periodic_timer(%lu ns) returned %ld", c->id, period, rc);
	WAIT_EVENT(c->timer_count > before);
	u64 first = now_ns();
	WAIT_EVENT(c->timer_count >= before + ticks);
	u64 span = now_ns() - first;
	timer_stop_periodic();
	periodic_ns[c->id * 8] = span;
	if (span + SLACK_NS < (ticks - 1) * period)
		guest_fail("VCPU %u: %lu ticks in %lu ns, expected at least %lu ns", c->id, ticks, span,
			   (ticks - 1) * period);
}

void workload_run(struct cpu *c)
{
	u64 period = arg(0) * 1000, ticks = arg(1), delay = arg(2) * 1000;
	if (READ_ONCE(c->vi->time.tsc_to_system_mul) == 0)
		guest_fail("VCPU %u: its vcpu_time_info is not set (tsc_to_system_mul = 0)", c->id);
	timer_bind();
	singleshot(c, delay);
	timer_op(c, delay);
	poll_timeout(c, delay);
	periodic(c, period, ticks);
	/* Stopped: over two periods only the single-shot tick may arrive. */
	u64 before = c->timer_count;
	singleshot(c, 2 * period);
	if (c->timer_count != before + 1)
		guest_fail("VCPU %u: %lu timer events after stop_periodic_timer, expected 1", c->id,
			   c->timer_count - before);
}

void workload_check(void)
{
	u64 ticks = arg(1), expected = 3 + ticks;
	for (u32 i = 0; i < nr_cpus; i++)
		if (cpus[i].timer_count < expected)
			guest_fail("VCPU %u: %lu timer events, expected at least %lu", i,
				   cpus[i].timer_count, expected);
	printf("timer: %u VCPUs, %lu periodic ticks each over %lu ns (VCPU 0)\n", nr_cpus, ticks,
	       periodic_ns[0]);
}
