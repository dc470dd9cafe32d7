//! ELF notes: the generic `{namesz, descsz, type, name, desc}` records, and
//! the two owners smpsim guests use, "Xen" (xen-abi.md §1.3) and "SMPSIM".

use super::{malformed, ElfError, Reader};

/// One note record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Note {
    /// Owner name without its NUL ("Xen", "SMPSIM", "GNU"…).
    pub name: String,
    /// `n_type`, meaningful per owner.
    pub n_type: u32,
    /// The descriptor bytes.
    pub desc: Vec<u8>,
}

fn align4(v: u64) -> u64 {
    (v + 3) & !3
}

/// Parses the notes packed in `data`, found at file offset `base`.
pub(super) fn parse(data: &[u8], base: u64) -> Result<Vec<Note>, ElfError> {
    let r = Reader(data);
    let len = data.len() as u64;
    let mut off = 0u64;
    let mut notes = Vec::new();
    while off + 12 <= len {
        let namesz = u64::from(r.u32("note", off)?);
        let descsz = u64::from(r.u32("note", off + 4)?);
        let n_type = r.u32("note", off + 8)?;
        let name_off = off + 12;
        let desc_off = name_off + align4(namesz);
        let next = desc_off + align4(descsz);
        if next > len {
            return Err(malformed("note", base + off, format!("name {namesz} and descriptor {descsz} bytes run past the note area ({len} bytes)")));
        }
        let name = &data[super::to_usize(name_off)..super::to_usize(name_off + namesz)];
        let name = name.strip_suffix(&[0]).unwrap_or(name);
        notes.push(Note {
            name: String::from_utf8_lossy(name).into_owned(),
            n_type,
            desc: data[super::to_usize(desc_off)..super::to_usize(desc_off + descsz)].to_vec(),
        });
        off = next;
    }
    if off != len && data[super::to_usize(off)..].iter().any(|&b| b != 0) {
        return Err(malformed(
            "note",
            base + off,
            "trailing bytes after the last note",
        ));
    }
    Ok(notes)
}

/// XEN_ELFNOTE_* numbers (xen-abi.md §1.3).
mod xen_type {
    pub const ENTRY: u32 = 1;
    pub const HYPERCALL_PAGE: u32 = 2;
    pub const VIRT_BASE: u32 = 3;
    pub const PADDR_OFFSET: u32 = 4;
    pub const XEN_VERSION: u32 = 5;
    pub const GUEST_OS: u32 = 6;
    pub const LOADER: u32 = 8;
}

/// The Xen notes a PV domain builder reads.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct XenNotes {
    /// XEN_ELFNOTE_ENTRY: entry VA (overrides `e_entry` in Xen's loader).
    pub entry: Option<u64>,
    /// XEN_ELFNOTE_HYPERCALL_PAGE: VA of the page the builder fills.
    pub hypercall_page: Option<u64>,
    /// XEN_ELFNOTE_VIRT_BASE: VA of pseudo-physical address 0.
    pub virt_base: Option<u64>,
    /// XEN_ELFNOTE_PADDR_OFFSET: subtracted from `p_paddr` (0 here).
    pub paddr_offset: Option<u64>,
    /// XEN_ELFNOTE_XEN_VERSION, e.g. "xen-3.0".
    pub xen_version: Option<String>,
    /// XEN_ELFNOTE_GUEST_OS.
    pub guest_os: Option<String>,
    /// XEN_ELFNOTE_LOADER, e.g. "generic".
    pub loader: Option<String>,
}

fn numeric(n: &Note) -> Result<u64, ElfError> {
    match n.desc.len() {
        4 => Ok(u64::from(u32::from_le_bytes(
            n.desc[..4].try_into().expect("4 bytes"),
        ))),
        8 => Ok(u64::from_le_bytes(n.desc[..8].try_into().expect("8 bytes"))),
        l => Err(malformed(
            "note",
            0,
            format!(
                "{} note type {} has a {l}-byte value, expected 4 or 8",
                n.name, n.n_type
            ),
        )),
    }
}

fn string(n: &Note) -> String {
    let d = n.desc.strip_suffix(&[0]).unwrap_or(&n.desc);
    String::from_utf8_lossy(d).into_owned()
}

impl XenNotes {
    /// Collects the "Xen" notes; unknown types are ignored.
    pub fn from_notes(notes: &[Note]) -> Result<Self, ElfError> {
        let mut x = XenNotes::default();
        for n in notes.iter().filter(|n| n.name == "Xen") {
            match n.n_type {
                xen_type::ENTRY => x.entry = Some(numeric(n)?),
                xen_type::HYPERCALL_PAGE => x.hypercall_page = Some(numeric(n)?),
                xen_type::VIRT_BASE => x.virt_base = Some(numeric(n)?),
                xen_type::PADDR_OFFSET => x.paddr_offset = Some(numeric(n)?),
                xen_type::XEN_VERSION => x.xen_version = Some(string(n)),
                xen_type::GUEST_OS => x.guest_os = Some(string(n)),
                xen_type::LOADER => x.loader = Some(string(n)),
                _ => {}
            }
        }
        Ok(x)
    }
}

/// smpsim's notes (owner "SMPSIM").
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SmpsimNotes {
    /// Type 1: VA of the `smpsim_params` block.
    pub params: Option<u64>,
    /// Type 2: version of the params ABI.
    pub abi_version: Option<u64>,
}

impl SmpsimNotes {
    /// Collects the "SMPSIM" notes.
    pub fn from_notes(notes: &[Note]) -> Result<Self, ElfError> {
        let mut s = SmpsimNotes::default();
        for n in notes.iter().filter(|n| n.name == "SMPSIM") {
            match n.n_type {
                1 => s.params = Some(numeric(n)?),
                2 => s.abi_version = Some(numeric(n)?),
                _ => {}
            }
        }
        Ok(s)
    }
}
