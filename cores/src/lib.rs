//! smpsim-cores: the simulated x86-64 cores.
//!
//! # Owns
//! Decode of x86-64 instructions (iced-x86) into uops, the translation cache
//! of decoded basic blocks, functional execution, the timing models
//! (`functional`, `inorder`, `ooo`), SMT contexts, branch prediction, TLBs.
//!
//! # Depends on
//! `smpsim-engine` and `smpsim-uncore`. What a core needs from the hypervisor
//! (hypercalls, halts) it reports as an exit value, the way a KVM exit works.
//!
//! # Invariants
//! Functional results are exact (all architectural state, the six arithmetic
//! flags included) and deterministic; guest misbehaviour is a fault inside
//! the guest (#UD, #DE, #PF, #GP), never a host panic.
//!
//! # Lifecycle
//! Built per core → run by the engine epoch by epoch → statistics collected.
//!
//! # Errors
//! Guest faults are values; configuration errors are `Result`s.
