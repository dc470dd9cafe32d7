/*
 * xenstore client (include/xs.h): requests go into req[] of the ring page,
 * replies and watch events come from rsp[]; the port is notified after
 * each change of either index (the store only serves on notification).
 */
#include "rt.h"
#include "xs.h"
#include "fmt.h"

#define XS_RING 1024
#define XS_PAYLOAD_MAX 4096
#define XS_MAX_EVENTS 64
#define XS_EVENT_MAX 256

enum {
	XS_DIRECTORY = 1, XS_READ = 2, XS_GET_PERMS = 3, XS_WATCH = 4, XS_UNWATCH = 5,
	XS_TRANSACTION_START = 6, XS_TRANSACTION_END = 7, XS_WRITE = 11, XS_MKDIR = 12,
	XS_RM = 13, XS_SET_PERMS = 14, XS_WATCH_EVENT = 15, XS_ERROR = 16,
};

struct xs_ring {
	char req[XS_RING];
	char rsp[XS_RING];
	volatile u32 req_cons, req_prod;
	volatile u32 rsp_cons, rsp_prod;
};

struct xs_hdr {
	u32 type, req_id, tx_id, len;
};

struct xs_event {
	char path[XS_EVENT_MAX];
	char token[XS_EVENT_MAX];
};

static struct xs_ring *ring;
static u32 port;
static u32 next_req = 1;
static volatile u64 notifications;
static struct xs_event events[XS_MAX_EVENTS];
static u32 ev_head, ev_tail;
static u64 events_seen;
static char msgbuf[XS_PAYLOAD_MAX + 1];

static void on_notify(u32 p, void *a)
{
	(void)p;
	(void)a;
	notifications++;
}

void xs_init(void)
{
	u64 mfn = start_info->store_mfn;
	/* Xen's builder puts the ring in the page after start_info; else look
	 * the frame up in the P2M. */
	void *va = (char *)start_info + PAGE_SIZE;
	if (pfn_to_mfn(virt_to_pfn(va)) != mfn) {
		va = 0;
		for (u64 pfn = 0; pfn < start_info->nr_pages; pfn++)
			if (pfn_to_mfn(pfn) == mfn) {
				extern char __virt_base[];
				va = __virt_base + pfn * PAGE_SIZE;
				break;
			}
		if (!va)
			guest_fail("xenstore ring mfn %lx is not in the P2M", mfn);
	}
	ring = va;
	port = start_info->store_evtchn;
	evtchn_set_handler(port, 0, on_notify, 0);
}

static void notify(void)
{
	long rc = evtchn_send(port);
	if (rc < 0)
		guest_fail("xenstore: notify on port %u returned %ld", port, rc);
}

static void put_bytes(const void *data, u32 len)
{
	const char *d = data;
	while (len) {
		u32 prod = ring->req_prod;
		u32 space = XS_RING - (prod - READ_ONCE(ring->req_cons));
		if (!space) {
			WAIT_EVENT(XS_RING - (ring->req_prod - READ_ONCE(ring->req_cons)) > 0);
			continue;
		}
		u32 n = len < space ? len : space;
		for (u32 i = 0; i < n; i++)
			ring->req[(prod + i) % XS_RING] = d[i];
		compiler_barrier();
		ring->req_prod = prod + n;
		notify();
		d += n;
		len -= n;
	}
}

static void get_bytes(void *data, u32 len)
{
	char *d = data;
	while (len) {
		u32 cons = ring->rsp_cons;
		WAIT_EVENT(READ_ONCE(ring->rsp_prod) != cons);
		u32 avail = READ_ONCE(ring->rsp_prod) - cons;
		if (avail > XS_RING)
			guest_fail("xenstore: response indices %u..%u are corrupt", cons,
				   ring->rsp_prod);
		u32 n = len < avail ? len : avail;
		compiler_barrier();
		for (u32 i = 0; i < n; i++)
			d[i] = ring->rsp[(cons + i) % XS_RING];
		compiler_barrier();
		ring->rsp_cons = cons + n;
		/* The store flushes what it queued when notified. */
		notify();
		d += n;
		len -= n;
	}
}

static void copy_str(char *dst, u32 size, const char *src, u32 n)
{
	if (!size)
		return;
	if (n >= size)
		n = size - 1;
	memcpy(dst, src, n);
	dst[n] = 0;
}

static void queue_event(const char *payload, u32 len)
{
	u32 plen = strlen(payload);
	if (plen + 1 > len)
		guest_fail("xenstore: watch event without a token");
	if (ev_tail - ev_head == XS_MAX_EVENTS)
		guest_fail("xenstore: more than %u watch events pending", XS_MAX_EVENTS);
	struct xs_event *e = &events[ev_tail++ % XS_MAX_EVENTS];
	copy_str(e->path, sizeof(e->path), payload, plen);
	copy_str(e->token, sizeof(e->token), payload + plen + 1, strlen(payload + plen + 1));
	events_seen++;
}

/* Reads one message into msgbuf (NUL-terminated); returns its header. */
static struct xs_hdr read_msg(void)
{
	struct xs_hdr h;
	get_bytes(&h, sizeof(h));
	if (h.len > XS_PAYLOAD_MAX)
		guest_fail("xenstore: reply of %u bytes", h.len);
	get_bytes(msgbuf, h.len);
	msgbuf[h.len] = 0;
	return h;
}

static int streq(const char *a, const char *b)
{
	while (*a && *a == *b) {
		a++;
		b++;
	}
	return *a == *b;
}

static long errno_of(const char *s)
{
	static const struct {
		const char *name;
		long err;
	} map[] = {
		{ "ENOENT", XS_ENOENT }, { "EACCES", XS_EACCES }, { "EAGAIN", XS_EAGAIN },
		{ "EEXIST", XS_EEXIST }, { "EINVAL", XS_EINVAL }, { "ENOSPC", XS_ENOSPC },
		{ "E2BIG", XS_E2BIG },   { "EBUSY", XS_EBUSY },   { "EPERM", XS_EPERM },
		{ "EISDIR", XS_EISDIR }, { "ENOSYS", XS_ENOSYS },
	};
	for (u32 i = 0; i < sizeof(map) / sizeof(map[0]); i++)
		if (streq(s, map[i].name))
			return -map[i].err;
	return -XS_EIO;
}

/*
 * One request: the parts are concatenated into the payload (each with its
 * NUL when nul[i]); waits for the reply with its req_id, queueing events.
 * Returns the reply's payload length (in msgbuf) or -errno.
 */
static long request(u32 type, u32 tx, const char *const *parts, const int *nul, u32 n)
{
	if (!ring)
		guest_fail("xenstore: xs_init was not called");
	struct xs_hdr h = { type, next_req++, tx, 0 };
	for (u32 i = 0; i < n; i++)
		h.len += strlen(parts[i]) + (nul[i] ? 1 : 0);
	if (h.len > XS_PAYLOAD_MAX)
		return -XS_E2BIG;
	put_bytes(&h, sizeof(h));
	for (u32 i = 0; i < n; i++)
		put_bytes(parts[i], strlen(parts[i]) + (nul[i] ? 1 : 0));
	for (;;) {
		struct xs_hdr r = read_msg();
		if (r.type == XS_WATCH_EVENT) {
			queue_event(msgbuf, r.len);
			continue;
		}
		if (r.req_id != h.req_id)
			guest_fail("xenstore: reply to request %u while waiting for %u", r.req_id,
				   h.req_id);
		if (r.type == XS_ERROR)
			return errno_of(msgbuf);
		if (r.type != type)
			guest_fail("xenstore: reply type %u to request type %u", r.type, type);
		return r.len;
	}
}

static long path_op(u32 type, u32 tx, const char *path)
{
	const char *p[] = { path };
	const int nul[] = { 1 };
	return request(type, tx, p, nul, 1);
}

long xs_read(u32 tx, const char *path, char *buf, u32 size)
{
	long n = path_op(XS_READ, tx, path);
	if (n >= 0)
		copy_str(buf, size, msgbuf, (u32)n);
	return n;
}

long xs_write(u32 tx, const char *path, const char *value)
{
	const char *p[] = { path, value };
	const int nul[] = { 1, 0 };
	long n = request(XS_WRITE, tx, p, nul, 2);
	return n < 0 ? n : 0;
}

long xs_mkdir(u32 tx, const char *path)
{
	long n = path_op(XS_MKDIR, tx, path);
	return n < 0 ? n : 0;
}

long xs_rm(u32 tx, const char *path)
{
	long n = path_op(XS_RM, tx, path);
	return n < 0 ? n : 0;
}

long xs_set_perms(u32 tx, const char *path, const char *const *perms, u32 n)
{
	const char *p[9];
	int nul[9];
	if (n > 8)
		return -XS_E2BIG;
	p[0] = path;
	nul[0] = 1;
	for (u32 i = 0; i < n; i++) {
		p[i + 1] = perms[i];
		nul[i + 1] = 1;
	}
	long r = request(XS_SET_PERMS, tx, p, nul, n + 1);
	return r < 0 ? r : 0;
}

long xs_get_perms(u32 tx, const char *path, char *buf, u32 size)
{
	long n = path_op(XS_GET_PERMS, tx, path);
	if (n <= 0)
		return n;
	for (long i = 0; i < n - 1; i++)
		if (!msgbuf[i])
			msgbuf[i] = ',';
	copy_str(buf, size, msgbuf, (u32)n - 1);
	return n - 1;
}

long xs_watch(const char *path, const char *token)
{
	const char *p[] = { path, token };
	const int nul[] = { 1, 1 };
	long n = request(XS_WATCH, 0, p, nul, 2);
	return n < 0 ? n : 0;
}

long xs_unwatch(const char *path, const char *token)
{
	const char *p[] = { path, token };
	const int nul[] = { 1, 1 };
	long n = request(XS_UNWATCH, 0, p, nul, 2);
	return n < 0 ? n : 0;
}

long xs_tx_start(u32 *tx)
{
	const char *p[] = { "" };
	const int nul[] = { 1 };
	long n = request(XS_TRANSACTION_START, 0, p, nul, 1);
	if (n < 0)
		return n;
	u64 id = 0;
	for (long i = 0; i < n && msgbuf[i]; i++) {
		if (msgbuf[i] < '0' || msgbuf[i] > '9')
			guest_fail("xenstore: transaction id \"%s\"", msgbuf);
		id = id * 10 + (u64)(msgbuf[i] - '0');
	}
	*tx = (u32)id;
	return 0;
}

long xs_tx_end(u32 tx, int commit)
{
	const char *p[] = { commit ? "T" : "F" };
	const int nul[] = { 1 };
	long n = request(XS_TRANSACTION_END, tx, p, nul, 1);
	return n < 0 ? n : 0;
}

void xs_next_event(char *path, u32 psize, char *token, u32 tsize)
{
	while (ev_head == ev_tail) {
		struct xs_hdr r = read_msg();
		if (r.type != XS_WATCH_EVENT)
			guest_fail("xenstore: message type %u with no request waiting", r.type);
		queue_event(msgbuf, r.len);
	}
	struct xs_event *e = &events[ev_head++ % XS_MAX_EVENTS];
	copy_str(path, psize, e->path, strlen(e->path));
	copy_str(token, tsize, e->token, strlen(e->token));
}

u64 xs_events_seen(void)
{
	return events_seen;
}

long xs_read_u64(u32 tx, const char *path, u64 *out)
{
	char b[24];
	long n = xs_read(tx, path, b, sizeof(b));
	if (n < 0)
		return n;
	if (n == 0 || n > 20)
		return -XS_EINVAL;
	u64 v = 0;
	for (long i = 0; i < n; i++) {
		if (b[i] < '0' || b[i] > '9')
			return -XS_EINVAL;
		v = v * 10 + (u64)(b[i] - '0');
	}
	*out = v;
	return 0;
}

long xs_write_u64(u32 tx, const char *path, u64 v)
{
	char b[24];
	smp_snprintf(b, sizeof(b), "%lu", v);
	return xs_write(tx, path, b);
}
