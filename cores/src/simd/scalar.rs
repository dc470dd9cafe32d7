//! [`super::Family::Scalar`]: the GPR-only integer extensions (BMI1,
//! BMI2, CRC32). They are integer instructions: no #NM.
//!
//! Operands are GPRs: `a` the first source (mulx: RDX), `b` the second
//! (the control, mask, count or data), `dst` the result; `size` the
//! operand size (crc32: the data size).

use super::{imm8_of, op_of, vector, Exc, VecCtx};
use crate::arch::flags as f;
use crate::ooo::uopinfo::Class;
use crate::uop::{fl, Uop};

/// The operations of the scalar family.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(u16)]
pub(crate) enum ScalarOp {
    /// dst = !a & b.
    Andn = 0,
    /// dst = bit field of a at start b[7:0], length b[15:8].
    Bextr = 1,
    /// dst = a & -a.
    Blsi = 2,
    /// dst = a ^ (a - 1).
    Blsmsk = 3,
    /// dst = a & (a - 1).
    Blsr = 4,
    /// dst = a with the bits from index b[7:0] up cleared.
    Bzhi = 5,
    /// dst = low half of a * b (unsigned).
    MulxLo = 6,
    /// dst = high half of a * b (unsigned).
    MulxHi = 7,
    /// Parallel bit deposit of a under mask b.
    Pdep = 8,
    /// Parallel bit extract of a under mask b.
    Pext = 9,
    /// dst = a rotated right by imm8.
    Rorx = 10,
    /// dst = a >> b (arithmetic).
    Sarx = 11,
    /// dst = a << b.
    Shlx = 12,
    /// dst = a >> b (logical).
    Shrx = 13,
    /// dst = CRC-32C of the low `size` bytes of b into accumulator a.
    Crc32 = 14,
}

impl ScalarOp {
    pub(crate) const fn id(self) -> u16 {
        self as u16
    }

    /// The flags (compressed mask) the op writes.
    pub(crate) fn flags(self) -> u8 {
        match self {
            ScalarOp::Andn
            | ScalarOp::Bextr
            | ScalarOp::Blsi
            | ScalarOp::Blsmsk
            | ScalarOp::Blsr
            | ScalarOp::Bzhi => fl::ALL,
            _ => 0,
        }
    }
}

/// The timing class of a scalar op.
pub(super) fn class(u: &Uop) -> Class {
    match op_of(u) {
        6..=9 | 14 => Class::Mul,
        _ => Class::Alu,
    }
}

fn crc32c(mut crc: u32, data: u64, bytes: u8) -> u32 {
    for i in 0..u32::from(bytes) {
        crc ^= (data >> (8 * i)) as u8 as u32;
        for _ in 0..8 {
            crc = if crc & 1 != 0 {
                (crc >> 1) ^ 0x82f6_3b78
            } else {
                crc >> 1
            };
        }
    }
    crc
}

fn pdep(src: u64, mut m: u64) -> u64 {
    let mut r = 0;
    let mut k = 0;
    while m != 0 {
        let low = m & m.wrapping_neg();
        if src >> k & 1 != 0 {
            r |= low;
        }
        k += 1;
        m &= m - 1;
    }
    r
}

fn pext(src: u64, mut m: u64) -> u64 {
    let mut r = 0;
    let mut k = 0;
    while m != 0 {
        let low = m & m.wrapping_neg();
        if src & low != 0 {
            r |= 1 << k;
        }
        k += 1;
        m &= m - 1;
    }
    r
}

pub(super) fn exec(x: &mut VecCtx<'_>, u: &Uop) -> Result<(), Exc> {
    let size = if u.size == 8 { 8u8 } else { 4 };
    let bits = 8 * u32::from(size);
    let m = if size == 8 { u64::MAX } else { 0xffff_ffff };
    let a = x.g(u.a) & m;
    let b = x.g(u.b);
    let sign = 1u64 << (bits - 1);
    // Result and flags of the flag-writing ops: SF and ZF from the result,
    // OF, AF and PF clear, CF as given.
    let logic = |r: u64, cf: bool| -> (u64, u64) {
        let mut fl = 0;
        if r == 0 {
            fl |= f::ZF;
        }
        if r & sign != 0 {
            fl |= f::SF;
        }
        if cf {
            fl |= f::CF;
        }
        (r, fl)
    };
    let (r, flags) = match op_of(u) {
        0 => logic(!a & b & m, false),
        1 => {
            let start = u32::from(b as u8);
            let len = u32::from((b >> 8) as u8);
            let v = if start >= bits { 0 } else { a >> start };
            let v = if len >= 64 {
                v
            } else {
                v & ((1u64 << len) - 1)
            };
            let (r, fl) = logic(v & m, false);
            (r, fl & !f::SF)
        }
        2 => logic(a & a.wrapping_neg() & m, a != 0),
        3 => {
            let (r, fl) = logic((a ^ a.wrapping_sub(1)) & m, a == 0);
            (r, fl & !f::ZF)
        }
        4 => logic(a & a.wrapping_sub(1) & m, a == 0),
        5 => {
            let n = u32::from(b as u8);
            let r = if n < bits { a & ((1u64 << n) - 1) } else { a };
            logic(r, n > bits - 1)
        }
        op @ (6 | 7) => {
            let p = u128::from(a) * u128::from(b & m);
            let r = if op == 6 {
                p as u64 & m
            } else {
                (p >> bits) as u64 & m
            };
            (r, 0)
        }
        8 => (pdep(a, b & m), 0),
        9 => (pext(a, b & m), 0),
        10 => {
            let n = u32::from(imm8_of(u)) % bits;
            let r = if size == 8 {
                a.rotate_right(n)
            } else {
                u64::from((a as u32).rotate_right(n))
            };
            (r, 0)
        }
        op @ 11..=13 => {
            let n = (b as u32) & (bits - 1);
            let r = match op {
                11 => {
                    let s = ((a << (64 - bits)) as i64) >> (64 - bits);
                    (s >> n) as u64 & m
                }
                12 => (a << n) & m,
                _ => a >> n,
            };
            (r, 0)
        }
        14 => {
            let bytes = u.size.min(8);
            let dm = if bytes == 8 {
                u64::MAX
            } else {
                (1u64 << (8 * bytes)) - 1
            };
            let r = crc32c(x.g(u.a) as u32, b & dm, bytes);
            x.set_g(u.dst, 4, u64::from(r));
            return Ok(());
        }
        _ => return Err(Exc(vector::UD)),
    };
    x.set_g(u.dst, size, r);
    if u.fl != 0 {
        x.set_flags(u.fl, flags);
    }
    Ok(())
}
