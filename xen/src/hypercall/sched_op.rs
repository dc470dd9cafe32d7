//! `sched_op` (hypercall 29, xen-abi.md §4.1).

use super::{ok, u32_at, u64_at, Call, HResult, Ret};
use crate::abi::{sched, vcpu_info, Errno, EVTCHN_2L_NR_CHANNELS};
use crate::event_2l;
use crate::hypervisor::Next;
use crate::ids::Port;
use crate::vcpu::{PollState, RunState};

/// Most ports one SCHEDOP_poll may list.
const MAX_POLL_PORTS: u32 = 128;

impl Call<'_> {
    pub(super) fn sched_op(&mut self, cmd: u32, arg: u64) -> HResult {
        match u64::from(cmd) {
            sched::YIELD => Ok(Ret::Then(Next::Yield)),
            sched::BLOCK => Ok(self.block()),
            sched::SHUTDOWN => self.shutdown(arg),
            sched::POLL => self.poll(arg),
            sched::REMOTE_SHUTDOWN => Err(Errno::Perm),
            sched::SHUTDOWN_CODE => self.shutdown_code(arg),
            _ => Err(Errno::NoSys),
        }
    }

    /// Whether the caller has an upcall due.
    fn upcall_due(&mut self) -> bool {
        let layout = self.hv.domain(self.d).and_then(|d| d.event_layout(self.v));
        layout.is_some_and(|l| event_2l::upcall_due(&mut *self.mem, l.vcpu_info))
    }

    /// SCHEDOP_block: enable events, re-check, sleep.
    fn block(&mut self) -> Ret {
        let layout = self.hv.domain(self.d).and_then(|d| d.event_layout(self.v));
        if let Some(l) = layout {
            self.mem.write_u8(l.vcpu_info + vcpu_info::UPCALL_MASK, 0);
        }
        if self.upcall_due() {
            return Ret::Value(0);
        }
        let now = self.now_ns;
        let vc = self.hv.vcpu_mut(self.d, self.v);
        vc.state = RunState::Blocked;
        vc.pv.runstate.switch(crate::pvcpu::RUNSTATE_BLOCKED, now);
        Ret::Then(Next::Block)
    }

    fn shutdown(&mut self, arg: u64) -> HResult {
        let reason = u32_at(&self.read(arg, 4)?, 0);
        if reason > sched::SHUTDOWN_MAX {
            return Err(Errno::Inval);
        }
        let names = [
            "poweroff",
            "reboot",
            "suspend",
            "crash",
            "watchdog",
            "soft_reset",
        ];
        let msg = format!(
            "SCHEDOP_shutdown({}) from {}",
            names[reason as usize], self.v
        );
        self.hv.shutdown_domain(self.d, reason, msg, self.cycle);
        Ok(Ret::Then(Next::Shutdown))
    }

    /// SCHEDOP_shutdown_code: latch the reason the eventual shutdown
    /// reports (the first latch wins).
    fn shutdown_code(&mut self, arg: u64) -> HResult {
        let reason = u32_at(&self.read(arg, 4)?, 0);
        if reason > sched::SHUTDOWN_MAX {
            return Err(Errno::Inval);
        }
        let dom = self.hv.dom_mut(self.d);
        dom.shutdown_code.get_or_insert(reason);
        ok()
    }

    fn poll(&mut self, arg: u64) -> HResult {
        let b = self.read(arg, 24)?;
        let (list, n, timeout) = (u64_at(&b, 0), u32_at(&b, 8), u64_at(&b, 16));
        if n > MAX_POLL_PORTS {
            return Err(Errno::Inval);
        }
        let raw = self.read(list, 4 * n as usize)?;
        let ports: Vec<Port> = raw.chunks(4).map(|c| Port(u32_at(c, 0))).collect();
        let limit = if self.is_fifo() {
            crate::event_fifo::NR_CHANNELS
        } else {
            EVTCHN_2L_NR_CHANNELS
        };
        if ports.iter().any(|p| p.0 >= limit) {
            return Err(Errno::Inval);
        }
        if self.upcall_due() || self.any_pending(&ports) {
            return ok();
        }
        if timeout != 0 && timeout <= self.now_ns {
            return ok();
        }
        let now = self.now_ns;
        let vcpu = self.hv.vcpu_mut(self.d, self.v);
        vcpu.state = RunState::Polling;
        vcpu.pv.runstate.switch(crate::pvcpu::RUNSTATE_BLOCKED, now);
        vcpu.poll = Some(PollState {
            ports,
            timeout_ns: (timeout != 0).then_some(timeout),
        });
        Ok(Ret::Then(Next::Poll))
    }

    fn any_pending(&mut self, ports: &[Port]) -> bool {
        let dom = self.hv.domain(self.d).expect("caller exists");
        if let Some(fifo) = dom.fifo() {
            return ports.iter().any(|&p| fifo.is_pending(&mut *self.mem, p));
        }
        let si = dom.shared_info();
        let base = si.addr(crate::abi::shared_info::EVTCHN_PENDING).get();
        ports
            .iter()
            .any(|p| self.mem.test_bit(base + 8 * u64::from(p.0 / 64), p.0 % 64))
    }
}
