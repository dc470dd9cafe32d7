use super::*;
use smpsim_engine::StatsBuilder;

/// tRCD 3, tCL 4, tRP 5, tRAS 8, tBURST 2 core cycles; one channel, two
/// banks of 4-line rows: line L is bank (L / 4) % 2, row L / 8.
fn small() -> DramConfig {
    DramConfig {
        channels: 1,
        ranks: 1,
        banks: 2,
        row_bytes: 256,
        t_rcd: 3,
        t_cl: 4,
        t_rp: 5,
        t_ras: 8,
        t_burst: 2,
        clock_ratio: 1.0,
        read_queue: 4,
        write_queue: 4,
        page_policy: PagePolicy::Open,
        interleave: Interleave::Line,
    }
}

fn channel(cfg: &DramConfig) -> DramChannel {
    DramChannel::new(cfg, 0, StatsBuilder::new()).expect("valid config")
}

fn read(line: u64, tag: u64) -> DramRequest {
    DramRequest {
        line: LineAddr(line),
        write: false,
        tag,
    }
}

fn write(line: u64, tag: u64) -> DramRequest {
    DramRequest {
        write: true,
        ..read(line, tag)
    }
}

/// `(tag, time, outcome)` of each completion.
fn summary(done: &[Completion]) -> Vec<(u64, u64, RowOutcome)> {
    done.iter()
        .map(|c| (c.tag, c.time.get(), c.outcome))
        .collect()
}

fn counter(ch: &DramChannel, name: &str) -> u64 {
    ch.stats().counter_by_name(name).expect("declared")
}

#[test]
fn miss_hit_and_conflict_latencies() {
    let mut ch = channel(&small());
    ch.enqueue(Cycle(0), read(0, 1)).unwrap();
    assert_eq!(summary(&ch.advance(Cycle(20))), [(1, 9, RowOutcome::Miss)]);
    ch.enqueue(Cycle(20), read(1, 2)).unwrap();
    assert_eq!(summary(&ch.advance(Cycle(40))), [(2, 26, RowOutcome::Hit)]);
    ch.enqueue(Cycle(40), read(8, 3)).unwrap();
    let done = ch.advance(Cycle(100));
    assert_eq!(summary(&done), [(3, 54, RowOutcome::Conflict)]);
    assert!(!done[0].row_hit() && !done[0].write);
    let t = ch.timing();
    assert_eq!(t.idle_latency(RowOutcome::Miss), 9);
    assert_eq!(t.idle_latency(RowOutcome::Hit), 6);
    assert_eq!(t.idle_latency(RowOutcome::Conflict), 14);
    assert_eq!(ch.idle_latency(), 14, "open page: random access conflicts");
    assert_eq!(counter(&ch, "dram.reads"), 3);
    assert_eq!(counter(&ch, "dram.row_hits"), 1);
    assert_eq!(counter(&ch, "dram.row_misses"), 1);
    assert_eq!(counter(&ch, "dram.row_conflicts"), 1);
    assert_eq!(counter(&ch, "dram.activates"), 2);
    assert_eq!(counter(&ch, "dram.precharges"), 1);
    let lat = ch.stats().histogram_by_name("dram.read_latency").unwrap();
    assert_eq!((lat.len(), lat.min(), lat.max()), (3, 6, 14));
}

#[test]
fn completions_wait_for_their_cycle() {
    let mut ch = channel(&small());
    ch.enqueue(Cycle(0), read(0, 1)).unwrap();
    assert_eq!(ch.next_event(), Some(Cycle(0)), "ACT issues at once");
    assert!(ch.advance(Cycle(9)).is_empty(), "done at 9, not before");
    assert_eq!(ch.next_event(), Some(Cycle(9)));
    assert_eq!(summary(&ch.advance(Cycle(10))), [(1, 9, RowOutcome::Miss)]);
    assert_eq!(ch.next_event(), None);
    assert_eq!(ch.clock(), Cycle(10));
}

#[test]
#[should_panic(expected = "after the channel was advanced to 10")]
fn enqueue_before_the_clock_is_a_bug() {
    let mut ch = channel(&small());
    ch.advance(Cycle(10));
    let _ = ch.enqueue(Cycle(9), read(0, 0));
}

/// An older conflict waits (tRAS) while a younger hit to the open row
/// arrives: the hit goes first and the conflict's PRE is held back.
#[test]
fn fr_fcfs_serves_younger_hit_before_older_conflict() {
    let mut ch = channel(&small());
    ch.enqueue(Cycle(0), read(0, 1)).unwrap(); // ACT 0, CAS 3, done 9
    ch.enqueue(Cycle(2), read(8, 2)).unwrap(); // conflict: PRE not before tRAS = 8
    ch.enqueue(Cycle(4), read(1, 3)).unwrap(); // hit: CAS at 5 (bus free at 9 = 5 + tCL)
    let done = summary(&ch.advance(Cycle(100)));
    assert_eq!(
        done,
        [
            (1, 9, RowOutcome::Miss),
            (3, 11, RowOutcome::Hit),
            // PRE 8, ACT 13, CAS 16, done 22.
            (2, 22, RowOutcome::Conflict),
        ]
    );
}

#[test]
fn fr_fcfs_prefers_a_hit_arriving_in_the_same_cycle() {
    let mut ch = channel(&small());
    ch.enqueue(Cycle(0), read(0, 1)).unwrap();
    ch.advance(Cycle(20));
    ch.enqueue(Cycle(20), read(8, 2)).unwrap(); // older, conflict
    ch.enqueue(Cycle(20), read(1, 3)).unwrap(); // younger, hit
    let done = summary(&ch.advance(Cycle(100)));
    // Hit: CAS 20, done 26. Conflict: PRE 22 (CAS + tBURST), ACT 27, CAS 30, done 36.
    assert_eq!(
        done,
        [(3, 26, RowOutcome::Hit), (2, 36, RowOutcome::Conflict)]
    );
}

#[test]
fn different_banks_overlap_same_bank_serializes() {
    let mut ch = channel(&small());
    ch.enqueue(Cycle(0), read(0, 1)).unwrap(); // bank 0
    ch.enqueue(Cycle(0), read(4, 2)).unwrap(); // bank 1
                                               // ACT b0 0, ACT b1 1, CAS b0 3 (data 7..9), CAS b1 5 (data 9..11).
    assert_eq!(
        summary(&ch.advance(Cycle(100))),
        [(1, 9, RowOutcome::Miss), (2, 11, RowOutcome::Miss)]
    );
    let mut ch = channel(&small());
    ch.enqueue(Cycle(0), read(0, 1)).unwrap(); // bank 0 row 0
    ch.enqueue(Cycle(0), read(8, 2)).unwrap(); // bank 0 row 1
    assert_eq!(
        summary(&ch.advance(Cycle(100))),
        [(1, 9, RowOutcome::Miss), (2, 22, RowOutcome::Conflict)]
    );
}

#[test]
fn row_hits_stream_at_the_burst_rate() {
    let mut ch = channel(&small());
    for i in 0..4 {
        ch.enqueue(Cycle(0), read(i, i)).unwrap();
    }
    let times: Vec<u64> = ch
        .advance(Cycle(100))
        .iter()
        .map(|c| c.time.get())
        .collect();
    assert_eq!(times, [9, 11, 13, 15]);
    assert_eq!(counter(&ch, "dram.row_hits"), 3);
}

#[test]
fn full_queue_refuses_and_frees_when_a_cas_issues() {
    let mut ch = channel(&small());
    for i in 0..4 {
        ch.enqueue(Cycle(0), read(8 * i, i)).unwrap(); // all bank 0, distinct rows
    }
    assert!(!ch.can_accept(false));
    assert!(ch.can_accept(true), "the write queue is separate");
    let refused = ch.enqueue(Cycle(0), read(1, 9)).unwrap_err();
    assert_eq!(refused, QueueFull(read(1, 9)));
    assert!(refused.to_string().contains("read queue full"));
    assert_eq!(counter(&ch, "dram.rejected"), 1);
    assert_eq!(ch.queued(), (4, 0));
    ch.advance(Cycle(4)); // first CAS at 3 leaves the queue
    assert_eq!(ch.queued(), (3, 0));
    ch.enqueue(Cycle(4), read(1, 9)).expect("a slot freed");
    let occ = ch
        .stats()
        .histogram_by_name("dram.queue_occupancy")
        .unwrap();
    assert_eq!((occ.len(), occ.max()), (5, 4));
}

#[test]
fn writes_complete_and_hold_the_bank_until_written() {
    let mut ch = channel(&small());
    ch.enqueue(Cycle(0), write(0, 1)).unwrap(); // ACT 0, CAS 3, written 9
    ch.enqueue(Cycle(0), read(8, 2)).unwrap(); // same bank, other row
    let done = ch.advance(Cycle(100));
    // Both ACTs could issue at 0; reads are preferred over the older write,
    // so row 1 opens for the read and the write then conflicts.
    assert_eq!(
        summary(&done),
        [(2, 9, RowOutcome::Miss), (1, 22, RowOutcome::Conflict)]
    );
    assert!(done[1].write);
    assert_eq!(counter(&ch, "dram.writes"), 1);
    let wl = ch.stats().histogram_by_name("dram.write_latency").unwrap();
    assert_eq!(wl.max(), 22);
}

#[test]
fn write_precharge_waits_for_write_data() {
    let mut ch = channel(&small());
    ch.enqueue(Cycle(0), write(0, 1)).unwrap(); // ACT 0, CAS 3, data until 9
    ch.advance(Cycle(20));
    ch.enqueue(Cycle(20), write(1, 2)).unwrap(); // hit: CAS 20, written 26
    ch.enqueue(Cycle(20), read(8, 3)).unwrap(); // conflict: PRE >= 26
    let done = summary(&ch.advance(Cycle(100)));
    // PRE 26, ACT 31, CAS 34, done 40.
    assert_eq!(
        done,
        [(2, 26, RowOutcome::Hit), (3, 40, RowOutcome::Conflict)]
    );
}

#[test]
fn closed_page_policy_never_hits() {
    let cfg = DramConfig {
        page_policy: PagePolicy::Closed,
        ..small()
    };
    let mut ch = channel(&cfg);
    ch.enqueue(Cycle(0), read(0, 1)).unwrap();
    ch.enqueue(Cycle(0), read(1, 2)).unwrap();
    // ACT 0, CAS 3 (auto-PRE at tRAS = 8), ACT 13, CAS 16, done 22.
    assert_eq!(
        summary(&ch.advance(Cycle(100))),
        [(1, 9, RowOutcome::Miss), (2, 22, RowOutcome::Miss)]
    );
    assert_eq!(ch.idle_latency(), 9);
    assert_eq!(counter(&ch, "dram.precharges"), 2);
}

#[test]
fn interleaving_by_line_and_by_page() {
    let mut cfg = DramConfig {
        channels: 4,
        ..DramConfig::default()
    };
    assert_eq!(cfg.channel_of(LineAddr(0)), 0);
    assert_eq!(cfg.channel_of(LineAddr(1)), 1);
    assert_eq!(cfg.channel_of(LineAddr(7)), 3);
    // Line 4 is channel 0's second line: same row, column 1.
    let loc = cfg.locate(LineAddr(4));
    assert_eq!((loc.channel, loc.bank, loc.row, loc.column), (0, 0, 0, 1));
    // Each channel's 8 KiB row holds 128 lines: line 4 * 128 starts bank 1.
    assert_eq!(cfg.locate(LineAddr(512)).bank, 1);
    assert_eq!(cfg.locate(LineAddr(512 * 16)).row, 1);
    cfg.interleave = Interleave::Page;
    assert_eq!(cfg.channel_of(LineAddr(63)), 0);
    assert_eq!(cfg.channel_of(LineAddr(64)), 1);
    assert_eq!(cfg.channel_of(LineAddr(4 * 64 + 5)), 0);
    let loc = cfg.locate(LineAddr(4 * 64 + 5));
    assert_eq!((loc.bank, loc.row, loc.column), (0, 0, 69));
}

#[test]
#[should_panic(expected = "belongs to DRAM channel 1")]
fn request_for_another_channel_is_a_bug() {
    let cfg = DramConfig {
        channels: 2,
        ..small()
    };
    let mut ch = channel(&cfg);
    let _ = ch.enqueue(Cycle(0), read(1, 0));
}

#[test]
fn default_timing_converts_ddr4_to_core_cycles() {
    let cfg = DramConfig::default();
    let t = cfg.timing();
    assert_eq!((t.rcd, t.cl, t.rp, t.ras, t.burst), (43, 43, 43, 98, 10));
    let ch = DramChannel::new(&cfg, 1, StatsBuilder::new()).unwrap();
    assert_eq!(ch.idle_latency(), 43 * 3 + 10);
    assert_eq!(
        DramChannel::new(&cfg, 2, StatsBuilder::new()).unwrap_err(),
        DramConfigError::NoSuchChannel {
            channel: 2,
            channels: 2
        }
    );
}

#[test]
fn bad_configs_name_the_key() {
    let e = DramConfig {
        banks: 0,
        ..small()
    }
    .validate()
    .unwrap_err();
    assert_eq!(
        e.to_string(),
        "dram.banks = 0 is not allowed: it must be at least 1"
    );
    let e = DramConfig {
        row_bytes: 100,
        ..small()
    }
    .validate()
    .unwrap_err();
    assert!(e.to_string().contains("dram.row_bytes = 100"));
    let e = DramConfig {
        clock_ratio: -1.0,
        ..small()
    }
    .validate()
    .unwrap_err();
    assert!(e.to_string().contains("dram.clock_ratio"));
}

#[test]
fn config_reads_from_toml_and_rejects_unknown_keys() {
    let cfg: DramConfig =
        toml::from_str("channels = 4\npage_policy = \"closed\"\ninterleave = \"page\"\n")
            .expect("valid toml");
    assert_eq!(cfg.channels, 4);
    assert_eq!(cfg.page_policy, PagePolicy::Closed);
    assert_eq!(cfg.interleave, Interleave::Page);
    assert_eq!(cfg.t_rcd, 17, "default filled in");
    let bad = toml::from_str::<DramConfig>("tRCD = 3\n").unwrap_err();
    assert!(bad.to_string().contains("tRCD"));
}

/// Statistics keep the partition's own declarations.
#[test]
fn partition_counters_share_the_stats() {
    let mut b = StatsBuilder::new();
    let mine = b.counter("mc.retries", "retried enqueues", "events");
    let mut ch = DramChannel::new(&small(), 0, b).unwrap();
    ch.stats_mut().inc(mine);
    assert_eq!(ch.stats().get(mine), 1);
    assert_eq!(counter(&ch, "dram.reads"), 0);
}

/// Same calls, same schedule: a mixed random load run twice gives the same
/// completions, and every request completes exactly once.
#[test]
fn random_load_is_deterministic_and_complete() {
    let run = || {
        let mut ch = channel(&DramConfig {
            banks: 4,
            read_queue: 8,
            write_queue: 8,
            ..small()
        });
        let mut x: u64 = 12345;
        let mut out = Vec::new();
        let mut backlog = std::collections::VecDeque::new();
        for (tag, t) in (0..2_000u64).map(|i| (i, i * 3)) {
            x = x
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            let line = (x >> 33) % 256;
            backlog.push_back(DramRequest {
                line: LineAddr(line),
                write: (x >> 20).is_multiple_of(4),
                tag,
            });
            out.extend(ch.advance(Cycle(t)));
            while let Some(r) = backlog.pop_front() {
                if let Err(QueueFull(r)) = ch.enqueue(Cycle(t), r) {
                    backlog.push_front(r);
                    break;
                }
            }
        }
        let mut t = 6_000;
        while !backlog.is_empty() || ch.next_event().is_some() {
            t += 1;
            out.extend(ch.advance(Cycle(t)));
            while let Some(r) = backlog.pop_front() {
                if let Err(QueueFull(r)) = ch.enqueue(Cycle(t), r) {
                    backlog.push_front(r);
                    break;
                }
            }
        }
        out
    };
    let a = run();
    assert_eq!(a, run());
    let mut tags: Vec<u64> = a.iter().map(|c| c.tag).collect();
    tags.sort_unstable();
    assert_eq!(tags, (0..2_000).collect::<Vec<_>>());
    assert!(
        a.windows(2).all(|w| w[0].time < w[1].time),
        "one burst at a time"
    );
}

/// Three of four write slots taken starts a drain: writes win ties over
/// reads until the write queue is down to a quarter.
#[test]
fn full_write_queue_drains_ahead_of_reads() {
    let mut ch = channel(&small());
    for i in 0..3 {
        ch.enqueue(Cycle(0), write(i, i)).unwrap(); // bank 0, row 0
    }
    ch.enqueue(Cycle(0), read(4, 9)).unwrap(); // bank 1
                                               // ACT b0 0 (write first), ACT b1 1, CAS w0 3, CAS w1 5 (draining),
                                               // then the queue is at a quarter: CAS read 7, CAS w2 9.
    assert_eq!(
        summary(&ch.advance(Cycle(100))),
        [
            (0, 9, RowOutcome::Miss),
            (1, 11, RowOutcome::Hit),
            (9, 13, RowOutcome::Miss),
            (2, 15, RowOutcome::Hit)
        ]
    );
}
