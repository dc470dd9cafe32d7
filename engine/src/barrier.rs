//! The epoch barrier: spin, then yield, then park, tuned by measured waits.
//!
//! The last thread to arrive is the *leader*: it runs the serial barrier
//! phase (the closure given to [`EpochBarrier::wait`]) while the others wait,
//! then releases everyone by bumping the generation. Waiters spin (yielding
//! every 256 turns) for a bounded number of iterations, then sleep on a
//! condition variable, so 64 threads on 2 host cores do not burn their time
//! slices. The bound adapts: a wait that ends in sleep halves it (spinning
//! did not pay: the others are slow or descheduled, and a spinning waiter
//! takes a core from them); a wait released late in the spin doubles it.
//! It starts long when host threads do not outnumber host cores and short
//! when they do.
//!
//! The number of threads may change between generations
//! ([`EpochBarrier::set_threads`], from the serial phase): the engine parks
//! threads it does not need.
//!
//! Lost wake-ups are impossible: a sleeper registers itself (`sleepers`,
//! SeqCst) before re-checking the generation under the mutex, and the leader
//! bumps the generation (SeqCst) before reading `sleepers`; either the
//! sleeper sees the new generation or the leader sees the sleeper and
//! notifies under the mutex.
//!
//! A watchdog bounds how long a waiter sleeps: past it, the waiter reports
//! which epoch is stuck and how many threads never arrived.

use parking_lot::{Condvar, Mutex};
use std::sync::atomic::{AtomicU32, AtomicU64, AtomicUsize, Ordering::Relaxed, Ordering::SeqCst};
use std::time::{Duration, Instant};

/// A reusable barrier for a fixed number of threads with a serial phase.
#[derive(Debug)]
pub struct EpochBarrier {
    threads: AtomicUsize,
    arrived: AtomicUsize,
    generation: AtomicU64,
    sleepers: AtomicUsize,
    lock: Mutex<()>,
    cond: Condvar,
    /// Current spin bound (a tuning value: races on it are harmless).
    spin_limit: AtomicU32,
    watchdog: Duration,
}

/// Shortest and longest spin bounds.
const MIN_SPIN: u32 = 64;
const MAX_SPIN: u32 = 1 << 15;

/// What a waiter learned when the watchdog fired.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Stuck {
    /// Barrier generation (epoch count) that never completed.
    pub generation: u64,
    /// Threads that had arrived.
    pub arrived: usize,
    /// Threads expected.
    pub threads: usize,
}

impl EpochBarrier {
    /// A barrier for `threads` threads; `oversubscribed` selects the short
    /// spin used when host threads outnumber host cores.
    pub fn new(threads: usize, oversubscribed: bool, watchdog: Duration) -> Self {
        EpochBarrier {
            threads: AtomicUsize::new(threads),
            arrived: AtomicUsize::new(0),
            generation: AtomicU64::new(0),
            sleepers: AtomicUsize::new(0),
            lock: Mutex::new(()),
            cond: Condvar::new(),
            spin_limit: AtomicU32::new(if oversubscribed { MIN_SPIN } else { 1 << 14 }),
            watchdog,
        }
    }

    /// Sets how many threads the next generations wait for; only from
    /// the serial phase (nobody has arrived at the next generation yet).
    pub fn set_threads(&self, threads: usize) {
        self.threads.store(threads, SeqCst);
    }

    /// Arrives; the last arriver runs `serial` before anyone leaves.
    /// Returns what `serial` returned to the leader, `None` to the others,
    /// or `Err` if the watchdog fired while waiting.
    pub fn wait<R>(&self, serial: impl FnOnce() -> R) -> Result<Option<R>, Stuck> {
        let gen = self.generation.load(SeqCst);
        if self.arrived.fetch_add(1, SeqCst) + 1 == self.threads.load(SeqCst) {
            self.arrived.store(0, SeqCst);
            let r = serial();
            self.generation.store(gen + 1, SeqCst);
            if self.sleepers.load(SeqCst) > 0 {
                let _guard = self.lock.lock();
                self.cond.notify_all();
            }
            return Ok(Some(r));
        }
        self.wait_for_release(gen).map(|()| None)
    }

    fn wait_for_release(&self, gen: u64) -> Result<(), Stuck> {
        let limit = self.spin_limit.load(Relaxed);
        for i in 0..limit {
            if self.generation.load(SeqCst) != gen {
                if i > limit / 2 && limit < MAX_SPIN {
                    self.spin_limit.store(limit * 2, Relaxed);
                }
                return Ok(());
            }
            if i % 256 == 255 {
                std::thread::yield_now();
            } else {
                std::hint::spin_loop();
            }
        }
        if limit > MIN_SPIN {
            self.spin_limit.store(limit / 2, Relaxed);
        }
        let deadline = Instant::now() + self.watchdog;
        self.sleepers.fetch_add(1, SeqCst);
        let mut guard = self.lock.lock();
        let result = loop {
            if self.generation.load(SeqCst) != gen {
                break Ok(());
            }
            if self.cond.wait_until(&mut guard, deadline).timed_out()
                && self.generation.load(SeqCst) == gen
            {
                break Err(Stuck {
                    generation: gen,
                    arrived: self.arrived.load(SeqCst),
                    threads: self.threads.load(SeqCst),
                });
            }
        };
        drop(guard);
        self.sleepers.fetch_sub(1, SeqCst);
        result
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::AtomicU64;

    #[test]
    fn serial_phase_runs_once_per_generation_after_all_arrive() {
        for oversubscribed in [false, true] {
            let threads = 4;
            let b = EpochBarrier::new(threads, oversubscribed, Duration::from_secs(30));
            let work = AtomicU64::new(0);
            let serial_seen = Mutex::new(Vec::new());
            std::thread::scope(|s| {
                for _ in 0..threads {
                    s.spawn(|| {
                        for _ in 0..200 {
                            work.fetch_add(1, SeqCst);
                            b.wait(|| serial_seen.lock().push(work.load(SeqCst)))
                                .expect("no watchdog");
                        }
                    });
                }
            });
            let seen = serial_seen.into_inner();
            assert_eq!(seen.len(), 200);
            for (i, w) in seen.iter().enumerate() {
                assert_eq!(*w, (i as u64 + 1) * threads as u64);
            }
        }
    }

    #[test]
    fn watchdog_reports_a_missing_thread() {
        let b = EpochBarrier::new(2, true, Duration::from_millis(50));
        let err = b.wait(|| {}).expect_err("the second thread never comes");
        assert_eq!(
            err,
            Stuck {
                generation: 0,
                arrived: 1,
                threads: 2
            }
        );
    }
}
