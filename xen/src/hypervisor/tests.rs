use super::*;
use crate::abi::{evtchnop, hypercall as nr, vcpuop};
use crate::memory::{GuestMemory, PagedMemory};
use crate::regs::GuestRegs;
use crate::testenv::*;
use smpsim_cores::arch::reg::{R11, RAX, RCX, RSP};
use smpsim_cores::ArchState;

fn raise(d: u16, port: u32, v: u32) -> Raise {
    Raise {
        domain: DomainId(d),
        port: Port(port),
        vcpu: VcpuId(v),
    }
}

fn upcall(e: &mut Env, d: u16, v: u32, regs: &mut ArchState) -> Upcall {
    let space = e.hv.vcpu_space(DomainId(d), VcpuId(v));
    let mut m = PagedMemory {
        space: &space,
        store: &mut e.store,
    };
    e.hv.upcall(DomainId(d), VcpuId(v), 50, regs, &mut m)
}

#[test]
fn upcall_then_iret_restores_the_interrupted_state() {
    let mut e = env(&[1]);
    let vi = e.shared_info_ma(0);
    let p = e.bind_ipi(0, 0);
    assert!(e.deliver(raise(0, p.0, 0)).is_empty());
    let mut r = regs(0x55, [1, 2, 3, 4, 5]);
    r.gpr[RCX] = 0xc1;
    r.gpr[R11] = 0x11;
    let orig = r.clone();
    assert_eq!(
        upcall(&mut e, 0, 0, &mut r),
        Upcall::NotDue,
        "masked at start"
    );
    e.with_mem(0, |m| m.write_u8(vi + 1, 0));
    assert_eq!(upcall(&mut e, 0, 0, &mut r), Upcall::NoCallback);
    e.call(0, 0, 0, nr::SET_CALLBACKS, [0x40_1200, 0, 0, 0, 0]);
    assert_eq!(upcall(&mut e, 0, 0, &mut r), Upcall::Delivered);
    assert_eq!(r.rip, 0x40_1200);
    assert_eq!(r.rsp(), 0x40_7f00 - 56);
    assert_eq!(e.ma_u8(0, vi + 1), 1, "events masked");
    assert_eq!(upcall(&mut e, 0, 0, &mut r), Upcall::NotDue);
    // Handler: pop rcx, r11; clear upcall_pending; push 0 (flags) and
    // enter slot 23, which pushes rcx, r11, rax.
    e.with_mem(0, |m| m.write_u8(vi, 0));
    let mut h = r;
    h.gpr[RCX] = e.with_mem(0, |m| m.read_virt_u64(h.rsp())).expect("frame");
    h.gpr[R11] = e
        .with_mem(0, |m| m.read_virt_u64(h.rsp() + 8))
        .expect("frame");
    h.gpr[RSP] += 16;
    h.gpr[RAX] = 0x55;
    for w in [0, h.gpr[RCX], h.gpr[R11], h.gpr[RAX]] {
        h.gpr[RSP] -= 8;
        let sp = h.rsp();
        e.with_mem(0, |m| m.write_virt_u64(sp, w)).expect("stack");
    }
    h.gpr[RAX] = nr::IRET;
    let o = e.call_regs(0, 0, 60, &mut h);
    assert_eq!(o.next, Next::Resume);
    assert_eq!(h, orig, "iret restored RIP, RSP, RFLAGS, RAX, RCX, R11");
    assert_eq!(e.ma_u8(0, vi + 1), 0, "mask = !IF of the saved RFLAGS");
    // A bad iret frame crashes the domain.
    let mut bad = regs(nr::IRET, [0; 5]);
    bad.gpr[RSP] = BAD;
    let o = e.call_regs(0, 0, 70, &mut bad);
    assert_eq!(o.next, Next::Shutdown);
    let rec = &e.hv.shutdowns()[0];
    assert_eq!((rec.reason, rec.cycle), (3, 70));
    assert!(rec.message.contains("iret"), "{}", rec.message);
}

#[test]
fn unmask_kicks_and_wakes_the_notified_vcpu() {
    let mut e = env(&[2]);
    e.start_vcpu(0, 1);
    let si = e.shared_info_ma(0);
    let p = e.bind_ipi(0, 1);
    e.with_mem(0, |m| m.test_and_set_bit(si + 2560, p.0));
    assert!(e.deliver(raise(0, p.0, 1)).is_empty());
    assert_eq!(e.ma_u8(0, si + 64), 0, "masked: no upcall_pending");
    let (_, o) = e.call(0, 1, 0, nr::SCHED_OP, [1, 0, 0, 0, 0]);
    assert_eq!(o.next, Next::Block);
    e.write(0, SCRATCH, &p.0.to_le_bytes());
    let (rc, o) = e.call(
        0,
        0,
        0,
        nr::EVENT_CHANNEL_OP,
        [evtchnop::UNMASK, SCRATCH, 0, 0, 0],
    );
    assert_eq!(rc, 0);
    assert_eq!(
        o.effects,
        vec![Effect::Wake {
            domain: DomainId(0),
            vcpu: VcpuId(1)
        }]
    );
    assert_eq!(e.ma_u8(0, si + 64), 1);
    assert_eq!(
        e.hv.domain(DomainId(0))
            .expect("d0")
            .vcpu(VcpuId(1))
            .expect("v1")
            .state,
        RunState::Runnable
    );
}

#[test]
fn register_vcpu_info_rules_and_vcpus_beyond_32() {
    let mut e = env(&[40]);
    let d = DomainId(0);
    let p2m5 = e.hv.domain(d).expect("d0").p2m()[20];
    let arg = |e: &mut Env, mfn: u64, off: u32| {
        let mut b = vec![0u8; 16];
        b[0..8].copy_from_slice(&mfn.to_le_bytes());
        b[8..12].copy_from_slice(&off.to_le_bytes());
        e.write(0, SCRATCH, &b);
    };
    let op = |cmd: u32, v: u32| [u64::from(cmd), u64::from(v), SCRATCH, 0, 0];
    // VCPU 35 cannot be initialised before it has a vcpu_info.
    assert_eq!(
        e.call(0, 0, 0, nr::VCPU_OP, op(vcpuop::INITIALISE, 35)).0,
        -22
    );
    arg(&mut e, p2m5.0, 0x44);
    assert_eq!(
        e.call(0, 0, 0, nr::VCPU_OP, op(vcpuop::REGISTER_VCPU_INFO, 35))
            .0,
        -22
    );
    arg(&mut e, p2m5.0, 4096 - 56);
    assert_eq!(
        e.call(0, 0, 0, nr::VCPU_OP, op(vcpuop::REGISTER_VCPU_INFO, 35))
            .0,
        -22
    );
    arg(&mut e, 3, 0x40);
    assert_eq!(
        e.call(0, 0, 0, nr::VCPU_OP, op(vcpuop::REGISTER_VCPU_INFO, 35))
            .0,
        -22,
        "frame not owned"
    );
    arg(&mut e, p2m5.0, 0x40);
    assert_eq!(
        e.call(0, 0, 0, nr::VCPU_OP, op(vcpuop::REGISTER_VCPU_INFO, 35))
            .0,
        0
    );
    assert_eq!(
        e.call(0, 0, 0, nr::VCPU_OP, op(vcpuop::REGISTER_VCPU_INFO, 35))
            .0,
        -16
    );
    let at = p2m5.addr(0x40).get();
    assert_eq!(e.ma_u8(0, at), 1, "upcall_pending");
    assert_eq!(e.ma_u8(0, at + 1), 1, "masked");
    assert_eq!(
        e.with_mem(0, |m| m.read_ma_u64(at + 8)),
        u64::MAX,
        "pending_sel"
    );
    assert_eq!(e.ma_u8(0, at + 32), 2, "time version");
    assert_eq!(
        e.with_mem(0, |m| m.read_ma_u64(at + 56)) as u32,
        0x8000_0000
    );
    // Raises for VCPU 35 now land there; VCPU 36 (none yet) gets pending only.
    let p = e.bind_ipi(0, 35);
    let q = e.bind_ipi(0, 36);
    e.with_mem(0, |m| m.write_ma_u64(at + 8, 0));
    assert!(e.deliver(raise(0, p.0, 35)).is_empty());
    assert_eq!(e.with_mem(0, |m| m.read_ma_u64(at + 8)), 1);
    assert!(e.deliver(raise(0, q.0, 36)).is_empty());
    let si = e.hv.domain(d).expect("d0").shared_info().addr(0).get();
    assert_eq!(e.with_mem(0, |m| m.read_ma_u64(si + 2048)), 0b110);
    // VCPU 3 copies its shared_info slot.
    e.with_mem(0, |m| m.write_u8(si + 3 * 64 + 1, 0));
    arg(&mut e, p2m5.0, 0x80);
    assert_eq!(
        e.call(0, 0, 0, nr::VCPU_OP, op(vcpuop::REGISTER_VCPU_INFO, 3))
            .0,
        0
    );
    assert_eq!(e.ma_u8(0, p2m5.addr(0x81).get()), 0, "mask copied");
    assert_eq!(
        e.ma_u8(0, p2m5.addr(0x80).get()),
        1,
        "spurious upcall_pending"
    );
}

#[test]
fn exceptions_bounce_or_crash() {
    let mut e = env(&[1, 1]);
    let mut t = vec![0u8; 32];
    t[0] = 14;
    t[1] = 4;
    t[8..16].copy_from_slice(&0x40_1400u64.to_le_bytes());
    e.write(0, SCRATCH, &t);
    assert_eq!(
        e.call(0, 0, 0, nr::SET_TRAP_TABLE, [SCRATCH, 0, 0, 0, 0]).0,
        0
    );
    let vi = e.shared_info_ma(0);
    e.with_mem(0, |m| m.write_u8(vi + 1, 0));
    let mut r = regs(0, [0; 5]);
    let space = e.hv.vcpu_space(DomainId(0), VcpuId(0));
    let mut m = PagedMemory {
        space: &space,
        store: &mut e.store,
    };
    let got = e.hv.exception(
        DomainId(0),
        VcpuId(0),
        9,
        14,
        Some(2),
        Some(0xdead),
        &mut r,
        &mut m,
    );
    assert_eq!(got, Upcall::Delivered);
    assert_eq!(r.rip, 0x40_1400);
    assert_eq!(m.read_virt_u64(r.rsp() + 16), Ok(2), "error code");
    assert_eq!(m.read_virt_u64(r.rsp() + 32), Ok(0xe030), "saved mask 0");
    assert_eq!(m.read_u8(vi + 1), 1, "trap flag 4 masks events");
    assert_eq!(m.read_ma_u64(vi + 16), 0xdead, "cr2");
    let got =
        e.hv.exception(DomainId(0), VcpuId(0), 9, 6, None, None, &mut r, &mut m);
    assert_eq!(got, Upcall::Crashed);
    let rec = &e.hv.shutdowns()[0];
    assert_eq!((rec.domain, rec.reason, rec.cycle), (DomainId(0), 3, 9));
    assert!(rec.message.contains("exception 6"), "{}", rec.message);
    assert!(!e.hv.all_shut_down(), "domain 1 still runs");
    assert!(e.hv.crash_domain(DomainId(1), "bad opcode".into(), 11));
    assert!(
        !e.hv.crash_domain(DomainId(1), "again".into(), 12),
        "first wins"
    );
    assert!(e.hv.all_shut_down());
    assert_eq!(e.hv.shutdowns()[1].message, "bad opcode");
}

#[test]
fn shutdown_flushes_the_partial_console_line() {
    let mut e = env(&[1]);
    e.write(0, SCRATCH, b"no newline");
    e.call(0, 0, 0, nr::CONSOLE_IO, [0, 10, SCRATCH, 0, 0]);
    assert!(e.hv.console_lines().is_empty());
    e.hv.crash_domain(DomainId(0), "x".into(), 1);
    assert_eq!(e.hv.console_lines()[0].formatted(), "(d0) no newline");
}

#[test]
fn group_shared_area_is_the_same_memory_in_both_domains() {
    let mut hv = Hypervisor::new(HypervisorConfig::new(HZ, Mfn(0x1000), 1 << 12));
    let mut store = crate::memory::SparseFrames::new();
    store.write(0x1000 * 4096, &[0xee; 8]);
    let area = hv.alloc_shared_area(2, &mut store).expect("frames");
    assert_eq!(area.frames, vec![Mfn(0x1000), Mfn(0x1001)]);
    let mut cfg = crate::builder::tests::test_config();
    cfg.shared = Some(area);
    let img = crate::builder::tests::test_image();
    let a = hv.create_domain(&img, &cfg, &mut store).expect("a");
    cfg.memory_bytes *= 2;
    let b = hv.create_domain(&img, &cfg, &mut store).expect("b");
    assert_eq!((a, b), (DomainId(0), DomainId(1)));
    let va = crate::builder::SHARED_AREA_VA;
    let sa = hv.vcpu_space(a, VcpuId(0));
    let sb = hv.vcpu_space(b, VcpuId(0));
    let mut buf = [1u8; 8];
    PagedMemory {
        space: &sb,
        store: &mut store,
    }
    .read_virt(va, &mut buf)
    .expect("mapped in b");
    assert_eq!(buf, [0; 8], "zeroed");
    PagedMemory {
        space: &sa,
        store: &mut store,
    }
    .write_virt(va + 4100, b"ring")
    .expect("mapped in a");
    let mut got = [0u8; 4];
    PagedMemory {
        space: &sb,
        store: &mut store,
    }
    .read_virt(va + 4100, &mut got)
    .expect("mapped in b");
    assert_eq!(&got, b"ring");
    let frame = |s: &crate::mmu::PvSpace, store: &mut crate::memory::SparseFrames| {
        s.translate_in(
            &mut crate::memory::StoreMa(store),
            0x40_0000,
            smpsim_cores::paging::AccessKind::Read,
        )
        .map(|t| t.frame)
    };
    assert_ne!(
        frame(&sa, &mut store),
        frame(&sb, &mut store),
        "private memory differs"
    );
    assert_eq!(hv.domain(b).expect("b").layout().shared_va, va);
}

#[test]
fn note_raised_and_counters() {
    let mut e = env(&[2]);
    e.start_vcpu(0, 1);
    let p = e.bind_ipi(0, 1);
    let (_, o) = e.call(0, 1, 0, nr::SCHED_OP, [1, 0, 0, 0, 0]);
    assert_eq!(o.next, Next::Block);
    let r = raise(0, p.0, 1);
    assert!(e
        .hv
        .note_raised(r, Raised::Marked { kick: false })
        .is_empty());
    assert_eq!(
        e.hv.note_raised(r, Raised::Marked { kick: true }),
        vec![VcpuId(1)]
    );
    assert!(e.hv.note_raised(r, Raised::AlreadyPending).is_empty());
    let c = e.hv.counters();
    assert_eq!((c.raises, c.raises_already_pending, c.wakes), (3, 1, 1));
    assert_eq!(
        c.hypercalls.get(&nr::VCPU_OP),
        Some(&3),
        "start_vcpu's calls"
    );
    assert_eq!(c.hypercalls.get(&nr::SCHED_OP), Some(&1));
}

#[test]
fn register_vcpu_info_kicks_a_blocked_vcpu() {
    let mut e = env(&[2]);
    e.start_vcpu(0, 1);
    let (_, o) = e.call(0, 1, 0, nr::SCHED_OP, [1, 0, 0, 0, 0]);
    assert_eq!(o.next, Next::Block);
    let mfn = e.hv.domain(DomainId(0)).expect("d0").p2m()[30];
    let mut b = vec![0u8; 16];
    b[0..8].copy_from_slice(&mfn.0.to_le_bytes());
    e.write(0, SCRATCH, &b);
    let arg = [u64::from(vcpuop::REGISTER_VCPU_INFO), 1, SCRATCH, 0, 0];
    let (rc, o) = e.call(0, 0, 0, nr::VCPU_OP, arg);
    assert_eq!(rc, 0);
    assert_eq!(
        o.effects,
        vec![Effect::Wake {
            domain: DomainId(0),
            vcpu: VcpuId(1)
        }]
    );
    assert_eq!(
        e.ma_u8(0, mfn.addr(1).get()),
        0,
        "mask copied from the cleared slot"
    );
}

#[test]
fn a_cloned_hypervisor_is_a_checkpoint() {
    let mut e = env(&[2]);
    let snap = e.hv.clone();
    assert_eq!(snap, e.hv);
    e.bind_ipi(0, 1);
    assert_ne!(snap, e.hv, "the binding changed the state");
    let mut again = snap.clone();
    let mut other = env(&[2]);
    other.hv = again.clone();
    other.bind_ipi(0, 1);
    assert_eq!(
        other.hv, e.hv,
        "same calls from the same state, same result"
    );
    again.crash_domain(DomainId(0), "x".into(), 1);
    assert_ne!(again, snap);
}
