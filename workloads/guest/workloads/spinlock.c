/*
 * spinlock: every VCPU increments a shared counter `iters` times under a
 * test-and-test-and-set xchg spinlock. The critical section checks it is
 * alone (owner field) and does a split read-modify-write, so a broken lock
 * loses increments. Each acquire's wait (rdtsc before the first attempt to
 * lock held) goes to the simulator's lock_wait histogram (lat_record).
 * Check: counter == VCPUs * iters.
 * arg0: increments per VCPU (default 200).
 */
#include "rt.h"

WORKLOAD("spinlock", 200, 0, 0, 0, 0, 0, 0, 0);

#define NOBODY 0xffffffffu
static spinlock_t lock ALIGNED(CACHELINE) = SPINLOCK_INIT;
static volatile u64 counter ALIGNED(CACHELINE);
static volatile u32 owner = NOBODY;
static u64 *spins; /* per VCPU, padded */

void workload_init(void)
{
	spins = heap_alloc(nr_cpus * CACHELINE, CACHELINE);
}

void workload_run(struct cpu *c)
{
	u64 iters = arg(0), s = 0;
	for (u64 i = 0; i < iters; i++) {
		u64 t0 = rdtsc();
		s += spin_lock(&lock);
		u64 wait = rdtsc() - t0;
		if (owner != NOBODY)
			guest_fail("VCPU %u entered while VCPU %u holds the lock", c->id, owner);
		owner = c->id;
		u64 v = counter;
		cpu_relax();
		counter = v + 1;
		if (owner != c->id)
			guest_fail("VCPU %u lost the lock to VCPU %u", c->id, owner);
		owner = NOBODY;
		spin_unlock(&lock);
		lat_record(LAT_LOCK_WAIT, wait);
	}
	spins[c->id * (CACHELINE / 8)] = s;
}

void workload_check(void)
{
	u64 expected = (u64)nr_cpus * arg(0), total = 0;
	if (counter != expected)
		guest_fail("counter is %lu, expected %lu", counter, expected);
	for (u32 i = 0; i < nr_cpus; i++)
		total += spins[i * (CACHELINE / 8)];
	printf("spinlock: %lu increments, %lu spin iterations while waiting\n", counter, total);
}
