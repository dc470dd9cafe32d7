/*
 * The workload parameter block: the contract between a guest image and the
 * domain builder (see workloads/README-guest.md and src/params.rs, which
 * mirror this layout byte for byte).
 *
 * The image defines `smpsim_params` (ELF symbol, and the SMPSIM note type 1
 * holds its address) in its data segment with magic and version filled in.
 * The builder checks magic/version, then overwrites bytes 8..128 in guest
 * memory before VCPU 0 starts. Zero in any field means "not provided".
 */
#ifndef SMPSIM_PARAMS_H
#define SMPSIM_PARAMS_H
#include "types.h"

#define SMPSIM_PARAMS_MAGIC 0x53504D53u /* bytes "SMPS" */
#define SMPSIM_PARAMS_VERSION 1u
#define SMPSIM_NR_ARGS 8

/* flags */
#define SMPSIM_FLAG_REGISTER_ALL_VCPU_INFO (1u << 0)

struct smpsim_params {
	u32 magic;          /*   0: image: SMPSIM_PARAMS_MAGIC */
	u32 version;        /*   4: image: SMPSIM_PARAMS_VERSION */
	u32 nr_vcpus;       /*   8: builder: VCPUs to use; 0 = count with VCPUOP_is_up */
	u32 flags;          /*  12: builder: SMPSIM_FLAG_* */
	u32 domain_index;   /*  16: builder: index of this domain in its group (0, 1) */
	u32 peer_domid;     /*  20: builder: domid of the peer domain (interdomain) */
	u64 shared_info_va; /*  24: builder: VA where it mapped shared_info; 0 = guest maps it */
	u64 shared_va;      /*  32: builder: VA of the page(s) shared by the group's domains */
	u64 shared_bytes;   /*  40: builder: size of that shared area in bytes */
	u64 arg[SMPSIM_NR_ARGS]; /* 48: builder: workload arguments; 0 = workload default */
	u64 reserved[2];    /* 112: zero */
};

STATIC_ASSERT(sizeof(struct smpsim_params) == 128, "smpsim_params size");
STATIC_ASSERT(offsetof(struct smpsim_params, arg) == 48, "smpsim_params.arg");

#endif
