//! Lays out a case's units and encodes them with iced-x86's `Encoder`.
//!
//! Branches only go forward, so one backward pass fixes every size: when a
//! branch is placed, the distance to its target (later in the code) is
//! already known, and it gets the short form if that is allowed and fits. A
//! label that no unit defines (its target was cut off) means the end of the
//! sequence.

use super::{Item, Label, Unit};
use iced_x86::{Code, Encoder, Instruction, MemoryOperand, Register};
use std::collections::BTreeMap;

/// An encoded sequence.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Assembled {
    /// The bytes, to be placed at the base address.
    pub bytes: Vec<u8>,
    /// (offset, length) of each instruction, in address order.
    pub insns: Vec<(u32, u32)>,
}

/// Size in bytes of `item` given its branch choice.
fn size_of_item(item: &Item, enc: &mut Encoder, base: u64, short: bool) -> u32 {
    match item {
        Item::Insn(i) => {
            let n = enc.encode(i, base).expect("generated instructions encode");
            let _ = enc.take_buffer();
            u32::try_from(n).expect("an instruction is at most 15 bytes")
        }
        Item::Branch { near, .. } => {
            if short {
                2
            } else if *near == Code::Jmp_rel32_64 || *near == Code::Call_rel32_64 {
                5
            } else {
                6
            }
        }
        Item::LeaLabel { .. } | Item::Patch { .. } => 7,
        Item::Label(_) => 0,
    }
}

/// Encodes `units` for placement at `base`.
pub fn assemble(units: &[Unit], base: u64) -> Assembled {
    let items: Vec<&Item> = units.iter().flat_map(|u| u.items.iter()).collect();
    let mut enc = Encoder::new(64);
    // Backward pass: offsets from the end, branch forms.
    let mut from_end = vec![0u32; items.len()];
    let mut short = vec![false; items.len()];
    let mut labels: BTreeMap<Label, u32> = BTreeMap::new();
    let mut off = 0u32;
    for (k, item) in items.iter().enumerate().rev() {
        if let Item::Branch {
            short: Some(_),
            label,
            ..
        } = item
        {
            let target = labels.get(label).copied().unwrap_or(0);
            short[k] = off >= target && off - target <= 127;
        }
        off += size_of_item(item, &mut enc, base, short[k]);
        from_end[k] = off;
        if let Item::Label(l) = item {
            labels.insert(*l, off);
        }
    }
    let total = off;
    let addr_of = |l: &Label| base + u64::from(total - labels.get(l).copied().unwrap_or(0));
    // Forward pass: encode at final addresses.
    let mut bytes = Vec::with_capacity(total as usize);
    let mut insns = Vec::new();
    for (k, item) in items.iter().enumerate() {
        let ip = base + u64::from(total - from_end[k]);
        let instr = match item {
            Item::Insn(i) => *i,
            Item::Branch {
                short: s,
                near,
                label,
            } => {
                let code = if short[k] {
                    s.expect("short form exists")
                } else {
                    *near
                };
                Instruction::with_branch(code, addr_of(label)).expect("branch encodes")
            }
            Item::LeaLabel { reg, label } => {
                let m = MemoryOperand::new(
                    Register::RIP,
                    Register::None,
                    1,
                    addr_of(label) as i64,
                    8,
                    false,
                    Register::None,
                );
                Instruction::with2(Code::Lea_r64_m, *reg, m).expect("lea encodes")
            }
            Item::Patch {
                label,
                offset,
                value,
            } => {
                let target = addr_of(label) + u64::from(*offset);
                let m = MemoryOperand::new(
                    Register::RIP,
                    Register::None,
                    1,
                    target as i64,
                    8,
                    false,
                    Register::None,
                );
                Instruction::with2(Code::Mov_rm8_imm8, m, u32::from(*value)).expect("patch encodes")
            }
            Item::Label(_) => continue,
        };
        let n = enc
            .encode(&instr, ip)
            .expect("generated instructions encode");
        let b = enc.take_buffer();
        debug_assert_eq!(
            u64::from(total - from_end[k]),
            bytes.len() as u64,
            "layout drift"
        );
        insns.push(((ip - base) as u32, n as u32));
        bytes.extend_from_slice(&b);
    }
    assert_eq!(
        bytes.len(),
        total as usize,
        "layout and encoding disagree on size"
    );
    Assembled { bytes, insns }
}
