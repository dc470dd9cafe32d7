//! Engine cost per epoch: partitions that do no work but are never idle, so
//! every epoch runs every partition and crosses the barrier.
//!
//! `cargo bench --bench engine_epoch` prints one row per (partitions, host
//! threads): nanoseconds per epoch, the median of several timed runs.

use smpsim_engine::*;
use std::time::Instant;

struct Busy {
    now: Cycle,
    stats: Stats,
}

impl Partition for Busy {
    type Msg = ();
    fn run_epoch(&mut self, ctx: &mut EpochCtx<'_, ()>) {
        self.now = ctx.epoch_end();
    }
    fn next_activity(&self) -> Option<Cycle> {
        Some(self.now)
    }
    fn stats(&self) -> &Stats {
        &self.stats
    }
}

fn ns_per_epoch(partitions: u32, threads: HostThreads, epochs: u64) -> f64 {
    let mut b = EngineBuilder::new();
    for i in 0..partitions {
        let busy = Busy {
            now: Cycle::ZERO,
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
        "{:>10} {:>12} {:>12}",
        "partitions", "host threads", "ns/epoch"
    );
    for partitions in [2u32, 4, 16, 64] {
        let counts = [1usize, 2, 4, 8, 16]
            .into_iter()
            .filter(|&t| t <= host_cores.max(2))
            .map(HostThreads::Count);
        // per-core: one thread per partition, oversubscribed on small hosts.
        for threads in counts.chain([HostThreads::PerCore]) {
            let epochs = match threads {
                HostThreads::PerCore => 20_000 / u64::from(partitions),
                HostThreads::Count(_) => 200_000 / u64::from(partitions),
            };
            let mut runs: Vec<f64> = (0..5)
                .map(|_| ns_per_epoch(partitions, threads, epochs))
                .collect();
            runs.sort_by(f64::total_cmp);
            println!(
                "{partitions:>10} {:>12} {:>12.0}",
                threads.to_string(),
                runs[2]
            );
        }
    }
}
