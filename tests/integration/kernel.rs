//! `--kernel` and `[[domain]]`: booting a PV kernel from a file, the
//! errors that name the file, and the config tables.

use crate::support::assert_success;
use smpsim::machine::config::{KernelSpec, MachineConfig};
use smpsim::machine::{Machine, RunOptions};
use std::path::{Path, PathBuf};
use std::process::Command;

fn smpsim() -> Command {
    Command::new(env!("CARGO_BIN_EXE_smpsim"))
}

/// A private temp folder holding built-in `workload`'s image as an ELF file.
fn kernel_file(tag: &str, workload: &str) -> (PathBuf, PathBuf) {
    let dir = std::env::temp_dir().join(format!("smpsim-kernel-{tag}-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    let path = dir.join(format!("{workload}.elf"));
    let w = smpsim_workloads::find(workload).expect("built in");
    std::fs::write(&path, w.image).expect("write the image");
    (dir, path)
}

fn small() -> MachineConfig {
    MachineConfig {
        cores: 2,
        memory_mib: 256,
        max_cycles: 50_000_000,
        ..MachineConfig::default()
    }
}

fn stderr_of(args: &[&str], extra: &[&Path]) -> (bool, String) {
    let out = smpsim().args(args).args(extra).output().expect("runs");
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn a_built_in_image_boots_from_a_file_like_any_kernel() {
    let (_dir, path) = kernel_file("boot", "hello");
    let spec = KernelSpec {
        cmdline: "console=hvc0".into(),
        ..KernelSpec::new(&path)
    };
    let m = Machine::build_kernels(&small(), &[spec], &RunOptions::default()).expect("builds");
    let r = m.run();
    assert_success(&r, "hello as --kernel");
    assert_eq!(
        (r.domains, r.vcpus_per_domain),
        (1, 2),
        "one VCPU per context"
    );
    assert!(
        r.console.iter().any(|l| l.contains("PASS hello")),
        "{:?}",
        r.console
    );
    assert_eq!(r.workload, path.display().to_string());
}

#[test]
fn kernel_errors_name_the_file_and_the_problem() {
    let (dir, path) = kernel_file("errors", "hello");
    let text = dir.join("notes.txt");
    std::fs::write(&text, "not an image\n").expect("write");
    let (ok, err) = stderr_of(&["run", "--kernel"], &[&text]);
    assert!(!ok);
    assert!(
        err.contains(&format!("kernel {}: not an ELF image", text.display())),
        "{err}"
    );
    let missing = dir.join("missing.elf");
    let (ok, err) = stderr_of(&["run", "--kernel"], &[&missing]);
    assert!(!ok && err.contains("cannot read the file"), "{err}");
    assert!(err.contains(&missing.display().to_string()), "{err}");
    // hello with a 4 MiB bss: more than a 1 MiB domain holds.
    let big = dir.join("big.elf");
    let mut b = smpsim_workloads::find("hello")
        .expect("built in")
        .image
        .to_vec();
    let memsz = 64 + 56 + 40; // program header 1's p_memsz
    b[memsz..memsz + 8].copy_from_slice(&(4u64 << 20).to_le_bytes());
    std::fs::write(&big, &b).expect("write");
    let (ok, err) = stderr_of(
        &["run", "--cores", "1", "--domain-memory", "1", "--kernel"],
        &[&big],
    );
    assert!(!ok, "a 1 MiB domain cannot hold the image");
    assert!(
        err.contains(&format!("kernel {}: building domain 0:", big.display()))
            && err.contains("give the domain more memory"),
        "{err}"
    );
    let (ok, err) = stderr_of(
        &["run", "--ramdisk"],
        &[&missing, Path::new("--kernel"), &path],
    );
    assert!(!ok, "{err}");
    assert!(
        err.contains(&format!(
            "ramdisk {}: cannot read the file",
            missing.display()
        )),
        "{err}"
    );
}

#[test]
fn workload_and_kernel_exclude_each_other() {
    let (_dir, path) = kernel_file("excl", "hello");
    let (ok, err) = stderr_of(&["run", "-w", "hello", "--kernel"], &[&path]);
    assert!(!ok);
    assert!(
        err.contains("-w hello and --kernel both name the guest"),
        "{err}"
    );
    let (ok, err) = stderr_of(&["run", "--arg", "iters=3", "--kernel"], &[&path]);
    assert!(
        !ok && err.contains("--arg sets a built-in workload's arguments"),
        "{err}"
    );
    let (ok, err) = stderr_of(&["run", "--cmdline", "x"], &[]);
    assert!(!ok && err.contains("--kernel"), "{err}");
}

#[test]
fn config_domain_tables_boot_kernels_relative_to_the_file() {
    let (dir, path) = kernel_file("cfg", "hello");
    let cfg_path = dir.join("kernel.toml");
    std::fs::write(
        &cfg_path,
        "cores = 1\nmemory_mib = 256\n\n[[domain]]\nkernel = \"hello.elf\"\ncmdline = \"a b\"\nmemory_mib = 32\n",
    )
    .expect("write");
    let cfg = MachineConfig::load(&cfg_path).expect("valid");
    assert_eq!(cfg.domains.len(), 1);
    assert_eq!(cfg.domains[0].kernel, path, "relative to the config file");
    assert_eq!(cfg.domains[0].cmdline, "a b");
    assert_eq!(cfg.domains[0].memory_mib, 32);
    let out = smpsim()
        .arg("run")
        .arg("-c")
        .arg(&cfg_path)
        .output()
        .expect("runs");
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{text}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(text.contains("(d0) PASS hello"), "{text}");
    let (ok, err) = stderr_of(&["run", "-w", "hello", "-c"], &[&cfg_path]);
    assert!(!ok && err.contains("[[domain]]"), "{err}");
}

#[test]
fn config_domain_errors_name_file_line_key_and_allowed_values() {
    let dir = std::env::temp_dir().join(format!("smpsim-kernel-cfgerr-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    let p = dir.join("bad.toml");
    std::fs::write(
        &p,
        "cores = 1\n[[domain]]\nkernel = \"k\"\nmemory_mib = 0\n",
    )
    .expect("write");
    let e = MachineConfig::load(&p).expect_err("0 MiB").to_string();
    assert_eq!(
        e,
        format!(
            "{}:4: key `domain.memory_mib`: [[domain]] #1: 0 MiB: allowed 1 to 1048576",
            p.display()
        )
    );
    std::fs::write(&p, "[[domain]]\nkernel = \"k\"\nramdsk = \"r\"\n").expect("write");
    let e = MachineConfig::load(&p).expect_err("typo").to_string();
    assert!(
        e.contains(":3: key `domain.ramdsk`: unknown field `ramdsk`"),
        "{e}"
    );
    assert!(e.contains("`ramdisk`"), "lists the allowed keys: {e}");
    std::fs::write(&p, "[[domain]]\nkernel = \"k\"\nvcpus = 0\n").expect("write");
    let e = MachineConfig::load(&p).expect_err("0 VCPUs").to_string();
    assert!(e.contains("key `domain.vcpus`"), "{e}");
}

/// Instructions retired by each core, in core order.
fn per_core_instructions(r: &smpsim::machine::RunReport) -> Vec<u64> {
    r.stats
        .partitions
        .iter()
        .filter(|p| p.group == "core")
        .map(|p| p.stats.counters["core.instructions"])
        .collect()
}

#[test]
fn domain_cpus_pin_vcpus_to_hardware_contexts() {
    let (_dir, path) = kernel_file("pin", "hello");
    let cfg = MachineConfig {
        cores: 6,
        ..small()
    };
    // Domain 0 on contexts 5 and 2, domain 1 unpinned: it gets 0 and 1.
    let pinned = KernelSpec {
        cpus: Some(vec![5, 2]),
        ..KernelSpec::new(&path)
    };
    let free = KernelSpec {
        vcpus: Some(2),
        ..KernelSpec::new(&path)
    };
    let kernels = [pinned, free];
    let m = Machine::build_kernels(&cfg, &kernels, &RunOptions::default()).expect("builds");
    let states = m.context_states();
    for (context, vcpu) in [(5, "d0v0"), (2, "d0v1"), (0, "d1v0"), (1, "d1v1")] {
        let line = &states[context];
        assert!(
            line.starts_with(&format!("core{context}.0: {vcpu} ")),
            "{states:?}"
        );
    }
    for idle in [3, 4] {
        assert!(states[idle].contains("no VCPU"), "{states:?}");
    }
    let r = m.run();
    assert_success(&r, "two pinned hello domains");
    let insns = per_core_instructions(&r);
    for (core, &n) in insns.iter().enumerate() {
        assert_eq!(n == 0, matches!(core, 3 | 4), "core {core}: {insns:?}");
    }
    assert_eq!(insns.iter().sum::<u64>(), r.instructions);
    // The same two domains unpinned fill contexts 0 to 3.
    let unpinned: Vec<_> = kernels
        .iter()
        .map(|k| KernelSpec {
            cpus: None,
            vcpus: Some(2),
            ..k.clone()
        })
        .collect();
    let m = Machine::build_kernels(&cfg, &unpinned, &RunOptions::default()).expect("builds");
    let insns = per_core_instructions(&m.run());
    assert!(
        insns[..4].iter().all(|&n| n > 0) && insns[4..] == [0, 0],
        "{insns:?}"
    );
}

#[test]
fn domain_cpus_errors_name_the_domain_and_the_contexts() {
    let dir = std::env::temp_dir().join(format!("smpsim-kernel-pinerr-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    let p = dir.join("pin.toml");
    let cases = [
        (
            "[[domain]]\nkernel = \"k\"\ncpus = [1, 1]\n",
            ":3: key `domain.cpus`: [[domain]] #1: hardware context 1 is listed twice",
        ),
        (
            "[[domain]]\nkernel = \"k\"\nvcpus = 3\ncpus = [0, 1]\n",
            "key `domain.cpus`: [[domain]] #1: 2 hardware context(s) for vcpus = 3",
        ),
        (
            "[[domain]]\nkernel = \"k\"\ncpus = []\n",
            "key `domain.cpus`: [[domain]] #1: empty",
        ),
        (
            "[[domain]]\nkernel = \"k\"\ncpus = [0, 2]\n[[domain]]\nkernel = \"k\"\ncpus = [2]\n",
            "[[domain]] #2: hardware context 2 is pinned by [[domain]] #1 too",
        ),
    ];
    for (text, want) in cases {
        std::fs::write(&p, text).expect("write");
        let e = MachineConfig::load(&p).expect_err(text).to_string();
        assert!(e.contains(want), "{text}: {e}");
    }
    let (_kdir, path) = kernel_file("pinerr", "hello");
    let spec = KernelSpec {
        cpus: Some(vec![0, 4]),
        ..KernelSpec::new(&path)
    };
    let Err(e) = Machine::build_kernels(&small(), &[spec], &RunOptions::default()) else {
        panic!("context 4 of 2 builds");
    };
    let e = e.to_string();
    assert_eq!(
        e,
        "[[domain]] #1: cpus names hardware context 4, the machine has 2 (0 to 1: 2 cores × 1 \
         SMT, core-major); use --cores or --smt"
    );
}
