/*
 * unwind.h - one step of the x86-64 user-stack walk: from a frame's registers and the row that
 * covers its PC (struct unw_row, bpf/profile.h) to the caller's registers. Shared by the BPF
 * program and the agent's replay of recorded stacks (agent/unwreplay.c), so that both follow
 * the same rules. The includer defines UNW_READ(dst, addr) that reads the 8-byte word at user
 * address ADDR into the __u64 *DST and returns 0, or a negative value when it cannot.
 */
#ifndef FLEETSYM_BPF_UNWIND_H
#define FLEETSYM_BPF_UNWIND_H

#include "profile.h"

#ifndef UNW_INLINE
#define UNW_INLINE static inline
#endif

struct unw_regs {
	__u64 pc, sp, bp;
	__u32 exact; /* pc is an exact instruction address (leaf, or interrupted by a signal) */
	__u32 pad;
};

enum unw_step_res {
	UNW_STEP_OK = 0,    /* REGS now hold the caller's */
	UNW_STEP_ENTRY = 1, /* this frame is the outermost */
	UNW_STEP_BAD = 2,   /* the row cannot be applied */
	UNW_STEP_READ = 3,  /* a stack slot could not be read */
	UNW_STEP_FP_END = 4 /* frame-pointer step: the chain ends (rbp zero or going down) */
};

/* Offsets in the ucontext that rsp points at in the signal trampoline (__restore_rt). */
#define UNW_UC_RBP 120
#define UNW_UC_RSP 160
#define UNW_UC_RIP 168

/* The rbp_off argument of unw_step_row() for a row's rbp_off8. */
UNW_INLINE __s32 unw_row_rbp(__u32 kind, __s8 rbp_off8)
{
	return kind == UNW_ROW_PLT ? rbp_off8 : (__s32)rbp_off8 * 8;
}

/* The pc to look up: a return address points after the call, so look at the call itself. */
UNW_INLINE __u64 unw_lookup_pc(const struct unw_regs *r)
{
	return r->exact ? r->pc : r->pc - 1;
}

/* Step through frame pointers: [rbp] = caller's rbp, [rbp + 8] = return address. */
UNW_INLINE int unw_step_fp(struct unw_regs *r)
{
	__u64 bp = 0, ra = 0;

	if (!r->bp || r->bp < r->sp || (r->bp & 7))
		return UNW_STEP_FP_END;
	if (UNW_READ(&ra, r->bp + 8) || UNW_READ(&bp, r->bp))
		return UNW_STEP_READ;
	r->sp = r->bp + 16;
	r->bp = bp;
	r->pc = ra;
	r->exact = 0;
	return UNW_STEP_OK;
}

/* Apply ROW (kind, cfa_off, rbp_off) to R. NONE rows step through frame pointers. */
UNW_INLINE int unw_step_row(__u32 kind, __s32 cfa_off, __s32 rbp_off, struct unw_regs *r)
{
	__u64 cfa, ra = 0, bp = 0;

	switch (kind) {
	case UNW_ROW_NONE: return unw_step_fp(r);
	case UNW_ROW_STOP: return UNW_STEP_ENTRY;
	case UNW_ROW_SIGNAL:
		if (UNW_READ(&ra, r->sp + UNW_UC_RIP) || UNW_READ(&bp, r->sp + UNW_UC_RBP) ||
		    UNW_READ(&cfa, r->sp + UNW_UC_RSP))
			return UNW_STEP_READ;
		r->pc = ra;
		r->bp = bp;
		r->sp = cfa;
		r->exact = 1;
		return UNW_STEP_OK;
	case UNW_ROW_CFA_RSP: cfa = r->sp + (__s64)cfa_off; break;
	case UNW_ROW_CFA_RBP: cfa = r->bp + (__s64)cfa_off; break;
	case UNW_ROW_PLT:
		cfa = r->sp + (__s64)cfa_off + ((r->pc & 15) >= (__u64)rbp_off ? 8 : 0);
		rbp_off = 0;
		break;
	default: return UNW_STEP_BAD;
	}
	if (UNW_READ(&ra, cfa - 8))
		return UNW_STEP_READ;
	if (rbp_off) {
		if (UNW_READ(&bp, cfa + (__s64)rbp_off))
			return UNW_STEP_READ;
		r->bp = bp;
	}
	r->sp = cfa;
	r->pc = ra;
	r->exact = 0;
	return UNW_STEP_OK;
}

#endif
