//! Integer ALU semantics: results and the six arithmetic flags.
//!
//! Pure functions of (operand size in bytes, inputs) returning the result
//! and an RFLAGS image. Which of the returned flag bits reach RFLAGS is the
//! uop's flag mask (set by the translator from the instruction's definition
//! and the flag-liveness pass), so every function here computes all six.
//!
//! # Undefined flags: [`UndefinedFlags::Amd`]
//! Where the Intel SDM calls a flag undefined, smpsim produces what AMD
//! Zen hardware (the project's host, an AMD EPYC) produces. The values were
//! established by running the instructions natively (see the `native` test
//! module in `exec.rs`) and are summarised at each function below.

use crate::arch::flags::{AF, CF, OF, SF, ZF};

/// Which hardware's values the undefined flags take. Only AMD is modelled.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum UndefinedFlags {
    /// AMD Zen behaviour (the host CPU of the project).
    #[default]
    Amd,
}

/// All-ones mask of an operand of `size` bytes (1, 2, 4, 8).
#[inline(always)]
pub const fn mask(size: u8) -> u64 {
    u64::MAX >> (64 - 8 * size as u32)
}

/// The sign bit of an operand of `size` bytes.
#[inline(always)]
pub const fn msb(size: u8) -> u64 {
    1u64 << (8 * size as u32 - 1)
}

/// Sign-extends the low `size` bytes of `v` to 64 bits.
#[inline(always)]
pub const fn sext(v: u64, size: u8) -> u64 {
    let sh = 64 - 8 * size as u32;
    // The casts reinterpret bits: that is the sign extension.
    (((v << sh) as i64) >> sh) as u64
}

/// PF: set when the low byte of `res` has an even number of one bits.
#[inline(always)]
pub fn parity(res: u64) -> u64 {
    let x = res ^ (res >> 4);
    ((0x9669u64 >> (x & 0xf)) & 1) << 2
}

/// ZF, SF and PF of a result of `size` bytes (already masked).
#[inline(always)]
pub fn szp(res: u64, size: u8) -> u64 {
    let zf = if res == 0 { ZF } else { 0 };
    let sf = if res & msb(size) != 0 { SF } else { 0 };
    zf | sf | parity(res)
}

#[inline(always)]
fn bit(cond: bool, flag: u64) -> u64 {
    if cond {
        flag
    } else {
        0
    }
}

/// `a + b + carry`.
#[inline(always)]
pub fn add(size: u8, a: u64, b: u64, carry: u64) -> (u64, u64) {
    let m = mask(size);
    let (a, b) = (a & m, b & m);
    let res = a.wrapping_add(b).wrapping_add(carry) & m;
    let cf = res < a || (carry != 0 && res == a);
    let of = (a ^ res) & (b ^ res) & msb(size) != 0;
    (
        res,
        bit(cf, CF) | bit(of, OF) | ((a ^ b ^ res) & AF) | szp(res, size),
    )
}

/// `a - b - borrow`.
#[inline(always)]
pub fn sub(size: u8, a: u64, b: u64, borrow: u64) -> (u64, u64) {
    let m = mask(size);
    let (a, b) = (a & m, b & m);
    let res = a.wrapping_sub(b).wrapping_sub(borrow) & m;
    let cf = a < b || (borrow != 0 && a == b);
    let of = (a ^ b) & (a ^ res) & msb(size) != 0;
    (
        res,
        bit(cf, CF) | bit(of, OF) | ((a ^ b ^ res) & AF) | szp(res, size),
    )
}

/// Flags of and/or/xor/test: CF = OF = 0; AF = 0 (undefined; AMD clears it).
#[inline(always)]
pub fn logic(size: u8, res: u64) -> (u64, u64) {
    let res = res & mask(size);
    (res, szp(res, size))
}

/// Masked shift/rotate count: 6 bits for 64-bit operands, 5 otherwise.
#[inline(always)]
pub fn count_mask(size: u8, count: u64) -> u32 {
    // Truncation is the point: the hardware uses only the low bits.
    (count & if size == 8 { 0x3f } else { 0x1f }) as u32
}

/// SHL/SAL. `None` when the masked count is 0 (nothing changes).
/// OF = MSB(result) XOR CF for every count; AF set (AMD).
pub fn shl(size: u8, a: u64, count: u64) -> Option<(u64, u64)> {
    let n = count_mask(size, count);
    if n == 0 {
        return None;
    }
    let bits = 8 * u32::from(size);
    let wide = u128::from(a & mask(size)) << n;
    let res = (wide as u64) & mask(size);
    let cf = (wide >> bits) & 1 == 1;
    let of = (res & msb(size) != 0) ^ cf;
    Some((res, bit(cf, CF) | bit(of, OF) | AF | szp(res, size)))
}

/// OF of right shifts on AMD: the top two result bits differ (for a count
/// of 1 that is the SDM's "MSB of the original operand").
#[inline]
fn of_top2(res: u64, size: u8) -> bool {
    (res & msb(size) != 0) != (res & (msb(size) >> 1) != 0)
}

/// SHR. OF = result bit n-1 XOR bit n-2 for every count; AF set (AMD).
pub fn shr(size: u8, a: u64, count: u64) -> Option<(u64, u64)> {
    let n = count_mask(size, count);
    if n == 0 {
        return None;
    }
    let a = a & mask(size);
    let res = a >> n;
    let cf = (a >> (n - 1)) & 1 == 1;
    let of = of_top2(res, size);
    Some((res, bit(cf, CF) | bit(of, OF) | AF | szp(res, size)))
}

/// SAR. OF = 0; AF set (AMD).
pub fn sar(size: u8, a: u64, count: u64) -> Option<(u64, u64)> {
    let n = count_mask(size, count);
    if n == 0 {
        return None;
    }
    let s = sext(a, size) as i64;
    let res = ((s >> n.min(63)) as u64) & mask(size);
    let cf = (s >> (n - 1).min(63)) & 1 == 1;
    Some((res, bit(cf, CF) | AF | szp(res, size)))
}

/// ROL: only CF and OF change. OF = MSB(result) XOR CF for every count.
pub fn rol(size: u8, a: u64, count: u64) -> Option<(u64, u64)> {
    let n = count_mask(size, count);
    if n == 0 {
        return None;
    }
    let bits = 8 * u32::from(size);
    let r = n % bits;
    let a = a & mask(size);
    let res = if r == 0 {
        a
    } else {
        ((a << r) | (a >> (bits - r))) & mask(size)
    };
    let cf = res & 1 == 1;
    let of = (res & msb(size) != 0) ^ cf;
    Some((res, bit(cf, CF) | bit(of, OF)))
}

/// ROR: only CF and OF change. OF = bit(n-1) XOR bit(n-2) of the result.
pub fn ror(size: u8, a: u64, count: u64) -> Option<(u64, u64)> {
    let n = count_mask(size, count);
    if n == 0 {
        return None;
    }
    let bits = 8 * u32::from(size);
    let r = n % bits;
    let a = a & mask(size);
    let res = if r == 0 {
        a
    } else {
        ((a >> r) | (a << (bits - r))) & mask(size)
    };
    let cf = res & msb(size) != 0;
    let of = cf ^ (res & (msb(size) >> 1) != 0);
    Some((res, bit(cf, CF) | bit(of, OF)))
}

/// RCL through CF (`cf_in` is 0 or 1). Only CF and OF change.
pub fn rcl(size: u8, a: u64, count: u64, cf_in: u64) -> Option<(u64, u64)> {
    let n = count_mask(size, count);
    if n == 0 {
        return None;
    }
    let bits = 8 * u32::from(size);
    let r = n % (bits + 1);
    let w = (u128::from(cf_in) << bits) | u128::from(a & mask(size));
    let wm = (1u128 << (bits + 1)) - 1;
    let rot = if r == 0 {
        w
    } else {
        ((w << r) | (w >> (bits + 1 - r))) & wm
    };
    let res = (rot as u64) & mask(size);
    let cf = (rot >> bits) & 1 == 1;
    let of = (res & msb(size) != 0) ^ cf;
    Some((res, bit(cf, CF) | bit(of, OF)))
}

/// RCR through CF (`cf_in` is 0 or 1). Only CF and OF change.
pub fn rcr(size: u8, a: u64, count: u64, cf_in: u64) -> Option<(u64, u64)> {
    let n = count_mask(size, count);
    if n == 0 {
        return None;
    }
    let bits = 8 * u32::from(size);
    let r = n % (bits + 1);
    let w = (u128::from(cf_in) << bits) | u128::from(a & mask(size));
    let wm = (1u128 << (bits + 1)) - 1;
    let rot = if r == 0 {
        w
    } else {
        ((w >> r) | (w << (bits + 1 - r))) & wm
    };
    let res = (rot as u64) & mask(size);
    let cf = (rot >> bits) & 1 == 1;
    let of = (res & msb(size) != 0) ^ (res & (msb(size) >> 1) != 0);
    Some((res, bit(cf, CF) | bit(of, OF)))
}

/// SHLD: `a` shifted left, filled from the top of `fill`. AMD: OF = CF XOR
/// MSB(a << count), AF set; 16-bit counts above 16 shift through
/// `a:fill:fill` and clear CF.
pub fn shld(size: u8, a: u64, fill: u64, count: u64) -> Option<(u64, u64)> {
    let n = count_mask(size, count);
    if n == 0 {
        return None;
    }
    let bits = 8 * u32::from(size);
    let (a, f) = (u128::from(a & mask(size)), u128::from(fill & mask(size)));
    let (w, total) = if size == 2 {
        ((a << 32) | (f << 16) | f, 48)
    } else {
        ((a << bits) | f, 2 * bits)
    };
    let res = (((w << n) >> (total - bits)) as u64) & mask(size);
    // 16-bit counts above 16 clear CF on AMD; OF is CF XOR the sign of
    // `a << n` alone (which is MSB(result) whenever the count is below the size).
    let cf = (w >> (total - n)) & 1 == 1 && !(size == 2 && n > 16);
    let of = cf ^ ((a << n) as u64 & msb(size) != 0);
    Some((res, bit(cf, CF) | bit(of, OF) | AF | szp(res, size)))
}

/// SHRD: `a` shifted right, filled from the bottom of `fill`. AMD: OF =
/// top two result bits differ, AF set; 16-bit counts above 16 shift
/// through `fill:fill:a` and clear CF.
pub fn shrd(size: u8, a: u64, fill: u64, count: u64) -> Option<(u64, u64)> {
    let n = count_mask(size, count);
    if n == 0 {
        return None;
    }
    let bits = 8 * u32::from(size);
    let (a, f) = (u128::from(a & mask(size)), u128::from(fill & mask(size)));
    let w = if size == 2 {
        (f << 32) | (f << 16) | a
    } else {
        (f << bits) | a
    };
    let res = ((w >> n) as u64) & mask(size);
    // 16-bit counts above 16 clear CF on AMD.
    let cf = (w >> (n - 1)) & 1 == 1 && !(size == 2 && n > 16);
    Some((
        res,
        bit(cf, CF) | bit(of_top2(res, size), OF) | AF | szp(res, size),
    ))
}

/// Flags after a multiply: CF = OF = `overflow`. SF, ZF, AF, PF keep their
/// values on AMD (the translator's mask is CF|OF).
#[inline]
pub fn mul_flags(overflow: bool) -> u64 {
    bit(overflow, CF | OF)
}

/// Flags after a divide on AMD: SF = ZF = PF = 0, AF = 1, CF and OF kept
/// (the translator's mask is SF|ZF|AF|PF).
pub const DIV_FLAGS: u64 = AF;

/// Unsigned widening multiply: (low, high) halves of `a * b` at `size`.
pub fn mul_wide(size: u8, a: u64, b: u64) -> (u64, u64) {
    let p = u128::from(a & mask(size)) * u128::from(b & mask(size));
    let bits = 8 * u32::from(size);
    ((p as u64) & mask(size), ((p >> bits) as u64) & mask(size))
}

/// Signed widening multiply: (low, high) halves of `a * b` at `size`.
pub fn imul_wide(size: u8, a: u64, b: u64) -> (u64, u64) {
    let p = i128::from(sext(a, size) as i64) * i128::from(sext(b, size) as i64);
    let bits = 8 * u32::from(size);
    ((p as u64) & mask(size), ((p >> bits) as u64) & mask(size))
}

/// Whether a signed product's high half is more than the low half's sign.
pub fn imul_overflows(size: u8, low: u64, high: u64) -> bool {
    let sign_fill = if low & msb(size) != 0 { mask(size) } else { 0 };
    high != sign_fill
}

/// Unsigned divide of `hi:lo` by `d` at `size`: (quotient, remainder), or
/// `None` for #DE (divide by zero or quotient overflow).
pub fn div(size: u8, hi: u64, lo: u64, d: u64) -> Option<(u64, u64)> {
    let bits = 8 * u32::from(size);
    let m = mask(size);
    let d = u128::from(d & m);
    if d == 0 {
        return None;
    }
    let n = (u128::from(hi & m) << bits) | u128::from(lo & m);
    let q = n / d;
    if q > u128::from(m) {
        return None;
    }
    Some((q as u64, (n % d) as u64))
}

/// Signed divide of `hi:lo` by `d` at `size`, or `None` for #DE.
pub fn idiv(size: u8, hi: u64, lo: u64, d: u64) -> Option<(u64, u64)> {
    let bits = 8 * u32::from(size);
    let m = mask(size);
    let n = ((u128::from(hi & m) << bits) | u128::from(lo & m)) as i128;
    // Sign-extend the 2*bits-wide dividend.
    let n = (n << (128 - 2 * bits)) >> (128 - 2 * bits);
    let d = i128::from(sext(d, size) as i64);
    let q = n.checked_div(d)?;
    let r = n.checked_rem(d)?;
    let lim = 1i128 << (bits - 1);
    if q < -lim || q >= lim {
        return None;
    }
    Some(((q as u64) & m, (r as u64) & m))
}

/// Flags of BT/BTS/BTR/BTC: CF = the bit; the others keep their values on AMD
/// (the uop's mask is CF only).
#[inline]
pub fn bt_flags(value: u64, bitpos: u32) -> u64 {
    bit((value >> bitpos) & 1 == 1, CF)
}

/// BSF/BSR flags: ZF = (source == 0). AMD: CF = OF = SF = AF = 0 and PF is
/// the parity of the bit index (of 0 for a zero source).
#[inline]
pub fn bsx_flags(src_zero: bool, index: u64) -> u64 {
    bit(src_zero, ZF) | parity(if src_zero { 0 } else { index })
}

/// LZCNT/TZCNT flags: CF = (source == 0), ZF = (result == 0). AMD: SF = AF
/// = PF = 0 and OF keeps its value (mask all but OF).
#[inline]
pub fn cnt_flags(src_zero: bool, res: u64) -> u64 {
    bit(src_zero, CF) | bit(res == 0, ZF)
}

/// POPCNT flags: ZF = (source == 0), the others cleared.
#[inline]
pub fn popcnt_flags(src_zero: bool) -> u64 {
    bit(src_zero, ZF)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::arch::flags::PF;

    #[test]
    fn add_sets_carry_overflow_and_aux() {
        let (r, f) = add(1, 0x7f, 1, 0);
        assert_eq!(r, 0x80);
        assert_eq!(f, OF | SF | AF);
        let (r, f) = add(1, 0xff, 1, 0);
        assert_eq!(r, 0);
        assert_eq!(f, CF | ZF | AF | PF);
        let (r, f) = add(8, u64::MAX, 0, 1);
        assert_eq!((r, f & CF), (0, CF));
    }

    #[test]
    fn sub_borrow_and_overflow() {
        let (r, f) = sub(4, 0, 1, 0);
        assert_eq!(r, 0xffff_ffff);
        assert_eq!(f, CF | SF | AF | PF);
        let (r, f) = sub(2, 0x8000, 1, 0);
        assert_eq!(r, 0x7fff);
        assert_eq!(f, OF | AF | PF);
        let (_, f) = sub(8, 5, 5, 1);
        assert_eq!(f & CF, CF);
    }

    #[test]
    fn parity_counts_low_byte_only() {
        assert_eq!(parity(0), PF);
        assert_eq!(parity(1), 0);
        assert_eq!(parity(0x3), PF);
        assert_eq!(parity(0x100), PF);
    }

    #[test]
    fn divide_errors() {
        assert_eq!(div(8, 0, 10, 0), None);
        assert_eq!(div(1, 0x01, 0x00, 1), None); // 0x100 / 1 overflows 8 bits
        assert_eq!(div(4, 1, 0, 2), Some((0x8000_0000, 0)));
        assert_eq!(idiv(8, u64::MAX, 1 << 63, u64::MAX), None); // MIN / -1
        assert_eq!(idiv(1, 0xff, 0xf9, 2), Some((0xfd, 0xff))); // -7 / 2 = -3 r -1
    }

    #[test]
    fn rotate_through_carry() {
        assert_eq!(rcl(1, 0x80, 1, 0), Some((0, CF | OF)));
        assert_eq!(rcr(1, 0x01, 1, 1), Some((0x80, CF | OF)));
        assert_eq!(rcl(1, 0x55, 9, 1), Some((0x55, CF | OF)));
    }
}
