//! A core's private hierarchy (L1I, L1D, L2) as one coherence agent, with
//! its x86-TSO store buffer: the interface the cores call.
//!
//! # Contract for cores
//! The hierarchy lives inside the core's partition. All calls carry the
//! partition's current time `now` and must come in non-decreasing time.
//! - [`PrivateHierarchy::load`] / [`PrivateHierarchy::fetch`]: 1–16 bytes at
//!   any alignment. [`Access::Done`] gives the value and the cycle it is
//!   ready; [`Access::Pending`] gives a [`ReqId`] whose [`Completion`]
//!   (value included) appears in [`PrivateHierarchy::take_completions`]
//!   after the grant message is handled; [`Access::Stall`] means no MSHR
//!   or way is free — retry after the next message is handled.
//! - [`PrivateHierarchy::store`]: the store retires into the store buffer
//!   (or is refused when full). Stores drain in program order, one per
//!   cycle, each when its line is in M (fetching ownership as needed);
//!   loads forward from the buffer byte by byte (youngest store wins).
//! - Fences: wait until [`PrivateHierarchy::store_buffer_empty`].
//! - SMT: the `*_in` variants take the [`ContextId`] of the hardware
//!   thread (the plain ones mean context 0). Contexts share the caches
//!   and the store buffer's capacity; stores drain in one FIFO (which
//!   keeps each context's program order), a load forwards only from its
//!   own context's stores, and a fence or locked operation waits only for
//!   its own context's stores. A held lock also holds back other
//!   contexts' stores to its lines.
//! - Locked read-modify-write: [`PrivateHierarchy::begin_locked`] drains
//!   the store buffer, obtains every line of the operand in M and pins
//!   it, and yields the old value (now or as a completion);
//!   [`PrivateHierarchy::end_locked`] writes the new value and unpins.
//!   While pinned, invalidations and forwards for those lines wait.
//! - Messages: feed every [`MemMsg`] addressed to the core to
//!   [`PrivateHierarchy::handle_message`]; send what the hierarchy
//!   produced with [`PrivateHierarchy::flush`] before the epoch ends; call
//!   [`PrivateHierarchy::advance`] at [`PrivateHierarchy::next_activity`]
//!   (store-buffer drains).
//!
//! ```
//! use smpsim_engine::{Cycle, PartitionId, StatsBuilder};
//! use smpsim_uncore::memory::{MachineAddr, MachineMemory};
//! use smpsim_uncore::{Access, CoreId, Level, MemMsg, MemSystem, MemSystemConfig};
//! use std::sync::Arc;
//! let mem = Arc::new(MachineMemory::new(1 << 20)?);
//! let sys = MemSystem::new(&MemSystemConfig::default(), 2, mem, PartitionId(0))?;
//! let mut core0 = sys.hierarchy(CoreId(0), StatsBuilder::new());
//! // A store retires into the store buffer; a younger load forwards from it.
//! core0.store(Cycle(10), MachineAddr(0x1000), 8, 42).expect("room");
//! let a = core0.load(Cycle(11), MachineAddr(0x1000), 8);
//! assert!(matches!(a, Access::Done { value: 42, level: Level::StoreBuffer, .. }));
//! // A load of a line the core does not hold misses: a GetS leaves for the
//! // line's home slice after the L2 lookup (the partition sends it with
//! // `flush`; its completion follows the grant).
//! assert!(matches!(core0.load(Cycle(12), MachineAddr(0x2000), 8), Access::Pending(_)));
//! let sent = core0.take_sent();
//! assert!(matches!(sent[..], [(_, _, MemMsg::GetS { .. })]));
//! assert_eq!(core0.next_activity(), Some(Cycle(11)), "the store drains from cycle 11");
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! # Ownership rule
//! Machine memory is read only for lines in a readable state (S, E, M, O
//! and the upgrading SM/OM) and written only in M; every access asserts
//! it (cheap, always on). With `check_ownership` each access and each
//! permission change also goes through the machine-wide
//! [`OwnerTable`].
//!
//! # Prefetchers
//! The L1D and the L2 may each run a prefetcher (`prefetch` in their
//! config); its prefetches are GetS misses with nobody waiting, through
//! the same MSHRs, so the ownership rule and the protocol are unchanged.
//! `private/prefetch.rs` says what each level observes.
//!
//! # Timing
//! An L1 hit is ready `l1.latency` after the access, an L2 hit
//! `l2.latency`; a miss leaves for the home slice `l2.latency` after the
//! access and is ready when the grant arrives. An owner answers a forward
//! `l2.latency` after it arrives.

mod prefetch;
mod state;
mod stats;

pub use state::{L1Line, PLine, PState, WbState};

use crate::attach::Attached;
use crate::cache::{new_policy, Cache};
use crate::config::{CacheConfig, HierarchyConfig, Protocol};
use crate::fabric::{Fabric, Port};
use crate::ids::{ContextId, CoreId, Level};
use crate::interconnect::Node;
use crate::memory::{LineAddr, MachineAddr, MachineMemory, LINE_SIZE};
use crate::msg::{FwdKind, Grant, Held, Kept, MemMsg, MemPayload};
use crate::ownership::{OwnerTable, Perm};
use crate::system::MemSystem;
use prefetch::{PfLevel, Prefetchers};
use smpsim_engine::{Cycle, EpochCtx, Stats, StatsBuilder};
use stats::PrivStatIds;
use std::collections::{BTreeMap, VecDeque};
use std::sync::Arc;

/// A handle on an access that is waiting for a grant.
#[derive(
    Copy, Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, serde::Serialize, serde::Deserialize,
)]
pub struct ReqId(pub u32);

/// Which L1 an access goes through.
#[derive(Copy, Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub enum Stream {
    /// Instruction fetch (L1I).
    Inst,
    /// Data (L1D).
    Data,
}

/// The answer to an access.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub enum Access {
    /// Served now: the value (little-endian, in the low `size` bytes) is
    /// ready at `ready`.
    Done {
        /// Cycle the value can be used.
        ready: Cycle,
        /// The value.
        value: u128,
        /// Where it came from.
        level: Level,
    },
    /// Waiting for a grant; a [`Completion`] with this id will follow.
    Pending(ReqId),
    /// No MSHR or way free now (or a locked operation is already open):
    /// retry after the next message is handled.
    Stall,
}

/// A pending access that finished.
#[derive(Copy, Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Completion {
    /// The access.
    pub id: ReqId,
    /// Cycle the value can be used.
    pub ready: Cycle,
    /// The value.
    pub value: u128,
    /// Where it came from (the slowest part of a line-crossing access).
    pub level: Level,
}

/// One access of machine memory, as recorded by the access log.
#[derive(Copy, Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct LogEntry {
    /// When it happened.
    pub time: Cycle,
    /// A write (store drain or locked write) rather than a read.
    pub write: bool,
    /// First byte.
    pub addr: MachineAddr,
    /// Bytes (1..=16, within one line).
    pub size: u8,
    /// The bytes, little-endian.
    pub value: u128,
}

fn le_value(data: &[u8]) -> u128 {
    let mut b = [0u8; 16];
    b[..data.len()].copy_from_slice(data);
    u128::from_le_bytes(b)
}

/// The store buffer is full: retry after it drains.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub struct StoreBufferFull;

#[derive(Clone, Debug, serde::Serialize, serde::Deserialize)]
struct Op {
    ctx: ContextId,
    stream: Stream,
    start: Cycle,
    addr: u64,
    size: usize,
    bytes: [u8; 16],
    /// Bytes already known (from the store buffer or a served line).
    have: u16,
    parts_left: u8,
    level: Level,
}

#[derive(Clone, Debug, serde::Serialize, serde::Deserialize)]
struct Mshr {
    start: Cycle,
    waiters: Vec<ReqId>,
    /// Sent to the directory (false while an eviction of the line is
    /// still being acknowledged).
    issued: bool,
    want_m: bool,
    /// Sent for this level's prefetcher, and no demand access wants it
    /// yet.
    prefetch: Option<PfLevel>,
}

#[derive(Clone, Copy, Debug, serde::Serialize, serde::Deserialize)]
struct SbEntry {
    ctx: ContextId,
    addr: u64,
    size: usize,
    bytes: [u8; 16],
}

impl SbEntry {
    fn line(&self) -> LineAddr {
        MachineAddr(self.addr).line()
    }
}

#[derive(Clone, Debug, serde::Serialize, serde::Deserialize)]
struct LockState {
    ctx: ContextId,
    id: ReqId,
    addr: u64,
    size: usize,
    held: bool,
}

/// What the ownership checks compare against.
#[derive(Debug, serde::Serialize, serde::Deserialize)]
struct Checker {
    table: Attached<Option<Arc<OwnerTable>>>,
}

/// A core's L1I, L1D and L2 with its store buffer (see the module docs).
#[derive(Debug, serde::Serialize, serde::Deserialize)]
pub struct PrivateHierarchy {
    core: CoreId,
    protocol: Protocol,
    lat: [u64; 3],
    mshr_limit: usize,
    sb_cap: usize,
    fabric: Attached<Arc<Fabric>>,
    mem: Attached<Arc<MachineMemory>>,
    l1i: Cache<L1Line>,
    l1d: Cache<L1Line>,
    l2: Cache<PLine>,
    mshrs: BTreeMap<LineAddr, Mshr>,
    wb: BTreeMap<LineAddr, WbState>,
    ops: BTreeMap<ReqId, Op>,
    next_id: u32,
    done: Vec<Completion>,
    sb: VecDeque<SbEntry>,
    drain_at: Cycle,
    /// The store buffer or a pending lock could not get an MSHR or a way:
    /// only a message can unblock them.
    blocked: bool,
    lock: Option<LockState>,
    deferred: Vec<MemMsg>,
    port: Port,
    log: Option<Vec<LogEntry>>,
    checker: Checker,
    stats: Stats,
    ids: PrivStatIds,
    pf: Prefetchers,
}

fn new_cache<T: Clone>(
    name: &str,
    c: &CacheConfig,
    seed: u64,
    stats: &mut StatsBuilder,
) -> Cache<T> {
    let (sets, ways) = (c.sets as usize, c.ways as usize);
    let policy = new_policy(c.replacement, sets, ways, seed);
    Cache::new(name, (sets, ways, 1), policy, true, stats)
}

/// Checkpoints: the state serializes without the shared handles (the
/// fabric, machine memory and the owner table); a deserialized hierarchy
/// panics on its first use of one until [`PrivateHierarchy::attach`].
impl PrivateHierarchy {
    /// Re-attaches the shared handles of `sys` after deserializing. `sys`
    /// must be built from the config and core count the hierarchy was
    /// built with; machine memory contents are restored separately. With
    /// `check_ownership`, the permissions of the lines this hierarchy holds
    /// are entered into `sys`'s owner table.
    ///
    /// # Panics
    /// If this hierarchy's core is not one of `sys`'s cores.
    pub fn attach(&mut self, sys: &MemSystem) {
        assert!(
            self.core.0 < sys.cores(),
            "attaching core {} to a memory system of {} cores",
            self.core.0,
            sys.cores()
        );
        self.fabric.attach(Arc::clone(sys.fabric()));
        self.mem.attach(Arc::clone(sys.memory()));
        self.checker.table.attach(sys.owners().cloned());
        self.republish_permissions();
    }

    /// Tells a (fresh) owner table the permission of every line the L2
    /// holds: the table is machine-wide checker state, rebuilt from the
    /// restored hierarchies rather than saved.
    fn republish_permissions(&self) {
        let tags = self.l2.tags();
        for set in 0..tags.sets() {
            for way in 0..tags.ways() {
                if let Some(e) = tags.slot(set, way) {
                    self.perm(e.line, e.state.st.perm());
                }
            }
        }
    }
}

impl PrivateHierarchy {
    /// The hierarchy of `core`. `stats` may already hold the core's own
    /// statistics; the hierarchy adds its own and owns the result (reach
    /// it with [`PrivateHierarchy::stats_mut`]). `table` enables the
    /// machine-wide ownership checks.
    pub fn new(
        core: CoreId,
        cfg: &HierarchyConfig,
        fabric: Arc<Fabric>,
        mem: Arc<MachineMemory>,
        table: Option<Arc<OwnerTable>>,
        mut stats: StatsBuilder,
    ) -> Self {
        let seed = cfg.seed ^ u64::from(core.0).wrapping_mul(0x1000_0001);
        let l1i = new_cache("l1i", &cfg.l1i, seed, &mut stats);
        let l1d = new_cache("l1d", &cfg.l1d, seed + 1, &mut stats);
        let l2 = new_cache("l2", &cfg.l2, seed + 2, &mut stats);
        let ids = PrivStatIds::declare(&mut stats);
        let pf = Prefetchers::new(cfg, &mut stats);
        let mshr_limit = cfg.l2.mshrs.min(cfg.l1d.mshrs.max(cfg.l1i.mshrs)) as usize;
        PrivateHierarchy {
            core,
            protocol: cfg.protocol,
            lat: [cfg.l1i.latency, cfg.l1d.latency, cfg.l2.latency],
            mshr_limit,
            sb_cap: cfg.store_buffer as usize,
            port: Port::new(&fabric, Node::Core(core.0)),
            fabric: Attached::new(fabric),
            mem: Attached::new(mem),
            l1i,
            l1d,
            l2,
            mshrs: BTreeMap::new(),
            wb: BTreeMap::new(),
            ops: BTreeMap::new(),
            next_id: 0,
            done: Vec::new(),
            sb: VecDeque::new(),
            drain_at: Cycle::ZERO,
            blocked: false,
            lock: None,
            deferred: Vec::new(),
            log: None,
            checker: Checker {
                table: Attached::new(table),
            },
            stats: stats.build(),
            ids,
            pf,
        }
    }

    /// The core this hierarchy belongs to.
    pub fn core(&self) -> CoreId {
        self.core
    }

    /// Statistics (the core's own included).
    pub fn stats(&self) -> &Stats {
        &self.stats
    }

    /// Statistics, for the core's own counters.
    pub fn stats_mut(&mut self) -> &mut Stats {
        &mut self.stats
    }

    /// The L2 state of a line, if present.
    pub fn state(&self, line: LineAddr) -> Option<PState> {
        self.l2.probe(line).map(|e| e.st)
    }

    /// The eviction-buffer state of a line, if it is being evicted.
    pub fn wb_state(&self, line: LineAddr) -> Option<WbState> {
        self.wb.get(&line).copied()
    }

    /// Whether an L1 holds the line.
    pub fn in_l1(&self, stream: Stream, line: LineAddr) -> bool {
        match stream {
            Stream::Inst => self.l1i.probe(line).is_some(),
            Stream::Data => self.l1d.probe(line).is_some(),
        }
    }

    /// Whether every retired store has reached memory.
    pub fn store_buffer_empty(&self) -> bool {
        self.sb.is_empty()
    }

    /// Whether every store context `ctx` retired has reached memory (what
    /// a fence of that context waits for).
    pub fn store_buffer_empty_in(&self, ctx: ContextId) -> bool {
        !self.sb.iter().any(|e| e.ctx == ctx)
    }

    /// Stores waiting in the store buffer.
    pub fn store_buffer_len(&self) -> usize {
        self.sb.len()
    }

    /// Outstanding misses.
    pub fn outstanding(&self) -> usize {
        self.mshrs.len()
    }

    /// Whether nothing is outstanding at all (no miss, eviction, pending
    /// access, buffered store or lock).
    pub fn is_quiet(&self) -> bool {
        self.mshrs.is_empty()
            && self.wb.is_empty()
            && self.ops.is_empty()
            && self.sb.is_empty()
            && self.lock.is_none()
    }

    /// The earliest cycle [`PrivateHierarchy::advance`] has work; `None`
    /// when only a message can unblock it.
    pub fn next_activity(&self) -> Option<Cycle> {
        let head = self.sb.front()?;
        if self.blocked {
            return None;
        }
        // A sibling context's held lock pins the head's line: the drain
        // waits for `end_locked` (the core's own step), not for a cycle.
        // Reporting `drain_at` here had the core loop spin at one cycle.
        if self.lock.as_ref().is_some_and(|l| l.held) && self.pinned(head.line()) {
            return None;
        }
        match self.l2.probe(head.line()).map(|e| e.st) {
            Some(PState::IS | PState::IM | PState::SM | PState::OM) => None,
            _ if self.mshrs.contains_key(&head.line()) => None,
            _ => Some(self.drain_at),
        }
    }

    /// Completed pending accesses, in completion order.
    pub fn take_completions(&mut self) -> Vec<Completion> {
        std::mem::take(&mut self.done)
    }

    /// Hands the messages produced so far to the engine.
    pub fn flush<M: MemPayload>(&mut self, ctx: &mut EpochCtx<'_, M>) {
        self.port.flush(ctx);
    }

    /// The messages produced so far as `(destination, arrival, message)`
    /// (tests drive the hierarchy without an engine).
    pub fn take_sent(&mut self) -> Vec<(Node, Cycle, MemMsg)> {
        self.port.take(&self.fabric)
    }

    fn new_id(&mut self) -> ReqId {
        self.next_id = self.next_id.wrapping_add(1);
        ReqId(self.next_id)
    }

    fn home(&self, line: LineAddr) -> Node {
        Node::L3Slice(self.fabric.home(line).0)
    }

    fn send_home(&mut self, now: Cycle, delay: u64, msg: MemMsg) {
        let dst = self.home(msg.line());
        self.port.send(&self.fabric, now, delay, dst, msg);
    }

    fn perm(&self, line: LineAddr, p: Perm) {
        if let Some(t) = &*self.checker.table {
            t.set(self.core, line, p);
        }
    }

    /// Starts (or stops) recording every access of machine memory, in
    /// execution order (for testers).
    pub fn set_access_log(&mut self, on: bool) {
        self.log = on.then(Vec::new);
    }

    /// The accesses recorded since the last call.
    pub fn take_access_log(&mut self) -> Vec<LogEntry> {
        self.log.as_mut().map(std::mem::take).unwrap_or_default()
    }

    fn record(&mut self, now: Cycle, write: bool, addr: u64, data: &[u8]) {
        if let Some(log) = &mut self.log {
            let size = u8::try_from(data.len()).expect("at most 16 bytes");
            log.push(LogEntry {
                time: now,
                write,
                addr: MachineAddr(addr),
                size,
                value: le_value(data),
            });
        }
    }

    // ---- data path: the only places machine memory is touched ----

    /// Writes every buffered store straight to machine memory, oldest
    /// first, and empties the store buffer; returns how many there were.
    /// For a core leaving the coherent models at a barrier for one that
    /// reads machine memory directly (fast-forward): a legal TSO drain at
    /// that instant. The lines keep their coherence states (caches hold
    /// tags, not data), so the ownership rule's checks are not involved.
    pub fn spill_store_buffer(&mut self) -> usize {
        let n = self.sb.len();
        for e in std::mem::take(&mut self.sb) {
            if self
                .mem
                .write(MachineAddr(e.addr), &e.bytes[..e.size])
                .is_err()
            {
                self.stats.inc(self.ids.out_of_range);
            }
        }
        n
    }

    fn read_mem(&mut self, now: Cycle, line: LineAddr, addr: u64, buf: &mut [u8]) {
        let st = self.l2.probe(line).map(|e| e.st);
        assert!(
            st.is_some_and(PState::readable),
            "ownership rule: {} read {line} in state {st:?}",
            self.core
        );
        if let Some(t) = &*self.checker.table {
            t.check(self.core, line, Perm::Read);
        }
        if self.mem.read(MachineAddr(addr), buf).is_err() {
            buf.fill(0);
            self.stats.inc(self.ids.out_of_range);
        }
        self.record(now, false, addr, buf);
    }

    fn write_mem(&mut self, now: Cycle, line: LineAddr, addr: u64, data: &[u8]) {
        let st = self.l2.probe(line).map(|e| e.st);
        assert_eq!(
            st,
            Some(PState::M),
            "ownership rule: {} wrote {line} in state {st:?}",
            self.core
        );
        if let Some(t) = &*self.checker.table {
            t.check(self.core, line, Perm::Write);
        }
        if self.mem.write(MachineAddr(addr), data).is_err() {
            self.stats.inc(self.ids.out_of_range);
        }
        self.record(now, true, addr, data);
    }
}

mod access;
mod protocol;
