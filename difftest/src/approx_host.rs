//! rcpps/rsqrtps against the host: the generator of the simulator's
//! approximation tables (`smpsim_cores::simd::approx`) and the check that
//! the model reproduces the host bit for bit, on the host the tables came
//! from (AMD family 1Ah, Zen 5). Other hosts' approximations differ (the
//! architecture bounds only their error), so there the check is skipped
//! and the differential tester does not generate the four instructions.

use smpsim_cores::simd::approx::{rcp32, rsqrt32};
use std::arch::x86_64::{_mm_cvtss_f32, _mm_rcp_ss, _mm_rsqrt_ss, _mm_set_ss};

/// The host's `rcpss` of the bits `a`.
fn host_rcp(a: u32) -> u32 {
    // SAFETY: the intrinsics need only SSE, part of every x86-64 processor.
    unsafe { _mm_cvtss_f32(_mm_rcp_ss(_mm_set_ss(f32::from_bits(a)))).to_bits() }
}

/// The host's `rsqrtss` of the bits `a`.
fn host_rsqrt(a: u32) -> u32 {
    // SAFETY: as in `host_rcp`.
    unsafe { _mm_cvtss_f32(_mm_rsqrt_ss(_mm_set_ss(f32::from_bits(a)))).to_bits() }
}

/// Whether this host's approximations are the model's.
fn host_matches_model() -> bool {
    super::HostCaps::detect().approx_exact
}

/// The 12-bit result fraction of `f` at the top-12-bit fraction index `i`
/// of an input with biased exponent `exp`.
fn frac12(f: fn(u32) -> u32, exp: u32, i: u32) -> u32 {
    (f((exp << 23) | (i << 11)) >> 11) & 0xfff
}

/// One table in the model's layout: the result at the start of each of
/// the 256 segments of 16 indices, and for each of the 16 slope groups
/// (256 indices each) the drop at each of a segment's 16 positions.
fn table(f: fn(u32) -> u32, exp: u32) -> (Vec<u32>, Vec<Vec<u32>>) {
    let base: Vec<u32> = (0..256).map(|s| frac12(f, exp, s * 16)).collect();
    let steps = (0..16)
        .map(|g| {
            (0..16)
                .map(|k| base[g * 16] - frac12(f, exp, g as u32 * 256 + k))
                .collect()
        })
        .collect();
    (base, steps)
}

fn rust_rows(v: &[u32], per_line: usize) -> String {
    v.chunks(per_line)
        .map(|c| {
            let items: Vec<String> = c.iter().map(|x| x.to_string()).collect();
            format!("    {},\n", items.join(", "))
        })
        .collect()
}

/// The generated region of `cores/src/simd/approx.rs`, as this host
/// gives it.
fn generated_tables() -> String {
    let mut out = String::new();
    for (name, f, exp) in [
        ("RCP", host_rcp as fn(u32) -> u32, 127),
        ("RSQRT_1", host_rsqrt, 127),
        ("RSQRT_2", host_rsqrt, 128),
    ] {
        let (base, steps) = table(f, exp);
        out += &format!(
            "#[rustfmt::skip]\nconst {name}_BASE: [u16; 256] = [\n{}];\n",
            rust_rows(&base, 16)
        );
        let flat: Vec<u32> = steps.concat();
        out += &format!(
            "#[rustfmt::skip]\nconst {name}_DROP: [u8; 256] = [\n{}];\n",
            rust_rows(&flat, 16)
        );
    }
    out
}

/// The source file holding the tables.
const APPROX_RS: &str = include_str!("../../cores/src/simd/approx.rs");
const REGION_START: &str = "// @generated start\n";
const REGION_END: &str = "// @generated end\n";

#[test]
#[ignore = "a generator: prints the tables of smpsim_cores::simd::approx"]
fn print_approx_tables() {
    assert!(
        host_matches_model(),
        "the tables come from an AMD family 1Ah host"
    );
    print!("{REGION_START}{}{REGION_END}", generated_tables());
}

#[test]
fn regenerating_the_tables_changes_nothing() {
    if !host_matches_model() {
        eprintln!("skipped: the host is not an AMD family 1Ah processor");
        return;
    }
    let start = APPROX_RS.find(REGION_START).expect("region start") + REGION_START.len();
    let end = APPROX_RS.find(REGION_END).expect("region end");
    assert_eq!(APPROX_RS[start..end], generated_tables());
}

/// Every top-12-bit fraction at every exponent, both signs, with a few
/// low-bit patterns; the special inputs besides.
fn inputs() -> impl Iterator<Item = u32> {
    (0u32..1 << 21).flat_map(|k| {
        let top = k & 0x1ff_fff; // sign, exponent, 12 fraction bits
        [0u32, 0x7ff, 0x2a5].map(|low| (top << 11) | low)
    })
}

#[test]
fn approx_model_matches_the_host_bit_for_bit() {
    if !host_matches_model() {
        eprintln!("skipped: the host is not an AMD family 1Ah processor");
        return;
    }
    for a in inputs() {
        assert_eq!(rcp32(a), host_rcp(a), "rcpss of {a:#010x}");
        assert_eq!(rsqrt32(a), host_rsqrt(a), "rsqrtss of {a:#010x}");
    }
}

#[test]
#[ignore = "slow: all 2^32 inputs"]
fn approx_model_matches_the_host_on_every_input() {
    assert!(host_matches_model());
    for a in 0..=u32::MAX {
        assert_eq!(rcp32(a), host_rcp(a), "rcpss of {a:#010x}");
        assert_eq!(rsqrt32(a), host_rsqrt(a), "rsqrtss of {a:#010x}");
    }
}
