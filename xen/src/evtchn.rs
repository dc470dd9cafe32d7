//! Event-channel bindings of every domain (§3.1 of xen-abi.md).
//!
//! This is the hypervisor-wide table: which port of which domain is bound to
//! what, and which VCPU it notifies. It changes only through the operations
//! below, which the hypervisor applies in a deterministic order. Pending and
//! mask bits are *not* here: they live in guest memory (shared_info) and are
//! handled by [`crate::event_2l`], or, once a domain switched to the FIFO
//! ABI, in its event words ([`crate::event_fifo`]). A domain may have 4096
//! ports, 2^17 after that switch ([`EventChannels::set_max_ports`]).
//!
//! Ports are handed out lowest-free-first and port 0 is never used, as Xen
//! does, so runs are reproducible.

use crate::abi::{virq_is_per_vcpu, Errno, DOMID_SELF, EVTCHN_2L_NR_CHANNELS, NR_VIRQS};
use crate::ids::{DomainId, Port, VcpuId};
use serde::{Deserialize, Serialize};

/// What a port is bound to.
#[derive(Copy, Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Binding {
    /// Not in use.
    Closed,
    /// Allocated for `remote` to bind to.
    Unbound {
        /// The domain allowed to bind.
        remote: DomainId,
    },
    /// Connected to a port of another (or the same) domain.
    Interdomain {
        /// The peer domain.
        remote: DomainId,
        /// The peer's port.
        remote_port: Port,
    },
    /// Bound to a virtual IRQ.
    Virq(u32),
    /// An IPI port: `send` notifies its own VCPU.
    Ipi,
}

#[derive(Copy, Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
struct Channel {
    binding: Binding,
    vcpu: VcpuId,
}

const CLOSED: Channel = Channel {
    binding: Binding::Closed,
    vcpu: VcpuId(0),
};

/// One domain's ports.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
struct DomainPorts {
    vcpus: u32,
    ports: Vec<Channel>,
    /// `virq_port[vcpu][virq]`, 0 = unbound.
    virq_port: Vec<[u32; NR_VIRQS as usize]>,
    /// Ports it may have: 4096 (2-level) until it switches to FIFO.
    #[serde(default = "two_level_ports")]
    max_ports: u32,
}

fn two_level_ports() -> u32 {
    EVTCHN_2L_NR_CHANNELS
}

/// Where a `send` or a bind makes a port pending.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub struct Raise {
    /// Domain owning the port.
    pub domain: DomainId,
    /// The port to set pending.
    pub port: Port,
    /// The VCPU the port notifies.
    pub vcpu: VcpuId,
}

/// What `EVTCHNOP_status` reports.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub struct Status {
    /// `EVTCHNSTAT_*` value.
    pub status: u32,
    /// The VCPU notified.
    pub vcpu: VcpuId,
    /// First union word: unbound/interdomain remote domain, or VIRQ number.
    pub word0: u32,
    /// Second union word: interdomain remote port.
    pub word1: u32,
}

/// The bindings of every domain.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct EventChannels {
    domains: Vec<DomainPorts>,
}

impl EventChannels {
    /// An empty table.
    pub fn new() -> Self {
        Self::default()
    }

    /// Registers the next domain (ids are given in order from 0).
    pub fn add_domain(&mut self, vcpus: u32) -> DomainId {
        self.domains.push(DomainPorts {
            vcpus,
            ports: vec![CLOSED],
            virq_port: vec![[0; NR_VIRQS as usize]; vcpus as usize],
            max_ports: EVTCHN_2L_NR_CHANNELS,
        });
        DomainId(u16::try_from(self.domains.len() - 1).expect("fewer than 2^16 domains"))
    }

    fn dom(&self, d: DomainId) -> Result<&DomainPorts, Errno> {
        self.domains.get(usize::from(d.0)).ok_or(Errno::Srch)
    }

    fn dom_mut(&mut self, d: DomainId) -> Result<&mut DomainPorts, Errno> {
        self.domains.get_mut(usize::from(d.0)).ok_or(Errno::Srch)
    }

    /// Resolves `DOMID_SELF`.
    fn resolve(caller: DomainId, d: u16) -> DomainId {
        if d == DOMID_SELF {
            caller
        } else {
            DomainId(d)
        }
    }

    fn channel(&self, d: DomainId, p: Port) -> Result<Channel, Errno> {
        let dom = self.dom(d)?;
        dom.ports.get(p.0 as usize).copied().ok_or(Errno::Inval)
    }

    fn set(&mut self, d: DomainId, p: Port, c: Channel) {
        self.domains[usize::from(d.0)].ports[p.0 as usize] = c;
    }

    /// Lowest free port of `d` (never 0).
    fn alloc(&mut self, d: DomainId) -> Result<Port, Errno> {
        let dom = self.dom_mut(d)?;
        if let Some(i) = dom
            .ports
            .iter()
            .skip(1)
            .position(|c| c.binding == Binding::Closed)
        {
            return Ok(Port(i as u32 + 1));
        }
        if dom.ports.len() as u32 >= dom.max_ports {
            return Err(Errno::NoSpc);
        }
        dom.ports.push(CLOSED);
        Ok(Port(dom.ports.len() as u32 - 1))
    }

    fn check_vcpu(&self, d: DomainId, v: u32) -> Result<VcpuId, Errno> {
        if v < self.dom(d)?.vcpus {
            Ok(VcpuId(v))
        } else {
            Err(Errno::NoEnt)
        }
    }

    /// `EVTCHNOP_alloc_unbound`: `dom` must be the caller (no privilege).
    pub fn alloc_unbound(
        &mut self,
        caller: DomainId,
        dom: u16,
        remote: u16,
    ) -> Result<Port, Errno> {
        if Self::resolve(caller, dom) != caller {
            return Err(Errno::Perm);
        }
        let remote = Self::resolve(caller, remote);
        self.dom(remote)?;
        let port = self.alloc(caller)?;
        self.set(
            caller,
            port,
            Channel {
                binding: Binding::Unbound { remote },
                vcpu: VcpuId(0),
            },
        );
        Ok(port)
    }

    /// `EVTCHNOP_bind_interdomain`: the new local port is pending at once.
    pub fn bind_interdomain(
        &mut self,
        caller: DomainId,
        remote_dom: u16,
        remote_port: Port,
    ) -> Result<(Port, Raise), Errno> {
        let remote = Self::resolve(caller, remote_dom);
        let peer = self.channel(remote, remote_port)?;
        if peer.binding != (Binding::Unbound { remote: caller }) {
            return Err(Errno::Inval);
        }
        let local = self.alloc(caller)?;
        self.set(
            caller,
            local,
            Channel {
                binding: Binding::Interdomain {
                    remote,
                    remote_port,
                },
                vcpu: VcpuId(0),
            },
        );
        self.set(
            remote,
            remote_port,
            Channel {
                binding: Binding::Interdomain {
                    remote: caller,
                    remote_port: local,
                },
                vcpu: peer.vcpu,
            },
        );
        let raise = Raise {
            domain: caller,
            port: local,
            vcpu: VcpuId(0),
        };
        Ok((local, raise))
    }

    /// `EVTCHNOP_bind_virq`.
    pub fn bind_virq(&mut self, caller: DomainId, virq: u32, vcpu: u32) -> Result<Port, Errno> {
        if virq >= NR_VIRQS {
            return Err(Errno::Inval);
        }
        if !virq_is_per_vcpu(virq) && vcpu != 0 {
            return Err(Errno::Inval);
        }
        let v = self.check_vcpu(caller, vcpu)?;
        if self.dom(caller)?.virq_port[v.0 as usize][virq as usize] != 0 {
            return Err(Errno::Exist);
        }
        let port = self.alloc(caller)?;
        self.set(
            caller,
            port,
            Channel {
                binding: Binding::Virq(virq),
                vcpu: v,
            },
        );
        self.dom_mut(caller)?.virq_port[v.0 as usize][virq as usize] = port.0;
        Ok(port)
    }

    /// `EVTCHNOP_bind_ipi`.
    pub fn bind_ipi(&mut self, caller: DomainId, vcpu: u32) -> Result<Port, Errno> {
        let v = self.check_vcpu(caller, vcpu)?;
        let port = self.alloc(caller)?;
        self.set(
            caller,
            port,
            Channel {
                binding: Binding::Ipi,
                vcpu: v,
            },
        );
        Ok(port)
    }

    /// `EVTCHNOP_close`: an interdomain peer goes back to unbound.
    pub fn close(&mut self, caller: DomainId, port: Port) -> Result<(), Errno> {
        let c = self.channel(caller, port)?;
        match c.binding {
            Binding::Closed => return Err(Errno::Inval),
            Binding::Interdomain {
                remote,
                remote_port,
            } => {
                let peer = self.channel(remote, remote_port)?;
                self.set(
                    remote,
                    remote_port,
                    Channel {
                        binding: Binding::Unbound { remote: caller },
                        vcpu: peer.vcpu,
                    },
                );
            }
            Binding::Virq(virq) => {
                self.dom_mut(caller)?.virq_port[c.vcpu.0 as usize][virq as usize] = 0;
            }
            Binding::Unbound { .. } | Binding::Ipi => {}
        }
        self.set(caller, port, CLOSED);
        Ok(())
    }

    /// `EVTCHNOP_send`: where the event lands, if anywhere.
    pub fn send(&self, caller: DomainId, port: Port) -> Result<Option<Raise>, Errno> {
        let c = self.channel(caller, port)?;
        match c.binding {
            Binding::Interdomain {
                remote,
                remote_port,
            } => {
                let peer = self.channel(remote, remote_port)?;
                Ok(Some(Raise {
                    domain: remote,
                    port: remote_port,
                    vcpu: peer.vcpu,
                }))
            }
            Binding::Ipi => Ok(Some(Raise {
                domain: caller,
                port,
                vcpu: c.vcpu,
            })),
            Binding::Unbound { .. } => Ok(None),
            Binding::Closed | Binding::Virq(_) => Err(Errno::Inval),
        }
    }

    /// `EVTCHNOP_status` (for the caller's own domain only).
    pub fn status(&self, caller: DomainId, dom: u16, port: Port) -> Result<Status, Errno> {
        use crate::abi::evtchnstat::*;
        if Self::resolve(caller, dom) != caller {
            return Err(Errno::Perm);
        }
        let c = self.channel(caller, port)?;
        let (status, word0, word1) = match c.binding {
            Binding::Closed => (CLOSED, 0, 0),
            Binding::Unbound { remote } => (UNBOUND, u32::from(remote.0), 0),
            Binding::Interdomain {
                remote,
                remote_port,
            } => (INTERDOMAIN, u32::from(remote.0), remote_port.0),
            Binding::Virq(v) => (VIRQ, v, 0),
            Binding::Ipi => (IPI, 0, 0),
        };
        Ok(Status {
            status,
            vcpu: c.vcpu,
            word0,
            word1,
        })
    }

    /// `EVTCHNOP_bind_vcpu`: not for IPI or per-VCPU VIRQ ports.
    pub fn bind_vcpu(&mut self, caller: DomainId, port: Port, vcpu: u32) -> Result<(), Errno> {
        let v = self.check_vcpu(caller, vcpu)?;
        let mut c = self.channel(caller, port)?;
        match c.binding {
            Binding::Closed | Binding::Ipi => return Err(Errno::Inval),
            Binding::Virq(virq) if virq_is_per_vcpu(virq) => return Err(Errno::Inval),
            Binding::Virq(virq) => {
                let table = &mut self.dom_mut(caller)?.virq_port;
                table[c.vcpu.0 as usize][virq as usize] = 0;
                table[v.0 as usize][virq as usize] = port.0;
            }
            Binding::Unbound { .. } | Binding::Interdomain { .. } => {}
        }
        c.vcpu = v;
        self.set(caller, port, c);
        Ok(())
    }

    /// The VCPU a port notifies (for unmask), if the port is open.
    pub fn notify_vcpu(&self, d: DomainId, port: Port) -> Option<VcpuId> {
        let c = self.channel(d, port).ok()?;
        (c.binding != Binding::Closed).then_some(c.vcpu)
    }

    /// The port bound to `virq` on `vcpu`, if any.
    pub fn virq_port(&self, d: DomainId, vcpu: VcpuId, virq: u32) -> Option<Port> {
        let p = *self
            .dom(d)
            .ok()?
            .virq_port
            .get(vcpu.0 as usize)?
            .get(virq as usize)?;
        (p != 0).then_some(Port(p))
    }

    /// Raises the port limit of `d` to `max_ports` (the switch to FIFO).
    pub fn set_max_ports(&mut self, d: DomainId, max_ports: u32) {
        if let Ok(dom) = self.dom_mut(d) {
            dom.max_ports = max_ports;
        }
    }

    /// Ports of `d` that exist so far (valid port numbers are below this;
    /// closed ones included).
    pub fn nr_ports(&self, d: DomainId) -> u32 {
        self.dom(d).map_or(0, |dom| dom.ports.len() as u32)
    }

    /// A port's binding (closed if out of range).
    pub fn binding(&self, d: DomainId, port: Port) -> Binding {
        self.channel(d, port).map_or(Binding::Closed, |c| c.binding)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn two_domains() -> (EventChannels, DomainId, DomainId) {
        let mut ec = EventChannels::new();
        let a = ec.add_domain(2);
        let b = ec.add_domain(4);
        (ec, a, b)
    }

    #[test]
    fn ports_start_at_one_and_reuse_the_lowest_free() {
        let (mut ec, a, _) = two_domains();
        assert_eq!(ec.bind_ipi(a, 0), Ok(Port(1)));
        assert_eq!(ec.bind_ipi(a, 1), Ok(Port(2)));
        assert_eq!(ec.bind_ipi(a, 1), Ok(Port(3)));
        ec.close(a, Port(2)).expect("open port");
        assert_eq!(ec.bind_ipi(a, 0), Ok(Port(2)));
        assert_eq!(ec.close(a, Port(9)), Err(Errno::Inval));
        assert_eq!(ec.close(a, Port(0)), Err(Errno::Inval));
    }

    #[test]
    fn interdomain_bind_send_and_close() {
        let (mut ec, a, b) = two_domains();
        let pb = ec.alloc_unbound(b, DOMID_SELF, 0).expect("alloc");
        assert_eq!(ec.send(b, pb), Ok(None), "unbound: dropped silently");
        assert_eq!(ec.bind_interdomain(a, 1, Port(7)), Err(Errno::Inval));
        let (pa, raise) = ec.bind_interdomain(a, 1, pb).expect("bind");
        assert_eq!(
            raise,
            Raise {
                domain: a,
                port: pa,
                vcpu: VcpuId(0)
            }
        );
        ec.bind_vcpu(b, pb, 3).expect("move");
        assert_eq!(
            ec.send(a, pa),
            Ok(Some(Raise {
                domain: b,
                port: pb,
                vcpu: VcpuId(3)
            }))
        );
        assert_eq!(
            ec.send(b, pb),
            Ok(Some(Raise {
                domain: a,
                port: pa,
                vcpu: VcpuId(0)
            }))
        );
        let st = ec.status(b, DOMID_SELF, pb).expect("status");
        assert_eq!((st.status, st.word0, st.word1), (2, 0, pa.0));
        ec.close(a, pa).expect("close");
        assert_eq!(ec.binding(b, pb), Binding::Unbound { remote: a });
        assert_eq!(ec.send(a, pa), Err(Errno::Inval));
    }

    #[test]
    fn virq_rules() {
        let (mut ec, a, _) = two_domains();
        let p = ec.bind_virq(a, 0, 1).expect("timer on v1");
        assert_eq!(ec.bind_virq(a, 0, 1), Err(Errno::Exist));
        assert_eq!(ec.bind_virq(a, 0, 2), Err(Errno::NoEnt));
        assert_eq!(ec.bind_virq(a, 24, 0), Err(Errno::Inval));
        assert_eq!(
            ec.bind_virq(a, 3, 1),
            Err(Errno::Inval),
            "global VIRQs bind on VCPU 0"
        );
        assert_eq!(ec.virq_port(a, VcpuId(1), 0), Some(p));
        assert_eq!(
            ec.bind_vcpu(a, p, 0),
            Err(Errno::Inval),
            "per-VCPU VIRQ stays"
        );
        assert_eq!(ec.send(a, p), Err(Errno::Inval));
        ec.close(a, p).expect("close");
        assert_eq!(ec.virq_port(a, VcpuId(1), 0), None);
    }

    #[test]
    fn ipi_send_notifies_the_bound_vcpu() {
        let (mut ec, _, b) = two_domains();
        let p = ec.bind_ipi(b, 3).expect("bind");
        assert_eq!(
            ec.send(b, p),
            Ok(Some(Raise {
                domain: b,
                port: p,
                vcpu: VcpuId(3)
            }))
        );
        assert_eq!(ec.bind_vcpu(b, p, 1), Err(Errno::Inval));
        assert_eq!(ec.bind_ipi(b, 4), Err(Errno::NoEnt));
    }

    #[test]
    fn other_domains_need_privilege_and_must_exist() {
        let (mut ec, a, _) = two_domains();
        assert_eq!(ec.alloc_unbound(a, 1, 0), Err(Errno::Perm));
        assert_eq!(ec.alloc_unbound(a, DOMID_SELF, 9), Err(Errno::Srch));
        assert_eq!(ec.status(a, 1, Port(1)), Err(Errno::Perm));
    }

    #[test]
    fn ports_run_out_at_4096() {
        let mut ec = EventChannels::new();
        let d = ec.add_domain(1);
        for i in 1..4096 {
            assert_eq!(ec.bind_ipi(d, 0), Ok(Port(i)));
        }
        assert_eq!(ec.bind_ipi(d, 0), Err(Errno::NoSpc));
    }

    #[test]
    fn a_raised_limit_allows_more_ports() {
        let mut ec = EventChannels::new();
        let d = ec.add_domain(1);
        ec.set_max_ports(d, 5000);
        for i in 1..5000 {
            assert_eq!(ec.bind_ipi(d, 0), Ok(Port(i)));
        }
        assert_eq!(ec.bind_ipi(d, 0), Err(Errno::NoSpc));
        assert_eq!(ec.nr_ports(d), 5000);
    }
}
