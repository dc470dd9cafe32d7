//! smpsim-workloads: guest programs, their runtime and the catalogue.
//!
//! # Owns
//! The freestanding C guest runtime (entry stub, hypercall wrappers, event
//! channels, locks, barriers, console printf), the workload programs, the
//! ELF loader, and the built-in catalogue of embedded guest images.
//!
//! # Depends on
//! Nothing of ours; its build needs only a C compiler.
//!
//! # Invariants
//! Every workload checks its own result and shuts down with a success or
//! failure status.
//!
//! # Lifecycle
//! Compiled at build time → looked up by name → loaded by the domain builder.
//!
//! # Errors
//! A bad ELF image is a `Result` naming what is wrong.
#![forbid(unsafe_code)]
