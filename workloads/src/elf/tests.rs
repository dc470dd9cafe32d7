use super::*;
use crate::{catalogue, find, GuestParams, PARAMS_MAGIC, PARAMS_SIZE, VIRT_BASE};

fn hello() -> Vec<u8> {
    find("hello").expect("built in").image.to_vec()
}

fn put16(b: &mut [u8], off: usize, v: u16) {
    b[off..off + 2].copy_from_slice(&v.to_le_bytes());
}

fn put64(b: &mut [u8], off: usize, v: u64) {
    b[off..off + 8].copy_from_slice(&v.to_le_bytes());
}

fn err(bytes: &[u8]) -> ElfError {
    ElfImage::parse(bytes).expect_err("must be rejected")
}

#[test]
fn every_image_has_xen_notes_matching_its_symbols() {
    for w in catalogue() {
        let elf = ElfImage::parse(w.image).unwrap_or_else(|e| panic!("{}: {e}", w.name));
        let x = elf.xen_notes().expect("well-formed notes");
        assert_eq!(x.virt_base, Some(VIRT_BASE), "{}", w.name);
        assert_eq!(x.paddr_offset, Some(0), "{}", w.name);
        assert_eq!(x.entry, Some(elf.entry().0), "{}", w.name);
        assert_eq!(x.entry, elf.symbol("_start").map(|s| s.value), "{}", w.name);
        assert_eq!(
            x.hypercall_page,
            elf.symbol("hypercall_page").map(|s| s.value)
        );
        assert_eq!(x.guest_os.as_deref(), Some("smpsim-guest"));
        assert_eq!(x.xen_version.as_deref(), Some("xen-3.0"));
        assert_eq!(x.loader.as_deref(), Some("generic"));
        let s = elf.smpsim_notes().expect("well-formed notes");
        assert_eq!(s.abi_version, Some(1), "{}", w.name);
        assert_eq!(s.params, elf.symbol("smpsim_params").map(|s| s.value));
    }
}

#[test]
fn every_image_has_a_hypercall_page_of_int3_in_its_text() {
    for w in catalogue() {
        let elf = w.elf();
        let hp = elf.hypercall_page().expect("notes").expect("has a page");
        assert_eq!(hp.0 % 4096, 0, "{}: page-aligned", w.name);
        let seg = elf
            .segments()
            .iter()
            .find(|s| s.contains(hp.0))
            .expect("inside a segment");
        assert!(
            seg.flags.execute && !seg.flags.write,
            "{}: in the text segment",
            w.name
        );
        let page = elf.read_virt(hp, 4096).expect("file-backed");
        assert!(
            page.iter().all(|&b| b == 0xcc),
            "{}: filled with int3",
            w.name
        );
    }
}

#[test]
fn every_image_segments_fit_and_start_at_virt_base() {
    for w in catalogue() {
        let elf = w.elf();
        assert_eq!(elf.image_start().0, VIRT_BASE, "{}", w.name);
        assert_eq!(elf.segments().len(), 2, "{}: text and data", w.name);
        for s in elf.segments() {
            assert_eq!(
                s.paddr,
                s.vaddr.0 - VIRT_BASE,
                "{}: paddr = vaddr - base",
                w.name
            );
            assert!(s.offset + s.filesz <= w.image.len() as u64);
            assert!(s.filesz <= s.memsz);
            assert_eq!(s.vaddr.0 % 4096, 0, "{}: page-aligned segments", w.name);
        }
        let (text, data) = (&elf.segments()[0], &elf.segments()[1]);
        assert!(text.flags.read && text.flags.execute && !text.flags.write);
        assert!(data.flags.read && data.flags.write && !data.flags.execute);
        assert!(text.vend() <= data.vaddr.0);
    }
}

#[test]
fn every_image_params_block_holds_magic_and_version() {
    for w in catalogue() {
        let elf = w.elf();
        let at = elf.params_addr().expect("has params");
        let sym = elf.symbol("smpsim_params").expect("symbol");
        assert_eq!(sym.value, at.0);
        assert_eq!(sym.size, PARAMS_SIZE as u64, "{}", w.name);
        assert_eq!(at.0 % 64, 0);
        let block = elf.read_virt(at, PARAMS_SIZE as u64).expect("file-backed");
        let p = GuestParams::decode(block).expect("magic and version");
        assert_eq!(
            p,
            GuestParams::default(),
            "{}: all builder fields zero",
            w.name
        );
    }
}

#[test]
fn every_image_defaults_and_name_match_the_catalogue() {
    for w in catalogue() {
        let elf = w.elf();
        let sym = elf
            .symbol("workload_arg_defaults")
            .expect("defined by WORKLOAD()");
        let bytes = elf
            .read_virt(GuestVirtAddr(sym.value), 64)
            .expect("in rodata");
        let guest: Vec<u64> = bytes
            .chunks(8)
            .map(|c| u64::from_le_bytes(c.try_into().expect("8 bytes")))
            .collect();
        assert_eq!(
            guest,
            w.defaults().to_vec(),
            "{}: C and Rust defaults differ",
            w.name
        );
        let name = elf.symbol("workload_name").expect("defined by WORKLOAD()");
        let n = w.name.len() as u64;
        let s = elf
            .read_virt(GuestVirtAddr(name.value), n + 1)
            .expect("in rodata");
        assert_eq!(&s[..w.name.len()], w.name.as_bytes());
        assert_eq!(s[w.name.len()], 0);
    }
}

#[test]
fn truncated_header_is_rejected_with_sizes() {
    let e = err(&hello()[..10]);
    assert_eq!(
        e.to_string(),
        "ELF image truncated: the ELF header needs 16 bytes, the file has 10"
    );
    let e = err(&hello()[..40]);
    assert_eq!(
        e.to_string(),
        "ELF image truncated: the ELF header needs 64 bytes, the file has 40"
    );
    let e = err(&hello()[..100]);
    assert_eq!(
        e.to_string(),
        "ELF image truncated: the program header table needs 120 bytes, the file has 100"
    );
}

#[test]
fn bad_magic_is_named() {
    let mut b = hello();
    b[0..4].copy_from_slice(b"\x7fELG");
    assert_eq!(
        err(&b).to_string(),
        "not an ELF image: magic 7f 45 4c 47, expected 7f 45 4c 46"
    );
    assert_eq!(
        err(b"MZ\x90\x00 windows").to_string(),
        "not an ELF image: magic 4d 5a 90 00, expected 7f 45 4c 46"
    );
}

#[test]
fn wrong_class_endian_machine_and_type_are_named() {
    let mut b = hello();
    b[4] = 1;
    assert_eq!(err(&b).to_string(), "ELF class 1 is not ELF64 (2)");
    let mut b = hello();
    b[5] = 2;
    assert_eq!(
        err(&b).to_string(),
        "ELF data encoding 2 is not little-endian (1)"
    );
    let mut b = hello();
    put16(&mut b, 18, 183);
    assert_eq!(err(&b), ElfError::WrongMachine(183));
    assert_eq!(err(&b).to_string(), "ELF machine 183 is not x86-64 (62)");
    let mut b = hello();
    put16(&mut b, 16, 3);
    assert_eq!(
        err(&b).to_string(),
        "ELF type 3 is not an executable (ET_EXEC = 2)"
    );
    let mut b = hello();
    put16(&mut b, 54, 32);
    assert_eq!(
        err(&b).to_string(),
        "program header entry size is 32, expected 56"
    );
}

#[test]
fn segment_outside_file_is_named() {
    let img = hello();
    let data = ElfImage::parse(&img).expect("valid").segments()[1].clone();
    let cut = usize::try_from(data.offset + 16).expect("small");
    let e = err(&img[..cut]);
    assert_eq!(
        e,
        ElfError::SegmentOutsideFile {
            index: 1,
            offset: data.offset,
            filesz: data.filesz,
            file_len: cut as u64
        }
    );
    assert_eq!(
        e.to_string(),
        format!(
            "segment 1 (file offset {:#x}, size {:#x}) lies outside the {cut}-byte file: \
             the image is truncated",
            data.offset, data.filesz
        )
    );
}

#[test]
fn filesz_above_memsz_and_overlap_are_named() {
    // Program header 0 is at offset 64: p_vaddr @ +16, p_filesz @ +32, p_memsz @ +40.
    let mut b = hello();
    put64(&mut b, 64 + 40, 16);
    let e = err(&b);
    assert!(
        matches!(
            e,
            ElfError::FileszExceedsMemsz {
                index: 0,
                memsz: 16,
                ..
            }
        ),
        "{e}"
    );
    assert!(e.to_string().starts_with("segment 0: file size 0x"), "{e}");
    let mut b = hello();
    put64(&mut b, 64 + 56 + 16, VIRT_BASE);
    assert_eq!(
        err(&b).to_string(),
        "segments 0 and 1 overlap in virtual memory"
    );
    // The entry point is checked where the image is placed (PvImage): the
    // ENTRY note, not e_entry, is what counts for a Xen kernel.
    let mut b = hello();
    put64(&mut b, 24, 0x1000);
    let pv = crate::PvImage::parse(&b).expect("ENTRY note overrides e_entry");
    assert_eq!(pv.entry(), pv.xen_notes().entry.expect("note"));
}

#[test]
fn malformed_note_is_named() {
    let img = hello();
    // Find the PT_NOTE header (type 4) and corrupt its first note's namesz.
    let phnum = usize::from(u16::from_le_bytes([img[56], img[57]]));
    let ph = (0..phnum)
        .map(|i| 64 + i * 56)
        .find(|&o| img[o] == 4)
        .expect("a PT_NOTE");
    let off = usize::try_from(u64::from_le_bytes(
        img[ph + 8..ph + 16].try_into().expect("8"),
    ))
    .expect("small");
    let mut b = img.clone();
    b[off..off + 4].copy_from_slice(&0x1000u32.to_le_bytes());
    let e = err(&b);
    assert!(matches!(e, ElfError::Malformed { what: "note", .. }), "{e}");
    assert!(
        e.to_string().starts_with(&format!(
            "malformed note at file offset {off:#x}: name 4096"
        )),
        "{e}"
    );
}

#[test]
fn load_plan_writes_params_and_zeroes_bss() {
    let w = find("ring").expect("built in");
    let elf = w.elf();
    let p = GuestParams {
        nr_vcpus: 7,
        flags: 1,
        args: [5, 4, 8, 0, 0, 0, 0, 9],
        ..Default::default()
    };
    let plan = crate::load_plan(&elf, &p).expect("loads");
    assert_eq!(plan.len(), 2);
    let at = elf.params_addr().expect("params").0;
    let data = &plan[1];
    let o = (at - data.vaddr.0) as usize;
    for (c, s) in plan.iter().zip(elf.segments()) {
        assert_eq!(c.bytes.len() as u64, s.memsz);
        assert_eq!(c.pseudo_phys, s.vaddr.0 - VIRT_BASE);
        let mut file = elf.segment_data(s).to_vec();
        if s.contains(at) {
            file[o..o + PARAMS_SIZE].copy_from_slice(&c.bytes[o..o + PARAMS_SIZE]);
        }
        assert_eq!(
            &c.bytes[..s.filesz as usize],
            &file[..],
            "only the params block changes"
        );
        assert!(c.bytes[s.filesz as usize..].iter().all(|&b| b == 0));
    }
    assert_eq!(GuestParams::decode(&data.bytes[o..o + PARAMS_SIZE]), Ok(p));
    assert_eq!(&data.bytes[o..o + 4], &PARAMS_MAGIC.to_le_bytes());
}

#[test]
fn params_round_trip_and_decode_errors() {
    let p = GuestParams {
        nr_vcpus: 64,
        flags: 1,
        domain_index: 1,
        peer_domid: 3,
        shared_info_va: 0x1234_5000,
        shared_va: 0x8000_0000,
        shared_bytes: 4096,
        args: [1, 2, 3, 4, 5, 6, 7, u64::MAX],
    };
    let b = p.encode();
    assert_eq!(&b[0..4], b"SMPS");
    assert_eq!(u32::from_le_bytes(b[8..12].try_into().expect("4")), 64);
    assert_eq!(u64::from_le_bytes(b[48..56].try_into().expect("8")), 1);
    assert_eq!(&b[112..128], &[0u8; 16]);
    assert_eq!(GuestParams::decode(&b), Ok(p));
    assert_eq!(
        GuestParams::decode(&b[..100]).unwrap_err().to_string(),
        "params block has 100 bytes, expected 128"
    );
    let mut bad = b;
    bad[0] = 0;
    assert_eq!(
        GuestParams::decode(&bad).unwrap_err().to_string(),
        "params block magic is 0x53504d00, expected 0x53504d53"
    );
    let mut bad = b;
    bad[4] = 2;
    assert_eq!(
        GuestParams::decode(&bad).unwrap_err().to_string(),
        "params block version is 2, expected 1"
    );
}
