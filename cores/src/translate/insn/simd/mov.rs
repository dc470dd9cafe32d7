//! Moves: movaps/movups/movapd/movupd/movdqa/movdqu/lddqu, the
//! non-temporal moves (movntps/movntpd/movntdq/movntdqa, as ordinary
//! accesses: a hint only), movss/movsd, movd/movq, movhps/movlps/movhpd/
//! movlpd/movhlps/movlhps, ldmxcsr/stmxcsr.

use super::{vopnd, VOpnd};
use crate::simd::MovOp;
use crate::translate::insn::{Tr, Unsupported};
use crate::translate::Tx;
use crate::uop::ZERO;
use iced_x86::{Instruction, Mnemonic};

pub(super) fn translate(tx: &mut Tx<'_>, ins: &Instruction) -> Option<Tr> {
    use Mnemonic as M;
    let r = match ins.mnemonic() {
        M::Movaps | M::Movapd | M::Movdqa | M::Movntps | M::Movntpd | M::Movntdq | M::Movntdqa => {
            full(tx, ins, true)
        }
        M::Movups | M::Movupd | M::Movdqu | M::Lddqu => full(tx, ins, false),
        M::Movss => scalar(tx, ins, 4),
        M::Movsd => scalar(tx, ins, 8),
        M::Movd => gpr_move(tx, ins, 4),
        M::Movq => gpr_move(tx, ins, 8),
        M::Movhps | M::Movhpd => half(tx, ins, 1),
        M::Movlps | M::Movlpd => half(tx, ins, 0),
        M::Movhlps => across(tx, ins, 1, 0),
        M::Movlhps => across(tx, ins, 0, 1),
        M::Ldmxcsr => mxcsr(tx, ins, true),
        M::Stmxcsr => mxcsr(tx, ins, false),
        _ => return None,
    };
    Some(r)
}

/// A whole 128-bit move; `align`: the memory operand must be aligned.
fn full(tx: &mut Tx<'_>, ins: &Instruction, align: bool) -> Tr {
    match (vopnd(ins, 0)?, vopnd(ins, 1)?) {
        (VOpnd::Xmm(d), src) => {
            let s = tx.vsrc(src, 16, align);
            tx.vmov(MovOp::Copy, 16, d, s, ZERO, 0);
        }
        (VOpnd::Mem(m), VOpnd::Xmm(s)) => tx.vstore(&m, 16, s, align),
        _ => return Err(Unsupported),
    }
    Ok(false)
}

/// movss/movsd: register to register merges the low element; a load
/// zeroes the rest; a store writes the element.
fn scalar(tx: &mut Tx<'_>, ins: &Instruction, bytes: u8) -> Tr {
    match (vopnd(ins, 0)?, vopnd(ins, 1)?) {
        (VOpnd::Xmm(d), VOpnd::Xmm(s)) => tx.vmov(MovOp::MergeLo, bytes, d, d, s, 0),
        (VOpnd::Xmm(d), VOpnd::Mem(m)) => {
            let t = tx.load(&m, bytes);
            tx.vmov(MovOp::FromGpr, bytes, d, t, ZERO, 0);
        }
        (VOpnd::Mem(m), VOpnd::Xmm(s)) => tx.vstore(&m, bytes, s, false),
        _ => return Err(Unsupported),
    }
    Ok(false)
}

/// movd/movq between XMM registers, GPRs and memory (`bytes` 4 or 8; movq
/// xmm, xmm copies the low quadword and zeroes the rest).
fn gpr_move(tx: &mut Tx<'_>, ins: &Instruction, bytes: u8) -> Tr {
    match (vopnd(ins, 0)?, vopnd(ins, 1)?) {
        (VOpnd::Xmm(d), VOpnd::Xmm(s)) => tx.vmov(MovOp::ZextLo, bytes, d, s, ZERO, 0),
        (VOpnd::Xmm(d), VOpnd::Gpr(g)) => tx.vmov(MovOp::FromGpr, bytes, d, g, ZERO, 0),
        (VOpnd::Xmm(d), VOpnd::Mem(m)) => {
            let t = tx.load(&m, bytes);
            tx.vmov(MovOp::FromGpr, bytes, d, t, ZERO, 0);
        }
        (VOpnd::Gpr(g), VOpnd::Xmm(s)) => tx.vmov(MovOp::ToGpr, bytes, g, s, ZERO, 0),
        (VOpnd::Mem(m), VOpnd::Xmm(s)) => tx.vstore(&m, bytes, s, false),
        _ => return Err(Unsupported),
    }
    Ok(false)
}

/// movhps/movlps/movhpd/movlpd: the 64-bit lane `lane` from or to memory.
fn half(tx: &mut Tx<'_>, ins: &Instruction, lane: u8) -> Tr {
    match (vopnd(ins, 0)?, vopnd(ins, 1)?) {
        (VOpnd::Xmm(d), VOpnd::Mem(m)) => {
            let t = tx.load(&m, 8);
            tx.vmov(MovOp::Insert64, 16, d, d, t, lane);
        }
        (VOpnd::Mem(m), VOpnd::Xmm(s)) => {
            let t = tx.tmp();
            tx.vmov(MovOp::ToGpr, 8, t, s, ZERO, lane);
            tx.store(&m, 8, t);
        }
        _ => return Err(Unsupported),
    }
    Ok(false)
}

/// movhlps/movlhps: lane `from` of the source into lane `to` of the
/// destination.
fn across(tx: &mut Tx<'_>, ins: &Instruction, from: u8, to: u8) -> Tr {
    let (VOpnd::Xmm(d), VOpnd::Xmm(s)) = (vopnd(ins, 0)?, vopnd(ins, 1)?) else {
        return Err(Unsupported);
    };
    let t = tx.tmp();
    tx.vmov(MovOp::ToGpr, 8, t, s, ZERO, from);
    tx.vmov(MovOp::Insert64, 16, d, d, t, to);
    Ok(false)
}

fn mxcsr(tx: &mut Tx<'_>, ins: &Instruction, load: bool) -> Tr {
    let VOpnd::Mem(m) = vopnd(ins, 0)? else {
        return Err(Unsupported);
    };
    if load {
        let t = tx.load(&m, 4);
        tx.vmov(MovOp::Ldmxcsr, 4, ZERO, t, ZERO, 0);
    } else {
        let t = tx.tmp();
        tx.vmov(MovOp::Stmxcsr, 4, t, ZERO, ZERO, 0);
        tx.store(&m, 4, t);
    }
    Ok(false)
}
