//! The backends of the rings every domU gets at start of day: the PV
//! console (what `xl console` shows) and a minimal xenstore.
//!
//! Both run in the hypervisor, deterministically: when the guest notifies
//! the ring's event channel (`EVTCHNOP_send`), and the console also when
//! the domain shuts down, so that output written without a notification is
//! not lost.
//!
//! # Console (`xencons_interface`)
//! `out[2048]` at 1024 with `out_cons`/`out_prod` at 3080/3084: everything
//! between them is taken into the domain's console and `out_cons` catches
//! up. The guest's console input (`in[]`) stays empty.
//!
//! # Xenstore (`xenstore_domain_interface`, `xs_wire.h`)
//! Requests (`req[1024]`, `req_cons`/`req_prod` at 2048/2052) are answered
//! into `rsp[1024]` (`rsp_cons`/`rsp_prod` at 2056/2060), and the port is
//! raised. The store is per domain: relative paths resolve under
//! `/local/domain/<domid>`, which starts with `domid` and `name`.
//! Supported: READ, WRITE, MKDIR, RM, DIRECTORY, GET_DOMAIN_PATH,
//! TRANSACTION_START/END (applied at once: a transaction never conflicts
//! because nothing else writes the domain's subtree), WATCH/UNWATCH
//! (accepted; no watch events are sent: partial). Anything else is
//! answered `XS_ERROR` "ENOSYS". Permissions, other domains' subtrees and
//! watch events are issue 16's full xenstored.

use crate::console::ConsoleLine;
use crate::event_2l::EventMemory;
use crate::hypervisor::Domain;
use crate::ids::Mfn;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// `xencons_interface` offsets.
mod cons {
    pub const OUT: u64 = 1024;
    pub const OUT_SIZE: u32 = 2048;
    pub const OUT_CONS: u64 = 3080;
    pub const OUT_PROD: u64 = 3084;
}

/// `xenstore_domain_interface` offsets.
mod xs {
    pub const REQ: u64 = 0;
    pub const RSP: u64 = 1024;
    pub const RING: u32 = 1024;
    pub const REQ_CONS: u64 = 2048;
    pub const REQ_PROD: u64 = 2052;
    pub const RSP_CONS: u64 = 2056;
    pub const RSP_PROD: u64 = 2060;
    pub const HDR: u32 = 16;
    pub const PAYLOAD_MAX: u32 = 4096;
}

/// `xsd_sockmsg_type` values.
mod op {
    pub const DIRECTORY: u32 = 1;
    pub const READ: u32 = 2;
    pub const WATCH: u32 = 4;
    pub const UNWATCH: u32 = 5;
    pub const TRANSACTION_START: u32 = 6;
    pub const TRANSACTION_END: u32 = 7;
    pub const GET_DOMAIN_PATH: u32 = 10;
    pub const WRITE: u32 = 11;
    pub const MKDIR: u32 = 12;
    pub const RM: u32 = 13;
    pub const ERROR: u32 = 16;
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

/// A domain's xenstore: absolute path → value (directories are the keys'
/// prefixes and explicit entries).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct XenStore {
    entries: BTreeMap<String, Vec<u8>>,
    next_tx: u32,
}

impl XenStore {
    /// The store of domain `domid` at start of day.
    pub fn new(domid: u16, name: &str) -> Self {
        let mut s = XenStore::default();
        let home = format!("/local/domain/{domid}");
        s.entries.insert(home.clone(), Vec::new());
        s.entries
            .insert(format!("{home}/domid"), domid.to_string().into_bytes());
        s.entries
            .insert(format!("{home}/name"), name.as_bytes().to_vec());
        s
    }

    fn absolute(domid: u16, path: &str) -> String {
        if path.starts_with('/') {
            path.trim_end_matches('/').to_string()
        } else {
            format!("/local/domain/{domid}/{path}")
                .trim_end_matches('/')
                .to_string()
        }
    }

    fn children(&self, dir: &str) -> Vec<String> {
        let prefix = format!("{dir}/");
        let mut out: Vec<String> = self
            .entries
            .range(prefix.clone()..)
            .take_while(|(k, _)| k.starts_with(&prefix))
            .map(|(k, _)| {
                k[prefix.len()..]
                    .split('/')
                    .next()
                    .unwrap_or("")
                    .to_string()
            })
            .collect();
        out.dedup();
        out
    }

    fn exists(&self, path: &str) -> bool {
        self.entries.contains_key(path) || !self.children(path).is_empty()
    }

    /// Answers one request: (reply type, payload).
    fn answer(&mut self, domid: u16, ty: u32, payload: &[u8]) -> (u32, Vec<u8>) {
        let err = |e: &str| (op::ERROR, format!("{e}\0").into_bytes());
        let ok = |t: u32| (t, b"OK\0".to_vec());
        let first = payload.split(|&b| b == 0).next().unwrap_or(&[]);
        let path = Self::absolute(domid, &String::from_utf8_lossy(first));
        match ty {
            op::READ => match self.entries.get(&path) {
                Some(v) => (ty, v.clone()),
                None if self.exists(&path) => (ty, Vec::new()),
                None => err("ENOENT"),
            },
            op::WRITE => {
                let value = payload.get(first.len() + 1..).unwrap_or(&[]).to_vec();
                self.entries.insert(path, value);
                ok(ty)
            }
            op::MKDIR => {
                self.entries.entry(path).or_default();
                ok(ty)
            }
            op::RM => {
                if !self.exists(&path) {
                    return err("ENOENT");
                }
                let prefix = format!("{path}/");
                self.entries
                    .retain(|k, _| k != &path && !k.starts_with(&prefix));
                ok(ty)
            }
            op::DIRECTORY => {
                if !self.exists(&path) {
                    return err("ENOENT");
                }
                let mut b = Vec::new();
                for c in self.children(&path) {
                    b.extend_from_slice(c.as_bytes());
                    b.push(0);
                }
                (ty, b)
            }
            op::GET_DOMAIN_PATH => (ty, format!("/local/domain/{domid}\0").into_bytes()),
            op::TRANSACTION_START => {
                self.next_tx += 1;
                (ty, format!("{}\0", self.next_tx).into_bytes())
            }
            op::TRANSACTION_END | op::WATCH | op::UNWATCH => ok(ty),
            _ => err("ENOSYS"),
        }
    }
}

/// Serves domain `dom`'s xenstore ring; returns whether it answered
/// anything (the port is then raised).
pub(crate) fn serve_xenstore(dom: &mut Domain, mem: &mut dyn EventMemory) -> bool {
    let ring = Mfn(dom.built.start_info.store_mfn).addr(0).get();
    let mut answered = false;
    loop {
        let cons = read_u32(mem, ring + xs::REQ_CONS);
        let prod = read_u32(mem, ring + xs::REQ_PROD);
        let avail = prod.wrapping_sub(cons);
        if !(xs::HDR..=xs::RING).contains(&avail) {
            return answered;
        }
        let byte = |mem: &mut dyn EventMemory, i: u32| {
            mem.read_u8(ring + xs::REQ + u64::from(cons.wrapping_add(i) % xs::RING))
        };
        let hdr: Vec<u8> = (0..xs::HDR).map(|i| byte(mem, i)).collect();
        let word = |i: usize| u32::from_le_bytes(hdr[4 * i..4 * i + 4].try_into().expect("4"));
        let (ty, req_id, tx_id, len) = (word(0), word(1), word(2), word(3));
        if len > xs::PAYLOAD_MAX || avail < xs::HDR + len {
            // A partial request: wait for the rest.
            return answered;
        }
        let payload: Vec<u8> = (0..len).map(|i| byte(mem, xs::HDR + i)).collect();
        let domid = dom.id.0;
        let (rty, body) = dom.xenstore.answer(domid, ty, &payload);
        let rsp_prod = read_u32(mem, ring + xs::RSP_PROD);
        let rsp_cons = read_u32(mem, ring + xs::RSP_CONS);
        let reply_len = xs::HDR + body.len() as u32;
        if xs::RING - rsp_prod.wrapping_sub(rsp_cons) < reply_len {
            // No room for the reply: leave the request for the next kick.
            return answered;
        }
        let mut reply = Vec::with_capacity(reply_len as usize);
        for w in [rty, req_id, tx_id, body.len() as u32] {
            reply.extend_from_slice(&w.to_le_bytes());
        }
        reply.extend_from_slice(&body);
        for (i, b) in reply.iter().enumerate() {
            let at = rsp_prod.wrapping_add(i as u32) % xs::RING;
            mem.write_u8(ring + xs::RSP + u64::from(at), *b);
        }
        write_u32(mem, ring + xs::RSP_PROD, rsp_prod.wrapping_add(reply_len));
        write_u32(mem, ring + xs::REQ_CONS, cons.wrapping_add(xs::HDR + len));
        answered = true;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_store_reads_writes_lists_and_removes() {
        let mut s = XenStore::new(3, "guest");
        assert_eq!(s.answer(3, op::READ, b"domid\0"), (op::READ, b"3".to_vec()));
        assert_eq!(
            s.answer(3, op::READ, b"/local/domain/3/name\0"),
            (op::READ, b"guest".to_vec())
        );
        assert_eq!(s.answer(3, op::READ, b"nope\0").0, op::ERROR);
        assert_eq!(s.answer(3, op::WRITE, b"data/x\0hello").0, op::WRITE);
        assert_eq!(
            s.answer(3, op::READ, b"data/x\0"),
            (op::READ, b"hello".to_vec())
        );
        assert_eq!(
            s.answer(3, op::DIRECTORY, b"\0").1,
            b"data\0domid\0name\0".to_vec()
        );
        assert_eq!(s.answer(3, op::RM, b"data\0").0, op::RM);
        assert_eq!(s.answer(3, op::READ, b"data/x\0").0, op::ERROR);
        assert_eq!(s.answer(3, 99, b"\0"), (op::ERROR, b"ENOSYS\0".to_vec()));
    }
}
