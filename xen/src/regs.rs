//! Guest register state as the hypervisor sees it.
//!
//! The core's architectural state converts to and from [`VcpuRegs`]: the
//! sixteen general registers in x86 encoding order, RIP, RFLAGS and the two
//! segment bases a 64-bit kernel uses. Segment selectors are not kept: PV64
//! guests here always run in guest kernel mode with the flat selectors
//! CS = 0xe033 and SS = 0xe02b (xen-abi.md §2.5).

/// Index of RAX in [`VcpuRegs::gpr`].
pub const RAX: usize = 0;
/// Index of RCX.
pub const RCX: usize = 1;
/// Index of RDX.
pub const RDX: usize = 2;
/// Index of RBX.
pub const RBX: usize = 3;
/// Index of RSP.
pub const RSP: usize = 4;
/// Index of RBP.
pub const RBP: usize = 5;
/// Index of RSI.
pub const RSI: usize = 6;
/// Index of RDI.
pub const RDI: usize = 7;
/// Index of R8 (R9 … R15 follow).
pub const R8: usize = 8;
/// Index of R10.
pub const R10: usize = 10;
/// Index of R11.
pub const R11: usize = 11;

/// `FLAT_KERNEL_CS` of a PV64 guest (GDT entry 262, RPL 3).
pub const FLAT_KERNEL_CS: u64 = 0xe033;
/// `FLAT_KERNEL_SS` (GDT entry 261, RPL 3).
pub const FLAT_KERNEL_SS: u64 = 0xe02b;
/// RFLAGS.IF.
pub const RFLAGS_IF: u64 = 1 << 9;
/// RFLAGS.IOPL (two bits).
pub const RFLAGS_IOPL: u64 = 3 << 12;
/// RFLAGS.VM.
pub const RFLAGS_VM: u64 = 1 << 17;
/// RFLAGS bit 1, always set on x86.
pub const RFLAGS_FIXED: u64 = 1 << 1;

/// One VCPU's registers.
#[derive(Copy, Clone, Debug, Default, PartialEq, Eq)]
pub struct VcpuRegs {
    /// RAX RCX RDX RBX RSP RBP RSI RDI R8 … R15.
    pub gpr: [u64; 16],
    /// Instruction pointer.
    pub rip: u64,
    /// Flags.
    pub rflags: u64,
    /// FS base.
    pub fs_base: u64,
    /// GS base (the kernel's; there is no guest user mode here).
    pub gs_base: u64,
}

impl VcpuRegs {
    /// The stack pointer.
    pub fn rsp(&self) -> u64 {
        self.gpr[RSP]
    }

    /// The five hypercall arguments: RDI, RSI, RDX, R10, R8 (§1.2).
    pub fn hypercall_args(&self) -> [u64; 5] {
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
        let mut r = VcpuRegs::default();
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
