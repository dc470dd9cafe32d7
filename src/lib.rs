//! smpsim: the whole machine — configuration, assembly, reports.
//!
//! # Owns
//! - The machine's assembly ([`machine`]): its config (with every default
//!   in one place), the core partitions (from `smpsim_cores::part`), the
//!   uncore (`MemSystem::add_to`), the guest domains, and the hypervisor
//!   service that calls `smpsim_xen` at service ticks in the barrier phase
//!   (`machine::hyper`); the run report.
//! - The command line's shared pieces: reading TOML configs with errors that
//!   name the file, line, key and allowed values ([`config`]); the
//!   experiments (sweep, scale), reports and plots.
//!
//! # Depends on
//! Every crate of the workspace.
//!
//! # Invariants
//! Everything outside a report's `host` section is a pure function of the
//! config, the workload and the quantum.
//!
//! # Lifecycle
//! Parse config → validate → assemble the machine → run → report.
//!
//! # Errors
//! User and environment errors are `Result`s whose messages say what was
//! being done and on what; simulator bugs panic with context.
#![forbid(unsafe_code)]
#![warn(missing_docs)]

pub mod checkpoint;
pub mod config;
pub mod interrupt;
pub mod machine;
pub mod outputs;
pub mod plot;
pub mod progress;
pub mod report;
pub mod scale;
pub mod sweep;
