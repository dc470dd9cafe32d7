//! Prefetchers: which lines a cache level asks for before a demand access
//! needs them.
//!
//! A prefetcher sees the demand accesses of one cache level (line, hit or
//! miss, whether the hit found a line a prefetch brought, read or write)
//! and proposes line addresses; the coherence agent that owns the level
//! ([`crate::private`]) decides what becomes a request (lines already
//! present or in flight are skipped, and a proposal is dropped when no MSHR
//! is free). The hierarchy's interface carries no program counter, so
//! streams are keyed by 4 KiB page, and no proposal leaves the page of the
//! access that triggered it (machine frames next to each other in memory
//! are unrelated).
//!
//! [`Prefetcher`] is the seam a level calls through. [`new_prefetcher`]
//! returns an [`AnyPrefetcher`]: an enum holding the concrete prefetcher
//! that implements the trait by delegation (enum dispatch, no `Box<dyn>`),
//! so the hierarchy's state derives `Serialize`/`Deserialize` for
//! checkpoints. A new prefetcher adds a variant and a delegation arm.

use crate::config::{PrefetchConfig, PrefetchKind};
use crate::memory::LineAddr;
use serde::{Deserialize, Serialize};
use std::fmt;

/// One demand access of a cache level, as its prefetcher sees it.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub struct DemandAccess {
    /// The line.
    pub line: LineAddr,
    /// The level held the line (readable).
    pub hit: bool,
    /// The hit found a line a prefetch brought, not yet used by a demand.
    pub prefetched: bool,
    /// A store (entering the store buffer) rather than a load or fetch.
    pub write: bool,
}

/// A prefetcher of one cache level. It sees every demand access of the
/// level in time order and appends the lines it proposes to `out`
/// (nearest first).
pub trait Prefetcher: Send + fmt::Debug {
    /// A demand access happened; propose lines to prefetch.
    fn observe(&mut self, access: &DemandAccess, out: &mut Vec<LineAddr>);
}

/// Builds the prefetcher a config names; `None` for `kind = "none"`.
pub fn new_prefetcher(cfg: &PrefetchConfig) -> Option<AnyPrefetcher> {
    match cfg.kind {
        PrefetchKind::None => None,
        PrefetchKind::NextLine => Some(AnyPrefetcher::NextLine(NextLine::new(
            cfg.degree,
            cfg.distance,
        ))),
        PrefetchKind::Stride => Some(AnyPrefetcher::Stride(StridePrefetcher::new(
            cfg.degree,
            cfg.distance,
            cfg.table_size,
        ))),
    }
}

/// One of the concrete prefetchers, dispatching [`Prefetcher`] to it; the
/// serializable form of a level's prefetcher state.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum AnyPrefetcher {
    /// Next-line.
    NextLine(NextLine),
    /// Per-page stride detection.
    Stride(StridePrefetcher),
}

impl Prefetcher for AnyPrefetcher {
    fn observe(&mut self, access: &DemandAccess, out: &mut Vec<LineAddr>) {
        match self {
            AnyPrefetcher::NextLine(p) => p.observe(access, out),
            AnyPrefetcher::Stride(p) => p.observe(access, out),
        }
    }
}

/// Appends `line + stride × (distance + k)` for `k` in `0..degree` while
/// it stays in `line`'s page.
fn ahead(line: LineAddr, stride: i64, distance: u32, degree: u32, out: &mut Vec<LineAddr>) {
    let page = line.mfn();
    for k in 0..degree {
        let step = stride * i64::from(distance + k);
        let Some(target) = line.0.checked_add_signed(step).map(LineAddr) else {
            return;
        };
        if target.mfn() != page {
            return;
        }
        out.push(target);
    }
}

/// Next-line: after a miss, or after a hit on a line a prefetch brought
/// (so a stream keeps running ahead once it hits), proposes the `degree`
/// lines from `distance` lines on.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct NextLine {
    degree: u32,
    distance: u32,
}

impl NextLine {
    /// `degree` lines per trigger, the first `distance` lines ahead.
    pub fn new(degree: u32, distance: u32) -> Self {
        NextLine { degree, distance }
    }
}

impl Prefetcher for NextLine {
    fn observe(&mut self, a: &DemandAccess, out: &mut Vec<LineAddr>) {
        if !a.hit || a.prefetched {
            ahead(a.line, 1, self.distance, self.degree, out);
        }
    }
}

/// One tracked stream: the page, the last line accessed in it, the last
/// stride seen and how often it repeated.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
struct StreamEntry {
    page: u64,
    last: LineAddr,
    stride: i64,
    confidence: u8,
    used: u64,
}

/// A 2-bit confidence counter: saturates here.
const CONFIDENCE_MAX: u8 = 3;
/// Proposals start once a stride has repeated this often in a row
/// (three accesses with two equal strides).
const CONFIDENT: u8 = 1;

/// Stride: per 4 KiB page (at most `table_size` pages, least recently used
/// replaced), the stride between successive accesses to different lines.
/// A repeat of the stride raises the confidence, a different stride
/// lowers it and, once it is zero, replaces the stride. While confident it
/// proposes `degree` lines from `distance` strides ahead on every access.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct StridePrefetcher {
    degree: u32,
    distance: u32,
    size: usize,
    table: Vec<StreamEntry>,
    clock: u64,
}

impl StridePrefetcher {
    /// A prefetcher tracking `table_size` pages.
    pub fn new(degree: u32, distance: u32, table_size: u32) -> Self {
        let size = table_size as usize;
        StridePrefetcher {
            degree,
            distance,
            size,
            table: Vec::with_capacity(size),
            clock: 0,
        }
    }

    /// The entry of `page`, allocated (replacing the least recently used)
    /// if new; `None` for a new entry, which has nothing to learn yet.
    fn entry(&mut self, page: u64, line: LineAddr) -> Option<&mut StreamEntry> {
        self.clock += 1;
        if let Some(i) = self.table.iter().position(|e| e.page == page) {
            self.table[i].used = self.clock;
            return Some(&mut self.table[i]);
        }
        let fresh = StreamEntry {
            page,
            last: line,
            stride: 0,
            confidence: 0,
            used: self.clock,
        };
        if self.table.len() < self.size {
            self.table.push(fresh);
        } else if let Some(old) = self.table.iter_mut().min_by_key(|e| e.used) {
            *old = fresh;
        }
        None
    }
}

impl Prefetcher for StridePrefetcher {
    fn observe(&mut self, a: &DemandAccess, out: &mut Vec<LineAddr>) {
        let (degree, distance) = (self.degree, self.distance);
        let Some(e) = self.entry(a.line.mfn().0, a.line) else {
            return;
        };
        // Line numbers are far below 2^63: the difference fits.
        let delta = a.line.0.wrapping_sub(e.last.0).cast_signed();
        if delta == 0 {
            return;
        }
        if delta == e.stride {
            e.confidence = (e.confidence + 1).min(CONFIDENCE_MAX);
        } else if e.confidence > 0 {
            e.confidence -= 1;
        } else {
            e.stride = delta;
        }
        e.last = a.line;
        if e.confidence >= CONFIDENT {
            ahead(a.line, e.stride, distance, degree, out);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn access(line: u64, hit: bool) -> DemandAccess {
        DemandAccess {
            line: LineAddr(line),
            hit,
            prefetched: false,
            write: false,
        }
    }

    fn proposals(p: &mut dyn Prefetcher, a: DemandAccess) -> Vec<u64> {
        let mut out = Vec::new();
        p.observe(&a, &mut out);
        out.into_iter().map(|l| l.0).collect()
    }

    #[test]
    fn next_line_fires_on_misses_and_prefetched_hits_only() {
        let mut p = NextLine::new(2, 1);
        assert_eq!(proposals(&mut p, access(640, false)), vec![641, 642]);
        assert!(proposals(&mut p, access(641, true)).is_empty());
        let used = DemandAccess {
            prefetched: true,
            ..access(641, true)
        };
        assert_eq!(proposals(&mut p, used), vec![642, 643]);
        let mut far = NextLine::new(1, 4);
        assert_eq!(proposals(&mut far, access(640, false)), vec![644]);
    }

    #[test]
    fn next_line_stops_at_the_page_end() {
        let mut p = NextLine::new(4, 1);
        // Line 126 is the next-to-last of page 1 (lines 64..128).
        assert_eq!(proposals(&mut p, access(126, false)), vec![127]);
        assert!(proposals(&mut p, access(127, false)).is_empty());
    }

    #[test]
    fn stride_of_two_lines_is_learnt_after_three_accesses() {
        let mut p = StridePrefetcher::new(2, 1, 4);
        assert!(proposals(&mut p, access(640, false)).is_empty());
        assert!(proposals(&mut p, access(642, false)).is_empty());
        assert_eq!(proposals(&mut p, access(644, false)), vec![646, 648]);
        assert_eq!(proposals(&mut p, access(646, true)), vec![648, 650]);
    }

    #[test]
    fn stride_of_three_lines_runs_distance_strides_ahead() {
        let mut p = StridePrefetcher::new(1, 3, 4);
        for l in [640, 643] {
            assert!(proposals(&mut p, access(l, false)).is_empty());
        }
        assert_eq!(proposals(&mut p, access(646, false)), vec![655]);
        // Several accesses to one line do not disturb the stride.
        assert!(proposals(&mut p, access(646, true)).is_empty());
        assert_eq!(proposals(&mut p, access(649, false)), vec![658]);
    }

    #[test]
    fn negative_stride_and_no_proposal_across_the_page() {
        let mut p = StridePrefetcher::new(4, 1, 4);
        for l in [700, 698] {
            assert!(proposals(&mut p, access(l, false)).is_empty());
        }
        assert_eq!(
            proposals(&mut p, access(696, false)),
            vec![694, 692, 690, 688]
        );
        // Page 10 is lines 640..704: line 706 is beyond it.
        let mut q = StridePrefetcher::new(4, 1, 4);
        for l in [694, 697] {
            proposals(&mut q, access(l, false));
        }
        assert_eq!(proposals(&mut q, access(700, false)), vec![703]);
    }

    #[test]
    fn one_stray_access_does_not_forget_a_trained_stride() {
        let mut p = StridePrefetcher::new(1, 1, 4);
        for l in [640, 642, 644, 646] {
            proposals(&mut p, access(l, false));
        }
        // Confidence 2 → 1 after a stray stride of 5; still proposing.
        assert_eq!(proposals(&mut p, access(651, false)), vec![653]);
    }

    #[test]
    fn streams_are_kept_per_page_and_the_oldest_is_replaced() {
        let mut p = StridePrefetcher::new(1, 1, 2);
        // Interleaved streams in pages 10 and 20, strides 1 and 2.
        for (a, b) in [(640, 1280), (641, 1282)] {
            proposals(&mut p, access(a, false));
            proposals(&mut p, access(b, false));
        }
        assert_eq!(proposals(&mut p, access(642, false)), vec![643]);
        assert_eq!(proposals(&mut p, access(1284, false)), vec![1286]);
        // A third page replaces page 10 (least recently used): it restarts.
        proposals(&mut p, access(1920, false));
        assert_eq!(proposals(&mut p, access(1286, false)), vec![1288]);
        assert!(proposals(&mut p, access(643, false)).is_empty());
    }

    #[test]
    fn factory_builds_what_the_config_names() {
        let mut cfg = PrefetchConfig::default();
        assert!(new_prefetcher(&cfg).is_none());
        cfg.kind = PrefetchKind::NextLine;
        let mut p = new_prefetcher(&cfg).expect("next-line");
        assert_eq!(proposals(&mut p, access(640, false)), vec![641, 642]);
        cfg.kind = PrefetchKind::Stride;
        assert!(format!("{:?}", new_prefetcher(&cfg)).contains("StridePrefetcher"));
    }
}
