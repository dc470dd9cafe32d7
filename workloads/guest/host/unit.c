/*
 * Host unit tests of the guest runtime's pure code: printf formatting
 * against the host's snprintf, the spinlock / ticket lock / barrier under
 * pthreads, the pvclock scale against xen-abi.md's examples, Sattolo's
 * cycle and the SPSC ring with two threads. Built and run by tests/native.rs.
 */
#define _GNU_SOURCE
#include <pthread.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#define SMP_RELAX() sched_yield()
#include "../runtime/fmt.c"
#include "lock.h"
#include "pure.h"
#include "ring.h"

static int failures;
#define CHECK(c, ...) \
	do { \
		if (!(c)) { \
			failures++; \
			printf("FAILED %s:%d: ", __FILE__, __LINE__); \
			printf(__VA_ARGS__); \
			printf("\n"); \
		} \
	} while (0)

#define FMT_CASE(...) \
	do { \
		char a[128], b[128]; \
		int na = smp_snprintf(a, sizeof(a), __VA_ARGS__); \
		int nb = snprintf(b, sizeof(b), __VA_ARGS__); \
		CHECK(na == nb && strcmp(a, b) == 0, "format %s: got \"%s\" (%d), want \"%s\" (%d)", \
		      #__VA_ARGS__, a, na, b, nb); \
	} while (0)

static void test_format(void)
{
	FMT_CASE("%d %i %u", -42, 7, 3000000000u);
	FMT_CASE("%x %X %lx %llu %lld", 0xbeefu, 0xbeefu, 0xffffffffffffffffUL,
		 18446744073709551615ULL, -9223372036854775807LL - 1);
	FMT_CASE("[%5d] [%-5d] [%05d] [%-5d]", 42, 42, -42, 7);
	FMT_CASE("[%s] [%8s] [%-8s] [%.3s] [%c%c]", "abc", "abc", "abc", "abcdef", 'x', 'y');
	FMT_CASE("%p %p", (void *)0x400000, (void *)0x1);
	FMT_CASE("%zu %lu %ld %hhu %hd", (size_t)12345, 0UL, -1L, 300, 70000);
	FMT_CASE("%% %*d %o", 6, 99, 8);
	FMT_CASE("%016lx|%-3c|", 0xabcUL, 'q');
	char small[6];
	int n = smp_snprintf(small, sizeof(small), "%s", "truncated");
	CHECK(n == 9 && strcmp(small, "trunc") == 0, "truncation: %d \"%s\"", n, small);
	CHECK(smp_snprintf(NULL, 0, "%d", 12345) == 5, "size-0 length");
	CHECK(smp_snprintf(small, sizeof(small), "%s", (char *)NULL) == 6, "null string");
}

static void test_pvclock(void)
{
	/* xen-abi.md §2.1: 1 GHz -> shift +1, mul 0x80000000; 3 GHz -> -1, 0xAAAAAAAA */
	CHECK(pvclock_scale_delta(1000000000UL, 0x80000000u, 1) == 1000000000UL, "1 GHz");
	CHECK(pvclock_scale_delta(2000000000UL, 0x80000000u, 0) == 1000000000UL, "2 GHz");
	u64 ns = pvclock_scale_delta(3000000000UL, 0xAAAAAAAAu, -1);
	CHECK(ns >= 999999999UL && ns <= 1000000000UL, "3 GHz: %lu", ns);
	CHECK(pvclock_scale_delta(1UL << 40, 0xffffffffu, 3) == ((((unsigned __int128)1 << 43) * 0xffffffffu) >> 32),
	      "no overflow with a 128-bit product");
}

static void test_sattolo(void)
{
	for (u64 n = 1; n <= 300; n += 37) {
		u64 *next = calloc(n * 8, 8);
		sattolo_cycle(next, n, 8, 1234 + n);
		u64 pos = 0, steps = 0;
		do {
			pos = next[pos * 8];
			steps++;
		} while (pos != 0 && steps <= n);
		CHECK(steps == n, "sattolo n=%lu: cycle of %lu", n, steps);
		free(next);
	}
	u64 s = 1, t = 1;
	CHECK(splitmix64(&s) == splitmix64(&t), "seeded generator is deterministic");
}

#define THREADS 6
#define ITERS 20000
static spinlock_t slock;
static ticketlock_t tlock;
static barrier_t bar;
static volatile u64 counter;
static volatile int inside;
static volatile u64 slots[THREADS];
static volatile int bar_errors;

static void *spin_worker(void *a)
{
	int ticket = a != NULL;
	for (int i = 0; i < ITERS; i++) {
		if (ticket)
			ticket_lock(&tlock);
		else
			spin_lock(&slock);
		if (__atomic_add_fetch(&inside, 1, __ATOMIC_SEQ_CST) != 1)
			bar_errors++;
		u64 v = counter;
		counter = v + 1;
		__atomic_sub_fetch(&inside, 1, __ATOMIC_SEQ_CST);
		if (ticket)
			ticket_unlock(&tlock);
		else
			spin_unlock(&slock);
	}
	return NULL;
}

static void *barrier_worker(void *a)
{
	long id = (long)a;
	unsigned sense = 0;
	for (u64 r = 1; r <= 300; r++) {
		slots[id] = r;
		barrier_wait(&bar, &sense);
		for (int i = 0; i < THREADS; i++)
			if (slots[i] != r)
				bar_errors++;
		barrier_wait(&bar, &sense);
	}
	return NULL;
}

static void run_threads(void *(*fn)(void *), int ticket)
{
	pthread_t th[THREADS];
	for (long i = 0; i < THREADS; i++)
		pthread_create(&th[i], NULL, fn, ticket < 0 ? (void *)i : (ticket ? (void *)1 : NULL));
	for (int i = 0; i < THREADS; i++)
		pthread_join(th[i], NULL);
}

static void test_locks(void)
{
	counter = 0;
	run_threads(spin_worker, 0);
	CHECK(counter == THREADS * ITERS && !bar_errors, "spinlock: %lu, %d overlaps", counter, bar_errors);
	counter = 0;
	run_threads(spin_worker, 1);
	CHECK(counter == THREADS * ITERS && !bar_errors, "ticket lock: %lu, %d overlaps", counter, bar_errors);
	CHECK(tlock.next == THREADS * ITERS && tlock.owner == THREADS * ITERS, "tickets %u %u",
	      tlock.next, tlock.owner);
	barrier_init(&bar, THREADS);
	run_threads(barrier_worker, -1);
	CHECK(!bar_errors, "barrier let %d threads through early", bar_errors);
}

#define RING_ITEMS 200000
static struct ring *rg;
static u64 prod_sum, cons_sum, cons_bad;

static void *producer(void *a)
{
	(void)a;
	u64 seq = 0;
	while (seq < RING_ITEMS)
		if (!ring_produce(rg, 7, &seq, RING_ITEMS, 13, &prod_sum))
			sched_yield();
	return NULL;
}

static void test_ring(void)
{
	rg = calloc(1, ring_bytes(64));
	ring_init(rg, 64);
	pthread_t th;
	pthread_create(&th, NULL, producer, NULL);
	u64 seq = 0;
	while (seq < RING_ITEMS)
		if (!ring_consume(rg, 7, &seq, 11, &cons_sum, &cons_bad))
			sched_yield();
	pthread_join(th, NULL);
	CHECK(cons_bad == 0 && cons_sum == prod_sum, "ring: %lu bad, sums %lx %lx", cons_bad,
	      cons_sum, prod_sum);
}

int main(void)
{
	test_format();
	test_pvclock();
	test_sattolo();
	test_locks();
	test_ring();
	if (failures) {
		printf("%d host unit test failures\n", failures);
		return 1;
	}
	printf("all host unit tests passed\n");
	return 0;
}
