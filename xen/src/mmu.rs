//! The PV MMU: guest page tables validated as Xen validates them, the
//! VCPUs' base pointers and guest kernel/user mode (xen-abi.md §4.9).
//!
//! # The invariant
//! A PV guest's page tables are real x86-64 tables in its own frames; the
//! cores walk them ([`PvSpace`], [`smpsim_cores::paging::walk`]). A frame
//! in use as a page table is never writable by the guest: every frame of a
//! domain has a *type* with a count ([`PageInfo`]) — `Writable` while some
//! L1 entry maps it read-write, `L1`..`L4` while it is a validated table
//! (pinned, referenced from a table one level up, or a base pointer) — and
//! a type changes only when its count is 0. Tables change only through
//! `mmu_update`, `update_va_mapping` and `mmuext_op`, which validate the
//! new entry (its frame must be the domain's, a table entry must point to
//! a frame that validates as the next level down) before writing it and
//! drop the old entry's reference after. So a read-write mapping of a
//! table frame, or a table entry that points to a frame mapped read-write,
//! is refused (-EINVAL), and unpinning a table that is still referenced
//! only drops the pin's count.
//!
//! # As Xen, and where not
//! - The L4 slots 256–271 (`HYPERVISOR_VIRT_START`..`HYPERVISOR_VIRT_END`)
//!   are Xen's: guest entries there are refused, and the walk maps the
//!   read-only M2P at `RO_MPT_VIRT_START` (`machine_to_phys_mapping`, one
//!   u64 PFN per machine frame) instead of looking at the guest's L4.
//! - Guest superpages (PSE in L2/L3) are refused, as in Xen without
//!   `allowsuperpage`.
//! - Linear (recursive) page-table entries — a table entry pointing to a
//!   validated table of its own level, or to its own table — are allowed
//!   read-only, as Xen's default `pv-linear-pt` does; a writable one is
//!   refused (XSA-182).
//! - TLBs: an update does not flush by itself (the guest flushes, with
//!   `UVMF_*` or `MMUEXT_*FLUSH*`/`INVLPG*`); a frame that becomes a page
//!   table while stale writable translations of it may exist flushes the
//!   domain's TLBs, as Xen's type-change flush does.
//! - Foreign frames (`foreigndom`) are refused: an unprivileged domain
//!   maps only its own frames, its shared_info, its group's shared area
//!   and its grant-table frames (those mappings are counted for
//!   [`crate::grant`]); other domains' frames only through grant maps
//!   (`hypercall/grant_op.rs`), which write their PTEs themselves.

use crate::abi::Errno;
use crate::event_2l::EventMemory;
use crate::hypervisor::{Domain, Effect, Hypervisor};
use crate::ids::{DomainId, Mfn, VcpuId, PAGE_SIZE};
use serde::{Deserialize, Serialize};
use smpsim_cores::paging::{self, pte, AccessKind, PteMemory, Translation, WalkFault, WalkTrace};
use smpsim_uncore::memory::MachineMemory;
use std::collections::BTreeMap;
use std::sync::Arc;

/// First VA of Xen's part of every PV64 address space (L4 slot 256).
pub const HYPERVISOR_VIRT_START: u64 = 0xFFFF_8000_0000_0000;
/// First VA past it (L4 slot 272).
pub const HYPERVISOR_VIRT_END: u64 = 0xFFFF_8800_0000_0000;
/// The read-only M2P (`machine_to_phys_mapping`).
pub const RO_MPT_VIRT_START: u64 = HYPERVISOR_VIRT_START;
/// First L4 slot that is Xen's.
const XEN_L4_FIRST: u64 = 256;
/// Last L4 slot that is Xen's.
const XEN_L4_LAST: u64 = 271;
/// Entries per table.
const ENTRIES: u64 = 512;

/// `mmu_update` commands (`ptr & 3`).
pub mod cmd {
    /// Validate and write a page-table entry.
    pub const NORMAL_PT_UPDATE: u64 = 0;
    /// Write the M2P entry of a frame.
    pub const MACHPHYS_UPDATE: u64 = 1;
    /// As NORMAL, keeping the entry's accessed/dirty bits.
    pub const PT_UPDATE_PRESERVE_AD: u64 = 2;
    /// As NORMAL, the value not translated through the foreign domain.
    pub const PT_UPDATE_NO_TRANSLATE: u64 = 3;
}

/// `mmuext_op` commands.
pub mod ext {
    /// Pin an L1 table.
    pub const PIN_L1_TABLE: u32 = 0;
    /// Pin an L2 table.
    pub const PIN_L2_TABLE: u32 = 1;
    /// Pin an L3 table.
    pub const PIN_L3_TABLE: u32 = 2;
    /// Pin an L4 table.
    pub const PIN_L4_TABLE: u32 = 3;
    /// Unpin a table.
    pub const UNPIN_TABLE: u32 = 4;
    /// Switch the kernel base pointer.
    pub const NEW_BASEPTR: u32 = 5;
    /// Flush this VCPU's TLB.
    pub const TLB_FLUSH_LOCAL: u32 = 6;
    /// Flush one page from this VCPU's TLB.
    pub const INVLPG_LOCAL: u32 = 7;
    /// Flush the TLBs of a VCPU set.
    pub const TLB_FLUSH_MULTI: u32 = 8;
    /// Flush one page from the TLBs of a VCPU set.
    pub const INVLPG_MULTI: u32 = 9;
    /// Flush every VCPU's TLB.
    pub const TLB_FLUSH_ALL: u32 = 10;
    /// Flush one page from every VCPU's TLB.
    pub const INVLPG_ALL: u32 = 11;
    /// Write back and invalidate caches (needs cache-flush permission).
    pub const FLUSH_CACHE: u32 = 12;
    /// Set the LDT.
    pub const SET_LDT: u32 = 13;
    /// Switch the user base pointer.
    pub const NEW_USER_BASEPTR: u32 = 15;
    /// Zero a frame.
    pub const CLEAR_PAGE: u32 = 16;
    /// Copy a frame.
    pub const COPY_PAGE: u32 = 17;
    /// Write back and invalidate every CPU's caches.
    pub const FLUSH_CACHE_GLOBAL: u32 = 18;
}

/// `update_va_mapping` flags.
pub mod uvmf {
    /// Flush-type mask.
    pub const FLUSHTYPE_MASK: u64 = 3;
    /// No flush.
    pub const NONE: u64 = 0;
    /// Flush the TLB.
    pub const TLB_FLUSH: u64 = 1;
    /// Flush the one page.
    pub const INVLPG: u64 = 2;
    /// Scope: every VCPU of the domain.
    pub const ALL: u64 = 4;
}

/// The type of a domain frame.
#[derive(Copy, Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub enum PageType {
    /// Nothing (type count 0).
    #[default]
    None,
    /// Mapped read-write by some L1 entry (or written by the hypervisor on
    /// the guest's behalf).
    Writable,
    /// A validated L1 table.
    L1,
    /// A validated L2 table.
    L2,
    /// A validated L3 table.
    L3,
    /// A validated L4 table.
    L4,
}

impl PageType {
    /// The table type of `level` (1..=4).
    pub fn table(level: u32) -> PageType {
        match level {
            1 => PageType::L1,
            2 => PageType::L2,
            3 => PageType::L3,
            _ => PageType::L4,
        }
    }

    /// The level of a table type.
    pub fn level(self) -> Option<u32> {
        match self {
            PageType::L1 => Some(1),
            PageType::L2 => Some(2),
            PageType::L3 => Some(3),
            PageType::L4 => Some(4),
            _ => None,
        }
    }
}

/// The type and reference state of one domain frame.
#[derive(Copy, Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct PageInfo {
    /// Its type.
    pub ty: PageType,
    /// References holding the type.
    pub type_count: u32,
    /// Whether a pin holds one of them.
    pub pinned: bool,
    /// Read-only mappings of it.
    pub ro_refs: u32,
}

/// The MMU state of a domain: a [`PageInfo`] per machine frame it owns.
/// The keys are the domain's frames: a frame is the domain's exactly when
/// it is here (the builder's frames, plus what `memory_op` gave it, less
/// what it gave back).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct DomainMmu {
    /// By MFN.
    pub pages: BTreeMap<u64, PageInfo>,
}

/// A VCPU's address map for the cores: its active page-table root plus
/// Xen's fixed mappings. Cheap to build; the machine hands the cores a new
/// one whenever the root changes ([`Effect::NewRoot`]).
#[derive(Clone, Debug)]
pub struct PvSpace {
    /// The L4 it walks (None: nothing is mapped).
    pub root: Option<Mfn>,
    /// Whether it runs in guest user mode.
    pub user: bool,
    /// The frames of the read-only M2P, in order.
    pub m2p: Arc<Vec<Mfn>>,
}

impl PvSpace {
    /// Translates an access of `kind` to `va`, walking the tables in `mem`.
    pub fn translate_in<M: PteMemory + ?Sized>(
        &self,
        mem: &mut M,
        va: u64,
        kind: AccessKind,
    ) -> Result<Translation, WalkFault> {
        let code = smpsim_cores::part::access_code(kind);
        if (HYPERVISOR_VIRT_START..HYPERVISOR_VIRT_END).contains(&va) {
            let page = (va - RO_MPT_VIRT_START) / PAGE_SIZE;
            return match self.m2p.get(page as usize) {
                Some(_) if kind != AccessKind::Read => {
                    Err(WalkFault::Page(code | paging::pfec::PRESENT))
                }
                Some(m) => Ok(Translation {
                    frame: m.addr(0).get(),
                    write_ok: false,
                    exec_ok: false,
                    walk: WalkTrace::default(),
                }),
                None => Err(WalkFault::Page(code)),
            };
        }
        let root = self.root.ok_or(WalkFault::Page(code))?;
        paging::walk(mem, root.addr(0).get(), va, kind)
    }
}

impl smpsim_cores::part::AddressMap for PvSpace {
    fn translate(
        &self,
        mem: &MachineMemory,
        va: u64,
        kind: AccessKind,
    ) -> Result<Translation, WalkFault> {
        self.translate_in(&mut &*mem, va, kind)
    }

    fn user_mode(&self) -> bool {
        self.user
    }
}

/// Which base pointer of a VCPU.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub enum BasePtr {
    /// The kernel's (CR3 in guest kernel mode; MMUEXT_NEW_BASEPTR).
    Kernel,
    /// The user one (MMUEXT_NEW_USER_BASEPTR).
    User,
}

/// Validation and type counting over one domain's frames.
pub(crate) struct Mmu<'a> {
    pub(crate) dom: &'a mut Domain,
    pub(crate) mem: &'a mut dyn EventMemory,
    /// Set when a frame became a page table while stale writable
    /// translations of it may exist: the domain's TLBs must be flushed.
    pub(crate) flush_all: bool,
}

/// The frame an entry points to.
fn entry_mfn(e: u64) -> Mfn {
    Mfn((e & pte::ADDR) >> 12)
}

impl Mmu<'_> {
    fn info(&mut self, mfn: Mfn) -> Option<&mut PageInfo> {
        self.dom.mmu.pages.get_mut(&mfn.0)
    }

    /// Takes a reference of type `ty` on `mfn` (validating it first if it
    /// becomes a table).
    pub(crate) fn get_type(&mut self, mfn: Mfn, ty: PageType) -> Result<(), Errno> {
        let Some(info) = self.info(mfn) else {
            return Err(Errno::Inval);
        };
        if info.type_count > 0 {
            if info.ty != ty {
                return Err(Errno::Inval);
            }
            info.type_count += 1;
            return Ok(());
        }
        let was = info.ty;
        // Claim the type before validating, so that an entry of the table
        // mapping the table itself read-write is refused.
        info.ty = ty;
        info.type_count = 1;
        if let Some(level) = ty.level() {
            if was == PageType::Writable {
                self.flush_all = true;
            }
            if let Err(e) = self.validate(mfn, level) {
                let info = self.info(mfn).expect("owned");
                info.ty = PageType::None;
                info.type_count = 0;
                return Err(e);
            }
        }
        Ok(())
    }

    /// Drops a reference of `mfn`'s type (a table whose count reaches 0
    /// drops the references of its entries).
    pub(crate) fn put_type(&mut self, mfn: Mfn) {
        let Some(info) = self.info(mfn) else {
            return;
        };
        debug_assert!(info.type_count > 0, "type count underflow of {mfn:?}");
        info.type_count = info.type_count.saturating_sub(1);
        if info.type_count > 0 {
            return;
        }
        let ty = std::mem::take(&mut info.ty);
        if let Some(level) = ty.level() {
            for i in 0..ENTRIES {
                let e = self.mem.read_ma_u64(mfn.addr(8 * i).get());
                self.put_entry(mfn, level, e);
            }
        }
    }

    fn validate(&mut self, mfn: Mfn, level: u32) -> Result<(), Errno> {
        for i in 0..ENTRIES {
            let e = self.mem.read_ma_u64(mfn.addr(8 * i).get());
            let xen_slot = level == 4 && (XEN_L4_FIRST..=XEN_L4_LAST).contains(&i);
            let r = if xen_slot && e & pte::P != 0 {
                Err(Errno::Inval)
            } else {
                self.get_entry(mfn, level, e)
            };
            if let Err(err) = r {
                for j in 0..i {
                    let e = self.mem.read_ma_u64(mfn.addr(8 * j).get());
                    self.put_entry(mfn, level, e);
                }
                return Err(err);
            }
        }
        Ok(())
    }

    /// Takes the references entry `e` of the level-`level` table `table`
    /// needs. A table entry pointing to a validated table of its own level
    /// is a linear (recursive) mapping, which Xen allows read-only; one
    /// pointing back to `table` itself takes no reference.
    pub(crate) fn get_entry(&mut self, table: Mfn, level: u32, e: u64) -> Result<(), Errno> {
        if e & pte::P == 0 {
            return Ok(());
        }
        let target = entry_mfn(e);
        if level == 1 {
            if !self.dom.owns(target) {
                return if self.dom.may_map(target) || self.dom.grant.map_frame(target) {
                    Ok(())
                } else {
                    Err(Errno::Inval)
                };
            }
            if e & pte::RW != 0 {
                return self.get_type(target, PageType::Writable);
            }
            let info = self.info(target).expect("owned");
            info.ro_refs += 1;
            return Ok(());
        }
        if e & pte::PS != 0 {
            return Err(Errno::Inval);
        }
        let same = PageType::table(level);
        let linear = target == table
            || self
                .info(target)
                .is_some_and(|i| i.ty == same && i.type_count > 0);
        if linear {
            if e & pte::RW != 0 {
                return Err(Errno::Inval);
            }
            if target != table {
                self.info(target).expect("owned").type_count += 1;
            }
            return Ok(());
        }
        self.get_type(target, PageType::table(level - 1))
    }

    /// Drops what [`Mmu::get_entry`] took for `e` of `table`.
    pub(crate) fn put_entry(&mut self, table: Mfn, level: u32, e: u64) {
        if e & pte::P == 0 {
            return;
        }
        let target = entry_mfn(e);
        if level == 1 {
            if !self.dom.owns(target) {
                self.dom.grant.unmap_frame(target);
                return;
            }
            if e & pte::RW != 0 {
                self.put_type(target);
            } else if let Some(info) = self.info(target) {
                info.ro_refs = info.ro_refs.saturating_sub(1);
            }
            return;
        }
        if target != table {
            self.put_type(target);
        }
    }

    /// Replaces the entry at machine address `at` (in a validated table of
    /// `level`) with `new`.
    pub(crate) fn mod_entry(
        &mut self,
        at: u64,
        level: u32,
        mut new: u64,
        preserve_ad: bool,
    ) -> Result<(), Errno> {
        let old = self.mem.read_ma_u64(at);
        if level == 4 && (XEN_L4_FIRST..=XEN_L4_LAST).contains(&((at % PAGE_SIZE) / 8)) {
            return Err(Errno::Inval);
        }
        if preserve_ad {
            new = (new & !(pte::A | pte::D)) | (old & (pte::A | pte::D));
        }
        // The same frame with the same reference kind: only flags change.
        // (RW counts at every level: it decides whether a linear entry is
        // allowed.)
        let refs = |e: u64| {
            (e & pte::P != 0).then_some((entry_mfn(e), e & pte::RW != 0, e & pte::PS != 0))
        };
        if refs(old) == refs(new) {
            self.mem.write_ma_u64(at, new);
            return Ok(());
        }
        let table = Mfn(at / PAGE_SIZE);
        self.get_entry(table, level, new)?;
        self.mem.write_ma_u64(at, new);
        self.put_entry(table, level, old);
        Ok(())
    }

    /// Pins `mfn` as a table of `level`.
    pub(crate) fn pin(&mut self, mfn: Mfn, level: u32) -> Result<(), Errno> {
        if self.info(mfn).ok_or(Errno::Inval)?.pinned {
            return Err(Errno::Inval);
        }
        self.get_type(mfn, PageType::table(level))?;
        self.info(mfn).expect("owned").pinned = true;
        Ok(())
    }

    /// Unpins `mfn`.
    pub(crate) fn unpin(&mut self, mfn: Mfn) -> Result<(), Errno> {
        let info = self.info(mfn).ok_or(Errno::Inval)?;
        if !info.pinned {
            return Err(Errno::Inval);
        }
        info.pinned = false;
        self.put_type(mfn);
        Ok(())
    }

    /// The machine address of the L1 entry that maps `va` under `root`
    /// (the L1 table must be present and validated).
    pub(crate) fn l1_entry_of(&mut self, root: Mfn, va: u64) -> Result<u64, Errno> {
        if !paging::is_canonical(va) || (HYPERVISOR_VIRT_START..HYPERVISOR_VIRT_END).contains(&va) {
            return Err(Errno::Inval);
        }
        let mut table = root;
        for level in (2..=4u32).rev() {
            let e = self
                .mem
                .read_ma_u64(table.addr(8 * paging::index(va, level)).get());
            if e & pte::P == 0 || e & pte::PS != 0 {
                return Err(Errno::Inval);
            }
            table = entry_mfn(e);
        }
        match self.info(table) {
            Some(i) if i.ty == PageType::L1 && i.type_count > 0 => {}
            _ => return Err(Errno::Inval),
        }
        Ok(table.addr(8 * paging::index(va, 1)).get())
    }
}

impl Hypervisor {
    /// VCPU `v`'s address map for the cores.
    pub fn vcpu_space(&self, d: DomainId, v: VcpuId) -> PvSpace {
        let (root, user) = self.active_root(d, v);
        PvSpace {
            root,
            user,
            m2p: Arc::clone(&self.m2p_frames),
        }
    }

    /// Installs `mfn` as VCPU `v`'s `which` base pointer (MMUEXT_NEW_BASEPTR,
    /// MMUEXT_NEW_USER_BASEPTR, a CR3 write; `None` clears the user one):
    /// the frame must be the domain's and validate as an L4 table; the old
    /// one's reference is dropped. Returns the effects to apply (the new
    /// root, a flush).
    pub fn new_baseptr(
        &mut self,
        d: DomainId,
        v: VcpuId,
        mfn: Option<Mfn>,
        which: BasePtr,
        mem: &mut dyn EventMemory,
    ) -> Result<Vec<Effect>, Errno> {
        let dom = self.dom_mut(d);
        let vm = dom.vcpus[v.0 as usize].mmu;
        let old = match which {
            BasePtr::Kernel => vm.kernel_root,
            BasePtr::User => vm.user_root,
        };
        if which == BasePtr::Kernel && mfn.is_none() {
            return Err(Errno::Inval);
        }
        let mut mmu = Mmu {
            dom,
            mem,
            flush_all: false,
        };
        if let Some(m) = mfn {
            mmu.get_type(m, PageType::L4)?;
        }
        if let Some(o) = old {
            mmu.put_type(o);
        }
        let flush_all = mmu.flush_all;
        let vc = &mut self.dom_mut(d).vcpus[v.0 as usize].mmu;
        match which {
            BasePtr::Kernel => vc.kernel_root = mfn,
            BasePtr::User => vc.user_root = mfn,
        }
        let mut out = Vec::new();
        if flush_all {
            out.push(Effect::Flush {
                domain: d,
                vcpus: None,
                page: None,
            });
        }
        // A CR3 load flushes the VCPU's TLB even when the root is the same.
        let active = (which == BasePtr::Kernel) != vc.user_mode;
        if active {
            out.push(Effect::NewRoot { domain: d, vcpu: v });
        }
        Ok(out)
    }

    /// Switches VCPU `v` between guest kernel and user mode (Xen's
    /// toggle_guest_mode): the active root follows. Returns the effect to
    /// apply when the active root changed.
    pub fn set_guest_mode(&mut self, d: DomainId, v: VcpuId, user: bool) -> Option<Effect> {
        let vc = self.vcpu_mut(d, v);
        let before = vc.mmu;
        vc.mmu.user_mode = user;
        (vc.mmu != before).then_some(Effect::NewRoot { domain: d, vcpu: v })
    }

    /// The L4 VCPU `v` walks now, and whether it is in guest user mode.
    pub fn active_root(&self, d: DomainId, v: VcpuId) -> (Option<Mfn>, bool) {
        let m = self
            .domain(d)
            .and_then(|dom| dom.vcpu(v))
            .map(|vc| vc.mmu)
            .unwrap_or_default();
        (m.active_root(), m.user_mode)
    }

    /// The type state of a domain's frame, if it owns it.
    pub fn page_info(&self, d: DomainId, mfn: Mfn) -> Option<PageInfo> {
        self.domain(d)?.mmu_page(mfn)
    }
}

/// Test support: page tables mapping `maps` (page VA → frame, read-write),
/// built by the domain builder's table writer in frames from `first_table`
/// up (the L4 first).
#[cfg(test)]
pub(crate) fn test_space(
    store: &mut dyn crate::memory::FrameStore,
    maps: &[(u64, Mfn)],
    first_table: u64,
) -> PvSpace {
    let maps: Vec<(u64, Mfn, bool)> = maps.iter().map(|&(va, m)| (va, m, true)).collect();
    // At most one L3, L2 and L1 per mapping, plus the L4.
    let tables: Vec<Mfn> = (first_table..first_table + 1 + 3 * maps.len() as u64)
        .map(Mfn)
        .collect();
    crate::builder::write_tables(&maps, &tables, store);
    PvSpace {
        root: Some(Mfn(first_table)),
        user: false,
        m2p: Arc::new(Vec::new()),
    }
}

#[cfg(test)]
#[path = "mmu/tests.rs"]
mod tests;
