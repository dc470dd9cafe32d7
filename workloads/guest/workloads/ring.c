/*
 * ring: VCPU 2k produces `items` values into a shared-memory ring read by
 * VCPU 2k+1; after each batch each side sends an event-channel IPI to the
 * other, and waits (SCHEDOP_block) when the ring is full or empty. A lone
 * last VCPU plays both roles, notifying itself. Check: every value arrives
 * in order (compared with the generator) and both checksums agree.
 * arg0: items per pair (default 1000); arg1: batch (default 16);
 * arg2: ring slots, a power of two (default 64).
 */
#include "rt.h"
#include "ring.h"

WORKLOAD("ring", 1000, 16, 64, 0, 0, 0, 0, 0);

struct side {
	u64 sum, bad, count;
	u64 pad[5];
};
static struct ring **rings; /* per producer VCPU */
static struct side *sides;  /* per VCPU */

void workload_init(void)
{
	u64 slots = arg(2);
	if (slots & (slots - 1))
		guest_fail("ring slots %lu is not a power of two", slots);
	rings = heap_alloc(nr_cpus * sizeof(*rings), CACHELINE);
	sides = heap_alloc(nr_cpus * sizeof(*sides), CACHELINE);
	for (u32 i = 0; i < nr_cpus; i += 2) {
		rings[i] = heap_alloc(ring_bytes(slots), CACHELINE);
		ring_init(rings[i], slots);
	}
}

static void notify(struct cpu *c, struct cpu *peer)
{
	long rc = evtchn_send(peer->ipi_port);
	if (rc < 0)
		guest_fail("VCPU %u: send to port %u returned %ld", c->id, peer->ipi_port, rc);
}

static void produce(struct cpu *c, struct cpu *peer, struct ring *r, u64 items, u64 batch)
{
	u64 seq = 0;
	struct side *s = &sides[c->id];
	while (seq < items) {
		WAIT_EVENT(ring_space(r) > 0);
		ring_produce(r, c->id, &seq, items, batch, &s->sum);
		notify(c, peer);
	}
	s->count = seq;
}

static void consume(struct cpu *c, struct cpu *peer, struct ring *r, u64 stream, u64 items,
		    u64 batch)
{
	u64 seq = 0;
	struct side *s = &sides[c->id];
	while (seq < items) {
		WAIT_EVENT(ring_avail(r) > 0);
		ring_consume(r, stream, &seq, batch, &s->sum, &s->bad);
		notify(c, peer);
	}
	s->count = seq;
}

/* One VCPU, both roles: fill a batch, consume it, notifying itself. */
static void solo(struct cpu *c, struct ring *r, u64 items, u64 batch)
{
	u64 pseq = 0, cseq = 0;
	struct side *s = &sides[c->id];
	u64 consumer_sum = 0;
	while (cseq < items) {
		u64 before = c->ipi_count;
		ring_produce(r, c->id, &pseq, items, batch, &s->sum);
		notify(c, c);
		WAIT_EVENT(c->ipi_count > before);
		ring_consume(r, c->id, &cseq, batch, &consumer_sum, &s->bad);
	}
	if (consumer_sum != s->sum)
		guest_fail("VCPU %u alone: consumer checksum %lx, producer %lx", c->id, consumer_sum,
			   s->sum);
	s->count = cseq;
}

void workload_run(struct cpu *c)
{
	u64 items = arg(0), batch = arg(1);
	u32 p = c->id & ~1u;
	if (c->id + 1 == nr_cpus && c->id % 2 == 0)
		solo(c, rings[p], items, batch);
	else if (c->id % 2 == 0)
		produce(c, &cpus[c->id + 1], rings[p], items, batch);
	else
		consume(c, &cpus[p], rings[p], p, items, batch);
}

void workload_check(void)
{
	u64 items = arg(0);
	for (u32 i = 0; i < nr_cpus; i++) {
		if (sides[i].count != items || sides[i].bad)
			guest_fail("VCPU %u moved %lu items (%lu out of order), expected %lu", i,
				   sides[i].count, sides[i].bad, items);
		if (i % 2 == 1 && sides[i].sum != sides[i - 1].sum)
			guest_fail("pair %u: consumer checksum %lx, producer %lx", i - 1, sides[i].sum,
				   sides[i - 1].sum);
	}
	printf("ring: %u VCPUs, %lu items per pair, checksums match\n", nr_cpus, items);
}
