//! Helpers shared by the whole-machine tests.

use smpsim::machine::config::{MachineConfig, Model};
use smpsim::machine::{Machine, RunOptions, RunReport};
use smpsim_engine::HostThreads;

/// A small machine: `cores` cores, 1 context each, 512 MiB.
pub fn config(cores: u32, model: Model) -> MachineConfig {
    MachineConfig {
        cores,
        model,
        memory_mib: 512,
        max_cycles: 200_000_000,
        ..MachineConfig::default()
    }
}

/// Runs `workload` on `cfg`.
pub fn run(cfg: &MachineConfig, workload: &str, threads: HostThreads) -> RunReport {
    let w = smpsim_workloads::find(workload).expect("built-in workload");
    let opts = RunOptions {
        host_threads: threads,
        ..RunOptions::default()
    };
    Machine::build(cfg, w, &opts).expect("machine builds").run()
}

/// The report as JSON without its host-dependent section.
pub fn json_without_host(r: &RunReport) -> String {
    let mut v = serde_json::to_value(r).expect("serializable");
    v.as_object_mut().expect("object").remove("host");
    serde_json::to_string_pretty(&v).expect("serializable")
}

/// Asserts a run succeeded, showing the end of the console otherwise.
pub fn assert_success(r: &RunReport, what: &str) {
    assert!(
        r.success,
        "{what}: stopped with `{}`, error {:?}, shutdowns {:?}, console tail {:?}",
        r.stop,
        r.error,
        r.shutdowns,
        r.console.iter().rev().take(5).collect::<Vec<_>>()
    );
}

/// Runs `workload` functional until its ROI, `ooo` inside it.
pub fn roi(cfg: &MachineConfig, workload: &str, args: &[(&str, u64)]) -> RunReport {
    let mut cfg = cfg.clone();
    cfg.model = Model::Functional;
    cfg.switch.to = Some(Model::Ooo);
    cfg.switch.at_roi = true;
    let w = smpsim_workloads::find(workload).expect("built-in workload");
    let opts = RunOptions {
        host_threads: HostThreads::Count(1),
        args: args.iter().map(|&(k, v)| (k.to_owned(), v)).collect(),
        ..RunOptions::default()
    };
    let r = Machine::build(&cfg, w, &opts).expect("builds").run();
    assert_success(&r, workload);
    let whys: Vec<_> = r.switches.iter().map(|s| s.why.as_str()).collect();
    assert_eq!(whys, ["roi begin", "roi end"], "{workload}");
    r
}
