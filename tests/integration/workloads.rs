//! Every built-in workload runs to its success status on the in-order
//! machine, at several VCPU counts.

use crate::support::{assert_success, config, run};
use smpsim::machine::config::Model;
use smpsim_engine::HostThreads;

/// Every workload at `cores`; the single-VCPU microbenchmarks (`ubench-*`)
/// only up to 4 cores (more VCPUs just idle in them; `ooo.rs` tests them).
fn all_at(cores: u32, model: Model) {
    for w in smpsim_workloads::catalogue() {
        if w.crashes_on_purpose || cores < w.domains {
            continue;
        }
        if cores > 4 && w.name.starts_with("ubench-") {
            continue;
        }
        let r = run(&config(cores, model), w.name, HostThreads::Count(2));
        assert_success(&r, &format!("{} on {cores} cores", w.name));
        assert!(
            r.instructions > 1000,
            "{}: {} instructions",
            w.name,
            r.instructions
        );
        let last = r.console.last().map_or("", String::as_str);
        assert!(
            last.contains("PASS"),
            "{}: last console line {last:?}",
            w.name
        );
    }
}

#[test]
fn every_workload_passes_on_1_core() {
    all_at(1, Model::Inorder);
}

#[test]
fn every_workload_passes_on_2_cores() {
    all_at(2, Model::Inorder);
}

#[test]
fn every_workload_passes_on_4_cores() {
    all_at(4, Model::Inorder);
}

#[test]
fn every_workload_passes_on_16_cores() {
    all_at(16, Model::Inorder);
}

#[test]
fn every_workload_passes_in_the_functional_model() {
    all_at(4, Model::Functional);
}

/// 64 VCPUs: minutes of host time, so outside the default suite
/// (`cargo test --release --test integration -- --ignored`).
#[test]
#[ignore]
fn every_workload_passes_on_64_cores() {
    all_at(64, Model::Inorder);
}

#[test]
fn a_few_workloads_pass_on_64_cores() {
    for name in ["hello", "barrier", "reduction"] {
        let r = run(&config(64, Model::Inorder), name, HostThreads::Count(2));
        assert_success(&r, &format!("{name} on 64 cores"));
        assert_eq!(r.vcpus_per_domain, 64);
    }
}

#[test]
fn a_faulting_guest_crashes_its_domain_with_a_report() {
    let r = run(&config(2, Model::Inorder), "fault", HostThreads::Count(1));
    assert!(!r.success);
    assert_eq!(r.shutdowns.len(), 1);
    assert_eq!(r.shutdowns[0].reason, "crash");
    assert!(
        r.console.iter().any(|l| l.contains("FAIL fault")),
        "the guest reports its fault: {:?}",
        r.console
    );
    assert!(
        r.stats
            .group_counter("core", "core.instructions")
            .unwrap_or(0)
            > 0
    );
}

#[test]
fn instruction_and_uop_latencies_reach_the_cycle_count() {
    let mut slow = config(2, Model::Inorder);
    slow.inorder.cpi = 3;
    let a = run(
        &config(2, Model::Inorder),
        "reduction",
        HostThreads::Count(1),
    );
    let b = run(&slow, "reduction", HostThreads::Count(1));
    assert_success(&a, "cpi 1");
    assert_success(&b, "cpi 3");
    assert!(
        b.cycles > a.cycles,
        "cpi 3: {} cycles vs {}",
        b.cycles,
        a.cycles
    );
    let f = run(
        &config(2, Model::Functional),
        "reduction",
        HostThreads::Count(1),
    );
    assert!(
        f.cycles < a.cycles,
        "functional {} < inorder {}",
        f.cycles,
        a.cycles
    );
}
