//! Interconnect configuration, as read from the `[interconnect]` table.
//!
//! ```toml
//! [interconnect]
//! topology = "mesh"          # or "crossbar"
//! link_bytes_per_cycle = 32  # link width: bytes per cycle
//! [interconnect.crossbar]
//! latency = 4                # cycles between any two nodes
//! [interconnect.mesh]
//! cols = 4                   # 0 and 0: sized from the node counts
//! rows = 4
//! hop_latency = 1            # cycles on a link between neighbouring routers
//! router_latency = 2         # cycles through one router
//! core_tiles = []            # optional explicit tile of each core, L3 slice,
//! slice_tiles = []           # and memory controller (row-major tile numbers)
//! mc_tiles = []
//! ```

use serde::{Deserialize, Serialize};

/// Which topology connects the nodes.
#[derive(Copy, Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum TopologyKind {
    /// Every pair of nodes one fixed latency apart.
    Crossbar,
    /// A 2-D mesh with XY routing.
    #[default]
    Mesh,
}

/// The `[interconnect]` table.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct InterconnectConfig {
    /// Topology in use; the other topology's table is ignored.
    pub topology: TopologyKind,
    /// Link width in bytes per cycle (a message of `b` bytes holds a link
    /// for `ceil(b / width)` cycles).
    pub link_bytes_per_cycle: u64,
    /// Crossbar parameters.
    pub crossbar: CrossbarConfig,
    /// Mesh parameters.
    pub mesh: MeshConfig,
}

impl Default for InterconnectConfig {
    fn default() -> Self {
        InterconnectConfig {
            topology: TopologyKind::Mesh,
            link_bytes_per_cycle: 32,
            crossbar: CrossbarConfig::default(),
            mesh: MeshConfig::default(),
        }
    }
}

/// The `[interconnect.crossbar]` table.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct CrossbarConfig {
    /// Cycles from any node to any other (≥ 1).
    pub latency: u64,
}

impl Default for CrossbarConfig {
    fn default() -> Self {
        CrossbarConfig { latency: 4 }
    }
}

/// The `[interconnect.mesh]` table.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct MeshConfig {
    /// Columns of tiles (0 with `rows = 0`: sized from the node counts).
    pub cols: u32,
    /// Rows of tiles (0 with `cols = 0`: sized from the node counts).
    pub rows: u32,
    /// Cycles on the wire between two neighbouring routers.
    pub hop_latency: u64,
    /// Cycles through one router (≥ 1); a message crosses `hops + 1`.
    pub router_latency: u64,
    /// Tile of each core (row-major numbers); empty: core `i` on tile `i`.
    pub core_tiles: Vec<u32>,
    /// Tile of each L3 slice; empty: spread evenly (co-located with cores
    /// when there are as many slices as tiles).
    pub slice_tiles: Vec<u32>,
    /// Tile of each memory controller; empty: west and east edges.
    pub mc_tiles: Vec<u32>,
}

impl Default for MeshConfig {
    fn default() -> Self {
        MeshConfig {
            cols: 0,
            rows: 0,
            hop_latency: 1,
            router_latency: 2,
            core_tiles: Vec::new(),
            slice_tiles: Vec::new(),
            mc_tiles: Vec::new(),
        }
    }
}
