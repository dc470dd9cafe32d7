//! FXSAVE/FXRSTOR, XSAVE/XSAVEOPT/XRSTOR (and their 64-bit forms), XGETBV,
//! and the x87 images FNSTENV/FLDENV/FNSAVE/FRSTOR → [`Family::State`]
//! uops ([`crate::simd::state`]).
//!
//! Each image instruction computes its linear address into a temporary
//! (Lea + segment base), checks the alignment (#GP first), probes the
//! first and last 8 bytes of the image with ordinary uops (the page
//! faults, precise, before anything changes), then runs one state uop
//! that reads or writes the whole image.

use super::vuop;
use crate::simd::state::StateOp;
use crate::simd::Family;
use crate::translate::insn::{mem_ref, mem_uop, reg, uop, MemRef, Tr, Unsupported, UopExt};
use crate::translate::Tx;
use crate::uop::{Op, SINK, ZERO};

const RAX: u8 = 0;
const RCX: u8 = 1;
const RDX: u8 = 2;
use iced_x86::{Instruction, Mnemonic};

pub(super) fn translate(tx: &mut Tx<'_>, ins: &Instruction) -> Option<Tr> {
    use Mnemonic as M;
    use StateOp as S;
    let r = match ins.mnemonic() {
        M::Fxsave => image(tx, ins, S::Fxsave, 4, 512, 15, true, 0),
        M::Fxsave64 => image(tx, ins, S::Fxsave, 8, 512, 15, true, 0),
        M::Fxrstor => image(tx, ins, S::Fxrstor, 4, 512, 15, false, 0),
        M::Fxrstor64 => image(tx, ins, S::Fxrstor, 8, 512, 15, false, 0),
        M::Xsave => image(tx, ins, S::Xsave, 4, 576, 63, true, 0),
        M::Xsave64 => image(tx, ins, S::Xsave, 8, 576, 63, true, 0),
        M::Xsaveopt => image(tx, ins, S::Xsave, 4, 576, 63, true, 1),
        M::Xsaveopt64 => image(tx, ins, S::Xsave, 8, 576, 63, true, 1),
        M::Xrstor => image(tx, ins, S::Xrstor, 4, 576, 63, false, 0),
        M::Xrstor64 => image(tx, ins, S::Xrstor, 8, 576, 63, false, 0),
        M::Xgetbv => {
            tx.emit(vuop(
                Family::State,
                S::Xgetbv.id(),
                4,
                RAX,
                RCX,
                ZERO,
                ZERO,
                0,
            ));
            tx.emit(vuop(
                Family::State,
                S::Xgetbv.id(),
                4,
                RDX,
                RCX,
                ZERO,
                ZERO,
                1,
            ));
            Ok(false)
        }
        M::Xsetbv => {
            // Privileged: ring 3 (the guest) gets #GP(0), which the
            // hypervisor's PV emulator sees.
            let detail = format!("#GP: xsetbv at {:#x} (privileged in ring 3)", ins.ip());
            tx.raise(13, detail);
            Ok(true)
        }
        _ => return None,
    };
    Some(r)
}

/// The linear address of `m` in a fresh temporary.
fn linear(tx: &mut Tx<'_>, m: &MemRef) -> u8 {
    let t = tx.tmp();
    tx.emit(mem_uop(Op::Lea, 8, m).with_dst(t));
    if m.seg != ZERO {
        tx.emit(uop(Op::Add, 8, t, t, reg(m.seg)));
    }
    t
}

/// An image instruction: address, alignment (`align` = mask), probes of
/// the `len`-byte image (`write`: for writing), the state uop.
#[allow(clippy::too_many_arguments)]
fn image(
    tx: &mut Tx<'_>,
    ins: &Instruction,
    op: StateOp,
    size: u8,
    len: i64,
    align: u8,
    write: bool,
    imm8: u8,
) -> Tr {
    let m = mem_ref(ins)?;
    let t = linear(tx, &m);
    if align != 0 {
        tx.emit(vuop(
            Family::State,
            StateOp::Align.id(),
            8,
            SINK,
            t,
            ZERO,
            ZERO,
            align,
        ));
    }
    for off in [0, len - 8] {
        if write {
            tx.emit(mem_uop(Op::ProbeW, 8, &m.offset(off)));
        } else {
            tx.load(&m.offset(off), 8);
        }
    }
    tx.emit(vuop(Family::State, op.id(), size, SINK, t, RAX, RDX, imm8));
    Ok(false)
}

/// fnstenv/fstenv/fldenv/fnsave/fsave/frstor (`waiting`: the waiting
/// forms first check for a pending x87 exception).
pub(super) fn env(tx: &mut Tx<'_>, ins: &Instruction, waiting: bool) -> Tr {
    use Mnemonic as M;
    use StateOp as S;
    // Only the 32-bit protected-mode formats (no 0x66 prefix: the 14- and
    // 94-byte 16-bit formats are not supported).
    if !matches!(ins.memory_size().size(), 28 | 108) {
        return Err(Unsupported);
    }
    let (op, len, write) = match ins.mnemonic() {
        M::Fnstenv | M::Fstenv => (S::Fnstenv, 28, true),
        M::Fldenv => (S::Fldenv, 28, false),
        M::Fnsave | M::Fsave => (S::Fnsave, 108, true),
        M::Frstor => (S::Frstor, 108, false),
        _ => return Err(Unsupported),
    };
    if waiting {
        // fstenv/fldenv/fsave/frstor: a pending #MF first (before the
        // image's page faults).
        let mut u = vuop(Family::X87, 0, 8, SINK, ZERO, ZERO, ZERO, 0);
        u.imm = crate::simd::x87::WAIT;
        tx.emit(u);
    }
    image(tx, ins, op, 4, len, 0, write, 0)
}
