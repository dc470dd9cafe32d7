use super::*;

/// Two domains (0 privileged, 1 not) with rings nowhere (these tests
/// drive [`Xenstored::request`] directly).
fn store() -> Xenstored {
    let mut xs = Xenstored::default();
    xs.add_domain(0, "d0", 0x0100_0000, Port(2));
    xs.add_domain(1, "d1", 0x0200_0000, Port(2));
    xs
}

/// Parses the messages queued for `dom` and empties its queue.
fn take(xs: &mut Xenstored, dom: u16) -> Vec<(u32, u32, Vec<u8>)> {
    let out = std::mem::take(&mut xs.conns[usize::from(dom)].out);
    let mut v = Vec::new();
    let mut at = 0;
    while at < out.len() {
        let w = |i: usize| u32::from_le_bytes(out[at + 4 * i..at + 4 * i + 4].try_into().unwrap());
        let (ty, tx, len) = (w(0), w(2), w(3) as usize);
        v.push((ty, tx, out[at + 16..at + 16 + len].to_vec()));
        at += 16 + len;
    }
    v
}

/// One request; its reply (type, body). Events queued stay queued.
fn call(xs: &mut Xenstored, dom: u16, ty: u32, tx: u32, payload: &[u8]) -> (u32, Vec<u8>) {
    let keep = std::mem::take(&mut xs.conns[usize::from(dom)].out);
    xs.request(
        dom,
        Header {
            ty,
            req_id: 7,
            tx_id: tx,
        },
        payload,
    );
    let mut got = take(xs, dom);
    let mut out = keep;
    let at = got
        .iter()
        .position(|m| m.0 != wire::WATCH_EVENT)
        .expect("a reply");
    let first = got.remove(at);
    for (t, x, b) in got {
        xs.queue(usize::from(dom), t, 0, x, &b);
    }
    out.append(&mut xs.conns[usize::from(dom)].out);
    xs.conns[usize::from(dom)].out = out;
    (first.0, first.2)
}

fn err(e: &str) -> (u32, Vec<u8>) {
    (wire::ERROR, format!("{e}\0").into_bytes())
}

fn ok(ty: u32) -> (u32, Vec<u8>) {
    (ty, b"OK\0".to_vec())
}

fn events(xs: &mut Xenstored, dom: u16) -> Vec<String> {
    take(xs, dom)
        .into_iter()
        .filter(|m| m.0 == wire::WATCH_EVENT)
        .map(|m| String::from_utf8(m.2).unwrap().replace('\0', " "))
        .collect()
}

#[test]
fn homes_are_built_with_xen_default_permissions() {
    let mut xs = store();
    assert_eq!(
        call(&mut xs, 1, wire::READ, 0, b"domid\0"),
        (wire::READ, b"1".to_vec())
    );
    assert_eq!(
        call(&mut xs, 1, wire::GET_PERMS, 0, b"/local/domain/1\0"),
        (wire::GET_PERMS, b"n1\0".to_vec())
    );
    assert_eq!(
        call(&mut xs, 1, wire::DIRECTORY, 0, b"/local/domain/1\0"),
        (wire::DIRECTORY, b"domid\0name\0".to_vec())
    );
    // dom0 reads everything; domain 1 reads neither dom0's home nor /local.
    assert_eq!(
        call(&mut xs, 0, wire::READ, 0, b"/local/domain/1/name\0").1,
        b"d1"
    );
    assert_eq!(
        call(&mut xs, 1, wire::READ, 0, b"/local/domain/0/name\0"),
        err("EACCES")
    );
    assert_eq!(
        call(&mut xs, 1, wire::DIRECTORY, 0, b"/local\0"),
        err("EACCES")
    );
    // A missing node under a readable parent is ENOENT, under an
    // unreadable one EACCES.
    assert_eq!(call(&mut xs, 1, wire::READ, 0, b"nope\0"), err("ENOENT"));
    assert_eq!(
        call(&mut xs, 1, wire::READ, 0, b"/local/domain/0/nope\0"),
        err("EACCES")
    );
}

#[test]
fn writes_create_parents_owned_by_the_writer_and_rm_removes_subtrees() {
    let mut xs = store();
    assert_eq!(
        call(&mut xs, 1, wire::WRITE, 0, b"a/b/c\0hello"),
        ok(wire::WRITE)
    );
    assert_eq!(
        call(&mut xs, 1, wire::READ, 0, b"a/b/c\0"),
        (wire::READ, b"hello".to_vec())
    );
    assert_eq!(
        call(&mut xs, 1, wire::READ, 0, b"a/b\0"),
        (wire::READ, Vec::new())
    );
    assert_eq!(call(&mut xs, 1, wire::GET_PERMS, 0, b"a/b\0").1, b"n1\0");
    // dom0 creating under domain 1's home keeps the inherited owner.
    assert_eq!(
        call(&mut xs, 0, wire::WRITE, 0, b"/local/domain/1/x\0v"),
        ok(wire::WRITE)
    );
    assert_eq!(
        call(&mut xs, 0, wire::GET_PERMS, 0, b"/local/domain/1/x\0").1,
        b"n1\0"
    );
    assert_eq!(call(&mut xs, 1, wire::MKDIR, 0, b"a\0"), ok(wire::MKDIR));
    assert_eq!(call(&mut xs, 1, wire::RM, 0, b"a\0"), ok(wire::RM));
    assert_eq!(call(&mut xs, 1, wire::READ, 0, b"a/b/c\0"), err("ENOENT"));
    // Removing a missing node whose parent exists is fine; else ENOENT.
    assert_eq!(call(&mut xs, 1, wire::RM, 0, b"a\0"), ok(wire::RM));
    assert_eq!(call(&mut xs, 1, wire::RM, 0, b"a/b\0"), err("ENOENT"));
    assert_eq!(call(&mut xs, 0, wire::RM, 0, b"/\0"), err("EINVAL"));
    // Domain 1 cannot write outside what it may write.
    assert_eq!(
        call(&mut xs, 1, wire::WRITE, 0, b"/local/domain/0/x\0v"),
        err("EACCES")
    );
    assert_eq!(call(&mut xs, 1, wire::WRITE, 0, b"/tool\0v"), err("EACCES"));
}

#[test]
fn set_perms_grants_reads_and_only_owners_may_set() {
    let mut xs = store();
    call(
        &mut xs,
        0,
        wire::WRITE,
        0,
        b"/local/domain/0/backend/vif\0x",
    );
    assert_eq!(
        call(&mut xs, 1, wire::READ, 0, b"/local/domain/0/backend/vif\0"),
        err("EACCES")
    );
    assert_eq!(
        call(
            &mut xs,
            0,
            wire::SET_PERMS,
            0,
            b"/local/domain/0/backend/vif\0n0\0r1\0"
        ),
        ok(wire::SET_PERMS)
    );
    assert_eq!(
        call(&mut xs, 1, wire::READ, 0, b"/local/domain/0/backend/vif\0").1,
        b"x"
    );
    assert_eq!(
        call(
            &mut xs,
            1,
            wire::WRITE,
            0,
            b"/local/domain/0/backend/vif\0y"
        ),
        err("EACCES")
    );
    assert_eq!(
        call(
            &mut xs,
            1,
            wire::SET_PERMS,
            0,
            b"/local/domain/0/backend/vif\0b1\0"
        ),
        err("EACCES")
    );
    call(&mut xs, 1, wire::WRITE, 0, b"mine\0v");
    // An unprivileged owner may not give its node away.
    assert_eq!(
        call(&mut xs, 1, wire::SET_PERMS, 0, b"mine\0n0\0"),
        err("EPERM")
    );
    assert_eq!(
        call(&mut xs, 1, wire::SET_PERMS, 0, b"mine\0n1\0b0\0"),
        ok(wire::SET_PERMS)
    );
    for bad in [&b"mine\0"[..], b"mine\0x1\0", b"mine\0r\0", b"mine\0r1"] {
        assert_eq!(
            call(&mut xs, 1, wire::SET_PERMS, 0, bad),
            err("EINVAL"),
            "{bad:?}"
        );
    }
    assert_eq!(
        Perm::parse(b"b65535"),
        Some(Perm {
            dom: 65535,
            bits: 3
        })
    );
    assert_eq!(Perm::parse(b"r65536"), None);
}

#[test]
fn watches_fire_with_tokens_relative_paths_and_an_initial_event() {
    let mut xs = store();
    assert_eq!(
        call(&mut xs, 1, wire::WATCH, 0, b"dev\0tok\0"),
        ok(wire::WATCH)
    );
    assert_eq!(events(&mut xs, 1), ["dev tok "]);
    assert_eq!(
        call(&mut xs, 0, wire::WATCH, 0, b"/local/domain/1\0all\0"),
        ok(wire::WATCH)
    );
    assert_eq!(events(&mut xs, 0), ["/local/domain/1 all "]);
    call(&mut xs, 1, wire::WRITE, 0, b"dev/state\x001");
    call(&mut xs, 1, wire::WRITE, 0, b"other\x001");
    assert_eq!(events(&mut xs, 1), ["dev/state tok "]);
    assert_eq!(
        events(&mut xs, 0),
        [
            "/local/domain/1/dev/state all ",
            "/local/domain/1/other all "
        ]
    );
    // Removing a parent fires the watches inside it, with their own path.
    call(&mut xs, 1, wire::WATCH, 0, b"dev/state\0deep\0");
    events(&mut xs, 1);
    call(&mut xs, 1, wire::RM, 0, b"dev\0");
    assert_eq!(events(&mut xs, 1), ["dev tok ", "dev/state deep "]);
    assert_eq!(
        call(&mut xs, 1, wire::WATCH, 0, b"dev\0tok\0"),
        err("EEXIST")
    );
    assert_eq!(
        call(&mut xs, 1, wire::UNWATCH, 0, b"dev\0tok\0"),
        ok(wire::UNWATCH)
    );
    assert_eq!(
        call(&mut xs, 1, wire::UNWATCH, 0, b"dev\0tok\0"),
        err("ENOENT")
    );
    assert_eq!(
        call(&mut xs, 1, wire::RESET_WATCHES, 0, b""),
        ok(wire::RESET_WATCHES)
    );
    call(&mut xs, 1, wire::WRITE, 0, b"dev/state\x002");
    assert!(events(&mut xs, 1).is_empty());
}

#[test]
fn watch_events_need_read_permission() {
    let mut xs = store();
    call(&mut xs, 1, wire::WATCH, 0, b"/local/domain/0/backend\0be\0");
    events(&mut xs, 1);
    call(
        &mut xs,
        0,
        wire::WRITE,
        0,
        b"/local/domain/0/backend/secret\0x",
    );
    assert!(events(&mut xs, 1).is_empty());
    call(
        &mut xs,
        0,
        wire::SET_PERMS,
        0,
        b"/local/domain/0/backend/secret\0n0\0r1\0",
    );
    assert_eq!(events(&mut xs, 1), ["/local/domain/0/backend/secret be "]);
}

#[test]
fn a_transaction_is_isolated_until_it_commits() {
    let mut xs = store();
    let (ty, id) = call(&mut xs, 1, wire::TRANSACTION_START, 0, b"\0");
    assert_eq!((ty, id.as_slice()), (wire::TRANSACTION_START, &b"1\0"[..]));
    call(&mut xs, 1, wire::WATCH, 0, b"t\0w\0");
    events(&mut xs, 1);
    assert_eq!(
        call(&mut xs, 1, wire::WRITE, 1, b"t/x\0in-tx"),
        ok(wire::WRITE)
    );
    assert_eq!(call(&mut xs, 1, wire::READ, 1, b"t/x\0").1, b"in-tx");
    assert_eq!(call(&mut xs, 1, wire::READ, 0, b"t/x\0"), err("ENOENT"));
    assert!(events(&mut xs, 1).is_empty());
    assert_eq!(
        call(&mut xs, 1, wire::TRANSACTION_END, 1, b"T\0"),
        ok(wire::TRANSACTION_END)
    );
    assert_eq!(call(&mut xs, 1, wire::READ, 0, b"t/x\0").1, b"in-tx");
    assert_eq!(events(&mut xs, 1), ["t/x w "]);
    // An aborted one changes nothing; an ended one is gone.
    call(&mut xs, 1, wire::TRANSACTION_START, 0, b"\0");
    call(&mut xs, 1, wire::WRITE, 2, b"t/x\0dropped");
    assert_eq!(
        call(&mut xs, 1, wire::TRANSACTION_END, 2, b"F\0"),
        ok(wire::TRANSACTION_END)
    );
    assert_eq!(call(&mut xs, 1, wire::READ, 0, b"t/x\0").1, b"in-tx");
    assert_eq!(
        call(&mut xs, 1, wire::TRANSACTION_END, 2, b"T\0"),
        err("ENOENT")
    );
    assert_eq!(call(&mut xs, 1, wire::READ, 9, b"t/x\0"), err("ENOENT"));
    assert_eq!(
        call(&mut xs, 1, wire::TRANSACTION_START, 3, b"\0"),
        err("EBUSY")
    );
    call(&mut xs, 1, wire::TRANSACTION_START, 0, b"\0");
    assert_eq!(
        call(&mut xs, 1, wire::TRANSACTION_END, 3, b"X\0"),
        err("EINVAL")
    );
}

#[test]
fn a_transaction_that_read_a_node_changed_since_fails_with_eagain() {
    let mut xs = store();
    call(&mut xs, 0, wire::WRITE, 0, b"/local/domain/1/n\x000");
    call(&mut xs, 1, wire::TRANSACTION_START, 0, b"\0");
    assert_eq!(call(&mut xs, 1, wire::READ, 1, b"n\0").1, b"0");
    call(&mut xs, 1, wire::WRITE, 1, b"n\x001");
    // Someone else changes it meanwhile.
    call(&mut xs, 0, wire::WRITE, 0, b"/local/domain/1/n\x005");
    assert_eq!(
        call(&mut xs, 1, wire::TRANSACTION_END, 1, b"T\0"),
        err("EAGAIN")
    );
    assert_eq!(call(&mut xs, 1, wire::READ, 0, b"n\0").1, b"5");
    assert_eq!(xs.counters().conflicts, 1);
    // Retried, it commits.
    call(&mut xs, 1, wire::TRANSACTION_START, 0, b"\0");
    let v = call(&mut xs, 1, wire::READ, 2, b"n\0").1;
    assert_eq!(v, b"5");
    call(&mut xs, 1, wire::WRITE, 2, b"n\x006");
    assert_eq!(
        call(&mut xs, 1, wire::TRANSACTION_END, 2, b"T\0"),
        ok(wire::TRANSACTION_END)
    );
    assert_eq!(
        call(&mut xs, 0, wire::READ, 0, b"/local/domain/1/n\0").1,
        b"6"
    );
    // Two transactions creating siblings conflict (both change the parent);
    // one touching an unrelated node does not.
    call(&mut xs, 1, wire::TRANSACTION_START, 0, b"\0");
    call(&mut xs, 1, wire::TRANSACTION_START, 0, b"\0");
    call(&mut xs, 1, wire::WRITE, 3, b"d/a\0x");
    call(&mut xs, 1, wire::WRITE, 4, b"d/b\0x");
    assert_eq!(
        call(&mut xs, 1, wire::TRANSACTION_END, 3, b"T\0"),
        ok(wire::TRANSACTION_END)
    );
    assert_eq!(
        call(&mut xs, 1, wire::TRANSACTION_END, 4, b"T\0"),
        err("EAGAIN")
    );
    call(&mut xs, 1, wire::TRANSACTION_START, 0, b"\0");
    call(&mut xs, 1, wire::WRITE, 5, b"n\x007");
    call(&mut xs, 1, wire::WRITE, 0, b"d/a\0y");
    assert_eq!(
        call(&mut xs, 1, wire::TRANSACTION_END, 5, b"T\0"),
        ok(wire::TRANSACTION_END)
    );
}

#[test]
fn limits_and_malformed_arguments_get_xen_errors() {
    let mut xs = store();
    let big = [b"v\0".as_slice(), &[b'x'; quota::ENTRY_SIZE + 1]].concat();
    assert_eq!(call(&mut xs, 1, wire::WRITE, 0, &big), err("ENOSPC"));
    let long = [vec![b'a'; wire::REL_PATH_MAX + 1], vec![0]].concat();
    assert_eq!(call(&mut xs, 1, wire::READ, 0, &long), err("EINVAL"));
    for bad in [&b"a//b\0"[..], b"a/\0", b"a b\0", b"a\0b\0", b"no-nul"] {
        assert_eq!(
            call(&mut xs, 1, wire::READ, 0, bad),
            err("EINVAL"),
            "{bad:?}"
        );
    }
    assert_eq!(call(&mut xs, 1, 99, 0, b"\0"), err("ENOSYS"));
    assert_eq!(
        call(&mut xs, 1, wire::GET_DOMAIN_PATH, 0, b"7\0").1,
        b"/local/domain/7\0"
    );
    assert_eq!(
        call(&mut xs, 1, wire::GET_DOMAIN_PATH, 0, b"x\0"),
        err("EINVAL")
    );
    for i in 0..quota::WATCHES {
        let p = format!("w{i}\0t\0");
        assert_eq!(
            call(&mut xs, 1, wire::WATCH, 0, p.as_bytes()),
            ok(wire::WATCH)
        );
    }
    assert_eq!(
        call(&mut xs, 1, wire::WATCH, 0, b"one-more\0t\0"),
        err("E2BIG")
    );
    for _ in 0..quota::TRANSACTIONS {
        assert_eq!(
            call(&mut xs, 1, wire::TRANSACTION_START, 0, b"\0").0,
            wire::TRANSACTION_START
        );
    }
    assert_eq!(
        call(&mut xs, 1, wire::TRANSACTION_START, 0, b"\0"),
        err("ENOSPC")
    );
    // Only dom0 may introduce or release.
    assert_eq!(call(&mut xs, 1, wire::RELEASE, 0, b"1\0"), err("EACCES"));
    assert_eq!(
        call(&mut xs, 1, wire::IS_DOMAIN_INTRODUCED, 0, b"1\0").1,
        b"T\0"
    );
    assert_eq!(
        call(&mut xs, 0, wire::RELEASE, 0, b"1\0"),
        ok(wire::RELEASE)
    );
    assert_eq!(
        call(&mut xs, 0, wire::IS_DOMAIN_INTRODUCED, 0, b"1\0").1,
        b"F\0"
    );
    assert_eq!(
        call(&mut xs, 0, wire::INTRODUCE, 0, b"1\x005\x002\0"),
        err("EINVAL")
    );
    let intro = format!("1\0{}\x002\0", 0x0200_0000u64 >> 12);
    assert_eq!(
        call(&mut xs, 0, wire::INTRODUCE, 0, intro.as_bytes()),
        ok(wire::INTRODUCE)
    );
    assert_eq!(
        call(&mut xs, 0, wire::IS_DOMAIN_INTRODUCED, 0, b"1\0").1,
        b"T\0"
    );
}

#[test]
fn a_domain_that_shut_down_gets_no_more_events_and_dom0_hears_of_it() {
    let mut xs = store();
    call(&mut xs, 0, wire::WATCH, 0, b"@releaseDomain\0rel\0");
    call(&mut xs, 1, wire::WATCH, 0, b"x\0t\0");
    events(&mut xs, 0);
    events(&mut xs, 1);
    xs.domain_shutdown(1);
    assert_eq!(events(&mut xs, 0), ["@releaseDomain rel "]);
    call(&mut xs, 0, wire::WRITE, 0, b"/local/domain/1/x\0v");
    assert!(xs.conns[1].out.is_empty());
    assert_eq!(
        call(&mut xs, 0, wire::IS_DOMAIN_INTRODUCED, 0, b"1\0").1,
        b"F\0"
    );
    let intro = format!("1\0{}\02\0", 0x0200_0000u64 >> 12);
    assert_eq!(
        call(&mut xs, 0, wire::INTRODUCE, 0, intro.as_bytes()),
        err("EINVAL")
    );
    // mkdir of an existing node needs WRITE on it.
    assert_eq!(
        call(&mut xs, 0, wire::MKDIR, 0, b"/local/domain/0/d\0"),
        ok(wire::MKDIR)
    );
    call(
        &mut xs,
        0,
        wire::SET_PERMS,
        0,
        b"/local/domain/0/d\0n0\0r2\0",
    );
    xs.add_domain(2, "d2", 0x0300_0000, Port(2));
    assert_eq!(
        call(&mut xs, 2, wire::MKDIR, 0, b"/local/domain/0/d\0"),
        err("EACCES")
    );
}

#[test]
fn domains_own_at_most_their_node_quota() {
    let mut xs = store();
    let base = xs.owned[&1];
    assert_eq!(base, 3, "home, domid, name");
    for i in 0..quota::NODES - base {
        let p = format!("n{i}\0");
        assert_eq!(
            call(&mut xs, 1, wire::WRITE, 0, p.as_bytes()),
            ok(wire::WRITE),
            "{i}"
        );
    }
    assert_eq!(call(&mut xs, 1, wire::WRITE, 0, b"last\0"), err("ENOSPC"));
    call(&mut xs, 1, wire::RM, 0, b"n0\0");
    assert_eq!(call(&mut xs, 1, wire::WRITE, 0, b"last\0"), ok(wire::WRITE));
}

mod ring_tests {
    //! The rings, through EVTCHNOP_send on a real domain's xenstore port.
    use crate::abi::{evtchnop, hypercall as nr};
    use crate::hypervisor::Effect;
    use crate::ids::DomainId;
    use crate::testenv::*;

    const RSP: u64 = 1024;

    struct Ring {
        e: Env,
    }

    impl Ring {
        fn new() -> Ring {
            Ring {
                e: env_rings(&[1, 1], true),
            }
        }

        fn va(&self, d: u16) -> u64 {
            self.e.hv.domain(DomainId(d)).unwrap().layout().xenstore_va
        }

        fn put_u32(&mut self, d: u16, off: u64, v: u32) {
            let va = self.va(d) + off;
            self.e.write(d, va, &v.to_le_bytes());
        }

        fn u32(&mut self, d: u16, off: u64) -> u32 {
            let va = self.va(d) + off;
            self.e.read_u32(d, va)
        }

        /// Appends `bytes` to domain `d`'s request ring.
        fn send(&mut self, d: u16, bytes: &[u8]) {
            let prod = self.u32(d, 2052);
            for (i, b) in bytes.iter().enumerate() {
                let at = (prod + i as u32) % 1024;
                let va = self.va(d) + u64::from(at);
                self.e.write(d, va, &[*b]);
            }
            self.put_u32(d, 2052, prod + bytes.len() as u32);
        }

        /// Notifies the xenstore port; returns the domains raised.
        fn kick(&mut self, d: u16) -> Vec<u16> {
            let port = self.e.hv.domain(DomainId(d)).unwrap().ring_ports.xenstore;
            self.e.write(d, SCRATCH, &port.0.to_le_bytes());
            let (rc, o) = self.e.call(
                d,
                0,
                0,
                nr::EVENT_CHANNEL_OP,
                [evtchnop::SEND, SCRATCH, 0, 0, 0],
            );
            assert_eq!(rc, 0);
            o.effects
                .iter()
                .filter_map(|f| match f {
                    Effect::Raise(r) => Some(r.domain.0),
                    _ => None,
                })
                .collect()
        }

        /// Takes every response byte.
        fn replies(&mut self, d: u16) -> Vec<u8> {
            let (cons, prod) = (self.u32(d, 2056), self.u32(d, 2060));
            let v = (cons..prod)
                .map(|i| {
                    let va = self.va(d) + RSP + u64::from(i % 1024);
                    self.e.read(d, va, 1)[0]
                })
                .collect();
            self.put_u32(d, 2056, prod);
            v
        }
    }

    fn msg(ty: u32, tx: u32, payload: &[u8]) -> Vec<u8> {
        let mut m = Vec::new();
        for w in [ty, 1, tx, payload.len() as u32] {
            m.extend_from_slice(&w.to_le_bytes());
        }
        m.extend_from_slice(payload);
        m
    }

    #[test]
    fn requests_are_answered_on_the_ring_and_the_port_raised() {
        let mut r = Ring::new();
        r.send(1, &msg(2, 0, b"domid\0"));
        assert_eq!(r.kick(1), [1]);
        assert_eq!(r.replies(1), msg(2, 0, b"1"));
        // A bad transaction id is ENOENT, as xenstored answers.
        r.send(1, &msg(2, 42, b"domid\0"));
        r.kick(1);
        assert_eq!(r.replies(1), msg(16, 42, b"ENOENT\0"));
    }

    #[test]
    fn unknown_types_and_malformed_payloads_get_xen_errors_on_the_ring() {
        let mut r = Ring::new();
        r.send(1, &msg(99, 0, b"x\0"));
        r.send(1, &msg(2, 0, b"no-nul"));
        r.send(1, &msg(7, 0, b"T\0"));
        r.send(1, &msg(6, 5, b"\0"));
        assert_eq!(r.kick(1), [1]);
        let want = [
            msg(16, 0, b"ENOSYS\0"),
            msg(16, 0, b"EINVAL\0"),
            msg(16, 0, b"ENOENT\0"),
            msg(16, 5, b"EBUSY\0"),
        ]
        .concat();
        assert_eq!(r.replies(1), want);
        assert_eq!(r.e.hv.xenstored.counters().errors, 4);
    }

    #[test]
    fn a_request_larger_than_the_ring_arrives_in_pieces() {
        let mut r = Ring::new();
        let value = vec![b'v'; 2000];
        let m = msg(11, 0, &[b"big\0".as_slice(), &value].concat());
        r.send(1, &m[..1000]);
        assert!(r.kick(1).is_empty(), "nothing answered yet");
        r.send(1, &m[1000..]);
        assert_eq!(r.kick(1), [1]);
        assert_eq!(r.replies(1), msg(11, 0, b"OK\0"));
        assert_eq!(
            r.e.hv.xenstored.value("/local/domain/1/big"),
            Some(value.as_slice())
        );
    }

    #[test]
    fn watch_events_reach_a_domain_that_is_not_writing_and_wait_on_a_full_ring() {
        let mut r = Ring::new();
        r.send(0, &msg(4, 0, b"/local/domain/1/data\0tok\0"));
        r.kick(0);
        let mut want = msg(4, 0, b"OK\0");
        want.extend(msg(15, 0, b"/local/domain/1/data\0tok\0"));
        // Events carry req_id 0.
        want[19 + 4..19 + 8].copy_from_slice(&0u32.to_le_bytes());
        assert_eq!(r.replies(0), want);
        // Fill dom0's response ring but 24 bytes, then domain 1 writes twice.
        let cons = r.u32(0, 2056);
        r.put_u32(0, 2060, cons + 1000);
        r.send(1, &msg(11, 0, b"data/a\0x"));
        r.send(1, &msg(11, 0, b"data/b\0x"));
        assert_eq!(r.kick(1), [0, 1], "dom0's port is raised for what fitted");
        assert_eq!(r.u32(0, 2060), cons + 1024, "the ring is full");
        r.put_u32(0, 2056, cons + 1000);
        let mut got = r.replies(0);
        assert_eq!(got.len(), 24);
        assert_eq!(r.kick(0), [0], "the rest is flushed when dom0 kicks");
        got.extend(r.replies(0));
        let ev = |p: &[u8]| msg(15, 0, &[p, b"\0tok\0"].concat());
        let mut want = ev(b"/local/domain/1/data/a");
        want.extend(ev(b"/local/domain/1/data/b"));
        for w in want.chunks_mut(43) {
            w[4..8].copy_from_slice(&0u32.to_le_bytes());
        }
        assert_eq!(got, want);
    }

    #[test]
    fn an_oversize_header_makes_the_connection_bad() {
        let mut r = Ring::new();
        let mut m = msg(2, 0, b"domid\0");
        m[12..16].copy_from_slice(&4097u32.to_le_bytes());
        r.send(1, &m);
        assert!(r.kick(1).is_empty());
        assert_eq!(r.e.hv.xenstored.counters().bad_connections, 1);
        r.send(1, &msg(2, 0, b"domid\0"));
        assert!(r.kick(1).is_empty(), "a bad connection is ignored");
        // Other domains are still served; corrupt indices are bad too.
        let cons = r.u32(0, 2048);
        r.put_u32(0, 2052, cons + 5000);
        assert!(r.kick(0).is_empty());
        assert_eq!(r.e.hv.xenstored.counters().bad_connections, 2);
    }
}
