//! The engine: epochs, the barrier phase, message delivery, idle skipping.
//!
//! # Phases and who may touch what
//! Each host thread `t` loops over epochs. In the **parallel phase** of an
//! epoch it (1) drains bucket `t` of every thread's outbox of the previous
//! epoch (parity `1 - p`) into the inboxes of its own partitions, then
//! (2) runs its own partitions, writing into its own outbox of parity `p`.
//! Then all threads meet at the barrier; the last to arrive runs the
//! **serial phase** (barrier hook, idle skipping, termination) with every
//! other thread waiting.
//!
//! So, in the parallel phase, a partition slot is touched only by its
//! owner; outbox `(w, p)` only by writer `w`; bucket `t` of outbox
//! `(w, 1 - p)` only by reader `t` (its writer finished before the barrier).
//! In the serial phase only the leader touches anything. The barrier's
//! SeqCst generation counter orders the phases. These rules are what make
//! the `unsafe` accesses below sound.

use crate::barrier::EpochBarrier;
use crate::error::EngineError;
use crate::message::{Inbox, Message};
use crate::partition::{EpochCtx, Outbox, Partition, PartitionSpec};
use crate::schedule::{assign, HostThreads};
use crate::stats::StatsReport;
use crate::time::{Cycle, PartitionId};
use crate::topology::LinkTable;
use parking_lot::Mutex;
use std::cell::UnsafeCell;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::time::Duration;

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
}

impl Default for EngineConfig {
    fn default() -> Self {
        EngineConfig {
            quantum: 1,
            host_threads: HostThreads::Count(1),
            watchdog: Duration::from_secs(600),
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
                let next = part.next_activity();
                Slot {
                    part,
                    spec,
                    inbox: Inbox::default(),
                    seq: 0,
                    next,
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
            threads,
            config,
            now: Cycle::ZERO,
            parity: 0,
            barrier_seq: 0,
        })
    }
}

struct Slot<P: Partition> {
    part: P,
    spec: PartitionSpec,
    inbox: Inbox<P::Msg>,
    seq: u64,
    /// Earliest pending work: own activity or inbox, as of its last update.
    next: Option<Cycle>,
}

impl<P: Partition> Slot<P> {
    fn refresh_next(&mut self) {
        self.next = min_opt(self.part.next_activity(), self.inbox.peek_time());
    }
}

fn min_opt(a: Option<Cycle>, b: Option<Cycle>) -> Option<Cycle> {
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
    owner: Vec<u32>,
    threads: usize,
    config: EngineConfig,
    now: Cycle,
    parity: usize,
    barrier_seq: u64,
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
    /// re-read before the next epoch.
    pub fn partition_mut(&mut self, id: PartitionId) -> &mut P {
        let slot = &mut self.slots[id.index()];
        slot.next = Some(Cycle::ZERO);
        &mut slot.part
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
            slot.refresh_next();
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
        };
        // The first epoch starts where the earliest work is.
        let pending = self.outboxes.iter().map(|o| o[1 - self.parity].min_time);
        let first = self
            .slots
            .iter()
            .filter_map(|s| s.next)
            .chain(pending)
            .min();
        control.schedule_from(self.now, first, self.config.quantum);
        let parts = Parts {
            slots: std::mem::take(&mut self.slots),
            outboxes: std::mem::take(&mut self.outboxes),
            owner: &self.owner,
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
struct Control {
    start: Cycle,
    end: Cycle,
    parity: usize,
    stop: Option<StopReason>,
    summary: RunSummary,
    limit: Cycle,
    barrier_seq: u64,
}

impl Control {
    /// Sets up the epoch following time `now` given the earliest pending
    /// work, or stops.
    fn schedule_from(&mut self, now: Cycle, earliest: Option<Cycle>, quantum: u64) {
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

struct Finished<P: Partition> {
    slots: Vec<Slot<P>>,
    outboxes: Vec<[Outbox<P::Msg>; 2]>,
    control: Control,
    panic: Option<Panicked>,
}

struct Panicked {
    component: String,
    cycle: Cycle,
    order: u64,
    message: String,
}

/// A cell whose exclusive access is guaranteed by the phase rules in the
/// module docs rather than by the borrow checker.
struct PhaseCell<T>(UnsafeCell<T>);

// SAFETY: the phase rules in the module docs ensure that at any time a cell
// is accessed by at most one thread, and the barrier orders hand-overs.
unsafe impl<T: Send> Sync for PhaseCell<T> {}

impl<T> PhaseCell<T> {
    /// # Safety
    /// The caller holds the access right that the phase rules give it, and
    /// no other reference from this cell is alive.
    #[allow(clippy::mut_from_ref)]
    unsafe fn get(&self) -> &mut T {
        // SAFETY: exclusivity is the caller's obligation (see above).
        unsafe { &mut *self.0.get() }
    }

    /// # Safety
    /// The phase rules say nobody writes the cell while the returned
    /// reference lives (many readers may coexist).
    unsafe fn read(&self) -> &T {
        // SAFETY: no writer during the reader's phase (caller's obligation).
        unsafe { &*self.0.get() }
    }
}

/// What a run borrows from its engine.
struct Parts<'e, P: Partition> {
    slots: Vec<Slot<P>>,
    outboxes: Vec<[Outbox<P::Msg>; 2]>,
    owner: &'e [u32],
    links: &'e LinkTable,
    threads: usize,
    config: &'e EngineConfig,
}

struct Shared<'e, P: Partition, H> {
    slots: Vec<PhaseCell<Slot<P>>>,
    outboxes: Vec<[PhaseCell<Outbox<P::Msg>>; 2]>,
    /// `mine[t]`: the partitions owned by thread `t`, in id order.
    mine: Vec<Vec<usize>>,
    owner: &'e [u32],
    links: &'e LinkTable,
    quantum: u64,
    control: PhaseCell<Control>,
    hook: PhaseCell<&'e mut H>,
    panic: Mutex<Option<Panicked>>,
    barrier: EpochBarrier,
}

impl<'e, P: Partition, H: FnMut(&mut BarrierCtx<'_, P>) + Send> Shared<'e, P, H> {
    fn new(engine: Parts<'e, P>, control: Control, hook: &'e mut H) -> Self {
        let threads = engine.threads;
        let mut mine = vec![Vec::new(); threads];
        for (i, &t) in engine.owner.iter().enumerate() {
            mine[t as usize].push(i);
        }
        let host_cores = std::thread::available_parallelism().map_or(1, |n| n.get());
        Shared {
            slots: engine
                .slots
                .into_iter()
                .map(|s| PhaseCell(UnsafeCell::new(s)))
                .collect(),
            outboxes: engine
                .outboxes
                .into_iter()
                .map(|[a, b]| [PhaseCell(UnsafeCell::new(a)), PhaseCell(UnsafeCell::new(b))])
                .collect(),
            mine,
            owner: engine.owner,
            links: engine.links,
            quantum: engine.config.quantum,
            control: PhaseCell(UnsafeCell::new(control)),
            hook: PhaseCell(UnsafeCell::new(hook)),
            panic: Mutex::new(None),
            barrier: EpochBarrier::new(threads, threads > host_cores, engine.config.watchdog),
        }
    }

    /// Ends the run: the slots and outboxes go back to their owner.
    fn finish(self) -> Finished<P> {
        Finished {
            slots: self.slots.into_iter().map(|c| c.0.into_inner()).collect(),
            outboxes: self
                .outboxes
                .into_iter()
                .map(|[a, b]| [a.0.into_inner(), b.0.into_inner()])
                .collect(),
            control: self.control.0.into_inner(),
            panic: self.panic.into_inner(),
        }
    }

    fn run_threads(&self) {
        let threads = self.mine.len();
        if self.stopped() {
            return;
        }
        std::thread::scope(|s| {
            for t in 1..threads {
                std::thread::Builder::new()
                    .name(format!("smpsim-host{t}"))
                    .spawn_scoped(s, move || self.thread_main(t))
                    .expect("spawning a host thread");
            }
            self.thread_main(0);
        });
    }

    fn stopped(&self) -> bool {
        // SAFETY: read in a parallel phase; only the leader writes control,
        // in the serial phase.
        unsafe { self.control.read() }.stop.is_some()
    }

    fn thread_main(&self, t: usize) {
        loop {
            let (start, end, parity) = {
                // SAFETY: parallel phase: control is read-only for everyone.
                let c = unsafe { self.control.read() };
                (c.start, c.end, c.parity)
            };
            self.drain(t, 1 - parity);
            self.run_mine(t, start, end, parity);
            let waited = self.barrier.wait(|| self.serial_phase(end, parity));
            if let Err(stuck) = waited {
                watchdog_abort(&stuck, start);
            }
            if self.stopped() {
                return;
            }
        }
    }

    /// Moves the messages addressed to thread `t`'s partitions into their
    /// inboxes.
    fn drain(&self, t: usize, parity: usize) {
        for w in &self.outboxes {
            // SAFETY: bucket t of an outbox of the previous parity belongs to
            // reader t in this parallel phase; its writer finished last epoch.
            let bucket = &mut unsafe { w[parity].get() }.buckets[t];
            for m in bucket.drain(..) {
                // SAFETY: m.dst is owned by thread t (bucketed by owner).
                unsafe { self.slots[m.dst.index()].get() }.inbox.push(m);
            }
        }
    }

    fn run_mine(&self, t: usize, start: Cycle, end: Cycle, parity: usize) {
        // SAFETY: outbox (t, parity) is written only by thread t this phase.
        let out = unsafe { self.outboxes[t][parity].get() };
        out.min_time = Cycle::MAX;
        for &i in &self.mine[t] {
            // SAFETY: partition i is owned by thread t.
            let slot = unsafe { self.slots[i].get() };
            let due = min_opt(slot.next, slot.inbox.peek_time());
            if due.is_none_or(|n| n >= end) {
                // Nothing to do this epoch, but messages just drained count
                // as pending work for idle skipping.
                slot.next = due;
                continue;
            }
            let mut ctx = EpochCtx {
                id: PartitionId(i as u32),
                start,
                end,
                inbox: &mut slot.inbox,
                out: &mut *out,
                links: self.links,
                owner: self.owner,
                seq: &mut slot.seq,
            };
            let part = &mut slot.part;
            if let Err(payload) = catch_unwind(AssertUnwindSafe(|| part.run_epoch(&mut ctx))) {
                self.record_panic(slot.spec.name.clone(), start, i as u64, payload);
            }
            slot.refresh_next();
        }
    }

    fn record_panic(
        &self,
        component: String,
        cycle: Cycle,
        order: u64,
        payload: Box<dyn std::any::Any + Send>,
    ) {
        let message = panic_message(payload.as_ref());
        let mut slot = self.panic.lock();
        // Keep the lowest partition id so the report does not depend on
        // which thread got there first.
        if slot.as_ref().is_none_or(|p| order < p.order) {
            *slot = Some(Panicked {
                component,
                cycle,
                order,
                message,
            });
        }
    }

    /// Runs on the last thread to arrive; everyone else is waiting.
    fn serial_phase(&self, end: Cycle, parity: usize) {
        // SAFETY: serial phase: the leader has exclusive access to all.
        let control = unsafe { self.control.get() };
        control.summary.epochs += 1;
        let mut earliest: Option<Cycle> = None;
        for w in &self.outboxes {
            // SAFETY: serial phase.
            let out = unsafe { w[parity].get() };
            control.summary.messages += std::mem::take(&mut out.sent);
            if out.min_time != Cycle::MAX {
                earliest = min_opt(earliest, Some(out.min_time));
            }
        }
        let mut ctx = BarrierCtx {
            slots: &self.slots,
            now: end,
            epoch: control.summary.epochs,
            stop: None,
            wake: None,
            touched: Vec::new(),
            barrier_seq: &mut control.barrier_seq,
        };
        // SAFETY: serial phase.
        let hook = unsafe { self.hook.get() };
        if let Err(payload) = catch_unwind(AssertUnwindSafe(|| hook(&mut ctx))) {
            self.record_panic("barrier hook".into(), end, u64::MAX, payload);
        }
        let (hook_stop, wake) = (ctx.stop.take(), ctx.wake);
        for i in std::mem::take(&mut ctx.touched) {
            // SAFETY: serial phase.
            unsafe { self.slots[i].get() }.refresh_next();
        }
        earliest = min_opt(earliest, wake);
        for s in &self.slots {
            // SAFETY: serial phase.
            earliest = min_opt(earliest, unsafe { s.get() }.next);
        }
        control.parity = 1 - parity;
        if self.panic.lock().is_some() {
            control.summary.end = end;
            control.stop = Some(StopReason::Hook("panic".into()));
        } else if let Some(reason) = hook_stop {
            control.summary.end = end;
            control.stop = Some(StopReason::Hook(reason));
        } else {
            control.schedule_from(end, earliest, self.quantum);
        }
        if let Some(stop) = &control.stop {
            control.summary.stop = stop.clone();
        }
    }
}

fn panic_message(payload: &(dyn std::any::Any + Send)) -> String {
    if let Some(s) = payload.downcast_ref::<&str>() {
        (*s).to_owned()
    } else if let Some(s) = payload.downcast_ref::<String>() {
        s.clone()
    } else {
        "non-string panic payload".to_owned()
    }
}

/// A thread inside a partition never reached the barrier: nothing can be
/// recovered without its state, so report the stuck epoch and abort rather
/// than hang.
fn watchdog_abort(stuck: &crate::barrier::Stuck, start: Cycle) -> ! {
    eprintln!(
        "smpsim engine watchdog: epoch {} (starting at cycle {start}) is stuck: \
         {} of {} host threads reached the barrier; a partition is not returning from run_epoch",
        stuck.generation, stuck.arrived, stuck.threads
    );
    std::process::abort();
}

/// The barrier hook's view of a quiescent machine.
pub struct BarrierCtx<'a, P: Partition> {
    slots: &'a [PhaseCell<Slot<P>>],
    now: Cycle,
    epoch: u64,
    stop: Option<String>,
    wake: Option<Cycle>,
    touched: Vec<usize>,
    barrier_seq: &'a mut u64,
}

impl<P: Partition> std::fmt::Debug for BarrierCtx<'_, P> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BarrierCtx")
            .field("now", &self.now)
            .field("epoch", &self.epoch)
            .finish()
    }
}

impl<P: Partition> BarrierCtx<'_, P> {
    /// End of the epoch just finished.
    pub fn now(&self) -> Cycle {
        self.now
    }

    /// Epochs run so far in this run.
    pub fn epoch(&self) -> u64 {
        self.epoch
    }

    /// Number of partitions.
    pub fn len(&self) -> usize {
        self.slots.len()
    }

    /// Always false: an engine has at least one partition.
    pub fn is_empty(&self) -> bool {
        self.slots.is_empty()
    }

    /// A partition, read-only.
    pub fn partition(&self, id: PartitionId) -> &P {
        // SAFETY: serial phase; the returned borrow is tied to &self, so no
        // mutable borrow from this context can coexist with it.
        &unsafe { self.slots[id.index()].get() }.part
    }

    /// A partition, mutably; its next activity is re-read afterwards.
    pub fn partition_mut(&mut self, id: PartitionId) -> &mut P {
        self.touched.push(id.index());
        // SAFETY: serial phase; the borrow is tied to &mut self.
        &mut unsafe { self.slots[id.index()].get() }.part
    }

    /// Delivers `payload` to `dst` at `time` (≥ now) from
    /// [`PartitionId::BARRIER`].
    pub fn inject(&mut self, dst: PartitionId, time: Cycle, payload: P::Msg) {
        assert!(
            time >= self.now,
            "injected message at {time} is in the past (now {})",
            self.now
        );
        let seq = *self.barrier_seq;
        *self.barrier_seq += 1;
        self.touched.push(dst.index());
        // SAFETY: serial phase.
        unsafe { self.slots[dst.index()].get() }
            .inbox
            .push(Message {
                time,
                src: PartitionId::BARRIER,
                seq,
                dst,
                payload,
            });
    }

    /// Stops the run at this barrier.
    pub fn stop(&mut self, reason: impl Into<String>) {
        self.stop = Some(reason.into());
    }

    /// Asks for a barrier no later than the first multiple of Q at or after
    /// `time` (exactly at `time` when Q divides it), even if every partition
    /// is idle (a hypervisor timer, say): the epoch holding cycle
    /// `time - 1` runs. It holds for this barrier's decision only: a hook
    /// that keeps a timer asks at every barrier.
    pub fn wake_at(&mut self, time: Cycle) {
        let before = Cycle(time.get().saturating_sub(1));
        self.wake = min_opt(self.wake, Some(before.max(self.now)));
    }
}
