//! DRAM configuration, its timing in core cycles and the address mapping.
//!
//! ```toml
//! [dram]
//! channels = 2          # memory-controller channels (one partition each)
//! ranks = 1             # ranks per channel
//! banks = 16            # banks per rank
//! row_bytes = 8192      # row-buffer size of one bank, bytes (multiple of 64)
//! t_rcd = 17            # ACT to READ/WRITE, DRAM clock cycles
//! t_cl = 17             # READ/WRITE to first data, DRAM clock cycles
//! t_rp = 17             # PRE to ACT, DRAM clock cycles
//! t_ras = 39            # ACT to PRE, DRAM clock cycles
//! t_burst = 4           # data-bus cycles of one 64-byte burst, DRAM clock cycles
//! clock_ratio = 2.5     # core cycles per DRAM clock cycle (3 GHz core, DDR4-2400)
//! read_queue = 32       # read-queue entries per channel
//! write_queue = 32      # write-queue entries per channel
//! page_policy = "open"  # or "closed" (auto-precharge after every access)
//! interleave = "line"   # channel interleaving granule: "line" (64 B) or "page" (4 KiB)
//! ```

use super::DramConfigError;
use crate::memory::{LineAddr, FRAME_SHIFT, LINE_SHIFT, LINE_SIZE};
use serde::{Deserialize, Serialize};

/// When a bank's row is closed.
#[derive(Copy, Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum PagePolicy {
    /// Rows stay open after an access (row hits possible; a different row
    /// then costs a precharge first).
    #[default]
    Open,
    /// Every access auto-precharges its row (no hits, no conflicts).
    Closed,
}

/// Granule at which consecutive addresses alternate between channels.
#[derive(Copy, Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Interleave {
    /// Consecutive 64-byte lines go to consecutive channels.
    #[default]
    Line,
    /// Consecutive 4 KiB pages go to consecutive channels.
    Page,
}

/// The `[dram]` table. Timing parameters are in DRAM clock cycles and are
/// converted once, at build, to core cycles by `ceil(t × clock_ratio)`
/// (see [`DramConfig::timing`]); the scheduler runs in core cycles.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct DramConfig {
    /// Channels (≥ 1); each is one memory-controller partition.
    pub channels: u32,
    /// Ranks per channel (≥ 1).
    pub ranks: u32,
    /// Banks per rank (≥ 1).
    pub banks: u32,
    /// Row-buffer size of one bank in bytes (a positive multiple of 64).
    pub row_bytes: u64,
    /// ACT → READ/WRITE delay (tRCD), DRAM clock cycles.
    pub t_rcd: u64,
    /// READ/WRITE → first data (CAS latency, tCL), DRAM clock cycles; used
    /// for writes too (tCWL = tCL).
    pub t_cl: u64,
    /// PRE → ACT delay (tRP), DRAM clock cycles.
    pub t_rp: u64,
    /// ACT → PRE minimum (tRAS), DRAM clock cycles.
    pub t_ras: u64,
    /// Data-bus time of one 64-byte burst (tBURST), DRAM clock cycles.
    pub t_burst: u64,
    /// Core cycles per DRAM clock cycle (> 0).
    pub clock_ratio: f64,
    /// Read-queue entries per channel (≥ 1).
    pub read_queue: usize,
    /// Write-queue entries per channel (≥ 1).
    pub write_queue: usize,
    /// Row-buffer policy.
    pub page_policy: PagePolicy,
    /// Channel interleaving granule.
    pub interleave: Interleave,
}

impl Default for DramConfig {
    /// DDR4-2400 17-17-17 behind a 3 GHz core: 2 channels, 1 rank,
    /// 16 banks, 8 KiB rows.
    fn default() -> Self {
        DramConfig {
            channels: 2,
            ranks: 1,
            banks: 16,
            row_bytes: 8192,
            t_rcd: 17,
            t_cl: 17,
            t_rp: 17,
            t_ras: 39,
            t_burst: 4,
            clock_ratio: 2.5,
            read_queue: 32,
            write_queue: 32,
            page_policy: PagePolicy::Open,
            interleave: Interleave::Line,
        }
    }
}

/// DRAM timing converted to core cycles (each ≥ 1).
#[derive(Copy, Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct DramTiming {
    /// tRCD in core cycles.
    pub rcd: u64,
    /// tCL in core cycles.
    pub cl: u64,
    /// tRP in core cycles.
    pub rp: u64,
    /// tRAS in core cycles.
    pub ras: u64,
    /// tBURST in core cycles.
    pub burst: u64,
}

/// Where a line lives inside the DRAM system.
#[derive(Copy, Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct DramLocation {
    /// Channel (memory-controller partition).
    pub channel: u32,
    /// Rank within the channel.
    pub rank: u32,
    /// Bank within the rank.
    pub bank: u32,
    /// Row within the bank.
    pub row: u64,
    /// Line-sized column within the row.
    pub column: u64,
}

const LINES_PER_PAGE: u64 = 1 << (FRAME_SHIFT - LINE_SHIFT);

impl DramConfig {
    /// Checks every field; the error names the key, the value and what is
    /// allowed.
    pub fn validate(&self) -> Result<(), DramConfigError> {
        let positive = [
            ("channels", u64::from(self.channels)),
            ("ranks", u64::from(self.ranks)),
            ("banks", u64::from(self.banks)),
            ("t_rcd", self.t_rcd),
            ("t_cl", self.t_cl),
            ("t_rp", self.t_rp),
            ("t_ras", self.t_ras),
            ("t_burst", self.t_burst),
            ("read_queue", self.read_queue as u64),
            ("write_queue", self.write_queue as u64),
        ];
        if let Some((key, value)) = positive.into_iter().find(|(_, v)| *v == 0) {
            return Err(DramConfigError::Zero { key, value });
        }
        if self.row_bytes == 0 || !self.row_bytes.is_multiple_of(LINE_SIZE) {
            return Err(DramConfigError::RowBytes {
                value: self.row_bytes,
            });
        }
        if !(self.clock_ratio.is_finite() && self.clock_ratio > 0.0) {
            return Err(DramConfigError::ClockRatio {
                value: self.clock_ratio,
            });
        }
        Ok(())
    }

    /// The timing in core cycles: `ceil(t × clock_ratio)` per parameter.
    pub fn timing(&self) -> DramTiming {
        let c = |t: u64| -> u64 {
            // The epsilon keeps exact products (17 × 2.5) from rounding up.
            let v = (t as f64 * self.clock_ratio - 1e-9).ceil();
            (v as u64).max(1)
        };
        DramTiming {
            rcd: c(self.t_rcd),
            cl: c(self.t_cl),
            rp: c(self.t_rp),
            ras: c(self.t_ras),
            burst: c(self.t_burst),
        }
    }

    /// The channel a line belongs to.
    pub fn channel_of(&self, line: LineAddr) -> u32 {
        self.locate(line).channel
    }

    /// Channel, rank, bank, row and column of a line. Within a channel the
    /// line index is split, lowest bits first, into column (lines of one
    /// row), bank, rank and row — so consecutive lines of one channel fill
    /// a row before moving to the next bank.
    pub fn locate(&self, line: LineAddr) -> DramLocation {
        let ch = u64::from(self.channels);
        let l = line.get();
        let (channel, local) = match self.interleave {
            Interleave::Line => (l % ch, l / ch),
            Interleave::Page => {
                let page = l / LINES_PER_PAGE;
                (page % ch, (page / ch) * LINES_PER_PAGE + l % LINES_PER_PAGE)
            }
        };
        let per_row = self.row_bytes / LINE_SIZE;
        let (column, rest) = (local % per_row, local / per_row);
        let (bank, rest) = (rest % u64::from(self.banks), rest / u64::from(self.banks));
        let (rank, row) = (rest % u64::from(self.ranks), rest / u64::from(self.ranks));
        DramLocation {
            channel: u32::try_from(channel).expect("below channels"),
            rank: u32::try_from(rank).expect("below ranks"),
            bank: u32::try_from(bank).expect("below banks"),
            row,
            column,
        }
    }
}
