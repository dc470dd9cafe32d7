//! The barrier hook's view of a quiescent machine.

use crate::message::Message;
use crate::partition::Partition;
use crate::phases::PhaseCell;
use crate::run::{min_opt, Slot};
use crate::time::{Cycle, PartitionId};

/// The barrier hook's view of a quiescent machine.
pub struct BarrierCtx<'a, P: Partition> {
    pub(crate) slots: &'a [PhaseCell<Slot<P>>],
    pub(crate) now: Cycle,
    pub(crate) epoch: u64,
    pub(crate) stop: Option<String>,
    pub(crate) wake: Option<Cycle>,
    /// Partitions the hook changed: their due cycles are re-read after it.
    pub(crate) touched: &'a mut Vec<usize>,
    pub(crate) ran: &'a [PartitionId],
    pub(crate) barrier_seq: &'a mut u64,
}

impl<P: Partition> std::fmt::Debug for BarrierCtx<'_, P> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BarrierCtx")
            .field("now", &self.now)
            .field("epoch", &self.epoch)
            .finish()
    }
}

impl<P: Partition> BarrierCtx<'_, P> {
    /// End of the epoch just finished.
    pub fn now(&self) -> Cycle {
        self.now
    }

    /// Epochs run so far in this run.
    pub fn epoch(&self) -> u64 {
        self.epoch
    }

    /// Number of partitions.
    pub fn len(&self) -> usize {
        self.slots.len()
    }

    /// Always false: an engine has at least one partition.
    pub fn is_empty(&self) -> bool {
        self.slots.is_empty()
    }

    /// The partitions that ran in the epoch just finished, in ascending id
    /// order (partitions with nothing due were not run). Every change to a
    /// partition's state happens in an epoch it ran in or through this
    /// context, so a hook that inspects partitions can look at these only.
    pub fn ran(&self) -> &[PartitionId] {
        self.ran
    }

    /// A partition, read-only.
    pub fn partition(&self, id: PartitionId) -> &P {
        // SAFETY: serial phase; the returned borrow is tied to &self, so no
        // mutable borrow from this context can coexist with it.
        &unsafe { self.slots[id.index()].get() }.part
    }

    /// A partition, mutably; its next activity is re-read afterwards.
    pub fn partition_mut(&mut self, id: PartitionId) -> &mut P {
        self.touched.push(id.index());
        // SAFETY: serial phase; the borrow is tied to &mut self.
        &mut unsafe { self.slots[id.index()].get() }.part
    }

    /// Delivers `payload` to `dst` at `time` (≥ now) from
    /// [`PartitionId::BARRIER`].
    pub fn inject(&mut self, dst: PartitionId, time: Cycle, payload: P::Msg) {
        assert!(
            time >= self.now,
            "injected message at {time} is in the past (now {})",
            self.now
        );
        let seq = *self.barrier_seq;
        *self.barrier_seq += 1;
        self.touched.push(dst.index());
        // SAFETY: serial phase.
        unsafe { self.slots[dst.index()].get() }
            .inbox
            .push(Message {
                time,
                src: PartitionId::BARRIER,
                seq,
                dst,
                payload,
            });
    }

    /// Stops the run at this barrier.
    pub fn stop(&mut self, reason: impl Into<String>) {
        self.stop = Some(reason.into());
    }

    /// Asks for a barrier no later than the first multiple of Q at or after
    /// `time` (exactly at `time` when Q divides it), even if every partition
    /// is idle (a hypervisor timer, say): the epoch holding cycle
    /// `time - 1` runs. It holds for this barrier's decision only: a hook
    /// that keeps a timer asks at every barrier.
    pub fn wake_at(&mut self, time: Cycle) {
        let before = Cycle(time.get().saturating_sub(1));
        self.wake = min_opt(self.wake, Some(before.max(self.now)));
    }
}
