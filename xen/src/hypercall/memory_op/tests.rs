use super::xenmem;
use crate::abi::{hypercall as nr, DOMID_SELF};
use crate::hypervisor::Effect;
use crate::ids::{DomainId, Mfn};
use crate::testenv::*;

const EFAULT: i64 = -14;
const EINVAL: i64 = -22;
const EPERM: i64 = -1;
const ESRCH: i64 = -3;
const EACCES: i64 = -13;
const ENOSYS: i64 = -38;
const BASE: u64 = 0x40_0000;
/// Where the argument struct goes; the extent list follows at LIST.
const ARG: u64 = SCRATCH;
const LIST: u64 = SCRATCH + 0x800;
const M2P: u64 = 0xFFFF_8000_0000_0000;

fn reservation(list: u64, n: u64, order: u32, flags: u32, domid: u16) -> Vec<u8> {
    let mut b = Vec::new();
    b.extend_from_slice(&list.to_le_bytes());
    b.extend_from_slice(&n.to_le_bytes());
    b.extend_from_slice(&order.to_le_bytes());
    b.extend_from_slice(&flags.to_le_bytes());
    b.extend_from_slice(&domid.to_le_bytes());
    b.resize(32, 0);
    b
}

fn words(w: &[u64]) -> Vec<u8> {
    w.iter().flat_map(|x| x.to_le_bytes()).collect()
}

fn u64_of(e: &mut Env, d: u16, va: u64) -> u64 {
    u64::from_le_bytes(e.read(d, va, 8).try_into().expect("8"))
}

fn memop(e: &mut Env, d: u16, cmd: u64, arg: u64) -> (i64, Vec<Effect>) {
    let (rc, o) = e.call(d, 0, 0, nr::MEMORY_OP, [cmd, arg, 0, 0, 0]);
    (rc, o.effects)
}

/// Runs a reservation command over `list` (written at LIST).
fn resv(e: &mut Env, d: u16, cmd: u32, list: &[u64], order: u32, flags: u32) -> i64 {
    e.write(d, LIST, &words(list));
    let r = reservation(LIST, list.len() as u64, order, flags, DOMID_SELF);
    e.write(d, ARG, &r);
    memop(e, d, u64::from(cmd), ARG).0
}

fn query(e: &mut Env, d: u16, cmd: u32, domid: u16) -> i64 {
    e.write(d, ARG, &domid.to_le_bytes());
    memop(e, d, u64::from(cmd), ARG).0
}

/// Unmaps the data page at `BASE + page * 4096` and returns its frame.
fn unmap(e: &mut Env, d: u16, page: u64) -> Mfn {
    let va = BASE + page * 4096;
    let mfn = Mfn(e.translate(d, va).expect("mapped") >> 12);
    let (rc, _) = e.call(d, 0, 0, nr::UPDATE_VA_MAPPING, [va, 0, 2, 0, 0]);
    assert_eq!(rc, 0);
    assert!(e.translate(d, va).is_none());
    mfn
}

fn owns(e: &Env, d: u16, m: Mfn) -> bool {
    e.hv.domain(DomainId(d)).expect("domain").owns(m)
}

#[test]
fn reservations_are_counted_and_queried_as_xen_does() {
    let mut e = env(&[1, 1]);
    assert_eq!(
        query(&mut e, 0, xenmem::CURRENT_RESERVATION, DOMID_SELF),
        64
    );
    assert_eq!(query(&mut e, 0, xenmem::MAXIMUM_RESERVATION, 0), 64);
    assert_eq!(query(&mut e, 0, xenmem::CURRENT_RESERVATION, 1), EPERM);
    assert_eq!(query(&mut e, 0, xenmem::MAXIMUM_RESERVATION, 9), ESRCH);
    assert_eq!(
        memop(&mut e, 0, u64::from(xenmem::CURRENT_RESERVATION), BAD).0,
        EFAULT
    );
    // maximum_gpfn comes from shared_info.arch.max_pfn (0 reads as 1).
    assert_eq!(query(&mut e, 0, xenmem::MAXIMUM_GPFN, DOMID_SELF), 0);
    let siva =
        e.hv.domain(DomainId(0))
            .expect("d0")
            .layout()
            .shared_info_va;
    e.write(0, siva + 3088, &100u64.to_le_bytes());
    assert_eq!(query(&mut e, 0, xenmem::MAXIMUM_GPFN, DOMID_SELF), 99);
    let max_page = 0x1000 + (1 << 16);
    assert_eq!(memop(&mut e, 0, 2, 0).0, max_page);
    // A continuation index on a command that has none.
    assert_eq!(memop(&mut e, 0, 2 | 1 << 6, 0).0, EINVAL);
    assert_eq!(
        memop(
            &mut e,
            0,
            u64::from(xenmem::CURRENT_RESERVATION) | 1 << 6,
            ARG
        )
        .0,
        EINVAL
    );
}

#[test]
fn ballooning_out_and_in_moves_frames_through_the_pool_up_to_max_pages() {
    let mut e = env(&[1, 1]);
    let a = unmap(&mut e, 0, 40);
    let b = unmap(&mut e, 0, 41);
    // A frame still mapped cannot go, and the batch stops there.
    let mapped = Mfn(e.translate(0, BASE + 42 * 4096).expect("mapped") >> 12);
    e.with_mem(0, |m| {
        use crate::event_2l::EventMemory;
        m.write_ma_u64(a.addr(8).get(), 0xdead_beef);
    });
    e.write(0, LIST, &words(&[a.0, mapped.0, b.0]));
    e.write(0, ARG, &reservation(LIST, 3, 0, 0, DOMID_SELF));
    let (rc, fx) = memop(&mut e, 0, 1, ARG);
    assert_eq!(rc, 1, "the mapped frame stops the batch");
    assert_eq!(
        fx,
        vec![Effect::Flush {
            domain: DomainId(0),
            vcpus: None,
            page: None
        }]
    );
    assert!(!owns(&e, 0, a) && owns(&e, 0, mapped) && owns(&e, 0, b));
    assert_eq!(u64_of(&mut e, 0, M2P + a.0 * 8), !0, "INVALID_M2P_ENTRY");
    // Resuming at the continuation index 2 gives b back too.
    let (rc, _) = memop(&mut e, 0, 1 | 2 << 6, ARG);
    assert_eq!(rc, 3);
    assert_eq!(
        query(&mut e, 0, xenmem::CURRENT_RESERVATION, DOMID_SELF),
        62
    );
    // A frame the domain no longer owns cannot be given back again.
    assert_eq!(resv(&mut e, 0, 1, &[a.0], 0, 0), 0);
    // Domain 1 gets the pooled frames, lowest first, zeroed, but no more
    // than its max_pages (64, and it has 64).
    assert_eq!(
        resv(&mut e, 1, 0, &[0], 0, 0),
        0,
        "domain 1 is at max_pages"
    );
    // Domain 0 takes them back: room for 2.
    assert_eq!(resv(&mut e, 0, 0, &[0, 0, 0], 0, 0), 2);
    let got = [u64_of(&mut e, 0, LIST), u64_of(&mut e, 0, LIST + 8)];
    let mut want = [a.0, b.0];
    want.sort();
    assert_eq!(got, want);
    assert!(owns(&e, 0, a));
    let scrubbed = e.with_mem(0, |m| {
        use crate::event_2l::EventMemory;
        m.read_ma_u64(a.addr(8).get())
    });
    assert_eq!(scrubbed, 0, "frames are scrubbed before reuse");
    // Now mappable again.
    let (rc, _) = e.call(
        0,
        0,
        0,
        nr::UPDATE_VA_MAPPING,
        [BASE + 40 * 4096, a.addr(0).get() | 7, 0, 0, 0],
    );
    assert_eq!(rc, 0);
}

#[test]
fn a_domain_cannot_give_away_or_touch_another_domains_frames() {
    let mut e = env(&[1, 1]);
    let theirs = unmap(&mut e, 1, 40);
    assert_eq!(resv(&mut e, 0, 1, &[theirs.0], 0, 0), 0);
    assert!(owns(&e, 1, theirs));
    // Naming domain 1 explicitly does nothing either.
    e.write(0, LIST, &words(&[theirs.0]));
    e.write(0, ARG, &reservation(LIST, 1, 0, 0, 1));
    assert_eq!(memop(&mut e, 0, 1, ARG).0, 0);
    assert_eq!(memop(&mut e, 0, 0, ARG).0, 0, "nor can it grow domain 1");
    assert!(owns(&e, 1, theirs));
    // Page-table frames are in use.
    let l4 = Mfn(e.cr3(0) >> 12);
    assert_eq!(resv(&mut e, 0, 1, &[l4.0], 0, 0), 0);
    assert_eq!(resv(&mut e, 0, 1, &[0x10], 0, 0), 0, "not a domain frame");
}

#[test]
fn populate_physmap_sets_the_m2p_and_flags_are_checked() {
    let mut e = env(&[1]);
    let a = unmap(&mut e, 0, 40);
    assert_eq!(resv(&mut e, 0, 1, &[a.0], 0, 0), 1);
    // Address widths of 12 bits or less, exact nodes and orders above 9
    // do nothing.
    assert_eq!(resv(&mut e, 0, 6, &[40], 0, 12), 0);
    assert_eq!(resv(&mut e, 0, 6, &[40], 0, 1 << 17 | 0x100), 0);
    assert_eq!(resv(&mut e, 0, 6, &[40], 10, 0), 0);
    // A list in Xen's range does nothing.
    e.write(
        0,
        ARG,
        &reservation(0xFFFF_8200_0000_0000, 1, 0, 0, DOMID_SELF),
    );
    assert_eq!(memop(&mut e, 0, 6, ARG).0, 0);
    // An advisory node is fine.
    assert_eq!(resv(&mut e, 0, 6, &[40], 0, 0x300), 1);
    let m = u64_of(&mut e, 0, LIST);
    assert_eq!(m, a.0, "the pooled frame comes back");
    assert_eq!(u64_of(&mut e, 0, M2P + m * 8), 40);
    // An address-width limit below every free frame gives nothing.
    let a = unmap(&mut e, 0, 41);
    assert_eq!(resv(&mut e, 0, 1, &[a.0], 0, 0), 1);
    assert_eq!(resv(&mut e, 0, 6, &[41], 0, 13), 0, "no frame below 8 KiB");
}

fn exchange_arg(inp: &[u8], out: &[u8], done: u64) -> Vec<u8> {
    let mut b = inp.to_vec();
    b.extend_from_slice(out);
    b.extend_from_slice(&done.to_le_bytes());
    b
}

#[test]
fn exchange_swaps_frames_or_fails_as_xen_does() {
    let mut e = env(&[1]);
    let a = unmap(&mut e, 0, 40);
    let out_list = LIST + 0x100;
    e.write(0, LIST, &words(&[a.0]));
    e.write(0, out_list, &words(&[40]));
    let inp = reservation(LIST, 1, 0, 0, DOMID_SELF);
    let out = reservation(out_list, 1, 0, 32, DOMID_SELF);
    e.write(0, ARG, &exchange_arg(&inp, &out, 0));
    assert_eq!(memop(&mut e, 0, 11, ARG).0, 0);
    assert_eq!(u64_of(&mut e, 0, ARG + 64), 1, "nr_exchanged");
    let fresh = Mfn(u64_of(&mut e, 0, out_list));
    assert_ne!(fresh, a);
    assert!(fresh.0 < 1 << 20, "below 4 GiB");
    assert!(!owns(&e, 0, a) && owns(&e, 0, fresh));
    assert_eq!(u64_of(&mut e, 0, M2P + fresh.0 * 8), 40);
    assert_eq!(
        query(&mut e, 0, xenmem::CURRENT_RESERVATION, DOMID_SELF),
        64
    );
    // Everything exchanged already: 0, nothing written.
    assert_eq!(memop(&mut e, 0, 11, ARG).0, 0);
    // A mapped frame fails the chunk: -EINVAL, nr_exchanged stays 0.
    let mapped = e.translate(0, BASE + 42 * 4096).expect("mapped") >> 12;
    e.write(0, LIST, &words(&[mapped]));
    e.write(0, ARG, &exchange_arg(&inp, &out, 0));
    assert_eq!(memop(&mut e, 0, 11, ARG).0, EINVAL);
    assert_eq!(u64_of(&mut e, 0, ARG + 64), 0);
    // Sizes that differ, orders above 9, domids that differ.
    let big = reservation(out_list, 2, 0, 0, DOMID_SELF);
    e.write(0, ARG, &exchange_arg(&inp, &big, 0));
    assert_eq!(memop(&mut e, 0, 11, ARG).0, EINVAL);
    let huge = reservation(out_list, 1, 10, 0, DOMID_SELF);
    e.write(
        0,
        ARG,
        &exchange_arg(&reservation(LIST, 1, 10, 0, DOMID_SELF), &huge, 0),
    );
    assert_eq!(memop(&mut e, 0, 11, ARG).0, EPERM);
    // XSA-212: an output list reaching into Xen's range is -EFAULT, and
    // nr_exchanged is written back as given.
    let idt = 0xffff_82d0_4080_0000u64;
    let inp = reservation(LIST.wrapping_sub(idt), idt / 8 + 1, 0, 0, DOMID_SELF);
    let out = reservation(0, idt / 8 + 1, 0, 32, DOMID_SELF);
    e.write(0, ARG, &exchange_arg(&inp, &out, idt / 8));
    assert_eq!(memop(&mut e, 0, 11, ARG).0, EFAULT);
    assert_eq!(u64_of(&mut e, 0, ARG + 64), idt / 8);
    assert_eq!(memop(&mut e, 0, 11 | 1 << 6, ARG).0, EINVAL);
}

#[test]
fn memory_maps_physmap_and_m2p_queries() {
    let mut e = env(&[1]);
    e.write(
        0,
        ARG,
        &[&4u32.to_le_bytes()[..], &[0; 4], &LIST.to_le_bytes()].concat(),
    );
    assert_eq!(memop(&mut e, 0, 9, ARG).0, ENOSYS, "no map set");
    let entry = |addr: u64, size: u64, ty: u32| {
        [
            &addr.to_le_bytes()[..],
            &size.to_le_bytes(),
            &ty.to_le_bytes(),
        ]
        .concat()
    };
    let map = [entry(0, 0x40000, 1), entry(0x40000, 0x1000, 2)].concat();
    e.write(0, LIST + 0x100, &map);
    let set = |domid: u16, n: u32| {
        [
            &domid.to_le_bytes()[..],
            &[0; 6],
            &n.to_le_bytes(),
            &[0; 4],
            &(LIST + 0x100).to_le_bytes(),
        ]
        .concat()
    };
    e.write(0, ARG + 0x40, &set(DOMID_SELF, 2));
    assert_eq!(memop(&mut e, 0, 13, ARG + 0x40).0, 0);
    e.write(0, ARG + 0x40, &set(DOMID_SELF, 1025));
    assert_eq!(memop(&mut e, 0, 13, ARG + 0x40).0, EINVAL);
    e.write(0, ARG + 0x40, &set(7, 1));
    assert_eq!(memop(&mut e, 0, 13, ARG + 0x40).0, ESRCH);
    e.write(
        0,
        ARG,
        &[&1u32.to_le_bytes()[..], &[0; 4], &LIST.to_le_bytes()].concat(),
    );
    assert_eq!(memop(&mut e, 0, 9, ARG).0, 0);
    assert_eq!(e.read_u32(0, ARG), 1, "nr_entries: the smaller count");
    assert_eq!(e.read(0, LIST, 20), map[..20].to_vec());
    // add_to_physmap and remove_from_physmap are for translated guests.
    let xatp = [
        &DOMID_SELF.to_le_bytes()[..],
        &[0; 2],
        &1u32.to_le_bytes(),
        &[0; 16],
    ]
    .concat();
    e.write(0, ARG, &xatp);
    assert_eq!(memop(&mut e, 0, 7, ARG).0, EACCES);
    let foreign = [
        &DOMID_SELF.to_le_bytes()[..],
        &[0; 2],
        &4u32.to_le_bytes(),
        &[0; 16],
    ]
    .concat();
    e.write(0, ARG, &foreign);
    assert_eq!(memop(&mut e, 0, 7, ARG).0, ENOSYS);
    assert_eq!(memop(&mut e, 0, 15, ARG).0, EACCES);
    assert_eq!(memop(&mut e, 0, 10, ARG).0, EPERM, "machine_memory_map");
    // machphys_mapping.
    assert_eq!(memop(&mut e, 0, 12, ARG).0, 0);
    assert_eq!(u64_of(&mut e, 0, ARG), M2P);
    assert_eq!(u64_of(&mut e, 0, ARG + 8), 0xFFFF_8040_0000_0000);
    assert_eq!(u64_of(&mut e, 0, ARG + 16), (1 << 35) - 1);
    // machphys_mfn_list: the M2P's first frame is where M2P[0] lives.
    let arg = [
        &8u32.to_le_bytes()[..],
        &[0; 4],
        &LIST.to_le_bytes(),
        &[0; 8],
    ]
    .concat();
    e.write(0, ARG, &arg);
    assert_eq!(memop(&mut e, 0, 5, ARG).0, 0);
    let n = e.read_u32(0, ARG + 16);
    // (0x1000 + 2^16) frames × 8 bytes = 69 632 × 8 → 136 frames → 1 extent.
    assert_eq!(n, 1);
    let first = u64_of(&mut e, 0, LIST);
    assert_eq!(Some(first << 12), e.translate(0, M2P));
    assert_eq!(memop(&mut e, 0, 40, ARG).0, ENOSYS);
}

#[test]
fn the_privileged_control_domain_queries_another_domain() {
    let mut e = env(&[1, 1]);
    e.hv.domains[0].privileged = true;
    e.hv.domains[1].max_pages = 80;
    assert_eq!(query(&mut e, 0, xenmem::CURRENT_RESERVATION, 1), 64);
    assert_eq!(query(&mut e, 0, xenmem::MAXIMUM_RESERVATION, 1), 80);
    assert_eq!(query(&mut e, 0, xenmem::MAXIMUM_RESERVATION, 9), ESRCH);
    // The unprivileged domain keeps Xen's -EPERM.
    assert_eq!(query(&mut e, 1, xenmem::CURRENT_RESERVATION, 0), EPERM);
    // set_memory_map on domain 1, from domain 0.
    let mut b = vec![0u8; 24];
    b[0..2].copy_from_slice(&1u16.to_le_bytes());
    b[8..12].copy_from_slice(&1u32.to_le_bytes());
    b[16..24].copy_from_slice(&LIST.to_le_bytes());
    e.write(0, LIST, &[7u8; 20]);
    e.write(0, ARG, &b);
    assert_eq!(
        memop(&mut e, 0, u64::from(xenmem::SET_MEMORY_MAP), ARG).0,
        0
    );
    assert_eq!(e.hv.domain(DomainId(1)).expect("d1").e820, vec![[7u8; 20]]);
    assert!(e.hv.domain(DomainId(0)).expect("d0").e820.is_empty());
    b[0..2].copy_from_slice(&0u16.to_le_bytes());
    e.write(1, ARG, &b);
    assert_eq!(
        memop(&mut e, 1, u64::from(xenmem::SET_MEMORY_MAP), ARG).0,
        EPERM
    );
}

/// A reservation command from `d` on domain `domid` over `list` (at LIST).
fn resv_on(e: &mut Env, d: u16, domid: u16, cmd: u32, list: &[u64]) -> i64 {
    e.write(d, LIST, &words(list));
    let r = reservation(LIST, list.len() as u64, 0, 0, domid);
    e.write(d, ARG, &r);
    memop(e, d, u64::from(cmd), ARG).0
}

#[test]
fn the_privileged_control_domain_grows_and_shrinks_another_domain() {
    let mut e = env(&[1, 1]);
    e.hv.domains[0].privileged = true;
    e.hv.domains[1].max_pages = 66;
    e.hv.domains[0].max_pages = 70;
    let inc = xenmem::INCREASE_RESERVATION;
    assert_eq!(resv_on(&mut e, 0, 1, inc, &[0, 0, 0]), 2, "to max_pages");
    let got = [u64_of(&mut e, 0, LIST), u64_of(&mut e, 0, LIST + 8)];
    assert!(got
        .iter()
        .all(|&m| owns(&e, 1, Mfn(m)) && !owns(&e, 0, Mfn(m))));
    assert_eq!(query(&mut e, 0, xenmem::CURRENT_RESERVATION, 1), 66);
    assert_eq!(query(&mut e, 0, xenmem::CURRENT_RESERVATION, 0), 64);
    // The unprivileged domain cannot take them back, nor touch domain 0.
    let dec = xenmem::DECREASE_RESERVATION;
    assert_eq!(resv_on(&mut e, 1, 0, inc, &[0]), 0);
    assert_eq!(resv_on(&mut e, 0, 1, dec, &got), 2);
    assert!(got.iter().all(|&m| !owns(&e, 1, Mfn(m))));
    assert_eq!(query(&mut e, 0, xenmem::CURRENT_RESERVATION, 1), 64);
}
