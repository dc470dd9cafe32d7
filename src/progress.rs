//! A one-line progress display on stderr for long runs.
//!
//! # Owns
//! Drawing `simulated cycles | MIPS | ETA` on stderr while a machine runs,
//! fed by the machine's progress hook ([`Machine::set_progress`], called at
//! most every ~100 ms of host time).
//!
//! # Invariants
//! Nothing is drawn unless stderr is a terminal, and nothing before the run
//! has taken one second of host time; the line is erased when the display
//! is dropped (with the machine, at the end of the run). The display never
//! touches simulated state, so results do not depend on it.

use crate::machine::{Machine, Progress};
use std::io::{IsTerminal, Write};
use std::time::{Duration, Instant};

/// Runs shorter than this show nothing.
const QUIET_FOR: Duration = Duration::from_secs(1);

/// The display's state.
#[derive(Debug)]
pub struct Display {
    start: Instant,
    shown: bool,
}

impl Default for Display {
    fn default() -> Self {
        Display {
            start: Instant::now(),
            shown: false,
        }
    }
}

/// A count with an SI suffix: `12.3M`.
fn si(x: f64) -> String {
    let (v, s) = if x >= 1e9 {
        (x / 1e9, "G")
    } else if x >= 1e6 {
        (x / 1e6, "M")
    } else if x >= 1e3 {
        (x / 1e3, "k")
    } else {
        (x, "")
    };
    format!("{v:.1}{s}")
}

/// The progress line for `p` after `elapsed` host seconds.
pub fn line(p: &Progress, elapsed: f64) -> String {
    let secs = elapsed.max(1e-9);
    let mips = p.instructions as f64 / secs / 1e6;
    let mut s = format!(
        "smpsim: {} cycles, {} instructions, {mips:.2} MIPS",
        si(p.cycle as f64),
        si(p.instructions as f64)
    );
    if let Some(max) = p.max_cycles.filter(|m| *m > 0) {
        let frac = (p.cycle as f64 / max as f64).min(1.0);
        let rate = p.cycle as f64 / secs;
        let left = if rate > 0.0 {
            format!("{:.0}s", max.saturating_sub(p.cycle) as f64 / rate)
        } else {
            "?".into()
        };
        s.push_str(&format!(
            ", {:.1}% of {} cycles, ETA {left}",
            100.0 * frac,
            si(max as f64)
        ));
    }
    s
}

impl Display {
    /// Draws `p` (once the run is older than a second).
    pub fn update(&mut self, p: &Progress) {
        let elapsed = self.start.elapsed();
        if elapsed < QUIET_FOR {
            return;
        }
        let mut e = std::io::stderr().lock();
        let _ = write!(e, "\r{}\x1b[K", line(p, elapsed.as_secs_f64()));
        let _ = e.flush();
        self.shown = true;
    }
}

impl Drop for Display {
    fn drop(&mut self) {
        if self.shown {
            let mut e = std::io::stderr().lock();
            let _ = write!(e, "\r\x1b[K");
            let _ = e.flush();
        }
    }
}

/// Gives `m` a progress display if stderr is a terminal; otherwise leaves
/// it quiet.
pub fn attach(m: &mut Machine) {
    if std::io::stderr().is_terminal() {
        let mut d = Display::default();
        m.set_progress(Box::new(move |p| d.update(&p)));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn line_shows_mips_and_eta_with_a_limit() {
        let p = Progress {
            cycle: 5_000_000,
            instructions: 2_000_000,
            max_cycles: Some(10_000_000),
        };
        assert_eq!(
            line(&p, 2.0),
            "smpsim: 5.0M cycles, 2.0M instructions, 1.00 MIPS, 50.0% of 10.0M cycles, ETA 2s"
        );
        let q = Progress {
            max_cycles: None,
            ..p
        };
        assert_eq!(
            line(&q, 1.0),
            "smpsim: 5.0M cycles, 2.0M instructions, 2.00 MIPS"
        );
    }
}
