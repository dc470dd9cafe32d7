//! The whole machine: cores on the coherent memory system, the hypervisor,
//! and the guest domains of one workload, run by the engine.
//!
//! ```text
//!   core0 … coreN-1  (contexts, FuncCore, L1I/L1D/L2, store buffer)
//!        │  coherence messages over interconnect links (latency ≥ L)
//!   l3slice0 … l3sliceS-1  (inclusive L3 + directory)
//!        │
//!   mc0 … mcK-1  (DRAM channels)
//!
//!   hypervisor: barrier hook, services traps/timers/events every H cycles
//! ```
//!
//! Placement: VCPU `v` of domain `d` runs on hardware context
//! `d * per_domain + v` (contexts numbered core-major: core 0's contexts
//! first). A single-domain workload gets one VCPU per context by default.
//! A kernel domain's `[[domain]] cpus` pins its VCPUs to the contexts
//! listed; unpinned kernel domains take the lowest contexts left.

pub mod config;
pub mod dsave;
pub mod hyper;
pub mod kernel;
pub mod part;

use self::config::{KernelSpec, MachineConfig, Model};
use self::hyper::{Frames, Placement, Service, SwitchEvent, Switching};
use self::kernel::{DomainPlan, KernelError};
use self::part::Part;
use serde::Serialize;
use smpsim_cores::part::{CorePart, CoreSetup};
use smpsim_cores::{AddressSpaceId, CpuidModel};
use smpsim_engine::{
    Cycle, Engine, EngineBuilder, EngineConfig, EngineError, HistogramReport, HostThreads,
    PartitionId, PartitionSpec, StatsReport, StopReason,
};
use smpsim_uncore::memory::MachineMemory;
use smpsim_uncore::{CoreId, MemSystem};
use smpsim_workloads::Workload;
use smpsim_xen::builder::{DomainConfig, ParamsFill};
use smpsim_xen::hypervisor::{Hypervisor, HypervisorConfig, ShutdownRecord};
use smpsim_xen::{DomainId, Mfn, VcpuId};
use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Instant;

/// The quantum of the fast-forward model unless the config sets one:
/// instructions per core between barriers.
pub const FAST_QUANTUM: u64 = 1000;

/// The fast-forward model's barrier work, before the hypervisor's: every
/// core's buffered stores are committed in core order, then each
/// serialized instruction runs alone, in core order (see
/// `smpsim_cores::part` model `fast`). Cores in other models have none.
fn fast_barrier(ctx: &mut smpsim_engine::BarrierCtx<'_, Part>, cores: u32) {
    // Only a core that ran in the epoch has stores or a serialization
    // pending; `ran` is in ascending id order, so commits stay in core order
    // and a barrier costs nothing per idle core.
    let mut serial = Vec::new();
    for i in 0..ctx.ran().len() {
        let p = ctx.ran()[i];
        if p.0 >= cores {
            break;
        }
        let Part::Core(core) = ctx.partition(p) else {
            continue;
        };
        let (stores, ser) = core.fast_pending();
        if ser {
            serial.push(p);
        }
        if stores {
            if let Part::Core(core) = ctx.partition_mut(p) {
                core.fast_commit();
            }
        }
    }
    let now = ctx.now();
    for p in serial {
        if let Part::Core(core) = ctx.partition_mut(p) {
            core.fast_serialize(now);
        }
    }
}

/// What to run and how, besides the machine config.
#[derive(Clone, Debug)]
pub struct RunOptions {
    /// VCPUs per domain (`None`: every context, split over the domains).
    pub vcpus: Option<u32>,
    /// Workload arguments by name.
    pub args: Vec<(String, u64)>,
    /// Host threads.
    pub host_threads: HostThreads,
    /// Stop at the next barrier once this is set (see
    /// [`Machine::set_interrupt`]).
    pub interrupt: Option<Arc<AtomicBool>>,
}

impl Default for RunOptions {
    fn default() -> Self {
        RunOptions {
            vcpus: None,
            args: Vec::new(),
            host_threads: HostThreads::Count(1),
            interrupt: None,
        }
    }
}

/// Where a run is, for a progress display (see [`Machine::set_progress`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Progress {
    /// Simulated cycle (end of the last epoch).
    pub cycle: u64,
    /// Instructions retired so far, all cores.
    pub instructions: u64,
    /// The run's cycle limit, if any.
    pub max_cycles: Option<u64>,
}

/// A progress callback, called from the barrier hook.
pub type ProgressFn = Box<dyn FnMut(Progress) + Send>;

/// A console callback: each guest console line ("(d0) text"), called from
/// the barrier hook at the service tick that completed the line.
pub type ConsoleFn = Box<dyn FnMut(&str) + Send>;

/// The `stop` text of a run ended by [`Machine::set_interrupt`]'s flag.
pub const INTERRUPTED: &str = "interrupted";

/// Host time between progress callbacks.
const PROGRESS_INTERVAL: std::time::Duration = std::time::Duration::from_millis(100);

/// Why a machine could not be built.
#[derive(Debug, thiserror::Error)]
pub enum MachineError {
    /// The memory system refused its config.
    #[error("memory system: {0}")]
    MemSystem(#[from] smpsim_uncore::BuildError),
    /// Machine memory of the configured size could not be set up.
    #[error("machine memory of {mib} MiB (memory_mib): {source}")]
    Memory {
        /// The configured size.
        mib: u64,
        /// Why not.
        source: smpsim_uncore::memory::MemError,
    },
    /// The workload's domains and VCPUs do not fit the hardware contexts.
    #[error(
        "workload `{workload}`: {}, the machine has {contexts} ({cores} cores × {smt} SMT); \
         use --cores, --smt or fewer VCPUs",
        contexts_needed(*domains, *per_domain)
    )]
    DoesNotFit {
        /// The workload.
        workload: String,
        /// Its domains.
        domains: u32,
        /// VCPUs per domain asked for (0: not even one each).
        per_domain: u32,
        /// Hardware contexts of the machine.
        contexts: u32,
        /// Cores.
        cores: u32,
        /// Contexts per core.
        smt: u32,
    },
    /// An `--arg` the workload does not take.
    #[error(
        "workload `{workload}`: no argument `{name}`; {}",
        allowed_args(allowed)
    )]
    UnknownArg {
        /// The workload.
        workload: String,
        /// The argument given.
        name: String,
        /// The arguments it takes.
        allowed: Vec<&'static str>,
    },
    /// An `--arg` value outside the argument's range.
    #[error("workload `{workload}`: --arg {name}={value} is out of range; allowed: {allowed} (0 = the default, {default})")]
    ArgOutOfRange {
        /// The workload.
        workload: String,
        /// The argument.
        name: String,
        /// The value given.
        value: u64,
        /// What is allowed.
        allowed: String,
        /// Its default.
        default: u64,
    },
    /// The workload's ELF image is unusable.
    #[error("workload `{workload}`: image: {message}")]
    Image {
        /// The workload.
        workload: String,
        /// What the ELF reader said.
        message: String,
    },
    /// Machine memory ran out for the frames taken before the domains
    /// (`--frame-offset`).
    #[error("taking {frames} frames before the domains (--frame-offset): {source}")]
    Ballast {
        /// Frames asked for.
        frames: u64,
        /// How many frames were missing.
        source: smpsim_xen::frames::OutOfFrames,
    },
    /// Machine memory ran out for the workload's shared area.
    #[error("workload `{workload}`: shared area: {source}; raise memory_mib (now {mib})")]
    SharedArea {
        /// The workload.
        workload: String,
        /// The configured machine memory.
        mib: u64,
        /// How many frames were missing.
        source: smpsim_xen::frames::OutOfFrames,
    },
    /// The domain builder refused the image.
    #[error(
        "building domain {domain} of `{workload}`: {source}{}",
        build_hint(source)
    )]
    Build {
        /// The workload.
        workload: String,
        /// Which domain.
        domain: u32,
        /// The builder's error.
        source: smpsim_xen::builder::BuildError,
    },
    /// The kernels' domains need more hardware contexts than there are.
    #[error(
        "{domains} kernel domain(s) need {needed} VCPUs in all, the machine has {contexts} \
         hardware contexts ({cores} cores × {smt} SMT); use --cores, --smt or --vcpus"
    )]
    KernelsDoNotFit {
        /// Domains.
        domains: usize,
        /// VCPUs asked for, all domains.
        needed: u32,
        /// Hardware contexts of the machine.
        contexts: u32,
        /// Cores.
        cores: u32,
        /// Contexts per core.
        smt: u32,
    },
    /// A `[[domain]] cpus` entry names a hardware context the machine
    /// does not have.
    #[error(
        "[[domain]] #{domain}: cpus names hardware context {context}, the machine has \
         {contexts} (0 to {last}: {cores} cores × {smt} SMT, core-major); use --cores or --smt",
        last = contexts.saturating_sub(1)
    )]
    PinnedOutside {
        /// Which domain (1-based, as the config lists them).
        domain: usize,
        /// The context named.
        context: u32,
        /// Hardware contexts of the machine.
        contexts: u32,
        /// Cores.
        cores: u32,
        /// Contexts per core.
        smt: u32,
    },
    /// A kernel's file is unreadable or not a loadable PV kernel.
    #[error("{0}")]
    Kernel(#[from] KernelError),
    /// The domain builder refused a kernel (too big for its memory, …).
    #[error("kernel {}: building domain {domain}: {source}", path.display())]
    KernelBuild {
        /// The kernel file.
        path: std::path::PathBuf,
        /// Which domain.
        domain: u32,
        /// The builder's error.
        source: smpsim_xen::builder::BuildError,
    },
    /// The engine refused the machine.
    #[error("engine: {0}")]
    Engine(#[from] smpsim_engine::EngineError),
}

/// What to do about a builder error the config can fix.
fn build_hint(e: &smpsim_xen::builder::BuildError) -> &'static str {
    match e {
        smpsim_xen::builder::BuildError::OutOfFrames(_) => "; raise memory_mib",
        _ => "",
    }
}

/// "2 domain(s) × 4 VCPUs need 8 hardware contexts", or, when not even one
/// VCPU per domain fits, what the smallest run needs.
/// The hardware context of each VCPU of each kernel domain: a pinned
/// domain's `cpus`, the other domains the lowest contexts left, in domain
/// order. `vcpus[d]` fit the machine in all, and no context is pinned
/// twice (the config's check).
fn pin_kernels(
    cfg: &MachineConfig,
    kernels: &[KernelSpec],
    vcpus: &[u32],
) -> Result<Vec<Vec<u32>>, MachineError> {
    let contexts = cfg.contexts();
    let mut used = vec![false; contexts as usize];
    for (d, k) in kernels.iter().enumerate() {
        for &c in k.cpus.iter().flatten() {
            let Some(slot) = used.get_mut(c as usize) else {
                return Err(MachineError::PinnedOutside {
                    domain: d + 1,
                    context: c,
                    contexts,
                    cores: cfg.cores,
                    smt: cfg.smt,
                });
            };
            *slot = true;
        }
    }
    let mut free = (0..contexts).filter(|&c| !used[c as usize]);
    Ok(kernels
        .iter()
        .zip(vcpus)
        .map(|(k, &n)| match &k.cpus {
            Some(c) => c.clone(),
            None => free.by_ref().take(n as usize).collect(),
        })
        .collect())
}

fn contexts_needed(domains: u32, per_domain: u32) -> String {
    if per_domain == 0 {
        let n = domains.max(1);
        format!("{n} domain(s) need at least {n} hardware contexts (one VCPU each)")
    } else {
        format!(
            "{domains} domain(s) × {per_domain} VCPUs need {} hardware contexts",
            domains.max(1) * per_domain
        )
    }
}

fn allowed_args(allowed: &[&str]) -> String {
    if allowed.is_empty() {
        "it takes no arguments".to_owned()
    } else {
        format!("allowed: {}", allowed.join(", "))
    }
}

/// How a machine was built, so a checkpoint can build it again.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, serde::Deserialize)]
pub enum BuildSpec {
    /// A built-in workload.
    Workload {
        /// Its name.
        name: String,
        /// VCPUs per domain, if given.
        vcpus: Option<u32>,
        /// Its arguments.
        args: Vec<(String, u64)>,
    },
    /// Kernels, one domain each.
    Kernels {
        /// The kernels.
        kernels: Vec<KernelSpec>,
        /// VCPUs per domain, if given.
        vcpus: Option<u32>,
    },
}

impl BuildSpec {
    /// Builds the machine again on `cfg`, with `frame_offset` machine
    /// frames taken first (0 for a checkpoint; a domain restore moves the
    /// domain onto other frames). The recipe's VCPUs and arguments win
    /// over `opts`'.
    fn rebuild(
        &self,
        cfg: &MachineConfig,
        opts: &RunOptions,
        frame_offset: u64,
    ) -> Result<Machine, String> {
        match self {
            BuildSpec::Workload { name, vcpus, args } => {
                let w = smpsim_workloads::find(name).map_err(|e| e.to_string())?;
                let o = RunOptions {
                    vcpus: *vcpus,
                    args: args.clone(),
                    ..opts.clone()
                };
                Machine::build_offset(cfg, w, &o, frame_offset)
            }
            BuildSpec::Kernels { kernels, vcpus } => {
                let o = RunOptions {
                    vcpus: *vcpus,
                    ..opts.clone()
                };
                Machine::build_kernels_offset(cfg, kernels, &o, frame_offset)
            }
        }
        .map_err(|e| e.to_string())
    }
}

/// When a run writes checkpoints.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum CheckpointAt {
    /// At the first barrier at or after this cycle (rounded up to a
    /// multiple of the quantum).
    Cycle(u64),
    /// At the barrier that serviced the guest's first ROI begin mark.
    Roi,
    /// At the first barrier once the machine retired this many
    /// instructions.
    Insns(u64),
}

impl std::fmt::Display for CheckpointAt {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            CheckpointAt::Cycle(c) => write!(f, "{c}"),
            CheckpointAt::Roi => f.write_str("roi"),
            CheckpointAt::Insns(n) => write!(f, "insns:{n}"),
        }
    }
}

impl std::str::FromStr for CheckpointAt {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        let bad = || format!("checkpoint point `{s}`: expected a cycle count, `roi` or `insns:N`");
        if s == "roi" {
            return Ok(CheckpointAt::Roi);
        }
        if let Some(n) = s.strip_prefix("insns:") {
            return n.parse().map(CheckpointAt::Insns).map_err(|_| bad());
        }
        s.parse().map(CheckpointAt::Cycle).map_err(|_| bad())
    }
}

/// The checkpoints a run writes: at `at`, then (with `every`) every
/// `every` cycles after it; each to `out`, or with `every` to
/// `out.CYCLE`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CheckpointPlan {
    /// The first one.
    pub at: CheckpointAt,
    /// Cycles between later ones.
    pub every: Option<u64>,
    /// Where.
    pub out: std::path::PathBuf,
}

/// A checkpoint a run wrote.
#[derive(Clone, Debug, PartialEq)]
pub struct CheckpointWritten {
    /// The barrier it was taken at.
    pub cycle: u64,
    /// The file.
    pub path: std::path::PathBuf,
    /// Its size.
    pub bytes: u64,
    /// Host seconds to gather, encode and write it.
    pub seconds: f64,
}

/// A core partition's state as a serializable value.
struct SavedCore<'a>(&'a CorePart);

impl Serialize for SavedCore<'_> {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        self.0.save_state(s)
    }
}

/// The reason a run stops at a barrier to write a checkpoint.
const CHECKPOINT_STOP: &str = "checkpoint";

/// A machine ready to run.
pub struct Machine {
    engine: Engine<Part>,
    service: Service,
    /// The memory system, kept to re-attach restored partitions.
    sys: MemSystem,
    build: BuildSpec,
    checkpoints: Option<CheckpointPlan>,
    /// Checkpoints written.
    written: Vec<CheckpointWritten>,
    cfg: MachineConfig,
    /// The workload's name, or the kernel file(s).
    guest: String,
    domains: u32,
    vcpus: u32,
    max_cycles: Option<Cycle>,
    progress: Option<ProgressFn>,
    console: Option<ConsoleFn>,
    interrupt: Option<Arc<AtomicBool>>,
    /// A domain save due: from this cycle, at the first barrier where
    /// the domain's VCPUs are all out of the hypervisor ([`dsave`]).
    dsave_at: Option<(u64, DomainId)>,
}

impl std::fmt::Debug for Machine {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Machine")
            .field("engine", &self.engine)
            .field("guest", &self.guest)
            .finish()
    }
}

fn workload_image(w: &Workload) -> Result<smpsim_xen::builder::GuestImage, String> {
    let pv = smpsim_workloads::PvImage::from_elf(w.elf()).map_err(|e| e.to_string())?;
    kernel::guest_image(&pv).map_err(|e| e.to_string())
}

/// The machine memory, memory system and hypervisor, before any domain.
fn machine_parts(
    cfg: &MachineConfig,
    frame_offset: u64,
) -> Result<(Arc<MachineMemory>, MemSystem, Hypervisor), MachineError> {
    let memory_bytes = cfg.memory_mib << 20;
    let mem =
        Arc::new(
            MachineMemory::new(memory_bytes).map_err(|source| MachineError::Memory {
                mib: cfg.memory_mib,
                source,
            })?,
        );
    let sys = MemSystem::new(
        &cfg.mem_system(),
        cfg.cores,
        Arc::clone(&mem),
        PartitionId(0),
    )?;
    let hv_cfg = HypervisorConfig {
        default_periodic_ns: cfg.xen.default_periodic_ns,
        cpu_hidden: cfg.cpu.hide.clone(),
        ..HypervisorConfig::new(
            cfg.frequency_mhz * 1_000_000,
            Mfn(1),
            (memory_bytes >> 12) - 1,
        )
    };
    let mut hv = Hypervisor::new(hv_cfg);
    hv.reserve_frames(frame_offset)
        .map_err(|source| MachineError::Ballast {
            frames: frame_offset,
            source,
        })?;
    Ok((mem, sys, hv))
}

fn resolve_args(w: &Workload, args: &[(String, u64)]) -> Result<[u64; 8], MachineError> {
    let mut out = [0u64; 8];
    for (name, v) in args {
        let i = w.arg_index(name).ok_or_else(|| MachineError::UnknownArg {
            workload: w.name.into(),
            name: name.clone(),
            allowed: w.args.iter().map(|a| a.name).collect(),
        })?;
        let spec = &w.args[i];
        if !spec.allows(*v) {
            return Err(MachineError::ArgOutOfRange {
                workload: w.name.into(),
                name: name.clone(),
                value: *v,
                allowed: spec.allowed(),
                default: spec.default,
            });
        }
        out[i] = *v;
    }
    Ok(out)
}

impl Machine {
    /// Builds `cfg` running workload `w`.
    pub fn build(
        cfg: &MachineConfig,
        w: &'static Workload,
        opts: &RunOptions,
    ) -> Result<Self, MachineError> {
        Self::build_offset(cfg, w, opts, 0)
    }

    /// [`Self::build`], with `frame_offset` machine frames taken before the
    /// domains are built (so that they get other frames: a domain restore
    /// into a different frame layout).
    pub(crate) fn build_offset(
        cfg: &MachineConfig,
        w: &'static Workload,
        opts: &RunOptions,
        frame_offset: u64,
    ) -> Result<Self, MachineError> {
        let contexts = cfg.contexts();
        let per_domain = match opts.vcpus {
            Some(n) => n,
            None => contexts / w.domains,
        };
        if per_domain == 0 || per_domain * w.domains > contexts {
            return Err(MachineError::DoesNotFit {
                workload: w.name.into(),
                domains: w.domains,
                per_domain,
                contexts,
                cores: cfg.cores,
                smt: cfg.smt,
            });
        }
        let args = resolve_args(w, &opts.args)?;
        let (mem, sys, mut hv) = machine_parts(cfg, frame_offset)?;
        let image = workload_image(w).map_err(|message| MachineError::Image {
            workload: w.name.into(),
            message,
        })?;
        let mut frames = Frames(&mem);
        let shared = match w.shared_area_bytes(&args) {
            0 => None,
            bytes => Some(
                hv.alloc_shared_area(bytes.div_ceil(4096), &mut frames)
                    .map_err(|source| MachineError::SharedArea {
                        workload: w.name.into(),
                        mib: cfg.memory_mib,
                        source,
                    })?,
            ),
        };
        let domids: Vec<u32> = (0..w.domains).collect();
        let params = w.domain_params(
            per_domain,
            &args,
            &domids,
            shared.as_ref().map_or(0, |s| s.va),
        );
        for (i, p) in params.iter().enumerate() {
            let dc = DomainConfig {
                memory_bytes: w.memory_bytes(per_domain, &args),
                max_memory_bytes: w.max_memory_bytes(per_domain, &args),
                vcpus: per_domain,
                cmdline: format!("workload={}", w.name),
                wallclock_sec: 0,
                params: ParamsFill {
                    nr_vcpus: p.nr_vcpus,
                    flags: p.flags,
                    domain_index: p.domain_index,
                    peer_domid: p.peer_domid,
                    args: p.args,
                },
                shared: shared.clone(),
                ramdisk: Vec::new(),
                privileged: false,
            };
            hv.create_domain(&image, &dc, &mut frames)
                .map_err(|source| MachineError::Build {
                    workload: w.name.into(),
                    domain: i as u32,
                    source,
                })?;
        }
        let hw: Vec<Vec<u32>> = (0..w.domains)
            .map(|d| (d * per_domain..(d + 1) * per_domain).collect())
            .collect();
        let mut m = Self::assemble(cfg, (mem, sys, hv), w.name.to_owned(), &hw, opts)?;
        m.build = BuildSpec::Workload {
            name: w.name.to_owned(),
            vcpus: opts.vcpus,
            args: opts.args.clone(),
        };
        Ok(m)
    }

    /// Builds `cfg` booting each of `kernels` in a domain of its own
    /// (domain *i* runs `kernels[i]`). A domain's VCPUs: its spec's
    /// `vcpus`, else `opts.vcpus`, else the hardware contexts shared out
    /// over the domains.
    pub fn build_kernels(
        cfg: &MachineConfig,
        kernels: &[KernelSpec],
        opts: &RunOptions,
    ) -> Result<Self, MachineError> {
        Self::build_kernels_offset(cfg, kernels, opts, 0)
    }

    /// [`Self::build_kernels`] with `frame_offset` frames taken first (see
    /// [`Self::build_offset`]).
    pub(crate) fn build_kernels_offset(
        cfg: &MachineConfig,
        kernels: &[KernelSpec],
        opts: &RunOptions,
        frame_offset: u64,
    ) -> Result<Self, MachineError> {
        let contexts = cfg.contexts();
        let pinned = |k: &KernelSpec| k.cpus.as_ref().map(|c| c.len() as u32);
        let taken: u32 = kernels.iter().filter_map(pinned).sum();
        let unpinned = kernels.iter().filter(|k| k.cpus.is_none()).count().max(1) as u32;
        let vcpus: Vec<u32> = kernels
            .iter()
            .map(|k| {
                k.vcpus
                    .or(pinned(k))
                    .or(opts.vcpus)
                    .unwrap_or(contexts.saturating_sub(taken) / unpinned)
            })
            .collect();
        // A domain left no context still needs one (for the message).
        let needed: u32 = vcpus.iter().map(|&v| v.max(1)).sum();
        if kernels.is_empty() || vcpus.contains(&0) || needed > contexts {
            return Err(MachineError::KernelsDoNotFit {
                domains: kernels.len(),
                needed,
                contexts,
                cores: cfg.cores,
                smt: cfg.smt,
            });
        }
        let hw = pin_kernels(cfg, kernels, &vcpus)?;
        let plans = kernels
            .iter()
            .zip(&vcpus)
            .map(|(k, &v)| kernel::plan(k, v))
            .collect::<Result<Vec<DomainPlan>, _>>()?;
        let (mem, sys, mut hv) = machine_parts(cfg, frame_offset)?;
        let mut frames = Frames(&mem);
        for (i, (p, k)) in plans.iter().zip(kernels).enumerate() {
            hv.create_domain(&p.image, &p.config, &mut frames)
                .map_err(|source| MachineError::KernelBuild {
                    path: k.kernel.clone(),
                    domain: i as u32,
                    source,
                })?;
        }
        let name = kernels
            .iter()
            .map(|k| match &k.builtin {
                Some(b) => format!("(built-in {b})"),
                None => k.kernel.display().to_string(),
            })
            .collect::<Vec<_>>()
            .join(", ");
        let mut m = Self::assemble(cfg, (mem, sys, hv), name, &hw, opts)?;
        m.build = BuildSpec::Kernels {
            kernels: kernels.to_vec(),
            vcpus: opts.vcpus,
        };
        Ok(m)
    }

    /// The engine, placement and hypervisor service around domains already
    /// created; VCPU *v* of domain *d* runs on hardware context `hw[d][v]`.
    fn assemble(
        cfg: &MachineConfig,
        (mem, sys, hv): (Arc<MachineMemory>, MemSystem, Hypervisor),
        guest: String,
        hw: &[Vec<u32>],
        opts: &RunOptions,
    ) -> Result<Self, MachineError> {
        let lookahead = sys.lookahead();
        let quantum = cfg.quantum.unwrap_or(if cfg.model == Model::Fast {
            FAST_QUANTUM
        } else {
            lookahead
        });
        let period = if cfg.xen.service_period == 0 {
            (16 * lookahead).max(quantum)
        } else {
            cfg.xen.service_period
        };
        let setup = CoreSetup {
            mem: Arc::clone(&mem),
            model: cfg.model,
            cpi: cfg.inorder.cpi,
            latency: cfg.inorder.latency.clone(),
            sb_cap: cfg.hierarchy.store_buffer as usize,
            tlb_entries: (
                cfg.hierarchy.itlb_entries as usize,
                cfg.hierarchy.dtlb_entries as usize,
            ),
            service_period: period,
            smt: cfg.smt,
            ooo: cfg.uses_ooo().then(|| cfg.ooo_config()),
        };
        let mut b = EngineBuilder::new();
        for c in 0..cfg.cores {
            let cpuid = |t: u32| CpuidModel {
                apic_id: c * cfg.smt + t,
                logical_count: cfg.smt,
                tsc_aux: c * cfg.smt + t,
                hidden: cfg.cpu.hide.clone(),
                ..CpuidModel::default()
            };
            let core = CorePart::new(&setup, cpuid, |stats| sys.hierarchy(CoreId(c), stats));
            b.add(
                Part::Core(Box::new(core)),
                PartitionSpec::core(format!("core{c}"), "core"),
            );
        }
        sys.add_to(&mut b, Part::Uncore);
        let mut engine = b.build(EngineConfig {
            quantum,
            host_threads: opts.host_threads,
            ..EngineConfig::default()
        })?;
        let mut place = Placement::new();
        for (d, contexts) in hw.iter().enumerate() {
            for (v, &c) in contexts.iter().enumerate() {
                let core = PartitionId(c / cfg.smt);
                place.insert(
                    (DomainId(d as u16), VcpuId(v as u32)),
                    (core, (c % cfg.smt) as usize),
                );
            }
        }
        for d in 0..hw.len() as u32 {
            let dom = hv.domain(DomainId(d as u16)).expect("just created");
            let (p, t) = place[&(DomainId(d as u16), VcpuId(0))];
            let regs = dom.start_regs();
            let space = Arc::new(hv.vcpu_space(dom.id, VcpuId(0)));
            if let Part::Core(c) = engine.partition_mut(p) {
                c.start(t, AddressSpaceId(u64::from(d)), regs, space, Cycle::ZERO);
            }
        }
        let mut service = Service::new(
            hv,
            mem,
            place,
            period,
            quantum,
            (cfg.xen.hypercall_latency, cfg.xen.ipi_latency),
        );
        service.switching = Switching::new(cfg, (0..cfg.cores).map(PartitionId).collect());
        Ok(Machine {
            engine,
            service,
            sys,
            build: BuildSpec::Workload {
                name: String::new(),
                vcpus: None,
                args: Vec::new(),
            },
            checkpoints: None,
            written: Vec::new(),
            cfg: cfg.clone(),
            guest,
            domains: hw.len() as u32,
            vcpus: hw.iter().map(|c| c.len() as u32).max().unwrap_or(0),
            max_cycles: (cfg.max_cycles > 0).then_some(Cycle(cfg.max_cycles)),
            progress: None,
            console: None,
            interrupt: opts.interrupt.clone(),
            dsave_at: None,
        })
    }

    /// One line per hardware context: its VCPU, state and RIP (for
    /// diagnosing a run that did not finish).
    pub fn context_states(&self) -> Vec<String> {
        let vcpu_at: BTreeMap<_, _> = self.service.place.iter().map(|(&v, &pt)| (pt, v)).collect();
        let mut out = Vec::new();
        for (i, (p, spec)) in self.engine.partitions().enumerate() {
            if let Part::Core(c) = p {
                for t in 0..c.contexts() {
                    let vcpu = match vcpu_at.get(&(PartitionId(i as u32), t)) {
                        Some((d, v)) => format!("d{}{v}", d.0),
                        None => "no VCPU".to_owned(),
                    };
                    out.push(format!("{}.{t}: {vcpu} {}", spec.name, c.describe(t)));
                }
            }
        }
        out
    }

    /// The engine's lookahead.
    pub fn lookahead(&self) -> Option<u64> {
        self.engine.lookahead()
    }

    /// Runs to the end: every domain shut down, the cycle limit, or a
    /// simulator error (the statistics so far are in the report either way).
    pub fn run(mut self) -> RunReport {
        self.run_in_place()
    }

    /// Calls `f` from the barrier hook during runs, at most every ~100 ms
    /// of host time (checked every 16 epochs). It sees only progress
    /// figures, so it cannot change results.
    pub fn set_progress(&mut self, f: ProgressFn) {
        self.progress = Some(f);
    }

    /// Calls `f` with each guest console line as the service tick that
    /// completes it runs (the lines are in the report too). It sees only
    /// the text, so it cannot change results.
    pub fn set_console(&mut self, f: ConsoleFn) {
        self.console = Some(f);
    }

    /// Stops the run at the next barrier once `flag` is set (by a signal
    /// handler, say); the report's `stop` is then [`INTERRUPTED`]. Where an
    /// interrupted run stops depends on host timing; nothing else does.
    pub fn set_interrupt(&mut self, flag: Arc<AtomicBool>) {
        self.interrupt = Some(flag);
    }

    /// Stops runs at machine cycle `cycle` (a restored machine counts from
    /// the cycle it was saved at).
    pub fn set_max_cycles(&mut self, cycle: u64) {
        self.max_cycles = Some(Cycle(cycle));
    }

    /// The machine's cores.
    pub fn cores(&self) -> u32 {
        self.cfg.cores
    }

    /// Instructions the machine's cores have retired so far.
    pub fn instructions_retired(&self) -> u64 {
        (0..self.cfg.cores)
            .map(|c| match self.engine.partition(PartitionId(c)) {
                Part::Core(core) => core.instructions(),
                Part::Uncore(_) => 0,
            })
            .sum()
    }

    /// Writes checkpoints during the next run as `plan` says.
    pub fn set_checkpoints(&mut self, plan: CheckpointPlan) {
        self.checkpoints = Some(plan);
    }

    /// The checkpoints the runs so far wrote: (cycle, file).
    pub fn checkpoints_written(&self) -> &[CheckpointWritten] {
        &self.written
    }

    /// The machine's whole state now (between runs, at a barrier).
    pub fn checkpoint(&self) -> crate::checkpoint::Payload {
        let parts = self
            .engine
            .partitions()
            .map(|(p, _)| match p {
                Part::Core(c) => postcard::to_stdvec(&SavedCore(c)),
                Part::Uncore(u) => postcard::to_stdvec(u),
            })
            .collect::<Result<Vec<_>, _>>()
            .expect("partition state serializes");
        let mem = &self.service.mem;
        let frames = mem
            .allocated_frames()
            .into_iter()
            .map(|m| {
                let mut page = vec![0u8; 4096];
                mem.read(smpsim_uncore::memory::MachineAddr(m.0 << 12), &mut page)
                    .expect("an allocated frame is in range");
                (m.0, page)
            })
            .collect();
        crate::checkpoint::Payload {
            cfg: serde_json::to_string(&self.cfg).expect("config serializes"),
            build: serde_json::to_string(&self.build).expect("build spec serializes"),
            guest: self.guest.clone(),
            domains: self.domains,
            vcpus: self.vcpus,
            engine: self.engine.snapshot(),
            parts,
            frames,
            service: self.service.checkpoint(),
        }
    }

    /// Writes a checkpoint where the plan says (the run just stopped at a
    /// barrier for it).
    fn write_checkpoint(&mut self) -> Result<(), String> {
        let Some(plan) = &self.checkpoints else {
            return Ok(());
        };
        let now = self.engine.now().get();
        let path = if plan.every.is_some() {
            let mut p = plan.out.clone().into_os_string();
            p.push(format!(".{now}"));
            std::path::PathBuf::from(p)
        } else {
            plan.out.clone()
        };
        let t = Instant::now();
        let bytes = crate::checkpoint::encode(&self.checkpoint());
        std::fs::write(&path, &bytes)
            .map_err(|e| format!("writing checkpoint {}: {e}", path.display()))?;
        self.written.push(CheckpointWritten {
            cycle: now,
            path,
            bytes: bytes.len() as u64,
            seconds: t.elapsed().as_secs_f64(),
        });
        Ok(())
    }

    /// Builds the machine a checkpoint was taken of and puts it in the
    /// saved state, ready to continue. `model` switches every core at the
    /// restore (caches, predictors and memory stay as saved: warm; the
    /// switch is logged with why `restore`); `switch` replaces the saved
    /// run-time switching (an ROI end still returns to the model the
    /// machine was built with); `quantum` and `opts.host_threads` may
    /// differ from the original run's.
    ///
    /// # Errors
    /// A payload that does not fit the machine its config builds, or a
    /// build that fails (a kernel file gone, say).
    pub fn restore(
        p: crate::checkpoint::Payload,
        model: Option<Model>,
        quantum: Option<u64>,
        switch: Option<&config::SwitchConfig>,
        opts: &RunOptions,
    ) -> Result<Self, String> {
        let mut cfg = p.config()?;
        let saved_model = cfg.model;
        let build: BuildSpec = serde_json::from_str(&p.build)
            .map_err(|e| format!("its build recipe does not decode: {e}"))?;
        if let Some(m) = model {
            // Built with the new model so its pipelines exist.
            cfg.model = m;
        }
        if let Some(q) = quantum {
            cfg.quantum = Some(q);
        }
        let mut m = build
            .rebuild(&cfg, opts, 0)
            .map_err(|e| format!("rebuilding its machine: {e}"))?;
        if p.parts.len() != m.engine.len() {
            return Err(format!(
                "it has {} partitions; its config builds {}",
                p.parts.len(),
                m.engine.len()
            ));
        }
        // Memory first: restored partitions attach to it.
        let mem = Arc::clone(&m.service.mem);
        let saved: std::collections::BTreeSet<u64> = p.frames.iter().map(|f| f.0).collect();
        for f in mem.allocated_frames() {
            if !saved.contains(&f.0) {
                mem.fill(smpsim_uncore::memory::MachineAddr(f.0 << 12), 4096, 0)
                    .expect("in range");
            }
        }
        for (mfn, page) in &p.frames {
            mem.write(smpsim_uncore::memory::MachineAddr(mfn << 12), page)
                .map_err(|e| format!("frame {mfn:#x} does not fit this machine's memory: {e}"))?;
        }
        m.service = p.service.attach(Arc::clone(&mem));
        for (i, bytes) in p.parts.iter().enumerate() {
            let id = PartitionId(i as u32);
            let what = |e: postcard::Error| format!("partition {i} does not decode: {e}");
            match m.engine.partition_mut(id) {
                Part::Core(c) => {
                    c.restore_state(&mut postcard::Deserializer::from_bytes(bytes), &m.sys)
                        .map_err(what)?;
                }
                Part::Uncore(u) => {
                    let mut back: smpsim_uncore::UncorePart =
                        postcard::from_bytes(bytes).map_err(what)?;
                    back.attach(&m.sys);
                    *u = back;
                }
            }
        }
        for (&(d, v), &(part, t)) in &m.service.place {
            let space = Arc::new(m.service.hv.vcpu_space(d, v));
            if let Part::Core(c) = m.engine.partition_mut(part) {
                c.reattach_space(t, space);
            }
        }
        m.engine.restore(p.engine)?;
        // The report's config: the machine as built (its base model) with
        // the switching it now follows.
        m.cfg.model = saved_model;
        if let Some(sw) = switch {
            m.service.switching.reconfigure(sw);
            m.cfg.switch = sw.clone();
        }
        if let Some(to) = model {
            let now = m.engine.now();
            let mut changed = false;
            for c in 0..m.cfg.cores {
                if let Part::Core(core) = m.engine.partition_mut(PartitionId(c)) {
                    changed |= core.model() != to;
                    core.switch_model(to, now);
                }
            }
            if changed {
                m.service.switching.log.push(SwitchEvent {
                    cycle: now.get(),
                    to,
                    why: "restore".into(),
                });
            }
        }
        m.guest = p.guest;
        Ok(m)
    }

    /// Hands console lines not yet seen to the console callback.
    fn pass_console(service: &mut Service, console: &mut Option<ConsoleFn>) {
        if let Some(f) = console.as_mut() {
            for l in service.hv.take_new_console_lines() {
                f(&l.formatted());
            }
        }
    }

    /// Runs to the end, keeping the machine for inspection.
    pub fn run_in_place(&mut self) -> RunReport {
        let start = Instant::now();
        let start_insns = self.instructions_retired();
        let (cores, max_cycles) = (self.cfg.cores, self.max_cycles.map(Cycle::get));
        let quantum = self.engine.quantum();
        // The next checkpoint: by cycle (a run limit, rounded up to a
        // barrier), or by a condition the hook checks.
        let mut by_cycle = None;
        let mut by_hook = None;
        match self.checkpoints.as_ref().map(|p| &p.at) {
            Some(CheckpointAt::Cycle(c)) => by_cycle = Some(c.div_ceil(quantum) * quantum),
            Some(at) => by_hook = Some(at.clone()),
            None => {}
        }
        let mut last = start;
        let result = loop {
            let limit = match (by_cycle, self.max_cycles) {
                (Some(c), Some(m)) if c < m.get() => Some(Cycle(c)),
                (Some(c), None) => Some(Cycle(c)),
                (_, m) => m,
            };
            let service = &mut self.service;
            let progress = &mut self.progress;
            let console = &mut self.console;
            let interrupt = self.interrupt.clone();
            if let Some(t) = service.timer_wake() {
                self.engine.wake_at(t);
            }
            let trigger = by_hook.clone();
            let dsave = self.dsave_at;
            let result = self.engine.run(limit, &mut |ctx| {
                fast_barrier(ctx, cores);
                service.barrier(ctx);
                Self::pass_console(service, console);
                if interrupt
                    .as_ref()
                    .is_some_and(|f| f.load(Ordering::Relaxed))
                {
                    ctx.stop(INTERRUPTED);
                }
                let due = match &trigger {
                    Some(CheckpointAt::Roi) => service.switching.roi_begins > 0,
                    Some(CheckpointAt::Insns(n)) => {
                        let done: u64 = (0..cores)
                            .map(|c| match ctx.partition(PartitionId(c)) {
                                Part::Core(core) => core.instructions(),
                                _ => 0,
                            })
                            .sum();
                        done >= *n
                    }
                    _ => false,
                };
                if due {
                    ctx.stop(CHECKPOINT_STOP);
                }
                if let Some((at, d)) = dsave {
                    if ctx.now().get() >= at && dsave::quiescent(ctx, &service.place, d) {
                        ctx.stop(dsave::DSAVE_STOP);
                    }
                }
                if let Some(f) = progress.as_mut() {
                    if ctx.epoch() % 16 == 0 && last.elapsed() >= PROGRESS_INTERVAL {
                        last = Instant::now();
                        let instructions = (0..cores)
                            .map(|c| {
                                smpsim_engine::Partition::stats(ctx.partition(PartitionId(c)))
                                    .counter_by_name("core.instructions")
                                    .unwrap_or(0)
                            })
                            .sum();
                        f(Progress {
                            cycle: ctx.now().get(),
                            instructions,
                            max_cycles,
                        });
                    }
                }
            });
            let at_cycle = matches!(&result, Ok(s) if s.stop == StopReason::Limit && limit.is_some_and(|l| Some(l.get()) == by_cycle));
            let at_hook =
                matches!(&result, Ok(s) if s.stop == StopReason::Hook(CHECKPOINT_STOP.into()));
            if !(at_cycle || at_hook) {
                break result;
            }
            let now = self.engine.now().get();
            if let Err(e) = self.write_checkpoint() {
                break Err(EngineError::Panicked {
                    component: "checkpoint".into(),
                    cycle: Cycle(now),
                    message: e,
                });
            }
            by_hook = None;
            by_cycle = self
                .checkpoints
                .as_ref()
                .and_then(|p| p.every)
                .map(|e| (now + e.max(1)).div_ceil(quantum) * quantum);
        };
        Self::pass_console(&mut self.service, &mut self.console);
        for c in 0..cores {
            if let Part::Core(core) = self.engine.partition_mut(PartitionId(c)) {
                core.flush_stats();
            }
        }
        let host_seconds = start.elapsed().as_secs_f64();
        let (stop, error) = match result {
            Ok(s) => (s.stop, None),
            Err(e) => (
                StopReason::Hook("simulator error".into()),
                Some(e.to_string()),
            ),
        };
        self.report(stop, error, (host_seconds, start_insns))
    }

    /// The report; `host` is this run's host seconds and the instructions
    /// retired before it (a restored machine's earlier ones are not this
    /// run's speed).
    fn report(&self, stop: StopReason, error: Option<String>, host: (f64, u64)) -> RunReport {
        let (host_seconds, start_insns) = host;
        let stats = self.engine.stats_report();
        let cycles = self.engine.now().get();
        let instructions = stats
            .group_counter("core", "core.instructions")
            .unwrap_or(0);
        let hv = &self.service.hv;
        let shutdowns = hv
            .shutdowns()
            .iter()
            .map(ShutdownReport::from)
            .collect::<Vec<_>>();
        let all_ok = hv.all_shut_down() && shutdowns.iter().all(|s| s.success);
        let console = hv.console_lines().iter().map(|l| l.formatted()).collect();
        let counters = &hv.counters();
        let hypervisor = HypervisorReport {
            hypercalls: counters.hypercalls.clone(),
            raises: counters.raises,
            upcalls: counters.upcalls,
            wakes: counters.wakes,
            timer_fires: counters.timer_fires,
            ipi_latency: self.service.ipi_report(),
            guest_latency: hv
                .guest_histograms()
                .map(|(name, h)| {
                    (
                        name.to_owned(),
                        HistogramReport::from_histogram(h, "cycles"),
                    )
                })
                .collect(),
        };
        let stop = match stop {
            StopReason::Idle if !hv.all_shut_down() => {
                "deadlock: every VCPU blocked with no timer pending".to_owned()
            }
            StopReason::Idle => "idle".to_owned(),
            StopReason::Limit => "cycle limit".to_owned(),
            StopReason::Hook(s) => s,
        };
        RunReport {
            machine: self.cfg.name.clone(),
            workload: self.guest.clone(),
            vcpus_per_domain: self.vcpus,
            domains: self.domains,
            model: self.cfg.model,
            switches: self.service.switching.log.clone(),
            quantum: self.engine.quantum(),
            lookahead: self.engine.lookahead().unwrap_or(0),
            service_period: self.service.period,
            cycles,
            instructions,
            stopped: (stop == INTERRUPTED).then(|| INTERRUPTED.to_owned()),
            stop,
            success: all_ok && error.is_none(),
            error,
            shutdowns,
            console,
            hypervisor,
            stats,
            config: self.cfg.clone(),
            host: HostReport {
                seconds: host_seconds,
                threads: self.engine.host_threads(),
                mips: instructions.saturating_sub(start_insns) as f64
                    / host_seconds.max(1e-9)
                    / 1e6,
                peak_rss_mib: peak_rss_kib().map(|k| k as f64 / 1024.0),
                rss_per_core_kib: peak_rss_kib().map(|k| k as f64 / f64::from(self.cfg.cores)),
            },
        }
    }
}

/// A domain's end.
#[derive(Clone, Debug, Serialize, PartialEq, Eq)]
pub struct ShutdownReport {
    /// Domain id.
    pub domain: u16,
    /// Xen's reason name.
    pub reason: String,
    /// Whether it powered off normally.
    pub success: bool,
    /// What happened.
    pub message: String,
    /// Cycle.
    pub cycle: u64,
}

impl From<&ShutdownRecord> for ShutdownReport {
    fn from(r: &ShutdownRecord) -> Self {
        ShutdownReport {
            domain: r.domain.0,
            reason: r.reason_name().to_owned(),
            success: r.success(),
            message: r.message.clone(),
            cycle: r.cycle,
        }
    }
}

/// Hypervisor figures.
#[derive(Clone, Debug, Serialize, PartialEq)]
pub struct HypervisorReport {
    /// Hypercalls by number.
    pub hypercalls: BTreeMap<u64, u64>,
    /// Events raised.
    pub raises: u64,
    /// Upcalls delivered.
    pub upcalls: u64,
    /// VCPUs woken by events.
    pub wakes: u64,
    /// Timer expiries.
    pub timer_fires: u64,
    /// Event raise → upcall entry at the notified VCPU.
    pub ipi_latency: HistogramReport,
    /// Latencies the guests measured with rdtsc and handed over with the
    /// smpsim-specific hypercall (`evtchn_rtt`, `lock_wait`,
    /// `barrier_wait`; empty ones included), in TSC cycles.
    pub guest_latency: BTreeMap<String, HistogramReport>,
}

/// Host-dependent figures: the only part of a report that may differ
/// between runs of the same config, workload and quantum.
#[derive(Clone, Debug, Serialize, PartialEq)]
pub struct HostReport {
    /// Host wall-clock seconds.
    pub seconds: f64,
    /// Host threads used.
    pub threads: usize,
    /// Simulated instructions per host second, in millions.
    pub mips: f64,
    /// The process's peak resident memory in MiB (Linux `VmHWM`; `None`
    /// where the host does not say).
    pub peak_rss_mib: Option<f64>,
    /// That peak divided by the simulated cores, in KiB.
    pub rss_per_core_kib: Option<f64>,
}

/// The process's peak resident set in KiB, from `/proc/self/status`.
fn peak_rss_kib() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    line.split_whitespace().nth(1)?.parse().ok()
}

/// Everything a run produced.
#[derive(Clone, Debug, Serialize, PartialEq)]
pub struct RunReport {
    /// Machine name.
    pub machine: String,
    /// Workload, or the kernel file(s) of a `--kernel` run.
    pub workload: String,
    /// VCPUs per domain (the most of any domain).
    pub vcpus_per_domain: u32,
    /// Domains.
    pub domains: u32,
    /// Timing model the machine started in.
    pub model: Model,
    /// Timing-model switches during the run, in order.
    pub switches: Vec<SwitchEvent>,
    /// Quantum used.
    pub quantum: u64,
    /// Lookahead of the machine.
    pub lookahead: u64,
    /// The hypervisor's service period (exact runs match lockstep for
    /// quanta dividing it).
    pub service_period: u64,
    /// Simulated cycles.
    pub cycles: u64,
    /// Instructions retired.
    pub instructions: u64,
    /// Why it stopped.
    pub stop: String,
    /// `Some("interrupted")` when a signal stopped the run early (absent
    /// from the JSON otherwise, so complete runs' reports are unchanged).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub stopped: Option<String>,
    /// Every domain powered off and nothing failed.
    pub success: bool,
    /// A simulator error, if one ended the run.
    pub error: Option<String>,
    /// Domain shutdowns.
    pub shutdowns: Vec<ShutdownReport>,
    /// Guest console lines.
    pub console: Vec<String>,
    /// Hypervisor figures.
    pub hypervisor: HypervisorReport,
    /// Every partition's statistics.
    pub stats: StatsReport,
    /// The resolved config.
    pub config: MachineConfig,
    /// Host-dependent figures.
    pub host: HostReport,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(workload: &str, cores: u32, model: Model, threads: HostThreads) -> RunReport {
        let cfg = MachineConfig {
            cores,
            model,
            memory_mib: 256,
            ..MachineConfig::default()
        };
        let w = smpsim_workloads::find(workload).expect("built in");
        let opts = RunOptions {
            host_threads: threads,
            ..RunOptions::default()
        };
        Machine::build(&cfg, w, &opts).expect("builds").run()
    }

    #[test]
    fn service_checkpoint_round_trips_and_reattaches_memory() {
        let cfg = MachineConfig {
            cores: 2,
            memory_mib: 256,
            ..MachineConfig::default()
        };
        let w = smpsim_workloads::find("hello").expect("built in");
        let m = Machine::build(&cfg, w, &RunOptions::default()).expect("builds");
        let state = m.service.checkpoint();
        let bytes = postcard::to_stdvec(&state).expect("serializes");
        let back: hyper::ServiceState = postcard::from_bytes(&bytes).expect("deserializes");
        assert_eq!(back, state);
        let svc = back.attach(Arc::clone(&m.service.mem));
        assert!(Arc::ptr_eq(&svc.mem, &m.service.mem), "memory re-attached");
        assert_eq!(svc.place, m.service.place);
        let again = postcard::to_stdvec(&svc.checkpoint()).expect("serializes");
        assert_eq!(again, bytes);
        eprintln!("serialized service: {} bytes", bytes.len());
    }

    #[test]
    fn hello_runs_to_success() {
        let r = run("hello", 1, Model::Inorder, HostThreads::Count(1));
        for l in &r.console {
            eprintln!("{l}");
        }
        eprintln!("{} {:?} {:?}", r.stop, r.error, r.shutdowns);
        assert!(r.success, "{}", r.stop);
    }
}
