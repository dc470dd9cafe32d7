//! x87, SSE and extension instructions → `Vec` uops ([`crate::simd`]), one
//! submodule per family, plus the operand helpers they share.
//!
//! Memory operands go through ordinary `Ld`/`St` uops 8 bytes at a time
//! into GPR temporaries (a 16-byte access is two; alignment-checked forms
//! check the address first, #GP(0)), so the cache hierarchy, the TLB and
//! the out-of-order LSQ see them like any other access. The ordering rules
//! of [`crate::simd`] (loads first, stores before any architectural change)
//! keep faults precise.

mod fp;
mod int;
mod mmx;
mod mov;
mod scalar;
mod state;
mod x87;

use super::{mem_ref, mem_uop, reg, uop, MemRef, Tr, Unsupported, UopExt};
use crate::simd::{pack_imm, Family, MovOp};
use crate::translate::Tx;
use crate::uop::{Op, Uop, SINK, ZERO};
use iced_x86::{Instruction, OpKind, Register};

/// Translates an x87/SSE/extension instruction, or None if `ins` is not
/// one of them.
pub(super) fn translate(tx: &mut Tx<'_>, ins: &Instruction) -> Option<Tr> {
    mmx::translate(tx, ins)
        .or_else(|| mov::translate(tx, ins))
        .or_else(|| fp::translate(tx, ins))
        .or_else(|| int::translate(tx, ins))
        .or_else(|| scalar::translate(tx, ins))
        .or_else(|| state::translate(tx, ins))
        .or_else(|| x87::translate(tx, ins))
}

/// The vector register number of an XMM register operand.
pub(super) fn xmm(r: Register) -> Option<u8> {
    if r.is_xmm() {
        let n = r.number() as u8;
        (n < 16).then_some(crate::uop::XMM0 + n)
    } else {
        None
    }
}

/// A vector operand: a register, or memory.
#[derive(Clone, Copy, Debug)]
pub(super) enum VOpnd {
    /// An XMM register (vector numbering).
    Xmm(u8),
    /// A GPR (integer numbering), e.g. movd's source.
    Gpr(u8),
    /// Memory.
    Mem(MemRef),
}

/// Operand `i` of `ins` as a vector operand.
pub(super) fn vopnd(ins: &Instruction, i: u32) -> Result<VOpnd, Unsupported> {
    match ins.op_kind(i) {
        OpKind::Register => {
            let r = ins.op_register(i);
            if let Some(x) = xmm(r) {
                return Ok(VOpnd::Xmm(x));
            }
            match super::gpr(r) {
                Some((g, false)) => Ok(VOpnd::Gpr(g)),
                _ => Err(Unsupported),
            }
        }
        OpKind::Memory => Ok(VOpnd::Mem(mem_ref(ins)?)),
        _ => Err(Unsupported),
    }
}

/// A `Vec` uop of family `fam`.
#[allow(clippy::too_many_arguments)]
pub(super) fn vuop(fam: Family, op: u16, size: u8, dst: u8, a: u8, b: u8, c: u8, imm8: u8) -> Uop {
    let mut u = Uop::new(Op::Vec, size);
    u.aux = fam as u8;
    u.imm = pack_imm(op, imm8, 0);
    u.dst = dst;
    u.a = a;
    u.b = b;
    u.c = c;
    u
}

impl Tx<'_> {
    /// A fresh vector temporary.
    pub(super) fn vtmp(&mut self) -> u8 {
        assert!(
            self.next_vtmp < crate::uop::VT0 + crate::uop::NUM_VTEMPS,
            "instruction needs too many vector temporaries"
        );
        self.next_vtmp += 1;
        self.next_vtmp - 1
    }

    /// Emits a move-family uop.
    pub(super) fn vmov(&mut self, op: MovOp, size: u8, dst: u8, a: u8, b: u8, imm8: u8) {
        self.emit(vuop(Family::Mov, op.id(), size, dst, a, b, ZERO, imm8));
    }

    /// #GP(0) unless the address of `m` (segment base included) is 16-byte
    /// aligned.
    pub(super) fn check_align16(&mut self, m: &MemRef) {
        let t = self.tmp();
        self.emit(mem_uop(Op::Lea, 8, m).with_dst(t));
        if m.seg != ZERO {
            self.emit(uop(Op::Add, 8, t, t, reg(m.seg)));
        }
        let mut c = uop(Op::Chk, 8, SINK, t, reg(ZERO));
        c.aux = 0;
        self.emit(c);
    }

    /// Loads `bytes` (4, 8 or 16; 1 and 2 too) from `m` into a fresh
    /// vector temporary, zero-extended; `align` checks 16-byte alignment.
    pub(super) fn vload(&mut self, m: &MemRef, bytes: u8, align: bool) -> u8 {
        if align {
            self.check_align16(m);
        }
        let v = self.vtmp();
        if bytes == 16 {
            let lo = self.load(m, 8);
            let hi = self.load(&m.offset(8), 8);
            self.vmov(MovOp::FromGpr2, 16, v, lo, hi, 0);
        } else {
            let t = self.load(m, bytes);
            self.vmov(MovOp::FromGpr, bytes, v, t, ZERO, 0);
        }
        v
    }

    /// Stores the low `bytes` (4, 8 or 16; 1 and 2 too) of vector register
    /// `v` to `m`; `align` checks 16-byte alignment. Nothing architectural
    /// changes before the stores.
    pub(super) fn vstore(&mut self, m: &MemRef, bytes: u8, v: u8, align: bool) {
        if align {
            self.check_align16(m);
        }
        if bytes == 16 {
            let lo = self.tmp();
            let hi = self.tmp();
            self.vmov(MovOp::ToGpr, 8, lo, v, ZERO, 0);
            self.vmov(MovOp::ToGpr, 8, hi, v, ZERO, 1);
            // Probe the low half, store the high half, then the low: a
            // fault on either page leaves memory untouched, and the lower
            // address faults first.
            self.emit(mem_uop(Op::ProbeW, 8, m));
            self.store(&m.offset(8), 8, hi);
            self.store(m, 8, lo);
        } else {
            let t = self.tmp();
            self.vmov(MovOp::ToGpr, bytes, t, v, ZERO, 0);
            self.store(m, bytes, t);
        }
    }

    /// The vector register holding operand `o`: an XMM register itself, or
    /// a temporary loaded with `bytes` from memory (`align`: 16-byte
    /// alignment checked), or a GPR's low `bytes` moved into a temporary.
    pub(super) fn vsrc(&mut self, o: VOpnd, bytes: u8, align: bool) -> u8 {
        match o {
            VOpnd::Xmm(x) => x,
            VOpnd::Mem(m) => self.vload(&m, bytes, align),
            VOpnd::Gpr(g) => {
                let v = self.vtmp();
                self.vmov(MovOp::FromGpr, bytes.min(8), v, g, ZERO, 0);
                v
            }
        }
    }
}

impl MemRef {
    /// The same reference `d` bytes further.
    pub(super) fn offset(&self, d: i64) -> MemRef {
        MemRef {
            disp: self.disp.wrapping_add(d),
            ..*self
        }
    }
}
