/*
 * evstorm: an event storm over more than 4096 ports on the FIFO event ABI
 * (xen-abi.md §3.5), with the guest's own FIFO consumer.
 *
 * Setup: every VCPU points its event callback at evstorm_callback (below:
 * the runtime's 2-level scan knows nothing of FIFO queues) and registers a
 * control block with EVTCHNOP_init_control (32 blocks per page, at offsets
 * 128 apart); the first call switches the domain to FIFO. The VCPUs then
 * open `ports` / 2 loopback interdomain pairs concurrently, pair i on VCPU
 * i % nr_cpus (alloc_unbound(DOMID_SELF) -> A, bind_interdomain(DOMID_SELF,
 * A) -> B), one at a time adding an event-array page with
 * EVTCHNOP_expand_array whenever a new port has no event word yet (pages
 * are filled with MASKED first, as Linux does). Each VCPU then takes the
 * storm ports j with j % nr_cpus = its id: checks that every B port came up
 * pending (the binding raises it, also when its word appeared only later
 * and Xen kept the pending state meanwhile) and no A port did, binds them
 * to itself (EVTCHNOP_bind_vcpu), gives pair i priority 2, 7 (default) or
 * 12 by (i / nr_cpus) % 4 = 0, 1-2, 3 (EVTCHNOP_set_priority), acks the
 * binding event and unmasks.
 *
 * Storm: `rounds` rounds. In each, every VCPU masks its events, then sends
 * on both ends of its pairs (pair i belongs to VCPU i % nr_cpus), `repeat`
 * passes over them: the first pass links every receiving port, the others
 * find it PENDING and coalesce. After a barrier (all sends done) each VCPU
 * unmasks and drains its queues in the upcall: take the lowest ready
 * priority, follow the LINK chain clearing LINKED atomically, ack PENDING,
 * count. So each port gets exactly one event per round.
 *
 * Checks: every port handled exactly `rounds` events, on the VCPU it is
 * bound to; within a drain, priorities never go back up (all were linked
 * before the drain began); within one (sender, priority) stream, events
 * arrive in send order (FIFO); no event on a port that is not a storm port.
 * Latency send -> handled (TSC cycles; in mode 0 it includes the wait for
 * the round's last send) goes to the evtchn_rtt histogram through
 * lat_record.
 * Mode 1 (concurrent) instead leaves events enabled while the sends go on,
 * so the queues are drained as they fill (Xen linking at the tail while
 * the consumer takes the head: the LINKED/LINK race the atomic steps are
 * for); each port is sent once per round, and the priority order is not
 * checked (a new higher-priority event is served next, as it should be).
 * arg0: ports (a power of two, default 8192); arg1: rounds (default 2);
 * arg2: sends per port per round in mode 0 (default 2); arg3: mode
 * (0 phased, 1 concurrent; default 0).
 */
#include "rt.h"
#include "evtchn_fifo.h"

WORKLOAD("evstorm", 8192, 2, 2, 0, 0, 0, 0, 0);

#define NONE 0xffffffffu
#define CB_STRIDE 128 /* bytes between control blocks in a page */
#define CB_PER_PAGE (PAGE_SIZE / CB_STRIDE)
#define CLASSES 3
static const u8 class_prio[CLASSES] = { 2, EVTCHN_FIFO_PRIORITY_DEFAULT, 12 };

struct pinfo {
	u32 port;          /* the storm port */
	volatile u32 count; /* events handled on it */
	volatile u64 send_tsc; /* first send of this round to it */
	u32 seq;           /* position in its sender's pass */
	u16 recv;          /* VCPU it is bound to */
	u16 sender;        /* VCPU that sends to it */
	u8 cls;            /* index into class_prio */
	u8 pad[7];
};

/* Per-VCPU consumer state; touched only by its VCPU (and VCPU 0 at the end). */
struct fcpu {
	struct evtchn_fifo_control_block *cb;
	u32 head[EVTCHN_FIFO_MAX_QUEUES]; /* where each queue's walk resumes, 0: at head[] */
	u32 id;
	u32 last_prio;       /* of the last event handled in this drain */
	u64 handled, upcalls, inversions, out_of_order, wrong_vcpu, stray;
	u64 sent;            /* sends this VCPU made */
	u64 expected;        /* events per round */
	u32 *last_seq;       /* per (sender, class): seq + 1 of the last event */
	u64 *lat;            /* this round's send -> handled samples */
	u64 nlat, lat_cap;
} ALIGNED(CACHELINE);

static struct pinfo *pinfo;
static u32 *idx_of; /* port -> storm index, NONE if not a storm port */
static u32 idx_len;
static struct fcpu *fcpus;
static event_word_t *array;   /* event-array pages, contiguous */
static u32 array_pages_max, array_pages;
static volatile u32 nwords;
static spinlock_t expand_lock = SPINLOCK_INIT;
static u8 *cb_pages;
static u32 nports, npairs, min_port = NONE, max_port;
static u64 sends_total;
static int concurrent; /* mode 1: queues drained while the sends go on */
static volatile unsigned int in_prio[CLASSES];

void evstorm_callback(void);

/*
 * The event callback: the runtime's entry (entry.S) with the FIFO drain in
 * place of the 2-level scan. Xen's bounce frame holds RCX and R11 on top.
 */
__asm__(".text\n"
	".globl evstorm_callback\n"
	"evstorm_callback:\n"
	"	cld\n"
	"	popq %rcx\n"
	"	popq %r11\n"
	"	pushq %rax\n"
	"	pushq %rcx\n"
	"	pushq %rdx\n"
	"	pushq %rsi\n"
	"	pushq %rdi\n"
	"	pushq %r8\n"
	"	pushq %r9\n"
	"	pushq %r10\n"
	"	pushq %r11\n"
	"	pushq %rbp\n"
	"	movq %rsp, %rbp\n"
	"	andq $-16, %rsp\n"
	"	call evstorm_upcall\n"
	"	movq %rbp, %rsp\n"
	"	popq %rbp\n"
	"	popq %r11\n"
	"	popq %r10\n"
	"	popq %r9\n"
	"	popq %r8\n"
	"	popq %rdi\n"
	"	popq %rsi\n"
	"	popq %rdx\n"
	"	popq %rcx\n"
	"	popq %rax\n"
	"	pushq $0\n" /* iret flags: not in a syscall */
	"	jmp hypercall_page + 23 * 32\n");

static long evop(int cmd, void *arg)
{
	return HYPERVISOR_event_channel_op(cmd, arg);
}

static volatile event_word_t *word(u32 port)
{
	return &array[port];
}

/* ---- the consumer (upcall context: integer registers only) ----------- */
#pragma GCC push_options
#pragma GCC target("general-regs-only")

static void handle(struct fcpu *f, u32 port)
{
	fifo_clear_bit(word(port), EVTCHN_FIFO_PENDING); /* ack before handling */
	u32 j = port < idx_len ? idx_of[port] : NONE;
	if (j == NONE) {
		f->stray++;
		return;
	}
	struct pinfo *p = &pinfo[j];
	p->count++;
	f->handled++;
	f->wrong_vcpu += p->recv != f->id;
	u32 prio = class_prio[p->cls];
	f->inversions += prio < f->last_prio && !concurrent;
	f->last_prio = prio;
	u32 *last = &f->last_seq[p->sender * CLASSES + p->cls];
	f->out_of_order += p->seq + 1 <= *last;
	*last = p->seq + 1;
	if (f->nlat < f->lat_cap)
		f->lat[f->nlat++] = rdtsc() - p->send_tsc;
}

/* One event off queue q: Linux's consume_one_event, in our words. */
static void consume_one(struct fcpu *f, unsigned q, u32 *ready)
{
	u32 port = f->head[q];
	if (port == 0) /* walked to the tail last time: Xen rewrote head[q] */
		port = READ_ONCE(f->cb->head[q]);
	if (port == 0 || port >= nwords)
		guest_fail("VCPU %u: queue %u ready with head port %u (%u words)", f->id, q, port,
			   nwords);
	volatile event_word_t *w = word(port);
	u32 next = fifo_clear_linked(w);
	if (next == 0)
		*ready &= ~(1u << q); /* queue empty unless Xen sets ready again */
	u32 v = READ_ONCE(*w);
	if ((v & (1u << EVTCHN_FIFO_PENDING)) && !(v & (1u << EVTCHN_FIFO_MASKED)))
		handle(f, port);
	f->head[q] = next;
}

static void drain(struct fcpu *f)
{
	u32 ready = xchg_u32(&f->cb->ready, 0);
	while (ready) {
		consume_one(f, ctz64(ready), &ready);
		ready |= xchg_u32(&f->cb->ready, 0);
	}
}

void evstorm_upcall(void);
void evstorm_upcall(void)
{
	struct cpu *c = this_cpu();
	struct fcpu *f = &fcpus[c->id];
	f->upcalls++;
	do {
		WRITE_ONCE(c->vi->evtchn_upcall_pending, 0);
		drain(f);
		compiler_barrier();
	} while (READ_ONCE(c->vi->evtchn_upcall_pending));
}

#pragma GCC pop_options

/* ---- setup ------------------------------------------------------------ */

void workload_init(void)
{
	u64 ports = arg(0);
	if (arg(3) > 1)
		guest_fail("mode %lu: 0 (phased) or 1 (concurrent)", arg(3));
	concurrent = arg(3) == 1;
	if (ports < 2 || (ports & (ports - 1)) || ports > 65536)
		guest_fail("ports %lu: a power of two in 2..=65536", ports);
	nports = (u32)ports;
	npairs = nports / 2;
	/* Ports are handed out lowest first; the runtime holds a few already. */
	idx_len = nports + nr_cpus + 64;
	idx_of = heap_alloc_raw(idx_len * sizeof(u32), CACHELINE);
	for (u32 i = 0; i < idx_len; i++)
		idx_of[i] = NONE;
	pinfo = heap_alloc(nports * sizeof(struct pinfo), CACHELINE);
	array_pages_max = idx_len / EVTCHN_FIFO_EVENT_WORDS_PER_PAGE + 1;
	array = heap_alloc_raw((u64)array_pages_max * PAGE_SIZE, PAGE_SIZE);
	cb_pages = heap_alloc((nr_cpus + CB_PER_PAGE - 1) / CB_PER_PAGE * PAGE_SIZE, PAGE_SIZE);
	fcpus = heap_alloc(nr_cpus * sizeof(struct fcpu), CACHELINE);
	u64 cap = nports / nr_cpus + 1;
	for (u32 v = 0; v < nr_cpus; v++) {
		struct fcpu *f = &fcpus[v];
		f->id = v;
		f->cb = (struct evtchn_fifo_control_block *)(cb_pages + v * CB_STRIDE);
		f->last_seq = heap_alloc(nr_cpus * CLASSES * sizeof(u32), CACHELINE);
		f->lat = heap_alloc_raw(cap * sizeof(u64), CACHELINE);
		f->lat_cap = cap;
	}
}

static u64 mfn_of(const void *va)
{
	return pfn_to_mfn(virt_to_pfn(va));
}

/* This VCPU: FIFO upcall entry, then its control block. */
static void fifo_init_vcpu(struct fcpu *f)
{
	struct callback_register ev = { CALLBACKTYPE_event, 0, 0, (u64)evstorm_callback };
	long rc = HYPERVISOR_callback_op(CALLBACKOP_register, &ev);
	if (rc < 0)
		guest_fail("VCPU %u: callback_op(register event) returned %ld", f->id, rc);
	u64 va = (u64)f->cb;
	struct evtchn_init_control ic = { mfn_of(f->cb), (u32)(va & (PAGE_SIZE - 1)), f->id, 0, {0} };
	rc = evop(EVTCHNOP_init_control, &ic);
	if (rc < 0)
		guest_fail("VCPU %u: EVTCHNOP_init_control returned %ld", f->id, rc);
	if (ic.link_bits != EVTCHN_FIFO_LINK_BITS)
		guest_fail("VCPU %u: init_control gave link_bits %u", f->id, ic.link_bits);
}

/*
 * Add event-array pages until `port` has a word (all words start MASKED).
 * VCPUs open ports concurrently; one at a time adds pages.
 */
static void ensure_word(u32 port)
{
	if (port < READ_ONCE(nwords))
		return;
	spin_lock(&expand_lock);
	while (port >= nwords) {
		if (array_pages == array_pages_max)
			guest_fail("port %u: past the %u event-array pages set aside", port,
				   array_pages_max);
		event_word_t *page = array + (u64)array_pages * EVTCHN_FIFO_EVENT_WORDS_PER_PAGE;
		for (u32 i = 0; i < EVTCHN_FIFO_EVENT_WORDS_PER_PAGE; i++)
			page[i] = 1u << EVTCHN_FIFO_MASKED;
		struct evtchn_expand_array ea = { mfn_of(page) };
		long rc = evop(EVTCHNOP_expand_array, &ea);
		if (rc < 0)
			guest_fail("EVTCHNOP_expand_array(page %u) returned %ld", array_pages, rc);
		array_pages++;
		WRITE_ONCE(nwords, nwords + EVTCHN_FIFO_EVENT_WORDS_PER_PAGE);
	}
	spin_unlock(&expand_lock);
}

static void note_port(u32 j, u32 port)
{
	if (port >= idx_len)
		guest_fail("storm port %u beyond the %u-entry port map", port, idx_len);
	idx_of[port] = j;
	pinfo[j].port = port;
	ensure_word(port);
}

/* This VCPU's pairs: i % nr_cpus == its id. */
static void open_pairs(struct cpu *c)
{
	for (u32 i = c->id; i < npairs; i += nr_cpus) {
		u32 a, b;
		long rc = evtchn_alloc_unbound(DOMID_SELF, &a);
		if (rc < 0)
			guest_fail("pair %u: alloc_unbound(DOMID_SELF) returned %ld", i, rc);
		note_port(2 * i, a);
		rc = evtchn_bind_interdomain(DOMID_SELF, a, &b);
		if (rc < 0)
			guest_fail("pair %u: bind_interdomain(DOMID_SELF, %u) returned %ld", i, a, rc);
		note_port(2 * i + 1, b);
	}
}

/* Binding, priority, ack of the binding event, unmask: storm index j. */
static void configure(u32 j)
{
	struct pinfo *p = &pinfo[j];
	u32 i = j / 2, k = i / nr_cpus;
	p->recv = (u16)(j % nr_cpus);
	p->sender = (u16)(i % nr_cpus);
	p->seq = 2 * k + (j % 2 ? 0 : 1); /* the sender sends on A (raising B) first */
	p->cls = k % 4 == 0 ? 0 : k % 4 == 3 ? 2 : 1;
	xadd_u32(&in_prio[p->cls], 1);
	long rc = p->recv ? evtchn_bind_vcpu(p->port, p->recv) : 0;
	if (rc < 0)
		guest_fail("bind_vcpu(port %u, VCPU %u) returned %ld", p->port, p->recv, rc);
	if (class_prio[p->cls] != EVTCHN_FIFO_PRIORITY_DEFAULT) {
		struct evtchn_set_priority sp = { p->port, class_prio[p->cls] };
		rc = evop(EVTCHNOP_set_priority, &sp);
		if (rc < 0)
			guest_fail("set_priority(port %u, %u) returned %ld", p->port, sp.priority, rc);
	}
	volatile event_word_t *w = word(p->port);
	int pending = fifo_test_bit(w, EVTCHN_FIFO_PENDING);
	if (pending != (int)(j % 2))
		guest_fail("port %u (%s end of pair %u) pending %d after binding", p->port,
			   j % 2 ? "bound" : "unbound", i, pending);
	if (fifo_test_bit(w, EVTCHN_FIFO_LINKED))
		guest_fail("masked port %u was linked", p->port);
	fifo_clear_bit(w, EVTCHN_FIFO_PENDING);
	if (fifo_clear_masked_needs_unmask(w))
		guest_fail("port %u still pending after its ack", p->port);
	fcpus[p->recv].expected++;
}

/* Each VCPU configures the ports bound to it (j % nr_cpus == its id). */
static void configure_mine(struct cpu *c)
{
	for (u32 j = c->id; j < nports; j += nr_cpus)
		configure(j);
}

/* ---- storm -------------------------------------------------------------- */

static void send_round(struct cpu *c)
{
	u64 passes = concurrent ? 1 : arg(2);
	for (u64 rep = 0; rep < passes; rep++) {
		for (u32 i = c->id; i < npairs; i += nr_cpus) {
			for (u32 e = 0; e < 2; e++) {
				/* sending on one end raises the other */
				struct pinfo *to = &pinfo[2 * i + 1 - e];
				if (rep == 0)
					to->send_tsc = rdtsc();
				fcpus[c->id].sent++;
				long rc = evtchn_send(pinfo[2 * i + e].port);
				if (rc < 0)
					guest_fail("send on port %u returned %ld", pinfo[2 * i + e].port,
						   rc);
			}
		}
	}
}

static void round_begin(struct fcpu *f)
{
	f->last_prio = 0;
	f->nlat = 0;
	for (u32 k = 0; k < nr_cpus * CLASSES; k++)
		f->last_seq[k] = 0;
}

static void round_drain(struct fcpu *f, u64 target)
{
	local_irq_enable(); /* mode 0: the upcall drains every queue now */
	for (u64 spins = 0; READ_ONCE(f->handled) < target; spins++) {
		if (spins == (1ul << 26))
			guest_fail("VCPU %u: %lu of %lu events handled", f->id, f->handled, target);
		cpu_relax();
	}
	local_irq_disable();
	for (u64 k = 0; k < f->nlat; k++)
		lat_record(LAT_EVTCHN_RTT, f->lat[k]);
}

void workload_run(struct cpu *c)
{
	struct fcpu *f = &fcpus[c->id];
	local_irq_disable();
	fifo_init_vcpu(f);
	smp_barrier();
	open_pairs(c);
	smp_barrier();
	configure_mine(c);
	smp_barrier();
	for (u64 r = 0; r < arg(1); r++) {
		round_begin(f);
		smp_barrier();
		if (concurrent)
			local_irq_enable(); /* events arrive as they are sent */
		send_round(c);
		smp_barrier();
		round_drain(f, f->expected * (r + 1));
	}
	smp_barrier();
	local_irq_enable();
}

void workload_check(void)
{
	u64 rounds = arg(1), handled = 0, upcalls = 0;
	for (u32 j = 0; j < nports; j++) {
		u32 port = pinfo[j].port;
		if (pinfo[j].count != rounds)
			guest_fail("port %u handled %u events, expected %lu", port, pinfo[j].count,
				   rounds);
		min_port = port < min_port ? port : min_port;
		max_port = port > max_port ? port : max_port;
	}
	for (u32 v = 0; v < nr_cpus; v++) {
		struct fcpu *f = &fcpus[v];
		if (f->inversions || f->out_of_order || f->wrong_vcpu || f->stray)
			guest_fail("VCPU %u: %lu priority inversions, %lu out of FIFO order, %lu on the "
				   "wrong VCPU, %lu stray",
				   v, f->inversions, f->out_of_order, f->wrong_vcpu, f->stray);
		handled += f->handled;
		upcalls += f->upcalls;
		sends_total += f->sent;
	}
	if (handled != (u64)nports * rounds)
		guest_fail("%lu events handled, expected %lu", handled, (u64)nports * rounds);
	printf("evstorm: FIFO ABI, %u VCPUs, %u ports %u..%u, %u event-array pages, priority "
	       "2/7/12 on %u/%u/%u ports\n",
	       nr_cpus, nports, min_port, max_port, array_pages, in_prio[0], in_prio[1],
	       in_prio[2]);
	printf("evstorm: %lu rounds, %lu sends, %lu events delivered, %lu coalesced, %lu upcalls, "
	       "%s order held\n",
	       rounds, sends_total, handled, sends_total - handled, upcalls,
	       concurrent ? "FIFO" : "priority and FIFO");
}
