//! Per-family tests with concrete register, flag and memory values.

use crate::support::{run_to_halt, setup, CODE, DATA, STACK_TOP};
use smpsim_cores::arch::flags::{AF, CF, DF, OF, PF, SF, ZF};
use smpsim_cores::{ArchState, Exit, GuestMemory};

const RAX: usize = 0;
const RCX: usize = 1;
const RDX: usize = 2;
const RBX: usize = 3;
const RSP: usize = 4;
const RBP: usize = 5;
const RSI: usize = 6;
const RDI: usize = 7;

fn st() -> ArchState {
    ArchState::default()
}

fn arith(f: u64) -> u64 {
    f & (CF | PF | AF | ZF | SF | OF)
}

#[test]
fn add_wraps_to_zero_with_carry_zero_parity_aux() {
    let mut s = st();
    // mov rax, -1; add rax, 1
    run_to_halt(
        &[
            0x48, 0xc7, 0xc0, 0xff, 0xff, 0xff, 0xff, 0x48, 0x83, 0xc0, 0x01,
        ],
        &mut s,
    );
    assert_eq!(s.gpr[RAX], 0);
    assert_eq!(arith(s.rflags), CF | ZF | PF | AF);
    assert_eq!(s.rflags & 2, 2, "bit 1 stays set");
}

#[test]
fn sub_signed_overflow() {
    let mut s = st();
    s.gpr[RAX] = 0x8000_0000;
    // sub eax, 1
    run_to_halt(&[0x83, 0xe8, 0x01], &mut s);
    assert_eq!(s.gpr[RAX], 0x7fff_ffff);
    assert_eq!(arith(s.rflags), OF | AF | PF);
}

#[test]
fn operand_sizes_merge_or_zero_extend() {
    let mut s = st();
    s.gpr[RAX] = u64::MAX;
    s.gpr[RCX] = u64::MAX;
    s.gpr[RDX] = 0xffff_ffff_ffff_0000;
    // add eax, 0 ; mov cl, 0x12 ; mov dx, 0x1234
    run_to_halt(
        &[0x83, 0xc0, 0x00, 0xb1, 0x12, 0x66, 0xba, 0x34, 0x12],
        &mut s,
    );
    assert_eq!(s.gpr[RAX], 0xffff_ffff, "32-bit writes zero-extend");
    assert_eq!(s.gpr[RCX], 0xffff_ffff_ffff_ff12, "8-bit writes merge");
    assert_eq!(s.gpr[RDX], 0xffff_ffff_ffff_1234, "16-bit writes merge");
}

#[test]
fn high_byte_registers() {
    let mut s = st();
    s.gpr[RAX] = 0x1234;
    s.gpr[RBX] = 0xff00;
    // add ah, 0x10 ; mov bl, ah ; xchg bh, ah? (86 fc = xchg ah, bh)
    run_to_halt(&[0x80, 0xc4, 0x10, 0x88, 0xe3, 0x86, 0xfc], &mut s);
    assert_eq!(s.gpr[RAX], 0xff34);
    assert_eq!(s.gpr[RBX], 0x2222);
}

#[test]
fn memory_read_modify_write_and_locked_ops() {
    let mut s = st();
    s.gpr[RSI] = DATA;
    s.gpr[RAX] = 3;
    let code = [
        0x48, 0x83, 0x06, 0x05, // add qword [rsi], 5
        0xf0, 0x48, 0x0f, 0xc1, 0x06, // lock xadd [rsi], rax
        0xf0, 0x83, 0x6e, 0x08, 0x01, // lock sub dword [rsi+8], 1
    ];
    let (mut core, mut mem, _) = setup(&code);
    mem.store(DATA, 8, 10).expect("mapped");
    s.rip = CODE;
    s.gpr[RSP] = STACK_TOP - 0x100;
    assert_eq!(core.run(&mut s, &mut mem, 100), Exit::Halt);
    assert_eq!(s.gpr[RAX], 15, "xadd returns the old value");
    assert_eq!(mem.load(DATA, 8), Ok(18));
    assert_eq!(mem.load(DATA + 8, 4), Ok(0xffff_ffff));
    assert_eq!(arith(s.rflags), CF | SF | AF | PF);
}

#[test]
fn cmpxchg_success_and_failure() {
    let code = [0xf0, 0x48, 0x0f, 0xb1, 0x0e]; // lock cmpxchg [rsi], rcx
    for (mem_val, rax, want_mem, want_rax, zf) in [(7u64, 7u64, 99u64, 7u64, ZF), (8, 7, 8, 8, 0)] {
        let (mut core, mut mem, mut s) = setup(&code);
        mem.store(DATA, 8, mem_val).expect("mapped");
        s.gpr[RSI] = DATA;
        s.gpr[RAX] = rax;
        s.gpr[RCX] = 99;
        assert_eq!(core.run(&mut s, &mut mem, 10), Exit::Halt);
        assert_eq!(mem.load(DATA, 8), Ok(want_mem));
        assert_eq!((s.gpr[RAX], s.rflags & ZF), (want_rax, zf));
    }
}

#[test]
fn cmpxchg16b_and_8b() {
    // cmpxchg16b [rsi] ; cmpxchg8b [rsi+16]
    let code = [0xf0, 0x48, 0x0f, 0xc7, 0x0e, 0x0f, 0xc7, 0x4e, 0x10];
    let (mut core, mut mem, mut s) = setup(&code);
    mem.store(DATA, 8, 1).expect("mapped");
    mem.store(DATA + 8, 8, 2).expect("mapped");
    mem.store(DATA + 16, 8, 0x5555_5555_6666_6666)
        .expect("mapped");
    s.gpr[RSI] = DATA;
    s.gpr[RAX] = 1;
    s.gpr[RDX] = 2;
    s.gpr[RBX] = 0xaaaa;
    s.gpr[RCX] = 0xbbbb;
    assert_eq!(core.run(&mut s, &mut mem, 1), Exit::InsnLimit);
    assert_eq!(
        (mem.load(DATA, 8), mem.load(DATA + 8, 8)),
        (Ok(0xaaaa), Ok(0xbbbb))
    );
    assert_ne!(s.rflags & ZF, 0);
    // The 8-byte compare fails: edx:eax gets the memory value, zero-extended.
    assert_eq!(core.run(&mut s, &mut mem, 10), Exit::Halt);
    assert_eq!(s.rflags & ZF, 0);
    assert_eq!((s.gpr[RAX], s.gpr[RDX]), (0x6666_6666, 0x5555_5555));
    assert_eq!(mem.load(DATA + 16, 8), Ok(0x5555_5555_6666_6666));
}

#[test]
fn call_ret_push_pop() {
    // call f; hlt; f: push rbx; mov eax, 7; pop rcx; ret
    let code = [
        0xe8, 0x01, 0x00, 0x00, 0x00, 0xf4, 0x53, 0xb8, 0x07, 0x00, 0x00, 0x00, 0x59, 0xc3,
    ];
    let (mut core, mut mem, mut s) = setup(&code);
    s.gpr[RBX] = 0x1122;
    let sp = s.gpr[RSP];
    assert_eq!(core.run(&mut s, &mut mem, 100), Exit::Halt);
    assert_eq!(s.rip, CODE + 6);
    assert_eq!((s.gpr[RAX], s.gpr[RCX], s.gpr[RSP]), (7, 0x1122, sp));
    assert_eq!(
        mem.load(sp - 8, 8),
        Ok(CODE + 5),
        "return address was pushed"
    );
}

#[test]
fn indirect_jump_and_call_through_memory() {
    // mov rax, CODE+0x20 ; jmp rax ; (pad) ... at 0x20: call [rsi]; at target: mov ecx, 9; ret
    let mut code = vec![0x48, 0xc7, 0xc0];
    code.extend_from_slice(&u32::try_from(CODE + 0x20).expect("fits").to_le_bytes());
    code.extend_from_slice(&[0xff, 0xe0]); // jmp rax
    code.resize(0x20, 0x90);
    code.extend_from_slice(&[0xff, 0x16, 0xf4]); // call [rsi]; hlt
    code.resize(0x30, 0x90);
    code.extend_from_slice(&[0xb9, 0x09, 0x00, 0x00, 0x00, 0xc3]); // mov ecx, 9; ret
    let (mut core, mut mem, mut s) = setup(&code);
    mem.store(DATA, 8, CODE + 0x30).expect("mapped");
    s.gpr[RSI] = DATA;
    assert_eq!(core.run(&mut s, &mut mem, 100), Exit::Halt);
    assert_eq!((s.gpr[RCX], s.rip), (9, CODE + 0x23));
}

#[test]
fn enter_and_leave() {
    // enter 0x20, 0 ; leave
    let mut s = st();
    s.gpr[RBP] = 0xbbbb;
    let (mut core, mut mem, base) = setup(&[0xc8, 0x20, 0x00, 0x00, 0xc9]);
    s.rip = CODE;
    s.gpr[RSP] = base.gpr[RSP];
    let sp = s.gpr[RSP];
    assert_eq!(core.run(&mut s, &mut mem, 1), Exit::InsnLimit);
    assert_eq!((s.gpr[RBP], s.gpr[RSP]), (sp - 8, sp - 8 - 0x20));
    assert_eq!(mem.load(sp - 8, 8), Ok(0xbbbb));
    assert_eq!(core.run(&mut s, &mut mem, 10), Exit::Halt);
    assert_eq!((s.gpr[RBP], s.gpr[RSP]), (0xbbbb, sp));
}

#[test]
fn enter_with_nesting_level_copies_frame_pointers() {
    let (mut core, mut mem, mut s) = setup(&[0xc8, 0x10, 0x00, 0x02]); // enter 0x10, 2
    let sp = s.gpr[RSP];
    s.gpr[RBP] = DATA + 0x100;
    mem.store(DATA + 0xf8, 8, 0x1234).expect("mapped");
    assert_eq!(core.run(&mut s, &mut mem, 10), Exit::Halt);
    let frame = sp - 8;
    assert_eq!(mem.load(sp - 8, 8), Ok(DATA + 0x100), "old rbp");
    assert_eq!(
        mem.load(sp - 16, 8),
        Ok(0x1234),
        "copied outer frame pointer"
    );
    assert_eq!(mem.load(sp - 24, 8), Ok(frame), "this frame");
    assert_eq!((s.gpr[RBP], s.gpr[RSP]), (frame, sp - 24 - 0x10));
}

#[test]
fn rep_movs_stos_and_scas() {
    let code = [
        0xf3, 0xa4, // rep movsb
        0xb0, 0x77, // mov al, 0x77
        0xb9, 0x04, 0x00, 0x00, 0x00, // mov ecx, 4
        0xf3, 0x48, 0xab, // rep stosq
        0xbf, 0x00, 0x00, 0x60, 0x00, // mov edi, DATA
        0xb0, 0x05, // mov al, 5
        0xb9, 0x40, 0x00, 0x00, 0x00, // mov ecx, 64
        0xf2, 0xae, // repne scasb
    ];
    let (mut core, mut mem, mut s) = setup(&code);
    mem.write(DATA, &[1, 2, 3, 4, 5, 6, 7, 8, 9, 10])
        .expect("mapped");
    s.gpr[RSI] = DATA;
    s.gpr[RDI] = DATA + 0x100;
    s.gpr[RCX] = 10;
    assert_eq!(core.run(&mut s, &mut mem, 1000), Exit::Halt);
    let mut buf = [0u8; 10];
    mem.read(DATA + 0x100, &mut buf).expect("mapped");
    assert_eq!(buf, [1, 2, 3, 4, 5, 6, 7, 8, 9, 10]);
    assert_eq!(mem.load(DATA + 0x10a, 8), Ok(0x77), "stosq stores rax");
    assert_eq!(mem.load(DATA + 0x122, 8), Ok(0x77));
    assert_eq!(s.gpr[RDI], DATA + 5, "scasb stops after the match");
    assert_eq!(s.gpr[RCX], 64 - 5);
    assert_ne!(s.rflags & ZF, 0);
}

#[test]
fn repe_cmps_backwards_with_df() {
    // std ; repe cmpsb ; cld
    let code = [0xfd, 0xf3, 0xa6, 0xfc];
    let (mut core, mut mem, mut s) = setup(&code);
    mem.write(DATA, b"abcXef").expect("mapped");
    mem.write(DATA + 0x10, b"abcdef").expect("mapped");
    s.gpr[RSI] = DATA + 5;
    s.gpr[RDI] = DATA + 0x15;
    s.gpr[RCX] = 6;
    assert_eq!(core.run(&mut s, &mut mem, 100), Exit::Halt);
    assert_eq!(s.gpr[RSI], DATA + 2, "stopped after comparing 'X' with 'd'");
    assert_eq!(s.gpr[RCX], 3);
    assert_eq!(s.rflags & (ZF | DF), 0);
    assert_eq!(s.rflags & CF, CF, "'X' (0x58) - 'd' (0x64) borrows");
}

#[test]
fn rep_iterations_count_as_instructions_and_resume() {
    let (mut core, mut mem, mut s) = setup(&[0xf3, 0xaa]); // rep stosb
    s.gpr[RDI] = DATA;
    s.gpr[RCX] = 10;
    s.gpr[RAX] = 0xab;
    assert_eq!(core.run(&mut s, &mut mem, 3), Exit::InsnLimit);
    assert_eq!((s.rip, s.gpr[RCX], s.gpr[RDI]), (CODE, 7, DATA + 3));
    assert_eq!(core.run(&mut s, &mut mem, 100), Exit::Halt);
    assert_eq!((s.gpr[RCX], s.gpr[RDI]), (0, DATA + 10));
    assert_eq!(core.stats().instructions, 11, "10 iterations and the hlt");
}

#[test]
fn cpuid_rdtsc_rdtscp() {
    // cpuid ; nop ; rdtsc ; mov esi, eax ; rdtscp
    let code = [0x0f, 0xa2, 0x90, 0x0f, 0x31, 0x89, 0xc6, 0x0f, 0x01, 0xf9];
    let (mut core, mut mem, mut s) = setup(&code);
    core.set_cycles(1000);
    assert_eq!(core.run(&mut s, &mut mem, 100), Exit::Halt);
    assert_eq!(s.gpr[RSI], 1002, "two instructions retired before rdtsc");
    assert_eq!(s.gpr[RAX], 1004);
    assert_eq!(s.gpr[RCX], 0, "TSC_AUX of context 0");
    assert_eq!(s.gpr[RBX], u64::from(u32::from_le_bytes(*b"Auth")));
    assert_eq!(core.cycles(), 1006);
}

#[test]
fn fs_gs_base_and_segment_overrides() {
    let code = [
        0xf3, 0x48, 0x0f, 0xae, 0xd0, // wrfsbase rax
        0xf3, 0x48, 0x0f, 0xae, 0xc1, // rdfsbase rcx
        0x64, 0x48, 0x8b, 0x14, 0x25, 0x10, 0x00, 0x00, 0x00, // mov rdx, fs:[0x10]
        0x65, 0x48, 0x89, 0x14, 0x25, 0x20, 0x00, 0x00, 0x00, // mov gs:[0x20], rdx
    ];
    let (mut core, mut mem, mut s) = setup(&code);
    mem.store(DATA + 0x10, 8, 0xfeed).expect("mapped");
    s.gpr[RAX] = DATA;
    s.gs_base = DATA + 0x100;
    assert_eq!(core.run(&mut s, &mut mem, 100), Exit::Halt);
    assert_eq!((s.fs_base, s.gpr[RCX], s.gpr[RDX]), (DATA, DATA, 0xfeed));
    assert_eq!(mem.load(DATA + 0x120, 8), Ok(0xfeed));
}

#[test]
fn bit_string_with_register_offset() {
    // bts [rsi], rcx (rcx = 100) ; bt [rsi], rdx (rdx = -1)
    let code = [0x48, 0x0f, 0xab, 0x0e, 0x48, 0x0f, 0xa3, 0x16];
    let (mut core, mut mem, mut s) = setup(&code);
    mem.store(DATA + 0x7f, 1, 0x80).expect("mapped");
    s.gpr[RSI] = DATA + 0x80;
    s.gpr[RCX] = 100;
    s.gpr[RDX] = u64::MAX;
    assert_eq!(core.run(&mut s, &mut mem, 100), Exit::Halt);
    assert_eq!(
        mem.load(DATA + 0x80 + 8, 8),
        Ok(1 << 36),
        "bit 100 = qword 1, bit 36"
    );
    assert_ne!(s.rflags & CF, 0, "bit -1 is bit 7 of the byte below");
}

#[test]
fn flags_to_and_from_registers() {
    // stc ; lahf ; pushfq ; pop rcx ; mov ah, 0xd5 ; sahf
    let code = [0xf9, 0x9f, 0x9c, 0x59, 0xb4, 0xd5, 0x9e];
    let (mut core, mut mem, mut s) = setup(&code);
    assert_eq!(core.run(&mut s, &mut mem, 100), Exit::Halt);
    assert_eq!(
        s.gpr[RCX] & 0xfff,
        0x203,
        "CF, bit 1 and IF (virtual, always set)"
    );
    assert_eq!(arith(s.rflags), CF | PF | AF | ZF | SF);
}

#[test]
fn loop_and_movzx_movsx_from_memory() {
    // xor eax, eax ; L: add eax, 2 ; loop L ; movsx rdx, byte [rsi] ; movzx ebx, word [rsi]
    let code = [
        0x31, 0xc0, 0x83, 0xc0, 0x02, 0xe2, 0xfb, 0x48, 0x0f, 0xbe, 0x16, 0x0f, 0xb7, 0x1e,
    ];
    let (mut core, mut mem, mut s) = setup(&code);
    mem.store(DATA, 2, 0x80f0).expect("mapped");
    s.gpr[RCX] = 5;
    s.gpr[RSI] = DATA;
    s.gpr[RBX] = u64::MAX;
    assert_eq!(core.run(&mut s, &mut mem, 100), Exit::Halt);
    assert_eq!((s.gpr[RAX], s.gpr[RCX]), (10, 0));
    assert_eq!(s.gpr[RDX], 0xffff_ffff_ffff_fff0);
    assert_eq!(s.gpr[RBX], 0x80f0);
}

#[test]
fn address_size_override_truncates() {
    // lea eax, [ecx+edx] with 67h ; mov ebx, [esi] (67h)
    let code = [0x67, 0x8d, 0x04, 0x11, 0x67, 0x8b, 0x1e];
    let (mut core, mut mem, mut s) = setup(&code);
    mem.store(DATA, 4, 42).expect("mapped");
    s.gpr[RCX] = 0xffff_ffff;
    s.gpr[RDX] = 2;
    s.gpr[RSI] = 0x1_0000_0000 | DATA;
    assert_eq!(core.run(&mut s, &mut mem, 100), Exit::Halt);
    assert_eq!((s.gpr[RAX], s.gpr[RBX]), (1, 42));
}

#[test]
fn instruction_limit_is_exact_and_resumable() {
    // L: inc rax ; dec rcx ; jnz L
    let code = [0x48, 0xff, 0xc0, 0x48, 0xff, 0xc9, 0x75, 0xf8];
    let (mut core, mut mem, mut s) = setup(&code);
    s.gpr[RCX] = 100;
    let mut whole = s.clone();
    assert_eq!(core.run(&mut whole, &mut mem, 1_000), Exit::Halt);
    let mut steps = 0;
    loop {
        match core.run(&mut s, &mut mem, 7) {
            Exit::InsnLimit => steps += 1,
            Exit::Halt => break,
            e => panic!("unexpected {e:?}"),
        }
    }
    assert_eq!(s, whole);
    // 301 instructions (the hlt last): 42 full chunks, then the halt.
    assert_eq!(steps, 42);
}

#[test]
fn syscall_and_hlt_exit_after_the_instruction() {
    let (mut core, mut mem, mut s) = setup(&[0x0f, 0x05]);
    s.gpr[RCX] = 5;
    assert_eq!(core.run(&mut s, &mut mem, 100), Exit::Syscall);
    assert_eq!((s.rip, s.gpr[RCX]), (CODE + 2, 5));
    assert_eq!(core.run(&mut s, &mut mem, 100), Exit::Halt);
    assert_eq!(s.rip, CODE + 3);
}

#[test]
fn cpuid_features_match_what_executes() {
    use smpsim_cores::CpuidModel;
    let m = CpuidModel::default();
    let [_, _, ecx1, edx1] = m.query(1, 0);
    let [_, ebx7, _, _] = m.query(7, 0);
    let [_, _, ecx_e1, edx_e1] = m.query(0x8000_0001, 0);
    // (advertised?, bytes of an instruction needing the feature)
    let cases: [(bool, &[u8]); 16] = [
        (ecx1 & (1 << 23) != 0, &[0xf3, 0x48, 0x0f, 0xb8, 0xc1]), // popcnt
        (ecx1 & (1 << 13) != 0, &[0x48, 0x0f, 0xc7, 0x0e]),       // cmpxchg16b [rsi]
        (edx1 & (1 << 15) != 0, &[0x0f, 0x44, 0xc1]),             // cmove
        (ecx_e1 & (1 << 5) != 0, &[0xf3, 0x0f, 0xbd, 0xc1]),      // lzcnt
        (edx_e1 & (1 << 27) != 0, &[0x0f, 0x01, 0xf9]),           // rdtscp
        (ebx7 & 1 != 0, &[0xf3, 0x48, 0x0f, 0xae, 0xc1]),         // rdfsbase
        (edx1 & (1 << 25) != 0, &[0x0f, 0x58, 0xc1]),             // addps (SSE)
        (edx1 & (1 << 26) != 0, &[0x66, 0x0f, 0xef, 0xc0]),       // pxor (SSE2)
        (edx1 & 1 != 0, &[0xd9, 0xe8]),                           // fld1 (x87)
        (edx1 & (1 << 24) != 0, &[0x0f, 0xae, 0x06]),             // fxsave [rsi]
        (ecx1 & 1 != 0, &[0xf2, 0x0f, 0x7c, 0xc1]),               // haddps (SSE3)
        (ecx1 & (1 << 9) != 0, &[0x66, 0x0f, 0x38, 0x00, 0xc1]),  // pshufb (SSSE3)
        (ecx1 & (1 << 19) != 0, &[0x66, 0x0f, 0x38, 0x17, 0xc1]), // ptest (SSE4.1)
        (ecx1 & (1 << 20) != 0, &[0x66, 0x0f, 0x38, 0x37, 0xc1]), // pcmpgtq (SSE4.2)
        (ebx7 & (1 << 3) != 0, &[0xc4, 0xe2, 0x70, 0xf2, 0xc2]),  // andn eax, ecx, edx (BMI1)
        (ebx7 & (1 << 8) != 0, &[0xc4, 0xe2, 0x6b, 0xf7, 0xc1]),  // shrx eax, ecx, edx (BMI2)
    ];
    for (advertised, bytes) in cases {
        let (mut core, mut mem, mut s) = setup(bytes);
        s.gpr[RSI] = DATA;
        let e = core.run(&mut s, &mut mem, 10);
        assert_eq!(e == Exit::Halt, advertised, "{bytes:02x?}: {e:?}");
    }
}

#[test]
fn loope_and_loopne_check_zf_and_count() {
    // L: cmp byte [rsi+rcx-1], 7 ; loopne L   -> scans down for a 7
    let code = [0x80, 0x7c, 0x0e, 0xff, 0x07, 0xe0, 0xf9];
    let (mut core, mut mem, mut s) = setup(&code);
    mem.write(DATA, &[1, 7, 3, 4, 5]).expect("mapped");
    s.gpr[RSI] = DATA;
    s.gpr[RCX] = 5;
    assert_eq!(core.run(&mut s, &mut mem, 100), Exit::Halt);
    assert_eq!(s.gpr[RCX], 1, "stopped on the 7 at index 1");
    // L: cmp byte [rsi+rcx-1], 1 ; loope L   -> runs while bytes are 1
    let code = [0x80, 0x7c, 0x0e, 0xff, 0x01, 0xe1, 0xf9];
    let (mut core, mut mem, mut s) = setup(&code);
    mem.write(DATA, &[2, 1, 1, 1]).expect("mapped");
    s.gpr[RSI] = DATA;
    s.gpr[RCX] = 4;
    assert_eq!(core.run(&mut s, &mut mem, 100), Exit::Halt);
    assert_eq!(s.gpr[RCX], 0, "count ran out on the mismatch at index 0");
    assert_eq!(s.rflags & ZF, 0);
}

#[test]
fn string_ops_with_32_bit_addressing_and_segment_override() {
    // 67 f3 a4: rep movsb with esi/edi/ecx ; 64 ac: lodsb from fs:[rsi]
    let code = [0x67, 0xf3, 0xa4, 0x64, 0xac];
    let (mut core, mut mem, mut s) = setup(&code);
    mem.write(DATA, &[9, 8, 7]).expect("mapped");
    mem.write(DATA + 0x43, &[0x55]).expect("mapped");
    s.gpr[RSI] = 0xffff_ffff_0000_0000 | DATA; // upper halves ignored with 67h
    s.gpr[RDI] = 0x1234_0000_0000_0000 | (DATA + 0x100);
    s.gpr[RCX] = 0x7777_0000_0000_0003; // only ecx counts
    s.fs_base = 0x40;
    assert_eq!(core.run(&mut s, &mut mem, 100), Exit::Halt);
    let mut buf = [0u8; 3];
    mem.read(DATA + 0x100, &mut buf).expect("mapped");
    assert_eq!(buf, [9, 8, 7]);
    // 32-bit writes zero-extend; lodsb then read fs:[DATA + 3] and moved rsi.
    assert_eq!((s.gpr[RCX], s.gpr[RDI]), (0, DATA + 0x103));
    assert_eq!((s.gpr[RAX] & 0xff, s.gpr[RSI]), (0x55, DATA + 4));
}
