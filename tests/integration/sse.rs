//! The FP/SSE workloads (matmul, nbody, memcpy, ubench-fp) in the whole
//! machine: every model, determinism across host threads, and the ooo FP
//! latencies and throughputs ubench-fp measures against the configuration.

use crate::support::{assert_success, config, json_without_host, roi, run};
use smpsim::machine::config::Model;
use smpsim::machine::RunReport;
use smpsim_engine::HostThreads;

const SSE_WORKLOADS: [&str; 4] = ["matmul", "nbody", "memcpy", "ubench-fp"];

fn counter(r: &RunReport, name: &str) -> u64 {
    r.stats
        .group_counter("core", name)
        .unwrap_or_else(|| panic!("no counter {name}"))
}

#[test]
fn sse_workloads_pass_in_every_model() {
    for model in [Model::Functional, Model::Inorder, Model::Ooo] {
        for cores in [1, 4] {
            for name in SSE_WORKLOADS {
                let what = format!("{name} on {cores} {model:?} cores");
                let r = run(&config(cores, model), name, HostThreads::Count(2));
                assert_success(&r, &what);
                let last = r.console.last().map_or("", String::as_str);
                assert!(last.contains("PASS"), "{what}: last console line {last:?}");
            }
        }
    }
}

/// matmul saves and restores the FPU state (fxsave64/xsave64, 512 and 576
/// bytes: more stores than the store buffer holds) on every VCPU at once.
#[test]
fn state_saves_larger_than_the_store_buffer_complete_in_timed_models() {
    for model in [Model::Inorder, Model::Ooo] {
        let mut cfg = config(2, model);
        cfg.hierarchy.store_buffer = 8;
        let r = run(&cfg, "matmul", HostThreads::Count(2));
        assert_success(&r, &format!("matmul, 8-entry store buffer, {model:?}"));
    }
}

#[test]
fn sse_workloads_are_deterministic_across_host_threads() {
    for model in [Model::Inorder, Model::Ooo] {
        for name in SSE_WORKLOADS {
            let cfg = config(4, model);
            let base = json_without_host(&run(&cfg, name, HostThreads::Count(1)));
            for t in [HostThreads::Count(2), HostThreads::PerCore] {
                let other = json_without_host(&run(&cfg, name, t));
                assert_eq!(base, other, "{name} in {model:?} with {t} host threads");
            }
        }
    }
}

/// ubench-fp modes 0 and 1: 5000 iterations × 30 dependent addsd / mulsd;
/// the loop's dec/jnz hide under the chain, so cycles per op is the
/// configured latency (10%: the ROI's service-period slack is < 1%).
#[test]
fn ubench_fp_chains_run_at_the_configured_fp_latency() {
    for (mode, lat) in [(0u64, 3u64), (0, 5), (1, 4), (1, 6)] {
        let mut cfg = config(1, Model::Functional);
        if mode == 0 {
            cfg.ooo.latency.fp_add = lat;
        } else {
            cfg.ooo.latency.fp_mul = lat;
        }
        let r = roi(&cfg, "ubench-fp", &[("mode", mode)]);
        let per = counter(&r, "ooo.cycles") as f64 / 150_000.0;
        let want = lat as f64;
        assert!(
            (per - want).abs() < 0.1 * want,
            "mode {mode}, latency {lat}: {per:.3} cycles per op"
        );
    }
}

/// ubench-fp modes 2 and 3: 32 independent ops per iteration over 8
/// accumulators (each gets 4 per iteration: 4 × latency = 12 or 16 cycles
/// of chain, less than the issue bound), so the FP units bound them:
/// 1 / `units.fp` cycles per op (10%).
#[test]
fn ubench_fp_streams_run_at_the_fp_units_rate() {
    for mode in [2u64, 3] {
        for units in [1usize, 2] {
            let mut cfg = config(1, Model::Functional);
            cfg.ooo.units.fp = units;
            let r = roi(&cfg, "ubench-fp", &[("mode", mode)]);
            let per = counter(&r, "ooo.cycles") as f64 / 160_000.0;
            let want = 1.0 / units as f64;
            assert!(
                (per - want).abs() < 0.1 * want,
                "mode {mode}, {units} FP units: {per:.3} cycles per op"
            );
        }
    }
}
