//! Xen's 2-level event delivery over guest memory (§3.4 of xen-abi.md).
//!
//! Pending and mask bitmaps live in the domain's shared_info page and the
//! per-VCPU `evtchn_pending_sel` / `evtchn_upcall_pending` bytes in its
//! `vcpu_info`; the guest reads and clears them with ordinary (locked)
//! instructions. The hypervisor's side is written against
//! [`EventMemory`], implemented by whoever performs the accesses — in smpsim
//! today, the machine's barrier-time service through
//! [`crate::memory::PagedMemory`] (functional accesses to machine memory,
//! not through the caches).

use crate::abi::{shared_info, vcpu_info};
use crate::ids::Port;
use serde::{Deserialize, Serialize};

/// Atomic bit operations on guest memory at machine addresses.
pub trait EventMemory {
    /// Sets bit `bit` of the little-endian u64 at `addr`; returns its old value.
    fn test_and_set_bit(&mut self, addr: u64, bit: u32) -> bool;
    /// Clears bit `bit` of the u64 at `addr`; returns its old value.
    fn test_and_clear_bit(&mut self, addr: u64, bit: u32) -> bool;
    /// Reads bit `bit` of the u64 at `addr`.
    fn test_bit(&mut self, addr: u64, bit: u32) -> bool;
    /// Reads the byte at `addr`.
    fn read_u8(&mut self, addr: u64) -> u8;
    /// Writes the byte at `addr`.
    fn write_u8(&mut self, addr: u64, value: u8);

    /// Reads the little-endian u64 at `addr` (byte by byte unless overridden).
    fn read_ma_u64(&mut self, addr: u64) -> u64 {
        (0..8).fold(0u64, |w, i| {
            w | u64::from(self.read_u8(addr + i)) << (8 * i)
        })
    }

    /// Writes the little-endian u64 at `addr` (byte by byte unless overridden).
    fn write_ma_u64(&mut self, addr: u64, value: u64) {
        for (i, b) in value.to_le_bytes().into_iter().enumerate() {
            self.write_u8(addr + i as u64, b);
        }
    }
}

/// Where one VCPU's event state lives.
#[derive(Copy, Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct EventLayout {
    /// Machine address of the domain's shared_info page.
    pub shared_info: u64,
    /// Machine address of this VCPU's vcpu_info.
    pub vcpu_info: u64,
}

impl EventLayout {
    fn pending_word(&self, port: Port) -> (u64, u32) {
        (
            self.shared_info + shared_info::EVTCHN_PENDING + 8 * u64::from(port.0 / 64),
            port.0 % 64,
        )
    }

    fn mask_word(&self, port: Port) -> (u64, u32) {
        (
            self.shared_info + shared_info::EVTCHN_MASK + 8 * u64::from(port.0 / 64),
            port.0 % 64,
        )
    }
}

/// What raising a port did.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub enum Raised {
    /// The port was already pending: no new edge.
    AlreadyPending,
    /// Pending now, but masked (or its selector bit was already set): no
    /// upcall edge. Pollers of the port still wake.
    PendingOnly,
    /// The VCPU was marked: `upcall_pending` went 0 → 1 (`kick`: wake or
    /// interrupt it) or was already 1 (`kick` false).
    Marked {
        /// Whether `upcall_pending` changed from 0 to 1.
        kick: bool,
    },
}

fn mark(mem: &mut dyn EventMemory, vcpu_info_addr: u64) -> bool {
    let addr = vcpu_info_addr + vcpu_info::UPCALL_PENDING;
    let was = mem.read_u8(addr);
    mem.write_u8(addr, 1);
    was == 0
}

/// Raises `port` for the VCPU whose vcpu_info is in `layout` (§3.4 steps
/// 1–2; step 3, waking pollers, is the caller's).
pub fn raise(mem: &mut dyn EventMemory, layout: &EventLayout, port: Port) -> Raised {
    let (pw, pb) = layout.pending_word(port);
    if mem.test_and_set_bit(pw, pb) {
        return Raised::AlreadyPending;
    }
    let (mw, mb) = layout.mask_word(port);
    if mem.test_bit(mw, mb) {
        return Raised::PendingOnly;
    }
    if mem.test_and_set_bit(layout.vcpu_info + vcpu_info::PENDING_SEL, port.0 / 64) {
        return Raised::PendingOnly;
    }
    Raised::Marked {
        kick: mark(mem, layout.vcpu_info),
    }
}

/// `EVTCHNOP_unmask`: clears the mask; if the port is pending, marks the
/// notified VCPU (whose vcpu_info is in `layout`). Returns whether that VCPU
/// must be kicked.
pub fn unmask(mem: &mut dyn EventMemory, layout: &EventLayout, port: Port) -> bool {
    let (mw, mb) = layout.mask_word(port);
    if !mem.test_and_clear_bit(mw, mb) {
        return false;
    }
    let (pw, pb) = layout.pending_word(port);
    if !mem.test_bit(pw, pb) {
        return false;
    }
    if mem.test_and_set_bit(layout.vcpu_info + vcpu_info::PENDING_SEL, port.0 / 64) {
        return false;
    }
    mark(mem, layout.vcpu_info)
}

/// Whether an upcall is due: `upcall_pending` set and `upcall_mask` clear.
pub fn upcall_due(mem: &mut dyn EventMemory, vcpu_info_addr: u64) -> bool {
    mem.read_u8(vcpu_info_addr + vcpu_info::UPCALL_PENDING) != 0
        && mem.read_u8(vcpu_info_addr + vcpu_info::UPCALL_MASK) == 0
}

/// Whether `port` is pending (for SCHEDOP_poll).
pub fn is_pending(mem: &mut dyn EventMemory, layout: &EventLayout, port: Port) -> bool {
    let (pw, pb) = layout.pending_word(port);
    mem.test_bit(pw, pb)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Two pages of bytes: shared_info at 0x1000, a vcpu_info at 0x2000.
    struct Page(Vec<u8>);

    impl Page {
        fn word(&self, addr: u64) -> u64 {
            let a = addr as usize;
            u64::from_le_bytes(self.0[a..a + 8].try_into().expect("8 bytes"))
        }
        fn set_word(&mut self, addr: u64, v: u64) {
            let a = addr as usize;
            self.0[a..a + 8].copy_from_slice(&v.to_le_bytes());
        }
    }

    impl EventMemory for Page {
        fn test_and_set_bit(&mut self, addr: u64, bit: u32) -> bool {
            let w = self.word(addr);
            self.set_word(addr, w | 1 << bit);
            w >> bit & 1 == 1
        }
        fn test_and_clear_bit(&mut self, addr: u64, bit: u32) -> bool {
            let w = self.word(addr);
            self.set_word(addr, w & !(1 << bit));
            w >> bit & 1 == 1
        }
        fn test_bit(&mut self, addr: u64, bit: u32) -> bool {
            self.word(addr) >> bit & 1 == 1
        }
        fn read_u8(&mut self, addr: u64) -> u8 {
            self.0[addr as usize]
        }
        fn write_u8(&mut self, addr: u64, value: u8) {
            self.0[addr as usize] = value;
        }
    }

    const L: EventLayout = EventLayout {
        shared_info: 0x1000,
        vcpu_info: 0x2000,
    };

    #[test]
    fn first_raise_marks_and_kicks_then_no_new_edge() {
        let mut m = Page(vec![0; 0x3000]);
        assert_eq!(raise(&mut m, &L, Port(70)), Raised::Marked { kick: true });
        assert_eq!(m.word(0x1000 + 2048 + 8), 1 << 6, "pending bit 70");
        assert_eq!(m.word(0x2000 + 8), 1 << 1, "selector bit 1");
        assert_eq!(m.0[0x2000], 1);
        assert_eq!(raise(&mut m, &L, Port(70)), Raised::AlreadyPending);
        assert_eq!(
            raise(&mut m, &L, Port(71)),
            Raised::PendingOnly,
            "sel already set"
        );
        assert!(upcall_due(&mut m, 0x2000));
        m.0[0x2001] = 1;
        assert!(!upcall_due(&mut m, 0x2000), "masked by upcall_mask");
    }

    #[test]
    fn masked_port_gets_its_edge_at_unmask() {
        let mut m = Page(vec![0; 0x3000]);
        m.set_word(0x1000 + 2560, 1 << 5);
        assert_eq!(raise(&mut m, &L, Port(5)), Raised::PendingOnly);
        assert_eq!(m.0[0x2000], 0, "no upcall while masked");
        assert!(is_pending(&mut m, &L, Port(5)));
        assert!(unmask(&mut m, &L, Port(5)), "unmask marks and kicks");
        assert_eq!(m.word(0x2000 + 8), 1);
        assert!(!unmask(&mut m, &L, Port(5)), "not masked any more");
    }

    #[test]
    fn upcall_pending_already_set_means_no_kick() {
        let mut m = Page(vec![0; 0x3000]);
        m.0[0x2000] = 1;
        assert_eq!(raise(&mut m, &L, Port(3)), Raised::Marked { kick: false });
    }
}
