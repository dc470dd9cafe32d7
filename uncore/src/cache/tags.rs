//! The tag array: which line sits in which way, with a per-line state.

use super::sets::LazySets;
use crate::memory::LineAddr;

/// A line held in a way, with the state its owner keeps for it.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct TagEntry<T> {
    /// The line.
    pub line: LineAddr,
    /// Its state (coherence state, directory entry, or `()` for presence).
    pub state: T,
}

/// `sets × ways` slots. The set of a line is `(line / stride) % sets`:
/// `stride` (the number of L3 slices, 1 for private caches) skips the part of
/// the line number that already chose the slice. A set's slots are
/// allocated when a line is first put into it (`LazySets`).
#[derive(Clone, Debug, serde::Serialize)]
pub struct TagArray<T> {
    sets: usize,
    ways: usize,
    stride: u64,
    slots: LazySets<Option<TagEntry<T>>>,
}

/// The serialized form of a [`TagArray`] (every slot, as an eager array).
#[derive(serde::Deserialize)]
struct TagArrayState<T> {
    sets: usize,
    ways: usize,
    stride: u64,
    slots: Vec<Option<TagEntry<T>>>,
}

impl<'de, T: Clone + serde::Deserialize<'de>> serde::Deserialize<'de> for TagArray<T> {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let st = TagArrayState::<T>::deserialize(d)?;
        if st.slots.len() != st.sets * st.ways || st.ways == 0 {
            return Err(serde::de::Error::custom(
                "tag array: slots do not match sets × ways",
            ));
        }
        Ok(TagArray {
            sets: st.sets,
            ways: st.ways,
            stride: st.stride,
            slots: LazySets::restore(st.slots, st.ways, None, Option::is_none),
        })
    }
}

impl<T: Clone> TagArray<T> {
    /// An empty array (`sets` a power of two).
    pub fn new(sets: usize, ways: usize, stride: u64) -> Self {
        assert!(sets.is_power_of_two(), "sets must be a power of two");
        assert!(stride >= 1, "stride must be at least 1");
        TagArray {
            sets,
            ways,
            stride,
            slots: LazySets::new(sets, ways, None),
        }
    }

    /// Puts `line` into `(set, way)`, returning what was there.
    pub fn put(&mut self, set: usize, way: usize, line: LineAddr, state: T) -> Option<TagEntry<T>> {
        self.slots.get_or_alloc(set)[way].replace(TagEntry { line, state })
    }
}

impl<T> TagArray<T> {
    /// Ways per set.
    pub fn ways(&self) -> usize {
        self.ways
    }

    /// Number of sets.
    pub fn sets(&self) -> usize {
        self.sets
    }

    /// The set a line maps to.
    #[inline]
    pub fn set_of(&self, line: LineAddr) -> usize {
        let bits = line.get() / self.stride;
        usize::try_from(bits & (self.sets as u64 - 1)).expect("set index < sets")
    }

    /// The way holding `line`, if present.
    #[inline]
    pub fn find(&self, line: LineAddr) -> Option<(usize, usize)> {
        let set = self.set_of(line);
        self.slots
            .get(set)?
            .iter()
            .position(|e| e.as_ref().is_some_and(|e| e.line == line))
            .map(|w| (set, w))
    }

    /// The entry at `(set, way)`.
    pub fn slot(&self, set: usize, way: usize) -> Option<&TagEntry<T>> {
        self.slots.get(set)?[way].as_ref()
    }

    /// The entry at `(set, way)`, mutably.
    pub fn slot_mut(&mut self, set: usize, way: usize) -> Option<&mut TagEntry<T>> {
        self.slots.get_mut(set)?[way].as_mut()
    }

    /// The state of `line`, if present.
    pub fn get(&self, line: LineAddr) -> Option<&T> {
        let (s, w) = self.find(line)?;
        self.slot(s, w).map(|e| &e.state)
    }

    /// The state of `line`, mutably, if present.
    pub fn get_mut(&mut self, line: LineAddr) -> Option<&mut T> {
        let (s, w) = self.find(line)?;
        self.slot_mut(s, w).map(|e| &mut e.state)
    }

    /// A free way in `set`, if any.
    pub fn free_way(&self, set: usize) -> Option<usize> {
        match self.slots.get(set) {
            None => Some(0),
            Some(ways) => ways.iter().position(Option::is_none),
        }
    }

    /// Empties `(set, way)`, returning what was there.
    pub fn take(&mut self, set: usize, way: usize) -> Option<TagEntry<T>> {
        self.slots.get_mut(set)?[way].take()
    }

    /// Removes `line` if present, returning its state.
    pub fn remove(&mut self, line: LineAddr) -> Option<T> {
        let (s, w) = self.find(line)?;
        self.take(s, w).map(|e| e.state)
    }

    /// Number of lines held.
    pub fn occupancy(&self) -> usize {
        self.slots
            .allocated()
            .iter()
            .filter(|s| s.is_some())
            .count()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stride_skips_slice_bits() {
        let t: TagArray<()> = TagArray::new(4, 2, 4);
        assert_eq!(t.set_of(LineAddr(0b1100)), 3);
        assert_eq!(t.set_of(LineAddr(0b0011)), 0);
    }

    #[test]
    fn put_find_remove() {
        let mut t = TagArray::new(2, 2, 1);
        assert_eq!(t.free_way(1), Some(0));
        t.put(1, 0, LineAddr(3), 'a');
        t.put(1, 1, LineAddr(5), 'b');
        assert_eq!(t.free_way(1), None);
        assert_eq!(t.find(LineAddr(5)), Some((1, 1)));
        assert_eq!(t.get(LineAddr(3)), Some(&'a'));
        assert_eq!(t.remove(LineAddr(3)), Some('a'));
        assert_eq!(t.find(LineAddr(3)), None);
        assert_eq!(t.occupancy(), 1);
    }

    #[test]
    fn serialized_form_is_the_eager_array_and_round_trips() {
        let mut t = TagArray::new(4, 2, 1);
        t.put(2, 1, LineAddr(6), 3u8);
        let json = serde_json::to_string(&t).expect("serializes");
        assert_eq!(
            json,
            r#"{"sets":4,"ways":2,"stride":1,"slots":[null,null,null,null,null,{"line":6,"state":3},null,null]}"#
        );
        let back: TagArray<u8> = serde_json::from_str(&json).expect("deserializes");
        assert_eq!(back.get(LineAddr(6)), Some(&3));
        assert_eq!(
            (back.occupancy(), back.free_way(0), back.free_way(2)),
            (1, Some(0), Some(0))
        );
        assert_eq!(serde_json::to_string(&back).expect("again"), json);
    }
}
