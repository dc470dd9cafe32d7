//! x87 and SSE stores whose destination faults: the #PF reports a write
//! (error code W) although some of them read the old contents first, and
//! an `fstp m80` split across a faulting page writes what the core's
//! vendor writes ([`crate::translate::Quirks`]).

use super::tests::{run_on, DATA};
use crate::paging::pfec;
use crate::{ArchState, CpuidModel, Exit, FlatMemory, GuestMemory};

/// The first unmapped address after the data pages.
const END: u64 = DATA + 0x2000;
/// The fill byte of the data pages.
const FILL: u8 = 0x55;
/// π's 64-bit significand, as `fldpi` loads it (round to nearest).
const PI_SIG: u64 = 0xc90f_daa2_2168_c235;

fn intel() -> CpuidModel {
    CpuidModel {
        vendor: *b"GenuineIntel",
        ..CpuidModel::default()
    }
}

/// Runs `code` + `hlt` with RSI and RDI at `addr`; the fault it must raise
/// and the memory afterwards.
fn fault_at(cpuid: CpuidModel, code: &[u8], addr: u64) -> (crate::Fault, ArchState, FlatMemory) {
    let mut st = ArchState::default();
    st.gpr[6] = addr;
    st.gpr[7] = addr;
    let mut code = code.to_vec();
    code.push(0xf4);
    let (exit, st, mem) = run_on(cpuid, &code, st, &[FILL; 0x2000]);
    let Exit::Fault(f) = exit else {
        panic!("{code:02x?} at {addr:#x}: {exit:?}")
    };
    (f, st, mem)
}

fn bytes(mem: &mut FlatMemory, addr: u64, n: usize) -> Vec<u8> {
    let mut b = vec![0u8; n];
    mem.read(addr, &mut b).expect("mapped");
    b
}

#[test]
fn x87_and_sse_stores_into_an_absent_page_fault_as_writes() {
    // Each store straddles END (or starts there); fldpi first where the
    // store needs a value on the stack.
    let cases: &[(&str, &[u8], u64)] = &[
        ("fstp m80", &[0xd9, 0xeb, 0xdb, 0x3e], END - 4),
        (
            "fstp m80 (second page only)",
            &[0xd9, 0xeb, 0xdb, 0x3e],
            END - 8,
        ),
        ("fst m32", &[0xd9, 0xeb, 0xd9, 0x16], END - 2),
        ("fist m32", &[0xd9, 0xeb, 0xdb, 0x16], END),
        ("fstp m64", &[0xd9, 0xeb, 0xdd, 0x1e], END - 4),
        ("fistp m16", &[0xd9, 0xeb, 0xdf, 0x1e], END - 1),
        ("fisttp m64", &[0xd9, 0xeb, 0xdd, 0x0e], END - 4),
        ("fnstcw", &[0xd9, 0x3e], END - 1),
        ("fstcw", &[0x9b, 0xd9, 0x3e], END),
        ("fnstsw", &[0xdd, 0x3e], END - 1),
        ("fnstenv", &[0xd9, 0x36], END - 20),
        ("fnsave", &[0xdd, 0x36], END - 100),
        ("fxsave", &[0x0f, 0xae, 0x06], END - 256),
        ("xsave", &[0x0f, 0xae, 0x26], END - 64),
        ("movntps", &[0x0f, 0x2b, 0x06], END),
        ("movups store", &[0x0f, 0x11, 0x06], END - 8),
        ("maskmovdqu", &[0x66, 0x0f, 0xf7, 0xc1], END - 8),
    ];
    for cpuid in [CpuidModel::default(), intel()] {
        for &(name, code, addr) in cases {
            let (f, _, mut mem) = fault_at(cpuid.clone(), code, addr);
            let at = format!("{name} ({})", String::from_utf8_lossy(&cpuid.vendor));
            assert_eq!(f.vector, 14, "{at}: {}", f.detail);
            assert_eq!(f.error_code, pfec::WRITE, "{at}: {}", f.detail);
            assert!(
                (END..END + 0x1000).contains(&f.addr),
                "{at}: CR2 {:#x}",
                f.addr
            );
            if !(name.starts_with("fstp m80 (second") && cpuid.is_intel()) {
                assert_eq!(bytes(&mut mem, END - 0x100, 0x100), [FILL; 0x100], "{at}");
            }
        }
    }
}

#[test]
fn split_fstp_m80_writes_nothing_on_amd() {
    for addr in [END - 9, END - 8, END - 4] {
        let (f, st, mut mem) = fault_at(CpuidModel::default(), &[0xd9, 0xeb, 0xdb, 0x3e], addr);
        assert_eq!((f.vector, f.rip, f.addr), (14, 0x1002, END), "{addr:#x}");
        assert_eq!(bytes(&mut mem, END - 16, 16), [FILL; 16], "{addr:#x}");
        // Not popped: π is still ST(0).
        assert_eq!(st.fpu.top(), 7, "{addr:#x}");
    }
}

#[test]
fn split_fstp_m80_writes_the_low_eight_bytes_first_on_intel() {
    for addr in [END - 9, END - 8] {
        let (f, st, mut mem) = fault_at(intel(), &[0xd9, 0xeb, 0xdb, 0x3e], addr);
        assert_eq!((f.vector, f.rip, f.addr), (14, 0x1002, END), "{addr:#x}");
        assert_eq!(f.error_code, pfec::WRITE);
        let n = usize::try_from(END - addr).expect("small");
        let mut expect = vec![FILL; 16 - n];
        expect.extend_from_slice(&PI_SIG.to_le_bytes());
        expect.resize(16, FILL);
        assert_eq!(bytes(&mut mem, END - 16, 16), expect, "{addr:#x}");
        assert_eq!(st.fpu.top(), 7, "{addr:#x}");
    }
    // The low 8 bytes themselves cross into the absent page: nothing.
    let (f, _, mut mem) = fault_at(intel(), &[0xd9, 0xeb, 0xdb, 0x3e], END - 4);
    assert_eq!((f.vector, f.addr), (14, END));
    assert_eq!(bytes(&mut mem, END - 16, 16), [FILL; 16]);
}

#[test]
fn unsplit_fstp_m80_is_the_same_on_both_vendors() {
    for cpuid in [CpuidModel::default(), intel()] {
        let mut st = ArchState::default();
        st.gpr[6] = END - 10;
        let code = [0xd9, 0xeb, 0xdb, 0x3e, 0xf4];
        let (exit, st, mut mem) = run_on(cpuid, &code, st, &[FILL; 0x2000]);
        assert_eq!(exit, Exit::Halt);
        let mut expect = PI_SIG.to_le_bytes().to_vec();
        expect.extend_from_slice(&[0x00, 0x40]);
        assert_eq!(bytes(&mut mem, END - 10, 10), expect);
        assert_eq!(st.fpu.top(), 0);
    }
}

#[test]
fn integer_read_modify_writes_into_an_absent_page_fault_as_writes() {
    // The host reports W for every instruction that writes its memory
    // operand, although the load comes first; those that only read keep R.
    let writes: &[(&str, &[u8])] = &[
        ("add [rsi], eax", &[0x01, 0x06]),
        ("lock add [rsi], eax", &[0xf0, 0x01, 0x06]),
        ("inc dword [rsi]", &[0xff, 0x06]),
        ("not dword [rsi]", &[0xf7, 0x16]),
        ("shl dword [rsi], 1", &[0xd1, 0x26]),
        ("shld [rsi], eax, 3", &[0x0f, 0xa4, 0x06, 0x03]),
        ("bts dword [rsi], 3", &[0x0f, 0xba, 0x2e, 0x03]),
        ("xchg [rsi], eax", &[0x87, 0x06]),
        ("xadd [rsi], eax", &[0x0f, 0xc1, 0x06]),
        ("lock cmpxchg [rsi], ecx", &[0xf0, 0x0f, 0xb1, 0x0e]),
        ("cmpxchg16b [rsi]", &[0x48, 0x0f, 0xc7, 0x0e]),
    ];
    let reads: &[(&str, &[u8])] = &[
        ("mov eax, [rsi]", &[0x8b, 0x06]),
        ("cmp [rsi], eax", &[0x39, 0x06]),
        ("test [rsi], eax", &[0x85, 0x06]),
        ("bt dword [rsi], 3", &[0x0f, 0xba, 0x26, 0x03]),
        ("add eax, [rsi]", &[0x03, 0x06]),
    ];
    for (cases, code) in [(writes, pfec::WRITE), (reads, 0)] {
        for &(name, bytes) in cases {
            let (f, st, _) = fault_at(CpuidModel::default(), bytes, END);
            assert_eq!(
                (f.vector, f.error_code, f.addr, f.rip),
                (14, code, END, 0x1000),
                "{name}: {}",
                f.detail
            );
            assert_eq!(st.gpr[0], 0, "{name}: RAX untouched");
        }
    }
}
