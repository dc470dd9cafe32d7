/*
 * nbody: softened gravitational N-body in single precision, leapfrog
 * (kick-drift-kick) with G = 1, dt = 1/1024, softening eps^2 = 1/64. Bodies
 * are stored as arrays (x, y, z, vx, vy, vz, m) padded to a multiple of 4
 * with massless bodies far away; the force loop handles four bodies at a
 * time in packed floats (sqrtps, divps), the kick and drift loops are
 * plain C that gcc vectorizes (groups of four). Bodies are split over the
 * VCPUs in groups of four, with a barrier after each phase.
 * Check (VCPU 0): total energy (kinetic + softened potential, in double)
 * after the run within 1e-4 relative of the start, total momentum within
 * 1e-5 of sum |m v|, every coordinate finite. Reports cycles, pair
 * interactions per 1000 cycles and the energies x 10^9.
 * arg0: bodies (default 64); arg1: steps (default 4).
 */
#include "rt.h"

WORKLOAD("nbody", 64, 4, 0, 0, 0, 0, 0, 0);

typedef float v4sf __attribute__((vector_size(16)));

#define DT (1.0f / 1024.0f)
#define EPS2 (1.0f / 64.0f)

static float *x, *y, *z, *vx, *vy, *vz, *m, *ax, *ay, *az;
static u64 n4; /* bodies rounded up to a multiple of 4 */
static double e0, p0[3], pabs0;
static u64 cycles;

static float *array(void)
{
	return heap_alloc(n4 * sizeof(float), 64);
}

/* Uniform in [-1, 1) from the generator (24 random bits). */
static float uniform(u64 *s)
{
	return (float)(s64)(splitmix64(s) >> 40) / (float)(1 << 23) - 1.0f;
}

static double sqrt_d(double v)
{
	double r;
	__asm__("sqrtsd %1, %0" : "=x"(r) : "x"(v));
	return r;
}

static double energy(void)
{
	u64 n = arg(0);
	double e = 0.0;
	for (u64 i = 0; i < n; i++) {
		double v2 = (double)vx[i] * vx[i] + (double)vy[i] * vy[i] + (double)vz[i] * vz[i];
		e += 0.5 * m[i] * v2;
		for (u64 j = i + 1; j < n; j++) {
			double dx = (double)x[j] - x[i], dy = (double)y[j] - y[i],
			       dz = (double)z[j] - z[i];
			e -= (double)m[i] * m[j] / sqrt_d(dx * dx + dy * dy + dz * dz + EPS2);
		}
	}
	return e;
}

static void momentum(double p[3], double *pabs)
{
	p[0] = p[1] = p[2] = *pabs = 0.0;
	for (u64 i = 0; i < arg(0); i++) {
		double mx = (double)m[i] * vx[i], my = (double)m[i] * vy[i],
		       mz = (double)m[i] * vz[i];
		p[0] += mx;
		p[1] += my;
		p[2] += mz;
		*pabs += __builtin_fabs(mx) + __builtin_fabs(my) + __builtin_fabs(mz);
	}
}

void workload_init(void)
{
	u64 n = arg(0), s = 0x6e626f6479UL;
	n4 = ALIGN_UP(n, 4);
	x = array(), y = array(), z = array();
	vx = array(), vy = array(), vz = array();
	m = array(), ax = array(), ay = array(), az = array();
	for (u64 i = 0; i < n4; i++) {
		if (i < n) {
			x[i] = uniform(&s), y[i] = uniform(&s), z[i] = uniform(&s);
			vx[i] = uniform(&s) / 16, vy[i] = uniform(&s) / 16, vz[i] = uniform(&s) / 16;
			m[i] = (1.0f + uniform(&s) / 2) / (float)n;
		} else {
			x[i] = 1000.0f + (float)i; /* massless padding, far away */
		}
	}
	e0 = energy();
	momentum(p0, &pabs0);
}

/* Accelerations of bodies lo..hi (multiples of 4), four at a time. */
static void forces(u64 lo, u64 hi)
{
	const v4sf eps2 = { EPS2, EPS2, EPS2, EPS2 }, one = { 1, 1, 1, 1 };
	for (u64 i = lo; i < hi; i += 4) {
		v4sf xi = *(v4sf *)&x[i], yi = *(v4sf *)&y[i], zi = *(v4sf *)&z[i];
		v4sf sx = { 0 }, sy = { 0 }, sz = { 0 };
		for (u64 j = 0; j < n4; j++) {
			v4sf dx = x[j] - xi, dy = y[j] - yi, dz = z[j] - zi;
			v4sf r2 = dx * dx + dy * dy + dz * dz + eps2;
			v4sf s = m[j] * (one / (r2 * __builtin_ia32_sqrtps(r2)));
			sx += dx * s;
			sy += dy * s;
			sz += dz * s;
		}
		*(v4sf *)&ax[i] = sx;
		*(v4sf *)&ay[i] = sy;
		*(v4sf *)&az[i] = sz;
	}
}

/* p[i] += q[i] * f for i in lo..hi (multiples of 4): plain C, four
 * statements per group that gcc's straight-line (SLP) vectorizer turns into
 * one packed multiply and add. */
static void axpy(float *restrict p, const float *restrict q, u64 lo, u64 hi, float f)
{
	for (u64 g = lo; g < hi; g += 4) {
		p[g + 0] += q[g + 0] * f;
		p[g + 1] += q[g + 1] * f;
		p[g + 2] += q[g + 2] * f;
		p[g + 3] += q[g + 3] * f;
	}
}

/* v += a dt/2. */
static void kick(u64 lo, u64 hi)
{
	axpy(vx, ax, lo, hi, DT / 2);
	axpy(vy, ay, lo, hi, DT / 2);
	axpy(vz, az, lo, hi, DT / 2);
}

/* x += v dt. */
static void drift(u64 lo, u64 hi)
{
	axpy(x, vx, lo, hi, DT);
	axpy(y, vy, lo, hi, DT);
	axpy(z, vz, lo, hi, DT);
}

void workload_run(struct cpu *cp)
{
	u64 groups = n4 / 4;
	u64 lo = 4 * (groups * cp->id / nr_cpus), hi = 4 * (groups * (cp->id + 1) / nr_cpus);
	smp_barrier();
	u64 t0 = rdtsc();
	forces(lo, hi);
	for (u64 t = 0; t < arg(1); t++) {
		kick(lo, hi);
		drift(lo, hi);
		smp_barrier(); /* every position moved before anyone reads them */
		forces(lo, hi);
		kick(lo, hi);
		smp_barrier(); /* ... and read before the next drift */
	}
	if (cp->id == 0)
		cycles = rdtsc() - t0;
}

static int finite(float f)
{
	return f - f == 0.0f;
}

static void print_e(const char *what, double e)
{
	s64 nano = (s64)(e * 1e9);
	u64 mag = (u64)(nano < 0 ? -nano : nano);
	printf(" %s %s%lu.%09lu", what, nano < 0 ? "-" : "", mag / 1000000000, mag % 1000000000);
}

void workload_check(void)
{
	u64 n = arg(0);
	for (u64 i = 0; i < n; i++)
		if (!finite(x[i]) || !finite(y[i]) || !finite(z[i]) || !finite(vx[i]) ||
		    !finite(vy[i]) || !finite(vz[i]))
			guest_fail("body %lu is not finite", i);
	double e1 = energy(), p1[3], pabs1;
	if (!(__builtin_fabs(e1 - e0) <= 1e-4 * __builtin_fabs(e0)))
		guest_fail("energy drifted by more than 1e-4 relative");
	momentum(p1, &pabs1);
	for (int k = 0; k < 3; k++)
		if (!(__builtin_fabs(p1[k] - p0[k]) <= 1e-5 * pabs0))
			guest_fail("momentum %d drifted by more than 1e-5 of sum |m v|", k);
	u64 pairs = n4 * n4 * (arg(1) + 1);
	printf("nbody: %lu bodies, %lu steps, %lu VCPUs, %lu interactions, %lu cycles, "
	       "%lu interactions/kcycle,",
	       n, arg(1), (u64)nr_cpus, pairs, cycles, cycles ? pairs * 1000 / cycles : 0);
	print_e("energy", e0);
	print_e("->", e1);
	printf("\n");
}
