//! `smpsim run`: build a machine from a config, run a workload, report.

use crate::run_summary::{print_summary, Outcome};
use smpsim::machine::config::{KernelSpec, MachineConfig, Model, SwitchConfig};
use smpsim::machine::{CheckpointAt, CheckpointPlan, Machine, RunOptions, RunReport};
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
    /// Boot --kernel as an unprivileged domU (domain 1), as xl starts a
    /// guest: domain 0 is the built-in control domain (workload `dom0`,
    /// privileged, 1 VCPU on its own hardware context), which powers off
    /// once the guest has shut down. The run's result is the guest's.
    #[arg(long, requires = "kernel")]
    pub domu: bool,
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
    /// Timing model: functional, inorder, ooo or fast (fast-forward, no
    /// timing; default quantum 1000) (overrides the config).
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
    /// Write a checkpoint of the whole machine at this point: a cycle
    /// (rounded up to the next barrier), `roi` (the barrier that serviced
    /// the guest's first ROI begin mark) or `insns:N` (the first barrier
    /// after N instructions retired).
    #[arg(long, value_name = "CYCLES|roi|insns:N", requires = "checkpoint_out")]
    pub checkpoint_at: Option<CheckpointAt>,
    /// The checkpoint file (with --checkpoint-every: FILE.CYCLE, one each).
    #[arg(long, value_name = "FILE", requires = "checkpoint_at")]
    pub checkpoint_out: Option<PathBuf>,
    /// After the first checkpoint, another every N cycles.
    #[arg(long, value_name = "N", requires = "checkpoint_at")]
    pub checkpoint_every: Option<u64>,
    /// Continue the machine saved in this checkpoint (its config, guest and
    /// state); --model (every core switches to it at once), --quantum,
    /// --host-threads, --max-cycles (a machine cycle), --stats, the
    /// --switch-* options (replacing the saved ones) and further
    /// checkpoints may be given, nothing that builds another machine.
    #[arg(
        long,
        value_name = "FILE",
        conflicts_with_all = ["config", "workload", "kernel", "cores", "vcpus", "smt", "args"]
    )]
    pub restore: Option<PathBuf>,
    /// Save one domain (Xen-style: its memory with page tables
    /// canonicalised to PFNs, VCPUs, event channels, timers) at the first
    /// barrier at or after this cycle where its VCPUs are out of the
    /// hypervisor; the run stops there.
    #[arg(long, value_name = "CYCLES", requires = "domain_save_out", conflicts_with_all = ["restore", "checkpoint_at"])]
    pub domain_save_at: Option<u64>,
    /// The domain save file.
    #[arg(long, value_name = "FILE", requires = "domain_save_at")]
    pub domain_save_out: Option<PathBuf>,
    /// The domain to save (default 0; the machine must hold only it).
    #[arg(long, value_name = "D", requires = "domain_save_at")]
    pub domain: Option<u16>,
    /// Restore the domain saved in this file into a new machine (the
    /// saved config and guest) and run it to its end; --frame-offset
    /// moves it onto other machine frames. --host-threads, --max-cycles
    /// and --stats may be given.
    #[arg(
        long,
        value_name = "FILE",
        conflicts_with_all = ["config", "workload", "kernel", "cores", "vcpus", "smt", "args", "restore", "model", "quantum"]
    )]
    pub domain_restore: Option<PathBuf>,
    /// Machine frames the restoring machine takes before it builds the
    /// domain, so that the domain gets other frames than it was saved on.
    #[arg(long, value_name = "N", requires = "domain_restore")]
    pub frame_offset: Option<u64>,
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

/// Runs the simulation: every input and output checked first, the console
/// live, Ctrl-C stopping at the next barrier with the results kept.
pub fn run(args: &RunArgs) -> Result<ExitCode, String> {
    if let Some(path) = &args.stats {
        smpsim::outputs::check_file(path, "--stats")?;
    }
    if let Some(path) = &args.checkpoint_out {
        smpsim::outputs::check_file(path, "--checkpoint-out")?;
    }
    if args.checkpoint_every == Some(0) {
        return Err("--checkpoint-every 0: give a number of cycles above 0".into());
    }
    let interrupt =
        smpsim::interrupt::install().map_err(|e| format!("installing the Ctrl-C handler: {e}"))?;
    let opts = RunOptions {
        vcpus: args.vcpus,
        args: args.args.clone(),
        host_threads: args.host_threads,
        interrupt: Some(interrupt),
    };
    if let Some(file) = &args.domain_save_out {
        smpsim::outputs::check_file(file, "--domain-save-out")?;
    }
    let mut machine = match (&args.restore, &args.domain_restore) {
        (Some(file), _) => restore(args, file, &opts)?,
        (None, Some(file)) => domain_restore(args, file, &opts)?,
        (None, None) => {
            let cfg = machine_config(args)?;
            check_args(args, &cfg)?;
            match kernels(args, &cfg)? {
                Some(k) => Machine::build_kernels(&cfg, &k, &opts),
                None => {
                    let name = args.workload.as_deref().unwrap_or("hello");
                    let w = smpsim_workloads::find(name).map_err(|e| e.to_string())?;
                    Machine::build(&cfg, w, &opts)
                }
            }
            .map_err(|e| e.to_string())?
        }
    };
    if let (Some(at), Some(out)) = (&args.checkpoint_at, &args.checkpoint_out) {
        machine.set_checkpoints(CheckpointPlan {
            at: at.clone(),
            every: args.checkpoint_every,
            out: out.clone(),
        });
    }
    if let (Some(at), Some(out)) = (args.domain_save_at, &args.domain_save_out) {
        return domain_save(&mut machine, at, args.domain.unwrap_or(0), out);
    }
    let terminal = smpsim::progress::attach(&mut machine);
    let report = machine.run_in_place();
    terminal.finish();
    print_summary(&report);
    if args.checkpoint_at.is_some() && machine.checkpoints_written().is_empty() {
        eprintln!(
            "smpsim: warning: the run ended before --checkpoint-at {}: no checkpoint written",
            args.checkpoint_at
                .as_ref()
                .map(ToString::to_string)
                .unwrap_or_default()
        );
    }
    for c in machine.checkpoints_written() {
        println!(
            "checkpoint at cycle {} written to {} ({:.1} MiB in {:.2} s)",
            c.cycle,
            c.path.display(),
            c.bytes as f64 / f64::from(1u32 << 20),
            c.seconds
        );
    }
    if std::env::var_os("SMPSIM_DEBUG_CONTEXTS").is_some() {
        for line in machine.context_states() {
            eprintln!("{line}");
        }
    }
    if let Some(path) = &args.stats {
        write_stats(path, &report)?;
    }
    Ok(Outcome::of(&report).exit_code())
}

/// The machine saved in `file`, with the run's model, quantum, host
/// threads and cycle limit.
fn restore(args: &RunArgs, file: &std::path::Path, opts: &RunOptions) -> Result<Machine, String> {
    let payload = smpsim::checkpoint::read(file).map_err(|e| e.to_string())?;
    let switch = (args.switch_to.is_some() || args.switch_at_roi || args.switch_after.is_some())
        .then(|| SwitchConfig {
            to: args.switch_to,
            after_insns: args.switch_after.unwrap_or(0),
            at_roi: args.switch_at_roi,
        });
    if switch.as_ref().is_some_and(|s| s.to.is_none()) {
        return Err("--switch-after and --switch-at-roi need --switch-to MODEL".into());
    }
    let mut m = Machine::restore(payload, args.model, args.quantum, switch.as_ref(), opts)
        .map_err(|e| format!("checkpoint {}: {e}", file.display()))?;
    if let Some(c) = args.max_cycles {
        m.set_max_cycles(c);
    }
    let warning = smpsim::sweep::common::host_threads_warning(args.host_threads, Some(m.cores()));
    if let Some(w) = warning {
        eprintln!("smpsim: warning: {w}");
    }
    Ok(m)
}

/// Runs `machine` to the save point, saves domain `d` to `out`.
fn domain_save(
    machine: &mut Machine,
    at: u64,
    d: u16,
    out: &std::path::Path,
) -> Result<ExitCode, String> {
    let terminal = smpsim::progress::attach(machine);
    let saved = machine.run_to_domain_save(at, d);
    terminal.finish();
    let (file, report) = saved.map_err(|e| format!("--domain-save-at {at}: {e}"))?;
    println!(
        "ran to cycle {}: {} instructions",
        report.cycles, report.instructions
    );
    let t = std::time::Instant::now();
    let bytes = file.encode();
    std::fs::write(out, &bytes)
        .map_err(|e| format!("writing domain save {}: {e}", out.display()))?;
    println!(
        "domain {d} saved at cycle {} to {} ({} pages, {:.1} KiB, in {:.3} s)",
        file.cycle,
        out.display(),
        file.image.pages.len(),
        bytes.len() as f64 / 1024.0,
        t.elapsed().as_secs_f64()
    );
    Ok(ExitCode::SUCCESS)
}

/// A new machine running the domain saved in `file`.
fn domain_restore(
    args: &RunArgs,
    file: &std::path::Path,
    opts: &RunOptions,
) -> Result<Machine, String> {
    let t = std::time::Instant::now();
    let saved = smpsim::machine::dsave::DomainSaveFile::read(file)?;
    let (cycle, d) = (saved.cycle, saved.domain);
    let offset = args.frame_offset.unwrap_or(0);
    let mut m = Machine::domain_restore(saved, offset, opts)
        .map_err(|e| format!("domain save {}: {e}", file.display()))?;
    if let Some(c) = args.max_cycles {
        m.set_max_cycles(c);
    }
    let first = m.domain_frames(d).first().map_or(0, |f| f.0);
    println!(
        "domain {d} restored at cycle {cycle} from {} (PFN 0 at MFN {first:#x}, frame offset {offset}) in {:.3} s",
        file.display(),
        t.elapsed().as_secs_f64()
    );
    Ok(m)
}

/// The kernels to boot: `--kernel`'s, else the config's `[[domain]]`
/// tables; `None` for a built-in workload. `-w` and a kernel exclude each
/// other, and `--arg` is only for workloads.
fn kernels(args: &RunArgs, cfg: &MachineConfig) -> Result<Option<Vec<KernelSpec>>, String> {
    let mut specs = match &args.kernel {
        Some(path) => vec![KernelSpec {
            cmdline: args.cmdline.clone().unwrap_or_default(),
            ramdisk: args.ramdisk.clone(),
            memory_mib: args.domain_memory.unwrap_or(KernelSpec::DEFAULT_MEMORY_MIB),
            ..KernelSpec::new(path)
        }],
        None => cfg.domains.clone(),
    };
    if args.domu {
        specs.insert(0, KernelSpec::control_domain());
    }
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

/// Checks what needs no machine (a repeated `--arg`), and warns about more
/// host threads than the host has.
fn check_args(args: &RunArgs, cfg: &MachineConfig) -> Result<(), String> {
    smpsim::sweep::common::check_repeated_args(&args.args)?;
    let warning = smpsim::sweep::common::host_threads_warning(args.host_threads, Some(cfg.cores));
    if let Some(w) = warning {
        eprintln!("smpsim: warning: {w}");
    }
    Ok(())
}

/// Writes the report as JSON to `path`.
fn write_stats(path: &std::path::Path, report: &RunReport) -> Result<(), String> {
    let json = serde_json::to_string_pretty(report).map_err(|e| e.to_string())?;
    std::fs::write(path, json + "\n")
        .map_err(|e| format!("writing statistics to {}: {e}", path.display()))?;
    println!("statistics written to {}", path.display());
    Ok(())
}
