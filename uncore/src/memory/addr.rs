//! Machine address newtypes: byte addresses, frame numbers, line addresses.

use serde::{Deserialize, Serialize};
use std::fmt;

/// log2 of [`FRAME_SIZE`].
pub const FRAME_SHIFT: u32 = 12;
/// Bytes in a machine frame (4 KiB).
pub const FRAME_SIZE: u64 = 1 << FRAME_SHIFT;
/// log2 of [`LINE_SIZE`].
pub const LINE_SHIFT: u32 = 6;
/// Bytes in a coherence line (64, as on x86-64): the granule of the
/// ownership rule, of [`LineAddr`] and of DRAM requests.
pub const LINE_SIZE: u64 = 1 << LINE_SHIFT;

/// A byte address in machine memory (all frames, not a domain's view).
#[derive(
    Copy, Clone, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize,
)]
#[serde(transparent)]
pub struct MachineAddr(pub u64);

impl MachineAddr {
    /// The raw byte address.
    #[inline]
    pub const fn get(self) -> u64 {
        self.0
    }

    /// The frame this byte lies in.
    #[inline]
    pub const fn mfn(self) -> Mfn {
        Mfn(self.0 >> FRAME_SHIFT)
    }

    /// Offset of this byte inside its frame (0..4096).
    #[inline]
    pub const fn frame_offset(self) -> u64 {
        self.0 & (FRAME_SIZE - 1)
    }

    /// The coherence line this byte lies in.
    #[inline]
    pub const fn line(self) -> LineAddr {
        LineAddr(self.0 >> LINE_SHIFT)
    }

    /// Offset of this byte inside its line (0..64).
    #[inline]
    pub const fn line_offset(self) -> u64 {
        self.0 & (LINE_SIZE - 1)
    }

    /// `self + bytes`, or `None` past `u64::MAX`.
    #[inline]
    pub const fn checked_add(self, bytes: u64) -> Option<MachineAddr> {
        match self.0.checked_add(bytes) {
            Some(a) => Some(MachineAddr(a)),
            None => None,
        }
    }
}

impl fmt::Display for MachineAddr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:#x}", self.0)
    }
}

/// A machine frame number: a 4 KiB frame of machine memory.
#[derive(
    Copy, Clone, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize,
)]
#[serde(transparent)]
pub struct Mfn(pub u64);

impl Mfn {
    /// The raw frame number.
    #[inline]
    pub const fn get(self) -> u64 {
        self.0
    }

    /// Address of the frame's first byte.
    #[inline]
    pub const fn base(self) -> MachineAddr {
        MachineAddr(self.0 << FRAME_SHIFT)
    }

    /// Address of byte `offset` of the frame (`offset` < [`FRAME_SIZE`]:
    /// a field of a page such as shared_info or a vcpu_info).
    #[inline]
    pub const fn addr(self, offset: u64) -> MachineAddr {
        MachineAddr((self.0 << FRAME_SHIFT) + offset)
    }
}

impl fmt::Display for Mfn {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "mfn {:#x}", self.0)
    }
}

/// A coherence line of machine memory, as a line number (byte address / 64).
#[derive(
    Copy, Clone, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize,
)]
#[serde(transparent)]
pub struct LineAddr(pub u64);

impl LineAddr {
    /// The line number (byte address >> 6).
    #[inline]
    pub const fn get(self) -> u64 {
        self.0
    }

    /// Address of the line's first byte.
    #[inline]
    pub const fn base(self) -> MachineAddr {
        MachineAddr(self.0 << LINE_SHIFT)
    }

    /// The frame the line lies in.
    #[inline]
    pub const fn mfn(self) -> Mfn {
        Mfn(self.0 >> (FRAME_SHIFT - LINE_SHIFT))
    }
}

impl fmt::Display for LineAddr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "line {:#x}", self.0 << LINE_SHIFT)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn addresses_split_into_frames_and_lines() {
        let a = MachineAddr(0x12_345);
        assert_eq!(a.mfn(), Mfn(0x12));
        assert_eq!(a.frame_offset(), 0x345);
        assert_eq!(a.line(), LineAddr(0x12_345 >> 6));
        assert_eq!(a.line_offset(), 0x05);
        assert_eq!(a.line().base(), MachineAddr(0x12_340));
        assert_eq!(a.line().mfn(), Mfn(0x12));
        assert_eq!(Mfn(3).base(), MachineAddr(0x3000));
        assert_eq!(Mfn(3).addr(0x40), MachineAddr(0x3040));
        assert_eq!(MachineAddr(u64::MAX).checked_add(1), None);
        assert_eq!(a.to_string(), "0x12345");
        assert_eq!(a.line().to_string(), "line 0x12340");
    }
}
