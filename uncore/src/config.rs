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
        check(key, "mshrs", self.mshrs >= 1, self.mshrs, "at least 1")
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
    /// core's coherence state.
    pub l2: CacheConfig,
    /// Shared L3 slices with the directory.
    pub l3: L3Config,
    /// Entries of each core's x86-TSO store buffer.
    pub store_buffer: u32,
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
            check_ownership: false,
            seed: 1,
        }
    }
}

impl HierarchyConfig {
    /// Checks every value; the error names the key.
    pub fn validate(&self) -> Result<(), ConfigError> {
        self.l1i.validate("l1i")?;
        self.l1d.validate("l1d")?;
        self.l2.validate("l2")?;
        self.l3.validate()?;
        check(
            "hierarchy",
            "store_buffer",
            self.store_buffer >= 1,
            self.store_buffer,
            "at least 1",
        )
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
