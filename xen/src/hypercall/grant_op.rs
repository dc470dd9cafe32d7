//! `grant_table_op(cmd, ops, count)` (20): the `GNTTABOP_*` commands over
//! [`crate::grant`] (xen-abi.md §4.8; Xen's `common/grant_table.c`).
//!
//! # Results, as Xen writes them
//! The hypercall returns 0 and each op's outcome is in its `status` field
//! (`GNTST_*`), except for whole-call failures: an unreadable op array is
//! -EFAULT, an unknown command -ENOSYS, a continuation index in `cmd` (bits
//! 12+) on anything but cache_flush -EINVAL, a `count` other than 1 for
//! setup_table, query_size and get_status_frames -EINVAL; set_version and
//! get_version return errnos of their own (-EBUSY, -ERANGE, -ESRCH,
//! -EPERM). cache_flush is -ENOSYS as on x86 Xen (it is built for Arm
//! only), and so is dump_table (no longer in Xen). The batch ops (map,
//! unmap, unmap_and_replace, transfer, copy, swap_grant_ref) run every op
//! of the batch.
//!
//! # Transfer (PV)
//! Xen's `gnttab_transfer`: the caller names one of its frames by MFN
//! (`gmfn`) and gives it to domain `domid` through that domain's entry
//! `ref`, which must be exactly `GTF_accept_transfer` for the caller's
//! domid. The frame must be the caller's and unused, as for
//! decrease_reservation (no type reference, mapping, pin or mapped grant
//! of it), else `GNTST_bad_page` and nothing changes. Otherwise the
//! caller loses it at once (its count drops and its TLBs are flushed);
//! if the transfer then fails — no such domain (`DOMID_SELF` is none:
//! `GNTST_bad_domain`), the receiver at its `max_pages`, a ref out of
//! range or not accepting from the caller (`GNTST_general_error`) — the
//! frame goes to the free pool, as Xen frees it. On success the receiver
//! owns the frame with its contents (no scrub), the M2P maps it to the
//! PFN the receiver wrote in the entry's frame field, the entry's frame
//! becomes the MFN and its flags gain `GTF_transfer_committed` and
//! `GTF_transfer_completed`. Xen copies the page to a frame below 2^32
//! for a v1 receiver when its MFN is wider than the entry's 32-bit field
//! (`GNTST_address_too_big` when none is free); smpsim's machine memory
//! never reaches 2^32 frames (16 TiB), so that path does not exist here.
//!
//! # Host mappings (PV)
//! `GNTMAP_host_map` writes the caller's L1 entry itself: the one mapping
//! `host_addr` in its current page tables, or with `GNTMAP_contains_pte`
//! the entry at machine address `host_addr` (8-aligned, in one of its own
//! validated L1 tables). The PTE is present, accessed, dirty and NX,
//! writable unless `GNTMAP_readonly`, user-accessible with
//! `GNTMAP_application_map`, with the grant's cache attributes and the
//! `GNTMAP_guest_avail` bits; the entry it replaces drops its references.
//! Unmapping checks that the entry still maps the granted frame, present
//! and with the write permission the map gave it (XSA-234), and clears it
//! (unmap_and_replace moves the entry stolen from `new_addr` there
//! instead); a failed check is `GNTST_general_error` and keeps the
//! mapping's references. A map flushes the page (or, by PTE address, the
//! caller's TLBs); a batch that unmapped anything flushes the caller's
//! TLBs, as Xen does.
//!
//! Only the caller may be the target of setup_table, query_size,
//! get_status_frames and get_version (Xen's XSM_TARGET check), or any
//! domain when the caller is the privileged control domain (a
//! `privileged` domain 0); map and copy name the granter by its domid.
//!
//! Preemption is not modelled: every batch runs to its end in one call.

use super::{ok, u16_at, u32_at, u64_at, Call, HResult, Ret};
use crate::abi::{Errno, DOMID_SELF};
use crate::grant::{gntmap, gntst, gtf, Active, Entry, Mapping, MAX_GRANT_FRAMES};
use crate::hypervisor::Effect;
use crate::ids::{DomainId, Mfn, PAGE_SIZE};
use crate::mmu::{Mmu, PageType};
use smpsim_cores::paging::pte;

/// `GNTTABOP_*` commands.
pub mod op {
    /// Map a grant.
    pub const MAP_GRANT_REF: u32 = 0;
    /// Unmap a grant.
    pub const UNMAP_GRANT_REF: u32 = 1;
    /// Size the table and get its frames.
    pub const SETUP_TABLE: u32 = 2;
    /// Debug dump (removed from Xen: -ENOSYS).
    pub const DUMP_TABLE: u32 = 3;
    /// Give a page away.
    pub const TRANSFER: u32 = 4;
    /// Hypervisor copy.
    pub const COPY: u32 = 5;
    /// Table size.
    pub const QUERY_SIZE: u32 = 6;
    /// Unmap, moving another PTE into the slot.
    pub const UNMAP_AND_REPLACE: u32 = 7;
    /// Choose v1 or v2.
    pub const SET_VERSION: u32 = 8;
    /// The v2 status frames.
    pub const GET_STATUS_FRAMES: u32 = 9;
    /// The version.
    pub const GET_VERSION: u32 = 10;
    /// Swap two entries.
    pub const SWAP_GRANT_REF: u32 = 11;
    /// Cache maintenance on a granted frame (Arm only: -ENOSYS on x86).
    pub const CACHE_FLUSH: u32 = 12;
}

/// Bits of `cmd` that name the command (the rest is a continuation index).
const CMD_MASK: u32 = (1 << 12) - 1;
/// `GNTCOPY_source_gref`.
const COPY_SOURCE_GREF: u16 = 1 << 0;
/// `GNTCOPY_dest_gref`.
const COPY_DEST_GREF: u16 = 1 << 1;
/// First domid that is not a domain (`DOMID_FIRST_RESERVED`).
const DOMID_FIRST_RESERVED: u16 = 0x7FF0;

/// The PTE flags of a host mapping with `GNTMAP_*` `flags` and the grant's
/// `GTF_PWT|PCD|PAT` bits `cache` (Xen's `grant_to_pte_flags`).
fn pte_flags(flags: u32, cache: u16) -> u64 {
    let mut f = pte::P | pte::A | pte::D | pte::NX;
    if flags & gntmap::APPLICATION_MAP != 0 {
        f |= pte::US;
    }
    if flags & gntmap::READONLY == 0 {
        f |= pte::RW;
    }
    f |= u64::from(flags >> gntmap::GUEST_AVAIL0 & 7) << 9;
    let attr = cache >> 5;
    // PWT, PCD → PTE bits 3, 4; PAT → bit 7.
    f | u64::from(attr & 3) << 3 | u64::from(attr & 4) << 5
}

/// Xen's `guest_handle_okay` for a PV64 guest (`access_ok`): the array
/// must start outside Xen's part of the address space (nothing is read).
fn handle_okay(addr: u64) -> bool {
    !(1 << 47..crate::mmu::HYPERVISOR_VIRT_END).contains(&addr)
}

/// One side of a copy, as claimed.
struct Buf {
    mfn: Mfn,
    off: u16,
    len: u16,
}

impl Call<'_> {
    pub(super) fn grant_table_op(&mut self, cmd: u32, ops: u64, count: u32) -> HResult {
        if count > i32::MAX as u32 {
            return Err(Errno::Inval);
        }
        let c = cmd & CMD_MASK;
        if c != op::CACHE_FLUSH && cmd >> 12 != 0 {
            return Err(Errno::Inval);
        }
        let single = |count: u32| {
            if count == 1 {
                Ok(())
            } else {
                Err(Errno::Inval)
            }
        };
        let batch = matches!(
            c,
            op::MAP_GRANT_REF
                | op::UNMAP_GRANT_REF
                | op::UNMAP_AND_REPLACE
                | op::TRANSFER
                | op::COPY
                | op::SWAP_GRANT_REF
        );
        if batch && !handle_okay(ops) {
            return Err(Errno::Fault);
        }
        match c {
            op::MAP_GRANT_REF => self.grant_batch(ops, count, 32, Self::map_op),
            op::UNMAP_GRANT_REF => self.unmap_batch(ops, count, false),
            op::UNMAP_AND_REPLACE => self.unmap_batch(ops, count, true),
            op::SETUP_TABLE => single(count).and_then(|()| self.setup_table(ops)),
            op::QUERY_SIZE => single(count).and_then(|()| self.query_size(ops)),
            op::GET_STATUS_FRAMES => single(count).and_then(|()| self.get_status_frames(ops)),
            op::SET_VERSION => self.set_version(ops),
            op::GET_VERSION => self.get_version(ops),
            op::COPY => self.grant_batch(ops, count, 40, Self::copy_op),
            op::SWAP_GRANT_REF => self.grant_batch(ops, count, 12, Self::swap_op),
            op::TRANSFER => self.grant_batch(ops, count, 24, Self::transfer_op),
            // cache_flush is an Arm-only command (CONFIG_HAS_GRANT_CACHE_FLUSH);
            // dump_table is gone from Xen.
            op::CACHE_FLUSH | op::DUMP_TABLE => Err(Errno::NoSys),
            _ => Err(Errno::NoSys),
        }
    }

    /// Runs `one` on each `size`-byte op and writes it back.
    fn grant_batch(
        &mut self,
        ops: u64,
        count: u32,
        size: u64,
        one: fn(&mut Self, &mut [u8]),
    ) -> HResult {
        for i in 0..u64::from(count) {
            let at = ops.wrapping_add(i * size);
            let mut b = self.read(at, size as usize)?;
            one(self, &mut b);
            self.write(at, &b)?;
        }
        ok()
    }

    fn mmu_of(&mut self, d: DomainId) -> Mmu<'_> {
        Mmu {
            dom: self.hv.dom_mut(d),
            mem: &mut *self.mem,
            flush_all: false,
        }
    }

    /// A real domain named by id (not DOMID_SELF), for map.
    fn domain_by_id(&self, dom: u16) -> Option<DomainId> {
        let d = DomainId(dom);
        (dom < DOMID_FIRST_RESERVED && self.hv.domain(d).is_some()).then_some(d)
    }

    /// The domain `dom` names (DOMID_SELF or an id), which the caller may
    /// act on (Xen's XSM_TARGET: itself, or any domain for the privileged
    /// control domain).
    fn target_domain(&self, dom: u16) -> Result<DomainId, i16> {
        if dom == DOMID_SELF || dom == self.d.0 {
            return Ok(self.d);
        }
        match self.domain_by_id(dom) {
            Some(d) if self.privileged() => Ok(d),
            Some(_) => Err(gntst::PERMISSION_DENIED),
            None => Err(gntst::BAD_DOMAIN),
        }
    }

    // ---- setup_table, query_size, versions, status frames ----

    fn setup_table(&mut self, at: u64) -> HResult {
        let b = self.read(at, 24)?;
        let (dom, nr, list) = (u16_at(&b, 0), u32_at(&b, 4), u64_at(&b, 16));
        if !handle_okay(list) {
            return Err(Errno::Fault);
        }
        let status = match self.target_domain(dom) {
            Ok(d) => self.setup_frames(d, nr, list),
            Err(s) => s,
        };
        self.write(at + 8, &status.to_le_bytes())?;
        ok()
    }

    fn setup_frames(&mut self, d: DomainId, nr: u32, list: u64) -> i16 {
        if nr > MAX_GRANT_FRAMES {
            return gntst::GENERAL_ERROR;
        }
        let want = nr.max(self.hv.dom_mut(d).grant.nr_frames());
        if self.hv.grant_grow(d, want, &mut *self.mem).is_err() {
            return gntst::GENERAL_ERROR;
        }
        for i in 0..nr {
            let mfn = self.hv.dom_mut(d).grant.shared[i as usize];
            let to = list.wrapping_add(8 * u64::from(i));
            if self.write(to, &mfn.0.to_le_bytes()).is_err() {
                return gntst::BAD_VIRT_ADDR;
            }
        }
        gntst::OKAY
    }

    fn query_size(&mut self, at: u64) -> HResult {
        let mut b = self.read(at, 16)?;
        let status = match self.target_domain(u16_at(&b, 0)) {
            Ok(d) => {
                let n = self.hv.dom_mut(d).grant.nr_frames();
                b[4..8].copy_from_slice(&n.to_le_bytes());
                b[8..12].copy_from_slice(&MAX_GRANT_FRAMES.to_le_bytes());
                gntst::OKAY
            }
            Err(s) => s,
        };
        b[12..14].copy_from_slice(&status.to_le_bytes());
        self.write(at, &b)?;
        ok()
    }

    fn get_status_frames(&mut self, at: u64) -> HResult {
        let b = self.read(at, 16)?;
        let (nr, dom, list) = (u32_at(&b, 0), u16_at(&b, 4), u64_at(&b, 8));
        if !handle_okay(list) {
            return Err(Errno::Fault);
        }
        let status = match self.target_domain(dom) {
            Ok(d) => self.status_frames_to(d, nr, list),
            Err(s) => s,
        };
        self.write(at + 6, &status.to_le_bytes())?;
        ok()
    }

    fn status_frames_to(&mut self, d: DomainId, nr: u32, list: u64) -> i16 {
        let frames = self.hv.dom_mut(d).grant.status.clone();
        if nr > frames.len() as u32 {
            return gntst::GENERAL_ERROR;
        }
        for (i, m) in frames.iter().take(nr as usize).enumerate() {
            let to = list.wrapping_add(8 * i as u64);
            if self.write(to, &m.0.to_le_bytes()).is_err() {
                return gntst::BAD_VIRT_ADDR;
            }
        }
        gntst::OKAY
    }

    fn get_version(&mut self, at: u64) -> HResult {
        let b = self.read(at, 8)?;
        let d = match self.target_domain(u16_at(&b, 0)) {
            Ok(d) => d,
            Err(gntst::PERMISSION_DENIED) => return Err(Errno::Perm),
            Err(_) => return Err(Errno::Srch),
        };
        let v = self.hv.dom_mut(d).grant.version();
        self.write(at + 4, &v.to_le_bytes())?;
        ok()
    }

    fn set_version(&mut self, at: u64) -> HResult {
        let v = u32_at(&self.read(at, 4)?, 0);
        let r = self.change_version(v);
        let now = self.hv.dom_mut(self.d).grant.version();
        self.write(at, &now.to_le_bytes())?;
        r.map(|()| Ret::Value(0))
    }

    fn change_version(&mut self, v: u32) -> Result<(), Errno> {
        let d = self.d;
        if v != 1 && v != 2 {
            return Err(Errno::Inval);
        }
        let cur = self.hv.dom_mut(d).grant.version();
        if cur == v {
            return Ok(());
        }
        self.hv.grant_materialize(d, &mut *self.mem)?;
        if self.hv.dom_mut(d).grant.in_use() {
            return Err(Errno::Busy);
        }
        let reserved = self.reserved_entries();
        self.leave_version(cur, &reserved)?;
        let gt = &mut self.hv.dom_mut(d).grant;
        gt.set_version_number(v);
        for m in gt.shared.clone() {
            for i in 0..PAGE_SIZE / 8 {
                self.mem.write_ma_u64(m.addr(8 * i).get(), 0);
            }
        }
        self.restore_reserved(cur, v, reserved);
        Ok(())
    }

    /// The reserved entries (they survive a version switch), as v1
    /// entries with their reading/writing flags.
    fn reserved_entries(&mut self) -> Vec<Entry> {
        let gt = &self.hv.dom_mut(self.d).grant;
        (0..crate::grant::NR_RESERVED_ENTRIES)
            .map(|r| {
                let mut e = gt.read_entry(&mut *self.mem, r);
                e.flags |= gt.use_flags(&mut *self.mem, r);
                e
            })
            .collect()
    }

    /// Leaves version `cur`: v1 gains status frames; v2 gives them up,
    /// unless a reserved entry cannot be written as v1 (-ERANGE) or the
    /// guest maps a status frame (-EBUSY).
    fn leave_version(&mut self, cur: u32, reserved: &[Entry]) -> Result<(), Errno> {
        let d = self.d;
        let gt = &mut self.hv.dom_mut(d).grant;
        if cur == 1 {
            let n = gt.nr_frames();
            gt.set_version_number(2);
            let r = self.hv.grant_grow(d, n, &mut *self.mem);
            if r.is_err() {
                self.hv.dom_mut(d).grant.set_version_number(1);
            }
            return r;
        }
        for e in reserved {
            let ty = e.flags & gtf::TYPE_MASK;
            if ty == gtf::TRANSITIVE || (ty == gtf::PERMIT_ACCESS && e.frame >> 32 != 0) {
                return Err(Errno::Range);
            }
        }
        if gt.status_mapped() {
            return Err(Errno::Busy);
        }
        gt.status.clear();
        Ok(())
    }

    /// Writes the reserved entries back in version `v`'s layout.
    fn restore_reserved(&mut self, cur: u32, v: u32, reserved: Vec<Entry>) {
        let gt = &self.hv.dom_mut(self.d).grant;
        let use_bits = gtf::READING | gtf::WRITING;
        for (r, mut e) in (0u32..).zip(reserved) {
            if cur == 2 && e.flags & gtf::TYPE_MASK != gtf::PERMIT_ACCESS {
                e = Entry::default();
            }
            if v == 2 {
                let used = e.flags & use_bits;
                e.flags &= !use_bits;
                e.length = 0;
                gt.write_entry(&mut *self.mem, r, e);
                gt.set_use(&mut *self.mem, r, used);
            } else {
                e.frame &= 0xffff_ffff;
                gt.write_entry(&mut *self.mem, r, e);
            }
        }
    }

    // ---- map ----

    fn map_op(&mut self, b: &mut [u8]) {
        let (host_addr, flags) = (u64_at(b, 0), u32_at(b, 8));
        let (gref, dom) = (u32_at(b, 12), u16_at(b, 16));
        match self.map_grant(host_addr, flags, gref, dom) {
            Ok((handle, mfn)) => {
                b[18..20].copy_from_slice(&gntst::OKAY.to_le_bytes());
                b[20..24].copy_from_slice(&handle.to_le_bytes());
                b[24..32].copy_from_slice(&mfn.addr(0).get().to_le_bytes());
            }
            Err(s) => b[18..20].copy_from_slice(&s.to_le_bytes()),
        }
    }

    /// Checks entry `gref` of `rd` for access by the caller (Xen's
    /// `_set_status`, without the flag update) and returns it.
    fn check_grant(
        &mut self,
        rd: DomainId,
        gref: u32,
        act: &Active,
        ro: bool,
        map: bool,
    ) -> Result<Entry, i16> {
        let gt = &self.hv.dom_mut(rd).grant;
        let e = gt.read_entry(&mut *self.mem, gref);
        let mask = if map {
            gtf::TYPE_MASK | gtf::SUB_PAGE
        } else {
            gtf::TYPE_MASK
        };
        let granted = e.flags & mask == gtf::PERMIT_ACCESS && e.domid == self.d.0;
        if act.pin() == 0 && !granted {
            return Err(gntst::GENERAL_ERROR);
        }
        if !ro && e.flags & gtf::READONLY != 0 {
            return Err(gntst::GENERAL_ERROR);
        }
        Ok(e)
    }

    fn map_grant(
        &mut self,
        host_addr: u64,
        flags: u32,
        gref: u32,
        dom: u16,
    ) -> Result<(u32, Mfn), i16> {
        let host = flags & gntmap::HOST_MAP != 0;
        let device = flags & gntmap::DEVICE_MAP != 0;
        if !host && !device {
            return Err(gntst::BAD_GNTREF);
        }
        let rd = self.domain_by_id(dom).ok_or(gntst::BAD_DOMAIN)?;
        let gt = &self.hv.dom_mut(self.d).grant;
        if gt.maptrack.iter().all(Option::is_some)
            && gt.maptrack.len() as u32 >= crate::grant::MAX_MAPTRACK
        {
            return Err(gntst::NO_SPACE);
        }
        let (mut act, cache) = self.map_pin(rd, gref, flags)?;
        let mfn = act.mfn;
        self.pin_refs(rd, mfn, flags, host, device)?;
        if host {
            if let Err(s) = self.create_host_mapping(host_addr, mfn, flags, cache) {
                self.unpin_refs(rd, mfn, flags, host, device);
                return Err(s);
            }
        }
        act.add(flags, host, device, 1);
        self.set_active(rd, gref, act);
        let mut bits = gtf::READING;
        if flags & gntmap::READONLY == 0 {
            bits |= gtf::WRITING;
        }
        let gt = &self.hv.dom_mut(rd).grant;
        gt.set_use(&mut *self.mem, gref, bits);
        let m = Mapping {
            granter: rd,
            gref,
            flags,
        };
        let gt = &mut self.hv.dom_mut(self.d).grant;
        let handle = gt.new_handle(m).expect("a free handle was checked for");
        Ok((handle, mfn))
    }

    /// The active entry a map of `gref` of `rd` with `flags` pins (before
    /// its new pins are counted) and the grant's cache attributes: the
    /// entry is checked unless it is pinned already for the access asked.
    fn map_pin(&mut self, rd: DomainId, gref: u32, flags: u32) -> Result<(Active, u16), i16> {
        if gref >= self.hv.dom_mut(rd).grant.nr_entries() {
            return Err(gntst::BAD_GNTREF);
        }
        let ro = flags & gntmap::READONLY != 0;
        let mut act = self.active(rd, gref);
        if act.pin() > 0 && act.grantee != self.d.0 {
            return Err(gntst::GENERAL_ERROR);
        }
        let e = self.hv.dom_mut(rd).grant.read_entry(&mut *self.mem, gref);
        if act.pin() == 0 || (!ro && act.writers() == 0) {
            self.check_grant(rd, gref, &act, ro, true)?;
        }
        if act.pin() == 0 {
            let mfn = Mfn(e.frame);
            if !self.hv.domain(rd).is_some_and(|x| x.owns(mfn)) {
                return Err(gntst::BAD_PAGE);
            }
            act.grantee = self.d.0;
            act.mfn = mfn;
        }
        Ok((act, e.flags & (gtf::PWT | gtf::PCD | gtf::PAT)))
    }

    fn active(&self, rd: DomainId, gref: u32) -> Active {
        let dom = self.hv.domain(rd).expect("checked");
        dom.grant.active.get(&gref).copied().unwrap_or_default()
    }

    fn set_active(&mut self, rd: DomainId, gref: u32, act: Active) {
        let gt = &mut self.hv.dom_mut(rd).grant;
        if act.pin() == 0 {
            gt.active.remove(&gref);
        } else {
            gt.active.insert(gref, act);
        }
    }

    /// Takes the Writable type references a writable host and/or device
    /// mapping of `mfn` needs (a page-table frame refuses them).
    fn pin_refs(
        &mut self,
        rd: DomainId,
        mfn: Mfn,
        flags: u32,
        host: bool,
        device: bool,
    ) -> Result<(), i16> {
        if flags & gntmap::READONLY != 0 {
            return Ok(());
        }
        let n = u32::from(host) + u32::from(device);
        for i in 0..n {
            if self.mmu_of(rd).get_type(mfn, PageType::Writable).is_err() {
                for _ in 0..i {
                    self.mmu_of(rd).put_type(mfn);
                }
                return Err(gntst::GENERAL_ERROR);
            }
        }
        Ok(())
    }

    fn unpin_refs(&mut self, rd: DomainId, mfn: Mfn, flags: u32, host: bool, device: bool) {
        if flags & gntmap::READONLY != 0 {
            return;
        }
        for _ in 0..u32::from(host) + u32::from(device) {
            self.mmu_of(rd).put_type(mfn);
        }
    }

    /// The machine address of the caller's L1 entry a host mapping at
    /// `addr` uses (a VA, or with GNTMAP_contains_pte the entry's MA).
    fn host_pte_at(&mut self, addr: u64, flags: u32) -> Result<u64, i16> {
        if flags & gntmap::CONTAINS_PTE != 0 {
            if !addr.is_multiple_of(8) {
                return Err(gntst::GENERAL_ERROR);
            }
            let table = Mfn(addr / PAGE_SIZE);
            let info = self.hv.page_info(self.d, table);
            return match info {
                Some(i) if i.ty == PageType::L1 && i.type_count > 0 => Ok(addr),
                _ => Err(gntst::GENERAL_ERROR),
            };
        }
        let root = self.hv.active_root(self.d, self.v).0;
        let root = root.ok_or(gntst::GENERAL_ERROR)?;
        let d = self.d;
        self.mmu_of(d)
            .l1_entry_of(root, addr)
            .map_err(|_| gntst::GENERAL_ERROR)
    }

    fn flush_after(&mut self, addr: u64, flags: u32) {
        let page = (flags & gntmap::CONTAINS_PTE == 0).then_some(addr & !(PAGE_SIZE - 1));
        self.effects.push(Effect::Flush {
            domain: self.d,
            vcpus: None,
            page,
        });
    }

    fn create_host_mapping(
        &mut self,
        addr: u64,
        mfn: Mfn,
        flags: u32,
        cache: u16,
    ) -> Result<(), i16> {
        let at = self.host_pte_at(addr, flags)?;
        let new = mfn.addr(0).get() | pte_flags(flags, cache);
        let old = self.mem.read_ma_u64(at);
        self.mem.write_ma_u64(at, new);
        let d = self.d;
        self.mmu_of(d).put_entry(Mfn(at / PAGE_SIZE), 1, old);
        self.flush_after(addr, flags);
        Ok(())
    }

    // ---- unmap ----

    fn unmap_batch(&mut self, ops: u64, count: u32, replace: bool) -> HResult {
        const SIZE: u64 = 24;
        let mut any = false;
        for i in 0..u64::from(count) {
            let at = ops.wrapping_add(i * SIZE);
            let b = self.read(at, SIZE as usize)?;
            let (host_addr, second, handle) = (u64_at(&b, 0), u64_at(&b, 8), u32_at(&b, 16));
            let (dev, new_addr) = if replace { (0, second) } else { (second, 0) };
            let status = self.unmap_grant(host_addr, dev, handle, new_addr);
            any |= status == gntst::OKAY;
            self.write(at + 20, &status.to_le_bytes())?;
        }
        if any {
            self.effects.push(Effect::Flush {
                domain: self.d,
                vcpus: None,
                page: None,
            });
        }
        ok()
    }

    fn unmap_grant(&mut self, host_addr: u64, dev: u64, handle: u32, new_addr: u64) -> i16 {
        let Some(mut m) = self.hv.dom_mut(self.d).grant.mapping(handle) else {
            return gntst::BAD_HANDLE;
        };
        let rd = m.granter;
        let mut act = self.active(rd, m.gref);
        let mfn = act.mfn;
        if dev != 0 && m.flags & gntmap::DEVICE_MAP != 0 && dev != mfn.addr(0).get() {
            return gntst::BAD_DEV_ADDR;
        }
        let host = host_addr != 0 && m.flags & gntmap::HOST_MAP != 0;
        if host {
            if let Err(s) = self.replace_host_mapping(host_addr, mfn, new_addr, m.flags) {
                return s;
            }
        }
        let device = dev != 0 && m.flags & gntmap::DEVICE_MAP != 0;
        self.unpin_refs(rd, mfn, m.flags, host, device);
        act.add(m.flags, host, device, -1);
        self.set_active(rd, m.gref, act);
        let gt = &self.hv.dom_mut(rd).grant;
        if m.flags & gntmap::READONLY == 0 && act.writers() == 0 {
            gt.clear_use(&mut *self.mem, m.gref, gtf::WRITING);
        }
        if act.pin() == 0 {
            gt.clear_use(&mut *self.mem, m.gref, gtf::READING);
        }
        if host {
            m.flags &= !gntmap::HOST_MAP;
        }
        if device {
            m.flags &= !gntmap::DEVICE_MAP;
        }
        let still = m.flags & (gntmap::HOST_MAP | gntmap::DEVICE_MAP) != 0;
        self.hv.dom_mut(self.d).grant.maptrack[handle as usize] = still.then_some(m);
        gntst::OKAY
    }

    /// Xen's `replace_grant_pv_mapping`: the entry for `addr` must map
    /// `mfn` with the presence and write permission the map gave it; it
    /// becomes empty, or takes the entry stolen from `new_addr` (which
    /// becomes empty; on failure the stolen entry's references are
    /// dropped, as Xen does).
    fn replace_host_mapping(
        &mut self,
        addr: u64,
        mfn: Mfn,
        new_addr: u64,
        flags: u32,
    ) -> Result<(), i16> {
        if flags & gntmap::CONTAINS_PTE != 0 && new_addr != 0 {
            return Err(gntst::GENERAL_ERROR);
        }
        let mut new = 0;
        if new_addr != 0 {
            let s = self.host_pte_at(new_addr, flags)?;
            new = self.mem.read_ma_u64(s);
            self.mem.write_ma_u64(s, 0);
        }
        let r = self.replace_entry(addr, mfn, flags, new);
        if r.is_err() {
            let d = self.d;
            // At level 1 the table an entry came from does not matter.
            self.mmu_of(d).put_entry(Mfn(0), 1, new);
        }
        r
    }

    fn replace_entry(&mut self, addr: u64, mfn: Mfn, flags: u32, new: u64) -> Result<(), i16> {
        let at = self.host_pte_at(addr, flags)?;
        let old = self.mem.read_ma_u64(at);
        let expect = mfn.addr(0).get() | pte_flags(flags, 0);
        if (old ^ expect) & (pte::ADDR | pte::P | pte::RW) != 0 {
            return Err(gntst::GENERAL_ERROR);
        }
        self.mem.write_ma_u64(at, new);
        Ok(())
    }

    // ---- copy ----

    fn copy_op(&mut self, b: &mut [u8]) {
        let status = self.copy_one(b).err().unwrap_or(gntst::OKAY);
        b[36..38].copy_from_slice(&status.to_le_bytes());
    }

    /// The domain one side of a copy names: any domain by grant ref, only
    /// the caller (DOMID_SELF) by frame.
    fn copy_domain(&self, domid: u16, by_ref: bool) -> Result<DomainId, i16> {
        if domid != DOMID_SELF && !by_ref {
            return Err(gntst::PERMISSION_DENIED);
        }
        if domid == DOMID_SELF {
            return Ok(self.d);
        }
        self.domain_by_id(domid).ok_or(gntst::BAD_DOMAIN)
    }

    fn copy_one(&mut self, b: &[u8]) -> Result<(), i16> {
        let (len, flags) = (u16_at(b, 32), u16_at(b, 34));
        let src_ref = flags & COPY_SOURCE_GREF != 0;
        let dst_ref = flags & COPY_DEST_GREF != 0;
        let sd = self.copy_domain(u16_at(b, 8), src_ref)?;
        let dd = self.copy_domain(u16_at(b, 24), dst_ref)?;
        let src = self.claim(sd, u64_at(b, 0), src_ref, true)?;
        let dst = self.claim(dd, u64_at(b, 16), dst_ref, false)?;
        if self
            .mmu_of(dd)
            .get_type(dst.mfn, PageType::Writable)
            .is_err()
        {
            return Err(gntst::GENERAL_ERROR);
        }
        let r = self.copy_bytes(&src, u16_at(b, 10), &dst, u16_at(b, 26), len);
        self.mmu_of(dd).put_type(dst.mfn);
        r
    }

    /// The frame (and granted range) one side of a copy names.
    fn claim(&mut self, d: DomainId, u: u64, by_ref: bool, ro: bool) -> Result<Buf, i16> {
        let owned = |c: &Self, m: Mfn| c.hv.domain(d).is_some_and(|x| x.owns(m));
        if !by_ref {
            let mfn = Mfn(u);
            return if owned(self, mfn) {
                Ok(Buf {
                    mfn,
                    off: 0,
                    len: PAGE_SIZE as u16,
                })
            } else {
                Err(gntst::BAD_PAGE)
            };
        }
        // deliberate truncation: a grant_ref_t is the union's low 32 bits.
        let gref = u as u32;
        if gref >= self.hv.dom_mut(d).grant.nr_entries() {
            return Err(gntst::BAD_GNTREF);
        }
        let act = self.active(d, gref);
        if act.pin() > 0 && act.grantee != self.d.0 {
            return Err(gntst::GENERAL_ERROR);
        }
        if act.pin() > 0 && (ro || act.writers() > 0) {
            return Ok(Buf {
                mfn: act.mfn,
                off: 0,
                len: PAGE_SIZE as u16,
            });
        }
        let e = self.check_grant(d, gref, &act, ro, false)?;
        let v2 = self.hv.dom_mut(d).grant.version() == 2;
        let (off, len) = if v2 && e.flags & gtf::SUB_PAGE != 0 {
            (e.page_off, e.length)
        } else {
            (0, PAGE_SIZE as u16)
        };
        let mfn = if act.pin() > 0 { act.mfn } else { Mfn(e.frame) };
        if !owned(self, mfn) {
            return Err(gntst::BAD_PAGE);
        }
        Ok(Buf { mfn, off, len })
    }

    fn copy_bytes(
        &mut self,
        src: &Buf,
        soff: u16,
        dst: &Buf,
        doff: u16,
        len: u16,
    ) -> Result<(), i16> {
        let (soff, doff, len) = (u32::from(soff), u32::from(doff), u32::from(len));
        let page = PAGE_SIZE as u32;
        if soff + len > page || doff + len > page {
            return Err(gntst::BAD_COPY_ARG);
        }
        let inside = |b: &Buf, off: u32| {
            off >= u32::from(b.off) && off + len <= u32::from(b.off) + u32::from(b.len)
        };
        if !inside(src, soff) || !inside(dst, doff) {
            return Err(gntst::GENERAL_ERROR);
        }
        let (s, d) = (src.mfn.addr(0).get(), dst.mfn.addr(0).get());
        for i in 0..u64::from(len) {
            let v = self.mem.read_u8(s + u64::from(soff) + i);
            self.mem.write_u8(d + u64::from(doff) + i, v);
        }
        Ok(())
    }

    // ---- transfer ----

    fn transfer_op(&mut self, b: &mut [u8]) {
        let (gmfn, domid, gref) = (u64_at(b, 0), u16_at(b, 8), u32_at(b, 12));
        let status = self.transfer(Mfn(gmfn), domid, gref);
        b[16..18].copy_from_slice(&status.to_le_bytes());
    }

    /// Gives the caller's frame `mfn` to `domid` through its entry `gref`
    /// (see the module doc); the op's status.
    fn transfer(&mut self, mfn: Mfn, domid: u16, gref: u32) -> i16 {
        if !self.unused(mfn) {
            return gntst::BAD_PAGE;
        }
        // Xen's steal_page: the caller no longer owns the frame.
        self.hv.dom_mut(self.d).mmu.pages.remove(&mfn.0);
        self.flush_domain();
        match self.transfer_to(mfn, domid, gref) {
            Ok(()) => gntst::OKAY,
            Err(s) => {
                self.release(mfn);
                s
            }
        }
    }

    /// Hands the stolen `mfn` to `domid` if its entry `gref` accepts it.
    fn transfer_to(&mut self, mfn: Mfn, domid: u16, gref: u32) -> Result<(), i16> {
        let e = self.domain_by_id(domid).ok_or(gntst::BAD_DOMAIN)?;
        let dom = self.hv.domain(e).expect("domain_by_id checked");
        if dom.tot_pages() >= dom.max_pages() || gref >= dom.grant.nr_entries() {
            return Err(gntst::GENERAL_ERROR);
        }
        let mut ent = dom.grant.read_entry(&mut *self.mem, gref);
        if ent.flags != gtf::ACCEPT_TRANSFER || ent.domid != self.d.0 {
            return Err(gntst::GENERAL_ERROR);
        }
        self.hv
            .dom_mut(e)
            .mmu
            .pages
            .insert(mfn.0, Default::default());
        self.hv.write_m2p(mfn, ent.frame, &mut *self.mem);
        ent.frame = mfn.0;
        ent.flags |= gtf::TRANSFER_COMMITTED | gtf::TRANSFER_COMPLETED;
        let gt = &self.hv.dom_mut(e).grant;
        gt.write_entry(&mut *self.mem, gref, ent);
        Ok(())
    }

    // ---- swap_grant_ref ----

    fn swap_op(&mut self, b: &mut [u8]) {
        let status = self.swap(u32_at(b, 0), u32_at(b, 4));
        b[8..10].copy_from_slice(&status.to_le_bytes());
    }

    fn swap(&mut self, a: u32, b: u32) -> i16 {
        let d = self.d;
        let gt = &self.hv.dom_mut(d).grant;
        if a >= gt.nr_entries() || b >= gt.nr_entries() {
            return gntst::BAD_GNTREF;
        }
        if a == b {
            return gntst::OKAY;
        }
        if self.active(d, a).pin() > 0 || self.active(d, b).pin() > 0 {
            return gntst::EAGAIN;
        }
        let gt = &self.hv.dom_mut(d).grant;
        let m = &mut *self.mem;
        let (ea, eb) = (gt.read_entry(m, a), gt.read_entry(m, b));
        let (ua, ub) = (gt.use_flags(m, a), gt.use_flags(m, b));
        gt.write_entry(m, a, eb);
        gt.write_entry(m, b, ea);
        if gt.version() == 2 {
            let all = gtf::READING | gtf::WRITING;
            gt.clear_use(m, a, all);
            gt.clear_use(m, b, all);
            gt.set_use(m, a, ub);
            gt.set_use(m, b, ua);
        }
        gntst::OKAY
    }
}
