//! Latency histograms the guests measure (rdtsc) and hand to the
//! hypervisor with the smpsim-specific hypercall 56, in whole-machine runs.

use crate::support::{assert_success, config, run};
use smpsim::machine::config::Model;
use smpsim::machine::RunReport;
use smpsim_engine::{HistogramReport, HostThreads};

fn guest<'r>(r: &'r RunReport, name: &str) -> &'r HistogramReport {
    r.hypervisor
        .guest_latency
        .get(name)
        .unwrap_or_else(|| panic!("no guest histogram {name}"))
}

/// The numbers after `key ` in the guest's console line starting `prefix`.
fn console_value(r: &RunReport, prefix: &str, key: &str) -> u64 {
    let line = r
        .console
        .iter()
        .find(|l| l.contains(prefix))
        .unwrap_or_else(|| panic!("no console line with {prefix}: {:?}", r.console));
    let rest = &line[line.find(key).expect("key in line") + key.len()..];
    rest.trim_start()
        .split(|c: char| !c.is_ascii_digit())
        .next()
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("no number after {key} in {line}"))
}

/// Whether `hist` (3 significant figures) stands for `exact`.
fn close(hist: u64, exact: u64) -> bool {
    hist.abs_diff(exact) <= exact / 1000 + 1
}

#[test]
fn ipi_pingpong_round_trips_fill_evtchn_rtt_exactly() {
    let cfg = config(4, Model::Inorder);
    let r = run(&cfg, "ipi-pingpong", HostThreads::Count(2));
    assert_success(&r, "ipi-pingpong");
    let h = guest(&r, "evtchn_rtt");
    // 4 VCPUs = 2 pairs, 50 round trips each (the workload's default).
    assert_eq!(h.count, 100, "{h:?}");
    assert_eq!(h.unit, "cycles");
    // Each round trip needs two hypervisor services that each resume the
    // woken (or trapped) VCPU at least min(ipi, hypercall) latency later.
    let x = &cfg.xen;
    let floor = 2 * x.ipi_latency.min(x.hypercall_latency);
    assert!(h.min >= floor, "min {} < {floor}", h.min);
    assert!(h.max < r.cycles && h.min <= h.p50 && h.p50 <= h.max);
    // The same samples the guest summarises on its console.
    let line = "round trips, TSC cycles";
    assert_eq!(console_value(&r, line, "ipi-pingpong:"), 100);
    assert!(close(h.min, console_value(&r, line, "min")), "{h:?}");
    assert!(close(h.max, console_value(&r, line, "max")), "{h:?}");
    let avg = console_value(&r, line, "avg") as f64;
    assert!((h.mean - avg).abs() <= avg / 500.0 + 1.0, "{h:?} avg {avg}");
    for other in ["lock_wait", "barrier_wait"] {
        assert_eq!(guest(&r, other).count, 0, "{other}");
    }
}

#[test]
fn lock_waits_count_every_acquisition() {
    let cfg = config(4, Model::Inorder);
    for name in ["spinlock", "ticketlock"] {
        let r = run(&cfg, name, HostThreads::Count(2));
        assert_success(&r, name);
        let h = guest(&r, "lock_wait");
        // 4 VCPUs × 200 increments (the default), one acquisition each.
        assert_eq!(h.count, 800, "{name}: {h:?}");
        // An acquisition is at least one atomic read-modify-write between
        // two rdtsc; contention on 4 cores makes some wait much longer.
        assert!(h.min >= 1, "{name}: {h:?}");
        assert!(h.max > 10 * h.min.max(1), "{name}: no contention? {h:?}");
        assert!(h.max < r.cycles, "{name}: {h:?}");
        assert_eq!(guest(&r, "evtchn_rtt").count, 0, "{name}");
    }
}

#[test]
fn barrier_waits_count_every_arrival() {
    let r = run(&config(4, Model::Inorder), "barrier", HostThreads::Count(2));
    assert_success(&r, "barrier");
    let h = guest(&r, "barrier_wait");
    // 4 VCPUs × 50 rounds × 2 barriers.
    assert_eq!(h.count, 400, "{h:?}");
    assert!(h.min >= 1 && h.max < r.cycles, "{h:?}");
}

#[test]
fn workloads_that_measure_nothing_report_empty_histograms() {
    let r = run(&config(2, Model::Inorder), "hello", HostThreads::Count(1));
    assert_success(&r, "hello");
    let names: Vec<_> = r.hypervisor.guest_latency.keys().cloned().collect();
    assert_eq!(names, ["barrier_wait", "evtchn_rtt", "lock_wait"]);
    assert!(r.hypervisor.guest_latency.values().all(|h| h.count == 0));
    assert!(!r.hypervisor.hypercalls.contains_key(&56));
}
