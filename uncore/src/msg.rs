//! The coherence messages partitions exchange, and how a machine-wide
//! message type carries them.
//!
//! Messages carry no data: data lives in machine memory (DESIGN.md §3).
//! A "data" message grants the permission to read or write machine memory
//! for a line; its size (for link occupancy) is that of a data packet.

use crate::ids::{CoreId, Level, SliceId};
use crate::memory::LineAddr;

/// What an evicting core held (tells the directory whether data comes back).
#[derive(Copy, Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub enum Held {
    /// Shared (clean, not owner).
    S,
    /// Exclusive clean.
    E,
    /// Modified.
    M,
    /// Owned (MOESI; dirty, other sharers may exist).
    O,
}

/// Which request a forward stands for.
#[derive(Copy, Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub enum FwdKind {
    /// Another core wants a shared copy: downgrade.
    GetS,
    /// Another core wants to write, or the L3 evicts the line: invalidate.
    GetM,
}

/// What an owner keeps after answering a forward.
#[derive(Copy, Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub enum Kept {
    /// Nothing (it invalidated, or was already evicting the line).
    Nothing,
    /// A shared copy (MESI downgrade, or E → S).
    Shared,
    /// Ownership in O (MOESI downgrade of M or O).
    Owner,
}

/// The permission a grant gives.
#[derive(Copy, Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub enum Grant {
    /// Read-only, shared.
    S,
    /// Exclusive clean (may be written after a silent upgrade to M).
    E,
    /// Modified: read and write.
    M,
}

/// A coherence or memory message. `core` fields name the sending or
/// requesting core.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub enum MemMsg {
    /// Core → home slice: read miss.
    GetS {
        /// Requester.
        core: CoreId,
        /// The line.
        line: LineAddr,
    },
    /// Core → home slice: write miss or upgrade.
    GetM {
        /// Requester.
        core: CoreId,
        /// The line.
        line: LineAddr,
    },
    /// Core → home slice: the core evicts the line it held in `held`.
    Put {
        /// Evicting core.
        core: CoreId,
        /// The line.
        line: LineAddr,
        /// What it held.
        held: Held,
    },
    /// Core → home slice: invalidation done.
    InvAck {
        /// Acknowledging core.
        core: CoreId,
        /// The line.
        line: LineAddr,
    },
    /// Core → home slice: answer to a forward.
    FwdAck {
        /// The (former) owner.
        core: CoreId,
        /// The line.
        line: LineAddr,
        /// Whether it held the line modified (data comes back).
        dirty: bool,
        /// What it keeps.
        kept: Kept,
    },
    /// Home slice → sharer: invalidate your copy.
    Inv {
        /// The line.
        line: LineAddr,
    },
    /// Home slice → owner: downgrade or invalidate and answer.
    Fwd {
        /// The line.
        line: LineAddr,
        /// What is asked.
        kind: FwdKind,
    },
    /// Home slice → requester: the permission asked for.
    Data {
        /// The line.
        line: LineAddr,
        /// The permission.
        grant: Grant,
        /// Where the data came from (for load-to-use statistics).
        served: Level,
    },
    /// Home slice → evicting core: the eviction is complete.
    PutAck {
        /// The line.
        line: LineAddr,
    },
    /// Home slice → memory channel: read a line.
    MemRead {
        /// Requesting slice.
        slice: SliceId,
        /// The line.
        line: LineAddr,
    },
    /// Home slice → memory channel: write a line back (no answer).
    MemWrite {
        /// Writing slice.
        slice: SliceId,
        /// The line.
        line: LineAddr,
    },
    /// Memory channel → home slice: the line read.
    MemData {
        /// The line.
        line: LineAddr,
    },
}

/// Bytes of a control packet (request, ack, forward, invalidation).
pub const CONTROL_BYTES: u64 = 8;
/// Bytes of a data packet (header + 64-byte line).
pub const DATA_BYTES: u64 = 72;

impl MemMsg {
    /// The line the message is about.
    pub fn line(&self) -> LineAddr {
        match *self {
            MemMsg::GetS { line, .. }
            | MemMsg::GetM { line, .. }
            | MemMsg::Put { line, .. }
            | MemMsg::InvAck { line, .. }
            | MemMsg::FwdAck { line, .. }
            | MemMsg::Inv { line }
            | MemMsg::Fwd { line, .. }
            | MemMsg::Data { line, .. }
            | MemMsg::PutAck { line }
            | MemMsg::MemRead { line, .. }
            | MemMsg::MemWrite { line, .. }
            | MemMsg::MemData { line } => line,
        }
    }

    /// Packet size on the interconnect.
    pub fn bytes(&self) -> u64 {
        let data = match self {
            MemMsg::Put { held, .. } => matches!(held, Held::M | Held::O),
            MemMsg::FwdAck { dirty, .. } => *dirty,
            MemMsg::Data { .. } | MemMsg::MemWrite { .. } | MemMsg::MemData { .. } => true,
            _ => false,
        };
        if data {
            DATA_BYTES
        } else {
            CONTROL_BYTES
        }
    }
}

/// A machine-wide message type that can carry [`MemMsg`]s: the cores crate
/// wraps `MemMsg` in its own enum and implements this, so the uncore's
/// partitions and the [`crate::PrivateHierarchy`] work with it unchanged.
pub trait MemPayload: Send + Sized {
    /// Wraps a memory message.
    fn from_mem(msg: MemMsg) -> Self;
    /// Unwraps a memory message, or gives the value back if it is not one.
    fn into_mem(self) -> Result<MemMsg, Self>;
}

impl MemPayload for MemMsg {
    fn from_mem(msg: MemMsg) -> Self {
        msg
    }
    fn into_mem(self) -> Result<MemMsg, Self> {
        Ok(self)
    }
}
