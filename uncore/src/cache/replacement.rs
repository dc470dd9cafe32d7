//! Replacement policies: which way of a full set gives way.
//!
//! [`Replacement`] is the seam a cache calls through. [`new_policy`]
//! returns a [`Policy`]: an enum holding the concrete policy that
//! implements the trait by delegation (enum dispatch, no `Box<dyn>`), so a
//! cache's whole state derives `Serialize`/`Deserialize` for checkpoints.
//! A new policy is a struct implementing [`Replacement`] plus a variant of
//! [`Policy`] and an arm in its delegation.

use super::sets::LazySets;
use crate::config::ReplacementKind;
use crate::rng::SplitMix64;
use serde::{Deserialize, Serialize};
use std::fmt;

/// A replacement policy over `sets × ways` slots. The tag array tells it of
/// hits and fills; it names a victim among the ways a caller allows
/// (lines in a transient state are not allowed).
pub trait Replacement: Send + fmt::Debug {
    /// A hit on `(set, way)`.
    fn on_hit(&mut self, set: usize, way: usize);
    /// A new line was placed in `(set, way)`.
    fn on_fill(&mut self, set: usize, way: usize);
    /// The victim among the ways of `set` for which `allowed` is true.
    fn victim(&mut self, set: usize, allowed: &dyn Fn(usize) -> bool) -> Option<usize>;
}

/// Builds the policy a config names; `seed` feeds the random policy.
pub fn new_policy(kind: ReplacementKind, sets: usize, ways: usize, seed: u64) -> Policy {
    match kind {
        ReplacementKind::Lru => Policy::Lru(Lru::new(sets, ways)),
        ReplacementKind::Srrip => Policy::Srrip(Srrip::new(sets, ways)),
        ReplacementKind::Random => Policy::Random(RandomPolicy::new(ways, seed)),
    }
}

/// One of the concrete policies, dispatching [`Replacement`] to it; the
/// serializable form of a cache's policy state.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Policy {
    /// Least recently used.
    Lru(Lru),
    /// Static re-reference interval prediction.
    Srrip(Srrip),
    /// Random among the allowed ways.
    Random(RandomPolicy),
}

impl Policy {
    fn inner(&mut self) -> &mut dyn Replacement {
        match self {
            Policy::Lru(p) => p,
            Policy::Srrip(p) => p,
            Policy::Random(p) => p,
        }
    }
}

impl Replacement for Policy {
    fn on_hit(&mut self, set: usize, way: usize) {
        self.inner().on_hit(set, way);
    }
    fn on_fill(&mut self, set: usize, way: usize) {
        self.inner().on_fill(set, way);
    }
    fn victim(&mut self, set: usize, allowed: &dyn Fn(usize) -> bool) -> Option<usize> {
        self.inner().victim(set, allowed)
    }
}

/// Least recently used, by a per-slot access stamp (0: never used). A
/// set's stamps are allocated at its first use (`LazySets`).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(from = "LruState", into = "LruState")]
pub struct Lru {
    ways: usize,
    stamp: LazySets<u64>,
    clock: u64,
}

/// The serialized form of [`Lru`] (every stamp, as an eager array).
#[derive(Serialize, Deserialize)]
struct LruState {
    ways: usize,
    stamp: Vec<u64>,
    clock: u64,
}

impl From<LruState> for Lru {
    fn from(st: LruState) -> Self {
        Lru {
            stamp: LazySets::restore(st.stamp, st.ways, 0, |&s| s == 0),
            ways: st.ways,
            clock: st.clock,
        }
    }
}

impl From<Lru> for LruState {
    fn from(p: Lru) -> Self {
        LruState {
            stamp: p.stamp.iter().copied().collect(),
            ways: p.ways,
            clock: p.clock,
        }
    }
}

impl Lru {
    /// A policy for `sets × ways` slots.
    pub fn new(sets: usize, ways: usize) -> Self {
        Lru {
            ways,
            stamp: LazySets::new(sets, ways, 0),
            clock: 0,
        }
    }

    fn touch(&mut self, set: usize, way: usize) {
        self.clock += 1;
        self.stamp.get_or_alloc(set)[way] = self.clock;
    }
}

impl Replacement for Lru {
    fn on_hit(&mut self, set: usize, way: usize) {
        self.touch(set, way);
    }
    fn on_fill(&mut self, set: usize, way: usize) {
        self.touch(set, way);
    }
    fn victim(&mut self, set: usize, allowed: &dyn Fn(usize) -> bool) -> Option<usize> {
        let stamps = self.stamp.get(set);
        (0..self.ways)
            .filter(|&w| allowed(w))
            .min_by_key(|&w| stamps.map_or(0, |s| s[w]))
    }
}

/// Static RRIP with 2-bit re-reference prediction values: fills predict a
/// long re-reference (2), hits a near one (0); the victim is the first
/// allowed way predicted distant (3), ageing the set until one is. A
/// set's predictions are allocated at its first use (`LazySets`).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(from = "SrripState", into = "SrripState")]
pub struct Srrip {
    ways: usize,
    rrpv: LazySets<u8>,
}

/// The serialized form of [`Srrip`] (every prediction, as an eager array).
#[derive(Serialize, Deserialize)]
struct SrripState {
    ways: usize,
    rrpv: Vec<u8>,
}

impl From<SrripState> for Srrip {
    fn from(st: SrripState) -> Self {
        Srrip {
            rrpv: LazySets::restore(st.rrpv, st.ways, RRPV_MAX, |&v| v == RRPV_MAX),
            ways: st.ways,
        }
    }
}

impl From<Srrip> for SrripState {
    fn from(p: Srrip) -> Self {
        SrripState {
            rrpv: p.rrpv.iter().copied().collect(),
            ways: p.ways,
        }
    }
}

const RRPV_MAX: u8 = 3;

impl Srrip {
    /// A policy for `sets × ways` slots.
    pub fn new(sets: usize, ways: usize) -> Self {
        Srrip {
            ways,
            rrpv: LazySets::new(sets, ways, RRPV_MAX),
        }
    }
}

impl Replacement for Srrip {
    fn on_hit(&mut self, set: usize, way: usize) {
        self.rrpv.get_or_alloc(set)[way] = 0;
    }
    fn on_fill(&mut self, set: usize, way: usize) {
        self.rrpv.get_or_alloc(set)[way] = RRPV_MAX - 1;
    }
    fn victim(&mut self, set: usize, allowed: &dyn Fn(usize) -> bool) -> Option<usize> {
        let slots = self.rrpv.get_or_alloc(set);
        let top = (0..slots.len())
            .filter(|&w| allowed(w))
            .map(|w| slots[w])
            .max()?;
        let age = RRPV_MAX - top;
        for (w, v) in slots.iter_mut().enumerate() {
            if allowed(w) {
                *v += age;
            }
        }
        (0..slots.len()).find(|&w| allowed(w) && slots[w] == RRPV_MAX)
    }
}

/// Uniformly random among the allowed ways.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct RandomPolicy {
    ways: usize,
    rng: SplitMix64,
}

impl RandomPolicy {
    /// A policy for sets of `ways` ways, seeded.
    pub fn new(ways: usize, seed: u64) -> Self {
        RandomPolicy {
            ways,
            rng: SplitMix64::new(seed, 0x5eed),
        }
    }
}

impl Replacement for RandomPolicy {
    fn on_hit(&mut self, _set: usize, _way: usize) {}
    fn on_fill(&mut self, _set: usize, _way: usize) {}
    fn victim(&mut self, _set: usize, allowed: &dyn Fn(usize) -> bool) -> Option<usize> {
        let candidates: Vec<usize> = (0..self.ways).filter(|&w| allowed(w)).collect();
        if candidates.is_empty() {
            return None;
        }
        Some(candidates[self.rng.below_usize(candidates.len())])
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lru_evicts_least_recent_allowed() {
        let mut p = Lru::new(1, 4);
        for w in 0..4 {
            p.on_fill(0, w);
        }
        p.on_hit(0, 0);
        assert_eq!(p.victim(0, &|_| true), Some(1));
        assert_eq!(p.victim(0, &|w| w != 1), Some(2));
        assert_eq!(p.victim(0, &|_| false), None);
    }

    #[test]
    fn srrip_prefers_lines_never_hit() {
        let mut p = Srrip::new(1, 4);
        for w in 0..4 {
            p.on_fill(0, w);
        }
        p.on_hit(0, 0);
        p.on_hit(0, 2);
        let v = p.victim(0, &|_| true).expect("a victim");
        assert!(v == 1 || v == 3, "victim {v} was re-referenced");
        assert_eq!(v, 1, "first distant way in order");
        assert_eq!(
            p.victim(0, &|w| w == 0),
            Some(0),
            "ages until an allowed way is distant"
        );
    }

    #[test]
    fn random_is_seeded_and_respects_allowed() {
        let picks = |seed| {
            let mut p = RandomPolicy::new(8, seed);
            (0..16)
                .map(|_| p.victim(0, &|w| w % 2 == 0).expect("even ways"))
                .collect::<Vec<_>>()
        };
        assert_eq!(picks(3), picks(3));
        assert!(picks(3).iter().all(|w| w % 2 == 0));
    }
}
