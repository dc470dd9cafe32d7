use crate::abi::{evtchnop, hypercall as nr, sched, vcpuop, DOMID_SELF};
use crate::evtchn::Raise;
use crate::hypervisor::{Effect, Next};
use crate::ids::{DomainId, Port, VcpuId};
use crate::regs::GuestRegs;
use crate::testenv::*;

const EFAULT: i64 = -14;
const EINVAL: i64 = -22;
const ENOSYS: i64 = -38;

fn evtchn(e: &mut Env, d: u16, v: u32, cmd: u64, arg: &[u8]) -> (i64, Vec<Effect>) {
    e.write(d, SCRATCH, arg);
    let (rc, o) = e.call(d, v, 0, nr::EVENT_CHANNEL_OP, [cmd, SCRATCH, 0, 0, 0]);
    assert_eq!(o.next, Next::Resume);
    (rc, o.effects)
}

fn le32(words: &[u32]) -> Vec<u8> {
    words.iter().flat_map(|w| w.to_le_bytes()).collect()
}

#[test]
fn console_write_lines_and_errors() {
    let mut e = env(&[1]);
    e.write(0, SCRATCH, b"hello\nwor");
    let (rc, o) = e.call(0, 0, 0, nr::CONSOLE_IO, [0, 9, SCRATCH, 0, 0]);
    assert_eq!((rc, o.next), (0, Next::Resume));
    let lines: Vec<String> =
        e.hv.take_new_console_lines()
            .iter()
            .map(|l| l.formatted())
            .collect();
    assert_eq!(lines, vec!["(d0) hello".to_string()]);
    assert_eq!(e.call(0, 0, 0, nr::CONSOLE_IO, [0, 4, BAD, 0, 0]).0, EFAULT);
    assert_eq!(e.call(0, 0, 0, nr::CONSOLE_IO, [1, 4, SCRATCH, 0, 0]).0, -1);
    assert_eq!(
        e.call(0, 0, 0, nr::CONSOLE_IO, [7, 4, SCRATCH, 0, 0]).0,
        ENOSYS
    );
    // The upper half of `cmd` (a C int) is ignored.
    e.write(0, SCRATCH, b"ld\n");
    let (rc, _) = e.call(0, 0, 0, nr::CONSOLE_IO, [1 << 32, 3, SCRATCH, 0, 0]);
    assert_eq!(rc, 0);
    assert_eq!(e.hv.take_new_console_lines()[0].text, "world");
    assert!(e.hv.take_new_console_lines().is_empty());
}

#[test]
fn version_features_and_unknown_calls() {
    let mut e = env(&[1]);
    assert_eq!(
        e.call(0, 0, 0, nr::XEN_VERSION, [0, 0, 0, 0, 0]).0,
        0x4_0013
    );
    assert_eq!(e.call(0, 0, 0, nr::XEN_VERSION, [7, 0, 0, 0, 0]).0, 4096);
    e.write(0, SCRATCH, &le32(&[0, 0xffff_ffff]));
    assert_eq!(e.call(0, 0, 0, nr::XEN_VERSION, [6, SCRATCH, 0, 0, 0]).0, 0);
    assert_eq!(e.read_u32(0, SCRATCH + 4), 0, "no XENFEAT bits");
    e.write(0, SCRATCH, &le32(&[1]));
    assert_eq!(
        e.call(0, 0, 0, nr::XEN_VERSION, [6, SCRATCH, 0, 0, 0]).0,
        EINVAL
    );
    assert_eq!(e.call(0, 0, 0, nr::XEN_VERSION, [1, SCRATCH, 0, 0, 0]).0, 0);
    assert_eq!(&e.read(0, SCRATCH, 10), b".0-smpsim\0");
    assert_eq!(
        e.call(0, 0, 0, nr::XEN_VERSION, [1, BAD, 0, 0, 0]).0,
        EFAULT
    );
    assert_eq!(e.call(0, 0, 0, nr::XEN_VERSION, [5, SCRATCH, 0, 0, 0]).0, 0);
    assert_eq!(
        e.read(0, SCRATCH, 8),
        0xFFFF_8000_0000_0000u64.to_le_bytes()
    );
    assert_eq!(e.call(0, 0, 0, nr::XEN_VERSION, [99, 0, 0, 0, 0]).0, ENOSYS);
    assert_eq!(
        e.call(0, 0, 0, 47, [0; 5]).0,
        ENOSYS,
        "47 is not a hypercall"
    );
    assert_eq!(e.call(0, 0, 0, 200, [0; 5]).0, ENOSYS);
    assert_eq!(e.call(0, 0, 0, nr::VM_ASSIST, [0, 2, 0, 0, 0]).0, 0);
    assert_eq!(e.call(0, 0, 0, nr::VM_ASSIST, [0, 9, 0, 0, 0]).0, EINVAL);
    assert_eq!(e.call(0, 0, 0, nr::VM_ASSIST, [2, 2, 0, 0, 0]).0, ENOSYS);
}

#[test]
fn ipi_bind_send_status_close() {
    let mut e = env(&[2]);
    let (rc, _) = evtchn(&mut e, 0, 0, evtchnop::BIND_IPI, &le32(&[1, 0]));
    assert_eq!(rc, 0);
    assert_eq!(e.read_u32(0, SCRATCH + 4), 1, "port OUT");
    let (rc, fx) = evtchn(&mut e, 0, 0, evtchnop::SEND, &le32(&[1]));
    assert_eq!(rc, 0);
    assert_eq!(
        fx,
        vec![Effect::Raise(Raise {
            domain: DomainId(0),
            port: Port(1),
            vcpu: VcpuId(1)
        })]
    );
    let (rc, _) = evtchn(
        &mut e,
        0,
        0,
        evtchnop::STATUS,
        &le32(&[0x7ff0, 1, 9, 9, 9, 9]),
    );
    assert_eq!(rc, 0);
    assert_eq!(
        e.read(0, SCRATCH + 8, 16),
        le32(&[5, 1, 0, 0]),
        "IPI, vcpu 1"
    );
    let (rc, _) = evtchn(&mut e, 0, 0, evtchnop::BIND_VIRQ, &le32(&[0, 1, 0]));
    assert_eq!((rc, e.read_u32(0, SCRATCH + 8)), (0, 2));
    let (rc, _) = evtchn(&mut e, 0, 0, evtchnop::BIND_VIRQ, &le32(&[0, 1, 0]));
    assert_eq!(rc, -17, "EEXIST");
    assert_eq!(
        evtchn(&mut e, 0, 0, evtchnop::BIND_VCPU, &le32(&[1, 0])).0,
        EINVAL
    );
    assert_eq!(evtchn(&mut e, 0, 0, evtchnop::CLOSE, &le32(&[1])).0, 0);
    assert_eq!(evtchn(&mut e, 0, 0, evtchnop::SEND, &le32(&[1])).0, EINVAL);
    assert_eq!(
        evtchn(&mut e, 0, 0, evtchnop::BIND_IPI, &le32(&[2, 0])).0,
        -2
    );
    assert_eq!(
        evtchn(&mut e, 0, 0, 14, &le32(&[0])).0,
        ENOSYS,
        "reset_cont"
    );
    let (rc, _) = e.call(
        0,
        0,
        0,
        nr::EVENT_CHANNEL_OP,
        [evtchnop::SEND, BAD, 0, 0, 0],
    );
    assert_eq!(rc, EFAULT);
}

#[test]
fn interdomain_channel_between_two_domains() {
    let mut e = env(&[1, 2]);
    // Domain 1 offers a port to domain 0.
    let mut a = vec![0u8; 8];
    a[0..2].copy_from_slice(&DOMID_SELF.to_le_bytes());
    a[2..4].copy_from_slice(&0u16.to_le_bytes());
    assert_eq!(evtchn(&mut e, 1, 0, evtchnop::ALLOC_UNBOUND, &a).0, 0);
    let p1 = e.read_u32(1, SCRATCH + 4);
    assert_eq!(p1, 1);
    // Domain 1 routes it to its VCPU 1.
    assert_eq!(
        evtchn(&mut e, 1, 0, evtchnop::BIND_VCPU, &le32(&[p1, 1])).0,
        0
    );
    // Domain 0 binds to it: its new local port is pending at once.
    let mut b = vec![0u8; 12];
    b[0..2].copy_from_slice(&1u16.to_le_bytes());
    b[4..8].copy_from_slice(&p1.to_le_bytes());
    let (rc, fx) = evtchn(&mut e, 0, 0, evtchnop::BIND_INTERDOMAIN, &b);
    assert_eq!(rc, 0);
    let p0 = e.read_u32(0, SCRATCH + 8);
    assert_eq!(p0, 1);
    let r0 = Raise {
        domain: DomainId(0),
        port: Port(p0),
        vcpu: VcpuId(0),
    };
    assert_eq!(fx, vec![Effect::Raise(r0)]);
    let (_, fx) = evtchn(&mut e, 0, 0, evtchnop::SEND, &le32(&[p0]));
    let r1 = Raise {
        domain: DomainId(1),
        port: Port(p1),
        vcpu: VcpuId(1),
    };
    assert_eq!(fx, vec![Effect::Raise(r1)]);
    let (_, fx) = evtchn(&mut e, 1, 1, evtchnop::SEND, &le32(&[p1]));
    assert_eq!(fx, vec![Effect::Raise(r0)]);
    // Deliver both: each lands in its own domain's shared_info.
    for r in [r0, r1] {
        let d = r.domain.0;
        let _ = d;
        assert!(e.deliver(r).is_empty(), "nobody sleeps");
    }
    let si0 = e.shared_info_ma(0);
    let si1 = e.shared_info_ma(1);
    assert_eq!(e.ma_u8(0, si0 + 2048), 0b10, "d0 port 1 pending");
    assert_eq!(e.ma_u8(1, si1 + 2048), 0b10, "d1 port 1 pending");
    assert_eq!(e.ma_u8(0, si0), 1, "d0 v0 upcall_pending");
    assert_eq!(e.ma_u8(1, si1), 0, "d1 v0 untouched");
    assert_eq!(e.ma_u8(1, si1 + 64), 1, "d1 v1 upcall_pending");
    assert_eq!(e.ma_u8(1, si1 + 64 + 8), 1, "d1 v1 pending_sel bit 0");
}

#[test]
fn sched_block_poll_shutdown() {
    let mut e = env(&[2]);
    e.start_vcpu(0, 1);
    let vi0 = e.shared_info_ma(0);
    // Block with nothing pending: sleeps, events enabled.
    let (rc, o) = e.call(0, 0, 0, nr::SCHED_OP, [sched::BLOCK, 0, 0, 0, 0]);
    assert_eq!((rc, o.next), (0, Next::Block));
    assert_eq!(e.ma_u8(0, vi0 + 1), 0, "upcall_mask cleared");
    let p = e.bind_ipi(0, 0);
    let woken = e.deliver(Raise {
        domain: DomainId(0),
        port: p,
        vcpu: VcpuId(0),
    });
    assert_eq!(woken, vec![VcpuId(0)]);
    // Block with an upcall due returns at once.
    let (rc, o) = e.call(0, 0, 0, nr::SCHED_OP, [sched::BLOCK, 0, 0, 0, 0]);
    assert_eq!((rc, o.next), (0, Next::Resume));
    // Poll: too many ports, bad port, already pending.
    let mut poll = vec![0u8; 24];
    poll[0..8].copy_from_slice(&(SCRATCH + 64).to_le_bytes());
    poll[8..12].copy_from_slice(&129u32.to_le_bytes());
    e.write(0, SCRATCH, &poll);
    e.write(0, SCRATCH + 64, &le32(&[p.0]));
    let arg = [sched::POLL, SCRATCH, 0, 0, 0];
    assert_eq!(e.call(0, 1, 0, nr::SCHED_OP, arg).0, EINVAL);
    poll[8..12].copy_from_slice(&1u32.to_le_bytes());
    e.write(0, SCRATCH, &poll);
    let (rc, o) = e.call(0, 1, 0, nr::SCHED_OP, arg);
    assert_eq!((rc, o.next), (0, Next::Resume), "port 1 already pending");
    e.write(0, SCRATCH + 64, &le32(&[4096]));
    assert_eq!(e.call(0, 1, 0, nr::SCHED_OP, arg).0, EINVAL);
    // Poll a fresh masked port with a timeout: only the poller wakes.
    let q = e.bind_ipi(0, 0);
    e.write(0, SCRATCH + 64, &le32(&[q.0]));
    poll[16..24].copy_from_slice(&5_000u64.to_le_bytes());
    e.write(0, SCRATCH, &poll);
    let (rc, o) = e.call(0, 1, 0, nr::SCHED_OP, arg);
    assert_eq!((rc, o.next), (0, Next::Poll));
    assert_eq!(e.hv.next_timer_cycle(DomainId(0), VcpuId(1)), Some(10_000));
    let woken = e.deliver(Raise {
        domain: DomainId(0),
        port: q,
        vcpu: VcpuId(0),
    });
    assert_eq!(woken, vec![VcpuId(1)], "poller woken, v0 not kicked again");
    // Poll again; this time it times out.
    let r = Raise {
        domain: DomainId(0),
        port: Port(q.0 + 1),
        vcpu: VcpuId(0),
    };
    e.write(0, SCRATCH + 64, &le32(&[r.port.0]));
    let (_, o) = e.call(0, 1, 0, nr::SCHED_OP, arg);
    assert_eq!(o.next, Next::Poll);
    assert!(e.hv.run_timers(DomainId(0), VcpuId(1), 9_999).is_empty());
    let fx = e.hv.run_timers(DomainId(0), VcpuId(1), 10_000);
    assert_eq!(
        fx,
        vec![Effect::Wake {
            domain: DomainId(0),
            vcpu: VcpuId(1)
        }]
    );
    // Shutdown: bad reason, bad pointer, then poweroff.
    e.write(0, SCRATCH, &le32(&[6]));
    assert_eq!(
        e.call(0, 0, 0, nr::SCHED_OP, [2, SCRATCH, 0, 0, 0]).0,
        EINVAL
    );
    assert_eq!(e.call(0, 0, 0, nr::SCHED_OP, [2, BAD, 0, 0, 0]).0, EFAULT);
    e.write(0, SCRATCH, &le32(&[0]));
    let (_, o) = e.call(0, 0, 777, nr::SCHED_OP, [2, SCRATCH, 0, 0, 0]);
    assert_eq!(o.next, Next::Shutdown);
    let rec = &e.hv.shutdowns()[0];
    assert_eq!((rec.domain, rec.reason, rec.cycle), (DomainId(0), 0, 777));
    assert!(rec.success());
    assert_eq!(rec.message, "SCHEDOP_shutdown(poweroff) from v0");
    assert!(e.hv.all_shut_down());
    let (_, o) = e.call(0, 1, 800, nr::XEN_VERSION, [0; 5]);
    assert_eq!(o.next, Next::Shutdown, "a dead domain's calls do nothing");
    let (_, o) = e.call(0, 0, 0, nr::SCHED_OP, [sched::YIELD, 0, 0, 0, 0]);
    assert_eq!(o.next, Next::Shutdown);
}

#[test]
fn yield_and_vm_assist_resume() {
    let mut e = env(&[1]);
    let (rc, o) = e.call(0, 0, 0, nr::SCHED_OP, [sched::YIELD, 0, 0, 0, 0]);
    assert_eq!((rc, o.next), (0, Next::Yield));
    assert_eq!(e.call(0, 0, 0, nr::SCHED_OP, [9, 0, 0, 0, 0]).0, ENOSYS);
}

fn with_cr3(mut c: Vec<u8>, cr3: u64) -> Vec<u8> {
    c[4984 + 24..4984 + 32].copy_from_slice(&cr3.to_le_bytes());
    c
}

fn context(rip: u64, rsp: u64, gs: u64, event_cb: u64, flags: u64) -> Vec<u8> {
    let mut c = vec![0u8; 5168];
    let put =
        |c: &mut Vec<u8>, off: usize, v: u64| c[off..off + 8].copy_from_slice(&v.to_le_bytes());
    put(&mut c, 512, flags);
    put(&mut c, 520 + 112, 7); // rdi
    put(&mut c, 520 + 128, rip);
    put(&mut c, 520 + 144, 0x3000); // IOPL 3, IF clear
    put(&mut c, 520 + 152, rsp);
    put(&mut c, 720 + 14 * 16 + 8, 0x40_1400); // trap 14 handler
    c[720 + 14 * 16 + 1] = 4;
    put(&mut c, 5112, event_cb);
    put(&mut c, 5120, 0x40_1300);
    put(&mut c, 5144, 0x1111);
    put(&mut c, 5152, gs);
    c
}

#[test]
fn vcpu_bring_up_and_down() {
    let mut e = env(&[3]);
    let op = |cmd: u32, v: u32, arg: u64| [u64::from(cmd), u64::from(v), arg, 0, 0];
    assert_eq!(e.call(0, 0, 0, nr::VCPU_OP, op(vcpuop::IS_UP, 0, 0)).0, 1);
    assert_eq!(e.call(0, 0, 0, nr::VCPU_OP, op(vcpuop::IS_UP, 1, 0)).0, 0);
    assert_eq!(e.call(0, 0, 0, nr::VCPU_OP, op(vcpuop::IS_UP, 3, 0)).0, -2);
    assert_eq!(e.call(0, 0, 0, nr::VCPU_OP, op(vcpuop::UP, 1, 0)).0, EINVAL);
    e.write(
        0,
        SCRATCH,
        &with_cr3(
            context(0x40_1100, 0x40_9000, 0x42_0000, 0x40_1200, 0),
            e.cr3(0),
        ),
    );
    let init = op(vcpuop::INITIALISE, 1, SCRATCH);
    assert_eq!(e.call(0, 0, 0, nr::VCPU_OP, init).0, 0);
    assert_eq!(e.call(0, 0, 0, nr::VCPU_OP, init).0, -17, "EEXIST");
    assert_eq!(e.call(0, 0, 0, nr::VCPU_OP, op(0, 2, BAD)).0, EFAULT);
    let (rc, o) = e.call(0, 0, 2_000, nr::VCPU_OP, op(vcpuop::UP, 1, 0));
    assert_eq!(rc, 0);
    let Effect::Start {
        vcpu,
        regs: Some(r),
        ..
    } = &o.effects[0]
    else {
        panic!("expected a start: {:?}", o.effects)
    };
    assert_eq!(*vcpu, VcpuId(1));
    assert_eq!((r.rip, r.rsp(), r.gpr[7]), (0x40_1100, 0x40_9000, 7));
    assert_eq!((r.gs_base, r.fs_base), (0x42_0000, 0x1111));
    assert_eq!(r.rflags, 0x202, "IOPL stripped, IF and bit 1 set");
    let v1 =
        e.hv.domain(DomainId(0))
            .expect("d0")
            .vcpu(VcpuId(1))
            .expect("v1");
    assert_eq!(v1.callbacks.event, 0x40_1200);
    assert_eq!(v1.traps[14].address, 0x40_1400);
    // Default 10 ms periodic timer, from the up at 1000 ns.
    assert_eq!(
        e.hv.next_timer_cycle(DomainId(0), VcpuId(1)),
        Some(2_000 + 20_000_000)
    );
    assert_eq!(
        e.call(0, 0, 0, nr::VCPU_OP, op(vcpuop::UP, 1, 0)),
        (0, e_no_effects())
    );
    // VGCF_online starts VCPU 2 at initialise.
    let c = with_cr3(context(0x40_1100, 0x40_a000, 0, 0, 1 << 5), e.cr3(0));
    e.write(0, SCRATCH, &c);
    let (_, o) = e.call(0, 0, 0, nr::VCPU_OP, op(vcpuop::INITIALISE, 2, SCRATCH));
    assert!(matches!(
        o.effects[0],
        Effect::Start {
            vcpu: VcpuId(2),
            ..
        }
    ));
    // Down another VCPU, then itself, then the last one powers off.
    let (rc, o) = e.call(0, 0, 0, nr::VCPU_OP, op(vcpuop::DOWN, 2, 0));
    assert_eq!(rc, 0);
    assert_eq!(
        o.effects,
        vec![Effect::Stop {
            domain: DomainId(0),
            vcpu: VcpuId(2)
        }]
    );
    let (_, o) = e.call(0, 1, 0, nr::VCPU_OP, op(vcpuop::DOWN, 1, 0));
    assert_eq!(o.next, Next::Down);
    assert_eq!(e.hv.next_timer_cycle(DomainId(0), VcpuId(1)), None);
    let (_, o) = e.call(0, 0, 5, nr::VCPU_OP, op(vcpuop::DOWN, 0, 0));
    assert_eq!(o.next, Next::Shutdown);
    assert_eq!(e.hv.shutdowns()[0].reason, 0);
}

fn e_no_effects() -> crate::hypervisor::Outcome {
    crate::hypervisor::Outcome {
        next: Next::Resume,
        effects: vec![],
    }
}

#[test]
fn timers() {
    let mut e = env(&[2]);
    let op = |cmd: u32, v: u32, arg: u64| [u64::from(cmd), u64::from(v), arg, 0, 0];
    let p = e.bind_virq_timer(0, 0);
    e.write(0, SCRATCH, &999_999u64.to_le_bytes());
    let set = op(vcpuop::SET_PERIODIC_TIMER, 0, SCRATCH);
    assert_eq!(e.call(0, 0, 0, nr::VCPU_OP, set).0, EINVAL);
    e.write(0, SCRATCH, &1_000_000u64.to_le_bytes());
    assert_eq!(e.call(0, 0, 200, nr::VCPU_OP, set).0, 0);
    assert_eq!(
        e.hv.next_timer_cycle(DomainId(0), VcpuId(0)),
        Some(2_000_200)
    );
    let fx = e.hv.run_timers(DomainId(0), VcpuId(0), 2_000_300);
    let tick = Effect::Raise(Raise {
        domain: DomainId(0),
        port: p,
        vcpu: VcpuId(0),
    });
    assert_eq!(fx, vec![tick.clone()]);
    assert_eq!(
        e.hv.next_timer_cycle(DomainId(0), VcpuId(0)),
        Some(4_000_300)
    );
    let stop = op(vcpuop::STOP_PERIODIC_TIMER, 0, 0);
    assert_eq!(e.call(0, 0, 0, nr::VCPU_OP, stop).0, 0);
    assert_eq!(e.hv.next_timer_cycle(DomainId(0), VcpuId(0)), None);
    // Single-shot: other VCPU refused, past fires now, future arms.
    let mut s = vec![0u8; 16];
    s[0..8].copy_from_slice(&500u64.to_le_bytes());
    e.write(0, SCRATCH, &s);
    let one = op(vcpuop::SET_SINGLESHOT_TIMER, 1, SCRATCH);
    assert_eq!(e.call(0, 0, 0, nr::VCPU_OP, one).0, EINVAL);
    let one = op(vcpuop::SET_SINGLESHOT_TIMER, 0, SCRATCH);
    let (rc, o) = e.call(0, 0, 1_000, nr::VCPU_OP, one);
    assert_eq!((rc, o.effects), (0, vec![tick.clone()]), "500 ns is past");
    let (_, o) = e.call(0, 0, 998, nr::VCPU_OP, one);
    assert!(o.effects.is_empty());
    assert_eq!(e.hv.next_timer_cycle(DomainId(0), VcpuId(0)), Some(1_000));
    let stop = op(vcpuop::STOP_SINGLESHOT_TIMER, 0, 0);
    assert_eq!(e.call(0, 0, 0, nr::VCPU_OP, stop).0, 0);
    assert_eq!(e.hv.next_timer_cycle(DomainId(0), VcpuId(0)), None);
    // set_timer_op: 0 cancels, negative or absurd means now + 100 ms.
    assert_eq!(e.call(0, 0, 0, nr::SET_TIMER_OP, [4_000, 0, 0, 0, 0]).0, 0);
    assert_eq!(e.hv.next_timer_cycle(DomainId(0), VcpuId(0)), Some(8_000));
    assert_eq!(e.call(0, 0, 0, nr::SET_TIMER_OP, [0; 5]).0, 0);
    assert_eq!(e.hv.next_timer_cycle(DomainId(0), VcpuId(0)), None);
    e.call(0, 0, 2_000, nr::SET_TIMER_OP, [-5i64 as u64, 0, 0, 0, 0]);
    assert_eq!(
        e.hv.next_timer_cycle(DomainId(0), VcpuId(0)),
        Some(2 * (1_000 + 100_000_000))
    );
    e.call(
        0,
        0,
        2_000,
        nr::SET_TIMER_OP,
        [(1 << 50) + 1_000, 0, 0, 0, 0],
    );
    assert_eq!(
        e.hv.next_timer_cycle(DomainId(0), VcpuId(0)),
        Some(2 * (1_000 + 100_000_000))
    );
    e.call(0, 0, 2_000, nr::SET_TIMER_OP, [(1 << 50) + 999, 0, 0, 0, 0]);
    assert_eq!(
        e.hv.next_timer_cycle(DomainId(0), VcpuId(0)),
        Some(2 * ((1 << 50) + 999))
    );
    let (_, o) = e.call(0, 0, 2_000, nr::SET_TIMER_OP, [3, 0, 0, 0, 0]);
    assert_eq!(o.effects, vec![tick], "in the past: fires now");
}

#[test]
fn callbacks_and_trap_table() {
    let mut e = env(&[1]);
    let mut cb = vec![0u8; 16];
    cb[8..16].copy_from_slice(&0x40_1200u64.to_le_bytes());
    e.write(0, SCRATCH, &cb);
    assert_eq!(e.call(0, 0, 0, nr::CALLBACK_OP, [0, SCRATCH, 0, 0, 0]).0, 0);
    cb[0] = 9;
    e.write(0, SCRATCH, &cb);
    assert_eq!(
        e.call(0, 0, 0, nr::CALLBACK_OP, [0, SCRATCH, 0, 0, 0]).0,
        ENOSYS
    );
    cb[0] = 1;
    cb[8..16].copy_from_slice(&0x8000_0000_0000u64.to_le_bytes());
    e.write(0, SCRATCH, &cb);
    assert_eq!(
        e.call(0, 0, 0, nr::CALLBACK_OP, [0, SCRATCH, 0, 0, 0]).0,
        EINVAL
    );
    assert_eq!(
        e.call(0, 0, 0, nr::CALLBACK_OP, [1, SCRATCH, 0, 0, 0]).0,
        EINVAL
    );
    assert_eq!(
        e.call(0, 0, 0, nr::CALLBACK_OP, [0, BAD, 0, 0, 0]).0,
        EFAULT
    );
    e.call(0, 0, 0, nr::SET_CALLBACKS, [0x40_1500, 0x40_1600, 0, 0, 0]);
    let cbs =
        e.hv.domain(DomainId(0))
            .expect("d0")
            .vcpu(VcpuId(0))
            .expect("v0")
            .callbacks;
    assert_eq!((cbs.event, cbs.failsafe), (0x40_1500, 0x40_1600));
    let mut t = vec![0u8; 48];
    t[0] = 14;
    t[1] = 4;
    t[2..4].copy_from_slice(&0xe033u16.to_le_bytes());
    t[8..16].copy_from_slice(&0x40_1400u64.to_le_bytes());
    t[16] = 3;
    t[24..32].copy_from_slice(&0x40_1480u64.to_le_bytes());
    e.write(0, SCRATCH, &t);
    assert_eq!(
        e.call(0, 0, 0, nr::SET_TRAP_TABLE, [SCRATCH, 0, 0, 0, 0]).0,
        0
    );
    let v =
        e.hv.domain(DomainId(0))
            .expect("d0")
            .vcpu(VcpuId(0))
            .expect("v0");
    assert_eq!((v.traps[14].address, v.traps[14].flags), (0x40_1400, 4));
    assert_eq!(v.traps[3].address, 0x40_1480);
    assert_eq!(v.traps[0].address, 0);
    assert_eq!(e.call(0, 0, 0, nr::SET_TRAP_TABLE, [0; 5]).0, 0);
    let v =
        e.hv.domain(DomainId(0))
            .expect("d0")
            .vcpu(VcpuId(0))
            .expect("v0");
    assert_eq!(v.traps[14].address, 0, "NULL clears");
}

#[test]
fn update_va_mapping_maps_shared_info_or_own_frames_only() {
    let mut e = env(&[1]);
    let dom = e.hv.domain(DomainId(0)).expect("d0");
    let si = dom.shared_info();
    let own = dom.p2m()[40];
    let l4 = dom.p2m()[9];
    let va = 0x40_0000 + 30 * 4096;
    let (rc, o) = e.call(
        0,
        0,
        0,
        nr::UPDATE_VA_MAPPING,
        [va + 5, si.addr(0).get() | 7, 2, 0, 0],
    );
    assert_eq!(rc, 0);
    assert_eq!(
        o.effects,
        vec![Effect::Flush {
            domain: DomainId(0),
            vcpus: Some(vec![VcpuId(0)]),
            page: Some(va),
        }],
        "UVMF_INVLPG | UVMF_LOCAL"
    );
    assert_eq!(e.translate(0, va), Some(si.addr(0).get()));
    // The same bytes are visible at both VAs of shared_info.
    let siva =
        e.hv.domain(DomainId(0))
            .expect("d0")
            .layout()
            .shared_info_va;
    e.write(0, va + 3072, &[9]);
    assert_eq!(e.read(0, siva + 3072, 1), vec![9]);
    let foreign = 3u64 << 12 | 7;
    assert_eq!(
        e.call(0, 0, 0, nr::UPDATE_VA_MAPPING, [va, foreign, 0, 0, 0])
            .0,
        EINVAL
    );
    let high = 0xFFFF_8000_0000_0000;
    let pte = own.addr(0).get() | 3;
    assert_eq!(
        e.call(0, 0, 0, nr::UPDATE_VA_MAPPING, [high, pte, 0, 0, 0])
            .0,
        EINVAL
    );
    // A page-table frame may be mapped read-only, never read-write.
    let rw_l4 = l4.addr(0).get() | 3;
    assert_eq!(
        e.call(0, 0, 0, nr::UPDATE_VA_MAPPING, [va, rw_l4, 0, 0, 0])
            .0,
        EINVAL
    );
    let ro_l4 = l4.addr(0).get() | 1;
    assert_eq!(
        e.call(0, 0, 0, nr::UPDATE_VA_MAPPING, [va, ro_l4, 1, 4, 0])
            .0,
        0
    );
    assert_eq!(
        e.call(0, 0, 0, nr::UPDATE_VA_MAPPING, [va, pte, 0, 0, 0]).0,
        0
    );
    assert_eq!(e.translate(0, va), Some(own.addr(0).get()));
    assert_eq!(
        e.call(0, 0, 0, nr::UPDATE_VA_MAPPING, [va, 0, 0, 0, 0]).0,
        0
    );
    assert_eq!(e.translate(0, va), None);
    assert_eq!(e.call(0, 0, 0, nr::CONSOLE_IO, [0, 1, va, 0, 0]).0, EFAULT);
    assert_eq!(
        e.call(0, 0, 0, nr::UPDATE_VA_MAPPING, [va, pte, 3, 0, 0]).0,
        EINVAL,
        "flush type 3 does not exist"
    );
}

#[test]
fn shutdown_code_is_latched_and_remote_shutdown_refused() {
    let mut e = env(&[1]);
    e.write(0, SCRATCH, &le32(&[3]));
    assert_eq!(e.call(0, 0, 0, nr::SCHED_OP, [5, SCRATCH, 0, 0, 0]).0, 0);
    e.write(0, SCRATCH, &le32(&[1]));
    assert_eq!(
        e.call(0, 0, 0, nr::SCHED_OP, [5, SCRATCH, 0, 0, 0]).0,
        0,
        "ignored"
    );
    e.write(0, SCRATCH, &le32(&[9]));
    assert_eq!(
        e.call(0, 0, 0, nr::SCHED_OP, [5, SCRATCH, 0, 0, 0]).0,
        EINVAL
    );
    assert_eq!(e.call(0, 0, 0, nr::SCHED_OP, [4, SCRATCH, 0, 0, 0]).0, -1);
    e.write(0, SCRATCH, &le32(&[0]));
    let (_, o) = e.call(0, 0, 9, nr::SCHED_OP, [2, SCRATCH, 0, 0, 0]);
    assert_eq!(o.next, Next::Shutdown);
    assert_eq!(
        e.hv.shutdowns()[0].reason,
        3,
        "the latched crash is reported"
    );
}

fn le64(words: &[u64]) -> Vec<u8> {
    words.iter().flat_map(|w| w.to_le_bytes()).collect()
}

fn guest_hist(e: &Env, name: &str) -> (u64, u64, u64) {
    let (_, h) =
        e.hv.guest_histograms()
            .find(|(n, _)| *n == name)
            .expect("named histogram");
    if h.is_empty() {
        (0, 0, 0)
    } else {
        (h.len(), h.min(), h.max())
    }
}

#[test]
fn smpsim_op_records_guest_samples() {
    use crate::abi::smpsimop::{guest_hist::*, MAX_SAMPLES, RECORD_SAMPLES};
    let rec = u64::from(RECORD_SAMPLES);
    let mut e = env(&[2]);
    e.write(0, SCRATCH, &le64(&[300, 120, 1500]));
    let (rc, o) = e.call(0, 0, 0, nr::SMPSIM_OP, [rec, 0, SCRATCH, 3, 0]);
    assert_eq!((rc, o.next), (0, Next::Resume));
    assert!(o.effects.is_empty());
    assert_eq!(guest_hist(&e, "evtchn_rtt"), (3, 120, 1500));
    // A second VCPU adds to the same histogram; count 0 is a no-op.
    e.start_vcpu(0, 1);
    e.write(0, SCRATCH + 64, &le64(&[7, 7]));
    let ev = u64::from(LOCK_WAIT);
    assert_eq!(
        e.call(0, 1, 5, nr::SMPSIM_OP, [rec, ev, SCRATCH + 64, 2, 0])
            .0,
        0
    );
    assert_eq!(e.call(0, 1, 5, nr::SMPSIM_OP, [rec, ev, BAD, 0, 0]).0, 0);
    assert_eq!(guest_hist(&e, "lock_wait"), (2, 7, 7));
    // A full batch: 512 samples straddling a page boundary.
    let samples: Vec<u64> = (1..=u64::from(MAX_SAMPLES)).collect();
    e.write(0, SCRATCH + 2048, &le64(&samples));
    let bw = u64::from(BARRIER_WAIT);
    let (rc, _) = e.call(0, 0, 9, nr::SMPSIM_OP, [rec, bw, SCRATCH + 2048, 512, 0]);
    assert_eq!(rc, 0);
    assert_eq!(guest_hist(&e, "barrier_wait"), (512, 1, 512));
    let names: Vec<_> = e.hv.guest_histograms().map(|(n, _)| n).collect();
    assert_eq!(names, ["evtchn_rtt", "lock_wait", "barrier_wait"]);
    assert_eq!(e.hv.counters().hypercalls.get(&nr::SMPSIM_OP), Some(&4));
}

#[test]
fn smpsim_op_roi_marks_begin_and_end() {
    use crate::abi::smpsimop::ROI;
    let mut e = env(&[2]);
    e.start_vcpu(0, 1);
    let roi = u64::from(ROI);
    let (rc, o) = e.call(0, 1, 0, nr::SMPSIM_OP, [roi, 1, 0, 0, 0]);
    assert_eq!((rc, o.next), (0, Next::Resume));
    let begin = Effect::Roi {
        domain: DomainId(0),
        vcpu: VcpuId(1),
        begin: true,
    };
    assert_eq!(o.effects, vec![begin]);
    let (rc, o) = e.call(0, 0, 0, nr::SMPSIM_OP, [roi, 0, 0, 0, 0]);
    assert_eq!(rc, 0);
    let end = Effect::Roi {
        domain: DomainId(0),
        vcpu: VcpuId(0),
        begin: false,
    };
    assert_eq!(o.effects, vec![end]);
    let (rc, o) = e.call(0, 0, 0, nr::SMPSIM_OP, [roi, 2, 0, 0, 0]);
    assert_eq!(rc, EINVAL, "phase must be 0 or 1");
    assert!(o.effects.is_empty());
}

#[test]
fn smpsim_op_rejects_bad_arguments() {
    let mut e = env(&[1]);
    e.write(0, SCRATCH, &le64(&[1, 2, 3]));
    let call = |e: &mut Env, a: [u64; 5]| e.call(0, 0, 0, nr::SMPSIM_OP, a).0;
    assert_eq!(call(&mut e, [0, 3, SCRATCH, 1, 0]), EINVAL, "unknown id");
    assert_eq!(call(&mut e, [0, 0, SCRATCH, 513, 0]), EINVAL, "count");
    assert_eq!(call(&mut e, [0, 0, BAD, 1, 0]), EFAULT);
    assert_eq!(call(&mut e, [2, 0, SCRATCH, 1, 0]), ENOSYS, "sub-command");
    // The whole array is copied before anything is recorded: one that runs
    // off the mapped memory records nothing.
    assert_eq!(call(&mut e, [0, 0, 0x40_0000 - 8, 2, 0]), EFAULT);
    assert!(e.hv.guest_histograms().all(|(_, h)| h.is_empty()));
    // Upper halves of the u32 arguments are ignored (C ints).
    assert_eq!(call(&mut e, [1 << 32, 1 << 32, SCRATCH, 2 | 1 << 32, 0]), 0);
    assert_eq!(guest_hist(&e, "evtchn_rtt"), (2, 1, 2));
}

#[test]
fn multicall_runs_each_entry_and_stores_its_result() {
    let mut e = env(&[1]);
    // Three entries of 64 bytes: xen_version(VERSION), an unknown call,
    // a nested multicall.
    let mut b = vec![0u8; 3 * 64];
    b[0..8].copy_from_slice(&nr::XEN_VERSION.to_le_bytes());
    b[64..72].copy_from_slice(&47u64.to_le_bytes());
    b[128..136].copy_from_slice(&nr::MULTICALL.to_le_bytes());
    e.write(0, SCRATCH, &b);
    let (rc, _) = e.call(0, 0, 0, nr::MULTICALL, [SCRATCH, 3, 0, 0, 0]);
    assert_eq!(rc, 0);
    let result = |e: &mut Env, i: u64| {
        i64::from_le_bytes(e.read(0, SCRATCH + 64 * i + 8, 8).try_into().expect("8"))
    };
    assert_eq!(result(&mut e, 0), (4 << 16 | 19) as i64, "Xen 4.19");
    assert_eq!(result(&mut e, 1), ENOSYS);
    assert_eq!(result(&mut e, 2), EINVAL, "no nested multicall");
    assert_eq!(e.call(0, 0, 0, nr::MULTICALL, [BAD, 1, 0, 0, 0]).0, EFAULT);
}

#[test]
fn fpu_taskswitch_is_the_cores_ts() {
    let mut e = env(&[1]);
    let mut r = regs(super::pvcpu_op::nr::FPU_TASKSWITCH, [1, 0, 0, 0, 0]);
    e.call_regs(0, 0, 0, &mut r);
    assert_eq!((r.gpr[0], r.fpu.ts), (0, true), "set: TS on");
    // Any non-zero int sets; the upper half of the register is not the int.
    let mut r = regs(super::pvcpu_op::nr::FPU_TASKSWITCH, [1 << 32, 0, 0, 0, 0]);
    r.fpu.ts = true;
    e.call_regs(0, 0, 0, &mut r);
    assert!(!r.fpu.ts, "set = 0: TS off");
    let mut r = regs(
        super::pvcpu_op::nr::FPU_TASKSWITCH,
        [0xffff_ffff, 0, 0, 0, 0],
    );
    e.call_regs(0, 0, 0, &mut r);
    assert!(r.fpu.ts);
    // It sticks: a later, unrelated hypercall leaves the core's TS set.
    let mut r = regs(nr::XEN_VERSION, [0, 0, 0, 0, 0]);
    e.call_regs(0, 0, 0, &mut r);
    assert!(r.fpu.ts);
    let pv = &e
        .hv
        .domain(DomainId(0))
        .expect("d0")
        .vcpu(VcpuId(0))
        .expect("v0")
        .pv;
    assert!(pv.cr0_ts);
}

/// An FXSAVE image: FCW 0x027f, FSW with TOP = 7, ST0 = 1.0 (tagged), FOP,
/// FIP, FDP, `mxcsr`, XMM3.
fn fxsave_image(mxcsr: u32) -> [u8; 512] {
    let mut b = [0u8; 512];
    b[0..2].copy_from_slice(&0x027fu16.to_le_bytes());
    b[2..4].copy_from_slice(&(7u16 << 11).to_le_bytes());
    b[4] = 0x80; // physical R7 = ST0 is not empty
    b[6..8].copy_from_slice(&0x0123u16.to_le_bytes());
    b[8..16].copy_from_slice(&0x40_1234u64.to_le_bytes());
    b[16..24].copy_from_slice(&0x40_5678u64.to_le_bytes());
    b[24..28].copy_from_slice(&mxcsr.to_le_bytes());
    b[32..48].copy_from_slice(&(0x3fff_8000_0000_0000_0000u128).to_le_bytes());
    b[160 + 48..176 + 48]
        .copy_from_slice(&0x0011_2233_4455_6677_8899_aabb_ccdd_eeffu128.to_le_bytes());
    b
}

/// Initialises VCPU `v` online from `c` and returns its start registers.
fn start_with(e: &mut Env, v: u32, mut c: Vec<u8>) -> (i64, Option<smpsim_cores::ArchState>) {
    c = with_cr3(c, e.cr3(0));
    e.write(0, SCRATCH, &c);
    let (rc, o) = e.call(
        0,
        0,
        0,
        nr::VCPU_OP,
        [u64::from(vcpuop::INITIALISE), u64::from(v), SCRATCH, 0, 0],
    );
    let regs = o.effects.into_iter().find_map(|x| match x {
        Effect::Start { regs, .. } => regs.map(|r| *r),
        _ => None,
    });
    (rc, regs)
}

#[test]
fn initialise_loads_the_fpu_context_or_resets_it() {
    use smpsim_cores::fpu::x87;
    const ONLINE: u64 = 1 << 5;
    const I387_VALID: u64 = 1;
    let mut e = env(&[4]);
    // VGCF_i387_valid: the image, as FXRSTOR loads it.
    let mut c = context(0x40_1100, 0x40_9000, 0, 0, ONLINE | I387_VALID);
    c[..512].copy_from_slice(&fxsave_image(0x1fa0));
    let (rc, r) = start_with(&mut e, 1, c);
    let f = r.expect("started").fpu;
    assert_eq!(rc, 0);
    assert_eq!(
        (f.fcw, f.fsw, f.fop, f.fip, f.fdp),
        (0x027f, 0x3800, 0x123, 0x40_1234, 0x40_5678)
    );
    assert_eq!((f.mxcsr, f.top()), (0x1fa0, 7));
    assert_eq!(f.st[7], 0x3fff_8000_0000_0000_0000);
    assert_eq!((f.tag(7), f.tag(0)), (x87::TAG_VALID, x87::TAG_EMPTY));
    assert_eq!(f.xmm[3], 0x0011_2233_4455_6677_8899_aabb_ccdd_eeff);
    assert!(!f.ts);
    // No VGCF_i387_valid: Xen's vcpu_reset_fpu (FCW_RESET 0x40, all eight
    // registers zero and tagged, MXCSR default), whatever fpu_ctxt holds;
    // ctrlreg[0].TS is the core's TS.
    let mut c = context(0x40_1100, 0x40_a000, 0, 0, ONLINE);
    c[..512].copy_from_slice(&fxsave_image(0x1fa0));
    c[4984..4992].copy_from_slice(&8u64.to_le_bytes());
    let (rc, r) = start_with(&mut e, 2, c);
    let f = r.expect("started").fpu;
    assert_eq!(rc, 0);
    assert_eq!((f.fcw, f.fsw, f.ftw, f.mxcsr), (0x0040, 0, 0x5555, 0x1f80));
    assert_eq!((f.st, f.xmm), ([0; 8], [0; 16]));
    assert!(f.ts);
    // A reserved MXCSR bit: Xen accepts the context; its XRSTOR fixup
    // leaves the x87 and SSE components in their init state and masks
    // MXCSR.
    let mut c = context(0x40_1100, 0x40_b000, 0, 0, ONLINE | I387_VALID);
    c[..512].copy_from_slice(&fxsave_image(0x0001_1fa0));
    let (rc, r) = start_with(&mut e, 3, c);
    let f = r.expect("started").fpu;
    assert_eq!(rc, 0);
    assert_eq!((f.fcw, f.ftw, f.mxcsr), (0x037f, 0xffff, 0x1fa0));
    assert_eq!((f.st, f.xmm), ([0; 8], [0; 16]));
}

#[test]
fn domain_builder_starts_vcpu0_with_the_reset_fpu() {
    let e = env(&[1]);
    let f = e.hv.domain(DomainId(0)).expect("d0").start_regs().fpu;
    assert_eq!(
        (f.fcw, f.ftw, f.mxcsr, f.ts),
        (0x0040, 0x5555, 0x1f80, false)
    );
}
