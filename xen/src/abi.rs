//! Numbers and layouts of Xen's PV64 guest ABI (shared/xen-abi.md).
//!
//! Only what smpsim implements is named here; every value carries the
//! section of xen-abi.md it comes from.

/// Hypercall numbers (§1.1).
pub mod hypercall {
    /// `set_trap_table(traps)`.
    pub const SET_TRAP_TABLE: u64 = 0;
    /// `mmu_update(reqs, count, done, foreigndom)`.
    pub const MMU_UPDATE: u64 = 1;
    /// `set_callbacks(event, failsafe, syscall)`.
    pub const SET_CALLBACKS: u64 = 4;
    /// `update_va_mapping(va, pte, flags)`.
    pub const UPDATE_VA_MAPPING: u64 = 14;
    /// `multicall(calls, nr)`.
    pub const MULTICALL: u64 = 13;
    /// `set_timer_op(abs_ns)`.
    pub const SET_TIMER_OP: u64 = 15;
    /// `xen_version(cmd, arg)`.
    pub const XEN_VERSION: u64 = 17;
    /// `console_io(cmd, count, buf)`.
    pub const CONSOLE_IO: u64 = 18;
    /// `vm_assist(cmd, type)`.
    pub const VM_ASSIST: u64 = 21;
    /// `iret` (jumped to, never called).
    pub const IRET: u64 = 23;
    /// `vcpu_op(cmd, vcpuid, arg)`.
    pub const VCPU_OP: u64 = 24;
    /// `mmuext_op(ops, count, done, foreigndom)`.
    pub const MMUEXT_OP: u64 = 26;
    /// `sched_op(cmd, arg)`.
    pub const SCHED_OP: u64 = 29;
    /// `callback_op(cmd, arg)`.
    pub const CALLBACK_OP: u64 = 30;
    /// `event_channel_op(cmd, arg)`.
    pub const EVENT_CHANNEL_OP: u64 = 32;
    /// `memory_op(cmd, arg)`.
    pub const MEMORY_OP: u64 = 12;
    /// `grant_table_op(cmd, ops, count)`.
    pub const GRANT_TABLE_OP: u64 = 20;
    /// `domctl(op)`: the toolstack's domain control (privileged).
    pub const DOMCTL: u64 = 36;
    /// `smpsim_op(cmd, ...)`: **smpsim-specific, not a Xen hypercall.**
    /// Xen's table (§1.1) uses 0–42 and reserves 48–55 for the
    /// architecture; 56 is unassigned (Xen's `NR_hypercalls` is 64), so a
    /// real Xen answers it with -ENOSYS. Sub-commands in [`super::smpsimop`].
    pub const SMPSIM_OP: u64 = 56;
}

/// Sub-commands of the smpsim-specific [`hypercall::SMPSIM_OP`] (not Xen ABI).
pub mod smpsimop {
    /// `smpsim_op(RECORD_SAMPLES, u32 histogram, u64 *samples, u32 count)`:
    /// adds `count` (≤ [`MAX_SAMPLES`]) u64 samples to a guest-measured
    /// latency histogram (ids in [`guest_hist`]). Returns 0; -EINVAL for
    /// an unknown id or a count above the limit, -EFAULT if the array
    /// cannot be read (then nothing is recorded).
    pub const RECORD_SAMPLES: u32 = 0;
    /// Most samples one RECORD_SAMPLES call may pass.
    pub const MAX_SAMPLES: u32 = 512;
    /// `smpsim_op(ROI, u32 phase)`: marks the start (phase 1) or end
    /// (phase 0) of the guest's region of interest; the simulator may
    /// switch timing models there (`switch.at_roi`). Returns 0; -EINVAL
    /// for another phase.
    pub const ROI: u32 = 1;

    /// Guest-measured histogram ids (values in TSC cycles).
    pub mod guest_hist {
        /// Event-channel round trip: send → reply upcall observed.
        pub const EVTCHN_RTT: u32 = 0;
        /// Lock acquire: first attempt → lock held.
        pub const LOCK_WAIT: u32 = 1;
        /// Barrier: arrival → release.
        pub const BARRIER_WAIT: u32 = 2;
        /// Names, indexed by id (the order of reports).
        pub const NAMES: [&str; 3] = ["evtchn_rtt", "lock_wait", "barrier_wait"];
    }
}

/// Xen errno values, returned negated in RAX (Appendix C).
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
#[repr(i64)]
pub enum Errno {
    /// Operation not permitted.
    Perm = 1,
    /// No such entry (for example a VCPU the domain does not have).
    NoEnt = 2,
    /// No such domain.
    Srch = 3,
    /// Out of memory (for example no frame for a memory exchange).
    NoMem = 12,
    /// No such device (for example a debug register that does not exist).
    NoDev = 19,
    /// Permission denied (for example a cache flush without I/O memory).
    Acces = 13,
    /// Bad address: a guest pointer that cannot be read or written.
    Fault = 14,
    /// Busy (for example register_vcpu_info twice).
    Busy = 16,
    /// Already exists (a VIRQ already bound, a VCPU initialised twice).
    Exist = 17,
    /// Invalid argument.
    Inval = 22,
    /// Result out of range (a v2 grant entry v1 cannot hold).
    Range = 34,
    /// No space left (no free event-channel port).
    NoSpc = 28,
    /// Not implemented.
    NoSys = 38,
    /// Argument out of the function's domain (a continuation index that
    /// does not fit).
    Dom = 33,
    /// Operation not supported (for example vNUMA information for a
    /// domain without vNUMA).
    OpNotSupp = 95,
}

impl Errno {
    /// The value the guest sees in RAX: `-errno` as a two's-complement u64.
    pub fn to_rax(self) -> u64 {
        (-(self as i64)) as u64
    }
}

/// `DOMID_SELF`: "the calling domain" in domain-id arguments.
pub const DOMID_SELF: u16 = 0x7FF0;

/// Event-channel sub-commands (§3.1).
pub mod evtchnop {
    /// Connect to a remote unbound port.
    pub const BIND_INTERDOMAIN: u64 = 0;
    /// Bind a virtual IRQ.
    pub const BIND_VIRQ: u64 = 1;
    /// Close a port.
    pub const CLOSE: u64 = 3;
    /// Signal a port.
    pub const SEND: u64 = 4;
    /// Query a port.
    pub const STATUS: u64 = 5;
    /// Allocate a port for a remote domain to bind.
    pub const ALLOC_UNBOUND: u64 = 6;
    /// Bind an IPI port to a VCPU.
    pub const BIND_IPI: u64 = 7;
    /// Change the VCPU a port notifies.
    pub const BIND_VCPU: u64 = 8;
    /// Unmask a port.
    pub const UNMASK: u64 = 9;
    /// FIFO: register a VCPU's control block.
    pub const INIT_CONTROL: u64 = 11;
    /// FIFO: add an event-array page.
    pub const EXPAND_ARRAY: u64 = 12;
    /// FIFO: set a port's priority.
    pub const SET_PRIORITY: u64 = 13;
}

/// `EVTCHNSTAT_*` values of `EVTCHNOP_status` (§3.1).
pub mod evtchnstat {
    /// Port not in use.
    pub const CLOSED: u32 = 0;
    /// Waiting for a remote domain to bind.
    pub const UNBOUND: u32 = 1;
    /// Connected to a remote domain's port.
    pub const INTERDOMAIN: u32 = 2;
    /// Bound to a virtual IRQ.
    pub const VIRQ: u32 = 4;
    /// Bound as an IPI port.
    pub const IPI: u32 = 5;
}

/// `vcpu_op` sub-commands (§4.2).
pub mod vcpuop {
    /// Set a VCPU's initial context.
    pub const INITIALISE: u32 = 0;
    /// Make an initialised VCPU runnable.
    pub const UP: u32 = 1;
    /// Make a VCPU non-runnable.
    pub const DOWN: u32 = 2;
    /// 1 if up, 0 if down.
    pub const IS_UP: u32 = 3;
    /// Start the periodic timer.
    pub const SET_PERIODIC_TIMER: u32 = 6;
    /// Stop the periodic timer.
    pub const STOP_PERIODIC_TIMER: u32 = 7;
    /// Arm the single-shot timer (calling VCPU only).
    pub const SET_SINGLESHOT_TIMER: u32 = 8;
    /// Disarm the single-shot timer (calling VCPU only).
    pub const STOP_SINGLESHOT_TIMER: u32 = 9;
    /// Move the VCPU's vcpu_info.
    pub const REGISTER_VCPU_INFO: u32 = 10;
}

/// `xen_version` sub-commands (§4.5).
pub mod xenver {
    /// (major << 16) | minor.
    pub const VERSION: u32 = 0;
    /// `char[16]`.
    pub const EXTRAVERSION: u32 = 1;
    /// 144 bytes.
    pub const COMPILE_INFO: u32 = 2;
    /// `char[1024]`.
    pub const CAPABILITIES: u32 = 3;
    /// `char[64]`.
    pub const CHANGESET: u32 = 4;
    /// u64 virt_start.
    pub const PLATFORM_PARAMETERS: u32 = 5;
    /// {u32 submap_idx; u32 submap}.
    pub const GET_FEATURES: u32 = 6;
    /// Returns 4096.
    pub const PAGESIZE: u32 = 7;
    /// `u8[16]` domain handle.
    pub const GUEST_HANDLE: u32 = 8;
    /// `char[1024]`.
    pub const COMMANDLINE: u32 = 9;
}

/// `callback_op` commands and callback types (§4.6).
pub mod callback {
    /// `CALLBACKOP_register`.
    pub const OP_REGISTER: u32 = 0;
    /// `CALLBACKOP_unregister`.
    pub const OP_UNREGISTER: u32 = 1;
    /// Event upcall.
    pub const TYPE_EVENT: u16 = 0;
    /// Failsafe.
    pub const TYPE_FAILSAFE: u16 = 1;
    /// 64-bit SYSCALL.
    pub const TYPE_SYSCALL: u16 = 2;
    /// Deprecated sysenter (accepted, unused).
    pub const TYPE_SYSENTER_DEPRECATED: u16 = 3;
    /// NMI.
    pub const TYPE_NMI: u16 = 4;
    /// sysenter (accepted, unused).
    pub const TYPE_SYSENTER: u16 = 5;
    /// 32-bit SYSCALL (accepted, unused).
    pub const TYPE_SYSCALL32: u16 = 7;
    /// `CALLBACKF_mask_events`: mask events on entry.
    pub const MASK_EVENTS: u16 = 1;
}

/// Number of VIRQs (§3.2).
pub const NR_VIRQS: u32 = 24;
/// `VIRQ_TIMER`: a per-VCPU timer fired (§3.2).
pub const VIRQ_TIMER: u32 = 0;
/// `VIRQ_DEBUG`: per-VCPU debug request (§3.2).
pub const VIRQ_DEBUG: u32 = 1;
/// `VIRQ_XENOPROF` (§3.2).
pub const VIRQ_XENOPROF: u32 = 7;
/// `VIRQ_XENPMU` (§3.2).
pub const VIRQ_XENPMU: u32 = 13;
/// `VIRQ_DOM_EXC`: a domain shut down (global; Xen sends it to the
/// domain that bound it, the control domain).
pub const VIRQ_DOM_EXC: u32 = 3;

/// `start_info.flags` bits.
pub mod sif {
    /// `SIF_PRIVILEGED`: the domain is privileged.
    pub const PRIVILEGED: u32 = 1 << 0;
    /// `SIF_INITDOMAIN`: the domain is the initial control domain.
    pub const INITDOMAIN: u32 = 1 << 1;
}

/// Whether a VIRQ is per-VCPU (bound once per VCPU, never moved).
pub fn virq_is_per_vcpu(virq: u32) -> bool {
    matches!(virq, VIRQ_TIMER | VIRQ_DEBUG | VIRQ_XENOPROF | VIRQ_XENPMU)
}

/// Ports of the 2-level ABI on x86-64 (§2.3).
pub const EVTCHN_2L_NR_CHANNELS: u32 = 4096;

/// Byte offsets in `shared_info` (§2.3).
pub mod shared_info {
    /// Size of one `vcpu_info`.
    pub const VCPU_INFO_SIZE: u64 = 64;
    /// VCPUs with a `vcpu_info` slot inside shared_info.
    pub const LEGACY_MAX_VCPUS: u32 = 32;
    /// `evtchn_pending[64]`.
    pub const EVTCHN_PENDING: u64 = 2048;
    /// `evtchn_mask[64]`.
    pub const EVTCHN_MASK: u64 = 2560;
    /// `wc_version`.
    pub const WC_VERSION: u64 = 3072;
}

/// Byte offsets in `vcpu_info` (§2.2).
pub mod vcpu_info {
    /// `evtchn_upcall_pending` (u8).
    pub const UPCALL_PENDING: u64 = 0;
    /// `evtchn_upcall_mask` (u8).
    pub const UPCALL_MASK: u64 = 1;
    /// `evtchn_pending_sel` (u64).
    pub const PENDING_SEL: u64 = 8;
    /// `arch.cr2`.
    pub const CR2: u64 = 16;
    /// `time` (`vcpu_time_info`, 32 bytes).
    pub const TIME: u64 = 32;
}

/// `sched_op` sub-commands and shutdown reasons (§4.1).
pub mod sched {
    /// Give up the CPU, stay runnable.
    pub const YIELD: u64 = 0;
    /// Block until an event.
    pub const BLOCK: u64 = 1;
    /// Shut the domain down.
    pub const SHUTDOWN: u64 = 2;
    /// Block until one of some ports is pending.
    pub const POLL: u64 = 3;
    /// Shut another domain down (privileged).
    pub const REMOTE_SHUTDOWN: u64 = 4;
    /// Latch the reason of the eventual shutdown.
    pub const SHUTDOWN_CODE: u64 = 5;
    /// `SHUTDOWN_poweroff`: success.
    pub const SHUTDOWN_POWEROFF: u32 = 0;
    /// `SHUTDOWN_reboot`.
    pub const SHUTDOWN_REBOOT: u32 = 1;
    /// `SHUTDOWN_crash`: failure.
    pub const SHUTDOWN_CRASH: u32 = 3;
    /// Largest valid reason (`SHUTDOWN_MAX`).
    pub const SHUTDOWN_MAX: u32 = 5;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn errno_is_negated_in_rax() {
        assert_eq!(Errno::Inval.to_rax(), (-22i64) as u64);
        assert_eq!(Errno::NoSys.to_rax() as i64, -38);
    }

    #[test]
    fn per_vcpu_virqs() {
        assert!(virq_is_per_vcpu(VIRQ_TIMER));
        assert!(!virq_is_per_vcpu(2));
    }
}
