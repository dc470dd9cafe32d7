//! Checkpoint tests: every partition's state round-trips through postcard
//! byte for byte, and a restored copy continues exactly like the original.

use crate::config::{CacheConfig, HierarchyConfig, PrefetchConfig, PrefetchKind, ReplacementKind};
use crate::dram::{DramChannel, DramConfig, DramRequest};
use crate::ids::{ChannelId, CoreId, SliceId};
use crate::interconnect::Node;
use crate::memory::{LineAddr, MachineAddr, MachineMemory};
use crate::races::{next_event, Flight, Next};
use crate::rng::SplitMix64;
use crate::{Completion, L3Slice, MemCtrl, MemMsg, MemSystem, MemSystemConfig};
use crate::{PrivateHierarchy, UncorePart};
use serde::{de::DeserializeOwned, Serialize};
use smpsim_engine::{Cycle, PartitionId, StatsBuilder};
use std::sync::Arc;

const MEM_BYTES: u64 = 1 << 20;
/// The lines the traffic touches (a few sets' worth, so evictions happen).
const LINES: u64 = 96;
const BASE_LINE: u64 = 0x400;

fn bytes<T: Serialize>(v: &T) -> Vec<u8> {
    postcard::to_stdvec(v).expect("uncore state serializes")
}

fn back<T: DeserializeOwned>(b: &[u8]) -> T {
    postcard::from_bytes(b).expect("uncore state deserializes")
}

/// Small caches with every replacement policy and both prefetchers, so
/// each kind of state is exercised.
fn config() -> MemSystemConfig {
    let cache = |sets, ways, replacement, kind| CacheConfig {
        sets,
        ways,
        replacement,
        prefetch: PrefetchConfig {
            kind,
            ..PrefetchConfig::default()
        },
        ..CacheConfig::default()
    };
    let mut cfg = MemSystemConfig::default();
    let h: &mut HierarchyConfig = &mut cfg.hierarchy;
    h.l1i = cache(4, 2, ReplacementKind::Lru, PrefetchKind::None);
    h.l1d = cache(4, 2, ReplacementKind::Srrip, PrefetchKind::NextLine);
    h.l2 = cache(8, 4, ReplacementKind::Random, PrefetchKind::Stride);
    h.l3.sets = 16;
    h.l3.ways = 4;
    h.l3.replacement = ReplacementKind::Random;
    h.check_ownership = true;
    cfg
}

/// Cores and slices driven by hand; memory answers a read after a fixed
/// delay (the DRAM channel has its own test below).
struct Machine {
    sys: MemSystem,
    cores: Vec<PrivateHierarchy>,
    slices: Vec<L3Slice>,
    flights: Vec<Flight>,
    seq: u64,
    now: Cycle,
    done: Vec<(usize, Completion)>,
}

impl Machine {
    fn system(cfg: &MemSystemConfig, cores: u32) -> MemSystem {
        let mem = Arc::new(MachineMemory::new(MEM_BYTES).expect("1 MiB"));
        MemSystem::new(cfg, cores, mem, PartitionId(0)).expect("valid config")
    }

    fn new(cores: u32) -> Self {
        let cfg = config();
        let sys = Self::system(&cfg, cores);
        let cores = (0..cores)
            .map(|c| sys.hierarchy(CoreId(c), StatsBuilder::new()))
            .collect();
        let slices = sys.slices();
        Machine {
            sys,
            cores,
            slices,
            flights: Vec::new(),
            seq: 0,
            now: Cycle::ZERO,
            done: Vec::new(),
        }
    }

    /// The partitions' serialized state, in id order.
    fn snapshot(&self) -> Vec<Vec<u8>> {
        let cores = self.cores.iter().map(bytes);
        cores.chain(self.slices.iter().map(bytes)).collect()
    }

    /// A copy rebuilt from `snapshot` over a new memory system holding
    /// the same machine memory contents.
    fn restore(&self, snapshot: &[Vec<u8>]) -> Self {
        let cores = u32::try_from(self.cores.len()).expect("few cores");
        let sys = Self::system(self.sys.config(), cores);
        let mut buf = vec![0u8; usize::try_from(MEM_BYTES).expect("fits")];
        self.sys
            .memory()
            .read(MachineAddr(0), &mut buf)
            .expect("in range");
        sys.memory().write(MachineAddr(0), &buf).expect("in range");
        let (c, s) = snapshot.split_at(self.cores.len());
        let mut cores: Vec<PrivateHierarchy> = c.iter().map(|b| back(b)).collect();
        let mut slices: Vec<L3Slice> = s.iter().map(|b| back(b)).collect();
        cores.iter_mut().for_each(|h| h.attach(&sys));
        slices.iter_mut().for_each(|l| l.attach(&sys));
        Machine {
            sys,
            cores,
            slices,
            flights: self.flights.clone(),
            seq: self.seq,
            now: self.now,
            done: self.done.clone(),
        }
    }

    fn push(&mut self, src: Node, sent: Vec<(Node, Cycle, MemMsg)>) {
        for (dst, at, msg) in sent {
            self.seq += 1;
            let seq = self.seq;
            self.flights.push(Flight {
                src,
                dst,
                at,
                seq,
                msg,
            });
        }
    }

    fn collect(&mut self) {
        for i in 0..self.cores.len() {
            let sent = self.cores[i].take_sent();
            self.push(Node::Core(u32::try_from(i).expect("few")), sent);
            let done = self.cores[i].take_completions();
            self.done.extend(done.into_iter().map(|c| (i, c)));
        }
        for i in 0..self.slices.len() {
            let sent = self.slices[i].take_sent();
            self.push(Node::L3Slice(u32::try_from(i).expect("few")), sent);
        }
    }

    fn dispatch(&mut self, f: Flight) {
        self.now = self.now.max(f.at);
        let now = self.now;
        match f.dst {
            Node::Core(i) => self.cores[i as usize].handle_message(now, f.msg),
            Node::L3Slice(i) => self.slices[i as usize].handle(now, f.msg),
            Node::MemCtrl(_) => {
                if let MemMsg::MemRead { slice, line } = f.msg {
                    let reply = vec![(Node::L3Slice(slice.0), now + 60, MemMsg::MemData { line })];
                    self.push(f.dst, reply);
                }
            }
        }
        self.collect();
    }

    /// Handles the next event (a message or a store-buffer drain) at or
    /// before `until`; false when there is none.
    fn step(&mut self, until: Cycle) -> bool {
        match next_event(&self.flights, &self.cores) {
            Some(Next::Deliver(i)) if self.flights[i].at <= until => {
                let f = self.flights.remove(i);
                self.dispatch(f);
            }
            Some(Next::Advance(t, i)) if t <= until => {
                self.now = self.now.max(t);
                self.cores[i].advance(self.now);
                self.collect();
            }
            _ => return false,
        }
        true
    }

    /// Runs `n` rounds of seeded random loads, stores and fetches, 5
    /// cycles apart, handling everything due in between.
    fn traffic(&mut self, rng: &mut SplitMix64, n: u32) -> Vec<String> {
        let mut issued = Vec::new();
        for _ in 0..n {
            let until = self.now + 5;
            while self.step(until) {}
            self.now = self.now.max(until);
            let c = usize::try_from(rng.next_u64() % self.cores.len() as u64).expect("few");
            let line = LineAddr(BASE_LINE + rng.next_u64() % LINES);
            let addr = MachineAddr(line.base().0 + (rng.next_u64() % 8) * 8);
            let now = self.now;
            let what = match rng.next_u64() % 4 {
                0 => format!(
                    "{:?}",
                    self.cores[c].store(now, addr, 8, u128::from(rng.next_u64()))
                ),
                1 => format!("{:?}", self.cores[c].fetch(now, addr, 4)),
                _ => format!("{:?}", self.cores[c].load(now, addr, 8)),
            };
            issued.push(what);
            self.collect();
        }
        issued
    }

    fn settle(&mut self) {
        for _ in 0..1_000_000 {
            if !self.step(Cycle(u64::MAX)) {
                return;
            }
        }
        panic!("the machine did not settle");
    }
}

#[test]
fn partitions_round_trip_byte_for_byte_mid_traffic() {
    let mut m = Machine::new(3);
    m.traffic(&mut SplitMix64::new(7, 0), 300);
    assert!(!m.flights.is_empty(), "stopped with messages in flight");
    let snap = m.snapshot();
    let copy = m.restore(&snap);
    assert_eq!(
        copy.snapshot(),
        snap,
        "deserialize + serialize changes nothing"
    );
}

#[test]
fn restored_machine_continues_like_the_original() {
    let mut m = Machine::new(3);
    m.traffic(&mut SplitMix64::new(11, 0), 400);
    let outstanding: usize = m.cores.iter().map(PrivateHierarchy::outstanding).sum();
    assert!(
        outstanding > 0 && !m.flights.is_empty(),
        "mid-flight checkpoint"
    );
    let mut copy = m.restore(&m.snapshot());
    let (mut a, mut b) = (SplitMix64::new(12, 0), SplitMix64::new(12, 0));
    assert_eq!(m.traffic(&mut a, 600), copy.traffic(&mut b, 600));
    m.settle();
    copy.settle();
    assert!(m.done.len() > 100, "traffic completed accesses");
    assert_eq!(m.done, copy.done, "same completions, same cycles");
    assert_eq!(m.now, copy.now);
    assert_eq!(m.snapshot(), copy.snapshot(), "same final state and stats");
    assert_eq!(
        copy.sys.ownership_violations(),
        0,
        "owner table rebuilt by attach"
    );
    assert_eq!(m.sys.ownership_violations(), 0);
}

#[test]
#[should_panic(expected = "used before attach")]
fn deserialized_hierarchy_panics_until_attached() {
    let m = Machine::new(1);
    let mut h: PrivateHierarchy = back(&bytes(&m.cores[0]));
    let _ = h.load(Cycle(1), MachineAddr(0x1000), 8);
}

#[test]
fn dram_channel_restored_mid_run_finishes_the_same() {
    let cfg = DramConfig::default();
    let mut chan = DramChannel::new(&cfg, 0, StatsBuilder::new()).expect("default is valid");
    let mut rng = SplitMix64::new(3, 0);
    let feed = |chan: &mut DramChannel, rng: &mut SplitMix64, from: u64| {
        let mut out = Vec::new();
        for i in 0..200u64 {
            let now = Cycle(from + i * 7);
            out.extend(chan.advance(now));
            let line = LineAddr((rng.next_u64() % 4096) * u64::from(cfg.channels));
            let req = DramRequest {
                line,
                write: rng.next_u64().is_multiple_of(3),
                tag: i,
            };
            if chan.can_accept(req.write) {
                chan.enqueue(now, req).expect("room");
            }
        }
        out
    };
    feed(&mut chan, &mut rng, 0);
    let snap = bytes(&chan);
    let mut copy: DramChannel = back(&snap);
    assert_eq!(bytes(&copy), snap);
    let mut rng2 = rng.clone();
    let a = feed(&mut chan, &mut rng, 1400);
    let b = feed(&mut copy, &mut rng2, 1400);
    assert!(!a.is_empty());
    assert_eq!(a, b);
    assert_eq!(chan.advance(Cycle(1 << 20)), copy.advance(Cycle(1 << 20)));
    assert_eq!(bytes(&chan), bytes(&copy));
}

#[test]
fn uncore_parts_round_trip_and_sizes() {
    let cfg = MemSystemConfig::default();
    let sys = Machine::system(&cfg, 2);
    let h = &cfg.hierarchy;
    let core = sys.hierarchy(CoreId(0), StatsBuilder::new());
    let slice = L3Slice::new(
        SliceId(0),
        &h.l3,
        h.protocol,
        h.seed,
        Arc::clone(sys.fabric()),
    );
    let mc = MemCtrl::new(ChannelId(0), &cfg.dram, Arc::clone(sys.fabric())).expect("valid");
    let chan = DramChannel::new(&cfg.dram, 0, StatsBuilder::new()).expect("valid");
    for part in [
        UncorePart::Slice(Box::new(slice)),
        UncorePart::Mem(Box::new(mc)),
    ] {
        let b = bytes(&part);
        let mut again: UncorePart = back(&b);
        again.attach(&sys);
        assert_eq!(bytes(&again), b);
        let what = match part {
            UncorePart::Slice(_) => "L3 slice",
            UncorePart::Mem(_) => "memory controller",
        };
        eprintln!("serialized default {what}: {} bytes", b.len());
    }
    let hb = bytes(&core);
    eprintln!("serialized default hierarchy: {} bytes", hb.len());
    eprintln!(
        "serialized default DRAM channel: {} bytes",
        bytes(&chan).len()
    );
}
