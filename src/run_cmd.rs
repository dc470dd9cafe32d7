//! `smpsim run`: build a machine from a config, run a workload, report.

use smpsim::machine::config::{KernelSpec, MachineConfig, Model};
use smpsim::machine::{Machine, RunOptions, RunReport};
use smpsim::sweep::common::{load_config, parse_arg, Overrides};
use smpsim_engine::HostThreads;
use std::path::PathBuf;
use std::process::ExitCode;

/// Arguments of `smpsim run`.
#[derive(clap::Args, Debug)]
pub struct RunArgs {
    /// Machine config (TOML); the built-in default machine if absent.
    #[arg(short = 'c', long = "config")]
    pub config: Option<PathBuf>,
    /// Workload name (see `smpsim workloads`; default `hello`).
    #[arg(short = 'w', long = "workload")]
    pub workload: Option<String>,
    /// Boot this Xen PV64 kernel (an ELF with Xen notes) in one domain,
    /// instead of a built-in workload.
    #[arg(long, value_name = "FILE")]
    pub kernel: Option<PathBuf>,
    /// The kernel's command line (`start_info.cmd_line`).
    #[arg(long, value_name = "STR", requires = "kernel")]
    pub cmdline: Option<String>,
    /// The kernel's initial ramdisk (`start_info.mod_start`/`mod_len`).
    #[arg(long, value_name = "FILE", requires = "kernel")]
    pub ramdisk: Option<PathBuf>,
    /// Memory of the kernel's domain in MiB (default 64).
    #[arg(long, value_name = "MIB", requires = "kernel")]
    pub domain_memory: Option<u64>,
    /// Cores of the machine (overrides the config).
    #[arg(long)]
    pub cores: Option<u32>,
    /// VCPUs per domain (default: one per hardware context).
    #[arg(long)]
    pub vcpus: Option<u32>,
    /// Quantum in cycles (overrides the config; default: the lookahead).
    #[arg(long)]
    pub quantum: Option<u64>,
    /// Host threads: a number or `per-core`.
    #[arg(long, default_value = "1")]
    pub host_threads: HostThreads,
    /// Hardware contexts (SMT threads) per core (overrides the config).
    #[arg(long)]
    pub smt: Option<u32>,
    /// Timing model: functional, inorder or ooo (overrides the config).
    #[arg(long)]
    pub model: Option<Model>,
    /// Switch to this model at run time (with --switch-after or
    /// --switch-at-roi).
    #[arg(long)]
    pub switch_to: Option<Model>,
    /// Switch once the machine has retired this many instructions.
    #[arg(long)]
    pub switch_after: Option<u64>,
    /// Switch at the guest's region-of-interest marker, and back at its end.
    #[arg(long)]
    pub switch_at_roi: bool,
    /// Workload argument, `name=value` (repeatable).
    #[arg(long = "arg", value_parser = parse_arg)]
    pub args: Vec<(String, u64)>,
    /// Stop after this many cycles.
    #[arg(long)]
    pub max_cycles: Option<u64>,
    /// Write the statistics as JSON here.
    #[arg(long)]
    pub stats: Option<PathBuf>,
}

/// Loads the config named by `args` with its command-line overrides.
pub fn machine_config(args: &RunArgs) -> Result<MachineConfig, String> {
    let overrides = Overrides {
        cores: args.cores,
        model: args.model,
        quantum: args.quantum,
        max_cycles: args.max_cycles,
        smt: args.smt,
        switch_to: args.switch_to,
        switch_after: args.switch_after,
        switch_at_roi: args.switch_at_roi,
    };
    load_config(args.config.as_deref(), overrides)
}

/// Runs the simulation.
pub fn run(args: &RunArgs) -> Result<ExitCode, String> {
    let cfg = machine_config(args)?;
    let opts = RunOptions {
        vcpus: args.vcpus,
        args: args.args.clone(),
        host_threads: args.host_threads,
    };
    let mut machine = match kernels(args, &cfg)? {
        Some(k) => Machine::build_kernels(&cfg, &k, &opts),
        None => {
            let name = args.workload.as_deref().unwrap_or("hello");
            let w = smpsim_workloads::find(name).map_err(|e| e.to_string())?;
            Machine::build(&cfg, w, &opts)
        }
    }
    .map_err(|e| e.to_string())?;
    smpsim::progress::attach(&mut machine);
    let report = machine.run_in_place();
    for line in &report.console {
        println!("{line}");
    }
    print_summary(&report);
    if std::env::var_os("SMPSIM_DEBUG_CONTEXTS").is_some() {
        for line in machine.context_states() {
            eprintln!("{line}");
        }
    }
    if let Some(path) = &args.stats {
        let json = serde_json::to_string_pretty(&report).map_err(|e| e.to_string())?;
        std::fs::write(path, json + "\n")
            .map_err(|e| format!("writing statistics to {}: {e}", path.display()))?;
        println!("statistics written to {}", path.display());
    }
    Ok(if report.success {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}

/// The kernels to boot: `--kernel`'s, else the config's `[[domain]]`
/// tables; `None` for a built-in workload. `-w` and a kernel exclude each
/// other, and `--arg` is only for workloads.
fn kernels(args: &RunArgs, cfg: &MachineConfig) -> Result<Option<Vec<KernelSpec>>, String> {
    let specs = match &args.kernel {
        Some(path) => vec![KernelSpec {
            cmdline: args.cmdline.clone().unwrap_or_default(),
            ramdisk: args.ramdisk.clone(),
            memory_mib: args.domain_memory.unwrap_or(KernelSpec::DEFAULT_MEMORY_MIB),
            ..KernelSpec::new(path)
        }],
        None => cfg.domains.clone(),
    };
    if specs.is_empty() {
        return Ok(None);
    }
    let from = if args.kernel.is_some() {
        "--kernel"
    } else {
        "the config's [[domain]] tables"
    };
    if let Some(w) = &args.workload {
        return Err(format!(
            "-w {w} and {from} both name the guest: give a built-in workload or a kernel, not both"
        ));
    }
    if !args.args.is_empty() {
        return Err(format!(
            "--arg sets a built-in workload's arguments; a kernel from {from} takes --cmdline"
        ));
    }
    if args.domain_memory == Some(0) {
        return Err("--domain-memory 0: a domain needs at least 1 MiB".into());
    }
    Ok(Some(specs))
}

fn rate(hits: u64, total: u64) -> String {
    if total == 0 {
        "-".into()
    } else {
        format!("{:.1}%", 100.0 * hits as f64 / total as f64)
    }
}

fn print_summary(r: &RunReport) {
    println!("---- smpsim run summary ----");
    println!("machine      {}", r.machine);
    println!(
        "workload     {} ({} domain(s) × {} VCPUs), model {}",
        r.workload,
        r.domains,
        r.vcpus_per_domain,
        r.model.name()
    );
    for sw in &r.switches {
        println!(
            "switch       to {} at cycle {} ({})",
            sw.to.name(),
            sw.cycle,
            sw.why
        );
    }
    println!(
        "quantum      {} cycles (lookahead {})",
        r.quantum, r.lookahead
    );
    println!("stopped      {}", r.stop);
    for s in &r.shutdowns {
        println!(
            "domain {}     {} at cycle {}{}",
            s.domain,
            s.reason,
            s.cycle,
            if s.message.is_empty() {
                String::new()
            } else {
                format!(": {}", s.message)
            }
        );
    }
    if let Some(e) = &r.error {
        println!("error        {e}");
    }
    let ipc = r.instructions as f64 / r.cycles.max(1) as f64;
    println!("cycles       {}", r.cycles);
    println!(
        "instructions {} (IPC {ipc:.3} machine-wide)",
        r.instructions
    );
    let g = |grp: &str, k: &str| r.stats.group_counter(grp, k).unwrap_or(0);
    for level in ["l1d", "l2"] {
        let hits = g("core", &format!("{level}.hits"));
        let misses = g("core", &format!("{level}.misses"));
        println!("{level:<12} hit rate {}", rate(hits, hits + misses));
    }
    let ooo_cycles = g("core", "ooo.cycles");
    if ooo_cycles > 0 {
        // Summed over cores: core-cycles in `ooo`, so IPC is per core.
        let insns = g("core", "ooo.insns");
        let mispredicts: u64 = ["cond", "jump", "call", "ret", "indirect", "rep"]
            .iter()
            .map(|k| g("core", &format!("ooo.mispredict.{k}")))
            .sum();
        println!(
            "ooo          {insns} instructions in {ooo_cycles} core-cycles (IPC {:.3} per core), \
             {mispredicts} mispredicts, {} forwarded loads, {} commit-time divergences",
            insns as f64 / ooo_cycles as f64,
            g("core", "ooo.stlf"),
            g("core", "ooo.diverged")
        );
    }
    if let Some(core) = r.stats.groups.get("core") {
        for (name, h) in &core.histograms {
            if h.count > 0 {
                println!(
                    "{name:<28} n={:<9} p50 {:>6} p90 {:>6} p99 {:>6} max {:>7} {}",
                    h.count, h.p50, h.p90, h.p99, h.max, h.unit
                );
            }
        }
    }
    let ipi = &r.hypervisor.ipi_latency;
    if ipi.count > 0 {
        println!(
            "{:<28} n={:<9} p50 {:>6} p90 {:>6} p99 {:>6} max {:>7} cycles",
            "ipi.latency", ipi.count, ipi.p50, ipi.p90, ipi.p99, ipi.max
        );
    }
    for (name, h) in &r.hypervisor.guest_latency {
        if h.count > 0 {
            println!(
                "{:<28} n={:<9} p50 {:>6} p90 {:>6} p99 {:>6} max {:>7} cycles",
                format!("guest.{name}"),
                h.count,
                h.p50,
                h.p90,
                h.p99,
                h.max
            );
        }
    }
    println!(
        "host         {:.2} s, {} thread(s), {:.2} simulated MIPS",
        r.host.seconds, r.host.threads, r.host.mips
    );
    println!(
        "result       {}",
        if r.success { "success" } else { "FAILED" }
    );
}
