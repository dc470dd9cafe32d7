//! A synthetic machine that proves the engine's determinism and exactness
//! rules: N partitions exchange seeded random messages over links with
//! random latencies ≥ L, and each folds what it receives (with the time it
//! applies it at) into a running hash.

use smpsim_engine::*;

/// splitmix64: a tiny seeded generator, one per partition.
#[derive(Clone, Debug)]
struct Rng(u64);
impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

#[derive(Clone, Copy, Debug)]
struct Payload {
    hops: u32,
    value: u64,
}

struct Node {
    rng: Rng,
    now: Cycle,
    hash: u64,
    sends_left: u32,
    next_send: Cycle,
    peers: Vec<PartitionId>,
    stats: Stats,
    sent: CounterId,
    received: CounterId,
    late: HistId,
}

impl Node {
    fn new(id: u32, seed: u64, peers: Vec<PartitionId>, sends: u32) -> Self {
        let mut b = StatsBuilder::new();
        let sent = b.counter("sent", "messages sent", "messages");
        let received = b.counter("received", "messages received", "messages");
        let late = b.histogram(
            "lateness",
            "cycles a message was applied after its arrival time (lax mode)",
            "cycles",
            1 << 20,
        );
        let mut rng = Rng(seed ^ (u64::from(id) << 32 | 0x5eed));
        let first = Cycle(rng.below(16));
        Node {
            rng,
            now: Cycle::ZERO,
            hash: 0xcbf2_9ce4_8422_2325,
            sends_left: sends,
            next_send: first,
            peers,
            stats: b.build(),
            sent,
            received,
            late,
        }
    }

    fn fold(&mut self, words: [u64; 4]) {
        for w in words {
            self.hash = (self.hash ^ w)
                .wrapping_mul(0x0100_0000_01b3)
                .rotate_left(17);
        }
    }

    fn send(&mut self, ctx: &mut EpochCtx<'_, Payload>, hops: u32) {
        let dst = self.peers[self.rng.below(self.peers.len() as u64) as usize];
        let value = self.rng.next();
        let extra = self.rng.below(3);
        ctx.send_delayed(dst, self.now, extra, Payload { hops, value });
        self.stats.inc(self.sent);
    }
}

impl Partition for Node {
    type Msg = Payload;

    fn run_epoch(&mut self, ctx: &mut EpochCtx<'_, Payload>) {
        let end = ctx.epoch_end();
        // Skipped epochs: the clock catches up with the engine.
        self.now = self.now.max(ctx.epoch_start());
        loop {
            let own = (self.sends_left > 0).then_some(self.next_send);
            let msg = ctx.peek_time().filter(|&t| t < end);
            match (own.filter(|&t| t < end), msg) {
                (Some(t), m) if m.is_none_or(|m| t < m) => {
                    self.now = t.max(self.now);
                    self.sends_left -= 1;
                    let hops = self.rng.below(4) as u32;
                    self.send(ctx, hops);
                    self.next_send = self.now + 1 + self.rng.below(20);
                }
                (_, Some(_)) => {
                    let m = ctx.pop_due().expect("peeked a due message");
                    self.stats
                        .record(self.late, self.now.saturating_since(m.time));
                    self.now = m.time.max(self.now);
                    self.stats.inc(self.received);
                    let now = self.now.get();
                    self.fold([now, u64::from(m.src.0), m.seq, m.payload.value]);
                    if m.payload.hops > 0 {
                        self.send(ctx, m.payload.hops - 1);
                    }
                }
                _ => break,
            }
        }
    }

    fn next_activity(&self) -> Option<Cycle> {
        (self.sends_left > 0).then_some(self.next_send)
    }

    fn stats(&self) -> &Stats {
        &self.stats
    }
}

#[derive(Debug, PartialEq)]
struct Outcome {
    hashes: Vec<u64>,
    end: Cycle,
    messages: u64,
    epochs: u64,
    stats_json: String,
    /// A hash of `BarrierCtx::ran` at every barrier.
    ran_hash: u64,
}

/// Builds `n` nodes fully linked with latencies in `[lookahead, lookahead + 20]`.
fn machine(n: u32, seed: u64, lookahead: u64) -> EngineBuilder<Node> {
    let mut topo = Rng(seed.wrapping_mul(31) + 7);
    let mut b = EngineBuilder::new();
    let ids: Vec<PartitionId> = (0..n).map(PartitionId).collect();
    for i in 0..n {
        let peers = ids.iter().copied().filter(|p| p.0 != i).collect();
        let spec = if i % 4 == 3 {
            PartitionSpec::uncore(format!("n{i}"), "uncore")
        } else {
            PartitionSpec::core(format!("n{i}"), "core")
        };
        b.add(Node::new(i, seed, peers, 40), spec);
    }
    for &a in &ids {
        for &c in &ids {
            if a != c {
                // The first link has exactly the lookahead; others vary.
                let jitter = if a.0 + c.0 == 1 { 0 } else { topo.below(21) };
                b.link(a, c, lookahead + jitter);
            }
        }
    }
    b
}

fn run(n: u32, seed: u64, lookahead: u64, quantum: u64, threads: HostThreads) -> Outcome {
    run_regroup(n, seed, lookahead, quantum, threads, Regroup::default())
}

fn run_regroup(
    n: u32,
    seed: u64,
    lookahead: u64,
    quantum: u64,
    threads: HostThreads,
    regroup: Regroup,
) -> Outcome {
    let config = EngineConfig {
        quantum,
        host_threads: threads,
        regroup,
        ..Default::default()
    };
    let mut engine = machine(n, seed, lookahead)
        .build(config)
        .expect("valid machine");
    assert_eq!(engine.lookahead(), Some(lookahead));
    let mut ran_hash = 0u64;
    let summary = engine
        .run(None, &mut |ctx: &mut BarrierCtx<'_, Node>| {
            assert!(ctx.ran().windows(2).all(|w| w[0] < w[1]), "ascending");
            for p in ctx.ran() {
                ran_hash = (ran_hash ^ u64::from(p.0) ^ ctx.now().get() << 20)
                    .wrapping_mul(0x0100_0000_01b3);
            }
        })
        .expect("no panic");
    assert_eq!(summary.stop, StopReason::Idle);
    let report = engine.stats_report();
    let sent = report.group_counter("core", "sent").unwrap_or(0)
        + report.group_counter("uncore", "sent").unwrap_or(0);
    let received = report.group_counter("core", "received").unwrap_or(0)
        + report.group_counter("uncore", "received").unwrap_or(0);
    assert_eq!(sent, received, "every message sent is received");
    assert_eq!(sent, summary.messages);
    assert!(sent >= 40 * u64::from(n), "each node sends 40 of its own");
    Outcome {
        hashes: engine.partitions().map(|(p, _)| p.hash).collect(),
        end: summary.end,
        messages: summary.messages,
        epochs: summary.epochs,
        stats_json: serde_json::to_string(&report).expect("serializable"),
        ran_hash,
    }
}

const THREADS: [HostThreads; 5] = [
    HostThreads::Count(1),
    HostThreads::Count(2),
    HostThreads::Count(3),
    HostThreads::Count(4),
    HostThreads::PerCore,
];

#[test]
fn identical_results_for_any_host_thread_count() {
    for seed in [1, 2, 3] {
        for n in [2, 5, 16, 64] {
            for quantum in [1, 4, 13, 100] {
                let base = run(n, seed, 4, quantum, THREADS[0]);
                for threads in &THREADS[1..] {
                    let other = run(n, seed, 4, quantum, *threads);
                    assert_eq!(
                        base, other,
                        "seed {seed}, {n} partitions, Q {quantum}, host threads {threads}"
                    );
                }
            }
        }
    }
}

#[test]
fn regrouping_at_barriers_does_not_change_results() {
    for (seed, n, quantum) in [(1, 16, 4), (2, 64, 13), (3, 5, 1), (4, 16, 100)] {
        let base = run_regroup(n, seed, 4, quantum, THREADS[0], Regroup::Off);
        for threads in &THREADS[1..] {
            for every in [1, 2, 7] {
                let other = run_regroup(n, seed, 4, quantum, *threads, Regroup::Every(every));
                assert_eq!(
                    base, other,
                    "seed {seed}, {n} partitions, Q {quantum}, {threads} threads, regroup every {every}"
                );
            }
        }
    }
}

#[test]
fn exact_mode_equals_lockstep() {
    for seed in [1, 5] {
        for n in [3, 16] {
            let lockstep = run(n, seed, 8, 1, HostThreads::Count(1));
            for quantum in 2..=8 {
                let out = run(n, seed, 8, quantum, HostThreads::Count(2));
                assert_eq!(
                    lockstep.hashes, out.hashes,
                    "seed {seed}, n {n}, Q {quantum}"
                );
                assert_eq!(lockstep.stats_json, out.stats_json);
                assert!(
                    out.epochs < lockstep.epochs,
                    "a larger quantum runs fewer epochs"
                );
            }
        }
    }
}

#[test]
fn lax_mode_differs_but_stays_deterministic() {
    let lockstep = run(16, 9, 8, 1, HostThreads::Count(1));
    let mut differed = false;
    for quantum in [9, 32, 200] {
        let a = run(16, 9, 8, quantum, HostThreads::Count(1));
        let b = run(16, 9, 8, quantum, HostThreads::PerCore);
        assert_eq!(a, b, "lax Q {quantum} is deterministic");
        differed |= a.hashes != lockstep.hashes;
    }
    assert!(
        differed,
        "lax mode applies some messages late, so timing must differ"
    );
}

/// A partition that is busy only at a few far-apart cycles.
struct Sparse {
    wakes: Vec<Cycle>,
    ran_at: Vec<Cycle>,
    panic_at: Option<Cycle>,
    stats: Stats,
}

impl Partition for Sparse {
    type Msg = u64;
    fn run_epoch(&mut self, ctx: &mut EpochCtx<'_, u64>) {
        while let Some(m) = ctx.pop_due() {
            self.ran_at.push(m.time);
        }
        while self.wakes.first().is_some_and(|&w| w < ctx.epoch_end()) {
            let w = self.wakes.remove(0);
            assert!(self.panic_at != Some(w), "model bug at {w}");
            self.ran_at.push(w);
        }
    }
    fn next_activity(&self) -> Option<Cycle> {
        self.wakes.first().copied()
    }
    fn stats(&self) -> &Stats {
        &self.stats
    }
}

fn sparse(wakes: &[u64], panic_at: Option<u64>) -> Sparse {
    Sparse {
        wakes: wakes.iter().map(|&w| Cycle(w)).collect(),
        ran_at: Vec::new(),
        panic_at: panic_at.map(Cycle),
        stats: Stats::default(),
    }
}

fn sparse_engine(quantum: u64, threads: usize, panic_at: Option<u64>) -> Engine<Sparse> {
    let mut b = EngineBuilder::new();
    b.add(
        sparse(&[5, 1_000_000], None),
        PartitionSpec::core("a", "core"),
    );
    b.add(
        sparse(&[70_000], panic_at),
        PartitionSpec::core("b", "core"),
    );
    b.link_both(PartitionId(0), PartitionId(1), 10);
    b.build(EngineConfig {
        quantum,
        host_threads: HostThreads::Count(threads),
        ..Default::default()
    })
    .expect("valid")
}

#[test]
fn idle_partitions_are_skipped_to_their_next_activity() {
    let mut e = sparse_engine(10, 2, None);
    let s = e
        .run(None, &mut |_: &mut BarrierCtx<'_, Sparse>| {})
        .expect("runs");
    assert_eq!(s.epochs, 3, "one epoch per burst of activity");
    assert_eq!(s.end, Cycle(1_000_010));
    assert_eq!(
        s.skipped_cycles,
        1_000_010 - 30,
        "epochs [0,10) [70000,..) [1000000,..)"
    );
    assert_eq!(e.partition(PartitionId(1)).ran_at, vec![Cycle(70_000)]);
}

#[test]
fn limit_stops_the_run_and_a_later_run_resumes() {
    let mut e = sparse_engine(10, 2, None);
    let s = e
        .run(Some(Cycle(500_000)), &mut |_: &mut BarrierCtx<
            '_,
            Sparse,
        >| {})
        .expect("runs");
    assert_eq!((s.stop, s.end), (StopReason::Limit, Cycle(500_000)));
    let s = e
        .run(None, &mut |_: &mut BarrierCtx<'_, Sparse>| {})
        .expect("runs");
    assert_eq!((s.stop, s.end), (StopReason::Idle, Cycle(1_000_010)));
}

#[test]
fn hook_injects_wakes_and_stops() {
    let mut e = sparse_engine(10, 2, None);
    let mut calls = 0;
    let s = e
        .run(None, &mut |ctx: &mut BarrierCtx<'_, Sparse>| {
            calls += 1;
            if calls == 1 {
                ctx.inject(PartitionId(1), ctx.now() + 100, 42);
            }
            if ctx.now() < Cycle(50_000) {
                ctx.wake_at(Cycle(50_000));
            }
            if ctx.now() >= Cycle(70_000) {
                ctx.stop("seen enough");
            }
        })
        .expect("runs");
    assert_eq!(s.stop, StopReason::Hook("seen enough".into()));
    assert_eq!(s.end, Cycle(70_010));
    assert_eq!(
        e.partition(PartitionId(1)).ran_at,
        vec![Cycle(110), Cycle(70_000)]
    );
    assert_eq!(calls, 4, "epochs at 0, 110, the wake at 50000, and 70000");
}

#[test]
fn a_panicking_partition_is_reported_and_stats_survive() {
    for threads in [1, 2] {
        let mut e = sparse_engine(10, threads, Some(70_000));
        let err = e
            .run(None, &mut |_: &mut BarrierCtx<'_, Sparse>| {})
            .expect_err("partition b panics");
        assert_eq!(
            err,
            EngineError::Panicked {
                component: "b".into(),
                cycle: Cycle(70_000),
                message: "model bug at 70000".into()
            }
        );
        assert_eq!(e.now(), Cycle(70_010));
        assert_eq!(e.stats_report().partitions.len(), 2);
        assert_eq!(e.partition(PartitionId(0)).ran_at, vec![Cycle(5)]);
    }
}

#[test]
fn bad_builds_are_refused() {
    let mut b = EngineBuilder::<Sparse>::new();
    b.add(sparse(&[], None), PartitionSpec::core("a", "core"));
    let err = b
        .build(EngineConfig {
            quantum: 0,
            ..Default::default()
        })
        .expect_err("quantum 0");
    assert_eq!(err, EngineError::ZeroQuantum);
    let err = EngineBuilder::<Sparse>::new()
        .build(EngineConfig::default())
        .expect_err("empty");
    assert_eq!(err, EngineError::NoPartitions);
}

#[test]
fn a_periodic_hook_acts_at_the_same_times_for_every_dividing_quantum() {
    for quantum in [1, 2, 3, 4, 6, 12] {
        let mut e = sparse_engine(quantum, 2, None);
        let mut seen = Vec::new();
        e.run(None, &mut |ctx: &mut BarrierCtx<'_, Sparse>| {
            if ctx.now().get() % 12 == 0 {
                seen.push(ctx.now().get());
            }
            // A periodic service every 12 cycles until cycle 48.
            if ctx.now() < Cycle(48) {
                ctx.wake_at(Cycle((ctx.now().get() / 12 + 1) * 12));
            }
        })
        .expect("runs");
        assert_eq!(
            &seen[..4],
            &[12, 24, 36, 48],
            "Q {quantum}: same service times"
        );
    }
}

/// A partition that works at every multiple of `period` and counts how
/// often the engine runs it.
struct Periodic {
    period: u64,
    next: Cycle,
    until: Cycle,
    calls: u64,
    stats: Stats,
}

impl Partition for Periodic {
    type Msg = ();
    fn run_epoch(&mut self, ctx: &mut EpochCtx<'_, ()>) {
        self.calls += 1;
        while self.next < ctx.epoch_end() {
            self.next += self.period;
        }
    }
    fn next_activity(&self) -> Option<Cycle> {
        (self.next < self.until).then_some(self.next)
    }
    fn stats(&self) -> &Stats {
        &self.stats
    }
}

#[test]
fn partitions_run_only_in_epochs_they_have_work_in_and_ran_lists_them() {
    for threads in [1, 2, 3] {
        let mut b = EngineBuilder::new();
        // Partition 0 works every cycle; partition i every 10·i cycles.
        for i in 0..200u64 {
            let p = Periodic {
                period: if i == 0 { 1 } else { 10 * i },
                next: Cycle::ZERO,
                until: Cycle(1000),
                calls: 0,
                stats: Stats::default(),
            };
            b.add(p, PartitionSpec::core(format!("p{i}"), "core"));
        }
        let mut e = b
            .build(EngineConfig {
                quantum: 1,
                host_threads: HostThreads::Count(threads),
                regroup: Regroup::Every(5),
                ..Default::default()
            })
            .expect("valid");
        let mut listed = vec![0u64; 200];
        let s = e
            .run(None, &mut |ctx: &mut BarrierCtx<'_, Periodic>| {
                let start = ctx.now().get() - 1;
                let expect: Vec<u32> = (0..200u32)
                    .filter(|&i| i == 0 || start.is_multiple_of(10 * u64::from(i)))
                    .collect();
                let got: Vec<u32> = ctx.ran().iter().map(|p| p.0).collect();
                assert_eq!(got, expect, "epoch [{start}, {})", start + 1);
                for &i in &got {
                    listed[i as usize] += 1;
                }
            })
            .expect("runs");
        assert_eq!(s.epochs, 1000);
        for (i, (p, _)) in e.partitions().enumerate() {
            let expect = if i == 0 {
                1000
            } else {
                1000u64.div_ceil(10 * i as u64)
            };
            assert_eq!(p.calls, expect, "partition {i}, {threads} threads");
            assert_eq!(listed[i], expect);
        }
    }
}
