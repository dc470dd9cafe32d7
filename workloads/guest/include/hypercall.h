/*
 * Hypercalls through the hypercall page (xen-abi.md §1.2, §1.3): the number
 * selects a 32-byte stub, `call hypercall_page + nr*32`; arguments in RDI,
 * RSI, RDX, R10, R8; result in RAX. Every argument register is treated as
 * clobbered, and RCX/R11 too (the PV stub saves them, a VMCALL stub would
 * not need to: the clobber is harmless either way).
 */
#ifndef SMPSIM_HYPERCALL_H
#define SMPSIM_HYPERCALL_H
#include "types.h"

extern char hypercall_page[4096];

#define _hypercall5(nr, a1, a2, a3, a4, a5) \
	({ \
		long __res, __d, __s, __dx; \
		register long __r10 __asm__("r10") = (long)(a4); \
		register long __r8 __asm__("r8") = (long)(a5); \
		__asm__ __volatile__("call hypercall_page + %c[off]" \
				     : "=a"(__res), "=D"(__d), "=S"(__s), "=d"(__dx), \
				       "+r"(__r10), "+r"(__r8) \
				     : [off] "i"((nr) * 32), "1"((long)(a1)), "2"((long)(a2)), \
				       "3"((long)(a3)) \
				     : "memory", "cc", "rcx", "r11"); \
		__res; \
	})

#define HYPERVISOR_console_io(cmd, count, buf) \
	_hypercall5(__HYPERVISOR_console_io, cmd, count, buf, 0, 0)
#define HYPERVISOR_xen_version(cmd, arg) _hypercall5(__HYPERVISOR_xen_version, cmd, arg, 0, 0, 0)
#define HYPERVISOR_sched_op(cmd, arg) _hypercall5(__HYPERVISOR_sched_op, cmd, arg, 0, 0, 0)
#define HYPERVISOR_vcpu_op(cmd, vcpu, arg) _hypercall5(__HYPERVISOR_vcpu_op, cmd, vcpu, arg, 0, 0)
#define HYPERVISOR_event_channel_op(cmd, arg) \
	_hypercall5(__HYPERVISOR_event_channel_op, cmd, arg, 0, 0, 0)
#define HYPERVISOR_set_timer_op(ns) _hypercall5(__HYPERVISOR_set_timer_op, ns, 0, 0, 0, 0)
#define HYPERVISOR_callback_op(cmd, arg) _hypercall5(__HYPERVISOR_callback_op, cmd, arg, 0, 0, 0)
#define HYPERVISOR_set_callbacks(ev, fs, sc) \
	_hypercall5(__HYPERVISOR_set_callbacks, ev, fs, sc, 0, 0)
#define HYPERVISOR_set_trap_table(t) _hypercall5(__HYPERVISOR_set_trap_table, t, 0, 0, 0, 0)
#define HYPERVISOR_update_va_mapping(va, pte, flags) \
	_hypercall5(__HYPERVISOR_update_va_mapping, va, pte, flags, 0, 0)
/* smpsim-specific (not Xen): see xen.h. */
#define HYPERVISOR_smpsim_op(cmd, a1, a2, a3) _hypercall5(__HYPERVISOR_smpsim_op, cmd, a1, a2, a3, 0)

#endif
