//! smpsim-uncore: the memory system below the cores.
//!
//! # Owns
//! Machine memory (4 KiB frames shared by all host threads), the private
//! cache hierarchy models (L1I, L1D, L2 per core), the shared L3 slices with
//! their inclusive directories, MSHRs, the interconnect (crossbar or 2-D
//! mesh) and the memory-controller channels.
//!
//! # Depends on
//! `smpsim-engine` only (time, partitions, messages, statistics).
//!
//! # Invariants
//! The ownership rule of DESIGN.md §3: a core reads a line only while its
//! cache holds it readable (S/E/M/O) and writes it only in M. Coherence
//! transitions happen only through protocol messages, so parallel execution
//! is race-free at the host level and functional results are deterministic.
//!
//! # Lifecycle
//! Built from config structs → partitions registered with the engine →
//! epochs run → statistics collected.
//!
//! # Errors
//! Configuration errors are `Result`s naming the key and the allowed values.
#![forbid(unsafe_code)]
#![warn(missing_docs, missing_debug_implementations)]

pub mod dram;
pub mod interconnect;
pub mod memory;

pub mod cache;
pub mod config;
pub mod directory;
pub mod fabric;
pub mod ids;
pub mod latency;
pub mod memctrl;
pub mod msg;
pub mod ownership;
pub mod private;
pub mod rng;
pub mod system;
pub mod tester;

#[cfg(test)]
mod races;

pub use directory::L3Slice;
pub use fabric::Fabric;
pub use ids::{ChannelId, CoreId, Level, SliceId};
pub use memctrl::MemCtrl;
pub use msg::{MemMsg, MemPayload};
pub use private::{Access, Completion, LogEntry, PrivateHierarchy, ReqId, StoreBufferFull, Stream};
pub use system::{BuildError, MemSystem, MemSystemConfig};
