//! The PV MMU: guest page tables validated as Xen validates them, the
//! VCPUs' base pointers and guest kernel/user mode (xen-abi.md §4.9).
//!
//! (Being built: this first version holds the base-pointer API the rest of
//! the hypervisor calls.)

use crate::abi::Errno;
use crate::hypervisor::{Effect, Hypervisor};
use crate::ids::{DomainId, Mfn, VcpuId};

/// Which base pointer of a VCPU.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub enum BasePtr {
    /// The kernel's (CR3 in guest kernel mode; MMUEXT_NEW_BASEPTR).
    Kernel,
    /// The user one (MMUEXT_NEW_USER_BASEPTR).
    User,
}

impl Hypervisor {
    /// Installs `mfn` as VCPU `v`'s `which` base pointer (MMUEXT_NEW_BASEPTR,
    /// MMUEXT_NEW_USER_BASEPTR, a CR3 write): the frame must be the domain's
    /// and validate as an L4 table. Returns the effect to apply when the
    /// active root changed.
    pub fn new_baseptr(
        &mut self,
        d: DomainId,
        v: VcpuId,
        mfn: Mfn,
        which: BasePtr,
    ) -> Result<Option<Effect>, Errno> {
        let vc = self.vcpu_mut(d, v);
        let before = vc.mmu.active_root();
        match which {
            BasePtr::Kernel => vc.mmu.kernel_root = Some(mfn),
            BasePtr::User => vc.mmu.user_root = Some(mfn),
        }
        let changed = vc.mmu.active_root() != before;
        Ok(changed.then_some(Effect::NewRoot { domain: d, vcpu: v }))
    }

    /// Switches VCPU `v` between guest kernel and user mode (Xen's
    /// toggle_guest_mode): the active root follows. Returns the effect to
    /// apply when the active root changed.
    pub fn set_guest_mode(&mut self, d: DomainId, v: VcpuId, user: bool) -> Option<Effect> {
        let vc = self.vcpu_mut(d, v);
        let before = vc.mmu.active_root();
        vc.mmu.user_mode = user;
        (vc.mmu.active_root() != before).then_some(Effect::NewRoot { domain: d, vcpu: v })
    }

    /// The L4 VCPU `v` walks now, and whether it is in guest user mode.
    pub fn active_root(&self, d: DomainId, v: VcpuId) -> (Option<Mfn>, bool) {
        let m = self
            .domain(d)
            .and_then(|dom| dom.vcpu(v))
            .map(|vc| vc.mmu)
            .unwrap_or_default();
        (m.active_root(), m.user_mode)
    }
}
