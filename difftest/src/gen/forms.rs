//! The instruction forms the generator draws from, taken from iced-x86's
//! opcode tables: every legacy-encoded, 64-bit-mode `Code` of a supported
//! mnemonic whose operands the generator knows how to fill.

use crate::HostCaps;
use iced_x86::{Code, EncodingKind, Mnemonic, OpCodeOperandKind as K};
use std::collections::BTreeMap;

/// Mnemonics drawn as one choice each (families such as setcc share one).
pub(super) const FAMILIES: &[&[Mnemonic]] = {
    use Mnemonic::*;
    &[
        &[Mov],
        &[Movzx],
        &[Movsx],
        &[Movsxd],
        &[Lea],
        &[Add],
        &[Adc],
        &[Sub],
        &[Sbb],
        &[Cmp],
        &[Neg],
        &[Inc],
        &[Dec],
        &[And],
        &[Or],
        &[Xor],
        &[Not],
        &[Test],
        &[Shl, Sal],
        &[Shr],
        &[Sar],
        &[Rol],
        &[Ror],
        &[Rcl],
        &[Rcr],
        &[Shld],
        &[Shrd],
        &[Mul],
        &[Imul],
        &[Div],
        &[Idiv],
        &[Bt],
        &[Bts],
        &[Btr],
        &[Btc],
        &[Bsf],
        &[Bsr],
        &[Lzcnt],
        &[Tzcnt],
        &[Popcnt],
        &[Bswap],
        &[Cbw, Cwde, Cdqe, Cwd, Cdq, Cqo],
        &[Seto, Setno, Setb, Setae, Sete, Setne, Setbe, Seta],
        &[Sets, Setns, Setp, Setnp, Setl, Setge, Setle, Setg],
        &[Cmovo, Cmovno, Cmovb, Cmovae, Cmove, Cmovne, Cmovbe, Cmova],
        &[Cmovs, Cmovns, Cmovp, Cmovnp, Cmovl, Cmovge, Cmovle, Cmovg],
        &[Xchg],
        &[Cmpxchg],
        &[Cmpxchg8b, Cmpxchg16b],
        &[Xadd],
        &[Nop, Pause],
        &[Mfence, Lfence, Sfence],
        &[Rdfsbase, Wrfsbase, Rdgsbase, Wrgsbase],
        &[Push],
        &[Pop],
    ]
};

/// The conditional jumps (for forward skips).
pub(super) const JCC: &[Mnemonic] = {
    use Mnemonic::*;
    &[
        Jo, Jno, Jb, Jae, Je, Jne, Jbe, Ja, Js, Jns, Jp, Jnp, Jl, Jge, Jle, Jg,
    ]
};

/// Whether the generator can fill an operand of this kind.
fn fillable(kind: K) -> bool {
    matches!(
        kind,
        K::r8_or_mem
            | K::r16_or_mem
            | K::r32_or_mem
            | K::r64_or_mem
            | K::r8_reg
            | K::r8_opcode
            | K::r16_reg
            | K::r16_rm
            | K::r16_opcode
            | K::r32_reg
            | K::r32_rm
            | K::r32_opcode
            | K::r64_reg
            | K::r64_rm
            | K::r64_opcode
            | K::mem
            | K::mem_offs
            | K::al
            | K::cl
            | K::ax
            | K::eax
            | K::rax
            | K::imm8
            | K::imm8_const_1
            | K::imm8sex16
            | K::imm8sex32
            | K::imm8sex64
            | K::imm16
            | K::imm32
            | K::imm32sex64
            | K::imm64
    )
}

/// Whether the host (and the sandbox) can run mnemonic `m`.
fn host_runs(m: Mnemonic, code: Code, caps: &HostCaps) -> bool {
    use Mnemonic::*;
    match m {
        Lzcnt => caps.lzcnt,
        Tzcnt => caps.bmi1,
        Popcnt => caps.popcnt,
        Cmpxchg16b => caps.cx16,
        Rdfsbase | Wrfsbase | Rdgsbase | Wrgsbase => caps.fsgsbase,
        // The SDM leaves `bswap r16` undefined; AMD zeroes the register.
        Bswap => caps.amd || code != Code::Bswap_r16,
        // AMD reads a dword for `movsxd r16, m` (Intel a word): they differ
        // where the access straddles into an unmapped page.
        Movsxd => caps.amd || code != Code::Movsxd_r16_rm16,
        _ => true,
    }
}

/// Supported forms per mnemonic, in a deterministic order.
#[derive(Debug, Clone)]
pub(super) struct Forms {
    /// Mnemonic → its codes, in iced's `Code` order.
    by_mnemonic: BTreeMap<u16, Vec<Code>>,
    /// Conditional-jump codes: (rel8, rel32) per `JCC` entry.
    pub(super) jcc: Vec<(Code, Code)>,
}

impl Forms {
    /// Collects the forms this host can run.
    pub(super) fn new(caps: &HostCaps) -> Self {
        let wanted: Vec<Mnemonic> = FAMILIES.iter().flat_map(|f| f.iter().copied()).collect();
        let mut by_mnemonic: BTreeMap<u16, Vec<Code>> = BTreeMap::new();
        let mut rel: BTreeMap<(u16, bool), Code> = BTreeMap::new();
        for code in Code::values() {
            let op = code.op_code();
            if op.encoding() != EncodingKind::Legacy || !op.mode64() || !op.is_instruction() {
                continue;
            }
            let m = code.mnemonic();
            if JCC.contains(&m) && op.op_count() == 1 {
                match op.op0_kind() {
                    K::br64_1 => rel.insert((m as u16, false), code),
                    K::br64_4 => rel.insert((m as u16, true), code),
                    _ => None,
                };
                continue;
            }
            let ok = wanted.contains(&m)
                && op.op_kinds().iter().all(|&k| fillable(k))
                && host_runs(m, code, caps);
            if ok {
                by_mnemonic.entry(m as u16).or_default().push(code);
            }
        }
        let jcc = JCC
            .iter()
            .map(|&m| {
                let short = rel[&(m as u16, false)];
                let near = rel[&(m as u16, true)];
                (short, near)
            })
            .collect();
        Self { by_mnemonic, jcc }
    }

    /// The codes of mnemonic `m` (empty when the host lacks it).
    pub(super) fn codes(&self, m: Mnemonic) -> &[Code] {
        self.by_mnemonic.get(&(m as u16)).map_or(&[], Vec::as_slice)
    }

    /// Number of mnemonics with at least one form.
    pub(super) fn mnemonic_count(&self) -> usize {
        self.by_mnemonic.len()
    }
}
