//! A whole guest boot at the hypercall level, following the runtime's
//! sequence in workloads/README-guest.md, with a miniature "machine" that
//! applies the effects the way the real one must.

use crate::abi::{evtchnop, hypercall as nr, vcpuop};
use crate::event_2l::EventMemory;
use crate::evtchn::Raise;
use crate::hypervisor::{Effect, Next, Upcall};
use crate::ids::{DomainId, Port, VcpuId};
use crate::memory::GuestMemory;
use crate::regs::GuestRegs;
use crate::testenv::*;
use smpsim_cores::arch::reg::{R11, RAX, RCX, RSP};
use smpsim_cores::ArchState;

const CALLBACK: u64 = 0x40_1200;
const HEAP: u64 = 0x40_0000 + 20 * 4096;

struct Machine {
    e: Env,
    regs: Vec<ArchState>,
    running: Vec<bool>,
}

impl Machine {
    fn apply(&mut self, effects: Vec<Effect>) {
        for fx in effects {
            match fx {
                Effect::Raise(r) => {
                    for v in self.e.deliver(r) {
                        self.running[v.0 as usize] = true;
                    }
                }
                Effect::Start { vcpu, regs, .. } => {
                    self.regs[vcpu.0 as usize] = *regs.expect("first start has a context");
                    self.running[vcpu.0 as usize] = true;
                }
                Effect::Stop { vcpu, .. } => self.running[vcpu.0 as usize] = false,
                Effect::Wake { vcpu, .. } => self.running[vcpu.0 as usize] = true,
                Effect::Roi { .. } | Effect::Flush { .. } | Effect::NewRoot { .. } => {}
            }
        }
    }

    /// VCPU `v` makes a hypercall.
    fn call(&mut self, v: u32, number: u64, a: [u64; 5]) -> (i64, Next) {
        assert!(self.running[v as usize], "v{v} must be running to call");
        let mut r = regs(number, a);
        r.gpr[RSP] = self.regs[v as usize].rsp();
        let o = self.e.call_regs(0, v, 0, &mut r);
        self.apply(o.effects);
        if matches!(
            o.next,
            Next::Block | Next::Poll | Next::Down | Next::Shutdown
        ) {
            self.running[v as usize] = false;
        }
        (r.gpr[RAX] as i64, o.next)
    }

    fn evtchn(&mut self, v: u32, cmd: u64, words: &[u32]) -> u32 {
        let at = HEAP - 4096 + 64 * u64::from(v);
        let b: Vec<u8> = words.iter().flat_map(|w| w.to_le_bytes()).collect();
        self.e.write(0, at, &b);
        let (rc, _) = self.call(v, nr::EVENT_CHANNEL_OP, [cmd, at, 0, 0, 0]);
        assert_eq!(rc, 0, "evtchn cmd {cmd} on v{v}");
        self.e.read_u32(0, at + 4 * (words.len() as u64 - 1))
    }

    /// The guest's vcpu_info VA for VCPU v.
    fn vcpu_info_va(&self, v: u32) -> u64 {
        let si = self
            .e
            .hv
            .domain(DomainId(0))
            .expect("d0")
            .layout()
            .shared_info_va;
        if v < 32 {
            si + 64 * u64::from(v)
        } else {
            HEAP + 64 * u64::from(v)
        }
    }

    /// Per-VCPU init of the runtime: callbacks, stop the tick, IPI port,
    /// unmask it, enable events.
    fn local_init(&mut self, v: u32) -> Port {
        assert_eq!(self.call(v, nr::SET_CALLBACKS, [CALLBACK, 0, 0, 0, 0]).0, 0);
        let stop = [
            u64::from(vcpuop::STOP_PERIODIC_TIMER),
            u64::from(v),
            0,
            0,
            0,
        ];
        assert_eq!(self.call(v, nr::VCPU_OP, stop).0, 0);
        let port = self.evtchn(v, evtchnop::BIND_IPI, &[v, 0]);
        self.evtchn(v, evtchnop::UNMASK, &[port]);
        let mask = self.vcpu_info_va(v) + 1;
        self.e.write(0, mask, &[0]);
        Port(port)
    }
}

#[test]
fn thirty_four_vcpus_boot_exchange_an_ipi_and_power_off() {
    const N: u32 = 34;
    let mut m = Machine {
        e: env(&[N]),
        regs: vec![ArchState::default(); N as usize],
        running: vec![false; N as usize],
    };
    m.regs[0] = m.e.hv.domain(DomainId(0)).expect("d0").start_regs();
    m.running[0] = true;
    let siva =
        m.e.hv
            .domain(DomainId(0))
            .expect("d0")
            .layout()
            .shared_info_va;
    m.e.write(0, siva + 2560, &[0xff; 512]);
    // VCPU 0 registers vcpu_info for VCPUs 32 and 33 in its heap.
    for v in 32..N {
        let va = m.vcpu_info_va(v);
        let pfn = (va - 0x40_0000) / 4096;
        let mfn = m.e.hv.domain(DomainId(0)).expect("d0").p2m()[pfn as usize];
        let mut arg = mfn.0.to_le_bytes().to_vec();
        arg.extend_from_slice(&((va % 4096) as u32).to_le_bytes());
        arg.extend_from_slice(&[0; 4]);
        m.e.write(0, HEAP - 2048, &arg);
        let op = [
            u64::from(vcpuop::REGISTER_VCPU_INFO),
            u64::from(v),
            HEAP - 2048,
            0,
            0,
        ];
        assert_eq!(m.call(0, nr::VCPU_OP, op).0, 0, "register v{v}");
    }
    let mut ports = vec![m.local_init(0)];
    // Bring up the others.
    let mut ctx = vec![0u8; 5168];
    ctx[520 + 128..520 + 136].copy_from_slice(&0x40_1100u64.to_le_bytes());
    ctx[4984 + 24..4984 + 32].copy_from_slice(&m.e.cr3(0).to_le_bytes());
    for v in 1..N {
        let stack = 0x40_0000 + (40 + u64::from(v)) * 1024;
        ctx[520 + 152..520 + 160].copy_from_slice(&stack.to_le_bytes());
        m.e.write(0, HEAP - 4096 * 2, &ctx);
        let init = [
            u64::from(vcpuop::INITIALISE),
            u64::from(v),
            HEAP - 8192,
            0,
            0,
        ];
        assert_eq!(m.call(0, nr::VCPU_OP, init).0, 0, "initialise v{v}");
        assert_eq!(m.call(0, nr::VCPU_OP, [1, u64::from(v), 0, 0, 0]).0, 0);
        assert!(m.running[v as usize]);
        assert_eq!(m.regs[v as usize].rsp(), stack);
        ports.push(m.local_init(v));
    }
    assert_eq!(ports[33], Port(34), "lowest free port each time");
    // VCPU 33 waits. Its first block returns at once: register_vcpu_info
    // left the deliberate spurious upcall_pending; the guest's scan clears it.
    assert_eq!(m.call(33, nr::SCHED_OP, [1, 0, 0, 0, 0]), (0, Next::Resume));
    let vi33_va = m.vcpu_info_va(33);
    m.e.write(0, vi33_va, &[0]);
    m.e.write(0, vi33_va + 8, &[0; 8]);
    let (rc, next) = m.call(33, nr::SCHED_OP, [1, 0, 0, 0, 0]);
    assert_eq!((rc, next), (0, Next::Block));
    m.evtchn(0, evtchnop::SEND, &[ports[33].0]);
    assert!(m.running[33], "woken by the kick");
    // At its next instruction boundary it takes the upcall.
    let before = m.regs[33].clone();
    let vi33 = m.e.translate(0, HEAP + 64 * 33).expect("mapped");
    let space = m.e.hv.vcpu_space(DomainId(0), VcpuId(33));
    let mut mem = crate::memory::PagedMemory {
        space: &space,
        store: &mut m.e.store,
    };
    let mut r = before.clone();
    let up = m.e.hv.upcall(DomainId(0), VcpuId(33), 0, &mut r, &mut mem);
    assert_eq!(up, Upcall::Delivered);
    assert_eq!(r.rip, CALLBACK);
    assert_eq!(mem.read_u8(vi33 + 1), 1, "masked in the handler");
    // Handler: scan, clear the pending bit, return through iret.
    assert!(mem.test_and_clear_bit(
        m.e.hv
            .domain(DomainId(0))
            .expect("d0")
            .shared_info()
            .addr(2048)
            .get(),
        34
    ));
    let mut h = r;
    h.gpr[RCX] = mem.read_virt_u64(h.rsp()).expect("frame");
    h.gpr[R11] = mem.read_virt_u64(h.rsp() + 8).expect("frame");
    h.gpr[RSP] += 16;
    for w in [0, h.gpr[RCX], h.gpr[R11], h.gpr[RAX]] {
        h.gpr[RSP] -= 8;
        mem.write_virt_u64(h.rsp(), w).expect("stack");
    }
    h.gpr[RAX] = nr::IRET;
    let o =
        m.e.hv
            .hypercall(DomainId(0), VcpuId(33), 0, &mut h, &mut mem);
    assert_eq!(o.next, Next::Resume);
    assert_eq!(h, before, "back where it blocked");
    assert_eq!(mem.read_u8(vi33 + 1), 0, "events enabled again");
    // Everyone but VCPU 0 goes down; VCPU 0 reports and powers off.
    for v in 1..N {
        let down = [u64::from(vcpuop::DOWN), u64::from(v), 0, 0, 0];
        assert_eq!(m.call(v, nr::VCPU_OP, down).1, Next::Down);
    }
    let is_up = [u64::from(vcpuop::IS_UP), 33, 0, 0, 0];
    assert_eq!(m.call(0, nr::VCPU_OP, is_up).0, 0);
    m.e.write(0, HEAP - 512, b"PASS hello\n");
    assert_eq!(m.call(0, nr::CONSOLE_IO, [0, 11, HEAP - 512, 0, 0]).0, 0);
    m.e.write(0, HEAP - 512, &[0; 4]);
    let (_, next) = m.call(0, nr::SCHED_OP, [2, HEAP - 512, 0, 0, 0]);
    assert_eq!(next, Next::Shutdown);
    let hv = &m.e.hv;
    assert!(hv.all_shut_down());
    assert!(hv.shutdowns()[0].success());
    let console: Vec<String> = hv.console_lines().iter().map(|l| l.formatted()).collect();
    assert_eq!(console, vec!["(d0) PASS hello".to_string()]);
    let c = hv.counters();
    assert_eq!((c.upcalls, c.wakes), (1, 1));
    // Sends after shutdown are dropped.
    let r = Raise {
        domain: DomainId(0),
        port: ports[0],
        vcpu: VcpuId(0),
    };
    assert!(m.e.deliver(r).is_empty());
}
