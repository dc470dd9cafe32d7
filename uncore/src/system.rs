//! Assembling the memory system: config, fabric, and the partitions a
//! machine adds to its engine ([`MemSystem::add_to`]).

use crate::config::{ConfigError, HierarchyConfig};
use crate::directory::L3Slice;
use crate::dram::{DramConfig, DramConfigError};
use crate::fabric::Fabric;
use crate::ids::{ChannelId, CoreId, SliceId};
use crate::interconnect::{InterconnectConfig, InterconnectError};
use crate::memctrl::MemCtrl;
use crate::memory::MachineMemory;
use crate::ownership::OwnerTable;
use crate::part::UncorePart;
use crate::private::PrivateHierarchy;
use serde::{Deserialize, Serialize};
use smpsim_engine::{EngineBuilder, Partition, PartitionId, PartitionSpec, StatsBuilder};
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

    /// The machine-wide ownership table, when `check_ownership` is on.
    pub fn owners(&self) -> Option<&Arc<OwnerTable>> {
        self.owners.as_ref()
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

    /// Adds every uncore partition to `b`, wrapped by `wrap`, and declares
    /// every memory-system link: the L3 slices (`l3slice{i}`, group `l3`),
    /// then the memory channels (`mc{i}`, group `mc`), each in id order.
    /// Call it right after adding the core partitions (core `k` added
    /// `k`-th, from the `first` id given to [`MemSystem::new`]): the ids
    /// must be the fabric's, and a mismatch panics naming the partition.
    ///
    /// ```
    /// use smpsim_engine::{
    ///     Cycle, EngineBuilder, EngineConfig, EpochCtx, Partition, PartitionId, PartitionSpec,
    ///     Stats, StatsBuilder,
    /// };
    /// use smpsim_uncore::memory::MachineMemory;
    /// use smpsim_uncore::{MemMsg, MemSystem, MemSystemConfig, UncorePart};
    /// use std::sync::Arc;
    ///
    /// /// A machine's partitions: its own (here idle) cores, then the uncore's.
    /// #[derive(Debug)]
    /// enum Part {
    ///     Core(Stats),
    ///     Uncore(UncorePart),
    /// }
    ///
    /// impl Partition for Part {
    ///     type Msg = MemMsg;
    ///     fn run_epoch(&mut self, ctx: &mut EpochCtx<'_, MemMsg>) {
    ///         if let Part::Uncore(u) = self {
    ///             u.run_epoch(ctx);
    ///         }
    ///     }
    ///     fn next_activity(&self) -> Option<Cycle> {
    ///         match self {
    ///             Part::Core(_) => None,
    ///             Part::Uncore(u) => u.next_activity(),
    ///         }
    ///     }
    ///     fn stats(&self) -> &Stats {
    ///         match self {
    ///             Part::Core(s) => s,
    ///             Part::Uncore(u) => u.stats(),
    ///         }
    ///     }
    /// }
    ///
    /// let mem = Arc::new(MachineMemory::new(1 << 20)?);
    /// let sys = MemSystem::new(&MemSystemConfig::default(), 2, mem, PartitionId(0))?;
    /// let mut b = EngineBuilder::new();
    /// for c in 0..2 {
    ///     let spec = PartitionSpec::core(format!("core{c}"), "core");
    ///     b.add(Part::Core(StatsBuilder::new().build()), spec);
    /// }
    /// sys.add_to(&mut b, Part::Uncore);
    /// let quantum = sys.lookahead();
    /// let mut engine = b.build(EngineConfig { quantum, ..EngineConfig::default() })?;
    /// assert_eq!(engine.len(), 2 + 4 + 2); // cores, L3 slices, memory channels
    /// assert_eq!(engine.lookahead(), Some(quantum));
    /// engine.run(None, &mut |_| {})?; // nothing to do: ends at once
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn add_to<P: Partition>(&self, b: &mut EngineBuilder<P>, wrap: impl Fn(UncorePart) -> P) {
        for (i, s) in (0..).zip(self.slices()) {
            let spec = PartitionSpec::uncore(format!("l3slice{i}"), "l3");
            let id = b.add(wrap(UncorePart::Slice(Box::new(s))), spec);
            let want = self.fabric.slice_pid(SliceId(i));
            assert_eq!(id, want, "l3slice{i} added out of the fabric's order");
        }
        for (i, m) in (0..).zip(self.channels()) {
            let spec = PartitionSpec::uncore(format!("mc{i}"), "mc");
            let id = b.add(wrap(UncorePart::Mem(Box::new(m))), spec);
            let want = self.fabric.channel_pid(ChannelId(i));
            assert_eq!(id, want, "mc{i} added out of the fabric's order");
        }
        for (s, d, l) in self.fabric.links() {
            b.link(s, d, l);
        }
    }

    /// The lookahead the memory system's links give: the smallest link
    /// latency, cycles (what the engine will compute from them).
    pub fn lookahead(&self) -> u64 {
        self.fabric
            .links()
            .iter()
            .map(|l| l.2)
            .min()
            .expect("a memory system has links")
    }

    /// The L3 slice partitions, in id order.
    pub(crate) fn slices(&self) -> Vec<L3Slice> {
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
    fn channels(&self) -> Vec<MemCtrl> {
        (0..self.cfg.dram.channels)
            .map(|k| {
                MemCtrl::new(ChannelId(k), &self.cfg.dram, Arc::clone(&self.fabric))
                    .expect("validated at build")
            })
            .collect()
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
    fn add_to_appends_slices_then_channels_from_the_first_id() {
        let mem = Arc::new(MachineMemory::new(1 << 20).expect("1 MiB"));
        // No cores: the uncore's partitions start at id 0.
        let sys =
            MemSystem::new(&MemSystemConfig::default(), 0, mem, PartitionId(0)).expect("builds");
        let mut b = EngineBuilder::new();
        sys.add_to(&mut b, |p| p);
        let engine = b
            .build(smpsim_engine::EngineConfig {
                quantum: sys.lookahead(),
                ..smpsim_engine::EngineConfig::default()
            })
            .expect("builds");
        let names: Vec<&str> = engine.partitions().map(|(_, s)| s.name.as_str()).collect();
        assert_eq!(
            names,
            ["l3slice0", "l3slice1", "l3slice2", "l3slice3", "mc0", "mc1"]
        );
        assert_eq!(engine.lookahead(), Some(sys.lookahead()));
    }

    #[test]
    #[should_panic(expected = "l3slice0 added out of the fabric's order")]
    fn add_to_before_the_cores_panics() {
        let mem = Arc::new(MachineMemory::new(1 << 20).expect("1 MiB"));
        let sys =
            MemSystem::new(&MemSystemConfig::default(), 2, mem, PartitionId(0)).expect("builds");
        sys.add_to(&mut EngineBuilder::new(), |p| p);
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
