//! `smpsim selftest isa`: differential test of instruction semantics
//! against the host CPU (see `smpsim_difftest`).
//!
//! Prints the first mismatches in full, then counts per mnemonic; the last
//! line is exactly `isa-difftest: N cases, M mismatches, K mnemonics`.
//! Exit status 0 iff there is no mismatch. `--isa LIST` selects the
//! instruction groups; `--list-forms` prints their forms and exits.

use smpsim_difftest::gen::Group;
use smpsim_difftest::Config;
use std::io::Write;
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
    /// Mismatching cases printed in full (the rest are counted).
    #[arg(long, default_value_t = 5)]
    pub show: usize,
    /// Instruction groups, a comma list of: int, sse-mov, sse-fp, sse-int,
    /// sse4, x87, bmi, mmx, all.
    #[arg(long, default_value = "int")]
    pub isa: String,
    /// Print the forms of each selected group on this host and exit.
    #[arg(long)]
    pub list_forms: bool,
}

/// Runs the differential test.
pub fn run(args: &IsaArgs) -> Result<ExitCode, String> {
    let mut cfg = Config::new(args.cases, args.seed);
    cfg.show = args.show;
    cfg.groups = Group::parse_list(&args.isa)?;
    let stdout = std::io::stdout();
    let mut out = stdout.lock();
    if args.list_forms {
        let text = smpsim_difftest::list_forms(&cfg);
        out.write_all(text.as_bytes())
            .map_err(|e| format!("writing to stdout: {e}"))?;
        return Ok(ExitCode::SUCCESS);
    }
    let summary = smpsim_difftest::run(&cfg, &mut out).map_err(|e| e.to_string())?;
    let w = |e: std::io::Error| format!("writing to stdout: {e}");
    writeln!(
        out,
        "cases that ended in a fault on the host (compared too): {}",
        summary.faulting_cases
    )
    .map_err(w)?;
    writeln!(out, "{}", summary.last_line()).map_err(w)?;
    Ok(if summary.mismatches == 0 {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}
