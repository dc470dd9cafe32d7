//! x86-64 4-level paging: the page-table walk a context's TLB misses take.
//!
//! [`walk`] follows CR3 → L4 → L3 → L2 → L1 in machine memory, checks the
//! access against every level (R/W with CR0.WP set, NX with EFER.NXE set,
//! reserved bits), sets the accessed bit of every entry it uses and the
//! dirty bit of the leaf on a write (with an atomic OR, so two cores
//! walking one table never lose a bit), and returns the 4 KiB frame with
//! its permissions, or the #PF error code. 2 MiB and 1 GiB pages (PS at L2
//! and L3) are walked; PS at L4 is a reserved-bit fault.
//!
//! # Privilege
//! A PV64 guest kernel runs in ring 3 and Xen sets `_PAGE_USER` on every
//! guest mapping, so user/supervisor never faults here; guest user mode is
//! isolated by its own page tables (the user base pointer). The #PF error
//! code's U bit is the guest mode's, as Xen reports it.
//!
//! # Determinism
//! The accessed/dirty bits are set during an epoch, outside the coherence
//! protocol. Their final values are deterministic; a guest that reads a
//! page-table entry in the same quantum in which another core walks it for
//! the first time may see the bit set or not. (Page-table frames are never
//! guest-writable, so no guest store races the walker.)

use serde::{Deserialize, Serialize};
use smpsim_uncore::memory::{MachineAddr, MachineMemory};

/// Page-table entry bits.
pub mod pte {
    /// Present.
    pub const P: u64 = 1 << 0;
    /// Writable.
    pub const RW: u64 = 1 << 1;
    /// User-accessible.
    pub const US: u64 = 1 << 2;
    /// Write-through.
    pub const PWT: u64 = 1 << 3;
    /// Cache disable.
    pub const PCD: u64 = 1 << 4;
    /// Accessed.
    pub const A: u64 = 1 << 5;
    /// Dirty (leaf entries).
    pub const D: u64 = 1 << 6;
    /// Page size (a 2 MiB page at L2, 1 GiB at L3).
    pub const PS: u64 = 1 << 7;
    /// Global.
    pub const G: u64 = 1 << 8;
    /// No-execute.
    pub const NX: u64 = 1 << 63;
    /// The frame address bits of a 4 KiB entry.
    pub const ADDR: u64 = 0x000f_ffff_ffff_f000;
}

/// #PF error-code bits.
pub mod pfec {
    /// The page was present (a protection violation).
    pub const PRESENT: u32 = 1 << 0;
    /// The access was a write.
    pub const WRITE: u32 = 1 << 1;
    /// The access came from (guest) user mode.
    pub const USER: u32 = 1 << 2;
    /// A reserved bit was set in an entry.
    pub const RSVD: u32 = 1 << 3;
    /// The access was an instruction fetch.
    pub const FETCH: u32 = 1 << 4;
}

/// The kind of an access.
#[derive(Copy, Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum AccessKind {
    /// A data read.
    Read,
    /// A data write.
    Write,
    /// An instruction fetch.
    Fetch,
}

/// A successful translation.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub struct Translation {
    /// Machine address of the 4 KiB frame holding the address.
    pub frame: u64,
    /// Writes may use it without another walk (writable at every level
    /// and the leaf's dirty bit set).
    pub write_ok: bool,
    /// Instruction fetches may use it (no level has NX).
    pub exec_ok: bool,
    /// Entries read by the walk (machine addresses, L4 first), for timing
    /// models that send the walk's loads through the caches.
    pub walk: WalkTrace,
}

/// The entries one walk read.
#[derive(Copy, Clone, Debug, Default, PartialEq, Eq)]
pub struct WalkTrace {
    /// Machine addresses of the entries, L4 first.
    pub entries: [u64; 4],
    /// How many of `entries` were read (0: no walk, e.g. a fixed mapping).
    pub len: u8,
}

/// Why a translation failed.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub enum WalkFault {
    /// A page fault with this error code (without the USER bit: the caller
    /// adds it in guest user mode).
    Page(u32),
    /// The address is not canonical (#GP(0), not #PF).
    NonCanonical,
}

/// Machine memory as the walker reads and updates it.
pub trait PteMemory {
    /// The 8-byte entry at machine address `at` (None: outside memory).
    fn read_pte(&mut self, at: u64) -> Option<u64>;
    /// ORs `bits` into the entry at `at` (atomically where memory is
    /// shared).
    fn set_pte_bits(&mut self, at: u64, bits: u64);
}

impl PteMemory for &MachineMemory {
    #[inline]
    fn read_pte(&mut self, at: u64) -> Option<u64> {
        self.read_u64(MachineAddr(at)).ok()
    }

    #[inline]
    fn set_pte_bits(&mut self, at: u64, bits: u64) {
        // In range: the entry was just read from there.
        let _ = self.fetch_or_u64(MachineAddr(at), bits);
    }
}

/// Whether `va` is canonical (bits 63..47 equal).
pub fn is_canonical(va: u64) -> bool {
    let top = va >> 47;
    top == 0 || top == 0x1_ffff
}

/// Index of `va` in the table at `level` (4 = L4 .. 1 = L1).
pub fn index(va: u64, level: u32) -> u64 {
    (va >> (12 + 9 * (level - 1))) & 0x1ff
}

/// Walks the 4-level tables rooted at machine address `root` (CR3's frame)
/// for an access of `kind` to `va`, setting accessed and dirty bits.
pub fn walk<M: PteMemory + ?Sized>(
    mem: &mut M,
    root: u64,
    va: u64,
    kind: AccessKind,
) -> Result<Translation, WalkFault> {
    if !is_canonical(va) {
        return Err(WalkFault::NonCanonical);
    }
    let write = kind == AccessKind::Write;
    let access = match kind {
        AccessKind::Read => 0,
        AccessKind::Write => pfec::WRITE,
        AccessKind::Fetch => pfec::FETCH,
    };
    let mut table = root & pte::ADDR;
    let mut trace = WalkTrace::default();
    let (mut writable, mut exec) = (true, true);
    for level in (1..=4u32).rev() {
        let at = table + 8 * index(va, level);
        trace.entries[trace.len as usize] = at;
        trace.len += 1;
        let e = mem.read_pte(at).ok_or(WalkFault::Page(access))?;
        if e & pte::P == 0 {
            return Err(WalkFault::Page(access));
        }
        let leaf = level == 1 || e & pte::PS != 0;
        if e & pte::PS != 0 {
            // PS at L4 is reserved; a large page's low address bits (PAT
            // at bit 12 aside) must be zero.
            let low = (1u64 << (12 + 9 * (level - 1))) - 1;
            if level == 4 || e & pte::ADDR & low & !(1 << 12) != 0 {
                return Err(WalkFault::Page(access | pfec::PRESENT | pfec::RSVD));
            }
        }
        writable &= e & pte::RW != 0;
        exec &= e & pte::NX == 0;
        let fault = (write && !writable) || (kind == AccessKind::Fetch && !exec);
        if leaf && fault {
            return Err(WalkFault::Page(access | pfec::PRESENT));
        }
        let mut bits = pte::A;
        if leaf && write {
            bits |= pte::D;
        }
        if e & bits != bits {
            mem.set_pte_bits(at, bits);
        }
        if leaf {
            let span = 1u64 << (12 + 9 * (level - 1));
            let base = e & pte::ADDR & !(span - 1);
            let frame = base + (va & (span - 1) & !0xfff);
            let dirty = write || e & pte::D != 0;
            return Ok(Translation {
                frame,
                write_ok: writable && dirty,
                exec_ok: exec,
                walk: trace,
            });
        }
        table = e & pte::ADDR;
    }
    unreachable!("level 1 is always a leaf")
}

#[cfg(test)]
mod tests {
    use super::*;

    const RWP: u64 = pte::P | pte::RW;

    /// Tables at frames 1 (L4), 2 (L3), 3 (L2), 4 (L1) mapping VA 0x40_0000
    /// to frame 9 with `leaf` flags.
    fn tables(leaf: u64) -> MachineMemory {
        let m = MachineMemory::new(64 * 4096).expect("size");
        let va = 0x40_0000u64;
        m.write_u64(MachineAddr(0x1000 + 8 * index(va, 4)), 0x2000 | RWP)
            .unwrap();
        m.write_u64(MachineAddr(0x2000 + 8 * index(va, 3)), 0x3000 | RWP)
            .unwrap();
        m.write_u64(MachineAddr(0x3000 + 8 * index(va, 2)), 0x4000 | RWP)
            .unwrap();
        m.write_u64(MachineAddr(0x4000 + 8 * index(va, 1)), 0x9000 | leaf)
            .unwrap();
        m
    }

    #[test]
    fn a_walk_finds_the_frame_and_sets_accessed_then_dirty() {
        let m = tables(RWP);
        let t = walk(&mut &m, 0x1000, 0x40_0123, AccessKind::Read).expect("mapped");
        assert_eq!(t.frame, 0x9000);
        assert!(!t.write_ok, "not dirty yet: a write must walk again");
        assert!(t.exec_ok);
        assert_eq!(t.walk.len, 4);
        assert_eq!(t.walk.entries[0], 0x1000 + 8 * index(0x40_0000, 4));
        let l1 = MachineAddr(0x4000 + 8 * index(0x40_0000, 1));
        assert_eq!(m.read_u64(l1).unwrap(), 0x9000 | RWP | pte::A);
        let t = walk(&mut &m, 0x1000, 0x40_0123, AccessKind::Write).expect("writable");
        assert!(t.write_ok);
        assert_eq!(m.read_u64(l1).unwrap(), 0x9000 | RWP | pte::A | pte::D);
        let l4 = MachineAddr(0x1000 + 8 * index(0x40_0000, 4));
        assert_eq!(
            m.read_u64(l4).unwrap(),
            0x2000 | RWP | pte::A,
            "no D above the leaf"
        );
    }

    #[test]
    fn faults_carry_the_error_code() {
        let m = tables(pte::P | pte::NX);
        assert_eq!(
            walk(&mut &m, 0x1000, 0x40_0000, AccessKind::Write),
            Err(WalkFault::Page(pfec::PRESENT | pfec::WRITE))
        );
        assert_eq!(
            walk(&mut &m, 0x1000, 0x40_0000, AccessKind::Fetch),
            Err(WalkFault::Page(pfec::PRESENT | pfec::FETCH))
        );
        assert_eq!(
            walk(&mut &m, 0x1000, 0x80_0000, AccessKind::Read),
            Err(WalkFault::Page(0)),
            "L2 entry not present"
        );
        assert_eq!(
            walk(&mut &m, 0x1000, 0x8000_0000_0000, AccessKind::Read),
            Err(WalkFault::NonCanonical)
        );
        let l1 = MachineAddr(0x4000 + 8 * index(0x40_0000, 1));
        assert_eq!(
            m.read_u64(l1).unwrap(),
            0x9000 | pte::P | pte::NX,
            "no A on a fault"
        );
    }

    #[test]
    fn large_pages_map_their_subframes_and_ps_at_l4_is_reserved() {
        let m = tables(RWP);
        let va = 0x40_0000u64;
        // Make the L2 entry a 2 MiB page at 0x20_0000 (within 64 frames? no:
        // frames past the memory are never read, only computed).
        m.write_u64(
            MachineAddr(0x3000 + 8 * index(va, 2)),
            0x20_0000 | RWP | pte::PS,
        )
        .unwrap();
        let t = walk(&mut &m, 0x1000, va + 0x5_4321, AccessKind::Read).expect("2 MiB page");
        assert_eq!(t.frame, 0x25_4000);
        assert_eq!(t.walk.len, 3);
        m.write_u64(
            MachineAddr(0x3000 + 8 * index(va, 2)),
            0x20_1000 | RWP | pte::PS | 0x2000,
        )
        .unwrap();
        assert_eq!(
            walk(&mut &m, 0x1000, va, AccessKind::Read),
            Err(WalkFault::Page(pfec::PRESENT | pfec::RSVD))
        );
        m.write_u64(
            MachineAddr(0x1000 + 8 * index(va, 4)),
            0x2000 | RWP | pte::PS,
        )
        .unwrap();
        assert_eq!(
            walk(&mut &m, 0x1000, va, AccessKind::Read),
            Err(WalkFault::Page(pfec::PRESENT | pfec::RSVD))
        );
    }

    #[test]
    fn a_read_only_level_above_makes_the_page_read_only() {
        let m = tables(RWP | pte::D | pte::A);
        let va = 0x40_0000u64;
        m.write_u64(MachineAddr(0x2000 + 8 * index(va, 3)), 0x3000 | pte::P)
            .unwrap();
        let t = walk(&mut &m, 0x1000, va, AccessKind::Read).expect("readable");
        assert!(!t.write_ok);
        assert_eq!(
            walk(&mut &m, 0x1000, va, AccessKind::Write),
            Err(WalkFault::Page(pfec::PRESENT | pfec::WRITE))
        );
    }
}
