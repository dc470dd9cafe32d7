//! The prefetchers of the private L1D and L2 (DESIGN.md §3's private
//! hierarchy): what they observe, which proposals become requests, and
//! their counters.
//!
//! # What each level observes
//! - L1D: every data load's lookup of a line, and every store's line as
//!   it enters the store buffer (stores do not look the L1D up otherwise).
//! - L2: the lookups that missed an L1 (loads and instruction fetches),
//!   and stores whose line the L1D lacks.
//!
//! # What a proposal becomes
//! A proposed line already in the level, or with a miss in flight, is
//! skipped. Otherwise a prefetch is a GetS through the hierarchy's MSHRs
//! ([`PrivateHierarchy::miss`]), exactly like a load miss with nobody
//! waiting; it is dropped (and counted) when no MSHR or way is free. The
//! granted line is a normal readable line (the ownership rule is
//! unchanged) marked as prefetched. An L1D prefetch of a line the L2 holds
//! readable moves it up: it enters the L1D `l2.latency` cycles later.
//!
//! # Counters (only for a level whose prefetcher is not `none`)
//! `<level>.prefetch.issued`, `.useful` (the first demand hit on a line a
//! prefetch brought), `.late` (a demand access found the prefetch still
//! in flight; the line is then not marked) and `.dropped`.

use super::*;
use crate::cache::{new_prefetcher, AnyPrefetcher, DemandAccess, Prefetcher};
use smpsim_engine::CounterId;

/// Which private level a prefetch fills.
#[derive(Copy, Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub(super) enum PfLevel {
    /// The L1D (through the L2, which then holds the line too).
    L1d,
    /// The L2 only.
    L2,
}

smpsim_engine::stat_table! {
    /// One level's prefetch counters, named after the level.
    struct PfStatIds(level: &str) {
        /// Prefetches sent.
        issued: counter(
            &format!("{level}.prefetch.issued"),
            &format!("{level}: prefetches sent (GetS, or an L1D fill from the L2)"),
            "lines"
        ),
        /// First demand hits on prefetched lines.
        useful: counter(
            &format!("{level}.prefetch.useful"),
            &format!("{level}: first demand hits on lines a prefetch brought"),
            "lines"
        ),
        /// Demands that found their prefetch in flight.
        late: counter(
            &format!("{level}.prefetch.late"),
            &format!("{level}: demand accesses that found their line's prefetch in flight"),
            "lines"
        ),
        /// Prefetches dropped.
        dropped: counter(
            &format!("{level}.prefetch.dropped"),
            &format!("{level}: prefetches dropped for want of an MSHR or a way"),
            "lines"
        ),
    }
}

/// One level's prefetcher with its counters.
#[derive(Debug, serde::Serialize, serde::Deserialize)]
struct PfUnit {
    prefetcher: AnyPrefetcher,
    ids: PfStatIds,
}

impl PfUnit {
    fn new(cfg: &CacheConfig, level: &str, stats: &mut StatsBuilder) -> Option<Self> {
        let prefetcher = new_prefetcher(&cfg.prefetch)?;
        Some(PfUnit {
            prefetcher,
            ids: PfStatIds::declare(stats, level),
        })
    }
}

/// The L1D's and L2's prefetchers and their pending work.
#[derive(Debug, serde::Serialize, serde::Deserialize)]
pub(super) struct Prefetchers {
    l1d: Option<PfUnit>,
    l2: Option<PfUnit>,
    /// Proposals of the access being handled, acted on when it is done.
    queue: Vec<(PfLevel, LineAddr)>,
    scratch: Vec<LineAddr>,
    /// L1D prefetches the L2 serves: the line enters the L1D at the cycle.
    l1_fills: Vec<(LineAddr, Cycle)>,
}

impl Prefetchers {
    /// The prefetchers `cfg` names; counters are declared only for those
    /// that are not `none`.
    pub(super) fn new(cfg: &HierarchyConfig, stats: &mut StatsBuilder) -> Self {
        Prefetchers {
            l1d: PfUnit::new(&cfg.l1d, "l1d", stats),
            l2: PfUnit::new(&cfg.l2, "l2", stats),
            queue: Vec::new(),
            scratch: Vec::new(),
            l1_fills: Vec::new(),
        }
    }

    fn any(&self) -> bool {
        self.l1d.is_some() || self.l2.is_some()
    }

    fn unit(&mut self, lvl: PfLevel) -> Option<&mut PfUnit> {
        match lvl {
            PfLevel::L1d => self.l1d.as_mut(),
            PfLevel::L2 => self.l2.as_mut(),
        }
    }

    fn id(&mut self, lvl: PfLevel, which: fn(&PfStatIds) -> CounterId) -> Option<CounterId> {
        self.unit(lvl).map(|u| which(&u.ids))
    }

    /// Shows `access` to the level's prefetcher and queues its proposals.
    pub(super) fn observe(&mut self, lvl: PfLevel, access: DemandAccess) {
        let Prefetchers {
            l1d,
            l2,
            queue,
            scratch,
            ..
        } = self;
        let unit = match lvl {
            PfLevel::L1d => l1d.as_mut(),
            PfLevel::L2 => l2.as_mut(),
        };
        let Some(u) = unit else {
            return;
        };
        u.prefetcher.observe(&access, scratch);
        queue.extend(scratch.drain(..).map(|line| (lvl, line)));
    }

    fn fill_pending(&self, line: LineAddr) -> bool {
        self.l1_fills.iter().any(|f| f.0 == line)
    }
}

/// A demand access of `line`, for a prefetcher.
fn demand(line: LineAddr, hit: bool, prefetched: bool, write: bool) -> DemandAccess {
    DemandAccess {
        line,
        hit,
        prefetched,
        write,
    }
}

impl PrivateHierarchy {
    /// Counts one of a level's prefetch events (nothing if it has no
    /// prefetcher).
    fn pf_count(&mut self, lvl: PfLevel, which: fn(&PfStatIds) -> CounterId) {
        if let Some(id) = self.pf.id(lvl, which) {
            self.stats.inc(id);
        }
    }

    /// A demand load or fetch hit `lvl`; `prefetched` is the line's mark,
    /// now cleared.
    pub(super) fn pf_hit(&mut self, lvl: PfLevel, line: LineAddr, prefetched: bool) {
        if prefetched {
            self.pf_count(lvl, |i| i.useful);
        }
        self.pf.observe(lvl, demand(line, true, prefetched, false));
    }

    /// A demand load or fetch missed `lvl`.
    pub(super) fn pf_miss(&mut self, lvl: PfLevel, line: LineAddr) {
        self.pf.observe(lvl, demand(line, false, false, false));
    }

    /// A demand access found `line`'s miss in flight: if a prefetch sent
    /// it, it was late, and the line will not count as prefetched.
    pub(super) fn pf_claim(&mut self, line: LineAddr) {
        let Some(lvl) = self.mshrs.get_mut(&line).and_then(|m| m.prefetch.take()) else {
            return;
        };
        self.pf_count(lvl, |i| i.late);
        if let Some(e) = self.l2.probe_mut(line) {
            e.prefetched = false;
        }
    }

    /// A store entered the store buffer: the L1D's prefetcher sees it,
    /// and the L2's if the L1D lacks the line.
    pub(super) fn pf_store(&mut self, line: LineAddr) {
        if !self.pf.any() {
            return;
        }
        if let Some(e) = self.l1d.probe_mut(line) {
            let was = std::mem::take(&mut e.prefetched);
            if was {
                self.pf_count(PfLevel::L1d, |i| i.useful);
            }
            self.pf.observe(PfLevel::L1d, demand(line, true, was, true));
            return;
        }
        self.pf
            .observe(PfLevel::L1d, demand(line, false, false, true));
        let hit = match self.l2.probe_mut(line) {
            Some(e) if e.st.readable() => Some(std::mem::take(&mut e.prefetched)),
            _ => None,
        };
        match hit {
            Some(was) => {
                if was {
                    self.pf_count(PfLevel::L2, |i| i.useful);
                }
                self.pf.observe(PfLevel::L2, demand(line, true, was, true));
            }
            None => {
                self.pf_claim(line);
                self.pf
                    .observe(PfLevel::L2, demand(line, false, false, true));
            }
        }
    }

    /// Acts on the proposals the last access produced.
    pub(super) fn issue_prefetches(&mut self, now: Cycle) {
        if self.pf.queue.is_empty() {
            return;
        }
        let mut queue = std::mem::take(&mut self.pf.queue);
        for &(lvl, line) in &queue {
            self.prefetch_line(now, lvl, line);
        }
        queue.clear();
        self.pf.queue = queue;
    }

    /// One proposal: skipped if present or in flight, else a fill from the
    /// L2 (L1D, line readable there) or a GetS.
    fn prefetch_line(&mut self, now: Cycle, lvl: PfLevel, line: LineAddr) {
        if lvl == PfLevel::L1d && (self.l1d.probe(line).is_some() || self.pf.fill_pending(line)) {
            return;
        }
        if self.mshrs.contains_key(&line) {
            return;
        }
        match self.l2.probe(line).map(|e| e.st) {
            Some(st) if st.readable() => {
                if lvl == PfLevel::L1d {
                    self.pf.l1_fills.push((line, now + self.lat[2]));
                    self.pf_count(lvl, |i| i.issued);
                }
                return;
            }
            Some(st) => unreachable!("{line} in {st:?} without an MSHR"),
            None => {}
        }
        if self.miss(now, line, false, Some(lvl)) {
            self.pf_count(lvl, |i| i.issued);
        } else {
            self.pf_count(lvl, |i| i.dropped);
        }
    }

    /// Moves the L1D prefetches the L2 served by `now` into the L1D.
    pub(super) fn settle_l1_fills(&mut self, now: Cycle) {
        if self.pf.l1_fills.iter().all(|f| f.1 > now) {
            return;
        }
        let ready: Vec<LineAddr> = self
            .pf
            .l1_fills
            .iter()
            .filter(|f| f.1 <= now)
            .map(|f| f.0)
            .collect();
        self.pf.l1_fills.retain(|f| f.1 > now);
        for line in ready {
            if self.l2.probe(line).is_some_and(|e| e.st.readable()) {
                self.fill_l1_as(Stream::Data, line, true);
            }
        }
    }

    /// A line entering the L1D by demand (`prefetched` false) ends a
    /// pending L1D prefetch of it, which was then late.
    pub(super) fn pf_fill_l1(&mut self, line: LineAddr, prefetched: bool) {
        let Some(i) = self.pf.l1_fills.iter().position(|f| f.0 == line) else {
            return;
        };
        self.pf.l1_fills.remove(i);
        if !prefetched {
            self.pf_count(PfLevel::L1d, |i| i.late);
        }
    }

    /// The L1s lost `line`: a pending L1D prefetch of it is void.
    pub(super) fn pf_forget_l1(&mut self, line: LineAddr) {
        self.pf.l1_fills.retain(|f| f.0 != line);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::{PrefetchConfig, PrefetchKind};
    use crate::msg::Grant;
    use crate::{MemSystem, MemSystemConfig};
    use smpsim_engine::PartitionId;

    /// A one-core hierarchy with the given L1D and L2 prefetchers.
    fn hierarchy(l1d: PrefetchKind, l2: PrefetchKind, l2_mshrs: u32) -> PrivateHierarchy {
        let mut cfg = MemSystemConfig::default();
        let pf = |kind| PrefetchConfig {
            kind,
            ..PrefetchConfig::default()
        };
        cfg.hierarchy.l1d.prefetch = pf(l1d);
        cfg.hierarchy.l2.prefetch = pf(l2);
        cfg.hierarchy.l2.mshrs = l2_mshrs;
        let mem = Arc::new(MachineMemory::new(1 << 20).expect("memory"));
        let sys = MemSystem::new(&cfg, 1, mem, PartitionId(0)).expect("system");
        sys.hierarchy(CoreId(0), StatsBuilder::new())
    }

    /// The directory's part: every GetS sent so far is granted E at `at`.
    fn grant_all(h: &mut PrivateHierarchy, at: Cycle) -> usize {
        let sent = h.take_sent();
        for (_, _, msg) in &sent {
            let MemMsg::GetS { line, .. } = *msg else {
                panic!("only loads here: {msg:?}");
            };
            let grant = MemMsg::Data {
                line,
                grant: Grant::E,
                served: Level::Dram,
            };
            h.handle_message(at, grant);
        }
        sent.len()
    }

    /// Loads 8 bytes from each line in turn, each after the previous one
    /// completed (a dependent walk); returns the GetS messages sent.
    fn walk(h: &mut PrivateHierarchy, lines: impl Iterator<Item = u64>) -> usize {
        let (mut now, mut gets) = (Cycle(10), 0);
        for l in lines {
            match h.load(now, MachineAddr(l * LINE_SIZE), 8) {
                Access::Done { ready, .. } => now = ready,
                Access::Pending(_) => {
                    now += 100;
                    gets += grant_all(h, now);
                    assert_eq!(h.take_completions().len(), 1);
                }
                Access::Stall => panic!("no stall in a dependent walk"),
            }
            gets += grant_all(h, now);
            now += 1;
        }
        gets
    }

    /// An 8-byte load of the start of `line` at cycle `at`.
    fn load_line(h: &mut PrivateHierarchy, at: u64, line: u64) -> Access {
        h.load(Cycle(at), MachineAddr(line * LINE_SIZE), 8)
    }

    fn counter(h: &PrivateHierarchy, name: &str) -> u64 {
        h.stats()
            .counter_by_name(name)
            .unwrap_or_else(|| panic!("{name} declared"))
    }

    /// Lines 1024..1056: the first half of page 16.
    const WALK: std::ops::Range<u64> = 1024..1056;

    #[test]
    fn without_prefetchers_a_sequential_walk_misses_every_line() {
        let mut h = hierarchy(PrefetchKind::None, PrefetchKind::None, 32);
        assert_eq!(walk(&mut h, WALK), 32);
        assert_eq!(counter(&h, "l1d.misses"), 32);
        assert_eq!(counter(&h, "l1d.hits"), 0);
        assert_eq!(h.stats().counter_by_name("l1d.prefetch.issued"), None);
        assert_eq!(h.stats().counter_by_name("l2.prefetch.issued"), None);
    }

    #[test]
    fn next_line_at_l1d_turns_a_sequential_walk_into_hits() {
        let mut h = hierarchy(PrefetchKind::NextLine, PrefetchKind::None, 32);
        // The first miss proposes lines 1025 and 1026; each hit on a
        // prefetched line proposes two more, one of them new.
        assert_eq!(walk(&mut h, WALK), 1 + 2 + 31);
        assert_eq!(counter(&h, "l1d.misses"), 1);
        assert_eq!(counter(&h, "l1d.hits"), 31);
        assert_eq!(counter(&h, "l1d.prefetch.issued"), 33);
        assert_eq!(counter(&h, "l1d.prefetch.useful"), 31);
        assert_eq!(counter(&h, "l1d.prefetch.late"), 0);
        assert_eq!(counter(&h, "l1d.prefetch.dropped"), 0);
        assert_eq!(counter(&h, "l2.read_misses"), 1, "demand misses only");
        assert_eq!(h.stats().counter_by_name("l2.prefetch.issued"), None);
        // Lines 1056 and 1057 were prefetched but never used; the L1D
        // holds them readable, as a miss would have left them.
        assert_eq!(h.state(LineAddr(1057)), Some(PState::E));
        assert!(h.in_l1(Stream::Data, LineAddr(1057)));
    }

    #[test]
    fn a_demand_during_the_prefetch_is_late_and_merges() {
        let mut h = hierarchy(PrefetchKind::NextLine, PrefetchKind::None, 32);
        assert!(matches!(load_line(&mut h, 10, 1024), Access::Pending(_)));
        assert!(matches!(load_line(&mut h, 11, 1025), Access::Pending(_)));
        // 1024 (demand), 1025 and 1026 (prefetch), then 1027: the
        // demand miss on 1025 is an L1D miss and proposes 1026 and 1027.
        assert_eq!(grant_all(&mut h, Cycle(200)), 4);
        assert_eq!(h.take_completions().len(), 2);
        assert_eq!(counter(&h, "l1d.prefetch.late"), 1);
        assert_eq!(counter(&h, "l2.mshr_merges"), 1);
        // Line 1025 came for the demand: a hit on it is not `useful`.
        assert!(matches!(load_line(&mut h, 300, 1025), Access::Done { .. }));
        assert_eq!(counter(&h, "l1d.prefetch.useful"), 0);
    }

    #[test]
    fn prefetches_without_a_free_mshr_are_dropped() {
        let mut h = hierarchy(PrefetchKind::NextLine, PrefetchKind::None, 1);
        assert!(matches!(load_line(&mut h, 10, 1024), Access::Pending(_)));
        assert_eq!(counter(&h, "l1d.prefetch.dropped"), 2);
        assert_eq!(counter(&h, "l1d.prefetch.issued"), 0);
        assert_eq!(h.outstanding(), 1);
    }

    #[test]
    fn stride_at_l2_learns_two_lines_and_stays_in_the_page() {
        let mut h = hierarchy(PrefetchKind::None, PrefetchKind::Stride, 32);
        // 1024, 1026, … 1086: stride 2 to the end of page 16 (line 1087).
        let gets = walk(&mut h, (1024..1088).step_by(2));
        // Three accesses to learn, then each proposes 2 and 4 lines on.
        assert_eq!(counter(&h, "l2.read_misses"), 3);
        assert_eq!(counter(&h, "l2.prefetch.useful"), 29);
        assert_eq!(counter(&h, "l2.prefetch.issued"), 29);
        assert_eq!(gets, 3 + 29);
        assert_eq!(h.state(LineAddr(1088)), None, "next page untouched");
        // The L2 serves them: the L1D misses each (no L1D prefetcher).
        assert_eq!(counter(&h, "l1d.misses"), 32);
        assert_eq!(counter(&h, "l2.hits"), 29);
    }

    #[test]
    fn stride_at_l1d_learns_three_lines() {
        let mut h = hierarchy(PrefetchKind::Stride, PrefetchKind::None, 32);
        walk(&mut h, (1024..1088).step_by(3));
        // 22 accesses: 3 to learn, the other 19 prefetched.
        assert_eq!(counter(&h, "l1d.misses"), 3);
        assert_eq!(counter(&h, "l1d.prefetch.useful"), 19);
        assert!(
            h.state(LineAddr(1024 + 3 * 22)).is_none(),
            "1090 is in page 17"
        );
    }
}
