//! A small seeded generator (SplitMix64) for replacement and testers.
//!
//! Every component that needs randomness owns one, seeded from the config
//! seed and its own identity, so results never depend on host scheduling.

/// SplitMix64: fast, statistically good enough for simulation choices.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct SplitMix64 {
    state: u64,
}

impl SplitMix64 {
    /// A generator from a seed; `stream` separates generators sharing a seed.
    pub fn new(seed: u64, stream: u64) -> Self {
        let mut g = SplitMix64 {
            state: seed ^ stream.wrapping_mul(0xA076_1D64_78BD_642F),
        };
        g.next_u64();
        g
    }

    /// The next 64 random bits.
    pub fn next_u64(&mut self) -> u64 {
        self.state = self.state.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.state;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// A value in `0..n` (`n > 0`), by multiply-shift (no modulo bias worth
    /// caring about for simulation choices).
    pub fn below(&mut self, n: u64) -> u64 {
        assert!(n > 0, "below(0) has no value");
        let wide = u128::from(self.next_u64()) * u128::from(n);
        // The high half of a 64×64 product is < n, so it fits in u64.
        u64::try_from(wide >> 64).expect("high half of the product is below n")
    }

    /// A `usize` in `0..n`.
    pub fn below_usize(&mut self, n: usize) -> usize {
        usize::try_from(self.below(n as u64)).expect("value below a usize fits a usize")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn streams_differ_and_repeat() {
        let mut a = SplitMix64::new(7, 0);
        let mut b = SplitMix64::new(7, 1);
        let mut a2 = SplitMix64::new(7, 0);
        let xa: Vec<u64> = (0..4).map(|_| a.next_u64()).collect();
        let xb: Vec<u64> = (0..4).map(|_| b.next_u64()).collect();
        let xa2: Vec<u64> = (0..4).map(|_| a2.next_u64()).collect();
        assert_ne!(xa, xb);
        assert_eq!(xa, xa2);
    }

    #[test]
    fn below_stays_in_range_and_covers_it() {
        let mut g = SplitMix64::new(1, 2);
        let mut seen = [false; 5];
        for _ in 0..200 {
            let v = g.below(5);
            assert!(v < 5);
            seen[v as usize] = true;
        }
        assert!(seen.iter().all(|&s| s));
    }
}
