//! Exchange and compare-exchange templates: xchg, cmpxchg, cmpxchg8b/16b,
//! xadd (a locked read-modify-write is one instruction whose load and
//! store overlap; the core partition makes it atomic).

use super::*;

impl Tx<'_> {
    pub(super) fn xchg(&mut self, ins: &Instruction) -> Tr {
        let size = opsize(ins, 0);
        let (o0, o1) = (opnd(ins, 0)?, opnd(ins, 1)?);
        let v0 = self.read_copy(o0, size);
        let v1 = self.read_copy(o1, size);
        // Memory first: a store fault then leaves the register untouched.
        if matches!(o1, Opnd::Mem(_)) {
            self.write(o1, size, reg(v0));
            self.write(o0, size, reg(v1));
        } else {
            self.write(o0, size, reg(v1));
            self.write(o1, size, reg(v0));
        }
        Ok(false)
    }

    pub(super) fn cmpxchg(&mut self, ins: &Instruction) -> Tr {
        let size = opsize(ins, 0);
        let dst = opnd(ins, 0)?;
        let src = self.read_reg(opnd(ins, 1)?, size);
        let old = self.read_copy(dst, size);
        let mut cmp = uop(Op::Sub, size, SINK, RAX, reg(old));
        cmp.fl = fl::ALL;
        self.emit(cmp);
        match dst {
            Opnd::Mem(m) => {
                // The destination is always written (with the old value on failure).
                let nv = self.tmp();
                self.emit(uop(Op::Cmov, 8, nv, old, reg(src)).with_aux(cc_e()));
                self.store(&m, size, nv);
            }
            Opnd::Reg { idx, hi } => {
                if hi {
                    let nv = self.tmp();
                    self.emit(uop(Op::Cmov, 8, nv, old, reg(src)).with_aux(cc_e()));
                    self.emit(uop(Op::PutHi, 8, idx, nv, reg(ZERO)));
                } else {
                    // AMD: a register destination is written only on success
                    // (a failing 32-bit one keeps its upper half).
                    self.emit(uop(Op::CondMov, size, idx, idx, reg(src)).with_aux(cc_e()));
                }
            }
            Opnd::Imm(_) => return Err(Unsupported),
        }
        self.emit(uop(Op::CondMov, size, RAX, RAX, reg(old)).with_aux(cc_e() ^ 1));
        Ok(false)
    }

    /// CMPXCHG8B / CMPXCHG16B: `half` is 4 or 8 bytes.
    pub(super) fn cmpxchg_wide(&mut self, ins: &Instruction, half: u8) -> Tr {
        let Opnd::Mem(m) = opnd(ins, 0)? else {
            return Err(Unsupported);
        };
        if half == 8 {
            let t = self.tmp();
            self.emit(mem_uop(Op::Lea, 8, &m).with_dst(t));
            // #GP unless 16-byte aligned.
            self.emit(uop(Op::Chk, 8, SINK, t, reg(ZERO)).with_aux(0));
        }
        let mhi = MemRef {
            disp: m.disp.wrapping_add(i64::from(half)),
            ..m
        };
        // The destination is always written: loaded for writing.
        let lo = self.load_for_write(&m, half);
        let hi = self.load_for_write(&mhi, half);
        // ZF = (edx:eax == old): the two halves' differences or'ed together.
        let e1 = self.tmp();
        self.emit(uop(Op::Xor, half, e1, lo, reg(RAX)));
        let e2 = self.tmp();
        self.emit(uop(Op::Xor, half, e2, hi, reg(RDX)));
        let mut or = uop(Op::Or, half, SINK, e1, reg(e2));
        or.fl = fl::ZF;
        self.emit(or);
        let nlo = self.tmp();
        self.emit(uop(Op::Cmov, 8, nlo, lo, reg(RBX)).with_aux(cc_e()));
        let nhi = self.tmp();
        self.emit(uop(Op::Cmov, 8, nhi, hi, reg(RCX)).with_aux(cc_e()));
        self.emit(mem_uop(Op::ProbeW, half, &mhi));
        self.store(&m, half, nlo);
        self.store(&mhi, half, nhi);
        self.emit(uop(Op::CondMov, half, RAX, RAX, reg(lo)).with_aux(cc_e() ^ 1));
        self.emit(uop(Op::CondMov, half, RDX, RDX, reg(hi)).with_aux(cc_e() ^ 1));
        Ok(false)
    }

    pub(super) fn xadd(&mut self, ins: &Instruction) -> Tr {
        let size = opsize(ins, 0);
        let dst = opnd(ins, 0)?;
        let Opnd::Reg { idx: sidx, hi: shi } = opnd(ins, 1)? else {
            return Err(Unsupported);
        };
        let src = self.read_copy(opnd(ins, 1)?, size);
        let old = self.read_copy(dst, size);
        let sum = self.tmp();
        let mut u = uop(Op::Add, size, sum, old, reg(src));
        u.fl = fl::ALL;
        self.emit(u);
        if let Opnd::Mem(_) = dst {
            self.write(dst, size, reg(sum));
            self.write(Opnd::Reg { idx: sidx, hi: shi }, size, reg(old));
        } else {
            self.write(Opnd::Reg { idx: sidx, hi: shi }, size, reg(old));
            self.write(dst, size, reg(sum));
        }
        Ok(false)
    }
}
