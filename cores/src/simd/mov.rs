//! [`super::Family::Mov`]: moves between XMM registers, GPRs and memory
//! (through GPR temporaries), and MXCSR access.

use super::{imm8_of, op_of, vector, Exc, VecCtx};
use crate::fpu::mxcsr;
use crate::uop::Uop;

/// The operations of the move family.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(u16)]
pub(crate) enum MovOp {
    /// v[dst] = zero-extended low `size` bytes of g[a].
    FromGpr = 0,
    /// v[dst] = g[a] | g[b] << 64.
    FromGpr2 = 1,
    /// g[dst] = `size` bytes of v[a] starting at 64-bit lane imm8
    /// (zero-extended into a temporary, merged per x86 rules into a GPR).
    ToGpr = 2,
    /// v[dst] = v[a].
    Copy = 3,
    /// v[dst] = v[a] with its low `size` bytes from v[b] (movss/movsd
    /// between registers).
    MergeLo = 4,
    /// v[dst] = v[a] with 64-bit lane imm8 replaced by g[b].
    Insert64 = 5,
    /// v[dst] = low `size` bytes of v[a], zero-extended (movq xmm, xmm).
    ZextLo = 6,
    /// MXCSR = g[a] (#GP(0) if a reserved bit is set).
    Ldmxcsr = 7,
    /// g[dst] = MXCSR (4 bytes).
    Stmxcsr = 8,
}

impl MovOp {
    pub(crate) const fn id(self) -> u16 {
        self as u16
    }
}

fn low_mask(size: u8) -> u128 {
    if size >= 16 {
        u128::MAX
    } else {
        (1u128 << (8 * u32::from(size))) - 1
    }
}

pub(super) fn exec(x: &mut VecCtx<'_>, u: &Uop) -> Result<(), Exc> {
    let op = op_of(u);
    match op {
        0 => {
            let v = u128::from(x.g(u.a)) & low_mask(u.size);
            x.set_v(u.dst, v);
        }
        1 => {
            let v = u128::from(x.g(u.a)) | (u128::from(x.g(u.b)) << 64);
            x.set_v(u.dst, v);
        }
        2 => {
            let lane = u32::from(imm8_of(u) & 1);
            let v = (x.v(u.a) >> (64 * lane)) as u64;
            let v = v & (low_mask(u.size.min(8)) as u64);
            x.set_g(u.dst, u.size.min(8), v);
        }
        3 => {
            let v = x.v(u.a);
            x.set_v(u.dst, v);
        }
        4 => {
            let m = low_mask(u.size);
            let v = (x.v(u.a) & !m) | (x.v(u.b) & m);
            x.set_v(u.dst, v);
        }
        5 => {
            let sh = 64 * u32::from(imm8_of(u) & 1);
            let v = (x.v(u.a) & !(u128::from(u64::MAX) << sh)) | (u128::from(x.g(u.b)) << sh);
            x.set_v(u.dst, v);
        }
        6 => {
            let v = x.v(u.a) & low_mask(u.size);
            x.set_v(u.dst, v);
        }
        7 => {
            let v = x.g(u.a) as u32;
            if v & !mxcsr::WRITABLE != 0 {
                return Err(Exc(vector::GP));
            }
            x.fpu.mxcsr = v;
        }
        8 => {
            let v = u64::from(x.fpu.mxcsr);
            x.set_g(u.dst, 8, v);
        }
        _ => return Err(Exc(vector::UD)),
    }
    Ok(())
}
