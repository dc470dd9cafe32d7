//! Architectural (programmer-visible) state of one x86-64 hardware context.
//!
//! Only what user-mode integer code can see: the sixteen general-purpose
//! registers, RIP, RFLAGS and the FS/GS base registers, plus the debug
//! registers the core checks ([`crate::debug`]), and the x87/SSE state
//! ([`crate::fpu`]). Segment selectors and control registers other than
//! CR0.TS and CR4.FSGSBASE are not modelled.

/// Index of a general-purpose register, in x86 encoding order.
pub mod reg {
    /// RAX.
    pub const RAX: usize = 0;
    /// RCX.
    pub const RCX: usize = 1;
    /// RDX.
    pub const RDX: usize = 2;
    /// RBX.
    pub const RBX: usize = 3;
    /// RSP.
    pub const RSP: usize = 4;
    /// RBP.
    pub const RBP: usize = 5;
    /// RSI.
    pub const RSI: usize = 6;
    /// RDI.
    pub const RDI: usize = 7;
    /// R8 (R9..R15 follow as 9..15).
    pub const R8: usize = 8;
    /// R10 (the fourth hypercall argument).
    pub const R10: usize = 10;
    /// R11 (SYSCALL saves RFLAGS here).
    pub const R11: usize = 11;
}

/// RFLAGS bits.
pub mod flags {
    /// Carry flag.
    pub const CF: u64 = 1 << 0;
    /// Reserved bit 1: always reads as 1.
    pub const FIXED1: u64 = 1 << 1;
    /// Parity flag (even parity of the low result byte).
    pub const PF: u64 = 1 << 2;
    /// Auxiliary (BCD) carry flag: carry out of bit 3.
    pub const AF: u64 = 1 << 4;
    /// Zero flag.
    pub const ZF: u64 = 1 << 6;
    /// Sign flag.
    pub const SF: u64 = 1 << 7;
    /// Trap flag: single-step ([`crate::debug`]).
    pub const TF: u64 = 1 << 8;
    /// Interrupt enable flag (owned by the hypervisor, not by guest code).
    pub const IF: u64 = 1 << 9;
    /// Direction flag (string instructions).
    pub const DF: u64 = 1 << 10;
    /// Overflow flag.
    pub const OF: u64 = 1 << 11;
    /// I/O privilege level (two bits; owned by the hypervisor).
    pub const IOPL: u64 = 3 << 12;
    /// Virtual-8086 mode (never set for a PV64 guest).
    pub const VM: u64 = 1 << 17;
    /// Alignment check flag (user-writable via popf; checks not modelled).
    pub const AC: u64 = 1 << 18;
    /// CPUID-detection flag (user-writable via popf).
    pub const ID: u64 = 1 << 21;
    /// The six arithmetic flags.
    pub const ARITH: u64 = CF | PF | AF | ZF | SF | OF;
    /// The flags user code may change with popf (IF and IOPL excluded).
    pub const USER_WRITABLE: u64 = ARITH | TF | DF | AC | ID;
}

/// The architectural state of one hardware context.
///
/// `rflags` always has bit 1 set; the arithmetic flags and DF live in it.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct ArchState {
    /// General-purpose registers in x86 encoding order: rax rcx rdx rbx rsp
    /// rbp rsi rdi r8..r15.
    pub gpr: [u64; 16],
    /// Address of the next instruction to execute.
    pub rip: u64,
    /// RFLAGS (bit 1 always set).
    pub rflags: u64,
    /// FS segment base (guest virtual address).
    pub fs_base: u64,
    /// GS segment base (guest virtual address).
    pub gs_base: u64,
    /// CR4.FSGSBASE: whether rdfsbase/wrfsbase/rdgsbase/wrgsbase execute
    /// (they raise #UD when it is clear). Set for user code by default; a
    /// PV guest starts with it clear, as on Xen, and sets it with a CR4
    /// write.
    #[serde(default = "yes")]
    pub fsgsbase: bool,
    /// Debug registers and the MOV SS shadow ([`crate::debug`]).
    #[serde(default)]
    pub debug: crate::debug::DebugState,
    /// x87, SSE and XSAVE state, CR0.TS ([`crate::fpu`]). Boxed: it is
    /// four times the size of the rest, which the core partition's
    /// per-context loops and its per-instruction undo copy
    /// ([`IntRegs`]) then do not carry.
    #[serde(default)]
    pub fpu: Box<crate::fpu::FpuState>,
}

/// The registers of an [`ArchState`] besides the FPU state: what the core
/// partition saves before each instruction to undo a retried one (an
/// instruction never changes FPU state before its last memory access, see
/// [`crate::simd`], so a retry leaves that untouched), a few dozen bytes
/// instead of the whole state.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct IntRegs {
    gpr: [u64; 16],
    rip: u64,
    rflags: u64,
    fs_base: u64,
    gs_base: u64,
    fsgsbase: bool,
    debug: crate::debug::DebugState,
}

impl IntRegs {
    /// RIP.
    pub fn rip(&self) -> u64 {
        self.rip
    }
}

impl ArchState {
    /// Everything but the FPU state.
    pub fn int_regs(&self) -> IntRegs {
        IntRegs {
            gpr: self.gpr,
            rip: self.rip,
            rflags: self.rflags,
            fs_base: self.fs_base,
            gs_base: self.gs_base,
            fsgsbase: self.fsgsbase,
            debug: self.debug,
        }
    }

    /// Puts back what [`Self::int_regs`] saved (the FPU state stays).
    pub fn restore_int_regs(&mut self, r: &IntRegs) {
        self.gpr = r.gpr;
        self.rip = r.rip;
        self.rflags = r.rflags;
        self.fs_base = r.fs_base;
        self.gs_base = r.gs_base;
        self.fsgsbase = r.fsgsbase;
        self.debug = r.debug;
    }
}

fn yes() -> bool {
    true
}

impl Default for ArchState {
    fn default() -> Self {
        Self {
            gpr: [0; 16],
            rip: 0,
            rflags: flags::FIXED1,
            fs_base: 0,
            gs_base: 0,
            fsgsbase: true,
            debug: crate::debug::DebugState::default(),
            fpu: Box::default(),
        }
    }
}

/// x86 mnemonic-style name of a 64-bit general-purpose register.
pub fn gpr_name(index: usize) -> &'static str {
    const NAMES: [&str; 16] = [
        "rax", "rcx", "rdx", "rbx", "rsp", "rbp", "rsi", "rdi", "r8", "r9", "r10", "r11", "r12",
        "r13", "r14", "r15",
    ];
    NAMES[index]
}
