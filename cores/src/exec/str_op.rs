//! One iteration of a string instruction (movs, stos, lods, cmps, scas).

use super::{canonical, Cpu, Env, Flow, F, RAX};
use crate::alu;
use crate::arch::flags::DF;
use crate::mem::GuestMemory;
use crate::uop::{fl, Uop};

const RSI: usize = 6;
const RDI: usize = 7;

impl Cpu {
    /// Runs one iteration of the string uop `u`; RSI/RDI move only if it
    /// completes (so a fault leaves them at the faulting element).
    pub(super) fn string(&mut self, u: &Uop, mem: &mut dyn GuestMemory, env: &Env<'_>) -> Flow {
        let s = u.size;
        let a32 = u.aux & 8 != 0;
        let amask = if a32 { 0xffff_ffff } else { u64::MAX };
        let src = (self.r[RSI] & amask).wrapping_add(self.r[usize::from(u.fl & 31)]);
        let dst = self.r[RDI] & amask;
        let step = if self.r[F] & DF != 0 {
            u64::from(s).wrapping_neg()
        } else {
            u64::from(s)
        };
        let uses_src = matches!(u.aux & 7, 0 | 2 | 3);
        let uses_dst = matches!(u.aux & 7, 0 | 1 | 3 | 4);
        if (uses_src && !canonical(src)) || (uses_dst && !canonical(dst)) {
            return Flow::Gp;
        }
        let mut smc = false;
        let r = match u.aux & 7 {
            0 => mem
                .load(src, s)
                .and_then(|v| mem.store(dst, s, v))
                .map(|_| smc = self.note_store(env, dst, s)),
            1 => mem
                .store(dst, s, self.r[RAX])
                .map(|_| smc = self.note_store(env, dst, s)),
            2 => mem.load(src, s).map(|v| self.wb(0, s, v)),
            3 => mem
                .load(src, s)
                .and_then(|x| mem.load(dst, s).map(|y| (x, y)))
                .map(|(x, y)| {
                    self.setfl(fl::ALL, alu::sub(s, x, y, 0).1);
                }),
            _ => mem
                .load(dst, s)
                .map(|y| self.setfl(fl::ALL, alu::sub(s, self.r[RAX], y, 0).1)),
        };
        if let Err(pf) = r {
            return Flow::pf(pf);
        }
        let width = if a32 { 4 } else { 8 };
        if uses_src {
            self.wb(RSI as u8, width, self.r[RSI].wrapping_add(step));
        }
        if uses_dst {
            self.wb(RDI as u8, width, self.r[RDI].wrapping_add(step));
        }
        if smc {
            Flow::Smc
        } else {
            Flow::Next
        }
    }
}
