/*
 * interdomain: two domains (params.domain_index 0 and 1, each told the
 * other's domid in params.peer_domid) share the zeroed area the builder
 * mapped in both at params.shared_va. Domain 0 allocates an unbound port
 * for the peer and publishes it in the shared header; domain 1 binds to it
 * (bind_interdomain) and signals back; then domain 0 streams `items` values
 * through a ring in the shared area to domain 1, notifying over the
 * channel. Check: domain 1 verifies every value in order and returns its
 * checksum, which domain 0 compares with its own. Only VCPU 0 of each
 * domain takes part. See README-guest.md for what the builder must do.
 * arg0: items (default 1000); arg1: batch (default 16); arg2: ring slots
 * (default 64).
 */
#include "rt.h"
#include "ring.h"

WORKLOAD("interdomain", 1000, 16, 64, 0, 0, 0, 0, 0);

#define XDOM_MAGIC 0x58444f4d /* "MODX": header published by domain 0 */
#define STREAM 0xd0

struct xdom {
	volatile u32 magic;   /* set last by domain 0 */
	volatile u32 port;    /* domain 0's unbound port */
	volatile u32 bound;   /* set by domain 1 after binding */
	volatile u32 done;    /* set by domain 1 after consuming everything */
	volatile u64 checksum; /* domain 1's checksum */
	volatile u64 bad;      /* domain 1's out-of-order count */
	u64 pad[12];
	struct ring ring;
};

static struct xdom *x;
static u32 port;
static volatile u64 events;
static u64 produced_sum;

static void on_event(u32 p, void *a)
{
	(void)p;
	(void)a;
	events++;
}

void workload_init(void)
{
	u64 need = sizeof(struct xdom) + arg(2) * sizeof(u64);
	if (smpsim_params.domain_index > 1)
		guest_fail("domain_index %u: this workload has two domains", smpsim_params.domain_index);
	if (!smpsim_params.shared_va || smpsim_params.shared_bytes < need)
		guest_fail("needs a shared area of %lu bytes from the builder (shared_va %lx, %lu "
			   "bytes)",
			   need, smpsim_params.shared_va, smpsim_params.shared_bytes);
	if (arg(2) & (arg(2) - 1))
		guest_fail("ring slots %lu is not a power of two", arg(2));
	x = (struct xdom *)smpsim_params.shared_va;
}

static void send(void)
{
	long rc = evtchn_send(port);
	if (rc < 0)
		guest_fail("send on interdomain port %u returned %ld", port, rc);
}

static void producer(void)
{
	u16 peer = (u16)smpsim_params.peer_domid;
	long rc = evtchn_alloc_unbound(peer, &port);
	if (rc < 0)
		guest_fail("alloc_unbound(remote domain %u) returned %ld", peer, rc);
	evtchn_set_handler(port, 0, on_event, NULL);
	ring_init(&x->ring, arg(2));
	x->port = port;
	compiler_barrier();
	x->magic = XDOM_MAGIC;
	WAIT_EVENT(x->bound);
	u64 seq = 0;
	while (seq < arg(0)) {
		WAIT_EVENT(ring_space(&x->ring) > 0);
		ring_produce(&x->ring, STREAM, &seq, arg(0), arg(1), &produced_sum);
		send();
	}
	WAIT_EVENT(x->done);
	if (x->bad || x->checksum != produced_sum)
		guest_fail("peer saw %lu values out of order, checksum %lx, expected %lx", x->bad,
			   x->checksum, produced_sum);
}

static void consumer(void)
{
	u16 peer = (u16)smpsim_params.peer_domid;
	while (READ_ONCE(x->magic) != XDOM_MAGIC)
		sched_yield();
	long rc = evtchn_bind_interdomain(peer, x->port, &port);
	if (rc < 0)
		guest_fail("bind_interdomain(domain %u, port %u) returned %ld", peer, x->port, rc);
	evtchn_set_handler(port, 0, on_event, NULL);
	x->bound = 1;
	send();
	u64 seq = 0, sum = 0, bad = 0;
	while (seq < arg(0)) {
		WAIT_EVENT(ring_avail(&x->ring) > 0);
		ring_consume(&x->ring, STREAM, &seq, arg(1), &sum, &bad);
		send();
	}
	if (bad)
		guest_fail("%lu of %lu values arrived out of order", bad, seq);
	x->checksum = sum;
	x->bad = bad;
	compiler_barrier();
	x->done = 1;
	send();
}

void workload_run(struct cpu *c)
{
	if (c->id != 0)
		return;
	if (smpsim_params.domain_index == 0)
		producer();
	else
		consumer();
}

void workload_check(void)
{
	printf("interdomain: domain %u (%s) done: %lu items, %lu events received\n",
	       smpsim_params.domain_index, smpsim_params.domain_index ? "consumer" : "producer",
	       arg(0), events);
}
