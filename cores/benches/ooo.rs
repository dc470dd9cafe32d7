//! Out-of-order model speed: simulated MIPS per host thread on a
//! single-context compute loop (the functional benchmark's loop: loads,
//! stores, ALU, multiply, a data-dependent branch) with a fixed-latency
//! memory port.
//!
//! `cargo bench -p smpsim-cores --bench ooo`; `SMPSIM_BENCH_ITERS` shortens
//! the run (e.g. under callgrind).

use smpsim_cores::ooo::{FixedMem, FixedMemConfig, OooConfig, OooCore};
use smpsim_cores::{Exit, FlatMemory, GuestMemory};
use std::time::Instant;

const CODE: u64 = 0x40_0000;
const DATA: u64 = 0x60_0000;

/// The loop; 11 or 12 instructions per iteration.
fn program(iters: u32) -> Vec<u8> {
    let mut c = vec![0xb9];
    c.extend_from_slice(&iters.to_le_bytes()); // mov ecx, iters
    c.push(0xbe);
    c.extend_from_slice(&u32::try_from(DATA).expect("fits").to_le_bytes()); // mov esi, DATA
    c.extend_from_slice(&[0x31, 0xc0, 0x31, 0xd2]); // xor eax,eax; xor edx,edx
    let body: &[u8] = &[
        0x4c, 0x8b, 0x04, 0xd6, // mov r8, [rsi+rdx*8]
        0x4c, 0x01, 0xc0, // add rax, r8
        0x4c, 0x6b, 0xc8, 0x0d, // imul r9, rax, 13
        0x49, 0x31, 0xc9, // xor r9, rcx
        0x4c, 0x89, 0x0c, 0xd6, // mov [rsi+rdx*8], r9
        0x48, 0xff, 0xc2, // inc rdx
        0x81, 0xe2, 0xff, 0x00, 0x00, 0x00, // and edx, 255
        0x49, 0xf7, 0xc1, 0x01, 0x00, 0x00, 0x00, // test r9, 1
        0x74, 0x04, // jz skip
        0x48, 0x83, 0xc0, 0x03, // add rax, 3
        0x48, 0xff, 0xc9, // skip: dec rcx
    ];
    c.extend_from_slice(body);
    let back = -(i8::try_from(body.len() + 2).expect("short loop"));
    c.extend_from_slice(&[0x75, back.to_le_bytes()[0], 0xf4]); // jnz loop; hlt
    c
}

fn main() {
    let iters = std::env::var("SMPSIM_BENCH_ITERS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(300_000u32);
    let mut best = 0.0f64;
    for round in 0..3 {
        let mut mem = FlatMemory::new();
        mem.map(CODE, 0x1000);
        mem.map(DATA, 0x1000);
        mem.write(CODE, &program(iters)).expect("mapped");
        let mut core = OooCore::new(OooConfig::default()).expect("default config is valid");
        core.state_mut(0).rip = CODE;
        core.resume(0);
        let mut port = FixedMem::new(FixedMemConfig::default());
        let t0 = Instant::now();
        let cycles = core.run_until_stopped(&mut mem, &mut port, u64::MAX);
        let secs = t0.elapsed().as_secs_f64();
        assert_eq!(core.take_exit(0), Some(Exit::Halt));
        let n = core.retired(0);
        let mips = n as f64 / secs / 1e6;
        best = best.max(mips);
        println!(
            "round {round}: {n} instructions, {cycles} cycles (IPC {:.2}) in {secs:.3} s = {mips:.2} MIPS",
            core.ipc()
        );
    }
    println!("ooo: {best:.2} simulated MIPS per host thread (best of 3)");
    smt(iters);
}

/// The same loop on two SMT contexts of one core (own code and data).
fn smt(iters: u32) {
    let mut mem = FlatMemory::new();
    let cfg = OooConfig {
        contexts: 2,
        ..OooConfig::default()
    };
    let mut core = OooCore::new(cfg).expect("valid config");
    for c in 0..2u64 {
        // Data 66 KiB apart: 64 KiB would alias in FixedMem's direct-mapped
        // 32 KiB L1 and the contexts would evict each other's lines.
        let (code, data) = (CODE + c * 0x10000, DATA + c * 0x10800);
        mem.map(code, 0x1000);
        mem.map(data, 0x1000);
        let mut prog = program(iters / 2);
        // Point `mov esi, DATA` at this context's data.
        prog[6..10].copy_from_slice(&u32::try_from(data).expect("fits").to_le_bytes());
        mem.write(code, &prog).expect("mapped");
        core.state_mut(c as usize).rip = code;
        core.resume(c as usize);
    }
    let mut port = FixedMem::new(FixedMemConfig::default());
    let t0 = Instant::now();
    let cycles = core.run_until_stopped(&mut mem, &mut port, u64::MAX);
    let secs = t0.elapsed().as_secs_f64();
    let n = core.retired(0) + core.retired(1);
    println!(
        "ooo 2-context SMT: {n} instructions, {cycles} cycles (IPC {:.2}) in {secs:.3} s = {:.2} MIPS",
        core.ipc(),
        n as f64 / secs / 1e6
    );
}
