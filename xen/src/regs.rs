//! Guest register state as the hypervisor sees it: the core's
//! [`ArchState`] itself (the sixteen general registers in x86 encoding
//! order, RIP, RFLAGS and the two segment bases a 64-bit kernel uses), with
//! the register indices of [`smpsim_cores::arch::reg`] and the RFLAGS bits
//! of [`smpsim_cores::arch::flags`]. This module adds what the PV ABI
//! needs on top: named accessors ([`GuestRegs`]), the flat selectors and
//! the C-width truncations of hypercall arguments.
//!
//! Segment selectors are not kept: PV64 guests here always run in guest
//! kernel mode with the flat selectors CS = 0xe033 and SS = 0xe02b
//! (xen-abi.md §2.5).
//!
//! RFLAGS bit 1 always reads 1 ([`smpsim_cores::arch::flags::FIXED1`], an [`ArchState`]
//! invariant): wherever the hypervisor loads RFLAGS from a guest-supplied
//! image (the builder's start-of-day value, a VCPUOP_initialise context,
//! an iret frame) it sets that bit.

use smpsim_cores::arch::reg::{R10, R8, RDI, RDX, RSI, RSP};
use smpsim_cores::ArchState;

/// `FLAT_KERNEL_CS` of a PV64 guest (GDT entry 262, RPL 3).
pub const FLAT_KERNEL_CS: u64 = 0xe033;
/// `FLAT_KERNEL_SS` (GDT entry 261, RPL 3).
pub const FLAT_KERNEL_SS: u64 = 0xe02b;

/// The registers of the PV calling convention, by name.
pub trait GuestRegs {
    /// The stack pointer.
    fn rsp(&self) -> u64;
    /// The five hypercall arguments: RDI, RSI, RDX, R10, R8 (§1.2).
    fn hypercall_args(&self) -> [u64; 5];
}

impl GuestRegs for ArchState {
    fn rsp(&self) -> u64 {
        self.gpr[RSP]
    }

    fn hypercall_args(&self) -> [u64; 5] {
        [
            self.gpr[RDI],
            self.gpr[RSI],
            self.gpr[RDX],
            self.gpr[R10],
            self.gpr[R8],
        ]
    }
}

/// The low 32 bits of a register: hypercall arguments declared `int` or
/// `unsigned int` in Xen's C ignore the upper half.
pub fn low32(x: u64) -> u32 {
    x as u32 // deliberate truncation to the argument's C width
}

/// The low 16 bits (`domid_t`, `uint16_t` fields).
pub fn low16(x: u64) -> u16 {
    x as u16 // deliberate truncation to the field's C width
}

/// Whether `va` is canonical for 48-bit virtual addresses.
pub fn is_canonical(va: u64) -> bool {
    let top = va >> 47;
    top == 0 || top == 0x1_ffff
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn argument_registers_are_the_xen_five() {
        let mut r = ArchState::default();
        for (i, g) in r.gpr.iter_mut().enumerate() {
            *g = 100 + i as u64;
        }
        assert_eq!(r.hypercall_args(), [107, 106, 102, 110, 108]);
        assert_eq!(r.rsp(), 104);
    }

    #[test]
    fn canonical_addresses() {
        assert!(is_canonical(0x0000_7fff_ffff_f000));
        assert!(is_canonical(0xffff_8000_0000_0000));
        assert!(!is_canonical(0x0000_8000_0000_0000));
    }
}
