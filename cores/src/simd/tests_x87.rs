//! Tests of the x87 and state families against the host CPU.
//!
//! Each test in `tests_x87_host.rs` is machine code run on the host (an
//! Intel Xeon; the transcendentals also on an AMD EPYC, see
//! [`check_host_fpu`]) by a throw-away harness (`/tmp/x87-gen`: the code mapped at
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

/// [`check`] of code whose results come from the host's FPU (the
/// transcendentals, as `hostfpu` runs them): their last bits are the host
/// vendor's, so the window expected is the one recorded natively on a host
/// of the same vendor: `intel` on an Intel Xeon, `amd` on an AMD EPYC
/// (family 1Ah), with the same harness.
fn check_host_fpu(code: &str, off: u64, intel: &str, amd: &str) {
    let v = std::arch::x86_64::__cpuid(0);
    let is_amd = (v.ebx, v.edx, v.ecx) == (0x6874_7541, 0x6974_6e65, 0x444d_4163);
    check(code, None, off, if is_amd { amd } else { intel });
}

/// [`check`] with its own input data instead of [`INPUT`].
fn check_with(code: &str, input: &str, exit: Option<(u8, u64)>, off: u64, expect: &str) {
    run_check(code, input, exit, off, expect, &[]);
}

/// [`check`], not comparing the bytes `skip` (window offsets, length) of
/// fields that are not modelled (FOP after an unmasked exception). Runs
/// the functional core and the out-of-order core; both must match.
fn check_except(
    code: &str,
    exit: Option<(u8, u64)>,
    off: u64,
    expect: &str,
    skip: &[(usize, usize)],
) {
    run_check(code, INPUT, exit, off, expect, skip);
}

fn run_check(
    code: &str,
    input: &str,
    exit: Option<(u8, u64)>,
    off: u64,
    expect: &str,
    skip: &[(usize, usize)],
) {
    for ooo in [false, true] {
        let (mut mem, mut st) = machine(code, input);
        let got = if ooo {
            run_ooo(st, &mut mem)
        } else {
            FuncCore::new(CpuidModel::default()).run(&mut st, &mut mem, 100_000)
        };
        match (exit, &got) {
            (None, Exit::Halt) => {}
            (Some((v, rip)), Exit::Fault(f)) if f.vector == v && f.rip == rip => {}
            _ => panic!("ooo {ooo}: exit {got:?}, host {exit:?}"),
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
                "ooo {ooo}: data + {:#x}: simulated (left) vs host (right)",
                off + 16 * row as u64
            );
        }
    }
}

/// Runs one context of the out-of-order core from `st` to its exit.
fn run_ooo(st: ArchState, mem: &mut FlatMemory) -> Exit {
    use crate::ooo::{FixedMem, FixedMemConfig, OooConfig, OooCore};
    let mut core = OooCore::new(OooConfig::default()).expect("valid config");
    *core.state_mut(0) = st;
    core.resume(0);
    let mut port = FixedMem::new(FixedMemConfig::default());
    core.run_until_stopped(mem, &mut port, 50_000_000);
    core.take_exit(0).expect("the context stopped")
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
include!("tests_x87_random.rs");

#[test]
fn xsetbv_is_gp_in_ring_3() {
    // xor ecx, ecx ; xsetbv
    let code = "31c90f01d1";
    let mut mem = FlatMemory::new();
    mem.map(CODE, 0x1000);
    let mut c = unhex(code);
    c.push(0xf4);
    mem.write(CODE, &c).expect("fits");
    let mut st = ArchState {
        rip: CODE,
        ..Default::default()
    };
    let got = FuncCore::new(CpuidModel::default()).run(&mut st, &mut mem, 100);
    let Exit::Fault(f) = got else {
        panic!("{got:?}")
    };
    assert_eq!((f.vector, f.rip), (13, CODE + 2));
}

/// A transcendental on a denormal ST(0) (and ST(1)) with #D unmasked
/// computes nothing: C1 is cleared, C2 too by fsin, fcos, fsincos and
/// fptan, the others keep it (FSW as the host, an AMD family 1Ah, leaves
/// it with C1 and C2 set before; FCW 0368h).
#[test]
fn transcendental_with_unmasked_denormal_clears_c1_and_the_range_flag() {
    use crate::fpu::x87 as sw;
    let den: u128 = 0x3a9a_38ff_06ae_e742;
    for (op, host_fsw) in [
        ([0xd9, 0xfe], 0xb082u16), // fsin
        ([0xd9, 0xff], 0xb082),    // fcos
        ([0xd9, 0xfb], 0xb082),    // fsincos
        ([0xd9, 0xf2], 0xb082),    // fptan
        ([0xd9, 0xf3], 0xb482),    // fpatan
        ([0xd9, 0xf0], 0xb482),    // f2xm1
        ([0xd9, 0xf1], 0xb482),    // fyl2x
        ([0xd9, 0xf9], 0xb482),    // fyl2xp1
    ] {
        let mut mem = FlatMemory::new();
        mem.map(CODE, 0x1000);
        mem.write(CODE, &[op[0], op[1], 0xf4]).expect("fits");
        let mut st = ArchState {
            rip: CODE,
            ..Default::default()
        };
        st.fpu.fcw = 0x0368;
        st.fpu.set_top(6);
        st.fpu.fsw |= sw::FSW_C1 | sw::FSW_C2;
        for p in [6, 7] {
            st.fpu.st[p] = den;
            st.fpu.set_tag(p, sw::TAG_SPECIAL);
        }
        let got = FuncCore::new(CpuidModel::default()).run(&mut st, &mut mem, 100);
        assert_eq!(got, Exit::Halt);
        assert_eq!(st.fpu.fsw, host_fsw, "{op:02x?}");
        assert_eq!(st.fpu.st[6..], [den, den], "{op:02x?}: nothing computed");
    }
}

#[test]
fn x87_with_cr0_ts_is_nm_before_anything() {
    // fld1 ; hlt
    let mut mem = FlatMemory::new();
    mem.map(CODE, 0x1000);
    mem.write(CODE, &[0xd9, 0xe8, 0xf4]).expect("fits");
    let mut st = ArchState {
        rip: CODE,
        ..Default::default()
    };
    st.fpu.ts = true;
    let before = st.fpu.clone();
    let got = FuncCore::new(CpuidModel::default()).run(&mut st, &mut mem, 100);
    let Exit::Fault(f) = got else {
        panic!("{got:?}")
    };
    assert_eq!((f.vector, f.rip, &st.fpu), (7, CODE, &before));
}

#[test]
fn image_and_m80_stores_across_an_unmapped_page_fault_first_and_write_nothing() {
    // fld1 ; fxsave64 [rsi+0xfff0] / fstp tbyte [rsi+0xfff8] / xsave64 [rsi+0xffc0] ; hlt
    for (store, cr2) in [
        (
            &[0x48, 0x0f, 0xae, 0x86, 0xf0, 0xff, 0x00, 0x00][..],
            0x21_0000,
        ),
        (&[0xdb, 0xbe, 0xf8, 0xff, 0x00, 0x00][..], 0x21_0000),
        (
            &[0x48, 0x0f, 0xae, 0xa6, 0xc0, 0xff, 0x00, 0x00][..],
            0x21_0000,
        ),
    ] {
        let mut mem = FlatMemory::new();
        mem.map(CODE, 0x1000);
        mem.map(DATA, 0x1_0000);
        let mut code = vec![0xb8, 3, 0, 0, 0, 0x31, 0xd2, 0xd9, 0xe8]; // mov eax, 3 ; xor edx, edx ; fld1
        code.extend_from_slice(store);
        code.push(0xf4);
        mem.write(CODE, &code).expect("fits");
        mem.write(DATA + 0xff00, &[0xaa; 0x100]).expect("mapped");
        let mut st = ArchState {
            rip: CODE,
            ..Default::default()
        };
        st.gpr[6] = DATA;
        let got = FuncCore::new(CpuidModel::default()).run(&mut st, &mut mem, 100);
        let Exit::Fault(f) = got else {
            panic!("{got:?}")
        };
        // CR2 is in the unmapped page (the probe's address, not
        // necessarily its first byte).
        assert_eq!(
            (f.vector, f.rip, f.addr & !0xfff),
            (14, CODE + 9, cr2),
            "{store:02x?}"
        );
        let mut b = [0u8; 0x100];
        mem.read(DATA + 0xff00, &mut b).expect("mapped");
        assert_eq!(b, [0xaa; 0x100], "nothing written");
        assert_eq!(st.fpu.top(), 7, "fld1 done, the store did not pop");
    }
}

/// Replays host-recorded random cases from the directory in `X87_RND_DIR`
/// (files of four lines: code hex, input hex, host exit, window hex at
/// 0x1000); run by hand with `--ignored`.
#[test]
#[ignore]
fn replay_recorded_random_cases() {
    let Ok(dir) = std::env::var("X87_RND_DIR") else {
        return;
    };
    let mut names: Vec<_> = std::fs::read_dir(&dir)
        .expect("dir")
        .map(|e| e.expect("entry").path())
        .collect();
    names.sort();
    let mut bad = 0;
    for p in names {
        let text = std::fs::read_to_string(&p).expect("read");
        let l: Vec<&str> = text.lines().collect();
        eprintln!("{}", p.display());
        let r = std::panic::catch_unwind(|| replay(l[0], l[1], l[2], l[3]));
        if r.is_err() {
            bad += 1;
            eprintln!("FAILED: {}", p.display());
        }
    }
    assert_eq!(bad, 0);
}

/// Code (hex, `hlt` appended) at CODE, `input` (hex) at DATA = rsi, a
/// stack below STACK + 64 KiB = rsp.
fn machine(code: &str, input: &str) -> (FlatMemory, ArchState) {
    let mut mem = FlatMemory::new();
    mem.map(CODE, 0x1_0000);
    mem.map(DATA, 0x1_0000);
    mem.map(STACK, 0x1_0000);
    let mut bytes = unhex(code);
    bytes.push(0xf4);
    mem.write(CODE, &bytes).expect("code fits");
    mem.write(DATA, &unhex(input)).expect("data fits");
    let mut st = ArchState {
        rip: CODE,
        ..Default::default()
    };
    st.gpr[6] = DATA;
    st.gpr[4] = STACK + 0x1_0000;
    (mem, st)
}

fn replay(code: &str, input: &str, exit: &str, expect: &str) {
    let (mut mem, mut st) = machine(code, input);
    let got = FuncCore::new(CpuidModel::default()).run(&mut st, &mut mem, 100_000);
    let mut e = exit.split(' ');
    match (e.next(), &got) {
        (Some("halt"), Exit::Halt) => {}
        (Some(v), Exit::Fault(f)) if v.parse::<u8>().ok() == Some(f.vector) => {
            let rip: u64 = e.next().and_then(|r| r.parse().ok()).unwrap_or(0);
            assert_eq!(f.rip, rip, "fault rip");
        }
        _ => panic!("host exit {exit}, simulated {got:?}"),
    }
    let want = unhex(expect);
    let mut have = vec![0u8; want.len()];
    let (at, stride) = match want.len() {
        4800 => (0x3000, 48),
        0x5000 => (0x3000, 0),
        0x2080 => (0x3000, 48),
        _ => (0x1000, 32),
    };
    mem.read(DATA + at, &mut have).expect("mapped");
    for (row, (h, w)) in have.chunks(32).zip(want.chunks(32)).enumerate() {
        if h != w {
            let vin = unhex(input);
            let a = vin
                .get(0x400 + stride * row..0x428 + stride * row)
                .unwrap_or(&[]);
            let row = at - 0x1000 + 32 * row as u64;
            panic!("window row at {row:#x}: inputs {a:02x?}\n sim {h:02x?}\nhost {w:02x?}");
        }
    }
}

#[test]
fn fip_is_the_full_rip_of_the_last_non_control_instruction() {
    // fninit ; fld1 ; fnstcw [rsi+0x300] ; fxsave64 [rsi] ; hlt, at a RIP
    // outside ±2 GiB (PIE user code) and inside (a kernel address).
    for base in [0x5555_5555_4000u64, 0xffff_ffff_8100_0000] {
        let mut mem = FlatMemory::new();
        mem.map(base, 0x1000);
        mem.map(DATA, 0x1000);
        let code = [
            0xdb, 0xe3, 0xd9, 0xe8, 0xd9, 0xbe, 0x00, 0x03, 0x00, 0x00, 0x48, 0x0f, 0xae, 0x06,
            0xf4,
        ];
        mem.write(base, &code).expect("fits");
        let mut st = ArchState {
            rip: base,
            ..Default::default()
        };
        st.gpr[6] = DATA;
        for ooo in [false, true] {
            let got = if ooo {
                run_ooo(st.clone(), &mut mem)
            } else {
                FuncCore::new(CpuidModel::default()).run(&mut st.clone(), &mut mem, 100)
            };
            assert_eq!(got, Exit::Halt);
            let mut b = [0u8; 16];
            mem.read(DATA, &mut b).expect("mapped");
            let fip = u64::from_le_bytes(b[8..16].try_into().expect("8"));
            assert_eq!(fip, base + 2, "ooo {ooo}");
        }
    }
}

/// Arithmetic with an m32 SNaN keeps it signalling until the operation:
/// the indefinite in ST(0) ÷ an m32 SNaN is the indefinite (a QNaN wins
/// over an SNaN), an SNaN ST(0) with the larger significand wins over
/// the m32 SNaN (both quieted); fprem1 with an unmasked #IA clears C2
/// and C1 (C3, C0 kept). Host-recorded (an Intel Xeon).
#[test]
fn m32_snan_operand_and_fprem1_unmasked_invalid_match_the_host() {
    // fninit ; fld tbyte [rsi] (indefinite) ; fdiv dword [rsi+0x10]
    // (7f938d2f) ; fnstsw [rsi+0x30] ; fstp tbyte [rsi+0x20] ;
    // fld tbyte [rsi+0x60] (7fff:a000…) ; fdiv dword [rsi+0x18] (7f900000) ;
    // fnstsw [rsi+0x32] ; fstp tbyte [rsi+0x90] ; fnclex ;
    // fldcw [rsi+0x40] (037e) ; fld tbyte [rsi+0x70] (−0) ;
    // fld tbyte [rsi+0x50] ; fld tbyte [rsi+0x80] (QNaN) ; fucomp st(1)
    // (C3 C2 C0 set) ; fprem1 ; fnstsw [rsi+0x34] ; fnclex ; fninit
    let code = "dbe3db2ed87610dd7e30db7e20db6e60d87618dd7e32dbbe90000000dbe2d96e40db6e70db6e50dbae80000000dde9d9f5dd7e34dbe2dbe3";
    let input = "00000000000000c0ffff0000000000002f8d937f000000000000907f0000000000000000000000000000000000000000000000000000000000000000000000007e030000000000000000000000000000f44a01132ee8148a511300000000000000000000000000a0ff7f0000000000000000000000000000008000000000000001000000000000c0ff7f000000000000";
    let expect = "00000000000000c0ffff0000000000002f8d937f000000000000907f0000000000000000000000c0ffff0000000000000138013881f1000000000000000000007e030000000000000000000000000000f44a01132ee8148a511300000000000000000000000000a0ff7f0000000000000000000000000000008000000000000001000000000000c0ff7f00000000000000000000000000e0ff7f000000000000";
    check_with(code, input, None, 0, expect);
}
