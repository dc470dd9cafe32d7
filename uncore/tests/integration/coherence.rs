//! The coherence random tester, small seeded runs.

use smpsim_engine::HostThreads;
use smpsim_uncore::tester::{run, summary_line, TesterConfig};

fn cfg(cores: u32, ops: u64, seed: u64, threads: HostThreads) -> TesterConfig {
    TesterConfig {
        cores,
        ops,
        seed,
        host_threads: threads,
        ..TesterConfig::default()
    }
}

#[test]
fn mesi_random_test_has_no_violations() {
    let r = run(&cfg(4, 20_000, 3, HostThreads::Count(1))).expect("runs");
    eprintln!(
        "{}  cycles {} checked {} mix {:?}",
        summary_line(&r),
        r.cycles,
        r.checked_reads,
        r.mix
    );
    assert_eq!(r.violations, 0);
    assert_eq!(r.mix.iter().sum::<u64>(), 20_000);
    assert!(r.checked_reads > 5_000, "{r:?}");
}
