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

/// Rounds `v` up to `align` (4, or 8 for notes in an 8-aligned area such
/// as `.note.gnu.property`).
fn align_up(v: u64, align: u64) -> u64 {
    v.div_ceil(align) * align
}

/// The padding of the notes in an area whose alignment is `area_align`
/// (`p_align` or `sh_addralign`): 8 for an 8-aligned area, else 4.
pub(super) fn note_align(area_align: u64) -> u64 {
    if area_align == 8 {
        8
    } else {
        4
    }
}

/// Parses the notes packed in `data`, found at file offset `base`, each
/// field padded to `align` bytes.
pub(super) fn parse(data: &[u8], base: u64, align: u64) -> Result<Vec<Note>, ElfError> {
    let r = Reader(data);
    let len = data.len() as u64;
    let mut off = 0u64;
    let mut notes = Vec::new();
    while off + 12 <= len {
        let namesz = u64::from(r.u32("note", off)?);
        let descsz = u64::from(r.u32("note", off + 4)?);
        let n_type = r.u32("note", off + 8)?;
        let name_off = off + 12;
        let desc_off = name_off + align_up(namesz, align);
        let next = desc_off + align_up(descsz, align);
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

/// XEN_ELFNOTE_* numbers (Xen's public `elfnote.h`, xen-abi.md §1.3).
pub mod xen_type {
    /// NAME=VALUE pair (string).
    pub const INFO: u32 = 0;
    /// Entry VA (numeric).
    pub const ENTRY: u32 = 1;
    /// VA of the hypercall page (numeric).
    pub const HYPERCALL_PAGE: u32 = 2;
    /// VA of pseudo-physical address 0 (numeric).
    pub const VIRT_BASE: u32 = 3;
    /// Offset of `p_paddr` from the pseudo-physical address (numeric).
    pub const PADDR_OFFSET: u32 = 4;
    /// Xen version the kernel works with (string).
    pub const XEN_VERSION: u32 = 5;
    /// Guest OS name (string).
    pub const GUEST_OS: u32 = 6;
    /// Guest OS version (string).
    pub const GUEST_VERSION: u32 = 7;
    /// Loader type (string).
    pub const LOADER: u32 = 8;
    /// PAE support (string: "yes", "no", "bimodal", "yes[extended-cr3]").
    pub const PAE_MODE: u32 = 9;
    /// Features the kernel supports or needs (string, `|`-separated).
    pub const FEATURES: u32 = 10;
    /// Whether the builder loads the symbol table (string).
    pub const BSD_SYMTAB: u32 = 11;
    /// Lowest hypervisor VA the kernel tolerates (numeric).
    pub const HV_START_LOW: u32 = 12;
    /// Mask and value of valid L1 entries (numeric array).
    pub const L1_MFN_VALID: u32 = 13;
    /// Whether the kernel supports suspend cancellation (numeric).
    pub const SUSPEND_CANCEL: u32 = 14;
    /// VA where the P2M list is to be mapped (numeric).
    pub const INIT_P2M: u32 = 15;
    /// Whether `mod_start` is a PFN rather than a VA (numeric).
    pub const MOD_START_PFN: u32 = 16;
    /// Feature flags as a bitmap (numeric, 32 bits).
    pub const SUPPORTED_FEATURES: u32 = 17;
    /// 32-bit physical entry point for PVH (numeric).
    pub const PHYS32_ENTRY: u32 = 18;
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
    /// XEN_ELFNOTE_GUEST_VERSION.
    pub guest_version: Option<String>,
    /// XEN_ELFNOTE_LOADER, e.g. "generic".
    pub loader: Option<String>,
    /// XEN_ELFNOTE_PAE_MODE, e.g. "yes".
    pub pae_mode: Option<String>,
    /// XEN_ELFNOTE_FEATURES, as written ("!writable_page_tables|…").
    pub features: Option<String>,
    /// XEN_ELFNOTE_BSD_SYMTAB.
    pub bsd_symtab: Option<String>,
    /// XEN_ELFNOTE_HV_START_LOW.
    pub hv_start_low: Option<u64>,
    /// XEN_ELFNOTE_SUSPEND_CANCEL.
    pub suspend_cancel: Option<u64>,
    /// XEN_ELFNOTE_INIT_P2M.
    pub init_p2m: Option<u64>,
    /// XEN_ELFNOTE_MOD_START_PFN.
    pub mod_start_pfn: Option<u64>,
    /// XEN_ELFNOTE_SUPPORTED_FEATURES.
    pub supported_features: Option<u64>,
    /// XEN_ELFNOTE_PHYS32_ENTRY (PVH; unused for PV).
    pub phys32_entry: Option<u64>,
    /// How many "Xen" notes there are, of any type (0: not a Xen kernel).
    pub count: usize,
}

/// A numeric note: 1, 2, 4 or 8 little-endian bytes, as libelf reads them.
fn numeric(n: &Note) -> Result<u64, ElfError> {
    match n.desc.len() {
        l @ (1 | 2 | 4 | 8) => {
            let mut b = [0u8; 8];
            b[..l].copy_from_slice(&n.desc);
            Ok(u64::from_le_bytes(b))
        }
        l => Err(malformed(
            "note",
            0,
            format!(
                "{} note type {} has a {l}-byte value, expected 1, 2, 4 or 8",
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
    /// Collects the "Xen" notes; unknown types (and INFO, L1_MFN_VALID)
    /// are counted but otherwise ignored.
    pub fn from_notes(notes: &[Note]) -> Result<Self, ElfError> {
        use xen_type as t;
        let mut x = XenNotes::default();
        for n in notes.iter().filter(|n| n.name == "Xen") {
            x.count += 1;
            let num = |slot: &mut Option<u64>| -> Result<(), ElfError> {
                *slot = Some(numeric(n)?);
                Ok(())
            };
            match n.n_type {
                t::ENTRY => num(&mut x.entry)?,
                t::HYPERCALL_PAGE => num(&mut x.hypercall_page)?,
                t::VIRT_BASE => num(&mut x.virt_base)?,
                t::PADDR_OFFSET => num(&mut x.paddr_offset)?,
                t::HV_START_LOW => num(&mut x.hv_start_low)?,
                t::SUSPEND_CANCEL => num(&mut x.suspend_cancel)?,
                t::INIT_P2M => num(&mut x.init_p2m)?,
                t::MOD_START_PFN => num(&mut x.mod_start_pfn)?,
                t::SUPPORTED_FEATURES => num(&mut x.supported_features)?,
                t::PHYS32_ENTRY => num(&mut x.phys32_entry)?,
                t::XEN_VERSION => x.xen_version = Some(string(n)),
                t::GUEST_OS => x.guest_os = Some(string(n)),
                t::GUEST_VERSION => x.guest_version = Some(string(n)),
                t::LOADER => x.loader = Some(string(n)),
                t::PAE_MODE => x.pae_mode = Some(string(n)),
                t::FEATURES => x.features = Some(string(n)),
                t::BSD_SYMTAB => x.bsd_symtab = Some(string(n)),
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
