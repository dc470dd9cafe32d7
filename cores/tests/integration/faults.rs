//! Precise faults (#UD, #DE, #PF, #GP) and self-modifying code.

use crate::support::{setup, CODE, DATA};
use smpsim_cores::arch::flags::CF;
use smpsim_cores::{Exit, Fault, GuestMemory};

const RAX: usize = 0;
const RCX: usize = 1;
const RDX: usize = 2;
const RSP: usize = 4;
const RSI: usize = 6;

fn fault(e: Exit) -> Fault {
    match e {
        Exit::Fault(f) => f,
        other => panic!("expected a fault, got {other:?}"),
    }
}

#[test]
fn ud_names_the_instruction_bytes_and_mnemonic() {
    // nop ; vzeroupper (AVX: not implemented)
    let (mut core, mut mem, mut s) = setup(&[0x90, 0xc5, 0xf8, 0x77]);
    let f = fault(core.run(&mut s, &mut mem, 100));
    assert_eq!((f.vector, f.rip, s.rip), (6, CODE + 1, CODE + 1));
    assert!(f.detail.contains("vzeroupper"), "{}", f.detail);
    assert!(f.detail.contains("c5 f8 77"), "{}", f.detail);
}

#[test]
fn privileged_instructions_raise_what_ring_3_hardware_raises() {
    for (bytes, vector, name) in [
        (&[0xfa][..], 13, "cli"),
        (&[0x0f, 0x22, 0xc0][..], 13, "cr0"),
        (&[0x0f, 0x20, 0xd0][..], 13, "cr2"),
        (&[0x0f, 0x23, 0xf8][..], 13, "dr7"),
        (&[0x0f, 0x32][..], 13, "rdmsr"),
        (&[0x0f, 0x30][..], 13, "wrmsr"),
        (&[0x0f, 0x01, 0x0e][..], 13, "sidt"),
        (&[0xe6, 0x80][..], 13, "out"),
        (&[0xec][..], 13, "in"),
        (&[0x8e, 0xd8][..], 13, "ds"),
        (&[0x8c, 0xd8][..], 13, "ds"),
        (&[0x0f, 0xa9][..], 13, "gs"),
        (&[0xcd, 0x80][..], 13, "int"),
        (&[0xcd, 0x03][..], 3, "int"),
        (&[0xf1][..], 1, "int1"),
        (&[0x0f, 0x0b][..], 6, "ud2"),
    ] {
        let (mut core, mut mem, mut s) = setup(bytes);
        let before = s.clone();
        let f = fault(core.run(&mut s, &mut mem, 100));
        assert_eq!((f.vector, f.rip), (vector, CODE), "{name}");
        assert!(f.detail.contains(name), "{name}: {}", f.detail);
        assert_eq!(s, before, "{name}: nothing retired");
    }
}

#[test]
fn avx_instructions_and_ud2_are_ud() {
    for (bytes, name) in [
        (&[0xc5, 0xf4, 0x58, 0xc2][..], "vaddps"),
        (&[0xc5, 0xf8, 0x77][..], "vzeroupper"),
        (&[0x0f, 0x0b][..], "ud2"),
    ] {
        let (mut core, mut mem, mut s) = setup(bytes);
        let f = fault(core.run(&mut s, &mut mem, 100));
        assert_eq!(f.vector, 6, "{name}");
        assert!(f.detail.contains(name), "{name}: {}", f.detail);
    }
}

#[test]
fn divide_by_zero_and_quotient_overflow_raise_de() {
    // div rcx
    for (rdx, rcx) in [(0u64, 0u64), (1, 1)] {
        let (mut core, mut mem, mut s) = setup(&[0x48, 0xf7, 0xf1]);
        s.gpr[RAX] = 5;
        s.gpr[RDX] = rdx;
        s.gpr[RCX] = rcx;
        let before = s.clone();
        let f = fault(core.run(&mut s, &mut mem, 100));
        assert_eq!((f.vector, f.rip), (0, CODE));
        assert_eq!(s, before, "no register changed");
    }
    // idiv rcx: i64::MIN / -1
    let (mut core, mut mem, mut s) = setup(&[0x48, 0xf7, 0xf9]);
    s.gpr[RAX] = 1 << 63;
    s.gpr[RDX] = u64::MAX;
    s.gpr[RCX] = u64::MAX;
    assert_eq!(fault(core.run(&mut s, &mut mem, 100)).vector, 0);
}

#[test]
fn unmapped_load_is_pf_with_address_and_state_before() {
    // inc rcx ; mov rax, [0x1234_5678]
    let (mut core, mut mem, mut s) = setup(&[
        0x48, 0xff, 0xc1, 0x48, 0x8b, 0x04, 0x25, 0x78, 0x56, 0x34, 0x12,
    ]);
    let f = fault(core.run(&mut s, &mut mem, 100));
    assert_eq!((f.vector, f.rip, f.addr), (14, CODE + 3, 0x1234_5678));
    assert_eq!(
        (s.gpr[RCX], s.rip),
        (1, CODE + 3),
        "the inc retired, the load did not"
    );
}

#[test]
fn faulting_push_leaves_rsp_and_memory_alone() {
    let (mut core, mut mem, mut s) = setup(&[0x50]); // push rax
    s.gpr[RSP] = 0x10_0004; // the page below is unmapped
    let f = fault(core.run(&mut s, &mut mem, 100));
    assert_eq!((f.vector, f.addr), (14, 0x0f_fffc));
    assert_eq!(s.gpr[RSP], 0x10_0004);
}

#[test]
fn rmw_fault_keeps_flags_and_page_crossing_store_writes_nothing() {
    // stc ; add [rsi], eax  (rsi unmapped)
    let (mut core, mut mem, mut s) = setup(&[0xf9, 0x01, 0x06]);
    s.gpr[RSI] = 0x9999_0000;
    let f = fault(core.run(&mut s, &mut mem, 100));
    assert_eq!((f.vector, f.rip), (14, CODE + 1));
    assert_eq!(s.rflags & CF, CF, "flags are those before the add");
    // mov [rsi], rax across the end of the data mapping
    let (mut core, mut mem, mut s) = setup(&[0x48, 0x89, 0x06]);
    s.gpr[RSI] = DATA + 0x2000 - 4;
    s.gpr[RAX] = u64::MAX;
    let f = fault(core.run(&mut s, &mut mem, 100));
    assert_eq!((f.vector, f.addr), (14, DATA + 0x2000));
    assert_eq!(mem.load(DATA + 0x2000 - 4, 4), Ok(0), "no partial write");
}

#[test]
fn pop_to_faulting_memory_rolls_back_rsp() {
    // pop qword [rsi]  (rsi unmapped): the load succeeds, rsp moves, then the store faults
    let (mut core, mut mem, mut s) = setup(&[0x8f, 0x06]);
    s.gpr[RSI] = 0x9999_0000;
    let sp = s.gpr[RSP];
    let f = fault(core.run(&mut s, &mut mem, 100));
    assert_eq!(f.vector, 14);
    assert_eq!(s.gpr[RSP], sp);
}

#[test]
fn rep_movs_fault_stops_at_the_faulting_element() {
    // rep movsb from DATA to just below the end of the data mapping
    let (mut core, mut mem, mut s) = setup(&[0xf3, 0xa4]);
    s.gpr[RSI] = DATA;
    s.gpr[7] = DATA + 0x2000 - 3;
    s.gpr[RCX] = 10;
    let f = fault(core.run(&mut s, &mut mem, 100));
    assert_eq!((f.vector, f.rip, f.addr), (14, CODE, DATA + 0x2000));
    assert_eq!(
        (s.gpr[RCX], s.gpr[RSI]),
        (7, DATA + 3),
        "three iterations completed"
    );
}

#[test]
fn fetch_from_unmapped_page_faults_at_the_target() {
    // mov eax, 0x5000_0000 ; jmp rax
    let (mut core, mut mem, mut s) = setup(&[0xb8, 0x00, 0x00, 0x00, 0x50, 0xff, 0xe0]);
    let f = fault(core.run(&mut s, &mut mem, 100));
    assert_eq!(
        (f.vector, f.rip, f.addr, s.rip),
        (14, 0x5000_0000, 0x5000_0000, 0x5000_0000)
    );
}

#[test]
fn instruction_straddling_into_unmapped_page_faults_on_the_second_page() {
    let (mut core, mut mem, mut s) = setup(&[]);
    let end = CODE + 0x2000;
    mem.write(end - 2, &[0x48, 0xb8]).expect("mapped"); // mov rax, imm64 cut after 2 bytes
    s.rip = end - 2;
    let f = fault(core.run(&mut s, &mut mem, 100));
    assert_eq!((f.vector, f.rip, f.addr), (14, end - 2, end));
}

#[test]
fn misaligned_cmpxchg16b_and_noncanonical_wrfsbase_are_gp() {
    let (mut core, mut mem, mut s) = setup(&[0x48, 0x0f, 0xc7, 0x0e]); // cmpxchg16b [rsi]
    s.gpr[RSI] = DATA + 8;
    assert_eq!(fault(core.run(&mut s, &mut mem, 100)).vector, 13);
    let (mut core, mut mem, mut s) = setup(&[0xf3, 0x48, 0x0f, 0xae, 0xd0]); // wrfsbase rax
    s.gpr[RAX] = 0x8000_0000_0000_0000;
    assert_eq!(fault(core.run(&mut s, &mut mem, 100)).vector, 13);
    assert_eq!(s.fs_base, 0);
}

#[test]
fn self_modifying_code_in_the_same_block() {
    // mov byte [rip+1], 5 ; mov eax, 1   (the store patches the immediate)
    let code = [
        0xc6, 0x05, 0x01, 0x00, 0x00, 0x00, 0x05, 0xb8, 0x01, 0x00, 0x00, 0x00,
    ];
    let (mut core, mut mem, mut s) = setup(&code);
    assert_eq!(core.run(&mut s, &mut mem, 100), Exit::Halt);
    assert_eq!(s.gpr[RAX], 5);
    assert!(core.stats().cache.invalidations >= 1);
}

#[test]
fn self_modifying_code_in_a_loop_and_by_other_writers() {
    // L: mov eax, 1 (patched each round: imm += 1 via inc byte [rip-...]) ; dec ecx ; jnz L
    // 0: b8 01 00 00 00        mov eax, imm
    // 5: fe 05 f6 ff ff ff     inc byte [rip-10] -> byte at 1 (next ip = 11, 11-10 = 1)
    // b: ff c9                 dec ecx
    // d: 75 f1                 jnz 0
    let code = [
        0xb8, 0x01, 0, 0, 0, 0xfe, 0x05, 0xf6, 0xff, 0xff, 0xff, 0xff, 0xc9, 0x75, 0xf1,
    ];
    let (mut core, mut mem, mut s) = setup(&code);
    s.gpr[RCX] = 5;
    assert_eq!(core.run(&mut s, &mut mem, 1000), Exit::Halt);
    assert_eq!(s.gpr[RAX], 5, "each round sees the previous round's patch");
    // Another writer (not this core) patches the code: invalidate_code makes it visible.
    mem.write(CODE + 1, &[42]).expect("mapped");
    assert!(core.invalidate_code(CODE) >= 1);
    let mut s2 = s.clone();
    s2.rip = CODE;
    s2.gpr[RCX] = 1;
    assert_eq!(core.run(&mut s2, &mut mem, 1000), Exit::Halt);
    assert_eq!(s2.gpr[RAX], 42);
}

#[test]
fn return_to_noncanonical_address_is_gp_at_the_ret() {
    let (mut core, mut mem, mut s) = setup(&[0xc3]); // ret
    let sp = s.gpr[RSP];
    mem.store(sp, 8, 0x8000_0000_0000_0000).expect("mapped");
    let f = fault(core.run(&mut s, &mut mem, 100));
    assert_eq!((f.vector, f.rip, s.gpr[RSP]), (13, CODE, sp));
}

#[test]
fn misused_lock_and_16_bit_branches_are_ud() {
    for bytes in [
        &[0xf0, 0x01, 0xc8][..],
        &[0x66, 0xc3][..],
        &[0x66, 0xff, 0xe0][..],
    ] {
        let (mut core, mut mem, mut s) = setup(bytes);
        let f = fault(core.run(&mut s, &mut mem, 100));
        assert_eq!((f.vector, f.rip), (6, CODE), "{bytes:02x?}: {}", f.detail);
    }
}

#[test]
fn translations_are_keyed_by_address_space() {
    use smpsim_cores::AddressSpaceId;
    let (mut core, mut mem, s0) = setup(&[0xb8, 0x01, 0x00, 0x00, 0x00]); // mov eax, 1
    let mut s = s0.clone();
    assert_eq!(core.run(&mut s, &mut mem, 100), Exit::Halt);
    assert_eq!(s.gpr[RAX], 1);
    // Another address space maps different code at the same address.
    mem.write(CODE + 1, &[2]).expect("mapped");
    core.set_address_space(AddressSpaceId(7));
    let mut s = s0.clone();
    assert_eq!(core.run(&mut s, &mut mem, 100), Exit::Halt);
    assert_eq!(s.gpr[RAX], 2, "space 7 translated its own block");
    assert_eq!(core.stats().cache.translations, 2);
}

/// Memory whose stores are "not yet visible" until `drained` is set.
struct Buffered {
    inner: smpsim_cores::FlatMemory,
    drained: bool,
    fences: u32,
}

impl GuestMemory for Buffered {
    fn read(&mut self, addr: u64, buf: &mut [u8]) -> Result<(), smpsim_cores::MemStop> {
        self.inner.read(addr, buf)
    }
    fn write(&mut self, addr: u64, data: &[u8]) -> Result<(), smpsim_cores::MemStop> {
        self.inner.write(addr, data)
    }
    fn fence(&mut self) -> Result<(), smpsim_cores::MemStop> {
        self.fences += 1;
        if self.drained {
            Ok(())
        } else {
            Err(smpsim_cores::MemStop::Retry)
        }
    }
}

#[test]
fn a_fence_waits_for_the_memory_and_stops_precisely_meanwhile() {
    // mov eax, 7 ; mfence ; mov ecx, 9 ; hlt
    let code = [0xb8, 7, 0, 0, 0, 0x0f, 0xae, 0xf0, 0xb9, 9, 0, 0, 0];
    let (mut core, mem, mut s) = setup(&code);
    let mut mem = Buffered {
        inner: mem,
        drained: false,
        fences: 0,
    };
    assert_eq!(core.run(&mut s, &mut mem, 100), Exit::Retry);
    assert_eq!(
        (s.rip, s.gpr[RAX], s.gpr[RCX]),
        (CODE + 5, 7, 0),
        "stopped on the fence with the mov before it done"
    );
    mem.drained = true;
    assert_eq!(core.run(&mut s, &mut mem, 100), Exit::Halt);
    assert_eq!((s.gpr[RCX], mem.fences), (9, 2));
}
