//! A set of cores as a bit vector (the directory's core-valid bits).

use crate::ids::CoreId;

/// Cores holding a shared copy. Empty sets allocate nothing.
#[derive(Clone, Debug, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Sharers(Vec<u64>);

impl Sharers {
    /// Adds a core.
    pub fn insert(&mut self, c: CoreId) {
        let (w, b) = (c.index() / 64, c.index() % 64);
        if self.0.len() <= w {
            self.0.resize(w + 1, 0);
        }
        self.0[w] |= 1 << b;
    }

    /// Removes a core.
    pub fn remove(&mut self, c: CoreId) {
        if let Some(w) = self.0.get_mut(c.index() / 64) {
            *w &= !(1 << (c.index() % 64));
        }
    }

    /// Whether a core is in the set.
    pub fn contains(&self, c: CoreId) -> bool {
        self.0
            .get(c.index() / 64)
            .is_some_and(|w| w & (1 << (c.index() % 64)) != 0)
    }

    /// Whether the set is empty.
    pub fn is_empty(&self) -> bool {
        self.0.iter().all(|&w| w == 0)
    }

    /// Empties the set.
    pub fn clear(&mut self) {
        self.0.clear();
    }

    /// The cores, in increasing order.
    pub fn iter(&self) -> impl Iterator<Item = CoreId> + '_ {
        self.0.iter().enumerate().flat_map(|(i, &w)| {
            (0..64u32)
                .filter(move |b| w & (1 << b) != 0)
                .map(move |b| CoreId(u32::try_from(i * 64).expect("core ids fit u32") + b))
        })
    }

    /// Number of cores in the set.
    pub fn len(&self) -> usize {
        self.0.iter().map(|w| w.count_ones() as usize).sum()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn insert_remove_iterate_in_order() {
        let mut s = Sharers::default();
        assert!(s.is_empty());
        for c in [70, 3, 64] {
            s.insert(CoreId(c));
        }
        s.remove(CoreId(64));
        assert!(s.contains(CoreId(70)) && !s.contains(CoreId(64)));
        assert_eq!(s.iter().collect::<Vec<_>>(), vec![CoreId(3), CoreId(70)]);
        assert_eq!(s.len(), 2);
        s.clear();
        assert!(s.is_empty());
    }
}
