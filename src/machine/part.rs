//! The machine's partitions: its cores, then the uncore's L3 slices and
//! memory channels (added by `MemSystem::add_to`), as the uncore's one
//! partition enum over this machine's core partitions.

use smpsim_cores::part::CorePart;

/// One partition of the machine.
pub type Part = smpsim_uncore::MachinePart<CorePart>;
