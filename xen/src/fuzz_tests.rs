//! Random hypercalls, upcalls, exceptions and timers with hostile
//! arguments: the hypervisor must never panic, and every result must be a
//! value or one of Xen's error codes.

use crate::evtchn::Raise;
use crate::hypervisor::{Effect, Next};
use crate::ids::{DomainId, Port, VcpuId};
use crate::memory::{GuestMemory, PagedMemory};
use crate::testenv::*;
use smpsim_cores::arch::reg::{RAX, RSP};

struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        // xorshift64*
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }

    fn pick(&mut self, pool: &[u64]) -> u64 {
        pool[self.below(pool.len() as u64) as usize]
    }
}

const ERRNOS: [i64; 15] = [1, 2, 3, 12, 13, 14, 16, 17, 19, 22, 28, 33, 34, 38, 95];

fn value(rng: &mut Rng) -> u64 {
    let pool = [
        0,
        1,
        2,
        3,
        7,
        23,
        33,
        4095,
        SCRATCH,
        SCRATCH + 4090,
        SCRATCH - 3,
        BAD,
        u64::MAX,
        u64::MAX - 3,
        1 << 63,
        0x7ff0,
        1 << 50,
    ];
    if rng.below(4) == 0 {
        rng.next()
    } else {
        rng.pick(&pool)
    }
}

fn apply(e: &mut Env, effects: Vec<Effect>) {
    for fx in effects {
        if let Effect::Raise(r) = fx {
            e.deliver(r);
        }
    }
}

fn one_step(e: &mut Env, rng: &mut Rng, cycle: u64) {
    let d = rng.below(2) as u16;
    let v = rng.below(3) as u32;
    let junk: Vec<u8> = (0..64)
        .map(|_| rng.pick(&[0, 1, 2, 0xff, 7, 0x80]) as u8)
        .collect();
    // update_va_mapping may have unmapped the scratch page: then it stays so.
    let _ = e.with_mem(d, |m| m.write_virt(SCRATCH, &junk));
    match rng.below(10) {
        0 => {
            let r = Raise {
                domain: DomainId(d),
                port: Port(rng.below(70) as u32),
                vcpu: VcpuId(v),
            };
            e.deliver(r);
        }
        1 => {
            let fx = e.hv.run_timers(DomainId(d), VcpuId(v), cycle);
            apply(e, fx);
        }
        3 => emulate_step(e, rng, d, v, cycle),
        2 => {
            let mut r = regs(0, [0; 5]);
            r.gpr[RSP] = value(rng);
            let space = e.hv.vcpu_space(DomainId(d), VcpuId(v));
            let mut m = PagedMemory {
                space: &space,
                store: &mut e.store,
            };
            if rng.below(2) == 0 {
                e.hv.upcall(DomainId(d), VcpuId(v), cycle, &mut r, &mut m);
            } else {
                let vector = rng.below(256) as u8;
                let err = (rng.below(2) == 0).then(|| value(rng));
                e.hv.exception(
                    DomainId(d),
                    VcpuId(v),
                    cycle,
                    vector,
                    err,
                    None,
                    &mut r,
                    &mut m,
                );
            }
        }
        _ => {
            let number = if rng.below(8) == 0 {
                value(rng)
            } else {
                rng.pick(&[
                    0, 4, 14, 15, 17, 18, 21, 23, 24, 29, 30, 32, 1, 12, 40, 2, 3, 5, 8, 9, 10, 25,
                    33,
                ])
            };
            let cmd = if rng.below(2) == 0 {
                rng.below(16)
            } else {
                value(rng)
            };
            let mut r = regs(
                number,
                [cmd, value(rng), value(rng), value(rng), value(rng)],
            );
            r.gpr[RSP] = value(rng);
            let o = e.call_regs(d, v, cycle, &mut r);
            let rax = r.gpr[RAX] as i64;
            // iret reloads RAX; get_debugreg returns a register's value.
            if o.next == Next::Resume && number != 23 && number != 9 && rax < 0 {
                assert!(ERRNOS.contains(&-rax), "call {number} cmd {cmd}: rax {rax}");
            }
            apply(e, o.effects);
        }
    }
}

/// A fault of a random vector on random instruction-like bytes, in guest
/// kernel or user mode: the PV emulator must never panic.
fn emulate_step(e: &mut Env, rng: &mut Rng, d: u16, v: u32, cycle: u64) {
    const CODE: u64 = SCRATCH + 0x800;
    let bytes: Vec<u8> = (0..16)
        .map(|_| {
            let pool = [
                0x0f, 0x20, 0x22, 0x21, 0x23, 0x8e, 0x8c, 0xcd, 0x32, 0x30, 0x01, 0xe6, 0xec, 0xfa,
                0x0b, 0x78, 0x65, 0x6e, 0xa2, 0xa1, 0xa9, 0xb2, 0x44, 0x48, 0x66, 0x64, 0xc0, 0xd8,
                0x00, 0xff,
            ];
            rng.pick(&pool) as u8
        })
        .collect();
    let _ = e.with_mem(d, |m| m.write_virt(CODE, &bytes));
    if rng.below(4) == 0 {
        let user = rng.below(2) == 0;
        e.hv.vcpu_mut(DomainId(d), VcpuId(v)).mmu.user_mode = user;
    }
    let mut r = regs(
        0,
        [value(rng), value(rng), value(rng), value(rng), value(rng)],
    );
    for g in [0, 1, 2, 3] {
        r.gpr[g] = value(rng);
    }
    r.rip = if rng.below(8) == 0 { value(rng) } else { CODE };
    let vector = rng.pick(&[6, 13, 13, 13, 1, 3, 4, 14, 0, 8]) as u8;
    let space = e.hv.vcpu_space(DomainId(d), VcpuId(v));
    let mut m = PagedMemory {
        space: &space,
        store: &mut e.store,
    };
    let f = crate::emulate::CoreFault {
        vector,
        addr: value(rng),
        error_code: (rng.below(2) == 0).then(|| value(rng)),
    };
    e.hv.guest_fault(DomainId(d), VcpuId(v), cycle, f, &mut r, &mut m);
    e.hv.take_deferred_effects();
}

/// Domains with handlers, trap tables, bound ports and events enabled, so
/// random inputs reach the deep paths.
fn armed_env() -> Env {
    use crate::abi::hypercall as nr;
    let mut e = env(&[3, 3]);
    for d in 0..2u16 {
        e.start_vcpu(d, 1);
        e.start_vcpu(d, 2);
        let mut table = Vec::new();
        for vector in 0..=255u8 {
            let mut t = [0u8; 16];
            t[0] = vector;
            t[1] = 4;
            t[8..16].copy_from_slice(&0x40_1400u64.to_le_bytes());
            table.extend_from_slice(&t);
        }
        table.extend_from_slice(&[0; 16]);
        let si = e.shared_info_ma(d);
        for v in 0..3u32 {
            e.write(d, SCRATCH + 4096, &table);
            let set = [SCRATCH + 4096, 0, 0, 0, 0];
            assert_eq!(e.call(d, v, 0, nr::SET_TRAP_TABLE, set).0, 0);
            e.call(d, v, 0, nr::SET_CALLBACKS, [0x40_1200, 0x40_1300, 0, 0, 0]);
            e.bind_ipi(d, v);
            e.with_mem(d, |m| {
                use crate::event_2l::EventMemory;
                m.write_u8(si + 64 * u64::from(v) + 1, 0)
            });
        }
    }
    e
}

#[test]
fn hostile_guests_never_panic_the_hypervisor() {
    let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
    let mut e = armed_env();
    let mut shutdowns = 0;
    let (mut upcalls, mut exceptions, mut raises) = (0, 0, 0);
    for i in 0..20_000u64 {
        one_step(&mut e, &mut rng, i * 1_000);
        if e.hv.all_shut_down() || i == 19_999 {
            shutdowns += u32::from(e.hv.all_shut_down());
            let c = e.hv.counters();
            (upcalls, exceptions, raises) = (
                upcalls + c.upcalls,
                exceptions + c.exceptions,
                raises + c.raises,
            );
            e = armed_env();
        }
    }
    assert!(
        shutdowns > 10,
        "random shutdowns and crashes happen: {shutdowns}"
    );
    assert!(
        upcalls > 10 && exceptions > 10 && raises > 100,
        "{upcalls} {exceptions} {raises}"
    );
}
