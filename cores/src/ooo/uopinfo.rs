//! Timing view of a uop: its class (functional unit), the registers it
//! reads and writes (for renaming) and how it touches memory.

use crate::uop::{cond_reads, Op, Uop, FLAGS, IMM, SINK, ZERO};

/// Register slot of RFLAGS in the rename table (flags are renamed as one
/// register).
pub const FLAGS_REG: u8 = FLAGS;

/// Which unit executes a uop.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub enum Class {
    /// Needs no execution (nop, snapshot, fence, pause): done at dispatch.
    None,
    /// Integer ALU.
    Alu,
    /// Branch (on an ALU).
    Branch,
    /// Multiplier.
    Mul,
    /// Divider (unpipelined).
    Div,
    /// Load port.
    Load,
    /// Store port.
    Store,
    /// Microcoded op on an ALU with the `complex` latency.
    Complex,
    /// Memory fence: issues only as the context's oldest uop once its
    /// committed stores have drained; younger loads wait for it.
    Fence,
    /// Floating-point add, subtract, compare, min/max (SSE and x87).
    FpAdd,
    /// Floating-point multiply (and dot products).
    FpMul,
    /// Floating-point divide and square root (unpipelined).
    FpDiv,
    /// Vector integer ALU ops, logic, vector moves.
    Vec,
    /// Shuffles, unpacks, packs, inserts and extracts.
    Shuffle,
    /// Conversions between integer and floating point and between formats.
    Convert,
}

/// Up to 5 sources and 4 destinations, [`NONE_REG`]-padded.
#[derive(Clone, Copy, Debug)]
pub struct RegUse {
    /// Registers read.
    pub srcs: [u8; 5],
    /// Registers written.
    pub dsts: [u8; 4],
}

/// Padding in [`RegUse`].
pub const NONE_REG: u8 = 0xfe;

fn real(r: u8) -> bool {
    r != ZERO && r != IMM && r != SINK && r != NONE_REG
}

/// Every uop operation (for per-opcode configuration by name).
pub const ALL_OPS: [Op; 70] = [
    Op::Nop,
    Op::Snap,
    Op::MovI,
    Op::Mov,
    Op::Zext,
    Op::Sext,
    Op::GetHi,
    Op::PutHi,
    Op::Ld,
    Op::St,
    Op::ProbeW,
    Op::Lea,
    Op::Add,
    Op::Adc,
    Op::Sub,
    Op::Sbb,
    Op::And,
    Op::Or,
    Op::Xor,
    Op::Inc,
    Op::Dec,
    Op::Neg,
    Op::Not,
    Op::Shl,
    Op::Shr,
    Op::Sar,
    Op::Rol,
    Op::Ror,
    Op::Rcl,
    Op::Rcr,
    Op::Shld,
    Op::Shrd,
    Op::Mul,
    Op::ImulW,
    Op::Imul,
    Op::Div,
    Op::Idiv,
    Op::Bt,
    Op::Bts,
    Op::Btr,
    Op::Btc,
    Op::BtAddr,
    Op::Bsf,
    Op::Bsr,
    Op::Lzcnt,
    Op::Tzcnt,
    Op::Popcnt,
    Op::Bswap,
    Op::Setcc,
    Op::Cmov,
    Op::CondMov,
    Op::Popf,
    Op::Sahf,
    Op::FlagOp,
    Op::Str,
    Op::Cpuid,
    Op::Rdtsc,
    Op::Rdtscp,
    Op::Fence,
    Op::Pause,
    Op::Jmp,
    Op::Jcc,
    Op::JmpR,
    Op::Jnz,
    Op::Jz,
    Op::Hlt,
    Op::Syscall,
    Op::Raise,
    Op::Chk,
    Op::Vec,
];

/// The configuration name of an op: its variant name in lower case
/// (`add`, `imul`, `ld`, `jcc`…).
pub fn op_name(op: Op) -> String {
    format!("{op:?}").to_lowercase()
}

/// Class of a uop.
pub fn class(u: &Uop) -> Class {
    match u.op {
        Op::Nop | Op::Snap | Op::Pause => Class::None,
        Op::Fence => Class::Fence,
        Op::Ld => Class::Load,
        Op::St | Op::ProbeW => Class::Store,
        Op::Str => {
            if matches!(u.aux & 7, 1) {
                Class::Store
            } else {
                Class::Load
            }
        }
        Op::Mul | Op::ImulW | Op::Imul => Class::Mul,
        Op::Div | Op::Idiv => Class::Div,
        Op::Jmp | Op::Jcc | Op::JmpR | Op::Jnz | Op::Jz => Class::Branch,
        Op::Cpuid | Op::Rdtsc | Op::Rdtscp | Op::Popf | Op::Hlt | Op::Syscall | Op::Raise => {
            Class::Complex
        }
        Op::Vec => crate::simd::class(u),
        _ => Class::Alu,
    }
}

/// Registers a uop reads and writes.
pub fn reg_use(u: &Uop) -> RegUse {
    let mut r = RegUse {
        srcs: [NONE_REG; 5],
        dsts: [NONE_REG; 4],
    };
    let (mut ns, mut nd) = (0, 0);
    let mut src = |x: u8, r: &mut RegUse| {
        if real(x) && ns < 5 && !r.srcs[..ns].contains(&x) {
            r.srcs[ns] = x;
            ns += 1;
        }
    };
    let mut dst = |x: u8, r: &mut RegUse| {
        if real(x) && nd < 4 && !r.dsts[..nd].contains(&x) {
            r.dsts[nd] = x;
            nd += 1;
        }
    };
    match u.op {
        Op::Str => {
            for x in [6, 7, 0, 1, FLAGS_REG] {
                src(x, &mut r);
            }
            for x in [6, 7, 0, FLAGS_REG] {
                dst(x, &mut r);
            }
            return r;
        }
        Op::Cpuid | Op::Rdtsc | Op::Rdtscp => {
            src(0, &mut r);
            src(1, &mut r);
            for x in [0, 1, 2, 3] {
                dst(x, &mut r);
            }
            return r;
        }
        Op::Popf | Op::Sahf | Op::FlagOp => {
            src(u.a, &mut r);
            src(FLAGS_REG, &mut r);
            dst(FLAGS_REG, &mut r);
            return r;
        }
        Op::Vec => {
            // Exactly a, b, c and the family's implicit state (crate::simd).
            for x in [u.a, u.b, u.c] {
                src(x, &mut r);
            }
            let (reads, writes) = crate::simd::implicit_regs(u);
            for &x in reads {
                src(x, &mut r);
            }
            dst(u.dst, &mut r);
            for &x in writes {
                dst(x, &mut r);
            }
            if u.fl != 0 {
                dst(FLAGS_REG, &mut r);
            }
            return r;
        }
        _ => {}
    }
    src(u.a, &mut r);
    src(u.b, &mut r);
    let c_is_dst = matches!(u.op, Op::Mul | Op::ImulW);
    if !c_is_dst {
        src(u.c, &mut r);
    }
    if u.is_mem() && u.op != Op::Lea {
        src(u.fl, &mut r); // segment base
    }
    // Partial writes (1- and 2-byte) merge with the old value.
    if u.size < 4 || matches!(u.op, Op::PutHi | Op::CondMov) {
        src(u.dst, &mut r);
    }
    if reads_flags(u) {
        src(FLAGS_REG, &mut r);
    }
    if !matches!(
        u.op,
        Op::St | Op::ProbeW | Op::Jmp | Op::Jcc | Op::JmpR | Op::Jnz | Op::Jz
    ) {
        dst(u.dst, &mut r);
    }
    if matches!(u.op, Op::Mul | Op::ImulW | Op::Div | Op::Idiv) {
        dst(u.c, &mut r);
    }
    if writes_flags(u) {
        dst(FLAGS_REG, &mut r);
    }
    r
}

fn reads_flags(u: &Uop) -> bool {
    match u.op {
        Op::Adc | Op::Sbb | Op::Rcl | Op::Rcr => true,
        Op::Setcc | Op::Cmov | Op::CondMov | Op::Jcc => cond_reads(u.aux) != 0,
        Op::Jnz => u.aux != 0,
        _ => false,
    }
}

fn writes_flags(u: &Uop) -> bool {
    !matches!(u.op, Op::Ld | Op::St | Op::ProbeW | Op::Lea | Op::Str) && u.fl != 0
}

/// Whether a `Str` uop of this kind reads memory and writes memory.
pub fn str_rw(u: &Uop) -> (u8, u8) {
    match u.aux & 7 {
        0 => (1, 1), // movs
        1 => (0, 1), // stos
        2 => (1, 0), // lods
        3 => (2, 0), // cmps
        _ => (1, 0), // scas
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn op_table_is_complete_and_ordered() {
        for (i, op) in ALL_OPS.iter().enumerate() {
            assert_eq!(*op as usize, i, "{op:?}");
        }
        assert_eq!(ALL_OPS.last(), Some(&Op::Vec), "Vec is the last variant");
        assert_eq!(op_name(Op::ImulW), "imulw");
    }

    #[test]
    fn add_reads_sources_and_writes_dst_and_flags() {
        let mut u = Uop::new(Op::Add, 8);
        u.dst = 0;
        u.a = 0;
        u.b = 1;
        u.fl = crate::uop::fl::ALL;
        let r = reg_use(&u);
        assert_eq!(&r.srcs[..2], &[0, 1]);
        assert_eq!(r.srcs[2], NONE_REG);
        assert_eq!(&r.dsts[..2], &[0, FLAGS_REG]);
        assert_eq!(class(&u), Class::Alu);
    }
}
