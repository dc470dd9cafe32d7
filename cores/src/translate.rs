//! The front end: guest bytes → iced-x86 → uops, one basic block at a time.
//!
//! A block runs from its entry RIP to the first control transfer, exit
//! (hlt, syscall), REP string instruction, unsupported instruction or
//! [`MAX_BLOCK_INSNS`] instructions. Decoding follows AMD's rules (the host
//! CPU): `DecoderOptions::AMD`.
//!
//! # Precise faults
//! Each instruction's uops keep to two rules that make faults precise
//! without undo logs:
//! 1. every load comes before any architectural register or flag write of
//!    the same instruction, except where [`InsnInfo::snapshot`] is set (the
//!    instruction then starts with a [`Op::Snap`] uop that saves RFLAGS or
//!    the register file, restored if a later uop of it faults);
//! 2. an instruction stores one contiguous value, or probes the lowest
//!    address of a multi-store sequence first ([`Op::ProbeW`]), and its
//!    stores are its last possible fault points. (The one exception is
//!    deliberate: with Intel's [`Quirks`] an `fstp m80` crossing into a
//!    faulting page leaves its low 8 bytes written, as Intel cores do.)
//!    A store that reads the old contents first (x87 stores, which write
//!    them back on an unmasked exception; `maskmovdqu`) probes before the
//!    read, so its faults carry the write bit like any store's.
//!
//! # Flag liveness
//! After translation a backward pass clears each uop's flag mask down to
//! the flags some later uop reads; all flags are live at block end and
//! before every instruction that can fault.
//!
//! # Supported instructions (everything else raises #UD naming it)
//! mov (all forms), movzx, movsx, movsxd, lea; add adc sub sbb cmp neg inc
//! dec and or xor not test; shl/sal shr sar rol ror rcl rcr shld shrd with
//! 1, imm8 and CL counts; mul, imul (1-, 2-, 3-operand), div, idiv (#DE);
//! bt bts btr btc (register and memory bit strings); bsf bsr lzcnt tzcnt
//! popcnt bswap; cbw cwde cdqe cwd cdq cqo; setcc cmovcc jcc jmp call ret
//! (near, direct and indirect, ret imm16) loop loope loopne jrcxz; push
//! pop (register, memory, immediate, 64- and 16-bit), enter (nesting level
//! 0–5) leave;
//! xchg cmpxchg cmpxchg8b cmpxchg16b xadd, the lock prefix on all of them
//! and on every lockable ALU form; movs stos lods cmps scas with rep, repe,
//! repne (8/16/32/64-bit elements, 64- and 32-bit addressing, DF); pushfq
//! popfq lahf sahf clc stc cmc cld std; nop forms, endbr64, prefetch*,
//! pause, mfence lfence sfence; cpuid, rdtsc, rdtscp; rdfsbase wrfsbase
//! rdgsbase wrgsbase; FS/GS segment overrides; hlt and syscall (exits);
//! int3 (#BP); ud2 (#UD). All operand sizes, high-byte registers and
//! 32-bit zero-extension; 32-bit addressing (67h).
//!
//! Privileged and I/O instructions, `int n`, `int1` and segment-register
//! moves raise what ring-3 hardware raises (a PV64 guest kernel runs in
//! ring 3), mostly #GP(0), for the hypervisor's PV emulator to handle;
//! segment moves and `sgdt`-style reads, which ring 3 may execute, trap
//! too, because no descriptor table is modelled here (see
//! `insn::privileged_vector`).
//!
//! x87, MMX, SSE–SSE4.2, BMI1/BMI2, MOVBE, CRC32 and the state saves
//! translate into `Vec` uops ([`crate::simd`]; `insn/simd/*`, one file per
//! family).
//!
//! Not modelled (#UD): AVX/VEX vector forms, far branches, 16-bit near
//! branches (66h on jmp/call/ret/jcc), enter with a nesting level above 5,
//! loop*/jecxz with 32-bit addressing, xlat.

mod insn;

pub use insn::needs_cpl0;

use crate::cpuid::CpuidModel;
use crate::mem::{GuestMemory, MemStop, PageFault, PAGE_SIZE};
use crate::uop::{self, cond_reads, fl, InsnInfo, Op, Uop, FLAGS, FSBASE, GSBASE};
use iced_x86::{Decoder, DecoderError, DecoderOptions, Formatter, Instruction, IntelFormatter};

/// Most instructions in one translated block.
pub const MAX_BLOCK_INSNS: usize = 48;

/// A translated basic block.
#[derive(Clone, Debug)]
pub struct Block {
    /// Guest address of the first instruction.
    pub rip: u64,
    /// The uops of all instructions, in order.
    pub uops: Vec<Uop>,
    /// One entry per x86 instruction.
    pub insns: Vec<InsnInfo>,
    /// Address after the last instruction (fall-through).
    pub end_rip: u64,
    /// Page numbers holding the block's code bytes (first and last).
    pub pages: [u64; 2],
    /// Detail strings of the block's `Raise` uops (indexed by their `imm`).
    pub details: Vec<String>,
    /// Whether an instruction has a REP prefix (it then ends the block).
    pub has_rep: bool,
}

/// The choices the architecture leaves to implementations that the
/// translation makes one way or the other, after the vendor of the core's
/// [`CpuidModel`] (AMD's choices by default, like the default model).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Quirks {
    /// An x87 10-byte store (`fstp m80`) whose last bytes fall on a page
    /// that faults writes its low 8 bytes (the significand) before the #PF,
    /// as Intel cores do; otherwise (AMD) it writes nothing. SDM Vol. 3A
    /// §8.1.1 allows both (an x87 access larger than a quadword may be
    /// made of several accesses). (The `fast` model takes back every
    /// store of a faulting instruction, so there nothing stays written
    /// either way.)
    pub m80_store_low_first: bool,
}

impl Quirks {
    /// The quirks of a core identifying itself as `cpuid` (Intel's for
    /// `GenuineIntel`, AMD's for any other vendor).
    pub fn of(cpuid: &CpuidModel) -> Self {
        Self {
            m80_store_low_first: cpuid.is_intel(),
        }
    }
}

/// Fetches up to 15 bytes at `rip`; returns how many could be read.
fn fetch(mem: &mut dyn GuestMemory, rip: u64, buf: &mut [u8; 15]) -> Result<usize, MemStop> {
    let first = (PAGE_SIZE - rip % PAGE_SIZE).min(15) as usize;
    mem.read(rip, &mut buf[..first])?;
    if first < 15
        && mem
            .read(rip.wrapping_add(first as u64), &mut buf[first..])
            .is_ok()
    {
        return Ok(15);
    }
    Ok(first)
}

/// Decodes one instruction at `rip`, or the page fault fetching it raises.
fn decode_one(mem: &mut dyn GuestMemory, rip: u64) -> Result<(Instruction, [u8; 15]), MemStop> {
    let mut buf = [0u8; 15];
    let n = fetch(mem, rip, &mut buf)?;
    // AMD decoding rules (the host): 66h-prefixed near branches are 16-bit.
    let mut dec = Decoder::with_ip(64, &buf[..n], rip, DecoderOptions::AMD);
    let ins = dec.decode();
    if dec.last_error() == DecoderError::NoMoreBytes && n < 15 {
        return Err(PageFault::absent(rip.wrapping_add(n as u64), false).into());
    }
    Ok((ins, buf))
}

/// Translates the block at `rip` for a core with `quirks`. Fails only if
/// the first instruction cannot be fetched (the caller raises #PF); a
/// later unfetchable instruction ends the block before it instead.
pub fn translate_block(
    mem: &mut dyn GuestMemory,
    rip: u64,
    quirks: Quirks,
) -> Result<Block, MemStop> {
    let mut b = Block {
        rip,
        uops: Vec::with_capacity(64),
        insns: Vec::with_capacity(16),
        end_rip: rip,
        pages: [rip / PAGE_SIZE; 2],
        details: Vec::new(),
        has_rep: false,
    };
    let mut pc = rip;
    while b.insns.len() < MAX_BLOCK_INSNS {
        let (ins, bytes) = match decode_one(mem, pc) {
            Ok(i) => i,
            Err(pf) if b.insns.is_empty() => return Err(pf),
            Err(_) => break,
        };
        let start = b.uops.len();
        let mut tx = Tx {
            uops: &mut b.uops,
            details: &mut b.details,
            next_tmp: uop::T0,
            next_vtmp: uop::VT0,
            rep: 0,
            quirks,
        };
        let ends = insn::translate(&mut tx, &ins, &bytes[..ins.len().max(1)]);
        let rep = tx.rep;
        debug_assert!(
            vec_order_ok(&b.uops[start..]),
            "{ins}: a vector write precedes a memory uop (crate::simd rules)"
        );
        let snapshot = snapshot_kind(&b.uops[start..]);
        if snapshot != 0 {
            let mut snap = Uop::new(Op::Snap, 8);
            snap.aux = snapshot;
            b.uops.insert(start, snap);
        }
        let index = b.insns.len() as i64;
        for u in &mut b.uops[start..] {
            if matches!(u.op, Op::Rdtsc | Op::Rdtscp) {
                u.imm = index;
            }
        }
        b.has_rep |= rep != 0;
        b.insns.push(InsnInfo {
            rip: pc,
            len: u8::try_from(ins.len()).expect("x86 instructions are at most 15 bytes"),
            start: u16::try_from(start).expect("block uop count fits u16"),
            end: u16::try_from(b.uops.len()).expect("block uop count fits u16"),
            snapshot,
            rep: rep & 3,
            rep_addr32: rep & 4 != 0,
        });
        pc = ins.next_ip();
        b.pages[1] = (pc - 1) / PAGE_SIZE;
        if ends {
            break;
        }
    }
    b.end_rip = pc;
    flag_liveness(&mut b);
    Ok(b)
}

/// The [`crate::simd`] ordering rule: no `Vec` uop writing an XMM register
/// or MXCSR comes before a memory uop of the same instruction. The MMX
/// transition is exempt: maskmovq makes it before its access, whose page
/// fault keeps it, as on the host.
fn vec_order_ok(uops: &[Uop]) -> bool {
    let mut written = false;
    for u in uops {
        if u.is_mem() && written {
            return false;
        }
        if u.op == Op::Vec && !crate::simd::x87::is_mmx_transition(u) {
            let (_, implicit) = crate::simd::implicit_regs(u);
            let state = crate::simd::Family::of(u) == Some(crate::simd::Family::State);
            written |= (32..48).contains(&u.dst) || (!implicit.is_empty() && !state);
        }
    }
    true
}

/// Whether a uop writes architectural state (a GPR, a base, RFLAGS).
fn writes_arch(u: &Uop) -> bool {
    let arch = |r: u8| r < 16 || r == FSBASE || r == GSBASE || r == FLAGS;
    match u.op {
        Op::St | Op::ProbeW | Op::Nop | Op::Fence | Op::Pause | Op::Raise | Op::Chk | Op::Snap => {
            false
        }
        Op::Jmp | Op::Jcc | Op::JmpR | Op::Jnz | Op::Jz | Op::Hlt | Op::Syscall => false,
        Op::Ld | Op::Lea => arch(u.dst),
        Op::Mul | Op::ImulW | Op::Div | Op::Idiv => true,
        Op::Cpuid | Op::Rdtsc | Op::Rdtscp | Op::Popf | Op::Sahf | Op::FlagOp | Op::Str => true,
        _ => arch(u.dst) || u.fl != 0,
    }
}

/// Whether a uop writes only RFLAGS among architectural state.
fn writes_only_flags(u: &Uop) -> bool {
    let arch_dst = u.dst < 16 || matches!(u.dst, FSBASE | GSBASE | FLAGS);
    let multi = matches!(
        u.op,
        Op::Mul | Op::ImulW | Op::Div | Op::Idiv | Op::Cpuid | Op::Str | Op::Rdtsc | Op::Rdtscp
    );
    !arch_dst && !multi && !matches!(u.op, Op::Ld | Op::Lea)
}

/// Snapshot kind of an instruction: 0 none, 1 RFLAGS only, 2 all registers.
fn snapshot_kind(uops: &[Uop]) -> u8 {
    let mut kind = 0u8;
    let mut pending = 0u8;
    for u in uops {
        if u.is_mem() {
            kind = kind.max(pending);
        }
        if writes_arch(u) {
            pending = pending.max(if writes_only_flags(u) { 1 } else { 2 });
        }
    }
    kind
}

/// Whether `op` carries a flag mask in `fl`.
fn has_flag_mask(op: Op) -> bool {
    !matches!(op, Op::Ld | Op::St | Op::ProbeW | Op::Lea | Op::Str)
}

/// Flags (compressed) a uop reads.
fn flag_reads(u: &Uop) -> u8 {
    match u.op {
        Op::Adc | Op::Sbb | Op::Rcl | Op::Rcr => fl::CF,
        Op::Setcc | Op::Cmov | Op::CondMov | Op::Jcc => cond_reads(u.aux),
        Op::Jnz if u.aux != 0 => fl::ZF,
        Op::FlagOp | Op::Sahf => fl::ALL,
        Op::Str | Op::Jmp | Op::JmpR | Op::Hlt | Op::Syscall | Op::Raise => fl::ALL,
        _ if u.a == FLAGS || u.b == FLAGS => fl::ALL,
        _ => 0,
    }
}

/// Whether a flag-writing uop writes its flags unconditionally.
fn kills_flags(u: &Uop) -> bool {
    match u.op {
        Op::Shl | Op::Shr | Op::Sar | Op::Rol | Op::Ror | Op::Rcl | Op::Rcr => u.b == uop::IMM,
        Op::Shld | Op::Shrd => u.b == uop::IMM,
        _ => true,
    }
}

/// Whether an instruction's uops can fault (memory, divide, raise, checks,
/// and every `Vec` uop: #NM, #XM, #MF, #GP).
fn may_fault(uops: &[Uop]) -> bool {
    uops.iter()
        .any(|u| u.is_mem() || matches!(u.op, Op::Div | Op::Idiv | Op::Raise | Op::Chk | Op::Vec))
}

/// Backward flag liveness: drops flag computations no one can observe.
fn flag_liveness(b: &mut Block) {
    let mut live = fl::ALL;
    for ins in b.insns.iter().rev() {
        let range = usize::from(ins.start)..usize::from(ins.end);
        for u in b.uops[range.clone()].iter_mut().rev() {
            if has_flag_mask(u.op) && u.fl != 0 && u.op != Op::Popf {
                let written = u.fl;
                u.fl &= live;
                if kills_flags(u) {
                    live &= !written;
                }
            }
            if u.op == Op::Popf {
                live = 0;
            }
            live |= flag_reads(u);
        }
        if ins.rep != 0 || may_fault(&b.uops[range]) {
            live = fl::ALL;
        }
    }
}

/// Per-instruction translation state.
pub(crate) struct Tx<'a> {
    /// Where uops go.
    pub uops: &'a mut Vec<Uop>,
    /// Fault detail strings of the block.
    pub details: &'a mut Vec<String>,
    /// Next free temporary.
    pub next_tmp: u8,
    /// Next free vector temporary.
    pub next_vtmp: u8,
    /// REP mode of the instruction (see [`InsnInfo::rep`]) | 4 for ecx.
    pub rep: u8,
    /// The implementation choices to follow.
    pub quirks: Quirks,
}

impl Tx<'_> {
    /// Appends a uop.
    pub fn emit(&mut self, u: Uop) {
        self.uops.push(u);
    }

    /// A fresh temporary register.
    pub fn tmp(&mut self) -> u8 {
        assert!(
            self.next_tmp < uop::T0 + uop::NUM_TEMPS,
            "instruction needs too many temporaries"
        );
        self.next_tmp += 1;
        self.next_tmp - 1
    }

    /// Emits a `Raise` of `vector` with `detail`.
    pub fn raise(&mut self, vector: u8, detail: String) {
        let idx = self.details.len();
        self.details.push(detail);
        let mut u = Uop::new(Op::Raise, 8);
        u.aux = vector;
        u.imm = i64::try_from(idx).expect("detail index fits");
        self.emit(u);
    }
}

/// The #UD report for an instruction: address, bytes, mnemonic and disassembly.
pub(crate) fn ud_detail(ins: &Instruction, bytes: &[u8]) -> String {
    let mut text = String::new();
    IntelFormatter::new().format(ins, &mut text);
    let hex: Vec<String> = bytes.iter().map(|b| format!("{b:02x}")).collect();
    let mnem = format!("{:?}", ins.mnemonic()).to_lowercase();
    format!(
        "#UD at {:#x}: unsupported instruction `{mnem}` ({text}), bytes [{}]",
        ins.ip(),
        hex.join(" ")
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::mem::FlatMemory;

    fn block(code: &[u8]) -> Block {
        let mut mem = FlatMemory::new();
        mem.map(0x1000, 0x1000);
        mem.write(0x1000, code).expect("mapped");
        translate_block(&mut mem, 0x1000, Quirks::default()).expect("fetchable")
    }

    fn fl_of(b: &Block, insn: usize) -> Vec<u8> {
        let i = b.insns[insn];
        b.uops[usize::from(i.start)..usize::from(i.end)]
            .iter()
            .map(|u| u.fl)
            .collect()
    }

    #[test]
    fn dead_flags_are_dropped_and_live_ones_kept() {
        // add rax, rcx ; add rax, rdx ; cmp rax, 5 ; jne +0
        let b = block(&[
            0x48, 0x01, 0xc8, 0x48, 0x01, 0xd0, 0x48, 0x83, 0xf8, 0x05, 0x75, 0x00,
        ]);
        assert_eq!(b.insns.len(), 4, "the jcc ends the block");
        assert_eq!(fl_of(&b, 0), vec![0]);
        assert_eq!(fl_of(&b, 1), vec![0]);
        assert_eq!(fl_of(&b, 2), vec![fl::ALL], "live at block end");
    }

    #[test]
    fn flags_stay_exact_before_an_instruction_that_can_fault() {
        // add rax, rcx ; mov rbx, [rsi] ; add rax, rdx ; hlt
        let b = block(&[0x48, 0x01, 0xc8, 0x48, 0x8b, 0x1e, 0x48, 0x01, 0xd0, 0xf4]);
        assert_eq!(
            fl_of(&b, 0),
            vec![fl::ALL],
            "a #PF in the mov must see these flags"
        );
    }

    #[test]
    fn partial_writers_keep_earlier_carry_live() {
        // add rax, rcx ; inc rdx ; hlt : inc leaves CF, so the add's CF is live
        let b = block(&[0x48, 0x01, 0xc8, 0x48, 0xff, 0xc2, 0xf4]);
        assert_eq!(fl_of(&b, 0), vec![fl::CF]);
        assert_eq!(fl_of(&b, 1), vec![fl::NOCF]);
    }

    #[test]
    fn block_ends_at_branch_and_records_pages() {
        let b = block(&[0x90, 0xeb, 0xfe, 0x90]);
        assert_eq!((b.insns.len(), b.end_rip, b.pages), (2, 0x1003, [1, 1]));
        assert!(!b.has_rep);
    }
}
