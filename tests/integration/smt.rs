//! Every workload on SMT cores (2 and 4 contexts per core) in every timing
//! model. Sibling contexts share the core's hierarchy, its store buffer and
//! its single lock, which is where two hangs hid: `cmpxchg8b`/`cmpxchg16b`
//! asked for their halves' locks in turn (the `atomics` workload runs every
//! cmpxchg width), and a store held back by a sibling's lock was reported
//! due at every cycle (`barrier` at 4 cores × 2 stopped advancing).

use crate::support::{assert_success, config, run};
use smpsim::machine::config::Model;
use smpsim_engine::HostThreads;

fn all_on_smt(model: Model, cores: u32, smt: u32) {
    let mut cfg = config(cores, model);
    cfg.smt = smt;
    for w in smpsim_workloads::catalogue() {
        if w.crashes_on_purpose {
            continue;
        }
        let what = format!("{} on {cores} cores × {smt} SMT, {model:?}", w.name);
        let r = run(&cfg, w.name, HostThreads::Count(1));
        assert_success(&r, &what);
        let last = r.console.last().map_or("", String::as_str);
        assert!(last.contains("PASS"), "{what}: last console line {last:?}");
    }
}

#[test]
fn every_workload_passes_on_smt2_functional() {
    all_on_smt(Model::Functional, 2, 2);
}

#[test]
fn every_workload_passes_on_smt2_inorder() {
    all_on_smt(Model::Inorder, 2, 2);
}

#[test]
fn every_workload_passes_on_smt2_ooo() {
    all_on_smt(Model::Ooo, 2, 2);
}

#[test]
fn every_workload_passes_on_smt4_functional() {
    all_on_smt(Model::Functional, 2, 4);
}

#[test]
fn every_workload_passes_on_smt4_inorder() {
    all_on_smt(Model::Inorder, 2, 4);
}

#[test]
fn every_workload_passes_on_smt4_ooo() {
    all_on_smt(Model::Ooo, 2, 4);
}

#[test]
fn barrier_on_four_cores_of_two_contexts_finishes_in_order() {
    let mut cfg = config(4, Model::Inorder);
    cfg.smt = 2;
    let r = run(&cfg, "barrier", HostThreads::Count(2));
    assert_success(&r, "barrier on 4 × 2 inorder");
    assert_eq!(r.vcpus_per_domain, 8);
}
