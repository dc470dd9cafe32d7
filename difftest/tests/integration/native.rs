//! A small native checker: single register-form instructions run on the
//! host CPU (through a `call` into an executable page) and in the
//! functional core from the same registers and flags; results must agree,
//! SDM-undefined flags included on an AMD host (the simulator models AMD's
//! undefined flags); on any other host those flags are masked, as
//! `selftest isa` masks them.

use smpsim_cores::arch::flags::ARITH;
use smpsim_cores::{ArchState, CpuidModel, Exit, FlatMemory, FuncCore, GuestMemory};
use std::arch::asm;

/// Where the simulator places the instruction (followed by `hlt`).
const CODE: u64 = 0x40_0000;

/// Registers exchanged with the native side, in this order.
const REGS: [usize; 6] = [0, 1, 2, 6, 7, 8]; // rax rcx rdx rsi rdi r8

struct ExecPage {
    ptr: *mut u8,
}

impl ExecPage {
    fn new(code: &[u8]) -> Self {
        // SAFETY: anonymous private mapping; no existing memory is affected.
        let p = unsafe {
            libc::mmap(
                std::ptr::null_mut(),
                4096,
                libc::PROT_READ | libc::PROT_WRITE | libc::PROT_EXEC,
                libc::MAP_PRIVATE | libc::MAP_ANONYMOUS,
                -1,
                0,
            )
        };
        assert_ne!(p, libc::MAP_FAILED, "mmap of an executable page");
        let ptr = p.cast::<u8>();
        assert!(code.len() < 4000);
        // SAFETY: `ptr` is a fresh 4096-byte writable mapping and the code fits.
        unsafe {
            std::ptr::copy_nonoverlapping(code.as_ptr(), ptr, code.len());
            *ptr.add(code.len()) = 0xc3; // ret
        }
        Self { ptr }
    }

    /// Runs the page's code with the given registers and RFLAGS.
    fn run(&self, r: &mut [u64; 6], flags: &mut u64) {
        let f = self.ptr;
        // SAFETY: the page holds one register-only instruction (touching
        // only rax rcx rdx rsi rdi r8 and RFLAGS, all declared here) and a
        // `ret`; `call` uses the stack, which asm! without `nostack` allows.
        unsafe {
            asm!(
                "push {fl}",
                "popfq",
                "call {f}",
                "pushfq",
                "pop {fl}",
                f = in(reg) f,
                fl = inout(reg) *flags,
                inout("rax") r[0],
                inout("rcx") r[1],
                inout("rdx") r[2],
                inout("rsi") r[3],
                inout("rdi") r[4],
                inout("r8") r[5],
            );
        }
    }
}

impl Drop for ExecPage {
    fn drop(&mut self) {
        // SAFETY: unmaps exactly the mapping made in `new`.
        unsafe { libc::munmap(self.ptr.cast(), 4096) };
    }
}

struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
    fn value(&mut self) -> u64 {
        const SPECIAL: [u64; 10] = [
            0,
            1,
            2,
            u64::MAX,
            0x80,
            0x7f,
            0x8000,
            0x8000_0000,
            1 << 63,
            0xff,
        ];
        match self.next() % 4 {
            0 => SPECIAL[(self.next() % 10) as usize],
            1 => self.next() % 70,
            _ => self.next(),
        }
    }
}

/// Compares one instruction over `n` random inputs; `fix` adjusts inputs
/// (e.g. avoiding #DE). Returns the mismatches as text.
fn check(name: &str, bytes: &[u8], n: usize, fix: fn(&mut [u64; 6])) -> Vec<String> {
    let page = ExecPage::new(bytes);
    let compared = ARITH & !undefined_on_this_host(bytes);
    let mut rng = Rng(0x9e37_79b9_7f4a_7c15 ^ bytes.iter().fold(0, |h, &b| h * 31 + u64::from(b)));
    let mut bad = Vec::new();
    for _ in 0..n {
        let mut r = [0u64; 6];
        for v in r.iter_mut() {
            *v = rng.value();
        }
        fix(&mut r);
        let flags_in = (rng.next() & ARITH) | 0x202;
        let (mut nr, mut nf) = (r, flags_in);
        page.run(&mut nr, &mut nf);
        let mut st = ArchState {
            rflags: flags_in & !0x200,
            ..ArchState::default()
        };
        for (i, &g) in REGS.iter().enumerate() {
            st.gpr[g] = r[i];
        }
        simulate(bytes, &mut st, None);
        let sr: Vec<u64> = REGS.iter().map(|&g| st.gpr[g]).collect();
        if sr != nr || (st.rflags & compared) != (nf & compared) {
            bad.push(format!(
                "{name}: in {r:x?} fl {flags_in:#x}: native {nr:x?} fl {:#x}, sim {sr:x?} fl {:#x}",
                nf & ARITH,
                st.rflags & ARITH
            ));
        }
    }
    bad
}

/// Runs `bytes` then `hlt` in a fresh functional core from `st`; with
/// `buf`, the page there is mapped and filled with 0x5a as the native
/// buffer is. Panics unless the core halts.
fn simulate(bytes: &[u8], st: &mut ArchState, buf: Option<u64>) {
    let mut mem = FlatMemory::new();
    mem.map(CODE, 0x1000);
    mem.write(CODE, &[bytes, &[0xf4]].concat())
        .expect("code page mapped");
    if let Some(base) = buf {
        mem.map(base, 4096);
        mem.write(base, &[0x5a; 4096]).expect("buffer mapped");
    }
    st.rip = CODE;
    let exit = FuncCore::new(CpuidModel::default()).run(st, &mut mem, 10_000);
    assert_eq!(exit, Exit::Halt, "code {bytes:02x?} did not reach hlt");
}

/// The flags `bytes` leaves undefined, on a host whose vendor is not the
/// one the simulator models (AMD); nothing on an AMD host.
fn undefined_on_this_host(bytes: &[u8]) -> u64 {
    if smpsim_difftest::host_vendor() == *b"AuthenticAMD" {
        return 0;
    }
    let mut dec = iced_x86::Decoder::with_ip(64, bytes, CODE, iced_x86::DecoderOptions::NONE);
    smpsim_difftest::flags::undefined_flags(&dec.decode())
}

fn none(_: &mut [u64; 6]) {}

/// cl: a 16-bit double shift's count past 16 leaves the result undefined
/// (SDM); off an AMD host the count is kept to 0..=16.
fn count16_defined(r: &mut [u64; 6]) {
    if smpsim_difftest::host_vendor() != *b"AuthenticAMD" && (r[1] & 31) > 16 {
        r[1] &= !31 | 15;
    }
}

/// rcx: a non-zero divisor above rdx (unsigned divide cannot overflow).
fn div_safe(r: &mut [u64; 6]) {
    r[1] |= 1 << 40;
    r[2] %= 1 << 39;
}

/// Small signed operands for idiv (no overflow).
fn idiv_safe(r: &mut [u64; 6]) {
    r[1] = (r[1] % 1000) + 1;
    r[2] = if r[0] >> 63 != 0 { u64::MAX } else { 0 };
}

/// cl, dl, ax: divide a 16-bit AX by a byte without overflow.
fn div8_safe(r: &mut [u64; 6]) {
    r[1] = (r[1] & !0xff) | 0x80 | (r[1] & 0x7f);
    r[0] = (r[0] & !0xffff) | (r[0] & 0x7fff);
}

/// Adjusts random inputs before a form runs.
type Fix = fn(&mut [u64; 6]);

const FORMS: &[(&str, &[u8], Fix)] = &[
    ("add rax,rcx", &[0x48, 0x01, 0xc8], none),
    ("adc rax,rcx", &[0x48, 0x11, 0xc8], none),
    ("sub rax,rcx", &[0x48, 0x29, 0xc8], none),
    ("sbb rax,rcx", &[0x48, 0x19, 0xc8], none),
    ("and rax,rcx", &[0x48, 0x21, 0xc8], none),
    ("or rax,rcx", &[0x48, 0x09, 0xc8], none),
    ("xor eax,ecx", &[0x31, 0xc8], none),
    ("cmp rax,rcx", &[0x48, 0x39, 0xc8], none),
    ("test cx,ax", &[0x66, 0x85, 0xc1], none),
    ("add al,cl", &[0x00, 0xc8], none),
    ("add ah,cl", &[0x00, 0xcc], none),
    ("adc ax,cx", &[0x66, 0x11, 0xc8], none),
    ("sbb ch,dh", &[0x18, 0xf5], none),
    ("inc rax", &[0x48, 0xff, 0xc0], none),
    ("dec ecx", &[0xff, 0xc9], none),
    ("neg rax", &[0x48, 0xf7, 0xd8], none),
    ("neg dl", &[0xf6, 0xda], none),
    ("not rax", &[0x48, 0xf7, 0xd0], none),
    ("shl rax,cl", &[0x48, 0xd3, 0xe0], none),
    ("shr rax,cl", &[0x48, 0xd3, 0xe8], none),
    ("sar rax,cl", &[0x48, 0xd3, 0xf8], none),
    ("rol rax,cl", &[0x48, 0xd3, 0xc0], none),
    ("ror rax,cl", &[0x48, 0xd3, 0xc8], none),
    ("rcl rax,cl", &[0x48, 0xd3, 0xd0], none),
    ("rcr rax,cl", &[0x48, 0xd3, 0xd8], none),
    ("shl eax,cl", &[0xd3, 0xe0], none),
    ("shr eax,cl", &[0xd3, 0xe8], none),
    ("sar eax,cl", &[0xd3, 0xf8], none),
    ("rol eax,cl", &[0xd3, 0xc0], none),
    ("rcr eax,cl", &[0xd3, 0xd8], none),
    ("shl al,cl", &[0xd2, 0xe0], none),
    ("shr al,cl", &[0xd2, 0xe8], none),
    ("sar al,cl", &[0xd2, 0xf8], none),
    ("rol al,cl", &[0xd2, 0xc0], none),
    ("ror al,cl", &[0xd2, 0xc8], none),
    ("rcl al,cl", &[0xd2, 0xd0], none),
    ("rcr al,cl", &[0xd2, 0xd8], none),
    ("shl ax,cl", &[0x66, 0xd3, 0xe0], none),
    ("rcl ax,cl", &[0x66, 0xd3, 0xd0], none),
    ("rcr ax,cl", &[0x66, 0xd3, 0xd8], none),
    ("shl rax,1", &[0x48, 0xd1, 0xe0], none),
    ("shr eax,5", &[0xc1, 0xe8, 0x05], none),
    ("ror eax,1", &[0xd1, 0xc8], none),
    ("shld rax,rdx,cl", &[0x48, 0x0f, 0xa5, 0xd0], none),
    ("shrd rax,rdx,cl", &[0x48, 0x0f, 0xad, 0xd0], none),
    ("shld eax,edx,cl", &[0x0f, 0xa5, 0xd0], none),
    ("shrd eax,edx,cl", &[0x0f, 0xad, 0xd0], none),
    ("shld ax,dx,cl", &[0x66, 0x0f, 0xa5, 0xd0], count16_defined),
    ("shrd ax,dx,cl", &[0x66, 0x0f, 0xad, 0xd0], count16_defined),
    ("mul rcx", &[0x48, 0xf7, 0xe1], none),
    ("imul rcx", &[0x48, 0xf7, 0xe9], none),
    ("mul cl", &[0xf6, 0xe1], none),
    ("imul cl", &[0xf6, 0xe9], none),
    ("mul cx", &[0x66, 0xf7, 0xe1], none),
    ("imul ecx", &[0xf7, 0xe9], none),
    ("imul rax,rcx", &[0x48, 0x0f, 0xaf, 0xc1], none),
    ("imul eax,ecx,7", &[0x6b, 0xc1, 0x07], none),
    ("imul ax,cx,-300", &[0x66, 0x69, 0xc1, 0xd4, 0xfe], none),
    ("div rcx", &[0x48, 0xf7, 0xf1], div_safe),
    ("idiv rcx", &[0x48, 0xf7, 0xf9], idiv_safe),
    ("div cl", &[0xf6, 0xf1], div8_safe),
    ("bt rax,rcx", &[0x48, 0x0f, 0xa3, 0xc8], none),
    ("bts rax,rcx", &[0x48, 0x0f, 0xab, 0xc8], none),
    ("btr eax,ecx", &[0x0f, 0xb3, 0xc8], none),
    ("btc ax,cx", &[0x66, 0x0f, 0xbb, 0xc8], none),
    ("bt eax,5", &[0x0f, 0xba, 0xe0, 0x05], none),
    ("bsf rax,rcx", &[0x48, 0x0f, 0xbc, 0xc1], none),
    ("bsr rax,rcx", &[0x48, 0x0f, 0xbd, 0xc1], none),
    ("bsf eax,ecx", &[0x0f, 0xbc, 0xc1], none),
    ("bsr ax,cx", &[0x66, 0x0f, 0xbd, 0xc1], none),
    ("tzcnt rax,rcx", &[0xf3, 0x48, 0x0f, 0xbc, 0xc1], none),
    ("lzcnt rax,rcx", &[0xf3, 0x48, 0x0f, 0xbd, 0xc1], none),
    ("lzcnt ax,cx", &[0x66, 0xf3, 0x0f, 0xbd, 0xc1], none),
    ("popcnt rax,rcx", &[0xf3, 0x48, 0x0f, 0xb8, 0xc1], none),
    ("bswap rax", &[0x48, 0x0f, 0xc8], none),
    ("bswap eax", &[0x0f, 0xc8], none),
    ("bswap ax", &[0x66, 0x0f, 0xc8], none),
    ("cbw", &[0x66, 0x98], none),
    ("cwde", &[0x98], none),
    ("cdqe", &[0x48, 0x98], none),
    ("cwd", &[0x66, 0x99], none),
    ("cdq", &[0x99], none),
    ("cqo", &[0x48, 0x99], none),
    ("sete al", &[0x0f, 0x94, 0xc0], none),
    ("setl cl", &[0x0f, 0x9c, 0xc1], none),
    ("setbe dh", &[0x0f, 0x96, 0xc6], none),
    ("cmove rax,rcx", &[0x48, 0x0f, 0x44, 0xc1], none),
    ("cmovl eax,ecx", &[0x0f, 0x4c, 0xc1], none),
    ("cmovg ax,cx", &[0x66, 0x0f, 0x4f, 0xc1], none),
    ("xchg rax,rcx", &[0x48, 0x91], none),
    ("xchg eax,eax", &[0x87, 0xc0], none),
    ("xadd rax,rcx", &[0x48, 0x0f, 0xc1, 0xc8], none),
    ("xadd cl,al", &[0x0f, 0xc0, 0xc1], none),
    ("cmpxchg rcx,rdx", &[0x48, 0x0f, 0xb1, 0xd1], none),
    ("cmpxchg ecx,edx", &[0x0f, 0xb1, 0xd1], none),
    ("cmpxchg cl,dl", &[0x0f, 0xb0, 0xd1], none),
    ("movzx eax,cl", &[0x0f, 0xb6, 0xc1], none),
    ("movsx rax,cx", &[0x48, 0x0f, 0xbf, 0xc1], none),
    ("movsxd rax,ecx", &[0x48, 0x63, 0xc1], none),
    ("movsx eax,ch", &[0x0f, 0xbe, 0xc5], none),
    (
        "lea rax,[rcx+rdx*4+8]",
        &[0x48, 0x8d, 0x44, 0x91, 0x08],
        none,
    ),
    ("lea eax,[rcx+rdx-1]", &[0x8d, 0x44, 0x11, 0xff], none),
    ("lahf", &[0x9f], none),
    ("sahf", &[0x9e], none),
    ("cmc", &[0xf5], none),
    ("loop", &[0xe2, 0x00], none),
    ("loope", &[0xe1, 0x00], none),
    ("loopne", &[0xe0, 0x00], none),
    ("jrcxz", &[0xe3, 0x00], none),
    ("mov ah,cl", &[0x88, 0xcc], none),
    ("mov cx,0x1234", &[0x66, 0xb9, 0x34, 0x12], none),
    ("mov ecx,eax", &[0x89, 0xc1], none),
];

#[test]
fn register_forms_match_the_host_cpu() {
    if !cfg!(target_arch = "x86_64") {
        return;
    }
    let mut bad = Vec::new();
    for (name, bytes, fix) in FORMS {
        bad.extend(check(name, bytes, 300, *fix).into_iter().take(3));
    }
    assert!(
        bad.is_empty(),
        "{} mismatches:\n{}",
        bad.len(),
        bad.join("\n")
    );
}

/// 67h string instructions natively: source and destination in a buffer
/// mapped below 4 GiB, upper register halves set to garbage.
#[test]
fn addr32_string_ops_match_the_host_cpu() {
    if !cfg!(target_arch = "x86_64") {
        return;
    }
    // SAFETY: anonymous private mapping below 4 GiB; nothing else affected.
    let buf = unsafe {
        libc::mmap(
            std::ptr::null_mut(),
            4096,
            libc::PROT_READ | libc::PROT_WRITE,
            libc::MAP_PRIVATE | libc::MAP_ANONYMOUS | libc::MAP_32BIT,
            -1,
            0,
        )
    };
    assert_ne!(buf, libc::MAP_FAILED);
    let base = buf as u64;
    for bytes in [
        &[0x67, 0xf3, 0xa4][..],
        &[0x67, 0xac][..],
        &[0x67, 0xf3, 0x48, 0xab][..],
    ] {
        // SAFETY: the mapping is 4096 bytes and writable.
        unsafe { std::ptr::write_bytes(buf.cast::<u8>(), 0x5a, 4096) };
        let page = ExecPage::new(bytes);
        // rax rcx rdx rsi rdi r8
        let mut r = [
            0x1122_3344_5566_7788,
            0xdead_0000_0000_0003,
            0,
            0xbeef_0000_0000_0000 | base,
            0xcafe_0000_0000_0000 | (base + 0x800),
            0,
        ];
        let input = r;
        let mut f = 0x202;
        page.run(&mut r, &mut f);
        let mut st = ArchState::default();
        for (i, &g) in REGS.iter().enumerate() {
            st.gpr[g] = input[i];
        }
        simulate(bytes, &mut st, Some(base));
        let sr: Vec<u64> = REGS.iter().map(|&g| st.gpr[g]).collect();
        assert_eq!(sr, r.to_vec(), "{bytes:02x?}");
    }
    // SAFETY: unmaps the mapping made above.
    unsafe { libc::munmap(buf, 4096) };
}
