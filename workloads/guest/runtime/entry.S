/*
 * smpsim guest entry points, hypercall page and ELF notes (xen-abi.md
 * §1.3, §2.4, §2.6, §4.6).
 */
#define STACK_SIZE 16384

/* ---- ELF notes read by the domain builder ------------------------------ */
#define XEN_ELFNOTE_ENTRY 1
#define XEN_ELFNOTE_HYPERCALL_PAGE 2
#define XEN_ELFNOTE_VIRT_BASE 3
#define XEN_ELFNOTE_PADDR_OFFSET 4
#define XEN_ELFNOTE_XEN_VERSION 5
#define XEN_ELFNOTE_GUEST_OS 6
#define XEN_ELFNOTE_LOADER 8

.macro NOTE name, type, body:vararg
	.pushsection .note.Xen, "a", @note
	.balign 4
	.long 2f - 1f         /* namesz */
	.long 4f - 3f         /* descsz */
	.long \type
1:	.asciz "\name"
2:	.balign 4
3:	\body
4:	.balign 4
	.popsection
.endm

	NOTE "Xen", XEN_ELFNOTE_GUEST_OS, .asciz "smpsim-guest"
	NOTE "Xen", XEN_ELFNOTE_XEN_VERSION, .asciz "xen-3.0"
	NOTE "Xen", XEN_ELFNOTE_LOADER, .asciz "generic"
	NOTE "Xen", XEN_ELFNOTE_VIRT_BASE, .quad __virt_base
	NOTE "Xen", XEN_ELFNOTE_PADDR_OFFSET, .quad 0
	NOTE "Xen", XEN_ELFNOTE_ENTRY, .quad _start
	NOTE "Xen", XEN_ELFNOTE_HYPERCALL_PAGE, .quad hypercall_page
	/* smpsim's own notes: 1 = VA of the params block, 2 = its ABI version */
	NOTE "SMPSIM", 1, .quad smpsim_params
	NOTE "SMPSIM", 2, .long 1

/* ---- hypercall page: filled by the domain builder ----------------------- */
	.section .text.hypercall_page, "ax"
	.balign 4096
	.globl hypercall_page
hypercall_page:
	.fill 4096, 1, 0xcc     /* int3 until the builder writes the stubs */

/* ---- stacks ------------------------------------------------------------- */
	.section .bss.stack, "aw", @nobits
	.balign STACK_SIZE
	.globl boot_stack
boot_stack:
	.skip STACK_SIZE
boot_stack_top:

	.text
/*
 * VCPU 0 entry, PV64 start state: RSI = VA of start_info, RSP = top of the
 * builder's bootstrap stack, events masked.
 */
	.globl _start
_start:
	cld
	movq %rsi, %rdi                 /* arg 1: start_info */
	movq %rsp, %rsi                 /* arg 2: builder's stack top */
	movq $boot_stack_top, %rsp
	xorl %ebp, %ebp
	call start_c
	ud2

/*
 * Secondary VCPU entry (the RIP in its vcpu_guest_context). Only RSP is
 * needed: the struct cpu pointer sits at the bottom of the stack.
 */
	.globl secondary_entry
secondary_entry:
	cld
	leaq -1(%rsp), %rdi             /* RSP = stack top, itself aligned */
	andq $-STACK_SIZE, %rdi
	movq (%rdi), %rdi               /* struct cpu * */
	andq $-16, %rsp
	xorl %ebp, %ebp
	call secondary_c
	ud2

/*
 * Event upcall. Xen's bounce frame (§2.6), low to high at RSP:
 * RCX, R11, RIP, CS, RFLAGS, RSP, SS; events are masked. We restore
 * RCX/R11, save the caller-saved registers, run the 2-level scan in C and
 * leave through the iret hypercall (§4.6): it restores RIP/CS/RFLAGS/RSP/SS,
 * RCX, R11 and RAX, and sets upcall_mask = !RFLAGS.IF of the frame.
 */
	.globl hypervisor_callback
hypervisor_callback:
	cld                             /* Xen keeps DF; C needs it clear, iret restores it */
	popq %rcx
	popq %r11
	pushq %rax
	pushq %rcx
	pushq %rdx
	pushq %rsi
	pushq %rdi
	pushq %r8
	pushq %r9
	pushq %r10
	pushq %r11
	pushq %rbp
	movq %rsp, %rbp
	andq $-16, %rsp
	call do_upcall
	movq %rbp, %rsp
	popq %rbp
	popq %r11
	popq %r10
	popq %r9
	popq %r8
	popq %rdi
	popq %rsi
	popq %rdx
	popq %rcx
	popq %rax
	pushq $0                        /* iret flags: not in a syscall */
	jmp hypercall_page + 23 * 32

/* Failsafe callback: Xen could not restore segment state. Fatal. */
	.globl failsafe_callback
failsafe_callback:
	cld
	movq %rsp, %rdi
	andq $-16, %rsp
	call failsafe_c
	ud2

/*
 * Exception entry points (set_trap_table). Every exception is fatal for
 * these guests: report vector and frame, crash the domain.
 * Frame: RCX, R11, [error code], RIP, CS, RFLAGS, RSP, SS.
 */
.macro TRAP vec, has_err
	.globl trap_\vec
trap_\vec:
	cld
	movl $\vec, %edi
	movq %rsp, %rsi
	movl $\has_err, %edx
	andq $-16, %rsp
	call trap_fatal
	ud2
.endm
	TRAP 0, 0
	TRAP 1, 0
	TRAP 3, 0
	TRAP 4, 0
	TRAP 5, 0
	TRAP 6, 0
	TRAP 7, 0
	TRAP 8, 1
	TRAP 9, 0
	TRAP 10, 1
	TRAP 11, 1
	TRAP 12, 1
	TRAP 13, 1
	TRAP 14, 1
	TRAP 16, 0
	TRAP 17, 1
	TRAP 18, 0
	TRAP 19, 0

	.section .note.GNU-stack, "", @progbits
