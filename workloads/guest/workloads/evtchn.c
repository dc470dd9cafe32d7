/*
 * evtchn: checks the hypervisor's event-channel semantics (xen-abi.md §3)
 * on a loopback interdomain channel, step by step:
 *   alloc_unbound(DOMID_SELF) -> p1; bind_interdomain(DOMID_SELF, p1) -> p2,
 *   which is pending at once; send on either end raises the other; a masked
 *   port still becomes pending (no upcall) and SCHEDOP_poll returns at once;
 *   bind_vcpu moves p1's events to VCPU 1 (when there is one); after
 *   close(p2), p1 is unbound and a send on it is silently dropped; after
 *   close(p1), a send on it fails.
 * Only VCPUs 0 and 1 take part. arg0: unused.
 */
#include "rt.h"

WORKLOAD("evtchn", 0, 0, 0, 0, 0, 0, 0, 0);

struct counter {
	volatile u64 n;
	volatile u32 cpu; /* VCPU that handled the last event */
};
static struct counter A, B; /* events on p1, p2 */
static u32 p1, p2;
static volatile u32 moved; /* p1 now notifies VCPU 1 */

static void count(u32 port, void *arg)
{
	struct counter *k = arg;
	(void)port;
	k->n++;
	k->cpu = this_cpu()->id;
}

void workload_init(void)
{
}

static void expect(int ok, const char *what, long rc)
{
	if (!ok)
		guest_fail("%s (rc %ld, events p1 %lu p2 %lu)", what, rc, A.n, B.n);
}

static void open_loopback(void)
{
	long rc = evtchn_alloc_unbound(DOMID_SELF, &p1);
	expect(rc == 0 && p1 != 0, "alloc_unbound(DOMID_SELF) failed", rc);
	evtchn_set_handler(p1, 0, count, &A);
	rc = evtchn_bind_interdomain(DOMID_SELF, p1, &p2);
	expect(rc == 0 && p2 != 0 && p2 != p1, "bind_interdomain(DOMID_SELF, p1) failed", rc);
	evtchn_set_handler(p2, 0, count, &B); /* its unmask finds p2 pending */
	WAIT_EVENT(B.n >= 1);
	expect(A.n == 0 && B.n == 1, "binding must raise only the new port", 0);
}

static void send_both_ways(void)
{
	long rc = evtchn_send(p2);
	expect(rc == 0, "send(p2) failed", rc);
	WAIT_EVENT(A.n >= 1);
	rc = evtchn_send(p1);
	expect(rc == 0, "send(p1) failed", rc);
	WAIT_EVENT(B.n >= 2);
	expect(A.n == 1 && B.n == 2, "each send must raise the other end once", 0);
}

static void masked_poll(void)
{
	evtchn_mask(p1);
	long rc = evtchn_send(p2);
	expect(rc == 0, "send(p2) to a masked port failed", rc);
	rc = sched_poll(&p1, 1, now_ns() + 1000000000UL);
	expect(rc == 0, "SCHEDOP_poll on a pending masked port failed", rc);
	expect(evtchn_test_and_clear_pending(p1), "a masked port must still become pending", 0);
	expect(A.n == 1, "a masked port must not cause an upcall", 0);
	rc = evtchn_unmask(p1);
	expect(rc == 0, "unmask(p1) failed", rc);
}

static void move_to_vcpu1(void)
{
	long rc = evtchn_bind_vcpu(p1, 1);
	expect(rc == 0, "bind_vcpu(p1, VCPU 1) failed", rc);
	evtchn_set_handler(p1, 1, count, &A);
	moved = 1;
	rc = evtchn_send(p2);
	expect(rc == 0, "send(p2) failed", rc);
	while (A.n < 2)
		sched_yield();
	expect(A.cpu == 1, "p1's event must be handled by VCPU 1 after bind_vcpu", A.cpu);
}

static void close_both(void)
{
	long rc = evtchn_close(p2);
	expect(rc == 0, "close(p2) failed", rc);
	rc = evtchn_send(p1);
	expect(rc == 0, "send on a port whose peer closed must be dropped silently", rc);
	HYPERVISOR_xen_version(XENVER_version, 0); /* a chance to deliver anything */
	expect(B.n == 2, "a send on an unbound port raised something", 0);
	rc = evtchn_close(p1);
	expect(rc == 0, "close(p1) failed", rc);
	rc = evtchn_send(p1);
	expect(rc < 0, "send on a closed port must fail", rc);
}

void workload_run(struct cpu *c)
{
	if (c->id == 1) {
		WAIT_EVENT(A.n >= 2); /* p1's event, once moved here */
		return;
	}
	if (c->id != 0)
		return;
	open_loopback();
	send_both_ways();
	masked_poll();
	if (nr_cpus > 1)
		move_to_vcpu1();
	close_both();
}

void workload_check(void)
{
	printf("evtchn: loopback p1 %u <-> p2 %u; %lu + %lu events; bind_vcpu %s\n", p1, p2, A.n,
	       B.n, nr_cpus > 1 ? "checked" : "skipped (1 VCPU)");
}
