/*
 * ubench-stlf: store-to-load forwarding on every iteration. A value is
 * stored to a stack slot, loaded straight back and incremented, 8 times
 * per iteration in one asm loop: the loop-carried chain is store data ->
 * forwarded load -> add, so its speed is the forwarding latency + 1.
 * Measured loop: 26 instructions per iteration (8 × store, load, add;
 * dec, jnz), 8 forwarded loads.
 * Check: the final value is x0 + 8 * iterations and the slot holds the
 * value before the last add.
 * Reports TSC cycles per store/load/add step (hundredths).
 * VCPU 0 runs the loop; any other VCPUs do nothing.
 * arg0: iterations (default 8192: 213k instructions, 65536 forwards).
 */
#include "ubench_common.h"

WORKLOAD("ubench-stlf", 8192, 0, 0, 0, 0, 0, 0, 0);

#define STEPS_PER_ITER 8
#define INSNS_PER_ITER (3 * STEPS_PER_ITER + 2)
#define X0 1000

static u64 result, slot_value, cycles;

void workload_init(void)
{
}

#define S1 "movq %[x], (%[p])\n\tmovq (%[p]), %[x]\n\taddq $1, %[x]\n\t"
#define S8 S1 S1 S1 S1 S1 S1 S1 S1

void workload_run(struct cpu *c)
{
	if (c->id != 0)
		return;
	volatile u64 slot[8] ALIGNED(CACHELINE);
	slot[0] = 0;
	u64 n = arg(0), x = X0;
	roi_begin();
	u64 t0 = rdtsc();
	__asm__ __volatile__("1:\n\t" S8
			     "decq %[n]\n\t"
			     "jnz 1b\n\t"
			     : [n] "+r"(n), [x] "+r"(x)
			     : [p] "r"(&slot[0])
			     : "cc", "memory");
	u64 t1 = rdtsc();
	roi_end();
	cycles = t1 - t0;
	result = x;
	slot_value = slot[0];
}

void workload_check(void)
{
	u64 iters = arg(0), steps = iters * STEPS_PER_ITER;
	if (result != X0 + steps || slot_value != X0 + steps - 1)
		guest_fail("value %lu, slot %lu; expected %lu and %lu", result, slot_value,
			   X0 + steps, X0 + steps - 1);
	u64 per = ubench_hundredths(cycles, steps);
	printf("ubench-stlf: %lu iterations, %lu instructions, %lu forwarded loads, %lu cycles, "
	       "%lu.%02lu cycles/step\n",
	       iters, iters * INSNS_PER_ITER, steps, cycles, UBENCH_FIX(per));
}
