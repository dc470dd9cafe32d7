/*
 * ubench-fp: scalar double-precision FP add and multiply, as one dependent
 * chain (latency) or as eight independent streams (throughput), unrolled in
 * one asm loop; the loop counter runs beside it.
 *   mode 0: add chain,  30 `addsd c, x` per iteration (x += 1.0)
 *   mode 1: mul chain,  30 `mulsd m, x` per iteration (x *= 1 + 2^-30)
 *   mode 2: add streams, 32 `addsd` per iteration over 8 accumulators
 *   mode 3: mul streams, 32 `mulsd` per iteration over 8 accumulators
 * A chain runs at one op per FP add/mul latency; the streams at the FP
 * units' issue rate (or the latency / 4 if that is slower: each
 * accumulator takes 4 ops per iteration).
 * Measured loop: 32 instructions per iteration (30 or 32 FP ops + dec +
 * jnz; the stream loops have 34).
 * Check: every accumulator equals the same operations done in C, in the
 * same order (bit-exact: IEEE round-to-nearest, no reassociation).
 * Reports TSC cycles per FP op (hundredths): the latency in modes 0/1,
 * the reciprocal throughput in modes 2/3.
 * VCPU 0 runs the loop; any other VCPUs do nothing.
 * arg0: iterations (default 5000); arg1: mode 0-3 (default 0).
 */
#include "ubench_common.h"

WORKLOAD("ubench-fp", 5000, 0, 0, 0, 0, 0, 0, 0);

#define CHAIN_OPS 30
#define STREAM_OPS 32
#define STREAMS 8

static const char *const mode_names[4] = { "add-chain", "mul-chain", "add-streams",
					   "mul-streams" };
static double acc[STREAMS];
static u64 cycles;

void workload_init(void)
{
	if (arg(1) > 3)
		guest_fail("mode %lu: 0 add chain, 1 mul chain, 2 add streams, 3 mul streams",
			   arg(1));
}

/* 1.0 or 1 + 2^-30, from bits (no FP constant the compiler could fold). */
static double operand(int mul)
{
	union {
		u64 u;
		double d;
	} v = { .u = mul ? 0x3ff0000004000000UL : 0x3ff0000000000000UL };
	return v.d;
}

static double start(int k)
{
	return (double)(k + 1);
}

#define A1 "addsd %[c], %[x]\n\t"
#define A5 A1 A1 A1 A1 A1
#define A30 A5 A5 A5 A5 A5 A5
#define M1 "mulsd %[c], %[x]\n\t"
#define M5 M1 M1 M1 M1 M1
#define M30 M5 M5 M5 M5 M5 M5

#define S8(op)                                                                 \
	op " %[c], %[a0]\n\t" op " %[c], %[a1]\n\t" op " %[c], %[a2]\n\t"      \
	op " %[c], %[a3]\n\t" op " %[c], %[a4]\n\t" op " %[c], %[a5]\n\t"      \
	op " %[c], %[a6]\n\t" op " %[c], %[a7]\n\t"
#define S32(op) S8(op) S8(op) S8(op) S8(op)

#define STREAM_ASM(op)                                                          \
	__asm__ __volatile__("1:\n\t" S32(op) "decq %[n]\n\t"                   \
			     "jnz 1b\n\t"                                       \
			     : [n] "+r"(n), [a0] "+x"(a[0]), [a1] "+x"(a[1]),   \
			       [a2] "+x"(a[2]), [a3] "+x"(a[3]), [a4] "+x"(a[4]), \
			       [a5] "+x"(a[5]), [a6] "+x"(a[6]), [a7] "+x"(a[7])  \
			     : [c] "x"(c)                                       \
			     : "cc")

void workload_run(struct cpu *cp)
{
	if (cp->id != 0)
		return;
	u64 n = arg(0), mode = arg(1);
	double c = operand(mode & 1), x = start(0);
	double a[STREAMS];
	for (int k = 0; k < STREAMS; k++)
		a[k] = start(k);
	roi_begin();
	u64 t0 = rdtsc();
	switch (mode) {
	case 0:
		__asm__ __volatile__("1:\n\t" A30 "decq %[n]\n\t"
				     "jnz 1b\n\t"
				     : [n] "+r"(n), [x] "+x"(x)
				     : [c] "x"(c)
				     : "cc");
		break;
	case 1:
		__asm__ __volatile__("1:\n\t" M30 "decq %[n]\n\t"
				     "jnz 1b\n\t"
				     : [n] "+r"(n), [x] "+x"(x)
				     : [c] "x"(c)
				     : "cc");
		break;
	case 2:
		STREAM_ASM("addsd");
		break;
	default:
		STREAM_ASM("mulsd");
		break;
	}
	u64 t1 = rdtsc();
	roi_end();
	cycles = t1 - t0;
	if (mode < 2)
		acc[0] = x;
	else
		for (int k = 0; k < STREAMS; k++)
			acc[k] = a[k];
}

static int same(double a, double b)
{
	union {
		double d;
		u64 u;
	} x = { .d = a }, y = { .d = b };
	return x.u == y.u;
}

static u64 bits(double d)
{
	union {
		double d;
		u64 u;
	} x = { .d = d };
	return x.u;
}

void workload_check(void)
{
	u64 iters = arg(0), mode = arg(1);
	int mul = mode & 1, chains = mode < 2 ? 1 : STREAMS;
	u64 per_acc = mode < 2 ? CHAIN_OPS * iters : STREAM_OPS / STREAMS * iters;
	double c = operand(mul);
	for (int k = 0; k < chains; k++) {
		volatile double want = start(k);
		for (u64 i = 0; i < per_acc; i++)
			want = mul ? want * c : want + c;
		if (!same(acc[k], want))
			guest_fail("accumulator %d: %lx, expected %lx", k, bits(acc[k]), bits(want));
	}
	u64 ops = per_acc * chains;
	u64 insns = iters * (mode < 2 ? CHAIN_OPS + 2 : STREAM_OPS + 2);
	u64 per = ubench_hundredths(cycles, ops);
	printf("ubench-fp: %s, %lu iterations, %lu instructions, %lu FP ops, %lu cycles, "
	       "%lu.%02lu cycles/op\n",
	       mode_names[mode], iters, insns, ops, cycles, UBENCH_FIX(per));
}
