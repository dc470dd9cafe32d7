//! `smpsim scale`: host-thread scaling of one run, and a determinism check.
//!
//! # Owns
//! Running one workload on one machine with several host-thread counts:
//! host seconds, simulated MIPS, speedup against the first count and
//! parallel efficiency (speedup / threads actually used), and whether the
//! simulated results — the whole report without its `host` section — are
//! identical across the rows.
//!
//! # Invariants
//! The engine promises results independent of host threads, so every row
//! must be identical to the first; `identical: false` is a simulator bug
//! and the command then exits non-zero.

use crate::machine::{Machine, RunOptions};
use crate::plot::{self, Chart, Series};
use crate::sweep::common::{create_dir, csv, table, without_host, write, ExperimentArgs};
use serde::Serialize;
use smpsim_engine::HostThreads;
use std::process::ExitCode;

/// Arguments of `smpsim scale`.
#[derive(clap::Args, Debug, Clone)]
pub struct ScaleArgs {
    /// Machine, workload and output options.
    #[command(flatten)]
    pub common: ExperimentArgs,
    /// Host-thread counts, comma-separated (numbers or `per-core`); the
    /// first is the baseline.
    #[arg(long, value_delimiter = ',', default_value = "1,2,4")]
    pub host_threads: Vec<HostThreads>,
    /// Quantum in cycles (overrides the config).
    #[arg(long)]
    pub quantum: Option<u64>,
}

/// One host-thread count's run.
#[derive(Clone, Debug, Serialize, PartialEq)]
pub struct ScaleRow {
    /// Threads asked for.
    pub requested: String,
    /// Threads used (capped at the partition count).
    pub threads: usize,
    /// Whether the run succeeded.
    pub success: bool,
    /// Host wall-clock seconds.
    pub host_seconds: f64,
    /// Simulated MIPS.
    pub mips: f64,
    /// First row's host seconds / these.
    pub speedup: f64,
    /// Speedup / threads.
    pub efficiency: f64,
    /// Simulated cycles.
    pub cycles: u64,
    /// Whether the report without `host` equals the first row's.
    pub identical: bool,
}

/// A whole scaling run.
#[derive(Clone, Debug, Serialize, PartialEq)]
pub struct ScaleResult {
    /// Machine name.
    pub machine: String,
    /// Workload.
    pub workload: String,
    /// Cores of the machine.
    pub cores: u32,
    /// Whether every row is identical to the first.
    pub identical: bool,
    /// Rows, in the order given.
    pub rows: Vec<ScaleRow>,
    /// A signal stopped the command: `rows` holds the counts that finished
    /// before it (absent from the JSON otherwise).
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub interrupted: bool,
}

/// Runs `workload` on `cfg` once per host-thread count.
pub fn scale(
    cfg: &crate::machine::config::MachineConfig,
    workload: &str,
    opts: &RunOptions,
    threads: &[HostThreads],
) -> Result<ScaleResult, String> {
    if threads.is_empty() {
        return Err("--host-threads: give at least one count".into());
    }
    if threads.contains(&HostThreads::Count(0)) {
        return Err("--host-threads: 0 threads is not allowed; each must be at least 1".into());
    }
    let w = smpsim_workloads::find(workload).map_err(|e| e.to_string())?;
    let mut rows: Vec<ScaleRow> = Vec::new();
    let mut first: Option<(serde_json::Value, f64)> = None;
    for &t in threads {
        let o = RunOptions {
            host_threads: t,
            ..opts.clone()
        };
        let r = Machine::build(cfg, w, &o).map_err(|e| e.to_string())?.run();
        if r.stop == crate::machine::INTERRUPTED {
            break;
        }
        let sim = without_host(&r);
        let (base, base_s) = first.get_or_insert_with(|| (sim.clone(), r.host.seconds));
        let speedup = *base_s / r.host.seconds.max(1e-9);
        rows.push(ScaleRow {
            requested: t.to_string(),
            threads: r.host.threads,
            success: r.success,
            host_seconds: r.host.seconds,
            mips: r.host.mips,
            speedup,
            efficiency: speedup / r.host.threads.max(1) as f64,
            cycles: r.cycles,
            identical: sim == *base,
        });
    }
    if rows.is_empty() {
        return Err("interrupted before the first run finished".into());
    }
    Ok(ScaleResult {
        machine: cfg.name.clone(),
        workload: workload.to_owned(),
        cores: cfg.cores,
        identical: rows.iter().all(|r| r.identical),
        interrupted: rows.len() < threads.len(),
        rows,
    })
}

fn cells(r: &ScaleRow) -> Vec<String> {
    vec![
        r.requested.clone(),
        r.threads.to_string(),
        r.success.to_string(),
        format!("{:.6}", r.host_seconds),
        format!("{:.4}", r.mips),
        format!("{:.4}", r.speedup),
        format!("{:.4}", r.efficiency),
        r.cycles.to_string(),
        r.identical.to_string(),
    ]
}

const HEADER: [&str; 9] = [
    "requested",
    "threads",
    "success",
    "host_seconds",
    "mips",
    "speedup",
    "efficiency",
    "cycles",
    "identical",
];

/// The two figures, one panel each: speedup (with the ideal line) and
/// parallel efficiency.
fn svgs(res: &ScaleResult) -> (String, String) {
    let pts = |f: &dyn Fn(&ScaleRow) -> f64| -> Vec<(f64, f64)> {
        res.rows.iter().map(|r| (r.threads as f64, f(r))).collect()
    };
    let speed = Chart {
        title: format!(
            "{} on {} ({} cores): host-thread scaling",
            res.workload,
            res.machine.split(':').next().unwrap_or(&res.machine),
            res.cores
        ),
        x_label: "host threads".into(),
        y_label: "speedup".into(),
        series: vec![
            Series {
                name: "speedup".into(),
                points: pts(&|r| r.speedup),
            },
            Series {
                name: "ideal".into(),
                points: pts(&|r| r.threads as f64 / res.rows[0].threads.max(1) as f64),
            },
        ],
        ..Chart::default()
    };
    let eff = Chart {
        title: format!(
            "{} on {} cores: parallel efficiency (speedup / threads)",
            res.workload, res.cores
        ),
        x_label: "host threads".into(),
        y_label: "speedup / threads".into(),
        series: vec![Series {
            name: "efficiency".into(),
            points: pts(&|r| r.efficiency),
        }],
        ..Chart::default()
    };
    (plot::render(&[speed]), plot::render(&[eff]))
}

/// Runs the command.
pub fn run(a: &ScaleArgs) -> Result<ExitCode, String> {
    let cfg = a.common.machine_config(a.quantum)?;
    a.common.check()?;
    let dir = a.common.out_dir("scale");
    crate::outputs::check_dir(&dir, "--out")?;
    let interrupt =
        crate::interrupt::install().map_err(|e| format!("installing the Ctrl-C handler: {e}"))?;
    let opts = RunOptions {
        args: a.common.args.clone(),
        interrupt: Some(interrupt),
        ..RunOptions::default()
    };
    let res = scale(&cfg, &a.common.workload, &opts, &a.host_threads)?;
    create_dir(&dir)?;
    let header: Vec<String> = HEADER.iter().map(|s| s.to_string()).collect();
    let rows: Vec<Vec<String>> = res.rows.iter().map(cells).collect();
    let text = table(&header, &rows) + &format!("identical: {}\n", res.identical);
    print!("{text}");
    let json = serde_json::to_string_pretty(&res).map_err(|e| e.to_string())? + "\n";
    let (speedup_svg, efficiency_svg) = svgs(&res);
    let paths = [
        write(&dir, "scale.csv", &csv(&header, &rows))?,
        write(&dir, "scale.json", &json)?,
        write(&dir, "scale-speedup.svg", &speedup_svg)?,
        write(&dir, "scale-efficiency.svg", &efficiency_svg)?,
        write(&dir, "scale.txt", &text)?,
    ];
    for p in paths {
        println!("wrote {}", p.display());
    }
    if res.interrupted {
        println!(
            "interrupted: {} of {} host-thread counts run",
            res.rows.len(),
            a.host_threads.len()
        );
        return Ok(ExitCode::from(crate::interrupt::EXIT_INTERRUPTED));
    }
    if !res.identical {
        println!("simulated results differ between host-thread counts");
        return Ok(ExitCode::FAILURE);
    }
    if res.rows.iter().any(|r| !r.success) {
        println!("a run did not succeed");
        return Ok(ExitCode::FAILURE);
    }
    Ok(ExitCode::SUCCESS)
}
