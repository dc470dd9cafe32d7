//! The timing-model seam of a core partition.
//!
//! A core partition owns the architectural side of a core (its contexts,
//! their registers and functional executors, the adapter onto the private
//! hierarchy, locks and fences: [`CoreState`]); a [`TimingModel`] decides
//! *when* things happen. The partition runs each epoch through the model
//! selected now, and tells every model when a context starts, stops or
//! changes code, so a model that keeps state of its own (the out-of-order
//! pipeline, its predictors) stays consistent across model switches.
//!
//! A new timing model (in this crate: it uses `CoreState`'s internals)
//! implements this trait and is added to
//! [`super::CorePart`]'s set; nothing else in the machine changes.

use super::CoreState;
use serde::{Deserialize, Serialize};
use smpsim_engine::{Cycle, EpochCtx, Stats};
use smpsim_uncore::MemMsg;

/// How cores spend time.
#[derive(Copy, Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Model {
    /// One cycle per instruction; memory accesses still wait for the
    /// coherence protocol to grant their lines, but hit latencies are free.
    Functional,
    /// One instruction at a time: it takes the larger of `inorder.cpi` and
    /// the sum of its uops' latencies (`inorder.latency`, by uop class), and
    /// cannot finish before its loads deliver (blocking caches).
    Inorder,
    /// The out-of-order core (`ooo`): fetch, rename, issue queue, load and
    /// store queues, in-order commit, SMT (see [`crate::ooo`]).
    Ooo,
    /// Fast-forward (`fast`): no timing, one cycle per instruction; cores
    /// run whole quanta against machine memory with their stores buffered
    /// until the barrier and atomic instructions serialized there (see
    /// `part::fast`). For reaching a region of interest in big guests.
    Fast,
}

impl Model {
    /// Its name in configs and on the command line.
    pub fn name(self) -> &'static str {
        match self {
            Model::Functional => "functional",
            Model::Inorder => "inorder",
            Model::Ooo => "ooo",
            Model::Fast => "fast",
        }
    }
}

impl std::str::FromStr for Model {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "functional" => Ok(Model::Functional),
            "inorder" => Ok(Model::Inorder),
            "ooo" => Ok(Model::Ooo),
            "fast" => Ok(Model::Fast),
            _ => Err(format!(
                "unknown model `{s}`; allowed: functional, inorder, ooo, fast"
            )),
        }
    }
}

/// When a core's work happens.
///
/// Contract: [`TimingModel::run_epoch`] advances `core` from its clock to
/// the epoch's end, handling every message due in the epoch in time order
/// (through `CoreState::handle_message`) and leaving the hierarchy's
/// outgoing messages flushed; it may reach guest memory only through
/// [`CoreState`] (the adapter), so the ownership rule and determinism hold
/// whatever the model does with time.
pub trait TimingModel: Send + std::fmt::Debug {
    /// Which model this is.
    fn model(&self) -> Model;

    /// Runs `core` through the epoch of `ctx`.
    fn run_epoch(&mut self, core: &mut CoreState, ctx: &mut EpochCtx<'_, MemMsg>);

    /// The earliest cycle the model has work of its own (beyond the
    /// contexts' issue times, the hierarchy's drains and trap ticks, which
    /// the partition adds); `None` when only those can wake it.
    fn next_activity(&self, core: &CoreState) -> Option<Cycle> {
        let _ = core;
        None
    }

    /// Context `t` (re)starts from its committed registers at `at` (a
    /// start, a resumed trap, a wake-up, or a switch to this model).
    fn resume(&mut self, core: &mut CoreState, t: usize, at: Cycle) {
        let _ = (core, t, at);
    }

    /// Context `t` stops (parked, interrupted, or this model is switched
    /// away from): in-flight work of it is dropped, the committed state
    /// is the truth.
    fn halt(&mut self, t: usize) {
        let _ = t;
    }

    /// Code at guest-virtual `va` may have changed (the page was remapped).
    fn invalidate_code(&mut self, va: u64) {
        let _ = va;
    }

    /// The model's own statistics, if it has any.
    fn stats(&self) -> Option<&Stats> {
        None
    }

    /// Brings the model's statistics up to date (at the end of a run).
    fn flush_stats(&mut self) {}
}
