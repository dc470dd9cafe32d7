//! The out-of-order model in the whole machine: every end-to-end workload
//! passes and is deterministic; the microbenchmarks land where the
//! configured core says they should; models switch at run time.
//!
//! The microbenchmarks run `functional` until the guest's region-of-interest
//! mark and `ooo` inside it (`switch.at_roi`), so the `ooo.*` counters
//! cover the measured loop plus at most one service period (a few hundred
//! cycles) on each side of it: that slack, and the loop's own branch and
//! counter instructions, are what the tolerances below allow for.

use crate::support::{assert_success, config, json_without_host, roi, run};
use smpsim::machine::config::{MachineConfig, Model};
use smpsim::machine::{Machine, RunOptions, RunReport};
use smpsim_engine::HostThreads;

/// The end-to-end workloads (the microbenchmarks have their own tests).
fn end_to_end() -> impl Iterator<Item = &'static smpsim_workloads::Workload> {
    smpsim_workloads::catalogue()
        .iter()
        .filter(|w| !w.name.starts_with("ubench-"))
}

fn counter(r: &RunReport, name: &str) -> u64 {
    r.stats
        .group_counter("core", name)
        .unwrap_or_else(|| panic!("no counter {name}"))
}

#[test]
fn every_end_to_end_workload_passes_in_ooo() {
    for w in end_to_end() {
        if w.crashes_on_purpose {
            continue;
        }
        let r = run(&config(4, Model::Ooo), w.name, HostThreads::Count(2));
        assert_success(&r, &format!("{} in ooo", w.name));
        assert_eq!(counter(&r, "ooo.insns"), r.instructions, "{}", w.name);
        let cycles = counter(&r, "ooo.cycles");
        assert!(cycles > 0, "{}", w.name);
        // One occupancy sample per simulated pipeline cycle.
        for h in ["ooo.occ.rob", "ooo.occ.iq", "ooo.occ.lsq"] {
            let n = r.stats.groups["core"].histograms[h].count;
            assert_eq!(n, cycles, "{}: {h}", w.name);
        }
    }
}

#[test]
fn ooo_stats_are_identical_for_any_host_threads() {
    for w in end_to_end() {
        let cfg = config(4, Model::Ooo);
        let base = json_without_host(&run(&cfg, w.name, HostThreads::Count(1)));
        let threads: &[HostThreads] = if w.name == "spinlock" || w.name == "ring" {
            &[HostThreads::Count(2), HostThreads::PerCore]
        } else {
            &[HostThreads::Count(2)]
        };
        for t in threads {
            let other = json_without_host(&run(&cfg, w.name, *t));
            assert_eq!(base, other, "{} with {t} host threads", w.name);
        }
    }
}

#[test]
fn ooo_runs_sixteen_vcpus() {
    for name in ["reduction", "ticketlock", "barrier"] {
        let r = run(&config(16, Model::Ooo), name, HostThreads::Count(2));
        assert_success(&r, &format!("{name} on 16 ooo cores"));
        assert_eq!(r.vcpus_per_domain, 16);
    }
}

#[test]
fn ooo_two_smt_contexts_per_core() {
    let mut cfg = config(2, Model::Ooo);
    cfg.smt = 2;
    for name in ["spinlock", "reduction", "ipi-pingpong"] {
        let a = run(&cfg, name, HostThreads::Count(1));
        assert_success(&a, &format!("{name} on 2×2 ooo"));
        assert_eq!(a.vcpus_per_domain, 4);
        let b = run(&cfg, name, HostThreads::Count(2));
        assert_eq!(json_without_host(&a), json_without_host(&b), "{name}");
    }
}

fn one_core() -> MachineConfig {
    config(1, Model::Functional)
}

#[test]
fn ubench_alu_indep_reaches_the_issue_width() {
    let r = roi(&one_core(), "ubench-alu-indep", &[]);
    let ipc = counter(&r, "ooo.insns") as f64 / counter(&r, "ooo.cycles") as f64;
    // 4 ALUs, issue width 4; 34 instructions per iteration of which 32
    // are ALU ops and 2 the loop: at most 4, the loop's taken branch
    // ending each fetch group costs a little.
    assert!((3.4..=4.0).contains(&ipc), "IPC {ipc:.2}");
}

#[test]
fn ubench_alu_chain_runs_at_the_multiply_latency() {
    for mul in [3u64, 5] {
        let mut cfg = one_core();
        cfg.ooo.latency.mul = mul;
        let r = roi(&cfg, "ubench-alu-chain", &[]);
        // 5000 iterations × 30 dependent imuls; dec/jnz hide under them.
        let per = counter(&r, "ooo.cycles") as f64 / 150_000.0;
        let want = mul as f64;
        assert!(
            (per - want).abs() < 0.02 * want,
            "mul latency {mul}: {per:.3} cycles per imul"
        );
    }
}

#[test]
fn ubench_branch_shows_the_mispredict_penalty() {
    let cfg = one_core();
    let random = roi(&cfg, "ubench-branch", &[("mode", 0)]);
    let steady = roi(&cfg, "ubench-branch", &[("mode", 1)]);
    let (m0, m1) = (
        counter(&random, "ooo.mispredict.cond"),
        counter(&steady, "ooo.mispredict.cond"),
    );
    // About half of 16384 random branches mispredict; the steady loop
    // mispredicts only while the predictor warms up.
    assert!((6000..=10000).contains(&m0), "{m0} mispredicts");
    assert!(m1 < 50, "{m1} mispredicts when predictable");
    let extra = counter(&random, "ooo.cycles") as f64 - counter(&steady, "ooo.cycles") as f64;
    let penalty = extra / (m0 - m1) as f64;
    // Front end depth 5 + redirect 2, plus the branch's wait to issue
    // behind the generator's dependent chain.
    let (depth, redirect) = (cfg.ooo.frontend_depth, cfg.ooo.redirect_penalty);
    let lo = (depth + redirect) as f64;
    assert!(
        (lo..=lo + 8.0).contains(&penalty),
        "{penalty:.1} cycles per mispredict"
    );
}

#[test]
fn ubench_mlp_overlaps_independent_misses() {
    let cfg = one_core();
    let indep = roi(&cfg, "ubench-mlp", &[("mode", 0)]);
    let chase = roi(&cfg, "ubench-mlp", &[("mode", 1)]);
    let loads = 16384.0;
    let (ci, cc) = (
        counter(&indep, "ooo.cycles") as f64 / loads,
        counter(&chase, "ooo.cycles") as f64 / loads,
    );
    // A chase pays the whole DRAM latency per load (over 100 cycles on the
    // default machine); independent loads overlap up to the MSHRs.
    assert!(cc > 100.0, "chase: {cc:.1} cycles per load");
    assert!(cc / ci > 5.0, "MLP: chase {cc:.1} vs independent {ci:.1}");
}

#[test]
fn ubench_stlf_forwards_every_reload() {
    let cfg = one_core();
    let r = roi(&cfg, "ubench-stlf", &[]);
    assert!(counter(&r, "ooo.stlf") >= 65536);
    // Each step: forward (2) then the dependent add (1).
    let per = counter(&r, "ooo.cycles") as f64 / 65536.0;
    let want = (cfg.ooo.latency.forward + cfg.ooo.latency.alu) as f64;
    assert!((per - want).abs() < 0.05 * want, "{per:.2} cycles per step");
}

#[test]
fn ubench_smt_two_contexts_beat_one() {
    let mut one = config(1, Model::Ooo);
    one.smt = 1;
    let mut two = one.clone();
    two.smt = 2;
    let a = run(&one, "ubench-smt", HostThreads::Count(1));
    let b = run(&two, "ubench-smt", HostThreads::Count(1));
    assert_success(&a, "ubench-smt 1 context");
    assert_success(&b, "ubench-smt 2 contexts");
    // The imul chain leaves the core idle 2 cycles out of 3: a second
    // context fills them, so the same work takes about half the time.
    let (ca, cb) = (a.cycles as f64, b.cycles as f64);
    assert!(cb < 0.7 * ca, "2 contexts {cb} vs 1 context {ca}");
}

#[test]
fn switching_after_n_instructions_is_deterministic() {
    let mut cfg = config(2, Model::Functional);
    cfg.switch.to = Some(Model::Ooo);
    cfg.switch.after_insns = 200_000;
    let a = run(&cfg, "reduction", HostThreads::Count(1));
    let b = run(&cfg, "reduction", HostThreads::Count(2));
    assert_success(&a, "reduction with a switch");
    assert_eq!(a.switches.len(), 1);
    assert_eq!(a.switches[0].to, Model::Ooo);
    assert!(counter(&a, "ooo.insns") > 0);
    assert!(counter(&a, "ooo.insns") < a.instructions);
    assert_eq!(json_without_host(&a), json_without_host(&b));
}

#[test]
fn hlt_in_a_pv_kernel_is_a_gp_fault_in_every_model() {
    for model in [Model::Inorder, Model::Ooo] {
        let w = smpsim_workloads::find("fault").expect("built-in workload");
        let opts = RunOptions {
            args: vec![("mode".to_owned(), 6)],
            ..RunOptions::default()
        };
        let r = Machine::build(&config(1, model), w, &opts)
            .expect("builds")
            .run();
        assert!(!r.success, "{model:?}: the domain crashes");
        assert!(
            r.console
                .iter()
                .any(|l| l.contains("FAIL fault: exception 13 on VCPU 0")),
            "{model:?}: {:?}",
            r.console
        );
        if model == Model::Ooo {
            // The hlt did not retire: the pipeline agrees with the machine.
            assert_eq!(counter(&r, "ooo.insns"), r.instructions);
        }
    }
}
