//! [`super::Family::Int`]: SSE2–SSE4.2 integer operations on XMM
//! registers: logic, arithmetic (wrapping and saturating), compares,
//! shifts, multiplies, shuffles, unpacks, packs, inserts and extracts,
//! the SSSE3 and SSE4.1 additions and the SSE4.2 string compares.
//!
//! Operands: `a` and `b` are vector registers (`a` the destination's old
//! value for two-operand forms), `c` a third vector (pblendvb's XMM0, the
//! lengths of pcmpestr*), or GPRs as each op says; imm8 is the
//! instruction's; the extra byte 1 on a shift means the count is imm8.

use super::{extra_of, imm8_of, op_of, vector, Exc, VecCtx};
use crate::ooo::uopinfo::Class;
use crate::uop::{fl, Uop};

macro_rules! int_ops {
    ($($name:ident),* $(,)?) => {
        /// The operations of the integer family.
        #[derive(Clone, Copy, Debug, PartialEq, Eq)]
        #[repr(u16)]
        #[allow(missing_docs)]
        pub(crate) enum IntOp { $($name),* }
        const ALL: &[IntOp] = &[$(IntOp::$name),*];
    };
}

int_ops!(
    Pand, Pandn, Por, Pxor, Paddb, Paddw, Paddd, Paddq, Psubb, Psubw, Psubd, Psubq, Paddsb, Paddsw,
    Paddusb, Paddusw, Psubsb, Psubsw, Psubusb, Psubusw, Pcmpeqb, Pcmpeqw, Pcmpeqd, Pcmpeqq,
    Pcmpgtb, Pcmpgtw, Pcmpgtd, Pcmpgtq, Punpcklbw, Punpcklwd, Punpckldq, Punpcklqdq, Punpckhbw,
    Punpckhwd, Punpckhdq, Punpckhqdq, Packsswb, Packssdw, Packuswb, Packusdw, Psllw, Pslld, Psllq,
    Psrlw, Psrld, Psrlq, Psraw, Psrad, Pslldq, Psrldq, Pmullw, Pmulhw, Pmulhuw, Pmuludq, Pmaddwd,
    Pmuldq, Pmulld, Pmulhrsw, Pmaddubsw, Psadbw, Mpsadbw, Pavgb, Pavgw, Pminub, Pmaxub, Pminsw,
    Pmaxsw, Pminsb, Pminsd, Pminuw, Pminud, Pmaxsb, Pmaxsd, Pmaxuw, Pmaxud, Pshufd, Pshuflw,
    Pshufhw, Pshufb, Palignr, Phaddw, Phaddd, Phaddsw, Phsubw, Phsubd, Phsubsw, Pabsb, Pabsw,
    Pabsd, Psignb, Psignw, Psignd, Pmovsxbw, Pmovsxbd, Pmovsxbq, Pmovsxwd, Pmovsxwq, Pmovsxdq,
    Pmovzxbw, Pmovzxbd, Pmovzxbq, Pmovzxwd, Pmovzxwq, Pmovzxdq, Ptest, Pblendw, Pblendvb,
    Phminposuw, Pmovmskb, Pinsrb, Pinsrw, Pinsrd, Pinsrq, Pextrb, Pextrw, Pextrd, Pextrq,
    Pcmpistri, Pcmpistrm, Pcmpestri, Pcmpestrm,
);

impl IntOp {
    pub(crate) const fn id(self) -> u16 {
        self as u16
    }
}

fn b8(v: u128) -> [u8; 16] {
    v.to_le_bytes()
}
fn f8(x: [u8; 16]) -> u128 {
    u128::from_le_bytes(x)
}
fn w16(v: u128) -> [u16; 8] {
    std::array::from_fn(|i| (v >> (16 * i)) as u16)
}
fn f16(x: [u16; 8]) -> u128 {
    x.iter()
        .enumerate()
        .fold(0, |r, (i, &e)| r | (u128::from(e) << (16 * i)))
}
fn d32(v: u128) -> [u32; 4] {
    std::array::from_fn(|i| (v >> (32 * i)) as u32)
}
fn f32x(x: [u32; 4]) -> u128 {
    x.iter()
        .enumerate()
        .fold(0, |r, (i, &e)| r | (u128::from(e) << (32 * i)))
}
fn q64(v: u128) -> [u64; 2] {
    [v as u64, (v >> 64) as u64]
}
fn f64x(x: [u64; 2]) -> u128 {
    u128::from(x[0]) | (u128::from(x[1]) << 64)
}

fn m8(a: u128, b: u128, f: impl Fn(u8, u8) -> u8) -> u128 {
    let (a, b) = (b8(a), b8(b));
    f8(std::array::from_fn(|i| f(a[i], b[i])))
}
fn m16(a: u128, b: u128, f: impl Fn(u16, u16) -> u16) -> u128 {
    let (a, b) = (w16(a), w16(b));
    f16(std::array::from_fn(|i| f(a[i], b[i])))
}
fn m32(a: u128, b: u128, f: impl Fn(u32, u32) -> u32) -> u128 {
    let (a, b) = (d32(a), d32(b));
    f32x(std::array::from_fn(|i| f(a[i], b[i])))
}
fn m64(a: u128, b: u128, f: impl Fn(u64, u64) -> u64) -> u128 {
    let (a, b) = (q64(a), q64(b));
    f64x(std::array::from_fn(|i| f(a[i], b[i])))
}

fn mask<T: From<bool> + std::ops::Neg<Output = T>>(c: bool) -> T {
    -T::from(c)
}

fn sat8(v: i32) -> u8 {
    v.clamp(-128, 127) as i8 as u8
}
fn sat16(v: i32) -> u16 {
    v.clamp(-32768, 32767) as i16 as u16
}
fn usat8(v: i32) -> u8 {
    v.clamp(0, 255) as u8
}
fn usat16(v: i32) -> u16 {
    v.clamp(0, 65535) as u16
}

/// Interleaves the low (`hi` false) or high halves of `a` and `b` at
/// element size `es` bytes.
fn unpack(a: u128, b: u128, es: usize, hi: bool) -> u128 {
    let (a, b) = (b8(a), b8(b));
    let base = if hi { 8 } else { 0 };
    let mut r = [0u8; 16];
    for i in 0..8 / es {
        for k in 0..es {
            r[2 * i * es + k] = a[base + i * es + k];
            r[2 * i * es + es + k] = b[base + i * es + k];
        }
    }
    f8(r)
}

/// Shifts every `bits`-bit element of `v` by `n` (left, logical right or
/// arithmetic right).
fn shift(v: u128, bits: u32, n: u64, kind: u8) -> u128 {
    let lanes = 128 / bits;
    let emask = if bits == 64 {
        u64::MAX
    } else {
        (1u64 << bits) - 1
    };
    let mut r = 0u128;
    for i in 0..lanes {
        let e = (v >> (bits * i)) as u64 & emask;
        let out = match kind {
            0 if n < u64::from(bits) => (e << n) & emask,
            1 if n < u64::from(bits) => e >> n,
            2 => {
                let s = (e << (64 - bits)) as i64 >> (64 - bits);
                (s >> n.min(u64::from(bits) - 1)) as u64 & emask
            }
            _ => 0,
        };
        r |= u128::from(out) << (bits * i);
    }
    r
}

fn pshufb(a: u128, b: u128) -> u128 {
    let (a, b) = (b8(a), b8(b));
    f8(std::array::from_fn(|i| {
        if b[i] & 0x80 != 0 {
            0
        } else {
            a[usize::from(b[i] & 15)]
        }
    }))
}

/// psign: `a` negated (wrapping), zeroed or kept as `b` is negative,
/// zero or positive.
fn sign(a: i64, b: i64) -> i64 {
    match b.signum() {
        -1 => a.wrapping_neg(),
        0 => 0,
        _ => a,
    }
}

/// Sign or zero extension of the low elements of `v` from `from` to `to`
/// bytes.
fn pmovx(v: u128, from: u32, to: u32, signed: bool) -> u128 {
    let n = 16 / to;
    let mut r = 0u128;
    for i in 0..n {
        let e = (v >> (8 * from * i)) as u64 & ((1u64 << (8 * from)) - 1);
        let e = if signed {
            ((e << (64 - 8 * from)) as i64 >> (64 - 8 * from)) as u64
        } else {
            e
        };
        let m = if to == 8 {
            u64::MAX
        } else {
            (1u64 << (8 * to)) - 1
        };
        r |= u128::from(e & m) << (8 * to * i);
    }
    r
}

fn mpsadbw(a: u128, b: u128, imm: u8) -> u128 {
    let (a, b) = (b8(a), b8(b));
    let ao = usize::from((imm >> 2) & 1) * 4;
    let bo = usize::from(imm & 3) * 4;
    f16(std::array::from_fn(|i| {
        (0..4)
            .map(|k| u16::from(a[ao + i + k].abs_diff(b[bo + k])))
            .sum()
    }))
}

fn phminposuw(b: u128) -> u128 {
    let w = w16(b);
    let mut idx = 0usize;
    for i in 1..8 {
        if w[i] < w[idx] {
            idx = i;
        }
    }
    u128::from(w[idx]) | ((idx as u128) << 16)
}

fn pmovmskb(v: u128) -> u64 {
    b8(v)
        .iter()
        .enumerate()
        .fold(0, |r, (i, &e)| r | (u64::from(e >> 7) << i))
}

/// The SSE4.2 string compare: (IntRes2, flags) for operands `a`, `b`
/// with valid lengths `la`, `lb` (elements).
fn pcmpstr(a: u128, b: u128, la: usize, lb: usize, imm: u8) -> (u16, u64) {
    use crate::arch::flags as f;
    let words = imm & 1 != 0;
    let signed = imm & 2 != 0;
    let n = if words { 8 } else { 16 };
    let el = |v: u128, i: usize| -> i32 {
        if words {
            let e = (v >> (16 * i)) as u16;
            if signed {
                i32::from(e as i16)
            } else {
                i32::from(e)
            }
        } else {
            let e = (v >> (8 * i)) as u8;
            if signed {
                i32::from(e as i8)
            } else {
                i32::from(e)
            }
        }
    };
    let agg = (imm >> 2) & 3;
    // bool_res[j][i]: a element i against b element j, with the
    // invalid-element overrides of SDM Table 4-7.
    let cmp = |i: usize, j: usize| -> bool {
        let (av, bv) = (i < la, j < lb);
        match agg {
            0 => av && bv && el(a, i) == el(b, j),
            1 => {
                // ranges: a[i] is a bound pair, b[j] the character.
                if !(av && bv) {
                    false
                } else if i & 1 == 0 {
                    el(b, j) >= el(a, i)
                } else {
                    el(b, j) <= el(a, i)
                }
            }
            2 => match (av, bv) {
                (true, true) => el(a, i) == el(b, j),
                (false, false) => true,
                _ => false,
            },
            _ => match (av, bv) {
                (true, true) => el(a, i) == el(b, j),
                (false, _) => true,
                (true, false) => false,
            },
        }
    };
    let mut r1 = 0u16;
    for j in 0..n {
        let bit = match agg {
            0 => (0..n).any(|i| cmp(i, j)),
            1 => (0..n / 2).any(|k| cmp(2 * k, j) && cmp(2 * k + 1, j)),
            2 => cmp(j, j),
            _ => (0..n - j).all(|k| cmp(k, j + k)),
        };
        if bit {
            r1 |= 1 << j;
        }
    }
    let full = if n == 16 { 0xffff } else { 0xff };
    let r2 = match (imm >> 4) & 3 {
        1 => r1 ^ full,
        3 => r1 ^ (((1u32 << lb.min(n)) - 1) as u16 & full),
        _ => r1,
    };
    let r2 = r2 & full;
    let mut flags = 0;
    if r2 != 0 {
        flags |= f::CF;
    }
    if lb < n {
        flags |= f::ZF;
    }
    if la < n {
        flags |= f::SF;
    }
    if r2 & 1 != 0 {
        flags |= f::OF;
    }
    (r2, flags)
}

/// The implicit length of a null-terminated operand (elements).
fn strlen(v: u128, words: bool) -> usize {
    if words {
        w16(v).iter().position(|&e| e == 0).unwrap_or(8)
    } else {
        b8(v).iter().position(|&e| e == 0).unwrap_or(16)
    }
}

/// The explicit length in a GPR: |value| saturated to the element count.
fn explicit_len(v: u64, words: bool, wide: bool) -> usize {
    let n: u64 = if words { 8 } else { 16 };
    let v = if wide {
        (v as i64).unsigned_abs()
    } else {
        u64::from((v as i32).unsigned_abs())
    };
    v.min(n) as usize
}

fn str_result(r2: u16, imm: u8, mask_out: bool) -> u128 {
    let words = imm & 1 != 0;
    let n = if words { 8 } else { 16 };
    if mask_out {
        if imm & 0x40 != 0 {
            let mut r = 0u128;
            for i in 0..n {
                if r2 >> i & 1 != 0 {
                    let e: u128 = if words { 0xffff } else { 0xff };
                    r |= e << (i * (128 / n));
                }
            }
            r
        } else {
            u128::from(r2)
        }
    } else if r2 == 0 {
        n as u128
    } else if imm & 0x40 != 0 {
        u128::from(15 - r2.leading_zeros())
    } else {
        u128::from(r2.trailing_zeros())
    }
}

/// The operands that make the 128-bit op compute an MMX form's 64-bit
/// result in its low half (`a`, `b` are 64-bit values zero-extended; the
/// caller keeps the low 64 bits). Lane-wise ops need nothing; the ones
/// that cross lanes or use the register width are rearranged: the high
/// unpacks see the high dwords in place of the low ones; packs and
/// horizontal ops take both sources as one 128-bit register; pshufb's
/// index is 3 bits; palignr shifts a 128-bit `a:b`; pinsrw/pextrw have 4
/// lanes.
fn mmx_operands(op: IntOp, a: u128, b: u128, imm: u8) -> (u128, u128, u8) {
    use IntOp as I;
    match op {
        I::Punpckhbw | I::Punpckhwd | I::Punpckhdq => (a << 32, b << 32, imm),
        I::Packsswb
        | I::Packssdw
        | I::Packuswb
        | I::Phaddw
        | I::Phaddd
        | I::Phaddsw
        | I::Phsubw
        | I::Phsubd
        | I::Phsubsw => (a | (b << 64), 0, imm),
        I::Pshufb => (a, b & 0x8787_8787_8787_8787, imm),
        I::Palignr => (0, (a << 64) | b, imm),
        I::Pinsrw | I::Pextrw => (a, b, imm & 3),
        _ => (a, b, imm),
    }
}

/// The timing class of an integer op (multiplies run on the FP
/// multiplier; byte movement on the shuffle unit; the rest is `Vec`).
pub(super) fn class(u: &Uop) -> Class {
    use IntOp as I;
    let Some(&op) = ALL.get(usize::from(op_of(u))) else {
        return Class::Vec;
    };
    match op {
        I::Pmullw
        | I::Pmulhw
        | I::Pmulhuw
        | I::Pmuludq
        | I::Pmaddwd
        | I::Pmuldq
        | I::Pmulld
        | I::Pmulhrsw
        | I::Pmaddubsw
        | I::Psadbw
        | I::Mpsadbw => Class::FpMul,
        I::Punpcklbw
        | I::Punpcklwd
        | I::Punpckldq
        | I::Punpcklqdq
        | I::Punpckhbw
        | I::Punpckhwd
        | I::Punpckhdq
        | I::Punpckhqdq
        | I::Packsswb
        | I::Packssdw
        | I::Packuswb
        | I::Packusdw
        | I::Pslldq
        | I::Psrldq
        | I::Pshufd
        | I::Pshuflw
        | I::Pshufhw
        | I::Pshufb
        | I::Palignr
        | I::Phaddw
        | I::Phaddd
        | I::Phaddsw
        | I::Phsubw
        | I::Phsubd
        | I::Phsubsw
        | I::Pmovsxbw
        | I::Pmovsxbd
        | I::Pmovsxbq
        | I::Pmovsxwd
        | I::Pmovsxwq
        | I::Pmovsxdq
        | I::Pmovzxbw
        | I::Pmovzxbd
        | I::Pmovzxbq
        | I::Pmovzxwd
        | I::Pmovzxwq
        | I::Pmovzxdq
        | I::Pblendw
        | I::Pblendvb
        | I::Phminposuw
        | I::Pmovmskb
        | I::Pinsrb
        | I::Pinsrw
        | I::Pinsrd
        | I::Pinsrq
        | I::Pextrb
        | I::Pextrw
        | I::Pextrd
        | I::Pextrq => Class::Shuffle,
        I::Pcmpistri | I::Pcmpistrm | I::Pcmpestri | I::Pcmpestrm => Class::Complex,
        _ => Class::Vec,
    }
}

/// The flags (compressed mask) an op writes.
pub(crate) fn flags_of(op: IntOp) -> u8 {
    match op {
        IntOp::Ptest
        | IntOp::Pcmpistri
        | IntOp::Pcmpistrm
        | IntOp::Pcmpestri
        | IntOp::Pcmpestrm => fl::ALL,
        _ => 0,
    }
}

/// Runs one integer op. Long by nature: one arm per operation, most of
/// them one line over the lane helpers above.
pub(super) fn exec(x: &mut VecCtx<'_>, u: &Uop) -> Result<(), Exc> {
    use IntOp as I;
    let op = *ALL.get(usize::from(op_of(u))).ok_or(Exc(vector::UD))?;
    let (a, b, imm) = (x.v(u.a), x.v(u.b), imm8_of(u));
    let (a, b, imm) = if super::is_mm(u.dst) || super::is_mm(u.a) {
        mmx_operands(op, a, b, imm)
    } else {
        (a, b, imm)
    };
    let cnt = if extra_of(u) == 1 {
        u64::from(imm)
    } else {
        b as u64
    };
    let r: u128 = match op {
        I::Pand => a & b,
        I::Pandn => !a & b,
        I::Por => a | b,
        I::Pxor => a ^ b,
        I::Paddb => m8(a, b, u8::wrapping_add),
        I::Paddw => m16(a, b, u16::wrapping_add),
        I::Paddd => m32(a, b, u32::wrapping_add),
        I::Paddq => m64(a, b, u64::wrapping_add),
        I::Psubb => m8(a, b, u8::wrapping_sub),
        I::Psubw => m16(a, b, u16::wrapping_sub),
        I::Psubd => m32(a, b, u32::wrapping_sub),
        I::Psubq => m64(a, b, u64::wrapping_sub),
        I::Paddsb => m8(a, b, |p, q| (p as i8).saturating_add(q as i8) as u8),
        I::Paddsw => m16(a, b, |p, q| (p as i16).saturating_add(q as i16) as u16),
        I::Paddusb => m8(a, b, u8::saturating_add),
        I::Paddusw => m16(a, b, u16::saturating_add),
        I::Psubsb => m8(a, b, |p, q| (p as i8).saturating_sub(q as i8) as u8),
        I::Psubsw => m16(a, b, |p, q| (p as i16).saturating_sub(q as i16) as u16),
        I::Psubusb => m8(a, b, u8::saturating_sub),
        I::Psubusw => m16(a, b, u16::saturating_sub),
        I::Pcmpeqb => m8(a, b, |p, q| mask::<i8>(p == q) as u8),
        I::Pcmpeqw => m16(a, b, |p, q| mask::<i16>(p == q) as u16),
        I::Pcmpeqd => m32(a, b, |p, q| mask::<i32>(p == q) as u32),
        I::Pcmpeqq => m64(a, b, |p, q| mask::<i64>(p == q) as u64),
        I::Pcmpgtb => m8(a, b, |p, q| mask::<i8>((p as i8) > (q as i8)) as u8),
        I::Pcmpgtw => m16(a, b, |p, q| mask::<i16>((p as i16) > (q as i16)) as u16),
        I::Pcmpgtd => m32(a, b, |p, q| mask::<i32>((p as i32) > (q as i32)) as u32),
        I::Pcmpgtq => m64(a, b, |p, q| mask::<i64>((p as i64) > (q as i64)) as u64),
        I::Punpcklbw => unpack(a, b, 1, false),
        I::Punpcklwd => unpack(a, b, 2, false),
        I::Punpckldq => unpack(a, b, 4, false),
        I::Punpcklqdq => unpack(a, b, 8, false),
        I::Punpckhbw => unpack(a, b, 1, true),
        I::Punpckhwd => unpack(a, b, 2, true),
        I::Punpckhdq => unpack(a, b, 4, true),
        I::Punpckhqdq => unpack(a, b, 8, true),
        I::Packsswb => {
            let (p, q) = (w16(a), w16(b));
            f8(std::array::from_fn(|i| {
                let e = if i < 8 { p[i] } else { q[i - 8] };
                sat8(i32::from(e as i16))
            }))
        }
        I::Packuswb => {
            let (p, q) = (w16(a), w16(b));
            f8(std::array::from_fn(|i| {
                let e = if i < 8 { p[i] } else { q[i - 8] };
                usat8(i32::from(e as i16))
            }))
        }
        I::Packssdw | I::Packusdw => {
            let (p, q) = (d32(a), d32(b));
            f16(std::array::from_fn(|i| {
                let e = if i < 4 { p[i] } else { q[i - 4] } as i32;
                if op == I::Packssdw {
                    sat16(e)
                } else {
                    usat16(e)
                }
            }))
        }
        I::Psllw => shift(a, 16, cnt, 0),
        I::Pslld => shift(a, 32, cnt, 0),
        I::Psllq => shift(a, 64, cnt, 0),
        I::Psrlw => shift(a, 16, cnt, 1),
        I::Psrld => shift(a, 32, cnt, 1),
        I::Psrlq => shift(a, 64, cnt, 1),
        I::Psraw => shift(a, 16, cnt, 2),
        I::Psrad => shift(a, 32, cnt, 2),
        I::Pslldq => a.checked_shl(8 * u32::from(imm.min(16))).unwrap_or(0),
        I::Psrldq => a.checked_shr(8 * u32::from(imm.min(16))).unwrap_or(0),
        I::Pmullw => m16(a, b, u16::wrapping_mul),
        I::Pmulhw => m16(a, b, |p, q| {
            ((i32::from(p as i16) * i32::from(q as i16)) >> 16) as u16
        }),
        I::Pmulhuw => m16(a, b, |p, q| ((u32::from(p) * u32::from(q)) >> 16) as u16),
        I::Pmulhrsw => m16(a, b, |p, q| {
            let t = (i32::from(p as i16) * i32::from(q as i16)) >> 14;
            ((t + 1) >> 1) as u16
        }),
        I::Pmuludq => m64(a, b, |p, q| u64::from(p as u32) * u64::from(q as u32)),
        I::Pmuldq => m64(a, b, |p, q| {
            (i64::from(p as u32 as i32) * i64::from(q as u32 as i32)) as u64
        }),
        I::Pmulld => m32(a, b, u32::wrapping_mul),
        I::Pmaddwd => {
            let (p, q) = (w16(a), w16(b));
            f32x(std::array::from_fn(|i| {
                let s = i64::from(p[2 * i] as i16) * i64::from(q[2 * i] as i16)
                    + i64::from(p[2 * i + 1] as i16) * i64::from(q[2 * i + 1] as i16);
                s as u32
            }))
        }
        I::Pmaddubsw => {
            let (p, q) = (b8(a), b8(b));
            f16(std::array::from_fn(|i| {
                let s = i32::from(p[2 * i]) * i32::from(q[2 * i] as i8)
                    + i32::from(p[2 * i + 1]) * i32::from(q[2 * i + 1] as i8);
                sat16(s)
            }))
        }
        I::Psadbw => {
            let (p, q) = (b8(a), b8(b));
            let s =
                |h: usize| -> u64 { (0..8).map(|k| u64::from(p[h + k].abs_diff(q[h + k]))).sum() };
            f64x([s(0), s(8)])
        }
        I::Mpsadbw => mpsadbw(a, b, imm),
        I::Pavgb => m8(a, b, |p, q| ((u16::from(p) + u16::from(q) + 1) >> 1) as u8),
        I::Pavgw => m16(a, b, |p, q| ((u32::from(p) + u32::from(q) + 1) >> 1) as u16),
        I::Pminub => m8(a, b, u8::min),
        I::Pmaxub => m8(a, b, u8::max),
        I::Pminsw => m16(a, b, |p, q| (p as i16).min(q as i16) as u16),
        I::Pmaxsw => m16(a, b, |p, q| (p as i16).max(q as i16) as u16),
        I::Pminsb => m8(a, b, |p, q| (p as i8).min(q as i8) as u8),
        I::Pmaxsb => m8(a, b, |p, q| (p as i8).max(q as i8) as u8),
        I::Pminsd => m32(a, b, |p, q| (p as i32).min(q as i32) as u32),
        I::Pmaxsd => m32(a, b, |p, q| (p as i32).max(q as i32) as u32),
        I::Pminuw => m16(a, b, u16::min),
        I::Pmaxuw => m16(a, b, u16::max),
        I::Pminud => m32(a, b, u32::min),
        I::Pmaxud => m32(a, b, u32::max),
        I::Pshufd => {
            let p = d32(b);
            f32x(std::array::from_fn(|i| p[usize::from(imm >> (2 * i) & 3)]))
        }
        I::Pshuflw | I::Pshufhw => {
            let p = w16(b);
            let base = if op == I::Pshufhw { 4 } else { 0 };
            f16(std::array::from_fn(|i| {
                if (base..base + 4).contains(&i) {
                    p[base + usize::from(imm >> (2 * (i - base)) & 3)]
                } else {
                    p[i]
                }
            }))
        }
        I::Pshufb => pshufb(a, b),
        I::Palignr => {
            // (a:b) >> 8*imm, 256 bits wide.
            let n = u32::from(imm);
            if n >= 32 {
                0
            } else if n >= 16 {
                a >> (8 * (n - 16))
            } else if n == 0 {
                b
            } else {
                (b >> (8 * n)) | (a << (8 * (16 - n)))
            }
        }
        I::Phaddw | I::Phsubw | I::Phaddsw | I::Phsubsw => {
            let (p, q) = (w16(a), w16(b));
            f16(std::array::from_fn(|i| {
                let s = if i < 4 { &p } else { &q };
                let k = 2 * (i & 3);
                let (l, h) = (s[k] as i16, s[k + 1] as i16);
                match op {
                    I::Phaddw => l.wrapping_add(h) as u16,
                    I::Phsubw => l.wrapping_sub(h) as u16,
                    I::Phaddsw => l.saturating_add(h) as u16,
                    _ => l.saturating_sub(h) as u16,
                }
            }))
        }
        I::Phaddd | I::Phsubd => {
            let (p, q) = (d32(a), d32(b));
            f32x(std::array::from_fn(|i| {
                let s = if i < 2 { &p } else { &q };
                let k = 2 * (i & 1);
                if op == I::Phaddd {
                    s[k].wrapping_add(s[k + 1])
                } else {
                    s[k].wrapping_sub(s[k + 1])
                }
            }))
        }
        I::Pabsb => m8(b, b, |p, _| (p as i8).unsigned_abs()),
        I::Pabsw => m16(b, b, |p, _| (p as i16).unsigned_abs()),
        I::Pabsd => m32(b, b, |p, _| (p as i32).unsigned_abs()),
        I::Psignb => m8(a, b, |p, q| {
            sign(i64::from(p as i8), i64::from(q as i8)) as u8
        }),
        I::Psignw => m16(a, b, |p, q| {
            sign(i64::from(p as i16), i64::from(q as i16)) as u16
        }),
        I::Psignd => m32(a, b, |p, q| {
            sign(i64::from(p as i32), i64::from(q as i32)) as u32
        }),
        I::Pmovsxbw => pmovx(b, 1, 2, true),
        I::Pmovsxbd => pmovx(b, 1, 4, true),
        I::Pmovsxbq => pmovx(b, 1, 8, true),
        I::Pmovsxwd => pmovx(b, 2, 4, true),
        I::Pmovsxwq => pmovx(b, 2, 8, true),
        I::Pmovsxdq => pmovx(b, 4, 8, true),
        I::Pmovzxbw => pmovx(b, 1, 2, false),
        I::Pmovzxbd => pmovx(b, 1, 4, false),
        I::Pmovzxbq => pmovx(b, 1, 8, false),
        I::Pmovzxwd => pmovx(b, 2, 4, false),
        I::Pmovzxwq => pmovx(b, 2, 8, false),
        I::Pmovzxdq => pmovx(b, 4, 8, false),
        I::Ptest => {
            use crate::arch::flags as f;
            let mut fl = 0;
            if a & b == 0 {
                fl |= f::ZF;
            }
            if !a & b == 0 {
                fl |= f::CF;
            }
            x.set_flags(u.fl, fl);
            return Ok(());
        }
        I::Pblendw => {
            let (p, q) = (w16(a), w16(b));
            f16(std::array::from_fn(|i| {
                if imm >> i & 1 != 0 {
                    q[i]
                } else {
                    p[i]
                }
            }))
        }
        I::Pblendvb => {
            let m = b8(x.v(u.c));
            let (p, q) = (b8(a), b8(b));
            f8(std::array::from_fn(|i| {
                if m[i] & 0x80 != 0 {
                    q[i]
                } else {
                    p[i]
                }
            }))
        }
        I::Phminposuw => phminposuw(b),
        I::Pmovmskb => {
            x.set_g(u.dst, 4, pmovmskb(a));
            return Ok(());
        }
        I::Pinsrb | I::Pinsrw | I::Pinsrd | I::Pinsrq => {
            let (bits, lanes) = match op {
                I::Pinsrb => (8, 16),
                I::Pinsrw => (16, 8),
                I::Pinsrd => (32, 4),
                _ => (64, 2),
            };
            let sh = bits * (u32::from(imm) % lanes);
            let m = (u128::MAX >> (128 - bits)) << sh;
            let g = u128::from(x.g(u.b));
            (a & !m) | ((g << sh) & m)
        }
        I::Pextrb | I::Pextrw | I::Pextrd | I::Pextrq => {
            let (bits, lanes) = match op {
                I::Pextrb => (8, 16),
                I::Pextrw => (16, 8),
                I::Pextrd => (32, 4),
                _ => (64, 2),
            };
            let sh = bits * (u32::from(imm) % lanes);
            let v = ((a >> sh) & (u128::MAX >> (128 - bits))) as u64;
            x.set_g(u.dst, if bits == 64 { 8 } else { 4 }, v);
            return Ok(());
        }
        I::Pcmpistri | I::Pcmpistrm | I::Pcmpestri | I::Pcmpestrm => {
            let words = imm & 1 != 0;
            let (la, lb) = if matches!(op, I::Pcmpistri | I::Pcmpistrm) {
                (strlen(a, words), strlen(b, words))
            } else {
                // c holds rax | rdx << 64; the extra byte says REX.W.
                let lens = x.v(u.c);
                let wide = extra_of(u) & 2 != 0;
                (
                    explicit_len(lens as u64, words, wide),
                    explicit_len((lens >> 64) as u64, words, wide),
                )
            };
            let (r2, flags) = pcmpstr(a, b, la, lb, imm);
            let index = matches!(op, I::Pcmpistri | I::Pcmpestri);
            let out = str_result(r2, imm, !index);
            if index {
                x.set_g(u.dst, 4, out as u64);
            } else {
                x.set_v(u.dst, out);
            }
            x.set_flags(u.fl, flags);
            return Ok(());
        }
    };
    x.set_v(u.dst, r);
    Ok(())
}
