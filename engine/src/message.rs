//! Typed messages between partitions and the ordered inbox.

use crate::time::{Cycle, PartitionId};
use std::cmp::Ordering;
use std::collections::BinaryHeap;

/// A message from one partition to another, delivered at a barrier.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Message<M> {
    /// Arrival time at the destination: send time plus link latency (plus
    /// any extra delay the sender asked for).
    pub time: Cycle,
    /// Sending partition ([`PartitionId::BARRIER`] for hook injections).
    pub src: PartitionId,
    /// Per-source sequence number, in send order.
    pub seq: u64,
    /// Destination partition.
    pub dst: PartitionId,
    /// What is being said.
    pub payload: M,
}

impl<M> Message<M> {
    /// The delivery order key: `(time, src, seq)`.
    #[inline]
    pub fn key(&self) -> (Cycle, PartitionId, u64) {
        (self.time, self.src, self.seq)
    }
}

/// Min-heap adapter: the smallest key is the greatest entry.
#[derive(Debug)]
struct Entry<M>(Message<M>);

impl<M> PartialEq for Entry<M> {
    fn eq(&self, other: &Self) -> bool {
        self.0.key() == other.0.key()
    }
}
impl<M> Eq for Entry<M> {}
impl<M> PartialOrd for Entry<M> {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}
impl<M> Ord for Entry<M> {
    fn cmp(&self, other: &Self) -> Ordering {
        other.0.key().cmp(&self.0.key())
    }
}

/// A partition's inbox: delivered messages, consumed in `(time, src, seq)`
/// order whatever order they were delivered in.
#[derive(Debug)]
pub struct Inbox<M> {
    heap: BinaryHeap<Entry<M>>,
}

impl<M> Default for Inbox<M> {
    fn default() -> Self {
        Inbox {
            heap: BinaryHeap::new(),
        }
    }
}

impl<M> Inbox<M> {
    /// Adds a delivered message.
    pub fn push(&mut self, m: Message<M>) {
        self.heap.push(Entry(m));
    }

    /// Arrival time of the next message, if any.
    #[inline]
    pub fn peek_time(&self) -> Option<Cycle> {
        self.heap.peek().map(|e| e.0.time)
    }

    /// Removes and returns the next message if it arrives before `limit`.
    #[inline]
    pub fn pop_before(&mut self, limit: Cycle) -> Option<Message<M>> {
        if self.peek_time()? < limit {
            self.heap.pop().map(|e| e.0)
        } else {
            None
        }
    }

    /// Number of messages waiting.
    pub fn len(&self) -> usize {
        self.heap.len()
    }

    /// Whether no message is waiting.
    pub fn is_empty(&self) -> bool {
        self.heap.is_empty()
    }

    /// The waiting messages, in no particular order (for checkpoints).
    pub fn iter(&self) -> impl Iterator<Item = &Message<M>> {
        self.heap.iter().map(|e| &e.0)
    }

    /// Drops every waiting message.
    pub fn clear(&mut self) {
        self.heap.clear();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn msg(time: u64, src: u32, seq: u64) -> Message<u32> {
        Message {
            time: Cycle(time),
            src: PartitionId(src),
            seq,
            dst: PartitionId(0),
            payload: 0,
        }
    }

    #[test]
    fn inbox_orders_by_time_src_seq() {
        let mut inbox = Inbox::default();
        for m in [msg(5, 1, 0), msg(5, 0, 1), msg(3, 2, 9), msg(5, 0, 0)] {
            inbox.push(m);
        }
        let order: Vec<_> = std::iter::from_fn(|| inbox.pop_before(Cycle::MAX))
            .map(|m| m.key())
            .collect();
        assert_eq!(
            order,
            vec![
                (Cycle(3), PartitionId(2), 9),
                (Cycle(5), PartitionId(0), 0),
                (Cycle(5), PartitionId(0), 1),
                (Cycle(5), PartitionId(1), 0),
            ]
        );
    }

    #[test]
    fn pop_before_respects_limit() {
        let mut inbox = Inbox::default();
        inbox.push(msg(10, 0, 0));
        assert!(inbox.pop_before(Cycle(10)).is_none());
        assert_eq!(inbox.pop_before(Cycle(11)).map(|m| m.time), Some(Cycle(10)));
        assert!(inbox.is_empty());
    }
}
