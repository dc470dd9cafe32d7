//! The x87 FPU → [`Family::X87`] uops ([`crate::simd::x87`] has the
//! encoding). Memory operands load into GPR temporaries first; stores
//! compute into temporaries, store, then commit (flags, pop); the
//! environment and state images (fnstenv, fldenv, fnsave, frstor) are
//! [`Family::State`] operations.

mod fop;

use super::vuop;
use crate::simd::x87::{fl, fop_bits, imm, rip_bits, X87Op, FIP, WAIT};
use crate::simd::Family;
use crate::translate::insn::{mem_ref, mem_uop, MemRef, Tr, Unsupported};
use crate::translate::Tx;
use crate::uop::{Op, Uop, FLAGS, SINK, ZERO};

const RAX: u8 = 0;
use iced_x86::{Instruction, Mnemonic, OpKind, Register};

/// An x87 uop: `imm` from [`imm`] plus the WAIT/FIP bits.
fn xuop(size: u8, dst: u8, a: u8, b: u8, bits: i64) -> Uop {
    let mut u = vuop(Family::X87, 0, size, dst, a, b, ZERO, 0);
    u.imm = bits;
    u
}

fn st_index(r: Register) -> Option<u8> {
    let n = (r as u32).checked_sub(Register::ST0 as u32)?;
    (n < 8).then_some(n as u8)
}

/// The ST(i) operands: (destination is ST(i), i).
fn st_pair(ins: &Instruction) -> Result<(bool, u8), Unsupported> {
    let regs: Vec<u8> = (0..ins.op_count())
        .filter(|&k| ins.op_kind(k) == OpKind::Register)
        .map(|k| st_index(ins.op_register(k)).ok_or(Unsupported))
        .collect::<Result<_, _>>()?;
    match regs.as_slice() {
        [] => Ok((false, 1)),
        [i] => Ok((false, *i)),
        [0, i] => Ok((false, *i)),
        [i, 0] => Ok((true, *i)),
        _ => Err(Unsupported),
    }
}

struct X<'t, 'a> {
    tx: &'t mut Tx<'a>,
    rip: i64,
    /// The instruction's RIP.
    ins_rip: u64,
    /// The FOP field.
    fop: i64,
    /// Whether the next x87 uop is the first (WAIT applies to it).
    first: bool,
    waiting: bool,
    /// The temporary holding the memory operand's offset (FDP), or ZERO.
    fdp: u8,
}

impl X<'_, '_> {
    /// Emits an x87 uop; `last`: the committing uop (records FIP when
    /// `fip`).
    #[allow(clippy::too_many_arguments)]
    fn op(&mut self, o: X87Op, i: u8, f: u8, sub: u8, size: u8, dst: u8, a: u8, b: u8, fip: bool) {
        let mut bits = imm(o, i, f, sub);
        if self.first && self.waiting {
            bits |= WAIT;
        }
        if fip {
            bits |= FIP | self.rip | self.fop;
        }
        self.first = false;
        let mut u = xuop(size, dst, a, b, bits);
        if fip {
            u.c = self.fdp;
        }
        self.tx.emit(u);
        if fip {
            self.fip_hi();
        }
    }

    /// The high half of FIP when the RIP field (sign-extended 32 bits)
    /// does not hold it.
    fn fip_hi(&mut self) {
        let rip = self.ins_rip;
        if i64::from(rip as i32) != rip as i64 {
            let hi = (rip & !0xffff_ffff) as i64;
            self.tx
                .emit(xuop(8, SINK, ZERO, ZERO, imm(X87Op::FipHi, 0, 0, 0) | hi));
        }
    }

    /// A one-uop register-only non-control instruction.
    fn simple(&mut self, o: X87Op, i: u8, f: u8, sub: u8) -> Tr {
        self.op(o, i, f, sub, 8, SINK, ZERO, ZERO, true);
        Ok(false)
    }

    /// The #MF check of a waiting instruction's first uop, as a uop of its
    /// own when memory uops come before the first x87 uop (a pending #MF
    /// comes before the operand's page fault).
    fn pending_first(&mut self) {
        if self.first && self.waiting {
            self.op(X87Op::Nop, 0, 0, 0, 8, SINK, ZERO, ZERO, false);
        }
    }

    /// The stores of an m80 result (`fstp m80`, op `o`): probed for
    /// writing before the old contents (which an unmasked exception
    /// stores back) are read, so a fault is a write's. With AMD's choice
    /// both parts are probed before either is stored, and nothing is
    /// written when the second page faults; with Intel's
    /// ([`crate::translate::Quirks::m80_store_low_first`]) the low 8 bytes
    /// are stored before the top two are probed.
    fn store_m80(&mut self, o: X87Op, m: &MemRef) {
        self.pending_first();
        let hi_ref = m.offset(8);
        self.tx.emit(mem_uop(Op::ProbeW, 8, m));
        let (lo, hi) = (self.tx.tmp(), self.tx.tmp());
        if self.tx.quirks.m80_store_low_first {
            let (old_lo, _) = self.load(m, 8);
            self.op(o, 0, 0, 0, 10, lo, old_lo, ZERO, false);
            self.tx.store(m, 8, lo);
            self.tx.emit(mem_uop(Op::ProbeW, 2, &hi_ref));
            let old_hi = self.tx.load(&hi_ref, 2);
            self.op(o, 0, 0, 1, 10, hi, ZERO, old_hi, false);
            self.tx.store(&hi_ref, 2, hi);
        } else {
            self.tx.emit(mem_uop(Op::ProbeW, 2, &hi_ref));
            let (old_lo, old_hi) = self.load(m, 10);
            self.op(o, 0, 0, 0, 10, lo, old_lo, old_hi, false);
            self.op(o, 0, 0, 1, 10, hi, old_lo, old_hi, false);
            self.tx.store(&hi_ref, 2, hi);
            self.tx.store(m, 8, lo);
        }
    }

    /// Loads a memory source of `size` bytes: (a, b) temporaries (and the
    /// operand's offset for FDP).
    fn load(&mut self, m: &MemRef, size: u8) -> (u8, u8) {
        self.pending_first();
        let t = self.tx.tmp();
        let mut lea = mem_uop(Op::Lea, 8, m);
        lea.dst = t;
        self.tx.emit(lea);
        self.fdp = t;
        if size == 10 {
            let lo = self.tx.load(m, 8);
            let hi = self.tx.load(&m.offset(8), 2);
            (lo, hi)
        } else {
            (self.tx.load(m, size), ZERO)
        }
    }
}

fn mem_size(ins: &Instruction) -> u8 {
    u8::try_from(ins.memory_size().size()).unwrap_or(0)
}

pub(super) fn translate(tx: &mut Tx<'_>, ins: &Instruction) -> Option<Tr> {
    use Mnemonic as M;
    let mn = ins.mnemonic();
    let nowait = matches!(
        mn,
        M::Fninit
            | M::Fnclex
            | M::Fnstcw
            | M::Fnstsw
            | M::Fnstenv
            | M::Fnsave
            | M::Fneni
            | M::Fndisi
            | M::Fnsetpm
    );
    if !is_x87(mn) {
        return None;
    }
    let mut x = X {
        tx,
        rip: rip_bits(ins.ip()),
        ins_rip: ins.ip(),
        fop: fop_bits(fop::fop(ins)),
        first: true,
        waiting: !nowait,
        fdp: ZERO,
    };
    Some(body(&mut x, ins))
}

/// Whether `mn` is an x87 mnemonic this module translates (the ones
/// without an arm here, like the FXSAVE family, are not x87).
fn is_x87(mn: Mnemonic) -> bool {
    use Mnemonic as M;
    arith_kind(mn).is_some()
        || matches!(
            mn,
            M::Wait
                | M::Fneni
                | M::Fndisi
                | M::Fnsetpm
                | M::Fnop
                | M::Fninit
                | M::Finit
                | M::Fnclex
                | M::Fclex
                | M::Fldcw
                | M::Fnstcw
                | M::Fstcw
                | M::Fnstsw
                | M::Fstsw
                | M::Fnstenv
                | M::Fstenv
                | M::Fldenv
                | M::Fnsave
                | M::Fsave
                | M::Frstor
                | M::Fld
                | M::Fild
                | M::Fld1
                | M::Fldl2t
                | M::Fldl2e
                | M::Fldpi
                | M::Fldlg2
                | M::Fldln2
                | M::Fldz
                | M::Fst
                | M::Fstp
                | M::Fist
                | M::Fistp
                | M::Fisttp
                | M::Fcom
                | M::Fcomp
                | M::Fcompp
                | M::Fucom
                | M::Fucomp
                | M::Fucompp
                | M::Ficom
                | M::Ficomp
                | M::Fcomi
                | M::Fcomip
                | M::Fucomi
                | M::Fucomip
                | M::Ftst
                | M::Fxam
                | M::Fxch
                | M::Fchs
                | M::Fabs
                | M::Fsqrt
                | M::Frndint
                | M::Fscale
                | M::Fxtract
                | M::Fprem
                | M::Fprem1
                | M::Fcmovb
                | M::Fcmove
                | M::Fcmovbe
                | M::Fcmovu
                | M::Fcmovnb
                | M::Fcmovne
                | M::Fcmovnbe
                | M::Fcmovnu
                | M::Ffree
                | M::Ffreep
                | M::Fincstp
                | M::Fdecstp
                | M::Fsin
                | M::Fcos
                | M::Fsincos
                | M::Fptan
                | M::Fpatan
                | M::F2xm1
                | M::Fyl2x
                | M::Fyl2xp1
        )
}

/// Arithmetic kinds of [`X87Op::Arith`].
fn arith_kind(mn: Mnemonic) -> Option<(u8, bool)> {
    use Mnemonic as M;
    Some(match mn {
        M::Fadd | M::Fiadd => (0, false),
        M::Faddp => (0, true),
        M::Fmul | M::Fimul => (1, false),
        M::Fmulp => (1, true),
        M::Fsub | M::Fisub => (2, false),
        M::Fsubp => (2, true),
        M::Fsubr | M::Fisubr => (3, false),
        M::Fsubrp => (3, true),
        M::Fdiv | M::Fidiv => (4, false),
        M::Fdivp => (4, true),
        M::Fdivr | M::Fidivr => (5, false),
        M::Fdivrp => (5, true),
        _ => return None,
    })
}

fn is_int_op(mn: Mnemonic) -> bool {
    use Mnemonic as M;
    matches!(
        mn,
        M::Fiadd | M::Fimul | M::Fisub | M::Fisubr | M::Fidiv | M::Fidivr | M::Ficom | M::Ficomp
    )
}

/// The translation proper: one arm per instruction group (long by nature:
/// the mnemonic table).
fn body(x: &mut X<'_, '_>, ins: &Instruction) -> Tr {
    use Mnemonic as M;
    use X87Op as O;
    let mn = ins.mnemonic();
    let has_mem = (0..ins.op_count()).any(|k| ins.op_kind(k) == OpKind::Memory);
    if let Some((kind, pop)) = arith_kind(mn) {
        if has_mem {
            let m = mem_ref(ins)?;
            let size = mem_size(ins);
            let (a, _) = x.load(&m, size);
            let f = fl::MEM | if is_int_op(mn) { fl::INT } else { 0 };
            x.op(O::Arith, 0, f, kind, size, SINK, a, ZERO, true);
            return Ok(false);
        }
        let (toi, i) = if pop && ins.op_count() == 0 {
            (true, 1)
        } else {
            st_pair(ins)?
        };
        let f = if toi { fl::TOI } else { 0 } | if pop { fl::POP } else { 0 };
        return x.simple(O::Arith, i, f, kind);
    }
    match mn {
        M::Wait => {
            x.op(O::Nop, 0, 0, 0, 8, SINK, ZERO, ZERO, false);
        }
        M::Fnop => return x.simple(O::Nop, 0, 0, 0),
        // 8087/287 controls: no-ops since the 387 (no FIP, no wait).
        M::Fneni | M::Fndisi | M::Fnsetpm => x.op(O::Nop, 0, 0, 0, 8, SINK, ZERO, ZERO, false),
        M::Fninit | M::Finit => x.op(O::Init, 0, 0, 0, 8, SINK, ZERO, ZERO, false),
        M::Fnclex | M::Fclex => x.op(O::Clex, 0, 0, 0, 8, SINK, ZERO, ZERO, false),
        M::Fldcw => {
            let m = mem_ref(ins)?;
            let (t, _) = x.load(&m, 2);
            x.op(O::Ldcw, 0, 0, 0, 2, SINK, t, ZERO, false);
        }
        M::Fnstcw | M::Fstcw => {
            let m = mem_ref(ins)?;
            let t = x.tx.tmp();
            x.op(O::Stcw, 0, 0, 0, 8, t, ZERO, ZERO, false);
            x.tx.store(&m, 2, t);
        }
        M::Fnstsw | M::Fstsw => {
            if has_mem {
                let m = mem_ref(ins)?;
                let t = x.tx.tmp();
                x.op(O::Stsw, 0, 0, 0, 8, t, ZERO, ZERO, false);
                x.tx.store(&m, 2, t);
            } else {
                x.op(O::Stsw, 0, 0, 0, 2, RAX, RAX, ZERO, false);
            }
        }
        M::Fnstenv | M::Fstenv | M::Fldenv | M::Fnsave | M::Fsave | M::Frstor => {
            return super::state::env(x.tx, ins, x.waiting);
        }
        M::Fld | M::Fild => {
            if has_mem {
                let m = mem_ref(ins)?;
                let size = mem_size(ins);
                let (a, b) = x.load(&m, size);
                let o = if mn == M::Fild { O::LdI } else { O::LdF };
                x.op(o, 0, 0, 0, size, SINK, a, b, true);
            } else {
                let (_, i) = st_pair(ins)?;
                return x.simple(O::LdSt, i, 0, 0);
            }
        }
        M::Fld1 => return x.simple(O::LdConst, 0, 0, 0),
        M::Fldl2t => return x.simple(O::LdConst, 0, 0, 1),
        M::Fldl2e => return x.simple(O::LdConst, 0, 0, 2),
        M::Fldpi => return x.simple(O::LdConst, 0, 0, 3),
        M::Fldlg2 => return x.simple(O::LdConst, 0, 0, 4),
        M::Fldln2 => return x.simple(O::LdConst, 0, 0, 5),
        M::Fldz => return x.simple(O::LdConst, 0, 0, 6),
        M::Fst | M::Fstp | M::Fist | M::Fistp | M::Fisttp => {
            let pop = matches!(mn, M::Fstp | M::Fistp | M::Fisttp);
            let pf = if pop { fl::POP } else { 0 };
            if !has_mem {
                if !matches!(mn, M::Fst | M::Fstp) {
                    return Err(Unsupported);
                }
                let i = ins.op_register(0);
                let i = st_index(i).ok_or(Unsupported)?;
                return x.simple(O::StSt, i, pf, 0);
            }
            let m = mem_ref(ins)?;
            let size = mem_size(ins);
            let (o, sub) = match mn {
                M::Fst | M::Fstp => (O::StF, 0),
                M::Fisttp => (O::StI, 1),
                _ => (O::StI, 0),
            };
            if size == 10 {
                x.store_m80(o, &m);
            } else {
                x.pending_first();
                // Probed for writing before the old contents (stored back
                // by an unmasked exception) are read: a fault is a write's.
                x.tx.emit(mem_uop(Op::ProbeW, size, &m));
                let (old, _) = x.load(&m, size);
                let t = x.tx.tmp();
                x.op(o, 0, 0, sub, size, t, old, ZERO, false);
                x.tx.store(&m, size, t);
            }
            x.op(o, 0, fl::COMMIT | pf, sub, size, SINK, ZERO, ZERO, true);
        }
        M::Fcom
        | M::Fcomp
        | M::Fcompp
        | M::Fucom
        | M::Fucomp
        | M::Fucompp
        | M::Ficom
        | M::Ficomp => {
            let pops = match mn {
                M::Fcompp | M::Fucompp => 2,
                M::Fcomp | M::Fucomp | M::Ficomp => 1,
                _ => 0,
            };
            let un = if matches!(mn, M::Fucom | M::Fucomp | M::Fucompp) {
                fl::UNORD
            } else {
                0
            };
            if has_mem {
                let m = mem_ref(ins)?;
                let size = mem_size(ins);
                let (a, _) = x.load(&m, size);
                let f = fl::MEM | un | if is_int_op(mn) { fl::INT } else { 0 };
                x.op(O::Com, 0, f, pops, size, SINK, a, ZERO, true);
            } else {
                let (_, i) = st_pair(ins)?;
                return x.simple(O::Com, i, un, pops);
            }
        }
        M::Fcomi | M::Fcomip | M::Fucomi | M::Fucomip => {
            let pops = u8::from(matches!(mn, M::Fcomip | M::Fucomip));
            let un = if matches!(mn, M::Fucomi | M::Fucomip) {
                fl::UNORD
            } else {
                0
            };
            let (_, i) = st_pair(ins)?;
            let mut bits = imm(O::Comi, i, un, pops) | FIP | x.rip | x.fop;
            if x.waiting {
                bits |= WAIT;
            }
            let mut u = xuop(8, SINK, ZERO, ZERO, bits);
            u.fl = crate::uop::fl::ALL;
            x.tx.emit(u);
            x.fip_hi();
        }
        M::Ftst => return x.simple(O::Tst, 0, 0, 0),
        M::Fxam => return x.simple(O::Xam, 0, 0, 0),
        M::Fxch => {
            let (_, i) = st_pair(ins)?;
            return x.simple(O::Xch, i, 0, 0);
        }
        M::Fchs => return x.simple(O::Chs, 0, 0, 0),
        M::Fabs => return x.simple(O::Abs, 0, 0, 0),
        M::Fsqrt => return x.simple(O::Sqrt, 0, 0, 0),
        M::Frndint => return x.simple(O::Rndint, 0, 0, 0),
        M::Fscale => return x.simple(O::Scale, 0, 0, 0),
        M::Fxtract => return x.simple(O::Xtract, 0, 0, 0),
        M::Fprem => return x.simple(O::Prem, 0, 0, 0),
        M::Fprem1 => return x.simple(O::Prem, 0, 0, 1),
        M::Fcmovb
        | M::Fcmove
        | M::Fcmovbe
        | M::Fcmovu
        | M::Fcmovnb
        | M::Fcmovne
        | M::Fcmovnbe
        | M::Fcmovnu => {
            let cond = match mn {
                M::Fcmovb => 0,
                M::Fcmove => 1,
                M::Fcmovbe => 2,
                M::Fcmovu => 3,
                M::Fcmovnb => 4,
                M::Fcmovne => 5,
                M::Fcmovnbe => 6,
                _ => 7,
            };
            let (_, i) = st_pair(ins)?;
            x.op(O::Cmov, i, 0, cond, 8, SINK, FLAGS, ZERO, true);
        }
        M::Ffree => {
            let i = st_index(ins.op_register(0)).ok_or(Unsupported)?;
            return x.simple(O::Free, i, 0, 0);
        }
        M::Ffreep => {
            let i = st_index(ins.op_register(0)).ok_or(Unsupported)?;
            x.op(O::Free, i, 0, 0, 8, SINK, ZERO, ZERO, false);
            x.op(O::Incstp, 0, 0, 0, 8, SINK, ZERO, ZERO, true);
        }
        M::Fincstp => return x.simple(O::Incstp, 0, 0, 0),
        M::Fdecstp => return x.simple(O::Decstp, 0, 0, 0),
        M::Fsin => return x.simple(O::Trans, 0, 0, 0),
        M::Fcos => return x.simple(O::Trans, 0, 0, 1),
        M::Fsincos => return x.simple(O::Trans, 0, 0, 2),
        M::Fptan => return x.simple(O::Trans, 0, 0, 3),
        M::Fpatan => return x.simple(O::Trans, 0, 0, 4),
        M::F2xm1 => return x.simple(O::Trans, 0, 0, 5),
        M::Fyl2x => return x.simple(O::Trans, 0, 0, 6),
        M::Fyl2xp1 => return x.simple(O::Trans, 0, 0, 7),
        _ => return Err(Unsupported),
    }
    Ok(false)
}
