//! The uncore's partitions as one type: what a machine (or a self-test)
//! wraps in its own partition enum next to its cores.
//!
//! [`MemSystem::add_to`](crate::MemSystem::add_to) builds them, adds them
//! to an engine in id order and declares their links; the wrapping enum
//! delegates to [`UncorePart`]'s [`Partition`] impl, so the uncore's
//! variants and their dispatch are written here once.

use crate::directory::L3Slice;
use crate::memctrl::MemCtrl;
use crate::msg::MemMsg;
use smpsim_engine::{Cycle, EpochCtx, Partition, Stats};

/// One uncore partition. Boxed, so that it is two words wherever a
/// wrapping enum holds it inline next to its (boxed) cores.
#[derive(Debug, serde::Serialize, serde::Deserialize)]
pub enum UncorePart {
    /// An L3 slice with its directory: the home of its lines.
    Slice(Box<L3Slice>),
    /// A memory channel: its controller over one DRAM channel.
    Mem(Box<MemCtrl>),
}

impl UncorePart {
    /// Re-attaches the shared handles of `sys` after deserializing (see
    /// [`crate::attach`]).
    pub fn attach(&mut self, sys: &crate::MemSystem) {
        match self {
            UncorePart::Slice(s) => s.attach(sys),
            UncorePart::Mem(m) => m.attach(sys),
        }
    }
}

impl Partition for UncorePart {
    type Msg = MemMsg;

    fn run_epoch(&mut self, ctx: &mut EpochCtx<'_, MemMsg>) {
        match self {
            UncorePart::Slice(s) => Partition::run_epoch(&mut **s, ctx),
            UncorePart::Mem(m) => Partition::run_epoch(&mut **m, ctx),
        }
    }

    fn next_activity(&self) -> Option<Cycle> {
        match self {
            UncorePart::Slice(s) => Partition::next_activity(&**s),
            UncorePart::Mem(m) => Partition::next_activity(&**m),
        }
    }

    fn stats(&self) -> &Stats {
        match self {
            UncorePart::Slice(s) => Partition::stats(&**s),
            UncorePart::Mem(m) => Partition::stats(&**m),
        }
    }

    fn more_stats(&self) -> Option<&Stats> {
        match self {
            UncorePart::Slice(s) => Partition::more_stats(&**s),
            UncorePart::Mem(m) => Partition::more_stats(&**m),
        }
    }
}

/// A whole machine's partition: one of its cores (any core partition over
/// the same messages) or an uncore partition. The machine and the
/// self-tests use it with their own core types, so the dispatch is written
/// once.
#[derive(Debug)]
pub enum MachinePart<C> {
    /// A core with its private hierarchy.
    Core(Box<C>),
    /// An L3 slice or a memory channel.
    Uncore(UncorePart),
}

impl<C: Partition<Msg = MemMsg>> Partition for MachinePart<C> {
    type Msg = MemMsg;

    fn run_epoch(&mut self, ctx: &mut EpochCtx<'_, MemMsg>) {
        match self {
            MachinePart::Core(c) => c.run_epoch(ctx),
            MachinePart::Uncore(u) => u.run_epoch(ctx),
        }
    }

    fn next_activity(&self) -> Option<Cycle> {
        match self {
            MachinePart::Core(c) => c.next_activity(),
            MachinePart::Uncore(u) => u.next_activity(),
        }
    }

    fn stats(&self) -> &Stats {
        match self {
            MachinePart::Core(c) => c.stats(),
            MachinePart::Uncore(u) => u.stats(),
        }
    }

    fn more_stats(&self) -> Option<&Stats> {
        match self {
            MachinePart::Core(c) => c.more_stats(),
            MachinePart::Uncore(u) => u.more_stats(),
        }
    }
}
