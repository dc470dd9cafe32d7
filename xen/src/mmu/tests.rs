//! The PV MMU hypercalls on the test domain (64 pages at 0x40_0000; its
//! bootstrap tables are PFNs 9 (L4), 10 (L3), 11 (L2) and 12 (L1)).

use super::*;
use crate::abi::hypercall as nr;
use crate::testenv::{env, Env, SCRATCH};

const EPERM: i64 = -1;
const EACCES: i64 = -13;
const EINVAL: i64 = -22;
const BASE: u64 = 0x40_0000;
const RW: u64 = pte::P | pte::RW | pte::A | pte::D;
const RO: u64 = pte::P | pte::A;

fn p2m(e: &Env) -> Vec<Mfn> {
    e.hv.domain(DomainId(0)).expect("d0").p2m().to_vec()
}

fn info(e: &Env, p: usize) -> PageInfo {
    e.hv.page_info(DomainId(0), p2m(e)[p]).expect("owned")
}

/// The machine address of the bootstrap L1 entry of VA `va`.
fn l1e(pm: &[Mfn], va: u64) -> u64 {
    pm[12].addr(8 * paging::index(va, 1)).get()
}

/// Runs one mmu_update request; returns (rc, done).
fn update(e: &mut Env, ptr: u64, val: u64) -> (i64, u32) {
    let mut b = ptr.to_le_bytes().to_vec();
    b.extend_from_slice(&val.to_le_bytes());
    e.write(0, SCRATCH, &b);
    let done = SCRATCH + 64;
    e.write(0, done, &[0xff; 4]);
    let rc = e
        .call(
            0,
            0,
            0,
            nr::MMU_UPDATE,
            [SCRATCH, 1, done, u64::from(DOMID_SELF_ID), 0],
        )
        .0;
    (rc, e.read_u32(0, done))
}

const DOMID_SELF_ID: u16 = crate::abi::DOMID_SELF;

/// Runs one mmuext_op; returns (rc, effects).
fn ext(e: &mut Env, cmd: u32, arg1: u64, arg2: u64) -> (i64, Vec<Effect>) {
    let mut b = u64::from(cmd).to_le_bytes().to_vec();
    b.extend_from_slice(&arg1.to_le_bytes());
    b.extend_from_slice(&arg2.to_le_bytes());
    e.write(0, SCRATCH + 128, &b);
    let (rc, o) = e.call(
        0,
        0,
        0,
        nr::MMUEXT_OP,
        [SCRATCH + 128, 1, 0, u64::from(DOMID_SELF_ID), 0],
    );
    (rc, o.effects)
}

#[test]
fn the_bootstrap_tables_are_typed_pinned_and_read_only() {
    let e = env(&[1]);
    let l4 = info(&e, 9);
    assert_eq!((l4.ty, l4.pinned), (PageType::L4, true));
    assert_eq!(l4.type_count, 2, "the pin and VCPU 0's CR3");
    assert_eq!(info(&e, 10).ty, PageType::L3);
    assert_eq!(info(&e, 11).ty, PageType::L2);
    assert_eq!(
        (info(&e, 12).ty, info(&e, 12).type_count),
        (PageType::L1, 1)
    );
    assert_eq!(info(&e, 12).ro_refs, 1, "its own read-only mapping");
    assert_eq!(info(&e, 30).ty, PageType::Writable);
}

#[test]
fn mmu_update_validates_l1_entries() {
    let mut e = env(&[1]);
    let pm = p2m(&e);
    let va = BASE + 30 * 4096;
    // Remap page 30 onto page 40's frame, read-write.
    let (rc, done) = update(&mut e, l1e(&pm, va), pm[40].addr(0).get() | RW);
    assert_eq!((rc, done), (0, 1));
    assert_eq!(e.translate(0, va), Some(pm[40].addr(0).get()));
    assert_eq!(
        info(&e, 30).type_count,
        0,
        "page 30 lost its writable mapping"
    );
    assert_eq!(info(&e, 40).type_count, 2);
    // A page-table frame may not be mapped read-write, a foreign frame not
    // at all; the batch stops at the refused request.
    let (rc, done) = update(&mut e, l1e(&pm, va), pm[11].addr(0).get() | RW);
    assert_eq!((rc, done), (EINVAL, 0));
    let (rc, _) = update(&mut e, l1e(&pm, va), 0x7_0000 | RW);
    assert_eq!(rc, EINVAL, "a frame the domain does not own");
    assert_eq!(update(&mut e, l1e(&pm, va), pm[11].addr(0).get() | RO).0, 0);
    assert_eq!(info(&e, 11).ro_refs, 2);
    // PRESERVE_AD keeps the accessed/dirty bits of the old entry.
    let ad_less = pm[11].addr(0).get() | pte::P;
    assert_eq!(
        update(&mut e, l1e(&pm, va) | cmd::PT_UPDATE_PRESERVE_AD, ad_less).0,
        0
    );
    let mut b = [0u8; 8];
    crate::memory::FrameStore::read(&mut e.store, l1e(&pm, va), &mut b);
    assert_eq!(u64::from_le_bytes(b), pm[11].addr(0).get() | RO);
    // A foreign domain needs privilege.
    let (rc, _) = e.call(0, 0, 0, nr::MMU_UPDATE, [SCRATCH, 1, 0, 5, 0]);
    assert_eq!(rc, EPERM);
}

#[test]
fn table_entries_need_tables_below_and_xen_slots_are_refused() {
    let mut e = env(&[1]);
    let pm = p2m(&e);
    let l2 = pm[11];
    let slot = |va: u64| l2.addr(8 * paging::index(va, 2)).get();
    let va = BASE + (2 << 20);
    // Page 20 is mapped writable: it cannot become an L1.
    assert_eq!(
        update(&mut e, slot(va), pm[20].addr(0).get() | RW).0,
        EINVAL
    );
    // Unmapped from its writable mapping, zeroed, it validates as an L1.
    let page20 = BASE + 20 * 4096;
    assert_eq!(
        update(&mut e, l1e(&pm, page20), pm[20].addr(0).get() | RO).0,
        0
    );
    assert_eq!(update(&mut e, slot(va), pm[20].addr(0).get() | RW).0, 0);
    assert_eq!(info(&e, 20).ty, PageType::L1);
    // Superpages are refused; so are entries in Xen's L4 slots.
    let sp = pm[21].addr(0).get() | RW | pte::PS;
    assert_eq!(update(&mut e, slot(va + (2 << 20)), sp).0, EINVAL);
    let l4 = pm[9];
    let xen_slot = l4.addr(8 * 256).get();
    assert_eq!(
        update(&mut e, xen_slot, pm[10].addr(0).get() | RW).0,
        EINVAL
    );
    // A read-only linear (recursive) L4 entry is allowed, a writable one not.
    let free = l4.addr(8 * 5).get();
    assert_eq!(update(&mut e, free, l4.addr(0).get() | RO).0, 0);
    assert_eq!(update(&mut e, free, l4.addr(0).get() | RW).0, EINVAL);
}

#[test]
fn pin_unpin_and_tables_in_use() {
    let mut e = env(&[1]);
    let pm = p2m(&e);
    let page = |p: u64| BASE + p * 4096;
    // Pinning a frame mapped writable fails; read-only, it pins.
    assert_eq!(ext(&mut e, ext::PIN_L1_TABLE, pm[25].0, 0).0, EINVAL);
    assert_eq!(
        update(&mut e, l1e(&pm, page(25)), pm[25].addr(0).get() | RO).0,
        0
    );
    assert_eq!(ext(&mut e, ext::PIN_L1_TABLE, pm[25].0, 0).0, 0);
    assert_eq!(
        ext(&mut e, ext::PIN_L1_TABLE, pm[25].0, 0).0,
        EINVAL,
        "twice"
    );
    // Pinned, it cannot be mapped writable anywhere.
    assert_eq!(
        update(&mut e, l1e(&pm, page(26)), pm[25].addr(0).get() | RW).0,
        EINVAL
    );
    // Put it in use from the L2, then unpin: the table stays an L1.
    let l2 = pm[11];
    let at = l2.addr(8 * paging::index(BASE + (4 << 20), 2)).get();
    assert_eq!(update(&mut e, at, pm[25].addr(0).get() | RW).0, 0);
    assert_eq!(ext(&mut e, ext::UNPIN_TABLE, pm[25].0, 0).0, 0);
    assert_eq!(
        ext(&mut e, ext::UNPIN_TABLE, pm[25].0, 0).0,
        EINVAL,
        "not pinned"
    );
    assert_eq!(
        (info(&e, 25).ty, info(&e, 25).type_count),
        (PageType::L1, 1)
    );
    assert_eq!(
        update(&mut e, l1e(&pm, page(26)), pm[25].addr(0).get() | RW).0,
        EINVAL
    );
    // Unhooked, nothing holds it: now it may be mapped writable.
    assert_eq!(update(&mut e, at, 0).0, 0);
    assert_eq!(info(&e, 25).ty, PageType::None);
    assert_eq!(
        update(&mut e, l1e(&pm, page(26)), pm[25].addr(0).get() | RW).0,
        0
    );
    // A pinned L4 in use as CR3: unpinning only drops the pin's count.
    assert_eq!(ext(&mut e, ext::UNPIN_TABLE, pm[9].0, 0).0, 0);
    assert_eq!((info(&e, 9).ty, info(&e, 9).type_count), (PageType::L4, 1));
}

#[test]
fn base_pointers_flushes_and_page_ops() {
    let mut e = env(&[2]);
    let pm = p2m(&e);
    // A frame that is no L4 cannot become CR3.
    assert_eq!(ext(&mut e, ext::NEW_BASEPTR, pm[30].0, 0).0, EINVAL);
    let (rc, fx) = ext(&mut e, ext::NEW_BASEPTR, pm[9].0, 0);
    assert_eq!(rc, 0);
    assert_eq!(
        fx,
        vec![Effect::NewRoot {
            domain: DomainId(0),
            vcpu: VcpuId(0)
        }]
    );
    assert_eq!(ext(&mut e, ext::NEW_USER_BASEPTR, pm[9].0, 0).0, 0);
    assert_eq!(
        info(&e, 9).type_count,
        4,
        "pin, two kernel CR3s, one user CR3"
    );
    let (_, fx) = ext(&mut e, ext::INVLPG_LOCAL, BASE + 0x1234, 0);
    assert_eq!(
        fx,
        vec![Effect::Flush {
            domain: DomainId(0),
            vcpus: Some(vec![VcpuId(0)]),
            page: Some(BASE + 0x1000)
        }]
    );
    e.write(0, SCRATCH + 512, &2u64.to_le_bytes());
    let (_, fx) = ext(&mut e, ext::TLB_FLUSH_MULTI, 0, SCRATCH + 512);
    assert_eq!(
        fx,
        vec![Effect::Flush {
            domain: DomainId(0),
            vcpus: Some(vec![VcpuId(1)]),
            page: None
        }]
    );
    let (_, fx) = ext(&mut e, ext::TLB_FLUSH_ALL, 0, 0);
    assert_eq!(
        fx,
        vec![Effect::Flush {
            domain: DomainId(0),
            vcpus: None,
            page: None
        }]
    );
    assert_eq!(ext(&mut e, ext::FLUSH_CACHE, 0, 0).0, EACCES);
    assert_eq!(ext(&mut e, 99, 0, 0).0, -38);
    // CLEAR_PAGE and COPY_PAGE write data frames, never tables.
    e.write(0, BASE + 40 * 4096, &[7; 8]);
    assert_eq!(ext(&mut e, ext::COPY_PAGE, pm[41].0, pm[40].0).0, 0);
    assert_eq!(e.read(0, BASE + 41 * 4096, 8), vec![7; 8]);
    assert_eq!(ext(&mut e, ext::CLEAR_PAGE, pm[41].0, 0).0, 0);
    assert_eq!(e.read(0, BASE + 41 * 4096, 8), vec![0; 8]);
    assert_eq!(ext(&mut e, ext::CLEAR_PAGE, pm[12].0, 0).0, EINVAL);
    assert_eq!(
        ext(&mut e, ext::CLEAR_PAGE, 0x7_0000, 0).0,
        EINVAL,
        "not the domain's"
    );
}

#[test]
fn machphys_update_writes_the_read_only_m2p() {
    let mut e = env(&[1]);
    let pm = p2m(&e);
    let m = pm[33];
    let (rc, _) = update(&mut e, m.addr(0).get() | cmd::MACHPHYS_UPDATE, 0x1234);
    assert_eq!(rc, 0);
    let va = RO_MPT_VIRT_START + 8 * m.0;
    assert_eq!(e.read(0, va, 8), 0x1234u64.to_le_bytes().to_vec());
    assert_eq!(
        e.read(0, RO_MPT_VIRT_START + 8 * pm[34].0, 8),
        34u64.to_le_bytes().to_vec()
    );
    // The M2P is read-only to the guest.
    let w = e.with_mem(0, |m| {
        use crate::memory::GuestMemory;
        m.write_virt(va, &[0; 8])
    });
    assert!(w.is_err());
    assert_eq!(update(&mut e, 0x7_0000 | cmd::MACHPHYS_UPDATE, 1).0, EINVAL);
}
