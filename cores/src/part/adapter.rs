//! The functional core's memory, seen through the core's coherent caches.
//!
//! [`FuncCore`](crate::FuncCore) executes one instruction against a
//! [`GuestMemory`]. This adapter gives it the core's private hierarchy:
//! guest-virtual addresses are translated through the domain's page map,
//! loads go through [`PrivateHierarchy::load`] (so a core reads a line only
//! while it holds it readable), and stores are collected and retired into
//! the store buffer only when the whole instruction succeeded.
//!
//! An access that cannot be served now (a miss in flight, no free MSHR, a
//! full store buffer, a fence waiting for this context's stores, or a
//! read-modify-write that needs its line locked) stops the instruction
//! with [`MemStop::Retry`] and records why in [`Adapter::blocked`]: the
//! functional core's stops are precise, so nothing of the instruction
//! happened, and the core retries it once the reason is gone ("replay").
//!
//! Atomicity: an instruction that loads and then stores overlapping bytes
//! (every locked instruction, `xchg` with memory, and plain read-modify-write
//! instructions) runs as a locked operation: the store buffer drains, the
//! line is pinned in M, the instruction replays and its store is written
//! directly. Treating plain read-modify-writes as locked is stronger than
//! x86 requires, which is always a legal execution.
//!
//! Instruction bytes are read straight from machine memory (translation
//! happens once per block); guests here never write their code, and the
//! direct read keeps the I-side out of the coherence protocol for now.

use super::AddressMap;
use crate::mem::{GuestMemory, MemStop, PageFault, PAGE_SIZE as PAGE};
use crate::paging::{pfec, AccessKind, Translation, WalkFault};
use smpsim_engine::Cycle;
use smpsim_uncore::memory::{MachineAddr, MachineMemory};
use smpsim_uncore::overlay::overlay;
use smpsim_uncore::{Access, ContextId, PrivateHierarchy, ReqId};

const LINE: u64 = 64;

/// Why an instruction could not complete now.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub enum Blocked {
    /// A miss is in flight: replay when it completes.
    Wait(ReqId),
    /// No MSHR or way free: replay after the next message.
    Stall,
    /// The store buffer has no room: replay when it drains.
    StoreBuffer,
    /// A fence waits for this context's stores to drain.
    Drain,
    /// A read-modify-write of `size` bytes at guest-virtual `va` needs
    /// the lock.
    Lock {
        /// First byte.
        va: u64,
        /// Bytes (1..=16).
        size: usize,
    },
}

/// Entries of each of a context's TLBs unless configured.
pub const TLB_ENTRIES: usize = 64;

/// Ways of each TLB set (fewer when a TLB has fewer entries).
pub const TLB_WAYS: usize = 4;

/// A context's TLBs: an ITLB for instruction fetches and a DTLB for data,
/// each a 4-way set-associative, LRU cache of page-table translations (the
/// set is the virtual page number's low bits) with what each
/// entry allows (a write needs a translation made writable and dirty, a
/// fetch one without NX). A miss, or an access its entry does not allow,
/// walks the page tables again ([`AddressMap::translate`]), which sets the
/// accessed/dirty bits or reports the fault. Cleared whenever the
/// context's root changes, and by the hypervisor's flushes.
#[derive(Clone, Debug, serde::Serialize, serde::Deserialize)]
pub struct Tlb {
    /// ITLB entries: (virtual page number + 1, frame base | [`TLB_W`] |
    /// [`TLB_X`]); 0 = empty. A power of two long.
    itlb: Box<[(u64, u64)]>,
    /// DTLB entries, likewise.
    dtlb: Box<[(u64, u64)]>,
}

/// A TLB entry allows writes.
const TLB_W: u64 = 1;
/// A TLB entry allows instruction fetches.
const TLB_X: u64 = 2;

/// The set of `vpn` in TLB `t`.
#[inline]
fn set_of(t: &mut [(u64, u64)], vpn: u64) -> &mut [(u64, u64)] {
    let ways = TLB_WAYS.min(t.len());
    let sets = t.len() / ways;
    let s = (vpn as usize) & (sets - 1);
    &mut t[s * ways..(s + 1) * ways]
}

impl Default for Tlb {
    fn default() -> Self {
        Tlb::new(TLB_ENTRIES, TLB_ENTRIES)
    }
}

impl Tlb {
    /// Empty TLBs of `itlb` and `dtlb` entries (powers of two).
    pub fn new(itlb: usize, dtlb: usize) -> Self {
        assert!(
            itlb.is_power_of_two() && dtlb.is_power_of_two(),
            "TLB sizes {itlb}/{dtlb}: powers of two (the config checks this)"
        );
        Tlb {
            itlb: vec![(0, 0); itlb].into_boxed_slice(),
            dtlb: vec![(0, 0); dtlb].into_boxed_slice(),
        }
    }

    /// The set of `vpn` in the TLB an access of `kind` uses, most recently
    /// used first.
    #[inline]
    fn set(&mut self, kind: AccessKind, vpn: u64) -> &mut [(u64, u64)] {
        let t = if kind == AccessKind::Fetch {
            &mut self.itlb
        } else {
            &mut self.dtlb
        };
        set_of(t, vpn)
    }

    /// Forgets every translation.
    pub fn clear(&mut self) {
        self.itlb.fill((0, 0));
        self.dtlb.fill((0, 0));
    }

    /// Forgets the translation of the page holding `va`.
    pub fn flush_page(&mut self, va: u64) {
        let vpn = va / PAGE;
        for t in [&mut self.itlb, &mut self.dtlb] {
            let set = set_of(t, vpn);
            if let Some(k) = set.iter().position(|e| e.0 == vpn + 1) {
                // Keep the set's valid entries first.
                set[k..].rotate_left(1);
                let last = set.len() - 1;
                set[last] = (0, 0);
            }
        }
    }

    /// The machine address of `va` for an access of `kind`, if the TLB
    /// holds a translation that allows it.
    #[inline]
    pub fn lookup(&mut self, va: u64, kind: AccessKind) -> Option<u64> {
        let vpn = va / PAGE;
        let need = match kind {
            AccessKind::Read => 0,
            AccessKind::Write => TLB_W,
            AccessKind::Fetch => TLB_X,
        };
        let set = self.set(kind, vpn);
        let k = set.iter().position(|e| e.0 == vpn + 1)?;
        if k > 0 {
            set[..=k].rotate_right(1);
        }
        let e = set[0].1;
        (e & need == need).then(|| (e & !(PAGE - 1)) + va % PAGE)
    }

    /// Walks `space`'s page tables in `mem` for an access of `kind` to
    /// `va` without installing the result, or the fault.
    pub fn walk(
        &self,
        space: &dyn AddressMap,
        mem: &MachineMemory,
        va: u64,
        kind: AccessKind,
    ) -> Result<Translation, PageFault> {
        match space.translate(mem, va, kind) {
            Ok(t) => Ok(t),
            Err(WalkFault::NonCanonical) => {
                let write = if kind == AccessKind::Write {
                    pfec::WRITE as u16
                } else {
                    0
                };
                Err(PageFault::from_code(va, PageFault::NON_CANONICAL | write))
            }
            Err(WalkFault::Page(code)) => {
                let user = if space.user_mode() { pfec::USER } else { 0 };
                Err(PageFault::from_code(va, (code | user) as u16))
            }
        }
    }

    /// Installs walk result `t` for `va`.
    pub fn install(&mut self, va: u64, kind: AccessKind, t: &Translation) {
        let vpn = va / PAGE;
        let perms = if t.write_ok { TLB_W } else { 0 } | if t.exec_ok { TLB_X } else { 0 };
        let set = self.set(kind, vpn);
        // Replace the page's own entry (a permission upgrade) or the least
        // recently used one, then make it the most recent.
        let k = set
            .iter()
            .position(|e| e.0 == vpn + 1)
            .unwrap_or(set.len() - 1);
        set[..=k].rotate_right(1);
        set[0] = (vpn + 1, t.frame | perms);
    }

    /// The machine address of `va` for an access of `kind` through `space`
    /// (walking its page tables in `mem` on a miss, untimed), or the fault.
    #[inline]
    pub fn translate(
        &mut self,
        space: &dyn AddressMap,
        mem: &MachineMemory,
        va: u64,
        kind: AccessKind,
    ) -> Result<u64, PageFault> {
        if let Some(ma) = self.lookup(va, kind) {
            return Ok(ma);
        }
        let t = self.walk(space, mem, va, kind)?;
        self.install(va, kind, &t);
        Ok(t.frame + va % PAGE)
    }
}

/// Reusable buffers of the adapter (no allocation per instruction).
#[derive(Debug, Default)]
pub struct Scratch {
    loads: Vec<(u64, usize)>,
    stores: Vec<PendingStore>,
    /// The latency of each timed walk of the last instruction.
    pub walks: Vec<u64>,
}

/// A store of one instruction, not yet retired.
#[derive(Copy, Clone, Debug)]
struct PendingStore {
    va: u64,
    size: u8,
    value: u64,
}

/// One instruction's view of memory.
pub struct Adapter<'a> {
    /// The core's private hierarchy.
    pub hier: &'a mut PrivateHierarchy,
    /// Machine memory (instruction bytes).
    pub mem: &'a MachineMemory,
    /// The VCPU's page map.
    pub space: &'a dyn AddressMap,
    /// The context's translation cache.
    pub tlb: &'a mut Tlb,
    /// Issue cycle of the instruction.
    pub now: Cycle,
    /// The SMT context issuing it (its own store-buffer entries forward).
    pub ctx: ContextId,
    /// Store-buffer entries still free.
    pub sb_free: usize,
    /// The locked range held for this instruction, with its old value.
    pub locked: Option<(u64, usize, u128)>,
    /// Latest cycle a loaded value is ready.
    pub ready: Cycle,
    /// Set when the instruction must replay.
    pub blocked: Option<Blocked>,
    /// Cycles of page walks this instruction waited for before its
    /// accesses (the walks' dependent entry loads, hits in the caches).
    pub walk_delay: u64,
    walks: &'a mut Vec<u64>,
    /// Serve loads of lines the core holds without cache statistics or
    /// replacement updates (the out-of-order pipeline timed them already).
    pub quiet: bool,
    loads: &'a mut Vec<(u64, usize)>,
    stores: &'a mut Vec<PendingStore>,
    sb_used: usize,
    /// The instruction stores more than the (empty) store buffer holds.
    oversize: bool,
}

fn overlaps(a: u64, an: usize, b: u64, bn: usize) -> bool {
    a < b + bn as u64 && b < a + an as u64
}

/// A byte-buffer write as a series of stores of at most 8 bytes (for
/// memories whose stores are buffered).
pub fn write_as_stores(mem: &mut dyn GuestMemory, addr: u64, data: &[u8]) -> Result<(), MemStop> {
    for (i, chunk) in data.chunks(8).enumerate() {
        let mut b = [0u8; 8];
        b[..chunk.len()].copy_from_slice(chunk);
        let size = u8::try_from(chunk.len()).expect("chunks of at most 8");
        mem.store(addr + 8 * i as u64, size, u64::from_le_bytes(b))?;
    }
    Ok(())
}

/// Splits `[va, va + n)` at page boundaries: (address, offset, length).
pub(super) fn page_pieces(va: u64, n: usize) -> impl Iterator<Item = (u64, usize, usize)> {
    let mut done = 0usize;
    std::iter::from_fn(move || {
        if done >= n {
            return None;
        }
        let a = va.wrapping_add(done as u64);
        let len = ((PAGE - a % PAGE) as usize).min(n - done);
        let at = done;
        done += len;
        Some((a, at, len))
    })
}

/// Store-buffer entries a store takes (one per line it touches).
fn line_pieces(ma: u64, n: usize) -> usize {
    ((ma + n as u64 - 1) / LINE - ma / LINE + 1) as usize
}

impl<'a> Adapter<'a> {
    /// An adapter for an instruction issuing at `now`.
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        hier: &'a mut PrivateHierarchy,
        mem: &'a MachineMemory,
        (space, tlb): (&'a dyn AddressMap, &'a mut Tlb),
        scratch: &'a mut Scratch,
        now: Cycle,
        ctx: ContextId,
        sb_free: usize,
        locked: Option<(u64, usize, u128)>,
    ) -> Self {
        scratch.loads.clear();
        scratch.stores.clear();
        scratch.walks.clear();
        Adapter {
            hier,
            mem,
            space,
            tlb,
            now,
            ctx,
            sb_free,
            locked,
            ready: now,
            blocked: None,
            walk_delay: 0,
            walks: &mut scratch.walks,
            quiet: false,
            loads: &mut scratch.loads,
            stores: &mut scratch.stores,
            sb_used: 0,
            oversize: false,
        }
    }

    /// Starts the next instruction of a paced run: issuing at `now` with
    /// `sb_free` store-buffer entries free and no lock (what
    /// [`Self::new`] would give it, without rebuilding the adapter).
    pub fn restart(&mut self, now: Cycle, sb_free: usize) {
        self.loads.clear();
        self.stores.clear();
        self.walks.clear();
        self.now = now;
        self.sb_free = sb_free;
        self.locked = None;
        self.ready = now;
        self.blocked = None;
        self.walk_delay = 0;
        self.sb_used = 0;
        self.oversize = false;
    }

    /// Whether the current instruction has stores to retire.
    #[inline]
    pub fn stores_pending(&self) -> bool {
        !self.stores.is_empty()
    }

    /// The latency of each timed page walk of the current instruction.
    pub fn walks(&self) -> &[u64] {
        self.walks
    }

    /// Translates through the TLB; a miss walks the page tables and, in a
    /// timed access (not `quiet`), loads each entry the walk read through
    /// the hierarchy, one after the other: hits add their load-to-use
    /// latency to [`Adapter::walk_delay`], a miss blocks the instruction
    /// (its replay walks again, then hitting the lines just fetched). The
    /// translation is installed only once its walk is complete.
    fn translate(&mut self, va: u64, kind: AccessKind) -> Result<u64, MemStop> {
        if let Some(ma) = self.tlb.lookup(va, kind) {
            return Ok(ma);
        }
        let t = self.tlb.walk(self.space, self.mem, va, kind)?;
        if !self.quiet {
            let mut delay = 0;
            for &e in &t.walk.entries[..usize::from(t.walk.len)] {
                match self.hier.load_in(self.now, self.ctx, MachineAddr(e), 8) {
                    Access::Done { ready, .. } => delay += ready.saturating_since(self.now),
                    Access::Pending(id) => return Err(self.block(Blocked::Wait(id))),
                    Access::Stall => return Err(self.block(Blocked::Stall)),
                }
            }
            self.walk_delay += delay;
            self.walks.push(delay);
        }
        self.tlb.install(va, kind, &t);
        Ok(t.frame + va % PAGE)
    }

    /// Stops the instruction for `why`: it is retried once that is gone.
    fn block(&mut self, why: Blocked) -> MemStop {
        self.blocked = Some(why);
        MemStop::Retry
    }

    /// The bytes a read-modify-write store of `n` bytes at `va` must lock:
    /// the store, the lock already held (a wider operand grows it), and
    /// every load of this instruction that overlaps or abuts that span,
    /// transitively. The halves of `cmpxchg8b`/`cmpxchg16b` are loaded
    /// before either is stored, so the first store locks the whole operand
    /// (locking only the loads that overlap each store asked for the two
    /// halves' locks in turn, forever).
    fn lock_span(&self, va: u64, n: usize) -> (u64, u64) {
        let (mut lo, mut hi) = (va, va + n as u64);
        if let Some((l, ln, _)) = self.locked {
            (lo, hi) = (lo.min(l), hi.max(l + ln as u64));
        }
        loop {
            let grown = self.loads.iter().fold((lo, hi), |(lo, hi), &(l, ln)| {
                let end = l + ln as u64;
                if l <= hi && lo <= end {
                    (lo.min(l), hi.max(end))
                } else {
                    (lo, hi)
                }
            });
            if grown == (lo, hi) {
                return grown;
            }
            (lo, hi) = grown;
        }
    }

    fn in_lock(&self, va: u64, n: usize) -> bool {
        self.locked
            .is_some_and(|(l, ln, _)| va >= l && va + n as u64 <= l + ln as u64)
    }

    /// Loads `n` bytes (≤ 8) at `va` from the hierarchy, page piece by piece.
    fn load_pieces(&mut self, va: u64, n: usize) -> Result<u64, MemStop> {
        let mut bytes = [0u8; 8];
        for (a, at, len) in page_pieces(va, n) {
            let ma = self.translate(a, AccessKind::Read)?;
            if self.quiet {
                if let Some(v) = self.hier.peek_in(self.ctx, MachineAddr(ma), len) {
                    bytes[at..at + len].copy_from_slice(&v.to_le_bytes()[..len]);
                    continue;
                }
            }
            match self.hier.load_in(self.now, self.ctx, MachineAddr(ma), len) {
                Access::Done { ready, value, .. } => {
                    self.ready = self.ready.max(ready);
                    bytes[at..at + len].copy_from_slice(&value.to_le_bytes()[..len]);
                }
                Access::Pending(id) => return Err(self.block(Blocked::Wait(id))),
                Access::Stall => return Err(self.block(Blocked::Stall)),
            }
        }
        Ok(u64::from_le_bytes(bytes))
    }

    /// Overlays this instruction's earlier stores on `value` (the `n`
    /// bytes at `va`), youngest last; also says whether they covered every
    /// byte.
    fn forward(&self, va: u64, n: usize, value: u64) -> (u64, bool) {
        let mut bytes = value.to_le_bytes();
        let mut have = 0u32;
        for s in self.stores.iter() {
            let src = s.value.to_le_bytes();
            have |= overlay(va, &mut bytes[..n], s.va, &src[..usize::from(s.size)]);
        }
        (u64::from_le_bytes(bytes), have == (1u32 << n) - 1)
    }

    /// Retires the instruction's stores: the locked range through
    /// `end_locked` (returned as the new value), the rest into the store
    /// buffer.
    pub fn commit(mut self) -> Option<u128> {
        self.commit_stores()
    }

    /// [`Self::commit`] without ending the adapter: a paced run then
    /// starts its next instruction with [`Self::restart`].
    #[inline]
    pub fn commit_stores(&mut self) -> Option<u128> {
        if self.stores.is_empty() {
            return None;
        }
        self.commit_pending()
    }

    /// [`Self::commit_stores`] of an instruction that stored.
    #[inline(never)]
    fn commit_pending(&mut self) -> Option<u128> {
        let mut locked_new = self.locked.map(|(_, _, old)| old.to_le_bytes());
        let mut wrote_locked = false;
        for s in self.stores.iter() {
            if let (Some((l, _, _)), true) = (self.locked, self.in_lock(s.va, usize::from(s.size)))
            {
                let buf = locked_new.as_mut().expect("locked");
                let off = (s.va - l) as usize;
                let n = usize::from(s.size);
                buf[off..off + n].copy_from_slice(&s.value.to_le_bytes()[..n]);
                wrote_locked = true;
                continue;
            }
            for (a, at, len) in page_pieces(s.va, usize::from(s.size)) {
                let ma = self
                    .tlb
                    .translate(self.space, self.mem, a, AccessKind::Write)
                    .expect("translated at execution");
                let v = u128::from(s.value >> (8 * at));
                if self.oversize {
                    self.hier
                        .store_in_oversize(self.now, self.ctx, MachineAddr(ma), len, v);
                } else {
                    self.hier
                        .store_in(self.now, self.ctx, MachineAddr(ma), len, v)
                        .expect("store-buffer room was reserved at execution");
                }
            }
        }
        locked_new.filter(|_| wrote_locked).map(u128::from_le_bytes)
    }
}

impl GuestMemory for Adapter<'_> {
    fn read(&mut self, addr: u64, buf: &mut [u8]) -> Result<(), MemStop> {
        for (a, at, len) in page_pieces(addr, buf.len()) {
            let ma = self.translate(a, AccessKind::Fetch)?;
            self.mem
                .read(MachineAddr(ma), &mut buf[at..at + len])
                .map_err(|_| PageFault::absent(a, false))?;
        }
        Ok(())
    }

    fn write(&mut self, addr: u64, data: &[u8]) -> Result<(), MemStop> {
        write_as_stores(self, addr, data)
    }

    fn fence(&mut self) -> Result<(), MemStop> {
        if self.hier.store_buffer_empty_in(self.ctx) {
            Ok(())
        } else {
            Err(self.block(Blocked::Drain))
        }
    }

    fn load(&mut self, addr: u64, size: u8) -> Result<u64, MemStop> {
        let n = usize::from(size);
        let (own, covered) = self.forward(addr, n, 0);
        let value = if covered {
            own
        } else {
            let base = self.load_pieces(addr, n)?;
            self.forward(addr, n, base).0
        };
        self.loads.push((addr, n));
        Ok(value)
    }

    fn store(&mut self, addr: u64, size: u8, value: u64) -> Result<(), MemStop> {
        let n = usize::from(size);
        for (a, _, _) in page_pieces(addr, n) {
            self.translate(a, AccessKind::Write)?;
        }
        let rmw = self.loads.iter().any(|&(l, ln)| overlaps(l, ln, addr, n));
        if rmw && !self.in_lock(addr, n) {
            let (lo, hi) = self.lock_span(addr, n);
            let size = (hi - lo) as usize;
            // Atomic only within one page and 16 bytes (all locked x86
            // operands fit); anything else proceeds as plain accesses.
            if size <= 16 && lo / PAGE == (hi - 1) / PAGE {
                return Err(self.block(Blocked::Lock { va: lo, size }));
            }
        }
        if !self.in_lock(addr, n) {
            let need: usize = page_pieces(addr, n)
                .map(|(a, _, len)| {
                    let ma = self
                        .tlb
                        .translate(self.space, self.mem, a, AccessKind::Write)
                        .expect("checked above");
                    line_pieces(ma, len)
                })
                .sum();
            if self.sb_used + need > self.sb_free {
                // An instruction that alone outgrows the buffer (fxsave,
                // xsave) waits for it to be empty, then overfills it.
                if self.hier.store_buffer_len() != 0 {
                    return Err(self.block(Blocked::StoreBuffer));
                }
                self.oversize = true;
            }
            self.sb_used += need;
        }
        self.stores.push(PendingStore {
            va: addr,
            size,
            value,
        });
        Ok(())
    }
}
