//! What a user sees: interrupts keep results, bad input is one clear line
//! before any work, a cycle limit is not a failure.

use std::io::{BufRead, BufReader, Read};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

fn smpsim() -> Command {
    Command::new(env!("CARGO_BIN_EXE_smpsim"))
}

fn temp_dir(name: &str) -> std::path::PathBuf {
    let d = std::env::temp_dir().join(format!("smpsim-ux-{}-{name}", std::process::id()));
    std::fs::create_dir_all(&d).expect("temp dir");
    d
}

#[test]
fn sigint_stops_at_a_barrier_and_keeps_summary_stats_and_console() {
    let stats = temp_dir("sigint").join("stats.json");
    let mut child = smpsim()
        .args([
            "run",
            "-w",
            "stress",
            "--cores",
            "4",
            "--arg",
            "rounds=100000000",
        ])
        .arg("--stats")
        .arg(&stats)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("starts");
    let mut out = BufReader::new(child.stdout.take().expect("piped"));
    // The console is live: the guest's first line arrives while it runs.
    let mut first = String::new();
    out.read_line(&mut first).expect("reads");
    assert!(first.starts_with("(d0) "), "{first}");
    std::thread::sleep(Duration::from_millis(300));
    let kill = Command::new("kill")
        .args(["-INT", &child.id().to_string()])
        .status()
        .expect("kill runs");
    assert!(kill.success());
    let start = Instant::now();
    let mut rest = String::new();
    out.read_to_string(&mut rest).expect("reads");
    let status = child.wait().expect("exits");
    assert!(
        start.elapsed() < Duration::from_secs(60),
        "stopped promptly"
    );
    assert_eq!(status.code(), Some(130), "{rest}");
    assert!(rest.contains("---- smpsim run summary ----"), "{rest}");
    assert!(rest.contains("stopped      interrupted"), "{rest}");
    assert!(
        rest.contains("result       incomplete: interrupted"),
        "{rest}"
    );
    let json: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&stats).expect("stats written"))
            .expect("valid JSON");
    assert_eq!(json["stopped"], "interrupted");
    assert!(json["cycles"].as_u64().expect("cycles") > 0);
    assert!(json["stats"]["groups"]["core"].is_object());
    assert!(!json["console"].as_array().expect("console").is_empty());
}

/// Runs `smpsim args…` with `file` (if any) as a config written with
/// `toml`; expects exit status 2 and exactly one stderr line holding every
/// one of `want`, with no panic.
fn refused(args: &[&str], toml: Option<&str>, want: &[&str]) {
    let mut cmd = smpsim();
    cmd.args(args);
    if let Some(text) = toml {
        let path = temp_dir("bad").join(format!("{}.toml", want[0].len() + text.len()));
        std::fs::write(&path, text).expect("write");
        cmd.arg("-c").arg(&path);
    }
    let out = cmd.output().expect("runs");
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{args:?}: {err}");
    assert!(!err.contains("panicked"), "{err}");
    assert_eq!(err.lines().count(), 1, "one line: {err}");
    assert!(
        !err.contains("{ ") && !err.contains("(\""),
        "no Debug text: {err}"
    );
    for w in want {
        assert!(err.contains(w), "{args:?}: `{w}` not in {err}");
    }
    assert!(out.stdout.is_empty(), "nothing ran");
}

#[test]
fn quanta_and_limits_past_their_range_are_refused() {
    refused(
        &["run", "--quantum", "18446744073709551615"],
        None,
        &["quantum", "18446744073709551615", "allowed 1 to"],
    );
    refused(
        &["run"],
        Some("quantum = 1000000000000000000\n"),
        &[".toml:1", "quantum", "allowed 1 to"],
    );
    refused(
        &["run", "--max-cycles", "18446744073709551615"],
        None,
        &["max_cycles", "allowed 0"],
    );
}

#[test]
fn unwritable_outputs_are_refused_before_the_run() {
    let dir = temp_dir("out");
    let d = dir.to_str().expect("utf-8");
    let file = dir.join("plain");
    std::fs::write(&file, "x").expect("write");
    let under = file.join("s.json");
    let under = under.to_str().expect("utf-8");
    refused(
        &["run", "--stats", under],
        None,
        &["--stats", "cannot be created"],
    );
    refused(&["run", "--stats", d], None, &["--stats", "is a directory"]);
    refused(
        &["run", "--stats", "/proc/smpsim.json"],
        None,
        &["--stats", "cannot be written"],
    );
    let f = file.to_str().expect("utf-8");
    refused(
        &["sweep", "quantum", "-w", "hello", "--out", f],
        None,
        &["--out", "not a directory"],
    );
    refused(
        &["scale", "-w", "hello", "--out", f],
        None,
        &["--out", "not a directory"],
    );
}

#[test]
fn bad_config_values_name_file_line_and_key() {
    refused(
        &["run"],
        Some("[interconnect]\ntopology = \"crossbar\"\n[interconnect.crossbar]\nlatency = 0\n"),
        &[".toml:4", "interconnect.crossbar.latency", "at least 1"],
    );
    refused(
        &["run", "--model", "ooo"],
        Some("[ooo]\nrob_per_context = 0\n"),
        &[".toml:1", "key `ooo`"],
    );
    refused(
        &["run"],
        Some("[hierarchy]\nstore_buffer = 0\n"),
        &[".toml:2", "`hierarchy.store_buffer`"],
    );
    refused(
        &["run"],
        Some("memory_mib = 1\n"),
        &["memory", "frames wanted", "raise memory_mib"],
    );
}

#[test]
fn bad_workload_input_is_one_clear_line() {
    refused(
        &["run", "--arg", "iters=5"],
        None,
        &["`hello`", "takes no arguments"],
    );
    refused(
        &[
            "run", "-w", "spinlock", "--arg", "iters=5", "--arg", "iters=6",
        ],
        None,
        &["--arg iters given twice"],
    );
    refused(
        &["run", "-w", "interdomain", "--cores", "1"],
        None,
        &["2 domain(s) need at least 2 hardware contexts"],
    );
    refused(&["workloads", "nope"], None, &["unknown workload `nope`"]);
    refused(
        &["run", "-w", "ring", "--arg", "slots=3"],
        None,
        &[
            "--arg slots=3 is out of range",
            "a power of two 1..=4096",
            "the default, 64",
        ],
    );
    refused(
        &["run", "-w", "fault", "--arg", "mode=9"],
        None,
        &["--arg mode=9 is out of range", "allowed: 1..=6"],
    );
}

#[test]
fn ignored_settings_and_too_many_host_threads_warn() {
    let path = temp_dir("warn").join("ooo.toml");
    std::fs::write(&path, "cores = 1\n[ooo]\nrob_per_context = 64\n").expect("write");
    let out = smpsim()
        .args(["run", "--host-threads", "999", "--max-cycles", "1000", "-c"])
        .arg(&path)
        .output()
        .expect("runs");
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("ooo.toml:2: [ooo] is ignored"), "{err}");
    assert!(
        err.contains("--host-threads 999 asks for 999 threads"),
        "{err}"
    );
}

#[test]
fn a_cycle_limit_is_its_own_outcome_not_a_failure() {
    let out = smpsim()
        .args(["run", "--cores", "16", "--max-cycles", "5000"])
        .output()
        .expect("runs");
    let text = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(3), "{text}");
    assert!(
        text.contains("stopped      cycle limit (5000 cycles"),
        "{text}"
    );
    assert!(
        text.contains("incomplete: stopped at the cycle limit"),
        "{text}"
    );
    assert!(!text.contains("FAILED"), "{text}");
    assert!(
        text.contains("machine      default: 16 cores × 1 SMT"),
        "{text}"
    );
    assert!(text.contains("l3           hit rate"), "{text}");
}

#[test]
fn workloads_lists_arguments_and_describes_one() {
    let out = smpsim().arg("workloads").output().expect("runs");
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.contains(
            "args: items=1000 (1..=4294967296) batch=16 (1..=4096) slots=64 (a power of two 1..=4096)"
        ),
        "{text}"
    );
    assert!(text.contains("takes no arguments"), "{text}");
    let out = smpsim().args(["workloads", "ring"]).output().expect("runs");
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.contains("slots  default 64      allowed a power of two 1..=4096"),
        "{text}"
    );
}
