//! Links between partitions and the machine's lookahead.

use crate::time::PartitionId;
use crate::EngineError;

/// Latencies of every declared link, as a dense `src × dst` table
/// (0 = no link). Built once; read by every thread.
#[derive(Debug, Clone)]
pub struct LinkTable {
    n: usize,
    latency: Vec<u32>,
    lookahead: Option<u64>,
}

impl LinkTable {
    /// Builds the table for `n` partitions from `(src, dst, latency)` triples.
    pub fn new(n: usize, links: &[(PartitionId, PartitionId, u64)]) -> Result<Self, EngineError> {
        let mut latency = vec![0u32; n * n];
        for &(src, dst, lat) in links {
            for p in [src, dst] {
                if p.index() >= n {
                    return Err(EngineError::UnknownPartition(p));
                }
            }
            if lat == 0 {
                return Err(EngineError::ZeroLatencyLink { src, dst });
            }
            let lat32 = u32::try_from(lat).map_err(|_| EngineError::LatencyTooLarge {
                src,
                dst,
                latency: lat,
            })?;
            latency[src.index() * n + dst.index()] = lat32;
        }
        let lookahead = latency
            .iter()
            .filter(|&&l| l > 0)
            .min()
            .map(|&l| u64::from(l));
        Ok(LinkTable {
            n,
            latency,
            lookahead,
        })
    }

    /// Latency of the link `src → dst`, if declared.
    #[inline]
    pub fn latency(&self, src: PartitionId, dst: PartitionId) -> Option<u64> {
        match self.latency[src.index() * self.n + dst.index()] {
            0 => None,
            l => Some(u64::from(l)),
        }
    }

    /// The smallest link latency (`None` if there are no links).
    pub fn lookahead(&self) -> Option<u64> {
        self.lookahead
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lookahead_is_smallest_latency() {
        let p = PartitionId;
        let t = LinkTable::new(3, &[(p(0), p(1), 7), (p(1), p(0), 4), (p(2), p(0), 9)])
            .expect("valid links");
        assert_eq!(t.lookahead(), Some(4));
        assert_eq!(t.latency(p(0), p(1)), Some(7));
        assert_eq!(t.latency(p(1), p(2)), None);
    }

    #[test]
    fn zero_latency_is_refused() {
        let p = PartitionId;
        let err = LinkTable::new(2, &[(p(0), p(1), 0)]).expect_err("latency 0");
        assert!(err.to_string().contains("latency 0"), "{err}");
    }
}
