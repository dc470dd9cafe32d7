//! An L3 slice with its part of the inclusive directory: the home of the
//! lines interleaved onto it.
//!
//! # Protocol (home side)
//! A blocking directory: while a transaction on a line is in progress
//! (forward, invalidations or a memory read outstanding, or the line being
//! back-invalidated), every later request for that line — puts included —
//! waits in arrival order and is served when the transaction ends. This
//! is what resolves the classic races:
//! - **PutM crossing a forward**: the put waits; the former owner answers
//!   the forward from its eviction buffer; the put is then stale (the
//!   core is no longer owner) and only acknowledged.
//! - **Simultaneous upgrades**: the first GetM invalidates the other
//!   sharer, whose own GetM waits; when served, that core is no longer a
//!   sharer, so it gets the line as a full write miss.
//! - **Eviction during an upgrade** (back-invalidation of a line a sharer
//!   is upgrading): the sharer acknowledges the invalidation and its GetM
//!   waits; after the eviction it is an L3 miss, served from memory.
//!
//! Directory entry (stable): `owner` (a core in E, M or — MOESI — O),
//! `sharers` (cores in S), `dirty` (the L3 copy is newer than memory). A
//! core in E is an owner: the directory cannot see its silent upgrade to M.
//!
//! # Timing
//! A request is answered (grant, forward, invalidations or memory read)
//! `l3.latency` cycles after it arrives; the grant that ends a transaction
//! leaves as soon as its last answer arrives. Messages travel over the
//! interconnect ([`crate::fabric::Port`]).
//!
//! # Inclusion
//! Every line a private cache holds has an entry here. Allocating an entry
//! in a full set evicts a victim that is not in a transaction; the victim
//! leaves the tag array at once and is back-invalidated from an eviction
//! transaction (its holders invalidated, dirty data written to memory).

mod sharers;

pub use sharers::Sharers;

use crate::attach::Attached;
use crate::cache::{new_policy, Cache};
use crate::config::{L3Config, Protocol};
use crate::fabric::{Fabric, Port};
use crate::ids::{CoreId, Level, SliceId};
use crate::interconnect::Node;
use crate::memory::LineAddr;
use crate::msg::{FwdKind, Grant, Held, Kept, MemMsg, MemPayload};
use crate::system::MemSystem;
use smpsim_engine::{Cycle, EpochCtx, Partition, Stats, StatsBuilder};
use std::collections::{BTreeMap, VecDeque};
use std::sync::Arc;

/// The directory's record of one line held in the L3.
#[derive(Clone, Debug, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct DirLine {
    /// The core holding the line in E, M or O.
    pub owner: Option<CoreId>,
    /// Cores holding it in S.
    pub sharers: Sharers,
    /// The L3 copy is newer than memory.
    pub dirty: bool,
    /// A transaction is in progress (the line may not be evicted).
    pub busy: bool,
}

impl DirLine {
    fn has_holders(&self) -> bool {
        self.owner.is_some() || !self.sharers.is_empty()
    }
}

#[derive(Clone, Debug, serde::Serialize, serde::Deserialize)]
enum TxnKind {
    /// A GetS or GetM being served.
    Get {
        req: CoreId,
        want_m: bool,
        served: Level,
    },
    /// A back-invalidation of a victim no longer in the tag array.
    Evict { entry: DirLine },
}

#[derive(Clone, Debug, serde::Serialize, serde::Deserialize)]
struct Txn {
    kind: TxnKind,
    /// Answers still to come (acks, the forward's answer, memory data).
    pending: u32,
    /// A former owner sent dirty data.
    dirty: bool,
    /// What the forwarded-to owner keeps.
    kept: Kept,
    /// The owner a forward went to.
    fwd_to: Option<CoreId>,
    start: Cycle,
}

#[derive(Clone, Debug, serde::Serialize, serde::Deserialize)]
struct Req {
    from: CoreId,
    msg: MemMsg,
}

smpsim_engine::stat_table! {
    /// A slice's statistics.
    struct SliceStatIds {
        /// Forwards.
        forwards: counter("dir.forwards", "forwards sent to an owner", "events"),
        /// Invalidations for a GetM.
        invs: counter("dir.invalidations", "invalidations sent to sharers for a GetM", "events"),
        /// Back-invalidations.
        back_invs: counter(
            "dir.back_invalidations",
            "invalidations and recalls sent because the L3 evicted a line",
            "events"
        ),
        /// Dirty lines received.
        writebacks: counter(
            "dir.writebacks",
            "dirty lines received from cores (puts and forward answers)",
            "events"
        ),
        /// Memory reads.
        mem_reads: counter("dir.mem_reads", "lines read from memory", "events"),
        /// Memory writes.
        mem_writes: counter("dir.mem_writes", "dirty lines written back to memory", "events"),
        /// Deferred requests.
        deferred: counter("dir.deferred", "requests that waited for a transaction on their line", "events"),
        /// Stalled requests.
        stalled: counter("dir.stalled", "requests that waited for a free way or transaction slot", "events"),
        /// Stale puts.
        stale_puts: counter("dir.stale_puts", "puts from a core no longer holding the line", "events"),
        /// Queue depth at arrival.
        waiting: histogram(
            "dir.waiting",
            "requests queued in the slice (deferred behind a transaction or stalled) at each arrival, counting the new one",
            "requests",
            1 << 16
        ),
        /// Transaction latency.
        txn_latency: histogram(
            "dir.txn_latency",
            "cycles from a request's arrival to the end of its transaction",
            "cycles",
            1 << 20
        ),
    }
}

/// One L3 slice: tag array with directory entries, transactions, queues.
#[derive(Debug, serde::Serialize, serde::Deserialize)]
pub struct L3Slice {
    id: SliceId,
    protocol: Protocol,
    latency: u64,
    mshrs: usize,
    fabric: Attached<Arc<Fabric>>,
    cache: Cache<DirLine>,
    txns: BTreeMap<LineAddr, Txn>,
    deferred: BTreeMap<LineAddr, VecDeque<Req>>,
    stalled: VecDeque<Req>,
    port: Port,
    stats: Stats,
    ids: SliceStatIds,
    now: Cycle,
}

impl L3Slice {
    /// Slice `id` of the L3 `cfg` describes.
    pub fn new(
        id: SliceId,
        cfg: &L3Config,
        protocol: Protocol,
        seed: u64,
        fabric: Arc<Fabric>,
    ) -> Self {
        let mut b = StatsBuilder::new();
        let (sets, ways) = (cfg.sets as usize, cfg.ways as usize);
        let policy = new_policy(cfg.replacement, sets, ways, seed ^ u64::from(id.0) << 32);
        let cache = Cache::new(
            "l3",
            (sets, ways, u64::from(cfg.slices)),
            policy,
            false,
            &mut b,
        );
        let ids = SliceStatIds::declare(&mut b);
        L3Slice {
            id,
            protocol,
            latency: cfg.latency,
            mshrs: cfg.mshrs as usize,
            port: Port::new(&fabric, Node::L3Slice(id.0)),
            fabric: Attached::new(fabric),
            cache,
            txns: BTreeMap::new(),
            deferred: BTreeMap::new(),
            stalled: VecDeque::new(),
            stats: b.build(),
            ids,
            now: Cycle::ZERO,
        }
    }

    /// Re-attaches the shared fabric of `sys` after deserializing (see
    /// [`crate::attach`]); until then the slice panics when it runs. `sys`
    /// must be built from the config the slice was built with.
    pub fn attach(&mut self, sys: &MemSystem) {
        self.fabric.attach(Arc::clone(sys.fabric()));
    }

    /// The directory entry of a line held here.
    pub fn entry(&self, line: LineAddr) -> Option<&DirLine> {
        self.cache.probe(line)
    }

    /// Whether a transaction on `line` is in progress.
    pub fn is_busy(&self, line: LineAddr) -> bool {
        self.txns.contains_key(&line)
    }

    /// Transactions in progress.
    pub fn transactions(&self) -> usize {
        self.txns.len()
    }

    /// The messages produced since the last flush, as
    /// `(destination, arrival, message)` (for tests without an engine).
    pub fn take_sent(&mut self) -> Vec<(Node, Cycle, MemMsg)> {
        self.port.take(&self.fabric)
    }

    /// Statistics.
    pub fn stats(&self) -> &Stats {
        &self.stats
    }

    /// Handles one message arriving at `now`.
    pub fn handle(&mut self, now: Cycle, msg: MemMsg) {
        self.now = now;
        match msg {
            MemMsg::GetS { core, .. } | MemMsg::GetM { core, .. } | MemMsg::Put { core, .. } => {
                self.arrive(Req { from: core, msg });
            }
            MemMsg::InvAck { line, .. } => self.answer(line, false, None),
            MemMsg::FwdAck {
                line, dirty, kept, ..
            } => self.answer(line, dirty, Some(kept)),
            MemMsg::MemData { line } => self.answer(line, false, None),
            other => panic!("{:?} received {other:?}, which only cores receive", self.id),
        }
    }

    fn arrive(&mut self, req: Req) {
        let queued = self.stalled.len() + self.deferred.values().map(VecDeque::len).sum::<usize>();
        self.stats.record(self.ids.waiting, queued as u64 + 1);
        let line = req.msg.line();
        let is_put = matches!(req.msg, MemMsg::Put { .. });
        if self.is_busy(line) {
            self.stats.inc(self.ids.deferred);
            self.deferred.entry(line).or_default().push_back(req);
        } else if !is_put && !self.stalled.is_empty() {
            self.stats.inc(self.ids.stalled);
            self.stalled.push_back(req);
        } else if let Err(req) = self.serve(req) {
            self.stats.inc(self.ids.stalled);
            self.stalled.push_back(req);
        }
    }

    /// Serves a request on a line not in a transaction; gives it back if
    /// no transaction slot or way is free.
    fn serve(&mut self, req: Req) -> Result<(), Req> {
        let (line, want_m) = match req.msg {
            MemMsg::Put { line, held, .. } => {
                self.put(req.from, line, held);
                return Ok(());
            }
            MemMsg::GetS { line, .. } => (line, false),
            MemMsg::GetM { line, .. } => (line, true),
            ref other => unreachable!("only requests are queued, not {other:?}"),
        };
        if self.txns.len() >= self.mshrs {
            return Err(req);
        }
        if self.cache.probe(line).is_some() {
            self.cache.access(line, &mut self.stats);
            self.serve_hit(req.from, line, want_m);
            return Ok(());
        }
        if self.cache.victim_for(line, |d| !d.busy).is_err() {
            return Err(req);
        }
        self.cache.access(line, &mut self.stats);
        self.serve_miss(req.from, line, want_m);
        Ok(())
    }

    fn serve_hit(&mut self, req: CoreId, line: LineAddr, want_m: bool) {
        let d = self.cache.probe_mut(line).expect("hit");
        let owner = d.owner.filter(|&o| o != req);
        assert!(
            want_m || d.owner != Some(req),
            "{line}: owner {req} sent GetS for a line it owns"
        );
        let invs: Vec<CoreId> = if want_m {
            d.sharers.iter().filter(|&s| s != req).collect()
        } else {
            Vec::new()
        };
        if owner.is_none() && invs.is_empty() {
            let grant = self.grant_now(req, line, want_m);
            self.send_core(
                req,
                self.latency,
                MemMsg::Data {
                    line,
                    grant,
                    served: Level::L3,
                },
            );
            return;
        }
        let kind = if want_m { FwdKind::GetM } else { FwdKind::GetS };
        let mut pending = 0;
        for s in &invs {
            self.stats.inc(self.ids.invs);
            self.send_core(*s, self.latency, MemMsg::Inv { line });
            pending += 1;
        }
        if let Some(o) = owner {
            self.stats.inc(self.ids.forwards);
            self.send_core(o, self.latency, MemMsg::Fwd { line, kind });
            pending += 1;
        }
        self.begin(
            line,
            TxnKind::Get {
                req,
                want_m,
                served: Level::Remote,
            },
            pending,
            owner,
        );
    }

    /// Updates the entry for a grant needing no other core; returns it.
    fn grant_now(&mut self, req: CoreId, line: LineAddr, want_m: bool) -> Grant {
        let d = self.cache.probe_mut(line).expect("granted line is present");
        if want_m {
            d.owner = Some(req);
            d.sharers.clear();
            return Grant::M;
        }
        if d.owner.is_none() && d.sharers.is_empty() {
            d.owner = Some(req);
            Grant::E
        } else {
            d.sharers.insert(req);
            Grant::S
        }
    }

    fn serve_miss(&mut self, req: CoreId, line: LineAddr, want_m: bool) {
        let entry = DirLine {
            busy: true,
            ..DirLine::default()
        };
        let victim = self
            .cache
            .insert(line, entry, |d| !d.busy, &mut self.stats)
            .expect("victim_for found one");
        if let Some(v) = victim {
            self.evict(v.line, v.state);
        }
        self.stats.inc(self.ids.mem_reads);
        let ch = self.fabric.channel(line);
        self.send(
            Node::MemCtrl(ch.0),
            self.latency,
            MemMsg::MemRead {
                slice: self.id,
                line,
            },
        );
        self.begin(
            line,
            TxnKind::Get {
                req,
                want_m,
                served: Level::Dram,
            },
            1,
            None,
        );
    }

    /// Evicts a victim: back-invalidates its holders, writes it back.
    fn evict(&mut self, line: LineAddr, entry: DirLine) {
        if !entry.has_holders() {
            if entry.dirty {
                self.write_back(line);
            }
            return;
        }
        let mut pending = 0;
        for s in entry.sharers.iter() {
            self.send_core(s, 0, MemMsg::Inv { line });
            pending += 1;
        }
        if let Some(o) = entry.owner {
            self.send_core(
                o,
                0,
                MemMsg::Fwd {
                    line,
                    kind: FwdKind::GetM,
                },
            );
            pending += 1;
        }
        self.stats.add(self.ids.back_invs, pending);
        let owner = entry.owner;
        self.begin(
            line,
            TxnKind::Evict { entry },
            u32::try_from(pending).expect("few holders"),
            owner,
        );
    }

    fn write_back(&mut self, line: LineAddr) {
        self.stats.inc(self.ids.mem_writes);
        let ch = self.fabric.channel(line);
        self.send(
            Node::MemCtrl(ch.0),
            0,
            MemMsg::MemWrite {
                slice: self.id,
                line,
            },
        );
    }

    fn begin(&mut self, line: LineAddr, kind: TxnKind, pending: u32, fwd_to: Option<CoreId>) {
        if let Some(d) = self.cache.probe_mut(line) {
            d.busy = true;
        }
        let txn = Txn {
            kind,
            pending,
            dirty: false,
            kept: Kept::Nothing,
            fwd_to,
            start: self.now,
        };
        let old = self.txns.insert(line, txn);
        assert!(old.is_none(), "{line}: two transactions at once");
    }

    fn put(&mut self, from: CoreId, line: LineAddr, held: Held) {
        let dirty = matches!(held, Held::M | Held::O);
        match self.cache.probe_mut(line) {
            Some(d) if held == Held::S && d.sharers.contains(from) => d.sharers.remove(from),
            Some(d) if held != Held::S && d.owner == Some(from) => {
                d.owner = None;
                d.dirty |= dirty;
                if dirty {
                    self.stats.inc(self.ids.writebacks);
                }
            }
            _ => self.stats.inc(self.ids.stale_puts),
        }
        self.send_core(from, 0, MemMsg::PutAck { line });
    }

    /// An invalidation ack, a forward's answer or memory data for `line`.
    fn answer(&mut self, line: LineAddr, dirty: bool, kept: Option<Kept>) {
        let txn = self
            .txns
            .get_mut(&line)
            .unwrap_or_else(|| panic!("{line}: answer without a transaction"));
        txn.pending = txn.pending.checked_sub(1).expect("more answers than asked");
        txn.dirty |= dirty;
        if let Some(k) = kept {
            txn.kept = k;
        }
        if dirty {
            self.stats.inc(self.ids.writebacks);
        }
        if txn.pending == 0 {
            let txn = self.txns.remove(&line).expect("present");
            self.stats
                .record(self.ids.txn_latency, self.now - txn.start);
            self.finish(line, txn);
            self.wake(line);
        }
    }

    fn finish(&mut self, line: LineAddr, txn: Txn) {
        match txn.kind {
            TxnKind::Evict { entry } => {
                if entry.dirty || txn.dirty {
                    self.write_back(line);
                }
            }
            TxnKind::Get {
                req,
                want_m,
                served,
            } => {
                let moesi = self.protocol == Protocol::Moesi;
                let d = self
                    .cache
                    .probe_mut(line)
                    .expect("busy lines stay in the L3");
                d.busy = false;
                if let Some(o) = txn.fwd_to {
                    match txn.kept {
                        Kept::Owner if moesi && !want_m => {}
                        Kept::Shared if !want_m => {
                            d.owner = None;
                            d.sharers.insert(o);
                        }
                        _ => d.owner = None,
                    }
                }
                d.dirty |= txn.dirty && d.owner.is_none();
                if want_m {
                    d.sharers.clear();
                }
                let grant = self.grant_now(req, line, want_m);
                self.send_core(
                    req,
                    0,
                    MemMsg::Data {
                        line,
                        grant,
                        served,
                    },
                );
            }
        }
    }

    /// Serves what waited for `line`, then what waited for resources.
    fn wake(&mut self, line: LineAddr) {
        while !self.is_busy(line) {
            let Some(q) = self.deferred.get_mut(&line) else {
                break;
            };
            let Some(req) = q.pop_front() else {
                self.deferred.remove(&line);
                break;
            };
            if let Err(req) = self.serve(req) {
                self.stalled.push_back(req);
            }
        }
        while let Some(req) = self.stalled.pop_front() {
            let l = req.msg.line();
            if self.is_busy(l) {
                self.deferred.entry(l).or_default().push_back(req);
            } else if let Err(req) = self.serve(req) {
                self.stalled.push_front(req);
                break;
            }
        }
    }

    fn send_core(&mut self, c: CoreId, delay: u64, msg: MemMsg) {
        self.send(Node::Core(c.0), delay, msg);
    }

    fn send(&mut self, dst: Node, delay: u64, msg: MemMsg) {
        self.port.send(&self.fabric, self.now, delay, dst, msg);
    }

    /// Runs one epoch as a partition: handles every due message in order.
    pub fn run_epoch<M: MemPayload>(&mut self, ctx: &mut EpochCtx<'_, M>) {
        while let Some(m) = ctx.pop_due() {
            let now = m.time.max(self.now).max(ctx.epoch_start());
            let msg = m
                .payload
                .into_mem()
                .unwrap_or_else(|_| panic!("{:?} got a non-memory message", self.id));
            self.handle(now, msg);
        }
        self.port.flush(ctx);
    }
}

impl Partition for L3Slice {
    type Msg = MemMsg;
    fn run_epoch(&mut self, ctx: &mut EpochCtx<'_, MemMsg>) {
        L3Slice::run_epoch(self, ctx);
    }
    fn next_activity(&self) -> Option<Cycle> {
        None
    }
    fn stats(&self) -> &Stats {
        &self.stats
    }
}
