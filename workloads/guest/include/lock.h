/*
 * Spinlock, ticket lock and sense-reversing barrier: pure x86-64 code with
 * no hypervisor dependency, so the host test harness runs the very same
 * algorithms under pthreads. SMP_RELAX() is `pause` in the guest; the host
 * harness may override it (e.g. with sched_yield) before including this.
 */
#ifndef SMPSIM_LOCK_H
#define SMPSIM_LOCK_H

#ifndef SMP_RELAX
#define SMP_RELAX() __asm__ __volatile__("pause" ::: "memory")
#endif

#define compiler_barrier() __asm__ __volatile__("" ::: "memory")
#define READ_ONCE(x) (*(volatile __typeof__(x) *)&(x))
#define WRITE_ONCE(x, v) (*(volatile __typeof__(x) *)&(x) = (v))

static inline unsigned int xchg_u32(volatile unsigned int *p, unsigned int v)
{
	__asm__ __volatile__("xchgl %0, %1" : "+r"(v), "+m"(*p) : : "memory");
	return v;
}

static inline unsigned long xchg_u64(volatile unsigned long *p, unsigned long v)
{
	__asm__ __volatile__("xchgq %0, %1" : "+r"(v), "+m"(*p) : : "memory");
	return v;
}

static inline unsigned int xadd_u32(volatile unsigned int *p, unsigned int v)
{
	__asm__ __volatile__("lock xaddl %0, %1" : "+r"(v), "+m"(*p) : : "memory");
	return v;
}

static inline unsigned long xadd_u64(volatile unsigned long *p, unsigned long v)
{
	__asm__ __volatile__("lock xaddq %0, %1" : "+r"(v), "+m"(*p) : : "memory");
	return v;
}

/* Test-and-test-and-set spinlock on xchg. */
typedef struct {
	volatile unsigned int locked;
} spinlock_t;
#define SPINLOCK_INIT { 0 }

/* Returns how many times the waiter spun (0 = uncontended). */
static inline unsigned long spin_lock(spinlock_t *l)
{
	unsigned long spins = 0;
	while (xchg_u32(&l->locked, 1) != 0) {
		while (READ_ONCE(l->locked) != 0) {
			SMP_RELAX();
			spins++;
		}
	}
	return spins;
}

static inline int spin_trylock(spinlock_t *l)
{
	return xchg_u32(&l->locked, 1) == 0;
}

static inline void spin_unlock(spinlock_t *l)
{
	compiler_barrier(); /* TSO: a plain store releases */
	WRITE_ONCE(l->locked, 0);
}

/* FIFO ticket lock: take a ticket with xadd, wait until it is served. */
typedef struct {
	volatile unsigned int next;  /* next ticket to hand out */
	volatile unsigned int owner; /* ticket being served */
} ticketlock_t;
#define TICKETLOCK_INIT { 0, 0 }

static inline unsigned long ticket_lock(ticketlock_t *l)
{
	unsigned int me = xadd_u32(&l->next, 1);
	unsigned long spins = 0;
	while (READ_ONCE(l->owner) != me) {
		SMP_RELAX();
		spins++;
	}
	compiler_barrier();
	return spins;
}

static inline void ticket_unlock(ticketlock_t *l)
{
	compiler_barrier();
	WRITE_ONCE(l->owner, l->owner + 1);
}

/*
 * Sense-reversing centralized barrier. Each participant keeps its own
 * local sense (initially 0). The last arrival resets the count and flips the
 * global sense, releasing the others.
 */
typedef struct {
	volatile unsigned int count;
	volatile unsigned int sense;
	unsigned int total;
	unsigned int pad[13]; /* keep the barrier on its own line */
} barrier_t;

static inline void barrier_init(barrier_t *b, unsigned int total)
{
	b->count = 0;
	b->sense = 0;
	b->total = total;
}

/* Returns 1 for exactly one participant per episode (the last to arrive). */
static inline int barrier_wait(barrier_t *b, unsigned int *local_sense)
{
	unsigned int s = !*local_sense;
	*local_sense = s;
	if (xadd_u32(&b->count, 1) == b->total - 1) {
		WRITE_ONCE(b->count, 0);
		compiler_barrier();
		WRITE_ONCE(b->sense, s);
		return 1;
	}
	while (READ_ONCE(b->sense) != s)
		SMP_RELAX();
	compiler_barrier();
	return 0;
}

#endif
