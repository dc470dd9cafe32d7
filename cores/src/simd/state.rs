//! [`super::Family::State`]: FXSAVE/FXRSTOR, XSAVE/XSAVEOPT/XRSTOR,
//! XGETBV, and the x87 environment and state images (FNSTENV, FLDENV,
//! FNSAVE, FRSTOR, 32-bit protected-mode format as in 64-bit mode).
//!
//! These uops reach memory themselves: `a` holds the linear address
//! (segment base included). The translator first checks the alignment
//! ([`StateOp::Align`]) and probes the first and last bytes of the image
//! with ordinary uops, so page faults are raised precisely before
//! anything changes; the image is then read or written whole. A failure
//! of the access itself after the probes (which cannot be a new page
//! fault: an image spans at most two pages) is reported as #GP (the
//! [`Exc`] of a `Vec` uop carries only a vector).
//!
//! `size` 8: the 64-bit formats (REX.W: FIP and FDP as 64-bit offsets);
//! 4: the 32-bit formats (32-bit offsets, then the deprecated CS/DS
//! selectors, stored as 0). XSAVE's init tracking is modelled from the
//! values: a component is in use when it differs from its initial
//! configuration. XSAVEOPT skips components in their initial
//! configuration and writes the others (no modified-tracking).

use super::x87::{fcw_value, fsw_value};
use super::{imm8_of, op_of, vector, Exc, VecCtx};
use crate::fpu::{x87 as sw, xcr0, FpuState, MXCSR_MASK};
use crate::uop::Uop;

/// The operations of the state family.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(u16)]
pub(crate) enum StateOp {
    /// #GP(0) unless g[a] is a multiple of imm8 + 1 (15 or 63).
    Align = 0,
    /// FXSAVE to g[a].
    Fxsave = 1,
    /// FXRSTOR from g[a].
    Fxrstor = 2,
    /// XSAVE to g[a], RFBM = XCR0 & (g[c] << 32 | low 32 of g[b]); imm8 1:
    /// XSAVEOPT.
    Xsave = 3,
    /// XRSTOR from g[a] (mask as for Xsave).
    Xrstor = 4,
    /// g[dst] = XCR(g[a]) low (imm8 0) or high (imm8 1) half; #GP unless
    /// ECX = 0.
    Xgetbv = 5,
    /// FNSTENV to g[a] (then all exceptions masked).
    Fnstenv = 6,
    /// FLDENV from g[a] (the translator checks FSW.ES first).
    Fldenv = 7,
    /// FNSAVE to g[a] (then fninit).
    Fnsave = 8,
    /// FRSTOR from g[a] (the translator checks FSW.ES first).
    Frstor = 9,
}

impl StateOp {
    pub(crate) const fn id(self) -> u16 {
        self as u16
    }
}

/// The registers a state uop reads and writes besides its operands.
pub(crate) fn implicit(u: &Uop) -> (&'static [u8], &'static [u8]) {
    use crate::uop::{MXCSR, X87};
    match op_of(u) {
        0 | 5 => (&[], &[]),
        1 | 3 => (&[X87, MXCSR], &[]),
        6 | 8 => (&[X87], &[X87]),
        7 | 9 => (&[X87], &[X87]),
        _ => (&[X87, MXCSR], &[X87, MXCSR]),
    }
}

/// Reads an image as 8-byte data loads (`GuestMemory::read` is the
/// instruction-fetch path: it would bypass the store buffer and the data
/// caches), so a restore sees this context's own buffered stores and is
/// timed like the loads it is.
fn read_as_loads(
    mem: &mut dyn crate::mem::GuestMemory,
    addr: u64,
    buf: &mut [u8],
) -> Result<(), crate::mem::MemStop> {
    for (i, chunk) in buf.chunks_mut(8).enumerate() {
        let n = u8::try_from(chunk.len()).expect("chunks of at most 8");
        let v = mem.load(addr.wrapping_add(8 * i as u64), n)?;
        chunk.copy_from_slice(&v.to_le_bytes()[..chunk.len()]);
    }
    Ok(())
}

/// Keeps a memory stop (a page fault or a retry) for the executor, which
/// turns it into the #PF or the replay (see [`super::VecCtx::stop`]).
fn mem_err(slot: &mut Option<crate::mem::MemStop>, e: crate::mem::MemStop) -> Exc {
    *slot = Some(e);
    Exc(super::MEM_STOP)
}

fn w16(b: &[u8], o: usize) -> u16 {
    u16::from_le_bytes([b[o], b[o + 1]])
}

fn w32(b: &[u8], o: usize) -> u32 {
    u32::from_le_bytes([b[o], b[o + 1], b[o + 2], b[o + 3]])
}

fn w64(b: &[u8], o: usize) -> u64 {
    u64::from(w32(b, o)) | (u64::from(w32(b, o + 4)) << 32)
}

/// The FXSAVE image in the format of `size` (8: 64-bit, 4: 32-bit).
fn fxsave_image(f: &FpuState, size: u8) -> [u8; 512] {
    let mut b = f.to_fxsave();
    if size != 8 {
        b[8..16].copy_from_slice(&u64::from(f.fip as u32).to_le_bytes());
        b[16..24].copy_from_slice(&u64::from(f.fdp as u32).to_le_bytes());
    }
    b
}

/// Loads an FXSAVE image of the format of `size` (MXCSR checked).
fn fxrstor_image(f: &mut FpuState, b: &[u8; 512], size: u8) -> Result<(), Exc> {
    f.load_fxsave(b).map_err(|_| Exc(vector::GP))?;
    f.fcw = fcw_value(f.fcw);
    f.fsw = fsw_value(f.fsw, f.fcw);
    if size != 8 {
        f.fip = u64::from(w32(b, 8));
        f.fdp = u64::from(w32(b, 16));
    }
    Ok(())
}

/// The 28-byte x87 environment (32-bit protected-mode format).
fn env_image(f: &FpuState) -> [u8; 28] {
    let mut b = [0u8; 28];
    let put16 = |b: &mut [u8; 28], o: usize, v: u16| b[o..o + 2].copy_from_slice(&v.to_le_bytes());
    put16(&mut b, 0, f.fcw);
    put16(&mut b, 2, 0xffff);
    put16(&mut b, 4, f.fsw);
    put16(&mut b, 6, 0xffff);
    put16(&mut b, 8, full_tags(f));
    put16(&mut b, 10, 0xffff);
    b[12..16].copy_from_slice(&(f.fip as u32).to_le_bytes());
    put16(&mut b, 18, f.fop & 0x7ff);
    b[20..24].copy_from_slice(&(f.fdp as u32).to_le_bytes());
    put16(&mut b, 26, 0xffff);
    b
}

/// The full tag word as stored: each non-empty register's tag from its
/// contents.
fn full_tags(f: &FpuState) -> u16 {
    (0..8).fold(0u16, |t, p| {
        let tag = if f.tag(p) == sw::TAG_EMPTY {
            sw::TAG_EMPTY
        } else {
            FpuState::tag_of(f.st[p])
        };
        t | (tag << (2 * p))
    })
}

/// Loads an environment image.
fn load_env(f: &mut FpuState, b: &[u8]) {
    f.fcw = fcw_value(w16(b, 0));
    f.fsw = fsw_value(w16(b, 4), f.fcw);
    let tags = w16(b, 8);
    for p in 0..8 {
        let t = if (tags >> (2 * p)) & 3 == sw::TAG_EMPTY {
            sw::TAG_EMPTY
        } else {
            FpuState::tag_of(f.st[p])
        };
        f.set_tag(p, t);
    }
    f.fip = u64::from(w32(b, 12));
    f.fop = w16(b, 18) & 0x7ff;
    f.fdp = u64::from(w32(b, 20));
}

/// The x87 component in its initial configuration.
fn x87_init(f: &FpuState) -> bool {
    f.fcw == sw::FCW_DEFAULT
        && f.fsw == 0
        && f.ftw == 0xffff
        && f.fop == 0
        && f.fip == 0
        && f.fdp == 0
        && f.st.iter().all(|&v| v == 0)
}

fn sse_init(f: &FpuState) -> bool {
    f.xmm.iter().all(|&v| v == 0)
}

fn xsave(x: &mut VecCtx<'_>, u: &Uop, addr: u64, rfbm: u64) -> Result<(), Exc> {
    let opt = imm8_of(u) == 1;
    let f = &*x.fpu;
    let img = fxsave_image(f, u.size);
    let mut hdr = [0u8; 8];
    read_as_loads(x.mem, addr + 512, &mut hdr).map_err(|e| mem_err(&mut x.stop, e))?;
    let inuse = u64::from(!x87_init(f)) | (u64::from(!sse_init(f)) << 1);
    let bv = (u64::from_le_bytes(hdr) & !rfbm) | (inuse & rfbm);
    let mut pieces: Vec<(usize, usize)> = Vec::new();
    if rfbm & xcr0::X87 != 0 && !(opt && inuse & 1 == 0) {
        pieces.push((0, 24));
        pieces.push((32, 160));
    }
    if rfbm & xcr0::SSE != 0 {
        pieces.push((24, 32));
        if !(opt && inuse & 2 == 0) {
            pieces.push((160, 416));
        }
    }
    for (s, e) in pieces {
        x.mem
            .write(addr + s as u64, &img[s..e])
            .map_err(|e| mem_err(&mut x.stop, e))?;
    }
    x.mem
        .write(addr + 512, &bv.to_le_bytes())
        .map_err(|e| mem_err(&mut x.stop, e))
}

fn xrstor(x: &mut VecCtx<'_>, u: &Uop, addr: u64, rfbm: u64) -> Result<(), Exc> {
    let mut b = [0u8; 576];
    read_as_loads(x.mem, addr, &mut b).map_err(|e| mem_err(&mut x.stop, e))?;
    let bv = w64(&b, 512);
    let comp = w64(&b, 520);
    let reserved = b[528..576].iter().any(|&v| v != 0);
    if bv & !x.fpu.xcr0 != 0 || comp != 0 || reserved {
        return Err(Exc(vector::GP));
    }
    let mxcsr = w32(&b, 24);
    if rfbm & xcr0::SSE != 0 && mxcsr & !MXCSR_MASK != 0 {
        return Err(Exc(vector::GP));
    }
    let mut img = [0u8; 512];
    img.copy_from_slice(&b[..512]);
    let f = &mut *x.fpu;
    let old = f.clone();
    if rfbm & xcr0::SSE == 0 {
        img[24..28].copy_from_slice(&old.mxcsr.to_le_bytes());
    }
    let mut new = old.clone();
    // Load everything from the image, then put back what RFBM/XSTATE_BV
    // say is not loaded.
    fxrstor_image(&mut new, &img, u.size)?;
    if rfbm & xcr0::X87 != 0 {
        if bv & xcr0::X87 == 0 {
            new.fninit();
            new.st = [0; 8];
        }
    } else {
        new.fcw = old.fcw;
        new.fsw = old.fsw;
        new.ftw = old.ftw;
        new.fop = old.fop;
        new.fip = old.fip;
        new.fdp = old.fdp;
        new.st = old.st;
    }
    if rfbm & xcr0::SSE != 0 {
        if bv & xcr0::SSE == 0 {
            new.xmm = [0; 16];
        }
    } else {
        new.xmm = old.xmm;
        new.mxcsr = old.mxcsr;
    }
    *f = new;
    Ok(())
}

pub(super) fn exec(x: &mut VecCtx<'_>, u: &Uop) -> Result<(), Exc> {
    let addr = x.g(u.a);
    let op = op_of(u);
    let rfbm = x.fpu.xcr0 & ((x.g(u.c) << 32) | (x.g(u.b) & 0xffff_ffff));
    match op {
        0 => {
            if addr & u64::from(imm8_of(u)) != 0 {
                return Err(Exc(vector::GP));
            }
        }
        1 => {
            // Bytes 511:416 (reserved and software-available) are not
            // written, as on the host.
            let img = fxsave_image(x.fpu, u.size);
            x.mem
                .write(addr, &img[..416])
                .map_err(|e| mem_err(&mut x.stop, e))?;
        }
        2 => {
            let mut b = [0u8; 512];
            read_as_loads(x.mem, addr, &mut b).map_err(|e| mem_err(&mut x.stop, e))?;
            fxrstor_image(x.fpu, &b, u.size)?;
        }
        3 => xsave(x, u, addr, rfbm)?,
        4 => xrstor(x, u, addr, rfbm)?,
        5 => {
            if x.g(u.a) as u32 != 0 {
                return Err(Exc(vector::GP));
            }
            let v = x.fpu.xcr0;
            let half = if imm8_of(u) == 1 {
                v >> 32
            } else {
                v & 0xffff_ffff
            };
            x.set_g(u.dst, 4, half);
        }
        6 => {
            let img = env_image(x.fpu);
            x.mem
                .write(addr, &img)
                .map_err(|e| mem_err(&mut x.stop, e))?;
            x.fpu.fcw |= 0x3f;
            x.fpu.fsw &= !(sw::FSW_ES | sw::FSW_B);
        }
        7 => {
            let mut b = [0u8; 28];
            read_as_loads(x.mem, addr, &mut b).map_err(|e| mem_err(&mut x.stop, e))?;
            load_env(x.fpu, &b);
        }
        8 => {
            let mut img = [0u8; 108];
            img[..28].copy_from_slice(&env_image(x.fpu));
            for i in 0..8 {
                let v = x.fpu.st[x.fpu.phys(i)];
                img[28 + 10 * i..38 + 10 * i].copy_from_slice(&v.to_le_bytes()[..10]);
            }
            x.mem
                .write(addr, &img)
                .map_err(|e| mem_err(&mut x.stop, e))?;
            x.fpu.fninit();
        }
        9 => {
            let mut b = [0u8; 108];
            read_as_loads(x.mem, addr, &mut b).map_err(|e| mem_err(&mut x.stop, e))?;
            // Registers first (in stack order of the new TOP), then tags.
            let top = usize::from((w16(&b, 4) >> sw::TOP_SHIFT) & 7);
            for i in 0..8 {
                let mut v = [0u8; 16];
                v[..10].copy_from_slice(&b[28 + 10 * i..38 + 10 * i]);
                x.fpu.st[(top + i) & 7] = u128::from_le_bytes(v);
            }
            load_env(x.fpu, &b);
        }
        _ => return Err(Exc(vector::UD)),
    }
    Ok(())
}
