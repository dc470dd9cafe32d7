//! The self-tests' shared driver: a core made of a program over a
//! [`PrivateHierarchy`], run in time order, next to the uncore's
//! partitions (used by [`tester`](crate::tester) and
//! [`latency`](crate::latency)).
//!
//! # The time-ordered event loop
//! Within an epoch a core handles, in time order, the messages the engine
//! hands it and its own events (the program's next step and the
//! hierarchy's, whichever is earlier); a message at the same cycle as an
//! own event goes first. Its clock only moves forward and never before the
//! epoch start (lax mode may hand out a late message). After a message the
//! hierarchy has handled it; after an own event it has advanced to it:
//! each time the program gets one call to react. At the epoch's end the
//! hierarchy's outbox is flushed.

use crate::part::MachinePart;
use crate::private::PrivateHierarchy;
use crate::system::MemSystem;
use crate::MemMsg;
use smpsim_engine::{
    Cycle, EngineBuilder, EngineConfig, EpochCtx, HostThreads, Partition, PartitionSpec, Stats,
    StatsReport,
};

/// A program on a private hierarchy: the parts of a self-test core that
/// differ from one test to another.
pub(crate) trait Driven: Send + std::fmt::Debug {
    /// The core's hierarchy.
    fn hier(&self) -> &PrivateHierarchy;
    /// The same, to drive it, with the core's clock (the time of the last
    /// event it handled).
    fn seat(&mut self) -> (&mut PrivateHierarchy, &mut Cycle);
    /// The program's next event of its own, leaving the hierarchy aside.
    fn own_activity(&self) -> Option<Cycle>;
    /// Called after the hierarchy handled a message at the clock's time.
    fn after_message(&mut self);
    /// Called after the hierarchy advanced to the clock's time, an own event's
    /// (the program's or the hierarchy's).
    fn after_advance(&mut self);

    /// The next cycle the core has work of its own.
    fn next_activity(&self) -> Option<Cycle> {
        match (self.own_activity(), self.hier().next_activity()) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }

    /// Runs one epoch: messages and own events in time order.
    fn run_epoch(&mut self, ctx: &mut EpochCtx<'_, MemMsg>) {
        let end = ctx.epoch_end();
        loop {
            let own = self.next_activity().filter(|&t| t < end);
            let msg = ctx.peek_time().filter(|&t| t < end);
            match (msg, own) {
                (Some(m), o) if o.is_none_or(|o| m <= o) => {
                    let m = ctx.pop_due().expect("peeked");
                    let (hier, clock) = self.seat();
                    *clock = (*clock).max(m.time).max(ctx.epoch_start());
                    hier.handle_message(*clock, m.payload);
                    self.after_message();
                }
                (_, Some(o)) => {
                    let (hier, clock) = self.seat();
                    *clock = (*clock).max(o).max(ctx.epoch_start());
                    hier.advance(*clock);
                    self.after_advance();
                }
                _ => break,
            }
        }
        self.seat().0.flush(ctx);
    }
}

/// A self-test core as an engine partition.
#[derive(Debug)]
struct Seat<C>(C);

impl<C: Driven> Partition for Seat<C> {
    type Msg = MemMsg;
    fn run_epoch(&mut self, ctx: &mut EpochCtx<'_, MemMsg>) {
        Driven::run_epoch(&mut self.0, ctx);
    }
    fn next_activity(&self) -> Option<Cycle> {
        Driven::next_activity(&self.0)
    }
    fn stats(&self) -> &Stats {
        self.0.hier().stats()
    }
}

/// A self-test's partitions: its cores, then the uncore's.
type Part<C> = MachinePart<Seat<C>>;

/// What a self-test run leaves.
#[derive(Debug)]
pub(crate) struct Finished<C> {
    /// The cores, in id order.
    pub cores: Vec<C>,
    /// Every statistic of the run.
    pub stats: StatsReport,
}

/// Runs `cores` (core `k` built on `sys.hierarchy(CoreId(k), …)`) on the
/// uncore of `sys` until nothing is left to do, with epochs of `quantum`
/// cycles (`None`: the lookahead, exact mode).
pub(crate) fn run<C: Driven>(
    sys: &MemSystem,
    cores: Vec<C>,
    quantum: Option<u64>,
    host_threads: HostThreads,
) -> Result<Finished<C>, String> {
    let n = cores.len();
    let mut b = EngineBuilder::new();
    for (i, c) in cores.into_iter().enumerate() {
        b.add(
            Part::Core(Box::new(Seat(c))),
            PartitionSpec::core(format!("core{i}"), "core"),
        );
    }
    sys.add_to(&mut b, Part::Uncore);
    let cfg = EngineConfig {
        quantum: quantum.unwrap_or_else(|| sys.lookahead()),
        host_threads,
        ..EngineConfig::default()
    };
    let mut engine = b.build(cfg).map_err(|e| e.to_string())?;
    engine.run(None, &mut |_| {}).map_err(|e| e.to_string())?;
    let stats = engine.stats_report();
    let cores = engine
        .into_partitions()
        .into_iter()
        .take(n)
        .map(|p| match p {
            Part::Core(c) => c.0,
            Part::Uncore(_) => unreachable!("the first {n} partitions are the cores"),
        })
        .collect();
    Ok(Finished { cores, stats })
}
