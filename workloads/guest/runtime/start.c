/*
 * Boot (VCPU 0 from Xen's PV64 start state), memory, and SMP bring-up
 * (xen-abi.md §2.4, §4.2, Appendix B). See README-guest.md for the contract.
 */
#include "rt.h"

struct smpsim_params smpsim_params __attribute__((section(".data.smpsim_params"), aligned(64),
						  used)) = { .magic = SMPSIM_PARAMS_MAGIC,
							     .version = SMPSIM_PARAMS_VERSION };
struct cpu cpus[MAX_VCPUS];
unsigned int nr_cpus = 1;
struct shared_info *shared;
struct start_info *start_info;

extern char boot_stack[], _end[], __virt_base[];
extern char hypercall_page[];
void hypervisor_callback(void);
void failsafe_callback(void);
void secondary_entry(void);

static char shared_info_page[PAGE_SIZE] ALIGNED(PAGE_SIZE);
static struct vcpu_guest_context boot_ctx;
static barrier_t smp_bar;
static volatile u32 nr_done;
static volatile u32 nr_online; /* secondaries with their IPI port bound */
static int traps_installed;

u64 arg(unsigned int i)
{
	if (i >= SMPSIM_NR_ARGS)
		guest_fail("arg(%u): only %u arguments exist", i, SMPSIM_NR_ARGS);
	u64 v = READ_ONCE(smpsim_params.arg[i]);
	return v ? v : workload_arg_defaults[i];
}

/* ---- memory ------------------------------------------------------------ */

static spinlock_t heap_lock = SPINLOCK_INIT;
static u64 heap_next, heap_end;

u64 virt_to_pfn(const void *va)
{
	return ((u64)va - (u64)__virt_base) / PAGE_SIZE;
}

/* With no P2M list (start_info.mfn_list == 0) MFN == PFN is assumed. */
u64 pfn_to_mfn(u64 pfn)
{
	if (!start_info->mfn_list)
		return pfn;
	return ((const u64 *)start_info->mfn_list)[pfn];
}

static u64 max_u64(u64 a, u64 b)
{
	return a > b ? a : b;
}

/* Free memory: after the image and everything the builder placed after it. */
static void heap_init(u64 builder_rsp)
{
	u64 base = (u64)__virt_base;
	u64 end = base + start_info->nr_pages * PAGE_SIZE;
	u64 lo = max_u64((u64)_end, (u64)start_info + PAGE_SIZE);
	if (builder_rsp >= base && builder_rsp <= end)
		lo = max_u64(lo, builder_rsp);
	if (start_info->pt_base)
		lo = max_u64(lo, start_info->pt_base + start_info->nr_pt_frames * PAGE_SIZE);
	if (start_info->mfn_list)
		lo = max_u64(lo, start_info->mfn_list + start_info->nr_pages * 8);
	u64 sv = smpsim_params.shared_va;
	if (sv >= lo && sv < end)
		end = sv;
	heap_next = ALIGN_UP(lo, PAGE_SIZE);
	heap_end = end;
	if (heap_next > heap_end)
		guest_fail("no free memory: image and boot data end at %lx, memory ends at %lx",
			   heap_next, heap_end);
}

void *heap_alloc_raw(size_t bytes, size_t align)
{
	u8 flags = local_irq_save();
	spin_lock(&heap_lock);
	u64 p = ALIGN_UP(heap_next, align);
	int ok = p + bytes <= heap_end && p >= heap_next;
	if (ok)
		heap_next = p + bytes;
	u64 left = heap_end - heap_next;
	spin_unlock(&heap_lock);
	local_irq_restore(flags);
	if (!ok)
		guest_fail("out of memory: %lu bytes wanted, %lu left of %lu pages; give the "
			   "domain more memory",
			   bytes, left, start_info->nr_pages);
	return (void *)p;
}

void *heap_alloc(size_t bytes, size_t align)
{
	return memset(heap_alloc_raw(bytes, align), 0, bytes);
}

/* ---- boot helpers --------------------------------------------------------- */

static void map_shared_info(void)
{
	if (smpsim_params.shared_info_va) {
		shared = (struct shared_info *)smpsim_params.shared_info_va;
		return;
	}
	long rc = HYPERVISOR_update_va_mapping((u64)shared_info_page, start_info->shared_info | 7,
					       UVMF_INVLPG);
	if (rc < 0)
		guest_fail("update_va_mapping(shared_info MA %lx) returned %ld and the builder "
			   "gave no shared_info_va",
			   start_info->shared_info, rc);
	shared = (struct shared_info *)shared_info_page;
}

static long register_callbacks(void)
{
	struct callback_register ev = { CALLBACKTYPE_event, 0, 0, (u64)hypervisor_callback };
	struct callback_register fs = { CALLBACKTYPE_failsafe, 0, 0, (u64)failsafe_callback };
	long rc = HYPERVISOR_callback_op(CALLBACKOP_register, &ev);
	if (rc < 0)
		return HYPERVISOR_set_callbacks(hypervisor_callback, failsafe_callback, 0);
	HYPERVISOR_callback_op(CALLBACKOP_register, &fs); /* optional */
	return 0;
}

#define NR_TRAPS 18
static const u8 trap_vectors[NR_TRAPS] = { 0, 1, 3, 4, 5, 6, 7, 8, 9,
					   10, 11, 12, 13, 14, 16, 17, 18, 19 };
#define T(n) extern char trap_##n[]
T(0); T(1); T(3); T(4); T(5); T(6); T(7); T(8); T(9);
T(10); T(11); T(12); T(13); T(14); T(16); T(17); T(18); T(19);
#undef T
static struct trap_info trap_table[NR_TRAPS + 1];

/* Optional: a hypervisor without set_trap_table crashes the domain itself. */
static void install_traps(void)
{
	char *stubs[NR_TRAPS] = { trap_0, trap_1, trap_3, trap_4, trap_5, trap_6,
				  trap_7, trap_8, trap_9, trap_10, trap_11, trap_12,
				  trap_13, trap_14, trap_16, trap_17, trap_18, trap_19 };
	for (int i = 0; i < NR_TRAPS; i++) {
		trap_table[i].vector = trap_vectors[i];
		trap_table[i].flags = 4; /* mask events on entry, DPL 0 */
		trap_table[i].cs = FLAT_KERNEL_CS;
		trap_table[i].address = (u64)stubs[i];
	}
	traps_installed = HYPERVISOR_set_trap_table(trap_table) == 0;
}

static unsigned int count_vcpus(void)
{
	u32 n = smpsim_params.nr_vcpus;
	if (n > MAX_VCPUS)
		guest_fail("params.nr_vcpus = %u exceeds the runtime's MAX_VCPUS %u", n, MAX_VCPUS);
	if (n)
		return n;
	while (n < MAX_VCPUS && HYPERVISOR_vcpu_op(VCPUOP_is_up, n, 0) >= 0)
		n++;
	return n ? n : 1;
}

static void setup_vcpu_info(struct cpu *c)
{
	int all = smpsim_params.flags & SMPSIM_FLAG_REGISTER_ALL_VCPU_INFO;
	if (c->id < XEN_LEGACY_MAX_VCPUS && !all) {
		c->vi = &shared->vcpu_info[c->id];
		return;
	}
	struct vcpu_info *vi = heap_alloc(sizeof(*vi), 64);
	vi->evtchn_upcall_mask = 1;
	struct vcpu_register_vcpu_info r = { pfn_to_mfn(virt_to_pfn(vi)), (u32)((u64)vi % PAGE_SIZE),
					     0 };
	long rc = HYPERVISOR_vcpu_op(VCPUOP_register_vcpu_info, c->id, &r);
	if (rc < 0)
		guest_fail("register_vcpu_info(VCPU %u, mfn %lx) returned %ld", c->id, r.mfn, rc);
	c->vi = vi;
}

static void ipi_handler(u32 port, void *a)
{
	struct cpu *c = a;
	(void)port;
	c->ipi_count++;
}

/* Per-VCPU setup, run by each VCPU on itself. */
/* Xen starts a VCPU with its reset FPU (FCW 0x0040: x87 exceptions
 * unmasked); like mini-os, put the FPU and SSE in their usual state. */
static void fpu_init(void)
{
	u32 mxcsr = 0x1f80;
	__asm__ __volatile__("fninit; ldmxcsr %0" : : "m"(mxcsr));
}

static void cpu_local_init(struct cpu *c)
{
	fpu_init();
	if (c->id != 0)
		register_callbacks(); /* also given in its context; harmless */
	timer_stop_periodic(); /* PV VCPUs start with a 10 ms tick */
	u32 port;
	long rc = evtchn_bind_ipi(c->id, &port);
	if (rc < 0)
		guest_fail("bind_ipi(VCPU %u) returned %ld", c->id, rc);
	c->ipi_port = port;
	evtchn_set_handler(port, c->id, ipi_handler, c);
	WRITE_ONCE(c->online, 1);
	local_irq_enable();
}

/* The parts of every secondary's context that do not depend on the VCPU
 * (filled once: VCPUOP_initialise copies the context synchronously). */
static void init_context(struct vcpu_guest_context *x)
{
	memset(x, 0, sizeof(*x));
	x->flags = VGCF_in_kernel;
	x->user_regs.rip = (u64)secondary_entry;
	x->user_regs.rflags = 0x200;
	x->user_regs.cs = FLAT_KERNEL_CS;
	x->user_regs.ss = x->user_regs.ds = x->user_regs.es = FLAT_KERNEL_SS;
	x->kernel_ss = FLAT_KERNEL_SS;
	if (start_info->pt_base)
		x->ctrlreg[3] = pfn_to_mfn(virt_to_pfn((void *)start_info->pt_base)) << 12;
	x->event_callback_eip = (u64)hypervisor_callback;
	x->failsafe_callback_eip = (u64)failsafe_callback;
	if (traps_installed)
		for (int i = 0; i < NR_TRAPS; i++)
			x->trap_ctxt[trap_table[i].vector] = trap_table[i];
}

static void build_context(struct cpu *c)
{
	static int ready;
	struct vcpu_guest_context *x = &boot_ctx;
	u64 top = (u64)c->stack + STACK_SIZE;
	if (!ready) {
		init_context(x);
		ready = 1;
	}
	x->user_regs.rsp = top;
	x->user_regs.rdi = c->id;
	x->kernel_sp = top;
}

static void bring_up(struct cpu *c)
{
	c->stack = heap_alloc_raw(STACK_SIZE, STACK_SIZE);
	*(struct cpu **)c->stack = c;
	build_context(c);
	long rc = HYPERVISOR_vcpu_op(VCPUOP_initialise, c->id, &boot_ctx);
	if (rc < 0)
		guest_fail("VCPUOP_initialise(VCPU %u) returned %ld", c->id, rc);
	rc = HYPERVISOR_vcpu_op(VCPUOP_up, c->id, 0);
	if (rc < 0)
		guest_fail("VCPUOP_up(VCPU %u) returned %ld", c->id, rc);
}

void smp_barrier(void)
{
	barrier_wait(&smp_bar, &this_cpu()->bsense);
}

/*
 * Start wave: instead of every secondary spinning at the first barrier
 * while VCPU 0 brings the others up (quadratic simulated work), each blocks
 * until an IPI from its parent in a binary tree (children of i: 2i+1, 2i+2),
 * then wakes its own children. That IPI is consumed here, so the
 * workloads' IPI counts start at 0.
 */
static void wake_children(struct cpu *c)
{
	for (u32 k = 2 * c->id + 1; k <= 2 * c->id + 2 && k < nr_cpus; k++) {
		long rc = evtchn_send(cpus[k].ipi_port);
		if (rc < 0)
			guest_fail("start wave: send to VCPU %u returned %ld", k, rc);
	}
}

static void wait_for_start(struct cpu *c)
{
	WAIT_EVENT(c->ipi_count >= 1);
	c->ipi_count = 0;
	wake_children(c);
}

static void run_workload(struct cpu *c)
{
	smp_barrier();
	workload_run(c);
	lat_flush();
	xadd_u32(&nr_done, 1);
}

/* ---- entry from entry.S ------------------------------------------------ */

NORETURN void secondary_c(struct cpu *c)
{
	cpu_local_init(c);
	xadd_u32(&nr_online, 1);
	wait_for_start(c);
	run_workload(c);
	HYPERVISOR_vcpu_op(VCPUOP_down, c->id, 0);
	for (;;)
		sched_block();
}

static void check_start_info(void)
{
	const char *m = start_info->magic;
	if (m[0] != 'x' || m[1] != 'e' || m[2] != 'n' || m[3] != '-')
		guest_fail("start_info magic is not \"xen-...\" (RSI = %p)", (void *)start_info);
	if (smpsim_params.magic != SMPSIM_PARAMS_MAGIC ||
	    smpsim_params.version != SMPSIM_PARAMS_VERSION)
		guest_fail("params block magic/version overwritten (%x/%u)", smpsim_params.magic,
			   smpsim_params.version);
}

static void boot_cpus(void)
{
	nr_cpus = count_vcpus();
	for (unsigned int i = 0; i < nr_cpus; i++) {
		cpus[i].id = i;
		cpus[i].owned = heap_alloc(NR_EVENT_CHANNELS / 8, CACHELINE);
	}
	for (unsigned int i = 0; i < nr_cpus; i++)
		setup_vcpu_info(&cpus[i]);
	barrier_init(&smp_bar, nr_cpus);
}

NORETURN void start_c(struct start_info *si, u64 builder_rsp)
{
	*(struct cpu **)boot_stack = &cpus[0];
	cpus[0].stack = boot_stack;
	start_info = si;
	check_start_info();
	map_shared_info();
	heap_init(builder_rsp);
	if (register_callbacks() < 0)
		guest_fail("neither callback_op nor set_callbacks registered the event callback");
	install_traps();
	for (unsigned int i = 0; i < ARRAY_SIZE(shared->evtchn_mask); i++)
		WRITE_ONCE(shared->evtchn_mask[i], ~0UL);
	boot_cpus();
	cpu_local_init(&cpus[0]);
	long ver = HYPERVISOR_xen_version(XENVER_version, 0);
	printf("smpsim guest %s: Xen %ld.%ld, %u VCPUs, %lu pages, heap %lu KiB\n", workload_name,
	       ver >> 16, ver & 0xffff, nr_cpus, start_info->nr_pages,
	       (heap_end - heap_next) / 1024);
	workload_init();
	for (unsigned int i = 1; i < nr_cpus; i++)
		bring_up(&cpus[i]);
	while (READ_ONCE(nr_online) != nr_cpus - 1)
		sched_yield();
	wake_children(&cpus[0]);
	run_workload(&cpus[0]);
	while (READ_ONCE(nr_done) != nr_cpus)
		cpu_relax();
	workload_check();
	printf("PASS %s\n", workload_name);
	lat_flush();
	guest_shutdown(SHUTDOWN_poweroff);
}
