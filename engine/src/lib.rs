//! smpsim-engine: simulated time, partitions, messages, the quantum barrier,
//! host-thread scheduling and statistics.
//!
//! ```text
//!            epoch k: [T, T+Q)                 barrier          epoch k+1
//!  host thread 0: | core0  core1  l3s0 |──┐
//!  host thread 1: | core2  core3  mc0  |──┼─ wait ─ leader: hook, idle skip ─▶ drain, run …
//!                   │ send(dst, at, msg)  │
//!                   └──── outbox[thread][parity][dest thread] ────┘
//!       arrival = at + latency(src→dst) ≥ at + L   (L = lookahead)
//! ```
//!
//! # Owns
//! Simulated time ([`Cycle`]), the partitions ([`Partition`]) placed on host
//! threads, message buffers (outboxes and inboxes), the epoch barrier, and
//! the statistics types ([`Stats`], [`StatsReport`]; a partition declares
//! its statistics once with [`stat_table!`]).
//!
//! # Depends on
//! Nothing of smpsim's.
//!
//! # Invariants
//! - **Ordering**: a partition's messages are handed to it in
//!   `(time, src, seq)` order; `seq` counts per source in send order.
//!   A message sent at cycle `a` over a link of latency `l` arrives at
//!   `a + l (+ extra)`, and is delivered at the first barrier after the
//!   epoch it was sent in.
//! - **Determinism**: nothing a partition sees depends on host threads,
//!   their number, or OS scheduling: placement only decides who runs a
//!   partition, delivery order is fixed by the key, and idle skipping and
//!   termination are decided by one leader from per-partition values.
//! - **Exactness**: with Q ≤ L a message can never be due inside the epoch
//!   it was sent in, so results equal Q = 1. With Q > L (lax mode) the
//!   engine does **not** guarantee timing: a message may be handed out with
//!   a time before the receiver's clock, and the receiver applies it late.
//!   Results are still deterministic for a given Q.
//! - **Alignment**: epochs are `[kQ, (k+1)Q)`; idle skipping jumps to the
//!   epoch holding the next activity, so every multiple of Q is a barrier
//!   (a hook that acts every H cycles, with Q dividing H, acts at the same
//!   simulated times for every such Q).
//! - Cheap checks stay on in release: sends outside the sender's epoch or
//!   over undeclared links panic (caught at the partition boundary).
//!
//! # Lifecycle
//! [`EngineBuilder`] (add partitions, declare links) → [`Engine`] →
//! [`Engine::run`] (epochs; the barrier hook sees a quiescent machine) →
//! [`Engine::stats_report`] / [`Engine::into_partitions`].
//!
//! # Errors
//! [`EngineError`]: bad quantum or links at build; a panic inside a
//! partition or the hook ends the run with `Panicked`, and the statistics
//! gathered so far remain readable. A partition that never returns trips
//! the barrier watchdog, which reports the stuck epoch and aborts.

mod active;
mod barrier;
mod error;
mod hook;
mod message;
mod partition;
mod phases;
mod regroup;
mod run;
mod schedule;
mod stats;
mod time;
mod topology;

pub use error::EngineError;
pub use hook::BarrierCtx;
pub use message::{Inbox, Message};
pub use partition::{EpochCtx, Partition, PartitionSpec};
pub use regroup::Regroup;
pub use run::{Engine, EngineBuilder, EngineConfig, EngineSnapshot, RunSummary, StopReason};
pub use schedule::{assign, HostThreads};
pub use stats::{
    histogram_buckets, record_buckets, CounterId, HistId, HistogramReport, PartitionReport,
    StatDesc, Stats, StatsBuilder, StatsReport, StatsSection,
};
pub use time::{Cycle, PartitionId};
pub use topology::LinkTable;
