//! smpsim-difftest: differential testing of instruction semantics against
//! the host CPU (`smpsim selftest isa`).
//!
//! Random sequences of instructions run twice from the same registers,
//! flags, x87/SSE state and memory: natively in a forked sandbox on the host
//! (x86-64 Linux), and in the simulator's functional core. The sixteen GPRs,
//! the six arithmetic flags plus DF, the FS/GS bases, the x87/SSE state
//! ([`fpstate`]: XMM0–15, MXCSR, FCW, FSW, abridged tags, non-empty ST
//! registers) and the whole data region must agree; so must faults (#DE
//! from `div`/`idiv`, #GP from misaligned SSE operands, #XM from unmasked
//! SSE exceptions are generated on purpose: vector and RIP are compared, and
//! the state at the fault).
//!
//! The instructions come from selectable groups ([`gen::Group`], `--isa`):
//! the integer ISA of issue 4 item 3 (`int`, the default) and the x87, SSE
//! to SSE4.2 and BMI groups of issue 14. Each case starts from a random
//! x87/SSE state ([`gen`]'s `fpinit`): natively it is loaded with
//! `fxrstor64` and saved with `fxsave64` (or read from the signal frame at a
//! fault), in the simulator it is `ArchState.fpu`, both through the same
//! 64-bit FXSAVE image.
//!
//! It is a crate of its own, not a module of `smpsim-cores`, so that the
//! library every crate depends on carries only simulation code: the
//! generator, the `unsafe` sandbox (fork, fixed mmaps, signal handlers) and
//! `libc` are linked only into the `smpsim` binary and this crate's tests.
//!
//! # Owns
//! The generated cases ([`gen::Case`], [`gen::Assembled`]), the native
//! sandbox's child process and its fixed mappings ([`native`]; the shared
//! batch buffer lives in a [`native::BatchBuffer`] owned by one [`run`]),
//! and the comparison results ([`Summary`], [`Verdict`]). Each simulated
//! case runs in a [`smpsim_cores::FuncCore`] and a
//! [`smpsim_cores::FlatMemory`] created for that case alone; the core's
//! CPUID model has the host's vendor ([`sim::host_model`]), so where the
//! architecture lets vendors differ (an `fstp m80` split across a
//! faulting page) the simulator behaves as the host.
//!
//! # Depends on
//! `smpsim-cores` only through its public functional-model API
//! ([`smpsim_cores::FuncCore::run`], [`smpsim_cores::ArchState`],
//! [`smpsim_cores::FlatMemory`], [`smpsim_cores::GuestMemory`],
//! [`smpsim_cores::Exit`], [`smpsim_cores::CpuidModel`]); iced-x86's
//! encoder (generation) and formatter (reports); `libc` for the sandbox.
//! Runs only on x86-64 Linux (it executes the generated code natively).
//!
//! # Invariants
//! - Deterministic: case `i` of seed `s` is generated from its own random
//!   stream (see *Determinism* below); no global mutable state.
//! - `unsafe` code is confined to [`native`] (the crate denies it
//!   elsewhere); each block carries a `// SAFETY:` note. After `fork` the
//!   child never allocates, locks or panics.
//! - The simulator side never reuses a core or a translation between cases.
//!
//! # Lifecycle
//! Build a [`Config`] ([`Config::new`]: host features detected) → [`run`]:
//! per batch, generate and assemble the cases, start the native batch in a
//! forked child, simulate the same batch meanwhile, collect and compare,
//! re-run the prefixes of mismatching cases to name the first differing
//! unit → the [`Summary`] (the caller prints [`Summary::last_line`]).
//!
//! # Errors
//! Mismatches are results (counted in the [`Summary`], printed to the
//! report writer), not errors. [`DifftestError`] says why a run could not be
//! carried out: the sandbox failed ([`native::NativeError`]: a system call,
//! or the child could not map its fixed pages), or writing the report
//! failed. A child that dies on a case (a harness bug) is an
//! [`Outcome::Crashed`] for that case, and the run goes on.
//!
//! # Parts
//! - [`layout`]: the fixed addresses and reserved registers.
//! - [`gen`]: the generator (iced-x86 `Encoder`), seeded per case.
//! - [`native`]: the sandbox (fork, fixed mmaps, assembly prologue/epilogue,
//!   signal handler).
//! - [`sim`]: the same case in `FlatMemory` through the functional core.
//! - [`flags`]: which flags the SDM leaves undefined, masked on non-AMD hosts.
//! - [`report`]: comparison and mismatch printing.
//!
//! # Undefined flags
//! The simulator models AMD's results for SDM-undefined flags. On an
//! AuthenticAMD host everything is compared. Elsewhere the flags an
//! instruction leaves undefined are masked (and the generator redefines the
//! flags before any instruction that reads a possibly undefined one, and
//! avoids the few forms whose *results* are undefined), with a note printed.
//!
//! # Coverage and its limits
//! Every legacy 64-bit form iced-x86 knows for the mnemonics of
//! [`gen`]'s table (all operand sizes, high-byte registers, `lock` on
//! lockable memory forms, every addressing form including RIP-relative,
//! absolute, `moffs`, `[rsp+d]` and fs:/gs: overrides), string instructions
//! with rep/repe/repne in both directions (DF is set in a fifth of the cases),
//! forward `jcc`/`jmp` (direct and indirect), `call`/`ret [n]` (direct,
//! register, memory), `enter`/`leave` with nesting levels 0–3, stray `lock`
//! prefixes (#UD), accesses straddling a page boundary or the end of the data
//! region (#PF, nothing changed), non-canonical `wrfsbase` (#GP), and
//! self-modifying code (a store into a later `mov`'s immediate in the same
//! block, see [`gen::Item::Patch`]).
//! Not generated: 16-bit branches, `ret`, `enter` and `leave` (they truncate
//! RIP or RSP), the address-size prefix, instructions whose result differs
//! by design (`cpuid`, `rdtsc`, `rdtscp`), and, where the host lacks them,
//! `lzcnt`/`tzcnt`/`popcnt`/`cmpxchg16b` and the FS/GS base instructions
//! (those need Linux's `HWCAP2_FSGSBASE`; without it FS/GS bases are not
//! compared and fs:/gs: operands are not generated, since FS then holds the
//! host's thread pointer).
//!
//! The vector groups ([`gen::groups`]) cover every legacy 64-bit form iced
//! knows of their mnemonics (VEX for BMI), with register operands over all
//! sixteen XMM registers and ST(0)–ST(7), memory operands in the data region
//! (16-byte aligned where the form requires it, misaligned on purpose in 3%
//! of those: #GP), a valid MXCSR/FCW stored before most `ldmxcsr`/`fldcw`, an
//! `fxsave` before most `fxrstor`, and ECX = 0 before `xgetbv` (whose result
//! is then cut to the x87 and SSE bits: the host enables AVX state the
//! simulator does not have). Not generated: MMX forms, `maskmovdqu` (it
//! stores at `[rdi]`), the x87 alias encodings, and forms the host lacks.
//! A simulator #UD where the host ran the instruction is reported as
//! `simulator: #UD (unsupported)`, without the state differences that follow
//! from it.
//!
//! # Determinism
//! Case `i` of seed `s` is generated from its own random stream, so output is
//! identical for a seed on the same kind of host (the host vendor and
//! whether user-mode `wrfsbase` is enabled change what is generated).

#![warn(missing_docs)]
#![warn(missing_debug_implementations)]
#![deny(unsafe_code)] // allowed only in `native`, the sandbox that runs code natively

#[cfg(test)]
#[allow(unsafe_code)] // host rcpss/rsqrtss intrinsics, test-only
mod approx_host;
pub mod flags;
pub mod fpstate;
pub mod gen;
pub mod layout;
#[allow(unsafe_code)]
pub mod native;
pub mod report;
mod rng;
pub mod sim;

pub use report::{Summary, Verdict};

/// Registers of one hardware context as the tester compares them.
///
/// Laid out for the native sandbox's assembly (offsets are checked there).
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct RegState {
    /// rax rcx rdx rbx rsp rbp rsi rdi r8..r15.
    pub gpr: [u64; 16],
    /// RFLAGS.
    pub rflags: u64,
    /// FS base.
    pub fs_base: u64,
    /// GS base.
    pub gs_base: u64,
}

/// A fault that ended a sequence early.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct FaultInfo {
    /// Exception vector (0 #DE, 6 #UD, 13 #GP, 14 #PF, ...).
    pub vector: u8,
    /// Address of the faulting instruction.
    pub rip: u64,
}

/// What one side (native or simulated) produced for a case.
// `Crashed` is rare: its smaller size does not matter.
#[allow(clippy::large_enum_variant)]
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Outcome {
    /// The sequence ran to its end or to a fault.
    Ran {
        /// Registers after the sequence, or at the fault.
        regs: RegState,
        /// The data region afterwards.
        data: Vec<u8>,
        /// The fault, if the sequence did not reach its end.
        fault: Option<FaultInfo>,
        /// The x87/SSE state afterwards, or at the fault.
        fp: Box<fpstate::FpView>,
    },
    /// The native sandbox's child died on this case (a harness bug).
    Crashed {
        /// `waitpid` status of the dead child.
        wait_status: i32,
    },
}

/// The host features the generator adapts to.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct HostCaps {
    /// CPUID vendor is AuthenticAMD: SDM-undefined flags are compared.
    pub amd: bool,
    /// User-mode rdfsbase/wrfsbase/rdgsbase/wrgsbase work.
    pub fsgsbase: bool,
    /// `lzcnt` exists (otherwise its encoding means `bsr`).
    pub lzcnt: bool,
    /// `tzcnt` (BMI1) exists (otherwise its encoding means `bsf`).
    pub bmi1: bool,
    /// `popcnt` exists.
    pub popcnt: bool,
    /// `cmpxchg16b` exists.
    pub cx16: bool,
    /// SSE3.
    pub sse3: bool,
    /// SSSE3.
    pub ssse3: bool,
    /// SSE4.1.
    pub sse41: bool,
    /// SSE4.2.
    pub sse42: bool,
    /// BMI2.
    pub bmi2: bool,
    /// MOVBE.
    pub movbe: bool,
    /// `xgetbv` works (XSAVE enabled by the OS).
    pub xsave: bool,
    /// rcpps/rcpss/rsqrtps/rsqrtss give the simulator's approximations
    /// (`smpsim_cores::simd::approx`: an AMD family 1Ah host); elsewhere
    /// they are not generated.
    pub approx_exact: bool,
}

impl HostCaps {
    /// What this host supports.
    pub fn detect() -> Self {
        Self {
            amd: host_vendor() == *b"AuthenticAMD",
            fsgsbase: native::fsgsbase_usable(),
            lzcnt: std::arch::is_x86_feature_detected!("lzcnt"),
            bmi1: std::arch::is_x86_feature_detected!("bmi1"),
            popcnt: std::arch::is_x86_feature_detected!("popcnt"),
            cx16: std::arch::is_x86_feature_detected!("cmpxchg16b"),
            sse3: std::arch::is_x86_feature_detected!("sse3"),
            ssse3: std::arch::is_x86_feature_detected!("ssse3"),
            sse41: std::arch::is_x86_feature_detected!("sse4.1"),
            sse42: std::arch::is_x86_feature_detected!("sse4.2"),
            bmi2: std::arch::is_x86_feature_detected!("bmi2"),
            movbe: std::arch::is_x86_feature_detected!("movbe"),
            xsave: std::arch::is_x86_feature_detected!("xsave"),
            approx_exact: host_vendor() == *b"AuthenticAMD" && host_family() == 0x1a,
        }
    }
}

/// The host's 12-byte CPUID vendor string.
pub fn host_vendor() -> [u8; 12] {
    // CPUID leaf 0 exists on every x86-64 processor.
    let r = std::arch::x86_64::__cpuid(0);
    let mut v = [0u8; 12];
    v[0..4].copy_from_slice(&r.ebx.to_le_bytes());
    v[4..8].copy_from_slice(&r.edx.to_le_bytes());
    v[8..12].copy_from_slice(&r.ecx.to_le_bytes());
    v
}

/// The host's processor family (CPUID leaf 1, extended family included).
pub fn host_family() -> u32 {
    let eax = std::arch::x86_64::__cpuid(1).eax;
    let family = (eax >> 8) & 0xf;
    if family == 0xf {
        family + ((eax >> 20) & 0xff)
    } else {
        family
    }
}

/// How a run is set up.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Config {
    /// Number of cases.
    pub cases: u64,
    /// Seed of the generator.
    pub seed: u64,
    /// Cases per native batch (one forked child each).
    pub batch: usize,
    /// Mismatches printed in full (the rest are only counted).
    pub show: usize,
    /// Host features; [`HostCaps::detect`] unless a test pretends otherwise.
    pub caps: HostCaps,
    /// Generate accesses straddling the end of the data region (#PF).
    pub region_end: bool,
    /// The instruction groups generated (default: `int`).
    pub groups: Vec<gen::Group>,
}

impl Config {
    /// `cases` cases of seed `seed` on this host.
    pub fn new(cases: u64, seed: u64) -> Self {
        Self {
            cases,
            seed,
            batch: 1024,
            show: 5,
            caps: HostCaps::detect(),
            region_end: true,
            groups: vec![gen::Group::Int],
        }
    }
}

/// Why a run could not be carried out (mismatches are results, not errors).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DifftestError {
    /// The native sandbox failed.
    Native(native::NativeError),
    /// Writing the report failed.
    Output(String),
}

impl std::fmt::Display for DifftestError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Native(e) => write!(f, "{e}"),
            Self::Output(e) => write!(f, "writing the difftest report: {e}"),
        }
    }
}

impl std::error::Error for DifftestError {}

impl From<native::NativeError> for DifftestError {
    fn from(e: native::NativeError) -> Self {
        Self::Native(e)
    }
}

/// A generated case with its code.
struct Prepared {
    case: gen::Case,
    asm: gen::Assembled,
}

/// Runs `cfg.cases` cases, writing mismatch reports to `out` (the caller
/// prints [`Summary::last_line`]). Native batches run in a forked child
/// while this thread simulates the same batch.
///
/// ```
/// use smpsim_difftest::{run, Config};
/// let mut cfg = Config::new(200, 7);
/// cfg.region_end = false;
/// let mut report = Vec::new();
/// let summary = run(&cfg, &mut report).expect("the sandbox runs on x86-64 Linux");
/// assert_eq!(summary.cases, 200);
/// assert!(summary.last_line().starts_with("isa-difftest: 200 cases, "));
/// ```
pub fn run(cfg: &Config, out: &mut dyn std::io::Write) -> Result<Summary, DifftestError> {
    if !cfg.caps.amd {
        writeln!(
            out,
            "note: host is not AuthenticAMD: SDM-undefined flags are masked, and forms with \
             undefined results are not generated"
        )
        .map_err(io_error)?;
    }
    let g = gen::Generator::new(cfg.caps)
        .region_end(cfg.region_end)
        .groups(&cfg.groups);
    let mut tally = Tally {
        summary: Summary {
            cases: cfg.cases,
            ..Summary::default()
        },
        seen: std::collections::BTreeSet::new(),
        shown: 0,
        buf: native::BatchBuffer::default(),
        model: sim::host_model(),
    };
    let mut start = 0u64;
    while start < cfg.cases {
        let end = (start + cfg.batch.max(1) as u64).min(cfg.cases);
        let batch: Vec<Prepared> = (start..end)
            .map(|i| {
                let case = g.case(cfg.seed, i);
                let asm = case.assemble();
                Prepared { case, asm }
            })
            .collect();
        tally.batch(&batch, cfg.show, out)?;
        start = end;
    }
    let mut summary = tally.summary;
    summary.mnemonics = match g.counted_mnemonics() {
        None => tally.seen.len(),
        Some(set) => tally.seen.intersection(&set).count(),
    };
    if summary.mismatches > 0 {
        writeln!(
            out,
            "mismatches per mnemonic (first differing unit of each case):"
        )
        .map_err(io_error)?;
        for (m, c) in &summary.per_mnemonic {
            writeln!(out, "  {m:<12} {c}").map_err(io_error)?;
        }
    }
    Ok(summary)
}

/// The forms of `cfg`'s groups on this host, one line per mnemonic, and
/// per group its form and mnemonic counts (`selftest isa --list-forms`).
pub fn list_forms(cfg: &Config) -> String {
    use std::fmt::Write as _;
    let g = gen::Generator::new(cfg.caps).groups(&cfg.groups);
    let mut out = String::new();
    let mut all = std::collections::BTreeSet::new();
    for (group, list) in g.forms_per_group() {
        let forms: usize = list.iter().map(|(_, c)| c.len()).sum();
        let _ = writeln!(
            out,
            "group {}: {forms} forms, {} mnemonics",
            group.name(),
            list.len()
        );
        for (m, codes) in &list {
            all.insert(*m as u16);
            let names: Vec<String> = codes.iter().map(|c| format!("{c:?}")).collect();
            let _ = writeln!(
                out,
                "  {:<12} {}",
                format!("{m:?}").to_lowercase(),
                names.join(" ")
            );
        }
    }
    let _ = writeln!(out, "distinct mnemonics over the groups: {}", all.len());
    out
}

fn io_error(e: std::io::Error) -> DifftestError {
    DifftestError::Output(e.to_string())
}

/// What a run has found so far.
struct Tally {
    /// Counts (mnemonics filled in at the end).
    summary: Summary,
    /// Mnemonics seen in generated code (`Mnemonic as u16`).
    seen: std::collections::BTreeSet<u16>,
    /// Mismatches printed in full so far.
    shown: usize,
    /// The native sandbox's reusable batch mapping.
    buf: native::BatchBuffer,
    /// The simulator's CPUID model ([`sim::host_model`]).
    model: smpsim_cores::CpuidModel,
}

impl Tally {
    /// Runs one batch on both sides, compares, attributes and reports.
    fn batch(
        &mut self,
        batch: &[Prepared],
        show: usize,
        out: &mut dyn std::io::Write,
    ) -> Result<(), DifftestError> {
        let (native, simulated) = run_both(batch, &mut self.buf, &self.model)?;
        let mut bad = Vec::new();
        for (k, ((p, n), s)) in batch.iter().zip(&native).zip(&simulated).enumerate() {
            self.seen
                .extend(report::mnemonics(&p.asm).into_iter().map(|m| m as u16));
            if matches!(n, Outcome::Ran { fault: Some(_), .. }) {
                self.summary.faulting_cases += 1;
            }
            if matches!(n, Outcome::Crashed { .. }) {
                self.summary.native_crashes += 1;
            }
            if let Verdict::Mismatch(d) = report::compare(n, s, p.case.undef_flags) {
                bad.push((k, d));
            }
        }
        self.summary.mismatches += bad.len() as u64;
        let cases: Vec<&gen::Case> = bad.iter().map(|(k, _)| &batch[*k].case).collect();
        for ((k, d), blame) in bad
            .iter()
            .zip(attribute(&cases, &mut self.buf, &self.model)?)
        {
            if self.shown < show {
                let p = &batch[*k];
                let text = report::describe(&p.case, &p.asm, &native[*k], &simulated[*k], d);
                writeln!(out, "{text}  first differing unit: {blame}").map_err(io_error)?;
                self.shown += 1;
            }
            *self.summary.per_mnemonic.entry(blame).or_default() += 1;
        }
        Ok(())
    }
}

/// Native and simulated outcomes of a batch, the two running concurrently.
fn run_both(
    batch: &[Prepared],
    buf: &mut native::BatchBuffer,
    model: &smpsim_cores::CpuidModel,
) -> Result<(Vec<Outcome>, Vec<Outcome>), DifftestError> {
    let inputs: Vec<native::NativeInput<'_>> = batch
        .iter()
        .map(|p| native::NativeInput {
            init: &p.case.init,
            code: &p.asm.bytes,
            data: &p.case.data,
            fx: &p.case.fx,
        })
        .collect();
    let pending = native::PendingBatch::start_in(buf, &inputs)?;
    let simulated: Vec<Outcome> = batch
        .iter()
        .map(|p| sim::run(&p.case, &p.asm, model))
        .collect();
    Ok((pending.finish_into(buf)?, simulated))
}

/// For each mismatching case, the main mnemonic of the first unit whose
/// prefix already mismatches (found by re-running every prefix).
fn attribute(
    bad: &[&gen::Case],
    buf: &mut native::BatchBuffer,
    model: &smpsim_cores::CpuidModel,
) -> Result<Vec<String>, DifftestError> {
    let mut which = Vec::new();
    let mut list = Vec::new();
    for (k, case) in bad.iter().enumerate() {
        for n in 1..=case.units.len() {
            let c = case.prefix(n);
            let asm = c.assemble();
            which.push((k, n));
            list.push(Prepared { case: c, asm });
        }
    }
    let (native, simulated) = if list.is_empty() {
        (Vec::new(), Vec::new())
    } else {
        run_both(&list, buf, model)?
    };
    let mut first: Vec<Option<usize>> = vec![None; bad.len()];
    for (((k, n), p), (nat, s)) in which.iter().zip(&list).zip(native.iter().zip(&simulated)) {
        if first[*k].is_none() && report::compare(nat, s, p.case.undef_flags) != Verdict::Match {
            first[*k] = Some(*n);
        }
    }
    Ok(bad
        .iter()
        .zip(first)
        .map(|(case, n)| match n {
            Some(n) => case.units[n - 1].name(),
            None => "(unattributed)".to_string(),
        })
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::layout;

    fn prepared(seed: u64, n: u64) -> Vec<Prepared> {
        let g = gen::Generator::new(HostCaps::detect());
        (0..n)
            .map(|i| {
                let case = g.case(seed, i);
                let asm = case.assemble();
                Prepared { case, asm }
            })
            .collect()
    }

    fn native_of(batch: &[Prepared]) -> Vec<Outcome> {
        let inputs: Vec<native::NativeInput<'_>> = batch
            .iter()
            .map(|p| native::NativeInput {
                init: &p.case.init,
                code: &p.asm.bytes,
                data: &p.case.data,
                fx: &p.case.fx,
            })
            .collect();
        native::run_batch(&inputs).expect("sandbox runs")
    }

    /// The host's results (undefined flags included) depend only on the
    /// inputs: the same cases in another order give the same outcomes.
    #[test]
    fn native_results_are_repeatable() {
        let mut batch = prepared(11, 3000);
        let first = native_of(&batch);
        batch.reverse();
        let mut second = native_of(&batch);
        second.reverse();
        for (i, (a, b)) in first.iter().zip(&second).enumerate() {
            assert_eq!(a, b, "case {i} differs between two native runs");
        }
    }

    #[test]
    fn simulator_and_host_agree_on_a_fixed_add() {
        let mut batch = prepared(1, 1);
        let p = &mut batch[0];
        // add rax, rbx
        p.asm = gen::Assembled {
            bytes: vec![0x48, 0x01, 0xD8],
            insns: vec![(0, 3)],
        };
        p.case.init.gpr[0] = 0xFFFF_FFFF_FFFF_FFFF;
        p.case.init.gpr[3] = 1;
        p.case.init.rflags = 0x2;
        let n = &native_of(&batch)[0];
        let s = sim::run(&batch[0].case, &batch[0].asm, &sim::host_model());
        assert_eq!(report::compare(n, &s, 0), Verdict::Match);
        let Outcome::Ran { regs, fault, .. } = n else {
            panic!("native crashed")
        };
        assert_eq!(*fault, None);
        assert_eq!(regs.gpr[0], 0);
        assert_eq!(
            regs.rflags & flags::COMPARED,
            flags::CF | flags::ZF | flags::PF | flags::AF
        );
    }

    #[test]
    fn compare_names_each_differing_field() {
        let batch = prepared(2, 1);
        let n = native_of(&batch).remove(0);
        let Outcome::Ran {
            mut regs,
            mut data,
            fault,
            fp,
        } = n.clone()
        else {
            panic!("crashed")
        };
        assert_eq!(report::compare(&n, &n, 0), Verdict::Match);
        regs.gpr[2] ^= 1;
        regs.rflags ^= flags::AF;
        data[0x123] ^= 0x80;
        let bad = Outcome::Ran {
            regs,
            data,
            fault,
            fp,
        };
        let Verdict::Mismatch(d) = report::compare(&n, &bad, 0) else {
            panic!("not detected")
        };
        assert_eq!(d.len(), 3, "{d:?}");
        assert!(d[0].contains("rdx") && d[1].contains("differ: AF") && d[2].contains("0x20020120"));
        let text = report::describe(&batch[0].case, &batch[0].asm, &n, &bad, &d);
        assert!(
            text.contains(&format!("rdx={:016x}*", regs.gpr[2])),
            "{text}"
        );
        assert!(
            text.contains("* differ: AF") || text.contains("(differ: AF)"),
            "{text}"
        );
        assert_eq!(
            report::compare(&n, &bad, flags::AF).clone(),
            Verdict::Mismatch(vec![d[0].clone(), d[2].clone()])
        );
    }

    /// The CI set: a seeded run that must show no mismatch and cover the
    /// integer ISA (the issue asks for at least 120 mnemonics).
    #[test]
    fn seeded_set_matches_the_host() {
        let cfg = Config::new(20_000, 1);
        let mut out = Vec::new();
        let s = run(&cfg, &mut out).expect("difftest runs");
        let text = String::from_utf8_lossy(&out);
        assert_eq!(s.mismatches, 0, "{text}{}", s.last_line());
        assert!(s.mnemonics >= 120, "{}", s.last_line());
        assert!(s.faulting_cases > 0, "no #DE case was compared");
    }

    /// With the host treated as non-AMD, undefined flags are masked and
    /// flag readers get a defining `cmp` first; on any host that still
    /// agrees, and the note is printed.
    #[test]
    fn non_amd_masking_path_runs_clean() {
        let mut cfg = Config::new(2_000, 3);
        cfg.caps.amd = false;
        let mut out = Vec::new();
        let s = run(&cfg, &mut out).expect("difftest runs");
        let text = String::from_utf8_lossy(&out);
        assert!(text.starts_with("note: host is not AuthenticAMD"), "{text}");
        assert_eq!(s.mismatches, 0, "{text}");
    }

    /// `rdtsc` reads simulated cycles in the simulator and the host's TSC
    /// natively: a guaranteed difference, blamed on its own unit.
    #[test]
    fn attribution_names_the_first_differing_unit() {
        use iced_x86::{Code, Instruction, Mnemonic, Register};
        let unit = |i: Instruction, m: Mnemonic| gen::Unit {
            items: vec![gen::Item::Insn(i)],
            main: m,
            inner: Vec::new(),
        };
        let mut case = prepared(4, 1).remove(0).case;
        let mov = Instruction::with2(Code::Mov_r32_imm32, Register::EAX, 1).expect("mov");
        let add =
            Instruction::with2(Code::Add_r64_rm64, Register::RAX, Register::RBX).expect("add");
        case.units = vec![
            unit(mov, Mnemonic::Mov),
            unit(Instruction::with(Code::Rdtsc), Mnemonic::Rdtsc),
            unit(add, Mnemonic::Add),
        ];
        assert_eq!(
            attribute(
                &[&case],
                &mut native::BatchBuffer::default(),
                &sim::host_model()
            )
            .expect("runs"),
            vec!["rdtsc".to_string()]
        );
    }

    /// A store into an instruction further down the same block takes
    /// effect natively, and the simulator must agree.
    #[test]
    fn self_modifying_code_is_seen_by_both_sides() {
        use iced_x86::{Code, Instruction, Mnemonic, Register};
        let mut batch = prepared(6, 1);
        let l = gen::Label(1000);
        let mov =
            Instruction::with2(Code::Mov_r32_imm32, Register::EAX, 0x1122_3344u32).expect("mov");
        let items = vec![
            gen::Item::Patch {
                label: l,
                offset: 1,
                value: 0x5A,
            },
            gen::Item::Label(l),
            gen::Item::Insn(mov),
        ];
        batch[0].case.units = vec![gen::Unit {
            items,
            main: Mnemonic::Mov,
            inner: Vec::new(),
        }];
        batch[0].asm = batch[0].case.assemble();
        let n = native_of(&batch).remove(0);
        let Outcome::Ran {
            regs, fault: None, ..
        } = &n
        else {
            panic!("{n:?}")
        };
        assert_eq!(regs.gpr[0], 0x1122_335A);
        let s = sim::run(&batch[0].case, &batch[0].asm, &sim::host_model());
        assert_eq!(report::compare(&n, &s, 0), Verdict::Match);
    }

    /// An empty sequence gives back the x87/SSE state it was given, on
    /// both sides (the FXRSTOR/FXSAVE round trip of the sandbox).
    #[test]
    fn empty_sequence_keeps_the_fpu_state_on_both_sides() {
        let mut batch = prepared(12, 300);
        for p in &mut batch {
            p.asm = gen::Assembled {
                bytes: vec![0x90],
                insns: vec![(0, 1)],
            };
        }
        let native = native_of(&batch);
        for (p, n) in batch.iter().zip(&native) {
            let Outcome::Ran {
                fp, fault: None, ..
            } = n
            else {
                panic!("{n:?}")
            };
            let want = fpstate::FpView::from_fxsave(&p.case.fx);
            assert_eq!(fpstate::diffs(&want, fp), Vec::<String>::new());
            let s = sim::run(&p.case, &p.asm, &sim::host_model());
            assert_eq!(report::compare(n, &s, 0), Verdict::Match);
        }
    }

    /// `addps` with PE unmasked and an inexact sum: SIGFPE natively,
    /// vector 19 at the instruction, the destination unchanged and
    /// MXCSR.PE set (the state is read from the signal frame).
    #[test]
    fn unmasked_sse_exception_is_vector_19_with_the_state_at_the_fault() {
        use smpsim_cores::fpu::FpuState;
        let mut batch = prepared(8, 1);
        let p = &mut batch[0];
        p.asm = gen::Assembled {
            bytes: vec![0x0F, 0x58, 0xC1], // addps xmm0, xmm1
            insns: vec![(0, 3)],
        };
        let mut f = FpuState {
            mxcsr: 0x1f80 & !(1 << 12),
            ..FpuState::default()
        };
        f.xmm[0] = u128::from(1.0f32.to_bits());
        f.xmm[1] = u128::from(1e-10f32.to_bits());
        f.xmm[7] = 0x0123_4567_89ab_cdef_fedc_ba98_7654_3210;
        p.case.fx = f.to_fxsave();
        let n = native_of(&batch).remove(0);
        let Outcome::Ran {
            fault: Some(fault),
            fp,
            ..
        } = n
        else {
            panic!("{n:?}")
        };
        assert_eq!(
            fault,
            FaultInfo {
                vector: 19,
                rip: layout::CODE_BASE
            }
        );
        assert_eq!(fp.xmm[0], f.xmm[0]);
        assert_eq!(fp.xmm[7], f.xmm[7]);
        assert_eq!(fp.mxcsr, f.mxcsr | 1 << 5);
    }

    #[test]
    fn last_line_has_the_exact_format() {
        let s = Summary {
            cases: 3,
            mismatches: 1,
            mnemonics: 2,
            ..Summary::default()
        };
        assert_eq!(
            s.last_line(),
            "isa-difftest: 3 cases, 1 mismatches, 2 mnemonics"
        );
    }
}
