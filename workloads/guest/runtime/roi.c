/*
 * Region-of-interest markers (see rt.h): the smpsim-specific
 * smpsim_op(ROI, phase) hypercall. A hypervisor without it (-ENOSYS, as a
 * real Xen answers hypercall 56) is ignored: the markers are only a hint.
 */
#include "rt.h"

static void roi(u32 phase)
{
	long rc = HYPERVISOR_smpsim_op(SMPSIMOP_roi, phase, 0, 0);
	if (rc != 0 && rc != -XEN_ENOSYS)
		guest_fail("smpsim_op(roi, phase %u) returned %ld", phase, rc);
}

void roi_begin(void)
{
	roi(SMPSIMOP_ROI_BEGIN);
}

void roi_end(void)
{
	roi(SMPSIMOP_ROI_END);
}
