//! [`super::Family::X87`]: the x87 FPU on [`FpuState`], with the
//! arithmetic of [`super::f80`].
//!
//! # Uop encoding (this family's own layout of `imm`)
//! - bits 7:0: the operation ([`X87Op`]);
//! - bits 10:8: `i` of an ST(i) operand;
//! - bits 15:11: operation flags ([`fl`]);
//! - bits 18:16: a sub-operation (arithmetic kind, constant, condition,
//!   transcendental);
//! - bits 29:19: the instruction's FOP (recorded with an unmasked
//!   exception);
//! - bit 30: this uop first checks for a pending unmasked exception (FSW.ES)
//!   and raises #MF before doing anything (the first x87 uop of a waiting
//!   instruction);
//! - bit 31: this uop records FIP (a non-control instruction's last uop);
//! - bits 63:32: the instruction's RIP, sign-extended from 32 bits (FIP;
//!   for a RIP outside ±2 GiB a [`X87Op::FipHi`] uop follows with the
//!   high half).
//!
//! Memory operands arrive in GPR temporaries `a` (low 8 bytes) and `b`
//! (bytes 9:8 of an m80); a memory instruction's last uop has the
//! operand's offset in `c` (FDP). Stores compute their value into `dst`
//! with a uop that changes nothing, and a later uop (the same op with
//! [`fl::COMMIT`]) recomputes it to set the status flags and pop. A store
//! first probes its destination for writing (its page fault is a write's)
//! and loads the old contents (into `a`, and `b` for the
//! m80's high part): with an unmasked #IA, #O or #U the host stores
//! nothing and does not pop, and the uop writes the old contents back (a
//! racing store of another processor to those bytes between the load and
//! the store would be lost, as with `ProbeW`).
//!
//! # Exceptions (checked against the host, an Intel Xeon)
//! The masked responses are the architectural ones. With an unmasked #IA,
//! #D or #Z the destination and the stack stay unchanged (a compare still
//! sets its condition codes but does not pop; an unmasked #D stops the
//! operation before it computes, so it is reported alone, but fld m32/m64
//! still pushes; a NaN in ST(0) hides a denormal memory operand's #D);
//! with an
//! unmasked #O or #U a register result is stored with its exponent
//! adjusted by 24576 (a zero or ∞ when even that does not fit); in all
//! cases FSW.ES and B are set and the next waiting instruction raises #MF
//! (vector 16) before anything, its memory operand's page fault included.
//! Like the host (FDP_EXCPTN_ONLY, FOP deprecation), FOP and FDP are
//! recorded only by an instruction that raises an unmasked exception; FIP
//! by every non-control instruction.
//!
//! # Precision control
//! FCW.PC rounds fadd/fsub/fmul/fdiv/fsqrt (and their memory and integer
//! forms) to 24, 53 or 64 bits with the extended exponent range; fprem,
//! fprem1, fscale, frndint, fxtract and the conversions ignore it.
//!
//! # Transcendentals
//! fsin fcos fsincos fptan fpatan f2xm1 fyl2x fyl2xp1 run on the host's
//! FPU through the `hostfpu` crate (bit-exact on x86-64, with the guest's
//! FCW); elsewhere they are computed through `f64` (not bit-exact).

use super::f80::{self, exc, Env, Kind};
use super::{vector, Exc, VecCtx};
use crate::fpu::{x87 as sw, FpuState};
use crate::uop::Uop;

/// The operations of the x87 family.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(u8)]
pub(crate) enum X87Op {
    /// fwait (the #MF check only) and fnop.
    Nop = 0,
    /// fninit.
    Init = 1,
    /// fnclex.
    Clex = 2,
    /// FCW = g[a].
    Ldcw = 3,
    /// g[dst] = FCW.
    Stcw = 4,
    /// g[dst] = FSW.
    Stsw = 5,
    /// Push a real from memory (`size` 4, 8, or 10: g[a] low 8, g[b] high 2).
    LdF = 6,
    /// Push an integer from memory (`size` 2, 4, 8).
    LdI = 7,
    /// Push ST(i).
    LdSt = 8,
    /// Push a constant (sub: 0 one, 1 l2t, 2 l2e, 3 pi, 4 lg2, 5 ln2, 6 zero).
    LdConst = 9,
    /// Store ST(0) as a real (`size` 4, 8, 10; sub 1: the high 2 bytes of
    /// an m80) into g[dst]; with COMMIT: flags and pop.
    StF = 10,
    /// Store ST(0) as an integer (`size` 2, 4, 8; sub 1: fisttp's
    /// truncation); with COMMIT: flags and pop.
    StI = 11,
    /// ST(i) = ST(0), pop (fst/fstp st(i)).
    StSt = 12,
    /// Arithmetic: sub = kind (0 add, 1 mul, 2 sub, 3 subr, 4 div, 5 divr).
    /// Source: ST(i) (flag MEM clear) or g[a] as a real (`size` 4, 8) or an
    /// integer (flag INT, `size` 2, 4); flag TOI: the destination is ST(i).
    Arith = 13,
    /// fxch st(i).
    Xch = 14,
    /// fchs.
    Chs = 15,
    /// fabs.
    Abs = 16,
    /// fsqrt.
    Sqrt = 17,
    /// frndint.
    Rndint = 18,
    /// fscale.
    Scale = 19,
    /// fxtract.
    Xtract = 20,
    /// fprem (sub 0) / fprem1 (sub 1).
    Prem = 21,
    /// fcom family into C3 C2 C0 (source as for Arith; flag UNORD: fucom;
    /// sub: the number of pops).
    Com = 22,
    /// fcomi family into ZF PF CF (flag UNORD: fucomi; sub: pops).
    Comi = 23,
    /// ftst.
    Tst = 24,
    /// fxam.
    Xam = 25,
    /// fcmovcc st(0), st(i): sub = condition (0 b, 1 e, 2 be, 3 u, +4
    /// negated); g[a] = RFLAGS.
    Cmov = 26,
    /// ffree st(i).
    Free = 27,
    /// fincstp.
    Incstp = 28,
    /// fdecstp.
    Decstp = 29,
    /// Transcendentals (sub: 0 fsin, 1 fcos, 2 fsincos, 3 fptan, 4 fpatan,
    /// 5 f2xm1, 6 fyl2x, 7 fyl2xp1).
    Trans = 30,
    /// FIP bits 63:32 = imm bits 63:32 (after the recording uop of an
    /// instruction whose RIP is outside ±2 GiB).
    FipHi = 31,
    /// The MMX transition, an MMX instruction's last uop: sub 0 TOP = 0
    /// and all tags valid ([`FpuState::mmx_enter`]), sub 1 `emms` (TOP = 0,
    /// all tags empty). Nothing else changes (FSW, FIP, FOP, FDP).
    Mmx = 32,
}

impl X87Op {
    pub(crate) const fn id(self) -> u8 {
        self as u8
    }
}

/// Operation flags (bits 15:11 of `imm`, here shifted down).
pub(crate) mod fl {
    /// The source is memory (g[a]).
    pub const MEM: u8 = 1;
    /// The memory source is an integer.
    pub const INT: u8 = 2;
    /// The destination is ST(i) (Arith), or pop after (StSt).
    pub const TOI: u8 = 4;
    /// Pop once after (Arith, StF, StI, StSt).
    pub const POP: u8 = 8;
    /// Commit (StF, StI); unordered compare (Com, Comi).
    pub const COMMIT: u8 = 16;
    /// Unordered compare (same bit as COMMIT).
    pub const UNORD: u8 = 16;
}

/// Bit 30: check FSW.ES first.
pub(crate) const WAIT: i64 = 1 << 30;
/// Bit 31: record FIP.
pub(crate) const FIP: i64 = 1 << 31;

/// The FOP field of an x87 uop's `imm`.
pub(crate) fn fop_bits(fop: u16) -> i64 {
    i64::from(fop & 0x7ff) << 19
}

/// Packs an x87 uop's `imm`.
pub(crate) fn imm(op: X87Op, i: u8, flags: u8, sub: u8) -> i64 {
    i64::from(op.id())
        | (i64::from(i & 7) << 8)
        | (i64::from(flags & 31) << 11)
        | (i64::from(sub & 7) << 16)
}

/// The RIP field of an x87 uop's `imm`.
pub(crate) fn rip_bits(rip: u64) -> i64 {
    ((rip as u32) as i64) << 32
}

/// The operation of a uop.
pub(crate) fn op_of(u: &Uop) -> u8 {
    u.imm as u8
}

/// Whether `u` is the MMX transition ([`X87Op::Mmx`]).
pub(crate) fn is_mmx_transition(u: &Uop) -> bool {
    super::Family::of(u) == Some(super::Family::X87) && op_of(u) == X87Op::Mmx.id()
}

/// Whether an x87 uop only computes into a temporary (writes no x87
/// state).
pub(crate) fn computes_only(u: &Uop) -> bool {
    let op = op_of(u);
    let flags = ((u.imm >> 11) & 31) as u8;
    op == X87Op::Stcw.id()
        || op == X87Op::Stsw.id()
        || (op == X87Op::Nop.id() && u.imm & FIP == 0)
        || ((op == X87Op::StF.id() || op == X87Op::StI.id()) && flags & fl::COMMIT == 0)
}

/// The timing class of an x87 uop.
pub(crate) fn class(u: &Uop) -> crate::ooo::uopinfo::Class {
    use crate::ooo::uopinfo::Class;
    use X87Op as O;
    let op = op_of(u);
    let sub = ((u.imm >> 16) & 7) as u8;
    match op {
        _ if op == O::Arith.id() => match sub {
            1 => Class::FpMul,
            4 | 5 => Class::FpDiv,
            _ => Class::FpAdd,
        },
        _ if op == O::Sqrt.id() || op == O::Prem.id() => Class::FpDiv,
        _ if op == O::Com.id()
            || op == O::Comi.id()
            || op == O::Tst.id()
            || op == O::Rndint.id()
            || op == O::Scale.id()
            || op == O::Xtract.id() =>
        {
            Class::FpAdd
        }
        _ if op == O::Trans.id() => Class::Complex,
        _ => Class::Vec,
    }
}

/// Constants by sub-operation and rounding mode (the host's values).
const CONSTS: [[u128; 4]; 5] = {
    const fn c(e: u128, s: u128) -> u128 {
        (e << 64) | s
    }
    [
        [
            c(0x4000, 0xd49a784bcd1b8afe),
            c(0x4000, 0xd49a784bcd1b8afe),
            c(0x4000, 0xd49a784bcd1b8aff),
            c(0x4000, 0xd49a784bcd1b8afe),
        ],
        [
            c(0x3fff, 0xb8aa3b295c17f0bc),
            c(0x3fff, 0xb8aa3b295c17f0bb),
            c(0x3fff, 0xb8aa3b295c17f0bc),
            c(0x3fff, 0xb8aa3b295c17f0bb),
        ],
        [
            c(0x4000, 0xc90fdaa22168c235),
            c(0x4000, 0xc90fdaa22168c234),
            c(0x4000, 0xc90fdaa22168c235),
            c(0x4000, 0xc90fdaa22168c234),
        ],
        [
            c(0x3ffd, 0x9a209a84fbcff799),
            c(0x3ffd, 0x9a209a84fbcff798),
            c(0x3ffd, 0x9a209a84fbcff799),
            c(0x3ffd, 0x9a209a84fbcff798),
        ],
        [
            c(0x3ffe, 0xb17217f7d1cf79ac),
            c(0x3ffe, 0xb17217f7d1cf79ab),
            c(0x3ffe, 0xb17217f7d1cf79ac),
            c(0x3ffe, 0xb17217f7d1cf79ab),
        ],
    ]
};

/// One instruction's work on the stack: values read, the environment,
/// the stack-fault state.
struct Fx<'a> {
    f: &'a mut FpuState,
    env: Env,
    /// Stack fault: Some(true) overflow, Some(false) underflow.
    sf: Option<bool>,
    /// Whether C1 is the round-up bit of this operation (else it is
    /// cleared, or set by the operation itself).
    c1: Option<bool>,
}

impl Fx<'_> {
    /// ST(i), or None (stack underflow noted) when empty.
    fn get(&mut self, i: usize) -> Option<u128> {
        let p = self.f.phys(i);
        if self.f.tag(p) == sw::TAG_EMPTY {
            self.underflow();
            None
        } else {
            Some(self.f.st[p])
        }
    }

    fn underflow(&mut self) {
        self.env.exc |= exc::IE;
        self.sf = Some(false);
    }

    fn set(&mut self, i: usize, v: u128) {
        let p = self.f.phys(i);
        let v = v & ((1u128 << 80) - 1);
        self.f.st[p] = v;
        self.f.set_tag(p, FpuState::tag_of(v));
    }

    fn pop(&mut self) {
        let p = self.f.phys(0);
        self.f.set_tag(p, sw::TAG_EMPTY);
        self.f.set_top(self.f.top() + 1);
    }

    /// Whether the result may be written: no unmasked IE, DE or ZE.
    fn may_write(&self) -> bool {
        let unmasked = self.env.exc & !self.env.fcw & (exc::IE | exc::DE | exc::ZE);
        unmasked == 0
    }

    /// Whether an unmasked IE (for stack faults).
    fn ie_masked(&self) -> bool {
        self.env.fcw & exc::IE != 0
    }

    /// Pushes `v` (overflow when ST(7) is full: the indefinite if masked).
    fn push(&mut self, v: u128) {
        let p = self.f.phys(7);
        if self.f.tag(p) != sw::TAG_EMPTY {
            self.env.exc |= exc::IE;
            // A source that underflowed first (fld st(i) of an empty
            // register) reports the underflow: C1 stays 0, as on the host.
            self.sf.get_or_insert(true);
            if !self.ie_masked() {
                return;
            }
            self.f.set_top(self.f.top() + 7);
            self.set(0, f80::INDEFINITE);
            return;
        }
        // A load still pushes with an unmasked #D (as the host).
        if self.env.exc & !self.env.fcw & (exc::IE | exc::ZE) != 0 {
            return;
        }
        self.f.set_top(self.f.top() + 7);
        self.set(0, v);
    }

    /// A memory source operand (real or integer per `flags`); its #D is
    /// not reported when ST(0) is a NaN or empty (the host checks NaNs and
    /// stack underflow first).
    fn mem_src(&mut self, u: &Uop, flags: u8, a: u64, b: u64) -> u128 {
        if flags & fl::INT != 0 {
            return Env::from_int(int_of(a, u.size));
        }
        let before = self.env.exc;
        let v = match u.size {
            4 => self.env.widen_operand(a & 0xffff_ffff, f80::F32),
            8 => self.env.widen_operand(a, f80::F64),
            _ => mem_real(&mut self.env, u, a, b),
        };
        let p = self.f.phys(0);
        let st0_nan_or_empty = self.f.tag(p) == sw::TAG_EMPTY
            || matches!(
                f80::kind(self.f.st[p]),
                Kind::QNaN | Kind::SNaN | Kind::Unsupported
            );
        if st0_nan_or_empty && before & exc::DE == 0 {
            self.env.exc &= !exc::DE;
        }
        v
    }

    /// Writes the FSW flags: exceptions (sticky), SF, C1, ES and B.
    fn finish(&mut self) {
        let mut fsw = self.f.fsw | (self.env.exc & sw::FSW_EXC);
        match self.sf {
            Some(over) => {
                fsw |= sw::FSW_SF;
                fsw = (fsw & !sw::FSW_C1) | if over { sw::FSW_C1 } else { 0 };
            }
            None => {
                if let Some(c1) = self.c1 {
                    let c1 = c1 && self.env.c1;
                    fsw = (fsw & !sw::FSW_C1) | if c1 { sw::FSW_C1 } else { 0 };
                }
            }
        }
        if fsw & !self.env.fcw & sw::FSW_EXC != 0 {
            fsw |= sw::FSW_ES | sw::FSW_B;
        }
        self.f.fsw = fsw;
    }
}

/// FCW as loaded: the reserved bits 15:13 and 7 read 0, bit 6 reads 1
/// (as on the host).
pub(crate) fn fcw_value(v: u16) -> u16 {
    (v & 0x1f3f) | 0x40
}

/// FSW.ES and B recomputed from the exception flags and FCW's masks (as
/// the host does when FSW is loaded).
pub(crate) fn fsw_value(fsw: u16, fcw: u16) -> u16 {
    if fsw & !fcw & sw::FSW_EXC != 0 {
        fsw | sw::FSW_ES | sw::FSW_B
    } else {
        fsw & !(sw::FSW_ES | sw::FSW_B)
    }
}

fn int_of(v: u64, size: u8) -> i64 {
    match size {
        2 => i64::from(v as i16),
        4 => i64::from(v as i32),
        _ => v as i64,
    }
}

fn mem_real(env: &mut Env, u: &Uop, a: u64, b: u64) -> u128 {
    match u.size {
        4 => env.widen(a & 0xffff_ffff, f80::F32),
        8 => env.widen(a, f80::F64),
        _ => u128::from(a) | (u128::from(b & 0xffff) << 64),
    }
}

/// Sets C3 C2 C0 from a comparison.
fn set_cc(f: &mut FpuState, c3: bool, c2: bool, c0: bool) {
    let mut fsw = f.fsw & !(sw::FSW_C0 | sw::FSW_C2 | sw::FSW_C3);
    if c3 {
        fsw |= sw::FSW_C3;
    }
    if c2 {
        fsw |= sw::FSW_C2;
    }
    if c0 {
        fsw |= sw::FSW_C0;
    }
    f.fsw = fsw;
}

/// Runs one x87 uop. Long by nature: one arm per operation (the
/// family's dispatch table), each short.
pub(super) fn exec(x: &mut VecCtx<'_>, u: &Uop) -> Result<(), Exc> {
    use X87Op as O;
    let op = op_of(u);
    let i = ((u.imm >> 8) & 7) as usize;
    let flags = ((u.imm >> 11) & 31) as u8;
    let sub = ((u.imm >> 16) & 7) as u8;
    if u.imm & WAIT != 0 && x.fpu.fsw & sw::FSW_ES != 0 {
        return Err(Exc(vector::MF));
    }
    let (ga, gb) = (x.g(u.a), x.g(u.b));
    let fcw = x.fpu.fcw;
    if u.imm & FIP != 0 {
        x.fpu.fip = (u.imm >> 32) as u64;
    }
    let mut s = Fx {
        f: &mut *x.fpu,
        env: Env::new(fcw),
        sf: None,
        c1: Some(false),
    };
    let mut rflags: Option<u64> = None;
    match op {
        _ if op == O::Nop.id() => s.c1 = None,
        _ if op == O::Init.id() => {
            s.f.fninit();
            return Ok(());
        }
        _ if op == O::Mmx.id() => {
            if sub == 1 {
                s.f.emms();
            } else {
                s.f.mmx_enter();
            }
            return Ok(());
        }
        _ if op == O::Clex.id() => {
            s.f.fsw &= !(sw::FSW_EXC | sw::FSW_SF | sw::FSW_ES | sw::FSW_B);
            return Ok(());
        }
        _ if op == O::Ldcw.id() => {
            s.f.fcw = fcw_value(ga as u16);
            s.env.fcw = s.f.fcw;
            let fsw = s.f.fsw;
            s.f.fsw = if fsw & !s.f.fcw & sw::FSW_EXC != 0 {
                fsw | sw::FSW_ES | sw::FSW_B
            } else {
                fsw & !(sw::FSW_ES | sw::FSW_B)
            };
            return Ok(());
        }
        _ if op == O::Stcw.id() => {
            let v = u64::from(s.f.fcw);
            x.set_g(u.dst, u.size, v);
            return Ok(());
        }
        _ if op == O::Stsw.id() => {
            let v = u64::from(s.f.fsw);
            x.set_g(u.dst, u.size, v);
            return Ok(());
        }
        _ if op == O::LdF.id() => {
            // A full stack faults before the conversion (no #D, #IA of it).
            let full = s.f.tag(s.f.phys(7)) != sw::TAG_EMPTY;
            let v = if full {
                f80::INDEFINITE
            } else {
                mem_real(&mut s.env, u, ga, gb)
            };
            s.push(v);
        }
        _ if op == O::LdI.id() => {
            let v = Env::from_int(int_of(ga, u.size));
            s.push(v);
        }
        _ if op == O::LdSt.id() => {
            let v = s.get(i).unwrap_or(f80::INDEFINITE);
            if s.sf.is_some() && !s.ie_masked() {
            } else {
                s.push(v);
            }
        }
        _ if op == O::LdConst.id() => {
            let rc = usize::from((fcw >> 10) & 3);
            let v = match sub {
                0 => f80::ONE,
                1..=5 => CONSTS[usize::from(sub - 1)][rc],
                _ => f80::ZERO,
            };
            s.push(v);
        }
        _ if op == O::StF.id() || op == O::StI.id() => {
            let v = s.get(0);
            let bits: u64 = if op == O::StF.id() {
                match (v, u.size) {
                    (Some(v), 4) => s.env.narrow(v, f80::F32),
                    (Some(v), 8) => s.env.narrow(v, f80::F64),
                    (Some(v), _) => {
                        if sub == 1 {
                            (v >> 64) as u64 & 0xffff
                        } else {
                            v as u64
                        }
                    }
                    (None, 4) => 0xffc0_0000,
                    (None, 8) => 0xfff8_0000_0000_0000,
                    (None, _) => {
                        if sub == 1 {
                            (f80::INDEFINITE >> 64) as u64
                        } else {
                            f80::INDEFINITE as u64
                        }
                    }
                }
            } else {
                let n = u32::from(u.size) * 8;
                match v {
                    Some(v) => s.env.round_int(v, n, sub == 1),
                    None => 1u64 << (n - 1),
                }
            };
            // An unmasked #IA, #O or #U stores nothing (the old memory
            // contents, in a and b, are written back) and does not pop.
            let blocked = s.env.exc & !fcw & (exc::IE | exc::OE | exc::UE) != 0;
            if flags & fl::COMMIT == 0 {
                // For StF `sub` 1 is an m80's top two bytes (old in b); for
                // StI it means fisttp (the old value is in a).
                let v = match (blocked, sub) {
                    (false, _) => bits,
                    (true, 1) if op == O::StF.id() => gb,
                    (true, _) => ga,
                };
                x.set_g(u.dst, 8, v);
                return Ok(());
            }
            s.c1 = Some(true);
            if !blocked && flags & fl::POP != 0 {
                s.pop();
            }
        }
        _ if op == O::StSt.id() => {
            if let Some(v) = s.get(0) {
                s.set(i, v);
                if flags & fl::POP != 0 {
                    s.pop();
                }
            } else if s.ie_masked() {
                s.set(i, f80::INDEFINITE);
                if flags & fl::POP != 0 {
                    s.pop();
                }
            }
        }
        _ if op == O::Arith.id() => {
            let (a, b) = if flags & fl::MEM != 0 {
                let m = s.mem_src(u, flags, ga, gb);
                (s.get(0), Some(m))
            } else if flags & fl::TOI != 0 {
                (s.get(i), s.get(0))
            } else {
                (s.get(0), s.get(i))
            };
            let r = match (a, b) {
                (Some(a), Some(b)) => match sub {
                    0 => s.env.add(a, b, false),
                    1 => s.env.mul(a, b),
                    2 => s.env.add(a, b, true),
                    3 => s.env.add(b, a, true),
                    4 => s.env.div(a, b),
                    _ => s.env.div(b, a),
                },
                _ => f80::INDEFINITE,
            };
            s.c1 = Some(true);
            if s.may_write() {
                let d = if flags & fl::TOI != 0 { i } else { 0 };
                s.set(d, r);
                if flags & fl::POP != 0 {
                    s.pop();
                }
            }
        }
        _ if op == O::Xch.id() => {
            let (a, b) = (s.get(0), s.get(i));
            if s.may_write() {
                let (a, b) = (a.unwrap_or(f80::INDEFINITE), b.unwrap_or(f80::INDEFINITE));
                s.set(0, b);
                s.set(i, a);
            }
        }
        _ if op == O::Chs.id() || op == O::Abs.id() => {
            if let Some(v) = s.get(0) {
                let r = if op == O::Chs.id() {
                    v ^ (1 << 79)
                } else {
                    v & !(1 << 79)
                };
                s.set(0, r);
            } else if s.ie_masked() {
                s.set(0, f80::INDEFINITE);
            }
        }
        _ if op == O::Sqrt.id() || op == O::Rndint.id() => {
            let v = s.get(0);
            let r = match v {
                Some(v) if op == O::Sqrt.id() => s.env.sqrt(v),
                Some(v) => s.env.rndint(v),
                None => f80::INDEFINITE,
            };
            s.c1 = Some(true);
            if s.may_write() {
                s.set(0, r);
            }
        }
        _ if op == O::Scale.id() => {
            let (a, b) = (s.get(0), s.get(1));
            let r = match (a, b) {
                (Some(a), Some(b)) => s.env.scale(a, b),
                _ => f80::INDEFINITE,
            };
            s.c1 = Some(true);
            if s.may_write() {
                s.set(0, r);
            }
        }
        _ if op == O::Xtract.id() => {
            let v = s.get(0);
            let full = s.f.tag(s.f.phys(7)) != sw::TAG_EMPTY;
            let (e, m) = match v {
                Some(v) if !full => s.env.xtract(v),
                _ => (f80::INDEFINITE, f80::INDEFINITE),
            };
            if s.sf.is_none() && full {
                s.env.exc |= exc::IE;
                s.sf = Some(true);
                if s.ie_masked() {
                    s.set(0, f80::INDEFINITE);
                    s.f.set_top(s.f.top() + 7);
                    s.set(0, f80::INDEFINITE);
                }
            } else if s.may_write() {
                s.set(0, e);
                s.f.set_top(s.f.top() + 7);
                s.set(0, m);
            }
        }
        _ if op == O::Prem.id() => {
            let (a, b) = (s.get(0), s.get(1));
            match (a, b) {
                (Some(a), Some(b)) => {
                    let (r, q, done) = s.env.prem(a, b, sub == 1);
                    if !s.may_write() || q.is_none() {
                        // NaN or invalid operands, or an unmasked #IA or
                        // #D (nothing written): C2 and C1 cleared, C0 and
                        // C3 kept (as on the host).
                        if s.may_write() {
                            s.set(0, r);
                        }
                        s.f.fsw &= !sw::FSW_C2;
                    } else if let Some(q) = q {
                        s.set(0, r);
                        let fsw = s.f.fsw;
                        // A partial remainder leaves C0 C1 C3 clear.
                        let q = if done { q } else { 0 };
                        set_cc(s.f, q & 2 != 0, !done, q & 4 != 0);
                        let _ = fsw;
                        s.c1 = None;
                        s.f.fsw = (s.f.fsw & !sw::FSW_C1) | if q & 1 != 0 { sw::FSW_C1 } else { 0 };
                    }
                }
                _ => {
                    // Stack underflow: C2 cleared (C0 and C3 kept), as on
                    // the host.
                    s.f.fsw &= !sw::FSW_C2;
                    if s.ie_masked() {
                        s.set(0, f80::INDEFINITE);
                    }
                }
            }
        }
        _ if op == O::Com.id() || op == O::Comi.id() || op == O::Tst.id() => {
            let (a, b) = if op == O::Tst.id() {
                (s.get(0), Some(f80::ZERO))
            } else if flags & fl::MEM != 0 {
                let m = s.mem_src(u, flags, ga, gb);
                (s.get(0), Some(m))
            } else {
                (s.get(0), s.get(i))
            };
            let ord = match (a, b) {
                (Some(a), Some(b)) => s.env.compare(a, b, flags & fl::UNORD == 0),
                _ => None,
            };
            // The condition codes are set even with an unmasked #IA or #D
            // or a stack underflow (as on the host); fcomi keeps C1.
            if op == O::Comi.id() {
                s.c1 = None;
            }
            {
                use std::cmp::Ordering as Or;
                let (c3, c2, c0) = match ord {
                    Some(Or::Less) => (false, false, true),
                    Some(Or::Equal) => (true, false, false),
                    Some(Or::Greater) => (false, false, false),
                    None => (true, true, true),
                };
                if op == O::Comi.id() {
                    let v = (u64::from(c3) << 6) | (u64::from(c2) << 2) | u64::from(c0);
                    rflags = Some(v);
                } else {
                    set_cc(s.f, c3, c2, c0);
                }
                // An unmasked #IA or #D sets the condition codes but does
                // not pop.
                if s.env.exc & !fcw & (exc::IE | exc::DE) == 0 {
                    for _ in 0..sub {
                        s.pop();
                    }
                }
            }
        }
        _ if op == O::Xam.id() => {
            let p = s.f.phys(0);
            let v = s.f.st[p];
            let (c3, c2, c0) = if s.f.tag(p) == sw::TAG_EMPTY {
                (true, false, true)
            } else {
                match f80::kind(v) {
                    Kind::Unsupported => (false, false, false),
                    Kind::QNaN | Kind::SNaN => (false, false, true),
                    Kind::Normal => (false, true, false),
                    Kind::Inf => (false, true, true),
                    Kind::Zero => (true, false, false),
                    Kind::Denormal => (true, true, false),
                }
            };
            set_cc(s.f, c3, c2, c0);
            s.c1 = None;
            s.f.fsw = (s.f.fsw & !sw::FSW_C1) | if f80::neg(v) { sw::FSW_C1 } else { 0 };
        }
        _ if op == O::Cmov.id() => {
            let (cf, zf, pf) = (ga & 1 != 0, ga & 0x40 != 0, ga & 4 != 0);
            let c = match sub & 3 {
                0 => cf,
                1 => zf,
                2 => cf || zf,
                _ => pf,
            };
            let c = c != (sub & 4 != 0);
            let v = s.get(i);
            let _ = s.get(0);
            // C1 is kept unless the stack underflows.
            s.c1 = None;
            if s.sf.is_some() {
                if s.ie_masked() {
                    let v = if c {
                        f80::INDEFINITE
                    } else {
                        s.f.st[s.f.phys(0)]
                    };
                    let _ = v;
                    s.set(0, f80::INDEFINITE);
                }
            } else if c {
                if let Some(v) = v {
                    s.set(0, v);
                }
            }
        }
        _ if op == O::Free.id() => {
            let p = s.f.phys(i);
            s.f.set_tag(p, sw::TAG_EMPTY);
        }
        _ if op == O::Incstp.id() => s.f.set_top(s.f.top() + 1),
        _ if op == O::Decstp.id() => s.f.set_top(s.f.top() + 7),
        _ if op == O::Trans.id() => trans(&mut s, sub),
        _ if op == O::FipHi.id() => {
            s.f.fip = (s.f.fip & 0xffff_ffff) | ((u.imm as u64) & !0xffff_ffff);
            return Ok(());
        }
        _ => return Err(Exc(vector::UD)),
    }
    if s.env.exc & !fcw & exc::DE != 0 {
        // An unmasked #D stops the operation before it computes: #D alone.
        s.env.exc &= exc::DE | (s.env.exc & exc::IE);
        s.env.c1 = false;
    }
    s.finish();
    let unmasked = s.env.exc & !fcw & sw::FSW_EXC != 0;
    if unmasked && u.imm & FIP != 0 {
        // The host records FOP and FDP only for an unmasked exception.
        x.fpu.fop = ((u.imm >> 19) & 0x7ff) as u16;
        if u.c != crate::uop::ZERO {
            x.fpu.fdp = x.g(u.c);
        }
    }
    if let Some(v) = rflags {
        x.set_flags(u.fl, v);
    }
    Ok(())
}

/// The transcendental instructions, through the host's FPU where there is
/// one ([`hostfpu`]).
fn trans(s: &mut Fx<'_>, sub: u8) {
    let two = matches!(sub, 4 | 6 | 7);
    let a = s.get(0);
    let b = if two { s.get(1) } else { Some(0) };
    let pushes = matches!(sub, 2 | 3);
    if s.sf.is_none() && pushes && s.f.tag(s.f.phys(7)) != sw::TAG_EMPTY {
        s.env.exc |= exc::IE;
        s.sf = Some(true);
    }
    if s.sf.is_some() {
        if matches!(sub, 0..=3) {
            // fsin, fcos, fsincos, fptan clear C2 (in range) even then.
            s.f.fsw &= !sw::FSW_C2;
        }
        if s.ie_masked() {
            if pushes {
                s.set(0, f80::INDEFINITE);
                s.f.set_top(s.f.top() + 7);
                s.set(0, f80::INDEFINITE);
            } else if two {
                s.set(1, f80::INDEFINITE);
                s.pop();
            } else {
                s.set(0, f80::INDEFINITE);
            }
        }
        return;
    }
    let (Some(a), Some(b)) = (a, b) else {
        return;
    };
    let r = hostfpu::trans(sub, s.env.fcw, a, b);
    s.env.exc |= r.fsw & sw::FSW_EXC;
    s.c1 = None;
    // C1 from the host; C2 only from the range-checking ones (the others
    // leave it alone).
    let cc = if matches!(sub, 0..=3) {
        sw::FSW_C1 | sw::FSW_C2
    } else {
        sw::FSW_C1
    };
    if r.fsw & !s.env.fcw & exc::DE != 0 {
        // An unmasked #D: nothing computed; C1 cleared, and C2 too by the
        // range-checking ones (as with a stack fault: "in range"), the
        // others keep it (the host, an AMD family 1Ah, with C1 and C2 set
        // before).
        s.f.fsw &= !cc;
    } else {
        s.f.fsw = (s.f.fsw & !cc) | (r.fsw & cc);
    }
    if !s.may_write() {
        return;
    }
    if r.fsw & sw::FSW_C2 != 0 && matches!(sub, 0..=3) {
        // Out of range: ST(0) unchanged.
        return;
    }
    match sub {
        2 | 3 => {
            s.set(0, r.st1);
            s.f.set_top(s.f.top() + 7);
            s.set(0, r.st0);
        }
        4 | 6 | 7 => {
            s.set(1, r.st0);
            s.pop();
        }
        _ => s.set(0, r.st0),
    }
}
