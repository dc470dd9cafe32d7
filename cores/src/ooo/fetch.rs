//! Fetch: ICOUNT context choice, the oracle step, branch prediction and
//! uop creation.

use super::bpred::Bpred;
use super::uopinfo::{self, Class};
use super::{BrKind, Env, InsnRec, MemPort, MemRec, OooCore, PortAccess, Slot, MAX_MEM};
use crate::func::Exit;
use crate::mem::{GuestMemory, MemStop, PAGE_SIZE};
use crate::translate::{translate_block, Quirks};
use crate::uop::{Op, Uop};

/// Guest memory that records the oracle's accesses.
struct Recorder<'a> {
    inner: &'a mut dyn GuestMemory,
    log: [MemRec; MAX_MEM],
    n: usize,
    wrote: bool,
}

impl Recorder<'_> {
    fn note(&mut self, addr: u64, size: usize, write: bool, value: u64) {
        self.wrote |= write;
        if self.n < MAX_MEM {
            self.log[self.n] = MemRec {
                addr,
                size: u8::try_from(size.min(255)).expect("clamped"),
                write,
                value,
            };
            self.n += 1;
        }
    }
}

impl GuestMemory for Recorder<'_> {
    /// Instruction bytes (the executor reads data only through `load`):
    /// not a data access, so not recorded.
    fn read(&mut self, addr: u64, buf: &mut [u8]) -> Result<(), MemStop> {
        self.inner.read(addr, buf)
    }
    fn write(&mut self, addr: u64, data: &[u8]) -> Result<(), MemStop> {
        self.inner.write(addr, data)?;
        let mut v = [0u8; 8];
        let n = data.len().min(8);
        v[..n].copy_from_slice(&data[..n]);
        self.note(addr, data.len(), true, u64::from_le_bytes(v));
        Ok(())
    }
    fn load(&mut self, addr: u64, size: u8) -> Result<u64, MemStop> {
        let v = self.inner.load(addr, size)?;
        self.note(addr, usize::from(size), false, 0);
        Ok(v)
    }
    fn store(&mut self, addr: u64, size: u8, value: u64) -> Result<(), MemStop> {
        self.inner.store(addr, size, value)?;
        self.note(addr, usize::from(size), true, value);
        Ok(())
    }
}

/// Predicts the next RIP of `r` with predictor `bp` (updating its
/// speculative state); a BTB miss on a direct branch delays fetch (`stall`).
fn predict_in(
    bp: &mut Bpred,
    stall: &mut u64,
    r: &mut InsnRec,
    len: u8,
    target: Option<u64>,
    now: u64,
    bubble: u64,
) -> u64 {
    let ft = r.rip.wrapping_add(u64::from(len));
    r.ckpt = bp.checkpoint();
    let rip = r.rip;
    let mut direct = |bp: &mut Bpred, t: u64| {
        if bp.btb_lookup(rip) != Some(t) {
            *stall = (*stall).max(now + bubble);
        }
        t
    };
    match r.kind {
        BrKind::None => ft,
        BrKind::Rep => {
            if r.wrong {
                ft
            } else {
                r.next_rip
            }
        }
        BrKind::Cond => {
            let d = bp.predict_dir(rip);
            bp.push_history(d.taken);
            r.pred = Some(d);
            match (d.taken, target) {
                (true, Some(t)) => direct(bp, t),
                _ => ft,
            }
        }
        BrKind::Jump => direct(bp, target.unwrap_or(ft)),
        BrKind::Call => {
            bp.ras_push(ft);
            match target {
                Some(t) => direct(bp, t),
                None => bp.btb_lookup(rip).unwrap_or(ft),
            }
        }
        BrKind::Ret => bp.ras_pop(),
        BrKind::Indirect => bp.btb_lookup(rip).unwrap_or(ft),
    }
}

/// Branch kind of an instruction from its uops.
fn kind_of(uops: &[Uop], rep: bool) -> (BrKind, Option<u64>) {
    if rep {
        return (BrKind::Rep, None);
    }
    let Some(last) = uops.last() else {
        return (BrKind::None, None);
    };
    let has_store = uops.iter().any(|u| u.op == Op::St);
    let target = u64::from_ne_bytes(last.imm.to_ne_bytes());
    match last.op {
        Op::Jcc | Op::Jnz | Op::Jz => (BrKind::Cond, Some(target)),
        Op::Jmp if has_store => (BrKind::Call, Some(target)),
        Op::Jmp => (BrKind::Jump, Some(target)),
        Op::JmpR if has_store => (BrKind::Call, None),
        Op::JmpR if uops.iter().any(|u| u.op == Op::Ld && u.a == 4) => (BrKind::Ret, None),
        Op::JmpR => (BrKind::Indirect, None),
        _ => (BrKind::None, None),
    }
}

/// The timing view of one uop, computed once per translated block (see
/// [`OooCore::decode`]) instead of at every fetch.
#[derive(Clone, Copy, Debug)]
pub(super) struct UopT {
    class: Class,
    /// Reads and writes of memory records: (reads, writes).
    nr: u8,
    nw: u8,
    /// A `ProbeW` (consumes records, times no access).
    probe: bool,
    /// Store data register (`NONE_REG` if none).
    data: u8,
    /// Address sources (the data register left out), `NONE_REG`-padded.
    srcs: [u8; 5],
    dsts: [u8; 4],
    lat: u64,
}

/// One front-end translation as the pipeline uses it: the first
/// instruction's uops (timing view), length and branch kind.
#[derive(Clone, Debug, Default)]
pub(super) struct Decoded {
    uops: Vec<UopT>,
    len: u8,
    kind: BrKind,
    target: Option<u64>,
}

impl OooCore {
    /// The timing view of `u` under this core's latencies.
    fn uop_timing(&self, u: &Uop) -> UopT {
        let lat = &self.cfg.latency;
        let class = uopinfo::class(u);
        let regs = uopinfo::reg_use(u);
        let (nr, nw) = match u.op {
            Op::Ld => (1, 0),
            Op::St => (0, 1),
            Op::ProbeW => (1, 1),
            Op::Str => uopinfo::str_rw(u),
            _ => (0, 0),
        };
        let over = self.op_lat[u.op as usize];
        let latency = match class {
            _ if over != u64::MAX => over,
            Class::None => 0,
            Class::Alu => lat.alu,
            Class::Branch => lat.branch,
            Class::Mul => lat.mul,
            Class::Div => lat.div,
            Class::Load => lat.wrong_path_load,
            Class::Store => lat.store,
            Class::Complex => lat.complex,
            Class::Fence => lat.alu,
            Class::FpAdd => lat.fp_add,
            Class::FpMul => lat.fp_mul,
            Class::FpDiv => lat.fp_div,
            Class::Vec => lat.vec,
            Class::Shuffle => lat.shuffle,
            Class::Convert => lat.convert,
        };
        // Stores split: address sources gate issue, the data register
        // only forwarding and commit.
        let data = if u.op == Op::St && u.b != u.a && u.b != u.c {
            u.b
        } else {
            uopinfo::NONE_REG
        };
        let mut srcs = [uopinfo::NONE_REG; 5];
        for (k, &s) in regs.srcs.iter().filter(|&&s| s != data).enumerate() {
            srcs[k] = s;
        }
        UopT {
            class,
            nr,
            nw,
            probe: u.op == Op::ProbeW,
            data,
            srcs,
            dsts: regs.dsts,
            lat: latency,
        }
    }

    /// The translation of the instruction at `rip` (its index in
    /// `decoded`), translating it on a miss.
    fn decode(&mut self, c: usize, env: &mut dyn Env, rip: u64) -> Result<usize, MemStop> {
        let asid = self.ctxs[c].asid;
        let idx = match self.cache.lookup(asid, rip) {
            Some(i) => i,
            None => {
                env.select(c, self.ctxs[c].steps);
                let quirks = Quirks::of(self.ctxs[c].func.cpuid());
                let b = translate_block(env, rip, quirks)?;
                // Every insertion into the front end's cache comes through
                // here, so `decoded[idx]` always describes the live block
                // at `idx` (a freed index is reused only by an insertion).
                let idx = self.cache.insert(asid, b);
                let b = self.cache.block(idx);
                let i = b.insns[0];
                let uops = &b.uops[usize::from(i.start)..usize::from(i.end)];
                let (kind, target) = kind_of(uops, i.rep != 0);
                let d = Decoded {
                    uops: uops.iter().map(|u| self.uop_timing(u)).collect(),
                    len: i.len,
                    kind,
                    target,
                };
                let k = idx as usize;
                if self.decoded.len() <= k {
                    self.decoded.resize_with(k + 1, Decoded::default);
                }
                self.decoded[k] = d;
                idx
            }
        };
        Ok(idx as usize)
    }

    /// Steps the oracle of context `c` by one instruction and appends its
    /// record to the context's in-flight instructions.
    fn oracle_step(&mut self, c: usize, env: &mut dyn Env) {
        let now = self.now;
        let x = &mut self.ctxs[c];
        let rip = x.state.rip;
        x.steps += 1;
        let tag = x.steps;
        env.select(c, tag);
        x.func.set_cycles(now);
        let mut rec = Recorder {
            inner: env,
            log: [MemRec::default(); MAX_MEM],
            n: 0,
            wrote: false,
        };
        let exit = x.func.run(&mut x.state, &mut rec, 1);
        let (log, n, wrote) = (rec.log, rec.n, rec.wrote);
        if wrote {
            for m in log[..n].iter().filter(|m| m.write) {
                let page = m.addr / PAGE_SIZE;
                if self.cache.code_pages().maybe(page) {
                    // Self- or cross-modifying code: drop the front end's
                    // and every context's oracle translations of the page.
                    self.cache.invalidate_page(page);
                    for x in &mut self.ctxs {
                        x.func.invalidate_code(m.addr);
                    }
                }
            }
        }
        let x = &mut self.ctxs[c];
        let exit = match exit {
            Exit::InsnLimit => None,
            e => {
                x.oracle_blocked = true;
                Some(Box::new(e))
            }
        };
        let next_rip = x.state.rip;
        let ckpt = x.bp.checkpoint();
        x.insns.push_back(InsnRec {
            seq: 0,
            rip,
            ft: 0,
            next_rip,
            wrong: false,
            exit,
            mem: log,
            nmem: u8::try_from(n).expect("at most MAX_MEM"),
            kind: BrKind::None,
            pred: None,
            ckpt,
            mispredicted: false,
            tag,
        });
    }

    /// Appends the next instruction of context `c` to its in-flight
    /// instructions, if one can be fetched now.
    fn next_insn(&mut self, c: usize, env: &mut dyn Env) -> bool {
        let x = &mut self.ctxs[c];
        if x.wrong_path {
            let ckpt = x.bp.checkpoint();
            x.insns.push_back(InsnRec {
                seq: 0,
                rip: x.fetch_rip,
                ft: 0,
                next_rip: 0,
                wrong: true,
                exit: None,
                mem: [MemRec::default(); MAX_MEM],
                nmem: 0,
                kind: BrKind::None,
                pred: None,
                ckpt,
                mispredicted: false,
                tag: 0,
            });
            return true;
        }
        if let Some(r) = x.replay.pop_front() {
            x.insns.push_back(r);
            return true;
        }
        if x.oracle_blocked || x.stop_req {
            return false;
        }
        self.oracle_step(c, env);
        true
    }

    /// RIP of the next instruction `next_insn` would return, if any.
    fn peek_rip(&self, c: usize) -> Option<u64> {
        let x = &self.ctxs[c];
        if x.wrong_path {
            return Some(x.fetch_rip);
        }
        if let Some(r) = x.replay.front() {
            return Some(r.rip);
        }
        (!(x.oracle_blocked || x.stop_req)).then_some(x.state.rip)
    }

    /// Whether the line holding `rip` is fetched (else starts its fetch).
    fn icache_ok(&mut self, c: usize, rip: u64, port: &mut dyn MemPort) -> bool {
        let now = self.now;
        let hidden = self.cfg.icache_hidden;
        let x = &mut self.ctxs[c];
        let line = rip / 64;
        if line == x.fetch_line {
            return true;
        }
        if x.ifetch_wait.is_some() {
            return false;
        }
        match port.fetch(now, c, rip) {
            PortAccess::Done { ready } => {
                x.fetch_line = line;
                if ready > now + hidden {
                    x.icache_ready = ready - hidden;
                    self.stats.inc(self.ids.icache_miss);
                    return false;
                }
                true
            }
            PortAccess::Pending(id) => {
                x.ifetch_wait = Some((id, line));
                x.icache_ready = u64::MAX;
                self.stats.inc(self.ids.icache_miss);
                false
            }
            PortAccess::Stall => false,
        }
    }

    /// Picks the context to fetch from (per the fetch policy) or `None`.
    fn pick_context(&self) -> Option<usize> {
        let n = self.ctxs.len();
        let mut ready = (0..n).map(|k| (self.rr + k) % n).filter(|&c| {
            let x = &self.ctxs[c];
            x.running
                && x.fetch_stall_until <= self.now
                && x.icache_ready <= self.now
                && x.fq.len() < self.cfg.fetch_buffer
                && (x.wrong_path || !x.replay.is_empty() || !(x.oracle_blocked || x.stop_req))
        });
        match self.cfg.fetch_policy {
            super::FetchPolicy::Icount => {
                ready.min_by_key(|&c| self.ctxs[c].fq.len() + self.ctxs[c].iq_count)
            }
            super::FetchPolicy::RoundRobin => ready.next(),
        }
    }

    /// The fetch stage.
    pub(super) fn fetch(&mut self, env: &mut dyn Env) {
        self.check_stops();
        let Some(c) = self.pick_context() else {
            if self.ctxs.iter().any(|x| x.running) {
                self.stats.inc(self.ids.stall_fetch);
            }
            return;
        };
        let mut fetched = 0;
        while fetched < self.cfg.fetch_width && self.ctxs[c].fq.len() < self.cfg.fetch_buffer {
            match self.peek_rip(c) {
                Some(rip) if self.icache_ok(c, rip, env) => {}
                _ => break,
            }
            if !self.next_insn(c, env) {
                break;
            }
            let taken = match self.fetch_one(c, env) {
                Some(t) => t,
                None => break,
            };
            fetched += 1;
            if taken || self.ctxs[c].fetch_stall_until > self.now {
                break;
            }
        }
        if fetched == 0 {
            self.stats.inc(self.ids.stall_fetch);
        }
    }

    /// Decodes, predicts and enqueues the youngest in-flight instruction
    /// of `c` (just appended by `next_insn`); `Some(taken)` if it was
    /// fetched (`None`: a wrong-path fetch that cannot be decoded, dropped).
    fn fetch_one(&mut self, c: usize, env: &mut dyn Env) -> Option<bool> {
        let (rip, wrong, fault, rec_next) = {
            let r = self.ctxs[c].insns.back().expect("just appended");
            (
                r.rip,
                r.wrong,
                matches!(r.exit.as_deref(), Some(Exit::Fault(_))),
                r.next_rip,
            )
        };
        // The uops: a translation, or one simple uop.
        let (dec, len, kind, target) = if fault {
            (None, 0, BrKind::None, None)
        } else {
            match self.decode(c, env, rip) {
                Ok(i) => {
                    let d = &self.decoded[i];
                    (Some(i), d.len, d.kind, d.target)
                }
                Err(_) if wrong => {
                    self.ctxs[c].insns.pop_back();
                    self.ctxs[c].fetch_stall_until = u64::MAX; // until redirect
                    return None;
                }
                Err(_) => {
                    // The oracle ran it from a translation made before its
                    // page went away (unmapped by someone else since): time
                    // it as one simple uop.
                    (
                        None,
                        u8::try_from(rec_next.wrapping_sub(rip).min(15)).expect("clamped"),
                        BrKind::None,
                        None,
                    )
                }
            }
        };
        let now = self.now;
        let bubble = self.cfg.btb_miss_bubble;
        let seq = self.insn_seq;
        self.insn_seq += 1;
        let x = &mut self.ctxs[c];
        let r = x.insns.back_mut().expect("just appended");
        r.kind = kind;
        r.ft = r.rip.wrapping_add(u64::from(len));
        let ft = r.ft;
        let pred = predict_in(
            &mut x.bp,
            &mut x.fetch_stall_until,
            r,
            len,
            target,
            now,
            bubble,
        );
        if r.wrong {
            r.next_rip = pred;
            x.fetch_rip = pred;
        } else if pred != r.next_rip && r.exit.is_none() {
            r.mispredicted = true;
            x.wrong_path = true;
            x.fetch_rip = pred;
        }
        r.seq = seq;
        self.make_uops(c, dec);
        Some(pred != ft)
    }

    /// Turns the uops of translation `dec` (`None`: one simple uop) into
    /// slab entries in the fetch buffer of `c`, for its youngest in-flight
    /// instruction.
    fn make_uops(&mut self, c: usize, dec: Option<usize>) {
        let nop;
        let uops: &[UopT] = match dec {
            Some(i) => &self.decoded[i].uops,
            None => {
                nop = [self.uop_timing(&Uop::new(Op::Nop, 8))];
                &nop
            }
        };
        let x = &mut self.ctxs[c];
        let r = x.insns.back().expect("just appended");
        let mem = &r.mem[..usize::from(r.nmem)];
        let (mut rd, mut wr) = (
            mem.iter().filter(|m| !m.write),
            mem.iter().filter(|m| m.write),
        );
        let n = uops.len();
        let ctx = u8::try_from(c).expect("at most 8 contexts");
        let (insn, rip, wrong, mispredicted) = (r.seq, r.rip, r.wrong, r.mispredicted);
        let now = self.now;
        let mask = self.mask;
        let slab = &mut self.slab;
        let fq = &mut x.fq;
        let mut seq = self.seq;
        let mut last_seq = 0;
        for (i, t) in uops.iter().enumerate() {
            let (mut ld, mut st) = ((0u64, 0u8), (0u64, 0u8, 0u64));
            for k in 0..t.nr {
                if let Some(m) = rd.next() {
                    if k == 0 && !t.probe {
                        ld = (m.addr, m.size.min(16));
                    }
                }
            }
            for _ in 0..t.nw {
                if let Some(m) = wr.next() {
                    if !t.probe {
                        st = (m.addr, m.size.min(16), m.value);
                    }
                }
            }
            // Sequence numbers only need to grow: skip slots still held
            // by old uops (a context stalled at commit while another one
            // fetches and squashes quickly), so the slab never wraps onto
            // a live uop. At most half the slab is live.
            while slab[(seq & mask) as usize].seq != 0 {
                seq += 1;
            }
            let idx = (seq & mask) as usize;
            let mut srcs = [0u64; 5];
            for (d, &s) in srcs.iter_mut().zip(&t.srcs) {
                *d = u64::from(s); // register numbers until rename
            }
            slab[idx] = Slot {
                seq,
                insn,
                ctx,
                class: t.class,
                lat: t.lat,
                srcs,
                dsts: t.dsts,
                done: u64::MAX,
                issued: false,
                in_iq: false,
                fetched_at: now,
                rip,
                ld,
                st,
                fwd_from: 0,
                data: u64::from(t.data),
                last: i + 1 == n,
            };
            fq.push_back(seq);
            last_seq = seq;
            seq += 1;
        }
        self.seq = seq;
        if wrong {
            self.stats.add(self.ids.wrong_fetched, n as u64);
        }
        if mispredicted {
            self.ctxs[c].redirect = Some(last_seq);
        }
    }

    /// Stops contexts whose stop request has drained.
    fn check_stops(&mut self) {
        for x in &mut self.ctxs {
            if x.running && x.stop_req && x.insns.is_empty() && x.replay.is_empty() {
                x.running = false;
                x.exit = Some(Exit::InsnLimit);
            }
        }
    }
}
