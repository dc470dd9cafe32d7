//! Functional-core speed on an FP/SSE mix: simulated MIPS per host thread
//! on a loop of packed-single loads, multiplies, adds and aligned stores, a
//! scalar-double convert/multiply/add chain, a vector integer op and a
//! shuffle (the shapes of the SSE workloads: matmul, nbody, memcpy), through
//! the whole path (translation cache lookup + uop execution, no timing).
//! Compare with the integer loop of `functional.rs`.
//!
//! `cargo bench -p smpsim-cores --bench fp` (`SMPSIM_BENCH_ITERS` shortens
//! it). Without the x87/SSE instruction families (issue 14) the loop stops
//! at its first unsupported instruction: the bench says so and measures
//! nothing.

use iced_x86::code_asm::*;
use smpsim_cores::{ArchState, CpuidModel, Exit, FlatMemory, FuncCore, GuestMemory};
use std::time::Instant;

const CODE: u64 = 0x40_0000;
const SRC: u64 = 0x60_0000;
const DST: u64 = 0x61_0000;

/// The loop: 15 instructions per iteration, 12 of them SSE.
fn program(iters: u32) -> Result<Vec<u8>, IcedError> {
    let mut a = CodeAssembler::new(64)?;
    let mut top = a.create_label();
    a.mov(ecx, iters)?;
    a.mov(esi, SRC as u32)?;
    a.mov(edi, DST as u32)?;
    a.xor(edx, edx)?;
    a.movups(xmm7, xmmword_ptr(rsi + 0x800))?; // 4 × 1.0001
    a.movsd_2(xmm6, qword_ptr(rsi + 0x810))?; // 0.5
    a.set_label(&mut top)?;
    a.movups(xmm0, xmmword_ptr(rsi + rdx))?;
    a.movaps(xmm1, xmmword_ptr(rsi + rdx + 16))?;
    a.mulps(xmm0, xmm7)?;
    a.addps(xmm0, xmm1)?;
    a.movaps(xmmword_ptr(rdi + rdx), xmm0)?;
    a.cvtsi2sd(xmm2, rcx)?;
    a.mulsd(xmm2, xmm6)?;
    a.addsd(xmm5, xmm2)?;
    a.paddd(xmm3, xmm0)?;
    a.shufps(xmm4, xmm0, 0x1b)?;
    a.pxor(xmm4, xmm3)?;
    a.movaps(xmmword_ptr(rdi + rdx + 16), xmm4)?;
    a.add(edx, 32)?;
    a.and(edx, 0x7e0)?;
    a.dec(rcx)?;
    a.jnz(top)?;
    a.hlt()?;
    a.assemble(CODE)
}

fn memory(iters: u32) -> FlatMemory {
    let mut mem = FlatMemory::new();
    mem.map(CODE, 0x1000);
    mem.map(SRC, 0x1000);
    mem.map(DST, 0x1000);
    mem.write(CODE, &program(iters).expect("assembles"))
        .expect("mapped");
    let mut src = Vec::with_capacity(0x820);
    for i in 0..0x200u32 {
        src.extend_from_slice(&(1.0f32 + i as f32 / 512.0).to_le_bytes());
    }
    for _ in 0..4 {
        src.extend_from_slice(&1.0001f32.to_le_bytes());
    }
    src.extend_from_slice(&0.5f64.to_le_bytes());
    mem.write(SRC, &src).expect("mapped");
    mem
}

fn main() {
    let iters = std::env::var("SMPSIM_BENCH_ITERS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(4_000_000u32);
    let mut best = 0.0f64;
    for round in 0..3 {
        let mut mem = memory(iters);
        let mut core = FuncCore::new(CpuidModel::default());
        let mut st = ArchState {
            rip: CODE,
            ..ArchState::default()
        };
        let t0 = Instant::now();
        let exit = core.run(&mut st, &mut mem, u64::MAX);
        let secs = t0.elapsed().as_secs_f64();
        let n = core.stats().instructions;
        if exit != Exit::Halt {
            println!(
                "fp: stopped after {n} instructions at RIP {:#x} with {exit:?}: \
                 this build lacks the x87/SSE families the loop needs (issue 14)",
                st.rip
            );
            return;
        }
        let mips = n as f64 / secs / 1e6;
        best = best.max(mips);
        println!("round {round}: {n} instructions in {secs:.3} s = {mips:.1} MIPS");
    }
    println!("fp: {best:.1} simulated MIPS per host thread on the FP/SSE mix (best of 3)");
}
