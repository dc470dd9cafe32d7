//! Branch prediction: a hybrid of gshare and bimodal 2-bit counters with a
//! per-PC chooser, a set-associative BTB and a return-address stack.
//!
//! Direction history is updated speculatively at fetch and repaired from a
//! [`Checkpoint`] on a squash; the counters and the BTB are trained at
//! commit (correct path only).

use super::config::BpredConfig;
use serde::{Deserialize, Serialize};

/// Speculative predictor state saved per fetched instruction.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Checkpoint {
    /// Global history before the instruction.
    pub ghr: u64,
    /// RAS top-of-stack index before the instruction.
    pub ras_tos: usize,
    /// RAS entry at `ras_tos` before the instruction.
    pub ras_top: u64,
}

/// A direction prediction with what training needs.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct DirPred {
    /// Predicted taken.
    pub taken: bool,
    /// gshare's vote.
    pub gshare: bool,
    /// bimodal's vote.
    pub bimodal: bool,
    /// gshare index used.
    pub gidx: usize,
}

/// The predictor of one context.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Bpred {
    gshare: Vec<u8>,
    bimodal: Vec<u8>,
    chooser: Vec<u8>,
    hist_mask: u64,
    /// Speculative global history.
    pub ghr: u64,
    btb: Vec<(u64, u64, u64)>, // (tag rip, target, lru stamp)
    btb_ways: usize,
    stamp: u64,
    ras: Vec<u64>,
    ras_tos: usize,
}

fn bump(c: &mut u8, up: bool) {
    if up {
        *c = (*c + 1).min(3);
    } else {
        *c = c.saturating_sub(1);
    }
}

fn hash(rip: u64) -> usize {
    // Truncation is the point: low address bits index the tables.
    (rip ^ (rip >> 13)) as usize
}

impl Bpred {
    /// Empty tables (counters weakly not-taken, chooser weakly bimodal).
    pub fn new(c: &BpredConfig) -> Self {
        Self {
            gshare: vec![1; 1 << c.gshare_bits],
            bimodal: vec![1; 1 << c.bimodal_bits],
            chooser: vec![1; 1 << c.chooser_bits],
            hist_mask: (1u64 << c.history_bits) - 1,
            ghr: 0,
            btb: vec![(u64::MAX, 0, 0); c.btb_sets.max(1) * c.btb_ways.max(1)],
            btb_ways: c.btb_ways.max(1),
            stamp: 0,
            ras: vec![0; c.ras_entries.max(1)],
            ras_tos: 0,
        }
    }

    /// The speculative state to restore if this instruction is squashed.
    pub fn checkpoint(&self) -> Checkpoint {
        Checkpoint {
            ghr: self.ghr,
            ras_tos: self.ras_tos,
            ras_top: self.ras[self.ras_tos],
        }
    }

    /// Restores speculative state.
    pub fn restore(&mut self, c: &Checkpoint) {
        self.ghr = c.ghr;
        self.ras_tos = c.ras_tos;
        self.ras[c.ras_tos] = c.ras_top;
    }

    /// Predicts a conditional branch at `rip`.
    pub fn predict_dir(&self, rip: u64) -> DirPred {
        let h = hash(rip);
        let gidx = (h ^ (self.ghr & self.hist_mask) as usize) & (self.gshare.len() - 1);
        let g = self.gshare[gidx] >= 2;
        let b = self.bimodal[h & (self.bimodal.len() - 1)] >= 2;
        let use_g = self.chooser[h & (self.chooser.len() - 1)] >= 2;
        DirPred {
            taken: if use_g { g } else { b },
            gshare: g,
            bimodal: b,
            gidx,
        }
    }

    /// Shifts an outcome into the speculative history.
    pub fn push_history(&mut self, taken: bool) {
        self.ghr = (self.ghr << 1) | u64::from(taken);
    }

    /// Trains the direction tables with a committed outcome.
    pub fn train_dir(&mut self, rip: u64, p: &DirPred, taken: bool) {
        let h = hash(rip);
        bump(&mut self.gshare[p.gidx], taken);
        let bl = self.bimodal.len() - 1;
        bump(&mut self.bimodal[h & bl], taken);
        if p.gshare != p.bimodal {
            let cl = self.chooser.len() - 1;
            bump(&mut self.chooser[h & cl], p.gshare == taken);
        }
    }

    /// BTB lookup.
    pub fn btb_lookup(&self, rip: u64) -> Option<u64> {
        let set = hash(rip) % (self.btb.len() / self.btb_ways);
        let ways = &self.btb[set * self.btb_ways..(set + 1) * self.btb_ways];
        ways.iter().find(|w| w.0 == rip).map(|w| w.1)
    }

    /// Installs or refreshes a BTB entry (LRU replacement).
    pub fn btb_update(&mut self, rip: u64, target: u64) {
        self.stamp += 1;
        let set = hash(rip) % (self.btb.len() / self.btb_ways);
        let ways = &mut self.btb[set * self.btb_ways..(set + 1) * self.btb_ways];
        let i = match ways.iter().position(|w| w.0 == rip) {
            Some(i) => i,
            None => (0..ways.len())
                .min_by_key(|&i| ways[i].2)
                .expect("at least one way"),
        };
        ways[i] = (rip, target, self.stamp);
    }

    /// Pushes a return address (call).
    pub fn ras_push(&mut self, ret: u64) {
        self.ras_tos = (self.ras_tos + 1) % self.ras.len();
        self.ras[self.ras_tos] = ret;
    }

    /// Pops a predicted return address.
    pub fn ras_pop(&mut self) -> u64 {
        let v = self.ras[self.ras_tos];
        self.ras_tos = (self.ras_tos + self.ras.len() - 1) % self.ras.len();
        v
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn learns_an_alternating_branch_through_history() {
        let mut p = Bpred::new(&BpredConfig::default());
        let mut wrong = 0;
        for i in 0..2000 {
            let taken = i % 2 == 0;
            let d = p.predict_dir(0x400);
            if i >= 1000 && d.taken != taken {
                wrong += 1;
            }
            p.push_history(taken);
            p.train_dir(0x400, &d, taken);
        }
        assert_eq!(wrong, 0, "gshare captures a period-2 pattern");
    }

    #[test]
    fn ras_and_btb_round_trip() {
        let mut p = Bpred::new(&BpredConfig::default());
        let c = p.checkpoint();
        p.ras_push(0x10);
        p.ras_push(0x20);
        assert_eq!(p.ras_pop(), 0x20);
        p.restore(&c);
        assert_eq!(p.checkpoint(), c);
        assert_eq!(p.btb_lookup(0x99), None);
        p.btb_update(0x99, 0x1234);
        assert_eq!(p.btb_lookup(0x99), Some(0x1234));
    }
}
