//! x87, SSE and instruction-set extensions: the semantics of [`crate::uop::Op::Vec`]
//! uops, one module per family.
//!
//! A `Vec` uop names its family in `aux` ([`Family`]) and the family's
//! operation in bits 15:0 of `imm` (the instruction's imm8 in bits 23:16,
//! an op-specific byte in bits 31:24); `size` is the element or operand
//! size. Its operands are vector registers ([`XMM0`]..XMM15, the
//! temporaries [`VT0`]..; the MMX registers [`MM0`]..MM7, the low 64 bits
//! of R0–R7, read zero-extended and written through
//! [`FpuState::set_mm`]) or GPRs, as the operation says, in `dst`, `a`,
//! `b`, `c`; `fl` holds the RFLAGS bits it writes (comis, ptest, pcmpistri).
//!
//! # Rules every family keeps
//! - A `Vec` uop reads exactly `a`, `b`, `c` (the real ones), plus MXCSR
//!   for an FP operation and the x87 state for an x87 one; it writes `dst`
//!   (and RFLAGS when `fl` is set). Merging writes (addss, movss between
//!   registers) list the old destination as a source. The out-of-order core
//!   renames from exactly this ([`crate::ooo`]).
//! - Precise faults without undo: an instruction's loads come before any
//!   of its `Vec` uops that change architectural vector, MXCSR or x87
//!   state, and an instruction that stores computes what it stores into
//!   temporaries first (no architectural change) and changes architectural
//!   state only after its last store. A SIMD exception (#XM, #MF, #GP for a
//!   bad MXCSR) is raised by the uop that detects it, before it writes.
//!   The translator checks the first rule in debug builds.
//! - While CR0.TS is set ([`FpuState::ts`]) every x87/SSE uop raises #NM
//!   (vector 7) first; the [`Family::Scalar`] extensions (BMI, CRC32) are
//!   integer instructions and never do.
//! - Only the [`Family::State`] operations (FXSAVE, XSAVE and their
//!   restores) reach memory themselves (the address is in `a`, segment
//!   base included); everything else loads and stores through ordinary
//!   `Ld`/`St` uops and GPR temporaries, 8 bytes at a time.

pub mod approx;
mod f80;
mod fp;
mod int;
mod mov;
mod scalar;
mod softfp;
pub(crate) mod state;
pub(crate) mod x87;

use crate::exec::write_reg;
use crate::fpu::FpuState;
use crate::mem::GuestMemory;
use crate::uop::{Uop, MM0, NUM_REGS, NUM_VTEMPS, VT0, XMM0};

pub(crate) use fp::{x as fpx, FpOp};
pub(crate) use int::{flags_of as int_flags, IntOp};
pub(crate) use mov::MovOp;
pub(crate) use scalar::ScalarOp;

/// A `Vec` uop's family (its `aux`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(u8)]
pub enum Family {
    /// Moves between XMM registers, GPRs and memory; MXCSR access.
    Mov = 0,
    /// SSE–SSE4.1 floating point (scalar and packed, single and double).
    Fp = 1,
    /// SSE2–SSE4.2 integer, shuffles, packs, string compares.
    Int = 2,
    /// The x87 FPU.
    X87 = 3,
    /// FXSAVE/FXRSTOR, XSAVE/XSAVEOPT/XRSTOR, XGETBV.
    State = 4,
    /// Integer extensions: BMI1, BMI2, CRC32, MOVBE helpers.
    Scalar = 5,
}

impl Family {
    /// The family in a uop's `aux`.
    pub fn of(u: &Uop) -> Option<Family> {
        Some(match u.aux {
            0 => Family::Mov,
            1 => Family::Fp,
            2 => Family::Int,
            3 => Family::X87,
            4 => Family::State,
            5 => Family::Scalar,
            _ => return None,
        })
    }
}

/// The operation number of a `Vec` uop within its family.
pub fn op_of(u: &Uop) -> u16 {
    u.imm as u16
}

/// The instruction's imm8 carried by a `Vec` uop.
pub fn imm8_of(u: &Uop) -> u8 {
    (u.imm >> 16) as u8
}

/// The op-specific extra byte of a `Vec` uop.
pub fn extra_of(u: &Uop) -> u8 {
    (u.imm >> 24) as u8
}

/// Packs a family operation, imm8 and extra byte into a uop's `imm`.
pub fn pack_imm(op: u16, imm8: u8, extra: u8) -> i64 {
    i64::from(op) | (i64::from(imm8) << 16) | (i64::from(extra) << 24)
}

/// Exception vectors the families raise.
pub mod vector {
    /// #UD.
    pub const UD: u8 = 6;
    /// #NM: device not available (CR0.TS).
    pub const NM: u8 = 7;
    /// #GP(0).
    pub const GP: u8 = 13;
    /// #MF: x87 floating-point error.
    pub const MF: u8 = 16;
    /// #XM: SIMD floating-point exception.
    pub const XM: u8 = 19;
}

/// An exception a `Vec` uop raises (its vector; the fault has no error code
/// but #GP's 0).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Exc(pub u8);

/// What a family's executor works on: the integer register file, the
/// vector temporaries, the context's [`FpuState`] and (for
/// [`Family::State`] only) memory.
pub(crate) struct VecCtx<'a> {
    /// GPRs, temporaries, bases, RFLAGS ([`crate::uop`] numbering).
    pub r: &'a mut [u64; NUM_REGS],
    /// Vector temporaries.
    pub vt: &'a mut [u128; NUM_VTEMPS as usize],
    /// Architectural x87/SSE state.
    pub fpu: &'a mut FpuState,
    /// Guest memory.
    pub mem: &'a mut dyn GuestMemory,
    /// A memory stop of a [`Family::State`] access (with [`Exc`] of
    /// [`MEM_STOP`]): the executor raises the page fault or replays the
    /// instruction, like any other access's.
    pub stop: Option<crate::mem::MemStop>,
}

/// The [`Exc`] "vector" of a memory stop kept in [`VecCtx::stop`].
pub(crate) const MEM_STOP: u8 = 0xfe;

impl VecCtx<'_> {
    /// Vector register `i` (XMM, temporary, or an MMX register: its 64
    /// bits zero-extended).
    #[inline]
    pub fn v(&self, i: u8) -> u128 {
        if is_mm(i) {
            u128::from(self.fpu.mm(usize::from(i - MM0)))
        } else if i >= VT0 {
            self.vt[usize::from((i - VT0) & 3)]
        } else {
            self.fpu.xmm[usize::from(i.wrapping_sub(XMM0) & 15)]
        }
    }

    /// Writes vector register `i` (an MMX register takes the low 64 bits,
    /// [`FpuState::set_mm`]).
    #[inline]
    pub fn set_v(&mut self, i: u8, v: u128) {
        if is_mm(i) {
            self.fpu.set_mm(usize::from(i - MM0), v as u64);
        } else if i >= VT0 {
            self.vt[usize::from((i - VT0) & 3)] = v;
        } else {
            self.fpu.xmm[usize::from(i.wrapping_sub(XMM0) & 15)] = v;
        }
    }

    /// Integer register `i`.
    #[inline]
    pub fn g(&self, i: u8) -> u64 {
        self.r[usize::from(i & 31)]
    }

    /// Writes integer register `d` at `size` bytes (x86 merge and
    /// zero-extension rules).
    #[inline]
    pub fn set_g(&mut self, d: u8, size: u8, v: u64) {
        write_reg(self.r, d, size, v);
    }

    /// Sets the RFLAGS bits of compressed mask `m` from `new` (RFLAGS bit
    /// positions).
    #[inline]
    pub fn set_flags(&mut self, m: u8, new: u64) {
        let m = crate::uop::expand_fl(m);
        let f = &mut self.r[usize::from(crate::uop::FLAGS)];
        *f = (*f & !m) | (new & m);
    }
}

/// Whether vector register number `i` is an MMX register.
#[inline]
pub(crate) fn is_mm(i: u8) -> bool {
    (MM0..MM0 + 8).contains(&i)
}

/// Whether a uop reads (a, b or c) or writes an MMX register.
fn mm_use(u: &Uop) -> (bool, bool) {
    (is_mm(u.a) || is_mm(u.b) || is_mm(u.c), is_mm(u.dst))
}

/// Runs one `Vec` uop.
pub(crate) fn exec(x: &mut VecCtx<'_>, u: &Uop) -> Result<(), Exc> {
    let fam = Family::of(u).ok_or(Exc(vector::UD))?;
    if x.fpu.ts && fam != Family::Scalar {
        return Err(Exc(vector::NM));
    }
    match fam {
        Family::Mov => mov::exec(x, u),
        Family::Fp => fp::exec(x, u),
        Family::Int => int::exec(x, u),
        Family::Scalar => scalar::exec(x, u),
        Family::X87 => x87::exec(x, u),
        Family::State => state::exec(x, u),
    }
}

/// The timing class of a `Vec` uop (its functional unit).
pub fn class(u: &Uop) -> crate::ooo::uopinfo::Class {
    use crate::ooo::uopinfo::Class;
    match Family::of(u) {
        Some(Family::State) => Class::Complex,
        Some(Family::Fp) => fp::class(u),
        Some(Family::Int) => int::class(u),
        Some(Family::Scalar) => scalar::class(u),
        Some(Family::X87) => x87::class(u),
        _ => Class::Alu,
    }
}

/// The registers a `Vec` uop reads and writes besides `a`, `b`, `c` and
/// `dst`: MXCSR for FP operations (read: the rounding mode; the sticky
/// flags are not a dependence), the x87 state for x87 ones, everything for
/// the state saves and restores. An MMX register operand aliases the x87
/// registers: reading one reads the x87 state, writing one writes it
/// (so x87 and MMX instructions stay ordered both ways).
pub fn implicit_regs(u: &Uop) -> (&'static [u8], &'static [u8]) {
    use crate::uop::{MXCSR, X87};
    let fam = Family::of(u);
    match (fam, mm_use(u)) {
        (_, (false, false)) | (Some(Family::X87 | Family::State), _) => {}
        (Some(Family::Fp), (_, true)) => return (&[MXCSR, X87], &[X87]),
        (Some(Family::Fp), (true, false)) => return (&[MXCSR, X87], &[]),
        (_, (_, true)) => return (&[X87], &[X87]),
        (_, (true, false)) => return (&[X87], &[]),
    }
    match fam {
        Some(Family::Fp) => (&[MXCSR], &[]),
        Some(Family::X87) if x87::computes_only(u) => (&[X87], &[]),
        Some(Family::X87) => (&[X87], &[X87]),
        Some(Family::State) => state::implicit(u),
        Some(Family::Mov) if op_of(u) == MovOp::Ldmxcsr.id() => (&[], &[MXCSR]),
        Some(Family::Mov) if op_of(u) == MovOp::Stmxcsr.id() => (&[MXCSR], &[]),
        _ => (&[], &[]),
    }
}

/// A fault detail for an exception a `Vec` uop raised at `rip`.
pub(crate) fn detail(vector: u8, rip: u64, fpu: &FpuState) -> String {
    match vector {
        vector::NM => format!("#NM at {rip:#x}: x87/SSE instruction with CR0.TS set"),
        vector::XM => format!(
            "#XM at {rip:#x}: unmasked SIMD floating-point exception (MXCSR {:#06x})",
            fpu.mxcsr
        ),
        vector::MF => format!(
            "#MF at {rip:#x}: unmasked x87 floating-point exception (FSW {:#06x}, FCW {:#06x})",
            fpu.fsw, fpu.fcw
        ),
        vector::GP => format!("#GP(0) at {rip:#x}"),
        v => format!("vector {v} at {rip:#x}"),
    }
}

#[cfg(test)]
pub(crate) mod tests;
#[cfg(test)]
mod tests_fp;
#[cfg(test)]
mod tests_int;
#[cfg(test)]
mod tests_mmx;
#[cfg(test)]
mod tests_store_faults;
#[cfg(test)]
mod tests_x87;
