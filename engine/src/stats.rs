//! Statistics: named counters and latency histograms owned by partitions.
//!
//! A partition declares its statistics once, at build, through a
//! [`StatsBuilder`]; the result is a frozen [`Stats`] whose hot-path updates
//! are plain `u64` additions and histogram records through index handles
//! ([`CounterId`], [`HistId`]): no atomics, no locks, no string lookups.
//!
//! [`StatsReport`] collects every partition's statistics in partition order
//! and merges them per group (all cores, all L3 slices, …). Every merge is a
//! sum or a histogram union, so the result does not depend on the order of
//! host threads; the report is a pure function of the partitions' states.
//!
//! # Memory
//! A histogram keeps hdrhistogram's bucket counts (1 to `max`, 3
//! significant digits) but allocates them in small chunks on first touch
//! (`SparseHist`): a full-range `Histogram<u64>` is 90–200 KB of counts,
//! and every core declares a dozen of them, most never or narrowly
//! recorded (1 MB per simulated core before). An `hdrhistogram::Histogram`
//! with the very same bucket counts is built only when one is read
//! ([`Stats::histogram`], reports, serialization), so every percentile,
//! extreme and mean is what it was.

use hdrhistogram::Histogram;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::sync::Arc;

/// Handle of a counter in the [`Stats`] that declared it.
#[derive(Copy, Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct CounterId(u32);

/// Handle of a histogram in the [`Stats`] that declared it.
#[derive(Copy, Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct HistId(u32);

/// What a statistic is: its name, a one-line description and its unit.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq)]
pub struct StatDesc {
    /// Dotted name, unique within its partition (for example `l1d.hits`).
    pub name: String,
    /// One line saying what is counted.
    pub description: String,
    /// Unit of the value (`events`, `cycles`, `bytes`, …).
    pub unit: String,
}

#[derive(Debug, Default, Serialize, Deserialize)]
struct Schema {
    counters: Vec<StatDesc>,
    hists: Vec<(StatDesc, u64)>,
}

/// Declares the statistics of one partition; frozen by [`StatsBuilder::build`].
#[derive(Debug, Default)]
pub struct StatsBuilder {
    schema: Schema,
}

fn desc(name: &str, description: &str, unit: &str) -> StatDesc {
    StatDesc {
        name: name.to_owned(),
        description: description.to_owned(),
        unit: unit.to_owned(),
    }
}

impl StatsBuilder {
    /// A builder with nothing declared.
    pub fn new() -> Self {
        Self::default()
    }

    fn assert_new(&self, name: &str) {
        let taken = self.schema.counters.iter().any(|d| d.name == name)
            || self.schema.hists.iter().any(|(d, _)| d.name == name);
        assert!(!taken, "statistic {name:?} declared twice");
    }

    /// Declares a counter.
    pub fn counter(&mut self, name: &str, description: &str, unit: &str) -> CounterId {
        self.assert_new(name);
        self.schema.counters.push(desc(name, description, unit));
        CounterId(u32::try_from(self.schema.counters.len() - 1).expect("too many counters"))
    }

    /// Declares a histogram of values in `1..=max` (larger values are
    /// recorded as `max`), kept to 3 significant digits.
    pub fn histogram(&mut self, name: &str, description: &str, unit: &str, max: u64) -> HistId {
        self.assert_new(name);
        self.schema
            .hists
            .push((desc(name, description, unit), max.max(2)));
        HistId(u32::try_from(self.schema.hists.len() - 1).expect("too many histograms"))
    }

    /// Freezes the declarations into zeroed statistics.
    pub fn build(self) -> Stats {
        let hists = self
            .schema
            .hists
            .iter()
            .map(|(_, max)| SparseHist::new(*max))
            .collect();
        Stats {
            counters: vec![0; self.schema.counters.len()],
            hists,
            schema: Arc::new(self.schema),
        }
    }
}

/// Declares a partition's statistics once, as a typed table: a struct of
/// handles whose fields are the statistics, and a `declare` function that
/// registers them, in the order written, with their names, one-line
/// descriptions and units; `struct Name(param: Type, ..)` gives `declare`
/// parameters that the declarations may use. The struct is serializable (it is part of a
/// partition's state); the crate using the macro depends on `serde`.
///
/// ```
/// smpsim_engine::stat_table! {
///     /// What a toy cache counts.
///     pub struct ToyStats {
///         /// Hits.
///         hits: counter("toy.hits", "loads that hit", "events"),
///         /// Miss latency.
///         miss_latency: histogram("toy.miss_latency", "cycles a miss took", "cycles", 1 << 20),
///     }
/// }
/// let mut b = smpsim_engine::StatsBuilder::new();
/// let ids = ToyStats::declare(&mut b);
/// let mut stats = b.build();
/// stats.inc(ids.hits);
/// stats.record(ids.miss_latency, 40);
/// assert_eq!(stats.counter_by_name("toy.hits"), Some(1));
/// ```
#[macro_export]
macro_rules! stat_table {
    (
        $(#[$meta:meta])*
        $vis:vis struct $name:ident $(( $($p:ident : $pt:ty),* $(,)? ))? {
            $(
                $(#[$fmeta:meta])*
                $field:ident : $kind:ident ( $($arg:expr),* $(,)? )
            ),* $(,)?
        }
    ) => {
        $(#[$meta])*
        #[derive(Copy, Clone, Debug, serde::Serialize, serde::Deserialize)]
        $vis struct $name {
            $(
                $(#[$fmeta])*
                pub $field: $crate::stat_table!(@type $kind),
            )*
        }

        impl $name {
            /// Registers every statistic of the table with `b`, in order
            /// (the parameters, if the table has any, are values its
            /// declarations use).
            pub fn declare(b: &mut $crate::StatsBuilder $($(, $p: $pt)*)?) -> Self {
                $name {
                    $( $field: b.$kind($($arg),*), )*
                }
            }
        }
    };
    (@type counter) => { $crate::CounterId };
    (@type histogram) => { $crate::HistId };
}

fn new_hist(max: u64) -> Histogram<u64> {
    Histogram::new_with_bounds(1, max, 3).expect("histogram bounds are valid (1 < max)")
}

/// hdrhistogram's layout for `low = 1` and 3 significant digits (the only
/// one [`new_hist`] makes): 2048 sub-buckets of unit width in bucket 0,
/// then 1024 per doubling.
const SUB_HALF_MAGNITUDE: u32 = 10;
/// `sub_bucket_count - 1`.
const SUB_MASK: u64 = (2 << SUB_HALF_MAGNITUDE) - 1;
/// `64 - unit_magnitude - sub_bucket_count_magnitude`.
const LEADING_ZERO_BASE: u32 = 64 - (SUB_HALF_MAGNITUDE + 1);
/// Counts per lazily allocated chunk (512 bytes).
const CHUNK: usize = 64;

/// hdrhistogram's counts index of `value` (`index_for`, for the layout above).
#[inline]
fn hdr_index(value: u64) -> usize {
    let bucket = LEADING_ZERO_BASE - (value | SUB_MASK).leading_zeros();
    // `value >> bucket` < 2048 by the choice of bucket.
    let sub = (value >> bucket) as usize;
    ((bucket as usize + 1) << SUB_HALF_MAGNITUDE) + sub - (1 << SUB_HALF_MAGNITUDE)
}

/// The lowest value of counts index `index` (hdrhistogram's `value_for`).
fn hdr_value(index: usize) -> u64 {
    let half = 1usize << SUB_HALF_MAGNITUDE;
    match (index >> SUB_HALF_MAGNITUDE).checked_sub(1) {
        None => index as u64,
        Some(bucket) => (((index & (half - 1)) + half) as u64) << bucket,
    }
}

/// A histogram's bucket counts, allocated a chunk at a time as values
/// land in them: the same counts an `hdrhistogram::Histogram::new_with_bounds(1, max, 3)`
/// would hold after the same records (see the module's Memory section).
#[derive(Clone, Debug, PartialEq, Eq)]
struct SparseHist {
    /// Largest value kept (larger ones are recorded as this).
    high: u64,
    /// Counts by hdrhistogram index, `CHUNK` per allocated chunk.
    chunks: Vec<Option<Box<[u64; CHUNK]>>>,
}

impl SparseHist {
    /// An empty histogram of values in `1..=high` (`high` >= 2).
    fn new(high: u64) -> Self {
        SparseHist {
            high,
            chunks: Vec::new(),
        }
    }

    /// Adds `count` to the bucket of `value` (clamped into range),
    /// saturating as `saturating_record_n` does. A zero count records
    /// nothing (hdrhistogram would still move its extremes).
    #[inline]
    fn record_n(&mut self, value: u64, count: u64) {
        if count == 0 {
            return;
        }
        let i = hdr_index(value.clamp(1, self.high));
        let (c, j) = (i / CHUNK, i % CHUNK);
        if c >= self.chunks.len() {
            self.chunks.resize(c + 1, None);
        }
        let chunk = self.chunks[c].get_or_insert_with(|| Box::new([0; CHUNK]));
        chunk[j] = chunk[j].saturating_add(count);
    }

    /// The equivalent hdrhistogram (recording each bucket's lowest value
    /// its count of times gives the same counts, extremes and total).
    fn to_histogram(&self) -> Histogram<u64> {
        let mut h = new_hist(self.high);
        for (c, chunk) in self.chunks.iter().enumerate() {
            let Some(chunk) = chunk else { continue };
            for (j, &n) in chunk.iter().enumerate() {
                if n != 0 {
                    h.saturating_record_n(hdr_value(c * CHUNK + j), n);
                }
            }
        }
        h
    }

    fn reset(&mut self) {
        self.chunks.clear();
    }

    /// Whether nothing was recorded.
    fn is_empty(&self) -> bool {
        self.chunks
            .iter()
            .flatten()
            .all(|c| c.iter().all(|&n| n == 0))
    }
}

/// Every non-empty bucket of `h` as (highest equivalent value, count), in
/// value order: how a histogram is reported and serialized (hdrhistogram
/// has no serde of its own).
pub fn histogram_buckets(h: &Histogram<u64>) -> Vec<(u64, u64)> {
    h.iter_recorded()
        .map(|v| (v.value_iterated_to(), v.count_at_value()))
        .collect()
}

/// Records `buckets` (as [`histogram_buckets`] gives them) into `h`,
/// clamping values into its range; into an empty histogram of the same
/// bounds this gives back the same bucket counts.
pub fn record_buckets(h: &mut Histogram<u64>, buckets: &[(u64, u64)]) {
    for &(v, n) in buckets {
        h.saturating_record_n(v.clamp(1, h.high()), n);
    }
}

/// The statistics of one partition: counters and histograms by handle.
#[derive(Debug, Clone)]
pub struct Stats {
    schema: Arc<Schema>,
    counters: Vec<u64>,
    hists: Vec<SparseHist>,
}

/// The serialized form of [`Stats`]: the schema, every counter, and every
/// histogram as its recorded (value, count) buckets. A round trip gives
/// the same counters and the same bucket counts.
#[derive(Serialize, Deserialize)]
struct StatsState {
    schema: Schema,
    counters: Vec<u64>,
    hists: Vec<Vec<(u64, u64)>>,
}

impl Serialize for Stats {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let state = StatsState {
            schema: Schema {
                counters: self.schema.counters.clone(),
                hists: self.schema.hists.clone(),
            },
            counters: self.counters.clone(),
            hists: self
                .hists
                .iter()
                .map(|h| histogram_buckets(&h.to_histogram()))
                .collect(),
        };
        state.serialize(s)
    }
}

impl<'de> Deserialize<'de> for Stats {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let st = StatsState::deserialize(d)?;
        if st.counters.len() != st.schema.counters.len() || st.hists.len() != st.schema.hists.len()
        {
            return Err(serde::de::Error::custom(
                "statistics: values do not match their declarations",
            ));
        }
        let mut hists: Vec<SparseHist> = st
            .schema
            .hists
            .iter()
            .map(|(_, max)| SparseHist::new(*max))
            .collect();
        for (h, buckets) in hists.iter_mut().zip(&st.hists) {
            for &(v, n) in buckets {
                h.record_n(v, n);
            }
        }
        Ok(Stats {
            schema: Arc::new(st.schema),
            counters: st.counters,
            hists,
        })
    }
}

impl Default for Stats {
    fn default() -> Self {
        StatsBuilder::new().build()
    }
}

impl Stats {
    /// Adds one to a counter.
    #[inline]
    pub fn inc(&mut self, id: CounterId) {
        self.counters[id.0 as usize] += 1;
    }

    /// Adds `n` to a counter.
    #[inline]
    pub fn add(&mut self, id: CounterId, n: u64) {
        self.counters[id.0 as usize] += n;
    }

    /// Records one value in a histogram (0 counts as 1, values past the
    /// declared maximum as the maximum).
    #[inline]
    pub fn record(&mut self, id: HistId, value: u64) {
        self.hists[id.0 as usize].record_n(value, 1);
    }

    /// Records `value` `count` times (as [`Stats::record`]).
    #[inline]
    pub fn record_n(&mut self, id: HistId, value: u64, count: u64) {
        self.hists[id.0 as usize].record_n(value, count);
    }

    /// A counter's value.
    pub fn get(&self, id: CounterId) -> u64 {
        self.counters[id.0 as usize]
    }

    /// A counter's value by name, if declared.
    pub fn counter_by_name(&self, name: &str) -> Option<u64> {
        let i = self.schema.counters.iter().position(|d| d.name == name)?;
        Some(self.counters[i])
    }

    /// A histogram by handle (built from the stored counts: for reading,
    /// not for hot paths).
    pub fn histogram(&self, id: HistId) -> Histogram<u64> {
        self.hists[id.0 as usize].to_histogram()
    }

    /// A histogram by name, if declared (built as [`Stats::histogram`]).
    pub fn histogram_by_name(&self, name: &str) -> Option<Histogram<u64>> {
        let i = self.schema.hists.iter().position(|(d, _)| d.name == name)?;
        Some(self.hists[i].to_histogram())
    }

    /// Clears every value (declarations stay): used when a measured region
    /// begins after warm-up.
    pub fn reset(&mut self) {
        self.counters.iter_mut().for_each(|c| *c = 0);
        self.hists.iter_mut().for_each(SparseHist::reset);
    }

    /// Descriptions of the counters, in declaration order.
    pub fn counter_descs(&self) -> impl Iterator<Item = &StatDesc> {
        self.schema.counters.iter()
    }

    /// Descriptions of the histograms, in declaration order.
    pub fn histogram_descs(&self) -> impl Iterator<Item = &StatDesc> {
        self.schema.hists.iter().map(|(d, _)| d)
    }
}

/// A histogram summarized for reports: count, extremes, percentiles, and
/// the recorded buckets (value, count) so it can be plotted.
#[derive(Clone, Debug, Serialize, PartialEq)]
pub struct HistogramReport {
    /// Unit of the recorded values.
    pub unit: String,
    /// Number of recorded values.
    pub count: u64,
    /// Smallest recorded value (0 when empty).
    pub min: u64,
    /// Largest recorded value (0 when empty).
    pub max: u64,
    /// Mean of the recorded values.
    pub mean: f64,
    /// Median.
    pub p50: u64,
    /// 90th percentile.
    pub p90: u64,
    /// 99th percentile.
    pub p99: u64,
    /// 99.9th percentile.
    pub p999: u64,
    /// Every non-empty bucket as (highest equivalent value, count).
    pub buckets: Vec<(u64, u64)>,
}

impl HistogramReport {
    /// The summary of an empty histogram (as [`Self::from_histogram`]
    /// gives it).
    pub fn empty(unit: &str) -> Self {
        HistogramReport {
            unit: unit.to_owned(),
            count: 0,
            min: 0,
            max: 0,
            mean: 0.0,
            p50: 0,
            p90: 0,
            p99: 0,
            p999: 0,
            buckets: Vec::new(),
        }
    }

    /// Summarizes a histogram.
    pub fn from_histogram(h: &Histogram<u64>, unit: &str) -> Self {
        let empty = h.is_empty();
        let q = |p: f64| if empty { 0 } else { h.value_at_quantile(p) };
        HistogramReport {
            unit: unit.to_owned(),
            count: h.len(),
            min: if empty { 0 } else { h.min() },
            max: if empty { 0 } else { h.max() },
            mean: if empty { 0.0 } else { h.mean() },
            p50: q(0.5),
            p90: q(0.9),
            p99: q(0.99),
            p999: q(0.999),
            buckets: histogram_buckets(h),
        }
    }
}

/// One partition's statistics, or one group's merged statistics.
#[derive(Clone, Debug, Default, Serialize, PartialEq)]
pub struct StatsSection {
    /// Counter values by name.
    pub counters: BTreeMap<String, u64>,
    /// Histogram summaries by name.
    pub histograms: BTreeMap<String, HistogramReport>,
}

/// One partition's section of a report.
#[derive(Clone, Debug, Serialize, PartialEq)]
pub struct PartitionReport {
    /// The partition's name (for example `core3`).
    pub name: String,
    /// The group it is merged into (for example `core`).
    pub group: String,
    /// Its statistics.
    #[serde(flatten)]
    pub stats: StatsSection,
}

/// The statistics of a whole machine: per partition, merged per group, and
/// the description of every statistic.
#[derive(Clone, Debug, Default, Serialize, PartialEq)]
pub struct StatsReport {
    /// Sums and histogram unions per group, groups in name order.
    pub groups: BTreeMap<String, StatsSection>,
    /// Every partition, in partition order.
    pub partitions: Vec<PartitionReport>,
    /// Description and unit of every statistic name, per group.
    pub descriptions: BTreeMap<String, BTreeMap<String, StatDesc>>,
}

impl StatsReport {
    /// Builds a report from `(name, group, stats)` in partition order;
    /// consecutive entries of one partition name form one section.
    pub fn collect<'a>(parts: impl IntoIterator<Item = (&'a str, &'a str, &'a Stats)>) -> Self {
        let mut report = StatsReport::default();
        let mut merged: BTreeMap<String, BTreeMap<String, (String, Histogram<u64>)>> =
            BTreeMap::new();
        for (name, group, stats) in parts {
            let mut section = StatsSection::default();
            let gsec = report.groups.entry(group.to_owned()).or_default();
            let descs = report.descriptions.entry(group.to_owned()).or_default();
            for (d, v) in stats.schema.counters.iter().zip(&stats.counters) {
                section.counters.insert(d.name.clone(), *v);
                *gsec.counters.entry(d.name.clone()).or_default() += v;
                descs.entry(d.name.clone()).or_insert_with(|| d.clone());
            }
            let gh = merged.entry(group.to_owned()).or_default();
            for ((d, max), h) in stats.schema.hists.iter().zip(&stats.hists) {
                let slot = gh
                    .entry(d.name.clone())
                    .or_insert_with(|| (d.unit.clone(), new_hist(*max)));
                let report = if h.is_empty() {
                    // What an empty histogram reports, without building one.
                    HistogramReport::empty(&d.unit)
                } else {
                    let h = &h.to_histogram();
                    slot.1.add(h).expect("histograms of one name share bounds");
                    HistogramReport::from_histogram(h, &d.unit)
                };
                section.histograms.insert(d.name.clone(), report);
                descs.entry(d.name.clone()).or_insert_with(|| d.clone());
            }
            match report.partitions.last_mut() {
                Some(last) if last.name == name && last.group == group => {
                    last.stats.counters.extend(section.counters);
                    last.stats.histograms.extend(section.histograms);
                }
                _ => report.partitions.push(PartitionReport {
                    name: name.to_owned(),
                    group: group.to_owned(),
                    stats: section,
                }),
            }
        }
        for (group, hists) in merged {
            let gsec = report.groups.entry(group).or_default();
            for (name, (unit, h)) in hists {
                gsec.histograms
                    .insert(name, HistogramReport::from_histogram(&h, &unit));
            }
        }
        report
    }

    /// A group's merged counter, if present.
    pub fn group_counter(&self, group: &str, name: &str) -> Option<u64> {
        self.groups.get(group)?.counters.get(name).copied()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample(hits: u64, lat: &[u64]) -> Stats {
        let mut b = StatsBuilder::new();
        let c = b.counter("hits", "lookups that hit", "events");
        let h = b.histogram("lat", "load-to-use latency", "cycles", 10_000);
        let mut s = b.build();
        s.add(c, hits);
        for &v in lat {
            s.record(h, v);
        }
        s
    }

    #[test]
    fn counters_and_histograms_record() {
        let s = sample(3, &[4, 4, 100, 0, 1_000_000]);
        assert_eq!(s.counter_by_name("hits"), Some(3));
        let h = s.histogram_by_name("lat").expect("declared");
        assert_eq!(h.len(), 5);
        assert_eq!(h.min(), 1, "0 is recorded as 1");
        assert!(h.max() >= 10_000 && h.max() < 10_100, "clamped to max");
    }

    #[test]
    fn report_merges_groups_in_any_order() {
        let a = sample(3, &[4, 8]);
        let b = sample(5, &[16]);
        let r1 = StatsReport::collect([("core0", "core", &a), ("core1", "core", &b)]);
        let r2 = StatsReport::collect([("core1", "core", &b), ("core0", "core", &a)]);
        assert_eq!(r1.groups, r2.groups);
        assert_eq!(r1.group_counter("core", "hits"), Some(8));
        let lat = &r1.groups["core"].histograms["lat"];
        assert_eq!((lat.count, lat.min, lat.max), (3, 4, 16));
        assert_eq!(r1.partitions[1].stats.counters["hits"], 5);
        assert_eq!(r1.descriptions["core"]["hits"].unit, "events");
    }

    #[test]
    #[should_panic(expected = "declared twice")]
    fn duplicate_names_are_refused() {
        let mut b = StatsBuilder::new();
        b.counter("x", "", "events");
        b.histogram("x", "", "cycles", 10);
    }

    /// Values spread over every bucket of a histogram up to `high`.
    fn spread(high: u64) -> Vec<u64> {
        let mut v: Vec<u64> = (0..5000).collect();
        let mut x = 0x9e37_79b9_7f4a_7c15u64;
        for _ in 0..20_000 {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            v.push(x >> (x % 64));
        }
        for k in 1..64 {
            let p = 1u64 << k;
            v.extend([p - 1, p, p + 1]);
        }
        v.extend([high - 1, high, high + 1, u64::MAX]);
        v
    }

    #[test]
    fn sparse_counts_match_hdrhistogram_exactly() {
        for high in [2, 10_000, 1 << 20, 1 << 32, u64::MAX / 4] {
            let mut b = StatsBuilder::new();
            let id = b.histogram("h", "", "cycles", high);
            let mut s = b.build();
            let mut direct = new_hist(high.max(2));
            for (i, v) in spread(high.max(2)).into_iter().enumerate() {
                let n = 1 + (i as u64 % 3);
                s.record_n(id, v, n);
                direct.saturating_record_n(v.clamp(1, direct.high()), n);
            }
            let h = s.histogram(id);
            assert_eq!(histogram_buckets(&h), histogram_buckets(&direct), "{high}");
            assert_eq!(
                (h.len(), h.min(), h.max()),
                (direct.len(), direct.min(), direct.max())
            );
            assert_eq!(h.mean().to_bits(), direct.mean().to_bits());
            assert_eq!(
                HistogramReport::from_histogram(&h, "cycles"),
                HistogramReport::from_histogram(&direct, "cycles")
            );
        }
    }

    #[test]
    fn hdr_index_agrees_with_hdrhistogram_equivalents() {
        let h = new_hist(u64::MAX / 4);
        for v in spread(u64::MAX / 4) {
            let v = v.clamp(1, h.high());
            assert_eq!(hdr_value(hdr_index(v)), h.lowest_equivalent(v), "{v}");
        }
    }

    #[test]
    fn empty_report_is_what_an_empty_histogram_reports() {
        assert_eq!(
            HistogramReport::empty("cycles"),
            HistogramReport::from_histogram(&new_hist(1 << 20), "cycles")
        );
    }

    #[test]
    fn unrecorded_histograms_allocate_nothing() {
        let mut s = sample(0, &[]);
        assert!(s.hists.iter().all(|h| h.chunks.is_empty()));
        s.record(HistId(0), 4);
        assert_eq!(s.hists[0].chunks.iter().flatten().count(), 1);
    }

    #[test]
    fn reset_clears_values() {
        let mut s = sample(3, &[4]);
        s.reset();
        assert_eq!(s.counter_by_name("hits"), Some(0));
        assert!(s.histogram_by_name("lat").expect("declared").is_empty());
    }
}

#[cfg(test)]
mod serde_tests {
    use super::*;

    #[test]
    fn stats_survive_a_round_trip_with_counters_and_buckets() {
        let mut b = StatsBuilder::new();
        let c = b.counter("x.hits", "hits", "events");
        let h = b.histogram("x.lat", "latency", "cycles", 1 << 20);
        let mut st = b.build();
        st.add(c, 41);
        st.inc(c);
        for v in [1, 5, 5, 300, 12_345, 1 << 21] {
            st.record(h, v);
        }
        let json = serde_json::to_string(&st).expect("serializes");
        let back: Stats = serde_json::from_str(&json).expect("deserializes");
        assert_eq!(back.get(c), 42);
        assert_eq!(back.histogram(h).len(), 6);
        assert_eq!(back.histogram(h).max(), st.histogram(h).max());
        assert_eq!(
            back.histogram(h).value_at_quantile(0.5),
            st.histogram(h).value_at_quantile(0.5)
        );
        assert_eq!(serde_json::to_string(&back).expect("again"), json);
        assert_eq!(back.counter_by_name("x.hits"), Some(42));
    }
}
