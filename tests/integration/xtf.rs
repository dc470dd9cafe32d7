//! The XTF conformance runner (`scripts/xtf`): its parsing of results on a
//! fake smpsim (always), and a real build and run of a few XTF tests when
//! `../shared/xtf`, `make` and `gcc` are there (skipped, saying why, when
//! not).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

/// Tests that must report SUCCESS in the real run (docs/xtf.md has the
/// whole table and why the others do not pass yet).
const EXPECTED_SUCCESS: &[&str] = &[
    "cpuid",
    "debug-regs",
    "example",
    "memop-seg",
    "msr",
    "pv-fsgsbase",
    "pv-iopl~hypercall",
    "pv-iopl~vmassist",
    "rtm-check",
    "selftest",
    "xsa-122",
    "xsa-182",
    "xsa-188",
    "xsa-193",
    "xsa-212",
    "xsa-213",
    "xsa-221",
    "xsa-224",
    "xsa-227",
    "xsa-231",
    "xsa-232",
    "xsa-234",
    "xsa-255",
    "xsa-259",
    "xsa-265",
    "xsa-279",
    "xsa-286",
    "xsa-296",
    "xsa-298",
    "xsa-316",
    "xsa-317",
    "xsa-333",
    "xsa-339",
    "xsa-7",
];

/// Skips that Xen itself gives for smpsim's feature set (no Argo, no
/// livepatch, no CPUID faulting, no PV superpages, no AMD DBEXT).
const EXPECTED_SKIP: &[&str] = &[
    "argo",
    "cpuid-faulting",
    "livepatch-priv-check",
    "xsa-167",
    "xsa-444",
];

/// Runs (39 images, pv-iopl twice).
const RUNS: usize = 40;

fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn temp(tag: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("smpsim-xtf-{tag}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).expect("temp dir");
    d
}

fn runner(args: &[&str], extra: &[&Path]) -> Output {
    Command::new("bash")
        .arg(repo().join("scripts/xtf"))
        .args(args)
        .args(extra)
        .output()
        .expect("bash runs scripts/xtf")
}

/// The runner's table: test → (result, reason).
fn table(out: &Output) -> BTreeMap<String, (String, String)> {
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter(|l| !l.starts_with("----") && !l.starts_with("table written"))
        .filter_map(|l| {
            let mut f = l.splitn(3, char::is_whitespace).filter(|s| !s.is_empty());
            let name = f.next()?.to_owned();
            let rest = l[name.len()..].trim_start();
            let (result, reason) = rest.split_once(' ').unwrap_or((rest, ""));
            Some((name, (result.to_owned(), reason.trim().to_owned())))
        })
        .collect()
}

fn text(out: &Output) -> String {
    format!(
        "status {:?}\nstdout:\n{}\nstderr:\n{}",
        out.status.code(),
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

/// A fake XTF tree (empty images, pv-iopl's two variant configs) and a fake
/// smpsim that answers each image with a canned run.
fn fake_setup(dir: &Path) -> PathBuf {
    for t in [
        "example", "selftest", "hang", "boom", "bug", "notelf", "stuck", "pv-iopl",
    ] {
        let d = dir.join("xtf/tests").join(t);
        std::fs::create_dir_all(&d).expect("test dir");
        std::fs::write(d.join(format!("test-pv64-{t}")), b"").expect("image");
        std::fs::write(d.join(format!("test-hvm64-{t}")), b"").expect("not pv64");
    }
    let iopl = dir.join("xtf/tests/pv-iopl");
    for v in ["hypercall", "vmassist"] {
        let cfg = format!(
            "name=\"x\"\nvcpus=1\nmemory=128\n\n# Test Variation Configuration:\ncmdline=\"{v}\"\n"
        );
        std::fs::write(iopl.join(format!("test-pv64-pv-iopl~{v}.cfg")), cfg).expect("cfg");
    }
    let fake = dir.join("fake-smpsim");
    std::fs::write(
        &fake,
        r#"#!/usr/bin/env bash
summary() { echo "---- smpsim run summary ----"; echo "stopped      $1"; [ -n "${2:-}" ] && echo "$2"; echo "domain 0     poweroff at cycle 99: SCHEDOP_shutdown(poweroff) from v0"; echo "result       FAILED"; }
# Every test runs as a domU, one core more than its VCPUs.
case "$*" in
*"--domu --cores 2 --vcpus 1 "*) ;;
*) echo "smpsim: not run as a domU: $*" >&2; exit 2 ;;
esac
case "$*" in
*test-pv64-example*) echo "(d1) Hello World"; echo "(d1) Test result: SUCCESS"; summary "every domain shut down" ;;
*test-pv64-selftest*) echo "(d1) Test result: FAILURE"; echo "(d1) Skip: no fsgsbase"; echo "(d0) dom0: waiting"; echo "(d1) Test result: SKIP"; summary "every domain shut down" ;;
*test-pv64-hang*) summary "cycle limit"; exit 1 ;;
*test-pv64-stuck*) summary "deadlock: every VCPU blocked with no timer pending"; exit 1 ;;
*test-pv64-boom*) summary "every domain shut down" "domain 1     crash at cycle 9: v0: boom"; exit 1 ;;
*test-pv64-bug*) summary "simulator error" "error        partition core0 panicked at cycle 7: oops"; exit 1 ;;
*test-pv64-notelf*) echo "smpsim: kernel x: not an ELF image" >&2; exit 2 ;;
*"--cmdline hypercall"*) echo "(d1) Test result: SUCCESS" ;;
*"--cmdline vmassist"*) echo "(d1) Error: bad iopl"; echo "(d0) dom0: waiting"; echo "(d1) Test result: ERROR" ;;
esac
"#,
    )
    .expect("fake smpsim");
    let mut p = std::fs::metadata(&fake).expect("written").permissions();
    std::os::unix::fs::PermissionsExt::set_mode(&mut p, 0o755);
    std::fs::set_permissions(&fake, p).expect("chmod");
    fake
}

#[test]
fn the_runner_parses_every_kind_of_result() {
    let dir = temp("fake");
    let fake = fake_setup(&dir);
    let md = dir.join("xtf.md");
    let root = dir.join("xtf");
    let out = runner(
        &["--smpsim"],
        &[
            &fake,
            Path::new("--xtf-build"),
            &root,
            Path::new("--out"),
            &md,
        ],
    );
    assert!(out.status.success(), "{}", text(&out));
    let t = table(&out);
    let want = [
        ("boom", "CRASH", "crash at cycle 9: v0: boom"),
        ("bug", "PANIC", "partition core0 panicked at cycle 7: oops"),
        ("example", "SUCCESS", ""),
        ("hang", "TIMEOUT", "cycle limit (200000000 cycles) reached"),
        ("notelf", "CRASH", "refused: kernel x: not an ELF image"),
        ("pv-iopl~hypercall", "SUCCESS", ""),
        ("pv-iopl~vmassist", "ERROR", "Error: bad iopl"),
        ("selftest", "SKIP", "Skip: no fsgsbase"),
        (
            "stuck",
            "TIMEOUT",
            "deadlock: every VCPU blocked with no timer pending",
        ),
    ];
    let got: Vec<(&str, &str, &str)> = t
        .iter()
        .map(|(n, (r, why))| (n.as_str(), r.as_str(), why.as_str()))
        .collect();
    assert_eq!(got, want, "{}", text(&out));
    let doc = std::fs::read_to_string(&md).expect("table written");
    assert!(
        doc.contains("| selftest | SKIP | Skip: no fsgsbase |"),
        "{doc}"
    );
    assert!(
        doc.contains("2 SUCCESS, 1 SKIP, 1 ERROR, 2 CRASH, 2 TIMEOUT, 1 PANIC (9 runs)"),
        "{doc}"
    );
    let out = runner(
        &["--require", "3", "--out", "-", "--smpsim"],
        &[&fake, Path::new("--xtf-build"), &root],
    );
    assert_eq!(out.status.code(), Some(1), "2 SUCCESS < 3: {}", text(&out));
    assert!(String::from_utf8_lossy(&out.stderr).contains("fewer than --require 3"));
    let out = runner(
        &["--require", "2", "--out", "-", "--smpsim"],
        &[&fake, Path::new("--xtf-build"), &root],
    );
    assert!(out.status.success(), "{}", text(&out));
}

fn have(tool: &str) -> bool {
    Command::new(tool)
        .arg("--version")
        .output()
        .is_ok_and(|o| o.status.success())
}

#[test]
fn real_xtf_tests_run_and_every_result_is_reported() {
    let src = repo().join("../shared/xtf");
    if !src.join("Makefile").exists() {
        eprintln!("skipped: no XTF source at {}", src.display());
        return;
    }
    if let Some(t) = ["make", "gcc"].into_iter().find(|t| !have(t)) {
        eprintln!("skipped: `{t}` is not installed (needed to build XTF)");
        return;
    }
    let dir = temp("real");
    let md = dir.join("xtf.md");
    let mut args = vec!["--max-cycles", "200000000", "--timeout", "120"];
    args.push("--smpsim");
    let smpsim = PathBuf::from(env!("CARGO_BIN_EXE_smpsim"));
    let out = runner(
        &args,
        &[&smpsim, Path::new("--keep"), &dir, Path::new("--out"), &md],
    );
    assert!(out.status.success(), "{}", text(&out));
    // The table in the test log (CI shows it).
    println!("{}", String::from_utf8_lossy(&out.stdout));
    let t = table(&out);
    assert_eq!(t.len(), RUNS, "{}", text(&out));
    let successes = t.values().filter(|(r, _)| r == "SUCCESS").count();
    assert!(
        successes >= 34,
        "{successes} SUCCESS (at least 34 expected)\n{}",
        text(&out)
    );
    for (name, (result, reason)) in &t {
        let known = ["SUCCESS", "SKIP", "FAILURE", "ERROR", "CRASH", "TIMEOUT"];
        assert!(
            known.contains(&result.as_str()),
            "{name}: {result} {reason}"
        );
        if result == "CRASH" {
            assert!(
                reason.starts_with("crash at cycle ") || reason.starts_with("refused: "),
                "{name}: a crash names its reason: {reason}"
            );
        }
        if EXPECTED_SUCCESS.contains(&name.as_str()) {
            assert_eq!(result, "SUCCESS", "{name}: {reason}");
        }
        if EXPECTED_SKIP.contains(&name.as_str()) {
            assert_eq!(result, "SKIP", "{name}: {reason}");
        }
    }
    let doc = std::fs::read_to_string(&md).expect("table written");
    assert!(doc.contains("| example |"), "{doc}");
    let _ = std::fs::remove_dir_all(&dir);
}
