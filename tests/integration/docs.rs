//! The samples in README.md and docs/*.md are real output: each block after
//! a `<!-- sample: smpsim ARGS | mask N M … -->` marker is compared with
//! what `smpsim ARGS` prints now, so samples cannot go stale.
//! `scripts/regen-docs` (`SMPSIM_BLESS=1 cargo test --test integration docs`)
//! rewrites them.
//!
//! Host-dependent figures are masked on both sides: the summary's `host`
//! line, and in a table the whitespace-separated columns listed after
//! `mask` (0-based) in every row but the header. Lines are compared token
//! by token, so padding that follows a host figure's width does not
//! matter. Commands run in a fresh directory per document (with `configs/`
//! linked in), in document order, so one sample can read another's output.

use std::path::{Path, PathBuf};
use std::process::Command;

/// One sample: the command, the masked columns, and where its block is.
struct Sample {
    args: Vec<String>,
    mask: Vec<usize>,
    /// Byte range of the block's body (between the fences).
    body: std::ops::Range<usize>,
}

fn samples(text: &str) -> Vec<Sample> {
    let mut out = Vec::new();
    let mut from = 0;
    while let Some(i) = text[from..].find("<!-- sample: ") {
        let start = from + i + "<!-- sample: ".len();
        let end = start + text[start..].find("-->").expect("marker closed");
        let (cmd, mask) = text[start..end]
            .split_once("| mask")
            .unwrap_or((&text[start..end], ""));
        let args: Vec<String> = cmd.split_whitespace().skip(1).map(str::to_owned).collect();
        let mask = mask
            .split_whitespace()
            .map(|m| m.parse().expect("column"))
            .collect();
        let fence = end + text[end..].find("```").expect("a block follows");
        let body_start = fence + text[fence..].find('\n').expect("fence line") + 1;
        let body_end = body_start + text[body_start..].find("```").expect("block closed");
        out.push(Sample {
            args,
            mask,
            body: body_start..body_end,
        });
        from = body_end;
    }
    out
}

/// The text as compared: tokens per line, host figures masked.
fn normalize(text: &str, mask: &[usize]) -> Vec<Vec<String>> {
    let mut lines = text.lines();
    let header: Vec<String> = lines
        .next()
        .map(|l| l.split_whitespace().map(str::to_owned).collect())
        .unwrap_or_default();
    let first = header.first().cloned();
    let rows = lines.map(|l| {
        let mut t: Vec<String> = l.split_whitespace().map(str::to_owned).collect();
        if t.first().map(String::as_str) == Some("host") {
            t.truncate(1);
        } else if t.first() != first.as_ref() {
            for &m in mask {
                if let Some(c) = t.get_mut(m) {
                    *c = "~".into();
                }
            }
        }
        t
    });
    std::iter::once(header).chain(rows).collect()
}

fn run(dir: &Path, args: &[String]) -> String {
    let out = Command::new(env!("CARGO_BIN_EXE_smpsim"))
        .args(args)
        .current_dir(dir)
        .output()
        .expect("runs");
    String::from_utf8(out.stdout).expect("utf-8")
}

fn check(doc: &str) -> Vec<String> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let path = root.join(doc);
    let text = std::fs::read_to_string(&path).expect("doc");
    let dir: PathBuf = std::env::temp_dir().join(format!(
        "smpsim-docs-{}-{}",
        std::process::id(),
        doc.replace('/', "-")
    ));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("temp dir");
    let configs = dir.join("configs");
    std::os::unix::fs::symlink(root.join("configs"), &configs).expect("link configs");
    let bless = std::env::var_os("SMPSIM_BLESS").is_some();
    let mut fixed = text.clone();
    let mut stale = Vec::new();
    // Run in document order (a later sample may read an earlier one's
    // output); replace from the end so earlier ranges stay valid.
    let all = samples(&text);
    let got: Vec<String> = all.iter().map(|s| run(&dir, &s.args)).collect();
    for (s, got) in all.iter().zip(&got).rev() {
        let want = &text[s.body.clone()];
        if normalize(got, &s.mask) != normalize(want, &s.mask) {
            stale.push(format!(
                "{doc}: `smpsim {}` prints\n{got}\nbut the sample is\n{want}",
                s.args.join(" ")
            ));
            fixed.replace_range(s.body.clone(), got);
        }
    }
    if bless && fixed != text {
        std::fs::write(&path, fixed).expect("bless");
        return Vec::new();
    }
    stale
}

#[test]
fn readme_and_docs_samples_match_what_the_commands_print() {
    let mut stale = Vec::new();
    for doc in ["README.md", "docs/experiments.md"] {
        stale.extend(check(doc));
    }
    assert!(
        stale.is_empty(),
        "stale samples (SMPSIM_BLESS=1 rewrites them):\n{}",
        stale.join("\n")
    );
}

#[test]
fn samples_are_found_and_masked() {
    let text = "x\n<!-- sample: smpsim run -w hello | mask 1 -->\n```\na b\nx 1 2\n```\n";
    let s = samples(text);
    assert_eq!(s.len(), 1);
    assert_eq!(s[0].args, ["run", "-w", "hello"]);
    assert_eq!(&text[s[0].body.clone()], "a b\nx 1 2\n");
    assert_eq!(
        normalize("a b\nx 1 2\nhost 3 s", &[1]),
        [vec!["a", "b"], vec!["x", "~", "2"], vec!["host"]]
    );
}

#[test]
fn docs_link_nothing_outside_the_repository() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    for doc in ["README.md", "docs/experiments.md"] {
        let text = std::fs::read_to_string(root.join(doc)).expect("doc");
        assert!(
            !text.contains("](../"),
            "{doc} links outside the repository"
        );
        assert!(
            !text.contains("configs/X.toml"),
            "{doc} names a config that does not exist"
        );
    }
}
