//! 80-bit extended-precision arithmetic with the x87's rules, in integers.
//!
//! Values are the low 80 bits of a `u128` (64-bit significand with the
//! explicit integer bit, then sign and 15-bit exponent). Every operation
//! computes the exact result (or a result with a sticky bit far below the
//! rounding point) and rounds once ([`Env::round`]) to the precision of
//! FCW.PC (24, 53 or 64 bits, with the extended exponent range) in the
//! rounding mode of FCW.RC. Underflow tininess is detected after rounding
//! (as on x86). Exceptions accumulate in [`Env::exc`] (FSW bits IE DE ZE
//! OE UE PE); [`Env::c1`] is the round-up indication.
//!
//! Operands in an unsupported encoding (unnormals, pseudo-NaNs,
//! pseudo-infinities) are invalid (#IA, result the real indefinite), as on
//! every processor since the 387. Pseudo-denormals are treated as
//! denormals.

/// The real indefinite (a negative QNaN).
pub const INDEFINITE: u128 = (0xffffu128 << 64) | 0xc000_0000_0000_0000;
/// +0.
pub const ZERO: u128 = 0;
/// 1.0.
pub const ONE: u128 = (0x3fffu128 << 64) | (1 << 63);
const SIGN: u128 = 1 << 79;
const MASK80: u128 = (1 << 80) - 1;

/// FSW exception bits.
pub mod exc {
    /// Invalid operation.
    pub const IE: u16 = 1;
    /// Denormal operand.
    pub const DE: u16 = 2;
    /// Divide by zero.
    pub const ZE: u16 = 4;
    /// Overflow.
    pub const OE: u16 = 8;
    /// Underflow.
    pub const UE: u16 = 16;
    /// Precision (inexact).
    pub const PE: u16 = 32;
}

/// The class of an 80-bit value.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    /// ±0.
    Zero,
    /// A denormal (or pseudo-denormal).
    Denormal,
    /// A normal number.
    Normal,
    /// ±∞.
    Inf,
    /// A quiet NaN.
    QNaN,
    /// A signalling NaN.
    SNaN,
    /// An unsupported encoding (unnormal, pseudo-NaN, pseudo-infinity).
    Unsupported,
}

/// The class of `v`.
pub fn kind(v: u128) -> Kind {
    let e = exp(v);
    let s = sig(v);
    match e {
        0 if s == 0 => Kind::Zero,
        0 => Kind::Denormal,
        0x7fff if s >> 63 == 0 => Kind::Unsupported,
        0x7fff if s << 1 == 0 => Kind::Inf,
        0x7fff if s >> 62 & 1 == 1 => Kind::QNaN,
        0x7fff => Kind::SNaN,
        _ if s >> 63 == 0 => Kind::Unsupported,
        _ => Kind::Normal,
    }
}

/// The biased exponent.
pub fn exp(v: u128) -> u16 {
    (v >> 64) as u16 & 0x7fff
}

/// The significand (integer bit included).
pub fn sig(v: u128) -> u64 {
    v as u64
}

/// The sign.
pub fn neg(v: u128) -> bool {
    v & SIGN != 0
}

/// Packs sign, biased exponent and significand.
pub fn pack(neg: bool, exp: u16, sig: u64) -> u128 {
    (u128::from(neg) << 79) | (u128::from(exp & 0x7fff) << 64) | u128::from(sig)
}

fn is_nan(k: Kind) -> bool {
    matches!(k, Kind::QNaN | Kind::SNaN)
}

/// ±∞.
pub fn inf(neg: bool) -> u128 {
    pack(neg, 0x7fff, 1 << 63)
}

/// The arithmetic environment of one operation: FCW in, flags out.
#[derive(Clone, Copy, Debug)]
pub struct Env {
    /// The control word (masks, PC, RC).
    pub fcw: u16,
    /// Exceptions raised (FSW bit positions).
    pub exc: u16,
    /// C1: the result was rounded up in magnitude.
    pub c1: bool,
}

/// A finite nonzero value unpacked: value = sig × 2^(e − 63), bit 63 of
/// `sig` set.
#[derive(Clone, Copy, Debug)]
struct Un {
    neg: bool,
    e: i32,
    sig: u64,
}

fn unpack(v: u128) -> Un {
    let s = sig(v);
    let be = i32::from(exp(v));
    if be == 0 {
        let lz = s.leading_zeros() as i32;
        Un {
            neg: neg(v),
            e: 1 - 16383 - lz,
            sig: s << lz,
        }
    } else {
        Un {
            neg: neg(v),
            e: be - 16383,
            sig: s,
        }
    }
}

/// Rounding modes (FCW.RC and MXCSR.RC).
const RN: u16 = 0;
const RD: u16 = 1;
const RU: u16 = 2;

/// Rounds `k` (the kept bits) given the round bit and sticky; returns the
/// increment.
fn round_inc(rc: u16, neg: bool, k: u128, round: bool, sticky: bool) -> bool {
    match rc {
        RN => round && (sticky || k & 1 == 1),
        RD => neg && (round || sticky),
        RU => !neg && (round || sticky),
        _ => false,
    }
}

/// Shifts right by `n` returning (kept, round bit, sticky).
fn shr_round(v: u128, n: u32) -> (u128, bool, bool) {
    match n {
        0 => (v, false, false),
        1..=127 => (
            v >> n,
            (v >> (n - 1)) & 1 == 1,
            v & ((1u128 << (n - 1)) - 1) != 0,
        ),
        128 => (0, v >> 127 == 1, v << 1 != 0),
        _ => (0, false, v != 0),
    }
}

/// A destination format: precision, exponent bias, maximal biased
/// exponent of a finite value.
#[derive(Clone, Copy, Debug)]
pub struct Fmt {
    /// Significand bits (integer bit included).
    pub p: u32,
    /// Exponent bias.
    pub bias: i32,
    /// Largest biased exponent of a finite number.
    pub emax: i32,
}

/// Single precision.
pub const F32: Fmt = Fmt {
    p: 24,
    bias: 127,
    emax: 254,
};
/// Double precision.
pub const F64: Fmt = Fmt {
    p: 53,
    bias: 1023,
    emax: 2046,
};

impl Env {
    /// An environment for FCW `fcw`.
    pub fn new(fcw: u16) -> Env {
        Env {
            fcw,
            exc: 0,
            c1: false,
        }
    }

    fn rc(&self) -> u16 {
        (self.fcw >> 10) & 3
    }

    fn masked(&self, e: u16) -> bool {
        self.fcw & e != 0
    }

    /// The register-destination format from FCW.PC.
    pub fn reg_fmt(&self) -> Fmt {
        let p = match (self.fcw >> 8) & 3 {
            0 => 24,
            2 => 53,
            _ => 64,
        };
        Fmt {
            p,
            bias: 16383,
            emax: 0x7ffe,
        }
    }

    /// Rounds the value sig × 2^(e − 127) (`sig` nonzero, any position;
    /// bit 0 may be a sticky bit) to format `f`: returns (sign, biased
    /// exponent, significand of `f.p` bits with explicit integer bit; a
    /// denormal has exponent 0). Handles overflow and underflow with the
    /// masked or unmasked response (bias adjust 24576 for the extended
    /// format, when `adjust`).
    fn round_to(&mut self, neg: bool, mut e: i32, mut sig: u128, f: Fmt) -> (bool, i32, u128) {
        let lz = sig.leading_zeros() as i32;
        sig <<= lz;
        e -= lz;
        let be = e + f.bias;
        let rc = self.rc();
        let p = f.p;
        // Unbounded exponent rounding (for tininess and overflow).
        let (k, r, s) = shr_round(sig, 128 - p);
        let up = round_inc(rc, neg, k, r, s);
        let mut ku = k + u128::from(up);
        let mut beu = be;
        if ku >> p != 0 {
            ku >>= 1;
            beu += 1;
        }
        let inexact = r || s;
        let memory = f.bias != 16383;
        if beu > f.emax && memory && !self.masked(exc::OE) {
            // To memory, unmasked: nothing stored, OE alone.
            self.exc |= exc::OE;
            return (neg, f.emax + 1, 1u128 << (p - 1));
        }
        if beu < 1 && memory && !self.masked(exc::UE) {
            self.exc |= exc::UE;
            return (neg, 0, 0);
        }
        if beu > f.emax {
            self.exc |= exc::OE;
            if !self.masked(exc::OE) && f.bias == 16383 {
                if beu - 24576 > f.emax {
                    // Too large even for the bias adjust (fscale): ∞.
                    self.exc |= exc::PE;
                    self.c1 = true;
                    return (neg, f.emax + 1, 1u128 << (p - 1));
                }
                if inexact {
                    self.exc |= exc::PE;
                    self.c1 = up;
                }
                return (neg, beu - 24576, ku);
            }
            self.exc |= exc::PE;
            let to_inf = match rc {
                RN => true,
                RD => neg,
                RU => !neg,
                _ => false,
            };
            self.c1 = to_inf;
            if to_inf {
                return (neg, f.emax + 1, 1u128 << (p - 1));
            }
            return (neg, f.emax, (1u128 << p) - 1);
        }
        if beu >= 1 {
            if inexact {
                self.exc |= exc::PE;
                self.c1 = up;
            }
            return (neg, beu, ku);
        }
        // Tiny after rounding.
        if !self.masked(exc::UE) && f.bias == 16383 {
            self.exc |= exc::UE;
            if beu + 24576 < 1 {
                // Too small even for the bias adjust (fscale): a zero.
                self.exc |= exc::PE;
                self.c1 = false;
                return (neg, 0, 0);
            }
            if inexact {
                self.exc |= exc::PE;
                self.c1 = up;
            }
            return (neg, beu + 24576, ku);
        }
        let n = (128 - p) as i64 + i64::from(1 - be);
        let n = u32::try_from(n.min(200)).unwrap_or(200);
        let (k, r, s) = shr_round(sig, n);
        let kd = k + u128::from(round_inc(rc, neg, k, r, s));
        if r || s {
            self.exc |= exc::UE | exc::PE;
            self.c1 = true;
            if kd == k {
                self.c1 = false;
            }
        }
        let be = i32::from(kd >> (p - 1) != 0);
        (neg, be, kd)
    }

    /// Rounds to the register format (FCW.PC) and packs.
    fn round(&mut self, neg: bool, e: i32, sig: u128) -> u128 {
        let f = self.reg_fmt();
        let (n, be, k) = self.round_to(neg, e, sig, f);
        let s = (k << (64 - f.p)) as u64;
        pack(n, (be & 0x7fff) as u16, s)
    }

    /// Rounds to the 64-bit precision extended format (fld conversions,
    /// constants are exact anyway).
    fn round64(&mut self, neg: bool, e: i32, sig: u128) -> u128 {
        let save = self.fcw;
        self.fcw |= 0x300;
        let v = self.round(neg, e, sig);
        self.fcw = save;
        v
    }

    /// The NaN result of an operation with NaN operands (x87 rules): an
    /// SNaN raises #IA and is quieted; of two NaNs of the same kind, the
    /// one with the larger significand; of a QNaN and an SNaN, the QNaN.
    fn nan2(&mut self, a: u128, b: u128) -> u128 {
        let (ka, kb) = (kind(a), kind(b));
        if ka == Kind::SNaN || kb == Kind::SNaN {
            self.exc |= exc::IE;
        }
        let q = |v: u128| v | (1 << 62);
        match (is_nan(ka), is_nan(kb)) {
            (true, false) => q(a),
            (false, true) => q(b),
            _ => {
                if ka != kb {
                    return if ka == Kind::QNaN { a } else { b };
                }
                let (sa, sb) = (sig(a), sig(b));
                if sa > sb || (sa == sb && !neg(a)) {
                    q(a)
                } else {
                    q(b)
                }
            }
        }
    }

    /// Invalid operation: #IA, the real indefinite.
    fn invalid(&mut self) -> u128 {
        // An invalid operation reports no #D (as the host).
        self.exc = (self.exc & !exc::DE) | exc::IE;
        INDEFINITE
    }

    /// Common operand screening for two operands: Some(result) for NaN
    /// or unsupported operands; sets DE for denormals.
    fn screen2(&mut self, a: u128, b: u128) -> Option<u128> {
        let (ka, kb) = (kind(a), kind(b));
        if ka == Kind::Unsupported || kb == Kind::Unsupported {
            return Some(self.invalid());
        }
        if is_nan(ka) || is_nan(kb) {
            return Some(self.nan2(a, b));
        }
        if ka == Kind::Denormal || kb == Kind::Denormal {
            self.exc |= exc::DE;
        }
        None
    }

    /// Screening for one operand.
    fn screen1(&mut self, a: u128) -> Option<u128> {
        match kind(a) {
            Kind::Unsupported => Some(self.invalid()),
            Kind::SNaN => {
                self.exc |= exc::IE;
                Some(a | (1 << 62))
            }
            Kind::QNaN => Some(a),
            Kind::Denormal => {
                self.exc |= exc::DE;
                None
            }
            _ => None,
        }
    }

    /// a + b (`sub`: a − b).
    pub fn add(&mut self, a: u128, b: u128, sub: bool) -> u128 {
        if let Some(r) = self.screen2(a, b) {
            return r;
        }
        let b = if sub { b ^ SIGN } else { b };
        let (ka, kb) = (kind(a), kind(b));
        match (ka, kb) {
            (Kind::Inf, Kind::Inf) => {
                return if neg(a) == neg(b) { a } else { self.invalid() };
            }
            (Kind::Inf, _) => return a,
            (_, Kind::Inf) => return b,
            (Kind::Zero, Kind::Zero) => {
                let n = if neg(a) == neg(b) {
                    neg(a)
                } else {
                    self.rc() == RD
                };
                return pack(n, 0, 0);
            }
            (Kind::Zero, _) => return self.reround(b),
            (_, Kind::Zero) => return self.reround(a),
            _ => {}
        }
        let (mut x, mut y) = (unpack(a), unpack(b));
        if (y.e, y.sig) > (x.e, x.sig) {
            std::mem::swap(&mut x, &mut y);
        }
        // Top of x at bit 126.
        let xs = u128::from(x.sig) << 63;
        let d = u32::try_from(x.e - y.e).unwrap_or(u32::MAX);
        let ys = u128::from(y.sig) << 63;
        let ys = if d >= 127 {
            u128::from(ys != 0)
        } else {
            let (k, r, s) = shr_round(ys, d);
            if d == 0 {
                k
            } else {
                // Jam the lost bits into bit 0, far below the rounding point.
                k | u128::from(r || s)
            }
        };
        let (neg, m) = if x.neg == y.neg {
            (x.neg, xs + ys)
        } else {
            (x.neg, xs - ys)
        };
        if m == 0 {
            return pack(self.rc() == RD, 0, 0);
        }
        // value = m × 2^(x.e − 126) = m × 2^((x.e + 1) − 127).
        self.round(neg, x.e + 1, m)
    }

    /// A finite value rounded to the register precision (x + 0).
    fn reround(&mut self, a: u128) -> u128 {
        if matches!(kind(a), Kind::Zero) {
            return a;
        }
        let u = unpack(a);
        self.round(u.neg, u.e, u128::from(u.sig) << 64)
    }

    /// a × b.
    pub fn mul(&mut self, a: u128, b: u128) -> u128 {
        if let Some(r) = self.screen2(a, b) {
            return r;
        }
        let n = neg(a) != neg(b);
        match (kind(a), kind(b)) {
            (Kind::Inf, Kind::Zero) | (Kind::Zero, Kind::Inf) => return self.invalid(),
            (Kind::Inf, _) | (_, Kind::Inf) => return inf(n),
            (Kind::Zero, _) | (_, Kind::Zero) => return pack(n, 0, 0),
            _ => {}
        }
        let (x, y) = (unpack(a), unpack(b));
        let m = u128::from(x.sig) * u128::from(y.sig);
        // value = m × 2^(x.e + y.e − 126).
        self.round(n, x.e + y.e + 1, m)
    }

    /// a / b.
    pub fn div(&mut self, a: u128, b: u128) -> u128 {
        if let Some(r) = self.screen2(a, b) {
            return r;
        }
        let n = neg(a) != neg(b);
        match (kind(a), kind(b)) {
            (Kind::Inf, Kind::Inf) | (Kind::Zero, Kind::Zero) => return self.invalid(),
            (Kind::Inf, _) => return inf(n),
            (_, Kind::Inf) => return pack(n, 0, 0),
            (Kind::Zero, _) => return pack(n, 0, 0),
            (_, Kind::Zero) => {
                // A zero divide reports no #D (as the host).
                self.exc = (self.exc & !exc::DE) | exc::ZE;
                return inf(n);
            }
            _ => {}
        }
        let (x, y) = (unpack(a), unpack(b));
        let (xa, yb) = (u128::from(x.sig), u128::from(y.sig));
        let (num, e) = if xa >= yb {
            (xa << 63, x.e - y.e)
        } else {
            (xa << 64, x.e - y.e - 1)
        };
        let q1 = num / yb;
        let r1 = num % yb;
        let q2 = (r1 << 64) / yb;
        let r2 = (r1 << 64) % yb;
        let q = (q1 << 64) | q2 | u128::from(r2 != 0);
        // q1 in [2^63, 2^64): value = q × 2^(e − 127).
        self.round(n, e, q)
    }

    /// √a.
    pub fn sqrt(&mut self, a: u128) -> u128 {
        if let Some(r) = self.screen1(a) {
            return r;
        }
        match kind(a) {
            Kind::Zero => return a,
            _ if neg(a) => return self.invalid(),
            Kind::Inf => return a,
            _ => {}
        }
        let x = unpack(a);
        let mut e2 = x.e - 63;
        let mut xs = u128::from(x.sig);
        if e2 & 1 != 0 {
            xs <<= 1;
            e2 -= 1;
        }
        // Digit-by-digit root of xs × 2^70 (33 + 35 pairs).
        let mut rem: u128 = 0;
        let mut root: u128 = 0;
        for i in (0..68).rev() {
            let pair = if i >= 35 {
                (xs >> (2 * (i - 35))) & 3
            } else {
                0
            };
            rem = (rem << 2) | pair;
            let trial = (root << 2) | 1;
            if rem >= trial {
                rem -= trial;
                root = (root << 1) | 1;
            } else {
                root <<= 1;
            }
        }
        let lz = root.leading_zeros();
        let m = (root << lz) | u128::from(rem != 0);
        // value = root × 2^(e2/2 − 35).
        let e = e2 / 2 - 35 + 127 - lz as i32;
        self.round(false, e, m)
    }

    /// The comparison of a and b: None when unordered (NaN or
    /// unsupported operands; #IA for SNaNs, or for any NaN when
    /// `signalling`).
    pub fn compare(&mut self, a: u128, b: u128, signalling: bool) -> Option<std::cmp::Ordering> {
        let (ka, kb) = (kind(a), kind(b));
        if ka == Kind::Unsupported || kb == Kind::Unsupported {
            self.exc |= exc::IE;
            return None;
        }
        if is_nan(ka) || is_nan(kb) {
            if signalling || ka == Kind::SNaN || kb == Kind::SNaN {
                self.exc |= exc::IE;
            }
            return None;
        }
        if ka == Kind::Denormal || kb == Kind::Denormal {
            self.exc |= exc::DE;
        }
        Some(total(a).cmp(&total(b)))
    }

    /// Rounds to an integral value in the current rounding mode
    /// (frndint; the result keeps the register format).
    pub fn rndint(&mut self, a: u128) -> u128 {
        if let Some(r) = self.screen1(a) {
            return r;
        }
        if matches!(kind(a), Kind::Zero | Kind::Inf) {
            return a;
        }
        let x = unpack(a);
        if x.e >= 63 {
            return a;
        }
        let (k, r, s) = if x.e < -1 {
            (0, false, true)
        } else {
            shr_round(u128::from(x.sig), (63 - x.e) as u32)
        };
        let kr = k + u128::from(round_inc(self.rc(), x.neg, k, r, s));
        if r || s {
            self.exc |= exc::PE;
            self.c1 = kr > k;
        }
        if kr == 0 {
            return pack(x.neg, 0, 0);
        }
        let lz = kr.leading_zeros();
        let sigv = (kr << lz) >> 64;
        pack(x.neg, (16383 + 127 - lz) as u16, sigv as u64)
    }

    /// Converts to an integer of `bits` (16, 32, 64) in the current
    /// rounding mode (`trunc`: toward zero); out of range and NaN give
    /// #IA and the integer indefinite.
    pub fn round_int(&mut self, a: u128, bits: u32, trunc: bool) -> u64 {
        let indef = 1u64 << (bits - 1);
        let mask = if bits == 64 {
            u64::MAX
        } else {
            (1u64 << bits) - 1
        };
        match kind(a) {
            Kind::Unsupported | Kind::QNaN | Kind::SNaN | Kind::Inf => {
                self.exc |= exc::IE;
                return indef;
            }
            Kind::Zero => return 0,
            _ => {}
        }
        let x = unpack(a);
        let rc = if trunc { 3 } else { self.rc() };
        let (k, r, s) = if x.e > 63 {
            self.exc |= exc::IE;
            return indef;
        } else if x.e < -1 {
            (0, false, true)
        } else {
            shr_round(u128::from(x.sig), (63 - x.e) as u32)
        };
        let kr = k + u128::from(round_inc(rc, x.neg, k, r, s));
        let limit = 1u128 << (bits - 1);
        if (x.neg && kr > limit) || (!x.neg && kr >= limit) {
            self.exc |= exc::IE;
            return indef;
        }
        if r || s {
            self.exc |= exc::PE;
            self.c1 = kr > k;
        }
        let v = kr as u64;
        (if x.neg { v.wrapping_neg() } else { v }) & mask
    }

    /// An integer to extended (exact).
    pub fn from_int(v: i64) -> u128 {
        if v == 0 {
            return 0;
        }
        let m = v.unsigned_abs();
        let lz = m.leading_zeros();
        pack(v < 0, (16383 + 63 - lz) as u16, m << lz)
    }

    /// A single or double (`bits` 32, 64) to extended: exact; an SNaN
    /// raises #IA and is quieted (fld), a denormal sets DE.
    pub fn widen(&mut self, v: u64, f: Fmt) -> u128 {
        let r = self.widen_operand(v, f);
        if kind(r) == Kind::SNaN {
            self.exc |= exc::IE;
            return r | (1 << 62);
        }
        r
    }

    /// [`Env::widen`] for an arithmetic or comparison source: an SNaN
    /// stays signalling (the operation raises #IA and quiets it), so that
    /// a QNaN in ST(0) wins over it (as on the host: the indefinite ÷ an
    /// m32 SNaN gives the indefinite, not the quieted SNaN).
    pub fn widen_operand(&mut self, v: u64, f: Fmt) -> u128 {
        let w = f.p - 1; // fraction bits
        let eb = if f.p == 24 { 8 } else { 11 };
        let n = (v >> (w + eb)) & 1 == 1;
        let e = ((v >> w) & ((1 << eb) - 1)) as i32;
        let frac = v & ((1u64 << w) - 1);
        let emax = (1 << eb) - 1;
        if e == emax {
            if frac == 0 {
                return inf(n);
            }
            return pack(n, 0x7fff, (1 << 63) | (frac << (63 - w)));
        }
        if e == 0 {
            if frac == 0 {
                return pack(n, 0, 0);
            }
            self.exc |= exc::DE;
            // value = frac × 2^(1 − bias − w)
            return self.round64(n, 1 - f.bias - w as i32 + 127, u128::from(frac));
        }
        pack(
            n,
            (e - f.bias + 16383) as u16,
            (1 << 63) | (frac << (63 - w)),
        )
    }

    /// Extended to single or double: rounded in FCW.RC; NaNs quieted and
    /// truncated (SNaN: #IA); an invalid encoding gives the format's
    /// indefinite.
    pub fn narrow(&mut self, a: u128, f: Fmt) -> u64 {
        let w = f.p - 1;
        let eb: u32 = if f.p == 24 { 8 } else { 11 };
        let emax = (1u64 << eb) - 1;
        let n = u64::from(neg(a));
        let sbit = n << (w + eb);
        match kind(a) {
            Kind::Unsupported => {
                self.exc |= exc::IE;
                (1 << (w + eb)) | (emax << w) | (1 << (w - 1))
            }
            Kind::QNaN | Kind::SNaN => {
                if kind(a) == Kind::SNaN {
                    self.exc |= exc::IE;
                }
                let fr = (sig(a) << 1) >> (64 - w);
                sbit | (emax << w) | fr | (1 << (w - 1))
            }
            Kind::Inf => sbit | (emax << w),
            Kind::Zero => sbit,
            _ => {
                // No #D here: the host reports none for a denormal source.
                let x = unpack(a);
                let (_, be, kk) = self.round_to(x.neg, x.e, u128::from(x.sig) << 64, f);
                if be > f.emax {
                    return sbit | (emax << w);
                }
                let mant = (kk as u64) & ((1u64 << w) - 1);
                if be <= 0 {
                    return sbit | kk as u64;
                }
                sbit | ((be as u64) << w) | mant
            }
        }
    }

    /// fscale: a × 2^trunc(b).
    pub fn scale(&mut self, a: u128, b: u128) -> u128 {
        if let Some(r) = self.screen2(a, b) {
            return r;
        }
        let (ka, kb) = (kind(a), kind(b));
        match (ka, kb) {
            (Kind::Zero, Kind::Inf) if !neg(b) => return self.invalid(),
            (Kind::Inf, Kind::Inf) if neg(b) => return self.invalid(),
            (Kind::Zero | Kind::Inf, _) => return a,
            (_, Kind::Inf) => {
                return if neg(b) {
                    pack(neg(a), 0, 0)
                } else {
                    inf(neg(a))
                };
            }
            _ => {}
        }
        let x = unpack(a);
        let n: i32 = if kb == Kind::Zero {
            0
        } else {
            let y = unpack(b);
            if y.e > 30 {
                if y.neg {
                    -(1 << 20)
                } else {
                    1 << 20
                }
            } else if y.e < 0 {
                0
            } else {
                // At most 2^31 − 1: clamped far beyond any finite result.
                let m = ((y.sig >> (63 - y.e)) as i32).min(1 << 20);
                if y.neg {
                    -m
                } else {
                    m
                }
            }
        };
        // Precision control does not apply to fscale.
        self.round64(x.neg, x.e + n, u128::from(x.sig) << 64)
    }

    /// fxtract: (exponent, significand) of a.
    pub fn xtract(&mut self, a: u128) -> (u128, u128) {
        if let Some(r) = self.screen1(a) {
            return (r, r);
        }
        match kind(a) {
            Kind::Zero => {
                self.exc |= exc::ZE;
                return (inf(true), a);
            }
            Kind::Inf => return (inf(false), a),
            _ => {}
        }
        let x = unpack(a);
        (Env::from_int(i64::from(x.e)), pack(x.neg, 0x3fff, x.sig))
    }

    /// fprem (`ieee`: fprem1): (result, quotient low 3 bits or None for NaN
    /// and invalid operands, complete).
    pub fn prem(&mut self, a: u128, b: u128, ieee: bool) -> (u128, Option<u8>, bool) {
        if let Some(r) = self.screen2(a, b) {
            return (r, None, true);
        }
        match (kind(a), kind(b)) {
            (Kind::Inf, _) | (_, Kind::Zero) => return (self.invalid(), None, true),
            (Kind::Zero, _) | (_, Kind::Inf) => return (a, Some(0), true),
            _ => {}
        }
        let (x, y) = (unpack(a), unpack(b));
        let d = x.e - y.e;
        if d < 0 {
            if ieee && d == -1 && x.sig > y.sig {
                // |a| > |b|/2: a − b·sign, quotient 1.
                // Exact (precision control does not apply to fprem1).
                let save = self.fcw;
                self.fcw |= 0x300;
                let r = self.add(a, b, neg(a) == neg(b));
                self.fcw = save;
                return (r, Some(1), true);
            }
            // a itself, through the underflow rules (a denormal a with
            // #U unmasked is delivered bias-adjusted, as on the host).
            let x = unpack(a);
            return (
                self.round64(x.neg, x.e, u128::from(x.sig) << 64),
                Some(0),
                true,
            );
        }
        let (shift, partial) = if d >= 64 {
            let n = (d & 31) | 32;
            (n, true)
        } else {
            (d, false)
        };
        let num = u128::from(x.sig) << shift;
        let yb = u128::from(y.sig);
        let mut q = num / yb;
        let mut r = num % yb;
        let mut n = x.neg;
        if ieee && !partial && (2 * r > yb || (2 * r == yb && q & 1 == 1)) {
            r = yb - r;
            q += 1;
            n = !n;
        }
        // r × 2^(x.e − shift − 63) = r × 2^(y.e + (d − shift) − 63).
        let e = x.e - shift - 63 + 127;
        let v = if r == 0 {
            pack(x.neg, 0, 0)
        } else {
            self.round64(n, e, r)
        };
        (v, Some((q & 7) as u8), !partial)
    }
}

/// A key ordering non-NaN values numerically. A pseudo-denormal (biased
/// exponent 0 with the integer bit set) has the value of the normal with
/// exponent 1 and the same significand, and compares equal to it (as the
/// host's fucom does).
fn total(v: u128) -> i128 {
    let mut mag = (v & (MASK80 >> 1)) as i128;
    if exp(v) == 0 && sig(v) >> 63 == 1 {
        mag |= 1 << 64;
    }
    if mag == 0 || kind(v) == Kind::Zero {
        0
    } else if neg(v) {
        -mag
    } else {
        mag
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::cmp::Ordering;

    #[test]
    fn pseudo_denormals_compare_by_value() {
        let f = |se: u16, sig: u64| (u128::from(se) << 64) | u128::from(sig);
        let mut env = Env::new(0x037f);
        let pd = f(0, 0xc000_0000_0000_0000);
        let cases = [
            (pd, f(1, 0xc000_0000_0000_0000), Ordering::Equal),
            (pd, f(1, 0x8ab8_709a_2bd5_eac6), Ordering::Greater),
            (f(0, 1 << 63), f(1, 0x8ab8_709a_2bd5_eac6), Ordering::Less),
            (
                pd | 1 << 79,
                f(0x8001, 0x8ab8_709a_2bd5_eac6),
                Ordering::Less,
            ),
            (pd, f(0, 0x7fff_ffff_ffff_ffff), Ordering::Greater),
        ];
        for (a, b, o) in cases {
            assert_eq!(env.compare(a, b, false), Some(o), "{a:#x} vs {b:#x}");
        }
    }
}
