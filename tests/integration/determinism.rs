//! The determinism rule (statistics identical for any host-thread count)
//! and the exactness rule (Q ≤ L equals Q = 1) on whole machines.

use crate::support::{assert_success, config, json_without_host, run};
use smpsim::machine::config::Model;
use smpsim_engine::HostThreads;

const THREADS: [HostThreads; 3] = [
    HostThreads::Count(1),
    HostThreads::Count(2),
    HostThreads::PerCore,
];

#[test]
fn stats_outside_host_are_identical_for_any_host_threads() {
    // The microbenchmarks are single-VCPU loops: two of them suffice here.
    let skip = |n: &str| n.starts_with("ubench-") && n != "ubench-smt" && n != "ubench-stlf";
    for w in smpsim_workloads::catalogue()
        .iter()
        .filter(|w| !skip(w.name))
    {
        let cfg = config(4, Model::Inorder);
        let base = run(&cfg, w.name, THREADS[0]);
        let base_json = json_without_host(&base);
        for t in &THREADS[1..] {
            let other = run(&cfg, w.name, *t);
            assert_eq!(
                base_json,
                json_without_host(&other),
                "{} with {t} host threads",
                w.name
            );
        }
    }
}

#[test]
fn exact_quanta_equal_lockstep() {
    for name in ["ipi-pingpong", "spinlock", "ring", "interdomain"] {
        let mut cfg = config(4, Model::Inorder);
        cfg.quantum = Some(1);
        let lockstep = run(&cfg, name, HostThreads::Count(2));
        assert_success(&lockstep, name);
        let l = lockstep.lookahead;
        assert!(l > 1, "lookahead {l}");
        for q in [l, 2] {
            if !l.is_multiple_of(q) {
                continue;
            }
            cfg.quantum = Some(q);
            let r = run(&cfg, name, HostThreads::Count(2));
            let mut a = json_without_host(&lockstep);
            let mut b = json_without_host(&r);
            // The quantum itself is the only field allowed to differ.
            a = a.replace(&format!("\"quantum\": {}", 1), "\"quantum\": Q");
            b = b.replace(&format!("\"quantum\": {q}"), "\"quantum\": Q");
            assert_eq!(a, b, "{name}: Q {q} vs Q 1");
        }
    }
}

#[test]
fn lax_quanta_stay_deterministic_and_correct() {
    let mut cfg = config(4, Model::Inorder);
    cfg.quantum = Some(1000);
    let a = run(&cfg, "spinlock", HostThreads::Count(1));
    let b = run(&cfg, "spinlock", HostThreads::Count(2));
    assert_success(&a, "lax spinlock");
    assert_eq!(json_without_host(&a), json_without_host(&b));
}
