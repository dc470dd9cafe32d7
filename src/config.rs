//! Reading TOML configuration with errors a user can act on.
//!
//! Every config struct is read with serde (`deny_unknown_fields`), then
//! validated. Whatever goes wrong, the error names the file, the line, the
//! key and what is allowed: a syntax error or unknown key from the parser
//! (which knows the position), or a bad value from validation (which knows
//! the dotted key; [`locate`] finds its line in the text).

use serde::de::DeserializeOwned;
use std::fmt;
use std::path::{Path, PathBuf};

/// A configuration error, pinned to a place in a file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigError {
    /// The file read (or `<built-in>` for embedded text).
    pub file: PathBuf,
    /// 1-based line, when known.
    pub line: Option<usize>,
    /// Dotted key, when known (for example `l1d.sets`).
    pub key: Option<String>,
    /// What is wrong and what is allowed.
    pub message: String,
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.file.display())?;
        if let Some(line) = self.line {
            write!(f, ":{line}")?;
        }
        if let Some(key) = &self.key {
            write!(f, ": key `{key}`")?;
        }
        write!(f, ": {}", self.message)
    }
}

impl std::error::Error for ConfigError {}

/// 1-based line of byte `offset` in `text`.
fn line_of(text: &str, offset: usize) -> usize {
    text[..offset.min(text.len())].matches('\n').count() + 1
}

/// The key written on a line (`key = …`), if any.
fn key_on_line(text: &str, line: usize) -> Option<String> {
    let l = text.lines().nth(line.checked_sub(1)?)?;
    let (k, _) = l.split_once('=')?;
    let k = k.trim().trim_matches('"');
    (!k.is_empty() && !k.starts_with('#')).then(|| k.to_owned())
}

/// Parses `text` (read from `file`) into `T`, turning parser errors into a
/// [`ConfigError`] with the line and key.
pub fn parse<T: DeserializeOwned>(file: &Path, text: &str) -> Result<T, ConfigError> {
    toml::from_str(text).map_err(|e| {
        let line = e.span().map(|s| line_of(text, s.start));
        let table = line.and_then(|l| table_at(text, l));
        let key = line
            .and_then(|l| key_on_line(text, l))
            .map(|k| match table {
                Some(t) if !t.is_empty() => format!("{t}.{k}"),
                _ => k,
            });
        ConfigError {
            file: file.to_owned(),
            line,
            key,
            message: e.message().trim().to_owned(),
        }
    })
}

/// Reads and parses a config file.
pub fn load<T: DeserializeOwned>(file: &Path) -> Result<T, ConfigError> {
    let text = std::fs::read_to_string(file).map_err(|e| ConfigError {
        file: file.to_owned(),
        line: None,
        key: None,
        message: format!("cannot read the file: {e}"),
    })?;
    parse(file, &text)
}

/// The `[table]` header in force at `line` (empty for the root table).
fn table_at(text: &str, line: usize) -> Option<String> {
    let mut current = String::new();
    for l in text.lines().take(line) {
        // A trailing comment is not part of the header.
        let t = l.split('#').next().unwrap_or("").trim();
        // `[table]`, or `[[table]]` (an array of tables such as `[[domain]]`).
        if t.starts_with('[') {
            current = t.trim_matches(|c| c == '[' || c == ']').trim().to_owned();
        }
    }
    Some(current)
}

/// Finds the line where dotted `key` (for example `l1d.sets`) is set:
/// `sets = …` inside `[l1d]`, or `l1d.sets = …` / `l1d = { sets = … }` at
/// the root.
pub fn locate(text: &str, key: &str) -> Option<usize> {
    let (table, leaf) = key.rsplit_once('.').unwrap_or(("", key));
    let mut current = String::new();
    for (i, l) in text.lines().enumerate() {
        let t = l.split('#').next().unwrap_or("").trim();
        if t.starts_with('[') {
            current = t.trim_matches(|c| c == '[' || c == ']').trim().to_owned();
            continue;
        }
        let Some((k, v)) = t.split_once('=') else {
            continue;
        };
        let k = k.trim();
        let full = if current.is_empty() {
            k.to_owned()
        } else {
            format!("{current}.{k}")
        };
        let inline = full == table && v.contains(&format!("{leaf} ="));
        if full == key || inline {
            return Some(i + 1);
        }
    }
    // A whole table (`ooo`): its header.
    text.lines()
        .position(|l| l.split('#').next().unwrap_or("").trim() == format!("[{key}]"))
        .map(|i| i + 1)
}

/// Pins a validation error about dotted `key` to its line in `text`.
pub fn at_key(file: &Path, text: &str, key: &str, message: impl Into<String>) -> ConfigError {
    ConfigError {
        file: file.to_owned(),
        line: locate(text, key),
        key: Some(key.to_owned()),
        message: message.into(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde::Deserialize;

    #[derive(Debug, Deserialize, PartialEq)]
    #[serde(deny_unknown_fields)]
    struct Cache {
        sets: u32,
        ways: u32,
    }

    #[derive(Debug, Deserialize, PartialEq)]
    #[serde(deny_unknown_fields)]
    struct Machine {
        cores: u32,
        l1d: Cache,
    }

    const GOOD: &str = "cores = 4\n\n[l1d]\nsets = 64\nways = 8\n";

    #[test]
    fn parses_a_good_file() {
        let m: Machine = parse(Path::new("m.toml"), GOOD).expect("valid");
        assert_eq!(m.l1d, Cache { sets: 64, ways: 8 });
    }

    #[test]
    fn unknown_key_names_file_line_key_and_allowed() {
        let text = "cores = 4\n[l1d]\nsets = 64\nwayz = 8\n";
        let e = parse::<Machine>(Path::new("m.toml"), text).expect_err("typo");
        assert_eq!(e.line, Some(4));
        assert_eq!(e.key.as_deref(), Some("l1d.wayz"));
        let s = e.to_string();
        assert!(
            s.starts_with("m.toml:4: key `l1d.wayz`: unknown field `wayz`"),
            "{s}"
        );
        assert!(
            s.contains("`sets`") && s.contains("`ways`"),
            "lists allowed keys: {s}"
        );
    }

    #[test]
    fn negative_size_is_a_type_error_at_its_line() {
        let text = "cores = 4\n[l1d]\nsets = -64\nways = 8\n";
        let e = parse::<Machine>(Path::new("m.toml"), text).expect_err("negative");
        assert_eq!((e.line, e.key.as_deref()), (Some(3), Some("l1d.sets")));
        assert!(
            e.message.contains("invalid value") || e.message.contains("u32"),
            "{e}"
        );
    }

    #[test]
    fn locate_finds_keys_in_tables_dotted_and_inline() {
        assert_eq!(locate(GOOD, "l1d.ways"), Some(5));
        assert_eq!(locate(GOOD, "cores"), Some(1));
        assert_eq!(locate("l1d.sets = 3\n", "l1d.sets"), Some(1));
        assert_eq!(locate("x = 1\nl1d = { sets = 3 }\n", "l1d.sets"), Some(2));
        assert_eq!(locate(GOOD, "l2.sets"), None);
    }

    #[test]
    fn validation_errors_point_at_the_key() {
        let e = at_key(
            Path::new("m.toml"),
            GOOD,
            "l1d.sets",
            "must be a power of two, got 63",
        );
        assert_eq!(
            e.to_string(),
            "m.toml:4: key `l1d.sets`: must be a power of two, got 63"
        );
    }
}
