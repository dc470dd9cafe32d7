/*
 * Grant tables, version 1 (shared/xen-abi.md §4.8; layouts written from
 * Xen's public/grant_table.h, no code copied; sizes checked below), and
 * the few granter-side helpers a PV frontend needs: publish an entry,
 * end it with the cmpxchg Xen's rules require. Header-only, so the
 * runtime (linked into every image) does not change.
 */
#ifndef SMPSIM_GNTTAB_H
#define SMPSIM_GNTTAB_H
#include "types.h"
#include "hypercall.h"
#include "lock.h"

#define __HYPERVISOR_grant_table_op 20
#define HYPERVISOR_grant_table_op(cmd, ops, count) \
	_hypercall5(__HYPERVISOR_grant_table_op, cmd, ops, count, 0, 0)

/* GNTTABOP_* commands. */
#define GNTTABOP_map_grant_ref 0
#define GNTTABOP_unmap_grant_ref 1
#define GNTTABOP_setup_table 2
#define GNTTABOP_query_size 6

/* grant_entry_v1.flags: type in bits 0-1, then access sub-flags. */
#define GTF_invalid 0
#define GTF_permit_access 1
#define GTF_type_mask 3
#define GTF_readonly (1u << 2) /* guest: the grantee may only read */
#define GTF_reading (1u << 3)  /* Xen: mapped (or being read) */
#define GTF_writing (1u << 4)  /* Xen: mapped writable (or being written) */

/* gnttab_map_grant_ref.flags. */
#define GNTMAP_device_map (1u << 0)
#define GNTMAP_host_map (1u << 1)
#define GNTMAP_readonly (1u << 2)

/* Per-op status. */
#define GNTST_okay 0
#define GNTST_general_error (-1)
#define GNTST_bad_domain (-2)
#define GNTST_bad_gntref (-3)
#define GNTST_bad_handle (-4)
#define GNTST_permission_denied (-8)

/* Entries 0-7 are reserved (console, xenstore, ...). */
#define GNTTAB_NR_RESERVED_ENTRIES 8
#define GNTTAB_ENTRIES_PER_FRAME 512

typedef u32 grant_ref_t;
typedef u32 grant_handle_t;

struct grant_entry_v1 {
	volatile u16 flags; /* GTF_*: written last when granting */
	volatile u16 domid; /* the grantee */
	volatile u32 frame; /* GFN shared (the MFN on PV) */
};

struct gnttab_setup_table {
	u16 dom; /* DOMID_SELF */
	u32 nr_frames;
	s16 status;      /* OUT */
	u64 frame_list;  /* u64 *: OUT, nr_frames GFNs (MFNs on PV) */
};

struct gnttab_query_size {
	u16 dom;
	u32 nr_frames;     /* OUT */
	u32 max_nr_frames; /* OUT */
	s16 status;        /* OUT */
};

struct gnttab_map_grant_ref {
	u64 host_addr;  /* VA to map at (GNTMAP_host_map) */
	u32 flags;      /* GNTMAP_* */
	grant_ref_t ref;
	u16 dom;        /* the granter */
	s16 status;     /* OUT: GNTST_* */
	grant_handle_t handle; /* OUT */
	u64 dev_bus_addr;      /* OUT */
};

struct gnttab_unmap_grant_ref {
	u64 host_addr;
	u64 dev_bus_addr;
	grant_handle_t handle;
	s16 status; /* OUT */
};

STATIC_ASSERT(sizeof(struct grant_entry_v1) == 8, "grant_entry_v1");
STATIC_ASSERT(sizeof(struct gnttab_setup_table) == 24, "gnttab_setup_table");
STATIC_ASSERT(offsetof(struct gnttab_setup_table, frame_list) == 16, "setup_table.frame_list");
STATIC_ASSERT(sizeof(struct gnttab_query_size) == 16, "gnttab_query_size");
STATIC_ASSERT(sizeof(struct gnttab_map_grant_ref) == 32, "gnttab_map_grant_ref");
STATIC_ASSERT(offsetof(struct gnttab_map_grant_ref, status) == 18, "map.status");
STATIC_ASSERT(offsetof(struct gnttab_map_grant_ref, handle) == 20, "map.handle");
STATIC_ASSERT(sizeof(struct gnttab_unmap_grant_ref) == 24, "gnttab_unmap_grant_ref");
STATIC_ASSERT(offsetof(struct gnttab_unmap_grant_ref, status) == 20, "unmap.status");

/* Publishes entry e: domid and frame first, then (after a barrier) flags. */
static inline void gnttab_grant(struct grant_entry_v1 *e, u16 domid, u64 frame, int readonly)
{
	e->domid = domid;
	e->frame = (u32)frame;
	compiler_barrier(); /* x86-TSO keeps the stores in order */
	e->flags = (u16)(GTF_permit_access | (readonly ? GTF_readonly : 0));
}

/* Atomically replaces *p with `new` if it holds `old`; returns what it held. */
static inline u16 cmpxchg_u16(volatile u16 *p, u16 old, u16 new)
{
	__asm__ __volatile__("lock cmpxchgw %2, %1" : "+a"(old), "+m"(*p) : "r"(new) : "memory");
	return old;
}

/*
 * Ends the grant in entry e (Xen's rule for v1: clear the flags with a
 * cmpxchg only while neither GTF_reading nor GTF_writing is set). Returns
 * 1 when ended, 0 while the grantee still maps it (flags left as they are).
 */
static inline int gnttab_end_access(struct grant_entry_v1 *e)
{
	u16 f = e->flags, seen;
	for (;;) {
		if (f & (GTF_reading | GTF_writing))
			return 0;
		seen = cmpxchg_u16(&e->flags, f, 0);
		if (seen == f)
			return 1;
		f = seen;
	}
}

#endif
