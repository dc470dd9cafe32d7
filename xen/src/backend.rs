//! The backend of the PV console ring every domain gets at start of day
//! (what `xl console` shows); the xenstore ring's is [`crate::xenstore`].
//!
//! It runs in the hypervisor, deterministically: when the guest notifies
//! the ring's event channel (`EVTCHNOP_send`), and also when the domain
//! shuts down, so that output written without a notification is not lost.
//!
//! # Console (`xencons_interface`)
//! `out[2048]` at 1024 with `out_cons`/`out_prod` at 3080/3084: everything
//! between them is taken into the domain's console and `out_cons` catches
//! up. The guest's console input (`in[]`) stays empty.

use crate::console::ConsoleLine;
use crate::event_2l::EventMemory;
use crate::hypervisor::Domain;
use crate::ids::Mfn;

/// `xencons_interface` offsets.
mod cons {
    pub const OUT: u64 = 1024;
    pub const OUT_SIZE: u32 = 2048;
    pub const OUT_CONS: u64 = 3080;
    pub const OUT_PROD: u64 = 3084;
}

fn read_u32(mem: &mut dyn EventMemory, ma: u64) -> u32 {
    (0..4).fold(0u32, |w, i| w | u32::from(mem.read_u8(ma + i)) << (8 * i))
}

fn write_u32(mem: &mut dyn EventMemory, ma: u64, v: u32) {
    for (i, b) in v.to_le_bytes().into_iter().enumerate() {
        mem.write_u8(ma + i as u64, b);
    }
}

/// Drains domain `dom`'s console ring into its console.
pub(crate) fn drain_console(
    dom: &mut Domain,
    mem: &mut dyn EventMemory,
    out: &mut Vec<ConsoleLine>,
) {
    let ring = Mfn(dom.built.start_info.console_mfn).addr(0).get();
    let cons = read_u32(mem, ring + cons::OUT_CONS);
    let prod = read_u32(mem, ring + cons::OUT_PROD);
    let n = prod.wrapping_sub(cons);
    if n == 0 || n > cons::OUT_SIZE {
        // Empty, or indices the guest corrupted: nothing sane to take.
        return;
    }
    let bytes: Vec<u8> = (0..n)
        .map(|i| {
            let at = cons.wrapping_add(i) % cons::OUT_SIZE;
            mem.read_u8(ring + cons::OUT + u64::from(at))
        })
        .collect();
    dom.ring_used = true;
    dom.ring_console.write(dom.id, &bytes, out);
    write_u32(mem, ring + cons::OUT_CONS, prod);
}
