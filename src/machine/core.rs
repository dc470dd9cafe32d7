//! A core partition: its SMT contexts (each running one VCPU or idle), the
//! functional executor of each context, and the private cache hierarchy
//! they share.
//!
//! The core advances in time order through three kinds of events: coherence
//! messages (handed to the hierarchy), the hierarchy's own work (store
//! drains) and instruction issue. A context issues one whole instruction at
//! a time through the [`Adapter`]; if the instruction blocks it is replayed
//! when the reason is gone (see the adapter's docs). Traps (hypercalls,
//! faults) park the context until the hypervisor services it at the next
//! service tick (see `hyper.rs`).
//!
//! Timing: the core issues at most one instruction per `cpi` cycles across
//! its contexts. `functional`: an instruction takes one cycle. `inorder`:
//! it takes `cpi` cycles or until its loads deliver, whichever is later
//! (blocking caches); a miss stalls its context until the grant arrives.

mod ooo;

use super::adapter::{Adapter, Blocked, Scratch, Tlb, REPLAY};
use super::config::Model;
use smpsim_cores::ooo::uopinfo::{class, op_name, Class};
use smpsim_cores::ooo::{AccessRec, LatencyConfig, OooConfig, OooCore};
use smpsim_cores::translate::translate_block;
use smpsim_cores::AddressSpaceId;
use smpsim_cores::{ArchState, Exit, Fault, FuncCore, GuestMemory, PageFault};
use smpsim_engine::{CounterId, Cycle, EpochCtx, HistId, Partition, Stats, StatsBuilder};
use smpsim_uncore::memory::{MachineAddr, MachineMemory};
use smpsim_uncore::{Access, ContextId, MemMsg, PrivateHierarchy, ReqId};
use smpsim_xen::memory::AddressSpace;
use smpsim_xen::{DomainId, VcpuId};
use std::collections::BTreeMap;
use std::sync::Arc;

/// Why a context is parked until the hypervisor's next service tick.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Trap {
    /// `syscall` from the hypercall page.
    Hypercall,
    /// A guest fault (or `hlt`, which a PV kernel may not execute).
    Fault(Fault),
}

/// What a context is doing.
#[derive(Clone, Debug, PartialEq, Eq)]
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

#[derive(Clone, Debug, PartialEq, Eq)]
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

/// One hardware context.
#[derive(Debug)]
pub struct Ctx {
    /// The VCPU it runs.
    pub vcpu: Option<(DomainId, VcpuId)>,
    /// Its registers.
    pub regs: ArchState,
    /// What it is doing.
    pub run: Run,
    /// Earliest cycle its next instruction may issue.
    pub ready: Cycle,
    func: FuncCore,
    space: Arc<AddressSpace>,
    tlb: Tlb,
    wait: Wait,
    /// A held lock: (VA, size, old value).
    lock: Option<(u64, usize, u128)>,
}

impl Ctx {
    /// What it waits for, for diagnostics.
    pub fn debug_wait(&self) -> String {
        format!("wait={:?} lock={:?}", self.wait, self.lock)
    }

    /// Whether it may issue at all.
    fn can_issue(&self) -> bool {
        self.run == Run::Running && self.wait == Wait::None
    }
}

struct Ids {
    instructions: CounterId,
    hypercalls: CounterId,
    faults: CounterId,
    replays: CounterId,
    locked: CounterId,
    busy_cycles: CounterId,
    spec_unknown: CounterId,
    mem_stall: HistId,
}

/// A core partition.
pub struct CorePart {
    hier: PrivateHierarchy,
    mem: Arc<MachineMemory>,
    /// Its contexts.
    pub ctxs: Vec<Ctx>,
    now: Cycle,
    next_issue: Cycle,
    model: Model,
    cpi: u64,
    latency: LatencyConfig,
    /// Execution cycles of each instruction seen, by (domain, RIP).
    costs: BTreeMap<(u16, u64), u64>,
    /// Direct-mapped cache in front of `costs`: (RIP, domain, cycles).
    cost_cache: Vec<(u64, u16, u64)>,
    /// The adapter's reusable buffers.
    scratch: Scratch,
    sb_cap: usize,
    service_period: u64,
    ids: Ids,
    /// The out-of-order pipeline (built when the machine may use `ooo`;
    /// taken out while it runs a cycle).
    ooo: Option<Box<OooCore>>,
    /// Each context's oracle stores not yet retired.
    spec: Vec<ooo::Overlay>,
    /// Completions of the pipeline's own accesses, for its port.
    port_done: Vec<(u32, u64)>,
    /// Reused buffer of the commit check.
    retire_log: Vec<AccessRec>,
    /// The context that issued last (functional and in-order models).
    last_issued: usize,
}

impl std::fmt::Debug for CorePart {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CorePart")
            .field("core", &self.hier.core())
            .field("now", &self.now)
            .finish()
    }
}

/// How to build a core partition.
pub struct CoreSetup {
    /// Machine memory.
    pub mem: Arc<MachineMemory>,
    /// Timing model.
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
    /// The out-of-order core, if the machine may use it.
    pub ooo: Option<OooConfig>,
}

impl CorePart {
    /// A core whose hierarchy comes from `make_hier`, given the builder that
    /// already holds the core's own statistics.
    pub fn new(
        setup: &CoreSetup,
        cpuid: impl Fn(u32) -> smpsim_cores::CpuidModel,
        make_hier: impl FnOnce(StatsBuilder) -> PrivateHierarchy,
    ) -> Self {
        let mut b = StatsBuilder::new();
        let ids = Ids {
            instructions: b.counter(
                "core.instructions",
                "x86 instructions retired",
                "instructions",
            ),
            hypercalls: b.counter("core.hypercalls", "hypercall traps", "events"),
            faults: b.counter("core.faults", "guest faults raised", "events"),
            replays: b.counter(
                "core.replays",
                "instructions replayed after a blocked access",
                "events",
            ),
            locked: b.counter(
                "core.locked_rmw",
                "read-modify-writes run as locked operations",
                "events",
            ),
            busy_cycles: b.counter(
                "core.busy_cycles",
                "cycles spent issuing instructions",
                "cycles",
            ),
            spec_unknown: b.counter(
                "core.ooo_oracle_unknown",
                "out-of-order oracle loads of lines the core did not hold (read as 0, checked at commit)",
                "loads",
            ),
            mem_stall: b.histogram(
                "core.mem_stall",
                "cycles an instruction waited for a miss",
                "cycles",
                1 << 20,
            ),
        };
        let hier = make_hier(b);
        let ooo = setup.ooo.as_ref().map(|cfg| {
            Box::new(
                OooCore::with_cpuid(cfg.clone(), cpuid(0))
                    .expect("the machine config validated the ooo config"),
            )
        });
        let ctxs = (0..setup.smt)
            .map(|t| Ctx {
                vcpu: None,
                regs: ArchState::default(),
                run: Run::Idle,
                ready: Cycle::ZERO,
                func: FuncCore::new(cpuid(t)),
                space: Arc::new(AddressSpace::new()),
                tlb: Tlb::default(),
                wait: Wait::None,
                lock: None,
            })
            .collect();
        CorePart {
            hier,
            mem: Arc::clone(&setup.mem),
            ctxs,
            now: Cycle::ZERO,
            next_issue: Cycle::ZERO,
            model: setup.model,
            cpi: setup.cpi,
            latency: setup.latency.clone(),
            costs: BTreeMap::new(),
            cost_cache: vec![(u64::MAX, 0, 0); COST_CACHE],
            scratch: Scratch::default(),
            sb_cap: setup.sb_cap,
            service_period: setup.service_period,
            ids,
            ooo,
            spec: (0..setup.smt).map(|_| ooo::Overlay::default()).collect(),
            port_done: Vec::new(),
            retire_log: Vec::new(),
            last_issued: 0,
        }
    }

    /// Brings the out-of-order core's occupancy histograms up to date
    /// (the machine calls it when a run ends).
    pub fn flush_stats(&mut self) {
        if let Some(o) = self.ooo.as_mut() {
            o.flush_stats();
        }
    }

    /// The out-of-order core's statistics, if it has one.
    pub fn more_stats(&self) -> Option<&Stats> {
        self.ooo.as_deref().map(OooCore::stats)
    }

    /// Instructions it has retired.
    pub fn instructions(&self) -> u64 {
        self.hier.stats().get(self.ids.instructions)
    }

    /// The timing model it runs.
    pub fn model(&self) -> Model {
        self.model
    }

    /// Switches the timing model at `now` (a barrier). In-flight
    /// out-of-order instructions are dropped (the committed state is the
    /// truth); caches, predictors and memory stay as they are.
    pub fn switch_model(&mut self, to: Model, now: Cycle) {
        if to == self.model {
            return;
        }
        if self.model == Model::Ooo {
            for t in 0..self.ctxs.len() {
                self.ooo_halt(t);
            }
        }
        self.model = to;
        for t in 0..self.ctxs.len() {
            let c = &mut self.ctxs[t];
            c.ready = c.ready.max(now);
            if to == Model::Ooo && c.run == Run::Running {
                self.ooo_resync(t, now);
            }
        }
        self.next_issue = self.next_issue.max(now);
    }

    /// Restarts context `t`'s pipeline from its committed registers.
    fn ooo_resync(&mut self, t: usize, at: Cycle) {
        if self.model != Model::Ooo {
            return;
        }
        let Some(o) = self.ooo.as_mut() else { return };
        let c = &self.ctxs[t];
        if let Some((d, _)) = c.vcpu {
            o.set_address_space(t, AddressSpaceId(u64::from(d.0)));
        }
        o.set_now(self.now.get());
        o.resync(t, &c.regs, at.get());
        self.spec[t].clear();
    }

    /// Drops context `t`'s in-flight instructions and stops its pipeline.
    fn ooo_halt(&mut self, t: usize) {
        if let Some(o) = self.ooo.as_mut() {
            o.halt(t);
        }
        self.spec[t].clear();
    }

    /// The core's private hierarchy.
    pub fn hierarchy(&self) -> &PrivateHierarchy {
        &self.hier
    }

    /// Starts context `t` running `vcpu` with `regs` at `at`.
    pub fn start(
        &mut self,
        t: usize,
        vcpu: (DomainId, VcpuId),
        regs: ArchState,
        space: Arc<AddressSpace>,
        at: Cycle,
    ) {
        let c = &mut self.ctxs[t];
        c.vcpu = Some(vcpu);
        c.regs = regs;
        c.space = space;
        c.tlb.clear();
        c.func.flush_translations();
        self.resume(t, at);
    }

    /// Lets context `t` run again from `at` (after a trap, a wake-up, or
    /// with registers the hypervisor changed).
    pub fn resume(&mut self, t: usize, at: Cycle) {
        self.clear_wait(t);
        let c = &mut self.ctxs[t];
        c.run = Run::Running;
        c.ready = c.ready.max(at);
        self.ooo_resync(t, at);
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

    /// Parks context `t` (blocked, down or shut down).
    pub fn park(&mut self, t: usize) {
        self.ctxs[t].run = Run::Idle;
        self.ooo_halt(t);
    }

    /// Replaces the address space of context `t` (the guest remapped a page).
    pub fn set_space(&mut self, t: usize, space: Arc<AddressSpace>, va: u64) {
        let c = &mut self.ctxs[t];
        c.space = space;
        c.tlb.clear();
        c.func.invalidate_code(va);
        if let Some(o) = self.ooo.as_mut() {
            o.invalidate_code(va);
        }
    }

    /// Whether context `t`'s stores have drained (its trap may be serviced).
    pub fn store_buffer_empty(&self, t: usize) -> bool {
        self.hier.store_buffer_empty_in(context(t))
    }

    /// Interrupts context `t` at its instruction boundary: a held lock is
    /// released (the instruction that wanted it has not run).
    pub fn interrupt(&mut self, t: usize) {
        let now = self.now;
        if self.ctxs[t].lock.take().is_some() {
            self.hier.end_locked(now, None);
        }
        self.clear_wait(t);
        self.ooo_halt(t);
    }

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

    /// For a trapped context: the cycle before the next service tick, so
    /// the engine runs the epoch that ends at the tick's barrier.
    fn next_trap_tick(&self) -> Option<Cycle> {
        let h = self.service_period;
        self.ctxs
            .iter()
            .filter_map(|c| match c.run {
                Run::Trapped { at, .. } => {
                    let tick = (at.max(self.now).get() / h + 1) * h;
                    Some(Cycle(tick - 1))
                }
                _ => None,
            })
            .min()
    }

    fn on_completions(&mut self) {
        for done in self.hier.take_completions() {
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
        let before = c.regs.clone();
        let mut ad = Adapter::new(
            &mut self.hier,
            &self.mem,
            (&c.space, &mut c.tlb),
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
        if let Some(why) = ad.blocked {
            debug_assert!(
                matches!(&exit, Exit::Fault(f) if f.addr == REPLAY),
                "{exit:?}"
            );
            c.regs = before;
            self.hier.stats_mut().inc(self.ids.replays);
            self.block(t, why);
            return Executed::Blocked;
        }
        let ready = ad.ready;
        let new = ad.commit();
        let c = &mut self.ctxs[t];
        if exit == Exit::Halt {
            // A PV kernel may not halt: the fault is at the `hlt`.
            c.regs = before.clone();
        }
        let released = c.lock.take().is_some();
        if released {
            self.hier.end_locked(now, new);
            self.hier.stats_mut().inc(self.ids.locked);
        }
        Executed::Done {
            exit,
            rip: before.rip,
            ready,
            released,
        }
    }

    /// Counts a finished instruction and parks its context on a trap
    /// (`at`: when the trap happens).
    fn finish(&mut self, t: usize, exit: Exit, at: Cycle) {
        let c = &mut self.ctxs[t];
        match exit {
            Exit::InsnLimit => self.hier.stats_mut().inc(self.ids.instructions),
            Exit::Syscall => {
                self.hier.stats_mut().inc(self.ids.instructions);
                self.hier.stats_mut().inc(self.ids.hypercalls);
                c.run = Run::Trapped {
                    trap: Trap::Hypercall,
                    at,
                };
            }
            Exit::Halt => {
                let fault = Fault {
                    vector: 13,
                    rip: c.regs.rip,
                    addr: 0,
                    detail: "hlt in a PV guest kernel".into(),
                };
                c.run = Run::Trapped {
                    trap: Trap::Fault(fault),
                    at,
                };
                self.hier.stats_mut().inc(self.ids.faults);
            }
            Exit::Fault(f) => {
                c.run = Run::Trapped {
                    trap: Trap::Fault(f),
                    at,
                };
                self.hier.stats_mut().inc(self.ids.faults);
            }
        }
    }

    /// Issues one instruction of context `t` at `now` (functional and
    /// in-order models); returns whether it released a lock.
    fn issue(&mut self, t: usize) -> bool {
        let now = self.now;
        self.last_issued = t;
        let Executed::Done {
            exit,
            rip,
            ready,
            released,
        } = self.execute(t, false, None)
        else {
            return false;
        };
        let cost = match self.model {
            Model::Inorder => {
                let exec = self.insn_cost(t, rip).max(self.cpi);
                (now + exec).max(ready)
            }
            Model::Functional | Model::Ooo => Cycle(now.get() + 1),
        };
        self.hier.stats_mut().add(self.ids.busy_cycles, cost - now);
        self.next_issue = match self.model {
            Model::Inorder => now + self.cpi,
            Model::Functional | Model::Ooo => now + 1,
        };
        self.ctxs[t].ready = cost;
        self.finish(t, exit, cost);
        released
    }

    /// Sum of the uop latencies of the instruction at `rip` (loads count 0:
    /// the memory system times them), memoized per (domain, RIP).
    fn insn_cost(&mut self, t: usize, rip: u64) -> u64 {
        let c = &self.ctxs[t];
        let key = (c.vcpu.map_or(0, |(d, _)| d.0), rip);
        let slot = (rip ^ rip >> 12) as usize % COST_CACHE;
        let (r, d, cost) = self.cost_cache[slot];
        if r == rip && d == key.0 {
            return cost;
        }
        if let Some(&cost) = self.costs.get(&key) {
            self.cost_cache[slot] = (rip, key.0, cost);
            return cost;
        }
        let mut fetch = CodeBytes {
            mem: &self.mem,
            space: &c.space,
        };
        let cost = match translate_block(&mut fetch, rip) {
            Ok(b) => b.insns.first().map_or(self.cpi, |i| {
                b.uops[usize::from(i.start)..usize::from(i.end)]
                    .iter()
                    .map(|u| uop_latency(&self.latency, u))
                    .sum()
            }),
            Err(_) => self.cpi,
        };
        self.costs.insert(key, cost);
        self.cost_cache[slot] = (rip, key.0, cost);
        cost
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
                let ma = c.space.translate(va).expect("translated at execution");
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

/// What [`CorePart::execute`] did.
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

/// A [`GuestMemory`] that records the data accesses made through it.
struct Logged<'a, 'b> {
    inner: &'a mut Adapter<'b>,
    log: &'a mut Vec<AccessRec>,
}

impl GuestMemory for Logged<'_, '_> {
    fn read(&mut self, addr: u64, buf: &mut [u8]) -> Result<(), PageFault> {
        self.inner.read(addr, buf)
    }
    fn write(&mut self, addr: u64, data: &[u8]) -> Result<(), PageFault> {
        self.inner.write(addr, data)
    }
    fn load(&mut self, addr: u64, size: u8) -> Result<u64, PageFault> {
        let v = self.inner.load(addr, size)?;
        self.log.push(AccessRec {
            addr,
            size,
            write: false,
        });
        Ok(v)
    }
    fn store(&mut self, addr: u64, size: u8, value: u64) -> Result<(), PageFault> {
        self.inner.store(addr, size, value)?;
        self.log.push(AccessRec {
            addr,
            size,
            write: true,
        });
        Ok(())
    }
    fn fence(&mut self) -> Result<(), PageFault> {
        self.inner.fence()
    }
}

/// Entries of the direct-mapped instruction-cost cache.
const COST_CACHE: usize = 4096;

/// A uop's execution latency in the in-order model.
fn uop_latency(l: &LatencyConfig, u: &smpsim_cores::uop::Uop) -> u64 {
    if let Some(&x) = l.per_op.get(&op_name(u.op)) {
        return x;
    }
    match class(u) {
        Class::Alu => l.alu,
        Class::Branch => l.branch,
        Class::Mul => l.mul,
        Class::Div => l.div,
        Class::Store => l.store,
        Class::Complex => l.complex,
        Class::Load | Class::None | Class::Fence => 0,
    }
}

/// Instruction bytes straight from machine memory, for timing lookups.
struct CodeBytes<'a> {
    mem: &'a MachineMemory,
    space: &'a AddressSpace,
}

impl GuestMemory for CodeBytes<'_> {
    fn read(&mut self, addr: u64, buf: &mut [u8]) -> Result<(), PageFault> {
        let fault = PageFault { addr, write: false };
        for (i, b) in buf.iter_mut().enumerate() {
            let va = addr + i as u64;
            let ma = self.space.translate(va).ok_or(fault)?;
            *b = self.mem.read_u8(MachineAddr(ma)).map_err(|_| fault)?;
        }
        Ok(())
    }

    fn write(&mut self, addr: u64, _: &[u8]) -> Result<(), PageFault> {
        Err(PageFault { addr, write: true })
    }
}

/// The hierarchy's name for context `t`.
fn context(t: usize) -> ContextId {
    ContextId(u8::try_from(t).expect("at most 8 contexts per core"))
}

impl Partition for CorePart {
    type Msg = MemMsg;

    fn run_epoch(&mut self, ctx: &mut EpochCtx<'_, MemMsg>) {
        if self.model == Model::Ooo {
            self.run_epoch_ooo(ctx);
            return;
        }
        let end = ctx.epoch_end();
        self.now = self.now.max(ctx.epoch_start());
        loop {
            let msg = ctx.peek_time().filter(|&t| t < end);
            let hier = self.hier.next_activity().filter(|&t| t < end);
            let issue = self.next_ctx().filter(|&(_, t)| t < end);
            let first = [msg, hier, issue.map(|(_, t)| t)]
                .into_iter()
                .flatten()
                .min();
            let Some(t) = first else { break };
            self.now = self.now.max(t);
            if msg == Some(t) {
                let m = ctx.pop_due().expect("peeked");
                self.hier.handle_message(self.now, m.payload);
                self.on_completions();
                self.wake_retries(true, true);
            } else if hier == Some(t) {
                self.hier.advance(self.now);
                self.on_completions();
                self.wake_retries(false, true);
            } else if let Some((i, _)) = issue {
                let released = self.issue(i);
                self.on_completions();
                if released {
                    self.wake_retries(true, false);
                }
            }
        }
        self.hier.flush(ctx);
    }

    fn next_activity(&self) -> Option<Cycle> {
        let busy = (self.model == Model::Ooo && self.ooo.as_ref().is_some_and(|o| o.any_running()))
            .then_some(self.now);
        [
            busy,
            self.hier.next_activity(),
            self.next_ctx().map(|(_, t)| t),
            self.next_trap_tick(),
        ]
        .into_iter()
        .flatten()
        .min()
    }

    fn stats(&self) -> &Stats {
        self.hier.stats()
    }
}
