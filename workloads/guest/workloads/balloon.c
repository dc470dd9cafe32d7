/*
 * balloon: two domains move memory through the hypervisor (xen-abi.md
 * §4.7, §4.8). Domain 1 writes `pages` pages, unmaps them, invalidates
 * their P2M entries and gives them back (decrease_reservation); domain 0,
 * whose max_pages the builder set `pages` + 2 above its memory, grows by
 * as many (populate_physmap at PFNs past its memory), maps them and
 * writes and verifies them. Then one page goes from domain 1 to domain 0
 * by GNTTABOP_transfer into an accept_transfer entry of domain 0's grant
 * table, and domain 0 checks the entry (committed, completed, the MFN),
 * the M2P and the page's contents. Domain 0 then asks for 4 pages more
 * than its max allows and must get exactly what is left (Xen's partial
 * count), then nothing; finally it gives the grown pages back and domain
 * 1 repopulates its own PFNs with them. Each side checks
 * current_reservation after every step: in the end domain 0 has one page
 * more than it started with, domain 1 one fewer. The two coordinate
 * through the builder-shared area and an interdomain event channel, as
 * interdomain does; only VCPU 0 of each domain takes part.
 * arg0: pages (default 16).
 */
#include "rt.h"
#include "memory.h"

WORKLOAD("balloon", 16, 0, 0, 0, 0, 0, 0, 0);

#define BAL_MAGIC 0x4c4c4142 /* "BALL": header published by domain 0 */
#define MAX_PAGES 256
#define XFER_REF GNTTAB_NR_RESERVED_ENTRIES
#define PTE_RW_PAGE 0x67 /* present, writable, user, accessed, dirty */
#define OVERASK 4

struct bal {
	volatile u32 magic;       /* set last by domain 0 */
	volatile u32 port;        /* domain 0's unbound port */
	volatile u32 bound;       /* domain 1 bound to it */
	volatile u32 shrunk;      /* domain 1 gave its pages back */
	volatile u32 gref;        /* domain 0's accept_transfer entry is ready */
	volatile u32 transferred; /* domain 1 transferred its page */
	volatile u32 returned;    /* domain 0 gave the grown pages back */
	volatile u32 regrown;     /* domain 1 repopulated its PFNs */
	volatile u64 xfer_mfn;    /* the transferred frame */
	volatile u64 xfer_sum;    /* the sum of its words */
	volatile u64 mfns[MAX_PAGES]; /* the frames domain 1 gave back */
};

static struct bal *x;
static u32 port;
static volatile u64 events;
static u64 npages;
static u8 *pages;     /* npages + 1 pages: ballooned, then the transferred one */
static u64 list[MAX_PAGES + OVERASK];

static void on_event(u32 p, void *a)
{
	(void)p;
	(void)a;
	events++;
}

void workload_init(void)
{
	if (smpsim_params.domain_index > 1)
		guest_fail("domain_index %u: this workload has two domains", smpsim_params.domain_index);
	if (!smpsim_params.shared_va || smpsim_params.shared_bytes < sizeof(struct bal))
		guest_fail("needs a shared area of %lu bytes from the builder (shared_va %lx, %lu "
			   "bytes)",
			   sizeof(struct bal), smpsim_params.shared_va, smpsim_params.shared_bytes);
	npages = arg(0);
	if (npages > MAX_PAGES)
		guest_fail("pages %lu: at most %u", npages, MAX_PAGES);
	x = (struct bal *)smpsim_params.shared_va;
	/* Domain 0 maps new frames here; domain 1 gives these pages away. */
	pages = heap_alloc_raw((npages + 2) * PAGE_SIZE, PAGE_SIZE);
}

static u8 *page(u64 i)
{
	return pages + i * PAGE_SIZE;
}

static u64 word(u64 phase, u64 i, u64 j)
{
	return 0xba11000000000000ul | phase << 40 | i << 20 | j;
}

/* Writes page `i` for `phase` and reads it back; the sum of its words. */
static u64 fill(u8 *va, u64 phase, u64 i)
{
	volatile u64 *w = (volatile u64 *)va;
	u64 sum = 0;
	for (u64 j = 0; j < PAGE_SIZE / 8; j++)
		w[j] = word(phase, i, j);
	for (u64 j = 0; j < PAGE_SIZE / 8; j++) {
		if (w[j] != word(phase, i, j))
			guest_fail("page %lu word %lu reads %lx, wrote %lx", i, j, w[j],
				   word(phase, i, j));
		sum += w[j];
	}
	return sum;
}

static void send(void)
{
	long rc = evtchn_send(port);
	if (rc < 0)
		guest_fail("send on interdomain port %u returned %ld", port, rc);
}

static void map(void *va, u64 mfn)
{
	long rc = HYPERVISOR_update_va_mapping((u64)va, mfn << 12 | PTE_RW_PAGE, UVMF_INVLPG);
	if (rc < 0)
		guest_fail("update_va_mapping(%lx, MFN %lx) returned %ld", (u64)va, mfn, rc);
}

static void unmap(void *va)
{
	long rc = HYPERVISOR_update_va_mapping((u64)va, 0, UVMF_INVLPG);
	if (rc < 0)
		guest_fail("unmapping %lx returned %ld", (u64)va, rc);
}

static u64 *p2m(void)
{
	if (!start_info->mfn_list)
		guest_fail("no P2M list from the builder");
	return (u64 *)start_info->mfn_list;
}

static u64 reservation(void)
{
	long r = memory_query(XENMEM_current_reservation);
	if (r < 0)
		guest_fail("current_reservation returned %ld", r);
	return (u64)r;
}

static void expect_reservation(u64 want, const char *after)
{
	u64 r = reservation();
	if (r != want)
		guest_fail("current_reservation %lu after %s, expected %lu", r, after, want);
}

static void resv(u32 cmd, u64 n, long want, const char *what)
{
	long rc = memory_reservation(cmd, list, n);
	if (rc != want)
		guest_fail("%s of %lu extents returned %ld, expected %ld", what, n, rc, want);
}

static void expect_m2p(u64 mfn, u64 pfn)
{
	if (MACHINE_TO_PHYS[mfn] != pfn)
		guest_fail("M2P[%lx] = %lx, expected %lx", mfn, MACHINE_TO_PHYS[mfn], pfn);
}

/* ---- domain 1: shrinks, transfers a page, grows back ---- */

static void connect(void)
{
	u16 peer = (u16)smpsim_params.peer_domid;
	while (READ_ONCE(x->magic) != BAL_MAGIC)
		sched_yield();
	long rc = evtchn_bind_interdomain(peer, x->port, &port);
	if (rc < 0)
		guest_fail("bind_interdomain(domain %u, port %u) returned %ld", peer, x->port, rc);
	evtchn_set_handler(port, 0, on_event, NULL);
	x->bound = 1;
	send();
}

static void shrink(u64 r1)
{
	for (u64 i = 0; i < npages; i++) {
		u64 pfn = virt_to_pfn(page(i));
		fill(page(i), 1, i);
		list[i] = pfn_to_mfn(pfn);
		x->mfns[i] = list[i];
		unmap(page(i));
		p2m()[pfn] = INVALID_P2M_ENTRY;
	}
	resv(XENMEM_decrease_reservation, npages, (long)npages, "decrease_reservation");
	for (u64 i = 0; i < npages; i++)
		expect_m2p(list[i], INVALID_M2P_ENTRY);
	expect_reservation(r1 - npages, "decrease_reservation");
	printf("balloon: domain 1 gave back %lu pages: reservation %lu -> %lu\n", npages, r1,
	       r1 - npages);
	x->shrunk = 1;
	send();
}

static void give_page(u64 r1)
{
	WAIT_EVENT(x->gref);
	u8 *va = page(npages);
	u64 pfn = virt_to_pfn(va);
	u64 mfn = pfn_to_mfn(pfn);
	u64 sum = fill(va, 2, 0);
	unmap(va);
	p2m()[pfn] = INVALID_P2M_ENTRY;
	struct gnttab_transfer t = { .mfn = mfn, .domid = (u16)smpsim_params.peer_domid,
				     .ref = x->gref };
	long rc = HYPERVISOR_grant_table_op(GNTTABOP_transfer, &t, 1);
	if (rc != 0 || t.status != GNTST_okay)
		guest_fail("transfer of MFN %lx returned %ld, status %d", mfn, rc, t.status);
	expect_reservation(r1 - npages - 1, "the transfer");
	/* The frame is no longer ours: giving it again is a bad page. */
	t.status = 0;
	rc = HYPERVISOR_grant_table_op(GNTTABOP_transfer, &t, 1);
	if (rc != 0 || t.status != GNTST_bad_page)
		guest_fail("a second transfer of MFN %lx returned %ld, status %d", mfn, rc,
			   t.status);
	printf("balloon: domain 1 transferred 1 page to domain %u: status %d, again %d; "
	       "reservation %lu\n",
	       smpsim_params.peer_domid, GNTST_okay, t.status, r1 - npages - 1);
	x->xfer_mfn = mfn;
	x->xfer_sum = sum;
	compiler_barrier();
	x->transferred = 1;
	send();
}

static void regrow(u64 r1)
{
	WAIT_EVENT(x->returned);
	for (u64 i = 0; i < npages; i++)
		list[i] = virt_to_pfn(page(i));
	resv(XENMEM_populate_physmap, npages, (long)npages, "populate_physmap");
	u64 own = 0;
	for (u64 i = 0; i < npages; i++) {
		u64 pfn = virt_to_pfn(page(i));
		expect_m2p(list[i], pfn);
		own += list[i] == x->mfns[i];
		p2m()[pfn] = list[i];
		map(page(i), list[i]);
		fill(page(i), 3, i);
	}
	expect_reservation(r1 - 1, "populate_physmap");
	printf("balloon: domain 1 repopulated %lu pages at its own PFNs (%lu its old frames): "
	       "reservation %lu -> %lu\n",
	       npages, own, r1, r1 - 1);
	x->regrown = 1;
	send();
}

static void domain1(void)
{
	connect();
	u64 r1 = reservation();
	shrink(r1);
	give_page(r1);
	regrow(r1);
}

/* ---- domain 0: grows, receives the page, over-asks, gives back ---- */

static void listen(void)
{
	u16 peer = (u16)smpsim_params.peer_domid;
	long rc = evtchn_alloc_unbound(peer, &port);
	if (rc < 0)
		guest_fail("alloc_unbound(remote domain %u) returned %ld", peer, rc);
	evtchn_set_handler(port, 0, on_event, NULL);
	x->port = port;
	compiler_barrier();
	x->magic = BAL_MAGIC;
	WAIT_EVENT(x->bound);
}

static void grow(u64 r0, u64 first_pfn)
{
	WAIT_EVENT(x->shrunk);
	for (u64 i = 0; i < npages; i++)
		list[i] = first_pfn + i;
	resv(XENMEM_populate_physmap, npages, (long)npages, "populate_physmap");
	u64 moved = 0;
	for (u64 i = 0; i < npages; i++) {
		expect_m2p(list[i], first_pfn + i);
		for (u64 k = 0; k < npages; k++)
			moved += list[i] == x->mfns[k];
		map(page(i), list[i]);
		fill(page(i), 4, i);
	}
	expect_reservation(r0 + npages, "populate_physmap");
	printf("balloon: domain 0 populated %lu pages (%lu of them domain 1's frames), wrote "
	       "and verified them: reservation %lu -> %lu\n",
	       npages, moved, r0, r0 + npages);
}

static void receive_page(u64 r0, u64 pfn)
{
	u64 gframe = 0;
	struct gnttab_setup_table st = { .dom = DOMID_SELF, .nr_frames = 1,
					 .frame_list = (u64)&gframe };
	long rc = HYPERVISOR_grant_table_op(GNTTABOP_setup_table, &st, 1);
	if (rc != 0 || st.status != GNTST_okay)
		guest_fail("setup_table returned %ld, status %d", rc, st.status);
	map(page(npages), gframe);
	struct grant_entry_v1 *e = (struct grant_entry_v1 *)page(npages) + XFER_REF;
	e->domid = (u16)smpsim_params.peer_domid;
	e->frame = (u32)pfn;
	compiler_barrier();
	e->flags = GTF_accept_transfer;
	x->gref = XFER_REF;
	send();
	WAIT_EVENT(x->transferred);
	u16 want = GTF_accept_transfer | GTF_transfer_committed | GTF_transfer_completed;
	if (e->flags != want || e->frame != x->xfer_mfn)
		guest_fail("accept_transfer entry: flags %x frame %x, expected %x and %lx", e->flags,
			   e->frame, want, x->xfer_mfn);
	expect_m2p(x->xfer_mfn, pfn);
	map(page(npages + 1), x->xfer_mfn);
	const volatile u64 *w = (const volatile u64 *)page(npages + 1);
	u64 sum = 0;
	for (u64 j = 0; j < PAGE_SIZE / 8; j++) {
		if (w[j] != word(2, 0, j))
			guest_fail("transferred page word %lu reads %lx, expected %lx", j, w[j],
				   word(2, 0, j));
		sum += w[j];
	}
	if (sum != x->xfer_sum)
		guest_fail("transferred page sums to %lx, domain 1 wrote %lx", sum, x->xfer_sum);
	expect_reservation(r0 + npages + 1, "the transfer");
	printf("balloon: domain 0 received 1 page by grant transfer: flags 0x%x, contents "
	       "verified; reservation %lu\n",
	       e->flags, r0 + npages + 1);
}

static void overask(u64 r0, u64 max0)
{
	u64 left = max0 - (r0 + npages + 1);
	long rc = memory_reservation(XENMEM_increase_reservation, list + npages, OVERASK);
	if (rc != (long)left)
		guest_fail("increase_reservation of %u beyond max %lu returned %ld, expected %lu",
			   OVERASK, max0, rc, left);
	long again = memory_reservation(XENMEM_increase_reservation, list + npages + left, 1);
	if (again != 0)
		guest_fail("increase_reservation at max returned %ld", again);
	expect_reservation(max0, "increase_reservation");
	printf("balloon: domain 0 asked for %u more pages: got %ld, then %ld; reservation = "
	       "max = %lu\n",
	       OVERASK, rc, again, max0);
}

static void give_back(u64 r0, u64 max0)
{
	u64 extra = max0 - (r0 + npages + 1);
	for (u64 i = 0; i < npages; i++)
		unmap(page(i));
	/* The grown frames, then the ones increase_reservation gave. */
	resv(XENMEM_decrease_reservation, npages + extra, (long)(npages + extra),
	     "decrease_reservation");
	expect_reservation(r0 + 1, "decrease_reservation");
	x->returned = 1;
	send();
	WAIT_EVENT(x->regrown);
	printf("balloon: domain 0 gave back %lu pages: reservation %lu -> %lu (1 page gained)\n",
	       npages + extra, max0, r0 + 1);
}

static void domain0(void)
{
	listen();
	u64 r0 = reservation();
	long max0 = memory_query(XENMEM_maximum_reservation);
	if (max0 < 0 || (u64)max0 < r0 + npages + 1)
		guest_fail("maximum_reservation %ld: no room for %lu pages above %lu", max0,
			   npages + 1, r0);
	printf("balloon: domain 0 reservation %lu, max %ld\n", r0, max0);
	u64 first_pfn = start_info->nr_pages;
	grow(r0, first_pfn);
	receive_page(r0, first_pfn + npages);
	overask(r0, (u64)max0);
	give_back(r0, (u64)max0);
}

void workload_run(struct cpu *c)
{
	if (c->id != 0)
		return;
	if (smpsim_params.domain_index == 0)
		domain0();
	else
		domain1();
}

void workload_check(void)
{
	printf("balloon: domain %u done: %lu pages, %lu events received\n",
	       smpsim_params.domain_index, npages, events);
}
