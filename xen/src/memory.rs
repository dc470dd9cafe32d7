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
//! [`PagedMemory`] implements it over an [`AddressSpace`] and a
//! [`FrameStore`]; the machine may use it directly (functional accesses) or
//! implement the traits through its cores' caches.

use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

use crate::event_2l::EventMemory;
use crate::ids::{Mfn, PAGE_SIZE};

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
fn pieces(addr: u64, len: usize) -> impl Iterator<Item = (u64, usize, usize)> {
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

/// A domain's guest-virtual address space: virtual page → machine frame.
///
/// smpsim's PV guests run on this simple per-domain page map instead of x86
/// page tables (the layout is in [`crate::builder`]); every mapping is
/// readable and writable by the guest kernel.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct AddressSpace {
    pages: BTreeMap<u64, Mfn>,
}

impl AddressSpace {
    /// An empty address space.
    pub fn new() -> Self {
        Self::default()
    }

    /// Maps the page containing `va` to `mfn` (replacing any mapping).
    pub fn map(&mut self, va: u64, mfn: Mfn) {
        self.pages.insert(va / PAGE_SIZE, mfn);
    }

    /// Removes the mapping of the page containing `va`.
    pub fn unmap(&mut self, va: u64) -> Option<Mfn> {
        self.pages.remove(&(va / PAGE_SIZE))
    }

    /// The frame backing the page of `va`.
    pub fn frame(&self, va: u64) -> Option<Mfn> {
        self.pages.get(&(va / PAGE_SIZE)).copied()
    }

    /// The machine address of `va`.
    pub fn translate(&self, va: u64) -> Option<u64> {
        self.frame(va).map(|m| m.addr(va % PAGE_SIZE).get())
    }

    /// Every mapping `(virtual page number, frame)` in address order.
    pub fn iter(&self) -> impl Iterator<Item = (u64, Mfn)> + '_ {
        self.pages.iter().map(|(&vpn, &m)| (vpn, m))
    }

    /// Number of mapped pages.
    pub fn len(&self) -> usize {
        self.pages.len()
    }

    /// Whether nothing is mapped.
    pub fn is_empty(&self) -> bool {
        self.pages.is_empty()
    }

    /// Copies `bytes` to `va` through this map into `store`.
    pub fn write(&self, store: &mut dyn FrameStore, va: u64, bytes: &[u8]) -> Result<(), Fault> {
        for (a, at, n) in pieces(va, bytes.len()) {
            let ma = self.translate(a).ok_or(Fault { va: a })?;
            store.write(ma, &bytes[at..at + n]);
        }
        Ok(())
    }

    /// Reads `buf.len()` bytes at `va` through this map from `store`.
    pub fn read(&self, store: &mut dyn FrameStore, va: u64, buf: &mut [u8]) -> Result<(), Fault> {
        for (a, at, n) in pieces(va, buf.len()) {
            let ma = self.translate(a).ok_or(Fault { va: a })?;
            store.read(ma, &mut buf[at..at + n]);
        }
        Ok(())
    }
}

/// Serde for an `Arc<AddressSpace>` held by a domain: the map is written
/// as is (sharing with the cores is not state), and read back into a fresh
/// `Arc` that the cores pick up again with `Arc::clone`.
pub(crate) mod shared_space {
    use super::AddressSpace;
    use serde::{Deserialize, Deserializer, Serialize, Serializer};
    use std::sync::Arc;

    pub(crate) fn serialize<S: Serializer>(
        space: &Arc<AddressSpace>,
        s: S,
    ) -> Result<S::Ok, S::Error> {
        AddressSpace::serialize(space, s)
    }

    pub(crate) fn deserialize<'de, D: Deserializer<'de>>(
        d: D,
    ) -> Result<Arc<AddressSpace>, D::Error> {
        AddressSpace::deserialize(d).map(Arc::new)
    }
}

/// A core reaches guest-virtual memory through the VCPU's page map.
impl smpsim_cores::part::AddressMap for AddressSpace {
    fn translate(&self, va: u64) -> Option<u64> {
        AddressSpace::translate(self, va)
    }
}

/// [`HypervisorMemory`] over an address space and a frame store: plain
/// functional accesses, no caches.
pub struct PagedMemory<'a> {
    /// The calling domain's address space.
    pub space: &'a AddressSpace,
    /// Machine memory.
    pub store: &'a mut dyn FrameStore,
}

impl GuestMemory for PagedMemory<'_> {
    fn read_virt(&mut self, va: u64, buf: &mut [u8]) -> Result<(), Fault> {
        self.space.read(self.store, va, buf)
    }

    fn write_virt(&mut self, va: u64, bytes: &[u8]) -> Result<(), Fault> {
        self.space.write(self.store, va, bytes)
    }
}

impl PagedMemory<'_> {
    fn word(&mut self, addr: u64) -> u64 {
        let mut b = [0u8; 8];
        self.store.read(addr, &mut b);
        u64::from_le_bytes(b)
    }
}

impl EventMemory for PagedMemory<'_> {
    fn test_and_set_bit(&mut self, addr: u64, bit: u32) -> bool {
        let w = self.word(addr);
        self.store.write(addr, &(w | 1 << bit).to_le_bytes());
        w >> bit & 1 == 1
    }

    fn test_and_clear_bit(&mut self, addr: u64, bit: u32) -> bool {
        let w = self.word(addr);
        self.store.write(addr, &(w & !(1 << bit)).to_le_bytes());
        w >> bit & 1 == 1
    }

    fn test_bit(&mut self, addr: u64, bit: u32) -> bool {
        self.word(addr) >> bit & 1 == 1
    }

    fn read_u8(&mut self, addr: u64) -> u8 {
        let mut b = [0u8];
        self.store.read(addr, &mut b);
        b[0]
    }

    fn write_u8(&mut self, addr: u64, value: u8) {
        self.store.write(addr, &[value]);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn writes_cross_pages_through_the_map() {
        let mut store = SparseFrames::new();
        let mut space = AddressSpace::new();
        space.map(0x40_0000, Mfn(7));
        space.map(0x40_1000, Mfn(3));
        let bytes: Vec<u8> = (0..16).collect();
        space
            .write(&mut store, 0x40_0ff8, &bytes)
            .expect("both pages mapped");
        let mut b = [0u8; 8];
        store.read(7 * 4096 + 0xff8, &mut b);
        assert_eq!(b, [0, 1, 2, 3, 4, 5, 6, 7]);
        store.read(3 * 4096, &mut b);
        assert_eq!(b, [8, 9, 10, 11, 12, 13, 14, 15]);
        assert_eq!(space.translate(0x40_1010), Some(3 * 4096 + 0x10));
    }

    #[test]
    fn unmapped_pages_fault_at_the_first_bad_byte() {
        let mut store = SparseFrames::new();
        let mut space = AddressSpace::new();
        space.map(0x40_0000, Mfn(1));
        let mut m = PagedMemory {
            space: &space,
            store: &mut store,
        };
        assert_eq!(
            m.write_virt(0x40_0ffc, &[1; 8]),
            Err(Fault { va: 0x40_1000 })
        );
        assert_eq!(m.read_virt_u64(0), Err(Fault { va: 0 }));
        m.write_virt_u64(0x40_0010, 0xdead_beef).expect("mapped");
        assert_eq!(m.read_virt_u64(0x40_0010), Ok(0xdead_beef));
        assert!(!m.test_and_set_bit(4096 + 0x10, 40));
        assert!(m.test_bit(4096 + 0x10, 40));
        assert!(m.test_and_clear_bit(4096 + 0x10, 40));
        assert_eq!(m.read_u8(4096 + 0x10), 0xef);
    }
}
