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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn toml_config_fills_defaults_and_rejects_unknown_keys() {
        let text =
            "[hierarchy]\nprotocol = \"moesi\"\n[hierarchy.l3]\nslices = 8\n[dram]\nchannels = 4\n";
        let cfg: MemSystemConfig = toml::from_str(text).expect("parses");
        assert_eq!(cfg.hierarchy.protocol, crate::config::Protocol::Moesi);
        assert_eq!(cfg.hierarchy.l3.slices, 8);
        assert_eq!(cfg.hierarchy.l2, HierarchyConfig::default().l2);
        assert_eq!(cfg.dram.channels, 4);
        let bad = toml::from_str::<MemSystemConfig>("[hierarchy.l1d]\nassociativity = 4\n");
        assert!(bad
            .expect_err("unknown key")
            .to_string()
            .contains("associativity"));
    }

    #[test]
    fn partitions_links_and_lookahead_follow_the_layout() {
        let mem = Arc::new(MachineMemory::new(1 << 20).expect("1 MiB"));
        let sys =
            MemSystem::new(&MemSystemConfig::default(), 4, mem, PartitionId(3)).expect("builds");
        let f = sys.fabric();
        assert_eq!(f.core_pid(CoreId(0)), PartitionId(3));
        assert_eq!(f.slice_pid(SliceId(0)), PartitionId(7));
        assert_eq!(f.channel_pid(ChannelId(1)), PartitionId(12));
        let links = f.links();
        // 4 cores × 4 slices + 4 slices × 2 channels, both ways.
        assert_eq!(links.len(), 2 * (16 + 8));
        let lookahead = links.iter().map(|l| l.2).min().expect("links");
        assert!(lookahead >= f.interconnect().min_latency());
        assert_eq!(sys.slices().len(), 4);
        assert_eq!(sys.channels().len(), 2);
    }

    #[test]
    fn bad_cache_value_fails_the_build_naming_the_key() {
        let mut cfg = MemSystemConfig::default();
        cfg.hierarchy.l1d.line_size = 128;
        let mem = Arc::new(MachineMemory::new(1 << 20).expect("1 MiB"));
        let err = MemSystem::new(&cfg, 1, mem, PartitionId(0)).expect_err("128-byte lines");
        assert!(err.to_string().contains("l1d.line_size"), "{err}");
    }
}
