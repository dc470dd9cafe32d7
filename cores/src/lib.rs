//! smpsim-cores: the simulated x86-64 cores, and the core partitions the
//! engine runs.
//!
//! ```text
//!   CorePart (one engine partition per core)          ── coherence messages ──▶ uncore
//!   ├─ CoreState: contexts (ArchState, FuncCore, TLB,       (PrivateHierarchy inside)
//!   │   wait/lock), the adapter onto the private hierarchy,
//!   │   locked read-modify-writes, fences, replay, traps
//!   └─ TimingModel: functional | inorder (issue models) | ooo (OooCore + commit check)
//! ```
//!
//! # Owns
//! - Decode of x86-64 instructions (iced-x86) into uops ([`uop`],
//!   [`translate`]) and the translation cache of decoded basic blocks
//!   ([`cache`]); functional execution ([`FuncCore`]); the CPUID model;
//!   the x87/SSE/extension families and their state ([`simd`], [`fpu`]);
//!   debug traps (TF single-step, DR0–DR3 breakpoints, the MOV SS shadow:
//!   [`debug`]), checked in every model because every model retires
//!   through [`FuncCore`].
//! - The out-of-order pipeline ([`ooo`]): fetch with branch prediction,
//!   rename, issue queue, load/store queues, commit, SMT.
//! - The core partition ([`part`]): SMT contexts and their arbitration, the
//!   timing models behind one [`part::TimingModel`] seam (`functional`,
//!   `inorder`, `ooo`), the core/hierarchy adapter with its TLB, the
//!   locked-RMW and fence protocol, and the narrow VCPU API the hypervisor
//!   uses (start, resume, park, interrupt, pending trap, registers).
//!
//! # Depends on
//! `smpsim-engine` (partitions, statistics) and `smpsim-uncore` (the
//! private hierarchy, machine memory). What a core needs from the
//! hypervisor (hypercalls, halts) it reports as an exit value ([`Exit`]),
//! the way a KVM exit works; a context's guest-virtual addresses are
//! translated by an [`part::AddressMap`] the machine supplies (the
//! hypervisor's page map). Memory is reached through the [`GuestMemory`]
//! trait, whose accesses end in a value, a page fault or a retry
//! ([`MemStop`]).
//!
//! # Invariants
//! Functional results are exact (all architectural state, the six arithmetic
//! flags included; SDM-undefined flags as AMD hardware sets them, see
//! [`alu::UndefinedFlags`]) and deterministic; guest misbehaviour is a fault
//! inside the guest (#UD, #DE, #PF, #GP) with precise state, never a host
//! panic. Supported: the integer ISA (see [`translate`]), the x87 FPU, MMX,
//! SSE through SSE4.2, BMI1/BMI2, MOVBE, CRC32, FXSAVE/XSAVE ([`simd`],
//! state in [`fpu`]); AVX and privileged instructions raise #UD (or
//! what ring 3 raises) naming the instruction. A core reads a
//! line only while its hierarchy holds it readable and writes it only in M
//! (the adapter goes through the hierarchy for every data access), so a
//! core partition's results depend only on its own state and the messages
//! it receives: runs are deterministic for any host-thread count.
//! No unsafe code: the differential tester that checks these results
//! against the host CPU (and its native sandbox) is the `smpsim-difftest`
//! crate, which uses only the public API above.
//!
//! # Lifecycle
//! A [`part::CorePart`] is built per core from a [`part::CoreSetup`] and
//! the hierarchy the uncore makes for it → the machine starts contexts on
//! it ([`part::CorePart::start`]) → the engine runs it epoch by epoch
//! through its current timing model; the hypervisor services its traps at
//! barriers and may switch its model → statistics are flushed
//! ([`part::CorePart::flush_stats`]) and collected. [`FuncCore`] alone runs
//! with an instruction budget ([`FuncCore::run`]) on any [`GuestMemory`].
//!
//! # Errors
//! Guest faults are values ([`Fault`], [`part::Trap`]); a blocked access is
//! [`MemStop::Retry`] (never a fake fault); configuration errors are
//! `Result`s ([`ooo::ConfigError`]).
//!
//! # Speed (functional model)
//! `cargo bench -p smpsim-cores --bench functional` runs a compute loop
//! (loads, stores, ALU, imul, a data-dependent branch) through the whole
//! path: 170–210 simulated MIPS per host thread (best of 3) on the
//! project's 2-core AMD EPYC host while parallel builds kept its load
//! average at 7–12 (target ≥ 100). Callgrind
//! (`SMPSIM_BENCH_ITERS=200000 valgrind --tool=callgrind <bench>`) puts
//! about 97 host instructions on each guest instruction: ~60% uop dispatch
//! and register write-back in the executor, ~15% flag computation, ~9% the
//! `FlatMemory` load/store path (virtual call + page lookup), ~8% the block
//! loop (translation-cache lookup, budget), ~4% imul.

#![warn(missing_docs)]
#![warn(missing_debug_implementations)]
#![forbid(unsafe_code)]

pub mod alu;
pub mod arch;
pub mod cache;
pub mod cpuid;
pub mod debug;
mod exec;
pub mod fpu;
pub mod func;
pub mod hash;
pub mod mem;
pub mod ooo;
pub mod paging;
pub mod part;
pub mod simd;
pub mod translate;
pub mod uop;

pub use arch::ArchState;
pub use cache::AddressSpaceId;
pub use cpuid::CpuidModel;
pub use func::{Exit, Fault, FuncCore, FuncStats, Pacer};
pub use mem::{FlatMemory, GuestMemory, MemStop, PageFault};
