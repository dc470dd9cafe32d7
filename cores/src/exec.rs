//! The uop executor: runs translated blocks on a register file.
//!
//! Faults are precise: a faulting instruction leaves the registers and
//! flags as they were before it (the translator's ordering rules plus the
//! per-instruction snapshot, see [`crate::translate`]) and no memory
//! written (one store per instruction, or a write probe first).
//!
//! Two paths run a block: the fast path ([`fast`]) executes all its uops
//! back to back when no instruction has a REP prefix and the budget covers
//! the whole block; the slow path goes instruction by instruction (budget
//! check before each, REP iterations counted one by one). A store into a
//! page holding translations ends the block after the storing instruction,
//! so the rest is re-translated from the new bytes.
//!
//! No allocation happens per instruction; registers live in one
//! `[u64; 32]` array and are copied to and from [`crate::ArchState`] once
//! per [`crate::FuncCore::run`].

mod fast;
mod str_op;

use crate::alu::{self, mask, sext};
use crate::arch::flags::{AF, CF, DF, FIXED1, OF, PF, SF, TF, USER_WRITABLE, ZF};
use crate::cache::CodePages;
use crate::cpuid::CpuidModel;
use crate::fpu::FpuState;
use crate::mem::{GuestMemory, MemStop, PageFault};
use crate::translate::Block;
use crate::uop::{expand_fl, InsnInfo, Op, Uop, FLAGS, FSBASE, GSBASE, IMM, NUM_REGS, NUM_VTEMPS};

const RAX: usize = 0;
const RCX: usize = 1;
const RDX: usize = 2;
const RBX: usize = 3;
const F: usize = FLAGS as usize;

/// RFLAGS bits of each compressed flag mask.
static FLMASK: [u64; 64] = {
    let mut t = [0u64; 64];
    let mut i = 0;
    while i < 64 {
        t[i] = expand_fl(i as u8);
        i += 1;
    }
    t
};

/// The register file of one context and the run's instruction count
/// (serialized whole: a few hundred bytes, and the temporaries need no
/// argument about whether they are live between runs).
#[derive(Clone, Debug, serde::Serialize, serde::Deserialize)]
pub(crate) struct Cpu {
    /// GPRs, temporaries, bases, RFLAGS (see [`crate::uop`]).
    pub r: [u64; NUM_REGS],
    /// Cycle counter value at the start of the current run.
    pub cycle_base: u64,
    /// Instructions executed in the current run.
    pub executed: u64,
    /// Code pages written by stores of the current instruction.
    pub smc_pages: Vec<u64>,
    /// `executed` when the current block was entered (rdtsc adds the
    /// instruction's index in the block).
    block_base: u64,
    /// Registers saved by the current instruction's `Snap` uop.
    saved: [u64; NUM_REGS],
    /// CR4.FSGSBASE ([`crate::ArchState::fsgsbase`]), loaded with the
    /// registers.
    pub fsgsbase: bool,
    /// Vector temporaries ([`crate::uop::VT0`]..).
    #[serde(default)]
    pub vt: [u128; NUM_VTEMPS as usize],
}

/// What the executor needs from its core besides registers and memory.
pub(crate) struct Env<'a> {
    /// The CPUID model.
    pub cpuid: &'a CpuidModel,
    /// Pages holding translations (for self-modifying code).
    pub code: &'a CodePages,
    /// Instruction budget of the run.
    pub max: u64,
    /// Announce each instruction to the memory
    /// ([`GuestMemory::insn_start`]): runs instruction by instruction.
    pub bounds: bool,
}

/// How a uop ends.
enum Flow {
    Next,
    /// Next, but the run must leave after this instruction: the uop wrote
    /// a page holding translations, or `popf` set TF (single-step starts
    /// at the next instruction, [`crate::debug`]).
    Smc,
    Jump(u64),
    /// Page fault (or non-canonical #GP) at this address with this
    /// [`PageFault::code`] (kept to 16 bytes).
    Pf(u64, u16),
    De,
    Gp,
    /// #SS(0): a non-canonical stack reference.
    Ss,
    Raise(u8, usize),
    /// An exception raised by a `Vec` uop ([`crate::simd`]): its vector.
    Exc(u8),
    Hlt,
    Syscall,
    /// Memory asked for the instruction to be retried (nothing happened).
    Retry,
}

impl Flow {
    /// A non-canonical address: #SS(0) when the reference is through the
    /// stack segment (RSP or RBP as base, in 64-bit mode whatever the
    /// ES/CS/SS/DS prefix, which it ignores), #GP(0) otherwise (an FS or GS
    /// prefix makes it an FS/GS reference).
    fn bad_address(u: &Uop) -> Self {
        if matches!(u.a, RSP_REG | RBP_REG) && !matches!(u.fl, FSBASE | GSBASE) {
            Flow::Ss
        } else {
            Flow::Gp
        }
    }

    fn pf(stop: MemStop) -> Self {
        match stop {
            MemStop::Fault(pf) => Flow::Pf(pf.addr, pf.code),
            MemStop::Retry => Flow::Retry,
        }
    }
}

/// How a block's execution ends.
#[derive(Debug)]
pub(crate) enum BlockExit {
    /// Continue at this RIP.
    Next(u64),
    /// The instruction budget ran out; RIP of the next instruction.
    Limit(u64),
    /// A fault at RIP `rip`.
    Fault {
        vector: u8,
        rip: u64,
        addr: u64,
        error_code: u32,
        detail: String,
    },
    /// hlt; RIP after it.
    Hlt(u64),
    /// syscall; RIP after it.
    Syscall(u64),
    /// Memory asked for a retry of the instruction at this RIP; nothing of
    /// it happened.
    Retry(u64),
}

/// Writes `v` to register `d` of `r` at `size` bytes (x86 merge and
/// zero-extend rules).
#[inline(always)]
pub(crate) fn write_reg(r: &mut [u64; NUM_REGS], d: u8, size: u8, v: u64) {
    // Indexed by size & 7 (8 maps to 0): bits kept, bits written.
    const KEEP: [u64; 8] = [0, !0xff, !0xffff, 0, 0, 0, 0, 0];
    const WRITE: [u64; 8] = [u64::MAX, 0xff, 0xffff, 0, 0xffff_ffff, 0, 0, 0];
    let d = ix(d);
    let k = usize::from(size & 7);
    r[d] = (r[d] & KEEP[k]) | (v & WRITE[k]);
}

#[inline(always)]
fn ix(r: u8) -> usize {
    usize::from(r & 31)
}

#[inline(always)]
fn cond(f: u64, cc: u8) -> bool {
    let sf_ne_of = ((f >> 7) ^ (f >> 11)) & 1 != 0;
    let r = match cc >> 1 {
        0 => f & OF != 0,
        1 => f & CF != 0,
        2 => f & ZF != 0,
        3 => f & (CF | ZF) != 0,
        4 => f & SF != 0,
        5 => f & PF != 0,
        6 => sf_ne_of,
        _ => f & ZF != 0 || sf_ne_of,
    };
    r ^ (cc & 1 != 0)
}

/// RSP and RBP as uop register numbers.
const RSP_REG: u8 = crate::arch::reg::RSP as u8;
const RBP_REG: u8 = crate::arch::reg::RBP as u8;

#[inline(always)]
fn canonical(a: u64) -> bool {
    (((a << 16) as i64) >> 16) as u64 == a
}

impl Cpu {
    /// A register file with everything zero but RFLAGS bit 1.
    pub fn new() -> Self {
        let mut r = [0u64; NUM_REGS];
        r[F] = FIXED1;
        Self {
            r,
            cycle_base: 0,
            executed: 0,
            smc_pages: Vec::new(),
            block_base: 0,
            saved: [0; NUM_REGS],
            fsgsbase: true,
            vt: [0; NUM_VTEMPS as usize],
        }
    }

    /// Writes `v` to register `d` at `size` bytes (x86 merge/zero-extend rules).
    #[inline(always)]
    pub fn wb(&mut self, d: u8, size: u8, v: u64) {
        write_reg(&mut self.r, d, size, v);
    }

    #[inline(always)]
    fn setfl(&mut self, m: u8, new: u64) {
        let m = FLMASK[usize::from(m & 63)];
        self.r[F] = (self.r[F] & !m) | (new & m);
    }

    #[inline(always)]
    fn b(&self, u: &Uop) -> u64 {
        if u.b == IMM {
            u.imm as u64
        } else {
            self.r[ix(u.b)]
        }
    }

    /// Effective address of a memory uop without the segment base.
    #[inline(always)]
    fn ea(&self, u: &Uop) -> u64 {
        let a = self.r[ix(u.a)]
            .wrapping_add(self.r[ix(u.c)] << (u.aux & 3))
            .wrapping_add(u.imm as u64);
        if u.aux & 4 != 0 {
            a & 0xffff_ffff
        } else {
            a
        }
    }

    #[inline(always)]
    fn addr(&self, u: &Uop) -> u64 {
        self.ea(u).wrapping_add(self.r[ix(u.fl)])
    }

    /// Records a store for self-modifying-code detection; true if it wrote
    /// a page holding translations.
    #[inline(always)]
    fn note_store(&mut self, env: &Env<'_>, addr: u64, size: u8) -> bool {
        let (p0, p1) = (addr >> 12, addr.wrapping_add(u64::from(size) - 1) >> 12);
        if !env.code.maybe(p0) && !env.code.maybe(p1) {
            return false;
        }
        let mut hit = false;
        for p in [p0, p1] {
            if env.code.contains(p) {
                hit = true;
                if !self.smc_pages.contains(&p) {
                    self.smc_pages.push(p);
                }
            }
        }
        hit
    }

    /// Cycle count as rdtsc at index `k` of the current block sees it.
    fn cycles(&self, k: u64) -> u64 {
        self.cycle_base.wrapping_add(self.block_base + k)
    }

    /// Runs `blk` from its first instruction.
    pub fn exec_block(
        &mut self,
        blk: &Block,
        mem: &mut dyn GuestMemory,
        env: &Env<'_>,
        fpu: &mut FpuState,
    ) -> BlockExit {
        self.block_base = self.executed;
        if !blk.has_rep && env.max - self.executed >= blk.insns.len() as u64 {
            if env.bounds {
                return self.exec_bounded(blk, mem, env, fpu);
            }
            return self.exec_fast(blk, mem, env, fpu);
        }
        self.exec_slow(blk, mem, env, fpu)
    }

    /// Instruction by instruction: for REP and for the budget's last block.
    fn exec_slow(
        &mut self,
        blk: &Block,
        mem: &mut dyn GuestMemory,
        env: &Env<'_>,
        fpu: &mut FpuState,
    ) -> BlockExit {
        for ins in &blk.insns {
            if self.executed >= env.max {
                return BlockExit::Limit(ins.rip);
            }
            if ins.rep != 0 {
                return self.exec_rep(blk, ins, mem, env, fpu);
            }
            if env.bounds {
                mem.insn_start(ins.rip);
            }
            let mut leave = false;
            for u in &blk.uops[usize::from(ins.start)..usize::from(ins.end)] {
                match self.exec_uop(u, mem, env, fpu) {
                    Flow::Next => {}
                    Flow::Smc => leave = true,
                    Flow::Jump(t) => {
                        self.executed += 1;
                        return BlockExit::Next(t);
                    }
                    Flow::Hlt => return self.retire_exit(BlockExit::Hlt(ins.next_rip())),
                    Flow::Syscall => return self.retire_exit(BlockExit::Syscall(ins.next_rip())),
                    f => return self.fault(blk, ins, f, fpu),
                }
            }
            self.executed += 1;
            if leave || !self.smc_pages.is_empty() {
                return BlockExit::Next(ins.next_rip());
            }
        }
        BlockExit::Next(blk.end_rip)
    }

    fn retire_exit(&mut self, e: BlockExit) -> BlockExit {
        self.executed += 1;
        e
    }

    fn fault(&mut self, blk: &Block, ins: &InsnInfo, f: Flow, fpu: &FpuState) -> BlockExit {
        // The instruction's `Snap` (its first uop) saved what must come back.
        match ins.snapshot {
            0 => {}
            1 => self.r[F] = self.saved[F],
            _ => self.r = self.saved,
        }
        self.smc_pages.clear();
        let (vector, addr, error_code, detail) = match f {
            Flow::Retry => return BlockExit::Retry(ins.rip),
            Flow::Pf(a, code) => {
                let pf = PageFault::from_code(a, code);
                (pf.vector(), a, pf.error_code(), pf.to_string())
            }
            Flow::De => (0, 0, 0, format!("#DE: divide error at {:#x}", ins.rip)),
            Flow::Gp => (13, 0, 0, format!("#GP(0) at {:#x}", ins.rip)),
            Flow::Ss => (12, 0, 0, format!("#SS(0) at {:#x}", ins.rip)),
            Flow::Raise(v, i) => (v, 0, 0, blk.details[i].clone()),
            Flow::Exc(v) => (v, 0, 0, crate::simd::detail(v, ins.rip, fpu)),
            _ => unreachable!("only faults reach here"),
        };
        BlockExit::Fault {
            vector,
            rip: ins.rip,
            addr,
            error_code,
            detail,
        }
    }

    /// A REP string instruction: one counted instruction per iteration.
    fn exec_rep(
        &mut self,
        blk: &Block,
        ins: &InsnInfo,
        mem: &mut dyn GuestMemory,
        env: &Env<'_>,
        fpu: &mut FpuState,
    ) -> BlockExit {
        let u = &blk.uops[usize::from(ins.start)];
        let cmask = if ins.rep_addr32 {
            0xffff_ffff
        } else {
            u64::MAX
        };
        let next = ins.rip + u64::from(ins.len);
        if self.r[RCX] & cmask == 0 {
            self.executed += 1;
            return BlockExit::Next(next);
        }
        loop {
            if env.bounds {
                mem.insn_start(ins.rip);
            }
            match self.exec_uop(u, mem, env, fpu) {
                Flow::Next | Flow::Smc => {}
                f => return self.fault(blk, ins, f, fpu),
            }
            let c = self.r[RCX].wrapping_sub(1);
            self.wb(1, if ins.rep_addr32 { 4 } else { 8 }, c);
            self.executed += 1;
            let zf = self.r[F] & ZF != 0;
            let stop_on_flags = u.aux & 7 >= 3 && ((ins.rep == 1 && !zf) || (ins.rep == 2 && zf));
            if c & cmask == 0 || stop_on_flags {
                return BlockExit::Next(next);
            }
            if self.executed >= env.max || !self.smc_pages.is_empty() {
                return BlockExit::Next(ins.rip);
            }
        }
    }

    /// Executes one uop. Long by nature: the uop set's dispatch table.
    #[inline(always)]
    fn exec_uop(
        &mut self,
        u: &Uop,
        mem: &mut dyn GuestMemory,
        env: &Env<'_>,
        fpu: &mut FpuState,
    ) -> Flow {
        let a = self.r[ix(u.a)];
        let s = u.size;
        match u.op {
            Op::Nop => {}
            Op::Pause => {
                if let Err(stop) = mem.pause() {
                    return Flow::pf(stop);
                }
            }
            Op::Fence => {
                if let Err(pf) = mem.fence() {
                    return Flow::pf(pf);
                }
            }
            Op::Snap => {
                if u.aux == 1 {
                    self.saved[F] = self.r[F];
                } else {
                    self.saved = self.r;
                }
            }
            Op::MovI => self.wb(u.dst, s, u.imm as u64),
            Op::Mov => self.wb(u.dst, s, a),
            Op::Zext => self.wb(u.dst, s, a & mask(u.aux)),
            Op::Sext => self.wb(u.dst, s, sext(a, u.aux)),
            Op::GetHi => self.r[ix(u.dst)] = (a >> 8) & 0xff,
            Op::PutHi => {
                let d = ix(u.dst);
                self.r[d] = (self.r[d] & !0xff00) | ((a & 0xff) << 8);
            }
            Op::Ld => {
                let addr = self.addr(u);
                if !canonical(addr) {
                    return Flow::bad_address(u);
                }
                match mem.load(addr, s) {
                    Ok(v) => self.wb(u.dst, s, v),
                    Err(MemStop::Fault(pf)) if u.aux & crate::uop::LD_FOR_WRITE != 0 => {
                        return Flow::Pf(pf.addr, pf.as_write().code)
                    }
                    Err(pf) => return Flow::pf(pf),
                }
            }
            Op::St => {
                let addr = self.addr(u);
                if !canonical(addr) {
                    return Flow::bad_address(u);
                }
                if let Err(pf) = mem.store(addr, s, self.r[ix(u.b)]) {
                    return Flow::pf(pf);
                }
                if self.note_store(env, addr, s) {
                    return Flow::Smc;
                }
            }
            Op::ProbeW => {
                let addr = self.addr(u);
                if !canonical(addr) {
                    return Flow::bad_address(u);
                }
                // The read half's fault is reported as the write it probes
                // for (error code W): a store's fault is a write fault.
                let r = match mem.load(addr, s) {
                    Err(MemStop::Fault(pf)) => Err(MemStop::Fault(pf.as_write())),
                    r => r.and_then(|v| mem.store(addr, s, v)),
                };
                match r {
                    Ok(()) => {}
                    Err(MemStop::Fault(pf)) => return Flow::Pf(pf.addr, pf.code),
                    Err(MemStop::Retry) => return Flow::Retry,
                }
            }
            Op::Lea => self.wb(u.dst, s, self.ea(u)),
            Op::Add | Op::Adc | Op::Sub | Op::Sbb => self.arith(u, a),
            Op::And | Op::Or | Op::Xor => {
                let b = self.b(u);
                let res = match u.op {
                    Op::And => a & b,
                    Op::Or => a | b,
                    _ => a ^ b,
                };
                self.wb(u.dst, s, res);
                if u.fl != 0 {
                    self.setfl(u.fl, alu::logic(s, res).1);
                }
            }
            Op::Inc | Op::Dec | Op::Neg => {
                let (res, f) = match u.op {
                    Op::Inc => alu::add(s, a, 1, 0),
                    Op::Dec => alu::sub(s, a, 1, 0),
                    _ => alu::sub(s, 0, a, 0),
                };
                self.wb(u.dst, s, res);
                self.setfl(u.fl, f);
            }
            Op::Not => self.wb(u.dst, s, !a),
            Op::Shl
            | Op::Shr
            | Op::Sar
            | Op::Rol
            | Op::Ror
            | Op::Rcl
            | Op::Rcr
            | Op::Shld
            | Op::Shrd => self.shift(u, a),
            Op::Mul | Op::ImulW | Op::Imul => self.mul(u, a),
            Op::Div | Op::Idiv => return self.div(u, a),
            Op::Bt | Op::Bts | Op::Btr | Op::Btc => self.bt(u, a),
            Op::BtAddr => {
                let bits = u64::from(s) * 8;
                let off = (sext(self.b(u), s) as i64) >> bits.trailing_zeros();
                self.wb(
                    u.dst,
                    8,
                    a.wrapping_add((off as u64).wrapping_mul(u64::from(s))),
                );
            }
            Op::Bsf | Op::Bsr | Op::Lzcnt | Op::Tzcnt | Op::Popcnt | Op::Bswap => self.bits(u, a),
            Op::Setcc => self.wb(u.dst, 1, u64::from(cond(self.r[F], u.aux))),
            Op::Cmov => {
                let v = if cond(self.r[F], u.aux) { self.b(u) } else { a };
                self.wb(u.dst, s, v);
            }
            Op::CondMov => {
                if cond(self.r[F], u.aux) {
                    self.wb(u.dst, s, self.b(u));
                }
            }
            Op::Popf => {
                self.r[F] = (self.r[F] & !USER_WRITABLE) | (a & USER_WRITABLE) | FIXED1;
                if a & TF != 0 {
                    return Flow::Smc;
                }
            }
            Op::Sahf => {
                let m = SF | ZF | AF | PF | CF;
                self.r[F] = (self.r[F] & !m) | (a & m);
            }
            Op::FlagOp => {
                let f = &mut self.r[F];
                match u.aux {
                    0 => *f &= !CF,
                    1 => *f |= CF,
                    2 => *f ^= CF,
                    3 => *f &= !DF,
                    _ => *f |= DF,
                }
            }
            Op::Str => return self.string(u, mem, env),
            Op::Cpuid => self.cpuid(env),
            Op::Rdtsc | Op::Rdtscp => {
                let t = self.cycles(u.imm as u64);
                self.wb(0, 4, t);
                self.wb(2, 4, t >> 32);
                if u.op == Op::Rdtscp {
                    self.wb(1, 4, u64::from(env.cpuid.tsc_aux));
                }
            }
            Op::Jmp => return Flow::Jump(u.imm as u64),
            Op::Jcc => {
                if cond(self.r[F], u.aux) {
                    return Flow::Jump(u.imm as u64);
                }
            }
            Op::JmpR => return Flow::Jump(a),
            Op::Jnz | Op::Jz => {
                let zf = self.r[F] & ZF != 0;
                let flag_ok = match u.aux {
                    0 => true,
                    1 => zf,
                    _ => !zf,
                };
                if (a & mask(s) != 0) == (u.op == Op::Jnz) && flag_ok {
                    return Flow::Jump(u.imm as u64);
                }
            }
            Op::Hlt => return Flow::Hlt,
            Op::Syscall => return Flow::Syscall,
            Op::Raise => return Flow::Raise(u.aux, u.imm as usize),
            Op::Vec => return self.vec(u, mem, fpu),
            Op::Chk => {
                if u.aux == 2 {
                    if !self.fsgsbase {
                        return Flow::Raise(6, u.imm as usize);
                    }
                    return Flow::Next;
                }
                let bad = if u.aux == 0 {
                    a & 15 != 0
                } else {
                    !canonical(a)
                };
                if bad {
                    return Flow::Gp;
                }
            }
        }
        Flow::Next
    }

    /// A [`crate::simd`] uop (kept out of line: the integer dispatch loop
    /// stays small enough to inline the way it did before).
    #[inline(never)]
    fn vec(&mut self, u: &Uop, mem: &mut dyn GuestMemory, fpu: &mut FpuState) -> Flow {
        let mut x = crate::simd::VecCtx {
            r: &mut self.r,
            vt: &mut self.vt,
            fpu,
            mem,
            stop: None,
        };
        match crate::simd::exec(&mut x, u) {
            Ok(()) => Flow::Next,
            Err(crate::simd::Exc(crate::simd::MEM_STOP)) => match x.stop {
                Some(stop) => Flow::pf(stop),
                None => Flow::Gp,
            },
            Err(crate::simd::Exc(v)) => Flow::Exc(v),
        }
    }

    #[inline(always)]
    fn arith(&mut self, u: &Uop, a: u64) {
        let b = self.b(u);
        let cf = self.r[F] & CF;
        let carry = if matches!(u.op, Op::Adc | Op::Sbb) {
            cf
        } else {
            0
        };
        let add = matches!(u.op, Op::Add | Op::Adc);
        if u.fl == 0 {
            let res = if add {
                a.wrapping_add(b).wrapping_add(carry)
            } else {
                a.wrapping_sub(b).wrapping_sub(carry)
            };
            self.wb(u.dst, u.size, res);
            return;
        }
        let (res, f) = if add {
            alu::add(u.size, a, b, carry)
        } else {
            alu::sub(u.size, a, b, carry)
        };
        self.wb(u.dst, u.size, res);
        self.setfl(u.fl, f);
    }

    fn shift(&mut self, u: &Uop, a: u64) {
        let (s, n) = (u.size, self.b(u));
        let cf = self.r[F] & CF;
        let fill = self.r[ix(u.c)];
        let r = match u.op {
            Op::Shl => alu::shl(s, a, n),
            Op::Shr => alu::shr(s, a, n),
            Op::Sar => alu::sar(s, a, n),
            Op::Rol => alu::rol(s, a, n),
            Op::Ror => alu::ror(s, a, n),
            Op::Rcl => alu::rcl(s, a, n, cf),
            Op::Rcr => alu::rcr(s, a, n, cf),
            Op::Shld => alu::shld(s, a, fill, n),
            _ => alu::shrd(s, a, fill, n),
        };
        match r {
            Some((res, f)) => {
                self.wb(u.dst, s, res);
                self.setfl(u.fl, f);
            }
            // A zero count changes no flag, but the register is still written.
            None => self.wb(u.dst, s, a),
        }
    }

    fn mul(&mut self, u: &Uop, a: u64) {
        let (s, b) = (u.size, self.b(u));
        if u.op == Op::Imul {
            // Truncating multiply: native overflow detection, no 128-bit product.
            let (lo, over) = match s {
                8 => {
                    let (r, o) = (a as i64).overflowing_mul(b as i64);
                    (r as u64, o)
                }
                4 => {
                    let (r, o) = (a as i32).overflowing_mul(b as i32);
                    (u64::from(r as u32), o)
                }
                2 => {
                    let (r, o) = (a as i16).overflowing_mul(b as i16);
                    (u64::from(r as u16), o)
                }
                _ => {
                    let (r, o) = (a as i8).overflowing_mul(b as i8);
                    (u64::from(r as u8), o)
                }
            };
            self.wb(u.dst, s, lo);
            self.setfl(u.fl, alu::mul_flags(over));
            return;
        }
        let signed = u.op != Op::Mul;
        let (lo, hi) = if signed {
            alu::imul_wide(s, a, b)
        } else {
            alu::mul_wide(s, a, b)
        };
        let over = if signed {
            alu::imul_overflows(s, lo, hi)
        } else {
            hi != 0
        };
        match (u.op, s) {
            (Op::Imul, _) => self.wb(u.dst, s, lo),
            (_, 1) => self.wb(u.dst, 2, (hi << 8) | lo),
            _ => {
                self.wb(u.dst, s, lo);
                self.wb(u.c, s, hi);
            }
        }
        self.setfl(u.fl, alu::mul_flags(over));
    }

    fn div(&mut self, u: &Uop, a: u64) -> Flow {
        let (s, d) = (u.size, self.b(u));
        let (hi, lo) = if s == 1 {
            ((a >> 8) & 0xff, a & 0xff)
        } else {
            (self.r[ix(u.c)], a)
        };
        let r = if u.op == Op::Div {
            alu::div(s, hi, lo, d)
        } else {
            alu::idiv(s, hi, lo, d)
        };
        let Some((q, rem)) = r else { return Flow::De };
        self.setfl(u.fl, alu::DIV_FLAGS);
        if s == 1 {
            self.wb(u.dst, 2, (rem << 8) | q);
        } else {
            self.wb(u.dst, s, q);
            self.wb(u.c, s, rem);
        }
        Flow::Next
    }

    fn bt(&mut self, u: &Uop, a: u64) {
        let bits = u32::from(u.size) * 8;
        let pos = (self.b(u) as u32) & (bits - 1);
        let m = 1u64 << pos;
        let res = match u.op {
            Op::Bts => a | m,
            Op::Btr => a & !m,
            Op::Btc => a ^ m,
            _ => a,
        };
        self.wb(u.dst, u.size, res);
        self.setfl(u.fl, alu::bt_flags(a, pos));
    }

    fn bits(&mut self, u: &Uop, a: u64) {
        let s = u.size;
        let v = a & mask(s);
        let bits = u64::from(s) * 8;
        let lz = u64::from(v.leading_zeros()) - (64 - bits);
        match u.op {
            Op::Bsf | Op::Bsr => {
                let r = if u.op == Op::Bsf {
                    u64::from(v.trailing_zeros())
                } else {
                    bits.wrapping_sub(1 + lz)
                };
                if v != 0 {
                    self.wb(u.dst, s, r);
                }
                self.setfl(u.fl, alu::bsx_flags(v == 0, r));
            }
            Op::Lzcnt | Op::Tzcnt => {
                let r = if u.op == Op::Lzcnt {
                    lz
                } else {
                    u64::from(v.trailing_zeros()).min(bits)
                };
                self.wb(u.dst, s, r);
                self.setfl(u.fl, alu::cnt_flags(v == 0, r));
            }
            Op::Popcnt => {
                self.wb(u.dst, s, u64::from(v.count_ones()));
                self.setfl(u.fl, alu::popcnt_flags(v == 0));
            }
            _ => {
                let r = match s {
                    8 => v.swap_bytes(),
                    4 => u64::from((v as u32).swap_bytes()),
                    _ => 0,
                };
                self.wb(u.dst, s, r);
            }
        }
    }

    fn cpuid(&mut self, env: &Env<'_>) {
        let leaf = self.r[RAX] as u32;
        let sub = self.r[RCX] as u32;
        let [a, b, c, d] = env.cpuid.query(leaf, sub);
        self.wb(RAX as u8, 4, u64::from(a));
        self.wb(RBX as u8, 4, u64::from(b));
        self.wb(RCX as u8, 4, u64::from(c));
        self.wb(RDX as u8, 4, u64::from(d));
    }
}
