//! x86 debug traps (Intel SDM vol. 3 ch. 17): RFLAGS.TF single-step, the
//! MOV SS / POP SS shadow, and the DR0–DR3 breakpoints that DR7 enables.
//!
//! # What is modelled
//! - **Single-step**: an instruction that starts with TF set and completes
//!   (its [`Exit`] is [`Exit::InsnLimit`]) is followed by a #DB trap with
//!   DR6.BS. One that faults gets no single-step trap (the fault goes to
//!   the hypervisor). A REP string instruction traps after each iteration,
//!   as hardware does. The instruction that sets TF (`popf`) does not trap
//!   after itself; the one that clears it does.
//! - **Instruction breakpoints** (R/W 00): a #DB *fault* before the
//!   instruction at DRn runs (RIP on it), unless RFLAGS.RF is set; RF is
//!   cleared when an instruction completes, so a handler that returns with
//!   RF set runs the instruction once without the breakpoint.
//! - **Data breakpoints** (R/W 01 write, 11 read or write; LEN 1, 2, 8, 4
//!   bytes, the address aligned down to LEN): a #DB *trap* after the
//!   instruction whose load or store overlaps the range.
//! - **I/O breakpoints** (R/W 10, CR4.DE) are never checked here: a PV
//!   guest's `in`/`out` always reach the hypervisor's emulator, which
//!   checks them ([`DebugState::io_match`]).
//! - **The MOV SS shadow**: whoever executes a MOV SS / POP SS (for a PV
//!   guest, the hypervisor's emulator: smpsim's cores do not model segment
//!   registers) sets [`DebugState::shadow`] and puts the instruction's own
//!   #DB conditions (its data breakpoint hits, BS if TF) in
//!   [`DebugState::pending`]. The following instruction then runs with
//!   them held back: if it completes, one #DB trap after it reports them
//!   together with its own; if it leaves guest context instead (`syscall`,
//!   a fault: both go to the hypervisor), the held #DB is taken in
//!   hypervisor context, where Xen notes and discards it — the behaviour
//!   of a Xen not vulnerable to XSA-260.
//!
//! The #DB is reported as [`Exit::Fault`] with vector 1 and the DR6 bits it
//! sets (positive polarity: B0–B3, BS) in [`Fault::addr`]; a trap's
//! registers are those after the instruction. Nothing of this runs unless
//! [`DebugState::armed`] (TF or RF set, a DR7 enable, a shadow): one check
//! per [`crate::FuncCore::run`] call.

use crate::arch::{flags, ArchState};
use crate::func::{Exit, Fault};
use crate::mem::{GuestMemory, MemStop};
use crate::FuncCore;
use serde::{Deserialize, Serialize};

/// DR6 bits, in positive polarity (the hypervisor merges them into the
/// guest's DR6, whose reserved bits read as 1).
pub mod dr6 {
    /// B0 (B1–B3 follow): breakpoint 0's condition was met.
    pub const B0: u64 = 1;
    /// B0–B3.
    pub const BP_MASK: u64 = 0xf;
    /// BS: single-step.
    pub const BS: u64 = 1 << 14;
}

/// DR7 fields.
pub mod dr7 {
    /// The L0/G0..L3/G3 enable bits.
    pub const ENABLES: u64 = 0xff;
    /// R/W value of an instruction breakpoint.
    pub const RW_EXEC: u64 = 0;
    /// R/W value of a data-write breakpoint.
    pub const RW_WRITE: u64 = 1;
    /// R/W value of an I/O breakpoint (with CR4.DE).
    pub const RW_IO: u64 = 2;
    /// R/W value of a data read-or-write breakpoint.
    pub const RW_READ_WRITE: u64 = 3;

    /// Whether breakpoint `i` (0–3) is enabled (L or G) in `dr7`.
    pub fn enabled(dr7: u64, i: usize) -> bool {
        dr7 >> (2 * i) & 3 != 0
    }

    /// Breakpoint `i`'s R/W field.
    pub fn rw(dr7: u64, i: usize) -> u64 {
        dr7 >> (16 + 4 * i) & 3
    }

    /// Breakpoint `i`'s length in bytes (LEN 00, 01, 10, 11 = 1, 2, 8, 4).
    pub fn len(dr7: u64, i: usize) -> u64 {
        [1, 2, 8, 4][(dr7 >> (18 + 4 * i) & 3) as usize]
    }
}

/// RFLAGS.RF: resume flag (suppresses instruction breakpoints for one
/// instruction).
pub const RF: u64 = 1 << 16;

/// A context's debug registers as the hardware uses them, and its MOV SS
/// shadow. Part of [`ArchState`], so it travels with a VCPU's registers.
#[derive(Copy, Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct DebugState {
    /// DR0–DR3: breakpoint linear addresses.
    pub addr: [u64; 4],
    /// DR7 as the core checks it: enables, R/W and LEN fields. Only
    /// instruction and data breakpoints fire here; I/O ones are the
    /// hypervisor's (see the module docs).
    pub dr7: u64,
    /// The next instruction runs in a MOV SS / POP SS shadow.
    pub shadow: bool,
    /// DR6 bits (positive polarity) of a #DB the shadow holds back until
    /// the shadowed instruction completes.
    pub pending: u64,
}

impl DebugState {
    /// Whether the next instruction needs the debug checks: TF or RF set,
    /// a breakpoint enabled, or a shadow.
    #[inline]
    pub fn armed(&self, rflags: u64) -> bool {
        rflags & (flags::TF | RF) != 0 || self.dr7 & dr7::ENABLES != 0 || self.shadow
    }

    /// DR6 B-bits of the enabled instruction breakpoints at `rip`.
    pub fn exec_match(&self, rip: u64) -> u64 {
        self.hits(|i| dr7::rw(self.dr7, i) == dr7::RW_EXEC && self.addr[i] == rip)
    }

    /// DR6 B-bits of the enabled data breakpoints that an access of
    /// `size` bytes at `addr` meets (`write`: a store).
    pub fn data_match(&self, addr: u64, size: u64, write: bool) -> u64 {
        self.hits(|i| {
            let rw = dr7::rw(self.dr7, i);
            let kind = rw == dr7::RW_READ_WRITE || (write && rw == dr7::RW_WRITE);
            kind && self.overlaps(i, addr, size)
        })
    }

    /// DR6 B-bits of the I/O breakpoints enabled in `dr7` (the guest's
    /// full DR7, I/O enables included) that an access of `size` bytes to
    /// `port` meets. The caller checks CR4.DE.
    pub fn io_match(&self, dr7: u64, port: u64, size: u64) -> u64 {
        let d = DebugState { dr7, ..*self };
        d.hits(|i| dr7::rw(dr7, i) == dr7::RW_IO && d.overlaps(i, port, size))
    }

    fn overlaps(&self, i: usize, addr: u64, size: u64) -> bool {
        let len = dr7::len(self.dr7, i);
        let start = self.addr[i] & !(len - 1);
        addr < start.wrapping_add(len) && start < addr.wrapping_add(size.max(1))
    }

    fn hits(&self, meets: impl Fn(usize) -> bool) -> u64 {
        (0..4)
            .filter(|&i| dr7::enabled(self.dr7, i) && meets(i))
            .fold(0, |b, i| b | dr6::B0 << i)
    }
}

/// The #DB of a debug condition: vector 1, RIP `rip`, DR6 bits in `addr`.
pub fn db_fault(rip: u64, bits: u64) -> Fault {
    Fault {
        vector: 1,
        rip,
        addr: bits,
        error_code: 0,
        detail: format!("debug exception (DR6 bits {bits:#x})"),
    }
}

/// A [`GuestMemory`] that notes which data breakpoints its loads and
/// stores meet.
struct Watched<'a> {
    inner: &'a mut dyn GuestMemory,
    dbg: DebugState,
    hits: u64,
}

impl GuestMemory for Watched<'_> {
    fn read(&mut self, addr: u64, buf: &mut [u8]) -> Result<(), MemStop> {
        self.inner.read(addr, buf)
    }
    fn write(&mut self, addr: u64, data: &[u8]) -> Result<(), MemStop> {
        self.inner.write(addr, data)
    }
    fn load(&mut self, addr: u64, size: u8) -> Result<u64, MemStop> {
        let v = self.inner.load(addr, size)?;
        self.hits |= self.dbg.data_match(addr, u64::from(size), false);
        Ok(v)
    }
    fn store(&mut self, addr: u64, size: u8, value: u64) -> Result<(), MemStop> {
        self.inner.store(addr, size, value)?;
        self.hits |= self.dbg.data_match(addr, u64::from(size), true);
        Ok(())
    }
    fn fence(&mut self) -> Result<(), MemStop> {
        self.inner.fence()
    }
}

/// [`FuncCore::run`] while [`DebugState::armed`]: one instruction at a
/// time with the checks of the module docs, until `max` instructions, a
/// #DB or another exit.
pub(crate) fn run_armed(
    core: &mut FuncCore,
    st: &mut ArchState,
    mem: &mut dyn GuestMemory,
    max: u64,
) -> Exit {
    let mut left = max;
    while left > 0 {
        let exit = if st.debug.armed(st.rflags) {
            step(core, st, mem)
        } else {
            // Disarmed (popf cleared TF): the rest runs at full speed until
            // a `popf` sets TF again.
            core.run_plain(st, mem, left)
        };
        if !matches!(exit, Exit::InsnLimit) {
            return exit;
        }
        left -= core.last_executed().max(1).min(left);
    }
    Exit::InsnLimit
}

/// One instruction under the debug checks.
fn step(core: &mut FuncCore, st: &mut ArchState, mem: &mut dyn GuestMemory) -> Exit {
    let before = (st.debug, st.rflags & RF);
    let held = std::mem::take(&mut st.debug.pending);
    st.debug.shadow = false;
    if before.1 == 0 {
        let bp = st.debug.exec_match(st.rip);
        if bp != 0 {
            return Exit::Fault(db_fault(st.rip, bp | held));
        }
    }
    let tf = st.rflags & flags::TF != 0;
    st.rflags &= !RF;
    let mut w = Watched {
        inner: mem,
        dbg: st.debug,
        hits: 0,
    };
    let exit = core.run_plain(st, &mut w, 1);
    let hits = w.hits;
    match exit {
        Exit::InsnLimit => {
            let bits = held | hits | if tf { dr6::BS } else { 0 };
            if bits != 0 {
                return Exit::Fault(db_fault(st.rip, bits));
            }
            Exit::InsnLimit
        }
        Exit::Retry => {
            // Nothing of the instruction happened: it runs again as before.
            (st.debug, st.rflags) = (before.0, st.rflags | before.1);
            Exit::Retry
        }
        // A fault, `syscall` or `hlt` enters the hypervisor: a held #DB is
        // taken there and discarded (module docs).
        other => other,
    }
}

#[cfg(test)]
#[path = "debug/tests.rs"]
mod tests;
