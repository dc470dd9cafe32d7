/*
 * Event channels and the 2-level upcall scan (xen-abi.md §3). The shared
 * pending/mask bitmaps are domain-wide; each VCPU only handles the ports it
 * owns (the ones Xen notifies to it: IPI and VIRQ ports bound to it, other
 * ports after bind_vcpu), so each VCPU keeps an "owned" bitmap it ANDs in,
 * as Linux does with its per-CPU mask.
 */
#include "rt.h"

struct handler {
	evtchn_handler_t fn;
	void *arg;
};
static struct handler handlers[NR_EVENT_CHANNELS];
static u16 port_owner[NR_EVENT_CHANNELS];
volatile u64 spurious_events; /* pending ports with no handler */

static inline void set_bit_atomic(volatile u64 *w, unsigned b)
{
	__asm__ __volatile__("lock btsq %1, %0" : "+m"(*w) : "r"((u64)b) : "memory", "cc");
}

static inline void clear_bit_atomic(volatile u64 *w, unsigned b)
{
	__asm__ __volatile__("lock btrq %1, %0" : "+m"(*w) : "r"((u64)b) : "memory", "cc");
}

static inline int test_and_clear_bit(volatile u64 *w, unsigned b)
{
	u8 old;
	__asm__ __volatile__("lock btrq %2, %0; setc %1"
			     : "+m"(*w), "=q"(old)
			     : "r"((u64)b)
			     : "memory", "cc");
	return old;
}

static long evtchn_op(int cmd, void *arg)
{
	return HYPERVISOR_event_channel_op(cmd, arg);
}

long evtchn_alloc_unbound(u16 remote_dom, u32 *port)
{
	struct evtchn_alloc_unbound op = { DOMID_SELF, remote_dom, 0 };
	long rc = evtchn_op(EVTCHNOP_alloc_unbound, &op);
	*port = op.port;
	return rc;
}

long evtchn_bind_interdomain(u16 remote_dom, u32 remote_port, u32 *port)
{
	struct evtchn_bind_interdomain op = { remote_dom, 0, remote_port, 0 };
	long rc = evtchn_op(EVTCHNOP_bind_interdomain, &op);
	*port = op.local_port;
	return rc;
}

long evtchn_bind_virq(u32 virq, u32 vcpu, u32 *port)
{
	struct evtchn_bind_virq op = { virq, vcpu, 0 };
	long rc = evtchn_op(EVTCHNOP_bind_virq, &op);
	*port = op.port;
	return rc;
}

long evtchn_bind_ipi(u32 vcpu, u32 *port)
{
	struct evtchn_bind_ipi op = { vcpu, 0 };
	long rc = evtchn_op(EVTCHNOP_bind_ipi, &op);
	*port = op.port;
	return rc;
}

long evtchn_bind_vcpu(u32 port, u32 vcpu)
{
	struct evtchn_bind_vcpu op = { port, vcpu };
	return evtchn_op(EVTCHNOP_bind_vcpu, &op);
}

long evtchn_send(u32 port)
{
	struct evtchn_port_op op = { port };
	return evtchn_op(EVTCHNOP_send, &op);
}

long evtchn_unmask(u32 port)
{
	struct evtchn_port_op op = { port };
	return evtchn_op(EVTCHNOP_unmask, &op);
}

long evtchn_close(u32 port)
{
	evtchn_mask(port);
	clear_bit_atomic(&cpus[port_owner[port]].owned[port / 64], port % 64);
	handlers[port].fn = NULL;
	struct evtchn_port_op op = { port };
	return evtchn_op(EVTCHNOP_close, &op);
}

void evtchn_mask(u32 port)
{
	set_bit_atomic(&shared->evtchn_mask[port / 64], port % 64);
}

int evtchn_test_and_clear_pending(u32 port)
{
	return test_and_clear_bit(&shared->evtchn_pending[port / 64], port % 64);
}

void evtchn_set_handler(u32 port, u32 vcpu, evtchn_handler_t h, void *arg)
{
	if (port == 0 || port >= NR_EVENT_CHANNELS || vcpu >= nr_cpus)
		guest_fail("evtchn_set_handler: bad port %u or VCPU %u", port, vcpu);
	evtchn_mask(port);
	clear_bit_atomic(&cpus[port_owner[port]].owned[port / 64], port % 64);
	handlers[port].fn = h;
	handlers[port].arg = arg;
	port_owner[port] = (u16)vcpu;
	set_bit_atomic(&cpus[vcpu].owned[port / 64], port % 64);
	long rc = evtchn_unmask(port);
	if (rc < 0)
		guest_fail("EVTCHNOP_unmask(port %u) returned %ld", port, rc);
}

static void dispatch(struct cpu *c, u32 port)
{
	struct handler *h = &handlers[port];
	if (h->fn)
		h->fn(port, h->arg);
	else
		xadd_u64(&spurious_events, 1);
	(void)c;
}

/* Scans one selector word: pending & ~mask & owned, lowest port first. */
static void scan_word(struct cpu *c, unsigned i)
{
	for (;;) {
		u64 w = READ_ONCE(shared->evtchn_pending[i]) & ~READ_ONCE(shared->evtchn_mask[i]) &
			READ_ONCE(c->owned[i]);
		if (!w)
			return;
		unsigned b = ctz64(w);
		if (test_and_clear_bit(&shared->evtchn_pending[i], b))
			dispatch(c, i * 64 + b);
	}
}

/* Called by hypervisor_callback (entry.S) with events masked. */
void do_upcall(void)
{
	struct cpu *c = this_cpu();
	struct vcpu_info *vi = c->vi;
	c->upcalls++;
	while (READ_ONCE(vi->evtchn_upcall_pending)) {
		WRITE_ONCE(vi->evtchn_upcall_pending, 0);
		u64 sel = xchg_u64(&vi->evtchn_pending_sel, 0);
		while (sel) {
			unsigned i = ctz64(sel);
			sel &= sel - 1;
			scan_word(c, i);
		}
	}
}

void local_irq_disable(void)
{
	struct cpu *c = this_cpu();
	if (c->vi)
		WRITE_ONCE(c->vi->evtchn_upcall_mask, 1);
	compiler_barrier();
}

void local_irq_enable(void)
{
	struct cpu *c = this_cpu();
	if (!c->vi)
		return;
	compiler_barrier();
	WRITE_ONCE(c->vi->evtchn_upcall_mask, 0);
	compiler_barrier();
	/* Xen does not watch the mask byte: provoke delivery (§3.4). */
	if (READ_ONCE(c->vi->evtchn_upcall_pending))
		HYPERVISOR_xen_version(XENVER_version, 0);
}

u8 local_irq_save(void)
{
	struct cpu *c = this_cpu();
	if (!c->vi)
		return 1;
	u8 old = READ_ONCE(c->vi->evtchn_upcall_mask);
	local_irq_disable();
	return old;
}

void local_irq_restore(u8 saved)
{
	if (!saved)
		local_irq_enable();
}

void sched_block(void)
{
	/* Re-enables events atomically with blocking; pending work is
	 * delivered as the hypercall returns. */
	HYPERVISOR_sched_op(SCHEDOP_block, 0);
	local_irq_disable();
}

void sched_yield(void)
{
	HYPERVISOR_sched_op(SCHEDOP_yield, 0);
}

long sched_poll(u32 *ports, u32 n, u64 timeout_abs_ns)
{
	struct sched_poll p = { ports, n, 0, timeout_abs_ns };
	return HYPERVISOR_sched_op(SCHEDOP_poll, &p);
}
