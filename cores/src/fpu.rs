//! The x87, SSE and XSAVE architectural state of one hardware context.
//!
//! [`FpuState`] lives inside [`crate::ArchState`] (so every model, the
//! hypervisor and checkpoints see one copy) and the executor works on it in
//! place: it is passed to the executor by reference for each run, never
//! copied into the register file.
//!
//! # Layout
//! - x87: `st` holds the eight physical registers R0–R7 as 80-bit values in
//!   the low 80 bits of a `u128` (64-bit significand with explicit integer
//!   bit, then sign and 15-bit exponent); ST(i) is R((TOP + i) mod 8) with
//!   TOP in bits 13:11 of `fsw`. `ftw` is the full two-bit-per-register tag
//!   word (00 valid, 01 zero, 10 special, 11 empty) the way `fnstenv`
//!   stores it; FXSAVE's abridged form is derived from it.
//! - MMX: MM0–MM7 are the significands (low 64 bits) of R0–R7, not of
//!   ST(i) ([`FpuState::mm`]); an MMX write sets bits 79:64 to ones, and
//!   every MMX instruction but `emms` sets TOP to 0 and all tags valid
//!   ([`FpuState::mmx_enter`]); `emms` sets TOP to 0 and all tags empty.
//! - SSE: `xmm` the sixteen 128-bit registers, `mxcsr`.
//! - XSAVE: `xcr0` (x87 and SSE always set; XSETBV is privileged and only
//!   the hypervisor changes it).
//! - CR0.TS (`ts`): set by the hypervisor (Xen's `fpu_taskswitch`, or a
//!   guest's `clts`/CR0 write through the PV emulator); while it is set any
//!   x87/MMX/SSE instruction raises #NM (vector 7) before doing anything.
//!
//! The reset values are those of `fninit` and of MXCSR after reset:
//! FCW 0x037f, FSW 0, all tags empty, MXCSR 0x1f80.

use serde::{Deserialize, Serialize};

/// MXCSR bits.
pub mod mxcsr {
    /// Invalid-operation flag.
    pub const IE: u32 = 1 << 0;
    /// Denormal-operand flag.
    pub const DE: u32 = 1 << 1;
    /// Divide-by-zero flag.
    pub const ZE: u32 = 1 << 2;
    /// Overflow flag.
    pub const OE: u32 = 1 << 3;
    /// Underflow flag.
    pub const UE: u32 = 1 << 4;
    /// Precision (inexact) flag.
    pub const PE: u32 = 1 << 5;
    /// All six exception flags.
    pub const FLAGS: u32 = 0x3f;
    /// Denormals-are-zero.
    pub const DAZ: u32 = 1 << 6;
    /// Exception masks (bits 12:7, one per flag, in flag order).
    pub const MASKS: u32 = 0x3f << 7;
    /// Rounding control (bits 14:13): 0 nearest, 1 down, 2 up, 3 toward zero.
    pub const RC: u32 = 3 << 13;
    /// Flush-to-zero.
    pub const FTZ: u32 = 1 << 15;
    /// Bits that may be set (writing others is #GP(0)).
    pub const WRITABLE: u32 = 0xffff;
    /// Value after reset: all exceptions masked, round to nearest.
    pub const DEFAULT: u32 = 0x1f80;
}

/// x87 control- and status-word bits.
pub mod x87 {
    /// FCW after `fninit`: all exceptions masked, 64-bit precision, nearest.
    pub const FCW_DEFAULT: u16 = 0x037f;
    /// FSW: exception flags IE DE ZE OE UE PE (bits 5:0).
    pub const FSW_EXC: u16 = 0x3f;
    /// FSW: stack fault.
    pub const FSW_SF: u16 = 1 << 6;
    /// FSW: exception summary (an unmasked exception is pending).
    pub const FSW_ES: u16 = 1 << 7;
    /// FSW condition codes C0 C1 C2 (bits 8–10) and C3 (bit 14).
    pub const FSW_C0: u16 = 1 << 8;
    /// C1.
    pub const FSW_C1: u16 = 1 << 9;
    /// C2.
    pub const FSW_C2: u16 = 1 << 10;
    /// C3.
    pub const FSW_C3: u16 = 1 << 14;
    /// FSW: busy (mirrors ES).
    pub const FSW_B: u16 = 1 << 15;
    /// FSW: TOP field shift (bits 13:11).
    pub const TOP_SHIFT: u16 = 11;
    /// Tag value: valid.
    pub const TAG_VALID: u16 = 0;
    /// Tag value: zero.
    pub const TAG_ZERO: u16 = 1;
    /// Tag value: special (NaN, infinity, denormal, unsupported).
    pub const TAG_SPECIAL: u16 = 2;
    /// Tag value: empty.
    pub const TAG_EMPTY: u16 = 3;
}

/// The MXCSR bits this core implements (FXSAVE's MXCSR_MASK; DAZ included).
pub const MXCSR_MASK: u32 = mxcsr::WRITABLE;

/// An MXCSR value with a reserved bit set (FXRSTOR, XRSTOR and LDMXCSR
/// raise #GP(0) for it).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct BadMxcsr(pub u32);

/// XCR0 bits.
pub mod xcr0 {
    /// x87 state.
    pub const X87: u64 = 1;
    /// SSE state (XMM registers, MXCSR).
    pub const SSE: u64 = 2;
    /// What this core supports (and what XCR0 always holds).
    pub const SUPPORTED: u64 = X87 | SSE;
}

/// The FPU, SSE and XSAVE state of one context (see the module docs).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct FpuState {
    /// x87 control word.
    pub fcw: u16,
    /// x87 status word (TOP in bits 13:11).
    pub fsw: u16,
    /// Full x87 tag word, two bits per physical register.
    pub ftw: u16,
    /// Last x87 opcode (11 bits).
    pub fop: u16,
    /// Last x87 instruction pointer.
    pub fip: u64,
    /// Last x87 data (operand) pointer.
    pub fdp: u64,
    /// Physical x87 registers R0–R7 (80-bit values in the low bits).
    pub st: [u128; 8],
    /// SSE control/status register.
    pub mxcsr: u32,
    /// XMM0–XMM15.
    pub xmm: [u128; 16],
    /// XCR0 (enabled XSAVE components).
    pub xcr0: u64,
    /// CR0.TS: x87/SSE instructions raise #NM while set.
    pub ts: bool,
}

impl Default for FpuState {
    fn default() -> Self {
        Self {
            fcw: x87::FCW_DEFAULT,
            fsw: 0,
            ftw: 0xffff,
            fop: 0,
            fip: 0,
            fdp: 0,
            st: [0; 8],
            mxcsr: mxcsr::DEFAULT,
            xmm: [0; 16],
            xcr0: xcr0::SUPPORTED,
            ts: false,
        }
    }
}

impl FpuState {
    /// The x87 stack top (0–7).
    pub fn top(&self) -> usize {
        usize::from((self.fsw >> x87::TOP_SHIFT) & 7)
    }

    /// Sets the x87 stack top.
    pub fn set_top(&mut self, top: usize) {
        let t = (top & 7) as u16;
        self.fsw = (self.fsw & !(7 << x87::TOP_SHIFT)) | (t << x87::TOP_SHIFT);
    }

    /// Physical register number of ST(i).
    pub fn phys(&self, i: usize) -> usize {
        (self.top() + i) & 7
    }

    /// Tag of physical register `p`.
    pub fn tag(&self, p: usize) -> u16 {
        (self.ftw >> (2 * p)) & 3
    }

    /// Sets the tag of physical register `p`.
    pub fn set_tag(&mut self, p: usize, tag: u16) {
        self.ftw = (self.ftw & !(3 << (2 * p))) | ((tag & 3) << (2 * p));
    }

    /// The tag an 80-bit value deserves (valid, zero or special).
    pub fn tag_of(v: u128) -> u16 {
        let exp = (v >> 64) as u16 & 0x7fff;
        let sig = v as u64;
        match exp {
            0 if sig == 0 => x87::TAG_ZERO,
            0 | 0x7fff => x87::TAG_SPECIAL,
            _ if sig >> 63 == 0 => x87::TAG_SPECIAL, // unnormal
            _ => x87::TAG_VALID,
        }
    }

    /// FXSAVE's abridged tag byte: bit p set when R(p) is not empty.
    pub fn abridged_tag(&self) -> u8 {
        (0..8).fold(0u8, |t, p| {
            t | (u8::from(self.tag(p) != x87::TAG_EMPTY) << p)
        })
    }

    /// Rebuilds the full tag word from FXRSTOR's abridged byte and the
    /// register contents.
    pub fn set_abridged_tag(&mut self, t: u8) {
        for p in 0..8 {
            let tag = if t & (1 << p) == 0 {
                x87::TAG_EMPTY
            } else {
                Self::tag_of(self.st[p])
            };
            self.set_tag(p, tag);
        }
    }

    /// The 512-byte FXSAVE image (64-bit format, REX.W: 64-bit FIP/FDP):
    /// FCW, FSW, abridged FTW, FOP, FIP, FDP, MXCSR, MXCSR_MASK, ST0–ST7 in
    /// stack order (16 bytes each), XMM0–XMM15; the rest zero.
    pub fn to_fxsave(&self) -> [u8; 512] {
        let mut b = [0u8; 512];
        b[0..2].copy_from_slice(&self.fcw.to_le_bytes());
        b[2..4].copy_from_slice(&self.fsw.to_le_bytes());
        b[4] = self.abridged_tag();
        b[6..8].copy_from_slice(&self.fop.to_le_bytes());
        b[8..16].copy_from_slice(&self.fip.to_le_bytes());
        b[16..24].copy_from_slice(&self.fdp.to_le_bytes());
        b[24..28].copy_from_slice(&self.mxcsr.to_le_bytes());
        b[28..32].copy_from_slice(&MXCSR_MASK.to_le_bytes());
        for i in 0..8 {
            let v = self.st[self.phys(i)] & ((1u128 << 80) - 1);
            b[32 + 16 * i..48 + 16 * i].copy_from_slice(&v.to_le_bytes());
        }
        for (i, x) in self.xmm.iter().enumerate() {
            b[160 + 16 * i..176 + 16 * i].copy_from_slice(&x.to_le_bytes());
        }
        b
    }

    /// Loads a 512-byte FXSAVE image (the inverse of [`Self::to_fxsave`]);
    /// `Err` (and nothing changed) when its MXCSR sets a reserved bit, for
    /// which FXRSTOR raises #GP(0). CR0.TS and XCR0 are not part of it.
    pub fn load_fxsave(&mut self, b: &[u8; 512]) -> Result<(), BadMxcsr> {
        let w16 = |o: usize| u16::from_le_bytes([b[o], b[o + 1]]);
        let w32 = |o: usize| u32::from_le_bytes(b[o..o + 4].try_into().expect("4 bytes"));
        let w64 = |o: usize| u64::from_le_bytes(b[o..o + 8].try_into().expect("8 bytes"));
        let mxcsr = w32(24);
        if mxcsr & !MXCSR_MASK != 0 {
            return Err(BadMxcsr(mxcsr));
        }
        self.fcw = w16(0);
        self.fsw = w16(2);
        self.fop = w16(6) & 0x7ff;
        // FIP comes back canonical at 57 bits (bits 63:57 copy bit 56), as
        // on the reference host (a 5-level-paging-capable Xeon); FDP as is.
        self.fip = ((w64(8) << 7) as i64 >> 7) as u64;
        self.fdp = w64(16);
        self.mxcsr = mxcsr;
        for i in 0..8 {
            let v = u128::from_le_bytes(b[32 + 16 * i..48 + 16 * i].try_into().expect("16"));
            let p = self.phys(i);
            self.st[p] = v & ((1u128 << 80) - 1);
        }
        for (i, x) in self.xmm.iter_mut().enumerate() {
            *x = u128::from_le_bytes(b[160 + 16 * i..176 + 16 * i].try_into().expect("16"));
        }
        self.set_abridged_tag(b[4]);
        Ok(())
    }

    /// MMX register MMi: the significand of physical register R(i) (not
    /// ST(i)).
    pub fn mm(&self, i: usize) -> u64 {
        self.st[i & 7] as u64
    }

    /// Writes MMi: the significand of R(i), with bits 79:64 (sign and
    /// exponent) set to all ones, as every MMX write does.
    pub fn set_mm(&mut self, i: usize, v: u64) {
        self.st[i & 7] = (0xffffu128 << 64) | u128::from(v);
    }

    /// The x87-to-MMX transition every MMX instruction but `emms` makes:
    /// TOP = 0 and every tag valid (full tag word 0, abridged 0xff).
    pub fn mmx_enter(&mut self) {
        self.set_top(0);
        self.ftw = 0;
    }

    /// `emms`: TOP = 0 and every tag empty (SDM Vol. 1 Table 9-2; the
    /// host agrees).
    pub fn emms(&mut self) {
        self.set_top(0);
        self.ftw = 0xffff;
    }

    /// `fninit`: control, status, tags and pointers to their reset values
    /// (registers keep their contents).
    pub fn fninit(&mut self) {
        self.fcw = x87::FCW_DEFAULT;
        self.fsw = 0;
        self.ftw = 0xffff;
        self.fop = 0;
        self.fip = 0;
        self.fdp = 0;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reset_values_are_fninit_and_mxcsr_default() {
        let f = FpuState::default();
        assert_eq!((f.fcw, f.fsw, f.ftw, f.mxcsr), (0x37f, 0, 0xffff, 0x1f80));
        assert_eq!(f.abridged_tag(), 0);
        assert_eq!(f.xcr0, 3);
    }

    #[test]
    fn fxsave_image_round_trips_with_stack_order_registers() {
        let mut f = FpuState::default();
        f.set_top(6);
        f.st[6] = (0x4000u128 << 64) | (1u128 << 63); // 2.0 = ST0
        f.set_tag(6, x87::TAG_VALID);
        f.xmm[15] = 0x1234_5678_9abc_def0_0fed_cba9_8765_4321;
        f.mxcsr = 0x9fc0;
        let img = f.to_fxsave();
        assert_eq!(img[4], 0x40, "abridged tag: R6 full");
        assert_eq!(&img[24..32], &[0xc0, 0x9f, 0, 0, 0xff, 0xff, 0, 0]);
        assert_eq!(
            u128::from_le_bytes(img[32..48].try_into().expect("16")),
            f.st[6]
        );
        let mut g = FpuState::default();
        g.load_fxsave(&img).expect("valid MXCSR");
        assert_eq!(g, f);
        let mut bad = img;
        bad[26] = 1; // MXCSR bit 16
        assert_eq!(g.load_fxsave(&bad), Err(BadMxcsr(0x1_9fc0)));
        assert_eq!(g, f, "nothing changed");
    }

    #[test]
    fn stack_top_and_tags() {
        let mut f = FpuState::default();
        f.set_top(7);
        assert_eq!((f.top(), f.phys(1), f.fsw), (7, 0, 7 << 11));
        f.st[7] = (0x3fffu128 << 64) | (1u128 << 63); // 1.0
        f.set_tag(7, FpuState::tag_of(f.st[7]));
        assert_eq!((f.tag(7), f.abridged_tag()), (x87::TAG_VALID, 0x80));
        f.set_abridged_tag(0x81);
        assert_eq!((f.tag(0), f.tag(7)), (x87::TAG_ZERO, x87::TAG_VALID));
    }
}
