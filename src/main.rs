//! smpsim: the command-line program.

mod run_cmd;
mod run_summary;
mod selftest_isa;
mod selftest_mem;
mod workloads_cmd;

use clap::{Parser, Subcommand};
use std::process::ExitCode;

/// smpsim: a parallel, cycle-level simulator of x86-64 SMP/SMT machines
/// running Xen PV guests.
#[derive(Parser, Debug)]
#[command(name = "smpsim", version, about)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Run a workload on a simulated machine.
    ///
    /// Exit status: 0 every domain powered off normally; 1 a guest failed or
    /// the simulator stopped with an error; 2 bad input (nothing was run);
    /// 3 the cycle limit was reached first; 130 interrupted by SIGINT or
    /// SIGTERM (summary and statistics of the cycles run are still written;
    /// a second signal exits at once).
    Run(Box<run_cmd::RunArgs>),
    /// List the built-in workloads and their arguments, or describe one.
    Workloads(workloads_cmd::WorkloadsArgs),
    /// Self-checking tests of the simulator's parts.
    #[command(subcommand)]
    Selftest(Selftest),
    /// Parameter sweeps: accuracy and speed against a parameter.
    #[command(subcommand)]
    Sweep(Sweep),
    /// Host-thread scaling and a check that results do not depend on it.
    Scale(smpsim::scale::ScaleArgs),
    /// Tables and CDF plots from a `run --stats` JSON file.
    Report(smpsim::report::ReportArgs),
    /// Whole-machine checkpoints (written by `run --checkpoint-at`).
    #[command(subcommand)]
    Checkpoint(Checkpoint),
}

#[derive(Subcommand, Debug)]
enum Checkpoint {
    /// What a checkpoint holds: time, machine, domains, VCPUs, sizes.
    Info {
        /// The checkpoint file.
        file: std::path::PathBuf,
    },
}

/// `smpsim checkpoint info FILE`.
fn checkpoint_info(file: &std::path::Path) -> Result<ExitCode, String> {
    let bytes = std::fs::read(file)
        .map_err(|e| format!("checkpoint {}: cannot read: {e}", file.display()))?;
    let p = smpsim::checkpoint::decode(&bytes, file).map_err(|e| e.to_string())?;
    println!("{}", file.display());
    for line in smpsim::checkpoint::describe(&p, bytes.len() as u64) {
        println!("  {line}");
    }
    Ok(ExitCode::SUCCESS)
}

#[derive(Subcommand, Debug)]
enum Sweep {
    /// Speedup and error of each quantum against the smallest.
    Quantum(smpsim::sweep::QuantumArgs),
}

#[derive(Subcommand, Debug)]
enum Selftest {
    /// Differential test of instruction semantics against the host CPU.
    Isa(selftest_isa::IsaArgs),
    /// Random coherence test of the memory hierarchy.
    Coherence(selftest_mem::CoherenceArgs),
    /// Load-to-use latency microbenchmarks of each cache level.
    Latency(selftest_mem::LatencyArgs),
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Run(a) => run_cmd::run(&a),
        Command::Workloads(a) => workloads_cmd::run(&a),
        Command::Selftest(Selftest::Isa(a)) => selftest_isa::run(&a),
        Command::Selftest(Selftest::Coherence(a)) => selftest_mem::run_coherence(&a),
        Command::Selftest(Selftest::Latency(a)) => selftest_mem::run_latency(&a),
        Command::Sweep(Sweep::Quantum(a)) => smpsim::sweep::run_quantum(&a),
        Command::Scale(a) => smpsim::scale::run(&a),
        Command::Report(a) => smpsim::report::run(&a),
        Command::Checkpoint(Checkpoint::Info { file }) => checkpoint_info(&file),
    };
    match result {
        Ok(code) => code,
        Err(e) => {
            eprintln!("smpsim: {e}");
            ExitCode::from(2)
        }
    }
}
