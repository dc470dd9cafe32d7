//! Per-VCPU hypervisor state: run state, callbacks, trap table, where its
//! vcpu_info lives, and its timers (xen-abi.md §4.1–§4.3, §4.6).
//!
//! # Timers
//! Each VCPU has Xen's single-shot timer (set_timer_op and
//! VCPUOP_set_singleshot_timer share it) and a periodic timer. As in Xen,
//! a PV VCPU starts with a **10 ms periodic timer** (configurable in
//! [`crate::hypervisor::HypervisorConfig`]); it runs while the VCPU is up
//! and guests stop it with VCPUOP_stop_periodic_timer. When the periodic
//! timer fires at time *t* the next expiry is *t* + period (Xen's rule, so
//! late firings drift rather than burst). Expiry raises VIRQ_TIMER on the
//! VCPU, if it has that VIRQ bound; otherwise the tick is lost, as in Xen.
//! All times are guest system time in nanoseconds.

use crate::ids::{Mfn, Port, VcpuId};
use serde::{Deserialize, Serialize};
use smpsim_cores::ArchState;

/// Whether a VCPU runs.
#[derive(Copy, Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum RunState {
    /// Not running (never brought up, or VCPUOP_down, or domain shut down).
    Down,
    /// Running or ready to run.
    Runnable,
    /// In SCHEDOP_block: waits for an event (its upcall_pending 0 → 1).
    Blocked,
    /// In SCHEDOP_poll: waits for a listed port, an event or the timeout.
    Polling,
}

/// Registered guest entry points (§4.6).
#[derive(Copy, Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Callbacks {
    /// Event upcall entry (`CALLBACKTYPE_event`).
    pub event: u64,
    /// Failsafe entry.
    pub failsafe: u64,
    /// 64-bit user SYSCALL entry.
    pub syscall: u64,
    /// Whether the syscall callback was registered with
    /// CALLBACKF_mask_events (events masked on entry).
    pub syscall_masks: bool,
    /// NMI entry.
    pub nmi: u64,
}

/// One entry of the virtual IDT (`trap_info`, §2.5).
#[derive(Copy, Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct TrapEntry {
    /// Bits 0–1 DPL, bit 2 mask events on entry.
    pub flags: u8,
    /// Code selector.
    pub cs: u16,
    /// Handler address (0 = none).
    pub address: u64,
}

/// An outstanding SCHEDOP_poll.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct PollState {
    /// Ports that end the poll when raised.
    pub ports: Vec<Port>,
    /// Absolute timeout in ns (None = no timeout).
    pub timeout_ns: Option<u64>,
}

/// One VCPU.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Vcpu {
    /// Its index.
    pub id: VcpuId,
    /// Whether it runs.
    pub state: RunState,
    /// Whether it has a context (VCPU 0 from the builder, others from
    /// VCPUOP_initialise).
    pub initialised: bool,
    /// The context VCPUOP_initialise gave, until VCPUOP_up starts it.
    pub start_regs: Option<Box<ArchState>>,
    /// Entry points.
    pub callbacks: Callbacks,
    /// Virtual IDT, indexed by vector.
    pub traps: Vec<TrapEntry>,
    /// Machine address of its vcpu_info (None: a VCPU ≥ 32 that has not
    /// registered one).
    pub vcpu_info: Option<u64>,
    /// Whether VCPUOP_register_vcpu_info moved it.
    pub vcpu_info_registered: bool,
    /// Single-shot timer deadline.
    pub singleshot_ns: Option<u64>,
    /// Periodic timer period (0 = stopped).
    pub periodic_ns: u64,
    /// Next periodic expiry (meaningful while up and `periodic_ns` ≠ 0).
    pub periodic_next_ns: u64,
    /// The outstanding poll, while Polling.
    pub poll: Option<PollState>,
    /// Its page-table base pointers and guest mode (see [`crate::mmu`]).
    pub mmu: VcpuMmu,
    /// Its PV CPU state: virtual CRs, DRs, IOPL, GDT/LDT, kernel stack,
    /// selectors (see [`crate::pvcpu`]).
    pub pv: crate::pvcpu::PvCpu,
}

/// A PV64 VCPU's page-table base pointers and whether it runs in guest
/// user mode (xen-abi.md §4.9): the kernel runs on `kernel_root`, guest
/// user mode on `user_root` (MMUEXT_NEW_USER_BASEPTR); the active one is
/// what the core walks.
#[derive(Copy, Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct VcpuMmu {
    /// The kernel's L4 (CR3 in kernel mode).
    pub kernel_root: Option<Mfn>,
    /// The user L4 (CR3 in user mode); None: user mode runs nothing mapped.
    pub user_root: Option<Mfn>,
    /// Whether the VCPU is in guest user mode.
    pub user_mode: bool,
}

impl VcpuMmu {
    /// The L4 the VCPU walks now.
    pub fn active_root(&self) -> Option<Mfn> {
        if self.user_mode {
            self.user_root
        } else {
            self.kernel_root
        }
    }
}

/// What expired at a timer check.
#[derive(Copy, Clone, Debug, Default, PartialEq, Eq)]
pub struct Expired {
    /// A single-shot or periodic timer fired: raise VIRQ_TIMER.
    pub virq_timer: bool,
    /// A poll timed out: the VCPU wakes.
    pub poll_timeout: bool,
}

impl Vcpu {
    /// A VCPU in its creation state: down, uninitialised, periodic timer
    /// set to `periodic_ns`.
    pub fn new(id: VcpuId, vcpu_info: Option<u64>, periodic_ns: u64) -> Self {
        Vcpu {
            id,
            state: RunState::Down,
            initialised: false,
            start_regs: None,
            callbacks: Callbacks::default(),
            traps: vec![TrapEntry::default(); 256],
            vcpu_info,
            vcpu_info_registered: false,
            singleshot_ns: None,
            periodic_ns,
            periodic_next_ns: 0,
            poll: None,
            mmu: VcpuMmu::default(),
            pv: crate::pvcpu::PvCpu::default(),
        }
    }

    /// Whether it is up (runnable, blocked or polling).
    pub fn is_up(&self) -> bool {
        self.state != RunState::Down
    }

    /// Marks it up at `now_ns`; restarts the periodic timer.
    pub fn bring_up(&mut self, now_ns: u64) {
        self.state = RunState::Runnable;
        self.pv.runstate.switch(0, now_ns);
        self.periodic_next_ns = now_ns.saturating_add(self.periodic_ns);
    }

    /// (Re)starts the periodic timer with `period_ns` (0 stops it).
    pub fn set_periodic(&mut self, period_ns: u64, now_ns: u64) {
        self.periodic_ns = period_ns;
        self.periodic_next_ns = now_ns.saturating_add(period_ns);
    }

    /// The earliest time something of this VCPU expires.
    pub fn next_deadline_ns(&self) -> Option<u64> {
        if !self.is_up() {
            return None;
        }
        let periodic = (self.periodic_ns != 0).then_some(self.periodic_next_ns);
        let poll = self.poll.as_ref().and_then(|p| p.timeout_ns);
        [self.singleshot_ns, periodic, poll]
            .into_iter()
            .flatten()
            .min()
    }

    /// Fires whatever is due at `now_ns`; a timed-out poll ends (the VCPU
    /// becomes runnable).
    pub fn expire(&mut self, now_ns: u64) -> Expired {
        let mut e = Expired::default();
        if !self.is_up() {
            return e;
        }
        if self.singleshot_ns.is_some_and(|t| t <= now_ns) {
            self.singleshot_ns = None;
            e.virq_timer = true;
        }
        if self.periodic_ns != 0 && self.periodic_next_ns <= now_ns {
            self.periodic_next_ns = now_ns.saturating_add(self.periodic_ns);
            e.virq_timer = true;
        }
        let timed_out = self
            .poll
            .as_ref()
            .and_then(|p| p.timeout_ns)
            .is_some_and(|t| t <= now_ns);
        if timed_out {
            self.wake();
            e.poll_timeout = true;
        }
        e
    }

    /// Ends a block or poll; returns whether it was sleeping.
    pub fn wake(&mut self) -> bool {
        let sleeping = matches!(self.state, RunState::Blocked | RunState::Polling);
        if sleeping {
            self.state = RunState::Runnable;
            self.poll = None;
        }
        sleeping
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_periodic_timer_runs_while_up() {
        let mut v = Vcpu::new(VcpuId(1), None, 10_000_000);
        assert_eq!(v.next_deadline_ns(), None, "down");
        v.bring_up(5);
        assert_eq!(v.next_deadline_ns(), Some(10_000_005));
        assert_eq!(v.expire(10_000_004), Expired::default());
        let e = v.expire(10_000_105);
        assert!(e.virq_timer);
        assert_eq!(v.next_deadline_ns(), Some(20_000_105), "t + period");
        v.set_periodic(0, 0);
        assert_eq!(v.next_deadline_ns(), None);
    }

    #[test]
    fn singleshot_and_poll_timeout() {
        let mut v = Vcpu::new(VcpuId(0), Some(0), 0);
        v.bring_up(0);
        v.singleshot_ns = Some(500);
        v.state = RunState::Polling;
        v.poll = Some(PollState {
            ports: vec![Port(3)],
            timeout_ns: Some(300),
        });
        assert_eq!(v.next_deadline_ns(), Some(300));
        let e = v.expire(300);
        assert_eq!(
            e,
            Expired {
                virq_timer: false,
                poll_timeout: true
            }
        );
        assert_eq!(v.state, RunState::Runnable);
        assert_eq!(v.next_deadline_ns(), Some(500));
        assert!(v.expire(600).virq_timer);
        assert_eq!(v.next_deadline_ns(), None);
        assert!(!v.wake(), "was not sleeping");
    }
}
