//! `smpsim_op` (hypercall 56): smpsim-specific, not part of Xen's ABI
//! (see [`crate::abi::smpsimop`]).

use super::{ok, Call, HResult};
use crate::abi::{smpsimop, Errno};

impl Call<'_> {
    pub(super) fn smpsim_op(&mut self, cmd: u32, id: u32, samples: u64, count: u32) -> HResult {
        match cmd {
            smpsimop::RECORD_SAMPLES => self.record_samples(id, samples, count),
            smpsimop::ROI => self.roi(id),
            _ => Err(Errno::NoSys),
        }
    }

    /// Marks the region of interest (`phase` 1 = begin, 0 = end).
    fn roi(&mut self, phase: u32) -> HResult {
        if phase > 1 {
            return Err(Errno::Inval);
        }
        self.effects.push(crate::hypervisor::Effect::Roi {
            domain: self.d,
            vcpu: self.v,
            begin: phase == 1,
        });
        ok()
    }

    /// Copies `count` u64 samples from `samples` into histogram `id`.
    fn record_samples(&mut self, id: u32, samples: u64, count: u32) -> HResult {
        if !self.hv.guest_hist.valid(id) || count > smpsimop::MAX_SAMPLES {
            return Err(Errno::Inval);
        }
        let bytes = self.read(samples, count as usize * 8)?;
        let values: Vec<u64> = bytes
            .chunks_exact(8)
            .map(|c| u64::from_le_bytes(c.try_into().expect("8 bytes")))
            .collect();
        self.hv.guest_hist.record(id, &values);
        ok()
    }
}
