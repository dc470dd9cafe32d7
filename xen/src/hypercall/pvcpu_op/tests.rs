//! The PV CPU hypercalls and guest user mode, refusals included.

use super::nr;
use crate::abi::hypercall as hc;
use crate::hypervisor::{Effect, Next};
use crate::ids::{DomainId, Mfn, VcpuId};
use crate::mmu::BasePtr;
use crate::testenv::*;
use smpsim_cores::arch::reg::{R11, RAX, RCX, RSP};

/// The core's #GP(0).
const GP: crate::emulate::CoreFault = crate::emulate::CoreFault {
    vector: 13,
    addr: 0,
    error_code: None,
};
const EPERM: i64 = -1;
const EFAULT: i64 = -14;
const EINVAL: i64 = -22;
const ENOSYS: i64 = -38;

fn scratch_mfn(e: &mut Env) -> Mfn {
    Mfn(e.translate(0, SCRATCH).expect("mapped") >> 12)
}

fn pv(e: &mut Env) -> &mut crate::pvcpu::PvCpu {
    &mut e.hv.vcpu_mut(DomainId(0), VcpuId(0)).pv
}

#[test]
fn set_gdt_validates_frames_and_descriptors() {
    let mut e = env(&[1]);
    let gdt = SCRATCH + 0x800;
    let list = SCRATCH;
    // Frame list at SCRATCH, GDT in the same frame from offset 0x800 is
    // not a frame start; use the scratch frame itself as the GDT.
    let mfn = scratch_mfn(&mut e);
    let descs: [u64; 3] = [0, 0x00af_9a00_0000_ffff, 0x00cf_f200_0000_ffff];
    let b: Vec<u8> = descs.iter().flat_map(|d| d.to_le_bytes()).collect();
    e.write(0, SCRATCH, &b);
    e.write(0, gdt, &mfn.0.to_le_bytes());
    assert_eq!(e.call(0, 0, 0, nr::SET_GDT, [gdt, 3, 0, 0, 0]).0, 0);
    let fixed = u64::from_le_bytes(e.read(0, SCRATCH + 8, 8).try_into().expect("8"));
    assert_eq!(fixed, 0x00af_fa00_0000_ffff, "DPL raised to 3 in place");
    assert_eq!(
        (pv(&mut e).gdt_entries, pv(&mut e).gdt_frames.clone()),
        (3, vec![mfn])
    );
    // Refusals: too many entries, a foreign frame, a TSS, an unreadable list.
    assert_eq!(e.call(0, 0, 0, nr::SET_GDT, [gdt, 7169, 0, 0, 0]).0, EINVAL);
    e.write(0, list + 0x900, &5u64.to_le_bytes());
    assert_eq!(
        e.call(0, 0, 0, nr::SET_GDT, [list + 0x900, 3, 0, 0, 0]).0,
        EINVAL
    );
    e.write(0, SCRATCH + 16, &0x0000_8900_0000_0067u64.to_le_bytes());
    assert_eq!(e.call(0, 0, 0, nr::SET_GDT, [gdt, 3, 0, 0, 0]).0, EINVAL);
    assert_eq!(e.call(0, 0, 0, nr::SET_GDT, [BAD, 3, 0, 0, 0]).0, EFAULT);
}

#[test]
fn update_descriptor_checks_owner_alignment_and_type() {
    let mut e = env(&[1]);
    let ma = scratch_mfn(&mut e).addr(0x40).get();
    let flat = 0x00cf_9200_0000_ffffu64;
    assert_eq!(
        e.call(0, 0, 0, nr::UPDATE_DESCRIPTOR, [ma, flat, 0, 0, 0])
            .0,
        0
    );
    let got = u64::from_le_bytes(e.read(0, SCRATCH + 0x40, 8).try_into().expect("8"));
    assert_eq!(got, 0x00cf_f200_0000_ffff);
    assert_eq!(
        e.call(0, 0, 0, nr::UPDATE_DESCRIPTOR, [ma + 4, flat, 0, 0, 0])
            .0,
        EINVAL
    );
    assert_eq!(
        e.call(0, 0, 0, nr::UPDATE_DESCRIPTOR, [0x5000, flat, 0, 0, 0])
            .0,
        EINVAL
    );
    let tss = 0x0000_8900_0000_0067;
    assert_eq!(
        e.call(0, 0, 0, nr::UPDATE_DESCRIPTOR, [ma, tss, 0, 0, 0]).0,
        EINVAL
    );
}

#[test]
fn stack_fpu_debugreg_vm_assist_and_physdev() {
    let mut e = env(&[1]);
    assert_eq!(
        e.call(0, 0, 0, nr::STACK_SWITCH, [0xe02b, 0x40_7000, 0, 0, 0])
            .0,
        0
    );
    assert_eq!(
        (pv(&mut e).kernel_ss, pv(&mut e).kernel_sp),
        (0xe02b, 0x40_7000)
    );
    assert_eq!(e.call(0, 0, 0, nr::FPU_TASKSWITCH, [1, 0, 0, 0, 0]).0, 0);
    assert!(pv(&mut e).cr0_ts);
    assert_eq!(e.call(0, 0, 0, nr::FPU_TASKSWITCH, [0, 0, 0, 0, 0]).0, 0);
    assert!(!pv(&mut e).cr0_ts);
    assert_eq!(
        e.call(0, 0, 0, nr::SET_DEBUGREG, [0, 0x40_1000, 0, 0, 0]).0,
        0
    );
    assert_eq!(
        e.call(0, 0, 0, nr::GET_DEBUGREG, [0, 0, 0, 0, 0]).0,
        0x40_1000
    );
    assert_eq!(e.call(0, 0, 0, nr::GET_DEBUGREG, [7, 0, 0, 0, 0]).0, 0x400);
    let enodev = -19;
    assert_eq!(e.call(0, 0, 0, nr::GET_DEBUGREG, [9, 0, 0, 0, 0]).0, enodev);
    assert_eq!(e.call(0, 0, 0, nr::SET_DEBUGREG, [8, 0, 0, 0, 0]).0, enodev);
    // DR4 aliases DR6 without CR4.DE; DR6's upper half is -EINVAL.
    assert_eq!(e.call(0, 0, 0, nr::SET_DEBUGREG, [4, 1, 0, 0, 0]).0, 0);
    assert_eq!(
        e.call(0, 0, 0, nr::GET_DEBUGREG, [6, 0, 0, 0, 0]).0,
        0xffff_0ff1
    );
    assert_eq!(
        e.call(0, 0, 0, nr::SET_DEBUGREG, [6, 1 << 32, 0, 0, 0]).0,
        EINVAL
    );
    let xen_va = 0xffff_8000_0000_0000;
    assert_eq!(
        e.call(0, 0, 0, nr::SET_DEBUGREG, [1, xen_va, 0, 0, 0]).0,
        EPERM
    );
    assert_eq!(
        e.call(0, 0, 0, nr::SET_DEBUGREG, [7, 1 << 13, 0, 0, 0]).0,
        EPERM
    );
    // vm_assist: recorded; unknown type -EINVAL; unknown cmd -ENOSYS.
    assert_eq!(e.call(0, 0, 0, hc::VM_ASSIST, [0, 4, 0, 0, 0]).0, 0);
    assert_eq!(e.hv.domain(DomainId(0)).expect("d").vm_assist, 1 << 4);
    assert_eq!(e.call(0, 0, 0, hc::VM_ASSIST, [1, 4, 0, 0, 0]).0, 0);
    assert_eq!(e.hv.domain(DomainId(0)).expect("d").vm_assist, 0);
    assert_eq!(e.call(0, 0, 0, hc::VM_ASSIST, [0, 6, 0, 0, 0]).0, EINVAL);
    assert_eq!(e.call(0, 0, 0, hc::VM_ASSIST, [5, 4, 0, 0, 0]).0, ENOSYS);
    // physdev_op set_iopl.
    e.write(0, SCRATCH, &3u32.to_le_bytes());
    assert_eq!(e.call(0, 0, 0, nr::PHYSDEV_OP, [6, SCRATCH, 0, 0, 0]).0, 0);
    assert_eq!(pv(&mut e).iopl, 3);
    e.write(0, SCRATCH, &4u32.to_le_bytes());
    assert_eq!(
        e.call(0, 0, 0, nr::PHYSDEV_OP, [6, SCRATCH, 0, 0, 0]).0,
        EINVAL
    );
    assert_eq!(e.call(0, 0, 0, nr::PHYSDEV_OP, [6, BAD, 0, 0, 0]).0, EFAULT);
    assert_eq!(
        e.call(0, 0, 0, nr::PHYSDEV_OP, [12, SCRATCH, 0, 0, 0]).0,
        ENOSYS
    );
}

#[test]
fn set_segment_base_updates_the_callers_bases() {
    let mut e = env(&[1]);
    let mut r = regs(nr::SET_SEGMENT_BASE, [0, 0x7000_0000, 0, 0, 0]);
    e.call_regs(0, 0, 0, &mut r);
    assert_eq!((r.gpr[RAX], r.fs_base), (0, 0x7000_0000));
    let mut r = regs(nr::SET_SEGMENT_BASE, [2, 0x8000_0000, 0, 0, 0]);
    e.call_regs(0, 0, 0, &mut r);
    assert_eq!(r.gs_base, 0x8000_0000);
    assert_eq!(
        e.call(0, 0, 0, nr::SET_SEGMENT_BASE, [1, 0x9000, 0, 0, 0])
            .0,
        0
    );
    assert_eq!(pv(&mut e).shadow_gs, 0x9000);
    let bad = 0x8000_0000_0000_0000;
    assert_eq!(
        e.call(0, 0, 0, nr::SET_SEGMENT_BASE, [0, bad, 0, 0, 0]).0,
        EINVAL
    );
    assert_eq!(
        e.call(0, 0, 0, nr::SET_SEGMENT_BASE, [9, 0, 0, 0, 0]).0,
        EINVAL
    );
    // A user GS selector that does not load becomes null; Xen's flat one loads.
    assert_eq!(
        e.call(0, 0, 0, nr::SET_SEGMENT_BASE, [3, 0x63, 0, 0, 0]).0,
        0
    );
    assert_eq!(pv(&mut e).sel.gs, 0);
    assert_eq!(
        e.call(0, 0, 0, nr::SET_SEGMENT_BASE, [3, 0xe02b, 0, 0, 0])
            .0,
        0
    );
    assert_eq!(pv(&mut e).sel.gs, 0xe02b);
}

#[test]
fn runstate_area_and_info() {
    let mut e = env(&[1]);
    e.write(0, SCRATCH, &(SCRATCH + 0x100).to_le_bytes());
    let (rc, _) = e.call(0, 0, 2000, hc::VCPU_OP, [5, 0, SCRATCH, 0, 0]);
    assert_eq!(rc, 0);
    assert_eq!(e.read_u32(0, SCRATCH + 0x100), 0, "running");
    let (rc, _) = e.call(0, 0, 4000, hc::VCPU_OP, [4, 0, SCRATCH + 0x200, 0, 0]);
    assert_eq!(rc, 0);
    let running = u64::from_le_bytes(e.read(0, SCRATCH + 0x210, 8).try_into().expect("8"));
    assert_eq!(running, 2000, "4000 cycles at 2 GHz");
    assert_eq!(e.call(0, 0, 0, hc::VCPU_OP, [4, 0, BAD, 0, 0]).0, EFAULT);
}

/// An iret frame at RSP (the stub's rax, r11, rcx, then flags, rip, cs,
/// rflags, rsp, ss).
fn iret_frame(e: &mut Env, rsp: u64, rip: u64, cs: u64, ss: u64) {
    let words = [7u64, 0x11, 0x22, 0, rip, cs, 0x202, 0x40_6000, ss];
    let b: Vec<u8> = words.iter().flat_map(|w| w.to_le_bytes()).collect();
    e.write(0, rsp, &b);
}

#[test]
fn iret_to_ring3_enters_user_mode_and_syscall_returns_to_the_kernel() {
    let mut e = env(&[1]);
    let (d, v) = (DomainId(0), VcpuId(0));
    // XTF's way: the kernel's own tables double as the user ones.
    let root = Some(Mfn(e.cr3(0) >> 12));
    let mut sm = crate::memory::StoreMa(&mut e.store);
    e.hv.new_baseptr(d, v, root, BasePtr::Kernel, &mut sm)
        .expect("ok");
    e.hv.new_baseptr(d, v, root, BasePtr::User, &mut sm)
        .expect("ok");
    e.hv.vcpu_mut(d, v).callbacks.syscall = 0x40_1800;
    e.hv.vcpu_mut(d, v).callbacks.syscall_masks = true;
    assert_eq!(
        e.call(0, 0, 0, nr::STACK_SWITCH, [0xe02b, 0x40_7800, 0, 0, 0])
            .0,
        0
    );
    pv(&mut e).shadow_gs = 0x5555;
    let mut r = regs(hc::IRET, [0; 5]);
    r.gs_base = 0x4444;
    iret_frame(&mut e, r.gpr[RSP], 0x40_1200, 0x23, 0x2b);
    let o = e.call_regs(0, 0, 0, &mut r);
    assert_eq!(o.next, Next::Resume);
    assert_eq!(o.effects, vec![Effect::NewRoot { domain: d, vcpu: v }]);
    assert!(e.hv.in_user_mode(d, v));
    assert_eq!(
        (r.rip, r.gs_base, r.gpr[RAX]),
        (0x40_1200, 0x5555, 7),
        "GS swapped"
    );
    assert_eq!(pv(&mut e).sel.cs, 0x23);
    // SYSCALL from user mode: RIP past it, RCX/R11 set as the instruction does.
    r.rip = 0x40_1210;
    r.gpr[RAX] = 39;
    let o = e.call_regs(0, 0, 0, &mut r);
    assert_eq!(o.effects, vec![Effect::NewRoot { domain: d, vcpu: v }]);
    assert!(!e.hv.in_user_mode(d, v));
    assert_eq!(r.rip, 0x40_1800, "the syscall callback");
    assert_eq!((r.gpr[RCX], r.gpr[R11]), (0x40_1210, 0x202));
    assert_eq!(r.gs_base, 0x4444, "kernel GS back");
    let frame = e.read(0, r.gpr[RSP], 56);
    let w = |i: usize| u64::from_le_bytes(frame[8 * i..8 * i + 8].try_into().expect("8"));
    assert!(r.gpr[RSP] < 0x40_7800, "on the kernel stack");
    assert_eq!(
        (w(2), w(3) & 0xffff, w(5), w(6)),
        (0x40_1210, 0x23, 0x40_6000, 0x2b)
    );
    assert_eq!(r.gpr[RAX], 39, "no hypercall was made");
    assert_eq!(e.hv.counters().hypercalls.get(&39), None);
}

#[test]
fn iret_to_ring3_without_user_page_tables_crashes() {
    let mut e = env(&[1]);
    let mut r = regs(hc::IRET, [0; 5]);
    iret_frame(&mut e, r.gpr[RSP], 0x40_1200, 0x23, 0x2b);
    let o = e.call_regs(0, 0, 0, &mut r);
    assert_eq!(o.next, Next::Shutdown);
    let rec = e.hv.shutdowns().first().expect("crashed");
    assert!(rec.message.contains("user page tables"), "{}", rec.message);
}

#[test]
fn initialise_takes_the_pv_cpu_context_and_refuses_a_bad_gdt() {
    use crate::abi::vcpuop;
    let mut e = env(&[2]);
    let mut c = vec![0u8; 5168];
    c[520 + 128..520 + 136].copy_from_slice(&0x40_1100u64.to_le_bytes());
    c[4968..4970].copy_from_slice(&0xe02bu16.to_le_bytes());
    c[4976..4984].copy_from_slice(&0x40_7000u64.to_le_bytes());
    c[5160..5168].copy_from_slice(&0x7777u64.to_le_bytes());
    // One GDT entry in a frame the domain does not own.
    c[4832..4840].copy_from_slice(&5u64.to_le_bytes());
    c[4960..4968].copy_from_slice(&1u64.to_le_bytes());
    e.write(0, SCRATCH, &c);
    let init = [u64::from(vcpuop::INITIALISE), 1, SCRATCH, 0, 0];
    assert_eq!(e.call(0, 0, 0, hc::VCPU_OP, init).0, EINVAL);
    c[4960..4968].copy_from_slice(&0u64.to_le_bytes());
    // ctrlreg[3]: a real L4 (the domain's own); 0 would be refused.
    c[4984 + 24..4984 + 32].copy_from_slice(&e.cr3(0).to_le_bytes());
    e.write(0, SCRATCH, &c);
    assert_eq!(e.call(0, 0, 0, hc::VCPU_OP, init).0, 0);
    let p = &e.hv.vcpu_mut(DomainId(0), VcpuId(1)).pv;
    assert_eq!(
        (p.kernel_ss, p.kernel_sp, p.shadow_gs),
        (0xe02b, 0x40_7000, 0x7777)
    );
}

#[test]
fn architectural_iopl_comes_from_iret_and_shows_in_bounce_frames() {
    let mut e = env(&[1]);
    let (d, v) = (DomainId(0), VcpuId(0));
    assert_eq!(e.call(0, 0, 0, hc::VM_ASSIST, [0, 4, 0, 0, 0]).0, 0);
    let mut r = regs(hc::IRET, [0; 5]);
    let words = [0u64, 0, 0, 0, 0x40_1200, 0xe030, 0x3202, 0x40_6000, 0xe02b];
    let b: Vec<u8> = words.iter().flat_map(|w| w.to_le_bytes()).collect();
    e.write(0, r.gpr[RSP], &b);
    e.call_regs(0, 0, 0, &mut r);
    assert_eq!(pv(&mut e).iopl, 3);
    assert_eq!(r.rflags & (3 << 12), 0, "the real IOPL stays 0");
    e.hv.vcpu_mut(d, v).traps[6].address = 0x40_1400;
    let space = e.hv.vcpu_space(d, v);
    let mut m = crate::memory::PagedMemory {
        space: &space,
        store: &mut e.store,
    };
    e.hv.exception(d, v, 0, 6, None, None, &mut r, &mut m);
    let rflags = u64::from_le_bytes(e.read(0, r.gpr[RSP] + 32, 8).try_into().expect("8"));
    assert_eq!(rflags & (3 << 12), 3 << 12, "virtual IOPL in the frame");
}

#[test]
fn user_mode_event_upcall_and_int_n_enter_the_kernel_stack() {
    let mut e = env(&[1]);
    let (d, v) = (DomainId(0), VcpuId(0));
    let root = Some(Mfn(e.cr3(0) >> 12));
    let mut sm = crate::memory::StoreMa(&mut e.store);
    e.hv.new_baseptr(d, v, root, BasePtr::User, &mut sm)
        .expect("the kernel's L4 doubles as the user one");
    assert_eq!(
        e.call(0, 0, 0, nr::STACK_SWITCH, [0xe02b, 0x40_7800, 0, 0, 0])
            .0,
        0
    );
    let vc = e.hv.vcpu_mut(d, v);
    vc.traps[0x80].address = 0x40_1500;
    vc.traps[0x81] = crate::vcpu::TrapEntry {
        flags: 3,
        cs: 0xe033,
        address: 0x40_1600,
    };
    vc.traps[13].address = 0x40_1700;
    vc.callbacks.event = 0x40_1900;
    let enter_user = |e: &mut Env| {
        let mut r = regs(hc::IRET, [0; 5]);
        iret_frame(e, r.gpr[RSP], 0x40_1200, 0x23, 0x2b);
        e.call_regs(0, 0, 0, &mut r);
        assert!(e.hv.in_user_mode(d, v));
        r
    };
    // int 0x80 (DPL 0) from user mode: #GP(0x80*8+2) on the kernel stack.
    let mut r = enter_user(&mut e);
    e.write(0, 0x40_1200, &[0xcd, 0x80]);
    let space = e.hv.vcpu_space(d, v);
    let mut m = crate::memory::PagedMemory {
        space: &space,
        store: &mut e.store,
    };
    e.hv.guest_fault(d, v, 0, GP, &mut r, &mut m);
    assert_eq!(r.rip, 0x40_1700);
    assert!(!e.hv.in_user_mode(d, v));
    let ec = u64::from_le_bytes(e.read(0, r.gpr[RSP] + 16, 8).try_into().expect("8"));
    assert_eq!(ec, 0x80 * 8 + 2);
    assert_eq!(e.hv.take_deferred_effects().len(), 1, "NewRoot");
    // int 0x81 (DPL 3) from user mode: its handler, RIP past the int.
    let mut r = enter_user(&mut e);
    e.write(0, 0x40_1200, &[0xcd, 0x81]);
    let mut m = crate::memory::PagedMemory {
        space: &space,
        store: &mut e.store,
    };
    e.hv.guest_fault(d, v, 0, GP, &mut r, &mut m);
    assert_eq!(r.rip, 0x40_1600);
    let ret = u64::from_le_bytes(e.read(0, r.gpr[RSP] + 16, 8).try_into().expect("8"));
    assert_eq!(ret, 0x40_1202);
    // An event upcall in user mode.
    let mut r = enter_user(&mut e);
    let vi =
        e.hv.domain(d)
            .expect("d")
            .event_layout(v)
            .expect("vcpu_info")
            .vcpu_info;
    let mut m = crate::memory::PagedMemory {
        space: &space,
        store: &mut e.store,
    };
    use crate::event_2l::EventMemory;
    m.write_u8(vi, 1);
    m.write_u8(vi + 1, 0);
    let up = e.hv.upcall(d, v, 0, &mut r, &mut m);
    assert_eq!(up, crate::hypervisor::Upcall::Delivered);
    assert_eq!(r.rip, 0x40_1900);
    assert!(!e.hv.in_user_mode(d, v));
    assert!(r.gpr[RSP] < 0x40_7800 && r.gpr[RSP] >= 0x40_7800 - 64);
}

/// XTF's PV64 start of day and `exec_user` round trip, with its
/// selectors (`__KERN_CS` 0xe030, `__KERN_DS` 0xe028, `__USER_CS`
/// 0xe033, `__USER_DS` 0xe02b) and its all-zero 15-entry GDT.
#[test]
fn xtf_style_traps_gdt_user_mode_round_trip() {
    let mut e = env(&[1]);
    let (d, v) = (DomainId(0), VcpuId(0));
    // set_trap_table: #GP (DPL 0) and RET2KERN 0x20 (DPL 3, mask events).
    let mut table = Vec::new();
    for (vec, flags, addr) in [(13u8, 4u8, 0x40_1700u64), (0x20, 3 | 4, 0x40_1a00)] {
        let mut t = [0u8; 16];
        t[0] = vec;
        t[1] = flags;
        t[2..4].copy_from_slice(&0xe030u16.to_le_bytes());
        t[8..16].copy_from_slice(&addr.to_le_bytes());
        table.extend_from_slice(&t);
    }
    table.extend_from_slice(&[0; 16]);
    e.write(0, SCRATCH + 0x400, &table);
    assert_eq!(
        e.call(0, 0, 0, hc::SET_TRAP_TABLE, [SCRATCH + 0x400, 0, 0, 0, 0])
            .0,
        0
    );
    // set_gdt over a zeroed frame (the image's last page).
    let gdt_va = 0x40_0000 + 15 * 4096;
    e.write(0, gdt_va, &[0u8; 120]);
    let gdt_mfn = Mfn(e.translate(0, gdt_va).expect("mapped") >> 12);
    e.write(0, SCRATCH, &gdt_mfn.0.to_le_bytes());
    assert_eq!(e.call(0, 0, 0, nr::SET_GDT, [SCRATCH, 15, 0, 0, 0]).0, 0);
    assert_eq!(
        e.call(0, 0, 0, nr::STACK_SWITCH, [0xe028, 0x40_7800, 0, 0, 0])
            .0,
        0
    );
    assert_eq!(pv(&mut e).kernel_ss, 0xe02b, "RPL raised");
    // write_ds(__USER_DS): emulated; a guest selector into the zero GDT: #GP.
    let code = 0x40_1200;
    let run = |e: &mut Env, bytes: &[u8], r: &mut smpsim_cores::ArchState| {
        e.write(0, code, bytes);
        r.rip = code;
        let space = e.hv.vcpu_space(d, v);
        let mut m = crate::memory::PagedMemory {
            space: &space,
            store: &mut e.store,
        };
        e.hv.guest_fault(d, v, 0, GP, r, &mut m)
    };
    let mut r = regs(0, [0; 5]);
    r.gpr[RAX] = 0xe02b;
    run(&mut e, &[0x8e, 0xd8], &mut r);
    assert_eq!((r.rip, pv(&mut e).sel.ds), (code + 2, 0xe02b));
    let mut r = regs(0, [0; 5]);
    r.gpr[RAX] = 0x33;
    run(&mut e, &[0x8e, 0xd8], &mut r);
    assert_eq!(r.rip, 0x40_1700, "#GP(0x30) to the guest's handler");
    // exec_user: MMUEXT_NEW_USER_BASEPTR, then iret to __USER_CS.
    let root = Some(Mfn(e.cr3(0) >> 12));
    let mut sm = crate::memory::StoreMa(&mut e.store);
    e.hv.new_baseptr(d, v, root, BasePtr::User, &mut sm)
        .expect("the kernel's L4 doubles as the user one");
    let mut r = regs(hc::IRET, [0; 5]);
    iret_frame(&mut e, r.gpr[RSP], code, 0xe033, 0xe02b);
    e.call_regs(0, 0, 0, &mut r);
    assert!(e.hv.in_user_mode(d, v));
    // int $0x20 from user: the kernel's handler, on the kernel stack,
    // events masked by the trap's flag.
    let mut m_before = 0;
    if let Some(l) = e.hv.domain(d).expect("d").event_layout(v) {
        m_before = e.ma_u8(0, l.vcpu_info + 1);
    }
    assert_eq!(m_before, 0);
    run(&mut e, &[0xcd, 0x20], &mut r);
    assert_eq!(r.rip, 0x40_1a00);
    assert!(!e.hv.in_user_mode(d, v));
    let l =
        e.hv.domain(d)
            .expect("d")
            .event_layout(v)
            .expect("vcpu_info");
    assert_eq!(e.ma_u8(0, l.vcpu_info + 1), 1, "masked");
    let frame = e.read(0, r.gpr[RSP], 56);
    let w = |i: usize| u64::from_le_bytes(frame[8 * i..8 * i + 8].try_into().expect("8"));
    assert_eq!((w(2), w(3) & 0xffff, w(6)), (code + 2, 0xe033, 0xe02b));
    assert!(r.gpr[RSP] < 0x40_7800);
}

#[test]
fn runstate_charges_blocked_time_until_the_wake_up_upcall() {
    let mut e = env(&[1]);
    let (d, v) = (DomainId(0), VcpuId(0));
    let (_, o) = e.call(
        0,
        0,
        2000,
        hc::SCHED_OP,
        [crate::abi::sched::BLOCK, 0, 0, 0, 0],
    );
    assert_eq!(o.next, Next::Block);
    assert!(e.hv.vcpu_mut(d, v).wake());
    let space = e.hv.vcpu_space(d, v);
    let mut r = regs(0, [0; 5]);
    let mut m = crate::memory::PagedMemory {
        space: &space,
        store: &mut e.store,
    };
    e.hv.upcall(d, v, 6000, &mut r, &mut m);
    let (rc, _) = e.call(0, 0, 8000, hc::VCPU_OP, [4, 0, SCRATCH, 0, 0]);
    assert_eq!(rc, 0);
    let b = e.read(0, SCRATCH, 48);
    let t = |i: usize| u64::from_le_bytes(b[16 + 8 * i..24 + 8 * i].try_into().expect("8"));
    assert_eq!(
        (t(0), t(2), t(3)),
        (2000, 2000, 0),
        "running, blocked, offline ns"
    );
}
