//! Dynamic grouping: how many host threads run the partitions.
//!
//! Results never depend on placement (messages are ordered by
//! `(time, src, seq)`, idle skipping and termination are decided by the
//! leader from per-partition values), so the engine may move partitions
//! between host threads at any barrier. On a loaded or small host a thread
//! that is descheduled holds every epoch up: then one thread running
//! everything beats two waiting for each other. The [`Regrouper`] measures
//! host time per unit of work (one per epoch plus one per partition run) in
//! windows of about 20 ms, and now and then *probes* another active-thread
//! count for one window: it keeps the probe if it was clearly faster, goes
//! back otherwise and probes less often (exponential backoff up to 1 s). A
//! window much slower than the running estimate (the host got loaded)
//! triggers a probe at once. Threads left out park and cost nothing.

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
/// A probe is kept only when at least this much faster.
const KEEP: f64 = 0.9;
/// A window this much slower than the estimate triggers a probe.
const ALARM: f64 = 1.5;
/// Clock reads happen every this many epochs.
const CLOCK_EVERY: u64 = 8;

/// Decides the active-thread count, once per barrier.
#[derive(Debug)]
pub(crate) struct Regrouper {
    mode: Regroup,
    threads: usize,
    epochs: u64,
    win_start: Option<Instant>,
    win_units: u64,
    /// Host ns per unit at the current count.
    estimate: Option<f64>,
    /// While probing: the count to go back to and its estimate.
    probe_from: Option<(usize, f64)>,
    next_probe: Option<Instant>,
    interval: Duration,
    /// Direction of the next probe where both are possible.
    down: bool,
}

impl Regrouper {
    /// A policy for `threads` host threads.
    pub(crate) fn new(mode: Regroup, threads: usize) -> Self {
        Regrouper {
            mode,
            threads,
            epochs: 0,
            win_start: None,
            win_units: 0,
            estimate: None,
            probe_from: None,
            next_probe: None,
            interval: MIN_INTERVAL,
            down: true,
        }
    }

    /// One epoch ended with `active` threads running, `ran` partitions
    /// run. Returns the count to use from the next epoch, if it changes.
    pub(crate) fn observe(&mut self, active: usize, ran: usize) -> Option<usize> {
        if self.threads <= 1 {
            return None;
        }
        self.epochs += 1;
        match self.mode {
            Regroup::Off => None,
            Regroup::Every(k) => {
                (self.epochs.is_multiple_of(k.max(1))).then_some(active % self.threads + 1)
            }
            Regroup::Adaptive => {
                self.win_units += ran as u64 + 1;
                if !self.epochs.is_multiple_of(CLOCK_EVERY) {
                    return None;
                }
                self.adapt(active)
            }
        }
    }

    fn adapt(&mut self, active: usize) -> Option<usize> {
        let now = Instant::now();
        let Some(start) = self.win_start else {
            self.restart(now);
            return None;
        };
        let elapsed = now.duration_since(start);
        if elapsed < WINDOW {
            return None;
        }
        let rate = elapsed.as_nanos() as f64 / self.win_units.max(1) as f64;
        self.restart(now);
        if let Some((from, from_rate)) = self.probe_from.take() {
            return self.judge_probe(now, from, from_rate, rate);
        }
        let estimate = match self.estimate {
            None => {
                self.next_probe = Some(now + WINDOW);
                rate
            }
            Some(e) if rate > e * ALARM => {
                self.next_probe = Some(now);
                self.interval = MIN_INTERVAL;
                rate
            }
            Some(e) => 0.75 * e + 0.25 * rate,
        };
        self.estimate = Some(estimate);
        if self.next_probe.is_some_and(|t| now >= t) {
            let target = self.probe_target(active);
            self.probe_from = Some((active, estimate));
            return Some(target);
        }
        None
    }

    fn judge_probe(
        &mut self,
        now: Instant,
        from: usize,
        from_rate: f64,
        rate: f64,
    ) -> Option<usize> {
        if rate < from_rate * KEEP {
            self.estimate = Some(rate);
            self.interval = MIN_INTERVAL;
            self.next_probe = Some(now + self.interval);
            return None;
        }
        self.estimate = Some(from_rate);
        self.interval = (self.interval * 2).min(MAX_INTERVAL);
        self.next_probe = Some(now + self.interval);
        self.down = !self.down;
        Some(from)
    }

    /// Halve or double the active count (one thread, or all, at the ends).
    fn probe_target(&mut self, active: usize) -> usize {
        let down = if active <= 1 {
            false
        } else if active >= self.threads {
            true
        } else {
            self.down
        };
        if down {
            (active / 2).max(1)
        } else {
            (active * 2).min(self.threads)
        }
    }

    fn restart(&mut self, now: Instant) {
        self.win_start = Some(now);
        self.win_units = 0;
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
            if let Some(n) = r.observe(active, 1) {
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
        for _ in 0..1000 {
            assert_eq!(r.observe(1, 3), None);
            assert_eq!(off.observe(4, 3), None);
        }
    }

    #[test]
    fn a_probe_that_pays_is_kept_and_one_that_does_not_is_undone() {
        let mut r = Regrouper::new(Regroup::Adaptive, 4);
        let now = Instant::now();
        r.estimate = Some(100.0);
        assert_eq!(r.probe_target(4), 2);
        assert_eq!(r.judge_probe(now, 4, 100.0, 50.0), None, "kept");
        assert_eq!(r.judge_probe(now, 2, 50.0, 60.0), Some(2), "undone");
        assert_eq!(r.interval, MIN_INTERVAL * 2);
    }
}
