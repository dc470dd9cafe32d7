//! Dynamic grouping: how many host threads run the partitions.
//!
//! Results never depend on placement (messages are ordered by
//! `(time, src, seq)`, idle skipping and termination are decided by the
//! leader from per-partition values), so the engine may move partitions
//! between host threads at any barrier. On a loaded or small host a thread
//! that is descheduled holds every epoch up: then one thread running
//! everything beats two waiting for each other. The [`Regrouper`] times a
//! sample of epochs: the parallel phase's wall time against the running
//! threads' summed busy time, a ratio that does not depend on how much work
//! the window held. It halves the running threads when they are slower
//! than one thread would be, and now and then (exponential backoff up to
//! 1 s) *probes* twice as many for a window, keeping them only when clearly
//! better; a probe or a window far worse than one thread is cut short
//! after a few milliseconds. Threads left out park and cost nothing.

use std::time::{Duration, Instant};

/// How the engine may change the number of host threads that run the
/// partitions during a run (the others park).
#[derive(Copy, Clone, Debug, PartialEq, Eq, Default)]
pub enum Regroup {
    /// Never: the static placement throughout.
    Off,
    /// Measure, and use fewer threads while that is faster (the default).
    #[default]
    Adaptive,
    /// For tests: change the active-thread count every this many epochs,
    /// cycling through 1, 2, …, N.
    Every(u64),
}

/// Length of a measuring window.
const WINDOW: Duration = Duration::from_millis(20);
/// First probe interval, and after a probe that paid.
const MIN_INTERVAL: Duration = Duration::from_millis(40);
/// Longest probe interval.
const MAX_INTERVAL: Duration = Duration::from_secs(1);
/// A probe is kept only when its ratio is at least this much better.
const KEEP: f64 = 0.9;
/// Running threads whose parallel phases take longer than this share of
/// their summed busy time are slower than one thread: shrink.
const SHRINK: f64 = 0.95;
/// A ratio this much worse ends a window early (a bad probe, or a host
/// that got loaded, costs a fraction of a window).
const ABORT: f64 = 2.0;
/// With more than one thread running, every this many epochs are timed.
const SAMPLE_EVERY: u64 = 4;
/// With one thread running, the clock is read every this many epochs.
const CLOCK_EVERY: u64 = 16;

/// One timed epoch: the wall time of its parallel phase (release to the
/// serial phase) and the busy time of its running threads, summed.
#[derive(Copy, Clone, Debug)]
pub(crate) struct Sample {
    pub(crate) wall_ns: u64,
    pub(crate) busy_ns: u64,
}

/// Decides the active-thread count, once per barrier.
///
/// With `k > 1` threads running it times one epoch in [`SAMPLE_EVERY`]: the
/// parallel phase's wall time `W` against the threads' summed busy time
/// `B` (what one thread would need for the same work, barrier waits and
/// descheduled waiting left out). The ratio `W / B` of a window is
/// independent of how much work the window held: about `1/k` when the
/// threads overlap well, above 1 when waiting for each other costs more
/// than the parallelism brings (a descheduled thread on a loaded host).
/// Above [`SHRINK`] the count halves. Now and then (backoff) it probes
/// twice the threads for a window and keeps them if their ratio is at
/// least 10% better (one thread's ratio counts as 1).
#[derive(Debug)]
pub(crate) struct Regrouper {
    mode: Regroup,
    threads: usize,
    epochs: u64,
    win_start: Option<Instant>,
    win_wall: u64,
    win_busy: u64,
    /// While probing: the count to go back to and its ratio.
    probe_from: Option<(usize, f64)>,
    next_probe: Option<Instant>,
    interval: Duration,
}

impl Regrouper {
    /// A policy for `threads` host threads.
    pub(crate) fn new(mode: Regroup, threads: usize) -> Self {
        Regrouper {
            mode,
            threads,
            epochs: 0,
            win_start: None,
            win_wall: 0,
            win_busy: 0,
            probe_from: None,
            next_probe: None,
            interval: MIN_INTERVAL,
        }
    }

    /// Whether the next epoch, run by `active` threads, is to be timed.
    pub(crate) fn sample_next(&self, active: usize) -> bool {
        self.mode == Regroup::Adaptive
            && active > 1
            && (self.epochs + 1).is_multiple_of(SAMPLE_EVERY)
    }

    /// One epoch ended with `active` threads running (timed if `sample`).
    /// Returns the count to use from the next epoch, if it changes.
    pub(crate) fn observe(&mut self, active: usize, sample: Option<Sample>) -> Option<usize> {
        if self.threads <= 1 {
            return None;
        }
        self.epochs += 1;
        match self.mode {
            Regroup::Off => None,
            Regroup::Every(k) => {
                (self.epochs.is_multiple_of(k.max(1))).then_some(active % self.threads + 1)
            }
            Regroup::Adaptive if active <= 1 => self.maybe_probe_up(),
            Regroup::Adaptive => sample.and_then(|s| self.adapt(active, s)),
        }
    }

    /// One thread running: nothing to time; try two now and then.
    fn maybe_probe_up(&mut self) -> Option<usize> {
        if !self.epochs.is_multiple_of(CLOCK_EVERY) {
            return None;
        }
        let now = Instant::now();
        let due = *self.next_probe.get_or_insert(now + self.interval);
        if now < due {
            return None;
        }
        self.probe_from = Some((1, 1.0));
        self.restart(None);
        Some(2)
    }

    fn adapt(&mut self, active: usize, s: Sample) -> Option<usize> {
        let now = Instant::now();
        let start = *self.win_start.get_or_insert(now);
        self.win_wall += s.wall_ns;
        self.win_busy += s.busy_ns;
        let elapsed = now.duration_since(start);
        let ratio = self.win_wall as f64 / self.win_busy.max(1) as f64;
        let bar = self.probe_from.map_or(1.0, |(_, r)| r);
        let hopeless = elapsed >= WINDOW / 8 && ratio > bar * ABORT;
        if elapsed < WINDOW && !hopeless {
            return None;
        }
        self.restart(Some(now));
        if let Some((from, from_ratio)) = self.probe_from.take() {
            return self.judge_probe(now, from, from_ratio, ratio);
        }
        if ratio > SHRINK {
            self.next_probe = Some(now + self.interval);
            return Some((active / 2).max(1));
        }
        if active < self.threads && self.next_probe.is_none_or(|t| now >= t) {
            self.probe_from = Some((active, ratio));
            return Some((active * 2).min(self.threads));
        }
        None
    }

    fn judge_probe(
        &mut self,
        now: Instant,
        from: usize,
        from_ratio: f64,
        ratio: f64,
    ) -> Option<usize> {
        if ratio < from_ratio * KEEP {
            self.interval = MIN_INTERVAL;
            self.next_probe = Some(now + self.interval);
            return None;
        }
        self.interval = (self.interval * 2).min(MAX_INTERVAL);
        self.next_probe = Some(now + self.interval);
        Some(from)
    }

    fn restart(&mut self, now: Option<Instant>) {
        self.win_start = now;
        self.win_wall = 0;
        self.win_busy = 0;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_cycles_through_the_counts() {
        let mut r = Regrouper::new(Regroup::Every(2), 3);
        let mut active = 3;
        let mut seen = Vec::new();
        for _ in 0..12 {
            if let Some(n) = r.observe(active, None) {
                active = n;
                seen.push(n);
            }
        }
        assert_eq!(seen, vec![1, 2, 3, 1, 2, 3]);
    }

    #[test]
    fn one_thread_and_off_never_change() {
        let mut r = Regrouper::new(Regroup::Adaptive, 1);
        let mut off = Regrouper::new(Regroup::Off, 4);
        let s = Sample {
            wall_ns: 100,
            busy_ns: 1,
        };
        for _ in 0..1000 {
            assert_eq!(r.observe(1, Some(s)), None);
            assert_eq!(off.observe(4, Some(s)), None);
            assert!(!off.sample_next(4));
        }
    }

    #[test]
    fn threads_that_wait_more_than_they_work_are_halved_at_once() {
        let mut r = Regrouper::new(Regroup::Adaptive, 4);
        let slow = Sample {
            wall_ns: 3_000_000,
            busy_ns: 1_000_000,
        };
        assert_eq!(r.observe(4, Some(slow)), None, "opens the window");
        std::thread::sleep(WINDOW / 4);
        assert_eq!(r.observe(4, Some(slow)), Some(2), "ratio 3: hopeless");
    }

    #[test]
    fn a_probe_that_pays_is_kept_and_one_that_does_not_is_undone() {
        let mut r = Regrouper::new(Regroup::Adaptive, 4);
        let now = Instant::now();
        assert_eq!(r.judge_probe(now, 1, 1.0, 0.6), None, "kept");
        assert_eq!(r.judge_probe(now, 2, 0.6, 0.7), Some(2), "undone");
        assert_eq!(r.interval, MIN_INTERVAL * 2);
    }
}
