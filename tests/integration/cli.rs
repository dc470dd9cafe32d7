//! The `smpsim` command line.

use std::process::Command;

fn smpsim() -> Command {
    Command::new(env!("CARGO_BIN_EXE_smpsim"))
}

#[test]
fn run_with_no_flags_runs_the_default_machine() {
    let out = smpsim().arg("run").output().expect("runs");
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{text}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(text.contains("(d0) PASS hello"), "{text}");
    assert!(text.contains("result       success"), "{text}");
}

#[test]
fn a_crashing_guest_exits_nonzero_and_still_writes_stats() {
    let dir = std::env::temp_dir().join(format!("smpsim-cli-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    let stats = dir.join("fault.json");
    let out = smpsim()
        .args(["run", "-w", "fault", "--cores", "1", "--stats"])
        .arg(&stats)
        .output()
        .expect("runs");
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(!out.status.success(), "{text}");
    assert!(text.contains("crash"), "{text}");
    let json: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&stats).expect("stats written"))
            .expect("json");
    assert_eq!(json["success"], false);
    assert_eq!(json["shutdowns"][0]["reason"], "crash");
    assert!(json["host"]["seconds"].is_number());
}

#[test]
fn unknown_workload_lists_the_valid_names() {
    let out = smpsim().args(["run", "-w", "nope"]).output().expect("runs");
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("unknown workload `nope`") && err.contains("spinlock"),
        "{err}"
    );
}

#[test]
fn a_config_typo_names_file_line_and_key() {
    let dir = std::env::temp_dir().join(format!("smpsim-cfg-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    let path = dir.join("typo.toml");
    std::fs::write(&path, "cores = 2\n[hierarchy.l1d]\nsets = 64\nwayz = 8\n").expect("write");
    let out = smpsim()
        .arg("run")
        .arg("-c")
        .arg(&path)
        .output()
        .expect("runs");
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("typo.toml:4") && err.contains("hierarchy.l1d.wayz"),
        "{err}"
    );
}

#[test]
fn run_switches_to_ooo_on_the_command_line_and_reports_it() {
    let out = smpsim()
        .args(["run", "-w", "ubench-stlf", "--cores", "1", "--smt", "2"])
        .args(["--vcpus", "1", "--model", "functional"])
        .args(["--switch-to", "ooo", "--switch-at-roi"])
        .output()
        .expect("runs");
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{text}");
    assert!(text.contains("switch       to ooo at cycle"), "{text}");
    assert!(
        text.contains("(roi begin)") && text.contains("(roi end)"),
        "{text}"
    );
    assert!(text.contains("\nooo          "), "{text}");
    let fwd: u64 = text
        .split(" forwarded loads")
        .next()
        .and_then(|h| h.rsplit(' ').next())
        .and_then(|n| n.parse().ok())
        .expect("an ooo summary line with forwarded loads");
    assert!(fwd >= 65536, "8 reloads × 8192 iterations forward: {fwd}");
}
