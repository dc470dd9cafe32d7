//! The machine-wide shadow owner table: a release-usable check of the
//! single-writer / multiple-reader invariant.
//!
//! Each core's hierarchy reports every permission it gains or loses and
//! checks its own permission at every access of machine memory. The table
//! checks, at each gain, that no other core holds a conflicting permission:
//! a writer (E or M) excludes every other holder, a reader excludes other
//! writers. Because permission only moves through messages, which the
//! engine delivers at barriers, a core's loss is always recorded (in host
//! time) before another core's matching gain: the check has no false
//! positives under any number of host threads.
//!
//! Violations are counted (and reported by the coherence tester); with
//! `panic_on_violation` the first one panics with its context instead.

use crate::ids::CoreId;
use crate::memory::LineAddr;
use parking_lot::Mutex;
use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};

const SHARDS: usize = 64;

#[derive(Clone, Debug, Default)]
struct Holders {
    writer: Option<CoreId>,
    readers: Vec<CoreId>,
}

/// Permission a core holds on a line.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub enum Perm {
    /// None.
    None,
    /// May read (S, O, or E/M being downgraded).
    Read,
    /// May read and write (E or M).
    Write,
}

/// The shadow owner table, shared by every core of a machine.
#[derive(Debug)]
pub struct OwnerTable {
    shards: Vec<Mutex<HashMap<LineAddr, Holders>>>,
    violations: AtomicU64,
    panic_on_violation: bool,
}

impl OwnerTable {
    /// An empty table.
    pub fn new(panic_on_violation: bool) -> Self {
        OwnerTable {
            shards: (0..SHARDS).map(|_| Mutex::new(HashMap::new())).collect(),
            violations: AtomicU64::new(0),
            panic_on_violation,
        }
    }

    /// Violations found so far.
    pub fn violations(&self) -> u64 {
        self.violations.load(Ordering::SeqCst)
    }

    fn shard(&self, line: LineAddr) -> &Mutex<HashMap<LineAddr, Holders>> {
        let h = line.get().wrapping_mul(0x9E37_79B9_7F4A_7C15) >> 58;
        &self.shards[usize::try_from(h).expect("6-bit shard index")]
    }

    fn violation(&self, what: String) {
        self.violations.fetch_add(1, Ordering::SeqCst);
        assert!(!self.panic_on_violation, "ownership rule violated: {what}");
    }

    /// `core` now holds `perm` on `line` (replacing what it held).
    pub fn set(&self, core: CoreId, line: LineAddr, perm: Perm) {
        let mut shard = self.shard(line).lock();
        let h = shard.entry(line).or_default();
        if h.writer == Some(core) {
            h.writer = None;
        }
        h.readers.retain(|&c| c != core);
        let conflict = match perm {
            Perm::None => None,
            Perm::Read => h
                .writer
                .map(|w| format!("{core} gained read on {line} while {w} may write")),
            Perm::Write => {
                let other = h.writer.or(h.readers.first().copied());
                other.map(|o| format!("{core} gained write on {line} while {o} holds it"))
            }
        };
        match perm {
            Perm::None => {}
            Perm::Read => h.readers.push(core),
            Perm::Write => h.writer = Some(core),
        }
        if h.writer.is_none() && h.readers.is_empty() {
            shard.remove(&line);
        }
        drop(shard);
        if let Some(c) = conflict {
            self.violation(c);
        }
    }

    /// Checks that `core` holds at least `need` on `line` now.
    pub fn check(&self, core: CoreId, line: LineAddr, need: Perm) {
        let shard = self.shard(line).lock();
        let h = shard.get(&line);
        let ok = match need {
            Perm::None => true,
            Perm::Read => h.is_some_and(|h| h.writer == Some(core) || h.readers.contains(&core)),
            Perm::Write => h.is_some_and(|h| h.writer == Some(core)),
        };
        drop(shard);
        if !ok {
            self.violation(format!(
                "{core} accessed {line} needing {need:?} without holding it"
            ));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn second_writer_is_a_violation() {
        let t = OwnerTable::new(false);
        let l = LineAddr(9);
        t.set(CoreId(0), l, Perm::Read);
        t.set(CoreId(1), l, Perm::Read);
        assert_eq!(t.violations(), 0);
        t.set(CoreId(1), l, Perm::None);
        t.set(CoreId(0), l, Perm::Write);
        assert_eq!(t.violations(), 0);
        t.check(CoreId(0), l, Perm::Write);
        t.set(CoreId(2), l, Perm::Read);
        assert_eq!(t.violations(), 1);
        t.check(CoreId(3), l, Perm::Read);
        assert_eq!(t.violations(), 2);
    }

    #[test]
    #[should_panic(expected = "ownership rule violated")]
    fn panicking_mode_panics() {
        let t = OwnerTable::new(true);
        t.set(CoreId(0), LineAddr(1), Perm::Write);
        t.set(CoreId(1), LineAddr(1), Perm::Write);
    }
}
