/* Console output (console_io write), failure and shutdown. */
#include "rt.h"
#include "fmt.h"

static spinlock_t console_lock = SPINLOCK_INIT;

void console_write(const char *s, size_t n)
{
	/* Events masked while holding the lock: handlers may print too. */
	u8 flags = local_irq_save();
	spin_lock(&console_lock);
	HYPERVISOR_console_io(CONSOLEIO_write, n, s);
	spin_unlock(&console_lock);
	local_irq_restore(flags);
}

static void vprint(const char *prefix, const char *fmt, va_list ap)
{
	char buf[512];
	size_t n = (size_t)smp_snprintf(buf, sizeof(buf), "%s", prefix);
	if (n >= sizeof(buf))
		n = sizeof(buf) - 1;
	size_t m = (size_t)smp_vsnprintf(buf + n, sizeof(buf) - n, fmt, ap);
	n = n + m < sizeof(buf) ? n + m : sizeof(buf) - 1;
	console_write(buf, n);
}

void printf(const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	vprint("", fmt, ap);
	va_end(ap);
}

NORETURN void guest_shutdown(u32 reason)
{
	struct sched_shutdown s = { reason };
	HYPERVISOR_sched_op(SCHEDOP_shutdown, &s);
	/* The hypervisor stops every VCPU; never proceed if it did not yet. */
	for (;;)
		HYPERVISOR_sched_op(SCHEDOP_yield, 0);
}

NORETURN void guest_fail(const char *fmt, ...)
{
	char prefix[64];
	smp_snprintf(prefix, sizeof(prefix), "FAIL %s: ", workload_name);
	va_list ap;
	va_start(ap, fmt);
	vprint(prefix, fmt, ap);
	va_end(ap);
	console_write("\n", 1);
	guest_shutdown(SHUTDOWN_crash);
}

/* Called from the exception stubs in entry.S. */
NORETURN void trap_fatal(u32 vector, u64 *frame, u32 has_err)
{
	u64 err = has_err ? frame[2] : 0;
	u64 rip = frame[2 + has_err];
	struct cpu *c = this_cpu();
	u64 cr2 = c && c->vi ? c->vi->cr2 : 0;
	guest_fail("exception %u on VCPU %u at rip %lx (error code %lx, cr2 %lx)", vector,
		   c ? c->id : 0, rip, err, cr2);
}

NORETURN void failsafe_c(u64 *frame)
{
	guest_fail("failsafe callback (bad segment state), frame at %p", (void *)frame);
}
