/*
 * matmul: C = A x B for N x N double-precision matrices, blocked (i-k-j
 * order inside BxB tiles, the j loop vectorizable), rows of C split over
 * the VCPUs. A(i,j) = 1 / (i + 2j + 1) and B(i,j) = (i - j) / (i + j + 1)
 * + 0.25 are not exactly representable, so the blocked order rounds
 * differently from the reference.
 * The j loop runs two elements at a time (packed doubles).
 * Check (VCPU 0): every element against a naive i-j-k dot product (a
 * different summation order) within |C - R| <= 1e-13 * sum_k |A(i,k) B(k,j)|
 * + 1e-300, and the sum of all elements against sum_k colsum(A)_k *
 * rowsum(B)_k (O(N^2), a third way) within 1e-11 relative. Reports cycles
 * and FP operations (2 N^3) per 1000 cycles, and the checksum x 10^6.
 * arg0: N (default 64); arg1: tile size B (default 16); arg2: times the
 * product is computed (default 1).
 */
#include "rt.h"

WORKLOAD("matmul", 64, 16, 1, 0, 0, 0, 0, 0);

/* Two doubles, any 8-byte alignment (movupd). */
typedef double v2df __attribute__((vector_size(16), aligned(8)));

static double *a, *b, *c;
static u64 cycles;

void workload_init(void)
{
	u64 n = arg(0);
	if (arg(1) > n)
		guest_fail("tile %lu larger than N %lu", arg(1), n);
	a = heap_alloc_raw(n * n * sizeof(double), 64);
	b = heap_alloc_raw(n * n * sizeof(double), 64);
	c = heap_alloc_raw(n * n * sizeof(double), 64);
	for (u64 i = 0; i < n; i++)
		for (u64 j = 0; j < n; j++) {
			a[i * n + j] = 1.0 / (double)(i + 2 * j + 1);
			b[i * n + j] = ((double)i - (double)j) / (double)(i + j + 1) + 0.25;
		}
}

static u64 min_u64(u64 x, u64 y)
{
	return x < y ? x : y;
}

/* Rows lo..hi of C = A B, tiled. */
static void blocked(u64 n, u64 bs, u64 lo, u64 hi)
{
	for (u64 i = lo; i < hi; i++)
		for (u64 j = 0; j < n; j++)
			c[i * n + j] = 0.0;
	for (u64 ii = lo; ii < hi; ii += bs)
		for (u64 kk = 0; kk < n; kk += bs)
			for (u64 jj = 0; jj < n; jj += bs) {
				u64 ie = min_u64(ii + bs, hi), ke = min_u64(kk + bs, n),
				    je = min_u64(jj + bs, n);
				for (u64 i = ii; i < ie; i++)
					for (u64 k = kk; k < ke; k++) {
						double aik = a[i * n + k];
						double *restrict ci = &c[i * n];
						const double *restrict bk = &b[k * n];
						v2df va = { aik, aik };
						u64 j = jj;
						for (; j + 2 <= je; j += 2)
							*(v2df *)&ci[j] += va * *(const v2df *)&bk[j];
						for (; j < je; j++)
							ci[j] += aik * bk[j];
					}
			}
}

/* Per-VCPU save areas for the state check (XSAVE needs 64-byte alignment). */
#define SAVE_CPUS 64
static unsigned char save_area[SAVE_CPUS][1024] __attribute__((aligned(64)));

/*
 * FXSAVE/FXRSTOR and XSAVE/XRSTOR (x87 | SSE) round trips, racing on all
 * VCPUs: a value in xmm7 survives being clobbered between save and
 * restore, and MXCSR is in the image at offset 24.
 */
static void check_state_save(u64 id)
{
	unsigned char *area = save_area[id % SAVE_CPUS];
	u64 out[2], mark = 0x1234567890abcdefull ^ id;
	__asm__ __volatile__("movq %0, %%xmm7" : : "r"(mark) : "xmm7");
	__asm__ __volatile__("fxsave64 (%0)" : : "r"(area) : "memory");
	__asm__ __volatile__("pxor %%xmm7, %%xmm7" : : : "xmm7");
	__asm__ __volatile__("fxrstor64 (%0)" : : "r"(area) : "memory", "xmm7");
	__asm__ __volatile__("movdqu %%xmm7, (%0)" : : "r"(out) : "memory");
	if (out[0] != mark || out[1] != 0)
		guest_fail("fxsave/fxrstor lost xmm7 on VCPU %lu", id);
	if ((*(unsigned *)(area + 24) & ~0x3fu) != 0x1f80) /* flags may be set */
		guest_fail("fxsave: MXCSR %x, expected 0x1f80 plus flags", *(unsigned *)(area + 24));
	for (int i = 0; i < 64; i++)
		area[512 + i] = 0; /* the XSAVE header */
	__asm__ __volatile__("xsave64 (%0)" : : "r"(area), "a"(3), "d"(0) : "memory");
	__asm__ __volatile__("pcmpeqd %%xmm7, %%xmm7" : : : "xmm7");
	__asm__ __volatile__("xrstor64 (%0)" : : "r"(area), "a"(3), "d"(0) : "memory", "xmm7");
	__asm__ __volatile__("movdqu %%xmm7, (%0)" : : "r"(out) : "memory");
	if (out[0] != mark || out[1] != 0)
		guest_fail("xsave/xrstor lost xmm7 on VCPU %lu", id);
}

void workload_run(struct cpu *cp)
{
	u64 n = arg(0), bs = arg(1);
	check_state_save(cp->id);
	u64 lo = n * cp->id / nr_cpus, hi = n * (cp->id + 1) / nr_cpus;
	smp_barrier();
	u64 t0 = rdtsc();
	for (u64 r = 0; r < arg(2); r++)
		blocked(n, bs, lo, hi);
	smp_barrier();
	if (cp->id == 0)
		cycles = rdtsc() - t0;
}

static double fabs_(double x)
{
	return __builtin_fabs(x);
}

void workload_check(void)
{
	u64 n = arg(0);
	double sum = 0.0;
	for (u64 i = 0; i < n; i++)
		for (u64 j = 0; j < n; j++) {
			double r = 0.0, mag = 0.0;
			for (u64 k = 0; k < n; k++) {
				double p = a[i * n + k] * b[k * n + j];
				r += p;
				mag += fabs_(p);
			}
			double got = c[i * n + j];
			if (!(fabs_(got - r) <= 1e-13 * mag + 1e-300))
				guest_fail("C(%lu,%lu) off the reference by more than 1e-13 relative", i,
					   j);
			sum += got;
		}
	double want = 0.0, mag = 0.0;
	for (u64 k = 0; k < n; k++) {
		double ca = 0.0, rb = 0.0, cm = 0.0, rm = 0.0;
		for (u64 i = 0; i < n; i++) {
			ca += a[i * n + k];
			cm += fabs_(a[i * n + k]);
		}
		for (u64 j = 0; j < n; j++) {
			rb += b[k * n + j];
			rm += fabs_(b[k * n + j]);
		}
		want += ca * rb;
		mag += cm * rm;
	}
	if (!(fabs_(sum - want) <= 1e-11 * mag))
		guest_fail("checksum off sum_k colsum(A) rowsum(B) by more than 1e-11 relative");
	u64 flops = 2 * n * n * n * arg(2);
	s64 micro = (s64)(sum * 1e6);
	printf("matmul: N %lu, tile %lu, %lu VCPUs, %lu FP ops, %lu cycles, %lu ops/kcycle, "
	       "checksum %ld.%06lu\n",
	       n, arg(1), (u64)nr_cpus, flops, cycles, cycles ? flops * 1000 / cycles : 0,
	       micro / 1000000, (u64)(micro < 0 ? -micro : micro) % 1000000);
}
