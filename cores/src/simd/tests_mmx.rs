//! Tests of the MMX instructions: values, the x87 aliasing (MMi = Ri, bits
//! 79:64, TOP and tags), #NM, #MF, precise page faults, and the
//! out-of-order core against the functional one.

use super::tests::{run, DATA};
use super::tests_int::run_ooo;
use crate::fpu::x87::{FSW_B, FSW_ES};
use crate::{ArchState, Exit, FlatMemory, GuestMemory};

/// A state with `rsi` = [`DATA`], TOP = 5, every tag empty, and R0–R7
/// holding `mm` as significands under exponent 0x3fff.
fn with_mm(mm: &[(usize, u64)]) -> ArchState {
    let mut st = ArchState::default();
    st.gpr[6] = DATA;
    st.fpu.set_top(5);
    for p in 0..8 {
        st.fpu.st[p] = (0x3fffu128 << 64) | 0x8000_0000_0000_0000;
    }
    for &(i, v) in mm {
        st.fpu.st[i] = (0x3fffu128 << 64) | u128::from(v);
    }
    st
}

fn read8(mem: &mut FlatMemory, addr: u64) -> u64 {
    let mut b = [0u8; 8];
    mem.read(addr, &mut b).expect("mapped");
    u64::from_le_bytes(b)
}

fn halted(code: &[u8], st: ArchState, data: &[u8]) -> (ArchState, FlatMemory) {
    let (exit, st, mem) = run(code, st, data);
    assert_eq!(exit, Exit::Halt, "{code:02x?}");
    (st, mem)
}

fn fault(code: &[u8], st: ArchState, data: &[u8]) -> (u8, ArchState, FlatMemory) {
    let (exit, st, mem) = run(code, st, data);
    let Exit::Fault(f) = exit else {
        panic!("{code:02x?}: {exit:?}")
    };
    assert_eq!(f.rip, 0x1000, "the first instruction faults");
    (f.vector, st, mem)
}

#[test]
fn paddusb_saturates_and_the_write_sets_top_tags_and_bits_79_64() {
    // paddusb mm0, [rsi] ; movq [rsi+16], mm0 ; hlt
    let code = [0x0f, 0xdc, 0x06, 0x0f, 0x7f, 0x46, 0x10, 0xf4];
    let data = [0x01, 0x01, 0x80, 0x20, 0xf0, 0xe0, 0x00, 0xc0];
    let st = with_mm(&[(0, 0x00ff_80f0_1020_3040)]);
    let r1 = st.fpu.st[1];
    let (st, mut mem) = halted(&code, st, &data);
    assert_eq!(st.fpu.mm(0), 0xc0ff_ffff_30a0_3141);
    assert_eq!(st.fpu.st[0] >> 64, 0xffff, "bits 79:64 all ones");
    assert_eq!(st.fpu.st[1], r1, "registers not written keep bits 79:64");
    assert_eq!(
        (st.fpu.top(), st.fpu.ftw, st.fpu.abridged_tag()),
        (0, 0, 0xff)
    );
    assert_eq!(read8(&mut mem, DATA + 16), 0xc0ff_ffff_30a0_3141);
}

#[test]
fn pmaddwd_psadbw_pmulhuw_values() {
    // movq mm1, rax ; movq mm2, rbx ; movq mm3, mm1 ; pmaddwd mm1, mm2 ;
    // psadbw mm3, mm2 ; movq mm4, rax ; pmulhuw mm4, mm2 ; hlt
    let code = [
        0x48, 0x0f, 0x6e, 0xc8, 0x48, 0x0f, 0x6e, 0xd3, 0x0f, 0x6f, 0xd9, 0x0f, 0xf5, 0xca, 0x0f,
        0xf6, 0xda, 0x48, 0x0f, 0x6e, 0xe0, 0x0f, 0xe4, 0xe2, 0xf4,
    ];
    let mut st = with_mm(&[]);
    st.gpr[0] = 0x0004_0003_fffe_0001; // words 1, -2, 3, 4
    st.gpr[3] = 0x8000_0005_0002_0007; // words 7, 2, 5, -32768
    let (st, _) = halted(&code, st, &[]);
    // 1*7 + -2*2 = 3; 3*5 + 4*-32768 = -131057.
    assert_eq!(st.fpu.mm(1), 0xfffe_000f_0000_0003);
    assert_eq!(st.fpu.mm(3), 647, "6+0+252+255+2+0+4+128");
    assert_eq!(st.fpu.mm(4), 0x0002_0000_0001_0000);
}

#[test]
fn shifts_by_immediate_and_by_register() {
    // psllw mm1, 3 ; psrad mm2, mm3 ; psrlq mm4, 64 ; hlt
    let code = [
        0x0f, 0x71, 0xf1, 0x03, 0x0f, 0xe2, 0xd3, 0x0f, 0x73, 0xd4, 0x40, 0xf4,
    ];
    let st = with_mm(&[
        (1, 0x8001_0001_ffff_1234),
        (2, 0x8000_0000_0000_0010),
        (3, 4),
        (4, u64::MAX),
    ]);
    let (st, _) = halted(&code, st, &[]);
    assert_eq!(st.fpu.mm(1), 0x0008_0008_fff8_91a0);
    assert_eq!(st.fpu.mm(2), 0xf800_0000_0000_0001);
    assert_eq!(st.fpu.mm(4), 0);
}

#[test]
fn emms_empties_every_tag_sets_top_0_and_keeps_the_registers() {
    // movq mm1, rax ; emms ; hlt
    let code = [0x48, 0x0f, 0x6e, 0xc8, 0x0f, 0x77, 0xf4];
    let mut st = with_mm(&[]);
    st.gpr[0] = 0x1234_5678_9abc_def0;
    let fsw = st.fpu.fsw & !(7 << 11);
    let (st, _) = halted(&code, st, &[]);
    assert_eq!(st.fpu.ftw, 0xffff);
    assert_eq!(st.fpu.abridged_tag(), 0);
    assert_eq!(st.fpu.fsw, fsw, "TOP stays 0, nothing else changes");
    assert_eq!(st.fpu.st[1], (0xffffu128 << 64) | 0x1234_5678_9abc_def0);
    // emms alone, from TOP = 5 with two registers full: TOP = 0 too.
    let mut st = with_mm(&[]);
    st.fpu.ftw = 0xfff0;
    let (st, _) = halted(&[0x0f, 0x77, 0xf4], st, &[]);
    assert_eq!((st.fpu.top(), st.fpu.ftw), (0, 0xffff));
}

#[test]
fn mm_i_is_physical_register_i_not_st_i_and_a_read_writes_no_register() {
    // movq rax, mm2 ; hlt
    let code = [0x48, 0x0f, 0x7e, 0xd0, 0xf4];
    let mut st = with_mm(&[]);
    st.fpu.set_top(3);
    st.fpu.st[2] = (0x4000u128 << 64) | 0x1234_5678_9abc_def0;
    st.fpu.st[5] = (0x4000u128 << 64) | 0x1111; // ST(2)
    let (st, _) = halted(&code, st, &[]);
    assert_eq!(st.gpr[0], 0x1234_5678_9abc_def0);
    assert_eq!(st.fpu.st[2] >> 64, 0x4000, "a read leaves bits 79:64");
    assert_eq!(
        (st.fpu.top(), st.fpu.ftw),
        (0, 0),
        "a read still transitions"
    );
}

#[test]
fn fxsave_after_mmx_shows_every_register_full_at_top_0() {
    // paddb mm0, mm0 ; fxsave [rsi] ; hlt
    let code = [0x0f, 0xfc, 0xc0, 0x0f, 0xae, 0x06, 0xf4];
    let st = with_mm(&[(0, 0x0102_0304_0506_0708)]);
    let (_, mut mem) = halted(&code, st, &[0; 512]);
    let mut img = [0u8; 16];
    mem.read(DATA, &mut img).expect("mapped");
    assert_eq!(img[4], 0xff, "abridged tag");
    assert_eq!(u16::from_le_bytes([img[2], img[3]]) >> 11 & 7, 0, "TOP");
    assert_eq!(
        read8(&mut mem, DATA + 32),
        0x0204_0608_0a0c_0e10,
        "ST0 = R0"
    );
    assert_eq!(
        read8(&mut mem, DATA + 40) & 0xffff,
        0xffff,
        "its bits 79:64"
    );
}

#[test]
fn the_former_ud_forms_execute() {
    // pshufb mm0, mm1 ; pmovmskb eax, mm0 ; movq2dq xmm3, mm0 ;
    // movdq2q mm5, xmm4 ; pextrw ecx, mm1, 5 ; pinsrw mm6, edx, 6 ; hlt
    let code = [
        0x0f, 0x38, 0x00, 0xc1, 0x0f, 0xd7, 0xc0, 0xf3, 0x0f, 0xd6, 0xd8, 0xf2, 0x0f, 0xd6, 0xec,
        0x0f, 0xc5, 0xc9, 0x05, 0x0f, 0xc4, 0xf2, 0x06, 0xf4,
    ];
    let mut st = with_mm(&[
        (0, 0x8877_6655_4433_2211),
        (1, 0x0081_0203_0405_0607),
        (6, 0),
    ]);
    st.fpu.xmm[3] = u128::MAX;
    st.fpu.xmm[4] = 0xdead_beef_0000_0000_cafe_f00d_1234_5678;
    st.gpr[2] = 0xabcd_1234;
    let (st, _) = halted(&code, st, &[]);
    // Index 0x81 has its top bit set: zero; the others pick bytes 7..0.
    assert_eq!(st.fpu.mm(0), 0x1100_3344_5566_7788);
    assert_eq!(st.gpr[0], 1, "pmovmskb: only byte 0 (0x88) is negative");
    assert_eq!(
        st.fpu.xmm[3], 0x1100_3344_5566_7788,
        "movq2dq zeroes the rest"
    );
    assert_eq!(st.fpu.mm(5), 0xcafe_f00d_1234_5678);
    assert_eq!(st.gpr[1], 0x0405, "pextrw: lane 5 & 3 = 1");
    assert_eq!(
        st.fpu.mm(6),
        0x0000_1234_0000_0000,
        "pinsrw: lane 6 & 3 = 2"
    );
}

#[test]
fn cross_lane_forms_work_on_64_bits() {
    // movq mm0, mm1 ; punpckhbw mm0, mm2 ; movq mm3, mm1 ; packsswb mm3, mm2 ;
    // movq mm4, mm1 ; palignr mm4, mm2, 3 ; movq mm5, mm1 ; phaddw mm5, mm2 ;
    // punpckldq mm6, [rsi] ; hlt
    let code = [
        0x0f, 0x6f, 0xc1, 0x0f, 0x68, 0xc2, 0x0f, 0x6f, 0xd9, 0x0f, 0x63, 0xda, 0x0f, 0x6f, 0xe1,
        0x0f, 0x3a, 0x0f, 0xe2, 0x03, 0x0f, 0x6f, 0xe9, 0x0f, 0x38, 0x01, 0xea, 0x0f, 0x62, 0x36,
        0xf4,
    ];
    let st = with_mm(&[
        (1, 0x8877_6655_4433_2211),
        (2, 0x0123_4567_89ab_cdef),
        (6, 0x1111_2222_3333_4444),
    ]);
    let (st, _) = halted(&code, st, &[0x55, 0x66, 0x77, 0x88, 0x99, 0xaa]);
    assert_eq!(st.fpu.mm(0), 0x0188_2377_4566_6755);
    assert_eq!(st.fpu.mm(3), 0x7f7f_8080_807f_7f7f);
    assert_eq!(st.fpu.mm(4), 0x3322_1101_2345_6789);
    assert_eq!(st.fpu.mm(5), 0x468a_579a_eecc_6644);
    assert_eq!(st.fpu.mm(6), 0x8877_6655_3333_4444);
}

#[test]
fn punpckldq_reads_four_bytes_only() {
    // punpckldq mm6, [rsi+0x1ffc] ; hlt: the dword ends at the last mapped
    // byte.
    let code = [0x0f, 0x62, 0xb6, 0xfc, 0x1f, 0x00, 0x00, 0xf4];
    let (st, _) = halted(&code, with_mm(&[(6, 7)]), &[]);
    assert_eq!(st.fpu.mm(6), 7);
}

#[test]
fn conversions_between_mmx_and_xmm() {
    // cvtpi2ps xmm1, mm1 ; cvtps2pi mm2, xmm2 ; cvttpd2pi mm3, xmm3 ;
    // cvtpi2pd xmm4, [rsi] ; hlt
    let code = [
        0x0f, 0x2a, 0xc9, 0x0f, 0x2d, 0xd2, 0x66, 0x0f, 0x2c, 0xdb, 0x66, 0x0f, 0x2a, 0x26, 0xf4,
    ];
    let mut st = with_mm(&[(1, 0xffff_fff9_0000_0003)]);
    st.fpu.xmm[1] = u128::MAX;
    // 1.5, -2.5 and a NaN above them (ignored: no #IA flag).
    st.fpu.xmm[2] = (0x7fc0_0000u128 << 64) | 0xc020_0000_3fc0_0000;
    st.fpu.xmm[3] = (0xbff8_0000_0000_0000u128 << 64) | 0x4006_0000_0000_0000; // 2.75, -1.5
    let data = [5, 0, 0, 0, 0xff, 0xff, 0xff, 0xff];
    let (st, _) = halted(&code, st, &data);
    assert_eq!(
        st.fpu.xmm[1],
        (u128::from(u64::MAX) << 64) | 0xc0e0_0000_4040_0000
    );
    assert_eq!(st.fpu.mm(2), 0xffff_fffe_0000_0002, "nearest even: 2, -2");
    assert_eq!(st.fpu.mm(3), 0xffff_ffff_0000_0002, "truncated: 2, -1");
    assert_eq!(
        st.fpu.xmm[4],
        (0xbff0_0000_0000_0000u128 << 64) | 0x4014_0000_0000_0000
    );
    assert_eq!(st.fpu.mxcsr & 0x3f, 0x20, "inexact only");
}

#[test]
fn maskmovq_stores_the_selected_bytes() {
    // maskmovq mm0, mm1 ; hlt (to [rdi])
    let code = [0x0f, 0xf7, 0xc1, 0xf4];
    let mut st = with_mm(&[(0, 0x8877_6655_4433_2211), (1, 0x8000_8000_ff00_7f80)]);
    st.gpr[7] = DATA;
    let (_, mut mem) = halted(&code, st, &[0xaa; 8]);
    assert_eq!(read8(&mut mem, DATA), 0x88aa_66aa_44aa_aa11);
}

#[test]
fn maskmovq_page_fault_comes_after_the_transition_and_stores_nothing() {
    // maskmovq mm0, mm1 ; hlt, to [rdi] straddling the unmapped page.
    let code = [0x0f, 0xf7, 0xc1, 0xf4];
    let mut st = with_mm(&[(0, 0x8877_6655_4433_2211), (1, u64::MAX)]);
    st.gpr[7] = DATA + 0x1ffc;
    let (v, st, mut mem) = fault(&code, st, &[]);
    assert_eq!(v, 14);
    assert_eq!((st.fpu.top(), st.fpu.ftw), (0, 0), "as on the host");
    assert_eq!(read8(&mut mem, DATA + 0x1ff8), 0, "nothing stored");
}

#[test]
fn cr0_ts_is_nm_before_anything() {
    // paddb mm0, mm1 ; hlt
    let mut st = with_mm(&[]);
    st.fpu.ts = true;
    let before = st.fpu.clone();
    let (v, st, _) = fault(&[0x0f, 0xfc, 0xc1, 0xf4], st, &[]);
    assert_eq!(v, 7);
    assert_eq!(st.fpu, before);
}

#[test]
fn pending_x87_exception_is_mf_before_the_operands_page_fault() {
    let mut st = with_mm(&[]);
    st.fpu.fcw = 0x037e; // #IA unmasked
    st.fpu.fsw |= FSW_ES | FSW_B | 1;
    let before = st.fpu.clone();
    // paddb mm0, [0x4000] (unmapped) ; hlt
    let code = [0x0f, 0xfc, 0x04, 0x25, 0x00, 0x40, 0x00, 0x00, 0xf4];
    let (v, st2, _) = fault(&code, st.clone(), &[]);
    assert_eq!((v, &st2.fpu), (16, &before));
    // emms ; hlt
    let (v, st2, _) = fault(&[0x0f, 0x77, 0xf4], st, &[]);
    assert_eq!((v, &st2.fpu), (16, &before));
}

#[test]
fn page_faults_leave_the_x87_state_as_it_was() {
    let st = with_mm(&[(0, 0x0102_0304_0506_0708)]);
    let before = st.fpu.clone();
    // movq mm0, [rsi+0x1ffc] ; hlt (straddles the unmapped page)
    let code = [0x0f, 0x6f, 0x86, 0xfc, 0x1f, 0x00, 0x00, 0xf4];
    let (v, st2, _) = fault(&code, st.clone(), &[]);
    assert_eq!((v, &st2.fpu), (14, &before));
    // movq [rsi+0x1ffc], mm0 ; hlt
    let code = [0x0f, 0x7f, 0x86, 0xfc, 0x1f, 0x00, 0x00, 0xf4];
    let (v, st2, mut mem) = fault(&code, st, &[]);
    assert_eq!((v, &st2.fpu), (14, &before));
    assert_eq!(read8(&mut mem, DATA + 0x1ff8), 0, "nothing stored");
}

#[test]
fn ooo_core_runs_an_mmx_loop_like_the_functional_core() {
    // An MMX loop (psadbw sums, paddusb, pmullw, pxor over 16 quadwords),
    // its results stored, emms, then x87 and MMX reading each other's
    // registers:
    //   mov ecx, 16 ; pxor mm7, mm7 ; pxor mm6, mm6 ; pxor mm2, mm2
    // l: movq mm0, [rsi+rcx*8] ; movq mm1, mm0 ; paddusb mm1, [rsi+8]
    //   psadbw mm0, mm6 ; paddq mm7, mm0 ; pmullw mm1, mm1 ; pxor mm2, mm1
    //   dec ecx ; jnz l
    //   movq [rsi+0x100], mm7 ; movq [rsi+0x108], mm2 ; emms ; fld1
    //   fstp qword [rsi+0x110] ; movq mm3, [rsi+0x110] ; fld1
    //   movq rax, mm7 ; movq rbx, mm3 ; hlt
    let code = [
        0xb9, 0x10, 0x00, 0x00, 0x00, 0x0f, 0xef, 0xff, 0x0f, 0xef, 0xf6, 0x0f, 0xef, 0xd2, 0x0f,
        0x6f, 0x04, 0xce, 0x0f, 0x6f, 0xc8, 0x0f, 0xdc, 0x4e, 0x08, 0x0f, 0xf6, 0xc6, 0x0f, 0xd4,
        0xf8, 0x0f, 0xd5, 0xc9, 0x0f, 0xef, 0xd1, 0xff, 0xc9, 0x75, 0xe5, 0x0f, 0x7f, 0xbe, 0x00,
        0x01, 0x00, 0x00, 0x0f, 0x7f, 0x96, 0x08, 0x01, 0x00, 0x00, 0x0f, 0x77, 0xd9, 0xe8, 0xdd,
        0x9e, 0x10, 0x01, 0x00, 0x00, 0x0f, 0x6f, 0x9e, 0x10, 0x01, 0x00, 0x00, 0xd9, 0xe8, 0x48,
        0x0f, 0x7e, 0xf8, 0x48, 0x0f, 0x7e, 0xdb, 0xf4,
    ];
    let data: Vec<u8> = (0..0x90u32).map(|i| (i * 37 + 11) as u8).collect();
    let st = with_mm(&[]);
    let (fe, fst, mut fmem) = run(&code, st.clone(), &data);
    let (oe, ost, mut omem) = run_ooo(&code, st, &data);
    assert_eq!((fe, oe), (Exit::Halt, Exit::Halt));
    assert_eq!(fst.gpr, ost.gpr);
    assert_eq!(fst.fpu, ost.fpu);
    for off in (0..0x118).step_by(8) {
        assert_eq!(
            read8(&mut fmem, DATA + off),
            read8(&mut omem, DATA + off),
            "{off:#x}"
        );
    }
    let sum: u64 = (1..=16)
        .flat_map(|k| data[8 * k..8 * k + 8].iter())
        .map(|&b| u64::from(b))
        .sum();
    assert_eq!(
        read8(&mut fmem, DATA + 0x100),
        sum,
        "psadbw against 0 sums the bytes"
    );
    assert_eq!(
        fst.gpr[3], 0x3ff0_0000_0000_0000,
        "1.0 stored by fstp, read by movq"
    );
    assert_eq!(
        fst.gpr[0], 0xc000_0000_0000_0000,
        "fld1 onto a full stack: the indefinite in R7"
    );
}

#[test]
fn mmx_uops_depend_on_and_produce_the_x87_register_in_the_ooo_core() {
    use crate::ooo::uopinfo::reg_use;
    use crate::uop::{Op, MM0, X87};
    // paddb mm3, mm1 ; fld1 ; hlt
    let mut mem = FlatMemory::new();
    mem.map(0x1000, 0x1000);
    mem.write(0x1000, &[0x0f, 0xfc, 0xd9, 0xd9, 0xe8, 0xf4])
        .expect("code fits");
    let b =
        crate::translate::translate_block(&mut mem, 0x1000, crate::translate::Quirks::default())
            .expect("translates");
    let paddb = &b.uops[usize::from(b.insns[0].start)..usize::from(b.insns[0].end)];
    let uses: Vec<_> = paddb
        .iter()
        .filter(|u| u.op == Op::Vec)
        .map(reg_use)
        .collect();
    // The #MF check reads the x87 state; the add reads MM3, MM1 and the
    // x87 state and writes MM3 and the x87 state; the transition reads and
    // writes the x87 state.
    assert_eq!(uses.len(), 3);
    assert!(uses[0].srcs.contains(&X87) && !uses[0].dsts.contains(&X87));
    let add = &uses[1];
    for r in [MM0 + 3, MM0 + 1, X87] {
        assert!(add.srcs.contains(&r), "{r}");
    }
    assert!(add.dsts.contains(&(MM0 + 3)) && add.dsts.contains(&X87));
    assert!(uses[2].srcs.contains(&X87) && uses[2].dsts.contains(&X87));
}
