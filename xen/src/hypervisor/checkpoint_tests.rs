//! The hypervisor's state survives a serde round trip: a restored copy and
//! the original, driven on with the same calls, give the same results and
//! serialize to the same bytes.

use super::*;
use crate::abi::{evtchnop, hypercall as nr, smpsimop, vcpuop};
use crate::testenv::*;

/// Brings domain 0 part way: two VCPUs up, an IPI port pending on VCPU 1,
/// VIRQ_TIMER bound with a periodic and a single-shot timer armed, a
/// partial console line, guest latency samples recorded.
fn part_way() -> Env {
    let mut e = env(&[2, 1]);
    e.start_vcpu(0, 1);
    let ipi = e.bind_ipi(0, 1);
    e.bind_virq_timer(0, 0);
    let periodic = [u64::from(vcpuop::SET_PERIODIC_TIMER), 0, SCRATCH, 0, 0];
    e.write(0, SCRATCH, &1_000_000u64.to_le_bytes());
    assert_eq!(e.call(0, 0, 100, nr::VCPU_OP, periodic).0, 0);
    assert_eq!(
        e.call(0, 0, 100, nr::SET_TIMER_OP, [500_000, 0, 0, 0, 0]).0,
        0
    );
    e.write(0, SCRATCH, b"hello\nwor");
    assert_eq!(
        e.call(0, 0, 200, nr::CONSOLE_IO, [0, 9, SCRATCH, 0, 0]).0,
        0
    );
    let samples: Vec<u8> = [10u64, 20, 3000, 10]
        .iter()
        .flat_map(|s| s.to_le_bytes())
        .collect();
    e.write(0, SCRATCH, &samples);
    let rec = [u64::from(smpsimop::RECORD_SAMPLES), 0, SCRATCH, 4, 0];
    assert_eq!(e.call(0, 0, 300, nr::SMPSIM_OP, rec).0, 0);
    e.write(0, SCRATCH, &ipi.0.to_le_bytes());
    let send = [evtchnop::SEND, SCRATCH, 0, 0, 0];
    let (rc, o) = e.call(0, 0, 400, nr::EVENT_CHANNEL_OP, send);
    assert_eq!(rc, 0);
    for eff in o.effects {
        if let Effect::Raise(r) = eff {
            e.deliver(r);
        }
    }
    e
}

/// What a run observes after the checkpoint, for comparing two copies.
#[derive(Debug, PartialEq)]
struct Observed {
    returns: Vec<i64>,
    effects: Vec<Vec<Effect>>,
    woken: Vec<Vec<VcpuId>>,
    timer_cycles: Vec<Option<u64>>,
    console: Vec<String>,
    pending: Vec<u8>,
    hist_counts: Vec<u64>,
}

/// The same further calls on either copy: console, a blocked VCPU woken by
/// a send, timers run past their deadlines, more samples, a shutdown.
fn continue_run(e: &mut Env) -> Observed {
    let mut returns = Vec::new();
    let mut effects = Vec::new();
    let mut woken = Vec::new();
    e.write(0, SCRATCH, b"ld\nbye\n");
    let (rc, o) = e.call(0, 0, 500, nr::CONSOLE_IO, [0, 7, SCRATCH, 0, 0]);
    returns.push(rc);
    effects.push(o.effects);
    let (rc, o) = e.call(0, 1, 600, nr::SCHED_OP, [1, 0, 0, 0, 0]);
    returns.push(rc);
    effects.push(o.effects);
    let ipi = e.bind_ipi(0, 1);
    e.write(0, SCRATCH, &ipi.0.to_le_bytes());
    let (rc, o) = e.call(
        0,
        0,
        700,
        nr::EVENT_CHANNEL_OP,
        [evtchnop::SEND, SCRATCH, 0, 0, 0],
    );
    returns.push(rc);
    for eff in &o.effects {
        if let Effect::Raise(r) = eff {
            woken.push(e.deliver(*r));
        }
    }
    effects.push(o.effects);
    let mut timer_cycles = Vec::new();
    for cycle in [2_000_000u64, 4_000_000] {
        timer_cycles.push(e.hv.next_timer_cycle(DomainId(0), VcpuId(0)));
        let fired = e.hv.run_timers(DomainId(0), VcpuId(0), cycle);
        for eff in &fired {
            if let Effect::Raise(r) = eff {
                woken.push(e.deliver(*r));
            }
        }
        effects.push(fired);
    }
    timer_cycles.push(e.hv.next_timer_cycle(DomainId(0), VcpuId(0)));
    e.write(0, SCRATCH, &[7u8, 0, 0, 0, 0, 0, 0, 0]);
    let rec = [u64::from(smpsimop::RECORD_SAMPLES), 1, SCRATCH, 1, 0];
    returns.push(e.call(0, 0, 800, nr::SMPSIM_OP, rec).0);
    let (rc, o) = e.call(1, 0, 900, nr::SCHED_OP, [2, 0, 0, 0, 0]);
    returns.push(rc);
    effects.push(o.effects);
    let si = e.shared_info_ma(0);
    let pending = (0..128).map(|i| e.ma_u8(0, si + i)).collect();
    Observed {
        returns,
        effects,
        woken,
        timer_cycles,
        console: e.hv.console_lines().iter().map(|l| l.formatted()).collect(),
        pending,
        hist_counts: e.hv.guest_histograms().map(|(_, h)| h.len()).collect(),
    }
}

#[test]
fn restored_hypervisor_continues_like_the_original() {
    let mut a = part_way();
    let bytes = postcard::to_stdvec(&a.hv).expect("hypervisor serializes");
    let hv: Hypervisor = postcard::from_bytes(&bytes).expect("hypervisor deserializes");
    assert_eq!(hv, a.hv, "restored state equals the original");
    assert_eq!(postcard::to_stdvec(&hv).expect("serializes"), bytes);
    // Guest memory is the machine's, not the hypervisor's: both copies go
    // on over equal copies of it.
    let mut b = Env {
        hv,
        store: a.store.clone(),
    };
    let (oa, ob) = (continue_run(&mut a), continue_run(&mut b));
    assert_eq!(oa, ob);
    assert!(
        oa.console.contains(&"(d0) world".to_owned()),
        "{:?}",
        oa.console
    );
    assert!(oa
        .effects
        .iter()
        .flatten()
        .any(|e| matches!(e, Effect::Raise(_))));
    assert_eq!(oa.hist_counts, vec![4, 1, 0]);
    let (ba, bb) = (
        postcard::to_stdvec(&a.hv).expect("serializes"),
        postcard::to_stdvec(&b.hv).expect("serializes"),
    );
    assert_eq!(ba, bb, "identical state after the same calls");
    eprintln!(
        "serialized hypervisor: {} bytes part way, {} bytes at the end",
        bytes.len(),
        ba.len()
    );
}

#[test]
fn restored_page_tables_state_is_equal() {
    let a = part_way();
    let bytes = postcard::to_stdvec(&a.hv).expect("serializes");
    let b: Hypervisor = postcard::from_bytes(&bytes).expect("deserializes");
    let (da, db) = (
        a.hv.domain(DomainId(0)).expect("d0"),
        b.domain(DomainId(0)).expect("d0"),
    );
    assert_eq!(da.mmu, db.mmu, "page types and counts");
    assert_eq!(a.hv.m2p_frames, b.m2p_frames);
    assert_eq!(
        a.hv.active_root(DomainId(0), VcpuId(0)),
        b.active_root(DomainId(0), VcpuId(0))
    );
    let l4 = da.p2m()[9];
    let info = db.mmu_page(l4).expect("owned");
    assert_eq!((info.ty, info.pinned), (crate::mmu::PageType::L4, true));
}

#[test]
fn guest_histograms_with_a_wrong_count_do_not_deserialize() {
    let two: Vec<Vec<(u64, u64)>> = vec![vec![(5, 1)], vec![]];
    let bytes = postcard::to_stdvec(&two).expect("serializes");
    let err = postcard::from_bytes::<crate::guest_hist::GuestHistograms>(&bytes);
    assert!(err.is_err());
}
