//! `event_channel_op` (hypercall 32, xen-abi.md §3.1): argument structs
//! copied in and out at their documented offsets, bindings kept by
//! [`crate::evtchn::EventChannels`], events returned as raises. The FIFO
//! commands and the FIFO halves of close and unmask are in `fifo_op.rs`.

use super::{ok, u16_at, u32_at, Call, HResult};
use crate::abi::{evtchnop, Errno, EVTCHN_2L_NR_CHANNELS};
use crate::event_2l::{self, EventLayout};
use crate::hypervisor::Effect;
use crate::ids::{Port, VcpuId};

impl Call<'_> {
    pub(super) fn evtchn_op(&mut self, cmd: u32, arg: u64) -> HResult {
        match u64::from(cmd) {
            evtchnop::ALLOC_UNBOUND => self.alloc_unbound(arg),
            evtchnop::BIND_INTERDOMAIN => self.bind_interdomain(arg),
            evtchnop::BIND_VIRQ => self.bind_virq(arg),
            evtchnop::BIND_IPI => self.bind_ipi(arg),
            evtchnop::CLOSE => {
                let port = self.port_arg(arg)?;
                self.hv.evtchn.close(self.d, port)?;
                self.fifo_close(port);
                ok()
            }
            evtchnop::SEND => {
                let port = self.port_arg(arg)?;
                if let Some(r) = self.hv.evtchn.send(self.d, port)? {
                    self.raise(r);
                }
                self.kick_backend(port);
                ok()
            }
            evtchnop::STATUS => self.status(arg),
            evtchnop::BIND_VCPU => {
                let b = self.read(arg, 8)?;
                let (port, vcpu) = (Port(u32_at(&b, 0)), u32_at(&b, 4));
                self.hv.evtchn.bind_vcpu(self.d, port, vcpu)?;
                ok()
            }
            evtchnop::UNMASK => self.unmask(arg),
            evtchnop::INIT_CONTROL => self.init_control(arg),
            evtchnop::EXPAND_ARRAY => self.expand_array(arg),
            evtchnop::SET_PRIORITY => self.set_priority(arg),
            _ => Err(Errno::NoSys),
        }
    }

    /// A notification on a ring port runs its backend.
    fn kick_backend(&mut self, port: Port) {
        let d = self.d;
        let hv = &mut *self.hv;
        let dom = hv.domains.get_mut(usize::from(d.0)).expect("caller exists");
        if port == dom.ring_ports.console {
            crate::backend::drain_console(dom, &mut *self.mem, &mut hv.console);
        } else if port == dom.ring_ports.xenstore {
            let woken = hv.xenstored.kick(d.0, &mut *self.mem);
            for (to, p) in woken {
                let domain = crate::ids::DomainId(to);
                let vcpu = self.hv.evtchn.notify_vcpu(domain, p).unwrap_or(VcpuId(0));
                self.raise(crate::evtchn::Raise {
                    domain,
                    port: p,
                    vcpu,
                });
            }
        }
    }

    fn port_arg(&mut self, arg: u64) -> Result<Port, Errno> {
        Ok(Port(u32_at(&self.read(arg, 4)?, 0)))
    }

    fn put_port(&mut self, va: u64, port: Port) -> HResult {
        self.write(va, &port.0.to_le_bytes())?;
        ok()
    }

    fn alloc_unbound(&mut self, arg: u64) -> HResult {
        let b = self.read(arg, 8)?;
        let port = self
            .hv
            .evtchn
            .alloc_unbound(self.d, u16_at(&b, 0), u16_at(&b, 2))?;
        self.put_port(arg.wrapping_add(4), port)
    }

    fn bind_interdomain(&mut self, arg: u64) -> HResult {
        let b = self.read(arg, 12)?;
        let (dom, port) = (u16_at(&b, 0), Port(u32_at(&b, 4)));
        let (local, raise) = self.hv.evtchn.bind_interdomain(self.d, dom, port)?;
        self.raise(raise);
        self.put_port(arg.wrapping_add(8), local)
    }

    fn bind_virq(&mut self, arg: u64) -> HResult {
        let b = self.read(arg, 12)?;
        let port = self
            .hv
            .evtchn
            .bind_virq(self.d, u32_at(&b, 0), u32_at(&b, 4))?;
        self.put_port(arg.wrapping_add(8), port)
    }

    fn bind_ipi(&mut self, arg: u64) -> HResult {
        let b = self.read(arg, 8)?;
        let port = self.hv.evtchn.bind_ipi(self.d, u32_at(&b, 0))?;
        self.put_port(arg.wrapping_add(4), port)
    }

    fn status(&mut self, arg: u64) -> HResult {
        let b = self.read(arg, 8)?;
        let st = self
            .hv
            .evtchn
            .status(self.d, u16_at(&b, 0), Port(u32_at(&b, 4)))?;
        let mut out = [0u8; 16];
        out[0..4].copy_from_slice(&st.status.to_le_bytes());
        out[4..8].copy_from_slice(&st.vcpu.0.to_le_bytes());
        out[8..12].copy_from_slice(&st.word0.to_le_bytes());
        out[12..16].copy_from_slice(&st.word1.to_le_bytes());
        self.write(arg.wrapping_add(8), &out)?;
        ok()
    }

    /// EVTCHNOP_unmask: a pending port marks the VCPU it notifies (VCPU 0
    /// for a closed port), waking it if it sleeps.
    fn unmask(&mut self, arg: u64) -> HResult {
        let port = self.port_arg(arg)?;
        if self.is_fifo() {
            return self.fifo_unmask(port);
        }
        if port.0 >= EVTCHN_2L_NR_CHANNELS {
            return Err(Errno::Inval);
        }
        let vcpu = self
            .hv
            .evtchn
            .notify_vcpu(self.d, port)
            .unwrap_or(VcpuId(0));
        let dom = self.hv.domain(self.d).expect("caller exists");
        let layout = dom.event_layout(vcpu);
        let si = dom.shared_info().addr(0).get();
        let kick = match layout {
            Some(l) => event_2l::unmask(&mut *self.mem, &l, port),
            None => {
                let l = EventLayout {
                    shared_info: si,
                    vcpu_info: 0,
                };
                clear_mask_only(&mut *self.mem, &l, port);
                false
            }
        };
        if kick && self.hv.vcpu_mut(self.d, vcpu).wake() {
            self.effects.push(Effect::Wake {
                domain: self.d,
                vcpu,
            });
        }
        ok()
    }
}

fn clear_mask_only(mem: &mut dyn event_2l::EventMemory, l: &EventLayout, port: Port) {
    let word = l.shared_info + crate::abi::shared_info::EVTCHN_MASK + 8 * u64::from(port.0 / 64);
    mem.test_and_clear_bit(word, port.0 % 64);
}
