//! Grant tables, versions 1 and 2 (xen-abi.md §4.8; Xen's
//! `public/grant_table.h` and `common/grant_table.c`): the per-domain
//! state and the rules behind `grant_table_op` (`hypercall/grant_op.rs`).
//!
//! # What a domain has
//! - **Shared frames**: machine frames the hypervisor allocates and lets
//!   the domain map read-write (`setup_table` hands out their MFNs, which
//!   on PV are the GFNs; [`Hypervisor::grant_table_frame`] serves
//!   `XENMAPSPACE_grant_table`). They hold the `grant_entry_v1` (8 bytes,
//!   512 a frame) or `grant_entry_v2` (16 bytes, 256 a frame) array the
//!   guest writes; the hypervisor sets `GTF_reading`/`GTF_writing` there
//!   (v1) or in the **status frames** (v2: one `u16` per entry, 2048 a
//!   frame, `ceil(frames / 8)` of them).
//! - **Active entries** ([`Active`]): for each granted ref in use, the
//!   grantee, the frame and the pin counts of its host and device
//!   mappings (Xen's `act->pin`).
//! - **Maptrack** ([`Mapping`]): the mappings this domain made of other
//!   domains' (or its own) grants, indexed by handle.
//! - A count of the guest's own page-table mappings of its shared and
//!   status frames, kept by the PV MMU (`GrantTable::map_frame`), so
//!   that freeing the status frames while they are mapped is refused
//!   (XSA-255).
//!
//! # The rules, as Xen's
//! - A domain maps or copies another's frame only through an entry of
//!   that domain's table that is `GTF_permit_access` for its domid (and
//!   not `GTF_readonly` for a write); the frame named must belong to the
//!   granter (else `GNTST_bad_page`). A writable host or device mapping
//!   takes a `Writable` type reference on the frame through the granter's
//!   PV MMU, so a page-table frame cannot be mapped writable and a frame
//!   mapped writable through a grant cannot become a page table.
//! - The granter may clear `GTF_permit_access` while the grant is mapped:
//!   as in Xen the mapping stays until it is unmapped, and `GTF_reading` /
//!   `GTF_writing` show that it is in use; new mappings are refused. Unmap
//!   drops the references and clears the flags, restoring isolation.
//! - A domain gives one of its unused frames to another through an entry
//!   of that domain's table that is exactly `GTF_accept_transfer` for its
//!   domid (`transfer`, see `hypercall/grant_op.rs`): the frame changes
//!   owner with its contents, and the entry gets its MFN and
//!   `GTF_transfer_committed | GTF_transfer_completed`.
//! - `set_version` is refused (-EBUSY) while any entry past the 8
//!   reserved ones is pinned, or (v2 → v1) while the guest maps a status
//!   frame.
//!
//! # Where smpsim differs from Xen
//! - Tables start with no frame allocated; one is allocated on first use
//!   (Xen allocates it at domain creation), so building a domain does not
//!   move the machine frames of later ones. Sizes are reported as Xen's
//!   (at least one frame). Limits are Xen's defaults: 64 grant frames,
//!   262144 maptrack entries, highest version 2.
//! - Frames given up when the table changes version are not reused.
//! - Transitive grants (v2 `GTF_transitive`) are refused by map (as Xen)
//!   and by copy (Xen follows them): `GNTST_general_error`.
//! - Xen's general page reference counts are not modelled, only type
//!   counts; a grant PTE the guest overwrites with `mmu_update` drops the
//!   type reference only when the frame is its own (Xen drops it whatever
//!   the owner).

use crate::abi::Errno;
use crate::event_2l::EventMemory;
use crate::hypervisor::Hypervisor;
use crate::ids::{DomainId, Mfn, PAGE_SIZE};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// `GTF_*` entry flags.
pub mod gtf {
    /// Type mask (bits 0–1).
    pub const TYPE_MASK: u16 = 3;
    /// Unused entry.
    pub const INVALID: u16 = 0;
    /// The grantee may map or copy the frame.
    pub const PERMIT_ACCESS: u16 = 1;
    /// The grantee may transfer a page into this entry.
    pub const ACCEPT_TRANSFER: u16 = 2;
    /// v2: the access is granted through another domain's grant.
    pub const TRANSITIVE: u16 = 3;
    /// Guest: read-only access.
    pub const READONLY: u16 = 1 << 2;
    /// Xen: the frame is mapped or being read.
    pub const READING: u16 = 1 << 3;
    /// Xen: the frame is mapped writable or being written.
    pub const WRITING: u16 = 1 << 4;
    /// Cache attributes the mapping takes (PWT, PCD, PAT).
    pub const PWT: u16 = 1 << 5;
    /// See [`PWT`].
    pub const PCD: u16 = 1 << 6;
    /// See [`PWT`].
    pub const PAT: u16 = 1 << 7;
    /// v2: only part of the page is granted (copy only).
    pub const SUB_PAGE: u16 = 1 << 8;
    /// Xen: a transfer into this accept_transfer entry has begun.
    pub const TRANSFER_COMMITTED: u16 = 1 << 2;
    /// Xen: the transferred frame is in the entry.
    pub const TRANSFER_COMPLETED: u16 = 1 << 3;
}

/// `GNTMAP_*` map flags.
pub mod gntmap {
    /// Device (bus address) mapping.
    pub const DEVICE_MAP: u32 = 1 << 0;
    /// Host (page-table) mapping.
    pub const HOST_MAP: u32 = 1 << 1;
    /// Read-only.
    pub const READONLY: u32 = 1 << 2;
    /// User-accessible host mapping.
    pub const APPLICATION_MAP: u32 = 1 << 3;
    /// `host_addr` is the machine address of the PTE to write.
    pub const CONTAINS_PTE: u32 = 1 << 4;
    /// First of the bits copied into the PTE's available bits.
    pub const GUEST_AVAIL0: u32 = 16;
}

/// `GNTST_*` per-op status codes.
pub mod gntst {
    /// Success.
    pub const OKAY: i16 = 0;
    /// Anything else.
    pub const GENERAL_ERROR: i16 = -1;
    /// No such domain.
    pub const BAD_DOMAIN: i16 = -2;
    /// Bad grant reference.
    pub const BAD_GNTREF: i16 = -3;
    /// Bad maptrack handle.
    pub const BAD_HANDLE: i16 = -4;
    /// Bad virtual address.
    pub const BAD_VIRT_ADDR: i16 = -5;
    /// Bad device address.
    pub const BAD_DEV_ADDR: i16 = -6;
    /// Not allowed.
    pub const PERMISSION_DENIED: i16 = -8;
    /// The frame is not the domain's.
    pub const BAD_PAGE: i16 = -9;
    /// Copy crosses a page.
    pub const BAD_COPY_ARG: i16 = -10;
    /// Busy, try again.
    pub const EAGAIN: i16 = -12;
    /// Out of maptrack handles.
    pub const NO_SPACE: i16 = -13;
}

/// Entries 0–7 are the toolstack's (console, xenstore).
pub const NR_RESERVED_ENTRIES: u32 = 8;
/// Most grant frames a domain may have (Xen's default `max_grant_frames`).
pub const MAX_GRANT_FRAMES: u32 = 64;
/// Most mappings a domain may hold (1024 maptrack frames of 256).
pub const MAX_MAPTRACK: u32 = 1024 * 256;
/// v2 status entries per frame.
const STATUS_PER_FRAME: u32 = (PAGE_SIZE / 2) as u32;

/// Status frames a v2 table of `frames` grant frames has.
pub fn status_frames_for(frames: u32) -> u32 {
    (frames * 256).div_ceil(STATUS_PER_FRAME)
}

/// A granted ref in use: who maps it, which frame, how often.
#[derive(Copy, Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Active {
    /// The domain mapping it (Xen's `act->domid`).
    pub grantee: u16,
    /// The granted frame.
    pub mfn: Mfn,
    /// Read-only host mappings.
    pub host_ro: u32,
    /// Writable host mappings.
    pub host_rw: u32,
    /// Read-only device mappings.
    pub dev_ro: u32,
    /// Writable device mappings.
    pub dev_rw: u32,
}

impl Active {
    /// All pins.
    pub fn pin(&self) -> u32 {
        self.host_ro + self.host_rw + self.dev_ro + self.dev_rw
    }

    /// Writable pins.
    pub fn writers(&self) -> u32 {
        self.host_rw + self.dev_rw
    }

    fn count(&mut self, flags: u32, host: bool) -> &mut u32 {
        match (host, flags & gntmap::READONLY != 0) {
            (true, true) => &mut self.host_ro,
            (true, false) => &mut self.host_rw,
            (false, true) => &mut self.dev_ro,
            (false, false) => &mut self.dev_rw,
        }
    }

    /// Adds (or with `-1` removes) the pins of a mapping with `flags`.
    pub(crate) fn add(&mut self, flags: u32, host: bool, device: bool, delta: i32) {
        for (on, h) in [(host, true), (device, false)] {
            if on {
                let c = self.count(flags, h);
                *c = c.saturating_add_signed(delta);
            }
        }
    }
}

/// One mapping a domain made (a maptrack entry).
#[derive(Copy, Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Mapping {
    /// The granting domain.
    pub granter: DomainId,
    /// Its grant reference.
    pub gref: u32,
    /// `GNTMAP_*` flags still mapped (host and/or device).
    pub flags: u32,
}

/// A grant entry as read from the shared frames.
#[derive(Copy, Clone, Debug, Default, PartialEq, Eq)]
pub struct Entry {
    /// `GTF_*` flags (v1: including reading/writing).
    pub flags: u16,
    /// The grantee.
    pub domid: u16,
    /// The granted frame (GFN = MFN on PV).
    pub frame: u64,
    /// v2 sub-page: first byte granted.
    pub page_off: u16,
    /// v2 sub-page: bytes granted.
    pub length: u16,
}

/// A domain's grant table.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct GrantTable {
    /// 1 or 2 (0: not chosen yet, which is 1).
    version: u8,
    /// The shared frames, in order.
    pub(crate) shared: Vec<Mfn>,
    /// v2 status frames, in order.
    pub(crate) status: Vec<Mfn>,
    /// Active entries by ref.
    pub(crate) active: BTreeMap<u32, Active>,
    /// Mappings this domain made, by handle.
    pub(crate) maptrack: Vec<Option<Mapping>>,
    /// The guest's page-table mappings of its shared and status frames,
    /// by MFN.
    frame_maps: BTreeMap<u64, u32>,
}

/// Replaces the u16 at machine address `ma` (2-aligned) with `f(old)`.
fn modify16(mem: &mut dyn EventMemory, ma: u64, f: impl Fn(u16) -> u16) {
    let word = ma & !7;
    let shift = (ma & 7) * 8;
    let w = mem.read_ma_u64(word);
    // deliberate truncation: the u16 at `shift`.
    let new = f((w >> shift) as u16);
    mem.write_ma_u64(word, (w & !(0xffff << shift)) | u64::from(new) << shift);
}

impl GrantTable {
    /// The table's version (1 or 2).
    pub fn version(&self) -> u32 {
        if self.version == 2 {
            2
        } else {
            1
        }
    }

    pub(crate) fn set_version_number(&mut self, v: u32) {
        self.version = if v == 2 { 2 } else { 1 };
    }

    /// Grant frames (at least one, as Xen's tables start).
    pub fn nr_frames(&self) -> u32 {
        (self.shared.len() as u32).max(1)
    }

    /// Status frames (v2).
    pub fn nr_status_frames(&self) -> u32 {
        self.status.len() as u32
    }

    fn per_frame(&self) -> u32 {
        if self.version() == 2 {
            256
        } else {
            512
        }
    }

    /// Grant entries.
    pub fn nr_entries(&self) -> u32 {
        self.nr_frames() * self.per_frame()
    }

    /// Machine address of entry `r`, if its frame exists.
    pub(crate) fn entry_ma(&self, r: u32) -> Option<u64> {
        let per = self.per_frame();
        let size = u64::from(PAGE_SIZE as u32 / per);
        let mfn = self.shared.get((r / per) as usize)?;
        Some(mfn.addr(u64::from(r % per) * size).get())
    }

    /// Machine address of v2 status entry `r`.
    fn status_ma(&self, r: u32) -> Option<u64> {
        let mfn = self.status.get((r / STATUS_PER_FRAME) as usize)?;
        Some(mfn.addr(u64::from(r % STATUS_PER_FRAME) * 2).get())
    }

    /// Reads entry `r` (zero when its frame was never allocated).
    pub(crate) fn read_entry(&self, mem: &mut dyn EventMemory, r: u32) -> Entry {
        let Some(ma) = self.entry_ma(r) else {
            return Entry::default();
        };
        let w = mem.read_ma_u64(ma);
        // deliberate truncations: the fields of the entry's first word.
        let (flags, domid, hi) = (w as u16, (w >> 16) as u16, w >> 32);
        if self.version() == 1 {
            return Entry {
                flags,
                domid,
                frame: hi,
                page_off: 0,
                length: PAGE_SIZE as u16,
            };
        }
        Entry {
            flags,
            domid,
            frame: mem.read_ma_u64(ma + 8),
            page_off: hi as u16,
            length: (hi >> 16) as u16,
        }
    }

    /// Writes a whole v1 entry (or a v2 entry's header, frame and
    /// sub-page fields).
    pub(crate) fn write_entry(&self, mem: &mut dyn EventMemory, r: u32, e: Entry) {
        let Some(ma) = self.entry_ma(r) else {
            return;
        };
        let head = u64::from(e.flags) | u64::from(e.domid) << 16;
        if self.version() == 1 {
            mem.write_ma_u64(ma, head | e.frame << 32);
        } else {
            let sub = u64::from(e.page_off) | u64::from(e.length) << 16;
            mem.write_ma_u64(ma, head | sub << 32);
            mem.write_ma_u64(ma + 8, e.frame);
        }
    }

    /// The reading/writing flags of entry `r` (v1: in the entry, v2: its
    /// status word).
    pub(crate) fn use_flags(&self, mem: &mut dyn EventMemory, r: u32) -> u16 {
        let use_bits = gtf::READING | gtf::WRITING;
        if self.version() == 1 {
            return self.read_entry(mem, r).flags & use_bits;
        }
        self.status_ma(r).map_or(0, |ma| {
            let w = mem.read_ma_u64(ma & !7);
            // deliberate truncation: the u16 status entry.
            (w >> ((ma & 7) * 8)) as u16 & use_bits
        })
    }

    fn use_ma(&self, r: u32) -> Option<u64> {
        if self.version() == 1 {
            self.entry_ma(r)
        } else {
            self.status_ma(r)
        }
    }

    /// Sets `bits` (GTF_reading/writing) of entry `r`.
    pub(crate) fn set_use(&self, mem: &mut dyn EventMemory, r: u32, bits: u16) {
        if let Some(ma) = self.use_ma(r) {
            modify16(mem, ma, |f| f | bits);
        }
    }

    /// Clears `bits` of entry `r`.
    pub(crate) fn clear_use(&self, mem: &mut dyn EventMemory, r: u32, bits: u16) {
        if let Some(ma) = self.use_ma(r) {
            modify16(mem, ma, |f| f & !bits);
        }
    }

    /// Whether an entry past the reserved ones is pinned.
    pub fn in_use(&self) -> bool {
        self.active
            .range(NR_RESERVED_ENTRIES..)
            .any(|(_, a)| a.pin() > 0)
    }

    /// Whether `mfn` is one of the table's shared or status frames.
    pub fn holds(&self, mfn: Mfn) -> bool {
        self.shared.contains(&mfn) || self.status.contains(&mfn)
    }

    /// The PV MMU's hook for a guest L1 entry mapping `mfn`, a frame the
    /// domain does not own: returns whether it is one of the table's
    /// frames (then the mapping is counted and allowed).
    pub(crate) fn map_frame(&mut self, mfn: Mfn) -> bool {
        if !self.holds(mfn) {
            return false;
        }
        *self.frame_maps.entry(mfn.0).or_insert(0) += 1;
        true
    }

    /// Drops what [`GrantTable::map_frame`] counted.
    pub(crate) fn unmap_frame(&mut self, mfn: Mfn) {
        if let Some(c) = self.frame_maps.get_mut(&mfn.0) {
            *c -= 1;
            if *c == 0 {
                self.frame_maps.remove(&mfn.0);
            }
        }
    }

    /// Whether the guest maps one of the status frames.
    pub(crate) fn status_mapped(&self) -> bool {
        self.status
            .iter()
            .any(|m| self.frame_maps.contains_key(&m.0))
    }

    /// A free maptrack handle.
    pub(crate) fn new_handle(&mut self, m: Mapping) -> Option<u32> {
        if let Some(i) = self.maptrack.iter().position(Option::is_none) {
            self.maptrack[i] = Some(m);
            return Some(i as u32);
        }
        if self.maptrack.len() as u32 >= MAX_MAPTRACK {
            return None;
        }
        self.maptrack.push(Some(m));
        Some(self.maptrack.len() as u32 - 1)
    }

    /// The mapping of `handle`.
    pub(crate) fn mapping(&self, handle: u32) -> Option<Mapping> {
        self.maptrack.get(handle as usize).copied().flatten()
    }
}

fn zero_frame(mem: &mut dyn EventMemory, m: Mfn) {
    for i in 0..PAGE_SIZE / 8 {
        mem.write_ma_u64(m.addr(8 * i).get(), 0);
    }
}

impl Hypervisor {
    /// Grows domain `d`'s table to `frames` grant frames (and, for v2,
    /// the status frames they need), zeroing the new frames. -EINVAL past
    /// [`MAX_GRANT_FRAMES`] or when machine memory runs out.
    pub(crate) fn grant_grow(
        &mut self,
        d: DomainId,
        frames: u32,
        mem: &mut dyn EventMemory,
    ) -> Result<(), Errno> {
        if frames > MAX_GRANT_FRAMES {
            return Err(Errno::Inval);
        }
        let gt = &self.dom_mut(d).grant;
        let want_status = if gt.version() == 2 {
            status_frames_for(frames)
        } else {
            0
        };
        let new_shared = frames.saturating_sub(gt.shared.len() as u32);
        let new_status = want_status.saturating_sub(gt.status.len() as u32);
        let got = self
            .frames
            .alloc(u64::from(new_shared + new_status))
            .map_err(|_| Errno::Inval)?;
        for &m in &got {
            zero_frame(mem, m);
        }
        let gt = &mut self.dom_mut(d).grant;
        let (sh, st) = got.split_at(new_shared as usize);
        gt.shared.extend_from_slice(sh);
        gt.status.extend_from_slice(st);
        Ok(())
    }

    /// Allocates domain `d`'s first grant frame if it has none yet.
    pub(crate) fn grant_materialize(
        &mut self,
        d: DomainId,
        mem: &mut dyn EventMemory,
    ) -> Result<(), Errno> {
        let n = self.dom_mut(d).grant.nr_frames();
        self.grant_grow(d, n, mem)
    }

    /// The machine frame of grant frame `idx` of domain `d` (or of status
    /// frame `idx` when `status`), growing the table up to Xen's limit as
    /// `XENMAPSPACE_grant_table` does (Xen's `gnttab_map_frame`): for
    /// `XENMEM_add_to_physmap`. -EINVAL for a frame past the limit, or a
    /// status frame of a v1 table.
    pub fn grant_table_frame(
        &mut self,
        d: DomainId,
        idx: u32,
        status: bool,
        mem: &mut dyn EventMemory,
    ) -> Result<Mfn, Errno> {
        self.grant_materialize(d, mem)?;
        let gt = &self.dom_mut(d).grant;
        if status {
            if gt.version() != 2 {
                return Err(Errno::Inval);
            }
            if idx >= gt.nr_status_frames() {
                // Enough grant frames for status frame idx to exist.
                let grant = (u64::from(idx) + 1) * u64::from(STATUS_PER_FRAME) / 256;
                let grant = u32::try_from(grant).map_err(|_| Errno::Inval)?;
                if grant <= MAX_GRANT_FRAMES {
                    self.grant_grow(d, grant, mem)?;
                }
            }
            let gt = &self.dom_mut(d).grant;
            return gt.status.get(idx as usize).copied().ok_or(Errno::Inval);
        }
        if idx >= gt.nr_frames() {
            self.grant_grow(d, idx.checked_add(1).ok_or(Errno::Inval)?, mem)?;
        }
        let gt = &self.dom_mut(d).grant;
        gt.shared.get(idx as usize).copied().ok_or(Errno::Inval)
    }
}

#[cfg(test)]
#[path = "grant/tests.rs"]
mod tests;
