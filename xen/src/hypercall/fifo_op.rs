//! The FIFO event-channel commands of `event_channel_op` (init_control,
//! expand_array, set_priority) and the FIFO halves of unmask and close;
//! the state and queues are [`crate::event_fifo`].

use super::{ok, u32_at, u64_at, Call, HResult};
use crate::abi::Errno;
use crate::event_fifo::{self, FifoDomain};
use crate::evtchn::Raise;
use crate::hypervisor::Effect;
use crate::ids::{Mfn, Port, VcpuId};
use crate::mmu::{Mmu, PageType};

/// `sizeof(struct evtchn_init_control)`.
const INIT_CONTROL_SIZE: usize = 24;
/// Offset of its `link_bits` (OUT).
const LINK_BITS_AT: u64 = 16;

impl Call<'_> {
    /// Whether the caller's domain uses the FIFO ABI.
    pub(super) fn is_fifo(&self) -> bool {
        self.hv.domain(self.d).is_some_and(|d| d.fifo.is_some())
    }

    /// Xen's `map_guest_page` for a PV guest (GFN = MFN): the frame must be
    /// the caller's and take a writable type reference, which it keeps.
    fn map_guest_page(&mut self, gfn: u64) -> Result<Mfn, Errno> {
        let mfn = Mfn(gfn);
        let dom = self.hv.dom_mut(self.d);
        if !dom.owns(mfn) {
            return Err(Errno::Inval);
        }
        let mut mmu = Mmu {
            dom,
            mem: &mut *self.mem,
            flush_all: false,
        };
        mmu.get_type(mfn, PageType::Writable)
            .map_err(|_| Errno::Inval)?;
        Ok(mfn)
    }

    /// EVTCHNOP_init_control: registers a VCPU's control block; the first
    /// one switches the domain to FIFO.
    pub(super) fn init_control(&mut self, arg: u64) -> HResult {
        let b = self.read(arg, INIT_CONTROL_SIZE)?;
        let (gfn, offset, vcpu) = (u64_at(&b, 0), u32_at(&b, 8), u32_at(&b, 12));
        let dom = self.hv.domain(self.d).expect("caller exists");
        if vcpu >= dom.nr_vcpus() {
            return Err(Errno::NoEnt);
        }
        if !event_fifo::control_offset_ok(offset) {
            return Err(Errno::Inval);
        }
        let v = VcpuId(vcpu);
        if dom.fifo().is_some_and(|f| f.has_control(v)) {
            return Err(Errno::Inval);
        }
        let mfn = self.map_guest_page(gfn)?;
        let first = !self.is_fifo();
        let dom = self.hv.dom_mut(self.d);
        let fifo = dom
            .fifo
            .get_or_insert_with(|| Box::new(FifoDomain::new(dom.vcpus.len() as u32)));
        fifo.set_control(v, mfn.addr(u64::from(offset)).get())?;
        if first {
            self.switch_to_fifo();
        }
        self.write(arg.wrapping_add(LINK_BITS_AT), &[event_fifo::LINK_BITS])?;
        ok()
    }

    /// Xen's `setup_ports`: ports pending in the 2-level bitmap stay
    /// pending (raised when their event word appears); the domain may now
    /// have 2^17 ports.
    fn switch_to_fifo(&mut self) {
        let d = self.d;
        let n = self.hv.evtchn.nr_ports(d);
        self.hv.evtchn.set_max_ports(d, event_fifo::NR_CHANNELS);
        let dom = self.hv.dom_mut(d);
        let base = dom
            .shared_info()
            .addr(crate::abi::shared_info::EVTCHN_PENDING)
            .get();
        let fifo = dom.fifo.as_deref_mut().expect("just set up");
        for p in 1..n {
            if self.mem.test_bit(base + 8 * u64::from(p / 64), p % 64) {
                fifo.save_pending(Port(p));
            }
        }
    }

    /// EVTCHNOP_expand_array: adds one event-array page, then raises the
    /// ports of that page that became pending while they had no word.
    pub(super) fn expand_array(&mut self, arg: u64) -> HResult {
        let gfn = u64_at(&self.read(arg, 8)?, 0);
        let full = match self.hv.domain(self.d).and_then(|d| d.fifo()) {
            None => return Err(Errno::OpNotSupp),
            Some(f) => f.array_full(),
        };
        if full {
            return Err(Errno::NoSpc);
        }
        let mfn = self.map_guest_page(gfn)?;
        let d = self.d;
        let fifo = self.hv.dom_mut(d).fifo.as_deref_mut().expect("checked");
        let ports = fifo.add_array_page(mfn.addr(0).get())?;
        let end = ports.end.min(self.hv.evtchn.nr_ports(d));
        for p in ports.start..end {
            self.reraise(Port(p));
        }
        ok()
    }

    /// Raises `p` now if it has a saved pending state (as Xen, at once, not
    /// through an [`Effect::Raise`]).
    fn reraise(&mut self, p: Port) {
        let d = self.d;
        let dom = self.hv.dom_mut(d);
        let fifo = dom.fifo.as_deref_mut().expect("FIFO domain");
        if !fifo.take_saved_pending(p) {
            return;
        }
        let Some(v) = self.hv.evtchn.notify_vcpu(d, p) else {
            return;
        };
        let dom = self.hv.dom_mut(d);
        let vi = dom.vcpus.get(v.0 as usize).and_then(|c| c.vcpu_info);
        let fifo = dom.fifo.as_deref_mut().expect("FIFO domain");
        let raised = fifo.raise(&mut *self.mem, vi, p, v);
        let r = Raise {
            domain: d,
            port: p,
            vcpu: v,
        };
        for w in self.hv.note_raised(r, raised) {
            self.effects.push(Effect::Wake { domain: d, vcpu: w });
        }
    }

    /// EVTCHNOP_set_priority: -EINVAL for a port that does not exist,
    /// -ENOSYS on the 2-level ABI, -EINVAL above priority 15.
    pub(super) fn set_priority(&mut self, arg: u64) -> HResult {
        let b = self.read(arg, 8)?;
        let (port, priority) = (Port(u32_at(&b, 0)), u32_at(&b, 4));
        if port.0 >= self.hv.evtchn.nr_ports(self.d) {
            return Err(Errno::Inval);
        }
        let fifo = self.hv.dom_mut(self.d).fifo.as_deref_mut();
        fifo.ok_or(Errno::NoSys)?.set_priority(port, priority)?;
        ok()
    }

    /// EVTCHNOP_unmask on the FIFO ABI: clear MASKED, link the port if it
    /// is pending, kick the VCPU it notifies.
    pub(super) fn fifo_unmask(&mut self, port: Port) -> HResult {
        let d = self.d;
        if port.0 >= self.hv.evtchn.nr_ports(d) {
            return Err(Errno::Inval);
        }
        let v = self.hv.evtchn.notify_vcpu(d, port).unwrap_or(VcpuId(0));
        let dom = self.hv.dom_mut(d);
        let vi = dom.vcpus.get(v.0 as usize).and_then(|c| c.vcpu_info);
        let fifo = dom.fifo.as_deref_mut().expect("FIFO domain");
        let kick = fifo.unmask(&mut *self.mem, vi, port, v);
        if kick && self.hv.vcpu_mut(d, v).wake() {
            self.effects.push(Effect::Wake { domain: d, vcpu: v });
        }
        ok()
    }

    /// The FIFO half of EVTCHNOP_close (after the binding is gone).
    pub(super) fn fifo_close(&mut self, port: Port) {
        let dom = self.hv.dom_mut(self.d);
        if let Some(fifo) = dom.fifo.as_deref_mut() {
            fifo.close(&mut *self.mem, port);
        }
    }
}
