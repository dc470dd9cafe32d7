//! The hypervisor: every domain, its VCPUs, the event-channel table, the
//! console and the shutdown records, behind one deterministic API.
//!
//! # How the machine drives it
//! - Build: [`Hypervisor::new`], then [`Hypervisor::alloc_shared_area`] for
//!   groups of domains that share memory, then
//!   [`Hypervisor::create_domain`] per domain (ids 0, 1, … in call order).
//!   VCPU 0 of each starts runnable with [`Domain::start_regs`].
//! - A VCPU that executes SYSCALL in the hypercall page traps out:
//!   [`Hypervisor::hypercall`] (in `hypercall.rs`) handles it and returns
//!   an [`Outcome`]. Its [`Effect`]s must be applied in order: raises go to
//!   [`Hypervisor::deliver`] (after whatever IPI latency the machine
//!   models), started/stopped/woken VCPUs change what runs.
//! - At instruction boundaries: [`Hypervisor::upcall`] delivers a pending
//!   event upcall (cheap to call: it reads two bytes when nothing is due).
//!   Guest faults: [`Hypervisor::guest_fault`] (Xen's PV emulator, then
//!   [`Hypervisor::exception`] for what it bounces); the effects of the
//!   mode switches these make are in [`Hypervisor::take_deferred_effects`].
//! - Timers: after any hypercall or delivery, [`Hypervisor::next_timer_cycle`]
//!   gives the next cycle at which [`Hypervisor::run_timers`] must be called
//!   for a VCPU.
//! - The run ends when [`Hypervisor::all_shut_down`]; the records are in
//!   [`Hypervisor::shutdowns`], guest output in [`Hypervisor::console_lines`].
//!
//! Every method is deterministic given the order of calls; nothing depends
//! on host state.

use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::sync::Arc;

use crate::abi::DOMID_SELF;
use crate::builder::{self, BuildError, BuiltDomain, DomainConfig, GuestImage, Layout, SharedArea};
use crate::console::{ConsoleLine, LineBuffer};
use crate::event_2l::{self, EventLayout, EventMemory, Raised};
use crate::event_fifo::FifoDomain;
use crate::evtchn::{EventChannels, Raise};
use crate::frames::{FrameAllocator, OutOfFrames};
use crate::guest_hist::GuestHistograms;
use crate::ids::{DomainId, Mfn, Port, VcpuId};
use crate::memory::{FrameStore, HypervisorMemory};
use crate::mmu::{BasePtr, DomainMmu, Mmu, PageInfo};
use crate::regs::GuestRegs;
use crate::time::TimeScale;
use crate::upcall::{push_frame, UpcallStep};
use crate::vcpu::{RunState, Vcpu};
use crate::xenstore::Xenstored;
use smpsim_cores::ArchState;

/// Hypervisor-wide settings.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct HypervisorConfig {
    /// TSC (core clock) frequency in Hz; system time is derived from it.
    pub tsc_hz: u64,
    /// First machine frame given to domains.
    pub first_mfn: Mfn,
    /// Machine frames available to domains.
    pub nr_frames: u64,
    /// Period of each VCPU's initial periodic timer in ns (Xen: 10 ms; 0 =
    /// none).
    pub default_periodic_ns: u64,
    /// CPUID features the PV CPUID policy hides (`[cpu] hide`), like the
    /// cores' own CPUID model.
    #[serde(default)]
    pub cpu_hidden: Vec<smpsim_cores::cpuid::Feature>,
}

impl HypervisorConfig {
    /// Xen's defaults for a TSC of `tsc_hz` and `nr_frames` frames from
    /// MFN `first_mfn`.
    pub fn new(tsc_hz: u64, first_mfn: Mfn, nr_frames: u64) -> Self {
        HypervisorConfig {
            tsc_hz,
            first_mfn,
            nr_frames,
            default_periodic_ns: 10_000_000,
            cpu_hidden: Vec::new(),
        }
    }
}

/// Why a domain stopped.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ShutdownRecord {
    /// The domain.
    pub domain: DomainId,
    /// `SHUTDOWN_*` reason (0 poweroff = success, 3 crash).
    pub reason: u32,
    /// What happened, for the run report.
    pub message: String,
    /// Cycle at which it happened.
    pub cycle: u64,
}

impl ShutdownRecord {
    /// Xen's name of the reason.
    pub fn reason_name(&self) -> &'static str {
        match self.reason {
            0 => "poweroff",
            1 => "reboot",
            2 => "suspend",
            3 => "crash",
            4 => "watchdog",
            5 => "soft_reset",
            _ => "unknown",
        }
    }

    /// Whether the domain powered off normally.
    pub fn success(&self) -> bool {
        self.reason == crate::abi::sched::SHUTDOWN_POWEROFF
    }
}

/// One domain.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Domain {
    /// Its id.
    pub id: DomainId,
    pub(crate) built: BuiltDomain,
    /// Frames it may map besides its own: shared_info and the group area.
    pub(crate) foreign_ok: Vec<Mfn>,
    pub(crate) vcpus: Vec<Vcpu>,
    pub(crate) console: LineBuffer,
    /// The console ring's partial line ([`crate::backend`]).
    pub(crate) ring_console: LineBuffer,
    /// Whether the guest has written to its console ring: from then on the
    /// ring is its console (as `xl console` shows) and console_io output
    /// goes to the hypervisor's log only.
    pub(crate) ring_used: bool,
    /// Its console and xenstore ring ports.
    pub(crate) ring_ports: RingPorts,
    /// Its frames' types and counts.
    pub(crate) mmu: DomainMmu,
    pub(crate) shutdown: Option<ShutdownRecord>,
    /// Reason latched by SCHEDOP_shutdown_code (reported at shutdown).
    pub(crate) shutdown_code: Option<u32>,
    /// Enabled VMASST_TYPE_* assists, one bit per type (vm_assist).
    pub(crate) vm_assist: u64,
    /// The most frames it may own (Xen's `max_pages`).
    pub(crate) max_pages: u64,
    /// Its memory map as XENMEM_set_memory_map left it (20-byte E820
    /// entries); empty: none set, and XENMEM_memory_map is -ENOSYS as in
    /// Xen for a PV domain the toolstack gave no map.
    pub(crate) e820: Vec<[u8; 20]>,
    /// Its grant table ([`crate::grant`]).
    pub(crate) grant: crate::grant::GrantTable,
    /// Its FIFO event state, once it switched to the FIFO ABI
    /// ([`crate::event_fifo`]); `None`: 2-level.
    #[serde(default)]
    pub(crate) fifo: Option<Box<FifoDomain>>,
    /// Whether it is the privileged control domain
    /// ([`DomainConfig::privileged`]).
    #[serde(default)]
    pub(crate) privileged: bool,
}

impl Domain {
    /// The type state of frame `mfn`, if the domain owns it.
    pub fn mmu_page(&self, mfn: Mfn) -> Option<PageInfo> {
        self.mmu.pages.get(&mfn.0).copied()
    }

    /// PFN → MFN as the builder laid it out (the guest's own P2M may
    /// have changed since, by ballooning).
    pub fn p2m(&self) -> &[Mfn] {
        &self.built.p2m
    }

    /// Whether it is the privileged control domain.
    pub fn privileged(&self) -> bool {
        self.privileged
    }

    /// Whether the domain owns `mfn`.
    pub fn owns(&self, mfn: Mfn) -> bool {
        self.mmu.pages.contains_key(&mfn.0)
    }

    /// Frames it owns (Xen's `tot_pages`).
    pub fn tot_pages(&self) -> u64 {
        self.mmu.pages.len() as u64
    }

    /// The most frames it may own (Xen's `max_pages`).
    pub fn max_pages(&self) -> u64 {
        self.max_pages
    }

    /// Whether the guest may map `mfn` (its own frames, its shared_info,
    /// its group's shared area).
    pub fn may_map(&self, mfn: Mfn) -> bool {
        self.owns(mfn) || self.foreign_ok.contains(&mfn)
    }

    /// Where the builder put things.
    pub fn layout(&self) -> &Layout {
        &self.built.layout
    }

    /// The shared_info frame.
    pub fn shared_info(&self) -> Mfn {
        self.built.shared_info
    }

    /// VCPU 0's registers at its first instruction.
    pub fn start_regs(&self) -> ArchState {
        self.built.regs.clone()
    }

    /// Number of VCPUs.
    pub fn nr_vcpus(&self) -> u32 {
        self.vcpus.len() as u32
    }

    /// A VCPU's state.
    pub fn vcpu(&self, v: VcpuId) -> Option<&Vcpu> {
        self.vcpus.get(v.0 as usize)
    }

    /// Why it stopped, once it has.
    pub fn shutdown(&self) -> Option<&ShutdownRecord> {
        self.shutdown.as_ref()
    }

    /// Its FIFO event state, if it switched to the FIFO ABI.
    pub fn fifo(&self) -> Option<&FifoDomain> {
        self.fifo.as_deref()
    }

    /// Where VCPU `v`'s event state lives.
    pub fn event_layout(&self, v: VcpuId) -> Option<EventLayout> {
        let vi = self.vcpus.get(v.0 as usize)?.vcpu_info?;
        Some(EventLayout {
            shared_info: self.built.shared_info.addr(0).get(),
            vcpu_info: vi,
        })
    }
}

/// A domain's console and xenstore ring ports (start_info's
/// `console.domU.evtchn` and `store_evtchn`).
#[derive(Copy, Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct RingPorts {
    /// The console ring's port.
    pub console: Port,
    /// The xenstore ring's port.
    pub xenstore: Port,
}

fn ring_port(e: crate::abi::Errno) -> BuildError {
    BuildError::BadPageTables(format!("no event channel for a ring ({e:?})"))
}

/// What the calling VCPU does after a hypercall.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub enum Next {
    /// Continue at `regs.rip` (RAX holds the result).
    Resume,
    /// Continue, but the scheduler may run another VCPU first.
    Yield,
    /// Blocked until an [`Effect::Wake`] or [`Hypervisor::deliver`] names
    /// it; RAX is already 0.
    Block,
    /// Polling: as `Block`, also woken by its poll timeout
    /// ([`Hypervisor::run_timers`]); RAX is already 0.
    Poll,
    /// It took itself down (VCPUOP_down); resumes after an `up`.
    Down,
    /// Its domain shut down: stop every VCPU of the domain.
    Shutdown,
}

/// A consequence of a hypercall for the machine to carry out, in order.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Effect {
    /// Make a port pending: route to `raise.vcpu`'s core, then
    /// [`Hypervisor::deliver`].
    Raise(Raise),
    /// A VCPU came up: run it from `regs` (its VCPUOP_initialise context)
    /// or, when `None`, from the registers it had when it went down.
    Start {
        /// Domain.
        domain: DomainId,
        /// VCPU.
        vcpu: VcpuId,
        /// Registers to start from.
        regs: Option<Box<ArchState>>,
    },
    /// Another VCPU went down: stop running it.
    Stop {
        /// Domain.
        domain: DomainId,
        /// VCPU.
        vcpu: VcpuId,
    },
    /// Drop cached translations of `vcpus` of `domain` (all of its VCPUs
    /// when `None`): every page, or the one page of `page`.
    Flush {
        /// Domain.
        domain: DomainId,
        /// The VCPUs (None: all of the domain's).
        vcpus: Option<Vec<VcpuId>>,
        /// The page VA to drop, or None for every translation.
        page: Option<u64>,
    },
    /// The VCPU's active page-table root changed (CR3 write, a new base
    /// pointer, a switch between guest kernel and user mode): the core
    /// walks [`crate::vcpu::VcpuMmu::active_root`] from now on.
    NewRoot {
        /// Domain.
        domain: DomainId,
        /// VCPU.
        vcpu: VcpuId,
    },
    /// A blocked or polling VCPU became runnable.
    Wake {
        /// Domain.
        domain: DomainId,
        /// VCPU.
        vcpu: VcpuId,
    },
    /// The guest marked the start (`begin`) or end of its region of
    /// interest (`smpsim_op(ROI, phase)`): the simulator may switch its
    /// timing model.
    Roi {
        /// Domain.
        domain: DomainId,
        /// VCPU that marked it.
        vcpu: VcpuId,
        /// Start (true) or end.
        begin: bool,
    },
}

/// What a hypercall did.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Outcome {
    /// The caller's next step.
    pub next: Next,
    /// Consequences, in order.
    pub effects: Vec<Effect>,
}

/// What an upcall or exception delivery did.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub enum Upcall {
    /// Nothing due (no event pending, or events masked).
    NotDue,
    /// The bounce frame was pushed; `regs` enter the callback.
    Delivered,
    /// An event is due but no event callback is registered yet.
    NoCallback,
    /// The frame could not be written (or there was no handler): the
    /// domain crashed; stop its VCPUs.
    Crashed,
}

/// Event counts, for the machine's statistics (all deterministic).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Counters {
    /// Hypercalls handled, by number.
    pub hypercalls: BTreeMap<u64, u64>,
    /// Raises applied by [`Hypervisor::deliver`] / [`Hypervisor::note_raised`].
    pub raises: u64,
    /// Raises that found the port already pending (no new edge).
    pub raises_already_pending: u64,
    /// Blocked or polling VCPUs woken by events.
    pub wakes: u64,
    /// Event upcalls delivered.
    pub upcalls: u64,
    /// Exceptions bounced to guest handlers.
    pub exceptions: u64,
    /// VIRQ_TIMER expiries (single-shot or periodic).
    pub timer_fires: u64,
}

/// The simulated hypervisor.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Hypervisor {
    pub(crate) counters: Counters,
    pub(crate) cfg: HypervisorConfig,
    pub(crate) scale: TimeScale,
    pub(crate) frames: FrameAllocator,
    pub(crate) evtchn: EventChannels,
    pub(crate) domains: Vec<Domain>,
    pub(crate) console: Vec<ConsoleLine>,
    console_taken: usize,
    /// Bytes guests wrote with console_io while their console ring was in
    /// use (Xen's own log; not part of the guests' consoles).
    pub(crate) xen_log_bytes: u64,
    /// The frames of the read-only M2P (`machine_to_phys_mapping`),
    /// allocated with the first domain.
    pub(crate) m2p_frames: Arc<Vec<Mfn>>,
    shutdowns: Vec<ShutdownRecord>,
    pub(crate) guest_hist: GuestHistograms,
    /// The xenstore daemon every domain's ring talks to.
    #[serde(default)]
    pub(crate) xenstored: Xenstored,
    /// Effects of guest mode switches made outside a hypercall, for
    /// [`Hypervisor::take_deferred_effects`]; drained within the service
    /// tick that made them, so never part of a checkpoint.
    #[serde(skip)]
    pub(crate) deferred: Vec<Effect>,
    /// VIRQ_DOM_EXC raises for the control domain queued by shutdowns,
    /// for [`Hypervisor::take_dom_exc`]; drained by the service tick that
    /// made them, so never part of a checkpoint.
    #[serde(skip)]
    dom_exc: Vec<Effect>,
}

impl Hypervisor {
    /// A hypervisor with no domains.
    pub fn new(cfg: HypervisorConfig) -> Self {
        Hypervisor {
            counters: Counters::default(),
            scale: TimeScale::from_hz(cfg.tsc_hz),
            frames: FrameAllocator::new(cfg.first_mfn, cfg.nr_frames),
            cfg,
            evtchn: EventChannels::new(),
            domains: Vec::new(),
            console: Vec::new(),
            console_taken: 0,
            xen_log_bytes: 0,
            m2p_frames: Arc::new(Vec::new()),
            shutdowns: Vec::new(),
            guest_hist: GuestHistograms::default(),
            xenstored: Xenstored::default(),
            deferred: Vec::new(),
            dom_exc: Vec::new(),
        }
    }

    /// Takes `n` machine frames from the allocator and never uses them,
    /// so that the domains built next get other frames than they would
    /// (a domain restore into a different frame layout).
    ///
    /// # Errors
    /// When fewer than `n` frames are left.
    pub fn reserve_frames(&mut self, n: u64) -> Result<(), crate::frames::OutOfFrames> {
        self.frames.alloc(n).map(drop)
    }

    /// The guest time scale.
    pub fn time_scale(&self) -> TimeScale {
        self.scale
    }

    /// Guest system time (ns) at `cycle`.
    pub fn now_ns(&self, cycle: u64) -> u64 {
        self.scale.ticks_to_ns(cycle)
    }

    /// `pages` zeroed machine frames for the shared area of a group of
    /// domains, to be mapped at [`builder::SHARED_AREA_VA`] in each (pass
    /// it in every member's [`DomainConfig::shared`]).
    pub fn alloc_shared_area(
        &mut self,
        pages: u64,
        store: &mut dyn FrameStore,
    ) -> Result<SharedArea, OutOfFrames> {
        let frames = self.frames.alloc(pages)?;
        let zero = vec![0u8; crate::ids::PAGE_SIZE as usize];
        for m in &frames {
            store.write(m.addr(0).get(), &zero);
        }
        Ok(SharedArea {
            va: builder::SHARED_AREA_VA,
            frames,
        })
    }

    /// Builds a domain (see [`crate::builder`]); VCPU 0 is up, the others
    /// down and uninitialised.
    pub fn create_domain(
        &mut self,
        img: &GuestImage,
        cfg: &DomainConfig,
        store: &mut dyn FrameStore,
    ) -> Result<DomainId, BuildError> {
        self.ensure_m2p()?;
        let mut built = builder::build(img, cfg, self.scale, &mut self.frames, store)?;
        let id = self.evtchn.add_domain(cfg.vcpus);
        let si = built.shared_info;
        let vcpus = (0..cfg.vcpus)
            .map(|v| {
                let vi = (v < crate::abi::shared_info::LEGACY_MAX_VCPUS).then(|| {
                    si.addr(u64::from(v) * crate::abi::shared_info::VCPU_INFO_SIZE)
                        .get()
                });
                Vcpu::new(VcpuId(v), vi, self.cfg.default_periodic_ns)
            })
            .collect();
        for (pfn, &mfn) in built.p2m.iter().enumerate() {
            self.write_m2p_store(mfn, pfn as u64, store);
        }
        // The console and xenstore rings' ports, unbound for the backend.
        let ports = RingPorts {
            console: self
                .evtchn
                .alloc_unbound(id, DOMID_SELF, 0)
                .map_err(ring_port)?,
            xenstore: self
                .evtchn
                .alloc_unbound(id, DOMID_SELF, 0)
                .map_err(ring_port)?,
        };
        built.start_info.console_evtchn = ports.console.0;
        built.start_info.store_evtchn = ports.xenstore.0;
        builder::rewrite_start_info(&built, store);
        let mut foreign_ok = vec![si];
        foreign_ok.extend(cfg.shared.iter().flat_map(|a| a.frames.iter().copied()));
        let nr_pages = built.p2m.len() as u64;
        let pages = built
            .p2m
            .iter()
            .map(|m| (m.0, PageInfo::default()))
            .collect();
        let l4 = built.l4;
        let ring_ma = Mfn(built.start_info.store_mfn).addr(0).get();
        self.xenstored
            .add_domain(id.0, &format!("d{}", id.0), ring_ma, ports.xenstore);
        let mut dom = Domain {
            id,
            built,
            foreign_ok,
            vcpus,
            console: LineBuffer::default(),
            ring_console: LineBuffer::default(),
            ring_used: false,
            ring_ports: ports,
            mmu: DomainMmu { pages },
            shutdown: None,
            shutdown_code: None,
            vm_assist: 0,
            max_pages: (cfg.max_memory_bytes / crate::ids::PAGE_SIZE).max(nr_pages),
            e820: Vec::new(),
            grant: crate::grant::GrantTable::default(),
            fifo: None,
            privileged: cfg.privileged,
        };
        dom.vcpus[0].initialised = true;
        dom.vcpus[0].bring_up(0);
        self.domains.push(dom);
        // Xen's builder pins the bootstrap L4 and loads it into CR3.
        let mut sm = crate::memory::StoreMa(store);
        let dom = self.dom_mut(id);
        let mut mmu = Mmu {
            dom,
            mem: &mut sm,
            flush_all: false,
        };
        mmu.pin(l4, 4).map_err(|e| {
            BuildError::BadPageTables(format!("the bootstrap L4 does not validate ({e:?})"))
        })?;
        self.new_baseptr(id, VcpuId(0), Some(l4), BasePtr::Kernel, &mut sm)
            .map_err(|e| BuildError::BadPageTables(format!("CR3 load refused ({e:?})")))?;
        Ok(id)
    }

    /// Allocates the read-only M2P's frames (one u64 per machine frame)
    /// before the first domain. Departure from Xen, for speed: the entries
    /// of frames no domain was ever given are left 0 (machine memory stays
    /// lazily allocated) where Xen writes INVALID_M2P_ENTRY (~0).
    fn ensure_m2p(&mut self) -> Result<(), BuildError> {
        if !self.m2p_frames.is_empty() {
            return Ok(());
        }
        let machine_frames = self.cfg.first_mfn.0 + self.cfg.nr_frames;
        let n = (machine_frames * 8).div_ceil(crate::ids::PAGE_SIZE);
        let frames = self.frames.alloc(n).map_err(BuildError::OutOfFrames)?;
        self.m2p_frames = Arc::new(frames);
        Ok(())
    }

    fn m2p_entry(&self, mfn: Mfn) -> Option<u64> {
        let at = mfn.0 * 8;
        let frame = self.m2p_frames.get((at / crate::ids::PAGE_SIZE) as usize)?;
        Some(frame.addr(at % crate::ids::PAGE_SIZE).get())
    }

    fn write_m2p_store(&self, mfn: Mfn, pfn: u64, store: &mut dyn FrameStore) {
        if let Some(ma) = self.m2p_entry(mfn) {
            store.write(ma, &pfn.to_le_bytes());
        }
    }

    /// Writes `machine_to_phys_mapping[mfn] = pfn` (MMU_MACHPHYS_UPDATE).
    pub fn write_m2p(&self, mfn: Mfn, pfn: u64, mem: &mut dyn EventMemory) {
        if let Some(ma) = self.m2p_entry(mfn) {
            mem.write_ma_u64(ma, pfn);
        }
    }

    /// All domains, by id.
    pub fn domains(&self) -> &[Domain] {
        &self.domains
    }

    /// One domain.
    pub fn domain(&self, d: DomainId) -> Option<&Domain> {
        self.domains.get(usize::from(d.0))
    }

    pub(crate) fn dom_mut(&mut self, d: DomainId) -> &mut Domain {
        self.domains
            .get_mut(usize::from(d.0))
            .expect("the machine only names domains it created")
    }

    pub(crate) fn vcpu_mut(&mut self, d: DomainId, v: VcpuId) -> &mut Vcpu {
        self.dom_mut(d)
            .vcpus
            .get_mut(v.0 as usize)
            .expect("the machine only names VCPUs the domain has")
    }

    /// Event counts so far.
    pub fn counters(&self) -> &Counters {
        &self.counters
    }

    /// The latency histograms guests measured and passed in with
    /// `smpsim_op(RECORD_SAMPLES)`, as `(name, histogram of TSC cycles)` in
    /// id order (`evtchn_rtt`, `lock_wait`, `barrier_wait`), empty ones
    /// included.
    pub fn guest_histograms(
        &self,
    ) -> impl Iterator<Item = (&'static str, &hdrhistogram::Histogram<u64>)> {
        self.guest_hist.iter()
    }

    /// The event-channel table.
    pub fn event_channels(&self) -> &EventChannels {
        &self.evtchn
    }

    /// Every console line so far.
    pub fn console_lines(&self) -> &[ConsoleLine] {
        &self.console
    }

    /// Console lines not yet taken by an earlier call.
    pub fn take_new_console_lines(&mut self) -> &[ConsoleLine] {
        let from = self.console_taken;
        self.console_taken = self.console.len();
        &self.console[from..]
    }

    /// Shutdown records, in the order domains stopped.
    pub fn shutdowns(&self) -> &[ShutdownRecord] {
        &self.shutdowns
    }

    /// Whether every domain has shut down.
    pub fn all_shut_down(&self) -> bool {
        self.domains.iter().all(|d| d.shutdown.is_some())
    }

    /// Stops domain `d` with `reason` at `cycle` (first call wins; a reason
    /// latched with SCHEDOP_shutdown_code is reported instead): every VCPU
    /// goes down, its partial console line is flushed. Returns whether this
    /// call shut it down.
    pub fn shutdown_domain(
        &mut self,
        d: DomainId,
        reason: u32,
        message: String,
        cycle: u64,
    ) -> bool {
        let mut out = std::mem::take(&mut self.console);
        let dom = self.dom_mut(d);
        if dom.shutdown.is_some() {
            self.console = out;
            return false;
        }
        dom.console.flush(d, &mut out);
        dom.ring_console.flush(d, &mut out);
        for v in &mut dom.vcpus {
            v.state = RunState::Down;
            v.poll = None;
        }
        let mut rec = ShutdownRecord {
            domain: d,
            reason: dom.shutdown_code.unwrap_or(reason),
            message,
            cycle,
        };
        if rec.reason != reason {
            let latched = format!(
                " (reason {} latched by SCHEDOP_shutdown_code)",
                rec.reason_name()
            );
            rec.message.push_str(&latched);
        }
        dom.shutdown = Some(rec.clone());
        self.xenstored.domain_shutdown(d.0);
        self.send_dom_exc(d);
        self.console = out;
        self.shutdowns.push(rec);
        true
    }

    /// Xen's `domain_shutdown` sends the global VIRQ_DOM_EXC (to the
    /// control domain, which binds it); it is queued since
    /// a shutdown may come from a fault, where no effects are returned.
    fn send_dom_exc(&mut self, d: DomainId) {
        let ctl = DomainId(0);
        if d == ctl || self.domain(ctl).is_none_or(|c| c.shutdown.is_some()) {
            return;
        }
        let v = VcpuId(0);
        if let Some(port) = self.evtchn.virq_port(ctl, v, crate::abi::VIRQ_DOM_EXC) {
            self.dom_exc.push(Effect::Raise(Raise {
                domain: ctl,
                port,
                vcpu: v,
            }));
        }
    }

    /// The VIRQ_DOM_EXC raises shutdowns queued since the last call.
    pub fn take_dom_exc(&mut self) -> Vec<Effect> {
        std::mem::take(&mut self.dom_exc)
    }

    /// Crashes domain `d` (bad instruction, unmapped access, …).
    pub fn crash_domain(&mut self, d: DomainId, message: String, cycle: u64) -> bool {
        self.shutdown_domain(d, crate::abi::sched::SHUTDOWN_CRASH, message, cycle)
    }

    /// Makes `r.port` pending for `r.vcpu` (§3.4: raise, kick, pollers; a
    /// FIFO domain's through [`FifoDomain::raise`]).
    /// Returns the VCPUs of `r.domain` this woke (blocked or polling ones).
    pub fn deliver(&mut self, r: Raise, mem: &mut dyn EventMemory) -> Vec<VcpuId> {
        let Some(dom) = self.domains.get_mut(usize::from(r.domain.0)) else {
            return Vec::new();
        };
        if dom.shutdown.is_some() {
            return Vec::new();
        }
        if let Some(fifo) = dom.fifo.as_deref_mut() {
            let vi = dom.vcpus.get(r.vcpu.0 as usize).and_then(|v| v.vcpu_info);
            let raised = fifo.raise(mem, vi, r.port, r.vcpu);
            return self.note_raised(r, raised);
        }
        let raised = match dom.event_layout(r.vcpu) {
            Some(l) => event_2l::raise(mem, &l, r.port),
            None => pending_only(mem, dom.built.shared_info, r.port),
        };
        self.note_raised(r, raised)
    }

    /// The run-state half of [`Self::deliver`], for a machine that applies
    /// the memory half ([`event_2l::raise`] on [`Domain::event_layout`])
    /// itself: a kick wakes the notified VCPU if it sleeps, and a new
    /// pending bit wakes the domain's VCPUs polling that port. Returns the
    /// VCPUs woken.
    pub fn note_raised(&mut self, r: Raise, raised: Raised) -> Vec<VcpuId> {
        let Some(dom) = self.domains.get_mut(usize::from(r.domain.0)) else {
            return Vec::new();
        };
        if dom.shutdown.is_some() {
            return Vec::new();
        }
        let mut woken = Vec::new();
        let kicked = raised == (Raised::Marked { kick: true });
        if kicked
            && dom
                .vcpus
                .get_mut(r.vcpu.0 as usize)
                .is_some_and(|v| v.wake())
        {
            woken.push(r.vcpu);
        }
        if raised != Raised::AlreadyPending {
            for v in &mut dom.vcpus {
                let polls = v.poll.as_ref().is_some_and(|p| p.ports.contains(&r.port));
                if polls && v.wake() {
                    woken.push(v.id);
                }
            }
        }
        self.counters.raises += 1;
        self.counters.raises_already_pending += u64::from(raised == Raised::AlreadyPending);
        self.counters.wakes += woken.len() as u64;
        woken
    }

    /// The cycle at which VCPU `v`'s next timer or poll timeout expires.
    pub fn next_timer_cycle(&self, d: DomainId, v: VcpuId) -> Option<u64> {
        let dom = self.domain(d)?;
        let ns = dom.vcpu(v)?.next_deadline_ns()?;
        Some(self.scale.ns_to_ticks(ns))
    }

    /// Fires VCPU `v`'s expired timers at `cycle`: a VIRQ_TIMER raise (if
    /// the VIRQ is bound on `v`) and/or a wake from a timed-out poll.
    pub fn run_timers(&mut self, d: DomainId, v: VcpuId, cycle: u64) -> Vec<Effect> {
        let now = self.now_ns(cycle);
        let e = self.vcpu_mut(d, v).expire(now);
        let mut out = Vec::new();
        if e.virq_timer {
            self.counters.timer_fires += 1;
            out.extend(self.timer_raise(d, v));
        }
        if e.poll_timeout {
            out.push(Effect::Wake { domain: d, vcpu: v });
        }
        out
    }

    pub(crate) fn timer_raise(&self, d: DomainId, v: VcpuId) -> Option<Effect> {
        let port = self.evtchn.virq_port(d, v, crate::abi::VIRQ_TIMER)?;
        Some(Effect::Raise(Raise {
            domain: d,
            port,
            vcpu: v,
        }))
    }

    /// At an instruction boundary: if VCPU `v` has an upcall due
    /// (`upcall_pending && !upcall_mask`), pushes the bounce frame, masks
    /// events and enters the event callback (§2.6).
    pub fn upcall(
        &mut self,
        d: DomainId,
        v: VcpuId,
        cycle: u64,
        regs: &mut ArchState,
        mem: &mut dyn HypervisorMemory,
    ) -> Upcall {
        let now = self.now_ns(cycle);
        let dom = self.dom_mut(d);
        // The machine offers an upcall wherever a VCPU resumes: a woken
        // VCPU's run state goes back to running here.
        if let Some(vc) = dom.vcpus.get_mut(v.0 as usize) {
            if vc.state == RunState::Runnable {
                vc.pv.runstate.switch(crate::pvcpu::RUNSTATE_RUNNING, now);
            }
        }
        let Some(l) = dom.event_layout(v) else {
            return Upcall::NotDue;
        };
        let callback = dom.vcpus[v.0 as usize].callbacks.event;
        let step = if self.in_user_mode(d, v) {
            self.user_upcall(d, v, l.vcpu_info, callback, regs, mem)
        } else {
            crate::upcall::try_upcall(regs, mem, l.vcpu_info, callback)
        };
        match step {
            Ok(UpcallStep::NotDue) => Upcall::NotDue,
            Ok(UpcallStep::NoCallback) => Upcall::NoCallback,
            Ok(UpcallStep::Delivered) => {
                self.counters.upcalls += 1;
                Upcall::Delivered
            }
            Err(f) => {
                let msg = format!(
                    "{v} event upcall: cannot write the bounce frame at {:#x} (RSP {:#x})",
                    f.va,
                    regs.rsp()
                );
                self.crash_domain(d, msg, cycle);
                Upcall::Crashed
            }
        }
    }

    /// Bounces exception `vector` to the guest's handler from its trap
    /// table (with `error_code` pushed, `cr2` stored in vcpu_info and the
    /// virtual CR2 for #PF); no handler or an unwritable stack crashes the
    /// domain. Taken in guest user mode, it first switches to kernel mode
    /// and the frame goes on the kernel stack (`guest_mode.rs`).
    #[allow(clippy::too_many_arguments)]
    pub fn exception(
        &mut self,
        d: DomainId,
        v: VcpuId,
        cycle: u64,
        vector: u8,
        error_code: Option<u64>,
        cr2: Option<u64>,
        regs: &mut ArchState,
        mem: &mut dyn HypervisorMemory,
    ) -> Upcall {
        let dom = self.dom_mut(d);
        let trap = dom.vcpus[v.0 as usize].traps[usize::from(vector)];
        let layout = dom.event_layout(v);
        if trap.address == 0 {
            let msg = format!(
                "{v}: exception {vector} (error code {error_code:?}) at RIP {:#x} with no handler",
                regs.rip
            );
            self.crash_domain(d, msg, cycle);
            return Upcall::Crashed;
        }
        let mask_at = layout.map(|l| l.vcpu_info + crate::abi::vcpu_info::UPCALL_MASK);
        let saved = mask_at.map_or(1, |a| mem.read_u8(a));
        let rip = regs.rip;
        let from = self.enter_kernel(d, v, regs);
        if let Err(f) = push_frame(regs, mem, saved, error_code, trap.address, from) {
            let msg = format!(
                "{v}: exception {vector} at RIP {rip:#x}: cannot write the bounce frame at {:#x}",
                f.va
            );
            self.crash_domain(d, msg, cycle);
            return Upcall::Crashed;
        }
        if let (Some(a), true) = (mask_at, trap.flags & 4 != 0) {
            mem.write_u8(a, 1);
        }
        if let Some(addr) = cr2 {
            self.vcpu_mut(d, v).pv.cr2 = addr;
            if let Some(l) = layout {
                mem.write_ma_u64(l.vcpu_info + crate::abi::vcpu_info::CR2, addr);
            }
        }
        self.counters.exceptions += 1;
        Upcall::Delivered
    }
}

impl Hypervisor {
    /// [`crate::upcall::try_upcall`] for a VCPU in guest user mode: the
    /// frame goes on the kernel stack after the switch to kernel mode.
    fn user_upcall(
        &mut self,
        d: DomainId,
        v: VcpuId,
        vcpu_info: u64,
        callback: u64,
        regs: &mut ArchState,
        mem: &mut dyn HypervisorMemory,
    ) -> Result<UpcallStep, crate::memory::Fault> {
        if !event_2l::upcall_due(mem, vcpu_info) {
            return Ok(UpcallStep::NotDue);
        }
        if callback == 0 {
            return Ok(UpcallStep::NoCallback);
        }
        let from = self.enter_kernel(d, v, regs);
        push_frame(regs, mem, 0, None, callback, from)?;
        mem.write_u8(vcpu_info + crate::abi::vcpu_info::UPCALL_MASK, 1);
        Ok(UpcallStep::Delivered)
    }
}

/// Sets the pending bit of a port whose VCPU has no vcpu_info.
fn pending_only(mem: &mut dyn EventMemory, shared_info: Mfn, port: Port) -> Raised {
    let word = shared_info
        .addr(crate::abi::shared_info::EVTCHN_PENDING)
        .get()
        + 8 * u64::from(port.0 / 64);
    if mem.test_and_set_bit(word, port.0 % 64) {
        Raised::AlreadyPending
    } else {
        Raised::PendingOnly
    }
}

#[cfg(test)]
mod checkpoint_tests;
#[cfg(test)]
#[path = "hypervisor/tests.rs"]
mod tests;
