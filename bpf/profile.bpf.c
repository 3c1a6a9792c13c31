// SPDX-License-Identifier: GPL-2.0
/*
 * profile.bpf.c - CPU sampling for fleetsym-agent.
 *
 * do_sample runs on a perf event per CPU (software CPU clock, frequency mode). Each sample
 * becomes one ring-buffer record: pid, tid, comm, cgroup id, the kernel stack (raw IPs) and the
 * user stack as struct bpf_stack_build_id frames, i.e. (build ID, file offset) resolved by the
 * kernel at sample time, or a raw IP where it could not. Aggregation happens in user space:
 * per-sample records cannot collide the way stack-trace maps do, and the ring buffer costs far
 * less memory than hash maps sized for the worst case.
 *
 * The record (5 KiB at full depth) is assembled in a one-entry per-CPU scratch array, not on
 * the 512-byte BPF stack, and only its used part is copied out. Records do not wake user space
 * (it polls every ~150 ms) unless the ring is filling up. Every loss is counted per CPU.
 */
#include "vmlinux.h"

#include <bpf/bpf_core_read.h>
#include <bpf/bpf_helpers.h>

#include "profile.h"

#define EFAULT 14

char LICENSE[] SEC("license") = "GPL"; /* bpf_get_stack & co are GPL-only helpers */

/* Set by the agent before loading (the skeleton's rodata). */
const volatile __u32 targ_tgid = 0;	 /* --pid: only this process */
const volatile bool targ_cgroup = false; /* --cgroup: only tasks under cgroup_filter[0] */
const volatile bool no_kernel = false;	 /* --no-kernel */
const volatile __u64 wakeup_bytes = 0;	 /* wake user space once this much data is waiting */

struct {
	__uint(type, BPF_MAP_TYPE_RINGBUF);
	__uint(max_entries, 512 * 1024); /* resized by the agent to the number of CPUs */
} events SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct prof_sample);
} scratch SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct prof_counters);
} counters SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_CGROUP_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, __u32);
} cgroup_filter SEC(".maps");

static __always_inline void count(struct prof_counters *c, int which)
{
	/* atomic: a perf-event program may interrupt a tracepoint program on this CPU */
	__sync_fetch_and_add(&c->v[which], 1);
}

static __always_inline __u64 rb_flags(void)
{
	if (wakeup_bytes && bpf_ringbuf_query(&events, BPF_RB_AVAIL_DATA) >= wakeup_bytes)
		return BPF_RB_FORCE_WAKEUP;
	return BPF_RB_NO_WAKEUP;
}

static __always_inline bool wanted(__u32 tgid)
{
	if (targ_tgid && tgid != targ_tgid)
		return false;
	if (targ_cgroup && bpf_current_task_under_cgroup(&cgroup_filter, 0) != 1)
		return false;
	return true;
}

SEC("perf_event")
int do_sample(struct bpf_perf_event_data *ctx)
{
	__u64 id = bpf_get_current_pid_tgid();
	__u32 tgid = id >> 32, tid = (__u32)id, zero = 0;
	struct prof_counters *cnt;
	struct prof_sample *s;
	long klen = 0, ulen;
	__u64 size;

	cnt = bpf_map_lookup_elem(&counters, &zero);
	if (!cnt)
		return 0;
	if (tid == 0) {
		count(cnt, PROF_CNT_IDLE);
		return 0;
	}
	if (!wanted(tgid)) {
		count(cnt, PROF_CNT_FILTERED);
		return 0;
	}
	s = bpf_map_lookup_elem(&scratch, &zero);
	if (!s)
		return 0;
	count(cnt, PROF_CNT_SAMPLES);

	s->h.type = PROF_REC_SAMPLE;
	s->h.pid = tgid;
	s->h.tid = tid;
	s->h.cpu = bpf_get_smp_processor_id();
	s->h.cgroup_id = bpf_get_current_cgroup_id();
	s->h.time_ns = bpf_ktime_get_ns();
	s->h.flags = 0;
	bpf_get_current_comm(s->h.comm, sizeof(s->h.comm));

	if (!no_kernel) {
		/* In user mode the kernel stack is empty (0): normal, not an error. */
		klen = bpf_get_stack(ctx, s->data, PROF_MAX_DEPTH * PROF_KFRAME_SIZE, 0);
		if (klen < 0) {
			count(cnt, PROF_CNT_KERN_STACK_ERR);
			s->h.flags |= PROF_F_KERN_ERR;
			klen = 0;
		} else if (klen >= PROF_MAX_DEPTH * PROF_KFRAME_SIZE) {
			count(cnt, PROF_CNT_KERN_TRUNC);
			s->h.flags |= PROF_F_KERN_TRUNC;
			klen = PROF_MAX_DEPTH * PROF_KFRAME_SIZE;
		}
		klen &= ~(long)(PROF_KFRAME_SIZE - 1);
	}
	/* keeps the verifier's bounds on the variable offset below */
	if (klen < 0 || klen > PROF_MAX_DEPTH * PROF_KFRAME_SIZE)
		return 0;

	ulen = bpf_get_stack(ctx, s->data + klen, PROF_MAX_DEPTH * PROF_UFRAME_SIZE,
			     BPF_F_USER_STACK | BPF_F_USER_BUILD_ID);
	if (ulen < 0) {
		/* a kernel thread has no user stack and gets 0, not an error */
		count(cnt, PROF_CNT_USER_STACK_ERR);
		s->h.flags |= PROF_F_USER_ERR;
		ulen = 0;
	} else if (ulen >= PROF_MAX_DEPTH * PROF_UFRAME_SIZE) {
		count(cnt, PROF_CNT_USER_TRUNC);
		s->h.flags |= PROF_F_USER_TRUNC;
		ulen = PROF_MAX_DEPTH * PROF_UFRAME_SIZE;
	}
	if (ulen < 0 || ulen > PROF_MAX_DEPTH * PROF_UFRAME_SIZE)
		return 0;
	s->h.kern_len = klen / PROF_KFRAME_SIZE;
	s->h.user_len = ulen / PROF_UFRAME_SIZE;

	size = sizeof(s->h) + klen + (ulen & ~(long)(PROF_UFRAME_SIZE - 1));
	if (size > sizeof(*s))
		return 0;
	if (bpf_ringbuf_output(&events, s, size, rb_flags()))
		count(cnt, PROF_CNT_RINGBUF_FULL);
	return 0;
}

static __always_inline int notice(__u32 type)
{
	__u64 id = bpf_get_current_pid_tgid();
	__u32 tgid = id >> 32, zero = 0;
	struct prof_counters *cnt;
	struct prof_hdr h = {};

	if (type == PROF_REC_EXIT && (__u32)id != tgid)
		return 0; /* only the thread group leader's exit */
	if (!wanted(tgid))
		return 0;
	h.type = type;
	h.pid = tgid;
	h.tid = (__u32)id;
	h.cpu = bpf_get_smp_processor_id();
	h.cgroup_id = bpf_get_current_cgroup_id();
	h.time_ns = bpf_ktime_get_ns();
	bpf_get_current_comm(h.comm, sizeof(h.comm));
	if (bpf_ringbuf_output(&events, &h, sizeof(h), BPF_RB_NO_WAKEUP)) {
		cnt = bpf_map_lookup_elem(&counters, &zero);
		if (cnt)
			count(cnt, PROF_CNT_EVENTS_LOST);
	}
	return 0;
}

SEC("raw_tp/sched_process_exec")
int on_exec(void *ctx)
{
	return notice(PROF_REC_EXEC);
}

SEC("raw_tp/sched_process_exit")
int on_exit(void *ctx)
{
	return notice(PROF_REC_EXIT);
}
