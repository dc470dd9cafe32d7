use super::*;
use crate::memory::{GuestMemory, PagedMemory, SparseFrames};
use crate::mmu::PvSpace;
use smpsim_cores::paging::AccessKind;
use std::sync::Arc;

const BASE: u64 = 0x40_0000;
const S: TimeScale = TimeScale {
    mul: 0x8000_0000,
    shift: 0,
};

pub(crate) fn test_image() -> GuestImage {
    let mut data = vec![0u8; 0x100];
    data[0..4].copy_from_slice(&PARAMS_MAGIC.to_le_bytes());
    data[4..8].copy_from_slice(&PARAMS_VERSION.to_le_bytes());
    data[0x80] = 0x5a;
    GuestImage {
        segments: vec![
            Segment {
                vaddr: BASE,
                bytes: vec![0x90; 0x1800],
                memsz: 0x1800,
            },
            Segment {
                vaddr: BASE + 0x2000,
                bytes: data,
                memsz: 0x3000,
            },
        ],
        entry: BASE + 0x1000,
        virt_base: BASE,
        hypercall_page: Some(BASE),
        params: Some(BASE + 0x2000),
        guest_os: String::new(),
        features: String::new(),
    }
}

pub(crate) fn test_config() -> DomainConfig {
    DomainConfig {
        memory_bytes: 64 * 4096,
        max_memory_bytes: 0,
        vcpus: 2,
        cmdline: "hello world".into(),
        wallclock_sec: 0x1_2345_6789,
        params: ParamsFill {
            nr_vcpus: 2,
            flags: 1,
            domain_index: 1,
            peer_domid: 0,
            args: [10, 20, 0, 0, 0, 0, 0, 77],
        },
        shared: None,
        ramdisk: Vec::new(),
        privileged: false,
    }
}

fn space_of(d: &BuiltDomain) -> PvSpace {
    PvSpace {
        root: Some(d.l4),
        user: false,
        m2p: Arc::new(Vec::new()),
    }
}

fn read(store: &mut SparseFrames, space: &PvSpace, va: u64, n: usize) -> Vec<u8> {
    let mut b = vec![0u8; n];
    PagedMemory { space, store }
        .read_virt(va, &mut b)
        .expect("mapped");
    b
}

/// The frame `va` maps to and whether a write may use it.
fn frame(store: &mut SparseFrames, space: &PvSpace, va: u64) -> Option<(Mfn, bool)> {
    let mut p = crate::memory::StoreMa(store);
    let t = space.translate_in(&mut p, va, AccessKind::Read).ok()?;
    let w = space.translate_in(&mut p, va, AccessKind::Write).is_ok();
    Some((Mfn(t.frame / 4096), w))
}

fn u64_at(b: &[u8], off: usize) -> u64 {
    u64::from_le_bytes(b[off..off + 8].try_into().expect("8"))
}

#[test]
fn layout_p2m_and_start_of_day_registers() {
    let mut store = SparseFrames::new();
    let mut frames = FrameAllocator::new(Mfn(0x200), 1000);
    let d = build(&test_image(), &test_config(), S, &mut frames, &mut store).expect("builds");
    let l = &d.layout;
    assert_eq!(l.image_end, BASE + 0x5000);
    assert_eq!(l.p2m_va, BASE + 0x5000, "64 pages × 8 B = one page");
    assert_eq!(l.start_info_va, BASE + 0x6000);
    assert_eq!(l.xenstore_va, BASE + 0x7000);
    assert_eq!(l.console_va, BASE + 0x8000);
    assert_eq!(l.pt_va, BASE + 0x9000);
    assert_eq!(l.nr_pt_frames, 4, "L4, L3, L2 and one L1 for 2 MiB");
    assert_eq!(l.stack_top, BASE + 0xe000, "stack page after the tables");
    assert_eq!(l.memory_end, BASE + 64 * 4096);
    assert_eq!(
        l.mapped_end, l.memory_end,
        "a built-in guest has all memory mapped"
    );
    assert_eq!(l.shared_info_va, BASE + 65 * 4096);
    assert_eq!(d.p2m.len(), 64);
    assert_eq!(d.p2m[0], Mfn(0x200));
    assert_eq!(d.p2m[63], Mfn(0x23f));
    assert_eq!(d.shared_info, Mfn(0x240));
    assert_eq!(d.l4, Mfn(0x209));
    let sp = space_of(&d);
    assert_eq!(
        frame(&mut store, &sp, BASE + 5 * 4096 + 3),
        Some((Mfn(0x205), true))
    );
    assert_eq!(
        frame(&mut store, &sp, l.shared_info_va),
        Some((Mfn(0x240), true))
    );
    assert_eq!(frame(&mut store, &sp, l.memory_end), None, "guard page");
    for pt in 0..4 {
        assert_eq!(
            frame(&mut store, &sp, l.pt_va + pt * 4096),
            Some((Mfn(0x209 + pt), false)),
            "page-table frame {pt} is mapped read-only"
        );
    }
    assert_eq!(d.regs.rip, BASE + 0x1000);
    assert_eq!(d.regs.gpr[RSI], BASE + 0x6000);
    assert_eq!(d.regs.gpr[RSP], BASE + 0xe000);
    assert_eq!(d.regs.rflags, 0x202);
    let list = read(&mut store, &sp, l.p2m_va, 64 * 8);
    assert_eq!(u64_at(&list, 8 * 7), 0x207);
}

#[test]
fn a_kernel_without_params_gets_xens_bootstrap_mapping() {
    let mut store = SparseFrames::new();
    let mut frames = FrameAllocator::new(Mfn(0x200), 5000);
    let mut img = test_image();
    img.params = None;
    let mut cfg = test_config();
    cfg.memory_bytes = 4096 * 4096;
    cfg.ramdisk = vec![7u8; 5000];
    let d = build(&img, &cfg, S, &mut frames, &mut store).expect("builds");
    let l = &d.layout;
    assert_eq!(l.mod_start, BASE + 0x5000);
    assert_eq!(l.mod_len, 5000);
    assert_eq!(l.p2m_va, BASE + 0x7000, "the ramdisk takes two pages");
    assert_eq!(
        l.start_info_va,
        BASE + 0xf000,
        "4096 pages × 8 B = 8 pages of P2M"
    );
    assert_eq!(l.shared_info_va, 0, "the guest maps shared_info itself");
    assert_eq!(
        l.mapped_end, 0x80_0000,
        "512 KiB slack, then the next 4 MiB boundary"
    );
    let sp = space_of(&d);
    assert!(frame(&mut store, &sp, l.mapped_end - 4096).is_some());
    assert_eq!(frame(&mut store, &sp, l.mapped_end), None);
    assert!(frame(&mut store, &sp, BASE - 4096).is_none());
    assert_eq!(read(&mut store, &sp, l.mod_start + 4999, 2), vec![7, 0]);
    // 0x40_0000..0x80_0000 spans two L1 tables.
    assert_eq!(l.nr_pt_frames, 5);
    let si = read(&mut store, &sp, l.start_info_va, 1168);
    assert_eq!(u64_at(&si, 88), l.pt_va, "pt_base");
    assert_eq!(u64_at(&si, 96), 5, "nr_pt_frames");
    assert_eq!(u64_at(&si, 112), BASE + 0x5000, "mod_start");
    assert_eq!(u64_at(&si, 120), 5000, "mod_len");
    assert_eq!(
        u64_at(&si, 56),
        d.p2m[16].0,
        "store_mfn: the page after start_info"
    );
}

#[test]
fn start_info_fields() {
    let mut store = SparseFrames::new();
    let mut frames = FrameAllocator::new(Mfn(0x200), 1000);
    let d = build(&test_image(), &test_config(), S, &mut frames, &mut store).expect("builds");
    let si = read(&mut store, &space_of(&d), d.layout.start_info_va, 1168);
    assert_eq!(&si[0..15], b"xen-3.0-x86_64\0");
    assert_eq!(u64_at(&si, 32), 64, "nr_pages");
    assert_eq!(u64_at(&si, 40), 0x240 * 4096, "shared_info MA");
    assert_eq!(u64_at(&si, 56), 0x207, "store_mfn");
    assert_eq!(u64_at(&si, 72), 0x208, "console mfn");
    assert_eq!(u64_at(&si, 88), BASE + 0x9000, "pt_base");
    assert_eq!(u64_at(&si, 96), 4, "nr_pt_frames");
    assert_eq!(u64_at(&si, 104), BASE + 0x5000, "mfn_list");
    assert_eq!(&si[128..140], b"hello world\0");
}

#[test]
fn a_privileged_domain_has_sif_privileged_and_initdomain() {
    use crate::abi::sif;
    let mut store = SparseFrames::new();
    let mut frames = FrameAllocator::new(Mfn(0x200), 1000);
    let d = build(&test_image(), &test_config(), S, &mut frames, &mut store).expect("builds");
    let si = read(&mut store, &space_of(&d), d.layout.start_info_va, 1168);
    assert_eq!(u32::from_le_bytes(si[48..52].try_into().expect("4")), 0);
    let cfg = DomainConfig {
        privileged: true,
        ..test_config()
    };
    let d = build(&test_image(), &cfg, S, &mut frames, &mut store).expect("builds");
    let si = read(&mut store, &space_of(&d), d.layout.start_info_va, 1168);
    let flags = u32::from_le_bytes(si[48..52].try_into().expect("4"));
    assert_eq!(flags, sif::PRIVILEGED | sif::INITDOMAIN);
}

#[test]
fn shared_info_masks_time_and_wallclock() {
    let mut store = SparseFrames::new();
    let mut frames = FrameAllocator::new(Mfn(0x200), 1000);
    let d = build(&test_image(), &test_config(), S, &mut frames, &mut store).expect("builds");
    let mut p = vec![0u8; 4096];
    store.read(d.shared_info.addr(0).get(), &mut p);
    for v in 0..32 {
        assert_eq!(p[v * 64 + 1], 1, "upcall_mask of VCPU {v}");
        assert_eq!(p[v * 64], 0);
    }
    assert_eq!(
        &p[64 + 56..64 + 60],
        &0x8000_0000u32.to_le_bytes(),
        "v1 mul"
    );
    assert_eq!(p[64 + 32], 2, "v1 time version");
    assert_eq!(p[2 * 64 + 32], 0, "v2 does not exist");
    assert_eq!(&p[3072..3076], &2u32.to_le_bytes());
    assert_eq!(&p[3076..3080], &0x2345_6789u32.to_le_bytes());
    assert_eq!(&p[3084..3088], &1u32.to_le_bytes(), "wc_sec_hi");
}

#[test]
fn hypercall_page_stubs() {
    let mut store = SparseFrames::new();
    let mut frames = FrameAllocator::new(Mfn(0x200), 1000);
    let d = build(&test_image(), &test_config(), S, &mut frames, &mut store).expect("builds");
    let sp = space_of(&d);
    let p = read(&mut store, &sp, BASE, 4096);
    assert_eq!(
        &p[18 * 32..18 * 32 + 15],
        &[0x51, 0x41, 0x53, 0xB8, 18, 0, 0, 0, 0x0F, 0x05, 0x41, 0x5B, 0x59, 0xC3, 0xCC]
    );
    assert_eq!(
        &p[23 * 32..23 * 32 + 11],
        &[0x51, 0x41, 0x53, 0x50, 0xB8, 23, 0, 0, 0, 0x0F, 0x05]
    );
    assert_eq!(p[23 * 32 + 11], 0xCC);
    assert_eq!(p[127 * 32 + 4], 127);
    assert_eq!(p[4095], 0xCC);
    assert_eq!(read(&mut store, &sp, BASE + 0x1000, 1), vec![0x90]);
}

#[test]
fn params_block_filled_after_magic() {
    let mut store = SparseFrames::new();
    let mut frames = FrameAllocator::new(Mfn(0x200), 1000);
    let mut cfg = test_config();
    cfg.shared = Some(SharedArea {
        va: SHARED_AREA_VA,
        frames: vec![Mfn(5), Mfn(6)],
    });
    let d = build(&test_image(), &cfg, S, &mut frames, &mut store).expect("builds");
    let sp = space_of(&d);
    let p = read(&mut store, &sp, BASE + 0x2000, 0x88);
    assert_eq!(&p[0..4], b"SMPS");
    assert_eq!(&p[8..24], &[2, 0, 0, 0, 1, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0]);
    assert_eq!(u64_at(&p, 24), BASE + 65 * 4096, "shared_info_va");
    assert_eq!(u64_at(&p, 32), SHARED_AREA_VA, "shared_va");
    assert_eq!(u64_at(&p, 40), 8192);
    assert_eq!(u64_at(&p, 48), 10);
    assert_eq!(u64_at(&p, 48 + 7 * 8), 77);
    assert_eq!(u64_at(&p, 112), 0);
    assert_eq!(p[0x80], 0x5a, "byte 128 untouched");
    assert_eq!(
        frame(&mut store, &sp, SHARED_AREA_VA + 4096),
        Some((Mfn(6), true))
    );
    cfg.shared = Some(SharedArea {
        va: BASE + 64 * 4096,
        frames: vec![Mfn(5)],
    });
    let e = build(&test_image(), &cfg, S, &mut frames, &mut store).expect_err("clash");
    assert_eq!(
        e,
        BuildError::BadSharedArea {
            va: BASE + 64 * 4096,
            bytes: 4096
        }
    );
    let bss = read(&mut store, &sp, BASE + 0x4000, 16);
    assert_eq!(bss, vec![0; 16]);
}

#[test]
fn errors_name_what_and_where() {
    let mut store = SparseFrames::new();
    let mut frames = FrameAllocator::new(Mfn(0), 1000);
    let img = test_image();
    let mut cfg = test_config();
    cfg.memory_bytes = 7 * 4096;
    let e = build(&img, &cfg, S, &mut frames, &mut store).expect_err("too small");
    assert_eq!(
        e,
        BuildError::ImageTooBig {
            needed: 14,
            have: 7
        }
    );
    assert!(e.to_string().contains("need 14 pages"));
    cfg.memory_bytes = 4 * 4096;
    let e = build(&img, &cfg, S, &mut frames, &mut store).expect_err("outside");
    assert!(matches!(e, BuildError::SegmentOutsideMemory { vaddr, .. } if vaddr == BASE + 0x2000));
    let mut bad = test_image();
    bad.segments[1].vaddr = BASE + 0x1000;
    let e = build(&bad, &test_config(), S, &mut frames, &mut store).expect_err("overlap");
    assert_eq!(
        e,
        BuildError::SegmentsOverlap {
            a: BASE,
            b: BASE + 0x1000
        }
    );
    let mut bad = test_image();
    bad.params = Some(BASE + 0x9000);
    let e = build(&bad, &test_config(), S, &mut frames, &mut store).expect_err("params");
    assert_eq!(e, BuildError::ParamsOutsideImage(BASE + 0x9000));
    let mut bad = test_image();
    bad.segments[1].bytes[0] = 0;
    let e = build(&bad, &test_config(), S, &mut frames, &mut store).expect_err("magic");
    assert!(e.to_string().contains("magic 0x53504d00"), "{e}");
    let mut bad = test_image();
    bad.hypercall_page = Some(BASE + 8);
    let e = build(&bad, &test_config(), S, &mut frames, &mut store).expect_err("hcall");
    assert_eq!(e, BuildError::BadHypercallPage(BASE + 8));
    let mut small = FrameAllocator::new(Mfn(0), 64);
    let e = build(&test_image(), &test_config(), S, &mut small, &mut store).expect_err("frames");
    assert!(matches!(e, BuildError::OutOfFrames(_)));
}
