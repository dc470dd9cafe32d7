//! Per-VCPU PV CPU state that Xen keeps for a PV64 guest (xen-abi.md §1.1
//! set_gdt … set_segment_base, §4.6): virtual control and debug registers,
//! the virtual IOPL, the guest's GDT and LDT, the kernel stack for
//! user → kernel transitions, the segment selectors and the inactive GS
//! base. The PV emulator ([`crate::emulate`]) and the PV CPU hypercalls
//! (`hypercall/pvcpu_op.rs`) read and change it; the core sees only what
//! [`smpsim_cores::ArchState`] holds (FS and the active GS base).
//!
//! Descriptor rules are Xen's `check_descriptor` for a 64-bit PV guest:
//! not-present descriptors pass unchanged, code and data descriptors pass
//! with their DPL raised to 3 (the guest kernel runs in ring 3), call gates
//! pass when their target selector is acceptable, every other system
//! descriptor is refused.

use crate::ids::Mfn;
use serde::{Deserialize, Serialize};
use smpsim_cores::fpu::FpuState;
use smpsim_cores::ArchState;

/// Xen's reserved GDT entries start here (`FIRST_RESERVED_GDT_ENTRY`,
/// 14 pages of 512): a guest GDT has at most this many entries.
pub const FIRST_RESERVED_GDT_ENTRY: u32 = 14 * 512;
/// Descriptors per GDT frame.
pub const DESCS_PER_FRAME: u32 = 512;

/// Xen's own descriptors at [`FIRST_RESERVED_GDT_ENTRY`] + i (its
/// `gdt_table`): 0xe008 ring-0 code64, 0xe010 ring-0 data, 0xe023 ring-3
/// code32, 0xe02b ring-3 data (`FLAT_RING3_DS32`/`SS`), 0xe033 ring-3
/// code64 (`FLAT_RING3_CS64`), 0xe038 ring-0 code32. The entries past
/// these (TSS, LDT, per-CPU) are system descriptors, which no segment
/// register load accepts.
pub const XEN_GDT: [u64; 8] = [
    0,
    0x00af_9a00_0000_ffff,
    0x00cf_9200_0000_ffff,
    0,
    0x00cf_fa00_0000_ffff,
    0x00cf_f200_0000_ffff,
    0x00af_fa00_0000_ffff,
    0x00cf_9a00_0000_ffff,
];

/// Host CR0 as a PV guest reads it, less TS: PE MP ET NE WP AM PG.
pub const CR0_BASE: u64 = 0x8005_0033;
/// CR0.TS.
pub const CR0_TS: u64 = 1 << 3;
/// CR4 bits a PV guest controls (`PV_CR4_GUEST_MASK`): TSD, DE,
/// FSGSBASE, OSXSAVE.
pub const CR4_GUEST_MASK: u64 = (1 << 2) | (1 << 3) | (1 << 16) | (1 << 18);
/// CR4.FSGSBASE (the core then runs rd/wr{fs,gs}base; #UD otherwise).
pub const CR4_FSGSBASE: u64 = 1 << 16;
/// CR4.DE (debugging extensions: DR4/5 fault, I/O breakpoints allowed).
pub const CR4_DE: u64 = 1 << 3;
/// CR4 bits of Xen's that a PV guest sees (PAE, MCE; the
/// `PV_CR4_GUEST_VISIBLE_MASK` subset that applies with no FPU/SSE in
/// smpsim's CPUID policy).
pub const CR4_VISIBLE: u64 = (1 << 5) | (1 << 6);
/// CR4 bits the PV CPUID policy lets the guest set: TSD (the policy has
/// TSC), DE (XTF's debug-register test needs it; see the module doc of
/// [`crate::emulate`]) and FSGSBASE (the core implements it). OSXSAVE is
/// dropped: there is no XSAVE.
pub const CR4_POLICY: u64 = (1 << 2) | (1 << 3) | (1 << 16);
/// DR6 reads with these bits set (`X86_DR6_DEFAULT`).
pub const DR6_DEFAULT: u64 = 0xffff_0ff0;
/// DR7 bit 10 reads 1 (`X86_DR7_DEFAULT`).
pub const DR7_DEFAULT: u64 = 0x400;
/// DR7.GD: general detect, not virtualised for PV.
pub const DR7_GD: u64 = 1 << 13;

/// Segment selectors of the interrupted guest context.
#[derive(Copy, Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Selectors {
    /// CS (0xe033 in guest kernel mode).
    pub cs: u16,
    /// SS.
    pub ss: u16,
    /// DS.
    pub ds: u16,
    /// ES.
    pub es: u16,
    /// FS.
    pub fs: u16,
    /// GS.
    pub gs: u16,
}

impl Default for Selectors {
    /// Xen's start of day: flat kernel CS and SS, null data selectors.
    fn default() -> Self {
        Selectors {
            cs: 0xe033,
            ss: 0xe02b,
            ds: 0,
            es: 0,
            fs: 0,
            gs: 0,
        }
    }
}

/// RUNSTATE_running.
pub const RUNSTATE_RUNNING: u32 = 0;
/// RUNSTATE_blocked.
pub const RUNSTATE_BLOCKED: u32 = 2;
/// RUNSTATE_offline.
pub const RUNSTATE_OFFLINE: u32 = 3;

/// `struct vcpu_runstate_info` as Xen keeps it (xen-abi.md §4.2).
#[derive(Copy, Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Runstate {
    /// RUNSTATE_running 0, runnable 1, blocked 2, offline 3.
    pub state: u32,
    /// System time (ns) the state was entered.
    pub entry_ns: u64,
    /// Total ns spent in each state before `entry_ns`.
    pub time: [u64; 4],
    /// Guest VA of the registered runstate area (0: none).
    pub area: u64,
}

impl Runstate {
    /// The 48-byte `vcpu_runstate_info` at `now_ns` (the current state's
    /// time so far included).
    pub fn bytes(&self, now_ns: u64) -> [u8; 48] {
        let mut t = self.time;
        let i = self.state as usize & 3;
        t[i] = t[i].saturating_add(now_ns.saturating_sub(self.entry_ns));
        let mut b = [0u8; 48];
        b[0..4].copy_from_slice(&self.state.to_le_bytes());
        b[8..16].copy_from_slice(&now_ns.max(self.entry_ns).to_le_bytes());
        for (k, x) in t.iter().enumerate() {
            b[16 + 8 * k..24 + 8 * k].copy_from_slice(&x.to_le_bytes());
        }
        b
    }

    /// Enters `state` at `now_ns`, charging the old one.
    pub fn switch(&mut self, state: u32, now_ns: u64) {
        if state == self.state {
            return;
        }
        let i = self.state as usize & 3;
        self.time[i] = self.time[i].saturating_add(now_ns.saturating_sub(self.entry_ns));
        self.state = state;
        self.entry_ns = now_ns.max(self.entry_ns);
    }
}

/// A VCPU's PV CPU state.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct PvCpu {
    /// Virtual CR0.TS (fpu_taskswitch, clts, CR0 writes).
    pub cr0_ts: bool,
    /// Virtual CR2: the last #PF address delivered (also in vcpu_info).
    pub cr2: u64,
    /// The guest-controlled CR4 bits ([`CR4_GUEST_MASK`]).
    pub cr4_guest: u64,
    /// DR0–DR7 (DR4/DR5 unused: they alias DR6/DR7).
    pub dr: [u64; 8],
    /// Virtual IOPL, 0–3 (PHYSDEVOP_set_iopl, or iret under VMASST
    /// architectural_iopl).
    pub iopl: u8,
    /// Guest VA of the I/O permission bitmap (PHYSDEVOP_set_iobitmap; a
    /// clear bit allows the port whatever the IOPL).
    pub iobmp: u64,
    /// Ports the bitmap covers (0: none).
    pub iobmp_limit: u32,
    /// Frames of the guest's GDT (set_gdt).
    pub gdt_frames: Vec<Mfn>,
    /// Entries of the guest's GDT.
    pub gdt_entries: u32,
    /// Guest VA of the LDT (MMUEXT_SET_LDT).
    pub ldt_base: u64,
    /// Entries of the LDT.
    pub ldt_entries: u32,
    /// Kernel SS for user → kernel transitions (stack_switch).
    pub kernel_ss: u16,
    /// Kernel RSP for user → kernel transitions (stack_switch).
    pub kernel_sp: u64,
    /// Segment selectors of the current context.
    pub sel: Selectors,
    /// The GS base of the mode not running: the user's in guest kernel
    /// mode (SEGBASE_GS_USER, MSR_SHADOW_GS_BASE), the kernel's in user
    /// mode. Swapped with the active base at every mode switch.
    pub shadow_gs: u64,
    /// Run-state accounting.
    pub runstate: Runstate,
}

impl Default for PvCpu {
    fn default() -> Self {
        let mut dr = [0; 8];
        dr[6] = DR6_DEFAULT;
        dr[7] = DR7_DEFAULT;
        PvCpu {
            cr0_ts: false,
            cr2: 0,
            cr4_guest: 0,
            dr,
            iopl: 0,
            iobmp: 0,
            iobmp_limit: 0,
            gdt_frames: Vec::new(),
            gdt_entries: 0,
            ldt_base: 0,
            ldt_entries: 0,
            kernel_ss: 0,
            kernel_sp: 0,
            sel: Selectors::default(),
            shadow_gs: 0,
            runstate: Runstate {
                state: 3,
                ..Runstate::default()
            },
        }
    }
}

/// The FPU state of Xen's `vcpu_reset_fpu` (a VCPU whose context has no
/// `VGCF_i387_valid`, and VCPU 0 as the domain builder starts it): the x87
/// at its power-up values (`FCW_RESET` 0x0040, FSW 0, the registers zero
/// and tagged non-empty: abridged `FXSAVE_FTW_RESET` 0xff), the SSE
/// component in its init state (XMM zero) and MXCSR 0x1f80. CR0.TS clear.
pub fn reset_fpu() -> FpuState {
    const FCW_RESET: u16 = 0x0040;
    const FTW_RESET: u8 = 0xff;
    let mut f = FpuState {
        fcw: FCW_RESET,
        ..FpuState::default()
    };
    f.set_abridged_tag(FTW_RESET);
    f
}

/// Gives the core its view of the PV CPU state: the debug registers
/// ([`crate::debug::sync_core`]) and CR0.TS as `ArchState.fpu.ts` (the
/// core raises #NM for x87/SSE instructions while it is set). `pv` is the
/// state of record; this runs after every hypercall, emulation and
/// exception delivery, and on the registers a VCPU starts with.
pub fn sync_core(pv: &PvCpu, regs: &mut ArchState) {
    crate::debug::sync_core(pv, regs);
    regs.fpu.ts = pv.cr0_ts;
}

impl PvCpu {
    /// CR0 as the guest reads it.
    pub fn cr0(&self) -> u64 {
        CR0_BASE | if self.cr0_ts { CR0_TS } else { 0 }
    }

    /// CR4 as the guest reads it.
    pub fn cr4(&self) -> u64 {
        CR4_VISIBLE | self.cr4_guest
    }

    /// A CR4 write, as Xen's `pv_fixup_guest_cr4`: bits outside the
    /// guest-controlled set are discarded, not refused.
    pub fn write_cr4(&mut self, value: u64) {
        self.cr4_guest = value & CR4_GUEST_MASK & CR4_POLICY;
    }
}

/// Whether a code selector is one a call gate may target (Xen's
/// `guest_gate_selector_okay`): Xen's flat ring-3 code selectors, or any
/// non-null selector of the guest's part of the GDT or of the LDT.
fn gate_selector_ok(sel: u16) -> bool {
    let idx = u32::from(sel >> 3);
    if sel & 4 != 0 {
        return true;
    }
    if idx < FIRST_RESERVED_GDT_ENTRY {
        return idx != 0;
    }
    matches!(sel & !3, 0xe020 | 0xe030)
}

/// Xen's `check_descriptor` for a 64-bit PV guest: the descriptor as
/// stored (DPL raised to 3; a call gate's target selector RPL too), or
/// None when it is refused. (The upper half of a 64-bit call gate is the
/// next slot, a type-0 descriptor, which passes.)
pub fn check_descriptor(desc: u64) -> Option<u64> {
    const P: u64 = 1 << 47;
    const S: u64 = 1 << 44;
    const DPL: u64 = 3 << 45;
    if desc & P == 0 {
        return Some(desc);
    }
    let desc = desc | DPL;
    if desc & S != 0 {
        return Some(desc);
    }
    let ty = desc >> 40 & 0xf;
    match ty {
        0 => Some(desc),
        0xc => {
            let cs = (desc >> 16) as u16; // deliberate: the target selector field
            let reserved = desc >> 32 & 0xff;
            (gate_selector_ok(cs) && reserved == 0).then_some(desc | 3 << 16)
        }
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn descriptors_dpl_fixup_and_refusals() {
        // Ring-0 flat code64 → DPL 3.
        assert_eq!(
            check_descriptor(0x00af_9a00_0000_ffff),
            Some(0x00af_fa00_0000_ffff)
        );
        assert_eq!(
            check_descriptor(0x0000_1a00_0000_ffff),
            Some(0x0000_1a00_0000_ffff),
            "not present"
        );
        assert_eq!(check_descriptor(0), Some(0));
        // A present 64-bit TSS (type 9) is refused.
        assert_eq!(check_descriptor(0x0000_8900_0000_0067), None);
        // A call gate to guest entry 1, and one to Xen's ring-0 CS.
        assert!(check_descriptor(0x0000_ec00_0008_1000).is_some());
        assert_eq!(check_descriptor(0x0000_ec00_e008_1000), None);
    }

    #[test]
    fn cr_views_and_runstate() {
        let mut p = PvCpu::default();
        assert_eq!(p.cr0(), 0x8005_0033);
        p.cr0_ts = true;
        assert_eq!(p.cr0() & CR0_TS, CR0_TS);
        p.write_cr4(p.cr4() | 1 << 7 | CR4_DE);
        assert_eq!(p.cr4(), CR4_VISIBLE | CR4_DE, "PGE discarded, DE kept");
        let mut r = Runstate::default();
        r.switch(2, 100);
        r.switch(0, 250);
        let b = r.bytes(300);
        assert_eq!(u64::from_le_bytes(b[16..24].try_into().unwrap()), 150);
        assert_eq!(u64::from_le_bytes(b[32..40].try_into().unwrap()), 150);
    }
}
