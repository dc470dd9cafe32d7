//! Latency microbenchmarks driven through the core-side interface
//! ([`PrivateHierarchy`]): a dependent pointer chase over working sets
//! sized for the L1, the L2, the L3 and DRAM, and a two-core line
//! ping-pong. Each result is compared with what the config implies.
//!
//! # What the config implies (unloaded latencies)
//! With `lat(a, b, bytes)` the interconnect's unloaded latency, `h` the
//! line's home slice, `k` its memory channel, `o` the owning core, and
//! 8-byte control / 72-byte data packets:
//! - L1: `l1d.latency`; L2: `l2.latency`;
//! - L3: `l2.latency + lat(c,h,8) + l3.latency + lat(h,c,72)`;
//! - DRAM: `l2.latency + lat(c,h,8) + l3.latency + lat(h,k,8) +
//!   dram + lat(k,h,72) + lat(h,c,72)`, with `dram` the DRAM's unloaded
//!   latency of a random access (a row conflict under the open-page
//!   policy, a row miss under the closed one);
//! - core-to-core transfer (a load of a line another core holds in M):
//!   `l2.latency + lat(c,h,8) + l3.latency + lat(h,o,8) + l2.latency +
//!   lat(o,h,72) + lat(h,c,72)`.
//!
//! Each is computed per measured load (its own line's home and channel)
//! and averaged over the same loads as the measurement, so mesh distances
//! do not blur the comparison. The measured value of a level is the mean
//! load-to-use latency of the loads that level served, in the run whose
//! working set targets it (the chase also reports its overall mean).

use crate::config::HierarchyConfig;
use crate::dram::{PagePolicy, RowOutcome};
use crate::driver::{self, Driven};
use crate::ids::{CoreId, Level};
use crate::interconnect::Node;
use crate::memory::{LineAddr, MachineAddr, MachineMemory, LINE_SIZE};
use crate::msg::{CONTROL_BYTES, DATA_BYTES};
use crate::private::{Access, PrivateHierarchy, ReqId};
use crate::rng::SplitMix64;
use crate::system::{MemSystem, MemSystemConfig};
use smpsim_engine::{Cycle, HostThreads, PartitionId, StatsBuilder};
use std::sync::Arc;

/// One measured level.
#[derive(Clone, Debug, PartialEq)]
pub struct LevelResult {
    /// What was measured (`L1`, `L2`, `L3`, `DRAM`, `core-to-core`).
    pub name: &'static str,
    /// Working set of the run, bytes (0 for the ping-pong).
    pub working_set: u64,
    /// Loads served by the measured level.
    pub loads: u64,
    /// Their mean load-to-use latency, cycles.
    pub measured: f64,
    /// The mean of what the config implies for the same loads, cycles.
    pub implied: f64,
    /// Mean over every load of the chase (all levels), cycles.
    pub overall: f64,
}

impl LevelResult {
    /// `|measured - implied| / implied`.
    pub fn error(&self) -> f64 {
        if self.implied == 0.0 {
            return f64::INFINITY;
        }
        (self.measured - self.implied).abs() / self.implied
    }
}

/// How big each run is.
#[derive(Clone, Debug, PartialEq)]
pub struct LatencyConfig {
    /// The memory system measured.
    pub system: MemSystemConfig,
    /// Dependent loads measured per working set.
    pub chase_loads: u64,
    /// Ping-pong rounds.
    pub rounds: u64,
}

impl Default for LatencyConfig {
    fn default() -> Self {
        LatencyConfig {
            system: MemSystemConfig::default(),
            chase_loads: 2_000,
            rounds: 200,
        }
    }
}

#[derive(Clone, Debug)]
enum Program {
    /// Warm the working set with independent loads, then chase pointers.
    Chase {
        warm: Vec<u64>,
        start: u64,
        count: u64,
    },
    /// In rounds `r ≡ parity (mod 2)`, at `r × period`: load the line,
    /// then store to it.
    PingPong {
        addr: u64,
        rounds: u64,
        period: u64,
        parity: u64,
    },
    Idle,
}

/// A measured load: level, latency, line.
type Sample = (Level, u64, LineAddr);

/// A core running a latency program.
#[derive(Debug)]
struct LatCore {
    hier: PrivateHierarchy,
    prog: Program,
    now: Cycle,
    next: Option<Cycle>,
    waiting: Option<(ReqId, Cycle)>,
    warm_next: usize,
    inflight: usize,
    chase_addr: u64,
    left: u64,
    round: u64,
    samples: Vec<Sample>,
}

impl LatCore {
    fn new(hier: PrivateHierarchy, prog: Program) -> Self {
        let (addr, left, next) = match &prog {
            Program::Chase { start, count, .. } => (*start, *count, Some(Cycle::ZERO)),
            Program::PingPong { parity, period, .. } => (0, 0, Some(Cycle(parity * period))),
            Program::Idle => (0, 0, None),
        };
        LatCore {
            hier,
            prog,
            now: Cycle::ZERO,
            next,
            waiting: None,
            warm_next: 0,
            inflight: 0,
            chase_addr: addr,
            left,
            round: 0,
            samples: Vec::new(),
        }
    }

    fn step(&mut self) {
        match self.prog.clone() {
            Program::Chase { warm, .. } if self.warm_next < warm.len() => self.warm(&warm),
            Program::Chase { .. } if self.inflight > 0 => {}
            Program::Chase { .. } if self.left > 0 => self.chase(),
            Program::PingPong { addr, rounds, .. } if self.round < rounds => self.ping(addr),
            _ => {}
        }
    }

    /// Issues independent loads until the hierarchy stalls.
    fn warm(&mut self, lines: &[u64]) {
        while let Some(&a) = lines.get(self.warm_next) {
            match self.hier.load(self.now, MachineAddr(a), 8) {
                Access::Done { .. } => self.warm_next += 1,
                Access::Pending(_) => {
                    self.warm_next += 1;
                    self.inflight += 1;
                }
                Access::Stall => return,
            }
        }
        if self.inflight == 0 {
            self.next = Some(self.now);
        }
    }

    fn chase(&mut self) {
        let a = self.chase_addr;
        match self.hier.load(self.now, MachineAddr(a), 8) {
            Access::Done {
                ready,
                value,
                level,
            } => self.chased(level, ready - self.now, value, ready),
            Access::Pending(id) => self.waiting = Some((id, self.now)),
            Access::Stall => panic!("a single dependent load cannot stall"),
        }
    }

    fn chased(&mut self, level: Level, latency: u64, value: u128, ready: Cycle) {
        self.samples
            .push((level, latency, MachineAddr(self.chase_addr).line()));
        self.chase_addr = u64::try_from(value).expect("pointers are 8 bytes");
        self.left -= 1;
        if self.left > 0 {
            self.next = Some(ready);
        }
    }

    fn ping(&mut self, addr: u64) {
        match self.hier.load(self.now, MachineAddr(addr), 8) {
            Access::Done { ready, level, .. } => self.pinged(addr, level, ready - self.now, ready),
            Access::Pending(id) => self.waiting = Some((id, self.now)),
            Access::Stall => panic!("a single load cannot stall"),
        }
    }

    fn pinged(&mut self, addr: u64, level: Level, latency: u64, ready: Cycle) {
        self.samples
            .push((level, latency, MachineAddr(addr).line()));
        self.hier
            .store(ready, MachineAddr(addr), 8, u128::from(self.round))
            .expect("the store buffer is empty between rounds");
        self.round += 2;
        if let Program::PingPong {
            rounds,
            period,
            parity,
            ..
        } = self.prog
        {
            if self.round < rounds {
                self.next = Some(Cycle(self.round * period + parity * period).max(ready + 1));
            }
        }
    }

    fn completions(&mut self) {
        for c in self.hier.take_completions() {
            match (&self.prog, self.waiting) {
                (Program::Chase { .. }, None) => {
                    self.inflight -= 1;
                    if self.inflight == 0 {
                        self.next = Some(c.ready);
                    } else if self.next.is_none() {
                        self.next = Some(self.now);
                    }
                }
                (Program::Chase { .. }, Some((id, start))) if id == c.id => {
                    self.waiting = None;
                    self.chased(c.level, c.ready - start, c.value, c.ready);
                }
                (Program::PingPong { addr, .. }, Some((id, start))) if id == c.id => {
                    self.waiting = None;
                    let addr = *addr;
                    self.pinged(addr, c.level, c.ready - start, c.ready);
                }
                _ => panic!("unexpected completion {c:?}"),
            }
        }
    }
}

impl Driven for LatCore {
    fn hier(&self) -> &PrivateHierarchy {
        &self.hier
    }

    fn seat(&mut self) -> (&mut PrivateHierarchy, &mut Cycle) {
        (&mut self.hier, &mut self.now)
    }

    fn own_activity(&self) -> Option<Cycle> {
        self.next
    }

    fn after_message(&mut self) {
        self.completions();
    }

    /// Takes the program's next step if it is due.
    fn after_advance(&mut self) {
        if self.next.is_some_and(|n| n <= self.now) {
            self.next = None;
            self.step();
        }
    }
}

/// Runs two cores of `sys` with the given programs; returns each core's
/// samples.
fn run_programs(sys: &MemSystem, progs: [Program; 2]) -> Result<[Vec<Sample>; 2], String> {
    let cores = (0..)
        .zip(progs)
        .map(|(i, p)| LatCore::new(sys.hierarchy(CoreId(i), StatsBuilder::new()), p))
        .collect();
    let done = driver::run(sys, cores, None, HostThreads::Count(1))?;
    let [a, b] = <[LatCore; 2]>::try_from(done.cores).expect("two cores");
    Ok([a.samples, b.samples])
}

/// The unloaded latency the config implies for a load by `core` of
/// `line` served at `level` (`owner` for a core-to-core transfer).
pub fn implied(sys: &MemSystem, core: CoreId, line: LineAddr, level: Level, owner: CoreId) -> u64 {
    let h: &HierarchyConfig = &sys.config().hierarchy;
    let f = sys.fabric();
    let lat = |a, b, bytes| f.latency(a, b, bytes);
    let c = Node::Core(core.0);
    let home = Node::L3Slice(f.home(line).0);
    let to_home = h.l2.latency + lat(c, home, CONTROL_BYTES) + h.l3.latency;
    match level {
        Level::StoreBuffer | Level::L1 => h.l1d.latency,
        Level::L2 => h.l2.latency,
        Level::L3 => to_home + lat(home, c, DATA_BYTES),
        Level::Dram => {
            let k = Node::MemCtrl(f.channel(line).0);
            let t = sys.config().dram.timing();
            let dram = match sys.config().dram.page_policy {
                PagePolicy::Open => t.idle_latency(RowOutcome::Conflict),
                PagePolicy::Closed => t.idle_latency(RowOutcome::Miss),
            };
            to_home
                + lat(home, k, CONTROL_BYTES)
                + dram
                + lat(k, home, DATA_BYTES)
                + lat(home, c, DATA_BYTES)
        }
        Level::Remote => {
            let o = Node::Core(owner.0);
            to_home
                + lat(home, o, CONTROL_BYTES)
                + h.l2.latency
                + lat(o, home, DATA_BYTES)
                + lat(home, c, DATA_BYTES)
        }
    }
}

/// A random cyclic chain of pointers over `bytes` at `base`, written into
/// memory: one pointer per line, at the line's start. Returns the lines.
fn build_chain(mem: &MachineMemory, base: u64, bytes: u64, rng: &mut SplitMix64) -> Vec<u64> {
    let n = bytes / LINE_SIZE;
    let mut order: Vec<u64> = (0..n).collect();
    for i in (1..order.len()).rev() {
        let j = rng.below_usize(i + 1);
        order.swap(i, j);
    }
    let addrs: Vec<u64> = order.iter().map(|&i| base + i * LINE_SIZE).collect();
    for (i, &a) in addrs.iter().enumerate() {
        let next = addrs[(i + 1) % addrs.len()];
        mem.write_u64(MachineAddr(a), next)
            .expect("chain lies in memory");
    }
    addrs
}

fn summarize(
    name: &'static str,
    working_set: u64,
    level: Level,
    samples: &[Sample],
    implied_of: impl Fn(LineAddr) -> u64,
) -> LevelResult {
    let at: Vec<&Sample> = samples.iter().filter(|s| s.0 == level).collect();
    let n = at.len().max(1) as f64;
    let overall = samples.iter().map(|s| s.1 as f64).sum::<f64>() / samples.len().max(1) as f64;
    LevelResult {
        name,
        working_set,
        loads: at.len() as u64,
        measured: at.iter().map(|s| s.1 as f64).sum::<f64>() / n,
        implied: at.iter().map(|s| implied_of(s.2) as f64).sum::<f64>() / n,
        overall,
    }
}

/// Runs every microbenchmark; results in order L1, L2, L3, DRAM,
/// core-to-core.
pub fn run(cfg: &LatencyConfig) -> Result<Vec<LevelResult>, String> {
    let sys_cfg = &cfg.system;
    let h = &sys_cfg.hierarchy;
    let l1 = h.l1d.capacity();
    let l2 = h.l2.capacity();
    let l3 = u64::from(h.l3.slices) * u64::from(h.l3.sets) * u64::from(h.l3.ways) * LINE_SIZE;
    let sets = [
        ("L1", l1 / 2, Level::L1, true),
        ("L2", l2 / 2, Level::L2, true),
        ("L3", l3 / 2, Level::L3, true),
        ("DRAM", l3 * 8, Level::Dram, false),
    ];
    let mut out = Vec::new();
    let mut rng = SplitMix64::new(0x1a7e, 0);
    let base = 1 << 24;
    for (name, ws, level, warm) in sets {
        let mem = Arc::new(
            MachineMemory::new((base + ws).next_multiple_of(1 << 20)).map_err(|e| e.to_string())?,
        );
        let lines = build_chain(&mem, base, ws, &mut rng);
        let prog = Program::Chase {
            warm: if warm { lines.clone() } else { Vec::new() },
            start: lines[0],
            count: cfg.chase_loads,
        };
        let sys = MemSystem::new(sys_cfg, 2, mem, PartitionId(0)).map_err(|e| e.to_string())?;
        let [samples, _] = run_programs(&sys, [prog, Program::Idle])?;
        out.push(summarize(name, ws, level, &samples, |l| {
            implied(&sys, CoreId(0), l, level, CoreId(0))
        }));
    }
    out.push(ping_pong(cfg)?);
    Ok(out)
}

fn ping_pong(cfg: &LatencyConfig) -> Result<LevelResult, String> {
    let mem = Arc::new(MachineMemory::new(1 << 20).map_err(|e| e.to_string())?);
    let addr = 0x8_0000;
    let period = 2_000;
    let prog = |parity| Program::PingPong {
        addr,
        rounds: cfg.rounds,
        period,
        parity,
    };
    let sys = MemSystem::new(&cfg.system, 2, mem, PartitionId(0)).map_err(|e| e.to_string())?;
    let [a, b] = run_programs(&sys, [prog(0), prog(1)])?;
    let line = MachineAddr(addr).line();
    let mut all: Vec<(Level, u64, LineAddr, CoreId)> = Vec::new();
    all.extend(a.iter().map(|s| (s.0, s.1, s.2, CoreId(0))));
    all.extend(b.iter().map(|s| (s.0, s.1, s.2, CoreId(1))));
    let remote: Vec<&(Level, u64, LineAddr, CoreId)> =
        all.iter().filter(|s| s.0 == Level::Remote).collect();
    let n = remote.len().max(1) as f64;
    let implied_sum: u64 = remote
        .iter()
        .map(|s| implied(&sys, s.3, line, Level::Remote, CoreId(1 - s.3 .0)))
        .sum();
    Ok(LevelResult {
        name: "core-to-core",
        working_set: 0,
        loads: remote.len() as u64,
        measured: remote.iter().map(|s| s.1 as f64).sum::<f64>() / n,
        implied: implied_sum as f64 / n,
        overall: all.iter().map(|s| s.1 as f64).sum::<f64>() / all.len().max(1) as f64,
    })
}

/// The report, one line per level, and whether every level is within
/// `tolerance` (a fraction) of what the config implies.
pub fn report(results: &[LevelResult], tolerance: f64) -> (Vec<String>, bool) {
    let mut lines = vec![format!(
        "{:<13} {:>12} {:>7} {:>10} {:>9} {:>7} {:>13}",
        "level", "working set", "loads", "measured", "implied", "error", "chase mean"
    )];
    let mut ok = true;
    for r in results {
        let within = r.loads > 0 && r.error() <= tolerance;
        ok &= within;
        let ws = if r.working_set == 0 {
            "-".to_owned()
        } else {
            format!("{} KiB", r.working_set / 1024)
        };
        lines.push(format!(
            "{:<13} {:>12} {:>7} {:>10.1} {:>9.1} {:>6.1}% {:>13.1}{}",
            r.name,
            ws,
            r.loads,
            r.measured,
            r.implied,
            r.error() * 100.0,
            r.overall,
            if within { "" } else { "  <- outside tolerance" }
        ));
    }
    (lines, ok)
}
