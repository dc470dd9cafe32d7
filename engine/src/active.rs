//! The active set of one host thread: its partitions keyed by the cycle of
//! their next work, so an epoch visits only the partitions due in it.
//!
//! Each partition slot holds its `due` cycle (the earliest of its own next
//! activity and its inbox head, `None` when it waits for a message). The
//! set is a min-heap of `(due, partition)` with lazy invalidation: an entry
//! is live while the slot's `due` still equals the entry's cycle; changing
//! `due` pushes a new entry and leaves the old one to be discarded when it
//! surfaces. When stale entries outnumber live ones by more than the
//! thread's partition count, the heap is rebuilt from the slots (amortized
//! O(1) per push, memory bounded by three entries per partition).
//!
//! Cost per epoch: O(k log h) for the k partitions due, nothing for the
//! others.

use crate::time::Cycle;
use std::cmp::Reverse;
use std::collections::BinaryHeap;

/// One host thread's partitions by next due cycle.
#[derive(Debug, Default)]
pub(crate) struct ActiveSet {
    heap: BinaryHeap<Reverse<(Cycle, u32)>>,
    /// Owned slots whose `due` is `Some` (each has a live entry).
    live: usize,
    /// The partitions taken to run in the current epoch, ascending id;
    /// after the epoch, the ones that ran (read by the serial phase).
    pub(crate) run: Vec<u32>,
}

impl ActiveSet {
    /// Sets slot `i`'s due cycle to `new`, queueing it if it changed.
    #[inline]
    pub(crate) fn set_due(&mut self, due: &mut Option<Cycle>, i: u32, new: Option<Cycle>) {
        if *due == new {
            return;
        }
        match (due.is_some(), new) {
            (false, Some(_)) => self.live += 1,
            (true, None) => self.live -= 1,
            _ => {}
        }
        *due = new;
        if let Some(t) = new {
            self.heap.push(Reverse((t, i)));
        }
    }

    /// A message for slot `i` arrives at `time`: it is due no later.
    #[inline]
    pub(crate) fn note_arrival(&mut self, due: &mut Option<Cycle>, i: u32, time: Cycle) {
        if due.is_none_or(|d| time < d) {
            self.set_due(due, i, Some(time));
        }
    }

    /// Takes every partition due before `end` into [`ActiveSet::run`]
    /// (ascending id), clearing their due cycles; `with_due(i, f)` calls
    /// `f` on slot `i`'s due cycle.
    pub(crate) fn take_due(
        &mut self,
        end: Cycle,
        mut with_due: impl FnMut(u32, &mut dyn FnMut(&mut Option<Cycle>)),
    ) {
        self.run.clear();
        while let Some(&Reverse((t, i))) = self.heap.peek() {
            if t >= end {
                break;
            }
            self.heap.pop();
            let mut live = false;
            with_due(i, &mut |due| {
                live = *due == Some(t);
                if live {
                    *due = None;
                }
            });
            if live {
                self.live -= 1;
                self.run.push(i);
            }
        }
        self.run.sort_unstable();
    }

    /// The earliest due cycle of the set (discarding stale entries on top).
    pub(crate) fn earliest(&mut self, due_of: impl Fn(u32) -> Option<Cycle>) -> Option<Cycle> {
        while let Some(&Reverse((t, i))) = self.heap.peek() {
            if due_of(i) == Some(t) {
                return Some(t);
            }
            self.heap.pop();
        }
        None
    }

    /// Whether stale entries are numerous enough to rebuild, for a thread
    /// owning `owned` partitions.
    #[inline]
    pub(crate) fn wants_rebuild(&self, owned: usize) -> bool {
        self.heap.len() > 2 * self.live + owned + 16
    }

    /// Rebuilds from `(partition, due)` of every partition the thread owns
    /// (the run list is left alone).
    pub(crate) fn rebuild(&mut self, owned: impl Iterator<Item = (u32, Option<Cycle>)>) {
        self.heap.clear();
        self.live = 0;
        for (i, due) in owned {
            if let Some(t) = due {
                self.heap.push(Reverse((t, i)));
                self.live += 1;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_due_partitions_are_taken_once_in_id_order() {
        let mut set = ActiveSet::default();
        let mut due = [None; 4];
        set.set_due(&mut due[3], 3, Some(Cycle(5)));
        set.set_due(&mut due[1], 1, Some(Cycle(2)));
        set.set_due(&mut due[2], 2, Some(Cycle(50)));
        // 2 moves earlier, then back: two entries at 50, one live.
        set.set_due(&mut due[2], 2, Some(Cycle(7)));
        set.set_due(&mut due[2], 2, Some(Cycle(50)));
        set.note_arrival(&mut due[0], 0, Cycle(9));
        set.note_arrival(&mut due[0], 0, Cycle(12)); // later: no change
        let mut d = due;
        set.take_due(Cycle(10), |i, f| f(&mut d[i as usize]));
        assert_eq!(set.run, vec![0, 1, 3]);
        assert_eq!(d, [None, None, Some(Cycle(50)), None]);
        assert_eq!(set.earliest(|i| d[i as usize]), Some(Cycle(50)));
        set.take_due(Cycle(100), |i, f| f(&mut d[i as usize]));
        assert_eq!(set.run, vec![2]);
        assert_eq!(set.earliest(|i| d[i as usize]), None);
        assert!(!set.wants_rebuild(4));
    }
}
