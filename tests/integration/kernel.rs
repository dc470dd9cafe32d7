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
