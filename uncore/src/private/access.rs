//! The core-facing side: loads, fetches, stores, locked operations and
//! store-buffer draining.

use super::*;
use crate::ids::ContextId;
use crate::overlay::overlay;

/// The lines an access touches: `(line, first byte index, byte count)`.
fn parts(addr: u64, size: usize) -> impl Iterator<Item = (LineAddr, usize, usize)> {
    let end = addr + size as u64;
    let first = addr / LINE_SIZE;
    let last = (end - 1) / LINE_SIZE;
    (first..=last).map(move |l| {
        let lo = (l * LINE_SIZE).max(addr);
        let hi = ((l + 1) * LINE_SIZE).min(end);
        (LineAddr(l), (lo - addr) as usize, (hi - lo) as usize)
    })
}

fn mask(from: usize, len: usize) -> u16 {
    let bits = if len >= 16 {
        u32::MAX
    } else {
        (1u32 << len) - 1
    };
    u16::try_from((bits << from) & 0xFFFF).expect("masked to 16 bits")
}

fn value_of(bytes: &[u8; 16], size: usize) -> u128 {
    let mut b = [0u8; 16];
    b[..size].copy_from_slice(&bytes[..size]);
    u128::from_le_bytes(b)
}

/// How one line of an access fared.
enum LineAccess {
    Hit(Cycle, Level),
    Wait,
    Stall,
}

impl PrivateHierarchy {
    /// A data load of `size` (1..=16) bytes at `addr` (context 0).
    pub fn load(&mut self, now: Cycle, addr: MachineAddr, size: usize) -> Access {
        self.load_in(now, ContextId(0), addr, size)
    }

    /// A data load by SMT context `ctx`.
    pub fn load_in(
        &mut self,
        now: Cycle,
        ctx: ContextId,
        addr: MachineAddr,
        size: usize,
    ) -> Access {
        self.read_access(now, ctx, addr.get(), size, Stream::Data)
    }

    /// An instruction fetch of `size` (1..=16) bytes at `addr` (through
    /// the L1I; the store buffer is not consulted).
    pub fn fetch(&mut self, now: Cycle, addr: MachineAddr, size: usize) -> Access {
        self.read_access(now, ContextId(0), addr.get(), size, Stream::Inst)
    }

    fn read_access(
        &mut self,
        now: Cycle,
        ctx: ContextId,
        addr: u64,
        size: usize,
        stream: Stream,
    ) -> Access {
        assert!(
            (1..=16).contains(&size),
            "access of {size} bytes: 1..=16 allowed"
        );
        let mut op = Op {
            ctx,
            stream,
            start: now,
            addr,
            size,
            bytes: [0; 16],
            have: 0,
            parts_left: 0,
            level: Level::StoreBuffer,
        };
        if stream == Stream::Data {
            self.forward_from_sb(&mut op);
        }
        if op.have == mask(0, size) {
            self.stats.inc(self.ids.sb_forwards);
            let ready = now + self.lat[1];
            self.stats
                .record(self.ids.load_to_use(Level::StoreBuffer), ready - now);
            return Access::Done {
                ready,
                value: value_of(&op.bytes, size),
                level: Level::StoreBuffer,
            };
        }
        let answer = self.start_parts(now, op);
        self.issue_prefetches(now);
        answer
    }

    /// What a data load of `size` (1..=16) bytes at `addr` by context
    /// `ctx` would read now, without any side effect (no LRU update, no
    /// statistics, no miss): the context's buffered stores, then memory for
    /// the lines this core holds readable. `None` if a needed line is not
    /// readable here. For a speculative front-end oracle; the ownership
    /// rule holds (memory is read only for readable lines).
    pub fn peek_in(&self, ctx: ContextId, addr: MachineAddr, size: usize) -> Option<u128> {
        assert!(
            (1..=16).contains(&size),
            "access of {size} bytes: 1..=16 allowed"
        );
        let mut op = Op {
            ctx,
            stream: Stream::Data,
            start: Cycle::ZERO,
            addr: addr.get(),
            size,
            bytes: [0; 16],
            have: 0,
            parts_left: 0,
            level: Level::StoreBuffer,
        };
        self.forward_from_sb(&mut op);
        for (line, from, len) in parts(op.addr, size) {
            if op.have & mask(from, len) == mask(from, len) {
                continue;
            }
            if !self.l2.probe(line).is_some_and(|e| e.st.readable()) {
                return None;
            }
            if let Some(t) = &*self.checker.table {
                t.check(self.core, line, Perm::Read);
            }
            let mut buf = [0u8; 16];
            if self
                .mem
                .read(MachineAddr(op.addr + from as u64), &mut buf[..len])
                .is_err()
            {
                buf[..len].fill(0);
            }
            for (i, &b) in buf[..len].iter().enumerate() {
                if op.have & (1 << (from + i)) == 0 {
                    op.bytes[from + i] = b;
                }
            }
        }
        Some(value_of(&op.bytes, size))
    }

    /// Fills the bytes the context's buffered stores cover, each from the
    /// youngest store covering it (overlaid oldest first, so younger
    /// stores overwrite older ones).
    fn forward_from_sb(&self, op: &mut Op) {
        let window = &mut op.bytes[..op.size];
        for e in self.sb.iter().filter(|e| e.ctx == op.ctx) {
            let covered = overlay(op.addr, window, e.addr, &e.bytes[..e.size]);
            op.have |= u16::try_from(covered).expect("a window of at most 16 bytes");
        }
    }

    /// Looks up every line the op still needs; serves what hits.
    fn start_parts(&mut self, now: Cycle, mut op: Op) -> Access {
        let id = self.new_id();
        let mut ready = now;
        let mut waiting = Vec::new();
        for (line, from, len) in parts(op.addr, op.size) {
            if op.have & mask(from, len) == mask(from, len) {
                continue;
            }
            match self.access_line(now, line, op.stream) {
                LineAccess::Hit(at, level) => {
                    ready = ready.max(at);
                    op.level = op.level.max(level);
                    self.fill_part(now, &mut op, line);
                }
                LineAccess::Wait => waiting.push(line),
                LineAccess::Stall => {
                    self.stats.inc(self.ids.stalls);
                    return Access::Stall;
                }
            }
        }
        if waiting.is_empty() {
            self.stats
                .record(self.ids.load_to_use(op.level), ready - now);
            return Access::Done {
                ready,
                value: value_of(&op.bytes, op.size),
                level: op.level,
            };
        }
        op.parts_left = u8::try_from(waiting.len()).expect("at most two lines");
        for line in waiting {
            self.mshrs
                .get_mut(&line)
                .expect("waiting on a miss")
                .waiters
                .push(id);
        }
        self.ops.insert(id, op);
        Access::Pending(id)
    }

    /// Copies from memory the op's bytes in `line` not already known.
    pub(super) fn fill_part(&mut self, now: Cycle, op: &mut Op, line: LineAddr) {
        let Some((_, from, len)) = parts(op.addr, op.size).find(|p| p.0 == line) else {
            return;
        };
        let mut buf = [0u8; 16];
        self.read_mem(now, line, op.addr + from as u64, &mut buf[..len]);
        for (i, &b) in buf[..len].iter().enumerate() {
            if op.have & (1 << (from + i)) == 0 {
                op.bytes[from + i] = b;
            }
        }
        op.have |= mask(from, len);
    }

    /// One line of a read: L1, then L2, then a miss. The prefetchers see
    /// the L1D's and the L2's lookups.
    fn access_line(&mut self, now: Cycle, line: LineAddr, stream: Stream) -> LineAccess {
        let data = stream == Stream::Data;
        if data {
            self.settle_l1_fills(now);
        }
        let l1 = match stream {
            Stream::Inst => &mut self.l1i,
            Stream::Data => &mut self.l1d,
        };
        let l1_lat = self.lat[usize::from(data)];
        if let Some(e) = l1.access(line, &mut self.stats) {
            let was = std::mem::take(&mut e.prefetched);
            if data {
                self.pf_hit(PfLevel::L1d, line, was);
            }
            return LineAccess::Hit(now + l1_lat, Level::L1);
        }
        if data {
            self.pf_miss(PfLevel::L1d, line);
        }
        let found = self.l2.access(line, &mut self.stats).map(|e| {
            let readable = e.st.readable();
            (e.st, readable && std::mem::take(&mut e.prefetched))
        });
        match found {
            Some((st, was)) if st.readable() => {
                self.pf_hit(PfLevel::L2, line, was);
                self.fill_l1(stream, line);
                LineAccess::Hit(now + self.lat[2], Level::L2)
            }
            _ if self.mshrs.contains_key(&line) => {
                self.stats.inc(self.ids.mshr_merges);
                self.pf_claim(line);
                self.pf_miss(PfLevel::L2, line);
                LineAccess::Wait
            }
            Some((st, _)) => unreachable!("{line} in {st:?} without an MSHR"),
            None => {
                self.pf_miss(PfLevel::L2, line);
                if self.miss(now, line, false, None) {
                    LineAccess::Wait
                } else {
                    LineAccess::Stall
                }
            }
        }
    }

    pub(super) fn fill_l1(&mut self, stream: Stream, line: LineAddr) {
        self.fill_l1_as(stream, line, false);
    }

    /// Puts `line` into an L1 (marked if a prefetch brought it), or marks
    /// it recently used if it is there.
    pub(super) fn fill_l1_as(&mut self, stream: Stream, line: LineAddr, prefetched: bool) {
        if stream == Stream::Data {
            self.pf_fill_l1(line, prefetched);
        }
        let l1 = match stream {
            Stream::Inst => &mut self.l1i,
            Stream::Data => &mut self.l1d,
        };
        if l1.probe(line).is_none() {
            l1.insert(line, L1Line { prefetched }, |_| true, &mut self.stats)
                .expect("L1 ways are always evictable");
        } else {
            l1.touch(line);
        }
    }

    /// Starts a miss on a line not in the L2 (for a level's prefetcher,
    /// or a demand access); false if no MSHR or way.
    pub(super) fn miss(
        &mut self,
        now: Cycle,
        line: LineAddr,
        want_m: bool,
        prefetch: Option<PfLevel>,
    ) -> bool {
        if self.mshrs.len() >= self.mshr_limit {
            return false;
        }
        let mshr = Mshr {
            start: now,
            waiters: Vec::new(),
            issued: false,
            want_m,
            prefetch,
        };
        self.mshrs.insert(line, mshr);
        if self.wb.contains_key(&line) {
            return true;
        }
        if !self.issue(now, line) {
            self.mshrs.remove(&line);
            return false;
        }
        true
    }

    /// Allocates the L2 way for an MSHR's line and sends its request;
    /// false if every way of the set is pinned or transient.
    pub(super) fn issue(&mut self, now: Cycle, line: LineAddr) -> bool {
        let (want_m, prefetch) = (self.mshrs[&line].want_m, self.mshrs[&line].prefetch);
        let st = if want_m { PState::IM } else { PState::IS };
        let entry = PLine {
            st,
            pinned: false,
            prefetched: prefetch == Some(PfLevel::L2),
        };
        let victim =
            match self
                .l2
                .insert(line, entry, |e| e.st.stable() && !e.pinned, &mut self.stats)
            {
                Ok(v) => v,
                Err(_) => return false,
            };
        if let Some(v) = victim {
            self.evict(now, v.line, v.state.st);
        }
        let mshr = self.mshrs.get_mut(&line).expect("issuing an MSHR");
        mshr.issued = true;
        mshr.start = now;
        let core = self.core;
        let (msg, stat) = if want_m {
            (MemMsg::GetM { core, line }, self.ids.write_misses)
        } else {
            (MemMsg::GetS { core, line }, self.ids.read_misses)
        };
        if prefetch.is_none() {
            self.stats.inc(stat);
        }
        self.send_home(now, self.lat[2], msg);
        true
    }

    /// The L2 gave up `line` (state `st`) for another: put it.
    fn evict(&mut self, now: Cycle, line: LineAddr, st: PState) {
        self.drop_l1(line);
        self.perm(line, Perm::None);
        let held = st.held();
        let stat = if matches!(held, Held::M | Held::O) {
            self.ids.writebacks
        } else {
            self.ids.clean_evictions
        };
        self.stats.inc(stat);
        let wb = if held == Held::S {
            WbState::SI
        } else {
            WbState::MI(held)
        };
        self.wb.insert(line, wb);
        self.send_home(
            now,
            0,
            MemMsg::Put {
                core: self.core,
                line,
                held,
            },
        );
    }

    pub(super) fn drop_l1(&mut self, line: LineAddr) {
        self.l1i.invalidate(line, &mut self.stats);
        self.l1d.invalidate(line, &mut self.stats);
        self.pf_forget_l1(line);
    }

    /// Asks for M on a line held readable (S or O); false if no MSHR.
    fn upgrade(&mut self, now: Cycle, line: LineAddr) -> bool {
        if self.mshrs.len() >= self.mshr_limit {
            return false;
        }
        let e = self.l2.probe_mut(line).expect("upgrading a present line");
        e.st = match e.st {
            PState::S => PState::SM,
            PState::O => PState::OM,
            other => unreachable!("upgrade from {other:?}"),
        };
        self.mshrs.insert(
            line,
            Mshr {
                start: now,
                waiters: Vec::new(),
                issued: true,
                want_m: true,
                prefetch: None,
            },
        );
        self.stats.inc(self.ids.upgrades);
        self.send_home(
            now,
            self.lat[2],
            MemMsg::GetM {
                core: self.core,
                line,
            },
        );
        true
    }

    /// A store's address is known before it retires: starts obtaining M
    /// for its line now (read-for-ownership at execute, as out-of-order
    /// cores do), so the store drains without waiting when its turn comes.
    /// Does nothing if no MSHR is free or the line is already on its way;
    /// true if the line is writable now.
    pub fn prefetch_own(&mut self, now: Cycle, addr: MachineAddr) -> bool {
        let line = addr.line();
        if self.mshrs.contains_key(&line) {
            return false;
        }
        if self.mshrs.len() >= self.mshr_limit
            && !matches!(
                self.l2.probe(line).map(|e| e.st),
                Some(PState::M | PState::E)
            )
        {
            return false;
        }
        let blocked = self.blocked;
        let writable = self.want_m(now, line);
        // A refused prefetch is dropped, not retried.
        self.blocked = blocked;
        writable
    }

    /// Makes sure `line` is on its way to M; true if it is M now.
    fn want_m(&mut self, now: Cycle, line: LineAddr) -> bool {
        match self.l2.probe_mut(line).map(|e| e.st) {
            Some(PState::M) => true,
            Some(PState::E) => {
                self.l2.probe_mut(line).expect("present").st = PState::M;
                true
            }
            Some(PState::S | PState::O) if !self.mshrs.contains_key(&line) => {
                if !self.upgrade(now, line) {
                    self.stats.inc(self.ids.stalls);
                    self.blocked = true;
                }
                false
            }
            None if !self.mshrs.contains_key(&line) => {
                if !self.miss(now, line, true, None) {
                    self.stats.inc(self.ids.stalls);
                    self.blocked = true;
                }
                false
            }
            _ => false,
        }
    }

    /// Retires a store of `size` (1..=16) bytes of `value` into the store
    /// buffer (context 0).
    pub fn store(
        &mut self,
        now: Cycle,
        addr: MachineAddr,
        size: usize,
        value: u128,
    ) -> Result<(), StoreBufferFull> {
        self.store_in(now, ContextId(0), addr, size, value)
    }

    /// Retires a store of SMT context `ctx`.
    pub fn store_in(
        &mut self,
        now: Cycle,
        ctx: ContextId,
        addr: MachineAddr,
        size: usize,
        value: u128,
    ) -> Result<(), StoreBufferFull> {
        self.store_in_checked(now, ctx, addr, size, value, true)
    }

    /// Retires a store of an instruction that alone stores more entries
    /// than the store buffer holds (fxsave, xsave): the core issues it only
    /// into an empty buffer, which it then fills beyond its capacity until
    /// the drains bring it back (nothing else enters meanwhile).
    pub fn store_in_oversize(
        &mut self,
        now: Cycle,
        ctx: ContextId,
        addr: MachineAddr,
        size: usize,
        value: u128,
    ) {
        self.store_in_checked(now, ctx, addr, size, value, false)
            .expect("no capacity check");
    }

    fn store_in_checked(
        &mut self,
        now: Cycle,
        ctx: ContextId,
        addr: MachineAddr,
        size: usize,
        value: u128,
        check: bool,
    ) -> Result<(), StoreBufferFull> {
        assert!(
            (1..=16).contains(&size),
            "store of {size} bytes: 1..=16 allowed"
        );
        let all = value.to_le_bytes();
        let pieces: Vec<_> = parts(addr.get(), size).collect();
        if check && self.sb.len() + pieces.len() > self.sb_cap {
            self.stats.inc(self.ids.sb_full);
            return Err(StoreBufferFull);
        }
        if self.sb.is_empty() {
            self.drain_at = self.drain_at.max(now + 1);
        }
        for (line, from, len) in pieces {
            let mut bytes = [0u8; 16];
            bytes[..len].copy_from_slice(&all[from..from + len]);
            self.sb.push_back(SbEntry {
                ctx,
                addr: line.base().get().max(addr.get()),
                size: len,
                bytes,
            });
            self.pf_store(line);
        }
        self.issue_prefetches(now);
        Ok(())
    }

    /// Does the store buffer's work due at `now`: drains the head store if
    /// its line is in M (asking for M otherwise), and acquires a pending
    /// lock once the buffer is empty.
    pub fn advance(&mut self, now: Cycle) {
        if let Some(head) = self.sb.front().copied() {
            // Another context's lock holds the line: its store waits.
            let held = self.lock.as_ref().is_some_and(|l| l.held) && self.pinned(head.line());
            if !held && self.drain_at <= now && self.want_m(now, head.line()) {
                self.write_mem(now, head.line(), head.addr, &head.bytes[..head.size]);
                self.fill_l1(Stream::Data, head.line());
                self.sb.pop_front();
                self.stats.inc(self.ids.sb_drains);
                self.drain_at = now + 1;
            }
        }
        self.try_lock(now);
    }

    /// Starts a locked read-modify-write of `size` (1..=16) bytes at `addr`
    /// (context 0): [`Access::Done`] or a later [`Completion`] carries the
    /// old value; the lines stay pinned in M until
    /// [`PrivateHierarchy::end_locked`]. One locked operation at a time per
    /// core: a second one gets [`Access::Stall`].
    pub fn begin_locked(&mut self, now: Cycle, addr: MachineAddr, size: usize) -> Access {
        self.begin_locked_in(now, ContextId(0), addr, size)
    }

    /// [`PrivateHierarchy::begin_locked`] for SMT context `ctx`: it waits
    /// for that context's stores only.
    pub fn begin_locked_in(
        &mut self,
        now: Cycle,
        ctx: ContextId,
        addr: MachineAddr,
        size: usize,
    ) -> Access {
        assert!(
            (1..=16).contains(&size),
            "locked access of {size} bytes: 1..=16 allowed"
        );
        if self.lock.is_some() {
            return Access::Stall;
        }
        let id = self.new_id();
        self.lock = Some(LockState {
            ctx,
            id,
            addr: addr.get(),
            size,
            held: false,
        });
        self.advance(now);
        match self.done.last() {
            Some(c) if c.id == id => {
                let c = self.done.pop().expect("just seen");
                Access::Done {
                    ready: c.ready,
                    value: c.value,
                    level: c.level,
                }
            }
            _ => Access::Pending(id),
        }
    }

    /// Ends the locked operation, writing `new` (if any) to its bytes.
    ///
    /// # Panics
    /// If no lock is held (a core bug).
    pub fn end_locked(&mut self, now: Cycle, new: Option<u128>) {
        let lock = self.lock.take().expect("end_locked without a held lock");
        assert!(lock.held, "end_locked before the lock was granted");
        let bytes = new.map(u128::to_le_bytes);
        for (line, from, len) in parts(lock.addr, lock.size) {
            if let Some(b) = &bytes {
                self.write_mem(now, line, lock.addr + from as u64, &b[from..from + len]);
            }
            self.l2.probe_mut(line).expect("locked lines stay").pinned = false;
        }
        self.stats.inc(self.ids.locked_ops);
        for msg in std::mem::take(&mut self.deferred) {
            self.handle_message(now, msg);
        }
    }

    /// Abandons a locked operation that has not been granted yet (the
    /// instruction was interrupted before it ran); misses it started
    /// complete harmlessly. Returns whether one was pending.
    ///
    /// # Panics
    /// If the lock is already held: end it with
    /// [`PrivateHierarchy::end_locked`] instead.
    pub fn cancel_locked(&mut self) -> bool {
        match &self.lock {
            Some(l) if l.held => panic!("cancel_locked on a held lock"),
            Some(l) => {
                let id = l.id;
                self.done.retain(|c| c.id != id);
                self.lock = None;
                true
            }
            None => false,
        }
    }

    /// Acquires the pending lock if the store buffer is empty and every
    /// line is in M.
    fn try_lock(&mut self, now: Cycle) {
        let Some(lock) = self.lock.clone() else {
            return;
        };
        if lock.held || !self.store_buffer_empty_in(lock.ctx) {
            return;
        }
        let mut all = true;
        for (line, _, _) in parts(lock.addr, lock.size) {
            all &= self.want_m(now, line);
        }
        if !all {
            return;
        }
        let mut op = Op {
            ctx: lock.ctx,
            stream: Stream::Data,
            start: now,
            addr: lock.addr,
            size: lock.size,
            bytes: [0; 16],
            have: 0,
            parts_left: 0,
            level: Level::L1,
        };
        for (line, _, _) in parts(lock.addr, lock.size) {
            self.l2.probe_mut(line).expect("M line").pinned = true;
            self.fill_part(now, &mut op, line);
        }
        self.lock.as_mut().expect("checked").held = true;
        let ready = now + self.lat[1];
        self.done.push(Completion {
            id: lock.id,
            ready,
            value: value_of(&op.bytes, lock.size),
            level: Level::L1,
        });
    }

    /// Whether `line` is pinned by a held lock.
    pub(super) fn pinned(&self, line: LineAddr) -> bool {
        self.l2.probe(line).is_some_and(|e| e.pinned)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::memory::MachineMemory;
    use crate::{MemSystem, MemSystemConfig};
    use smpsim_engine::{PartitionId, StatsBuilder};
    use std::sync::Arc;

    #[test]
    fn peek_forwards_own_stores_only_and_touches_nothing() {
        let mem = Arc::new(MachineMemory::new(1 << 20).expect("memory"));
        let sys =
            MemSystem::new(&MemSystemConfig::default(), 1, mem, PartitionId(0)).expect("system");
        let mut h = sys.hierarchy(CoreId(0), StatsBuilder::new());
        h.store_in(Cycle(1), ContextId(0), MachineAddr(0x1000), 8, 42)
            .expect("room");
        let before = format!("{:?}", h.stats());
        let c0 = ContextId(0);
        assert_eq!(h.peek_in(c0, MachineAddr(0x1000), 8), Some(42));
        assert_eq!(h.peek_in(c0, MachineAddr(0x1002), 2), Some(0), "42 >> 16");
        // Bytes beyond the store need the line, which the core lacks.
        assert_eq!(h.peek_in(c0, MachineAddr(0x1004), 8), None);
        assert_eq!(h.peek_in(ContextId(1), MachineAddr(0x1000), 8), None);
        assert_eq!(h.peek_in(c0, MachineAddr(0x2000), 1), None);
        assert_eq!(before, format!("{:?}", h.stats()), "no statistics");
        assert!(h.take_sent().is_empty(), "no miss requests");
        assert_eq!(h.outstanding(), 0);
    }

    #[test]
    fn prefetch_own_sends_one_getm_per_line() {
        let mem = Arc::new(MachineMemory::new(1 << 20).expect("memory"));
        let sys =
            MemSystem::new(&MemSystemConfig::default(), 1, mem, PartitionId(0)).expect("system");
        let mut h = sys.hierarchy(CoreId(0), StatsBuilder::new());
        assert!(!h.prefetch_own(Cycle(5), MachineAddr(0x3008)));
        assert!(!h.prefetch_own(Cycle(6), MachineAddr(0x3010)), "same line");
        let sent = h.take_sent();
        assert!(
            matches!(sent[..], [(_, _, MemMsg::GetM { .. })]),
            "{sent:?}"
        );
        assert_eq!(h.outstanding(), 1);
        assert!(h.take_completions().is_empty(), "nobody waits for it");
    }

    #[test]
    fn parts_split_at_line_boundaries() {
        let p: Vec<_> = parts(60, 8).collect();
        assert_eq!(p, vec![(LineAddr(0), 0, 4), (LineAddr(1), 4, 4)]);
        let p: Vec<_> = parts(64, 16).collect();
        assert_eq!(p, vec![(LineAddr(1), 0, 16)]);
        assert_eq!(mask(4, 4), 0xF0);
        assert_eq!(mask(0, 16), 0xFFFF);
    }
}
