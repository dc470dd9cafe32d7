//! `selftest isa --isa GROUP`: each instruction group runs through the
//! harness. The groups in [`EXACT`] must match the host exactly; the others
//! are implemented in other branches (their instructions are mostly #UD in
//! the simulator here), so for them the test only asserts that the harness
//! ran every case without a sandbox crash. When a family merges, move its
//! group into `EXACT`.

use smpsim_difftest::gen::Group;
use smpsim_difftest::{run, Config};

/// Groups whose cases must show no mismatch.
const EXACT: &[Group] = &[
    Group::Int,
    Group::SseMov,
    Group::SseFp,
    Group::SseInt,
    Group::Sse4,
    Group::Bmi,
];

fn run_group(group: Group, cases: u64, seed: u64) -> (smpsim_difftest::Summary, String) {
    let mut cfg = Config::new(cases, seed);
    cfg.groups = vec![group];
    cfg.show = 1;
    let mut out = Vec::new();
    let s = run(&cfg, &mut out).expect("difftest runs");
    (s, String::from_utf8_lossy(&out).into_owned())
}

#[test]
fn sse_moves_match_the_host() {
    let (s, text) = run_group(Group::SseMov, 4000, 1);
    assert_eq!(s.mismatches, 0, "{text}{}", s.last_line());
    assert_eq!(s.native_crashes, 0);
    assert!(s.faulting_cases > 0, "no #GP/#PF case was compared");
    assert!(s.mnemonics >= 20, "{}", s.last_line());
}

fn check(group: Group) {
    let (s, text) = run_group(group, 300, 2);
    assert_eq!(s.cases, 300);
    assert_eq!(s.native_crashes, 0, "{text}");
    assert!(s.mnemonics >= 10, "{}", s.last_line());
    if EXACT.contains(&group) {
        assert_eq!(s.mismatches, 0, "{text}{}", s.last_line());
    } else if s.mismatches > 0 && text.contains("sim vector 6") {
        assert!(text.contains("simulator: #UD (unsupported)"), "{text}");
    }
}

#[test]
fn sse_fp_runs() {
    check(Group::SseFp);
}

#[test]
fn sse_int_runs() {
    check(Group::SseInt);
}

#[test]
fn sse4_runs() {
    check(Group::Sse4);
}

/// x87 matches the host but for rare corner cases still open (about 1 case
/// in 10 000 random sequences: NaN choice with unsupported operands,
/// fprem1's C2 on some huge quotients); the bound catches any regression.
#[test]
fn x87_matches_the_host_but_for_rare_corner_cases() {
    check(Group::X87);
    let (s, text) = run_group(Group::X87, 3000, 21);
    assert!(s.mismatches <= 2, "{text}{}", s.last_line());
    assert!(s.mnemonics >= 80, "{}", s.last_line());
}

#[test]
fn bmi_runs() {
    check(Group::Bmi);
}

#[test]
fn all_groups_together_run() {
    let mut cfg = Config::new(500, 3);
    cfg.groups = Group::parse_list("all").expect("parses");
    cfg.show = 0;
    let s = run(&cfg, &mut Vec::new()).expect("difftest runs");
    assert_eq!(s.native_crashes, 0);
    assert!(s.mnemonics > 200, "{}", s.last_line());
}
