//! FIFO ABI tests through the hypercall interface (testenv's domains).

use super::{word, LINK_BITS, MAX_ARRAY_PAGES, WORDS_PER_PAGE};
use crate::abi::{evtchnop, hypercall as nr, vcpu_info};
use crate::hypervisor::{Effect, Next};
use crate::ids::{DomainId, Port, VcpuId};
use crate::testenv::*;

const ENOENT: i64 = -2;
const EFAULT: i64 = -14;
const EINVAL: i64 = -22;
const ENOSPC: i64 = -28;
const ENOSYS: i64 = -38;
const EOPNOTSUPP: i64 = -95;

/// The test image's first page.
const BASE: u64 = 0x40_0000;
/// Pages (of the test image) holding the control blocks.
const CTL_PAGE: u64 = 17;
/// First of the event-array pages.
const ARRAY_PAGE: u64 = 20;
/// Where VCPU v's control block goes in CTL_PAGE.
fn ctl_offset(v: u32) -> u32 {
    128 * v
}

fn va(page: u64) -> u64 {
    BASE + page * 4096
}

fn gfn(e: &mut Env, d: u16, page: u64) -> u64 {
    e.translate(d, va(page)).expect("test page is mapped") >> 12
}

fn op(e: &mut Env, d: u16, cmd: u64, arg: &[u8]) -> (i64, Vec<Effect>) {
    e.write(d, SCRATCH, arg);
    let (rc, o) = e.call(d, 0, 0, nr::EVENT_CHANNEL_OP, [cmd, SCRATCH, 0, 0, 0]);
    assert_eq!(o.next, Next::Resume);
    (rc, o.effects)
}

fn init_raw(e: &mut Env, gfn: u64, offset: u32, vcpu: u32) -> i64 {
    let mut a = gfn.to_le_bytes().to_vec();
    a.extend(offset.to_le_bytes());
    a.extend(vcpu.to_le_bytes());
    a.extend([0xee; 8]);
    op(e, 0, evtchnop::INIT_CONTROL, &a).0
}

fn init(e: &mut Env, v: u32) {
    let g = gfn(e, 0, CTL_PAGE);
    assert_eq!(init_raw(e, g, ctl_offset(v), v), 0);
}

fn expand_gfn(e: &mut Env, gfn: u64) -> i64 {
    op(e, 0, evtchnop::EXPAND_ARRAY, &gfn.to_le_bytes()).0
}

fn expand(e: &mut Env, n: u64) {
    for i in 0..n {
        let g = gfn(e, 0, ARRAY_PAGE + i);
        assert_eq!(expand_gfn(e, g), 0);
    }
}

fn set_priority(e: &mut Env, port: Port, prio: u32) -> i64 {
    let a: Vec<u8> = [port.0, prio]
        .iter()
        .flat_map(|w| w.to_le_bytes())
        .collect();
    op(e, 0, evtchnop::SET_PRIORITY, &a).0
}

fn port_op(e: &mut Env, cmd: u64, port: Port) -> (i64, Vec<Effect>) {
    op(e, 0, cmd, &port.0.to_le_bytes())
}

/// EVTCHNOP_send, its raises delivered at once; returns the VCPUs woken.
fn send(e: &mut Env, port: Port) -> Vec<VcpuId> {
    let (rc, effects) = port_op(e, evtchnop::SEND, port);
    assert_eq!(rc, 0, "send {port:?}");
    let mut woken = Vec::new();
    for ef in effects {
        if let Effect::Raise(r) = ef {
            woken.extend(e.deliver(r));
        }
    }
    woken
}

fn word_va(port: Port) -> u64 {
    va(ARRAY_PAGE + u64::from(port.0 / WORDS_PER_PAGE)) + 4 * u64::from(port.0 % WORDS_PER_PAGE)
}

fn event_word(e: &mut Env, port: Port) -> u32 {
    e.read_u32(0, word_va(port))
}

fn set_word(e: &mut Env, port: Port, w: u32) {
    e.write(0, word_va(port), &w.to_le_bytes());
}

fn head(e: &mut Env, v: u32, q: u32) -> u32 {
    e.read_u32(
        0,
        va(CTL_PAGE) + u64::from(ctl_offset(v)) + 8 + 4 * u64::from(q),
    )
}

fn ready(e: &mut Env, v: u32) -> u32 {
    e.read_u32(0, va(CTL_PAGE) + u64::from(ctl_offset(v)))
}

fn upcall_pending(e: &mut Env, v: u32) -> u8 {
    let vi =
        e.hv.domain(DomainId(0))
            .expect("d0")
            .vcpu(VcpuId(v))
            .expect("vcpu")
            .vcpu_info
            .expect("vcpu_info");
    e.ma_u8(0, vi + vcpu_info::UPCALL_PENDING)
}

fn clear_upcall_pending(e: &mut Env, v: u32) {
    let vi = e.hv.domain(DomainId(0)).expect("d0").vcpus[v as usize]
        .vcpu_info
        .expect("vcpu_info");
    e.with_mem(0, |m| {
        crate::event_2l::EventMemory::write_u8(m, vi + vcpu_info::UPCALL_PENDING, 0)
    });
}

const P: u32 = 1 << word::PENDING;
const M: u32 = 1 << word::MASKED;
const L: u32 = 1 << word::LINKED;

/// A FIFO domain (2 VCPUs, both with control blocks) with `pages` array pages.
fn fifo_env(pages: u64) -> Env {
    let mut e = env(&[2, 1]);
    init(&mut e, 0);
    init(&mut e, 1);
    expand(&mut e, pages);
    e
}

#[test]
fn init_control_refusals_as_xen() {
    let mut e = env(&[2, 1]);
    let good = gfn(&mut e, 0, CTL_PAGE);
    // XSA-188: an invalid GFN is -EINVAL and leaves the domain 2-level.
    assert_eq!(init_raw(&mut e, u64::MAX - 1, 0, 0), EINVAL);
    assert!(e.hv.domain(DomainId(0)).expect("d0").fifo().is_none());
    let g = gfn(&mut e, 0, ARRAY_PAGE);
    assert_eq!(expand_gfn(&mut e, g), EOPNOTSUPP, "not FIFO yet");
    assert_eq!(init_raw(&mut e, good, 0, 2), ENOENT, "no VCPU 2");
    assert_eq!(init_raw(&mut e, good, 4096 - 72 + 8, 0), EINVAL, "crosses");
    assert_eq!(init_raw(&mut e, good, 4, 0), EINVAL, "unaligned");
    let l4 = e.cr3(0) >> 12;
    assert_eq!(init_raw(&mut e, l4, 0, 0), EINVAL, "a page table");
    let foreign = gfn(&mut e, 1, CTL_PAGE);
    assert_eq!(init_raw(&mut e, foreign, 0, 0), EINVAL, "domain 1's frame");
    let (rc, _) = e.call(0, 0, 0, nr::EVENT_CHANNEL_OP, [11, BAD, 0, 0, 0]);
    assert_eq!(rc, EFAULT);
    let p = e.bind_ipi(0, 0);
    assert_eq!(set_priority(&mut e, p, 3), ENOSYS, "2-level");
    assert_eq!(set_priority(&mut e, Port(900), 3), EINVAL, "no such port");

    assert_eq!(init_raw(&mut e, good, 4096 - 72, 0), 0);
    assert_eq!(e.read(0, SCRATCH + 16, 1), [LINK_BITS], "link_bits OUT");
    assert_eq!(init_raw(&mut e, good, 0, 0), EINVAL, "twice");
    assert_eq!(init_raw(&mut e, good, 0, 1), 0, "VCPU 1 has its own");
    assert_eq!(init_raw(&mut e, good, 0, 1), EINVAL);
    // The control block's frame cannot become a page table any more.
    let info =
        e.hv.domain(DomainId(0))
            .expect("d0")
            .mmu_page(crate::ids::Mfn(good));
    assert_eq!(
        info.map(|i| i.ty),
        Some(crate::mmu::PageType::Writable),
        "a writable type reference is held"
    );
}

#[test]
fn expand_array_refusals_and_the_limit() {
    let mut e = fifo_env(0);
    assert_eq!(expand_gfn(&mut e, u64::MAX - 1), EINVAL);
    let l4 = e.cr3(0) >> 12;
    assert_eq!(expand_gfn(&mut e, l4), EINVAL, "a page table");
    let foreign = gfn(&mut e, 1, ARRAY_PAGE);
    assert_eq!(expand_gfn(&mut e, foreign), EINVAL, "domain 1's frame");
    // Xen does not mind the same frame backing several pages.
    let g = gfn(&mut e, 0, ARRAY_PAGE);
    for _ in 0..MAX_ARRAY_PAGES {
        assert_eq!(expand_gfn(&mut e, g), 0);
    }
    assert_eq!(expand_gfn(&mut e, g), ENOSPC, "2^17 ports");
    let fifo = e.hv.domain(DomainId(0)).expect("d0").fifo().expect("fifo");
    assert_eq!(fifo.nr_words(), super::NR_CHANNELS);
}

#[test]
fn set_priority_checks() {
    let mut e = fifo_env(1);
    let p = e.bind_ipi(0, 0);
    assert_eq!(set_priority(&mut e, p, 16), EINVAL);
    assert_eq!(set_priority(&mut e, p, 0), 0);
    assert_eq!(set_priority(&mut e, p, 15), 0);
    assert_eq!(set_priority(&mut e, Port(1000), 1), EINVAL, "no such port");
    let fifo = e.hv.domain(DomainId(0)).expect("d0").fifo().expect("fifo");
    assert_eq!(fifo.priority(p), 15);
    assert_eq!(fifo.priority(Port(p.0 + 1)), 7, "default");
}

#[test]
fn queues_by_priority_then_fifo() {
    let mut e = fifo_env(1);
    let ports: Vec<Port> = (0..4).map(|_| e.bind_ipi(0, 0)).collect();
    assert_eq!(set_priority(&mut e, ports[1], 3), 0);
    assert_eq!(set_priority(&mut e, ports[3], 3), 0);
    send(&mut e, ports[0]);
    assert_eq!(upcall_pending(&mut e, 0), 1, "first link marks the VCPU");
    assert_eq!(event_word(&mut e, ports[0]), P | L);
    assert_eq!(head(&mut e, 0, 7), ports[0].0);
    assert_eq!(ready(&mut e, 0), 1 << 7);
    clear_upcall_pending(&mut e, 0);
    send(&mut e, ports[1]);
    send(&mut e, ports[2]);
    send(&mut e, ports[3]);
    assert_eq!(ready(&mut e, 0), 1 << 7 | 1 << 3);
    assert_eq!(head(&mut e, 0, 3), ports[1].0);
    assert_eq!(
        event_word(&mut e, ports[1]),
        P | L | ports[3].0,
        "3 after 1"
    );
    assert_eq!(
        event_word(&mut e, ports[0]),
        P | L | ports[2].0,
        "2 after 0"
    );
    assert_eq!(event_word(&mut e, ports[3]), P | L, "tail");
    assert_eq!(upcall_pending(&mut e, 0), 1, "a new queue marks again");
    // Raising a linked port again changes nothing.
    clear_upcall_pending(&mut e, 0);
    send(&mut e, ports[0]);
    assert_eq!(event_word(&mut e, ports[0]), P | L | ports[2].0);
    assert_eq!(upcall_pending(&mut e, 0), 0);
    assert_eq!(head(&mut e, 1, 7), 0, "VCPU 1's queues untouched");
}

#[test]
fn consumed_tail_starts_a_new_queue_head() {
    let mut e = fifo_env(1);
    let a = e.bind_ipi(0, 1);
    let b = e.bind_ipi(0, 1);
    send(&mut e, a);
    assert_eq!(head(&mut e, 1, 7), a.0);
    // The guest consumes `a`: clears LINKED and PENDING and the ready bit.
    set_word(&mut e, a, 0);
    let ctl = va(CTL_PAGE) + u64::from(ctl_offset(1));
    e.write(0, ctl, &0u32.to_le_bytes());
    clear_upcall_pending(&mut e, 1);
    send(&mut e, b);
    assert_eq!(event_word(&mut e, a), 0, "old tail not relinked");
    assert_eq!(head(&mut e, 1, 7), b.0, "head written afresh");
    assert_eq!(ready(&mut e, 1), 1 << 7);
    assert_eq!(upcall_pending(&mut e, 1), 1);
}

#[test]
fn masked_port_links_at_unmask() {
    let mut e = fifo_env(1);
    let p = e.bind_ipi(0, 0);
    set_word(&mut e, p, M);
    send(&mut e, p);
    assert_eq!(event_word(&mut e, p), P | M, "pending, not linked");
    assert_eq!((ready(&mut e, 0), upcall_pending(&mut e, 0)), (0, 0));
    let (rc, _) = port_op(&mut e, evtchnop::UNMASK, p);
    assert_eq!(rc, 0);
    assert_eq!(event_word(&mut e, p), P | L);
    assert_eq!(head(&mut e, 0, 7), p.0);
    assert_eq!((ready(&mut e, 0), upcall_pending(&mut e, 0)), (1 << 7, 1));
    assert_eq!(port_op(&mut e, evtchnop::UNMASK, Port(5000)).0, EINVAL);
    // Unmasking a port that is not pending links nothing.
    let q = e.bind_ipi(0, 0);
    set_word(&mut e, q, M);
    assert_eq!(port_op(&mut e, evtchnop::UNMASK, q).0, 0);
    assert_eq!(event_word(&mut e, q), 0);
}

#[test]
fn unmask_wakes_a_blocked_vcpu() {
    let mut e = fifo_env(1);
    e.start_vcpu(0, 1);
    let p = e.bind_ipi(0, 1);
    set_word(&mut e, p, M);
    send(&mut e, p);
    let (rc, o) = e.call(0, 1, 0, nr::SCHED_OP, [1, 0, 0, 0, 0]);
    assert_eq!((rc, o.next), (0, Next::Block));
    let (_, effects) = port_op(&mut e, evtchnop::UNMASK, p);
    assert!(effects.contains(&Effect::Wake {
        domain: DomainId(0),
        vcpu: VcpuId(1)
    }));
}

#[test]
fn more_than_4096_ports() {
    let mut e = fifo_env(5);
    for i in 1..5000 {
        assert_eq!(e.bind_ipi(0, i % 2), Port(i));
    }
    let last = Port(4999);
    send(&mut e, last);
    assert_eq!(event_word(&mut e, last), P | L);
    assert_eq!(head(&mut e, 1, 7), last.0);
    let (rc, _) = port_op(&mut e, evtchnop::CLOSE, last);
    assert_eq!(rc, 0);
    assert_eq!(event_word(&mut e, last), L, "close clears PENDING only");
}

#[test]
fn ports_without_a_word_are_raised_when_their_page_comes() {
    let mut e = fifo_env(1);
    for _ in 1..1100 {
        e.bind_ipi(0, 0);
    }
    let far = Port(1050);
    send(&mut e, far);
    assert_eq!(ready(&mut e, 0), 0, "no word: nothing visible");
    let g = gfn(&mut e, 0, ARRAY_PAGE + 1);
    assert_eq!(expand_gfn(&mut e, g), 0);
    assert_eq!(event_word(&mut e, far), P | L);
    assert_eq!(head(&mut e, 0, 7), far.0);
    assert_eq!(upcall_pending(&mut e, 0), 1);
}

#[test]
fn pending_2_level_ports_stay_pending_after_the_switch() {
    let mut e = env(&[2]);
    let p = e.bind_ipi(0, 0);
    send(&mut e, p);
    init(&mut e, 0);
    // The limit is now 2^17; the event shows once the array has its page.
    expand(&mut e, 1);
    assert_eq!(event_word(&mut e, p), P | L);
    assert_eq!(head(&mut e, 0, 7), p.0);
}

#[test]
fn poll_sees_fifo_pending_ports_above_4096() {
    let mut e = fifo_env(5);
    for i in 1..4200 {
        e.bind_ipi(0, i % 2);
    }
    let p = Port(4100);
    send(&mut e, p);
    e.write(0, SCRATCH + 64, &p.0.to_le_bytes());
    let mut a = (SCRATCH + 64).to_le_bytes().to_vec();
    a.extend(1u64.to_le_bytes());
    a.extend(0u64.to_le_bytes());
    e.write(0, SCRATCH, &a);
    let (rc, o) = e.call(0, 0, 0, nr::SCHED_OP, [3, SCRATCH, 0, 0, 0]);
    assert_eq!((rc, o.next), (0, Next::Resume), "already pending");
}

#[test]
fn priority_change_relinks_on_the_new_queue() {
    let mut e = fifo_env(1);
    let p = e.bind_ipi(0, 0);
    send(&mut e, p);
    // Consumed by the guest.
    set_word(&mut e, p, 0);
    assert_eq!(set_priority(&mut e, p, 2), 0);
    let q = e.bind_ipi(0, 0);
    send(&mut e, p);
    assert_eq!(head(&mut e, 0, 2), p.0);
    send(&mut e, q);
    assert_eq!(event_word(&mut e, p), P | L, "q is not linked behind p");
    assert_eq!(head(&mut e, 0, 7), q.0, "the old queue's tail was dropped");
}
