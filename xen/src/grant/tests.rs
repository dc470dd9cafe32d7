//! grant_table_op on two test domains (64 pages each at 0x40_0000, page
//! `i` at `BASE + i * 4096`; bootstrap L1 at PFN 12, whose entries past 63
//! are empty; page 16 is the hypercall scratch page).

use super::*;
use crate::abi::hypercall::{GRANT_TABLE_OP, MMUEXT_OP, UPDATE_VA_MAPPING};
use crate::abi::DOMID_SELF;
use crate::hypervisor::Effect;
use crate::memory::FrameStore;
use crate::mmu::PageType;
use crate::testenv::{env, Env, BAD, SCRATCH};
use smpsim_cores::paging::{self, pte};

const BASE: u64 = 0x40_0000;
/// An address with an (empty) L1 entry in the bootstrap L1.
const HOLE: u64 = BASE + 100 * 4096;
/// A second one.
const HOLE2: u64 = BASE + 101 * 4096;
const EINVAL: i64 = -22;
const EFAULT: i64 = -14;
const EBUSY: i64 = -16;

mod cmd {
    pub const MAP: u64 = 0;
    pub const UNMAP: u64 = 1;
    pub const SETUP: u64 = 2;
    pub const DUMP: u64 = 3;
    pub const TRANSFER: u64 = 4;
    pub const COPY: u64 = 5;
    pub const QUERY: u64 = 6;
    pub const UNMAP_REPLACE: u64 = 7;
    pub const SET_VERSION: u64 = 8;
    pub const STATUS_FRAMES: u64 = 9;
    pub const GET_VERSION: u64 = 10;
    pub const SWAP: u64 = 11;
    pub const CACHE_FLUSH: u64 = 12;
}

fn va(page: u64) -> u64 {
    BASE + page * 4096
}

fn mfn_of(e: &Env, d: u16, pfn: usize) -> Mfn {
    e.hv.domain(DomainId(d)).expect("domain").p2m()[pfn]
}

fn type_count(e: &Env, d: u16, pfn: usize) -> u32 {
    let m = mfn_of(e, d, pfn);
    e.hv.page_info(DomainId(d), m).expect("owned").type_count
}

/// Runs `grant_table_op(c, SCRATCH, count)` with `arg` at SCRATCH; returns
/// RAX, what is at SCRATCH afterwards and the effects.
fn op(e: &mut Env, d: u16, c: u64, arg: &[u8], count: u64) -> (i64, Vec<u8>, Vec<Effect>) {
    e.write(d, SCRATCH, arg);
    let (rc, o) = e.call(d, 0, 0, GRANT_TABLE_OP, [c, SCRATCH, count, 0, 0]);
    (rc, e.read(d, SCRATCH, arg.len()), o.effects)
}

fn i16_at(b: &[u8], off: usize) -> i16 {
    i16::from_le_bytes([b[off], b[off + 1]])
}

fn u32_at(b: &[u8], off: usize) -> u32 {
    u32::from_le_bytes(b[off..off + 4].try_into().expect("4"))
}

fn u64_at(b: &[u8], off: usize) -> u64 {
    u64::from_le_bytes(b[off..off + 8].try_into().expect("8"))
}

/// setup_table for `n` frames of `dom` (list at SCRATCH + 512); returns
/// (status, frames).
fn setup(e: &mut Env, d: u16, dom: u16, n: u32) -> (i16, Vec<Mfn>) {
    let mut b = vec![0u8; 24];
    b[0..2].copy_from_slice(&dom.to_le_bytes());
    b[4..8].copy_from_slice(&n.to_le_bytes());
    b[16..24].copy_from_slice(&(SCRATCH + 512).to_le_bytes());
    let (rc, out, _) = op(e, d, cmd::SETUP, &b, 1);
    assert_eq!(rc, 0);
    let list = e.read(d, SCRATCH + 512, 8 * n as usize);
    let frames = (0..n as usize).map(|i| Mfn(u64_at(&list, 8 * i))).collect();
    (i16_at(&out, 8), frames)
}

/// Writes v1 entry `r` of domain `d`'s table straight into its frame.
fn grant(e: &mut Env, d: u16, r: u32, domid: u16, frame: Mfn, flags: u16) {
    let gt = &e.hv.domain(DomainId(d)).expect("d").grant;
    let ma = gt.entry_ma(r).expect("set up");
    let w = u64::from(flags) | u64::from(domid) << 16 | frame.0 << 32;
    e.store.write(ma, &w.to_le_bytes());
}

fn entry_flags(e: &mut Env, d: u16, r: u32) -> u16 {
    let gt = e.hv.domain(DomainId(d)).expect("d").grant.clone();
    let ma = gt.entry_ma(r).expect("set up");
    let mut b = [0u8; 2];
    e.store.read(ma, &mut b);
    u16::from_le_bytes(b)
}

/// map_grant_ref; returns (status, handle, dev_bus_addr).
fn map(e: &mut Env, d: u16, host_addr: u64, flags: u32, r: u32, dom: u16) -> (i16, u32, u64) {
    let mut b = vec![0u8; 32];
    b[0..8].copy_from_slice(&host_addr.to_le_bytes());
    b[8..12].copy_from_slice(&flags.to_le_bytes());
    b[12..16].copy_from_slice(&r.to_le_bytes());
    b[16..18].copy_from_slice(&dom.to_le_bytes());
    let (rc, out, _) = op(e, d, cmd::MAP, &b, 1);
    assert_eq!(rc, 0);
    (i16_at(&out, 18), u32_at(&out, 20), u64_at(&out, 24))
}

/// unmap_grant_ref (or with `replace`, unmap_and_replace with `second` as
/// new_addr); returns (status, effects).
fn unmap_op(e: &mut Env, d: u16, addr: u64, second: u64, h: u32, c: u64) -> (i16, Vec<Effect>) {
    let mut b = vec![0u8; 24];
    b[0..8].copy_from_slice(&addr.to_le_bytes());
    b[8..16].copy_from_slice(&second.to_le_bytes());
    b[16..20].copy_from_slice(&h.to_le_bytes());
    let (rc, out, fx) = op(e, d, c, &b, 1);
    assert_eq!(rc, 0);
    (i16_at(&out, 20), fx)
}

fn unmap(e: &mut Env, d: u16, addr: u64, dev: u64, h: u32) -> i16 {
    unmap_op(e, d, addr, dev, h, cmd::UNMAP).0
}

/// Domain 0 with a table of one frame whose entry 8 grants its page 30 to
/// domain 1 with `flags`.
fn granted(flags: u16) -> Env {
    let mut e = env(&[1, 1]);
    assert_eq!(setup(&mut e, 0, DOMID_SELF, 1).0, gntst::OKAY);
    let f = mfn_of(&e, 0, 30);
    grant(&mut e, 0, 8, 1, f, flags);
    e
}

/// The bootstrap L1 entry of `va` in domain `d`.
fn l1e_ma(e: &Env, d: u16, va: u64) -> u64 {
    mfn_of(e, d, 12).addr(8 * paging::index(va, 1)).get()
}

fn l1e(e: &mut Env, d: u16, va: u64) -> u64 {
    let mut b = [0u8; 8];
    let ma = l1e_ma(e, d, va);
    e.store.read(ma, &mut b);
    u64::from_le_bytes(b)
}

#[test]
fn setup_table_hands_out_frames_and_query_size_reports_them() {
    let mut e = env(&[1, 1]);
    let mut q = vec![0u8; 16];
    q[0..2].copy_from_slice(&DOMID_SELF.to_le_bytes());
    let (rc, out, _) = op(&mut e, 0, cmd::QUERY, &q, 1);
    assert_eq!((rc, u32_at(&out, 4), u32_at(&out, 8)), (0, 1, 64));
    assert_eq!(i16_at(&out, 12), gntst::OKAY);
    let (st, frames) = setup(&mut e, 0, DOMID_SELF, 4);
    assert_eq!(st, gntst::OKAY);
    assert_eq!(frames.len(), 4);
    assert!(frames.windows(2).all(|w| w[0] != w[1]));
    let dom = e.hv.domain(DomainId(0)).expect("d0");
    assert!(frames.iter().all(|&m| !dom.owns(m) && dom.grant.holds(m)));
    let (_, out, _) = op(&mut e, 0, cmd::QUERY, &q, 1);
    assert_eq!(u32_at(&out, 4), 4);
    // Again with fewer: the same first frames, the table does not shrink.
    assert_eq!(setup(&mut e, 0, 0, 2), (gntst::OKAY, frames[..2].to_vec()));
    // Past the limit; another domain; no such domain.
    assert_eq!(setup(&mut e, 0, DOMID_SELF, 65).0, gntst::GENERAL_ERROR);
    assert_eq!(setup(&mut e, 0, 1, 1).0, gntst::PERMISSION_DENIED);
    assert_eq!(setup(&mut e, 0, 77, 1).0, gntst::BAD_DOMAIN);
    q[0..2].copy_from_slice(&77u16.to_le_bytes());
    let (_, out, _) = op(&mut e, 0, cmd::QUERY, &q, 1);
    assert_eq!(i16_at(&out, 12), gntst::BAD_DOMAIN);
    // count must be 1; the op must be readable; the list writable.
    assert_eq!(op(&mut e, 0, cmd::SETUP, &[0; 24], 2).0, EINVAL);
    assert_eq!(op(&mut e, 0, cmd::QUERY, &[0; 16], 0).0, EINVAL);
    let (rc, _) = e.call(0, 0, 0, GRANT_TABLE_OP, [cmd::SETUP, BAD, 1, 0, 0]);
    assert_eq!(rc, EFAULT);
    let mut b = vec![0u8; 24];
    b[0..2].copy_from_slice(&DOMID_SELF.to_le_bytes());
    b[4..8].copy_from_slice(&1u32.to_le_bytes());
    b[16..24].copy_from_slice(&BAD.to_le_bytes());
    let (_, out, _) = op(&mut e, 0, cmd::SETUP, &b, 1);
    assert_eq!(i16_at(&out, 8), gntst::BAD_VIRT_ADDR);
    // A list in Xen's part of the address space fails the whole call.
    b[16..24].copy_from_slice(&0xFFFF_8000_0000_0000u64.to_le_bytes());
    assert_eq!(op(&mut e, 0, cmd::SETUP, &b, 1).0, EFAULT);
}

#[test]
fn a_domain_maps_its_own_grant_frames_but_not_anothers() {
    let mut e = env(&[1, 1]);
    let (_, mine) = setup(&mut e, 0, DOMID_SELF, 1);
    let (_, theirs) = setup(&mut e, 1, DOMID_SELF, 1);
    let rw = pte::P | pte::RW | pte::A | pte::D;
    let at = va(30);
    let args = [at, mine[0].addr(0).get() | rw, 2, 0, 0];
    assert_eq!(e.call(0, 0, 0, UPDATE_VA_MAPPING, args).0, 0);
    e.write(0, at, b"entries");
    let mut b = [0u8; 7];
    e.store.read(mine[0].addr(0).get(), &mut b);
    assert_eq!(&b, b"entries");
    let args = [va(31), theirs[0].addr(0).get() | rw, 2, 0, 0];
    assert_eq!(e.call(0, 0, 0, UPDATE_VA_MAPPING, args).0, EINVAL);
}

#[test]
fn a_granted_frame_is_mapped_read_write_and_unmapping_restores_isolation() {
    let mut e = granted(gtf::PERMIT_ACCESS);
    e.write(0, va(30), b"from d0");
    let frame = mfn_of(&e, 0, 30);
    let before = type_count(&e, 0, 30);
    let (st, h, bus) = map(&mut e, 1, HOLE, gntmap::HOST_MAP, 8, 0);
    assert_eq!(st, gntst::OKAY);
    assert_eq!(bus, frame.addr(0).get());
    assert_eq!(e.translate(1, HOLE), Some(frame.addr(0).get()));
    assert_eq!(e.read(1, HOLE, 7), b"from d0");
    e.write(1, HOLE, b"from d1");
    assert_eq!(e.read(0, va(30), 7), b"from d1");
    assert_eq!(
        entry_flags(&mut e, 0, 8),
        gtf::PERMIT_ACCESS | gtf::READING | gtf::WRITING
    );
    assert_eq!(type_count(&e, 0, 30), before + 1, "a writable reference");
    let pte = l1e(&mut e, 1, HOLE);
    assert_eq!(pte & pte::RW, pte::RW);
    assert_ne!(pte & pte::NX, 0);
    let (st, fx) = unmap_op(&mut e, 1, HOLE, 0, h, cmd::UNMAP);
    assert_eq!(st, gntst::OKAY);
    assert!(fx
        .iter()
        .any(|f| matches!(f, Effect::Flush { domain, .. } if domain.0 == 1)));
    assert_eq!(l1e(&mut e, 1, HOLE), 0);
    assert_eq!(e.translate(1, HOLE), None);
    assert_eq!(entry_flags(&mut e, 0, 8), gtf::PERMIT_ACCESS);
    assert_eq!(type_count(&e, 0, 30), before);
    assert_eq!(unmap(&mut e, 1, HOLE, 0, h), gntst::BAD_HANDLE, "freed");
}

#[test]
fn maps_without_a_live_grant_for_the_caller_are_refused_and_change_nothing() {
    let mut e = granted(gtf::PERMIT_ACCESS);
    e.write(0, va(31), b"secret");
    let hole = l1e(&mut e, 1, HOLE);
    let host = gntmap::HOST_MAP;
    // No grant at ref 9; ref 8 is for domain 1, not domain 0's other peer.
    assert_eq!(map(&mut e, 1, HOLE, host, 9, 0).0, gntst::GENERAL_ERROR);
    let f = mfn_of(&e, 0, 31);
    grant(&mut e, 0, 10, 5, f, gtf::PERMIT_ACCESS);
    assert_eq!(map(&mut e, 1, HOLE, host, 10, 0).0, gntst::GENERAL_ERROR);
    // A transfer entry is not an access grant.
    grant(&mut e, 0, 11, 1, f, gtf::ACCEPT_TRANSFER);
    assert_eq!(map(&mut e, 1, HOLE, host, 11, 0).0, gntst::GENERAL_ERROR);
    // Bad refs, bad domains, bad flags.
    assert_eq!(map(&mut e, 1, HOLE, host, 512, 0).0, gntst::BAD_GNTREF);
    assert_eq!(map(&mut e, 1, HOLE, host, 8, 99).0, gntst::BAD_DOMAIN);
    assert_eq!(
        map(&mut e, 1, HOLE, host, 8, DOMID_SELF).0,
        gntst::BAD_DOMAIN
    );
    assert_eq!(map(&mut e, 1, HOLE, 0, 8, 0).0, gntst::BAD_GNTREF);
    // A frame the granter does not own: domain 1's own page.
    let other = mfn_of(&e, 1, 31);
    grant(&mut e, 0, 12, 1, other, gtf::PERMIT_ACCESS);
    assert_eq!(map(&mut e, 1, HOLE, host, 12, 0).0, gntst::BAD_PAGE);
    // An address with no L1 table, an unaligned PTE address, a PTE
    // address in a frame that is not the caller's L1.
    assert_eq!(map(&mut e, 1, 0x1000, host, 8, 0).0, gntst::GENERAL_ERROR);
    let pte_ma = l1e_ma(&e, 1, HOLE);
    let cp = host | gntmap::CONTAINS_PTE;
    assert_eq!(map(&mut e, 1, pte_ma + 2, cp, 8, 0).0, gntst::GENERAL_ERROR);
    let not_l1 = mfn_of(&e, 1, 40).addr(0).get();
    assert_eq!(map(&mut e, 1, not_l1, cp, 8, 0).0, gntst::GENERAL_ERROR);
    let d0_l1 = l1e_ma(&e, 0, HOLE);
    assert_eq!(map(&mut e, 1, d0_l1, cp, 8, 0).0, gntst::GENERAL_ERROR);
    // Nothing changed: no flags, no references, no PTE, d0's data intact.
    assert_eq!(entry_flags(&mut e, 0, 8), gtf::PERMIT_ACCESS);
    assert_eq!(l1e(&mut e, 1, HOLE), hole);
    assert_eq!(l1e(&mut e, 0, HOLE), 0);
    assert_eq!(type_count(&e, 0, 30), 1);
    assert_eq!(e.read(0, va(31), 6), b"secret");
    assert!(e
        .hv
        .domain(DomainId(0))
        .expect("d0")
        .grant
        .active
        .is_empty());
    // And domain 1 still cannot reach domain 0's frame by the PV MMU.
    let rw = pte::P | pte::RW | pte::A | pte::D;
    let args = [HOLE, f.addr(0).get() | rw, 0, 0, 0];
    assert_eq!(e.call(1, 0, 0, UPDATE_VA_MAPPING, args).0, EINVAL);
}

#[test]
fn a_read_only_grant_maps_only_read_only() {
    let mut e = granted(gtf::PERMIT_ACCESS | gtf::READONLY);
    let host = gntmap::HOST_MAP;
    assert_eq!(map(&mut e, 1, HOLE, host, 8, 0).0, gntst::GENERAL_ERROR);
    let dev = gntmap::DEVICE_MAP;
    assert_eq!(map(&mut e, 1, 0, dev, 8, 0).0, gntst::GENERAL_ERROR);
    let ro = host | gntmap::READONLY;
    let (st, h, _) = map(&mut e, 1, HOLE, ro, 8, 0);
    assert_eq!(st, gntst::OKAY);
    assert_eq!(l1e(&mut e, 1, HOLE) & pte::RW, 0);
    let flags = entry_flags(&mut e, 0, 8);
    assert_eq!(flags & (gtf::READING | gtf::WRITING), gtf::READING);
    assert_eq!(type_count(&e, 0, 30), 1, "no writable reference taken");
    // Writing through it faults (the hypervisor's own walk refuses).
    let w = e.with_mem(1, |m| {
        crate::memory::GuestMemory::write_virt(m, HOLE, b"x").is_err()
    });
    assert!(w);
    assert_eq!(unmap(&mut e, 1, HOLE, 0, h), gntst::OKAY);
    assert_eq!(
        entry_flags(&mut e, 0, 8),
        gtf::PERMIT_ACCESS | gtf::READONLY
    );
}

#[test]
fn a_page_table_frame_is_never_mapped_writable_and_a_mapped_frame_never_becomes_one() {
    let mut e = env(&[1, 1]);
    setup(&mut e, 0, DOMID_SELF, 1);
    let l1 = mfn_of(&e, 0, 12);
    grant(&mut e, 0, 8, 1, l1, gtf::PERMIT_ACCESS);
    assert_eq!(
        map(&mut e, 1, HOLE, gntmap::HOST_MAP, 8, 0).0,
        gntst::GENERAL_ERROR
    );
    let ro = gntmap::HOST_MAP | gntmap::READONLY;
    assert_eq!(map(&mut e, 1, HOLE, ro, 8, 0).0, gntst::OKAY);
    // A frame mapped writable through a grant cannot be pinned as a table
    // (XSA-224): drop d0's own writable mapping of page 30 first.
    let f = mfn_of(&e, 0, 30);
    let args = [va(30), f.addr(0).get() | pte::P | pte::A, 2, 0, 0];
    assert_eq!(e.call(0, 0, 0, UPDATE_VA_MAPPING, args).0, 0);
    grant(&mut e, 0, 9, 0, f, gtf::PERMIT_ACCESS);
    let (st, h, _) = map(&mut e, 0, HOLE, gntmap::HOST_MAP, 9, 0);
    assert_eq!(st, gntst::OKAY);
    let pin = |e: &mut Env| {
        let mut b = vec![0u8; 24];
        b[8..16].copy_from_slice(&f.0.to_le_bytes());
        e.write(0, SCRATCH + 256, &b);
        let args = [SCRATCH + 256, 1, 0, u64::from(DOMID_SELF), 0];
        e.call(0, 0, 0, MMUEXT_OP, args).0
    };
    assert_eq!(pin(&mut e), EINVAL);
    assert_eq!(unmap(&mut e, 0, HOLE, 0, h), gntst::OKAY);
    assert_eq!(pin(&mut e), 0, "zeroed page 30 validates once unmapped");
    assert_eq!(e.hv.page_info(DomainId(0), f).expect("d0").ty, PageType::L1);
}

#[test]
fn revoking_a_mapped_grant_leaves_the_mapping_until_unmapped() {
    let mut e = granted(gtf::PERMIT_ACCESS);
    let (st, h, _) = map(&mut e, 1, HOLE, gntmap::HOST_MAP, 8, 0);
    assert_eq!(st, gntst::OKAY);
    // The granter clears its entry: Xen lets it; reading/writing stay
    // set by Xen only while mapped, and the mapping stays.
    let f = mfn_of(&e, 0, 30);
    grant(&mut e, 0, 8, 1, f, gtf::READING | gtf::WRITING);
    assert_eq!(e.translate(1, HOLE), Some(f.addr(0).get()));
    assert_eq!(unmap(&mut e, 1, HOLE, 0, h), gntst::OKAY);
    assert_eq!(entry_flags(&mut e, 0, 8), 0, "Xen cleared its flags");
    assert_eq!(
        map(&mut e, 1, HOLE, gntmap::HOST_MAP, 8, 0).0,
        gntst::GENERAL_ERROR
    );
    assert_eq!(e.translate(1, HOLE), None);
}

#[test]
fn contains_pte_maps_write_the_named_entry() {
    let mut e = granted(gtf::PERMIT_ACCESS);
    let at = l1e_ma(&e, 1, HOLE2);
    let flags = gntmap::HOST_MAP | gntmap::CONTAINS_PTE;
    let (st, h, _) = map(&mut e, 1, at, flags, 8, 0);
    assert_eq!(st, gntst::OKAY);
    let f = mfn_of(&e, 0, 30);
    assert_eq!(e.translate(1, HOLE2), Some(f.addr(0).get()));
    // Unmapping by another entry's address fails and keeps the mapping.
    assert_eq!(unmap(&mut e, 1, at + 8, 0, h), gntst::GENERAL_ERROR);
    assert_eq!(unmap(&mut e, 1, at, 0, h), gntst::OKAY);
    assert_eq!(e.translate(1, HOLE2), None);
    assert_eq!(type_count(&e, 0, 30), 1);
}

#[test]
fn host_and_device_mappings_are_undone_separately() {
    let mut e = granted(gtf::PERMIT_ACCESS);
    let both = gntmap::HOST_MAP | gntmap::DEVICE_MAP;
    let (st, h, bus) = map(&mut e, 1, HOLE, both, 8, 0);
    assert_eq!(st, gntst::OKAY);
    assert_eq!(type_count(&e, 0, 30), 3, "own mapping, host and device");
    assert_eq!(unmap(&mut e, 1, 0, bus + 4096, h), gntst::BAD_DEV_ADDR);
    assert_eq!(unmap(&mut e, 1, HOLE, 0, h), gntst::OKAY);
    assert_eq!(type_count(&e, 0, 30), 2);
    assert_ne!(entry_flags(&mut e, 0, 8) & gtf::WRITING, 0, "device still");
    assert_eq!(unmap(&mut e, 1, 0, bus, h), gntst::OKAY);
    assert_eq!(type_count(&e, 0, 30), 1);
    assert_eq!(entry_flags(&mut e, 0, 8), gtf::PERMIT_ACCESS);
    assert_eq!(unmap(&mut e, 1, 0, bus, h), gntst::BAD_HANDLE);
    assert_eq!(unmap(&mut e, 1, 0, 0, 12345), gntst::BAD_HANDLE);
}

#[test]
fn an_unmap_whose_pte_changed_fails_and_keeps_its_references() {
    let mut e = granted(gtf::PERMIT_ACCESS);
    let (_, h, _) = map(&mut e, 1, HOLE, gntmap::HOST_MAP, 8, 0);
    // Replace the grant PTE by a read-only mapping of the same frame.
    let f = mfn_of(&e, 0, 30);
    let ma = l1e_ma(&e, 1, HOLE);
    e.store
        .write(ma, &(f.addr(0).get() | pte::P | pte::A).to_le_bytes());
    assert_eq!(unmap(&mut e, 1, HOLE, 0, h), gntst::GENERAL_ERROR);
    assert_eq!(type_count(&e, 0, 30), 2);
    assert!(e
        .hv
        .domain(DomainId(1))
        .expect("d1")
        .grant
        .mapping(h)
        .is_some());
}

#[test]
fn unmap_and_replace_moves_the_new_address_entry_in() {
    let mut e = granted(gtf::PERMIT_ACCESS);
    let (_, h, _) = map(&mut e, 1, HOLE, gntmap::HOST_MAP, 8, 0);
    let mine = mfn_of(&e, 1, 40);
    let moved = mine.addr(0).get() | pte::P | pte::A;
    let ma2 = l1e_ma(&e, 1, HOLE2);
    e.store.write(ma2, &moved.to_le_bytes());
    let (st, fx) = unmap_op(&mut e, 1, HOLE, HOLE2, h, cmd::UNMAP_REPLACE);
    assert_eq!(st, gntst::OKAY);
    assert!(!fx.is_empty());
    assert_eq!(l1e(&mut e, 1, HOLE), moved);
    assert_eq!(l1e(&mut e, 1, HOLE2), 0);
    assert_eq!(type_count(&e, 0, 30), 1);
    assert_eq!(entry_flags(&mut e, 0, 8), gtf::PERMIT_ACCESS);
}

fn copy_op(
    e: &mut Env,
    d: u16,
    src: (u64, u16, u16),
    dst: (u64, u16, u16),
    len: u16,
    flags: u16,
) -> i16 {
    let mut b = vec![0u8; 40];
    for (at, (u, dom, off)) in [(0, src), (16, dst)] {
        b[at..at + 8].copy_from_slice(&u.to_le_bytes());
        b[at + 8..at + 10].copy_from_slice(&dom.to_le_bytes());
        b[at + 10..at + 12].copy_from_slice(&off.to_le_bytes());
    }
    b[32..34].copy_from_slice(&len.to_le_bytes());
    b[34..36].copy_from_slice(&flags.to_le_bytes());
    let (rc, out, _) = op(e, d, cmd::COPY, &b, 1);
    assert_eq!(rc, 0);
    i16_at(&out, 36)
}

#[test]
fn copy_goes_through_grants_with_bounds_checks() {
    const SRC: u16 = 1;
    const DST: u16 = 2;
    let mut e = granted(gtf::PERMIT_ACCESS);
    e.write(1, va(40), b"payload");
    e.write(0, va(30), b"granter");
    let mine = mfn_of(&e, 1, 40).0;
    let s = DOMID_SELF;
    // Into the grant, and out of it.
    assert_eq!(
        copy_op(&mut e, 1, (mine, s, 0), (8, 0, 100), 7, DST),
        gntst::OKAY
    );
    assert_eq!(e.read(0, va(30) + 100, 7), b"payload");
    assert_eq!(
        copy_op(&mut e, 1, (8, 0, 0), (mine, s, 50), 7, SRC),
        gntst::OKAY
    );
    assert_eq!(e.read(1, va(40) + 50, 7), b"granter");
    // Crossing the page end; a frame named with another domain; a frame
    // the caller does not own; refs and domains that are bad; no grant.
    assert_eq!(
        copy_op(&mut e, 1, (mine, s, 4090), (8, 0, 0), 7, DST),
        gntst::BAD_COPY_ARG
    );
    assert_eq!(
        copy_op(&mut e, 1, (mine, 0, 0), (8, 0, 0), 7, DST),
        gntst::PERMISSION_DENIED
    );
    let theirs = mfn_of(&e, 0, 31).0;
    assert_eq!(
        copy_op(&mut e, 1, (theirs, s, 0), (mine, s, 0), 7, 0),
        gntst::BAD_PAGE
    );
    assert_eq!(
        copy_op(&mut e, 1, (mine, s, 0), (4096, 0, 0), 7, DST),
        gntst::BAD_GNTREF
    );
    assert_eq!(
        copy_op(&mut e, 1, (mine, s, 0), (8, 42, 0), 7, DST),
        gntst::BAD_DOMAIN
    );
    assert_eq!(
        copy_op(&mut e, 1, (mine, s, 0), (9, 0, 0), 7, DST),
        gntst::GENERAL_ERROR
    );
    assert_eq!(
        copy_op(&mut e, 0, (mine, s, 0), (8, 0, 0), 7, DST),
        gntst::BAD_PAGE
    );
    // A read-only grant is no copy destination; no flags stay behind.
    let f = mfn_of(&e, 0, 30);
    grant(&mut e, 0, 8, 1, f, gtf::PERMIT_ACCESS | gtf::READONLY);
    assert_eq!(
        copy_op(&mut e, 1, (mine, s, 0), (8, 0, 0), 7, DST),
        gntst::GENERAL_ERROR
    );
    assert_eq!(
        copy_op(&mut e, 1, (8, 0, 0), (mine, s, 0), 7, SRC),
        gntst::OKAY
    );
    assert_eq!(
        entry_flags(&mut e, 0, 8),
        gtf::PERMIT_ACCESS | gtf::READONLY
    );
    // A page-table frame is no destination either.
    let l1 = mfn_of(&e, 0, 12);
    grant(&mut e, 0, 9, 1, l1, gtf::PERMIT_ACCESS);
    assert_eq!(
        copy_op(&mut e, 1, (mine, s, 0), (9, 0, 0), 8, DST),
        gntst::GENERAL_ERROR
    );
}

fn set_version(e: &mut Env, d: u16, v: u32) -> (i64, u32) {
    let (rc, out, _) = op(e, d, cmd::SET_VERSION, &v.to_le_bytes(), 1);
    (rc, u32_at(&out, 0))
}

fn get_version(e: &mut Env, d: u16, dom: u16) -> (i64, u32) {
    let mut b = vec![0u8; 8];
    b[0..2].copy_from_slice(&dom.to_le_bytes());
    let (rc, out, _) = op(e, d, cmd::GET_VERSION, &b, 1);
    (rc, u32_at(&out, 4))
}

/// get_status_frames for `n` (list at SCRATCH + 512).
fn status_frames(e: &mut Env, d: u16, n: u32) -> (i16, Vec<Mfn>) {
    let mut b = vec![0u8; 16];
    b[0..4].copy_from_slice(&n.to_le_bytes());
    b[4..6].copy_from_slice(&DOMID_SELF.to_le_bytes());
    b[8..16].copy_from_slice(&(SCRATCH + 512).to_le_bytes());
    let (rc, out, _) = op(e, d, cmd::STATUS_FRAMES, &b, 1);
    assert_eq!(rc, 0);
    let list = e.read(d, SCRATCH + 512, 8 * n as usize);
    (
        i16_at(&out, 6),
        (0..n as usize).map(|i| Mfn(u64_at(&list, 8 * i))).collect(),
    )
}

#[test]
fn versions_switch_keep_the_reserved_entries_and_refuse_while_in_use() {
    let mut e = granted(gtf::PERMIT_ACCESS);
    let f = mfn_of(&e, 0, 31);
    grant(&mut e, 0, 1, 1, f, gtf::PERMIT_ACCESS);
    assert_eq!(get_version(&mut e, 0, DOMID_SELF), (0, 1));
    assert_eq!(get_version(&mut e, 0, 1).0, -1, "EPERM");
    assert_eq!(get_version(&mut e, 0, 99).0, -3, "ESRCH");
    assert_eq!(set_version(&mut e, 0, 3), (EINVAL, 1));
    assert_eq!(status_frames(&mut e, 0, 1).0, gntst::GENERAL_ERROR, "v1");
    // In use past the reserved entries: refused.
    let (_, h, _) = map(&mut e, 1, HOLE, gntmap::HOST_MAP, 8, 0);
    assert_eq!(set_version(&mut e, 0, 2), (EBUSY, 1));
    assert_eq!(unmap(&mut e, 1, HOLE, 0, h), gntst::OKAY);
    assert_eq!(set_version(&mut e, 0, 2), (0, 2));
    assert_eq!(get_version(&mut e, 0, 0), (0, 2));
    // Entry 1 survived as a v2 entry; entry 8 was cleared.
    let gt = e.hv.domain(DomainId(0)).expect("d0").grant.clone();
    let e1 = gt.read_entry(&mut crate::memory::StoreMa(&mut e.store), 1);
    assert_eq!((e1.flags, e1.domid, e1.frame), (gtf::PERMIT_ACCESS, 1, f.0));
    let e8 = gt.read_entry(&mut crate::memory::StoreMa(&mut e.store), 8);
    assert_eq!(e8, Entry::default());
    // A v2 grant maps, with its flags in the status frame.
    let (st, sf) = status_frames(&mut e, 0, 1);
    assert_eq!((st, sf.len()), (gntst::OKAY, 1));
    assert_eq!(status_frames(&mut e, 0, 2).0, gntst::GENERAL_ERROR);
    let g = mfn_of(&e, 0, 30);
    let ma = gt.entry_ma(8).expect("frame");
    e.store
        .write(ma, &(u64::from(gtf::PERMIT_ACCESS) | 1 << 16).to_le_bytes());
    e.store.write(ma + 8, &g.0.to_le_bytes());
    let (st, h, _) = map(&mut e, 1, HOLE, gntmap::HOST_MAP, 8, 0);
    assert_eq!(st, gntst::OKAY);
    let mut s = [0u8; 2];
    e.store.read(sf[0].addr(16).get(), &mut s);
    assert_eq!(u16::from_le_bytes(s), gtf::READING | gtf::WRITING);
    assert_eq!(unmap(&mut e, 1, HOLE, 0, h), gntst::OKAY);
    e.store.read(sf[0].addr(16).get(), &mut s);
    assert_eq!(u16::from_le_bytes(s), 0);
    // A mapped status frame cannot be freed (XSA-255).
    let args = [va(40), sf[0].addr(0).get() | pte::P | pte::A, 2, 0, 0];
    assert_eq!(e.call(0, 0, 0, UPDATE_VA_MAPPING, args).0, 0);
    assert_eq!(set_version(&mut e, 0, 1), (EBUSY, 2));
    assert_eq!(
        e.call(0, 0, 0, UPDATE_VA_MAPPING, [va(40), 0, 2, 0, 0]).0,
        0
    );
    assert_eq!(set_version(&mut e, 0, 1), (0, 1));
    let gt = &e.hv.domain(DomainId(0)).expect("d0").grant;
    assert_eq!(gt.nr_status_frames(), 0);
    let e1 = gt
        .clone()
        .read_entry(&mut crate::memory::StoreMa(&mut e.store), 1);
    assert_eq!((e1.flags, e1.domid, e1.frame), (gtf::PERMIT_ACCESS, 1, f.0));
    // The freed status frame is no longer the domain's to map.
    assert_eq!(e.call(0, 0, 0, UPDATE_VA_MAPPING, args).0, EINVAL);
}

#[test]
fn v2_sub_page_grants_bound_copies() {
    let mut e = granted(gtf::PERMIT_ACCESS);
    assert_eq!(set_version(&mut e, 0, 2).1, 2);
    let g = mfn_of(&e, 0, 30);
    let ma =
        e.hv.domain(DomainId(0))
            .expect("d0")
            .grant
            .entry_ma(8)
            .expect("f");
    let head = u64::from(gtf::PERMIT_ACCESS | gtf::SUB_PAGE) | 1 << 16 | 256 << 32 | 16 << 48;
    e.store.write(ma, &head.to_le_bytes());
    e.store.write(ma + 8, &g.0.to_le_bytes());
    let mine = mfn_of(&e, 1, 40).0;
    let s = DOMID_SELF;
    assert_eq!(
        copy_op(&mut e, 1, (mine, s, 0), (8, 0, 256), 16, 2),
        gntst::OKAY
    );
    assert_eq!(
        copy_op(&mut e, 1, (mine, s, 0), (8, 0, 250), 16, 2),
        gntst::GENERAL_ERROR
    );
    assert_eq!(
        copy_op(&mut e, 1, (mine, s, 0), (8, 0, 260), 16, 2),
        gntst::GENERAL_ERROR
    );
    // Sub-page grants are for copies only.
    assert_eq!(
        map(&mut e, 1, HOLE, gntmap::HOST_MAP, 8, 0).0,
        gntst::GENERAL_ERROR
    );
}

#[test]
fn cache_flush_and_dump_table_are_not_x86_commands() {
    let mut e = granted(gtf::PERMIT_ACCESS);
    let own = mfn_of(&e, 1, 40).addr(0).get();
    let mut b = own.to_le_bytes().to_vec();
    b.extend_from_slice(&[0, 0, 0, 16, 3, 0, 0, 0]);
    assert_eq!(op(&mut e, 1, cmd::CACHE_FLUSH, &b, 1).0, -38);
    // cache_flush alone may carry a continuation index.
    assert_eq!(op(&mut e, 1, cmd::CACHE_FLUSH | 1 << 12, &b, 1).0, -38);
    let mut d = DOMID_SELF.to_le_bytes().to_vec();
    d.extend_from_slice(&[0xff; 2]);
    assert_eq!(op(&mut e, 0, cmd::DUMP, &d, 1).0, -38);
}

#[test]
fn swap_and_bad_calls() {
    let mut e = granted(gtf::PERMIT_ACCESS);
    let f = mfn_of(&e, 0, 31);
    grant(&mut e, 0, 9, 1, f, gtf::PERMIT_ACCESS | gtf::READONLY);
    let swap = |e: &mut Env, a: u32, b: u32| {
        let mut v = a.to_le_bytes().to_vec();
        v.extend_from_slice(&b.to_le_bytes());
        v.extend_from_slice(&[0; 4]);
        let (rc, out, _) = op(e, 0, cmd::SWAP, &v, 1);
        assert_eq!(rc, 0);
        i16_at(&out, 8)
    };
    assert_eq!(swap(&mut e, 8, 9), gntst::OKAY);
    assert_eq!(
        entry_flags(&mut e, 0, 8),
        gtf::PERMIT_ACCESS | gtf::READONLY
    );
    assert_eq!(swap(&mut e, 8, 600), gntst::BAD_GNTREF);
    let (_, h, _) = map(&mut e, 1, HOLE, gntmap::HOST_MAP, 9, 0);
    assert_eq!(swap(&mut e, 8, 9), gntst::EAGAIN, "in use");
    assert_eq!(unmap(&mut e, 1, HOLE, 0, h), gntst::OKAY);
    // Unknown commands, continuation bits on a non-cache-flush command
    // and unreadable batches are refused.
    assert_eq!(op(&mut e, 0, 13, &[0; 8], 1).0, -38);
    assert_eq!(op(&mut e, 0, cmd::MAP | 1 << 12, &[0; 32], 1).0, EINVAL);
    let (rc, _) = e.call(0, 0, 0, GRANT_TABLE_OP, [cmd::MAP, BAD, 1, 0, 0]);
    assert_eq!(rc, EFAULT);
    let (rc, _) = e.call(0, 0, 0, GRANT_TABLE_OP, [cmd::MAP, BAD, 0, 0, 0]);
    assert_eq!(rc, 0, "an empty batch reads nothing");
    let xen = 0xFFFF_8000_0000_0000;
    let (rc, _) = e.call(0, 0, 0, GRANT_TABLE_OP, [cmd::COPY, xen, 0, 0, 0]);
    assert_eq!(rc, EFAULT, "but its pointer must be a guest one");
}

#[test]
fn a_batch_reports_each_op() {
    let mut e = granted(gtf::PERMIT_ACCESS);
    let mut b = vec![0u8; 64];
    for (i, (addr, r)) in [(HOLE, 8u32), (HOLE2, 9)].into_iter().enumerate() {
        let o = 32 * i;
        b[o..o + 8].copy_from_slice(&addr.to_le_bytes());
        b[o + 8..o + 12].copy_from_slice(&gntmap::HOST_MAP.to_le_bytes());
        b[o + 12..o + 16].copy_from_slice(&r.to_le_bytes());
    }
    let (rc, out, _) = op(&mut e, 1, cmd::MAP, &b, 2);
    assert_eq!(rc, 0);
    assert_eq!(
        (i16_at(&out, 18), i16_at(&out, 50)),
        (gntst::OKAY, gntst::GENERAL_ERROR)
    );
    assert!(e.translate(1, HOLE).is_some());
    assert!(e.translate(1, HOLE2).is_none());
}

#[test]
fn grant_table_frame_grows_the_table_for_add_to_physmap() {
    let mut e = env(&[1]);
    let d = DomainId(0);
    let mut m = crate::memory::StoreMa(&mut e.store);
    let f0 =
        e.hv.grant_table_frame(d, 0, false, &mut m)
            .expect("frame 0");
    let f5 = e.hv.grant_table_frame(d, 5, false, &mut m).expect("grows");
    assert_ne!(f0, f5);
    assert_eq!(e.hv.domain(d).expect("d0").grant.nr_frames(), 6);
    assert_eq!(
        e.hv.grant_table_frame(d, 64, false, &mut m),
        Err(Errno::Inval)
    );
    assert_eq!(
        e.hv.grant_table_frame(d, 0, true, &mut m),
        Err(Errno::Inval),
        "v1"
    );
    e.hv.dom_mut(d).grant.set_version_number(2);
    let s0 =
        e.hv.grant_table_frame(d, 0, true, &mut m)
            .expect("status 0");
    let s1 =
        e.hv.grant_table_frame(d, 1, true, &mut m)
            .expect("grows to 16");
    assert_ne!(s0, s1);
    assert_eq!(e.hv.domain(d).expect("d0").grant.nr_frames(), 16);
    assert_eq!(
        e.hv.grant_table_frame(d, 8, true, &mut m),
        Err(Errno::Inval)
    );
}

#[test]
fn host_ptes_carry_the_grant_cache_attributes_user_and_avail_bits() {
    let mut e = granted(gtf::PERMIT_ACCESS | gtf::PWT | gtf::PCD);
    let flags = gntmap::HOST_MAP | gntmap::APPLICATION_MAP | 5 << gntmap::GUEST_AVAIL0;
    let (st, h, _) = map(&mut e, 1, HOLE, flags, 8, 0);
    assert_eq!(st, gntst::OKAY);
    let p = l1e(&mut e, 1, HOLE);
    let want = pte::P | pte::RW | pte::US | pte::A | pte::D | pte::NX | pte::PWT | pte::PCD;
    assert_eq!(p & !pte::ADDR, want | 5 << 9);
    // The unmap compares only the frame, present and RW (other bits the
    // guest changed do not stop it).
    e.store.write(
        l1e_ma(&e, 1, HOLE),
        &((p & !(7 << 9)) | pte::G).to_le_bytes(),
    );
    assert_eq!(unmap(&mut e, 1, HOLE, 0, h), gntst::OKAY);
}

#[test]
fn handles_are_reused_and_several_grantee_mappings_share_one_pin() {
    let mut e = granted(gtf::PERMIT_ACCESS);
    let (_, h1, _) = map(&mut e, 1, HOLE, gntmap::HOST_MAP, 8, 0);
    let ro = gntmap::HOST_MAP | gntmap::READONLY;
    let (st, h2, _) = map(&mut e, 1, HOLE2, ro, 8, 0);
    assert_eq!(st, gntst::OKAY);
    assert_ne!(h1, h2);
    let act = e.hv.domain(DomainId(0)).expect("d0").grant.active[&8];
    assert_eq!((act.host_rw, act.host_ro, act.grantee), (1, 1, 1));
    assert_eq!(unmap(&mut e, 1, HOLE, 0, h1), gntst::OKAY);
    let flags = entry_flags(&mut e, 0, 8);
    assert_eq!(
        flags,
        gtf::PERMIT_ACCESS | gtf::READING,
        "still read-mapped"
    );
    let (_, h3, _) = map(&mut e, 1, HOLE, ro, 8, 0);
    assert_eq!(h3, h1, "the freed handle is reused");
    assert_eq!(unmap(&mut e, 1, HOLE, 0, h3), gntst::OKAY);
    assert_eq!(unmap(&mut e, 1, HOLE2, 0, h2), gntst::OKAY);
    assert_eq!(entry_flags(&mut e, 0, 8), gtf::PERMIT_ACCESS);
    assert!(e
        .hv
        .domain(DomainId(0))
        .expect("d0")
        .grant
        .active
        .is_empty());
}

#[test]
fn grant_ops_run_inside_a_multicall() {
    let mut e = granted(gtf::PERMIT_ACCESS);
    let mut m = vec![0u8; 32];
    m[0..8].copy_from_slice(&HOLE.to_le_bytes());
    m[8..12].copy_from_slice(&gntmap::HOST_MAP.to_le_bytes());
    m[12..16].copy_from_slice(&8u32.to_le_bytes());
    e.write(1, SCRATCH + 1024, &m);
    let mut call = vec![0u8; 64];
    call[0..8].copy_from_slice(&GRANT_TABLE_OP.to_le_bytes());
    call[8..16].copy_from_slice(&[0xff; 8]);
    call[24..32].copy_from_slice(&(SCRATCH + 1024).to_le_bytes());
    call[32..40].copy_from_slice(&1u64.to_le_bytes());
    e.write(1, SCRATCH, &call);
    let multicall = crate::abi::hypercall::MULTICALL;
    assert_eq!(e.call(1, 0, 0, multicall, [SCRATCH, 1, 0, 0, 0]).0, 0);
    assert_eq!(u64_at(&e.read(1, SCRATCH, 16), 8), 0, "its result");
    assert_eq!(i16_at(&e.read(1, SCRATCH + 1024, 32), 18), gntst::OKAY);
    assert!(e.translate(1, HOLE).is_some());
}

/// The read-only M2P, as every PV guest sees it.
const M2P: u64 = 0xFFFF_8000_0000_0000;

fn m2p(e: &mut Env, mfn: Mfn) -> u64 {
    u64_at(&e.read(0, M2P + 8 * mfn.0, 8), 0)
}

fn ma_u64(e: &mut Env, ma: u64) -> u64 {
    let mut b = [0u8; 8];
    e.store.read(ma, &mut b);
    u64::from_le_bytes(b)
}

fn tot_pages(e: &Env, d: u16) -> u64 {
    e.hv.domain(DomainId(d)).expect("domain").tot_pages()
}

fn owns(e: &Env, d: u16, m: Mfn) -> bool {
    e.hv.domain(DomainId(d)).expect("domain").owns(m)
}

/// Unmaps domain `d`'s page `page` and returns its frame.
fn unmap_page(e: &mut Env, d: u16, page: u64) -> Mfn {
    let m = mfn_of(e, d, page as usize);
    assert_eq!(
        e.call(d, 0, 0, UPDATE_VA_MAPPING, [va(page), 0, 2, 0, 0]).0,
        0
    );
    m
}

/// One transfer op (`gmfn`, `domid`, `ref`); returns (status, effects).
fn transfer(e: &mut Env, d: u16, m: Mfn, domid: u16, r: u32) -> (i16, Vec<Effect>) {
    let mut b = vec![0u8; 24];
    b[0..8].copy_from_slice(&m.0.to_le_bytes());
    b[8..10].copy_from_slice(&domid.to_le_bytes());
    b[12..16].copy_from_slice(&r.to_le_bytes());
    let (rc, out, fx) = op(e, d, cmd::TRANSFER, &b, 1);
    assert_eq!(rc, 0);
    assert_eq!(out[..16], b[..16], "only the status is written");
    (i16_at(&out, 16), fx)
}

/// Two test domains; domain 1 has a table whose entry 8 accepts a
/// transfer from domain 0 into its PFN 70, and room for one more page.
fn accepting() -> Env {
    let mut e = env(&[1, 1]);
    assert_eq!(setup(&mut e, 1, DOMID_SELF, 1).0, gntst::OKAY);
    grant(&mut e, 1, 8, 0, Mfn(70), gtf::ACCEPT_TRANSFER);
    e.hv.dom_mut(DomainId(1)).max_pages = 65;
    e
}

#[test]
fn a_transferred_page_changes_owner_with_its_contents() {
    let mut e = accepting();
    e.write(0, va(40), b"moved by transfer");
    let a = unmap_page(&mut e, 0, 40);
    let (st, fx) = transfer(&mut e, 0, a, 1, 8);
    assert_eq!(st, gntst::OKAY);
    assert!(fx
        .iter()
        .any(|f| matches!(f, Effect::Flush { domain, .. } if domain.0 == 0)));
    assert!(!owns(&e, 0, a) && owns(&e, 1, a));
    assert_eq!((tot_pages(&e, 0), tot_pages(&e, 1)), (63, 65));
    assert_eq!(m2p(&mut e, a), 70, "the M2P names the receiver's PFN");
    let gt = e.hv.domain(DomainId(1)).expect("d1").grant.clone();
    let w = ma_u64(&mut e, gt.entry_ma(8).expect("set up"));
    assert_eq!(w >> 32, a.0, "the entry's frame is the MFN");
    let done = gtf::ACCEPT_TRANSFER | gtf::TRANSFER_COMMITTED | gtf::TRANSFER_COMPLETED;
    assert_eq!(entry_flags(&mut e, 1, 8), done);
    // The receiver maps it and reads the bytes; the sender cannot map it.
    let rw = pte::P | pte::RW | pte::A | pte::D;
    let args = [HOLE, a.addr(0).get() | rw, 2, 0, 0];
    assert_eq!(e.call(1, 0, 0, UPDATE_VA_MAPPING, args).0, 0);
    assert_eq!(e.read(1, HOLE, 17), b"moved by transfer");
    assert_eq!(e.call(0, 0, 0, UPDATE_VA_MAPPING, args).0, EINVAL);
    // The entry is spent: a second transfer into it fails, and the page
    // given is lost to the free pool.
    let b = unmap_page(&mut e, 0, 41);
    assert_eq!(transfer(&mut e, 0, b, 1, 8).0, gntst::GENERAL_ERROR);
    assert!(!owns(&e, 0, b) && !owns(&e, 1, b));
    assert_eq!(m2p(&mut e, b), !0, "INVALID_M2P_ENTRY");
    assert_eq!((tot_pages(&e, 0), tot_pages(&e, 1)), (62, 65));
}

#[test]
fn a_frame_in_use_or_not_the_callers_is_a_bad_page_and_stays() {
    let mut e = accepting();
    let mapped = mfn_of(&e, 0, 40);
    let theirs = unmap_page(&mut e, 1, 40);
    let l4 = Mfn(e.cr3(0) >> 12);
    for m in [mapped, theirs, l4, Mfn(0x10), Mfn(u64::MAX)] {
        let (st, fx) = transfer(&mut e, 0, m, 1, 8);
        assert_eq!(st, gntst::BAD_PAGE, "{m:?}");
        assert!(fx.is_empty());
    }
    assert!(owns(&e, 0, mapped) && owns(&e, 1, theirs));
    // A frame another domain maps through a grant (read-only: no type
    // reference) is in use too.
    assert_eq!(setup(&mut e, 0, DOMID_SELF, 1).0, gntst::OKAY);
    let g = unmap_page(&mut e, 0, 30);
    grant(&mut e, 0, 9, 1, g, gtf::PERMIT_ACCESS | gtf::READONLY);
    let flags = gntmap::HOST_MAP | gntmap::READONLY;
    let (st, h, _) = map(&mut e, 1, HOLE, flags, 9, 0);
    assert_eq!(st, gntst::OKAY);
    assert_eq!(transfer(&mut e, 0, g, 1, 8).0, gntst::BAD_PAGE);
    assert_eq!(unmap(&mut e, 1, HOLE, 0, h), gntst::OKAY);
    assert_eq!(transfer(&mut e, 0, g, 1, 8).0, gntst::OKAY);
    assert_eq!((tot_pages(&e, 0), tot_pages(&e, 1)), (63, 65));
}

#[test]
fn a_transfer_that_fails_after_the_steal_loses_the_page() {
    let mut e = accepting();
    let pool = e.hv.frames.available();
    grant(&mut e, 1, 10, 2, Mfn(71), gtf::ACCEPT_TRANSFER);
    grant(&mut e, 1, 11, 0, Mfn(71), gtf::PERMIT_ACCESS);
    grant(
        &mut e,
        1,
        12,
        0,
        Mfn(71),
        gtf::ACCEPT_TRANSFER | gtf::READONLY,
    );
    let cases: [(u16, u32, i16); 6] = [
        (77, 8, gntst::BAD_DOMAIN),
        (DOMID_SELF, 8, gntst::BAD_DOMAIN),
        (1, 512, gntst::GENERAL_ERROR),
        (1, 10, gntst::GENERAL_ERROR),
        (1, 11, gntst::GENERAL_ERROR),
        (1, 12, gntst::GENERAL_ERROR),
    ];
    for (i, (domid, r, want)) in cases.into_iter().enumerate() {
        let m = unmap_page(&mut e, 0, 40 + i as u64);
        let (st, fx) = transfer(&mut e, 0, m, domid, r);
        assert_eq!(st, want, "domid {domid} ref {r}");
        assert_eq!(fx.len(), 1, "the sender's TLBs are flushed");
        assert!(!owns(&e, 0, m) && !owns(&e, 1, m));
        assert_eq!(m2p(&mut e, m), !0);
    }
    assert_eq!((tot_pages(&e, 0), tot_pages(&e, 1)), (58, 64));
    // Entries untouched by the failures.
    assert_eq!(entry_flags(&mut e, 1, 8), gtf::ACCEPT_TRANSFER);
    assert_eq!(entry_flags(&mut e, 1, 10), gtf::ACCEPT_TRANSFER);
    // The receiver at its max_pages refuses.
    e.hv.dom_mut(DomainId(1)).max_pages = 64;
    let m = unmap_page(&mut e, 0, 50);
    assert_eq!(transfer(&mut e, 0, m, 1, 8).0, gntst::GENERAL_ERROR);
    assert_eq!(entry_flags(&mut e, 1, 8), gtf::ACCEPT_TRANSFER);
    assert_eq!(
        e.hv.frames.available(),
        pool + 7,
        "the lost frames are pooled"
    );
}

#[test]
fn a_v2_receiver_gets_the_frame_in_its_full_page_field_and_batches_report_each_op() {
    let mut e = accepting();
    assert_eq!(set_version(&mut e, 1, 2), (0, 2));
    let gt = e.hv.domain(DomainId(1)).expect("d1").grant.clone();
    let ma = gt.entry_ma(8).expect("set up");
    // Header: flags, domid 0, no sub-page; the frame at +8.
    e.store
        .write(ma, &u64::from(gtf::ACCEPT_TRANSFER).to_le_bytes());
    e.store.write(ma + 8, &72u64.to_le_bytes());
    let a = unmap_page(&mut e, 0, 40);
    let mut b = vec![0u8; 48];
    b[0..8].copy_from_slice(&a.0.to_le_bytes());
    b[8..10].copy_from_slice(&1u16.to_le_bytes());
    b[12..16].copy_from_slice(&8u32.to_le_bytes());
    // The second op names a frame still mapped.
    b[24..32].copy_from_slice(&mfn_of(&e, 0, 41).0.to_le_bytes());
    b[32..34].copy_from_slice(&1u16.to_le_bytes());
    let (rc, out, _) = op(&mut e, 0, cmd::TRANSFER, &b, 2);
    assert_eq!(rc, 0);
    assert_eq!(
        (i16_at(&out, 16), i16_at(&out, 40)),
        (gntst::OKAY, gntst::BAD_PAGE)
    );
    assert_eq!(ma_u64(&mut e, ma + 8), a.0);
    assert_eq!(m2p(&mut e, a), 72);
    assert!(owns(&e, 1, a));
    let (rc, _) = e.call(0, 0, 0, GRANT_TABLE_OP, [cmd::TRANSFER, BAD, 1, 0, 0]);
    assert_eq!(rc, EFAULT);
}

#[test]
fn the_privileged_control_domain_sets_up_and_sizes_another_domains_table() {
    let mut e = env(&[1, 1]);
    e.hv.domains[0].privileged = true;
    // Domain 0 grows domain 1's table: the frames are domain 1's.
    let (st, frames) = setup(&mut e, 0, 1, 3);
    assert_eq!(st, gntst::OKAY);
    let d1 = e.hv.domain(DomainId(1)).expect("d1");
    assert_eq!(d1.grant.nr_frames(), 3);
    assert!(frames.iter().all(|&m| d1.grant.holds(m)));
    let mut q = vec![0u8; 16];
    q[0..2].copy_from_slice(&1u16.to_le_bytes());
    let (rc, out, _) = op(&mut e, 0, cmd::QUERY, &q, 1);
    assert_eq!((rc, u32_at(&out, 4), i16_at(&out, 12)), (0, 3, gntst::OKAY));
    // Domain 1 is not privileged: domain 0's table stays out of reach.
    assert_eq!(setup(&mut e, 1, 0, 1).0, gntst::PERMISSION_DENIED);
    q[0..2].copy_from_slice(&0u16.to_le_bytes());
    let (_, out, _) = op(&mut e, 1, cmd::QUERY, &q, 1);
    assert_eq!(i16_at(&out, 12), gntst::PERMISSION_DENIED);
}

#[test]
fn a_map_naming_a_domain_that_granted_nothing_is_a_general_error() {
    // XSA-316's probe: domain 1 maps ref 8 of domain 0, whose entry does
    // not grant domain 1 anything (an untouched initial table).
    let mut e = env(&[1, 1]);
    let mut m = vec![0u8; 32];
    m[0..8].copy_from_slice(&HOLE.to_le_bytes());
    m[8..12].copy_from_slice(&gntmap::HOST_MAP.to_le_bytes());
    m[12..16].copy_from_slice(&8u32.to_le_bytes());
    let (rc, out, _) = op(&mut e, 1, cmd::MAP, &m, 1);
    assert_eq!((rc, i16_at(&out, 18)), (0, gntst::GENERAL_ERROR));
}
