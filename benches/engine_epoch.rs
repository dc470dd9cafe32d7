//! Engine cost per epoch: partitions that do no work but are never idle, so
//! every epoch runs every partition and crosses the barrier; then the
//! idle-partition case: many partitions of which only one is busy, the
//! others waiting for a message that never comes (an epoch should cost what
//! the busy one costs, not what the partition count costs).
//!
//! `cargo bench --bench engine_epoch` prints one row per (partitions, busy,
//! host threads): nanoseconds per epoch, the median of several timed runs.

use smpsim_engine::*;
use std::time::Instant;

struct Busy {
    now: Cycle,
    /// Idle partitions have no work of their own.
    idle: bool,
    stats: Stats,
}

impl Partition for Busy {
    type Msg = ();
    fn run_epoch(&mut self, ctx: &mut EpochCtx<'_, ()>) {
        self.now = ctx.epoch_end();
    }
    fn next_activity(&self) -> Option<Cycle> {
        (!self.idle).then_some(self.now)
    }
    fn stats(&self) -> &Stats {
        &self.stats
    }
}

fn ns_per_epoch(partitions: u32, busy: u32, threads: HostThreads, epochs: u64) -> f64 {
    let mut b = EngineBuilder::new();
    for i in 0..partitions {
        let busy = Busy {
            now: Cycle::ZERO,
            idle: i >= busy,
            stats: Stats::default(),
        };
        b.add(busy, PartitionSpec::core(format!("p{i}"), "core"));
    }
    let config = EngineConfig {
        quantum: 1,
        host_threads: threads,
        ..Default::default()
    };
    let mut engine = b.build(config).expect("valid machine");
    let start = Instant::now();
    let s = engine
        .run(Some(Cycle(epochs)), &mut |_: &mut BarrierCtx<'_, Busy>| {})
        .expect("runs");
    assert_eq!(s.epochs, epochs);
    start.elapsed().as_nanos() as f64 / epochs as f64
}

fn main() {
    let host_cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    println!("engine cost per epoch (host has {host_cores} cores)");
    println!(
        "{:>10} {:>6} {:>12} {:>12}",
        "partitions", "busy", "host threads", "ns/epoch"
    );
    let cases = [2u32, 4, 16, 64].map(|p| (p, p)).into_iter();
    for (partitions, busy) in cases.chain([(1024, 1)]) {
        let counts = [1usize, 2, 4, 8, 16]
            .into_iter()
            .filter(|&t| t <= host_cores.max(2))
            .map(HostThreads::Count);
        // per-core: one thread per partition, oversubscribed on small hosts.
        for threads in counts.chain([HostThreads::PerCore]) {
            if partitions > 64 && threads == HostThreads::PerCore {
                continue; // 1024 OS threads: not a useful row
            }
            let epochs = match threads {
                HostThreads::PerCore => 20_000 / u64::from(busy),
                HostThreads::Count(_) => 200_000 / u64::from(busy),
            };
            let mut runs: Vec<f64> = (0..5)
                .map(|_| ns_per_epoch(partitions, busy, threads, epochs))
                .collect();
            runs.sort_by(f64::total_cmp);
            println!(
                "{partitions:>10} {busy:>6} {:>12} {:>12.0}",
                threads.to_string(),
                runs[2]
            );
        }
    }
}
