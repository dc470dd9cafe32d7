//! The data-memory port the pipeline calls. [`FixedMem`] is a
//! fixed-latency cache model for unit tests and microbenchmarks; in the
//! whole machine the core partition implements the port over the coherent
//! private hierarchy (`crate::part`, its `ooo` model), with the commit
//! check.
//!
//! Contract: calls come in non-decreasing `now`. A load answers
//! [`PortAccess::Done`] (the data is ready at `ready`), [`PortAccess::Pending`]
//! (a completion with that id will appear in [`MemPort::take_completions`])
//! or [`PortAccess::Stall`] (no MSHR free: the pipeline retries next cycle).
//! Stores are handed over at commit, in program order per context; a
//! refused store (store buffer full) is retried at the next cycle.

use crate::arch::ArchState;
use crate::func::Exit;
use smpsim_uncore::Access;

/// The answer to a load.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PortAccess {
    /// Served; the data can be used at this cycle.
    Done {
        /// Ready cycle.
        ready: u64,
    },
    /// A miss in flight; its completion carries this id.
    Pending(u32),
    /// No resources now; retry later.
    Stall,
}

impl From<Access> for PortAccess {
    /// A private-hierarchy answer as the pipeline sees it (the value is
    /// not needed: timing only).
    fn from(a: Access) -> Self {
        match a {
            Access::Done { ready, .. } => PortAccess::Done { ready: ready.get() },
            Access::Pending(id) => PortAccess::Pending(id.0),
            Access::Stall => PortAccess::Stall,
        }
    }
}

/// What the out-of-order pipeline needs from the data side of memory.
/// Addresses are guest-virtual; an implementation translates.
pub trait MemPort {
    /// A load of `size` bytes at `addr` for hardware context `ctx`.
    fn load(&mut self, now: u64, ctx: usize, addr: u64, size: u8) -> PortAccess;
    /// A committed store; `false` if it cannot be accepted now.
    fn store(&mut self, now: u64, ctx: usize, addr: u64, size: u8, value: u64) -> bool;
    /// Appends `(id, ready cycle)` of loads that completed since the last call.
    fn take_completions(&mut self, out: &mut Vec<(u32, u64)>);
    /// Whether every committed store of `ctx` has left the store buffer
    /// (fences wait for it). The default has no store buffer.
    fn stores_drained(&self, ctx: usize) -> bool {
        let _ = ctx;
        true
    }
    /// An instruction fetch from the line holding `addr` (called once per
    /// line the front end moves into). The default is an ideal I-cache.
    fn fetch(&mut self, now: u64, ctx: usize, addr: u64) -> PortAccess {
        let _ = (ctx, addr);
        PortAccess::Done { ready: now }
    }
    /// A store of `ctx` computed its address (it issued; it retires and
    /// drains later): the memory side may start obtaining write ownership
    /// of its line now. The default does nothing.
    fn store_address(&mut self, now: u64, ctx: usize, addr: u64) {
        let _ = (now, ctx, addr);
    }
    /// The commit hook: instruction `r` of `ctx` is about to retire (all
    /// its uops are done). An implementation that executes instructions
    /// itself at commit (the whole machine does: see [`Verdict`]) checks
    /// the oracle's record against its own result here. The default
    /// trusts the oracle.
    fn retire(&mut self, now: u64, ctx: usize, r: &Retiring<'_>) -> Verdict {
        let _ = (now, ctx, r);
        Verdict::Agree
    }
}

/// One memory access of a retiring instruction, as the oracle saw it.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct AccessRec {
    /// Guest-virtual address.
    pub addr: u64,
    /// Bytes.
    pub size: u8,
    /// A store.
    pub write: bool,
}

/// An instruction about to retire, as the fetch-time oracle recorded it.
#[derive(Clone, Copy, Debug)]
pub struct Retiring<'a> {
    /// Its address.
    pub rip: u64,
    /// The RIP the oracle continued at.
    pub next_rip: u64,
    /// The oracle's exit at this instruction, if any.
    pub exit: Option<&'a Exit>,
    /// Its memory accesses in program order (at most six recorded).
    pub accesses: &'a [AccessRec],
    /// The oracle step that produced it (see [`crate::ooo::Env::select`]).
    pub tag: u64,
}

/// What the commit hook found.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Verdict {
    /// The instruction retires as the oracle recorded it.
    Agree,
    /// It cannot retire this cycle (its data is not readable, its lock or
    /// store-buffer room not yet obtained): retry at the next cycle.
    Wait,
    /// It retired with a different outcome (next RIP, addresses or exit)
    /// than the fetch-time oracle predicted: the truth is this state (after
    /// the instruction; before it for a fault) and exit. Younger
    /// instructions are squashed and the oracle restarts from the state.
    Diverged(Box<ArchState>, Option<Exit>),
}

/// Parameters of [`FixedMem`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FixedMemConfig {
    /// Lines of the direct-mapped L1D model (64-byte lines).
    pub l1_lines: usize,
    /// Load-to-use latency of an L1 hit.
    pub hit_latency: u64,
    /// Load-to-use latency of a miss.
    pub miss_latency: u64,
    /// Misses in flight at once (MSHRs); same-line misses merge.
    pub mshrs: usize,
}

impl Default for FixedMemConfig {
    fn default() -> Self {
        Self {
            l1_lines: 512,
            hit_latency: 4,
            miss_latency: 200,
            mshrs: 10,
        }
    }
}

/// A direct-mapped L1D with a fixed miss latency and an MSHR limit; stores
/// are accepted at once and allocate their line (no store-buffer model).
/// Misses are answered as `Done` with a future ready cycle (so no
/// completions are ever produced).
#[derive(Clone, Debug)]
pub struct FixedMem {
    cfg: FixedMemConfig,
    tags: Vec<u64>,
    /// (line, ready) of misses in flight.
    mshr: Vec<(u64, u64)>,
    /// Loads that hit, missed, merged, stalled.
    pub counts: [u64; 4],
}

impl FixedMem {
    /// An empty cache.
    pub fn new(cfg: FixedMemConfig) -> Self {
        Self {
            tags: vec![u64::MAX; cfg.l1_lines.max(1)],
            mshr: Vec::new(),
            cfg,
            counts: [0; 4],
        }
    }

    fn slot(&self, line: u64) -> usize {
        // Truncation is the point: low line bits pick the slot.
        (line as usize) % self.tags.len()
    }

    fn access_line(&mut self, now: u64, line: u64) -> PortAccess {
        self.mshr.retain(|&(_, r)| r > now);
        if let Some(&(_, r)) = self.mshr.iter().find(|m| m.0 == line) {
            self.counts[2] += 1;
            return PortAccess::Done { ready: r };
        }
        let s = self.slot(line);
        if self.tags[s] == line {
            self.counts[0] += 1;
            return PortAccess::Done {
                ready: now + self.cfg.hit_latency,
            };
        }
        if self.mshr.len() >= self.cfg.mshrs {
            self.counts[3] += 1;
            return PortAccess::Stall;
        }
        self.counts[1] += 1;
        let ready = now + self.cfg.miss_latency;
        self.tags[s] = line; // filled when the miss returns; merged until then
        self.mshr.push((line, ready));
        PortAccess::Done { ready }
    }
}

impl MemPort for FixedMem {
    fn load(&mut self, now: u64, _ctx: usize, addr: u64, size: u8) -> PortAccess {
        let first = addr / 64;
        let last = (addr + u64::from(size.max(1)) - 1) / 64;
        let a = self.access_line(now, first);
        if last == first {
            return a;
        }
        match (a, self.access_line(now, last)) {
            (PortAccess::Done { ready: r1 }, PortAccess::Done { ready: r2 }) => {
                PortAccess::Done { ready: r1.max(r2) }
            }
            _ => PortAccess::Stall,
        }
    }

    fn store(&mut self, _now: u64, _ctx: usize, addr: u64, _size: u8, _value: u64) -> bool {
        let line = addr / 64;
        let s = self.slot(line);
        self.tags[s] = line;
        true
    }

    fn take_completions(&mut self, _out: &mut Vec<(u32, u64)>) {}
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fixed_mem_hits_misses_merges_and_stalls() {
        let mut m = FixedMem::new(FixedMemConfig {
            mshrs: 2,
            ..FixedMemConfig::default()
        });
        assert_eq!(m.load(0, 0, 0x1000, 8), PortAccess::Done { ready: 200 });
        assert_eq!(m.load(1, 0, 0x1008, 8), PortAccess::Done { ready: 200 });
        assert_eq!(m.load(2, 0, 0x2000, 8), PortAccess::Done { ready: 202 });
        assert_eq!(m.load(3, 0, 0x3000, 8), PortAccess::Stall);
        assert_eq!(m.load(300, 0, 0x1000, 8), PortAccess::Done { ready: 304 });
        assert_eq!(m.counts, [1, 2, 1, 1]);
    }
}
