//! Interconnect: the latency of a message between two nodes of the chip.
//!
//! # What it models
//! Nodes are cores, L3 slices and memory-controller channels ([`Node`]).
//! Two topologies ([`TopologyKind`]):
//! - **crossbar**: every pair of nodes is `crossbar.latency` cycles apart;
//! - **mesh**: a `cols × rows` grid of tiles, each with a router; XY
//!   (dimension-order) routing, so `hops = |dx| + |dy|` and the head of a
//!   message arrives after
//!   `(hops + 1) × router_latency + hops × hop_latency` cycles
//!   (it crosses `hops + 1` routers, including the source's; two nodes on
//!   one tile are `router_latency` apart).
//!
//! A message of `bytes` bytes is `ceil(bytes / link_bytes_per_cycle)` flits
//! and is pipelined (wormhole): its tail arrives `flits - 1` cycles after
//! its head. So [`Interconnect::latency`]`(src, dst, bytes)` =
//! `head_latency(src, dst) + flits(bytes) - 1`. All of it is the
//! **unloaded** (idle) latency: it is what the latency self-test compares
//! measurements with.
//!
//! # Occupancy (bandwidth) and what is *not* modelled
//! The partition rule (DESIGN.md §2) lets a partition mutate only its own
//! state, so link occupancy is modelled at the **sender's injection port**:
//! each sending partition owns one [`InjectionPort`] and passes it to
//! [`Interconnect::transfer`]. Messages leaving one port serialize: a
//! message departs at `max(now, port free)` and holds the port for
//! `flits(bytes)` cycles. **Contention on links inside the mesh, at the
//! receiver's ejection port, and between different senders is not
//! modelled**: two cores streaming to one L3 slice do not slow each other
//! down in the network (they still queue at the slice and at DRAM, which
//! the owning partitions model). This is an optimistic approximation; it
//! keeps the model deterministic and partition-local.
//!
//! # Placement (mesh)
//! Tiles are numbered row-major: tile `t` is at `x = t % cols`,
//! `y = t / cols`. Unless the config lists tiles explicitly
//! (`core_tiles`, `slice_tiles`, `mc_tiles`):
//! - core `i` sits on tile `i % tiles`;
//! - L3 slice `j` on tile `j × tiles / slices` (so with as many slices as
//!   tiles, slice `j` shares core `j`'s tile);
//! - memory controllers sit on the west (`x = 0`) and east
//!   (`x = cols - 1`) edges, alternating (MC 0 west, MC 1 east, …), spread
//!   evenly down each edge: the `i`-th MC of an edge holding `n` of them is
//!   at `y = (2i + 1) × rows / (2n)`.
//!
//! `cols = rows = 0` (the default) sizes the mesh from
//! `n = max(cores, slices)`: `cols = ceil(sqrt(n))`, `rows = ceil(n / cols)`.
//!
//! # How to call it
//! ```
//! use smpsim_uncore::interconnect::*;
//! use smpsim_engine::Cycle;
//! let cfg = InterconnectConfig::default(); // auto-sized mesh, 2-cycle routers, 1-cycle hops
//! let ic = Interconnect::new(&cfg, NodeCounts { cores: 16, l3_slices: 16, mem_ctrls: 2 })?;
//! let lookahead = ic.min_latency(); // the smallest link latency you may declare
//! // Declare the engine link src→dst with `ic.head_latency(src, dst)`, then per message:
//! let mut port = InjectionPort::default(); // one per sending partition
//! let t = ic.transfer(&mut port, Cycle(100), Node::Core(0), Node::L3Slice(15), 72);
//! // ctx.send_delayed(dst_partition, Cycle(100), t.extra, msg) arrives at t.arrive
//! assert_eq!(t.arrive, Cycle(100) + ic.latency(Node::Core(0), Node::L3Slice(15), 72));
//! assert!(lookahead >= 1);
//! # Ok::<(), InterconnectError>(())
//! ```
//!
//! # Invariants
//! Every latency is ≥ 1 cycle (validated: `crossbar.latency ≥ 1`,
//! `mesh.router_latency ≥ 1`), so every link satisfies the engine's rule.
//! Pure functions of the config; no state except the caller's ports.
//!
//! # Errors
//! [`InterconnectError`] at build: zero latencies or bandwidth, a mesh with
//! one dimension given and not the other, explicit placements of the wrong
//! length or naming tiles outside the mesh.

mod config;

pub use config::{CrossbarConfig, InterconnectConfig, MeshConfig, TopologyKind};

use smpsim_engine::Cycle;
use thiserror::Error;

/// A place on the interconnect.
#[derive(
    Copy, Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, serde::Serialize, serde::Deserialize,
)]
pub enum Node {
    /// Core `n` (its private caches inject here).
    Core(u32),
    /// L3 slice `n` with its directory.
    L3Slice(u32),
    /// Memory-controller channel `n`.
    MemCtrl(u32),
}

/// How many nodes of each kind the machine has.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub struct NodeCounts {
    /// Number of cores.
    pub cores: u32,
    /// Number of L3 slices.
    pub l3_slices: u32,
    /// Number of memory-controller channels.
    pub mem_ctrls: u32,
}

/// A problem with the interconnect configuration.
#[derive(Debug, Error, Clone, PartialEq, Eq)]
pub enum InterconnectError {
    /// A latency that must be at least one cycle is zero.
    #[error(
        "interconnect.{key} = 0 is not allowed: every link needs a latency of at least 1 cycle"
    )]
    ZeroLatency {
        /// The config key.
        key: &'static str,
    },
    /// Links carry no data.
    #[error("interconnect.link_bytes_per_cycle = 0 is not allowed: links need at least 1 byte per cycle")]
    ZeroBandwidth,
    /// Only one of `cols` and `rows` was given.
    #[error("interconnect.mesh has cols = {cols}, rows = {rows}: give both (at least 1 each) or neither (0 = sized from the node counts)")]
    BadMeshSize {
        /// Configured columns.
        cols: u32,
        /// Configured rows.
        rows: u32,
    },
    /// An explicit placement list has the wrong length.
    #[error("interconnect.mesh.{key} lists {got} tiles but the machine has {want} such nodes")]
    PlacementLength {
        /// The config key.
        key: &'static str,
        /// Entries given.
        got: usize,
        /// Nodes of that kind.
        want: u32,
    },
    /// An explicit placement names a tile outside the mesh.
    #[error("interconnect.mesh.{key}[{index}] = {tile} is outside the mesh: tiles are 0..{tiles}")]
    TileOutOfRange {
        /// The config key.
        key: &'static str,
        /// Position in the list.
        index: usize,
        /// The tile given.
        tile: u32,
        /// Tiles in the mesh.
        tiles: u32,
    },
}

/// A tile's mesh coordinates.
#[derive(Copy, Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
struct Tile {
    x: u32,
    y: u32,
}

#[derive(Clone, Debug)]
enum Topo {
    Crossbar { latency: u64 },
    Mesh(Mesh),
}

#[derive(Clone, Debug)]
struct Mesh {
    cols: u32,
    rows: u32,
    hop: u64,
    router: u64,
    cores: Vec<Tile>,
    slices: Vec<Tile>,
    mcs: Vec<Tile>,
}

/// The built interconnect: latencies between nodes, from a validated config.
#[derive(Clone, Debug)]
pub struct Interconnect {
    topo: Topo,
    bytes_per_cycle: u64,
    counts: NodeCounts,
}

/// When a message leaves its sender and reaches its receiver.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub struct Transfer {
    /// Cycle the head leaves the sender's injection port (≥ `now`).
    pub depart: Cycle,
    /// Cycle the tail reaches the receiver.
    pub arrive: Cycle,
    /// `arrive - now - head_latency(src, dst)`: the `extra` to pass to
    /// `EpochCtx::send_delayed` over a link declared with `head_latency`.
    pub extra: u64,
}

/// A sender's injection port: the one piece of interconnect state, owned
/// by the sending partition. Back-to-back messages serialize on it.
#[derive(Clone, Debug, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct InjectionPort {
    free_at: Cycle,
}

impl InjectionPort {
    /// First cycle at which the port is free.
    pub fn free_at(&self) -> Cycle {
        self.free_at
    }
}

impl Interconnect {
    /// Validates `cfg` and places `counts` nodes.
    pub fn new(cfg: &InterconnectConfig, counts: NodeCounts) -> Result<Self, InterconnectError> {
        if cfg.link_bytes_per_cycle == 0 {
            return Err(InterconnectError::ZeroBandwidth);
        }
        let topo = match cfg.topology {
            TopologyKind::Crossbar => {
                if cfg.crossbar.latency == 0 {
                    return Err(InterconnectError::ZeroLatency {
                        key: "crossbar.latency",
                    });
                }
                Topo::Crossbar {
                    latency: cfg.crossbar.latency,
                }
            }
            TopologyKind::Mesh => Topo::Mesh(Mesh::new(&cfg.mesh, counts)?),
        };
        Ok(Interconnect {
            topo,
            bytes_per_cycle: cfg.link_bytes_per_cycle,
            counts,
        })
    }

    /// The node counts this interconnect was built for.
    pub fn counts(&self) -> NodeCounts {
        self.counts
    }

    /// Link width in bytes per cycle.
    pub fn link_bytes_per_cycle(&self) -> u64 {
        self.bytes_per_cycle
    }

    /// `(cols, rows)` of the mesh; `None` for a crossbar.
    pub fn mesh_dims(&self) -> Option<(u32, u32)> {
        match &self.topo {
            Topo::Mesh(m) => Some((m.cols, m.rows)),
            Topo::Crossbar { .. } => None,
        }
    }

    /// `(x, y)` of the tile a node sits on; `None` for a crossbar.
    ///
    /// # Panics
    /// If the node does not exist (index beyond its count).
    pub fn tile_of(&self, node: Node) -> Option<(u32, u32)> {
        match &self.topo {
            Topo::Mesh(m) => {
                let t = m.tile(node);
                Some((t.x, t.y))
            }
            Topo::Crossbar { .. } => None,
        }
    }

    /// Router-to-router hops from `src` to `dst` (0 on a crossbar).
    pub fn hops(&self, src: Node, dst: Node) -> u64 {
        match &self.topo {
            Topo::Mesh(m) => m.hops(src, dst),
            Topo::Crossbar { .. } => 0,
        }
    }

    /// Cycles a message of `bytes` holds a link: `ceil(bytes / width)`,
    /// at least 1.
    pub fn flits(&self, bytes: u64) -> u64 {
        bytes.div_ceil(self.bytes_per_cycle).max(1)
    }

    /// Unloaded latency of a message of at most one flit: the latency to
    /// declare on the engine link `src → dst`.
    pub fn head_latency(&self, src: Node, dst: Node) -> u64 {
        match &self.topo {
            Topo::Crossbar { latency } => *latency,
            Topo::Mesh(m) => {
                let h = m.hops(src, dst);
                (h + 1) * m.router + h * m.hop
            }
        }
    }

    /// Unloaded latency of a `bytes`-byte message from `src` to `dst`,
    /// head to tail: `head_latency + flits(bytes) - 1`.
    pub fn latency(&self, src: Node, dst: Node, bytes: u64) -> u64 {
        self.head_latency(src, dst) + self.flits(bytes) - 1
    }

    /// The smallest head latency between any two nodes (same-tile pairs
    /// included): a lower bound on the machine's lookahead. The engine's
    /// lookahead is the smallest link actually declared, never below this.
    pub fn min_latency(&self) -> u64 {
        match &self.topo {
            Topo::Crossbar { latency } => *latency,
            Topo::Mesh(m) => {
                let h = m.min_hops();
                (h + 1) * m.router + h * m.hop
            }
        }
    }

    /// Sends `bytes` from `src` to `dst` at `now` through the sender's
    /// `port`: the head departs when the port is free, the port is then
    /// busy for `flits(bytes)` cycles, and the tail arrives
    /// `latency(src, dst, bytes)` after departure.
    pub fn transfer(
        &self,
        port: &mut InjectionPort,
        now: Cycle,
        src: Node,
        dst: Node,
        bytes: u64,
    ) -> Transfer {
        let depart = now.max(port.free_at);
        let flits = self.flits(bytes);
        port.free_at = depart + flits;
        let arrive = depart + self.latency(src, dst, bytes);
        Transfer {
            depart,
            arrive,
            extra: (arrive - now) - self.head_latency(src, dst),
        }
    }
}

impl Mesh {
    fn new(cfg: &MeshConfig, counts: NodeCounts) -> Result<Mesh, InterconnectError> {
        if cfg.router_latency == 0 {
            return Err(InterconnectError::ZeroLatency {
                key: "mesh.router_latency",
            });
        }
        let (cols, rows) = mesh_dims(cfg, counts)?;
        let tiles = cols * rows;
        let at = |t: u32| Tile {
            x: t % cols,
            y: t / cols,
        };
        let slices = counts.l3_slices.max(1);
        let cores = place(&cfg.core_tiles, "core_tiles", counts.cores, tiles, |i| {
            i % tiles
        })?;
        let slice_tiles = place(
            &cfg.slice_tiles,
            "slice_tiles",
            counts.l3_slices,
            tiles,
            |j| {
                u32::try_from(u64::from(j) * u64::from(tiles) / u64::from(slices))
                    .expect("below tiles")
            },
        )?;
        let mcs = match cfg.mc_tiles.is_empty() {
            true => (0..counts.mem_ctrls)
                .map(|k| edge_tile(k, counts.mem_ctrls, cols, rows))
                .collect(),
            false => place(&cfg.mc_tiles, "mc_tiles", counts.mem_ctrls, tiles, |_| 0)?
                .into_iter()
                .map(at)
                .collect(),
        };
        Ok(Mesh {
            cols,
            rows,
            hop: cfg.hop_latency,
            router: cfg.router_latency,
            cores: cores.into_iter().map(at).collect(),
            slices: slice_tiles.into_iter().map(at).collect(),
            mcs,
        })
    }

    fn tile(&self, node: Node) -> Tile {
        let (list, i) = match node {
            Node::Core(i) => (&self.cores, i),
            Node::L3Slice(i) => (&self.slices, i),
            Node::MemCtrl(i) => (&self.mcs, i),
        };
        *list
            .get(i as usize)
            .unwrap_or_else(|| panic!("{node:?} does not exist on this interconnect"))
    }

    fn hops(&self, src: Node, dst: Node) -> u64 {
        let (a, b) = (self.tile(src), self.tile(dst));
        u64::from(a.x.abs_diff(b.x) + a.y.abs_diff(b.y))
    }

    /// Smallest hop count between two distinct nodes.
    fn min_hops(&self) -> u64 {
        let mut all: Vec<Tile> = self
            .cores
            .iter()
            .chain(&self.slices)
            .chain(&self.mcs)
            .copied()
            .collect();
        all.sort_unstable();
        if all.windows(2).any(|w| w[0] == w[1]) || all.len() < 2 {
            return 0;
        }
        let mut best = u32::MAX;
        for (i, a) in all.iter().enumerate() {
            for b in &all[i + 1..] {
                best = best.min(a.x.abs_diff(b.x) + a.y.abs_diff(b.y));
            }
        }
        u64::from(best)
    }
}

fn mesh_dims(cfg: &MeshConfig, counts: NodeCounts) -> Result<(u32, u32), InterconnectError> {
    match (cfg.cols, cfg.rows) {
        (0, 0) => {
            let n = counts.cores.max(counts.l3_slices).max(1);
            let mut cols = 1;
            while cols * cols < n {
                cols += 1;
            }
            Ok((cols, n.div_ceil(cols)))
        }
        (c, r) if c > 0 && r > 0 => Ok((c, r)),
        (cols, rows) => Err(InterconnectError::BadMeshSize { cols, rows }),
    }
}

/// Tile indices for `count` nodes: the explicit list if given, else `default`.
fn place(
    explicit: &[u32],
    key: &'static str,
    count: u32,
    tiles: u32,
    default: impl Fn(u32) -> u32,
) -> Result<Vec<u32>, InterconnectError> {
    if explicit.is_empty() {
        return Ok((0..count).map(default).collect());
    }
    if explicit.len() != count as usize {
        return Err(InterconnectError::PlacementLength {
            key,
            got: explicit.len(),
            want: count,
        });
    }
    if let Some((index, &tile)) = explicit.iter().enumerate().find(|(_, &t)| t >= tiles) {
        return Err(InterconnectError::TileOutOfRange {
            key,
            index,
            tile,
            tiles,
        });
    }
    Ok(explicit.to_vec())
}

/// Default memory-controller tile: alternate west/east edges, spread down.
fn edge_tile(k: u32, count: u32, cols: u32, rows: u32) -> Tile {
    let side = k % 2;
    let on_side = (count + 1 - side) / 2;
    let i = k / 2;
    Tile {
        x: if side == 0 { 0 } else { cols - 1 },
        y: ((2 * i + 1) * rows) / (2 * on_side),
    }
}

#[cfg(test)]
mod tests;
