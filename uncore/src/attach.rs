//! Shared handles a partition holds but does not own, and their re-attach
//! after a partition's state is deserialized.
//!
//! The fabric, machine memory and the ownership table are shared by every
//! partition of a machine ([`MemSystem`](crate::MemSystem) hands them
//! out); they are not part of a partition's state, so a checkpoint skips
//! them. A partition keeps each in an [`Attached`]: set when the partition
//! is built, empty after deserializing, set again by the partition's
//! `attach(&MemSystem)`. Using an empty one is a simulator bug and panics
//! with what was missing, so a deserialized partition cannot run
//! half-attached.

use serde::{Deserialize, Deserializer, Serialize, Serializer};
use std::fmt;
use std::ops::Deref;

/// A shared handle, absent between deserializing and `attach`. It
/// serializes as nothing (a unit) and deserializes empty.
pub struct Attached<T> {
    handle: Option<T>,
}

impl<T> Attached<T> {
    /// An attached handle.
    pub fn new(handle: T) -> Self {
        Attached {
            handle: Some(handle),
        }
    }

    /// Attaches (or replaces) the handle.
    pub fn attach(&mut self, handle: T) {
        self.handle = Some(handle);
    }

    /// Whether the handle is present.
    pub fn is_attached(&self) -> bool {
        self.handle.is_some()
    }
}

impl<T> Deref for Attached<T> {
    type Target = T;

    fn deref(&self) -> &T {
        match &self.handle {
            Some(h) => h,
            None => panic!(
                "{} used before attach: a deserialized partition must be attached to its \
                 MemSystem (attach) before it runs",
                std::any::type_name::<T>()
            ),
        }
    }
}

impl<T> fmt::Debug for Attached<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let state = if self.is_attached() {
            "attached"
        } else {
            "detached"
        };
        write!(f, "{}({state})", std::any::type_name::<T>())
    }
}

impl<T> Serialize for Attached<T> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_unit()
    }
}

impl<'de, T> Deserialize<'de> for Attached<T> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        <()>::deserialize(d)?;
        Ok(Attached { handle: None })
    }
}
