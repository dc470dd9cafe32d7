//! Errors of building and running an engine.

use crate::time::{Cycle, PartitionId};
use thiserror::Error;

/// What went wrong building or running an engine.
#[derive(Debug, Error, Clone, PartialEq, Eq)]
pub enum EngineError {
    /// The quantum must be at least one cycle.
    #[error("quantum 0 is not allowed: the quantum is the epoch length in cycles, at least 1")]
    ZeroQuantum,
    /// A link was declared with latency 0.
    #[error("link {src} -> {dst} has latency 0: every link needs a latency of at least 1 cycle")]
    ZeroLatencyLink {
        /// Sending end.
        src: PartitionId,
        /// Receiving end.
        dst: PartitionId,
    },
    /// A link latency does not fit the link table.
    #[error(
        "link {src} -> {dst} has latency {latency}: at most {} cycles allowed",
        u32::MAX
    )]
    LatencyTooLarge {
        /// Sending end.
        src: PartitionId,
        /// Receiving end.
        dst: PartitionId,
        /// The latency asked for.
        latency: u64,
    },
    /// A link or injection named a partition that does not exist.
    #[error("partition {0} does not exist")]
    UnknownPartition(PartitionId),
    /// The engine has no partitions.
    #[error("the engine has no partitions")]
    NoPartitions,
    /// A partition (or the barrier hook) panicked; the partitions and their
    /// statistics up to that point are still in the engine.
    #[error(
        "simulator bug: {component} panicked in the epoch starting at cycle {cycle}: {message}"
    )]
    Panicked {
        /// Partition name, or `barrier hook`.
        component: String,
        /// Start of the epoch it panicked in.
        cycle: Cycle,
        /// The panic message.
        message: String,
    },
}
