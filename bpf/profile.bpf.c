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
 *
 * Table unwinding (unwind_on): instead of the kernel's frame-pointer walk, do_sample tail-calls
 * unw_walk, which walks the user stack itself, UNW_FRAMES_PER_CALL frames per call, tail-calling
 * itself for depth. For each frame it finds the VMA of the PC (bpf_find_vma, 5.17+), the file's
 * table in unw_files by (device, inode), binary-searches the file's rows in unw_rows and applies
 * the row (bpf/unwind.h). Frames are written exactly like the kernel's build-ID frames: (build
 * ID, file offset) when the file's build ID is known, else the raw IP. A file without a table
 * yet is requested from the agent once (a PROF_REC_UNW_NEED record) and stepped through frame
 * pointers meanwhile; so is anonymous (JIT) code. Every way a walk ends is counted.
 */
#include "vmlinux.h"

#include <bpf/bpf_core_read.h>
#include <bpf/bpf_helpers.h>

#include "profile.h"

#define UNW_INLINE	    static __always_inline
#define UNW_READ(dst, addr) bpf_probe_read_user((dst), 8, (const void *)(addr))
#include "unwind.h"

#define UNW_FRAMES_PER_CALL 8
#define UNW_SEARCH_STEPS    24 /* tables of up to 16M rows */

#define EFAULT	14
#define VM_EXEC 0x4

char LICENSE[] SEC("license") = "GPL"; /* bpf_get_stack & co are GPL-only helpers */

/* Set by the agent before loading (the skeleton's rodata). */
const volatile __u32 targ_tgid = 0;	 /* --pid: only this process */
const volatile bool targ_cgroup = false; /* --cgroup: only tasks under cgroup_filter[0] */
const volatile bool no_kernel = false;	 /* --no-kernel */
const volatile __u64 wakeup_bytes = 0;	 /* wake user space once this much data is waiting */
const volatile bool unwind_on = false;	 /* walk user stacks with the tables */

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

/* The walk's state between tail calls. */
struct unw_state {
	struct unw_regs r;
	__u32 klen;	 /* bytes of kernel frames before the user frames */
	__u32 n;	 /* user frames written */
	__u32 vma_tried; /* bpf_find_vma was called for this sample */
	__u32 pad;
};

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct unw_state);
} unw_states SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(map_flags, BPF_F_MMAPABLE);
	__uint(max_entries, 1); /* sized by the agent from --unwind-memory */
	__type(key, __u32);
	__type(value, struct unw_row);
} unw_rows SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 16384);
	__type(key, struct unw_file_key);
	__type(value, struct unw_file);
} unw_files SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, 4096); /* processes on CPU recently: 4.7 MB preallocated */
	__type(key, __u32);
	__type(value, struct unw_vmas);
} unw_vmas SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct unw_vmas);
} unw_vmas_zero SEC(".maps"); /* never written: the initial value of a process's entry */

struct {
	__uint(type, BPF_MAP_TYPE_PROG_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, __u32);
} unw_progs SEC(".maps");

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

/* Copy the record's used part (header, KLEN bytes of kernel frames, ULEN of user frames) out. */
static __always_inline void emit(struct prof_sample *s, struct prof_counters *cnt, long klen,
				 long ulen)
{
	__u64 size;

	if (klen < 0 || klen > PROF_MAX_DEPTH * PROF_KFRAME_SIZE || ulen < 0 ||
	    ulen > PROF_MAX_UDEPTH * PROF_UFRAME_SIZE)
		return;
	size = sizeof(s->h) + klen + (ulen & ~(long)(PROF_UFRAME_SIZE - 1));
	if (size > sizeof(*s))
		return;
	if (bpf_ringbuf_output(&events, s, size, rb_flags()))
		count(cnt, PROF_CNT_RINGBUF_FULL);
}

/* The user registers of the current task: the sample's if it interrupted user mode, else the
 * ones saved at kernel entry. -1 for kernel threads. */
static __always_inline int user_regs(struct bpf_perf_event_data *ctx, struct unw_regs *r)
{
	struct task_struct *task = bpf_get_current_task_btf();
	struct pt_regs *regs;

	if (!task || !task->mm)
		return -1;
	/* the context allows only 8-byte reads: cs shares its word with padding */
	if ((*(volatile __u64 *)&ctx->regs.cs & 3) == 3) {
		r->pc = ctx->regs.ip;
		r->sp = ctx->regs.sp;
		r->bp = ctx->regs.bp;
	} else {
		regs = (struct pt_regs *)bpf_task_pt_regs(task);
		if (!regs)
			return -1;
		r->pc = BPF_CORE_READ(regs, ip);
		r->sp = BPF_CORE_READ(regs, sp);
		r->bp = BPF_CORE_READ(regs, bp);
	}
	r->exact = 1;
	return r->pc ? 0 : -1;
}

SEC("perf_event")
int do_sample(struct bpf_perf_event_data *ctx)
{
	__u64 id = bpf_get_current_pid_tgid();
	__u32 tgid = id >> 32, tid = (__u32)id, zero = 0;
	struct prof_counters *cnt;
	struct prof_sample *s;
	long klen = 0, ulen;

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

	if (unwind_on) {
		struct unw_state *st = bpf_map_lookup_elem(&unw_states, &zero);

		if (st && !user_regs(ctx, &st->r)) {
			st->klen = klen;
			st->n = 0;
			st->vma_tried = 0;
			bpf_tail_call(ctx, &unw_progs, 0);
			/* not reached unless unw_walk is missing: the kernel's walk below */
		}
	}

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
	emit(s, cnt, klen, ulen);
	return 0;
}

static long vma_cb(struct task_struct *task, struct vm_area_struct *vma, void *data)
{
	struct unw_vma *vi = data;
	struct file *f = BPF_CORE_READ(vma, vm_file);

	vi->start = BPF_CORE_READ(vma, vm_start);
	vi->end = BPF_CORE_READ(vma, vm_end);
	vi->pgoff = BPF_CORE_READ(vma, vm_pgoff) << 12;
	vi->exec = (BPF_CORE_READ(vma, vm_flags) & VM_EXEC) != 0;
	if (f) {
		vi->key.ino = BPF_CORE_READ(f, f_inode, i_ino);
		vi->key.dev = BPF_CORE_READ(f, f_inode, i_sb, s_dev);
		vi->file = 1;
	} else if ((__u64)BPF_CORE_READ(task, mm, context.vdso) == vi->start) {
		vi->key.ino = 0;
		vi->key.dev = UNW_DEV_VDSO;
		vi->file = 1;
	}
	return 0;
}

/* Ask the agent for the table of VI's file, once: the PENDING entry marks it asked. */
static __always_inline void request_table(struct unw_vma *vi, struct prof_counters *cnt)
{
	struct unw_file pending = {};
	struct unw_need *nd;
	__u64 id = bpf_get_current_pid_tgid();

	if (bpf_map_update_elem(&unw_files, &vi->key, &pending, BPF_NOEXIST))
		return; /* asked already, or the map is full */
	nd = bpf_ringbuf_reserve(&events, sizeof(*nd), 0);
	if (!nd) {
		count(cnt, PROF_CNT_UNW_NEED_LOST);
		bpf_map_delete_elem(&unw_files, &vi->key);
		return;
	}
	__builtin_memset(&nd->h, 0, sizeof(nd->h));
	nd->h.type = PROF_REC_UNW_NEED;
	nd->h.pid = id >> 32;
	nd->h.tid = (__u32)id;
	nd->h.time_ns = bpf_ktime_get_ns();
	nd->key = vi->key;
	nd->vm_start = vi->start;
	nd->vm_end = vi->end;
	nd->pgoff = vi->pgoff;
	bpf_ringbuf_submit(nd, BPF_RB_FORCE_WAKEUP); /* a table is waited for */
}

struct row_search {
	__u32 lo, hi, rel;
	__u32 fail;
};

/* One bisection step (a bpf_loop callback: the verifier checks it once, not per step). */
static long row_step(__u64 i, void *data)
{
	struct row_search *rs = data;
	struct unw_row *row;
	__u32 mid;

	if (rs->lo >= rs->hi)
		return 1;
	mid = rs->lo + (rs->hi - rs->lo) / 2;
	row = bpf_map_lookup_elem(&unw_rows, &mid);
	if (!row) {
		rs->fail = 1;
		return 1;
	}
	if (row->pc <= rs->rel)
		rs->lo = mid + 1;
	else
		rs->hi = mid;
	return 0;
}

/* The row of F that covers file offset FO: last row with pc <= FO + delta. */
static __always_inline struct unw_row *find_row(struct unw_file *f, __u64 fo)
{
	struct row_search rs = {};
	__u64 rel = ~0ULL;
	__u32 key;

	for (int i = 0; i < UNW_MAX_SEGS; i++) {
		if (i >= f->nsegs)
			break;
		if (fo >= f->seg[i].lo && fo < f->seg[i].hi) {
			rel = fo + f->seg[i].delta;
			break;
		}
	}
	if (rel > 0xffffffffULL)
		return NULL;
	rs.lo = f->row_start;
	rs.hi = rs.lo + f->row_count;
	rs.rel = (__u32)rel;
	bpf_loop(UNW_SEARCH_STEPS, row_step, &rs, 0);
	if (rs.fail || rs.lo == f->row_start)
		return NULL;
	key = rs.lo - 1;
	return bpf_map_lookup_elem(&unw_rows, &key);
}

struct vma_search {
	struct unw_vmas *vm;
	__u64 pc;
	__s32 found;
};

static long vma_step(__u64 i, void *data)
{
	struct vma_search *vs = data;

	if (i >= UNW_MAX_VMAS || i >= vs->vm->n)
		return 1;
	if (vs->pc >= vs->vm->v[i].start && vs->pc < vs->vm->v[i].end) {
		vs->found = (__s32)i;
		return 1;
	}
	return 0;
}

/* Remember VI in VM (unless it is there already). */
static __always_inline void vmas_add(struct unw_vmas *vm, struct unw_vma *vi)
{
	struct vma_search vs = {.vm = vm, .pc = vi->start, .found = -1};
	__u32 i;

	bpf_loop(UNW_MAX_VMAS, vma_step, &vs, 0);
	if (vs.found >= 0)
		return;
	if (vm->n < UNW_MAX_VMAS) {
		i = vm->n;
		vm->n = i + 1;
	} else {
		i = vm->next % UNW_MAX_VMAS;
		vm->next = i + 1;
	}
	asm volatile("" : "+r"(i)); /* keep the bound check below from being folded away */
	if (i < UNW_MAX_VMAS)
		vm->v[i] = *vi;
}

/* TGID's learned mappings, created empty if needed. */
static __always_inline struct unw_vmas *vmas_of(__u32 tgid)
{
	struct unw_vmas *vm, *init;
	__u32 zero = 0;

	vm = bpf_map_lookup_elem(&unw_vmas, &tgid);
	if (vm)
		return vm;
	init = bpf_map_lookup_elem(&unw_vmas_zero, &zero);
	if (init)
		bpf_map_update_elem(&unw_vmas, &tgid, init, BPF_NOEXIST);
	return bpf_map_lookup_elem(&unw_vmas, &tgid);
}

/* The mapping of PC in VM, else through bpf_find_vma once per sample (then learned in VM). */
static __always_inline int find_vma(struct unw_state *st, struct unw_vmas *vm,
				    struct task_struct *task, __u64 pc, struct unw_vma *vi)
{
	struct vma_search vs = {.vm = vm, .pc = pc, .found = -1};
	__u32 i;

	bpf_loop(UNW_MAX_VMAS, vma_step, &vs, 0);
	i = (__u32)vs.found;
	if (i < UNW_MAX_VMAS) {
		*vi = vm->v[i];
		return 0;
	}
	if (st->vma_tried)
		return -1;
	st->vma_tried = 1;
	vi->start = vi->end = 0;
	if (bpf_find_vma(task, pc, vma_cb, vi, 0) || vi->end <= pc)
		return -1;
	vmas_add(vm, vi);
	return 0;
}

/* Learn the executable mapping at ADDR of the current process (process context: no limit). */
static __always_inline void learn_vma(__u64 addr)
{
	struct task_struct *task = bpf_get_current_task_btf();
	struct unw_vma vi = {};
	struct unw_vmas *vm;

	if (!unwind_on || !task)
		return;
	if (bpf_find_vma(task, addr, vma_cb, &vi, 0) || !vi.exec || vi.end <= addr)
		return;
	vm = vmas_of(bpf_get_current_pid_tgid() >> 32);
	if (vm)
		vmas_add(vm, &vi);
	/* Its table is asked for at its first sample, not here: on a build or CI host most
	 * new binaries run once, briefly, and are never sampled. */
}

/* Write frame ST->n for the PC in ST->r and step to the caller. 0: go on; 1: the walk ended. */
static __always_inline int walk_one(struct unw_state *st, struct prof_sample *s,
				    struct prof_counters *cnt, struct task_struct *task,
				    struct unw_vmas *vm)
{
	struct bpf_stack_build_id *out;
	struct unw_vma vi = {};
	struct unw_file *f = NULL;
	struct unw_row *row = NULL;
	__u32 kind = UNW_ROW_NONE;
	__s32 cfa_off = 0, rbp_off = 0;
	__u64 off, lpc, fo;
	int res;

	if (st->n >= PROF_MAX_UDEPTH) {
		count(cnt, PROF_CNT_UNW_TRUNC);
		s->h.flags |= PROF_F_USER_TRUNC;
		return 1;
	}
	off = st->klen + (__u64)st->n * PROF_UFRAME_SIZE;
	if (off > PROF_DATA_MAX - PROF_UFRAME_SIZE)
		return 1;
	out = (void *)(s->data + off);
	lpc = unw_lookup_pc(&st->r);
	if (find_vma(st, vm, task, lpc, &vi)) {
		/* a real frame, in a mapping this sample cannot look up: the next one will */
		out->status = BPF_STACK_BUILD_ID_IP;
		__builtin_memset(out->build_id, 0, UNW_BUILD_ID);
		out->ip = st->r.pc;
		st->n++;
		count(cnt, st->vma_tried > 1 ? PROF_CNT_UNW_STOP_UNMAPPED : PROF_CNT_UNW_STOP_VMA);
		return 1;
	}
	if (vi.file)
		f = bpf_map_lookup_elem(&unw_files, &vi.key);
	fo = st->r.pc - vi.start + vi.pgoff;
	if (f && f->has_build_id) {
		out->status = BPF_STACK_BUILD_ID_VALID;
		__builtin_memcpy(out->build_id, f->build_id, UNW_BUILD_ID);
		out->offset = fo;
	} else {
		out->status = BPF_STACK_BUILD_ID_IP;
		__builtin_memset(out->build_id, 0, UNW_BUILD_ID);
		out->ip = st->r.pc;
	}
	st->n++;

	if (!vi.file) {
		count(cnt, PROF_CNT_UNW_FRAMES_FP_ANON);
	} else if (!f) {
		count(cnt, PROF_CNT_UNW_PENDING);
		request_table(&vi, cnt);
	} else if (f->state == UNW_FILE_PENDING) {
		count(cnt, PROF_CNT_UNW_PENDING);
	} else if (f->state == UNW_FILE_READY) {
		__u64 now = bpf_ktime_get_ns();

		if (now - f->last_use_ns > 1000000000ULL)
			f->last_use_ns = now; /* a write per file and second, for the agent's LRU */
		row = find_row(f, lpc - vi.start + vi.pgoff);
		if (row) {
			kind = row->kind;
			cfa_off = (__s32)row->cfa_off8 * 8;
			rbp_off = unw_row_rbp(kind, row->rbp_off8);
		}
	}
	count(cnt, kind == UNW_ROW_NONE ? PROF_CNT_UNW_FRAMES_FP : PROF_CNT_UNW_FRAMES_TABLE);
	res = unw_step_row(kind, cfa_off, rbp_off, &st->r);
	switch (res) {
	case UNW_STEP_OK:
		if (st->r.pc)
			return 0;
		/* fall through: a zero return address ends the chain like an undefined one */
	case UNW_STEP_ENTRY: count(cnt, PROF_CNT_UNW_STOP_ENTRY); return 1;
	case UNW_STEP_BAD: count(cnt, PROF_CNT_UNW_STOP_BAD_ROW); return 1;
	case UNW_STEP_READ: count(cnt, PROF_CNT_UNW_STOP_READ); return 1;
	default: count(cnt, PROF_CNT_UNW_STOP_NO_TABLE); return 1;
	}
}

SEC("perf_event")
int unw_walk(struct bpf_perf_event_data *ctx)
{
	struct task_struct *task = bpf_get_current_task_btf();
	struct prof_counters *cnt;
	__u32 zero = 0, tgid = bpf_get_current_pid_tgid() >> 32;
	struct unw_vmas *vm;
	struct unw_state *st;
	struct prof_sample *s;

	cnt = bpf_map_lookup_elem(&counters, &zero);
	s = bpf_map_lookup_elem(&scratch, &zero);
	st = bpf_map_lookup_elem(&unw_states, &zero);
	if (!cnt || !s || !st)
		return 0;
	if (st->n == 0)
		count(cnt, PROF_CNT_UNW_STACKS);
	vm = vmas_of(tgid);
	if (!vm)
		goto done;
	for (int i = 0; i < UNW_FRAMES_PER_CALL; i++)
		if (walk_one(st, s, cnt, task, vm))
			goto done;
	bpf_tail_call(ctx, &unw_progs, 0);
	count(cnt, PROF_CNT_UNW_TRUNC); /* out of tail calls */
	s->h.flags |= PROF_F_USER_TRUNC;
done:
	if (st->klen > PROF_MAX_DEPTH * PROF_KFRAME_SIZE || st->n > PROF_MAX_UDEPTH)
		return 0;
	s->h.kern_len = st->klen / PROF_KFRAME_SIZE;
	s->h.user_len = st->n;
	emit(s, cnt, st->klen, (long)st->n * PROF_UFRAME_SIZE);
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
	if (type == PROF_REC_EXIT)
		bpf_map_delete_elem(&unw_vmas, &tgid); /* its mappings are gone */
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

/* The table unwinder's: forget the old image's mappings, learn the new executable's. */
SEC("raw_tp/sched_process_exec")
int unw_on_exec(void *ctx)
{
	struct task_struct *task = bpf_get_current_task_btf();
	__u32 tgid = bpf_get_current_pid_tgid() >> 32;

	bpf_map_delete_elem(&unw_vmas, &tgid);
	if (task && task->mm && wanted(tgid))
		learn_vma(BPF_CORE_READ(task, mm, start_code));
	return 0;
}

SEC("raw_tp/sched_process_exit")
int on_exit(void *ctx)
{
	return notice(PROF_REC_EXIT);
}
