//! `smpsim sweep quantum`: how the quantum trades host speed for accuracy.
//!
//! # Owns
//! Running one workload on one machine at several quanta and comparing each
//! run with the run at the smallest quantum (the most accurate): host
//! seconds, simulated MIPS, speedup, and the relative error of the main
//! figures — total cycles, IPC, and the mean and p99 of every latency
//! histogram of the core group, of `hypervisor.ipi_latency` and of the
//! guest-measured `hypervisor.guest_latency` histograms (`guest.<name>`).
//!
//! # Invariants
//! Rows are in ascending quantum order; the first row is the baseline, so
//! its errors are all 0 and its speedup is 1. A quantum is *lax* when it
//! does not divide the hypervisor service period: the hypervisor then
//! ticks at the first barrier past each multiple of the period rather than
//! exactly on it (see [`crate::machine::hyper`]).
//!
//! # Errors
//! Bad configs, unknown workloads and a quantum of 0 are `Err` before any
//! run starts.

pub mod common;

use self::common::{create_dir, csv, percent, rel_error, table, write, ExperimentArgs};
use crate::machine::config::MachineConfig;
use crate::machine::{Machine, RunOptions, RunReport, INTERRUPTED};
use crate::plot::{self, Chart, Series};
use serde::Serialize;
use smpsim_engine::HostThreads;
use std::collections::BTreeMap;
use std::process::ExitCode;

/// Arguments of `smpsim sweep quantum`.
#[derive(clap::Args, Debug, Clone)]
pub struct QuantumArgs {
    /// Machine, workload and output options.
    #[command(flatten)]
    pub common: ExperimentArgs,
    /// Quanta to run, comma-separated (cycles, each at least 1).
    #[arg(long, value_delimiter = ',', default_value = "1,10,100,1000,10000")]
    pub values: Vec<u64>,
    /// Host threads for every run: a number or `per-core`.
    #[arg(long, default_value = "1")]
    pub host_threads: HostThreads,
}

/// One quantum's run, compared with the baseline.
#[derive(Clone, Debug, Serialize, PartialEq)]
pub struct SweepRow {
    /// The quantum.
    pub quantum: u64,
    /// Whether the quantum does not divide the service period.
    pub lax: bool,
    /// Whether the quantum exceeds the lookahead (messages with a shorter
    /// latency then wait for the next epoch: not exact either).
    pub above_lookahead: bool,
    /// Whether the run succeeded.
    pub success: bool,
    /// Host wall-clock seconds.
    pub host_seconds: f64,
    /// Simulated MIPS.
    pub mips: f64,
    /// Baseline host seconds / these host seconds.
    pub speedup: f64,
    /// Simulated cycles.
    pub cycles: u64,
    /// Instructions retired.
    pub instructions: u64,
    /// The main figures by name (`cycles`, `ipc`, `<histogram>.mean`,
    /// `<histogram>.p99`, `ipi_latency.*`, `guest.<name>.*`).
    pub figures: BTreeMap<String, f64>,
    /// Relative error of each figure against the baseline.
    pub errors: BTreeMap<String, f64>,
    /// The largest error and its figure.
    pub max_error: (String, f64),
}

/// A whole sweep.
#[derive(Clone, Debug, Serialize, PartialEq)]
pub struct SweepResult {
    /// Machine name.
    pub machine: String,
    /// Workload.
    pub workload: String,
    /// The machine's lookahead.
    pub lookahead: u64,
    /// Hypervisor service period with the configured settings (with the
    /// default setting it depends on the quantum; this is the smallest's).
    pub service_period: u64,
    /// Rows, smallest quantum first.
    pub rows: Vec<SweepRow>,
    /// A signal stopped the sweep: `rows` holds the quanta that finished
    /// before it (absent from the JSON otherwise).
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub interrupted: bool,
}

/// The main figures of a report.
pub fn figures(r: &RunReport) -> BTreeMap<String, f64> {
    let mut f = BTreeMap::new();
    f.insert("cycles".to_owned(), r.cycles as f64);
    f.insert(
        "ipc".to_owned(),
        r.instructions as f64 / r.cycles.max(1) as f64,
    );
    let mut hist = |name: &str, h: &smpsim_engine::HistogramReport| {
        f.insert(
            format!("{name}.mean"),
            if h.count > 0 { h.mean } else { 0.0 },
        );
        f.insert(format!("{name}.p99"), h.p99 as f64);
    };
    if let Some(core) = r.stats.groups.get("core") {
        for (name, h) in &core.histograms {
            hist(name, h);
        }
    }
    hist("ipi_latency", &r.hypervisor.ipi_latency);
    for (name, h) in &r.hypervisor.guest_latency {
        hist(&format!("guest.{name}"), h);
    }
    f
}

/// Runs `workload` on `cfg` at every quantum in `values` (sorted, deduplicated).
pub fn sweep_quantum(
    cfg: &MachineConfig,
    workload: &str,
    opts: &RunOptions,
    values: &[u64],
) -> Result<SweepResult, String> {
    let mut qs = values.to_vec();
    qs.sort_unstable();
    qs.dedup();
    if qs.is_empty() {
        return Err("--values: give at least one quantum".into());
    }
    if qs[0] == 0 {
        return Err(
            "--values: a quantum of 0 is not allowed; each must be at least 1 cycle".into(),
        );
    }
    let w = smpsim_workloads::find(workload).map_err(|e| e.to_string())?;
    let mut reports = Vec::new();
    let mut lookahead = 0;
    for &q in &qs {
        let c = MachineConfig {
            quantum: Some(q),
            ..cfg.clone()
        };
        let m = Machine::build(&c, w, opts).map_err(|e| e.to_string())?;
        lookahead = m.lookahead().unwrap_or(q);
        let r = m.run();
        if r.stop == INTERRUPTED {
            // A run cut short is no point of the curve.
            break;
        }
        reports.push(r);
    }
    let interrupted = reports.len() < qs.len();
    let Some(base) = reports.first() else {
        return Err("interrupted before the first quantum's run finished".into());
    };
    let base_fig = figures(base);
    let rows = reports
        .iter()
        .map(|r| row(r, base, &base_fig, lookahead))
        .collect();
    Ok(SweepResult {
        machine: cfg.name.clone(),
        workload: workload.to_owned(),
        lookahead,
        service_period: base.service_period,
        rows,
        interrupted,
    })
}

fn row(
    r: &RunReport,
    base: &RunReport,
    base_fig: &BTreeMap<String, f64>,
    lookahead: u64,
) -> SweepRow {
    let figs = figures(r);
    let errors: BTreeMap<String, f64> = figs
        .iter()
        .map(|(k, v)| {
            let b = base_fig.get(k).copied().unwrap_or(0.0);
            (k.clone(), rel_error(*v, b))
        })
        .collect();
    let max_error = errors.iter().fold(("-".to_owned(), 0.0), |acc, (k, e)| {
        if *e > acc.1 {
            (k.clone(), *e)
        } else {
            acc
        }
    });
    SweepRow {
        quantum: r.quantum,
        lax: !r.service_period.is_multiple_of(r.quantum),
        above_lookahead: r.quantum > lookahead,
        success: r.success,
        host_seconds: r.host.seconds,
        mips: r.host.mips,
        speedup: base.host.seconds / r.host.seconds.max(1e-9),
        cycles: r.cycles,
        instructions: r.instructions,
        figures: figs,
        errors,
        max_error,
    }
}

fn csv_text(res: &SweepResult) -> String {
    let names: Vec<String> = res.rows[0].errors.keys().cloned().collect();
    let mut header: Vec<String> = [
        "quantum",
        "lax",
        "above_lookahead",
        "success",
        "host_seconds",
        "mips",
        "speedup",
        "cycles",
        "instructions",
        "ipc",
        "max_error",
        "max_error_figure",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    header.extend(names.iter().map(|n| format!("err:{n}")));
    let rows: Vec<Vec<String>> = res
        .rows
        .iter()
        .map(|r| {
            let mut v = vec![
                r.quantum.to_string(),
                r.lax.to_string(),
                r.above_lookahead.to_string(),
                r.success.to_string(),
                format!("{:.6}", r.host_seconds),
                format!("{:.4}", r.mips),
                format!("{:.4}", r.speedup),
                r.cycles.to_string(),
                r.instructions.to_string(),
                format!("{:.6}", r.figures["ipc"]),
                format!("{:.6}", r.max_error.1),
                r.max_error.0.clone(),
            ];
            v.extend(names.iter().map(|n| format!("{:.6}", r.errors[n])));
            v
        })
        .collect();
    csv(&header, &rows)
}

/// `exact` (Q ≤ lookahead and Q divides the service period: equals
/// lockstep), `lax` (Q does not divide the period) or `Q>L` (Q divides it
/// but exceeds the lookahead).
fn mode(r: &SweepRow) -> &'static str {
    match (r.lax, r.above_lookahead) {
        (true, _) => "lax",
        (false, true) => "Q>L",
        (false, false) => "exact",
    }
}

/// The printed table.
pub fn table_text(res: &SweepResult) -> String {
    let header: Vec<String> = [
        "quantum",
        "mode",
        "ok",
        "host s",
        "MIPS",
        "speedup",
        "cycles",
        "IPC",
        "err cycles",
        "err IPC",
        "max err",
        "(figure)",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    let rows: Vec<Vec<String>> = res
        .rows
        .iter()
        .map(|r| {
            vec![
                r.quantum.to_string(),
                mode(r).into(),
                if r.success { "yes" } else { "NO" }.into(),
                format!("{:.3}", r.host_seconds),
                format!("{:.2}", r.mips),
                format!("{:.2}", r.speedup),
                r.cycles.to_string(),
                format!("{:.4}", r.figures["ipc"]),
                percent(r.errors["cycles"]),
                percent(r.errors["ipc"]),
                percent(r.max_error.1),
                r.max_error.0.clone(),
            ]
        })
        .collect();
    table(&header, &rows)
}

/// The sweep's figures: host speedup, and relative error on a log axis
/// (errors span from 0.01% to thousands of %), both with the lookahead
/// marked: quanta at or left of it are exact, those right of it lax.
fn svgs(res: &SweepResult) -> [(&'static str, String); 2] {
    let pts = |f: &dyn Fn(&SweepRow) -> f64| -> Vec<(f64, f64)> {
        res.rows.iter().map(|r| (r.quantum as f64, f(r))).collect()
    };
    let machine = res.machine.split(':').next().unwrap_or(&res.machine);
    let markers = vec![plot::Marker {
        x: res.lookahead as f64,
        label: format!(
            "lookahead {}: exact at or left, lax (shaded) right",
            res.lookahead
        ),
        shade_right: true,
    }];
    let speed = Chart {
        title: format!(
            "{} on {machine}: host speedup against the quantum",
            res.workload
        ),
        x_label: "quantum (cycles, log scale)".into(),
        y_label: "speedup over the smallest quantum".into(),
        log_x: true,
        series: vec![Series {
            name: "speedup".into(),
            points: pts(&|r| r.speedup),
        }],
        markers: markers.clone(),
        ..Chart::default()
    };
    let err = Chart {
        title: format!(
            "{} on {machine}: error against the smallest quantum",
            res.workload
        ),
        x_label: "quantum (cycles, log scale)".into(),
        y_label: "relative error (%, log scale)".into(),
        log_x: true,
        log_y: true,
        series: vec![
            Series {
                name: "cycles".into(),
                points: pts(&|r| 100.0 * r.errors["cycles"]),
            },
            Series {
                name: "ipc".into(),
                points: pts(&|r| 100.0 * r.errors["ipc"]),
            },
            Series {
                name: "max error".into(),
                points: pts(&|r| 100.0 * r.max_error.1),
            },
        ],
        markers,
        note: "errors of 0 (every exact quantum) cannot be drawn on a log axis".into(),
        ..Chart::default()
    };
    [
        ("sweep-speedup.svg", plot::render(&[speed])),
        ("sweep-error.svg", plot::render(&[err])),
    ]
}

/// Runs the command.
pub fn run_quantum(a: &QuantumArgs) -> Result<ExitCode, String> {
    let cfg = a.common.machine_config(None)?;
    a.common.check()?;
    if let Some(w) = common::host_threads_warning(a.host_threads, Some(cfg.cores)) {
        eprintln!("smpsim: warning: {w}");
    }
    let dir = a.common.out_dir("sweep");
    crate::outputs::check_dir(&dir, "--out")?;
    let interrupt =
        crate::interrupt::install().map_err(|e| format!("installing the Ctrl-C handler: {e}"))?;
    let opts = RunOptions {
        args: a.common.args.clone(),
        host_threads: a.host_threads,
        interrupt: Some(interrupt),
        ..RunOptions::default()
    };
    let res = sweep_quantum(&cfg, &a.common.workload, &opts, &a.values)?;
    create_dir(&dir)?;
    let table = table_text(&res);
    print!("{table}");
    println!(
        "lookahead {} cycles; service period {} cycles at the smallest quantum \
         (exact: Q ≤ lookahead and Q divides the period; lax: Q does not divide it)",
        res.lookahead, res.service_period
    );
    let json = serde_json::to_string_pretty(&res).map_err(|e| e.to_string())? + "\n";
    let paths = [
        write(&dir, "sweep.csv", &csv_text(&res))?,
        write(&dir, "sweep.json", &json)?,
        write(&dir, "sweep.txt", &table)?,
    ];
    let [(n1, s1), (n2, s2)] = svgs(&res);
    let paths = paths
        .into_iter()
        .chain([write(&dir, n1, &s1)?, write(&dir, n2, &s2)?]);
    for p in paths {
        println!("wrote {}", p.display());
    }
    if res.interrupted {
        println!(
            "interrupted: {} of {} quanta run",
            res.rows.len(),
            a.values.len()
        );
        return Ok(ExitCode::from(crate::interrupt::EXIT_INTERRUPTED));
    }
    let failed = res.rows.iter().filter(|r| !r.success).count();
    if failed > 0 {
        println!("{failed} run(s) did not succeed");
        return Ok(ExitCode::FAILURE);
    }
    Ok(ExitCode::SUCCESS)
}
