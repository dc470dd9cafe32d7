//! [`super::Family::Fp`]: SSE–SSE4.1 floating point, scalar and packed,
//! single and double. The arithmetic is [`super::softfp`].
//!
//! A uop's `size` is the element size (4 single, 8 double; for the
//! conversions the floating-point side's), its extra byte the [`x`] bits.
//! Binary operations compute lane by lane from `a` (the destination's old
//! value, kept in the lanes a scalar form does not write) and `b`.
//!
//! Exceptions follow SDM vol. 1 §11.5.2: the flags of every lane are
//! gathered; if a pre-computation exception (IE, DE, ZE) is unmasked only
//! those flags are set, else all of them; either way, an unmasked one
//! raises #XM and nothing else is written.

use super::softfp::{Fmt, Round, F32, F64, PRE};
use super::{extra_of, imm8_of, op_of, vector, Exc, VecCtx};
use crate::ooo::uopinfo::Class;
use crate::uop::Uop;

/// Bits of a uop's extra byte.
pub(crate) mod x {
    /// All lanes (else the low one, merged into `a`).
    pub const PACKED: u8 = 1;
    /// The integer side is 64-bit (cvtsi2ss/cvtss2si with REX.W).
    pub const INT64: u8 = 2;
    /// Truncate (cvtt*).
    pub const TRUNC: u8 = 4;
    /// comis: a QNaN is invalid too.
    pub const SIGNAL: u8 = 8;
}

/// The operations of the FP family.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(u16)]
pub(crate) enum FpOp {
    Add = 0,
    Sub = 1,
    Mul = 2,
    Div = 3,
    Min = 4,
    Max = 5,
    /// sqrt(b), merged into a for the scalar form.
    Sqrt = 6,
    /// cmpss/cmpps, predicate imm8 & 7.
    Cmp = 7,
    /// comis/ucomis: RFLAGS from a[0] vs b[0].
    Comi = 8,
    And = 9,
    /// !a & b.
    Andn = 10,
    Or = 11,
    Xor = 12,
    /// shufps/shufpd by imm8.
    Shuf = 13,
    UnpackLo = 14,
    UnpackHi = 15,
    /// g[dst] = the sign bits of a's lanes.
    Movmsk = 16,
    /// a[0] = (float) g[b] (32- or 64-bit signed).
    IntToFp = 17,
    /// g[dst] = (int) b[0].
    FpToInt = 18,
    /// Scalar cvtss2sd (size 4) / cvtsd2ss (size 8), merged into a.
    FpToFp = 19,
    /// cvtps2pd (size 4) / cvtpd2ps (size 8, upper half zeroed).
    FpToFpPacked = 20,
    /// cvtdq2ps (size 4) / cvtdq2pd (size 8, the low two integers).
    IntToFpPacked = 21,
    /// cvt(t)ps2dq (size 4) / cvt(t)pd2dq (size 8, upper half zeroed);
    /// imm8 bit 2 truncates.
    FpToIntPacked = 22,
    AddSub = 23,
    HAdd = 24,
    HSub = 25,
    /// movddup.
    DupLo64 = 26,
    /// movshdup.
    DupOdd = 27,
    /// movsldup.
    DupEven = 28,
    /// roundss/roundps, imm8 as the instruction's.
    Round = 29,
    /// blendps/pd: lane i from b when imm8 bit i.
    Blend = 30,
    /// blendvps/pd: lane i from b when lane i of c has its sign set.
    Blendv = 31,
    /// dpps/dppd.
    Dp = 32,
    /// insertps (imm8 as the instruction's).
    Insertps = 33,
    /// g[dst] = a's 32-bit lane imm8 & 3.
    Extractps = 34,
    /// rcpss/rcpps: the approximate 1/b ([`super::approx`]), merged into
    /// a for the scalar form.
    Rcp = 35,
    /// rsqrtss/rsqrtps: the approximate 1/√b ([`super::approx`]).
    Rsqrt = 36,
}

const OPS: [FpOp; 37] = {
    use FpOp::*;
    [
        Add,
        Sub,
        Mul,
        Div,
        Min,
        Max,
        Sqrt,
        Cmp,
        Comi,
        And,
        Andn,
        Or,
        Xor,
        Shuf,
        UnpackLo,
        UnpackHi,
        Movmsk,
        IntToFp,
        FpToInt,
        FpToFp,
        FpToFpPacked,
        IntToFpPacked,
        FpToIntPacked,
        AddSub,
        HAdd,
        HSub,
        DupLo64,
        DupOdd,
        DupEven,
        Round,
        Blend,
        Blendv,
        Dp,
        Insertps,
        Extractps,
        Rcp,
        Rsqrt,
    ]
};

impl FpOp {
    pub(crate) const fn id(self) -> u16 {
        self as u16
    }

    fn of(u: &Uop) -> Option<FpOp> {
        OPS.get(usize::from(op_of(u))).copied()
    }

    fn class(self) -> Class {
        use FpOp::*;
        match self {
            Add | Sub | Min | Max | Cmp | Comi | AddSub | HAdd | HSub => Class::FpAdd,
            // The approximations: short and pipelined, on the multipliers
            // (as on Zen).
            Mul | Dp | Rcp | Rsqrt => Class::FpMul,
            Div | Sqrt => Class::FpDiv,
            And | Andn | Or | Xor => Class::Vec,
            Shuf | UnpackLo | UnpackHi | Movmsk | DupLo64 | DupOdd | DupEven | Blend | Blendv
            | Insertps | Extractps => Class::Shuffle,
            IntToFp | FpToInt | FpToFp | FpToFpPacked | IntToFpPacked | FpToIntPacked | Round => {
                Class::Convert
            }
        }
    }
}

/// The timing class of an FP-family uop.
pub(super) fn class(u: &Uop) -> Class {
    FpOp::of(u).map_or(Class::Alu, FpOp::class)
}

/// Element `i` of `v` (`size`-byte lanes).
fn lane(v: u128, i: usize, size: u8) -> u64 {
    let w = 8 * u32::from(size);
    let m = if w >= 64 { u64::MAX } else { (1u64 << w) - 1 };
    ((v >> (w * i as u32)) as u64) & m
}

/// `v` with element `i` replaced by `e`.
fn set_lane(v: u128, i: usize, size: u8, e: u64) -> u128 {
    let w = 8 * u32::from(size);
    let m: u128 = if w >= 64 {
        u128::from(u64::MAX)
    } else {
        (1u128 << w) - 1
    };
    let sh = w * i as u32;
    (v & !(m << sh)) | ((u128::from(e) & m) << sh)
}

fn lanes(size: u8) -> usize {
    if size == 8 {
        2
    } else {
        4
    }
}

/// Commits the gathered flags `fl` to MXCSR; #XM if one is unmasked (then
/// nothing else may be written).
fn finish(x: &mut VecCtx<'_>, fl: u32) -> Result<(), Exc> {
    let unmasked = !(x.fpu.mxcsr >> 7) & 0x3f;
    let pre = fl & PRE;
    if pre & unmasked != 0 {
        x.fpu.mxcsr |= pre;
        return Err(Exc(vector::XM));
    }
    x.fpu.mxcsr |= fl;
    if fl & unmasked != 0 {
        return Err(Exc(vector::XM));
    }
    Ok(())
}

/// A lane operation on floating-point elements: (a, b, mxcsr, flags).
type LaneFn = fn(Fmt, u64, u64, u8, u32, &mut u32) -> u64;

fn lane_fn(op: FpOp) -> Option<LaneFn> {
    Some(match op {
        FpOp::Add => |f, a, b, _, m, fl| f.add(a, b, false, m, fl),
        FpOp::Sub => |f, a, b, _, m, fl| f.add(a, b, true, m, fl),
        FpOp::Mul => |f, a, b, _, m, fl| f.mul(a, b, m, fl),
        FpOp::Div => |f, a, b, _, m, fl| f.div(a, b, m, fl),
        FpOp::Min => |f, a, b, _, m, fl| f.minmax(a, b, false, m, fl),
        FpOp::Max => |f, a, b, _, m, fl| f.minmax(a, b, true, m, fl),
        FpOp::Sqrt => |f, _, b, _, m, fl| f.sqrt(b, m, fl),
        // Neither reads MXCSR nor raises a flag.
        FpOp::Rcp => |_, _, b, _, _, _| u64::from(super::approx::rcp32(b as u32)),
        FpOp::Rsqrt => |_, _, b, _, _, _| u64::from(super::approx::rsqrt32(b as u32)),
        FpOp::Cmp => |f, a, b, imm, m, fl| {
            if f.compare(a, b, imm, m, fl) {
                u64::MAX
            } else {
                0
            }
        },
        FpOp::Round => |f, _, b, imm, m, fl| {
            let rc = if imm & 4 != 0 {
                Round::of(m)
            } else {
                Round::from_bits(u32::from(imm))
            };
            f.round_int(b, rc, imm & 8 != 0, m, fl)
        },
        _ => return None,
    })
}

pub(super) fn exec(x: &mut VecCtx<'_>, u: &Uop) -> Result<(), Exc> {
    let op = FpOp::of(u).ok_or(Exc(vector::UD))?;
    let size = if u.size == 8 { 8 } else { 4 };
    let f = Fmt::of(size);
    let m = x.fpu.mxcsr;
    let imm = imm8_of(u);
    let ext = extra_of(u);
    let (a, b) = (x.v(u.a), x.v(u.b));
    let mut fl = 0u32;
    if let Some(g) = lane_fn(op) {
        let n = if ext & x::PACKED != 0 { lanes(size) } else { 1 };
        let mut r = a;
        for i in 0..n {
            let e = g(f, lane(a, i, size), lane(b, i, size), imm, m, &mut fl);
            r = set_lane(r, i, size, e);
        }
        finish(x, fl)?;
        x.set_v(u.dst, r);
        return Ok(());
    }
    match op {
        FpOp::Comi => {
            let z = f.comi(
                lane(a, 0, size),
                lane(b, 0, size),
                ext & x::SIGNAL != 0,
                m,
                &mut fl,
            );
            finish(x, fl)?;
            x.set_flags(u.fl, z);
        }
        FpOp::Movmsk => {
            let n = lanes(size);
            let w = 8 * u32::from(size);
            let mask = (0..n).fold(0u64, |acc, i| acc | (lane(a, i, size) >> (w - 1)) << i);
            x.set_g(u.dst, 8, mask);
        }
        FpOp::IntToFp => {
            let v = x.g(u.b);
            let v = if ext & x::INT64 != 0 {
                v as i64
            } else {
                i64::from(v as u32 as i32)
            };
            let e = f.of_int(v, m, &mut fl);
            finish(x, fl)?;
            x.set_v(u.dst, set_lane(a, 0, size, e));
        }
        FpOp::FpToInt => {
            let bits = if ext & x::INT64 != 0 { 64 } else { 32 };
            let rc = if ext & x::TRUNC != 0 {
                Round::Zero
            } else {
                Round::of(m)
            };
            let v = f.to_int(lane(b, 0, size), bits, rc, m, &mut fl);
            finish(x, fl)?;
            x.set_g(u.dst, if bits == 64 { 8 } else { 4 }, v);
        }
        FpOp::Dp => return exec_dot(x, u, f, size),
        FpOp::FpToFp => {
            let (to, tsize) = if size == 4 { (F64, 8) } else { (F32, 4) };
            let e = f.convert(to, lane(b, 0, size), m, &mut fl);
            finish(x, fl)?;
            x.set_v(u.dst, set_lane(a, 0, tsize, e));
        }
        _ => {
            let r = packed(op, f, size, a, b, x.v(u.c), imm, m, &mut fl);
            finish(x, fl)?;
            match op {
                FpOp::Extractps => x.set_g(u.dst, 4, r as u64),
                _ => x.set_v(u.dst, r),
            }
        }
    }
    Ok(())
}

/// The whole-register floating-point operations.
#[allow(clippy::too_many_arguments)]
fn packed(
    op: FpOp,
    f: Fmt,
    size: u8,
    a: u128,
    b: u128,
    c: u128,
    imm: u8,
    m: u32,
    fl: &mut u32,
) -> u128 {
    let n = lanes(size);
    let mut r = 0u128;
    match op {
        FpOp::FpToFpPacked if size == 4 => {
            for i in 0..2 {
                r = set_lane(r, i, 8, f.convert(F64, lane(b, i, 4), m, fl));
            }
        }
        FpOp::FpToFpPacked => {
            for i in 0..2 {
                r = set_lane(r, i, 4, f.convert(F32, lane(b, i, 8), m, fl));
            }
        }
        FpOp::IntToFpPacked => {
            for i in 0..n {
                let v = i64::from(lane(b, i, 4) as u32 as i32);
                r = set_lane(r, i, size, f.of_int(v, m, fl));
            }
        }
        FpOp::FpToIntPacked => {
            let rc = if imm & 4 != 0 {
                Round::Zero
            } else {
                Round::of(m)
            };
            for i in 0..n {
                r = set_lane(r, i, 4, f.to_int(lane(b, i, size), 32, rc, m, fl));
            }
        }
        FpOp::AddSub => {
            for i in 0..n {
                let e = f.add(lane(a, i, size), lane(b, i, size), i % 2 == 0, m, fl);
                r = set_lane(r, i, size, e);
            }
        }
        FpOp::HAdd | FpOp::HSub => {
            let sub = op == FpOp::HSub;
            for i in 0..n {
                let src = if i < n / 2 { a } else { b };
                let j = 2 * (i % (n / 2));
                let e = f.add(lane(src, j, size), lane(src, j + 1, size), sub, m, fl);
                r = set_lane(r, i, size, e);
            }
        }
        _ => r = shuffle(op, size, a, b, c, imm),
    }
    r
}

/// The bitwise and data-movement operations (no exceptions).
fn shuffle(op: FpOp, size: u8, a: u128, b: u128, c: u128, imm: u8) -> u128 {
    let n = lanes(size);
    let mut r = 0u128;
    match op {
        FpOp::And => r = a & b,
        FpOp::Andn => r = !a & b,
        FpOp::Or => r = a | b,
        FpOp::Xor => r = a ^ b,
        FpOp::Shuf if size == 8 => {
            r = set_lane(r, 0, 8, lane(a, usize::from(imm & 1), 8));
            r = set_lane(r, 1, 8, lane(b, usize::from((imm >> 1) & 1), 8));
        }
        FpOp::Shuf => {
            for i in 0..4 {
                let src = if i < 2 { a } else { b };
                let s = usize::from((imm >> (2 * i)) & 3);
                r = set_lane(r, i, 4, lane(src, s, 4));
            }
        }
        FpOp::UnpackLo | FpOp::UnpackHi => {
            let base = if op == FpOp::UnpackHi { n / 2 } else { 0 };
            for i in 0..n / 2 {
                r = set_lane(r, 2 * i, size, lane(a, base + i, size));
                r = set_lane(r, 2 * i + 1, size, lane(b, base + i, size));
            }
        }
        FpOp::DupLo64 => r = (b & u128::from(u64::MAX)) * ((1u128 << 64) + 1),
        FpOp::DupOdd | FpOp::DupEven => {
            let odd = usize::from(op == FpOp::DupOdd);
            for i in 0..4 {
                r = set_lane(r, i, 4, lane(b, (i & !1) + odd, 4));
            }
        }
        FpOp::Blend | FpOp::Blendv => {
            let w = 8 * u32::from(size);
            for i in 0..n {
                let pick = if op == FpOp::Blend {
                    imm >> i & 1 != 0
                } else {
                    lane(c, i, size) >> (w - 1) != 0
                };
                r = set_lane(r, i, size, lane(if pick { b } else { a }, i, size));
            }
        }
        FpOp::Insertps => {
            let e = lane(b, usize::from(imm >> 6), 4);
            r = set_lane(a, usize::from((imm >> 4) & 3), 4, e);
            for i in 0..4 {
                if imm >> i & 1 != 0 {
                    r = set_lane(r, i, 4, 0);
                }
            }
        }
        FpOp::Extractps => r = u128::from(lane(a, usize::from(imm & 3), 4)),
        _ => {}
    }
    r
}

/// dpps/dppd: the products selected by imm8[7:4] (others +0.0), summed,
/// into the lanes of imm8[3:0]; also the flags of the products and of the
/// sums. The order of the sums only shows in which NaN comes out; as the
/// host does it, lane i of dppd is p[i] + p[i^1], of dpps
/// (p[i^1] + p[i]) + (p[i^3] + p[i^2]) (its own pair first).
fn dot(f: Fmt, size: u8, a: u128, b: u128, imm: u8, m: u32) -> (u128, u32, u32) {
    let n = lanes(size);
    let (mut products, mut sums) = (0, 0);
    let mut p = [0u64; 4];
    for (i, pi) in p.iter_mut().enumerate().take(n) {
        if imm >> (4 + i) & 1 != 0 {
            *pi = f.mul(lane(a, i, size), lane(b, i, size), m, &mut products);
        }
    }
    let fl = &mut sums;
    let mut s = [0u64; 4];
    if n == 2 {
        s[0] = f.add(p[0], p[1], false, m, fl);
        s[1] = f.add(p[1], p[0], false, m, fl);
    } else {
        let mut t = [0u64; 4];
        for (i, ti) in t.iter_mut().enumerate() {
            *ti = f.add(p[i ^ 1], p[i], false, m, fl);
        }
        for (i, si) in s.iter_mut().enumerate() {
            *si = f.add(t[i], t[i ^ 2], false, m, fl);
        }
    }
    let mut r = 0u128;
    for (i, &si) in s.iter().enumerate().take(n) {
        if imm >> i & 1 != 0 {
            r = set_lane(r, i, size, si);
        }
    }
    (r, products, sums)
}

/// dpps/dppd: the multiplications and then the additions report as two
/// steps, each by the rules of [`finish`] (the products' flags stay set
/// when an addition raises #XM), as the host does. One host case differs:
/// inf - inf in the sums, where one infinity came from a masked overflow,
/// raised #XM with IE unmasked but left IE clear.
fn exec_dot(x: &mut VecCtx<'_>, u: &Uop, f: Fmt, size: u8) -> Result<(), Exc> {
    let m = x.fpu.mxcsr;
    let (r, products, sums) = dot(f, size, x.v(u.a), x.v(u.b), imm8_of(u), m);
    finish(x, products)?;
    finish(x, sums)?;
    x.set_v(u.dst, r);
    Ok(())
}
