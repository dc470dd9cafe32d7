//! smpsim-cores: the simulated x86-64 cores.
//!
//! # Owns
//! Decode of x86-64 instructions (iced-x86) into uops ([`uop`],
//! [`translate`]), the translation cache of decoded basic blocks
//! ([`cache`]), functional execution ([`FuncCore`]), the CPUID model; later
//! the timing models (`inorder`, `ooo`), SMT contexts, branch prediction, TLBs.
//!
//! # Depends on
//! `smpsim-engine` and `smpsim-uncore`. What a core needs from the hypervisor
//! (hypercalls, halts) it reports as an exit value ([`Exit`]), the way a KVM
//! exit works. Memory is reached through the [`GuestMemory`] trait.
//!
//! # Invariants
//! Functional results are exact (all architectural state, the six arithmetic
//! flags included; SDM-undefined flags as AMD hardware sets them, see
//! [`alu::UndefinedFlags`]) and deterministic; guest misbehaviour is a fault
//! inside the guest (#UD, #DE, #PF, #GP) with precise state, never a host
//! panic. Supported: the integer ISA of issue 4 (see [`translate`]); x87,
//! SSE, AVX and privileged instructions raise #UD naming the instruction.
//! No unsafe code: the differential tester that checks these results
//! against the host CPU (and its native sandbox) is the `smpsim-difftest`
//! crate, which uses only the public API above.
//!
//! # Lifecycle
//! Built per core → run by the engine epoch by epoch ([`FuncCore::run`] with
//! an instruction budget) → statistics collected ([`FuncCore::stats`]).
//!
//! # Errors
//! Guest faults are values ([`Fault`]); configuration errors are `Result`s.
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
mod exec;
pub mod func;
pub mod mem;
pub mod ooo;
pub mod part;
pub mod translate;
pub mod uop;

pub use arch::ArchState;
pub use cache::AddressSpaceId;
pub use cpuid::CpuidModel;
pub use func::{Exit, Fault, FuncCore, FuncStats};
pub use mem::{FlatMemory, GuestMemory, MemStop, PageFault};
