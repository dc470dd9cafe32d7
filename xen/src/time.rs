//! Guest time: `vcpu_time_info` scale factors (§2.1 of xen-abi.md).
//!
//! smpsim's TSC counts simulated cycles at the configured core frequency;
//! the hypervisor publishes one `vcpu_time_info` per VCPU with
//! `tsc_timestamp = 0`, `system_time = 0` and the scale of that frequency,
//! flagged TSC-stable, which stays valid for the whole run.
use serde::{Deserialize, Serialize};

/// The 32.32 multiplier and shift converting TSC deltas to nanoseconds.
#[derive(Copy, Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct TimeScale {
    /// `tsc_to_system_mul`.
    pub mul: u32,
    /// `tsc_shift`.
    pub shift: i8,
}

impl TimeScale {
    /// The scale for a TSC ticking at `hz`, derived as Xen's
    /// `set_time_scale` does.
    pub fn from_hz(hz: u64) -> TimeScale {
        assert!(hz > 0, "a TSC frequency of 0 Hz has no time scale");
        let mut f = hz;
        let mut shift: i8 = 0;
        while f > 2_000_000_000 {
            f >>= 1;
            shift -= 1;
        }
        while f <= 1_000_000_000 {
            f <<= 1;
            shift += 1;
        }
        let mul = ((1_000_000_000u128 << 32) / u128::from(f)) as u32;
        TimeScale { mul, shift }
    }

    /// Nanoseconds for `delta` TSC ticks, exactly as a guest computes them.
    pub fn ticks_to_ns(&self, delta: u64) -> u64 {
        let d = if self.shift >= 0 {
            delta << self.shift
        } else {
            delta >> -self.shift
        };
        ((u128::from(d) * u128::from(self.mul)) >> 32) as u64
    }

    /// Exact nanoseconds for `ticks` (no 64-bit wrap of the shifted delta).
    fn ticks_to_ns_wide(&self, ticks: u64) -> u128 {
        let d = u128::from(ticks);
        let d = if self.shift >= 0 {
            d << self.shift
        } else {
            d >> -self.shift
        };
        (d * u128::from(self.mul)) >> 32
    }

    /// The first tick count at which [`Self::ticks_to_ns`] reaches `ns`
    /// (its inverse, rounded up); `u64::MAX` when no tick count does.
    pub fn ns_to_ticks(&self, ns: u64) -> u64 {
        let target = u128::from(ns);
        let mut t = (target << 32) / u128::from(self.mul);
        t = if self.shift >= 0 {
            t >> self.shift
        } else {
            t << -self.shift
        };
        let Ok(mut t) = u64::try_from(t) else {
            return u64::MAX;
        };
        // The estimate is within a few ticks; step to the exact first one.
        while self.ticks_to_ns_wide(t) < target {
            if t == u64::MAX {
                return u64::MAX;
            }
            t += 1;
        }
        while t > 0 && self.ticks_to_ns_wide(t - 1) >= target {
            t -= 1;
        }
        t
    }

    /// The 32-byte `vcpu_time_info` record.
    pub fn encode(&self, version: u32, tsc_timestamp: u64, system_time: u64) -> [u8; 32] {
        let mut b = [0u8; 32];
        b[0..4].copy_from_slice(&version.to_le_bytes());
        b[8..16].copy_from_slice(&tsc_timestamp.to_le_bytes());
        b[16..24].copy_from_slice(&system_time.to_le_bytes());
        b[24..28].copy_from_slice(&self.mul.to_le_bytes());
        b[28] = self.shift.to_le_bytes()[0];
        b[29] = 1; // XEN_PVCLOCK_TSC_STABLE_BIT
        b
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scales_match_xen_examples() {
        assert_eq!(
            TimeScale::from_hz(1_000_000_000),
            TimeScale {
                mul: 0x8000_0000,
                shift: 1
            }
        );
        assert_eq!(
            TimeScale::from_hz(2_000_000_000),
            TimeScale {
                mul: 0x8000_0000,
                shift: 0
            }
        );
        assert_eq!(
            TimeScale::from_hz(3_000_000_000),
            TimeScale {
                mul: 0xAAAA_AAAA,
                shift: -1
            }
        );
    }

    #[test]
    fn ticks_convert_to_nanoseconds() {
        let s = TimeScale::from_hz(2_000_000_000);
        assert_eq!(s.ticks_to_ns(2_000_000_000), 1_000_000_000);
        let s = TimeScale::from_hz(3_000_000_000);
        assert_eq!(
            s.ticks_to_ns(3_000),
            999,
            "truncated as the guest truncates"
        );
    }

    #[test]
    fn nanoseconds_convert_back_to_the_first_tick() {
        for hz in [1_000_000_000, 2_000_000_000, 3_000_000_000, 2_400_000_000] {
            let s = TimeScale::from_hz(hz);
            for ns in [0, 1, 999, 1_000_000, 10_000_000, 123_456_789_012] {
                let t = s.ns_to_ticks(ns);
                assert!(s.ticks_to_ns(t) >= ns, "{hz} Hz, {ns} ns");
                assert!(t == 0 || s.ticks_to_ns(t - 1) < ns, "{hz} Hz, {ns} ns");
            }
        }
        // mul 0xAAAAAAAA is just under 2/3 · 2^32: the guest's truncating
        // product reaches 10 ms two ticks late.
        assert_eq!(
            TimeScale::from_hz(3_000_000_000).ns_to_ticks(10_000_000),
            30_000_002
        );
        assert_eq!(
            TimeScale::from_hz(2_000_000_000).ns_to_ticks(10_000_000),
            20_000_000
        );
    }

    #[test]
    fn record_layout() {
        let b = TimeScale::from_hz(3_000_000_000).encode(2, 5, 7);
        assert_eq!(b[0], 2);
        assert_eq!(b[8], 5);
        assert_eq!(b[16], 7);
        assert_eq!(&b[24..28], &0xAAAA_AAAAu32.to_le_bytes());
        assert_eq!(b[28] as i8, -1);
        assert_eq!(b[29], 1);
    }
}
