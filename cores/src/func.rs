//! The functional core: translation cache + uop executor + CPUID model +
//! cycle counter. No timing: one cycle per instruction.
//!
//! ```
//! use smpsim_cores::{ArchState, CpuidModel, Exit, FlatMemory, FuncCore, GuestMemory};
//! let mut mem = FlatMemory::new();
//! mem.map(0x1000, 0x1000);
//! // mov eax, 5; add eax, 7; hlt
//! mem.write(0x1000, &[0xb8, 5, 0, 0, 0, 0x83, 0xc0, 7, 0xf4]).unwrap();
//! let mut core = FuncCore::new(CpuidModel::default());
//! let mut st = ArchState { rip: 0x1000, ..ArchState::default() };
//! assert_eq!(core.run(&mut st, &mut mem, 100), Exit::Halt);
//! assert_eq!(st.gpr[0], 12);
//! assert_eq!(st.rip, 0x1009);
//! ```

use crate::arch::{flags, ArchState};
use crate::cache::{AddressSpaceId, CacheStats, TransCache};
use crate::cpuid::CpuidModel;
use crate::exec::{BlockExit, Cpu, Env};
use crate::mem::{GuestMemory, MemStop, PAGE_SIZE};
use crate::translate::{translate_block, Quirks};
use crate::uop::{FLAGS, FSBASE, GSBASE};
use serde::{Deserialize, Serialize};
use std::fmt;

/// A fault raised inside the guest. The state is that before the faulting
/// instruction and `rip` is its address — except for a #DB trap of
/// [`crate::debug`] (single-step, data breakpoint): the state and `rip`
/// are after the instruction that caused it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Fault {
    /// Exception vector: 0 #DE, 3 #BP, 6 #UD, 13 #GP, 14 #PF.
    pub vector: u8,
    /// Address of the faulting instruction.
    pub rip: u64,
    /// For #PF the faulting address (CR2); for a #DB of a debug condition
    /// ([`crate::debug`]) the DR6 bits it sets (never 0; `int1` gives 0);
    /// 0 otherwise.
    pub addr: u64,
    /// The error code pushed with it (#PF's [`crate::paging::pfec`] bits;
    /// 0 for vectors without one).
    pub error_code: u32,
    /// Human-readable report; for #UD the instruction bytes and mnemonic.
    pub detail: String,
}

impl fmt::Display for Fault {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "vector {} at {:#x}: {}",
            self.vector, self.rip, self.detail
        )
    }
}

/// Why [`FuncCore::run`] returned.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Exit {
    /// `max_insns` instructions were executed; RIP is the next one.
    InsnLimit,
    /// A guest fault; RIP is the faulting instruction.
    Fault(Fault),
    /// `hlt` executed; RIP is after it.
    Halt,
    /// `syscall` executed (the hypercall trap); RIP is after it and no
    /// register was changed: the hypervisor does what the instruction would.
    Syscall,
    /// Memory could not serve the instruction now ([`MemStop::Retry`]):
    /// RIP is on it and nothing of it happened; run it again later.
    Retry,
}

/// A memory that paces [`FuncCore::run_paced`]: it hears of every
/// instruction that retires and says when the next one issues.
pub trait Pacer: GuestMemory {
    /// The instruction at `rip` retired normally (a REP iteration counts
    /// one); the next one is at `next`. Returns the cycle counter the next
    /// instruction sees, or `None` to end the run before it.
    fn retired(&mut self, rip: u64, next: u64) -> Option<u64>;
}

/// Counters of a functional core.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct FuncStats {
    /// Instructions retired (a REP iteration counts as one).
    pub instructions: u64,
    /// Translation cache counters.
    pub cache: CacheStats,
}

/// A functional x86-64 core.
///
/// Instruction counting: every instruction counts one, and a REP string
/// instruction counts one per iteration (one if it runs no iteration), so a
/// long REP can be interrupted between iterations with RIP still on it.
///
/// Serializable for checkpoints: registers, CPUID model, address space and
/// counters are saved; the translation cache is not (a restored core
/// retranslates on demand, with the same results; see [`crate::cache`]).
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct FuncCore {
    cpu: Cpu,
    cache: TransCache,
    cpuid: CpuidModel,
    asid: AddressSpaceId,
    cycles: u64,
    retired: u64,
}

impl FuncCore {
    /// A core with an empty translation cache and cycle counter 0.
    pub fn new(cpuid: CpuidModel) -> Self {
        Self {
            cpu: Cpu::new(),
            cache: TransCache::new(),
            cpuid,
            asid: AddressSpaceId(0),
            cycles: 0,
            retired: 0,
        }
    }

    /// The cycle counter `rdtsc` reads.
    pub fn cycles(&self) -> u64 {
        self.cycles
    }

    /// Sets the cycle counter (timing models drive it; functional mode adds
    /// one per instruction).
    pub fn set_cycles(&mut self, c: u64) {
        self.cycles = c;
    }

    /// The address space translations are looked up in.
    pub fn address_space(&self) -> AddressSpaceId {
        self.asid
    }

    /// Switches address space (e.g. on a guest page-table switch).
    pub fn set_address_space(&mut self, asid: AddressSpaceId) {
        self.asid = asid;
    }

    /// The CPUID model.
    pub fn cpuid(&self) -> &CpuidModel {
        &self.cpuid
    }

    /// Drops translations of the page holding `vaddr` (for writers other
    /// than this core: other cores, the hypervisor, DMA). Returns how many.
    pub fn invalidate_code(&mut self, vaddr: u64) -> usize {
        self.cache.invalidate_page(vaddr / PAGE_SIZE)
    }

    /// Drops every translation.
    pub fn flush_translations(&mut self) {
        self.cache.flush();
    }

    /// Instructions the last plain run executed.
    pub(crate) fn last_executed(&self) -> u64 {
        self.cpu.executed
    }

    /// Counters so far.
    pub fn stats(&self) -> FuncStats {
        FuncStats {
            instructions: self.retired,
            cache: self.cache.stats(),
        }
    }

    fn load_state(&mut self, st: &ArchState) {
        self.cpu.r[..16].copy_from_slice(&st.gpr);
        self.cpu.r[usize::from(FLAGS)] = st.rflags | flags::FIXED1;
        self.cpu.r[usize::from(FSBASE)] = st.fs_base;
        self.cpu.r[usize::from(GSBASE)] = st.gs_base;
        self.cpu.fsgsbase = st.fsgsbase;
    }

    fn store_state(&self, st: &mut ArchState) {
        st.gpr.copy_from_slice(&self.cpu.r[..16]);
        st.rflags = self.cpu.r[usize::from(FLAGS)];
        st.fs_base = self.cpu.r[usize::from(FSBASE)];
        st.gs_base = self.cpu.r[usize::from(GSBASE)];
    }

    /// Executes up to `max_insns` instructions from `state.rip` (REP
    /// iterations count one each, see the type docs). While
    /// `state.debug` is armed (TF, a breakpoint, a MOV SS shadow) it runs
    /// one instruction at a time under the checks of [`crate::debug`] and
    /// ends with the #DB they raise.
    pub fn run(
        &mut self,
        state: &mut ArchState,
        mem: &mut dyn GuestMemory,
        max_insns: u64,
    ) -> Exit {
        if state.debug.armed(state.rflags) {
            return crate::debug::run_armed(self, state, mem, max_insns);
        }
        let exit = self.run_plain(state, mem, max_insns);
        if self.cpu.executed < max_insns && matches!(exit, Exit::InsnLimit) {
            // `popf` set TF: single-step from the next instruction.
            let left = max_insns - self.cpu.executed;
            return crate::debug::run_armed(self, state, mem, left);
        }
        exit
    }

    /// Runs from `state.rip` one instruction at a time, exactly as a
    /// series of `run(state, mem, 1)` calls would, with the cycle counter
    /// (what `rdtsc` reads) set before each: to [`Self::cycles`] for the
    /// first, then to what [`Pacer::retired`] returned for the one before.
    /// The run ends when the pacer says so (after a retired instruction:
    /// [`Exit::InsnLimit`]), when the debug checks become armed (`popf` set
    /// TF: [`Exit::InsnLimit`] after that instruction was reported), or
    /// with an instruction that does not retire normally (a fault, `hlt`,
    /// `syscall`, a retry; not reported to the pacer). The registers are
    /// copied in and out once per run, not once per instruction.
    ///
    /// The caller runs armed states through [`Self::run`] instead.
    pub fn run_paced<P: Pacer>(&mut self, state: &mut ArchState, mem: &mut P) -> Exit {
        debug_assert!(
            !state.debug.armed(state.rflags),
            "run_paced on a debug-armed state"
        );
        self.load_state(state);
        let mut rip = state.rip;
        let mut cycles = self.cycles;
        let mut retired = 0u64;
        let exit = loop {
            self.cpu.executed = 0;
            self.cpu.cycle_base = cycles;
            let at = rip;
            let exit = self.run_blocks(&mut rip, mem, 1, &mut state.fpu);
            let n = self.cpu.executed;
            retired += n;
            cycles = cycles.wrapping_add(n);
            if !matches!(exit, Exit::InsnLimit) {
                break exit;
            }
            let next = mem.retired(at, rip);
            if state.debug.armed(self.cpu.r[usize::from(FLAGS)]) {
                break Exit::InsnLimit;
            }
            match next {
                Some(c) => cycles = c,
                None => break Exit::InsnLimit,
            }
        };
        self.cycles = cycles;
        self.retired += retired;
        self.store_state(state);
        state.rip = rip;
        exit
    }

    /// [`Self::run`] without the debug checks ([`crate::debug`]).
    pub(crate) fn run_plain(
        &mut self,
        state: &mut ArchState,
        mem: &mut dyn GuestMemory,
        max_insns: u64,
    ) -> Exit {
        self.load_state(state);
        self.cpu.executed = 0;
        self.cpu.cycle_base = self.cycles;
        let mut rip = state.rip;
        let exit = self.run_blocks(&mut rip, mem, max_insns, &mut state.fpu);
        self.cycles = self.cycles.wrapping_add(self.cpu.executed);
        self.retired += self.cpu.executed;
        self.store_state(state);
        state.rip = rip;
        exit
    }

    #[inline(always)]
    fn run_blocks(
        &mut self,
        rip: &mut u64,
        mem: &mut dyn GuestMemory,
        max: u64,
        fpu: &mut crate::fpu::FpuState,
    ) -> Exit {
        let bounds = mem.wants_boundaries();
        loop {
            // TF set by the run's own `popf` (it started clear, or it runs
            // one instruction under the debug checks) ends it.
            let stepping = self.cpu.r[usize::from(FLAGS)] & flags::TF != 0 && self.cpu.executed > 0;
            if self.cpu.executed >= max || stepping {
                return Exit::InsnLimit;
            }
            let idx = match self.cache.lookup(self.asid, *rip) {
                Some(i) => i,
                None => match translate_block(mem, *rip, Quirks::of(&self.cpuid)) {
                    Ok(b) => self.cache.insert(self.asid, b),
                    Err(MemStop::Retry) => return Exit::Retry,
                    Err(MemStop::Fault(pf)) => {
                        let detail = format!("{pf} (instruction fetch)");
                        return Exit::Fault(Fault {
                            vector: pf.vector(),
                            rip: *rip,
                            addr: pf.addr,
                            error_code: pf.error_code(),
                            detail,
                        });
                    }
                },
            };
            let env = Env {
                cpuid: &self.cpuid,
                code: self.cache.code_pages(),
                max,
                bounds,
            };
            let r = self.cpu.exec_block(self.cache.block(idx), mem, &env, fpu);
            if !self.cpu.smc_pages.is_empty() {
                for p in std::mem::take(&mut self.cpu.smc_pages) {
                    self.cache.invalidate_page(p);
                }
            }
            match r {
                BlockExit::Next(t) => *rip = t,
                BlockExit::Limit(t) => {
                    *rip = t;
                    return Exit::InsnLimit;
                }
                BlockExit::Fault {
                    vector,
                    rip: at,
                    addr,
                    error_code,
                    detail,
                } => {
                    *rip = at;
                    return Exit::Fault(Fault {
                        vector,
                        rip: at,
                        addr,
                        error_code,
                        detail,
                    });
                }
                BlockExit::Hlt(t) => {
                    *rip = t;
                    return Exit::Halt;
                }
                BlockExit::Syscall(t) => {
                    *rip = t;
                    return Exit::Syscall;
                }
                BlockExit::Retry(t) => {
                    *rip = t;
                    return Exit::Retry;
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn core_can_move_to_another_host_thread() {
        fn assert_send<T: Send>() {}
        assert_send::<FuncCore>();
        assert_send::<Exit>();
    }

    /// A pacer over flat memory: records each retired instruction, hands
    /// out made-up cycle counters and stops every `stop_every`th time.
    struct Recorder {
        mem: crate::FlatMemory,
        seen: Vec<(u64, u64)>,
        stop_every: usize,
    }

    impl GuestMemory for Recorder {
        fn read(&mut self, addr: u64, buf: &mut [u8]) -> Result<(), MemStop> {
            self.mem.read(addr, buf)
        }
        fn write(&mut self, addr: u64, data: &[u8]) -> Result<(), MemStop> {
            self.mem.write(addr, data)
        }
    }

    /// The cycle counter the `k`th instruction sees (k from 0).
    fn made_up_cycle(k: usize) -> u64 {
        1000 + 7 * k as u64 + (k as u64 % 3)
    }

    impl Pacer for Recorder {
        fn retired(&mut self, rip: u64, next: u64) -> Option<u64> {
            self.seen.push((rip, next));
            let k = self.seen.len();
            (!k.is_multiple_of(self.stop_every)).then(|| made_up_cycle(k))
        }
    }

    /// Runs `code` with `run_paced` (resumed whenever the pacer stops it)
    /// and as single-instruction `run` calls, and checks both do the same:
    /// registers, memory, exits, cycle counters, the retired sequence.
    fn paced_matches_single_steps(code: &[u8], stop_every: usize) {
        let setup = || {
            let mut mem = crate::FlatMemory::new();
            mem.map(0x1000, 0x1000);
            mem.map(0x8000, 0x1000);
            mem.write(0x1000, code).expect("mapped");
            let st = ArchState {
                rip: 0x1000,
                gpr: {
                    let mut g = [0u64; 16];
                    g[4] = 0x8800; // rsp
                    g[7] = 0x8100; // rdi
                    g
                },
                ..ArchState::default()
            };
            (FuncCore::new(CpuidModel::default()), st, mem)
        };
        // Single steps.
        let (mut core, mut st, mut mem) = setup();
        let mut want = Vec::new();
        let mut want_exits = Vec::new();
        let mut k = 0;
        core.set_cycles(made_up_cycle(0));
        loop {
            let at = st.rip;
            let exit = core.run(&mut st, &mut mem, 1);
            if exit == Exit::InsnLimit {
                want.push((at, st.rip));
                k += 1;
                core.set_cycles(made_up_cycle(k));
                if st.debug.armed(st.rflags) || k > 500 {
                    want_exits.push(exit);
                    break;
                }
                continue;
            }
            want_exits.push(exit);
            break;
        }
        // Paced.
        let (mut pcore, mut pst, mem2) = setup();
        let mut rec = Recorder {
            mem: mem2,
            seen: Vec::new(),
            stop_every,
        };
        pcore.set_cycles(made_up_cycle(0));
        let mut exits = Vec::new();
        loop {
            let exit = pcore.run_paced(&mut pst, &mut rec);
            let k = rec.seen.len();
            if exit == Exit::InsnLimit && !pst.debug.armed(pst.rflags) && k <= 500 {
                // The pacer stopped it: resume with the counter it gave.
                pcore.set_cycles(made_up_cycle(k));
                continue;
            }
            exits.push(exit);
            break;
        }
        assert_eq!(rec.seen, want, "retired sequence");
        assert_eq!(exits, want_exits, "exits");
        assert_eq!(pst.int_regs(), st.int_regs(), "registers");
        assert_eq!(pcore.stats().instructions, core.stats().instructions);
        let mut a = [0u8; 0x100];
        let mut b = [0u8; 0x100];
        mem.read(0x8100, &mut a).expect("mapped");
        rec.mem.read(0x8100, &mut b).expect("mapped");
        assert_eq!(a, b, "memory");
    }

    #[test]
    fn paced_runs_equal_single_steps() {
        // mov ecx, 4; l: rdtsc; mov [rdi], eax; add rdi, 4; dec ecx; jnz l;
        // mov ecx, 3; mov al, 0x5a; rep stosb; xor ecx, ecx; rep stosb;
        // push 7; pop rbx; hlt
        let code = [
            0xb9, 4, 0, 0, 0, 0x0f, 0x31, 0x89, 0x07, 0x48, 0x83, 0xc7, 4, 0xff, 0xc9, 0x75, 0xf4,
            0xb9, 3, 0, 0, 0, 0xb0, 0x5a, 0xf3, 0xaa, 0x31, 0xc9, 0xf3, 0xaa, 0x6a, 7, 0x5b, 0xf4,
        ];
        for stop_every in [1, 2, 3, 5, 1000] {
            paced_matches_single_steps(&code, stop_every);
        }
        // A fault ends the run at the faulting instruction: mov eax, 1;
        // mov [0x3000], eax (unmapped); hlt
        let fault = [0xb8, 1, 0, 0, 0, 0x89, 0x04, 0x25, 0x00, 0x30, 0, 0, 0xf4];
        paced_matches_single_steps(&fault, 1000);
        // popf setting TF: the run ends after it (the debug checks take
        // over). pushfq; or qword [rsp], 0x100; popfq; nop; hlt
        let tf = [
            0x9c, 0x48, 0x81, 0x0c, 0x24, 0x00, 0x01, 0x00, 0x00, 0x9d, 0x90, 0xf4,
        ];
        paced_matches_single_steps(&tf, 1000);
    }

    #[test]
    fn zero_budget_runs_nothing() {
        let mut core = FuncCore::new(CpuidModel::default());
        let mut mem = crate::FlatMemory::new();
        let mut st = ArchState {
            rip: 0x1234,
            ..ArchState::default()
        };
        assert_eq!(core.run(&mut st, &mut mem, 0), Exit::InsnLimit);
        assert_eq!(
            (st.rip, core.cycles(), core.stats().cache.translations),
            (0x1234, 0, 0)
        );
    }

    #[test]
    fn fs_gs_base_instructions_follow_cr4_fsgsbase() {
        // wrfsbase rax; rdgsbase rbx; hlt
        let code = [
            0xf3, 0x48, 0x0f, 0xae, 0xd0, 0xf3, 0x48, 0x0f, 0xae, 0xcb, 0xf4,
        ];
        for on in [true, false] {
            let mut core = FuncCore::new(CpuidModel::default());
            let mut mem = crate::FlatMemory::new();
            mem.map(0x1000, 4096);
            mem.write(0x1000, &code).expect("mapped");
            let mut st = ArchState {
                rip: 0x1000,
                fsgsbase: on,
                gs_base: 0x77,
                ..ArchState::default()
            };
            st.gpr[0] = 0x1234;
            let exit = core.run(&mut st, &mut mem, 10);
            if on {
                assert_eq!(exit, Exit::Halt);
                assert_eq!((st.fs_base, st.gpr[3]), (0x1234, 0x77));
            } else {
                let Exit::Fault(f) = exit else {
                    panic!("{exit:?}")
                };
                assert_eq!(
                    (f.vector, f.rip, st.fs_base),
                    (6, 0x1000, 0),
                    "#UD, nothing done"
                );
            }
        }
    }
}
