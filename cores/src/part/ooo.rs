//! The out-of-order model inside a core partition.
//!
//! [`crate::ooo::OooCore`] is a timing pipeline driven by a fetch-time oracle (see its
//! module docs). In the whole machine the oracle cannot be the source of
//! architectural truth: it runs ahead of commit, and reading or writing
//! shared memory at fetch would break the ownership rule (another core may
//! hold the line) and with it determinism. So the machine splits the work:
//!
//! - **The oracle (speculative)** executes each correct-path instruction at
//!   fetch against [`OooEnv`]'s view of memory: its own context's oracle
//!   stores not yet retired (an overlay, never visible to anyone else),
//!   then the context's store buffer and the lines this core holds
//!   readable (`PrivateHierarchy::peek_in`, no side effects). A load of a
//!   line the core does not hold reads 0: the oracle only needs addresses
//!   and branch outcomes for timing, and the commit check below corrects
//!   it. Everything it reads is a function of this partition's state, so
//!   runs stay deterministic.
//! - **The pipeline** times everything: loads go to the L1D through
//!   `PrivateHierarchy::load_in` when their address is ready (misses
//!   overlap up to the MSHR limit), instruction fetch goes through the L1I.
//! - **Commit** runs the instruction again, for real, through the same
//!   adapter as the in-order model (`CoreState::execute`): loads read lines
//!   the core holds readable (the pipeline's access brought them; a line
//!   lost since is fetched again and commit waits), stores retire into the
//!   TSO store buffer and drain when the line is in M, locked
//!   read-modify-writes lock their line. This is the architectural state
//!   the hypervisor sees. If its next RIP, data addresses or exit differ
//!   from what the oracle recorded (the oracle read 0 for a missing line
//!   and computed an address or branch from it, or another core changed
//!   the data), younger instructions are squashed and the oracle restarts
//!   from the committed state (`ooo.diverged`), like a machine clear.
//!
//! What this approximates, precisely: a value is bound at commit rather
//! than when the load executes (so a load that the oracle got wrong costs
//! a squash at commit, later than a real core would replay it), and
//! instructions that depend on a wrongly predicted oracle value are timed
//! with the oracle's addresses until the squash.

use super::adapter::{page_pieces, write_as_stores};
use super::{context, CoreState, Executed, Model, Run, TimingModel, Trap, Wait};
use crate::mem::PAGE_SIZE as PAGE;
use crate::ooo::{AccessRec, Env, MemPort, OooConfig, OooCore, PortAccess, Retiring, Verdict};
use crate::paging::AccessKind;
use crate::{CpuidModel, Exit, GuestMemory, MemStop, PageFault};
use serde::{Deserialize, Serialize};
use smpsim_engine::{Cycle, EpochCtx, Stats};
use smpsim_uncore::memory::MachineAddr;
use smpsim_uncore::overlay::overlay;
use smpsim_uncore::MemMsg;
use std::collections::VecDeque;

/// One oracle store not yet retired: (oracle step, VA, bytes, value).
type SpecStore = (u64, u64, u8, u64);

/// A context's oracle stores that commit has not yet retired.
#[derive(Debug, Default, Serialize, Deserialize)]
struct Overlay {
    stores: VecDeque<SpecStore>,
}

impl Overlay {
    /// Forgets everything (after a resync).
    fn clear(&mut self) {
        self.stores.clear();
    }

    /// Drops the stores of oracle steps up to `tag` (retired).
    fn retire_upto(&mut self, tag: u64) {
        while self.stores.front().is_some_and(|s| s.0 <= tag) {
            self.stores.pop_front();
        }
    }

    /// Lays the overlay's bytes over `value` (the `size` bytes at `va`),
    /// youngest last; also says whether every byte came from the overlay.
    fn apply(&self, va: u64, size: u8, value: u64) -> (u64, bool) {
        let n = usize::from(size);
        let mut bytes = value.to_le_bytes();
        let mut have = 0u32;
        for &(_, sva, ssize, sval) in &self.stores {
            let src = sval.to_le_bytes();
            have |= overlay(va, &mut bytes[..n], sva, &src[..usize::from(ssize)]);
        }
        (u64::from_le_bytes(bytes), have == (1u32 << n) - 1)
    }
}

/// The `ooo` timing model: the pipeline, each context's oracle stores not
/// yet retired, and the commit check's reused buffer.
///
/// Serializable for checkpoints (pipeline and overlays; the commit check's
/// buffer is scratch and starts empty).
#[derive(Debug, Serialize, Deserialize)]
pub(super) struct OooModel {
    pipe: Box<OooCore>,
    spec: Vec<Overlay>,
    #[serde(skip)]
    retire_log: Vec<AccessRec>,
}

impl OooModel {
    /// The pipeline `cfg` describes, for `contexts` SMT contexts.
    pub(super) fn new(cfg: OooConfig, cpuid: CpuidModel, contexts: usize) -> Self {
        OooModel {
            pipe: Box::new(
                OooCore::with_cpuid(cfg, cpuid)
                    .expect("the machine config validated the ooo config"),
            ),
            spec: (0..contexts).map(|_| Overlay::default()).collect(),
            retire_log: Vec::new(),
        }
    }
}

/// The core's side of one out-of-order cycle: the oracle's memory, the
/// pipeline's port onto the private hierarchy, and the commit check.
struct OooEnv<'a> {
    /// The core (its hierarchy, contexts and the committed state).
    core: &'a mut CoreState,
    /// Each context's oracle stores not yet retired.
    spec: &'a mut [Overlay],
    /// Reused buffer of the commit check.
    retire_log: &'a mut Vec<AccessRec>,
    /// The context whose oracle is stepping.
    cur: usize,
    /// The oracle step it is on.
    tag: u64,
}

impl OooEnv<'_> {
    fn translate(&mut self, ctx: usize, va: u64, kind: AccessKind) -> Result<u64, PageFault> {
        let c = &mut self.core.ctxs[ctx];
        c.tlb.translate(&*c.space, &self.core.mem, va, kind)
    }

    /// What the oracle reads for `size` bytes at `va` within one page.
    fn spec_load(&mut self, va: u64, size: u8) -> Result<u64, MemStop> {
        let cur = self.cur;
        let ma = self.translate(cur, va, AccessKind::Read)?;
        let has_own = !self.spec[cur].stores.is_empty();
        if has_own {
            let (over, all) = self.spec[cur].apply(va, size, 0);
            if all {
                return Ok(over);
            }
        }
        let base = match self
            .core
            .hier
            .peek_in(context(cur), MachineAddr(ma), usize::from(size))
        {
            Some(v) => v as u64,
            None => {
                self.core.hier.stats_mut().inc(self.core.ids.spec_unknown);
                0
            }
        };
        if !has_own {
            return Ok(base);
        }
        Ok(self.spec[cur].apply(va, size, base).0)
    }
}

impl GuestMemory for OooEnv<'_> {
    /// Instruction bytes, straight from machine memory (as the adapter).
    fn read(&mut self, addr: u64, buf: &mut [u8]) -> Result<(), MemStop> {
        for (i, b) in buf.iter_mut().enumerate() {
            let va = addr.wrapping_add(i as u64);
            let fault = PageFault::absent(va, false);
            let ma = self.translate(self.cur, va, AccessKind::Fetch)?;
            *b = self.core.mem.read_u8(MachineAddr(ma)).map_err(|_| fault)?;
        }
        Ok(())
    }

    fn write(&mut self, addr: u64, data: &[u8]) -> Result<(), MemStop> {
        write_as_stores(self, addr, data)
    }

    fn load(&mut self, addr: u64, size: u8) -> Result<u64, MemStop> {
        let mut bytes = [0u8; 8];
        for (a, at, len) in page_pieces(addr, usize::from(size)) {
            let piece = u8::try_from(len).expect("at most 8 bytes");
            let v = self.spec_load(a, piece)?;
            bytes[at..at + len].copy_from_slice(&v.to_le_bytes()[..len]);
        }
        Ok(u64::from_le_bytes(bytes))
    }

    fn store(&mut self, addr: u64, size: u8, value: u64) -> Result<(), MemStop> {
        let last = addr + u64::from(size) - 1;
        for va in [addr, last] {
            self.translate(self.cur, va, AccessKind::Write)?;
        }
        self.spec[self.cur]
            .stores
            .push_back((self.tag, addr, size, value));
        Ok(())
    }
}

impl MemPort for OooEnv<'_> {
    fn load(&mut self, now: u64, ctx: usize, addr: u64, size: u8) -> PortAccess {
        let Ok(ma) = self.translate(ctx, addr, AccessKind::Read) else {
            return PortAccess::Done { ready: now + 1 };
        };
        let size = u64::from(size.clamp(1, 16)).min(PAGE - addr % PAGE);
        self.core
            .hier
            .load_in(
                Cycle(now),
                context(ctx),
                MachineAddr(ma),
                usize::try_from(size).expect("at most 16"),
            )
            .into()
    }

    /// Stores reach the store buffer at commit through the adapter.
    fn store(&mut self, _: u64, _: usize, _: u64, _: u8, _: u64) -> bool {
        true
    }

    fn take_completions(&mut self, out: &mut Vec<(u32, u64)>) {
        out.append(&mut self.core.port_done);
    }

    /// Read-for-ownership when a store's address is known.
    fn store_address(&mut self, now: u64, ctx: usize, addr: u64) {
        if let Ok(ma) = self.translate(ctx, addr, AccessKind::Write) {
            self.core.hier.prefetch_own(Cycle(now), MachineAddr(ma));
        }
    }

    fn stores_drained(&self, ctx: usize) -> bool {
        self.core.hier.store_buffer_empty_in(context(ctx))
    }

    fn fetch(&mut self, now: u64, ctx: usize, addr: u64) -> PortAccess {
        let Ok(ma) = self.translate(ctx, addr, AccessKind::Fetch) else {
            return PortAccess::Done { ready: now };
        };
        self.core.hier.fetch(Cycle(now), MachineAddr(ma), 1).into()
    }

    fn retire(&mut self, now: u64, ctx: usize, r: &Retiring<'_>) -> Verdict {
        let core = &mut *self.core;
        // A refused access (no MSHR or way, another context's lock) is
        // retried every cycle: the pipeline runs cycle by cycle anyway.
        if core.ctxs[ctx].wait == Wait::Stall {
            core.ctxs[ctx].wait = Wait::None;
        }
        if core.ctxs[ctx].wait != Wait::None {
            return Verdict::Wait;
        }
        core.now = core.now.max(Cycle(now));
        let mut log = std::mem::take(self.retire_log);
        let done = core.execute(ctx, true, Some(&mut log));
        let verdict = match done {
            Executed::Blocked => Verdict::Wait,
            Executed::Done { exit, .. } => {
                self.spec[ctx].retire_upto(r.tag);
                let next = core.ctxs[ctx].regs.rip;
                let n = r.accesses.len();
                // The oracle records at most six accesses of an instruction.
                let same_mem = log.len().min(6) == n && log[..n] == *r.accesses;
                core.finish(ctx, exit.clone(), Cycle(now));
                // What the machine made of it: `hlt` becomes the #GP a PV
                // kernel gets (finish parked the context with it).
                let truth = match exit {
                    Exit::InsnLimit => None,
                    Exit::Halt => match &core.ctxs[ctx].run {
                        Run::Trapped {
                            trap: Trap::Fault(f),
                            ..
                        } => Some(Exit::Fault(f.clone())),
                        _ => Some(Exit::Halt),
                    },
                    e => Some(e),
                };
                let agree = same_mem && next == r.next_rip && truth.as_ref() == r.exit;
                if agree {
                    Verdict::Agree
                } else {
                    self.spec[ctx].clear();
                    Verdict::Diverged(Box::new(core.ctxs[ctx].regs.clone()), truth)
                }
            }
        };
        *self.retire_log = log;
        verdict
    }
}

impl Env for OooEnv<'_> {
    fn select(&mut self, ctx: usize, tag: u64) {
        self.cur = ctx;
        self.tag = tag;
    }
}

impl TimingModel for OooModel {
    fn model(&self) -> Model {
        Model::Ooo
    }

    /// Cycle by cycle while a context runs (messages and store drains
    /// handled at their cycle), skipping to the next event while none does.
    fn run_epoch(&mut self, core: &mut CoreState, ctx: &mut EpochCtx<'_, MemMsg>) {
        let end = ctx.epoch_end();
        while core.now < end {
            ooo_events(core, ctx);
            if self.pipe.any_running() {
                self.pipe.set_now(core.now.get());
                self.pipe.cycle_in(&mut OooEnv {
                    core: &mut *core,
                    spec: &mut self.spec,
                    retire_log: &mut self.retire_log,
                    cur: 0,
                    tag: 0,
                });
                core.now += 1;
                continue;
            }
            let next = [ctx.peek_time(), core.hier.next_activity()]
                .into_iter()
                .flatten()
                .min()
                .filter(|&t| t < end);
            match next {
                Some(t) => core.now = t.max(core.now + 1),
                None => core.now = end,
            }
        }
        core.hier.flush(ctx);
    }

    fn next_activity(&self, core: &CoreState) -> Option<Cycle> {
        self.pipe.any_running().then_some(core.now)
    }

    /// Restarts context `t`'s pipeline from its committed registers.
    fn resume(&mut self, core: &mut CoreState, t: usize, at: Cycle) {
        let c = &core.ctxs[t];
        if let Some(asid) = c.asid {
            self.pipe.set_address_space(t, asid);
        }
        self.pipe.set_now(core.now.get());
        self.pipe.resync(t, &c.regs, at.get());
        self.spec[t].clear();
    }

    /// Drops context `t`'s in-flight instructions and stops its pipeline.
    fn halt(&mut self, t: usize) {
        self.pipe.halt(t);
        self.spec[t].clear();
    }

    fn invalidate_code(&mut self, va: u64) {
        self.pipe.invalidate_code(va);
    }

    fn stats(&self) -> Option<&Stats> {
        Some(self.pipe.stats())
    }

    fn flush_stats(&mut self) {
        self.pipe.flush_stats();
    }
}

/// Handles the messages and store drains due by now, then wakes what
/// they unblocked.
fn ooo_events(core: &mut CoreState, ctx: &mut EpochCtx<'_, MemMsg>) {
    let mut msgs = false;
    while ctx.peek_time().is_some_and(|t| t <= core.now) {
        let m = ctx.pop_due().expect("peeked");
        core.hier.handle_message(core.now, m.payload);
        msgs = true;
    }
    let drained = core.hier.next_activity().is_some_and(|t| t <= core.now);
    if drained {
        core.hier.advance(core.now);
    }
    if msgs || drained {
        core.on_completions();
        core.wake_retries(msgs, drained);
    }
}

#[cfg(test)]
mod tests {
    use super::Overlay;

    #[test]
    fn overlay_youngest_store_wins_and_retires_by_step() {
        let mut o = Overlay::default();
        o.stores.push_back((1, 0x1000, 8, 0x1111_1111_1111_1111));
        o.stores.push_back((2, 0x1002, 2, 0xaabb));
        // Bytes 2..4 from step 2, the rest from step 1.
        assert_eq!(o.apply(0x1000, 8, 0), (0x1111_1111_aabb_1111, true));
        // Bytes past the stores come from the base value.
        assert_eq!(o.apply(0x1006, 4, 0xdead_beef), (0xdead_1111, false));
        o.retire_upto(1);
        assert_eq!(o.apply(0x1000, 4, 0x2222_2222), (0xaabb_2222, false));
        o.retire_upto(2);
        assert_eq!(o.apply(0x1000, 8, 7), (7, false));
        o.stores.push_back((3, 0x2000, 1, 0x5a));
        o.clear();
        assert_eq!(o.apply(0x2000, 1, 0), (0, false));
    }
}
