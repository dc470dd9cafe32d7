//! Xen-level domain save and restore, the machine's side: when to save,
//! the VCPUs' registers, the file, and the machine a domain is restored
//! into. The canonicalisation itself (MFNs → PFNs and back) is the
//! hypervisor's ([`smpsim_xen::save`]).
//!
//! A save is transparent (the guest does not cooperate): the machine runs
//! to the first barrier at or after the asked-for cycle where none of the
//! domain's VCPUs waits on the hypervisor (a trap in flight), interrupts
//! every context at its instruction boundary and drains the store buffers
//! into machine memory (as a switch to `fast` does), then saves the domain
//! and stops: like `xl save`, the saved domain does not run on.
//!
//! A restore builds a new machine from the saved config and build recipe,
//! optionally taking `frame_offset` machine frames first so that the
//! domain lands on other frames, replaces the freshly built domain's state
//! with the saved one (uncanonicalised to the new frames), and starts its
//! VCPUs where they were, at the saved cycle: guest time (TSC, timers)
//! continues. Caches, TLBs, predictors and the timing models' state start
//! cold, so timing after a restore differs from a straight run; the
//! guest's work and output do not.
//!
//! File layout: the checkpoint framing ([`crate::checkpoint`]) with magic
//! `SMPSIMDS` and [`VERSION`], around a [`DomainSaveFile`] in postcard.

use super::config::{MachineConfig, Model};
use super::hyper::{Frames, Placement};
use super::part::Part;
use super::{BuildSpec, Machine, RunOptions, RunReport};
use serde::{Deserialize, Serialize};
use smpsim_cores::arch::ArchState;
use smpsim_cores::part::Run;
use smpsim_cores::AddressSpaceId;
use smpsim_engine::{BarrierCtx, Cycle, PartitionId};
use smpsim_xen::save::DomainImage;
use smpsim_xen::{DomainId, Mfn, VcpuId};
use std::path::Path;
use std::sync::Arc;

/// First bytes of every domain save file.
pub const MAGIC: &[u8; 8] = b"SMPSIMDS";
/// The format this build writes and reads.
pub const VERSION: u32 = 1;

/// The stop reason of a run that reached its domain save.
pub(crate) const DSAVE_STOP: &str = "domain save";

/// Whether none of `d`'s VCPUs waits on the hypervisor (at a barrier).
pub(crate) fn quiescent(ctx: &BarrierCtx<'_, Part>, place: &Placement, d: DomainId) -> bool {
    place
        .iter()
        .filter(|(k, _)| k.0 == d)
        .all(|(_, &(p, t))| match ctx.partition(p) {
            Part::Core(c) => !matches!(c.run_state(t), Run::Trapped { .. }),
            Part::Uncore(_) => true,
        })
}

/// One VCPU's state in a save.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SavedVcpu {
    /// Its registers at an instruction boundary (its page-table roots are
    /// the hypervisor's, in the image, as PFNs).
    pub regs: ArchState,
    /// Whether it was running (else blocked, down or not yet up).
    pub running: bool,
}

/// Everything a domain save file holds.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct DomainSaveFile {
    /// The machine config of the saving run, as JSON.
    pub cfg: String,
    /// How the domain was built (workload and arguments, or kernel), JSON.
    pub build: String,
    /// The workload's name, or the kernel file.
    pub guest: String,
    /// The cycle of the save.
    pub cycle: u64,
    /// The saved domain.
    pub domain: u16,
    /// Its VCPUs, by id.
    pub vcpus: Vec<SavedVcpu>,
    /// Its memory and hypervisor state, canonicalised.
    pub image: DomainImage,
    /// The console lines it printed before the save.
    pub console: Vec<String>,
}

impl DomainSaveFile {
    /// The file's bytes.
    pub fn encode(&self) -> Vec<u8> {
        let raw = postcard::to_stdvec(self).expect("a domain save serializes");
        crate::checkpoint::frame(MAGIC, VERSION, &raw)
    }

    /// Reads the domain save at `path`; one error naming the file and
    /// what was wrong with it.
    ///
    /// # Errors
    /// An unreadable, foreign, truncated, newer or corrupted file.
    pub fn read(path: &Path) -> Result<Self, String> {
        let err = |what: String| format!("domain save {}: {what}", path.display());
        let bytes = std::fs::read(path).map_err(|e| err(format!("cannot read: {e}")))?;
        let raw = crate::checkpoint::unframe(&bytes, MAGIC, VERSION, "domain save").map_err(err)?;
        postcard::from_bytes(&raw).map_err(|e| err(format!("payload does not decode: {e}")))
    }
}

impl Machine {
    /// Runs to the first barrier at or after `cycle` where domain `d` can
    /// be saved (see the module doc) and saves it. The report is the run's
    /// up to the save.
    ///
    /// # Errors
    /// The run ended before the save point, or the domain cannot be saved.
    pub fn run_to_domain_save(
        &mut self,
        cycle: u64,
        d: u16,
    ) -> Result<(DomainSaveFile, RunReport), String> {
        self.dsave_at = Some((cycle, DomainId(d)));
        let report = self.run_in_place();
        self.dsave_at = None;
        if report.stop != DSAVE_STOP || report.error.is_some() {
            return Err(format!(
                "the run ended ({}) at cycle {} before the domain could be saved",
                report.error.as_deref().unwrap_or(&report.stop),
                report.cycles
            ));
        }
        Ok((self.save_domain(DomainId(d))?, report))
    }

    /// Saves domain `d` now (at a barrier, none of its VCPUs trapped).
    fn save_domain(&mut self, d: DomainId) -> Result<DomainSaveFile, String> {
        let now = self.engine.now();
        // Instruction boundaries and drained stores, as a switch to
        // `fast` leaves them; the machine does not run on.
        for c in 0..self.cfg.cores {
            if let Part::Core(core) = self.engine.partition_mut(PartitionId(c)) {
                core.switch_model(Model::Fast, now);
            }
        }
        let mem = Arc::clone(&self.service.mem);
        let image = self
            .service
            .hv
            .save_domain(d, &mut Frames(&mem))
            .map_err(|e| format!("saving domain {}: {e}", d.0))?;
        let mut vcpus = Vec::new();
        for (&(dd, _), &(p, t)) in self.service.place.iter().filter(|(k, _)| k.0 == d) {
            debug_assert_eq!(dd, d);
            if let Part::Core(c) = self.engine.partition(p) {
                vcpus.push(SavedVcpu {
                    regs: c.regs(t).clone(),
                    running: matches!(c.run_state(t), Run::Running),
                });
            }
        }
        Ok(DomainSaveFile {
            cfg: serde_json::to_string(&self.cfg).expect("config serializes"),
            build: serde_json::to_string(&self.build).expect("build spec serializes"),
            guest: self.guest.clone(),
            cycle: now.get(),
            domain: d.0,
            vcpus,
            image,
            console: self
                .service
                .hv
                .console_lines()
                .iter()
                .map(|l| l.formatted())
                .collect(),
        })
    }

    /// The machine frames of domain `d`'s pseudo-physical pages (PFN
    /// order).
    pub fn domain_frames(&self, d: u16) -> Vec<Mfn> {
        self.service
            .hv
            .domain(DomainId(d))
            .map(|dom| dom.p2m().to_vec())
            .unwrap_or_default()
    }

    /// A new machine from the save's config and build recipe, with
    /// `frame_offset` frames taken before the domain is built, running the
    /// saved domain from where it was saved.
    ///
    /// # Errors
    /// A recipe that no longer builds, or a save that does not fit the
    /// domain it builds.
    pub fn domain_restore(
        f: DomainSaveFile,
        frame_offset: u64,
        opts: &RunOptions,
    ) -> Result<Self, String> {
        let cfg: MachineConfig = serde_json::from_str(&f.cfg)
            .map_err(|e| format!("its machine config does not decode: {e}"))?;
        let build: BuildSpec = serde_json::from_str(&f.build)
            .map_err(|e| format!("its build recipe does not decode: {e}"))?;
        let mut m = build
            .rebuild(&cfg, opts, frame_offset)
            .map_err(|e| format!("rebuilding its domain: {e}"))?;
        let d = DomainId(f.domain);
        let mem = Arc::clone(&m.service.mem);
        m.service
            .hv
            .restore_domain(d, f.image, &mut Frames(&mem))
            .map_err(|e| format!("restoring domain {}: {e}", d.0))?;
        let now = Cycle(f.cycle);
        let mut snap = m.engine.snapshot();
        snap.now = now;
        m.engine.restore(snap)?;
        for (v, saved) in f.vcpus.into_iter().enumerate() {
            let key = (d, VcpuId(v as u32));
            let &(p, t) = m
                .service
                .place
                .get(&key)
                .ok_or_else(|| format!("the machine has no place for VCPU {v}"))?;
            let space = Arc::new(m.service.hv.vcpu_space(d, VcpuId(v as u32)));
            if let Part::Core(c) = m.engine.partition_mut(p) {
                c.start(t, AddressSpaceId(u64::from(d.0)), saved.regs, space, now);
                if !saved.running {
                    c.park(t);
                }
            }
        }
        m.service.restarted_at(now);
        m.guest = f.guest;
        Ok(m)
    }
}
