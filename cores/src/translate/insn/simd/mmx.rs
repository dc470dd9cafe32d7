//! MMX → `Vec` uops on the MMX registers ([`crate::uop::MM0`]..): the MMX
//! instructions, SSE's and SSE2's additions on MMX registers (pavgb …
//! maskmovq, movntq, paddq, psubq, pmuludq, movdq2q, movq2dq and the
//! conversions between MMX and XMM registers) and SSSE3 on MMX registers.
//!
//! The integer operations are those of the XMM forms ([`super::int`]'s
//! table, [`crate::simd::IntOp`]) run at 64 bits; memory operands are
//! unaligned and as wide as the form says (8 bytes; 4 for the low
//! unpacks, 2 for pinsrw; cvtpd2pi/cvttpd2pi read an aligned m128).
//!
//! Every one of these instructions first raises #MF if an unmasked x87
//! exception is pending (FSW.ES; before its memory operand's page fault),
//! like a waiting x87 instruction, and ends with the x87-to-MMX transition
//! (TOP = 0, all tags valid) or, for `emms`, TOP = 0 and all tags empty
//! ([`crate::simd::x87::X87Op::Mmx`]): one uop after the instruction's
//! stores, so a page fault leaves the x87 state as it was; the
//! conversions make it before they convert, so their #XM comes after it,
//! and maskmovq before its access, so its page fault does too (all as the
//! host does). cvtpi2pd and cvtpi2ps from memory touch no
//! MMX state (the SDM says so of cvtpi2pd; the host does the same for
//! cvtpi2ps).

use super::{int, vopnd, vuop, VOpnd};
use crate::simd::x87::{imm as x87_imm, X87Op, WAIT};
use crate::simd::{fpx, pack_imm, Family, FpOp, IntOp, MovOp};
use crate::translate::insn::{Tr, Unsupported};
use crate::translate::Tx;
use crate::uop::{MM0, SINK, ZERO};
use iced_x86::{Instruction, Mnemonic, OpKind};

/// An operand of an MMX-form instruction.
#[derive(Clone, Copy, Debug)]
enum MOpnd {
    /// An MMX register (vector numbering).
    Mm(u8),
    /// Anything else (XMM, GPR, memory).
    V(VOpnd),
}

fn opnd(ins: &Instruction, i: u32) -> Result<MOpnd, Unsupported> {
    if ins.op_kind(i) == OpKind::Register && ins.op_register(i).is_mm() {
        return Ok(MOpnd::Mm(MM0 + ins.op_register(i).number() as u8));
    }
    Ok(MOpnd::V(vopnd(ins, i)?))
}

/// Whether `ins` names an MMX register.
fn names_mm(ins: &Instruction) -> bool {
    (0..ins.op_count()).any(|i| ins.op_kind(i) == OpKind::Register && ins.op_register(i).is_mm())
}

/// Translates an MMX-form instruction, or None if `ins` is not one.
pub(super) fn translate(tx: &mut Tx<'_>, ins: &Instruction) -> Option<Tr> {
    let mn = ins.mnemonic();
    let cvt_from_mem = matches!(mn, Mnemonic::Cvtpi2ps | Mnemonic::Cvtpi2pd);
    if !(names_mm(ins) || mn == Mnemonic::Emms) {
        return cvt_from_mem.then(|| convert(tx, ins, mn, false));
    }
    x87_uop(tx, X87Op::Nop, 0, WAIT);
    let r = body(tx, ins, mn);
    if !is_convert(mn) && mn != Mnemonic::Maskmovq {
        x87_uop(tx, X87Op::Mmx, u8::from(mn == Mnemonic::Emms), 0);
    }
    Some(r)
}

/// The conversions between MMX and XMM registers.
fn is_convert(mn: Mnemonic) -> bool {
    use Mnemonic as M;
    matches!(
        mn,
        M::Cvtpi2ps | M::Cvtpi2pd | M::Cvtps2pi | M::Cvttps2pi | M::Cvtpd2pi | M::Cvttpd2pi
    )
}

/// An x87-family uop touching no register operand.
fn x87_uop(tx: &mut Tx<'_>, op: X87Op, sub: u8, bits: i64) {
    let mut u = vuop(Family::X87, 0, 8, SINK, ZERO, ZERO, ZERO, 0);
    u.imm = x87_imm(op, 0, 0, sub) | bits;
    tx.emit(u);
}

/// The instruction's own uops (between the #MF check and the
/// transition).
fn body(tx: &mut Tx<'_>, ins: &Instruction, mn: Mnemonic) -> Tr {
    use Mnemonic as M;
    match mn {
        M::Emms => Ok(false),
        M::Movd => moves(tx, ins, 4),
        M::Movq | M::Movntq => moves(tx, ins, 8),
        M::Movdq2q | M::Movq2dq => {
            let (d, s) = (reg(opnd(ins, 0)?)?, reg(opnd(ins, 1)?)?);
            tx.vmov(MovOp::ZextLo, 8, d, s, ZERO, 0);
            Ok(false)
        }
        M::Maskmovq => maskmovq(tx, ins),
        _ if is_convert(mn) => convert(tx, ins, mn, true),
        M::Pshufw => integer(tx, ins, IntOp::Pshuflw, int::Form::Un(8)),
        _ => {
            let (op, f) = int::form(mn).ok_or(Unsupported)?;
            integer(tx, ins, op, f)
        }
    }
}

/// A register operand's number (MMX or XMM).
fn reg(o: MOpnd) -> Result<u8, Unsupported> {
    match o {
        MOpnd::Mm(m) | MOpnd::V(VOpnd::Xmm(m)) => Ok(m),
        _ => Err(Unsupported),
    }
}

/// A 64-bit source: an MMX register, or memory (unaligned; 8 bytes, the
/// low unpacks' 4).
fn src64(tx: &mut Tx<'_>, ins: &Instruction, o: MOpnd) -> Result<u8, Unsupported> {
    match o {
        MOpnd::Mm(m) => Ok(m),
        MOpnd::V(v @ VOpnd::Mem(_)) => {
            let bytes = u8::try_from(ins.memory_size().size()).map_err(|_| Unsupported)?;
            Ok(tx.vsrc(v, bytes, false))
        }
        MOpnd::V(_) => Err(Unsupported),
    }
}

fn imm8(ins: &Instruction) -> u8 {
    (0..ins.op_count())
        .find(|&i| ins.op_kind(i) == OpKind::Immediate8)
        .map_or(0, |i| ins.immediate(i) as u8)
}

/// The integer operations on MMX registers: the XMM forms' ops at size 8.
fn integer(tx: &mut Tx<'_>, ins: &Instruction, op: IntOp, f: int::Form) -> Tr {
    let id = op.id();
    let i8 = imm8(ins);
    let u = match f {
        int::Form::Bin | int::Form::Un(_) => {
            let d = mm(opnd(ins, 0)?)?;
            let s = src64(tx, ins, opnd(ins, 1)?)?;
            let a = if matches!(f, int::Form::Un(_)) { s } else { d };
            vuop(Family::Int, id, 8, d, a, s, ZERO, i8)
        }
        int::Form::Shift => {
            let d = mm(opnd(ins, 0)?)?;
            if ins.op_kind(1) == OpKind::Immediate8 {
                let mut u = vuop(Family::Int, id, 8, d, d, d, ZERO, i8);
                u.imm = pack_imm(id, i8, 1);
                u
            } else {
                let s = src64(tx, ins, opnd(ins, 1)?)?;
                vuop(Family::Int, id, 8, d, d, s, ZERO, 0)
            }
        }
        int::Form::Movmsk => {
            let (MOpnd::V(VOpnd::Gpr(g)), MOpnd::Mm(s)) = (opnd(ins, 0)?, opnd(ins, 1)?) else {
                return Err(Unsupported);
            };
            vuop(Family::Int, id, 4, g, s, ZERO, ZERO, 0)
        }
        int::Form::Insert(2) => {
            let d = mm(opnd(ins, 0)?)?;
            let g = match opnd(ins, 1)? {
                MOpnd::V(VOpnd::Gpr(g)) => g,
                MOpnd::V(VOpnd::Mem(m)) => tx.load(&m, 2),
                _ => return Err(Unsupported),
            };
            vuop(Family::Int, id, 8, d, d, g, ZERO, i8)
        }
        int::Form::Extract(2) => {
            let (MOpnd::V(VOpnd::Gpr(g)), MOpnd::Mm(s)) = (opnd(ins, 0)?, opnd(ins, 1)?) else {
                return Err(Unsupported);
            };
            vuop(Family::Int, id, 4, g, s, ZERO, ZERO, i8)
        }
        _ => return Err(Unsupported),
    };
    tx.emit(u);
    Ok(false)
}

fn mm(o: MOpnd) -> Result<u8, Unsupported> {
    match o {
        MOpnd::Mm(m) => Ok(m),
        MOpnd::V(_) => Err(Unsupported),
    }
}

/// movd/movq (and movntq, a hint) between MMX registers, GPRs and memory.
fn moves(tx: &mut Tx<'_>, ins: &Instruction, bytes: u8) -> Tr {
    match (opnd(ins, 0)?, opnd(ins, 1)?) {
        (MOpnd::Mm(d), MOpnd::Mm(s)) => tx.vmov(MovOp::Copy, 8, d, s, ZERO, 0),
        (MOpnd::Mm(d), MOpnd::V(VOpnd::Gpr(g))) => tx.vmov(MovOp::FromGpr, bytes, d, g, ZERO, 0),
        (MOpnd::Mm(d), MOpnd::V(VOpnd::Mem(m))) => {
            let t = tx.load(&m, bytes);
            tx.vmov(MovOp::FromGpr, bytes, d, t, ZERO, 0);
        }
        (MOpnd::V(VOpnd::Gpr(g)), MOpnd::Mm(s)) => tx.vmov(MovOp::ToGpr, bytes, g, s, ZERO, 0),
        (MOpnd::V(VOpnd::Mem(m)), MOpnd::Mm(s)) => tx.vstore(&m, bytes, s, false),
        _ => return Err(Unsupported),
    }
    Ok(false)
}

/// maskmovq mm1, mm2: the bytes of mm1 whose mm2 byte has its top bit set,
/// to DS:[rdi], as a read-modify-write of the 8 bytes (see maskmovdqu in
/// [`super::int`]): all selected bytes are stored or, on a fault, none.
/// The transition comes first: a page fault on DS:[rdi] finds TOP = 0 and
/// every tag valid on the host (unlike the forms with a ModRM memory
/// operand).
fn maskmovq(tx: &mut Tx<'_>, ins: &Instruction) -> Tr {
    let (MOpnd::Mm(data), MOpnd::Mm(mask)) = (opnd(ins, 1)?, opnd(ins, 2)?) else {
        return Err(Unsupported);
    };
    let m = int::rdi_operand(ins);
    x87_uop(tx, X87Op::Mmx, 0, 0);
    let old = tx.vload(&m, 8, false);
    let new = tx.vtmp();
    tx.emit(vuop(
        Family::Int,
        IntOp::Pblendvb.id(),
        16,
        new,
        old,
        data,
        mask,
        0,
    ));
    let t = tx.tmp();
    tx.vmov(MovOp::ToGpr, 8, t, new, ZERO, 0);
    tx.store(&m, 8, t);
    Ok(false)
}

/// The conversions between MMX registers and XMM registers: the packed
/// XMM conversions on a source whose upper half is zero (so it raises no
/// flag), cvtpi2ps merging its two singles into the destination's low
/// half. With an MMX operand (`mmx`) the transition comes after the
/// loads and before the conversion, which may raise #XM (as the host
/// does); cvtpi2ps and cvtpi2pd from memory touch no MMX state (the host:
/// no transition, whatever the SDM says of cvtpi2ps).
fn convert(tx: &mut Tx<'_>, ins: &Instruction, mn: Mnemonic, mmx: bool) -> Tr {
    use Mnemonic as M;
    let (op, size) = match mn {
        M::Cvtpi2ps => (FpOp::IntToFpPacked, 4),
        M::Cvtpi2pd => (FpOp::IntToFpPacked, 8),
        M::Cvtps2pi | M::Cvttps2pi => (FpOp::FpToIntPacked, 4),
        _ => (FpOp::FpToIntPacked, 8),
    };
    let trunc = matches!(mn, M::Cvttps2pi | M::Cvttpd2pi);
    let d = reg(opnd(ins, 0)?)?;
    let s = match (mn, opnd(ins, 1)?) {
        (M::Cvtpd2pi | M::Cvttpd2pi, MOpnd::V(v @ VOpnd::Mem(_))) => tx.vsrc(v, 16, true),
        (_, MOpnd::V(v @ VOpnd::Mem(_))) => tx.vsrc(v, 8, false),
        (M::Cvtps2pi | M::Cvttps2pi, MOpnd::V(VOpnd::Xmm(x))) => {
            let t = tx.vtmp();
            tx.vmov(MovOp::ZextLo, 8, t, x, ZERO, 0);
            t
        }
        (_, o) => reg(o)?,
    };
    if mmx {
        x87_uop(tx, X87Op::Mmx, 0, 0);
    }
    let fp = |dst| {
        let mut u = vuop(Family::Fp, op.id(), size, dst, s, s, ZERO, 0);
        u.imm = pack_imm(op.id(), if trunc { 4 } else { 0 }, fpx::PACKED);
        u
    };
    if mn == M::Cvtpi2ps {
        let t = tx.vtmp();
        tx.emit(fp(t));
        tx.vmov(MovOp::MergeLo, 8, d, d, t, 0);
    } else {
        tx.emit(fp(d));
    }
    Ok(false)
}
