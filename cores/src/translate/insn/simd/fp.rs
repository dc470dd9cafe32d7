//! SSE–SSE4.1 floating point → [`crate::simd::FpOp`] uops: arithmetic,
//! min/max, compares, comis, logic, shuffles and unpacks, movmsk, the
//! conversions, the SSE3 horizontal/alternating forms and duplicates, and
//! SSE4.1 round/blend/dp/insertps/extractps.
//!
//! Memory operands: scalar forms read their element (no alignment check),
//! legacy packed forms read 16 aligned bytes, the half-width forms
//! (cvtps2pd, cvtdq2pd, movddup) 8 unaligned bytes.
//! rcpps/rcpss/rsqrtps/rsqrtss compute the model of
//! [`crate::simd::approx`] (AMD Zen 5's approximations).

use super::{vopnd, vuop, xmm, VOpnd};
use crate::simd::{fpx, pack_imm, Family, FpOp};
use crate::translate::insn::{gpr, Tr, Unsupported};
use crate::translate::Tx;
use crate::uop::{fl, SINK, XMM0, ZERO};
use iced_x86::{Instruction, Mnemonic, OpKind};

/// How the second source is read.
#[derive(Clone, Copy)]
enum Src {
    /// Scalar: `size` bytes, unaligned.
    Scalar,
    /// 16 bytes, aligned.
    Full,
    /// 8 bytes, unaligned.
    Half,
    /// 4 bytes, unaligned (insertps).
    Dword,
}

/// One table row: op, element size, packed, source kind.
type Form = (FpOp, u8, bool, Src);

/// The form of each lane-wise or whole-register instruction (a table, one
/// line per mnemonic, hence the length).
fn form(mn: Mnemonic) -> Option<Form> {
    use FpOp as O;
    use Mnemonic as M;
    use Src::{Full, Half, Scalar};
    let ari = |op, sfx: u8| -> Form {
        match sfx {
            0 => (op, 4, false, Scalar),
            1 => (op, 8, false, Scalar),
            2 => (op, 4, true, Full),
            _ => (op, 8, true, Full),
        }
    };
    Some(match mn {
        M::Addss => ari(O::Add, 0),
        M::Addsd => ari(O::Add, 1),
        M::Addps => ari(O::Add, 2),
        M::Addpd => ari(O::Add, 3),
        M::Subss => ari(O::Sub, 0),
        M::Subsd => ari(O::Sub, 1),
        M::Subps => ari(O::Sub, 2),
        M::Subpd => ari(O::Sub, 3),
        M::Mulss => ari(O::Mul, 0),
        M::Mulsd => ari(O::Mul, 1),
        M::Mulps => ari(O::Mul, 2),
        M::Mulpd => ari(O::Mul, 3),
        M::Divss => ari(O::Div, 0),
        M::Divsd => ari(O::Div, 1),
        M::Divps => ari(O::Div, 2),
        M::Divpd => ari(O::Div, 3),
        M::Minss => ari(O::Min, 0),
        M::Minsd => ari(O::Min, 1),
        M::Minps => ari(O::Min, 2),
        M::Minpd => ari(O::Min, 3),
        M::Maxss => ari(O::Max, 0),
        M::Maxsd => ari(O::Max, 1),
        M::Maxps => ari(O::Max, 2),
        M::Maxpd => ari(O::Max, 3),
        M::Sqrtss => ari(O::Sqrt, 0),
        M::Sqrtsd => ari(O::Sqrt, 1),
        M::Sqrtps => ari(O::Sqrt, 2),
        M::Sqrtpd => ari(O::Sqrt, 3),
        M::Rcpss => ari(O::Rcp, 0),
        M::Rcpps => ari(O::Rcp, 2),
        M::Rsqrtss => ari(O::Rsqrt, 0),
        M::Rsqrtps => ari(O::Rsqrt, 2),
        M::Cmpss => ari(O::Cmp, 0),
        M::Cmpsd => ari(O::Cmp, 1),
        M::Cmpps => ari(O::Cmp, 2),
        M::Cmppd => ari(O::Cmp, 3),
        M::Roundss => ari(O::Round, 0),
        M::Roundsd => ari(O::Round, 1),
        M::Roundps => ari(O::Round, 2),
        M::Roundpd => ari(O::Round, 3),
        M::Andps => ari(O::And, 2),
        M::Andpd => ari(O::And, 3),
        M::Andnps => ari(O::Andn, 2),
        M::Andnpd => ari(O::Andn, 3),
        M::Orps => ari(O::Or, 2),
        M::Orpd => ari(O::Or, 3),
        M::Xorps => ari(O::Xor, 2),
        M::Xorpd => ari(O::Xor, 3),
        M::Shufps => ari(O::Shuf, 2),
        M::Shufpd => ari(O::Shuf, 3),
        M::Unpcklps => ari(O::UnpackLo, 2),
        M::Unpcklpd => ari(O::UnpackLo, 3),
        M::Unpckhps => ari(O::UnpackHi, 2),
        M::Unpckhpd => ari(O::UnpackHi, 3),
        M::Addsubps => ari(O::AddSub, 2),
        M::Addsubpd => ari(O::AddSub, 3),
        M::Haddps => ari(O::HAdd, 2),
        M::Haddpd => ari(O::HAdd, 3),
        M::Hsubps => ari(O::HSub, 2),
        M::Hsubpd => ari(O::HSub, 3),
        M::Blendps => ari(O::Blend, 2),
        M::Blendpd => ari(O::Blend, 3),
        M::Blendvps => ari(O::Blendv, 2),
        M::Blendvpd => ari(O::Blendv, 3),
        M::Dpps => ari(O::Dp, 2),
        M::Dppd => ari(O::Dp, 3),
        M::Movshdup => ari(O::DupOdd, 2),
        M::Movsldup => ari(O::DupEven, 2),
        M::Movddup => (O::DupLo64, 8, true, Half),
        M::Insertps => (O::Insertps, 4, true, Src::Dword),
        M::Cvtss2sd => (O::FpToFp, 4, false, Scalar),
        M::Cvtsd2ss => (O::FpToFp, 8, false, Scalar),
        M::Cvtps2pd => (O::FpToFpPacked, 4, true, Half),
        M::Cvtpd2ps => (O::FpToFpPacked, 8, true, Full),
        M::Cvtdq2ps => (O::IntToFpPacked, 4, true, Full),
        M::Cvtdq2pd => (O::IntToFpPacked, 8, true, Half),
        M::Cvtps2dq | M::Cvttps2dq => (O::FpToIntPacked, 4, true, Full),
        M::Cvtpd2dq | M::Cvttpd2dq => (O::FpToIntPacked, 8, true, Full),
        _ => return None,
    })
}

pub(super) fn translate(tx: &mut Tx<'_>, ins: &Instruction) -> Option<Tr> {
    use Mnemonic as M;
    let mn = ins.mnemonic();
    let r = match mn {
        M::Movmskps | M::Movmskpd | M::Cvtss2si | M::Cvtsd2si | M::Cvttss2si | M::Cvttsd2si => {
            to_gpr(tx, ins)
        }
        M::Extractps => extractps(tx, ins),
        M::Comiss | M::Ucomiss | M::Comisd | M::Ucomisd => comi(tx, ins),
        M::Cvtsi2ss | M::Cvtsi2sd => from_gpr(tx, ins),
        _ => {
            let f = form(mn)?;
            // cmpsd also names the string compare: only the XMM form here.
            if ins.op_kind(0) != OpKind::Register || xmm(ins.op_register(0)).is_none() {
                return None;
            }
            binary(tx, ins, mn, f)
        }
    };
    Some(r)
}

/// Emits an FP uop.
#[allow(clippy::too_many_arguments)]
fn emit(tx: &mut Tx<'_>, op: FpOp, size: u8, dst: u8, a: u8, b: u8, c: u8, imm8: u8, ext: u8) {
    let mut u = vuop(Family::Fp, op.id(), size, dst, a, b, c, imm8);
    u.imm = pack_imm(op.id(), imm8, ext);
    if op == FpOp::Comi {
        u.fl = fl::ALL;
    }
    tx.emit(u);
}

/// The instruction's imm8 (0 if none).
fn imm8(ins: &Instruction) -> u8 {
    (0..ins.op_count())
        .find(|&i| ins.op_kind(i) == OpKind::Immediate8)
        .map_or(0, |_| ins.immediate8())
}

fn binary(tx: &mut Tx<'_>, ins: &Instruction, mn: Mnemonic, (op, size, packed, src): Form) -> Tr {
    let VOpnd::Xmm(d) = vopnd(ins, 0)? else {
        return Err(Unsupported);
    };
    let o = vopnd(ins, 1)?;
    let mut imm = imm8(ins);
    let s = match (o, src) {
        (VOpnd::Xmm(s), _) => s,
        (VOpnd::Mem(_), Src::Scalar) => tx.vsrc(o, size, false),
        (VOpnd::Mem(_), Src::Full) => tx.vsrc(o, 16, true),
        (VOpnd::Mem(_), Src::Half) => tx.vsrc(o, 8, false),
        (VOpnd::Mem(_), Src::Dword) => {
            imm &= 0x3f; // insertps from memory: the loaded dword
            tx.vsrc(o, 4, false)
        }
        (VOpnd::Gpr(_), _) => return Err(Unsupported),
    };
    if matches!(op, FpOp::Cmp) {
        imm &= 7;
    }
    if matches!(mn, Mnemonic::Cvttps2dq | Mnemonic::Cvttpd2dq) {
        imm = 4;
    }
    // Unary packed forms read only the source.
    let unary = matches!(
        op,
        FpOp::Sqrt
            | FpOp::Rcp
            | FpOp::Rsqrt
            | FpOp::Round
            | FpOp::FpToFpPacked
            | FpOp::IntToFpPacked
            | FpOp::FpToIntPacked
    ) || matches!(op, FpOp::DupLo64 | FpOp::DupOdd | FpOp::DupEven);
    let a = if unary && packed { s } else { d };
    let c = if op == FpOp::Blendv { XMM0 } else { ZERO };
    let ext = if packed { fpx::PACKED } else { 0 };
    emit(tx, op, size, d, a, s, c, imm, ext);
    Ok(false)
}

fn comi(tx: &mut Tx<'_>, ins: &Instruction) -> Tr {
    use Mnemonic as M;
    let mn = ins.mnemonic();
    let size = if matches!(mn, M::Comisd | M::Ucomisd) {
        8
    } else {
        4
    };
    let VOpnd::Xmm(a) = vopnd(ins, 0)? else {
        return Err(Unsupported);
    };
    let b = tx.vsrc(vopnd(ins, 1)?, size, false);
    let ext = if matches!(mn, M::Comiss | M::Comisd) {
        fpx::SIGNAL
    } else {
        0
    };
    emit(tx, FpOp::Comi, size, SINK, a, b, ZERO, 0, ext);
    Ok(false)
}

/// cvtsi2ss/cvtsi2sd from a 32- or 64-bit GPR or memory.
fn from_gpr(tx: &mut Tx<'_>, ins: &Instruction) -> Tr {
    let size = if ins.mnemonic() == Mnemonic::Cvtsi2sd {
        8
    } else {
        4
    };
    let VOpnd::Xmm(d) = vopnd(ins, 0)? else {
        return Err(Unsupported);
    };
    let (g, bytes) = match vopnd(ins, 1)? {
        VOpnd::Gpr(g) => (g, ins.op_register(1).size()),
        VOpnd::Mem(m) => {
            let bytes = ins.memory_size().size();
            let n = if bytes == 8 { 8 } else { 4 };
            (tx.load(&m, n), bytes)
        }
        VOpnd::Xmm(_) => return Err(Unsupported),
    };
    let ext = if bytes == 8 { fpx::INT64 } else { 0 };
    emit(tx, FpOp::IntToFp, size, d, d, g, ZERO, 0, ext);
    Ok(false)
}

/// movmskps/pd and cvt(t)ss2si/cvt(t)sd2si: a GPR destination.
fn to_gpr(tx: &mut Tx<'_>, ins: &Instruction) -> Tr {
    use Mnemonic as M;
    let mn = ins.mnemonic();
    let (g, _) = gpr(ins.op_register(0)).ok_or(Unsupported)?;
    let wide = ins.op_register(0).size() == 8;
    let size = if matches!(mn, M::Movmskpd | M::Cvtsd2si | M::Cvttsd2si) {
        8
    } else {
        4
    };
    if matches!(mn, M::Movmskps | M::Movmskpd) {
        let VOpnd::Xmm(s) = vopnd(ins, 1)? else {
            return Err(Unsupported);
        };
        emit(tx, FpOp::Movmsk, size, g, s, s, ZERO, 0, 0);
        return Ok(false);
    }
    let s = match vopnd(ins, 1)? {
        VOpnd::Gpr(_) => return Err(Unsupported),
        o => tx.vsrc(o, size, false),
    };
    let mut ext = if wide { fpx::INT64 } else { 0 };
    if matches!(mn, M::Cvttss2si | M::Cvttsd2si) {
        ext |= fpx::TRUNC;
    }
    emit(tx, FpOp::FpToInt, size, g, s, s, ZERO, 0, ext);
    Ok(false)
}

/// extractps r/m32, xmm, imm8.
fn extractps(tx: &mut Tx<'_>, ins: &Instruction) -> Tr {
    let VOpnd::Xmm(s) = vopnd(ins, 1)? else {
        return Err(Unsupported);
    };
    let imm = imm8(ins);
    match vopnd(ins, 0)? {
        VOpnd::Gpr(g) => emit(tx, FpOp::Extractps, 4, g, s, s, ZERO, imm, 0),
        VOpnd::Mem(m) => {
            let t = tx.tmp();
            emit(tx, FpOp::Extractps, 4, t, s, s, ZERO, imm, 0);
            tx.store(&m, 4, t);
        }
        VOpnd::Xmm(_) => return Err(Unsupported),
    }
    Ok(false)
}
