//! The simulator side: the case in `FlatMemory` through a fresh `FuncCore`.
//!
//! The code page holds the sequence followed by `hlt`; the run ends when the
//! core halts right after the sequence (RIP = end + 1), or at a fault. Every
//! case gets a new core, so no translation survives from one case to the
//! next (all cases share the same code address). The case's x87/SSE
//! state is loaded from its FXSAVE image into `ArchState.fpu`.

use super::fpstate::FpView;
use super::gen::{Assembled, Case};
use super::layout::{CODE_BASE, CODE_SIZE, DATA_BASE, DATA_SIZE};
use super::{FaultInfo, Outcome, RegState};
use smpsim_cores::{ArchState, CpuidModel, Exit, FlatMemory, FuncCore, GuestMemory};

/// Instruction budget of one case: far above any generated sequence (REP
/// iterations count one each).
const MAX_INSNS: u64 = 100_000;

/// Pseudo-vector reported when the simulator stops somewhere other than
/// the end of the sequence or a fault (budget exhausted, stray `syscall`,
/// halt elsewhere): never equal to a native outcome.
pub const SIM_LOST: u8 = 0xFF;

/// The CPUID model cases run with: the default one with the host's
/// vendor, so that where the architecture leaves implementations a choice
/// ([`smpsim_cores::translate::Quirks`]) the simulator makes the host's.
pub fn host_model() -> CpuidModel {
    CpuidModel {
        vendor: super::host_vendor(),
        ..CpuidModel::default()
    }
}

/// Runs `case` (whose code is `asm`) in the functional core of `model`
/// ([`host_model`]).
pub fn run(case: &Case, asm: &Assembled, model: &CpuidModel) -> Outcome {
    let mut mem = FlatMemory::new();
    mem.map(CODE_BASE, CODE_SIZE as u64);
    mem.map(DATA_BASE, DATA_SIZE as u64);
    let end = CODE_BASE + asm.bytes.len() as u64;
    mem.write(CODE_BASE, &asm.bytes)
        .expect("code page is mapped");
    mem.write(end, &[0xF4]).expect("code page is mapped"); // hlt
    mem.write(DATA_BASE, &case.data)
        .expect("data region is mapped");
    let mut st = ArchState {
        gpr: case.init.gpr,
        rip: CODE_BASE,
        rflags: case.init.rflags,
        fs_base: case.init.fs_base,
        gs_base: case.init.gs_base,
        fsgsbase: true,
        ..ArchState::default()
    };
    st.fpu
        .load_fxsave(&case.fx)
        .expect("the generator's MXCSR is valid");
    let mut core = FuncCore::new(model.clone());
    let exit = core.run(&mut st, &mut mem, MAX_INSNS);
    let fault = match exit {
        Exit::Halt if st.rip == end + 1 => None,
        Exit::Fault(f) => Some(FaultInfo {
            vector: f.vector,
            rip: f.rip,
        }),
        _ => Some(FaultInfo {
            vector: SIM_LOST,
            rip: st.rip,
        }),
    };
    let mut data = vec![0u8; DATA_SIZE];
    mem.read(DATA_BASE, &mut data)
        .expect("data region is mapped");
    let regs = RegState {
        gpr: st.gpr,
        rflags: st.rflags,
        fs_base: st.fs_base,
        gs_base: st.gs_base,
    };
    Outcome::Ran {
        regs,
        data,
        fault,
        fp: Box::new(FpView::of(&st.fpu)),
    }
}
