//! The shipped machine configs, and config errors a user can act on.

use smpsim::machine::config::{MachineConfig, Model};
use smpsim::machine::{Machine, RunOptions};
use std::path::{Path, PathBuf};
use std::process::Command;

fn config_files() -> Vec<PathBuf> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("configs");
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .expect("configs/ exists")
        .map(|e| e.expect("readable entry").path())
        .filter(|p| p.extension().is_some_and(|e| e == "toml"))
        .collect();
    files.sort();
    files
}

/// Contexts up to this many run `hello`; larger machines are only built.
const RUN_UP_TO: u32 = 16;

#[test]
fn every_config_loads_builds_and_small_ones_run_hello() {
    let files = config_files();
    assert!(files.len() >= 6, "{files:?}");
    let hello = smpsim_workloads::find("hello").expect("built in");
    for f in &files {
        let cfg = MachineConfig::load(f).unwrap_or_else(|e| panic!("{e}"));
        let m = Machine::build(&cfg, hello, &RunOptions::default())
            .unwrap_or_else(|e| panic!("{}: {e}", f.display()));
        if cfg.contexts() > RUN_UP_TO {
            continue;
        }
        let r = m.run();
        assert!(r.success, "{}: {} {:?}", f.display(), r.stop, r.error);
        assert_eq!(r.vcpus_per_domain, cfg.contexts(), "{}", f.display());
        assert!(
            r.console.iter().any(|l| l.contains("PASS hello")),
            "{}",
            f.display()
        );
    }
}

#[test]
fn default_toml_is_the_built_in_default() {
    let f = Path::new(env!("CARGO_MANIFEST_DIR")).join("configs/default.toml");
    let cfg = MachineConfig::load(&f).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(cfg, MachineConfig::default());
}

#[test]
fn shipped_configs_have_the_promised_shapes() {
    let load = |n: &str| {
        let f = Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("configs")
            .join(n);
        MachineConfig::load(&f).unwrap_or_else(|e| panic!("{e}"))
    };
    let server = load("server-16-mesh.toml");
    assert_eq!((server.cores, server.dram.channels), (16, 4));
    assert_eq!(
        (server.interconnect.mesh.cols, server.interconnect.mesh.rows),
        (4, 4)
    );
    assert_eq!(
        server.interconnect.topology,
        smpsim_uncore::interconnect::TopologyKind::Mesh
    );
    let smt = load("smt-8x2.toml");
    assert_eq!((smt.cores, smt.smt, smt.contexts()), (8, 2, 16));
    assert_eq!(load("desktop-4.toml").cores, 4);
    assert_eq!(load("manycore-64.toml").cores, 64);
    assert_eq!(load("manycore-256.toml").cores, 256);
}

/// Parses `text` as if read from `bad.toml`, expecting an error; returns
/// its one-line message.
fn error_of(text: &str) -> String {
    let e = MachineConfig::parse(Path::new("bad.toml"), text)
        .expect_err("the config is rejected")
        .to_string();
    assert!(!e.contains('\n'), "one line: {e}");
    e
}

#[test]
fn a_typoed_key_names_file_line_key_and_allowed_keys() {
    let e = error_of("cores = 4\n[hierarchy.l1d]\nsetz = 64\n");
    assert!(
        e.starts_with("bad.toml:3: key `hierarchy.l1d.setz`:"),
        "{e}"
    );
    assert!(e.contains("unknown field `setz`"), "{e}");
    assert!(e.contains("expected one of `sets`, `ways`"), "{e}");
}

#[test]
fn a_header_comment_is_not_part_of_the_key() {
    let e = error_of("cores = 4\n[hierarchy.l1d]   # the L1 data cache\nsetz = 64\n");
    assert!(
        e.starts_with("bad.toml:3: key `hierarchy.l1d.setz`:"),
        "{e}"
    );
}

#[test]
fn an_unknown_cpu_feature_lists_the_allowed_names() {
    let e = error_of("cores = 4\n[cpu]\nhide = [\"sse4.2\", \"avx\"]\n");
    assert!(e.starts_with("bad.toml:3: key `cpu.hide`"), "{e}");
    assert!(e.contains("unknown variant `avx`"), "{e}");
    assert!(e.contains("`sse4.1`") && e.contains("`bmi2`"), "{e}");
}

#[test]
fn cpu_hide_parses_into_the_feature_list() {
    let text = "cores = 1\n[cpu]\nhide = [\"sse4.2\", \"bmi2\"]\n";
    let cfg = MachineConfig::parse(Path::new("hide.toml"), text).expect("valid");
    assert_eq!(
        cfg.cpu.hide,
        vec![
            smpsim_cores::cpuid::Feature::Sse42,
            smpsim_cores::cpuid::Feature::Bmi2
        ]
    );
}

#[test]
fn a_negative_size_names_file_line_and_key() {
    let e = error_of("cores = 4\nmemory_mib = -5\n");
    assert!(e.starts_with("bad.toml:2: key `memory_mib`:"), "{e}");
    assert!(e.contains("-5"), "{e}");
    let e = error_of("[hierarchy.l1d]\nsets = -64\n");
    assert!(
        e.starts_with("bad.toml:2: key `hierarchy.l1d.sets`:"),
        "{e}"
    );
}

#[test]
fn a_set_count_that_is_not_a_power_of_two_is_rejected() {
    let e = error_of("cores = 4\n[hierarchy.l2]\nways = 8\nsets = 1000\n");
    assert!(e.starts_with("bad.toml:4: key `hierarchy.l2.sets`:"), "{e}");
    assert!(e.contains("1000") && e.contains("power of two"), "{e}");
}

#[test]
fn a_bad_prefetcher_names_its_key_and_the_allowed_kinds() {
    let e = error_of("[hierarchy.l1d.prefetch]\nkind = \"markov\"\n");
    assert!(
        e.starts_with("bad.toml:2: key `hierarchy.l1d.prefetch.kind`:"),
        "{e}"
    );
    assert!(e.contains("`none`, `next-line`, `stride`"), "{e}");
    let e = error_of("[hierarchy.l2.prefetch]\nkind = \"stride\"\ndegree = 0\n");
    assert!(
        e.starts_with("bad.toml:3: key `hierarchy.l2.prefetch.degree`:"),
        "{e}"
    );
    assert!(e.contains("expected 1 to 16"), "{e}");
    let e = error_of("[hierarchy.l1i.prefetch]\nkind = \"next-line\"\n");
    assert!(
        e.starts_with("bad.toml:2: key `hierarchy.l1i.prefetch.kind`:"),
        "{e}"
    );
    assert!(e.contains("the L1I has no prefetcher"), "{e}");
    let ok = MachineConfig::parse(
        Path::new("ok.toml"),
        "[hierarchy.l2.prefetch]\nkind = \"next-line\"\n",
    )
    .expect("valid");
    assert!(ok.hierarchy.l2.prefetch.enabled() && !ok.hierarchy.l1d.prefetch.enabled());
}

fn stderr_of(args: &[&str]) -> String {
    let out = Command::new(env!("CARGO_BIN_EXE_smpsim"))
        .args(args)
        .output()
        .expect("runs");
    assert!(!out.status.success(), "{args:?} must fail");
    String::from_utf8_lossy(&out.stderr).into_owned()
}

#[test]
fn a_quantum_of_zero_is_rejected_on_the_command_line() {
    let e = stderr_of(&["run", "--quantum", "0"]);
    assert_eq!(
        e.trim_end(),
        "smpsim: --quantum 0: the quantum must be at least 1 cycle"
    );
    let e = stderr_of(&["sweep", "quantum", "-w", "hello", "--values", "0,10"]);
    assert_eq!(
        e.trim_end(),
        "smpsim: --values: a quantum of 0 is not allowed; each must be at least 1 cycle"
    );
}

#[test]
fn a_quantum_of_zero_in_a_file_is_one_clear_error() {
    let e = MachineConfig::parse(Path::new("q.toml"), "cores = 2\nquantum = 0\n")
        .expect_err("quantum 0");
    assert_eq!(
        e.to_string(),
        "q.toml:2: key `quantum`: 0 cycles: allowed 1 to 1099511627776 (2^40; \
         leave the key out for the lookahead)"
    );
}

#[test]
fn a_config_without_a_quantum_uses_the_lookahead() {
    let cfg = MachineConfig {
        cores: 1,
        ..MachineConfig::parse(Path::new("q.toml"), "cores = 1\n").expect("valid")
    };
    let hello = smpsim_workloads::find("hello").expect("built in");
    let r = Machine::build(&cfg, hello, &RunOptions::default())
        .expect("builds")
        .run();
    assert!(r.lookahead > 0);
    assert_eq!(r.quantum, r.lookahead);
}

#[test]
fn out_of_order_and_switch_keys_are_checked() {
    let e = error_of("model = \"ooo\"\n[ooo.latency]\nmull = 3\n");
    assert!(e.starts_with("bad.toml:3: key `ooo.latency.mull`:"), "{e}");
    assert!(e.contains("expected one of `alu`, `branch`, `mul`"), "{e}");
    let e = error_of("model = \"oooo\"\n");
    assert!(e.starts_with("bad.toml:1: key `model`:"), "{e}");
    assert!(e.contains("`ooo`"), "allowed values listed: {e}");
    let e = error_of("smt = 2\n[ooo]\ncontexts = 4\n");
    assert!(e.starts_with("bad.toml:3: key `ooo.contexts`:"), "{e}");
    assert!(e.contains("set `smt` instead"), "{e}");
    let e = error_of("[switch]\nto = \"ooo\"\n");
    assert!(e.starts_with("bad.toml:2: key `switch.to`:"), "{e}");
    assert!(
        e.contains("neither switch.after_insns nor switch.at_roi"),
        "{e}"
    );
    let e = error_of("model = \"ooo\"\nsmt = 8\n");
    assert!(e.contains("phys_regs must exceed 32 per context"), "{e}");
    let ok = MachineConfig::parse(
        Path::new("ok.toml"),
        "model = \"functional\"\n[switch]\nto = \"ooo\"\nat_roi = true\n",
    )
    .expect("valid");
    assert_eq!(ok.switch.to, Some(Model::Ooo));
}
