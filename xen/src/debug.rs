//! The PV side of x86 debug traps (the core side is
//! [`smpsim_cores::debug`]): Xen's rules for the guest's DR0–DR7
//! (`set_debugreg`, also behind `mov` to DRn), the guest-visible DR6 after a
//! #DB, and what Xen's emulator adds around an emulated instruction.
//!
//! - **Registers**: [`set_debugreg`] refuses what Xen refuses (-EINVAL for
//!   upper-half bits of DR6/DR7, -EPERM for a DR0–3 address outside the
//!   guest's range, DR7.GD, or an I/O breakpoint without CR4.DE while DR7
//!   has an enable; -ENODEV for DR4/5 with CR4.DE, or no such register);
//!   a refused write changes nothing. Accepted values reach the core at
//!   once ([`sync_core`] after every hypercall and emulation), so a single
//!   DR7 write takes effect on the next instruction (XTF `debug-regs`'s
//!   "latch" test). The core checks instruction and data breakpoints;
//!   I/O breakpoints (Xen's `dr7_emul`) are checked here, by the
//!   emulator's `in`/`out`.
//! - **DR6**: a #DB replaces the guest's B0–B3 with the new ones and ORs
//!   in the other bits (BS), as Xen's `x86_merge_dr6` does; the guest
//!   reads the result with `mov` from DR6 or get_debugreg.
//! - **Around an emulated instruction** (Xen's `x86_emulate` retire
//!   flags): with TF set at its start, a #DB trap with BS follows it; an
//!   emulated `in`/`out` matching an I/O breakpoint adds Bn; an emulated
//!   MOV SS / POP SS instead sets the core's shadow and holds these bits,
//!   plus its own data-breakpoint hit, back for the next instruction
//!   ([`smpsim_cores::debug`]). A #DB held by the shadow of an
//!   instruction that then enters Xen (`syscall`, `int`, a fault) is taken
//!   in Xen's context and discarded — as a Xen with the XSA-260 fix does
//!   (it logs "Hit #DB in Xen context" and continues).

use crate::abi::Errno;
use crate::pvcpu::{self, PvCpu};
use smpsim_cores::debug::{dr6, dr7, DebugState};
use smpsim_cores::ArchState;

/// Where a PV64 guest may not point DR0–3: Xen's part of the address space
/// (and the non-canonical hole below it), as `access_ok` rules.
const GUEST_LOW_END: u64 = 1 << 47;
const XEN_END: u64 = 0xffff_8800_0000_0000;
/// DR6 bits that read as 0 (bit 12; the upper half is refused).
const DR6_ZERO: u64 = 1 << 12;
/// DR7 bits that read as 0: 11, 12, 14, 15.
const DR7_ZERO: u64 = 0xd800;

/// Xen's `set_debugreg(v, reg, value)` for the guest's `pv` state: see the
/// module docs. On success the new value is in `pv.dr`.
pub fn set_debugreg(pv: &mut PvCpu, reg: usize, value: u64) -> Result<(), Errno> {
    let de = pv.cr4() & pvcpu::CR4_DE != 0;
    match reg {
        0..=3 => {
            if (GUEST_LOW_END..XEN_END).contains(&value) {
                return Err(Errno::Perm);
            }
            pv.dr[reg] = value;
        }
        4 | 5 if de => return Err(Errno::NoDev),
        4 | 6 => {
            if value >> 32 != 0 {
                return Err(Errno::Inval);
            }
            pv.dr[6] = (value & !DR6_ZERO) | pvcpu::DR6_DEFAULT;
        }
        5 | 7 => {
            if value >> 32 != 0 {
                return Err(Errno::Inval);
            }
            let value = (value & !DR7_ZERO) | pvcpu::DR7_DEFAULT;
            if value & pvcpu::DR7_GD != 0 {
                return Err(Errno::Perm);
            }
            let io = (0..4).any(|i| dr7::rw(value, i) == dr7::RW_IO);
            if value & dr7::ENABLES != 0 && io && !de {
                return Err(Errno::Perm);
            }
            pv.dr[7] = value;
        }
        _ => return Err(Errno::NoDev),
    }
    Ok(())
}

/// The debug registers as the core checks them (DR0–3, DR7; it ignores
/// the I/O breakpoints). With no breakpoint enabled it is all zero, so a
/// VCPU that uses none has the registers of one that never touched them.
pub fn core_view(pv: &PvCpu, shadow: &DebugState) -> DebugState {
    let (addr, dr7) = if pv.dr[7] & dr7::ENABLES == 0 {
        ([0; 4], 0)
    } else {
        ([pv.dr[0], pv.dr[1], pv.dr[2], pv.dr[3]], pv.dr[7])
    };
    DebugState {
        addr,
        dr7,
        ..*shadow
    }
}

/// Brings the core's copy of the debug registers in `regs` up to `pv`
/// (the shadow state is the core's and stays).
pub fn sync_core(pv: &PvCpu, regs: &mut ArchState) {
    regs.debug = core_view(pv, &regs.debug);
}

/// The guest's DR6 after a #DB with `bits` (positive polarity): B0–B3
/// replaced, the other bits merged.
pub fn merge_dr6(old: u64, bits: u64) -> u64 {
    let positive = (old ^ pvcpu::DR6_DEFAULT) & !dr6::BP_MASK;
    ((positive | bits) ^ pvcpu::DR6_DEFAULT) & 0xffff_ffff
}

#[cfg(test)]
#[path = "debug/tests.rs"]
mod tests;
