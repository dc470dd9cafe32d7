//! The uop IR: what the translator produces and the executor runs.
//!
//! In the spirit of PTLsim: a small set of load, store, ALU and branch uops
//! over a register file of the sixteen GPRs plus temporaries, with explicit
//! flag producers (`fl`, the flags a uop writes) and consumers (conditions,
//! carries). A decoded basic block is a flat array of 16-byte [`Uop`]s plus
//! one [`InsnInfo`] per x86 instruction, so instruction boundaries survive
//! translation and faults stay precise.
//!
//! Register file indices: 0–15 the GPRs (x86 order), [`T0`].. temporaries,
//! [`SINK`] (a write-only scratch for cmp/test results), [`FSBASE`],
//! [`GSBASE`], [`FLAGS`] (RFLAGS), [`ZERO`] (always 0). In a uop's `b` field
//! [`IMM`] means "the immediate".
//!
//! Register writes of 1 or 2 bytes merge into the low bits; 4-byte writes
//! zero-extend; 8-byte writes replace (x86 rules, applied to every uop).

use std::fmt;

/// First temporary register.
pub const T0: u8 = 16;
/// Number of temporaries per instruction.
pub const NUM_TEMPS: u8 = 8;
/// Write-only scratch register (results nobody reads).
pub const SINK: u8 = 24;
/// FS base register.
pub const FSBASE: u8 = 25;
/// GS base register.
pub const GSBASE: u8 = 26;
/// RFLAGS.
pub const FLAGS: u8 = 27;
/// Always-zero register (absent base/index, no segment).
pub const ZERO: u8 = 28;
/// Size of the integer register file.
pub const NUM_REGS: usize = 32;
/// XMM0 in the vector register numbering (XMM0–XMM15 are 32–47).
pub const XMM0: u8 = 32;
/// First vector temporary (48–51).
pub const VT0: u8 = 48;
/// Number of vector temporaries per instruction.
pub const NUM_VTEMPS: u8 = 4;
/// MXCSR as a renamed register (read by FP uops, written by those that
/// raise flags and by `ldmxcsr`).
pub const MXCSR: u8 = 52;
/// The x87 stack and its control/status/tag words, renamed as one register.
pub const X87: u8 = 53;
/// MM0 in the vector register numbering (MM0–MM7 are 54–61): the low 64
/// bits of the physical x87 registers R0–R7. A `Vec` uop naming one also
/// depends on [`X87`] (reads) or produces it (writes), since the two alias
/// ([`crate::simd`]).
pub const MM0: u8 = 54;
/// Size of the whole register numbering (integer, vector, MXCSR, x87):
/// what the out-of-order core renames.
pub const NUM_ALL_REGS: usize = 64;
/// In the `b` field: use the uop's immediate.
pub const IMM: u8 = 0xff;

/// Compressed flag masks (`Uop::fl`): one bit per arithmetic flag.
pub mod fl {
    /// CF.
    pub const CF: u8 = 1;
    /// PF.
    pub const PF: u8 = 2;
    /// AF.
    pub const AF: u8 = 4;
    /// ZF.
    pub const ZF: u8 = 8;
    /// SF.
    pub const SF: u8 = 16;
    /// OF.
    pub const OF: u8 = 32;
    /// All six.
    pub const ALL: u8 = 63;
    /// All but CF (inc/dec).
    pub const NOCF: u8 = ALL & !CF;
}

/// Expands a compressed flag mask into RFLAGS bits.
pub const fn expand_fl(m: u8) -> u64 {
    let mut r = 0u64;
    if m & fl::CF != 0 {
        r |= crate::arch::flags::CF;
    }
    if m & fl::PF != 0 {
        r |= crate::arch::flags::PF;
    }
    if m & fl::AF != 0 {
        r |= crate::arch::flags::AF;
    }
    if m & fl::ZF != 0 {
        r |= crate::arch::flags::ZF;
    }
    if m & fl::SF != 0 {
        r |= crate::arch::flags::SF;
    }
    if m & fl::OF != 0 {
        r |= crate::arch::flags::OF;
    }
    r
}

/// Compressed flags each condition code (0–15, x86 order) reads.
pub const fn cond_reads(cc: u8) -> u8 {
    match cc >> 1 {
        0 => fl::OF,
        1 => fl::CF,
        2 => fl::ZF,
        3 => fl::CF | fl::ZF,
        4 => fl::SF,
        5 => fl::PF,
        6 => fl::SF | fl::OF,
        _ => fl::ZF | fl::SF | fl::OF,
    }
}

/// Uop operations. Field use per op is documented on each variant:
/// `d` = dst, `a`, `b` (register or [`IMM`]), `c`, `s` = size in bytes.
/// Memory uops address `[a + (c << scale) + imm]` plus the segment base in
/// register `fl`, with `aux` = scale (bits 0–1) | 32-bit addressing (bit 2).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
#[repr(u8)]
#[allow(missing_docs)] // The variant docs below are the contract; names are the x86 ones.
pub enum Op {
    /// Nothing.
    Nop,
    /// First uop of an instruction that must be able to roll back: saves
    /// RFLAGS (`aux` 1) or the register file (`aux` 2).
    Snap,
    /// d = imm.
    MovI,
    /// d = a.
    Mov,
    /// d = zero-extend(a from `aux` bytes).
    Zext,
    /// d = sign-extend(a from `aux` bytes).
    Sext,
    /// d = bits 15:8 of a (full-width write).
    GetHi,
    /// bits 15:8 of d = low byte of a.
    PutHi,
    /// d = load `s` bytes.
    Ld,
    /// store low `s` bytes of b.
    St,
    /// store-probe: fault now, as a write (error code W), if `s` bytes at
    /// the address are not writable.
    ProbeW,
    /// d = effective address (no segment).
    Lea,
    Add,
    Adc,
    Sub,
    Sbb,
    And,
    Or,
    Xor,
    /// d = a + 1.
    Inc,
    /// d = a - 1.
    Dec,
    /// d = 0 - a.
    Neg,
    /// d = !a (no flags).
    Not,
    Shl,
    Shr,
    Sar,
    Rol,
    Ror,
    Rcl,
    Rcr,
    /// d = shld(a, fill c, count b).
    Shld,
    /// d = shrd(a, fill c, count b).
    Shrd,
    /// d:c = a * b unsigned (for s = 1, d gets the 16-bit product).
    Mul,
    /// d:c = a * b signed (for s = 1, d gets the 16-bit product).
    ImulW,
    /// d = low half of a * b signed; CF = OF = overflow.
    Imul,
    /// d, c = (c:a) / b, (c:a) % b unsigned; for s = 1 a is AX, d gets AL, AH.
    Div,
    /// Signed Div.
    Idiv,
    /// CF = bit b of a.
    Bt,
    /// d = a with bit b set; CF = old bit.
    Bts,
    /// d = a with bit b cleared; CF = old bit.
    Btr,
    /// d = a with bit b flipped; CF = old bit.
    Btc,
    /// d = a + (sext(b) >> log2(8s)) * s: the byte address of a bit-string bit.
    BtAddr,
    Bsf,
    Bsr,
    Lzcnt,
    Tzcnt,
    Popcnt,
    Bswap,
    /// d (1 byte) = condition `aux`.
    Setcc,
    /// d = condition `aux` ? b : a (always written).
    Cmov,
    /// if condition `aux`: d = b (otherwise no write).
    CondMov,
    /// RFLAGS = (RFLAGS & !user-writable) | (a & user-writable).
    Popf,
    /// RFLAGS SF ZF AF PF CF = bits of a's low byte.
    Sahf,
    /// aux: 0 clc, 1 stc, 2 cmc, 3 cld, 4 std.
    FlagOp,
    /// One iteration of a string op: aux = kind (0 movs, 1 stos, 2 lods,
    /// 3 cmps, 4 scas) | 32-bit addressing (bit 3); segment in fl for sources.
    Str,
    /// cpuid on eax/ecx.
    Cpuid,
    /// edx:eax = cycles (`imm` = the instruction's index in its block).
    Rdtsc,
    /// edx:eax = cycles, ecx = TSC_AUX (`imm` as for `Rdtsc`).
    Rdtscp,
    /// Memory fences: no effect functionally (TSO is kept by construction).
    Fence,
    /// pause: a spin-wait hint.
    Pause,
    /// Block exit: rip = imm.
    Jmp,
    /// Block exit: rip = condition `aux` ? imm : end of block.
    Jcc,
    /// Block exit: rip = a.
    JmpR,
    /// Block exit: rip = (a at size s) != 0 ? imm : end of block (loop);
    /// `aux` 1 also requires ZF (loope), 2 requires ZF clear (loopne).
    Jnz,
    /// Block exit: rip = (a at size s) == 0 ? imm : end of block (jrcxz).
    Jz,
    /// Exit to the hypervisor: hlt.
    Hlt,
    /// Exit to the hypervisor: syscall (hypercall trap).
    Syscall,
    /// Raise the fault in `aux` (vector) with detail string number `imm`.
    Raise,
    /// #GP check on register a: aux 0 = must be 16-byte aligned, 1 = must be canonical.
    Chk,
    /// An x87/SSE/extension operation ([`crate::simd`]): `aux` = the
    /// family ([`crate::simd::Family`]), `imm` bits 15:0 = the family's
    /// operation, bits 23:16 = the instruction's imm8, bits 31:24 extra;
    /// `dst`, `a`, `b`, `c` are vector registers ([`XMM0`].., [`VT0`]..) or
    /// GPRs as the operation says; `fl` = flags written.
    Vec,
}

/// `aux` bit of an [`Op::Ld`] that reads a read-modify-write destination
/// (`add [m], r`): a page fault on it is reported as the write's (error
/// code W), as the hardware does for the whole instruction.
pub const LD_FOR_WRITE: u8 = 8;

/// One micro-operation (16 bytes).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Uop {
    /// Operation.
    pub op: Op,
    /// Operand size in bytes (1, 2, 4, 8).
    pub size: u8,
    /// Destination register.
    pub dst: u8,
    /// First source register.
    pub a: u8,
    /// Second source register or [`IMM`].
    pub b: u8,
    /// Third source / second destination / index register.
    pub c: u8,
    /// Flags written (compressed, [`fl`]); for memory uops the segment register.
    pub fl: u8,
    /// Op-specific: condition code, extension size, scale, string kind.
    pub aux: u8,
    /// Immediate, displacement or branch target.
    pub imm: i64,
}

impl Uop {
    /// A uop with every register field at [`ZERO`] / [`SINK`].
    pub const fn new(op: Op, size: u8) -> Self {
        Uop {
            op,
            size,
            dst: SINK,
            a: ZERO,
            b: ZERO,
            c: ZERO,
            fl: 0,
            aux: 0,
            imm: 0,
        }
    }
    /// Whether the uop touches memory (and so may fault).
    pub fn is_mem(&self) -> bool {
        matches!(self.op, Op::Ld | Op::St | Op::ProbeW | Op::Str)
            || (self.op == Op::Vec && self.aux == crate::simd::Family::State as u8)
    }
}

/// Per-instruction bookkeeping in a translated block.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct InsnInfo {
    /// Guest address of the instruction.
    pub rip: u64,
    /// Length in bytes.
    pub len: u8,
    /// Uops `[start, end)` of the block's uop array.
    pub start: u16,
    /// End of this instruction's uops.
    pub end: u16,
    /// What the executor saves before it, because a memory uop follows an
    /// architectural write: 0 nothing, 1 RFLAGS only, 2 the register file.
    pub snapshot: u8,
    /// REP mode: 0 none, 1 rep/repe, 2 repne; with `rep_addr32` for ecx.
    pub rep: u8,
    /// The REP count register is ecx (32-bit addressing).
    pub rep_addr32: bool,
}

impl InsnInfo {
    /// Address of the next instruction.
    pub fn next_rip(&self) -> u64 {
        self.rip.wrapping_add(u64::from(self.len))
    }
}

fn reg_name(r: u8) -> String {
    match r {
        0..=15 => crate::arch::gpr_name(usize::from(r)).to_string(),
        SINK => "sink".into(),
        32..=47 => format!("xmm{}", r - XMM0),
        48..=51 => format!("vt{}", r - VT0),
        MXCSR => "mxcsr".into(),
        X87 => "x87".into(),
        FSBASE => "fsbase".into(),
        GSBASE => "gsbase".into(),
        FLAGS => "flags".into(),
        ZERO => "zero".into(),
        IMM => "imm".into(),
        t => format!("t{}", t - T0),
    }
}

fn fl_name(m: u8) -> String {
    const N: [&str; 6] = ["c", "p", "a", "z", "s", "o"];
    (0..6).filter(|i| m & (1 << i) != 0).map(|i| N[i]).collect()
}

impl fmt::Display for Uop {
    /// Stable text form used by the golden translation tests, e.g.
    /// `add.4 rax = rax, imm 0x1 [cpazso]`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let op = format!("{:?}", self.op).to_lowercase();
        write!(f, "{op}.{}", self.size)?;
        match self.op {
            Op::Ld | Op::St | Op::ProbeW | Op::Lea => {
                if self.op == Op::Ld || self.op == Op::Lea {
                    write!(f, " {} =", reg_name(self.dst))?;
                }
                write!(
                    f,
                    " [{}+{}<<{}+{:#x}",
                    reg_name(self.a),
                    reg_name(self.c),
                    self.aux & 3,
                    self.imm
                )?;
                if self.fl != ZERO && self.op != Op::Lea {
                    write!(f, " seg {}", reg_name(self.fl))?;
                }
                if self.aux & 4 != 0 {
                    write!(f, " a32")?;
                }
                if self.op == Op::Ld && self.aux & LD_FOR_WRITE != 0 {
                    write!(f, " for-write")?;
                }
                write!(f, "]")?;
                if self.op == Op::St {
                    write!(f, " = {}", reg_name(self.b))?;
                }
                Ok(())
            }
            Op::Vec => {
                const FAM: [&str; 6] = ["mov", "fp", "int", "x87", "state", "scalar"];
                let fam = FAM.get(usize::from(self.aux)).copied().unwrap_or("?");
                write!(
                    f,
                    " {fam}#{} {} = {}, {}, {}",
                    self.imm as u16,
                    reg_name(self.dst),
                    reg_name(self.a),
                    reg_name(self.b),
                    reg_name(self.c)
                )?;
                let imm8 = (self.imm >> 16) as u8;
                if imm8 != 0 {
                    write!(f, " imm8 {imm8:#x}")?;
                }
                if self.fl != 0 {
                    write!(f, " [{}]", fl_name(self.fl))?;
                }
                Ok(())
            }
            Op::Str => {
                const KIND: [&str; 5] = ["movs", "stos", "lods", "cmps", "scas"];
                let kind = KIND.get(usize::from(self.aux & 7)).copied().unwrap_or("?");
                write!(f, " {kind}")?;
                if self.fl != ZERO {
                    write!(f, " seg {}", reg_name(self.fl))?;
                }
                if self.aux & 8 != 0 {
                    write!(f, " a32")?;
                }
                Ok(())
            }
            _ => {
                write!(f, " {} = {}, ", reg_name(self.dst), reg_name(self.a))?;
                if self.b == IMM {
                    write!(f, "imm {:#x}", self.imm)?;
                } else {
                    write!(f, "{}", reg_name(self.b))?;
                    if self.imm != 0 {
                        write!(f, " #{:#x}", self.imm)?;
                    }
                }
                if self.c != ZERO {
                    write!(f, ", {}", reg_name(self.c))?;
                }
                if self.aux != 0 {
                    write!(f, " aux {}", self.aux)?;
                }
                if self.fl != 0 {
                    write!(f, " [{}]", fl_name(self.fl))?;
                }
                Ok(())
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn uop_is_sixteen_bytes() {
        assert_eq!(std::mem::size_of::<Uop>(), 16);
    }

    #[test]
    fn expand_all_flags() {
        assert_eq!(expand_fl(fl::ALL), crate::arch::flags::ARITH);
        assert_eq!(cond_reads(0xf), fl::ZF | fl::SF | fl::OF);
    }
}
