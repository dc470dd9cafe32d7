//! The fast-forward model, `fast`: deterministic parallel execution
//! without timing, at the functional core's speed.
//!
//! Each context runs whole quanta in one [`crate::FuncCore::run`] call (one
//! instruction is one cycle, so an epoch of Q cycles is Q instructions),
//! reading and writing machine memory directly instead of through the
//! coherent caches. What a context sees of the others follows one
//! deterministic rule, a legal x86-TSO execution:
//!
//! - **Stores are buffered** per context for the quantum ([`StoreLog`]):
//!   its own loads see them (store-to-load forwarding), nobody else does.
//!   During the parallel phase no one writes machine memory, so every
//!   load reads the state of the last barrier plus its own stores, whatever
//!   the host threads do.
//! - **At the barrier** the machine commits every context's buffer, core by
//!   core and context by context in id order ([`FastModel::commit`]); a
//!   later core's bytes win where two wrote the same bytes.
//! - **Serialized instructions**: an atomic read-modify-write (a `lock`
//!   prefix, or `xchg` with memory) ends its context's quantum before it
//!   runs; at the barrier, after the commits, each such instruction runs
//!   alone against memory in core and context order
//!   ([`FastModel::run_serialized`]). A fence with stores buffered ends the
//!   quantum too (the barrier drains them; the fence then passes). `pause`
//!   ends it as well, so a spin-wait costs one turn of its loop per quantum
//!   rather than a quantum of spinning. Hypercalls and faults trap as in
//!   every model and are serviced by the hypervisor at the barrier, which
//!   also runs after the commits.
//!
//! Faults stay precise although a run covers many instructions: the
//! functional core announces every instruction
//! ([`GuestMemory::insn_start`]), the log keeps an undo record of the
//! current instruction's stores, and an instruction that faults, halts or
//! must be retried has its stores taken back.
//!
//! The caches and the coherence protocol are not used (no cache statistics
//! accrue, no messages are sent). When a core switches into `fast`, its
//! store buffer is written straight to memory (a legal drain at that
//! instant: caches hold no data) and any access or lock in flight is
//! abandoned (its instruction had not run); messages still arriving for
//! the hierarchy are handled at their time, so the protocol settles.
//! Switching out of `fast` happens at a barrier, after the commits, so the
//! timing models start from memory holding every store.

use super::{AddressMap, CoreState, Model, TimingModel, Tlb};
use crate::hash::AddrMap;
use crate::mem::{GuestMemory, MemStop, PageFault, PAGE_SIZE as PAGE};
use crate::paging::AccessKind;
use crate::Exit;
use serde::{Deserialize, Serialize};
use smpsim_engine::{Cycle, EpochCtx};
use smpsim_uncore::memory::{MachineAddr, MachineMemory};
use smpsim_uncore::MemMsg;

const LINE: u64 = 64;
/// Entries of a run's translation cache, per access kind (reads, writes).
const RUN_TLB: usize = 16;
/// Bits of the log's line filter (a power of two).
const FILTER_BITS: usize = 4096;

/// One buffered line: which bytes were written and their values.
#[derive(Clone, Debug)]
struct LogLine {
    addr: u64,
    mask: u64,
    data: [u8; LINE as usize],
}

/// How to take back one piece of a store.
#[derive(Clone, Copy, Debug)]
struct Undo {
    line: u32,
    off: u8,
    len: u8,
    mask: u64,
    old: [u8; 8],
}

/// A context's stores of the current quantum, by machine line, in the
/// order lines were first written.
#[derive(Debug)]
pub(super) struct StoreLog {
    lines: Vec<LogLine>,
    index: AddrMap<u64, u32>,
    /// Lines that may be in the log (a load of any other line reads memory
    /// without a lookup).
    filter: Box<[u64]>,
    /// The current instruction's store pieces, to take back.
    undo: Vec<Undo>,
    /// The line written last and its position in `lines` (`u64::MAX`:
    /// none), so that a run of stores to one line skips the map.
    last: (u64, u32),
}

impl StoreLog {
    fn new() -> Self {
        StoreLog {
            lines: Vec::new(),
            index: AddrMap::default(),
            filter: vec![0; FILTER_BITS / 64].into_boxed_slice(),
            undo: Vec::new(),
            last: (u64::MAX, 0),
        }
    }

    fn is_empty(&self) -> bool {
        self.lines.is_empty()
    }

    #[inline]
    fn filter_bit(line: u64) -> (usize, u64) {
        let b = (line / LINE) as usize & (FILTER_BITS - 1);
        (b / 64, 1 << (b % 64))
    }

    #[inline]
    fn may_hold(&self, line: u64) -> bool {
        let (w, m) = Self::filter_bit(line);
        self.filter[w] & m != 0
    }

    /// Writes the low `len` bytes (1..=8) of `value` at machine address
    /// `ma` (within one line).
    fn put(&mut self, ma: u64, value: u64, len: usize) {
        debug_assert!((1..=8).contains(&len));
        let line = ma & !(LINE - 1);
        let off = (ma - line) as usize;
        debug_assert!(off + len <= LINE as usize, "a piece within one line");
        let idx = match (self.last.0 == line)
            .then_some(self.last.1)
            .or_else(|| self.index.get(&line).copied())
        {
            Some(i) => i,
            None => {
                let i = u32::try_from(self.lines.len()).expect("fewer than 2^32 lines a quantum");
                self.lines.push(LogLine {
                    addr: line,
                    mask: 0,
                    data: [0; LINE as usize],
                });
                self.index.insert(line, i);
                let (w, m) = Self::filter_bit(line);
                self.filter[w] |= m;
                i
            }
        };
        self.last = (line, idx);
        let l = &mut self.lines[idx as usize];
        let bytes = ((1u128 << (8 * len)) - 1) as u64;
        let mut old = [0u8; 8];
        if off + 8 <= LINE as usize {
            // One 8-byte window holds the piece: merge as words.
            let window = &mut l.data[off..off + 8];
            let cur = u64::from_le_bytes((&*window).try_into().expect("8 bytes"));
            old = cur.to_le_bytes();
            window.copy_from_slice(&((cur & !bytes) | (value & bytes)).to_le_bytes());
        } else {
            // The line's last bytes.
            old[..len].copy_from_slice(&l.data[off..off + len]);
            l.data[off..off + len].copy_from_slice(&value.to_le_bytes()[..len]);
        }
        self.undo.push(Undo {
            line: idx,
            off: off as u8,
            len: len as u8,
            mask: l.mask,
            old,
        });
        l.mask |= ((1u128 << len) - 1).wrapping_shl(off as u32) as u64;
    }

    /// Overlays the logged bytes of `[ma, ma + buf.len())` (within one
    /// line) on `buf`.
    #[inline]
    fn overlay(&self, ma: u64, buf: &mut [u8]) {
        let line = ma & !(LINE - 1);
        if !self.may_hold(line) {
            return;
        }
        let Some(&i) = self.index.get(&line) else {
            return;
        };
        let l = &self.lines[i as usize];
        let off = (ma - line) as usize;
        for (k, b) in buf.iter_mut().enumerate() {
            if l.mask >> (off + k) & 1 != 0 {
                *b = l.data[off + k];
            }
        }
    }

    /// Takes back the current instruction's stores.
    fn undo_insn(&mut self) {
        while let Some(u) = self.undo.pop() {
            let l = &mut self.lines[u.line as usize];
            let (off, len) = (usize::from(u.off), usize::from(u.len));
            l.data[off..off + len].copy_from_slice(&u.old[..len]);
            l.mask = u.mask;
        }
    }

    /// Writes every logged byte to `mem` and empties the log; returns the
    /// lines written.
    fn commit(&mut self, mem: &MachineMemory) -> usize {
        let n = self.lines.len();
        for l in &self.lines {
            if l.mask == u64::MAX {
                // In range: every byte was translated to this frame.
                let _ = mem.write(MachineAddr(l.addr), &l.data);
                continue;
            }
            let mut k = 0;
            while k < LINE as usize {
                if l.mask >> k & 1 == 0 {
                    k += 1;
                    continue;
                }
                let start = k;
                while k < LINE as usize && l.mask >> k & 1 != 0 {
                    k += 1;
                }
                let _ = mem.write(MachineAddr(l.addr + start as u64), &l.data[start..k]);
            }
        }
        self.lines.clear();
        self.index.clear();
        self.filter.fill(0);
        self.undo.clear();
        self.last = (u64::MAX, 0);
        n
    }
}

/// Why a context's quantum ended early.
#[derive(Copy, Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
enum Stop {
    /// An atomic read-modify-write: it runs alone at the barrier.
    Serialize,
    /// A fence with stores buffered: it passes after the barrier's commit.
    Drain,
    /// `pause`: the spin-wait goes on next quantum.
    Pause,
}

/// A context's fast-forward state besides its registers.
#[derive(Debug, Serialize, Deserialize)]
struct CtxState {
    /// Its next instruction runs alone at the barrier.
    serialize: bool,
    /// The `pause` it stopped at runs first thing next quantum.
    pause_ok: bool,
    /// Not saved: empty at every barrier, where checkpoints are taken.
    #[serde(skip, default = "StoreLog::new")]
    log: StoreLog,
}

/// The `fast` model: per-context store logs and serialization flags.
#[derive(Debug, Serialize, Deserialize)]
pub(super) struct FastModel {
    ctxs: Vec<CtxState>,
}

impl FastModel {
    /// The model for a core of `smt` contexts.
    pub(super) fn new(smt: usize) -> Self {
        FastModel {
            ctxs: (0..smt)
                .map(|_| CtxState {
                    serialize: false,
                    pause_ok: false,
                    log: StoreLog::new(),
                })
                .collect(),
        }
    }

    /// Whether some context has stores to commit.
    pub(super) fn has_stores(&self) -> bool {
        self.ctxs.iter().any(|c| !c.log.is_empty())
    }

    /// Whether some context waits to run an instruction alone.
    pub(super) fn has_serialized(&self) -> bool {
        self.ctxs.iter().any(|c| c.serialize)
    }

    /// Commits every context's stores to `mem`, in context order; returns
    /// the lines written.
    pub(super) fn commit(&mut self, mem: &MachineMemory) -> usize {
        self.ctxs.iter_mut().map(|c| c.log.commit(mem)).sum()
    }

    /// Runs each waiting context's serialized instruction alone against
    /// memory at `now` (a barrier, after every commit), in context order.
    pub(super) fn run_serialized(&mut self, core: &mut CoreState, now: Cycle) {
        for t in 0..self.ctxs.len() {
            if !std::mem::take(&mut self.ctxs[t].serialize) {
                continue;
            }
            if !core.ctxs[t].can_issue() {
                // The hypervisor parked or interrupted it meanwhile.
                continue;
            }
            self.run(core, t, now.max(core.ctxs[t].ready), 1, true);
            self.ctxs[t].log.commit(&core.mem);
        }
    }

    /// Runs context `t` from `from` for at most `budget` instructions
    /// (`serial`: alone at a barrier, atomic read-modify-writes allowed).
    /// A context stopped for the barrier resumes at `from + budget`.
    fn run(&mut self, core: &mut CoreState, t: usize, from: Cycle, budget: u64, serial: bool) {
        let st = &mut self.ctxs[t];
        let c = &mut core.ctxs[t];
        let before = c.func.stats().instructions;
        c.func.set_cycles(from.get());
        let mut fm = FastMem {
            mem: &core.mem,
            space: &*c.space,
            tlb: &mut c.tlb,
            log: &mut st.log,
            loads: [(0, 0); 4],
            nloads: 0,
            rip: c.regs.rip,
            atomic: None,
            seen: [(0, 0); 2 * RUN_TLB],
            serial,
            pause_ok: std::mem::take(&mut st.pause_ok),
            stop: None,
        };
        let exit = c.func.run(&mut c.regs, &mut fm, budget);
        let (stop, rip) = (fm.stop, fm.rip);
        if !matches!(exit, Exit::InsnLimit | Exit::Syscall) {
            // The last instruction did not complete: nothing of it stays.
            st.log.undo_insn();
        }
        st.log.undo.clear();
        let n = c.func.stats().instructions - before;
        let done = from + n;
        c.ready = match exit {
            // A run that retired nothing waits for the barrier too.
            Exit::InsnLimit if n > 0 => done,
            Exit::InsnLimit | Exit::Retry => from + budget,
            _ => done,
        };
        if exit == Exit::Halt {
            // The fault is at the `hlt` itself, which did not retire.
            c.regs.rip = rip;
        }
        match stop {
            Some(Stop::Serialize) => st.serialize = true,
            Some(Stop::Pause) => st.pause_ok = true,
            Some(Stop::Drain) | None => {}
        }
        let trapped = matches!(exit, Exit::Syscall | Exit::Halt);
        let stats = core.hier.stats_mut();
        stats.add(core.ids.busy_cycles, n);
        // `finish` counts a trapping instruction itself.
        stats.add(core.ids.instructions, n - u64::from(trapped));
        if !matches!(exit, Exit::InsnLimit | Exit::Retry) {
            core.finish(t, exit, done);
        }
    }
}

impl TimingModel for FastModel {
    fn model(&self) -> Model {
        Model::Fast
    }

    fn run_epoch(&mut self, core: &mut CoreState, ctx: &mut EpochCtx<'_, MemMsg>) {
        let (start, end) = (ctx.epoch_start(), ctx.epoch_end());
        // The protocol settling after a switch from a timing model.
        while let Some(m) = ctx.pop_due() {
            core.now = core.now.max(m.time);
            core.handle_message(m.payload);
        }
        while let Some(t) = core.hier.next_activity().filter(|&t| t < end) {
            core.now = core.now.max(t);
            core.advance_hierarchy();
        }
        for t in 0..self.ctxs.len() {
            loop {
                let c = &core.ctxs[t];
                let from = c.ready.max(start);
                if !c.can_issue() || self.ctxs[t].serialize || from >= end {
                    break;
                }
                self.run(core, t, from, end - from, false);
            }
        }
        core.now = core.now.max(start);
        core.hier.flush(ctx);
    }

    fn halt(&mut self, t: usize) {
        let c = &mut self.ctxs[t];
        c.serialize = false;
        c.pause_ok = false;
    }
}

/// A context's memory in the fast model: machine memory as of the last
/// barrier, under its own store log.
struct FastMem<'a> {
    mem: &'a MachineMemory,
    space: &'a dyn AddressMap,
    tlb: &'a mut Tlb,
    log: &'a mut StoreLog,
    /// The current instruction's first loads (guest-virtual address,
    /// bytes): enough for every atomic instruction (at most two), which
    /// is all they are kept for.
    loads: [(u64, u64); 4],
    nloads: usize,
    /// The current instruction's address.
    rip: u64,
    /// Whether the current instruction is atomic (decoded on demand).
    atomic: Option<bool>,
    /// This run's translations: (virtual page + 1, frame), reads then writes.
    seen: [(u64, u64); 2 * RUN_TLB],
    serial: bool,
    pause_ok: bool,
    stop: Option<Stop>,
}

impl FastMem<'_> {
    /// Through a small direct-mapped cache of this run's translations in
    /// front of the context's TLB (mappings change only at barriers).
    #[inline(always)]
    fn translate(&mut self, va: u64, kind: AccessKind) -> Result<u64, MemStop> {
        let vpn = va / PAGE;
        let slot = (vpn as usize & (RUN_TLB - 1))
            + if kind == AccessKind::Write {
                RUN_TLB
            } else {
                0
            };
        let (tag, frame) = self.seen[slot];
        if tag == vpn + 1 && kind != AccessKind::Fetch {
            return Ok(frame + va % PAGE);
        }
        let ma = self.tlb.translate(self.space, self.mem, va, kind)?;
        if kind != AccessKind::Fetch {
            self.seen[slot] = (vpn + 1, ma - va % PAGE);
        }
        Ok(ma)
    }

    fn halt_for(&mut self, why: Stop) -> MemStop {
        self.stop = Some(why);
        MemStop::Retry
    }

    /// Whether the current instruction is atomic: a `lock` prefix, or
    /// `xchg` (opcodes 86/87), which locks when it has a memory operand.
    fn is_atomic(&mut self) -> bool {
        if let Some(a) = self.atomic {
            return a;
        }
        let mut bytes = [0u8; 15];
        let rip = self.rip;
        let n = if self.read_kind(rip, &mut bytes, AccessKind::Fetch).is_ok() {
            bytes.len()
        } else {
            // Near the end of the mapped code: as many bytes as there are.
            let mut n = 0;
            while n < bytes.len()
                && self
                    .read_kind(
                        rip.wrapping_add(n as u64),
                        &mut bytes[n..=n],
                        AccessKind::Fetch,
                    )
                    .is_ok()
            {
                n += 1;
            }
            n
        };
        let mut atomic = false;
        for &b in &bytes[..n] {
            match b {
                0xf0 => atomic = true,
                0x66 | 0x67 | 0xf2 | 0xf3 | 0x2e | 0x36 | 0x3e | 0x26 | 0x64 | 0x65 => {}
                0x40..=0x4f => {}
                0x86 | 0x87 => {
                    atomic = true;
                    break;
                }
                _ => break,
            }
        }
        self.atomic = Some(atomic);
        atomic
    }

    /// Reads `buf.len()` bytes at `va` for an access of `kind`, page piece
    /// by page piece, under the log.
    fn read_kind(&mut self, va: u64, buf: &mut [u8], kind: AccessKind) -> Result<(), MemStop> {
        let mut done = 0;
        while done < buf.len() {
            let a = va.wrapping_add(done as u64);
            let ma = self.translate(a, kind)?;
            let n = ((PAGE - a % PAGE) as usize)
                .min(buf.len() - done)
                .min((LINE - ma % LINE) as usize);
            let out = &mut buf[done..done + n];
            self.mem
                .read(MachineAddr(ma), out)
                .map_err(|_| PageFault::absent(a, false))?;
            self.log.overlay(ma, out);
            done += n;
        }
        Ok(())
    }
}

impl GuestMemory for FastMem<'_> {
    fn read(&mut self, addr: u64, buf: &mut [u8]) -> Result<(), MemStop> {
        self.read_kind(addr, buf, AccessKind::Fetch)
    }

    fn write(&mut self, addr: u64, data: &[u8]) -> Result<(), MemStop> {
        super::write_as_stores(self, addr, data)
    }

    #[inline]
    fn load(&mut self, addr: u64, size: u8) -> Result<u64, MemStop> {
        let n = usize::from(size);
        if self.nloads < self.loads.len() {
            self.loads[self.nloads] = (addr, n as u64);
            self.nloads += 1;
        }
        if addr % PAGE + n as u64 <= PAGE {
            let ma = self.translate(addr, AccessKind::Read)?;
            let v = self
                .mem
                .load(MachineAddr(ma), n)
                .map_err(|_| PageFault::absent(addr, false))?;
            let line = ma & !(LINE - 1);
            let last = (ma + n as u64 - 1) & !(LINE - 1);
            if !self.log.may_hold(line) && !self.log.may_hold(last) {
                return Ok(v);
            }
        }
        let mut b = [0u8; 8];
        self.read_kind(addr, &mut b[..n], AccessKind::Read)?;
        Ok(u64::from_le_bytes(b))
    }

    fn store(&mut self, addr: u64, size: u8, value: u64) -> Result<(), MemStop> {
        let n = usize::from(size);
        // Every piece translates before any is logged: all or nothing.
        let mut pieces = [(0u64, 0usize, 0usize); 2];
        let mut k = 0;
        let mut done = 0;
        while done < n {
            let a = addr.wrapping_add(done as u64);
            let len = ((PAGE - a % PAGE) as usize).min(n - done);
            let ma = self.translate(a, AccessKind::Write)?;
            if ma + len as u64 > self.mem.size() {
                return Err(PageFault::absent(a, true).into());
            }
            pieces[k] = (ma, done, len);
            k += 1;
            done += len;
        }
        let rmw = self.loads[..self.nloads]
            .iter()
            .any(|&(l, ln)| l < addr + n as u64 && addr < l + ln);
        if rmw && !self.serial && self.is_atomic() {
            return Err(self.halt_for(Stop::Serialize));
        }
        for &(ma, at, len) in &pieces[..k] {
            // Split again at a line boundary inside the page.
            let first = ((LINE - ma % LINE) as usize).min(len);
            // `at` < 8: the piece's bytes are the value's from byte `at`.
            let piece = value >> (8 * at);
            self.log.put(ma, piece, first);
            if first < len {
                self.log
                    .put(ma + first as u64, piece >> (8 * first), len - first);
            }
        }
        Ok(())
    }

    fn fence(&mut self) -> Result<(), MemStop> {
        if self.log.is_empty() || self.serial {
            Ok(())
        } else {
            Err(self.halt_for(Stop::Drain))
        }
    }

    fn pause(&mut self) -> Result<(), MemStop> {
        if std::mem::take(&mut self.pause_ok) || self.serial {
            Ok(())
        } else {
            Err(self.halt_for(Stop::Pause))
        }
    }

    fn wants_boundaries(&self) -> bool {
        true
    }

    #[inline]
    fn insn_start(&mut self, rip: u64) {
        self.rip = rip;
        self.nloads = 0;
        self.atomic = None;
        self.log.undo.clear();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn bytes(mem: &MachineMemory, at: u64, n: usize) -> Vec<u8> {
        let mut b = vec![0u8; n];
        mem.read(MachineAddr(at), &mut b).expect("in range");
        b
    }

    #[test]
    fn store_log_merges_overlays_undoes_and_commits() {
        let mem = MachineMemory::new(1 << 20).expect("size");
        mem.write(MachineAddr(0x1000), &[0xaa; 128])
            .expect("in range");
        let mut log = StoreLog::new();
        // Inside a line, as a word; then at the line's last bytes (no
        // 8-byte window fits) and the next line's first.
        log.put(0x1004, 0x1122_3344, 4);
        log.put(0x103d, 0x00ee_ddcc, 3);
        log.put(0x1040, 0x77, 1);
        log.undo.clear();
        let mut buf = [0u8; 8];
        mem.read(MachineAddr(0x1002), &mut buf).expect("in range");
        log.overlay(0x1002, &mut buf);
        assert_eq!(buf, [0xaa, 0xaa, 0x44, 0x33, 0x22, 0x11, 0xaa, 0xaa]);
        // The next instruction's stores are taken back; earlier ones stay.
        log.put(0x1006, 0xffff, 2);
        log.put(0x103f, 0x55, 1);
        log.undo_insn();
        assert_eq!(log.commit(&mem), 2);
        assert_eq!(
            bytes(&mem, 0x1000, 8),
            [0xaa, 0xaa, 0xaa, 0xaa, 0x44, 0x33, 0x22, 0x11]
        );
        assert_eq!(bytes(&mem, 0x103c, 5), [0xaa, 0xcc, 0xdd, 0xee, 0x77]);
        assert!(log.is_empty());
        // After the commit the last-line shortcut starts over.
        log.put(0x1040, 0x99, 1);
        assert_eq!(log.commit(&mem), 1);
        assert_eq!(bytes(&mem, 0x1040, 2), [0x99, 0xaa]);
    }
}
