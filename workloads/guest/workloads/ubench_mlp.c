/*
 * ubench-mlp: memory-level parallelism. `nodes` cache lines (a power of
 * two) are visited once each, in the order of the full-period generator
 * x' = (5x + 12345) mod nodes, starting and ending at node 0; node x holds
 * the address of the next node in that order. After building them, VCPU 0
 * reads `evict_kib` KiB of another buffer (one load per line) so that no
 * node is left in any cache: every measured load misses to DRAM (the
 * default 16 MiB is twice the default machine's L3).
 * Mode 0 (independent): the loop computes the next node with the
 * generator in registers and adds its contents to a sum, so no address
 * depends on a load and misses overlap (up to the MSHRs).
 * Mode 1 (pointer chase): the loop loads the next address from the node
 * itself, so every miss waits for the previous one.
 * Measured loop: one load per node in both modes; 8 instructions per load
 * in mode 0 (lea, add, and, mov, shl, add-from-memory, dec, jnz), 4 in
 * mode 1 (load, add, dec, jnz).
 * Check: the sum of the loaded values equals the sum of all node addresses
 * (closed form), and the walk ends back at node 0 (mode 1: after exactly
 * `nodes` loads, so the chase is one cycle through all nodes).
 * Reports TSC cycles per load (hundredths).
 * VCPU 0 runs everything; any other VCPUs do nothing.
 * arg0: nodes (power of two, default 16384 = 1 MiB of lines: 131k
 * instructions in mode 0, 65k in mode 1); arg1: mode, 0 = independent
 * (default), 1 = pointer chase; arg2: evict_kib (default 16384).
 */
#include "ubench_common.h"

WORKLOAD("ubench-mlp", 16384, 0, 16384, 0, 0, 0, 0, 0);

#define NODE_WORDS (CACHELINE / 8)
#define LCG_ADD 12345
#define INSNS_INDEP 8
#define INSNS_CHASE 4

static u64 *nodes;
static volatile u64 *evict;
static u64 sum, end, cycles;

static u64 next_node(u64 x, u64 mask)
{
	return (5 * x + LCG_ADD) & mask;
}

void workload_init(void)
{
	u64 n = arg(0);
	if (n < 2 || (n & (n - 1)))
		guest_fail("nodes %lu is not a power of two >= 2", n);
	if (arg(1) > 1)
		guest_fail("mode %lu: 0 (independent) or 1 (pointer chase)", arg(1));
	nodes = heap_alloc_raw(n * CACHELINE, PAGE_SIZE); /* every node written below */
	evict = heap_alloc_raw(arg(2) * 1024, PAGE_SIZE); /* only read */
}

/* Links the nodes in generator order; returns how many were linked. */
static u64 build(u64 n)
{
	u64 x = 0, linked = 0;
	do {
		u64 y = next_node(x, n - 1);
		nodes[x * NODE_WORDS] = (u64)&nodes[y * NODE_WORDS];
		x = y;
		linked++;
	} while (x != 0 && linked <= n);
	return linked;
}

/* One load per line of the eviction buffer. */
static void flush_caches(void)
{
	u64 lines = arg(2) * 1024 / CACHELINE, s = 0;
	for (u64 i = 0; i < lines; i++)
		s += evict[i * NODE_WORDS];
	__asm__ __volatile__("" : : "r"(s));
}

static void measure_independent(u64 n)
{
	u64 x = 0, s = 0, k = n, t;
	u64 t0 = rdtsc();
	__asm__ __volatile__("1:\n\t"
			     "leaq (%[x], %[x], 4), %[x]\n\t"
			     "addq %[c], %[x]\n\t"
			     "andq %[mask], %[x]\n\t"
			     "movq %[x], %[t]\n\t"
			     "shlq $6, %[t]\n\t"
			     "addq (%[base], %[t]), %[s]\n\t"
			     "decq %[k]\n\t"
			     "jnz 1b\n\t"
			     : [x] "+r"(x), [s] "+r"(s), [k] "+r"(k), [t] "=&r"(t)
			     : [base] "r"(nodes), [mask] "r"(n - 1), [c] "i"(LCG_ADD)
			     : "cc", "memory");
	cycles = rdtsc() - t0;
	sum = s;
	end = (u64)&nodes[x * NODE_WORDS];
}

static void measure_chase(u64 n)
{
	u64 p = (u64)nodes, s = 0, k = n;
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
	sum = s;
	end = p;
}

void workload_run(struct cpu *c)
{
	if (c->id != 0)
		return;
	u64 n = arg(0);
	u64 linked = build(n);
	if (linked != n)
		guest_fail("generator cycle of %lu nodes, expected %lu", linked, n);
	flush_caches();
	roi_begin();
	if (arg(1) == 0)
		measure_independent(n);
	else
		measure_chase(n);
	roi_end();
}

void workload_check(void)
{
	u64 n = arg(0), base = (u64)nodes;
	u64 want = n * base + CACHELINE * (n * (n - 1) / 2);
	if (sum != want)
		guest_fail("sum of loaded addresses %lx, expected %lx", sum, want);
	if (end != base)
		guest_fail("walk ended at node %lu, expected node 0", (end - base) / CACHELINE);
	u64 per = ubench_hundredths(cycles, n);
	printf("ubench-mlp: mode %lu (%s), %lu loads, %lu instructions, %lu cycles, "
	       "%lu.%02lu cycles/load\n",
	       arg(1), arg(1) ? "pointer chase" : "independent", n,
	       n * (arg(1) ? INSNS_CHASE : INSNS_INDEP), cycles, UBENCH_FIX(per));
}
