/*
 * bpfprof - the skeleton's lifecycle plus the diagnosis of a failed start. The ring buffer gets
 * 64 KiB per CPU (at least 512 KiB): at 99 Hz and full-depth stacks that is more than a
 * second of samples per CPU, against a poll every ~150 ms. The program wakes user space only
 * when a quarter of it is used.
 */
#include "agent/bpfprof.h"

#include "profile.skel.h"

#include "lib/err.h"
#include "lib/log.h"

#include <bpf/libbpf.h>
#include <errno.h>
#include <fcntl.h>
#include <linux/capability.h>
#include <linux/perf_event.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <sys/utsname.h>
#include <unistd.h>

#define BPFPROF_RB_PER_CPU (64u << 10)
#define BPFPROF_RB_MIN	   (512u << 10)
#define BPFPROF_RB_MAX	   (64u << 20)
#define BPFPROF_MAX_CPUS   4096

#ifndef CAP_PERFMON
#define CAP_PERFMON 38
#endif
#ifndef CAP_BPF
#define CAP_BPF 39
#endif

struct bpfprof {
	struct profile_bpf *skel;
	struct ring_buffer *rb;
	struct bpf_link **links;
	int nlinks, ncpus;
	size_t rb_size;
	int nposs;
	bpfprof_record_fn fn;
	void *ctx;
	bool unwind; /* the table unwinder is loaded */
};

static int on_record(void *ctx, void *data, size_t size)
{
	struct bpfprof *p = ctx;

	return p->fn(p->ctx, data, size);
}

static const char *const counter_names[PROF_CNT_MAX] = {
    [PROF_CNT_SAMPLES] = "samples",
    [PROF_CNT_IDLE] = "idle",
    [PROF_CNT_FILTERED] = "filtered",
    [PROF_CNT_RINGBUF_FULL] = "ringbuf_full",
    [PROF_CNT_USER_STACK_ERR] = "user_stack_err",
    [PROF_CNT_KERN_STACK_ERR] = "kern_stack_err",
    [PROF_CNT_USER_TRUNC] = "user_truncated",
    [PROF_CNT_KERN_TRUNC] = "kern_truncated",
    [PROF_CNT_EVENTS_LOST] = "notices_lost",
    [PROF_CNT_UNW_STACKS] = "unw_stacks",
    [PROF_CNT_UNW_FRAMES_TABLE] = "unw_frames_table",
    [PROF_CNT_UNW_FRAMES_FP] = "unw_frames_fp",
    [PROF_CNT_UNW_FRAMES_FP_ANON] = "unw_frames_fp_anon",
    [PROF_CNT_UNW_PENDING] = "unw_pending",
    [PROF_CNT_UNW_STOP_ENTRY] = "unw_stop_entry",
    [PROF_CNT_UNW_STOP_NO_TABLE] = "unw_stop_no_table",
    [PROF_CNT_UNW_STOP_BAD_ROW] = "unw_stop_bad_row",
    [PROF_CNT_UNW_STOP_UNMAPPED] = "unw_stop_unmapped",
    [PROF_CNT_UNW_STOP_READ] = "unw_stop_read",
    [PROF_CNT_UNW_TRUNC] = "unw_truncated",
    [PROF_CNT_UNW_NEED_LOST] = "unw_requests_lost",
    [PROF_CNT_UNW_STOP_VMA] = "unw_stop_vma_unknown",
};

const char *bpfprof_counter_name(int i)
{
	return i >= 0 && i < PROF_CNT_MAX ? counter_names[i] : "?";
}

static int libbpf_log(enum libbpf_print_level level, const char *fmt, va_list ap)
{
	char line[1024];
	size_t n;

	vsnprintf(line, sizeof(line), fmt, ap);
	n = strlen(line);
	while (n && line[n - 1] == '\n')
		line[--n] = 0;
	log_msg(level == LIBBPF_WARN   ? FS_LOG_WARN
		: level == LIBBPF_INFO ? FS_LOG_INFO
				       : FS_LOG_DEBUG,
		"%s", line); /* libbpf's lines start with "libbpf: " */
	return 0;
}

static bool has_cap(const struct __user_cap_data_struct d[2], int cap)
{
	return d[cap / 32].effective & (1u << (cap % 32));
}

/* Log everything that is missing for sampling; returns how many things were. */
static int diagnose(void)
{
	struct __user_cap_header_struct h = {.version = _LINUX_CAPABILITY_VERSION_3};
	struct __user_cap_data_struct d[2] = {0};
	struct utsname u;
	int maj = 0, min = 0, missing = 0;

	if (uname(&u) == 0 && sscanf(u.release, "%d.%d", &maj, &min) == 2 &&
	    (maj < 5 || (maj == 5 && min < 8))) {
		log_msg(FS_LOG_ERROR,
			"kernel %s is too old: fleetsym-agent needs 5.8 or later "
			"(BPF ring buffer, build IDs in stacks)",
			u.release);
		missing++;
	}
	if (access("/sys/kernel/btf/vmlinux", R_OK) != 0) {
		log_msg(FS_LOG_ERROR, "no /sys/kernel/btf/vmlinux: the kernel has no BTF "
				      "(CONFIG_DEBUG_INFO_BTF=y is needed for CO-RE)");
		missing++;
	}
	if (syscall(SYS_capget, &h, d) == 0 && !has_cap(d, CAP_SYS_ADMIN) &&
	    !(has_cap(d, CAP_BPF) && has_cap(d, CAP_PERFMON))) {
		log_msg(FS_LOG_ERROR,
			"not privileged: run as root, or with CAP_BPF and CAP_PERFMON "
			"(plus CAP_SYS_PTRACE, CAP_CHECKPOINT_RESTORE and CAP_DAC_READ_SEARCH "
			"for the build IDs of mapped files, CAP_SYSLOG for kernel symbols): "
			"see agent/fleetsym-agent.service");
		missing++;
	}
	return missing;
}

/* Parse a CPU list such as "0-3,6" (sysfs "online") into ONLINE[0..MAX). Returns the count. */
static int online_cpus(bool *online, int max)
{
	char buf[4096], *p = buf, *end;
	FILE *f = fopen("/sys/devices/system/cpu/online", "re");
	long a, b;
	int n = 0;

	if (!f)
		return -errno;
	if (!fgets(buf, sizeof(buf), f)) {
		fclose(f);
		return -EIO;
	}
	fclose(f);
	for (;;) {
		a = strtol(p, &end, 10);
		if (end == p)
			break;
		b = a;
		if (*end == '-') {
			p = end + 1;
			b = strtol(p, &end, 10);
			if (end == p)
				break;
		}
		for (long c = a; c <= b && c >= 0 && c < max; c++, n++)
			online[c] = true;
		if (*end != ',')
			break;
		p = end + 1;
	}
	return n;
}

static int open_event(int cpu, unsigned int freq)
{
	struct perf_event_attr attr = {
	    .type = PERF_TYPE_SOFTWARE,
	    .size = sizeof(attr),
	    .config = PERF_COUNT_SW_CPU_CLOCK,
	    .freq = 1,
	    .sample_freq = freq,
	};
	long fd = syscall(SYS_perf_event_open, &attr, -1, cpu, -1, PERF_FLAG_FD_CLOEXEC);

	return fd < 0 ? -errno : (int)fd;
}

static void explain_perf_error(int err, unsigned int freq)
{
	char max[32] = "?";
	FILE *f;

	if (err == -EINVAL) {
		f = fopen("/proc/sys/kernel/perf_event_max_sample_rate", "re");
		if (f) {
			if (!fgets(max, sizeof(max), f))
				snprintf(max, sizeof(max), "?");
			max[strcspn(max, "\n")] = 0;
			fclose(f);
		}
		log_msg(FS_LOG_ERROR,
			"perf_event_open refused %u Hz: kernel.perf_event_max_sample_rate "
			"is %s",
			freq, max);
	} else if (err == -EACCES || err == -EPERM) {
		log_msg(FS_LOG_ERROR, "perf_event_open: %s: needs CAP_PERFMON (or root)",
			strerror(-err));
		diagnose();
	} else {
		log_msg(FS_LOG_ERROR, "perf_event_open: %s", strerror(-err));
	}
}

static int attach_cpus(struct bpfprof *p, unsigned int freq)
{
	static bool online[BPFPROF_MAX_CPUS];
	int n, err;

	memset(online, 0, sizeof(online));
	n = online_cpus(online, BPFPROF_MAX_CPUS);
	if (n <= 0) {
		log_msg(FS_LOG_ERROR, "cannot read /sys/devices/system/cpu/online");
		return n ? n : -ENODEV;
	}
	p->links = calloc((size_t)n, sizeof(*p->links));
	if (!p->links)
		return -ENOMEM;
	for (int cpu = 0; cpu < BPFPROF_MAX_CPUS && p->nlinks < n; cpu++) {
		struct bpf_link *l;
		int fd;

		if (!online[cpu])
			continue;
		fd = open_event(cpu, freq);
		if (fd == -ENODEV)
			continue; /* went offline meanwhile */
		if (fd < 0) {
			explain_perf_error(fd, freq);
			return fd;
		}
		l = bpf_program__attach_perf_event(p->skel->progs.do_sample, fd);
		if (!l) {
			err = -errno;
			close(fd);
			log_msg(FS_LOG_ERROR, "attaching to the perf event of CPU %d: %s", cpu,
				strerror(-err));
			return err;
		}
		p->links[p->nlinks++] = l; /* the link owns fd now */
	}
	p->ncpus = p->nlinks;
	return p->nlinks ? 0 : -ENODEV;
}

static size_t ring_size(void)
{
	long n = sysconf(_SC_NPROCESSORS_CONF);
	size_t want = (size_t)(n > 0 ? n : 1) * BPFPROF_RB_PER_CPU, size = BPFPROF_RB_MIN;

	while (size < want && size < BPFPROF_RB_MAX)
		size *= 2;
	return size;
}

/* Open and load the skeleton, with the table unwinder or without. */
static int load(struct bpfprof *p, const struct bpfprof_opts *o, bool unwind)
{
	__u32 zero = 0;
	int err, fd;

	profile_bpf__destroy(p->skel);
	p->skel = profile_bpf__open();
	if (!p->skel) {
		err = -errno;
		log_msg(FS_LOG_ERROR, "opening the BPF object: %s", strerror(-err));
		return err;
	}
	p->skel->rodata->targ_tgid = o->pid;
	p->skel->rodata->targ_cgroup = o->cgroup_fd > 0;
	p->skel->rodata->no_kernel = o->no_kernel;
	p->skel->rodata->wakeup_bytes = p->rb_size / 4;
	p->skel->rodata->unwind_on = unwind;
	err = bpf_map__set_max_entries(p->skel->maps.events, (__u32)p->rb_size);
	if (!err && unwind)
		err = bpf_map__set_max_entries(p->skel->maps.unw_rows, o->unwind_rows);
	if (!err && !unwind)
		err = bpf_program__set_autoload(p->skel->progs.unw_walk, false)
			  ?: bpf_program__set_autoload(p->skel->progs.unw_on_exec, false);

	if (err)
		return err;
	err = profile_bpf__load(p->skel);
	if (err) {
		err = err < 0 ? err : -EINVAL;
		log_msg(unwind ? FS_LOG_INFO : FS_LOG_ERROR, "loading the BPF program: %s",
			strerror(-err));
		if (!unwind && !diagnose())
			log_msg(FS_LOG_ERROR, "privileges, BTF and kernel version look fine; the "
					      "verifier's log above says why");
		return err;
	}
	if (unwind) {
		fd = bpf_program__fd(p->skel->progs.unw_walk);
		err = bpf_map__update_elem(p->skel->maps.unw_progs, &zero, sizeof(zero), &fd,
					   sizeof(fd), BPF_ANY);
		if (err) {
			log_msg(FS_LOG_WARN, "installing the unwinder's tail call: %s",
				strerror(-err));
			return err;
		}
	}
	p->unwind = unwind;
	return 0;
}

int bpfprof_open(const struct bpfprof_opts *o, bpfprof_record_fn fn, void *ctx,
		 struct bpfprof **out)
{
	unsigned int freq = o->frequency ? o->frequency : 19;
	struct bpfprof *p;
	__u32 zero = 0;
	int err;

	libbpf_set_print(libbpf_log);
	p = calloc(1, sizeof(*p));
	if (!p)
		return -ENOMEM;
	p->nposs = libbpf_num_possible_cpus();
	if (p->nposs <= 0) {
		err = p->nposs ? p->nposs : -ENODEV;
		goto out;
	}
	p->rb_size = ring_size();
	err = load(p, o, o->unwind_rows > 0);
	if (err && o->unwind_rows > 0) {
		log_msg(FS_LOG_WARN,
			"the table unwinder did not load (it needs Linux 5.17+ for "
			"bpf_find_vma and bpf_loop): user stacks through frame pointers only");
		err = load(p, o, false);
	}
	if (err)
		goto out;
	if (o->cgroup_fd > 0) {
		__u32 fdv = (__u32)o->cgroup_fd;

		err = bpf_map__update_elem(p->skel->maps.cgroup_filter, &zero, sizeof(zero), &fdv,
					   sizeof(fdv), BPF_ANY);
		if (err) {
			log_msg(FS_LOG_ERROR,
				"setting the cgroup filter: %s (not a cgroup v2 "
				"directory?)",
				strerror(-err));
			goto out;
		}
	}
	p->fn = fn;
	p->ctx = ctx;
	p->rb = ring_buffer__new(bpf_map__fd(p->skel->maps.events), on_record, p, NULL);
	if (!p->rb) {
		err = -errno;
		log_msg(FS_LOG_ERROR, "mapping the ring buffer: %s", strerror(-err));
		goto out;
	}
	if (!o->no_notices) {
		p->skel->links.on_exec = bpf_program__attach(p->skel->progs.on_exec);
		p->skel->links.on_exit = bpf_program__attach(p->skel->progs.on_exit);
		if (!p->skel->links.on_exec || !p->skel->links.on_exit)
			log_msg(FS_LOG_WARN,
				"exec/exit tracepoints not attached: maps of processes "
				"that exec are re-read on misses only");
	}
	if (p->unwind) {
		/* without it the executable's mapping is learned from a sample: later, not
		 * wrong */
		p->skel->links.unw_on_exec = bpf_program__attach(p->skel->progs.unw_on_exec);
		if (!p->skel->links.unw_on_exec)
			log_msg(FS_LOG_WARN, "the unwinder's exec tracepoint is not attached");
	}
	err = attach_cpus(p, freq);
	if (err)
		goto out;
	*out = p;
	return 0;
out:
	bpfprof_close(p);
	return err;
}

void bpfprof_close(struct bpfprof *p)
{
	if (!p)
		return;
	for (int i = 0; i < p->nlinks; i++)
		bpf_link__destroy(p->links[i]);
	free(p->links);
	ring_buffer__free(p->rb);
	profile_bpf__destroy(p->skel);
	free(p);
}

int bpfprof_poll(struct bpfprof *p, int timeout_ms)
{
	int n, m;

	n = ring_buffer__poll(p->rb, timeout_ms);
	if (n == -EINTR)
		n = 0;
	if (n < 0)
		return n;
	/* records written with BPF_RB_NO_WAKEUP did not wake the poll: take them too */
	m = ring_buffer__consume(p->rb);
	if (m < 0)
		return m == -EINTR ? n : m;
	return n + m;
}

int bpfprof_counters(struct bpfprof *p, uint64_t out[PROF_CNT_MAX])
{
	struct prof_counters *v;
	__u32 zero = 0;
	int err;

	v = calloc((size_t)p->nposs, sizeof(*v));
	if (!v)
		return -ENOMEM;
	err = bpf_map__lookup_elem(p->skel->maps.counters, &zero, sizeof(zero), v,
				   (size_t)p->nposs * sizeof(*v), 0);
	if (!err) {
		memset(out, 0, PROF_CNT_MAX * sizeof(*out));
		for (int c = 0; c < p->nposs; c++)
			for (int i = 0; i < PROF_CNT_MAX; i++)
				out[i] += v[c].v[i];
	}
	free(v);
	return err;
}

int bpfprof_ncpus(const struct bpfprof *p)
{
	return p->ncpus;
}

size_t bpfprof_ring_size(const struct bpfprof *p)
{
	return p->rb_size;
}

int bpfprof_unwind_maps(const struct bpfprof *p, int *rows_fd, int *files_fd)
{
	if (!p->unwind)
		return -ENOTSUP;
	*rows_fd = bpf_map__fd(p->skel->maps.unw_rows);
	*files_fd = bpf_map__fd(p->skel->maps.unw_files);
	return 0;
}
