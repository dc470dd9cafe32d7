//! Xen's FIFO event-channel ABI (xen-abi.md §3.5; Xen's
//! `public/event_channel.h` and `common/event_fifo.c` are the authority).
//!
//! # What is implemented
//! - `EVTCHNOP_init_control` (per VCPU, a 72-byte control block in one of
//!   the domain's frames), `EVTCHNOP_expand_array` (one page of 1024 event
//!   words at a time, up to 128 pages = 2^17 ports) and
//!   `EVTCHNOP_set_priority` (0 highest … 15 lowest, default 7): the
//!   hypercall side is `hypercall/fifo_op.rs`, the state and the queue
//!   algorithm are here.
//! - The first init_control switches the domain to FIFO for good (there is
//!   no EVTCHNOP_reset, so no way back, as in Xen without a reset): from
//!   then on raising a port ([`FifoDomain::raise`], from
//!   [`crate::hypervisor::Hypervisor::deliver`]), unmask, close, SCHEDOP_poll
//!   and the port limit (2^17 instead of 4096) go through this module;
//!   bind, status and bind_vcpu keep using [`crate::evtchn`].
//! - Raising follows `evtchn_fifo_set_pending`: set PENDING; if the word is
//!   neither MASKED nor LINKED, set LINKED and append the port to the queue
//!   of (notified VCPU, port priority) — through the LINK field of the old
//!   tail if that word is still LINKED, else by writing `head[q]` — and in
//!   the latter case set `ready` bit q and mark `upcall_pending` (as in
//!   2-level). Each port remembers the queue it was last linked on, and a
//!   relink elsewhere invalidates that queue's tail, as Xen's `fifo_lastq`.
//! - Ports beyond the event array keep their pending state in the
//!   hypervisor and are raised when expand_array adds their page; ports
//!   pending in the 2-level bitmap when the domain switches keep that
//!   pending state the same way (Xen's `setup_ports`).
//!
//! # Where it differs from Xen
//! - Everything is applied by the hypervisor in its deterministic order, at
//!   one point in simulated time, so a link update never races the guest:
//!   BUSY is never left set in a word (Xen sets it only while a cmpxchg on
//!   the tail word keeps failing), and there are no queue locks.
//! - A frame for a control block or an event-array page must be one of the
//!   domain's own frames (in its M2P) and must take a writable type
//!   reference (not a page table), else -EINVAL, as Xen's `map_guest_page`.
//!   The reference is kept for the domain's life. Xen would also accept
//!   the shared_info frame; smpsim does not (it is not in the M2P).
//! - A port closed while its word is still LINKED may be handed out again
//!   at once (Xen skips such "busy" ports when allocating).
//! - A raise of a port with no event word counts as "already pending" in
//!   the hypervisor's counters (no edge, no poller wake-up, as in Xen).

use crate::abi::Errno;
use crate::event_2l::{EventMemory, Raised};
use crate::ids::{Port, VcpuId, PAGE_SIZE};
use serde::{Deserialize, Serialize};

/// `EVTCHN_FIFO_LINK_BITS`: bits of the LINK field (returned by
/// init_control).
pub const LINK_BITS: u8 = 17;
/// `EVTCHN_FIFO_NR_CHANNELS`: ports of a FIFO domain.
pub const NR_CHANNELS: u32 = 1 << LINK_BITS;
/// Event words (u32) per event-array page.
pub const WORDS_PER_PAGE: u32 = (PAGE_SIZE / 4) as u32;
/// Event-array pages a domain may add.
pub const MAX_ARRAY_PAGES: usize = (NR_CHANNELS / WORDS_PER_PAGE) as usize;
/// `EVTCHN_FIFO_PRIORITY_DEFAULT`.
pub const PRIORITY_DEFAULT: u8 = 7;
/// `EVTCHN_FIFO_PRIORITY_MIN`: the lowest priority (largest number).
pub const PRIORITY_MIN: u32 = 15;
/// `EVTCHN_FIFO_MAX_QUEUES`: one queue per priority.
pub const QUEUES: usize = PRIORITY_MIN as usize + 1;
/// `sizeof(evtchn_fifo_control_block_t)`: `ready` u32, reserved u32,
/// `head[16]` u32.
pub const CONTROL_BLOCK_SIZE: u64 = 72;

/// Bits of an event word.
pub mod word {
    /// The event is pending.
    pub const PENDING: u32 = 31;
    /// The guest masked it.
    pub const MASKED: u32 = 30;
    /// It is on a queue.
    pub const LINKED: u32 = 29;
    /// Xen is updating its LINK field (never left set here).
    pub const BUSY: u32 = 28;
    /// The LINK field: the next port of the queue.
    pub const LINK_MASK: u32 = (1 << super::LINK_BITS) - 1;
}

/// Byte offsets in the control block.
pub mod control {
    /// `ready`: bit q set while queue q may be non-empty.
    pub const READY: u64 = 0;
    /// `head[16]`: the first port of each queue (written when a queue was
    /// empty).
    pub const HEAD: u64 = 8;
}

/// Whether `offset` is a valid control-block offset in its frame (must not
/// cross the page, 8-byte aligned), as init_control checks.
pub fn control_offset_ok(offset: u32) -> bool {
    u64::from(offset) <= PAGE_SIZE - CONTROL_BLOCK_SIZE && offset.is_multiple_of(8)
}

/// One VCPU's queues.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct FifoVcpu {
    /// Machine address of its control block, once init_control set it.
    control: Option<u64>,
    /// The last port appended to each queue (0: none), Xen's `q->tail`.
    tails: [u32; QUEUES],
}

/// The hypervisor's per-port FIFO state.
#[derive(Copy, Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
struct PortState {
    /// Priority of future links (0..=15).
    priority: u8,
    /// The VCPU of the queue it was last linked on.
    last_vcpu: u32,
    /// The priority of that queue.
    last_priority: u8,
    /// Raised while it had no event word: raise when its page is added.
    pending: bool,
}

const PORT_DEFAULT: PortState = PortState {
    priority: PRIORITY_DEFAULT,
    last_vcpu: 0,
    last_priority: 0,
    pending: false,
};

/// A FIFO domain's event state (everything but the bindings).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct FifoDomain {
    /// Machine address of each event-array page, in port order.
    array: Vec<u64>,
    /// Per VCPU.
    vcpus: Vec<FifoVcpu>,
    /// Per port, grown on demand (absent = default).
    ports: Vec<PortState>,
}

fn read_u32(mem: &mut dyn EventMemory, addr: u64) -> u32 {
    let w = mem.read_ma_u64(addr & !7);
    (w >> (8 * (addr & 4))) as u32
}

fn write_u32(mem: &mut dyn EventMemory, addr: u64, value: u32) {
    let shift = 8 * (addr & 4);
    let w = mem.read_ma_u64(addr & !7);
    let w = (w & !(0xFFFF_FFFFu64 << shift)) | u64::from(value) << shift;
    mem.write_ma_u64(addr & !7, w);
}

/// The u64 word and bit of bit `bit` of the u32 at `addr`.
fn bit_of(addr: u64, bit: u32) -> (u64, u32) {
    (addr & !7, bit + 8 * (addr & 4) as u32)
}

fn test_and_set(mem: &mut dyn EventMemory, addr: u64, bit: u32) -> bool {
    let (a, b) = bit_of(addr, bit);
    mem.test_and_set_bit(a, b)
}

fn test_and_clear(mem: &mut dyn EventMemory, addr: u64, bit: u32) -> bool {
    let (a, b) = bit_of(addr, bit);
    mem.test_and_clear_bit(a, b)
}

fn test(mem: &mut dyn EventMemory, addr: u64, bit: u32) -> bool {
    let (a, b) = bit_of(addr, bit);
    mem.test_bit(a, b)
}

/// Sets `upcall_pending` in a vcpu_info; whether it went 0 → 1.
fn mark(mem: &mut dyn EventMemory, vcpu_info: u64) -> bool {
    let addr = vcpu_info + crate::abi::vcpu_info::UPCALL_PENDING;
    let was = mem.read_u8(addr);
    mem.write_u8(addr, 1);
    was == 0
}

impl FifoDomain {
    /// An empty event array and no control blocks, for `vcpus` VCPUs.
    pub fn new(vcpus: u32) -> Self {
        FifoDomain {
            array: Vec::new(),
            vcpus: vec![FifoVcpu::default(); vcpus as usize],
            ports: Vec::new(),
        }
    }

    /// Whether VCPU `v` has a control block.
    pub fn has_control(&self, v: VcpuId) -> bool {
        self.vcpus
            .get(v.0 as usize)
            .is_some_and(|c| c.control.is_some())
    }

    /// The machine address of VCPU `v`'s control block.
    pub fn control(&self, v: VcpuId) -> Option<u64> {
        self.vcpus.get(v.0 as usize)?.control
    }

    /// Records VCPU `v`'s control block at machine address `ma`
    /// (-EINVAL if it has one already, as Xen's `map_control_block`).
    pub fn set_control(&mut self, v: VcpuId, ma: u64) -> Result<(), Errno> {
        let c = self.vcpus.get_mut(v.0 as usize).ok_or(Errno::NoEnt)?;
        if c.control.is_some() {
            return Err(Errno::Inval);
        }
        c.control = Some(ma);
        Ok(())
    }

    /// Ports that have an event word.
    pub fn nr_words(&self) -> u32 {
        self.array.len() as u32 * WORDS_PER_PAGE
    }

    /// Whether another array page may be added.
    pub fn array_full(&self) -> bool {
        self.array.len() >= MAX_ARRAY_PAGES
    }

    /// Adds an event-array page at machine address `ma`; returns the ports
    /// it covers (-ENOSPC past 2^17 ports).
    pub fn add_array_page(&mut self, ma: u64) -> Result<std::ops::Range<u32>, Errno> {
        if self.array_full() {
            return Err(Errno::NoSpc);
        }
        let first = self.nr_words();
        self.array.push(ma);
        Ok(first..self.nr_words())
    }

    /// Machine address of `port`'s event word, if its page was added.
    pub fn word_addr(&self, port: Port) -> Option<u64> {
        let page = self.array.get((port.0 / WORDS_PER_PAGE) as usize)?;
        Some(page + 4 * u64::from(port.0 % WORDS_PER_PAGE))
    }

    fn port(&self, p: Port) -> PortState {
        self.ports
            .get(p.0 as usize)
            .copied()
            .unwrap_or(PORT_DEFAULT)
    }

    fn port_mut(&mut self, p: Port) -> &mut PortState {
        let i = p.0 as usize;
        if self.ports.len() <= i {
            self.ports.resize(i + 1, PORT_DEFAULT);
        }
        &mut self.ports[i]
    }

    /// A port's priority.
    pub fn priority(&self, p: Port) -> u8 {
        self.port(p).priority
    }

    /// `EVTCHNOP_set_priority` on an open port: takes effect at its next
    /// link (-EINVAL above 15).
    pub fn set_priority(&mut self, p: Port, priority: u32) -> Result<(), Errno> {
        if priority > PRIORITY_MIN {
            return Err(Errno::Inval);
        }
        self.port_mut(p).priority = priority as u8;
        Ok(())
    }

    /// Remembers that `p` is pending while it has no event word (the
    /// switch from 2-level).
    pub fn save_pending(&mut self, p: Port) {
        self.port_mut(p).pending = true;
    }

    /// Takes the pending state saved for `p` (expand_array re-raises it).
    pub fn take_saved_pending(&mut self, p: Port) -> bool {
        if self.port(p).pending {
            self.port_mut(p).pending = false;
            true
        } else {
            false
        }
    }

    /// A port was closed: clear PENDING in its word (the guest drops a
    /// LINKED event that is not pending), forget a saved pending state and
    /// go back to the default priority for its next binding.
    pub fn close(&mut self, mem: &mut dyn EventMemory, p: Port) {
        if let Some(w) = self.word_addr(p) {
            test_and_clear(mem, w, word::PENDING);
        }
        if (p.0 as usize) < self.ports.len() {
            let s = self.port_mut(p);
            s.pending = false;
            s.priority = PRIORITY_DEFAULT;
        }
    }

    /// Whether `p` is pending (SCHEDOP_poll).
    pub fn is_pending(&self, mem: &mut dyn EventMemory, p: Port) -> bool {
        self.word_addr(p)
            .is_some_and(|w| test(mem, w, word::PENDING))
    }

    /// Raises `p` for VCPU `v`, whose vcpu_info (if it has one) is at
    /// `vcpu_info`: Xen's `evtchn_fifo_set_pending` (see the module doc).
    pub fn raise(
        &mut self,
        mem: &mut dyn EventMemory,
        vcpu_info: Option<u64>,
        p: Port,
        v: VcpuId,
    ) -> Raised {
        let Some(w) = self.word_addr(p) else {
            self.port_mut(p).pending = true;
            return Raised::AlreadyPending;
        };
        let was_pending = test_and_set(mem, w, word::PENDING);
        let quiet = if was_pending {
            Raised::AlreadyPending
        } else {
            Raised::PendingOnly
        };
        let Some(ctl) = self.control(v) else {
            // No control block: the guest cannot have unmasked it yet.
            return quiet;
        };
        if test(mem, w, word::MASKED) || test_and_set(mem, w, word::LINKED) {
            return quiet;
        }
        let q = self.priority(p);
        if !self.link(mem, p, v, q) {
            return quiet;
        }
        write_u32(mem, ctl + control::HEAD + 4 * u64::from(q), p.0);
        if test_and_set(mem, ctl + control::READY, u32::from(q)) {
            return quiet;
        }
        match vcpu_info {
            Some(vi) => Raised::Marked {
                kick: mark(mem, vi),
            },
            None => quiet,
        }
    }

    /// Appends `p` (already LINKED) to queue `q` of `v`; returns whether the
    /// queue was empty (the caller writes `head[q]`).
    fn link(&mut self, mem: &mut dyn EventMemory, p: Port, v: VcpuId, q: u8) -> bool {
        let s = self.port(p);
        let old = &mut self.vcpus[s.last_vcpu as usize].tails[usize::from(s.last_priority)];
        if *old == p.0 {
            *old = 0;
        }
        if (s.last_vcpu, s.last_priority) != (v.0, q) {
            let s = self.port_mut(p);
            s.last_vcpu = v.0;
            s.last_priority = q;
        }
        let tail = std::mem::replace(&mut self.vcpus[v.0 as usize].tails[usize::from(q)], p.0);
        if tail == 0 {
            return true;
        }
        let Some(tw) = self.word_addr(Port(tail)) else {
            return true;
        };
        let t = read_u32(mem, tw);
        if t & 1 << word::LINKED == 0 {
            // The guest consumed the old tail: the queue is empty.
            return true;
        }
        let t = (t & !(1 << word::BUSY | word::LINK_MASK)) | p.0;
        write_u32(mem, tw, t);
        false
    }

    /// `EVTCHNOP_unmask` of `p`, which notifies `v`: clear MASKED and, if
    /// pending, link it. Returns whether `v` must be kicked.
    pub fn unmask(
        &mut self,
        mem: &mut dyn EventMemory,
        vcpu_info: Option<u64>,
        p: Port,
        v: VcpuId,
    ) -> bool {
        let Some(w) = self.word_addr(p) else {
            return false;
        };
        test_and_clear(mem, w, word::MASKED);
        if !test(mem, w, word::PENDING) {
            return false;
        }
        self.raise(mem, vcpu_info, p, v) == Raised::Marked { kick: true }
    }
}

#[cfg(test)]
mod tests;
