//! Output paths checked before a run starts, so a typo in `--stats` or
//! `--out` costs a second, not the simulation.
//!
//! # Errors
//! Each check returns a message naming the path, what it is for and what
//! is wrong with it.

use std::fs::OpenOptions;
use std::path::Path;

/// Checks that `path` (the `what` output, e.g. "--stats") can be written:
/// it is not a directory, and its directory exists or can be created (as
/// `--out` directories are). The check opens the file for appending, which
/// leaves nothing behind: a file that did not exist is removed again.
pub fn check_file(path: &Path, what: &str) -> Result<(), String> {
    let bad = |why: String| Err(format!("{what} {}: {why}", path.display()));
    if path.is_dir() {
        return bad("is a directory; name a file in it".into());
    }
    let parent = path.parent().filter(|p| !p.as_os_str().is_empty());
    if let Some(dir) = parent.filter(|d| !d.is_dir()) {
        if let Err(e) = std::fs::create_dir_all(dir) {
            return bad(format!(
                "directory {} cannot be created: {e}",
                dir.display()
            ));
        }
    }
    let existed = path.exists();
    match OpenOptions::new().append(true).create(true).open(path) {
        Ok(_) if !existed => std::fs::remove_file(path)
            .or_else(|e| bad(format!("cannot remove the probe file: {e}"))),
        Ok(_) => Ok(()),
        Err(e) => bad(format!("cannot be written: {e}")),
    }
}

/// Creates `dir` (the `what` output directory) with its parents and checks
/// that files can be written in it.
pub fn check_dir(dir: &Path, what: &str) -> Result<(), String> {
    let bad = |why: String| Err(format!("{what} {}: {why}", dir.display()));
    if dir.exists() && !dir.is_dir() {
        return bad("exists and is not a directory".into());
    }
    if let Err(e) = std::fs::create_dir_all(dir) {
        return bad(format!("cannot be created: {e}"));
    }
    check_file(&dir.join(".smpsim-write-check"), what)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn temp(name: &str) -> std::path::PathBuf {
        let d = std::env::temp_dir().join(format!("smpsim-outputs-{}-{name}", std::process::id()));
        std::fs::create_dir_all(&d).expect("temp dir");
        d
    }

    #[test]
    fn a_file_under_a_file_is_refused_and_a_missing_directory_made() {
        let d = temp("under");
        let f = d.join("plain");
        std::fs::write(&f, "x").expect("write");
        let e = check_file(&f.join("x.json"), "--stats").unwrap_err();
        assert!(e.contains("cannot be created"), "{e}");
        check_file(&d.join("new/x.json"), "--stats").expect("directory made");
        assert!(d.join("new").is_dir());
    }

    #[test]
    fn a_directory_is_refused_as_a_file() {
        let d = temp("dir");
        let e = check_file(&d, "--stats").unwrap_err();
        assert!(e.contains("is a directory"), "{e}");
    }

    #[test]
    fn a_writable_path_passes_and_leaves_nothing() {
        let d = temp("ok");
        let f = d.join("s.json");
        check_file(&f, "--stats").expect("writable");
        assert!(!f.exists());
        check_dir(&d.join("sub/out"), "--out").expect("creatable");
        assert!(!d.join("sub/out/.smpsim-write-check").exists());
    }
}
