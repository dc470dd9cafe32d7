//! The core partition on its own: a `CorePart` on a one-core memory system,
//! run by the engine, with no hypervisor and no machine around it (what a
//! new timing model or a hierarchy experiment builds on).

use smpsim_cores::ooo::{LatencyConfig, OooConfig};
use smpsim_cores::part::{AddressMap, CorePart, CoreSetup, Model, Trap};
use smpsim_cores::{AddressSpaceId, ArchState, CpuidModel};
use smpsim_engine::{Cycle, EngineBuilder, EngineConfig, PartitionId, PartitionSpec};
use smpsim_uncore::memory::{MachineAddr, MachineMemory};
use smpsim_uncore::{CoreId, MachinePart, MemSystem, MemSystemConfig};
use std::sync::Arc;

/// Guest-virtual 0x1000..0x3000 at machine 0x10000..0x12000.
#[derive(Debug)]
struct Window;

impl AddressMap for Window {
    fn translate(&self, va: u64) -> Option<u64> {
        (0x1000..0x3000).contains(&va).then(|| va + 0xf000)
    }
}

/// Sums 1..=100 in a loop, stores and reloads it, `lock xadd`s 5 onto it,
/// reloads, then traps with `syscall`.
const CODE: &[u8] = &[
    0xb9, 0x64, 0, 0, 0, // mov ecx, 100
    0x31, 0xc0, // xor eax, eax
    0x48, 0x01, 0xc8, // loop: add rax, rcx
    0xff, 0xc9, // dec ecx
    0x75, 0xf9, // jnz loop
    0x48, 0x89, 0x04, 0x25, 0x00, 0x20, 0, 0, // mov [0x2000], rax
    0x48, 0x8b, 0x1c, 0x25, 0x00, 0x20, 0, 0, // mov rbx, [0x2000]
    0xba, 5, 0, 0, 0, // mov edx, 5
    0xf0, 0x48, 0x0f, 0xc1, 0x14, 0x25, 0x00, 0x20, 0, 0, // lock xadd [0x2000], rdx
    0x48, 0x8b, 0x34, 0x25, 0x00, 0x20, 0, 0, // mov rsi, [0x2000]
    0x0f, 0x05, // syscall
];

/// Runs CODE on one core in `model`; returns its registers, the trap's
/// cycle and the instructions retired.
fn run(model: Model) -> (ArchState, Cycle, u64) {
    let mem = Arc::new(MachineMemory::new(1 << 20).expect("1 MiB"));
    mem.write(MachineAddr(0x10000), CODE).expect("code fits");
    let sys = MemSystem::new(
        &MemSystemConfig::default(),
        1,
        Arc::clone(&mem),
        PartitionId(0),
    )
    .expect("default memory system");
    let setup = CoreSetup {
        mem: Arc::clone(&mem),
        model,
        cpi: 1,
        latency: LatencyConfig::default(),
        sb_cap: 32,
        service_period: 64,
        smt: 1,
        ooo: Some(OooConfig::default()),
    };
    let mut core = CorePart::new(
        &setup,
        |_| CpuidModel::default(),
        |stats| sys.hierarchy(CoreId(0), stats),
    );
    let regs = ArchState {
        rip: 0x1000,
        rflags: 2,
        ..ArchState::default()
    };
    core.start(0, AddressSpaceId(1), regs, Arc::new(Window), Cycle::ZERO);
    let mut b = EngineBuilder::new();
    b.add(
        MachinePart::Core(Box::new(core)),
        PartitionSpec::core("core0", "core"),
    );
    sys.add_to(&mut b, MachinePart::Uncore);
    let mut engine = b
        .build(EngineConfig {
            quantum: sys.lookahead(),
            ..EngineConfig::default()
        })
        .expect("engine builds");
    engine.run(Some(Cycle(100_000)), &mut |_| {}).expect("runs");
    let MachinePart::Core(core) = engine.partition_mut(PartitionId(0)) else {
        panic!("partition 0 is the core");
    };
    let (trap, at) = core.pending_trap(0).expect("trapped at the syscall");
    assert_eq!(*trap, Trap::Hypercall, "{model:?}");
    (core.regs(0).clone(), at, core.instructions())
}

#[test]
fn a_core_partition_runs_alone_in_every_model_with_the_same_results() {
    let mut traps = Vec::new();
    for model in [Model::Functional, Model::Inorder, Model::Ooo] {
        let (r, at, insns) = run(model);
        // rax: the sum; rbx: reloaded; rdx: xadd's old value; rsi: after it.
        assert_eq!(
            (r.gpr[0], r.gpr[3], r.gpr[2], r.gpr[6]),
            (5050, 5050, 5050, 5055),
            "{model:?}"
        );
        assert_eq!(
            r.rip,
            0x1000 + CODE.len() as u64,
            "{model:?}: RIP after the syscall"
        );
        assert_eq!(insns, 2 + 3 * 100 + 6, "{model:?}");
        traps.push(at.get());
    }
    // Timing differs by model, on the default hierarchy (cold misses for
    // the code and data lines dominate): in-order charges the uop latencies
    // on top of functional's one cycle per instruction; the out-of-order
    // core overlaps the loop's instructions with the misses.
    assert_eq!(
        traps,
        [468, 483, 398],
        "trap cycles: functional, inorder, ooo"
    );
}
