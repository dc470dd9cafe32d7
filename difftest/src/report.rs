//! Comparison of the two sides and the mismatch report.

use super::flags::{self, COMPARED};
use super::fpstate;
use super::gen::{Assembled, Case};
use super::layout::{CODE_BASE, DATA_BASE};
use super::{FaultInfo, Outcome, RegState};
use iced_x86::{Decoder, DecoderOptions, Formatter, IntelFormatter, Mnemonic};
use std::collections::BTreeMap;
use std::fmt::Write as _;

/// What a case's comparison found.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Verdict {
    /// Both sides agree.
    Match,
    /// They differ: one line per differing field.
    Mismatch(Vec<String>),
}

/// Compares `native` and `sim` for `case`; `mask` are RFLAGS bits to ignore.
pub fn compare(native: &Outcome, sim: &Outcome, mask: u64) -> Verdict {
    let (n, s) = match (native, sim) {
        (
            Outcome::Ran {
                regs: nr,
                data: nd,
                fault: nf,
                fp: nfp,
            },
            Outcome::Ran {
                regs: sr,
                data: sd,
                fault: sf,
                fp: sfp,
            },
        ) => ((nr, nd, nf, nfp), (sr, sd, sf, sfp)),
        (Outcome::Crashed { wait_status }, _) => {
            return Verdict::Mismatch(vec![format!(
                "native sandbox crashed (wait status {wait_status:#x})"
            )])
        }
        (_, Outcome::Crashed { .. }) => {
            return Verdict::Mismatch(vec!["simulator did not run".into()])
        }
    };
    let mut diffs = Vec::new();
    if n.2 != s.2 {
        diffs.push(format!(
            "fault: native {} sim {}",
            fault_str(n.2),
            fault_str(s.2)
        ));
        // An instruction the simulator does not implement: the rest of the
        // state differs only as a consequence.
        if let Some(f) = s.2.filter(|f| f.vector == 6) {
            diffs.push(format!("simulator: #UD (unsupported) at {:#x}", f.rip));
            return Verdict::Mismatch(diffs);
        }
    }
    for ((name, a), b) in GPR.iter().zip(n.0.gpr).zip(s.0.gpr) {
        if a != b {
            diffs.push(format!("{name:>6}: native {a:#018x} sim {b:#018x}"));
        }
    }
    let fm = COMPARED & !mask;
    if (n.0.rflags ^ s.0.rflags) & fm != 0 {
        diffs.push(format!(
            "rflags: native {} sim {} (differ: {})",
            flag_str(n.0.rflags & fm),
            flag_str(s.0.rflags & fm),
            flag_str((n.0.rflags ^ s.0.rflags) & fm)
        ));
    }
    if n.0.fs_base != s.0.fs_base {
        diffs.push(format!(
            "fs_base: native {:#x} sim {:#x}",
            n.0.fs_base, s.0.fs_base
        ));
    }
    if n.0.gs_base != s.0.gs_base {
        diffs.push(format!(
            "gs_base: native {:#x} sim {:#x}",
            n.0.gs_base, s.0.gs_base
        ));
    }
    diffs.extend(fpstate::diffs(n.3, s.3));
    diffs.extend(data_diffs(n.1, s.1));
    if diffs.is_empty() {
        Verdict::Match
    } else {
        Verdict::Mismatch(diffs)
    }
}

/// Register names in `RegState::gpr` order.
pub const GPR: [&str; 16] = [
    "rax", "rcx", "rdx", "rbx", "rsp", "rbp", "rsi", "rdi", "r8", "r9", "r10", "r11", "r12", "r13",
    "r14", "r15",
];

fn fault_str(f: &Option<FaultInfo>) -> String {
    match f {
        None => "none".into(),
        Some(f) => format!("vector {} at {:#x}", f.vector, f.rip),
    }
}

/// Names of the set compared flags, e.g. `CF ZF`.
pub fn flag_str(bits: u64) -> String {
    let names = [
        (flags::CF, "CF"),
        (flags::PF, "PF"),
        (flags::AF, "AF"),
        (flags::ZF, "ZF"),
        (flags::SF, "SF"),
        (flags::DF, "DF"),
        (flags::OF, "OF"),
    ];
    let v: Vec<&str> = names
        .iter()
        .filter(|(b, _)| bits & b != 0)
        .map(|(_, n)| *n)
        .collect();
    if v.is_empty() {
        "-".into()
    } else {
        v.join(" ")
    }
}

/// Differing 8-byte words of the data region (at most 8 listed).
fn data_diffs(n: &[u8], s: &[u8]) -> Vec<String> {
    let mut out = Vec::new();
    let words = n
        .chunks(8)
        .zip(s.chunks(8))
        .enumerate()
        .filter(|(_, (a, b))| a != b);
    for (count, (w, (a, b))) in words.enumerate() {
        if count == 8 {
            out.push("  ... more differing data words".into());
            break;
        }
        let addr = DATA_BASE + 8 * w as u64;
        out.push(format!("mem[{addr:#x}]: native {} sim {}", hex(a), hex(b)));
    }
    out
}

fn hex(b: &[u8]) -> String {
    b.iter()
        .map(|x| format!("{x:02x}"))
        .collect::<Vec<_>>()
        .join(" ")
}

/// The case's instructions: address, bytes and Intel-syntax disassembly.
pub fn disassemble(asm: &Assembled) -> String {
    let mut out = String::new();
    let mut d = Decoder::with_ip(64, &asm.bytes, CODE_BASE, DecoderOptions::NO_INVALID_CHECK);
    let mut f = IntelFormatter::new();
    let mut text = String::new();
    while d.can_decode() {
        let ins = d.decode();
        text.clear();
        f.format(&ins, &mut text);
        let start = (ins.ip() - CODE_BASE) as usize;
        let bytes = hex(&asm.bytes[start..start + ins.len()]);
        let _ = writeln!(out, "  {:#x}: {:<32} {}", ins.ip(), bytes, text);
    }
    let _ = writeln!(out, "  {:#x}: (end)", CODE_BASE + asm.bytes.len() as u64);
    out
}

/// The mnemonics of the assembled code, in order.
pub fn mnemonics(asm: &Assembled) -> Vec<Mnemonic> {
    let mut d = Decoder::with_ip(64, &asm.bytes, CODE_BASE, DecoderOptions::NO_INVALID_CHECK);
    let mut v = Vec::new();
    while d.can_decode() {
        v.push(d.decode().mnemonic());
    }
    v
}

/// The full report of one mismatching case.
pub fn describe(
    case: &Case,
    asm: &Assembled,
    native: &Outcome,
    sim: &Outcome,
    diffs: &[String],
) -> String {
    let mut out = String::new();
    let _ = writeln!(out, "case {}: {} instructions", case.index, asm.insns.len());
    out.push_str(&disassemble(asm));
    let _ = writeln!(out, "  input:");
    out.push_str(&regs_str(&case.init, None));
    // The x87/SSE state is printed where it differs or a vector unit ran.
    let vector = case
        .units
        .iter()
        .any(|u| crate::gen::groups::is_vector(u.main))
        || diffs.iter().any(|d| {
            ["xmm", "mxcsr", "fcw", "fsw", "ftw", "st"]
                .iter()
                .any(|p| d.starts_with(p))
        });
    if vector {
        out.push_str(&fpstate::dump(&fpstate::FpView::from_fxsave(&case.fx)));
    }
    let regs_of = |o: &Outcome| match o {
        Outcome::Ran { regs, .. } => Some(*regs),
        Outcome::Crashed { .. } => None,
    };
    let sides = [
        ("native", native, regs_of(sim)),
        ("sim", sim, regs_of(native)),
    ];
    for (name, o, other) in sides {
        match o {
            Outcome::Ran {
                regs, fault, fp, ..
            } => {
                let _ = writeln!(
                    out,
                    "  {name} output (fault: {}; * marks a difference):",
                    fault_str(fault)
                );
                out.push_str(&regs_str(regs, other.as_ref()));
                if vector {
                    out.push_str(&fpstate::dump(fp));
                }
            }
            Outcome::Crashed { wait_status } => {
                let _ = writeln!(out, "  {name}: crashed ({wait_status:#x})");
            }
        }
    }
    let _ = writeln!(
        out,
        "  differences (masked flags: {}):",
        flag_str(case.undef_flags)
    );
    for d in diffs {
        let _ = writeln!(out, "  * {d}");
    }
    out
}

/// A register dump; with `other`, fields that differ from it carry a `*`.
fn regs_str(r: &RegState, other: Option<&RegState>) -> String {
    let mark = |differs: bool| if differs && other.is_some() { '*' } else { ' ' };
    let o = other.copied().unwrap_or(*r);
    let mut out = String::new();
    for row in 0..4 {
        out.push_str("   ");
        let regs = GPR.iter().zip(r.gpr).zip(o.gpr).skip(row * 4).take(4);
        for ((name, v), w) in regs {
            let _ = write!(out, " {name:>3}={v:016x}{}", mark(v != w));
        }
        out.push('\n');
    }
    let _ = writeln!(
        out,
        "    rflags={:#x}{} ({}) fs_base={:#x}{} gs_base={:#x}{}",
        r.rflags,
        mark((r.rflags ^ o.rflags) & COMPARED != 0),
        flag_str(r.rflags & COMPARED),
        r.fs_base,
        mark(r.fs_base != o.fs_base),
        r.gs_base,
        mark(r.gs_base != o.gs_base)
    );
    out
}

/// Totals of a run.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Summary {
    /// Cases run.
    pub cases: u64,
    /// Cases whose two sides differed.
    pub mismatches: u64,
    /// Distinct mnemonics in the generated code.
    pub mnemonics: usize,
    /// Mismatches attributed per mnemonic (name → count), sorted by name.
    pub per_mnemonic: BTreeMap<String, u64>,
    /// Cases that ended in a fault on both sides (compared too).
    pub faulting_cases: u64,
    /// Cases on which the native sandbox's child died (harness bugs).
    pub native_crashes: u64,
}

impl Summary {
    /// The last line of `smpsim selftest isa`.
    pub fn last_line(&self) -> String {
        format!(
            "isa-difftest: {} cases, {} mismatches, {} mnemonics",
            self.cases, self.mismatches, self.mnemonics
        )
    }
}
