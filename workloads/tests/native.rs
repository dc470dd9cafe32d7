//! Runs the embedded guest images natively on the host under `mockxen`
//! (guest/host/mockxen.c: a user-space imitation of Xen's PV interface), to
//! check the guest runtime and every single-domain workload end to end
//! without the simulator. Also runs the host unit tests of the runtime's
//! pure code (guest/host/unit.c). Needs an x86-64 Linux host and `cc`.
#![cfg(all(target_arch = "x86_64", target_os = "linux"))]

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::OnceLock;

use smpsim_workloads::{
    catalogue, find, load_plan, GuestParams, Workload, FLAG_REGISTER_ALL_VCPU_INFO, NR_ARGS,
    VIRT_BASE,
};

fn tmp() -> PathBuf {
    PathBuf::from(env!("CARGO_TARGET_TMPDIR"))
}

fn guest_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("guest")
}

fn cc() -> String {
    std::env::var("CC").unwrap_or_else(|_| "cc".to_string())
}

fn build_host(src: &str, out: &str) -> PathBuf {
    let exe = tmp().join(out);
    let st = Command::new(cc())
        .args([
            "-O2", "-Wall", "-Wextra", "-Werror", "-pthread", "-fPIE", "-pie", "-I",
        ])
        .arg(guest_dir().join("include"))
        .arg("-o")
        .arg(&exe)
        .arg(guest_dir().join("host").join(src))
        .status()
        .expect("run the C compiler");
    assert!(st.success(), "building {src} failed");
    exe
}

fn mockxen() -> &'static Path {
    static EXE: OnceLock<PathBuf> = OnceLock::new();
    EXE.get_or_init(|| build_host("mockxen.c", "mockxen"))
}

struct Run {
    vcpus: u32,
    params_vcpus: u32,
    flags: u32,
    route: u32,
    args: [u64; NR_ARGS],
    /// Spurious upcall period in microseconds (MOCKXEN_NOISE_US), 0 = none.
    noise_us: u64,
}

impl Run {
    fn new(vcpus: u32) -> Self {
        Run {
            vcpus,
            params_vcpus: vcpus,
            flags: 0,
            route: 1,
            args: [0; NR_ARGS],
            noise_us: 0,
        }
    }
}

/// mockxen's fixed addresses: shared_info of domain d, the group's area.
const SHARED_INFO_VA: u64 = 0x20_0000;
const SHARED_AREA_VA: u64 = 0x20_2000;

/// Writes the image's memory contents (`load_plan` with `params`) from
/// VIRT_BASE to the image end into a file for mockxen.
fn memory_file(w: &Workload, params: &GuestParams, tag: &str) -> PathBuf {
    let elf = w.elf();
    let mut flat = vec![0u8; usize::try_from(elf.image_end().0 - VIRT_BASE).expect("small")];
    for c in load_plan(&elf, params).expect("image loads") {
        let at = usize::try_from(c.pseudo_phys).expect("small");
        flat[at..at + c.bytes.len()].copy_from_slice(&c.bytes);
    }
    let file = tmp().join(format!("{tag}.mem"));
    std::fs::write(&file, &flat).expect("write the memory file");
    file
}

/// Runs mockxen on one memory file per domain.
fn mockxen_run(w: &Workload, vcpus: u32, args: &[u64; NR_ARGS], files: &[PathBuf]) -> Output {
    mockxen_noisy(w, vcpus, args, files, 0)
}

/// Runs mockxen, with spurious upcalls every `noise_us` microseconds if > 0.
fn mockxen_noisy(
    w: &Workload,
    vcpus: u32,
    args: &[u64; NR_ARGS],
    files: &[PathBuf],
    noise_us: u64,
) -> Output {
    let elf = w.elf();
    let pages = w.memory_bytes(vcpus, args) / 4096;
    Command::new(mockxen())
        .env("MOCKXEN_NOISE_US", noise_us.to_string())
        .args([pages, elf.entry().0, elf.image_end().0].map(|v| format!("{v:#x}")))
        .args([vcpus.to_string(), "60".to_string()])
        .args(files)
        .output()
        .expect("run mockxen")
}

/// Asserts a run passed; returns its console output and mockxen's stderr.
fn passed(w: &Workload, tag: &str, out: &Output) -> (String, String) {
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(
        out.status.success() && stdout.contains(&format!("PASS {}\n", w.name)),
        "{tag}: {}\nconsole:\n{stdout}\nstderr:\n{stderr}",
        out.status,
    );
    (stdout, stderr)
}

/// Boots single-domain `w` under mockxen, asserting success.
fn boot(w: &Workload, r: &Run) -> (String, String) {
    let params = GuestParams {
        nr_vcpus: r.params_vcpus,
        flags: r.flags,
        shared_info_va: if r.route == 1 { SHARED_INFO_VA } else { 0 },
        args: r.args,
        ..Default::default()
    };
    // The arguments are part of the name: tests run in parallel, and two
    // runs of one workload with other arguments must not share a file.
    let args: Vec<String> = r.args.iter().map(u64::to_string).collect();
    let tag = format!(
        "{}-{}-{}-{}-{}-{}",
        w.name,
        r.vcpus,
        r.flags,
        r.route,
        r.noise_us,
        args.join("_")
    );
    let file = memory_file(w, &params, &tag);
    passed(
        w,
        &tag,
        &mockxen_noisy(w, r.vcpus, &r.args, &[file], r.noise_us),
    )
}

/// (upcalls, asynchronous upcalls, irets) counted by mockxen.
fn upcalls(stderr: &str) -> (u64, u64, u64) {
    let line = stderr
        .lines()
        .find(|l| l.starts_with("mockxen: "))
        .expect("mockxen summary");
    let nums: Vec<u64> = line
        .split(|c: char| !c.is_ascii_digit())
        .filter(|s| !s.is_empty())
        .map(|s| s.parse().expect("number"))
        .collect();
    (nums[0], nums[1], nums[2])
}

/// Smaller arguments where the defaults are slow with many host threads
/// spinning on 2 host cores.
fn quick_args(w: &Workload) -> [u64; NR_ARGS] {
    let mut a = [0; NR_ARGS];
    match w.name {
        "spinlock" | "ticketlock" => a[0] = 200,
        "barrier" => a[0] = 20,
        "false-sharing" => a[0] = 2000,
        "ring" => a[0] = 500,
        _ => {}
    }
    a
}

/// Single-domain workloads that end with PASS: all but `fault`, and but
/// `dom0`, the control domain, which waits (VIRQ_DOM_EXC, domctl) for the
/// other domains of a machine that mockxen, a one-domain host, does not
/// have (`tests/integration/domu.rs` runs it).
fn native_passing(w: &&Workload) -> bool {
    w.domains == 1 && !w.crashes_on_purpose && w.name != "dom0"
}

#[test]
fn every_single_domain_workload_passes_on_1_2_and_4_vcpus() {
    for w in catalogue().iter().filter(native_passing) {
        for vcpus in [1, 2, 4] {
            let mut r = Run::new(vcpus);
            r.args = quick_args(w);
            boot(w, &r);
        }
    }
}

#[test]
fn every_workload_survives_upcalls_at_arbitrary_instructions() {
    let mut asynchronous = 0;
    for w in catalogue().iter().filter(native_passing) {
        let mut r = Run::new(3);
        r.args = quick_args(w);
        r.noise_us = 100;
        let (_, stats) = boot(w, &r);
        let (up, asy, iret) = upcalls(&stats);
        assert_eq!(
            up, iret,
            "{}: every upcall left through iret: {stats}",
            w.name
        );
        asynchronous += asy;
    }
    assert!(asynchronous > 0, "some upcalls interrupted guest code");
}

/// The FIFO consumer against mockxen's FIFO ABI on real host threads:
/// in mode 1 Xen's side links at a queue's tail while the guest takes the
/// head, truly concurrently.
#[test]
fn evstorm_drains_fifo_queues_natively_in_both_modes() {
    let w = find("evstorm").expect("exists");
    for mode in [0, 1] {
        let mut r = Run::new(4);
        r.args[3] = mode;
        r.noise_us = 100;
        let (out, _) = boot(w, &r);
        let order = if mode == 0 {
            "priority and FIFO"
        } else {
            "FIFO"
        };
        // mockxen has no console or xenstore ports: the 4 IPI ports are 1-4.
        let setup = "evstorm: FIFO ABI, 4 VCPUs, 8192 ports 5..8196, 9 event-array pages";
        assert!(out.contains(setup), "{out}");
        let storm = format!(
            "evstorm: 2 rounds, {} sends, 16384 events delivered, ",
            32768 >> mode
        );
        assert!(out.contains(&storm), "{out}");
        assert!(
            out.contains(&format!(" upcalls, {order} order held\n")),
            "{out}"
        );
    }
}

#[test]
fn hello_prints_one_line_per_vcpu() {
    let (out, stats) = boot(find("hello").expect("exists"), &Run::new(3));
    let (up, _, iret) = upcalls(&stats);
    assert!(up >= 3, "each VCPU takes at least its IPI upcall: {stats}");
    assert_eq!(up, iret, "every upcall left through the iret hypercall");
    for v in 0..3 {
        assert!(
            out.contains(&format!("hello from VCPU {v} of 3 (IPI port ")),
            "{out}"
        );
    }
    assert!(
        out.contains("smpsim guest hello: Xen 4.19, 3 VCPUs"),
        "{out}"
    );
    assert!(
        out.contains("hello: 3 VCPUs checked in, every IPI delivered once"),
        "{out}"
    );
}

#[test]
fn vcpus_are_counted_with_is_up_when_params_say_zero() {
    let mut r = Run::new(3);
    r.params_vcpus = 0;
    let (out, _) = boot(find("hello").expect("exists"), &r);
    assert!(out.contains("3 VCPUs checked in"), "{out}");
}

#[test]
fn more_than_32_vcpus_register_their_vcpu_info() {
    let (out, _) = boot(find("hello").expect("exists"), &Run::new(40));
    assert!(out.contains("hello from VCPU 39 of 40"), "{out}");
    let (out, _) = boot(find("stress").expect("exists"), &Run::new(36));
    assert!(out.contains("stress: 36 VCPUs, 8 rounds"), "{out}");
    let mut r = Run::new(4);
    r.flags = FLAG_REGISTER_ALL_VCPU_INFO;
    r.args[0] = 50;
    boot(find("ipi-pingpong").expect("exists"), &r);
}

#[test]
fn shared_info_mapped_by_the_guest_with_update_va_mapping() {
    let mut r = Run::new(2);
    r.route = 2;
    boot(find("hello").expect("exists"), &r);
    boot(find("timer").expect("exists"), &r);
}

#[test]
fn runtime_pure_code_passes_host_unit_tests() {
    let exe = build_host("unit.c", "unit");
    let out = Command::new(exe).output().expect("run unit tests");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{}\n{stdout}\n{}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(stdout.contains("all host unit tests passed"), "{stdout}");
}

#[test]
fn a_failing_check_crashes_the_domain_with_its_message() {
    let w = find("ring").expect("exists");
    let mut args = [0; NR_ARGS];
    args[2] = 48;
    let params = GuestParams {
        nr_vcpus: 2,
        shared_info_va: SHARED_INFO_VA,
        args,
        ..Default::default()
    };
    let file = memory_file(w, &params, "ring-bad-slots");
    let out = mockxen_run(w, 2, &args, &[file]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(3), "SHUTDOWN_crash: {stdout}");
    assert!(
        stdout.ends_with("FAIL ring: ring slots 48 is not a power of two\n"),
        "{stdout}"
    );
}

#[test]
fn interdomain_pair_streams_through_a_shared_ring() {
    let w = find("interdomain").expect("exists");
    let args = w.defaults();
    assert_eq!(w.shared_area_bytes(&args), 4096, "mockxen shares one page");
    let files: Vec<PathBuf> = w
        .domain_params(1, &args, &[1, 2], SHARED_AREA_VA)
        .into_iter()
        .enumerate()
        .map(|(d, mut p)| {
            p.shared_info_va = SHARED_INFO_VA + d as u64 * 4096;
            memory_file(w, &p, &format!("interdomain-{d}"))
        })
        .collect();
    let (out, _) = passed(w, "interdomain", &mockxen_run(w, 1, &args, &files));
    assert_eq!(out.matches("PASS interdomain\n").count(), 2, "{out}");
    assert!(
        out.contains("interdomain: domain 0 (producer) done: 1000 items"),
        "{out}"
    );
    assert!(
        out.contains("interdomain: domain 1 (consumer) done: 1000 items"),
        "{out}"
    );
}

/// Runs `fault` in `mode` and returns its console output (exit status 3).
fn fault(mode: u64) -> String {
    let w = find("fault").expect("exists");
    let mut args = [0; NR_ARGS];
    args[0] = mode;
    let params = GuestParams {
        nr_vcpus: 2,
        shared_info_va: SHARED_INFO_VA,
        args,
        ..Default::default()
    };
    let file = memory_file(w, &params, &format!("fault-{mode}"));
    let out = mockxen_run(w, 2, &args, &[file]);
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    assert_eq!(
        out.status.code(),
        Some(3),
        "mode {mode}: SHUTDOWN_crash\n{stdout}"
    );
    assert!(!stdout.contains("PASS"), "{stdout}");
    stdout
}

#[test]
fn faults_reach_the_guest_trap_handlers_and_crash_the_domain() {
    let out = fault(1);
    assert!(
        out.contains("FAIL fault: exception 14 on VCPU 0 at rip 40"),
        "{out}"
    );
    assert!(out.contains("(error code 4, cr2 1000)"), "{out}");
    assert!(fault(2).contains("FAIL fault: exception 6 on VCPU 0"));
    assert!(fault(3).contains("FAIL fault: exception 0 on VCPU 0"));
    assert!(fault(4).ends_with(
        "FAIL fault: EVTCHNOP_send(unbound port 4000) returned -22 (-EINVAL, as expected)\n"
    ));
}

/// The `mockxen samples:` line: samples handed over by histogram id.
fn samples(stderr: &str) -> [u64; 3] {
    let line = stderr
        .lines()
        .find_map(|l| l.strip_prefix("mockxen samples: "))
        .expect("mockxen samples line");
    let nums: Vec<u64> = line
        .split(|c: char| !c.is_ascii_digit())
        .filter(|s| !s.is_empty())
        .map(|s| s.parse().expect("number"))
        .collect();
    [nums[0], nums[1], nums[2]]
}

#[test]
fn latency_samples_reach_the_hypervisor_once_each() {
    // 3 VCPUs: one pair and a lone VCPU pinging itself, 50 round trips each.
    let (_, stats) = boot(find("ipi-pingpong").expect("exists"), &Run::new(3));
    assert_eq!(samples(&stats), [100, 0, 0], "{stats}");
    for lock in ["spinlock", "ticketlock"] {
        let w = find(lock).expect("exists");
        let mut r = Run::new(3);
        r.args = quick_args(w);
        r.args[0] = 300; // more than one batch of 256 per VCPU
        let (_, stats) = boot(w, &r);
        assert_eq!(samples(&stats), [0, 900, 0], "{lock}: {stats}");
    }
    let w = find("barrier").expect("exists");
    let mut r = Run::new(3);
    r.args = quick_args(w);
    let (_, stats) = boot(w, &r);
    assert_eq!(samples(&stats), [0, 0, 3 * 2 * 20], "{stats}");
}

/// The `mockxen roi:` line: (begin, end) calls of smpsim_op(ROI).
fn roi_calls(stderr: &str) -> (u64, u64) {
    let line = stderr
        .lines()
        .find_map(|l| l.strip_prefix("mockxen roi: "))
        .expect("mockxen roi line");
    let nums: Vec<u64> = line
        .split(|c: char| !c.is_ascii_digit())
        .filter(|s| !s.is_empty())
        .map(|s| s.parse().expect("number"))
        .collect();
    (nums[0], nums[1])
}

/// Boots workload `name` with `vcpus` VCPUs and `args` (0 = default).
fn boot_args(name: &str, vcpus: u32, args: &[u64]) -> (String, String) {
    let mut r = Run::new(vcpus);
    r.args[..args.len()].copy_from_slice(args);
    boot(find(name).expect("exists"), &r)
}

const UBENCHES: [&str; 6] = [
    "ubench-alu-indep",
    "ubench-alu-chain",
    "ubench-branch",
    "ubench-mlp",
    "ubench-stlf",
    "ubench-smt",
];

#[test]
fn every_ubench_marks_one_roi_and_prints_one_result_line() {
    for name in UBENCHES {
        for vcpus in [1, 3] {
            let (out, stats) = boot_args(name, vcpus, &[]);
            assert_eq!(roi_calls(&stats), (1, 1), "{name} on {vcpus}: {stats}");
            let prefix = format!("{name}: ");
            let lines = out.lines().filter(|l| l.starts_with(&prefix)).count();
            assert_eq!(lines, 1, "{name} on {vcpus}:\n{out}");
        }
    }
}

#[test]
fn ubench_default_instruction_counts_are_as_documented() {
    let cases = [
        ("ubench-alu-indep", "6000 iterations, 204000 instructions"),
        ("ubench-alu-chain", "5000 iterations, 160000 instructions"),
        (
            "ubench-stlf",
            "8192 iterations, 212992 instructions, 65536 forwarded loads",
        ),
        (
            "ubench-smt",
            "1 VCPUs, 16000 iterations in all, 192000 instructions",
        ),
        (
            "ubench-mlp",
            "mode 0 (independent), 16384 loads, 131072 instructions",
        ),
    ];
    for (name, want) in cases {
        let (out, _) = boot_args(name, 1, &[]);
        assert!(out.contains(want), "{name}: want `{want}` in\n{out}");
    }
}

/// The guest's xorshift64 run `iters` times: how often bit 32 was set.
fn xorshift_bit32_count(iters: u64) -> u64 {
    let mut x: u64 = 0x1234_5678_9abc_def1;
    (0..iters)
        .filter(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x & (1 << 32) != 0
        })
        .count() as u64
}

#[test]
fn ubench_branch_counts_match_an_independent_generator() {
    let n = 16384;
    let set = xorshift_bit32_count(n);
    assert!((n * 2 / 5..=n * 3 / 5).contains(&set), "random bit: {set}");
    let (out, _) = boot_args("ubench-branch", 1, &[0, 0]);
    let want = format!(
        "mode 0 (unpredictable), {n} iterations, {} instructions, {set} fall-throughs",
        13 * n + set
    );
    assert!(out.contains(&want), "want `{want}` in\n{out}");
    let (out, _) = boot_args("ubench-branch", 2, &[1000, 1]);
    assert!(
        out.contains("mode 1 (predictable), 1000 iterations, 13000 instructions, 0 fall-throughs"),
        "{out}"
    );
}

#[test]
fn ubench_mlp_both_modes_walk_every_node_once() {
    for (mode, what, per) in [(0, "independent", 8), (1, "pointer chase", 4)] {
        let (out, _) = boot_args("ubench-mlp", 1, &[1024, mode, 64]);
        let want = format!(
            "mode {mode} ({what}), 1024 loads, {} instructions",
            1024 * per
        );
        assert!(out.contains(&want), "want `{want}` in\n{out}");
    }
}

#[test]
fn ubench_smt_splits_the_work_between_any_number_of_vcpus() {
    for vcpus in [2, 3] {
        let (out, _) = boot_args("ubench-smt", vcpus, &[1001]);
        let want = format!("ubench-smt: {vcpus} VCPUs, 1001 iterations in all, 12012 instructions");
        assert!(out.contains(&want), "want `{want}` in\n{out}");
    }
}

/// Runs single-domain `name` with `args`, expecting SHUTDOWN_crash.
fn crashes(name: &str, args: &[u64]) -> String {
    let w = find(name).expect("exists");
    let mut a = [0; NR_ARGS];
    a[..args.len()].copy_from_slice(args);
    let params = GuestParams {
        nr_vcpus: 1,
        shared_info_va: SHARED_INFO_VA,
        args: a,
        ..Default::default()
    };
    let file = memory_file(w, &params, &format!("{name}-bad"));
    let out = mockxen_run(w, 1, &a, &[file]);
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    assert_eq!(out.status.code(), Some(3), "SHUTDOWN_crash: {stdout}");
    stdout
}

#[test]
fn ubench_bad_arguments_fail_with_a_message() {
    assert!(crashes("ubench-branch", &[0, 2])
        .ends_with("FAIL ubench-branch: mode 2: 0 (unpredictable) or 1 (predictable)\n"));
    assert!(crashes("ubench-mlp", &[1000])
        .ends_with("FAIL ubench-mlp: nodes 1000 is not a power of two >= 2\n"));
    assert!(crashes("ubench-mlp", &[0, 3])
        .ends_with("FAIL ubench-mlp: mode 3: 0 (independent) or 1 (pointer chase)\n"));
}

/// The SSE workloads (issue 14) run natively on the host CPU, so their
/// checks are exercised here before the simulated cores can run them: each
/// passes on 1 and 3 VCPUs (and every mode of ubench-fp) and prints its
/// result line.
#[test]
fn sse_workloads_pass_natively_and_report() {
    let runs: [(&str, &[u64]); 7] = [
        ("matmul", &[]),
        ("nbody", &[]),
        ("memcpy", &[]),
        ("ubench-fp", &[0, 0]),
        ("ubench-fp", &[0, 1]),
        ("ubench-fp", &[0, 2]),
        ("ubench-fp", &[0, 3]),
    ];
    for (name, args) in runs {
        for vcpus in [1, 3] {
            let (out, _) = boot_args(name, vcpus, args);
            let prefix = format!("{name}: ");
            let line = out
                .lines()
                .find(|l| l.starts_with(&prefix))
                .unwrap_or_else(|| panic!("{name} {args:?} on {vcpus}: no result line in\n{out}"));
            eprintln!("{vcpus} VCPUs: {line}");
        }
    }
    // Odd sizes: a matrix order no tile divides, a body count that needs
    // padding.
    for (name, args) in [("matmul", &[37u64, 8][..]), ("nbody", &[13, 3])] {
        let (out, _) = boot_args(name, 2, args);
        assert!(
            out.contains(&format!("PASS {name}")),
            "{name} {args:?}:\n{out}"
        );
    }
}
