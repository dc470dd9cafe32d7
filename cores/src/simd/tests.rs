//! Tests of the move family and the shared machinery (#NM, alignment,
//! precise faults). Other families keep their tests in their own files and
//! use [`run`].

use crate::fpu::FpuState;
use crate::{ArchState, CpuidModel, Exit, FlatMemory, FuncCore, GuestMemory};

/// Code lives at 0x1000, data at 0x2000..0x4000 (two pages); 0x4000 is
/// unmapped.
pub(crate) const DATA: u64 = 0x2000;

/// Runs `code` (which should end in `hlt`) from `st` (RIP is set here) with
/// `data` written at [`DATA`]; returns the exit, the final state and the
/// memory.
pub(crate) fn run(code: &[u8], st: ArchState, data: &[u8]) -> (Exit, ArchState, FlatMemory) {
    run_on(CpuidModel::default(), code, st, data)
}

/// [`run`] on a core with the CPUID model `cpuid`.
pub(crate) fn run_on(
    cpuid: CpuidModel,
    code: &[u8],
    mut st: ArchState,
    data: &[u8],
) -> (Exit, ArchState, FlatMemory) {
    let mut mem = FlatMemory::new();
    mem.map(0x1000, 0x3000);
    mem.write(0x1000, code).expect("code fits");
    mem.write(DATA, data).expect("data fits");
    st.rip = 0x1000;
    let mut core = FuncCore::new(cpuid);
    let exit = core.run(&mut st, &mut mem, 1000);
    (exit, st, mem)
}

/// A state with `rsi` = [`DATA`] and the given XMM values.
pub(crate) fn with_xmm(xmm: &[(usize, u128)]) -> ArchState {
    let mut st = ArchState::default();
    st.gpr[6] = DATA;
    for &(i, v) in xmm {
        st.fpu.xmm[i] = v;
    }
    st
}

fn read(mem: &mut FlatMemory, addr: u64, n: usize) -> Vec<u8> {
    let mut b = vec![0u8; n];
    mem.read(addr, &mut b).expect("mapped");
    b
}

const A: u128 = 0x0011_2233_4455_6677_8899_aabb_ccdd_eeff;
const B: u128 = 0xf0e1_d2c3_b4a5_9687_7869_5a4b_3c2d_1e0f;

#[test]
fn movups_movaps_load_and_store_sixteen_bytes() {
    // movups xmm1, [rsi] ; movaps [rsi+16], xmm1 ; movdqu xmm2, [rsi+1] ; hlt
    let code = [
        0x0f, 0x10, 0x0e, 0x0f, 0x29, 0x4e, 0x10, 0xf3, 0x0f, 0x6f, 0x56, 0x01, 0xf4,
    ];
    let data: Vec<u8> = (0u8..32).collect();
    let (exit, st, mut mem) = run(&code, with_xmm(&[]), &data);
    assert_eq!(exit, Exit::Halt);
    let lo = u128::from_le_bytes(data[..16].try_into().expect("16"));
    assert_eq!(st.fpu.xmm[1], lo);
    assert_eq!(read(&mut mem, DATA + 16, 16), data[..16].to_vec());
    let mut bytes = data[1..16].to_vec();
    bytes.push(0); // the movaps stored data[0] at DATA + 16
    let un = u128::from_le_bytes(bytes.try_into().expect("16"));
    assert_eq!(st.fpu.xmm[2], un);
}

#[test]
fn misaligned_movaps_is_gp_and_changes_nothing() {
    // movaps xmm1, [rsi+8] ; hlt
    let code = [0x0f, 0x28, 0x4e, 0x08, 0xf4];
    let (exit, st, _) = run(&code, with_xmm(&[(1, A)]), &[0; 32]);
    let Exit::Fault(f) = exit else {
        panic!("{exit:?}")
    };
    assert_eq!((f.vector, f.rip, st.fpu.xmm[1]), (13, 0x1000, A));
}

#[test]
fn movss_movsd_merge_between_registers_and_zero_on_load() {
    // movss xmm1, xmm2 ; movsd xmm3, xmm2 ; movss xmm4, [rsi] ; movsd [rsi+8], xmm2 ; hlt
    let code = [
        0xf3, 0x0f, 0x10, 0xca, 0xf2, 0x0f, 0x10, 0xda, 0xf3, 0x0f, 0x10, 0x26, 0xf2, 0x0f, 0x11,
        0x56, 0x08, 0xf4,
    ];
    let st = with_xmm(&[(1, A), (2, B), (3, A), (4, A)]);
    let (exit, st, mut mem) = run(&code, st, &0x1234_5678u32.to_le_bytes());
    assert_eq!(exit, Exit::Halt);
    assert_eq!(st.fpu.xmm[1], (A & !0xffff_ffff) | (B & 0xffff_ffff));
    assert_eq!(
        st.fpu.xmm[3],
        (A & !u128::from(u64::MAX)) | (B & u128::from(u64::MAX))
    );
    assert_eq!(st.fpu.xmm[4], 0x1234_5678);
    assert_eq!(
        read(&mut mem, DATA + 8, 8),
        (B as u64).to_le_bytes().to_vec()
    );
}

#[test]
fn movd_movq_between_gprs_and_xmm() {
    // movd xmm1, eax ; movq xmm2, rax ; movq rbx, xmm3 ; movd ecx, xmm3 ; movq xmm4, xmm3 ; hlt
    let code = [
        0x66, 0x0f, 0x6e, 0xc8, 0x66, 0x48, 0x0f, 0x6e, 0xd0, 0x66, 0x48, 0x0f, 0x7e, 0xdb, 0x66,
        0x0f, 0x7e, 0xd9, 0xf3, 0x0f, 0x7e, 0xe3, 0xf4,
    ];
    let mut st = with_xmm(&[(1, A), (2, A), (3, B), (4, A)]);
    st.gpr[0] = 0x1122_3344_5566_7788;
    st.gpr[1] = u64::MAX;
    let (exit, st, _) = run(&code, st, &[]);
    assert_eq!(exit, Exit::Halt);
    assert_eq!(st.fpu.xmm[1], 0x5566_7788);
    assert_eq!(st.fpu.xmm[2], 0x1122_3344_5566_7788);
    assert_eq!(st.gpr[3], B as u64);
    assert_eq!(st.gpr[1], B as u32 as u64, "32-bit write zero-extends");
    assert_eq!(st.fpu.xmm[4], B & u128::from(u64::MAX));
}

#[test]
fn movhps_movlps_movhlps_movlhps() {
    // movhps xmm1, [rsi] ; movlps [rsi+8], xmm2 ; movhlps xmm3, xmm2 ; movlhps xmm4, xmm2 ; hlt
    let code = [
        0x0f, 0x16, 0x0e, 0x0f, 0x13, 0x56, 0x08, 0x0f, 0x12, 0xda, 0x0f, 0x16, 0xe2, 0xf4,
    ];
    let st = with_xmm(&[(1, A), (2, B), (3, A), (4, A)]);
    let (exit, st, mut mem) = run(&code, st, &0x0102_0304_0506_0708u64.to_le_bytes());
    assert_eq!(exit, Exit::Halt);
    let lo = |v: u128| v & u128::from(u64::MAX);
    assert_eq!(st.fpu.xmm[1], lo(A) | (0x0102_0304_0506_0708u128 << 64));
    assert_eq!(
        read(&mut mem, DATA + 8, 8),
        (B as u64).to_le_bytes().to_vec()
    );
    assert_eq!(st.fpu.xmm[3], (A & !lo(u128::MAX)) | (B >> 64));
    assert_eq!(st.fpu.xmm[4], lo(A) | (lo(B) << 64));
}

#[test]
fn a_sixteen_byte_store_across_into_an_unmapped_page_writes_nothing() {
    // movups [rsi+0x1ff8], xmm1 ; hlt  (crosses 0x4000, unmapped)
    let code = [0x0f, 0x11, 0x8e, 0xf8, 0x1f, 0x00, 0x00, 0xf4];
    let (exit, _, mut mem) = run(&code, with_xmm(&[(1, A)]), &[]);
    let Exit::Fault(f) = exit else {
        panic!("{exit:?}")
    };
    assert_eq!((f.vector, f.addr), (14, 0x4000));
    assert_eq!(read(&mut mem, DATA + 0x1ff8, 8), vec![0; 8]);
}

#[test]
fn ldmxcsr_stmxcsr_and_reserved_bits() {
    // ldmxcsr [rsi] ; stmxcsr [rsi+4] ; ldmxcsr [rsi+8] ; hlt
    let code = [
        0x0f, 0xae, 0x16, 0x0f, 0xae, 0x5e, 0x04, 0x0f, 0xae, 0x56, 0x08, 0xf4,
    ];
    let mut data = vec![0u8; 12];
    data[..4].copy_from_slice(&0x7f80u32.to_le_bytes());
    data[8..].copy_from_slice(&0x1_0000u32.to_le_bytes());
    let (exit, st, mut mem) = run(&code, with_xmm(&[]), &data);
    let Exit::Fault(f) = exit else {
        panic!("{exit:?}")
    };
    assert_eq!(
        (f.vector, f.rip),
        (13, 0x1007),
        "reserved MXCSR bit: #GP(0)"
    );
    assert_eq!(st.fpu.mxcsr, 0x7f80);
    assert_eq!(
        read(&mut mem, DATA + 4, 4),
        0x7f80u32.to_le_bytes().to_vec()
    );
}

#[test]
fn cr0_ts_raises_nm_before_anything_happens() {
    // movups xmm1, [rsi] ; hlt
    let code = [0x0f, 0x10, 0x0e, 0xf4];
    let mut st = with_xmm(&[(1, A)]);
    st.fpu.ts = true;
    let (exit, st, _) = run(&code, st, &[1; 16]);
    let Exit::Fault(f) = exit else {
        panic!("{exit:?}")
    };
    assert_eq!((f.vector, f.rip, st.fpu.xmm[1]), (7, 0x1000, A));
    assert!(f.detail.contains("#NM"), "{}", f.detail);
    assert_eq!(
        *st.fpu,
        FpuState {
            ts: true,
            xmm: st.fpu.xmm,
            ..FpuState::default()
        }
    );
}

#[test]
fn avx_still_raises_ud_naming_the_instruction() {
    // vaddps ymm0, ymm1, ymm2 ; hlt
    let (exit, _, _) = run(&[0xc5, 0xf4, 0x58, 0xc2, 0xf4], with_xmm(&[]), &[]);
    let Exit::Fault(f) = exit else {
        panic!("{exit:?}")
    };
    assert_eq!(f.vector, 6);
    assert!(f.detail.contains("vaddps"), "{}", f.detail);
}
