//! The native sandbox: runs generated cases on the host CPU.
//!
//! A batch of cases is copied into a shared anonymous mapping; a forked child
//! maps the control, code and data pages at their fixed addresses (see
//! [`super::layout`]), and for each case copies the code and data in, loads
//! the sixteen GPRs, RFLAGS (and the FS/GS bases where the kernel allows
//! user-mode `wrfsbase`) through the assembly prologue below, runs the
//! sequence, stores everything back in the epilogue and copies the results
//! out. A fault in the sequence (SIGFPE, SIGSEGV, SIGBUS, SIGILL, SIGTRAP) is
//! caught by a handler on an alternate signal stack, which records the vector
//! (the kernel's trap number), the faulting RIP and the registers at the
//! fault, then resumes at a return path that restores the host state.
//!
//! The child never allocates, locks or panics after `fork` (the parent may be
//! multi-threaded): it only issues system calls and copies memory. If a child
//! dies anyway (a harness bug), the case it was running is reported as
//! crashed and a new child continues with the next case.

use super::fpstate::FpView;
use super::layout::{CODE_BASE, CODE_MAX, CODE_SIZE, CTL_BASE, DATA_BASE, DATA_SIZE};
use super::{FaultInfo, Outcome, RegState};
use std::mem::{offset_of, size_of};

/// The control page at `CTL_BASE`, shared by the prologue/epilogue assembly
/// and the signal handler. Offsets are fixed by the assembly (checked below).
#[repr(C)]
struct Ctl {
    /// Registers loaded before the sequence.
    input: RegState,
    /// Address the prologue jumps to (the first byte of the sequence).
    entry: u64,
    /// Address of the epilogue; the code page's exit stub jumps through it.
    exit: u64,
    /// Padding up to the output block.
    _pad0: [u64; 11],
    /// Registers stored after the sequence (or at the fault).
    output: RegState,
    /// Padding.
    _pad1: u64,
    /// Fault record, all zero when the sequence completed.
    fault: FaultRecord,
    /// Padding up to the host block.
    _pad2: [u64; 8],
    /// Host RSP while the sequence runs.
    host_rsp: u64,
    /// Host FS base while the sequence runs.
    host_fs: u64,
    /// Host GS base while the sequence runs.
    host_gs: u64,
    /// Non-zero: the prologue and epilogue switch the FS/GS bases.
    use_fsgs: u64,
    /// Padding up to the FXSAVE areas (16-byte aligned).
    _pad3: [u64; 60],
    /// The host's x87/SSE state while the sequence runs.
    host_fx: [u8; 512],
    /// The case's x87/SSE state, loaded by the prologue (`fxrstor64`).
    fx_in: [u8; 512],
    /// The x87/SSE state after the sequence (epilogue `fxsave64`) or at
    /// the fault (copied from the signal frame).
    fx_out: [u8; 512],
}

/// What the signal handler saw.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default)]
struct FaultRecord {
    /// Signal number, 0 if none.
    signo: u64,
    /// The CPU exception vector (the kernel's `REG_TRAPNO`).
    trapno: u64,
    /// RIP of the faulting instruction.
    rip: u64,
    /// `si_addr` of the signal.
    addr: u64,
}

const OFF_IN: usize = 0x000;
const OFF_ENTRY: usize = 0x098;
const OFF_EXIT: usize = 0x0a0;
const OFF_OUT: usize = 0x100;
const OFF_HOST_RSP: usize = 0x200;
const OFF_HOST_FS: usize = 0x208;
const OFF_HOST_GS: usize = 0x210;
const OFF_USE_FSGS: usize = 0x218;
const OFF_HOST_FX: usize = 0x400;
const OFF_FX_IN: usize = 0x600;
const OFF_FX_OUT: usize = 0x800;
const _: () = {
    assert!(offset_of!(Ctl, input) == OFF_IN);
    assert!(offset_of!(Ctl, entry) == OFF_ENTRY);
    assert!(offset_of!(Ctl, exit) == OFF_EXIT);
    assert!(offset_of!(Ctl, output) == OFF_OUT);
    assert!(offset_of!(Ctl, fault) == 0x1a0);
    assert!(offset_of!(Ctl, host_rsp) == OFF_HOST_RSP);
    assert!(offset_of!(Ctl, host_fs) == OFF_HOST_FS);
    assert!(offset_of!(Ctl, host_gs) == OFF_HOST_GS);
    assert!(offset_of!(Ctl, use_fsgs) == OFF_USE_FSGS);
    assert!(offset_of!(Ctl, host_fx) == OFF_HOST_FX);
    assert!(offset_of!(Ctl, fx_in) == OFF_FX_IN);
    assert!(offset_of!(Ctl, fx_out) == OFF_FX_OUT);
    assert!(offset_of!(RegState, rflags) == 0x80);
    assert!(offset_of!(RegState, fs_base) == 0x88);
    assert!(offset_of!(RegState, gs_base) == 0x90);
    assert!(size_of::<Ctl>() <= 4096);
};

// The prologue, epilogue and fault-return path. Addresses are absolute
// (`[disp32]`): the control page sits below 2 GiB. The prologue saves the
// callee-saved registers and RSP, optionally swaps in the case's FS/GS bases
// (raw bytes: rdfsbase/wrfsbase/rdgsbase/wrgsbase rax), loads RFLAGS on the
// host stack, then the case's x87/SSE state (`fxrstor64`, after the host's
// was saved with `fxsave64`), then all GPRs, RSP last, and jumps to the
// sequence. The epilogue stores all GPRs and the x87/SSE state before
// touching RSP or the flags, switches back to the host stack, then saves
// RFLAGS; both exit paths restore the host's x87/SSE state first (its MXCSR
// and FCW are callee-saved in the SysV ABI).
core::arch::global_asm!(
    ".pushsection .text.smpsim_difftest,\"ax\",@progbits",
    ".p2align 4",
    ".globl smpsim_difftest_enter",
    ".hidden smpsim_difftest_enter",
    "smpsim_difftest_enter:",
    "push rbx",
    "push rbp",
    "push r12",
    "push r13",
    "push r14",
    "push r15",
    "sub rsp, 8",
    "mov qword ptr [{ctl} + {host_rsp}], rsp",
    "fxsave64 [{ctl} + {host_fx}]",
    "cmp qword ptr [{ctl} + {use_fsgs}], 0",
    "je 2f",
    ".byte 0xf3, 0x48, 0x0f, 0xae, 0xc0", // rdfsbase rax
    "mov qword ptr [{ctl} + {host_fs}], rax",
    ".byte 0xf3, 0x48, 0x0f, 0xae, 0xc8", // rdgsbase rax
    "mov qword ptr [{ctl} + {host_gs}], rax",
    "mov rax, qword ptr [{ctl} + {inp} + 0x88]",
    ".byte 0xf3, 0x48, 0x0f, 0xae, 0xd0", // wrfsbase rax
    "mov rax, qword ptr [{ctl} + {inp} + 0x90]",
    ".byte 0xf3, 0x48, 0x0f, 0xae, 0xd8", // wrgsbase rax
    "2:",
    "push qword ptr [{ctl} + {inp} + 0x80]",
    "popfq",
    "fxrstor64 [{ctl} + {fx_in}]",
    "mov rax, qword ptr [{ctl} + {inp} + 0x00]",
    "mov rcx, qword ptr [{ctl} + {inp} + 0x08]",
    "mov rdx, qword ptr [{ctl} + {inp} + 0x10]",
    "mov rbx, qword ptr [{ctl} + {inp} + 0x18]",
    "mov rbp, qword ptr [{ctl} + {inp} + 0x28]",
    "mov rsi, qword ptr [{ctl} + {inp} + 0x30]",
    "mov rdi, qword ptr [{ctl} + {inp} + 0x38]",
    "mov r8, qword ptr [{ctl} + {inp} + 0x40]",
    "mov r9, qword ptr [{ctl} + {inp} + 0x48]",
    "mov r10, qword ptr [{ctl} + {inp} + 0x50]",
    "mov r11, qword ptr [{ctl} + {inp} + 0x58]",
    "mov r12, qword ptr [{ctl} + {inp} + 0x60]",
    "mov r13, qword ptr [{ctl} + {inp} + 0x68]",
    "mov r14, qword ptr [{ctl} + {inp} + 0x70]",
    "mov r15, qword ptr [{ctl} + {inp} + 0x78]",
    "mov rsp, qword ptr [{ctl} + {inp} + 0x20]",
    "jmp qword ptr [{ctl} + {entry}]",
    ".p2align 4",
    ".globl smpsim_difftest_exit",
    ".hidden smpsim_difftest_exit",
    "smpsim_difftest_exit:",
    "mov qword ptr [{ctl} + {out} + 0x00], rax",
    "mov qword ptr [{ctl} + {out} + 0x08], rcx",
    "mov qword ptr [{ctl} + {out} + 0x10], rdx",
    "mov qword ptr [{ctl} + {out} + 0x18], rbx",
    "mov qword ptr [{ctl} + {out} + 0x20], rsp",
    "mov qword ptr [{ctl} + {out} + 0x28], rbp",
    "mov qword ptr [{ctl} + {out} + 0x30], rsi",
    "mov qword ptr [{ctl} + {out} + 0x38], rdi",
    "mov qword ptr [{ctl} + {out} + 0x40], r8",
    "mov qword ptr [{ctl} + {out} + 0x48], r9",
    "mov qword ptr [{ctl} + {out} + 0x50], r10",
    "mov qword ptr [{ctl} + {out} + 0x58], r11",
    "mov qword ptr [{ctl} + {out} + 0x60], r12",
    "mov qword ptr [{ctl} + {out} + 0x68], r13",
    "mov qword ptr [{ctl} + {out} + 0x70], r14",
    "mov qword ptr [{ctl} + {out} + 0x78], r15",
    "fxsave64 [{ctl} + {fx_out}]",
    "mov rsp, qword ptr [{ctl} + {host_rsp}]",
    "pushfq",
    "pop qword ptr [{ctl} + {out} + 0x80]",
    ".globl smpsim_difftest_fault_return",
    ".hidden smpsim_difftest_fault_return",
    "smpsim_difftest_fault_return:",
    "fxrstor64 [{ctl} + {host_fx}]",
    "mov rsp, qword ptr [{ctl} + {host_rsp}]",
    "cld",
    "cmp qword ptr [{ctl} + {use_fsgs}], 0",
    "je 3f",
    ".byte 0xf3, 0x48, 0x0f, 0xae, 0xc0", // rdfsbase rax
    "mov qword ptr [{ctl} + {out} + 0x88], rax",
    ".byte 0xf3, 0x48, 0x0f, 0xae, 0xc8", // rdgsbase rax
    "mov qword ptr [{ctl} + {out} + 0x90], rax",
    "mov rax, qword ptr [{ctl} + {host_fs}]",
    ".byte 0xf3, 0x48, 0x0f, 0xae, 0xd0", // wrfsbase rax
    "mov rax, qword ptr [{ctl} + {host_gs}]",
    ".byte 0xf3, 0x48, 0x0f, 0xae, 0xd8", // wrgsbase rax
    "3:",
    "add rsp, 8",
    "pop r15",
    "pop r14",
    "pop r13",
    "pop r12",
    "pop rbp",
    "pop rbx",
    "ret",
    ".popsection",
    ctl = const CTL_BASE,
    inp = const OFF_IN,
    out = const OFF_OUT,
    entry = const OFF_ENTRY,
    host_rsp = const OFF_HOST_RSP,
    host_fs = const OFF_HOST_FS,
    host_gs = const OFF_HOST_GS,
    use_fsgs = const OFF_USE_FSGS,
    host_fx = const OFF_HOST_FX,
    fx_in = const OFF_FX_IN,
    fx_out = const OFF_FX_OUT,
);

extern "C" {
    /// Runs the case set up in the control, code and data pages.
    fn smpsim_difftest_enter();
    /// Epilogue: the code page's exit stub jumps here.
    fn smpsim_difftest_exit();
    /// Where the signal handler resumes after a fault in the sequence.
    fn smpsim_difftest_fault_return();
}

/// One case's slot in the shared batch mapping: inputs written by the
/// parent before `fork`, outputs written by the child.
#[repr(C)]
struct Slot {
    /// Registers before the sequence.
    init: RegState,
    /// Bytes of `code` in use.
    code_len: u64,
    /// The sequence (without the exit stub).
    code: [u8; CODE_MAX],
    /// The data region before the sequence.
    data_in: [u8; DATA_SIZE],
    /// x87/SSE state before the sequence (64-bit FXSAVE image).
    fx_in: [u8; 512],
    /// x87/SSE state after the sequence or at the fault.
    fx_out: [u8; 512],
    /// Registers after the sequence or at the fault.
    out: RegState,
    /// Fault record (signo 0: none).
    fault: FaultRecord,
    /// 0: not run, 1: completed (possibly by a fault), 2: the child died on it.
    status: u64,
    /// Wait status of the dead child when `status == 2`.
    wait_status: u64,
    /// The data region after the sequence.
    data_out: [u8; DATA_SIZE],
}

/// Progress word at the start of the shared mapping, followed by the slots.
#[repr(C)]
struct Header {
    /// Index of the case the child is running.
    current: u64,
    /// Padding to keep slots 64-byte aligned.
    _pad: [u64; 7],
}

/// Why the native sandbox could not run at all.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum NativeError {
    /// A system call of the parent failed (`what`, errno).
    Sys(&'static str, i32),
    /// The child could not set up its fixed mappings or handlers.
    ChildSetup(i32),
}

impl std::fmt::Display for NativeError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Sys(what, errno) => write!(f, "native sandbox: {what} failed (errno {errno})"),
            Self::ChildSetup(code) => write!(
                f,
                "native sandbox: the child could not map its fixed pages or install its \
                 signal handlers (exit code {code}; is {CTL_BASE:#x}..{:#x} in use?)",
                DATA_BASE + DATA_SIZE as u64
            ),
        }
    }
}

/// One case as the sandbox needs it.
#[derive(Debug, Clone, Copy)]
pub struct NativeInput<'a> {
    /// Registers before the sequence.
    pub init: &'a RegState,
    /// The sequence's bytes, placed at `CODE_BASE`.
    pub code: &'a [u8],
    /// The data region's bytes, placed at `DATA_BASE`.
    pub data: &'a [u8],
    /// The x87/SSE state (a 64-bit FXSAVE image), loaded with `fxrstor64`.
    pub fx: &'a [u8; 512],
}

/// A batch running in a forked child; [`PendingBatch::finish`] collects it.
#[derive(Debug)]
pub struct PendingBatch {
    /// The shared mapping.
    map: SharedMap,
    /// Number of cases.
    n: usize,
    /// The running child, if any.
    child: Option<libc::pid_t>,
    /// Whether the prologue switches FS/GS bases.
    use_fsgs: bool,
}

/// Whether user mode may run rdfsbase/wrfsbase (Linux ≥ 5.9 sets
/// `HWCAP2_FSGSBASE` once it enables CR4.FSGSBASE).
pub fn fsgsbase_usable() -> bool {
    const HWCAP2_FSGSBASE: libc::c_ulong = 1 << 1;
    // SAFETY: getauxval only reads the process's auxiliary vector.
    let caps = unsafe { libc::getauxval(libc::AT_HWCAP2) };
    caps & HWCAP2_FSGSBASE != 0
}

impl PendingBatch {
    /// Copies `cases` into a shared mapping and forks a child that runs them.
    pub fn start(cases: &[NativeInput<'_>]) -> Result<Self, NativeError> {
        Self::start_in(&mut BatchBuffer::default(), cases)
    }

    /// Like [`Self::start`], reusing `buf`'s mapping when it is big enough
    /// (its pages are then already populated: far fewer page faults).
    pub fn start_in(buf: &mut BatchBuffer, cases: &[NativeInput<'_>]) -> Result<Self, NativeError> {
        let n = cases.len();
        let need = size_of::<Header>() + n * size_of::<Slot>();
        let map = match buf.0.take() {
            Some(m) if m.len >= need => m,
            _ => SharedMap::new(need)?,
        };
        for (i, case) in cases.iter().enumerate() {
            assert!(
                case.code.len() <= CODE_MAX,
                "sequence longer than the code page"
            );
            assert_eq!(case.data.len(), DATA_SIZE, "data region of the wrong size");
            // SAFETY: slot i lies inside the mapping (sized for n slots), no
            // child runs yet, and Slot is plain old data.
            let slot = unsafe { &mut *map.slot(i) };
            slot.init = *case.init;
            slot.code_len = case.code.len() as u64;
            slot.code[..case.code.len()].copy_from_slice(case.code);
            slot.data_in.copy_from_slice(case.data);
            slot.fx_in = *case.fx;
            slot.status = 0;
        }
        let mut batch = Self {
            map,
            n,
            child: None,
            use_fsgs: fsgsbase_usable(),
        };
        batch.spawn(0)?;
        Ok(batch)
    }

    /// Forks a child that runs cases `first..n`.
    fn spawn(&mut self, first: usize) -> Result<(), NativeError> {
        // SAFETY: the child only runs `child_main`, which makes system calls
        // and copies memory (no allocation or locks), then `_exit`s.
        let pid = unsafe { libc::fork() };
        if pid < 0 {
            return Err(NativeError::Sys("fork", errno()));
        }
        if pid == 0 {
            // SAFETY: we are the freshly forked child; the mapping is shared.
            unsafe { child_main(self.map.ptr, first, self.n, self.use_fsgs) };
        }
        self.child = Some(pid);
        Ok(())
    }

    /// Waits for the child (restarting after a case that killed it) and
    /// returns one outcome per case, in order.
    pub fn finish(self) -> Result<Vec<Outcome>, NativeError> {
        self.finish_into(&mut BatchBuffer::default())
    }

    /// Like [`Self::finish`], handing the mapping back to `buf` for reuse.
    pub fn finish_into(mut self, buf: &mut BatchBuffer) -> Result<Vec<Outcome>, NativeError> {
        while let Some(pid) = self.child.take() {
            let status = wait_for(pid)?;
            if libc::WIFEXITED(status) && libc::WEXITSTATUS(status) == 0 {
                break;
            }
            let code = libc::WEXITSTATUS(status);
            if libc::WIFEXITED(status) && (code == EXIT_MAP || code == EXIT_SIGNALS) {
                return Err(NativeError::ChildSetup(code));
            }
            // Otherwise a case ended the child (a signal, or an exit the
            // sequence made itself): blame the case it was running.
            // SAFETY: the child is dead; the header is inside the mapping.
            let current = unsafe { (*self.map.ptr.cast::<Header>()).current } as usize;
            if current >= self.n {
                return Err(NativeError::ChildSetup(-1));
            }
            // SAFETY: as above, slot `current` is inside the mapping.
            let slot = unsafe { &mut *self.map.slot(current) };
            slot.status = 2;
            slot.wait_status = status as u64;
            if current + 1 < self.n {
                self.spawn(current + 1)?;
            }
        }
        let out = (0..self.n).map(|i| self.outcome(i)).collect();
        buf.0 = Some(std::mem::replace(&mut self.map, SharedMap::empty()));
        Ok(out)
    }

    /// Reads case `i`'s results.
    fn outcome(&self, i: usize) -> Outcome {
        // SAFETY: no child runs any more; slot i is inside the mapping.
        let slot = unsafe { &*self.map.slot(i) };
        match slot.status {
            1 => {
                let fault = (slot.fault.signo != 0).then_some(FaultInfo {
                    vector: slot.fault.trapno as u8,
                    rip: slot.fault.rip,
                });
                let mut regs = slot.out;
                if !self.use_fsgs {
                    regs.fs_base = slot.init.fs_base;
                    regs.gs_base = slot.init.gs_base;
                }
                Outcome::Ran {
                    regs,
                    data: slot.data_out.to_vec(),
                    fault,
                    fp: Box::new(FpView::from_fxsave(&slot.fx_out)),
                }
            }
            2 => Outcome::Crashed {
                wait_status: slot.wait_status as i32,
            },
            _ => Outcome::Crashed { wait_status: -1 },
        }
    }
}

impl Drop for PendingBatch {
    fn drop(&mut self) {
        if let Some(pid) = self.child.take() {
            // SAFETY: pid is our own child, not yet reaped.
            unsafe { libc::kill(pid, libc::SIGKILL) };
            let _ = wait_for(pid);
        }
    }
}

/// Runs a batch to completion (start + finish).
pub fn run_batch(cases: &[NativeInput<'_>]) -> Result<Vec<Outcome>, NativeError> {
    PendingBatch::start(cases)?.finish()
}

/// `waitpid` retried on EINTR.
fn wait_for(pid: libc::pid_t) -> Result<i32, NativeError> {
    loop {
        let mut status = 0;
        // SAFETY: waitpid writes the status into our local.
        let r = unsafe { libc::waitpid(pid, &mut status, 0) };
        if r == pid {
            return Ok(status);
        }
        let e = errno();
        if e != libc::EINTR {
            return Err(NativeError::Sys("waitpid", e));
        }
    }
}

fn errno() -> i32 {
    std::io::Error::last_os_error().raw_os_error().unwrap_or(0)
}

/// An anonymous shared mapping, unmapped on drop.
#[derive(Debug)]
struct SharedMap {
    /// Start of the mapping.
    ptr: *mut u8,
    /// Length in bytes.
    len: usize,
}

/// A batch mapping kept between batches (see [`PendingBatch::start_in`]).
#[derive(Debug, Default)]
pub struct BatchBuffer(Option<SharedMap>);

impl SharedMap {
    /// A placeholder that owns nothing.
    fn empty() -> Self {
        Self {
            ptr: std::ptr::null_mut(),
            len: 0,
        }
    }

    fn new(len: usize) -> Result<Self, NativeError> {
        // SAFETY: a fresh anonymous mapping; no existing memory is affected.
        let p = unsafe {
            libc::mmap(
                std::ptr::null_mut(),
                len,
                libc::PROT_READ | libc::PROT_WRITE,
                libc::MAP_SHARED | libc::MAP_ANONYMOUS,
                -1,
                0,
            )
        };
        if p == libc::MAP_FAILED {
            return Err(NativeError::Sys("mmap of the shared batch", errno()));
        }
        Ok(Self { ptr: p.cast(), len })
    }

    /// Pointer to slot `i` (the caller keeps `i` below the slot count).
    fn slot(&self, i: usize) -> *mut Slot {
        let off = size_of::<Header>() + i * size_of::<Slot>();
        assert!(
            off + size_of::<Slot>() <= self.len,
            "slot index out of the mapping"
        );
        // SAFETY: off + size_of::<Slot>() <= len, checked above.
        unsafe { self.ptr.add(off).cast() }
    }
}

impl Drop for SharedMap {
    fn drop(&mut self) {
        if self.len == 0 {
            return;
        }
        // SAFETY: ptr/len came from our own mmap and nobody borrows it now.
        unsafe { libc::munmap(self.ptr.cast(), self.len) };
    }
}

/// The exit stub appended after each sequence: `jmp qword ptr [CTL+exit]`.
fn exit_stub() -> [u8; 7] {
    let a = (CTL_BASE + OFF_EXIT as u64) as u32;
    let d = a.to_le_bytes();
    [0xFF, 0x24, 0x25, d[0], d[1], d[2], d[3]]
}

/// Child exit codes for setup failures.
const EXIT_MAP: i32 = 3;
const EXIT_SIGNALS: i32 = 4;

/// The child: maps the fixed pages, installs the handlers, runs slots
/// `first..n`, and exits. Never returns, never allocates.
///
/// # Safety
/// Must run in a freshly forked child; `shared` is the batch mapping.
unsafe fn child_main(shared: *mut u8, first: usize, n: usize, use_fsgs: bool) -> ! {
    // SAFETY: the fixed addresses are only claimed with NOREPLACE (an
    // occupied range fails instead of clobbering).
    let ok = unsafe { map_fixed_pages() && install_handlers() };
    if !ok {
        // SAFETY: _exit ends the child without running parent-owned destructors.
        unsafe { libc::_exit(EXIT_MAP) };
    }
    // A stuck child (which the generator should make impossible) dies.
    // SAFETY: alarm only arms a timer.
    unsafe { libc::alarm(60) };
    let ctl = CTL_BASE as *mut Ctl;
    let header = shared.cast::<Header>();
    let stub = exit_stub();
    for i in first..n {
        let slot = shared
            .wrapping_add(size_of::<Header>() + i * size_of::<Slot>())
            .cast::<Slot>();
        // SAFETY: header, slot i and the fixed pages are mapped (shared
        // mapping sized for n slots; fixed pages mapped above), and only
        // this process touches them until it exits.
        unsafe {
            (*header).current = i as u64;
            run_slot(&mut *slot, ctl, &stub, use_fsgs);
        }
    }
    // SAFETY: see above.
    unsafe { libc::_exit(0) }
}

/// Copies one slot in, runs it, copies the results out.
///
/// # Safety
/// The fixed pages are mapped and `ctl` points at the control page.
unsafe fn run_slot(slot: &mut Slot, ctl: *mut Ctl, stub: &[u8; 7], use_fsgs: bool) {
    let len = (slot.code_len as usize).min(CODE_MAX);
    let code = CODE_BASE as *mut u8;
    // SAFETY: the code page is CODE_SIZE bytes, len + 7 <= CODE_MAX + 7 <
    // CODE_SIZE; the data region is DATA_SIZE bytes; ctl is the control page.
    unsafe {
        std::ptr::copy_nonoverlapping(slot.code.as_ptr(), code, len);
        std::ptr::copy_nonoverlapping(stub.as_ptr(), code.add(len), stub.len());
        std::ptr::copy_nonoverlapping(slot.data_in.as_ptr(), DATA_BASE as *mut u8, DATA_SIZE);
        (*ctl).input = slot.init;
        (*ctl).output = RegState::default();
        (*ctl).fault = FaultRecord::default();
        (*ctl).fx_in = slot.fx_in;
        (*ctl).entry = CODE_BASE;
        (*ctl).exit = smpsim_difftest_exit as *const () as usize as u64;
        (*ctl).use_fsgs = u64::from(use_fsgs);
        smpsim_difftest_enter();
        slot.out = (*ctl).output;
        slot.fault = (*ctl).fault;
        slot.fx_out = (*ctl).fx_out;
        std::ptr::copy_nonoverlapping(
            DATA_BASE as *const u8,
            slot.data_out.as_mut_ptr(),
            DATA_SIZE,
        );
    }
    slot.status = 1;
}

/// Maps the control, code (RWX) and data pages at their fixed addresses.
///
/// # Safety
/// Child only (the mappings are private to it).
unsafe fn map_fixed_pages() -> bool {
    let rw = libc::PROT_READ | libc::PROT_WRITE;
    let regions = [
        (CTL_BASE, 4096usize, rw),
        (CODE_BASE, CODE_SIZE, rw | libc::PROT_EXEC),
        (DATA_BASE, DATA_SIZE, rw),
    ];
    regions.iter().all(|&(addr, len, prot)| {
        let flags = libc::MAP_PRIVATE | libc::MAP_ANONYMOUS | libc::MAP_FIXED_NOREPLACE;
        // SAFETY: NOREPLACE never replaces an existing mapping.
        let p = unsafe { libc::mmap(addr as *mut libc::c_void, len, prot, flags, -1, 0) };
        p as usize as u64 == addr
    })
}

/// Installs the fault handler on an alternate stack (the sequence's RSP
/// points into the data region, which a signal frame must not overwrite).
///
/// # Safety
/// Child only.
unsafe fn install_handlers() -> bool {
    const ALT_SIZE: usize = 64 * 1024;
    let flags = libc::MAP_PRIVATE | libc::MAP_ANONYMOUS;
    let prot = libc::PROT_READ | libc::PROT_WRITE;
    // SAFETY: a fresh anonymous mapping for the signal stack.
    let stack = unsafe { libc::mmap(std::ptr::null_mut(), ALT_SIZE, prot, flags, -1, 0) };
    if stack == libc::MAP_FAILED {
        return false;
    }
    let ss = libc::stack_t {
        ss_sp: stack,
        ss_flags: 0,
        ss_size: ALT_SIZE,
    };
    // SAFETY: ss describes the mapping just created.
    if unsafe { libc::sigaltstack(&ss, std::ptr::null_mut()) } != 0 {
        // SAFETY: _exit is always safe to call.
        unsafe { libc::_exit(EXIT_SIGNALS) };
    }
    [
        libc::SIGFPE,
        libc::SIGSEGV,
        libc::SIGBUS,
        libc::SIGILL,
        libc::SIGTRAP,
    ]
    .iter()
    .all(|&sig| {
        // SAFETY: sigaction is plain data; zeroed is a valid empty mask.
        let mut sa: libc::sigaction = unsafe { std::mem::zeroed() };
        sa.sa_sigaction = on_fault as *const () as usize;
        sa.sa_flags = libc::SA_SIGINFO | libc::SA_ONSTACK;
        // SAFETY: installs our handler for a synchronous fault signal.
        unsafe { libc::sigaction(sig, &sa, std::ptr::null_mut()) == 0 }
    })
}

/// Maps our GPR order (rax rcx rdx rbx rsp rbp rsi rdi r8..r15) to `gregs`.
const GREG_OF_GPR: [libc::c_int; 16] = [
    libc::REG_RAX,
    libc::REG_RCX,
    libc::REG_RDX,
    libc::REG_RBX,
    libc::REG_RSP,
    libc::REG_RBP,
    libc::REG_RSI,
    libc::REG_RDI,
    libc::REG_R8,
    libc::REG_R9,
    libc::REG_R10,
    libc::REG_R11,
    libc::REG_R12,
    libc::REG_R13,
    libc::REG_R14,
    libc::REG_R15,
];

/// The fault handler. It runs with the sequence's FS base, so it touches no
/// thread-local state: only raw writes to the control page and the context.
extern "C" fn on_fault(sig: libc::c_int, info: *mut libc::siginfo_t, uctx: *mut libc::c_void) {
    // SAFETY: the kernel passes a valid ucontext_t and siginfo_t for
    // SA_SIGINFO handlers; the control page is mapped in the child.
    unsafe {
        let uc = &mut *uctx.cast::<libc::ucontext_t>();
        let g = &mut uc.uc_mcontext.gregs;
        let rip = g[libc::REG_RIP as usize] as u64;
        let in_code = (CODE_BASE..CODE_BASE + CODE_SIZE as u64).contains(&rip);
        // A jump or return to an unmapped address faults on the fetch: RIP
        // is the target, and it is the sequence's fault, not the harness's.
        let fetch = sig == libc::SIGSEGV && (*info).si_addr() as u64 == rip;
        if !in_code && !fetch {
            // Not the sequence: a harness bug. Die of the signal; the parent
            // reports the case as crashed.
            libc::signal(sig, libc::SIG_DFL);
            return;
        }
        let ctl = &mut *(CTL_BASE as *mut Ctl);
        ctl.fault = FaultRecord {
            signo: sig as u64,
            trapno: g[libc::REG_TRAPNO as usize] as u64,
            rip,
            addr: (*info).si_addr() as u64,
        };
        for (i, &r) in GREG_OF_GPR.iter().enumerate() {
            ctl.output.gpr[i] = g[r as usize] as u64;
        }
        ctl.output.rflags = g[libc::REG_EFL as usize] as u64;
        save_signal_fpu(uc.uc_mcontext.fpregs.cast::<u8>(), &mut ctl.fx_out);
        g[libc::REG_RIP as usize] = smpsim_difftest_fault_return as *const () as usize as i64;
    }
}

/// `XSTATE_BV` bits of the signal frame's XSAVE header.
const XSTATE_X87: u64 = 1;
const XSTATE_SSE: u64 = 2;
/// `fx_sw_bytes.magic1`: the frame holds an XSAVE area (with its header).
const FP_XSTATE_MAGIC1: u32 = 0x4650_5853;

/// Copies the FXSAVE part of the signal frame's FPU area into `out`.
/// XSAVE leaves a component in its initial state unwritten (its
/// `XSTATE_BV` bit clear): those fields get their initial values.
///
/// # Safety
/// `fp` is the `uc_mcontext.fpregs` of the current signal (or null).
unsafe fn save_signal_fpu(fp: *const u8, out: &mut [u8; 512]) {
    if fp.is_null() {
        *out = [0; 512];
        return;
    }
    // SAFETY: the kernel's signal frame holds at least the 512-byte FXSAVE
    // area at fpregs, followed (when magic1 says so) by the XSAVE header.
    unsafe {
        std::ptr::copy_nonoverlapping(fp, out.as_mut_ptr(), 512);
        let magic = u32::from_le_bytes([out[464], out[465], out[466], out[467]]);
        if magic != FP_XSTATE_MAGIC1 {
            return;
        }
        let bv = std::ptr::read_unaligned(fp.add(512).cast::<u64>());
        if bv & XSTATE_X87 == 0 {
            out[0..24].fill(0);
            out[0] = 0x7f;
            out[1] = 0x03;
            out[32..160].fill(0);
        }
        if bv & XSTATE_SSE == 0 {
            out[160..416].fill(0);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fpstate::DEFAULT_FX;
    use crate::layout::STACK_TOP;

    fn regs(rax: u64, rbx: u64, rflags: u64) -> RegState {
        let mut r = RegState {
            rflags,
            ..RegState::default()
        };
        r.gpr[0] = rax;
        r.gpr[3] = rbx;
        r.gpr[4] = STACK_TOP;
        r
    }

    fn ran(o: &Outcome) -> (&RegState, &[u8], Option<FaultInfo>) {
        match o {
            Outcome::Ran {
                regs, data, fault, ..
            } => (regs, data, *fault),
            Outcome::Crashed { wait_status } => panic!("child crashed: {wait_status:#x}"),
        }
    }

    #[test]
    fn add_rax_rbx_gives_sum_and_flags() {
        let init = regs(0x7FFF_FFFF_FFFF_FFFF, 1, 0x2 | 0x1);
        let data = vec![0u8; DATA_SIZE];
        let code = [0x48, 0x01, 0xD8]; // add rax, rbx
        let out = run_batch(&[NativeInput {
            init: &init,
            code: &code,
            data: &data,
            fx: &DEFAULT_FX,
        }])
        .expect("run");
        let (r, d, fault) = ran(&out[0]);
        assert_eq!(fault, None);
        assert_eq!(r.gpr[0], 0x8000_0000_0000_0000);
        assert_eq!(r.gpr[3], 1);
        assert_eq!(r.gpr[4], STACK_TOP);
        // OF (signed overflow), SF, AF (carry out of bit 3), PF (low byte 0);
        // CF clear, ZF clear.
        assert_eq!(r.rflags & 0xCD5, 0x800 | 0x80 | 0x10 | 0x4);
        assert_eq!(d, &data[..]);
    }

    #[test]
    fn stores_reach_the_data_region_and_all_registers_come_back() {
        let mut init = regs(0x1122_3344_5566_7788, 0, 0x2);
        for (i, g) in init.gpr.iter_mut().enumerate() {
            if i != 0 && i != 4 {
                *g = 0x100 * i as u64;
            }
        }
        init.gpr[15] = DATA_BASE;
        let data = vec![0xAAu8; DATA_SIZE];
        let code = [0x49, 0x89, 0x47, 0x10]; // mov [r15+0x10], rax
        let out = run_batch(&[NativeInput {
            init: &init,
            code: &code,
            data: &data,
            fx: &DEFAULT_FX,
        }])
        .expect("run");
        let (r, d, fault) = ran(&out[0]);
        assert_eq!(fault, None);
        assert_eq!(r.gpr, init.gpr);
        assert_eq!(&d[0x10..0x18], &0x1122_3344_5566_7788u64.to_le_bytes());
        assert_eq!(d[0x18], 0xAA);
    }

    #[test]
    fn divide_error_is_caught_with_vector_rip_and_registers() {
        let init = regs(5, 0, 0x2);
        let data = vec![0u8; DATA_SIZE];
        // inc rcx ; div rbx (rbx = 0) ; inc rcx
        let code = [0x48, 0xFF, 0xC1, 0x48, 0xF7, 0xF3, 0x48, 0xFF, 0xC1];
        let cases = [
            NativeInput {
                init: &init,
                code: &code,
                data: &data,
                fx: &DEFAULT_FX,
            },
            NativeInput {
                init: &init,
                code: &code[..3],
                data: &data,
                fx: &DEFAULT_FX,
            },
        ];
        let out = run_batch(&cases).expect("run");
        let (r, _, fault) = ran(&out[0]);
        assert_eq!(
            fault,
            Some(FaultInfo {
                vector: 0,
                rip: CODE_BASE + 3
            })
        );
        assert_eq!(r.gpr[1], 1, "state at the fault is precise: one inc ran");
        assert_eq!(r.gpr[0], 5);
        // The same child goes on with the next case after the fault.
        let (r, _, fault) = ran(&out[1]);
        assert_eq!(fault, None);
        assert_eq!(r.gpr[1], 1);
    }

    #[test]
    fn wild_store_is_a_page_fault_not_a_crash() {
        let init = regs(0, 0, 0x2);
        let data = vec![0u8; DATA_SIZE];
        let code = [0x48, 0x89, 0x03]; // mov [rbx], rax with rbx = 0
        let out = run_batch(&[NativeInput {
            init: &init,
            code: &code,
            data: &data,
            fx: &DEFAULT_FX,
        }])
        .expect("run");
        let (_, _, fault) = ran(&out[0]);
        assert_eq!(
            fault,
            Some(FaultInfo {
                vector: 14,
                rip: CODE_BASE
            })
        );
    }

    #[test]
    fn a_case_that_ends_the_child_is_reported_and_the_next_case_still_runs() {
        let init = regs(0, 0, 0x2);
        let data = vec![0u8; DATA_SIZE];
        // mov eax, 60 (exit) ; mov edi, 7 ; syscall
        let exit = [0xB8, 60, 0, 0, 0, 0xBF, 7, 0, 0, 0, 0x0F, 0x05];
        let add = [0x48, 0x01, 0xD8];
        let cases = [
            NativeInput {
                init: &init,
                code: &add,
                data: &data,
                fx: &DEFAULT_FX,
            },
            NativeInput {
                init: &init,
                code: &exit,
                data: &data,
                fx: &DEFAULT_FX,
            },
            NativeInput {
                init: &init,
                code: &add,
                data: &data,
                fx: &DEFAULT_FX,
            },
        ];
        let mut buf = BatchBuffer::default();
        for _ in 0..2 {
            let out = PendingBatch::start_in(&mut buf, &cases)
                .and_then(|b| b.finish_into(&mut buf))
                .expect("run");
            assert!(matches!(out[0], Outcome::Ran { fault: None, .. }));
            assert_eq!(
                out[1],
                Outcome::Crashed {
                    wait_status: 7 << 8
                }
            );
            assert!(matches!(out[2], Outcome::Ran { fault: None, .. }));
        }
    }

    #[test]
    fn jump_to_an_unmapped_address_is_a_fetch_fault() {
        let init = regs(0, 0x1000_0000, 0x2);
        let data = vec![0u8; DATA_SIZE];
        let code = [0xFF, 0xE3]; // jmp rbx
        let out = run_batch(&[NativeInput {
            init: &init,
            code: &code,
            data: &data,
            fx: &DEFAULT_FX,
        }])
        .expect("run");
        let (_, _, fault) = ran(&out[0]);
        assert_eq!(
            fault,
            Some(FaultInfo {
                vector: 14,
                rip: 0x1000_0000
            })
        );
    }

    #[test]
    fn fs_base_is_loaded_and_the_host_one_restored() {
        if !fsgsbase_usable() {
            return;
        }
        let mut init = regs(0, 0, 0x2);
        init.fs_base = 0x1234_5000;
        let data = vec![0u8; DATA_SIZE];
        // rdfsbase rax ; wrfsbase rbx (rbx = 0x4000)
        init.gpr[3] = 0x4000;
        let code = [0xF3, 0x48, 0x0F, 0xAE, 0xC0, 0xF3, 0x48, 0x0F, 0xAE, 0xD3];
        let out = run_batch(&[NativeInput {
            init: &init,
            code: &code,
            data: &data,
            fx: &DEFAULT_FX,
        }])
        .expect("run");
        let (r, _, fault) = ran(&out[0]);
        assert_eq!(fault, None);
        assert_eq!(r.gpr[0], 0x1234_5000);
        assert_eq!(r.fs_base, 0x4000);
    }
}
