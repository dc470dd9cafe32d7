use super::*;
use crate::{CpuidModel, FlatMemory};

const CODE: u64 = 0x1000;
const DATA: u64 = 0x2000;

fn setup(code: &[u8]) -> (FuncCore, ArchState, FlatMemory) {
    let mut mem = FlatMemory::new();
    mem.map(CODE, 0x1000);
    mem.map(DATA, 0x2000);
    mem.write(CODE, code).expect("mapped");
    let mut st = ArchState {
        rip: CODE,
        ..ArchState::default()
    };
    st.gpr[crate::arch::reg::RSP] = DATA + 0x2000;
    st.gpr[crate::arch::reg::RBX] = DATA + 6;
    (FuncCore::new(CpuidModel::default()), st, mem)
}

/// Runs until something other than a #DB; returns the #DBs as (RIP, DR6
/// bits) and the last exit.
fn run_collecting(
    core: &mut FuncCore,
    st: &mut ArchState,
    mem: &mut FlatMemory,
) -> (Vec<(u64, u64)>, Exit) {
    let mut dbs = Vec::new();
    loop {
        match core.run(st, mem, 100) {
            Exit::Fault(f) if f.vector == 1 => {
                assert_eq!(f.rip, st.rip, "the #DB names where the guest stands");
                dbs.push((f.rip, f.addr));
            }
            other => return (dbs, other),
        }
        assert!(dbs.len() < 50, "runaway");
    }
}

/// DR7 with breakpoint `i` enabled (L), R/W `rw`, LEN field `len`.
fn bp(i: usize, rw: u64, len: u64) -> u64 {
    1 << (2 * i) | rw << (16 + 4 * i) | len << (18 + 4 * i)
}

#[test]
fn single_step_traps_after_each_completed_instruction_with_bs() {
    // mov eax, 1; add eax, 2; nop; hlt
    let (mut core, mut st, mut mem) = setup(&[0xb8, 1, 0, 0, 0, 0x83, 0xc0, 2, 0x90, 0xf4]);
    st.rflags |= flags::TF;
    let (dbs, exit) = run_collecting(&mut core, &mut st, &mut mem);
    let bs = dr6::BS;
    assert_eq!(dbs, vec![(CODE + 5, bs), (CODE + 8, bs), (CODE + 9, bs)]);
    assert_eq!(
        (exit, st.gpr[0]),
        (Exit::Halt, 3),
        "hlt exits, no trap after it"
    );
    assert_eq!(core.stats().instructions, 4);
}

#[test]
fn popf_setting_tf_traps_only_after_the_next_instruction() {
    // pushfq; or qword [rsp], 0x100; popfq; nop; nop; hlt
    let code = [
        0x9c, 0x48, 0x81, 0x0c, 0x24, 0x00, 0x01, 0x00, 0x00, 0x9d, 0x90, 0x90, 0xf4,
    ];
    let (mut core, mut st, mut mem) = setup(&code);
    let (dbs, exit) = run_collecting(&mut core, &mut st, &mut mem);
    assert_eq!(dbs, vec![(CODE + 11, dr6::BS), (CODE + 12, dr6::BS)]);
    assert_eq!(exit, Exit::Halt);
    assert_ne!(st.rflags & flags::TF, 0, "popf sets TF");
}

#[test]
fn a_faulting_instruction_gets_no_single_step_trap() {
    // ud2
    let (mut core, mut st, mut mem) = setup(&[0x0f, 0x0b]);
    st.rflags |= flags::TF;
    let Exit::Fault(f) = core.run(&mut st, &mut mem, 10) else {
        panic!("ud2 faults")
    };
    assert_eq!((f.vector, f.rip), (6, CODE));
}

#[test]
fn shadow_holds_back_the_db_until_the_next_instruction_completes() {
    // nop; nop; hlt — as if a MOV SS with a data breakpoint hit (B0) and
    // TF (BS) had just been emulated.
    let (mut core, mut st, mut mem) = setup(&[0x90, 0x90, 0xf4]);
    st.rflags |= flags::TF;
    st.debug.shadow = true;
    st.debug.pending = dr6::B0 | dr6::BS;
    let (dbs, _) = run_collecting(&mut core, &mut st, &mut mem);
    assert_eq!(
        dbs,
        vec![(CODE + 1, dr6::B0 | dr6::BS), (CODE + 2, dr6::BS)],
        "one #DB after the shadowed nop reports both, then single-step goes on"
    );
}

#[test]
fn a_held_db_is_dropped_when_the_shadowed_instruction_enters_the_hypervisor() {
    // syscall; nop
    let (mut core, mut st, mut mem) = setup(&[0x0f, 0x05, 0x90, 0xf4]);
    st.debug.shadow = true;
    st.debug.pending = dr6::B0;
    assert_eq!(core.run(&mut st, &mut mem, 10), Exit::Syscall);
    assert_eq!((st.debug.shadow, st.debug.pending), (false, 0));
    assert_eq!(core.run(&mut st, &mut mem, 10), Exit::Halt, "no #DB later");
}

#[test]
fn instruction_breakpoint_faults_before_the_instruction_and_rf_skips_it_once() {
    // mov eax, 1; add eax, 2; hlt — breakpoint 2 on the add.
    let (mut core, mut st, mut mem) = setup(&[0xb8, 1, 0, 0, 0, 0x83, 0xc0, 2, 0xf4]);
    st.debug.addr[2] = CODE + 5;
    st.debug.dr7 = bp(2, dr7::RW_EXEC, 0);
    let Exit::Fault(f) = core.run(&mut st, &mut mem, 10) else {
        panic!("breakpoint")
    };
    assert_eq!(
        (f.vector, f.rip, f.addr, st.rip),
        (1, CODE + 5, 4, CODE + 5)
    );
    assert_eq!(st.gpr[0], 1, "the add has not run");
    // The same again without RF; with RF it runs once.
    assert!(matches!(core.run(&mut st, &mut mem, 10), Exit::Fault(_)));
    st.rflags |= RF;
    assert_eq!(core.run(&mut st, &mut mem, 10), Exit::Halt);
    assert_eq!(
        (st.gpr[0], st.rflags & RF),
        (3, 0),
        "RF cleared after the add"
    );
}

#[test]
fn data_write_breakpoint_traps_after_the_store() {
    // mov [rbx], ax (rbx = DATA + 6); mov eax, [rbx]; hlt
    let (mut core, mut st, mut mem) = setup(&[0x66, 0x89, 0x03, 0x8b, 0x03, 0xf4]);
    st.gpr[0] = 0xabcd;
    st.debug.addr[1] = DATA + 4;
    st.debug.dr7 = bp(1, dr7::RW_WRITE, 3); // 4 bytes: DATA+4..DATA+8
    let (dbs, exit) = run_collecting(&mut core, &mut st, &mut mem);
    assert_eq!(
        dbs,
        vec![(CODE + 3, 2)],
        "the store hits B1, the load does not"
    );
    assert_eq!(exit, Exit::Halt);
    assert_eq!(mem.load(DATA + 6, 2), Ok(0xabcd), "the store happened");
}

#[test]
fn read_write_breakpoint_meets_loads_too_and_len_aligns() {
    // mov [rbx], ax; mov eax, [rbx]; hlt — LEN 8 at DATA+1 covers DATA..DATA+8.
    let (mut core, mut st, mut mem) = setup(&[0x66, 0x89, 0x03, 0x8b, 0x03, 0xf4]);
    st.debug.addr[3] = DATA + 1;
    st.debug.dr7 = bp(3, dr7::RW_READ_WRITE, 2);
    let (dbs, _) = run_collecting(&mut core, &mut st, &mut mem);
    assert_eq!(dbs, vec![(CODE + 3, 8), (CODE + 5, 8)]);
}

#[test]
fn disabled_or_io_breakpoints_never_fire_in_the_core() {
    let (mut core, mut st, mut mem) = setup(&[0x66, 0x89, 0x03, 0x8b, 0x03, 0xf4]);
    st.debug.addr = [DATA + 6, DATA + 6, CODE, CODE + 3];
    // 0: R/W set but not enabled; 1: an I/O breakpoint at the same value.
    st.debug.dr7 = dr7::RW_READ_WRITE << 16 | bp(1, dr7::RW_IO, 3);
    assert_eq!(core.run(&mut st, &mut mem, 10), Exit::Halt);
}

#[test]
fn io_match_checks_enables_rw_and_port_ranges() {
    let d = DebugState {
        addr: [0x60, 0x70, 0x80, 0x92],
        ..DebugState::default()
    };
    let dr7 = bp(0, dr7::RW_IO, 0) | bp(1, dr7::RW_IO, 3) | bp(2, dr7::RW_WRITE, 0);
    assert_eq!(d.io_match(dr7, 0x60, 1), 1);
    assert_eq!(d.io_match(dr7, 0x61, 1), 0);
    assert_eq!(d.io_match(dr7, 0x72, 2), 2, "LEN 4 covers 0x70..0x74");
    assert_eq!(
        d.io_match(dr7, 0x80, 1),
        0,
        "a data breakpoint is not an I/O one"
    );
    assert_eq!(d.io_match(dr7, 0x92, 1), 0, "breakpoint 3 is not enabled");
}

#[test]
fn unarmed_state_costs_one_check() {
    let d = DebugState::default();
    assert!(!d.armed(flags::FIXED1 | flags::IF | flags::ARITH));
    assert!(d.armed(flags::TF));
    assert!(DebugState {
        dr7: 0x400 | 2,
        ..d
    }
    .armed(0));
    assert!(!DebugState { dr7: 0x400, ..d }.armed(0));
}

#[test]
fn popf_clearing_tf_traps_once_more_then_the_run_goes_on_unstepped() {
    // pushfq; or qword [rsp], 0x100; popfq; nop;
    // pushfq; and qword [rsp], ~0x100; popfq; nop; hlt
    let mut code = vec![
        0x9c, 0x48, 0x81, 0x0c, 0x24, 0x00, 0x01, 0x00, 0x00, 0x9d, 0x90,
    ];
    code.extend([
        0x9c, 0x48, 0x81, 0x24, 0x24, 0xff, 0xfe, 0xff, 0xff, 0x9d, 0x90, 0xf4,
    ]);
    let (mut core, mut st, mut mem) = setup(&code);
    let (dbs, exit) = run_collecting(&mut core, &mut st, &mut mem);
    let at: Vec<u64> = dbs.iter().map(|&(rip, _)| rip - CODE).collect();
    assert_eq!(
        at,
        vec![11, 12, 20, 21],
        "the popf that clears TF still traps"
    );
    assert!(dbs.iter().all(|&(_, b)| b == dr6::BS));
    assert_eq!(exit, Exit::Halt);
    assert_eq!(core.stats().instructions, 9);
}
