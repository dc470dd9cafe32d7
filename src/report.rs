//! `smpsim report`: tables and plots from a statistics JSON file written by
//! `smpsim run --stats`.
//!
//! # Owns
//! Reading the JSON (as untyped JSON, so reports of older or newer runs
//! still read), and producing: every latency histogram — per group, per
//! partition, and `hypervisor.ipi_latency` — as percentiles (p50, p90, p99,
//! p99.9, max) in a text table and as CDF plots (from each histogram's
//! `buckets`), and the guests' own `hypervisor.guest_latency` histograms
//! (scope `guest`); a per-core table of instructions and cache hits and misses;
//! a per-level table of hits, misses and hit rate for every counter pair
//! `<level>.hits` / `<level>.misses` in every group.
//!
//! # Invariants
//! Output is a pure function of the JSON. Empty histograms are listed in
//! the table with count 0 and left out of the plots.

use crate::machine::config::MachineConfig;
use crate::plot::{self, Chart, Series};
use crate::sweep::common::{create_dir, table, write};
use serde_json::Value;
use smpsim_uncore::config::Protocol;
use smpsim_uncore::interconnect::TopologyKind;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

/// Arguments of `smpsim report`.
#[derive(clap::Args, Debug, Clone)]
pub struct ReportArgs {
    /// Statistics JSON written by `smpsim run --stats`.
    pub stats: PathBuf,
    /// Output directory (default `./out/report-<file stem>`).
    #[arg(long)]
    pub out: Option<PathBuf>,
}

/// One histogram, located.
#[derive(Clone, Debug, PartialEq)]
pub struct Hist {
    /// `group:<name>`, a partition name, `hypervisor` or `guest`.
    pub scope: String,
    /// Histogram name.
    pub name: String,
    /// Unit.
    pub unit: String,
    /// Values recorded.
    pub count: u64,
    /// Percentiles p50, p90, p99, p99.9 and the maximum.
    pub pct: [u64; 5],
    /// Mean.
    pub mean: f64,
    /// `(value, cumulative fraction)` per bucket.
    pub cdf: Vec<(f64, f64)>,
}

fn u(v: &Value, k: &str) -> u64 {
    v.get(k).and_then(Value::as_u64).unwrap_or(0)
}

fn hist(scope: &str, name: &str, v: &Value) -> Hist {
    let count = u(v, "count");
    let mut cum = 0u64;
    let buckets = v.get("buckets").and_then(Value::as_array);
    let cdf = buckets
        .into_iter()
        .flatten()
        .filter_map(|b| {
            let value = b.get(0)?.as_u64()?;
            cum += b.get(1)?.as_u64()?;
            Some((value as f64, cum as f64 / count.max(1) as f64))
        })
        .collect();
    Hist {
        scope: scope.to_owned(),
        name: name.to_owned(),
        unit: v
            .get("unit")
            .and_then(Value::as_str)
            .unwrap_or("")
            .to_owned(),
        count,
        pct: [
            u(v, "p50"),
            u(v, "p90"),
            u(v, "p99"),
            u(v, "p999"),
            u(v, "max"),
        ],
        mean: v.get("mean").and_then(Value::as_f64).unwrap_or(0.0),
        cdf,
    }
}

fn hists_of(scope: &str, section: &Value, out: &mut Vec<Hist>) {
    if let Some(m) = section.get("histograms").and_then(Value::as_object) {
        for (name, h) in m {
            out.push(hist(scope, name, h));
        }
    }
}

/// Every histogram of a report: groups, then partitions, then the
/// hypervisor's IPI latency, then the guest-measured latencies.
pub fn histograms(j: &Value) -> Vec<Hist> {
    let mut out = Vec::new();
    let stats = &j["stats"];
    if let Some(groups) = stats.get("groups").and_then(Value::as_object) {
        for (g, sec) in groups {
            hists_of(&format!("group:{g}"), sec, &mut out);
        }
    }
    for p in stats
        .get("partitions")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
    {
        let name = p.get("name").and_then(Value::as_str).unwrap_or("?");
        hists_of(name, p, &mut out);
    }
    if let Some(ipi) = j.pointer("/hypervisor/ipi_latency") {
        out.push(hist("hypervisor", "ipi_latency", ipi));
    }
    if let Some(g) = j
        .pointer("/hypervisor/guest_latency")
        .and_then(Value::as_object)
    {
        for (name, h) in g {
            out.push(hist("guest", name, h));
        }
    }
    out
}

/// The percentile table.
pub fn histogram_table(hs: &[Hist]) -> String {
    let header: Vec<String> = [
        "scope",
        "histogram",
        "unit",
        "count",
        "mean",
        "p50",
        "p90",
        "p99",
        "p99.9",
        "max",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    let rows: Vec<Vec<String>> = hs
        .iter()
        .map(|h| {
            let mut r = vec![
                h.scope.clone(),
                h.name.clone(),
                h.unit.clone(),
                h.count.to_string(),
                format!("{:.1}", h.mean),
            ];
            r.extend(h.pct.iter().map(u64::to_string));
            r
        })
        .collect();
    table(&header, &rows)
}

fn counter(sec: &Value, name: &str) -> Option<u64> {
    sec.get("counters")?.get(name)?.as_u64()
}

fn rate(hits: u64, misses: u64) -> String {
    match hits + misses {
        0 => "-".into(),
        t => format!("{:.2}%", 100.0 * hits as f64 / t as f64),
    }
}

/// Cache levels of a section: every `X` with both `X.hits` and `X.misses`.
fn levels(sec: &Value) -> Vec<String> {
    let Some(m) = sec.get("counters").and_then(Value::as_object) else {
        return Vec::new();
    };
    m.keys()
        .filter_map(|k| k.strip_suffix(".hits"))
        .filter(|l| m.contains_key(&format!("{l}.misses")))
        .map(str::to_owned)
        .collect()
}

/// Hits, misses and hit rate per level, summed per group.
pub fn level_table(j: &Value) -> String {
    let header: Vec<String> = ["group", "level", "hits", "misses", "hit rate"]
        .iter()
        .map(|s| s.to_string())
        .collect();
    let mut rows = Vec::new();
    if let Some(groups) = j.pointer("/stats/groups").and_then(Value::as_object) {
        for (g, sec) in groups {
            for l in levels(sec) {
                let h = counter(sec, &format!("{l}.hits")).unwrap_or(0);
                let m = counter(sec, &format!("{l}.misses")).unwrap_or(0);
                rows.push(vec![g.clone(), l, h.to_string(), m.to_string(), rate(h, m)]);
            }
        }
    }
    table(&header, &rows)
}

/// Per core partition: instructions, busy cycles, and hits/misses/hit rate
/// of each level.
pub fn core_table(j: &Value) -> String {
    let parts: Vec<&Value> = j
        .pointer("/stats/partitions")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter(|p| p.get("group").and_then(Value::as_str) == Some("core"))
        .collect();
    let lv = parts.first().map(|p| levels(p)).unwrap_or_default();
    let mut header: Vec<String> = vec!["core".into(), "instructions".into(), "busy".into()];
    for l in &lv {
        header.extend([
            format!("{l} hits"),
            format!("{l} misses"),
            format!("{l} rate"),
        ]);
    }
    let rows: Vec<Vec<String>> = parts
        .iter()
        .map(|p| {
            let c = |n: &str| counter(p, n).unwrap_or(0);
            let mut r = vec![
                p.get("name").and_then(Value::as_str).unwrap_or("?").into(),
                c("core.instructions").to_string(),
                c("core.busy_cycles").to_string(),
            ];
            for l in &lv {
                let (h, m) = (c(&format!("{l}.hits")), c(&format!("{l}.misses")));
                r.extend([h.to_string(), m.to_string(), rate(h, m)]);
            }
            r
        })
        .collect();
    table(&header, &rows)
}

/// Most partitions drawn per chart (besides the group's union).
const MAX_PARTITION_SERIES: usize = 8;

/// CDF figures, one per histogram: for each group's histogram the group's
/// union and up to `MAX_PARTITION_SERIES` partitions (`cdf-GROUP-NAME.svg`),
/// and one per hypervisor and guest-measured latency
/// (`cdf-hypervisor-NAME.svg`, `cdf-guest-NAME.svg`). Returns
/// `(file name, svg)`.
pub fn cdf_svgs(hs: &[Hist], j: &Value) -> Vec<(String, String)> {
    let group_of = |scope: &str| -> Option<String> {
        j.pointer("/stats/partitions")?
            .as_array()?
            .iter()
            .find(|p| p.get("name").and_then(Value::as_str) == Some(scope))?
            .get("group")?
            .as_str()
            .map(str::to_owned)
    };
    let mut out = Vec::new();
    for total in hs.iter().filter(|h| h.count > 0) {
        let (file, series) = if let Some(g) = total.scope.strip_prefix("group:") {
            let mut series = vec![Series {
                name: format!("all {g}"),
                points: total.cdf.clone(),
            }];
            series.extend(
                hs.iter()
                    .filter(|h| h.name == total.name && h.count > 0)
                    .filter(|h| group_of(&h.scope).as_deref() == Some(g))
                    .take(MAX_PARTITION_SERIES)
                    .map(|h| Series {
                        name: h.scope.clone(),
                        points: h.cdf.clone(),
                    }),
            );
            (format!("cdf-{g}-{}.svg", total.name), series)
        } else if total.scope == "hypervisor" || total.scope == "guest" {
            let series = vec![Series {
                name: total.name.clone(),
                points: total.cdf.clone(),
            }];
            (format!("cdf-{}-{}.svg", total.scope, total.name), series)
        } else {
            continue;
        };
        let scope = total.scope.trim_start_matches("group:");
        let chart = cdf_chart(&format!("{scope}: {}", total.name), total, series);
        out.push((file, plot::render(&[chart])));
    }
    out
}

/// A step CDF with the p50, p90 and p99 of `h` marked.
fn cdf_chart(title: &str, h: &Hist, series: Vec<Series>) -> Chart {
    let markers = [("p50", h.pct[0]), ("p90", h.pct[1]), ("p99", h.pct[2])]
        .into_iter()
        .map(|(p, v)| plot::Marker {
            x: v as f64,
            label: format!("{p} {v}"),
            shade_right: false,
        })
        .collect();
    Chart {
        title: format!("CDF of {title} ({} values)", h.count),
        x_label: format!("{} (log scale)", h.unit),
        y_label: "fraction of values ≤ x".into(),
        log_x: true,
        series,
        step: true,
        y_range: Some((0.0, 1.0)),
        markers,
        note: "dashed lines: p50, p90 and p99 of all the values".into(),
        ..Chart::default()
    }
}

/// The machine as run: the config's short name (before its `:`), then the
/// figures of the resolved config, so command-line overrides show.
pub fn machine_line(name: &str, c: &MachineConfig) -> String {
    let short = name.split(':').next().unwrap_or(name).trim();
    let protocol = match c.hierarchy.protocol {
        Protocol::Mesi => "MESI",
        Protocol::Moesi => "MOESI",
    };
    let ic = &c.interconnect;
    let topology = match ic.topology {
        TopologyKind::Crossbar => "crossbar".to_owned(),
        TopologyKind::Mesh if ic.mesh.cols > 0 && ic.mesh.rows > 0 => {
            format!("{}x{} mesh", ic.mesh.cols, ic.mesh.rows)
        }
        TopologyKind::Mesh => "mesh".to_owned(),
    };
    format!(
        "{short}: {} cores × {} SMT, {:.1} GHz, {protocol}, {topology}, {} L3 slices, \
         {} DRAM channels, {} MiB",
        c.cores,
        c.smt,
        c.frequency_mhz as f64 / 1000.0,
        c.hierarchy.l3.slices,
        c.dram.channels,
        c.memory_mib
    )
}

/// Everything printed, as text.
pub fn text(j: &Value, hs: &[Hist]) -> String {
    let name = j["machine"].as_str().unwrap_or("?");
    let machine = serde_json::from_value::<MachineConfig>(j["config"].clone())
        .map_or_else(|_| name.to_owned(), |c| machine_line(name, &c));
    let head = format!(
        "machine {machine} | workload {} | cycles {} | instructions {} | {}\n",
        j["workload"].as_str().unwrap_or("?"),
        j["cycles"],
        j["instructions"],
        j["stop"].as_str().unwrap_or("?"),
    );
    format!(
        "{head}\n== latency histograms ==\n{}\n== cache levels (per group) ==\n{}\n== per core ==\n{}",
        histogram_table(hs),
        level_table(j),
        core_table(j)
    )
}

/// Reads a statistics file.
pub fn read(path: &Path) -> Result<Value, String> {
    let s =
        std::fs::read_to_string(path).map_err(|e| format!("reading {}: {e}", path.display()))?;
    let j: Value = serde_json::from_str(&s)
        .map_err(|e| format!("{}: not a statistics JSON file: {e}", path.display()))?;
    if j.get("stats").is_none() {
        return Err(format!(
            "{}: no `stats` section; expected a file written by `smpsim run --stats`",
            path.display()
        ));
    }
    Ok(j)
}

/// Runs the command.
pub fn run(a: &ReportArgs) -> Result<ExitCode, String> {
    let j = read(&a.stats)?;
    let hs = histograms(&j);
    let dir = a.out.clone().unwrap_or_else(|| {
        let stem = a
            .stats
            .file_stem()
            .map_or("stats".into(), |s| s.to_string_lossy().into_owned());
        PathBuf::from(format!("out/report-{stem}"))
    });
    crate::outputs::check_dir(&dir, "--out")?;
    create_dir(&dir)?;
    let t = text(&j, &hs);
    print!("{t}");
    let mut paths = vec![write(&dir, "report.txt", &t)?];
    for (name, svg) in cdf_svgs(&hs, &j) {
        paths.push(write(&dir, &name, &svg)?);
    }
    for p in paths {
        println!("wrote {}", p.display());
    }
    Ok(ExitCode::SUCCESS)
}
