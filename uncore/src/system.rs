//! Assembling the memory system: config, fabric, and the partitions a
//! machine adds to its engine.

use crate::config::{ConfigError, HierarchyConfig};
use crate::directory::L3Slice;
use crate::dram::{DramConfig, DramConfigError};
use crate::fabric::Fabric;
use crate::ids::{ChannelId, CoreId, SliceId};
use crate::interconnect::{InterconnectConfig, InterconnectError};
use crate::memctrl::MemCtrl;
use crate::memory::MachineMemory;
use crate::ownership::OwnerTable;
use crate::private::PrivateHierarchy;
use serde::{Deserialize, Serialize};
use smpsim_engine::{EngineBuilder, Partition, PartitionId, StatsBuilder};
use std::sync::Arc;

/// Everything below the cores, as one config table.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct MemSystemConfig {
    /// Caches, protocol, store buffer, ownership checking.
    pub hierarchy: HierarchyConfig,
    /// Interconnect topology and latencies.
    pub interconnect: InterconnectConfig,
    /// DRAM channels and timing.
    pub dram: DramConfig,
}

/// Why the memory system could not be built.
#[derive(Debug, thiserror::Error)]
pub enum BuildError {
    /// A cache value out of range.
    #[error(transparent)]
    Cache(#[from] ConfigError),
    /// A bad interconnect config.
    #[error(transparent)]
    Interconnect(#[from] InterconnectError),
    /// A bad DRAM config.
    #[error(transparent)]
    Dram(#[from] DramConfigError),
}

/// The memory system of one machine, before its partitions run.
#[derive(Debug)]
pub struct MemSystem {
    cfg: MemSystemConfig,
    cores: u32,
    fabric: Arc<Fabric>,
    memory: Arc<MachineMemory>,
    owners: Option<Arc<OwnerTable>>,
}

impl MemSystem {
    /// A memory system for `cores` cores over `memory`, whose partitions
    /// get ids from `first` on (cores, then slices, then channels).
    pub fn new(
        cfg: &MemSystemConfig,
        cores: u32,
        memory: Arc<MachineMemory>,
        first: PartitionId,
    ) -> Result<Self, BuildError> {
        cfg.hierarchy.validate()?;
        cfg.dram.validate()?;
        let fabric = Fabric::new(
            &cfg.interconnect,
            &cfg.dram,
            cores,
            cfg.hierarchy.l3.slices,
            first,
        )?;
        let owners = cfg
            .hierarchy
            .check_ownership
            .then(|| Arc::new(OwnerTable::new(false)));
        Ok(MemSystem {
            cfg: cfg.clone(),
            cores,
            fabric: Arc::new(fabric),
            memory,
            owners,
        })
    }

    /// The resolved config.
    pub fn config(&self) -> &MemSystemConfig {
        &self.cfg
    }

    /// The fabric (partition ids, homes, latencies).
    pub fn fabric(&self) -> &Arc<Fabric> {
        &self.fabric
    }

    /// Machine memory.
    pub fn memory(&self) -> &Arc<MachineMemory> {
        &self.memory
    }

    /// Number of cores.
    pub fn cores(&self) -> u32 {
        self.cores
    }

    /// The private hierarchy of a core, for its partition; `stats` may
    /// hold the core's own statistics already.
    pub fn hierarchy(&self, core: CoreId, stats: StatsBuilder) -> PrivateHierarchy {
        PrivateHierarchy::new(
            core,
            &self.cfg.hierarchy,
            Arc::clone(&self.fabric),
            Arc::clone(&self.memory),
            self.owners.clone(),
            stats,
        )
    }

    /// The L3 slice partitions, in id order.
    pub fn slices(&self) -> Vec<L3Slice> {
        let h = &self.cfg.hierarchy;
        (0..h.l3.slices)
            .map(|s| {
                L3Slice::new(
                    SliceId(s),
                    &h.l3,
                    h.protocol,
                    h.seed,
                    Arc::clone(&self.fabric),
                )
            })
            .collect()
    }

    /// The memory-channel partitions, in id order.
    pub fn channels(&self) -> Vec<MemCtrl> {
        (0..self.cfg.dram.channels)
            .map(|k| {
                MemCtrl::new(ChannelId(k), &self.cfg.dram, Arc::clone(&self.fabric))
                    .expect("validated at build")
            })
            .collect()
    }

    /// Declares every memory-system link with the engine.
    pub fn declare_links<P: Partition>(&self, b: &mut EngineBuilder<P>) {
        for (s, d, l) in self.fabric.links() {
            b.link(s, d, l);
        }
    }

    /// Ownership violations the shadow table found (0 when checking is
    /// off).
    pub fn ownership_violations(&self) -> u64 {
        self.owners.as_ref().map_or(0, |t| t.violations())
    }
}
