//! Machine frames handed to domains.
//!
//! A bump allocator over one contiguous range of machine frames: frames are
//! given out in ascending order, so the same sequence of domain builds gives
//! the same MFNs on every run. Frames are not reused (domains are not
//! destroyed during a run).

use serde::{Deserialize, Serialize};
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
}

impl FrameAllocator {
    /// Frames `first .. first + count`.
    pub fn new(first: Mfn, count: u64) -> Self {
        FrameAllocator {
            next: first.0,
            end: first.0 + count,
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

    /// Frames not yet handed out.
    pub fn left(&self) -> u64 {
        self.end - self.next
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
}
