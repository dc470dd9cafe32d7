//! Ctrl-C and `kill`: stop a run at the next barrier and keep its results.
//!
//! # Owns
//! The process's SIGINT and SIGTERM handlers while a command runs.
//!
//! # Invariants
//! The first signal only sets a flag; the machine polls it in the barrier
//! hook ([`crate::machine::Machine::set_interrupt`]) and stops there, so the
//! summary, statistics and console of the cycles run so far are still
//! written. A second signal while the flag is set exits at once with
//! status 128 + the signal number (130 for Ctrl-C), for a run that does not
//! reach a barrier or a user who does not want to wait.
//!
//! # Errors
//! [`install`] fails only if the operating system refuses the handler.

use std::sync::atomic::AtomicBool;
use std::sync::Arc;

/// Exit status of a run stopped by a signal (the shell's 128 + SIGINT).
pub const EXIT_INTERRUPTED: u8 = 130;

/// Installs the handlers and returns the flag the first signal sets.
pub fn install() -> std::io::Result<Arc<AtomicBool>> {
    use signal_hook::consts::{SIGINT, SIGTERM};
    let flag = Arc::new(AtomicBool::new(false));
    for sig in [SIGINT, SIGTERM] {
        // Registered first, so it sees the flag as it was before this
        // signal: set means this is the second one.
        signal_hook::flag::register_conditional_shutdown(sig, 128 + sig, Arc::clone(&flag))?;
        signal_hook::flag::register(sig, Arc::clone(&flag))?;
    }
    Ok(flag)
}
