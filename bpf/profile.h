/*
 * profile.h - the records that bpf/profile.bpf.c writes into its ring buffer and the counters
 * it keeps, shared by the BPF program and agent/. Only __u32-style types: both sides compile it.
 *
 * A sample record is a fixed header followed by KERN_LEN kernel IPs (__u64) and then USER_LEN
 * struct bpf_stack_build_id (32 bytes each: status, build ID, file offset or raw IP). The
 * kernel frames come first so that the record is only as long as the stacks it carries.
 */
#ifndef FLEETSYM_BPF_PROFILE_H
#define FLEETSYM_BPF_PROFILE_H

#ifndef __VMLINUX_H__
#include <linux/types.h> /* user space; the BPF side has vmlinux.h */
#endif

/* perf_event_max_stack's default: bpf_get_stack never returns more frames than that. */
#define PROF_MAX_DEPTH	 127
#define PROF_COMM_LEN	 16
#define PROF_KFRAME_SIZE 8
#define PROF_UFRAME_SIZE 32 /* sizeof(struct bpf_stack_build_id) */
/* User frames of the table unwinder: 33 tail calls of UNW_FRAMES_PER_CALL frames reach it. */
#define PROF_MAX_UDEPTH 256
#define PROF_DATA_MAX	(PROF_MAX_DEPTH * PROF_KFRAME_SIZE + PROF_MAX_UDEPTH * PROF_UFRAME_SIZE)

enum prof_rec_type {
	PROF_REC_SAMPLE = 1,   /* a struct prof_sample */
	PROF_REC_EXEC = 2,     /* a struct prof_hdr only: PID exec'd, its mappings changed */
	PROF_REC_EXIT = 3,     /* a struct prof_hdr only: PID's thread group leader exited */
	PROF_REC_UNW_NEED = 4, /* a struct unw_need: a mapped file has no unwind table yet */
};

/* Flags of a sample: what was cut short or failed, also counted in the counters. */
enum prof_flag {
	PROF_F_USER_TRUNC = 1,
	PROF_F_KERN_TRUNC = 2,
	PROF_F_USER_ERR = 4,
	PROF_F_KERN_ERR = 8,
};

struct prof_hdr {
	__u32 type; /* enum prof_rec_type */
	__u32 pid;  /* thread group (process) id */
	__u32 tid;
	__u32 cpu;
	__u64 cgroup_id; /* cgroup v2 id: the inode number of the cgroup's directory */
	__u64 time_ns;	 /* CLOCK_MONOTONIC */
	__u16 kern_len;	 /* kernel frames after the header */
	__u16 user_len;	 /* user frames after the kernel frames */
	__u32 flags;	 /* enum prof_flag */
	char comm[PROF_COMM_LEN];
};

struct prof_sample {
	struct prof_hdr h;
	unsigned char data[PROF_DATA_MAX];
};

/* Per-CPU counters (a one-entry per-CPU array); user space sums the CPUs. */
enum prof_counter {
	PROF_CNT_SAMPLES,	 /* samples taken (after the filters) */
	PROF_CNT_IDLE,		 /* the CPU was idle (pid 0): not a drop */
	PROF_CNT_FILTERED,	 /* left out by --pid or --cgroup: not a drop */
	PROF_CNT_RINGBUF_FULL,	 /* samples lost: the ring buffer was full */
	PROF_CNT_USER_STACK_ERR, /* bpf_get_stack(user) failed: the sample has no user frames */
	PROF_CNT_KERN_STACK_ERR, /* bpf_get_stack(kernel) failed: no kernel frames */
	PROF_CNT_USER_TRUNC,	 /* user stack as deep as the buffer: may be cut at the root */
	PROF_CNT_KERN_TRUNC,	 /* kernel stack likewise */
	PROF_CNT_EVENTS_LOST,	 /* exec/exit notices lost to a full ring buffer */
	/* table unwinding (bpf/unwind.h), counted per frame or per stack */
	PROF_CNT_UNW_STACKS,	     /* user stacks walked by the table unwinder */
	PROF_CNT_UNW_FRAMES_TABLE,   /* steps taken through an unwind table row */
	PROF_CNT_UNW_FRAMES_FP,	     /* steps through frame pointers: no table for the PC */
	PROF_CNT_UNW_FRAMES_FP_ANON, /* ... of which in anonymous (JIT) code */
	PROF_CNT_UNW_PENDING,	     /* ... of which the file's table was not built yet */
	PROF_CNT_UNW_STOP_ENTRY,     /* walks that reached the process or thread entry */
	PROF_CNT_UNW_STOP_NO_TABLE,  /* walks ended in code without a table (fp chain broke) */
	PROF_CNT_UNW_STOP_BAD_ROW,   /* walks ended on a row that is not register + offset */
	PROF_CNT_UNW_STOP_UNMAPPED,  /* walks ended at a PC outside every mapping */
	PROF_CNT_UNW_STOP_READ,	     /* walks ended on an unreadable stack slot */
	PROF_CNT_UNW_TRUNC,	     /* walks cut at PROF_MAX_UDEPTH frames */
	PROF_CNT_UNW_NEED_LOST,	     /* table requests lost to a full ring buffer */
	PROF_CNT_UNW_STOP_VMA,	     /* walks ended at a PC in a mapping not learned yet */
	PROF_CNT_MAX,
};

struct prof_counters {
	__u64 v[PROF_CNT_MAX];
};

/*
 * Unwind tables. The agent builds one table per mapped file from its CFI (agent/unwtab.c):
 * rows sorted by pc, each valid up to the next row's pc. The rows of every table live in one
 * big array map (unw_rows); unw_files maps a file (the kernel's device and inode numbers, as
 * the BPF program sees them in the VMA) to its rows, the file-offset ranges of its executable
 * segments with the value that turns a file offset into a row pc, and its build ID.
 */
/* Row kinds; offsets are in units of 8 bytes (cfa_off8, rbp_off8 in struct unw_row). */
enum unw_kind {
	UNW_ROW_NONE = 0,    /* no CFI covers this pc: step through frame pointers */
	UNW_ROW_CFA_RSP = 1, /* CFA = rsp + cfa; RA at CFA - 8; rbp at CFA + rbp (if saved) */
	UNW_ROW_CFA_RBP = 2, /* CFA = rbp + cfa; likewise */
	UNW_ROW_PLT = 3,     /* PLT entry: CFA = rsp + cfa + ((pc & 15) >= rbp_off8 ? 8 : 0) */
	UNW_ROW_SIGNAL = 4,  /* signal trampoline: rsp points at the ucontext */
	UNW_ROW_STOP = 5,    /* return address undefined: the entry point (_start, clone) */
	UNW_ROW_BAD = 6,     /* a rule we cannot express: DWARF expression, odd register */
};

/* 8 bytes (array map values sit at 8-byte strides, which user space sees through mmap). */
struct unw_row {
	__u32 pc;	/* ELF virtual address minus the table's base */
	__u8 kind;	/* enum unw_kind */
	__s8 rbp_off8;	/* rbp saved at CFA + 8 * rbp_off8 (0: unchanged); PLT: the threshold */
	__s16 cfa_off8; /* CFA = rsp or rbp + 8 * cfa_off8 (CFA offsets are multiples of 8) */
};

#define UNW_MAX_SEGS 4
#define UNW_BUILD_ID 20

struct unw_file_key {
	__u64 ino;
	__u64 dev; /* kernel dev_t of the inode's super block; UNW_DEV_VDSO for the vDSO */
};

#define UNW_DEV_VDSO (~0ULL)

enum unw_file_state {
	UNW_FILE_PENDING = 0, /* requested; the agent is building its table */
	UNW_FILE_READY = 1,
	UNW_FILE_NO_TABLE = 2, /* no usable CFI, or no room: frame pointers only */
};

struct unw_seg {
	__u64 lo, hi; /* file offsets [lo, hi) of an executable segment */
	__s64 delta;  /* row pc = file offset + delta */
};

struct unw_file {
	__u64 last_use_ns; /* bpf_ktime_get_ns() of a walk through it, to the second: for LRU */
	__u32 state;	   /* enum unw_file_state */
	__u32 row_start, row_count;
	__u32 nsegs;
	struct unw_seg seg[UNW_MAX_SEGS];
	__u32 has_build_id;
	unsigned char build_id[UNW_BUILD_ID]; /* zero-padded like struct bpf_stack_build_id's */
};

/*
 * The executable mappings of a process as the BPF program learned them: the executable's at
 * exec, and one per sample for anything else (bpf_find_vma works once per sample: in the
 * sample's interrupt it defers the mmap lock's release to an irq_work that stays busy until
 * the interrupt ends). Replaced round robin when full, dropped at exec and exit.
 */
#define UNW_MAX_VMAS 24

struct unw_vma {
	__u64 start, end, pgoff; /* pgoff in bytes */
	struct unw_file_key key;
	__u32 file; /* key is valid: a file or the vDSO (else anonymous memory) */
	__u32 exec; /* mapped executable */
};

struct unw_vmas {
	__u32 n, next;
	struct unw_vma v[UNW_MAX_VMAS];
};

/* PROF_REC_UNW_NEED: h.pid mapped KEY at [vm_start, vm_end) from file offset pgoff. */
struct unw_need {
	struct prof_hdr h;
	struct unw_file_key key;
	__u64 vm_start, vm_end, pgoff;
};

#endif
