/*
 * Guest-measured latency samples, batched per VCPU and handed to the
 * simulator with the smpsim-specific smpsim_op(RECORD_SAMPLES) hypercall
 * (see rt.h). lat_record() (inline in rt.h) only appends while the batch
 * has room; one hypercall per LAT_BATCH samples keeps the cost to the
 * measured code at a few instructions per sample.
 */
#include "rt.h"

_Static_assert(LAT_BATCH <= SMPSIMOP_MAX_SAMPLES, "a batch fits one hypercall");

static volatile int lat_unsupported; /* the hypervisor said -ENOSYS */

static void flush(struct lat_buf *b)
{
	u32 n = b->n;
	b->n = 0;
	if (!n || lat_unsupported)
		return;
	long rc = HYPERVISOR_smpsim_op(SMPSIMOP_record_samples, b->id, b->s, n);
	if (rc == -XEN_ENOSYS)
		WRITE_ONCE(lat_unsupported, 1);
	else if (rc < 0)
		guest_fail("smpsim_op(record_samples, id %u, %u samples) returned %ld", b->id, n,
			   rc);
}

void lat_record_slow(u32 id, u64 cycles)
{
	struct cpu *c = this_cpu();
	struct lat_buf *b = c->lat;
	if (lat_unsupported)
		return;
	if (!b) {
		b = heap_alloc_raw(sizeof(*b), CACHELINE);
		b->n = 0;
		c->lat = b;
	}
	if (b->n && b->id != id)
		flush(b);
	b->id = id;
	b->s[b->n++] = cycles;
	if (b->n == LAT_BATCH)
		flush(b);
}

void lat_flush(void)
{
	struct lat_buf *b = this_cpu()->lat;
	if (b)
		flush(b);
}
