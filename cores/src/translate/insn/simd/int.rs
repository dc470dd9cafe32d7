//! SSE2–SSE4.2 integer instructions on XMM registers (their MMX forms are
//! [`super::mmx`]'s, over the same table and ops).

use super::{vopnd, vuop, VOpnd};
use crate::simd::{int_flags, pack_imm, Family, IntOp};
use crate::translate::insn::{Tr, Unsupported};
use crate::translate::Tx;
use crate::uop::{SINK, XMM0, ZERO};
use iced_x86::{Instruction, Mnemonic, OpKind};

/// How an instruction's operands map onto its uop.
#[derive(Clone, Copy)]
pub(super) enum Form {
    /// `op xmm, xmm/m128` (imm8 if present): dst = op(dst, src).
    Bin,
    /// `op xmm, xmm/mN`: dst = op(src); `bytes` read from memory, aligned
    /// when 16.
    Un(u8),
    /// Shift: by imm8, or by the count in xmm/m128.
    Shift,
    /// ptest: flags only.
    Test,
    /// pblendvb: XMM0 the mask.
    Blendv,
    /// pmovmskb r, xmm.
    Movmsk,
    /// pinsr* xmm, r/mN, imm8.
    Insert(u8),
    /// pextr* r/mN, xmm, imm8.
    Extract(u8),
    /// pcmpistr*/pcmpestr*: (explicit lengths, mask result).
    Str(bool, bool),
}

/// The mnemonic table: each instruction's op and operand form (long by
/// nature: one line per instruction).
pub(super) fn form(m: Mnemonic) -> Option<(IntOp, Form)> {
    use IntOp as I;
    use Mnemonic as M;
    let bin = |op| Some((op, Form::Bin));
    match m {
        M::Pand => bin(I::Pand),
        M::Pandn => bin(I::Pandn),
        M::Por => bin(I::Por),
        M::Pxor => bin(I::Pxor),
        M::Paddb => bin(I::Paddb),
        M::Paddw => bin(I::Paddw),
        M::Paddd => bin(I::Paddd),
        M::Paddq => bin(I::Paddq),
        M::Psubb => bin(I::Psubb),
        M::Psubw => bin(I::Psubw),
        M::Psubd => bin(I::Psubd),
        M::Psubq => bin(I::Psubq),
        M::Paddsb => bin(I::Paddsb),
        M::Paddsw => bin(I::Paddsw),
        M::Paddusb => bin(I::Paddusb),
        M::Paddusw => bin(I::Paddusw),
        M::Psubsb => bin(I::Psubsb),
        M::Psubsw => bin(I::Psubsw),
        M::Psubusb => bin(I::Psubusb),
        M::Psubusw => bin(I::Psubusw),
        M::Pcmpeqb => bin(I::Pcmpeqb),
        M::Pcmpeqw => bin(I::Pcmpeqw),
        M::Pcmpeqd => bin(I::Pcmpeqd),
        M::Pcmpeqq => bin(I::Pcmpeqq),
        M::Pcmpgtb => bin(I::Pcmpgtb),
        M::Pcmpgtw => bin(I::Pcmpgtw),
        M::Pcmpgtd => bin(I::Pcmpgtd),
        M::Pcmpgtq => bin(I::Pcmpgtq),
        M::Punpcklbw => bin(I::Punpcklbw),
        M::Punpcklwd => bin(I::Punpcklwd),
        M::Punpckldq => bin(I::Punpckldq),
        M::Punpcklqdq => bin(I::Punpcklqdq),
        M::Punpckhbw => bin(I::Punpckhbw),
        M::Punpckhwd => bin(I::Punpckhwd),
        M::Punpckhdq => bin(I::Punpckhdq),
        M::Punpckhqdq => bin(I::Punpckhqdq),
        M::Packsswb => bin(I::Packsswb),
        M::Packssdw => bin(I::Packssdw),
        M::Packuswb => bin(I::Packuswb),
        M::Packusdw => bin(I::Packusdw),
        M::Psllw => Some((I::Psllw, Form::Shift)),
        M::Pslld => Some((I::Pslld, Form::Shift)),
        M::Psllq => Some((I::Psllq, Form::Shift)),
        M::Psrlw => Some((I::Psrlw, Form::Shift)),
        M::Psrld => Some((I::Psrld, Form::Shift)),
        M::Psrlq => Some((I::Psrlq, Form::Shift)),
        M::Psraw => Some((I::Psraw, Form::Shift)),
        M::Psrad => Some((I::Psrad, Form::Shift)),
        M::Pslldq => Some((I::Pslldq, Form::Shift)),
        M::Psrldq => Some((I::Psrldq, Form::Shift)),
        M::Pmullw => bin(I::Pmullw),
        M::Pmulhw => bin(I::Pmulhw),
        M::Pmulhuw => bin(I::Pmulhuw),
        M::Pmuludq => bin(I::Pmuludq),
        M::Pmaddwd => bin(I::Pmaddwd),
        M::Pmuldq => bin(I::Pmuldq),
        M::Pmulld => bin(I::Pmulld),
        M::Pmulhrsw => bin(I::Pmulhrsw),
        M::Pmaddubsw => bin(I::Pmaddubsw),
        M::Psadbw => bin(I::Psadbw),
        M::Mpsadbw => bin(I::Mpsadbw),
        M::Pavgb => bin(I::Pavgb),
        M::Pavgw => bin(I::Pavgw),
        M::Pminub => bin(I::Pminub),
        M::Pmaxub => bin(I::Pmaxub),
        M::Pminsw => bin(I::Pminsw),
        M::Pmaxsw => bin(I::Pmaxsw),
        M::Pminsb => bin(I::Pminsb),
        M::Pminsd => bin(I::Pminsd),
        M::Pminuw => bin(I::Pminuw),
        M::Pminud => bin(I::Pminud),
        M::Pmaxsb => bin(I::Pmaxsb),
        M::Pmaxsd => bin(I::Pmaxsd),
        M::Pmaxuw => bin(I::Pmaxuw),
        M::Pmaxud => bin(I::Pmaxud),
        M::Pshufd => Some((I::Pshufd, Form::Un(16))),
        M::Pshuflw => Some((I::Pshuflw, Form::Un(16))),
        M::Pshufhw => Some((I::Pshufhw, Form::Un(16))),
        M::Pshufb => bin(I::Pshufb),
        M::Palignr => bin(I::Palignr),
        M::Phaddw => bin(I::Phaddw),
        M::Phaddd => bin(I::Phaddd),
        M::Phaddsw => bin(I::Phaddsw),
        M::Phsubw => bin(I::Phsubw),
        M::Phsubd => bin(I::Phsubd),
        M::Phsubsw => bin(I::Phsubsw),
        M::Pabsb => Some((I::Pabsb, Form::Un(16))),
        M::Pabsw => Some((I::Pabsw, Form::Un(16))),
        M::Pabsd => Some((I::Pabsd, Form::Un(16))),
        M::Psignb => bin(I::Psignb),
        M::Psignw => bin(I::Psignw),
        M::Psignd => bin(I::Psignd),
        M::Pmovsxbw => Some((I::Pmovsxbw, Form::Un(8))),
        M::Pmovsxbd => Some((I::Pmovsxbd, Form::Un(4))),
        M::Pmovsxbq => Some((I::Pmovsxbq, Form::Un(2))),
        M::Pmovsxwd => Some((I::Pmovsxwd, Form::Un(8))),
        M::Pmovsxwq => Some((I::Pmovsxwq, Form::Un(4))),
        M::Pmovsxdq => Some((I::Pmovsxdq, Form::Un(8))),
        M::Pmovzxbw => Some((I::Pmovzxbw, Form::Un(8))),
        M::Pmovzxbd => Some((I::Pmovzxbd, Form::Un(4))),
        M::Pmovzxbq => Some((I::Pmovzxbq, Form::Un(2))),
        M::Pmovzxwd => Some((I::Pmovzxwd, Form::Un(8))),
        M::Pmovzxwq => Some((I::Pmovzxwq, Form::Un(4))),
        M::Pmovzxdq => Some((I::Pmovzxdq, Form::Un(8))),
        M::Ptest => Some((I::Ptest, Form::Test)),
        M::Pblendw => bin(I::Pblendw),
        M::Pblendvb => Some((I::Pblendvb, Form::Blendv)),
        M::Phminposuw => Some((I::Phminposuw, Form::Un(16))),
        M::Pmovmskb => Some((I::Pmovmskb, Form::Movmsk)),
        M::Pinsrb => Some((I::Pinsrb, Form::Insert(1))),
        M::Pinsrw => Some((I::Pinsrw, Form::Insert(2))),
        M::Pinsrd => Some((I::Pinsrd, Form::Insert(4))),
        M::Pinsrq => Some((I::Pinsrq, Form::Insert(8))),
        M::Pextrb => Some((I::Pextrb, Form::Extract(1))),
        M::Pextrw => Some((I::Pextrw, Form::Extract(2))),
        M::Pextrd => Some((I::Pextrd, Form::Extract(4))),
        M::Pextrq => Some((I::Pextrq, Form::Extract(8))),
        M::Pcmpistri => Some((I::Pcmpistri, Form::Str(false, false))),
        M::Pcmpistrm => Some((I::Pcmpistrm, Form::Str(false, true))),
        M::Pcmpestri | M::Pcmpestri64 => Some((I::Pcmpestri, Form::Str(true, false))),
        M::Pcmpestrm | M::Pcmpestrm64 => Some((I::Pcmpestrm, Form::Str(true, true))),
        _ => None,
    }
}

/// The family of every uop here.
const FAM: Family = Family::Int;

pub(super) fn translate(tx: &mut Tx<'_>, ins: &Instruction) -> Option<Tr> {
    if ins.mnemonic() == Mnemonic::Maskmovdqu {
        return Some(maskmovdqu(tx, ins));
    }
    let (op, f) = form(ins.mnemonic())?;
    Some(emit(tx, ins, op, f))
}

fn imm8(ins: &Instruction) -> u8 {
    (0..ins.op_count())
        .find(|&i| ins.op_kind(i) == OpKind::Immediate8)
        .map_or(0, |i| ins.immediate(i) as u8)
}

/// Emits the uops of `ins` (op `op`, form `f`): loads first, then the one
/// `Vec` uop (pextr to memory: into a temporary, then the store).
fn emit(tx: &mut Tx<'_>, ins: &Instruction, op: IntOp, f: Form) -> Tr {
    let id = op.id();
    let i8 = imm8(ins);
    match f {
        Form::Bin | Form::Blendv | Form::Un(_) | Form::Test => {
            let VOpnd::Xmm(d) = vopnd(ins, 0)? else {
                return Err(Unsupported);
            };
            let bytes = if let Form::Un(n) = f { n } else { 16 };
            let s = vsrc_x(tx, vopnd(ins, 1)?, bytes, bytes == 16)?;
            let mut u = match f {
                Form::Bin => vuop(FAM, id, 16, d, d, s, ZERO, i8),
                Form::Blendv => vuop(FAM, id, 16, d, d, s, XMM0, i8),
                Form::Un(_) => vuop(FAM, id, 16, d, s, s, ZERO, i8),
                _ => vuop(FAM, id, 16, SINK, d, s, ZERO, 0),
            };
            u.fl = int_flags(op);
            tx.emit(u);
        }
        Form::Shift => shift(tx, ins, op, i8)?,
        Form::Movmsk => {
            let (VOpnd::Gpr(g), VOpnd::Xmm(s)) = (vopnd(ins, 0)?, vopnd(ins, 1)?) else {
                return Err(Unsupported);
            };
            tx.emit(vuop(FAM, id, 4, g, s, ZERO, ZERO, 0));
        }
        Form::Insert(bytes) => insert(tx, ins, op, bytes, i8)?,
        Form::Extract(bytes) => extract(tx, ins, op, bytes, i8)?,
        Form::Str(explicit, mask) => string(tx, ins, op, explicit, mask, i8)?,
    }
    Ok(false)
}

/// Shifts by imm8 (the extra byte 1 says so) or by xmm/m128.
fn shift(tx: &mut Tx<'_>, ins: &Instruction, op: IntOp, i8: u8) -> Result<(), Unsupported> {
    let VOpnd::Xmm(d) = vopnd(ins, 0)? else {
        return Err(Unsupported);
    };
    let id = op.id();
    if ins.op_kind(1) == OpKind::Immediate8 {
        let mut u = vuop(FAM, id, 16, d, d, d, ZERO, i8);
        u.imm = pack_imm(id, i8, 1);
        tx.emit(u);
    } else if matches!(op, IntOp::Pslldq | IntOp::Psrldq) {
        return Err(Unsupported);
    } else {
        let s = vsrc_x(tx, vopnd(ins, 1)?, 16, true)?;
        tx.emit(vuop(FAM, id, 16, d, d, s, ZERO, 0));
    }
    Ok(())
}

/// pinsr* xmm, r/m, imm8.
fn insert(
    tx: &mut Tx<'_>,
    ins: &Instruction,
    op: IntOp,
    bytes: u8,
    i8: u8,
) -> Result<(), Unsupported> {
    let VOpnd::Xmm(d) = vopnd(ins, 0)? else {
        return Err(Unsupported);
    };
    let g = match vopnd(ins, 1)? {
        VOpnd::Gpr(g) => g,
        VOpnd::Mem(m) => tx.load(&m, bytes),
        VOpnd::Xmm(_) => return Err(Unsupported),
    };
    tx.emit(vuop(FAM, op.id(), 16, d, d, g, ZERO, i8));
    Ok(())
}

/// pextr* r/m, xmm, imm8 (a GPR result is zero-extended).
fn extract(
    tx: &mut Tx<'_>,
    ins: &Instruction,
    op: IntOp,
    bytes: u8,
    i8: u8,
) -> Result<(), Unsupported> {
    let VOpnd::Xmm(s) = vopnd(ins, 1)? else {
        return Err(Unsupported);
    };
    let size = bytes.max(4);
    match vopnd(ins, 0)? {
        VOpnd::Gpr(g) => tx.emit(vuop(FAM, op.id(), size, g, s, ZERO, ZERO, i8)),
        VOpnd::Mem(m) => {
            let t = tx.tmp();
            tx.emit(vuop(FAM, op.id(), size, t, s, ZERO, ZERO, i8));
            tx.store(&m, bytes, t);
        }
        VOpnd::Xmm(_) => return Err(Unsupported),
    }
    Ok(())
}

/// pcmpistri/pcmpistrm/pcmpestri/pcmpestrm: the explicit lengths (RAX,
/// RDX) go into a vector temporary first; the index goes to ECX, the mask
/// to XMM0. The string compares do not check alignment.
fn string(
    tx: &mut Tx<'_>,
    ins: &Instruction,
    op: IntOp,
    explicit: bool,
    mask: bool,
    i8: u8,
) -> Result<(), Unsupported> {
    let VOpnd::Xmm(a) = vopnd(ins, 0)? else {
        return Err(Unsupported);
    };
    let b = vsrc_x(tx, vopnd(ins, 1)?, 16, false)?;
    let c = if explicit {
        let v = tx.vtmp();
        tx.vmov(crate::simd::MovOp::FromGpr2, 16, v, 0, 2, 0);
        v
    } else {
        ZERO
    };
    let dst = if mask { XMM0 } else { 1 };
    let mut u = vuop(FAM, op.id(), 16, dst, a, b, c, i8);
    let wide = matches!(
        ins.mnemonic(),
        Mnemonic::Pcmpestri64 | Mnemonic::Pcmpestrm64
    );
    u.imm = pack_imm(op.id(), i8, if wide { 2 } else { 0 });
    u.fl = int_flags(op);
    tx.emit(u);
    Ok(())
}

/// maskmovdqu xmm1, xmm2: the bytes of xmm1 whose xmm2 byte has its top
/// bit set, to DS:[rdi]. A read-modify-write of the 16 bytes (the
/// unselected ones rewritten with what they hold, as a store probe does;
/// the overlapping load and store make it atomic): every selected byte is
/// stored or, on a fault, none. A zero mask still needs writable memory
/// (the SDM allows the fault).
/// The implicit DS:[RDI] (or [EDI] with 67h) destination of maskmovdqu
/// and maskmovq.
pub(super) fn rdi_operand(ins: &Instruction) -> crate::translate::insn::MemRef {
    crate::translate::insn::MemRef {
        base: 7,
        index: ZERO,
        scale: 0,
        disp: 0,
        seg: crate::translate::insn::seg_reg(ins.memory_segment()),
        addr32: ins.op_kind(0) == OpKind::MemorySegEDI,
    }
}

fn maskmovdqu(tx: &mut Tx<'_>, ins: &Instruction) -> Tr {
    use crate::translate::insn::mem_uop;
    use crate::uop::Op;
    let (VOpnd::Xmm(data), VOpnd::Xmm(mask)) = (vopnd(ins, 1)?, vopnd(ins, 2)?) else {
        return Err(Unsupported);
    };
    let m = rdi_operand(ins);
    // Probed for writing before the old contents are read: a fault on
    // either page is a write's (error code W), the lower page's first.
    tx.emit(mem_uop(Op::ProbeW, 8, &m));
    tx.emit(mem_uop(Op::ProbeW, 8, &m.offset(8)));
    let old = tx.vload(&m, 16, false);
    let new = tx.vtmp();
    tx.emit(vuop(
        Family::Int,
        IntOp::Pblendvb.id(),
        16,
        new,
        old,
        data,
        mask,
        0,
    ));
    let lo = tx.tmp();
    let hi = tx.tmp();
    tx.vmov(crate::simd::MovOp::ToGpr, 8, lo, new, ZERO, 0);
    tx.vmov(crate::simd::MovOp::ToGpr, 8, hi, new, ZERO, 1);
    tx.store(&m.offset(8), 8, hi);
    tx.store(&m, 8, lo);
    Ok(false)
}

/// A vector source that must be an XMM register or memory.
fn vsrc_x(tx: &mut Tx<'_>, o: VOpnd, bytes: u8, align: bool) -> Result<u8, Unsupported> {
    match o {
        VOpnd::Gpr(_) => Err(Unsupported),
        o => Ok(tx.vsrc(o, bytes, align)),
    }
}
