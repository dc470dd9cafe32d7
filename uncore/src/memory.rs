//! Machine memory: one store of 4 KiB frames shared by every host thread.
//!
//! # What it models
//! The contents of the simulated machine's RAM (DESIGN.md §3). Caches hold
//! tags, states and timing only; every load and store of every core reads
//! and writes this store directly. Addresses are machine addresses
//! ([`MachineAddr`], bytes), frames are [`Mfn`]s (4 KiB), coherence lines
//! are [`LineAddr`]s (64 bytes). Values are little-endian, as on x86-64.
//!
//! # How to call it
//! Build one [`MachineMemory`] with the configured size, wrap it in an
//! `Arc`, and hand a clone to every partition. All methods take `&self`:
//! - hot path: [`MachineMemory::load`] / [`MachineMemory::store`] (1–8
//!   bytes, any alignment), the typed `read_u8`…`read_u128` /
//!   `write_u8`…`write_u128` (16-byte accesses for SSE), all of which may
//!   cross lines and frames;
//! - loaders and checkpoints: [`MachineMemory::read`] /
//!   [`MachineMemory::write`] / [`MachineMemory::fill`] of any length;
//!   [`MachineMemory::allocated_frames`] lists frames that were ever written.
//!
//! ```
//! use smpsim_uncore::memory::{MachineAddr, MachineMemory};
//! use std::sync::Arc;
//! let mem = Arc::new(MachineMemory::new(64 << 30).expect("64 GiB is a multiple of 4 KiB"));
//! mem.write_u64(MachineAddr(0xffc), 0x1122_3344_5566_7788)?; // crosses a frame
//! assert_eq!(mem.read_u32(MachineAddr(0x1000))?, 0x1122_3344);
//! assert_eq!(mem.allocated_frames().len(), 2); // only what was written
//! assert!(mem.read_u8(MachineAddr(64 << 30)).is_err()); // beyond memory
//! # Ok::<(), smpsim_uncore::memory::MemError>(())
//! ```
//!
//! # Invariants
//! - **Lazy, zero-filled frames**: nothing is allocated up front (a 64 GiB
//!   machine costs a few hundred KiB of directory). A frame is allocated on
//!   its first write, exactly once even under concurrent first writes
//!   (`OnceLock`), and starts zero-filled; reads of a never-written frame
//!   return zeros without allocating. So contents never depend on which
//!   thread allocated what, or when.
//! - **Concurrency**: storage is `AtomicU64` per 8-byte word, accessed with
//!   `Relaxed` ordering, so the store is `Sync` with no `unsafe` (the crate
//!   forbids it). Accesses to *different* lines from different threads never
//!   interfere. A store narrower than a word is a plain load-modify-store of
//!   that word (not an atomic RMW): that is correct because a word lies
//!   inside one line, and the **ownership rule** (DESIGN.md §3: a line is
//!   written only by the one core holding it in M, and nobody reads it
//!   meanwhile) rules out concurrent access to one line. A protocol bug that
//!   broke the rule would give wrong guest values, never host UB; detecting
//!   such bugs is the coherence checker's job, not this store's.
//!   Cross-thread *visibility* comes from the engine's barrier (messages
//!   that transfer ownership are delivered after a SeqCst barrier), not from
//!   this module's orderings.
//! - Performance (measured against an `UnsafeCell` byte-array variant
//!   with the same directory, random accesses, 2-core shared host, noisy):
//!   `Relaxed` atomics compile to plain `mov`s, so loads cost the same
//!   (about 3–5 ns with a 2 MiB working set); whole-word stores cost about
//!   1.5× and sub-word stores about 2× (up to 5× when the word is not in
//!   the host cache), because a narrow store must first read its word.
//!   The crate forbids `unsafe`, so the safe layout stays until profiles
//!   of whole runs show stores to machine memory matter.
//!
//! # Errors
//! [`MemError`]: an access reaching beyond the configured size (a guest or
//! hypervisor asking for memory that does not exist, reported as a value so
//! the caller can turn it into a fault), or a size that is not a positive
//! multiple of 4 KiB at build.
//!
//! # Panics
//! `load`/`store` with a length outside `1..=8` (a simulator bug).

mod addr;

pub use addr::{LineAddr, MachineAddr, Mfn, FRAME_SHIFT, FRAME_SIZE, LINE_SHIFT, LINE_SIZE};

use std::fmt;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::OnceLock;
use thiserror::Error;

/// What went wrong with a machine-memory access or its construction.
#[derive(Debug, Error, Clone, PartialEq, Eq)]
pub enum MemError {
    /// The access reaches past the end of machine memory.
    #[error(
        "machine memory access of {len} bytes at {addr} reaches beyond the configured {size} bytes"
    )]
    OutOfRange {
        /// First byte of the access.
        addr: MachineAddr,
        /// Length of the access in bytes.
        len: u64,
        /// Configured memory size in bytes.
        size: u64,
    },
    /// The configured size is not usable.
    #[error(
        "machine memory size {size} bytes is not allowed: it must be a positive multiple of 4096, at most 4 TiB"
    )]
    BadSize {
        /// The size asked for, in bytes.
        size: u64,
    },
}

/// Largest machine memory (4 TiB): its frame directory costs 32 MiB.
pub const MAX_SIZE: u64 = 1 << 42;

const WORDS_PER_FRAME: usize = (FRAME_SIZE / 8) as usize;
const CHUNK_SHIFT: u32 = 9;
/// Frames per directory chunk (2 MiB of memory per chunk).
const CHUNK_FRAMES: usize = 1 << CHUNK_SHIFT;

/// One 4 KiB frame as 512 little-endian words. Aligned to the host's
/// 64-byte cache line so that each simulated line is exactly one host
/// line: threads working on neighbouring lines never false-share.
#[repr(align(64))]
struct Frame {
    words: [AtomicU64; WORDS_PER_FRAME],
}

/// The low `len` bytes of a word set (len in 1..=8).
#[inline]
fn byte_mask(len: usize) -> u64 {
    if len >= 8 {
        u64::MAX
    } else {
        (1u64 << (8 * len)) - 1
    }
}

impl Frame {
    fn zeroed() -> Box<Frame> {
        Box::new(Frame {
            words: [const { AtomicU64::new(0) }; WORDS_PER_FRAME],
        })
    }

    /// Loads `len` (1..=8) bytes at `off`; `off + len <= 4096`.
    #[inline]
    fn load(&self, off: usize, len: usize) -> u64 {
        let (w, b) = (off >> 3, off & 7);
        let lo = self.words[w].load(Relaxed) >> (8 * b);
        let v = if b + len <= 8 {
            lo
        } else {
            // Crossing a word implies b > 0, so the shift is in 8..=56.
            lo | (self.words[w + 1].load(Relaxed) << (64 - 8 * b))
        };
        v & byte_mask(len)
    }

    /// Stores the low `len` (1..=8) bytes of `v` at `off`; `off + len <= 4096`.
    #[inline]
    fn store(&self, off: usize, len: usize, v: u64) {
        let (w, b) = (off >> 3, off & 7);
        if b + len <= 8 {
            self.store_part(w, b, len, v);
        } else {
            let first = 8 - b;
            self.store_part(w, b, first, v);
            self.store_part(w + 1, 0, len - first, v >> (8 * first));
        }
    }

    /// Writes bytes `b..b+n` of word `w` from the low `n` bytes of `v`.
    #[inline]
    fn store_part(&self, w: usize, b: usize, n: usize, v: u64) {
        let word = &self.words[w];
        if n == 8 {
            word.store(v, Relaxed);
        } else {
            let m = byte_mask(n) << (8 * b);
            let old = word.load(Relaxed);
            word.store((old & !m) | ((v << (8 * b)) & m), Relaxed);
        }
    }

    fn read_bytes(&self, off: usize, out: &mut [u8]) {
        let mut i = 0;
        while i < out.len() {
            let p = off + i;
            let b = p & 7;
            let n = (8 - b).min(out.len() - i);
            let bytes = self.words[p >> 3].load(Relaxed).to_le_bytes();
            out[i..i + n].copy_from_slice(&bytes[b..b + n]);
            i += n;
        }
    }

    fn write_bytes(&self, off: usize, data: &[u8]) {
        let mut i = 0;
        while i < data.len() {
            let p = off + i;
            let b = p & 7;
            let n = (8 - b).min(data.len() - i);
            let mut bytes = [0u8; 8];
            bytes[..n].copy_from_slice(&data[i..i + n]);
            self.store_part(p >> 3, b, n, u64::from_le_bytes(bytes));
            i += n;
        }
    }
}

/// 512 lazily allocated frames.
struct Chunk {
    frames: [OnceLock<Box<Frame>>; CHUNK_FRAMES],
}

impl Chunk {
    fn new() -> Box<Chunk> {
        Box::new(Chunk {
            frames: std::array::from_fn(|_| OnceLock::new()),
        })
    }
}

/// The machine's memory: lazily allocated, zero-filled 4 KiB frames,
/// shared by all host threads (see the module docs for the contract).
pub struct MachineMemory {
    size: u64,
    chunks: Box<[OnceLock<Box<Chunk>>]>,
}

impl fmt::Debug for MachineMemory {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("MachineMemory")
            .field("size", &self.size)
            .field("allocated_frames", &self.allocated_frames().len())
            .finish()
    }
}

impl MachineMemory {
    /// A machine memory of `size` bytes (a positive multiple of 4 KiB, at
    /// most [`MAX_SIZE`]), all zero, with nothing allocated yet.
    pub fn new(size: u64) -> Result<Self, MemError> {
        if size == 0 || !size.is_multiple_of(FRAME_SIZE) || size > MAX_SIZE {
            return Err(MemError::BadSize { size });
        }
        let frames = size >> FRAME_SHIFT;
        let chunks = frames.div_ceil(CHUNK_FRAMES as u64);
        Ok(MachineMemory {
            size,
            chunks: (0..chunks).map(|_| OnceLock::new()).collect(),
        })
    }

    /// Configured size in bytes.
    pub fn size(&self) -> u64 {
        self.size
    }

    /// Configured number of frames.
    pub fn frame_count(&self) -> u64 {
        self.size >> FRAME_SHIFT
    }

    #[inline]
    fn check(&self, addr: MachineAddr, len: u64) -> Result<(), MemError> {
        match addr.0.checked_add(len) {
            Some(end) if end <= self.size => Ok(()),
            _ => Err(MemError::OutOfRange {
                addr,
                len,
                size: self.size,
            }),
        }
    }

    /// The frame if it was ever written; `mfn` is in range.
    #[inline]
    fn frame(&self, mfn: u64) -> Option<&Frame> {
        let chunk = self.chunks[(mfn >> CHUNK_SHIFT) as usize].get()?;
        chunk.frames[(mfn as usize) & (CHUNK_FRAMES - 1)]
            .get()
            .map(|b| &**b)
    }

    /// The frame, allocating it (zero-filled) on first use; `mfn` is in range.
    #[inline]
    fn frame_mut(&self, mfn: u64) -> &Frame {
        let chunk = self.chunks[(mfn >> CHUNK_SHIFT) as usize].get_or_init(Chunk::new);
        chunk.frames[(mfn as usize) & (CHUNK_FRAMES - 1)].get_or_init(Frame::zeroed)
    }

    /// Loads `len` bytes (1..=8, any alignment) as a little-endian value.
    #[inline]
    pub fn load(&self, addr: MachineAddr, len: usize) -> Result<u64, MemError> {
        assert!((1..=8).contains(&len), "load of {len} bytes: 1..=8 allowed");
        self.check(addr, len as u64)?;
        let off = addr.frame_offset() as usize;
        if off + len > FRAME_SIZE as usize {
            let mut b = [0u8; 8];
            self.read(addr, &mut b[..len])?;
            return Ok(u64::from_le_bytes(b));
        }
        Ok(self
            .frame(addr.0 >> FRAME_SHIFT)
            .map_or(0, |f| f.load(off, len)))
    }

    /// Stores the low `len` bytes (1..=8, any alignment) of `value`.
    #[inline]
    pub fn store(&self, addr: MachineAddr, len: usize, value: u64) -> Result<(), MemError> {
        assert!(
            (1..=8).contains(&len),
            "store of {len} bytes: 1..=8 allowed"
        );
        self.check(addr, len as u64)?;
        let off = addr.frame_offset() as usize;
        if off + len > FRAME_SIZE as usize {
            return self.write(addr, &value.to_le_bytes()[..len]);
        }
        self.frame_mut(addr.0 >> FRAME_SHIFT).store(off, len, value);
        Ok(())
    }

    /// Atomically ORs `bits` into the aligned u64 at `addr` and returns
    /// its old value (a page walker setting accessed/dirty bits: two cores
    /// setting different bits of one entry never lose either).
    pub fn fetch_or_u64(&self, addr: MachineAddr, bits: u64) -> Result<u64, MemError> {
        assert!(
            addr.0.is_multiple_of(8),
            "fetch_or_u64 at {:#x}: not 8-byte aligned",
            addr.0
        );
        self.check(addr, 8)?;
        let off = addr.frame_offset() as usize;
        Ok(self.frame_mut(addr.0 >> FRAME_SHIFT).words[off >> 3].fetch_or(bits, Relaxed))
    }

    /// Loads one byte.
    #[inline]
    pub fn read_u8(&self, addr: MachineAddr) -> Result<u8, MemError> {
        self.load(addr, 1).map(|v| v as u8)
    }

    /// Loads 2 bytes, little-endian.
    #[inline]
    pub fn read_u16(&self, addr: MachineAddr) -> Result<u16, MemError> {
        self.load(addr, 2).map(|v| v as u16)
    }

    /// Loads 4 bytes, little-endian.
    #[inline]
    pub fn read_u32(&self, addr: MachineAddr) -> Result<u32, MemError> {
        self.load(addr, 4).map(|v| v as u32)
    }

    /// Loads 8 bytes, little-endian.
    #[inline]
    pub fn read_u64(&self, addr: MachineAddr) -> Result<u64, MemError> {
        self.load(addr, 8)
    }

    /// Loads 16 bytes, little-endian.
    pub fn read_u128(&self, addr: MachineAddr) -> Result<u128, MemError> {
        self.check(addr, 16)?;
        let lo = self.load(addr, 8)?;
        let hi = self.load(MachineAddr(addr.0 + 8), 8)?;
        Ok(u128::from(lo) | (u128::from(hi) << 64))
    }

    /// Stores one byte.
    #[inline]
    pub fn write_u8(&self, addr: MachineAddr, v: u8) -> Result<(), MemError> {
        self.store(addr, 1, u64::from(v))
    }

    /// Stores 2 bytes, little-endian.
    #[inline]
    pub fn write_u16(&self, addr: MachineAddr, v: u16) -> Result<(), MemError> {
        self.store(addr, 2, u64::from(v))
    }

    /// Stores 4 bytes, little-endian.
    #[inline]
    pub fn write_u32(&self, addr: MachineAddr, v: u32) -> Result<(), MemError> {
        self.store(addr, 4, u64::from(v))
    }

    /// Stores 8 bytes, little-endian.
    #[inline]
    pub fn write_u64(&self, addr: MachineAddr, v: u64) -> Result<(), MemError> {
        self.store(addr, 8, v)
    }

    /// Stores 16 bytes, little-endian. Checked as a whole first, so a
    /// store reaching past the end writes nothing.
    pub fn write_u128(&self, addr: MachineAddr, v: u128) -> Result<(), MemError> {
        self.check(addr, 16)?;
        self.store(addr, 8, v as u64)?;
        self.store(MachineAddr(addr.0 + 8), 8, (v >> 64) as u64)
    }

    /// Copies `buf.len()` bytes starting at `addr` into `buf` (any length,
    /// any alignment). Never allocates.
    pub fn read(&self, addr: MachineAddr, buf: &mut [u8]) -> Result<(), MemError> {
        self.check(addr, buf.len() as u64)?;
        let mut a = addr.0;
        let mut done = 0;
        while done < buf.len() {
            let off = (a & (FRAME_SIZE - 1)) as usize;
            let n = (FRAME_SIZE as usize - off).min(buf.len() - done);
            let out = &mut buf[done..done + n];
            match self.frame(a >> FRAME_SHIFT) {
                Some(f) => f.read_bytes(off, out),
                None => out.fill(0),
            }
            a += n as u64;
            done += n;
        }
        Ok(())
    }

    /// Copies `data` to memory starting at `addr` (any length, any
    /// alignment). Checked as a whole first: nothing is written on error.
    pub fn write(&self, addr: MachineAddr, data: &[u8]) -> Result<(), MemError> {
        self.check(addr, data.len() as u64)?;
        let mut a = addr.0;
        let mut done = 0;
        while done < data.len() {
            let off = (a & (FRAME_SIZE - 1)) as usize;
            let n = (FRAME_SIZE as usize - off).min(data.len() - done);
            self.frame_mut(a >> FRAME_SHIFT)
                .write_bytes(off, &data[done..done + n]);
            a += n as u64;
            done += n;
        }
        Ok(())
    }

    /// Sets `len` bytes from `addr` to `byte`. Filling a never-written frame
    /// with zeros leaves it unallocated (it already reads as zeros).
    pub fn fill(&self, addr: MachineAddr, len: u64, byte: u8) -> Result<(), MemError> {
        self.check(addr, len)?;
        let pattern = [byte; FRAME_SIZE as usize];
        let (mut a, end) = (addr.0, addr.0 + len);
        while a < end {
            let off = (a & (FRAME_SIZE - 1)) as usize;
            let n = (FRAME_SIZE as usize - off).min((end - a) as usize);
            let mfn = a >> FRAME_SHIFT;
            if byte != 0 || self.frame(mfn).is_some() {
                self.frame_mut(mfn).write_bytes(off, &pattern[..n]);
            }
            a += n as u64;
        }
        Ok(())
    }

    /// Whether the frame was ever written (so holds storage).
    pub fn is_allocated(&self, mfn: Mfn) -> bool {
        mfn.0 < self.frame_count() && self.frame(mfn.0).is_some()
    }

    /// Every allocated frame, in ascending order (for checkpoints and
    /// reports; it scans the directory, so call it at a barrier, not on a
    /// hot path).
    pub fn allocated_frames(&self) -> Vec<Mfn> {
        let mut out = Vec::new();
        for (ci, chunk) in self.chunks.iter().enumerate() {
            let Some(chunk) = chunk.get() else { continue };
            for (fi, f) in chunk.frames.iter().enumerate() {
                if f.get().is_some() {
                    out.push(Mfn(((ci << CHUNK_SHIFT) + fi) as u64));
                }
            }
        }
        out
    }
}

#[cfg(test)]
mod tests;
