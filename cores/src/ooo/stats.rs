//! The out-of-order core's statistics, declared once.

use smpsim_engine::CounterId;

smpsim_engine::stat_table! {
    /// Statistic handles of an [`super::OooCore`].
    pub(super) struct Ids {
        /// Cycles simulated.
        cycles: counter("ooo.cycles", "cycles simulated", "cycles"),
        /// Instructions committed.
        insns: counter("ooo.insns", "instructions committed", "insns"),
        /// Uops committed.
        uops: counter("ooo.uops", "uops committed", "uops"),
        /// Mispredicts by branch kind (see [`Ids::mispredict`]).
        mispredict_cond: counter("ooo.mispredict.cond", "conditional-branch mispredicts", "events"),
        /// Direct jumps.
        mispredict_jump: counter("ooo.mispredict.jump", "direct-jump mispredicts", "events"),
        /// Call targets.
        mispredict_call: counter("ooo.mispredict.call", "call-target mispredicts", "events"),
        /// Returns.
        mispredict_ret: counter("ooo.mispredict.ret", "return mispredicts (RAS)", "events"),
        /// Indirect jumps.
        mispredict_indirect: counter("ooo.mispredict.indirect", "indirect-jump mispredicts", "events"),
        /// String loops.
        mispredict_rep: counter("ooo.mispredict.rep", "string-loop mispredicts", "events"),
        /// Dispatch stalls, by cause.
        stall_rob: counter("ooo.stall.rob_full", "dispatch stalled: ROB full", "cycles"),
        /// Issue queue full.
        stall_iq: counter("ooo.stall.iq_full", "dispatch stalled: issue queue full", "cycles"),
        /// Load queue full.
        stall_lq: counter("ooo.stall.lq_full", "dispatch stalled: load queue full", "cycles"),
        /// Store queue full.
        stall_sq: counter("ooo.stall.sq_full", "dispatch stalled: store queue full", "cycles"),
        /// No physical register.
        stall_regs: counter("ooo.stall.phys_regs", "dispatch stalled: no free physical register", "cycles"),
        /// Nothing fetched.
        stall_fetch: counter("ooo.stall.fetch", "cycles no instruction was fetched", "cycles"),
        /// Load issue refused.
        stall_mshr: counter("ooo.stall.mshr", "load issue refused by memory (no MSHR)", "events"),
        /// Commit store refused.
        stall_store: counter("ooo.stall.store_buffer", "commit stalled: store refused", "cycles"),
        /// Store-to-load forwarding.
        stlf: counter("ooo.stlf", "loads served by store-to-load forwarding", "loads"),
        /// Memory-order violations.
        violations: counter("ooo.mem_violations", "memory-order violations (replays)", "events"),
        /// Squashed uops.
        squashed: counter("ooo.squashed_uops", "uops squashed", "uops"),
        /// Wrong-path uops.
        wrong_fetched: counter("ooo.wrong_path_uops", "wrong-path uops fetched", "uops"),
        /// Slow line fetches.
        icache_miss: counter("ooo.icache_stalls", "line fetches slower than the fetch pipeline hides", "events"),
        /// Commit-time divergences from the oracle.
        diverged: counter(
            "ooo.diverged",
            "instructions whose commit-time result differed from the fetch-time oracle (younger squashed)",
            "events"
        ),
        /// Commit waits.
        commit_wait: counter(
            "ooo.stall.commit_wait",
            "commit waited for the commit hook (data, lock or store-buffer room)",
            "cycles"
        ),
        /// ROB occupancy.
        occ_rob: histogram("ooo.occ.rob", "ROB occupancy per cycle (all contexts)", "uops", 4096),
        /// Issue-queue occupancy.
        occ_iq: histogram("ooo.occ.iq", "issue-queue occupancy per cycle", "uops", 4096),
        /// Load/store-queue occupancy.
        occ_lsq: histogram("ooo.occ.lsq", "load+store queue occupancy per cycle", "uops", 4096),
    }
}

impl Ids {
    /// The mispredict counter of branch kind `i` (cond, jump, call, ret,
    /// indirect, rep).
    pub(super) fn mispredict(&self, i: usize) -> CounterId {
        [
            self.mispredict_cond,
            self.mispredict_jump,
            self.mispredict_call,
            self.mispredict_ret,
            self.mispredict_indirect,
            self.mispredict_rep,
        ][i]
    }
}
