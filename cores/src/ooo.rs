//! The out-of-order core with SMT, in the style of PTLsim: a cycle-driven
//! pipeline over the uop IR ([`crate::uop`]).
//!
//! # Model
//! Per cycle, in this order: load completions from the memory port →
//! branch resolution (a mispredicted branch whose result is ready squashes
//! every younger uop of its context and redirects fetch) → in-order commit
//! (`commit_width` uops over all contexts, stores handed to the
//! [`MemPort`] at commit) → issue (oldest-first from one shared issue
//! queue, `issue_width` uops, per-class functional-unit counts: ALUs,
//! multipliers, dividers, load/store ports, FP/vector units for the FpAdd,
//! FpMul, Convert, Vec and Shuffle classes, FP dividers; both dividers
//! unpipelined) → rename/dispatch (`dispatch_width` uops; a uop needs a ROB
//! entry of its context, an IQ entry, an LQ/SQ entry, a free physical
//! register) → fetch (one context per cycle chosen by the fetch policy,
//! ICOUNT by default: fewest uops in its fetch buffer and issue queue; up
//! to `fetch_width` instructions, stopping after a predicted-taken branch).
//! One unified issue queue serves all functional units (no clusters).
//!
//! # Correctness: an execute-at-fetch oracle
//! Architectural results come from a [`FuncCore`] per context, stepped one
//! instruction at a time when the pipeline fetches that instruction on the
//! correct path (PTLsim's "sequential validation" turned into the source
//! of truth). The oracle yields the next RIP (the branch outcome), the
//! addresses of the instruction's memory accesses, and the exit (`hlt`,
//! `syscall`, fault). The pipeline supplies only timing, so results are
//! exact by construction. What this implies, precisely:
//! - Wrong-path instructions are fetched from the *predicted* path (decoded
//!   from guest memory through the translation cache), renamed, issued and
//!   executed for timing, then squashed; wrong-path loads are not sent to
//!   memory (they take `latency.wrong_path_load`), wrong-path stores
//!   have no address.
//! - With [`OooCore::cycle`] the oracle reads and writes the given memory
//!   at fetch (a single-core or test setup), and stores are handed to the
//!   [`MemPort`] again at commit for timing. A shared-memory machine uses
//!   [`OooCore::cycle_in`] with an [`Env`] instead: the environment gives
//!   the oracle a private view of memory (its stores stay invisible to
//!   others) and, through the commit hook [`MemPort::retire`], executes
//!   each instruction for real at commit; if the outcome differs from the
//!   oracle's record ([`Verdict::Diverged`]) younger instructions are
//!   squashed and the oracle restarts from the committed state
//!   (`ooo.diverged`). The core partition does this
//!   ([`crate::part`], its `ooo` model).
//! - A memory-order violation (a load issued before an older store to an
//!   overlapping address executed) squashes the load's instruction and
//!   everything younger; their oracle results are kept and refetched from a
//!   replay queue (no re-execution needed). A small per-context
//!   load-alias predictor (`alias_predictor` entries) then keeps that load
//!   from issuing ahead of older stores with unknown addresses.
//! - REP string instructions: one iteration is one instruction; the
//!   sequencer knows the count (no mispredict at the last iteration).
//! - Calls and returns are recognised from their uops (a branch with a
//!   store = call; an indirect branch whose address comes from a load
//!   through rsp = return).
//! - Fences (`mfence`, `lfence`, `sfence` alike) issue only as their
//!   context's oldest uop once [`MemPort::stores_drained`], and younger
//!   loads wait for them. Locked instructions are not distinguished from
//!   plain read-modify-writes in the timing model (no lock flag in the
//!   uop IR); their atomicity is the oracle's.
//! - Flags are renamed as one register (a partial flag writer depends on
//!   nothing older).
//! - Instruction fetch asks the port once per 64-byte line the front end
//!   enters ([`MemPort::fetch`]; ideal by default, the L1I in the core
//!   partition, [`crate::part`]); only the part of its latency beyond
//!   `icache_hidden` stalls fetch. An instruction crossing a line is
//!   charged for its first line only.
//!
//! # Precise exceptions and exits
//! An instruction whose oracle step ends in a fault, `hlt` or `syscall`
//! stops oracle fetch for its context; when it commits the context stops
//! with that [`Exit`] ([`OooCore::take_exit`]). A fault leaves the state
//! before the faulting instruction (RIP on it); `hlt`/`syscall` after it.
//! Interrupts/upcalls at instruction boundaries: [`OooCore::request_stop`]
//! stops fetching new instructions; the pipeline drains and the context
//! stops with [`Exit::InsnLimit`]. While stopped, [`OooCore::state_mut`]
//! edits its registers/RIP freely, then [`OooCore::resume`] restarts it.
//!
//! # Statistics ([`OooCore::stats`], names under `ooo.`)
//! `cycles`, `insns`, `uops` (IPC = insns / cycles, [`OooCore::ipc`]);
//! `mispredict.{cond,jump,call,ret,indirect,rep}`; stalls by cause:
//! `stall.{rob_full,iq_full,lq_full,sq_full,phys_regs}` (cycles dispatch
//! stopped, first cause), `stall.fetch` (cycles nothing was fetched),
//! `stall.mshr` (loads refused by the port), `stall.store_buffer`;
//! `stall.commit_wait` (the commit hook asked to wait), `stlf`,
//! `mem_violations`, `squashed_uops`, `wrong_path_uops`, `icache_stalls`,
//! `diverged`; occupancy
//! histograms `occ.rob`, `occ.iq`, `occ.lsq` (one sample per cycle).
//!
//! # Speed
//! `cargo bench -p smpsim-cores --bench ooo` (one context, the functional
//! benchmark's loop, IPC 3.21, [`FixedMem`]): 5.4–7.3 simulated MIPS per
//! host thread (best of 3, across runs) on the project's 2-core host with
//! a load average of 6–13 from parallel builds (target ≥ 2); the same loop
//! on two SMT contexts: 4.8 MIPS (IPC 3.24).
//!
//! # Usage
//! ```
//! use smpsim_cores::ooo::{FixedMem, FixedMemConfig, OooConfig, OooCore};
//! use smpsim_cores::{ArchState, Exit, FlatMemory, GuestMemory};
//! let mut mem = FlatMemory::new();
//! mem.map(0x1000, 0x1000);
//! // mov eax, 5; add eax, 7; hlt
//! mem.write(0x1000, &[0xb8, 5, 0, 0, 0, 0x83, 0xc0, 7, 0xf4]).unwrap();
//! let mut core = OooCore::new(OooConfig::default()).unwrap();
//! *core.state_mut(0) = ArchState { rip: 0x1000, ..ArchState::default() };
//! core.resume(0);
//! let mut port = FixedMem::new(FixedMemConfig::default());
//! core.run_until_stopped(&mut mem, &mut port, 10_000);
//! assert_eq!(core.take_exit(0), Some(Exit::Halt));
//! assert_eq!(core.state(0).gpr[0], 12);
//! assert_eq!(core.retired(0), 3);
//! ```

pub mod bpred;
pub mod config;
mod fetch;
mod pipeline;
pub mod port;
mod ring;
mod stats;
pub mod uopinfo;

pub use config::{BpredConfig, FetchPolicy, LatencyConfig, OooConfig, UnitsConfig};
pub use port::{AccessRec, FixedMem, FixedMemConfig, MemPort, PortAccess, Retiring, Verdict};

use crate::arch::ArchState;
use crate::cache::{AddressSpaceId, TransCache};
use crate::cpuid::CpuidModel;
use crate::func::{Exit, FuncCore};
use crate::mem::GuestMemory;
use bpred::{Bpred, Checkpoint, DirPred};
use serde::{Deserialize, Serialize};
use smpsim_engine::{Stats, StatsBuilder};
use stats::Ids;
use std::collections::VecDeque;
use uopinfo::Class;

/// Everything one cycle needs from outside the core: the data port and the
/// memory the fetch-time oracle executes against, in one object (the
/// whole machine serves both from the core's private hierarchy).
pub trait Env: MemPort + GuestMemory {
    /// The oracle of context `ctx` is about to decode or execute an
    /// instruction; `tag` numbers the oracle's steps of that context (from
    /// 1, increasing), and [`Retiring::tag`] names the
    /// step when its instruction retires. The default ignores it.
    fn select(&mut self, ctx: usize, tag: u64) {
        let _ = (ctx, tag);
    }
}

/// A separate oracle memory and port as one [`Env`] (what
/// [`OooCore::cycle`] uses).
struct Pair<'a> {
    mem: &'a mut dyn GuestMemory,
    port: &'a mut dyn MemPort,
}

impl MemPort for Pair<'_> {
    fn load(&mut self, now: u64, ctx: usize, addr: u64, size: u8) -> PortAccess {
        self.port.load(now, ctx, addr, size)
    }
    fn store(&mut self, now: u64, ctx: usize, addr: u64, size: u8, value: u64) -> bool {
        self.port.store(now, ctx, addr, size, value)
    }
    fn take_completions(&mut self, out: &mut Vec<(u32, u64)>) {
        self.port.take_completions(out);
    }
    fn stores_drained(&self, ctx: usize) -> bool {
        self.port.stores_drained(ctx)
    }
    fn fetch(&mut self, now: u64, ctx: usize, addr: u64) -> PortAccess {
        self.port.fetch(now, ctx, addr)
    }
    fn store_address(&mut self, now: u64, ctx: usize, addr: u64) {
        self.port.store_address(now, ctx, addr);
    }
    fn retire(&mut self, now: u64, ctx: usize, r: &Retiring<'_>) -> Verdict {
        self.port.retire(now, ctx, r)
    }
}

impl GuestMemory for Pair<'_> {
    fn read(&mut self, addr: u64, buf: &mut [u8]) -> Result<(), crate::mem::MemStop> {
        self.mem.read(addr, buf)
    }
    fn write(&mut self, addr: u64, data: &[u8]) -> Result<(), crate::mem::MemStop> {
        self.mem.write(addr, data)
    }
    fn load(&mut self, addr: u64, size: u8) -> Result<u64, crate::mem::MemStop> {
        self.mem.load(addr, size)
    }
    fn store(&mut self, addr: u64, size: u8, value: u64) -> Result<(), crate::mem::MemStop> {
        self.mem.store(addr, size, value)
    }
    fn fence(&mut self) -> Result<(), crate::mem::MemStop> {
        self.mem.fence()
    }
}

impl Env for Pair<'_> {}

/// A configuration the core cannot be built with.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("invalid out-of-order core configuration: {0}")]
pub struct ConfigError(pub String);

/// Most memory accesses of one instruction whose addresses are tracked.
const MAX_MEM: usize = 6;

/// One memory access seen by the oracle.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
struct MemRec {
    addr: u64,
    size: u8,
    write: bool,
    value: u64,
}

/// Kind of control transfer.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
enum BrKind {
    #[default]
    None,
    Cond,
    Jump,
    Call,
    Ret,
    Indirect,
    Rep,
}

/// One fetched instruction.
#[derive(Clone, Debug, Serialize, Deserialize)]
struct InsnRec {
    seq: u64,
    rip: u64,
    /// Fall-through address.
    ft: u64,
    /// Actual next RIP (correct path) or predicted (wrong path).
    next_rip: u64,
    wrong: bool,
    /// The oracle's exit here (rare: boxed to keep records small).
    exit: Option<Box<Exit>>,
    mem: [MemRec; MAX_MEM],
    nmem: u8,
    kind: BrKind,
    pred: Option<DirPred>,
    ckpt: Checkpoint,
    mispredicted: bool,
    /// The oracle step that produced it ([`Env::select`]); 0 on the wrong path.
    tag: u64,
}

/// A uop in flight (the slab entry).
#[derive(Clone, Copy, Debug, Serialize, Deserialize)]
struct Slot {
    /// 0 = free.
    seq: u64,
    insn: u64,
    ctx: u8,
    class: Class,
    lat: u64,
    srcs: [u64; 5],
    dsts: [u8; 4],
    /// Cycle the result is available (`u64::MAX` until known).
    done: u64,
    issued: bool,
    in_iq: bool,
    fetched_at: u64,
    ld: (u64, u8),
    st: (u64, u8, u64),
    fwd_from: u64,
    /// Guest address of the uop's instruction.
    rip: u64,
    /// Store data: register before rename, producer tag after (0 = none).
    data: u64,
    last: bool,
}

const FREE: Slot = Slot {
    seq: 0,
    insn: 0,
    ctx: 0,
    class: Class::None,
    lat: 0,
    srcs: [0; 5],
    dsts: [uopinfo::NONE_REG; 4],
    done: u64::MAX,
    issued: false,
    in_iq: false,
    fetched_at: 0,
    ld: (0, 0),
    st: (0, 0, 0),
    fwd_from: 0,
    rip: 0,
    data: 0,
    last: false,
};

/// One hardware context.
#[derive(Debug, Serialize, Deserialize)]
struct Context {
    func: FuncCore,
    state: ArchState,
    running: bool,
    exit: Option<Exit>,
    stop_req: bool,
    oracle_blocked: bool,
    wrong_path: bool,
    fetch_rip: u64,
    fetch_stall_until: u64,
    /// Line the front end last fetched from (`u64::MAX`: none).
    fetch_line: u64,
    /// I-fetch in flight: (port id, line).
    ifetch_wait: Option<(u32, u64)>,
    /// Fetch waits for the I-side until this cycle.
    icache_ready: u64,
    replay: VecDeque<InsnRec>,
    insns: VecDeque<InsnRec>,
    fq: ring::Ring,
    rob: ring::Ring,
    lq: ring::Ring,
    sq: ring::Ring,
    iq_count: usize,
    regs: usize,
    /// Dispatched fences not yet issued (younger loads wait).
    fences: Vec<u64>,
    /// Load-alias predictor: RIPs of loads that violated (direct-mapped).
    alias: Vec<u64>,
    rat: Vec<u64>,
    bp: Bpred,
    redirect: Option<u64>,
    asid: AddressSpaceId,
    retired: u64,
    /// Oracle steps since the last resync.
    steps: u64,
}

impl Context {
    /// Whether the load at `rip` is predicted to alias an older store.
    fn alias_predicted(&self, rip: u64) -> bool {
        let n = self.alias.len() as u64;
        n != 0 && self.alias[(rip % n) as usize] == rip
    }

    /// Remembers that the load at `rip` violated memory order.
    fn alias_learn(&mut self, rip: u64) {
        let n = self.alias.len() as u64;
        if n != 0 {
            self.alias[(rip % n) as usize] = rip;
        }
    }

    /// Forgets the front end's I-side state (after a redirect).
    fn reset_ifetch(&mut self, now: u64) {
        self.fetch_line = u64::MAX;
        self.ifetch_wait = None;
        self.icache_ready = now;
    }
}

/// An out-of-order core with 1–8 SMT contexts.
///
/// Serializable for checkpoints: every pipeline structure (slab, ROB, IQ,
/// LSQ, rename maps, predictors, fetch state, occupancy counts, stats) is
/// saved; the translation caches (the front end's and each oracle's) save
/// only their counters and retranslate on demand, and the decode scratch
/// buffer starts empty. A restored core continues cycle for cycle as the
/// saved one would.
#[derive(Debug, Serialize, Deserialize)]
pub struct OooCore {
    cfg: OooConfig,
    now: u64,
    seq: u64,
    insn_seq: u64,
    slab: Vec<Slot>,
    mask: u64,
    ctxs: Vec<Context>,
    cache: TransCache,
    /// The issue queue in dispatch order.
    iq: Vec<pipeline::IqEntry>,
    lq_total: usize,
    sq_total: usize,
    waiting: Vec<(u32, u64)>,
    div_busy: Vec<u64>,
    /// When each FP divider is free again.
    fp_div_busy: Vec<u64>,
    rr: usize,
    stats: Stats,
    ids: Ids,
    completions: Vec<(u32, u64)>,
    /// The timing view of each front-end translation, by its index in
    /// `cache` (rebuilt with the cache after a restore).
    #[serde(skip)]
    decoded: Vec<fetch::Decoded>,
    /// Latency override per op (`u64::MAX`: the class latency).
    op_lat: Vec<u64>,
    /// Occupancy samples not yet in the histograms: cycles seen at each
    /// ROB, IQ and LSQ occupancy.
    occ: [Vec<u64>; 3],
    /// Issue-queue positions that issued this cycle.
    issued_at: Vec<usize>,
}

impl OooCore {
    /// A core with every context stopped at RIP 0 (set state, then
    /// [`Self::resume`]).
    pub fn new(cfg: OooConfig) -> Result<Self, ConfigError> {
        Self::with_cpuid(cfg, CpuidModel::default())
    }

    /// As [`Self::new`] with a CPUID model.
    pub fn with_cpuid(cfg: OooConfig, cpuid: CpuidModel) -> Result<Self, ConfigError> {
        validate(&cfg)?;
        let live = cfg.contexts * (cfg.rob_per_context + cfg.fetch_buffer + cfg.fetch_width * 64);
        let cap = (2 * live + 1024).next_power_of_two();
        let ctxs = (0..cfg.contexts)
            .map(|_| Context {
                func: FuncCore::new(cpuid.clone()),
                state: ArchState::default(),
                running: false,
                exit: None,
                stop_req: false,
                oracle_blocked: false,
                wrong_path: false,
                fetch_rip: 0,
                fetch_stall_until: 0,
                fetch_line: u64::MAX,
                ifetch_wait: None,
                icache_ready: 0,
                replay: VecDeque::new(),
                insns: VecDeque::new(),
                fq: ring::Ring::new(),
                rob: ring::Ring::new(),
                lq: ring::Ring::new(),
                sq: ring::Ring::new(),
                iq_count: 0,
                regs: 0,
                fences: Vec::new(),
                alias: vec![u64::MAX; cfg.alias_predictor],
                rat: vec![0; crate::uop::NUM_ALL_REGS],
                bp: Bpred::new(&cfg.bpred),
                redirect: None,
                asid: AddressSpaceId(0),
                retired: 0,
                steps: 0,
            })
            .collect();
        let mut op_lat = vec![u64::MAX; uopinfo::ALL_OPS.len()];
        for (name, &lat) in &cfg.latency.per_op {
            let op = uopinfo::ALL_OPS
                .iter()
                .find(|&&o| uopinfo::op_name(o) == *name)
                .ok_or_else(|| ConfigError(format!("latency.per_op: no uop named `{name}`")))?;
            op_lat[*op as usize] = lat;
        }
        let mut b = StatsBuilder::new();
        let ids = Ids::declare(&mut b);
        let occ = [
            vec![0; cfg.contexts * cfg.rob_per_context + 1],
            vec![0; cfg.iq_size + 1],
            vec![0; cfg.lq_size + cfg.sq_size + 1],
        ];
        Ok(Self {
            div_busy: vec![0; cfg.units.div.max(1)],
            fp_div_busy: vec![0; cfg.units.fp_div.max(1)],
            cfg,
            now: 0,
            seq: 1,
            insn_seq: 1,
            slab: vec![FREE; cap],
            mask: cap as u64 - 1,
            ctxs,
            cache: TransCache::new(),
            iq: Vec::new(),
            lq_total: 0,
            sq_total: 0,
            waiting: Vec::new(),
            rr: 0,
            stats: b.build(),
            ids,
            completions: Vec::new(),
            decoded: Vec::new(),
            op_lat,
            occ,
            issued_at: Vec::new(),
        })
    }

    /// The configuration.
    pub fn config(&self) -> &OooConfig {
        &self.cfg
    }

    /// Current cycle.
    pub fn now(&self) -> u64 {
        self.now
    }

    /// Sets the current cycle (only forward; the machine's clock).
    pub fn set_now(&mut self, now: u64) {
        self.now = self.now.max(now);
    }

    /// Architectural state of context `c` (exact at instruction boundaries
    /// only while it is stopped; while running it is the oracle's state,
    /// ahead of commit).
    pub fn state(&self, c: usize) -> &ArchState {
        &self.ctxs[c].state
    }

    /// Mutable state of a stopped context (e.g. to deliver an upcall).
    ///
    /// # Panics
    /// If the context is running (its pipeline holds instructions).
    pub fn state_mut(&mut self, c: usize) -> &mut ArchState {
        assert!(
            !self.ctxs[c].running,
            "state_mut on running context {c}: request_stop and wait for its exit first"
        );
        &mut self.ctxs[c].state
    }

    /// Sets the address space translations of context `c` are looked up in.
    pub fn set_address_space(&mut self, c: usize, asid: AddressSpaceId) {
        self.ctxs[c].asid = asid;
        self.ctxs[c].func.set_address_space(asid);
    }

    /// Whether context `c` is running (not stopped on an exit).
    pub fn is_running(&self, c: usize) -> bool {
        self.ctxs[c].running
    }

    /// Starts (or restarts after an exit) context `c` at its state's RIP.
    pub fn resume(&mut self, c: usize) {
        let now = self.now;
        let x = &mut self.ctxs[c];
        debug_assert!(x.insns.is_empty() && x.replay.is_empty());
        x.running = true;
        x.exit = None;
        x.stop_req = false;
        x.oracle_blocked = false;
        x.wrong_path = false;
        x.redirect = None;
        x.fetch_stall_until = now;
        x.reset_ifetch(now);
    }

    /// Throws away every in-flight instruction of context `c` and restarts
    /// its oracle from `state` (the architectural truth, e.g. after an
    /// event was delivered or the model was switched); fetch resumes at
    /// cycle `at`. The context runs afterwards.
    pub fn resync(&mut self, c: usize, state: &ArchState, at: u64) {
        self.drop_in_flight(c);
        let now = self.now;
        let x = &mut self.ctxs[c];
        x.state = state.clone();
        x.running = true;
        x.fetch_stall_until = at.max(now);
    }

    /// Throws away every in-flight instruction of context `c` and stops it
    /// (no exit is reported).
    pub fn halt(&mut self, c: usize) {
        self.drop_in_flight(c);
        self.ctxs[c].running = false;
    }

    /// Whether any context is running.
    pub fn any_running(&self) -> bool {
        self.ctxs.iter().any(|x| x.running)
    }

    fn drop_in_flight(&mut self, c: usize) {
        self.squash_from(c, 0, false);
        let now = self.now;
        let x = &mut self.ctxs[c];
        x.replay.clear();
        x.exit = None;
        x.stop_req = false;
        x.oracle_blocked = false;
        x.wrong_path = false;
        x.redirect = None;
        x.fences.clear();
        x.fetch_stall_until = now;
        x.reset_ifetch(now);
    }

    /// Asks context `c` to stop at the next instruction boundary: no new
    /// instruction is fetched, in-flight ones commit, then the context
    /// stops with [`Exit::InsnLimit`] (unless an older exit comes first).
    pub fn request_stop(&mut self, c: usize) {
        self.ctxs[c].stop_req = true;
    }

    /// The exit context `c` stopped with, if any (taken once).
    pub fn take_exit(&mut self, c: usize) -> Option<Exit> {
        self.ctxs[c].exit.take()
    }

    /// Instructions committed by context `c`.
    pub fn retired(&self, c: usize) -> u64 {
        self.ctxs[c].retired
    }

    /// Drops translations of the page holding `vaddr` (code written by
    /// someone else).
    pub fn invalidate_code(&mut self, vaddr: u64) {
        self.cache.invalidate_page(vaddr / crate::mem::PAGE_SIZE);
        for x in &mut self.ctxs {
            x.func.invalidate_code(vaddr);
        }
    }

    /// Statistics (names under `ooo.`); occupancy histograms as of the
    /// last [`Self::flush_stats`] (the run helpers flush when they return).
    pub fn stats(&self) -> &Stats {
        &self.stats
    }

    /// Committed instructions per cycle so far (all contexts).
    pub fn ipc(&self) -> f64 {
        let c = self.stats.get(self.ids.cycles);
        if c == 0 {
            return 0.0;
        }
        self.stats.get(self.ids.insns) as f64 / c as f64
    }

    /// Simulates one cycle.
    pub fn cycle(&mut self, mem: &mut dyn GuestMemory, port: &mut dyn MemPort) {
        self.cycle_in(&mut Pair { mem, port });
    }

    /// Simulates one cycle against one [`Env`].
    pub fn cycle_in(&mut self, env: &mut dyn Env) {
        self.collect_completions(env);
        self.resolve_branches();
        self.commit(env);
        self.issue(env);
        self.dispatch();
        self.fetch(env);
        self.record_occupancy();
        self.stats.inc(self.ids.cycles);
        self.now += 1;
        self.rr = (self.rr + 1) % self.ctxs.len();
    }

    /// Runs cycles until no context is running or `max_cycles` passed;
    /// returns the cycles run.
    pub fn run_until_stopped(
        &mut self,
        mem: &mut dyn GuestMemory,
        port: &mut dyn MemPort,
        max_cycles: u64,
    ) -> u64 {
        let start = self.now;
        while self.now - start < max_cycles && self.ctxs.iter().any(|x| x.running) {
            self.cycle(mem, port);
        }
        self.flush_stats();
        self.now - start
    }

    /// Runs cycles up to (not including) cycle `end`, e.g. to the end of
    /// an engine epoch. While no context is running the clock jumps to
    /// `end` without simulating (idle cycles are not counted in
    /// `ooo.cycles`).
    pub fn run_to(&mut self, mem: &mut dyn GuestMemory, port: &mut dyn MemPort, end: u64) {
        while self.now < end {
            if !self.ctxs.iter().any(|x| x.running) {
                self.now = end;
                break;
            }
            self.cycle(mem, port);
        }
        self.flush_stats();
    }

    /// Samples the occupancies once per cycle (counted here, moved into
    /// the histograms by [`Self::flush_stats`]).
    fn record_occupancy(&mut self) {
        let rob: usize = self.ctxs.iter().map(|x| x.rob.len()).sum();
        let now = [rob, self.iq.len(), self.lq_total + self.sq_total];
        for (counts, v) in self.occ.iter_mut().zip(now) {
            if let Some(n) = counts.get_mut(v) {
                *n += 1;
            }
        }
    }

    /// Brings the occupancy histograms up to date. The run helpers call it
    /// when they return; a driver that calls [`Self::cycle_in`] itself calls
    /// it before reading [`Self::stats`].
    pub fn flush_stats(&mut self) {
        let ids = [self.ids.occ_rob, self.ids.occ_iq, self.ids.occ_lsq];
        for (counts, id) in self.occ.iter_mut().zip(ids) {
            for (v, n) in counts.iter_mut().enumerate() {
                if *n > 0 {
                    self.stats.record_n(id, v as u64, *n);
                    *n = 0;
                }
            }
        }
    }

    fn slot(&self, seq: u64) -> &Slot {
        &self.slab[(seq & self.mask) as usize]
    }

    fn slot_mut(&mut self, seq: u64) -> &mut Slot {
        &mut self.slab[(seq & self.mask) as usize]
    }

    /// Cycle the value produced by uop `tag` is available (0 if gone).
    fn ready_at(&self, tag: u64) -> u64 {
        if tag == 0 {
            return 0;
        }
        let s = self.slot(tag);
        if s.seq == tag {
            s.done
        } else {
            0
        }
    }
}

fn validate(c: &OooConfig) -> Result<(), ConfigError> {
    let bad = |m: &str| Err(ConfigError(m.to_string()));
    if !(1..=8).contains(&c.contexts) {
        return bad("contexts must be 1..=8");
    }
    let widths = [
        c.fetch_width,
        c.dispatch_width,
        c.issue_width,
        c.commit_width,
    ];
    if widths.contains(&0) || c.fetch_buffer == 0 || c.rob_per_context == 0 {
        return bad("widths, fetch buffer and ROB must be non-zero");
    }
    let parts = if c.static_partition { c.contexts } else { 1 };
    if c.iq_size / parts == 0 || c.lq_size / parts == 0 || c.sq_size / parts == 0 {
        return bad("every context needs at least one IQ, LQ and SQ entry");
    }
    if c.phys_regs <= 32 * c.contexts {
        return Err(ConfigError(format!(
            "phys_regs must exceed 32 per context (committed state): {} for {} contexts, need at least {}",
            c.phys_regs,
            c.contexts,
            32 * c.contexts + 1
        )));
    }
    let u = &c.units;
    if [u.alu, u.mul, u.div, u.load, u.store, u.fp, u.fp_div].contains(&0) {
        return bad("every functional-unit count must be non-zero");
    }
    let b = &c.bpred;
    if b.gshare_bits > 24 || b.bimodal_bits > 24 || b.chooser_bits > 24 || b.history_bits > 63 {
        return bad("predictor tables at most 2^24 entries, history at most 63 bits");
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn core_can_move_to_another_host_thread() {
        fn assert_send<T: Send>() {}
        assert_send::<OooCore>();
    }

    #[test]
    fn invalid_configs_are_refused() {
        for contexts in [0, 9] {
            let cfg = OooConfig {
                contexts,
                ..OooConfig::default()
            };
            assert!(OooCore::new(cfg).is_err(), "{contexts} contexts");
        }
        let cfg = OooConfig {
            contexts: 8,
            ..OooConfig::default()
        };
        assert!(
            OooCore::new(cfg).is_err(),
            "256 registers < 8 × 32 committed"
        );
        assert!(OooCore::new(OooConfig::default()).is_ok());
    }
}
