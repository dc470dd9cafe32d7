/*
 * stream: STREAM's four kernels on u64 arrays (no FP in these guests):
 * copy c=a, scale b=3c, add c=a+b, triad a=b+3c, each split over the VCPUs
 * with a barrier between kernels. With a(0)=i+1, after t iterations
 * a = 15^t (i+1), b = 3*15^(t-1) (i+1), c = 4*15^(t-1) (i+1) (mod 2^64);
 * every element is checked. VCPU 0 reports bytes per 1000 TSC cycles.
 * arg0: elements per array (default 16384); arg1: iterations (default 2).
 */
#include "rt.h"

WORKLOAD("stream", 16384, 2, 0, 0, 0, 0, 0, 0);

static u64 *a, *b, *c;
static u64 kcycles[4]; /* cycles of each kernel summed over iterations (VCPU 0) */
static const char *const knames[4] = { "copy", "scale", "add", "triad" };
static const u64 kbytes[4] = { 16, 16, 24, 24 }; /* bytes moved per element */

void workload_init(void)
{
	u64 n = arg(0);
	/* a is filled by the VCPUs; the kernels write c, then b, before reading */
	a = heap_alloc_raw(n * sizeof(u64), PAGE_SIZE);
	b = heap_alloc_raw(n * sizeof(u64), PAGE_SIZE);
	c = heap_alloc_raw(n * sizeof(u64), PAGE_SIZE);
}

static void kernel(int k, u64 lo, u64 hi)
{
	switch (k) {
	case 0:
		for (u64 i = lo; i < hi; i++)
			c[i] = a[i];
		break;
	case 1:
		for (u64 i = lo; i < hi; i++)
			b[i] = 3 * c[i];
		break;
	case 2:
		for (u64 i = lo; i < hi; i++)
			c[i] = a[i] + b[i];
		break;
	default:
		for (u64 i = lo; i < hi; i++)
			a[i] = b[i] + 3 * c[i];
		break;
	}
}

void workload_run(struct cpu *cp)
{
	u64 n = arg(0);
	u64 lo = n * cp->id / nr_cpus, hi = n * (cp->id + 1) / nr_cpus;
	for (u64 i = lo; i < hi; i++)
		a[i] = i + 1;
	for (u64 t = 0; t < arg(1); t++) {
		for (int k = 0; k < 4; k++) {
			smp_barrier();
			u64 t0 = rdtsc();
			kernel(k, lo, hi);
			smp_barrier();
			if (cp->id == 0)
				kcycles[k] += rdtsc() - t0;
		}
	}
}

static u64 pow15(u64 e)
{
	u64 r = 1;
	while (e--)
		r *= 15;
	return r;
}

void workload_check(void)
{
	u64 n = arg(0), t = arg(1);
	u64 fa = pow15(t), fb = 3 * pow15(t - 1), fc = 4 * pow15(t - 1);
	for (u64 i = 0; i < n; i++)
		if (a[i] != fa * (i + 1) || b[i] != fb * (i + 1) || c[i] != fc * (i + 1))
			guest_fail("element %lu: a %lu b %lu c %lu, expected %lu %lu %lu", i, a[i], b[i],
				   c[i], fa * (i + 1), fb * (i + 1), fc * (i + 1));
	for (int k = 0; k < 4; k++) {
		u64 bytes = kbytes[k] * n * t;
		u64 cyc = kcycles[k] ? kcycles[k] : 1;
		printf("stream %s: %lu bytes in %lu cycles (%lu bytes per 1000 cycles)\n", knames[k],
		       bytes, kcycles[k], bytes * 1000 / cyc);
	}
}
