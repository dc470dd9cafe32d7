//! The generator of random instruction sequences.
//!
//! A case is a list of *units*: one tested instruction plus the setup it
//! needs (an index register for a memory operand, a bounded bit offset, a
//! zeroed dividend high half, string pointers, ...), or a construct
//! (forward `jcc`/`jmp` skips, `call`…`ret`, `enter`…`leave`). Jumps land only
//! on unit boundaries, so setups always run with their instruction.
//!
//! Register conventions (see [`super::layout`]): r15 is the base of memory
//! operands and is never written; rsp only moves through balanced stack
//! instructions; inside `enter`…`leave` rbp is not written either. Memory
//! operands use `[r15+disp]`, `[r15+idx*s+disp]` (idx set just before),
//! `[rip+disp]`, absolute `[disp32]`, `moffs`, `[rsp+disp]` and fs:/gs:
//! overrides, and land inside the data region, except on purpose: straddling
//! its end (#PF) and the self-modifying stores into the code page.

mod asm;
mod constructs;
mod forms;
mod fpinit;
pub mod groups;

pub use asm::{assemble, Assembled};

use super::flags;
use super::layout::{CODE_BASE, DATA_BASE, DATA_PAGE, DATA_SIZE, R15_OFFSET, STACK_TOP};
use super::rng::Rng;
use super::{HostCaps, RegState};
use forms::{Forms, FAMILIES};
pub use groups::Group;
use iced_x86::{
    Code, Encoder, Instruction, InstructionInfoFactory, MemoryOperand, Mnemonic, OpAccess,
    OpCodeOperandKind as K, Register,
};
use std::collections::{BTreeMap, BTreeSet};

/// A group and its forms on this host: (mnemonic, codes) in list order.
pub type GroupForms = (Group, Vec<(Mnemonic, Vec<Code>)>);

/// A jump target inside a case.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct Label(pub u32);

/// One element of a unit.
#[derive(Clone, Debug)]
pub enum Item {
    /// A fully formed instruction.
    Insn(Instruction),
    /// A forward branch (`jcc`, `jmp`, `call`) to a label; the short form is
    /// used when it exists and reaches.
    Branch {
        /// rel8 form, if any.
        short: Option<Code>,
        /// rel32 form.
        near: Code,
        /// Target.
        label: Label,
    },
    /// `lea reg, [rip + label]`.
    LeaLabel {
        /// Destination register (64-bit).
        reg: Register,
        /// Target.
        label: Label,
    },
    /// `mov byte ptr [rip + label + offset], value`: self-modifying code.
    Patch {
        /// The patched instruction's label.
        label: Label,
        /// Byte offset from the label.
        offset: u8,
        /// The new byte.
        value: u8,
    },
    /// Defines a label here.
    Label(Label),
}

/// A tested instruction or construct, with its setup.
#[derive(Clone, Debug)]
pub struct Unit {
    /// The items, in order.
    pub items: Vec<Item>,
    /// The mnemonic the unit tests (for attributing mismatches).
    pub main: Mnemonic,
    /// For constructs (call, enter): the main mnemonics of the units inside.
    pub inner: Vec<Mnemonic>,
}

impl Unit {
    /// A unit without inner units.
    fn new(items: Vec<Item>, main: Mnemonic) -> Self {
        Self {
            items,
            main,
            inner: Vec::new(),
        }
    }

    /// The name mismatches are counted under: the mnemonic, followed by
    /// those of inner units (`call+bsf`).
    pub fn name(&self) -> String {
        let mut s = format!("{:?}", self.main).to_lowercase();
        for m in &self.inner {
            s.push('+');
            s.push_str(&format!("{m:?}").to_lowercase());
        }
        s
    }
}

/// One generated test case.
#[derive(Clone, Debug)]
pub struct Case {
    /// Index of the case in its run.
    pub index: u64,
    /// Registers and flags before the sequence.
    pub init: RegState,
    /// The data region before the sequence (`DATA_SIZE` bytes).
    pub data: Vec<u8>,
    /// The sequence.
    pub units: Vec<Unit>,
    /// RFLAGS bits left undefined by some instruction (masked on non-AMD
    /// hosts; always 0 on AMD).
    pub undef_flags: u64,
    /// The x87/SSE state before the sequence (a 64-bit FXSAVE image).
    pub fx: [u8; 512],
}

impl Case {
    /// The case's code, encoded at `CODE_BASE`.
    pub fn assemble(&self) -> Assembled {
        assemble(&self.units, CODE_BASE)
    }

    /// The same case cut after its first `n` units (jumps past the cut go to
    /// the end).
    pub fn prefix(&self, n: usize) -> Case {
        let mut c = self.clone();
        c.units.truncate(n);
        c
    }
}

/// The 64-, 32-, 16- and 8-bit (REX) names of the sixteen GPRs.
const R64: [Register; 16] = {
    use Register::*;
    [
        RAX, RCX, RDX, RBX, RSP, RBP, RSI, RDI, R8, R9, R10, R11, R12, R13, R14, R15,
    ]
};
const R32: [Register; 16] = {
    use Register::*;
    [
        EAX, ECX, EDX, EBX, ESP, EBP, ESI, EDI, R8D, R9D, R10D, R11D, R12D, R13D, R14D, R15D,
    ]
};
const R16: [Register; 16] = {
    use Register::*;
    [
        AX, CX, DX, BX, SP, BP, SI, DI, R8W, R9W, R10W, R11W, R12W, R13W, R14W, R15W,
    ]
};
const XMM: [Register; 16] = {
    use Register::*;
    [
        XMM0, XMM1, XMM2, XMM3, XMM4, XMM5, XMM6, XMM7, XMM8, XMM9, XMM10, XMM11, XMM12, XMM13,
        XMM14, XMM15,
    ]
};
const MM: [Register; 8] = {
    use Register::*;
    [MM0, MM1, MM2, MM3, MM4, MM5, MM6, MM7]
};
const ST: [Register; 8] = {
    use Register::*;
    [ST0, ST1, ST2, ST3, ST4, ST5, ST6, ST7]
};
const R8: [Register; 20] = {
    use Register::*;
    [
        AL, CL, DL, BL, SPL, BPL, SIL, DIL, R8L, R9L, R10L, R11L, R12L, R13L, R14L, R15L, AH, CH,
        DH, BH,
    ]
};

/// Where in the sequence a unit is generated.
#[derive(Clone, Copy, Debug)]
struct Scope {
    /// push/pop allowed (not inside a call body, whose `ret` needs the stack).
    stack: bool,
    /// rbp holds an `enter` frame and must not be written.
    rbp_reserved: bool,
    /// Constructs (call, enter) allowed (not nested).
    constructs: bool,
}

/// Generates cases for one host.
#[derive(Debug, Clone)]
pub struct Generator {
    /// What the host runs.
    caps: HostCaps,
    /// Forms per mnemonic.
    forms: Forms,
    /// Some accesses straddle the end of the data region (and must #PF).
    region_end: bool,
    /// The selected instruction groups (sorted, `Int` first if present).
    groups: Vec<Group>,
    /// The selected vector groups (all but `Int`).
    vgroups: Vec<Group>,
    /// Forms of the vector groups' mnemonics.
    vforms: BTreeMap<(Group, u16), Vec<Code>>,
}

impl Generator {
    /// A generator for a host with `caps`.
    pub fn new(caps: HostCaps) -> Self {
        Self {
            caps,
            forms: Forms::new(&caps),
            region_end: true,
            groups: vec![Group::Int],
            vgroups: Vec::new(),
            vforms: groups::vector_forms(&caps),
        }
    }

    /// Generates from `groups` (default: `int` alone).
    pub fn groups(mut self, groups: &[Group]) -> Self {
        let mut g = groups.to_vec();
        g.sort();
        g.dedup();
        self.vgroups = g.iter().copied().filter(|&x| x != Group::Int).collect();
        self.groups = g;
        self
    }

    /// The forms of `m` in a vector group on this host.
    fn vcodes(&self, g: Group, m: Mnemonic) -> &[Code] {
        self.vforms.get(&(g, m as u16)).map_or(&[], Vec::as_slice)
    }

    /// Whether `code` (of mnemonic `m`) is a form of a vector group.
    fn is_vcode(&self, m: Mnemonic, code: Code) -> bool {
        groups::ALL[1..]
            .iter()
            .any(|&g| self.vcodes(g, m).contains(&code))
    }

    /// The forms per selected group: (group, [(mnemonic, codes)]).
    pub fn forms_per_group(&self) -> Vec<GroupForms> {
        self.groups
            .iter()
            .map(|&g| {
                let list: Vec<(Mnemonic, Vec<Code>)> = if g == Group::Int {
                    FAMILIES
                        .iter()
                        .flat_map(|f| f.iter())
                        .map(|&m| (m, self.forms.codes(m).to_vec()))
                        .collect()
                } else {
                    g.mnemonics()
                        .iter()
                        .map(|&m| (m, self.vcodes(g, m).to_vec()))
                        .collect()
                };
                let list = list.into_iter().filter(|(_, c)| !c.is_empty()).collect();
                (g, list)
            })
            .collect()
    }

    /// The mnemonics counted on the last line: `None` when `int` is
    /// selected (every mnemonic of the generated code counts), otherwise
    /// those of the selected groups (setup instructions do not count).
    pub fn counted_mnemonics(&self) -> Option<BTreeSet<u16>> {
        if self.groups.contains(&Group::Int) {
            return None;
        }
        Some(
            self.vgroups
                .iter()
                .flat_map(|g| g.mnemonics())
                .map(|&m| m as u16)
                .collect(),
        )
    }

    /// Whether some memory accesses straddle the end of the data region,
    /// where they must raise #PF and change nothing (default: yes).
    pub fn region_end(mut self, on: bool) -> Self {
        self.region_end = on;
        self
    }

    /// Number of mnemonics with generic forms on this host.
    pub fn mnemonic_count(&self) -> usize {
        self.forms.mnemonic_count()
    }

    /// Case `index` of the run seeded with `seed`.
    pub fn case(&self, seed: u64, index: u64) -> Case {
        let mut cx = Cx {
            g: self,
            rng: Rng::for_case(seed, index),
            labels: 0,
            taint: 0,
            undef: 0,
            seg_base: [0; 2],
            df: false,
        };
        let init = cx.init_regs();
        let data = cx.init_data();
        // Its own stream, so that the integer cases of a seed do not change.
        let fx = fpinit::initial_state(&mut Rng::for_case(seed ^ 0xF0F0_5EE5, index));
        let n = 1 + cx.rng.index(10);
        let top = Scope {
            stack: true,
            rbp_reserved: false,
            constructs: true,
        };
        let (units, _) = cx.units(n, top);
        let undef_flags = cx.undef;
        Case {
            index,
            init,
            data,
            units,
            undef_flags,
            fx,
        }
    }
}

/// Generation state of one case.
struct Cx<'g> {
    g: &'g Generator,
    rng: Rng,
    /// Next label number.
    labels: u32,
    /// Flags possibly undefined at this point (non-AMD hosts only matter).
    taint: u64,
    /// Union of all undefined flags so far.
    undef: u64,
    /// The case's initial FS and GS bases (for segment-override operands).
    seg_base: [u64; 2],
    /// The case runs with DF set (string instructions go down).
    df: bool,
}

/// An operand being built.
#[derive(Clone, Copy, Debug)]
enum Op {
    R(Register),
    M(MemoryOperand),
    I(i64),
}

/// Builds an instruction from a code and operands.
fn make(code: Code, ops: &[Op]) -> Option<Instruction> {
    use Op::*;
    let wide = code == Code::Mov_r64_imm64;
    let r = match *ops {
        [R(Register::None), R(a), R(b)] if code == Code::Maskmovq_rDI_mm_mm => {
            Instruction::with_maskmovq(64, a, b, Register::None)
        }
        [] => Ok(Instruction::with(code)),
        [R(a)] => Instruction::with1(code, a),
        [M(a)] => Instruction::with1(code, a),
        [I(a)] => Instruction::with1(code, a as i32),
        [R(a), R(b)] => Instruction::with2(code, a, b),
        [R(a), M(b)] => Instruction::with2(code, a, b),
        [M(a), R(b)] => Instruction::with2(code, a, b),
        [R(a), I(b)] if wide => Instruction::with2(code, a, b as u64),
        [R(a), I(b)] => Instruction::with2(code, a, b as i32),
        [M(a), I(b)] => Instruction::with2(code, a, b as i32),
        [I(a), I(b)] => Instruction::with2(code, a as i32, b as i32),
        [R(a), R(b), R(c)] => Instruction::with3(code, a, b, c),
        [R(a), R(b), M(c)] => Instruction::with3(code, a, b, c),
        [R(a), R(b), I(c)] => Instruction::with3(code, a, b, c as i32),
        [R(a), M(b), I(c)] => Instruction::with3(code, a, b, c as i32),
        [M(a), R(b), R(c)] => Instruction::with3(code, a, b, c),
        [R(a), M(b), R(c)] => Instruction::with3(code, a, b, c),
        [M(a), R(b), I(c)] => Instruction::with3(code, a, b, c as i32),
        _ => return None,
    };
    r.ok()
}

/// Whether `i` encodes (high-byte registers cannot meet a REX prefix).
fn encodes(i: &Instruction) -> bool {
    Encoder::new(64).encode(i, CODE_BASE).is_ok()
}

/// Full 64-bit registers that `i` writes.
fn written_regs(i: &Instruction) -> Vec<Register> {
    let mut f = InstructionInfoFactory::new();
    let info = f.info(i);
    info.used_registers()
        .iter()
        .filter(|u| {
            matches!(
                u.access(),
                OpAccess::Write
                    | OpAccess::CondWrite
                    | OpAccess::ReadWrite
                    | OpAccess::ReadCondWrite
            )
        })
        .map(|u| u.register().full_register())
        .collect()
}

/// Constraints on an instruction's memory operand.
struct MemPlan {
    /// Access size in bytes.
    size: u64,
    /// Required alignment of the address.
    align: u64,
    /// Added to the aligned address (a deliberate misalignment), or 0.
    misalign: u64,
    /// The address's offset from `DATA_BASE` lies in `lo..hi`.
    lo: u64,
    hi: u64,
    /// `[rsp+disp]` may be used.
    stack_ok: bool,
}

/// A memory operand under construction: the operand and its setup.
struct Mem {
    op: MemoryOperand,
    /// Index register set by `setup`, if any.
    index: Option<Register>,
    setup: Option<Instruction>,
}

impl Cx<'_> {
    fn label(&mut self) -> Label {
        self.labels += 1;
        Label(self.labels)
    }

    fn init_regs(&mut self) -> RegState {
        let mut r = RegState::default();
        for g in r.gpr.iter_mut() {
            *g = self.rng.interesting_u64();
        }
        r.gpr[4] = STACK_TOP;
        r.gpr[15] = DATA_BASE + R15_OFFSET;
        let arith = self.rng.next_u64() & flags::ARITH;
        self.df = self.rng.chance(20);
        r.rflags = 0x2 | arith | if self.df { flags::DF } else { 0 };
        // Small bases let fs:/gs: operands reach the data region.
        for k in 0..2 {
            let b = if self.rng.chance(50) {
                self.rng.range(0, 0xFF) as u64 & !0xF
            } else {
                self.canonical()
            };
            self.seg_base[k] = b;
        }
        r.fs_base = self.seg_base[0];
        r.gs_base = self.seg_base[1];
        r
    }

    /// A canonical address-like value.
    fn canonical(&mut self) -> u64 {
        let v = self.rng.next_u64() & 0x0000_7FFF_FFFF_FFF0;
        if self.rng.chance(20) {
            v | 0xFFFF_8000_0000_0000
        } else {
            v
        }
    }

    fn init_data(&mut self) -> Vec<u8> {
        let mut d = Vec::with_capacity(DATA_SIZE);
        while d.len() < DATA_SIZE {
            let v = if self.rng.chance(20) {
                self.rng.interesting_u64()
            } else {
                self.rng.next_u64()
            };
            d.extend_from_slice(&v.to_le_bytes());
        }
        d
    }

    /// `n` units; returns them and the labels they leave pending (targets
    /// at or after the end of this list).
    fn units(&mut self, n: usize, scope: Scope) -> (Vec<Unit>, Vec<Label>) {
        let mut units: Vec<Unit> = Vec::with_capacity(n);
        let mut pending: Vec<(usize, Label)> = Vec::new();
        for k in 0..n {
            let here: Vec<Item> = pending
                .iter()
                .filter(|(t, _)| *t == k)
                .map(|&(_, l)| Item::Label(l))
                .collect();
            pending.retain(|(t, _)| *t != k);
            let mut u = self.unit(scope, k, n, &mut pending);
            let mut items = here;
            items.append(&mut u.items);
            u.items = items;
            units.push(u);
        }
        (units, pending.into_iter().map(|(_, l)| l).collect())
    }

    /// One unit at position `k` of `n`.
    fn unit(
        &mut self,
        scope: Scope,
        k: usize,
        n: usize,
        pending: &mut Vec<(usize, Label)>,
    ) -> Unit {
        let vector = match (self.g.groups.first(), self.g.vgroups.len()) {
            (_, 0) => false,
            (Some(Group::Int), n) => self.rng.below(n as u64 + 1) != 0,
            _ => true,
        };
        if vector {
            return self.vector_unit(scope);
        }
        let roll = self.rng.below(100);
        match roll {
            0..=6 => self.string_unit(),
            7..=14 => {
                let target = k + 1 + self.rng.index(3);
                let l = self.label();
                pending.push((target.min(n), l));
                self.skip_unit(l)
            }
            15..=19 if scope.constructs => self.call_unit(),
            23 => self.patch_unit(),
            20..=22 if scope.constructs && scope.stack => self.enter_unit(),
            _ => self.generic_unit(scope),
        }
    }

    /// Prepends a flag-defining `cmp` when `main` reads a flag that may be
    /// undefined (non-AMD hosts), then records what `main` leaves undefined.
    fn track_flags(&mut self, setup: &mut Vec<Item>, main: &Instruction) {
        for it in setup.iter() {
            if let Item::Insn(i) = it {
                self.note_undefined(i);
            }
        }
        if flags::read_flags(main) & self.taint != 0 {
            let a = *self.rng.pick(&R64);
            let b = *self.rng.pick(&R64);
            let cmp = Instruction::with2(Code::Cmp_r64_rm64, a, b).expect("cmp encodes");
            setup.push(Item::Insn(cmp));
        }
        self.note_undefined(main);
    }

    fn note_undefined(&mut self, i: &Instruction) {
        let u = if self.g.caps.amd {
            flags::undefined_modelled_after_intel(i)
        } else {
            flags::undefined_flags(i)
        };
        self.taint |= u;
        self.undef |= u;
    }

    /// A random register of the width `kind` asks for.
    fn reg_for(&mut self, kind: K) -> Register {
        match kind {
            K::xmm_reg | K::xmm_rm | K::xmm_or_mem | K::xmm_vvvv => *self.rng.pick(&XMM),
            K::mm_reg | K::mm_rm | K::mm_or_mem => *self.rng.pick(&MM),
            K::st0 => Register::ST0,
            K::sti_opcode => *self.rng.pick(&ST),
            K::r32_vvvv => *self.rng.pick(&R32),
            K::r8_reg | K::r8_opcode | K::r8_or_mem => *self.rng.pick(&R8),
            K::r16_reg | K::r16_rm | K::r16_opcode | K::r16_or_mem => *self.rng.pick(&R16),
            K::r32_reg | K::r32_rm | K::r32_opcode | K::r32_or_mem => *self.rng.pick(&R32),
            _ => *self.rng.pick(&R64),
        }
    }

    /// An immediate for operand kind `kind` of an instruction with
    /// mnemonic `m` whose first operand is `bits` wide.
    fn imm_for(&mut self, kind: K, m: Mnemonic, bits: i64) -> i64 {
        use Mnemonic::*;
        let counted = matches!(
            m,
            Shl | Sal | Shr | Sar | Rol | Ror | Rcl | Rcr | Shld | Shrd
        );
        if counted && kind == K::imm8 {
            let c = [0, 1, 2, bits - 1, bits, bits + 1, 31, 32, 33, 63, 64, 255];
            return if self.rng.chance(50) {
                *self.rng.pick(&c)
            } else {
                self.rng.range(0, 255)
            };
        }
        let v = self.rng.interesting_u64() as i64;
        match kind {
            K::imm8_const_1 => 1,
            K::imm8 | K::imm8sex16 | K::imm8sex32 | K::imm8sex64 => v as i8 as i64,
            K::imm16 => v as i16 as i64,
            K::imm32 | K::imm32sex64 => v as i32 as i64,
            _ => v,
        }
    }

    /// A data address for an access of `size` bytes aligned to `align`,
    /// with its offset from `DATA_BASE` in `lo..hi`.
    fn data_addr(&mut self, size: u64, align: u64, lo: u64, hi: u64) -> u64 {
        let off = self.rng.range(lo as i64, (hi - size) as i64) as u64;
        DATA_BASE + off / align * align
    }

    /// A memory operand addressing `addr` in one of the addressing forms.
    fn mem_at(&mut self, addr: u64, align: u64, scope: Scope, stack_ok: bool) -> Mem {
        // [rsp+d] cannot promise an alignment.
        let stack_ok = stack_ok && align == 1;
        let r15 = DATA_BASE + R15_OFFSET;
        let none = Register::None;
        let plain = |op| Mem {
            op,
            index: None,
            setup: None,
        };
        let roll = self.rng.below(13);
        if roll == 12 && self.g.caps.fsgsbase {
            // fs:/gs: override, when that base is small enough to reach.
            let k = self.rng.index(2);
            if self.seg_base[k] < 0x1000 {
                let seg = [Register::FS, Register::GS][k];
                let d = addr as i64 - r15 as i64 - self.seg_base[k] as i64;
                return plain(MemoryOperand::new(Register::R15, none, 1, d, 8, false, seg));
            }
        }
        match roll {
            0..=5 => {
                let d = addr as i64 - r15 as i64;
                plain(MemoryOperand::new(
                    Register::R15,
                    none,
                    1,
                    d,
                    8,
                    false,
                    none,
                ))
            }
            6..=7 => {
                let mut idx;
                loop {
                    idx = *self.rng.pick(&R64);
                    let bad = idx == Register::RSP
                        || idx == Register::R15
                        || (scope.rbp_reserved && idx == Register::RBP);
                    if !bad {
                        break;
                    }
                }
                let scale = *self.rng.pick(&[1u32, 2, 4, 8]);
                let iv = self.rng.range(0, 0x40);
                let d = addr as i64 - r15 as i64 - iv * i64::from(scale);
                let op = MemoryOperand::new(Register::R15, idx, scale, d, 8, false, none);
                let r32 = R32[idx.number()];
                let setup = Instruction::with2(Code::Mov_r32_imm32, r32, iv as u32).expect("mov");
                Mem {
                    op,
                    index: Some(idx),
                    setup: Some(setup),
                }
            }
            8 => plain(MemoryOperand::new(
                Register::RIP,
                none,
                1,
                addr as i64,
                8,
                false,
                none,
            )),
            9 => plain(MemoryOperand::new(
                none,
                none,
                1,
                addr as i64,
                8,
                false,
                none,
            )),
            _ if stack_ok => {
                // [rsp+d]: rsp stays within ±0x700 of STACK_TOP.
                let d = self.rng.range(0, 0x200);
                plain(MemoryOperand::new(
                    Register::RSP,
                    none,
                    1,
                    d,
                    8,
                    false,
                    none,
                ))
            }
            _ => {
                let d = addr as i64 - r15 as i64;
                plain(MemoryOperand::new(
                    Register::R15,
                    none,
                    1,
                    d,
                    1,
                    false,
                    none,
                ))
            }
        }
    }

    /// A unit from one of the selected vector groups.
    fn vector_unit(&mut self, scope: Scope) -> Unit {
        loop {
            let g = *self.rng.pick(&self.g.vgroups);
            let m = *self.rng.pick(g.mnemonics());
            let codes = self.g.vcodes(g, m);
            if codes.is_empty() {
                continue;
            }
            let code = *self.rng.pick(codes);
            if let Some(u) = self.try_form(code, m, scope) {
                return u;
            }
        }
    }

    /// A generic unit: one form from the iced tables with its setup.
    fn generic_unit(&mut self, scope: Scope) -> Unit {
        loop {
            let fam = *self.rng.pick(FAMILIES);
            let m = *self.rng.pick(fam);
            let stacky = matches!(m, Mnemonic::Push | Mnemonic::Pop);
            if stacky && !scope.stack {
                continue;
            }
            let codes = self.g.forms.codes(m);
            if codes.is_empty() {
                continue;
            }
            let code = *self.rng.pick(codes);
            if let Some(u) = self.try_form(code, m, scope) {
                return u;
            }
        }
    }

    /// Tries to fill `code`'s operands; `None` to draw again.
    fn try_form(&mut self, code: Code, m: Mnemonic, scope: Scope) -> Option<Unit> {
        let lock = code.op_code().can_use_lock_prefix() && self.rng.chance(50);
        let plan = self.mem_plan(code, m, lock, scope);
        let (ops, mem) = self.fill_operands(code, m, &plan, scope);
        let mut main = make(code, &ops)?;
        // A lock prefix on a register destination or a non-lockable
        // instruction is #UD: tried now and then.
        let stray_lock = self.rng.chance(1);
        if (lock && main.op0_kind() == iced_x86::OpKind::Memory) || stray_lock {
            main.set_has_lock_prefix(true);
        }
        if !encodes(&main) || self.writes_reserved(&main, m, scope) {
            return None;
        }
        let mut setup = Vec::new();
        self.special_setup(&main, m, code, &mut setup)?;
        let clobbers_index = |s: &Instruction| {
            mem.as_ref()
                .and_then(|mm| mm.index)
                .is_some_and(|idx| written_regs(s).contains(&idx))
        };
        let bad_setup =
            |s: &Instruction| self.writes_reserved(s, s.mnemonic(), scope) || clobbers_index(s);
        if setup.iter().any(bad_setup) {
            return None;
        }
        let mut items: Vec<Item> = Vec::new();
        if let Some(s) = mem.and_then(|mm| mm.setup) {
            items.push(Item::Insn(s));
        }
        items.extend(setup.into_iter().map(Item::Insn));
        self.track_flags(&mut items, &main);
        items.push(Item::Insn(main));
        if m == Mnemonic::Xgetbv {
            // The host's XCR0 enables AVX and AVX-512 state the simulator
            // does not have: only the x87 and SSE bits are compared.
            let and = Instruction::with2(Code::And_rm32_imm32, Register::EAX, 3).expect("and");
            let xor =
                Instruction::with2(Code::Xor_r32_rm32, Register::EDX, Register::EDX).expect("xor");
            self.note_undefined(&and);
            items.extend([Item::Insn(and), Item::Insn(xor)]);
        }
        Some(Unit::new(items, m))
    }

    /// Where `code`'s memory operand may go.
    fn mem_plan(&mut self, code: Code, m: Mnemonic, lock: bool, scope: Scope) -> MemPlan {
        let op = code.op_code();
        let size = (op.memory_size().size() as u64).max(1);
        // Locked accesses never split a cache line (split-lock detection).
        let vec_align = groups::needs_align16(code, m);
        let align_needed = lock || vec_align || m == Mnemonic::Xchg || m == Mnemonic::Cmpxchg16b;
        let align = if align_needed || self.rng.chance(60) {
            size.min(16)
        } else {
            1
        };
        // Now and then a misaligned operand where alignment is required: #GP.
        let misalign = if vec_align && self.rng.chance(3) {
            self.rng.range(1, 15) as u64
        } else {
            0
        };
        // bt* with a register bit offset reach up to ±0x300 bytes around it.
        let bt_reg = matches!(
            m,
            Mnemonic::Bt | Mnemonic::Bts | Mnemonic::Btr | Mnemonic::Btc
        ) && op.op1_kind() != K::imm8;
        let edge = if align_needed || bt_reg {
            100
        } else {
            self.rng.below(100)
        };
        let (lo, hi) = match edge {
            _ if bt_reg => (0x400, 0xC00),
            // Straddling the data/stack page boundary (both mapped).
            0..=3 => (DATA_PAGE - size + 1, DATA_PAGE + size),
            // Straddling the end of the region: a #PF that must change nothing.
            4 if self.g.region_end => (DATA_SIZE as u64 - size + 1, DATA_SIZE as u64 + size),
            _ => (0, DATA_PAGE),
        };
        // Not for push/pop (whose rsp-relative address is computed after the
        // rsp update) nor inside a call body (it could hit the return address).
        let stack_ok = scope.stack && !matches!(m, Mnemonic::Push | Mnemonic::Pop);
        MemPlan {
            size,
            align,
            misalign,
            lo,
            hi,
            stack_ok,
        }
    }

    /// Random operands for `code` (a memory operand follows `plan`).
    fn fill_operands(
        &mut self,
        code: Code,
        m: Mnemonic,
        plan: &MemPlan,
        scope: Scope,
    ) -> (Vec<Op>, Option<Mem>) {
        let op = code.op_code();
        let bits = i64::from(op.operand_size().max(8));
        let vector = self.g.is_vcode(m, code);
        let mut ops = Vec::new();
        let mut mem: Option<Mem> = None;
        for &kind in op.op_kinds() {
            let o = match kind {
                K::al => Op::R(Register::AL),
                K::cl => Op::R(Register::CL),
                K::ax => Op::R(Register::AX),
                K::eax => Op::R(Register::EAX),
                K::rax => Op::R(Register::RAX),
                K::mem_offs => {
                    let addr = self.data_addr(plan.size, plan.align, plan.lo, plan.hi);
                    let none = Register::None;
                    Op::M(MemoryOperand::new(
                        none,
                        none,
                        1,
                        addr as i64,
                        8,
                        false,
                        none,
                    ))
                }
                K::mem
                | K::r8_or_mem
                | K::r16_or_mem
                | K::r32_or_mem
                | K::r64_or_mem
                | K::xmm_or_mem
                | K::mm_or_mem
                    if kind == K::mem || m == Mnemonic::Lea || self.rng.chance(35) =>
                {
                    let addr =
                        self.data_addr(plan.size, plan.align, plan.lo, plan.hi) + plan.misalign;
                    let mm = self.mem_at(addr, plan.align, scope, plan.stack_ok);
                    let o = Op::M(mm.op);
                    mem = Some(mm);
                    o
                }
                K::seg_rDI => {
                    // maskmovq's DS:[RDI]: RDI set to the address first.
                    let addr = self.data_addr(plan.size, plan.align, plan.lo, plan.hi);
                    let set = Instruction::with2(Code::Mov_rm64_imm32, Register::RDI, addr as i32);
                    mem = Some(Mem {
                        op: MemoryOperand::with_base(Register::RDI),
                        index: Some(Register::RDI),
                        setup: set.ok(),
                    });
                    Op::R(Register::None)
                }
                K::imm8 if vector => Op::I(self.rng.range(0, 255)),
                k if (K::imm4_m2z..=K::imm64).contains(&k) => Op::I(self.imm_for(k, m, bits)),
                k => Op::R(self.reg_for(k)),
            };
            ops.push(o);
        }
        if m == Mnemonic::Lea {
            if let Some(Op::M(mo)) = ops.get_mut(1) {
                *mo = self.free_address();
                mem = None;
            }
        }
        (ops, mem)
    }

    /// A `lea` source: any base/index/scale/displacement (nothing is accessed).
    fn free_address(&mut self) -> MemoryOperand {
        let none = Register::None;
        let base = if self.rng.chance(85) {
            *self.rng.pick(&R64)
        } else {
            none
        };
        let mut index = if self.rng.chance(50) {
            *self.rng.pick(&R64)
        } else {
            none
        };
        if index == Register::RSP {
            index = none;
        }
        let scale = *self.rng.pick(&[1u32, 2, 4, 8]);
        let d = match self.rng.below(3) {
            0 => 0,
            1 => self.rng.range(-128, 127),
            _ => self.rng.next_u64() as i32 as i64,
        };
        let dsize = if base == none && index == none { 8 } else { 1 };
        MemoryOperand::new(
            base,
            index,
            scale,
            d,
            dsize.max(if d == 0 { 0 } else { 1 }),
            false,
            none,
        )
    }

    /// Whether `i` writes a reserved register.
    fn writes_reserved(&self, i: &Instruction, m: Mnemonic, scope: Scope) -> bool {
        let stacky = matches!(m, Mnemonic::Push | Mnemonic::Pop);
        written_regs(i).iter().any(|&r| {
            r == Register::R15
                || (r == Register::RSP && !stacky)
                || (scope.rbp_reserved && r == Register::RBP)
        }) || (m == Mnemonic::Pop
            && i.op0_kind() == iced_x86::OpKind::Register
            && i.op0_register().full_register() == Register::RSP)
    }

    /// Setup instructions some mnemonics need; `None` to draw again.
    fn special_setup(
        &mut self,
        main: &Instruction,
        m: Mnemonic,
        code: Code,
        setup: &mut Vec<Instruction>,
    ) -> Option<()> {
        use Mnemonic::*;
        let amd = self.g.caps.amd;
        if self.g.is_vcode(m, code) {
            return self.vector_setup(main, m, setup);
        }
        match m {
            Div | Idiv if self.rng.chance(80) => setup.push(divide_setup(m, code)),
            Bt | Bts | Btr | Btc
                if main.op0_kind() == iced_x86::OpKind::Memory
                    && main.op1_kind() == iced_x86::OpKind::Register =>
            {
                let r = main.op1_register().full_register();
                if r == Register::RSP || r == Register::R15 {
                    return None;
                }
                let v = self.rng.range(-0x1800, 0x1800) as i32;
                setup.push(Instruction::with2(Code::Mov_rm64_imm32, r, v).expect("mov"));
            }
            Wrfsbase | Wrgsbase => {
                // The case's later fs:/gs: operands were computed from the
                // initial base: after a write the base is not known here,
                // so no more of them (a stale base made them fault).
                self.seg_base[usize::from(m == Wrgsbase)] = u64::MAX;
                let r = main.op0_register().full_register();
                let set = if main.op0_register().size() == 8 && self.rng.chance(5) {
                    // Non-canonical: #GP.
                    let v = 0x0000_8000_0000_0000 | (self.rng.next_u64() & 0x7FFF_FFFF_FFF0);
                    Instruction::with2(Code::Mov_r64_imm64, r, v)
                } else {
                    let v = (self.canonical() as i64 as i32) & !0xF;
                    Instruction::with2(Code::Mov_rm64_imm32, r, v)
                };
                setup.push(set.expect("mov"));
            }
            // Intel leaves these results undefined; steer clear off AMD.
            Bsf | Bsr if !amd => {
                let or = match main.op1_kind() {
                    iced_x86::OpKind::Register => {
                        let r = main.op1_register();
                        let c = [Code::Or_rm16_imm8, Code::Or_rm32_imm8, Code::Or_rm64_imm8];
                        let c = c[(r.size().trailing_zeros() - 1) as usize];
                        Instruction::with2(c, r, 1 << self.rng.range(0, 6)).ok()?
                    }
                    _ => return None,
                };
                if or.op0_register().full_register() == Register::R15 {
                    return None;
                }
                setup.push(or);
            }
            Shld | Shrd
                if !amd && main.op0_register().size() <= 2 && main.memory_size().size() <= 2 =>
            {
                if main.op2_kind() == iced_x86::OpKind::Register {
                    let c = self.rng.range(0, 16) as i32;
                    setup
                        .push(Instruction::with2(Code::Mov_r8_imm8, Register::CL, c).expect("mov"));
                } else if main.immediate8() > 16 {
                    return None;
                }
            }
            _ => {}
        }
        Some(())
    }
}

impl Cx<'_> {
    /// Setup instructions of vector-group forms: a valid MXCSR or FCW
    /// stored where `ldmxcsr`/`fldcw` read it, an `fxsave` image for
    /// `fxrstor`, ECX = 0 for `xgetbv`, short string lengths for
    /// `pcmpestri`/`pcmpestrm`.
    fn vector_setup(
        &mut self,
        main: &Instruction,
        m: Mnemonic,
        setup: &mut Vec<Instruction>,
    ) -> Option<()> {
        use Mnemonic::*;
        let mem = main.op0_kind() == iced_x86::OpKind::Memory;
        match m {
            // AMD accepts MXCSR bit 17 (its MXCSR_MASK is 0x2ffff), so an
            // AMD host gets a valid value every time.
            Ldmxcsr if mem && (self.g.caps.amd || self.rng.chance(90)) => {
                let v = fpinit::mxcsr_value(&mut self.rng);
                let st = Instruction::with2(Code::Mov_rm32_imm32, mem_operand_of(main), v);
                setup.push(st.ok()?);
            }
            Fldcw if mem && self.rng.chance(95) => {
                let v = u32::from(fpinit::fcw_value(&mut self.rng));
                let st = Instruction::with2(Code::Mov_rm16_imm16, mem_operand_of(main), v);
                setup.push(st.ok()?);
            }
            Fxrstor | Fxrstor64 if self.g.caps.amd || self.rng.chance(95) => {
                let c = if m == Fxrstor {
                    Code::Fxsave_m512byte
                } else {
                    Code::Fxsave64_m512byte
                };
                setup.push(Instruction::with1(c, mem_operand_of(main)).ok()?);
                if self.g.caps.amd {
                    // The fields AMD's FXSAVE stores differently (see
                    // `groups::modelled_after_intel`) are cleared in the image, so
                    // that memory compares equal: FOP, FIP, FDP and
                    // MXCSR_MASK (which FXRSTOR ignores).
                    for (off, code) in [
                        (6, Code::Mov_rm16_imm16),
                        (8, Code::Mov_rm64_imm32),
                        (16, Code::Mov_rm64_imm32),
                        (28, Code::Mov_rm32_imm32),
                    ] {
                        let at = mem_operand_at(main, off);
                        setup.push(Instruction::with2(code, at, 0).ok()?);
                    }
                }
            }
            Xgetbv => setup
                .push(Instruction::with2(Code::Xor_r32_rm32, Register::ECX, Register::ECX).ok()?),
            Pcmpestri | Pcmpestrm if self.rng.chance(70) => {
                for r in [Register::EAX, Register::EDX] {
                    let v = self.rng.range(-20, 20) as i32;
                    setup.push(Instruction::with2(Code::Mov_rm32_imm32, r, v).ok()?);
                }
            }
            _ => {}
        }
        // An MMX operand now and then from a GPR (the x87 registers'
        // significands are biased to x87 values).
        let mms: Vec<Register> = (0..main.op_count())
            .filter(|&i| main.op_kind(i) == iced_x86::OpKind::Register)
            .map(|i| main.op_register(i))
            .filter(|r| r.is_mm())
            .collect();
        if !mms.is_empty() && self.rng.chance(50) {
            let (mm, g) = (*self.rng.pick(&mms), *self.rng.pick(&R64));
            setup.push(Instruction::with2(Code::Movq_mm_rm64, mm, g).ok()?);
        }
        Some(())
    }
}

/// The memory operand of `i` moved `off` bytes on.
fn mem_operand_at(i: &Instruction, off: i64) -> MemoryOperand {
    let mut m = mem_operand_of(i);
    m.displacement += off;
    m.displ_size = m.displ_size.max(1);
    m
}

/// The memory operand of `i`, to address the same bytes from another
/// instruction.
fn mem_operand_of(i: &Instruction) -> MemoryOperand {
    MemoryOperand::new(
        i.memory_base(),
        i.memory_index(),
        i.memory_index_scale(),
        i.memory_displacement64() as i64,
        i.memory_displ_size(),
        false,
        i.segment_prefix(),
    )
}

/// The setup that usually keeps a division from overflowing: a zero (div)
/// or sign-extended (idiv) high half of the dividend.
fn divide_setup(m: Mnemonic, code: Code) -> Instruction {
    let bits = code.op_code().operand_size();
    let signed = m == Mnemonic::Idiv;
    match (bits, signed) {
        (16, false) => Instruction::with2(Code::Xor_r16_rm16, Register::DX, Register::DX),
        (16, true) => Ok(Instruction::with(Code::Cwd)),
        (32, false) => Instruction::with2(Code::Xor_r32_rm32, Register::EDX, Register::EDX),
        (32, true) => Ok(Instruction::with(Code::Cdq)),
        (64, false) => Instruction::with2(Code::Xor_r32_rm32, Register::EDX, Register::EDX),
        (64, true) => Ok(Instruction::with(Code::Cqo)),
        (_, false) => Instruction::with2(Code::Mov_r8_imm8, Register::AH, 0),
        (_, true) => Ok(Instruction::with(Code::Cbw)),
    }
    .expect("divide setup encodes")
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The sandbox's view of assembled cases.
    fn native_inputs<'a>(cases: &'a [Case], code: &'a [Assembled]) -> Vec<NativeInput<'a>> {
        cases
            .iter()
            .zip(code)
            .map(|(c, a)| NativeInput {
                init: &c.init,
                code: &a.bytes,
                data: &c.data,
                fx: &c.fx,
            })
            .collect()
    }
    use crate::native::{run_batch, NativeInput};
    use crate::Outcome;
    use iced_x86::{Decoder, DecoderOptions};

    fn gen() -> Generator {
        Generator::new(HostCaps::detect())
    }

    /// Every form of every vector group is generated (its operands can be
    /// filled and it encodes), and every case runs natively.
    #[test]
    fn every_vector_form_is_generated_and_runs() {
        let g = gen().groups(&groups::ALL[1..]);
        let cases: Vec<Case> = (0..20_000).map(|i| g.case(13, i)).collect();
        let mut seen = BTreeSet::new();
        for c in &cases {
            for u in &c.units {
                for it in &u.items {
                    if let Item::Insn(i) = it {
                        seen.insert(i.code() as u32);
                    }
                }
            }
        }
        let missing: Vec<String> = g
            .forms_per_group()
            .into_iter()
            .flat_map(|(_, l)| l.into_iter().flat_map(|(_, c)| c))
            .filter(|c| !seen.contains(&(*c as u32)))
            .map(|c| format!("{c:?}"))
            .collect();
        assert!(missing.is_empty(), "never generated: {missing:?}");
        let code: Vec<Assembled> = cases[..3000].iter().map(Case::assemble).collect();
        let inputs = native_inputs(&cases, &code);
        let out = run_batch(&inputs).expect("sandbox runs");
        let crashed = out
            .iter()
            .filter(|o| matches!(o, Outcome::Crashed { .. }))
            .count();
        assert_eq!(crashed, 0);
    }

    #[test]
    fn cases_are_deterministic_per_seed_and_index() {
        let g = gen();
        let a = g.case(3, 17).assemble();
        let b = g.case(3, 17).assemble();
        assert_eq!(a, b);
        assert_ne!(a.bytes, g.case(3, 18).assemble().bytes);
        assert_eq!(g.case(3, 17).data, g.case(3, 17).data);
        let v = gen().groups(&groups::ALL);
        assert_eq!(v.case(4, 9).assemble(), v.case(4, 9).assemble());
        assert_eq!(v.case(4, 9).fx, v.case(4, 9).fx);
        assert_ne!(v.case(4, 9).fx, v.case(4, 10).fx);
        // The integer cases of a seed do not depend on the x87/SSE state.
        assert_eq!(
            g.case(3, 17).init,
            gen().groups(&[Group::Int]).case(3, 17).init
        );
    }

    #[test]
    fn generated_code_decodes_back_to_the_same_instruction_boundaries() {
        let g = gen();
        for i in 0..500 {
            let asm = g.case(9, i).assemble();
            let mut d =
                Decoder::with_ip(64, &asm.bytes, CODE_BASE, DecoderOptions::NO_INVALID_CHECK);
            for &(off, len) in &asm.insns {
                let ins = d.decode();
                assert!(!ins.is_invalid(), "case {i}: invalid at {off:#x}");
                assert_eq!(ins.ip() - CODE_BASE, u64::from(off));
                assert_eq!(ins.len() as u32, len);
            }
            assert!(!d.can_decode(), "case {i}: trailing bytes");
        }
    }

    #[test]
    fn generated_cases_run_natively_without_stray_faults() {
        let g = gen().region_end(false);
        let cases: Vec<Case> = (0..2000).map(|i| g.case(5, i)).collect();
        let code: Vec<Assembled> = cases.iter().map(Case::assemble).collect();
        let inputs = native_inputs(&cases, &code);
        let out = run_batch(&inputs).expect("sandbox runs");
        let (mut divide_errors, mut gp, mut ud) = (0, 0, 0);
        for (i, o) in out.iter().enumerate() {
            match o {
                Outcome::Ran {
                    fault: None, regs, ..
                } => {
                    let d = crate::report::disassemble(&code[i]);
                    assert_eq!(
                        regs.gpr[15],
                        DATA_BASE + R15_OFFSET,
                        "case {i}: r15 written\n{d}"
                    );
                }
                Outcome::Ran { fault: Some(f), .. } => {
                    let d = crate::report::disassemble(&code[i]);
                    // #DE from div/idiv; #GP only from a non-canonical
                    // wr*sbase; #UD only from a stray lock prefix.
                    let wrbase = d.contains("wrfsbase") || d.contains("wrgsbase");
                    match f.vector {
                        0 => divide_errors += 1,
                        13 if wrbase => gp += 1,
                        6 if d.contains("lock") => ud += 1,
                        _ => panic!("case {i}: unexpected fault {f:?}\n{d}"),
                    }
                }
                Outcome::Crashed { wait_status } => {
                    panic!("case {i} crashed: {wait_status:#x}")
                }
            }
        }
        assert!(
            divide_errors > 0 && divide_errors < 200,
            "{divide_errors} divide errors"
        );
        assert!(gp < 20, "{gp} #GP");
        assert!(ud > 0 && ud < 100, "{ud} #UD from stray lock prefixes");
    }

    #[test]
    fn some_accesses_straddle_the_region_end_and_fault() {
        let g = gen();
        let cases: Vec<Case> = (0..2000).map(|i| g.case(5, i)).collect();
        let code: Vec<Assembled> = cases.iter().map(Case::assemble).collect();
        let inputs = native_inputs(&cases, &code);
        let out = run_batch(&inputs).expect("sandbox runs");
        let pf = out
            .iter()
            .filter(|o| matches!(o, Outcome::Ran { fault: Some(f), .. } if f.vector == 14))
            .count();
        assert!(pf > 5 && pf < 200, "{pf} page faults");
    }
}
