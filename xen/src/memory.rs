//! What the hypervisor needs from the machine's memory, as traits the
//! machine implements, plus the per-domain address space the builder
//! creates and a reference implementation used by tests.
//!
//! - [`FrameStore`]: machine memory by machine address (the builder writes
//!   guest images, shared_info and start_info through it).
//! - [`GuestMemory`]: guest-virtual reads and writes with a fault result
//!   (hypercall argument copy-in/copy-out, bounce frames). A bad pointer is a
//!   [`Fault`], which hypercalls turn into -EFAULT — never a panic.
//! - [`crate::event_2l::EventMemory`]: atomic bit operations at machine
//!   addresses (shared_info / vcpu_info event state).
//!
//! [`HypervisorMemory`] is the combination a hypercall needs; it is
//! implemented for every type that implements the last two.
//! [`PagedMemory`] implements it over a VCPU's address map
//! ([`crate::mmu::PvSpace`]: its page tables) and a [`FrameStore`]; the
//! machine uses it directly (functional accesses).

use std::collections::BTreeMap;

use crate::mmu::PvSpace;
use smpsim_cores::paging::{AccessKind, PteMemory};

use crate::event_2l::EventMemory;
use crate::ids::PAGE_SIZE;

/// A guest-virtual access that hit an unmapped page.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub struct Fault {
    /// The first faulting virtual address.
    pub va: u64,
}

/// Guest-virtual memory of the calling VCPU's address space.
pub trait GuestMemory {
    /// Reads `buf.len()` bytes at `va`.
    fn read_virt(&mut self, va: u64, buf: &mut [u8]) -> Result<(), Fault>;
    /// Writes `bytes` at `va`.
    fn write_virt(&mut self, va: u64, bytes: &[u8]) -> Result<(), Fault>;

    /// Reads a little-endian u64.
    fn read_virt_u64(&mut self, va: u64) -> Result<u64, Fault> {
        let mut b = [0u8; 8];
        self.read_virt(va, &mut b)?;
        Ok(u64::from_le_bytes(b))
    }

    /// Writes a little-endian u64.
    fn write_virt_u64(&mut self, va: u64, v: u64) -> Result<(), Fault> {
        self.write_virt(va, &v.to_le_bytes())
    }
}

/// Everything a hypercall touches: guest-virtual memory and machine-address
/// event state.
pub trait HypervisorMemory: GuestMemory + EventMemory {}

impl<T: GuestMemory + EventMemory> HypervisorMemory for T {}

/// Machine memory by machine address.
pub trait FrameStore {
    /// Reads `buf.len()` bytes at machine address `maddr`.
    fn read(&mut self, maddr: u64, buf: &mut [u8]);
    /// Writes `bytes` at machine address `maddr`.
    fn write(&mut self, maddr: u64, bytes: &[u8]);
}

/// A sparse in-memory [`FrameStore`] (frames appear zeroed on first touch).
#[derive(Clone, Debug, Default)]
pub struct SparseFrames {
    frames: BTreeMap<u64, Box<[u8]>>,
}

impl SparseFrames {
    /// An empty store.
    pub fn new() -> Self {
        Self::default()
    }

    fn frame(&mut self, mfn: u64) -> &mut [u8] {
        self.frames
            .entry(mfn)
            .or_insert_with(|| vec![0u8; PAGE_SIZE as usize].into_boxed_slice())
    }

    /// Frames touched so far.
    pub fn frames_touched(&self) -> usize {
        self.frames.len()
    }
}

/// Splits `[addr, addr+len)` into per-page pieces `(addr, start, len)`.
pub(crate) fn pieces(addr: u64, len: usize) -> impl Iterator<Item = (u64, usize, usize)> {
    let mut done = 0usize;
    std::iter::from_fn(move || {
        if done >= len {
            return None;
        }
        // Guest addresses wrap (and then fault) rather than overflow.
        let a = addr.wrapping_add(done as u64);
        let room = (PAGE_SIZE - a % PAGE_SIZE) as usize;
        let n = room.min(len - done);
        let piece = (a, done, n);
        done += n;
        Some(piece)
    })
}

impl FrameStore for SparseFrames {
    fn read(&mut self, maddr: u64, buf: &mut [u8]) {
        for (a, at, n) in pieces(maddr, buf.len()) {
            let off = (a % PAGE_SIZE) as usize;
            let f = self.frame(a / PAGE_SIZE);
            buf[at..at + n].copy_from_slice(&f[off..off + n]);
        }
    }

    fn write(&mut self, maddr: u64, bytes: &[u8]) {
        for (a, at, n) in pieces(maddr, bytes.len()) {
            let off = (a % PAGE_SIZE) as usize;
            let f = self.frame(a / PAGE_SIZE);
            f[off..off + n].copy_from_slice(&bytes[at..at + n]);
        }
    }
}

/// [`HypervisorMemory`] over a VCPU's address map and a frame store: plain
/// functional accesses, no caches. Guest-virtual accesses walk the VCPU's
/// page tables with the guest's permissions (a write needs a writable
/// mapping), so a hypercall cannot write a page-table frame either.
pub struct PagedMemory<'a> {
    /// The calling VCPU's address map.
    pub space: &'a PvSpace,
    /// Machine memory.
    pub store: &'a mut dyn FrameStore,
}

impl PagedMemory<'_> {
    fn frame(&mut self, va: u64, kind: AccessKind) -> Result<u64, Fault> {
        self.space
            .translate_in(&mut StoreMa(&mut *self.store), va, kind)
            .map(|t| t.frame)
            .map_err(|_| Fault { va })
    }
}

impl GuestMemory for PagedMemory<'_> {
    fn read_virt(&mut self, va: u64, buf: &mut [u8]) -> Result<(), Fault> {
        for (a, at, n) in pieces(va, buf.len()) {
            let f = self.frame(a, AccessKind::Read)?;
            self.store.read(f + a % PAGE_SIZE, &mut buf[at..at + n]);
        }
        Ok(())
    }

    fn write_virt(&mut self, va: u64, bytes: &[u8]) -> Result<(), Fault> {
        // Check every page first: a failed write writes nothing.
        for (a, _, _) in pieces(va, bytes.len()) {
            self.frame(a, AccessKind::Write)?;
        }
        for (a, at, n) in pieces(va, bytes.len()) {
            let f = self.frame(a, AccessKind::Write)?;
            self.store.write(f + a % PAGE_SIZE, &bytes[at..at + n]);
        }
        Ok(())
    }
}

/// Event state (and other machine-address accesses) straight on a
/// [`FrameStore`].
pub struct StoreMa<'a>(pub &'a mut dyn FrameStore);

impl StoreMa<'_> {
    fn word(&mut self, addr: u64) -> u64 {
        let mut b = [0u8; 8];
        self.0.read(addr, &mut b);
        u64::from_le_bytes(b)
    }
}

impl EventMemory for StoreMa<'_> {
    fn test_and_set_bit(&mut self, addr: u64, bit: u32) -> bool {
        let w = self.word(addr);
        self.0.write(addr, &(w | 1 << bit).to_le_bytes());
        w >> bit & 1 == 1
    }

    fn test_and_clear_bit(&mut self, addr: u64, bit: u32) -> bool {
        let w = self.word(addr);
        self.0.write(addr, &(w & !(1 << bit)).to_le_bytes());
        w >> bit & 1 == 1
    }

    fn test_bit(&mut self, addr: u64, bit: u32) -> bool {
        self.word(addr) >> bit & 1 == 1
    }

    fn read_u8(&mut self, addr: u64) -> u8 {
        let mut b = [0u8];
        self.0.read(addr, &mut b);
        b[0]
    }

    fn write_u8(&mut self, addr: u64, value: u8) {
        self.0.write(addr, &[value]);
    }

    fn read_ma_u64(&mut self, addr: u64) -> u64 {
        self.word(addr)
    }

    fn write_ma_u64(&mut self, addr: u64, value: u64) {
        self.0.write(addr, &value.to_le_bytes());
    }
}

/// Page-table entries through the store (the hypervisor's own walks:
/// hypercall arguments, bounce frames).
impl PteMemory for StoreMa<'_> {
    fn read_pte(&mut self, at: u64) -> Option<u64> {
        Some(self.word(at))
    }

    fn set_pte_bits(&mut self, at: u64, bits: u64) {
        let v = self.word(at) | bits;
        self.0.write(at, &v.to_le_bytes());
    }
}

impl EventMemory for PagedMemory<'_> {
    fn test_and_set_bit(&mut self, addr: u64, bit: u32) -> bool {
        StoreMa(&mut *self.store).test_and_set_bit(addr, bit)
    }

    fn test_and_clear_bit(&mut self, addr: u64, bit: u32) -> bool {
        StoreMa(&mut *self.store).test_and_clear_bit(addr, bit)
    }

    fn test_bit(&mut self, addr: u64, bit: u32) -> bool {
        StoreMa(&mut *self.store).test_bit(addr, bit)
    }

    fn read_u8(&mut self, addr: u64) -> u8 {
        StoreMa(&mut *self.store).read_u8(addr)
    }

    fn write_u8(&mut self, addr: u64, value: u8) {
        StoreMa(&mut *self.store).write_u8(addr, value)
    }

    fn read_ma_u64(&mut self, addr: u64) -> u64 {
        StoreMa(&mut *self.store).read_ma_u64(addr)
    }

    fn write_ma_u64(&mut self, addr: u64, value: u64) {
        StoreMa(&mut *self.store).write_ma_u64(addr, value)
    }
}
