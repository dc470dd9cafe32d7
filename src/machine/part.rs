//! The machine's partitions: cores, L3 slices and memory channels, one enum
//! so the engine runs them with static dispatch.

use smpsim_cores::part::CorePart;
use smpsim_engine::{Cycle, EpochCtx, Partition, Stats};
use smpsim_uncore::{L3Slice, MemCtrl, MemMsg};

/// One partition of the machine.
#[derive(Debug)]
pub enum Part {
    /// A core with its contexts and private caches.
    Core(Box<CorePart>),
    /// An L3 slice with its directory.
    Slice(L3Slice),
    /// A memory channel.
    Mem(MemCtrl),
}

impl Partition for Part {
    type Msg = MemMsg;

    fn run_epoch(&mut self, ctx: &mut EpochCtx<'_, MemMsg>) {
        match self {
            Part::Core(c) => c.run_epoch(ctx),
            Part::Slice(s) => Partition::run_epoch(s, ctx),
            Part::Mem(m) => Partition::run_epoch(m, ctx),
        }
    }

    fn next_activity(&self) -> Option<Cycle> {
        match self {
            Part::Core(c) => c.next_activity(),
            Part::Slice(s) => Partition::next_activity(s),
            Part::Mem(m) => Partition::next_activity(m),
        }
    }

    fn stats(&self) -> &Stats {
        match self {
            Part::Core(c) => c.stats(),
            Part::Slice(s) => Partition::stats(s),
            Part::Mem(m) => Partition::stats(m),
        }
    }

    fn more_stats(&self) -> Option<&Stats> {
        match self {
            Part::Core(c) => c.more_stats(),
            _ => None,
        }
    }
}
