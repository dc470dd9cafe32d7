//! The x87/SSE state the tester compares, read from a 64-bit FXSAVE image.
//!
//! Both sides produce the same 512-byte layout: natively `fxsave64` (or the
//! signal frame's FXSAVE area at a fault), in the simulator
//! [`smpsim_cores::fpu::FpuState::to_fxsave`]. [`FpView`] keeps the parts
//! that are compared: FCW, FSW (TOP and condition codes included), the
//! abridged tag byte (one bit per physical register: the full tag word is a
//! function of it and the register contents), ST0–ST7 in stack order (80
//! bits each; only non-empty ones are compared), MXCSR and XMM0–XMM15.
//! FOP, FIP and FDP are not compared (the host records FDP only on
//! exceptions, and these pointers are not part of any result).

use smpsim_cores::fpu::FpuState;

/// The FXSAVE image of the reset state (`fninit`, MXCSR 0x1f80), as
/// [`FpuState::default`]'s `to_fxsave` gives it.
pub const DEFAULT_FX: [u8; 512] = {
    let mut b = [0u8; 512];
    b[0] = 0x7f;
    b[1] = 0x03;
    b[24] = 0x80;
    b[25] = 0x1f;
    b[28] = 0xff;
    b[29] = 0xff;
    b
};

/// The compared part of an FXSAVE image.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct FpView {
    /// x87 control word.
    pub fcw: u16,
    /// x87 status word.
    pub fsw: u16,
    /// Abridged tag byte: bit p set when physical register R(p) is not empty.
    pub ftw: u8,
    /// ST0–ST7 in stack order (80-bit values).
    pub st: [u128; 8],
    /// MXCSR.
    pub mxcsr: u32,
    /// XMM0–XMM15.
    pub xmm: [u128; 16],
}

/// Mask of an 80-bit x87 value in a `u128`.
const M80: u128 = (1u128 << 80) - 1;

impl FpView {
    /// Reads the compared fields of a 64-bit FXSAVE image.
    pub fn from_fxsave(b: &[u8; 512]) -> Self {
        let w16 = |o: usize| u16::from_le_bytes([b[o], b[o + 1]]);
        let w128 = |o: usize| u128::from_le_bytes(b[o..o + 16].try_into().expect("16 bytes"));
        let mut v = Self {
            fcw: w16(0),
            fsw: w16(2),
            ftw: b[4],
            mxcsr: u32::from_le_bytes(b[24..28].try_into().expect("4 bytes")),
            ..Self::default()
        };
        for i in 0..8 {
            v.st[i] = w128(32 + 16 * i) & M80;
        }
        for i in 0..16 {
            v.xmm[i] = w128(160 + 16 * i);
        }
        v
    }

    /// The view of a simulated state.
    pub fn of(f: &FpuState) -> Self {
        Self::from_fxsave(&f.to_fxsave())
    }

    /// The x87 stack top.
    pub fn top(&self) -> usize {
        usize::from((self.fsw >> 11) & 7)
    }

    /// Whether ST(i) is non-empty.
    pub fn st_full(&self, i: usize) -> bool {
        self.ftw & (1 << ((self.top() + i) & 7)) != 0
    }
}

/// MXCSR fields by name (bit mask, name).
const MXCSR_FIELDS: &[(u32, &str)] = &[
    (1 << 0, "IE"),
    (1 << 1, "DE"),
    (1 << 2, "ZE"),
    (1 << 3, "OE"),
    (1 << 4, "UE"),
    (1 << 5, "PE"),
    (1 << 6, "DAZ"),
    (1 << 7, "IM"),
    (1 << 8, "DM"),
    (1 << 9, "ZM"),
    (1 << 10, "OM"),
    (1 << 11, "UM"),
    (1 << 12, "PM"),
    (3 << 13, "RC"),
    (1 << 15, "FTZ"),
    (0xffff << 16, "reserved"),
];

/// FSW fields by name.
const FSW_FIELDS: &[(u32, &str)] = &[
    (1 << 0, "IE"),
    (1 << 1, "DE"),
    (1 << 2, "ZE"),
    (1 << 3, "OE"),
    (1 << 4, "UE"),
    (1 << 5, "PE"),
    (1 << 6, "SF"),
    (1 << 7, "ES"),
    (1 << 8, "C0"),
    (1 << 9, "C1"),
    (1 << 10, "C2"),
    (7 << 11, "TOP"),
    (1 << 14, "C3"),
    (1 << 15, "B"),
];

/// FCW fields by name.
const FCW_FIELDS: &[(u32, &str)] = &[
    (1 << 0, "IM"),
    (1 << 1, "DM"),
    (1 << 2, "ZM"),
    (1 << 3, "OM"),
    (1 << 4, "UM"),
    (1 << 5, "PM"),
    (1 << 6, "bit6"),
    (3 << 8, "PC"),
    (3 << 10, "RC"),
    (1 << 12, "X"),
    (0xe080, "reserved"),
];

/// `reg.F1 reg.F2` for the named fields in which `a` and `b` differ.
fn fields(reg: &str, table: &[(u32, &str)], a: u32, b: u32) -> String {
    table
        .iter()
        .filter(|(m, _)| (a ^ b) & m != 0)
        .map(|(_, n)| format!("{reg}.{n}"))
        .collect::<Vec<_>>()
        .join(" ")
}

/// The dword lanes in which two XMM values differ, e.g. `lane 1, lane 3`.
fn lanes(a: u128, b: u128) -> String {
    (0..4)
        .filter(|l| (a ^ b) >> (32 * l) & 0xffff_ffff != 0)
        .map(|l| format!("lane {l}"))
        .collect::<Vec<_>>()
        .join(", ")
}

/// One line per differing unit: `xmm3 lane 1`, `mxcsr.PE`, `fsw.C1`,
/// `ftw.r5`, `st1`.
pub fn diffs(n: &FpView, s: &FpView) -> Vec<String> {
    let mut out = Vec::new();
    for (i, (a, b)) in n.xmm.iter().zip(&s.xmm).enumerate() {
        if a != b {
            out.push(format!(
                "xmm{i} {} (dwords): native {a:032x} sim {b:032x}",
                lanes(*a, *b)
            ));
        }
    }
    if n.mxcsr != s.mxcsr {
        out.push(format!(
            "{}: native {:#06x} sim {:#06x}",
            fields("mxcsr", MXCSR_FIELDS, n.mxcsr, s.mxcsr),
            n.mxcsr,
            s.mxcsr
        ));
    }
    if n.fcw != s.fcw {
        out.push(format!(
            "{}: native {:#06x} sim {:#06x}",
            fields("fcw", FCW_FIELDS, n.fcw.into(), s.fcw.into()),
            n.fcw,
            s.fcw
        ));
    }
    if n.fsw != s.fsw {
        out.push(format!(
            "{}: native {:#06x} sim {:#06x}",
            fields("fsw", FSW_FIELDS, n.fsw.into(), s.fsw.into()),
            n.fsw,
            s.fsw
        ));
    }
    if n.ftw != s.ftw {
        let regs: Vec<String> = (0..8)
            .filter(|p| (n.ftw ^ s.ftw) & (1 << p) != 0)
            .map(|p| format!("ftw.r{p}"))
            .collect();
        out.push(format!(
            "{} (abridged tags, 1 = non-empty): native {:08b} sim {:08b}",
            regs.join(" "),
            n.ftw,
            s.ftw
        ));
    }
    for i in 0..8 {
        if n.st_full(i) && s.st_full(i) && n.st[i] != s.st[i] {
            out.push(format!(
                "st{i}: native {} sim {}",
                x87_str(n.st[i]),
                x87_str(s.st[i])
            ));
        }
    }
    out
}

/// An 80-bit value as `sign:exponent:significand` in hex.
pub fn x87_str(v: u128) -> String {
    let se = (v >> 64) as u16;
    format!("{:04x}:{:016x}", se, v as u64)
}

/// A compact dump of the state (for mismatch reports).
pub fn dump(v: &FpView) -> String {
    use std::fmt::Write as _;
    let mut out = String::new();
    let _ = writeln!(
        out,
        "    fcw={:04x} fsw={:04x} (top {}) ftw={:08b} mxcsr={:08x}",
        v.fcw,
        v.fsw,
        v.top(),
        v.ftw,
        v.mxcsr
    );
    let st: Vec<String> = (0..8)
        .map(|i| {
            if v.st_full(i) {
                format!("st{i}={}", x87_str(v.st[i]))
            } else {
                format!("st{i}=empty")
            }
        })
        .collect();
    for row in st.chunks(4) {
        let _ = writeln!(out, "    {}", row.join(" "));
    }
    for row in 0..8 {
        let _ = writeln!(
            out,
            "    xmm{:<2}={:032x} xmm{:<2}={:032x}",
            2 * row,
            v.xmm[2 * row],
            2 * row + 1,
            v.xmm[2 * row + 1]
        );
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_image_is_the_reset_state() {
        assert_eq!(DEFAULT_FX, FpuState::default().to_fxsave());
    }

    #[test]
    fn diffs_name_the_differing_units() {
        let mut f = FpuState::default();
        f.set_top(7);
        f.st[7] = 0x3fff_8000_0000_0000_0000;
        f.set_tag(7, 0);
        let n = FpView::of(&f);
        assert!(n.st_full(0) && !n.st_full(1));
        let mut s = n;
        s.xmm[3] ^= 1 << 40;
        s.mxcsr ^= 1 << 5;
        s.fsw ^= 1 << 9;
        s.st[0] ^= 1;
        s.st[1] ^= 1; // empty: not compared
        let d = diffs(&n, &s);
        assert_eq!(d.len(), 4, "{d:?}");
        assert!(d[0].starts_with("xmm3 lane 1 "), "{}", d[0]);
        assert!(d[1].starts_with("mxcsr.PE:"), "{}", d[1]);
        assert!(d[2].starts_with("fsw.C1:"), "{}", d[2]);
        assert!(d[3].starts_with("st0:"), "{}", d[3]);
    }
}
