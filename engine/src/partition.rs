//! The partition contract and the context a partition runs an epoch in.

use crate::message::{Inbox, Message};
use crate::stats::Stats;
use crate::time::{Cycle, PartitionId};
use crate::topology::LinkTable;

/// A unit of simulated state run by one host thread at a time.
///
/// The engine calls [`Partition::run_epoch`] for every epoch in which the
/// partition has something to do (its own work or a message), then asks
/// [`Partition::next_activity`]. Inside `run_epoch` the partition advances
/// its state through `[ctx.epoch_start(), ctx.epoch_end())`, consuming the
/// messages the context hands out in `(time, src, seq)` order interleaved
/// with its own events, and sends messages through the context.
///
/// In lax mode (quantum > lookahead) a message may be handed out with a time
/// earlier than the partition's own clock; the partition applies it at its
/// current time (`max(msg.time, now)`). In exact mode that never happens.
pub trait Partition: Send {
    /// The payload type of the messages partitions exchange.
    type Msg: Send;

    /// Advances through one epoch.
    fn run_epoch(&mut self, ctx: &mut EpochCtx<'_, Self::Msg>);

    /// The earliest cycle at which this partition has work of its own,
    /// leaving its inbox aside; `None` if it has none until a message comes.
    /// A value before the current epoch's end means "run me next epoch".
    fn next_activity(&self) -> Option<Cycle>;

    /// This partition's statistics.
    fn stats(&self) -> &Stats;

    /// A second block of statistics the partition owns (for example a core
    /// model's, kept apart from its caches'); reported in the same
    /// partition section as [`Partition::stats`]. Names must not collide.
    fn more_stats(&self) -> Option<&Stats> {
        None
    }
}

/// What the engine needs to know about a partition besides its state.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PartitionSpec {
    /// Unique name for reports and diagnostics (for example `core3`).
    pub name: String,
    /// Group its statistics are merged into (for example `core`).
    pub group: String,
    /// Whether it is a core (per-core scheduling gives each core a thread).
    pub is_core: bool,
}

impl PartitionSpec {
    /// A core partition.
    pub fn core(name: impl Into<String>, group: impl Into<String>) -> Self {
        PartitionSpec {
            name: name.into(),
            group: group.into(),
            is_core: true,
        }
    }

    /// A non-core partition (cache slice, memory channel, …).
    pub fn uncore(name: impl Into<String>, group: impl Into<String>) -> Self {
        PartitionSpec {
            name: name.into(),
            group: group.into(),
            is_core: false,
        }
    }
}

/// Messages one host thread sent in one epoch, bucketed by the host thread
/// that owns each destination.
#[derive(Debug)]
pub(crate) struct Outbox<M> {
    pub(crate) buckets: Vec<Vec<Message<M>>>,
    pub(crate) min_time: Cycle,
    pub(crate) sent: u64,
}

impl<M> Outbox<M> {
    pub(crate) fn new(threads: usize) -> Self {
        Outbox {
            buckets: (0..threads).map(|_| Vec::new()).collect(),
            min_time: Cycle::MAX,
            sent: 0,
        }
    }
}

/// A partition's view of the engine during one epoch.
#[derive(Debug)]
pub struct EpochCtx<'a, M> {
    pub(crate) id: PartitionId,
    pub(crate) start: Cycle,
    pub(crate) end: Cycle,
    pub(crate) inbox: &'a mut Inbox<M>,
    pub(crate) out: &'a mut Outbox<M>,
    pub(crate) links: &'a LinkTable,
    pub(crate) owner: &'a [u32],
    pub(crate) seq: &'a mut u64,
}

impl<M> EpochCtx<'_, M> {
    /// This partition's id.
    #[inline]
    pub fn id(&self) -> PartitionId {
        self.id
    }

    /// First cycle of the epoch.
    #[inline]
    pub fn epoch_start(&self) -> Cycle {
        self.start
    }

    /// First cycle after the epoch: nothing at or past it may be processed.
    #[inline]
    pub fn epoch_end(&self) -> Cycle {
        self.end
    }

    /// Arrival time of the next message, whether or not it is due.
    #[inline]
    pub fn peek_time(&self) -> Option<Cycle> {
        self.inbox.peek_time()
    }

    /// The next message if it arrives before `limit` (clipped to the
    /// epoch's end).
    #[inline]
    pub fn pop_before(&mut self, limit: Cycle) -> Option<Message<M>> {
        self.inbox.pop_before(limit.min(self.end))
    }

    /// The next message due in this epoch.
    #[inline]
    pub fn pop_due(&mut self) -> Option<Message<M>> {
        self.inbox.pop_before(self.end)
    }

    /// Latency of the link from this partition to `dst`, if there is one.
    #[inline]
    pub fn latency_to(&self, dst: PartitionId) -> Option<u64> {
        self.links.latency(self.id, dst)
    }

    /// Sends `payload` to `dst` at cycle `at` (within this epoch); it arrives
    /// after the link latency. Returns the arrival time.
    ///
    /// # Panics
    /// If there is no link to `dst` or `at` lies outside the epoch: both are
    /// simulator bugs, caught at the partition boundary.
    #[inline]
    pub fn send(&mut self, dst: PartitionId, at: Cycle, payload: M) -> Cycle {
        self.send_delayed(dst, at, 0, payload)
    }

    /// Like [`EpochCtx::send`] with `extra` cycles on top of the link
    /// latency (queueing, occupancy).
    pub fn send_delayed(&mut self, dst: PartitionId, at: Cycle, extra: u64, payload: M) -> Cycle {
        assert!(
            at >= self.start && at < self.end,
            "{} sent at cycle {at} outside its epoch [{}, {})",
            self.id,
            self.start,
            self.end
        );
        let latency = self.links.latency(self.id, dst).unwrap_or_else(|| {
            panic!("{} sent to {dst} without a link", self.id);
        });
        let time = at + latency + extra;
        let seq = *self.seq;
        *self.seq += 1;
        let bucket = self.owner[dst.index()] as usize;
        self.out.buckets[bucket].push(Message {
            time,
            src: self.id,
            seq,
            dst,
            payload,
        });
        self.out.min_time = self.out.min_time.min(time);
        self.out.sent += 1;
        time
    }
}
