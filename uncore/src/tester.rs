//! The coherence random tester (DESIGN.md §8): C cores issue random loads,
//! stores and locked read-modify-writes to a small set of shared lines and
//! every value is checked against a reference.
//!
//! # The reference under parallel execution
//! Each store writes a value unique to `(core, sequence)`. Every core's
//! hierarchy logs each access of machine memory it performs, with its
//! simulated time, in execution order. Under the ownership rule, accesses
//! to one word that conflict (a write and anything else) are ordered by
//! simulated time (permission moves only through messages, which take at
//! least a cycle), so after the run the logs merged per word in
//! `(time, core, log position)` order are that word's coherence order. The
//! checker replays it from zero: every logged read must return the last
//! logged write. On top of that:
//! - loads served from the store buffer must return the core's own last
//!   store to that word (x86-TSO forwarding);
//! - every value read must be 0 or one some core actually stored;
//! - a locked fetch-add counter per line must end at the exact number of
//!   fetch-adds done on it (atomicity);
//! - the shadow owner table checks the single-writer invariant at every
//!   permission change and access.
//!
//! With `contexts > 1` each operation comes from a random SMT context of
//! its core (forwarding is then checked per context). With a prefetcher
//! at the L1D or the L2 (not `none`) every core runs it, and the shared lines
//! are packed into one page so that prefetches of neighbouring lines race
//! with the other cores' requests.
//!
//! Violations of all of these are summed into one count. The run is
//! deterministic: the same output for any number of host threads.

mod core;

use self::core::{LineSet, TestCore};
use crate::config::{
    CacheConfig, HierarchyConfig, L3Config, PrefetchConfig, PrefetchKind, Protocol, ReplacementKind,
};
use crate::dram::DramConfig;
use crate::driver;
use crate::ids::CoreId;
use crate::interconnect::{CrossbarConfig, InterconnectConfig, TopologyKind};
use crate::memory::MachineMemory;
use crate::private::LogEntry;
use crate::system::{MemSystem, MemSystemConfig};
use smpsim_engine::{HostThreads, PartitionId, StatsReport};
use std::sync::Arc;

/// What to run.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TesterConfig {
    /// Simulated cores.
    pub cores: u32,
    /// Operations in total, dealt evenly to the cores.
    pub ops: u64,
    /// Seed of every core's generator.
    pub seed: u64,
    /// Host threads.
    pub host_threads: HostThreads,
    /// Coherence protocol.
    pub protocol: Protocol,
    /// Replacement policy of every cache.
    pub replacement: ReplacementKind,
    /// Epoch length; `None` uses the lookahead (exact mode). Larger
    /// values run in lax mode: timing may shift, values must stay right.
    pub quantum: Option<u64>,
    /// SMT contexts per core (each operation is issued by a random one).
    pub contexts: u8,
    /// Prefetcher of every L1D (`none`: no prefetch statistics).
    pub l1d_prefetch: PrefetchKind,
    /// Prefetcher of every L2.
    pub l2_prefetch: PrefetchKind,
}

impl Default for TesterConfig {
    fn default() -> Self {
        TesterConfig {
            cores: 4,
            ops: 10_000,
            seed: 1,
            host_threads: HostThreads::Count(1),
            protocol: Protocol::Mesi,
            replacement: ReplacementKind::Lru,
            quantum: None,
            contexts: 1,
            l1d_prefetch: PrefetchKind::None,
            l2_prefetch: PrefetchKind::None,
        }
    }
}

/// What a run found.
#[derive(Clone, Debug, PartialEq)]
pub struct TesterReport {
    /// Cores simulated.
    pub cores: u32,
    /// Operations done.
    pub ops: u64,
    /// Loads (instruction fetches included), stores, locked operations done.
    pub mix: [u64; 3],
    /// Values that disagreed with the reference, plus atomicity and
    /// ownership violations.
    pub violations: u64,
    /// Reads checked against the coherence order.
    pub checked_reads: u64,
    /// Cycle of the last event any core handled.
    pub cycles: u64,
    /// The engine's lookahead.
    pub lookahead: u64,
    /// Every statistic of the run.
    pub stats: StatsReport,
}

/// The small, conflict-heavy hierarchy the tester uses: tiny caches so
/// that evictions, back-invalidations and races are frequent. `prefetch`
/// names the L1D's and the L2's prefetchers (their prefetches race with
/// the other cores' requests like any miss).
pub fn stress_config(
    protocol: Protocol,
    replacement: ReplacementKind,
    prefetch: [PrefetchKind; 2],
) -> MemSystemConfig {
    let small = |sets, ways, latency, mshrs| CacheConfig {
        sets,
        ways,
        latency,
        mshrs,
        replacement,
        ..CacheConfig::default()
    };
    let prefetching = |c: CacheConfig, kind| CacheConfig {
        prefetch: PrefetchConfig {
            kind,
            ..PrefetchConfig::default()
        },
        ..c
    };
    MemSystemConfig {
        hierarchy: HierarchyConfig {
            protocol,
            // One MSHR: a load behind a store miss stalls and retries.
            l1i: small(4, 2, 2, 1),
            l1d: prefetching(small(4, 2, 3, 1), prefetch[0]),
            l2: prefetching(small(8, 2, 8, 2), prefetch[1]),
            l3: L3Config {
                slices: 2,
                sets: 4,
                ways: 2,
                latency: 10,
                mshrs: 6,
                replacement,
                ..L3Config::default()
            },
            store_buffer: 4,
            check_ownership: true,
            seed: 1,
            ..HierarchyConfig::default()
        },
        // Short DRAM queues: requests back up at the controller.
        dram: DramConfig {
            read_queue: 4,
            write_queue: 4,
            ..DramConfig::default()
        },
        // A crossbar: every link 5 cycles, so epochs (Q = L) are longer
        // than on the default mesh's 2-cycle same-tile links.
        interconnect: InterconnectConfig {
            topology: TopologyKind::Crossbar,
            crossbar: CrossbarConfig { latency: 5 },
            ..InterconnectConfig::default()
        },
    }
}

/// Runs the tester.
pub fn run(cfg: &TesterConfig) -> Result<TesterReport, String> {
    if cfg.cores == 0 {
        return Err("the coherence tester needs at least 1 core".into());
    }
    let mem = Arc::new(MachineMemory::new(LineSet::MEMORY).map_err(|e| e.to_string())?);
    let prefetch = [cfg.l1d_prefetch, cfg.l2_prefetch];
    let sys_cfg = stress_config(cfg.protocol, cfg.replacement, prefetch);
    let sys = MemSystem::new(&sys_cfg, cfg.cores, Arc::clone(&mem), PartitionId(0))
        .map_err(|e| e.to_string())?;
    let lines = LineSet::new(prefetch != [PrefetchKind::None; 2]);
    let cores = (0..cfg.cores)
        .map(|c| {
            let per = cfg.ops / u64::from(cfg.cores)
                + u64::from(u64::from(c) < cfg.ops % u64::from(cfg.cores));
            let hier = sys.hierarchy(CoreId(c), smpsim_engine::StatsBuilder::new());
            TestCore::new(CoreId(c), hier, lines, cfg.contexts, per, cfg.seed)
        })
        .collect();
    let lookahead = sys.lookahead();
    let done = driver::run(&sys, cores, cfg.quantum, cfg.host_threads)?;
    let (cores, stats) = (done.cores, done.stats);
    Ok(check(
        cfg,
        &cores,
        &mem,
        sys.ownership_violations(),
        lookahead,
        stats,
    ))
}

fn check(
    cfg: &TesterConfig,
    cores: &[TestCore],
    mem: &MachineMemory,
    ownership: u64,
    lookahead: u64,
    stats: StatsReport,
) -> TesterReport {
    let mut violations = ownership;
    let mut mix = [0u64; 3];
    let mut unfinished = 0;
    for c in cores {
        violations += c.violations();
        for (m, x) in mix.iter_mut().zip(c.mix()) {
            *m += x;
        }
        unfinished += u64::from(!c.finished());
    }
    violations += unfinished;
    let (bad, checked_reads) = replay(cores);
    violations += bad;
    let lines = LineSet::new([cfg.l1d_prefetch, cfg.l2_prefetch] != [PrefetchKind::None; 2]);
    violations += lines.check_counters(mem, cores);
    violations += lines.check_values(cores);
    TesterReport {
        cores: cfg.cores,
        ops: cfg.ops,
        mix,
        violations,
        checked_reads,
        cycles: cores.iter().map(|c| c.now().get()).max().unwrap_or(0),
        lookahead,
        stats,
    }
}

/// Replays every word's accesses in coherence order; returns
/// `(reads disagreeing, reads checked)`.
fn replay(cores: &[TestCore]) -> (u64, u64) {
    let mut all: Vec<(u64, u64, u32, usize, &LogEntry)> = Vec::new();
    for c in cores {
        for (i, e) in c.log().iter().enumerate() {
            assert_eq!(e.size, 8, "the tester accesses aligned words");
            all.push((e.addr.get(), e.time.get(), c.id().0, i, e));
        }
    }
    all.sort_unstable_by_key(|&(a, t, c, i, _)| (a, t, c, i));
    let (mut bad, mut checked) = (0, 0);
    let mut word = u64::MAX;
    let mut current = 0u128;
    for (a, _, _, _, e) in all {
        if a != word {
            word = a;
            current = 0;
        }
        if e.write {
            current = e.value;
        } else {
            checked += 1;
            bad += u64::from(e.value != current);
        }
    }
    (bad, checked)
}

/// The tester's last line.
pub fn summary_line(r: &TesterReport) -> String {
    format!(
        "coherence-test: {} cores, {} ops, {} violations",
        r.cores, r.ops, r.violations
    )
}

/// Deterministic detail lines printed before the summary: simulated time,
/// the operation mix, and the protocol events that stress the races.
pub fn detail_lines(r: &TesterReport) -> Vec<String> {
    let g = |group: &str, name: &str| r.stats.group_counter(group, name).unwrap_or(0);
    vec![
        format!("simulated cycles: {} (lookahead {})", r.cycles, r.lookahead),
        format!("loads {}, stores {}, locked rmw {}; reads checked against coherence order {}", r.mix[0], r.mix[1], r.mix[2], r.checked_reads),
        format!(
            "l2: read misses {}, write misses {}, upgrades {}, coherence misses {}, writebacks {}, mshr merges {}",
            g("core", "l2.read_misses"),
            g("core", "l2.write_misses"),
            g("core", "l2.upgrades"),
            g("core", "l2.coherence_misses"),
            g("core", "l2.writebacks"),
            g("core", "l2.mshr_merges")
        ),
        format!(
            "directory: forwards {}, invalidations {}, back-invalidations {}, deferred {}, stale puts {}, memory reads {}",
            g("l3", "dir.forwards"),
            g("l3", "dir.invalidations"),
            g("l3", "dir.back_invalidations"),
            g("l3", "dir.deferred"),
            g("l3", "dir.stale_puts"),
            g("l3", "dir.mem_reads")
        ),
    ]
}
