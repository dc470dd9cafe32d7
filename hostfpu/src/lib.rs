//! One x87 transcendental instruction (fsin, fcos, fsincos, fptan, fpatan,
//! f2xm1, fyl2x, fyl2xp1) executed on the host's FPU, so that a simulated
//! x87 gives the host's bit-exact results.
//!
//! **Owns** nothing: each call starts from an empty x87 stack (`fninit`),
//! loads the control word given and the operands, executes exactly one
//! instruction, reads FSW, clears the exceptions (`fnclex`, so that an
//! unmasked one never becomes the host's #MF: its response, such as a
//! bias-adjusted result, is already in the register), reads the results,
//! and restores the caller's control word and an empty stack (the x86-64
//! ABI's requirements).
//!
//! **Depends on** nothing. On targets other than x86-64 the results are
//! computed through `f64` (correct to about 53 bits, the status word
//! approximated as PE only): documented as not bit-exact.
//!
//! **Errors**: none; every input gives a result.

/// The outcome of one instruction.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Out {
    /// ST(0) after the instruction (80 bits in the low bits).
    pub st0: u128,
    /// ST(1) after the instruction (fsincos, fptan: the first result).
    pub st1: u128,
    /// The host's FSW after the instruction (exception flags, C1, C2).
    pub fsw: u16,
}

/// The instruction `op` (0 fsin, 1 fcos, 2 fsincos, 3 fptan, 4 fpatan,
/// 5 f2xm1, 6 fyl2x, 7 fyl2xp1) with control word `fcw` on ST(0) = `a`
/// and ST(1) = `b` (two-operand ones). For the pushing ones (2, 3) `st0`
/// is the new ST(0) (cos, 1.0) and `st1` the new ST(1) (sin, tan); for
/// the popping ones (4, 6, 7) `st0` is the result.
pub fn trans(op: u8, fcw: u16, a: u128, b: u128) -> Out {
    imp::trans(op, fcw, a, b)
}

#[cfg(target_arch = "x86_64")]
mod imp {
    use super::Out;
    use std::arch::asm;

    #[repr(C)]
    struct Buf {
        a: [u8; 10],
        b: [u8; 10],
        r0: [u8; 10],
        r1: [u8; 10],
        fcw: u16,
        fsw: u16,
        save: u16,
    }

    fn bytes(v: u128) -> [u8; 10] {
        let mut o = [0u8; 10];
        o.copy_from_slice(&v.to_le_bytes()[..10]);
        o
    }

    fn val(b: &[u8; 10]) -> u128 {
        let mut o = [0u8; 16];
        o[..10].copy_from_slice(b);
        u128::from_le_bytes(o)
    }

    macro_rules! one {
        ($p:expr, $insn:literal, $two:literal, $res2:literal) => {
            // SAFETY: `$p` points to a live, exclusively borrowed `Buf`
            // (offsets as laid out by repr(C)); the sequence only touches
            // that buffer and the x87 state, which it leaves as the ABI
            // requires (empty stack, the caller's control word restored).
            unsafe {
                asm!(
                    "fnstcw [{p} + 44]",
                    "fninit",
                    "fldcw [{p} + 40]",
                    concat!($two, " tbyte ptr [{p} + 10]"),
                    "fld tbyte ptr [{p}]",
                    $insn,
                    "fnstsw word ptr [{p} + 42]",
                    "fnclex",
                    "fstp tbyte ptr [{p} + 20]",
                    concat!($res2, " tbyte ptr [{p} + 30]"),
                    "fninit",
                    "fldcw [{p} + 44]",
                    p = in(reg) $p,
                    out("st(0)") _, out("st(1)") _, out("st(2)") _, out("st(3)") _,
                    out("st(4)") _, out("st(5)") _, out("st(6)") _, out("st(7)") _,
                    options(nostack),
                )
            }
        };
    }

    pub(super) fn trans(op: u8, fcw: u16, a: u128, b: u128) -> Out {
        let mut buf = Buf {
            a: bytes(a),
            b: bytes(b),
            r0: [0; 10],
            r1: [0; 10],
            fcw,
            fsw: 0,
            save: 0,
        };
        let p: *mut Buf = &mut buf;
        // "fld" of ST(1) for two-operand instructions, a harmless "fnop"
        // prefix form otherwise is not possible with a memory operand: the
        // one-operand forms load b too and leave it below (ignored).
        match op {
            0 => one!(p, "fsin", "fld", "fstp"),
            1 => one!(p, "fcos", "fld", "fstp"),
            2 => one!(p, "fsincos", "fld", "fstp"),
            3 => one!(p, "fptan", "fld", "fstp"),
            4 => one!(p, "fpatan", "fld", "fstp"),
            5 => one!(p, "f2xm1", "fld", "fstp"),
            6 => one!(p, "fyl2x", "fld", "fstp"),
            _ => one!(p, "fyl2xp1", "fld", "fstp"),
        }
        Out {
            st0: val(&buf.r0),
            st1: val(&buf.r1),
            fsw: buf.fsw,
        }
    }
}

#[cfg(not(target_arch = "x86_64"))]
mod imp {
    use super::Out;

    fn to_f64(v: u128) -> f64 {
        let neg = (v >> 79) & 1 == 1;
        let e = ((v >> 64) & 0x7fff) as i32;
        let s = v as u64;
        let m = if e == 0x7fff {
            if s << 1 == 0 {
                f64::INFINITY
            } else {
                f64::NAN
            }
        } else {
            (s as f64) * 2f64.powi(e - 16383 - 63)
        };
        if neg {
            -m
        } else {
            m
        }
    }

    fn from_f64(x: f64) -> u128 {
        let b = x.to_bits();
        let neg = u128::from(b >> 63);
        let e = ((b >> 52) & 0x7ff) as i32;
        let f = b & ((1 << 52) - 1);
        let (e, s) = match e {
            0 if f == 0 => (0, 0),
            0 => {
                let lz = f.leading_zeros() as i32;
                (1 - 1023 - (lz - 11) + 16383, f << lz)
            }
            0x7ff => (0x7fff, (1 << 63) | (f << 11)),
            _ => (e - 1023 + 16383, (1 << 63) | (f << 11)),
        };
        (neg << 79) | ((e as u128) << 64) | u128::from(s)
    }

    pub(super) fn trans(op: u8, _fcw: u16, a: u128, b: u128) -> Out {
        let (x, y) = (to_f64(a), to_f64(b));
        let (r0, r1) = match op {
            0 => (x.sin(), 0.0),
            1 => (x.cos(), 0.0),
            2 => (x.cos(), x.sin()),
            3 => (1.0, x.tan()),
            4 => (y.atan2(x), 0.0),
            5 => (x.exp2() - 1.0, 0.0),
            6 => (y * x.log2(), 0.0),
            _ => (y * x.ln_1p() / std::f64::consts::LN_2, 0.0),
        };
        Out {
            st0: from_f64(r0),
            st1: from_f64(r1),
            fsw: 0x20,
        }
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn fsin_of_zero_is_zero_and_fptan_pushes_one() {
        let one = (0x3fffu128 << 64) | (1 << 63);
        assert_eq!(super::trans(0, 0x37f, 0, 0).st0, 0);
        let t = super::trans(3, 0x37f, 0, 0);
        assert_eq!((t.st0, t.st1), (one, 0));
    }
}
