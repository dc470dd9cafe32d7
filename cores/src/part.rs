//! The core partition: a core's SMT contexts (each running one VCPU or
//! idle), the functional executor of each context, the private cache
//! hierarchy they share, and the timing models that decide when things
//! happen.
//!
//! - [`CoreState`] is the architectural side, shared by every timing
//!   model: contexts and their registers, the `adapter` that runs one
//!   instruction through the private hierarchy (TLB, locked
//!   read-modify-writes, fences, the TSO store buffer), replay of blocked
//!   instructions, traps.
//! - [`TimingModel`] is the seam: `functional` and `inorder` are
//!   `issue::IssueModel`s (one whole instruction at a time), `ooo` is
//!   `ooo::OooModel` (the out-of-order pipeline with its commit check).
//! - [`CorePart`] is the engine partition: it runs each epoch through the
//!   model selected now and offers the hypervisor a narrow VCPU API
//!   ([`CorePart::start`], [`CorePart::resume`], [`CorePart::park`],
//!   [`CorePart::interrupt`], [`CorePart::pending_trap`],
//!   [`CorePart::regs`], [`CorePart::set_regs`]).
//!
//! The core sees guest-virtual memory through an [`AddressMap`] that the
//! machine provides per context (the hypervisor's page map of the VCPU):
//! this crate knows nothing of domains.
//!
//! Traps (hypercalls, faults) park a context until the hypervisor services
//! it at its next service tick; the partition reports that tick's cycle as
//! activity so the engine runs the epoch ending there.

mod adapter;
mod fast;
mod issue;
mod ooo;
mod timing;

pub use adapter::write_as_stores;
pub use timing::{Model, TimingModel};

use self::adapter::{Adapter, Blocked, Scratch, Tlb};
use self::fast::FastModel;
use self::issue::IssueModel;
use self::ooo::OooModel;
use crate::ooo::{AccessRec, LatencyConfig, OooConfig};
use crate::paging::{AccessKind, Translation, WalkFault};
use crate::{AddressSpaceId, ArchState, CpuidModel, Exit, Fault, FuncCore, GuestMemory, MemStop};
use serde::{Deserialize, Serialize};
use smpsim_engine::{Cycle, EpochCtx, Partition, Stats, StatsBuilder};
use smpsim_uncore::memory::{MachineAddr, MachineMemory};
use smpsim_uncore::{Access, Completion, ContextId, MemMsg, MemSystem, PrivateHierarchy, ReqId};
use std::sync::Arc;

/// How a context's guest-virtual addresses reach machine memory: the
/// machine implements it for a VCPU (its page-table root, walked with
/// [`crate::paging::walk`], plus any fixed hypervisor mappings).
pub trait AddressMap: Send + Sync + std::fmt::Debug {
    /// Translates an access of `kind` to `va` (the frame and what the
    /// translation allows), or says why it faults.
    fn translate(
        &self,
        mem: &MachineMemory,
        va: u64,
        kind: AccessKind,
    ) -> Result<Translation, WalkFault>;

    /// Whether the context runs in guest user mode (the #PF error code's
    /// U bit).
    fn user_mode(&self) -> bool {
        false
    }
}

/// The map of a context that runs nothing: every address is unmapped.
#[derive(Debug)]
struct NoMap;

impl AddressMap for NoMap {
    fn translate(
        &self,
        _: &MachineMemory,
        _: u64,
        kind: AccessKind,
    ) -> Result<Translation, WalkFault> {
        Err(WalkFault::Page(access_code(kind)))
    }
}

/// The error-code bits of an access of `kind` to an absent page.
pub fn access_code(kind: AccessKind) -> u32 {
    match kind {
        AccessKind::Read => 0,
        AccessKind::Write => crate::paging::pfec::WRITE,
        AccessKind::Fetch => crate::paging::pfec::FETCH,
    }
}

/// Why a context is parked until the hypervisor's next service tick.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Trap {
    /// `syscall` from the hypercall page.
    Hypercall,
    /// A guest fault (or `hlt`, which a PV kernel may not execute).
    Fault(Fault),
}

/// What a context is doing.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Run {
    /// No VCPU, or its VCPU is blocked, down or shut down.
    Idle,
    /// Issuing instructions.
    Running,
    /// Waiting for the hypervisor since `at`.
    Trapped {
        /// What it trapped for.
        trap: Trap,
        /// Cycle of the trap.
        at: Cycle,
    },
}

/// What a context's current instruction waits for before it is retried.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
enum Wait {
    None,
    /// A miss of the current instruction, since the given cycle.
    Mem(ReqId, Cycle),
    /// Retry after the next message.
    Stall,
    /// Retry when the store buffer drains.
    StoreBuffer,
    /// A fence: retry once this context's stores have drained.
    Drain,
    /// Acquiring the lock of a read-modify-write.
    Lock(ReqId, u64, usize),
}

/// The map of a context restored from a checkpoint before the machine
/// re-attached its map ([`CorePart::set_space`]): running it is a bug.
#[derive(Debug)]
struct Detached;

impl AddressMap for Detached {
    fn translate(
        &self,
        _: &MachineMemory,
        va: u64,
        _: AccessKind,
    ) -> Result<Translation, WalkFault> {
        panic!(
            "a core context restored from a checkpoint translated {va:#x} without its address \
             map: re-attach it with CorePart::set_space before running"
        )
    }
}

fn detached() -> Arc<dyn AddressMap> {
    Arc::new(Detached)
}

/// One hardware context. Serializable for checkpoints: its address map
/// is a shared handle and is not saved (a restored context gets one that
/// panics on use until the machine re-attaches the real one with
/// [`CorePart::set_space`]). Its TLBs are saved: they hold machine
/// addresses, which a whole-machine restore keeps, and their misses are
/// timed (walks through the data cache), so an empty TLB would change the
/// continued run.
#[derive(Debug, Serialize, Deserialize)]
struct Ctx {
    /// The address space it runs in (its domain), while it has a VCPU.
    asid: Option<AddressSpaceId>,
    regs: ArchState,
    run: Run,
    /// Earliest cycle its next instruction may issue.
    ready: Cycle,
    func: FuncCore,
    #[serde(skip, default = "detached")]
    space: Arc<dyn AddressMap>,
    tlb: Tlb,
    wait: Wait,
    /// A held lock: (VA, size, old value).
    lock: Option<(u64, usize, u128)>,
}

impl Ctx {
    /// Whether it may issue at all.
    fn can_issue(&self) -> bool {
        matches!(self.run, Run::Running) && matches!(self.wait, Wait::None)
    }
}

smpsim_engine::stat_table! {
    /// The core's own statistics (registered before its hierarchy's).
    struct CoreStats {
        /// Instructions retired.
        instructions: counter("core.instructions", "x86 instructions retired", "instructions"),
        /// Hypercall traps.
        hypercalls: counter("core.hypercalls", "hypercall traps", "events"),
        /// Guest faults.
        faults: counter("core.faults", "guest faults raised", "events"),
        /// Replays.
        replays: counter("core.replays", "instructions replayed after a blocked access", "events"),
        /// Locked operations.
        locked: counter("core.locked_rmw", "read-modify-writes run as locked operations", "events"),
        /// Busy cycles.
        busy_cycles: counter("core.busy_cycles", "cycles spent issuing instructions", "cycles"),
        /// Oracle loads of lines the core lacked.
        spec_unknown: counter(
            "core.ooo_oracle_unknown",
            "out-of-order oracle loads of lines the core did not hold (read as 0, checked at commit)",
            "loads"
        ),
        /// Miss stalls.
        mem_stall: histogram("core.mem_stall", "cycles an instruction waited for a miss", "cycles", 1 << 20),
        /// Page walks.
        tlb_walks: counter("tlb.walks", "TLB misses that walked the page tables (timed walks)", "walks"),
        /// Walk latency.
        walk_latency: histogram(
            "walk.latency",
            "cycles a completed page walk took (its entry loads in sequence through the caches)",
            "cycles",
            1 << 20
        ),
    }
}

/// The architectural side of a core, shared by its timing models.
pub struct CoreState {
    hier: PrivateHierarchy,
    mem: Arc<MachineMemory>,
    ctxs: Vec<Ctx>,
    now: Cycle,
    /// Earliest cycle the next instruction may issue (issue models).
    next_issue: Cycle,
    /// The model running now (completions not for a context feed the
    /// out-of-order pipeline's port only under `ooo`).
    model: Model,
    /// The adapter's reusable buffers.
    scratch: Scratch,
    sb_cap: usize,
    service_period: u64,
    ids: CoreStats,
    /// Completions of the pipeline's own accesses, for its port.
    port_done: Vec<(u32, u64)>,
    /// The context that issued last (issue models' round robin).
    last_issued: usize,
}

impl std::fmt::Debug for CoreState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CoreState")
            .field("core", &self.hier.core())
            .field("now", &self.now)
            .field("model", &self.model)
            .finish()
    }
}

/// How to build a core partition.
#[derive(Clone, Debug)]
pub struct CoreSetup {
    /// Machine memory.
    pub mem: Arc<MachineMemory>,
    /// Timing model it starts in.
    pub model: Model,
    /// Cycles per instruction (inorder).
    pub cpi: u64,
    /// Uop latencies (inorder).
    pub latency: LatencyConfig,
    /// Store-buffer entries.
    pub sb_cap: usize,
    /// Hypervisor service period in cycles.
    pub service_period: u64,
    /// Hardware contexts.
    pub smt: u32,
    /// Entries of each context's ITLB and DTLB (powers of two).
    pub tlb_entries: (usize, usize),
    /// The out-of-order core, if the machine may use it.
    pub ooo: Option<OooConfig>,
}

/// A core partition.
#[derive(Debug)]
pub struct CorePart {
    core: CoreState,
    functional: IssueModel,
    inorder: IssueModel,
    /// Built when the machine may use `ooo`.
    ooo: Option<OooModel>,
    fast: FastModel,
}

/// What [`CoreState::execute`] did.
enum Executed {
    /// The instruction must replay (the context waits).
    Blocked,
    /// It ran.
    Done {
        /// How it ended.
        exit: Exit,
        /// Its address.
        rip: u64,
        /// When its loaded data was ready.
        ready: Cycle,
        /// Whether it released a lock.
        released: bool,
    },
}

impl CorePart {
    /// A core whose hierarchy comes from `make_hier`, given the builder that
    /// already holds the core's own statistics; `cpuid(t)` is context
    /// `t`'s CPUID model.
    pub fn new(
        setup: &CoreSetup,
        cpuid: impl Fn(u32) -> CpuidModel,
        make_hier: impl FnOnce(StatsBuilder) -> PrivateHierarchy,
    ) -> Self {
        let mut b = StatsBuilder::new();
        let ids = CoreStats::declare(&mut b);
        let hier = make_hier(b);
        let ctxs = (0..setup.smt)
            .map(|t| Ctx {
                asid: None,
                regs: ArchState::default(),
                run: Run::Idle,
                ready: Cycle::ZERO,
                func: FuncCore::new(cpuid(t)),
                space: Arc::new(NoMap),
                tlb: Tlb::new(setup.tlb_entries.0, setup.tlb_entries.1),
                wait: Wait::None,
                lock: None,
            })
            .collect();
        let ooo = setup
            .ooo
            .as_ref()
            .map(|cfg| OooModel::new(cfg.clone(), cpuid(0), setup.smt as usize));
        CorePart {
            core: CoreState {
                hier,
                mem: Arc::clone(&setup.mem),
                ctxs,
                now: Cycle::ZERO,
                next_issue: Cycle::ZERO,
                model: setup.model,
                scratch: Scratch::default(),
                sb_cap: setup.sb_cap,
                service_period: setup.service_period,
                ids,
                port_done: Vec::new(),
                last_issued: 0,
            },
            functional: IssueModel::functional(),
            inorder: IssueModel::inorder(
                setup.cpi,
                setup.latency.clone(),
                crate::translate::Quirks::of(&cpuid(0)),
            ),
            ooo,
            fast: FastModel::new(setup.smt as usize),
        }
    }

    /// The model running now, with the state it runs on.
    fn active(&mut self) -> (&mut CoreState, &mut dyn TimingModel) {
        let m: &mut dyn TimingModel = match self.core.model {
            Model::Functional => &mut self.functional,
            Model::Inorder => &mut self.inorder,
            Model::Ooo => self
                .ooo
                .as_mut()
                .expect("a core running `ooo` has a pipeline"),
            Model::Fast => &mut self.fast,
        };
        (&mut self.core, m)
    }

    fn active_ref(&self) -> &dyn TimingModel {
        match self.core.model {
            Model::Functional => &self.functional,
            Model::Inorder => &self.inorder,
            Model::Ooo => self
                .ooo
                .as_ref()
                .expect("a core running `ooo` has a pipeline"),
            Model::Fast => &self.fast,
        }
    }

    /// Every model that keeps per-context state.
    fn models(&mut self) -> impl Iterator<Item = &mut dyn TimingModel> {
        [
            Some(&mut self.functional as &mut dyn TimingModel),
            Some(&mut self.inorder as &mut dyn TimingModel),
            self.ooo.as_mut().map(|o| o as &mut dyn TimingModel),
            Some(&mut self.fast as &mut dyn TimingModel),
        ]
        .into_iter()
        .flatten()
    }

    /// Brings the models' statistics up to date (the machine calls it
    /// when a run ends).
    pub fn flush_stats(&mut self) {
        for m in self.models() {
            m.flush_stats();
        }
    }

    /// The out-of-order core's statistics, if it has one.
    pub fn more_stats(&self) -> Option<&Stats> {
        self.ooo.as_ref().and_then(|o| o.stats())
    }

    /// Instructions it has retired.
    pub fn instructions(&self) -> u64 {
        self.core.hier.stats().get(self.core.ids.instructions)
    }

    /// The timing model it runs.
    pub fn model(&self) -> Model {
        self.core.model
    }

    /// The core's private hierarchy.
    pub fn hierarchy(&self) -> &PrivateHierarchy {
        &self.core.hier
    }

    /// Hardware contexts.
    pub fn contexts(&self) -> usize {
        self.core.ctxs.len()
    }

    /// Switches the timing model at `now` (a barrier). In-flight
    /// instructions of the old model are dropped (the committed state is
    /// the truth); caches, predictors and memory stay as they are.
    pub fn switch_model(&mut self, to: Model, now: Cycle) {
        if to == self.core.model {
            return;
        }
        let n = self.core.ctxs.len();
        {
            let (_, old) = self.active();
            for t in 0..n {
                old.halt(t);
            }
        }
        if to == Model::Fast {
            // `fast` reads machine memory directly: what the store buffer
            // holds is written there now (a legal drain at this barrier),
            // and accesses or locks in flight are given up (their
            // instructions had not run).
            for t in 0..n {
                self.interrupt(t);
            }
            self.core.hier.spill_store_buffer();
        }
        self.core.model = to;
        for t in 0..n {
            let c = &mut self.core.ctxs[t];
            c.ready = c.ready.max(now);
        }
        let (core, new) = self.active();
        for t in 0..n {
            if core.ctxs[t].run == Run::Running {
                new.resume(core, t, now);
            }
        }
        self.core.next_issue = self.core.next_issue.max(now);
    }

    /// Starts context `t` running with `regs` in address space `asid`
    /// (mapped by `space`) at `at`.
    pub fn start(
        &mut self,
        t: usize,
        asid: AddressSpaceId,
        regs: ArchState,
        space: Arc<dyn AddressMap>,
        at: Cycle,
    ) {
        let c = &mut self.core.ctxs[t];
        c.asid = Some(asid);
        c.regs = regs;
        c.space = space;
        c.tlb.clear();
        c.func.flush_translations();
        self.resume(t, at);
    }

    /// Lets context `t` run again from `at` (after a trap, a wake-up, or
    /// with registers the hypervisor changed).
    pub fn resume(&mut self, t: usize, at: Cycle) {
        self.core.clear_wait(t);
        let c = &mut self.core.ctxs[t];
        c.run = Run::Running;
        c.ready = c.ready.max(at);
        let (core, m) = self.active();
        m.resume(core, t, at);
    }

    /// Parks context `t` (blocked, down or shut down).
    pub fn park(&mut self, t: usize) {
        self.core.ctxs[t].run = Run::Idle;
        for m in self.models() {
            m.halt(t);
        }
    }

    /// Replaces the address map of context `t` (its page-table root
    /// changed): its TLB is emptied.
    pub fn set_space(&mut self, t: usize, space: Arc<dyn AddressMap>) {
        let c = &mut self.core.ctxs[t];
        c.space = space;
        c.tlb.clear();
    }

    /// Gives restored context `t` its address map back (the one it had
    /// when saved: the TLB, saved with it, stays valid).
    pub fn reattach_space(&mut self, t: usize, space: Arc<dyn AddressMap>) {
        self.core.ctxs[t].space = space;
    }

    /// Drops context `t`'s cached translations: of the page holding `page`
    /// (and the decoded code of that page), or all of them, with the
    /// context's decoded code. A cached block runs without looking at the
    /// ITLB, so code decoded before a full flush would otherwise keep
    /// running with no ITLB entry, while a run restored from a checkpoint
    /// (where decoded code is rebuilt) decodes it again through the
    /// emptied ITLB and walks: the two would differ (grant unmaps flush
    /// the whole TLB after every batch, as Xen's do).
    pub fn flush_tlb(&mut self, t: usize, page: Option<u64>) {
        let c = &mut self.core.ctxs[t];
        match page {
            Some(va) => {
                c.tlb.flush_page(va);
                c.func.invalidate_code(va);
                for m in self.models() {
                    m.invalidate_code(va);
                }
            }
            None => {
                c.tlb.clear();
                c.func.flush_translations();
            }
        }
    }

    /// Interrupts context `t` at its instruction boundary: a held lock is
    /// released (the instruction that wanted it has not run).
    pub fn interrupt(&mut self, t: usize) {
        let now = self.core.now;
        if self.core.ctxs[t].lock.take().is_some() {
            self.core.hier.end_locked(now, None);
        }
        self.core.clear_wait(t);
        for m in self.models() {
            m.halt(t);
        }
    }

    /// Context `t`'s trap, with its cycle, once it may be serviced (its
    /// stores have drained); `None` while it runs, idles or drains.
    pub fn pending_trap(&self, t: usize) -> Option<(&Trap, Cycle)> {
        match &self.core.ctxs[t].run {
            Run::Trapped { trap, at } if self.core.hier.store_buffer_empty_in(context(t)) => {
                Some((trap, *at))
            }
            _ => None,
        }
    }

    /// What context `t` is doing.
    pub fn run_state(&self, t: usize) -> &Run {
        &self.core.ctxs[t].run
    }

    /// Context `t`'s committed registers.
    pub fn regs(&self, t: usize) -> &ArchState {
        &self.core.ctxs[t].regs
    }

    /// Replaces context `t`'s registers (the hypervisor serviced it); the
    /// caller then resumes or parks it.
    pub fn set_regs(&mut self, t: usize, regs: ArchState) {
        self.core.ctxs[t].regs = regs;
    }

    /// Writes a checkpoint of everything of this core but its private
    /// hierarchy and shared handles: contexts, clock, model, the issue
    /// models (cost memos), the out-of-order model and the private
    /// hierarchy (with its statistics). Machine memory, the fabric and the
    /// contexts' address maps are shared handles the machine re-attaches
    /// (see [`Self::restore_state`]).
    pub fn save_state<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let c = &self.core;
        let state = (&c.ctxs, c.now, c.next_issue, c.model, &c.port_done);
        (
            state,
            c.last_issued,
            &self.functional,
            &self.inorder,
            &self.ooo,
            &c.hier,
            &self.fast,
        )
            .serialize(s)
    }

    /// Loads a checkpoint written by [`Self::save_state`] into a core built
    /// from the same [`CoreSetup`]; the saved hierarchy replaces the new
    /// one and is attached to `sys` (whose machine memory its owner has
    /// restored). Every context that had an address
    /// space then needs its map again: until
    /// then it panics on its first translation instead of running unmapped
    /// ([`Self::reattach_space`]).
    pub fn restore_state<'de, D: serde::Deserializer<'de>>(
        &mut self,
        d: D,
        sys: &MemSystem,
    ) -> Result<(), D::Error> {
        type Saved = (
            (Vec<Ctx>, Cycle, Cycle, Model, Vec<(u32, u64)>),
            usize,
            IssueModel,
            IssueModel,
            Option<OooModel>,
            PrivateHierarchy,
            FastModel,
        );
        let (
            (ctxs, now, next_issue, model, port_done),
            last_issued,
            functional,
            inorder,
            ooo,
            hier,
            fast,
        ) = Saved::deserialize(d)?;
        let mut hier = hier;
        hier.attach(sys);
        self.core.hier = hier;
        let c = &mut self.core;
        (c.now, c.next_issue, c.model, c.port_done) = (now, next_issue, model, port_done);
        c.ctxs = ctxs;
        for x in c.ctxs.iter_mut().filter(|x| x.asid.is_none()) {
            x.space = Arc::new(NoMap);
        }
        c.last_issued = last_issued;
        // A core saved without an ooo pipeline keeps the one it was built
        // with (a restore into `ooo` builds one).
        let ooo = ooo.or_else(|| self.ooo.take());
        (self.functional, self.inorder, self.ooo, self.fast) = (functional, inorder, ooo, fast);
        Ok(())
    }

    /// Whether the fast-forward model left work for the barrier: stores to
    /// commit or an instruction to run alone ([`Self::fast_commit`],
    /// [`Self::fast_serialize`]).
    pub fn fast_pending(&self) -> (bool, bool) {
        (self.fast.has_stores(), self.fast.has_serialized())
    }

    /// Writes the stores the fast-forward model buffered this quantum to
    /// machine memory (at a barrier; the machine calls it core by core in
    /// id order). Returns the lines written.
    pub fn fast_commit(&mut self) -> usize {
        self.fast.commit(&self.core.mem)
    }

    /// Runs the instructions the fast-forward model serialized (atomic
    /// read-modify-writes), each alone against memory at `now` (a barrier,
    /// after every core's commit).
    pub fn fast_serialize(&mut self, now: Cycle) {
        self.fast.run_serialized(&mut self.core, now);
    }

    /// One line about context `t` for diagnostics: run state, RIP, when it
    /// may issue and what it waits for.
    pub fn describe(&self, t: usize) -> String {
        let c = &self.core.ctxs[t];
        format!(
            "{:?} rip={:#x} ready={} wait={:?} lock={:?}",
            c.run, c.regs.rip, c.ready, c.wait, c.lock
        )
    }
}

impl CoreState {
    /// The context that issues next: the earliest ready; ties go round
    /// robin from the one that issued last (otherwise, when issue is the
    /// only limit, context 0 would starve the others).
    fn next_ctx(&self) -> Option<(usize, Cycle)> {
        let n = self.ctxs.len();
        self.ctxs
            .iter()
            .enumerate()
            .filter(|(_, c)| c.can_issue())
            .map(|(i, c)| (i, c.ready.max(self.next_issue)))
            .min_by_key(|&(i, t)| (t, (i + n - self.last_issued - 1) % n))
    }

    /// [`Self::next_ctx`] in one pass, with the earliest ready cycle of the
    /// other contexts that may issue (the end of the chosen one's turn).
    fn issue_order(&self) -> Option<(usize, Cycle, Option<Cycle>)> {
        if let [c] = &self.ctxs[..] {
            return c
                .can_issue()
                .then(|| (0, c.ready.max(self.next_issue), None));
        }
        let (i, t) = self.next_ctx()?;
        let others = self
            .ctxs
            .iter()
            .enumerate()
            .filter(|&(j, c)| j != i && c.can_issue())
            .map(|(_, c)| c.ready)
            .min();
        Some((i, t, others))
    }

    /// The earliest of [`Self::next_ctx`]'s cycle and, for a trapped
    /// context, the cycle before the next service tick (so the engine runs
    /// the epoch that ends at the tick's barrier), in one pass.
    fn next_ctx_activity(&self) -> Option<Cycle> {
        let mut first: Option<Cycle> = None;
        for c in &self.ctxs {
            let t = match c.run {
                Run::Running if matches!(c.wait, Wait::None) => c.ready.max(self.next_issue),
                Run::Trapped { at, .. } => {
                    let h = self.service_period;
                    Cycle((at.max(self.now).get() / h + 1) * h - 1)
                }
                _ => continue,
            };
            first = Some(first.map_or(t, |f| f.min(t)));
        }
        first
    }

    /// Forgets what context `t` waited for; a lock still being acquired is
    /// cancelled (completions are consumed as they arrive, so a lock that
    /// is still awaited has not been granted).
    fn clear_wait(&mut self, t: usize) {
        let c = &mut self.ctxs[t];
        if let Wait::Lock(..) = c.wait {
            self.hier.cancel_locked();
        }
        c.wait = Wait::None;
    }

    /// Hands a coherence message to the hierarchy at `now` and wakes what
    /// it unblocked.
    fn handle_message(&mut self, msg: MemMsg) {
        self.hier.handle_message(self.now, msg);
        self.on_completions();
        self.wake_retries(true, true);
    }

    /// Does the hierarchy's own work due now (store drains) and wakes what
    /// it unblocked.
    fn advance_hierarchy(&mut self) {
        self.hier.advance(self.now);
        self.on_completions();
        self.wake_retries(false, true);
    }

    fn on_completions(&mut self) {
        let done = self.hier.take_completions();
        self.completed(done);
    }

    /// Hands completed accesses to the contexts that wait for them (or to
    /// the out-of-order pipeline's port).
    fn completed(&mut self, done: Vec<Completion>) {
        for done in done {
            let mine = self
                .ctxs
                .iter()
                .any(|c| matches!(c.wait, Wait::Mem(id, _) | Wait::Lock(id, ..) if id == done.id));
            if !mine && self.model == Model::Ooo {
                self.port_done.push((done.id.0, done.ready.get()));
                continue;
            }
            for c in &mut self.ctxs {
                match c.wait {
                    Wait::Mem(id, since) if id == done.id => {
                        c.wait = Wait::None;
                        c.ready = c.ready.max(done.ready);
                        let stalled = done.ready.saturating_since(since);
                        self.hier.stats_mut().record(self.ids.mem_stall, stalled);
                    }
                    Wait::Lock(id, va, size) if id == done.id => {
                        c.wait = Wait::None;
                        c.lock = Some((va, size, done.value));
                        c.ready = c.ready.max(done.ready);
                    }
                    _ => {}
                }
            }
        }
    }

    /// Lets waiting contexts retry: `stalls` after a message or a released
    /// lock (an MSHR, a way or the lock may be free now), store-buffer
    /// waiters after a drain. Only events that change the hierarchy wake
    /// anyone, so a retry never spins at one cycle.
    fn wake_retries(&mut self, stalls: bool, drained: bool) {
        let sb_room = self.hier.store_buffer_len() < self.sb_cap;
        let now = self.now;
        for (t, c) in self.ctxs.iter_mut().enumerate() {
            let go = match c.wait {
                Wait::Stall => stalls,
                Wait::StoreBuffer => drained && sb_room,
                Wait::Drain => drained && self.hier.store_buffer_empty_in(context(t)),
                _ => false,
            };
            if go {
                c.wait = Wait::None;
                c.ready = c.ready.max(now);
            }
        }
    }

    /// Runs one instruction of context `t` functionally at `now` through
    /// the adapter (the architectural truth, in every model). A blocked
    /// instruction leaves the registers as they were and sets the
    /// context's wait; `quiet` reads lines the core holds without touching
    /// the caches' statistics (the out-of-order pipeline already timed
    /// them). `log` collects the instruction's data accesses.
    fn execute(&mut self, t: usize, quiet: bool, log: Option<&mut Vec<AccessRec>>) -> Executed {
        let now = self.now;
        let sb_free = self.sb_cap.saturating_sub(self.hier.store_buffer_len());
        let c = &mut self.ctxs[t];
        let before = c.regs.int_regs();
        let mut ad = Adapter::new(
            &mut self.hier,
            &self.mem,
            (&*c.space, &mut c.tlb),
            &mut self.scratch,
            now,
            context(t),
            sb_free,
            c.lock,
        );
        ad.quiet = quiet;
        c.func.set_cycles(now.get());
        let exit = match log {
            Some(log) => {
                log.clear();
                c.func.run(
                    &mut c.regs,
                    &mut Logged {
                        inner: &mut ad,
                        log,
                    },
                    1,
                )
            }
            None => c.func.run(&mut c.regs, &mut ad, 1),
        };
        if exit == Exit::Retry {
            let why = ad.blocked.expect("the adapter says why it stopped");
            c.regs.restore_int_regs(&before);
            self.hier.stats_mut().inc(self.ids.replays);
            self.block(t, why);
            return Executed::Blocked;
        }
        let ready = ad.ready + ad.walk_delay;
        let new = ad.commit();
        for i in 0..self.scratch.walks.len() {
            let w = self.scratch.walks[i];
            let stats = self.hier.stats_mut();
            stats.inc(self.ids.tlb_walks);
            stats.record(self.ids.walk_latency, w.max(1));
        }
        let c = &mut self.ctxs[t];
        if exit == Exit::Halt {
            // A PV kernel may not halt: the fault is at the `hlt`.
            c.regs.restore_int_regs(&before);
        }
        let released = c.lock.take().is_some();
        if released {
            self.hier.end_locked(now, new);
            self.hier.stats_mut().inc(self.ids.locked);
        }
        Executed::Done {
            exit,
            rip: before.rip(),
            ready,
            released,
        }
    }

    /// Counts a finished instruction and parks its context on a trap
    /// (`at`: when the trap happens).
    fn finish(&mut self, t: usize, exit: Exit, at: Cycle) {
        let c = &mut self.ctxs[t];
        let stats = self.hier.stats_mut();
        let trap = match exit {
            Exit::InsnLimit => {
                stats.inc(self.ids.instructions);
                return;
            }
            Exit::Retry => unreachable!("a retried instruction did not finish"),
            Exit::Syscall => {
                stats.inc(self.ids.instructions);
                stats.inc(self.ids.hypercalls);
                Trap::Hypercall
            }
            Exit::Halt => {
                stats.inc(self.ids.faults);
                Trap::Fault(Fault {
                    vector: 13,
                    rip: c.regs.rip,
                    addr: 0,
                    error_code: 0,
                    detail: "hlt in a PV guest kernel".into(),
                })
            }
            Exit::Fault(f) => {
                stats.inc(self.ids.faults);
                Trap::Fault(f)
            }
        };
        c.run = Run::Trapped { trap, at };
    }

    fn block(&mut self, t: usize, why: Blocked) {
        let now = self.now;
        let c = &mut self.ctxs[t];
        c.wait = match why {
            Blocked::Wait(id) => Wait::Mem(id, now),
            Blocked::Stall => Wait::Stall,
            Blocked::StoreBuffer => Wait::StoreBuffer,
            Blocked::Drain => Wait::Drain,
            Blocked::Lock { va, size } => {
                // A held lock that the instruction outgrew is given back
                // unchanged (nothing of the instruction happened) and the
                // wider one taken.
                if c.lock.take().is_some() {
                    self.hier.end_locked(now, None);
                }
                let ma = c
                    .tlb
                    .translate(&*c.space, &self.mem, va, AccessKind::Write)
                    .expect("translated at execution");
                match self
                    .hier
                    .begin_locked_in(now, context(t), MachineAddr(ma), size)
                {
                    Access::Done { ready, value, .. } => {
                        c.lock = Some((va, size, value));
                        c.ready = c.ready.max(ready);
                        Wait::None
                    }
                    Access::Pending(id) => Wait::Lock(id, va, size),
                    Access::Stall => Wait::Stall,
                }
            }
        };
    }
}

/// A [`GuestMemory`] that records the data accesses made through it.
struct Logged<'a, 'b> {
    inner: &'a mut Adapter<'b>,
    log: &'a mut Vec<AccessRec>,
}

impl GuestMemory for Logged<'_, '_> {
    fn read(&mut self, addr: u64, buf: &mut [u8]) -> Result<(), MemStop> {
        self.inner.read(addr, buf)
    }
    fn write(&mut self, addr: u64, data: &[u8]) -> Result<(), MemStop> {
        self.inner.write(addr, data)
    }
    fn load(&mut self, addr: u64, size: u8) -> Result<u64, MemStop> {
        let v = self.inner.load(addr, size)?;
        self.log.push(AccessRec {
            addr,
            size,
            write: false,
        });
        Ok(v)
    }
    fn store(&mut self, addr: u64, size: u8, value: u64) -> Result<(), MemStop> {
        self.inner.store(addr, size, value)?;
        self.log.push(AccessRec {
            addr,
            size,
            write: true,
        });
        Ok(())
    }
    fn fence(&mut self) -> Result<(), MemStop> {
        self.inner.fence()
    }
}

/// The hierarchy's name for context `t`.
fn context(t: usize) -> ContextId {
    ContextId(u8::try_from(t).expect("at most 8 contexts per core"))
}

impl Partition for CorePart {
    type Msg = MemMsg;

    fn run_epoch(&mut self, ctx: &mut EpochCtx<'_, MemMsg>) {
        let (core, m) = self.active();
        core.now = core.now.max(ctx.epoch_start());
        m.run_epoch(core, ctx);
    }

    fn next_activity(&self) -> Option<Cycle> {
        let c = &self.core;
        let own = match (c.hier.next_activity(), c.next_ctx_activity()) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        };
        match (self.active_ref().next_activity(c), own) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }

    fn stats(&self) -> &Stats {
        self.core.hier.stats()
    }

    fn more_stats(&self) -> Option<&Stats> {
        CorePart::more_stats(self)
    }
}
