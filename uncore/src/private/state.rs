//! Coherence states of a core's private hierarchy.

use crate::msg::Held;
use crate::ownership::Perm;

/// State of a line in the L2 (which holds the core's coherence state; the
/// L1s hold a subset of its readable lines).
#[derive(Copy, Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub enum PState {
    /// Shared, clean, read-only.
    S,
    /// Exclusive clean: readable; a store upgrades it to M silently.
    E,
    /// Modified: readable and writable.
    M,
    /// Owned (MOESI): dirty, read-only, others may share it.
    O,
    /// GetS sent, waiting for data (not readable).
    IS,
    /// GetM sent from I, or S/O copy lost while upgrading (not readable).
    IM,
    /// Upgrade from S sent; still readable.
    SM,
    /// Upgrade from O sent (MOESI); still readable and still the owner.
    OM,
}

impl PState {
    /// Whether machine memory may be read for this line.
    pub fn readable(self) -> bool {
        matches!(
            self,
            PState::S | PState::E | PState::M | PState::O | PState::SM | PState::OM
        )
    }

    /// Whether it is a stable state (no request outstanding).
    pub fn stable(self) -> bool {
        matches!(self, PState::S | PState::E | PState::M | PState::O)
    }

    /// The permission the shadow owner table records for it.
    pub fn perm(self) -> Perm {
        match self {
            PState::E | PState::M => Perm::Write,
            PState::S | PState::O | PState::SM | PState::OM => Perm::Read,
            PState::IS | PState::IM => Perm::None,
        }
    }

    /// What a put for this (stable) state reports.
    pub fn held(self) -> Held {
        match self {
            PState::S => Held::S,
            PState::E => Held::E,
            PState::M => Held::M,
            PState::O => Held::O,
            other => unreachable!("transient state {other:?} is never evicted"),
        }
    }
}

/// An L2 entry: the state, whether a locked instruction pins it, and
/// whether the L2's prefetcher brought it.
#[derive(Copy, Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct PLine {
    /// Coherence state.
    pub st: PState,
    /// Held by a locked read-modify-write: not evictable, and invalidations
    /// and forwards wait until the lock ends.
    pub pinned: bool,
    /// Brought by an L2 prefetch and not yet hit by a demand access.
    pub prefetched: bool,
}

/// An L1 entry (the L2 holds the coherence state).
#[derive(Copy, Clone, Debug, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct L1Line {
    /// Brought by an L1D prefetch and not yet hit by a demand access.
    pub prefetched: bool,
}

/// A line the core evicted, waiting for the directory's acknowledgement.
#[derive(Copy, Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub enum WbState {
    /// Put for a shared copy sent.
    SI,
    /// Put for an owned copy (E, M or O) sent; it answers forwards.
    MI(Held),
    /// A forward was answered after the put: only the ack is awaited.
    II,
}
