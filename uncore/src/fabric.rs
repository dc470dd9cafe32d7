//! The fabric: which partition each component is, where lines live, and
//! sending memory messages over the interconnect.
//!
//! Partition ids are laid out in one fixed order, starting at `first`:
//! cores `0..C`, then L3 slices `0..S`, then memory channels `0..K`. A
//! machine assembler must add its partitions in that order (the core
//! partitions first) and declare [`Fabric::links`] with the engine.

use crate::dram::DramConfig;
use crate::ids::{ChannelId, CoreId, SliceId};
use crate::interconnect::{
    InjectionPort, Interconnect, InterconnectConfig, InterconnectError, Node, NodeCounts,
};
use crate::memory::LineAddr;
use crate::msg::{MemMsg, MemPayload};
use smpsim_engine::{Cycle, EpochCtx, PartitionId};

/// Component ↔ partition mapping, address interleaving and link latencies.
#[derive(Debug)]
pub struct Fabric {
    counts: NodeCounts,
    first: u32,
    ic: Interconnect,
    dram: DramConfig,
}

impl Fabric {
    /// A fabric for `cores` cores, `slices` L3 slices and the DRAM's
    /// channels, with partition ids starting at `first`.
    pub fn new(
        ic: &InterconnectConfig,
        dram: &DramConfig,
        cores: u32,
        slices: u32,
        first: PartitionId,
    ) -> Result<Self, InterconnectError> {
        let counts = NodeCounts {
            cores,
            l3_slices: slices,
            mem_ctrls: dram.channels,
        };
        Ok(Fabric {
            counts,
            first: first.0,
            ic: Interconnect::new(ic, counts)?,
            dram: dram.clone(),
        })
    }

    /// Node counts.
    pub fn counts(&self) -> NodeCounts {
        self.counts
    }

    /// The interconnect model.
    pub fn interconnect(&self) -> &Interconnect {
        &self.ic
    }

    /// The DRAM configuration (its channel interleaving is used here).
    pub fn dram(&self) -> &DramConfig {
        &self.dram
    }

    /// Partition of a core.
    pub fn core_pid(&self, c: CoreId) -> PartitionId {
        PartitionId(self.first + c.0)
    }

    /// Partition of an L3 slice.
    pub fn slice_pid(&self, s: SliceId) -> PartitionId {
        PartitionId(self.first + self.counts.cores + s.0)
    }

    /// Partition of a memory channel.
    pub fn channel_pid(&self, k: ChannelId) -> PartitionId {
        PartitionId(self.first + self.counts.cores + self.counts.l3_slices + k.0)
    }

    /// Total partitions of the memory system (cores included).
    pub fn partitions(&self) -> u32 {
        self.counts.cores + self.counts.l3_slices + self.counts.mem_ctrls
    }

    /// The interconnect node of a partition of this fabric.
    pub fn node_of(&self, p: PartitionId) -> Node {
        let i =
            p.0.checked_sub(self.first)
                .expect("partition belongs to the fabric");
        let (c, s) = (self.counts.cores, self.counts.l3_slices);
        if i < c {
            Node::Core(i)
        } else if i < c + s {
            Node::L3Slice(i - c)
        } else {
            assert!(
                i < self.partitions(),
                "{p} is not a memory-system partition"
            );
            Node::MemCtrl(i - c - s)
        }
    }

    /// The partition of a node.
    pub fn pid_of(&self, n: Node) -> PartitionId {
        match n {
            Node::Core(i) => self.core_pid(CoreId(i)),
            Node::L3Slice(i) => self.slice_pid(SliceId(i)),
            Node::MemCtrl(i) => self.channel_pid(ChannelId(i)),
        }
    }

    /// The home slice of a line (line-interleaved).
    pub fn home(&self, line: LineAddr) -> SliceId {
        let s = line.get() % u64::from(self.counts.l3_slices);
        SliceId(u32::try_from(s).expect("slice index < slice count"))
    }

    /// The memory channel of a line (the DRAM config's interleaving).
    pub fn channel(&self, line: LineAddr) -> ChannelId {
        ChannelId(self.dram.channel_of(line))
    }

    /// Every link the memory system needs: each core with each slice,
    /// each slice with each channel, both ways, at the interconnect's
    /// unloaded head latency.
    pub fn links(&self) -> Vec<(PartitionId, PartitionId, u64)> {
        let cores = (0..self.counts.cores).map(Node::Core);
        let slices: Vec<Node> = (0..self.counts.l3_slices).map(Node::L3Slice).collect();
        let chans: Vec<Node> = (0..self.counts.mem_ctrls).map(Node::MemCtrl).collect();
        let mut pairs = Vec::new();
        for c in cores {
            pairs.extend(slices.iter().map(|&s| (c, s)));
        }
        for &s in &slices {
            pairs.extend(chans.iter().map(|&k| (s, k)));
        }
        let mut links = Vec::with_capacity(pairs.len() * 2);
        for (a, b) in pairs {
            for (x, y) in [(a, b), (b, a)] {
                links.push((self.pid_of(x), self.pid_of(y), self.ic.head_latency(x, y)));
            }
        }
        links
    }

    /// Unloaded latency of a message of `bytes` from `a` to `b`.
    pub fn latency(&self, a: Node, b: Node, bytes: u64) -> u64 {
        self.ic.latency(a, b, bytes)
    }
}

/// A message waiting to be handed to the engine.
#[derive(Clone, Debug, serde::Serialize, serde::Deserialize)]
struct Outgoing {
    dst: PartitionId,
    at: Cycle,
    extra: u64,
    msg: MemMsg,
}

/// A partition's sending side: its interconnect injection port, per
/// destination FIFO order, and the messages produced since the last flush.
///
/// Links are FIFO per (source, destination): a message never overtakes an
/// earlier one to the same destination, whatever extra delay (processing
/// latency) either carries. The protocol relies on this.
#[derive(Debug, serde::Serialize, serde::Deserialize)]
pub struct Port {
    node: Node,
    inj: InjectionPort,
    last_arrival: Vec<Cycle>,
    pending: Vec<Outgoing>,
}

impl Port {
    /// The port of the component at `node`.
    pub fn new(fabric: &Fabric, node: Node) -> Self {
        let n = usize::try_from(fabric.first + fabric.partitions())
            .expect("partition count fits usize");
        Port {
            node,
            inj: InjectionPort::default(),
            last_arrival: vec![Cycle::ZERO; n],
            pending: Vec::new(),
        }
    }

    /// Sends `msg` to `dst`, leaving after `delay` cycles of processing
    /// from `now`; returns its arrival time.
    pub fn send(
        &mut self,
        fabric: &Fabric,
        now: Cycle,
        delay: u64,
        dst: Node,
        msg: MemMsg,
    ) -> Cycle {
        let t = fabric
            .ic
            .transfer(&mut self.inj, now + delay, self.node, dst, msg.bytes());
        let pid = fabric.pid_of(dst);
        let slot = &mut self.last_arrival[pid.index()];
        let arrive = t.arrive.max(*slot);
        *slot = arrive;
        let head = fabric.ic.head_latency(self.node, dst);
        self.pending.push(Outgoing {
            dst: pid,
            at: now,
            extra: arrive - now - head,
            msg,
        });
        arrive
    }

    /// Whether messages wait to be flushed.
    pub fn has_pending(&self) -> bool {
        !self.pending.is_empty()
    }

    /// Hands every pending message to the engine.
    pub fn flush<M: MemPayload>(&mut self, ctx: &mut EpochCtx<'_, M>) {
        for o in self.pending.drain(..) {
            ctx.send_delayed(o.dst, o.at, o.extra, M::from_mem(o.msg));
        }
    }

    /// Takes the pending messages as `(destination, arrival, message)`
    /// (tests drive controllers without an engine).
    pub fn take(&mut self, fabric: &Fabric) -> Vec<(Node, Cycle, MemMsg)> {
        self.pending
            .drain(..)
            .map(|o| {
                let dst = fabric.node_of(o.dst);
                let head = fabric.ic.head_latency(self.node, dst);
                (dst, o.at + head + o.extra, o.msg)
            })
            .collect()
    }
}
