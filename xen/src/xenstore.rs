//! xenstored: one store shared by every domain, served in the hypervisor
//! over each domain's xenstore ring (`xs_wire.h`).
//!
//! # What is built
//! - One tree rooted at `/`. At build each domain gets
//!   `/local/domain/<id>` (with `domid` and `name`), owned by the domain
//!   with no access for others (`n<id>`); `/`, `/local` and
//!   `/local/domain` are dom0's (`n0`). Domain 0, the first domain built,
//!   is privileged: it may read and write every node.
//! - Permissions as Xen's: a node's list is `<c><domid>` entries, `c` one of
//!   `n` (none), `r`, `w`, `b` (both); the first names the owner and gives
//!   everyone not listed its rights. The owner and dom0 have full access.
//!   A node created by an unprivileged domain inherits its parent's list
//!   with the creator as owner; one created by dom0 inherits it unchanged.
//!   Creating a node needs WRITE on its nearest existing ancestor. A
//!   missing node reads ENOENT if its nearest existing ancestor is
//!   readable, EACCES otherwise (no one learns what they cannot see).
//! - Requests: READ, WRITE, MKDIR, RM, DIRECTORY, GET_PERMS, SET_PERMS,
//!   WATCH, UNWATCH, RESET_WATCHES, TRANSACTION_START/END,
//!   GET_DOMAIN_PATH, INTRODUCE, RELEASE, IS_DOMAIN_INTRODUCED. Others
//!   (CONTROL, RESUME, SET_TARGET, DIRECTORY_PART) are `ENOSYS`, as
//!   xenstored answers a type it does not know.
//! - Watches: a change to a node fires every watch on it or an ancestor
//!   (the event names the changed node); removing a subtree also fires
//!   the watches inside it (the event names the watched path). A watch
//!   set with a relative path gets relative event paths. Every WATCH is
//!   followed by one event for the watched path, as xenstored sends.
//!   Events go only to domains that may read the node. `@introduceDomain`
//!   and `@releaseDomain` fire on INTRODUCE and RELEASE, to dom0 only.
//! - Transactions: each works on its own copy of the tree, taken at
//!   TRANSACTION_START. Every node it reads or writes is recorded with the
//!   generation it had then; a commit in which any of them has changed
//!   since (written, created, removed, a child added or removed, its
//!   permissions set) fails with EAGAIN and changes nothing. Otherwise its
//!   changes land at once and its watch events fire.
//! - Limits (xenstored's defaults): payload 4096 bytes, paths 3072 bytes
//!   absolute and 2048 below a domain's home (EINVAL), values of
//!   unprivileged domains 2048 bytes (ENOSPC), 128 watches (E2BIG), 10
//!   open transactions (ENOSPC) and 1000 nodes owned (ENOSPC) per
//!   unprivileged domain.
//! - The rings ([`ring`]): requests are taken whenever the domain notifies
//!   its xenstore port; replies and watch events go to a per-domain output
//!   queue flushed into the ring's response side as space allows (a full
//!   ring keeps them queued, never dropped), and the owner's port is
//!   raised for every flush. A header claiming more than 4096 bytes, or
//!   ring indices more than a ring apart, make the connection bad, and
//!   xenstored then ignores it for good.
//!
//! # Departures from xenstored
//! - Creating a node is checked against WRITE on its nearest existing
//!   ancestor (a reading of xenstored's rules, not its code).
//! - No per-domain quota on outstanding replies: a domain that never reads
//!   its ring stops having requests taken once its queue holds more than
//!   [`ring::OUT_LIMIT`] bytes; watch events for it still queue, without
//!   limit, until it reads them or shuts down.
//! - Nodes of a released domain are not removed (xenstored removes those
//!   it owns).
//! - A domain's connection is released when it shuts down (xenstored
//!   fires `@releaseDomain` then too, but keeps the connection until the
//!   domain is destroyed, which smpsim never does); IS_DOMAIN_INTRODUCED
//!   then answers `F`.

use crate::ids::Port;
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, BTreeSet};

pub mod ring;
#[cfg(test)]
mod tests;

/// `xsd_sockmsg_type` values.
pub mod wire {
    #![allow(missing_docs)]
    pub const CONTROL: u32 = 0;
    pub const DIRECTORY: u32 = 1;
    pub const READ: u32 = 2;
    pub const GET_PERMS: u32 = 3;
    pub const WATCH: u32 = 4;
    pub const UNWATCH: u32 = 5;
    pub const TRANSACTION_START: u32 = 6;
    pub const TRANSACTION_END: u32 = 7;
    pub const INTRODUCE: u32 = 8;
    pub const RELEASE: u32 = 9;
    pub const GET_DOMAIN_PATH: u32 = 10;
    pub const WRITE: u32 = 11;
    pub const MKDIR: u32 = 12;
    pub const RM: u32 = 13;
    pub const SET_PERMS: u32 = 14;
    pub const WATCH_EVENT: u32 = 15;
    pub const ERROR: u32 = 16;
    pub const IS_DOMAIN_INTRODUCED: u32 = 17;
    pub const RESET_WATCHES: u32 = 21;
    /// `XENSTORE_PAYLOAD_MAX`.
    pub const PAYLOAD_MAX: u32 = 4096;
    /// `XENSTORE_ABS_PATH_MAX`.
    pub const ABS_PATH_MAX: usize = 3072;
    /// `XENSTORE_REL_PATH_MAX`.
    pub const REL_PATH_MAX: usize = 2048;
}

/// xenstored's default quotas for unprivileged domains.
pub mod quota {
    /// Bytes in one node's value.
    pub const ENTRY_SIZE: usize = 2048;
    /// Watches per domain.
    pub const WATCHES: usize = 128;
    /// Open transactions per domain.
    pub const TRANSACTIONS: usize = 10;
    /// Nodes a domain may own.
    pub const NODES: usize = 1000;
}

/// The errors xenstored sends, by their `xsd_errors` names.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
#[allow(missing_docs)]
pub enum XsError {
    Inval,
    Acces,
    Exist,
    IsDir,
    NoEnt,
    NoSpc,
    NoSys,
    Busy,
    Again,
    TooBig,
    Perm,
}

impl XsError {
    /// The string an `XS_ERROR` reply carries.
    pub fn name(self) -> &'static str {
        match self {
            XsError::Inval => "EINVAL",
            XsError::Acces => "EACCES",
            XsError::Exist => "EEXIST",
            XsError::IsDir => "EISDIR",
            XsError::NoEnt => "ENOENT",
            XsError::NoSpc => "ENOSPC",
            XsError::NoSys => "ENOSYS",
            XsError::Busy => "EBUSY",
            XsError::Again => "EAGAIN",
            XsError::TooBig => "E2BIG",
            XsError::Perm => "EPERM",
        }
    }
}

type XsResult<T> = Result<T, XsError>;

/// Permission bits.
const READ: u8 = 1;
const WRITE: u8 = 2;

/// One entry of a node's permission list.
#[derive(Copy, Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Perm {
    /// The domain it names.
    pub dom: u16,
    /// READ (1) | WRITE (2).
    pub bits: u8,
}

impl Perm {
    /// Parses Xen's `<c><domid>` form.
    pub fn parse(s: &[u8]) -> Option<Perm> {
        let (&c, id) = s.split_first()?;
        let bits = match c {
            b'n' => 0,
            b'r' => READ,
            b'w' => WRITE,
            b'b' => READ | WRITE,
            _ => return None,
        };
        if id.is_empty() || !id.iter().all(u8::is_ascii_digit) {
            return None;
        }
        let dom = std::str::from_utf8(id).ok()?.parse().ok()?;
        Some(Perm { dom, bits })
    }

    /// Xen's `<c><domid>` form.
    pub fn render(&self) -> String {
        let c = ['n', 'r', 'w', 'b'][usize::from(self.bits & 3)];
        format!("{c}{}", self.dom)
    }
}

/// One node of the tree.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
struct Node {
    value: Vec<u8>,
    /// Owner first.
    perms: Vec<Perm>,
    /// Child names in creation order.
    children: Vec<String>,
    /// The store generation of its last change.
    gen: u64,
}

/// Absolute path → node.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
struct Tree {
    nodes: BTreeMap<String, Node>,
}

fn parent_of(path: &str) -> &str {
    match path.rfind('/') {
        Some(0) => "/",
        Some(i) => &path[..i],
        None => "/",
    }
}

fn child_path(dir: &str, name: &str) -> String {
    if dir == "/" {
        format!("/{name}")
    } else {
        format!("{dir}/{name}")
    }
}

/// Whether `path` is `base` or below it.
fn is_child(path: &str, base: &str) -> bool {
    base == "/"
        || path == base
        || (path.starts_with(base) && path.as_bytes().get(base.len()) == Some(&b'/'))
}

fn home(dom: u16) -> String {
    format!("/local/domain/{dom}")
}

/// What one operation touched: every node with its generation when first
/// seen (for a transaction's conflict check), and the nodes it changed.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
struct Access {
    seen: BTreeMap<String, Option<u64>>,
    changed: BTreeSet<String>,
}

impl Access {
    fn see(&mut self, t: &Tree, p: &str) {
        if !self.seen.contains_key(p) {
            self.seen
                .insert(p.to_string(), t.nodes.get(p).map(|n| n.gen));
        }
    }

    fn change(&mut self, t: &Tree, p: &str) {
        self.see(t, p);
        self.changed.insert(p.to_string());
    }
}

/// A change that fires watches.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
struct Fired {
    path: String,
    /// Only watches on the path or above it (not those inside a removed
    /// subtree).
    exact: bool,
    /// The node's permissions (before a removal), for the read check.
    perms: Vec<Perm>,
}

/// An open transaction.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
struct Transaction {
    tree: Tree,
    acc: Access,
    fired: Vec<Fired>,
}

/// A registered watch.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
struct Watch {
    /// Absolute, or `@…`.
    path: String,
    token: Vec<u8>,
    relative: bool,
}

/// One domain's connection.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Conn {
    dom: u16,
    /// The ring page's machine address.
    ring_ma: u64,
    /// Its xenstore port (the domain's end).
    port: Port,
    introduced: bool,
    /// The domain shut down: never served or introduced again.
    dead: bool,
    /// Bad input seen: ignored from then on.
    broken: bool,
    watches: Vec<Watch>,
    txs: BTreeMap<u32, Transaction>,
    next_tx: u32,
    /// Request bytes taken from the ring, not yet a whole message.
    inbuf: Vec<u8>,
    /// Reply and event bytes not yet in the ring.
    out: Vec<u8>,
}

/// Counters, for tests and reports.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct XsCounters {
    /// Requests answered.
    pub requests: u64,
    /// Of which `XS_ERROR`.
    pub errors: u64,
    /// Watch events queued.
    pub watch_events: u64,
    /// Transaction commits refused with EAGAIN.
    pub conflicts: u64,
    /// Connections marked bad.
    pub bad_connections: u64,
}

/// The store and every domain's connection.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Xenstored {
    tree: Tree,
    /// By domain id (domains are numbered from 0 as built).
    conns: Vec<Conn>,
    gen: u64,
    /// Nodes owned, per unprivileged domain.
    owned: BTreeMap<u16, usize>,
    counters: XsCounters,
}

/// Domain `dom`'s rights on a node with `perms`: full for dom0 and the
/// owner; else its own entry's, else the first entry's.
fn rights(dom: u16, perms: &[Perm]) -> u8 {
    if dom == 0 || perms.first().is_some_and(|p| p.dom == dom) {
        return READ | WRITE;
    }
    perms
        .iter()
        .skip(1)
        .find(|p| p.dom == dom)
        .or(perms.first())
        .map_or(0, |p| p.bits)
}

/// One operation's view: a tree (the store's or a transaction's), what it
/// touches and what it fires.
struct Op<'a> {
    tree: &'a mut Tree,
    acc: &'a mut Access,
    fired: &'a mut Vec<Fired>,
    owned: &'a mut BTreeMap<u16, usize>,
    dom: u16,
}

impl Op<'_> {
    fn privileged(&self) -> bool {
        self.dom == 0
    }

    fn rights(&self, perms: &[Perm]) -> u8 {
        rights(self.dom, perms)
    }

    /// The nearest existing ancestor of a missing `path`.
    fn ancestor(&mut self, path: &str) -> String {
        let mut p = parent_of(path).to_string();
        while !self.tree.nodes.contains_key(&p) && p != "/" {
            p = parent_of(&p).to_string();
        }
        self.acc.see(self.tree, &p);
        p
    }

    /// ENOENT for a missing node if its nearest ancestor is readable.
    fn missing(&mut self, path: &str) -> XsError {
        let a = self.ancestor(path);
        let perms = self.tree.nodes.get(&a).map(|n| n.perms.clone());
        match perms {
            Some(p) if self.rights(&p) & READ != 0 => XsError::NoEnt,
            _ => XsError::Acces,
        }
    }

    fn node(&mut self, path: &str, need: u8) -> XsResult<&Node> {
        self.acc.see(self.tree, path);
        let Some(perms) = self.tree.nodes.get(path).map(|n| n.perms.clone()) else {
            return Err(self.missing(path));
        };
        if self.rights(&perms) & need != need {
            return Err(XsError::Acces);
        }
        Ok(&self.tree.nodes[path])
    }

    fn read(&mut self, path: &str) -> XsResult<Vec<u8>> {
        Ok(self.node(path, READ)?.value.clone())
    }

    fn directory(&mut self, path: &str) -> XsResult<Vec<u8>> {
        let n = self.node(path, READ)?;
        Ok(n.children
            .iter()
            .flat_map(|c| c.bytes().chain([0]))
            .collect())
    }

    fn get_perms(&mut self, path: &str) -> XsResult<Vec<u8>> {
        let n = self.node(path, READ)?;
        Ok(n.perms
            .iter()
            .flat_map(|p| p.render().into_bytes().into_iter().chain([0]))
            .collect())
    }

    fn write(&mut self, path: &str, value: &[u8]) -> XsResult<()> {
        if !self.privileged() && value.len() > quota::ENTRY_SIZE {
            return Err(XsError::NoSpc);
        }
        if self.tree.nodes.contains_key(path) {
            self.node(path, WRITE)?;
            self.acc.change(self.tree, path);
            let n = self.tree.nodes.get_mut(path).expect("checked above");
            n.value = value.to_vec();
            let perms = n.perms.clone();
            self.fire(path, true, perms);
            return Ok(());
        }
        self.create(path, value)
    }

    fn mkdir(&mut self, path: &str) -> XsResult<()> {
        if self.tree.nodes.contains_key(path) {
            // xenstored: an existing node is fine (and fires nothing), if
            // the caller may write it.
            self.node(path, WRITE)?;
            return Ok(());
        }
        self.create(path, &[])
    }

    /// Creates `path` and any missing parents.
    fn create(&mut self, path: &str, value: &[u8]) -> XsResult<()> {
        let top = self.ancestor(path);
        let perms = self.tree.nodes[&top].perms.clone();
        if self.rights(&perms) & WRITE == 0 {
            return Err(XsError::Acces);
        }
        let missing: Vec<&str> = {
            let mut v = vec![path];
            let mut p = parent_of(path);
            while p != top {
                v.push(p);
                p = parent_of(p);
            }
            v.reverse();
            v
        };
        if !self.privileged() {
            let have = self.owned.get(&self.dom).copied().unwrap_or(0);
            if have + missing.len() > quota::NODES {
                return Err(XsError::NoSpc);
            }
        }
        for p in &missing {
            let parent = parent_of(p).to_string();
            self.acc.change(self.tree, &parent);
            self.acc.change(self.tree, p);
            let mut perms = self.tree.nodes[&parent].perms.clone();
            if !self.privileged() {
                perms[0].dom = self.dom;
            }
            if perms[0].dom != 0 {
                *self.owned.entry(perms[0].dom).or_default() += 1;
            }
            let name = p[parent.len()..].trim_start_matches('/').to_string();
            let pn = self.tree.nodes.get_mut(&parent).expect("parent exists");
            pn.children.push(name);
            let value = if *p == path {
                value.to_vec()
            } else {
                Vec::new()
            };
            let node = Node {
                value,
                perms,
                children: Vec::new(),
                gen: 0,
            };
            self.tree.nodes.insert(p.to_string(), node);
        }
        let perms = self.tree.nodes[path].perms.clone();
        self.fire(path, true, perms);
        Ok(())
    }

    fn rm(&mut self, path: &str) -> XsResult<()> {
        if path == "/" {
            return Err(XsError::Inval);
        }
        if !self.tree.nodes.contains_key(path) {
            // xenstored: removing a missing node is fine if its parent is
            // there.
            let e = self.missing(path);
            let parent = parent_of(path);
            return match e {
                XsError::NoEnt if self.tree.nodes.contains_key(parent) => Ok(()),
                e => Err(e),
            };
        }
        let perms = self.node(path, WRITE)?.perms.clone();
        let parent = parent_of(path).to_string();
        self.acc.change(self.tree, &parent);
        let name = &path[parent.len()..].trim_start_matches('/');
        let pn = self.tree.nodes.get_mut(&parent).expect("parent exists");
        pn.children.retain(|c| c != name);
        self.remove_subtree(path);
        self.fire(path, false, perms);
        Ok(())
    }

    fn remove_subtree(&mut self, path: &str) {
        self.acc.change(self.tree, path);
        let node = self.tree.nodes.remove(path).expect("node exists");
        if let Some(c) = self.owned.get_mut(&node.perms[0].dom) {
            *c = c.saturating_sub(1);
        }
        for c in &node.children {
            self.remove_subtree(&child_path(path, c));
        }
    }

    fn set_perms(&mut self, path: &str, perms: Vec<Perm>) -> XsResult<()> {
        let old = self.node(path, READ)?.perms.clone();
        let owner = self.privileged() || old[0].dom == self.dom;
        if !owner || self.rights(&old) & WRITE == 0 {
            return Err(XsError::Acces);
        }
        if !self.privileged() && perms[0].dom != old[0].dom {
            return Err(XsError::Perm);
        }
        if perms[0].dom != old[0].dom {
            if let Some(c) = self.owned.get_mut(&old[0].dom) {
                *c = c.saturating_sub(1);
            }
            if perms[0].dom != 0 {
                *self.owned.entry(perms[0].dom).or_default() += 1;
            }
        }
        self.acc.change(self.tree, path);
        self.tree.nodes.get_mut(path).expect("checked").perms = perms.clone();
        self.fire(path, false, perms);
        Ok(())
    }

    fn fire(&mut self, path: &str, exact: bool, perms: Vec<Perm>) {
        self.fired.push(Fired {
            path: path.to_string(),
            exact,
            perms,
        });
    }
}

/// A parsed request header.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub struct Header {
    /// Message type.
    pub ty: u32,
    /// Echoed in the reply.
    pub req_id: u32,
    /// The transaction, 0 for none.
    pub tx_id: u32,
}

/// The NUL-separated strings of a payload, which must end in NUL.
fn args(payload: &[u8], n: usize) -> XsResult<Vec<&[u8]>> {
    if payload.last() != Some(&0) {
        return Err(XsError::Inval);
    }
    let v: Vec<&[u8]> = payload[..payload.len() - 1].split(|&b| b == 0).collect();
    if v.len() != n {
        return Err(XsError::Inval);
    }
    Ok(v)
}

fn one_arg(payload: &[u8]) -> XsResult<&str> {
    std::str::from_utf8(args(payload, 1)?[0]).map_err(|_| XsError::Inval)
}

fn number(s: &[u8]) -> XsResult<u64> {
    std::str::from_utf8(s)
        .ok()
        .filter(|s| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit()))
        .and_then(|s| s.parse().ok())
        .ok_or(XsError::Inval)
}

fn ok_body() -> Vec<u8> {
    b"OK\0".to_vec()
}

impl Xenstored {
    /// Rewrites each connection's ring frame through `map` (a domain
    /// save or restore, [`crate::save`]).
    pub(crate) fn remap_rings(&mut self, map: &BTreeMap<u64, u64>) {
        for c in &mut self.conns {
            if let Some(&to) = map.get(&(c.ring_ma >> 12)) {
                c.ring_ma = (to << 12) | (c.ring_ma & 0xfff);
            }
        }
    }

    /// Adds domain `dom` (numbered from 0 in build order) with its ring
    /// page at machine address `ring_ma` and its xenstore port `port`:
    /// its connection and its home `/local/domain/<dom>`.
    pub fn add_domain(&mut self, dom: u16, name: &str, ring_ma: u64, port: Port) {
        if self.tree.nodes.is_empty() {
            for p in ["/", "/local", "/local/domain"] {
                self.tree.nodes.insert(
                    p.to_string(),
                    Node {
                        value: Vec::new(),
                        perms: vec![Perm { dom: 0, bits: 0 }],
                        children: Vec::new(),
                        gen: 0,
                    },
                );
                if p != "/" {
                    let (parent, name) = p.rsplit_once('/').expect("absolute");
                    let parent = if parent.is_empty() { "/" } else { parent };
                    let pn = self.tree.nodes.get_mut(parent).expect("made first");
                    pn.children.push(name.to_string());
                }
            }
        }
        assert_eq!(
            usize::from(dom),
            self.conns.len(),
            "domains are added in id order"
        );
        self.conns.push(Conn {
            dom,
            ring_ma,
            port,
            introduced: true,
            dead: false,
            broken: false,
            watches: Vec::new(),
            txs: BTreeMap::new(),
            next_tx: 0,
            inbuf: Vec::new(),
            out: Vec::new(),
        });
        let h = home(dom);
        let mut acc = Access::default();
        let mut fired = Vec::new();
        let mut op = Op {
            tree: &mut self.tree,
            acc: &mut acc,
            fired: &mut fired,
            owned: &mut self.owned,
            dom: 0,
        };
        op.mkdir(&h).expect("dom0 creates homes");
        let own = vec![Perm { dom, bits: 0 }];
        op.set_perms(&h, own).expect("dom0 sets perms");
        op.write(&format!("{h}/domid"), dom.to_string().as_bytes())
            .expect("dom0 writes");
        op.write(&format!("{h}/name"), name.as_bytes())
            .expect("dom0 writes");
        self.commit_main(acc, fired);
    }

    /// Counters so far.
    pub fn counters(&self) -> &XsCounters {
        &self.counters
    }

    /// Domain `dom`'s connection.
    pub fn conn(&self, dom: u16) -> Option<&Conn> {
        self.conns.get(usize::from(dom))
    }

    /// A node's value, as dom0 sees it (for tests and reports).
    pub fn value(&self, path: &str) -> Option<&[u8]> {
        self.tree.nodes.get(path).map(|n| n.value.as_slice())
    }

    /// Stamps a direct change's nodes with new generations and fires its
    /// watches.
    fn commit_main(&mut self, acc: Access, fired: Vec<Fired>) {
        for p in &acc.changed {
            if let Some(n) = self.tree.nodes.get_mut(p) {
                self.gen += 1;
                n.gen = self.gen;
            }
        }
        for f in fired {
            self.deliver(&f);
        }
    }

    /// Queues watch events for one change on every connection that
    /// watches it and may read the node.
    fn deliver(&mut self, f: &Fired) {
        for c in 0..self.conns.len() {
            let conn = &self.conns[c];
            let dom = conn.dom;
            let allowed = rights(dom, &f.perms) & READ != 0;
            if !allowed || !conn.introduced {
                continue;
            }
            let events: Vec<(String, Vec<u8>)> = conn
                .watches
                .iter()
                .filter_map(|w| {
                    let at = if is_child(&f.path, &w.path) && !w.path.starts_with('@') {
                        f.path.clone()
                    } else if !f.exact && is_child(&w.path, &f.path) {
                        w.path.clone()
                    } else {
                        return None;
                    };
                    Some((Self::shown(dom, w, &at), w.token.clone()))
                })
                .collect();
            for (path, token) in events {
                self.queue_event(c, &path, &token);
            }
        }
    }

    /// An event path as the watcher registered it (relative or not).
    fn shown(dom: u16, w: &Watch, at: &str) -> String {
        let h = format!("{}/", home(dom));
        match at.strip_prefix(&h) {
            Some(rel) if w.relative => rel.to_string(),
            _ => at.to_string(),
        }
    }

    fn queue_event(&mut self, c: usize, path: &str, token: &[u8]) {
        let mut body = path.as_bytes().to_vec();
        body.push(0);
        body.extend_from_slice(token);
        body.push(0);
        self.counters.watch_events += 1;
        self.queue(c, wire::WATCH_EVENT, 0, 0, &body);
    }

    fn queue(&mut self, c: usize, ty: u32, req_id: u32, tx_id: u32, body: &[u8]) {
        let out = &mut self.conns[c].out;
        for w in [ty, req_id, tx_id, body.len() as u32] {
            out.extend_from_slice(&w.to_le_bytes());
        }
        out.extend_from_slice(body);
    }

    /// Fires a special watch (`@introduceDomain`, `@releaseDomain`) on
    /// dom0's connection.
    fn fire_special(&mut self, name: &str) {
        let hits: Vec<Vec<u8>> = self
            .conns
            .first()
            .map(|c| {
                c.watches
                    .iter()
                    .filter(|w| w.path == name)
                    .map(|w| w.token.clone())
                    .collect()
            })
            .unwrap_or_default();
        for t in hits {
            self.queue_event(0, name, &t);
        }
    }

    /// Answers one request from domain `dom` into its output queue (and
    /// queues the watch events it causes).
    pub fn request(&mut self, dom: u16, h: Header, payload: &[u8]) {
        let c = usize::from(dom);
        self.counters.requests += 1;
        let r = self.answer(dom, h, payload);
        let (ty, body) = match r {
            Ok(Some(body)) => (h.ty, body),
            Ok(None) => return,
            Err(e) => {
                self.counters.errors += 1;
                (wire::ERROR, format!("{}\0", e.name()).into_bytes())
            }
        };
        self.queue(c, ty, h.req_id, h.tx_id, &body);
    }

    /// The reply body, or `None` where the reply is already queued.
    fn answer(&mut self, dom: u16, h: Header, payload: &[u8]) -> XsResult<Option<Vec<u8>>> {
        match h.ty {
            wire::WATCH => self.watch(dom, h, payload).map(|_| None),
            wire::UNWATCH => self.unwatch(dom, payload).map(|_| Some(ok_body())),
            wire::RESET_WATCHES => {
                let conn = &mut self.conns[usize::from(dom)];
                conn.watches.clear();
                self.drop_transactions(dom);
                Ok(Some(ok_body()))
            }
            wire::TRANSACTION_START => self.tx_start(dom, h).map(Some),
            wire::TRANSACTION_END => self.tx_end(dom, h, payload).map(|_| Some(ok_body())),
            wire::GET_DOMAIN_PATH => {
                let id = number(args(payload, 1)?[0])?;
                let id = u16::try_from(id).map_err(|_| XsError::Inval)?;
                Ok(Some(format!("{}\0", home(id)).into_bytes()))
            }
            wire::INTRODUCE => self.introduce(dom, payload).map(|_| Some(ok_body())),
            wire::RELEASE => self.release(dom, payload).map(|_| Some(ok_body())),
            wire::IS_DOMAIN_INTRODUCED => {
                let id = number(args(payload, 1)?[0])?;
                let yes = usize::try_from(id)
                    .ok()
                    .and_then(|i| self.conns.get(i))
                    .is_some_and(|c| c.introduced);
                Ok(Some(if yes {
                    b"T\0".to_vec()
                } else {
                    b"F\0".to_vec()
                }))
            }
            wire::READ
            | wire::WRITE
            | wire::MKDIR
            | wire::RM
            | wire::DIRECTORY
            | wire::GET_PERMS
            | wire::SET_PERMS => self.node_op(dom, h, payload).map(Some),
            _ => Err(XsError::NoSys),
        }
    }

    /// Canonical absolute path of a request's path argument.
    fn canonical(dom: u16, path: &str) -> XsResult<String> {
        let abs = if path.starts_with('/') {
            path.to_string()
        } else {
            format!("{}/{path}", home(dom))
        };
        let valid_chars = abs
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-/_@".contains(&b));
        if (abs.ends_with('/') && abs != "/") || abs.contains("//") || !valid_chars {
            return Err(XsError::Inval);
        }
        if abs.len() > wire::ABS_PATH_MAX {
            return Err(XsError::Inval);
        }
        // Below a domain's home only the relative part counts.
        let local = abs
            .strip_prefix("/local/domain/")
            .and_then(|r| r.split_once('/'))
            .filter(|(id, _)| {
                !id.is_empty() && id.len() <= 5 && id.bytes().all(|b| b.is_ascii_digit())
            })
            .map_or(abs.len(), |(_, rest)| rest.len());
        if local > wire::REL_PATH_MAX {
            return Err(XsError::Inval);
        }
        Ok(abs)
    }

    /// READ, WRITE, MKDIR, RM, DIRECTORY, GET_PERMS, SET_PERMS, on the
    /// store or in transaction `h.tx_id`.
    fn node_op(&mut self, dom: u16, h: Header, payload: &[u8]) -> XsResult<Vec<u8>> {
        let (path, rest) = match h.ty {
            wire::WRITE | wire::SET_PERMS => {
                let nul = payload.iter().position(|&b| b == 0).ok_or(XsError::Inval)?;
                (&payload[..nul], &payload[nul + 1..])
            }
            _ => (one_arg(payload)?.as_bytes(), &[][..]),
        };
        let path = std::str::from_utf8(path).map_err(|_| XsError::Inval)?;
        let path = Self::canonical(dom, path)?;
        let perms = if h.ty == wire::SET_PERMS {
            Some(Self::parse_perms(rest)?)
        } else {
            None
        };
        let c = usize::from(dom);
        let mut tx = if h.tx_id != 0 {
            Some(self.conns[c].txs.remove(&h.tx_id).ok_or(XsError::NoEnt)?)
        } else {
            None
        };
        let mut acc = Access::default();
        let mut fired = Vec::new();
        let mut owned = self.owned.clone();
        let r = {
            let mut op = match tx.as_mut() {
                Some(t) => Op {
                    tree: &mut t.tree,
                    acc: &mut t.acc,
                    fired: &mut t.fired,
                    owned: &mut owned,
                    dom,
                },
                None => Op {
                    tree: &mut self.tree,
                    acc: &mut acc,
                    fired: &mut fired,
                    owned: &mut owned,
                    dom,
                },
            };
            match h.ty {
                wire::READ => op.read(&path),
                wire::DIRECTORY => op.directory(&path),
                wire::GET_PERMS => op.get_perms(&path),
                wire::WRITE => op.write(&path, rest).map(|_| ok_body()),
                wire::MKDIR => op.mkdir(&path).map(|_| ok_body()),
                wire::RM => op.rm(&path).map(|_| ok_body()),
                _ => op
                    .set_perms(&path, perms.expect("parsed above"))
                    .map(|_| ok_body()),
            }
        };
        match tx {
            Some(t) => {
                // Quotas count at commit, against the store as it is then.
                self.conns[c].txs.insert(h.tx_id, t);
            }
            None => {
                self.owned = owned;
                self.commit_main(acc, fired);
            }
        }
        r
    }

    fn parse_perms(rest: &[u8]) -> XsResult<Vec<Perm>> {
        let v = args(rest, rest.iter().filter(|&&b| b == 0).count())?;
        let perms: Option<Vec<Perm>> = v.iter().map(|s| Perm::parse(s)).collect();
        perms.filter(|p| !p.is_empty()).ok_or(XsError::Inval)
    }

    fn watch(&mut self, dom: u16, h: Header, payload: &[u8]) -> XsResult<()> {
        let a = args(payload, 2)?;
        let given = std::str::from_utf8(a[0]).map_err(|_| XsError::Inval)?;
        let (path, relative) = if given.starts_with('@') {
            if !given
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'@')
            {
                return Err(XsError::Inval);
            }
            (given.to_string(), false)
        } else {
            (Self::canonical(dom, given)?, !given.starts_with('/'))
        };
        let token = a[1].to_vec();
        let c = usize::from(dom);
        let conn = &mut self.conns[c];
        if conn
            .watches
            .iter()
            .any(|w| w.path == path && w.token == token)
        {
            return Err(XsError::Exist);
        }
        if dom != 0 && conn.watches.len() >= quota::WATCHES {
            return Err(XsError::TooBig);
        }
        conn.watches.push(Watch {
            path,
            token: token.clone(),
            relative,
        });
        self.queue(c, wire::WATCH, h.req_id, h.tx_id, &ok_body());
        // xenstored fires every new watch once, for its own path.
        self.queue_event(c, given, &token);
        Ok(())
    }

    fn unwatch(&mut self, dom: u16, payload: &[u8]) -> XsResult<()> {
        let a = args(payload, 2)?;
        let given = std::str::from_utf8(a[0]).map_err(|_| XsError::Inval)?;
        let path = if given.starts_with('@') {
            given.to_string()
        } else {
            Self::canonical(dom, given)?
        };
        let conn = &mut self.conns[usize::from(dom)];
        let before = conn.watches.len();
        conn.watches
            .retain(|w| !(w.path == path && w.token == a[1]));
        if conn.watches.len() == before {
            return Err(XsError::NoEnt);
        }
        Ok(())
    }

    fn tx_start(&mut self, dom: u16, h: Header) -> XsResult<Vec<u8>> {
        if h.tx_id != 0 {
            return Err(XsError::Busy);
        }
        let tree = self.tree.clone();
        let conn = &mut self.conns[usize::from(dom)];
        if dom != 0 && conn.txs.len() >= quota::TRANSACTIONS {
            return Err(XsError::NoSpc);
        }
        conn.next_tx = conn.next_tx.wrapping_add(1).max(1);
        while conn.txs.contains_key(&conn.next_tx) {
            conn.next_tx = conn.next_tx.wrapping_add(1).max(1);
        }
        let id = conn.next_tx;
        conn.txs.insert(
            id,
            Transaction {
                tree,
                acc: Access::default(),
                fired: Vec::new(),
            },
        );
        Ok(format!("{id}\0").into_bytes())
    }

    fn tx_end(&mut self, dom: u16, h: Header, payload: &[u8]) -> XsResult<()> {
        let commit = match args(payload, 1)?[0] {
            b"T" => true,
            b"F" => false,
            _ => return Err(XsError::Inval),
        };
        let c = usize::from(dom);
        let t = self.conns[c].txs.remove(&h.tx_id).ok_or(XsError::NoEnt)?;
        if !commit {
            return Ok(());
        }
        let stale = t
            .acc
            .seen
            .iter()
            .any(|(p, g)| self.tree.nodes.get(p).map(|n| n.gen) != *g);
        if stale {
            self.counters.conflicts += 1;
            return Err(XsError::Again);
        }
        if dom != 0 {
            let created = t
                .acc
                .changed
                .iter()
                .filter(|p| !self.tree.nodes.contains_key(*p) && t.tree.nodes.contains_key(*p))
                .count();
            let have = self.owned.get(&dom).copied().unwrap_or(0);
            if have + created > quota::NODES {
                return Err(XsError::NoSpc);
            }
        }
        for p in &t.acc.changed {
            match t.tree.nodes.get(p) {
                Some(n) => {
                    let fresh = !self.tree.nodes.contains_key(p);
                    if fresh && n.perms[0].dom != 0 {
                        *self.owned.entry(n.perms[0].dom).or_default() += 1;
                    }
                    self.tree.nodes.insert(p.clone(), n.clone());
                }
                None => {
                    if let Some(old) = self.tree.nodes.remove(p) {
                        if let Some(c) = self.owned.get_mut(&old.perms[0].dom) {
                            *c = c.saturating_sub(1);
                        }
                    }
                }
            }
        }
        self.commit_main(t.acc, t.fired);
        Ok(())
    }

    fn drop_transactions(&mut self, dom: u16) {
        self.conns[usize::from(dom)].txs.clear();
    }

    /// INTRODUCE `domid\0mfn\0port\0` (dom0 only): re-introduces a built
    /// domain that was released, with its own ring and port (the
    /// simulator builds every domain's ring; there is nothing else to
    /// map).
    fn introduce(&mut self, dom: u16, payload: &[u8]) -> XsResult<()> {
        if dom != 0 {
            return Err(XsError::Acces);
        }
        let a = args(payload, 3)?;
        let (id, mfn, port) = (number(a[0])?, number(a[1])?, number(a[2])?);
        let conn = usize::try_from(id)
            .ok()
            .and_then(|i| self.conns.get_mut(i))
            .ok_or(XsError::Inval)?;
        if conn.dead || mfn << 12 != conn.ring_ma || port != u64::from(conn.port.0) {
            return Err(XsError::Inval);
        }
        if !conn.introduced {
            conn.introduced = true;
            conn.broken = false;
            conn.inbuf.clear();
            conn.out.clear();
            self.fire_special("@introduceDomain");
        }
        Ok(())
    }

    /// Domain `dom` shut down: its connection is released (watches,
    /// transactions and queued output dropped, `@releaseDomain` fired) and
    /// never introduced again.
    pub fn domain_shutdown(&mut self, dom: u16) {
        let Some(conn) = self.conns.get_mut(usize::from(dom)) else {
            return;
        };
        conn.dead = true;
        if conn.introduced {
            self.drop_conn(usize::from(dom));
        }
    }

    fn drop_conn(&mut self, c: usize) {
        let conn = &mut self.conns[c];
        conn.introduced = false;
        conn.watches.clear();
        conn.txs.clear();
        conn.inbuf.clear();
        conn.out.clear();
        self.fire_special("@releaseDomain");
    }

    /// RELEASE `domid\0` (dom0 only): the domain's connection is dropped
    /// with its watches and transactions.
    fn release(&mut self, dom: u16, payload: &[u8]) -> XsResult<()> {
        if dom != 0 {
            return Err(XsError::Acces);
        }
        let id = number(args(payload, 1)?[0])?;
        if id == 0 {
            return Err(XsError::Inval);
        }
        let c = usize::try_from(id)
            .ok()
            .filter(|&i| self.conns.get(i).is_some_and(|c| c.introduced))
            .ok_or(XsError::NoEnt)?;
        self.drop_conn(c);
        Ok(())
    }
}
