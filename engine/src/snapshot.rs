//! The engine's own state at a barrier, for checkpoints: simulated time,
//! the messages in flight, every partition's message sequence number.
//! Partition states are saved by their owner (the engine does not know
//! their types' codecs); a restored engine gets them back through
//! [`Engine::partition_mut`].

use super::{Engine, Partition};
use crate::message::Message;
use crate::time::Cycle;
use serde::{Deserialize, Serialize};

/// What [`Engine::snapshot`] saves.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct EngineSnapshot<M> {
    /// Simulated time: the end of the last epoch run.
    pub now: Cycle,
    /// The barrier's own message sequence (hook injections).
    pub barrier_seq: u64,
    /// Each partition's next message sequence number, by id.
    pub seqs: Vec<u64>,
    /// Every message not yet consumed, in (destination, time, source,
    /// sequence) order.
    pub messages: Vec<Message<M>>,
}

impl<P: Partition> Engine<P>
where
    P::Msg: Clone,
{
    /// The engine's state between runs (at a barrier): delivered messages
    /// still waiting in inboxes and those sent in the last epoch, not yet
    /// delivered, alike.
    pub fn snapshot(&self) -> EngineSnapshot<P::Msg> {
        let mut messages: Vec<Message<P::Msg>> = self
            .slots
            .iter()
            .flat_map(|s| s.inbox.iter().cloned())
            .collect();
        for w in &self.outboxes {
            for out in w {
                for b in &out.buckets {
                    messages.extend(b.iter().cloned());
                }
            }
        }
        messages.sort_by_key(|m| (m.dst, m.time, m.src, m.seq));
        EngineSnapshot {
            now: self.now,
            barrier_seq: self.barrier_seq,
            seqs: self.slots.iter().map(|s| s.seq).collect(),
            messages,
        }
    }

    /// Puts an engine built like the saved one (same partitions, links and
    /// placement rules; any host-thread count or quantum) at the saved
    /// time with the saved messages in flight: each goes straight to its
    /// destination's inbox, which is where the next epoch would have put
    /// it before any partition ran.
    ///
    /// # Errors
    /// When the snapshot's partition count or a message's destination does
    /// not fit this engine.
    pub fn restore(&mut self, snap: EngineSnapshot<P::Msg>) -> Result<(), String> {
        if snap.seqs.len() != self.slots.len() {
            return Err(format!(
                "the checkpoint has {} partitions, this machine {}",
                snap.seqs.len(),
                self.slots.len()
            ));
        }
        for w in &mut self.outboxes {
            for out in w {
                for b in &mut out.buckets {
                    b.clear();
                }
                out.min_time = Cycle::MAX;
                out.sent = 0;
            }
        }
        for (slot, seq) in self.slots.iter_mut().zip(snap.seqs) {
            slot.inbox.clear();
            slot.seq = seq;
        }
        for m in snap.messages {
            let slot = self
                .slots
                .get_mut(m.dst.index())
                .ok_or_else(|| format!("a checkpointed message goes to missing {}", m.dst))?;
            slot.inbox.push(m);
        }
        self.now = snap.now;
        self.barrier_seq = snap.barrier_seq;
        Ok(())
    }

    /// Asks the next [`Engine::run`] to hold a barrier no later than the
    /// first multiple of the quantum at or after `time`, as
    /// [`crate::BarrierCtx::wake_at`] does for the barrier that calls it
    /// (a run that stopped at a barrier, or a restored one, resumes a
    /// timer the hook would have asked for there).
    pub fn wake_at(&mut self, time: Cycle) {
        let before = Cycle(time.get().saturating_sub(1)).max(self.now);
        self.wake = Some(self.wake.map_or(before, |w| w.min(before)));
    }
}
