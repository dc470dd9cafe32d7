//! The PV64 bounce frame (xen-abi.md §2.6) and its inverse, the iret
//! hypercall's frame (§4.6, `iret_context` §2.5).
//!
//! From guest kernel mode the frame goes on the current stack and the
//! saved CS has its RPL cleared ("was kernel"); from guest user mode it
//! goes on the kernel stack registered with stack_switch and the saved CS
//! is the user's ([`Interrupted`]).

use crate::memory::{Fault, GuestMemory, HypervisorMemory};
use crate::regs::{GuestRegs, FLAT_KERNEL_CS, FLAT_KERNEL_SS};
use smpsim_cores::arch::flags;
use smpsim_cores::arch::reg::{R11, RAX, RCX, RSP};
use smpsim_cores::ArchState;

/// RFLAGS bits Xen clears on entry to a callback: TF, NT, RF, VM, AC.
const ENTRY_CLEAR: u64 = (1 << 8) | (1 << 14) | (1 << 16) | (1 << 17) | (1 << 18);

/// `VGCF_in_syscall`: the iret must not restore RCX and R11.
pub const VGCF_IN_SYSCALL: u64 = 1 << 8;

/// Size of `iret_context`.
pub const IRET_CONTEXT_SIZE: usize = 72;

/// The interrupted context as the bounce frame records it, and the stack
/// the frame goes on.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub struct Interrupted {
    /// The CS slot's selector: RPL 0 for guest kernel mode, the user's
    /// selector (RPL 3) for guest user mode.
    pub cs: u64,
    /// The SS slot.
    pub ss: u64,
    /// RSP before the frame (the current one in kernel mode, the
    /// registered kernel stack in user mode).
    pub stack: u64,
    /// The IOPL field of the frame's RFLAGS (already shifted): the virtual
    /// IOPL under VMASST architectural_iopl, else 0.
    pub iopl: u64,
}

impl Interrupted {
    /// Guest kernel mode: the frame goes on the current stack.
    pub fn kernel(regs: &ArchState) -> Self {
        Interrupted {
            cs: FLAT_KERNEL_CS & !3,
            ss: FLAT_KERNEL_SS,
            stack: regs.rsp(),
            iopl: 0,
        }
    }
}

/// Pushes Xen's bounce frame for the interrupted guest-kernel `regs` and
/// enters `target` ([`push_frame`] on the current stack).
pub fn push_bounce_frame(
    regs: &mut ArchState,
    mem: &mut dyn GuestMemory,
    saved_mask: u8,
    error_code: Option<u64>,
    target: u64,
) -> Result<(), Fault> {
    let from = Interrupted::kernel(regs);
    push_frame(regs, mem, saved_mask, error_code, target, from)
}

/// Pushes Xen's bounce frame for `regs`, interrupted in the context
/// `from`, and enters `target`.
///
/// Frame, low to high from the new RSP: RCX, R11, [error code], RIP,
/// CS (`from.cs`, `saved_mask` in bits 32–39), RFLAGS (IF =
/// !saved_mask, IOPL `from.iopl`), RSP, SS; the new RSP is `from.stack` aligned
/// down to 16 minus the frame. On a fault `regs` are left unchanged.
pub fn push_frame(
    regs: &mut ArchState,
    mem: &mut dyn GuestMemory,
    saved_mask: u8,
    error_code: Option<u64>,
    target: u64,
    from: Interrupted,
) -> Result<(), Fault> {
    let cs = from.cs | u64::from(saved_mask) << 32;
    let mut rflags = (regs.rflags & !(flags::IF | flags::IOPL)) | (from.iopl & flags::IOPL);
    if saved_mask == 0 {
        rflags |= flags::IF;
    }
    let mut words = vec![regs.gpr[RCX], regs.gpr[R11]];
    words.extend(error_code);
    words.extend([regs.rip, cs, rflags, regs.rsp(), from.ss]);
    let sp = (from.stack & !15).wrapping_sub(8 * words.len() as u64);
    let bytes: Vec<u8> = words.iter().flat_map(|w| w.to_le_bytes()).collect();
    mem.write_virt(sp, &bytes)?;
    regs.gpr[RSP] = sp;
    regs.rip = target;
    regs.rflags &= !ENTRY_CLEAR;
    Ok(())
}

/// What [`try_upcall`] did.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub enum UpcallStep {
    /// No upcall due.
    NotDue,
    /// Due, but no event callback registered (`callback` 0).
    NoCallback,
    /// Delivered: `regs` enter the callback, events are masked.
    Delivered,
}

/// The upcall check and delivery of one VCPU without the hypervisor
/// (§2.6, §3.4): if `upcall_pending && !upcall_mask` in the vcpu_info at
/// machine address `vcpu_info`, pushes the bounce frame, sets the mask and
/// enters `callback`. For a core partition that caches its VCPU's
/// vcpu_info address and event callback; a fault means the domain must
/// crash ([`crate::hypervisor::Hypervisor::crash_domain`]).
pub fn try_upcall(
    regs: &mut ArchState,
    mem: &mut dyn HypervisorMemory,
    vcpu_info: u64,
    callback: u64,
) -> Result<UpcallStep, Fault> {
    if !crate::event_2l::upcall_due(mem, vcpu_info) {
        return Ok(UpcallStep::NotDue);
    }
    if callback == 0 {
        return Ok(UpcallStep::NoCallback);
    }
    push_bounce_frame(regs, mem, 0, None, callback)?;
    mem.write_u8(vcpu_info + crate::abi::vcpu_info::UPCALL_MASK, 1);
    Ok(UpcallStep::Delivered)
}

/// What the iret hypercall restored; the caller applies `upcall_mask`.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub struct IretResult {
    /// The new `evtchn_upcall_mask`: !(saved RFLAGS.IF).
    pub upcall_mask: u8,
    /// The frame's CS (RPL 3: return to guest user mode).
    pub cs: u64,
    /// The frame's SS.
    pub ss: u64,
    /// The frame's RFLAGS as saved (IOPL included).
    pub rflags: u64,
}

fn word(b: &[u8], i: usize) -> u64 {
    u64::from_le_bytes(b[8 * i..8 * i + 8].try_into().expect("8 bytes"))
}

/// Performs the iret hypercall: RSP points at `iret_context` (rax, r11,
/// rcx, flags, rip, cs, rflags, rsp, ss). Restores RIP, RFLAGS (IF forced
/// on, IOPL and VM stripped), RSP, RAX, and RCX/R11 unless flags has
/// VGCF_in_syscall; CS, SS and the saved RFLAGS are returned for the
/// caller's mode switch. On a fault
/// `regs` are left unchanged.
pub fn iret(regs: &mut ArchState, mem: &mut dyn GuestMemory) -> Result<IretResult, Fault> {
    let mut b = [0u8; IRET_CONTEXT_SIZE];
    mem.read_virt(regs.rsp(), &mut b)?;
    let flags = word(&b, 3);
    let saved_rflags = word(&b, 6);
    regs.gpr[RAX] = word(&b, 0);
    if flags & VGCF_IN_SYSCALL == 0 {
        regs.gpr[R11] = word(&b, 1);
        regs.gpr[RCX] = word(&b, 2);
    }
    regs.rip = word(&b, 4);
    // Bit 1 reads 1 whatever the frame says (the core's invariant).
    regs.rflags = (saved_rflags & !(flags::IOPL | flags::VM)) | flags::IF | flags::FIXED1;
    regs.gpr[RSP] = word(&b, 7);
    Ok(IretResult {
        upcall_mask: u8::from(saved_rflags & flags::IF == 0),
        cs: word(&b, 5),
        ss: word(&b, 8),
        rflags: saved_rflags,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ids::Mfn;
    use crate::memory::{PagedMemory, SparseFrames};
    use smpsim_cores::arch::reg::{RBX, RDI};

    fn regs() -> ArchState {
        let mut r = ArchState {
            rip: 0x40_1234,
            rflags: 0x246 | (1 << 8),
            ..ArchState::default()
        };
        for (i, g) in r.gpr.iter_mut().enumerate() {
            *g = 0x1000 + i as u64;
        }
        r.gpr[RSP] = 0x40_2f1c;
        r
    }

    #[test]
    fn bounce_frame_layout_then_iret_restores() {
        let mut store = SparseFrames::new();
        let space = crate::mmu::test_space(&mut store, &[(0x40_2000, Mfn(9))], 100);
        let mut mem = PagedMemory {
            space: &space,
            store: &mut store,
        };
        let orig = regs();
        let mut r = orig.clone();
        push_bounce_frame(&mut r, &mut mem, 0, None, 0x40_0800).expect("mapped");
        assert_eq!(r.rsp(), 0x40_2f10 - 56);
        assert_eq!(r.rip, 0x40_0800);
        assert_eq!(r.rflags & (1 << 8), 0, "TF cleared");
        let w = |m: &mut PagedMemory, i: u64| m.read_virt_u64(r.rsp() + 8 * i).expect("mapped");
        assert_eq!(w(&mut mem, 0), 0x1001, "RCX");
        assert_eq!(w(&mut mem, 1), 0x100b, "R11");
        assert_eq!(w(&mut mem, 2), 0x40_1234, "RIP");
        assert_eq!(w(&mut mem, 3), 0xe030, "CS, RPL cleared, mask 0");
        assert_eq!(w(&mut mem, 4), 0x346, "RFLAGS with IF");
        assert_eq!(w(&mut mem, 5), 0x40_2f1c, "RSP");
        assert_eq!(w(&mut mem, 6), 0xe02b, "SS");
        // The guest's handler: pop RCX, R11; later push rax… as the stub does.
        let mut g = r.clone();
        g.gpr[RCX] = w(&mut mem, 0);
        g.gpr[R11] = w(&mut mem, 1);
        g.gpr[RSP] += 16;
        g.gpr[RBX] = 0xbad;
        // handler returns: push flags 0, jump to slot 23: push rcx, r11, rax.
        for v in [0, g.gpr[RCX], g.gpr[R11], g.gpr[RAX]] {
            g.gpr[RSP] -= 8;
            mem.write_virt_u64(g.rsp(), v).expect("mapped");
        }
        g.gpr[RCX] = 0;
        g.gpr[R11] = 0;
        let res = iret(&mut g, &mut mem).expect("mapped");
        assert_eq!(res.upcall_mask, 0);
        assert_eq!(g.rip, orig.rip);
        assert_eq!(g.rsp(), orig.rsp());
        assert_eq!(g.gpr[RCX], orig.gpr[RCX]);
        assert_eq!(g.gpr[R11], orig.gpr[R11]);
        assert_eq!(g.gpr[RAX], orig.gpr[RAX]);
        assert_eq!(g.gpr[RDI], orig.gpr[RDI]);
        assert_eq!(g.rflags, 0x246 | (1 << 8));
    }

    #[test]
    fn masked_context_error_code_and_faults() {
        let mut store = SparseFrames::new();
        let space = crate::mmu::test_space(&mut store, &[(0x40_2000, Mfn(9))], 100);
        let mut mem = PagedMemory {
            space: &space,
            store: &mut store,
        };
        let mut r = regs();
        push_bounce_frame(&mut r, &mut mem, 1, Some(0xe), 0x40_0900).expect("mapped");
        assert_eq!(r.rsp(), 0x40_2f10 - 64);
        assert_eq!(mem.read_virt_u64(r.rsp() + 16), Ok(0xe), "error code");
        assert_eq!(mem.read_virt_u64(r.rsp() + 32), Ok(0x1_0000_e030));
        assert_eq!(mem.read_virt_u64(r.rsp() + 40), Ok(0x146), "IF clear");
        let mut low = regs();
        low.gpr[RSP] = 0x40_2010;
        let before = low.clone();
        assert_eq!(
            push_bounce_frame(&mut low, &mut mem, 0, None, 1),
            Err(Fault { va: 0x40_1fd8 })
        );
        assert_eq!(low, before);
        // iret with IF clear and VGCF_in_syscall.
        let mut ctx = [0u64; 9];
        ctx[0] = 7;
        ctx[1] = 0x11;
        ctx[2] = 0x22;
        ctx[3] = VGCF_IN_SYSCALL;
        ctx[4] = 0x40_0100;
        ctx[6] = 0x3000; // bit 1 clear in the frame
        ctx[7] = 0x40_2800;
        let bytes: Vec<u8> = ctx.iter().flat_map(|w| w.to_le_bytes()).collect();
        mem.write_virt(0x40_2100, &bytes).expect("mapped");
        let mut g = regs();
        g.gpr[RSP] = 0x40_2100;
        let res = iret(&mut g, &mut mem).expect("mapped");
        assert_eq!(res.upcall_mask, 1);
        assert_eq!(g.gpr[RCX], 0x1001, "kept: in_syscall");
        assert_eq!(g.gpr[RAX], 7);
        assert_eq!(g.rflags, 0x202, "IF and bit 1 forced, IOPL stripped");
        assert_eq!(g.rsp(), 0x40_2800);
    }
}
