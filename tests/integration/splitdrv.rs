//! Grant tables end to end: the `splitdrv` workload (a blkfront/blkback
//! style split driver: the frontend in domain 1 grants its ring, data
//! pages and a read-only page; the backend in domain 0 maps them with
//! GNTTABOP_map_grant_ref, transforms the data in place and unmaps) at 2,
//! 16 and 64 VCPUs per domain, identical for any host-thread count, with
//! the bytes moved, the map/unmap counts, the read-only refusal and the
//! round-trip histogram checked from the run's own output.

use crate::support::{assert_success, config, json_without_host};
use smpsim::machine::config::Model;
use smpsim::machine::{Machine, RunOptions, RunReport};
use smpsim_engine::HostThreads;

const THREADS: [HostThreads; 3] = [
    HostThreads::Count(1),
    HostThreads::Count(2),
    HostThreads::PerCore,
];

/// Requests, pages per request, requests in flight.
#[derive(Clone, Copy)]
struct Args {
    requests: u64,
    pages: u64,
    depth: u64,
}

fn splitdrv(vcpus: u32, a: Args, threads: HostThreads) -> RunReport {
    let cfg = config(2 * vcpus, Model::Inorder);
    let w = smpsim_workloads::find("splitdrv").expect("built-in workload");
    let opts = RunOptions {
        vcpus: Some(vcpus),
        args: vec![
            ("requests".to_owned(), a.requests),
            ("pages".to_owned(), a.pages),
            ("depth".to_owned(), a.depth),
        ],
        host_threads: threads,
        ..RunOptions::default()
    };
    Machine::build(&cfg, w, &opts)
        .expect("machine builds")
        .run()
}

fn check_console(r: &RunReport, a: Args, what: &str) {
    let has = |s: &str| r.console.iter().any(|l| l.contains(s));
    let bytes = a.requests * a.pages * 4096;
    // Every data page once per request, plus the ring and the read-only
    // page's read-only map (the refused writable map counts nothing).
    let maps = a.requests * a.pages + 2;
    let be = format!(
        "(d0) splitdrv: domain 0 (backend) done: {} requests, {bytes} bytes checked and \
         transformed in place, {maps} grant maps, {maps} unmaps; read-only grant: writable map \
         refused with GNTST -1, read-only map 0",
        a.requests
    );
    let fe = format!(
        "(d1) splitdrv: domain 1 (frontend) done: {} requests x {} pages, {bytes} bytes moved \
         zero-copy in ",
        a.requests, a.pages
    );
    let ended = format!("{} grants ended", 2 + a.depth * a.pages);
    assert!(has(&be), "{what}: no `{be}` in {:?}", r.console);
    assert!(has(&fe), "{what}: no `{fe}` in {:?}", r.console);
    assert!(has(&ended), "{what}: no `{ended}` in {:?}", r.console);
    assert!(
        has("read-only grant refused a writable map with GNTST -1"),
        "{what}"
    );
    assert!(
        has("(d0) PASS splitdrv") && has("(d1) PASS splitdrv"),
        "{what}"
    );
    let rtt = r
        .hypervisor
        .guest_latency
        .get("evtchn_rtt")
        .unwrap_or_else(|| panic!("{what}: no round-trip histogram"));
    assert_eq!(rtt.count, a.requests, "{what}: one round trip per request");
    assert!(rtt.min > 0 && rtt.min <= rtt.max, "{what}: {rtt:?}");
}

#[test]
fn splitdrv_passes_and_is_deterministic_at_2_16_and_64_vcpus() {
    let a = Args {
        requests: 6,
        pages: 2,
        depth: 2,
    };
    for vcpus in [2, 16, 64] {
        let base = splitdrv(vcpus, a, THREADS[0]);
        let what = format!("splitdrv at {vcpus} VCPUs per domain");
        assert_success(&base, &what);
        check_console(&base, a, &what);
        let want = json_without_host(&base);
        for t in &THREADS[1..] {
            let r = splitdrv(vcpus, a, *t);
            assert_eq!(want, json_without_host(&r), "{what} with {t} host threads");
        }
    }
}

#[test]
fn full_blkif_requests_and_a_deep_ring_move_every_byte() {
    // 11 pages a request (blkif's limit), 32 in flight: 352 data grants
    // plus the ring and the read-only page in one grant frame.
    let a = Args {
        requests: 40,
        pages: 11,
        depth: 32,
    };
    let r = splitdrv(2, a, HostThreads::Count(2));
    assert_success(&r, "11 pages x 32 in flight");
    check_console(&r, a, "11 pages x 32 in flight");
}

#[test]
fn restored_mid_run_it_continues_bit_identically() {
    // The backend's unmap batches flush its whole TLB; decoded code run
    // after such a flush must look the same whether or not the run went
    // through a checkpoint (which rebuilds decoded code).
    use smpsim::checkpoint;
    use smpsim::machine::{CheckpointAt, CheckpointPlan};
    for model in [Model::Functional, Model::Inorder] {
        let cfg = config(4, model);
        let w = smpsim_workloads::find("splitdrv").expect("built-in workload");
        let opts = RunOptions::default();
        let full = Machine::build(&cfg, w, &opts).expect("builds").run();
        assert_success(&full, "splitdrv");
        let want = json_without_host(&full);
        let dir = std::env::temp_dir().join(format!(
            "smpsim-splitdrv-{}-{}",
            std::process::id(),
            model.name()
        ));
        std::fs::create_dir_all(&dir).expect("scratch directory");
        for quarter in 1..=3 {
            let out = dir.join(format!("q{quarter}"));
            let mut m = Machine::build(&cfg, w, &opts).expect("builds");
            m.set_checkpoints(CheckpointPlan {
                at: CheckpointAt::Cycle(full.cycles * quarter / 4),
                every: None,
                out: out.clone(),
            });
            assert_eq!(json_without_host(&m.run_in_place()), want);
            let p = checkpoint::read(&out).expect("checkpoint reads");
            let back = Machine::restore(p, None, None, None, &opts)
                .expect("restores")
                .run();
            let what = format!("{} restored at quarter {quarter}", model.name());
            assert_eq!(json_without_host(&back), want, "{what}");
        }
        let _ = std::fs::remove_dir_all(&dir);
    }
}
