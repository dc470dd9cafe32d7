//! Where Xen's PV domain builder puts a kernel: libelf's placement rule
//! applied to an [`ElfImage`] and its Xen notes.
//!
//! - `virt_base` is the VIRT_BASE note, else 0;
//! - `paddr_offset` is the PADDR_OFFSET note, else 0 (the ELF-note
//!   interface's default; only the legacy `__xen_guest` string defaulted it
//!   to `virt_base`, and that is not supported); PADDR_OFFSET without
//!   VIRT_BASE is refused;
//! - each loadable `PT_LOAD` segment (one with any of R, W, X set) lands at
//!   `p_paddr - paddr_offset + virt_base`;
//! - the entry is the ENTRY note, else `e_entry`, and must lie in
//!   `[kstart, kend]`, the placed image; `virt_base` must not lie above
//!   `kstart`;
//! - Xen loads only images for the "generic" loader or GUEST_OS "linux",
//!   built for XEN_VERSION "xen-3.0".

use super::{ElfError, ElfImage, Segment};
use crate::elf::notes::XenNotes;

/// A segment and the VA Xen's builder loads it at.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PlacedSegment {
    /// The program header.
    pub segment: Segment,
    /// Where its first byte lands: `p_paddr - paddr_offset + virt_base`.
    pub va: u64,
}

impl PlacedSegment {
    /// One past its last placed VA.
    pub fn end(&self) -> u64 {
        self.va + self.segment.memsz
    }

    /// The placed VA of the segment's `p_vaddr`-relative address `vaddr`,
    /// if the segment holds it.
    fn translate(&self, vaddr: u64) -> Option<u64> {
        self.segment
            .contains(vaddr)
            .then(|| self.va + (vaddr - self.segment.vaddr.0))
    }
}

/// A Xen PV kernel: an ELF image with Xen notes, placed as Xen places it.
///
/// ```
/// let w = smpsim_workloads::find("hello").expect("built in");
/// let pv = smpsim_workloads::PvImage::parse(w.image).expect("a PV kernel");
/// assert_eq!(pv.virt_base(), smpsim_workloads::VIRT_BASE);
/// assert_eq!(pv.segments()[0].va, pv.elf().segments()[0].vaddr.0);
/// ```
#[derive(Debug, Clone)]
pub struct PvImage<'a> {
    elf: ElfImage<'a>,
    notes: XenNotes,
    virt_base: u64,
    paddr_offset: u64,
    entry: u64,
    segments: Vec<PlacedSegment>,
}

/// Xen's check of the notes themselves (libelf's `elf_xen_note_check`).
fn check_notes(n: &XenNotes) -> Result<(), ElfError> {
    if n.count == 0 {
        return Err(ElfError::NoXenNotes);
    }
    let loader = n.loader.clone().unwrap_or_default();
    let guest_os = n.guest_os.clone().unwrap_or_default();
    if !loader.starts_with("generic") && !guest_os.starts_with("linux") {
        return Err(ElfError::UnsupportedLoader { loader, guest_os });
    }
    let ver = n.xen_version.clone().unwrap_or_default();
    if !ver.starts_with("xen-3.0") {
        return Err(ElfError::UnsupportedXenVersion(ver));
    }
    Ok(())
}

fn place(elf: &ElfImage<'_>, offset: u64) -> Result<Vec<PlacedSegment>, ElfError> {
    let mut out: Vec<PlacedSegment> = Vec::new();
    let loadable = elf
        .segments()
        .iter()
        .filter(|s| s.flags.read || s.flags.write || s.flags.execute);
    for s in loadable {
        let va = s.paddr.wrapping_add(offset);
        if va.checked_add(s.memsz).is_none() {
            return Err(ElfError::PlacementWraps { index: s.index });
        }
        let p = PlacedSegment {
            segment: s.clone(),
            va,
        };
        if let Some(o) = out.iter().find(|o| p.va < o.end() && o.va < p.end()) {
            return Err(ElfError::SegmentsOverlap {
                first: o.segment.index,
                second: s.index,
            });
        }
        out.push(p);
    }
    if out.is_empty() {
        return Err(ElfError::NoLoadableSegment);
    }
    Ok(out)
}

impl<'a> PvImage<'a> {
    /// Parses `bytes` and places it.
    pub fn parse(bytes: &'a [u8]) -> Result<Self, ElfError> {
        Self::from_elf(ElfImage::parse(bytes)?)
    }

    /// Places a parsed image by its Xen notes; every error libelf would
    /// give for the same image is an [`ElfError`].
    pub fn from_elf(elf: ElfImage<'a>) -> Result<Self, ElfError> {
        let notes = elf.xen_notes()?;
        check_notes(&notes)?;
        if let (Some(o), None) = (notes.paddr_offset, notes.virt_base) {
            return Err(ElfError::PaddrOffsetWithoutVirtBase(o));
        }
        let virt_base = notes.virt_base.unwrap_or(0);
        let paddr_offset = notes.paddr_offset.unwrap_or(0);
        let segments = place(&elf, virt_base.wrapping_sub(paddr_offset))?;
        let entry = notes.entry.unwrap_or(elf.entry().0);
        let pv = PvImage {
            elf,
            notes,
            virt_base,
            paddr_offset,
            entry,
            segments,
        };
        let (start, end) = (pv.kernel_start(), pv.kernel_end());
        if entry < start || entry > end {
            return Err(ElfError::EntryOutsideImage { entry, start, end });
        }
        if virt_base > start {
            return Err(ElfError::VirtBaseAboveImage { virt_base, start });
        }
        Ok(pv)
    }

    /// The ELF image.
    pub fn elf(&self) -> &ElfImage<'a> {
        &self.elf
    }

    /// Its Xen notes.
    pub fn xen_notes(&self) -> &XenNotes {
        &self.notes
    }

    /// VA of pseudo-physical address 0.
    pub fn virt_base(&self) -> u64 {
        self.virt_base
    }

    /// What is subtracted from `p_paddr` before adding `virt_base`.
    pub fn paddr_offset(&self) -> u64 {
        self.paddr_offset
    }

    /// Where VCPU 0 starts.
    pub fn entry(&self) -> u64 {
        self.entry
    }

    /// The loaded segments with their placed VAs, in program header order.
    pub fn segments(&self) -> &[PlacedSegment] {
        &self.segments
    }

    /// The file bytes of a placed segment.
    pub fn segment_data(&self, s: &PlacedSegment) -> &'a [u8] {
        self.elf.segment_data(&s.segment)
    }

    /// First placed VA (libelf's `virt_kstart`).
    pub fn kernel_start(&self) -> u64 {
        self.segments.iter().map(|s| s.va).min().expect("placed")
    }

    /// One past the last placed VA (libelf's `virt_kend`).
    pub fn kernel_end(&self) -> u64 {
        self.segments
            .iter()
            .map(PlacedSegment::end)
            .max()
            .expect("placed")
    }

    /// The HYPERCALL_PAGE note: the VA the builder fills, if any.
    pub fn hypercall_page(&self) -> Option<u64> {
        self.notes.hypercall_page
    }

    /// The placed VA of smpsim's params block, for images that have one
    /// (SMPSIM note type 1 or the `smpsim_params` symbol); `None` for
    /// other kernels.
    pub fn params(&self) -> Result<Option<u64>, ElfError> {
        let has = self.elf.smpsim_notes()?.params.is_some()
            || self.elf.symbol(crate::params::PARAMS_SYMBOL).is_some();
        if !has {
            return Ok(None);
        }
        let at = self.elf.params_addr()?.0;
        self.segments
            .iter()
            .find_map(|s| s.translate(at))
            .map(Some)
            .ok_or(ElfError::ParamsOutsideData(at))
    }
}

#[cfg(test)]
mod tests;
