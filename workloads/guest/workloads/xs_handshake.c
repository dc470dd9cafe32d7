/*
 * xs-handshake: the xenbus frontend/backend handshake between two domains
 * through xenstore, as a split driver's would run. Domain 0 is the
 * backend (and the toolstack that creates both directories), domain 1 the
 * frontend; only VCPU 0 of each takes part.
 *
 *   BE = /local/domain/<be>/backend/vif/<fe>/<dev>   owner be, r<fe>
 *   FE = /local/domain/<fe>/device/vif/<dev>         owner fe, r<be>
 *
 * The backend creates both in one transaction (state Initialising), then
 * goes InitWait. The frontend allocates an event channel and publishes it
 * with state Initialised in a transaction that first conflicts on purpose
 * (it reads BE/generation, asks the backend to bump it, and must see its
 * commit fail with EAGAIN, then retries). The backend binds the channel,
 * sends one event and goes Connected; the frontend waits for the event,
 * goes Connected, checks that the backend's private node reads EACCES and
 * that BE/state refuses its write, then Closing; the backend follows to
 * Closing, the frontend to Closed, the backend to Closed; the frontend
 * removes its directory and the backend its own. Each side checks every
 * state it observes through its watch. Repeated
 * `rounds` times with device numbers 0, 1, ...
 * arg0: rounds (default 2).
 */
#include "rt.h"
#include "xs.h"
#include "xsnode.h"
#include "fmt.h"

WORKLOAD("xs-handshake", 2, 0, 0, 0, 0, 0, 0, 0);

enum {
	Unknown = 0, Initialising = 1, InitWait = 2, Initialised = 3, Connected = 4, Closing = 5,
	Closed = 6,
};


static char be[PATH], fe[PATH];
static u16 be_id, fe_id;
static volatile u64 channel_events;
static u64 conflicts, watch_events;

static void on_channel(u32 p, void *a)
{
	(void)p;
	(void)a;
	channel_events++;
}

/* Records the peer's states as seen: consecutive repeats collapse. */
struct seen {
	u64 states[16];
	u32 n;
};

static u64 observe(struct seen *s, const char *dir)
{
	char p[PATH];
	u64 v = Unknown;
	path(p, dir, "state");
	long rc = xs_read_u64(0, p, &v);
	if (rc == -XS_ENOENT)
		return Unknown;
	check(rc, "read", p);
	if (!s->n || s->states[s->n - 1] != v) {
		if (s->n == 16)
			guest_fail("peer went through more than 16 states");
		s->states[s->n++] = v;
	}
	return v;
}

/* Waits (on watch events) until the peer's state is `want`. */
static void wait_state(struct seen *s, const char *dir, u64 want, void (*on_event)(void))
{
	char p[PATH], tok[32];
	while (observe(s, dir) != want) {
		xs_next_event(p, sizeof(p), tok, sizeof(tok));
		watch_events++;
		if (on_event)
			on_event();
	}
}

/*
 * Every state observed must be one the peer may take, in the protocol's
 * order (a state the peer held only briefly may be missed: it is read
 * when the event is handled), and the last must be `last`.
 */
static void expect(const struct seen *s, const u64 *allowed, u32 n, u64 last, const char *who)
{
	u32 at = 0;
	for (u32 i = 0; i < s->n; i++) {
		while (at < n && allowed[at] != s->states[i])
			at++;
		if (at == n)
			goto bad;
	}
	if (s->n && s->states[s->n - 1] == last)
		return;
bad:
	printf("%s saw states:", who);
	for (u32 i = 0; i < s->n; i++)
		printf(" %lu", s->states[i]);
	printf("\n");
	guest_fail("%s saw a state sequence the protocol does not allow", who);
}

static u64 kicks_seen;

/* Backend side: bumps BE/generation each time the frontend's tx-kick moves. */
static void backend_poll_kick(void)
{
	char p[PATH];
	u64 k;
	path(p, fe, "tx-kick");
	long rc = xs_read_u64(0, p, &k);
	if (rc == -XS_ENOENT)
		return;
	check(rc, "read", p);
	if (k != kicks_seen) {
		kicks_seen = k;
		write_num(0, be, "generation", read_num(be, "generation") + 1);
	}
}

static void backend_setup(u32 dev)
{
	char p[PATH];
	const char *be_perms[] = { "n0", "r0" };
	char fe_owner[8], fe_reader[8], be_reader[8];
	smp_snprintf(fe_owner, sizeof(fe_owner), "n%u", fe_id);
	smp_snprintf(fe_reader, sizeof(fe_reader), "r%u", be_id);
	smp_snprintf(be_reader, sizeof(be_reader), "r%u", fe_id);
	be_perms[1] = be_reader;
	const char *fe_perms[] = { fe_owner, fe_reader };
	for (;;) {
		u32 tx;
		check(xs_tx_start(&tx), "transaction_start", "");
		check(xs_mkdir(tx, be), "mkdir", be);
		check(xs_set_perms(tx, be, be_perms, 2), "set_perms", be);
		path(p, be, "frontend");
		check(xs_write(tx, p, fe), "write", p);
		write_num(tx, be, "frontend-id", fe_id);
		write_num(tx, be, "generation", 0);
		write_num(tx, be, "state", Initialising);
		check(xs_mkdir(tx, fe), "mkdir", fe);
		check(xs_set_perms(tx, fe, fe_perms, 2), "set_perms", fe);
		path(p, fe, "backend");
		check(xs_write(tx, p, be), "write", p);
		write_num(tx, fe, "backend-id", be_id);
		write_num(tx, fe, "state", Initialising);
		long rc = xs_tx_end(tx, 1);
		if (rc == -XS_EAGAIN) {
			conflicts++;
			continue;
		}
		check(rc, "transaction_end", be);
		break;
	}
	(void)dev;
}

static void backend(u32 dev)
{
	struct seen s = { .n = 0 };
	char p[PATH];
	smp_snprintf(be, PATH, "/local/domain/%u/backend/vif/%u/%u", be_id, fe_id, dev);
	smp_snprintf(fe, PATH, "/local/domain/%u/device/vif/%u", fe_id, dev);
	kicks_seen = 0;
	backend_setup(dev);
	check(xs_watch(fe, "fe"), "watch", fe);
	write_num(0, be, "state", InitWait);
	wait_state(&s, fe, Initialised, backend_poll_kick);
	u64 remote = read_num(fe, "event-channel");
	u32 local;
	long rc = evtchn_bind_interdomain(fe_id, (u32)remote, &local);
	if (rc < 0)
		guest_fail("bind_interdomain(%u, %lu) returned %ld", fe_id, remote, rc);
	check(evtchn_send(local), "send on", "the frontend's channel");
	write_num(0, be, "state", Connected);
	wait_state(&s, fe, Closing, backend_poll_kick);
	write_num(0, be, "state", Closing);
	wait_state(&s, fe, Closed, backend_poll_kick);
	write_num(0, be, "state", Closed);
	/* The frontend removes its directory once it has seen Closed. */
	wait_state(&s, fe, Unknown, 0);
	check(xs_unwatch(fe, "fe"), "unwatch", fe);
	evtchn_close(local);
	const u64 allowed[] = { Initialising, Initialised, Connected, Closing, Closed };
	expect(&s, allowed, 5, Closed, "backend");
	check(xs_rm(0, be), "rm", be);
	path(p, be, "state");
	if (xs_read(0, p, p, sizeof(p)) != -XS_ENOENT)
		guest_fail("%s/state still there after rm", be);
}

/* The frontend's conflicting transaction, then its retry. */
static void frontend_publish(u32 port, u32 round)
{
	for (u32 attempt = 0;; attempt++) {
		u32 tx;
		u64 gen;
		char p[PATH];
		check(xs_tx_start(&tx), "transaction_start", "");
		path(p, be, "generation");
		check(xs_read_u64(tx, p, &gen), "read in transaction", p);
		if (attempt == 0) {
			/* Ask the backend to change a node this transaction read. */
			write_num(0, fe, "tx-kick", round + 1);
			char ep[PATH], tok[32];
			u64 now = gen;
			while (now == gen) {
				xs_next_event(ep, sizeof(ep), tok, sizeof(tok));
				watch_events++;
				now = read_num(be, "generation");
			}
		}
		write_num(tx, fe, "event-channel", port);
		write_num(tx, fe, "state", Initialised);
		long rc = xs_tx_end(tx, 1);
		if (attempt == 0) {
			if (rc != -XS_EAGAIN)
				guest_fail("the forced conflict committed with %ld, not -EAGAIN", rc);
			conflicts++;
			continue;
		}
		check(rc, "transaction_end", fe);
		return;
	}
}

static void frontend_checks(void)
{
	char p[PATH], v[PATH];
	smp_snprintf(p, PATH, "/local/domain/%u/private/key", be_id);
	long rc = xs_read(0, p, v, sizeof(v));
	if (rc != -XS_EACCES)
		guest_fail("read of the backend's private %s returned %ld, not -EACCES", p, rc);
	path(p, be, "state");
	rc = xs_write(0, p, "4");
	if (rc != -XS_EACCES)
		guest_fail("write of %s returned %ld, not -EACCES", p, rc);
	check(xs_get_perms(0, fe, v, sizeof(v)), "get_perms", fe);
	char want[24];
	smp_snprintf(want, sizeof(want), "n%u,r%u", fe_id, be_id);
	if (memcmp(v, want, strlen(want) + 1))
		guest_fail("%s has permissions %s, expected %s", fe, v, want);
}

static void frontend(u32 dev)
{
	struct seen s = { .n = 0 };
	char p[PATH], tok[32];
	char rel[PATH];
	smp_snprintf(rel, PATH, "device/vif/%u/backend", dev);
	smp_snprintf(fe, PATH, "/local/domain/%u/device/vif/%u", fe_id, dev);
	/* Wait for the toolstack to create our directory. */
	check(xs_watch(rel, "setup"), "watch", rel);
	for (;;) {
		long rc = xs_read(0, rel, be, sizeof(be));
		if (rc >= 0)
			break;
		if (rc != -XS_ENOENT)
			guest_fail("read %s returned %ld", rel, rc);
		xs_next_event(p, sizeof(p), tok, sizeof(tok));
		watch_events++;
	}
	check(xs_unwatch(rel, "setup"), "unwatch", rel);
	if (read_num(fe, "backend-id") != be_id)
		guest_fail("%s/backend-id is not %u", fe, be_id);
	check(xs_watch(be, "be"), "watch", be);
	wait_state(&s, be, InitWait, 0);
	u32 port;
	long rc = evtchn_alloc_unbound(be_id, &port);
	if (rc < 0)
		guest_fail("alloc_unbound(%u) returned %ld", be_id, rc);
	channel_events = 0;
	evtchn_set_handler(port, 0, on_channel, 0);
	frontend_publish(port, dev);
	wait_state(&s, be, Connected, 0);
	WAIT_EVENT(channel_events > 0);
	write_num(0, fe, "state", Connected);
	frontend_checks();
	write_num(0, fe, "state", Closing);
	wait_state(&s, be, Closing, 0);
	write_num(0, fe, "state", Closed);
	wait_state(&s, be, Closed, 0);
	check(xs_unwatch(be, "be"), "unwatch", be);
	check(xs_rm(0, fe), "rm", fe);
	evtchn_close(port);
	const u64 allowed[] = { Initialising, InitWait, Connected, Closing, Closed };
	expect(&s, allowed, 5, Closed, "frontend");
}

void workload_init(void)
{
	if (smpsim_params.domain_index > 1)
		guest_fail("domain_index %u: this workload has two domains", smpsim_params.domain_index);
	if (!arg(0) || arg(0) > 64)
		guest_fail("rounds %lu: 1 to 64", arg(0));
	xs_init();
	char b[16];
	check(xs_read(0, "domid", b, sizeof(b)), "read", "domid");
	u16 me = 0;
	for (char *c = b; *c; c++)
		me = (u16)(me * 10 + (u16)(*c - '0'));
	u16 peer = (u16)smpsim_params.peer_domid;
	be_id = smpsim_params.domain_index == 0 ? me : peer;
	fe_id = smpsim_params.domain_index == 0 ? peer : me;
	if (smpsim_params.domain_index == 0) {
		char p[PATH];
		smp_snprintf(p, PATH, "/local/domain/%u/private/key", me);
		check(xs_write(0, p, "secret"), "write", p);
	}
}

void workload_run(struct cpu *c)
{
	if (c->id != 0)
		return;
	for (u32 r = 0; r < arg(0); r++) {
		if (smpsim_params.domain_index == 0)
			backend(r);
		else
			frontend(r);
	}
}

void workload_check(void)
{
	u64 want = smpsim_params.domain_index == 0 ? 0 : arg(0);
	if (conflicts != want)
		guest_fail("%lu transaction conflicts, expected %lu", conflicts, want);
	printf("xs-handshake: domain %u (%s) done: %lu rounds, %lu conflicts retried, %lu watch "
	       "events handled, %lu received\n",
	       smpsim_params.domain_index, smpsim_params.domain_index ? "frontend" : "backend",
	       arg(0), conflicts, watch_events, xs_events_seen());
}
