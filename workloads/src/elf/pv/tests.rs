//! Xen's placement rule and the errors of bad PV kernels, on small ELF
//! images built here byte by byte.

use super::*;
use crate::elf::xen_type as t;
use crate::elf::Note;
use crate::{catalogue, VIRT_BASE};

const PF_X: u32 = 1;
const PF_W: u32 = 2;
const PF_R: u32 = 4;

/// One `PT_LOAD` of a synthetic image.
struct Seg {
    vaddr: u64,
    paddr: u64,
    flags: u32,
    data: Vec<u8>,
    memsz: u64,
}

fn seg(vaddr: u64, paddr: u64, len: u64) -> Seg {
    Seg {
        vaddr,
        paddr,
        flags: PF_R | PF_W | PF_X,
        data: vec![0x90; 64],
        memsz: len,
    }
}

#[derive(Clone, Copy, PartialEq)]
enum NotesIn {
    Segment,
    Section,
}

fn note(name: &str, ty: u32, desc: &[u8]) -> Vec<u8> {
    let mut n = Vec::new();
    n.extend_from_slice(&(name.len() as u32 + 1).to_le_bytes());
    n.extend_from_slice(&(desc.len() as u32).to_le_bytes());
    n.extend_from_slice(&ty.to_le_bytes());
    n.extend_from_slice(name.as_bytes());
    n.push(0);
    n.resize(n.len().div_ceil(4) * 4, 0);
    n.extend_from_slice(desc);
    n.resize(n.len().div_ceil(4) * 4, 0);
    n
}

fn xen_str(ty: u32, s: &str) -> Vec<u8> {
    note("Xen", ty, format!("{s}\0").as_bytes())
}

fn xen_num(ty: u32, v: u64) -> Vec<u8> {
    note("Xen", ty, &v.to_le_bytes())
}

/// The notes XTF's pv64 tests carry (no VIRT_BASE, PADDR_OFFSET or ENTRY).
fn xtf_notes(hypercall_page: u64) -> Vec<u8> {
    [
        xen_str(t::GUEST_OS, "XTF"),
        xen_str(t::GUEST_VERSION, "0"),
        xen_str(t::LOADER, "generic"),
        xen_num(t::HYPERCALL_PAGE, hypercall_page),
        xen_str(t::XEN_VERSION, "xen-3.0"),
        xen_str(t::FEATURES, "!writable_page_tables|pae_pgdir_above_4gb"),
        xen_str(t::PAE_MODE, "yes"),
    ]
    .concat()
}

fn put(b: &mut Vec<u8>, off: usize, v: &[u8]) {
    if b.len() < off + v.len() {
        b.resize(off + v.len(), 0);
    }
    b[off..off + v.len()].copy_from_slice(v);
}

/// An ELF64 x86-64 executable: the segments' bytes from 0x1000, one page
/// each, then the notes in a `PT_NOTE` or an `SHT_NOTE` section.
fn image(segs: &[Seg], notes: &[u8], notes_in: NotesIn, entry: u64) -> Vec<u8> {
    let note_seg = notes_in == NotesIn::Segment && !notes.is_empty();
    let phnum = segs.len() + usize::from(note_seg);
    let mut b = vec![0u8; 64];
    put(&mut b, 0, b"\x7fELF\x02\x01\x01");
    put(&mut b, 16, &2u16.to_le_bytes());
    put(&mut b, 18, &62u16.to_le_bytes());
    put(&mut b, 20, &1u32.to_le_bytes());
    put(&mut b, 24, &entry.to_le_bytes());
    put(&mut b, 32, &64u64.to_le_bytes());
    put(&mut b, 52, &64u16.to_le_bytes());
    put(&mut b, 54, &56u16.to_le_bytes());
    put(&mut b, 56, &(phnum as u16).to_le_bytes());
    put(&mut b, 58, &64u16.to_le_bytes());
    let phdr = |b: &mut Vec<u8>, i: usize, f: [u64; 7]| {
        let at = 64 + i * 56;
        put(b, at, &(f[0] as u32).to_le_bytes());
        put(b, at + 4, &(f[1] as u32).to_le_bytes());
        for (k, v) in f[2..].iter().enumerate() {
            put(b, at + 8 + k * 8, &v.to_le_bytes());
        }
    };
    for (i, s) in segs.iter().enumerate() {
        let off = 0x1000 * (i + 1);
        let n = s.data.len() as u64;
        phdr(
            &mut b,
            i,
            [
                1,
                u64::from(s.flags),
                off as u64,
                s.vaddr,
                s.paddr,
                n,
                s.memsz,
            ],
        );
        put(&mut b, 64 + i * 56 + 48, &0x1000u64.to_le_bytes());
        put(&mut b, off, &s.data);
    }
    let noff = 0x1000 * (segs.len() + 1);
    put(&mut b, noff, notes);
    let nlen = notes.len() as u64;
    if note_seg {
        phdr(&mut b, segs.len(), [4, 4, noff as u64, 0, 0, nlen, nlen]);
        put(&mut b, 64 + segs.len() * 56 + 48, &4u64.to_le_bytes());
    }
    if notes_in == NotesIn::Section {
        let shoff = (noff + notes.len()).div_ceil(8) * 8;
        put(&mut b, 40, &(shoff as u64).to_le_bytes());
        put(&mut b, 60, &2u16.to_le_bytes());
        let sh = shoff + 64; // section 0 is the null section
        put(&mut b, sh + 4, &7u32.to_le_bytes());
        put(&mut b, sh + 24, &(noff as u64).to_le_bytes());
        put(&mut b, sh + 32, &nlen.to_le_bytes());
        put(&mut b, sh + 48, &4u64.to_le_bytes());
        b.resize(sh + 64, 0);
    }
    b
}

/// XTF's layout: one RWX segment at 1 MiB, p_paddr = p_vaddr.
fn xtf_like(notes_in: NotesIn) -> Vec<u8> {
    image(
        &[seg(0x10_0000, 0x10_0000, 0x11000)],
        &xtf_notes(0x10_6000),
        notes_in,
        0x10_0000,
    )
}

fn pv_err(b: &[u8]) -> ElfError {
    PvImage::parse(b).expect_err("must be refused")
}

#[test]
fn xtf_notes_are_read_from_the_note_segment() {
    let b = xtf_like(NotesIn::Segment);
    let pv = PvImage::parse(&b).expect("a PV kernel");
    let n = pv.xen_notes();
    assert_eq!(n.count, 7);
    assert_eq!(n.guest_os.as_deref(), Some("XTF"));
    assert_eq!(n.guest_version.as_deref(), Some("0"));
    assert_eq!(n.loader.as_deref(), Some("generic"));
    assert_eq!(n.xen_version.as_deref(), Some("xen-3.0"));
    assert_eq!(
        n.features.as_deref(),
        Some("!writable_page_tables|pae_pgdir_above_4gb")
    );
    assert_eq!(n.pae_mode.as_deref(), Some("yes"));
    assert_eq!(pv.hypercall_page(), Some(0x10_6000));
    assert_eq!((pv.virt_base(), pv.paddr_offset()), (0, 0));
    assert_eq!(pv.entry(), 0x10_0000);
    assert_eq!(pv.segments().len(), 1);
    assert_eq!(pv.segments()[0].va, 0x10_0000);
    assert_eq!((pv.kernel_start(), pv.kernel_end()), (0x10_0000, 0x11_1000));
    assert_eq!(pv.params().expect("no smpsim notes"), None);
    assert_eq!(pv.segment_data(&pv.segments()[0]), &[0x90; 64][..]);
}

#[test]
fn without_a_note_segment_the_note_sections_are_read() {
    let seg_bytes = xtf_like(NotesIn::Segment);
    let a = PvImage::parse(&seg_bytes).expect("segment");
    let bytes = xtf_like(NotesIn::Section);
    let b = PvImage::parse(&bytes).expect("section");
    assert_eq!(a.xen_notes(), b.xen_notes());
    assert_eq!(a.segments(), b.segments());
}

#[test]
fn a_note_segment_without_xen_notes_falls_back_to_the_sections() {
    // A PT_NOTE holding only a GNU build-id, the Xen notes in a section.
    let gnu = note("GNU", 3, &[1, 2, 3, 4]);
    let mut b = image(
        &[seg(0x10_0000, 0x10_0000, 0x2000)],
        &gnu,
        NotesIn::Segment,
        0x10_0000,
    );
    let mut s = xtf_like(NotesIn::Section);
    // Graft: keep `b`'s PT_NOTE (GNU) and add `s`'s section table.
    let shoff = u64::from_le_bytes(s[40..48].try_into().expect("8"));
    let sh = usize::try_from(shoff).expect("small") + 64;
    let noff = usize::try_from(u64::from_le_bytes(
        s[sh + 24..sh + 32].try_into().expect("8"),
    ))
    .expect("small");
    let len = usize::try_from(u64::from_le_bytes(
        s[sh + 32..sh + 40].try_into().expect("8"),
    ))
    .expect("small");
    let at = b.len().div_ceil(8) * 8;
    put(&mut b, at, &s[noff..noff + len]);
    let new_sh = (at + len).div_ceil(8) * 8;
    s[sh + 24..sh + 32].copy_from_slice(&(at as u64).to_le_bytes());
    put(&mut b, new_sh, &s[sh - 64..sh + 64]);
    put(&mut b, 40, &(new_sh as u64).to_le_bytes());
    put(&mut b, 60, &2u16.to_le_bytes());
    let pv = PvImage::parse(&b).expect("Xen notes from the section");
    assert_eq!(pv.xen_notes().guest_os.as_deref(), Some("XTF"));
    assert!(pv.elf().notes().iter().any(|n| n.name == "GNU"));
}

#[test]
fn virt_base_and_paddr_offset_place_segments_as_libelf_does() {
    // Linux's layout: linked high, p_paddr = 16 MiB, VIRT_BASE given,
    // PADDR_OFFSET 0, ENTRY a 4-byte note that overrides e_entry.
    let kva = 0xffff_ffff_8100_0000;
    let notes = [
        xen_str(t::GUEST_OS, "linux"),
        xen_str(t::XEN_VERSION, "xen-3.0"),
        xen_num(t::VIRT_BASE, 0xffff_ffff_8000_0000),
        xen_num(t::PADDR_OFFSET, 0),
        note("Xen", t::ENTRY, &0x8100_0040u32.to_le_bytes()),
        xen_num(t::HV_START_LOW, 0xffff_8000_0000_0000),
        xen_num(t::INIT_P2M, 0x80_0000_0000),
        note("Xen", t::SUPPORTED_FEATURES, &0x801u32.to_le_bytes()),
    ]
    .concat();
    let b = image(&[seg(kva, 0x100_0000, 0x3000)], &notes, NotesIn::Segment, 0);
    // The 4-byte ENTRY zero-extends: place it inside an image at low VAs.
    let e = pv_err(&b);
    assert!(
        matches!(
            e,
            ElfError::EntryOutsideImage {
                entry: 0x8100_0040,
                ..
            }
        ),
        "{e}"
    );
    let notes = [
        xen_str(t::GUEST_OS, "linux"),
        xen_str(t::XEN_VERSION, "xen-3.0"),
        xen_num(t::VIRT_BASE, 0xffff_ffff_8000_0000),
        xen_num(t::PADDR_OFFSET, 0),
        xen_num(t::ENTRY, kva + 0x40),
        xen_num(t::HV_START_LOW, 0xffff_8000_0000_0000),
        xen_num(t::INIT_P2M, 0x80_0000_0000),
        note("Xen", t::SUPPORTED_FEATURES, &0x801u32.to_le_bytes()),
    ]
    .concat();
    let b = image(&[seg(kva, 0x100_0000, 0x3000)], &notes, NotesIn::Segment, 0);
    let pv = PvImage::parse(&b).expect("linux-like");
    assert_eq!(pv.segments()[0].va, kva, "p_paddr - 0 + VIRT_BASE");
    assert_eq!(pv.entry(), kva + 0x40, "ENTRY note over e_entry");
    let n = pv.xen_notes();
    assert_eq!(n.hv_start_low, Some(0xffff_8000_0000_0000));
    assert_eq!(n.init_p2m, Some(0x80_0000_0000));
    assert_eq!(n.supported_features, Some(0x801));
    // Old kernels: p_paddr = p_vaddr, PADDR_OFFSET = VIRT_BASE.
    let notes = [
        xen_str(t::LOADER, "generic"),
        xen_str(t::XEN_VERSION, "xen-3.0"),
        xen_num(t::VIRT_BASE, 0x4000_0000),
        xen_num(t::PADDR_OFFSET, 0x4000_0000),
    ]
    .concat();
    let b = image(
        &[seg(0x4020_0000, 0x4020_0000, 0x1000)],
        &notes,
        NotesIn::Segment,
        0x4020_0000,
    );
    let pv = PvImage::parse(&b).expect("old layout");
    assert_eq!(pv.segments()[0].va, 0x4020_0000);
    // A segment placed by p_paddr, not p_vaddr.
    let notes = [
        xen_str(t::LOADER, "generic"),
        xen_str(t::XEN_VERSION, "xen-3.0"),
        xen_num(t::VIRT_BASE, 0x4000_0000),
    ]
    .concat();
    let b = image(
        &[seg(0x1234_0000, 0x20_0000, 0x1000)],
        &notes,
        NotesIn::Segment,
        0x4020_0010,
    );
    let pv = PvImage::parse(&b).expect("placed by paddr");
    assert_eq!(pv.segments()[0].va, 0x4020_0000);
}

#[test]
fn paddr_offset_without_virt_base_is_refused() {
    let notes = [
        xen_str(t::LOADER, "generic"),
        xen_str(t::XEN_VERSION, "xen-3.0"),
        xen_num(t::PADDR_OFFSET, 0x1000),
    ]
    .concat();
    let b = image(
        &[seg(0x10_0000, 0x10_0000, 0x1000)],
        &notes,
        NotesIn::Segment,
        0x10_0000,
    );
    assert_eq!(pv_err(&b), ElfError::PaddrOffsetWithoutVirtBase(0x1000));
    assert_eq!(
        pv_err(&b).to_string(),
        "Xen note PADDR_OFFSET (0x1000) is set but VIRT_BASE is not"
    );
}

#[test]
fn an_image_without_xen_notes_is_not_a_pv_kernel() {
    let b = image(
        &[seg(0x10_0000, 0x10_0000, 0x1000)],
        &note("GNU", 3, &[1, 2, 3, 4]),
        NotesIn::Segment,
        0x10_0000,
    );
    assert_eq!(pv_err(&b), ElfError::NoXenNotes);
    assert!(pv_err(&b).to_string().starts_with("not a Xen PV kernel"));
    let b = image(
        &[seg(0x10_0000, 0x10_0000, 0x1000)],
        &[],
        NotesIn::Segment,
        0x10_0000,
    );
    assert_eq!(pv_err(&b), ElfError::NoXenNotes);
}

#[test]
fn loader_and_xen_version_are_checked_as_xen_does() {
    let b = image(
        &[seg(0x10_0000, 0x10_0000, 0x1000)],
        &[
            xen_str(t::GUEST_OS, "plan9"),
            xen_str(t::XEN_VERSION, "xen-3.0"),
        ]
        .concat(),
        NotesIn::Segment,
        0x10_0000,
    );
    assert_eq!(
        pv_err(&b).to_string(),
        "Xen loads only images for the generic loader or Linux: LOADER is \"\", GUEST_OS is \"plan9\""
    );
    let b = image(
        &[seg(0x10_0000, 0x10_0000, 0x1000)],
        &[
            xen_str(t::LOADER, "generic"),
            xen_str(t::XEN_VERSION, "xen-2.0"),
        ]
        .concat(),
        NotesIn::Segment,
        0x10_0000,
    );
    assert_eq!(
        pv_err(&b),
        ElfError::UnsupportedXenVersion("xen-2.0".into())
    );
}

#[test]
fn entry_outside_the_image_is_named_with_the_bounds() {
    let b = image(
        &[seg(0x10_0000, 0x10_0000, 0x1000)],
        &xtf_notes(0),
        NotesIn::Segment,
        0x5000,
    );
    let e = pv_err(&b);
    assert_eq!(
        e,
        ElfError::EntryOutsideImage {
            entry: 0x5000,
            start: 0x10_0000,
            end: 0x10_1000
        }
    );
    assert_eq!(
        e.to_string(),
        "entry point 0x5000 is outside the image (0x100000..0x101000)"
    );
}

#[test]
fn segments_overlapping_where_placed_are_refused() {
    // Distinct p_vaddr, overlapping p_paddr: they would overlap in memory.
    let b = image(
        &[
            seg(0x10_0000, 0x10_0000, 0x2000),
            seg(0x20_0000, 0x10_1000, 0x1000),
        ],
        &xtf_notes(0),
        NotesIn::Segment,
        0x10_0000,
    );
    assert_eq!(
        pv_err(&b),
        ElfError::SegmentsOverlap {
            first: 0,
            second: 1
        }
    );
}

#[test]
fn virt_base_above_the_image_is_refused() {
    let notes = [
        xen_str(t::LOADER, "generic"),
        xen_str(t::XEN_VERSION, "xen-3.0"),
        xen_num(t::VIRT_BASE, 0x1000),
        xen_num(t::PADDR_OFFSET, 0x1000),
    ]
    .concat();
    let b = image(
        &[seg(0x800, 0x800, 0x1000)],
        &notes,
        NotesIn::Segment,
        0x800,
    );
    assert_eq!(
        pv_err(&b),
        ElfError::VirtBaseAboveImage {
            virt_base: 0x1000,
            start: 0x800
        }
    );
}

#[test]
fn a_segment_without_permissions_is_not_loaded() {
    let mut dead = seg(0x10_0000, 0x10_0000, 0x1000);
    dead.flags = 0;
    let b = image(
        &[dead, seg(0x20_0000, 0x20_0000, 0x1000)],
        &xtf_notes(0),
        NotesIn::Segment,
        0x20_0000,
    );
    let pv = PvImage::parse(&b).expect("valid");
    assert_eq!(pv.segments().len(), 1);
    assert_eq!(pv.kernel_start(), 0x20_0000);
}

#[test]
fn truncated_not_elf_not_elf64_and_not_x86_64_are_named() {
    let b = xtf_like(NotesIn::Segment);
    let e = pv_err(&b[..0x1010]);
    assert!(
        matches!(e, ElfError::SegmentOutsideFile { index: 0, .. }),
        "{e}"
    );
    assert!(e.to_string().ends_with("the image is truncated"), "{e}");
    assert!(matches!(pv_err(b"#!/bin/sh\n"), ElfError::BadMagic(_)));
    let mut c = b.clone();
    c[4] = 1;
    assert_eq!(pv_err(&c), ElfError::WrongClass(1));
    let mut c = b;
    c[18] = 3;
    assert_eq!(pv_err(&c), ElfError::WrongMachine(3));
}

#[test]
fn numeric_notes_take_one_to_eight_bytes() {
    for (desc, v) in [
        (&[0x12][..], 0x12),
        (&[0x34, 0x12][..], 0x1234),
        (&0x10_6000u32.to_le_bytes()[..], 0x10_6000),
    ] {
        let n = [Note {
            name: "Xen".into(),
            n_type: t::HYPERCALL_PAGE,
            desc: desc.to_vec(),
        }];
        assert_eq!(
            XenNotes::from_notes(&n).expect("valid").hypercall_page,
            Some(v)
        );
    }
    let n = [Note {
        name: "Xen".into(),
        n_type: t::HYPERCALL_PAGE,
        desc: vec![0; 3],
    }];
    let e = XenNotes::from_notes(&n).expect_err("3 bytes");
    assert!(e.to_string().contains("3-byte value"), "{e}");
}

#[test]
fn every_built_in_image_is_placed_where_it_is_linked() {
    for w in catalogue() {
        let elf = w.elf();
        let pv = PvImage::from_elf(elf.clone()).unwrap_or_else(|e| panic!("{}: {e}", w.name));
        assert_eq!(pv.virt_base(), VIRT_BASE, "{}", w.name);
        assert_eq!(pv.entry(), elf.entry().0, "{}", w.name);
        assert_eq!(pv.segments().len(), elf.segments().len(), "{}", w.name);
        for (p, s) in pv.segments().iter().zip(elf.segments()) {
            assert_eq!(p.va, s.vaddr.0, "{}: placed at its link address", w.name);
        }
        let hp = elf.hypercall_page().expect("notes").map(|v| v.0);
        assert_eq!(pv.hypercall_page(), hp, "{}", w.name);
        let params = elf.params_addr().expect("params").0;
        assert_eq!(pv.params().expect("params"), Some(params), "{}", w.name);
    }
}
