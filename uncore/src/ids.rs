//! Identities of the memory system's components and the cache levels.

use serde::{Deserialize, Serialize};
use std::fmt;

/// A simulated core (its private L1I, L1D and L2 form one coherence agent).
#[derive(
    Copy, Clone, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize,
)]
#[serde(transparent)]
pub struct CoreId(pub u32);

impl CoreId {
    /// The id as a vector index.
    #[inline]
    pub const fn index(self) -> usize {
        self.0 as usize
    }
}

impl fmt::Display for CoreId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "core{}", self.0)
    }
}

/// An SMT context (hardware thread) of a core. Contexts share the core's
/// caches; each has its own program order in the shared store buffer.
#[derive(
    Copy, Clone, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize,
)]
#[serde(transparent)]
pub struct ContextId(pub u8);

/// A slice of the shared L3 with its part of the directory.
#[derive(
    Copy, Clone, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize,
)]
#[serde(transparent)]
pub struct SliceId(pub u32);

impl SliceId {
    /// The id as a vector index.
    #[inline]
    pub const fn index(self) -> usize {
        self.0 as usize
    }
}

/// A memory-controller channel.
#[derive(
    Copy, Clone, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize,
)]
#[serde(transparent)]
pub struct ChannelId(pub u32);

impl ChannelId {
    /// The id as a vector index.
    #[inline]
    pub const fn index(self) -> usize {
        self.0 as usize
    }
}

/// Where an access was served from, for load-to-use statistics.
#[derive(Copy, Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub enum Level {
    /// Forwarded from the core's own store buffer.
    StoreBuffer,
    /// The private L1 (instruction or data).
    L1,
    /// The private L2.
    L2,
    /// The shared L3 (home slice), no other core involved.
    L3,
    /// Another core's private cache (a coherence miss: forward or
    /// invalidations were needed).
    Remote,
    /// DRAM through a memory controller.
    Dram,
}

impl Level {
    /// Every level, in report order.
    pub const ALL: [Level; 6] = [
        Level::StoreBuffer,
        Level::L1,
        Level::L2,
        Level::L3,
        Level::Remote,
        Level::Dram,
    ];

    /// Short lowercase name used in statistic names.
    pub const fn name(self) -> &'static str {
        match self {
            Level::StoreBuffer => "sb",
            Level::L1 => "l1",
            Level::L2 => "l2",
            Level::L3 => "l3",
            Level::Remote => "remote",
            Level::Dram => "dram",
        }
    }
}
