//! The xenstore rings (`xenstore_domain_interface`): requests in
//! `req[1024]` (`req_cons`/`req_prod` at 2048/2052), replies and watch
//! events out through `rsp[1024]` (`rsp_cons`/`rsp_prod` at 2056/2060).
//!
//! [`Xenstored::kick`] runs when a domain notifies its xenstore port: it
//! flushes what that domain's queue holds (the guest may have made room),
//! takes every request byte in the ring, answers each whole message, then
//! flushes every domain's queue. A message may be longer than the ring
//! (payloads reach 4096 bytes): bytes are taken and given as they fit, and
//! a message is answered once all of it has arrived.

use super::{wire, Header, Xenstored};
use crate::event_2l::EventMemory;
use crate::ids::Port;

const REQ: u64 = 0;
const RSP: u64 = 1024;
const RING: u32 = 1024;
const REQ_CONS: u64 = 2048;
const REQ_PROD: u64 = 2052;
const RSP_CONS: u64 = 2056;
const RSP_PROD: u64 = 2060;
const HDR: usize = 16;

/// Bytes a domain's output queue may hold before its requests wait (so a
/// domain that never reads its replies cannot grow the queue by asking).
pub const OUT_LIMIT: usize = 4 * (HDR + wire::PAYLOAD_MAX as usize);

fn read_u32(mem: &mut dyn EventMemory, ma: u64) -> u32 {
    (0..4).fold(0u32, |w, i| w | u32::from(mem.read_u8(ma + i)) << (8 * i))
}

fn write_u32(mem: &mut dyn EventMemory, ma: u64, v: u32) {
    for (i, b) in v.to_le_bytes().into_iter().enumerate() {
        mem.write_u8(ma + i as u64, b);
    }
}

impl Xenstored {
    /// Serves domain `dom`'s notification; returns the domains whose rings
    /// got bytes, with their ports (to be raised).
    pub fn kick(&mut self, dom: u16, mem: &mut dyn EventMemory) -> Vec<(u16, Port)> {
        let c = usize::from(dom);
        let mut raised: Vec<usize> = Vec::new();
        if self.conns.get(c).is_none_or(|k| !k.introduced || k.broken) {
            return Vec::new();
        }
        if self.flush(c, mem) {
            raised.push(c);
        }
        self.take_requests(c, mem);
        for i in 0..self.conns.len() {
            if self.flush(i, mem) && !raised.contains(&i) {
                raised.push(i);
            }
        }
        raised.sort_unstable();
        raised
            .into_iter()
            .map(|i| (self.conns[i].dom, self.conns[i].port))
            .collect()
    }

    fn bad(&mut self, c: usize) {
        let conn = &mut self.conns[c];
        conn.broken = true;
        conn.inbuf.clear();
        conn.out.clear();
        conn.txs.clear();
        self.counters.bad_connections += 1;
    }

    /// Takes request bytes and answers whole messages while the output
    /// queue has room.
    fn take_requests(&mut self, c: usize, mem: &mut dyn EventMemory) {
        loop {
            let ring = self.conns[c].ring_ma;
            let cons = read_u32(mem, ring + REQ_CONS);
            let prod = read_u32(mem, ring + REQ_PROD);
            let avail = prod.wrapping_sub(cons);
            if avail > RING {
                return self.bad(c);
            }
            let conn = &mut self.conns[c];
            let want = match Self::message_len(&conn.inbuf) {
                Some(Ok(n)) => n,
                Some(Err(())) => return self.bad(c),
                None => HDR,
            };
            if conn.inbuf.len() >= want {
                if conn.out.len() >= OUT_LIMIT {
                    return;
                }
                let msg: Vec<u8> = conn.inbuf.drain(..want).collect();
                let w = |i: usize| u32::from_le_bytes(msg[4 * i..4 * i + 4].try_into().expect("4"));
                let h = Header {
                    ty: w(0),
                    req_id: w(1),
                    tx_id: w(2),
                };
                let dom = conn.dom;
                self.request(dom, h, &msg[HDR..]);
                if self.conns[c].broken || !self.conns[c].introduced {
                    return;
                }
                continue;
            }
            if avail == 0 {
                return;
            }
            let n = avail.min((want - conn.inbuf.len()) as u32);
            for i in 0..n {
                let at = cons.wrapping_add(i) % RING;
                conn.inbuf.push(mem.read_u8(ring + REQ + u64::from(at)));
            }
            write_u32(mem, ring + REQ_CONS, cons.wrapping_add(n));
        }
    }

    /// The whole length of the message `inbuf` starts with, once its
    /// header is in; `Err` for a payload over `XENSTORE_PAYLOAD_MAX`.
    fn message_len(inbuf: &[u8]) -> Option<Result<usize, ()>> {
        let len = u32::from_le_bytes(inbuf.get(12..16)?.try_into().expect("4"));
        Some(if len > wire::PAYLOAD_MAX {
            Err(())
        } else {
            Ok(HDR + len as usize)
        })
    }

    /// Moves queued bytes into the response ring as they fit; true if any
    /// moved.
    fn flush(&mut self, c: usize, mem: &mut dyn EventMemory) -> bool {
        let conn = &self.conns[c];
        if conn.out.is_empty() || conn.broken || !conn.introduced {
            return false;
        }
        let ring = conn.ring_ma;
        let cons = read_u32(mem, ring + RSP_CONS);
        let prod = read_u32(mem, ring + RSP_PROD);
        let used = prod.wrapping_sub(cons);
        if used > RING {
            self.bad(c);
            return false;
        }
        let n = (RING - used).min(conn.out.len() as u32);
        if n == 0 {
            return false;
        }
        let bytes: Vec<u8> = self.conns[c].out.drain(..n as usize).collect();
        for (i, b) in bytes.into_iter().enumerate() {
            let at = prod.wrapping_add(i as u32) % RING;
            mem.write_u8(ring + RSP + u64::from(at), b);
        }
        write_u32(mem, ring + RSP_PROD, prod.wrapping_add(n));
        true
    }
}
