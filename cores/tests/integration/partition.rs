//! The core partition on its own: a `CorePart` on a one-core memory system,
//! run by the engine, with no hypervisor and no machine around it (what a
//! new timing model or a hierarchy experiment builds on).

use smpsim_cores::ooo::{LatencyConfig, OooConfig};
use smpsim_cores::paging::{AccessKind, Translation, WalkFault, WalkTrace};
use smpsim_cores::part::{access_code, AddressMap, CorePart, CoreSetup, Model, Trap};
use smpsim_cores::{AddressSpaceId, ArchState, CpuidModel};
use smpsim_engine::{Cycle, EngineBuilder, EngineConfig, PartitionId, PartitionSpec};
use smpsim_uncore::memory::{MachineAddr, MachineMemory};
use smpsim_uncore::{CoreId, MachinePart, MemSystem, MemSystemConfig};
use std::sync::Arc;

/// Guest-virtual 0x1000..0x3000 at machine 0x10000..0x12000.
#[derive(Debug)]
struct Window;

impl AddressMap for Window {
    fn translate(
        &self,
        _: &MachineMemory,
        va: u64,
        kind: AccessKind,
    ) -> Result<Translation, WalkFault> {
        if (0x1000..0x3000).contains(&va) {
            Ok(Translation {
                frame: (va & !0xfff) + 0xf000,
                write_ok: true,
                exec_ok: true,
                walk: WalkTrace::default(),
            })
        } else {
            Err(WalkFault::Page(access_code(kind)))
        }
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

fn setup(mem: &Arc<MachineMemory>, model: Model) -> CoreSetup {
    CoreSetup {
        mem: Arc::clone(mem),
        model,
        cpi: 1,
        latency: LatencyConfig::default(),
        sb_cap: 32,
        service_period: 64,
        smt: 1,
        tlb_entries: (64, 64),
        ooo: Some(OooConfig::default()),
    }
}

/// A one-core machine over `mem` and its (not yet started) core.
fn machine_on(mem: &Arc<MachineMemory>, model: Model) -> (MemSystem, CorePart) {
    let sys = MemSystem::new(
        &MemSystemConfig::default(),
        1,
        Arc::clone(mem),
        PartitionId(0),
    )
    .expect("default memory system");
    let core = CorePart::new(
        &setup(mem, model),
        |_| CpuidModel::default(),
        |stats| sys.hierarchy(CoreId(0), stats),
    );
    (sys, core)
}

/// A one-core machine with CODE in memory, its core started.
fn machine(model: Model) -> (Arc<MachineMemory>, MemSystem, CorePart) {
    let mem = Arc::new(MachineMemory::new(1 << 20).expect("1 MiB"));
    mem.write(MachineAddr(0x10000), CODE).expect("code fits");
    let (sys, mut core) = machine_on(&mem, model);
    let regs = ArchState {
        rip: 0x1000,
        rflags: 2,
        ..ArchState::default()
    };
    core.start(0, AddressSpaceId(1), regs, Arc::new(Window), Cycle::ZERO);
    (mem, sys, core)
}

/// Runs `core` on `sys` for `cycles`; returns it.
fn run_for(sys: &MemSystem, core: CorePart, cycles: u64) -> CorePart {
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
    engine.run(Some(Cycle(cycles)), &mut |_| {}).expect("runs");
    match engine.into_partitions().into_iter().next() {
        Some(MachinePart::Core(core)) => *core,
        _ => panic!("partition 0 is the core"),
    }
}

/// Runs CODE on one core in `model`; returns its registers, the trap's
/// cycle and the instructions retired.
fn run(model: Model) -> (ArchState, Cycle, u64) {
    let (_mem, sys, core) = machine(model);
    let core = run_for(&sys, core, 100_000);
    let (trap, at) = core.pending_trap(0).expect("trapped at the syscall");
    assert_eq!(*trap, Trap::Hypercall, "{model:?}");
    (core.regs(0).clone(), at, core.instructions())
}

/// A core partition's saved state, as a serializable value.
struct Saved<'a>(&'a CorePart);

impl serde::Serialize for Saved<'_> {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        self.0.save_state(s)
    }
}

fn save(core: &CorePart) -> Vec<u8> {
    postcard::to_stdvec(&Saved(core)).expect("serializes")
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

#[test]
fn a_saved_core_partition_restores_with_its_hierarchy_byte_for_byte() {
    for model in [Model::Inorder, Model::Ooo] {
        // Part way: misses in flight or just served, the loop running.
        let (mem, sys, core) = machine(model);
        let core = run_for(&sys, core, 200);
        let bytes = save(&core);
        // A fresh machine of the same setup, its memory restored.
        let mem2 = Arc::new(MachineMemory::new(1 << 20).expect("1 MiB"));
        let mut page = vec![0u8; 0x3000];
        mem.read(MachineAddr(0x10000), &mut page)
            .expect("read back");
        mem2.write(MachineAddr(0x10000), &page).expect("copy");
        let (sys2, mut copy) = machine_on(&mem2, model);
        copy.restore_state(&mut postcard::Deserializer::from_bytes(&bytes), &sys2)
            .expect("deserializes");
        copy.reattach_space(0, Arc::new(Window));
        assert_eq!(
            save(&copy),
            bytes,
            "{model:?}: restored state re-serializes identically"
        );
        assert_eq!(copy.regs(0), core.regs(0), "{model:?}");
        assert_eq!(copy.instructions(), core.instructions(), "{model:?}");
        assert_eq!(
            copy.hierarchy().stats().counter_by_name("l2.read_misses"),
            core.hierarchy().stats().counter_by_name("l2.read_misses"),
            "{model:?}: the hierarchy came back with its statistics"
        );
        assert!(bytes.len() > 10_000, "{model:?}: {} bytes", bytes.len());
    }
}

/// Runs `core` in the fast-forward model for `cycles` with the machine's
/// barrier work (commit, then serialized instructions) at every barrier
/// when `barrier` is set.
fn run_fast(sys: &MemSystem, core: CorePart, cycles: u64, barrier: bool) -> CorePart {
    let mut b = EngineBuilder::new();
    b.add(
        MachinePart::Core(Box::new(core)),
        PartitionSpec::core("core0", "core"),
    );
    sys.add_to(&mut b, MachinePart::Uncore);
    let mut engine = b
        .build(EngineConfig {
            quantum: 1000,
            ..EngineConfig::default()
        })
        .expect("engine builds");
    engine
        .run(Some(Cycle(cycles)), &mut |ctx| {
            let now = ctx.now();
            if let (true, MachinePart::Core(c)) = (barrier, ctx.partition_mut(PartitionId(0))) {
                c.fast_commit();
                c.fast_serialize(now);
            }
        })
        .expect("runs");
    match engine.into_partitions().into_iter().next() {
        Some(MachinePart::Core(core)) => *core,
        _ => panic!("partition 0 is the core"),
    }
}

#[test]
fn fast_forward_buffers_stores_to_the_barrier_and_serializes_atomics() {
    // Without the barrier's work the core stops at `lock xadd`, its store
    // still in its log: memory is untouched.
    let (mem, sys, core) = machine(Model::Fast);
    let mut core = run_fast(&sys, core, 10_000, false);
    assert_eq!(
        core.fast_pending(),
        (true, true),
        "store logged, xadd waits"
    );
    assert_eq!(mem.read_u64(MachineAddr(0x11000)).expect("in range"), 0);
    assert_eq!(core.regs(0).gpr[3], 5050, "its own load saw its store");
    assert_eq!(core.instructions(), 2 + 3 * 100 + 3);
    // The barrier: commit, then the xadd alone.
    core.fast_commit();
    assert_eq!(mem.read_u64(MachineAddr(0x11000)).expect("in range"), 5050);
    core.fast_serialize(Cycle(10_000));
    assert_eq!(core.fast_pending(), (false, false));
    assert_eq!(mem.read_u64(MachineAddr(0x11000)).expect("in range"), 5055);
    assert_eq!(core.regs(0).gpr[2], 5050, "xadd's old value");

    // With the machine's barrier work it runs to the syscall with the
    // results of every other model.
    let (_mem, sys, core) = machine(Model::Fast);
    let core = run_fast(&sys, core, 100_000, true);
    let (trap, at) = core.pending_trap(0).expect("trapped at the syscall");
    assert_eq!(*trap, Trap::Hypercall);
    let r = core.regs(0);
    assert_eq!(
        (r.gpr[0], r.gpr[3], r.gpr[2], r.gpr[6]),
        (5050, 5050, 5050, 5055)
    );
    assert_eq!(core.instructions(), 2 + 3 * 100 + 6);
    // One cycle per instruction, the xadd alone at the first barrier
    // (cycle 1000), then two more: the syscall ends at 1003.
    assert_eq!(at, Cycle(1003));
    assert_eq!(
        core.hierarchy().stats().counter_by_name("l1d.hits"),
        Some(0),
        "the caches are not used"
    );
}

#[test]
fn fast_forward_faults_are_precise_across_a_multi_store_instruction() {
    let code: &[u8] = &[
        0x48, 0xc7, 0xc0, 0x11, 0x11, 0, 0, // mov rax, 0x1111
        0x48, 0x89, 0x04, 0x25, 0x00, 0x20, 0, 0, // mov [0x2000], rax
        0x0f, 0xae, 0x04, 0x25, 0x00, 0x2f, 0, 0, // fxsave [0x2f00]: runs into 0x3000
        0x0f, 0x05, // syscall (not reached)
    ];
    let mem = Arc::new(MachineMemory::new(1 << 20).expect("1 MiB"));
    mem.write(MachineAddr(0x10000), code).expect("code fits");
    let (sys, mut core) = machine_on(&mem, Model::Fast);
    let regs = ArchState {
        rip: 0x1000,
        rflags: 2,
        ..ArchState::default()
    };
    core.start(0, AddressSpaceId(1), regs, Arc::new(Window), Cycle::ZERO);
    let core = run_fast(&sys, core, 10_000, true);
    let (trap, _) = core.pending_trap(0).expect("trapped at the fault");
    let Trap::Fault(f) = trap else {
        panic!("expected #PF, got {trap:?}");
    };
    assert_eq!((f.vector, f.rip), (14, 0x100f));
    assert!((0x3000..0x3100).contains(&f.addr), "#PF at {:#x}", f.addr);
    assert_eq!(core.instructions(), 2, "the fxsave did not retire");
    assert_eq!(core.regs(0).rip, 0x100f);
    assert_eq!(
        mem.read_u64(MachineAddr(0x11000)).expect("in range"),
        0x1111
    );
    let mut page_end = [0u8; 0x100];
    mem.read(MachineAddr(0x11f00), &mut page_end)
        .expect("in range");
    assert!(
        page_end.iter().all(|&b| b == 0),
        "nothing of the faulting fxsave reached memory"
    );
}
