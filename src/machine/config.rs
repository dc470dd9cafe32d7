//! The machine's TOML description: cores, SMT, memory system, timing model,
//! quantum, hypervisor latencies.

use crate::config::{at_key, ConfigError};
use serde::{Deserialize, Serialize};
use smpsim_uncore::config::HierarchyConfig;
use smpsim_uncore::dram::DramConfig;
use smpsim_uncore::interconnect::InterconnectConfig;
use smpsim_uncore::MemSystemConfig;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

pub use smpsim_cores::part::Model;

/// What CPUID reports.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct CpuConfig {
    /// Implemented features CPUID reads as absent (Xen-style masking; the
    /// instructions still execute): any of fpu, fxsr, sse, sse2, sse3,
    /// ssse3, sse4.1, sse4.2, movbe, popcnt, xsave, bmi1, bmi2, lzcnt.
    pub hide: Vec<smpsim_cores::cpuid::Feature>,
}

/// The in-order timing model.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct InorderConfig {
    /// Fewest cycles an instruction takes (issue interval).
    pub cpi: u64,
    /// Latency of each uop class (shared with the out-of-order model);
    /// loads are timed by the memory system instead.
    pub latency: smpsim_cores::ooo::LatencyConfig,
}

impl Default for InorderConfig {
    fn default() -> Self {
        InorderConfig {
            cpi: 1,
            latency: smpsim_cores::ooo::LatencyConfig::default(),
        }
    }
}

/// Switching the timing model while the machine runs (for example: fast
/// forward in `functional`, then measure in `ooo`). Caches, predictors of
/// cores already built and memory stay warm across a switch.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct SwitchConfig {
    /// The model to switch to (absent: never switch).
    pub to: Option<Model>,
    /// Switch once the machine has retired this many instructions in all
    /// (0 = not by count). Checked at hypervisor service ticks, so the
    /// switch happens at the first tick after the count is reached.
    pub after_insns: u64,
    /// Switch when the guest marks the start of its region of interest
    /// (`smpsim_op(ROI, 1)`), and back to `model` at its end
    /// (`smpsim_op(ROI, 0)`), at the next service tick.
    pub at_roi: bool,
}

/// Hypervisor latencies, in core cycles.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct XenConfig {
    /// From the trap to the VCPU running again (entry, handling, exit).
    pub hypercall_latency: u64,
    /// From a hypercall that raises an event to the event being visible at
    /// its VCPU (IPI wire latency).
    pub ipi_latency: u64,
    /// The hypervisor services traps, timers and events every this many
    /// cycles (0 = 16 × the lookahead, or the quantum if larger). Exact
    /// runs match lockstep when the quantum divides it.
    pub service_period: u64,
    /// Period of each VCPU's initial periodic timer in ns (Xen's PV
    /// default is 10 ms; 0 = none).
    pub default_periodic_ns: u64,
}

impl Default for XenConfig {
    fn default() -> Self {
        XenConfig {
            hypercall_latency: 300,
            ipi_latency: 200,
            service_period: 0,
            default_periodic_ns: 10_000_000,
        }
    }
}

/// A PV kernel booted in a domain of its own: `--kernel FILE [--cmdline
/// STR] [--ramdisk FILE]` on the command line, or a `[[domain]]` table in a
/// machine config (relative paths are relative to the config file).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct KernelSpec {
    /// The ELF image (a Xen PV64 kernel with Xen notes); empty with
    /// `builtin`.
    #[serde(default)]
    pub kernel: PathBuf,
    /// A built-in image instead of `kernel`: one of [`BUILTIN_KERNELS`]
    /// (`dom0`, the minimal control domain `run --domu` boots).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub builtin: Option<String>,
    /// Whether this is the privileged control domain (Xen's dom0:
    /// `SIF_PRIVILEGED | SIF_INITDOMAIN`, the control domain's rights over
    /// other domains). Only the first `[[domain]]` (domain 0) may be.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub privileged: bool,
    /// The guest command line (`start_info.cmd_line`, at most 1023 bytes).
    #[serde(default)]
    pub cmdline: String,
    /// The initial ramdisk (`start_info.mod_start`/`mod_len`), if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ramdisk: Option<PathBuf>,
    /// The domain's memory in MiB.
    #[serde(default = "KernelSpec::default_memory_mib")]
    pub memory_mib: u64,
    /// The most memory the domain may balloon up to, in MiB (Xen's
    /// `maxmem`; absent: `memory_mib`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_memory_mib: Option<u64>,
    /// VCPUs of the domain (absent: `--vcpus`, else the machine's hardware
    /// contexts shared out over the domains).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub vcpus: Option<u32>,
    /// The hardware contexts its VCPUs are pinned to, VCPU *i* on
    /// `cpus[i]` (xl's `cpus`; contexts numbered core-major, one VCPU per
    /// context). Absent: the lowest contexts no pinned domain takes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cpus: Option<Vec<u32>>,
}

/// The built-in images a `[[domain]]` may name with `builtin`.
pub const BUILTIN_KERNELS: &[&str] = &["dom0"];

impl KernelSpec {
    /// Default memory of a kernel's domain, in MiB: room for a small
    /// kernel, its P2M, boot area and page tables (XTF's configs ask 128,
    /// its tests need far less).
    pub const DEFAULT_MEMORY_MIB: u64 = 64;

    fn default_memory_mib() -> u64 {
        Self::DEFAULT_MEMORY_MIB
    }

    /// A spec for `kernel` with the defaults.
    pub fn new(kernel: impl Into<PathBuf>) -> Self {
        KernelSpec {
            kernel: kernel.into(),
            builtin: None,
            privileged: false,
            cmdline: String::new(),
            ramdisk: None,
            memory_mib: Self::DEFAULT_MEMORY_MIB,
            max_memory_mib: None,
            vcpus: None,
            cpus: None,
        }
    }

    /// The built-in control domain of `run --domu`: image `dom0`,
    /// privileged, 1 VCPU, 16 MiB.
    pub fn control_domain() -> Self {
        KernelSpec {
            builtin: Some("dom0".into()),
            privileged: true,
            memory_mib: 16,
            vcpus: Some(1),
            ..KernelSpec::new("")
        }
    }

    /// Checks values parsing cannot; the error is `(key, message)`.
    fn validate(&self, index: usize) -> Result<(), (String, String)> {
        let what = format!("[[domain]] #{}", index + 1);
        let bad = |k: &str, m: String| Err((format!("domain.{k}"), format!("{what}: {m}")));
        match (&self.builtin, self.kernel.as_os_str().is_empty()) {
            (None, true) => {
                return bad(
                    "kernel",
                    "empty path: name the kernel's ELF image (or a `builtin` one)".into(),
                )
            }
            (Some(b), false) => {
                return bad(
                    "builtin",
                    format!(
                        "\"{b}\" and kernel = {}: give one image, not both",
                        self.kernel.display()
                    ),
                )
            }
            (Some(b), true) if !BUILTIN_KERNELS.contains(&b.as_str()) => {
                return bad(
                    "builtin",
                    format!("\"{b}\": allowed {}", BUILTIN_KERNELS.join(", ")),
                )
            }
            _ => {}
        }
        if self.privileged && index > 0 {
            return bad(
                "privileged",
                "true: only the first [[domain]] (domain 0) may be the privileged control domain"
                    .into(),
            );
        }
        if !(1..=1 << 20).contains(&self.memory_mib) {
            return bad(
                "memory_mib",
                format!("{} MiB: allowed 1 to 1048576", self.memory_mib),
            );
        }
        if let Some(max) = self.max_memory_mib {
            if !(self.memory_mib..=1 << 20).contains(&max) {
                return bad(
                    "max_memory_mib",
                    format!(
                        "{max} MiB: allowed memory_mib ({}) to 1048576",
                        self.memory_mib
                    ),
                );
            }
        }
        if self.vcpus == Some(0) {
            return bad("vcpus", "0: a domain needs at least 1 VCPU".into());
        }
        if let Some(cpus) = &self.cpus {
            if cpus.is_empty() {
                return bad("cpus", "empty: list one hardware context per VCPU".into());
            }
            if let Some(n) = self.vcpus.filter(|&n| n as usize != cpus.len()) {
                return bad(
                    "cpus",
                    format!(
                        "{} hardware context(s) for vcpus = {n}: list one context per VCPU",
                        cpus.len()
                    ),
                );
            }
            if let Some(c) = cpus
                .iter()
                .enumerate()
                .find_map(|(i, c)| cpus[..i].contains(c).then_some(c))
            {
                return bad(
                    "cpus",
                    format!("hardware context {c} is listed twice: one VCPU per context"),
                );
            }
        }
        if self.cmdline.len() > 1023 {
            return bad(
                "cmdline",
                format!("{} bytes: allowed at most 1023", self.cmdline.len()),
            );
        }
        Ok(())
    }

    /// Makes relative paths relative to `dir` (the config file's folder).
    fn resolve_paths(&mut self, dir: &Path) {
        if self.kernel.is_relative() && !self.kernel.as_os_str().is_empty() {
            self.kernel = dir.join(&self.kernel);
        }
        if let Some(r) = self.ramdisk.as_mut().filter(|r| r.is_relative()) {
            *r = dir.join(&*r);
        }
    }
}

/// A whole machine.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct MachineConfig {
    /// What this machine is (shown in reports).
    pub name: String,
    /// Physical cores.
    pub cores: u32,
    /// Hardware contexts (SMT threads) per core.
    pub smt: u32,
    /// Core clock in MHz (the TSC ticks at this rate).
    pub frequency_mhz: u64,
    /// Machine memory in MiB.
    pub memory_mib: u64,
    /// Epoch length in cycles (≥ 1); leave it out for the lookahead, the
    /// largest exact quantum.
    pub quantum: Option<u64>,
    /// Timing model.
    pub model: Model,
    /// Stop after this many cycles (0 = no limit).
    pub max_cycles: u64,
    /// The processor identity (CPUID).
    pub cpu: CpuConfig,
    /// The in-order model.
    pub inorder: InorderConfig,
    /// The out-of-order core (`contexts` comes from `smt`).
    pub ooo: smpsim_cores::ooo::OooConfig,
    /// Switching models at run time.
    pub switch: SwitchConfig,
    /// The hypervisor.
    pub xen: XenConfig,
    /// Private caches, L3, protocol, store buffer.
    pub hierarchy: HierarchyConfig,
    /// Interconnect.
    pub interconnect: InterconnectConfig,
    /// Memory controllers.
    pub dram: DramConfig,
    /// PV kernels to boot, one domain each (`[[domain]]` tables); empty:
    /// the run names a built-in workload or `--kernel`.
    #[serde(rename = "domain", skip_serializing_if = "Vec::is_empty")]
    pub domains: Vec<KernelSpec>,
}

impl Default for MachineConfig {
    fn default() -> Self {
        MachineConfig {
            name: "default: 4 cores, MESI, crossbar, 2 DDR4 channels".into(),
            cores: 4,
            smt: 1,
            frequency_mhz: 3000,
            memory_mib: 4096,
            quantum: None,
            model: Model::Inorder,
            max_cycles: 0,
            cpu: CpuConfig::default(),
            inorder: InorderConfig::default(),
            ooo: smpsim_cores::ooo::OooConfig::default(),
            switch: SwitchConfig::default(),
            xen: XenConfig::default(),
            hierarchy: HierarchyConfig::default(),
            interconnect: InterconnectConfig {
                topology: smpsim_uncore::interconnect::TopologyKind::Crossbar,
                ..InterconnectConfig::default()
            },
            dram: DramConfig::default(),
            domains: Vec::new(),
        }
    }
}

impl MachineConfig {
    /// The memory-system part.
    pub fn mem_system(&self) -> MemSystemConfig {
        MemSystemConfig {
            hierarchy: self.hierarchy.clone(),
            interconnect: self.interconnect.clone(),
            dram: self.dram.clone(),
        }
    }

    /// Whether any core may run the out-of-order model.
    pub fn uses_ooo(&self) -> bool {
        self.model == Model::Ooo || self.switch.to == Some(Model::Ooo)
    }

    /// The out-of-order core's configuration, one context per SMT thread.
    pub fn ooo_config(&self) -> smpsim_cores::ooo::OooConfig {
        smpsim_cores::ooo::OooConfig {
            contexts: self.smt as usize,
            ..self.ooo.clone()
        }
    }

    /// Hardware contexts in all.
    pub fn contexts(&self) -> u32 {
        self.cores * self.smt
    }

    /// Reads and validates a config file.
    pub fn load(path: &Path) -> Result<Self, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|e| ConfigError {
            file: path.to_owned(),
            line: None,
            key: None,
            message: format!("cannot read the file: {e}"),
        })?;
        Self::parse(path, &text)
    }

    /// Parses and validates config text read from `path`.
    pub fn parse(path: &Path, text: &str) -> Result<Self, ConfigError> {
        let mut cfg: MachineConfig = crate::config::parse(path, text)?;
        cfg.validate()
            .map_err(|(key, msg)| at_key(path, text, &key, msg))?;
        let dir = path.parent().unwrap_or(Path::new(""));
        for d in &mut cfg.domains {
            d.resolve_paths(dir);
        }
        Ok(cfg)
    }

    /// Checks values parsing cannot; the error is `(dotted key, message)`.
    pub fn validate(&self) -> Result<(), (String, String)> {
        let bad = |k: &str, m: String| Err((k.to_owned(), m));
        if !(1..=1024).contains(&self.cores) {
            return bad("cores", format!("{} cores: allowed 1 to 1024", self.cores));
        }
        if !(1..=8).contains(&self.smt) {
            return bad(
                "smt",
                format!("{} contexts per core: allowed 1 to 8", self.smt),
            );
        }
        if self.frequency_mhz == 0 {
            return bad("frequency_mhz", "0 MHz: must be at least 1".into());
        }
        if self.memory_mib == 0 {
            return bad("memory_mib", "0 MiB: must be at least 1".into());
        }
        if let Some(q) = self.quantum.filter(|q| !(1..=MAX_QUANTUM).contains(q)) {
            return bad(
                "quantum",
                format!(
                    "{q} cycles: allowed 1 to {MAX_QUANTUM} (2^40; leave the key out for the \
                     lookahead)"
                ),
            );
        }
        if self.max_cycles > MAX_CYCLES {
            return bad(
                "max_cycles",
                format!(
                    "{} cycles: allowed 0 (no limit) to {MAX_CYCLES} (2^62)",
                    self.max_cycles
                ),
            );
        }
        if self.switch.to.is_some() && self.switch.after_insns == 0 && !self.switch.at_roi {
            return bad(
                "switch.to",
                "set, but neither switch.after_insns nor switch.at_roi says when".into(),
            );
        }
        if self.switch.to.is_none() && (self.switch.after_insns != 0 || self.switch.at_roi) {
            return bad(
                "switch.to",
                "missing: switch.after_insns or switch.at_roi needs a model to switch to".into(),
            );
        }
        if self.ooo.contexts != 1 && self.ooo.contexts != self.smt as usize {
            return bad(
                "ooo.contexts",
                format!(
                    "{}: the out-of-order core has one context per SMT thread; set `smt` instead",
                    self.ooo.contexts
                ),
            );
        }
        if self.uses_ooo() {
            if let Err(e) = smpsim_cores::ooo::OooCore::new(self.ooo_config()) {
                return bad("ooo", e.0);
            }
        }
        if self.inorder.cpi == 0 {
            return bad("inorder.cpi", "0: must be at least 1 cycle".into());
        }
        if self.xen.hypercall_latency == 0 || self.xen.ipi_latency == 0 {
            return bad(
                "xen.hypercall_latency",
                "latencies must be at least 1 cycle".into(),
            );
        }
        for (i, d) in self.domains.iter().enumerate() {
            d.validate(i)?;
        }
        self.pinning_check()?;
        self.mem_system_check()
    }

    /// No hardware context pinned by two domains. Contexts past the
    /// machine's are checked when it is built (`--cores` may change it).
    fn pinning_check(&self) -> Result<(), (String, String)> {
        let mut owner = BTreeMap::new();
        for (i, d) in self.domains.iter().enumerate() {
            for &c in d.cpus.iter().flatten() {
                if let Some(j) = owner.insert(c, i) {
                    return Err((
                        "domain.cpus".into(),
                        format!(
                            "[[domain]] #{}: hardware context {c} is pinned by [[domain]] #{} \
                             too: one VCPU per context",
                            i + 1,
                            j + 1
                        ),
                    ));
                }
            }
        }
        Ok(())
    }

    fn mem_system_check(&self) -> Result<(), (String, String)> {
        self.link_latency_check()?;
        if let Err(e) = self.hierarchy.validate() {
            return Err(split_key("hierarchy", &e.to_string()));
        }
        if let Err(e) = self.dram.validate() {
            return Err(split_key("dram", &e.to_string()));
        }
        Ok(())
    }

    /// A link of latency 0 would make the lookahead 0 (the engine then
    /// quietly uses its other links' latency): refuse it here.
    fn link_latency_check(&self) -> Result<(), (String, String)> {
        use smpsim_uncore::interconnect::TopologyKind;
        let ic = &self.interconnect;
        match ic.topology {
            TopologyKind::Crossbar if ic.crossbar.latency == 0 => Err((
                "interconnect.crossbar.latency".into(),
                "0 cycles: a link takes at least 1 cycle".into(),
            )),
            TopologyKind::Mesh if ic.mesh.hop_latency + ic.mesh.router_latency == 0 => Err((
                "interconnect.mesh.hop_latency".into(),
                "0 cycles with router_latency = 0: a link takes at least 1 cycle".into(),
            )),
            _ => Ok(()),
        }
    }
}

/// The largest quantum: far past any useful lax run, and small enough that
/// no sum of simulated times overflows.
pub const MAX_QUANTUM: u64 = 1 << 40;

/// The largest cycle limit, for the same reason.
pub const MAX_CYCLES: u64 = 1 << 62;

/// Turns a component's "`key`: message" error into a dotted key under
/// `table` and the message.
fn split_key(table: &str, msg: &str) -> (String, String) {
    if let Some(k) = msg.split('`').nth(1) {
        // The message may already name the key from the table down.
        let key = if k.starts_with(&format!("{table}.")) {
            k.to_owned()
        } else {
            format!("{table}.{k}")
        };
        return (key, msg.to_owned());
    }
    // "dram.t_rcd = 0 is not allowed…": the key leads the message.
    let first = msg.split_whitespace().next().unwrap_or(table);
    let key = if first.starts_with(table) {
        first
    } else {
        table
    };
    (key.to_owned(), msg.to_owned())
}
