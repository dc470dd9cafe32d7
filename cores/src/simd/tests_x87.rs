//! Tests of the x87 and state families against the host CPU.
//!
//! Each test in `tests_x87_host.rs` is machine code run on the host (an
//! Intel Xeon) by a throw-away harness (`/tmp/x87-gen`: the code mapped at
//! 0x100000, the data at 0x200000, rsi = the data, a trailing `ret`; #MF
//! caught as SIGFPE) and here (a trailing `hlt`); the window of data
//! memory the code wrote (results, FSW values, FXSAVE/FNSAVE/XSAVE
//! images, RFLAGS) and the exit must be identical, byte for byte. The
//! inputs ([`INPUT`]): sixteen 80-bit values (normal, 1/3, π, denormal,
//! smallest normal, ∞, QNaN, SNaN, −0, largest, unnormal …) in 16-byte
//! slots, control words for the four rounding modes and three precisions
//! at 0x100, single/double/integer operands at 0x180..0x218, XMM data at
//! 0x300.

use crate::{ArchState, CpuidModel, Exit, FlatMemory, FuncCore, GuestMemory};

const CODE: u64 = 0x10_0000;
const DATA: u64 = 0x20_0000;
const STACK: u64 = 0x30_0000;

fn unhex(s: &str) -> Vec<u8> {
    (0..s.len() / 2)
        .map(|i| u8::from_str_radix(&s[2 * i..2 * i + 2], 16).expect("hex"))
        .collect()
}

/// Runs `code` + `hlt` and compares the exit (None: halt; Some((vector,
/// rip))) and the data window at `off` with the host's.
fn check(code: &str, exit: Option<(u8, u64)>, off: u64, expect: &str) {
    check_except(code, exit, off, expect, &[]);
}

/// [`check`], not comparing the bytes `skip` (window offsets, length) of
/// fields that are not modelled (FOP after an unmasked exception).
fn check_except(
    code: &str,
    exit: Option<(u8, u64)>,
    off: u64,
    expect: &str,
    skip: &[(usize, usize)],
) {
    let mut mem = FlatMemory::new();
    mem.map(CODE, 0x1_0000);
    mem.map(DATA, 0x1_0000);
    mem.map(STACK, 0x1_0000);
    let mut code = unhex(code);
    code.push(0xf4);
    mem.write(CODE, &code).expect("code fits");
    mem.write(DATA, &unhex(INPUT)).expect("data fits");
    let mut st = ArchState {
        rip: CODE,
        ..Default::default()
    };
    st.gpr[6] = DATA;
    st.gpr[4] = STACK + 0x1_0000;
    let mut core = FuncCore::new(CpuidModel::default());
    let got = core.run(&mut st, &mut mem, 100_000);
    match (exit, &got) {
        (None, Exit::Halt) => {}
        (Some((v, rip)), Exit::Fault(f)) if f.vector == v && f.rip == rip => {}
        _ => panic!("exit {got:?}, host {exit:?}"),
    }
    let mut want = unhex(expect);
    let mut have = vec![0u8; want.len()];
    mem.read(DATA + off, &mut have).expect("mapped");
    for &(o, n) in skip {
        want[o..o + n].copy_from_slice(&have[o..o + n]);
    }
    for (row, (h, w)) in have.chunks(16).zip(want.chunks(16)).enumerate() {
        assert_eq!(
            h,
            w,
            "data + {:#x}: simulated (left) vs host (right)",
            off + 16 * row as u64
        );
    }
}

#[test]
fn xgetbv_reads_xcr0_and_rejects_other_indices() {
    // xor ecx, ecx ; xgetbv ; mov [rsi], eax ; mov [rsi+4], edx ; inc ecx ;
    // xgetbv
    let code = "31c90f01d08906895604ffc10f01d0";
    let mut mem = FlatMemory::new();
    mem.map(CODE, 0x1000);
    mem.map(DATA, 0x1000);
    let mut c = unhex(code);
    c.push(0xf4);
    mem.write(CODE, &c).expect("fits");
    let mut st = ArchState {
        rip: CODE,
        ..Default::default()
    };
    st.gpr[6] = DATA;
    let got = FuncCore::new(CpuidModel::default()).run(&mut st, &mut mem, 100);
    let Exit::Fault(f) = got else {
        panic!("{got:?}")
    };
    assert_eq!((f.vector, f.rip), (13, CODE + 12));
    assert_eq!((st.gpr[0], st.gpr[2]), (3, 0));
}

include!("tests_x87_host.rs");
