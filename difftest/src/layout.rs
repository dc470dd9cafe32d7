//! Fixed addresses of the sandbox, identical natively and in the simulator.
//!
//! All regions sit below 2 GiB so that absolute `[disp32]` operands reach
//! them, far from where Linux places PIE binaries, heaps and mmaps.
//!
//! ```text
//! CTL_BASE   0x2000_0000  control page (native only: register blocks)
//! CODE_BASE  0x2001_0000  the sequence, then an exit stub (native: a jump
//!                         to the epilogue; simulator: ud2 at END)
//! DATA_BASE  0x2002_0000  data page (memory operands) ...
//!            0x2002_1000  ... stack page (RSP starts at STACK_TOP)
//! ```
//!
//! Reserved registers: `r15` holds `DATA_BASE + R15_OFFSET` (the base of
//! memory operands) and `rsp` holds `STACK_TOP`; the generator never writes
//! r15, and changes rsp only through balanced stack instructions.

/// The native control page (not mapped in the simulator).
pub const CTL_BASE: u64 = 0x2000_0000;
/// First byte of the sequence.
pub const CODE_BASE: u64 = 0x2001_0000;
/// Size of the code region in bytes.
pub const CODE_SIZE: usize = 4096;
/// Longest sequence in bytes (room for the exit stub).
pub const CODE_MAX: usize = CODE_SIZE - 16;
/// First byte of the data region (data page + stack page).
pub const DATA_BASE: u64 = 0x2002_0000;
/// Size of the data region in bytes: compared byte for byte.
pub const DATA_SIZE: usize = 8192;
/// Bytes of the data page proper (memory operands land here).
pub const DATA_PAGE: u64 = 4096;
/// r15's offset from `DATA_BASE`.
pub const R15_OFFSET: u64 = 0x400;
/// Initial RSP: the middle of the stack page.
pub const STACK_TOP: u64 = DATA_BASE + 0x1800;
