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
#define PROF_DATA_MAX	 (PROF_MAX_DEPTH * PROF_KFRAME_SIZE + PROF_MAX_DEPTH * PROF_UFRAME_SIZE)

enum prof_rec_type {
	PROF_REC_SAMPLE = 1, /* a struct prof_sample */
	PROF_REC_EXEC = 2,   /* a struct prof_hdr only: PID exec'd, its mappings changed */
	PROF_REC_EXIT = 3,   /* a struct prof_hdr only: PID's thread group leader exited */
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
	PROF_CNT_MAX,
};

struct prof_counters {
	__u64 v[PROF_CNT_MAX];
};

#endif
