//! The constructs: string instructions with their pointers, forward
//! jumps, `call`…`ret` and `enter`…`leave` with bodies.

use super::forms;
use super::{Cx, Item, Label, Scope, Unit, R32, R64};
use crate::layout::{CODE_BASE, DATA_PAGE, R15_OFFSET};
use iced_x86::{Code, Encoder, Instruction, MemoryOperand, Mnemonic, Register, RepPrefixKind};

impl Cx<'_> {
    /// A string instruction with its pointers (and a bounded count).
    pub(super) fn string_unit(&mut self) -> Unit {
        use Mnemonic::*;
        let kinds: [(Mnemonic, u64); 20] = [
            (Movsb, 1),
            (Movsw, 2),
            (Movsd, 4),
            (Movsq, 8),
            (Stosb, 1),
            (Stosw, 2),
            (Stosd, 4),
            (Stosq, 8),
            (Lodsb, 1),
            (Lodsw, 2),
            (Lodsd, 4),
            (Lodsq, 8),
            (Cmpsb, 1),
            (Cmpsw, 2),
            (Cmpsd, 4),
            (Cmpsq, 8),
            (Scasb, 1),
            (Scasw, 2),
            (Scasd, 4),
            (Scasq, 8),
        ];
        let (m, size) = *self.rng.pick(&kinds);
        let compares = matches!(
            m,
            Cmpsb | Cmpsw | Cmpsd | Cmpsq | Scasb | Scasw | Scasd | Scasq
        );
        let rep = match self.rng.below(3) {
            0 => RepPrefixKind::None,
            1 => RepPrefixKind::Repe,
            _ if compares => RepPrefixKind::Repne,
            _ => RepPrefixKind::Repe,
        };
        // Mostly short; sometimes long enough for a bulk fast path.
        let count = if self.rng.chance(30) {
            self.rng.range(0, 0x600 / size as i64) as u64
        } else {
            self.rng.range(0, 12) as u64
        };
        let span = (count.max(1) * size) as i64;
        let (lo, hi) = if self.df {
            (span, DATA_PAGE as i64 - 8)
        } else {
            (0, DATA_PAGE as i64 - span - 1)
        };
        let src = self.rng.range(lo, hi);
        // Overlapping source and destination now and then (movs must then
        // behave element by element).
        let dst = if self.rng.chance(30) {
            (src + self.rng.range(-3 * size as i64, 3 * size as i64)).clamp(lo, hi)
        } else {
            self.rng.range(lo, hi)
        };
        let mut items = Vec::new();
        for (reg, off) in [(Register::RSI, src), (Register::RDI, dst)] {
            let d = off - R15_OFFSET as i64;
            let mo = MemoryOperand::new(
                Register::R15,
                Register::None,
                1,
                d,
                8,
                false,
                Register::None,
            );
            items.push(Item::Insn(
                Instruction::with2(Code::Lea_r64_m, reg, mo).expect("lea"),
            ));
        }
        if rep != RepPrefixKind::None {
            let c =
                Instruction::with2(Code::Mov_r32_imm32, Register::ECX, count as u32).expect("mov");
            items.push(Item::Insn(c));
        }
        let main = string_insn(m, rep);
        self.track_flags(&mut items, &main);
        items.push(Item::Insn(main));
        Unit::new(items, m)
    }

    /// A forward conditional or unconditional jump to `l`.
    pub(super) fn skip_unit(&mut self, l: Label) -> Unit {
        let mut items = Vec::new();
        let r = self.rng.below(10);
        if r < 7 {
            let k = self.rng.index(self.g.forms.jcc.len());
            let (short, near) = self.g.forms.jcc[k];
            let probe = Instruction::with_branch(near, CODE_BASE).expect("jcc");
            self.track_flags(&mut items, &probe);
            items.push(Item::Branch {
                short: Some(short),
                near,
                label: l,
            });
            return Unit::new(items, forms::JCC[k]);
        }
        if r < 9 {
            items.push(Item::Branch {
                short: Some(Code::Jmp_rel8_64),
                near: Code::Jmp_rel32_64,
                label: l,
            });
        } else {
            let reg = self.scratch_reg();
            items.push(Item::LeaLabel { reg, label: l });
            items.push(Item::Insn(
                Instruction::with1(Code::Jmp_rm64, reg).expect("jmp"),
            ));
        }
        Unit::new(items, Mnemonic::Jmp)
    }

    /// A register that is neither reserved nor rbp.
    fn scratch_reg(&mut self) -> Register {
        loop {
            let r = *self.rng.pick(&R64);
            if !matches!(r, Register::RSP | Register::R15 | Register::RBP) {
                return r;
            }
        }
    }

    /// Self-modifying code: a store into the immediate of a `mov r32, imm32`
    /// that follows in the same basic block (already translated by then).
    pub(super) fn patch_unit(&mut self) -> Unit {
        let l = self.label();
        let reg = R32[self.scratch_reg().number()];
        let imm = self.rng.next_u64() as u32;
        let mov = Instruction::with2(Code::Mov_r32_imm32, reg, imm).expect("mov");
        let len = Encoder::new(64)
            .encode(&mov, CODE_BASE)
            .expect("mov encodes");
        let offset = (len - 4) as u8 + self.rng.below(4) as u8;
        let value = self.rng.next_u64() as u8;
        let items = vec![
            Item::Patch {
                label: l,
                offset,
                value,
            },
            Item::Label(l),
            Item::Insn(mov),
        ];
        Unit {
            items,
            main: Mnemonic::Mov,
            inner: vec![Mnemonic::Mov],
        }
    }

    /// `[push args] call f; jmp after; f: body; ret [n]; after:`.
    pub(super) fn call_unit(&mut self) -> Unit {
        let f = self.label();
        let after = self.label();
        let mut items = Vec::new();
        let args = self.rng.below(3);
        for _ in 0..args {
            let v = self.rng.range(-128, 127) as i32;
            items.push(Item::Insn(
                Instruction::with1(Code::Pushq_imm8, v).expect("push"),
            ));
        }
        match self.rng.below(3) {
            0 => items.push(Item::Branch {
                short: None,
                near: Code::Call_rel32_64,
                label: f,
            }),
            1 => {
                let reg = self.scratch_reg();
                items.push(Item::LeaLabel { reg, label: f });
                items.push(Item::Insn(
                    Instruction::with1(Code::Call_rm64, reg).expect("call"),
                ));
            }
            _ => {
                let reg = self.scratch_reg();
                let d = self.rng.range(0, 0x1F0) / 8 * 8 - R15_OFFSET as i64;
                let mo = MemoryOperand::new(
                    Register::R15,
                    Register::None,
                    1,
                    d,
                    8,
                    false,
                    Register::None,
                );
                items.push(Item::LeaLabel { reg, label: f });
                items.push(Item::Insn(
                    Instruction::with2(Code::Mov_rm64_r64, mo, reg).expect("mov"),
                ));
                items.push(Item::Insn(
                    Instruction::with1(Code::Call_rm64, mo).expect("call"),
                ));
            }
        }
        items.push(Item::Branch {
            short: Some(Code::Jmp_rel8_64),
            near: Code::Jmp_rel32_64,
            label: after,
        });
        items.push(Item::Label(f));
        let body_scope = Scope {
            stack: false,
            rbp_reserved: false,
            constructs: false,
        };
        let n = self.rng.index(3);
        let (body, pending) = self.units(n, body_scope);
        let inner: Vec<Mnemonic> = body.iter().map(|u| u.main).collect();
        items.extend(body.into_iter().flat_map(|u| u.items));
        items.extend(pending.into_iter().map(Item::Label));
        let ret = if args > 0 || self.rng.chance(20) {
            Instruction::with1(Code::Retnq_imm16, (args * 8) as i32).expect("ret")
        } else {
            Instruction::with(Code::Retnq)
        };
        items.push(Item::Insn(ret));
        items.push(Item::Label(after));
        Unit {
            items,
            main: Mnemonic::Call,
            inner,
        }
    }

    /// `lea rbp, [data]; enter size, level; body; leave`.
    pub(super) fn enter_unit(&mut self) -> Unit {
        let off = self.rng.range(0x100, 0x800) - R15_OFFSET as i64;
        let mo = MemoryOperand::new(
            Register::R15,
            Register::None,
            1,
            off,
            8,
            false,
            Register::None,
        );
        let mut items = vec![Item::Insn(
            Instruction::with2(Code::Lea_r64_m, Register::RBP, mo).expect("lea"),
        )];
        let size = self.rng.range(0, 0x80) as i32;
        let level = self.rng.range(0, 3) as i32;
        let enter = Instruction::with2(Code::Enterq_imm16_imm8, size, level).expect("enter");
        items.push(Item::Insn(enter));
        let scope = Scope {
            stack: true,
            rbp_reserved: true,
            constructs: false,
        };
        let n = self.rng.index(3);
        let (body, pending) = self.units(n, scope);
        let inner: Vec<Mnemonic> = body.iter().map(|u| u.main).collect();
        items.extend(body.into_iter().flat_map(|u| u.items));
        items.extend(pending.into_iter().map(Item::Label));
        items.push(Item::Insn(Instruction::with(Code::Leaveq)));
        Unit {
            items,
            main: Mnemonic::Enter,
            inner,
        }
    }
}

/// A 64-bit-address string instruction.
fn string_insn(m: Mnemonic, rep: RepPrefixKind) -> Instruction {
    use Mnemonic::*;
    let none = Register::None;
    let r = match m {
        Movsb => Instruction::with_movsb(64, none, rep),
        Movsw => Instruction::with_movsw(64, none, rep),
        Movsd => Instruction::with_movsd(64, none, rep),
        Movsq => Instruction::with_movsq(64, none, rep),
        Stosb => Instruction::with_stosb(64, rep),
        Stosw => Instruction::with_stosw(64, rep),
        Stosd => Instruction::with_stosd(64, rep),
        Stosq => Instruction::with_stosq(64, rep),
        Lodsb => Instruction::with_lodsb(64, none, rep),
        Lodsw => Instruction::with_lodsw(64, none, rep),
        Lodsd => Instruction::with_lodsd(64, none, rep),
        Lodsq => Instruction::with_lodsq(64, none, rep),
        Cmpsb => Instruction::with_cmpsb(64, none, rep),
        Cmpsw => Instruction::with_cmpsw(64, none, rep),
        Cmpsd => Instruction::with_cmpsd(64, none, rep),
        Cmpsq => Instruction::with_cmpsq(64, none, rep),
        Scasb => Instruction::with_scasb(64, rep),
        Scasw => Instruction::with_scasw(64, rep),
        Scasd => Instruction::with_scasd(64, rep),
        _ => Instruction::with_scasq(64, rep),
    };
    r.expect("string instruction encodes")
}
