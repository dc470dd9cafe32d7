//! The epochs: phases, message delivery, the active sets, regrouping.
//!
//! # Phases and who may touch what
//! The first `running` host threads loop over epochs; the others park (see
//! [`crate::regroup`]). In the **parallel phase** of an epoch a running
//! thread `t` (1) drains bucket `t` of every thread's outbox of the
//! previous epoch (parity `1 - p`) into the inboxes of its own partitions,
//! noting each arrival in its active set, then (2) takes from its active
//! set the partitions due before the epoch's end and runs them in id order,
//! writing into its own outbox of parity `p`. Then the running threads meet
//! at the barrier; the last to arrive runs the **serial phase** (barrier
//! hook, idle skipping, termination, regrouping) with every other running
//! thread waiting.
//!
//! So, in the parallel phase, a partition slot and the active set of
//! thread `t` are touched only by `t`; outbox `(w, p)` only by writer `w`;
//! bucket `t` of outbox `(w, 1 - p)` only by reader `t` (its writer finished
//! before the barrier); the placement and the control block are read-only.
//! In the serial phase only the leader touches anything. The barrier's
//! SeqCst generation counter orders the phases. Parked threads touch
//! nothing but the atomics `running` and `halt`. These rules are what make
//! the `unsafe` accesses below sound.
//!
//! # Regrouping
//! When the leader changes the number of running threads it places the
//! partitions again, delivers the messages of the epoch just finished
//! straight into their inboxes (their buckets follow the old placement) and
//! rebuilds every active set. A shrink takes effect at once (`running` is
//! lowered before the release; the threads left out see it and park); a
//! grow is published only after the release, so a woken thread never sees
//! the barrier of the epoch before.

use crate::active::ActiveSet;
use crate::barrier::EpochBarrier;
use crate::hook::BarrierCtx;
use crate::partition::{EpochCtx, Outbox, Partition};
use crate::regroup::{Regrouper, Sample};
use crate::run::{min_opt, Control, EngineConfig, Slot, StopReason};
use crate::schedule::{assign, HostThreads};
use crate::time::{Cycle, PartitionId};
use crate::topology::LinkTable;
use parking_lot::{Condvar, Mutex};
use std::cell::UnsafeCell;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering::Relaxed, Ordering::SeqCst};
use std::time::Instant;

pub(crate) struct Finished<P: Partition> {
    pub(crate) slots: Vec<Slot<P>>,
    pub(crate) outboxes: Vec<[Outbox<P::Msg>; 2]>,
    pub(crate) control: Control,
    pub(crate) panic: Option<Panicked>,
}

pub(crate) struct Panicked {
    pub(crate) component: String,
    pub(crate) cycle: Cycle,
    order: u64,
    pub(crate) message: String,
}

/// A cell whose exclusive access is guaranteed by the phase rules in the
/// module docs rather than by the borrow checker.
pub(crate) struct PhaseCell<T>(UnsafeCell<T>);

// SAFETY: the phase rules in the module docs ensure that at any time a cell
// is accessed by at most one thread, and the barrier orders hand-overs.
unsafe impl<T: Send> Sync for PhaseCell<T> {}

impl<T> PhaseCell<T> {
    fn new(value: T) -> Self {
        PhaseCell(UnsafeCell::new(value))
    }

    /// # Safety
    /// The caller holds the access right that the phase rules give it, and
    /// no other reference from this cell is alive.
    #[allow(clippy::mut_from_ref)]
    pub(crate) unsafe fn get(&self) -> &mut T {
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
pub(crate) struct Parts<'e, P: Partition> {
    pub(crate) slots: Vec<Slot<P>>,
    pub(crate) outboxes: Vec<[Outbox<P::Msg>; 2]>,
    pub(crate) owner: &'e [u32],
    pub(crate) is_core: &'e [bool],
    pub(crate) links: &'e LinkTable,
    pub(crate) threads: usize,
    pub(crate) config: &'e EngineConfig,
}

/// Who runs what: written only in the serial phase.
struct Placement {
    owner: Vec<u32>,
    /// `mine[t]`: the partitions owned by thread `t`, in id order.
    mine: Vec<Vec<u32>>,
}

impl Placement {
    fn new(owner: Vec<u32>, threads: usize) -> Self {
        let mut p = Placement {
            owner,
            mine: vec![Vec::new(); threads],
        };
        p.index();
        p
    }

    fn index(&mut self) {
        for m in &mut self.mine {
            m.clear();
        }
        for (i, &t) in self.owner.iter().enumerate() {
            self.mine[t as usize].push(i as u32);
        }
    }
}

/// The leader's scratch, reused every barrier (no allocation per epoch).
struct Serial {
    touched: Vec<usize>,
    ran: Vec<PartitionId>,
    /// Threads running epochs.
    active: usize,
    regroup: Regrouper,
    /// When the timed epoch's parallel phase began.
    released: Option<Instant>,
}

/// What the leader does after releasing the others.
struct Release {
    /// Threads to wake (a grow), published now.
    activate: Option<usize>,
}

pub(crate) struct Shared<'e, P: Partition, H> {
    slots: Vec<PhaseCell<Slot<P>>>,
    outboxes: Vec<[PhaseCell<Outbox<P::Msg>>; 2]>,
    active: Vec<PhaseCell<ActiveSet>>,
    place: PhaseCell<Placement>,
    static_owner: &'e [u32],
    is_core: &'e [bool],
    links: &'e LinkTable,
    quantum: u64,
    control: PhaseCell<Control>,
    serial: PhaseCell<Serial>,
    hook: PhaseCell<&'e mut H>,
    panic: Mutex<Option<Panicked>>,
    barrier: EpochBarrier,
    /// Threads `0..running` run epochs; the others park.
    running: AtomicUsize,
    /// The run is over: every thread returns.
    halt: AtomicBool,
    park: Mutex<()>,
    unpark: Condvar,
    /// Per thread: its busy time in the last timed epoch, in ns.
    busy: Vec<AtomicU64>,
}

impl<'e, P: Partition, H: FnMut(&mut BarrierCtx<'_, P>) + Send> Shared<'e, P, H> {
    pub(crate) fn new(engine: Parts<'e, P>, control: Control, hook: &'e mut H) -> Self {
        let threads = engine.threads;
        let host_cores = std::thread::available_parallelism().map_or(1, |n| n.get());
        let place = Placement::new(engine.owner.to_vec(), threads);
        let active = place
            .mine
            .iter()
            .map(|mine| {
                let mut set = ActiveSet::default();
                set.rebuild(mine.iter().map(|&i| (i, engine.slots[i as usize].due)));
                PhaseCell::new(set)
            })
            .collect();
        let halt = control.stop.is_some();
        Shared {
            slots: engine.slots.into_iter().map(PhaseCell::new).collect(),
            outboxes: engine
                .outboxes
                .into_iter()
                .map(|[a, b]| [PhaseCell::new(a), PhaseCell::new(b)])
                .collect(),
            active,
            place: PhaseCell::new(place),
            static_owner: engine.owner,
            is_core: engine.is_core,
            links: engine.links,
            quantum: engine.config.quantum,
            control: PhaseCell::new(control),
            serial: PhaseCell::new(Serial {
                touched: Vec::new(),
                ran: Vec::new(),
                active: threads,
                regroup: Regrouper::new(engine.config.regroup, threads),
                released: None,
            }),
            hook: PhaseCell::new(hook),
            panic: Mutex::new(None),
            barrier: EpochBarrier::new(threads, threads > host_cores, engine.config.watchdog),
            running: AtomicUsize::new(threads),
            halt: AtomicBool::new(halt),
            park: Mutex::new(()),
            unpark: Condvar::new(),
            busy: (0..threads).map(|_| AtomicU64::new(0)).collect(),
        }
    }

    /// Ends the run: the slots and outboxes go back to their owner. The
    /// messages still in flight are put into their inboxes now (their
    /// buckets may follow a regrouped placement the next run does not
    /// start from); the next run reads its first activity from the slots.
    pub(crate) fn finish(self) -> Finished<P> {
        let mut slots: Vec<Slot<P>> = self.slots.into_iter().map(|c| c.0.into_inner()).collect();
        let mut outboxes: Vec<[Outbox<P::Msg>; 2]> = self
            .outboxes
            .into_iter()
            .map(|[a, b]| [a.0.into_inner(), b.0.into_inner()])
            .collect();
        for out in outboxes.iter_mut().flatten() {
            out.min_time = Cycle::MAX;
            for bucket in &mut out.buckets {
                for m in bucket.drain(..) {
                    slots[m.dst.index()].inbox.push(m);
                }
            }
        }
        Finished {
            slots,
            outboxes,
            control: self.control.0.into_inner(),
            panic: self.panic.into_inner(),
        }
    }

    pub(crate) fn run_threads(&self) {
        let threads = self.outboxes.len();
        if self.halt.load(SeqCst) {
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

    fn thread_main(&self, t: usize) {
        loop {
            if self.halt.load(SeqCst) {
                return;
            }
            if t >= self.running.load(SeqCst) {
                self.park_while_idle(t);
                continue;
            }
            let (start, end, parity, sample) = {
                // SAFETY: parallel phase: control is read-only for everyone.
                let c = unsafe { self.control.read() };
                (c.start, c.end, c.parity, c.sample)
            };
            let began = sample.then(Instant::now);
            self.drain(t, 1 - parity);
            self.run_mine(t, start, end, parity);
            if let Some(began) = began {
                self.busy[t].store(elapsed_ns(began), Relaxed);
            }
            match self.barrier.wait(|| self.serial_phase(end, parity)) {
                Err(stuck) => watchdog_abort(&stuck, start),
                Ok(Some(release)) => self.release(release),
                Ok(None) => {}
            }
        }
    }

    /// A thread left out of the running ones sleeps until it is needed
    /// again or the run ends.
    fn park_while_idle(&self, t: usize) {
        let mut guard = self.park.lock();
        while !self.halt.load(SeqCst) && t >= self.running.load(SeqCst) {
            self.unpark.wait(&mut guard);
        }
    }

    /// The leader, after the release: publishes a grow, wakes sleepers.
    fn release(&self, release: Release) {
        if let Some(n) = release.activate {
            self.running.store(n, SeqCst);
        }
        if release.activate.is_some() || self.halt.load(SeqCst) {
            let _guard = self.park.lock();
            self.unpark.notify_all();
        }
    }

    /// Moves the messages addressed to thread `t`'s partitions into their
    /// inboxes.
    fn drain(&self, t: usize, parity: usize) {
        // SAFETY: thread t's active set is its own in the parallel phase.
        let set = unsafe { self.active[t].get() };
        for w in &self.outboxes {
            // SAFETY: bucket t of an outbox of the previous parity belongs to
            // reader t in this parallel phase; its writer finished last epoch.
            let bucket = &mut unsafe { w[parity].get() }.buckets[t];
            for m in bucket.drain(..) {
                let i = m.dst.index();
                // SAFETY: m.dst is owned by thread t (bucketed by owner).
                let slot = unsafe { self.slots[i].get() };
                set.note_arrival(&mut slot.due, i as u32, m.time);
                slot.inbox.push(m);
            }
        }
    }

    fn run_mine(&self, t: usize, start: Cycle, end: Cycle, parity: usize) {
        // SAFETY: outbox (t, parity) is written only by thread t this phase.
        let out = unsafe { self.outboxes[t][parity].get() };
        out.min_time = Cycle::MAX;
        // SAFETY: thread t's active set and partitions are its own; the
        // placement is read-only in the parallel phase.
        let (set, place) = unsafe { (self.active[t].get(), self.place.read()) };
        set.take_due(end, |i, f| {
            // SAFETY: the partitions in thread t's set are owned by thread t.
            f(&mut unsafe { self.slots[i as usize].get() }.due)
        });
        for k in 0..set.run.len() {
            let i = set.run[k];
            // SAFETY: partition i is owned by thread t.
            let slot = unsafe { self.slots[i as usize].get() };
            let mut ctx = EpochCtx {
                id: PartitionId(i),
                start,
                end,
                inbox: &mut slot.inbox,
                out: &mut *out,
                links: self.links,
                owner: &place.owner,
                seq: &mut slot.seq,
            };
            let part = &mut slot.part;
            if let Err(payload) = catch_unwind(AssertUnwindSafe(|| part.run_epoch(&mut ctx))) {
                self.record_panic(slot.spec.name.clone(), start, u64::from(i), payload);
            }
            let due = slot.current_due();
            set.set_due(&mut slot.due, i, due);
        }
        let mine = &place.mine[t];
        if set.wants_rebuild(mine.len()) {
            set.rebuild(mine.iter().map(|&i| {
                // SAFETY: thread t owns the partitions in `mine[t]`.
                (i, unsafe { self.slots[i as usize].read() }.due)
            }));
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

    /// Runs on the last thread to arrive; every other running thread is
    /// waiting.
    fn serial_phase(&self, end: Cycle, parity: usize) -> Release {
        // SAFETY: serial phase: the leader has exclusive access to all.
        let (control, serial) = unsafe { (self.control.get(), self.serial.get()) };
        let sample = self.sample(control, serial);
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
        let (hook_stop, wake) = self.call_hook(control, serial, end);
        earliest = min_opt(earliest, wake);
        for set in &self.active {
            // SAFETY: serial phase.
            let set = unsafe { set.get() };
            let first = set.earliest(|i| {
                // SAFETY: serial phase.
                unsafe { self.slots[i as usize].read() }.due
            });
            earliest = min_opt(earliest, first);
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
            self.halt.store(true, SeqCst);
            return Release { activate: None };
        }
        let release = self.maybe_regroup(serial, parity, sample);
        control.sample = serial.regroup.sample_next(serial.active);
        serial.released = control.sample.then(Instant::now);
        release
    }

    /// The timing of the epoch just finished, if it was timed.
    fn sample(&self, control: &Control, serial: &Serial) -> Option<Sample> {
        let released = serial.released.filter(|_| control.sample)?;
        let busy_ns = self.busy[..serial.active]
            .iter()
            .map(|b| b.load(Relaxed))
            .sum();
        Some(Sample {
            wall_ns: elapsed_ns(released),
            busy_ns,
        })
    }

    /// Gives the hook the machine, then re-reads the due cycles of the
    /// partitions it touched. Returns its stop request and wake time.
    fn call_hook(
        &self,
        control: &mut Control,
        serial: &mut Serial,
        end: Cycle,
    ) -> (Option<String>, Option<Cycle>) {
        serial.ran.clear();
        for set in &self.active[..serial.active] {
            // SAFETY: serial phase.
            let run = &unsafe { set.read() }.run;
            serial.ran.extend(run.iter().map(|&i| PartitionId(i)));
        }
        serial.ran.sort_unstable();
        let mut ctx = BarrierCtx {
            slots: &self.slots,
            now: end,
            epoch: control.summary.epochs,
            stop: None,
            wake: None,
            touched: &mut serial.touched,
            ran: &serial.ran,
            barrier_seq: &mut control.barrier_seq,
        };
        // SAFETY: serial phase.
        let hook = unsafe { self.hook.get() };
        if let Err(payload) = catch_unwind(AssertUnwindSafe(|| hook(&mut ctx))) {
            self.record_panic("barrier hook".into(), end, u64::MAX, payload);
        }
        let result = (ctx.stop.take(), ctx.wake);
        // SAFETY: serial phase.
        let place = unsafe { self.place.read() };
        for i in serial.touched.drain(..) {
            // SAFETY: serial phase.
            let (slot, set) = unsafe {
                (
                    self.slots[i].get(),
                    self.active[place.owner[i] as usize].get(),
                )
            };
            let due = slot.current_due();
            set.set_due(&mut slot.due, i as u32, due);
        }
        result
    }

    /// Lets the regrouping policy change the number of running threads.
    fn maybe_regroup(&self, serial: &mut Serial, parity: usize, sample: Option<Sample>) -> Release {
        let none = Release { activate: None };
        let Some(n) = serial.regroup.observe(serial.active, sample) else {
            return none;
        };
        if n == serial.active {
            return none;
        }
        let grow = n > serial.active;
        serial.active = n;
        self.place_on(n, parity);
        self.barrier.set_threads(n);
        if grow {
            Release { activate: Some(n) }
        } else {
            self.running.store(n, SeqCst);
            none
        }
    }

    /// Places the partitions on `n` threads (the static placement when all
    /// run), in the serial phase.
    fn place_on(&self, n: usize, parity: usize) {
        // SAFETY: serial phase.
        let place = unsafe { self.place.get() };
        place.owner = if n == self.outboxes.len() {
            self.static_owner.to_vec()
        } else {
            assign(self.is_core, HostThreads::Count(n)).0
        };
        place.index();
        for w in &self.outboxes {
            for half in w {
                // SAFETY: serial phase.
                unsafe { half.get() }.min_time = Cycle::MAX;
            }
            // SAFETY: serial phase. This epoch's messages, bucketed by the
            // old placement: delivered now (the inbox orders them anyway).
            for bucket in &mut unsafe { w[parity].get() }.buckets {
                for m in bucket.drain(..) {
                    // SAFETY: serial phase.
                    let slot = unsafe { self.slots[m.dst.index()].get() };
                    slot.due = min_opt(slot.due, Some(m.time));
                    slot.inbox.push(m);
                }
            }
        }
        for (set, mine) in self.active.iter().zip(&place.mine) {
            // SAFETY: serial phase.
            let set = unsafe { set.get() };
            set.run.clear();
            set.rebuild(mine.iter().map(|&i| {
                // SAFETY: serial phase.
                (i, unsafe { self.slots[i as usize].read() }.due)
            }));
        }
    }
}

fn elapsed_ns(since: Instant) -> u64 {
    u64::try_from(since.elapsed().as_nanos()).unwrap_or(u64::MAX)
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
