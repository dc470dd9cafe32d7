//! Static, deterministic placement of partitions on host threads.

use serde::{Deserialize, Serialize};
use std::fmt;
use std::str::FromStr;

/// How many host threads run the partitions.
#[derive(Copy, Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum HostThreads {
    /// Exactly this many threads (at least 1; capped at the partition count).
    Count(usize),
    /// One thread per core partition; other partitions are spread over them.
    PerCore,
}

impl Default for HostThreads {
    fn default() -> Self {
        HostThreads::Count(1)
    }
}

impl fmt::Display for HostThreads {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            HostThreads::Count(n) => write!(f, "{n}"),
            HostThreads::PerCore => write!(f, "per-core"),
        }
    }
}

impl FromStr for HostThreads {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        if s == "per-core" {
            return Ok(HostThreads::PerCore);
        }
        match s.parse::<usize>() {
            Ok(n) if n >= 1 => Ok(HostThreads::Count(n)),
            _ => Err(format!(
                "host threads {s:?}: expected a whole number ≥ 1 or \"per-core\""
            )),
        }
    }
}

/// Assigns each partition a host thread. `is_core[i]` says whether partition
/// `i` is a core. Returns `(thread of each partition, thread count)`.
///
/// With N threads, partitions are cut into N contiguous blocks of nearly
/// equal size (neighbouring cores share a thread). Per-core gives core `k`
/// thread `k` and deals the other partitions round-robin.
pub fn assign(is_core: &[bool], threads: HostThreads) -> (Vec<u32>, usize) {
    let n = is_core.len();
    match threads {
        HostThreads::Count(t) => {
            let t = t.clamp(1, n.max(1));
            let owner = (0..n).map(|i| thread_index(i * t / n)).collect();
            (owner, t)
        }
        HostThreads::PerCore => {
            let cores = is_core.iter().filter(|&&c| c).count().max(1);
            let (mut next_core, mut next_other) = (0, 0);
            let owner = is_core
                .iter()
                .map(|&c| {
                    let counter = if c { &mut next_core } else { &mut next_other };
                    let t = *counter % cores;
                    *counter += 1;
                    thread_index(t)
                })
                .collect();
            (owner, cores)
        }
    }
}

fn thread_index(t: usize) -> u32 {
    u32::try_from(t).expect("fewer than 2^32 host threads")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn count_makes_contiguous_blocks() {
        let (owner, t) = assign(&[true; 5], HostThreads::Count(2));
        assert_eq!((owner, t), (vec![0, 0, 0, 1, 1], 2));
        let (owner, t) = assign(&[true; 2], HostThreads::Count(8));
        assert_eq!((owner, t), (vec![0, 1], 2));
    }

    #[test]
    fn per_core_deals_uncore_round_robin() {
        let (owner, t) = assign(
            &[true, true, true, false, false, false, false],
            HostThreads::PerCore,
        );
        assert_eq!(t, 3);
        assert_eq!(owner, vec![0, 1, 2, 0, 1, 2, 0]);
    }

    #[test]
    fn parse_host_threads() {
        assert_eq!("per-core".parse(), Ok(HostThreads::PerCore));
        assert_eq!("4".parse(), Ok(HostThreads::Count(4)));
        assert!("0".parse::<HostThreads>().is_err());
        assert!("many"
            .parse::<HostThreads>()
            .unwrap_err()
            .contains("per-core"));
    }
}
