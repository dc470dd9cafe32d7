//! FOP, the x87 last-opcode register, rebuilt from the decoded
//! instruction: bits 10:8 the low three bits of the opcode byte (D8–DF),
//! bits 7:0 the ModRM byte (the translator does not see the bytes; the
//! ModRM of a memory form is re-derived from the addressing: mod from the
//! displacement size, rm from the base or 4 for a SIB byte, 5 for
//! RIP-relative). The table is generated from iced-x86's opcode
//! documentation.

use crate::translate::insn::gpr;
use iced_x86::{Code, Instruction, OpKind, Register};

/// How the ModRM byte is formed.
#[derive(Clone, Copy, Debug)]
enum Form {
    /// A memory operand with this /digit.
    Mem(u8),
    /// base + i for the ST(i) operand.
    Reg(u8),
    /// A fixed ModRM (fld1, fsin …).
    Fixed(u8),
}

/// The FOP of `ins` (0 for non-x87 and control instructions).
pub(super) fn fop(ins: &Instruction) -> u16 {
    let Some((opc, form)) = fop_form(ins.code()) else {
        return 0;
    };
    let modrm = match form {
        Form::Fixed(m) => m,
        Form::Reg(base) => base | sti(ins),
        Form::Mem(d) => modrm_mem(ins, d),
    };
    (opc << 8) | u16::from(modrm)
}

/// The i of the ST(i) operand that is not ST(0) (0 if both are).
fn sti(ins: &Instruction) -> u8 {
    (0..ins.op_count())
        .filter(|&k| ins.op_kind(k) == OpKind::Register)
        .filter_map(|k| (ins.op_register(k) as u32).checked_sub(Register::ST0 as u32))
        .find(|&n| (1..8).contains(&n))
        .map_or(0, |n| n as u8)
}

fn modrm_mem(ins: &Instruction, digit: u8) -> u8 {
    let reg = (digit & 7) << 3;
    let base = ins.memory_base();
    if matches!(base, Register::RIP | Register::EIP) {
        return reg | 5;
    }
    let b = gpr(base).map(|(i, _)| i & 7);
    let sib = ins.memory_index() != Register::None || b.is_none() || b == Some(4);
    let rm = if sib { 4 } else { b.unwrap_or(0) };
    let md = match (b, ins.memory_displ_size()) {
        (None, _) | (_, 0) => 0,
        (_, 1) => 1,
        _ => 2,
    };
    (md << 6) | reg | rm
}

/// FOP parts of an x87 instruction: (opcode byte & 7, form).
fn fop_form(code: Code) -> Option<(u16, Form)> {
    use Code as C;
    Some(match code {
        C::Fadd_m32fp => (0, Form::Mem(0)),
        C::Fmul_m32fp => (0, Form::Mem(1)),
        C::Fcom_m32fp => (0, Form::Mem(2)),
        C::Fcomp_m32fp => (0, Form::Mem(3)),
        C::Fsub_m32fp => (0, Form::Mem(4)),
        C::Fsubr_m32fp => (0, Form::Mem(5)),
        C::Fdiv_m32fp => (0, Form::Mem(6)),
        C::Fdivr_m32fp => (0, Form::Mem(7)),
        C::Fadd_st0_sti => (0, Form::Reg(0xc0)),
        C::Fmul_st0_sti => (0, Form::Reg(0xc8)),
        C::Fcom_st0_sti => (0, Form::Reg(0xd0)),
        C::Fcomp_st0_sti => (0, Form::Reg(0xd8)),
        C::Fsub_st0_sti => (0, Form::Reg(0xe0)),
        C::Fsubr_st0_sti => (0, Form::Reg(0xe8)),
        C::Fdiv_st0_sti => (0, Form::Reg(0xf0)),
        C::Fdivr_st0_sti => (0, Form::Reg(0xf8)),
        C::Fld_m32fp => (1, Form::Mem(0)),
        C::Fst_m32fp => (1, Form::Mem(2)),
        C::Fstp_m32fp => (1, Form::Mem(3)),
        C::Fldcw_m2byte => (1, Form::Mem(5)),
        C::Fnstcw_m2byte => (1, Form::Mem(7)),
        C::Fld_sti => (1, Form::Reg(0xc0)),
        C::Fxch_st0_sti => (1, Form::Reg(0xc8)),
        C::Fnop => (1, Form::Fixed(0xd0)),
        C::Fstpnce_sti => (1, Form::Reg(0xd8)),
        C::Fchs => (1, Form::Fixed(0xe0)),
        C::Fabs => (1, Form::Fixed(0xe1)),
        C::Ftst => (1, Form::Fixed(0xe4)),
        C::Fxam => (1, Form::Fixed(0xe5)),
        C::Fld1 => (1, Form::Fixed(0xe8)),
        C::Fldl2t => (1, Form::Fixed(0xe9)),
        C::Fldl2e => (1, Form::Fixed(0xea)),
        C::Fldpi => (1, Form::Fixed(0xeb)),
        C::Fldlg2 => (1, Form::Fixed(0xec)),
        C::Fldln2 => (1, Form::Fixed(0xed)),
        C::Fldz => (1, Form::Fixed(0xee)),
        C::F2xm1 => (1, Form::Fixed(0xf0)),
        C::Fyl2x => (1, Form::Fixed(0xf1)),
        C::Fptan => (1, Form::Fixed(0xf2)),
        C::Fpatan => (1, Form::Fixed(0xf3)),
        C::Fxtract => (1, Form::Fixed(0xf4)),
        C::Fprem1 => (1, Form::Fixed(0xf5)),
        C::Fdecstp => (1, Form::Fixed(0xf6)),
        C::Fincstp => (1, Form::Fixed(0xf7)),
        C::Fprem => (1, Form::Fixed(0xf8)),
        C::Fyl2xp1 => (1, Form::Fixed(0xf9)),
        C::Fsqrt => (1, Form::Fixed(0xfa)),
        C::Fsincos => (1, Form::Fixed(0xfb)),
        C::Frndint => (1, Form::Fixed(0xfc)),
        C::Fscale => (1, Form::Fixed(0xfd)),
        C::Fsin => (1, Form::Fixed(0xfe)),
        C::Fcos => (1, Form::Fixed(0xff)),
        C::Fiadd_m32int => (2, Form::Mem(0)),
        C::Fimul_m32int => (2, Form::Mem(1)),
        C::Ficom_m32int => (2, Form::Mem(2)),
        C::Ficomp_m32int => (2, Form::Mem(3)),
        C::Fisub_m32int => (2, Form::Mem(4)),
        C::Fisubr_m32int => (2, Form::Mem(5)),
        C::Fidiv_m32int => (2, Form::Mem(6)),
        C::Fidivr_m32int => (2, Form::Mem(7)),
        C::Fcmovb_st0_sti => (2, Form::Reg(0xc0)),
        C::Fcmove_st0_sti => (2, Form::Reg(0xc8)),
        C::Fcmovbe_st0_sti => (2, Form::Reg(0xd0)),
        C::Fcmovu_st0_sti => (2, Form::Reg(0xd8)),
        C::Fucompp => (2, Form::Fixed(0xe9)),
        C::Fild_m32int => (3, Form::Mem(0)),
        C::Fisttp_m32int => (3, Form::Mem(1)),
        C::Fist_m32int => (3, Form::Mem(2)),
        C::Fistp_m32int => (3, Form::Mem(3)),
        C::Fld_m80fp => (3, Form::Mem(5)),
        C::Fstp_m80fp => (3, Form::Mem(7)),
        C::Fcmovnb_st0_sti => (3, Form::Reg(0xc0)),
        C::Fcmovne_st0_sti => (3, Form::Reg(0xc8)),
        C::Fcmovnbe_st0_sti => (3, Form::Reg(0xd0)),
        C::Fcmovnu_st0_sti => (3, Form::Reg(0xd8)),
        C::Fneni => (3, Form::Fixed(0xe0)),
        C::Fndisi => (3, Form::Fixed(0xe1)),
        C::Fnclex => (3, Form::Fixed(0xe2)),
        C::Fninit => (3, Form::Fixed(0xe3)),
        C::Fnsetpm => (3, Form::Fixed(0xe4)),
        C::Frstpm => (3, Form::Fixed(0xe5)),
        C::Fucomi_st0_sti => (3, Form::Reg(0xe8)),
        C::Fcomi_st0_sti => (3, Form::Reg(0xf0)),
        C::Fadd_m64fp => (4, Form::Mem(0)),
        C::Fmul_m64fp => (4, Form::Mem(1)),
        C::Fcom_m64fp => (4, Form::Mem(2)),
        C::Fcomp_m64fp => (4, Form::Mem(3)),
        C::Fsub_m64fp => (4, Form::Mem(4)),
        C::Fsubr_m64fp => (4, Form::Mem(5)),
        C::Fdiv_m64fp => (4, Form::Mem(6)),
        C::Fdivr_m64fp => (4, Form::Mem(7)),
        C::Fadd_sti_st0 => (4, Form::Reg(0xc0)),
        C::Fmul_sti_st0 => (4, Form::Reg(0xc8)),
        C::Fcom_st0_sti_DCD0 => (4, Form::Reg(0xd0)),
        C::Fcomp_st0_sti_DCD8 => (4, Form::Reg(0xd8)),
        C::Fsubr_sti_st0 => (4, Form::Reg(0xe0)),
        C::Fsub_sti_st0 => (4, Form::Reg(0xe8)),
        C::Fdivr_sti_st0 => (4, Form::Reg(0xf0)),
        C::Fdiv_sti_st0 => (4, Form::Reg(0xf8)),
        C::Fld_m64fp => (5, Form::Mem(0)),
        C::Fisttp_m64int => (5, Form::Mem(1)),
        C::Fst_m64fp => (5, Form::Mem(2)),
        C::Fstp_m64fp => (5, Form::Mem(3)),
        C::Fnstsw_m2byte => (5, Form::Mem(7)),
        C::Ffree_sti => (5, Form::Reg(0xc0)),
        C::Fxch_st0_sti_DDC8 => (5, Form::Reg(0xc8)),
        C::Fst_sti => (5, Form::Reg(0xd0)),
        C::Fstp_sti => (5, Form::Reg(0xd8)),
        C::Fucom_st0_sti => (5, Form::Reg(0xe0)),
        C::Fucomp_st0_sti => (5, Form::Reg(0xe8)),
        C::Fiadd_m16int => (6, Form::Mem(0)),
        C::Fimul_m16int => (6, Form::Mem(1)),
        C::Ficom_m16int => (6, Form::Mem(2)),
        C::Ficomp_m16int => (6, Form::Mem(3)),
        C::Fisub_m16int => (6, Form::Mem(4)),
        C::Fisubr_m16int => (6, Form::Mem(5)),
        C::Fidiv_m16int => (6, Form::Mem(6)),
        C::Fidivr_m16int => (6, Form::Mem(7)),
        C::Faddp_sti_st0 => (6, Form::Reg(0xc0)),
        C::Fmulp_sti_st0 => (6, Form::Reg(0xc8)),
        C::Fcomp_st0_sti_DED0 => (6, Form::Reg(0xd0)),
        C::Fcompp => (6, Form::Fixed(0xd9)),
        C::Fsubrp_sti_st0 => (6, Form::Reg(0xe0)),
        C::Fsubp_sti_st0 => (6, Form::Reg(0xe8)),
        C::Fdivrp_sti_st0 => (6, Form::Reg(0xf0)),
        C::Fdivp_sti_st0 => (6, Form::Reg(0xf8)),
        C::Fild_m16int => (7, Form::Mem(0)),
        C::Fisttp_m16int => (7, Form::Mem(1)),
        C::Fist_m16int => (7, Form::Mem(2)),
        C::Fistp_m16int => (7, Form::Mem(3)),
        C::Fbld_m80bcd => (7, Form::Mem(4)),
        C::Fild_m64int => (7, Form::Mem(5)),
        C::Fbstp_m80bcd => (7, Form::Mem(6)),
        C::Fistp_m64int => (7, Form::Mem(7)),
        C::Ffreep_sti => (7, Form::Reg(0xc0)),
        C::Fxch_st0_sti_DFC8 => (7, Form::Reg(0xc8)),
        C::Fstp_sti_DFD0 => (7, Form::Reg(0xd0)),
        C::Fstp_sti_DFD8 => (7, Form::Reg(0xd8)),
        C::Fnstsw_AX => (7, Form::Fixed(0xe0)),
        C::Fucomip_st0_sti => (7, Form::Reg(0xe8)),
        C::Fcomip_st0_sti => (7, Form::Reg(0xf0)),
        C::Fnstdw_AX => (7, Form::Fixed(0xe1)),
        C::Fnstsg_AX => (7, Form::Fixed(0xe2)),
        C::Ftstp => (1, Form::Fixed(0xe6)),
        C::Frint2 => (3, Form::Fixed(0xfc)),
        C::Frichop => (5, Form::Fixed(0xfc)),
        C::Frinear => (7, Form::Fixed(0xfc)),
        _ => return None,
    })
}
