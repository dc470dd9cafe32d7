//! Instruction → uop templates, one arm per supported mnemonic family.

use super::{ud_detail, Tx};
use crate::alu::count_mask;
use crate::uop::{fl, Op, Uop, FLAGS, FSBASE, GSBASE, IMM, SINK, ZERO};
use iced_x86::{Code, ConditionCode, Instruction, Mnemonic, OpKind, Register};

mod atomic;
mod flow;
mod simd;

const RAX: u8 = 0;
const RCX: u8 = 1;
const RDX: u8 = 2;
const RBX: u8 = 3;
const RSP: u8 = 4;
const RBP: u8 = 5;

/// A decoded memory operand.
#[derive(Clone, Copy, Debug)]
pub(crate) struct MemRef {
    base: u8,
    index: u8,
    scale: u8,
    disp: i64,
    seg: u8,
    addr32: bool,
}

/// An instruction operand.
#[derive(Clone, Copy, Debug)]
enum Opnd {
    /// A GPR; `hi` for AH/CH/DH/BH.
    Reg { idx: u8, hi: bool },
    /// An immediate (already sign-extended by the decoder).
    Imm(i64),
    /// A memory location.
    Mem(MemRef),
}

/// A source value: a register, or the immediate when `r == IMM`.
#[derive(Clone, Copy, Debug)]
struct Src {
    r: u8,
    imm: i64,
}

/// The translation could not be done: raise #UD.
struct Unsupported;

type Tr = Result<bool, Unsupported>;

fn gpr(r: Register) -> Option<(u8, bool)> {
    if !r.is_gpr() {
        return None;
    }
    let idx = u8::try_from(r.full_register().number()).expect("GPR numbers are below 16");
    let hi = matches!(r, Register::AH | Register::CH | Register::DH | Register::BH);
    Some((idx, hi))
}

fn seg_reg(r: Register) -> u8 {
    match r {
        Register::FS => FSBASE,
        Register::GS => GSBASE,
        _ => ZERO,
    }
}

fn mem_ref(ins: &Instruction) -> Result<MemRef, Unsupported> {
    let reg_or_zero = |r: Register| -> Result<u8, Unsupported> {
        match r {
            Register::None | Register::RIP | Register::EIP => Ok(ZERO),
            r => gpr(r).map(|(i, _)| i).ok_or(Unsupported),
        }
    };
    let base = reg_or_zero(ins.memory_base())?;
    let index = reg_or_zero(ins.memory_index())?;
    let scale = ins.memory_index_scale().trailing_zeros();
    let addr32 = ins.memory_base().is_gpr32()
        || ins.memory_index().is_gpr32()
        || ins.memory_base() == Register::EIP;
    Ok(MemRef {
        base,
        index,
        scale: u8::try_from(scale).expect("scale is 1, 2, 4 or 8"),
        // Reinterpreting the 64-bit displacement as signed is the point.
        disp: ins.memory_displacement64() as i64,
        seg: seg_reg(ins.memory_segment()),
        addr32,
    })
}

fn opnd(ins: &Instruction, i: u32) -> Result<Opnd, Unsupported> {
    match ins.op_kind(i) {
        OpKind::Register => {
            let (idx, hi) = gpr(ins.op_register(i)).ok_or(Unsupported)?;
            Ok(Opnd::Reg { idx, hi })
        }
        OpKind::Memory => Ok(Opnd::Mem(mem_ref(ins)?)),
        OpKind::Immediate8
        | OpKind::Immediate8_2nd
        | OpKind::Immediate16
        | OpKind::Immediate32
        | OpKind::Immediate64
        | OpKind::Immediate8to16
        | OpKind::Immediate8to32
        | OpKind::Immediate8to64
        | OpKind::Immediate32to64 => Ok(Opnd::Imm(ins.immediate(i) as i64)),
        _ => Err(Unsupported),
    }
}

/// Operand size in bytes of operand `i`.
fn opsize(ins: &Instruction, i: u32) -> u8 {
    let s = match ins.op_kind(i) {
        OpKind::Register => ins.op_register(i).size(),
        _ => ins.memory_size().size(),
    };
    u8::try_from(s).expect("integer operand sizes fit u8")
}

fn mem_uop(op: Op, size: u8, m: &MemRef) -> Uop {
    let mut u = Uop::new(op, size);
    u.a = m.base;
    u.c = m.index;
    u.aux = m.scale | if m.addr32 { 4 } else { 0 };
    u.fl = if op == Op::Lea { 0 } else { m.seg };
    u.imm = m.disp;
    u
}

fn stack_ref(disp: i64) -> MemRef {
    MemRef {
        base: RSP,
        index: ZERO,
        scale: 0,
        disp,
        seg: ZERO,
        addr32: false,
    }
}

fn uop(op: Op, size: u8, dst: u8, a: u8, b: Src) -> Uop {
    let mut u = Uop::new(op, size);
    u.dst = dst;
    u.a = a;
    u.b = b.r;
    u.imm = b.imm;
    u
}

fn reg(r: u8) -> Src {
    Src { r, imm: 0 }
}

fn imm(v: i64) -> Src {
    Src { r: IMM, imm: v }
}

impl Tx<'_> {
    fn load(&mut self, m: &MemRef, size: u8) -> u8 {
        let t = self.tmp();
        let mut u = mem_uop(Op::Ld, size, m);
        u.dst = t;
        self.emit(u);
        t
    }

    /// Loads a destination the instruction also writes (a read-modify-write,
    /// an exchange): a page fault on it is the write's, error code W
    /// ([`crate::uop::LD_FOR_WRITE`]), as the hardware reports it.
    fn load_for_write(&mut self, m: &MemRef, size: u8) -> u8 {
        let t = self.tmp();
        let mut u = mem_uop(Op::Ld, size, m);
        u.dst = t;
        u.aux |= crate::uop::LD_FOR_WRITE;
        self.emit(u);
        t
    }

    fn store(&mut self, m: &MemRef, size: u8, v: u8) {
        let mut u = mem_uop(Op::St, size, m);
        u.b = v;
        self.emit(u);
    }

    /// Reads an operand as a source.
    fn read(&mut self, o: Opnd, size: u8) -> Src {
        match o {
            Opnd::Imm(v) => imm(v),
            Opnd::Reg { idx, hi: false } => reg(idx),
            Opnd::Reg { idx, hi: true } => {
                let t = self.tmp();
                self.emit(uop(Op::GetHi, 8, t, idx, reg(ZERO)));
                reg(t)
            }
            Opnd::Mem(m) => reg(self.load(&m, size)),
        }
    }

    /// Reads an operand into a register (immediates go through a temporary).
    fn read_reg(&mut self, o: Opnd, size: u8) -> u8 {
        let s = self.read(o, size);
        if s.r != IMM {
            return s.r;
        }
        let t = self.tmp();
        self.emit(uop(Op::MovI, 8, t, ZERO, s));
        t
    }

    /// Reads an operand into a temporary copy (safe against later writes).
    /// Only exchanges use it, whose memory operand is always written too: it
    /// is loaded for writing.
    fn read_copy(&mut self, o: Opnd, size: u8) -> u8 {
        match o {
            Opnd::Reg { idx, hi: false } => {
                let t = self.tmp();
                self.emit(uop(Op::Mov, 8, t, idx, reg(ZERO)));
                t
            }
            Opnd::Mem(m) => self.load_for_write(&m, size),
            _ => self.read_reg(o, size),
        }
    }

    /// Writes `v` to an operand at `size`.
    fn write(&mut self, o: Opnd, size: u8, v: Src) {
        match o {
            Opnd::Reg { idx, hi: false } => {
                if v.r == IMM {
                    self.emit(uop(Op::MovI, size, idx, ZERO, v));
                } else {
                    self.emit(uop(Op::Mov, size, idx, v.r, reg(ZERO)));
                }
            }
            Opnd::Reg { idx, hi: true } => {
                let r = self.src_reg(v);
                self.emit(uop(Op::PutHi, 8, idx, r, reg(ZERO)));
            }
            Opnd::Mem(m) => {
                let r = self.src_reg(v);
                self.store(&m, size, r);
            }
            Opnd::Imm(_) => unreachable!("the decoder never makes an immediate a destination"),
        }
    }

    fn src_reg(&mut self, v: Src) -> u8 {
        if v.r != IMM {
            return v.r;
        }
        let t = self.tmp();
        self.emit(uop(Op::MovI, 8, t, ZERO, v));
        t
    }

    /// Starts a read-modify-write of `o`: the register holding its value.
    /// Starts a read-modify-write of `o`: the register holding its value (a
    /// memory destination is loaded for writing).
    fn rmw_begin(&mut self, o: Opnd, size: u8) -> u8 {
        match o {
            Opnd::Reg { idx, hi: false } => idx,
            Opnd::Mem(m) => self.load_for_write(&m, size),
            _ => self.read_reg(o, size),
        }
    }

    /// Finishes a read-modify-write: writes `v` back if `o` is not a plain register.
    fn rmw_end(&mut self, o: Opnd, size: u8, v: u8) {
        if !matches!(o, Opnd::Reg { hi: false, .. }) {
            self.write(o, size, reg(v));
        }
    }

    /// `op dst, src` with flags `flm`; the result is stored unless `discard`.
    fn alu2(&mut self, ins: &Instruction, op: Op, flm: u8, discard: bool) -> Tr {
        let size = opsize(ins, 0);
        let dst = opnd(ins, 0)?;
        let src = self.read(opnd(ins, 1)?, size);
        // cmp and test only read their first operand.
        let cur = if discard {
            self.read_reg(dst, size)
        } else {
            self.rmw_begin(dst, size)
        };
        let d = if discard { SINK } else { cur };
        let mut u = uop(op, size, d, cur, src);
        u.fl = flm;
        self.emit(u);
        if !discard {
            self.rmw_end(dst, size, cur);
        }
        Ok(false)
    }

    /// `op dst` (one operand, result in place).
    fn alu1(&mut self, ins: &Instruction, op: Op, flm: u8) -> Tr {
        let size = opsize(ins, 0);
        let dst = opnd(ins, 0)?;
        let cur = self.rmw_begin(dst, size);
        let mut u = uop(op, size, cur, cur, reg(ZERO));
        u.fl = flm;
        self.emit(u);
        self.rmw_end(dst, size, cur);
        Ok(false)
    }

    /// Shifts and rotates: `op dst, count`.
    fn shift(&mut self, ins: &Instruction, op: Op) -> Tr {
        let size = opsize(ins, 0);
        let dst = opnd(ins, 0)?;
        let count = if ins.op_count() > 1 {
            self.read(opnd(ins, 1)?, 1)
        } else {
            imm(1)
        };
        let flm = if matches!(op, Op::Rol | Op::Ror | Op::Rcl | Op::Rcr) {
            fl::CF | fl::OF
        } else {
            fl::ALL
        };
        let flm = if count.r == IMM && count_mask(size, count.imm as u64) == 0 {
            0
        } else {
            flm
        };
        let cur = self.rmw_begin(dst, size);
        let mut u = uop(op, size, cur, cur, count);
        u.fl = flm;
        self.emit(u);
        self.rmw_end(dst, size, cur);
        Ok(false)
    }

    /// SHLD/SHRD `dst, fill, count`.
    fn dshift(&mut self, ins: &Instruction, op: Op) -> Tr {
        let size = opsize(ins, 0);
        let dst = opnd(ins, 0)?;
        let fill = self.read_reg(opnd(ins, 1)?, size);
        let count = self.read(opnd(ins, 2)?, 1);
        let flm = if count.r == IMM && count_mask(size, count.imm as u64) == 0 {
            0
        } else {
            fl::ALL
        };
        let cur = self.rmw_begin(dst, size);
        let mut u = uop(op, size, cur, cur, count);
        u.c = fill;
        u.fl = flm;
        self.emit(u);
        self.rmw_end(dst, size, cur);
        Ok(false)
    }

    /// One-operand mul/imul/div/idiv on rdx:rax (ax for bytes).
    fn muldiv(&mut self, ins: &Instruction, op: Op) -> Tr {
        let size = opsize(ins, 0);
        let src = self.read_reg(opnd(ins, 0)?, size);
        let mut u = uop(op, size, RAX, RAX, reg(src));
        u.c = RDX;
        // AMD: multiplies keep SF ZF AF PF; divides set them to fixed values.
        u.fl = if matches!(op, Op::Mul | Op::ImulW) {
            fl::CF | fl::OF
        } else {
            fl::SF | fl::ZF | fl::AF | fl::PF
        };
        self.emit(u);
        Ok(false)
    }

    /// Two- and three-operand imul.
    fn imul_n(&mut self, ins: &Instruction) -> Tr {
        let size = opsize(ins, 0);
        let Opnd::Reg { idx, .. } = opnd(ins, 0)? else {
            return Err(Unsupported);
        };
        let (a, b) = if ins.op_count() == 3 {
            (
                self.read_reg(opnd(ins, 1)?, size),
                self.read(opnd(ins, 2)?, size),
            )
        } else {
            (idx, self.read(opnd(ins, 1)?, size))
        };
        let mut u = uop(Op::Imul, size, idx, a, b);
        u.fl = fl::CF | fl::OF;
        self.emit(u);
        Ok(false)
    }

    /// BT/BTS/BTR/BTC.
    fn bt(&mut self, ins: &Instruction, op: Op) -> Tr {
        let size = opsize(ins, 0);
        let bitsrc = self.read(opnd(ins, 1)?, size);
        let dst = match opnd(ins, 0)? {
            Opnd::Mem(m) if bitsrc.r != IMM => {
                // A register bit offset addresses a bit string: move the address.
                let t = self.tmp();
                self.emit(mem_uop(Op::Lea, 8, &m).with_dst(t));
                self.emit(uop(Op::BtAddr, size, t, t, bitsrc));
                Opnd::Mem(MemRef {
                    base: t,
                    index: ZERO,
                    scale: 0,
                    disp: 0,
                    seg: m.seg,
                    addr32: false,
                })
            }
            o => o,
        };
        // bt only reads.
        let cur = if op == Op::Bt {
            self.read_reg(dst, size)
        } else {
            self.rmw_begin(dst, size)
        };
        let d = if op == Op::Bt { SINK } else { cur };
        let mut u = uop(op, size, d, cur, bitsrc);
        u.fl = fl::CF;
        self.emit(u);
        if op != Op::Bt {
            self.rmw_end(dst, size, cur);
        }
        Ok(false)
    }

    /// BSF/BSR/LZCNT/TZCNT/POPCNT `reg, r/m`.
    fn bitscan(&mut self, ins: &Instruction, op: Op) -> Tr {
        let size = opsize(ins, 0);
        let Opnd::Reg { idx, .. } = opnd(ins, 0)? else {
            return Err(Unsupported);
        };
        let src = self.read_reg(opnd(ins, 1)?, size);
        let mut u = uop(op, size, idx, src, reg(ZERO));
        u.fl = match op {
            Op::Lzcnt | Op::Tzcnt => fl::ALL & !fl::OF,
            _ => fl::ALL,
        };
        self.emit(u);
        Ok(false)
    }

    fn setcc(&mut self, ins: &Instruction) -> Tr {
        let cc = cond(ins)?;
        match opnd(ins, 0)? {
            Opnd::Reg { idx, hi: false } => {
                self.emit(uop(Op::Setcc, 1, idx, ZERO, reg(ZERO)).with_aux(cc))
            }
            o => {
                let t = self.tmp();
                self.emit(uop(Op::Setcc, 1, t, ZERO, reg(ZERO)).with_aux(cc));
                self.write(o, 1, reg(t));
            }
        }
        Ok(false)
    }

    fn cmov(&mut self, ins: &Instruction) -> Tr {
        let size = opsize(ins, 0);
        let cc = cond(ins)?;
        let Opnd::Reg { idx, .. } = opnd(ins, 0)? else {
            return Err(Unsupported);
        };
        let src = self.read_reg(opnd(ins, 1)?, size);
        self.emit(uop(Op::Cmov, size, idx, idx, reg(src)).with_aux(cc));
        Ok(false)
    }

    /// movs/stos/lods/cmps/scas; `kind` as in [`Op::Str`].
    fn string(&mut self, ins: &Instruction, kind: u8) -> Tr {
        let size = u8::try_from(ins.memory_size().size()).expect("string element size");
        let addr32 = (0..ins.op_count())
            .any(|i| matches!(ins.op_kind(i), OpKind::MemorySegESI | OpKind::MemoryESEDI));
        let mut u = Uop::new(Op::Str, size);
        u.aux = kind | if addr32 { 8 } else { 0 };
        u.fl = seg_reg(ins.memory_segment());
        self.emit(u);
        let rep = if ins.has_repne_prefix() && kind >= 3 {
            2
        } else if ins.has_rep_prefix() || ins.has_repe_prefix() || ins.has_repne_prefix() {
            1
        } else {
            0
        };
        if rep != 0 {
            self.rep = rep | if addr32 { 4 } else { 0 };
        }
        Ok(rep != 0)
    }

    fn sign_fill(&mut self, size: u8) -> Tr {
        // cwd/cdq/cqo: rdx = all copies of rax's sign bit.
        self.emit(uop(Op::Sar, size, RDX, RAX, imm(i64::from(8 * size - 1))));
        Ok(false)
    }

    fn movx(&mut self, ins: &Instruction, op: Op) -> Tr {
        let size = opsize(ins, 0);
        let from = opsize(ins, 1);
        let Opnd::Reg { idx, .. } = opnd(ins, 0)? else {
            return Err(Unsupported);
        };
        let src = opnd(ins, 1)?;
        // AMD: movsxd r16, m reads a dword (it can fault on bytes 2-3).
        let read = if ins.mnemonic() == Mnemonic::Movsxd && matches!(src, Opnd::Mem(_)) {
            4
        } else {
            from
        };
        let s = self.read_reg(src, read);
        self.emit(uop(op, size, idx, s, reg(ZERO)).with_aux(from));
        Ok(false)
    }

    fn lea(&mut self, ins: &Instruction) -> Tr {
        let size = opsize(ins, 0);
        let Opnd::Reg { idx, .. } = opnd(ins, 0)? else {
            return Err(Unsupported);
        };
        let m = mem_ref(ins)?;
        self.emit(mem_uop(Op::Lea, size, &m).with_dst(idx));
        Ok(false)
    }

    fn fsgs(&mut self, ins: &Instruction, base: u8, read: bool) -> Tr {
        let size = opsize(ins, 0);
        let Opnd::Reg { idx, .. } = opnd(ins, 0)? else {
            return Err(Unsupported);
        };
        // #UD unless CR4.FSGSBASE is set (checked when it executes).
        let detail = self.details.len();
        self.details
            .push(format!("#UD: {ins} with CR4.FSGSBASE clear"));
        self.emit(Uop {
            imm: detail as i64,
            ..uop(Op::Chk, 8, SINK, ZERO, reg(ZERO)).with_aux(2)
        });
        if read {
            self.emit(uop(Op::Mov, size, idx, base, reg(ZERO)));
        } else {
            // Zero-extends a 32-bit source; a non-canonical value raises #GP.
            let t = self.tmp();
            self.emit(uop(Op::Zext, 8, t, idx, reg(ZERO)).with_aux(size));
            self.emit(uop(Op::Chk, 8, SINK, t, reg(ZERO)).with_aux(1));
            self.emit(uop(Op::Mov, 8, base, t, reg(ZERO)));
        }
        Ok(false)
    }

    fn simple(&mut self, op: Op, size: u8) {
        self.emit(Uop::new(op, size));
    }
}

trait UopExt {
    fn with_aux(self, aux: u8) -> Self;
    fn with_dst(self, d: u8) -> Self;
}

impl UopExt for Uop {
    fn with_aux(mut self, aux: u8) -> Self {
        self.aux = aux;
        self
    }
    fn with_dst(mut self, d: u8) -> Self {
        self.dst = d;
        self
    }
}

/// x86 condition number (0–15) of "equal".
const fn cc_e() -> u8 {
    4
}

fn cond(ins: &Instruction) -> Result<u8, Unsupported> {
    match ins.condition_code() {
        ConditionCode::None => Err(Unsupported),
        c => Ok(c as u8 - 1),
    }
}

/// The exception ring-3 hardware raises for a privileged instruction (PV64
/// guest kernels run in ring 3), or None for an ordinary one.
///
/// - #GP(0) (13) for what needs CPL 0 (CR/DR moves, MSRs, descriptor-table
///   loads, `clts`, cache control, `swapgs`), for what needs IOPL 3 (`in`,
///   `out`, `ins`, `outs`, `cli`, `sti`: the hypervisor applies its
///   virtual IOPL), and for `int imm8` (Xen's IDT gates are DPL 0 for
///   all but #BP and #OF, so hardware gives #GP(vector*8+2); the
///   hypervisor rebuilds the error code from the instruction).
/// - #DB (1) for `int1` (icebp), #BP (3) for `int3` and `int 3`, #OF (4)
///   for `int 4`: traps through DPL-3 gates.
///
/// Departure from hardware: the core models no descriptor tables or
/// selectors, so segment-register loads and reads (`mov` to and from a
/// segment register, `push`/`pop` of FS and GS, `lfs`/`lgs`/`lss`) and
/// `sgdt`/`sidt`/`sldt`/`str`/`smsw`, which ring 3 may execute, trap with
/// #GP(0) too and the hypervisor emulates them (`smpsim_xen::emulate`).
/// Whether an instruction needs CPL 0 whatever its operands (what a PV
/// guest's kernel, at ring 3, may only have emulated by the hypervisor):
/// CR and DR moves, MSR access, descriptor-table and task-register loads,
/// `lmsw`, `clts`, cache control, `swapgs` and `rdpmc` (`hlt` too, which
/// the core reports as its own exit).
pub fn needs_cpl0(ins: &Instruction) -> bool {
    use Mnemonic as M;
    let cr_dr = (0..ins.op_count())
        .filter(|&i| ins.op_kind(i) == OpKind::Register)
        .any(|i| ins.op_register(i).is_cr() || ins.op_register(i).is_dr());
    cr_dr
        || matches!(
            ins.mnemonic(),
            M::Rdmsr
                | M::Wrmsr
                | M::Lgdt
                | M::Lidt
                | M::Lldt
                | M::Ltr
                | M::Lmsw
                | M::Clts
                | M::Invd
                | M::Wbinvd
                | M::Swapgs
                | M::Rdpmc
        )
}

fn privileged_vector(ins: &Instruction) -> Option<u8> {
    use Mnemonic as M;
    let regs = (0..ins.op_count()).filter(|&i| ins.op_kind(i) == OpKind::Register);
    let special = regs
        .map(|i| ins.op_register(i))
        .any(|r| r.is_cr() || r.is_dr() || r.is_segment_register());
    match ins.mnemonic() {
        M::Int1 => Some(1),
        M::Int => match ins.immediate8() {
            3 => Some(3),
            4 => Some(4),
            _ => Some(13),
        },
        M::Mov | M::Push | M::Pop if special => Some(13),
        _ if needs_cpl0(ins) => Some(13),
        M::Sgdt
        | M::Sidt
        | M::Sldt
        | M::Str
        | M::Smsw
        | M::In
        | M::Out
        | M::Insb
        | M::Insw
        | M::Insd
        | M::Outsb
        | M::Outsw
        | M::Outsd
        | M::Cli
        | M::Sti
        | M::Lfs
        | M::Lgs
        | M::Lss
        | M::Retf => Some(13),
        // Far branches through memory: the hypervisor checks the selector.
        M::Call | M::Jmp if ins.is_call_far_indirect() || ins.is_jmp_far_indirect() => Some(13),
        _ => None,
    }
}

fn privileged_detail(ins: &Instruction, vector: u8) -> String {
    let mut text = String::new();
    iced_x86::Formatter::format(&mut iced_x86::IntelFormatter::new(), ins, &mut text);
    let what = match vector {
        1 => "#DB",
        3 => "#BP",
        4 => "#OF",
        _ => "#GP",
    };
    format!("{what}: {text} at {:#x} (privileged in ring 3)", ins.ip())
}

/// Translates one instruction; returns whether it ends the block.
/// Anything unsupported becomes a `Raise` of #UD naming the instruction.
pub(crate) fn translate(tx: &mut Tx<'_>, ins: &Instruction, bytes: &[u8]) -> bool {
    let start = tx.uops.len();
    match dispatch(tx, ins) {
        Ok(ends) => ends,
        Err(Unsupported) => {
            tx.uops.truncate(start);
            tx.rep = 0;
            tx.raise(6, ud_detail(ins, bytes));
            true
        }
    }
}

/// The mnemonic table. Long by nature: one arm per instruction family.
fn dispatch(tx: &mut Tx<'_>, ins: &Instruction) -> Tr {
    use Mnemonic as M;
    if ins.is_invalid() {
        return Err(Unsupported);
    }
    if let Some(vector) = privileged_vector(ins) {
        tx.raise(vector, privileged_detail(ins, vector));
        return Ok(true);
    }
    match ins.mnemonic() {
        M::Mov => {
            let size = opsize(ins, 0);
            if let (Opnd::Reg { idx, hi: false }, Opnd::Mem(m)) = (opnd(ins, 0)?, opnd(ins, 1)?) {
                // Straight into the register: the load writes it only on success.
                tx.emit(mem_uop(Op::Ld, size, &m).with_dst(idx));
                return Ok(false);
            }
            let v = tx.read(opnd(ins, 1)?, size);
            tx.write(opnd(ins, 0)?, size, v);
            Ok(false)
        }
        M::Movzx => tx.movx(ins, Op::Zext),
        M::Movsx | M::Movsxd => tx.movx(ins, Op::Sext),
        M::Lea => tx.lea(ins),
        M::Add => tx.alu2(ins, Op::Add, fl::ALL, false),
        M::Adc => tx.alu2(ins, Op::Adc, fl::ALL, false),
        M::Sub => tx.alu2(ins, Op::Sub, fl::ALL, false),
        M::Sbb => tx.alu2(ins, Op::Sbb, fl::ALL, false),
        M::Cmp => tx.alu2(ins, Op::Sub, fl::ALL, true),
        M::And => tx.alu2(ins, Op::And, fl::ALL, false),
        M::Or => tx.alu2(ins, Op::Or, fl::ALL, false),
        M::Xor => tx.alu2(ins, Op::Xor, fl::ALL, false),
        M::Test => tx.alu2(ins, Op::And, fl::ALL, true),
        M::Inc => tx.alu1(ins, Op::Inc, fl::NOCF),
        M::Dec => tx.alu1(ins, Op::Dec, fl::NOCF),
        M::Neg => tx.alu1(ins, Op::Neg, fl::ALL),
        M::Not => tx.alu1(ins, Op::Not, 0),
        M::Shl | M::Sal => tx.shift(ins, Op::Shl),
        M::Shr => tx.shift(ins, Op::Shr),
        M::Sar => tx.shift(ins, Op::Sar),
        M::Rol => tx.shift(ins, Op::Rol),
        M::Ror => tx.shift(ins, Op::Ror),
        M::Rcl => tx.shift(ins, Op::Rcl),
        M::Rcr => tx.shift(ins, Op::Rcr),
        M::Shld => tx.dshift(ins, Op::Shld),
        M::Shrd => tx.dshift(ins, Op::Shrd),
        M::Mul => tx.muldiv(ins, Op::Mul),
        M::Imul if ins.op_count() == 1 => tx.muldiv(ins, Op::ImulW),
        M::Imul => tx.imul_n(ins),
        M::Div => tx.muldiv(ins, Op::Div),
        M::Idiv => tx.muldiv(ins, Op::Idiv),
        M::Bt => tx.bt(ins, Op::Bt),
        M::Bts => tx.bt(ins, Op::Bts),
        M::Btr => tx.bt(ins, Op::Btr),
        M::Btc => tx.bt(ins, Op::Btc),
        M::Bsf => tx.bitscan(ins, Op::Bsf),
        M::Bsr => tx.bitscan(ins, Op::Bsr),
        M::Lzcnt => tx.bitscan(ins, Op::Lzcnt),
        M::Tzcnt => tx.bitscan(ins, Op::Tzcnt),
        M::Popcnt => tx.bitscan(ins, Op::Popcnt),
        M::Bswap => {
            let size = opsize(ins, 0);
            let Opnd::Reg { idx, .. } = opnd(ins, 0)? else {
                return Err(Unsupported);
            };
            tx.emit(uop(Op::Bswap, size, idx, idx, reg(ZERO)));
            Ok(false)
        }
        M::Cbw => tx.ext_acc(2),
        M::Cwde => tx.ext_acc(4),
        M::Cdqe => tx.ext_acc(8),
        M::Cwd => tx.sign_fill(2),
        M::Cdq => tx.sign_fill(4),
        M::Cqo => tx.sign_fill(8),
        M::Sete | M::Setne | M::Seto | M::Setno | M::Setb | M::Setae | M::Setbe | M::Seta => {
            tx.setcc(ins)
        }
        M::Sets | M::Setns | M::Setp | M::Setnp | M::Setl | M::Setge | M::Setle | M::Setg => {
            tx.setcc(ins)
        }
        M::Cmove
        | M::Cmovne
        | M::Cmovo
        | M::Cmovno
        | M::Cmovb
        | M::Cmovae
        | M::Cmovbe
        | M::Cmova => tx.cmov(ins),
        M::Cmovs
        | M::Cmovns
        | M::Cmovp
        | M::Cmovnp
        | M::Cmovl
        | M::Cmovge
        | M::Cmovle
        | M::Cmovg => tx.cmov(ins),
        M::Je
        | M::Jne
        | M::Jo
        | M::Jno
        | M::Jb
        | M::Jae
        | M::Jbe
        | M::Ja
        | M::Js
        | M::Jns
        | M::Jp
        | M::Jnp
        | M::Jl
        | M::Jge
        | M::Jle
        | M::Jg => {
            if ins.op_kind(0) != OpKind::NearBranch64 {
                return Err(Unsupported);
            }
            let cc = cond(ins)?;
            tx.emit(uop(Op::Jcc, 8, SINK, ZERO, imm(ins.near_branch_target() as i64)).with_aux(cc));
            Ok(true)
        }
        M::Jmp => {
            let t = tx.branch_target(ins)?;
            tx.jump(ins, t);
            Ok(true)
        }
        M::Loop | M::Loope | M::Loopne | M::Jrcxz => {
            // aux: 0 plain, 1 also needs ZF (loope), 2 also needs !ZF (loopne).
            let (op, aux) = match ins.code() {
                Code::Loop_rel8_64_RCX => (Op::Jnz, 0),
                Code::Loope_rel8_64_RCX => (Op::Jnz, 1),
                Code::Loopne_rel8_64_RCX => (Op::Jnz, 2),
                Code::Jrcxz_rel8_64 => (Op::Jz, 0),
                _ => return Err(Unsupported),
            };
            if op == Op::Jnz {
                tx.emit(uop(Op::Sub, 8, RCX, RCX, imm(1)));
            }
            tx.emit(uop(op, 8, SINK, RCX, imm(ins.near_branch_target() as i64)).with_aux(aux));
            Ok(true)
        }
        M::Call => tx.call(ins),
        M::Ret => tx.ret(ins),
        M::Push => tx.push(ins),
        M::Pop => tx.pop(ins),
        M::Enter if ins.code() == Code::Enterq_imm16_imm8 => tx.enter(ins),
        M::Leave if ins.code() == Code::Leaveq => tx.leave(),
        M::Xchg => tx.xchg(ins),
        M::Cmpxchg => tx.cmpxchg(ins),
        M::Cmpxchg8b => tx.cmpxchg_wide(ins, 4),
        M::Cmpxchg16b => tx.cmpxchg_wide(ins, 8),
        M::Xadd => tx.xadd(ins),
        M::Movsb | M::Movsw | M::Movsq => tx.string(ins, 0),
        M::Movsd if ins.code() == Code::Movsd_m32_m32 => tx.string(ins, 0),
        M::Stosb | M::Stosw | M::Stosd | M::Stosq => tx.string(ins, 1),
        M::Lodsb | M::Lodsw | M::Lodsd | M::Lodsq => tx.string(ins, 2),
        M::Cmpsb | M::Cmpsw | M::Cmpsq => tx.string(ins, 3),
        M::Cmpsd if ins.code() == Code::Cmpsd_m32_m32 => tx.string(ins, 3),
        M::Scasb | M::Scasw | M::Scasd | M::Scasq => tx.string(ins, 4),
        M::Nop
        | M::Endbr64
        | M::Prefetchnta
        | M::Prefetcht0
        | M::Prefetcht1
        | M::Prefetcht2
        | M::Prefetchw => {
            tx.simple(Op::Nop, 8);
            Ok(false)
        }
        M::Pause => Ok(tx.simple_then(Op::Pause, false)),
        M::Mfence | M::Lfence | M::Sfence => Ok(tx.simple_then(Op::Fence, false)),
        M::Cpuid => Ok(tx.simple_then(Op::Cpuid, false)),
        M::Rdtsc => Ok(tx.simple_then(Op::Rdtsc, false)),
        M::Rdtscp => Ok(tx.simple_then(Op::Rdtscp, false)),
        M::Rdfsbase => tx.fsgs(ins, FSBASE, true),
        M::Rdgsbase => tx.fsgs(ins, GSBASE, true),
        M::Wrfsbase => tx.fsgs(ins, FSBASE, false),
        M::Wrgsbase => tx.fsgs(ins, GSBASE, false),
        M::Hlt => Ok(tx.simple_then(Op::Hlt, true)),
        M::Syscall => Ok(tx.simple_then(Op::Syscall, true)),
        M::Int3 => {
            tx.raise(3, format!("#BP: int3 at {:#x}", ins.ip()));
            Ok(true)
        }
        M::Pushfq => {
            let t = tx.tmp();
            // A PV guest always sees IF set (its interrupt flag is virtual).
            tx.emit(uop(Op::Or, 8, t, FLAGS, imm(crate::arch::flags::IF as i64)));
            tx.push_value(8, t);
            Ok(false)
        }
        M::Popfq => {
            let v = tx.load(&stack_ref(0), 8);
            tx.emit(uop(Op::Add, 8, RSP, RSP, imm(8)));
            tx.emit(uop(Op::Popf, 8, SINK, v, reg(ZERO)));
            Ok(false)
        }
        M::Lahf => {
            tx.emit(uop(Op::PutHi, 8, RAX, FLAGS, reg(ZERO)));
            Ok(false)
        }
        M::Sahf => {
            let t = tx.tmp();
            tx.emit(uop(Op::GetHi, 8, t, RAX, reg(ZERO)));
            tx.emit(uop(Op::Sahf, 8, SINK, t, reg(ZERO)));
            Ok(false)
        }
        M::Clc => Ok(tx.flag_op(0)),
        M::Stc => Ok(tx.flag_op(1)),
        M::Cmc => Ok(tx.flag_op(2)),
        M::Cld => Ok(tx.flag_op(3)),
        M::Std => Ok(tx.flag_op(4)),
        _ => simd::translate(tx, ins).unwrap_or(Err(Unsupported)),
    }
}

impl Tx<'_> {
    fn simple_then(&mut self, op: Op, ends: bool) -> bool {
        self.simple(op, 8);
        ends
    }

    fn flag_op(&mut self, which: u8) -> bool {
        self.emit(Uop::new(Op::FlagOp, 8).with_aux(which));
        false
    }

    /// cbw/cwde/cdqe: rax at `size` = sign-extended lower half.
    fn ext_acc(&mut self, size: u8) -> Tr {
        self.emit(uop(Op::Sext, size, RAX, RAX, reg(ZERO)).with_aux(size / 2));
        Ok(false)
    }
}
