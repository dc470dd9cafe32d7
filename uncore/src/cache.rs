//! A cache: tag array + replacement policy, with statistics counted in a
//! wrapper the policy cannot bypass; a level may also run a prefetcher
//! ([`Prefetcher`]), which the coherence controller consults. The coherence controller that owns a
//! cache ([`crate::private`] for a core, [`crate::directory`] for an L3
//! slice) keeps its state in the tag entries.

mod prefetch;
mod replacement;
mod sets;
mod tags;

pub use prefetch::{
    new_prefetcher, AnyPrefetcher, DemandAccess, NextLine, Prefetcher, StridePrefetcher,
};
pub use replacement::{new_policy, Lru, Policy, RandomPolicy, Replacement, Srrip};
pub use tags::{TagArray, TagEntry};

use crate::memory::LineAddr;
use smpsim_engine::{CounterId, Stats, StatsBuilder};

/// Counter handles of one cache.
#[derive(Clone, Copy, Debug, serde::Serialize, serde::Deserialize)]
struct CacheStatIds {
    hits: CounterId,
    misses: CounterId,
    evictions: CounterId,
    invalidations: Option<CounterId>,
}

impl CacheStatIds {
    fn declare(b: &mut StatsBuilder, name: &str, invalidated: bool) -> Self {
        let c = |b: &mut StatsBuilder, what: &str, desc: &str| {
            b.counter(
                &format!("{name}.{what}"),
                &format!("{name}: {desc}"),
                "events",
            )
        };
        CacheStatIds {
            hits: c(b, "hits", "demand lookups that found the line"),
            misses: c(b, "misses", "demand lookups that did not find the line"),
            evictions: c(b, "evictions", "lines replaced to make room"),
            invalidations: invalidated.then(|| {
                c(
                    b,
                    "invalidations",
                    "lines removed by coherence or inclusion",
                )
            }),
        }
    }
}

/// No way of the set may be given up (all hold lines in transient states).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct NoVictim;

/// A set-associative cache of per-line states `T`.
#[derive(Debug, serde::Serialize, serde::Deserialize)]
#[serde(bound(deserialize = "T: Clone + serde::Deserialize<'de>"))]
pub struct Cache<T> {
    tags: TagArray<T>,
    policy: Policy,
    ids: CacheStatIds,
}

impl<T: Clone> Cache<T> {
    /// A cache named `name` (statistic prefix) with the given geometry
    /// `(sets, ways, stride)`. `invalidated` says whether lines can be
    /// removed by coherence (private caches) — the home L3 only evicts —
    /// so that no statistic is declared that can never move.
    pub fn new(
        name: &str,
        geometry: (usize, usize, u64),
        policy: Policy,
        invalidated: bool,
        stats: &mut StatsBuilder,
    ) -> Self {
        let (sets, ways, stride) = geometry;
        Cache {
            tags: TagArray::new(sets, ways, stride),
            policy,
            ids: CacheStatIds::declare(stats, name, invalidated),
        }
    }

    /// Looks at a line without counting or touching replacement state
    /// (coherence probes, checks).
    pub fn probe(&self, line: LineAddr) -> Option<&T> {
        self.tags.get(line)
    }

    /// [`Cache::probe`], mutably.
    pub fn probe_mut(&mut self, line: LineAddr) -> Option<&mut T> {
        self.tags.get_mut(line)
    }

    /// A demand lookup: counts a hit or a miss and updates replacement.
    pub fn access(&mut self, line: LineAddr, stats: &mut Stats) -> Option<&mut T> {
        match self.tags.find(line) {
            Some((set, way)) => {
                stats.inc(self.ids.hits);
                self.policy.on_hit(set, way);
                self.tags.slot_mut(set, way).map(|e| &mut e.state)
            }
            None => {
                stats.inc(self.ids.misses);
                None
            }
        }
    }

    /// Marks a line recently used without counting (a fill from below).
    pub fn touch(&mut self, line: LineAddr) {
        if let Some((set, way)) = self.tags.find(line) {
            self.policy.on_hit(set, way);
        }
    }

    /// The line that inserting `line` would evict: `Ok(None)` if a way is
    /// free, `Ok(Some(victim))` for a line `evictable` allows, else
    /// [`NoVictim`]. Nothing changes.
    pub fn victim_for(
        &mut self,
        line: LineAddr,
        evictable: impl Fn(&T) -> bool,
    ) -> Result<Option<LineAddr>, NoVictim> {
        let set = self.tags.set_of(line);
        if self.tags.free_way(set).is_some() {
            return Ok(None);
        }
        let tags = &self.tags;
        let allowed = |w: usize| tags.slot(set, w).is_some_and(|e| evictable(&e.state));
        let way = self.policy.victim(set, &allowed).ok_or(NoVictim)?;
        Ok(self.tags.slot(set, way).map(|e| e.line))
    }

    /// Inserts `line` (not present) into a free way, or in place of the
    /// victim `evictable` allows; returns the evicted entry (counted).
    pub fn insert(
        &mut self,
        line: LineAddr,
        state: T,
        evictable: impl Fn(&T) -> bool,
        stats: &mut Stats,
    ) -> Result<Option<TagEntry<T>>, NoVictim> {
        debug_assert!(self.tags.find(line).is_none(), "{line} inserted twice");
        let set = self.tags.set_of(line);
        let way = match self.tags.free_way(set) {
            Some(w) => w,
            None => {
                let tags = &self.tags;
                let allowed = |w: usize| tags.slot(set, w).is_some_and(|e| evictable(&e.state));
                self.policy.victim(set, &allowed).ok_or(NoVictim)?
            }
        };
        let old = self.tags.put(set, way, line, state);
        if old.is_some() {
            stats.inc(self.ids.evictions);
        }
        self.policy.on_fill(set, way);
        Ok(old)
    }

    /// Removes a line because of coherence or inclusion (counted).
    pub fn invalidate(&mut self, line: LineAddr, stats: &mut Stats) -> Option<T> {
        let old = self.tags.remove(line);
        if let (Some(_), Some(id)) = (&old, self.ids.invalidations) {
            stats.inc(id);
        }
        old
    }

    /// Removes a line the owner evicts itself (counted as an eviction).
    pub fn evict(&mut self, line: LineAddr, stats: &mut Stats) -> Option<T> {
        let old = self.tags.remove(line);
        if old.is_some() {
            stats.inc(self.ids.evictions);
        }
        old
    }

    /// Lines held now.
    pub fn occupancy(&self) -> usize {
        self.tags.occupancy()
    }

    /// The tag array, read-only.
    pub fn tags(&self) -> &TagArray<T> {
        &self.tags
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wrapper_counts_hits_misses_evictions() {
        let mut b = StatsBuilder::new();
        let mut c: Cache<u8> = Cache::new(
            "t",
            (1, 2, 1),
            new_policy(crate::config::ReplacementKind::Lru, 1, 2, 0),
            true,
            &mut b,
        );
        let mut s = b.build();
        assert!(c.access(LineAddr(1), &mut s).is_none());
        c.insert(LineAddr(1), 0, |_| true, &mut s)
            .expect("free way");
        c.insert(LineAddr(2), 0, |_| true, &mut s)
            .expect("free way");
        assert!(c.access(LineAddr(1), &mut s).is_some());
        assert_eq!(c.victim_for(LineAddr(3), |_| true), Ok(Some(LineAddr(2))));
        let old = c.insert(LineAddr(3), 0, |_| true, &mut s).expect("victim");
        assert_eq!(old.map(|e| e.line), Some(LineAddr(2)));
        assert_eq!(c.insert(LineAddr(4), 0, |_| false, &mut s), Err(NoVictim));
        assert_eq!(s.counter_by_name("t.hits"), Some(1));
        assert_eq!(s.counter_by_name("t.misses"), Some(1));
        assert_eq!(s.counter_by_name("t.evictions"), Some(1));
    }
}
