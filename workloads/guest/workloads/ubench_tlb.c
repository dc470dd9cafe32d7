/*
 * ubench-tlb: TLB misses and page walks. A pointer chase visits one line
 * in each of `pages` pages, `laps` times round; the line inside page i is
 * line i mod 64, so the lines spread over every L1 set and, after the
 * first lap, every load hits the L1. Page i is visited in order 0, 1, ...
 * Mode 0 (TLB misses): `pages` (default 256) exceeds the TLB, so every
 * load misses it and walks the page tables; the walk's entries (256 PTEs
 * = 32 lines of L1 table plus one line per upper level) stay in the
 * caches, so each walk costs its four entry loads' hit latency.
 * Mode 1 (TLB hits): the same number of loads over 16 pages, all held in
 * the TLB.
 * The difference of the two modes' cycles per load is the walk latency.
 * Measured loop: 4 instructions per load (load, add, dec, jnz).
 * Check: the chase returns to the first page after each lap, and the sum
 * of the loaded addresses has its closed form.
 * Reports TSC cycles per load (hundredths).
 * VCPU 0 runs everything; any other VCPUs do nothing.
 * arg0: pages in mode 0 (default 256); arg1: mode, 0 = TLB misses
 * (default), 1 = TLB hits (16 pages); arg2: laps (default 16).
 */
#include "ubench_common.h"

WORKLOAD("ubench-tlb", 256, 0, 16, 0, 0, 0, 0, 0);

#define HIT_PAGES 16
#define INSNS_PER_LOAD 4

static u64 *area;
static u64 sum, end, cycles, loads, first;

static u64 pages(void)
{
	return arg(1) ? HIT_PAGES : arg(0);
}

/* The address of the line visited in page i. */
static u64 *slot(u64 i)
{
	return (u64 *)((u64)area + i * PAGE_SIZE + (i % 64) * CACHELINE);
}

void workload_init(void)
{
	if (arg(0) < HIT_PAGES || arg(0) > 65536)
		guest_fail("pages %lu: 16..65536", arg(0));
	if (arg(1) > 1)
		guest_fail("mode %lu: 0 (TLB misses) or 1 (TLB hits)", arg(1));
	if (arg(2) < 2)
		guest_fail("laps %lu: at least 2 (the first warms the caches)", arg(2));
	area = heap_alloc_raw(arg(0) * PAGE_SIZE, PAGE_SIZE); /* every visited line written */
}

void workload_run(struct cpu *c)
{
	if (c->id != 0)
		return;
	u64 n = pages();
	for (u64 i = 0; i < n; i++)
		*slot(i) = (u64)slot((i + 1) % n);
	/* The same number of loads in both modes: laps over arg0 pages. */
	loads = arg(0) * (arg(2) - 1);
	first = (u64)slot(0);
	/* One warm-up lap fills the caches (and, in mode 1, the TLB). */
	u64 p = first, s = 0, k = n;
	__asm__ __volatile__("1:\n\t"
			     "movq (%[p]), %[p]\n\t"
			     "decq %[k]\n\t"
			     "jnz 1b\n\t"
			     : [p] "+r"(p), [k] "+r"(k)
			     :
			     : "cc", "memory");
	k = loads;
	roi_begin();
	u64 t0 = rdtsc();
	__asm__ __volatile__("1:\n\t"
			     "movq (%[p]), %[p]\n\t"
			     "addq %[p], %[s]\n\t"
			     "decq %[k]\n\t"
			     "jnz 1b\n\t"
			     : [p] "+r"(p), [s] "+r"(s), [k] "+r"(k)
			     :
			     : "cc", "memory");
	cycles = rdtsc() - t0;
	roi_end();
	sum = s;
	end = p;
}

void workload_check(void)
{
	u64 n = pages(), want = 0;
	/* Load j (from 0) returns the address of page (j + 1) mod n. */
	u64 full = loads / n, rest = loads % n, lap = 0;
	for (u64 i = 0; i < n; i++)
		lap += (u64)slot((i + 1) % n);
	want = full * lap;
	for (u64 j = 0; j < rest; j++)
		want += (u64)slot((j + 1) % n);
	if (sum != want)
		guest_fail("sum of loaded addresses %lx, expected %lx", sum, want);
	if (end != (u64)slot(rest % n))
		guest_fail("chase ended at %lx, expected page %lu", end, rest % n);
	u64 per = ubench_hundredths(cycles, loads);
	printf("ubench-tlb: mode %lu (%s), %lu pages, %lu loads, %lu instructions, %lu cycles, "
	       "%lu.%02lu cycles/load\n",
	       arg(1), arg(1) ? "TLB hits" : "TLB misses", n, loads, loads * INSNS_PER_LOAD,
	       cycles, UBENCH_FIX(per));
}
