/* Time (xen-abi.md §2.1) and timers (§4.2, §4.3). */
#include "rt.h"

struct time_snapshot {
	u64 tsc_timestamp, system_time;
	u32 mul;
	s8 shift;
};

static struct time_snapshot read_time_info(struct vcpu_time_info *t)
{
	struct time_snapshot s;
	u32 v;
	do {
		v = READ_ONCE(t->version);
		compiler_barrier(); /* x86 keeps loads in order */
		s.tsc_timestamp = READ_ONCE(t->tsc_timestamp);
		s.system_time = READ_ONCE(t->system_time);
		s.mul = READ_ONCE(t->tsc_to_system_mul);
		s.shift = READ_ONCE(t->tsc_shift);
		compiler_barrier();
	} while ((v & 1) || v != READ_ONCE(t->version));
	return s;
}

u64 now_ns(void)
{
	struct time_snapshot s = read_time_info(&this_cpu()->vi->time);
	u64 tsc = rdtsc();
	u64 delta = tsc > s.tsc_timestamp ? tsc - s.tsc_timestamp : 0;
	return s.system_time + pvclock_scale_delta(delta, s.mul, s.shift);
}

u64 tsc_delta_to_ns(u64 delta)
{
	struct time_snapshot s = read_time_info(&this_cpu()->vi->time);
	return pvclock_scale_delta(delta, s.mul, s.shift);
}

long timer_set_periodic(u64 period_ns)
{
	struct vcpu_set_periodic_timer t = { period_ns };
	return HYPERVISOR_vcpu_op(VCPUOP_set_periodic_timer, this_cpu()->id, &t);
}

long timer_stop_periodic(void)
{
	return HYPERVISOR_vcpu_op(VCPUOP_stop_periodic_timer, this_cpu()->id, 0);
}

long timer_set_singleshot(u64 abs_ns)
{
	struct vcpu_set_singleshot_timer t = { abs_ns, 0, 0 };
	return HYPERVISOR_vcpu_op(VCPUOP_set_singleshot_timer, this_cpu()->id, &t);
}

long timer_stop_singleshot(void)
{
	return HYPERVISOR_vcpu_op(VCPUOP_stop_singleshot_timer, this_cpu()->id, 0);
}

long set_timer_op(u64 abs_ns)
{
	return HYPERVISOR_set_timer_op(abs_ns);
}

static void timer_handler(u32 port, void *arg)
{
	struct cpu *c = arg;
	(void)port;
	c->timer_count++;
}

void timer_bind(void)
{
	struct cpu *c = this_cpu();
	if (c->timer_port)
		return;
	u32 port;
	long rc = evtchn_bind_virq(VIRQ_TIMER, c->id, &port);
	if (rc < 0)
		guest_fail("bind_virq(VIRQ_TIMER, VCPU %u) returned %ld", c->id, rc);
	c->timer_port = port;
	evtchn_set_handler(port, c->id, timer_handler, c);
}
