/*
 * smpsim guest runtime API. Every workload is one C file that includes this
 * header and defines:
 *
 *   WORKLOAD(name, arg0 .. arg7 defaults)  -- name and default arguments
 *   void workload_init(void);              -- VCPU 0, before others start
 *   void workload_run(struct cpu *c);      -- every VCPU, after a barrier
 *   void workload_check(void);             -- VCPU 0, after all runs ended
 *
 * The runtime then shuts the domain down with SHUTDOWN_poweroff and prints
 * "PASS <name>"; any VCPU may call guest_fail(), which prints
 * "FAIL <name>: <message>" and shuts down with SHUTDOWN_crash.
 */
#ifndef SMPSIM_RT_H
#define SMPSIM_RT_H
#include "types.h"
#include "xen.h"
#include "params.h"
#include "lock.h"
#include "pure.h"
#include "hypercall.h"

#define MAX_VCPUS 1024
#define STACK_SIZE 16384 /* per-VCPU stack, aligned to its size */
#define PAGE_SIZE 4096

typedef void (*evtchn_handler_t)(u32 port, void *arg);

/* Per-VCPU runtime state; the pointer sits at the bottom of its stack. */
struct cpu {
	u32 id;
	u32 ipi_port;           /* bound with bind_ipi to this VCPU */
	u32 timer_port;         /* VIRQ_TIMER port, 0 until timer_bind() */
	u32 online;
	struct vcpu_info *vi;   /* in shared_info, or registered */
	u64 *owned;             /* bitmap of ports notified to this VCPU */
	volatile u64 ipi_count;   /* IPI events handled */
	volatile u64 timer_count; /* VIRQ_TIMER events handled */
	volatile u64 upcalls;     /* upcalls entered */
	void *stack;            /* base of its STACK_SIZE stack */
	unsigned int bsense;    /* local sense for the global barrier */
	u32 pad0;
	struct lat_buf *lat;    /* lat_record() batch, allocated on first use */
} ALIGNED(CACHELINE);

extern struct cpu cpus[MAX_VCPUS];
extern unsigned int nr_cpus;
extern struct shared_info *shared;
extern struct start_info *start_info;
extern struct smpsim_params smpsim_params;
extern const char workload_name[];
extern const u64 workload_arg_defaults[SMPSIM_NR_ARGS];

#define WORKLOAD(name, a0, a1, a2, a3, a4, a5, a6, a7) \
	const char workload_name[] = name; \
	const u64 workload_arg_defaults[SMPSIM_NR_ARGS] = { a0, a1, a2, a3, a4, a5, a6, a7 }

void workload_init(void);
void workload_run(struct cpu *c);
void workload_check(void);

/* Argument i: the builder's value, or the workload default when 0. */
u64 arg(unsigned int i);

static inline struct cpu *this_cpu(void)
{
	unsigned long sp;
	__asm__ __volatile__("movq %%rsp, %0" : "=r"(sp));
	return *(struct cpu **)(sp & ~((unsigned long)STACK_SIZE - 1));
}

/* console and exit */
void printf(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void console_write(const char *s, size_t n);
NORETURN void guest_fail(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
NORETURN void guest_shutdown(u32 reason);

/* memory */
void *heap_alloc(size_t bytes, size_t align); /* zeroed; fails the run if exhausted */
/* Not zeroed: for memory the caller writes before reading (stacks, arrays
 * it initialises), to spare the simulator a long `rep stosb`. */
void *heap_alloc_raw(size_t bytes, size_t align);
u64 virt_to_pfn(const void *va);
u64 pfn_to_mfn(u64 pfn);
void *memset(void *d, int c, size_t n);
void *memcpy(void *d, const void *s, size_t n);
void *memmove(void *d, const void *s, size_t n);
int memcmp(const void *a, const void *b, size_t n);
size_t strlen(const char *s);

/* virtual interrupt flag (vcpu_info.evtchn_upcall_mask) */
void local_irq_disable(void);
void local_irq_enable(void);
u8 local_irq_save(void);
void local_irq_restore(u8 saved);

/* event channels (negative return = -Xen errno) */
long evtchn_alloc_unbound(u16 remote_dom, u32 *port);
long evtchn_bind_interdomain(u16 remote_dom, u32 remote_port, u32 *port);
long evtchn_bind_virq(u32 virq, u32 vcpu, u32 *port);
long evtchn_bind_ipi(u32 vcpu, u32 *port);
long evtchn_bind_vcpu(u32 port, u32 vcpu);
long evtchn_send(u32 port);
long evtchn_unmask(u32 port);
long evtchn_close(u32 port);
void evtchn_mask(u32 port);
int evtchn_test_and_clear_pending(u32 port);
/* Route port's events on `vcpu` to handler (runs with events masked). */
void evtchn_set_handler(u32 port, u32 vcpu, evtchn_handler_t h, void *arg);

/* scheduling */
void sched_block(void); /* returns with events masked again */
void sched_yield(void);
long sched_poll(u32 *ports, u32 n, u64 timeout_abs_ns);
/* Wait (blocking) until cond holds; events are delivered meanwhile. */
#define WAIT_EVENT(cond) \
	do { \
		for (;;) { \
			local_irq_disable(); \
			if (cond) \
				break; \
			sched_block(); \
		} \
		local_irq_enable(); \
	} while (0)

/* time */
static inline u64 rdtsc(void)
{
	u32 lo, hi;
	__asm__ __volatile__("rdtsc" : "=a"(lo), "=d"(hi));
	return ((u64)hi << 32) | lo;
}
u64 now_ns(void);                /* system time from this VCPU's vcpu_time_info */
u64 tsc_delta_to_ns(u64 delta);  /* with this VCPU's scale */
long timer_set_periodic(u64 period_ns);
long timer_stop_periodic(void);
long timer_set_singleshot(u64 abs_ns);
long timer_stop_singleshot(void);
long set_timer_op(u64 abs_ns);
/* Binds VIRQ_TIMER on this VCPU; each event bumps timer_count. */
void timer_bind(void);

/*
 * Guest-measured latencies (smpsim-specific): lat_record() buffers a sample
 * (TSC cycles) on the calling VCPU and hands full batches of LAT_BATCH to
 * the simulator's exact histograms with smpsim_op(RECORD_SAMPLES); the
 * runtime flushes every VCPU's rest when its workload_run returns, and VCPU
 * 0's before the final shutdown. Call from the VCPU's own flow, not from
 * event handlers. On a hypervisor without smpsim_op (-ENOSYS) recording
 * stops silently; any other error fails the run.
 */
#define LAT_EVTCHN_RTT 0   /* event-channel send -> reply upcall observed */
#define LAT_LOCK_WAIT 1    /* first acquire attempt -> lock held */
#define LAT_BARRIER_WAIT 2 /* barrier arrival -> release */
#define LAT_BATCH 256      /* samples per hypercall (<= SMPSIMOP_MAX_SAMPLES) */
struct lat_buf {
	u32 id; /* histogram of the buffered samples */
	u32 n;  /* samples buffered */
	u64 s[LAT_BATCH];
};
void lat_record_slow(u32 id, u64 cycles); /* allocate, switch id, flush */
void lat_flush(void); /* this VCPU's buffered samples, now */

/* Fast path inline: a few instructions when the batch has room. */
static inline void lat_record(u32 id, u64 cycles)
{
	struct lat_buf *b = this_cpu()->lat;
	if (b && b->id == id && b->n < LAT_BATCH - 1) {
		b->s[b->n++] = cycles;
		return;
	}
	lat_record_slow(id, cycles);
}

/*
 * Region of interest (smpsim-specific): roi_begin()/roi_end() tell the
 * simulator where the measured part of a workload starts and ends, with
 * smpsim_op(ROI, 1 / 0). It may switch the timing model there (at its next
 * hypervisor service tick, so a few hundred cycles after the call may still
 * run in the old model). Only a hint: on a hypervisor without it (-ENOSYS)
 * nothing happens; any other error fails the run. Call from one VCPU.
 */
void roi_begin(void);
void roi_end(void);

/* SMP */
void smp_barrier(void);          /* all nr_cpus VCPUs */
static inline void cpu_relax(void) { SMP_RELAX(); }

#endif
