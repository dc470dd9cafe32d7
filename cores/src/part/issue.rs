//! The issue models, `functional` and `inorder`: a core issues one whole
//! instruction at a time across its contexts, through the adapter; a
//! blocked instruction is replayed when the reason is gone.
//!
//! The core advances in time order through three kinds of events:
//! coherence messages (handed to the hierarchy), the hierarchy's own work
//! (store drains) and instruction issue.
//!
//! Timing: `functional`: an instruction takes one cycle and the core issues
//! one per cycle. `inorder`: the core issues at most one instruction per
//! `cpi` cycles; an instruction takes the larger of `cpi` and the sum of
//! its uops' latencies, and cannot finish before its loads deliver
//! (blocking caches); a miss stalls its context until the grant arrives.

use super::{CoreState, Executed, Model, TimingModel};
use crate::ooo::uopinfo::{class, op_name, Class};
use crate::ooo::LatencyConfig;
use crate::paging::AccessKind;
use crate::translate::translate_block;
use crate::uop::Uop;
use crate::{GuestMemory, MemStop, PageFault};
use smpsim_engine::EpochCtx;
use smpsim_uncore::memory::{MachineAddr, MachineMemory};
use smpsim_uncore::MemMsg;
use std::collections::BTreeMap;

/// Entries of the direct-mapped instruction-cost cache.
const COST_CACHE: usize = 4096;

/// `functional` or `inorder`. Serializable for checkpoints, cost memo
/// included (it is never invalidated, so it is state, not a cache).
#[derive(Debug, serde::Serialize, serde::Deserialize)]
pub(super) struct IssueModel {
    /// `Some` for `inorder`: cycles per instruction and uop latencies.
    inorder: Option<(u64, LatencyConfig)>,
    /// Execution cycles of each instruction seen, by (address space, RIP).
    costs: BTreeMap<(u64, u64), u64>,
    /// Direct-mapped cache in front of `costs`: (RIP, address space, cycles).
    cost_cache: Vec<(u64, u64, u64)>,
}

impl IssueModel {
    /// The functional model.
    pub(super) fn functional() -> Self {
        IssueModel {
            inorder: None,
            costs: BTreeMap::new(),
            cost_cache: Vec::new(),
        }
    }

    /// The in-order model.
    pub(super) fn inorder(cpi: u64, latency: LatencyConfig) -> Self {
        IssueModel {
            inorder: Some((cpi, latency)),
            costs: BTreeMap::new(),
            cost_cache: vec![(u64::MAX, 0, 0); COST_CACHE],
        }
    }

    /// Issues one instruction of context `t` at `core.now`; returns whether
    /// it released a lock.
    fn issue(&mut self, core: &mut CoreState, t: usize) -> bool {
        let now = core.now;
        core.last_issued = t;
        let Executed::Done {
            exit,
            rip,
            ready,
            released,
        } = core.execute(t, false, None)
        else {
            return false;
        };
        let (cost, next) = match &self.inorder {
            Some((cpi, _)) => {
                let cpi = *cpi;
                let exec = self.insn_cost(core, t, rip).max(cpi);
                ((now + exec).max(ready), now + cpi)
            }
            None => (now + 1, now + 1),
        };
        core.hier.stats_mut().add(core.ids.busy_cycles, cost - now);
        core.next_issue = next;
        core.ctxs[t].ready = cost;
        core.finish(t, exit, cost);
        released
    }

    /// Sum of the uop latencies of the instruction at `rip` (loads count 0:
    /// the memory system times them), memoized per (address space, RIP).
    fn insn_cost(&mut self, core: &CoreState, t: usize, rip: u64) -> u64 {
        let (cpi, latency) = self.inorder.as_ref().expect("in-order costs");
        let c = &core.ctxs[t];
        let space = c.asid.map_or(0, |a| a.0);
        let slot = (rip ^ rip >> 12) as usize % COST_CACHE;
        let (r, s, cost) = self.cost_cache[slot];
        if r == rip && s == space {
            return cost;
        }
        if let Some(&cost) = self.costs.get(&(space, rip)) {
            self.cost_cache[slot] = (rip, space, cost);
            return cost;
        }
        let mut fetch = CodeBytes {
            mem: &core.mem,
            space: &*c.space,
        };
        let cost = match translate_block(&mut fetch, rip) {
            Ok(b) => b.insns.first().map_or(*cpi, |i| {
                b.uops[usize::from(i.start)..usize::from(i.end)]
                    .iter()
                    .map(|u| uop_latency(latency, u))
                    .sum()
            }),
            Err(_) => *cpi,
        };
        self.costs.insert((space, rip), cost);
        self.cost_cache[slot] = (rip, space, cost);
        cost
    }
}

impl TimingModel for IssueModel {
    fn model(&self) -> Model {
        if self.inorder.is_some() {
            Model::Inorder
        } else {
            Model::Functional
        }
    }

    fn run_epoch(&mut self, core: &mut CoreState, ctx: &mut EpochCtx<'_, MemMsg>) {
        let end = ctx.epoch_end();
        loop {
            let msg = ctx.peek_time().filter(|&t| t < end);
            let hier = core.hier.next_activity().filter(|&t| t < end);
            let issue = core.next_ctx().filter(|&(_, t)| t < end);
            let first = [msg, hier, issue.map(|(_, t)| t)]
                .into_iter()
                .flatten()
                .min();
            let Some(t) = first else { break };
            core.now = core.now.max(t);
            if msg == Some(t) {
                let m = ctx.pop_due().expect("peeked");
                core.handle_message(m.payload);
            } else if hier == Some(t) {
                core.advance_hierarchy();
            } else if let Some((i, _)) = issue {
                let released = self.issue(core, i);
                core.on_completions();
                if released {
                    core.wake_retries(true, false);
                }
            }
        }
        core.hier.flush(ctx);
    }
}

/// A uop's execution latency in the in-order model.
fn uop_latency(l: &LatencyConfig, u: &Uop) -> u64 {
    if let Some(&x) = l.per_op.get(&op_name(u.op)) {
        return x;
    }
    match class(u) {
        Class::Alu => l.alu,
        Class::Branch => l.branch,
        Class::Mul => l.mul,
        Class::Div => l.div,
        Class::Store => l.store,
        Class::Complex => l.complex,
        Class::FpAdd => l.fp_add,
        Class::FpMul => l.fp_mul,
        Class::FpDiv => l.fp_div,
        Class::Vec => l.vec,
        Class::Shuffle => l.shuffle,
        Class::Convert => l.convert,
        Class::Load | Class::None | Class::Fence => 0,
    }
}

/// Instruction bytes straight from machine memory, for timing lookups.
struct CodeBytes<'a> {
    mem: &'a MachineMemory,
    space: &'a dyn super::AddressMap,
}

impl GuestMemory for CodeBytes<'_> {
    fn read(&mut self, addr: u64, buf: &mut [u8]) -> Result<(), MemStop> {
        let fault = PageFault::absent(addr, false);
        for (i, b) in buf.iter_mut().enumerate() {
            let va = addr + i as u64;
            let ma = self
                .space
                .translate(self.mem, va, AccessKind::Fetch)
                .map_err(|_| fault)?
                .frame
                + va % crate::mem::PAGE_SIZE;
            *b = self.mem.read_u8(MachineAddr(ma)).map_err(|_| fault)?;
        }
        Ok(())
    }

    fn write(&mut self, addr: u64, _: &[u8]) -> Result<(), MemStop> {
        Err(PageFault::absent(addr, true).into())
    }
}
