//! smpsim-xen: the simulated Xen hypervisor for PV64 guests.
//!
//! # Owns
//! Domains and their VCPUs, pseudo-physical memory (P2M/M2P), start_info,
//! shared_info and vcpu_info, the hypercall page, hypercalls, event channels
//! (2-level ABI), timers, the console, and later grant tables, ballooning and
//! save/restore. Numbers and layouts follow shared/xen-abi.md.
//!
//! # Depends on
//! `smpsim-engine`, `smpsim-uncore`, `smpsim-cores`.
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
//! Built so far: the ABI numbers ([`abi`]), the hypervisor-wide
//! event-channel binding table ([`evtchn`]), Xen's 2-level delivery over
//! guest memory ([`event_2l`]) and guest time scaling ([`time`]). The domain
//! builder, hypercall dispatch and the hypervisor partition come with the
//! end-to-end machine.
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

pub mod abi;
pub mod builder;
pub mod console;
pub mod event_2l;
pub mod evtchn;
pub mod frames;
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

pub use ids::{DomainId, Mfn, Pfn, Port, VcpuId};
