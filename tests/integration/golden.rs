//! Golden whole-machine results: every built-in workload at 1, 4 and 16
//! cores in each timing model, reduced to a digest of everything a run
//! reports outside its `host` section and its config (cycles, stats of
//! every partition, console, shutdowns, hypervisor figures).
//!
//! The digests live in `tests/golden/digests.txt`, one run per line:
//! `model cores workload digest cycles instructions`. A change that alters
//! any simulated result changes a digest; the failure lists every run that
//! differs with its old and new cycle and instruction counts. When a change
//! is meant to alter results, re-bless with
//! `SMPSIM_BLESS=1 cargo test --test integration golden` and say why in the
//! commit.

use crate::support::{config, run};
use smpsim::machine::config::Model;
use smpsim::machine::RunReport;
use smpsim_engine::HostThreads;
use std::collections::BTreeMap;
use std::path::PathBuf;

fn golden_path() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/golden/digests.txt")
}

/// FNV-1a, 64 bits: stable across Rust releases and hosts (std's hasher
/// promises neither).
fn fnv1a(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325, |h, &b| {
        (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3)
    })
}

/// The digest of a run: its report as JSON without `host` and `config`
/// (a new config key with its default, like a prefetcher that is off,
/// must not change the simulated results).
fn digest(r: &RunReport) -> u64 {
    let mut v = serde_json::to_value(r).expect("serializable");
    let o = v.as_object_mut().expect("object");
    o.remove("host");
    o.remove("config");
    fnv1a(serde_json::to_string(&v).expect("serializable").as_bytes())
}

fn model_name(m: Model) -> &'static str {
    m.name()
}

/// One golden line per (model, cores, workload) of this group.
fn lines(model: Model, cores: u32) -> BTreeMap<String, String> {
    let mut out = BTreeMap::new();
    for w in smpsim_workloads::catalogue() {
        // The SSE workloads get golden lines once they can run.
        if cores < w.domains {
            continue;
        }
        let r = run(&config(cores, model), w.name, HostThreads::Count(1));
        let key = format!("{} {cores} {}", model_name(model), w.name);
        let val = format!("{:016x} {} {}", digest(&r), r.cycles, r.instructions);
        out.insert(key, val);
    }
    out
}

fn read_golden() -> BTreeMap<String, String> {
    let text = std::fs::read_to_string(golden_path()).unwrap_or_default();
    text.lines()
        .filter(|l| !l.starts_with('#') && !l.trim().is_empty())
        .map(|l| {
            let f: Vec<&str> = l.split_whitespace().collect();
            assert_eq!(f.len(), 6, "golden line {l:?}");
            (format!("{} {} {}", f[0], f[1], f[2]), f[3..].join(" "))
        })
        .collect()
}

/// Rewrites this group's lines in the golden file (others kept). Groups
/// run as parallel tests, so the rewrite holds a lock file.
fn bless(model: Model, cores: u32, got: &BTreeMap<String, String>) {
    static LOCK: std::sync::Mutex<()> = std::sync::Mutex::new(());
    let _g = LOCK.lock().expect("bless lock");
    let prefix = format!("{} {cores} ", model_name(model));
    let mut all = read_golden();
    all.retain(|k, _| !k.starts_with(&prefix));
    all.extend(got.iter().map(|(k, v)| (k.clone(), v.clone())));
    let mut text = String::from(
        "# model cores workload digest cycles instructions (tests/integration/golden.rs)\n",
    );
    for (k, v) in &all {
        text.push_str(&format!("{k} {v}\n"));
    }
    std::fs::create_dir_all(golden_path().parent().expect("has a parent")).expect("mkdir");
    std::fs::write(golden_path(), text).expect("write golden file");
}

fn check(model: Model, cores: u32) {
    let got = lines(model, cores);
    if std::env::var_os("SMPSIM_BLESS").is_some() {
        bless(model, cores, &got);
        return;
    }
    let want = read_golden();
    let mut diffs = Vec::new();
    for (k, v) in &got {
        match want.get(k) {
            Some(w) if w == v => {}
            Some(w) => diffs.push(format!("{k}: golden {w}, now {v}")),
            None => diffs.push(format!("{k}: not in the golden file, now {v}")),
        }
    }
    let prefix = format!("{} {cores} ", model_name(model));
    for k in want.keys().filter(|k| k.starts_with(&prefix)) {
        if !got.contains_key(k) {
            diffs.push(format!("{k}: in the golden file, not run"));
        }
    }
    assert!(
        diffs.is_empty(),
        "{} golden runs differ (re-bless with SMPSIM_BLESS=1 only if the change is meant to alter results):\n{}",
        diffs.len(),
        diffs.join("\n")
    );
}

#[test]
fn golden_functional_1_core() {
    check(Model::Functional, 1);
}

#[test]
fn golden_functional_4_cores() {
    check(Model::Functional, 4);
}

#[test]
fn golden_functional_16_cores() {
    check(Model::Functional, 16);
}

#[test]
fn golden_inorder_1_core() {
    check(Model::Inorder, 1);
}

#[test]
fn golden_inorder_4_cores() {
    check(Model::Inorder, 4);
}

#[test]
fn golden_inorder_16_cores() {
    check(Model::Inorder, 16);
}

#[test]
fn golden_ooo_1_core() {
    check(Model::Ooo, 1);
}

#[test]
fn golden_ooo_4_cores() {
    check(Model::Ooo, 4);
}

#[test]
fn golden_ooo_16_cores() {
    check(Model::Ooo, 16);
}

#[test]
fn golden_fast_4_cores() {
    check(Model::Fast, 4);
}

#[test]
fn golden_fast_16_cores() {
    check(Model::Fast, 16);
}

#[test]
fn golden_digest_is_fnv1a() {
    // Reference values of FNV-1a 64 (its published test vectors).
    assert_eq!(fnv1a(b""), 0xcbf2_9ce4_8422_2325);
    assert_eq!(fnv1a(b"a"), 0xaf63_dc4c_8601_ec8c);
}
