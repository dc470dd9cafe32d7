//! `smpsim selftest coherence` and `smpsim selftest latency`.
//! (Owned by the memory-hierarchy work; placeholder until it lands.)

use std::process::ExitCode;

/// Arguments of `smpsim selftest coherence`.
#[derive(clap::Args, Debug)]
pub struct CoherenceArgs {
    /// Simulated cores.
    #[arg(long, default_value_t = 4)]
    pub cores: usize,
    /// Operations in total.
    #[arg(long, default_value_t = 100_000)]
    pub ops: u64,
    /// Seed of the generators.
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
    /// Host threads: a number or `per-core`.
    #[arg(long, default_value = "1")]
    pub host_threads: smpsim_engine::HostThreads,
}

/// Arguments of `smpsim selftest latency`.
#[derive(clap::Args, Debug)]
pub struct LatencyArgs {}

/// Runs the coherence random tester.
pub fn run_coherence(_args: &CoherenceArgs) -> Result<ExitCode, String> {
    Err("selftest coherence is not built yet".into())
}

/// Runs the latency microbenchmarks.
pub fn run_latency(_args: &LatencyArgs) -> Result<ExitCode, String> {
    Err("selftest latency is not built yet".into())
}
