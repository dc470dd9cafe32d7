//! DRAM memory controller: one channel's queues, banks and data bus.
//!
//! # What it models
//! One [`DramChannel`] is one memory-controller channel (one partition):
//! `ranks × banks` banks with a row buffer each, one command bus (one
//! command per core cycle) and one data bus, fed by a bounded read queue
//! and a bounded write queue of 64-byte line requests. Time is in **core
//! cycles** throughout: the DRAM timing of [`DramConfig`] (DRAM clock
//! cycles) is converted once to core cycles ([`DramConfig::timing`]).
//!
//! Commands and their constraints (t = issue cycle, all in core cycles):
//! - `ACT` (open a row): `t ≥ PRE + tRP` of that bank;
//! - `READ`/`WRITE` (CAS): `t ≥ ACT + tRCD`, and the burst
//!   `[t + tCL, t + tCL + tBURST)` may not overlap the previous burst on
//!   the data bus. The request **completes at `t + tCL + tBURST`** (last
//!   data beat; for writes, data written);
//! - `PRE` (close the row): `t ≥ ACT + tRAS`, `t ≥ READ + tBURST`,
//!   `t ≥ WRITE + tCL + tBURST` (standing in for tRTP and tWR).
//!
//! Unloaded latencies (request arriving at an idle channel), see
//! [`DramTiming::idle_latency`]: row hit `tCL + tBURST`, row miss (bank
//! closed) `tRCD + tCL + tBURST`, row conflict (other row open)
//! `tRP + tRCD + tCL + tBURST`. [`DramChannel::idle_latency`] gives the
//! latency of a random access: a conflict under the open-page policy, a
//! miss under the closed-page policy.
//!
//! **Scheduling (FR-FCFS)**: at each cycle where some command can issue,
//! among the commands ready at that cycle the controller picks, in order:
//! the preferred queue (reads, unless write-draining), then column
//! commands (row hits) before ACT/PRE, then the oldest request (arrival
//! order, ties by enqueue order). A PRE is held back while any queued
//! request hits the bank's open row (hits first; a steady stream of hits
//! can delay a conflicting request — no starvation cap). Write draining
//! starts when the write queue reaches ¾ of its depth (or no read is
//! queued) and stops when it falls to ¼. A request leaves its queue when
//! its CAS issues. With the closed-page policy every CAS auto-precharges.
//!
//! **Not modelled**: refresh, tRRD/tFAW, tWTR, rank-to-rank switching,
//! bank groups, power-down. Requests are whole 64-byte lines.
//!
//! Interleaving: [`DramConfig::channel_of`] maps a line to its channel
//! (line- or page-granular); [`DramConfig::locate`] gives rank, bank, row
//! and column.
//!
//! # How to call it
//! Calls are made in non-decreasing time. For each request message at
//! time `t`: `advance(t)` (collect completions before `t`), then
//! `enqueue(t, req)`; at the end of each epoch `advance(epoch_end)`; report
//! [`DramChannel::next_event`] as the partition's next activity. A
//! [`QueueFull`] hands the request back: keep it and retry after the next
//! `advance` (a slot frees when a CAS issues; `can_accept` tells).
//! In lax mode a message may be due before the channel's clock
//! ([`DramChannel::clock`]): enqueue it at `max(msg.time, clock)`.
//!
//! ```
//! use smpsim_uncore::dram::*;
//! use smpsim_uncore::memory::LineAddr;
//! use smpsim_engine::{Cycle, StatsBuilder};
//! let cfg = DramConfig { channels: 1, ..DramConfig::default() };
//! let mut ch = DramChannel::new(&cfg, 0, StatsBuilder::new())?;
//! ch.enqueue(Cycle(10), DramRequest { line: LineAddr(0), write: false, tag: 7 })
//!     .expect("queue has room");
//! assert_eq!(ch.next_event(), Some(Cycle(10))); // the ACT issues at 10
//! let done = ch.advance(Cycle(1_000));
//! assert_eq!(done[0].tag, 7);
//! assert_eq!(done[0].outcome, RowOutcome::Miss); // bank was closed
//! assert_eq!(done[0].time, Cycle(10) + ch.timing().idle_latency(RowOutcome::Miss));
//! # Ok::<(), DramConfigError>(())
//! ```
//!
//! # Invariants
//! Deterministic: the schedule is a pure function of the calls; every tie
//! is broken by enqueue order. `enqueue` at a time before the last
//! `advance` bound, a line of another channel, or time going backwards
//! panic (simulator bugs).
//!
//! # Statistics
//! Declared into the caller's [`smpsim_engine::StatsBuilder`] (so the
//! partition can add its own): `dram.reads`, `dram.writes`,
//! `dram.row_hits`, `dram.row_misses`, `dram.row_conflicts`,
//! `dram.activates`, `dram.precharges`, `dram.rejected`,
//! `dram.queue_occupancy` (histogram: requests queued, counting the new
//! one, at each accepted enqueue), `dram.read_latency` and
//! `dram.write_latency` (histograms: enqueue to completion, core cycles).
//!
//! # Errors
//! [`DramConfigError`] at build, naming the key and the allowed values.

mod channel;
mod config;

pub use channel::DramChannel;
pub use config::{DramConfig, DramLocation, DramTiming, Interleave, PagePolicy};

use crate::memory::LineAddr;
use smpsim_engine::Cycle;
use thiserror::Error;

/// A read or write of one 64-byte line.
#[derive(Copy, Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct DramRequest {
    /// The line (must belong to this channel).
    pub line: LineAddr,
    /// A write (writeback) rather than a read.
    pub write: bool,
    /// The caller's identifier, handed back in the [`Completion`].
    pub tag: u64,
}

/// How a request found its bank's row buffer when its first command issued.
#[derive(Copy, Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub enum RowOutcome {
    /// Its row was open: CAS only.
    Hit,
    /// The bank was closed: ACT, CAS.
    Miss,
    /// Another row was open: PRE, ACT, CAS.
    Conflict,
}

/// A finished request.
#[derive(Copy, Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Completion {
    /// The request's tag.
    pub tag: u64,
    /// The request's line.
    pub line: LineAddr,
    /// Whether it was a write.
    pub write: bool,
    /// Cycle of the last data beat (core cycles).
    pub time: Cycle,
    /// How it found the row buffer.
    pub outcome: RowOutcome,
}

impl Completion {
    /// Whether it was a row hit.
    pub fn row_hit(&self) -> bool {
        self.outcome == RowOutcome::Hit
    }
}

/// The queue for this kind of request is full; the request is handed back.
#[derive(Copy, Clone, Debug, PartialEq, Eq, Error)]
#[error("DRAM {} queue full; request for {} refused", if .0.write { "write" } else { "read" }, .0.line)]
pub struct QueueFull(pub DramRequest);

/// A problem with the `[dram]` configuration.
#[derive(Clone, Debug, PartialEq, Error)]
pub enum DramConfigError {
    /// A count or timing that must be positive is zero.
    #[error("dram.{key} = {value} is not allowed: it must be at least 1")]
    Zero {
        /// The config key.
        key: &'static str,
        /// The value given.
        value: u64,
    },
    /// The row size is not a positive multiple of the line size.
    #[error("dram.row_bytes = {value} is not allowed: it must be a positive multiple of 64")]
    RowBytes {
        /// The value given.
        value: u64,
    },
    /// The clock ratio is not a positive finite number.
    #[error("dram.clock_ratio = {value} is not allowed: it must be a positive number (core cycles per DRAM clock)")]
    ClockRatio {
        /// The value given.
        value: f64,
    },
    /// The channel index is beyond the configured channels.
    #[error("DRAM channel {channel} does not exist: dram.channels = {channels}")]
    NoSuchChannel {
        /// The index asked for.
        channel: u32,
        /// Configured channels.
        channels: u32,
    },
}

impl DramTiming {
    /// Unloaded latency, arrival to last data beat, of a request that
    /// finds its row buffer in the given state.
    pub fn idle_latency(&self, outcome: RowOutcome) -> u64 {
        let cas = self.cl + self.burst;
        match outcome {
            RowOutcome::Hit => cas,
            RowOutcome::Miss => self.rcd + cas,
            RowOutcome::Conflict => self.rp + self.rcd + cas,
        }
    }
}

#[cfg(test)]
mod tests;
