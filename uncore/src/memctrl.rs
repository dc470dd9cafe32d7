//! A memory-controller partition: one DRAM channel behind the L3 slices.
//!
//! Reads (`MemRead`) are answered with `MemData` to the requesting slice
//! when the DRAM model completes them; writebacks (`MemWrite`) occupy the
//! channel and are not answered. A request the channel's bounded queue
//! refuses waits here, in arrival order, and is offered again after each
//! step of the channel. Timing, scheduling and the DRAM statistics are the
//! [`crate::dram::DramChannel`]'s.

use crate::attach::Attached;
use crate::dram::{DramChannel, DramConfig, DramConfigError, DramRequest};
use crate::fabric::{Fabric, Port};
use crate::ids::{ChannelId, SliceId};
use crate::interconnect::Node;
use crate::msg::{MemMsg, MemPayload};
use crate::system::MemSystem;
use smpsim_engine::{CounterId, Cycle, EpochCtx, Partition, Stats, StatsBuilder};
use std::collections::VecDeque;
use std::sync::Arc;

/// One memory channel as a partition.
#[derive(Debug, serde::Serialize, serde::Deserialize)]
pub struct MemCtrl {
    id: ChannelId,
    chan: DramChannel,
    fabric: Attached<Arc<Fabric>>,
    port: Port,
    backlog: VecDeque<DramRequest>,
    backlogged: CounterId,
    now: Cycle,
}

impl MemCtrl {
    /// Channel `id` of `cfg`.
    pub fn new(
        id: ChannelId,
        cfg: &DramConfig,
        fabric: Arc<Fabric>,
    ) -> Result<Self, DramConfigError> {
        let mut b = StatsBuilder::new();
        let backlogged = b.counter(
            "mc.backlogged",
            "requests that found the channel's queue full and waited",
            "events",
        );
        Ok(MemCtrl {
            id,
            chan: DramChannel::new(cfg, id.0, b)?,
            port: Port::new(&fabric, Node::MemCtrl(id.0)),
            fabric: Attached::new(fabric),
            backlog: VecDeque::new(),
            backlogged,
            now: Cycle::ZERO,
        })
    }

    /// Re-attaches the shared fabric of `sys` after deserializing (see
    /// [`crate::attach`]); until then the controller panics when it runs.
    /// `sys` must be built from the config the controller was built with.
    pub fn attach(&mut self, sys: &MemSystem) {
        self.fabric.attach(Arc::clone(sys.fabric()));
    }

    /// The DRAM channel model.
    pub fn channel(&self) -> &DramChannel {
        &self.chan
    }

    /// Handles a request arriving at `now` (the channel has been advanced
    /// to `now`).
    fn request(&mut self, now: Cycle, msg: MemMsg) {
        let req = match msg {
            MemMsg::MemRead { slice, line } => DramRequest {
                line,
                write: false,
                tag: u64::from(slice.0),
            },
            MemMsg::MemWrite { slice, line } => DramRequest {
                line,
                write: true,
                tag: u64::from(slice.0),
            },
            other => panic!("{:?} received {other:?}", self.id),
        };
        if self.backlog.is_empty() && self.chan.enqueue(now, req).is_ok() {
            return;
        }
        self.chan.stats_mut().inc(self.backlogged);
        self.backlog.push_back(req);
    }

    /// Runs the channel up to `until`, answering completed reads. While
    /// requests wait for queue room it steps event by event, so each one
    /// enters the cycle after a slot frees.
    fn step(&mut self, until: Cycle) {
        while until > self.now {
            let bound = match self.chan.next_event() {
                Some(e) if !self.backlog.is_empty() && e < until => (e + 1).max(self.now + 1),
                _ => until,
            };
            for c in self.chan.advance(bound) {
                if !c.write {
                    let slice = SliceId(u32::try_from(c.tag).expect("tag is a slice id"));
                    let msg = MemMsg::MemData { line: c.line };
                    self.port
                        .send(&self.fabric, c.time, 0, Node::L3Slice(slice.0), msg);
                }
            }
            self.now = bound;
            self.drain_backlog();
        }
    }

    fn drain_backlog(&mut self) {
        while let Some(&req) = self.backlog.front() {
            if !self.chan.can_accept(req.write) {
                break;
            }
            self.chan
                .enqueue(self.now, req)
                .expect("can_accept said yes");
            self.backlog.pop_front();
        }
    }

    /// Runs one epoch as a partition.
    pub fn run_epoch<M: MemPayload>(&mut self, ctx: &mut EpochCtx<'_, M>) {
        while let Some(m) = ctx.pop_due() {
            let now = m.time.max(self.now).max(ctx.epoch_start());
            self.step(now);
            let msg = m
                .payload
                .into_mem()
                .unwrap_or_else(|_| panic!("{:?} got a non-memory message", self.id));
            self.request(now, msg);
        }
        self.step(ctx.epoch_end());
        self.port.flush(ctx);
    }

    /// The earliest cycle the channel has something to do.
    pub fn next_activity(&self) -> Option<Cycle> {
        if self.backlog.is_empty() {
            self.chan.next_event()
        } else {
            Some(self.now)
        }
    }
}

impl Partition for MemCtrl {
    type Msg = MemMsg;
    fn run_epoch(&mut self, ctx: &mut EpochCtx<'_, MemMsg>) {
        MemCtrl::run_epoch(self, ctx);
    }
    fn next_activity(&self) -> Option<Cycle> {
        MemCtrl::next_activity(self)
    }
    fn stats(&self) -> &Stats {
        self.chan.stats()
    }
}
