//! A case's initial x87/SSE state: XMM registers with interesting values
//! per lane, MXCSR with random rounding, DAZ, FTZ (and, now and then, some
//! exceptions unmasked), an x87 stack with a few valid values at a random
//! TOP, and FCW with random rounding and (mostly 64-bit) precision; all x87
//! exceptions stay masked.

use crate::rng::Rng;
use smpsim_cores::fpu::FpuState;

/// An IEEE value of a format with `e` exponent bits and `m` stored
/// significand bits (`m + e + 1 <= 64`), biased towards the edge cases.
fn ieee(r: &mut Rng, e: u32, m: u32) -> u64 {
    let sign = r.below(2) << (e + m);
    let emax = (1u64 << e) - 1;
    let mant = r.next_u64() & ((1u64 << m) - 1);
    let quiet = 1u64 << (m - 1);
    let exp = |x: u64| x << m;
    sign | match r.below(14) {
        0 => 0,
        1 => mant.max(1),                                             // denormal
        2 => exp(emax),                                               // infinity
        3 => exp(emax) | quiet | (mant & (quiet - 1) & r.next_u64()), // QNaN
        4 => exp(emax) | (mant & (quiet - 1)).max(1),                 // SNaN
        5 => exp(1) | mant,                                           // smallest normals
        6 => exp(emax - 1) | mant,                                    // largest normals
        7 => exp((emax >> 1) + r.below(64)) | (mant & !((1u64 << m.saturating_sub(8)) - 1)), // integers, halves
        8 => exp(emax >> 1),                                                                 // 1.0
        // Near the integer limits: 2^k times 1, 1.25, 1.5 or 1.75.
        9 => exp((emax >> 1) + [15, 16, 31, 32, 63, 64][r.index(6)]) | r.below(4) << (m - 2),
        _ => exp(r.range(1, emax as i64 - 1) as u64) | mant, // any normal
    }
}

/// An 80-bit x87 value (explicit integer bit), biased like [`ieee`].
fn x87_value(r: &mut Rng) -> u128 {
    let sign = u128::from(r.below(2) as u16) << 79;
    let mant = r.next_u64() & !(1 << 63);
    let j = 1u64 << 63;
    let (e, sig): (u16, u64) = match r.below(12) {
        0 => (0, 0),
        1 => (0, mant.max(1)),                                     // denormal
        2 => (0x7fff, j),                                          // infinity
        3 => (0x7fff, j | (1 << 62) | (mant & r.next_u64() >> 2)), // QNaN
        4 => (0x7fff, j | (mant >> 2).max(1)),                     // SNaN
        5 => (0x3fff, j),                                          // 1.0
        6 => (0x3fff + r.below(70) as u16, j | (mant & !((1 << 40) - 1))), // integers
        7 => (1, j | mant),                                        // smallest normals
        8 => (0x7ffe, j | mant),                                   // largest normals
        _ => (r.range(1, 0x7ffe) as u16, j | mant),
    };
    sign | (u128::from(e) << 64) | u128::from(sig)
}

/// One XMM register: per 64-bit half, two singles, a double, an integer or
/// random bits.
fn xmm_value(r: &mut Rng) -> u128 {
    let mut v = 0u128;
    for half in 0..2 {
        let q = match r.below(5) {
            0 | 1 => ieee(r, 8, 23) | ieee(r, 8, 23) << 32,
            2 => ieee(r, 11, 52),
            3 => r.interesting_u64(),
            _ => r.next_u64(),
        };
        v |= u128::from(q) << (64 * half);
    }
    v
}

/// A valid MXCSR: random rounding, DAZ, FTZ and sticky flags; all
/// exceptions masked except in a few cases.
pub(super) fn mxcsr_value(r: &mut Rng) -> u32 {
    let mut m = (r.below(4) as u32) << 13;
    if r.chance(25) {
        m |= 1 << 6;
    }
    if r.chance(25) {
        m |= 1 << 15;
    }
    if r.chance(30) {
        m |= r.next_u64() as u32 & 0x3f;
    }
    let masks = if r.chance(6) {
        0x3f & !(1 << r.below(6)) & (r.next_u64() as u32 | 0x30)
    } else {
        0x3f
    };
    m | masks << 7
}

/// A valid FCW with every x87 exception masked: random rounding, 64-bit
/// precision in most cases.
pub(super) fn fcw_value(r: &mut Rng) -> u16 {
    let pc: u16 = if r.chance(85) { 3 } else { [0, 2][r.index(2)] };
    0x7f | pc << 8 | (r.below(4) as u16) << 10
}

/// The case's x87/SSE state as a 64-bit FXSAVE image.
pub(super) fn initial_state(r: &mut Rng) -> [u8; 512] {
    let mut f = FpuState::default();
    for x in f.xmm.iter_mut() {
        *x = xmm_value(r);
    }
    f.mxcsr = mxcsr_value(r);
    f.fcw = fcw_value(r);
    let cc = r.next_u64() as u16 & (0x4700);
    let exc = if r.chance(30) {
        r.next_u64() as u16 & 0x3f
    } else {
        0
    };
    f.fsw = cc | exc;
    f.set_top(r.index(8));
    let depth = *r.pick(&[0usize, 1, 2, 2, 3, 3, 4, 5, 6, 8]);
    for p in 0..8 {
        f.st[p] = x87_value(r);
        f.set_tag(p, 3);
    }
    for i in 0..depth {
        let p = f.phys(i);
        f.set_tag(p, FpuState::tag_of(f.st[p]));
    }
    f.to_fxsave()
}
