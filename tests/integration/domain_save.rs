//! Xen-level domain save/restore (issue 17): a domain saved mid-run with
//! its frames canonicalised to PFNs, restored into a new machine whose
//! domain sits on other machine frames, continues and finishes its work:
//! the console after the restore continues the one before, and together
//! they hold what a straight run printed. The built-in single-domain
//! workloads, and the XTF pv64 example where XTF can be built (skipped,
//! saying why, otherwise). Damaged files and refused domains are one
//! clear error.

use crate::support::{assert_success, config};
use smpsim::machine::config::{KernelSpec, MachineConfig, Model};
use smpsim::machine::dsave::DomainSaveFile;
use smpsim::machine::{Machine, RunOptions, RunReport};
use std::path::{Path, PathBuf};
use std::process::Command;

/// Single-domain workloads a domain save supports (`fault` ends in a
/// crash on purpose; `evstorm` uses FIFO events, which a save refuses).
const WORKLOADS: &[&str] = &[
    "hello",
    "ipi-pingpong",
    "spinlock",
    "ticketlock",
    "atomics",
    "barrier",
    "false-sharing",
    "reduction",
    "stream",
    "pointer-chase",
    "ring",
    "timer",
    "evtchn",
    "stress",
    "ubench-alu-indep",
    "ubench-alu-chain",
    "ubench-branch",
    "ubench-mlp",
    "ubench-stlf",
    "ubench-smt",
    "ubench-tlb",
    "matmul",
    "nbody",
    "memcpy",
    "ubench-fp",
];

/// Frames the restoring machine takes before it builds the domain.
const OFFSET: u64 = 777;

fn scratch(what: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("smpsim-dsave-{}-{what}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).expect("scratch directory");
    d
}

/// Saves the domain of `m` from `at` on into `file`, restores it with
/// [`OFFSET`] and runs it to the end; checks the round trip against the
/// straight run `full`.
fn round_trip(mut m: Machine, at: u64, file: &Path, full: &RunReport, what: &str) {
    let before = m.domain_frames(0);
    let (saved, _) = m.run_to_domain_save(at, 0).expect("the domain saves");
    std::fs::write(file, saved.encode()).expect("writes the save");
    let back = DomainSaveFile::read(file).expect("the save reads back");
    assert_eq!(back, saved, "{what}: the file holds what was saved");
    let pre = back.console.clone();
    let mut r = Machine::domain_restore(back, OFFSET, &RunOptions::default())
        .unwrap_or_else(|e| panic!("{what}: restore: {e}"));
    let after = r.domain_frames(0);
    assert_eq!(before.len(), after.len(), "{what}");
    assert!(
        before.iter().zip(&after).all(|(a, b)| a != b),
        "{what}: every PFN is on another machine frame after the restore"
    );
    let report = r.run_in_place();
    assert_success(&report, what);
    // The console before the save is how the straight run began; the one
    // after continues it (the order of lines printed by different VCPUs
    // may differ, and so may the figures measured: timing restarts cold),
    // and both end with the verdict.
    assert_eq!(pre[..], full.console[..pre.len()], "{what}: console before");
    let mut both: Vec<String> = pre
        .iter()
        .chain(&report.console)
        .map(|l| figures_masked(l))
        .collect();
    let mut straight: Vec<String> = full.console.iter().map(|l| figures_masked(l)).collect();
    assert_eq!(both.last(), straight.last(), "{what}: last line");
    both.sort();
    straight.sort();
    assert_eq!(both, straight, "{what}: console before + after");
    assert!(
        !report.console.is_empty(),
        "{what}: the restored domain printed"
    );
}

/// `line` with every run of digits as `#` (timings differ after a restore).
fn figures_masked(line: &str) -> String {
    let mut out = String::new();
    for c in line.chars() {
        if !c.is_ascii_digit() {
            out.push(c);
        } else if !out.ends_with('#') {
            out.push('#');
        }
    }
    out
}

fn workload_round_trip(cfg: &MachineConfig, name: &str, dir: &Path) {
    let w = smpsim_workloads::find(name).expect("built-in workload");
    let opts = RunOptions::default();
    let full = Machine::build(cfg, w, &opts).expect("builds").run();
    assert_success(&full, name);
    // Three quarters in: past the runtime's VCPU bring-up (a save between
    // its building of a secondary's context and VCPUOP_initialise leaves
    // the MFN it cached in guest memory stale; see the README).
    let at = full.cycles / 4 * 3;
    let m = Machine::build(cfg, w, &opts).expect("builds");
    round_trip(m, at, &dir.join(format!("{name}.ds")), &full, name);
}

#[test]
fn builtin_workloads_round_trip_onto_other_frames() {
    let dir = scratch("builtin");
    let cfg = config(4, Model::Inorder);
    for name in WORKLOADS {
        workload_round_trip(&cfg, name, &dir);
    }
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn round_trip_in_every_model() {
    let dir = scratch("models");
    for model in [Model::Functional, Model::Ooo, Model::Fast] {
        workload_round_trip(&config(4, model), "reduction", &dir);
        workload_round_trip(&config(2, model), "ring", &dir);
    }
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn bad_files_and_refused_domains_are_one_clear_error() {
    let dir = scratch("bad");
    let junk = dir.join("junk.ds");
    std::fs::write(&junk, b"not a save at all").expect("writes");
    let e = DomainSaveFile::read(&junk).expect_err("junk is refused");
    assert!(e.contains("not an smpsim domain save"), "{e}");
    let cfg = config(2, Model::Inorder);
    let w = smpsim_workloads::find("hello").expect("built-in");
    let mut m = Machine::build(&cfg, w, &RunOptions::default()).expect("builds");
    let (saved, _) = m.run_to_domain_save(10_000, 0).expect("saves");
    let bytes = saved.encode();
    let cut = dir.join("cut.ds");
    std::fs::write(&cut, &bytes[..bytes.len() / 2]).expect("writes");
    let e = DomainSaveFile::read(&cut).expect_err("a truncated file is refused");
    assert!(e.contains("checksum mismatch"), "{e}");
    let two = smpsim_workloads::find("interdomain").expect("built-in");
    let mut m = Machine::build(&cfg, two, &RunOptions::default()).expect("builds");
    let e = m
        .run_to_domain_save(10_000, 0)
        .expect_err("two domains refused");
    assert!(e.contains("interdomain event channels"), "{e}");
    let _ = std::fs::remove_dir_all(&dir);
}

fn have(tool: &str) -> bool {
    Command::new(tool)
        .arg("--version")
        .output()
        .is_ok_and(|o| o.status.success())
}

/// Builds XTF's example test (pv64) in `dir`; `None` (saying why) where
/// it cannot be built here.
fn xtf_example(dir: &Path) -> Option<PathBuf> {
    let src = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../shared/xtf");
    if !src.join("Makefile").exists() {
        eprintln!("skipped: no XTF source at {}", src.display());
        return None;
    }
    if let Some(t) = ["make", "gcc", "cp"].into_iter().find(|t| !have(t)) {
        eprintln!("skipped: `{t}` is not installed (needed to build XTF)");
        return None;
    }
    let root = dir.join("xtf");
    let ok = Command::new("cp")
        .arg("-r")
        .arg(&src)
        .arg(&root)
        .status()
        .is_ok_and(|s| s.success());
    assert!(ok, "copying XTF to {}", root.display());
    let _ = Command::new("chmod")
        .arg("-R")
        .arg("u+w")
        .arg(&root)
        .status();
    let example = root.join("tests/example");
    let out = Command::new("make")
        .arg("-C")
        .arg(&root)
        .arg("-j2")
        .arg(format!("TESTS={}", example.display()))
        .output()
        .expect("make runs");
    assert!(
        out.status.success(),
        "building XTF's example: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    Some(example.join("test-pv64-example"))
}

#[test]
fn xtf_pv64_example_round_trips_onto_other_frames() {
    let dir = scratch("xtf");
    let Some(kernel) = xtf_example(&dir) else {
        return;
    };
    let cfg = config(4, Model::Inorder);
    let k = [KernelSpec::new(&kernel)];
    let opts = RunOptions::default();
    let full = Machine::build_kernels(&cfg, &k, &opts)
        .expect("builds")
        .run();
    assert_success(&full, "xtf example");
    assert!(
        full.console
            .iter()
            .any(|l| l.contains("Test result: SUCCESS")),
        "{:?}",
        full.console
    );
    for quarter in [1, 2, 3] {
        let m = Machine::build_kernels(&cfg, &k, &opts).expect("builds");
        let at = full.cycles / 4 * quarter;
        round_trip(m, at, &dir.join("x.ds"), &full, "xtf example");
    }
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn cli_saves_and_restores_a_domain() {
    let dir = scratch("cli");
    let file = dir.join("hello.ds");
    let smpsim = env!("CARGO_BIN_EXE_smpsim");
    let out = Command::new(smpsim)
        .args([
            "run",
            "-w",
            "hello",
            "--cores",
            "2",
            "--domain-save-at",
            "20000",
        ])
        .arg("--domain-save-out")
        .arg(&file)
        .output()
        .expect("smpsim runs");
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(out.status.success(), "{text}");
    assert!(text.contains("domain 0 saved at cycle "), "{text}");
    let out = Command::new(smpsim)
        .args(["run", "--frame-offset", "500", "--domain-restore"])
        .arg(&file)
        .output()
        .expect("smpsim runs");
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(out.status.success(), "{text}");
    assert!(text.contains("frame offset 500"), "{text}");
    assert!(text.contains("(d0) PASS hello"), "{text}");
    let junk = dir.join("junk.ds");
    std::fs::write(&junk, b"SMPSIMCK and more").expect("writes");
    let out = Command::new(smpsim)
        .arg("run")
        .arg("--domain-restore")
        .arg(&junk)
        .output()
        .expect("smpsim runs");
    let err = String::from_utf8_lossy(&out.stderr).into_owned();
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(err.contains("not an smpsim domain save"), "{err}");
    let _ = std::fs::remove_dir_all(&dir);
}
