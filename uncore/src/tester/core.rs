//! A tester core: a random program of loads, fetches, stores and locked RMWs.

use crate::driver::Driven;
use crate::ids::{ContextId, CoreId};
use crate::memory::{MachineAddr, MachineMemory, LINE_SIZE};
use crate::private::{Access, Completion, LogEntry, PrivateHierarchy, ReqId};
use crate::rng::SplitMix64;
use smpsim_engine::Cycle;
use std::collections::BTreeMap;

/// Lines the cores share; the first few are hot.
const LINES: u64 = 48;
const HOT: u64 = 4;
/// Word of each line used as a locked fetch-add counter.
const COUNTER_WORD: u64 = 7;
const BASE: u64 = 0x4_0000;
/// Distance between consecutive test lines: one line more than 64 KiB, so
/// consecutive lines fall in consecutive cache sets but in different DRAM
/// rows (row conflicts happen).
const STRIDE: u64 = (64 << 10) + LINE_SIZE;
/// The distance with prefetchers on: neighbouring lines of one page, so
/// that prefetches race with the other cores' accesses to their lines.
const PACKED_STRIDE: u64 = LINE_SIZE;
/// Bits of a stored value holding the store's sequence number.
const SEQ_BITS: u32 = 40;

/// The shared lines and their words.
#[derive(Clone, Copy, Debug)]
pub struct LineSet {
    stride: u64,
}

impl LineSet {
    /// Machine memory the tester needs, bytes.
    pub const MEMORY: u64 = 4 << 20;

    /// The set: spread over DRAM rows, or `packed` into neighbouring
    /// lines (for prefetchers).
    pub fn new(packed: bool) -> Self {
        LineSet {
            stride: if packed { PACKED_STRIDE } else { STRIDE },
        }
    }

    fn addr(&self, line: u64, word: u64) -> u64 {
        BASE + line * self.stride + word * 8
    }

    fn line_of(&self, addr: u64) -> u64 {
        (addr - BASE) / self.stride
    }

    fn pick_line(rng: &mut SplitMix64) -> u64 {
        if rng.below(2) == 0 {
            rng.below(HOT)
        } else {
            rng.below(LINES)
        }
    }

    fn is_counter(&self, addr: u64) -> bool {
        (addr - BASE) % self.stride == COUNTER_WORD * 8
    }

    /// Counter words whose final value is not the number of fetch-adds.
    pub fn check_counters(&self, mem: &MachineMemory, cores: &[TestCore]) -> u64 {
        (0..LINES)
            .filter(|&l| {
                let want: u64 = cores.iter().map(|c| c.fadds[l as usize]).sum();
                let got = mem
                    .read_u64(MachineAddr(self.addr(l, COUNTER_WORD)))
                    .expect("in memory");
                got != want
            })
            .count() as u64
    }

    /// Data values read that no core ever stored.
    pub fn check_values(&self, cores: &[TestCore]) -> u64 {
        let stores: Vec<u64> = cores.iter().map(|c| c.store_seq).collect();
        let legal = |v: u128| {
            let v = u64::try_from(v).expect("8-byte values");
            let core = (v >> SEQ_BITS) as usize;
            v == 0
                || (core >= 1
                    && core <= stores.len()
                    && (v & ((1 << SEQ_BITS) - 1)) < stores[core - 1])
        };
        cores
            .iter()
            .flat_map(|c| c.log.iter())
            .filter(|e| !self.is_counter(e.addr.get()) && !legal(e.value))
            .count() as u64
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Op {
    Load(u64),
    /// An instruction fetch of a data word (self-modifying code's view).
    Fetch(u64),
    Store(u64, u64),
    FetchAdd(u64),
    Xchg(u64, u64),
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Wait {
    Idle,
    Load(ReqId),
    Lock(ReqId, Op),
    Stalled(Op),
}

/// One tester core: its hierarchy and its random program.
#[derive(Debug)]
pub struct TestCore {
    id: CoreId,
    lines: LineSet,
    hier: PrivateHierarchy,
    rng: SplitMix64,
    ops_left: u64,
    now: Cycle,
    next_issue: Cycle,
    wait: Wait,
    store_seq: u64,
    /// Last value each context stored to each word (forwarding check).
    last_own: BTreeMap<(ContextId, u64), u64>,
    contexts: u8,
    /// Context of the operation in progress.
    ctx: ContextId,
    log: Vec<LogEntry>,
    violations: u64,
    mix: [u64; 3],
    fadds: Vec<u64>,
}

impl TestCore {
    /// Core `id` running `ops` random operations on `lines`, each from one
    /// of `contexts` SMT contexts chosen at random.
    pub fn new(
        id: CoreId,
        mut hier: PrivateHierarchy,
        lines: LineSet,
        contexts: u8,
        ops: u64,
        seed: u64,
    ) -> Self {
        hier.set_access_log(true);
        TestCore {
            id,
            lines,
            hier,
            rng: SplitMix64::new(seed, u64::from(id.0) + 1),
            ops_left: ops,
            now: Cycle::ZERO,
            next_issue: Cycle::ZERO,
            wait: Wait::Idle,
            store_seq: 0,
            last_own: BTreeMap::new(),
            contexts: contexts.max(1),
            ctx: ContextId(0),
            log: Vec::new(),
            violations: 0,
            mix: [0; 3],
            fadds: vec![0; LINES as usize],
        }
    }

    /// The core.
    pub fn id(&self) -> CoreId {
        self.id
    }

    /// Every access of machine memory it made.
    pub fn log(&self) -> &[LogEntry] {
        &self.log
    }

    /// Violations it saw itself (store-buffer forwarding).
    pub fn violations(&self) -> u64 {
        self.violations
    }

    /// Loads, stores and locked operations done.
    pub fn mix(&self) -> [u64; 3] {
        self.mix
    }

    /// The time of the last event it handled.
    pub fn now(&self) -> Cycle {
        self.now
    }

    /// Whether it ran its whole program and drained everything.
    pub fn finished(&self) -> bool {
        self.ops_left == 0 && self.wait == Wait::Idle && self.hier.is_quiet()
    }

    fn collect(&mut self) {
        let entries = self.hier.take_access_log();
        self.log.extend(entries);
    }

    fn think(&mut self) -> u64 {
        self.rng.below(4)
    }

    fn pick(&mut self) -> Op {
        if self.contexts > 1 {
            let c = self.rng.below(u64::from(self.contexts));
            self.ctx = ContextId(u8::try_from(c).expect("below a u8"));
        }
        let line = LineSet::pick_line(&mut self.rng);
        let word = self.rng.below(COUNTER_WORD);
        let addr = self.lines.addr(line, word);
        match self.rng.below(20) {
            0 => Op::Fetch(addr),
            1..=8 => Op::Load(addr),
            9..=16 => Op::Store(addr, self.next_value()),
            17 | 18 => Op::FetchAdd(self.lines.addr(line, COUNTER_WORD)),
            _ => Op::Xchg(addr, self.next_value()),
        }
    }

    fn next_value(&mut self) -> u64 {
        let v = (u64::from(self.id.0 + 1) << SEQ_BITS) | self.store_seq;
        self.store_seq += 1;
        v
    }

    fn start(&mut self, op: Op) {
        let now = self.now;
        match op {
            Op::Load(a) => match self.hier.load_in(now, self.ctx, MachineAddr(a), 8) {
                Access::Done {
                    ready,
                    value,
                    level,
                } => {
                    self.loaded(a, value, level);
                    self.next_issue = ready + self.think();
                }
                Access::Pending(id) => self.wait = Wait::Load(id),
                Access::Stall => self.wait = Wait::Stalled(op),
            },
            Op::Fetch(a) => match self.hier.fetch(now, MachineAddr(a), 8) {
                Access::Done { ready, .. } => {
                    self.mix[0] += 1;
                    self.next_issue = ready + self.think();
                }
                Access::Pending(id) => self.wait = Wait::Load(id),
                Access::Stall => self.wait = Wait::Stalled(op),
            },
            Op::Store(a, v) => {
                match self
                    .hier
                    .store_in(now, self.ctx, MachineAddr(a), 8, u128::from(v))
                {
                    Ok(()) => {
                        self.mix[1] += 1;
                        self.last_own.insert((self.ctx, a), v);
                        self.next_issue = now + 1 + self.think();
                    }
                    Err(_) => self.wait = Wait::Stalled(op),
                }
            }
            Op::FetchAdd(a) | Op::Xchg(a, _) => {
                match self.hier.begin_locked_in(now, self.ctx, MachineAddr(a), 8) {
                    Access::Done { ready, value, .. } => {
                        self.locked(op, value);
                        self.next_issue = ready + self.think();
                    }
                    Access::Pending(id) => self.wait = Wait::Lock(id, op),
                    Access::Stall => self.wait = Wait::Stalled(op),
                }
            }
        }
        self.collect();
    }

    fn loaded(&mut self, addr: u64, value: u128, level: crate::ids::Level) {
        self.mix[0] += 1;
        if level == crate::ids::Level::StoreBuffer {
            let own = self
                .last_own
                .get(&(self.ctx, addr))
                .copied()
                .map(u128::from);
            self.violations += u64::from(own != Some(value));
        }
    }

    fn locked(&mut self, op: Op, old: u128) {
        self.mix[2] += 1;
        let new = match op {
            Op::FetchAdd(a) => {
                self.fadds[self.lines.line_of(a) as usize] += 1;
                old + 1
            }
            Op::Xchg(a, v) => {
                self.last_own.insert((self.ctx, a), v);
                u128::from(v)
            }
            other => unreachable!("{other:?} is not locked"),
        };
        self.hier.end_locked(self.now, Some(new));
        self.collect();
    }

    fn completions(&mut self) {
        for c in self.hier.take_completions() {
            self.complete(c);
        }
    }

    fn complete(&mut self, c: Completion) {
        match self.wait {
            Wait::Load(id) if id == c.id => {
                self.mix[0] += 1;
                self.wait = Wait::Idle;
                self.next_issue = c.ready + self.think();
            }
            Wait::Lock(id, op) if id == c.id => {
                self.wait = Wait::Idle;
                self.locked(op, c.value);
                self.next_issue = c.ready + self.think();
            }
            _ => panic!(
                "{}: completion {c:?} while waiting {:?}",
                self.id, self.wait
            ),
        }
    }

    fn retry(&mut self) {
        if let Wait::Stalled(op) = self.wait {
            self.wait = Wait::Idle;
            self.start(op);
        }
    }

    /// What any event may have unblocked: log entries, completions, a
    /// stalled operation.
    fn react(&mut self) {
        self.collect();
        self.completions();
        self.retry();
    }
}

impl Driven for TestCore {
    fn hier(&self) -> &PrivateHierarchy {
        &self.hier
    }

    fn seat(&mut self) -> (&mut PrivateHierarchy, &mut Cycle) {
        (&mut self.hier, &mut self.now)
    }

    /// The next issue, while the core is idle with operations left.
    fn own_activity(&self) -> Option<Cycle> {
        (self.wait == Wait::Idle && self.ops_left > 0).then_some(self.next_issue)
    }

    fn after_message(&mut self) {
        self.react();
    }

    /// Reacts, then issues the next operation if it is due.
    fn after_advance(&mut self) {
        self.react();
        if self.wait == Wait::Idle && self.ops_left > 0 && self.next_issue <= self.now {
            let op = self.pick();
            self.ops_left -= 1;
            self.start(op);
        }
    }
}
