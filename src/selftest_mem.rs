//! `smpsim selftest coherence` and `smpsim selftest latency`: the memory
//! hierarchy's self-checks (see `smpsim_uncore::tester` and
//! `smpsim_uncore::latency`).
//!
//! Everything printed on stdout is deterministic (identical for any number
//! of host threads); host time goes to stderr.

use smpsim_engine::HostThreads;
use smpsim_uncore::config::{PrefetchKind, Protocol, ReplacementKind};
use smpsim_uncore::latency;
use smpsim_uncore::tester::{self, TesterConfig};
use std::process::ExitCode;
use std::time::Instant;

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
    pub host_threads: HostThreads,
    /// Coherence protocol: mesi or moesi.
    #[arg(long, default_value = "mesi", value_parser = parse_protocol)]
    pub protocol: Protocol,
    /// Replacement policy of every cache: lru, srrip or random.
    #[arg(long, default_value = "lru", value_parser = parse_replacement)]
    pub replacement: ReplacementKind,
    /// Epoch length in cycles (default: the lookahead, exact mode).
    #[arg(long)]
    pub quantum: Option<u64>,
    /// SMT contexts per core sharing its caches and store buffer.
    #[arg(long, default_value_t = 1)]
    pub contexts: u8,
    /// Prefetcher of every L1D: none, next-line or stride.
    #[arg(long, default_value = "none", value_parser = str::parse::<PrefetchKind>)]
    pub l1d_prefetch: PrefetchKind,
    /// Prefetcher of every L2: none, next-line or stride.
    #[arg(long, default_value = "none", value_parser = str::parse::<PrefetchKind>)]
    pub l2_prefetch: PrefetchKind,
}

fn parse_protocol(s: &str) -> Result<Protocol, String> {
    match s {
        "mesi" => Ok(Protocol::Mesi),
        "moesi" => Ok(Protocol::Moesi),
        _ => Err(format!("protocol {s:?}: expected mesi or moesi")),
    }
}

fn parse_replacement(s: &str) -> Result<ReplacementKind, String> {
    match s {
        "lru" => Ok(ReplacementKind::Lru),
        "srrip" => Ok(ReplacementKind::Srrip),
        "random" => Ok(ReplacementKind::Random),
        _ => Err(format!("replacement {s:?}: expected lru, srrip or random")),
    }
}

/// Arguments of `smpsim selftest latency`.
#[derive(clap::Args, Debug)]
pub struct LatencyArgs {
    /// Dependent loads measured per working set.
    #[arg(long, default_value_t = 2_000)]
    pub loads: u64,
    /// Ping-pong rounds.
    #[arg(long, default_value_t = 200)]
    pub rounds: u64,
    /// Allowed relative error against the implied latency, in percent.
    #[arg(long, default_value_t = 10.0)]
    pub tolerance: f64,
}

/// Runs the coherence random tester.
pub fn run_coherence(args: &CoherenceArgs) -> Result<ExitCode, String> {
    let cores =
        u32::try_from(args.cores).map_err(|_| format!("--cores {}: too many", args.cores))?;
    let cfg = TesterConfig {
        cores,
        ops: args.ops,
        seed: args.seed,
        host_threads: args.host_threads,
        protocol: args.protocol,
        replacement: args.replacement,
        quantum: args.quantum,
        contexts: args.contexts,
        l1d_prefetch: args.l1d_prefetch,
        l2_prefetch: args.l2_prefetch,
    };
    let started = Instant::now();
    let r = tester::run(&cfg)?;
    eprintln!("host time: {:.2} s", started.elapsed().as_secs_f64());
    for line in tester::detail_lines(&r) {
        println!("{line}");
    }
    println!("{}", tester::summary_line(&r));
    Ok(if r.violations == 0 {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}

/// Runs the latency microbenchmarks.
pub fn run_latency(args: &LatencyArgs) -> Result<ExitCode, String> {
    let cfg = latency::LatencyConfig {
        chase_loads: args.loads.max(1),
        rounds: args.rounds.max(2),
        ..latency::LatencyConfig::default()
    };
    let started = Instant::now();
    let results = latency::run(&cfg)?;
    eprintln!("host time: {:.2} s", started.elapsed().as_secs_f64());
    let (lines, ok) = latency::report(&results, args.tolerance / 100.0);
    for line in lines {
        println!("{line}");
    }
    println!(
        "latency-test: {} levels, {}",
        results.len(),
        if ok {
            "all within tolerance"
        } else {
            "some outside tolerance"
        }
    );
    Ok(if ok {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}
