//! Which arithmetic flags each instruction leaves undefined (Intel SDM vol. 2,
//! plus the few the AMD APM leaves undefined where the SDM does not).
//!
//! The simulator models what AMD processors produce for these flags, so on
//! an AMD host they are compared like any other, except for the few it
//! models after Intel ([`undefined_modelled_after_intel`]). On other hosts the
//! comparison masks them ([`undefined_flags`]) and the generator keeps them
//! from reaching registers (it redefines the flags before an instruction that
//! reads one, see [`read_flags`]).

use iced_x86::{Instruction, Mnemonic, OpKind, RflagsBits};

/// Carry flag.
pub const CF: u64 = 1 << 0;
/// Parity flag.
pub const PF: u64 = 1 << 2;
/// Auxiliary carry flag.
pub const AF: u64 = 1 << 4;
/// Zero flag.
pub const ZF: u64 = 1 << 6;
/// Sign flag.
pub const SF: u64 = 1 << 7;
/// Direction flag.
pub const DF: u64 = 1 << 10;
/// Overflow flag.
pub const OF: u64 = 1 << 11;
/// The six arithmetic flags.
pub const ARITH: u64 = CF | PF | AF | ZF | SF | OF;
/// The RFLAGS bits the tester compares.
pub const COMPARED: u64 = ARITH | DF;

/// Whether the last operand of a shift or rotate is the constant 1 form.
fn count_is_one(instr: &Instruction) -> bool {
    let last = instr.op_count() - 1;
    instr.op_kind(last) == OpKind::Immediate8 && instr.immediate8() == 1 && instr.op_count() == 2
}

/// The RFLAGS bits that the SDM leaves undefined after `instr`, for every
/// operand value it may see (dynamic counts are assumed to be anything).
pub fn undefined_flags(instr: &Instruction) -> u64 {
    use Mnemonic::*;
    match instr.mnemonic() {
        // "SF, ZF, AF and PF are undefined."
        Mul | Imul => SF | ZF | AF | PF,
        // "CF, OF, SF, ZF, AF and PF are undefined."
        Div | Idiv => ARITH,
        // "AF is undefined."
        And | Or | Xor | Test => AF,
        // OF is defined only for 1-bit shifts, AF is undefined whenever the
        // count is non-zero; CF is undefined when SHL/SHR shift a byte or
        // word by at least its width (counts go up to 31).
        Shl | Sal | Shr | Sar => {
            let narrow = instr.op0_register().size() <= 2 && instr.memory_size().size() <= 2;
            let cf = if narrow && !count_is_one(instr) {
                CF
            } else {
                0
            };
            let of = if count_is_one(instr) { 0 } else { OF };
            AF | of | cf
        }
        // "The OF flag is defined only for the 1-bit rotates."
        Rol | Ror | Rcl | Rcr => {
            if count_is_one(instr) {
                0
            } else {
                OF
            }
        }
        // OF undefined unless the count is 1; AF undefined.
        Shld | Shrd => AF | OF,
        // "The OF, SF, AF, and PF flags are undefined." The SDM leaves ZF
        // unaffected, but AMD's manual lists it as undefined too, so a
        // simulator modelling AMD may differ from Intel there.
        Bt | Bts | Btr | Btc => OF | SF | ZF | AF | PF,
        // "The CF, OF, SF, AF, and PF flags are undefined."
        Bsf | Bsr => CF | OF | SF | AF | PF,
        // "OF, SF, PF and AF flags are undefined."
        Lzcnt | Tzcnt => OF | SF | AF | PF,
        _ => 0,
    }
}

/// The flags `instr` leaves undefined for which the simulator produces
/// Intel's values rather than AMD's (the BMI1 group: AMD sets PF from the
/// result and clears AF, bextr sets AF): masked on AMD hosts too.
pub fn undefined_modelled_after_intel(instr: &Instruction) -> u64 {
    use Mnemonic::*;
    match instr.mnemonic() {
        Andn | Blsi | Blsmsk | Blsr | Bzhi => AF | PF,
        Bextr => AF | SF | PF,
        _ => 0,
    }
}

/// Converts iced-x86's `RflagsBits` set to RFLAGS bit positions.
pub fn from_iced(bits: u32) -> u64 {
    const MAP: [(u32, u64); 7] = [
        (RflagsBits::OF, OF),
        (RflagsBits::SF, SF),
        (RflagsBits::ZF, ZF),
        (RflagsBits::AF, AF),
        (RflagsBits::CF, CF),
        (RflagsBits::PF, PF),
        (RflagsBits::DF, DF),
    ];
    MAP.iter()
        .filter(|(i, _)| bits & i != 0)
        .fold(0, |acc, (_, r)| acc | r)
}

/// The arithmetic flags (and DF) that `instr` reads.
pub fn read_flags(instr: &Instruction) -> u64 {
    from_iced(instr.rflags_read())
}

#[cfg(test)]
mod tests {
    use super::*;
    use iced_x86::{Code, Register};

    /// iced-x86 carries its own table of undefined flags; ours must cover
    /// it for every instruction the generator emits.
    #[test]
    fn table_covers_iced_x86s_undefined_flags() {
        let g = crate::gen::Generator::new(crate::HostCaps::detect());
        let mut checked = 0;
        for i in 0..3000 {
            let asm = g.case(21, i).assemble();
            let mut d = iced_x86::Decoder::with_ip(
                64,
                &asm.bytes,
                0,
                iced_x86::DecoderOptions::NO_INVALID_CHECK,
            );
            while d.can_decode() {
                let ins = d.decode();
                let iced = from_iced(ins.rflags_undefined());
                let ours = undefined_flags(&ins);
                assert_eq!(iced & !ours, 0, "{ins}: iced {iced:#x} ours {ours:#x}");
                checked += 1;
            }
        }
        assert!(checked > 10_000);
    }

    #[test]
    fn table_agrees_with_sdm_on_examples() {
        let mul = Instruction::with1(Code::Mul_rm64, Register::RBX).expect("mul");
        assert_eq!(undefined_flags(&mul), SF | ZF | AF | PF);
        let shl1 = Instruction::with2(Code::Shl_rm32_1, Register::EAX, 1).expect("shl");
        assert_eq!(undefined_flags(&shl1), AF);
        let shl8 = Instruction::with2(Code::Shl_rm8_CL, Register::AL, Register::CL).expect("shl");
        assert_eq!(undefined_flags(&shl8), AF | OF | CF);
        let add =
            Instruction::with2(Code::Add_rm64_r64, Register::RAX, Register::RBX).expect("add");
        assert_eq!(undefined_flags(&add), 0);
        let adc =
            Instruction::with2(Code::Adc_rm64_r64, Register::RAX, Register::RBX).expect("adc");
        assert_eq!(read_flags(&adc), CF);
    }
}
