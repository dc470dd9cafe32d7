//! Helpers: run a byte sequence in the functional core.

use smpsim_cores::{ArchState, CpuidModel, Exit, FlatMemory, FuncCore, GuestMemory};

/// Where test code is placed.
pub const CODE: u64 = 0x40_0000;
/// A mapped data area.
pub const DATA: u64 = 0x60_0000;
/// Top of a mapped stack.
pub const STACK_TOP: u64 = 0x80_0000;

/// A core, memory with code at [`CODE`] (followed by `hlt`), data and stack.
pub fn setup(code: &[u8]) -> (FuncCore, FlatMemory, ArchState) {
    let mut mem = FlatMemory::new();
    mem.map(CODE, 0x2000);
    mem.map(DATA, 0x2000);
    mem.map(STACK_TOP - 0x2000, 0x2000);
    let mut bytes = code.to_vec();
    bytes.push(0xf4);
    mem.write(CODE, &bytes).expect("code page mapped");
    let st = ArchState {
        rip: CODE,
        gpr: [0; 16],
        ..ArchState::default()
    };
    let mut st = st;
    st.gpr[4] = STACK_TOP - 0x100;
    (FuncCore::new(CpuidModel::default()), mem, st)
}

/// Runs `code` then `hlt` from `st`; panics unless it halts.
pub fn run_to_halt(code: &[u8], st: &mut ArchState) -> FlatMemory {
    let (mut core, mut mem, base) = setup(code);
    st.rip = base.rip;
    let e = core.run(st, &mut mem, 10_000);
    assert_eq!(e, Exit::Halt, "code {code:02x?} did not reach hlt");
    mem
}
