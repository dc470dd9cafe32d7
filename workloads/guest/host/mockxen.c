/*
 * mockxen: runs an smpsim guest image natively on the (x86-64 Linux) host
 * under a tiny user-space imitation of Xen, to test the guest runtime and
 * workloads without the simulator. Test-only; built by tests/native.rs.
 *
 * - Guest memory is mapped at its link address (VIRT_BASE); the image is
 *   read from a flat file prepared by the Rust test (load_plan output).
 * - The hypercall page gets stubs `mov eax,N; movabs r11,entry; jmp r11`;
 *   `mock_entry` calls mock_hypercall() with the five argument registers.
 * - VCPUs are pthreads running on the guest's own stacks.
 * - Event channels follow xen-abi.md §3.4 (2-level raise/unmask), or
 *   §3.5 once the guest calls EVTCHNOP_init_control (FIFO: control blocks,
 *   expand_array, set_priority, Xen's evtchn_fifo_set_pending with the
 *   LINK field written by cmpxchg while the guest consumes; single-domain
 *   only, as the words live in the domain's own process).
 * - Upcalls are delivered at hypercall exit and, asynchronously, at
 *   whatever guest instruction a VCPU thread is running when an event
 *   marks it (SIGUSR1 to that thread; the handler rewrites the interrupted
 *   context), always through the guest's real path: a PV64 bounce
 *   frame (RCX, R11, RIP, CS, RFLAGS, RSP, SS, xen-abi.md §2.6) is pushed
 *   on the guest stack and the registered event callback entered with
 *   upcall_mask set; the guest leaves through slot 23, whose stub jumps to
 *   `mock_iret`, which applies iret_context (§4.6) with a native iretq
 *   (host user selectors substituted for CS/SS).
 * - With MOCKXEN_NOISE_US=N in the environment, a noise thread makes a
 *   spurious upcall (upcall_pending set, nothing pending: what
 *   register_vcpu_info does in Xen) on every VCPU every N microseconds, so
 *   upcalls land at arbitrary guest instructions.
 * - Faults in guest code (SIGSEGV, SIGILL, SIGFPE) are bounced to the
 *   guest's set_trap_table handler for #PF, #UD or #DE with Xen's exception
 *   frame (RCX, R11, [error code], RIP, CS, RFLAGS, RSP, SS; cr2 set);
 *   without a handler the process dies of the signal.
 * - SCHEDOP_shutdown ends the process with exit status = reason.
 * - smpsim_op(record_samples) (56, smpsim-specific) is validated as smpsim
 *   does and only counted; the counts by histogram go to stderr at shutdown
 *   ("mockxen samples: evtchn_rtt N lock_wait N barrier_wait N").
 * - smpsim_op(roi, phase) (cmd 1) returns 0 for phase 0 (end) and 1
 *   (begin), -EINVAL otherwise, and is counted ("mockxen roi: begin N end N"
 *   on stderr at shutdown).
 * - With two images, the process forks into two domains (domids 1 and 2)
 *   sharing a "world" mapping at 0x200000: both shared_info pages, the
 *   group's shared area, and the hypervisor state (process-shared mutex and
 *   condition variables), so interdomain event channels work across them.
 *   Domain 0's process waits for domain 1's and exits with the worse status.
 *
 * usage: mockxen NR_PAGES ENTRY IMAGE_END NR_VCPUS ALARM_S IMAGE [IMAGE2]
 *   shared_info: the guest uses params.shared_info_va if set (the test sets
 *   0x200000 + domain*4096), else maps it with update_va_mapping.
 *   The group's shared area (two domains) is at 0x202000, 4096 bytes.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <pthread.h>
#include <sched.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <signal.h>
#include <sys/mman.h>
#include <ucontext.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

typedef uint8_t u8;
typedef uint16_t u16;
typedef uint32_t u32;
typedef uint64_t u64;

#define VIRT_BASE 0x400000UL
#define WORLD_VA 0x200000UL
#define SHARED_INFO_MA 0xfee00000UL /* token "machine address" of domain 0's */
#define MAXV 1024
#define NPORTS (1 << 17) /* FIFO; 4096 on the 2-level ABI */
#define NPORTS_2L 4096

struct vcpu_time_info {
	u32 version, pad0;
	u64 tsc_timestamp, system_time;
	u32 mul;
	signed char shift;
	u8 flags, pad1[2];
};
struct vcpu_info {
	u8 upcall_pending, upcall_mask, pad[6];
	u64 pending_sel, cr2, arch_pad;
	struct vcpu_time_info time;
};
struct shared_info {
	struct vcpu_info vcpu_info[32];
	u64 pending[64];
	u64 mask[64];
	u8 rest[4096 - 3072]; /* one page each */
};

struct vcpu {
	int exists, initialised, up;
	u64 rip, rsp;
	struct vcpu_info *vi;
	pthread_cond_t cv;
	u64 singleshot, period, next_periodic; /* guest ns; 0 = off */
	int timer_port;
	u64 callback; /* registered event callback */
	pthread_t th; /* valid in its own domain's process once has_th */
	int has_th;
};

enum { P_FREE, P_IPI, P_VIRQ, P_UNBOUND, P_INTERDOMAIN };
struct port {
	int state, vcpu;
	int remote_dom, remote_port; /* domain index (0, 1) */
};

struct dom {
	struct vcpu vc[MAXV];
	struct port pt[NPORTS_2L]; /* a FIFO domain's are its process's fifo_pt */
	int nv;
	int fifo; /* switched to the FIFO ABI (its state: `fifo` below) */
	u64 trap[256];    /* set_trap_table handlers */
	u8 trap_mask[256]; /* flags bit 2: mask events on entry */
};

/* Mapped at WORLD_VA, shared by the domains' processes. */
struct world {
	struct shared_info si[2] __attribute__((aligned(4096)));
	u8 shared_area[4096] __attribute__((aligned(4096)));
	pthread_mutex_t hv;
	struct dom dom[2];
};

static struct port fifo_pt[NPORTS]; /* this domain's ports once it is FIFO */
static struct world *W;
static struct dom *D; /* this process's domain */
static int me;        /* its index */
static int world_fd;
#define sh (&W->si[me])
#define vcpus (D->vc)
#define ports (D->fifo ? fifo_pt : D->pt)
#define nr_vcpus (D->nv)
#define hv (W->hv)
static pthread_mutex_t con = PTHREAD_MUTEX_INITIALIZER;
static __thread struct vcpu *cur;
static u64 tsc0, tsc_khz;
static u64 nr_upcalls, nr_async, nr_irets; /* reported on stderr at shutdown */
static u64 nr_samples[3]; /* smpsim_op record_samples, by histogram id */
static u64 nr_roi[2];     /* smpsim_op roi calls: [0] end, [1] begin */
static u64 guest_text_lo, guest_text_hi;    /* where async upcalls may land */
static u32 scale_mul;
static signed char scale_shift;

static u64 rdtsc(void)
{
	u32 lo, hi;
	__asm__ __volatile__("rdtsc" : "=a"(lo), "=d"(hi));
	return ((u64)hi << 32) | lo;
}

static u64 guest_now(void)
{
	u64 d = rdtsc() - tsc0;
	d = scale_shift < 0 ? d >> -scale_shift : d << scale_shift;
	return (u64)(((unsigned __int128)d * scale_mul) >> 32);
}

/* Xen's set_time_scale (xen-abi.md §2.1). */
static void calibrate(void)
{
	struct timespec a, b;
	clock_gettime(CLOCK_MONOTONIC, &a);
	u64 t = rdtsc();
	do
		clock_gettime(CLOCK_MONOTONIC, &b);
	while ((b.tv_sec - a.tv_sec) * 1000000000L + (b.tv_nsec - a.tv_nsec) < 20000000L);
	u64 ns = (b.tv_sec - a.tv_sec) * 1000000000UL + (b.tv_nsec - a.tv_nsec);
	u64 f = (rdtsc() - t) * 1000000000UL / ns;
	tsc_khz = f / 1000;
	int shift = 0;
	while (f > 2000000000UL) {
		f >>= 1;
		shift--;
	}
	while (f <= 1000000000UL) {
		f <<= 1;
		shift++;
	}
	scale_mul = (u32)((1000000000UL << 32) / f);
	scale_shift = (signed char)shift;
	tsc0 = rdtsc();
}

static void fill_time(struct vcpu_info *vi)
{
	vi->time.version = 2;
	vi->time.tsc_timestamp = tsc0;
	vi->time.system_time = 0;
	vi->time.mul = scale_mul;
	vi->time.shift = scale_shift;
	vi->time.flags = 1;
}

static void kick(int d, int v)
{
	pthread_cond_broadcast(&W->dom[d].vc[v].cv);
}

static void mark(int d, int v)
{
	struct vcpu *t = &W->dom[d].vc[v];
	if (__atomic_exchange_n(&t->vi->upcall_pending, 1, __ATOMIC_SEQ_CST))
		return;
	kick(d, v);
	if (d == me && t != cur && t->has_th)
		pthread_kill(t->th, SIGUSR1); /* interrupt it wherever it runs */
}

/* FIFO state of this process's domain (its guest memory is its own). */
#define F_PENDING (1u << 31)
#define F_MASKED (1u << 30)
#define F_LINKED (1u << 29)
#define F_BUSY (1u << 28)
#define F_LINK_MASK ((1u << 17) - 1)
struct fifo_cb {
	u32 ready, rsvd, head[16];
};
static struct {
	u32 nwords;
	u32 *page[128];             /* event-array pages */
	struct fifo_cb *cb[MAXV];   /* control blocks */
	u32 tail[MAXV][16];         /* Xen's q->tail */
	u8 prio[NPORTS];            /* priority + 1; 0 = the default 7 */
	u16 last_v[NPORTS];         /* queue a port was last linked on */
	u8 last_q[NPORTS];
	u8 saved[NPORTS];           /* raised while it had no event word */
} F;

static u32 *fifo_word(u32 p)
{
	return p < F.nwords ? &F.page[p / 1024][p % 1024] : NULL;
}

/* Link the old tail to p iff the tail is still LINKED. */
static int fifo_set_link(u32 *tw, u32 p)
{
	u32 w = __atomic_load_n(tw, __ATOMIC_SEQ_CST);
	for (;;) {
		if (!(w & F_LINKED))
			return 0;
		u32 n = (w & ~(F_BUSY | F_LINK_MASK)) | p;
		if (__atomic_compare_exchange_n(tw, &w, n, 0, __ATOMIC_SEQ_CST, __ATOMIC_SEQ_CST))
			return 1;
	}
}

/* Xen's evtchn_fifo_set_pending for port p of this domain; holds hv. */
static void fifo_raise(u32 p)
{
	u32 *w = fifo_word(p);
	int v = ports[p].vcpu;
	if (!w) {
		F.saved[p] = 1;
		return;
	}
	__atomic_fetch_or(w, F_PENDING, __ATOMIC_SEQ_CST);
	kick(me, v); /* pollers */
	struct fifo_cb *cb = F.cb[v];
	if (!cb || (__atomic_load_n(w, __ATOMIC_SEQ_CST) & F_MASKED) ||
	    (__atomic_fetch_or(w, F_LINKED, __ATOMIC_SEQ_CST) & F_LINKED))
		return;
	u32 q = F.prio[p] ? F.prio[p] - 1u : 7u;
	u32 *old = &F.tail[F.last_v[p]][F.last_q[p]];
	if (*old == p)
		*old = 0; /* it left that queue (or is its own tail: queue empty) */
	F.last_v[p] = (u16)v;
	F.last_q[p] = (u8)q;
	u32 t = F.tail[v][q];
	int linked = t && fifo_set_link(fifo_word(t), p);
	if (!linked)
		__atomic_store_n(&cb->head[q], p, __ATOMIC_SEQ_CST);
	F.tail[v][q] = p;
	if (!linked && !(__atomic_fetch_or(&cb->ready, 1u << q, __ATOMIC_SEQ_CST) & (1u << q)))
		mark(me, v);
}

/* Ports this domain may have now. */
static u32 nports_now(void)
{
	return D->fifo ? NPORTS : NPORTS_2L;
}

/* Port p of domain d (its own table if FIFO and d is this domain). */
static struct port *port_in(int d, u32 p)
{
	return d == me ? &ports[p] : &W->dom[d].pt[p];
}

/* xen-abi.md §3.4 "Raise port p" in domain d; caller holds hv. */
static void raise_in(int d, int p)
{
	if (W->dom[d].fifo) {
		if (d != me) {
			fprintf(stderr, "mockxen: FIFO events across domains are not modelled\n");
			exit(105);
		}
		fifo_raise((u32)p);
		return;
	}
	struct shared_info *s = &W->si[d];
	int v = port_in(d, (u32)p)->vcpu;
	u64 bit = 1UL << (p % 64);
	if (__atomic_fetch_or(&s->pending[p / 64], bit, __ATOMIC_SEQ_CST) & bit)
		return;
	if (!(__atomic_load_n(&s->mask[p / 64], __ATOMIC_SEQ_CST) & bit) &&
	    !(__atomic_fetch_or(&W->dom[d].vc[v].vi->pending_sel, 1UL << (p / 64),
				__ATOMIC_SEQ_CST) &
	      (1UL << (p / 64))))
		mark(d, v);
	kick(d, v); /* pollers */
}

static void raise_port(int p)
{
	raise_in(me, p);
}

static int alloc_port(int state, int v)
{
	for (u32 p = 1; p < nports_now(); p++)
		if (ports[p].state == P_FREE) {
			ports[p].state = state;
			ports[p].vcpu = v;
			return p;
		}
	return -28;
}

/* domid of domain index d is d + 1; DOMID_SELF is 0x7ff0 */
static int dom_index(u32 domid)
{
	if (domid == 0x7ff0)
		return me;
	if (domid == 1 || (domid == 2 && W->dom[1].nv))
		return (int)domid - 1;
	return -1;
}

static long alloc_unbound(u32 *a)
{
	u16 *d = (u16 *)a;
	int rd = dom_index(d[1]);
	if (dom_index(d[0]) != me || rd < 0)
		return -3; /* ESRCH */
	int p = alloc_port(P_UNBOUND, 0);
	if (p < 0)
		return p;
	ports[p].remote_dom = rd;
	a[1] = p;
	return 0;
}

static long bind_interdomain(u32 *a)
{
	int rd = dom_index(*(u16 *)a);
	u32 rp = a[1];
	if (rd < 0 || rp >= (rd == me ? nports_now() : NPORTS_2L))
		return -22;
	struct port *r = port_in(rd, rp);
	if (r->state != P_UNBOUND || r->remote_dom != me)
		return -22;
	int p = alloc_port(P_INTERDOMAIN, 0);
	if (p < 0)
		return p;
	ports[p].remote_dom = rd;
	ports[p].remote_port = (int)rp;
	r->state = P_INTERDOMAIN;
	r->remote_port = p;
	a[2] = p;
	raise_port(p); /* "the new local port is set pending at once" */
	return 0;
}

static void timer_check(struct vcpu *v)
{
	u64 now = guest_now();
	int fire = 0;
	if (v->singleshot && now >= v->singleshot) {
		v->singleshot = 0;
		fire = 1;
	}
	if (v->period && now >= v->next_periodic) {
		v->next_periodic = now + v->period;
		fire = 1;
	}
	if (fire && v->timer_port)
		raise_port(v->timer_port);
}

/* Wait (hv held) until cond or a timer of v fires; re-evaluates timers. */
static void wait_on(struct vcpu *v, int (*cond)(struct vcpu *, void *), void *arg, u64 timeout)
{
	for (;;) {
		timer_check(v);
		if (cond(v, arg))
			return;
		u64 now = guest_now(), until = ~0UL;
		if (v->singleshot)
			until = v->singleshot;
		if (v->period && v->next_periodic < until)
			until = v->next_periodic;
		if (timeout && timeout < until)
			until = timeout;
		if (timeout && now >= timeout)
			return;
		struct timespec ts;
		clock_gettime(CLOCK_REALTIME, &ts);
		u64 d = until == ~0UL ? 50000000UL : (until > now ? until - now : 0) + 1000;
		if (d > 50000000UL)
			d = 50000000UL;
		ts.tv_nsec += d;
		ts.tv_sec += ts.tv_nsec / 1000000000L;
		ts.tv_nsec %= 1000000000L;
		pthread_cond_timedwait(&v->cv, &hv, &ts);
	}
}

static int upcall_due(struct vcpu *v, void *arg)
{
	(void)arg;
	return v->vi->upcall_pending && !v->vi->upcall_mask;
}

struct poll_arg {
	u32 *list;
	u32 n;
};
static int poll_ready(struct vcpu *v, void *a)
{
	struct poll_arg *pa = a;
	if (upcall_due(v, NULL))
		return 1;
	for (u32 i = 0; i < pa->n; i++)
		if (sh->pending[pa->list[i] / 64] & (1UL << (pa->list[i] % 64)))
			return 1;
	return 0;
}

static void *vcpu_thread(void *a);

static long vcpu_op(int cmd, u32 id, u64 arg)
{
	if (id >= (u32)nr_vcpus)
		return -2;
	struct vcpu *v = &vcpus[id];
	switch (cmd) {
	case 0: { /* initialise: rip @ 520+128, rsp @ 520+152 */
		if (v->initialised)
			return -17;
		if (!v->vi)
			return -22;
		v->rip = *(u64 *)(arg + 648);
		v->rsp = *(u64 *)(arg + 672);
		v->callback = *(u64 *)(arg + 5112);
		v->initialised = 1;
		return 0;
	}
	case 1: {
		if (!v->initialised)
			return -22;
		if (v->up)
			return 0;
		v->up = 1;
		pthread_t th;
		pthread_attr_t at;
		pthread_attr_init(&at);
		pthread_attr_setstacksize(&at, 1 << 16);
		pthread_attr_setdetachstate(&at, PTHREAD_CREATE_DETACHED);
		return pthread_create(&th, &at, vcpu_thread, v) ? -12 : 0;
	}
	case 2:
		if (v != cur)
			return -22;
		v->up = 0;
		for (;;)
			pthread_cond_wait(&v->cv, &hv); /* a downed VCPU never runs again */
	case 3:
		return v->up;
	case 6: {
		u64 p = *(u64 *)arg;
		if (p < 1000000)
			return -22;
		v->period = p;
		v->next_periodic = guest_now() + p;
		return 0;
	}
	case 7:
		v->period = 0;
		return 0;
	case 8:
		if (v != cur)
			return -22;
		v->singleshot = *(u64 *)arg ? *(u64 *)arg : 1;
		return 0;
	case 9:
		v->singleshot = 0;
		return 0;
	case 10: { /* register_vcpu_info: MFN == PFN here */
		u64 mfn = *(u64 *)arg;
		u32 off = *(u32 *)(arg + 8);
		struct vcpu_info *n = (void *)(VIRT_BASE + mfn * 4096 + off);
		if (off % 8 || off + 64 > 4096)
			return -22;
		if (v->vi)
			memcpy(n, v->vi, sizeof(*n));
		else {
			memset(n, 0, sizeof(*n));
			n->upcall_mask = 1;
		}
		fill_time(n);
		v->vi = n;
		n->pending_sel = ~0UL;
		n->upcall_pending = 1;
		return 0;
	}
	default:
		return -38;
	}
}

/* EVTCHNOP_init_control {u64 gfn, u32 offset, u32 vcpu, u8 link_bits OUT}. */
static long fifo_init_control(u32 *a)
{
	u64 mfn = *(u64 *)a;
	u32 off = a[2], v = a[3];
	if (v >= (u32)nr_vcpus)
		return -2;
	if (off % 8 || off + sizeof(struct fifo_cb) > 4096 || F.cb[v])
		return -22;
	F.cb[v] = (struct fifo_cb *)(VIRT_BASE + mfn * 4096 + off);
	if (!D->fifo) { /* Xen's setup_ports: 2-level pending state is kept */
		memcpy(fifo_pt, D->pt, sizeof(D->pt));
		D->fifo = 1;
		for (u32 p = 1; p < NPORTS_2L; p++)
			if (sh->pending[p / 64] & (1UL << (p % 64)))
				F.saved[p] = 1;
	}
	*((u8 *)a + 16) = 17;
	return 0;
}

static long fifo_expand_array(u32 *a)
{
	if (!D->fifo)
		return -95; /* EOPNOTSUPP */
	u32 n = F.nwords / 1024;
	if (n == 128)
		return -28;
	F.page[n] = (u32 *)(VIRT_BASE + *(u64 *)a * 4096);
	F.nwords += 1024;
	for (u32 p = n * 1024; p < F.nwords; p++)
		if (F.saved[p]) {
			F.saved[p] = 0;
			fifo_raise(p);
		}
	return 0;
}

static long fifo_set_priority(u32 *a)
{
	if (!D->fifo)
		return -38;
	if (a[0] >= nports_now() || ports[a[0]].state == P_FREE || a[1] > 15)
		return -22;
	F.prio[a[0]] = (u8)(a[1] + 1);
	return 0;
}

static long fifo_unmask(u32 p)
{
	u32 *w = fifo_word(p);
	if (!w)
		return 0;
	if (__atomic_and_fetch(w, ~F_MASKED, __ATOMIC_SEQ_CST) & F_PENDING)
		fifo_raise(p);
	return 0;
}

static long evtchn_op(int cmd, u32 *a)
{
	switch (cmd) {
	case 11:
		return fifo_init_control(a);
	case 12:
		return fifo_expand_array(a);
	case 13:
		return fifo_set_priority(a);
	case 1: { /* bind_virq {virq, vcpu, port} */
		if (a[0] != 0 || a[1] >= (u32)nr_vcpus)
			return -22;
		if (vcpus[a[1]].timer_port)
			return -17;
		int p = alloc_port(P_VIRQ, a[1]);
		if (p < 0)
			return p;
		vcpus[a[1]].timer_port = p;
		a[2] = p;
		return 0;
	}
	case 4: /* send */
		if (a[0] >= nports_now())
			return -22;
		if (ports[a[0]].state == P_INTERDOMAIN)
			raise_in(ports[a[0]].remote_dom, ports[a[0]].remote_port);
		else if (ports[a[0]].state == P_IPI)
			raise_port(a[0]);
		else if (ports[a[0]].state != P_UNBOUND)
			return -22;
		return 0;
	case 0:
		return bind_interdomain(a);
	case 6:
		return alloc_unbound(a);
	case 3: { /* close: an interdomain peer goes back to unbound */
		u32 p = a[0];
		if (p == 0 || p >= nports_now() || ports[p].state == P_FREE)
			return -22;
		if (ports[p].state == P_INTERDOMAIN) {
			struct port *r = port_in(ports[p].remote_dom, (u32)ports[p].remote_port);
			r->state = P_UNBOUND;
			r->remote_dom = me;
		}
		if (ports[p].state == P_VIRQ)
			vcpus[ports[p].vcpu].timer_port = 0;
		memset(&ports[p], 0, sizeof(ports[p]));
		if (D->fifo) {
			F.prio[p] = 0;
			F.saved[p] = 0;
			if (fifo_word(p))
				__atomic_fetch_and(fifo_word(p), ~F_PENDING, __ATOMIC_SEQ_CST);
		}
		return 0;
	}
	case 8: /* bind_vcpu {port, vcpu} */
		if (a[0] >= nports_now() || a[1] >= (u32)nr_vcpus)
			return -22;
		if (ports[a[0]].state != P_UNBOUND && ports[a[0]].state != P_INTERDOMAIN)
			return -22;
		ports[a[0]].vcpu = (int)a[1];
		return 0;
	case 7: { /* bind_ipi {vcpu, port} */
		if (a[0] >= (u32)nr_vcpus)
			return -2;
		int p = alloc_port(P_IPI, a[0]);
		if (p < 0)
			return p;
		a[1] = p;
		return 0;
	}
	case 9: { /* unmask */
		u32 p = a[0];
		u64 bit = 1UL << (p % 64);
		if (p >= nports_now() || ports[p].state == P_FREE)
			return -22;
		if (D->fifo)
			return fifo_unmask(p);
		if (p >= NPORTS_2L)
			return -22;
		struct vcpu *v = &vcpus[ports[p].vcpu];
		if ((__atomic_fetch_and(&sh->mask[p / 64], ~bit, __ATOMIC_SEQ_CST) & bit) &&
		    (__atomic_load_n(&sh->pending[p / 64], __ATOMIC_SEQ_CST) & bit) &&
		    !(__atomic_fetch_or(&v->vi->pending_sel, 1UL << (p / 64), __ATOMIC_SEQ_CST) &
		      (1UL << (p / 64))))
			mark(me, ports[p].vcpu);
		return 0;
	}
	default:
		return -38;
	}
}

static long sched_op(int cmd, u64 arg)
{
	switch (cmd) {
	case 0:
		pthread_mutex_unlock(&hv);
		sched_yield();
		pthread_mutex_lock(&hv);
		return 0;
	case 1:
		cur->vi->upcall_mask = 0;
		wait_on(cur, upcall_due, NULL, 0);
		return 0;
	case 2: {
		fflush(stdout);
		fprintf(stderr, "mockxen: %lu upcalls (%lu asynchronous), %lu irets\n", nr_upcalls,
			nr_async, nr_irets);
		fprintf(stderr, "mockxen samples: evtchn_rtt %lu lock_wait %lu barrier_wait %lu\n",
			nr_samples[0], nr_samples[1], nr_samples[2]);
		fprintf(stderr, "mockxen roi: begin %lu end %lu\n", nr_roi[1], nr_roi[0]);
		int status = (int)*(u32 *)arg;
		pthread_mutex_unlock(&hv); /* shared with the other domain */
		if (me == 0 && W->dom[1].nv) { /* wait for domain 1 */
			int st = 0;
			wait(&st);
			int other = WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
			if (other > status)
				status = other;
		}
		_exit(status);
	}
	case 3: {
		struct poll_arg pa = { *(u32 **)arg, *(u32 *)(arg + 8) };
		if (pa.n > 128)
			return -22;
		wait_on(cur, poll_ready, &pa, *(u64 *)(arg + 16));
		return 0;
	}
	default:
		return -38;
	}
}

static long update_va_mapping(u64 va, u64 pte)
{
	if ((pte & ~0xfffUL) != SHARED_INFO_MA + me * 4096 || va % 4096)
		return -22;
	if (mmap((void *)va, 4096, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_FIXED, world_fd,
		 me * 4096) == MAP_FAILED)
		return -14;
	return 0;
}

static long dispatch(u64 a1, u64 a2, u64 a3, u64 a4, u64 nr)
{
	switch (nr) {
	case 0: { /* set_trap_table: {u8 vector, u8 flags, u16 cs, u64 address}... */
		const u8 *t = (const u8 *)a1;
		for (int i = 0; i < 256 && t && *(const u64 *)(t + 16 * i + 8); i++) {
			D->trap[t[16 * i]] = *(const u64 *)(t + 16 * i + 8);
			D->trap_mask[t[16 * i]] = t[16 * i + 1] & 4;
		}
		return 0;
	}
	case 4: /* set_callbacks(event, failsafe, syscall) */
		cur->callback = a1;
		return 0;
	case 30: /* callback_op(register, {type, flags, address}) */
		if (a1 != 0)
			return -22;
		if (*(unsigned short *)a2 == 0)
			cur->callback = *(u64 *)(a2 + 8);
		return 0;
	case 14:
		return update_va_mapping(a1, a2);
	case 15:
		cur->singleshot = a1;
		return 0;
	case 17:
		return (4 << 16) | 19;
	case 18:
		pthread_mutex_lock(&con);
		fwrite((const void *)a3, 1, a2, stdout);
		fflush(stdout);
		pthread_mutex_unlock(&con);
		return 0;
	case 24:
		return vcpu_op((int)a1, (u32)a2, a3);
	case 29:
		return sched_op((int)a1, a2);
	case 32:
		return evtchn_op((int)a1, (u32 *)a2);
	case 56: /* smpsim_op(record_samples, id, samples, count): counts only */
		if ((u32)a1 == 1) { /* smpsim_op(roi, phase): counts only */
			if ((u32)a2 > 1)
				return -22;
			nr_roi[(u32)a2]++;
			return 0;
		}
		if ((u32)a1 != 0)
			return -38;
		if ((u32)a2 >= 3 || (u32)a4 > 512)
			return -22;
		if ((u32)a4 && !a3)
			return -14;
		nr_samples[(u32)a2] += (u32)a4;
		return 0;
	default:
		return -38;
	}
}

long mock_hypercall(u64 a1, u64 a2, u64 a3, u64 a4, u64 a5, u64 nr)
{
	(void)a5;
	pthread_mutex_lock(&hv);
	long rc = dispatch(a1, a2, a3, a4, nr);
	timer_check(cur);
	pthread_mutex_unlock(&hv);
	return rc;
}

/* At hypercall exit: is an upcall due? If so mask events (as Xen does when
 * it builds the bounce frame) and return the callback to enter. */
u64 mock_upcall_target(void)
{
	struct vcpu_info *vi = cur->vi;
	if (!vi || !cur->callback || !vi->upcall_pending || vi->upcall_mask)
		return 0;
	vi->upcall_mask = 1;
	__atomic_add_fetch(&nr_upcalls, 1, __ATOMIC_SEQ_CST);
	return cur->callback;
}

/* iret: upcall_mask = !(saved RFLAGS.IF). */
void mock_iret_mask(u64 rflags)
{
	cur->vi->upcall_mask = !(rflags & 0x200);
	__atomic_add_fetch(&nr_irets, 1, __ATOMIC_SEQ_CST);
}

/*
 * Hypercall entry. Args RDI RSI RDX R10 R8 -> C args; R9 preserved for the
 * guest. On the way out, if an upcall is due, build the bounce frame for
 * "returned from the hypercall" (RIP = the guest's return address, RAX =
 * the result) and enter the callback instead of returning.
 */
__asm__(".text\n"
	"mock_entry:\n"
	"  pushq %rbp\n"
	"  movq %rsp, %rbp\n"
	"  pushq %r9\n"      /* -8(%rbp) */
	"  subq $8, %rsp\n"  /* -16(%rbp): the result, across the next call */
	"  andq $-16, %rsp\n"
	"  movq %r10, %rcx\n"
	"  movl %eax, %r9d\n"
	"  call mock_hypercall\n"
	"  movq %rax, -16(%rbp)\n" /* keep the result */
	"  call mock_upcall_target\n"
	"  movq %rax, %rdx\n"
	"  movq -16(%rbp), %rax\n"
	"  movq -8(%rbp), %r9\n"
	"  movq %rbp, %rsp\n"
	"  popq %rbp\n"
	"  testq %rdx, %rdx\n"
	"  jnz 1f\n"
	"  ret\n"
	"1: movq (%rsp), %r11\n" /* interrupted RIP */
	"  leaq 8(%rsp), %rcx\n" /* interrupted RSP */
	"  movq %rcx, %rsi\n"
	"  andq $-16, %rsi\n"
	"  subq $56, %rsi\n"
	"  movq %rcx, 0(%rsi)\n" /* RCX slot (clobbered by a hypercall anyway) */
	"  movq %r11, 8(%rsi)\n" /* R11 slot */
	"  movq %r11, 16(%rsi)\n" /* RIP */
	"  movq $0xe030, 24(%rsi)\n" /* CS: kernel, saved mask 0 */
	"  pushfq\n"
	"  popq %rdi\n"
	"  orq $0x200, %rdi\n"
	"  movq %rdi, 32(%rsi)\n" /* RFLAGS with IF = !saved mask */
	"  movq %rcx, 40(%rsi)\n" /* RSP */
	"  movq $0xe02b, 48(%rsi)\n" /* SS */
	"  movq %rsi, %rsp\n"
	"  jmp *%rdx\n"
	"\n"
	/* Slot 23's stub pushed rcx, r11, rax: RSP -> iret_context. */
	"mock_iret:\n"
	"  pushq %rdi\n"
	"  pushq %rsi\n"
	"  pushq %rdx\n"
	"  pushq %r8\n"
	"  pushq %r9\n"
	"  pushq %r10\n"
	"  pushq %rbp\n"
	"  movq %rsp, %rbp\n"
	"  movq 56+48(%rsp), %rdi\n" /* saved RFLAGS */
	"  andq $-16, %rsp\n"
	"  call mock_iret_mask\n"
	"  movq %rbp, %rsp\n"
	"  popq %rbp\n"
	"  popq %r10\n"
	"  popq %r9\n"
	"  popq %r8\n"
	"  popq %rdx\n"
	"  popq %rsi\n"
	"  popq %rdi\n"
	"  movq 0(%rsp), %rax\n"
	"  movq 8(%rsp), %r11\n"
	"  movq 16(%rsp), %rcx\n"
	"  movq $0x33, 40(%rsp)\n" /* host user CS */
	"  movq $0x2b, 64(%rsp)\n" /* host user SS */
	"  addq $32, %rsp\n"
	"  iretq\n");
extern char mock_iret[];
extern char mock_entry[];

static void fill_hypercall_page(u8 *page)
{
	memset(page, 0xcc, 4096);
	for (int n = 0; n < 128; n++) {
		u8 *s = page + n * 32;
		u64 e = (u64)mock_entry;
		if (n == 23) { /* push rcx; push r11; push rax, as the PV stub */
			memcpy(s, "\x51\x41\x53\x50", 4);
			s += 4;
			e = (u64)mock_iret;
		}
		s[0] = 0xb8; /* mov eax, imm32 */
		memcpy(s + 1, &n, 4);
		s[5] = 0x49; /* movabs r11, imm64 */
		s[6] = 0xbb;
		memcpy(s + 7, &e, 8);
		s[15] = 0x41; /* jmp r11 */
		s[16] = 0xff;
		s[17] = 0xe3;
	}
}

static __attribute__((noreturn)) void enter_guest(u64 rip, u64 rsp, u64 rsi)
{
	__asm__ __volatile__("movq %0, %%rsp\n\txorl %%ebp, %%ebp\n\tjmp *%1"
			     :
			     : "r"(rsp), "r"(rip), "S"(rsi)
			     : "memory");
	__builtin_unreachable();
}

/*
 * SIGUSR1: if this VCPU is running guest code with an upcall due, turn the
 * interrupted context into a bounce frame and resume in the callback.
 */
static void on_kick(int sig, siginfo_t *info, void *ctx)
{
	(void)sig;
	(void)info;
	greg_t *g = ((ucontext_t *)ctx)->uc_mcontext.gregs;
	u64 rip = (u64)g[REG_RIP], rsp = (u64)g[REG_RSP];
	if (!cur || rip < guest_text_lo || rip >= guest_text_hi)
		return; /* in the mock: delivered at hypercall exit */
	struct vcpu_info *vi = cur->vi;
	if (!vi || !cur->callback || !vi->upcall_pending || vi->upcall_mask)
		return;
	vi->upcall_mask = 1;
	__atomic_add_fetch(&nr_upcalls, 1, __ATOMIC_SEQ_CST);
	__atomic_add_fetch(&nr_async, 1, __ATOMIC_SEQ_CST);
	u64 *f = (u64 *)((rsp & ~15UL) - 56);
	f[0] = (u64)g[REG_RCX];
	f[1] = (u64)g[REG_R11];
	f[2] = rip;
	f[3] = 0xe030;
	f[4] = (u64)g[REG_EFL] | 0x200;
	f[5] = rsp;
	f[6] = 0xe02b;
	g[REG_RSP] = (greg_t)f;
	g[REG_RIP] = (greg_t)cur->callback;
}

static void *noise_thread(void *a)
{
	long us = (long)a;
	for (;;) {
		usleep((useconds_t)us);
		for (int v = 0; v < nr_vcpus; v++) {
			struct vcpu *t = &vcpus[v];
			if (!__atomic_load_n(&t->has_th, __ATOMIC_SEQ_CST) || !t->vi)
				continue;
			if (!__atomic_exchange_n(&t->vi->upcall_pending, 1, __ATOMIC_SEQ_CST)) {
				pthread_cond_broadcast(&t->cv);
				pthread_kill(t->th, SIGUSR1);
			}
		}
	}
	return NULL;
}

/* A fault in guest code: bounce it to the guest's trap handler. */
static void on_fault(int sig, siginfo_t *info, void *ctx)
{
	greg_t *g = ((ucontext_t *)ctx)->uc_mcontext.gregs;
	u64 rip = (u64)g[REG_RIP], rsp = (u64)g[REG_RSP];
	int vec = sig == SIGSEGV ? 14 : sig == SIGILL ? 6 : 0;
	if (!cur || rip < guest_text_lo || rip >= guest_text_hi || !D->trap[vec]) {
		signal(sig, SIG_DFL); /* not the guest's, or no handler: die of it */
		return;
	}
	int err = vec == 14;
	u64 *f = (u64 *)((rsp & ~15UL) - 8 * (7 + err));
	int i = 0;
	f[i++] = (u64)g[REG_RCX];
	f[i++] = (u64)g[REG_R11];
	if (err)
		f[i++] = (u64)g[REG_ERR];
	f[i++] = rip;
	f[i++] = 0xe030;
	f[i++] = (u64)g[REG_EFL] | 0x200;
	f[i++] = rsp;
	f[i++] = 0xe02b;
	if (vec == 14)
		cur->vi->cr2 = (u64)info->si_addr;
	if (D->trap_mask[vec])
		cur->vi->upcall_mask = 1;
	g[REG_RSP] = (greg_t)f;
	g[REG_RIP] = (greg_t)D->trap[vec];
}

static void become_vcpu(struct vcpu *v)
{
	stack_t ss = { .ss_sp = malloc(1 << 16), .ss_size = 1 << 16, .ss_flags = 0 };
	sigaltstack(&ss, NULL);
	cur = v;
	v->th = pthread_self();
	__atomic_store_n(&v->has_th, 1, __ATOMIC_SEQ_CST);
}

static void *vcpu_thread(void *a)
{
	struct vcpu *v = a;
	become_vcpu(v);
	enter_guest(v->rip, v->rsp, 0);
}

static void init_world(int ndoms)
{
	world_fd = memfd_create("world", 0);
	if (world_fd < 0 || ftruncate(world_fd, sizeof(struct world)))
		exit(103);
	W = mmap((void *)WORLD_VA, sizeof(struct world), PROT_READ | PROT_WRITE,
		 MAP_SHARED | MAP_FIXED_NOREPLACE, world_fd, 0);
	if (W != (struct world *)WORLD_VA)
		exit(104);
	pthread_mutexattr_t ma;
	pthread_mutexattr_init(&ma);
	pthread_mutexattr_setpshared(&ma, PTHREAD_PROCESS_SHARED);
	pthread_mutex_init(&hv, &ma);
	pthread_condattr_t ca;
	pthread_condattr_init(&ca);
	pthread_condattr_setpshared(&ca, PTHREAD_PROCESS_SHARED);
	for (int d = 0; d < ndoms; d++)
		for (int i = 0; i < MAXV; i++)
			pthread_cond_init(&W->dom[d].vc[i].cv, &ca);
}

static void init_domain(int d, int nv)
{
	W->dom[d].nv = nv;
	for (int i = 0; i < 32; i++) {
		W->si[d].vcpu_info[i].upcall_mask = 1;
		fill_time(&W->si[d].vcpu_info[i]);
		if (i < nv)
			W->dom[d].vc[i].vi = &W->si[d].vcpu_info[i];
	}
}

int main(int argc, char **argv)
{
	if (argc != 7 && argc != 8) {
		fprintf(stderr, "usage: %s NR_PAGES ENTRY IMAGE_END NR_VCPUS ALARM_S IMAGE [IMAGE2]\n",
			argv[0]);
		return 100;
	}
	u64 nr_pages = strtoull(argv[1], 0, 0), entry = strtoull(argv[2], 0, 0);
	u64 image_end = strtoull(argv[3], 0, 0);
	int nv = atoi(argv[4]), ndoms = argc - 6;
	init_world(ndoms);
	calibrate();
	for (int d = 0; d < ndoms; d++)
		init_domain(d, nv);
	fflush(stdout);
	me = ndoms == 2 && fork() == 0 ? 1 : 0;
	D = &W->dom[me];
	alarm((unsigned)atoi(argv[5]));
	u8 *mem = mmap((void *)VIRT_BASE, nr_pages * 4096, PROT_READ | PROT_WRITE | PROT_EXEC,
		       MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED_NOREPLACE, -1, 0);
	if (mem != (u8 *)VIRT_BASE) {
		perror("mmap guest memory");
		return 101;
	}
	FILE *f = fopen(argv[6 + me], "rb");
	if (!f || fread(mem, 1, image_end - VIRT_BASE, f) != image_end - VIRT_BASE) {
		perror("read image");
		return 102;
	}
	fclose(f);
	fill_hypercall_page(mem); /* the page is the first of the image */
	guest_text_lo = VIRT_BASE + 4096;
	guest_text_hi = image_end;
	struct sigaction sa;
	memset(&sa, 0, sizeof(sa));
	sa.sa_sigaction = on_kick;
	sa.sa_flags = SA_SIGINFO | SA_ONSTACK | SA_RESTART;
	sigaction(SIGUSR1, &sa, NULL);
	sa.sa_sigaction = on_fault;
	sigaction(SIGSEGV, &sa, NULL);
	sigaction(SIGILL, &sa, NULL);
	sigaction(SIGFPE, &sa, NULL);
	const char *noise = getenv("MOCKXEN_NOISE_US");
	if (noise && atol(noise) > 0) {
		pthread_t nt;
		pthread_create(&nt, NULL, noise_thread, (void *)atol(noise));
	}
	u8 *si = (u8 *)image_end;
	memcpy(si, "xen-3.0-x86_64", 15);
	*(u64 *)(si + 32) = nr_pages;
	*(u64 *)(si + 40) = SHARED_INFO_MA + me * 4096;
	vcpus[0].up = vcpus[0].initialised = 1;
	become_vcpu(&vcpus[0]);
	enter_guest(entry, image_end + 3 * 4096, (u64)si);
}
