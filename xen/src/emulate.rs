//! Xen's PV emulator: what the hypervisor does with a #GP, #UD or
//! software trap from a PV64 guest before (or instead of) bouncing it to
//! the guest's handler.
//!
//! # Entry contract
//! The machine calls [`Hypervisor::guest_fault`] for every fault a core
//! reports, with the registers at the faulting instruction (RIP on it).
//! The instruction is read through guest memory and decoded with iced-x86.
//! Either it is emulated (registers and memory change as the instruction
//! would have changed them, RIP moves past it) or an exception is bounced
//! through the guest's trap table ([`Hypervisor::exception`]): the
//! original fault, or the one Xen gives (#GP(sel), #NP(sel), #SS(sel),
//! #GP(vector*8+2), #UD). Effects of CR3 writes and mode switches are
//! queued for [`Hypervisor::take_deferred_effects`].
//!
//! # What is emulated (as Xen's PV emulator does)
//! - #UD: the forced-CPUID prefix `ud2; .ascii "xen"; cpuid` runs CPUID
//!   with the PV CPUID policy ([`pv_cpuid`]); a bare `ud2` stays #UD.
//! - #GP, guest kernel mode only (from user mode they stay #GP(0)): `mov`
//!   to and from CR0 (only TS may change), CR2, CR3 (read: the active base
//!   pointer; write: a new kernel base pointer), CR4 (Xen's guest view;
//!   writes keep only the guest-controlled bits, as `pv_fixup_guest_cr4`
//!   does: they are not refused), DR0–DR7 (set_debugreg's rules; DR4/5
//!   alias DR6/7 unless CR4.DE), `rdmsr`/`wrmsr` of [`read_msr`]'s set,
//!   `clts` and `lmsw` (the virtual CR0.TS, which the core sees as
//!   `ArchState.fpu.ts`), `wbinvd`/`invd` (no-ops for a domain without
//!   cache control).
//! - #NM (an x87/SSE instruction under the virtual CR0.TS): TS is cleared
//!   and the #NM bounced, as Xen's `do_device_not_available` does.
//! - #GP, any mode: `in`/`out` and `cli`/`sti` under the virtual IOPL
//!   (guest kernel counts as CPL 1, or 0 with VMASST architectural_iopl,
//!   user mode as 3): ports read all ones and writes are dropped (a domU
//!   owns no I/O ports), `cli`/`sti` change nothing (the interrupt flag of
//!   a PV guest is its event mask). `int n` through the trap table when
//!   the entry's DPL allows the caller, else #GP(n*8+2). Segment-register
//!   loads and reads (`mov`, `push`/`pop` fs/gs, `lfs`/`lgs`/`lss`) checked
//!   against the guest's GDT/LDT and Xen's reserved entries;
//!   `sgdt`/`sidt`/`sldt`/`str`/`smsw` give what the hardware would show
//!   the guest (Xen's descriptor tables; smpsim models no UMIP).
//! - #BP, #OF, #DB from `int3`, `int 3`, `int 4`, `int1`: traps, so the
//!   frame's RIP is past the instruction.
//! - #DB of a debug condition the core met (single-step, a breakpoint;
//!   its DR6 bits in the fault's `addr`): the guest's DR6 takes them and
//!   it is bounced with RIP where the core left it. After an emulated
//!   instruction: single-step and I/O-breakpoint #DBs, and the MOV SS /
//!   POP SS shadow ([`crate::debug`]).
//! - The core's #GP for a non-canonical address of an ordinary
//!   instruction becomes #SS(0) where hardware raises that (a reference
//!   through RSP or RBP, an implicit stack access).
//!
//! Not emulated (bounced as #GP(0)): `ins`/`outs`, `lgdt`/`lidt`/`lldt`/
//! `ltr`, `swapgs`, `rdpmc`, CR8 and everything else.
//!
//! CR4.DE: smpsim's CPUID policy does not advertise DE, but the guest may
//! set it (Xen would discard it without the feature; XTF's debug-register
//! test needs it).

use crate::hypervisor::{Hypervisor, Upcall};
use crate::ids::{DomainId, Mfn, VcpuId};
use crate::memory::HypervisorMemory;
use crate::pvcpu::{self, PvCpu};
use crate::regs::is_canonical;
use iced_x86::{Decoder, DecoderOptions, Instruction, Mnemonic, OpKind, Register};
use smpsim_cores::arch::flags;
use smpsim_cores::arch::reg::{RAX, RBX, RCX, RDX, RSP};
use smpsim_cores::debug::dr6;
use smpsim_cores::{ArchState, CpuidModel};

/// `ud2; .ascii "xen"; cpuid`.
pub const FORCED_CPUID: [u8; 7] = [0x0f, 0x0b, 0x78, 0x65, 0x6e, 0x0f, 0xa2];

/// MSR numbers the emulator knows.
pub mod msr {
    /// Time-stamp counter.
    pub const TSC: u32 = 0x10;
    /// IA32_DEBUGCTL.
    pub const DEBUGCTL: u32 = 0x1d9;
    /// EFER.
    pub const EFER: u32 = 0xc000_0080;
    /// FS base.
    pub const FS_BASE: u32 = 0xc000_0100;
    /// Active GS base.
    pub const GS_BASE: u32 = 0xc000_0101;
    /// Inactive (user, in kernel mode) GS base.
    pub const SHADOW_GS_BASE: u32 = 0xc000_0102;
    /// MSR_INTEL_PLATFORM_INFO (bit 31: CPUID faulting available).
    pub const PLATFORM_INFO: u32 = 0xce;
    /// MSR_INTEL_MISC_FEATURES_ENABLES (bit 0: CPUID faulting on).
    pub const MISC_FEATURES_ENABLES: u32 = 0x140;
}

/// EFER as a PV guest reads it: SCE, LME, LMA, NXE.
pub const EFER_VALUE: u64 = 0xd01;

/// Where Xen keeps its per-VCPU GDT for a PV guest (the per-domain
/// GDT/LDT area at 0xffff_8200_0000_0000, 64 KiB apart per VCPU), what
/// `sgdt` shows, and its limit (the last reserved GDT byte).
const GDT_VA: u64 = 0xffff_8200_0000_0000;
const GDT_LIMIT: u16 = 0xefff;
/// Xen's per-CPU IDT (in its own image) and its limit.
const IDT_VA: u64 = 0xffff_82d0_4080_0000;
const IDT_LIMIT: u16 = 0xfff;
/// Xen's TSS selector (what `str` shows) and its LDT selector.
const TSS_SEL: u16 = 0xe040;
const LDT_SEL: u16 = 0xe050;

/// Whether `ins` is a MOV SS or POP SS (the instructions that set the
/// interrupt shadow).
fn loads_ss(ins: &Instruction) -> bool {
    matches!(ins.mnemonic(), Mnemonic::Mov | Mnemonic::Pop)
        && ins.op0_kind() == OpKind::Register
        && ins.op0_register() == Register::SS
}

/// Vectors with an error code.
fn has_error_code(vector: u8) -> bool {
    matches!(vector, 8 | 10..=14 | 17 | 21)
}

/// The PV CPUID policy: smpsim's CPUID model with the hypervisor bit,
/// plus Xen's leaves at 0x4000_0000 (xen-abi.md §1.3).
pub fn pv_cpuid(
    vcpu: u32,
    tsc_hz: u64,
    hidden: &[smpsim_cores::cpuid::Feature],
    leaf: u32,
    subleaf: u32,
) -> [u32; 4] {
    const XEN_SIG: [u32; 3] = [0x566e_6558, 0x6558_4d4d, 0x4d4d_566e];
    let major_minor = (crate::hypercall::XEN_MAJOR << 16 | crate::hypercall::XEN_MINOR) as u32;
    match leaf {
        0x4000_0000 => [0x4000_0005, XEN_SIG[0], XEN_SIG[1], XEN_SIG[2]],
        0x4000_0001 => [major_minor, 0, 0, 0],
        0x4000_0002 => [1, 0x4000_0000, 0, 0],
        0x4000_0003 if subleaf == 0 => [0, 0, (tsc_hz / 1000) as u32, 0],
        0x4000_0003..=0x4000_0004 => [0; 4],
        0x4000_0005 => [0, 52, 0, 0],
        _ => CpuidModel {
            apic_id: vcpu,
            tsc_aux: vcpu,
            hypervisor: true,
            hidden: hidden.to_vec(),
            ..CpuidModel::default()
        }
        .query(leaf, subleaf),
    }
}

/// What emulating one instruction did.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Em {
    /// Done: continue at the next instruction.
    Done,
    /// Done, and RIP is already where the guest continues (a far branch).
    Branched,
    /// Bounce `vector` with `error` to the guest, RIP on the instruction.
    Fault(u8, Option<u64>),
    /// Bounce trap `vector` (no error code) with RIP past the instruction.
    Trap(u8),
    /// The emulated access faulted at this VA: #PF with this error code
    /// (not-present, user, and write for a store).
    Pf(u64, u64),
    /// The domain was crashed.
    Crashed,
}

const GP0: Em = Em::Fault(13, Some(0));
/// #PF error-code bits: a write, from ring 3 (a PV64 guest always is).
const PF_WRITE: u64 = 2;
const PF_USER: u64 = 4;

/// One emulation in progress.
struct Emu<'a> {
    hv: &'a mut Hypervisor,
    d: DomainId,
    v: VcpuId,
    cycle: u64,
    regs: &'a mut ArchState,
    mem: &'a mut dyn HypervisorMemory,
    user: bool,
}

/// A fault as a core reported it.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub struct CoreFault {
    /// Exception vector.
    pub vector: u8,
    /// For #PF the faulting address (CR2).
    pub addr: u64,
    /// The error code the hardware pushes, where the core knows it (None:
    /// 0 is pushed for the vectors that have one; the core's #GP(0) and
    /// its #PF, whose error code it does not compute yet).
    pub error_code: Option<u64>,
}

impl From<&smpsim_cores::Fault> for CoreFault {
    fn from(f: &smpsim_cores::Fault) -> Self {
        CoreFault {
            vector: f.vector,
            addr: f.addr,
            error_code: None,
        }
    }
}

impl Hypervisor {
    /// Handles fault `f` a core reported for VCPU `v` of `d` at `cycle`
    /// (see the module doc): emulates the instruction or bounces an
    /// exception. Returns what the delivery did (`Delivered` also after an
    /// emulation).
    pub fn guest_fault(
        &mut self,
        d: DomainId,
        v: VcpuId,
        cycle: u64,
        f: CoreFault,
        regs: &mut ArchState,
        mem: &mut dyn HypervisorMemory,
    ) -> Upcall {
        let user = self.in_user_mode(d, v);
        let mut e = Emu {
            hv: self,
            d,
            v,
            cycle,
            regs,
            mem,
            user,
        };
        let error = f.error_code.unwrap_or(0);
        let tf = e.regs.rflags & flags::TF != 0;
        let result = match f.vector {
            // A debug condition the core met (DR6 bits in `addr`).
            1 if f.addr != 0 => e.debug_exception(f.addr),
            6 => {
                let r = e.invalid_op();
                e.after_emulation(None, r, tf)
            }
            13 => e.general_protection(tf),
            1 | 3 | 4 => e.soft_trap(f.vector),
            7 => e.device_not_available(),
            14 => Em::Pf(f.addr, error),
            vector => Em::Fault(vector, has_error_code(vector).then_some(error)),
        };
        let up = e.finish(result);
        crate::pvcpu::sync_core(&self.vcpu_mut(d, v).pv, regs);
        up
    }
}

impl Emu<'_> {
    fn finish(self, result: Em) -> Upcall {
        let (d, v, c) = (self.d, self.v, self.cycle);
        match result {
            Em::Done | Em::Branched => Upcall::Delivered,
            Em::Crashed => Upcall::Crashed,
            Em::Fault(vector, error) => self
                .hv
                .exception(d, v, c, vector, error, None, self.regs, self.mem),
            Em::Trap(vector) => self
                .hv
                .exception(d, v, c, vector, None, None, self.regs, self.mem),
            Em::Pf(va, ec) => {
                self.hv
                    .exception(d, v, c, 14, Some(ec), Some(va), self.regs, self.mem)
            }
        }
    }

    fn pv(&mut self) -> &mut PvCpu {
        &mut self.hv.vcpu_mut(self.d, self.v).pv
    }

    /// The bytes at RIP (up to 15, fewer where the next page is unmapped).
    fn fetch(&mut self) -> Vec<u8> {
        let mut b = Vec::with_capacity(15);
        for i in 0..15u64 {
            let mut x = [0u8];
            if self
                .mem
                .read_virt(self.regs.rip.wrapping_add(i), &mut x)
                .is_err()
            {
                break;
            }
            b.push(x[0]);
        }
        b
    }

    fn decode(&mut self) -> Option<Instruction> {
        let bytes = self.fetch();
        // AMD rules, as the core decodes (the CPUID model is AMD): a far
        // branch through memory is m16:32 even with REX.W.
        let mut dec = Decoder::with_ip(64, &bytes, self.regs.rip, DecoderOptions::AMD);
        let ins = dec.decode();
        (!ins.is_invalid()).then_some(ins)
    }

    fn invalid_op(&mut self) -> Em {
        let bytes = self.fetch();
        if bytes.len() < FORCED_CPUID.len() || bytes[..7] != FORCED_CPUID {
            return Em::Fault(6, None);
        }
        let leaf = self.regs.gpr[RAX] as u32; // deliberate: CPUID reads EAX
        let sub = self.regs.gpr[RCX] as u32; // and ECX
        let cfg = &self.hv.cfg;
        let out = pv_cpuid(self.v.0, cfg.tsc_hz, &cfg.cpu_hidden, leaf, sub);
        for (r, x) in [RAX, RBX, RCX, RDX].into_iter().zip(out) {
            self.regs.gpr[r] = u64::from(x);
        }
        self.regs.rip = self.regs.rip.wrapping_add(FORCED_CPUID.len() as u64);
        Em::Done
    }

    /// #BP/#OF/#DB from a trap instruction: the frame's RIP is past it.
    fn soft_trap(&mut self, vector: u8) -> Em {
        if let Some(ins) = self.decode() {
            self.regs.rip = ins.next_ip();
        }
        Em::Trap(vector)
    }

    /// #NM from an x87/SSE instruction under the virtual CR0.TS (Xen's
    /// `do_device_not_available`): Xen's PV ABI clears TS on every #NM
    /// (classic-Xen Linux depends on it) and bounces it through the trap
    /// table with RIP on the instruction. An #NM with TS clear cannot come
    /// from the guest: Xen crashes the domain.
    fn device_not_available(&mut self) -> Em {
        if !self.pv().cr0_ts {
            let msg = format!("{}: #NM but vCR0.TS clear", self.v);
            self.hv.crash_domain(self.d, msg, self.cycle);
            return Em::Crashed;
        }
        self.pv().cr0_ts = false;
        self.regs.fpu.ts = false;
        Em::Fault(7, None)
    }

    /// `tf`: RFLAGS.TF at the instruction's start.
    fn general_protection(&mut self, tf: bool) -> Em {
        let Some(ins) = self.decode() else {
            return GP0;
        };
        let r = self.emulate(&ins);
        if r == Em::Done {
            self.regs.rip = ins.next_ip();
        }
        self.after_emulation(Some(&ins), r, tf)
    }

    /// A #DB the core raised: the guest's DR6 takes `bits`, and it is
    /// bounced with RIP where the core left it (on the instruction for an
    /// instruction breakpoint, past it for a trap).
    fn debug_exception(&mut self, bits: u64) -> Em {
        let pv = self.pv();
        pv.dr[6] = crate::debug::merge_dr6(pv.dr[6], bits);
        Em::Trap(1)
    }

    /// What Xen's emulator adds after an emulated instruction (see
    /// [`crate::debug`]): single-step and I/O breakpoint #DBs, or for MOV
    /// SS / POP SS the shadow holding them (with its data breakpoint hit)
    /// back for the next instruction.
    fn after_emulation(&mut self, ins: Option<&Instruction>, r: Em, tf: bool) -> Em {
        if !matches!(r, Em::Done | Em::Branched) {
            return r;
        }
        let mut bits = if tf { dr6::BS } else { 0 };
        if let Some(ins) = ins {
            let shadow = self.regs.debug;
            let view = crate::debug::core_view(self.pv(), &shadow);
            if loads_ss(ins) {
                let hit = if ins.mnemonic() == Mnemonic::Pop {
                    view.data_match(self.regs.gpr[RSP].wrapping_sub(8), 8, false)
                } else if ins.op1_kind() == OpKind::Memory {
                    view.data_match(self.mem_addr(ins), 2, false)
                } else {
                    0
                };
                self.regs.debug.shadow = true;
                self.regs.debug.pending = bits | hit;
                return r;
            }
            if let Some((port, size)) = self.io_port(ins) {
                if self.pv().cr4() & pvcpu::CR4_DE != 0 {
                    bits |= view.io_match(self.pv().dr[7], port, size);
                }
            }
        }
        if bits == 0 {
            return r;
        }
        self.debug_exception(bits)
    }

    /// The mnemonic table: long by nature, one arm per instruction family.
    fn emulate(&mut self, ins: &Instruction) -> Em {
        use Mnemonic as M;
        let seg_op =
            |i: u32| ins.op_kind(i) == OpKind::Register && ins.op_register(i).is_segment_register();
        match ins.mnemonic() {
            M::Int => self.soft_int(ins),
            M::In | M::Out | M::Cli | M::Sti => self.io(ins),
            M::Mov if seg_op(0) => match self.read_op(ins, 1, 2) {
                Ok(sel) => self.load_seg(ins.op0_register(), sel),
                Err(e) => e,
            },
            M::Mov if seg_op(1) => {
                let sel = self.seg_value(ins.op1_register());
                self.write_op(ins, 0, u64::from(sel))
            }
            M::Push if seg_op(0) => self.push_seg(ins.op0_register()),
            M::Pop if seg_op(0) => self.pop_seg(ins.op0_register()),
            M::Lfs | M::Lgs | M::Lss => self.load_far(ins),
            M::Retf => self.far_ret(ins),
            M::Call | M::Jmp if ins.is_call_far_indirect() || ins.is_jmp_far_indirect() => {
                self.far_branch(ins)
            }
            M::Sgdt | M::Sidt => self.store_table(ins),
            M::Sldt | M::Str | M::Smsw => {
                let val = match ins.mnemonic() {
                    M::Sldt if self.pv().ldt_entries != 0 => LDT_SEL.into(),
                    M::Sldt => 0,
                    M::Str => TSS_SEL.into(),
                    _ => self.pv().cr0(),
                };
                self.write_op(ins, 0, val)
            }
            _ if !is_privileged(ins) => self.memory_fault(ins),
            _ if self.user => GP0,
            M::Mov => self.mov_special(ins),
            M::Rdmsr => self.rdmsr(),
            M::Wrmsr => self.wrmsr(),
            M::Clts => {
                self.pv().cr0_ts = false;
                Em::Done
            }
            // x86_emulate's lmsw: CR0 = (CR0 & !0xe) | (src & 0xf), through
            // the CR0 write (so only TS may change; PE cannot be cleared).
            M::Lmsw => match self.read_op(ins, 0, 2) {
                Ok(src) => {
                    let cr0 = self.pv().cr0();
                    self.write_cr(0, (cr0 & !0xe) | (src & 0xf))
                }
                Err(e) => e,
            },
            M::Wbinvd | M::Invd => Em::Done,
            _ => GP0,
        }
    }

    /// A #GP the core raised for an ordinary instruction: a non-canonical
    /// address. Hardware gives #SS(0) instead when the reference is
    /// through the stack segment: a base of RSP or RBP (an FS or GS
    /// override aside; in 64-bit mode the other overrides do not change
    /// the segment) or an implicit stack access with a non-canonical RSP.
    fn memory_fault(&self, ins: &Instruction) -> Em {
        const SS0: Em = Em::Fault(12, Some(0));
        let explicit = (0..ins.op_count()).any(|i| ins.op_kind(i) == OpKind::Memory);
        if explicit {
            let base = ins.memory_base().full_register();
            let fs_gs = matches!(ins.memory_segment(), Register::FS | Register::GS);
            if matches!(base, Register::RSP | Register::RBP) && !fs_gs {
                return SS0;
            }
            return GP0;
        }
        if ins.stack_pointer_increment() != 0 && !is_canonical(self.regs.gpr[RSP]) {
            return SS0;
        }
        GP0
    }

    // ---- operands -------------------------------------------------------

    fn mem_addr(&self, ins: &Instruction) -> u64 {
        // RIP-relative: iced's displacement is already the absolute address.
        let reg = |r: Register| -> u64 {
            if matches!(r, Register::None | Register::RIP | Register::EIP) {
                return 0;
            }
            let v = self.regs.gpr[r.full_register().number()];
            if r.size() == 4 {
                v & 0xffff_ffff
            } else {
                v
            }
        };
        let mut a = ins
            .memory_displacement64()
            .wrapping_add(reg(ins.memory_base()))
            .wrapping_add(
                reg(ins.memory_index()).wrapping_mul(u64::from(ins.memory_index_scale())),
            );
        if ins.memory_base().size() == 4 || ins.memory_index().size() == 4 {
            a &= 0xffff_ffff;
        }
        match ins.memory_segment() {
            Register::FS => a.wrapping_add(self.regs.fs_base),
            Register::GS => a.wrapping_add(self.regs.gs_base),
            _ => a,
        }
    }

    fn get_reg(&self, r: Register) -> u64 {
        let full = self.regs.gpr[r.full_register().number()];
        match r {
            Register::AH | Register::CH | Register::DH | Register::BH => full >> 8 & 0xff,
            _ => match r.size() {
                1 => full & 0xff,
                2 => full & 0xffff,
                4 => full & 0xffff_ffff,
                _ => full,
            },
        }
    }

    fn set_reg(&mut self, r: Register, v: u64) {
        let slot = &mut self.regs.gpr[r.full_register().number()];
        *slot = match r {
            Register::AH | Register::CH | Register::DH | Register::BH => {
                (*slot & !0xff00) | (v & 0xff) << 8
            }
            _ => match r.size() {
                1 => (*slot & !0xff) | (v & 0xff),
                2 => (*slot & !0xffff) | (v & 0xffff),
                4 => v & 0xffff_ffff,
                _ => v,
            },
        };
    }

    /// Operand `i` (`mem_size` bytes when in memory).
    fn read_op(&mut self, ins: &Instruction, i: u32, mem_size: usize) -> Result<u64, Em> {
        match ins.op_kind(i) {
            OpKind::Register => Ok(self.get_reg(ins.op_register(i))),
            OpKind::Memory => {
                let mut b = [0u8; 8];
                let a = self.mem_addr(ins);
                self.mem
                    .read_virt(a, &mut b[..mem_size])
                    .map_err(|f| Em::Pf(f.va, PF_USER))?;
                Ok(u64::from_le_bytes(b))
            }
            _ => Ok(ins.immediate(i)),
        }
    }

    /// Writes operand `i`: a register at its size (32-bit zero-extends),
    /// memory as 2 bytes (segment stores, sldt/str/smsw are m16).
    fn write_op(&mut self, ins: &Instruction, i: u32, v: u64) -> Em {
        if ins.op_kind(i) == OpKind::Register {
            self.set_reg(ins.op_register(i), v);
            return Em::Done;
        }
        let a = self.mem_addr(ins);
        match self.mem.write_virt(a, &v.to_le_bytes()[..2]) {
            Ok(()) => Em::Done,
            Err(f) => Em::Pf(f.va, PF_USER | PF_WRITE),
        }
    }

    // ---- software interrupts and I/O --------------------------------------

    /// The virtual CPL of the caller for IOPL and DPL checks.
    fn vcpl(&self) -> u8 {
        if self.user {
            3
        } else if self
            .hv
            .domain(self.d)
            .is_some_and(|d| d.vm_assist & 1 << 4 != 0)
        {
            0
        } else {
            1
        }
    }

    fn soft_int(&mut self, ins: &Instruction) -> Em {
        let n = ins.immediate8();
        let entry = self.hv.vcpu_mut(self.d, self.v).traps[usize::from(n)];
        let cpl = if self.user { 3 } else { 1 };
        if entry.flags & 3 < cpl || entry.address == 0 {
            return Em::Fault(13, Some(u64::from(n) * 8 + 2));
        }
        self.regs.rip = ins.next_ip();
        Em::Trap(n)
    }

    fn io(&mut self, ins: &Instruction) -> Em {
        if self.pv().iopl < self.vcpl() && !self.io_bitmap_allows(ins) {
            return GP0;
        }
        if ins.mnemonic() == Mnemonic::In {
            let r = ins.op0_register();
            self.set_reg(r, u64::MAX);
        }
        Em::Done
    }

    /// Whether the I/O bitmap allows every port `in`/`out` touches (Xen's
    /// `guest_io_okay`: the bits of ports past the limit, or that cannot
    /// be read, count as set).
    fn io_bitmap_allows(&mut self, ins: &Instruction) -> bool {
        let Some((port, bytes)) = self.io_port(ins) else {
            return false;
        };
        let (va, limit) = (self.pv().iobmp, u64::from(self.pv().iobmp_limit));
        if port + bytes > limit {
            return false;
        }
        let mut b = [0xffu8; 2];
        for (i, x) in b.iter_mut().enumerate() {
            let mut one = [0u8];
            if self
                .mem
                .read_virt(va + (port >> 3) + i as u64, &mut one)
                .is_ok()
            {
                *x = one[0];
            }
        }
        let mask = u16::from_le_bytes(b);
        let want = ((1u16 << bytes) - 1) << (port & 7);
        mask & want == 0
    }

    /// The first port and the width in bytes of an `in`/`out`.
    fn io_port(&self, ins: &Instruction) -> Option<(u64, u64)> {
        let (port_op, data) = match ins.mnemonic() {
            Mnemonic::In => (1, ins.op0_register()),
            Mnemonic::Out => (0, ins.op1_register()),
            _ => return None,
        };
        let port = if ins.op_kind(port_op) == OpKind::Register {
            self.regs.gpr[RDX] & 0xffff
        } else {
            u64::from(ins.immediate8())
        };
        Some((port, data.size() as u64))
    }

    // ---- control and debug registers, MSRs ----------------------------------

    fn mov_special(&mut self, ins: &Instruction) -> Em {
        let (r0, r1) = (ins.op0_register(), ins.op1_register());
        if r0.is_cr() {
            let v = self.get_reg(r1);
            self.write_cr(r0.number() - Register::CR0.number(), v)
        } else if r1.is_cr() {
            match self.read_cr(r1.number() - Register::CR0.number()) {
                Some(v) => {
                    self.set_reg(r0, v);
                    Em::Done
                }
                None => GP0,
            }
        } else if r0.is_dr() {
            let v = self.get_reg(r1);
            let n = r0.number() - Register::DR0.number();
            match self.dr_index(n) {
                Err(e) => e,
                Ok(n) => match crate::debug::set_debugreg(self.pv(), n, v) {
                    Ok(()) => Em::Done,
                    Err(_) => GP0,
                },
            }
        } else if r1.is_dr() {
            let n = r1.number() - Register::DR0.number();
            match self.dr_index(n) {
                Err(e) => e,
                Ok(n) => {
                    let v = self.pv().dr[n];
                    self.set_reg(r0, v);
                    Em::Done
                }
            }
        } else {
            GP0
        }
    }

    /// DR4/DR5 alias DR6/DR7 unless CR4.DE (then #UD); DR8+ is #UD.
    fn dr_index(&mut self, n: usize) -> Result<usize, Em> {
        match n {
            4 | 5 if self.pv().cr4() & pvcpu::CR4_DE != 0 => Err(Em::Fault(6, None)),
            4 | 5 => Ok(n + 2),
            0..=7 => Ok(n),
            _ => Err(Em::Fault(6, None)),
        }
    }

    fn read_cr(&mut self, n: usize) -> Option<u64> {
        Some(match n {
            0 => self.pv().cr0(),
            2 => self.pv().cr2,
            3 => self
                .hv
                .active_root(self.d, self.v)
                .0
                .map_or(0, |m| m.0 << 12),
            4 => self.pv().cr4(),
            _ => return None,
        })
    }

    fn write_cr(&mut self, n: usize, v: u64) -> Em {
        match n {
            0 => {
                let pv = self.pv();
                if (v ^ pv.cr0()) & !pvcpu::CR0_TS != 0 {
                    return GP0;
                }
                pv.cr0_ts = v & pvcpu::CR0_TS != 0;
            }
            2 => self.pv().cr2 = v,
            3 => {
                let mfn = Mfn(v >> 12 & ((1 << 40) - 1));
                let mem: &mut dyn crate::event_2l::EventMemory = &mut *self.mem;
                match self.hv.new_baseptr(
                    self.d,
                    self.v,
                    Some(mfn),
                    crate::mmu::BasePtr::Kernel,
                    mem,
                ) {
                    Ok(e) => self.hv.deferred.extend(e),
                    Err(_) => return GP0,
                }
            }
            4 => {
                self.pv().write_cr4(v);
                self.regs.fsgsbase = self.pv().cr4() & pvcpu::CR4_FSGSBASE != 0;
            }
            _ => return GP0,
        }
        Em::Done
    }

    fn rdmsr(&mut self) -> Em {
        let idx = self.regs.gpr[RCX] as u32; // deliberate: the MSR index is ECX
        let cycle = self.cycle;
        let pv = &self.hv.vcpu_mut(self.d, self.v).pv;
        let Some(v) = read_msr(self.regs, pv, cycle, idx) else {
            return GP0;
        };
        self.regs.gpr[RAX] = v & 0xffff_ffff;
        self.regs.gpr[RDX] = v >> 32;
        Em::Done
    }

    fn wrmsr(&mut self) -> Em {
        let idx = self.regs.gpr[RCX] as u32; // deliberate: the MSR index is ECX
        let v = (self.regs.gpr[RDX] << 32) | (self.regs.gpr[RAX] & 0xffff_ffff);
        let canonical = is_canonical(v);
        match idx {
            msr::FS_BASE if canonical => self.regs.fs_base = v,
            msr::GS_BASE if canonical => self.regs.gs_base = v,
            msr::SHADOW_GS_BASE if canonical => self.pv().shadow_gs = v,
            msr::EFER if v == EFER_VALUE => {}
            msr::DEBUGCTL | msr::MISC_FEATURES_ENABLES if v == 0 => {}
            _ => return GP0,
        }
        Em::Done
    }

    // ---- segments -------------------------------------------------------

    fn seg_value(&mut self, r: Register) -> u16 {
        let s = self.pv().sel;
        match r {
            Register::CS => s.cs,
            Register::SS => s.ss,
            Register::DS => s.ds,
            Register::ES => s.es,
            Register::FS => s.fs,
            _ => s.gs,
        }
    }

    fn push_seg(&mut self, r: Register) -> Em {
        let v = u64::from(self.seg_value(r));
        let sp = self.regs.gpr[RSP].wrapping_sub(8);
        match self.mem.write_virt(sp, &v.to_le_bytes()) {
            Ok(()) => {
                self.regs.gpr[RSP] = sp;
                Em::Done
            }
            Err(f) => Em::Pf(f.va, PF_USER | PF_WRITE),
        }
    }

    fn pop_seg(&mut self, r: Register) -> Em {
        let sp = self.regs.gpr[RSP];
        let mut b = [0u8; 8];
        if let Err(f) = self.mem.read_virt(sp, &mut b) {
            return Em::Pf(f.va, PF_USER);
        }
        let sel = u16::from_le_bytes([b[0], b[1]]);
        let res = self.load_seg(r, u64::from(sel));
        if res == Em::Done {
            self.regs.gpr[RSP] = sp.wrapping_add(8);
        }
        res
    }

    /// Checks a far branch's target code selector at CPL 3 (PV64 guest code
    /// always runs there): a present 64-bit code segment, DPL 3 (or
    /// conforming), RPL 3; anything else is #GP(sel) (#NP(sel) when not
    /// present). A 32-bit code segment would switch to compatibility mode,
    /// which smpsim's cores do not run: #GP(sel) too (partial).
    fn code_target(&mut self, sel: u16) -> Result<(), Em> {
        let gp = Em::Fault(13, Some(u64::from(sel & 0xfffc)));
        let Some(d) = self.descriptor(sel)? else {
            return Err(GP0);
        };
        let (s, ty, dpl) = (d >> 44 & 1 != 0, d >> 40 & 0xf, d >> 45 & 3);
        let (long, conforming) = (d >> 53 & 1 != 0, ty & 4 != 0);
        if !s || ty & 8 == 0 || sel & 3 != 3 || (!conforming && dpl != 3) || !long {
            return Err(gp);
        }
        if d >> 47 & 1 == 0 {
            return Err(Em::Fault(11, Some(u64::from(sel & 0xfffc))));
        }
        Ok(())
    }

    /// `retf` (`lret`): pops RIP then CS (operand-size slots), checks CS as
    /// a same-privilege return target, then releases the `imm16` bytes.
    fn far_ret(&mut self, ins: &Instruction) -> Em {
        use iced_x86::Code;
        let size: usize = match ins.code() {
            Code::Retfq | Code::Retfq_imm16 => 8,
            Code::Retfw | Code::Retfw_imm16 => 2,
            _ => 4,
        };
        let release = if ins.op_count() > 0 {
            u64::from(ins.immediate16())
        } else {
            0
        };
        let sp = self.regs.gpr[RSP];
        let mut b = [0u8; 16];
        if let Err(f) = self.mem.read_virt(sp, &mut b[..2 * size]) {
            return Em::Pf(f.va, PF_USER);
        }
        let mut off = [0u8; 8];
        off[..size].copy_from_slice(&b[..size]);
        let sel = u16::from_le_bytes([b[size], b[size + 1]]);
        if let Err(e) = self.code_target(sel) {
            return e;
        }
        self.regs.rip = u64::from_le_bytes(off);
        self.regs.gpr[RSP] = sp.wrapping_add(2 * size as u64 + release);
        self.pv().sel.cs = sel;
        Em::Branched
    }

    /// `call`/`jmp m16:64` (and m16:32): to a code segment, or through a
    /// 64-bit call gate of the GDT/LDT (Xen emulates gates for PV guests);
    /// only same-privilege transfers exist for a guest. A far call pushes
    /// CS then the return RIP.
    fn far_branch(&mut self, ins: &Instruction) -> Em {
        let size = if ins.memory_size() == iced_x86::MemorySize::SegPtr64 {
            8
        } else {
            4
        };
        let a = self.mem_addr(ins);
        let mut b = [0u8; 10];
        if let Err(f) = self.mem.read_virt(a, &mut b[..size + 2]) {
            return Em::Pf(f.va, PF_USER);
        }
        let mut off = [0u8; 8];
        off[..size].copy_from_slice(&b[..size]);
        let (mut target, sel) = (
            u64::from_le_bytes(off),
            u16::from_le_bytes([b[size], b[size + 1]]),
        );
        let gp = Em::Fault(13, Some(u64::from(sel & 0xfffc)));
        let desc = match self.descriptor(sel) {
            Ok(Some(d)) => d,
            Ok(None) => return GP0,
            Err(e) => return e,
        };
        let mut cs = sel;
        let mut push = if ins.is_call_far_indirect() { size } else { 0 };
        if desc >> 44 & 1 == 0 {
            // A system descriptor: only a 64-bit call gate (type 0xC).
            if desc >> 40 & 0xf != 0xc || desc >> 45 & 3 < 3 || sel & 3 > (desc >> 45 & 3) as u16 {
                return gp;
            }
            if desc >> 47 & 1 == 0 {
                return Em::Fault(11, Some(u64::from(sel & 0xfffc)));
            }
            let high = match self.descriptor(sel.wrapping_add(8)) {
                Ok(Some(h)) => h,
                _ => return gp,
            };
            cs = (desc >> 16) as u16;
            target = (desc & 0xffff) | (desc >> 48) << 16 | (high & 0xffff_ffff) << 32;
            if push != 0 {
                push = 8;
            }
        }
        if let Err(e) = self.code_target(cs) {
            return e;
        }
        if push != 0 {
            let old_cs = u64::from(self.seg_value(Register::CS));
            let mut frame = ins.next_ip().to_le_bytes()[..push].to_vec();
            frame.extend_from_slice(&old_cs.to_le_bytes()[..push]);
            let sp = self.regs.gpr[RSP].wrapping_sub(2 * push as u64);
            if let Err(f) = self.mem.write_virt(sp, &frame) {
                return Em::Pf(f.va, PF_USER | PF_WRITE);
            }
            self.regs.gpr[RSP] = sp;
        }
        self.regs.rip = target;
        self.pv().sel.cs = cs;
        Em::Branched
    }

    /// `lfs`/`lgs`/`lss`: offset then selector in memory.
    fn load_far(&mut self, ins: &Instruction) -> Em {
        let size = ins.op0_register().size();
        let a = self.mem_addr(ins);
        let mut b = [0u8; 10];
        if let Err(f) = self.mem.read_virt(a, &mut b[..size + 2]) {
            return Em::Pf(f.va, PF_USER);
        }
        let mut off = [0u8; 8];
        off[..size].copy_from_slice(&b[..size]);
        let sel = u16::from_le_bytes([b[size], b[size + 1]]);
        let seg = match ins.mnemonic() {
            Mnemonic::Lfs => Register::FS,
            Mnemonic::Lgs => Register::GS,
            _ => Register::SS,
        };
        let res = self.load_seg(seg, u64::from(sel));
        if res == Em::Done {
            self.set_reg(ins.op0_register(), u64::from_le_bytes(off));
        }
        res
    }

    fn store_table(&mut self, ins: &Instruction) -> Em {
        let (limit, base) = if ins.mnemonic() == Mnemonic::Sgdt {
            (GDT_LIMIT, GDT_VA + (u64::from(self.v.0) << 16))
        } else {
            (IDT_LIMIT, IDT_VA)
        };
        let mut b = limit.to_le_bytes().to_vec();
        b.extend(base.to_le_bytes());
        let a = self.mem_addr(ins);
        match self.mem.write_virt(a, &b) {
            Ok(()) => Em::Done,
            Err(f) => Em::Pf(f.va, PF_USER | PF_WRITE),
        }
    }

    /// Loads `value`'s low 16 bits into segment register `r` as ring-3
    /// hardware would (see [`load_check`]); FS and GS take the
    /// descriptor's base.
    fn load_seg(&mut self, r: Register, value: u64) -> Em {
        let sel = value as u16; // deliberate: a selector is 16 bits
        let ss = r == Register::SS;
        let desc = match self.descriptor(sel) {
            Ok(d) => d,
            Err(e) => return e,
        };
        if let Err(e) = load_check(sel, desc, ss) {
            return e;
        }
        let base = desc.map(desc_base);
        let pv = self.pv();
        match r {
            Register::SS => pv.sel.ss = sel,
            Register::DS => pv.sel.ds = sel,
            Register::ES => pv.sel.es = sel,
            Register::FS => pv.sel.fs = sel,
            Register::GS => pv.sel.gs = sel,
            _ => return GP0,
        }
        match (r, base) {
            (Register::FS, Some(b)) => self.regs.fs_base = b,
            (Register::GS, Some(b)) => self.regs.gs_base = b,
            _ => {}
        }
        Em::Done
    }

    /// The descriptor `sel` names: None for a null selector; #GP(sel)
    /// beyond the tables.
    fn descriptor(&mut self, sel: u16) -> Result<Option<u64>, Em> {
        let (d, v) = (self.d, self.v);
        let vc = self.hv.vcpu_mut(d, v);
        descriptor(&vc.pv, sel, self.mem)
    }
}

/// Reads the descriptor of `sel` from `pv`'s GDT (guest frames, then Xen's
/// reserved entries) or LDT: None for a null GDT selector, #GP(sel) past
/// the tables or where the table cannot be read.
fn descriptor(pv: &PvCpu, sel: u16, mem: &mut dyn HypervisorMemory) -> Result<Option<u64>, Em> {
    let gp = Em::Fault(13, Some(u64::from(sel & 0xfffc)));
    let idx = u32::from(sel >> 3);
    if sel & 4 != 0 {
        if idx >= pv.ldt_entries {
            return Err(gp);
        }
        let mut b = [0u8; 8];
        let a = pv.ldt_base.wrapping_add(u64::from(idx) * 8);
        return mem
            .read_virt(a, &mut b)
            .map(|()| Some(u64::from_le_bytes(b)))
            .map_err(|_| gp);
    }
    if idx == 0 {
        return Ok(None);
    }
    if idx < pv.gdt_entries {
        let frame = pv.gdt_frames[(idx / pvcpu::DESCS_PER_FRAME) as usize];
        let ma = frame
            .addr(u64::from(idx % pvcpu::DESCS_PER_FRAME) * 8)
            .get();
        return Ok(Some(mem.read_ma_u64(ma)));
    }
    let xen = idx.wrapping_sub(pvcpu::FIRST_RESERVED_GDT_ENTRY) as usize;
    match pvcpu::XEN_GDT.get(xen) {
        Some(&d) if idx >= pvcpu::FIRST_RESERVED_GDT_ENTRY => Ok(Some(d)),
        _ => Err(gp),
    }
}

/// Whether an instruction needs CPL 0 (the core raised #GP(0) for it
/// whatever its operands): those the emulator handles only in guest
/// kernel mode, and the ones it never emulates.
fn is_privileged(ins: &Instruction) -> bool {
    use Mnemonic as M;
    smpsim_cores::translate::needs_cpl0(ins)
        || matches!(
            ins.mnemonic(),
            M::Insb | M::Insw | M::Insd | M::Outsb | M::Outsw | M::Outsd | M::Hlt
        )
}

/// set_segment_base(SEGBASE_GS_USER_SEL): loads `sel` as a data segment
/// for user mode; None if the load would fault, else the new base (None
/// for a null selector, which keeps it).
pub(crate) fn user_gs_load(
    pv: &PvCpu,
    sel: u16,
    mem: &mut dyn HypervisorMemory,
) -> Option<Option<u64>> {
    let desc = descriptor(pv, sel, mem).ok()?;
    load_check(sel, desc, false).ok()?;
    Some(desc.map(desc_base))
}

/// A descriptor's 32-bit base.
fn desc_base(d: u64) -> u64 {
    (d >> 16 & 0xff_ffff) | (d >> 56 & 0xff) << 24
}

/// The checks of a segment-register load at CPL 3 in 64-bit mode: a null
/// selector loads into a data register and not SS (#GP(0)); SS needs RPL
/// 3, DPL 3 and a writable data segment; a data register a data or
/// readable code segment of DPL ≥ RPL and 3 (conforming code excepted);
/// every failure is #GP(sel), a not-present segment #NP(sel) (#SS(sel)
/// for SS).
fn load_check(sel: u16, desc: Option<u64>, ss: bool) -> Result<(), Em> {
    let err = Some(u64::from(sel & 0xfffc));
    let gp = Em::Fault(13, err);
    let Some(d) = desc else {
        return if ss { Err(GP0) } else { Ok(()) };
    };
    let s = d >> 44 & 1 != 0;
    let ty = d >> 40 & 0xf;
    let dpl = d >> 45 & 3;
    let present = d >> 47 & 1 != 0;
    let code = ty & 8 != 0;
    let rpl = u64::from(sel & 3);
    if !s {
        return Err(gp);
    }
    if ss {
        if rpl != 3 || dpl != 3 || code || ty & 2 == 0 {
            return Err(gp);
        }
        return if present {
            Ok(())
        } else {
            Err(Em::Fault(12, err))
        };
    }
    let readable = !code || ty & 2 != 0;
    let conforming = code && ty & 4 != 0;
    if !readable || (!conforming && dpl < rpl.max(3)) {
        return Err(gp);
    }
    if present {
        Ok(())
    } else {
        Err(Em::Fault(11, err))
    }
}

/// The MSRs a PV64 guest kernel may read, and their values: FS/GS bases
/// (the shadow is the inactive mode's GS), EFER, TSC (the cycle counter),
/// DEBUGCTL (0), and PLATFORM_INFO and MISC_FEATURES_ENABLES, which Xen
/// offers every guest, as 0: smpsim cannot fault a native CPUID, so it
/// has no CPUID faulting to offer. Everything else is #GP, as in Xen since
/// 4.15; smpsim's CPUID model is AMD, so Intel-only MSRs (MISC_ENABLE)
/// are #GP too.
pub fn read_msr(regs: &ArchState, pv: &PvCpu, cycle: u64, idx: u32) -> Option<u64> {
    Some(match idx {
        msr::FS_BASE => regs.fs_base,
        msr::GS_BASE => regs.gs_base,
        msr::SHADOW_GS_BASE => pv.shadow_gs,
        msr::EFER => EFER_VALUE,
        msr::TSC => cycle,
        msr::DEBUGCTL | msr::PLATFORM_INFO | msr::MISC_FEATURES_ENABLES => 0,
        _ => return None,
    })
}

#[cfg(test)]
#[path = "emulate/tests.rs"]
mod tests;
