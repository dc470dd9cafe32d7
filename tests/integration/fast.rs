//! The fast-forward model (`fast`): every workload passes its own checks,
//! results are identical for any host-thread count, and a run can
//! fast-forward to a region of interest and measure it in `ooo`.

use crate::support::{assert_success, config, json_without_host, run};
use smpsim::machine::config::Model;
use smpsim::machine::{Machine, RunOptions};
use smpsim_engine::HostThreads;

#[test]
fn every_workload_passes_fast_forwarded() {
    for w in smpsim_workloads::catalogue() {
        for cores in [1, 4] {
            let cfg = config(cores, Model::Fast);
            if cores < w.domains {
                continue;
            }
            let r = run(&cfg, w.name, HostThreads::Count(2));
            if w.name == "fault" {
                // It crashes on purpose: the same report as `functional`.
                let f = run(
                    &config(cores, Model::Functional),
                    w.name,
                    HostThreads::Count(1),
                );
                assert_eq!(r.console, f.console, "fault at {cores} cores");
                continue;
            }
            assert_success(&r, &format!("{} at {cores} cores", w.name));
            assert_eq!(r.quantum, smpsim::machine::FAST_QUANTUM, "{}", w.name);
        }
    }
}

#[test]
fn fast_forward_is_deterministic_across_host_threads() {
    for name in [
        "hello",
        "reduction",
        "ticketlock",
        "spinlock",
        "atomics",
        "barrier",
        "stress",
        "ring",
        "ipi-pingpong",
        "false-sharing",
    ] {
        let cfg = config(16, Model::Fast);
        let base = run(&cfg, name, HostThreads::Count(1));
        assert_success(&base, name);
        let json = json_without_host(&base);
        for t in [HostThreads::Count(2), HostThreads::PerCore] {
            assert_eq!(
                json,
                json_without_host(&run(&cfg, name, t)),
                "{name} with {t} host threads"
            );
        }
    }
}

#[test]
fn fast_forward_to_the_roi_then_measure_in_ooo() {
    for name in ["ubench-mlp", "ubench-branch", "ubench-fp"] {
        let mut cfg = config(1, Model::Fast);
        cfg.switch.to = Some(Model::Ooo);
        cfg.switch.at_roi = true;
        let w = smpsim_workloads::find(name).expect("built-in workload");
        let r = Machine::build(&cfg, w, &RunOptions::default())
            .expect("builds")
            .run();
        assert_success(&r, name);
        let whys: Vec<_> = r.switches.iter().map(|s| s.why.as_str()).collect();
        assert_eq!(whys, ["roi begin", "roi end"], "{name}");
        let hits = r
            .stats
            .groups
            .get("core")
            .and_then(|g| g.counters.get("l1d.hits"))
            .copied()
            .unwrap_or(0);
        assert!(hits > 0, "{name}: the ROI ran through the caches");
    }
}
