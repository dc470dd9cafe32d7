//! The run summary `smpsim run` prints, and the exit status that goes with
//! it.

use smpsim::machine::{RunReport, INTERRUPTED};
use smpsim::report::machine_line;
use std::process::ExitCode;

/// How a run ended, for the summary's last line and the exit status.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Outcome {
    /// Every domain powered off normally: exit status 0.
    Success,
    /// A guest failed or the simulator stopped with an error: status 1.
    Failed,
    /// The cycle limit (`--max-cycles` or `max_cycles`) was reached with
    /// nothing failed: status 3. A limit is set on purpose, so this is not
    /// a failure, but the workload did not finish either.
    Limit,
    /// SIGINT or SIGTERM stopped the run at a barrier: status 130.
    Interrupted,
}

/// Exit status of a run that reached its cycle limit.
pub const EXIT_LIMIT: u8 = 3;

impl Outcome {
    /// Classifies a finished run.
    pub fn of(r: &RunReport) -> Outcome {
        let failed = r.error.is_some() || r.shutdowns.iter().any(|s| !s.success);
        if r.success {
            Outcome::Success
        } else if failed {
            Outcome::Failed
        } else if r.stop == INTERRUPTED {
            Outcome::Interrupted
        } else if r.stop == "cycle limit" {
            Outcome::Limit
        } else {
            Outcome::Failed
        }
    }

    /// The summary's `result` text.
    pub fn text(self) -> &'static str {
        match self {
            Outcome::Success => "success",
            Outcome::Failed => "FAILED",
            Outcome::Limit => "incomplete: stopped at the cycle limit (exit status 3)",
            Outcome::Interrupted => "incomplete: interrupted (exit status 130)",
        }
    }

    /// The process exit status.
    pub fn exit_code(self) -> ExitCode {
        match self {
            Outcome::Success => ExitCode::SUCCESS,
            Outcome::Failed => ExitCode::FAILURE,
            Outcome::Limit => ExitCode::from(EXIT_LIMIT),
            Outcome::Interrupted => ExitCode::from(smpsim::interrupt::EXIT_INTERRUPTED),
        }
    }
}

/// Why the run stopped, naming the limit that was set.
fn stop_line(r: &RunReport) -> String {
    match r.stop.as_str() {
        "cycle limit" => format!(
            "cycle limit ({} cycles, --max-cycles or max_cycles)",
            r.config.max_cycles
        ),
        INTERRUPTED => "interrupted (SIGINT/SIGTERM) at the next barrier; results so far".into(),
        s => s.to_owned(),
    }
}

fn rate(hits: u64, total: u64) -> String {
    if total == 0 {
        "-".into()
    } else {
        format!("{:.1}%", 100.0 * hits as f64 / total as f64)
    }
}

pub fn print_summary(r: &RunReport) {
    println!("---- smpsim run summary ----");
    println!("machine      {}", machine_line(&r.machine, &r.config));
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
    println!("stopped      {}", stop_line(r));
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
    for (group, level) in [
        ("core", "l1i"),
        ("core", "l1d"),
        ("core", "l2"),
        ("l3", "l3"),
    ] {
        let hits = g(group, &format!("{level}.hits"));
        let misses = g(group, &format!("{level}.misses"));
        if hits + misses > 0 || level != "l1i" {
            println!("{level:<12} hit rate {}", rate(hits, hits + misses));
        }
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
    let rss = match (r.host.peak_rss_mib, r.host.rss_per_core_kib) {
        (Some(m), Some(k)) => format!(", peak RSS {m:.0} MiB ({k:.0} KiB per core)"),
        _ => String::new(),
    };
    println!(
        "host         {:.2} s, {} thread(s), {:.2} simulated MIPS{rss}",
        r.host.seconds, r.host.threads, r.host.mips
    );
    println!("result       {}", Outcome::of(r).text());
}
