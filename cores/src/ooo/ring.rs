//! A growable ring of uop sequence numbers: the pipeline's in-order queues
//! (fetch buffer, ROB, load and store queues) without `VecDeque`'s
//! general wrap-around arithmetic (the capacity is a power of two, an
//! index is one mask).

use serde::{Deserialize, Serialize};

/// A FIFO of `u64`s that can also be trimmed from the back (squashes).
#[derive(Clone, Debug, Serialize, Deserialize)]
pub(super) struct Ring {
    /// Power-of-two capacity.
    buf: Vec<u64>,
    head: usize,
    len: usize,
}

impl Ring {
    /// An empty ring.
    pub(super) fn new() -> Self {
        Self {
            buf: vec![0; 16],
            head: 0,
            len: 0,
        }
    }

    #[inline(always)]
    fn at(&self, k: usize) -> usize {
        (self.head + k) & (self.buf.len() - 1)
    }

    /// Entries held.
    #[inline(always)]
    pub(super) fn len(&self) -> usize {
        self.len
    }

    /// The oldest entry.
    #[inline(always)]
    pub(super) fn front(&self) -> Option<&u64> {
        (self.len != 0).then(|| &self.buf[self.head])
    }

    /// The youngest entry.
    #[inline(always)]
    pub(super) fn back(&self) -> Option<&u64> {
        (self.len != 0).then(|| &self.buf[self.at(self.len - 1)])
    }

    /// Appends `v` as the youngest entry.
    #[inline(always)]
    pub(super) fn push_back(&mut self, v: u64) {
        if self.len == self.buf.len() {
            self.grow();
        }
        let i = self.at(self.len);
        self.buf[i] = v;
        self.len += 1;
    }

    /// Removes the oldest entry.
    #[inline(always)]
    pub(super) fn pop_front(&mut self) -> Option<u64> {
        if self.len == 0 {
            return None;
        }
        let v = self.buf[self.head];
        self.head = self.at(1);
        self.len -= 1;
        Some(v)
    }

    /// Removes the youngest entry.
    #[inline(always)]
    pub(super) fn pop_back(&mut self) -> Option<u64> {
        if self.len == 0 {
            return None;
        }
        self.len -= 1;
        Some(self.buf[self.at(self.len)])
    }

    /// The `k`-th oldest entry (`k < len`).
    #[inline(always)]
    pub(super) fn get(&self, k: usize) -> u64 {
        debug_assert!(k < self.len);
        self.buf[self.at(k)]
    }

    /// Oldest to youngest.
    pub(super) fn iter(&self) -> impl DoubleEndedIterator<Item = &u64> + '_ {
        (0..self.len).map(move |k| &self.buf[self.at(k)])
    }

    fn grow(&mut self) {
        let mut buf = Vec::with_capacity(self.buf.len() * 2);
        buf.extend(self.iter().copied());
        buf.resize(self.buf.len() * 2, 0);
        self.buf = buf;
        self.head = 0;
    }
}

#[cfg(test)]
mod tests {
    use super::Ring;
    use std::collections::VecDeque;

    #[test]
    fn ring_behaves_as_a_deque_across_growth_and_wrap() {
        let mut r = Ring::new();
        let mut d = VecDeque::new();
        let mut x = 1u64;
        for step in 0..5000u64 {
            x = x
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            match (x >> 60) % 4 {
                0 | 1 => {
                    r.push_back(step);
                    d.push_back(step);
                }
                2 => assert_eq!(r.pop_front(), d.pop_front()),
                _ => assert_eq!(r.pop_back(), d.pop_back()),
            }
            assert_eq!(r.len(), d.len());
            assert_eq!(r.front(), d.front());
            assert_eq!(r.back(), d.back());
            assert!(r.iter().eq(d.iter()));
            assert!(r.iter().rev().eq(d.iter().rev()));
        }
    }
}
