//! The experiment commands (`sweep quantum`, `scale`, `report`) on the
//! default machine with small workloads: outputs well formed, baselines
//! exact, host-thread rows identical.

use smpsim::machine::config::MachineConfig;
use smpsim::machine::RunOptions;
use std::path::{Path, PathBuf};
use std::process::Command;

fn temp_dir(name: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("smpsim-exp-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).expect("temp dir");
    d
}

fn smpsim(args: &[&str], dir: &Path) -> String {
    let out = Command::new(env!("CARGO_BIN_EXE_smpsim"))
        .args(args)
        .current_dir(dir)
        .output()
        .expect("runs");
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        out.status.success(),
        "{args:?}: {text}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    text
}

fn read(p: &Path) -> String {
    std::fs::read_to_string(p).unwrap_or_else(|e| panic!("{}: {e}", p.display()))
}

/// Header and rows of a CSV file (no quoted cells expected).
fn csv(p: &Path) -> (Vec<String>, Vec<Vec<String>>) {
    let text = read(p);
    let mut lines = text
        .lines()
        .map(|l| l.split(',').map(str::to_owned).collect::<Vec<_>>());
    let header = lines.next().expect("a header line");
    let rows: Vec<Vec<String>> = lines.collect();
    for r in &rows {
        assert_eq!(r.len(), header.len(), "{}: {r:?}", p.display());
    }
    (header, rows)
}

fn json(p: &Path) -> serde_json::Value {
    serde_json::from_str(&read(p)).unwrap_or_else(|e| panic!("{}: {e}", p.display()))
}

fn svg(p: &Path, series: &[&str]) {
    let s = read(p);
    assert!(s.starts_with("<svg"), "{}", p.display());
    assert!(s.trim_end().ends_with("</svg>"), "{}", p.display());
    for name in series {
        assert!(
            s.contains(&format!("data-series=\"{name}\"")),
            "{}: no series {name}",
            p.display()
        );
    }
}

#[test]
fn sweep_quantum_writes_csv_json_svg_with_an_exact_baseline() {
    let dir = temp_dir("sweep");
    let out = smpsim(
        &[
            "sweep", "quantum", "-w", "hello", "--cores", "2", "--values", "64,1,16", "--out", "o",
        ],
        &dir,
    );
    assert!(out.contains("quantum") && out.contains("speedup"), "{out}");
    let (header, rows) = csv(&dir.join("o/sweep.csv"));
    for col in [
        "quantum",
        "lax",
        "above_lookahead",
        "host_seconds",
        "mips",
        "speedup",
        "cycles",
        "ipc",
        "err:cycles",
        "err:ipc",
        "err:load_to_use.l1.mean",
        "err:load_to_use.l1.p99",
        "err:ipi_latency.p99",
    ] {
        assert!(
            header.iter().any(|h| h == col),
            "no column {col}: {header:?}"
        );
    }
    let q: Vec<&str> = rows.iter().map(|r| r[0].as_str()).collect();
    assert_eq!(q, ["1", "16", "64"], "ascending quanta");
    let err_cols: Vec<usize> = (0..header.len())
        .filter(|&i| header[i].starts_with("err:"))
        .collect();
    for &i in &err_cols {
        assert_eq!(
            rows[0][i].parse::<f64>().expect("number"),
            0.0,
            "{}",
            header[i]
        );
    }
    let j = json(&dir.join("o/sweep.json"));
    let jrows = j["rows"].as_array().expect("rows");
    assert_eq!(jrows.len(), 3);
    assert_eq!(jrows[0]["speedup"].as_f64(), Some(1.0));
    assert!(jrows[0]["errors"]
        .as_object()
        .expect("errors")
        .values()
        .all(|e| e.as_f64() == Some(0.0)));
    assert!(jrows.iter().all(|r| r["success"] == true));
    assert!(jrows
        .iter()
        .all(|r| r["mips"].as_f64().expect("mips") > 0.0));
    svg(&dir.join("o/sweep-speedup.svg"), &["speedup"]);
    svg(
        &dir.join("o/sweep-error.svg"),
        &["cycles", "ipc", "max error"],
    );
}

#[test]
fn quanta_up_to_the_lookahead_have_zero_error() {
    let cfg = MachineConfig {
        cores: 2,
        ..MachineConfig::default()
    };
    let res = smpsim::sweep::sweep_quantum(&cfg, "hello", &RunOptions::default(), &[4, 2, 1, 10])
        .expect("sweeps");
    assert_eq!(res.lookahead, 4);
    let q: Vec<u64> = res.rows.iter().map(|r| r.quantum).collect();
    assert_eq!(q, [1, 2, 4, 10]);
    for r in &res.rows[..3] {
        assert!(!r.lax && !r.above_lookahead, "{}", r.quantum);
        assert!(
            r.errors.values().all(|e| *e == 0.0),
            "quantum {} ≤ lookahead must match lockstep: {:?}",
            r.quantum,
            r.errors
        );
    }
    // 10 does not divide the 64-cycle service period.
    assert!(res.rows[3].lax && res.rows[3].above_lookahead);
    assert_eq!(res.service_period, 64);
}

#[test]
fn scale_rows_are_identical_across_host_threads() {
    let dir = temp_dir("scale");
    let out = smpsim(
        &[
            "scale",
            "-w",
            "spinlock",
            "--cores",
            "4",
            "--host-threads",
            "1,2,4",
            "--out",
            "o",
        ],
        &dir,
    );
    assert!(out.contains("identical: true"), "{out}");
    let (header, rows) = csv(&dir.join("o/scale.csv"));
    assert_eq!(
        header,
        [
            "requested",
            "threads",
            "success",
            "host_seconds",
            "mips",
            "speedup",
            "efficiency",
            "cycles",
            "identical"
        ]
    );
    assert_eq!(rows.len(), 3);
    assert!(rows.iter().all(|r| r[8] == "true" && r[2] == "true"));
    assert!(rows.iter().all(|r| r[7] == rows[0][7]), "same cycles");
    let threads: Vec<&str> = rows.iter().map(|r| r[1].as_str()).collect();
    assert_eq!(threads, ["1", "2", "4"]);
    let j = json(&dir.join("o/scale.json"));
    assert_eq!(j["identical"], true);
    assert_eq!(j["rows"][0]["speedup"].as_f64(), Some(1.0));
    assert_eq!(j["rows"][0]["efficiency"].as_f64(), Some(1.0));
    svg(&dir.join("o/scale-speedup.svg"), &["speedup", "ideal"]);
    svg(&dir.join("o/scale-efficiency.svg"), &["efficiency"]);
    assert!(!dir.join("o/scale.svg").exists(), "one panel per figure");
}

#[test]
fn report_tables_every_histogram_and_plots_cdfs() {
    let dir = temp_dir("report");
    smpsim(
        &[
            "run",
            "-w",
            "ipi-pingpong",
            "--cores",
            "2",
            "--stats",
            "s.json",
        ],
        &dir,
    );
    let out = smpsim(&["report", "s.json", "--out", "r"], &dir);
    let stats = json(&dir.join("s.json"));
    // Every histogram of the core group appears for the group and each core.
    let names = stats["stats"]["groups"]["core"]["histograms"]
        .as_object()
        .expect("core histograms");
    for (name, h) in names {
        let row = out
            .lines()
            .find(|l| l.starts_with("group:core") && l.split_whitespace().nth(1) == Some(name))
            .unwrap_or_else(|| panic!("no row for {name}:\n{out}"));
        let cells: Vec<&str> = row.split_whitespace().collect();
        assert_eq!(cells[3], h["count"].to_string(), "{row}");
        assert_eq!(cells[5], h["p50"].to_string(), "{row}");
        assert_eq!(cells[9], h["max"].to_string(), "{row}");
        for core in ["core0", "core1"] {
            assert!(
                out.lines()
                    .any(|l| l.starts_with(core) && l.contains(name.as_str())),
                "{core} {name}"
            );
        }
    }
    let ipi = &stats["hypervisor"]["ipi_latency"];
    assert!(
        ipi["count"].as_u64().expect("count") > 0,
        "ping-pong sends IPIs"
    );
    assert!(out
        .lines()
        .any(|l| l.starts_with("hypervisor") && l.contains("ipi_latency")));
    assert!(out.contains("== per core =="), "{out}");
    let l1d = out
        .lines()
        .find(|l| l.starts_with("core ") && l.contains(" l1d "))
        .unwrap_or_else(|| panic!("no l1d level row:\n{out}"));
    let hits = stats["stats"]["groups"]["core"]["counters"]["l1d.hits"].to_string();
    assert!(l1d.contains(&hits), "{l1d} vs {hits}");
    svg(
        &dir.join("r/cdf-core-load_to_use.l1.svg"),
        &["all core", "core0", "core1"],
    );
    svg(
        &dir.join("r/cdf-hypervisor-ipi_latency.svg"),
        &["ipi_latency"],
    );
    let rtt = &stats["hypervisor"]["guest_latency"]["evtchn_rtt"];
    assert!(
        rtt["count"].as_u64().expect("count") > 0,
        "ping-pong times round trips"
    );
    let row = out
        .lines()
        .find(|l| l.starts_with("guest") && l.contains("evtchn_rtt"))
        .unwrap_or_else(|| panic!("no guest row:\n{out}"));
    assert_eq!(
        row.split_whitespace().nth(3),
        Some(rtt["count"].to_string().as_str())
    );
    svg(&dir.join("r/cdf-guest-evtchn_rtt.svg"), &["evtchn_rtt"]);
    assert!(read(&dir.join("r/report.txt")).contains("== latency histograms =="));
}

#[test]
fn cdfs_end_at_one() {
    let dir = temp_dir("cdf");
    smpsim(
        &["run", "-w", "spinlock", "--cores", "2", "--stats", "s.json"],
        &dir,
    );
    let j = json(&dir.join("s.json"));
    let hs = smpsim::report::histograms(&j);
    let parts = j["stats"]["partitions"].as_array().expect("partitions");
    let per_part: usize = parts
        .iter()
        .map(|p| p["histograms"].as_object().expect("histograms").len())
        .sum();
    let per_group: usize = j["stats"]["groups"]
        .as_object()
        .expect("groups")
        .values()
        .map(|g| g["histograms"].as_object().expect("histograms").len())
        .sum();
    let guest = j["hypervisor"]["guest_latency"]
        .as_object()
        .expect("guest latencies")
        .len();
    assert_eq!(hs.len(), per_part + per_group + 1 + guest);
    for h in hs.iter().filter(|h| h.count > 0) {
        let last = h.cdf.last().expect("non-empty").1;
        assert!((last - 1.0).abs() < 1e-12, "{} {}: {last}", h.scope, h.name);
        assert!(h
            .cdf
            .windows(2)
            .all(|w| w[0].0 < w[1].0 && w[0].1 <= w[1].1));
    }
}
