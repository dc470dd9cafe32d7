//! The directory-facing side: grants, invalidations, forwards, put acks.

use super::*;

impl PrivateHierarchy {
    /// Handles a message from the directory arriving at `now` (apply late
    /// messages at the core's current time). Completions it causes appear
    /// in [`PrivateHierarchy::take_completions`]; replies wait in the
    /// outbox for [`PrivateHierarchy::flush`].
    pub fn handle_message(&mut self, now: Cycle, msg: MemMsg) {
        self.blocked = false;
        match msg {
            MemMsg::Data {
                line,
                grant,
                served,
            } => self.on_data(now, line, grant, served),
            MemMsg::Inv { line } | MemMsg::Fwd { line, .. } if self.pinned(line) => {
                self.deferred.push(msg);
            }
            MemMsg::Inv { line } => self.on_inv(now, line),
            MemMsg::Fwd { line, kind } => self.on_fwd(now, line, kind),
            MemMsg::PutAck { line } => self.on_put_ack(now, line),
            other => panic!(
                "{} received {other:?}, which only the directory receives",
                self.core
            ),
        }
        if self.mshrs.values().any(|m| !m.issued) {
            self.issue_waiting(now);
        }
        self.advance(now);
    }

    fn on_data(&mut self, now: Cycle, line: LineAddr, grant: Grant, served: Level) {
        let mshr = self
            .mshrs
            .remove(&line)
            .unwrap_or_else(|| panic!("{}: grant for {line} without a miss", self.core));
        let e = self
            .l2
            .probe_mut(line)
            .expect("a line with an MSHR has its way");
        e.st = match (e.st, grant) {
            (PState::IS, Grant::S) => PState::S,
            (PState::IS, Grant::E) => PState::E,
            (PState::IM | PState::SM | PState::OM, Grant::M) => PState::M,
            (st, g) => panic!("{}: grant {g:?} for {line} in {st:?}", self.core),
        };
        let st = e.st;
        self.perm(line, st.perm());
        self.l2.touch(line);
        match mshr.prefetch {
            // Demand-miss figures stay about demand misses.
            Some(PfLevel::L1d) => self.fill_l1_as(Stream::Data, line, true),
            Some(PfLevel::L2) => {}
            None => self.demand_granted(now - mshr.start, served),
        }
        for id in mshr.waiters {
            self.serve_waiter(now, id, line, served);
        }
    }

    fn demand_granted(&mut self, latency: u64, served: Level) {
        self.stats.record(self.ids.miss_latency, latency);
        if served == Level::Remote {
            self.stats.inc(self.ids.coherence_misses);
            self.stats.record(self.ids.coherence_latency, latency);
        }
    }

    /// A waiting access gets its bytes of `line`; completes when whole.
    fn serve_waiter(&mut self, now: Cycle, id: ReqId, line: LineAddr, served: Level) {
        let mut op = self.ops.remove(&id).expect("waiter has an op");
        self.fill_part(now, &mut op, line);
        self.fill_l1(op.stream, line);
        op.level = op.level.max(served);
        op.parts_left -= 1;
        if op.parts_left > 0 {
            self.ops.insert(id, op);
            return;
        }
        let mut b = [0u8; 16];
        b[..op.size].copy_from_slice(&op.bytes[..op.size]);
        self.stats
            .record(self.ids.load_to_use(op.level), now - op.start);
        self.done.push(Completion {
            id,
            ready: now,
            value: u128::from_le_bytes(b),
            level: op.level,
        });
    }

    fn on_inv(&mut self, now: Cycle, line: LineAddr) {
        self.stats.inc(self.ids.invs_received);
        match self.l2.probe(line).map(|e| e.st) {
            Some(PState::S) => {
                self.l2.invalidate(line, &mut self.stats);
                self.drop_l1(line);
                self.perm(line, Perm::None);
            }
            Some(PState::SM) => {
                self.l2.probe_mut(line).expect("present").st = PState::IM;
                self.drop_l1(line);
                self.perm(line, Perm::None);
            }
            // Stale: the copy is already gone or not yet granted.
            Some(PState::IS | PState::IM) | None => {}
            Some(st) => panic!(
                "{}: invalidation of {line} held as owner in {st:?}",
                self.core
            ),
        }
        self.send_home(
            now,
            0,
            MemMsg::InvAck {
                core: self.core,
                line,
            },
        );
    }

    fn on_fwd(&mut self, now: Cycle, line: LineAddr, kind: FwdKind) {
        self.stats.inc(self.ids.fwds_received);
        let (dirty, kept) = match self.l2.probe(line).map(|e| e.st) {
            Some(st) => self.fwd_present(line, st, kind),
            None => self.fwd_evicting(line),
        };
        let msg = MemMsg::FwdAck {
            core: self.core,
            line,
            dirty,
            kept,
        };
        self.send_home(now, self.lat[2], msg);
    }

    /// A forward for a line in the L2 (the protocol's owner states).
    fn fwd_present(&mut self, line: LineAddr, st: PState, kind: FwdKind) -> (bool, Kept) {
        let moesi = self.protocol == Protocol::Moesi;
        let dirty = matches!(st, PState::M | PState::O | PState::OM);
        let (next, kept) = match (st, kind) {
            (PState::E, FwdKind::GetS) => (Some(PState::S), Kept::Shared),
            (PState::M, FwdKind::GetS) if moesi => (Some(PState::O), Kept::Owner),
            (PState::M, FwdKind::GetS) => (Some(PState::S), Kept::Shared),
            (PState::O | PState::OM, FwdKind::GetS) => (Some(st), Kept::Owner),
            (PState::E | PState::M | PState::O, FwdKind::GetM) => (None, Kept::Nothing),
            (PState::OM, FwdKind::GetM) => (Some(PState::IM), Kept::Nothing),
            (st, k) => panic!("{}: forward {k:?} for {line} held in {st:?}", self.core),
        };
        match next {
            Some(PState::IM) => {
                self.l2.probe_mut(line).expect("present").st = PState::IM;
                self.drop_l1(line);
            }
            Some(s) => self.l2.probe_mut(line).expect("present").st = s,
            None => {
                self.l2.invalidate(line, &mut self.stats);
                self.drop_l1(line);
            }
        }
        self.perm(line, next.map_or(Perm::None, PState::perm));
        // Data goes back to the L3 only when the owner gives the line up.
        (dirty && kept != Kept::Owner, kept)
    }

    /// A forward for a line this core is evicting: PutM crossed the
    /// forward. Answer from the eviction buffer; the put will be stale.
    fn fwd_evicting(&mut self, line: LineAddr) -> (bool, Kept) {
        match self.wb.get(&line).copied() {
            Some(WbState::MI(held)) => {
                self.wb.insert(line, WbState::II);
                (matches!(held, Held::M | Held::O), Kept::Nothing)
            }
            other => panic!(
                "{}: forward for {line}, not held (eviction state {other:?})",
                self.core
            ),
        }
    }

    fn on_put_ack(&mut self, _now: Cycle, line: LineAddr) {
        self.wb
            .remove(&line)
            .unwrap_or_else(|| panic!("{}: put ack for {line} with no eviction", self.core));
    }

    /// Sends the misses that waited for an eviction of their line to be
    /// acknowledged, or for a way of their set to become evictable.
    fn issue_waiting(&mut self, now: Cycle) {
        let waiting: Vec<LineAddr> = self
            .mshrs
            .iter()
            .filter(|(l, m)| !m.issued && !self.wb.contains_key(l))
            .map(|(l, _)| *l)
            .collect();
        for line in waiting {
            self.issue(now, line);
        }
    }
}
