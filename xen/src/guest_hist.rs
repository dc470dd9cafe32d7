//! Latency histograms the guests measure themselves (smpsim-specific).
//!
//! Guests time operations with `rdtsc` (simulated TSC cycles) and hand the
//! samples over in batches through the smpsim-only hypercall
//! [`crate::abi::hypercall::SMPSIM_OP`] / `RECORD_SAMPLES`; the hypervisor
//! keeps one exact histogram per id of [`guest_hist`]. A histogram only
//! counts values, so the result does not depend on the order in which
//! VCPUs flush their batches. Resolution: 3 significant figures (values
//! below 2048 are kept exactly, larger ones within 0.1%), as the machine's
//! other latency histograms.

use hdrhistogram::Histogram;
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use smpsim_engine::{histogram_buckets, record_buckets};

use crate::abi::smpsimop::guest_hist;

/// Largest value kept exactly; larger samples are clamped to it.
pub const MAX_TRACKED: u64 = 1 << 40;

/// One histogram per guest-measured latency, indexed by id.
#[derive(Clone, Debug, PartialEq)]
pub struct GuestHistograms {
    hists: Vec<Histogram<u64>>,
}

// `Histogram`'s equality compares recorded counts: an equivalence.
impl Eq for GuestHistograms {}

impl Default for GuestHistograms {
    fn default() -> Self {
        let hists = guest_hist::NAMES
            .iter()
            .map(|_| Histogram::new_with_bounds(1, MAX_TRACKED, 3).expect("valid bounds"))
            .collect();
        GuestHistograms { hists }
    }
}

/// Serialized as each histogram's recorded (value, count) buckets in id
/// order, as the engine's `Stats` are (hdrhistogram has no serde).
impl Serialize for GuestHistograms {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let buckets: Vec<Vec<(u64, u64)>> = self.hists.iter().map(histogram_buckets).collect();
        buckets.serialize(s)
    }
}

impl<'de> Deserialize<'de> for GuestHistograms {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let buckets = Vec::<Vec<(u64, u64)>>::deserialize(d)?;
        let mut g = GuestHistograms::default();
        if buckets.len() != g.hists.len() {
            return Err(serde::de::Error::custom(format!(
                "guest histograms: {} recorded, {} declared",
                buckets.len(),
                g.hists.len()
            )));
        }
        for (h, b) in g.hists.iter_mut().zip(&buckets) {
            record_buckets(h, b);
        }
        Ok(g)
    }
}

impl GuestHistograms {
    /// Whether `id` names a histogram.
    pub fn valid(&self, id: u32) -> bool {
        (id as usize) < self.hists.len()
    }

    /// Adds `samples` to histogram `id` (values above [`MAX_TRACKED`] are
    /// clamped). Returns false, recording nothing, for an unknown id.
    pub fn record(&mut self, id: u32, samples: &[u64]) -> bool {
        let Some(h) = self.hists.get_mut(id as usize) else {
            return false;
        };
        for &s in samples {
            h.saturating_record(s);
        }
        true
    }

    /// `(name, histogram)` in id order.
    pub fn iter(&self) -> impl Iterator<Item = (&'static str, &Histogram<u64>)> {
        guest_hist::NAMES.iter().copied().zip(self.hists.iter())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn records_by_id_in_name_order() {
        let mut g = GuestHistograms::default();
        assert!(g.record(guest_hist::LOCK_WAIT, &[10, 20, 30]));
        assert!(g.record(guest_hist::LOCK_WAIT, &[0]));
        assert!(!g.record(3, &[5]));
        assert!(!g.valid(3) && g.valid(2));
        let v: Vec<_> = g.iter().map(|(n, h)| (n, h.len())).collect();
        assert_eq!(
            v,
            vec![("evtchn_rtt", 0), ("lock_wait", 4), ("barrier_wait", 0)]
        );
        let h = g.iter().nth(1).expect("lock_wait").1;
        assert_eq!((h.min(), h.max()), (0, 30));
    }

    #[test]
    fn order_of_batches_does_not_matter_and_huge_values_clamp() {
        let mut a = GuestHistograms::default();
        let mut b = GuestHistograms::default();
        a.record(0, &[1, 2]);
        a.record(0, &[u64::MAX]);
        b.record(0, &[u64::MAX]);
        b.record(0, &[2, 1]);
        assert_eq!(a, b);
        let h = a.iter().next().expect("evtchn_rtt").1;
        assert!(h.max() >= MAX_TRACKED && h.max() < MAX_TRACKED + MAX_TRACKED / 1000);
    }
}
