//! The machine's partitions: its cores, then the uncore's L3 slices and
//! memory channels ([`UncorePart`], added by `MemSystem::add_to`), one enum
//! so the engine runs them with static dispatch.

use smpsim_cores::part::CorePart;
use smpsim_engine::{Cycle, EpochCtx, Partition, Stats};
use smpsim_uncore::{MemMsg, UncorePart};

/// One partition of the machine.
#[derive(Debug)]
pub enum Part {
    /// A core with its contexts and private caches.
    Core(Box<CorePart>),
    /// An L3 slice or a memory channel.
    Uncore(UncorePart),
}

impl Partition for Part {
    type Msg = MemMsg;

    fn run_epoch(&mut self, ctx: &mut EpochCtx<'_, MemMsg>) {
        match self {
            Part::Core(c) => c.run_epoch(ctx),
            Part::Uncore(u) => u.run_epoch(ctx),
        }
    }

    fn next_activity(&self) -> Option<Cycle> {
        match self {
            Part::Core(c) => c.next_activity(),
            Part::Uncore(u) => u.next_activity(),
        }
    }

    fn stats(&self) -> &Stats {
        match self {
            Part::Core(c) => c.stats(),
            Part::Uncore(u) => u.stats(),
        }
    }

    fn more_stats(&self) -> Option<&Stats> {
        match self {
            Part::Core(c) => c.more_stats(),
            Part::Uncore(u) => u.more_stats(),
        }
    }
}
