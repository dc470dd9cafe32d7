//! smpsim-uncore: the memory system below the cores — machine memory, the
//! private caches, the shared L3 slices with their directory, the
//! interconnect and the memory controllers.
//!
//! ```text
//!  core partition k (one per core)          L3-slice partition s         memory-channel
//!  ┌────────────────────────────────┐       (home of lines ≡ s mod S)    partition m
//!  │ core model (cores crate)       │       ┌───────────────────────┐    ┌─────────────┐
//!  │   load/store/fence/locked      │ GetS  │ L3 tags + directory   │Mem │ DramChannel │
//!  │ PrivateHierarchy               │ GetM  │ (owner, sharers,      │Read│ FR-FCFS,    │
//!  │  L1I  L1D ─┐ store buffer      │ Put   │  dirty), blocking     │───▶│ banks, rows │
//!  │            L2 (coherence state)│ Ack ─▶│ transactions, waiting │    │             │
//!  │                                │◀─ Data│ queues, inclusive     │◀───│             │
//!  │                                │   Inv │ back-invalidation     │Mem │             │
//!  │                                │   Fwd │                       │Data│             │
//!  │                                │PutAck │                       │    │             │
//!  └────────────────────────────────┘       └───────────────────────┘    └─────────────┘
//!        ▲ every core ↔ every slice, every slice ↔ every channel: engine links whose
//!        │ latency is the interconnect's unloaded head latency (crossbar or mesh);
//!        │ lookahead = the smallest of them. Data lives in MachineMemory (Arc, all threads).
//!        │ Partition ids: cores 0..C, then slices, then channels (MemSystem::add_to).
//! ```
//!
//! # Owns
//! - [`memory`]: machine memory, 4 KiB frames shared by every host thread.
//! - [`private`]: each core's L1I, L1D and L2 (one coherence agent inside
//!   the core's partition) and its x86-TSO store buffer.
//! - [`directory`]: the L3 slices, each the home of its lines, with the
//!   inclusive directory (MESI, or MOESI as an option).
//! - [`memctrl`] over [`dram`]: one partition per memory channel.
//! - [`interconnect`] and [`fabric`]: latencies, link occupancy, which
//!   partition each component is, address interleaving.
//! - [`cache`]: tag array + replacement policy (LRU, SRRIP, seeded random)
//!   with statistics counted in a wrapper, and the prefetchers (next-line,
//!   stride) a private L1D or L2 may run.
//! - [`ownership`]: the release-usable shadow owner table.
//! - [`attach`]: the shared handles a partition holds but does not own,
//!   and their re-attach after deserializing.
//! - [`overlay`](mod@overlay): byte-overlay forwarding (a store's bytes laid over a
//!   load window, youngest wins), used by the store buffer and by the
//!   cores' own forwarding.
//! - [`part`] and [`MemSystem::add_to`]: the uncore's partitions as one
//!   type ([`UncorePart`]), added to an engine with their links.
//! - [`tester`] and [`latency`]: the coherence random tester and the latency
//!   microbenchmarks (`smpsim selftest coherence|latency`), whose cores run
//!   on one crate-private driver (the time-ordered event loop, the
//!   self-tests' partitions and run).
//!
//! # Depends on
//! `smpsim-engine` only (time, partitions, messages, statistics).
//!
//! # Invariants
//! - **Ownership rule** (DESIGN.md §3): a core reads machine memory for a
//!   line only while its L2 holds it readable (S, E, M, O, or S/O while
//!   upgrading) and writes it only in M (E upgrades silently). Every access
//!   asserts this (always on); with `check_ownership` the shadow owner table
//!   also checks the single-writer invariant across cores at every
//!   permission change and access. Permission moves only through protocol
//!   messages, which the engine delivers at barriers, so parallel execution
//!   is race-free at the host level and values are deterministic.
//! - **Messages carry no data**: caches hold tags, states and timing; a
//!   grant is the permission to touch machine memory.
//! - **Links are FIFO** per (source, destination) pair: a message never
//!   overtakes an earlier one to the same partition, whatever processing
//!   delay either carries ([`fabric::Port`]); the protocol relies on it.
//! - **Determinism**: no hash-map iteration reaches results (`BTreeMap`s
//!   and vectors); random replacement uses seeded per-cache generators.
//!   Tested: the tester's output and statistics are identical for 1, 2 and
//!   per-core host threads, and for Q = 1 and Q = L.
//! - **Lax mode** (Q > L): a late message is applied at the receiver's
//!   current time (never before the epoch start); values stay right (the
//!   tester checks it), timing shifts.
//!
//! # Lifecycle
//! [`MemSystemConfig`] (serde) → [`MemSystem::new`] (validates, builds the
//! [`Fabric`]) → the machine adds its core partitions, core `k` the `k`-th,
//! each owning a [`MemSystem::hierarchy`] → [`MemSystem::add_to`] adds the
//! uncore's partitions after them (every L3 slice, then every memory
//! channel, in id order, each an [`UncorePart`] the machine wraps in its
//! own partition enum) and declares every link; the wiring is written
//! there once, for the machine and the self-tests alike → epochs run (an
//! [`UncorePart`] runs its component; a core partition calls its
//! hierarchy's `handle_message` / `advance` / `flush`, in time order, as
//! the self-tests' shared driver does) → statistics through the engine's
//! report.
//!
//! Checkpoints: every partition's state ([`PrivateHierarchy`],
//! [`L3Slice`], [`MemCtrl`], [`UncorePart`]) and every message is
//! `Serialize + Deserialize`. The shared handles (fabric, machine memory,
//! owner table) are not partition state and are skipped ([`attach`]); a
//! deserialized partition panics when used until its `attach(&MemSystem)`
//! re-attaches them from a memory system built from the same config.
//! Machine memory contents are saved separately.
//!
//! # Errors
//! Configuration errors are `Result`s naming the table, key and allowed
//! values ([`config::ConfigError`], [`BuildError`]). Protocol violations
//! (a message in a state where the protocol forbids it, a write without
//! M) are simulator bugs and panic with the core, line and states; the
//! engine catches them at the partition boundary.
//!
//! # Statistics
//! Per core (group `core`): `l1i.*`, `l1d.*`, `l2.*` hits, misses,
//! evictions, invalidations; `l2.read_misses`, `l2.write_misses`,
//! `l2.upgrades`, `l2.coherence_misses`, `l2.mshr_merges`,
//! `l2.writebacks`, `l2.clean_evictions`, `l2.stalls`;
//! `coh.invalidations_received`, `coh.forwards_received`; `sb.*`;
//! `l1d.prefetch.*` and `l2.prefetch.*` (issued, useful, late, dropped)
//! only for a level whose prefetcher is not `none`;
//! histograms `load_to_use.{sb,l1,l2,l3,remote,dram}`, `l2.miss_latency`,
//! `coh.miss_latency`. Per slice (group `l3`): `l3.*` and `dir.*`
//! (forwards, invalidations, back-invalidations, writebacks, memory reads
//! and writes, deferred and stalled requests, stale puts, `dir.waiting`
//! queue occupancy, `dir.txn_latency`). Per channel (group `mc`): the
//! DRAM's `dram.*` (row hits, misses, conflicts, queue occupancy, read and
//! write latency) and `mc.backlogged`.
#![forbid(unsafe_code)]
#![warn(missing_docs, missing_debug_implementations)]

pub mod dram;
pub mod interconnect;
pub mod memory;

pub mod attach;
pub mod cache;
pub mod config;
pub mod directory;
mod driver;
pub mod fabric;
pub mod ids;
pub mod latency;
pub mod memctrl;
pub mod msg;
pub mod overlay;
pub mod ownership;
pub mod part;
pub mod private;
pub mod rng;
pub mod system;
pub mod tester;

#[cfg(test)]
mod checkpoint_tests;
#[cfg(test)]
mod races;

pub use directory::L3Slice;
pub use fabric::Fabric;
pub use ids::{ChannelId, ContextId, CoreId, Level, SliceId};
pub use memctrl::MemCtrl;
pub use msg::{MemMsg, MemPayload};
pub use overlay::overlay;
pub use part::{MachinePart, UncorePart};
pub use private::{Access, Completion, LogEntry, PrivateHierarchy, ReqId, StoreBufferFull, Stream};
pub use system::{BuildError, MemSystem, MemSystemConfig};
