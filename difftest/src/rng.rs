//! The generator's random numbers: SplitMix64, seeded per case.
//!
//! Each case gets its own stream derived from (seed, case index), so a case
//! can be regenerated alone and the run is deterministic for a seed.

/// A SplitMix64 generator (Steele, Lea, Flood 2014): tiny, fast, and good
/// enough for test-case generation.
#[derive(Clone, Debug)]
pub struct Rng {
    /// The generator's state.
    state: u64,
}

impl Rng {
    /// A generator for case `index` of a run seeded with `seed`.
    pub fn for_case(seed: u64, index: u64) -> Self {
        let mut r = Self {
            state: seed ^ 0x5EED_D1FF_7E57_0000,
        };
        let mixed = r.next_u64() ^ index.wrapping_mul(0xD6E8_FEB8_6659_FD93);
        Self { state: mixed }
    }

    /// The next 64 random bits.
    pub fn next_u64(&mut self) -> u64 {
        self.state = self.state.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.state;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// A uniform number in `0..n` (`n > 0`); the tiny modulo bias is harmless here.
    pub fn below(&mut self, n: u64) -> u64 {
        debug_assert!(n > 0, "below(0)");
        self.next_u64() % n
    }

    /// A uniform index into a slice of length `n` (`n > 0`).
    pub fn index(&mut self, n: usize) -> usize {
        usize::try_from(self.below(n as u64)).expect("index below a usize length fits usize")
    }

    /// A uniform number in `lo..=hi`.
    pub fn range(&mut self, lo: i64, hi: i64) -> i64 {
        debug_assert!(lo <= hi, "empty range");
        let span = hi.wrapping_sub(lo) as u64;
        if span == u64::MAX {
            return self.next_u64() as i64;
        }
        lo.wrapping_add(self.below(span + 1) as i64)
    }

    /// True with probability `percent`/100.
    pub fn chance(&mut self, percent: u64) -> bool {
        self.below(100) < percent
    }

    /// A random element of a non-empty slice.
    pub fn pick<'a, T>(&mut self, items: &'a [T]) -> &'a T {
        &items[self.index(items.len())]
    }

    /// A 64-bit value biased towards the edge cases of integer arithmetic:
    /// zero, one, all ones, sign boundaries of every width, small numbers,
    /// and otherwise uniform bits at a random width.
    pub fn interesting_u64(&mut self) -> u64 {
        const EDGES: [u64; 14] = [
            0,
            1,
            2,
            u64::MAX,
            0x7F,
            0x80,
            0xFF,
            0x7FFF,
            0x8000,
            0xFFFF,
            0x7FFF_FFFF,
            0x8000_0000,
            0xFFFF_FFFF,
            0x8000_0000_0000_0000,
        ];
        match self.below(8) {
            0 => *self.pick(&EDGES),
            1 => self.below(64),
            2 => self.next_u64() & 0xFF,
            3 => self.next_u64() & 0xFFFF,
            4 => self.next_u64() & 0xFFFF_FFFF,
            5 => (self.next_u64() as i32) as i64 as u64,
            _ => self.next_u64(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn same_seed_and_index_give_same_stream_and_others_differ() {
        let a: Vec<u64> = (0..4).map(|_| Rng::for_case(7, 3).next_u64()).collect();
        assert!(a.windows(2).all(|w| w[0] == w[1]));
        assert_ne!(
            Rng::for_case(7, 3).next_u64(),
            Rng::for_case(7, 4).next_u64()
        );
        assert_ne!(
            Rng::for_case(7, 3).next_u64(),
            Rng::for_case(8, 3).next_u64()
        );
    }

    #[test]
    fn range_stays_inside_bounds() {
        let mut r = Rng::for_case(1, 1);
        for _ in 0..1000 {
            let v = r.range(-3, 5);
            assert!((-3..=5).contains(&v), "{v}");
        }
    }
}
