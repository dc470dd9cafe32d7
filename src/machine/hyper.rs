//! The hypervisor service: runs in the engine's barrier phase, at every
//! multiple of the service period H.
//!
//! At a service tick the machine is quiescent, so the hypervisor reads and
//! writes guest memory directly (machine memory holds all data; caches
//! hold only tags and states) and changes cores' contexts. Everything it
//! does is ordered: traps by (cycle, core, context), then timers by
//! (domain, VCPU). Because epochs are aligned to multiples of Q and H is a
//! multiple of Q, ticks fall at the same simulated cycles for every quantum
//! that divides H: exact-mode runs match lockstep.
//!
//! Cost follows work: a core's contexts can only trap while its partition
//! runs, so each tick looks for traps only on the core partitions that ran
//! since the last tick ([`BarrierCtx::ran`], gathered at every barrier),
//! plus those still trapped but not yet serviceable; the first tick (and
//! the first after a checkpoint restore) looks at every VCPU. The traps
//! found are sorted as before, so results are the same.
//!
//! Latencies: a trapped VCPU resumes `hypercall_latency` cycles after the
//! tick that serviced it; a VCPU woken or started by an event runs
//! `ipi_latency` cycles after the tick. Hypervisor writes are not timed
//! through the caches (an approximation: they become visible at the tick).

use super::config::{MachineConfig, Model};
use super::part::Part;
use smpsim_cores::part::{CorePart, Run, Trap};
use smpsim_cores::{AddressSpaceId, ArchState};
use smpsim_engine::{
    histogram_buckets, record_buckets, BarrierCtx, Cycle, HistogramReport, PartitionId,
};
use smpsim_uncore::memory::{MachineAddr, MachineMemory};
use smpsim_xen::evtchn::Raise;
use smpsim_xen::hypervisor::{Effect, Hypervisor, Next, Upcall};
use smpsim_xen::memory::{FrameStore, PagedMemory};
use smpsim_xen::{DomainId, VcpuId};
use std::collections::BTreeMap;
use std::sync::Arc;

/// Machine memory as the hypervisor's frame store.
pub struct Frames<'a>(pub &'a MachineMemory);

impl FrameStore for Frames<'_> {
    fn read(&mut self, maddr: u64, buf: &mut [u8]) {
        self.0
            .read(MachineAddr(maddr), buf)
            .expect("hypervisor reads frames it gave out");
    }
    fn write(&mut self, maddr: u64, bytes: &[u8]) {
        self.0
            .write(MachineAddr(maddr), bytes)
            .expect("hypervisor writes frames it gave out");
    }
}

/// A timing-model switch that happened.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct SwitchEvent {
    /// The service tick it happened at.
    pub cycle: u64,
    /// The model every core runs from then on.
    pub to: Model,
    /// Why: `roi begin`, `roi end` or `after N instructions`.
    pub why: String,
}

/// Switching timing models at run time (the `switch` config).
#[derive(Clone, Debug, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Switching {
    /// The model the machine starts in (and returns to at an ROI end).
    base: Option<Model>,
    to: Option<Model>,
    after_insns: u64,
    at_roi: bool,
    /// Every core partition.
    cores: Vec<PartitionId>,
    count_done: bool,
    /// An ROI mark seen since the last tick: begin (true) or end.
    roi: Option<bool>,
    /// What happened.
    pub log: Vec<SwitchEvent>,
    /// ROI begin marks seen (with or without switching at them).
    pub roi_begins: u64,
}

impl Switching {
    /// The switching `cfg` asks for, over the machine's core partitions.
    pub fn new(cfg: &MachineConfig, cores: Vec<PartitionId>) -> Self {
        Switching {
            base: Some(cfg.model),
            to: cfg.switch.to,
            after_insns: cfg.switch.after_insns,
            at_roi: cfg.switch.at_roi,
            cores,
            ..Switching::default()
        }
    }
}

impl Switching {
    /// Switches from now on as `sw` says (a restored machine given new
    /// switching on the command line); the model to return to at an ROI
    /// end stays the one the machine was built with.
    pub fn reconfigure(&mut self, sw: &crate::machine::config::SwitchConfig) {
        self.to = sw.to;
        self.after_insns = sw.after_insns;
        self.at_roi = sw.at_roi;
        self.count_done = false;
        self.roi = None;
    }
}

/// Where a VCPU runs: its core partition and context.
pub type Placement = BTreeMap<(DomainId, VcpuId), (PartitionId, usize)>;

/// The hypervisor and what it needs to service the machine.
pub struct Service {
    /// The hypervisor.
    pub hv: Hypervisor,
    /// Machine memory.
    pub mem: Arc<MachineMemory>,
    /// VCPU placement.
    pub place: Placement,
    /// Service period H.
    pub period: u64,
    /// Trap to resume.
    pub hypercall_latency: u64,
    /// Event to VCPU.
    pub ipi_latency: u64,
    /// Cycle each VCPU last had an event raised while not yet delivered
    /// (for the IPI latency histogram).
    raised_at: BTreeMap<(DomainId, VcpuId), Cycle>,
    /// Raise → upcall entry, in cycles.
    pub ipi_hist: hdrhistogram::Histogram<u64>,
    /// Next cycle a tick is due.
    next_tick: Cycle,
    /// The tick of the earliest pending timer.
    timer_wake: Option<Cycle>,
    /// Whether the quantum divides the period: then ticks fall exactly on
    /// multiples of the period (quantum-independent); otherwise at the
    /// first barrier past each multiple.
    aligned: bool,
    /// Timing-model switches.
    pub switching: Switching,
    /// Where to look for traps at the next tick.
    watch: TrapWatch,
}

/// The core partitions that may hold a trap at the next tick.
#[derive(Debug, Default)]
struct TrapWatch {
    /// Look at every VCPU (the first tick, or after a restore).
    all: bool,
    /// By partition index: its VCPUs as (context, domain, VCPU).
    vcpus: Vec<Vec<(usize, DomainId, VcpuId)>>,
    /// Partitions to look at, each once (`marked`).
    pending: Vec<PartitionId>,
    marked: Vec<bool>,
}

impl TrapWatch {
    fn new(place: &Placement) -> Self {
        let mut vcpus: Vec<Vec<(usize, DomainId, VcpuId)>> = Vec::new();
        for (&(d, v), &(p, t)) in place {
            if vcpus.len() <= p.index() {
                vcpus.resize_with(p.index() + 1, Vec::new);
            }
            vcpus[p.index()].push((t, d, v));
        }
        let marked = vec![false; vcpus.len()];
        TrapWatch {
            all: true,
            vcpus,
            pending: Vec::new(),
            marked,
        }
    }

    /// Partition `p` ran (or may hold a trap): look at it next tick.
    fn note(&mut self, p: PartitionId) {
        if let Some(m) = self.marked.get_mut(p.index()) {
            if !*m && !self.vcpus[p.index()].is_empty() {
                *m = true;
                self.pending.push(p);
            }
        }
    }

    /// The partitions to look at now; they are forgotten.
    fn take(&mut self) -> Vec<PartitionId> {
        if std::mem::take(&mut self.all) {
            self.pending.clear();
            self.marked.fill(false);
            return (0..self.vcpus.len())
                .filter(|&i| !self.vcpus[i].is_empty())
                .map(|i| PartitionId(i as u32))
                .collect();
        }
        for p in &self.pending {
            self.marked[p.index()] = false;
        }
        std::mem::take(&mut self.pending)
    }
}

/// A [`Service`]'s state without its machine memory handle, for
/// checkpoints: [`Service::checkpoint`] takes it, [`ServiceState::attach`]
/// re-attaches the machine memory (restored separately, by its owner) and
/// gives the service back. The IPI histogram is kept as its recorded
/// (value, count) buckets, as the engine's statistics are.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct ServiceState {
    hv: Hypervisor,
    place: Placement,
    period: u64,
    hypercall_latency: u64,
    ipi_latency: u64,
    raised_at: BTreeMap<(DomainId, VcpuId), Cycle>,
    ipi_hist: Vec<(u64, u64)>,
    next_tick: Cycle,
    timer_wake: Option<Cycle>,
    aligned: bool,
    switching: Switching,
}

impl ServiceState {
    /// The service again, over `mem`: the machine memory the checkpointed
    /// service ran on, restored to the same point.
    pub fn attach(self, mem: Arc<MachineMemory>) -> Service {
        let mut ipi_hist = new_ipi_hist();
        record_buckets(&mut ipi_hist, &self.ipi_hist);
        let watch = TrapWatch::new(&self.place);
        Service {
            hv: self.hv,
            mem,
            place: self.place,
            period: self.period,
            hypercall_latency: self.hypercall_latency,
            ipi_latency: self.ipi_latency,
            raised_at: self.raised_at,
            ipi_hist,
            next_tick: self.next_tick,
            timer_wake: self.timer_wake,
            aligned: self.aligned,
            switching: self.switching,
            watch,
        }
    }
}

fn new_ipi_hist() -> hdrhistogram::Histogram<u64> {
    hdrhistogram::Histogram::new_with_bounds(1, 1 << 32, 3).expect("valid bounds")
}

impl Service {
    /// Everything but the machine memory handle (see [`ServiceState`]).
    pub fn checkpoint(&self) -> ServiceState {
        ServiceState {
            hv: self.hv.clone(),
            place: self.place.clone(),
            period: self.period,
            hypercall_latency: self.hypercall_latency,
            ipi_latency: self.ipi_latency,
            raised_at: self.raised_at.clone(),
            ipi_hist: histogram_buckets(&self.ipi_hist),
            next_tick: self.next_tick,
            timer_wake: self.timer_wake,
            aligned: self.aligned,
            switching: self.switching.clone(),
        }
    }

    /// The tick of the earliest pending timer, which the barrier hook asks
    /// the engine for at every barrier (a run resumed at a barrier asks
    /// for it first: [`smpsim_engine::Engine::wake_at`]).
    pub fn timer_wake(&self) -> Option<Cycle> {
        self.timer_wake
    }

    /// A service over `hv`.
    pub fn new(
        hv: Hypervisor,
        mem: Arc<MachineMemory>,
        place: Placement,
        period: u64,
        quantum: u64,
        latencies: (u64, u64),
    ) -> Self {
        let (hypercall_latency, ipi_latency) = latencies;
        let watch = TrapWatch::new(&place);
        Service {
            hv,
            mem,
            place,
            period,
            hypercall_latency,
            ipi_latency,
            raised_at: BTreeMap::new(),
            ipi_hist: new_ipi_hist(),
            next_tick: Cycle(period),
            timer_wake: None,
            aligned: period.is_multiple_of(quantum),
            switching: Switching::default(),
            watch,
        }
    }

    /// Switches every core's timing model when the `switch` config says
    /// so: at an ROI mark seen during this tick, or once the machine has
    /// retired `after_insns` instructions.
    fn maybe_switch(&mut self, ctx: &mut BarrierCtx<'_, Part>, now: Cycle) {
        let sw = &mut self.switching;
        let (Some(base), Some(to)) = (sw.base, sw.to) else {
            return;
        };
        let target = if let Some(begin) = sw.roi.take() {
            Some(if begin {
                (to, "roi begin".to_owned())
            } else {
                (base, "roi end".to_owned())
            })
        } else if !sw.count_done && sw.after_insns > 0 {
            let total: u64 = sw
                .cores
                .iter()
                .map(|&p| match ctx.partition(p) {
                    Part::Core(c) => c.instructions(),
                    _ => 0,
                })
                .sum();
            (total >= sw.after_insns).then(|| {
                sw.count_done = true;
                (to, format!("after {} instructions", sw.after_insns))
            })
        } else {
            None
        };
        let Some((model, why)) = target else { return };
        let cores = sw.cores.clone();
        let changed = cores.iter().any(|&p| match ctx.partition(p) {
            Part::Core(c) => c.model() != model,
            _ => false,
        });
        if !changed {
            return;
        }
        for p in cores {
            Self::core(ctx, p).switch_model(model, now);
        }
        self.switching.log.push(SwitchEvent {
            cycle: now.get(),
            to: model,
            why,
        });
    }

    /// The IPI latency histogram, summarized.
    pub fn ipi_report(&self) -> HistogramReport {
        HistogramReport::from_histogram(&self.ipi_hist, "cycles")
    }

    /// The barrier hook: services at ticks, stops when every domain is down.
    pub fn barrier(&mut self, ctx: &mut BarrierCtx<'_, Part>) {
        let now = ctx.now();
        for &p in ctx.ran() {
            self.watch.note(p);
        }
        let due = if self.aligned {
            now.get().is_multiple_of(self.period)
        } else {
            now >= self.next_tick
        };
        if due {
            self.next_tick = Cycle((now.get() / self.period + 1) * self.period);
            self.tick(ctx, now);
            if self.hv.all_shut_down() {
                ctx.stop("every domain shut down");
                return;
            }
            // Timers change only at ticks: find the next one here, ask for
            // its tick at every barrier until then.
            self.timer_wake = self
                .next_timer()
                .map(|t| Cycle(t.div_ceil(self.period).max(1) * self.period).max(self.next_tick));
        }
        if let Some(t) = self.timer_wake {
            ctx.wake_at(t);
        }
    }

    /// Starts the service's clock at `now` (a domain restored into a new
    /// machine at the cycle of its save): the next tick, and the earliest
    /// pending timer's.
    pub fn restarted_at(&mut self, now: Cycle) {
        self.next_tick = Cycle((now.get() / self.period + 1) * self.period);
        self.timer_wake = self
            .next_timer()
            .map(|t| Cycle(t.div_ceil(self.period).max(1) * self.period).max(self.next_tick));
    }

    fn next_timer(&self) -> Option<u64> {
        self.place
            .keys()
            .filter_map(|&(d, v)| self.hv.next_timer_cycle(d, v))
            .min()
    }

    fn core<'c>(ctx: &'c mut BarrierCtx<'_, Part>, p: PartitionId) -> &'c mut CorePart {
        match ctx.partition_mut(p) {
            Part::Core(c) => c,
            _ => panic!("placement names a core partition"),
        }
    }

    fn tick(&mut self, ctx: &mut BarrierCtx<'_, Part>, now: Cycle) {
        let mut traps = Vec::new();
        for p in self.watch.take() {
            let Part::Core(c) = ctx.partition(p) else {
                continue;
            };
            let mut again = false;
            for &(t, d, v) in &self.watch.vcpus[p.index()] {
                match c.pending_trap(t) {
                    Some((trap, at)) if at < now => traps.push((at, p, t, d, v, trap.clone())),
                    _ => again |= matches!(c.run_state(t), Run::Trapped { .. }),
                }
            }
            if again {
                self.watch.note(p);
            }
        }
        traps.sort_by_key(|&(at, p, t, ..)| (at, p, t));
        for (at, p, t, d, v, trap) in traps {
            self.service_trap(ctx, now, at, p, t, d, v, trap);
        }
        let vcpus: Vec<_> = self.place.keys().copied().collect();
        for (d, v) in vcpus {
            if self
                .hv
                .next_timer_cycle(d, v)
                .is_some_and(|c| c <= now.get())
            {
                let deadline = self.hv.next_timer_cycle(d, v).map_or(now, Cycle);
                let effects = self.hv.run_timers(d, v, now.get());
                self.apply(ctx, now, deadline, effects);
            }
        }
        // What a shutdown left queued (VIRQ_DOM_EXC to the control domain).
        let left = self.hv.take_dom_exc();
        self.apply(ctx, now, now, left);
        self.maybe_switch(ctx, now);
    }

    #[allow(clippy::too_many_arguments)]
    fn service_trap(
        &mut self,
        ctx: &mut BarrierCtx<'_, Part>,
        now: Cycle,
        at: Cycle,
        p: PartitionId,
        t: usize,
        d: DomainId,
        v: VcpuId,
        trap: Trap,
    ) {
        let mem = Arc::clone(&self.mem);
        let space = self.hv.vcpu_space(d, v);
        let mut frames = Frames(&mem);
        let mut pm = PagedMemory {
            space: &space,
            store: &mut frames,
        };
        let core = Self::core(ctx, p);
        let mut regs = core.regs(t).clone();
        let (next, effects) = match trap {
            Trap::Hypercall => {
                let o = self.hv.hypercall(d, v, now.get(), &mut regs, &mut pm);
                (o.next, o.effects)
            }
            Trap::Fault(f) => {
                // Xen's PV emulator first; what it does not emulate bounces.
                match self
                    .hv
                    .guest_fault(d, v, now.get(), (&f).into(), &mut regs, &mut pm)
                {
                    Upcall::Crashed => {
                        let msg = format!("{v}: {f}");
                        self.hv.crash_domain(d, msg, now.get());
                        (Next::Shutdown, Vec::new())
                    }
                    _ => (Next::Resume, self.hv.take_deferred_effects()),
                }
            }
        };
        let mut effects = effects;
        if matches!(next, Next::Resume | Next::Yield) {
            self.try_upcall(d, v, now, now + self.hypercall_latency, &mut regs);
            effects.extend(self.hv.take_deferred_effects());
        }
        let core = Self::core(ctx, p);
        core.set_regs(t, regs);
        match next {
            Next::Resume | Next::Yield => core.resume(t, now + self.hypercall_latency),
            Next::Block | Next::Poll | Next::Down => core.park(t),
            Next::Shutdown => self.stop_domain(ctx, d),
        }
        self.apply(ctx, now, at, effects);
    }

    /// Delivers a due event upcall into `regs` (the VCPU is at an
    /// instruction boundary; it enters the handler at `entry`); records
    /// the IPI latency from the event's origin to `entry`.
    fn try_upcall(
        &mut self,
        d: DomainId,
        v: VcpuId,
        now: Cycle,
        entry: Cycle,
        regs: &mut ArchState,
    ) -> bool {
        let mem = Arc::clone(&self.mem);
        let space = self.hv.vcpu_space(d, v);
        let mut frames = Frames(&mem);
        let mut pm = PagedMemory {
            space: &space,
            store: &mut frames,
        };
        // An upcall taken in guest user mode switches to kernel mode: the
        // caller applies the queued NewRoot (`take_deferred_effects`).
        let delivered = self.hv.upcall(d, v, now.get(), regs, &mut pm) == Upcall::Delivered;
        if delivered {
            if let Some(at) = self.raised_at.remove(&(d, v)) {
                self.ipi_hist
                    .saturating_record(entry.saturating_since(at).max(1));
            }
        }
        delivered
    }

    /// Where every VCPU of domain `d` runs: (partition, context).
    fn places_of(&self, d: DomainId) -> Vec<(PartitionId, usize)> {
        self.place
            .range((d, VcpuId(0))..=(d, VcpuId(u32::MAX)))
            .map(|(_, &pt)| pt)
            .collect()
    }

    fn stop_domain(&mut self, ctx: &mut BarrierCtx<'_, Part>, d: DomainId) {
        for (p, t) in self.places_of(d) {
            Self::core(ctx, p).park(t);
        }
    }

    /// Carries out a hypercall's or timer's effects; `origin` is when the
    /// cause happened (the trap, the timer deadline).
    fn apply(
        &mut self,
        ctx: &mut BarrierCtx<'_, Part>,
        now: Cycle,
        origin: Cycle,
        effects: Vec<Effect>,
    ) {
        let run_at = now + self.ipi_latency;
        for e in effects {
            match e {
                Effect::Raise(r) => self.raise(ctx, now, origin, r),
                Effect::Start { domain, vcpu, regs } => {
                    let Some(&(p, t)) = self.place.get(&(domain, vcpu)) else {
                        continue;
                    };
                    let space: Arc<dyn smpsim_cores::part::AddressMap> =
                        Arc::new(self.hv.vcpu_space(domain, vcpu));
                    let core = Self::core(ctx, p);
                    let regs = regs.map_or_else(|| core.regs(t).clone(), |r| *r);
                    let asid = AddressSpaceId(u64::from(domain.0));
                    core.start(t, asid, regs, space, run_at);
                }
                Effect::Stop { domain, vcpu } => {
                    if let Some(&(p, t)) = self.place.get(&(domain, vcpu)) {
                        Self::core(ctx, p).park(t);
                    }
                }
                Effect::Wake { domain, vcpu } => self.wake(ctx, now, domain, vcpu),
                Effect::Flush {
                    domain,
                    vcpus,
                    page,
                } => {
                    let places: Vec<_> = match vcpus {
                        Some(vs) => vs
                            .iter()
                            .filter_map(|&v| self.place.get(&(domain, v)).copied())
                            .collect(),
                        None => self.places_of(domain),
                    };
                    for (p, t) in places {
                        Self::core(ctx, p).flush_tlb(t, page);
                    }
                }
                Effect::NewRoot { domain, vcpu } => {
                    if let Some(&(p, t)) = self.place.get(&(domain, vcpu)) {
                        let space = Arc::new(self.hv.vcpu_space(domain, vcpu));
                        Self::core(ctx, p).set_space(t, space);
                    }
                }
                Effect::Roi { begin, .. } => {
                    self.switching.roi_begins += u64::from(begin);
                    if self.switching.at_roi {
                        self.switching.roi = Some(begin);
                    }
                }
            }
        }
    }

    fn raise(&mut self, ctx: &mut BarrierCtx<'_, Part>, now: Cycle, origin: Cycle, r: Raise) {
        let mem = Arc::clone(&self.mem);
        let mut frames = Frames(&mem);
        let space = self.hv.vcpu_space(r.domain, r.vcpu);
        let mut pm = PagedMemory {
            space: &space,
            store: &mut frames,
        };
        let woken = self.hv.deliver(r, &mut pm);
        self.raised_at.entry((r.domain, r.vcpu)).or_insert(origin);
        for v in woken {
            self.wake(ctx, now, r.domain, v);
        }
        // A running VCPU is interrupted to take the event now.
        let Some(&(p, t)) = self.place.get(&(r.domain, r.vcpu)) else {
            return;
        };
        let core = Self::core(ctx, p);
        if *core.run_state(t) == Run::Running {
            let mut regs = core.regs(t).clone();
            let entry = now + self.ipi_latency;
            if self.try_upcall(r.domain, r.vcpu, now, entry, &mut regs) {
                let core = Self::core(ctx, p);
                core.interrupt(t);
                core.set_regs(t, regs);
                core.resume(t, now + self.ipi_latency);
                let fx = self.hv.take_deferred_effects();
                self.apply(ctx, now, now, fx);
            }
        }
    }

    fn wake(&mut self, ctx: &mut BarrierCtx<'_, Part>, now: Cycle, d: DomainId, v: VcpuId) {
        let Some(&(p, t)) = self.place.get(&(d, v)) else {
            return;
        };
        let core = Self::core(ctx, p);
        if *core.run_state(t) != Run::Idle {
            return;
        }
        let mut regs = core.regs(t).clone();
        self.try_upcall(d, v, now, now + self.ipi_latency, &mut regs);
        let core = Self::core(ctx, p);
        core.set_regs(t, regs);
        core.resume(t, now + self.ipi_latency);
        let fx = self.hv.take_deferred_effects();
        self.apply(ctx, now, now, fx);
    }
}
