/*
 * agg - one pprof builder per interval plus two per-interval keyed tables of pprof mapping ids
 * (build ID -> id; raw mapping "start-end-offset-path-buildid" -> id). The caches that outlive
 * an interval (process mappings, kernel symbols, cgroup names) are owned here too.
 */
#include "agent/agg.h"

#include <linux/bpf.h>

#include "agent/cgnames.h"
#include "agent/ksyms.h"
#include "bpf/profile.h"
#include "agent/perfmap.h"
#include "agent/smap.h"
#include "agent/vdso.h"

#include "lib/buildid.h"
#include "lib/err.h"
#include "lib/log.h"
#include "lib/pprof_builder.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define AGG_MAX_MAPPINGS 65536
#define AGG_MAX_GZIP	 ((size_t)64 << 20)

struct agg {
	struct agg_opts o;
	int64_t period;
	struct pprofb *b;
	struct smap *bid_maps, *raw_maps;
	uint64_t kernel_map, unknown_map;
	uint64_t nsamples; /* in the current profile */
	struct procmaps *pm;
	struct ksyms *ks;
	struct vdso *vdso; /* names for vDSO frames; NULL: they stay raw */
	uint64_t vdso_map;
	struct perfmaps *jit; /* names for JIT code from /tmp/perf-PID.map */
	uint64_t jit_map;
	struct cgnames *cg;
	struct agg_stats st;
};

static uint64_t mono_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000 + (uint64_t)ts.tv_nsec;
}

static const char *const comments[] = {
    "fleetsym-agent: on-CPU samples, perf software cpu-clock in frequency mode; each sample's "
    "value is the period (1e9/frequency ns).",
    "Addresses: a mapping with memory_start = 0 and file_offset = 0 holds frames that the "
    "kernel resolved to (build ID, file offset) at sample time: the location address is the "
    "offset in the file. Other mappings hold process virtual addresses: file offset = address "
    "- memory_start + file_offset.",
    "Return addresses: every frame but the innermost of the user stack and of the kernel stack "
    "is a return address minus 1, i.e. it points inside the call instruction. The innermost "
    "user frame under kernel frames is the user PC at kernel entry, unchanged.",
    "Kernel frames: mapping [kernel.kallsyms], functions named from /proc/kallsyms (module "
    "functions have the module as file name, e.g. [ext4]). Mapping [unknown]: raw addresses "
    "that no mapping of the (possibly exited) process covered.",
};

static int start_profile(struct agg *a)
{
	struct pprofb_opts bo = {.max_bytes = a->o.max_bytes};
	int err;

	pprofb_free(a->b);
	a->b = NULL;
	smap_clear(a->bid_maps);
	smap_clear(a->raw_maps);
	a->kernel_map = a->unknown_map = a->vdso_map = a->jit_map = 0;
	a->nsamples = 0;
	err = pprofb_new(&bo, &a->b) ?: pprofb_add_sample_type(a->b, "cpu", "nanoseconds") ?:
	      pprofb_set_period(a->b, "cpu", "nanoseconds", a->period);
	for (size_t i = 0; !err && i < sizeof(comments) / sizeof(comments[0]); i++)
		err = pprofb_add_comment(a->b, comments[i]);
	return err;
}

int agg_new(const struct agg_opts *o, struct agg **out)
{
	struct agg *a = calloc(1, sizeof(*a));
	int err;

	if (!a)
		return -ENOMEM;
	a->o = *o;
	if (!a->o.frequency)
		a->o.frequency = 19;
	if (!a->o.max_bytes)
		a->o.max_bytes = AGG_DEFAULT_MAX_BYTES;
	a->period = 1000000000LL / a->o.frequency;
	err = smap_new(AGG_MAX_MAPPINGS, &a->bid_maps) ?: smap_new(AGG_MAX_MAPPINGS, &a->raw_maps) ?:
	      procmaps_new(0, &a->pm) ?: cgnames_new(&a->cg) ?: perfmaps_new(&a->jit) ?:
	      start_profile(a);
	if (err)
		goto out;
	if (!a->o.no_kernel) {
		int kerr = ksyms_load(&a->ks);

		if (kerr == -EPERM)
			log_msg(FS_LOG_WARN,
				"/proc/kallsyms shows no addresses (kernel.kptr_restrict; "
				"CAP_SYSLOG is missing): kernel frames stay unnamed");
		else if (kerr)
			log_msg(FS_LOG_WARN,
				"reading /proc/kallsyms: %s: kernel frames stay unnamed",
				err_str(kerr));
		a->st.ksyms = a->ks ? ksyms_count(a->ks) : 0;
	}
	if (vdso_open(&a->vdso) != 0)
		log_msg(FS_LOG_INFO, "no vDSO symbols: vDSO frames stay unnamed");
	*out = a;
	return 0;
out:
	agg_free(a);
	return err;
}

void agg_free(struct agg *a)
{
	if (!a)
		return;
	pprofb_free(a->b);
	smap_free(a->bid_maps);
	smap_free(a->raw_maps);
	procmaps_free(a->pm);
	ksyms_free(a->ks);
	vdso_free(a->vdso);
	perfmaps_free(a->jit);
	cgnames_free(a->cg);
	free(a);
}

/* The kernel hands build IDs zero-padded to 20 bytes; the real length is not passed. SHA-1
 * IDs (GNU ld's default) are 20 bytes; trailing zeros mean a shorter one: 16 bytes (md5,
 * uuid) or 8 (lld's fast). A SHA-1 ending in four zero bytes (p = 2^-32) would be misread. */
static void kernel_bid_hex(const unsigned char id[20], char hex[BUILDID_HEX_MAX])
{
	size_t n = 20;

	if (!memcmp(id + 16, "\0\0\0\0", 4))
		n = memcmp(id + 8, "\0\0\0\0\0\0\0\0", 8) ? 16 : 8;
	for (size_t i = 0; i < n; i++)
		snprintf(hex + 2 * i, 3, "%02x", id[i]);
}

static int mapping_for_bid(struct agg *a, const char *hex, uint32_t pid, uint64_t now_ns,
			   uint64_t *id)
{
	const struct smap_ent *e = smap_get(a->bid_maps, hex);
	struct pprofb_mapping m = {.build_id = hex};
	int err;

	if (e) {
		*id = e->num;
		return 0;
	}
	m.filename = procmaps_path_of(a->pm, hex);
	if (!m.filename) {
		procmaps_learn(a->pm, pid, now_ns);
		m.filename = procmaps_path_of(a->pm, hex);
	}
	err = pprofb_add_mapping(a->b, &m, id);
	return err ?: smap_put(a->bid_maps, hex, *id, NULL);
}

static int mapping_for_raw(struct agg *a, const struct pm_mapping *pmm, uint64_t *id)
{
	struct pprofb_mapping m = {
	    .memory_start = pmm->start,
	    .memory_limit = pmm->end,
	    .file_offset = pmm->offset,
	    .filename = pmm->path,
	    .build_id = pmm->build_id,
	};
	const struct smap_ent *e;
	char key[4200];
	int err;

	snprintf(key, sizeof(key), "%" PRIx64 "-%" PRIx64 "-%" PRIx64 "-%s-%s", pmm->start,
		 pmm->end, pmm->offset, pmm->build_id, pmm->path);
	e = smap_get(a->raw_maps, key);
	if (e) {
		*id = e->num;
		return 0;
	}
	err = pprofb_add_mapping(a->b, &m, id);
	return err ?: smap_put(a->raw_maps, key, *id, NULL);
}

static int unknown_mapping(struct agg *a, uint64_t *id)
{
	struct pprofb_mapping m = {.memory_limit = UINT64_MAX, .filename = "[unknown]"};
	int err = 0;

	if (!a->unknown_map)
		err = pprofb_add_mapping(a->b, &m, &a->unknown_map);
	*id = a->unknown_map;
	return err;
}

/* A frame the agent names itself (kernel, vDSO, JIT) in the mapping *MAP (made on first use,
 * called MAPPING): NAME from FILE, or without a name when NAME is NULL. */
static int named_location(struct agg *a, uint64_t *map, const char *mapping, const char *name,
			  const char *file, uint64_t addr, uint64_t *loc)
{
	struct pprofb_mapping m = {
	    .memory_limit = UINT64_MAX, .filename = mapping, .has_functions = true};
	struct pprofb_line line = {0};
	int err;

	if (!*map) {
		err = pprofb_add_mapping(a->b, &m, map);
		if (err)
			return err;
	}
	if (!name)
		return pprofb_location(a->b, *map, addr, NULL, 0, loc);
	err = pprofb_function(a->b, name, name, file, 0, &line.function_id);
	return err ?: pprofb_location(a->b, *map, addr, &line, 1, loc);
}

static int kernel_location(struct agg *a, uint64_t addr, uint64_t *loc)
{
	const char *name = NULL, *mod = "";
	char modfile[160];

	a->st.frames_kernel++;
	if (a->ks)
		name = ksyms_lookup(a->ks, addr, &mod);
	if (!name)
		a->st.frames_kernel_unnamed++;
	snprintf(modfile, sizeof(modfile), mod[0] ? "[%s]" : "%s", mod);
	return named_location(a, &a->kernel_map, "[kernel.kallsyms]", name, modfile, addr, loc);
}

/* A frame in the vDSO (the same image in every process: the agent reads its own, vdso.h) or
 * in anonymous executable memory that a JIT named in its perf map (perfmap.h). 0 and *LOC,
 * or -ENOENT when it stays raw. */
static int agent_named(struct agg *a, const struct pm_mapping *pmm, uint32_t pid, uint64_t ip,
		       uint64_t addr, uint64_t now_ns, uint64_t *loc)
{
	const char *name;

	if (a->vdso && !strcmp(pmm->path, "[vdso]")) {
		name = vdso_lookup(a->vdso, addr - pmm->start + pmm->offset);
		if (!name)
			return -ENOENT;
		a->st.frames_vdso++;
		return named_location(a, &a->vdso_map, "[vdso]", name, "[vdso]", addr, loc);
	}
	if (pmm->special && !strncmp(pmm->path, "[anon", 5)) {
		name = perfmaps_lookup(a->jit, pid, ip, now_ns);
		if (!name)
			return -ENOENT;
		a->st.frames_jit++;
		return named_location(a, &a->jit_map, "[jit]", name, "[jit]", addr, loc);
	}
	return -ENOENT;
}

static int user_location(struct agg *a, const struct bpf_stack_build_id *f, bool leaf, uint32_t pid,
			 uint64_t now_ns, uint64_t *loc)
{
	const struct pm_mapping *pmm;
	char hex[BUILDID_HEX_MAX];
	uint64_t mid, addr;
	int err;

	if (f->status == BPF_STACK_BUILD_ID_VALID) {
		addr = f->offset - !leaf;
		kernel_bid_hex(f->build_id, hex);
		err = mapping_for_bid(a, hex, pid, now_ns, &mid)
			  ?: pprofb_extend_mapping(a->b, mid, (addr | 0xfff) + 1);
		a->st.frames_buildid++;
	} else {
		addr = f->ip - !leaf;
		if (procmaps_lookup(a->pm, pid, f->ip, now_ns, &pmm) == 0) {
			err = agent_named(a, pmm, pid, f->ip, addr, now_ns, loc);
			if (err != -ENOENT)
				return err;
			err = mapping_for_raw(a, pmm, &mid);
			a->st.frames_mapped++;
		} else {
			err = unknown_mapping(a, &mid);
			a->st.frames_unresolved++;
		}
	}
	return err ?: pprofb_location(a->b, mid, addr, NULL, 0, loc);
}

static int add_sample(struct agg *a, const struct prof_hdr *h, const unsigned char *data,
		      uint64_t now_ns)
{
	uint64_t locs[PROF_MAX_DEPTH + PROF_MAX_UDEPTH];
	const uint64_t *kips = (const uint64_t *)data;
	const struct bpf_stack_build_id *uf =
	    (const struct bpf_stack_build_id *)(data + h->kern_len * PROF_KFRAME_SIZE);
	struct pprofb_label lab[4];
	char comm[PROF_COMM_LEN + 1];
	const char *cgroup;
	size_t n = 0, nl = 0;
	int err = 0;

	for (size_t i = 0; !err && i < h->kern_len; i++)
		err = kernel_location(a, kips[i] - (i > 0), &locs[n++]);
	for (size_t i = 0, u = 0; !err && i < h->user_len; i++) {
		if (uf[i].status == BPF_STACK_BUILD_ID_EMPTY)
			continue;
		err = user_location(a, &uf[i], u++ == 0, h->pid, now_ns, &locs[n++]);
	}
	if (err)
		return err;
	if (!n) {
		a->st.empty++;
		return 0;
	}
	memcpy(comm, h->comm, PROF_COMM_LEN);
	comm[PROF_COMM_LEN] = 0;
	for (char *c = comm; *c; c++)
		if ((unsigned char)*c < 0x20 || *c == 0x7f)
			*c = '?';
	lab[nl++] = (struct pprofb_label){.key = "pid", .num = h->pid};
	lab[nl++] = (struct pprofb_label){.key = "tid", .num = h->tid};
	lab[nl++] = (struct pprofb_label){.key = "comm", .str = comm};
	cgroup = cgnames_name(a->cg, h->cgroup_id, h->pid, now_ns);
	if (cgroup)
		lab[nl++] = (struct pprofb_label){.key = "cgroup", .str = cgroup};
	err = pprofb_add_sample(a->b, locs, n, &a->period, lab, nl);
	if (!err) {
		a->st.samples++;
		a->nsamples++;
	}
	return err;
}

int agg_record(struct agg *a, const void *data, size_t size, uint64_t now_ns)
{
	const struct prof_hdr *h = data;
	int err;

	a->st.records++;
	if (size < sizeof(*h)) {
		a->st.bad_records++;
		return 0;
	}
	switch (h->type) {
	case PROF_REC_SAMPLE:
		if (h->kern_len > PROF_MAX_DEPTH || h->user_len > PROF_MAX_UDEPTH ||
		    size < sizeof(*h) + (size_t)h->kern_len * PROF_KFRAME_SIZE +
			       (size_t)h->user_len * PROF_UFRAME_SIZE) {
			a->st.bad_records++;
			return 0;
		}
		err = a->b ? 0 : start_profile(a); /* after a failed reset */
		if (!err)
			err = add_sample(a, h, (const unsigned char *)data + sizeof(*h), now_ns);
		if (err == -E2BIG || err == -ENOMEM) {
			a->st.profile_full++;
		} else if (err) {
			log_msg(FS_LOG_WARN, "sample of pid %u: %s", h->pid, err_str(err));
			a->st.bad_records++;
		}
		return 0;
	case PROF_REC_EXEC:
		procmaps_exec(a->pm, h->pid);
		perfmaps_forget(a->jit, h->pid);
		return 0;
	case PROF_REC_EXIT:
		procmaps_exit(a->pm, h->pid, now_ns);
		perfmaps_forget(a->jit, h->pid);
		return 0;
	default: a->st.bad_records++; return 0;
	}
}

int agg_flush(struct agg *a, int64_t start_ns, int64_t end_ns, bool reset, uint8_t **out,
	      size_t *len)
{
	uint8_t *raw = NULL;
	size_t rawlen = 0;
	int err;

	if (!a->b) {
		err = start_profile(a);
		if (err)
			return err;
	}
	pprofb_set_time(a->b, start_ns, end_ns - start_ns);
	err = pprofb_encode(a->b, &raw, &rawlen);
	if (!err)
		err = pprofb_gzip(raw, rawlen, AGG_MAX_GZIP, out, len);
	free(raw);
	if (reset) {
		int serr = start_profile(a);

		err = err ?: serr;
	}
	procmaps_expire(a->pm, mono_ns());
	if (a->ks && ksyms_refresh(&a->ks) == 1) {
		a->st.ksyms_reloads++;
		a->st.ksyms = ksyms_count(a->ks);
	}
	return err;
}

size_t agg_pending(const struct agg *a, uint64_t *nsamples)
{
	*nsamples = a->nsamples;
	return a->b ? pprofb_sample_count(a->b) : 0;
}

void agg_get_stats(const struct agg *a, struct agg_stats *st, struct procmaps_stats *pst)
{
	struct perfmaps_stats js;

	*st = a->st;
	perfmaps_get_stats(a->jit, &js);
	st->jit_map_reads = js.reads;
	st->jit_map_refused = js.refused;
	if (pst)
		procmaps_get_stats(a->pm, pst);
}
