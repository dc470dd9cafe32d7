//! The GPR-only integer extensions: BMI1 (andn, bextr, blsi, blsmsk,
//! blsr), BMI2 (bzhi, mulx, pdep, pext, rorx, sarx, shlx, shrx), CRC32 and
//! MOVBE (a load or store with a byte swap: ordinary uops).

use super::vuop;
use crate::simd::{Family, ScalarOp};
use crate::translate::insn::{imm, opnd, opsize, reg, uop, Opnd, Tr, Unsupported};
use crate::translate::Tx;
use crate::uop::{Op, ZERO};
use iced_x86::{Instruction, Mnemonic};

pub(super) fn translate(tx: &mut Tx<'_>, ins: &Instruction) -> Option<Tr> {
    use Mnemonic as M;
    use ScalarOp as S;
    let r = match ins.mnemonic() {
        M::Andn => three(tx, ins, S::Andn, 1, 2),
        M::Bextr => three(tx, ins, S::Bextr, 1, 2),
        M::Bzhi => three(tx, ins, S::Bzhi, 1, 2),
        M::Pdep => three(tx, ins, S::Pdep, 1, 2),
        M::Pext => three(tx, ins, S::Pext, 1, 2),
        M::Sarx => three(tx, ins, S::Sarx, 1, 2),
        M::Shlx => three(tx, ins, S::Shlx, 1, 2),
        M::Shrx => three(tx, ins, S::Shrx, 1, 2),
        M::Blsi => three(tx, ins, S::Blsi, 1, 1),
        M::Blsmsk => three(tx, ins, S::Blsmsk, 1, 1),
        M::Blsr => three(tx, ins, S::Blsr, 1, 1),
        M::Rorx => three(tx, ins, S::Rorx, 1, 1),
        M::Mulx => mulx(tx, ins),
        M::Crc32 => crc32(tx, ins),
        M::Movbe => movbe(tx, ins),
        _ => return None,
    };
    Some(r)
}

/// A GPR operand (register number), reading memory into a temporary.
fn src(tx: &mut Tx<'_>, ins: &Instruction, i: u32, size: u8) -> Result<u8, Unsupported> {
    match opnd(ins, i)? {
        Opnd::Reg { idx, hi: false } => Ok(idx),
        Opnd::Mem(m) => Ok(tx.load(&m, size)),
        _ => Err(Unsupported),
    }
}

/// `op dst, src_a, src_b` (operand numbers `ia`, `ib`; the same for the
/// one-source forms).
fn three(tx: &mut Tx<'_>, ins: &Instruction, op: ScalarOp, ia: u32, ib: u32) -> Tr {
    let size = opsize(ins, 0);
    let Opnd::Reg { idx: d, hi: false } = opnd(ins, 0)? else {
        return Err(Unsupported);
    };
    // At most one of the sources is memory: load it once.
    let a = src(tx, ins, ia, size)?;
    let b = if ib == ia { a } else { src(tx, ins, ib, size)? };
    let i8 = if op == ScalarOp::Rorx {
        ins.immediate(2) as u8
    } else {
        0
    };
    let mut u = vuop(Family::Scalar, op.id(), size, d, a, b, ZERO, i8);
    u.fl = op.flags();
    tx.emit(u);
    Ok(false)
}

/// mulx hi, lo, r/m: RDX times the source; `hi` wins when both name the
/// same register.
fn mulx(tx: &mut Tx<'_>, ins: &Instruction) -> Tr {
    let size = opsize(ins, 0);
    let (Opnd::Reg { idx: hi, .. }, Opnd::Reg { idx: lo, .. }) = (opnd(ins, 0)?, opnd(ins, 1)?)
    else {
        return Err(Unsupported);
    };
    let s = src(tx, ins, 2, size)?;
    let t = tx.tmp();
    let f = Family::Scalar;
    tx.emit(vuop(f, ScalarOp::MulxHi.id(), size, t, 2, s, ZERO, 0));
    tx.emit(vuop(f, ScalarOp::MulxLo.id(), size, lo, 2, s, ZERO, 0));
    tx.emit(uop(Op::Mov, size, hi, t, reg(ZERO)));
    Ok(false)
}

/// crc32 r32/r64, r/m8..64: the accumulator's low 32 bits in, the
/// zero-extended CRC out.
fn crc32(tx: &mut Tx<'_>, ins: &Instruction) -> Tr {
    let Opnd::Reg { idx: d, hi: false } = opnd(ins, 0)? else {
        return Err(Unsupported);
    };
    let ssize = opsize(ins, 1);
    let v = tx.read(opnd(ins, 1)?, ssize);
    let s = tx.src_reg(v);
    tx.emit(vuop(
        Family::Scalar,
        ScalarOp::Crc32.id(),
        ssize,
        d,
        d,
        s,
        ZERO,
        0,
    ));
    Ok(false)
}

/// Byte-swaps temporary `t` at `size` (a 16-bit swap is a rotate by 8).
fn swap(tx: &mut Tx<'_>, t: u8, size: u8) {
    if size == 2 {
        tx.emit(uop(Op::Rol, 2, t, t, imm(8)));
    } else {
        tx.emit(uop(Op::Bswap, size, t, t, reg(ZERO)));
    }
}

fn movbe(tx: &mut Tx<'_>, ins: &Instruction) -> Tr {
    let size = opsize(ins, 0);
    match (opnd(ins, 0)?, opnd(ins, 1)?) {
        (Opnd::Reg { idx, hi: false }, Opnd::Mem(m)) => {
            let t = tx.load(&m, size);
            swap(tx, t, size);
            tx.emit(uop(Op::Mov, size, idx, t, reg(ZERO)));
        }
        (Opnd::Mem(m), Opnd::Reg { idx, hi: false }) => {
            let t = tx.tmp();
            tx.emit(uop(Op::Mov, 8, t, idx, reg(ZERO)));
            swap(tx, t, size);
            tx.store(&m, size, t);
        }
        _ => return Err(Unsupported),
    }
    Ok(false)
}
