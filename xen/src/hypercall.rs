//! Hypercall dispatch (xen-abi.md §1, §3, §4): from the trap registers to
//! an [`Outcome`].
//!
//! # Entry contract
//! The machine calls [`Hypervisor::hypercall`] when a VCPU of a running
//! domain executes SYSCALL. Made in guest kernel mode it is a hypercall;
//! made in guest user mode it is the guest's own system call, bounced to
//! the kernel's syscall callback (`guest_mode.rs`), and RAX is left alone.
//! `regs` are the registers at the trap with RIP already past the SYSCALL
//! instruction; RAX holds the hypercall number and
//! RDI, RSI, RDX, R10, R8 the arguments. On return RAX holds the result
//! (≥ 0, or −errno), except after `iret`, which reloads the registers from
//! the guest stack. RCX and R11 are left as the machine gave them (the
//! PV stub saves and restores them itself).
//!
//! # What is implemented
//! console_io (write), xen_version (0–9), update_va_mapping (on the
//! per-domain page map), sched_op (yield, block, shutdown, poll,
//! shutdown_code; remote_shutdown is -EPERM), vcpu_op (initialise, up, down, is_up, periodic and single-shot
//! timers, register_vcpu_info, get_runstate_info,
//! register_runstate_memory_area), memory_op (`hypercall/memory_op.rs`:
//! reservations and the balloon, exchange, memory maps), set_timer_op, set_callbacks, callback_op
//! (register, unregister), set_trap_table, event_channel_op
//! (alloc_unbound, bind_interdomain, bind_virq, bind_ipi, send, close,
//! status, bind_vcpu, unmask, and the FIFO ABI's init_control,
//! expand_array, set_priority), grant_table_op (`hypercall/grant_op.rs`:
//! v1 and v2 tables, map/unmap, copy, swap, transfer;
//! cache_flush and dump_table -ENOSYS as on x86 Xen), iret (to
//! guest kernel or user mode), the PV
//! CPU calls of `hypercall/pvcpu_op.rs` (set_gdt, stack_switch,
//! fpu_taskswitch, set_debugreg, get_debugreg, update_descriptor,
//! vm_assist, set_segment_base, physdev_op), plus the smpsim-specific
//! smpsim_op (56: record guest-measured latency samples, see
//! [`crate::guest_hist`]). Everything else returns
//! -ENOSYS. A guest pointer that cannot be read or written gives -EFAULT.
//!
//! # Choices where Xen depends on its build
//! - CONSOLEIO_write is allowed for every domain (Xen allows it to domUs in
//!   debug builds); CONSOLEIO_read is -EPERM (privileged).
//! - xen_version reports Xen 4.19, extraversion ".0-smpsim", no XENFEAT
//!   bits (smpsim implements none of the MMU behaviours they describe).
//! - set_trap_table reads at most 256 entries (one per vector) before its
//!   terminator.

use crate::abi::{self, hypercall as nr, Errno};
use crate::evtchn::Raise;
use crate::hypervisor::{Effect, Hypervisor, Next, Outcome};
use crate::ids::{DomainId, VcpuId};
use crate::memory::HypervisorMemory;
use crate::regs::{is_canonical, low32, GuestRegs};
use crate::upcall;
use crate::vcpu::TrapEntry;
use smpsim_cores::arch::reg::RAX;
use smpsim_cores::ArchState;

mod domctl;
mod evtchn_op;
mod fifo_op;
mod grant_op;
pub mod memory_op;
mod mmu_op;
pub mod pvcpu_op;
mod sched_op;
mod smpsim_op;
mod vcpu_op;

/// Xen version reported to guests.
pub const XEN_MAJOR: u64 = 4;
/// Minor version.
pub const XEN_MINOR: u64 = 19;
/// `HYPERVISOR_VIRT_START` of PV64 (§2.5).
pub const HYPERVISOR_VIRT_START: u64 = 0xFFFF_8000_0000_0000;

/// How a handler finished.
pub(crate) enum Ret {
    /// Return this in RAX and continue.
    Value(u64),
    /// RAX = 0, then this.
    Then(Next),
    /// Registers were reloaded (iret).
    Reloaded,
}

type HResult = Result<Ret, Errno>;

/// One hypercall in progress.
pub(crate) struct Call<'a> {
    pub hv: &'a mut Hypervisor,
    pub d: DomainId,
    pub v: VcpuId,
    pub cycle: u64,
    pub now_ns: u64,
    pub mem: &'a mut dyn HypervisorMemory,
    pub effects: Vec<Effect>,
    /// set_segment_base writes to the caller's FS or kernel GS base
    /// (`(SEGBASE_*, base)`), applied to its registers after the call.
    pub base_writes: Vec<(u32, u64)>,
}

impl Hypervisor {
    /// Handles the hypercall VCPU `v` of domain `d` trapped with at `cycle`
    /// (see the module doc for the register contract).
    pub fn hypercall(
        &mut self,
        d: DomainId,
        v: VcpuId,
        cycle: u64,
        regs: &mut ArchState,
        mem: &mut dyn HypervisorMemory,
    ) -> Outcome {
        if self.domain(d).is_none_or(|dom| dom.shutdown().is_some()) {
            return Outcome {
                next: Next::Shutdown,
                effects: Vec::new(),
            };
        }
        if self.in_user_mode(d, v) {
            return self.user_syscall(d, v, cycle, regs, mem);
        }
        let now_ns = self.now_ns(cycle);
        let number = regs.gpr[RAX];
        *self.counters.hypercalls.entry(number).or_insert(0) += 1;
        let mut call = Call {
            hv: self,
            d,
            v,
            cycle,
            now_ns,
            mem,
            effects: Vec::new(),
            base_writes: Vec::new(),
        };
        if call.hv.vcpu_mut(d, v).pv.runstate.area != 0 {
            call.sync_runstate(v);
        }
        let ret = if number == nr::IRET {
            call.iret(regs)
        } else if number == nr::MULTICALL {
            let a = regs.hypercall_args();
            call.multicall(regs, a[0], low32(a[1]))
        } else {
            call.dispatch(number, regs.hypercall_args())
        };
        for (which, base) in std::mem::take(&mut call.base_writes) {
            match which {
                pvcpu_op::segbase::FS => regs.fs_base = base,
                _ => regs.gs_base = base,
            }
        }
        let effects = call.effects;
        let next = match ret {
            Ok(Ret::Value(x)) => {
                regs.gpr[RAX] = x;
                Next::Resume
            }
            Ok(Ret::Then(n)) => {
                regs.gpr[RAX] = 0;
                n
            }
            Ok(Ret::Reloaded) => Next::Resume,
            Err(e) => {
                regs.gpr[RAX] = e.to_rax();
                Next::Resume
            }
        };
        // set_debugreg and VCPU state loads take effect at once.
        crate::pvcpu::sync_core(&self.vcpu_mut(d, v).pv, regs);
        Outcome { next, effects }
    }
}

pub(crate) fn ok() -> HResult {
    Ok(Ret::Value(0))
}

pub(crate) fn u32_at(b: &[u8], off: usize) -> u32 {
    u32::from_le_bytes(b[off..off + 4].try_into().expect("4 bytes"))
}

pub(crate) fn u64_at(b: &[u8], off: usize) -> u64 {
    u64::from_le_bytes(b[off..off + 8].try_into().expect("8 bytes"))
}

pub(crate) fn u16_at(b: &[u8], off: usize) -> u16 {
    u16::from_le_bytes(b[off..off + 2].try_into().expect("2 bytes"))
}

impl Call<'_> {
    /// Whether the caller is the privileged control domain.
    pub(super) fn privileged(&self) -> bool {
        self.hv.domain(self.d).is_some_and(|d| d.privileged)
    }

    fn dispatch(&mut self, number: u64, a: [u64; 5]) -> HResult {
        if let Some(r) = self.pvcpu_dispatch(number, a) {
            return r;
        }
        match number {
            nr::SET_TRAP_TABLE => self.set_trap_table(a[0]),
            nr::SET_CALLBACKS => self.set_callbacks(a[0], a[1], a[2]),
            nr::UPDATE_VA_MAPPING => self.update_va_mapping(a[0], a[1], a[2]),
            nr::MMU_UPDATE => self.mmu_update(a[0], low32(a[1]), a[2], a[3]),
            nr::MMUEXT_OP => self.mmuext_op(a[0], low32(a[1]), a[2], a[3]),
            nr::SET_TIMER_OP => self.set_timer_op(a[0]),
            nr::XEN_VERSION => self.xen_version(low32(a[0]), a[1]),
            nr::CONSOLE_IO => self.console_io(low32(a[0]), low32(a[1]), a[2]),
            nr::VCPU_OP => self.vcpu_op(low32(a[0]), low32(a[1]), a[2]),
            nr::SCHED_OP => self.sched_op(low32(a[0]), a[1]),
            nr::CALLBACK_OP => self.callback_op(low32(a[0]), a[1]),
            nr::EVENT_CHANNEL_OP => self.evtchn_op(low32(a[0]), a[1]),
            nr::MEMORY_OP => self.memory_op(a[0], a[1]),
            nr::GRANT_TABLE_OP => self.grant_table_op(low32(a[0]), a[1], low32(a[2])),
            nr::DOMCTL => self.domctl(a[0]),
            nr::SMPSIM_OP => self.smpsim_op(low32(a[0]), low32(a[1]), a[2], low32(a[3])),
            _ => Err(Errno::NoSys),
        }
    }

    /// `multicall(calls, nr)` (§4.9): runs each `multicall_entry` (op,
    /// result, args[6]; 64 bytes) in order and stores its return value in
    /// `result`. A nested multicall is -EINVAL for that entry. An iret
    /// entry performs the iret and ends the batch (Xen's fix for XSA-213:
    /// nothing after it runs in the context it returned to); so does a call
    /// that blocks, yields or shuts the domain down. The batch itself
    /// returns 0 unless the list cannot be read (-EFAULT).
    fn multicall(&mut self, regs: &mut ArchState, calls: u64, count: u32) -> HResult {
        const ENTRY: u64 = 64;
        for i in 0..u64::from(count) {
            let at = calls.wrapping_add(i * ENTRY);
            let b = self.read(at, ENTRY as usize)?;
            let op = u64_at(&b, 0);
            let mut args = [0u64; 5];
            for (j, a) in args.iter_mut().enumerate() {
                *a = u64_at(&b, 16 + 8 * j);
            }
            let r = match op {
                nr::MULTICALL => Err(Errno::Inval),
                nr::IRET => return self.iret(regs),
                _ => self.dispatch(op, args),
            };
            let (value, stop) = match r {
                Ok(Ret::Value(x)) => (x, None),
                Ok(Ret::Then(n)) => (0, Some(n)),
                Ok(Ret::Reloaded) => (0, None),
                Err(e) => (e.to_rax(), None),
            };
            self.write(at + 8, &value.to_le_bytes())?;
            if let Some(n) = stop {
                return Ok(Ret::Then(n));
            }
        }
        ok()
    }

    /// Reads `n` bytes of guest memory.
    pub fn read(&mut self, va: u64, n: usize) -> Result<Vec<u8>, Errno> {
        let mut b = vec![0u8; n];
        self.mem.read_virt(va, &mut b).map_err(|_| Errno::Fault)?;
        Ok(b)
    }

    /// Writes guest memory.
    pub fn write(&mut self, va: u64, bytes: &[u8]) -> Result<(), Errno> {
        self.mem.write_virt(va, bytes).map_err(|_| Errno::Fault)
    }

    pub fn raise(&mut self, r: Raise) {
        self.effects.push(Effect::Raise(r));
    }

    fn console_io(&mut self, cmd: u32, count: u32, buf: u64) -> HResult {
        const WRITE: u32 = 0;
        const READ: u32 = 1;
        match cmd {
            WRITE => {}
            READ => return Err(Errno::Perm),
            _ => return Err(Errno::NoSys),
        }
        let mut done = 0u64;
        while done < u64::from(count) {
            let n = (u64::from(count) - done).min(4096);
            let bytes = self.read(buf.wrapping_add(done), n as usize)?;
            let d = self.d;
            let hv = &mut *self.hv;
            let dom = hv.domains.get_mut(usize::from(d.0)).expect("caller exists");
            if dom.ring_used {
                hv.xen_log_bytes += n;
            } else {
                dom.console.write(d, &bytes, &mut hv.console);
            }
            done += n;
        }
        ok()
    }

    fn xen_version(&mut self, cmd: u32, arg: u64) -> HResult {
        use abi::xenver::*;
        let text = |s: &str, len: usize| {
            let mut b = vec![0u8; len];
            b[..s.len()].copy_from_slice(s.as_bytes());
            b
        };
        let bytes = match cmd {
            VERSION => return Ok(Ret::Value(XEN_MAJOR << 16 | XEN_MINOR)),
            PAGESIZE => return Ok(Ret::Value(4096)),
            GET_FEATURES => {
                if u32_at(&self.read(arg, 4)?, 0) != 0 {
                    return Err(Errno::Inval);
                }
                self.write(arg.wrapping_add(4), &0u32.to_le_bytes())?;
                return ok();
            }
            EXTRAVERSION => text(".0-smpsim", 16),
            COMPILE_INFO => text("smpsim", 144),
            CAPABILITIES => text("xen-3.0-x86_64", 1024),
            CHANGESET => text("smpsim", 64),
            PLATFORM_PARAMETERS => HYPERVISOR_VIRT_START.to_le_bytes().to_vec(),
            GUEST_HANDLE => vec![0u8; 16],
            COMMANDLINE => vec![0u8; 1024],
            _ => return Err(Errno::NoSys),
        };
        self.write(arg, &bytes)?;
        ok()
    }

    fn set_callbacks(&mut self, event: u64, failsafe: u64, syscall: u64) -> HResult {
        let cb = &mut self.hv.vcpu_mut(self.d, self.v).callbacks;
        // Xen registers each one and ignores the individual failures.
        for (slot, addr) in [
            (&mut cb.event, event),
            (&mut cb.failsafe, failsafe),
            (&mut cb.syscall, syscall),
        ] {
            if is_canonical(addr) {
                *slot = addr;
            }
        }
        // Xen registers the syscall callback with CALLBACKF_mask_events.
        if is_canonical(syscall) {
            cb.syscall_masks = true;
        }
        ok()
    }

    fn callback_op(&mut self, cmd: u32, arg: u64) -> HResult {
        use abi::callback::*;
        match cmd {
            OP_REGISTER => {
                let b = self.read(arg, 16)?;
                let (ty, cbflags, addr) = (u16_at(&b, 0), u16_at(&b, 2), u64_at(&b, 8));
                if !is_canonical(addr) {
                    return Err(Errno::Inval);
                }
                let cb = &mut self.hv.vcpu_mut(self.d, self.v).callbacks;
                match ty {
                    TYPE_EVENT => cb.event = addr,
                    TYPE_FAILSAFE => cb.failsafe = addr,
                    TYPE_SYSCALL => {
                        cb.syscall = addr;
                        cb.syscall_masks = cbflags & MASK_EVENTS != 0;
                    }
                    TYPE_NMI => cb.nmi = addr,
                    TYPE_SYSENTER_DEPRECATED | TYPE_SYSENTER | TYPE_SYSCALL32 => {}
                    _ => return Err(Errno::NoSys),
                }
                ok()
            }
            OP_UNREGISTER => {
                let ty = u16_at(&self.read(arg, 4)?, 0);
                if ty != TYPE_NMI {
                    return Err(Errno::Inval);
                }
                self.hv.vcpu_mut(self.d, self.v).callbacks.nmi = 0;
                ok()
            }
            _ => Err(Errno::NoSys),
        }
    }

    fn set_trap_table(&mut self, list: u64) -> HResult {
        if list == 0 {
            self.hv
                .vcpu_mut(self.d, self.v)
                .traps
                .fill(TrapEntry::default());
            return ok();
        }
        for i in 0..256u64 {
            let b = self.read(list.wrapping_add(16 * i), 16)?;
            let address = u64_at(&b, 8);
            if address == 0 {
                break;
            }
            if !is_canonical(address) {
                return Err(Errno::Inval);
            }
            let entry = TrapEntry {
                flags: b[1],
                cs: u16_at(&b, 2),
                address,
            };
            self.hv.vcpu_mut(self.d, self.v).traps[usize::from(b[0])] = entry;
        }
        ok()
    }

    /// Arms the caller's single-shot timer at `at_ns`, or fires it now if
    /// that time has come.
    pub fn singleshot(&mut self, at_ns: u64) {
        if at_ns <= self.now_ns {
            self.hv.vcpu_mut(self.d, self.v).singleshot_ns = None;
            self.hv.counters.timer_fires += 1;
            if let Some(e) = self.hv.timer_raise(self.d, self.v) {
                self.effects.push(e);
            }
        } else {
            self.hv.vcpu_mut(self.d, self.v).singleshot_ns = Some(at_ns);
        }
    }

    fn set_timer_op(&mut self, timeout: u64) -> HResult {
        const GUEST_BUG_DELAY_NS: u64 = 100_000_000;
        if timeout == 0 {
            self.hv.vcpu_mut(self.d, self.v).singleshot_ns = None;
            return ok();
        }
        // Xen: `timeout < 0 || (offset > 0 && offset >> 50 != 0)`.
        let bogus = (timeout as i64) < 0 || timeout.saturating_sub(self.now_ns) >= 1 << 50;
        let at = if bogus {
            self.now_ns.saturating_add(GUEST_BUG_DELAY_NS)
        } else {
            timeout
        };
        self.singleshot(at);
        ok()
    }

    /// The iret hypercall's mode half (§4.6): a ring-3 CS returns to guest
    /// user mode (which needs a user base pointer: Xen crashes the domain
    /// otherwise); the selectors are kept with RPL 3; under VMASST
    /// architectural_iopl the frame's IOPL becomes the virtual IOPL.
    fn iret_mode(&mut self, regs: &mut ArchState, r: &upcall::IretResult) -> HResult {
        const ARCH_IOPL: u64 = 1 << 4;
        let (d, v) = (self.d, self.v);
        let to_user = r.cs & 3 == 3;
        if to_user {
            if self.hv.vcpu_mut(d, v).mmu.user_root.is_none() {
                let msg = format!("{v}: iret to user mode without user page tables");
                self.hv.crash_domain(d, msg, self.cycle);
                return Ok(Ret::Then(Next::Shutdown));
            }
            let e = self.hv.switch_mode(d, v, true, regs);
            self.effects.extend(e);
        }
        let assist = self.hv.dom_mut(d).vm_assist & ARCH_IOPL != 0;
        let pv = &mut self.hv.vcpu_mut(d, v).pv;
        // deliberate truncations: selectors are 16 bits, IOPL 2.
        pv.sel.cs = if to_user { r.cs as u16 | 3 } else { 0xe033 };
        pv.sel.ss = r.ss as u16 | 3;
        if assist {
            pv.iopl = (r.rflags >> 12 & 3) as u8;
        }
        Ok(Ret::Reloaded)
    }

    fn iret(&mut self, regs: &mut ArchState) -> HResult {
        match upcall::iret(regs, &mut *self.mem) {
            Ok(r) => {
                if let Some(l) = self.hv.domain(self.d).and_then(|d| d.event_layout(self.v)) {
                    self.mem
                        .write_u8(l.vcpu_info + abi::vcpu_info::UPCALL_MASK, r.upcall_mask);
                }
                self.iret_mode(regs, &r)
            }
            Err(f) => {
                let msg = format!(
                    "{}: iret hypercall cannot read its frame at {:#x}",
                    self.v, f.va
                );
                self.hv.crash_domain(self.d, msg, self.cycle);
                Ok(Ret::Then(Next::Shutdown))
            }
        }
    }
}

#[cfg(test)]
#[path = "hypercall/tests.rs"]
mod tests;
