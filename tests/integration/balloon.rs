//! Ballooning and grant transfer end to end: the `balloon` workload
//! (domain 1 gives pages back, domain 0 grows into them up to its
//! `max_pages`, one page moves by GNTTABOP_transfer, the pages go back) at
//! 2, 16 and 64 VCPUs per domain, identical for any host-thread count.
//! The reservations the guests print are checked against the memory the
//! catalogue gives each domain.

use crate::support::{assert_success, config, json_without_host};
use smpsim::machine::config::Model;
use smpsim::machine::{Machine, RunOptions, RunReport};
use smpsim_engine::HostThreads;

const THREADS: [HostThreads; 3] = [
    HostThreads::Count(1),
    HostThreads::Count(2),
    HostThreads::PerCore,
];

fn balloon(vcpus: u32, pages: u64, threads: HostThreads) -> RunReport {
    let cfg = config(2 * vcpus, Model::Inorder);
    let w = smpsim_workloads::find("balloon").expect("built-in workload");
    let opts = RunOptions {
        vcpus: Some(vcpus),
        args: vec![("pages".to_owned(), pages)],
        host_threads: threads,
        ..RunOptions::default()
    };
    Machine::build(&cfg, w, &opts)
        .expect("machine builds")
        .run()
}

/// The console lines the run must show: every reservation, from the
/// memory and max the catalogue gives each domain.
fn expected(vcpus: u32, pages: u64) -> Vec<String> {
    let w = smpsim_workloads::find("balloon").expect("built-in workload");
    let mut args = [0u64; 8];
    args[0] = pages;
    let r = w.memory_bytes(vcpus, &args) / 4096;
    let max = w.max_memory_bytes(vcpus, &args) / 4096;
    assert_eq!(
        max,
        r + pages + 2,
        "headroom: grown, transferred, over-asked"
    );
    let n = pages;
    vec![
        format!("(d0) balloon: domain 0 reservation {r}, max {max}"),
        format!(
            "(d1) balloon: domain 1 gave back {n} pages: reservation {r} -> {}",
            r - n
        ),
        format!(
            "(d0) balloon: domain 0 populated {n} pages ({n} of them domain 1's frames), \
             wrote and verified them: reservation {r} -> {}",
            r + n
        ),
        format!(
            "(d1) balloon: domain 1 transferred 1 page to domain 0: status 0, again -9; \
             reservation {}",
            r - n - 1
        ),
        format!(
            "(d0) balloon: domain 0 received 1 page by grant transfer: flags 0xe, \
             contents verified; reservation {}",
            r + n + 1
        ),
        format!(
            "(d0) balloon: domain 0 asked for 4 more pages: got 1, then 0; \
             reservation = max = {max}"
        ),
        format!(
            "(d0) balloon: domain 0 gave back {} pages: reservation {max} -> {} \
             (1 page gained)",
            n + 1,
            r + 1
        ),
        format!(
            "(d1) balloon: domain 1 repopulated {n} pages at its own PFNs ({n} its old \
             frames): reservation {r} -> {}",
            r - 1
        ),
        "(d0) PASS balloon".to_owned(),
        "(d1) PASS balloon".to_owned(),
    ]
}

fn check_console(r: &RunReport, vcpus: u32, pages: u64, what: &str) {
    for line in expected(vcpus, pages) {
        assert!(
            r.console.iter().any(|l| l.contains(&line)),
            "{what}: no `{line}` in {:?}",
            r.console
        );
    }
}

#[test]
fn balloon_passes_and_is_deterministic_at_2_16_and_64_vcpus() {
    for vcpus in [2, 16, 64] {
        let base = balloon(vcpus, 16, THREADS[0]);
        let what = format!("balloon at {vcpus} VCPUs per domain");
        assert_success(&base, &what);
        check_console(&base, vcpus, 16, &what);
        let want = json_without_host(&base);
        for t in &THREADS[1..] {
            let r = balloon(vcpus, 16, *t);
            assert_eq!(want, json_without_host(&r), "{what} with {t} host threads");
        }
    }
}

#[test]
fn one_page_and_many_pages_move_the_same_way() {
    for pages in [1, 200] {
        let r = balloon(2, pages, HostThreads::Count(2));
        let what = format!("balloon with {pages} pages");
        assert_success(&r, &what);
        check_console(&r, 2, pages, &what);
    }
}
