//! Statistics of a core's private hierarchy.

use crate::ids::Level;
use smpsim_engine::HistId;

const HIST_MAX: u64 = 1 << 20;

smpsim_engine::stat_table! {
    /// Counter and histogram handles.
    pub(crate) struct PrivStatIds {
        /// Load-to-use latency by the level that served the load (see
        /// [`PrivStatIds::load_to_use`]): the store buffer.
        ltu_sb: histogram("load_to_use.sb", "load-to-use latency of loads served by sb", "cycles", HIST_MAX),
        /// The L1.
        ltu_l1: histogram("load_to_use.l1", "load-to-use latency of loads served by l1", "cycles", HIST_MAX),
        /// The L2.
        ltu_l2: histogram("load_to_use.l2", "load-to-use latency of loads served by l2", "cycles", HIST_MAX),
        /// The L3.
        ltu_l3: histogram("load_to_use.l3", "load-to-use latency of loads served by l3", "cycles", HIST_MAX),
        /// Another core.
        ltu_remote: histogram(
            "load_to_use.remote",
            "load-to-use latency of loads served by remote",
            "cycles",
            HIST_MAX
        ),
        /// DRAM.
        ltu_dram: histogram("load_to_use.dram", "load-to-use latency of loads served by dram", "cycles", HIST_MAX),
        /// Read misses.
        read_misses: counter("l2.read_misses", "L2 misses of loads and fetches (GetS sent)", "events"),
        /// Write misses.
        write_misses: counter("l2.write_misses", "L2 misses of stores and locked ops (GetM sent from I)", "events"),
        /// Upgrades.
        upgrades: counter(
            "l2.upgrades",
            "stores or locked ops to a shared or owned line (GetM sent from S/O)",
            "events"
        ),
        /// Coherence misses.
        coherence_misses: counter(
            "l2.coherence_misses",
            "misses whose grant needed another core (forward or invalidations)",
            "events"
        ),
        /// MSHR merges.
        mshr_merges: counter("l2.mshr_merges", "accesses merged into an outstanding miss", "events"),
        /// Dirty evictions.
        writebacks: counter("l2.writebacks", "dirty lines evicted (PutM/PutO)", "events"),
        /// Clean evictions.
        clean_evictions: counter("l2.clean_evictions", "clean lines evicted (PutS/PutE)", "events"),
        /// Invalidations received.
        invs_received: counter("coh.invalidations_received", "invalidations received from the directory", "events"),
        /// Forwards received.
        fwds_received: counter("coh.forwards_received", "forwards received from the directory", "events"),
        /// Store-buffer forwards.
        sb_forwards: counter("sb.forwards", "loads served entirely from the store buffer", "events"),
        /// Store-buffer drains.
        sb_drains: counter("sb.drains", "stores written to memory from the store buffer", "events"),
        /// Store buffer full.
        sb_full: counter("sb.full", "stores refused because the store buffer was full", "events"),
        /// Refused accesses.
        stalls: counter("l2.stalls", "accesses refused for want of an MSHR or a free way", "events"),
        /// Locked operations.
        locked_ops: counter("locked.ops", "locked read-modify-writes performed", "events"),
        /// Out-of-range accesses.
        out_of_range: counter(
            "mem.out_of_range",
            "accesses beyond machine memory (read as zero, writes dropped)",
            "events"
        ),
        /// Miss latency.
        miss_latency: histogram("l2.miss_latency", "cycles from an L2 miss to its grant", "cycles", HIST_MAX),
        /// Coherence-miss latency.
        coherence_latency: histogram(
            "coh.miss_latency",
            "cycles from an L2 miss to its grant, for misses another core served",
            "cycles",
            HIST_MAX
        ),
    }
}

impl PrivStatIds {
    /// The load-to-use histogram of loads served by `l`.
    pub fn load_to_use(&self, l: Level) -> HistId {
        match l {
            Level::StoreBuffer => self.ltu_sb,
            Level::L1 => self.ltu_l1,
            Level::L2 => self.ltu_l2,
            Level::L3 => self.ltu_l3,
            Level::Remote => self.ltu_remote,
            Level::Dram => self.ltu_dram,
        }
    }
}
