//! xenstored end to end: the `xs-handshake` workload (xenbus state
//! machine between a backend in domain 0 and a frontend in domain 1, with
//! watches, permissions and a forced transaction conflict) at 2, 16 and
//! 64 VCPUs per domain, identical for any host-thread count.

use crate::support::{assert_success, config, json_without_host};
use smpsim::machine::config::Model;
use smpsim::machine::{Machine, RunOptions, RunReport};
use smpsim_engine::HostThreads;

const THREADS: [HostThreads; 3] = [
    HostThreads::Count(1),
    HostThreads::Count(2),
    HostThreads::PerCore,
];

fn handshake(vcpus: u32, rounds: u64, threads: HostThreads) -> RunReport {
    let cfg = config(2 * vcpus, Model::Inorder);
    let w = smpsim_workloads::find("xs-handshake").expect("built-in workload");
    let opts = RunOptions {
        vcpus: Some(vcpus),
        args: vec![("rounds".to_owned(), rounds)],
        host_threads: threads,
        ..RunOptions::default()
    };
    Machine::build(&cfg, w, &opts)
        .expect("machine builds")
        .run()
}

fn check_console(r: &RunReport, rounds: u64, what: &str) {
    let has = |s: &str| r.console.iter().any(|l| l.contains(s));
    let fe = format!(
        "(d1) xs-handshake: domain 1 (frontend) done: {rounds} rounds, {rounds} conflicts retried"
    );
    let be = format!("(d0) xs-handshake: domain 0 (backend) done: {rounds} rounds, 0 conflicts");
    assert!(has(&fe), "{what}: no `{fe}` in {:?}", r.console);
    assert!(has(&be), "{what}: no `{be}` in {:?}", r.console);
    assert!(
        has("(d0) PASS xs-handshake") && has("(d1) PASS xs-handshake"),
        "{what}"
    );
}

#[test]
fn xs_handshake_passes_and_is_deterministic_at_2_16_and_64_vcpus() {
    for vcpus in [2, 16, 64] {
        let base = handshake(vcpus, 2, THREADS[0]);
        let what = format!("xs-handshake at {vcpus} VCPUs per domain");
        assert_success(&base, &what);
        check_console(&base, 2, &what);
        let want = json_without_host(&base);
        for t in &THREADS[1..] {
            let r = handshake(vcpus, 2, *t);
            assert_eq!(want, json_without_host(&r), "{what} with {t} host threads");
        }
    }
}

#[test]
fn more_rounds_retry_one_conflict_each() {
    let r = handshake(2, 5, HostThreads::Count(2));
    assert_success(&r, "5 rounds");
    check_console(&r, 5, "5 rounds");
}
