//! Per-set storage allocated on first write: what a tag array or a
//! replacement policy keeps for each `(set, way)`.
//!
//! A private hierarchy's arrays are 200 KB per core (the L2's 8192 tag
//! entries and LRU stamps), yet a core of a large, mostly idle guest
//! touches a few hundred lines. A set is therefore stored only once a way
//! of it is written: a per-set index into an arena that grows by one set
//! at a time. An unwritten set reads as `ways` copies of the blank value,
//! so contents, serialized form (a flat sequence of `sets × ways` values,
//! as the eager `Vec` was) and equality are those of a full array.

use serde::{Serialize, Serializer};

/// Index meaning "not allocated" in [`LazySets`]' set table.
const ABSENT: u32 = u32::MAX;

/// `sets × ways` values, each set allocated when first written.
#[derive(Clone, Debug)]
pub struct LazySets<T> {
    ways: usize,
    /// What every way of an unallocated set holds.
    blank: T,
    /// Per set: the arena offset of its `ways` values, or [`ABSENT`].
    index: Vec<u32>,
    /// The allocated sets' values, `ways` per set, in allocation order.
    arena: Vec<T>,
}

impl<T: Clone> LazySets<T> {
    /// `sets` sets of `ways` values, all `blank`, nothing allocated.
    pub fn new(sets: usize, ways: usize, blank: T) -> Self {
        assert!(ways >= 1, "a set has at least one way");
        u32::try_from(sets * ways).expect("sets × ways fits u32");
        LazySets {
            ways,
            blank,
            index: vec![ABSENT; sets],
            arena: Vec::new(),
        }
    }

    /// The values of `set` to change, allocated (blank) if they were not.
    #[inline]
    pub fn get_or_alloc(&mut self, set: usize) -> &mut [T] {
        if self.index[set] == ABSENT {
            let at = self.arena.len();
            self.index[set] = u32::try_from(at).expect("sets × ways fits u32");
            self.arena.resize(at + self.ways, self.blank.clone());
        }
        let at = self.index[set] as usize;
        &mut self.arena[at..at + self.ways]
    }

    /// Sets of `ways` values from a flat sequence (as serialized); the
    /// sets whose values are all `is_blank` stay unallocated.
    pub fn restore(values: Vec<T>, ways: usize, blank: T, is_blank: impl Fn(&T) -> bool) -> Self {
        let mut out = LazySets::new(values.len() / ways.max(1), ways, blank);
        for (s, chunk) in values.chunks(ways).enumerate() {
            if !chunk.iter().all(&is_blank) {
                out.get_or_alloc(s).clone_from_slice(chunk);
            }
        }
        out
    }
}

impl<T> LazySets<T> {
    /// Number of sets.
    pub fn sets(&self) -> usize {
        self.index.len()
    }

    /// The values of `set`, or `None` while every way is blank.
    #[inline]
    pub fn get(&self, set: usize) -> Option<&[T]> {
        match self.index[set] {
            ABSENT => None,
            at => Some(&self.arena[at as usize..at as usize + self.ways]),
        }
    }

    /// The values of `set` to change, or `None` while every way is blank
    /// (nothing is allocated).
    #[inline]
    pub fn get_mut(&mut self, set: usize) -> Option<&mut [T]> {
        match self.index[set] {
            ABSENT => None,
            at => Some(&mut self.arena[at as usize..at as usize + self.ways]),
        }
    }

    /// The values of the allocated sets (every other value is blank), in
    /// no particular set order.
    pub fn allocated(&self) -> &[T] {
        &self.arena
    }

    /// Every value, set by set, blank ones included.
    pub fn iter(&self) -> impl Iterator<Item = &T> + '_ {
        (0..self.sets() * self.ways).map(move |i| match self.get(i / self.ways) {
            Some(v) => &v[i % self.ways],
            None => &self.blank,
        })
    }
}

impl<T: PartialEq> PartialEq for LazySets<T> {
    fn eq(&self, other: &Self) -> bool {
        self.ways == other.ways && self.sets() == other.sets() && self.iter().eq(other.iter())
    }
}

impl<T: Eq> Eq for LazySets<T> {}

/// Serialized as the flat sequence of every value (blank ones included).
impl<T: Serialize> Serialize for LazySets<T> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_seq(self.iter())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unwritten_sets_read_blank_and_cost_nothing() {
        let mut l = LazySets::new(4, 2, 7u8);
        assert_eq!(l.get(3), None);
        assert!(l.allocated().is_empty());
        l.get_or_alloc(3)[1] = 1;
        assert_eq!(l.get(3), Some(&[7, 1][..]));
        assert_eq!(l.allocated().len(), 2);
        assert_eq!(
            l.iter().copied().collect::<Vec<_>>(),
            [7, 7, 7, 7, 7, 7, 7, 1]
        );
    }

    #[test]
    fn serializes_flat_and_restores_equal() {
        let mut l = LazySets::new(3, 2, 0u64);
        l.get_or_alloc(2)[0] = 5;
        l.get_or_alloc(0)[1] = 6;
        let json = serde_json::to_string(&l).expect("serializes");
        assert_eq!(json, "[0,6,0,0,5,0]");
        let flat: Vec<u64> = serde_json::from_str(&json).expect("deserializes");
        let back = LazySets::restore(flat, 2, 0, |v| *v == 0);
        assert_eq!(back, l);
        assert_eq!(back.get(1), None, "blank sets stay unallocated");
    }
}
