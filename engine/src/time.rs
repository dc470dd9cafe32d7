//! Simulated time and partition identities.

use serde::{Deserialize, Serialize};
use std::fmt;
use std::ops::{Add, AddAssign, Sub};

/// A point in simulated time: cycles of the one global clock since reset.
///
/// Other clock domains (DRAM) convert to cycles at their edges.
#[derive(
    Copy, Clone, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize,
)]
#[serde(transparent)]
pub struct Cycle(pub u64);

impl Cycle {
    /// Reset time.
    pub const ZERO: Cycle = Cycle(0);
    /// The end of time; used as "never".
    pub const MAX: Cycle = Cycle(u64::MAX);

    /// The raw cycle count.
    #[inline]
    pub const fn get(self) -> u64 {
        self.0
    }

    /// `self + d`, pinned at [`Cycle::MAX`] instead of overflowing.
    #[inline]
    pub const fn saturating_add(self, d: u64) -> Cycle {
        Cycle(self.0.saturating_add(d))
    }

    /// Cycles elapsed from `earlier` to `self`, or 0 if `earlier` is later.
    #[inline]
    pub const fn saturating_since(self, earlier: Cycle) -> u64 {
        self.0.saturating_sub(earlier.0)
    }
}

impl Add<u64> for Cycle {
    type Output = Cycle;
    #[inline]
    fn add(self, d: u64) -> Cycle {
        Cycle(
            self.0
                .checked_add(d)
                .expect("simulated time overflowed u64"),
        )
    }
}

impl AddAssign<u64> for Cycle {
    #[inline]
    fn add_assign(&mut self, d: u64) {
        *self = *self + d;
    }
}

/// The distance between two points in time, in cycles.
impl Sub<Cycle> for Cycle {
    type Output = u64;
    #[inline]
    fn sub(self, earlier: Cycle) -> u64 {
        self.0
            .checked_sub(earlier.0)
            .expect("time difference is negative")
    }
}

impl fmt::Display for Cycle {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0)
    }
}

/// Index of a partition in its engine, in the order partitions were added.
#[derive(
    Copy, Clone, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize,
)]
#[serde(transparent)]
pub struct PartitionId(pub u32);

impl PartitionId {
    /// The source id of messages injected by the barrier-phase hook; it
    /// orders after every real partition at equal time.
    pub const BARRIER: PartitionId = PartitionId(u32::MAX);

    /// The id as a vector index.
    #[inline]
    pub const fn index(self) -> usize {
        self.0 as usize
    }
}

impl fmt::Display for PartitionId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if *self == PartitionId::BARRIER {
            write!(f, "barrier")
        } else {
            write!(f, "p{}", self.0)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cycle_arithmetic() {
        let a = Cycle(10);
        assert_eq!(a + 5, Cycle(15));
        assert_eq!(Cycle(15) - a, 5);
        assert_eq!(Cycle::MAX.saturating_add(1), Cycle::MAX);
        assert_eq!(a.saturating_since(Cycle(20)), 0);
    }

    #[test]
    #[should_panic(expected = "negative")]
    fn negative_difference_panics() {
        let _ = Cycle(1) - Cycle(2);
    }

    #[test]
    fn barrier_source_orders_last() {
        assert!(PartitionId(7) < PartitionId::BARRIER);
        assert_eq!(PartitionId::BARRIER.to_string(), "barrier");
    }
}
