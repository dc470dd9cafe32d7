//! `domctl(op)` (36): the toolstack's domain control, of which only
//! `XEN_DOMCTL_getdomaininfo` is modelled — what a control domain needs
//! to see other domains shut down (xl's wait for a domain's death).
//!
//! As in Xen (`common/domctl.c`): an `interface_version` other than
//! [`INTERFACE_VERSION`] is -EACCES; a caller that is not the privileged
//! control domain is -EPERM (the dummy XSM's `XSM_XS_PRIV`; there is no
//! xenstore stub domain here); getdomaininfo reports the first domain
//! whose id is at least `domain` (-ESRCH when none), writes its id back
//! to `domain` and copies the whole op back; any other command is
//! -ENOSYS.
//!
//! Layout of `struct xen_domctl`: cmd u32 @0, interface_version u32 @4,
//! domain u16 @8, then the union @16. Of `xen_domctl_getdomaininfo`
//! (offsets from the union): domain u16 @0, flags u32 @4, tot_pages @8,
//! max_pages @16, outstanding_pages @24, shr_pages @32, paged_pages @40,
//! shared_info_frame @48, cpu_time @56, nr_online_vcpus u32 @64,
//! max_vcpu_id u32 @68, ssidref u32 @72, handle @76, cpupool u32 @92;
//! fields not listed as written are 0.

use super::{ok, u16_at, u32_at, Call, HResult};
use crate::abi::Errno;
use crate::ids::DomainId;
use crate::vcpu::RunState;

/// `XEN_DOMCTL_INTERFACE_VERSION` of Xen 4.17 and later.
pub const INTERFACE_VERSION: u32 = 0x17;
/// `XEN_DOMCTL_getdomaininfo`.
pub const GETDOMAININFO: u32 = 5;
/// `sizeof(struct xen_domctl)`.
const DOMCTL_SIZE: usize = 16 + 128;

/// `XEN_DOMINF_*` flags.
pub mod dominf {
    /// The domain has shut down (its reason in bits 16–23).
    pub const SHUTDOWN: u32 = 1 << 2;
    /// Every VCPU is blocked.
    pub const BLOCKED: u32 = 1 << 4;
    /// A VCPU is running.
    pub const RUNNING: u32 = 1 << 5;
    /// Where the shutdown reason starts.
    pub const SHUTDOWN_SHIFT: u32 = 16;
}

impl Call<'_> {
    pub(super) fn domctl(&mut self, arg: u64) -> HResult {
        let mut b = self.read(arg, DOMCTL_SIZE)?;
        if u32_at(&b, 4) != INTERFACE_VERSION {
            return Err(Errno::Acces);
        }
        if !self.privileged() {
            return Err(Errno::Perm);
        }
        match u32_at(&b, 0) {
            GETDOMAININFO => {
                self.domain_info(u16_at(&b, 8), &mut b[16..])?;
                self.write(arg, &b)?;
                ok()
            }
            _ => Err(Errno::NoSys),
        }
    }

    /// Fills `u` with the first domain at or above `from`.
    fn domain_info(&self, from: u16, u: &mut [u8]) -> Result<(), Errno> {
        let dom = (from..crate::abi::DOMID_SELF)
            .find_map(|id| self.hv.domain(DomainId(id)))
            .ok_or(Errno::Srch)?;
        u.fill(0);
        let mut flags = 0;
        if let Some(s) = &dom.shutdown {
            flags |= dominf::SHUTDOWN | (s.reason & 0xff) << dominf::SHUTDOWN_SHIFT;
        }
        let up: Vec<_> = dom
            .vcpus
            .iter()
            .filter(|v| v.state != RunState::Down)
            .collect();
        if up.iter().any(|v| v.state == RunState::Runnable) {
            flags |= dominf::RUNNING;
        } else if !up.is_empty() {
            flags |= dominf::BLOCKED;
        }
        u[0..2].copy_from_slice(&dom.id.0.to_le_bytes());
        u[4..8].copy_from_slice(&flags.to_le_bytes());
        u[8..16].copy_from_slice(&dom.tot_pages().to_le_bytes());
        u[16..24].copy_from_slice(&dom.max_pages().to_le_bytes());
        u[48..56].copy_from_slice(&dom.shared_info().0.to_le_bytes());
        u[64..68].copy_from_slice(&(up.len() as u32).to_le_bytes());
        let max_id = dom.vcpus.len().saturating_sub(1) as u32;
        u[68..72].copy_from_slice(&max_id.to_le_bytes());
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::abi::hypercall::DOMCTL;
    use crate::hypervisor::Effect;
    use crate::testenv::{env, Env, SCRATCH};

    /// getdomaininfo of `domain` from domain `d`: RAX and the op after.
    fn info(e: &mut Env, d: u16, domain: u16, version: u32) -> (i64, Vec<u8>) {
        let mut b = vec![0u8; DOMCTL_SIZE];
        b[0..4].copy_from_slice(&GETDOMAININFO.to_le_bytes());
        b[4..8].copy_from_slice(&version.to_le_bytes());
        b[8..10].copy_from_slice(&domain.to_le_bytes());
        e.write(d, SCRATCH, &b);
        let (rc, _) = e.call(d, 0, 0, DOMCTL, [SCRATCH, 0, 0, 0, 0]);
        (rc, e.read(d, SCRATCH, DOMCTL_SIZE))
    }

    #[test]
    fn the_control_domain_sees_another_domain_shut_down() {
        let mut e = env(&[1, 2]);
        e.hv.domains[0].privileged = true;
        let (rc, b) = info(&mut e, 0, 1, INTERFACE_VERSION);
        assert_eq!(rc, 0);
        assert_eq!(u16_at(&b, 16), 1);
        assert_eq!(u32_at(&b, 20) & dominf::SHUTDOWN, 0);
        assert_eq!(u32_at(&b, 16 + 64), 1, "one VCPU up");
        assert_eq!(u32_at(&b, 16 + 68), 1, "max_vcpu_id");
        e.hv.shutdown_domain(DomainId(1), 3, "test".into(), 9);
        let (_, b) = info(&mut e, 0, 1, INTERFACE_VERSION);
        let flags = u32_at(&b, 20);
        assert_ne!(flags & dominf::SHUTDOWN, 0);
        assert_eq!(flags >> dominf::SHUTDOWN_SHIFT, 3, "the crash reason");
        // Past the last domain; a wrong interface version.
        assert_eq!(info(&mut e, 0, 2, INTERFACE_VERSION).0, -3);
        assert_eq!(info(&mut e, 0, 1, 0x10).0, -13);
    }

    #[test]
    fn an_unprivileged_domain_may_not_use_domctl() {
        let mut e = env(&[1, 1]);
        assert_eq!(info(&mut e, 1, 0, INTERFACE_VERSION).0, -1);
        assert_eq!(info(&mut e, 0, 1, INTERFACE_VERSION).0, -1);
    }

    #[test]
    fn a_shutdown_sends_virq_dom_exc_to_domain_0() {
        let mut e = env(&[1, 1, 1]);
        let port = e.bind_virq(0, crate::abi::VIRQ_DOM_EXC);
        e.hv.shutdown_domain(DomainId(2), 0, "done".into(), 5);
        let sent = e.hv.take_dom_exc();
        assert!(
            matches!(&sent[..], [Effect::Raise(r)] if r.domain == DomainId(0) && r.port == port)
        );
        // Its own shutdown sends nothing, nor once it is down.
        e.hv.shutdown_domain(DomainId(0), 0, "done".into(), 6);
        e.hv.shutdown_domain(DomainId(1), 0, "done".into(), 7);
        assert!(e.hv.take_dom_exc().is_empty());
    }
}
