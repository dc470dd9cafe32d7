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

use super::adapter::Adapter;
use super::{context, CoreState, Executed, Model, TimingModel};
use crate::ooo::uopinfo::{class, op_name, Class};
use crate::ooo::LatencyConfig;
use crate::paging::AccessKind;
use crate::translate::{translate_block, Quirks};
use crate::uop::Uop;
use crate::{Exit, GuestMemory, MemStop, Pacer, PageFault};
use smpsim_engine::{Cycle, EpochCtx};
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
    /// The implementation choices the costed translations follow (the
    /// core's vendor).
    #[serde(default)]
    quirks: Quirks,
}

impl IssueModel {
    /// The functional model.
    pub(super) fn functional() -> Self {
        IssueModel {
            inorder: None,
            costs: BTreeMap::new(),
            cost_cache: Vec::new(),
            quirks: Quirks::default(),
        }
    }

    /// The in-order model of a core with `quirks`.
    pub(super) fn inorder(cpi: u64, latency: LatencyConfig, quirks: Quirks) -> Self {
        IssueModel {
            inorder: Some((cpi, latency)),
            costs: BTreeMap::new(),
            cost_cache: vec![(u64::MAX, 0, 0); COST_CACHE],
            quirks,
        }
    }

    /// Issues context `t` at `core.now`: one instruction, and while the
    /// context stays the one that issues next before `limit` (the epoch's
    /// end, the next message, another context's turn) and before the
    /// hierarchy's own next work, the ones after it in the same functional
    /// run ([`Paced`]), each timed as if issued alone. Returns whether the
    /// last one released a lock, and whether the core is known to have
    /// nothing more to do before `end`.
    fn issue(&mut self, core: &mut CoreState, t: usize, limit: Cycle, end: Cycle) -> (bool, bool) {
        core.last_issued = t;
        let c = &core.ctxs[t];
        if c.lock.is_none() && !c.regs.debug.armed(c.regs.rflags) {
            return (false, self.issue_paced(core, t, limit, end));
        }
        let now = core.now;
        let Executed::Done {
            exit,
            rip,
            ready,
            released,
        } = core.execute(t, false, None)
        else {
            return (false, false);
        };
        self.retire(core, t, now, exit, rip, ready);
        (released, false)
    }

    /// Times an instruction of context `t` issued at `now` (at `rip`, its
    /// loaded data ready at `ready`) and counts it.
    fn retire(
        &mut self,
        core: &mut CoreState,
        t: usize,
        now: Cycle,
        exit: Exit,
        rip: u64,
        ready: Cycle,
    ) {
        let c = &core.ctxs[t];
        let space = c.asid.map_or(0, |a| a.0);
        let (cost, next) = self.timing(now, ready, rip, &core.mem, &*c.space, space);
        core.hier.stats_mut().add(core.ids.busy_cycles, cost - now);
        core.next_issue = next;
        core.ctxs[t].ready = cost;
        core.finish(t, exit, cost);
    }

    /// When an instruction at `rip` issued at `now` with its loaded data
    /// ready at `ready` finishes, and when the core may issue the next.
    #[inline]
    fn timing(
        &mut self,
        now: Cycle,
        ready: Cycle,
        rip: u64,
        mem: &MachineMemory,
        space: &dyn super::AddressMap,
        asid: u64,
    ) -> (Cycle, Cycle) {
        match self.inorder.as_ref().map(|(cpi, _)| *cpi) {
            Some(cpi) => {
                let exec = self.insn_cost(mem, space, asid, rip).max(cpi);
                ((now + exec).max(ready), now + cpi)
            }
            None => (now + 1, now + 1),
        }
    }

    /// Runs context `t` (no lock held, no debug checks armed) paced by
    /// [`Paced`] from `core.now` up to `limit`; leaves the core as issuing
    /// its instructions one by one would. Returns whether the core then has
    /// nothing to do before `end` (the run reached the epoch's end with no
    /// message, other context or hierarchy work before it).
    fn issue_paced(&mut self, core: &mut CoreState, t: usize, limit: Cycle, end: Cycle) -> bool {
        let now = core.now;
        let sb_free = core.sb_cap.saturating_sub(core.hier.store_buffer_len());
        let hier_next = core.hier.next_activity();
        let c = &mut core.ctxs[t];
        let ad = Adapter::new(
            &mut core.hier,
            &core.mem,
            (&*c.space, &mut c.tlb),
            &mut core.scratch,
            now,
            context(t),
            sb_free,
            None,
        );
        let mut p = Paced {
            ad,
            model: self,
            ids: &core.ids,
            sb_cap: core.sb_cap,
            limit,
            end,
            hier_next,
            idle: false,
            asid: c.asid.map_or(0, |a| a.0),
            issued_at: now,
            ready: c.ready,
            next_issue: core.next_issue,
            rip: c.regs.rip,
            done: Vec::new(),
        };
        c.func.set_cycles(now.get());
        let exit = c.func.run_paced(&mut c.regs, &mut p);
        // Read what is needed in place (moving the adapter out costs a copy).
        c.ready = p.ready;
        core.next_issue = p.next_issue;
        let rip = p.rip;
        let (at, loaded, why) = (p.ad.now, p.ad.ready + p.ad.walk_delay, p.ad.blocked);
        match exit {
            Exit::InsnLimit => {
                // Every instruction it ran was retired by the pacer.
                let (issued_at, idle, done) = (p.issued_at, p.idle, std::mem::take(&mut p.done));
                drop(p);
                core.now = issued_at;
                if !done.is_empty() {
                    core.completed(done);
                }
                return idle;
            }
            Exit::Retry => {
                drop(p);
                let why = why.expect("the adapter says why it stopped");
                core.now = at;
                core.hier.stats_mut().inc(core.ids.replays);
                core.block(t, why);
            }
            exit => {
                p.ad.commit_stores();
                drop(p);
                core.now = at;
                for i in 0..core.scratch.walks.len() {
                    let w = core.scratch.walks[i];
                    let stats = core.hier.stats_mut();
                    stats.inc(core.ids.tlb_walks);
                    stats.record(core.ids.walk_latency, w.max(1));
                }
                if exit == Exit::Halt {
                    // A PV kernel may not halt: the fault is at the `hlt`.
                    core.ctxs[t].regs.rip = rip;
                }
                self.retire(core, t, at, exit, rip, loaded);
            }
        }
        false
    }

    /// Sum of the uop latencies of the instruction at `rip` (loads count 0:
    /// the memory system times them), memoized per (address space, RIP).
    fn insn_cost(
        &mut self,
        mem: &MachineMemory,
        space: &dyn super::AddressMap,
        asid: u64,
        rip: u64,
    ) -> u64 {
        let slot = (rip ^ rip >> 12) as usize % COST_CACHE;
        let (r, s, cost) = self.cost_cache[slot];
        if r == rip && s == asid {
            return cost;
        }
        self.insn_cost_miss(mem, space, asid, rip, slot)
    }

    #[cold]
    fn insn_cost_miss(
        &mut self,
        mem: &MachineMemory,
        space: &dyn super::AddressMap,
        asid: u64,
        rip: u64,
        slot: usize,
    ) -> u64 {
        let (cpi, latency) = self.inorder.as_ref().expect("in-order costs");
        if let Some(&cost) = self.costs.get(&(asid, rip)) {
            self.cost_cache[slot] = (rip, asid, cost);
            return cost;
        }
        let mut fetch = CodeBytes { mem, space };
        let cost = match translate_block(&mut fetch, rip, self.quirks) {
            Ok(b) => b.insns.first().map_or(*cpi, |i| {
                b.uops[usize::from(i.start)..usize::from(i.end)]
                    .iter()
                    .map(|u| uop_latency(latency, u))
                    .sum()
            }),
            Err(_) => *cpi,
        };
        self.costs.insert((asid, rip), cost);
        self.cost_cache[slot] = (rip, asid, cost);
        cost
    }
}

/// The memory of a paced run of one context ([`crate::FuncCore::run_paced`]):
/// the adapter, plus at each instruction boundary what the issue loop
/// would do between two single-instruction issues of the context — retire
/// the instruction's stores, time and count it — and whether the loop's
/// next step would issue this context again: only then does the run go on,
/// with the adapter restarted for an instruction issuing at that cycle.
struct Paced<'a, 'b> {
    ad: Adapter<'b>,
    model: &'a mut IssueModel,
    ids: &'a super::CoreStats,
    sb_cap: usize,
    /// The next issue must be before this (epoch end, next message,
    /// another context's issue time).
    limit: Cycle,
    /// The epoch's end.
    end: Cycle,
    /// The hierarchy's next own work, as of the last store (without a
    /// message or a drain, only a store into an empty buffer brings it
    /// earlier; loads can only take it away, and a stale value only stops
    /// the run early, which the issue loop then resumes exactly).
    hier_next: Option<Cycle>,
    /// Set when the run stopped at `end` with nothing else due before it
    /// (no message, no other context, no hierarchy work).
    idle: bool,
    /// The context's address space (cost memo key).
    asid: u64,
    /// Issue cycle of the last retired instruction.
    issued_at: Cycle,
    /// The context's ready time after the last retired instruction.
    ready: Cycle,
    /// The core's next issue cycle after it.
    next_issue: Cycle,
    /// Address of the instruction running now (or next).
    rip: u64,
    /// Completions that appeared at a boundary (the run stops there).
    done: Vec<smpsim_uncore::Completion>,
}

impl Pacer for Paced<'_, '_> {
    #[inline]
    fn retired(&mut self, rip: u64, next: u64) -> Option<u64> {
        let now = self.ad.now;
        let loaded = self.ad.ready + self.ad.walk_delay;
        if self.ad.stores_pending() {
            let new = self.ad.commit_stores();
            debug_assert!(new.is_none(), "a paced instruction holds no lock");
            // A store may give the store buffer a head to drain.
            self.hier_next = self.ad.hier.next_activity();
        }
        let ids = *self.ids;
        for i in 0..self.ad.walks().len() {
            let w = self.ad.walks()[i];
            let stats = self.ad.hier.stats_mut();
            stats.inc(ids.tlb_walks);
            stats.record(ids.walk_latency, w.max(1));
        }
        let (cost, next_issue) =
            self.model
                .timing(now, loaded, rip, self.ad.mem, self.ad.space, self.asid);
        let stats = self.ad.hier.stats_mut();
        stats.add(ids.busy_cycles, cost - now);
        stats.inc(ids.instructions);
        self.issued_at = now;
        self.ready = cost;
        self.next_issue = next_issue;
        let done = self.ad.hier.take_completions();
        if !done.is_empty() {
            self.done = done;
            return None;
        }
        let at = cost.max(next_issue);
        if at >= self.limit {
            self.idle = self.limit == self.end
                && self.ad.hier.next_activity().is_none_or(|h| h >= self.end);
            return None;
        }
        if self.hier_next.is_some_and(|h| h <= at) {
            return None;
        }
        let sb_free = self.sb_cap.saturating_sub(self.ad.hier.store_buffer_len());
        self.ad.restart(at, sb_free);
        self.rip = next;
        Some(at.get())
    }
}

impl GuestMemory for Paced<'_, '_> {
    #[inline]
    fn read(&mut self, addr: u64, buf: &mut [u8]) -> Result<(), MemStop> {
        self.ad.read(addr, buf)
    }
    #[inline]
    fn write(&mut self, addr: u64, data: &[u8]) -> Result<(), MemStop> {
        self.ad.write(addr, data)
    }
    #[inline]
    fn load(&mut self, addr: u64, size: u8) -> Result<u64, MemStop> {
        self.ad.load(addr, size)
    }
    #[inline]
    fn store(&mut self, addr: u64, size: u8, value: u64) -> Result<(), MemStop> {
        self.ad.store(addr, size, value)
    }
    #[inline]
    fn fence(&mut self) -> Result<(), MemStop> {
        self.ad.fence()
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
            let order = core.issue_order().filter(|&(_, t, _)| t < end);
            let first = earliest(earliest(msg, hier), order.map(|(_, t, _)| t));
            let Some(t) = first else { break };
            core.now = core.now.max(t);
            if msg == Some(t) {
                let m = ctx.pop_due().expect("peeked");
                core.handle_message(m.payload);
            } else if hier == Some(t) {
                core.advance_hierarchy();
            } else if let Some((i, _, others)) = order {
                // The next message or another context's turn ends this
                // one's paced run.
                let limit = earliest(earliest(msg, others), Some(end)).unwrap_or(end);
                let (released, idle) = self.issue(core, i, limit, end);
                if idle {
                    break;
                }
                core.on_completions();
                if released {
                    core.wake_retries(true, false);
                }
            }
        }
        core.hier.flush(ctx);
    }
}

/// The earlier of two optional cycles.
#[inline(always)]
fn earliest(a: Option<Cycle>, b: Option<Cycle>) -> Option<Cycle> {
    match (a, b) {
        (Some(a), Some(b)) => Some(a.min(b)),
        (a, b) => a.or(b),
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
        // The translator reads within one page: one translation for all.
        let page = crate::mem::PAGE_SIZE;
        if !buf.is_empty() && addr / page == addr.wrapping_add(buf.len() as u64 - 1) / page {
            let frame = self
                .space
                .translate(self.mem, addr, AccessKind::Fetch)
                .map_err(|_| fault)?
                .frame;
            if self.mem.read(MachineAddr(frame + addr % page), buf).is_ok() {
                return Ok(());
            }
        }
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
