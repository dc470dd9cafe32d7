//! `memory_op` (hypercall 12, xen-abi.md §4.7): a domain's reservation —
//! the balloon — and what Xen tells a PV guest about machine memory.
//!
//! Frames a domain gives back go to the hypervisor's free pool
//! ([`crate::frames::FrameAllocator`]) and can be given to any domain up
//! to its `max_pages` (the `[[domain]] max_memory_mib` key; default: its
//! memory). A PV domain names frames by MFN (it is not translated): it
//! keeps its own P2M, and the M2P is written as Xen writes it
//! (populate_physmap and exchange set it, freed frames get
//! `INVALID_M2P_ENTRY`). Frames handed to a domain are zeroed first (Xen
//! scrubs them), and giving frames back flushes the domain's TLBs, so no
//! stale translation reaches a frame another domain may get next.
//!
//! # Commands
//! increase_reservation, decrease_reservation, populate_physmap (return
//! the number of extents done, starting from the continuation index in
//! `cmd` bits 6 and up), exchange, maximum_ram_page, current_reservation,
//! maximum_reservation, maximum_gpfn (from `shared_info.arch.max_pfn`, as
//! the guest set it), machphys_mfn_list, machphys_mapping, memory_map and
//! set_memory_map (no map until one is set: -ENOSYS, as Xen answers a PV
//! domain the toolstack gave none). add_to_physmap and remove_from_physmap
//! are for translated guests: -EACCES for a PV domain, as in Xen.
//! machine_memory_map and claim_pages are privileged (-EPERM: every domain
//! is unprivileged); get_vnumainfo is -EOPNOTSUPP (no vNUMA). The rest
//! (paging, sharing and access ops, PoD targets, acquire_resource) is
//! -ENOSYS.
//!
//! Checks are Xen's: extent orders above 9 (`CONFIG_DOMU_MAX_ORDER`) do
//! nothing; an address-width limit in `mem_flags` of 12 bits or fewer, or
//! an exact NUMA node request from an unprivileged domain, does nothing;
//! another domain's id does nothing (reservations) or is -EPERM (queries
//! and set_memory_map) — except from the privileged control domain (a
//! `privileged` domain 0), which may query any domain, set its map and
//! run its reservation ops (the frames go to or come from that domain,
//! within its `max_pages`; the extent list is the caller's; exchange
//! stays the caller's own);
//! a domain that does not exist does nothing or is -ESRCH; a list in
//! Xen's address range is -EFAULT (exchange) or does nothing.
//!
//! # Departure from Xen
//! Xen lets a PV domain give back a frame that is still mapped or pinned:
//! the domain loses it at once and Xen frees it when the last reference
//! goes. Here a frame still in use (a page table, mapped anywhere, pinned,
//! or granted and mapped by another domain) cannot be given back:
//! decrease_reservation stops at it and exchange fails with -EINVAL, as
//! Xen's exchange (and GNTTABOP_transfer) does for such a frame. A guest
//! that unmaps before it balloons, as Linux's balloon driver does, sees no
//! difference.

use super::{ok, u16_at, u32_at, u64_at, Call, HResult, Ret};
use crate::abi::{Errno, DOMID_SELF};
use crate::hypervisor::Effect;
use crate::ids::{DomainId, Mfn, PAGE_SIZE};

/// Sub-commands.
pub mod xenmem {
    /// Allocate extents; their MFNs are written back.
    pub const INCREASE_RESERVATION: u32 = 0;
    /// Give extents back (balloon inflate).
    pub const DECREASE_RESERVATION: u32 = 1;
    /// Highest machine frame + 1.
    pub const MAXIMUM_RAM_PAGE: u32 = 2;
    /// Frames the domain owns.
    pub const CURRENT_RESERVATION: u32 = 3;
    /// Frames it may own.
    pub const MAXIMUM_RESERVATION: u32 = 4;
    /// MFNs of the M2P table, one per 2 MiB of it.
    pub const MACHPHYS_MFN_LIST: u32 = 5;
    /// Allocate extents for given PFNs (balloon deflate).
    pub const POPULATE_PHYSMAP: u32 = 6;
    /// Map a frame at a GPFN (translated guests).
    pub const ADD_TO_PHYSMAP: u32 = 7;
    /// The domain's E820 map.
    pub const MEMORY_MAP: u32 = 9;
    /// The host's E820 map (privileged).
    pub const MACHINE_MEMORY_MAP: u32 = 10;
    /// Swap extents for others (for example below an address width).
    pub const EXCHANGE: u32 = 11;
    /// Where the M2P is mapped.
    pub const MACHPHYS_MAPPING: u32 = 12;
    /// Set a domain's E820 map.
    pub const SET_MEMORY_MAP: u32 = 13;
    /// Highest GPFN.
    pub const MAXIMUM_GPFN: u32 = 14;
    /// Unmap a GPFN (translated guests).
    pub const REMOVE_FROM_PHYSMAP: u32 = 15;
    /// Claim pages (privileged).
    pub const CLAIM_PAGES: u32 = 24;
    /// The domain's vNUMA topology.
    pub const GET_VNUMAINFO: u32 = 26;
}

/// `cmd` bits 0–5 are the command, the rest a continuation index.
const EXTENT_SHIFT: u32 = 6;
/// Xen's `CONFIG_DOMU_MAX_ORDER` on x86 (`PAGETABLE_ORDER`).
const MAX_ORDER: u32 = 9;
/// `HYPERVISOR_VIRT_END` of PV64: guest pointers in `[2^47, this)` are
/// Xen's own range.
const HYPERVISOR_VIRT_END: u64 = 0xFFFF_8800_0000_0000;
/// Where the read-only M2P is mapped and its size (`MACH2PHYS_VIRT_*`).
const MACH2PHYS_VIRT_START: u64 = 0xFFFF_8000_0000_0000;
const MACH2PHYS_VIRT_END: u64 = 0xFFFF_8040_0000_0000;
/// Xen's `E820MAX`.
const E820_MAX: u32 = 1024;
/// `shared_info.arch.max_pfn`.
const SHARED_INFO_MAX_PFN: u64 = 3088;
/// `INVALID_M2P_ENTRY`.
const INVALID_M2P: u64 = !0;
/// `XENMEMF_exact_node_request`.
const EXACT_NODE_REQUEST: u32 = 1 << 17;
/// `XENMEMF_vnode`.
const VNODE: u32 = 1 << 18;

/// Xen's `__addr_ok`: a guest pointer outside Xen's own range.
fn addr_ok(va: u64) -> bool {
    !(1 << 47..HYPERVISOR_VIRT_END).contains(&va)
}

/// Xen's `guest_handle_subrange_okay` for an array of u64 at `base`,
/// elements `first..=last`.
fn subrange_ok(base: u64, first: u64, last: u64) -> bool {
    let count = last.wrapping_sub(first).wrapping_add(1);
    count < u64::MAX / 8 && addr_ok(base.wrapping_add(first.wrapping_mul(8)))
}

/// `struct xen_memory_reservation`.
#[derive(Copy, Clone, Debug)]
struct Reservation {
    extent_start: u64,
    nr_extents: u64,
    extent_order: u32,
    mem_flags: u32,
    domid: u16,
}

impl Reservation {
    const SIZE: usize = 32;

    fn parse(b: &[u8]) -> Self {
        Reservation {
            extent_start: u64_at(b, 0),
            nr_extents: u64_at(b, 8),
            extent_order: u32_at(b, 16),
            mem_flags: u32_at(b, 20),
            domid: u16_at(b, 24),
        }
    }
}

/// What allocations a reservation's flags allow.
struct AllocRule {
    /// Frames must lie below this MFN.
    limit: u64,
}

impl Call<'_> {
    pub(super) fn memory_op(&mut self, cmd: u64, arg: u64) -> HResult {
        let op = (cmd & ((1 << EXTENT_SHIFT) - 1)) as u32;
        let start = cmd >> EXTENT_SHIFT;
        let simple = |c: &mut Self, f: fn(&mut Self, u64) -> HResult| {
            if start != 0 {
                Err(Errno::Inval)
            } else {
                f(c, arg)
            }
        };
        match op {
            xenmem::INCREASE_RESERVATION
            | xenmem::DECREASE_RESERVATION
            | xenmem::POPULATE_PHYSMAP => self.reservation_op(op, start, arg),
            xenmem::EXCHANGE => simple(self, Self::exchange),
            xenmem::MAXIMUM_RAM_PAGE => simple(self, |c, _| Ok(Ret::Value(c.max_page()))),
            xenmem::CURRENT_RESERVATION | xenmem::MAXIMUM_RESERVATION | xenmem::MAXIMUM_GPFN => {
                if start != 0 {
                    return Err(Errno::Inval);
                }
                self.reservation_query(op, arg)
            }
            xenmem::ADD_TO_PHYSMAP => {
                if start > u64::from(u16::MAX) {
                    return Err(Errno::Dom);
                }
                let b = self.read(arg, 24)?;
                // XENMAPSPACE_gmfn_foreign: only through the batch call.
                if u32_at(&b, 4) == 4 {
                    return Err(Errno::NoSys);
                }
                self.target(u16_at(&b, 0))?;
                Err(Errno::Acces)
            }
            xenmem::REMOVE_FROM_PHYSMAP => simple(self, |c, arg| {
                let b = c.read(arg, 16)?;
                c.target(u16_at(&b, 0))?;
                Err(Errno::Acces)
            }),
            xenmem::MEMORY_MAP => self.memory_map(arg),
            xenmem::SET_MEMORY_MAP => self.set_memory_map(arg),
            xenmem::MACHINE_MEMORY_MAP | xenmem::CLAIM_PAGES => Err(Errno::Perm),
            xenmem::MACHPHYS_MFN_LIST => self.machphys_mfn_list(arg),
            xenmem::MACHPHYS_MAPPING => {
                let mut b = Vec::with_capacity(24);
                let max_mfn = (MACH2PHYS_VIRT_END - MACH2PHYS_VIRT_START) / 8 - 1;
                for v in [MACH2PHYS_VIRT_START, MACH2PHYS_VIRT_END, max_mfn] {
                    b.extend_from_slice(&v.to_le_bytes());
                }
                self.write(arg, &b)?;
                ok()
            }
            xenmem::GET_VNUMAINFO => Err(Errno::OpNotSupp),
            _ => Err(Errno::NoSys),
        }
    }

    /// Xen's `max_page`: one past the highest machine frame.
    fn max_page(&self) -> u64 {
        self.hv.cfg.first_mfn.0 + self.hv.cfg.nr_frames
    }

    /// The domain a `domid` argument names, for an operation Xen checks
    /// with `XSM_TARGET`: the caller itself (DOMID_SELF or its own id);
    /// another existing domain is -EPERM (the caller is unprivileged), a
    /// missing one -ESRCH.
    fn target(&self, domid: u16) -> Result<DomainId, Errno> {
        if domid == DOMID_SELF || domid == self.d.0 {
            return Ok(self.d);
        }
        match self.hv.domain(DomainId(domid)) {
            Some(_) => Err(Errno::Perm),
            None => Err(Errno::Srch),
        }
    }

    /// As [`Self::target`], but the privileged control domain may name
    /// any domain (Xen's dummy XSM_TARGET: `is_control_domain`), for the
    /// queries and set_memory_map, which act on the domain named.
    fn target_any(&self, domid: u16) -> Result<DomainId, Errno> {
        match self.target(domid) {
            Err(Errno::Perm) if self.privileged() => Ok(DomainId(domid)),
            r => r,
        }
    }

    /// Xen's `construct_memop_from_reservation` and `propagate_node` for
    /// an unprivileged caller: `None` when the flags are refused.
    fn alloc_rule(&self, mem_flags: u32) -> Option<AllocRule> {
        let bits = mem_flags & 0xff;
        let max_page = self.max_page();
        let page_bits = 64 - max_page.saturating_sub(1).leading_zeros();
        let mut limit = u64::MAX;
        if bits != 0 && bits < page_bits + 12 {
            if bits <= 12 {
                return None;
            }
            limit = 1u64 << (bits - 12);
        }
        // No vNUMA: a vnode request is ignored. Otherwise a node (field =
        // node + 1) is advisory, and an exact one is refused, for an
        // unprivileged domain.
        if mem_flags & VNODE == 0
            && (mem_flags >> 8) & 0xff != 0
            && mem_flags & EXACT_NODE_REQUEST != 0
        {
            return None;
        }
        Some(AllocRule { limit })
    }

    /// increase_reservation, decrease_reservation, populate_physmap: the
    /// extents done (counting from `start`), as Xen returns them.
    fn reservation_op(&mut self, op: u32, start: u64, arg: u64) -> HResult {
        let Ok(b) = self.read(arg, Reservation::SIZE) else {
            return Ok(Ret::Value(start));
        };
        let r = Reservation::parse(&b);
        let target = self.target_any(r.domid);
        let refused = r.nr_extents > u64::from(u32::MAX >> EXTENT_SHIFT)
            || start >= r.nr_extents
            || target.is_err();
        let rule = if refused {
            None
        } else {
            self.alloc_rule(r.mem_flags)
        };
        let (Some(rule), Ok(t)) = (rule, target) else {
            return Ok(Ret::Value(start));
        };
        let list_ok = subrange_ok(r.extent_start, start, r.nr_extents - 1);
        let list_null = r.extent_start == 0;
        if r.extent_order > MAX_ORDER {
            return Ok(Ret::Value(start));
        }
        let done = match op {
            xenmem::INCREASE_RESERVATION if list_null || list_ok => {
                self.increase(t, &r, start, &rule)
            }
            xenmem::POPULATE_PHYSMAP if list_ok => self.populate(t, &r, start, &rule),
            xenmem::DECREASE_RESERVATION if list_ok => self.decrease(t, &r, start),
            _ => start,
        };
        Ok(Ret::Value(done))
    }

    /// Takes one extent for the caller (zeroed, counted against its
    /// `max_pages` unless `uncounted`); `None` when none is to be had.
    fn grow(&mut self, order: u32, rule: &AllocRule, uncounted: bool) -> Option<Mfn> {
        self.grow_for(self.d, order, rule, uncounted)
    }

    /// As [`Self::grow`], for domain `t` (the caller or, from the control
    /// domain, another).
    fn grow_for(
        &mut self,
        t: DomainId,
        order: u32,
        rule: &AllocRule,
        uncounted: bool,
    ) -> Option<Mfn> {
        let n = 1u64 << order;
        let dom = self.hv.domain(t)?;
        if !uncounted && dom.tot_pages() + n > dom.max_pages() {
            return None;
        }
        let base = self.hv.frames.take(order, rule.limit)?;
        for m in base.0..base.0 + n {
            let at = Mfn(m).addr(0).get();
            for off in (0..PAGE_SIZE).step_by(8) {
                self.mem.write_ma_u64(at + off, 0);
            }
            self.hv.dom_mut(t).mmu.pages.insert(m, Default::default());
        }
        Some(base)
    }

    fn increase(&mut self, t: DomainId, r: &Reservation, start: u64, rule: &AllocRule) -> u64 {
        let mut i = start;
        while i < r.nr_extents {
            let Some(base) = self.grow_for(t, r.extent_order, rule, false) else {
                break;
            };
            if r.extent_start != 0
                && self
                    .write(r.extent_start + 8 * i, &base.0.to_le_bytes())
                    .is_err()
            {
                // Xen keeps the extent (the guest just lost track of it).
                break;
            }
            i += 1;
        }
        i
    }

    fn populate(&mut self, t: DomainId, r: &Reservation, start: u64, rule: &AllocRule) -> u64 {
        let mut i = start;
        while i < r.nr_extents {
            let Ok(b) = self.read(r.extent_start + 8 * i, 8) else {
                break;
            };
            let gpfn = u64_at(&b, 0);
            let Some(base) = self.grow_for(t, r.extent_order, rule, false) else {
                break;
            };
            for j in 0..1u64 << r.extent_order {
                self.hv
                    .write_m2p(Mfn(base.0 + j), gpfn.wrapping_add(j), &mut *self.mem);
            }
            if self
                .write(r.extent_start + 8 * i, &base.0.to_le_bytes())
                .is_err()
            {
                break;
            }
            i += 1;
        }
        i
    }

    /// Whether the caller may give `mfn` up: it owns it and nothing uses
    /// it (no type reference, no mapping, no pin, no grant of it mapped
    /// by another domain; Xen's `steal_page` condition).
    pub(super) fn unused(&self, mfn: Mfn) -> bool {
        self.unused_by(self.d, mfn)
    }

    /// As [`Self::unused`], for domain `t`.
    fn unused_by(&self, t: DomainId, mfn: Mfn) -> bool {
        let Some(dom) = self.hv.domain(t) else {
            return false;
        };
        let granted = dom
            .grant
            .active
            .values()
            .any(|a| a.mfn == mfn && a.pin() > 0);
        !granted
            && dom
                .mmu_page(mfn)
                .is_some_and(|p| p.type_count == 0 && p.ro_refs == 0 && !p.pinned)
    }

    /// Takes `mfn` from the caller and returns it to the pool.
    pub(super) fn release(&mut self, mfn: Mfn) {
        self.release_from(self.d, mfn);
    }

    /// As [`Self::release`], from domain `t`.
    fn release_from(&mut self, t: DomainId, mfn: Mfn) {
        self.hv.dom_mut(t).mmu.pages.remove(&mfn.0);
        self.hv.write_m2p(mfn, INVALID_M2P, &mut *self.mem);
        self.hv.frames.give_back(mfn);
    }

    pub(super) fn flush_domain(&mut self) {
        self.flush_of(self.d);
    }

    fn flush_of(&mut self, t: DomainId) {
        self.effects.push(Effect::Flush {
            domain: t,
            vcpus: None,
            page: None,
        });
    }

    fn decrease(&mut self, t: DomainId, r: &Reservation, start: u64) -> u64 {
        let mut i = start;
        'extents: while i < r.nr_extents {
            let Ok(b) = self.read(r.extent_start + 8 * i, 8) else {
                break;
            };
            let gmfn = u64_at(&b, 0);
            for j in 0..1u64 << r.extent_order {
                let mfn = Mfn(gmfn.wrapping_add(j));
                if !self.unused_by(t, mfn) {
                    break 'extents;
                }
                self.release_from(t, mfn);
            }
            i += 1;
        }
        if i > start {
            self.flush_of(t);
        }
        i
    }

    /// current_reservation, maximum_reservation, maximum_gpfn.
    fn reservation_query(&mut self, op: u32, arg: u64) -> HResult {
        let b = self.read(arg, 2)?;
        let d = self.target_any(u16_at(&b, 0))?;
        let dom = self.hv.domain(d).ok_or(Errno::Srch)?;
        let v = match op {
            xenmem::CURRENT_RESERVATION => dom.tot_pages(),
            xenmem::MAXIMUM_RESERVATION => dom.max_pages(),
            _ => {
                let at = dom.shared_info().addr(SHARED_INFO_MAX_PFN).get();
                self.mem.read_ma_u64(at).max(1) - 1
            }
        };
        Ok(Ret::Value(v))
    }

    /// XENMEM_exchange (`struct xen_memory_exchange`: in @0, out @32,
    /// nr_exchanged @64), following Xen's `memory_exchange` for a PV
    /// domain: chunk by chunk, each chunk either wholly exchanged or not
    /// at all; `nr_exchanged` is written back on every path but the first
    /// read.
    fn exchange(&mut self, arg: u64) -> HResult {
        let b = self.read(arg, 72)?;
        let inp = Reservation::parse(&b[0..32]);
        let out = Reservation::parse(&b[32..64]);
        let mut nr_exchanged = u64_at(&b, 64);
        let rc = self.exchange_chunks(&inp, &out, &mut nr_exchanged);
        if !matches!(rc, Ok(true)) {
            self.write(arg + 64, &nr_exchanged.to_le_bytes())?;
        }
        rc.map(|_| Ret::Value(0))
    }

    /// The exchange itself; `Ok(true)` when there was nothing to do (no
    /// write-back), `Ok(false)` when done.
    fn exchange_chunks(
        &mut self,
        inp: &Reservation,
        out: &Reservation,
        nr_exchanged: &mut u64,
    ) -> Result<bool, Errno> {
        if inp.extent_order.max(out.extent_order) > MAX_ORDER {
            return Err(Errno::Perm);
        }
        if *nr_exchanged > inp.nr_extents
            || inp.domid != out.domid
            || (u64::MAX >> inp.extent_order) < inp.nr_extents
            || (u64::MAX >> out.extent_order) < out.nr_extents
            || inp.nr_extents << inp.extent_order != out.nr_extents << out.extent_order
        {
            return Err(Errno::Inval);
        }
        if *nr_exchanged == inp.nr_extents {
            return Ok(true);
        }
        if !subrange_ok(inp.extent_start, *nr_exchanged, inp.nr_extents - 1) {
            return Err(Errno::Fault);
        }
        let (in_chunk, out_chunk) = if inp.extent_order <= out.extent_order {
            (out.extent_order - inp.extent_order, 0)
        } else {
            (0, inp.extent_order - out.extent_order)
        };
        let out_first = if in_chunk > 0 {
            *nr_exchanged >> in_chunk
        } else {
            *nr_exchanged << out_chunk
        };
        if !subrange_ok(out.extent_start, out_first, out.nr_extents - 1) {
            return Err(Errno::Fault);
        }
        let rule = self.alloc_rule(out.mem_flags).ok_or(Errno::Inval)?;
        self.target(inp.domid)?;
        let first = *nr_exchanged >> in_chunk;
        for i in first..inp.nr_extents >> in_chunk {
            if let Err(e) = self.exchange_chunk(inp, out, &rule, i, in_chunk, out_chunk) {
                *nr_exchanged = i << in_chunk;
                return Err(e);
            }
        }
        *nr_exchanged = inp.nr_extents;
        Ok(false)
    }

    /// Exchanges chunk `i`: `2^in_chunk` input extents for `2^out_chunk`
    /// output extents.
    fn exchange_chunk(
        &mut self,
        inp: &Reservation,
        out: &Reservation,
        rule: &AllocRule,
        i: u64,
        in_chunk: u32,
        out_chunk: u32,
    ) -> Result<(), Errno> {
        // Steal the input frames (all of them checked before any moves).
        let mut stolen: Vec<Mfn> = Vec::new();
        for j in 0..1u64 << in_chunk {
            let b = self.read(inp.extent_start + 8 * ((i << in_chunk) + j), 8)?;
            let gmfn = u64_at(&b, 0);
            for k in 0..1u64 << inp.extent_order {
                let mfn = Mfn(gmfn.wrapping_add(k));
                if mfn.0 >= self.max_page() || !self.unused(mfn) || stolen.contains(&mfn) {
                    return Err(Errno::Inval);
                }
                stolen.push(mfn);
            }
        }
        // Allocate the output extents (uncounted: the domain's total does
        // not change).
        let mut fresh: Vec<Mfn> = Vec::new();
        for _ in 0..1u64 << out_chunk {
            match self.grow(out.extent_order, rule, true) {
                Some(m) => fresh.push(m),
                None => {
                    for m in fresh {
                        for f in m.0..m.0 + (1 << out.extent_order) {
                            self.release(Mfn(f));
                        }
                    }
                    return Err(Errno::NoMem);
                }
            }
        }
        // From here the chunk cannot fail: give the input frames back,
        // then tell the guest the output frames.
        for m in stolen {
            self.release(m);
        }
        self.flush_domain();
        let mut rc = Ok(());
        for (j, base) in fresh.into_iter().enumerate() {
            let slot = out.extent_start + 8 * ((i << out_chunk) + j as u64);
            let Ok(b) = self.read(slot, 8) else {
                rc = Err(Errno::Fault);
                continue;
            };
            let gpfn = u64_at(&b, 0);
            for k in 0..1u64 << out.extent_order {
                self.hv
                    .write_m2p(Mfn(base.0 + k), gpfn.wrapping_add(k), &mut *self.mem);
            }
            if self.write(slot, &base.0.to_le_bytes()).is_err() {
                rc = Err(Errno::Fault);
            }
        }
        rc
    }

    /// XENMEM_memory_map (`nr_entries` u32 @0, buffer @8).
    fn memory_map(&mut self, arg: u64) -> HResult {
        let b = self.read(arg, 16)?;
        let (want, buffer) = (u32_at(&b, 0), u64_at(&b, 8));
        let map = self
            .hv
            .domain(self.d)
            .map(|d| d.e820.clone())
            .unwrap_or_default();
        if map.is_empty() {
            return Err(Errno::NoSys);
        }
        let n = want.min(map.len() as u32);
        let bytes: Vec<u8> = map[..n as usize].iter().flatten().copied().collect();
        self.write(buffer, &bytes)?;
        self.write(arg, &n.to_le_bytes())?;
        ok()
    }

    /// XENMEM_set_memory_map (`struct xen_foreign_memory_map`: domid @0,
    /// nr_entries @8, buffer @16).
    fn set_memory_map(&mut self, arg: u64) -> HResult {
        let b = self.read(arg, 24)?;
        let (n, buffer) = (u32_at(&b, 8), u64_at(&b, 16));
        if n > E820_MAX {
            return Err(Errno::Inval);
        }
        let d = self.target_any(u16_at(&b, 0))?;
        let raw = self.read(buffer, 20 * n as usize)?;
        let map = raw
            .chunks_exact(20)
            .map(|c| c.try_into().expect("20-byte chunks"))
            .collect();
        self.hv.dom_mut(d).e820 = map;
        ok()
    }

    /// XENMEM_machphys_mfn_list (`max_extents` u32 @0, extent_start @8,
    /// `nr_extents` u32 @16): the M2P's frames, one MFN per 2 MiB of it.
    fn machphys_mfn_list(&mut self, arg: u64) -> HResult {
        let b = self.read(arg, 24)?;
        let (max, list) = (u32_at(&b, 0), u64_at(&b, 8));
        let frames = std::sync::Arc::clone(&self.hv.m2p_frames);
        let mut n = 0u32;
        for chunk in frames.chunks(512) {
            if n == max {
                break;
            }
            self.write(list + 8 * u64::from(n), &chunk[0].0.to_le_bytes())?;
            n += 1;
        }
        self.write(arg + 16, &n.to_le_bytes())?;
        ok()
    }
}

#[cfg(test)]
mod tests;
