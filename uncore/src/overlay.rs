//! Byte-overlay forwarding: the bytes of a store laid over a load window.
//!
//! # What it models
//! Store-to-load forwarding at byte granularity: a load window (at most
//! 16 bytes, an SSE access) takes each byte some buffered store covers
//! from that store. Overlaying the stores oldest first makes the youngest
//! win; the returned masks, ORed together, say which bytes still have to
//! come from the caches.
//!
//! # How to call it
//! ```
//! use smpsim_uncore::overlay;
//! let mut window = [0u8; 8]; // an 8-byte load at 0x1000
//! let older = 0x1111_1111u32.to_le_bytes(); // a 4-byte store at 0x1002
//! let younger = [0xAAu8, 0xBB]; // a 2-byte store at 0x1004
//! let mut have = overlay(0x1000, &mut window, 0x1002, &older);
//! have |= overlay(0x1000, &mut window, 0x1004, &younger);
//! assert_eq!(window, [0, 0, 0x11, 0x11, 0xAA, 0xBB, 0, 0]);
//! assert_eq!(have, 0b0011_1100);
//! ```
//!
//! # Invariants
//! Addresses are taken modulo 2^64 (the arithmetic is wrapping): a window
//! ending at `u64::MAX` is an ordinary window, and one that runs past it
//! continues at address 0. Bytes outside the overlap are left as they were.
//!
//! # Errors
//! A window or a store longer than 16 bytes is a caller bug and panics.

/// Lays the bytes of a write at `[src_addr, src_addr + src.len())` over the window
/// `[dst_addr, dst_addr + dst.len())` (both at most 16 bytes); returns a mask of the
/// window bytes it covered (bit `i` set = `dst[i]` came from `src`).
pub fn overlay(dst_addr: u64, dst: &mut [u8], src_addr: u64, src: &[u8]) -> u32 {
    assert!(
        dst.len() <= 16 && src.len() <= 16,
        "overlay of a {}-byte store on a {}-byte window: at most 16 bytes each",
        src.len(),
        dst.len()
    );
    let (n, m) = (dst.len() as u64, src.len() as u64);
    // Where the store starts inside the window, or the window inside the
    // store; at most one of the two is small (both are 0 when the starts
    // coincide), so the overlap is one run of bytes.
    let ahead = src_addr.wrapping_sub(dst_addr);
    let behind = dst_addr.wrapping_sub(src_addr);
    let (at, from, len) = if ahead < n {
        (ahead, 0, (n - ahead).min(m))
    } else if behind < m {
        (0, behind, (m - behind).min(n))
    } else {
        return 0;
    };
    // All three are below 16 here, so the casts are exact.
    let (at, from, len) = (at as usize, from as usize, len as usize);
    dst[at..at + len].copy_from_slice(&src[from..from + len]);
    ((1u32 << len) - 1) << at
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rng::SplitMix64;

    /// The definition, byte by byte: window byte i is at `dst_addr + i`.
    fn reference(dst_addr: u64, dst: &mut [u8], src_addr: u64, src: &[u8]) -> u32 {
        let mut mask = 0;
        for (j, &b) in src.iter().enumerate() {
            let i = src_addr.wrapping_add(j as u64).wrapping_sub(dst_addr);
            if let Some(d) = usize::try_from(i).ok().and_then(|i| dst.get_mut(i)) {
                *d = b;
                mask |= 1 << i;
            }
        }
        mask
    }

    #[test]
    fn store_inside_the_window_covers_its_bytes_only() {
        let mut w = [9u8; 8];
        assert_eq!(overlay(100, &mut w, 102, &[1, 2, 3]), 0b0001_1100);
        assert_eq!(w, [9, 9, 1, 2, 3, 9, 9, 9]);
    }

    #[test]
    fn store_straddling_either_end_covers_the_overlap() {
        let mut w = [0u8; 4];
        assert_eq!(overlay(100, &mut w, 98, &[1, 2, 3, 4]), 0b0011);
        assert_eq!(w, [3, 4, 0, 0]);
        assert_eq!(overlay(100, &mut w, 103, &[7, 8]), 0b1000);
        assert_eq!(w, [3, 4, 0, 7]);
    }

    #[test]
    fn store_wider_than_the_window_covers_all_of_it() {
        let mut w = [0u8; 2];
        let src: Vec<u8> = (0..16).collect();
        assert_eq!(overlay(0x1005, &mut w, 0x1000, &src), 0b11);
        assert_eq!(w, [5, 6]);
    }

    #[test]
    fn disjoint_or_adjacent_store_covers_nothing() {
        let mut w = [0u8; 8];
        assert_eq!(overlay(100, &mut w, 108, &[1; 8]), 0);
        assert_eq!(overlay(100, &mut w, 92, &[1; 8]), 0);
        assert_eq!(overlay(100, &mut w, 100, &[]), 0);
        assert_eq!(overlay(100, &mut [], 100, &[1]), 0);
        assert_eq!(w, [0; 8]);
    }

    #[test]
    fn younger_overlay_wins_and_masks_accumulate() {
        let mut w = [0u8; 16];
        let mut have = overlay(0, &mut w, 0, &[1; 16]);
        have |= overlay(0, &mut w, 4, &[2; 4]);
        assert_eq!(have, 0xFFFF);
        assert_eq!(&w[3..9], &[1, 2, 2, 2, 2, 1]);
    }

    #[test]
    fn windows_ending_at_the_top_of_the_address_space_overlap_exactly() {
        let top = u64::MAX - 7; // window [MAX-7, MAX]
        let mut w = [0u8; 8];
        assert_eq!(overlay(top, &mut w, u64::MAX - 1, &[1, 2]), 0b1100_0000);
        assert_eq!(w, [0, 0, 0, 0, 0, 0, 1, 2]);
        assert_eq!(overlay(top, &mut w, top - 4, &[5; 8]), 0b1111);
        assert_eq!(
            overlay(top, &mut w, 0, &[3; 8]),
            0,
            "address 0 is past the window"
        );
    }

    #[test]
    fn a_window_running_past_the_top_continues_at_zero() {
        let mut w = [0u8; 4]; // bytes at MAX-1, MAX, 0, 1
        assert_eq!(overlay(u64::MAX - 1, &mut w, 0, &[7, 8, 9]), 0b1100);
        assert_eq!(w, [0, 0, 7, 8]);
        assert_eq!(overlay(u64::MAX - 1, &mut w, u64::MAX - 2, &[4, 5]), 0b0001);
        assert_eq!(w, [5, 0, 7, 8]);
        assert_eq!(overlay(u64::MAX - 1, &mut w, u64::MAX, &[1, 2, 3]), 0b1110);
        assert_eq!(w, [5, 1, 2, 3]);
    }

    #[test]
    #[should_panic(expected = "at most 16 bytes")]
    fn a_window_over_16_bytes_is_a_caller_bug() {
        overlay(0, &mut [0; 17], 0, &[1]);
    }

    #[test]
    fn agrees_with_the_byte_by_byte_definition() {
        let mut rng = SplitMix64::new(0x0e41, 0);
        for _ in 0..20_000 {
            // Addresses near 0, near the top, or anywhere, and offsets close
            // enough that windows and stores overlap often.
            let base = match rng.below(3) {
                0 => rng.below(32),
                1 => u64::MAX - rng.below(32),
                _ => rng.next_u64(),
            };
            let dst_addr = base;
            let src_addr = base.wrapping_add(rng.below(40)).wrapping_sub(20);
            let n = rng.below_usize(17);
            let m = rng.below_usize(17);
            let src: Vec<u8> = (0..m).map(|_| rng.below(256) as u8).collect();
            let init: Vec<u8> = (0..n).map(|_| rng.below(256) as u8).collect();
            let (mut got, mut want) = (init.clone(), init);
            let mask = overlay(dst_addr, &mut got, src_addr, &src);
            let expected = reference(dst_addr, &mut want, src_addr, &src);
            assert_eq!(
                (mask, &got),
                (expected, &want),
                "window {dst_addr:#x}+{n}, store {src_addr:#x}+{m}"
            );
        }
    }
}
