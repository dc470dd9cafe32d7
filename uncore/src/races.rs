//! Scripted protocol races: the private hierarchies and one L3 slice are
//! driven directly, with messages delivered in a hand-chosen order (the
//! harness stands in for the engine and answers memory reads itself).

use crate::config::{CacheConfig, HierarchyConfig, L3Config, Protocol};
use crate::directory::L3Slice;
use crate::dram::DramConfig;
use crate::fabric::Fabric;
use crate::ids::{CoreId, SliceId};
use crate::interconnect::{InterconnectConfig, Node};
use crate::memory::{LineAddr, MachineAddr, MachineMemory};
use crate::msg::{FwdKind, Held, MemMsg};
use crate::ownership::OwnerTable;
use crate::private::{Access, PState, PrivateHierarchy, WbState};
use smpsim_engine::{Cycle, PartitionId, StatsBuilder};
use std::sync::Arc;

/// A message in flight between hand-driven components.
#[derive(Clone, Debug)]
pub(crate) struct Flight {
    pub(crate) src: Node,
    pub(crate) dst: Node,
    pub(crate) at: Cycle,
    pub(crate) seq: u64,
    pub(crate) msg: MemMsg,
}

/// What a hand-driven machine does next.
pub(crate) enum Next {
    /// Deliver the flight at this index.
    Deliver(usize),
    /// Advance core `.1` (a store-buffer drain) at cycle `.0`.
    Advance(Cycle, usize),
}

/// The next event in time order: the earliest flight by `(time, src,
/// seq)`, unless a core's own activity comes strictly earlier.
pub(crate) fn next_event(flights: &[Flight], cores: &[PrivateHierarchy]) -> Option<Next> {
    let flight = (0..flights.len()).min_by_key(|&i| {
        let f = &flights[i];
        (f.at, f.src, f.seq)
    });
    let own = (0..cores.len())
        .filter_map(|i| cores[i].next_activity().map(|t| (t, i)))
        .min();
    match (flight, own) {
        (Some(i), o) if o.is_none_or(|(t, _)| flights[i].at <= t) => Some(Next::Deliver(i)),
        (_, Some((t, i))) => Some(Next::Advance(t, i)),
        _ => None,
    }
}

struct Harness {
    cores: Vec<PrivateHierarchy>,
    slice: L3Slice,
    table: Arc<OwnerTable>,
    flights: Vec<Flight>,
    seq: u64,
    now: Cycle,
}

fn tiny(sets: u32, ways: u32) -> CacheConfig {
    CacheConfig {
        sets,
        ways,
        latency: 2,
        mshrs: 4,
        ..CacheConfig::default()
    }
}

fn config(protocol: Protocol, l2_ways: u32, l3_ways: u32) -> HierarchyConfig {
    HierarchyConfig {
        protocol,
        l1i: tiny(1, 1),
        l1d: tiny(1, 1),
        l2: tiny(1, l2_ways),
        l3: L3Config {
            slices: 1,
            sets: 1,
            ways: l3_ways,
            latency: 5,
            mshrs: 8,
            ..L3Config::default()
        },
        store_buffer: 4,
        check_ownership: true,
        seed: 1,
        ..HierarchyConfig::default()
    }
}

/// Line `i` (all map to set 0 of every tiny cache).
fn line(i: u64) -> LineAddr {
    LineAddr(0x100 + i)
}

fn addr(i: u64) -> MachineAddr {
    line(i).base()
}

impl Harness {
    fn new(cfg: &HierarchyConfig, cores: u32) -> Self {
        let fabric = Arc::new(
            Fabric::new(
                &InterconnectConfig::default(),
                &DramConfig::default(),
                cores,
                1,
                PartitionId(0),
            )
            .expect("valid"),
        );
        let mem = Arc::new(MachineMemory::new(1 << 20).expect("1 MiB"));
        let table = Arc::new(OwnerTable::new(true));
        let cores = (0..cores)
            .map(|c| {
                PrivateHierarchy::new(
                    CoreId(c),
                    cfg,
                    Arc::clone(&fabric),
                    Arc::clone(&mem),
                    Some(Arc::clone(&table)),
                    StatsBuilder::new(),
                )
            })
            .collect();
        let slice = L3Slice::new(SliceId(0), &cfg.l3, cfg.protocol, 1, Arc::clone(&fabric));
        Harness {
            cores,
            slice,
            table,
            flights: Vec::new(),
            seq: 0,
            now: Cycle(0),
        }
    }

    fn collect(&mut self) {
        for (i, c) in self.cores.iter_mut().enumerate() {
            let src = Node::Core(u32::try_from(i).expect("few cores"));
            for (dst, at, msg) in c.take_sent() {
                self.seq += 1;
                self.flights.push(Flight {
                    src,
                    dst,
                    at,
                    seq: self.seq,
                    msg,
                });
            }
        }
        for (dst, at, msg) in self.slice.take_sent() {
            self.seq += 1;
            self.flights.push(Flight {
                src: Node::L3Slice(0),
                dst,
                at,
                seq: self.seq,
                msg,
            });
        }
    }

    fn dispatch(&mut self, f: Flight) {
        self.now = self.now.max(f.at);
        let now = self.now;
        match f.dst {
            Node::Core(i) => self.cores[i as usize].handle_message(now, f.msg),
            Node::L3Slice(_) => self.slice.handle(now, f.msg),
            Node::MemCtrl(_) => {
                if let MemMsg::MemRead { line, .. } = f.msg {
                    self.seq += 1;
                    let msg = MemMsg::MemData { line };
                    self.flights.push(Flight {
                        src: f.dst,
                        dst: Node::L3Slice(0),
                        at: now + 50,
                        seq: self.seq,
                        msg,
                    });
                }
            }
        }
        self.collect();
    }

    /// Delivers the first message in flight that `pick` accepts.
    fn deliver(&mut self, what: &str, pick: impl Fn(&Flight) -> bool) {
        let i =
            self.flights.iter().position(pick).unwrap_or_else(|| {
                panic!("no message in flight matches {what}: {:?}", self.flights)
            });
        let f = self.flights.remove(i);
        self.dispatch(f);
    }

    /// Runs everything in time order until nothing is left to do.
    fn settle(&mut self) {
        for _ in 0..100_000 {
            match next_event(&self.flights, &self.cores) {
                Some(Next::Deliver(i)) => {
                    let f = self.flights.remove(i);
                    self.dispatch(f);
                }
                Some(Next::Advance(t, i)) => {
                    self.now = self.now.max(t);
                    self.cores[i].advance(self.now);
                    self.collect();
                }
                None => return,
            }
        }
        panic!("the protocol did not settle");
    }

    fn load(&mut self, c: usize, i: u64) -> Access {
        let a = self.cores[c].load(self.now, addr(i), 8);
        self.collect();
        a
    }

    /// Retires a store and lets the store buffer try to drain it.
    fn store(&mut self, c: usize, i: u64, v: u64) {
        self.cores[c]
            .store(self.now, addr(i), 8, u128::from(v))
            .expect("room");
        self.now += 1;
        self.cores[c].advance(self.now);
        self.collect();
    }

    fn state(&self, c: usize, i: u64) -> Option<PState> {
        self.cores[c].state(line(i))
    }

    fn stat(&self, name: &str) -> u64 {
        self.slice.stats().counter_by_name(name).expect("declared")
    }
}

fn is(msg: fn(&MemMsg) -> bool, src: Node, dst: Node) -> impl Fn(&Flight) -> bool {
    move |f| f.src == src && f.dst == dst && msg(&f.msg)
}

const C0: Node = Node::Core(0);
const C1: Node = Node::Core(1);
const C2: Node = Node::Core(2);
const DIR: Node = Node::L3Slice(0);

/// Core `c` takes line `i` in M through a store, everything settled.
fn own_modified(h: &mut Harness, c: usize, i: u64, v: u64) {
    h.store(c, i, v);
    h.settle();
    assert_eq!(h.state(c, i), Some(PState::M));
}

#[test]
fn putm_crossing_fwd_getm_ends_invalid() {
    let mut h = Harness::new(&config(Protocol::Mesi, 1, 4), 2);
    own_modified(&mut h, 0, 0, 11);
    // Core 1 asks for the line; the directory forwards to core 0.
    h.store(1, 0, 22);
    h.deliver(
        "GetM from core 1",
        is(|m| matches!(m, MemMsg::GetM { .. }), C1, DIR),
    );
    // Meanwhile core 0 evicts it (its only L2 way is needed): PutM leaves.
    assert!(matches!(h.load(0, 1), Access::Pending(_)));
    assert_eq!(h.cores[0].wb_state(line(0)), Some(WbState::MI(Held::M)));
    // The put reaches the busy directory first and waits.
    h.deliver(
        "PutM",
        is(|m| matches!(m, MemMsg::Put { held: Held::M, .. }), C0, DIR),
    );
    assert!(h.slice.is_busy(line(0)));
    // The forward finds core 0 evicting: it answers from its eviction buffer.
    h.deliver(
        "FwdGetM",
        is(
            |m| {
                matches!(
                    m,
                    MemMsg::Fwd {
                        kind: FwdKind::GetM,
                        ..
                    }
                )
            },
            DIR,
            C0,
        ),
    );
    assert_eq!(h.cores[0].wb_state(line(0)), Some(WbState::II));
    h.settle();
    assert_eq!(h.state(0, 0), None);
    assert_eq!(
        h.cores[0].wb_state(line(0)),
        None,
        "the stale put was acknowledged"
    );
    assert_eq!(h.state(1, 0), Some(PState::M));
    assert_eq!(
        h.slice.entry(line(0)).and_then(|d| d.owner),
        Some(CoreId(1))
    );
    assert_eq!(h.stat("dir.stale_puts"), 1);
    assert_eq!(h.table.violations(), 0);
}

#[test]
fn simultaneous_upgrades_serialize_and_second_refetches() {
    let mut h = Harness::new(&config(Protocol::Mesi, 2, 4), 2);
    for c in [0, 1] {
        h.load(c, 0);
        h.settle();
        assert!(h.state(c, 0).is_some_and(PState::readable));
    }
    assert_eq!(h.state(0, 0), Some(PState::S));
    // Both upgrade at once.
    h.store(0, 0, 100);
    h.store(1, 0, 200);
    assert_eq!(
        (h.state(0, 0), h.state(1, 0)),
        (Some(PState::SM), Some(PState::SM))
    );
    h.deliver(
        "GetM from core 0",
        is(|m| matches!(m, MemMsg::GetM { .. }), C0, DIR),
    );
    h.deliver(
        "GetM from core 1",
        is(|m| matches!(m, MemMsg::GetM { .. }), C1, DIR),
    );
    // Core 1's copy is invalidated while its own upgrade waits.
    h.deliver(
        "Inv to core 1",
        is(|m| matches!(m, MemMsg::Inv { .. }), DIR, C1),
    );
    assert_eq!(h.state(1, 0), Some(PState::IM));
    h.settle();
    assert_eq!(h.state(0, 0), None, "core 0 gave the line up to core 1");
    assert_eq!(h.state(1, 0), Some(PState::M));
    let mem = h.cores[1].load(h.now, addr(0), 8);
    assert!(
        matches!(mem, Access::Done { value: 200, .. }),
        "core 1's store is last: {mem:?}"
    );
    // One forward when core 1 first read the line from core 0's E copy,
    // one for core 1's write miss after core 0 won the race.
    assert_eq!(h.stat("dir.forwards"), 2);
    assert_eq!(h.table.violations(), 0);
}

#[test]
fn eviction_during_upgrade_becomes_a_write_miss() {
    let mut h = Harness::new(&config(Protocol::Mesi, 2, 1), 3);
    for c in [0, 1] {
        h.load(c, 0);
        h.settle();
    }
    assert_eq!(h.state(0, 0), Some(PState::S));
    // Core 0 upgrades; before the directory sees it, core 2 misses on
    // another line and the one-way L3 evicts line 0 (back-invalidation).
    h.store(0, 0, 7);
    h.load(2, 1);
    h.deliver(
        "GetS from core 2",
        is(|m| matches!(m, MemMsg::GetS { .. }), C2, DIR),
    );
    h.deliver(
        "GetM from core 0",
        is(|m| matches!(m, MemMsg::GetM { .. }), C0, DIR),
    );
    assert!(h.slice.entry(line(0)).is_none(), "line 0 left the L3");
    h.deliver(
        "back-invalidation of core 0",
        is(|m| matches!(m, MemMsg::Inv { .. }), DIR, C0),
    );
    assert_eq!(h.state(0, 0), Some(PState::IM), "the upgrade lost its copy");
    h.settle();
    assert_eq!(h.state(0, 0), Some(PState::M));
    assert_eq!(
        h.state(1, 0),
        None,
        "inclusion: core 1's copy was back-invalidated"
    );
    assert!(h.stat("dir.back_invalidations") >= 2);
    assert!(h.cores[0].store_buffer_empty());
    assert_eq!(h.table.violations(), 0);
}

#[test]
fn l3_eviction_back_invalidates_a_modified_owner_and_writes_back() {
    let mut h = Harness::new(&config(Protocol::Mesi, 2, 1), 2);
    own_modified(&mut h, 0, 0, 5);
    h.load(1, 1);
    h.settle();
    assert_eq!(h.state(0, 0), None, "the owner's copy was recalled");
    assert_eq!(h.stat("dir.mem_writes"), 1, "dirty data went to memory");
    assert_eq!(h.table.violations(), 0);
}

#[test]
fn moesi_forward_to_modified_owner_keeps_it_owned() {
    let mut h = Harness::new(&config(Protocol::Moesi, 2, 4), 2);
    own_modified(&mut h, 0, 0, 9);
    assert!(matches!(h.load(1, 0), Access::Pending(_)));
    h.settle();
    assert_eq!(h.state(0, 0), Some(PState::O));
    assert_eq!(h.state(1, 0), Some(PState::S));
    let d = h.slice.entry(line(0)).expect("present").clone();
    assert_eq!(d.owner, Some(CoreId(0)));
    assert!(d.sharers.contains(CoreId(1)));
    assert!(!d.dirty, "no writeback to the L3 while owned");
    // The owner upgrades again: only the sharer is invalidated.
    h.store(0, 0, 10);
    h.settle();
    assert_eq!((h.state(0, 0), h.state(1, 0)), (Some(PState::M), None));
    assert_eq!(h.stat("dir.writebacks"), 0);
}

#[test]
fn mesi_forward_to_modified_owner_downgrades_and_writes_back() {
    let mut h = Harness::new(&config(Protocol::Mesi, 2, 4), 2);
    own_modified(&mut h, 0, 0, 9);
    h.load(1, 0);
    h.settle();
    assert_eq!(
        (h.state(0, 0), h.state(1, 0)),
        (Some(PState::S), Some(PState::S))
    );
    assert!(h.slice.entry(line(0)).expect("present").dirty);
    assert_eq!(h.stat("dir.writebacks"), 1);
}

#[test]
fn locked_line_defers_forwards_until_unlocked() {
    let mut h = Harness::new(&config(Protocol::Mesi, 2, 4), 2);
    own_modified(&mut h, 0, 0, 1);
    let now = h.now;
    let Access::Done { value: 1, .. } = h.cores[0].begin_locked(now, addr(0), 8) else {
        panic!("M line locks at once")
    };
    h.load(1, 0);
    h.deliver("GetS", is(|m| matches!(m, MemMsg::GetS { .. }), C1, DIR));
    h.deliver("Fwd", is(|m| matches!(m, MemMsg::Fwd { .. }), DIR, C0));
    assert_eq!(
        h.state(0, 0),
        Some(PState::M),
        "the forward waits for the lock"
    );
    let now = h.now;
    h.cores[0].end_locked(now, Some(2));
    h.collect();
    h.settle();
    assert_eq!(h.state(0, 0), Some(PState::S));
    let c = h.cores[1].take_completions();
    assert_eq!(c.len(), 1);
    assert_eq!(c[0].value, 2, "the reader sees the locked write");
}

#[test]
fn store_buffer_forwards_youngest_store_and_drains_in_order() {
    let mut h = Harness::new(&config(Protocol::Mesi, 2, 4), 1);
    let now = h.now;
    h.cores[0].store(now, addr(0), 8, 1).expect("room");
    h.cores[0]
        .store(now, addr(0), 4, 0xAAAA_BBBB)
        .expect("room");
    match h.cores[0].load(now, addr(0), 8) {
        Access::Done { value, level, .. } => {
            assert_eq!(value, 0xAAAA_BBBB, "youngest bytes win, older bytes below");
            assert_eq!(level, crate::ids::Level::StoreBuffer);
        }
        other => panic!("forwarded load: {other:?}"),
    }
    assert!(!h.cores[0].store_buffer_empty());
    h.collect();
    h.settle();
    assert!(h.cores[0].store_buffer_empty());
    let mem_value = h.cores[0].load(h.now, addr(0), 8);
    assert!(matches!(
        mem_value,
        Access::Done {
            value: 0xAAAA_BBBB,
            ..
        }
    ));
}

#[test]
fn line_crossing_load_merges_two_lines() {
    let mut h = Harness::new(&config(Protocol::Mesi, 2, 4), 1);
    let crossing = MachineAddr(addr(1).get() - 4);
    h.cores[0]
        .store(h.now, crossing, 8, 0x1122_3344_5566_7788)
        .expect("room");
    h.settle();
    assert_eq!(
        (h.state(0, 0), h.state(0, 1)),
        (Some(PState::M), Some(PState::M))
    );
    let r = h.cores[0].load(h.now, MachineAddr(addr(1).get() - 2), 4);
    h.collect();
    h.settle();
    let v = match r {
        Access::Done { value, .. } => value,
        Access::Pending(id) => {
            let c = h.cores[0].take_completions();
            assert_eq!(c[0].id, id);
            c[0].value
        }
        Access::Stall => panic!("stall"),
    };
    assert_eq!(v, 0x3344_5566);
}

#[test]
fn smt_contexts_forward_only_their_own_stores() {
    use crate::ids::ContextId;
    let mut h = Harness::new(&config(Protocol::Mesi, 2, 4), 1);
    own_modified(&mut h, 0, 0, 3);
    let now = h.now;
    h.cores[0]
        .store_in(now, ContextId(0), addr(0), 8, 5)
        .expect("room");
    let own = h.cores[0].load_in(now, ContextId(0), addr(0), 8);
    let other = h.cores[0].load_in(now, ContextId(1), addr(0), 8);
    assert!(
        matches!(
            own,
            Access::Done {
                value: 5,
                level: crate::ids::Level::StoreBuffer,
                ..
            }
        ),
        "{own:?}"
    );
    assert!(
        matches!(
            other,
            Access::Done {
                value: 3,
                level: crate::ids::Level::L1,
                ..
            }
        ),
        "{other:?}"
    );
    assert!(!h.cores[0].store_buffer_empty_in(ContextId(0)));
    assert!(h.cores[0].store_buffer_empty_in(ContextId(1)));
}

#[test]
fn smt_lock_ignores_other_contexts_stores_and_holds_them_back() {
    use crate::ids::ContextId;
    let mut h = Harness::new(&config(Protocol::Mesi, 2, 4), 1);
    own_modified(&mut h, 0, 0, 1);
    let now = h.now;
    h.cores[0]
        .store_in(now, ContextId(0), addr(0), 8, 99)
        .expect("room");
    // Context 1's locked op does not wait for context 0's store.
    let got = h.cores[0].begin_locked_in(now, ContextId(1), addr(0), 8);
    assert!(matches!(got, Access::Done { value: 1, .. }), "{got:?}");
    h.cores[0].advance(now + 5);
    assert_eq!(
        h.cores[0].store_buffer_len(),
        1,
        "the store waits for the lock"
    );
    h.cores[0].end_locked(now + 5, Some(7));
    h.cores[0].advance(now + 6);
    assert!(h.cores[0].store_buffer_empty());
    let v = h.cores[0].load(now + 7, addr(0), 8);
    assert!(
        matches!(v, Access::Done { value: 99, .. }),
        "the store follows the locked op: {v:?}"
    );
}

#[test]
fn a_store_held_back_by_a_sibling_lock_reports_no_activity_until_the_lock_ends() {
    use crate::ids::ContextId;
    let mut h = Harness::new(&config(Protocol::Mesi, 2, 4), 1);
    own_modified(&mut h, 0, 0, 1);
    let now = h.now;
    h.cores[0]
        .store_in(now, ContextId(0), addr(0), 8, 99)
        .expect("room");
    let got = h.cores[0].begin_locked_in(now, ContextId(1), addr(0), 8);
    assert!(matches!(got, Access::Done { .. }), "{got:?}");
    // Regression: the drain was reported due at every cycle while the
    // line stayed pinned, so a core asking "when next?" spun in place.
    assert_eq!(h.cores[0].next_activity(), None);
    h.cores[0].end_locked(now + 3, Some(7));
    assert_eq!(h.cores[0].next_activity(), Some(now + 1));
    h.cores[0].advance(now + 4);
    assert!(h.cores[0].store_buffer_empty());
}

#[test]
fn pending_lock_can_be_cancelled_and_the_miss_completes_harmlessly() {
    let mut h = Harness::new(&config(Protocol::Mesi, 2, 4), 2);
    own_modified(&mut h, 1, 0, 4);
    let now = h.now;
    assert!(matches!(
        h.cores[0].begin_locked(now, addr(0), 8),
        Access::Pending(_)
    ));
    assert!(h.cores[0].cancel_locked());
    h.collect();
    h.settle();
    assert_eq!(
        h.state(0, 0),
        Some(PState::M),
        "the write miss still completed"
    );
    assert!(
        h.cores[0].take_completions().is_empty(),
        "no completion for the cancelled lock"
    );
    let now = h.now;
    assert!(matches!(
        h.cores[0].begin_locked(now, addr(0), 8),
        Access::Done { value: 4, .. }
    ));
    h.cores[0].end_locked(now, None);
    assert!(!h.cores[0].cancel_locked());
}
