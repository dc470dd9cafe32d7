//! Golden decode → uop translations: `tests/golden/translate.txt`, one
//! instruction per line as `bytes | disassembly | uops`. Only the bytes are
//! input; `SMPSIM_BLESS=1 cargo test -p smpsim-cores --test integration
//! golden` rewrites the rest.

use iced_x86::{Decoder, DecoderOptions, Formatter, IntelFormatter};
use smpsim_cores::translate::{translate_block, Quirks};
use smpsim_cores::{FlatMemory, GuestMemory};

const PATH: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/golden/translate.txt");

fn parse_bytes(s: &str) -> Vec<u8> {
    s.split_whitespace()
        .map(|h| u8::from_str_radix(h, 16).expect("hex byte"))
        .collect()
}

/// The golden line for one instruction.
fn render(bytes: &[u8]) -> String {
    let rip = 0x40_0000u64;
    let mut mem = FlatMemory::new();
    mem.map(rip, 0x2000);
    let mut code = bytes.to_vec();
    code.push(0xf4);
    mem.write(rip, &code).expect("mapped");
    let block = translate_block(&mut mem, rip, Quirks::default()).expect("fetchable");
    let ins = block.insns[0];
    let uops: Vec<String> = block.uops[usize::from(ins.start)..usize::from(ins.end)]
        .iter()
        .map(|u| {
            if u.op == smpsim_cores::uop::Op::Raise {
                format!("raise #{}", u.aux)
            } else {
                u.to_string()
            }
        })
        .collect();
    let mut text = String::new();
    let mut dec = Decoder::with_ip(64, bytes, rip, DecoderOptions::NONE);
    IntelFormatter::new().format(&dec.decode(), &mut text);
    let hex: Vec<String> = bytes.iter().map(|b| format!("{b:02x}")).collect();
    let snap = if ins.snapshot != 0 {
        format!(" {{snapshot {}}}", ins.snapshot)
    } else {
        String::new()
    };
    format!("{} | {text} | {}{snap}", hex.join(" "), uops.join(" ; "))
}

#[test]
fn golden_translations() {
    let old = std::fs::read_to_string(PATH).expect("golden file present");
    let new: Vec<String> = old
        .lines()
        .map(|l| render(&parse_bytes(l.split('|').next().expect("bytes column"))))
        .collect();
    let new = new.join("\n") + "\n";
    if std::env::var_os("SMPSIM_BLESS").is_some() {
        std::fs::write(PATH, &new).expect("golden file writable");
        return;
    }
    let diff: Vec<String> = old
        .lines()
        .zip(new.lines())
        .filter(|(a, b)| a != b)
        .map(|(a, b)| format!("- {a}\n+ {b}"))
        .collect();
    assert!(
        diff.is_empty(),
        "translations changed (SMPSIM_BLESS=1 to accept):\n{}",
        diff.join("\n")
    );
}
