//! Page tables in the timing models: `ubench-tlb` on one in-order core.
//! Every load of mode 0 misses the 64-entry TLB and walks the four levels,
//! whose entries stay in the L1 (4-cycle hits on the default machine), so
//! a walk costs 4 × 4 cycles; mode 1 makes the same loads with the TLB
//! warm. The difference of the two modes' cycles per load is the walk.

use crate::support::{assert_success, config};
use smpsim::machine::config::Model;
use smpsim::machine::{Machine, RunOptions, RunReport};
use smpsim_engine::HostThreads;

fn run(mode: u64) -> RunReport {
    run_on(config(1, Model::Inorder), mode)
}

fn run_on(cfg: smpsim::machine::config::MachineConfig, mode: u64) -> RunReport {
    let w = smpsim_workloads::find("ubench-tlb").expect("built-in workload");
    let opts = RunOptions {
        host_threads: HostThreads::Count(1),
        args: vec![("mode".to_owned(), mode)],
        ..RunOptions::default()
    };
    let r = Machine::build(&cfg, w, &opts).expect("builds").run();
    assert_success(&r, "ubench-tlb");
    r
}

/// The guest's cycles per load (from its result line).
fn per_load(r: &RunReport) -> f64 {
    let line = r
        .console
        .iter()
        .find(|l| l.contains("cycles/load"))
        .unwrap_or_else(|| panic!("no result line in {:?}", r.console));
    let num = line
        .split(", ")
        .last()
        .expect("fields")
        .trim_end_matches(" cycles/load");
    num.parse()
        .unwrap_or_else(|_| panic!("cycles/load in {line}"))
}

fn walk_hist(r: &RunReport) -> (u64, u64) {
    r.stats
        .groups
        .values()
        .find_map(|g| g.histograms.get("walk.latency"))
        .map(|h| (h.count, h.p50))
        .expect("walk.latency recorded")
}

#[test]
fn ubench_tlb_walks_cost_four_l1_hits() {
    let miss = run(0);
    let hit = run(1);
    let l1 = config(1, Model::Inorder).hierarchy.l1d.latency;
    let (walks, p50) = walk_hist(&miss);
    assert!(
        walks >= 256 * 15,
        "every measured load walks: {walks} walks"
    );
    let want = 4 * l1;
    assert!(
        p50.abs_diff(want) * 10 <= want,
        "walk p50 {p50} cycles, configured 4 levels × {l1}"
    );
    let (hit_walks, _) = walk_hist(&hit);
    assert!(
        hit_walks < 100,
        "mode 1 keeps its 16 pages in the TLB: {hit_walks} walks"
    );
    let diff = per_load(&miss) - per_load(&hit);
    assert!(
        (diff - want as f64).abs() <= 0.1 * want as f64,
        "a TLB miss costs {diff:.2} cycles per load, the walk {want}"
    );
}

#[test]
fn a_dtlb_that_holds_every_page_removes_the_walks() {
    let mut cfg = config(1, Model::Inorder);
    cfg.hierarchy.dtlb_entries = 512;
    let big = run_on(cfg, 0);
    let (walks, _) = walk_hist(&big);
    assert!(walks < 200, "256 pages fit a 512-entry DTLB: {walks} walks");
    assert_eq!(
        per_load(&big),
        per_load(&run(1)),
        "as fast as the 16-page run"
    );
}
