/*
 * Single-producer single-consumer ring over shared memory: the data path of
 * the ring and interdomain workloads (notification is the caller's job).
 * Pure code: the host tests run it with two threads. Indices are
 * free-running; x86-TSO orders the slot stores before the index store.
 */
#ifndef SMPSIM_RING_H
#define SMPSIM_RING_H
#include "types.h"
#include "lock.h"
#include "pure.h"

struct ring {
	volatile u64 prod;
	u64 pad0[7];
	volatile u64 cons;
	u64 pad1[7];
	u64 size; /* slots, a power of two */
	u64 pad2[7];
	u64 slots[];
};

static inline u64 ring_bytes(u64 size)
{
	return sizeof(struct ring) + size * sizeof(u64);
}

static inline void ring_init(struct ring *r, u64 size)
{
	r->prod = 0;
	r->cons = 0;
	r->size = size;
}

static inline u64 ring_space(struct ring *r)
{
	return r->size - (READ_ONCE(r->prod) - READ_ONCE(r->cons));
}

static inline u64 ring_avail(struct ring *r)
{
	return READ_ONCE(r->prod) - READ_ONCE(r->cons);
}

/* Writes up to `batch` of the items [*seq, total) of `stream`; returns how
 * many, and adds their values to *sum. */
static inline u64 ring_produce(struct ring *r, u64 stream, u64 *seq, u64 total, u64 batch,
			       u64 *sum)
{
	u64 n = ring_space(r);
	if (n > batch)
		n = batch;
	if (n > total - *seq)
		n = total - *seq;
	u64 p = r->prod;
	for (u64 i = 0; i < n; i++) {
		u64 v = ring_value(stream, *seq + i);
		r->slots[(p + i) & (r->size - 1)] = v;
		*sum += v;
	}
	compiler_barrier();
	WRITE_ONCE(r->prod, p + n);
	*seq += n;
	return n;
}

/* Reads up to `batch` items, checking each against ring_value(stream, seq);
 * counts mismatches in *bad and adds the values to *sum. */
static inline u64 ring_consume(struct ring *r, u64 stream, u64 *seq, u64 batch, u64 *sum,
			       u64 *bad)
{
	u64 n = ring_avail(r);
	if (n > batch)
		n = batch;
	u64 c = r->cons;
	compiler_barrier();
	for (u64 i = 0; i < n; i++) {
		u64 v = r->slots[(c + i) & (r->size - 1)];
		if (v != ring_value(stream, *seq + i))
			(*bad)++;
		*sum += v;
	}
	compiler_barrier();
	WRITE_ONCE(r->cons, c + n);
	*seq += n;
	return n;
}

#endif
