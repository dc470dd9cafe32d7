/*
 * splitdrv: a split-driver pair moving data zero-copy through granted
 * pages, as Xen's blkfront/blkback do. Domain 0 is the backend (and the
 * toolstack that creates both xenstore directories), domain 1 the
 * frontend; only VCPU 0 of each takes part, the other VCPUs finish.
 *
 *   BE = /local/domain/<be>/backend/vbd/<fe>/0   owner be, r<fe>
 *   FE = /local/domain/<fe>/device/vbd/0         owner fe, r<be>
 *
 * The frontend sizes its grant table with GNTTABOP_setup_table, maps the
 * frame and writes v1 entries there: the shared request ring (read-write),
 * `depth` x `pages` data pages (read-write) and one read-only page. It
 * publishes ring-ref, ro-ref and an unbound event channel in FE with
 * state Initialised. The backend binds the channel, maps the ring with
 * GNTTABOP_map_grant_ref at a host address, checks that a writable map of
 * the read-only grant is refused (GNTST_general_error, as Xen's
 * _set_status_v1) and that a GNTMAP_readonly map reads the right bytes,
 * then goes Connected. Each request names `pages` grant refs; the
 * backend maps them (one batch), checks the frontend's pattern word by
 * word, checksums it, complements every word in place through the
 * mapping, unmaps (one batch) and responds with the checksum. The
 * frontend keeps `depth` requests in flight, checks every response's
 * checksum and every byte of the transformed pages, and records each
 * request's round trip (push + notify -> response seen) in the
 * guest-measured evtchn_rtt histogram (lat.c). A CLOSE request ends the
 * data phase; the backend unmaps the ring and goes Closed; the frontend
 * ends every grant (refused while mapped, so this also checks that the
 * backend unmapped everything) and checks the read-only page unchanged.
 * arg0: requests (default 32); arg1: pages per request (default 2, at
 * most 11 as blkif); arg2: depth, requests in flight (default 4, <= 32).
 */
#include "rt.h"
#include "xs.h"
#include "xsnode.h"
#include "fmt.h"
#include "gnttab.h"

WORKLOAD("splitdrv", 32, 2, 4, 0, 0, 0, 0, 0);

enum { Initialising = 1, InitWait = 2, Initialised = 3, Connected = 4, Closing = 5, Closed = 6 };

#define MAX_PAGES 11 /* BLKIF_MAX_SEGMENTS_PER_REQUEST */
#define MAX_DEPTH 32
#define RING_SLOTS 32 /* >= MAX_DEPTH, a power of two */
#define WORDS (PAGE_SIZE / 8)
#define OP_DATA 1
#define OP_CLOSE 2
#define REF_RING GNTTAB_NR_RESERVED_ENTRIES
#define REF_RO (REF_RING + 1)
#define REF_DATA (REF_RING + 2)
#define RO_SEQ 0xffffffffu /* the pattern of the read-only page */

struct sreq {
	u32 id;  /* buffer slot, 0..depth-1 */
	u16 op;  /* OP_* */
	u16 nr;  /* grant refs used */
	u64 seq; /* request number: selects the pattern */
	grant_ref_t gref[MAX_PAGES];
	u32 pad;
};

struct srsp {
	u32 id;
	u16 op;
	s16 status; /* 0, or the first failing GNTST_*, or 1 for a bad pattern */
	u64 sum;    /* checksum of the words as the frontend wrote them */
	u64 seq;
};

union sslot {
	struct sreq req;
	struct srsp rsp;
};

/* The shared ring page: requests and responses share the slots, as in
 * Xen's ring.h; the header also carries the backend's read-only checks. */
struct sring {
	volatile u32 req_prod, rsp_prod;
	volatile s32 ro_write_status; /* writable map of the read-only grant */
	volatile s32 ro_read_status;  /* GNTMAP_readonly map of it */
	volatile u64 ro_sum;          /* checksum read through that map */
	u64 pad[5];
	union sslot slot[RING_SLOTS];
};

STATIC_ASSERT(sizeof(struct sring) <= PAGE_SIZE, "ring fits one page");

static char be[PATH], fe[PATH];
static u16 be_id, fe_id;
static u32 port;
static volatile u64 events;
static u64 maps, unmaps, requests_done, bytes_moved, cycles, bad_bytes;
static u64 rtt_min = ~0ul, rtt_max, rtt_sum;
static s32 ro_write_status, ro_read_status;
static u64 ended;

static void on_event(u32 p, void *a)
{
	(void)p;
	(void)a;
	events++;
}

/* dir/state, 0 while it does not exist. */
static u64 state_of(const char *dir)
{
	char p[PATH];
	u64 v = 0;
	path(p, dir, "state");
	long rc = xs_read_u64(0, p, &v);
	if (rc == -XS_ENOENT)
		return 0;
	check(rc, "read", p);
	return v;
}

/* Waits on watch events until dir/state is `want` (or gone, for 0). */
static void wait_state(const char *dir, u64 want)
{
	char p[PATH], tok[32];
	while (state_of(dir) != want)
		xs_next_event(p, sizeof(p), tok, sizeof(tok));
}

static void notify(void)
{
	long rc = evtchn_send(port);
	if (rc < 0)
		guest_fail("send on port %u returned %ld", port, rc);
}

/* The word w of page pg of request seq, as the frontend writes it. */
static inline u64 pattern(u64 seq, u64 pg, u64 w)
{
	u64 x = (seq << 24 | pg << 12 | w) * 0x9e3779b97f4a7c15ul;
	return x ^ (x >> 29);
}

/* Order-sensitive checksum step. */
static inline u64 mix(u64 sum, u64 v)
{
	return (sum ^ v) * 0x100000001b3ul;
}

static u64 page_sum(u64 seq, u64 pg)
{
	u64 s = 0;
	for (u64 w = 0; w < WORDS; w++)
		s = mix(s, pattern(seq, pg, w));
	return s;
}

/* ---- backend ------------------------------------------------------------- */

static long map_one(u64 va, u32 flags, grant_ref_t ref, grant_handle_t *h)
{
	struct gnttab_map_grant_ref op = { .host_addr = va, .flags = flags, .ref = ref,
					   .dom = fe_id };
	long rc = HYPERVISOR_grant_table_op(GNTTABOP_map_grant_ref, &op, 1);
	if (rc < 0)
		guest_fail("map_grant_ref(ref %u) returned %ld", ref, rc);
	if (op.status == GNTST_okay) {
		*h = op.handle;
		maps++;
	}
	return op.status;
}

static void unmap(u64 va, const grant_handle_t *h, u32 n)
{
	struct gnttab_unmap_grant_ref op[MAX_PAGES];
	for (u32 i = 0; i < n; i++)
		op[i] = (struct gnttab_unmap_grant_ref){ .host_addr = va + i * PAGE_SIZE,
							 .handle = h[i] };
	long rc = HYPERVISOR_grant_table_op(GNTTABOP_unmap_grant_ref, op, n);
	if (rc < 0)
		guest_fail("unmap_grant_ref(%u ops) returned %ld", n, rc);
	for (u32 i = 0; i < n; i++)
		if (op[i].status != GNTST_okay)
			guest_fail("unmap_grant_ref(handle %u) status %d", h[i], op[i].status);
	unmaps += n;
}

/* The read-only grant: a writable map must fail, a read-only one works. */
static void backend_ro_checks(struct sring *r, grant_ref_t ref, u64 va)
{
	grant_handle_t h;
	ro_write_status = (s32)map_one(va, GNTMAP_host_map, ref, &h);
	if (ro_write_status == GNTST_okay)
		guest_fail("a writable map of read-only grant %u succeeded", ref);
	ro_read_status = (s32)map_one(va, GNTMAP_host_map | GNTMAP_readonly, ref, &h);
	if (ro_read_status != GNTST_okay)
		guest_fail("a read-only map of grant %u failed: %d", ref, ro_read_status);
	const volatile u64 *p = (const u64 *)va;
	u64 s = 0;
	for (u64 w = 0; w < WORDS; w++)
		s = mix(s, p[w]);
	unmap(va, &h, 1);
	r->ro_write_status = ro_write_status;
	r->ro_read_status = ro_read_status;
	r->ro_sum = s;
}

/* One data request: map its pages, check and transform them, unmap. */
static void backend_data(const struct sreq *q, struct srsp *s, u64 va)
{
	struct gnttab_map_grant_ref op[MAX_PAGES];
	grant_handle_t h[MAX_PAGES];
	u32 n = q->nr, ok = 0;
	if (n == 0 || n > MAX_PAGES)
		guest_fail("request %lu names %u pages", q->seq, n);
	for (u32 i = 0; i < n; i++)
		op[i] = (struct gnttab_map_grant_ref){ .host_addr = va + i * PAGE_SIZE,
						       .flags = GNTMAP_host_map,
						       .ref = q->gref[i],
						       .dom = fe_id };
	long rc = HYPERVISOR_grant_table_op(GNTTABOP_map_grant_ref, op, n);
	if (rc < 0)
		guest_fail("map_grant_ref(%u ops) returned %ld", n, rc);
	s->status = 0;
	u64 sum = 0;
	for (u32 i = 0; i < n; i++) {
		if (op[i].status != GNTST_okay) {
			if (!s->status)
				s->status = op[i].status;
			continue;
		}
		h[ok++] = op[i].handle;
		u64 *p = (u64 *)(va + i * PAGE_SIZE);
		for (u64 w = 0; w < WORDS; w++) {
			u64 v = p[w];
			if (v != pattern(q->seq, i, w))
				bad_bytes += 8;
			sum = mix(sum, v);
			p[w] = ~v;
		}
	}
	maps += ok;
	if (ok != n)
		guest_fail("request %lu: map status %d", q->seq, s->status);
	unmap(va, h, n);
	if (bad_bytes && !s->status)
		s->status = 1;
	s->sum = sum;
	bytes_moved += (u64)n * PAGE_SIZE;
}

/* Serves requests until CLOSE; returns with the ring still mapped. */
static void backend_serve(struct sring *r, u64 va)
{
	u32 cons = 0;
	for (;;) {
		WAIT_EVENT(READ_ONCE(r->req_prod) != cons);
		u32 prod = READ_ONCE(r->req_prod);
		compiler_barrier();
		int closing = 0;
		while (cons != prod) {
			union sslot *sl = &r->slot[cons++ & (RING_SLOTS - 1)];
			struct sreq q = sl->req;
			struct srsp s = { .id = q.id, .op = q.op, .seq = q.seq };
			if (q.op == OP_DATA) {
				backend_data(&q, &s, va);
				requests_done++;
			} else if (q.op == OP_CLOSE) {
				closing = 1;
			} else {
				guest_fail("request op %u", q.op);
			}
			sl->rsp = s;
			/* Respond at once, so the frontend checks and refills this
			 * request's pages while the next one is served. */
			compiler_barrier();
			r->rsp_prod = cons;
			notify();
		}
		if (closing)
			return;
	}
}

static void backend_setup(void)
{
	char p[PATH], fe_owner[8], be_reader[8], fe_reader[8];
	smp_snprintf(fe_owner, sizeof(fe_owner), "n%u", fe_id);
	smp_snprintf(be_reader, sizeof(be_reader), "r%u", fe_id);
	smp_snprintf(fe_reader, sizeof(fe_reader), "r%u", be_id);
	const char *be_perms[] = { "n0", be_reader };
	const char *fe_perms[] = { fe_owner, fe_reader };
	char be_owner[8];
	smp_snprintf(be_owner, sizeof(be_owner), "n%u", be_id);
	be_perms[0] = be_owner;
	for (;;) {
		u32 tx;
		check(xs_tx_start(&tx), "transaction_start", "");
		check(xs_mkdir(tx, be), "mkdir", be);
		check(xs_set_perms(tx, be, be_perms, 2), "set_perms", be);
		path(p, be, "frontend");
		check(xs_write(tx, p, fe), "write", p);
		write_num(tx, be, "frontend-id", fe_id);
		write_num(tx, be, "state", InitWait);
		check(xs_mkdir(tx, fe), "mkdir", fe);
		check(xs_set_perms(tx, fe, fe_perms, 2), "set_perms", fe);
		path(p, fe, "backend");
		check(xs_write(tx, p, be), "write", p);
		write_num(tx, fe, "backend-id", be_id);
		write_num(tx, fe, "state", Initialising);
		long rc = xs_tx_end(tx, 1);
		if (rc != -XS_EAGAIN) {
			check(rc, "transaction_end", be);
			return;
		}
	}
}

static void backend(void)
{
	char p[PATH], tok[32];
	u64 va = (u64)heap_alloc((MAX_PAGES + 1) * PAGE_SIZE, PAGE_SIZE);
	u64 ring_va = va + MAX_PAGES * PAGE_SIZE;
	backend_setup();
	check(xs_watch(fe, "fe"), "watch", fe);
	wait_state(fe, Initialised);
	u64 ring_ref = read_num(fe, "ring-ref"), ro_ref = read_num(fe, "ro-ref");
	u64 remote = read_num(fe, "event-channel");
	long rc = evtchn_bind_interdomain(fe_id, (u32)remote, &port);
	if (rc < 0)
		guest_fail("bind_interdomain(%u, %lu) returned %ld", fe_id, remote, rc);
	evtchn_set_handler(port, 0, on_event, NULL);
	grant_handle_t ring_h;
	rc = map_one(ring_va, GNTMAP_host_map, (grant_ref_t)ring_ref, &ring_h);
	if (rc != GNTST_okay)
		guest_fail("map of ring grant %lu: status %ld", ring_ref, rc);
	struct sring *r = (struct sring *)ring_va;
	backend_ro_checks(r, (grant_ref_t)ro_ref, va);
	write_num(0, be, "state", Connected);
	notify();
	backend_serve(r, va);
	unmap(ring_va, &ring_h, 1);
	evtchn_close(port);
	write_num(0, be, "state", Closed);
	/* The frontend goes Closed, then removes its directory. */
	for (;;) {
		u64 st = state_of(fe);
		if (st == Closed || st == 0)
			break;
		xs_next_event(p, sizeof(p), tok, sizeof(tok));
	}
	check(xs_unwatch(fe, "fe"), "unwatch", fe);
	check(xs_rm(0, be), "rm", be);
}

/* ---- frontend ------------------------------------------------------------ */

static struct grant_entry_v1 *gnttab;

/* setup_table for one frame, then maps it at a heap page. */
static void frontend_gnttab(void)
{
	u64 frame = 0;
	struct gnttab_setup_table st = { .dom = DOMID_SELF, .nr_frames = 1,
					 .frame_list = (u64)&frame };
	long rc = HYPERVISOR_grant_table_op(GNTTABOP_setup_table, &st, 1);
	if (rc < 0 || st.status != GNTST_okay)
		guest_fail("setup_table(1 frame) returned %ld, status %d", rc, st.status);
	struct gnttab_query_size qs = { .dom = DOMID_SELF };
	rc = HYPERVISOR_grant_table_op(GNTTABOP_query_size, &qs, 1);
	if (rc < 0 || qs.status != GNTST_okay || qs.nr_frames < 1)
		guest_fail("query_size returned %ld, status %d, %u frames", rc, qs.status,
			   qs.nr_frames);
	void *va = heap_alloc(PAGE_SIZE, PAGE_SIZE);
	rc = HYPERVISOR_update_va_mapping((u64)va, frame << 12 | 0x67, UVMF_INVLPG);
	if (rc < 0)
		guest_fail("update_va_mapping(grant frame %lx) returned %ld", frame, rc);
	gnttab = va;
}

static u64 mfn_of(const void *va)
{
	return pfn_to_mfn(virt_to_pfn(va));
}

static void frontend_publish(u64 ring_ref)
{
	for (;;) {
		u32 tx;
		check(xs_tx_start(&tx), "transaction_start", "");
		write_num(tx, fe, "ring-ref", ring_ref);
		write_num(tx, fe, "ro-ref", REF_RO);
		write_num(tx, fe, "event-channel", port);
		write_num(tx, fe, "state", Initialised);
		long rc = xs_tx_end(tx, 1);
		if (rc != -XS_EAGAIN) {
			check(rc, "transaction_end", fe);
			return;
		}
	}
}

static void fill(u64 *p, u64 seq, u64 pg)
{
	for (u64 w = 0; w < WORDS; w++)
		p[w] = pattern(seq, pg, w);
}

/* Every word of the response's pages must be the complement of the pattern. */
static void frontend_check(const struct srsp *s, u64 *buf, u64 npages, u64 want_sum)
{
	if (s->status)
		guest_fail("request %lu: backend status %d", s->seq, s->status);
	if (s->sum != want_sum)
		guest_fail("request %lu: checksum %lx, expected %lx", s->seq, s->sum, want_sum);
	for (u64 pg = 0; pg < npages; pg++)
		for (u64 w = 0; w < WORDS; w++)
			if (buf[pg * WORDS + w] != ~pattern(s->seq, pg, w))
				guest_fail("request %lu page %lu word %lu: %lx, expected %lx", s->seq,
					   pg, w, buf[pg * WORDS + w], ~pattern(s->seq, pg, w));
}

struct inflight {
	u64 t0, sum;
	u32 busy;
};

static void frontend_data(struct sring *r, u64 *data)
{
	u64 nreq = arg(0), npages = arg(1), depth = arg(2);
	struct inflight fl[MAX_DEPTH] = { { 0, 0, 0 } };
	u64 next = 0, done = 0;
	u32 prod = 0, cons = 0, free_slot = 0;
	u64 start = rdtsc();
	while (done < nreq) {
		int pushed = 0;
		while (next < nreq && prod - cons < depth) {
			while (fl[free_slot].busy)
				free_slot = (free_slot + 1) % (u32)depth;
			u32 id = free_slot;
			u64 *buf = data + (u64)id * npages * WORDS, sum = 0;
			/* the checksum runs across the request's pages, as the backend's */
			for (u64 pg = 0; pg < npages; pg++)
				for (u64 w = 0; w < WORDS; w++) {
					u64 v = pattern(next, pg, w);
					buf[pg * WORDS + w] = v;
					sum = mix(sum, v);
				}
			struct sreq *q = &r->slot[prod & (RING_SLOTS - 1)].req;
			q->id = id;
			q->op = OP_DATA;
			q->nr = (u16)npages;
			q->seq = next;
			for (u64 pg = 0; pg < npages; pg++)
				q->gref[pg] = (grant_ref_t)(REF_DATA + id * npages + pg);
			fl[id] = (struct inflight){ .t0 = rdtsc(), .sum = sum, .busy = 1 };
			compiler_barrier();
			r->req_prod = ++prod;
			next++;
			pushed = 1;
		}
		if (pushed)
			notify();
		WAIT_EVENT(READ_ONCE(r->rsp_prod) != cons);
		u32 rp = READ_ONCE(r->rsp_prod);
		compiler_barrier();
		while (cons != rp) {
			struct srsp s = r->slot[cons++ & (RING_SLOTS - 1)].rsp;
			u64 t = rdtsc();
			if (s.id >= depth || !fl[s.id].busy || s.op != OP_DATA)
				guest_fail("response for slot %u (op %u) not in flight", s.id, s.op);
			u64 rtt = t - fl[s.id].t0;
			lat_record(LAT_EVTCHN_RTT, rtt);
			rtt_sum += rtt;
			rtt_min = rtt < rtt_min ? rtt : rtt_min;
			rtt_max = rtt > rtt_max ? rtt : rtt_max;
			frontend_check(&s, data + (u64)s.id * npages * WORDS, npages, fl[s.id].sum);
			fl[s.id].busy = 0;
			done++;
			bytes_moved += npages * PAGE_SIZE;
		}
	}
	cycles = rdtsc() - start;
	requests_done = done;
	/* CLOSE */
	struct sreq *q = &r->slot[prod & (RING_SLOTS - 1)].req;
	q->op = OP_CLOSE;
	q->id = 0;
	q->nr = 0;
	compiler_barrier();
	r->req_prod = ++prod;
	notify();
	WAIT_EVENT(READ_ONCE(r->rsp_prod) == prod);
	if (r->slot[cons & (RING_SLOTS - 1)].rsp.op != OP_CLOSE)
		guest_fail("no CLOSE response");
}

static void frontend_ro_check(const struct sring *r, const u64 *ro)
{
	u64 want = page_sum(RO_SEQ, 0);
	if (r->ro_write_status != GNTST_general_error)
		guest_fail("writable map of the read-only grant: status %d, expected %d",
			   r->ro_write_status, GNTST_general_error);
	if (r->ro_read_status != GNTST_okay || r->ro_sum != want)
		guest_fail("read-only map: status %d, checksum %lx, expected %lx",
			   r->ro_read_status, r->ro_sum, want);
	for (u64 w = 0; w < WORDS; w++)
		if (ro[w] != pattern(RO_SEQ, 0, w))
			guest_fail("read-only page word %lu changed", w);
	ro_write_status = r->ro_write_status;
	ro_read_status = r->ro_read_status;
}

static void frontend_end_grants(u64 nrefs)
{
	for (u64 ref = REF_RING; ref < REF_DATA + nrefs; ref++) {
		if (!gnttab_end_access(&gnttab[ref]))
			guest_fail("grant %lu still in use (flags %x) after the backend closed", ref,
				   gnttab[ref].flags);
		ended++;
	}
}

static void frontend(void)
{
	char p[PATH], tok[32], rel[PATH] = "device/vbd/0/backend";
	u64 npages = arg(1), depth = arg(2), nrefs = depth * npages;
	check(xs_watch(rel, "setup"), "watch", rel);
	for (;;) {
		long rc = xs_read(0, rel, be, sizeof(be));
		if (rc >= 0)
			break;
		if (rc != -XS_ENOENT)
			guest_fail("read %s returned %ld", rel, rc);
		xs_next_event(p, sizeof(p), tok, sizeof(tok));
	}
	check(xs_unwatch(rel, "setup"), "unwatch", rel);
	frontend_gnttab();
	struct sring *r = heap_alloc(PAGE_SIZE, PAGE_SIZE);
	u64 *ro = heap_alloc(PAGE_SIZE, PAGE_SIZE);
	u64 *data = heap_alloc(nrefs * PAGE_SIZE, PAGE_SIZE);
	fill(ro, RO_SEQ, 0);
	gnttab_grant(&gnttab[REF_RING], be_id, mfn_of(r), 0);
	gnttab_grant(&gnttab[REF_RO], be_id, mfn_of(ro), 1);
	for (u64 i = 0; i < nrefs; i++)
		gnttab_grant(&gnttab[REF_DATA + i], be_id, mfn_of(data + i * WORDS), 0);
	long rc = evtchn_alloc_unbound(be_id, &port);
	if (rc < 0)
		guest_fail("alloc_unbound(%u) returned %ld", be_id, rc);
	evtchn_set_handler(port, 0, on_event, NULL);
	check(xs_watch(be, "be"), "watch", be);
	frontend_publish(REF_RING);
	wait_state(be, Connected);
	u16 f = gnttab[REF_RING].flags;
	if ((f & (GTF_reading | GTF_writing)) != (GTF_reading | GTF_writing))
		guest_fail("ring grant flags %x: the backend's mapping is not shown", f);
	if (gnttab[REF_RO].flags != (GTF_permit_access | GTF_readonly))
		guest_fail("read-only grant flags %x after the backend unmapped it",
			   gnttab[REF_RO].flags);
	frontend_ro_check(r, ro);
	frontend_data(r, data);
	write_num(0, fe, "state", Closing);
	wait_state(be, Closed);
	frontend_end_grants(nrefs);
	frontend_ro_check(r, ro);
	evtchn_close(port);
	write_num(0, fe, "state", Closed);
	check(xs_unwatch(be, "be"), "unwatch", be);
	check(xs_rm(0, fe), "rm", fe);
}

/* ---- entry points -------------------------------------------------------- */

void workload_init(void)
{
	if (smpsim_params.domain_index > 1)
		guest_fail("domain_index %u: this workload has two domains", smpsim_params.domain_index);
	if (arg(1) > MAX_PAGES || arg(2) > MAX_DEPTH)
		guest_fail("pages %lu (at most %u), depth %lu (at most %u)", arg(1), MAX_PAGES,
			   arg(2), MAX_DEPTH);
	xs_init();
	char b[16];
	check(xs_read(0, "domid", b, sizeof(b)), "read", "domid");
	u16 me = 0;
	for (char *c = b; *c; c++)
		me = (u16)(me * 10 + (u16)(*c - '0'));
	u16 peer = (u16)smpsim_params.peer_domid;
	be_id = smpsim_params.domain_index == 0 ? me : peer;
	fe_id = smpsim_params.domain_index == 0 ? peer : me;
	smp_snprintf(be, PATH, "/local/domain/%u/backend/vbd/%u/0", be_id, fe_id);
	smp_snprintf(fe, PATH, "/local/domain/%u/device/vbd/0", fe_id);
}

void workload_run(struct cpu *c)
{
	if (c->id != 0)
		return;
	if (smpsim_params.domain_index == 0)
		backend();
	else
		frontend();
}

void workload_check(void)
{
	if (requests_done != arg(0) || bad_bytes)
		guest_fail("%lu of %lu requests done, %lu bad bytes", requests_done, arg(0),
			   bad_bytes);
	if (smpsim_params.domain_index == 0) {
		printf("splitdrv: domain 0 (backend) done: %lu requests, %lu bytes checked and "
		       "transformed in place, %lu grant maps, %lu unmaps; read-only grant: "
		       "writable map refused with GNTST %d, read-only map %d\n",
		       requests_done, bytes_moved, maps, unmaps, ro_write_status, ro_read_status);
		return;
	}
	u64 bpk = cycles ? bytes_moved * 1000 / cycles : 0;
	printf("splitdrv: domain 1 (frontend) done: %lu requests x %lu pages, %lu bytes moved "
	       "zero-copy in %lu cycles (%lu bytes/kcycle), %lu grants ended; round trip "
	       "min %lu avg %lu max %lu cycles; read-only grant refused a writable map with "
	       "GNTST %d\n",
	       requests_done, arg(1), bytes_moved, cycles, bpk, ended, rtt_min,
	       rtt_sum / (requests_done ? requests_done : 1), rtt_max, ro_write_status);
}
