//! The terminal during a run: the guest console, live, above a one-line
//! progress display.
//!
//! # Owns
//! Drawing `elapsed | simulated cycles | MIPS | ETA` on stderr while a
//! machine runs, fed by the machine's progress hook
//! ([`Machine::set_progress`], called at most every ~100 ms of host time),
//! and printing guest console lines to stdout as the service ticks produce
//! them ([`Machine::set_console`]).
//!
//! # Invariants
//! The progress line is drawn only when stderr is a terminal, and not
//! before the run has taken one second of host time; it is erased before
//! every console line (which goes to stdout, flushed, so a pipe sees it
//! live) and when the display is dropped (with the machine, at the end of
//! the run). The display never touches simulated state, so results do not
//! depend on it.

use crate::machine::{Machine, Progress};
use std::io::{IsTerminal, Write};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// Runs shorter than this show nothing.
const QUIET_FOR: Duration = Duration::from_secs(1);

/// The display's state.
#[derive(Debug)]
pub struct Display {
    start: Instant,
    shown: bool,
    /// Whether to draw the progress line at all (stderr is a terminal).
    draw: bool,
}

impl Default for Display {
    fn default() -> Self {
        Display {
            start: Instant::now(),
            shown: false,
            draw: std::io::stderr().is_terminal(),
        }
    }
}

/// Host seconds as `42s`, `3m07s` or `1h02m`.
fn duration(secs: f64) -> String {
    let s = secs.max(0.0).round() as u64;
    match s {
        0..=59 => format!("{s}s"),
        60..=3599 => format!("{}m{:02}s", s / 60, s % 60),
        _ => format!("{}h{:02}m", s / 3600, s / 60 % 60),
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
        "smpsim: {} elapsed, {} cycles, {} instructions, {mips:.2} MIPS",
        duration(elapsed),
        si(p.cycle as f64),
        si(p.instructions as f64)
    );
    if let Some(max) = p.max_cycles.filter(|m| *m > 0) {
        let frac = (p.cycle as f64 / max as f64).min(1.0);
        let rate = p.cycle as f64 / secs;
        let left = if rate > 0.0 {
            duration(max.saturating_sub(p.cycle) as f64 / rate)
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
        if !self.draw || elapsed < QUIET_FOR {
            return;
        }
        let mut e = std::io::stderr().lock();
        let _ = write!(e, "\r{}\x1b[K", line(p, elapsed.as_secs_f64()));
        let _ = e.flush();
        self.shown = true;
    }

    /// Prints a guest console line on stdout, erasing the progress line
    /// first (the next update draws it again below).
    pub fn console(&mut self, line: &str) {
        self.erase();
        let mut o = std::io::stdout().lock();
        let _ = writeln!(o, "{line}");
        let _ = o.flush();
    }

    fn erase(&mut self) {
        if self.shown {
            let mut e = std::io::stderr().lock();
            let _ = write!(e, "\r\x1b[K");
            let _ = e.flush();
            self.shown = false;
        }
    }
}

impl Drop for Display {
    fn drop(&mut self) {
        self.erase();
    }
}

/// The display attached to a machine, kept by the caller to erase the
/// progress line before printing anything after the run.
#[derive(Debug, Clone)]
pub struct Terminal(Arc<Mutex<Display>>);

impl Terminal {
    /// Erases the progress line (a later progress update would draw it
    /// again; after the run there is none).
    pub fn finish(&self) {
        self.lock().erase();
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Display> {
        // A poisoned lock means a write panicked; drawing on is harmless.
        self.0.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// Gives `m` a live console on stdout and, if stderr is a terminal, a
/// progress line below it.
pub fn attach(m: &mut Machine) -> Terminal {
    let t = Terminal(Arc::new(Mutex::new(Display::default())));
    let (p, c) = (t.clone(), t.clone());
    m.set_progress(Box::new(move |x| p.lock().update(&x)));
    m.set_console(Box::new(move |l| c.lock().console(l)));
    t
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
            "smpsim: 2s elapsed, 5.0M cycles, 2.0M instructions, 1.00 MIPS, 50.0% of 10.0M cycles, ETA 2s"
        );
        let q = Progress {
            max_cycles: None,
            ..p
        };
        assert_eq!(
            line(&q, 125.0),
            "smpsim: 2m05s elapsed, 5.0M cycles, 2.0M instructions, 0.02 MIPS"
        );
    }
}
