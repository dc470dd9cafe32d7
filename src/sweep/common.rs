//! Pieces the experiment commands share: the machine config with its
//! command-line overrides, workload arguments, output files, table text.

use crate::machine::config::{MachineConfig, Model};
use crate::machine::RunReport;
use std::path::{Path, PathBuf};

/// The machine and workload options `sweep quantum` and `scale` share.
#[derive(clap::Args, Debug, Clone)]
pub struct ExperimentArgs {
    /// Machine config (TOML); the built-in default machine if absent.
    #[arg(short = 'c', long = "config")]
    pub config: Option<PathBuf>,
    /// Workload name (see `smpsim workloads`).
    #[arg(short = 'w', long = "workload")]
    pub workload: String,
    /// Timing model (overrides the config).
    #[arg(long)]
    pub model: Option<Model>,
    /// Cores (overrides the config).
    #[arg(long)]
    pub cores: Option<u32>,
    /// Workload argument, `name=value` (repeatable).
    #[arg(long = "arg", value_parser = parse_arg)]
    pub args: Vec<(String, u64)>,
    /// Stop each run after this many cycles.
    #[arg(long)]
    pub max_cycles: Option<u64>,
    /// Output directory (default `./out/<experiment>-<workload>`).
    #[arg(long)]
    pub out: Option<PathBuf>,
}

impl ExperimentArgs {
    /// The machine config with these overrides (and `quantum`, if given).
    pub fn machine_config(&self, quantum: Option<u64>) -> Result<MachineConfig, String> {
        let overrides = Overrides {
            cores: self.cores,
            model: self.model,
            quantum,
            max_cycles: self.max_cycles,
            ..Overrides::default()
        };
        load_config(self.config.as_deref(), overrides)
    }

    /// Checks the arguments that need no machine: a repeated `--arg`.
    pub fn check(&self) -> Result<(), String> {
        check_repeated_args(&self.args)
    }

    /// Where `experiment` writes its files.
    pub fn out_dir(&self, experiment: &str) -> PathBuf {
        self.out
            .clone()
            .unwrap_or_else(|| PathBuf::from(format!("out/{experiment}-{}", self.workload)))
    }
}

/// Command-line overrides of a machine config.
#[derive(Clone, Copy, Debug, Default)]
pub struct Overrides {
    /// `--cores`.
    pub cores: Option<u32>,
    /// `--model`.
    pub model: Option<Model>,
    /// `--quantum`.
    pub quantum: Option<u64>,
    /// `--max-cycles`.
    pub max_cycles: Option<u64>,
    /// `--smt`.
    pub smt: Option<u32>,
    /// `--switch-to`.
    pub switch_to: Option<Model>,
    /// `--switch-after`.
    pub switch_after: Option<u64>,
    /// `--switch-at-roi`.
    pub switch_at_roi: bool,
}

/// Loads `config` (the built-in default machine if `None`), applies the
/// overrides and validates the result.
pub fn load_config(config: Option<&Path>, o: Overrides) -> Result<MachineConfig, String> {
    let mut cfg = match config {
        Some(p) => MachineConfig::load(p).map_err(|e| e.to_string())?,
        None => MachineConfig::default(),
    };
    let Overrides {
        cores,
        model,
        quantum,
        max_cycles,
        smt,
        switch_to,
        switch_after,
        switch_at_roi,
    } = o;
    if let Some(c) = cores {
        cfg.cores = c;
    }
    if let Some(t) = smt {
        cfg.smt = t;
    }
    if let Some(m) = switch_to {
        cfg.switch.to = Some(m);
    }
    if let Some(n) = switch_after {
        cfg.switch.after_insns = n;
    }
    if switch_at_roi {
        cfg.switch.at_roi = true;
    }
    if let Some(q) = quantum {
        if q == 0 {
            return Err("--quantum 0: the quantum must be at least 1 cycle".into());
        }
        cfg.quantum = Some(q);
    }
    if let Some(m) = model {
        cfg.model = m;
    }
    if let Some(m) = max_cycles {
        cfg.max_cycles = m;
    }
    let text = config.map(|p| (p, std::fs::read_to_string(p).unwrap_or_default()));
    if let Err((k, m)) = cfg.validate() {
        return Err(match &text {
            // A bad key the command line did not touch is the file's.
            Some((p, t)) if !o.sets(&k) => crate::config::at_key(p, t, &k, m).to_string(),
            _ => format!("command line: key `{k}`: {m}"),
        });
    }
    if let Some((p, t)) = &text {
        for w in unused_tables(p, t, &cfg) {
            eprintln!("smpsim: warning: {w}");
        }
    }
    Ok(cfg)
}

impl Overrides {
    /// Whether these overrides set config key `key` (dotted).
    fn sets(&self, key: &str) -> bool {
        let top = key.split('.').next().unwrap_or(key);
        match top {
            "cores" => self.cores.is_some(),
            "smt" => self.smt.is_some(),
            "quantum" => self.quantum.is_some(),
            "max_cycles" => self.max_cycles.is_some(),
            "model" => self.model.is_some(),
            "switch" => {
                self.switch_to.is_some() || self.switch_after.is_some() || self.switch_at_roi
            }
            _ => false,
        }
    }
}

/// Warnings for tables of `text` (the file `path`) whose settings this run
/// ignores: `[ooo]` when no core runs the out-of-order model, `[inorder]`
/// when none runs the in-order one, `[interconnect.mesh]` or `.crossbar`
/// under the other topology. A table that only restates the defaults (as
/// `configs/default.toml` does, to document them) is not worth a warning.
pub fn unused_tables(path: &Path, text: &str, cfg: &MachineConfig) -> Vec<String> {
    use smpsim_uncore::interconnect::TopologyKind;
    let d = MachineConfig::default();
    let uses = |m: Model| cfg.model == m || cfg.switch.to == Some(m);
    let model = cfg.model.name();
    let (mesh, xbar) = match cfg.interconnect.topology {
        TopologyKind::Crossbar => (false, true),
        TopologyKind::Mesh => (true, false),
    };
    let topology = if mesh { "mesh" } else { "crossbar" };
    let ignored = [
        (
            "ooo",
            !uses(Model::Ooo) && cfg.ooo != d.ooo,
            "no core runs the ooo model",
        ),
        (
            "inorder",
            !uses(Model::Inorder) && cfg.inorder != d.inorder,
            "no core runs the inorder model",
        ),
        (
            "interconnect.mesh",
            !mesh && cfg.interconnect.mesh != d.interconnect.mesh,
            "the topology is not mesh",
        ),
        (
            "interconnect.crossbar",
            !xbar && cfg.interconnect.crossbar != d.interconnect.crossbar,
            "the topology is not crossbar",
        ),
    ];
    ignored
        .into_iter()
        .filter(|(_, ignored, _)| *ignored)
        .map(|(table, _, why)| {
            format!(
                "{}:{}: [{table}] is ignored: {why} (model {model}, topology {topology})",
                path.display(),
                table_line(text, table)
            )
        })
        .collect()
}

/// The 1-based line of `[table]` (or the first `table.…` key), else 1.
fn table_line(text: &str, table: &str) -> usize {
    text.lines()
        .position(|l| {
            let t = l.trim();
            t.starts_with(&format!("[{table}]"))
                || t.starts_with(&format!("[{table}."))
                || t.starts_with(&format!("{table}."))
        })
        .map_or(1, |i| i + 1)
}

/// A warning when `threads` asks for more host threads than the host has
/// cores: each barrier then waits for descheduled threads, many times
/// slower. `cores` is the machine's, when known, for `per-core`.
pub fn host_threads_warning(
    threads: smpsim_engine::HostThreads,
    cores: Option<u32>,
) -> Option<String> {
    let host = std::thread::available_parallelism().map_or(1, usize::from);
    let (asked, what) = match threads {
        smpsim_engine::HostThreads::Count(n) => (n, format!("--host-threads {n}")),
        smpsim_engine::HostThreads::PerCore => (
            cores.map_or(0, |c| c as usize),
            "--host-threads per-core".to_owned(),
        ),
    };
    (asked > host).then(|| {
        format!(
            "{what} asks for {asked} threads on a host with {host} cores; \
             the run will be much slower than with {host}"
        )
    })
}

/// Refuses a workload argument given twice (the last would win silently).
pub fn check_repeated_args(args: &[(String, u64)]) -> Result<(), String> {
    for (i, (name, v)) in args.iter().enumerate() {
        if let Some((_, w)) = args[..i].iter().find(|(n, _)| n == name) {
            return Err(format!(
                "--arg {name} given twice ({name}={w} and {name}={v}); give it once"
            ));
        }
    }
    Ok(())
}

/// Parses a workload argument `name=value`.
pub fn parse_arg(s: &str) -> Result<(String, u64), String> {
    let (k, v) = s
        .split_once('=')
        .ok_or_else(|| format!("`{s}`: expected name=value"))?;
    let v = v
        .parse::<u64>()
        .map_err(|e| format!("`{s}`: value is not a whole number ({e})"))?;
    Ok((k.to_owned(), v))
}

/// The report as a JSON value without its host-dependent `host` section.
pub fn without_host(r: &RunReport) -> serde_json::Value {
    let mut v = serde_json::to_value(r).expect("reports serialize");
    v.as_object_mut()
        .expect("a report is an object")
        .remove("host");
    v
}

/// Creates `dir` (and its parents).
pub fn create_dir(dir: &Path) -> Result<(), String> {
    std::fs::create_dir_all(dir).map_err(|e| format!("creating {}: {e}", dir.display()))
}

/// Writes `text` to `dir/name`, returning the path.
pub fn write(dir: &Path, name: &str, text: &str) -> Result<PathBuf, String> {
    let path = dir.join(name);
    std::fs::write(&path, text).map_err(|e| format!("writing {}: {e}", path.display()))?;
    Ok(path)
}

/// CSV text: a header line, then one line per row. Cells holding a comma
/// or quote are quoted.
pub fn csv(header: &[String], rows: &[Vec<String>]) -> String {
    let cell = |c: &String| {
        if c.contains([',', '"', '\n']) {
            format!("\"{}\"", c.replace('"', "\"\""))
        } else {
            c.clone()
        }
    };
    let mut out = String::new();
    for line in std::iter::once(header).chain(rows.iter().map(Vec::as_slice)) {
        out.push_str(&line.iter().map(cell).collect::<Vec<_>>().join(","));
        out.push('\n');
    }
    out
}

/// A plain-text table with columns padded to their widest cell (the first
/// column left-aligned, the others right-aligned).
pub fn table(header: &[String], rows: &[Vec<String>]) -> String {
    let mut width: Vec<usize> = header.iter().map(String::len).collect();
    for r in rows {
        for (i, c) in r.iter().enumerate() {
            if i < width.len() {
                width[i] = width[i].max(c.chars().count());
            }
        }
    }
    let line = |cells: &[String]| {
        let mut s = String::new();
        for (i, c) in cells.iter().enumerate() {
            let w = width.get(i).copied().unwrap_or(0);
            if i == 0 {
                s.push_str(&format!("{c:<w$}"));
            } else {
                s.push_str(&format!("  {c:>w$}"));
            }
        }
        s.trim_end().to_owned() + "\n"
    };
    let mut out = line(header);
    for r in rows {
        out.push_str(&line(r));
    }
    out
}

/// A relative error `|x - base| / |base|` (0 when both are 0, infinite
/// when only the base is 0).
pub fn rel_error(x: f64, base: f64) -> f64 {
    if x == base {
        0.0
    } else if base == 0.0 {
        f64::INFINITY
    } else {
        ((x - base) / base).abs()
    }
}

/// A ratio as a percentage with a sensible number of digits.
pub fn percent(x: f64) -> String {
    if x.is_infinite() {
        "inf".into()
    } else if x == 0.0 {
        "0".into()
    } else {
        format!("{:.3}%", 100.0 * x)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn csv_quotes_cells_with_commas() {
        let h = vec!["a".to_owned(), "b".to_owned()];
        let rows = vec![vec!["1".to_owned(), "x,y".to_owned()]];
        assert_eq!(csv(&h, &rows), "a,b\n1,\"x,y\"\n");
    }

    #[test]
    fn relative_errors() {
        assert_eq!(rel_error(0.0, 0.0), 0.0);
        assert_eq!(rel_error(110.0, 100.0), 0.1);
        assert!(rel_error(1.0, 0.0).is_infinite());
        assert_eq!(percent(0.1), "10.000%");
    }

    #[test]
    fn table_pads_columns() {
        let h = vec!["name".to_owned(), "n".to_owned()];
        let rows = vec![vec!["x".to_owned(), "100".to_owned()]];
        assert_eq!(table(&h, &rows), "name    n\nx     100\n");
    }
}
