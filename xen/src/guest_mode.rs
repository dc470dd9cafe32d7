//! Guest user mode (xen-abi.md §1.2, §2.6, §4.6): the switches between
//! guest kernel and user mode that Xen makes on the PV64 guest's behalf.
//!
//! - To user mode: the iret hypercall with a ring-3 CS in its frame.
//! - To kernel mode: SYSCALL from user mode (entering the registered
//!   syscall callback, [`Hypervisor::user_syscall`]), and every exception,
//!   software interrupt or event upcall taken in user mode (the bounce
//!   frame goes on the kernel stack from stack_switch,
//!   [`Hypervisor::enter_kernel`]).
//!
//! Each switch moves the VCPU to the other base pointer
//! ([`Hypervisor::set_guest_mode`]) and swaps the active GS base with the
//! inactive one, as Xen's `toggle_guest_mode` does with `swapgs`. The
//! [`Effect::NewRoot`] of a switch made outside a hypercall (exceptions,
//! upcalls) is queued; the machine takes it with
//! [`Hypervisor::take_deferred_effects`].

use crate::hypervisor::{Effect, Hypervisor, Next, Outcome};
use crate::ids::{DomainId, VcpuId};
use crate::memory::HypervisorMemory;
use crate::regs::{FLAT_KERNEL_CS, FLAT_KERNEL_SS};
use crate::upcall::{push_frame, Interrupted};
use smpsim_cores::arch::reg::{R11, RCX};
use smpsim_cores::ArchState;

impl Hypervisor {
    /// Whether VCPU `v` of `d` runs in guest user mode.
    pub fn in_user_mode(&self, d: DomainId, v: VcpuId) -> bool {
        self.active_root(d, v).1
    }

    /// Effects of mode switches made outside a hypercall, in order.
    pub fn take_deferred_effects(&mut self) -> Vec<Effect> {
        std::mem::take(&mut self.deferred)
    }

    /// Switches VCPU `v` to guest `user` mode (swapping GS bases) and
    /// returns the effect of the root change, if any.
    pub(crate) fn switch_mode(
        &mut self,
        d: DomainId,
        v: VcpuId,
        user: bool,
        regs: &mut ArchState,
    ) -> Option<Effect> {
        let pv = &mut self.vcpu_mut(d, v).pv;
        std::mem::swap(&mut regs.gs_base, &mut pv.shadow_gs);
        self.set_guest_mode(d, v, user)
    }

    /// Before a bounce frame: in user mode, switches to kernel mode
    /// (queueing the root change) and gives the kernel stack and the
    /// user's selectors; in kernel mode, the current stack. Under VMASST
    /// architectural_iopl the frame carries the virtual IOPL.
    pub(crate) fn enter_kernel(
        &mut self,
        d: DomainId,
        v: VcpuId,
        regs: &mut ArchState,
    ) -> Interrupted {
        const ARCH_IOPL: u64 = 1 << 4;
        let assist = self
            .domain(d)
            .is_some_and(|dom| dom.vm_assist & ARCH_IOPL != 0);
        let iopl = if assist {
            u64::from(self.vcpu_mut(d, v).pv.iopl) << 12
        } else {
            0
        };
        if !self.in_user_mode(d, v) {
            return Interrupted {
                iopl,
                ..Interrupted::kernel(regs)
            };
        }
        let e = self.switch_mode(d, v, false, regs);
        self.deferred.extend(e);
        let pv = &mut self.vcpu_mut(d, v).pv;
        let from = Interrupted {
            cs: u64::from(pv.sel.cs) | 3,
            ss: u64::from(pv.sel.ss) | 3,
            stack: pv.kernel_sp,
            iopl,
        };
        pv.sel.cs = FLAT_KERNEL_CS as u16;
        pv.sel.ss = FLAT_KERNEL_SS as u16;
        from
    }

    /// SYSCALL made in guest user mode: as the instruction does, RCX =
    /// the return RIP and R11 = RFLAGS; Xen then switches to kernel mode
    /// and bounces to the syscall callback on the kernel stack (events
    /// masked if it was registered with CALLBACKF_mask_events). No
    /// callback: #UD at the SYSCALL. `regs.rip` is past the SYSCALL.
    pub(crate) fn user_syscall(
        &mut self,
        d: DomainId,
        v: VcpuId,
        cycle: u64,
        regs: &mut ArchState,
        mem: &mut dyn HypervisorMemory,
    ) -> Outcome {
        const SYSCALL_LEN: u64 = 2;
        let cb = self.vcpu_mut(d, v).callbacks;
        if cb.syscall == 0 {
            regs.rip = regs.rip.wrapping_sub(SYSCALL_LEN);
            let up = self.exception(d, v, cycle, 6, None, None, regs, mem);
            return self.fault_outcome(up);
        }
        regs.gpr[RCX] = regs.rip;
        regs.gpr[R11] = regs.rflags;
        let mask_at = self
            .domain(d)
            .and_then(|dom| dom.event_layout(v))
            .map(|l| l.vcpu_info + crate::abi::vcpu_info::UPCALL_MASK);
        let saved = mask_at.map_or(1, |a| mem.read_u8(a));
        let from = self.enter_kernel(d, v, regs);
        if let Err(f) = push_frame(regs, mem, saved, None, cb.syscall, from) {
            let msg = format!(
                "{v}: user SYSCALL: cannot write the bounce frame at {:#x}",
                f.va
            );
            self.crash_domain(d, msg, cycle);
            return self.fault_outcome(crate::hypervisor::Upcall::Crashed);
        }
        if let (Some(a), true) = (mask_at, cb.syscall_masks) {
            mem.write_u8(a, 1);
        }
        self.fault_outcome(crate::hypervisor::Upcall::Delivered)
    }

    fn fault_outcome(&mut self, up: crate::hypervisor::Upcall) -> Outcome {
        let next = match up {
            crate::hypervisor::Upcall::Crashed => Next::Shutdown,
            _ => Next::Resume,
        };
        Outcome {
            next,
            effects: self.take_deferred_effects(),
        }
    }
}
