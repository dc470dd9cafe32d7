//! The CPUID model: a configurable, self-consistent processor identity.
//!
//! The feature bits advertise exactly what the functional core implements
//! ([`Feature`]): the integer base (TSC, CX8, CMOV, CX16, LAHF/SAHF,
//! SYSCALL, RDTSCP, long mode, FSGSBASE), POPCNT, LZCNT (ABM), the x87 FPU,
//! FXSR, MMX (and, with the AMD vendor string, AMD's MMX extensions and
//! the MMX mirror bit in leaf 0x8000_0001, as AMD processors report them),
//! SSE through SSE4.2, MOVBE, BMI1, BMI2, XSAVE/XSAVEOPT with XCR0 =
//! x87 | SSE (leaf 0xD describes the 576-byte area) and OSXSAVE. AVX
//! and everything else read as absent (the instructions raise #UD). A
//! configuration may hide features ([`CpuidModel::hidden`], `[cpu] hide`):
//! the bits read as clear, as with Xen's CPUID masking; the instructions
//! still execute. Leaves the model does not define return zeros (AMD
//! behaviour).

/// A CPUID feature the model can advertise (and a configuration hide).
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Feature {
    /// x87 FPU (leaf 1 EDX 0).
    Fpu,
    /// FXSAVE/FXRSTOR (leaf 1 EDX 24).
    Fxsr,
    /// MMX (leaf 1 EDX 23; with the AMD vendor also leaf 0x8000_0001 EDX
    /// 23).
    Mmx,
    /// AMD's MMX extensions, the SSE integer instructions on MMX registers
    /// (leaf 0x8000_0001 EDX 22; advertised with the AMD vendor only).
    Mmxext,
    /// SSE (leaf 1 EDX 25).
    Sse,
    /// SSE2 (leaf 1 EDX 26).
    Sse2,
    /// SSE3 (leaf 1 ECX 0).
    Sse3,
    /// SSSE3 (leaf 1 ECX 9).
    Ssse3,
    /// SSE4.1 (leaf 1 ECX 19).
    #[serde(rename = "sse4.1")]
    Sse41,
    /// SSE4.2 (leaf 1 ECX 20).
    #[serde(rename = "sse4.2")]
    Sse42,
    /// MOVBE (leaf 1 ECX 22).
    Movbe,
    /// POPCNT (leaf 1 ECX 23).
    Popcnt,
    /// XSAVE (leaf 1 ECX 26; OSXSAVE, bit 27, with it).
    Xsave,
    /// BMI1 (leaf 7 EBX 3).
    Bmi1,
    /// BMI2 (leaf 7 EBX 8).
    Bmi2,
    /// LZCNT (leaf 0x8000_0001 ECX 5, ABM).
    Lzcnt,
}

impl Feature {
    /// Every feature, in documentation order.
    pub const ALL: [Feature; 16] = [
        Feature::Fpu,
        Feature::Fxsr,
        Feature::Mmx,
        Feature::Mmxext,
        Feature::Sse,
        Feature::Sse2,
        Feature::Sse3,
        Feature::Ssse3,
        Feature::Sse41,
        Feature::Sse42,
        Feature::Movbe,
        Feature::Popcnt,
        Feature::Xsave,
        Feature::Bmi1,
        Feature::Bmi2,
        Feature::Lzcnt,
    ];

    /// The configuration name (`sse4.1`, `bmi2`…).
    pub fn name(self) -> &'static str {
        match self {
            Feature::Fpu => "fpu",
            Feature::Fxsr => "fxsr",
            Feature::Mmx => "mmx",
            Feature::Mmxext => "mmxext",
            Feature::Sse => "sse",
            Feature::Sse2 => "sse2",
            Feature::Sse3 => "sse3",
            Feature::Ssse3 => "ssse3",
            Feature::Sse41 => "sse4.1",
            Feature::Sse42 => "sse4.2",
            Feature::Movbe => "movbe",
            Feature::Popcnt => "popcnt",
            Feature::Xsave => "xsave",
            Feature::Bmi1 => "bmi1",
            Feature::Bmi2 => "bmi2",
            Feature::Lzcnt => "lzcnt",
        }
    }

    /// (leaf, register index 0–3 = eax..edx, bit) of the feature flag.
    fn bit(self) -> (u32, usize, u32) {
        match self {
            Feature::Fpu => (1, 3, 0),
            Feature::Fxsr => (1, 3, 24),
            Feature::Mmx => (1, 3, 23),
            Feature::Mmxext => (0x8000_0001, 3, 22),
            Feature::Sse => (1, 3, 25),
            Feature::Sse2 => (1, 3, 26),
            Feature::Sse3 => (1, 2, 0),
            Feature::Ssse3 => (1, 2, 9),
            Feature::Sse41 => (1, 2, 19),
            Feature::Sse42 => (1, 2, 20),
            Feature::Movbe => (1, 2, 22),
            Feature::Popcnt => (1, 2, 23),
            Feature::Xsave => (1, 2, 26),
            Feature::Bmi1 => (7, 1, 3),
            Feature::Bmi2 => (7, 1, 8),
            Feature::Lzcnt => (0x8000_0001, 2, 5),
        }
    }
}

/// Processor identity and per-core values reported by `cpuid` and `rdtscp`.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct CpuidModel {
    /// 12-byte vendor string (leaf 0 and 0x8000_0000).
    pub vendor: [u8; 12],
    /// Family (combined; above 15 is encoded with the extended field).
    pub family: u32,
    /// Model (combined; the high nibble goes to the extended field).
    pub model: u32,
    /// Stepping (0–15).
    pub stepping: u32,
    /// Brand string (up to 48 bytes; leaves 0x8000_0002..4).
    pub brand: String,
    /// Initial APIC id of this context (leaf 1 EBX bits 31:24).
    pub apic_id: u32,
    /// Logical processors per package (leaf 1 EBX bits 23:16).
    pub logical_count: u32,
    /// TSC_AUX value returned in ECX by `rdtscp` (usually the core number).
    pub tsc_aux: u32,
    /// Whether leaf 1 ECX bit 31 (running under a hypervisor) is set.
    pub hypervisor: bool,
    /// Features that read as absent although implemented.
    #[serde(default)]
    pub hidden: Vec<Feature>,
}

impl Default for CpuidModel {
    fn default() -> Self {
        Self {
            vendor: *b"AuthenticAMD",
            family: 0x17,
            model: 0x31,
            stepping: 0,
            brand: "smpsim x86-64 core".to_string(),
            apic_id: 0,
            logical_count: 1,
            tsc_aux: 0,
            hypervisor: true,
            hidden: Vec::new(),
        }
    }
}

/// Leaf 1 EDX base: TSC, CX8, CMOV.
const L1_EDX: u32 = (1 << 4) | (1 << 8) | (1 << 15);
/// Leaf 1 ECX base: CX16.
const L1_ECX: u32 = 1 << 13;
/// Leaf 7 EBX base: FSGSBASE.
const L7_EBX: u32 = 1;
/// Leaf 0x8000_0001 ECX base: LAHF/SAHF in long mode.
const E1_ECX: u32 = 1;
/// Leaf 0x8000_0001 EDX: TSC, CX8, SYSCALL, CMOV, RDTSCP, LM.
const E1_EDX: u32 = (1 << 4) | (1 << 8) | (1 << 11) | (1 << 15) | (1 << 27) | (1 << 29);
/// Leaf 1 ECX: OSXSAVE (the OS enabled XSAVE: Xen does for PV guests).
const OSXSAVE: u32 = 1 << 27;
/// The features the functional core implements.
const IMPLEMENTED: &[Feature] = &[
    Feature::Fpu,
    Feature::Fxsr,
    Feature::Mmx,
    Feature::Mmxext,
    Feature::Xsave,
    Feature::Sse,
    Feature::Sse2,
    Feature::Sse3,
    Feature::Ssse3,
    Feature::Sse41,
    Feature::Sse42,
    Feature::Movbe,
    Feature::Popcnt,
    Feature::Bmi1,
    Feature::Bmi2,
    Feature::Lzcnt,
];

/// Size of the XSAVE area for x87 | SSE: the legacy region and the header.
pub const XSAVE_AREA_SIZE: u32 = 576;

impl CpuidModel {
    /// This model for context `id` (APIC id and TSC_AUX set to `id`).
    pub fn for_context(id: u32) -> Self {
        Self {
            apic_id: id,
            tsc_aux: id,
            ..Self::default()
        }
    }

    /// Whether the model identifies as an Intel processor
    /// (`GenuineIntel`): the implementation choices the architecture leaves
    /// open then follow Intel's cores ([`crate::translate::Quirks`]).
    pub fn is_intel(&self) -> bool {
        &self.vendor == b"GenuineIntel"
    }

    fn vendor_regs(&self) -> [u32; 3] {
        let w = |i: usize| u32::from_le_bytes(self.vendor[i..i + 4].try_into().expect("4 bytes"));
        [w(0), w(4), w(8)]
    }

    fn signature(&self) -> u32 {
        let (fam, ext_fam) = if self.family > 15 {
            (15, self.family - 15)
        } else {
            (self.family, 0)
        };
        (ext_fam << 20)
            | ((self.model >> 4) << 16)
            | (fam << 8)
            | ((self.model & 15) << 4)
            | (self.stepping & 15)
    }

    fn brand_regs(&self, part: usize) -> [u32; 4] {
        let mut b = [0u8; 48];
        let src = self.brand.as_bytes();
        let n = src.len().min(47);
        b[..n].copy_from_slice(&src[..n]);
        let w = |i: usize| {
            u32::from_le_bytes(
                b[part * 16 + i * 4..part * 16 + i * 4 + 4]
                    .try_into()
                    .expect("4 bytes"),
            )
        };
        [w(0), w(1), w(2), w(3)]
    }

    /// Whether `f` reads as present (AMD's MMX extensions only with the
    /// AMD vendor string).
    pub fn has(&self, f: Feature) -> bool {
        IMPLEMENTED.contains(&f)
            && !self.hidden.contains(&f)
            && (f != Feature::Mmxext || self.is_amd())
    }

    fn is_amd(&self) -> bool {
        &self.vendor == b"AuthenticAMD"
    }

    /// `cpuid` with EAX = `leaf`, ECX = `subleaf`: returns [eax, ebx, ecx, edx].
    pub fn query(&self, leaf: u32, subleaf: u32) -> [u32; 4] {
        let [v0, v1, v2] = self.vendor_regs();
        let mut r = match leaf {
            0 => [0xd, v0, v2, v1],
            1 => {
                let ebx = (self.apic_id << 24) | ((self.logical_count & 0xff) << 16) | (8 << 8);
                let mut ecx = L1_ECX | if self.hypervisor { 1 << 31 } else { 0 };
                if self.has(Feature::Xsave) {
                    ecx |= OSXSAVE;
                }
                [self.signature(), ebx, ecx, L1_EDX]
            }
            7 if subleaf == 0 => [0, L7_EBX, 0, 0],
            0xd if self.has(Feature::Xsave) => match subleaf {
                // x87 | SSE; the area for XCR0 and its maximum.
                0 => [3, XSAVE_AREA_SIZE, XSAVE_AREA_SIZE, 0],
                1 => [1, 0, 0, 0], // XSAVEOPT
                _ => [0; 4],
            },
            0x8000_0000 => [0x8000_0004, v0, v2, v1],
            0x8000_0001 => {
                // AMD mirrors the MMX bit here.
                let mmx = u32::from(self.is_amd() && self.has(Feature::Mmx)) << 23;
                [self.signature(), 0, E1_ECX, E1_EDX | mmx]
            }
            0x8000_0002..=0x8000_0004 => self.brand_regs((leaf - 0x8000_0002) as usize),
            _ => [0; 4],
        };
        for f in Feature::ALL {
            let (l, reg, bit) = f.bit();
            if l == leaf && (leaf != 7 || subleaf == 0) && self.has(f) {
                r[reg] |= 1 << bit;
            }
        }
        r
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn vendor_string_in_ebx_edx_ecx_order() {
        let m = CpuidModel::default();
        let [max, b, c, d] = m.query(0, 0);
        assert_eq!(max, 0xd, "up to the XSAVE leaf");
        let mut s = Vec::new();
        for r in [b, d, c] {
            s.extend_from_slice(&r.to_le_bytes());
        }
        assert_eq!(&s, b"AuthenticAMD");
    }

    #[test]
    fn family_17h_signature_and_features() {
        let m = CpuidModel::default();
        let [eax, _, ecx, edx] = m.query(1, 0);
        assert_eq!(eax, 0x0083_0f10);
        assert_ne!(edx & (1 << 23), 0, "MMX");
        assert_eq!(ecx & (1 << 28), 0, "no AVX");
        assert_ne!(ecx & (1 << 23), 0, "popcnt");
        assert_eq!(m.query(0x4000_0000, 0), [0; 4]);
        let xsave = IMPLEMENTED.contains(&Feature::Xsave);
        assert_eq!(ecx & (3 << 26) != 0, xsave, "XSAVE and OSXSAVE");
        if xsave {
            assert_eq!(m.query(0xd, 0), [3, 576, 576, 0]);
        }
    }

    fn bit_set(m: &CpuidModel, f: Feature) -> bool {
        let (leaf, reg, bit) = f.bit();
        m.query(leaf, 0)[reg] & (1 << bit) != 0
    }

    #[test]
    fn exactly_the_implemented_and_unhidden_features_are_advertised() {
        let all = CpuidModel::default();
        let hide = [Feature::Sse42, Feature::Bmi2, Feature::Popcnt];
        let some = CpuidModel {
            hidden: hide.to_vec(),
            ..CpuidModel::default()
        };
        for f in Feature::ALL {
            let imp = IMPLEMENTED.contains(&f);
            assert_eq!(bit_set(&all, f), imp, "{}", f.name());
            assert_eq!(bit_set(&some, f), imp && !hide.contains(&f), "{}", f.name());
        }
        assert_eq!(some.query(1, 0)[2] & (1 << 23), 0, "popcnt hidden");
    }

    #[test]
    fn amd_reports_mmx_and_its_extensions_in_the_extended_leaf_too() {
        let amd = CpuidModel::default();
        let e1 = amd.query(0x8000_0001, 0)[3];
        assert_eq!(e1 & (3 << 22), 3 << 22, "MmxExt and MMX");
        let intel = CpuidModel {
            vendor: *b"GenuineIntel",
            ..CpuidModel::default()
        };
        assert_eq!(intel.query(0x8000_0001, 0)[3] & (3 << 22), 0);
        assert_ne!(intel.query(1, 0)[3] & (1 << 23), 0, "MMX in leaf 1");
        let hidden = CpuidModel {
            hidden: vec![Feature::Mmx, Feature::Mmxext],
            ..CpuidModel::default()
        };
        assert_eq!(hidden.query(1, 0)[3] & (1 << 23), 0);
        assert_eq!(hidden.query(0x8000_0001, 0)[3] & (3 << 22), 0);
    }

    #[test]
    fn brand_string_round_trips() {
        let m = CpuidModel::default();
        let mut s = Vec::new();
        for leaf in 0x8000_0002..=0x8000_0004 {
            for r in m.query(leaf, 0) {
                s.extend_from_slice(&r.to_le_bytes());
            }
        }
        let end = s.iter().position(|&b| b == 0).expect("nul-terminated");
        assert_eq!(&s[..end], m.brand.as_bytes());
    }
}
