//! The fast path: a whole block, no per-instruction bookkeeping.
//!
//! Taken when the block has no REP instruction and the remaining budget
//! covers all its instructions, which is nearly always. Uops run back to
//! back; the instruction count is added once at the end, and the rare
//! events that need to know the current instruction (a fault, an exit, a
//! store into code) find it from the uop index.

use super::{BlockExit, Cpu, Env, Flow};
use crate::fpu::FpuState;
use crate::mem::GuestMemory;
use crate::translate::Block;

impl Cpu {
    /// Runs all of `blk` (see the module docs for when this is allowed).
    pub(super) fn exec_fast(
        &mut self,
        blk: &Block,
        mem: &mut dyn GuestMemory,
        env: &Env<'_>,
        fpu: &mut FpuState,
    ) -> BlockExit {
        for (i, u) in blk.uops.iter().enumerate() {
            match self.exec_uop(u, mem, env, fpu) {
                Flow::Next => {}
                Flow::Jump(t) => {
                    self.executed += blk.insns.len() as u64;
                    return BlockExit::Next(t);
                }
                f => return self.fast_event(blk, i, f, mem, env, fpu),
            }
        }
        self.executed += blk.insns.len() as u64;
        BlockExit::Next(blk.end_rip)
    }

    /// [`Self::exec_fast`] announcing each instruction to the memory
    /// ([`GuestMemory::insn_start`]).
    pub(super) fn exec_bounded(
        &mut self,
        blk: &Block,
        mem: &mut dyn GuestMemory,
        env: &Env<'_>,
        fpu: &mut FpuState,
    ) -> BlockExit {
        for ins in &blk.insns {
            mem.insn_start(ins.rip);
            for i in usize::from(ins.start)..usize::from(ins.end) {
                match self.exec_uop(&blk.uops[i], mem, env, fpu) {
                    Flow::Next => {}
                    Flow::Jump(t) => {
                        self.executed += blk.insns.len() as u64;
                        return BlockExit::Next(t);
                    }
                    f => return self.fast_event(blk, i, f, mem, env, fpu),
                }
            }
        }
        self.executed += blk.insns.len() as u64;
        BlockExit::Next(blk.end_rip)
    }

    /// Handles a non-`Next` flow at uop `i` of a fast-path block.
    #[cold]
    fn fast_event(
        &mut self,
        blk: &Block,
        i: usize,
        f: Flow,
        mem: &mut dyn GuestMemory,
        env: &Env<'_>,
        fpu: &mut FpuState,
    ) -> BlockExit {
        let k = blk.insns.partition_point(|x| usize::from(x.end) <= i);
        let ins = &blk.insns[k];
        self.executed += k as u64;
        match f {
            Flow::Hlt => self.retire_exit(BlockExit::Hlt(ins.next_rip())),
            Flow::Syscall => self.retire_exit(BlockExit::Syscall(ins.next_rip())),
            Flow::Smc => {
                // Finish this instruction, then leave: later bytes may be stale.
                for u in &blk.uops[i + 1..usize::from(ins.end)] {
                    match self.exec_uop(u, mem, env, fpu) {
                        Flow::Next | Flow::Smc => {}
                        Flow::Jump(t) => return self.retire_exit(BlockExit::Next(t)),
                        f => return self.fault(blk, ins, f, fpu),
                    }
                }
                self.retire_exit(BlockExit::Next(ins.next_rip()))
            }
            f => self.fault(blk, ins, f, fpu),
        }
    }
}
