//! The back end: completions, branch resolution, commit, issue,
//! rename/dispatch and squashing.

use super::uopinfo::{Class, NONE_REG};
use super::{AccessRec, BrKind, MemPort, OooCore, PortAccess, Retiring, Verdict};

/// A ready cycle not known yet (a producer has not issued, or its load is
/// in flight).
const UNKNOWN: u64 = u64::MAX;

/// One issue-queue entry.
///
/// A producer's ready cycle, once known, never changes while it lives (a
/// slot's `done` goes from unknown to a cycle once; a producer that
/// commits or goes was ready by then, and a squashed producer takes its
/// younger consumers with it), so the sources' ready cycle is computed
/// once every producer's is known and kept.
#[derive(Clone, Copy, Debug, serde::Serialize, serde::Deserialize)]
pub(super) struct IqEntry {
    /// The uop.
    seq: u64,
    /// Cycle its sources are all ready, or `UNKNOWN`.
    rdy: u64,
    /// While `rdy` is unknown: the producer that was unknown at the last
    /// look (0: look now).
    wait: u64,
}
use crate::arch::ArchState;
use crate::func::Exit;

/// Why a uop could not dispatch.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Stall {
    Rob,
    Iq,
    Lq,
    Sq,
    Regs,
}

fn overlaps(a: u64, an: u8, b: u64, bn: u8) -> bool {
    an != 0 && bn != 0 && a < b.wrapping_add(u64::from(bn)) && b < a.wrapping_add(u64::from(an))
}

fn covers(st: u64, sn: u8, ld: u64, ln: u8) -> bool {
    st <= ld && ld.wrapping_add(u64::from(ln)) <= st.wrapping_add(u64::from(sn))
}

fn mispredict_index(k: BrKind) -> usize {
    match k {
        BrKind::Cond | BrKind::None => 0,
        BrKind::Jump => 1,
        BrKind::Call => 2,
        BrKind::Ret => 3,
        BrKind::Indirect => 4,
        BrKind::Rep => 5,
    }
}

impl OooCore {
    fn cap(&self, size: usize) -> usize {
        if self.cfg.static_partition {
            size / self.cfg.contexts
        } else {
            size
        }
    }

    fn free_regs(&self) -> usize {
        let used: usize = self.ctxs.iter().map(|x| x.regs).sum();
        self.cfg.phys_regs - 32 * self.cfg.contexts - used
    }

    /// Load completions from the port.
    pub(super) fn collect_completions(&mut self, port: &mut dyn MemPort) {
        let mut done = std::mem::take(&mut self.completions);
        done.clear();
        port.take_completions(&mut done);
        let hidden = self.cfg.icache_hidden;
        for &(id, ready) in &done {
            if let Some(x) = self
                .ctxs
                .iter_mut()
                .find(|x| x.ifetch_wait.is_some_and(|w| w.0 == id))
            {
                let (_, line) = x.ifetch_wait.take().expect("found by id");
                x.fetch_line = line;
                x.icache_ready = ready.saturating_sub(hidden).max(self.now);
                continue;
            }
            if let Some(p) = self.waiting.iter().position(|w| w.0 == id) {
                let (_, seq) = self.waiting.swap_remove(p);
                let now = self.now;
                let s = self.slot_mut(seq);
                if s.seq == seq {
                    s.done = ready.max(now);
                }
            }
        }
        self.completions = done;
    }

    /// Resolves mispredicted branches whose result is ready.
    pub(super) fn resolve_branches(&mut self) {
        for c in 0..self.ctxs.len() {
            let Some(b) = self.ctxs[c].redirect else {
                continue;
            };
            if self.ready_at(b) > self.now {
                continue;
            }
            let insn = self.slot(b).insn;
            self.squash_from(c, insn + 1, false);
            let now = self.now;
            let pen = self.cfg.redirect_penalty;
            let x = &mut self.ctxs[c];
            let r = x
                .insns
                .iter()
                .rev()
                .find(|r| r.seq == insn)
                .expect("a mispredicted branch is in flight until it commits");
            let (kind, ckpt, ft, taken) = (r.kind, r.ckpt, r.ft, r.pred.is_some_and(|p| !p.taken));
            x.bp.restore(&ckpt);
            match kind {
                BrKind::Cond => x.bp.push_history(taken),
                BrKind::Call => x.bp.ras_push(ft),
                BrKind::Ret => {
                    let _ = x.bp.ras_pop();
                }
                _ => {}
            }
            x.redirect = None;
            x.wrong_path = false;
            x.fetch_stall_until = now + pen;
            x.reset_ifetch(now);
            self.stats.inc(self.ids.mispredict(mispredict_index(kind)));
        }
    }

    /// In-order commit.
    pub(super) fn commit(&mut self, port: &mut dyn MemPort) {
        let mut budget = self.cfg.commit_width;
        let n = self.ctxs.len();
        for k in 0..n {
            let c = (self.rr + k) % n;
            while budget > 0 {
                let Some(&seq) = self.ctxs[c].rob.front() else {
                    break;
                };
                let s = self.slot(seq);
                let (done, data, st, last) = (s.done, s.data, s.st, s.last);
                if done > self.now || (data != 0 && self.ready_at(data) > self.now) {
                    break;
                }
                if st.1 != 0 && !port.store(self.now, c, st.0, st.1, st.2) {
                    self.stats.inc(self.ids.stall_store);
                    break;
                }
                let verdict = if last {
                    self.ask_retire(c, port)
                } else {
                    Verdict::Agree
                };
                match verdict {
                    Verdict::Wait => {
                        self.stats.inc(self.ids.commit_wait);
                        break;
                    }
                    Verdict::Agree => {
                        budget -= 1;
                        self.retire_uop(c, seq);
                        if last && self.retire_insn(c) {
                            break;
                        }
                    }
                    Verdict::Diverged(state, exit) => {
                        budget -= 1;
                        self.retire_uop(c, seq);
                        self.retire_diverged(c, &state, exit);
                        break;
                    }
                }
            }
        }
    }

    /// Asks the port's commit hook about the oldest instruction of `c`.
    fn ask_retire(&mut self, c: usize, port: &mut dyn MemPort) -> Verdict {
        let r = self.ctxs[c]
            .insns
            .front()
            .expect("a committing uop belongs to an instruction");
        let mut acc = [AccessRec::default(); super::MAX_MEM];
        let n = usize::from(r.nmem);
        for (a, m) in acc.iter_mut().zip(&r.mem[..n]) {
            *a = AccessRec {
                addr: m.addr,
                size: m.size,
                write: m.write,
            };
        }
        let info = Retiring {
            rip: r.rip,
            next_rip: r.next_rip,
            exit: r.exit.as_deref(),
            accesses: &acc[..n],
            tag: r.tag,
        };
        port.retire(self.now, c, &info)
    }

    /// Retires the oldest instruction of `c` with the commit hook's outcome
    /// instead of the oracle's: younger instructions go, the oracle
    /// restarts from `state`, and an exit stops the context.
    fn retire_diverged(&mut self, c: usize, state: &ArchState, exit: Option<Exit>) {
        self.stats.inc(self.ids.diverged);
        let seq = self.ctxs[c]
            .insns
            .pop_front()
            .expect("a committed uop belongs to an instruction")
            .seq;
        if !matches!(exit, Some(Exit::Fault(_))) {
            self.ctxs[c].retired += 1;
            self.stats.inc(self.ids.insns);
        }
        self.squash_from(c, seq + 1, false);
        let now = self.now;
        let pen = self.cfg.redirect_penalty;
        let x = &mut self.ctxs[c];
        x.replay.clear();
        x.state = state.clone();
        x.oracle_blocked = false;
        x.wrong_path = false;
        x.redirect = None;
        x.fetch_stall_until = now + pen;
        x.reset_ifetch(now);
        if let Some(e) = exit {
            x.running = false;
            x.exit = Some(e);
        }
    }

    fn retire_uop(&mut self, c: usize, seq: u64) {
        let writes = self.slot(seq).dsts[0] != NONE_REG;
        let x = &mut self.ctxs[c];
        x.rob.pop_front();
        if x.lq.front() == Some(&seq) {
            x.lq.pop_front();
            self.lq_total -= 1;
        }
        if x.sq.front() == Some(&seq) {
            x.sq.pop_front();
            self.sq_total -= 1;
        }
        if writes {
            x.regs -= 1;
        }
        // Free: a slot is live only while its `seq` is set (the next uop
        // to take it overwrites every field).
        self.slot_mut(seq).seq = 0;
        self.stats.inc(self.ids.uops);
    }

    /// Retires the oldest instruction of `c`; true if the context stopped.
    fn retire_insn(&mut self, c: usize) -> bool {
        let x = &mut self.ctxs[c];
        let r = x
            .insns
            .front_mut()
            .expect("a committed uop belongs to an instruction");
        debug_assert!(!r.wrong, "wrong-path instructions never commit");
        let (kind, pred, rip, next_rip) = (r.kind, r.pred, r.rip, r.next_rip);
        let exit = r.exit.take();
        let mispredicted = r.mispredicted;
        x.insns.pop_front();
        if !matches!(exit.as_deref(), Some(Exit::Fault(_))) {
            x.retired += 1;
            self.stats.inc(self.ids.insns);
        }
        let ft_taken = kind != BrKind::None && kind != BrKind::Rep;
        if let (BrKind::Cond, Some(p)) = (kind, pred) {
            let taken = mispredicted != p.taken;
            x.bp.train_dir(rip, &p, taken);
            if taken {
                x.bp.btb_update(rip, next_rip);
            }
        } else if ft_taken && kind != BrKind::Ret {
            x.bp.btb_update(rip, next_rip);
        }
        if let Some(e) = exit {
            x.running = false;
            x.exit = Some(*e);
            return true;
        }
        false
    }

    /// Oldest-first issue from the shared issue queue.
    pub(super) fn issue(&mut self, port: &mut dyn MemPort) {
        let units = [
            self.cfg.units.alu,
            self.cfg.units.mul,
            self.cfg.units.div,
            self.cfg.units.load,
            self.cfg.units.store,
            self.cfg.units.fp,
            self.cfg.units.fp_div,
        ];
        let mut used = [0usize; 7];
        let mut issued = 0;
        let mut violations: Vec<(usize, (u64, u64))> = Vec::new();
        let now = self.now;
        for i in 0..self.iq.len() {
            if issued >= self.cfg.issue_width {
                break;
            }
            let e = self.iq[i];
            let seq = e.seq;
            if e.rdy > now {
                if e.rdy != UNKNOWN {
                    continue;
                }
                // Sources not all known: look again only once the one that
                // was unknown last time is.
                if self.ready_at(e.wait) == UNKNOWN {
                    continue;
                }
                let mut r = 0;
                let mut wait = 0;
                for &t in &self.slot(seq).srcs {
                    let d = self.ready_at(t);
                    if d == UNKNOWN {
                        wait = t;
                        r = UNKNOWN;
                        break;
                    }
                    r = r.max(d);
                }
                let e = &mut self.iq[i];
                e.rdy = r;
                e.wait = wait;
                if r > now {
                    continue;
                }
            }
            let sl = self.slot(seq);
            let (class, lat, ctx, st) = (sl.class, sl.lat, sl.ctx, sl.st);
            let unit = match class {
                Class::Mul => 1,
                Class::Div => 2,
                Class::Load => 3,
                Class::Store => 4,
                Class::FpAdd | Class::FpMul | Class::Convert | Class::Vec | Class::Shuffle => 5,
                Class::FpDiv => 6,
                _ => 0,
            };
            if used[unit] >= units[unit] {
                continue;
            }
            // The unpipelined dividers: a free one, or wait.
            let busy = match class {
                Class::Div => Some(&self.div_busy),
                Class::FpDiv => Some(&self.fp_div_busy),
                _ => None,
            };
            let mut div = None;
            if let Some(busy) = busy {
                div = busy.iter().position(|&b| b <= now);
                if div.is_none() {
                    continue;
                }
            }
            if class == Class::Fence {
                let c = usize::from(ctx);
                if self.ctxs[c].rob.front() != Some(&seq) || !port.stores_drained(c) {
                    continue;
                }
                self.ctxs[c].fences.retain(|&f| f != seq);
            }
            let done = match class {
                Class::Load => match self.exec_load(seq, port) {
                    Some(d) => d,
                    None => continue,
                },
                _ => now + lat,
            };
            if let Some(d) = div {
                let busy = if class == Class::FpDiv {
                    &mut self.fp_div_busy
                } else {
                    &mut self.div_busy
                };
                busy[d] = now + lat;
            }
            used[unit] += 1;
            issued += 1;
            self.issued_at.push(i);
            let sl = self.slot_mut(seq);
            sl.done = done;
            sl.issued = true;
            sl.in_iq = false;
            if st.1 != 0 {
                port.store_address(now, usize::from(ctx), st.0);
                if let Some(v) = self.check_violation(seq) {
                    violations.push((usize::from(ctx), v));
                }
            }
        }
        // Remove what issued: one pass from the first issued position,
        // keeping the order of the rest.
        let mut gone = std::mem::take(&mut self.issued_at);
        let len = self.iq.len();
        for (k, &p) in gone.iter().enumerate() {
            let c = usize::from(self.slot(self.iq[p].seq).ctx);
            self.ctxs[c].iq_count -= 1;
            // Close the gaps left so far: the run after this removal moves
            // down by the number of removals up to it.
            let end = gone.get(k + 1).copied().unwrap_or(len);
            self.iq.copy_within(p + 1..end, p - k);
        }
        self.iq.truncate(len - gone.len());
        gone.clear();
        self.issued_at = gone;
        for (c, (insn, rip)) in violations {
            self.stats.inc(self.ids.violations);
            self.ctxs[c].alias_learn(rip);
            self.squash_from(c, insn, true);
        }
    }

    /// Executes a load: forwarding or memory. `None` if it cannot issue now.
    fn exec_load(&mut self, seq: u64, port: &mut dyn MemPort) -> Option<u64> {
        let s = self.slot(seq);
        let (ld, rip, ctx) = (s.ld, s.rip, s.ctx);
        let now = self.now;
        if ld.1 == 0 {
            return Some(now + self.cfg.latency.wrong_path_load);
        }
        let c = usize::from(ctx);
        if self.ctxs[c].fences.iter().any(|&f| f < seq) {
            return None; // an older fence has not issued
        }
        for k in (0..self.ctxs[c].sq.len()).rev() {
            let q = self.ctxs[c].sq.get(k);
            if q >= seq {
                continue;
            }
            let st = self.slot(q);
            if !st.issued {
                if self.cfg.mem_dep_speculation && !self.ctxs[c].alias_predicted(rip) {
                    continue;
                }
                return None;
            }
            if overlaps(st.st.0, st.st.1, ld.0, ld.1) {
                if covers(st.st.0, st.st.1, ld.0, ld.1) {
                    let data = if st.data == 0 {
                        0
                    } else {
                        self.ready_at(st.data)
                    };
                    if data == u64::MAX {
                        return None; // the store's data is not computed yet
                    }
                    let ready = st.done.max(data).max(now) + self.cfg.latency.forward;
                    self.slot_mut(seq).fwd_from = q;
                    self.stats.inc(self.ids.stlf);
                    return Some(ready);
                }
                return None; // partial overlap: wait for the store to commit
            }
        }
        match port.load(now, c, ld.0, ld.1) {
            PortAccess::Done { ready } => Some(ready.max(now + 1)),
            PortAccess::Pending(id) => {
                self.waiting.push((id, seq));
                Some(u64::MAX)
            }
            PortAccess::Stall => {
                self.stats.inc(self.ids.stall_mshr);
                None
            }
        }
    }

    /// The oldest younger load that already read stale data, as an
    /// instruction sequence number.
    fn check_violation(&self, st_seq: u64) -> Option<(u64, u64)> {
        let st = self.slot(st_seq);
        let c = usize::from(st.ctx);
        self.ctxs[c]
            .lq
            .iter()
            .map(|&q| self.slot(q))
            .find(|l| {
                l.seq > st_seq
                    && l.issued
                    && l.fwd_from < st_seq
                    && overlaps(st.st.0, st.st.1, l.ld.0, l.ld.1)
            })
            .map(|l| (l.insn, l.rip))
    }

    /// Rename and dispatch.
    pub(super) fn dispatch(&mut self) {
        let mut budget = self.cfg.dispatch_width;
        let n = self.ctxs.len();
        let mut stall = None;
        for k in 0..n {
            let c = (self.rr + k) % n;
            while budget > 0 {
                let Some(&seq) = self.ctxs[c].fq.front() else {
                    break;
                };
                if self.slot(seq).fetched_at + self.cfg.frontend_depth > self.now {
                    break;
                }
                if let Err(why) = self.dispatch_one(c, seq) {
                    stall = stall.or(Some(why));
                    break;
                }
                budget -= 1;
            }
        }
        if let Some(why) = stall {
            let id = match why {
                Stall::Rob => self.ids.stall_rob,
                Stall::Iq => self.ids.stall_iq,
                Stall::Lq => self.ids.stall_lq,
                Stall::Sq => self.ids.stall_sq,
                Stall::Regs => self.ids.stall_regs,
            };
            self.stats.inc(id);
        }
    }

    fn dispatch_one(&mut self, c: usize, seq: u64) -> Result<(), Stall> {
        let s = self.slot(seq);
        let (class, st_size, dsts, regs, data_reg) = (s.class, s.st.1, s.dsts, s.srcs, s.data);
        let x = &self.ctxs[c];
        let is_ld = class == Class::Load;
        let is_st = st_size != 0;
        if x.rob.len() >= self.cfg.rob_per_context {
            return Err(Stall::Rob);
        }
        if class != Class::None
            && (self.iq.len() >= self.cfg.iq_size || x.iq_count >= self.cap(self.cfg.iq_size))
        {
            return Err(Stall::Iq);
        }
        if is_ld && (self.lq_total >= self.cfg.lq_size || x.lq.len() >= self.cap(self.cfg.lq_size))
        {
            return Err(Stall::Lq);
        }
        if is_st && (self.sq_total >= self.cfg.sq_size || x.sq.len() >= self.cap(self.cfg.sq_size))
        {
            return Err(Stall::Sq);
        }
        let writes = dsts[0] != NONE_REG;
        if writes && self.free_regs() == 0 {
            return Err(Stall::Regs);
        }
        let now = self.now;
        let x = &mut self.ctxs[c];
        x.fq.pop_front();
        let mut srcs = [0u64; 5];
        for (k, &r) in regs.iter().enumerate() {
            let r = u8::try_from(r).expect("register numbers before rename");
            if r != NONE_REG {
                srcs[k] = x.rat[usize::from(r)];
            }
        }
        let data = u8::try_from(data_reg).expect("register number before rename");
        let data = if data == NONE_REG {
            0
        } else {
            x.rat[usize::from(data)]
        };
        for &d in dsts.iter().filter(|&&d| d != NONE_REG) {
            x.rat[usize::from(d)] = seq;
        }
        if writes {
            x.regs += 1;
        }
        x.rob.push_back(seq);
        if is_ld {
            x.lq.push_back(seq);
            self.lq_total += 1;
        }
        if is_st {
            x.sq.push_back(seq);
            self.sq_total += 1;
        }
        if class == Class::Fence {
            x.fences.push(seq);
        }
        let in_iq = class != Class::None;
        if in_iq {
            x.iq_count += 1;
            self.iq.push(IqEntry {
                seq,
                rdy: UNKNOWN,
                wait: 0,
            });
        }
        let sl = self.slot_mut(seq);
        sl.srcs = srcs;
        sl.data = data;
        sl.in_iq = in_iq;
        if !in_iq {
            sl.done = now;
            sl.issued = true;
        }
        Ok(())
    }

    /// Removes every uop of context `c` from instruction `first` on.
    /// Correct-path instructions go to the replay queue if `replay`.
    pub(super) fn squash_from(&mut self, c: usize, first: u64, replay: bool) {
        let mask = self.mask;
        let mut squashed = 0u64;
        let mut lq_freed = 0;
        let mut sq_freed = 0;
        {
            let slab = &mut self.slab;
            let x = &mut self.ctxs[c];
            let young = |q: &u64, slab: &Vec<super::Slot>| slab[(q & mask) as usize].insn >= first;
            while x.fq.back().is_some_and(|q| young(q, slab)) {
                let q = x.fq.pop_back().expect("checked");
                slab[(q & mask) as usize].seq = 0;
                squashed += 1;
            }
            while x.lq.back().is_some_and(|q| young(q, slab)) {
                x.lq.pop_back();
                lq_freed += 1;
            }
            while x.sq.back().is_some_and(|q| young(q, slab)) {
                x.sq.pop_back();
                sq_freed += 1;
            }
            while x.rob.back().is_some_and(|q| young(q, slab)) {
                let q = x.rob.pop_back().expect("checked");
                let s = &mut slab[(q & mask) as usize];
                if s.dsts[0] != NONE_REG {
                    x.regs -= 1;
                }
                if s.in_iq {
                    x.iq_count -= 1;
                }
                s.seq = 0;
                squashed += 1;
            }
        }
        self.lq_total -= lq_freed;
        self.sq_total -= sq_freed;
        let slab = &self.slab;
        self.iq
            .retain(|e| slab[(e.seq & mask) as usize].seq == e.seq);
        let x = &mut self.ctxs[c];
        let mut oldest = None;
        while x.insns.back().is_some_and(|r| r.seq >= first) {
            let mut r = x.insns.pop_back().expect("checked");
            oldest = Some(r.ckpt);
            if replay && !r.wrong {
                r.mispredicted = false;
                r.pred = None;
                x.replay.push_front(r);
            }
        }
        if let Some(ck) = oldest {
            x.bp.restore(&ck);
        }
        if x.redirect
            .is_some_and(|b| self.slab[(b & mask) as usize].seq != b)
        {
            x.redirect = None;
        }
        x.reset_ifetch(self.now);
        x.fences
            .retain(|&f| self.slab[(f & mask) as usize].seq == f);
        if replay {
            x.wrong_path = x.redirect.is_some();
            if x.fetch_stall_until == u64::MAX {
                x.fetch_stall_until = self.now;
            }
        } else if x.fetch_stall_until == u64::MAX {
            x.fetch_stall_until = self.now;
        }
        x.rat.fill(0);
        for &q in x.rob.iter() {
            let s = &self.slab[(q & mask) as usize];
            for &d in s.dsts.iter().filter(|&&d| d != NONE_REG) {
                x.rat[usize::from(d)] = q;
            }
        }
        self.stats.add(self.ids.squashed, squashed);
    }
}
