//! One DRAM channel: queues, bank state machines, FR-FCFS command scheduler.

use super::{Completion, DramConfig, DramConfigError, DramRequest, DramTiming, PagePolicy};
use super::{QueueFull, RowOutcome};
use smpsim_engine::{Cycle, Stats, StatsBuilder};
use std::collections::BTreeMap;

/// Row-buffer state and the earliest cycle of each command, per bank.
#[derive(Clone, Debug, Default, serde::Serialize, serde::Deserialize)]
struct Bank {
    /// The open row, if any.
    open: Option<u64>,
    /// Earliest ACT (after PRE + tRP).
    act_ready: Cycle,
    /// Earliest CAS (after ACT + tRCD).
    cas_ready: Cycle,
    /// Earliest PRE (after ACT + tRAS and the last burst).
    pre_ready: Cycle,
}

/// A queued request with its decoded bank and row.
#[derive(Clone, Debug, serde::Serialize, serde::Deserialize)]
struct Pending {
    req: DramRequest,
    arrive: Cycle,
    /// Enqueue order: the age tie-break.
    seq: u64,
    /// Flat bank index: `rank × banks + bank`.
    bank: usize,
    row: u64,
    /// Set by the first command issued for this request.
    outcome: Option<RowOutcome>,
}

#[derive(Copy, Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
enum Cmd {
    Act,
    Pre,
    Cas,
}

/// The command the scheduler picked.
#[derive(Copy, Clone, Debug, serde::Serialize, serde::Deserialize)]
struct Choice {
    time: Cycle,
    write: bool,
    index: usize,
    cmd: Cmd,
}

smpsim_engine::stat_table! {
    /// A channel's statistics.
    struct Ids(queue_max: u64) {
        /// Reads served.
        reads: counter("dram.reads", "read requests served (CAS issued)", "events"),
        /// Writes served.
        writes: counter("dram.writes", "write requests served (CAS issued)", "events"),
        /// Row hits.
        hits: counter("dram.row_hits", "requests that found their row open", "events"),
        /// Row misses.
        misses: counter("dram.row_misses", "requests that found their bank closed", "events"),
        /// Row conflicts.
        conflicts: counter("dram.row_conflicts", "requests that found another row open", "events"),
        /// Activates.
        acts: counter("dram.activates", "ACT commands issued", "events"),
        /// Precharges.
        pres: counter("dram.precharges", "PRE commands (incl. auto-precharge)", "events"),
        /// Refused enqueues.
        rejected: counter("dram.rejected", "enqueues refused: queue full", "events"),
        /// Queue occupancy.
        occupancy: histogram(
            "dram.queue_occupancy",
            "requests queued (read + write, incl. the new one) at each enqueue",
            "requests",
            queue_max
        ),
        /// Read latency.
        read_lat: histogram("dram.read_latency", "read enqueue to last data beat", "cycles", 1_000_000),
        /// Write latency.
        write_lat: histogram("dram.write_latency", "write enqueue to data written", "cycles", 1_000_000),
    }
}

/// One memory-controller channel (see the module docs for the contract).
#[derive(Debug, serde::Serialize, serde::Deserialize)]
pub struct DramChannel {
    cfg: DramConfig,
    timing: DramTiming,
    channel: u32,
    banks: Vec<Bank>,
    reads: Vec<Pending>,
    writes: Vec<Pending>,
    /// Earliest next command (one command per cycle).
    cmd_free: Cycle,
    /// End of the last burst on the data bus.
    bus_free: Cycle,
    /// Every cycle before this one has been scheduled.
    decided: Cycle,
    draining: bool,
    seq: u64,
    done: BTreeMap<(Cycle, u64), Completion>,
    stats: Stats,
    ids: Ids,
}

impl DramChannel {
    /// Channel `channel` of `cfg`, declaring its statistics into `stats`
    /// (which may already hold the partition's own) and freezing them.
    pub fn new(
        cfg: &DramConfig,
        channel: u32,
        mut stats: StatsBuilder,
    ) -> Result<Self, DramConfigError> {
        cfg.validate()?;
        if channel >= cfg.channels {
            return Err(DramConfigError::NoSuchChannel {
                channel,
                channels: cfg.channels,
            });
        }
        let queue_max = (cfg.read_queue + cfg.write_queue) as u64;
        let ids = Ids::declare(&mut stats, queue_max);
        Ok(DramChannel {
            timing: cfg.timing(),
            channel,
            banks: vec![Bank::default(); (cfg.ranks * cfg.banks) as usize],
            reads: Vec::with_capacity(cfg.read_queue),
            writes: Vec::with_capacity(cfg.write_queue),
            cmd_free: Cycle::ZERO,
            bus_free: Cycle::ZERO,
            decided: Cycle::ZERO,
            draining: false,
            seq: 0,
            done: BTreeMap::new(),
            stats: stats.build(),
            ids,
            cfg: cfg.clone(),
        })
    }

    /// The timing in core cycles.
    pub fn timing(&self) -> DramTiming {
        self.timing
    }

    /// The configuration it was built from.
    pub fn config(&self) -> &DramConfig {
        &self.cfg
    }

    /// Unloaded latency of a random access: a row conflict under the
    /// open-page policy, a row miss under the closed-page policy.
    pub fn idle_latency(&self) -> u64 {
        match self.cfg.page_policy {
            PagePolicy::Open => self.timing.idle_latency(RowOutcome::Conflict),
            PagePolicy::Closed => self.timing.idle_latency(RowOutcome::Miss),
        }
    }

    /// The statistics (the partition's own included).
    pub fn stats(&self) -> &Stats {
        &self.stats
    }

    /// The statistics, for the partition's own counters.
    pub fn stats_mut(&mut self) -> &mut Stats {
        &mut self.stats
    }

    /// The channel's clock: every cycle before it has been scheduled, so
    /// the next `enqueue` or `advance` may not be earlier.
    pub fn clock(&self) -> Cycle {
        self.decided
    }

    /// Requests waiting: `(reads, writes)`.
    pub fn queued(&self) -> (usize, usize) {
        (self.reads.len(), self.writes.len())
    }

    /// Whether a request of this kind would be accepted now.
    pub fn can_accept(&self, write: bool) -> bool {
        if write {
            self.writes.len() < self.cfg.write_queue
        } else {
            self.reads.len() < self.cfg.read_queue
        }
    }

    /// Queues `req`, arriving at `now`.
    ///
    /// # Panics
    /// If `now` is before the last `advance` bound, or the line belongs to
    /// another channel (simulator bugs).
    pub fn enqueue(&mut self, now: Cycle, req: DramRequest) -> Result<(), QueueFull> {
        let loc = self.cfg.locate(req.line);
        assert_eq!(
            loc.channel, self.channel,
            "{} belongs to DRAM channel {}, not {}",
            req.line, loc.channel, self.channel
        );
        assert!(
            now >= self.decided,
            "DRAM request at cycle {now} after the channel was advanced to {}",
            self.decided
        );
        self.schedule_until(now);
        if !self.can_accept(req.write) {
            self.stats.inc(self.ids.rejected);
            return Err(QueueFull(req));
        }
        let pending = Pending {
            req,
            arrive: now,
            seq: self.seq,
            bank: (loc.rank * self.cfg.banks + loc.bank) as usize,
            row: loc.row,
            outcome: None,
        };
        self.seq += 1;
        if req.write {
            self.writes.push(pending);
        } else {
            self.reads.push(pending);
        }
        let occupancy = (self.reads.len() + self.writes.len()) as u64;
        self.stats.record(self.ids.occupancy, occupancy);
        self.update_draining();
        Ok(())
    }

    /// The earliest cycle at which something happens: a command issues or
    /// a request completes. `None` when idle and empty.
    pub fn next_event(&self) -> Option<Cycle> {
        let done = self.done.keys().next().map(|&(t, _)| t);
        let cmd = self.choose().map(|c| c.time);
        match (done, cmd) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }

    /// Runs the channel through every cycle before `until` and returns the
    /// requests completing before `until`, in completion order (ties by
    /// enqueue order).
    ///
    /// # Panics
    /// If `until` is before an earlier bound (time going backwards).
    pub fn advance(&mut self, until: Cycle) -> Vec<Completion> {
        assert!(
            until >= self.decided,
            "DRAM channel advanced to {until} after reaching {}",
            self.decided
        );
        self.schedule_until(until);
        let later = self.done.split_off(&(until, 0));
        std::mem::replace(&mut self.done, later)
            .into_values()
            .collect()
    }

    /// Issues every command due before `limit`.
    fn schedule_until(&mut self, limit: Cycle) {
        while let Some(c) = self.choose() {
            if c.time >= limit {
                break;
            }
            self.issue(c);
        }
        self.decided = self.decided.max(limit);
    }

    fn update_draining(&mut self) {
        let depth = self.cfg.write_queue;
        let high = (depth * 3).div_ceil(4).max(1);
        if self.writes.len() >= high {
            self.draining = true;
        } else if self.writes.len() <= depth / 4 {
            self.draining = false;
        }
    }

    /// Banks whose open row some queued request wants.
    fn banks_with_hits(&self) -> Vec<bool> {
        let mut hits = vec![false; self.banks.len()];
        for p in self.reads.iter().chain(&self.writes) {
            if self.banks[p.bank].open == Some(p.row) {
                hits[p.bank] = true;
            }
        }
        hits
    }

    /// The next command `p` needs and the earliest cycle it can issue.
    fn ready(&self, p: &Pending, lower: Cycle, hits: &[bool]) -> Option<(Cycle, Cmd)> {
        let b = &self.banks[p.bank];
        let lower = lower.max(p.arrive);
        match b.open {
            Some(r) if r == p.row => {
                let bus = Cycle(self.bus_free.get().saturating_sub(self.timing.cl));
                Some((lower.max(b.cas_ready).max(bus), Cmd::Cas))
            }
            Some(_) if hits[p.bank] => None,
            Some(_) => Some((lower.max(b.pre_ready), Cmd::Pre)),
            None => Some((lower.max(b.act_ready), Cmd::Act)),
        }
    }

    /// FR-FCFS: the earliest issuable cycle; among commands ready then,
    /// the preferred queue, then CAS (row hits), then the oldest.
    fn choose(&self) -> Option<Choice> {
        let hits = self.banks_with_hits();
        let lower = self.cmd_free.max(self.decided);
        let prefer_writes = self.draining || self.reads.is_empty();
        let mut best: Option<((Cycle, bool, bool, u64), Choice)> = None;
        for (write, queue) in [(false, &self.reads), (true, &self.writes)] {
            for (index, p) in queue.iter().enumerate() {
                let Some((time, cmd)) = self.ready(p, lower, &hits) else {
                    continue;
                };
                let key = (time, write != prefer_writes, cmd != Cmd::Cas, p.seq);
                if best.as_ref().is_none_or(|(k, _)| key < *k) {
                    let choice = Choice {
                        time,
                        write,
                        index,
                        cmd,
                    };
                    best = Some((key, choice));
                }
            }
        }
        best.map(|(_, c)| c)
    }

    fn issue(&mut self, c: Choice) {
        self.cmd_free = c.time + 1;
        let queue = if c.write {
            &mut self.writes
        } else {
            &mut self.reads
        };
        let p = &mut queue[c.index];
        let bank = &mut self.banks[p.bank];
        match c.cmd {
            Cmd::Act => {
                bank.open = Some(p.row);
                bank.cas_ready = c.time + self.timing.rcd;
                bank.pre_ready = c.time + self.timing.ras;
                p.outcome.get_or_insert(RowOutcome::Miss);
                self.stats.inc(self.ids.acts);
            }
            Cmd::Pre => {
                bank.open = None;
                bank.act_ready = c.time + self.timing.rp;
                p.outcome.get_or_insert(RowOutcome::Conflict);
                self.stats.inc(self.ids.pres);
            }
            Cmd::Cas => {
                let p = queue.remove(c.index);
                self.column(c.time, p);
            }
        }
    }

    /// A CAS at `t` for `p`: the burst, the bank's precharge window, the
    /// completion and its statistics.
    fn column(&mut self, t: Cycle, p: Pending) {
        let end = t + self.timing.cl + self.timing.burst;
        self.bus_free = end;
        let bank = &mut self.banks[p.bank];
        let after = if p.req.write {
            end
        } else {
            t + self.timing.burst
        };
        bank.pre_ready = bank.pre_ready.max(after);
        if self.cfg.page_policy == PagePolicy::Closed {
            bank.open = None;
            bank.act_ready = bank.pre_ready + self.timing.rp;
            self.stats.inc(self.ids.pres);
        }
        let outcome = p.outcome.unwrap_or(RowOutcome::Hit);
        self.count(&p, outcome, end);
        let done = Completion {
            tag: p.req.tag,
            line: p.req.line,
            write: p.req.write,
            time: end,
            outcome,
        };
        self.done.insert((end, p.seq), done);
        self.update_draining();
    }

    fn count(&mut self, p: &Pending, outcome: RowOutcome, end: Cycle) {
        let ids = &self.ids;
        let (n, lat) = match p.req.write {
            true => (ids.writes, ids.write_lat),
            false => (ids.reads, ids.read_lat),
        };
        let kind = match outcome {
            RowOutcome::Hit => ids.hits,
            RowOutcome::Miss => ids.misses,
            RowOutcome::Conflict => ids.conflicts,
        };
        self.stats.inc(n);
        self.stats.inc(kind);
        self.stats.record(lat, end - p.arrive);
    }
}
