//! Machine frames handed to domains.
//!
//! A bump allocator over one contiguous range of machine frames, plus a
//! free pool of frames domains gave back (`memory_op` decrease_reservation,
//! exchange). The domain builder takes fresh frames in ascending order;
//! frames for a growing domain come from the pool first, lowest MFN first,
//! then fresh ones. Either way the order depends only on the sequence of
//! requests, so the same run gives the same MFNs every time.

use serde::{Deserialize, Serialize};
use std::collections::BTreeSet;
use std::fmt;

use crate::ids::Mfn;

/// Not enough machine frames left.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub struct OutOfFrames {
    /// Frames asked for.
    pub wanted: u64,
    /// Frames left.
    pub left: u64,
}

impl fmt::Display for OutOfFrames {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "machine memory exhausted: {} frames wanted, {} left",
            self.wanted, self.left
        )
    }
}

impl std::error::Error for OutOfFrames {}

/// Hands out machine frames `[first, first + count)` in order.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct FrameAllocator {
    next: u64,
    end: u64,
    /// Frames given back, to be handed out again.
    free: BTreeSet<u64>,
}

impl FrameAllocator {
    /// Frames `first .. first + count`.
    pub fn new(first: Mfn, count: u64) -> Self {
        FrameAllocator {
            next: first.0,
            end: first.0 + count,
            free: BTreeSet::new(),
        }
    }

    /// `n` fresh frames, lowest first.
    pub fn alloc(&mut self, n: u64) -> Result<Vec<Mfn>, OutOfFrames> {
        let left = self.left();
        if n > left {
            return Err(OutOfFrames { wanted: n, left });
        }
        let v = (self.next..self.next + n).map(Mfn).collect();
        self.next += n;
        Ok(v)
    }

    /// One fresh frame.
    pub fn alloc_one(&mut self) -> Result<Mfn, OutOfFrames> {
        Ok(self.alloc(1)?[0])
    }

    /// Fresh frames not yet handed out (the free pool aside).
    pub fn left(&self) -> u64 {
        self.end - self.next
    }

    /// Frames that can still be handed out: fresh ones and the pool.
    pub fn available(&self) -> u64 {
        self.left() + self.free.len() as u64
    }

    /// An extent of `2^order` contiguous frames for a growing domain,
    /// aligned to its size and wholly below MFN `limit` (an address-width
    /// restriction; `u64::MAX` for none): the lowest such run in the pool,
    /// else fresh frames (those skipped to align go to the pool). Returns
    /// its first frame, or `None` when there is no such extent.
    pub fn take(&mut self, order: u32, limit: u64) -> Option<Mfn> {
        let n = 1u64.checked_shl(order)?;
        let run = self
            .free
            .iter()
            .copied()
            .filter(|m| m % n == 0)
            .take_while(|m| m.saturating_add(n) <= limit)
            .find(|&m| (m..m + n).all(|x| self.free.contains(&x)));
        if let Some(m) = run {
            for x in m..m + n {
                self.free.remove(&x);
            }
            return Some(Mfn(m));
        }
        let base = self.next.checked_next_multiple_of(n)?;
        let end = base.checked_add(n)?;
        if end > self.end || end > limit {
            return None;
        }
        self.free.extend(self.next..base);
        self.next = end;
        Some(Mfn(base))
    }

    /// Returns `mfn` to the pool.
    pub fn give_back(&mut self, mfn: Mfn) {
        debug_assert!(mfn.0 < self.next, "a frame that was never handed out");
        self.free.insert(mfn.0);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frames_come_in_order_until_exhausted() {
        let mut a = FrameAllocator::new(Mfn(0x100), 5);
        assert_eq!(a.alloc(2), Ok(vec![Mfn(0x100), Mfn(0x101)]));
        assert_eq!(a.alloc_one(), Ok(Mfn(0x102)));
        assert_eq!(a.alloc(3), Err(OutOfFrames { wanted: 3, left: 2 }));
        assert_eq!(a.left(), 2);
    }

    #[test]
    fn given_back_frames_go_out_again_lowest_first_and_respect_the_limit() {
        let mut a = FrameAllocator::new(Mfn(0x100), 5);
        a.alloc(3).expect("room");
        a.give_back(Mfn(0x102));
        a.give_back(Mfn(0x100));
        assert_eq!(a.available(), 4);
        assert_eq!(a.take(0, u64::MAX), Some(Mfn(0x100)));
        // Below 0x101 nothing is left: 0x102 is pooled, 0x103 fresh.
        assert_eq!(a.take(0, 0x101), None);
        assert_eq!(a.take(0, u64::MAX), Some(Mfn(0x102)));
        assert_eq!(a.take(0, u64::MAX), Some(Mfn(0x103)));
        assert_eq!(a.take(0, u64::MAX), Some(Mfn(0x104)));
        assert_eq!(a.take(0, u64::MAX), None);
        assert_eq!(a.available(), 0);
    }

    #[test]
    fn extents_are_aligned_runs_from_the_pool_or_fresh() {
        let mut a = FrameAllocator::new(Mfn(0x101), 0x20);
        // Fresh: 0x101..0x104 are skipped to the pool to align on 4.
        assert_eq!(a.take(2, u64::MAX), Some(Mfn(0x104)));
        assert_eq!(a.available(), 0x20 - 4);
        // The pool has 0x101..=0x103: no aligned pair but 0x102..0x104.
        assert_eq!(a.take(1, u64::MAX), Some(Mfn(0x102)));
        assert_eq!(a.take(0, u64::MAX), Some(Mfn(0x101)));
        for m in 0x104..0x108 {
            a.give_back(Mfn(m));
        }
        assert_eq!(a.take(2, u64::MAX), Some(Mfn(0x104)), "the run given back");
        assert_eq!(a.take(3, 0x110), Some(Mfn(0x108)));
        assert_eq!(a.take(3, 0x110), None, "0x110.. is above the limit");
        assert_eq!(a.take(3, u64::MAX), Some(Mfn(0x110)));
        assert_eq!(
            a.take(70, u64::MAX),
            None,
            "an order too large is no extent"
        );
    }
}
