//! Configuration of the out-of-order core (serde, with PTLsim-like defaults).

use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// Functional-unit counts (uops of a class issued per cycle).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct UnitsConfig {
    /// Integer ALUs (also execute branches).
    pub alu: usize,
    /// Pipelined multipliers.
    pub mul: usize,
    /// Unpipelined dividers.
    pub div: usize,
    /// Load ports (address generation + L1D access).
    pub load: usize,
    /// Store-address/data ports.
    pub store: usize,
    /// Pipelined FP/vector units: the FpAdd, FpMul, Convert, Vec and
    /// Shuffle classes.
    pub fp: usize,
    /// Unpipelined FP dividers (FpDiv: divide, square root), each busy
    /// `latency.fp_div` cycles per uop.
    pub fp_div: usize,
}

impl Default for UnitsConfig {
    fn default() -> Self {
        Self {
            alu: 4,
            mul: 1,
            div: 1,
            load: 2,
            store: 1,
            fp: 2,
            fp_div: 1,
        }
    }
}

/// Execution latencies in cycles, per uop class.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct LatencyConfig {
    /// Simple integer ops, moves, lea, setcc, cmov.
    pub alu: u64,
    /// Branches (resolution after issue).
    pub branch: u64,
    /// Multiplies.
    pub mul: u64,
    /// Divides (the divider is busy this long: unpipelined).
    pub div: u64,
    /// Store address generation.
    pub store: u64,
    /// A load served by store-to-load forwarding (from issue).
    pub forward: u64,
    /// A wrong-path load (never sent to memory; see the module docs).
    pub wrong_path_load: u64,
    /// Microcoded ops: cpuid, rdtsc, popf, hlt, syscall.
    pub complex: u64,
    /// FP add/sub/compare/min/max (SSE and x87).
    pub fp_add: u64,
    /// FP multiply.
    pub fp_mul: u64,
    /// FP divide and square root (the divider is busy this long).
    pub fp_div: u64,
    /// Vector integer and logic ops, vector register moves.
    pub vec: u64,
    /// Shuffles, unpacks, packs, inserts, extracts.
    pub shuffle: u64,
    /// Int/FP and FP/FP conversions.
    pub convert: u64,
    /// Per-opcode overrides by uop name ([`super::uopinfo::op_name`]:
    /// `imul`, `div`, `popcnt`…), replacing the class latency (for a
    /// divider op also its busy time). Loads are timed by memory instead.
    pub per_op: BTreeMap<String, u64>,
}

impl Default for LatencyConfig {
    fn default() -> Self {
        Self {
            alu: 1,
            branch: 1,
            mul: 3,
            div: 20,
            store: 1,
            forward: 2,
            wrong_path_load: 4,
            complex: 10,
            fp_add: 3,
            fp_mul: 4,
            fp_div: 13,
            vec: 1,
            shuffle: 1,
            convert: 4,
            per_op: BTreeMap::new(),
        }
    }
}

/// Branch-prediction structures (all sizes are log2 entries or counts).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct BpredConfig {
    /// log2 of the gshare table's 2-bit counters.
    pub gshare_bits: u32,
    /// Global history bits hashed into gshare.
    pub history_bits: u32,
    /// log2 of the bimodal table's 2-bit counters.
    pub bimodal_bits: u32,
    /// log2 of the chooser's 2-bit counters (indexed by PC).
    pub chooser_bits: u32,
    /// BTB sets.
    pub btb_sets: usize,
    /// BTB ways (LRU).
    pub btb_ways: usize,
    /// Return-address-stack entries.
    pub ras_entries: usize,
}

impl Default for BpredConfig {
    fn default() -> Self {
        Self {
            gshare_bits: 14,
            history_bits: 12,
            bimodal_bits: 12,
            chooser_bits: 12,
            btb_sets: 512,
            btb_ways: 4,
            ras_entries: 16,
        }
    }
}

/// Which context fetches each cycle.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FetchPolicy {
    /// Fewest uops in the fetch buffer and issue queue (Tullsen's ICOUNT).
    Icount,
    /// Contexts in turn.
    RoundRobin,
}

/// The whole core.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct OooConfig {
    /// Hardware contexts (SMT threads), 1..=8.
    pub contexts: usize,
    /// Fetch policy.
    pub fetch_policy: FetchPolicy,
    /// Instructions fetched per cycle (from one context);
    /// fetch also stops after a predicted-taken branch.
    pub fetch_width: usize,
    /// Fetch buffer (fetched, not yet dispatched) uops per context.
    pub fetch_buffer: usize,
    /// Cycles from fetch to the earliest dispatch (decode + rename stages);
    /// together with `redirect_penalty` it is the mispredict penalty.
    pub frontend_depth: u64,
    /// Extra cycles before fetch restarts after a mispredict resolves.
    pub redirect_penalty: u64,
    /// Fetch bubble when a taken direct branch misses in the BTB (its
    /// target comes from decode).
    pub btb_miss_bubble: u64,
    /// Cycles of an instruction fetch that the fetch pipeline hides: a
    /// line whose fetch is ready within this many cycles does not stall
    /// fetch (an L1I hit); a slower one stalls for the rest.
    pub icache_hidden: u64,
    /// Uops renamed and dispatched per cycle (all contexts).
    pub dispatch_width: usize,
    /// Uops issued per cycle.
    pub issue_width: usize,
    /// Uops committed per cycle (all contexts).
    pub commit_width: usize,
    /// Reorder-buffer entries per context (uops).
    pub rob_per_context: usize,
    /// Issue-queue entries (uops waiting to issue), shared.
    pub iq_size: usize,
    /// Load-queue entries, shared.
    pub lq_size: usize,
    /// Store-queue entries, shared.
    pub sq_size: usize,
    /// Split IQ/LQ/SQ statically between contexts (each gets size /
    /// contexts); otherwise a context may take all of a shared queue.
    pub static_partition: bool,
    /// Physical integer registers (flags included), of which 32 per
    /// context hold committed state.
    pub phys_regs: usize,
    /// Issue loads before older stores' addresses are known (replay on a
    /// violation); otherwise wait for them.
    pub mem_dep_speculation: bool,
    /// Entries of the per-context load-alias predictor: a load whose RIP
    /// once caused a memory-order violation waits for older store
    /// addresses from then on (0 = no predictor).
    pub alias_predictor: usize,
    /// Functional units.
    pub units: UnitsConfig,
    /// Latencies.
    pub latency: LatencyConfig,
    /// Branch predictor.
    pub bpred: BpredConfig,
}

impl Default for OooConfig {
    fn default() -> Self {
        Self {
            contexts: 1,
            fetch_policy: FetchPolicy::Icount,
            fetch_width: 4,
            fetch_buffer: 32,
            frontend_depth: 5,
            redirect_penalty: 2,
            btb_miss_bubble: 2,
            icache_hidden: 4,
            dispatch_width: 4,
            issue_width: 4,
            commit_width: 4,
            rob_per_context: 128,
            iq_size: 64,
            lq_size: 48,
            sq_size: 32,
            static_partition: false,
            phys_regs: 256,
            mem_dep_speculation: true,
            alias_predictor: 64,
            units: UnitsConfig::default(),
            latency: LatencyConfig::default(),
            bpred: BpredConfig::default(),
        }
    }
}
