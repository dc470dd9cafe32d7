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

/// The console lines of a run that passed: the ports are handed out
/// lowest first after the console and xenstore ports (1, 2) and one IPI
/// port per VCPU; each VCPU drains a round in one upcall.
fn check_console(r: &RunReport, vcpus: u32, ports: u32, rounds: u64, repeat: u64) {
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
         coalesced, {} upcalls, priority and FIFO order held",
        sends - events,
        u64::from(vcpus) * rounds
    );
    assert!(has(&setup), "{what}: no `{setup}` in {:?}", r.console);
    assert!(has(&done), "{what}: no `{done}` in {:?}", r.console);
    assert!(has("(d0) PASS evstorm"), "{what}");
}

#[test]
fn evstorm_passes_and_is_deterministic_at_2_16_and_64_vcpus() {
    for vcpus in [2, 16, 64] {
        let base = storm(vcpus, &[], THREADS[0]);
        check_console(&base, vcpus, 8192, 2, 2);
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
    check_console(&r, 4, 64, 5, 1);
}

#[test]
fn evstorm_grows_the_event_array_to_seventeen_pages() {
    let r = storm(8, &[("ports", 16384), ("rounds", 1)], HostThreads::Count(2));
    check_console(&r, 8, 16384, 1, 2);
}
