//! Stack and control-flow templates: push/pop, calls, jumps, returns,
//! enter/leave.

use super::*;

impl Tx<'_> {
    pub(super) fn push_value(&mut self, size: u8, v: u8) {
        self.store(&stack_ref(-i64::from(size)), size, v);
        self.emit(uop(Op::Sub, 8, RSP, RSP, imm(i64::from(size))));
    }

    pub(super) fn push(&mut self, ins: &Instruction) -> Tr {
        let size = u8::try_from(ins.stack_pointer_increment().unsigned_abs())
            .expect("push size is 2 or 8");
        // The store precedes the RSP update, so `push rsp` needs no copy.
        let v = self.read_reg(opnd(ins, 0)?, size);
        self.push_value(size, v);
        Ok(false)
    }

    pub(super) fn pop(&mut self, ins: &Instruction) -> Tr {
        let size = u8::try_from(ins.stack_pointer_increment()).expect("pop size is 2 or 8");
        let v = self.load(&stack_ref(0), size);
        self.emit(uop(Op::Add, 8, RSP, RSP, imm(i64::from(size))));
        // A memory destination's address uses the incremented RSP (x86 rule).
        self.write(opnd(ins, 0)?, size, reg(v));
        Ok(false)
    }

    /// The target of a near jmp/call: `None` for a direct one, else a register
    /// holding it, checked canonical (#GP at the branch, before any write).
    /// 16-bit operand-size forms are not modelled (#UD).
    pub(super) fn branch_target(&mut self, ins: &Instruction) -> Result<Option<u8>, Unsupported> {
        match ins.op_kind(0) {
            OpKind::NearBranch64 => Ok(None),
            OpKind::NearBranch16 | OpKind::NearBranch32 => Err(Unsupported),
            _ if opsize(ins, 0) != 8 => Err(Unsupported),
            _ => {
                // Only `call rsp` needs a copy: the push moves RSP before the jump.
                let o = opnd(ins, 0)?;
                let t = match o {
                    Opnd::Reg { idx: RSP, .. } => self.read_copy(o, 8),
                    _ => self.read_reg(o, 8),
                };
                self.emit(uop(Op::Chk, 8, SINK, t, reg(ZERO)).with_aux(1));
                Ok(Some(t))
            }
        }
    }

    pub(super) fn call(&mut self, ins: &Instruction) -> Tr {
        let target = self.branch_target(ins)?;
        let ret = self.tmp();
        self.emit(uop(Op::MovI, 8, ret, ZERO, imm(ins.next_ip() as i64)));
        self.push_value(8, ret);
        self.jump(ins, target);
        Ok(true)
    }

    pub(super) fn jump(&mut self, ins: &Instruction, target: Option<u8>) {
        match target {
            Some(t) => self.emit(uop(Op::JmpR, 8, SINK, t, reg(ZERO))),
            None => self.emit(uop(
                Op::Jmp,
                8,
                SINK,
                ZERO,
                imm(ins.near_branch_target() as i64),
            )),
        }
    }

    pub(super) fn ret(&mut self, ins: &Instruction) -> Tr {
        if matches!(ins.code(), Code::Retnw | Code::Retnw_imm16) {
            return Err(Unsupported);
        }
        let t = self.load(&stack_ref(0), 8);
        self.emit(uop(Op::Chk, 8, SINK, t, reg(ZERO)).with_aux(1));
        let extra = if ins.op_count() > 0 {
            ins.immediate(0) as i64
        } else {
            0
        };
        self.emit(uop(Op::Add, 8, RSP, RSP, imm(8 + extra)));
        self.emit(uop(Op::JmpR, 8, SINK, t, reg(ZERO)));
        Ok(true)
    }

    pub(super) fn enter(&mut self, ins: &Instruction) -> Tr {
        let alloc = ins.immediate(0) as i64;
        let level = (ins.immediate(1) & 31) as i64;
        if level > 5 {
            return Err(Unsupported);
        }
        let mut chain = Vec::new();
        for i in 1..level {
            let m = MemRef {
                base: RBP,
                index: ZERO,
                scale: 0,
                disp: -8 * i,
                seg: ZERO,
                addr32: false,
            };
            chain.push(self.load(&m, 8));
        }
        let frame = self.tmp();
        self.emit(uop(Op::Sub, 8, frame, RSP, imm(8)));
        let lowest = -8 * (1 + level);
        self.emit(mem_uop(Op::ProbeW, 8, &stack_ref(lowest)));
        self.store(&stack_ref(-8), 8, RBP);
        for (i, t) in chain.iter().enumerate() {
            self.store(&stack_ref(-16 - 8 * i as i64), 8, *t);
        }
        if level > 0 {
            self.store(&stack_ref(lowest), 8, frame);
        }
        self.emit(uop(Op::Mov, 8, RBP, frame, reg(ZERO)));
        self.emit(uop(Op::Sub, 8, RSP, frame, imm(8 * level + alloc)));
        Ok(false)
    }

    pub(super) fn leave(&mut self) -> Tr {
        let m = MemRef {
            base: RBP,
            index: ZERO,
            scale: 0,
            disp: 0,
            seg: ZERO,
            addr32: false,
        };
        let t = self.load(&m, 8);
        self.emit(uop(Op::Add, 8, RSP, RBP, imm(8)));
        self.emit(uop(Op::Mov, 8, RBP, t, reg(ZERO)));
        Ok(false)
    }
}
