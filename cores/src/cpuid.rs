//! The CPUID model: a configurable, self-consistent processor identity.
//!
//! The feature bits advertise exactly what the functional core implements:
//! TSC, CX8, CMOV, CX16, POPCNT, LAHF/SAHF, LZCNT (ABM), SYSCALL, RDTSCP,
//! long mode and FSGSBASE. FPU, MMX, SSE*, AVX*, BMI1/BMI2 and everything
//! else read as absent (the instructions raise #UD), even though a real
//! x86-64 part always has SSE2; guests are built with
//! `-mgeneral-regs-only`. TZCNT is implemented although BMI1 is clear:
//! software that checks the bit falls back to BSF, whose result TZCNT
//! matches for non-zero inputs. Leaves the model does not define return
//! zeros (AMD behaviour).

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
}

impl Default for CpuidModel {
    fn default() -> Self {
        Self {
            vendor: *b"AuthenticAMD",
            family: 0x17,
            model: 0x31,
            stepping: 0,
            brand: "smpsim x86-64 integer core".to_string(),
            apic_id: 0,
            logical_count: 1,
            tsc_aux: 0,
            hypervisor: true,
        }
    }
}

/// Leaf 1 EDX: TSC, CX8, CMOV.
const L1_EDX: u32 = (1 << 4) | (1 << 8) | (1 << 15);
/// Leaf 1 ECX: CX16, POPCNT.
const L1_ECX: u32 = (1 << 13) | (1 << 23);
/// Leaf 7 EBX: FSGSBASE.
const L7_EBX: u32 = 1;
/// Leaf 0x8000_0001 ECX: LAHF/SAHF in long mode, ABM (LZCNT).
const E1_ECX: u32 = 1 | (1 << 5);
/// Leaf 0x8000_0001 EDX: TSC, CX8, SYSCALL, CMOV, RDTSCP, LM.
const E1_EDX: u32 = (1 << 4) | (1 << 8) | (1 << 11) | (1 << 15) | (1 << 27) | (1 << 29);

impl CpuidModel {
    /// This model for context `id` (APIC id and TSC_AUX set to `id`).
    pub fn for_context(id: u32) -> Self {
        Self {
            apic_id: id,
            tsc_aux: id,
            ..Self::default()
        }
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

    /// `cpuid` with EAX = `leaf`, ECX = `subleaf`: returns [eax, ebx, ecx, edx].
    pub fn query(&self, leaf: u32, subleaf: u32) -> [u32; 4] {
        let [v0, v1, v2] = self.vendor_regs();
        match leaf {
            0 => [7, v0, v2, v1],
            1 => {
                let ebx = (self.apic_id << 24) | ((self.logical_count & 0xff) << 16) | (8 << 8);
                let ecx = L1_ECX | if self.hypervisor { 1 << 31 } else { 0 };
                [self.signature(), ebx, ecx, L1_EDX]
            }
            7 if subleaf == 0 => [0, L7_EBX, 0, 0],
            0x8000_0000 => [0x8000_0004, v0, v2, v1],
            0x8000_0001 => [self.signature(), 0, E1_ECX, E1_EDX],
            0x8000_0002..=0x8000_0004 => self.brand_regs((leaf - 0x8000_0002) as usize),
            _ => [0; 4],
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn vendor_string_in_ebx_edx_ecx_order() {
        let m = CpuidModel::default();
        let [max, b, c, d] = m.query(0, 0);
        assert_eq!(max, 7);
        let mut s = Vec::new();
        for r in [b, d, c] {
            s.extend_from_slice(&r.to_le_bytes());
        }
        assert_eq!(&s, b"AuthenticAMD");
    }

    #[test]
    fn family_17h_signature_and_no_sse() {
        let m = CpuidModel::default();
        let [eax, _, ecx, edx] = m.query(1, 0);
        assert_eq!(eax, 0x0083_0f10);
        assert_eq!(edx & (1 << 25 | 1 << 26 | 1), 0, "no SSE, SSE2, FPU");
        assert_ne!(ecx & (1 << 23), 0, "popcnt");
        assert_eq!(m.query(0x4000_0000, 0), [0; 4]);
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
