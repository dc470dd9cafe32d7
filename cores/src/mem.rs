//! Guest-virtual memory as the functional core sees it.
//!
//! A core reaches memory only through [`GuestMemory`]: byte-exact reads and
//! writes of guest-virtual addresses, where a failed access is a page fault
//! reported back into the guest. [`FlatMemory`] is a simple sparse
//! implementation (4 KiB pages, all readable and writable) used by tests,
//! benchmarks and the differential tester; the machine's own implementation
//! (address translation onto machine memory) lives with the hypervisor.
//!
//! Contract: an access that fails changes nothing. In particular a write
//! spanning two pages where the second is unmapped writes no byte at all,
//! which is what makes the core's faults precise.

use std::collections::BTreeMap;
use std::fmt;

/// Size of a page in bytes.
pub const PAGE_SIZE: u64 = 4096;

/// A failed guest-virtual access: the guest sees #PF (or #GP(0) for a
/// non-canonical address).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PageFault {
    /// The first guest-virtual address that could not be accessed.
    pub addr: u64,
    /// Whether the access was a write.
    pub write: bool,
    /// The #PF error code ([`crate::paging::pfec`] bits), or
    /// [`PageFault::NON_CANONICAL`].
    pub code: u16,
}

impl PageFault {
    /// `code` of a non-canonical address: the access raises #GP(0).
    pub const NON_CANONICAL: u16 = 1 << 15;

    /// A fault on an address that is not mapped at all (error code: only
    /// the write bit).
    pub const fn absent(addr: u64, write: bool) -> Self {
        PageFault {
            addr,
            write,
            code: if write {
                crate::paging::pfec::WRITE as u16
            } else {
                0
            },
        }
    }

    /// A fault with error code `code`; a write when it has the write bit.
    pub const fn from_code(addr: u64, code: u16) -> Self {
        PageFault {
            addr,
            write: code & crate::paging::pfec::WRITE as u16 != 0,
            code,
        }
    }

    /// The fault a write to the same place raises, given the fault of a
    /// read there: whatever stops a read (a page not present, a reserved
    /// bit, a supervisor page from user mode) stops a write too, and the
    /// error code gains the write bit. A store probe that reads before it
    /// writes reports its faults through this.
    pub const fn as_write(self) -> Self {
        if self.code & Self::NON_CANONICAL != 0 {
            return PageFault {
                write: true,
                ..self
            };
        }
        Self::from_code(self.addr, self.code | crate::paging::pfec::WRITE as u16)
    }

    /// The exception vector the guest sees: 14 (#PF) or 13 (#GP).
    pub fn vector(&self) -> u8 {
        if self.code & Self::NON_CANONICAL != 0 {
            13
        } else {
            14
        }
    }

    /// The error code pushed with the exception.
    pub fn error_code(&self) -> u32 {
        if self.code & Self::NON_CANONICAL != 0 {
            0
        } else {
            u32::from(self.code)
        }
    }
}

impl fmt::Display for PageFault {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let kind = if self.write { "write" } else { "read" };
        if self.code & Self::NON_CANONICAL != 0 {
            return write!(f, "#GP: {kind} of non-canonical address {:#x}", self.addr);
        }
        write!(f, "page fault on {kind} of {:#x}", self.addr)?;
        if self.code & !(crate::paging::pfec::WRITE as u16) != 0 {
            write!(f, " (error code {:#x})", self.code)?;
        }
        Ok(())
    }
}

/// Why a guest-virtual access did not complete.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum MemStop {
    /// The guest sees #PF.
    Fault(PageFault),
    /// The access cannot be served now (a miss in flight, no MSHR, a full
    /// store buffer, a lock to take, a fence waiting for stores to drain):
    /// the instruction stops with nothing done and is retried later.
    Retry,
}

impl From<PageFault> for MemStop {
    fn from(pf: PageFault) -> Self {
        MemStop::Fault(pf)
    }
}

impl fmt::Display for MemStop {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            MemStop::Fault(pf) => pf.fmt(f),
            MemStop::Retry => f.write_str("access to retry"),
        }
    }
}

/// Guest-virtual memory seen by a core; a failed access is a page fault,
/// a blocked one a retry ([`MemStop`]).
///
/// Implementations must not apply any part of a failed access.
pub trait GuestMemory {
    /// Reads `buf.len()` bytes starting at `addr`.
    fn read(&mut self, addr: u64, buf: &mut [u8]) -> Result<(), MemStop>;
    /// Writes `data` starting at `addr`, all or nothing.
    fn write(&mut self, addr: u64, data: &[u8]) -> Result<(), MemStop>;

    /// Reads a little-endian value of `size` bytes (1, 2, 4, 8), zero-extended.
    ///
    /// Provided for speed: implementations may override it with a fast path.
    fn load(&mut self, addr: u64, size: u8) -> Result<u64, MemStop> {
        let mut b = [0u8; 8];
        self.read(addr, &mut b[..usize::from(size)])?;
        Ok(u64::from_le_bytes(b))
    }

    /// Writes the low `size` bytes (1, 2, 4, 8) of `value`, little-endian.
    fn store(&mut self, addr: u64, size: u8, value: u64) -> Result<(), MemStop> {
        self.write(addr, &value.to_le_bytes()[..usize::from(size)])
    }

    /// A fence (`mfence`; `lfence` and `sfence` are treated as full fences,
    /// which is conservative). Memory that buffers stores returns
    /// [`MemStop::Retry`] while earlier stores are not yet globally
    /// visible; the instruction then stops with nothing done.
    fn fence(&mut self) -> Result<(), MemStop> {
        Ok(())
    }

    /// `pause`, a spin-wait hint. A memory that serializes cores by
    /// quanta (the fast-forward model) may stop the instruction with
    /// [`MemStop::Retry`] to end its quantum there.
    fn pause(&mut self) -> Result<(), MemStop> {
        Ok(())
    }

    /// Whether the core must announce every instruction it starts
    /// ([`GuestMemory::insn_start`]); asked once per run. Memories that
    /// buffer a run's stores across instructions need it to keep faults
    /// precise and to know which loads belong to the current instruction.
    fn wants_boundaries(&self) -> bool {
        false
    }

    /// The instruction at `rip` starts (each REP iteration is one), when
    /// [`GuestMemory::wants_boundaries`] said so.
    fn insn_start(&mut self, rip: u64) {
        let _ = rip;
    }
}

/// Entries of [`FlatMemory`]'s direct-mapped page-lookup cache.
const TLB_ENTRIES: usize = 64;

/// Sparse guest memory of 4 KiB pages, all readable and writable.
///
/// Pages are zero-filled when mapped. Lookups go through a small
/// direct-mapped cache in front of an ordered map.
#[derive(Clone, Debug)]
pub struct FlatMemory {
    /// Page contents, indexed by the values of `index`.
    pages: Vec<Box<[u8; PAGE_SIZE as usize]>>,
    /// Page number → position in `pages`.
    index: BTreeMap<u64, u32>,
    /// Direct-mapped cache of `index`: (page number, position); tag `u64::MAX` = empty.
    tlb: [(u64, u32); TLB_ENTRIES],
}

impl Default for FlatMemory {
    fn default() -> Self {
        Self::new()
    }
}

impl FlatMemory {
    /// An empty memory: every access faults until pages are mapped.
    pub fn new() -> Self {
        Self {
            pages: Vec::new(),
            index: BTreeMap::new(),
            tlb: [(u64::MAX, 0); TLB_ENTRIES],
        }
    }

    /// Maps (zero-filled) every page overlapping `[addr, addr + len)`.
    /// Pages already mapped keep their contents.
    pub fn map(&mut self, addr: u64, len: u64) {
        if len == 0 {
            return;
        }
        let first = addr / PAGE_SIZE;
        let last = addr.saturating_add(len - 1) / PAGE_SIZE;
        for pn in first..=last {
            if !self.index.contains_key(&pn) {
                let pos = u32::try_from(self.pages.len()).expect("fewer than 2^32 pages");
                self.pages.push(Box::new([0; PAGE_SIZE as usize]));
                self.index.insert(pn, pos);
            }
        }
    }

    /// Removes the mapping of every page overlapping `[addr, addr + len)`.
    pub fn unmap(&mut self, addr: u64, len: u64) {
        if len == 0 {
            return;
        }
        let first = addr / PAGE_SIZE;
        let last = addr.saturating_add(len - 1) / PAGE_SIZE;
        for pn in first..=last {
            self.index.remove(&pn);
        }
        self.tlb = [(u64::MAX, 0); TLB_ENTRIES];
    }

    /// Whether the byte at `addr` is mapped.
    pub fn is_mapped(&self, addr: u64) -> bool {
        self.index.contains_key(&(addr / PAGE_SIZE))
    }

    /// Position in `pages` of page number `pn`, if mapped.
    #[inline]
    fn page_pos(&mut self, pn: u64) -> Option<usize> {
        // Truncation is the point: the low bits of the page number pick the slot.
        let slot = (pn as usize) % TLB_ENTRIES;
        let (tag, pos) = self.tlb[slot];
        if tag == pn {
            return Some(pos as usize);
        }
        let pos = *self.index.get(&pn)?;
        self.tlb[slot] = (pn, pos);
        Some(pos as usize)
    }

    /// Checks that every page of `[addr, addr + len)` is mapped.
    fn check(&mut self, addr: u64, len: usize, write: bool) -> Result<(), PageFault> {
        let mut a = addr;
        let end = addr.wrapping_add(len as u64);
        while a != end {
            if self.page_pos(a / PAGE_SIZE).is_none() {
                return Err(PageFault::absent(a, write));
            }
            let next = (a / PAGE_SIZE + 1).wrapping_mul(PAGE_SIZE);
            a = if end.wrapping_sub(a) <= next.wrapping_sub(a) {
                end
            } else {
                next
            };
        }
        Ok(())
    }

    /// Copies between guest memory and `buf`, page by page; the range is checked already.
    fn copy(&mut self, addr: u64, buf: &mut [u8], to_guest: bool) {
        let mut done = 0usize;
        while done < buf.len() {
            let a = addr.wrapping_add(done as u64);
            let off = (a % PAGE_SIZE) as usize;
            let n = (PAGE_SIZE as usize - off).min(buf.len() - done);
            let pos = self
                .page_pos(a / PAGE_SIZE)
                .expect("range checked before copy");
            let page = &mut self.pages[pos];
            if to_guest {
                page[off..off + n].copy_from_slice(&buf[done..done + n]);
            } else {
                buf[done..done + n].copy_from_slice(&page[off..off + n]);
            }
            done += n;
        }
    }
}

impl GuestMemory for FlatMemory {
    fn read(&mut self, addr: u64, buf: &mut [u8]) -> Result<(), MemStop> {
        self.check(addr, buf.len(), false)?;
        self.copy(addr, buf, false);
        Ok(())
    }

    fn write(&mut self, addr: u64, data: &[u8]) -> Result<(), MemStop> {
        self.check(addr, data.len(), true)?;
        let mut tmp = [0u8; 64];
        if data.len() <= tmp.len() {
            tmp[..data.len()].copy_from_slice(data);
            self.copy(addr, &mut tmp[..data.len()], true);
        } else {
            let mut v = data.to_vec();
            self.copy(addr, &mut v, true);
        }
        Ok(())
    }

    #[inline]
    fn load(&mut self, addr: u64, size: u8) -> Result<u64, MemStop> {
        let off = (addr % PAGE_SIZE) as usize;
        // Fast path: a whole 8-byte word inside the page, masked to size.
        if off <= PAGE_SIZE as usize - 8 {
            let Some(pos) = self.page_pos(addr / PAGE_SIZE) else {
                return Err(PageFault::absent(addr, false).into());
            };
            let w: [u8; 8] = self.pages[pos][off..off + 8].try_into().expect("8 bytes");
            return Ok(u64::from_le_bytes(w) & size_mask(size));
        }
        let mut b = [0u8; 8];
        self.read(addr, &mut b[..usize::from(size)])?;
        Ok(u64::from_le_bytes(b))
    }

    #[inline]
    fn store(&mut self, addr: u64, size: u8, value: u64) -> Result<(), MemStop> {
        let off = (addr % PAGE_SIZE) as usize;
        if off <= PAGE_SIZE as usize - 8 {
            let Some(pos) = self.page_pos(addr / PAGE_SIZE) else {
                return Err(PageFault::absent(addr, true).into());
            };
            let w: &mut [u8; 8] = (&mut self.pages[pos][off..off + 8])
                .try_into()
                .expect("8 bytes");
            let m = size_mask(size);
            *w = ((u64::from_le_bytes(*w) & !m) | (value & m)).to_le_bytes();
            return Ok(());
        }
        self.write(addr, &value.to_le_bytes()[..usize::from(size)])
    }
}

/// All-ones mask of `size` (1, 2, 4, 8) bytes.
#[inline(always)]
fn size_mask(size: u8) -> u64 {
    u64::MAX >> (64 - 8 * u32::from(size))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unmapped_read_faults_with_address() {
        let mut m = FlatMemory::new();
        m.map(0x1000, 0x1000);
        let mut b = [0u8; 8];
        assert_eq!(
            m.read(0x1ffc, &mut b),
            Err(MemStop::Fault(PageFault::absent(0x2000, false)))
        );
        assert_eq!(
            m.load(0x3000, 4),
            Err(MemStop::Fault(PageFault::absent(0x3000, false)))
        );
    }

    #[test]
    fn cross_page_write_is_all_or_nothing() {
        let mut m = FlatMemory::new();
        m.map(0x1000, 0x1000);
        assert_eq!(
            m.store(0x1ffe, 4, 0xdead_beef),
            Err(MemStop::Fault(PageFault::absent(0x2000, true)))
        );
        assert_eq!(m.load(0x1ffe, 2), Ok(0));
        m.map(0x2000, 1);
        m.store(0x1ffe, 4, 0xdead_beef).expect("both pages mapped");
        assert_eq!(m.load(0x1ffe, 4), Ok(0xdead_beef));
        assert_eq!(m.load(0x2000, 1), Ok(0xad));
    }

    #[test]
    fn a_read_fault_as_a_write_gains_the_write_bit() {
        let pf = PageFault::from_code(0x2000, 0x5).as_write();
        assert_eq!((pf.code, pf.write), (0x7, true));
        let nc = PageFault::from_code(0x8000_0000_0000, PageFault::NON_CANONICAL).as_write();
        assert_eq!((nc.vector(), nc.error_code(), nc.write), (13, 0, true));
    }

    #[test]
    fn unmap_removes_page() {
        let mut m = FlatMemory::new();
        m.map(0x5000, 1);
        m.store(0x5000, 8, 7).expect("mapped");
        assert_eq!(m.load(0x5000, 8), Ok(7));
        m.unmap(0x5000, 1);
        assert!(!m.is_mapped(0x5000));
        assert!(m.load(0x5000, 8).is_err());
    }
}
