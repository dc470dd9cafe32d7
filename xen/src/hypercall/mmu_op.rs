//! The PV MMU hypercalls: `mmu_update` (1), `update_va_mapping` (14) and
//! `mmuext_op` (26), validated by [`crate::mmu`] (xen-abi.md §4.9).
//!
//! Errors are Xen's: a frame the domain does not own, an entry that would
//! map a page-table frame read-write, a table entry whose frame does not
//! validate, a Xen L4 slot or a guest superpage give -EINVAL; a foreign
//! domain id gives -EPERM (unprivileged); an unreadable request list
//! -EFAULT; an unknown command -ENOSYS. A batch stops at its first failing
//! request; `done` (when not NULL) receives how many completed.

use super::{ok, u32_at, u64_at, Call, HResult, Ret};
use crate::abi::{Errno, DOMID_SELF};
use crate::hypervisor::Effect;
use crate::ids::{Mfn, VcpuId, PAGE_SIZE};
use crate::mmu::{cmd, ext, uvmf, BasePtr, Mmu, PageType};

/// Bytes of one `mmu_update_t`.
const MMU_UPDATE_SIZE: u64 = 16;
/// Bytes of one `mmuext_op_t`.
const MMUEXT_OP_SIZE: u64 = 24;

impl Call<'_> {
    /// Whether `foreigndom` names the caller (DOMID_SELF or its own id).
    fn own_domain(&self, foreigndom: u64) -> bool {
        let fd = foreigndom & 0xffff;
        fd == u64::from(DOMID_SELF) || fd == u64::from(self.d.0)
    }

    fn mmu(&mut self) -> Mmu<'_> {
        Mmu {
            dom: self.hv.dom_mut(self.d),
            mem: &mut *self.mem,
            flush_all: false,
        }
    }

    /// Runs `mmu` work, then queues the domain-wide flush it asked for.
    fn with_mmu<T>(&mut self, f: impl FnOnce(&mut Mmu<'_>) -> T) -> T {
        let mut m = self.mmu();
        let r = f(&mut m);
        if m.flush_all {
            self.effects.push(Effect::Flush {
                domain: self.d,
                vcpus: None,
                page: None,
            });
        }
        r
    }

    fn write_done(&mut self, done: u64, n: u32) -> Result<(), Errno> {
        if done != 0 {
            self.write(done, &n.to_le_bytes())?;
        }
        Ok(())
    }

    /// `mmu_update(reqs, count, done, foreigndom)`.
    pub(super) fn mmu_update(
        &mut self,
        reqs: u64,
        count: u32,
        done: u64,
        foreigndom: u64,
    ) -> HResult {
        if !self.own_domain(foreigndom) || foreigndom >> 16 != 0 {
            return Err(Errno::Perm);
        }
        let mut n = 0u32;
        let mut rc = Ok(());
        while n < count {
            let b = match self.read(reqs + u64::from(n) * MMU_UPDATE_SIZE, 16) {
                Ok(b) => b,
                Err(e) => {
                    rc = Err(e);
                    break;
                }
            };
            let (ptr, val) = (u64_at(&b, 0), u64_at(&b, 8));
            if let Err(e) = self.one_update(ptr, val) {
                rc = Err(e);
                break;
            }
            n += 1;
        }
        self.write_done(done, n)?;
        rc.map(|()| Ret::Value(0))
    }

    fn one_update(&mut self, ptr: u64, val: u64) -> Result<(), Errno> {
        let at = ptr & !3;
        let mfn = Mfn(at / PAGE_SIZE);
        match ptr & 3 {
            cmd::MACHPHYS_UPDATE => {
                if !self.hv.domain(self.d).is_some_and(|d| d.owns(mfn)) {
                    return Err(Errno::Inval);
                }
                self.hv.write_m2p(mfn, val, &mut *self.mem);
                Ok(())
            }
            c => {
                if !at.is_multiple_of(8) {
                    return Err(Errno::Inval);
                }
                let preserve_ad = c == cmd::PT_UPDATE_PRESERVE_AD;
                self.with_mmu(|m| {
                    let info = m.dom.mmu_page(mfn).ok_or(Errno::Inval)?;
                    match info.ty.level() {
                        Some(level) if info.type_count > 0 => {
                            m.mod_entry(at, level, val, preserve_ad)
                        }
                        _ => {
                            // Not a table: a plain write to a frame that may
                            // be written.
                            m.get_type(mfn, PageType::Writable)?;
                            m.mem.write_ma_u64(at, val);
                            m.put_type(mfn);
                            Ok(())
                        }
                    }
                })
            }
        }
    }

    /// `update_va_mapping(va, pte, flags)`.
    pub(super) fn update_va_mapping(&mut self, va: u64, val: u64, flags: u64) -> HResult {
        let (root, _) = self.hv.active_root(self.d, self.v);
        let root = root.ok_or(Errno::Inval)?;
        self.with_mmu(|m| {
            let at = m.l1_entry_of(root, va)?;
            m.mod_entry(at, 1, val, false)
        })?;
        let page = va & !(PAGE_SIZE - 1);
        let what = match flags & uvmf::FLUSHTYPE_MASK {
            uvmf::NONE => return ok(),
            uvmf::TLB_FLUSH => None,
            uvmf::INVLPG => Some(page),
            _ => return Err(Errno::Inval),
        };
        let vcpus = self.flush_scope(flags & !uvmf::FLUSHTYPE_MASK)?;
        self.effects.push(Effect::Flush {
            domain: self.d,
            vcpus,
            page: what,
        });
        ok()
    }

    /// The VCPUs a flush scope names: 0 = the caller, [`uvmf::ALL`] = all
    /// (None), otherwise a pointer to a VCPU bitmap.
    fn flush_scope(&mut self, scope: u64) -> Result<Option<Vec<VcpuId>>, Errno> {
        match scope {
            0 => Ok(Some(vec![self.v])),
            uvmf::ALL => Ok(None),
            ptr => self.vcpu_mask(ptr).map(Some),
        }
    }

    /// Reads a VCPU bitmap (an array of 64-bit words) at `ptr`.
    fn vcpu_mask(&mut self, ptr: u64) -> Result<Vec<VcpuId>, Errno> {
        let n = self.hv.domain(self.d).map_or(0, |d| d.nr_vcpus());
        let words = n.div_ceil(64);
        let b = self.read(ptr, 8 * words as usize)?;
        Ok((0..n)
            .filter(|&i| u64_at(&b, 8 * (i / 64) as usize) >> (i % 64) & 1 == 1)
            .map(VcpuId)
            .collect())
    }

    /// `mmuext_op(ops, count, done, foreigndom)`.
    pub(super) fn mmuext_op(
        &mut self,
        ops: u64,
        count: u32,
        done: u64,
        foreigndom: u64,
    ) -> HResult {
        if !self.own_domain(foreigndom) {
            return Err(Errno::Perm);
        }
        let mut n = 0u32;
        let mut rc = Ok(());
        while n < count {
            let b = match self.read(ops + u64::from(n) * MMUEXT_OP_SIZE, 24) {
                Ok(b) => b,
                Err(e) => {
                    rc = Err(e);
                    break;
                }
            };
            let (c, arg1, arg2) = (u32_at(&b, 0), u64_at(&b, 8), u64_at(&b, 16));
            if let Err(e) = self.one_ext(c, arg1, arg2) {
                rc = Err(e);
                break;
            }
            n += 1;
        }
        self.write_done(done, n)?;
        rc.map(|()| Ret::Value(0))
    }

    fn one_ext(&mut self, c: u32, arg1: u64, arg2: u64) -> Result<(), Errno> {
        let mfn = Mfn(arg1);
        let domain = self.d;
        let flush = |vcpus, page| Effect::Flush {
            domain,
            vcpus,
            page,
        };
        match c {
            ext::PIN_L1_TABLE | ext::PIN_L2_TABLE | ext::PIN_L3_TABLE | ext::PIN_L4_TABLE => {
                self.with_mmu(|m| m.pin(mfn, c + 1))
            }
            ext::UNPIN_TABLE => self.with_mmu(|m| m.unpin(mfn)),
            ext::NEW_BASEPTR | ext::NEW_USER_BASEPTR => {
                let which = if c == ext::NEW_BASEPTR {
                    BasePtr::Kernel
                } else {
                    BasePtr::User
                };
                let m = (arg1 != 0 || which == BasePtr::Kernel).then_some(mfn);
                let effects = self
                    .hv
                    .new_baseptr(self.d, self.v, m, which, &mut *self.mem)?;
                self.effects.extend(effects);
                Ok(())
            }
            ext::TLB_FLUSH_LOCAL => {
                let e = flush(Some(vec![self.v]), None);
                self.effects.push(e);
                Ok(())
            }
            ext::INVLPG_LOCAL => {
                let e = flush(Some(vec![self.v]), Some(arg1 & !(PAGE_SIZE - 1)));
                self.effects.push(e);
                Ok(())
            }
            ext::TLB_FLUSH_MULTI | ext::INVLPG_MULTI => {
                let vcpus = self.vcpu_mask(arg2)?;
                let page = (c == ext::INVLPG_MULTI).then_some(arg1 & !(PAGE_SIZE - 1));
                let e = flush(Some(vcpus), page);
                self.effects.push(e);
                Ok(())
            }
            ext::TLB_FLUSH_ALL | ext::INVLPG_ALL => {
                let page = (c == ext::INVLPG_ALL).then_some(arg1 & !(PAGE_SIZE - 1));
                let e = flush(None, page);
                self.effects.push(e);
                Ok(())
            }
            // An unprivileged domain without I/O memory may not flush caches.
            ext::FLUSH_CACHE | ext::FLUSH_CACHE_GLOBAL => Err(Errno::Acces),
            ext::SET_LDT => {
                let ents = arg2 & 0xffff_ffff;
                if !arg1.is_multiple_of(PAGE_SIZE)
                    || ents > 8192
                    || !smpsim_cores::paging::is_canonical(arg1)
                {
                    return Err(Errno::Inval);
                }
                let pv = &mut self.hv.vcpu_mut(self.d, self.v).pv;
                pv.ldt_base = arg1;
                pv.ldt_entries = ents as u32;
                Ok(())
            }
            ext::CLEAR_PAGE => self.with_mmu(|m| {
                m.get_type(mfn, PageType::Writable)?;
                for i in 0..PAGE_SIZE / 8 {
                    m.mem.write_ma_u64(mfn.addr(8 * i).get(), 0);
                }
                m.put_type(mfn);
                Ok(())
            }),
            ext::COPY_PAGE => {
                let src = Mfn(arg2);
                self.with_mmu(|m| {
                    if !m.dom.owns(src) {
                        return Err(Errno::Inval);
                    }
                    m.get_type(mfn, PageType::Writable)?;
                    for i in 0..PAGE_SIZE / 8 {
                        let v = m.mem.read_ma_u64(src.addr(8 * i).get());
                        m.mem.write_ma_u64(mfn.addr(8 * i).get(), v);
                    }
                    m.put_type(mfn);
                    Ok(())
                })
            }
            _ => Err(Errno::NoSys),
        }
    }
}
