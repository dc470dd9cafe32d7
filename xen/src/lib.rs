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
