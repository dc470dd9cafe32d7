//! The out-of-order core: architectural results against the functional
//! core, exits, stop/resume, and the microbenchmarks (`ubench-*`) that
//! check the timing model against what its configuration says.
//!
//! Microbenchmark machine: [`OooConfig::default`] (4-wide fetch, dispatch,
//! issue and commit; 4 ALUs, 1 multiplier of latency 3, 2 load ports;
//! 128-entry ROB) and [`FixedMemConfig::default`] (L1 hit 4 cycles, miss
//! 200 cycles, 10 MSHRs).

use iced_x86::code_asm::*;
use smpsim_cores::ooo::{
    FetchPolicy, FixedMem, FixedMemConfig, MemPort, OooConfig, OooCore, PortAccess, Retiring,
    Verdict,
};
use smpsim_cores::{ArchState, CpuidModel, Exit, FlatMemory, FuncCore, GuestMemory};

const CODE: u64 = 0x40_0000;
const DATA: u64 = 0x100_0000;
const STACK: u64 = 0x80_0000;

type Asm = Result<CodeAssembler, IcedError>;

fn assemble(a: Asm) -> Vec<u8> {
    a.and_then(|mut a| a.assemble(CODE)).expect("assembles")
}

fn memory(code: &[(u64, Vec<u8>)]) -> FlatMemory {
    let mut m = FlatMemory::new();
    for (at, bytes) in code {
        m.map(*at, bytes.len() as u64 + 16);
        m.write(*at, bytes).expect("mapped");
    }
    m.map(STACK - 0x10000, 0x20000);
    m.map(DATA, 4 << 20);
    m
}

fn start(core: &mut OooCore, c: usize, rip: u64) {
    let st = core.state_mut(c);
    *st = ArchState::default();
    st.rip = rip;
    st.gpr[4] = STACK - 0x1000 * c as u64;
    core.resume(c);
}

/// Runs `code` on one context to its exit; returns the core and memory.
fn run1(
    cfg: OooConfig,
    code: Vec<u8>,
    prep: impl FnOnce(&mut FlatMemory),
) -> (OooCore, FlatMemory) {
    let mut mem = memory(&[(CODE, code)]);
    prep(&mut mem);
    let mut core = OooCore::new(cfg).expect("valid config");
    start(&mut core, 0, CODE);
    let mut port = FixedMem::new(FixedMemConfig::default());
    core.run_until_stopped(&mut mem, &mut port, 50_000_000);
    assert!(!core.is_running(0), "program finished");
    (core, mem)
}

fn counter(core: &OooCore, name: &str) -> u64 {
    core.stats()
        .counter_by_name(name)
        .expect("declared counter")
}

fn cycles(core: &OooCore) -> u64 {
    counter(core, "ooo.cycles")
}

/// A loop of `iters` iterations around `body`, then hlt.
fn looped(iters: u64, body: impl Fn(&mut CodeAssembler) -> Result<(), IcedError>) -> Vec<u8> {
    assemble((|| {
        let mut a = CodeAssembler::new(64)?;
        let mut top = a.create_label();
        a.mov(rcx, iters)?;
        a.mov(rsi, DATA)?;
        a.set_label(&mut top)?;
        body(&mut a)?;
        a.dec(rcx)?;
        a.jnz(top)?;
        a.hlt()?;
        Ok(a)
    })())
}

// ---------------------------------------------------------------- results

/// A loop mixing loads, stores, ALU, imul, a data-dependent branch, calls
/// and returns (the functional benchmark's loop plus a call).
fn mixed(iters: u64) -> Vec<u8> {
    mixed_at(iters, DATA)
}

fn mixed_at(iters: u64, data: u64) -> Vec<u8> {
    assemble((|| {
        let mut a = CodeAssembler::new(64)?;
        let (mut top, mut skip, mut func, mut done) = (
            a.create_label(),
            a.create_label(),
            a.create_label(),
            a.create_label(),
        );
        a.mov(rcx, iters)?;
        a.mov(rsi, data)?;
        a.xor(eax, eax)?;
        a.xor(edx, edx)?;
        a.set_label(&mut top)?;
        a.mov(r8, qword_ptr(rsi + rdx * 8))?;
        a.add(rax, r8)?;
        a.imul_3(r9, rax, 13)?;
        a.xor(r9, rcx)?;
        a.mov(qword_ptr(rsi + rdx * 8), r9)?;
        a.inc(rdx)?;
        a.and(edx, 255)?;
        a.test(r9, 1)?;
        a.jz(skip)?;
        a.call(func)?;
        a.set_label(&mut skip)?;
        a.dec(rcx)?;
        a.jnz(top)?;
        a.jmp(done)?;
        a.set_label(&mut func)?;
        a.push(rax)?;
        a.add(qword_ptr(rsi + 2048), 3)?;
        a.pop(rax)?;
        a.add(rax, 3)?;
        a.ret()?;
        a.set_label(&mut done)?;
        a.hlt()?;
        Ok(a)
    })())
}

fn functional(code: &[u8]) -> (ArchState, FlatMemory, u64) {
    let mut mem = memory(&[(CODE, code.to_vec())]);
    let mut st = ArchState {
        rip: CODE,
        ..ArchState::default()
    };
    st.gpr[4] = STACK;
    let mut f = FuncCore::new(CpuidModel::default());
    assert_eq!(f.run(&mut st, &mut mem, u64::MAX), Exit::Halt);
    (st, mem, f.stats().instructions)
}

#[test]
fn ooo_results_equal_the_functional_core() {
    let code = mixed(3000);
    let (want, mut want_mem, n) = functional(&code);
    let (mut core, mut mem) = run1(OooConfig::default(), code, |_| {});
    assert_eq!(core.take_exit(0), Some(Exit::Halt));
    assert_eq!(core.state(0), &want);
    assert_eq!(core.retired(0), n);
    let mut a = vec![0u8; 4096];
    let mut b = vec![0u8; 4096];
    mem.read(DATA, &mut a).expect("mapped");
    want_mem.read(DATA, &mut b).expect("mapped");
    assert_eq!(a, b);
    // The loop's branch is data-dependent, so some mispredicts happened and
    // the squashes did not disturb results.
    assert!(counter(&core, "ooo.mispredict.cond") > 10);
    assert!(counter(&core, "ooo.squashed_uops") > 0);
    assert_eq!(counter(&core, "ooo.insns"), n);
}

#[test]
fn ooo_fault_is_precise_and_stops_the_context() {
    let code = assemble((|| {
        let mut a = CodeAssembler::new(64)?;
        a.mov(eax, 7)?;
        a.mov(rbx, 0x7000_0000u64)?;
        a.mov(rcx, qword_ptr(rbx))?; // unmapped
        a.mov(eax, 9)?;
        a.hlt()?;
        Ok(a)
    })());
    let (mut core, _) = run1(OooConfig::default(), code, |_| {});
    match core.take_exit(0) {
        Some(Exit::Fault(f)) => {
            assert_eq!((f.vector, f.addr), (14, 0x7000_0000));
            assert_eq!(f.rip, CODE + 15, "mov eax (5) + mov rbx, imm64 (10)");
        }
        e => panic!("expected #PF, got {e:?}"),
    }
    assert_eq!(core.state(0).gpr[0], 7, "nothing after the fault ran");
    assert_eq!(core.state(0).rip, CODE + 15);
    assert_eq!(core.retired(0), 2);
}

#[test]
fn ooo_stop_and_resume_at_an_instruction_boundary() {
    let code = mixed(500);
    let (want, _, n) = functional(&code);
    let mut mem = memory(&[(CODE, code.clone())]);
    let mut core = OooCore::new(OooConfig::default()).expect("valid");
    start(&mut core, 0, CODE);
    let mut port = FixedMem::new(FixedMemConfig::default());
    core.run_to(&mut mem, &mut port, 2000);
    assert_eq!(core.now(), 2000);
    core.request_stop(0);
    core.run_until_stopped(&mut mem, &mut port, 100_000);
    assert_eq!(core.take_exit(0), Some(Exit::InsnLimit));
    let k = core.retired(0);
    assert!(k > 100 && k < n, "stopped mid-run after {k} instructions");
    // The stopped state is exactly the functional state after k instructions.
    let mut fmem = memory(&[(CODE, code)]);
    let mut st = ArchState {
        rip: CODE,
        ..ArchState::default()
    };
    st.gpr[4] = STACK;
    let mut f = FuncCore::new(CpuidModel::default());
    f.run(&mut st, &mut fmem, k);
    assert_eq!(core.state(0), &st);
    // Redirect like an upcall would (here: to the same RIP), resume, finish.
    core.state_mut(0).rip = st.rip;
    core.resume(0);
    core.run_until_stopped(&mut mem, &mut port, 10_000_000);
    assert_eq!(core.take_exit(0), Some(Exit::Halt));
    assert_eq!(core.state(0), &want);
}

#[test]
fn ooo_syscall_exit_then_resume() {
    let code = assemble((|| {
        let mut a = CodeAssembler::new(64)?;
        a.mov(eax, 1)?;
        a.syscall()?;
        a.add(eax, 2)?;
        a.hlt()?;
        Ok(a)
    })());
    let mut mem = memory(&[(CODE, code)]);
    let mut core = OooCore::new(OooConfig::default()).expect("valid");
    start(&mut core, 0, CODE);
    let mut port = FixedMem::new(FixedMemConfig::default());
    core.run_until_stopped(&mut mem, &mut port, 10_000);
    assert_eq!(core.take_exit(0), Some(Exit::Syscall));
    assert_eq!(core.state(0).rip, CODE + 7);
    core.state_mut(0).gpr[0] = 40; // the hypervisor's return value
    core.resume(0);
    core.run_until_stopped(&mut mem, &mut port, 10_000);
    assert_eq!(core.take_exit(0), Some(Exit::Halt));
    assert_eq!(core.state(0).gpr[0], 42);
}

fn data_of(m: &mut FlatMemory, at: u64) -> Vec<u8> {
    let mut v = vec![0u8; 4096];
    m.read(at, &mut v).expect("mapped");
    v
}

/// Two contexts run different copies (own code, own data) at once; each
/// ends exactly as the functional core ends it alone.
#[test]
fn ooo_smt_contexts_each_match_the_functional_core() {
    let (code0, code1) = (mixed_at(1500, DATA), mixed_at(900, DATA + 0x10000));
    let (want0, mut wmem0, n0) = functional(&code0);
    let at1 = CODE + 0x10000;
    let mut mem = memory(&[(CODE, code0), (at1, code1.clone())]);
    let cfg = OooConfig {
        contexts: 2,
        ..OooConfig::default()
    };
    let mut core = OooCore::new(cfg).expect("valid");
    start(&mut core, 0, CODE);
    start(&mut core, 1, at1);
    let mut port = FixedMem::new(FixedMemConfig::default());
    core.run_until_stopped(&mut mem, &mut port, 10_000_000);
    assert_eq!(core.take_exit(0), Some(Exit::Halt));
    assert_eq!(core.take_exit(1), Some(Exit::Halt));
    assert_eq!(core.state(0), &want0);
    assert_eq!(core.retired(0), n0);
    assert_eq!(data_of(&mut mem, DATA), data_of(&mut wmem0, DATA));
    // Context 1 against the functional core run from the same start.
    let mut fmem = memory(&[(at1, code1)]);
    let mut st = ArchState {
        rip: at1,
        ..ArchState::default()
    };
    st.gpr[4] = STACK - 0x1000;
    let mut f = FuncCore::new(CpuidModel::default());
    assert_eq!(f.run(&mut st, &mut fmem, u64::MAX), Exit::Halt);
    assert_eq!(core.state(1), &st);
    assert_eq!(
        data_of(&mut mem, DATA + 0x10000),
        data_of(&mut fmem, DATA + 0x10000)
    );
}

/// A store whose address comes late (behind an imul chain) and a younger
/// load of the same bytes whose address is ready at once: with
/// memory-dependence speculation the load issues first, the store finds
/// the violation, the load's instruction is squashed and replayed; results
/// stay exact. Without the alias predictor that repeats every iteration;
/// with it, once. Without speculation nothing is replayed.
#[test]
fn ooo_memory_order_violation_replays_and_stays_exact() {
    let iters = 300;
    let code = looped(iters, |a| {
        a.mov(rbx, rsi)?;
        for _ in 0..3 {
            a.imul_3(rbx, rbx, 1)?;
        }
        a.mov(qword_ptr(rbx + 16), rcx)?;
        a.mov(rax, qword_ptr(rsi + 16))?;
        a.add(rdx, rax)?;
        Ok(())
    });
    let (want, _, n) = functional(&code);
    let no_predictor = OooConfig {
        alias_predictor: 0,
        ..OooConfig::default()
    };
    let (spec, _) = run1(no_predictor, code.clone(), |_| {});
    assert_eq!(spec.state(0), &want);
    assert_eq!(spec.retired(0), n);
    let v = counter(&spec, "ooo.mem_violations");
    assert!(v >= iters / 2, "{v} violations in {iters} iterations");
    // The alias predictor learns the load after its first violation.
    let (pred, _) = run1(OooConfig::default(), code.clone(), |_| {});
    assert_eq!(pred.state(0), &want);
    assert_eq!(counter(&pred, "ooo.mem_violations"), 1);
    assert!(cycles(&pred) < cycles(&spec));
    let cfg = OooConfig {
        mem_dep_speculation: false,
        ..OooConfig::default()
    };
    let (safe, _) = run1(cfg, code, |_| {});
    assert_eq!(safe.state(0), &want);
    assert_eq!(counter(&safe, "ooo.mem_violations"), 0);
    assert!(counter(&safe, "ooo.stlf") >= iters - 1);
}

/// Eight contexts with statically partitioned queues (8 IQ, 6 LQ, 4 SQ
/// entries each; 160 rename registers beyond the committed state) run the same loop on their own stacks; all finish with
/// the functional result, and the shared back end reaches a higher IPC
/// than one context alone.
#[test]
fn ooo_eight_contexts_static_partition() {
    let code = mixed_at(200, DATA);
    let (want, _, n) = functional(&code);
    let mut mem = memory(&[(CODE, code.clone())]);
    let cfg = OooConfig {
        contexts: 8,
        static_partition: true,
        phys_regs: 8 * 32 + 160,
        ..OooConfig::default()
    };
    let mut core = OooCore::new(cfg).expect("valid");
    // Contexts share the code and the data array: only context 0's data
    // result is comparable, so the others run the same loop on copies.
    for c in 0..8 {
        let at = CODE + 0x10000 * c as u64;
        let copy = mixed_at(200, DATA + 0x10000 * c as u64);
        mem.map(at, 0x1000);
        mem.write(at, &copy).expect("mapped");
        start(&mut core, c, at);
    }
    let mut port = FixedMem::new(FixedMemConfig::default());
    core.run_until_stopped(&mut mem, &mut port, 10_000_000);
    for c in 0..8 {
        assert_eq!(core.take_exit(c), Some(Exit::Halt), "context {c}");
        assert_eq!(core.retired(c), n, "context {c}");
    }
    assert_eq!(core.state(0), &want);
    let (one, _) = run1(OooConfig::default(), code, |_| {});
    assert!(
        core.ipc() > one.ipc(),
        "8 contexts {:.2} vs 1 {:.2}",
        core.ipc(),
        one.ipc()
    );
}

/// A port whose I-side misses (`latency` cycles) on the first fetch of
/// each line; the data side is a [`FixedMem`].
struct ColdICache {
    data: FixedMem,
    seen: std::collections::BTreeSet<u64>,
    latency: u64,
}

impl MemPort for ColdICache {
    fn load(&mut self, now: u64, ctx: usize, addr: u64, size: u8) -> PortAccess {
        self.data.load(now, ctx, addr, size)
    }
    fn store(&mut self, now: u64, ctx: usize, addr: u64, size: u8, value: u64) -> bool {
        self.data.store(now, ctx, addr, size, value)
    }
    fn take_completions(&mut self, out: &mut Vec<(u32, u64)>) {
        self.data.take_completions(out)
    }
    fn fetch(&mut self, now: u64, _ctx: usize, addr: u64) -> PortAccess {
        let lat = if self.seen.insert(addr / 64) {
            self.latency
        } else {
            0
        };
        PortAccess::Done { ready: now + lat }
    }
}

/// Straight-line code of 400 four-byte adds and hlt (26 lines): with a cold
/// I-cache of 100 cycles, each new line stalls fetch 100 − 4 (hidden)
/// cycles, so the run is 26 × 96 = 2496 cycles longer (tolerance ±5%:
/// lines also overlap with back-end drain at the end).
#[test]
fn ooo_icache_misses_stall_fetch() {
    let code = assemble((|| {
        let mut a = CodeAssembler::new(64)?;
        for i in 0..400 {
            a.add([r8, r9, r10, r11][i % 4], 1)?;
        }
        a.hlt()?;
        Ok(a)
    })());
    assert_eq!(code.len(), 1601);
    let run = |latency| {
        let mut mem = memory(&[(CODE, code.clone())]);
        let mut core = OooCore::new(OooConfig::default()).expect("valid");
        start(&mut core, 0, CODE);
        let mut port = ColdICache {
            data: FixedMem::new(FixedMemConfig::default()),
            seen: Default::default(),
            latency,
        };
        core.run_until_stopped(&mut mem, &mut port, 1_000_000);
        assert_eq!(core.take_exit(0), Some(Exit::Halt));
        (cycles(&core), counter(&core, "ooo.icache_stalls"))
    };
    let (warm, s0) = run(0);
    let (cold, s1) = run(100);
    assert_eq!((s0, s1), (0, 26), "26 lines hold 1601 bytes");
    let extra = (cold - warm) as f64;
    assert!(
        (26.0 * 96.0 * 0.95..=26.0 * 96.0 * 1.05).contains(&extra),
        "extra {extra}"
    );
}

/// A store, a fence, then a load of another line, per iteration. The
/// fence issues only as the oldest uop (once the store committed) and the
/// load waits for it, so iterations serialise: the next store commits only
/// after this load (L1 hit, 4) and its add (1), i.e. ≥ 5 cycles per
/// iteration, where without the fence iterations overlap (~2 cycles,
/// the loop is 6 instructions on a 4-wide machine).
#[test]
fn ooo_fence_orders_younger_loads() {
    let iters = 2000;
    let body = |fence: bool| {
        looped(iters, move |a| {
            a.mov(qword_ptr(rsi), rcx)?;
            if fence {
                a.mfence()?;
            } else {
                a.nop()?;
            }
            a.mov(rax, qword_ptr(rsi + 64))?;
            a.add(rdx, rax)?;
            Ok(())
        })
    };
    let (plain, _) = run1(OooConfig::default(), body(false), |_| {});
    let (fenced, _) = run1(OooConfig::default(), body(true), |_| {});
    let (p, f) = (
        cycles(&plain) as f64 / iters as f64,
        cycles(&fenced) as f64 / iters as f64,
    );
    eprintln!("fence: {p:.2} vs {f:.2} cycles/iteration");
    assert!(p < 2.5, "without fence: {p:.2} cycles/iteration");
    assert!(
        (5.0..=6.0).contains(&f),
        "with fence: {f:.2} cycles/iteration"
    );
    assert_eq!(plain.state(0).gpr, fenced.state(0).gpr);
}

/// Self-modifying code: the program rewrites the immediate of an
/// instruction it then runs (in a loop, so the old translation was used
/// before); results equal the functional core's.
#[test]
fn ooo_self_modifying_code_is_exact() {
    let code = assemble((|| {
        let mut a = CodeAssembler::new(64)?;
        let mut top = a.create_label();
        a.mov(rcx, 50u64)?;
        a.xor(edx, edx)?;
        a.set_label(&mut top)?;
        a.mov(eax, 1)?; // b8 imm32 at `top`: the imm is rewritten below
        a.add(rdx, rax)?;
        a.lea(rbx, ptr(top))?;
        a.mov(dword_ptr(rbx + 1), ecx)?;
        a.dec(rcx)?;
        a.jnz(top)?;
        a.hlt()?;
        Ok(a)
    })());
    let (want, _, n) = functional(&code);
    let (core, _) = run1(OooConfig::default(), code, |_| {});
    assert_eq!(core.state(0), &want);
    assert_eq!(core.retired(0), n);
    assert_eq!(
        want.gpr[2],
        1 + (2..=50).sum::<u64>(),
        "each pass adds the last patch"
    );
}

/// ICOUNT against round-robin fetch: context 0 chases pointers through
/// missing loads with 12 dependent adds per load (uops that sit in the
/// shared issue queue for a whole miss), context 1 runs independent adds.
/// Round-robin lets context 0 fill the issue queue with stalled uops and
/// starve context 1; ICOUNT fetches for the context with fewer uops
/// queued, so context 1 retires far more in the same cycles (50000).
#[test]
fn icount_fetch_beats_round_robin_for_a_mixed_pair() {
    let chase = looped(1_000_000, |a| {
        a.mov(rsi, qword_ptr(rsi))?;
        for _ in 0..12 {
            a.add(rax, rsi)?;
        }
        Ok(())
    });
    let regs = [r8, r9, r10, r11, r12, r13, r14, r15];
    let alu = looped(1_000_000, |a| {
        for i in 0..16 {
            a.add(regs[i % 8], 1)?;
        }
        Ok(())
    });
    let run = |policy| {
        let at1 = CODE + 0x10000;
        let mut mem = memory(&[(CODE, chase.clone()), (at1, alu.clone())]);
        for i in 0..5_000u64 {
            let at = DATA + i * 64 * 7;
            mem.store(at, 8, at + 64 * 7).expect("mapped");
        }
        let cfg = OooConfig {
            contexts: 2,
            fetch_policy: policy,
            ..OooConfig::default()
        };
        let mut core = OooCore::new(cfg).expect("valid");
        start(&mut core, 0, CODE);
        start(&mut core, 1, at1);
        let mut port = FixedMem::new(FixedMemConfig::default());
        core.run_to(&mut mem, &mut port, 50_000);
        (core.retired(0), core.retired(1))
    };
    let (ic0, ic1) = run(FetchPolicy::Icount);
    let (rr0, rr1) = run(FetchPolicy::RoundRobin);
    eprintln!("icount {ic0} {ic1}, round-robin {rr0} {rr1}");
    // Context 1 alone would run near the width (4): ≥ 3 IPC under ICOUNT;
    // round-robin starves it by an order of magnitude; the chase, bound by
    // memory latency, loses nothing (±5%).
    assert!(
        ic1 >= 150_000,
        "icount: context 1 retired {ic1} in 50000 cycles"
    );
    assert!(rr1 * 10 <= ic1, "icount {ic1} vs round-robin {rr1}");
    assert!(
        ic0 * 100 >= rr0 * 95,
        "chase: icount {ic0}, round-robin {rr0}"
    );
}

/// Same program, same configuration: identical statistics.
#[test]
fn ooo_is_deterministic() {
    let run = || {
        let (core, _) = run1(OooConfig::default(), mixed(400), |_| {});
        let names: Vec<String> = core
            .stats()
            .counter_descs()
            .map(|d| d.name.clone())
            .collect();
        names
            .iter()
            .map(|n| counter(&core, n))
            .collect::<Vec<u64>>()
    };
    assert_eq!(run(), run());
}

// --------------------------------------------------------- microbenchmarks

/// ubench-alu-indep: 32 independent register increments per iteration.
/// Expected IPC: the 4-wide machine's limit, 4 (fetch groups of 4 hold no
/// taken branch except the last of the 34-instruction iteration: 34 / 9
/// fetch cycles = 3.8). Tolerance: ≥ 3.5 (fill, drain, the loop exit
/// mispredict), ≤ 4 (nothing can exceed the width).
#[test]
fn ubench_alu_indep_ipc_near_issue_width() {
    let regs = [r8, r9, r10, r11, r12, r13, r14, r15];
    let code = looped(2000, |a| {
        for i in 0..32 {
            a.add(regs[i % 8], 1)?;
        }
        Ok(())
    });
    let (core, _) = run1(OooConfig::default(), code, |_| {});
    let ipc = core.ipc();
    eprintln!("ubench-alu-indep IPC {ipc:.3}");
    assert!((3.5..=4.0).contains(&ipc), "ubench-alu-indep IPC {ipc:.3}");
}

/// ubench-alu-chain: 30 dependent imuls (latency 3) per iteration. Expected
/// cycles per iteration: 30 × 3 = 90 (the loop counter runs in parallel);
/// tolerance 3%.
#[test]
fn ubench_alu_chain_ipc_is_one_over_latency() {
    let iters = 1000;
    let code = looped(iters, |a| {
        for _ in 0..30 {
            a.imul_2(rax, rax)?;
        }
        Ok(())
    });
    let (core, _) = run1(OooConfig::default(), code, |_| {});
    let per_iter = cycles(&core) as f64 / iters as f64;
    assert!(
        (90.0..=92.7).contains(&per_iter),
        "ubench-alu-chain {per_iter:.2} cycles/iteration"
    );
    let chain_ipc = 30.0 / per_iter;
    eprintln!("ubench-alu-chain {per_iter:.2} cycles/iteration, chain IPC {chain_ipc:.4}");
    assert!(
        (chain_ipc - 1.0 / 3.0).abs() < 0.01,
        "chain IPC {chain_ipc:.4}"
    );
}

/// The same chain with the per-opcode table setting imul to 5 cycles:
/// 150 cycles per iteration (3%); an unknown op name is a config error.
#[test]
fn per_opcode_latency_table_applies() {
    let iters = 300;
    let code = looped(iters, |a| {
        for _ in 0..30 {
            a.imul_2(rax, rax)?;
        }
        Ok(())
    });
    let mut cfg = OooConfig::default();
    cfg.latency.per_op.insert("imul".into(), 5);
    let (core, _) = run1(cfg.clone(), code, |_| {});
    let per_iter = cycles(&core) as f64 / iters as f64;
    assert!(
        (150.0..=154.5).contains(&per_iter),
        "{per_iter:.2} cycles/iteration"
    );
    cfg.latency.per_op.insert("fmul".into(), 5);
    assert!(OooCore::new(cfg).is_err());
}

/// Loop over bytes: load, test, jz over an add. `data` fills the array.
fn branchy(n: u64) -> Vec<u8> {
    looped(n, |a| {
        let mut skip = a.create_label();
        a.movzx(eax, byte_ptr(rsi + rcx))?;
        a.test(eax, 1)?;
        a.jz(skip)?;
        a.add(rdx, 1)?;
        a.set_label(&mut skip)?;
        Ok(())
    })
}

/// ubench-branch: the same loop over random bits and over zeros. Random
/// bits: about half the branches mispredict (tolerance 40–60%), and each
/// mispredict costs at least the front-end refill (`frontend_depth` +
/// `redirect_penalty` = 7 cycles) plus resolution, at most 4× that.
#[test]
fn ubench_branch_mispredict_penalty_visible() {
    let n = 20_000u64;
    let mut x = 0x1234_5678_9abc_def0u64;
    let random: Vec<u8> = (0..=n)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            (x >> 32) as u8
        })
        .collect();
    let (rnd, _) = run1(OooConfig::default(), branchy(n), |m| {
        m.write(DATA, &random).expect("mapped")
    });
    let (zero, _) = run1(OooConfig::default(), branchy(n), |_| {});
    let miss = counter(&rnd, "ooo.mispredict.cond");
    let miss0 = counter(&zero, "ooo.mispredict.cond");
    assert!(
        miss0 <= 5,
        "all-zero data is predictable: {miss0} mispredicts"
    );
    let rate = miss as f64 / n as f64;
    assert!((0.4..=0.6).contains(&rate), "mispredict rate {rate:.3}");
    let penalty = (cycles(&rnd) - cycles(&zero)) as f64 / (miss - miss0) as f64;
    eprintln!(
        "ubench-branch rate {rate:.3}, penalty {penalty:.2}, IPC {:.3} vs {:.3}",
        rnd.ipc(),
        zero.ipc()
    );
    let cfg = OooConfig::default();
    let refill = (cfg.frontend_depth + cfg.redirect_penalty) as f64;
    assert!(
        (refill..=4.0 * refill).contains(&penalty),
        "penalty {penalty:.2} cycles per mispredict"
    );
}

/// ubench-mlp: 4000 loads, each to a new line (misses), independent vs a
/// pointer chase through the same lines. Independent misses overlap up to
/// the 10 MSHRs: ~200 / 10 = 20 cycles per load (tolerance 20–30: MSHR
/// refill is not perfectly pipelined); the chase pays the whole latency
/// each (≥ 200) — at least 7× slower.
#[test]
fn ubench_mlp_independent_misses_overlap() {
    let n = 4000u64;
    let stride = 64 * 7; // a new line each time, spread over sets
    let indep = looped(n, |a| {
        a.mov(rax, qword_ptr(rsi))?;
        a.add(rsi, stride as i32)?;
        Ok(())
    });
    let chase = looped(n, |a| {
        a.mov(rsi, qword_ptr(rsi))?;
        Ok(())
    });
    let link = |m: &mut FlatMemory| {
        for i in 0..=n {
            let at = DATA + i * stride;
            m.store(at, 8, at + stride).expect("mapped");
        }
    };
    let (ci, _) = run1(OooConfig::default(), indep, link);
    let (cc, _) = run1(OooConfig::default(), chase, link);
    let per_i = cycles(&ci) as f64 / n as f64;
    let per_c = cycles(&cc) as f64 / n as f64;
    eprintln!("ubench-mlp independent {per_i:.1} chase {per_c:.1} cycles/load");
    assert!(
        (20.0..=30.0).contains(&per_i),
        "independent: {per_i:.1} cycles/load"
    );
    assert!(per_c >= 200.0, "chase: {per_c:.1} cycles/load");
    assert!(per_c / per_i >= 7.0, "MLP speedup {:.1}", per_c / per_i);
}

/// ubench-stlf: a value carried through memory (store, reload, add) each
/// iteration. Every reload forwards from the store; the loop-carried chain
/// is store data → forward (2) → add (1): 3 cycles per iteration
/// (tolerance 3–4), far below the 4-cycle L1 path it would otherwise take.
#[test]
fn ubench_stlf_forwards_every_reload() {
    let n = 5000u64;
    let code = looped(n, |a| {
        a.mov(qword_ptr(rsi + 8), rax)?;
        a.mov(rax, qword_ptr(rsi + 8))?;
        a.add(rax, 1)?;
        Ok(())
    });
    let (core, _) = run1(OooConfig::default(), code, |_| {});
    assert_eq!(core.state(0).gpr[0], n);
    let fwd = counter(&core, "ooo.stlf");
    assert!(fwd >= n - 2 && fwd <= n, "{fwd} forwarded loads of {n}");
    let per = cycles(&core) as f64 / n as f64;
    eprintln!("ubench-stlf {per:.2} cycles/iteration, {fwd} forwarded");
    assert!((3.0..=4.0).contains(&per), "{per:.2} cycles/iteration");
    assert_eq!(counter(&core, "ooo.mem_violations"), 0);
}

/// ubench-smt: a latency-bound loop (a 3-cycle imul chain) on one context,
/// then two copies on two contexts of one core. The chain leaves the back
/// end mostly idle, so two contexts retire about twice the instructions
/// per cycle (tolerance: ≥ 1.8×).
#[test]
fn ubench_smt_two_contexts_beat_one() {
    let iters = 1000;
    let prog = |at: u64| {
        let code = looped(iters, |a| {
            for _ in 0..10 {
                a.imul_2(rax, rax)?;
            }
            Ok(())
        });
        (at, code)
    };
    // The code is position-dependent only through rel jumps: same bytes.
    let one = {
        let mut mem = memory(&[prog(CODE)]);
        let mut core = OooCore::new(OooConfig::default()).expect("valid");
        start(&mut core, 0, CODE);
        let mut port = FixedMem::new(FixedMemConfig::default());
        core.run_until_stopped(&mut mem, &mut port, 10_000_000);
        core.ipc()
    };
    let two = {
        let mut mem = memory(&[prog(CODE)]);
        let cfg = OooConfig {
            contexts: 2,
            ..OooConfig::default()
        };
        let mut core = OooCore::new(cfg).expect("valid");
        start(&mut core, 0, CODE);
        start(&mut core, 1, CODE);
        let mut port = FixedMem::new(FixedMemConfig::default());
        core.run_until_stopped(&mut mem, &mut port, 10_000_000);
        assert_eq!(core.take_exit(0), Some(Exit::Halt));
        assert_eq!(core.take_exit(1), Some(Exit::Halt));
        assert_eq!(core.retired(0), core.retired(1));
        core.ipc()
    };
    eprintln!("ubench-smt one context IPC {one:.3}, two {two:.3}");
    assert!(
        two >= 1.8 * one,
        "SMT: one context IPC {one:.3}, two {two:.3}"
    );
}

/// A port whose commit hook overrides one instruction's outcome (as the
/// whole machine does when its commit-time execution disagrees with the
/// oracle) and makes another wait a few cycles.
struct Overriding {
    data: FixedMem,
    /// RIP whose outcome is replaced, and the state after it.
    at: u64,
    truth: ArchState,
    /// RIP that waits `waits` more times before it may retire.
    slow: u64,
    waits: u32,
    seen: Vec<u64>,
}

impl MemPort for Overriding {
    fn load(&mut self, now: u64, ctx: usize, addr: u64, size: u8) -> PortAccess {
        self.data.load(now, ctx, addr, size)
    }
    fn store(&mut self, now: u64, ctx: usize, addr: u64, size: u8, value: u64) -> bool {
        self.data.store(now, ctx, addr, size, value)
    }
    fn take_completions(&mut self, out: &mut Vec<(u32, u64)>) {
        self.data.take_completions(out)
    }
    fn retire(&mut self, _now: u64, _ctx: usize, r: &Retiring<'_>) -> Verdict {
        if r.rip == self.slow && self.waits > 0 {
            self.waits -= 1;
            return Verdict::Wait;
        }
        self.seen.push(r.rip);
        if r.rip == self.at {
            return Verdict::Diverged(Box::new(self.truth.clone()), None);
        }
        Verdict::Agree
    }
}

#[test]
fn ooo_commit_hook_divergence_restarts_from_the_committed_state() {
    // mov eax, 1; mov ebx, 2; add eax, ebx; add eax, eax; hlt
    let code = assemble(CodeAssembler::new(64).and_then(|mut a| {
        a.mov(eax, 1)?;
        a.mov(ebx, 2)?;
        a.add(eax, ebx)?;
        a.add(eax, eax)?;
        a.hlt()?;
        Ok(a)
    }));
    let mut mem = memory(&[(CODE, code)]);
    let mut core = OooCore::new(OooConfig::default()).expect("valid config");
    start(&mut core, 0, CODE);
    // The hook says `mov ebx, 2` really left rbx = 100 (and rax = 1).
    let mut truth = core.state(0).clone();
    truth.gpr[0] = 1;
    truth.gpr[3] = 100;
    truth.rip = CODE + 10;
    let mut port = Overriding {
        data: FixedMem::new(FixedMemConfig::default()),
        at: CODE + 5,
        truth,
        slow: CODE + 10,
        waits: 7,
        seen: Vec::new(),
    };
    core.run_until_stopped(&mut mem, &mut port, 10_000);
    assert_eq!(core.take_exit(0), Some(Exit::Halt));
    assert_eq!(
        core.state(0).gpr[0],
        202,
        "(1 + 100) * 2 from the hook's state"
    );
    assert_eq!(core.state(0).gpr[3], 100);
    assert_eq!(core.retired(0), 5);
    assert_eq!(counter(&core, "ooo.diverged"), 1);
    assert_eq!(counter(&core, "ooo.stall.commit_wait"), 7);
    // Every instruction retired once, in order, through the hook.
    let want: Vec<u64> = [0, 5, 10, 12, 14].iter().map(|o| CODE + o).collect();
    assert_eq!(port.seen, want);
}

// ---------------------------------------------------------------- checkpoints

/// The serialized form of a core's statistics (compares every counter and
/// histogram bucket).
fn stats_bytes(core: &OooCore) -> Vec<u8> {
    postcard::to_allocvec(core.stats()).expect("stats serialize")
}

#[test]
fn ooo_core_restored_mid_run_continues_cycle_for_cycle() {
    let mut mem = memory(&[(CODE, mixed(3000))]);
    let mut core = OooCore::new(OooConfig::default()).expect("valid config");
    start(&mut core, 0, CODE);
    let mut port = FixedMem::new(FixedMemConfig::default());
    core.run_to(&mut mem, &mut port, 5_000);
    assert!(core.is_running(0), "stopped part way");
    let bytes = postcard::to_allocvec(&core).expect("core serializes");
    eprintln!("OooCore serialized: {} bytes", bytes.len());
    let mut copy: OooCore = postcard::from_bytes(&bytes).expect("core deserializes");
    let (mut mem2, mut port2) = (mem.clone(), port.clone());
    for end in [20_000, 50_000_000] {
        let a = core.run_until_stopped(&mut mem, &mut port, end - core.now());
        let b = copy.run_until_stopped(&mut mem2, &mut port2, end - copy.now());
        assert_eq!(a, b, "cycles run");
        assert_eq!(core.now(), copy.now());
        assert_eq!(core.state(0), copy.state(0), "committed registers");
        assert_eq!(core.retired(0), copy.retired(0));
        assert_eq!(stats_bytes(&core), stats_bytes(&copy), "stats");
    }
    assert!(!core.is_running(0), "program finished");
    assert_eq!(core.take_exit(0), copy.take_exit(0));
    assert_eq!(data_of(&mut mem, DATA), data_of(&mut mem2, DATA));
}

#[test]
fn func_core_restored_mid_run_retranslates_with_the_same_results() {
    let mut mem = memory(&[(CODE, mixed(3000))]);
    let mut core = FuncCore::new(CpuidModel::default());
    let mut st = ArchState {
        rip: CODE,
        ..ArchState::default()
    };
    st.gpr[4] = STACK - 0x1000;
    assert_eq!(core.run(&mut st, &mut mem, 10_000), Exit::InsnLimit);
    let bytes = postcard::to_allocvec(&(&core, &st)).expect("core serializes");
    eprintln!("FuncCore + ArchState serialized: {} bytes", bytes.len());
    let (mut copy, mut copy_st): (FuncCore, ArchState) =
        postcard::from_bytes(&bytes).expect("core deserializes");
    let before = core.stats().cache.translations;
    assert_eq!(copy.stats().cache.translations, before, "counters saved");
    let mut mem2 = mem.clone();
    let a = core.run(&mut st, &mut mem, 1 << 30);
    let b = copy.run(&mut copy_st, &mut mem2, 1 << 30);
    assert_eq!((a, &st, core.cycles()), (b, &copy_st, copy.cycles()));
    assert_eq!(core.stats().instructions, copy.stats().instructions);
    assert!(
        copy.stats().cache.translations > before,
        "the copy retranslated"
    );
    assert_eq!(data_of(&mut mem, DATA), data_of(&mut mem2, DATA));
}

/// The FP units: 24 independent `addps` per iteration (FpAdd, latency 3)
/// issue at most `units.fp` per cycle: about 12 cycles per iteration with
/// 2 units, 24 with 1 (5%).
#[test]
fn fp_units_bound_independent_fp_adds() {
    let iters = 500;
    let xmms = [xmm1, xmm2, xmm3, xmm4, xmm5, xmm6, xmm7, xmm8];
    let code = looped(iters, |a| {
        for i in 0..24 {
            a.addps(xmms[i % 8], xmm0)?;
        }
        Ok(())
    });
    for (fp, expect) in [(2usize, 12.0f64), (1, 24.0)] {
        let mut cfg = OooConfig::default();
        cfg.units.fp = fp;
        let (core, _) = run1(cfg, code.clone(), |_| {});
        let per_iter = cycles(&core) as f64 / iters as f64;
        eprintln!("{fp} FP units: {per_iter:.2} cycles/iteration");
        assert!(
            (expect..=expect * 1.05).contains(&per_iter),
            "{fp} FP units: {per_iter:.2} cycles/iteration"
        );
    }
}

/// The FP divider is unpipelined: 8 independent `divps` per iteration take
/// 8 × `latency.fp_div` cycles with one, half with two (5%).
#[test]
fn fp_divider_is_unpipelined() {
    let iters = 100;
    let xmms = [xmm1, xmm2, xmm3, xmm4, xmm5, xmm6, xmm7, xmm8];
    let code = looped(iters, |a| {
        for x in xmms {
            a.divps(x, xmm0)?;
        }
        Ok(())
    });
    let lat = OooConfig::default().latency.fp_div as f64;
    for (units, expect) in [(1usize, 8.0 * lat), (2, 4.0 * lat)] {
        let mut cfg = OooConfig::default();
        cfg.units.fp_div = units;
        let (core, _) = run1(cfg, code.clone(), |_| {});
        let per_iter = cycles(&core) as f64 / iters as f64;
        assert!(
            (expect..=expect * 1.05).contains(&per_iter),
            "{units} FP dividers: {per_iter:.2} cycles/iteration"
        );
    }
}
