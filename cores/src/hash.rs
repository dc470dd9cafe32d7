//! A cheap hasher for maps keyed by page, line or block numbers.
//!
//! The standard map's SipHash guards against adversarial keys; the keys
//! here are addresses the guest chose, and a map lookup sits on hot paths
//! (a store to a page that may hold code, a buffered line of the
//! fast-forward model). One multiply by the 64-bit golden ratio spreads
//! such keys well. The hasher is fixed, so iteration order is the same on
//! every run and host.

use std::collections::HashMap;
use std::hash::{BuildHasherDefault, Hasher};

/// Multiplicative (Fibonacci) hashing of integer keys; other keys are
/// folded in byte by byte (FNV-1a).
#[derive(Clone, Copy, Debug, Default)]
pub struct AddrHasher(u64);

/// The golden-ratio multiplier (2^64 / φ, odd).
pub const GOLDEN: u64 = 0x9e37_79b9_7f4a_7c15;

impl Hasher for AddrHasher {
    #[inline]
    fn finish(&self) -> u64 {
        self.0
    }

    fn write(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.0 = (self.0 ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3);
        }
    }

    #[inline]
    fn write_u64(&mut self, x: u64) {
        self.0 = (self.0 ^ x).wrapping_mul(GOLDEN);
    }
}

/// A map keyed by addresses, page or line numbers.
pub type AddrMap<K, V> = HashMap<K, V, BuildHasherDefault<AddrHasher>>;

/// Spreads `x` over `bits` bits (the high bits of the golden-ratio
/// product, which depend on every bit of `x`): for direct-mapped filters
/// whose keys share their low bits (pages at 2 MiB-aligned addresses).
#[inline(always)]
pub fn spread(x: u64, bits: u32) -> usize {
    debug_assert!((1..=32).contains(&bits));
    // At most 32 bits remain after the shift.
    (x.wrapping_mul(GOLDEN) >> (64 - bits)) as usize
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn spread_separates_pages_with_equal_low_bits() {
        // Page numbers of 0x40_0000 and 0x60_0000 (2 MiB apart) share
        // their low 9 bits; a low-bit filter of 64 buckets put both in 0.
        let (a, b) = (0x400u64, 0x600u64);
        assert_eq!(a & 63, b & 63);
        assert_ne!(spread(a, 6), spread(b, 6));
        for bits in 1..=12 {
            assert!(spread(a, bits) < 1 << bits);
        }
    }

    #[test]
    fn map_keys_found_and_order_fixed() {
        let mut m: AddrMap<u64, u32> = AddrMap::default();
        for i in 0..1000u64 {
            m.insert(i << 9, u32::try_from(i).expect("small"));
        }
        assert_eq!(m.get(&(77 << 9)), Some(&77));
        let order: Vec<u64> = m.keys().copied().collect();
        let again: AddrMap<u64, u32> = m.clone();
        assert_eq!(order, again.keys().copied().collect::<Vec<_>>());
    }
}
