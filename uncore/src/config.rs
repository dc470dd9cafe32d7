//! Configuration of the cache hierarchy, read with serde.
//!
//! Every struct rejects unknown keys and has exactly one `Default`; a
//! partially written TOML table fills the rest from it (`#[serde(default)]`).
//! [`HierarchyConfig::validate`] turns a parsed config into a checked one and
//! names the key, the value and what is allowed when it refuses.

use crate::memory::LINE_SIZE;
use serde::{Deserialize, Serialize};
use std::fmt;

/// Which victim a full set gives up.
#[derive(Copy, Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ReplacementKind {
    /// Least recently used.
    Lru,
    /// Static re-reference interval prediction (2-bit RRPV, insert at 2).
    Srrip,
    /// Uniformly random among candidates, from a seeded generator.
    Random,
}

/// How stores reach the level below.
#[derive(Copy, Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum WritePolicy {
    /// Write-back, write-allocate: a store miss fetches the line with
    /// ownership; dirty lines are written back when evicted or forwarded.
    /// (The only policy modelled: x86 write-back memory behaves this way.)
    WriteBackAllocate,
}

/// Coherence protocol.
#[derive(Copy, Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Protocol {
    /// MESI: a dirty owner asked for a shared copy writes back and keeps S.
    Mesi,
    /// MOESI: a dirty owner asked for a shared copy keeps the line in O and
    /// stays responsible for it; no write-back to the L3 until it leaves.
    Moesi,
}

/// Which prefetcher a private cache level runs (see
/// [`crate::cache::new_prefetcher`]).
#[derive(Copy, Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum PrefetchKind {
    /// No prefetcher: the level fetches only what demand accesses miss.
    None,
    /// Next-line: after a miss, or a hit on a line a prefetch brought, the
    /// next lines of the same 4 KiB page.
    NextLine,
    /// Stride: a constant stride between successive accesses to one 4 KiB
    /// page, detected in a small table with a confidence counter.
    Stride,
}

impl PrefetchKind {
    /// Every kind, in the order error messages list them.
    pub const ALL: [PrefetchKind; 3] = [
        PrefetchKind::None,
        PrefetchKind::NextLine,
        PrefetchKind::Stride,
    ];

    /// The spelling a config file uses.
    pub fn name(self) -> &'static str {
        match self {
            PrefetchKind::None => "none",
            PrefetchKind::NextLine => "next-line",
            PrefetchKind::Stride => "stride",
        }
    }
}

impl std::str::FromStr for PrefetchKind {
    type Err = String;
    /// Parses the config spelling (for command lines).
    fn from_str(s: &str) -> Result<Self, String> {
        PrefetchKind::ALL
            .into_iter()
            .find(|k| k.name() == s)
            .ok_or_else(|| format!("prefetcher {s:?}: expected none, next-line or stride"))
    }
}

impl fmt::Display for PrefetchKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// The prefetcher of one private cache level (`[hierarchy.l1d.prefetch]`,
/// `[hierarchy.l2.prefetch]`). Prefetches are GetS requests through the
/// hierarchy's MSHRs; nothing is declared or counted while `kind` is
/// `none`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct PrefetchConfig {
    /// Which prefetcher.
    pub kind: PrefetchKind,
    /// Lines proposed per trigger (1..=16).
    pub degree: u32,
    /// How far ahead the first proposed line is, in strides (a next-line
    /// prefetcher's stride is one line): 1..=32.
    pub distance: u32,
    /// Streams (4 KiB pages) the stride prefetcher tracks at once
    /// (1..=256; unused by next-line).
    pub table_size: u32,
}

impl Default for PrefetchConfig {
    /// Off; when turned on, 2 lines starting 1 stride ahead, 16 streams.
    fn default() -> Self {
        PrefetchConfig {
            kind: PrefetchKind::None,
            degree: 2,
            distance: 1,
            table_size: 16,
        }
    }
}

impl PrefetchConfig {
    /// Whether a prefetcher runs.
    pub fn enabled(&self) -> bool {
        self.kind != PrefetchKind::None
    }

    fn validate(&self, key: &str) -> Result<(), ConfigError> {
        let ok = |v: u32, hi: u32| (1..=hi).contains(&v);
        check(key, "degree", ok(self.degree, 16), self.degree, "1 to 16")?;
        let d = self.distance;
        check(key, "distance", ok(d, 32), d, "1 to 32")?;
        let t = self.table_size;
        check(key, "table_size", ok(t, 256), t, "1 to 256")
    }
}

/// One private cache level (L1I, L1D or L2).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct CacheConfig {
    /// Number of sets (a power of two).
    pub sets: u32,
    /// Associativity (ways per set, ≥ 1).
    pub ways: u32,
    /// Line size in bytes; must be 64 (the machine's coherence granule).
    pub line_size: u32,
    /// Load-to-use latency of a hit at this level, in cycles, counted from
    /// the access (an L2 hit costs `l2.latency`, not `l1 + l2`).
    pub latency: u64,
    /// Replacement policy.
    pub replacement: ReplacementKind,
    /// Outstanding misses this level can track (MSHRs).
    pub mshrs: u32,
    /// Write policy.
    pub write_policy: WritePolicy,
    /// Prefetcher (L1D and L2 only; the L1I's must be `none`).
    pub prefetch: PrefetchConfig,
}

impl Default for CacheConfig {
    /// A 32 KiB, 8-way, 4-cycle L1.
    fn default() -> Self {
        CacheConfig {
            sets: 64,
            ways: 8,
            line_size: 64,
            latency: 4,
            replacement: ReplacementKind::Lru,
            mshrs: 16,
            write_policy: WritePolicy::WriteBackAllocate,
            prefetch: PrefetchConfig::default(),
        }
    }
}

impl CacheConfig {
    /// Capacity in bytes.
    pub fn capacity(&self) -> u64 {
        u64::from(self.sets) * u64::from(self.ways) * u64::from(self.line_size)
    }

    fn default_l2() -> Self {
        CacheConfig {
            sets: 1024,
            ways: 8,
            latency: 14,
            mshrs: 32,
            ..CacheConfig::default()
        }
    }

    fn validate(&self, key: &str) -> Result<(), ConfigError> {
        check(
            key,
            "sets",
            self.sets.is_power_of_two(),
            self.sets,
            "a power of two",
        )?;
        check(key, "ways", self.ways >= 1, self.ways, "at least 1")?;
        let line_ok = u64::from(self.line_size) == LINE_SIZE;
        check(key, "line_size", line_ok, self.line_size, "64")?;
        check(
            key,
            "latency",
            self.latency >= 1,
            self.latency,
            "at least 1",
        )?;
        check(key, "mshrs", self.mshrs >= 1, self.mshrs, "at least 1")?;
        self.prefetch.validate(&format!("{key}.prefetch"))
    }
}

/// The shared L3: one slice per home, each with its inclusive directory.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct L3Config {
    /// Number of slices (each an engine partition); lines are interleaved
    /// over them by line address.
    pub slices: u32,
    /// Sets per slice (a power of two).
    pub sets: u32,
    /// Associativity.
    pub ways: u32,
    /// Line size in bytes; must be 64.
    pub line_size: u32,
    /// Cycles from a request's arrival at the slice to its grant leaving
    /// (tag, directory and data access).
    pub latency: u64,
    /// Replacement policy.
    pub replacement: ReplacementKind,
    /// Transactions a slice serves at once; further requests wait in order.
    pub mshrs: u32,
    /// Write policy.
    pub write_policy: WritePolicy,
}

impl Default for L3Config {
    /// 4 slices of 2 MiB, 16-way, 30 cycles.
    fn default() -> Self {
        L3Config {
            slices: 4,
            sets: 2048,
            ways: 16,
            line_size: 64,
            latency: 30,
            replacement: ReplacementKind::Lru,
            mshrs: 64,
            write_policy: WritePolicy::WriteBackAllocate,
        }
    }
}

impl L3Config {
    fn validate(&self) -> Result<(), ConfigError> {
        let key = "l3";
        check(key, "slices", self.slices >= 1, self.slices, "at least 1")?;
        check(
            key,
            "sets",
            self.sets.is_power_of_two(),
            self.sets,
            "a power of two",
        )?;
        check(key, "ways", self.ways >= 1, self.ways, "at least 1")?;
        let line_ok = u64::from(self.line_size) == LINE_SIZE;
        check(key, "line_size", line_ok, self.line_size, "64")?;
        check(
            key,
            "latency",
            self.latency >= 1,
            self.latency,
            "at least 1",
        )?;
        check(key, "mshrs", self.mshrs >= 1, self.mshrs, "at least 1")
    }
}

/// [`CacheConfig`] read with the L2's defaults for the keys a table leaves
/// out (a `[hierarchy.l2]` table with only `sets` keeps the L2's latency
/// and MSHRs, not the L1's). The field list must match [`CacheConfig`]'s;
/// serde's remote derive checks that at compile time.
#[derive(Serialize, Deserialize)]
#[serde(
    remote = "CacheConfig",
    deny_unknown_fields,
    default = "CacheConfig::default_l2"
)]
struct L2Defaults {
    sets: u32,
    ways: u32,
    line_size: u32,
    latency: u64,
    replacement: ReplacementKind,
    mshrs: u32,
    write_policy: WritePolicy,
    prefetch: PrefetchConfig,
}

/// The whole cache hierarchy: private levels per core, the shared L3, the
/// protocol, the store buffer and the ownership checker.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct HierarchyConfig {
    /// Coherence protocol.
    pub protocol: Protocol,
    /// Private level-1 instruction cache.
    pub l1i: CacheConfig,
    /// Private level-1 data cache.
    pub l1d: CacheConfig,
    /// Private level-2 cache (unified, inclusive of both L1s); it holds the
    /// core's coherence state. Keys a config leaves out take the L2's
    /// defaults, not the L1's.
    #[serde(with = "L2Defaults")]
    pub l2: CacheConfig,
    /// Shared L3 slices with the directory.
    pub l3: L3Config,
    /// Entries of each core's x86-TSO store buffer.
    pub store_buffer: u32,
    /// Entries of each hardware context's ITLB (direct-mapped; a power of
    /// two).
    pub itlb_entries: u32,
    /// Entries of each hardware context's DTLB (direct-mapped; a power of
    /// two).
    pub dtlb_entries: u32,
    /// Check the single-writer invariant in a machine-wide shadow owner
    /// table at every grant and access (slower; usable in release builds).
    pub check_ownership: bool,
    /// Seed of the random replacement generators.
    pub seed: u64,
}

impl Default for HierarchyConfig {
    fn default() -> Self {
        HierarchyConfig {
            protocol: Protocol::Mesi,
            l1i: CacheConfig::default(),
            l1d: CacheConfig::default(),
            l2: CacheConfig::default_l2(),
            l3: L3Config::default(),
            store_buffer: 32,
            itlb_entries: 64,
            dtlb_entries: 64,
            check_ownership: false,
            seed: 1,
        }
    }
}

impl HierarchyConfig {
    /// Checks every value; the error names the key.
    pub fn validate(&self) -> Result<(), ConfigError> {
        self.l1i.validate("l1i")?;
        // Instruction prefetching belongs with the front end's branch
        // prediction (fetch-directed), which the core models own.
        let kind = self.l1i.prefetch.kind;
        let off = kind == PrefetchKind::None;
        check(
            "l1i.prefetch",
            "kind",
            off,
            kind,
            "\"none\" (the L1I has no prefetcher)",
        )?;
        self.l1d.validate("l1d")?;
        self.l2.validate("l2")?;
        self.l3.validate()?;
        check(
            "hierarchy",
            "store_buffer",
            self.store_buffer >= 1,
            self.store_buffer,
            "at least 1",
        )?;
        for (key, n) in [
            ("itlb_entries", self.itlb_entries),
            ("dtlb_entries", self.dtlb_entries),
        ] {
            check(
                "hierarchy",
                key,
                n.is_power_of_two() && n <= 65536,
                n,
                "a power of two from 1 to 65536",
            )?;
        }
        Ok(())
    }
}

/// A configuration value out of its allowed range.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("cache config: `{table}.{key}` = {value} is not allowed; expected {allowed}")]
pub struct ConfigError {
    /// The table (`l1d`, `l3`, …).
    pub table: String,
    /// The key inside it.
    pub key: String,
    /// The refused value, as written.
    pub value: String,
    /// What is allowed.
    pub allowed: String,
}

fn check(
    table: &str,
    key: &str,
    ok: bool,
    value: impl fmt::Display,
    allowed: &str,
) -> Result<(), ConfigError> {
    if ok {
        return Ok(());
    }
    Err(ConfigError {
        table: table.to_owned(),
        key: key.to_owned(),
        value: value.to_string(),
        allowed: allowed.to_owned(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_config_is_valid() {
        HierarchyConfig::default()
            .validate()
            .expect("defaults are valid");
        assert_eq!(HierarchyConfig::default().l1d.capacity(), 32 * 1024);
    }

    #[test]
    fn bad_value_names_its_key() {
        let mut c = HierarchyConfig::default();
        c.l2.sets = 1000;
        let e = c.validate().expect_err("1000 sets");
        assert_eq!(
            e.to_string(),
            "cache config: `l2.sets` = 1000 is not allowed; expected a power of two"
        );
    }

    #[test]
    fn prefetch_keys_are_checked_and_default_off() {
        let c = HierarchyConfig::default();
        assert!(!c.l1d.prefetch.enabled() && !c.l2.prefetch.enabled());
        let c: HierarchyConfig =
            serde_json::from_str(r#"{"l2": {"prefetch": {"kind": "stride", "distance": 4}}}"#)
                .expect("parses");
        assert_eq!(c.l2.prefetch.kind, PrefetchKind::Stride);
        assert_eq!((c.l2.prefetch.degree, c.l2.prefetch.distance), (2, 4));
        let e =
            serde_json::from_str::<HierarchyConfig>(r#"{"l1d": {"prefetch": {"kind": "markov"}}}"#)
                .expect_err("unknown kind")
                .to_string();
        assert!(e.contains("`none`, `next-line`, `stride`"), "{e}");
        let mut c = HierarchyConfig::default();
        c.l1d.prefetch.degree = 0;
        assert_eq!(
            c.validate().expect_err("degree 0").to_string(),
            "cache config: `l1d.prefetch.degree` = 0 is not allowed; expected 1 to 16"
        );
        let mut c = HierarchyConfig::default();
        c.l1i.prefetch.kind = PrefetchKind::NextLine;
        let e = c.validate().expect_err("L1I prefetcher").to_string();
        assert!(e.contains("`l1i.prefetch.kind` = next-line"), "{e}");
        for k in PrefetchKind::ALL {
            assert_eq!(k.name().parse(), Ok(k));
        }
        assert!("markov".parse::<PrefetchKind>().is_err());
    }

    #[test]
    fn unknown_keys_are_refused_and_partial_tables_filled() {
        let c: HierarchyConfig =
            serde_json::from_str(r#"{"l1d": {"ways": 4}, "protocol": "moesi"}"#)
                .expect("partial config parses");
        assert_eq!(c.l1d.ways, 4);
        assert_eq!(c.l1d.sets, 64);
        assert_eq!(c.protocol, Protocol::Moesi);
        let e = serde_json::from_str::<HierarchyConfig>(r#"{"l1d": {"wayz": 4}}"#);
        assert!(e.expect_err("unknown key").to_string().contains("wayz"));
    }
}

#[cfg(test)]
mod l2_default_tests {
    use super::*;

    #[test]
    fn a_partial_l2_table_keeps_the_l2_defaults() {
        let h: HierarchyConfig =
            serde_json::from_str(r#"{"l2": {"sets": 2048, "ways": 10}}"#).expect("parses");
        let l2 = CacheConfig::default_l2();
        assert_eq!((h.l2.sets, h.l2.ways), (2048, 10));
        assert_eq!((h.l2.latency, h.l2.mshrs), (l2.latency, l2.mshrs));
        let h: HierarchyConfig = serde_json::from_str(r#"{"l1d": {"sets": 128}}"#).expect("parses");
        assert_eq!(h.l2, l2, "an absent table is the L2 default too");
        assert_eq!(h.l1d.latency, CacheConfig::default().latency);
        let e = serde_json::from_str::<HierarchyConfig>(r#"{"l2": {"setz": 1}}"#).unwrap_err();
        assert!(e.to_string().contains("setz"), "{e}");
    }
}
