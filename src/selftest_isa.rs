//! `smpsim selftest isa`: differential test against the host CPU.
//! (Owned by the front-end work; placeholder until it lands.)

use std::process::ExitCode;

/// Arguments of `smpsim selftest isa`.
#[derive(clap::Args, Debug)]
pub struct IsaArgs {
    /// Number of random instruction sequences to run.
    #[arg(long, default_value_t = 10_000)]
    pub cases: u64,
    /// Seed of the generator.
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
}

/// Runs the differential test.
pub fn run(_args: &IsaArgs) -> Result<ExitCode, String> {
    Err("selftest isa is not built yet".into())
}
