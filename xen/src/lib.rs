//! smpsim-xen: the simulated Xen hypervisor for PV64 guests.
//!
//! # Owns
//! Domains and their VCPUs, pseudo-physical memory (P2M/M2P), start_info,
//! shared_info and vcpu_info, the hypercall page, hypercalls, event channels
//! (2-level ABI), timers, the console, and later grant tables, ballooning and
//! save/restore. Numbers and layouts follow shared/xen-abi.md.
//!
//! # Depends on
//! `smpsim-engine` only. What it needs from the cores and the memory system
//! it asks for through small traits the machine implements:
//! [`memory::GuestMemory`] (guest-virtual copy-in/out with a fault result),
//! [`event_2l::EventMemory`] (atomic bit operations at machine addresses),
//! [`memory::FrameStore`] (machine memory for the builder); registers are
//! the core's [`smpsim_cores::ArchState`] (see [`regs`]).
//!
//! # Invariants
//! Hypervisor-wide state changes happen in the engine's barrier phase in a
//! deterministic order; bad guest arguments return Xen's error codes.
//!
//! # Lifecycle
//! Domain build → epochs (exits handled at barriers) → shutdown records.
//!
//! # Errors
//! Guest errors are Xen error codes returned to the guest; builder errors
//! (bad ELF, too little memory) are `Result`s.
#![forbid(unsafe_code)]
#![warn(missing_docs)]
//!
//! # Status
//! Built: the ABI numbers ([`abi`]), the domain builder ([`builder`]:
//! layout, P2M, start_info, shared_info, hypercall page, params block,
//! start-of-day registers), machine frames ([`frames`]), the per-domain
//! address space and memory traits ([`memory`]), per-VCPU state and timers
//! ([`vcpu`]), the event-channel binding table ([`evtchn`]), Xen's 2-level
//! delivery ([`event_2l`]), hypercall dispatch ([`hypercall`]), the bounce
//! frame and iret ([`upcall`]), the console ([`console`]), time scaling
//! ([`time`]), guest-measured latency histograms fed by the smpsim-only
//! hypercall 56 ([`guest_hist`]) and the [`hypervisor::Hypervisor`] that ties them together
//! (its module doc says how the machine drives it). Not built: grant
//! tables, memory_op/ballooning, the PV MMU calls other than update_va_mapping,
//! save/restore, the FIFO event ABI, runstate areas, guest user mode.
//!
//! # Planned shape (the contract the machine will follow)
//! Hypercalls trap out of a core as an exit. Calls that only touch the
//! calling VCPU (console, version, its own timers, block/yield) are handled
//! in the core's partition. Calls that change hypervisor-wide state
//! (bindings, VCPU up/down, shutdown) and cross-VCPU sends travel as engine
//! messages to the hypervisor partition, whose link latency is the
//! configured hypercall latency (≥ the lookahead, so exact mode stays
//! exact); it answers the caller and sends "raise port" messages to the
//! notified VCPU's core, which performs the shared_info updates of
//! [`event_2l`] through its own cache, so hypervisor writes obey the
//! ownership rule like guest ones.
//!
//! The API supports that shape without requiring it: [`hypervisor::Hypervisor`]
//! is one value with `&mut self` methods, so the machine may call it from
//! one hypervisor partition or at barriers. A core that applies a raise to
//! guest memory itself uses [`event_2l::raise`] on
//! [`hypervisor::Domain::event_layout`] and then
//! [`hypervisor::Hypervisor::note_raised`] for the run-state half (wakes);
//! one that checks for upcalls at its instruction boundaries uses
//! [`upcall::try_upcall`] with its VCPU's cached vcpu_info address and event
//! callback.

pub mod abi;
pub mod builder;
pub mod console;
pub mod event_2l;
pub mod evtchn;
pub mod frames;
pub mod guest_hist;
pub mod hypercall;
pub mod hypervisor;
pub mod ids;
pub mod memory;
pub mod regs;
pub mod time;
pub mod upcall;
pub mod vcpu;

#[cfg(test)]
mod testenv;

#[cfg(test)]
mod boot_tests;
#[cfg(test)]
mod fuzz_tests;

pub use ids::{DomainId, Mfn, Pfn, Port, VcpuId};
