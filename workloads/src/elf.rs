//! A small, safe ELF64 reader for guest images: the file header, `PT_LOAD`
//! segments, notes (Xen's and smpsim's) and the symbol table.
//!
//! Only what a Xen PV domain builder needs is parsed, and everything is
//! bounds-checked: a malformed image is an [`ElfError`] naming what is wrong,
//! never a panic.

mod notes;
mod pv;

use std::fmt;

pub use notes::{xen_type, Note, SmpsimNotes, XenNotes};
pub use pv::{PlacedSegment, PvImage};

/// A guest virtual address (the guest's view, before its page tables).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct GuestVirtAddr(pub u64);

impl fmt::Display for GuestVirtAddr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:#x}", self.0)
    }
}

/// Why an ELF image was rejected. Each message names the offending value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ElfError {
    /// A structure ends past the end of the file.
    Truncated {
        /// What was being read.
        what: &'static str,
        /// Bytes needed from the start of the file.
        need: u64,
        /// Length of the file.
        have: u64,
    },
    /// The first four bytes are not `7f 45 4c 46`.
    BadMagic([u8; 4]),
    /// `EI_CLASS` is not ELFCLASS64 (2).
    WrongClass(u8),
    /// `EI_DATA` is not little-endian (1).
    WrongEndian(u8),
    /// `e_machine` is not EM_X86_64 (62).
    WrongMachine(u16),
    /// `e_type` is not ET_EXEC (2).
    NotExecutable(u16),
    /// `e_phentsize` (or `e_shentsize`) is not the ELF64 size.
    BadEntrySize {
        /// "program header" or "section header".
        table: &'static str,
        /// The size found.
        size: u16,
        /// The ELF64 size.
        expected: u16,
    },
    /// A segment's file bytes lie outside the file.
    SegmentOutsideFile {
        /// Program header index.
        index: usize,
        /// `p_offset`.
        offset: u64,
        /// `p_filesz`.
        filesz: u64,
        /// Length of the file.
        file_len: u64,
    },
    /// `p_filesz > p_memsz`.
    FileszExceedsMemsz {
        /// Program header index.
        index: usize,
        /// `p_filesz`.
        filesz: u64,
        /// `p_memsz`.
        memsz: u64,
    },
    /// `p_vaddr + p_memsz` overflows the address space.
    SegmentWraps {
        /// Program header index.
        index: usize,
    },
    /// Two `PT_LOAD` segments share virtual addresses.
    SegmentsOverlap {
        /// First program header index.
        first: usize,
        /// Second program header index.
        second: usize,
    },
    /// There is no `PT_LOAD` segment.
    NoLoadableSegment,
    /// The entry point (ENTRY note, else `e_entry`) is outside the placed
    /// image `[start, end]` (libelf's bounds).
    EntryOutsideImage {
        /// The entry VA.
        entry: u64,
        /// First VA of the placed image.
        start: u64,
        /// One past its last VA.
        end: u64,
    },
    /// No note named "Xen" in the note segments or sections: not a Xen PV
    /// kernel (the legacy `__xen_guest` section is not supported).
    NoXenNotes,
    /// PADDR_OFFSET is given without VIRT_BASE (libelf refuses it).
    PaddrOffsetWithoutVirtBase(u64),
    /// VIRT_BASE lies above the start of the placed image.
    VirtBaseAboveImage {
        /// VIRT_BASE.
        virt_base: u64,
        /// First VA of the placed image.
        start: u64,
    },
    /// Neither LOADER is "generic" nor GUEST_OS "linux": Xen loads only those.
    UnsupportedLoader {
        /// The LOADER note ("" if absent).
        loader: String,
        /// The GUEST_OS note ("" if absent).
        guest_os: String,
    },
    /// XEN_VERSION is not "xen-3.0".
    UnsupportedXenVersion(String),
    /// A placed segment wraps around the top of the address space.
    PlacementWraps {
        /// Program header index.
        index: usize,
    },
    /// A note, section or symbol table is malformed.
    Malformed {
        /// What was being read.
        what: &'static str,
        /// File offset of the structure.
        offset: u64,
        /// What is wrong with it.
        why: String,
    },
    /// The image has no workload parameter block.
    NoParams,
    /// The params note and the `smpsim_params` symbol disagree.
    ParamsMismatch {
        /// Address in the SMPSIM note.
        note: u64,
        /// Address of the symbol.
        symbol: u64,
    },
    /// The params block is not inside the file-backed part of a writable segment.
    ParamsOutsideData(u64),
}

impl fmt::Display for ElfError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ElfError::Truncated { what, need, have } => write!(
                f,
                "ELF image truncated: the {what} needs {need} bytes, the file has {have}"
            ),
            ElfError::BadMagic(m) => write!(
                f,
                "not an ELF image: magic {:02x} {:02x} {:02x} {:02x}, expected 7f 45 4c 46",
                m[0], m[1], m[2], m[3]
            ),
            ElfError::WrongClass(c) => write!(f, "ELF class {c} is not ELF64 (2)"),
            ElfError::WrongEndian(d) => {
                write!(f, "ELF data encoding {d} is not little-endian (1)")
            }
            ElfError::WrongMachine(m) => write!(f, "ELF machine {m} is not x86-64 (62)"),
            ElfError::NotExecutable(t) => {
                write!(f, "ELF type {t} is not an executable (ET_EXEC = 2)")
            }
            ElfError::BadEntrySize {
                table,
                size,
                expected,
            } => {
                write!(f, "{table} entry size is {size}, expected {expected}")
            }
            ElfError::SegmentOutsideFile {
                index,
                offset,
                filesz,
                file_len,
            } => write!(
                f,
                "segment {index} (file offset {offset:#x}, size {filesz:#x}) lies outside the \
                 {file_len}-byte file: the image is truncated"
            ),
            ElfError::FileszExceedsMemsz {
                index,
                filesz,
                memsz,
            } => write!(
                f,
                "segment {index}: file size {filesz:#x} exceeds memory size {memsz:#x}"
            ),
            ElfError::SegmentWraps { index } => {
                write!(f, "segment {index}: address plus memory size overflows")
            }
            ElfError::SegmentsOverlap { first, second } => {
                write!(f, "segments {first} and {second} overlap in virtual memory")
            }
            ElfError::NoLoadableSegment => write!(f, "no PT_LOAD segment"),
            ElfError::EntryOutsideImage { entry, start, end } => write!(
                f,
                "entry point {entry:#x} is outside the image ({start:#x}..{end:#x})"
            ),
            ElfError::NoXenNotes => write!(
                f,
                "not a Xen PV kernel: no ELF note named \"Xen\" in a PT_NOTE segment or \
                 SHT_NOTE section (the legacy __xen_guest section is not supported)"
            ),
            ElfError::PaddrOffsetWithoutVirtBase(o) => write!(
                f,
                "Xen note PADDR_OFFSET ({o:#x}) is set but VIRT_BASE is not"
            ),
            ElfError::VirtBaseAboveImage { virt_base, start } => write!(
                f,
                "Xen note VIRT_BASE {virt_base:#x} lies above the image start {start:#x}"
            ),
            ElfError::UnsupportedLoader { loader, guest_os } => write!(
                f,
                "Xen loads only images for the generic loader or Linux: LOADER is \
                 \"{loader}\", GUEST_OS is \"{guest_os}\""
            ),
            ElfError::UnsupportedXenVersion(v) => write!(
                f,
                "Xen note XEN_VERSION is \"{v}\"; Xen loads only images built for \"xen-3.0\""
            ),
            ElfError::PlacementWraps { index } => write!(
                f,
                "segment {index}: placed at p_paddr - PADDR_OFFSET + VIRT_BASE it wraps the \
                 address space"
            ),
            ElfError::Malformed { what, offset, why } => {
                write!(f, "malformed {what} at file offset {offset:#x}: {why}")
            }
            ElfError::NoParams => write!(
                f,
                "no workload parameter block: neither an SMPSIM note type 1 nor a \
                 `smpsim_params` symbol"
            ),
            ElfError::ParamsMismatch { note, symbol } => write!(
                f,
                "SMPSIM params note says {note:#x} but symbol smpsim_params is at {symbol:#x}"
            ),
            ElfError::ParamsOutsideData(va) => write!(
                f,
                "params block at {va:#x} is not in the file-backed part of a writable segment"
            ),
        }
    }
}

impl std::error::Error for ElfError {}

/// Access permissions of a segment (`p_flags`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SegmentFlags {
    /// PF_R.
    pub read: bool,
    /// PF_W.
    pub write: bool,
    /// PF_X.
    pub execute: bool,
}

/// One `PT_LOAD` program header.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Segment {
    /// Program header index.
    pub index: usize,
    /// Guest virtual address of the first byte (`p_vaddr`).
    pub vaddr: GuestVirtAddr,
    /// `p_paddr`: for smpsim guests, the pseudo-physical address
    /// (`vaddr - VIRT_BASE`).
    pub paddr: u64,
    /// File offset of the bytes (`p_offset`).
    pub offset: u64,
    /// Bytes present in the file (`p_filesz`).
    pub filesz: u64,
    /// Bytes in memory (`p_memsz`); the rest after `filesz` is zero.
    pub memsz: u64,
    /// Permissions.
    pub flags: SegmentFlags,
}

impl Segment {
    /// One past the last virtual address.
    pub fn vend(&self) -> u64 {
        self.vaddr.0 + self.memsz
    }

    /// Whether `va` lies in `[vaddr, vaddr + memsz)`.
    pub fn contains(&self, va: u64) -> bool {
        va >= self.vaddr.0 && va < self.vend()
    }
}

/// One `STT_OBJECT`/`STT_FUNC`/`STT_NOTYPE` symbol.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Symbol {
    /// Name from the string table.
    pub name: String,
    /// `st_value`: its virtual address.
    pub value: u64,
    /// `st_size` in bytes.
    pub size: u64,
}

/// A parsed ELF64 x86-64 executable borrowing the file's bytes.
#[derive(Debug, Clone)]
pub struct ElfImage<'a> {
    bytes: &'a [u8],
    entry: u64,
    segments: Vec<Segment>,
    notes: Vec<Note>,
    symbols: Vec<Symbol>,
}

const EHDR_SIZE: u64 = 64;
const PHDR_SIZE: u16 = 56;
const SHDR_SIZE: u16 = 64;
const PT_LOAD: u32 = 1;
const PT_NOTE: u32 = 4;
const SHT_SYMTAB: u32 = 2;
const SHT_NOTE: u32 = 7;

/// Little-endian field reads with bounds checks.
#[derive(Clone, Copy)]
struct Reader<'a>(&'a [u8]);

impl<'a> Reader<'a> {
    fn slice(&self, what: &'static str, off: u64, len: u64) -> Result<&'a [u8], ElfError> {
        let have = self.0.len() as u64;
        let end = off.checked_add(len).filter(|&e| e <= have);
        match end {
            Some(end) => Ok(&self.0[to_usize(off)..to_usize(end)]),
            None => Err(ElfError::Truncated {
                what,
                need: off.saturating_add(len),
                have,
            }),
        }
    }

    fn u8(&self, what: &'static str, off: u64) -> Result<u8, ElfError> {
        Ok(self.slice(what, off, 1)?[0])
    }

    fn u16(&self, what: &'static str, off: u64) -> Result<u16, ElfError> {
        let b = self.slice(what, off, 2)?;
        Ok(u16::from_le_bytes([b[0], b[1]]))
    }

    fn u32(&self, what: &'static str, off: u64) -> Result<u32, ElfError> {
        let b = self.slice(what, off, 4)?;
        Ok(u32::from_le_bytes(b.try_into().expect("4 bytes")))
    }

    fn u64(&self, what: &'static str, off: u64) -> Result<u64, ElfError> {
        let b = self.slice(what, off, 8)?;
        Ok(u64::from_le_bytes(b.try_into().expect("8 bytes")))
    }
}

/// Offsets come from a file that is in memory, so they fit in usize once
/// they have been checked against its length.
fn to_usize(v: u64) -> usize {
    usize::try_from(v).expect("offset already checked against the file length")
}

struct Header {
    entry: u64,
    phoff: u64,
    phnum: u16,
    shoff: u64,
    shnum: u16,
}

fn parse_header(r: Reader<'_>) -> Result<Header, ElfError> {
    let magic = r.slice("ELF header", 0, 4)?;
    if magic != [0x7f, b'E', b'L', b'F'] {
        return Err(ElfError::BadMagic([magic[0], magic[1], magic[2], magic[3]]));
    }
    let ident = r.slice("ELF header", 0, 16)?;
    if ident[4] != 2 {
        return Err(ElfError::WrongClass(ident[4]));
    }
    if ident[5] != 1 {
        return Err(ElfError::WrongEndian(ident[5]));
    }
    r.slice("ELF header", 0, EHDR_SIZE)?;
    let e_type = r.u16("ELF header", 16)?;
    let machine = r.u16("ELF header", 18)?;
    if machine != 62 {
        return Err(ElfError::WrongMachine(machine));
    }
    if e_type != 2 {
        return Err(ElfError::NotExecutable(e_type));
    }
    let phentsize = r.u16("ELF header", 54)?;
    if phentsize != PHDR_SIZE {
        return Err(ElfError::BadEntrySize {
            table: "program header",
            size: phentsize,
            expected: PHDR_SIZE,
        });
    }
    let shnum = r.u16("ELF header", 60)?;
    let shentsize = r.u16("ELF header", 58)?;
    if shnum != 0 && shentsize != SHDR_SIZE {
        return Err(ElfError::BadEntrySize {
            table: "section header",
            size: shentsize,
            expected: SHDR_SIZE,
        });
    }
    Ok(Header {
        entry: r.u64("ELF header", 24)?,
        phoff: r.u64("ELF header", 32)?,
        phnum: r.u16("ELF header", 56)?,
        shoff: r.u64("ELF header", 40)?,
        shnum,
    })
}

struct Phdr {
    p_type: u32,
    flags: u32,
    offset: u64,
    vaddr: u64,
    paddr: u64,
    filesz: u64,
    memsz: u64,
    align: u64,
}

fn parse_phdrs(r: Reader<'_>, h: &Header) -> Result<Vec<Phdr>, ElfError> {
    let mut v = Vec::with_capacity(usize::from(h.phnum));
    for i in 0..u64::from(h.phnum) {
        let base = h
            .phoff
            .checked_add(i * u64::from(PHDR_SIZE))
            .ok_or(ElfError::Truncated {
                what: "program header table",
                need: u64::MAX,
                have: r.0.len() as u64,
            })?;
        r.slice("program header table", base, u64::from(PHDR_SIZE))?;
        v.push(Phdr {
            p_type: r.u32("program header", base)?,
            flags: r.u32("program header", base + 4)?,
            offset: r.u64("program header", base + 8)?,
            vaddr: r.u64("program header", base + 16)?,
            paddr: r.u64("program header", base + 24)?,
            filesz: r.u64("program header", base + 32)?,
            memsz: r.u64("program header", base + 40)?,
            align: r.u64("program header", base + 48)?,
        });
    }
    Ok(v)
}

fn check_file_range(r: Reader<'_>, index: usize, p: &Phdr) -> Result<(), ElfError> {
    let file_len = r.0.len() as u64;
    match p.offset.checked_add(p.filesz) {
        Some(end) if end <= file_len => Ok(()),
        _ => Err(ElfError::SegmentOutsideFile {
            index,
            offset: p.offset,
            filesz: p.filesz,
            file_len,
        }),
    }
}

fn load_segments(r: Reader<'_>, phdrs: &[Phdr]) -> Result<Vec<Segment>, ElfError> {
    let mut segs: Vec<Segment> = Vec::new();
    for (index, p) in phdrs
        .iter()
        .enumerate()
        .filter(|(_, p)| p.p_type == PT_LOAD)
    {
        check_file_range(r, index, p)?;
        if p.filesz > p.memsz {
            return Err(ElfError::FileszExceedsMemsz {
                index,
                filesz: p.filesz,
                memsz: p.memsz,
            });
        }
        if p.vaddr.checked_add(p.memsz).is_none() {
            return Err(ElfError::SegmentWraps { index });
        }
        let seg = Segment {
            index,
            vaddr: GuestVirtAddr(p.vaddr),
            paddr: p.paddr,
            offset: p.offset,
            filesz: p.filesz,
            memsz: p.memsz,
            flags: SegmentFlags {
                read: p.flags & 4 != 0,
                write: p.flags & 2 != 0,
                execute: p.flags & 1 != 0,
            },
        };
        if let Some(o) = segs
            .iter()
            .find(|o| seg.vaddr.0 < o.vend() && o.vaddr.0 < seg.vend())
        {
            return Err(ElfError::SegmentsOverlap {
                first: o.index,
                second: index,
            });
        }
        segs.push(seg);
    }
    if segs.is_empty() {
        return Err(ElfError::NoLoadableSegment);
    }
    Ok(segs)
}

struct Shdr {
    sh_type: u32,
    offset: u64,
    size: u64,
    link: u32,
    align: u64,
    base: u64,
}

fn parse_shdrs(r: Reader<'_>, h: &Header) -> Result<Vec<Shdr>, ElfError> {
    let mut v = Vec::with_capacity(usize::from(h.shnum));
    for i in 0..u64::from(h.shnum) {
        let base = h.shoff.saturating_add(i * u64::from(SHDR_SIZE));
        r.slice("section header table", base, u64::from(SHDR_SIZE))?;
        v.push(Shdr {
            sh_type: r.u32("section header", base + 4)?,
            offset: r.u64("section header", base + 24)?,
            size: r.u64("section header", base + 32)?,
            link: r.u32("section header", base + 40)?,
            align: r.u64("section header", base + 48)?,
            base,
        });
    }
    Ok(v)
}

fn malformed(what: &'static str, offset: u64, why: impl Into<String>) -> ElfError {
    ElfError::Malformed {
        what,
        offset,
        why: why.into(),
    }
}

fn c_string(strtab: &[u8], off: u64, at: u64) -> Result<String, ElfError> {
    let start = usize::try_from(off)
        .ok()
        .filter(|&s| s < strtab.len())
        .ok_or_else(|| {
            malformed(
                "symbol",
                at,
                format!("name offset {off} outside its string table"),
            )
        })?;
    let len = strtab[start..]
        .iter()
        .position(|&b| b == 0)
        .ok_or_else(|| malformed("symbol", at, "name not NUL-terminated"))?;
    Ok(String::from_utf8_lossy(&strtab[start..start + len]).into_owned())
}

fn parse_symbols(r: Reader<'_>, shdrs: &[Shdr]) -> Result<Vec<Symbol>, ElfError> {
    let mut syms = Vec::new();
    for sh in shdrs.iter().filter(|s| s.sh_type == SHT_SYMTAB) {
        let table = r.slice("symbol table", sh.offset, sh.size)?;
        let strsec = shdrs.get(to_usize(u64::from(sh.link))).ok_or_else(|| {
            malformed(
                "symbol table",
                sh.base,
                format!("string table index {} does not exist", sh.link),
            )
        })?;
        let strtab = r.slice("string table", strsec.offset, strsec.size)?;
        let t = Reader(table);
        for i in 0..(sh.size / 24) {
            let at = i * 24;
            let info = t.u8("symbol", at + 4)?;
            let name_off = u64::from(t.u32("symbol", at)?);
            if name_off == 0 || info & 0xf > 2 {
                continue; // unnamed, or a section/file symbol
            }
            syms.push(Symbol {
                name: c_string(strtab, name_off, sh.offset + at)?,
                value: t.u64("symbol", at + 8)?,
                size: t.u64("symbol", at + 16)?,
            });
        }
    }
    Ok(syms)
}

/// The notes of the `PT_NOTE` segments; if they hold no "Xen" note, those
/// of the `SHT_NOTE` sections are added (libelf's order: a kernel may carry
/// its Xen notes only in sections).
fn collect_notes(r: Reader<'_>, phdrs: &[Phdr], shdrs: &[Shdr]) -> Result<Vec<Note>, ElfError> {
    let mut notes = Vec::new();
    for (i, p) in phdrs
        .iter()
        .enumerate()
        .filter(|(_, p)| p.p_type == PT_NOTE)
    {
        check_file_range(r, i, p)?;
        let data = r.slice("note segment", p.offset, p.filesz)?;
        notes.extend(notes::parse(data, p.offset, notes::note_align(p.align))?);
    }
    if notes.iter().any(|n| n.name == "Xen") {
        return Ok(notes);
    }
    for s in shdrs.iter().filter(|s| s.sh_type == SHT_NOTE) {
        let data = r.slice("note section", s.offset, s.size)?;
        notes.extend(notes::parse(data, s.offset, notes::note_align(s.align))?);
    }
    Ok(notes)
}

impl<'a> ElfImage<'a> {
    /// Parses and validates an ELF64 little-endian x86-64 executable: its
    /// header, `PT_LOAD` segments, notes and symbols. Where a PV kernel's
    /// entry point and segments land is [`crate::PvImage`]'s business.
    ///
    /// ```
    /// let w = smpsim_workloads::find("hello").expect("built in");
    /// let elf = smpsim_workloads::ElfImage::parse(w.image).expect("valid image");
    /// assert_eq!(elf.virt_base().0, smpsim_workloads::VIRT_BASE);
    /// ```
    pub fn parse(bytes: &'a [u8]) -> Result<Self, ElfError> {
        let r = Reader(bytes);
        let h = parse_header(r)?;
        let phdrs = parse_phdrs(r, &h)?;
        let segments = load_segments(r, &phdrs)?;
        let shdrs = parse_shdrs(r, &h)?;
        let notes = collect_notes(r, &phdrs, &shdrs)?;
        Ok(ElfImage {
            bytes,
            entry: h.entry,
            segments,
            notes,
            symbols: parse_symbols(r, &shdrs)?,
        })
    }

    /// The whole file.
    pub fn bytes(&self) -> &'a [u8] {
        self.bytes
    }

    /// `e_entry` (a Xen kernel's ENTRY note overrides it: see
    /// [`crate::PvImage::entry`]).
    pub fn entry(&self) -> GuestVirtAddr {
        GuestVirtAddr(self.entry)
    }

    /// The `PT_LOAD` segments, in program header order.
    pub fn segments(&self) -> &[Segment] {
        &self.segments
    }

    /// The bytes of a segment present in the file (`filesz` of them).
    pub fn segment_data(&self, seg: &Segment) -> &'a [u8] {
        &self.bytes[to_usize(seg.offset)..to_usize(seg.offset + seg.filesz)]
    }

    /// Every note, from the `PT_NOTE` segments (or `SHT_NOTE` sections).
    pub fn notes(&self) -> &[Note] {
        &self.notes
    }

    /// The Xen notes (`XEN_ELFNOTE_*`, xen-abi.md §1.3).
    pub fn xen_notes(&self) -> Result<XenNotes, ElfError> {
        XenNotes::from_notes(&self.notes)
    }

    /// smpsim's own notes.
    pub fn smpsim_notes(&self) -> Result<SmpsimNotes, ElfError> {
        SmpsimNotes::from_notes(&self.notes)
    }

    /// Looks a symbol up by name (first match in the symbol table).
    pub fn symbol(&self, name: &str) -> Option<&Symbol> {
        self.symbols.iter().find(|s| s.name == name)
    }

    /// All named function, object and untyped symbols.
    pub fn symbols(&self) -> &[Symbol] {
        &self.symbols
    }

    /// VA of pseudo-physical page 0: the VIRT_BASE note, else 0 (Xen's
    /// rule, libelf).
    pub fn virt_base(&self) -> GuestVirtAddr {
        GuestVirtAddr(self.xen_notes().ok().and_then(|n| n.virt_base).unwrap_or(0))
    }

    /// Lowest virtual address of any `PT_LOAD` segment.
    pub fn image_start(&self) -> GuestVirtAddr {
        GuestVirtAddr(
            self.segments
                .iter()
                .map(|s| s.vaddr.0)
                .min()
                .expect("at least one segment"),
        )
    }

    /// One past the highest virtual address of any `PT_LOAD` segment.
    pub fn image_end(&self) -> GuestVirtAddr {
        GuestVirtAddr(
            self.segments
                .iter()
                .map(Segment::vend)
                .max()
                .expect("at least one segment"),
        )
    }

    /// Where the builder must write the hypercall page: the
    /// XEN_ELFNOTE_HYPERCALL_PAGE note, else the `hypercall_page` symbol.
    pub fn hypercall_page(&self) -> Result<Option<GuestVirtAddr>, ElfError> {
        let note = self.xen_notes()?.hypercall_page;
        Ok(note
            .or_else(|| self.symbol("hypercall_page").map(|s| s.value))
            .map(GuestVirtAddr))
    }

    /// Address of the workload parameter block: SMPSIM note type 1, checked
    /// against the `smpsim_params` symbol when both exist.
    pub fn params_addr(&self) -> Result<GuestVirtAddr, ElfError> {
        let note = self.smpsim_notes()?.params;
        let sym = self.symbol(crate::params::PARAMS_SYMBOL).map(|s| s.value);
        match (note, sym) {
            (Some(n), Some(s)) if n != s => Err(ElfError::ParamsMismatch { note: n, symbol: s }),
            (Some(a), _) | (None, Some(a)) => Ok(GuestVirtAddr(a)),
            (None, None) => Err(ElfError::NoParams),
        }
    }

    /// File-backed bytes at `[va, va + len)` inside one segment, if any.
    pub fn read_virt(&self, va: GuestVirtAddr, len: u64) -> Option<&'a [u8]> {
        let seg = self.segments.iter().find(|s| s.contains(va.0))?;
        let off = va.0 - seg.vaddr.0;
        let end = off.checked_add(len)?;
        (end <= seg.filesz).then(|| &self.segment_data(seg)[to_usize(off)..to_usize(end)])
    }
}

#[cfg(test)]
mod tests;
