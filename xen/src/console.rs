//! The hypervisor console: guests write bytes with console_io; complete
//! lines are emitted with a "(dN) " prefix (xen-abi.md §4.4).
//!
//! As Xen does for unprivileged domains, only printable ASCII, tab and
//! newline pass; other bytes are dropped. Each domain has its own partial
//! line; lines appear in the order they complete, which the caller's
//! deterministic hypercall order fixes.

use crate::ids::DomainId;
use serde::{Deserialize, Serialize};

/// Longest partial line kept before it is emitted anyway.
pub const MAX_LINE: usize = 4096;

/// One complete console line.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ConsoleLine {
    /// The writer.
    pub domain: DomainId,
    /// The text, without prefix or newline.
    pub text: String,
}

impl ConsoleLine {
    /// The line as printed: "(d0) text".
    pub fn formatted(&self) -> String {
        format!("(d{}) {}", self.domain.0, self.text)
    }
}

/// One domain's partial line.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct LineBuffer {
    partial: Vec<u8>,
}

impl LineBuffer {
    /// Appends `bytes`; pushes each completed line to `out`.
    pub fn write(&mut self, domain: DomainId, bytes: &[u8], out: &mut Vec<ConsoleLine>) {
        for &b in bytes {
            if b == b'\n' {
                self.emit(domain, out);
                continue;
            }
            if self.partial.len() >= MAX_LINE {
                self.emit(domain, out);
            }
            if b == b'\t' || (0x20..0x7f).contains(&b) {
                self.partial.push(b);
            }
        }
    }

    /// Emits the partial line, if any.
    pub fn flush(&mut self, domain: DomainId, out: &mut Vec<ConsoleLine>) {
        if !self.partial.is_empty() {
            self.emit(domain, out);
        }
    }

    fn emit(&mut self, domain: DomainId, out: &mut Vec<ConsoleLine>) {
        let text = String::from_utf8(std::mem::take(&mut self.partial))
            .expect("only ASCII is kept in console lines");
        out.push(ConsoleLine { domain, text });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_split_filter_and_flush() {
        let mut out = Vec::new();
        let mut a = LineBuffer::default();
        let mut b = LineBuffer::default();
        a.write(DomainId(0), b"hel", &mut out);
        b.write(DomainId(1), b"x\x07y\n", &mut out);
        a.write(DomainId(0), b"lo\nwor", &mut out);
        assert_eq!(out.len(), 2);
        b.write(DomainId(1), b"\n", &mut out);
        assert_eq!(
            out.pop().map(|l| l.text),
            Some(String::new()),
            "empty line kept"
        );
        assert_eq!(out[0].formatted(), "(d1) xy");
        assert_eq!(out[1].formatted(), "(d0) hello");
        a.flush(DomainId(0), &mut out);
        assert_eq!(out[2].text, "wor");
        a.flush(DomainId(0), &mut out);
        assert_eq!(out.len(), 3, "nothing left");
    }
}
