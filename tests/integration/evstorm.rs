//! The FIFO event ABI end to end: the `evstorm` workload (8192 loopback
//! ports, so most of them above the 2-level limit of 4096, on FIFO queues
//! at three priorities, drained by the guest's own consumer) at 2, 16 and
//! 64 VCPUs, identical for any host-thread count.

use crate::support::{assert_success, config, json_without_host};
use smpsim::machine::config::Model;
use smpsim::machine::{Machine, RunOptions, RunReport};
use smpsim_engine::HostThreads;

const THREADS: [HostThreads; 3] = [
    HostThreads::Count(1),
    HostThreads::Count(2),
    HostThreads::PerCore,
];

fn storm(vcpus: u32, args: &[(&str, u64)], threads: HostThreads) -> RunReport {
    let cfg = config(vcpus, Model::Inorder);
    let w = smpsim_workloads::find("evstorm").expect("built-in workload");
    let opts = RunOptions {
        vcpus: Some(vcpus),
        args: args.iter().map(|(k, v)| ((*k).to_owned(), *v)).collect(),
        host_threads: threads,
        ..RunOptions::default()
    };
    Machine::build(&cfg, w, &opts)
        .expect("machine builds")
        .run()
}

/// What a run was asked for.
struct Storm {
    vcpus: u32,
    ports: u32,
    rounds: u64,
    /// Sends per port per round (1 in the concurrent mode).
    repeat: u64,
    /// Mode 1: the queues are drained while the sends go on.
    concurrent: bool,
}

/// The console lines of a run that passed: the ports are handed out
/// lowest first after the console and xenstore ports (1, 2) and one IPI
/// port per VCPU; in the phased mode each VCPU drains a round in one
/// upcall. Returns the upcalls the guest counted.
fn check_console(r: &RunReport, s: &Storm) -> u64 {
    let Storm {
        vcpus,
        ports,
        rounds,
        repeat,
        concurrent,
    } = *s;
    let what = format!("evstorm at {vcpus} VCPUs, {ports} ports");
    assert_success(r, &what);
    let has = |s: &str| r.console.iter().any(|l| l.contains(s));
    let (lo, hi) = (vcpus + 3, vcpus + 2 + ports);
    let pages = (hi + 1).div_ceil(1024);
    let (p2, p12) = (ports / 4, ports / 4);
    let setup = format!(
        "(d0) evstorm: FIFO ABI, {vcpus} VCPUs, {ports} ports {lo}..{hi}, {pages} event-array \
         pages, priority 2/7/12 on {p2}/{}/{p12} ports",
        ports - p2 - p12
    );
    let events = u64::from(ports) * rounds;
    let sends = events * repeat;
    let done = format!(
        "(d0) evstorm: {rounds} rounds, {sends} sends, {events} events delivered, {} \
         coalesced, ",
        sends - events
    );
    let order = if concurrent {
        " upcalls, FIFO order held"
    } else {
        " upcalls, priority and FIFO order held"
    };
    assert!(has(&setup), "{what}: no `{setup}` in {:?}", r.console);
    let line = r
        .console
        .iter()
        .find(|l| l.starts_with(&done) && l.ends_with(order))
        .unwrap_or_else(|| panic!("{what}: no `{done}N{order}` in {:?}", r.console));
    assert!(has("(d0) PASS evstorm"), "{what}");
    let n = &line[done.len()..line.len() - order.len()];
    let upcalls = n.parse().expect("a number of upcalls");
    if !concurrent {
        assert_eq!(
            upcalls,
            u64::from(vcpus) * rounds,
            "{what}: one drain per round"
        );
    }
    upcalls
}

fn phased(vcpus: u32, ports: u32, rounds: u64, repeat: u64) -> Storm {
    Storm {
        vcpus,
        ports,
        rounds,
        repeat,
        concurrent: false,
    }
}

#[test]
fn evstorm_passes_and_is_deterministic_at_2_16_and_64_vcpus() {
    for vcpus in [2, 16, 64] {
        let base = storm(vcpus, &[], THREADS[0]);
        check_console(&base, &phased(vcpus, 8192, 2, 2));
        let want = json_without_host(&base);
        for t in &THREADS[1..] {
            let r = storm(vcpus, &[], *t);
            assert_eq!(
                want,
                json_without_host(&r),
                "evstorm at {vcpus} VCPUs with {t} host threads"
            );
        }
    }
}

#[test]
fn evstorm_without_coalescing_on_a_small_array_and_many_rounds() {
    let args = [("ports", 64), ("rounds", 5), ("repeat", 1)];
    let r = storm(4, &args, HostThreads::Count(2));
    check_console(&r, &phased(4, 64, 5, 1));
}

#[test]
fn evstorm_grows_the_event_array_to_seventeen_pages() {
    let r = storm(8, &[("ports", 16384), ("rounds", 1)], HostThreads::Count(2));
    check_console(&r, &phased(8, 16384, 1, 2));
}

#[test]
fn evstorm_concurrent_drains_as_the_queues_fill_deterministically() {
    let s = Storm {
        vcpus: 16,
        ports: 8192,
        rounds: 2,
        repeat: 1,
        concurrent: true,
    };
    let base = storm(16, &[("mode", 1)], THREADS[0]);
    let upcalls = check_console(&base, &s);
    // Fewer upcalls than events: some drains took several events off a
    // queue that Xen kept extending.
    assert!(upcalls < 16384, "{upcalls} upcalls for 16384 events");
    let r = storm(16, &[("mode", 1)], THREADS[2]);
    assert_eq!(json_without_host(&base), json_without_host(&r));
}
