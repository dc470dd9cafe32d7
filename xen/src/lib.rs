//! smpsim-xen: the simulated Xen hypervisor for PV64 guests.
//!
//! One value, [`hypervisor::Hypervisor`], with `&mut self` methods. It is
//! not a partition and sends no engine messages: the machine calls it from
//! its barrier hook at service ticks (every multiple of the service period
//! H), when every partition is quiescent (`src/machine/hyper.rs`).
//!
//! # Owns
//! Domains and their VCPUs (run state, timers, callbacks, trap tables),
//! the machine frames handed out to domains ([`frames`]), each domain's
//! P2M/M2P and the PV MMU's records of its page tables ([`mmu`]: page
//! types, pins, each VCPU's root; the tables themselves are guest frames
//! in machine memory, and a core walks them through the
//! [`mmu::PvSpace`] it is handed), the event-channel table ([`evtchn`]), console buffers, shutdown records,
//! event counters and the guest-measured histograms ([`guest_hist`]).
//! Machine memory itself is the machine's: the builder writes images,
//! start_info, shared_info and the hypercall page into it through
//! [`memory::FrameStore`], and hypercalls read and write guest memory
//! through [`memory::HypervisorMemory`]. Numbers and layouts follow
//! shared/xen-abi.md.
//!
//! # Depends on
//! `smpsim-cores` for the register state: a VCPU's registers are the
//! core's [`smpsim_cores::ArchState`] with its register indices and RFLAGS
//! bits ([`regs`] adds the PV accessors). `smpsim-uncore` for
//! [`Mfn`] (the memory system's frame number, re-exported). Memory is
//! reached only through the traits the machine passes in:
//! [`memory::GuestMemory`] (guest-virtual copy-in/out with a fault result),
//! [`event_2l::EventMemory`] (bit operations at machine addresses),
//! [`memory::FrameStore`] (machine memory by address); the machine uses
//! [`memory::PagedMemory`], plain functional accesses to machine memory
//! that bypass the caches (hypervisor writes become visible at the tick).
//!
//! # Invariants
//! - Deterministic: every result depends only on the arguments and the
//!   order of calls; state is in `Vec`s and `BTreeMap`s, nothing reads host
//!   time. The machine fixes that order: trapped VCPUs by (trap cycle,
//!   core, context), then due timers by (domain, VCPU), each call's
//!   [`hypervisor::Effect`]s applied in the order returned.
//! - Single-threaded: called only from the barrier hook while no partition
//!   runs, so its functional memory accesses cannot race a core's; they
//!   bypass the coherence states (the machine's documented approximation).
//! - A page-table change made here (mmu_update, update_va_mapping) is
//!   reported as [`hypervisor::Effect::Flush`] for the cores' cached
//!   translations, and a new root (new_baseptr, a kernel/user switch) as
//!   [`hypervisor::Effect::NewRoot`], so the machine can hand the core
//!   the VCPU's new [`mmu::PvSpace`].
//! - RFLAGS bit 1 stays set in the registers it hands back: where it loads
//!   RFLAGS from a guest image (start of day, VCPUOP_initialise, iret) it
//!   sets the bit, as [`smpsim_cores::ArchState`] requires.
//!
//! # Lifecycle
//! Build: [`hypervisor::Hypervisor::new`], then
//! [`hypervisor::Hypervisor::alloc_shared_area`] for domain groups that
//! share memory, then [`hypervisor::Hypervisor::create_domain`] per domain;
//! the machine starts VCPU 0 of each from
//! [`hypervisor::Domain::start_regs`] and
//! [`hypervisor::Hypervisor::vcpu_space`].
//! Run: epochs run without it; at each service tick the machine hands it
//! the trapped VCPUs ([`hypervisor::Hypervisor::hypercall`],
//! [`hypervisor::Hypervisor::guest_fault`], which runs the PV emulator
//! [`emulate`] before bouncing), fires due timers
//! ([`hypervisor::Hypervisor::run_timers`]), applies the effects
//! ([`hypervisor::Hypervisor::deliver`] for raises; starts, stops, wakes,
//! remaps, ROI marks) and delivers pending upcalls
//! ([`hypervisor::Hypervisor::upcall`]) to VCPUs that resume, wake or are
//! interrupted. Finish: once [`hypervisor::Hypervisor::all_shut_down`] the
//! machine stops the engine and reads the shutdown records, console lines,
//! counters and histograms into its report.
//!
//! # Errors
//! Guest misbehaviour is a value: a bad hypercall argument returns Xen's
//! error code in RAX ([`abi::Errno`]); a guest that cannot take an
//! exception or upcall (no handler, unwritable stack) crashes its domain
//! (a [`hypervisor::ShutdownRecord`] with reason crash). Build problems
//! (bad image or params block, too little memory) are
//! [`builder::BuildError`] / [`frames::OutOfFrames`] results. The machine
//! naming a domain or VCPU that was never created is a simulator bug and
//! panics.
#![forbid(unsafe_code)]
#![warn(missing_docs)]
//!
//! # Status
//! Built: the ABI numbers ([`abi`]), the domain builder ([`builder`]:
//! layout, P2M, start_info, shared_info, hypercall page, params block,
//! start-of-day registers), machine frames ([`frames`]), the per-domain
//! address space and memory traits ([`memory`]), per-VCPU state and timers
//! ([`vcpu`]), the event-channel binding table ([`evtchn`]), Xen's 2-level
//! delivery ([`event_2l`]) and FIFO ABI ([`event_fifo`]), hypercall dispatch ([`hypercall`]), the bounce
//! frame and iret ([`upcall`]), Xen's PV emulator of privileged
//! instructions ([`emulate`]) over the per-VCPU PV CPU state ([`pvcpu`]),
//! guest user mode (`guest_mode.rs`), the console ([`console`]), time scaling
//! ([`time`]), guest-measured latency histograms fed by the smpsim-only
//! hypercall 56 ([`guest_hist`]) and the [`hypervisor::Hypervisor`] that ties them together
//! (its module doc says how the machine drives it), grant tables v1 and v2
//! ([`grant`], with page transfer), memory_op and the balloon
//! (`hypercall/memory_op.rs`), the
//! console ring's backend ([`backend`]) and xenstored ([`xenstore`]: one
//! store for every domain, served over each domain's ring), and domain
//! save/restore in libxc's style ([`save`]: frames canonicalised to PFNs
//! and back; single-domain machines). Not built: live migration, and
//! any hypervisor partition (hypercalls handled in a core's partition or
//! sent as messages): hypervisor work is not timed through the caches.

pub mod abi;
pub mod backend;
pub mod builder;
pub mod console;
pub mod debug;
pub mod emulate;
pub mod event_2l;
pub mod event_fifo;
pub mod evtchn;
pub mod frames;
pub mod grant;
pub mod guest_hist;
mod guest_mode;
pub mod hypercall;
pub mod hypervisor;
pub mod ids;
pub mod memory;
pub mod mmu;
pub mod pvcpu;
pub mod regs;
pub mod save;
pub mod time;
pub mod upcall;
pub mod vcpu;
pub mod xenstore;

#[cfg(test)]
mod testenv;

#[cfg(test)]
mod boot_tests;
#[cfg(test)]
mod fuzz_tests;

pub use ids::{DomainId, Mfn, Pfn, Port, VcpuId};
