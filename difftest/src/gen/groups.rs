//! The instruction groups selectable with `selftest isa --isa LIST`, and
//! the x87/SSE/BMI forms of each, taken from iced-x86's opcode tables.
//!
//! `int` is the integer ISA (the generator's own form table) with the constructs
//! (strings, jumps, calls, `enter`); the other groups are lists of
//! mnemonics whose forms are every 64-bit-mode `Code` of that mnemonic that
//! is legacy-encoded (VEX for the BMI group), whose operands the generator
//! fills, that is not one of iced's undocumented x87 alias encodings, and
//! whose CPUID features the host has. A form with an MMX register operand
//! belongs to the `mmx` group, and only there (`paddb mm, mm/m64` is
//! `mmx`, `paddb xmm, xmm/m128` is `sse-int`).

use crate::HostCaps;
use iced_x86::{Code, CpuidFeature as F, EncodingKind, Mnemonic, OpCodeOperandKind as K};
use std::collections::BTreeMap;

/// A selectable group of instructions.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Group {
    /// The integer ISA and the control-flow constructs (the default).
    Int,
    /// SSE/SSE2 moves, `ldmxcsr`/`stmxcsr`.
    SseMov,
    /// SSE/SSE2/SSE3 floating point: arithmetic, sqrt, min/max, compares,
    /// logic, shuffles, unpacks, conversions.
    SseFp,
    /// SSE2 and SSSE3 integer.
    SseInt,
    /// SSE4.1 (floating point and integer) and SSE4.2.
    Sse4,
    /// x87, FXSAVE/FXRSTOR, `xgetbv`.
    X87,
    /// BMI1, BMI2, MOVBE.
    Bmi,
    /// MMX, and the SSE, SSE2 and SSSE3 forms on MMX registers (the
    /// conversions between MMX and XMM registers included).
    Mmx,
}

/// Every group, in `--isa` order.
pub const ALL: [Group; 8] = [
    Group::Int,
    Group::SseMov,
    Group::SseFp,
    Group::SseInt,
    Group::Sse4,
    Group::X87,
    Group::Bmi,
    Group::Mmx,
];

impl Group {
    /// The group's `--isa` name.
    pub fn name(self) -> &'static str {
        match self {
            Self::Int => "int",
            Self::SseMov => "sse-mov",
            Self::SseFp => "sse-fp",
            Self::SseInt => "sse-int",
            Self::Sse4 => "sse4",
            Self::X87 => "x87",
            Self::Bmi => "bmi",
            Self::Mmx => "mmx",
        }
    }

    /// Parses a comma list of group names (`all` selects every group).
    pub fn parse_list(list: &str) -> Result<Vec<Group>, String> {
        let mut v = Vec::new();
        for name in list.split(',').map(str::trim).filter(|s| !s.is_empty()) {
            if name == "all" {
                v.extend(ALL);
                continue;
            }
            match ALL.iter().find(|g| g.name() == name) {
                Some(g) => v.push(*g),
                None => {
                    let names: Vec<&str> = ALL.iter().map(|g| g.name()).collect();
                    return Err(format!(
                        "unknown instruction group `{name}` in --isa (allowed: {}, all)",
                        names.join(", ")
                    ));
                }
            }
        }
        v.sort();
        v.dedup();
        if v.is_empty() {
            return Err("--isa names no instruction group".into());
        }
        Ok(v)
    }

    /// The mnemonics of a vector group (empty for `int`, whose forms live
    /// in the generator's integer form table).
    pub fn mnemonics(self) -> &'static [Mnemonic] {
        match self {
            Self::Int => &[],
            Self::SseMov => SSE_MOV,
            Self::SseFp => SSE_FP,
            Self::SseInt => SSE_INT,
            Self::Sse4 => SSE4,
            Self::X87 => X87,
            Self::Bmi => BMI,
            Self::Mmx => MMX,
        }
    }
}

const SSE_MOV: &[Mnemonic] = {
    use Mnemonic::*;
    &[
        Movaps, Movapd, Movups, Movupd, Movdqa, Movdqu, Movss, Movsd, Movd, Movq, Movhps, Movhpd,
        Movlps, Movlpd, Movhlps, Movlhps, Movntps, Movntpd, Movntdq, Movntdqa, Lddqu, Ldmxcsr,
        Stmxcsr,
    ]
};

/// rcpps/rcpss/rsqrtps/rsqrtss are listed but generated only where the
/// host's approximations are the simulator's ([`approx_exact_only`]).
const SSE_FP: &[Mnemonic] = {
    use Mnemonic::*;
    &[
        Addps, Addpd, Addss, Addsd, Subps, Subpd, Subss, Subsd, Mulps, Mulpd, Mulss, Mulsd, Divps,
        Divpd, Divss, Divsd, Sqrtps, Sqrtpd, Sqrtss, Sqrtsd, Minps, Minpd, Minss, Minsd, Maxps,
        Maxpd, Maxss, Maxsd, Cmpps, Cmppd, Cmpss, Cmpsd, Comiss, Comisd, Ucomiss, Ucomisd, Andps,
        Andpd, Andnps, Andnpd, Orps, Orpd, Xorps, Xorpd, Shufps, Shufpd, Unpcklps, Unpckhps,
        Unpcklpd, Unpckhpd, Movmskps, Movmskpd, Cvtps2pd, Cvtpd2ps, Cvtss2sd, Cvtsd2ss, Cvtdq2ps,
        Cvtps2dq, Cvttps2dq, Cvtdq2pd, Cvtpd2dq, Cvttpd2dq, Cvtsi2ss, Cvtsi2sd, Cvtss2si, Cvtsd2si,
        Cvttss2si, Cvttsd2si, Rcpps, Rcpss, Rsqrtps, Rsqrtss, Addsubps, Addsubpd, Haddps, Haddpd,
        Hsubps, Hsubpd, Movshdup, Movsldup, Movddup,
    ]
};

const SSE_INT: &[Mnemonic] = {
    use Mnemonic::*;
    &[
        Paddb, Paddw, Paddd, Paddq, Paddsb, Paddsw, Paddusb, Paddusw, Psubb, Psubw, Psubd, Psubq,
        Psubsb, Psubsw, Psubusb, Psubusw, Pmullw, Pmulhw, Pmulhuw, Pmuludq, Pmaddwd, Psadbw, Pavgb,
        Pavgw, Pminub, Pmaxub, Pminsw, Pmaxsw, Pand, Pandn, Por, Pxor, Pcmpeqb, Pcmpeqw, Pcmpeqd,
        Pcmpgtb, Pcmpgtw, Pcmpgtd, Psllw, Pslld, Psllq, Psrlw, Psrld, Psrlq, Psraw, Psrad, Pslldq,
        Psrldq, Packsswb, Packssdw, Packuswb, Punpcklbw, Punpcklwd, Punpckldq, Punpcklqdq,
        Punpckhbw, Punpckhwd, Punpckhdq, Punpckhqdq, Pshufd, Pshufhw, Pshuflw, Pextrw, Pinsrw,
        Pmovmskb, Pshufb, Phaddw, Phaddd, Phaddsw, Phsubw, Phsubd, Phsubsw, Pmaddubsw, Pmulhrsw,
        Psignb, Psignw, Psignd, Pabsb, Pabsw, Pabsd, Palignr,
    ]
};

const SSE4: &[Mnemonic] = {
    use Mnemonic::*;
    &[
        Roundps, Roundpd, Roundss, Roundsd, Blendps, Blendpd, Blendvps, Blendvpd, Dpps, Dppd,
        Insertps, Extractps, Pmulld, Pmuldq, Pminsb, Pminsd, Pminuw, Pminud, Pmaxsb, Pmaxsd,
        Pmaxuw, Pmaxud, Pcmpeqq, Packusdw, Pmovsxbw, Pmovsxbd, Pmovsxbq, Pmovsxwd, Pmovsxwq,
        Pmovsxdq, Pmovzxbw, Pmovzxbd, Pmovzxbq, Pmovzxwd, Pmovzxwq, Pmovzxdq, Ptest, Pblendw,
        Pblendvb, Mpsadbw, Phminposuw, Pextrb, Pextrd, Pextrq, Pinsrb, Pinsrd, Pinsrq, Pcmpgtq,
        Pcmpestri, Pcmpestrm, Pcmpistri, Pcmpistrm, Crc32,
    ]
};

const X87: &[Mnemonic] = {
    use Mnemonic::*;
    &[
        Fld, Fst, Fstp, Fild, Fist, Fistp, Fisttp, Fadd, Faddp, Fiadd, Fsub, Fsubp, Fsubr, Fsubrp,
        Fisub, Fisubr, Fmul, Fmulp, Fimul, Fdiv, Fdivp, Fdivr, Fdivrp, Fidiv, Fidivr, Fchs, Fabs,
        Fsqrt, Frndint, Fscale, Fxtract, Fprem, Fprem1, Fcom, Fcomp, Fcompp, Fucom, Fucomp,
        Fucompp, Fcomi, Fcomip, Fucomi, Fucomip, Ficom, Ficomp, Ftst, Fxam, Fxch, Fcmovb, Fcmove,
        Fcmovbe, Fcmovu, Fcmovnb, Fcmovne, Fcmovnbe, Fcmovnu, Fnstsw, Fnstcw, Fldcw, Fld1, Fldl2t,
        Fldl2e, Fldpi, Fldlg2, Fldln2, Fldz, Fsin, Fcos, Fsincos, Fptan, Fpatan, F2xm1, Fyl2x,
        Fyl2xp1, Fincstp, Fdecstp, Ffree, Fnop, Fninit, Fnclex, Fxsave, Fxsave64, Fxrstor,
        Fxrstor64, Ldmxcsr, Stmxcsr, Xgetbv,
    ]
};

const BMI: &[Mnemonic] = {
    use Mnemonic::*;
    &[
        Andn, Bextr, Blsi, Blsmsk, Blsr, Bzhi, Mulx, Pdep, Pext, Rorx, Sarx, Shlx, Shrx, Tzcnt,
        Movbe,
    ]
};

/// maskmovq's DS:[RDI] is set up by the generator (maskmovdqu is not in
/// `sse-int`).
const MMX: &[Mnemonic] = {
    use Mnemonic::*;
    &[
        Movd, Movq, Paddb, Paddw, Paddd, Paddsb, Paddsw, Paddusb, Paddusw, Psubb, Psubw, Psubd,
        Psubsb, Psubsw, Psubusb, Psubusw, Pmullw, Pmulhw, Pmaddwd, Pcmpeqb, Pcmpeqw, Pcmpeqd,
        Pcmpgtb, Pcmpgtw, Pcmpgtd, Pand, Pandn, Por, Pxor, Psllw, Pslld, Psllq, Psrlw, Psrld,
        Psrlq, Psraw, Psrad, Packsswb, Packssdw, Packuswb, Punpcklbw, Punpcklwd, Punpckldq,
        Punpckhbw, Punpckhwd, Punpckhdq, Emms, Pavgb, Pavgw, Pextrw, Pinsrw, Pmaxsw, Pmaxub,
        Pminsw, Pminub, Pmovmskb, Pmulhuw, Psadbw, Pshufw, Movntq, Paddq, Psubq, Pmuludq, Movdq2q,
        Movq2dq, Cvtpi2ps, Cvtps2pi, Cvttps2pi, Cvtpi2pd, Cvtpd2pi, Cvttpd2pi, Pshufb, Phaddw,
        Phaddd, Phaddsw, Phsubw, Phsubd, Phsubsw, Pmaddubsw, Pmulhrsw, Palignr, Pabsb, Pabsw,
        Pabsd, Psignb, Psignw, Psignd, Maskmovq,
    ]
};

/// Whether `code` is a form of the `mmx` group: `emms`, or one with an MMX
/// register operand.
fn is_mmx_form(code: Code) -> bool {
    code == Code::Emms
        || code
            .op_code()
            .op_kinds()
            .iter()
            .any(|k| matches!(k, K::mm_reg | K::mm_rm | K::mm_or_mem))
}

/// Whether `m` belongs to a vector group (x87, SSE, BMI).
pub fn is_vector(m: Mnemonic) -> bool {
    ALL[1..].iter().any(|g| g.mnemonics().contains(&m))
}

/// Whether `code` (of mnemonic `m`) requires its memory operand to be
/// 16-byte aligned (#GP otherwise): legacy SSE 128-bit operands except the
/// unaligned moves, `lddqu` and the SSE4.2 string compares; FXSAVE/FXRSTOR.
pub(super) fn needs_align16(code: Code, m: Mnemonic) -> bool {
    use Mnemonic::*;
    let size = code.op_code().memory_size().size();
    let unaligned = matches!(
        m,
        Movups | Movupd | Movdqu | Lddqu | Pcmpestri | Pcmpestrm | Pcmpistri | Pcmpistrm
    );
    let sse16 = size == 16 && code.op_code().encoding() == EncodingKind::Legacy;
    let fx = matches!(m, Fxsave | Fxsave64 | Fxrstor | Fxrstor64);
    (sse16 && !unaligned && m != Cmpxchg16b) || fx
}

/// Whether the generator fills an operand of this kind in a vector form.
fn fillable(kind: K) -> bool {
    matches!(
        kind,
        K::xmm_reg
            | K::xmm_rm
            | K::xmm_or_mem
            | K::mm_reg
            | K::mm_rm
            | K::mm_or_mem
            | K::seg_rDI
            | K::st0
            | K::sti_opcode
            | K::r32_vvvv
            | K::r64_vvvv
            | K::r8_or_mem
            | K::r16_or_mem
            | K::r32_or_mem
            | K::r64_or_mem
            | K::r16_reg
            | K::r32_reg
            | K::r32_rm
            | K::r64_reg
            | K::r64_rm
            | K::mem
            | K::ax
            | K::imm8
    )
}

/// Whether the host has CPUID feature `f` (unknown features: no).
fn host_has(f: F, caps: &HostCaps) -> bool {
    match f {
        F::X64 | F::FPU | F::FPU287 | F::FPU387 | F::CMOV | F::SSE | F::SSE2 | F::FXSR => true,
        F::MMX => true, // every x86-64 processor
        F::SSE3 => caps.sse3,
        F::SSSE3 => caps.ssse3,
        F::SSE4_1 => caps.sse41,
        F::SSE4_2 => caps.sse42,
        F::BMI1 => caps.bmi1,
        F::BMI2 => caps.bmi2,
        F::MOVBE => caps.movbe,
        F::XSAVE => caps.xsave,
        _ => false,
    }
}

/// Vector instructions whose results the simulator models after Intel
/// where AMD's differ, not generated on an AMD host: AMD's dot products
/// choose a different NaN, and AMD's FXSAVE leaves FIP/FDP/FOP out unless
/// an exception is pending and stores an MXCSR_MASK of 0x2ffff (the
/// simulated CPU's is 0xffff).
fn modelled_after_intel(m: Mnemonic) -> bool {
    use Mnemonic::*;
    matches!(m, Dpps | Dppd | Fxsave | Fxsave64)
}

/// Instructions whose results are implementation-specific approximations
/// (the architecture bounds only their error): the simulator computes AMD
/// family 1Ah's (`smpsim_cores::simd::approx`), and they are generated
/// only on such a host ([`HostCaps::approx_exact`]), where they compare
/// bit for bit.
fn approx_exact_only(m: Mnemonic) -> bool {
    use Mnemonic::*;
    matches!(m, Rcpps | Rcpss | Rsqrtps | Rsqrtss)
}

/// iced's undocumented x87 alias encodings (`Fxch_st0_sti_DDC8`, ...).
fn is_alias(code: Code) -> bool {
    let name = format!("{code:?}");
    let tail = name.rsplit('_').next().unwrap_or("");
    tail.len() == 4
        && tail
            .bytes()
            .all(|b| b.is_ascii_hexdigit() && !b.is_ascii_lowercase())
}

/// The forms of every vector group on this host: (group, mnemonic) →
/// codes. A code goes to every group listing its mnemonic (ldmxcsr is
/// `sse-mov` and `x87`), the MMX forms to `mmx` only and the others never
/// there.
pub(super) fn vector_forms(caps: &HostCaps) -> BTreeMap<(Group, u16), Vec<Code>> {
    let mut wanted: BTreeMap<(bool, u16), Vec<Group>> = BTreeMap::new();
    for g in ALL {
        for &m in g.mnemonics() {
            wanted
                .entry((g == Group::Mmx, m as u16))
                .or_default()
                .push(g);
        }
    }
    let mut out: BTreeMap<(Group, u16), Vec<Code>> = BTreeMap::new();
    for code in Code::values() {
        let op = code.op_code();
        let m = code.mnemonic();
        let Some(gs) = wanted.get(&(is_mmx_form(code), m as u16)) else {
            continue;
        };
        // Every group of the mnemonic shares the encoding rules of its
        // first (BMI's VEX forms).
        let g = gs[0];
        let enc_ok = match op.encoding() {
            EncodingKind::Legacy => true,
            EncodingKind::VEX => g == Group::Bmi,
            _ => false,
        };
        let features = code.cpuid_features();
        // The string `movsd`/`cmpsd` share a mnemonic with the SSE2 forms.
        let integer_only = features
            .iter()
            .all(|f| matches!(f, F::INTEL8086 | F::INTEL386 | F::X64));
        let ok = enc_ok
            && op.mode64()
            && op.is_instruction()
            && !is_alias(code)
            && !(integer_only && g != Group::Bmi)
            && op.op_kinds().iter().all(|&k| fillable(k))
            && features.iter().all(|&f| host_has(f, caps))
            && !(caps.amd && modelled_after_intel(m))
            && (caps.approx_exact || !approx_exact_only(m));
        if ok {
            for &g in gs {
                out.entry((g, m as u16)).or_default().push(code);
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_listed_mnemonic_has_a_form_on_this_host() {
        let caps = HostCaps::detect();
        let f = vector_forms(&caps);
        for g in &ALL[1..] {
            for m in g.mnemonics() {
                let needs_more = matches!(g, Group::Sse4 | Group::Bmi)
                    || *m == Mnemonic::Lddqu
                    || (caps.amd && modelled_after_intel(*m))
                    || (!caps.approx_exact && approx_exact_only(*m));
                if !needs_more {
                    assert!(f.contains_key(&(*g, *m as u16)), "{m:?} has no form");
                }
            }
        }
        let movsd = &f[&(Group::SseMov, Mnemonic::Movsd as u16)];
        assert!(!movsd.contains(&Code::Movsd_m32_m32));
        let paddb = &f[&(Group::SseInt, Mnemonic::Paddb as u16)];
        assert!(paddb.contains(&Code::Paddb_xmm_xmmm128) && !paddb.contains(&Code::Paddb_mm_mmm64));
        let paddb = &f[&(Group::Mmx, Mnemonic::Paddb as u16)];
        assert_eq!(paddb, &[Code::Paddb_mm_mmm64]);
        assert!(is_alias(Code::Fxch_st0_sti_DDC8) && !is_alias(Code::Fxch_st0_sti));
    }

    #[test]
    fn lists_parse() {
        assert_eq!(
            Group::parse_list("x87,int").expect("parses"),
            vec![Group::Int, Group::X87]
        );
        assert_eq!(Group::parse_list("all").expect("parses").len(), 8);
        assert!(Group::parse_list("sse5").is_err());
    }
}
