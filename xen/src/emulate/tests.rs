//! The PV emulator: each emulated instruction and its refusals.

use crate::hypervisor::Upcall;
use crate::ids::{DomainId, VcpuId};
use crate::testenv::{env, regs, Env, SCRATCH};
use smpsim_cores::arch::reg::{RAX, RBX, RCX, RDX, RSP};
use smpsim_cores::ArchState;

/// Code goes here (page 17 of the test image); the trap table sends
/// every vector to a handler at HANDLER + vector.
const CODE: u64 = 0x40_0000 + 17 * 4096;
const HANDLER: u64 = 0x40_3000;

fn setup() -> Env {
    let mut e = env(&[1]);
    let traps = &mut e.hv.vcpu_mut(DomainId(0), VcpuId(0)).traps;
    for (i, t) in traps.iter_mut().enumerate() {
        t.address = HANDLER + i as u64;
        t.cs = 0xe033;
        t.flags = if i == 0x20 { 3 } else { 0 };
    }
    e
}

/// Runs `bytes` at CODE as a core fault `vector` with `r`.
fn fault(e: &mut Env, bytes: &[u8], vector: u8, r: &mut ArchState) -> Upcall {
    e.write(0, CODE, bytes);
    r.rip = CODE;
    let space = e.hv.vcpu_space(DomainId(0), VcpuId(0));
    let mut m = crate::memory::PagedMemory {
        space: &space,
        store: &mut e.store,
    };
    let f = crate::emulate::CoreFault {
        vector,
        addr: 0,
        error_code: None,
    };
    e.hv.guest_fault(DomainId(0), VcpuId(0), 1000, f, r, &mut m)
}

fn base() -> ArchState {
    regs(0, [0; 5])
}

/// The vector a bounce entered (the handler is HANDLER + vector) and its
/// error code (the word after RCX and R11 when one was pushed).
fn bounced(e: &mut Env, r: &ArchState, with_error: bool) -> (u64, Option<u64>) {
    let v = r.rip - HANDLER;
    let ec = with_error
        .then(|| u64::from_le_bytes(e.read(0, r.gpr[RSP] + 16, 8).try_into().expect("8")));
    (v, ec)
}

#[test]
fn forced_cpuid_is_emulated_and_bare_ud2_stays_ud() {
    let mut e = setup();
    let mut r = base();
    r.gpr[RAX] = 0x4000_0000;
    let bytes = [0x0f, 0x0b, 0x78, 0x65, 0x6e, 0x0f, 0xa2];
    assert_eq!(fault(&mut e, &bytes, 6, &mut r), Upcall::Delivered);
    assert_eq!(r.rip, CODE + 7);
    assert_eq!(r.gpr[RBX], 0x566e_6558, "XenV");
    assert_eq!(r.gpr[RAX], 0x4000_0005);
    let mut r = base();
    r.gpr[RAX] = 1;
    fault(&mut e, &bytes, 6, &mut r);
    assert_ne!(r.gpr[RCX] & 1 << 31, 0, "hypervisor bit");
    let mut r = base();
    fault(&mut e, &[0x0f, 0x0b, 0x90, 0x90], 6, &mut r);
    assert_eq!(bounced(&mut e, &r, false).0, 6, "bare ud2: #UD");
}

#[test]
fn control_registers() {
    let mut e = setup();
    // mov rax, cr0 ; with TS from fpu_taskswitch
    e.hv.vcpu_mut(DomainId(0), VcpuId(0)).pv.cr0_ts = true;
    let mut r = base();
    fault(&mut e, &[0x0f, 0x20, 0xc0], 13, &mut r);
    assert_eq!((r.gpr[RAX], r.rip), (0x8005_003b, CODE + 3));
    // mov cr0, rax clearing TS: allowed; changing PG: #GP(0)
    let mut r = base();
    r.gpr[RAX] = 0x8005_0033;
    fault(&mut e, &[0x0f, 0x22, 0xc0], 13, &mut r);
    assert!(!e.hv.vcpu_mut(DomainId(0), VcpuId(0)).pv.cr0_ts);
    let mut r = base();
    r.gpr[RAX] = 0x33;
    fault(&mut e, &[0x0f, 0x22, 0xc0], 13, &mut r);
    assert_eq!(bounced(&mut e, &r, true), (13, Some(0)));
    // cr2 reads the last #PF address
    e.hv.vcpu_mut(DomainId(0), VcpuId(0)).pv.cr2 = 0xdead_b000;
    let mut r = base();
    fault(&mut e, &[0x0f, 0x20, 0xd0], 13, &mut r);
    assert_eq!(r.gpr[RAX], 0xdead_b000);
    // cr3 write then read: the new kernel base pointer
    // (a frame that is no L4 table is refused with #GP(0))
    let mut r = base();
    r.gpr[RAX] = 0x1234_5000;
    fault(&mut e, &[0x0f, 0x22, 0xd8], 13, &mut r);
    assert_eq!(bounced(&mut e, &r, true), (13, Some(0)));
    let cr3 = e.cr3(0);
    let mut r = base();
    r.gpr[RAX] = cr3;
    fault(&mut e, &[0x0f, 0x22, 0xd8], 13, &mut r);
    assert_eq!(
        e.hv.take_deferred_effects().len(),
        1,
        "NewRoot: a CR3 load flushes"
    );
    let mut r = base();
    fault(&mut e, &[0x0f, 0x20, 0xd8], 13, &mut r);
    assert_eq!(r.gpr[RAX], cr3);
    // cr4: PGE discarded, DE kept, no #GP
    let mut r = base();
    r.gpr[RAX] = 1 << 7 | 1 << 3 | 1 << 5;
    fault(&mut e, &[0x0f, 0x22, 0xe0], 13, &mut r);
    assert_eq!(r.rip, CODE + 3);
    let mut r = base();
    fault(&mut e, &[0x0f, 0x20, 0xe0], 13, &mut r);
    assert_eq!(r.gpr[RAX], 1 << 3 | 1 << 5 | 1 << 6);
    // cr8: #GP(0)
    let mut r = base();
    fault(&mut e, &[0x44, 0x0f, 0x20, 0xc0], 13, &mut r);
    assert_eq!(bounced(&mut e, &r, true), (13, Some(0)));
}

#[test]
fn debug_registers_follow_set_debugreg() {
    let mut e = setup();
    let mut r = base();
    fault(&mut e, &[0x0f, 0x21, 0xf8], 13, &mut r); // mov rax, dr7
    assert_eq!(r.gpr[RAX], 0x400);
    fault(&mut e, &[0x0f, 0x21, 0xf0], 13, &mut r); // mov rax, dr6
    assert_eq!(r.gpr[RAX], 0xffff_0ff0);
    // An I/O breakpoint without CR4.DE: #GP(0), DR7 kept.
    let mut r = base();
    r.gpr[RAX] = 0x2_0002 | 0x400;
    fault(&mut e, &[0x0f, 0x23, 0xf8], 13, &mut r);
    assert_eq!(bounced(&mut e, &r, true), (13, Some(0)));
    assert_eq!(e.hv.vcpu_mut(DomainId(0), VcpuId(0)).pv.dr[7], 0x400);
    // DR0 in Xen's range: refused; a guest address: taken.
    let mut r = base();
    r.gpr[RAX] = 0xffff_8000_0000_1000;
    fault(&mut e, &[0x0f, 0x23, 0xc0], 13, &mut r);
    assert_eq!(bounced(&mut e, &r, true), (13, Some(0)));
    let mut r = base();
    r.gpr[RAX] = 0x40_1000;
    fault(&mut e, &[0x0f, 0x23, 0xc0], 13, &mut r);
    assert_eq!(e.hv.vcpu_mut(DomainId(0), VcpuId(0)).pv.dr[0], 0x40_1000);
}

#[test]
fn msrs_xen_allows_and_refusals() {
    let mut e = setup();
    let mut r = base();
    r.fs_base = 0x1234_5678_9abc;
    r.gpr[RCX] = 0xc000_0100;
    fault(&mut e, &[0x0f, 0x32], 13, &mut r);
    assert_eq!(
        (r.gpr[RAX], r.gpr[RDX], r.rip),
        (0x5678_9abc, 0x1234, CODE + 2)
    );
    let mut r = base();
    r.gpr[RCX] = 0xc000_0080;
    fault(&mut e, &[0x0f, 0x32], 13, &mut r);
    assert_eq!(r.gpr[RAX], 0xd01, "EFER");
    let mut r = base();
    r.gpr[RCX] = 0xce;
    r.gpr[RAX] = 5;
    fault(&mut e, &[0x0f, 0x32], 13, &mut r);
    assert_eq!(
        (r.gpr[RAX], r.rip),
        (0, CODE + 2),
        "PLATFORM_INFO: no CPUID faulting"
    );
    let mut r = base();
    r.gpr[RCX] = 0x140;
    r.gpr[RAX] = 1;
    fault(&mut e, &[0x0f, 0x30], 13, &mut r);
    assert_eq!(
        bounced(&mut e, &r, true),
        (13, Some(0)),
        "cannot enable faulting"
    );
    // wrmsr GS_BASE; a non-canonical value and an unknown MSR: #GP(0)
    let mut r = base();
    r.gpr[RCX] = 0xc000_0101;
    r.gpr[RAX] = 0x5000;
    fault(&mut e, &[0x0f, 0x30], 13, &mut r);
    assert_eq!(r.gs_base, 0x5000);
    for (op, msr, hi) in [
        (0x30u8, 0xc000_0101u64, 0x8000u64),
        (0x32, 0x1a0, 0),
        (0x32, 0x4000_0000, 0),
    ] {
        let mut r = base();
        r.gpr[RCX] = msr;
        r.gpr[RDX] = hi;
        fault(&mut e, &[0x0f, op], 13, &mut r);
        assert_eq!(bounced(&mut e, &r, true), (13, Some(0)), "msr {msr:#x}");
    }
}

#[test]
fn io_and_cli_follow_the_virtual_iopl() {
    let mut e = setup();
    // vIOPL 0: the kernel (vCPL 1) faults.
    let mut r = base();
    fault(&mut e, &[0xe6, 0x80], 13, &mut r);
    assert_eq!(bounced(&mut e, &r, true), (13, Some(0)));
    e.hv.vcpu_mut(DomainId(0), VcpuId(0)).pv.iopl = 1;
    let mut r = base();
    fault(&mut e, &[0xfa], 13, &mut r);
    assert_eq!(r.rip, CODE + 1, "cli at vIOPL 1 from the kernel");
    let mut r = base();
    fault(&mut e, &[0xec], 13, &mut r); // in al, dx
    assert_eq!((r.gpr[RAX] & 0xff, r.rip), (0xff, CODE + 1));
}

#[test]
fn int_n_checks_the_trap_table_dpl() {
    let mut e = setup();
    // int 0x20: DPL 3 → trap with RIP past the instruction.
    let mut r = base();
    fault(&mut e, &[0xcd, 0x20], 13, &mut r);
    assert_eq!(bounced(&mut e, &r, false).0, 0x20);
    let ret = u64::from_le_bytes(e.read(0, r.gpr[RSP] + 16, 8).try_into().expect("8"));
    assert_eq!(ret, CODE + 2);
    // int 0x21: DPL 0 → #GP(0x21*8+2).
    let mut r = base();
    fault(&mut e, &[0xcd, 0x21], 13, &mut r);
    assert_eq!(bounced(&mut e, &r, true), (13, Some(0x21 * 8 + 2)));
    // int3: #BP as a trap.
    let mut r = base();
    fault(&mut e, &[0xcc], 3, &mut r);
    let ret = u64::from_le_bytes(e.read(0, r.gpr[RSP] + 16, 8).try_into().expect("8"));
    assert_eq!((bounced(&mut e, &r, false).0, ret), (3, CODE + 1));
}

/// A GDT in the scratch page: 1 flat code64 DPL0, 2 data DPL3, 3 a TSS,
/// 4 a not-present data segment, 5 read-only data with base 0x1000.
fn install_gdt(e: &mut Env) {
    let gdt: [u64; 6] = [
        0,
        0x00af_9a00_0000_ffff,
        0x00cf_f200_0000_ffff,
        0x0000_8900_0000_0067,
        0x00cf_7200_0000_ffff,
        0x00cf_f000_1000_ffff,
    ];
    let b: Vec<u8> = gdt.iter().flat_map(|d| d.to_le_bytes()).collect();
    e.write(0, SCRATCH, &b);
    let mfn = crate::ids::Mfn(e.translate(0, SCRATCH).expect("mapped") >> 12);
    let pv = &mut e.hv.vcpu_mut(DomainId(0), VcpuId(0)).pv;
    pv.gdt_frames = vec![mfn];
    pv.gdt_entries = 6;
}

#[test]
fn segment_loads_are_checked_like_hardware() {
    let mut e = setup();
    install_gdt(&mut e);
    let load_ds = [0x8e, 0xd8]; // mov ds, eax
    for (sel, want) in [
        (0x13u64, None),              // data DPL3
        (0xe02b, None),               // Xen's FLAT_RING3_DS32
        (0, None),                    // null
        (0x0b, Some((13, 0x08))),     // code64, DPL 0 < RPL 3: #GP(sel)
        (0x1b, Some((13, 0x18))),     // a TSS
        (0x23, Some((11, 0x20))),     // not present: #NP(sel)
        (0x63, Some((13, 0x60))),     // beyond the GDT
        (0xe010, Some((13, 0xe010))), // Xen's ring-0 data
    ] {
        let mut r = base();
        r.gpr[RAX] = sel;
        fault(&mut e, &load_ds, 13, &mut r);
        match want {
            None => {
                assert_eq!(r.rip, CODE + 2, "{sel:#x}");
                assert_eq!(e.hv.vcpu_mut(DomainId(0), VcpuId(0)).pv.sel.ds, sel as u16);
            }
            Some((v, ec)) => assert_eq!(bounced(&mut e, &r, true), (v, Some(ec)), "{sel:#x}"),
        }
    }
    // mov ss, null: #GP(0); mov ss, read-only data: #GP(sel).
    for (sel, ec) in [(0u64, 0u64), (0x2b, 0x28)] {
        let mut r = base();
        r.gpr[RAX] = sel;
        fault(&mut e, &[0x8e, 0xd0], 13, &mut r);
        assert_eq!(bounced(&mut e, &r, true), (13, Some(ec)));
    }
    // mov fs, 0x2b loads the base; mov eax, fs reads the selector.
    let mut r = base();
    r.gpr[RAX] = 0x2b;
    fault(&mut e, &[0x8e, 0xe0], 13, &mut r);
    assert_eq!(r.fs_base, 0x1000);
    let mut r = base();
    fault(&mut e, &[0x8c, 0xe0], 13, &mut r);
    assert_eq!(r.gpr[RAX], 0x2b);
}

#[test]
fn sgdt_sidt_and_user_mode_refusals() {
    let mut e = setup();
    let mut r = base();
    r.gpr[RBX] = SCRATCH;
    fault(&mut e, &[0x0f, 0x01, 0x0b], 13, &mut r); // sidt [rbx]
    assert_eq!(e.read(0, SCRATCH, 2), vec![0xff, 0x0f]);
    // In user mode, rdmsr and mov cr stay #GP(0).
    let root = Some(crate::ids::Mfn(e.cr3(0) >> 12));
    let mut sm = crate::memory::StoreMa(&mut e.store);
    e.hv.new_baseptr(
        DomainId(0),
        VcpuId(0),
        root,
        crate::mmu::BasePtr::User,
        &mut sm,
    )
    .expect("the kernel's L4 serves as the user one");
    e.hv.vcpu_mut(DomainId(0), VcpuId(0)).mmu.user_mode = true;
    e.hv.vcpu_mut(DomainId(0), VcpuId(0)).pv.kernel_sp = 0x40_7800;
    let mut r = base();
    r.gpr[RCX] = 0xc000_0100;
    fault(&mut e, &[0x0f, 0x32], 13, &mut r);
    assert_eq!(bounced(&mut e, &r, true), (13, Some(0)));
    assert!(
        !e.hv.in_user_mode(DomainId(0), VcpuId(0)),
        "the bounce entered the kernel"
    );
    assert!(
        r.gpr[RSP] < 0x40_7800 && r.gpr[RSP] > 0x40_7700,
        "on the kernel stack"
    );
    let cs = u64::from_le_bytes(e.read(0, r.gpr[RSP] + 32, 8).try_into().expect("8"));
    assert_eq!(cs & 3, 3, "user CS saved with RPL 3");
}

#[test]
fn segment_store_to_an_unmapped_page_is_a_page_fault() {
    let mut e = setup();
    let mut r = base();
    r.gpr[RBX] = 0x10; // nothing maps page 0
    fault(&mut e, &[0x8c, 0x1b], 13, &mut r); // mov [rbx], ds
    assert_eq!(bounced(&mut e, &r, true), (14, Some(6)));
    assert_eq!(e.hv.vcpu_mut(DomainId(0), VcpuId(0)).pv.cr2, 0x10);
}

#[test]
fn the_io_bitmap_allows_ports_the_iopl_does_not() {
    let mut e = setup();
    // Ports 0x80..0x87 allowed (bits clear), the rest refused.
    let mut bm = vec![0xffu8; 32];
    bm[0x10] = 0;
    e.write(0, SCRATCH, &bm);
    e.write(0, SCRATCH + 0x100, &SCRATCH.to_le_bytes());
    e.write(0, SCRATCH + 0x108, &256u32.to_le_bytes());
    assert_eq!(e.call(0, 0, 0, 33, [7, SCRATCH + 0x100, 0, 0, 0]).0, 0);
    let mut r = base();
    fault(&mut e, &[0xe6, 0x80], 13, &mut r); // out 0x80, al
    assert_eq!(r.rip, CODE + 2, "allowed by the bitmap");
    let mut r = base();
    fault(&mut e, &[0xe7, 0x86], 13, &mut r); // out 0x86, eax: 0x86..0x89
    assert_eq!(bounced(&mut e, &r, true), (13, Some(0)), "0x88 is refused");
    let mut r = base();
    fault(&mut e, &[0xfa], 13, &mut r);
    assert_eq!(
        bounced(&mut e, &r, true),
        (13, Some(0)),
        "cli ignores the bitmap"
    );
}

#[test]
fn non_canonical_stack_references_are_ss_others_gp() {
    let mut e = setup();
    let bad = 0x8000_0000_4000_0000;
    // mov rax, [rsp] / [rbp] / es:[rsp]: #SS(0); [rax], fs:[rsp]: #GP(0).
    for (bytes, vector) in [
        (&[0x48, 0x8b, 0x04, 0x24][..], 12),
        (&[0x48, 0x8b, 0x45, 0x00][..], 12),
        (&[0x26, 0x48, 0x8b, 0x04, 0x24][..], 12),
        (&[0x48, 0x8b, 0x00][..], 13),
        (&[0x64, 0x48, 0x8b, 0x04, 0x24][..], 13),
    ] {
        let mut r = base();
        r.gpr[RAX] = bad;
        r.gpr[5] = bad;
        // The segment follows the base register, not the address: RSP
        // stays good so that the bounce frame can be written.
        fault(&mut e, bytes, 13, &mut r);
        assert_eq!(bounced(&mut e, &r, true), (vector, Some(0)), "{bytes:02x?}");
    }
    // In user mode too (it is not a privileged instruction).
    let root = Some(crate::ids::Mfn(e.cr3(0) >> 12));
    let mut sm = crate::memory::StoreMa(&mut e.store);
    e.hv.new_baseptr(
        DomainId(0),
        VcpuId(0),
        root,
        crate::mmu::BasePtr::User,
        &mut sm,
    )
    .expect("the kernel's L4 serves as the user one");
    e.hv.vcpu_mut(DomainId(0), VcpuId(0)).mmu.user_mode = true;
    e.hv.vcpu_mut(DomainId(0), VcpuId(0)).pv.kernel_sp = 0x40_7800;
    let mut r = base();
    fault(&mut e, &[0x48, 0x8b, 0x45, 0x00], 13, &mut r);
    assert_eq!(bounced(&mut e, &r, true), (12, Some(0)));
}

#[test]
fn far_returns_and_calls_check_their_selector() {
    let mut e = setup();
    // lretq to Xen's flat 64-bit ring-3 code selector: RIP and RSP move.
    let mut r = base();
    let sp = r.gpr[RSP];
    let frame: Vec<u8> = [0x40_1234u64, 0xe033]
        .iter()
        .flat_map(|w| w.to_le_bytes())
        .collect();
    e.write(0, sp, &frame);
    assert_eq!(fault(&mut e, &[0x48, 0xcb], 13, &mut r), Upcall::Delivered);
    assert_eq!((r.rip, r.gpr[RSP]), (0x40_1234, sp + 16));
    // lretq to an LDT selector when there is no LDT: #GP(selector).
    let mut r = base();
    let frame: Vec<u8> = [0x40_1234u64, 0x1007]
        .iter()
        .flat_map(|w| w.to_le_bytes())
        .collect();
    e.write(0, sp, &frame);
    fault(&mut e, &[0x48, 0xcb], 13, &mut r);
    assert_eq!(bounced(&mut e, &r, true), (13, Some(0x1004)));
    // lcall through memory (m16:32, AMD's rule even with REX.W) to the flat
    // code selector: pushes CS and the return RIP in 4-byte slots (32-bit
    // operand size), jumps.
    let mut r = base();
    let ptr: Vec<u8> = 0x40_2000u32
        .to_le_bytes()
        .iter()
        .chain(0xe033u16.to_le_bytes().iter())
        .copied()
        .collect();
    e.write(0, SCRATCH, &ptr);
    r.gpr[RAX] = SCRATCH;
    assert_eq!(
        fault(&mut e, &[0x48, 0xff, 0x18], 13, &mut r),
        Upcall::Delivered
    );
    assert_eq!(r.rip, 0x40_2000);
    let pushed = e.read(0, r.gpr[RSP], 8);
    assert_eq!(
        &pushed[..4],
        &((CODE + 3) as u32).to_le_bytes(),
        "return RIP"
    );
    assert_eq!(&pushed[4..6], &0xe033u16.to_le_bytes(), "caller's CS");
}

fn pv(e: &mut Env) -> &mut crate::pvcpu::PvCpu {
    &mut e.hv.vcpu_mut(DomainId(0), VcpuId(0)).pv
}

#[test]
fn single_step_over_an_emulated_instruction_is_a_db_trap_with_bs() {
    let mut e = setup();
    pv(&mut e).iopl = 1;
    let mut r = base();
    r.rflags |= smpsim_cores::arch::flags::TF;
    fault(&mut e, &[0xe6, 0x80], 13, &mut r); // out 0x80, al
    assert_eq!(bounced(&mut e, &r, false), (1, None));
    let frame_rip = u64::from_le_bytes(e.read(0, r.gpr[RSP] + 16, 8).try_into().expect("8"));
    assert_eq!(
        frame_rip,
        CODE + 2,
        "a trap: the frame's RIP is past the out"
    );
    assert_eq!(pv(&mut e).dr[6], 0xffff_4ff0, "DR6.BS");
}

#[test]
fn emulated_out_meets_an_io_breakpoint_only_with_cr4_de() {
    let mut e = setup();
    pv(&mut e).iopl = 1;
    pv(&mut e).write_cr4(crate::pvcpu::CR4_DE);
    let io1 = 2 << 2 | 2 << 20 | 3 << 22 | 0x400; // G1, I/O, 4 bytes
    crate::debug::set_debugreg(pv(&mut e), 1, 0x84).expect("port");
    crate::debug::set_debugreg(pv(&mut e), 7, io1).expect("with CR4.DE");
    let mut r = base();
    fault(&mut e, &[0xe6, 0x80], 13, &mut r); // out 0x80, al: no match
    assert_eq!(r.rip, CODE + 2);
    fault(&mut e, &[0xe6, 0x86], 13, &mut r); // out 0x86, al
    assert_eq!(bounced(&mut e, &r, false), (1, None));
    assert_eq!(pv(&mut e).dr[6], 0xffff_0ff2, "B1");
    // Without CR4.DE the breakpoint stays in DR7 but does not fire.
    pv(&mut e).write_cr4(0);
    let mut r = base();
    fault(&mut e, &[0xe6, 0x86], 13, &mut r);
    assert_eq!(r.rip, CODE + 2);
    assert_eq!(pv(&mut e).dr[7], io1);
}

#[test]
fn mov_ss_sets_the_shadow_and_holds_its_data_breakpoint_hit() {
    let mut e = setup();
    install_gdt(&mut e);
    e.write(0, SCRATCH, &0xe02bu16.to_le_bytes());
    crate::debug::set_debugreg(pv(&mut e), 0, SCRATCH).expect("guest address");
    crate::debug::set_debugreg(pv(&mut e), 7, 3 | 3 << 16 | 3 << 18 | 0x700).expect("RW");
    let mut r = base();
    r.gpr[RBX] = SCRATCH;
    r.rflags |= smpsim_cores::arch::flags::TF;
    fault(&mut e, &[0x8e, 0x13], 13, &mut r); // mov ss, [rbx]
    assert_eq!(r.rip, CODE + 2, "emulated, nothing bounced yet");
    assert_eq!(pv(&mut e).sel.ss, 0xe02b);
    assert!(r.debug.shadow);
    assert_eq!(
        r.debug.pending,
        1 | 1 << 14,
        "B0 and BS wait for the next instruction"
    );
    assert_eq!(
        (r.debug.addr[0], r.debug.dr7 & 0xff),
        (SCRATCH, 3),
        "the core has DR0/DR7"
    );
}

#[test]
fn a_core_db_updates_dr6_and_bounces_with_rip_as_the_core_left_it() {
    let mut e = setup();
    let mut r = base();
    r.rip = CODE + 5;
    let space = e.hv.vcpu_space(DomainId(0), VcpuId(0));
    let mut m = crate::memory::PagedMemory {
        space: &space,
        store: &mut e.store,
    };
    let f = crate::emulate::CoreFault {
        vector: 1,
        addr: 1 << 14 | 4,
        error_code: None,
    };
    e.hv.guest_fault(DomainId(0), VcpuId(0), 1000, f, &mut r, &mut m);
    assert_eq!(bounced(&mut e, &r, false), (1, None));
    let frame_rip = u64::from_le_bytes(e.read(0, r.gpr[RSP] + 16, 8).try_into().expect("8"));
    assert_eq!(frame_rip, CODE + 5);
    assert_eq!(pv(&mut e).dr[6], 0xffff_4ff4, "BS and B2");
}

fn ts(e: &mut Env) -> bool {
    e.hv.vcpu_mut(DomainId(0), VcpuId(0)).pv.cr0_ts
}

#[test]
fn clts_lmsw_and_cr0_writes_are_the_cores_ts() {
    let mut e = setup();
    e.hv.vcpu_mut(DomainId(0), VcpuId(0)).pv.cr0_ts = true;
    // clts
    let mut r = base();
    r.fpu.ts = true;
    fault(&mut e, &[0x0f, 0x06], 13, &mut r);
    assert_eq!((ts(&mut e), r.fpu.ts, r.rip), (false, false, CODE + 2));
    // mov cr0, rax setting TS (the other bits as read)
    let mut r = base();
    r.gpr[RAX] = 0x8005_003b;
    fault(&mut e, &[0x0f, 0x22, 0xc0], 13, &mut r);
    assert_eq!((ts(&mut e), r.fpu.ts, r.rip), (true, true, CODE + 3));
    // ... and changing EM or MP with it: #GP(0), TS unchanged
    for bad in [0x8005_003f, 0x8005_0039] {
        let mut r = base();
        r.gpr[RAX] = bad;
        r.fpu.ts = true;
        fault(&mut e, &[0x0f, 0x22, 0xc0], 13, &mut r);
        assert_eq!(bounced(&mut e, &r, true), (13, Some(0)), "{bad:#x}");
        assert!(ts(&mut e) && r.fpu.ts);
    }
    // lmsw ax: only TS of the low four bits changes; PE cannot be cleared
    let mut r = base();
    r.gpr[RAX] = 0x0002; // PE clear, MP set, TS clear
    fault(&mut e, &[0x0f, 0x01, 0xf0], 13, &mut r);
    assert_eq!((ts(&mut e), r.fpu.ts, r.rip), (false, false, CODE + 3));
    let mut r = base();
    r.gpr[RAX] = 0x000b; // PE MP TS
    fault(&mut e, &[0x0f, 0x01, 0xf0], 13, &mut r);
    assert_eq!((ts(&mut e), r.fpu.ts), (true, true));
    let mut r = base();
    r.gpr[RAX] = 0x000f; // EM set: refused
    fault(&mut e, &[0x0f, 0x01, 0xf0], 13, &mut r);
    assert_eq!(bounced(&mut e, &r, true), (13, Some(0)));
    // smsw reads TS back
    let mut r = base();
    fault(&mut e, &[0x0f, 0x01, 0xe0], 13, &mut r);
    assert_eq!(r.gpr[RAX] & 0xffff, 0x003b);
}

#[test]
fn device_not_available_clears_ts_and_bounces() {
    let mut e = setup();
    e.hv.vcpu_mut(DomainId(0), VcpuId(0)).pv.cr0_ts = true;
    let mut r = base();
    r.fpu.ts = true;
    // addps xmm0, xmm1 raised #NM
    let up = fault(&mut e, &[0x0f, 0x58, 0xc1], 7, &mut r);
    assert_eq!(up, Upcall::Delivered);
    assert_eq!(bounced(&mut e, &r, false), (7, None));
    assert_eq!((ts(&mut e), r.fpu.ts), (false, false));
    // The frame's RIP is the instruction's (a fault: it re-executes).
    let frame_rip = u64::from_le_bytes(e.read(0, r.gpr[RSP] + 16, 8).try_into().expect("8"));
    assert_eq!(frame_rip, CODE);
    // #NM with the virtual TS clear cannot happen: Xen crashes the domain.
    let mut r = base();
    let up = fault(&mut e, &[0x0f, 0x58, 0xc1], 7, &mut r);
    assert_eq!(up, Upcall::Crashed);
    let sd = e.hv.shutdowns();
    assert!(
        sd[0].message.contains("#NM but vCR0.TS clear"),
        "{:?}",
        sd[0]
    );
}
