//! The PV CPU hypercalls (xen-abi.md §1.1, §4.2, §4.9): set_gdt (2),
//! stack_switch (3), fpu_taskswitch (5), set_debugreg (8), get_debugreg
//! (9), update_descriptor (10), vm_assist (21), set_segment_base (25),
//! physdev_op (33: set_iopl, set_iobitmap), and vcpu_op's run-state calls
//! (get_runstate_info, register_runstate_memory_area).
//!
//! # Choices
//! - set_gdt takes frames the domain owns; Xen also gives them the
//!   "segment descriptor page" type, which fails while a writable mapping
//!   of the frame exists. That check belongs to the PV MMU's type counts
//!   (`crate::mmu`) and is not made here yet.
//! - physdev_op: a domU without passthrough has no PIRQs or devices; the
//!   operations that need them return -ENOSYS as a Xen built without
//!   passthrough support would (set_iopl and set_iobitmap work).
//! - Run state: a VCPU that is up and not blocked is "running" (smpsim
//!   gives each VCPU its own context, so "runnable" never occurs). It
//!   changes at block/poll, VCPUOP_down and bring-up, and back to running
//!   at the first upcall offer after a wake (the machine makes one
//!   wherever a VCPU resumes); the registered area is rewritten at each
//!   hypercall of the VCPU and at every read, not at every change.

use super::{ok, u16_at, u32_at, u64_at, Call, HResult, Ret};
use crate::abi::Errno;
use crate::debug::set_debugreg;
use crate::ids::{Mfn, VcpuId};
use crate::pvcpu::{self, check_descriptor, PvCpu};
use crate::regs::is_canonical;
use crate::vcpu::RunState;

/// Hypercall numbers of this file (§1.1).
pub mod nr {
    /// `set_gdt(frames, entries)`.
    pub const SET_GDT: u64 = 2;
    /// `stack_switch(ss, sp)`.
    pub const STACK_SWITCH: u64 = 3;
    /// `fpu_taskswitch(set)`.
    pub const FPU_TASKSWITCH: u64 = 5;
    /// `set_debugreg(reg, value)`.
    pub const SET_DEBUGREG: u64 = 8;
    /// `get_debugreg(reg)`.
    pub const GET_DEBUGREG: u64 = 9;
    /// `update_descriptor(maddr, desc)`.
    pub const UPDATE_DESCRIPTOR: u64 = 10;
    /// `set_segment_base(which, base)`.
    pub const SET_SEGMENT_BASE: u64 = 25;
    /// `physdev_op(cmd, arg)`.
    pub const PHYSDEV_OP: u64 = 33;
}

/// `set_segment_base` selectors.
pub mod segbase {
    /// FS base.
    pub const FS: u32 = 0;
    /// User GS base.
    pub const GS_USER: u32 = 1;
    /// Kernel GS base.
    pub const GS_KERNEL: u32 = 2;
    /// Load the user GS selector (bits 15–0 of the base argument).
    pub const GS_USER_SEL: u32 = 3;
}

/// `PHYSDEVOP_*`.
pub mod physdevop {
    /// `{u32 iopl}`: set the virtual IOPL.
    pub const SET_IOPL: u32 = 6;
    /// `{u64 bitmap; u32 nr_ports}`: the I/O bitmap.
    pub const SET_IOBITMAP: u32 = 7;
}

/// `VCPUOP_get_runstate_info`.
pub const VCPUOP_GET_RUNSTATE_INFO: u32 = 4;
/// `VCPUOP_register_runstate_memory_area`.
pub const VCPUOP_REGISTER_RUNSTATE_MEMORY_AREA: u32 = 5;

/// vm_assist types Xen supports for a PV64 guest (its
/// `NATIVE_VM_ASSIST_VALID`): 4gb_segments, 4gb_segments_notify,
/// writable_pagetables, pae_extended_cr3, architectural_iopl,
/// runstate_update_flag, m2p_strict.
const VM_ASSIST_VALID: u64 = 0x3f | 1 << 32;

impl Call<'_> {
    /// Dispatch of this file's hypercalls; None for another number.
    pub(super) fn pvcpu_dispatch(&mut self, number: u64, a: [u64; 5]) -> Option<HResult> {
        use crate::regs::low32;
        Some(match number {
            nr::SET_GDT => self.set_gdt(a[0], low32(a[1])),
            nr::STACK_SWITCH => self.stack_switch(a[0], a[1]),
            nr::FPU_TASKSWITCH => {
                self.pv().cr0_ts = low32(a[0]) != 0;
                ok()
            }
            nr::SET_DEBUGREG => self.set_debugreg(low32(a[0]), a[1]),
            nr::GET_DEBUGREG => self.get_debugreg(low32(a[0])),
            nr::UPDATE_DESCRIPTOR => self.update_descriptor(a[0], a[1]),
            crate::abi::hypercall::VM_ASSIST => self.vm_assist(low32(a[0]), low32(a[1])),
            nr::SET_SEGMENT_BASE => self.set_segment_base(low32(a[0]), a[1]),
            nr::PHYSDEV_OP => self.physdev_op(low32(a[0]), a[1]),
            _ => return None,
        })
    }

    fn pv(&mut self) -> &mut PvCpu {
        &mut self.hv.vcpu_mut(self.d, self.v).pv
    }

    fn owns(&self, mfn: Mfn) -> bool {
        self.hv.domain(self.d).is_some_and(|dom| dom.owns(mfn))
    }

    /// `set_gdt(frames, entries)`: at most 7168 entries in frames the
    /// domain owns, every descriptor valid (DPL fixups written back);
    /// -EINVAL otherwise, -EFAULT for an unreadable list.
    fn set_gdt(&mut self, list: u64, entries: u32) -> HResult {
        if entries > pvcpu::FIRST_RESERVED_GDT_ENTRY {
            return Err(Errno::Inval);
        }
        let nr = entries.div_ceil(pvcpu::DESCS_PER_FRAME) as usize;
        let b = self.read(list, 8 * nr)?;
        let frames: Vec<Mfn> = (0..nr).map(|i| Mfn(u64_at(&b, 8 * i))).collect();
        let mut pv = self.pv().clone();
        self.load_gdt(&mut pv, frames, entries)?;
        *self.pv() = pv;
        ok()
    }

    /// Validates a GDT of `entries` in `frames` (frames the domain owns,
    /// every descriptor acceptable, DPL fixups written back) and installs
    /// it in `pv`.
    fn load_gdt(&mut self, pv: &mut PvCpu, frames: Vec<Mfn>, entries: u32) -> Result<(), Errno> {
        if entries > pvcpu::FIRST_RESERVED_GDT_ENTRY
            || frames.len() < entries.div_ceil(pvcpu::DESCS_PER_FRAME) as usize
            || !frames.iter().all(|&m| self.owns(m))
        {
            return Err(Errno::Inval);
        }
        let mut fixed = Vec::new();
        for i in 0..entries {
            let ma = frames[(i / pvcpu::DESCS_PER_FRAME) as usize]
                .addr(u64::from(i % pvcpu::DESCS_PER_FRAME) * 8)
                .get();
            let d = self.mem.read_ma_u64(ma);
            fixed.push((ma, check_descriptor(d).ok_or(Errno::Inval)?));
        }
        for (ma, d) in fixed {
            self.mem.write_ma_u64(ma, d);
        }
        pv.gdt_frames = frames;
        pv.gdt_entries = entries;
        Ok(())
    }

    /// The PV CPU half of VCPUOP_initialise: from `vcpu_guest_context`
    /// `b` (xen-abi.md §2.5) the GDT (validated as set_gdt does), LDT,
    /// kernel stack, the user GS base, CR0.TS, CR4, debug registers
    /// (set_debugreg's rules), selectors (RPL raised to 3 for CS and SS)
    /// and whether the syscall callback masks events. Returns the state to
    /// install, or -EINVAL.
    pub(super) fn context_pv(&mut self, b: &[u8]) -> Result<(PvCpu, bool), Errno> {
        const FLAGS: usize = 512;
        const USER: usize = 520;
        const SYSCALL_DISABLES_EVENTS: u64 = 1 << 4;
        let mut pv = PvCpu::default();
        let sel = |off: usize| u16_at(b, USER + off);
        pv.sel.cs = sel(136) | 3;
        pv.sel.ss = sel(160) | 3;
        pv.sel.es = sel(168);
        pv.sel.ds = sel(176);
        pv.sel.fs = sel(184);
        pv.sel.gs = sel(192);
        pv.ldt_base = u64_at(b, 4816);
        pv.ldt_entries = u32::try_from(u64_at(b, 4824)).map_err(|_| Errno::Inval)?;
        pv.kernel_ss = u16_at(b, 4968) | 3;
        pv.kernel_sp = u64_at(b, 4976);
        pv.cr0_ts = u64_at(b, 4984) & pvcpu::CR0_TS != 0;
        pv.write_cr4(u64_at(b, 4984 + 32));
        pv.shadow_gs = u64_at(b, 5160);
        if !is_canonical(pv.shadow_gs) {
            return Err(Errno::Inval);
        }
        for n in [0, 1, 2, 3, 6, 7] {
            set_debugreg(&mut pv, n, u64_at(b, 5048 + 8 * n)).map_err(|_| Errno::Inval)?;
        }
        let entries = u32::try_from(u64_at(b, 4960)).map_err(|_| Errno::Inval)?;
        let nr = entries.div_ceil(pvcpu::DESCS_PER_FRAME).min(16) as usize;
        let frames = (0..nr).map(|i| Mfn(u64_at(b, 4832 + 8 * i))).collect();
        self.load_gdt(&mut pv, frames, entries)?;
        Ok((pv, u64_at(b, FLAGS) & SYSCALL_DISABLES_EVENTS != 0))
    }

    /// `update_descriptor(maddr, desc)`: an 8-byte-aligned slot in a frame
    /// the domain owns, a valid descriptor.
    fn update_descriptor(&mut self, maddr: u64, desc: u64) -> HResult {
        if !maddr.is_multiple_of(8) || !self.owns(Mfn(maddr >> 12)) {
            return Err(Errno::Inval);
        }
        let d = check_descriptor(desc).ok_or(Errno::Inval)?;
        self.mem.write_ma_u64(maddr, d);
        ok()
    }

    /// `stack_switch(ss, sp)`: the kernel stack of user → kernel
    /// transitions; SS's RPL is raised to 3 as Xen's selector fixup does.
    fn stack_switch(&mut self, ss: u64, sp: u64) -> HResult {
        let pv = self.pv();
        pv.kernel_ss = ss as u16 | 3; // deliberate: a selector is 16 bits
        pv.kernel_sp = sp;
        ok()
    }

    /// `set_debugreg(reg, value)`: Xen's rules ([`crate::debug`]); the
    /// core sees the new value when the hypercall returns.
    fn set_debugreg(&mut self, reg: u32, value: u64) -> HResult {
        set_debugreg(self.pv(), reg as usize, value)?;
        ok()
    }

    /// `get_debugreg(reg)`: DR4/5 alias DR6/7 unless CR4.DE; -ENODEV for
    /// any other register (as Xen's `x86emul_read_dr` failing).
    fn get_debugreg(&mut self, reg: u32) -> HResult {
        let n = match reg {
            0..=3 | 6 | 7 => reg as usize,
            4 | 5 if self.pv().cr4() & pvcpu::CR4_DE == 0 => reg as usize + 2,
            _ => return Err(Errno::NoDev),
        };
        Ok(Ret::Value(self.pv().dr[n]))
    }

    /// `vm_assist(cmd, type)`: records the assist; -EINVAL for a type Xen
    /// does not offer PV64 guests, -ENOSYS for another command.
    fn vm_assist(&mut self, cmd: u32, ty: u32) -> HResult {
        if ty >= 64 || VM_ASSIST_VALID & 1 << ty == 0 {
            return Err(Errno::Inval);
        }
        let dom = self.hv.dom_mut(self.d);
        match cmd {
            0 => dom.vm_assist |= 1 << ty,
            1 => dom.vm_assist &= !(1 << ty),
            _ => return Err(Errno::NoSys),
        }
        ok()
    }

    /// `set_segment_base(which, base)` from guest kernel mode: FS, the
    /// user GS (the inactive one), the kernel GS (the active one), or the
    /// user GS selector (a selector that does not load gives null).
    fn set_segment_base(&mut self, which: u32, base: u64) -> HResult {
        let (d, v) = (self.d, self.v);
        match which {
            segbase::FS | segbase::GS_USER | segbase::GS_KERNEL if !is_canonical(base) => {
                Err(Errno::Inval)
            }
            segbase::FS => {
                self.base_writes.push((segbase::FS, base));
                ok()
            }
            segbase::GS_USER => {
                self.pv().shadow_gs = base;
                ok()
            }
            segbase::GS_KERNEL => {
                self.base_writes.push((segbase::GS_KERNEL, base));
                ok()
            }
            segbase::GS_USER_SEL => {
                let sel = base as u16; // deliberate: the selector is base[15:0]
                let vc = self.hv.vcpu_mut(d, v);
                let loaded = crate::emulate::user_gs_load(&vc.pv, sel, &mut *self.mem);
                let pv = &mut self.hv.vcpu_mut(d, v).pv;
                match loaded {
                    Some(b) => {
                        pv.sel.gs = sel;
                        pv.shadow_gs = b.unwrap_or(pv.shadow_gs);
                    }
                    None => pv.sel.gs = 0,
                }
                ok()
            }
            _ => Err(Errno::Inval),
        }
    }

    fn physdev_op(&mut self, cmd: u32, arg: u64) -> HResult {
        match cmd {
            physdevop::SET_IOPL => {
                let iopl = u32_at(&self.read(arg, 4)?, 0);
                if iopl > 3 {
                    return Err(Errno::Inval);
                }
                self.pv().iopl = iopl as u8; // checked: 0–3
                ok()
            }
            physdevop::SET_IOBITMAP => {
                let b = self.read(arg, 12)?;
                let nr_ports = u32_at(&b, 8);
                if nr_ports > 65536 {
                    return Err(Errno::Inval);
                }
                let pv = self.pv();
                pv.iobmp = u64_at(&b, 0);
                pv.iobmp_limit = nr_ports;
                ok()
            }
            _ => Err(Errno::NoSys),
        }
    }

    /// Brings VCPU `t`'s run state up to date and rewrites its registered
    /// area; returns the 48-byte `vcpu_runstate_info`.
    pub(super) fn sync_runstate(&mut self, t: VcpuId) -> [u8; 48] {
        let now = self.now_ns;
        let vc = self.hv.vcpu_mut(self.d, t);
        let state = match vc.state {
            RunState::Runnable => 0,
            RunState::Blocked | RunState::Polling => 2,
            RunState::Down => 3,
        };
        vc.pv.runstate.switch(state, now);
        let bytes = vc.pv.runstate.bytes(now);
        let area = vc.pv.runstate.area;
        if area != 0 && t == self.v {
            let _ = self.mem.write_virt(area, &bytes);
        }
        bytes
    }

    pub(super) fn runstate_op(&mut self, cmd: u32, t: VcpuId, arg: u64) -> HResult {
        match cmd {
            VCPUOP_GET_RUNSTATE_INFO => {
                let b = self.sync_runstate(t);
                self.write(arg, &b)?;
                ok()
            }
            _ => {
                let va = u64_at(&self.read(arg, 8)?, 0);
                self.hv.vcpu_mut(self.d, t).pv.runstate.area = va;
                self.sync_runstate(t);
                ok()
            }
        }
    }
}

#[cfg(test)]
mod tests;
