/*
 * Memory reservations and grant tables of the Xen PV64 interface, for the
 * workloads that balloon or move pages: numbers and layouts from
 * shared/xen-abi.md §4.7 and §4.8 (written from Xen's public memory.h and
 * grant_table.h; no code copied). Offsets are checked with static asserts
 * below. Not part of the runtime: only the workloads that use it include it.
 */
#ifndef SMPSIM_MEMORY_H
#define SMPSIM_MEMORY_H
#include "types.h"
#include "xen.h"
#include "hypercall.h"

#define __HYPERVISOR_memory_op 12
#define __HYPERVISOR_grant_table_op 20

#define HYPERVISOR_memory_op(cmd, arg) _hypercall5(__HYPERVISOR_memory_op, cmd, arg, 0, 0, 0)
#define HYPERVISOR_grant_table_op(cmd, ops, count) \
	_hypercall5(__HYPERVISOR_grant_table_op, cmd, ops, count, 0, 0)

/* memory_op commands (§4.7). 0, 1 and 6 return the extents done. */
#define XENMEM_increase_reservation 0
#define XENMEM_decrease_reservation 1
#define XENMEM_current_reservation 3
#define XENMEM_maximum_reservation 4
#define XENMEM_populate_physmap 6

#define INVALID_P2M_ENTRY (~0ul)
#define INVALID_M2P_ENTRY (~0ul)
/* The read-only M2P every PV64 guest sees (MACH2PHYS_VIRT_START). */
#define MACHINE_TO_PHYS ((const volatile u64 *)0xffff800000000000ul)

struct xen_memory_reservation {
	u64 extent_start; /* guest pointer to an array of u64 frame numbers */
	u64 nr_extents;
	u32 extent_order;
	u32 mem_flags;
	u16 domid;
	u16 pad[3];
};

/* grant_table_op commands (§4.8). */
#define GNTTABOP_setup_table 2
#define GNTTABOP_transfer 4

#define GTF_accept_transfer 2
#define GTF_transfer_committed (1 << 2)
#define GTF_transfer_completed (1 << 3)

#define GNTST_okay 0
#define GNTST_general_error (-1)
#define GNTST_bad_domain (-2)
#define GNTST_bad_page (-9)

/* The first entries are the toolstack's (console, xenstore). */
#define GNTTAB_NR_RESERVED_ENTRIES 8

struct grant_entry_v1 {
	volatile u16 flags;
	volatile u16 domid;
	volatile u32 frame; /* accept_transfer: the PFN; Xen writes the MFN */
};

struct gnttab_setup_table {
	u16 dom;
	u16 pad0;
	u32 nr_frames;
	s16 status; /* OUT */
	u16 pad1[3];
	u64 frame_list; /* guest pointer to u64[nr_frames], OUT */
};

struct gnttab_transfer {
	u64 mfn;
	u16 domid;
	u16 pad0;
	u32 ref;
	s16 status; /* OUT */
	u16 pad1[3];
};

static inline long memory_reservation(u32 cmd, u64 *list, u64 n)
{
	struct xen_memory_reservation r = {
		.extent_start = (u64)list, .nr_extents = n, .domid = DOMID_SELF
	};
	return HYPERVISOR_memory_op(cmd, &r);
}

static inline long memory_query(u32 cmd)
{
	u16 dom = DOMID_SELF;
	return HYPERVISOR_memory_op(cmd, &dom);
}

STATIC_ASSERT(sizeof(struct xen_memory_reservation) == 32, "xen_memory_reservation");
STATIC_ASSERT(offsetof(struct xen_memory_reservation, domid) == 24, "reservation.domid");
STATIC_ASSERT(sizeof(struct grant_entry_v1) == 8, "grant_entry_v1");
STATIC_ASSERT(sizeof(struct gnttab_setup_table) == 24, "gnttab_setup_table");
STATIC_ASSERT(offsetof(struct gnttab_setup_table, frame_list) == 16, "setup_table.frame_list");
STATIC_ASSERT(sizeof(struct gnttab_transfer) == 24, "gnttab_transfer");
STATIC_ASSERT(offsetof(struct gnttab_transfer, status) == 16, "transfer.status");

#endif
