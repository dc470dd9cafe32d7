//! Statistics of a core's private hierarchy.

use crate::ids::Level;
use smpsim_engine::{CounterId, HistId, StatsBuilder};

/// Counter and histogram handles.
#[derive(Clone, Copy, Debug, serde::Serialize, serde::Deserialize)]
pub(crate) struct PrivStatIds {
    pub read_misses: CounterId,
    pub write_misses: CounterId,
    pub upgrades: CounterId,
    pub coherence_misses: CounterId,
    pub mshr_merges: CounterId,
    pub writebacks: CounterId,
    pub clean_evictions: CounterId,
    pub invs_received: CounterId,
    pub fwds_received: CounterId,
    pub sb_forwards: CounterId,
    pub sb_drains: CounterId,
    pub sb_full: CounterId,
    pub stalls: CounterId,
    pub locked_ops: CounterId,
    pub out_of_range: CounterId,
    pub load_to_use: [HistId; 6],
    pub miss_latency: HistId,
    pub coherence_latency: HistId,
}

const HIST_MAX: u64 = 1 << 20;

impl PrivStatIds {
    pub fn declare(b: &mut StatsBuilder) -> Self {
        let ev = "events";
        let load_to_use = Level::ALL.map(|l| {
            b.histogram(
                &format!("load_to_use.{}", l.name()),
                &format!("load-to-use latency of loads served by {}", l.name()),
                "cycles",
                HIST_MAX,
            )
        });
        PrivStatIds {
            read_misses: b.counter(
                "l2.read_misses",
                "L2 misses of loads and fetches (GetS sent)",
                ev,
            ),
            write_misses: b.counter(
                "l2.write_misses",
                "L2 misses of stores and locked ops (GetM sent from I)",
                ev,
            ),
            upgrades: b.counter(
                "l2.upgrades",
                "stores or locked ops to a shared or owned line (GetM sent from S/O)",
                ev,
            ),
            coherence_misses: b.counter(
                "l2.coherence_misses",
                "misses whose grant needed another core (forward or invalidations)",
                ev,
            ),
            mshr_merges: b.counter(
                "l2.mshr_merges",
                "accesses merged into an outstanding miss",
                ev,
            ),
            writebacks: b.counter("l2.writebacks", "dirty lines evicted (PutM/PutO)", ev),
            clean_evictions: b.counter("l2.clean_evictions", "clean lines evicted (PutS/PutE)", ev),
            invs_received: b.counter(
                "coh.invalidations_received",
                "invalidations received from the directory",
                ev,
            ),
            fwds_received: b.counter(
                "coh.forwards_received",
                "forwards received from the directory",
                ev,
            ),
            sb_forwards: b.counter(
                "sb.forwards",
                "loads served entirely from the store buffer",
                ev,
            ),
            sb_drains: b.counter(
                "sb.drains",
                "stores written to memory from the store buffer",
                ev,
            ),
            sb_full: b.counter(
                "sb.full",
                "stores refused because the store buffer was full",
                ev,
            ),
            stalls: b.counter(
                "l2.stalls",
                "accesses refused for want of an MSHR or a free way",
                ev,
            ),
            locked_ops: b.counter("locked.ops", "locked read-modify-writes performed", ev),
            out_of_range: b.counter(
                "mem.out_of_range",
                "accesses beyond machine memory (read as zero, writes dropped)",
                ev,
            ),
            load_to_use,
            miss_latency: b.histogram(
                "l2.miss_latency",
                "cycles from an L2 miss to its grant",
                "cycles",
                HIST_MAX,
            ),
            coherence_latency: b.histogram(
                "coh.miss_latency",
                "cycles from an L2 miss to its grant, for misses another core served",
                "cycles",
                HIST_MAX,
            ),
        }
    }

    pub fn load_to_use(&self, l: Level) -> HistId {
        let i = Level::ALL
            .iter()
            .position(|&x| x == l)
            .expect("every level has a histogram");
        self.load_to_use[i]
    }
}
