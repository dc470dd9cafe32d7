//! The latency microbenchmarks measure what the config implies.

use smpsim_uncore::latency::{report, run, LatencyConfig};

#[test]
fn every_level_is_within_ten_percent_of_the_config() {
    let cfg = LatencyConfig {
        chase_loads: 400,
        rounds: 40,
        ..LatencyConfig::default()
    };
    let results = run(&cfg).expect("runs");
    let (lines, ok) = report(&results, 0.10);
    assert!(ok, "{}", lines.join("\n"));
    let names: Vec<_> = results.iter().map(|r| r.name).collect();
    assert_eq!(names, ["L1", "L2", "L3", "DRAM", "core-to-core"]);
    for r in &results {
        assert!(
            r.loads >= 39,
            "{}: only {} loads at its level",
            r.name,
            r.loads
        );
    }
    let h = &cfg.system.hierarchy;
    assert_eq!(results[0].measured, h.l1d.latency as f64);
    assert_eq!(results[1].measured, h.l2.latency as f64);
    assert!(results[2].measured > results[1].measured && results[3].measured > results[2].measured);
    assert!(
        results[4].measured > results[2].measured,
        "a transfer costs more than an L3 hit"
    );
}
