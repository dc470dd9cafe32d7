/*
 * dom0: a minimal control domain, as xl waits for the guests it started.
 * Run as a privileged domain 0 (`smpsim run --kernel FILE --domu`), it binds
 * VIRQ_DOM_EXC (Xen sends it when a domain shuts down) and blocks until
 * XEN_DOMCTL_getdomaininfo reports every other domain shut down, then powers
 * off. Run alone (`-w dom0`, unprivileged) there is nothing to wait for.
 * The guests' results are theirs: this domain's poweroff says nothing of them.
 * arg0: unused.
 */
#include "rt.h"

WORKLOAD("dom0", 0, 0, 0, 0, 0, 0, 0, 0);

#define HYPERVISOR_domctl 36
#define DOMCTL_INTERFACE_VERSION 0x17
#define DOMCTL_getdomaininfo 5
#define DOMINF_shutdown (1u << 2)
#define VIRQ_DOM_EXC 3
#define EPERM 1
#define ESRCH 3

struct domctl {
	u32 cmd;
	u32 interface_version;
	u16 domain;
	u16 pad[3];
	union {
		struct {
			u16 domain;
			u16 pad;
			u32 flags;
			u64 tot_pages;
			u64 rest[15];
		} info;
		u8 raw[128];
	} u;
};

static volatile u64 dom_exc; /* VIRQ_DOM_EXC events handled */

static void on_dom_exc(u32 port, void *arg)
{
	(void)port;
	(void)arg;
	dom_exc++;
}

/* Domains other than this one still running; -1 without domctl rights. */
static long running_domains(void)
{
	static struct domctl op;
	long running = 0;
	u32 next = 1;
	for (;;) {
		memset(&op, 0, sizeof(op));
		op.cmd = DOMCTL_getdomaininfo;
		op.interface_version = DOMCTL_INTERFACE_VERSION;
		op.domain = (u16)next;
		long rc = _hypercall5(HYPERVISOR_domctl, (u64)&op, 0, 0, 0, 0);
		if (rc == -ESRCH)
			return running;
		if (rc == -EPERM)
			return -1;
		if (rc < 0)
			guest_fail("domctl getdomaininfo(%u) returned %ld", next, rc);
		if (!(op.u.info.flags & DOMINF_shutdown))
			running++;
		next = (u32)op.u.info.domain + 1;
	}
}

void workload_init(void)
{
}

void workload_run(struct cpu *c)
{
	if (c->id != 0)
		return;
	u32 port;
	long rc = evtchn_bind_virq(VIRQ_DOM_EXC, 0, &port);
	if (rc < 0)
		guest_fail("bind_virq(VIRQ_DOM_EXC) returned %ld", rc);
	evtchn_set_handler(port, 0, on_dom_exc, 0);
	long n = running_domains();
	if (n < 0) {
		printf("dom0: not the control domain (domctl -EPERM): no guests to wait for\n");
		return;
	}
	printf("dom0: waiting for %ld domain(s) to shut down\n", n);
	/* Checked after the bind, and the count read before each check: a
	 * shutdown before the check is seen by it, one after it sends the
	 * VIRQ that ends the block. */
	for (;;) {
		u64 seen = dom_exc;
		if (running_domains() == 0)
			break;
		WAIT_EVENT(dom_exc != seen);
	}
	printf("dom0: every other domain has shut down (%lu VIRQ_DOM_EXC)\n", dom_exc);
}

void workload_check(void)
{
}
