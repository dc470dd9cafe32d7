//! Test harness: a hypervisor over sparse machine memory with domains
//! built from the builder's test image.

use crate::builder::tests::{test_config, test_image};
use crate::event_2l::EventMemory;
use crate::hypervisor::{Hypervisor, HypervisorConfig, Outcome};
use crate::ids::{DomainId, Mfn, VcpuId};
use crate::memory::{GuestMemory, PagedMemory, SparseFrames};
use smpsim_cores::arch::reg::{R10, R8, RAX, RDI, RDX, RSI, RSP};
use smpsim_cores::ArchState;

/// Scratch VA for hypercall arguments (page 16 of the test image).
pub const SCRATCH: u64 = 0x40_0000 + 16 * 4096;
/// A VA nothing maps.
pub const BAD: u64 = 0x10;

pub struct Env {
    pub hv: Hypervisor,
    pub store: SparseFrames,
}

/// Two GHz: 1 cycle = 0.5 ns.
pub const HZ: u64 = 2_000_000_000;

pub fn env(vcpus: &[u32]) -> Env {
    env_rings(vcpus, false)
}

/// As [`env`]; `keep_rings` leaves the console and xenstore ring ports
/// open (for the backends' tests).
pub fn env_rings(vcpus: &[u32], keep_rings: bool) -> Env {
    let mut hv = Hypervisor::new(HypervisorConfig::new(HZ, Mfn(0x1000), 1 << 16));
    let mut store = SparseFrames::new();
    for (i, &n) in vcpus.iter().enumerate() {
        let mut cfg = test_config();
        cfg.vcpus = n;
        cfg.params.domain_index = i as u32;
        let d = hv
            .create_domain(&test_image(), &cfg, &mut store)
            .expect("test domain builds");
        // These tests count ports from 1: close the console and xenstore
        // ring ports the builder allocated (backend.rs has its own tests).
        let rings = hv.domain(d).expect("built").ring_ports;
        for p in [rings.console, rings.xenstore] {
            if !keep_rings {
                hv.evtchn.close(d, p).expect("ring port closes");
            }
        }
        // Every VCPU may make hypercalls in these tests: give the others
        // VCPU 0's page tables (a real guest sets them with
        // VCPUOP_initialise, which start_vcpu does).
        let (root, _) = hv.active_root(d, VcpuId(0));
        for v in 1..n {
            let mut sm = crate::memory::StoreMa(&mut store);
            hv.new_baseptr(d, VcpuId(v), root, crate::mmu::BasePtr::Kernel, &mut sm)
                .expect("the bootstrap L4 validates");
        }
    }
    Env { hv, store }
}

impl Env {
    /// Runs `f` with domain `d`'s memory.
    pub fn with_mem<R>(&mut self, d: u16, f: impl FnOnce(&mut PagedMemory) -> R) -> R {
        let mut space = self.hv.vcpu_space(DomainId(d), VcpuId(0));
        // The test's own view: the kernel's tables, whatever mode VCPU 0 is in.
        let dom = self.hv.domain(DomainId(d)).expect("domain");
        space.root = dom.vcpu(VcpuId(0)).expect("v0").mmu.kernel_root;
        space.user = false;
        let mut m = PagedMemory {
            space: &space,
            store: &mut self.store,
        };
        f(&mut m)
    }

    /// Domain `d`'s bootstrap CR3 (VCPU 0's root), as a context's ctrlreg[3].
    pub fn cr3(&self, d: u16) -> u64 {
        let (root, _) = self.hv.active_root(DomainId(d), VcpuId(0));
        root.expect("VCPU 0 has a root").addr(0).get()
    }

    /// The machine address `va` maps to in domain `d` (VCPU 0's tables).
    pub fn translate(&mut self, d: u16, va: u64) -> Option<u64> {
        let space = self.hv.vcpu_space(DomainId(d), VcpuId(0));
        let mut p = crate::memory::StoreMa(&mut self.store);
        space
            .translate_in(&mut p, va, smpsim_cores::paging::AccessKind::Read)
            .ok()
            .map(|t| t.frame + va % 4096)
    }

    pub fn write(&mut self, d: u16, va: u64, bytes: &[u8]) {
        self.with_mem(d, |m| m.write_virt(va, bytes).expect("mapped"));
    }

    pub fn read(&mut self, d: u16, va: u64, n: usize) -> Vec<u8> {
        self.with_mem(d, |m| {
            let mut b = vec![0; n];
            m.read_virt(va, &mut b).expect("mapped");
            b
        })
    }

    pub fn read_u32(&mut self, d: u16, va: u64) -> u32 {
        u32::from_le_bytes(self.read(d, va, 4).try_into().expect("4"))
    }

    /// Machine address of domain `d`'s shared_info page.
    pub fn shared_info_ma(&self, d: u16) -> u64 {
        let dom = self.hv.domain(DomainId(d)).expect("domain");
        dom.shared_info().addr(0).get()
    }

    /// Machine-address byte.
    pub fn ma_u8(&mut self, d: u16, ma: u64) -> u8 {
        self.with_mem(d, |m| m.read_u8(ma))
    }

    /// Hypercall `nr` with `args` from VCPU `v` at `cycle`, on `regs`.
    pub fn call_regs(&mut self, d: u16, v: u32, cycle: u64, regs: &mut ArchState) -> Outcome {
        let space = self.hv.vcpu_space(DomainId(d), VcpuId(v));
        let mut m = PagedMemory {
            space: &space,
            store: &mut self.store,
        };
        self.hv
            .hypercall(DomainId(d), VcpuId(v), cycle, regs, &mut m)
    }

    /// Hypercall; returns RAX as i64 and the outcome.
    pub fn call(&mut self, d: u16, v: u32, cycle: u64, nr: u64, a: [u64; 5]) -> (i64, Outcome) {
        let mut r = regs(nr, a);
        let o = self.call_regs(d, v, cycle, &mut r);
        (r.gpr[RAX] as i64, o)
    }
}

pub fn regs(nr: u64, a: [u64; 5]) -> ArchState {
    let mut r = ArchState {
        rip: 0x40_1010,
        rflags: 0x202,
        ..ArchState::default()
    };
    r.gpr[RAX] = nr;
    r.gpr[RDI] = a[0];
    r.gpr[RSI] = a[1];
    r.gpr[RDX] = a[2];
    r.gpr[R10] = a[3];
    r.gpr[R8] = a[4];
    r.gpr[RSP] = 0x40_7f00;
    r
}

impl Env {
    /// Delivers a raise through the hypervisor over the target's memory.
    pub fn deliver(&mut self, r: crate::evtchn::Raise) -> Vec<VcpuId> {
        let space = self.hv.vcpu_space(r.domain, r.vcpu);
        let mut m = PagedMemory {
            space: &space,
            store: &mut self.store,
        };
        self.hv.deliver(r, &mut m)
    }

    fn bind(&mut self, d: u16, v: u32, cmd: u64, arg: &[u32], out_at: u64) -> crate::ids::Port {
        let b: Vec<u8> = arg.iter().flat_map(|w| w.to_le_bytes()).collect();
        self.write(d, SCRATCH, &b);
        let (rc, _) = self.call(
            d,
            v,
            0,
            crate::abi::hypercall::EVENT_CHANNEL_OP,
            [cmd, SCRATCH, 0, 0, 0],
        );
        assert_eq!(rc, 0, "bind cmd {cmd}");
        crate::ids::Port(self.read_u32(d, SCRATCH + out_at))
    }

    /// Binds an IPI port to VCPU `v` of domain `d`.
    pub fn bind_ipi(&mut self, d: u16, v: u32) -> crate::ids::Port {
        self.bind(d, v, crate::abi::evtchnop::BIND_IPI, &[v, 0], 4)
    }

    /// Binds the global `virq` (on VCPU 0).
    pub fn bind_virq(&mut self, d: u16, virq: u32) -> crate::ids::Port {
        self.bind(d, 0, crate::abi::evtchnop::BIND_VIRQ, &[virq, 0, 0], 8)
    }

    /// Binds VIRQ_TIMER on VCPU `v`.
    pub fn bind_virq_timer(&mut self, d: u16, v: u32) -> crate::ids::Port {
        self.bind(d, v, crate::abi::evtchnop::BIND_VIRQ, &[0, v, 0], 8)
    }
}

impl Env {
    /// Initialises VCPU `v` (minimal context) and brings it up at cycle 0
    /// with its periodic timer stopped.
    pub fn start_vcpu(&mut self, d: u16, v: u32) {
        use crate::abi::{hypercall::VCPU_OP, vcpuop};
        let mut c = vec![0u8; 5168];
        c[520 + 128..520 + 136].copy_from_slice(&0x40_1100u64.to_le_bytes());
        c[4984 + 24..4984 + 32].copy_from_slice(&self.cr3(d).to_le_bytes());
        self.write(d, SCRATCH, &c);
        let v64 = u64::from(v);
        let init = [u64::from(vcpuop::INITIALISE), v64, SCRATCH, 0, 0];
        assert_eq!(self.call(d, 0, 0, VCPU_OP, init).0, 0);
        assert_eq!(
            self.call(d, 0, 0, VCPU_OP, [u64::from(vcpuop::UP), v64, 0, 0, 0])
                .0,
            0
        );
        let stop = [u64::from(vcpuop::STOP_PERIODIC_TIMER), v64, 0, 0, 0];
        assert_eq!(self.call(d, 0, 0, VCPU_OP, stop).0, 0);
    }
}
