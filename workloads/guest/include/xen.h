/*
 * Xen PV64 interface: numbers and layouts from shared/xen-abi.md
 * (written from Xen's public headers; no code copied). Offsets are checked
 * with static asserts below.
 */
#ifndef SMPSIM_XEN_H
#define SMPSIM_XEN_H
#include "types.h"

/* Hypercall numbers (xen-abi.md §1.1). */
#define __HYPERVISOR_set_trap_table 0
#define __HYPERVISOR_set_callbacks 4
#define __HYPERVISOR_update_va_mapping 14
#define __HYPERVISOR_set_timer_op 15
#define __HYPERVISOR_xen_version 17
#define __HYPERVISOR_console_io 18
#define __HYPERVISOR_iret 23
#define __HYPERVISOR_vcpu_op 24
#define __HYPERVISOR_sched_op 29
#define __HYPERVISOR_callback_op 30
#define __HYPERVISOR_event_channel_op 32
/* smpsim-specific, NOT Xen: 56 is unassigned in Xen's table (a real Xen
 * returns -ENOSYS). smpsim_op(cmd, ...); see smpsim-xen's abi::smpsimop. */
#define __HYPERVISOR_smpsim_op 56
/* smpsim_op(RECORD_SAMPLES, u32 histogram, const u64 *samples, u32 count):
 * count <= SMPSIMOP_MAX_SAMPLES; -EINVAL bad id/count, -EFAULT bad pointer. */
#define SMPSIMOP_record_samples 0
#define SMPSIMOP_MAX_SAMPLES 512
/* smpsim_op(ROI, u32 phase): region-of-interest marker, a hint to the
 * simulator (it switches the timing model at its next service tick).
 * phase 1 = begin, 0 = end; returns 0, -EINVAL for another phase. */
#define SMPSIMOP_roi 1
#define SMPSIMOP_ROI_END 0
#define SMPSIMOP_ROI_BEGIN 1

/* Errors (negated in RAX), Appendix C. */
#define XEN_EPERM 1
#define XEN_ENOENT 2
#define XEN_EINVAL 22
#define XEN_EEXIST 17
#define XEN_EBUSY 16
#define XEN_ENOSYS 38

#define CONSOLEIO_write 0
#define XENVER_version 0

/* sched_op (§4.1). */
#define SCHEDOP_yield 0
#define SCHEDOP_block 1
#define SCHEDOP_shutdown 2
#define SCHEDOP_poll 3
#define SHUTDOWN_poweroff 0
#define SHUTDOWN_crash 3

struct sched_shutdown {
	u32 reason;
};
struct sched_poll {
	u32 *ports; /* guest pointer, 8 bytes */
	u32 nr_ports;
	u32 pad;
	u64 timeout; /* absolute system time in ns; 0 = none */
};

/* vcpu_op (§4.2). */
#define VCPUOP_initialise 0
#define VCPUOP_up 1
#define VCPUOP_down 2
#define VCPUOP_is_up 3
#define VCPUOP_set_periodic_timer 6
#define VCPUOP_stop_periodic_timer 7
#define VCPUOP_set_singleshot_timer 8
#define VCPUOP_stop_singleshot_timer 9
#define VCPUOP_register_vcpu_info 10

struct vcpu_set_periodic_timer {
	u64 period_ns;
};
struct vcpu_set_singleshot_timer {
	u64 timeout_abs_ns;
	u32 flags;
	u32 pad;
};
struct vcpu_register_vcpu_info {
	u64 mfn;
	u32 offset;
	u32 rsvd;
};

/* callback_op (§4.6). */
#define CALLBACKOP_register 0
#define CALLBACKTYPE_event 0
#define CALLBACKTYPE_failsafe 1
struct callback_register {
	u16 type;
	u16 flags;
	u32 pad;
	u64 address;
};

/* event_channel_op (§3.1). */
#define EVTCHNOP_bind_interdomain 0
#define EVTCHNOP_bind_virq 1
#define EVTCHNOP_close 3
#define EVTCHNOP_send 4
#define EVTCHNOP_status 5
#define EVTCHNOP_alloc_unbound 6
#define EVTCHNOP_bind_ipi 7
#define EVTCHNOP_bind_vcpu 8
#define EVTCHNOP_unmask 9
#define DOMID_SELF 0x7FF0
#define VIRQ_TIMER 0
#define NR_EVENT_CHANNELS 4096 /* 2-level, x86-64 */

struct evtchn_alloc_unbound {
	u16 dom, remote_dom;
	u32 port; /* OUT */
};
struct evtchn_bind_interdomain {
	u16 remote_dom, pad;
	u32 remote_port;
	u32 local_port; /* OUT */
};
struct evtchn_bind_virq {
	u32 virq, vcpu;
	u32 port; /* OUT */
};
struct evtchn_bind_ipi {
	u32 vcpu;
	u32 port; /* OUT */
};
struct evtchn_bind_vcpu {
	u32 port, vcpu;
};
struct evtchn_port_op {
	u32 port; /* close, send, unmask */
};

/* Shared structures (§2). */
struct vcpu_time_info {
	u32 version;
	u32 pad0;
	u64 tsc_timestamp;
	u64 system_time;
	u32 tsc_to_system_mul;
	s8 tsc_shift;
	u8 flags;
	u8 pad1[2];
};

struct vcpu_info {
	u8 evtchn_upcall_pending;
	u8 evtchn_upcall_mask;
	u8 pad[6];
	u64 evtchn_pending_sel;
	u64 cr2;
	u64 arch_pad;
	struct vcpu_time_info time;
};

#define XEN_LEGACY_MAX_VCPUS 32
struct shared_info {
	struct vcpu_info vcpu_info[XEN_LEGACY_MAX_VCPUS];
	u64 evtchn_pending[64];
	u64 evtchn_mask[64];
	u32 wc_version, wc_sec, wc_nsec, wc_sec_hi;
	u64 max_pfn, pfn_to_mfn_frame_list_list, nmi_reason, p2m_cr3, p2m_vaddr, p2m_generation;
};

struct start_info {
	char magic[32];
	u64 nr_pages;
	u64 shared_info; /* machine address */
	u32 flags, pad;
	u64 store_mfn;
	u32 store_evtchn, pad2;
	u64 console_mfn;
	u32 console_evtchn, pad3;
	u64 pt_base;
	u64 nr_pt_frames;
	u64 mfn_list;
	u64 mod_start;
	u64 mod_len;
	char cmd_line[1024];
	u64 first_p2m_pfn;
	u64 nr_p2m_frames;
};

struct trap_info {
	u8 vector;
	u8 flags;
	u16 cs;
	u32 pad;
	u64 address;
};

struct cpu_user_regs {
	u64 r15, r14, r13, r12, rbp, rbx, r11, r10, r9, r8, rax, rcx, rdx, rsi, rdi;
	u32 error_code, entry_vector;
	u64 rip;
	u16 cs, pad0;
	u8 saved_upcall_mask, pad1[3];
	u64 rflags, rsp;
	u16 ss, pad2[3];
	u16 es, pad3[3];
	u16 ds, pad4[3];
	u16 fs, pad5[3];
	u16 gs, pad6[3];
};

#define VGCF_in_kernel (1 << 2)
#define VGCF_online (1 << 5)
struct vcpu_guest_context {
	u8 fpu_ctxt[512];
	u64 flags;
	struct cpu_user_regs user_regs;
	struct trap_info trap_ctxt[256];
	u64 ldt_base, ldt_ents;
	u64 gdt_frames[16];
	u64 gdt_ents;
	u64 kernel_ss, kernel_sp;
	u64 ctrlreg[8];
	u64 debugreg[8];
	u64 event_callback_eip, failsafe_callback_eip, syscall_callback_eip;
	u64 vm_assist;
	u64 fs_base, gs_base_kernel, gs_base_user;
};

#define FLAT_KERNEL_CS 0xe033
#define FLAT_KERNEL_SS 0xe02b
#define FLAT_KERNEL_DS 0xe02b
#define UVMF_INVLPG 2

STATIC_ASSERT(sizeof(struct vcpu_time_info) == 32, "vcpu_time_info");
STATIC_ASSERT(sizeof(struct vcpu_info) == 64, "vcpu_info");
STATIC_ASSERT(offsetof(struct vcpu_info, time) == 32, "vcpu_info.time");
STATIC_ASSERT(offsetof(struct shared_info, evtchn_pending) == 2048, "shared_info.pending");
STATIC_ASSERT(offsetof(struct shared_info, evtchn_mask) == 2560, "shared_info.mask");
STATIC_ASSERT(offsetof(struct shared_info, wc_version) == 3072, "shared_info.wc");
STATIC_ASSERT(sizeof(struct shared_info) == 3136, "shared_info");
STATIC_ASSERT(offsetof(struct start_info, pt_base) == 88, "start_info.pt_base");
STATIC_ASSERT(offsetof(struct start_info, mfn_list) == 104, "start_info.mfn_list");
STATIC_ASSERT(offsetof(struct start_info, cmd_line) == 128, "start_info.cmd_line");
STATIC_ASSERT(sizeof(struct start_info) == 1168, "start_info");
STATIC_ASSERT(sizeof(struct cpu_user_regs) == 200, "cpu_user_regs");
STATIC_ASSERT(offsetof(struct cpu_user_regs, rip) == 128, "cpu_user_regs.rip");
STATIC_ASSERT(offsetof(struct cpu_user_regs, saved_upcall_mask) == 140, "regs.mask");
STATIC_ASSERT(offsetof(struct cpu_user_regs, ss) == 160, "cpu_user_regs.ss");
STATIC_ASSERT(offsetof(struct vcpu_guest_context, user_regs) == 520, "ctx.user_regs");
STATIC_ASSERT(offsetof(struct vcpu_guest_context, trap_ctxt) == 720, "ctx.trap_ctxt");
STATIC_ASSERT(offsetof(struct vcpu_guest_context, gdt_ents) == 4960, "ctx.gdt_ents");
STATIC_ASSERT(offsetof(struct vcpu_guest_context, ctrlreg) == 4984, "ctx.ctrlreg");
STATIC_ASSERT(offsetof(struct vcpu_guest_context, event_callback_eip) == 5112, "ctx.event_cb");
STATIC_ASSERT(offsetof(struct vcpu_guest_context, gs_base_kernel) == 5152, "ctx.gs_base_kernel");
STATIC_ASSERT(sizeof(struct vcpu_guest_context) == 5168, "vcpu_guest_context");
STATIC_ASSERT(sizeof(struct sched_poll) == 24, "sched_poll");
STATIC_ASSERT(sizeof(struct callback_register) == 16, "callback_register");
STATIC_ASSERT(sizeof(struct trap_info) == 16, "trap_info");
STATIC_ASSERT(sizeof(struct evtchn_bind_interdomain) == 12, "bind_interdomain");
STATIC_ASSERT(sizeof(struct evtchn_alloc_unbound) == 8, "alloc_unbound");
STATIC_ASSERT(sizeof(struct vcpu_register_vcpu_info) == 16, "register_vcpu_info");

#endif
