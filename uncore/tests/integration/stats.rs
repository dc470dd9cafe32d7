//! Every declared statistic is exercised by some test run (dead statistics
//! mislead).

use smpsim_uncore::config::{PrefetchKind, Protocol};
use smpsim_uncore::tester::{run, TesterConfig};
use std::collections::BTreeMap;

#[test]
fn every_memory_statistic_is_exercised_by_the_tester() {
    let mut seen: BTreeMap<String, u64> = BTreeMap::new();
    let (none, next, stride) = (
        PrefetchKind::None,
        PrefetchKind::NextLine,
        PrefetchKind::Stride,
    );
    let runs = [
        (Protocol::Mesi, [none, none]),
        (Protocol::Moesi, [none, none]),
        (Protocol::Mesi, [next, none]),
        (Protocol::Moesi, [none, next]),
        (Protocol::Mesi, [stride, stride]),
    ];
    for (protocol, [l1d_prefetch, l2_prefetch]) in runs {
        let r = run(&TesterConfig {
            cores: 4,
            ops: 20_000,
            seed: 2,
            protocol,
            l1d_prefetch,
            l2_prefetch,
            ..TesterConfig::default()
        })
        .expect("runs");
        assert_eq!(
            r.violations, 0,
            "{protocol:?} {l1d_prefetch:?} {l2_prefetch:?}"
        );
        for (group, section) in &r.stats.groups {
            for (name, v) in &section.counters {
                *seen.entry(format!("{group}/{name}")).or_default() += v;
            }
            for (name, h) in &section.histograms {
                *seen.entry(format!("{group}/{name}")).or_default() += h.count;
            }
        }
    }
    // Never reached by a well-behaved program: accesses beyond memory.
    let exempt = ["core/mem.out_of_range"];
    let dead: Vec<&String> = seen
        .iter()
        .filter(|(k, &v)| v == 0 && !exempt.contains(&k.as_str()))
        .map(|(k, _)| k)
        .collect();
    assert!(dead.is_empty(), "statistics never incremented: {dead:?}");
}
