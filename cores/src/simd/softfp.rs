//! IEEE-754 binary32/binary64 arithmetic with the x86 SSE rules, in
//! integer arithmetic only (no host floating point): rounding from
//! MXCSR.RC, DAZ (denormal operands read as zero, no DE), FTZ (a tiny
//! result becomes zero when underflow is masked), tininess detected after
//! rounding, the six MXCSR flags, and the x86 NaN rules (the first NaN
//! operand wins, quieted; invalid operations give the negative "indefinite"
//! QNaN).
//!
//! Every function takes the MXCSR value `m` (rounding, DAZ, FTZ, masks)
//! and ORs the exception flags it detects into `fl` (MXCSR bit positions).
//! The caller decides what an unmasked exception does ([`PRE`]).

use crate::fpu::mxcsr::{DAZ, DE, FTZ, IE, OE, PE, RC, UE, ZE};

/// The pre-computation exceptions: an unmasked one stops the operation
/// before any post-computation flag (OE, UE, PE) is looked at.
pub(crate) const PRE: u32 = IE | DE | ZE;

/// A binary floating-point format.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Fmt {
    /// Exponent bits.
    eb: u32,
    /// Fraction bits (precision minus one).
    mb: u32,
}

/// binary32.
pub(crate) const F32: Fmt = Fmt { eb: 8, mb: 23 };
/// binary64.
pub(crate) const F64: Fmt = Fmt { eb: 11, mb: 52 };

/// Rounding modes in MXCSR.RC order.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Round {
    Nearest,
    Down,
    Up,
    Zero,
}

impl Round {
    /// The mode in the two low bits of `v`.
    pub(crate) fn from_bits(v: u32) -> Round {
        match v & 3 {
            0 => Round::Nearest,
            1 => Round::Down,
            2 => Round::Up,
            _ => Round::Zero,
        }
    }

    /// MXCSR's rounding mode.
    pub(crate) fn of(m: u32) -> Round {
        Round::from_bits((m & RC) >> 13)
    }
}

/// A decoded operand.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Val {
    Nan,
    Inf,
    Zero,
    /// sig * 2^e, sig nonzero.
    Fin {
        e: i32,
        sig: u64,
    },
}

impl Fmt {
    /// The format of `size`-byte elements (8: double, else single).
    pub(crate) fn of(size: u8) -> Fmt {
        if size == 8 {
            F64
        } else {
            F32
        }
    }

    fn bias(self) -> i32 {
        (1 << (self.eb - 1)) - 1
    }

    fn exp_all(self) -> u64 {
        (1 << self.eb) - 1
    }

    fn frac_mask(self) -> u64 {
        (1 << self.mb) - 1
    }

    fn sign_bit(self) -> u64 {
        1 << (self.eb + self.mb)
    }

    fn quiet_bit(self) -> u64 {
        1 << (self.mb - 1)
    }

    fn exp_field(self, x: u64) -> u64 {
        (x >> self.mb) & self.exp_all()
    }

    /// The negative QNaN "indefinite".
    pub(crate) fn default_nan(self) -> u64 {
        self.sign_bit() | (self.exp_all() << self.mb) | self.quiet_bit()
    }

    fn inf(self, neg: bool) -> u64 {
        self.signed(neg, self.exp_all() << self.mb)
    }

    fn zero(self, neg: bool) -> u64 {
        self.signed(neg, 0)
    }

    fn signed(self, neg: bool, mag: u64) -> u64 {
        if neg {
            mag | self.sign_bit()
        } else {
            mag
        }
    }

    pub(crate) fn neg(self, x: u64) -> bool {
        x & self.sign_bit() != 0
    }

    pub(crate) fn is_nan(self, x: u64) -> bool {
        self.exp_field(x) == self.exp_all() && x & self.frac_mask() != 0
    }

    pub(crate) fn is_snan(self, x: u64) -> bool {
        self.is_nan(x) && x & self.quiet_bit() == 0
    }

    fn quiet(self, x: u64) -> u64 {
        x | self.quiet_bit()
    }

    fn is_denormal(self, x: u64) -> bool {
        self.exp_field(x) == 0 && x & self.frac_mask() != 0
    }

    /// Operand `x` as the operation sees it: a denormal reads as zero
    /// under DAZ, and sets DE otherwise.
    pub(crate) fn input(self, x: u64, m: u32, fl: &mut u32) -> u64 {
        if self.is_denormal(x) {
            if m & DAZ != 0 {
                return x & self.sign_bit();
            }
            *fl |= DE;
        }
        x
    }

    /// Both operands through [`Fmt::input`]; DE is not reported when
    /// either is a NaN.
    fn inputs(self, a: u64, b: u64, m: u32, fl: &mut u32) -> (u64, u64) {
        let mut d = 0;
        let a = self.input(a, m, &mut d);
        let b = self.input(b, m, &mut d);
        if !self.is_nan(a) && !self.is_nan(b) {
            *fl |= d;
        }
        (a, b)
    }

    fn val(self, x: u64) -> Val {
        let ef = self.exp_field(x);
        let frac = x & self.frac_mask();
        if ef == self.exp_all() {
            return if frac != 0 { Val::Nan } else { Val::Inf };
        }
        if ef == 0 {
            if frac == 0 {
                return Val::Zero;
            }
            return Val::Fin {
                e: 1 - self.bias() - self.mb as i32,
                sig: frac,
            };
        }
        Val::Fin {
            e: ef as i32 - self.bias() - self.mb as i32,
            sig: frac | (1 << self.mb),
        }
    }

    /// Rounds sig * 2^e (sig nonzero, at most 126 bits; its lowest bit may
    /// be a sticky bit when two lower bits are kept) to this format.
    fn pack(self, neg: bool, sig: u128, e: i32, m: u32, fl: &mut u32) -> u64 {
        if sig == 0 {
            return self.zero(neg);
        }
        let rc = Round::of(m);
        let p = self.mb + 1;
        // At least p + 3 bits, so the normal path always rounds.
        let mut nbits = 128 - sig.leading_zeros();
        let (sig, e) = if nbits < p + 3 {
            let s = p + 3 - nbits;
            nbits += s;
            (sig << s, e - s as i32)
        } else {
            (sig, e)
        };
        let big_e = e + nbits as i32 - 1;
        let emin = 1 - self.bias();
        let (r, inexact_p) = round_shift(sig, nbits - p, neg, rc);
        // Tininess after rounding, with an unbounded exponent.
        let tiny = big_e < emin - 1 || (big_e == emin - 1 && r >> p == 0);
        if big_e >= emin {
            let (r, big_e) = if r >> p != 0 {
                (r >> 1, big_e + 1)
            } else {
                (r, big_e)
            };
            if big_e > self.bias() {
                // Unmasked (no result is written), PE says whether the
                // significand was rounded, as for a scaled result.
                *fl |= if m & (OE << 7) != 0 || inexact_p {
                    OE | PE
                } else {
                    OE
                };
                return self.overflow(neg, rc);
            }
            if inexact_p {
                *fl |= PE;
            }
            let field = (big_e + self.bias()) as u64;
            return self.signed(neg, (field << self.mb) | (r as u64 & self.frac_mask()));
        }
        let sh = (nbits - p) as i32 + (emin - big_e);
        let (r, inexact) = round_shift(sig, sh as u32, neg, rc);
        let ue_masked = m & (UE << 7) != 0;
        if ue_masked {
            if tiny && (inexact || m & FTZ != 0) {
                *fl |= UE | PE;
                if m & FTZ != 0 {
                    return self.zero(neg);
                }
            } else if inexact {
                *fl |= PE;
            }
        } else if tiny {
            // Unmasked (no result is written), PE says whether the
            // significand was rounded at full precision, as for a scaled
            // result.
            *fl |= UE;
            if inexact_p {
                *fl |= PE;
            }
        } else if inexact {
            *fl |= PE;
        }
        // r <= 2^mb: the encoding of a denormal, or of the smallest normal.
        self.signed(neg, r as u64)
    }

    fn overflow(self, neg: bool, rc: Round) -> u64 {
        let max = ((self.exp_all() - 1) << self.mb) | self.frac_mask();
        let to_inf = match rc {
            Round::Nearest => true,
            Round::Zero => false,
            Round::Down => neg,
            Round::Up => !neg,
        };
        if to_inf {
            self.inf(neg)
        } else {
            self.signed(neg, max)
        }
    }

    /// The NaN result for operands `a`, `b` (at least one a NaN): the first
    /// NaN, quieted; IE for an SNaN.
    fn nan2(self, a: u64, b: u64, fl: &mut u32) -> u64 {
        if self.is_snan(a) || self.is_snan(b) {
            *fl |= IE;
        }
        if self.is_nan(a) {
            self.quiet(a)
        } else {
            self.quiet(b)
        }
    }

    /// An invalid operation: IE and the indefinite.
    fn invalid(self, fl: &mut u32) -> u64 {
        *fl |= IE;
        self.default_nan()
    }

    /// a + b (b negated first for a subtraction when `sub`).
    pub(crate) fn add(self, a: u64, b: u64, sub: bool, m: u32, fl: &mut u32) -> u64 {
        let (a, b) = self.inputs(a, b, m, fl);
        if self.is_nan(a) || self.is_nan(b) {
            return self.nan2(a, b, fl);
        }
        let (na, nb) = (self.neg(a), self.neg(b) != sub);
        match (self.val(a), self.val(b)) {
            (Val::Inf, Val::Inf) if na != nb => self.invalid(fl),
            (Val::Inf, _) => self.inf(na),
            (_, Val::Inf) => self.inf(nb),
            (Val::Zero, Val::Zero) => {
                let neg = if na == nb {
                    na
                } else {
                    Round::of(m) == Round::Down
                };
                self.zero(neg)
            }
            (Val::Zero, Val::Fin { e, sig }) => self.pack(nb, u128::from(sig), e, m, fl),
            (Val::Fin { e, sig }, Val::Zero) => self.pack(na, u128::from(sig), e, m, fl),
            (Val::Fin { e: ea, sig: sa }, Val::Fin { e: eb, sig: sb }) => {
                self.add_fin(na, ea, sa, nb, eb, sb, m, fl)
            }
            _ => self.default_nan(),
        }
    }

    #[allow(clippy::too_many_arguments)]
    fn add_fin(
        self,
        na: bool,
        ea: i32,
        sa: u64,
        nb: bool,
        eb: i32,
        sb: u64,
        m: u32,
        fl: &mut u32,
    ) -> u64 {
        // Put each significand's top bit at bit 100; the smaller one is
        // shifted right with a sticky bit.
        let norm = |e: i32, s: u64| {
            let n = 64 - s.leading_zeros();
            let sh = 101 - n;
            (u128::from(s) << sh, e - sh as i32)
        };
        let (mut xa, ea) = norm(ea, sa);
        let (mut xb, eb) = norm(eb, sb);
        let e = ea.max(eb);
        xa = sticky_shr(xa, (e - ea) as u32);
        xb = sticky_shr(xb, (e - eb) as u32);
        if na == nb {
            return self.pack(na, xa + xb, e, m, fl);
        }
        if xa == xb {
            return self.zero(Round::of(m) == Round::Down);
        }
        if xa > xb {
            self.pack(na, xa - xb, e, m, fl)
        } else {
            self.pack(nb, xb - xa, e, m, fl)
        }
    }

    /// a * b.
    pub(crate) fn mul(self, a: u64, b: u64, m: u32, fl: &mut u32) -> u64 {
        let (a, b) = self.inputs(a, b, m, fl);
        if self.is_nan(a) || self.is_nan(b) {
            return self.nan2(a, b, fl);
        }
        let neg = self.neg(a) != self.neg(b);
        match (self.val(a), self.val(b)) {
            (Val::Inf, Val::Zero) | (Val::Zero, Val::Inf) => self.invalid(fl),
            (Val::Inf, _) | (_, Val::Inf) => self.inf(neg),
            (Val::Zero, _) | (_, Val::Zero) => self.zero(neg),
            (Val::Fin { e: ea, sig: sa }, Val::Fin { e: eb, sig: sb }) => {
                self.pack(neg, u128::from(sa) * u128::from(sb), ea + eb, m, fl)
            }
            _ => self.default_nan(),
        }
    }

    /// a / b.
    pub(crate) fn div(self, a: u64, b: u64, m: u32, fl: &mut u32) -> u64 {
        let mut d = 0;
        let (a, b) = self.inputs(a, b, m, &mut d);
        if self.is_nan(a) || self.is_nan(b) {
            return self.nan2(a, b, fl);
        }
        let neg = self.neg(a) != self.neg(b);
        // A division by zero does not report a denormal dividend.
        if self.val(b) != Val::Zero {
            *fl |= d;
        }
        match (self.val(a), self.val(b)) {
            (Val::Inf, Val::Inf) | (Val::Zero, Val::Zero) => self.invalid(fl),
            (Val::Inf, _) => self.inf(neg),
            (_, Val::Inf) | (Val::Zero, _) => self.zero(neg),
            (_, Val::Zero) => {
                *fl |= ZE;
                self.inf(neg)
            }
            (Val::Fin { e: ea, sig: sa }, Val::Fin { e: eb, sig: sb }) => {
                let sh = 120 - (64 - sa.leading_zeros());
                let x = u128::from(sa) << sh;
                let y = u128::from(sb);
                let q = (x / y) | u128::from(x % y != 0);
                self.pack(neg, q, ea - sh as i32 - eb, m, fl)
            }
            _ => self.default_nan(),
        }
    }

    /// sqrt(b).
    pub(crate) fn sqrt(self, b: u64, m: u32, fl: &mut u32) -> u64 {
        let mut d = 0;
        let b = self.input(b, m, &mut d);
        if self.is_nan(b) {
            return self.nan2(b, b, fl);
        }
        let neg = self.neg(b);
        match self.val(b) {
            Val::Zero => b,
            _ if neg => self.invalid(fl),
            Val::Inf => b,
            Val::Fin { e, sig } => {
                *fl |= d;
                let n = 64 - sig.leading_zeros();
                // An even shift to about 124 bits, and an even exponent.
                let mut sh = 124 - n;
                if (e - sh as i32) % 2 != 0 {
                    sh += 1;
                }
                let x = u128::from(sig) << sh;
                let r = isqrt(x);
                let r2 = r * r;
                self.pack(
                    false,
                    (r << 1) | u128::from(r2 != x),
                    (e - sh as i32) / 2 - 1,
                    m,
                    fl,
                )
            }
            Val::Nan => self.default_nan(),
        }
    }

    /// x86 min (`max` false) or max: the second operand for a NaN (IE,
    /// quiet or not) or for equal values (zeros of either sign).
    pub(crate) fn minmax(self, a: u64, b: u64, max: bool, m: u32, fl: &mut u32) -> u64 {
        let (a, b) = self.inputs(a, b, m, fl);
        if self.is_nan(a) || self.is_nan(b) {
            *fl |= IE;
            return b;
        }
        match self.cmp(a, b) {
            Some(std::cmp::Ordering::Less) if !max => a,
            Some(std::cmp::Ordering::Greater) if max => a,
            _ => b,
        }
    }

    /// The order of two non-NaN values (zeros equal).
    fn cmp(self, a: u64, b: u64) -> Option<std::cmp::Ordering> {
        if self.is_nan(a) || self.is_nan(b) {
            return None;
        }
        let key = |x: u64| -> i128 {
            let mag = i128::from(x & !self.sign_bit());
            if self.neg(x) {
                -mag
            } else {
                mag
            }
        };
        Some(key(a).cmp(&key(b)))
    }

    /// cmpss/cmpps predicate `pred` (0..7): EQ LT LE UNORD NEQ NLT NLE ORD.
    /// LT, LE, NLT, NLE signal IE on a QNaN too.
    pub(crate) fn compare(self, a: u64, b: u64, pred: u8, m: u32, fl: &mut u32) -> bool {
        use std::cmp::Ordering::{Equal, Less};
        let (a, b) = self.inputs(a, b, m, fl);
        let signaling = matches!(pred & 7, 1 | 2 | 5 | 6);
        let nan = self.is_nan(a) || self.is_nan(b);
        if self.is_snan(a) || self.is_snan(b) || (nan && signaling) {
            *fl |= IE;
        }
        let o = self.cmp(a, b);
        match pred & 7 {
            0 => o == Some(Equal),
            1 => o == Some(Less),
            2 => matches!(o, Some(Less | Equal)),
            3 => o.is_none(),
            4 => o != Some(Equal),
            5 => o != Some(Less),
            6 => !matches!(o, Some(Less | Equal)),
            _ => o.is_some(),
        }
    }

    /// comis/ucomis: the ZF, PF, CF values (RFLAGS positions); `signal`:
    /// a QNaN is invalid too (comis).
    pub(crate) fn comi(self, a: u64, b: u64, signal: bool, m: u32, fl: &mut u32) -> u64 {
        use crate::arch::flags::{CF, PF, ZF};
        let (a, b) = self.inputs(a, b, m, fl);
        let nan = self.is_nan(a) || self.is_nan(b);
        if self.is_snan(a) || self.is_snan(b) || (nan && signal) {
            *fl |= IE;
        }
        match self.cmp(a, b) {
            None => ZF | PF | CF,
            Some(std::cmp::Ordering::Less) => CF,
            Some(std::cmp::Ordering::Equal) => ZF,
            Some(std::cmp::Ordering::Greater) => 0,
        }
    }

    /// Converts `x` of this format to format `to`.
    pub(crate) fn convert(self, to: Fmt, x: u64, m: u32, fl: &mut u32) -> u64 {
        let x = self.input(x, m, fl);
        let neg = self.neg(x);
        match self.val(x) {
            Val::Nan => {
                if self.is_snan(x) {
                    *fl |= IE;
                }
                let frac = x & self.frac_mask();
                let frac = if to.mb >= self.mb {
                    frac << (to.mb - self.mb)
                } else {
                    frac >> (self.mb - to.mb)
                };
                to.quiet(to.signed(neg, (to.exp_all() << to.mb) | frac))
            }
            Val::Inf => to.inf(neg),
            Val::Zero => to.zero(neg),
            Val::Fin { e, sig } => to.pack(neg, u128::from(sig), e, m, fl),
        }
    }

    /// A signed integer to this format.
    pub(crate) fn of_int(self, v: i64, m: u32, fl: &mut u32) -> u64 {
        self.pack(v < 0, u128::from(v.unsigned_abs()), 0, m, fl)
    }

    /// This format to a `bits`-bit signed integer (32 or 64), rounded by
    /// `rc`; NaN, infinity and out of range give the integer indefinite and
    /// IE. DAZ applies; DE is not reported.
    pub(crate) fn to_int(self, x: u64, bits: u32, rc: Round, m: u32, fl: &mut u32) -> u64 {
        let mut ignore = 0;
        let x = self.input(x, m, &mut ignore);
        let indefinite = 1u64 << (bits - 1);
        let neg = self.neg(x);
        let (e, sig) = match self.val(x) {
            Val::Zero => return 0,
            Val::Fin { e, sig } => (e, sig),
            _ => {
                *fl |= IE;
                return indefinite;
            }
        };
        let (mag, inexact) = if e >= 0 {
            if e > 64 {
                *fl |= IE;
                return indefinite;
            }
            (u128::from(sig) << e, false)
        } else {
            round_shift(u128::from(sig), (-e) as u32, neg, rc)
        };
        let limit = if neg {
            1u128 << (bits - 1)
        } else {
            (1u128 << (bits - 1)) - 1
        };
        if mag > limit {
            *fl |= IE;
            return indefinite;
        }
        if inexact {
            *fl |= PE;
        }
        let v = if neg {
            (mag as u64).wrapping_neg()
        } else {
            mag as u64
        };
        if bits == 32 {
            v & 0xffff_ffff
        } else {
            v
        }
    }

    /// roundss/roundps: `x` rounded to an integral value by `rc`; PE when
    /// inexact unless `quiet_pe`. DAZ applies; DE is not reported.
    pub(crate) fn round_int(self, x: u64, rc: Round, quiet_pe: bool, m: u32, fl: &mut u32) -> u64 {
        let mut ignore = 0;
        let x = self.input(x, m, &mut ignore);
        let neg = self.neg(x);
        match self.val(x) {
            Val::Nan => self.nan2(x, x, fl),
            Val::Fin { e, sig } if e < 0 => {
                let (q, inexact) = round_shift(u128::from(sig), (-e) as u32, neg, rc);
                if inexact && !quiet_pe {
                    *fl |= PE;
                }
                let mut none = 0;
                self.pack(neg, q, 0, m & !crate::fpu::mxcsr::FTZ, &mut none)
            }
            _ => x,
        }
    }
}

/// x >> sh, with the bits shifted out ORed into bit 0.
fn sticky_shr(x: u128, sh: u32) -> u128 {
    if sh == 0 {
        x
    } else if sh >= 128 {
        u128::from(x != 0)
    } else {
        (x >> sh) | u128::from(x & ((1u128 << sh) - 1) != 0)
    }
}

/// x >> sh rounded by `rc` for a value of sign `neg`, and whether bits
/// were lost. Works for any `sh` (x has at most 126 bits).
fn round_shift(x: u128, sh: u32, neg: bool, rc: Round) -> (u128, bool) {
    if sh == 0 {
        return (x, false);
    }
    let (x, sh) = if sh >= 127 {
        (u128::from(x != 0), 2)
    } else {
        (x, sh)
    };
    let q = x >> sh;
    let rem = x & ((1u128 << sh) - 1);
    if rem == 0 {
        return (q, false);
    }
    let half = 1u128 << (sh - 1);
    let up = match rc {
        Round::Nearest => rem > half || (rem == half && q & 1 == 1),
        Round::Zero => false,
        Round::Down => neg,
        Round::Up => !neg,
    };
    (q + u128::from(up), true)
}

/// floor(sqrt(x)).
fn isqrt(x: u128) -> u128 {
    let mut r: u128 = 0;
    let mut bit: u128 = 1 << 126;
    let mut x = x;
    while bit > x {
        bit >>= 2;
    }
    while bit != 0 {
        if x >= r + bit {
            x -= r + bit;
            r = (r >> 1) + bit;
        } else {
            r >>= 1;
        }
        bit >>= 2;
    }
    r
}
