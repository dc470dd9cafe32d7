//! The engine: configuration, building, and the run entry point. The
//! epochs themselves (phases, delivery, the active sets, regrouping) are in
//! [`crate::phases`]; the barrier hook's view in [`crate::hook`].

use crate::error::EngineError;
use crate::hook::BarrierCtx;
use crate::message::Inbox;
use crate::partition::{Outbox, Partition, PartitionSpec};
use crate::phases::{Finished, Parts, Shared};
use crate::regroup::Regroup;
use crate::schedule::{assign, HostThreads};
use crate::stats::StatsReport;
use crate::time::{Cycle, PartitionId};
use crate::topology::LinkTable;
use std::time::Duration;

#[path = "snapshot.rs"]
mod snapshot;
pub use snapshot::EngineSnapshot;

/// Engine settings.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct EngineConfig {
    /// Epoch length in cycles (Q ≥ 1).
    pub quantum: u64,
    /// Host threads running the partitions.
    pub host_threads: HostThreads,
    /// How long a thread waits at the barrier before reporting a stuck
    /// epoch and aborting.
    pub watchdog: Duration,
    /// Whether the engine may run the partitions on fewer host threads
    /// while that is faster (results never depend on it).
    pub regroup: Regroup,
}

impl Default for EngineConfig {
    fn default() -> Self {
        EngineConfig {
            quantum: 1,
            host_threads: HostThreads::Count(1),
            watchdog: Duration::from_secs(600),
            regroup: Regroup::default(),
        }
    }
}

/// Why a run stopped.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum StopReason {
    /// No partition had work and no message was in flight.
    Idle,
    /// The cycle limit was reached.
    Limit,
    /// The barrier hook asked to stop, saying why.
    Hook(String),
}

/// What a run did.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RunSummary {
    /// Simulated time at the end of the run.
    pub end: Cycle,
    /// Epochs executed.
    pub epochs: u64,
    /// Cycles jumped over because every partition was idle.
    pub skipped_cycles: u64,
    /// Messages delivered.
    pub messages: u64,
    /// Why it stopped.
    pub stop: StopReason,
}

/// Builds an engine: add partitions, declare links, then [`EngineBuilder::build`].
#[derive(Debug)]
pub struct EngineBuilder<P> {
    parts: Vec<(P, PartitionSpec)>,
    links: Vec<(PartitionId, PartitionId, u64)>,
}

impl<P: Partition> Default for EngineBuilder<P> {
    fn default() -> Self {
        EngineBuilder {
            parts: Vec::new(),
            links: Vec::new(),
        }
    }
}

impl<P: Partition> EngineBuilder<P> {
    /// An empty builder.
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds a partition; ids are given in order from 0.
    pub fn add(&mut self, part: P, spec: PartitionSpec) -> PartitionId {
        self.parts.push((part, spec));
        PartitionId(u32::try_from(self.parts.len() - 1).expect("fewer than 2^32 partitions"))
    }

    /// Declares a one-way link `src → dst` with `latency` cycles.
    pub fn link(&mut self, src: PartitionId, dst: PartitionId, latency: u64) {
        self.links.push((src, dst, latency));
    }

    /// Declares links both ways with the same latency.
    pub fn link_both(&mut self, a: PartitionId, b: PartitionId, latency: u64) {
        self.link(a, b, latency);
        self.link(b, a, latency);
    }

    /// Number of partitions added so far.
    pub fn len(&self) -> usize {
        self.parts.len()
    }

    /// Whether no partition was added.
    pub fn is_empty(&self) -> bool {
        self.parts.is_empty()
    }

    /// Validates links and settings and places partitions on host threads.
    pub fn build(self, config: EngineConfig) -> Result<Engine<P>, EngineError> {
        if config.quantum == 0 {
            return Err(EngineError::ZeroQuantum);
        }
        if self.parts.is_empty() {
            return Err(EngineError::NoPartitions);
        }
        let n = self.parts.len();
        let links = LinkTable::new(n, &self.links)?;
        let is_core: Vec<bool> = self.parts.iter().map(|(_, s)| s.is_core).collect();
        let (owner, threads) = assign(&is_core, config.host_threads);
        let slots = self
            .parts
            .into_iter()
            .map(|(part, spec)| {
                let due = part.next_activity();
                Slot {
                    part,
                    spec,
                    inbox: Inbox::default(),
                    seq: 0,
                    due,
                }
            })
            .collect();
        let outboxes = (0..threads)
            .map(|_| [Outbox::new(threads), Outbox::new(threads)])
            .collect();
        Ok(Engine {
            slots,
            outboxes,
            links,
            owner,
            is_core,
            threads,
            config,
            now: Cycle::ZERO,
            parity: 0,
            barrier_seq: 0,
            wake: None,
        })
    }
}

pub(crate) struct Slot<P: Partition> {
    pub(crate) part: P,
    pub(crate) spec: PartitionSpec,
    pub(crate) inbox: Inbox<P::Msg>,
    pub(crate) seq: u64,
    /// Earliest pending work: own activity or inbox, as of its last update
    /// (the key of its entry in its thread's active set).
    pub(crate) due: Option<Cycle>,
}

impl<P: Partition> Slot<P> {
    /// The due cycle from the partition and its inbox now.
    pub(crate) fn current_due(&self) -> Option<Cycle> {
        min_opt(self.part.next_activity(), self.inbox.peek_time())
    }
}

pub(crate) fn min_opt(a: Option<Cycle>, b: Option<Cycle>) -> Option<Cycle> {
    match (a, b) {
        (Some(x), Some(y)) => Some(x.min(y)),
        (x, None) => x,
        (None, y) => y,
    }
}

/// The parallel discrete-event engine: partitions, links, epochs.
///
/// ```
/// use smpsim_engine::*;
///
/// /// Counts down, one tick per cycle, and stops at zero.
/// struct Countdown { left: u64, now: Cycle, stats: Stats }
/// impl Partition for Countdown {
///     type Msg = ();
///     fn run_epoch(&mut self, ctx: &mut EpochCtx<'_, ()>) {
///         while self.left > 0 && self.now < ctx.epoch_end() {
///             self.left -= 1;
///             self.now += 1;
///         }
///     }
///     fn next_activity(&self) -> Option<Cycle> { (self.left > 0).then_some(self.now) }
///     fn stats(&self) -> &Stats { &self.stats }
/// }
///
/// let mut b = EngineBuilder::new();
/// b.add(Countdown { left: 100, now: Cycle(0), stats: Stats::default() },
///       PartitionSpec::core("core0", "core"));
/// let mut engine = b.build(EngineConfig { quantum: 30, ..Default::default() }).unwrap();
/// let summary = engine.run(None, &mut |_: &mut BarrierCtx<'_, Countdown>| {}).unwrap();
/// assert_eq!(summary.stop, StopReason::Idle);
/// assert_eq!(summary.end, Cycle(120)); // four epochs of 30
/// ```
pub struct Engine<P: Partition> {
    slots: Vec<Slot<P>>,
    /// `[writer thread][parity]`.
    outboxes: Vec<[Outbox<P::Msg>; 2]>,
    links: LinkTable,
    /// The static placement; a run may regroup, and starts from this.
    owner: Vec<u32>,
    is_core: Vec<bool>,
    threads: usize,
    config: EngineConfig,
    now: Cycle,
    parity: usize,
    barrier_seq: u64,
    /// A barrier the next run must hold no later than (see
    /// [`Engine::wake_at`]).
    wake: Option<Cycle>,
}

impl<P: Partition> std::fmt::Debug for Engine<P> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Engine")
            .field("partitions", &self.slots.len())
            .field("threads", &self.threads)
            .field("quantum", &self.config.quantum)
            .field("lookahead", &self.links.lookahead())
            .field("now", &self.now)
            .finish()
    }
}

impl<P: Partition> Engine<P> {
    /// The smallest link latency, if any link exists.
    pub fn lookahead(&self) -> Option<u64> {
        self.links.lookahead()
    }

    /// The quantum (epoch length) in cycles.
    pub fn quantum(&self) -> u64 {
        self.config.quantum
    }

    /// Whether Q ≤ L, so results equal lockstep (Q = 1) results.
    pub fn is_exact(&self) -> bool {
        self.lookahead().is_none_or(|l| self.config.quantum <= l)
    }

    /// Host threads the partitions run on.
    pub fn host_threads(&self) -> usize {
        self.threads
    }

    /// The host thread each partition runs on, by partition id.
    pub fn placement(&self) -> &[u32] {
        &self.owner
    }

    /// Simulated time: the end of the last epoch run.
    pub fn now(&self) -> Cycle {
        self.now
    }

    /// Number of partitions.
    pub fn len(&self) -> usize {
        self.slots.len()
    }

    /// Always false: an engine has at least one partition.
    pub fn is_empty(&self) -> bool {
        self.slots.is_empty()
    }

    /// A partition by id.
    pub fn partition(&self, id: PartitionId) -> &P {
        &self.slots[id.index()].part
    }

    /// A partition by id, mutably (between runs). Its next activity is
    /// re-read when the next run starts.
    pub fn partition_mut(&mut self, id: PartitionId) -> &mut P {
        &mut self.slots[id.index()].part
    }

    /// Every partition with its spec, in id order.
    pub fn partitions(&self) -> impl Iterator<Item = (&P, &PartitionSpec)> {
        self.slots.iter().map(|s| (&s.part, &s.spec))
    }

    /// The statistics of every partition, merged per group.
    pub fn stats_report(&self) -> StatsReport {
        StatsReport::collect(self.slots.iter().flat_map(|s| {
            let (name, group) = (s.spec.name.as_str(), s.spec.group.as_str());
            std::iter::once((name, group, s.part.stats()))
                .chain(s.part.more_stats().map(|m| (name, group, m)))
        }))
    }

    /// Takes the partitions back, in id order.
    pub fn into_partitions(self) -> Vec<P> {
        self.slots.into_iter().map(|s| s.part).collect()
    }

    /// Runs epochs until every partition is idle with nothing in flight, the
    /// hook stops the run, or simulated time reaches `limit`. The hook runs
    /// in every barrier phase with the machine quiescent.
    ///
    /// On a panic inside a partition or the hook the run stops at that
    /// epoch's barrier and returns [`EngineError::Panicked`]; the partitions
    /// and their statistics stay readable.
    pub fn run<H>(&mut self, limit: Option<Cycle>, hook: &mut H) -> Result<RunSummary, EngineError>
    where
        H: FnMut(&mut BarrierCtx<'_, P>) + Send,
    {
        let limit = limit.unwrap_or(Cycle::MAX);
        for slot in &mut self.slots {
            slot.due = slot.current_due();
        }
        let mut control = Control {
            start: self.now,
            end: self.now,
            parity: self.parity,
            stop: None,
            summary: RunSummary {
                end: self.now,
                epochs: 0,
                skipped_cycles: 0,
                messages: 0,
                stop: StopReason::Idle,
            },
            limit,
            barrier_seq: self.barrier_seq,
            sample: false,
        };
        // The first epoch starts where the earliest work is.
        let pending = self.outboxes.iter().map(|o| o[1 - self.parity].min_time);
        let first = self
            .slots
            .iter()
            .filter_map(|s| s.due)
            .chain(pending)
            .chain(self.wake.take())
            .min();
        control.schedule_from(self.now, first, self.config.quantum);
        let parts = Parts {
            slots: std::mem::take(&mut self.slots),
            outboxes: std::mem::take(&mut self.outboxes),
            owner: &self.owner,
            is_core: &self.is_core,
            links: &self.links,
            threads: self.threads,
            config: &self.config,
        };
        let shared = Shared::new(parts, control, hook);
        shared.run_threads();
        let Finished {
            slots,
            outboxes,
            control,
            panic,
        } = shared.finish();
        self.slots = slots;
        self.outboxes = outboxes;
        self.now = control.summary.end;
        self.parity = control.parity;
        self.barrier_seq = control.barrier_seq;
        match panic {
            Some(p) => Err(EngineError::Panicked {
                component: p.component,
                cycle: p.cycle,
                message: p.message,
            }),
            None => Ok(control.summary),
        }
    }
}

/// Epoch parameters: written by the leader in the serial phase, read by
/// every thread in the parallel phase.
#[derive(Debug)]
pub(crate) struct Control {
    pub(crate) start: Cycle,
    pub(crate) end: Cycle,
    pub(crate) parity: usize,
    pub(crate) stop: Option<StopReason>,
    pub(crate) summary: RunSummary,
    pub(crate) limit: Cycle,
    pub(crate) barrier_seq: u64,
    /// Whether the running threads time this epoch (for regrouping).
    pub(crate) sample: bool,
}

impl Control {
    /// Sets up the epoch following time `now` given the earliest pending
    /// work, or stops.
    pub(crate) fn schedule_from(&mut self, now: Cycle, earliest: Option<Cycle>, quantum: u64) {
        self.summary.end = now;
        let Some(next) = earliest else {
            self.stop = Some(StopReason::Idle);
            return;
        };
        // Epochs stay aligned to multiples of Q even across skips, so every
        // multiple of Q is a barrier whatever was skipped.
        let start = Cycle(next.get() / quantum * quantum).max(now);
        if start >= self.limit {
            self.summary.end = self.limit.max(now);
            self.stop = Some(StopReason::Limit);
            return;
        }
        self.summary.skipped_cycles += start - now;
        self.start = start;
        let boundary = (start.get() / quantum)
            .saturating_add(1)
            .saturating_mul(quantum);
        self.end = Cycle(boundary).min(self.limit);
    }
}
