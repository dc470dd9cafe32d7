//! `run --kernel FILE --domu` and `[[domain]] privileged` / `builtin`: a
//! kernel booted as an unprivileged domU under the built-in control domain,
//! whose own poweroff never makes a failed guest's run a success.

use smpsim::machine::config::{KernelSpec, MachineConfig};
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

fn smpsim(args: &[&str], extra: &[&Path]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_smpsim"))
        .args(args)
        .args(extra)
        .output()
        .expect("runs")
}

/// A private temp folder holding built-in `workload`'s image as an ELF file.
fn kernel_file(tag: &str, workload: &str) -> (PathBuf, PathBuf) {
    let dir = std::env::temp_dir().join(format!("smpsim-domu-{tag}-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    let path = dir.join(format!("{workload}.elf"));
    let w = smpsim_workloads::find(workload).expect("built in");
    std::fs::write(&path, w.image).expect("write the image");
    (dir, path)
}

fn stdout(o: &Output) -> String {
    format!(
        "{}\n{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

#[test]
fn a_kernel_runs_as_domain_1_under_the_built_in_control_domain() {
    let (_dir, path) = kernel_file("ok", "hello");
    let args = ["run", "--cores", "3", "--vcpus", "2", "--domu", "--kernel"];
    let out = smpsim(&args, &[&path]);
    let text = stdout(&out);
    assert!(out.status.success(), "{text}");
    assert!(text.contains("(d1) PASS hello"), "{text}");
    assert!(
        text.contains("(d0) dom0: waiting for 1 domain(s) to shut down"),
        "{text}"
    );
    assert!(text.contains("(d0) PASS dom0"), "{text}");
    let d1 = text
        .find("domain 1     poweroff")
        .expect("the guest's shutdown");
    let d0 = text.find("domain 0     poweroff").expect("dom0's shutdown");
    assert!(d1 < d0, "dom0 powers off after the guest: {text}");
}

#[test]
fn a_failed_domu_fails_the_run_though_dom0_powers_off() {
    let (_dir, path) = kernel_file("crash", "fault");
    let out = smpsim(&["run", "--cores", "2", "--domu", "--kernel"], &[&path]);
    let text = stdout(&out);
    assert!(!out.status.success(), "{text}");
    assert!(text.contains("domain 1     crash"), "{text}");
    assert!(text.contains("domain 0     poweroff"), "{text}");
    assert!(!text.contains("result       success"), "{text}");
}

#[test]
fn domu_needs_a_kernel_and_a_context_for_dom0() {
    let out = smpsim(&["run", "--domu"], &[]);
    assert!(!out.status.success());
    assert!(stdout(&out).contains("--kernel"), "{}", stdout(&out));
    let (_dir, path) = kernel_file("fit", "hello");
    let out = smpsim(&["run", "--cores", "1", "--domu", "--kernel"], &[&path]);
    assert!(!out.status.success());
    assert!(
        stdout(&out).contains("2 kernel domain(s) need 2 VCPUs"),
        "{}",
        stdout(&out)
    );
}

#[test]
fn config_domains_make_domain_0_the_privileged_built_in_control_domain() {
    let (dir, path) = kernel_file("cfg", "hello");
    let cfg = dir.join("domu.toml");
    let toml = format!(
        "cores = 2\n[[domain]]\nbuiltin = \"dom0\"\nprivileged = true\nvcpus = 1\n\
         [[domain]]\nkernel = \"{}\"\n",
        path.display()
    );
    std::fs::write(&cfg, toml).expect("write");
    let out = smpsim(&["run", "-c"], &[&cfg]);
    let text = stdout(&out);
    assert!(out.status.success(), "{text}");
    assert!(
        text.contains("(d0) dom0: waiting for 1 domain(s)"),
        "{text}"
    );
    assert!(text.contains("(d1) PASS hello"), "{text}");
    // Unprivileged, it has no domctl rights and nothing to wait for.
    let toml = "cores = 1\n[[domain]]\nbuiltin = \"dom0\"\n";
    std::fs::write(&cfg, toml).expect("write");
    let text = stdout(&smpsim(&["run", "-c"], &[&cfg]));
    assert!(text.contains("not the control domain"), "{text}");
}

#[test]
fn privileged_and_builtin_errors_name_the_file_key_and_domain() {
    let dir = std::env::temp_dir().join(format!("smpsim-domu-err-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    let p = dir.join("bad.toml");
    let load = |toml: &str| {
        std::fs::write(&p, toml).expect("write");
        MachineConfig::load(&p).expect_err("refused").to_string()
    };
    let e = load("[[domain]]\nkernel = \"a\"\n[[domain]]\nkernel = \"b\"\nprivileged = true\n");
    assert_eq!(
        e,
        format!(
            "{}:5: key `domain.privileged`: [[domain]] #2: true: only the first [[domain]] \
             (domain 0) may be the privileged control domain",
            p.display()
        )
    );
    let e = load("[[domain]]\nbuiltin = \"xl\"\n");
    assert!(
        e.contains("key `domain.builtin`: [[domain]] #1: \"xl\": allowed dom0"),
        "{e}"
    );
    let e = load("[[domain]]\nbuiltin = \"dom0\"\nkernel = \"k\"\n");
    assert!(e.contains("key `domain.builtin`: [[domain]] #1"), "{e}");
    assert!(e.contains("give one image, not both"), "{e}");
    let e = load("[[domain]]\nmemory_mib = 8\n");
    assert!(
        e.contains("key `domain.kernel`: [[domain]] #1: empty path"),
        "{e}"
    );
    let _ = KernelSpec::control_domain();
}
