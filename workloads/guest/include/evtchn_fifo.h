/*
 * The FIFO event-channel ABI, guest side (xen-abi.md §3.5; Xen's
 * public/event_channel.h is the authority for the layouts). The runtime
 * speaks the 2-level ABI; a workload that switches its domain to FIFO
 * includes this header after rt.h and brings its own consumer.
 *
 * Event words live in guest pages handed to Xen with EVTCHNOP_expand_array
 * (1024 per page, port p in page p / 1024); each VCPU registers a control
 * block (ready bits and one queue head per priority) with
 * EVTCHNOP_init_control. Xen sets PENDING and, for an unmasked word that is
 * not LINKED yet, links the port at the tail of (notified VCPU, priority)
 * and sets the queue's ready bit. The word helpers below are the atomic
 * steps of the consumer protocol (Linux drivers/xen/events/events_fifo.c
 * follows the same protocol).
 */
#ifndef SMPSIM_EVTCHN_FIFO_H
#define SMPSIM_EVTCHN_FIFO_H
#include "types.h"
#include "lock.h"

#define EVTCHNOP_init_control 11
#define EVTCHNOP_expand_array 12
#define EVTCHNOP_set_priority 13

#define EVTCHN_FIFO_PRIORITY_MAX 0      /* highest */
#define EVTCHN_FIFO_PRIORITY_DEFAULT 7
#define EVTCHN_FIFO_PRIORITY_MIN 15     /* lowest */
#define EVTCHN_FIFO_MAX_QUEUES 16       /* one per priority */
#define EVTCHN_FIFO_LINK_BITS 17
#define EVTCHN_FIFO_NR_CHANNELS (1u << EVTCHN_FIFO_LINK_BITS)
#define EVTCHN_FIFO_EVENT_WORDS_PER_PAGE 1024

/* Bits of an event word. */
#define EVTCHN_FIFO_PENDING 31
#define EVTCHN_FIFO_MASKED 30
#define EVTCHN_FIFO_LINKED 29
#define EVTCHN_FIFO_BUSY 28 /* Xen is writing the LINK field */
#define EVTCHN_FIFO_LINK_MASK ((1u << EVTCHN_FIFO_LINK_BITS) - 1)

typedef u32 event_word_t;

struct evtchn_init_control {
	u64 control_gfn; /* IN: frame of the control block (the MFN for PV) */
	u32 offset;      /* IN: byte offset in it, 8-aligned, block within the page */
	u32 vcpu;        /* IN */
	u8 link_bits;    /* OUT */
	u8 pad[7];
};

struct evtchn_expand_array {
	u64 array_gfn; /* IN: one more page of event words */
};

struct evtchn_set_priority {
	u32 port;
	u32 priority; /* 0 highest .. 15 lowest */
};

struct evtchn_fifo_control_block {
	u32 ready; /* bit q: queue q may be non-empty */
	u32 rsvd;
	u32 head[EVTCHN_FIFO_MAX_QUEUES]; /* written by Xen when a queue was empty */
};

STATIC_ASSERT(sizeof(struct evtchn_init_control) == 24, "init_control");
STATIC_ASSERT(sizeof(struct evtchn_expand_array) == 8, "expand_array");
STATIC_ASSERT(sizeof(struct evtchn_set_priority) == 8, "set_priority");
STATIC_ASSERT(sizeof(struct evtchn_fifo_control_block) == 72, "control_block");

static inline u32 fifo_cmpxchg(volatile event_word_t *w, u32 old, u32 new)
{
	u32 prev;
	__asm__ __volatile__("lock cmpxchgl %2, %1"
			     : "=a"(prev), "+m"(*w)
			     : "r"(new), "0"(old)
			     : "memory", "cc");
	return prev;
}

static inline void fifo_clear_bit(volatile event_word_t *w, unsigned b)
{
	__asm__ __volatile__("lock btrl %1, %0" : "+m"(*w) : "r"(b) : "memory", "cc");
}

static inline int fifo_test_bit(volatile event_word_t *w, unsigned b)
{
	return (READ_ONCE(*w) >> b) & 1;
}

/*
 * Take a port off its queue: clear LINKED and the LINK field in one atomic
 * step (Xen may be writing LINK concurrently, so a plain store could lose
 * the next port). Returns the next port of the queue, 0 at the tail.
 */
static inline u32 fifo_clear_linked(volatile event_word_t *w)
{
	u32 v = READ_ONCE(*w);
	for (;;) {
		u32 n = v & ~((1u << EVTCHN_FIFO_LINKED) | EVTCHN_FIFO_LINK_MASK);
		u32 prev = fifo_cmpxchg(w, v, n);
		if (prev == v)
			return v & EVTCHN_FIFO_LINK_MASK;
		v = prev;
	}
}

/*
 * Unmask without a hypercall when nothing is pending: clear MASKED unless
 * PENDING is set (then Xen must link the port: EVTCHNOP_unmask), never
 * while Xen holds BUSY. Returns 1 when the caller must make the hypercall.
 */
static inline int fifo_clear_masked_needs_unmask(volatile event_word_t *w)
{
	u32 v = READ_ONCE(*w);
	for (;;) {
		if (!(v & (1u << EVTCHN_FIFO_MASKED)))
			return 0;
		if (v & (1u << EVTCHN_FIFO_PENDING))
			return 1;
		u32 old = v & ~(1u << EVTCHN_FIFO_BUSY);
		u32 prev = fifo_cmpxchg(w, old, old & ~(1u << EVTCHN_FIFO_MASKED));
		if (prev == old)
			return 0;
		v = prev;
	}
}

#endif
