//! Whole-machine checkpoints (issue 17): a run restored from a checkpoint
//! continues bit-identically (statistics and console equal those of the
//! run that was never stopped) at any host-thread count; a run
//! fast-forwarded to its ROI and restored into `ooo` equals one that
//! switched there; damaged files are one clear error.

use crate::support::{assert_success, config, json_without_host, roi, run};
use smpsim::checkpoint;
use smpsim::machine::config::{Model, SwitchConfig};
use smpsim::machine::{
    CheckpointAt, CheckpointPlan, CheckpointWritten, Machine, RunOptions, RunReport,
};
use smpsim_engine::HostThreads;
use std::path::{Path, PathBuf};

/// A fresh scratch directory for `what`.
fn scratch(what: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("smpsim-ckpt-{}-{what}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).expect("scratch directory");
    d
}

fn options(threads: HostThreads, args: &[(&str, u64)]) -> RunOptions {
    RunOptions {
        host_threads: threads,
        args: args.iter().map(|&(k, v)| (k.to_owned(), v)).collect(),
        ..RunOptions::default()
    }
}

/// Runs `name` on `cfg` writing the checkpoints `plan` asks for; returns
/// the report and the files written.
fn run_with_checkpoints(
    cfg: &smpsim::machine::config::MachineConfig,
    name: &str,
    args: &[(&str, u64)],
    plan: CheckpointPlan,
) -> (RunReport, Vec<CheckpointWritten>) {
    let w = smpsim_workloads::find(name).expect("built-in workload");
    let mut m = Machine::build(cfg, w, &options(HostThreads::Count(1), args)).expect("builds");
    m.set_checkpoints(plan);
    let r = m.run_in_place();
    (r, m.checkpoints_written().to_vec())
}

/// Restores `file` and runs it to the end.
fn restore(file: &Path, model: Option<Model>, threads: HostThreads) -> RunReport {
    let p = checkpoint::read(file).expect("checkpoint reads");
    Machine::restore(p, model, None, None, &options(threads, &[]))
        .expect("restores")
        .run()
}

const MODELS: [Model; 4] = [Model::Functional, Model::Inorder, Model::Ooo, Model::Fast];

/// Checkpoints `name` in `model` at a quarter, half and three quarters of
/// its run and checks each restore at 1, 2 and per-core host threads.
fn three_points(name: &str, model: Model) {
    let cfg = config(4, model);
    let full = run(&cfg, name, HostThreads::Count(1));
    if name != "fault" {
        assert_success(&full, name);
    }
    let want = json_without_host(&full);
    let dir = scratch(&format!("{name}-{}", model.name()));
    for quarter in 1..=3 {
        let at = full.cycles * quarter / 4;
        let out = dir.join(format!("q{quarter}"));
        let plan = CheckpointPlan {
            at: CheckpointAt::Cycle(at),
            every: None,
            out: out.clone(),
        };
        let (r, written) = run_with_checkpoints(&cfg, name, &[], plan);
        let what = format!("{name} in {} checkpointed at {at}", model.name());
        assert_eq!(written.len(), 1, "{what}: one checkpoint");
        assert!(
            written[0].cycle >= at,
            "{what}: written at {}",
            written[0].cycle
        );
        assert_eq!(json_without_host(&r), want, "{what}: the checkpointing run");
        for t in [
            HostThreads::Count(1),
            HostThreads::Count(2),
            HostThreads::PerCore,
        ] {
            let back = restore(&out, None, t);
            assert_eq!(json_without_host(&back), want, "{what}, restored on {t}");
        }
    }
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn every_workload_continues_bit_identically_from_three_checkpoints() {
    // The models take turns over the catalogue (every workload in every
    // model: the ignored test below).
    for (i, w) in smpsim_workloads::catalogue().iter().enumerate() {
        three_points(w.name, MODELS[i % MODELS.len()]);
    }
}

/// `cargo test --release --test integration checkpoint -- --ignored`
#[test]
#[ignore = "every workload in every model: minutes"]
fn every_workload_in_every_model_continues_bit_identically() {
    for w in smpsim_workloads::catalogue() {
        for m in MODELS {
            three_points(w.name, m);
        }
    }
}

#[test]
fn fast_forward_to_the_roi_checkpoint_then_restore_into_ooo() {
    for (name, args) in [
        ("ubench-mlp", &[("nodes", 2048), ("evict_kib", 1024)][..]),
        ("ubench-branch", &[("iters", 4096)][..]),
    ] {
        let cfg = config(1, Model::Functional);
        // Switching at the ROI: functional to it, ooo inside, functional
        // after.
        let switched = roi(&cfg, name, args);
        let dir = scratch(name);
        let out = dir.join("roi");
        let plan = CheckpointPlan {
            at: CheckpointAt::Roi,
            every: None,
            out: out.clone(),
        };
        let (plain, written) = run_with_checkpoints(&cfg, name, args, plan);
        assert_success(&plain, name);
        assert_eq!(
            written[0].cycle, switched.switches[0].cycle,
            "{name}: checkpointed at the ROI's barrier"
        );
        let p = checkpoint::read(&out).expect("reads");
        let sw = SwitchConfig {
            to: Some(Model::Ooo),
            after_insns: 0,
            at_roi: true,
        };
        let opts = options(HostThreads::Count(2), &[]);
        let restored = Machine::restore(p, Some(Model::Ooo), None, Some(&sw), &opts)
            .expect("restores")
            .run();
        assert_success(&restored, name);
        assert_eq!(
            restored.switches.len(),
            2,
            "{name}: {:?}",
            restored.switches
        );
        assert_eq!(restored.switches[0].why, "restore");
        // The same measurement: only why the first switch happened differs.
        let mut same = restored.clone();
        same.switches[0].why = "roi begin".into();
        assert_eq!(
            json_without_host(&same),
            json_without_host(&switched),
            "{name}"
        );
        // And ooo did run: it differs from a purely functional run.
        assert_ne!(restored.cycles, plain.cycles, "{name}");
        let _ = std::fs::remove_dir_all(&dir);
    }
}

#[test]
fn checkpoints_every_n_cycles_and_after_n_instructions() {
    let cfg = config(4, Model::Inorder);
    let full = run(&cfg, "reduction", HostThreads::Count(1));
    let want = json_without_host(&full);
    let dir = scratch("every");
    let every = full.cycles / 5;
    let plan = CheckpointPlan {
        at: CheckpointAt::Insns(full.instructions / 4),
        every: Some(every),
        out: dir.join("s"),
    };
    let (r, written) = run_with_checkpoints(&cfg, "reduction", &[], plan);
    assert_eq!(json_without_host(&r), want);
    assert!(written.len() >= 3, "{written:?}");
    for pair in written.windows(2) {
        let gap = pair[1].cycle - pair[0].cycle;
        assert!(gap >= every && gap < every + 64, "{written:?}");
    }
    for w in &written {
        let (cycle, file) = (&w.cycle, &w.path);
        assert_eq!(
            file.file_name().and_then(|n| n.to_str()),
            Some(format!("s.{cycle}").as_str())
        );
        let p = checkpoint::read(file).expect("reads");
        assert_eq!(p.engine.now.get(), *cycle);
        let info = checkpoint::describe(&p, 0).join("\n");
        assert!(info.contains(&format!("cycle        {cycle}")), "{info}");
        assert!(info.contains("reduction"), "{info}");
    }
    // The first one: taken once a quarter of the instructions retired.
    let p = checkpoint::read(&written[0].path).expect("reads");
    let first = Machine::restore(p, None, None, None, &options(HostThreads::PerCore, &[]))
        .expect("restores");
    assert!(first.instructions_retired() >= full.instructions / 4);
    assert_eq!(json_without_host(&first.run()), want);
    let last = restore(
        &written[written.len() - 1].path,
        None,
        HostThreads::Count(2),
    );
    assert_eq!(json_without_host(&last), want);
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn bad_checkpoint_files_are_one_clear_error() {
    let cfg = config(2, Model::Functional);
    let dir = scratch("bad");
    let good = dir.join("good");
    let plan = CheckpointPlan {
        at: CheckpointAt::Cycle(20_000),
        every: None,
        out: good.clone(),
    };
    run_with_checkpoints(&cfg, "hello", &[], plan);
    let bytes = std::fs::read(&good).expect("written");
    let bad = dir.join("bad");
    let error_of = |b: &[u8]| {
        std::fs::write(&bad, b).expect("writes");
        checkpoint::read(&bad).expect_err("rejected").to_string()
    };
    let named = |e: &str, what: &str| {
        assert!(e.contains(&bad.display().to_string()), "{e}");
        assert!(e.contains(what), "{e}");
    };
    named(&error_of(&bytes[..bytes.len() / 2]), "checksum mismatch");
    named(&error_of(&bytes[..12]), "truncated");
    named(&error_of(b"ELF and more"), "not an smpsim checkpoint");
    let mut v = bytes.clone();
    v[8..12].copy_from_slice(&7u32.to_le_bytes());
    named(&error_of(&v), "format version 7");
    let mut v = bytes.clone();
    let last = v.len() - 1;
    v[last] ^= 0x40;
    named(&error_of(&v), "checksum mismatch");
    let missing = checkpoint::read(&dir.join("none")).expect_err("missing");
    assert!(missing.to_string().contains("cannot read"), "{missing}");
    // A well-formed file whose config builds another machine.
    let mut p = checkpoint::read(&good).expect("reads");
    let mut other = p.config().expect("decodes");
    other.cores = 3;
    p.cfg = serde_json::to_string(&other).expect("encodes");
    let Err(e) = Machine::restore(p, None, None, None, &RunOptions::default()) else {
        panic!("a checkpoint of 2 cores restored into 3");
    };
    assert!(e.contains("partitions"), "{e}");
    // From the command line: exit status 2 and the reason, no panic.
    std::fs::write(&bad, &bytes[..100]).expect("writes");
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_smpsim"))
        .args(["run", "--restore"])
        .arg(&bad)
        .output()
        .expect("runs");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(stderr.contains("checksum mismatch"), "{stderr}");
    let _ = std::fs::remove_dir_all(&dir);
}
