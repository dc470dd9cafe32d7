/*
 * fault: misbehaves on purpose, to test the simulator's fault and error
 * paths. It never passes: every mode ends with SHUTDOWN_crash.
 * arg0 (default 1):
 *   1 = load from the unmapped VA 0x1000 (#PF, cr2 = 0x1000)
 *   2 = ud2 (#UD)
 *   3 = divide by zero (#DE)
 *   4 = a bad hypercall argument: EVTCHNOP_send on a port never bound,
 *       which must return -EINVAL; the guest reports it and crashes
 *   5 = an AVX instruction (vzeroupper), which smpsim's cores do not
 *       implement and CPUID does not advertise: #UD naming it
 *   6 = hlt, which a PV kernel (ring 3 on x86-64) may not execute (#GP)
 * With the runtime's trap table, a fault prints "FAIL fault: exception N on
 * VCPU 0 at rip ..." from the guest; a hypervisor without set_trap_table
 * crashes the domain itself. Only VCPU 0 misbehaves.
 */
#include "rt.h"

WORKLOAD("fault", 1, 0, 0, 0, 0, 0, 0, 0);

void workload_init(void)
{
}

static NORETURN void bad_hypercall(void)
{
	long rc = evtchn_send(4000);
	guest_fail("EVTCHNOP_send(unbound port 4000) returned %ld%s", rc,
		   rc == -XEN_EINVAL ? " (-EINVAL, as expected)" : ", expected -EINVAL");
}

void workload_run(struct cpu *c)
{
	volatile u64 zero = 0;
	if (c->id != 0)
		return;
	switch (arg(0)) {
	case 1:
		(void)*(volatile u64 *)0x1000;
		break;
	case 2:
		__asm__ __volatile__("ud2");
		break;
	case 3: { /* in asm: C compilers may fold a division by zero away */
		u64 lo = 1, hi = 0;
		__asm__ __volatile__("divq %2" : "+a"(lo), "+d"(hi) : "r"((u64)zero));
		break;
	}
	case 4:
		bad_hypercall();
	case 5:
		__asm__ __volatile__("vzeroupper");
		break;
	case 6:
		__asm__ __volatile__("hlt");
		break;
	default:
		break;
	}
	guest_fail("mode %lu did not fault", arg(0));
}

void workload_check(void)
{
	guest_fail("reached the check, which no mode should");
}
