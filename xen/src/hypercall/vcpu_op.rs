//! `vcpu_op` (hypercall 24, xen-abi.md §4.2) and the
//! `vcpu_guest_context` it reads (§2.5).
//!
//! VCPUOP_initialise takes the general registers, RIP, RFLAGS (IOPL
//! stripped, IF forced on, as Xen does), `fs_base`, `gs_base_kernel` (the
//! active GS base: a VCPU starts in guest kernel mode), the three
//! callbacks and the trap table, and `ctrlreg[3]`/`ctrlreg[1]` (the kernel
//! and user CR3, validated as L4 tables); the PV CPU state (GDT validated
//! as set_gdt does, LDT, `kernel_ss/sp`, `gs_base_user`, CR0.TS, CR4, debug
//! registers, selectors) is `Call::context_pv`'s. The FPU/SSE state is the
//! context's `fpu_ctxt` FXSAVE image with `VGCF_i387_valid`, else Xen's
//! reset state (see `context_fpu`).

use super::{ok, u64_at, Call, HResult, Ret};
use crate::abi::{shared_info, vcpu_info, vcpuop, Errno};
use crate::hypervisor::{Effect, Next};
use crate::ids::{Mfn, VcpuId, PAGE_SIZE};
use crate::regs::is_canonical;
use crate::vcpu::{RunState, TrapEntry};
use smpsim_cores::arch::flags;
use smpsim_cores::fpu::{BadMxcsr, FpuState, MXCSR_MASK};
use smpsim_cores::ArchState;

/// Size of `vcpu_guest_context`.
pub const VCPU_GUEST_CONTEXT_SIZE: usize = 5168;
/// `VGCF_i387_valid`: `fpu_ctxt` (offset 0, 512 bytes) holds an FXSAVE
/// image to load.
pub const VGCF_I387_VALID: u64 = 1;
/// `VGCF_online`: the VCPU runs as soon as it is initialised.
pub const VGCF_ONLINE: u64 = 1 << 5;
/// Shortest periodic timer period (1 ms).
const MIN_PERIOD_NS: u64 = 1_000_000;
/// Longest (Xen's `STIME_DELTA_MAX`).
const MAX_PERIOD_NS: u64 = 1 << 62;

/// `cpu_user_regs` offsets of RAX…R15 in x86 encoding order (§2.5).
const USER_REG_OFFSETS: [usize; 16] = [
    80, 88, 96, 40, 152, 32, 104, 112, 72, 64, 56, 48, 24, 16, 8, 0,
];

/// What VCPUOP_initialise takes from a context.
struct Context {
    /// ctrlreg[3]: the kernel's CR3.
    cr3: u64,
    /// ctrlreg[1]: the user CR3 (64-bit PV; 0 = none).
    user_cr3: u64,
    flags: u64,
    regs: ArchState,
    traps: Vec<TrapEntry>,
    callbacks: [u64; 3],
}

/// The FPU state a context gives (Xen's `vcpu_setup_fpu` /
/// `vcpu_reset_fpu`): its FXSAVE image with `VGCF_i387_valid`, else the
/// reset state ([`crate::pvcpu::reset_fpu`]).
///
/// Xen copies the image without checking it: an MXCSR with reserved bits
/// set makes the VCPU's first XRSTOR fault, and `xrstor()`'s stage-1
/// fixup then clears XSTATE_BV's x87 and SSE bits (those components load
/// their init state: FCW 0x037f, FTW empty, registers and XMM zero) and
/// masks MXCSR with MXCSR_MASK. The hypercall itself succeeds.
fn context_fpu(b: &[u8], flags: u64) -> FpuState {
    if flags & VGCF_I387_VALID == 0 {
        return crate::pvcpu::reset_fpu();
    }
    let image: &[u8; 512] = b[..512].try_into().expect("512 bytes");
    let mut f = crate::pvcpu::reset_fpu();
    match f.load_fxsave(image) {
        Ok(()) => f,
        Err(BadMxcsr(m)) => FpuState {
            mxcsr: m & MXCSR_MASK,
            ..FpuState::default()
        },
    }
}

fn parse_context(b: &[u8]) -> Result<Context, Errno> {
    const USER: usize = 520;
    let mut regs = ArchState {
        fpu: Box::new(context_fpu(b, u64_at(b, 512))),
        ..ArchState::default()
    };
    for (g, off) in regs.gpr.iter_mut().zip(USER_REG_OFFSETS) {
        *g = u64_at(b, USER + off);
    }
    regs.rip = u64_at(b, USER + 128);
    // Bit 1 reads 1 whatever the context says (the core's invariant).
    regs.rflags = (u64_at(b, USER + 144) & !flags::IOPL) | flags::IF | flags::FIXED1;
    regs.fs_base = u64_at(b, 5144);
    regs.gs_base = u64_at(b, 5152);
    let callbacks = [u64_at(b, 5112), u64_at(b, 5120), u64_at(b, 5128)];
    let addrs = [regs.rip, regs.fs_base, regs.gs_base];
    if !addrs.iter().chain(&callbacks).all(|&a| is_canonical(a)) {
        return Err(Errno::Inval);
    }
    let traps = (0..256)
        .map(|i| {
            let e = &b[720 + 16 * i..720 + 16 * i + 16];
            TrapEntry {
                flags: e[1],
                cs: u16::from_le_bytes([e[2], e[3]]),
                address: u64_at(e, 8),
            }
        })
        .collect();
    Ok(Context {
        cr3: u64_at(b, 4984 + 3 * 8),
        user_cr3: u64_at(b, 4984 + 8),
        flags: u64_at(b, 512),
        regs,
        traps,
        callbacks,
    })
}

impl Call<'_> {
    pub(super) fn vcpu_op(&mut self, cmd: u32, vcpuid: u32, arg: u64) -> HResult {
        let target = VcpuId(vcpuid);
        let dom = self.hv.domain(self.d).expect("caller exists");
        if vcpuid >= dom.nr_vcpus() {
            return Err(Errno::NoEnt);
        }
        match cmd {
            vcpuop::INITIALISE => self.initialise(target, arg),
            vcpuop::UP => self.up(target),
            vcpuop::DOWN => Ok(self.down(target)),
            vcpuop::IS_UP => Ok(Ret::Value(u64::from(
                dom.vcpu(target).expect("checked").is_up(),
            ))),
            super::pvcpu_op::VCPUOP_GET_RUNSTATE_INFO
            | super::pvcpu_op::VCPUOP_REGISTER_RUNSTATE_MEMORY_AREA => {
                self.runstate_op(cmd, target, arg)
            }
            vcpuop::SET_PERIODIC_TIMER => {
                let period = self.read_u64_arg(arg)?;
                if !(MIN_PERIOD_NS..=MAX_PERIOD_NS).contains(&period) {
                    return Err(Errno::Inval);
                }
                let now = self.now_ns;
                self.hv.vcpu_mut(self.d, target).set_periodic(period, now);
                ok()
            }
            vcpuop::STOP_PERIODIC_TIMER => {
                self.hv.vcpu_mut(self.d, target).set_periodic(0, 0);
                ok()
            }
            vcpuop::SET_SINGLESHOT_TIMER => {
                if target != self.v {
                    return Err(Errno::Inval);
                }
                let at = u64_at(&self.read(arg, 16)?, 0);
                self.singleshot(at);
                ok()
            }
            vcpuop::STOP_SINGLESHOT_TIMER => {
                if target != self.v {
                    return Err(Errno::Inval);
                }
                self.hv.vcpu_mut(self.d, target).singleshot_ns = None;
                ok()
            }
            vcpuop::REGISTER_VCPU_INFO => self.register_vcpu_info(target, arg),
            _ => Err(Errno::NoSys),
        }
    }

    fn read_u64_arg(&mut self, arg: u64) -> Result<u64, Errno> {
        Ok(u64_at(&self.read(arg, 8)?, 0))
    }

    fn initialise(&mut self, target: VcpuId, arg: u64) -> HResult {
        if self.hv.vcpu_mut(self.d, target).vcpu_info.is_none() {
            return Err(Errno::Inval);
        }
        let b = self.read(arg, VCPU_GUEST_CONTEXT_SIZE)?;
        if self.hv.vcpu_mut(self.d, target).initialised {
            return Err(Errno::Exist);
        }
        let ctx = parse_context(&b)?;
        let (pv, syscall_masks) = self.context_pv(&b)?;
        // Xen loads the context's CR3 (ctrlreg[3]) and, for 64-bit PV, the
        // user base pointer (ctrlreg[1]); each must validate as an L4.
        let mfn = |cr3: u64| crate::ids::Mfn(cr3 >> 12);
        let mut effects = self.hv.new_baseptr(
            self.d,
            target,
            Some(mfn(ctx.cr3)),
            crate::mmu::BasePtr::Kernel,
            &mut *self.mem,
        )?;
        if ctx.user_cr3 != 0 {
            effects.extend(self.hv.new_baseptr(
                self.d,
                target,
                Some(mfn(ctx.user_cr3)),
                crate::mmu::BasePtr::User,
                &mut *self.mem,
            )?);
        }
        // The VCPU starts on its new root: nothing of it is cached yet.
        effects.retain(|e| !matches!(e, Effect::NewRoot { .. }));
        self.effects.extend(effects);
        let now = self.now_ns;
        let v = self.hv.vcpu_mut(self.d, target);
        v.initialised = true;
        let mut regs = ctx.regs;
        regs.fsgsbase = pv.cr4() & crate::pvcpu::CR4_FSGSBASE != 0;
        // The context's debug registers are live from its first instruction.
        crate::pvcpu::sync_core(&pv, &mut regs);
        v.start_regs = Some(Box::new(regs));
        v.traps = ctx.traps;
        v.callbacks.event = ctx.callbacks[0];
        v.callbacks.failsafe = ctx.callbacks[1];
        v.callbacks.syscall = ctx.callbacks[2];
        v.callbacks.syscall_masks = syscall_masks;
        v.pv = crate::pvcpu::PvCpu {
            runstate: v.pv.runstate,
            ..pv
        };
        if ctx.flags & VGCF_ONLINE != 0 && !v.is_up() {
            v.bring_up(now);
            let regs = v.start_regs.take();
            self.effects.push(Effect::Start {
                domain: self.d,
                vcpu: target,
                regs,
            });
        }
        ok()
    }

    fn up(&mut self, target: VcpuId) -> HResult {
        let now = self.now_ns;
        let v = self.hv.vcpu_mut(self.d, target);
        if !v.initialised {
            return Err(Errno::Inval);
        }
        if !v.is_up() {
            v.bring_up(now);
            let regs = v.start_regs.take();
            self.effects.push(Effect::Start {
                domain: self.d,
                vcpu: target,
                regs,
            });
        }
        ok()
    }

    fn down(&mut self, target: VcpuId) -> Ret {
        let dom = self.hv.domain(self.d).expect("caller exists");
        let others_up = dom.vcpus.iter().any(|v| v.id != target && v.is_up());
        if !others_up {
            let msg = format!("VCPUOP_down of the last VCPU ({target}) by {}", self.v);
            self.hv.shutdown_domain(
                self.d,
                crate::abi::sched::SHUTDOWN_POWEROFF,
                msg,
                self.cycle,
            );
            return Ret::Then(Next::Shutdown);
        }
        let v = self.hv.vcpu_mut(self.d, target);
        if !v.is_up() {
            return Ret::Value(0);
        }
        v.state = RunState::Down;
        v.poll = None;
        v.pv.runstate
            .switch(crate::pvcpu::RUNSTATE_OFFLINE, self.now_ns);
        if target == self.v {
            return Ret::Then(Next::Down);
        }
        self.effects.push(Effect::Stop {
            domain: self.d,
            vcpu: target,
        });
        Ret::Value(0)
    }

    fn register_vcpu_info(&mut self, target: VcpuId, arg: u64) -> HResult {
        let b = self.read(arg, 16)?;
        let (mfn, offset) = (Mfn(u64_at(&b, 0)), u64::from(super::u32_at(&b, 8)));
        let dom = self.hv.domain(self.d).expect("caller exists");
        let old = dom.vcpu(target).expect("checked");
        if old.vcpu_info_registered {
            return Err(Errno::Busy);
        }
        if offset % 8 != 0 || offset > PAGE_SIZE - shared_info::VCPU_INFO_SIZE {
            return Err(Errno::Inval);
        }
        if !dom.owns(mfn) {
            return Err(Errno::Inval);
        }
        let (from, new) = (old.vcpu_info, mfn.addr(offset).get());
        self.fill_vcpu_info(from, new);
        self.mem
            .write_ma_u64(new + vcpu_info::PENDING_SEL, u64::MAX);
        self.mem.write_u8(new + vcpu_info::UPCALL_PENDING, 1);
        let v = self.hv.vcpu_mut(self.d, target);
        v.vcpu_info = Some(new);
        v.vcpu_info_registered = true;
        // upcall_pending was just set: a sleeping VCPU is kicked awake.
        if v.wake() {
            self.effects.push(Effect::Wake {
                domain: self.d,
                vcpu: target,
            });
        }
        ok()
    }

    /// Copies the old vcpu_info to `new`, or (no old one) writes a fresh one:
    /// zero, events masked, the time record.
    fn fill_vcpu_info(&mut self, from: Option<u64>, new: u64) {
        let size = shared_info::VCPU_INFO_SIZE;
        match from {
            Some(old) => {
                for i in 0..size {
                    let b = self.mem.read_u8(old + i);
                    self.mem.write_u8(new + i, b);
                }
            }
            None => {
                let time = self.hv.time_scale().encode(2, 0, 0);
                for i in 0..size {
                    let b = match i {
                        vcpu_info::UPCALL_MASK => 1,
                        t if t >= vcpu_info::TIME => time[(t - vcpu_info::TIME) as usize],
                        _ => 0,
                    };
                    self.mem.write_u8(new + i, b);
                }
            }
        }
    }
}
