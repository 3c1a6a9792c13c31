/*
 * opensyms - a small hash-free table (a doubly linked LRU list: at most max_entries, 64 by
 * default, and each request does one walk) of refcounted entries, a queue of entries waiting
 * for a worker, builder threads, and a list of bad build IDs (kept apart from the table, so
 * eviction does not forget them).
 *
 * Locks: c->lock guards everything but f->idx, which is written once under c->lock (with the
 * maps before it) and read without a lock (acquire/release). Waiters sleep on c->built.
 */
#include "symbolizer/engine/opensyms.h"

#include "symbolizer/engine/workerproc.h"

#include "lib/buildid.h"
#include "lib/clock.h"
#include "lib/err.h"
#include "lib/fsutil.h"
#include "lib/log.h"

#include <dirent.h>
#include <errno.h>
#include <inttypes.h>
#include <libgen.h>
#include <limits.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#define DEFAULT_MAX_ENTRIES 64
#define DEFAULT_BUILDERS    2
#define MAX_BUILDERS	    16
#define MAX_FRAMES	    64
#define MAX_BAD		    4096 /* bad marks kept; the oldest goes first */
#define DEFAULT_TIMEOUT_MS  300000
#define DEFAULT_WAIT_MS	    2000
#define DEFAULT_MEMORY	    (4ULL << 30)
#define DEFAULT_FSIZE	    (2ULL << 30)
#define WORKER_FILES	    64

const double opensyms_build_bounds[OPENSYMS_BUILD_BUCKETS - 1] = {0.01, 0.05, 0.1, 0.5, 1,  2.5,
								  5,	10,   30,  60,	120};

static const char *const building_reason =
    "the symbol index of this build ID is being built; retry shortly";

enum build_state { BUILD_QUEUED, BUILD_RUNNING, BUILD_DONE, BUILD_FAILED };

struct opensyms_file {
	struct opensyms_file *prev, *next; /* table (LRU order, most recent first) */
	struct opensyms_file *qnext;	   /* build queue */
	unsigned refs;
	int in_table;
	int dead;      /* dropped: its index must not be published */
	int published; /* its index was renamed into the index dir by us */
	enum build_state build;
	const char *reason; /* static; why BUILD_FAILED */
	int is_bad;	    /* failed because of the file: marked bad */

	/* which store entry this is */
	char build_id[BUILDID_HEX_MAX];
	char path[sizeof(((struct dstore_entry *)0)->path)];
	uint64_t size;
	time_t added;
	unsigned quality;

	struct symindex *idx; /* set once, with the maps, when BUILD_DONE */
	struct loadmap lm, rlm;
	enum loadrebuild_how how;
	char build_dir[4096]; /* the private dir the worker writes in */
};

/* A build ID whose file made the worker fail, and which file that was. */
struct bad {
	char build_id[BUILDID_HEX_MAX];
	char path[sizeof(((struct dstore_entry *)0)->path)];
	uint64_t size;
	time_t added;
	const char *reason; /* static */
};

struct opensyms {
	struct opensyms_opts opts;
	char worker[PATH_MAX];
	pthread_mutex_t lock;
	pthread_cond_t work, built;
	struct opensyms_file *head, *tail;
	size_t count;
	struct opensyms_file *qhead, *qtail;
	struct bad *bad;
	size_t nbad, bad_next;
	int stop;
	int warned; /* the worker said it has no Landlock */
	pthread_t builders[MAX_BUILDERS];
	int nbuilders;
	struct opensyms_stats st;
};

static void file_free(struct opensyms_file *f)
{
	if (!f)
		return;
	symindex_close(f->idx);
	free(f);
}

/* Drop one reference; returns F when it was the last (free it after unlocking). */
static struct opensyms_file *unref_locked(struct opensyms_file *f)
{
	return --f->refs == 0 ? f : NULL;
}

static void unlink_table(struct opensyms *c, struct opensyms_file *f)
{
	if (f->prev)
		f->prev->next = f->next;
	else
		c->head = f->next;
	if (f->next)
		f->next->prev = f->prev;
	else
		c->tail = f->prev;
	f->prev = f->next = NULL;
	f->in_table = 0;
	c->count--;
}

static void push_front(struct opensyms *c, struct opensyms_file *f)
{
	f->prev = NULL;
	f->next = c->head;
	if (c->head)
		c->head->prev = f;
	c->head = f;
	if (!c->tail)
		c->tail = f;
	f->in_table = 1;
	c->count++;
}

static int index_path(const struct opensyms *c, const char *bid, char *buf, size_t len)
{
	int n = snprintf(buf, len, "%s/%s.symidx", c->opts.index_dir, bid);

	return n < 0 || (size_t)n >= len ? -ENAMETOOLONG : 0;
}

/* Remove F from the table for good: no index of it may be published any more, and one it
 * published is removed (it describes a file the store no longer has). */
static struct opensyms_file *drop_locked(struct opensyms *c, struct opensyms_file *f)
{
	char path[4096];

	f->dead = 1;
	if (f->published && index_path(c, f->build_id, path, sizeof(path)) == 0)
		unlink(path);
	f->published = 0;
	if (f->in_table)
		unlink_table(c, f);
	return unref_locked(f);
}

static int same_entry(const struct opensyms_file *f, const struct dstore_entry *e)
{
	return f->size == e->size && f->added == e->added && f->quality == e->quality &&
	       strcmp(f->path, e->path) == 0;
}

static struct opensyms_file *find_locked(struct opensyms *c, const char *bid)
{
	for (struct opensyms_file *f = c->head; f; f = f->next)
		if (strcmp(f->build_id, bid) == 0)
			return f;
	return NULL;
}

/* Close least recently used entries nobody holds until the table fits; returns a list (via
 * qnext) of entries to free after unlocking. */
static struct opensyms_file *evict_locked(struct opensyms *c)
{
	struct opensyms_file *f = c->tail, *freed = NULL;
	size_t max = c->opts.max_entries ? c->opts.max_entries : DEFAULT_MAX_ENTRIES;

	while (f && c->count > max) {
		struct opensyms_file *prev = f->prev;

		if (f->refs == 1) {
			unlink_table(c, f);
			c->st.evictions++;
			if (unref_locked(f)) {
				f->qnext = freed;
				freed = f;
			}
		}
		f = prev;
	}
	return freed;
}

static void free_list(struct opensyms_file *f)
{
	while (f) {
		struct opensyms_file *next = f->qnext;

		file_free(f);
		f = next;
	}
}

/* ---- bad marks ---- */

static struct bad *find_bad_locked(struct opensyms *c, const char *bid)
{
	for (size_t i = 0; i < c->nbad; i++)
		if (strcmp(c->bad[i].build_id, bid) == 0)
			return &c->bad[i];
	return NULL;
}

static void forget_bad_locked(struct opensyms *c, const char *bid)
{
	struct bad *b = find_bad_locked(c, bid);

	if (b)
		b->build_id[0] = '\0';
}

static void mark_bad_locked(struct opensyms *c, const struct opensyms_file *f)
{
	struct bad *b = find_bad_locked(c, f->build_id);

	if (!b && c->nbad < MAX_BAD)
		b = &c->bad[c->nbad++];
	if (!b) {
		b = &c->bad[c->bad_next];
		c->bad_next = (c->bad_next + 1) % MAX_BAD;
	}
	snprintf(b->build_id, sizeof(b->build_id), "%s", f->build_id);
	snprintf(b->path, sizeof(b->path), "%s", f->path);
	b->size = f->size;
	b->added = f->added;
	b->reason = f->reason;
}

/* The bad mark of E's build ID, when it is for E's file; a mark for another file is dropped
 * (the store's file changed: it gets its chance). */
static const char *bad_reason_locked(struct opensyms *c, const struct dstore_entry *e)
{
	struct bad *b = find_bad_locked(c, e->build_id);

	if (!b)
		return NULL;
	if (b->size == e->size && b->added == e->added && strcmp(b->path, e->path) == 0)
		return b->reason;
	b->build_id[0] = '\0';
	return NULL;
}

int opensyms_bad(struct opensyms *c, const char *build_id, const char **reason)
{
	struct bad *b;

	pthread_mutex_lock(&c->lock);
	b = find_bad_locked(c, build_id);
	if (b)
		*reason = b->reason;
	pthread_mutex_unlock(&c->lock);
	return b != NULL;
}

/* ---- getting an entry ---- */

/* An entry for the store's entry E, referenced by the table, the build queue and the caller. */
static struct opensyms_file *file_new(const struct dstore_entry *e)
{
	struct opensyms_file *f = calloc(1, sizeof(*f));

	if (!f)
		return NULL;
	snprintf(f->build_id, sizeof(f->build_id), "%s", e->build_id);
	snprintf(f->path, sizeof(f->path), "%s", e->path);
	f->size = e->size;
	f->added = e->added;
	f->quality = e->quality;
	f->build = BUILD_QUEUED;
	f->refs = 3;
	return f;
}

static void enqueue_locked(struct opensyms *c, struct opensyms_file *f)
{
	f->qnext = NULL;
	if (c->qtail)
		c->qtail->qnext = f;
	else
		c->qhead = f;
	c->qtail = f;
	pthread_cond_signal(&c->work);
}

static void deadline_in(struct timespec *ts, int ms)
{
	clock_gettime(CLOCK_REALTIME, ts);
	ts->tv_sec += ms / 1000;
	ts->tv_nsec += (long)(ms % 1000) * 1000000L;
	if (ts->tv_nsec >= 1000000000L) {
		ts->tv_sec++;
		ts->tv_nsec -= 1000000000L;
	}
}

/* Under c->lock, F referenced for the caller: wait for its build (at most the wait), then
 * hand F over, or drop the reference and say why not. */
static int wait_built_locked(struct opensyms *c, struct opensyms_file *f, int ms,
			     struct opensyms_file **out, const char **reason,
			     struct opensyms_file **last)
{
	struct timespec ts;

	deadline_in(&ts, ms);
	while ((f->build == BUILD_QUEUED || f->build == BUILD_RUNNING) && ms > 0)
		if (pthread_cond_timedwait(&c->built, &c->lock, &ts) != 0)
			break;
	if (f->build == BUILD_DONE) {
		*out = f;
		return 0;
	}
	*last = unref_locked(f);
	if (f->build == BUILD_FAILED) {
		*reason = f->reason;
		return f->is_bad ? -ERR_BADDEBUG : -EIO;
	}
	*reason = building_reason;
	return -EAGAIN;
}

static int get(struct opensyms *c, const struct dstore_entry *e, int wait_ms,
	       struct opensyms_file **out, const char **reason)
{
	struct opensyms_file *f, *stale = NULL, *last = NULL, *evicted = NULL;
	const char *why;
	int err;

	*out = NULL;
	*reason = NULL;
	if (!buildid_valid(e->build_id))
		return -ERR_BADBUILDID;
	pthread_mutex_lock(&c->lock);
	why = bad_reason_locked(c, e);
	if (why) {
		pthread_mutex_unlock(&c->lock);
		*reason = why;
		return -ERR_BADDEBUG;
	}
	f = find_locked(c, e->build_id);
	if (f && !same_entry(f, e)) {
		/* the store's file changed (a better upload): a new entry replaces this one */
		stale = drop_locked(c, f);
		f = NULL;
	}
	if (f) {
		f->refs++;
		unlink_table(c, f);
		push_front(c, f);
		c->st.hits++;
	} else {
		f = file_new(e);
		if (!f) {
			pthread_mutex_unlock(&c->lock);
			file_free(stale);
			return -ENOMEM;
		}
		push_front(c, f);
		enqueue_locked(c, f);
		c->st.misses++;
		evicted = evict_locked(c);
	}
	err = wait_built_locked(c, f, wait_ms, out, reason, &last);
	pthread_mutex_unlock(&c->lock);
	file_free(stale);
	file_free(last);
	free_list(evicted);
	return err;
}

int opensyms_get(struct opensyms *c, const struct dstore_entry *e, struct opensyms_file **out,
		 const char **reason)
{
	int ms = c->opts.wait_ms > 0 ? c->opts.wait_ms : c->opts.wait_ms < 0 ? 0 : DEFAULT_WAIT_MS;

	return get(c, e, ms, out, reason);
}

void opensyms_prefetch(struct opensyms *c, const struct dstore_entry *e)
{
	struct opensyms_file *f = NULL;
	const char *reason;

	if (get(c, e, 0, &f, &reason) == 0)
		opensyms_put(c, f);
}

void opensyms_put(struct opensyms *c, struct opensyms_file *f)
{
	struct opensyms_file *last;

	if (!f)
		return;
	pthread_mutex_lock(&c->lock);
	last = unref_locked(f);
	pthread_mutex_unlock(&c->lock);
	file_free(last);
}

void opensyms_drop(struct opensyms *c, const char *build_id)
{
	struct opensyms_file *f, *last = NULL;

	pthread_mutex_lock(&c->lock);
	forget_bad_locked(c, build_id);
	f = find_locked(c, build_id);
	if (f)
		last = drop_locked(c, f);
	pthread_mutex_unlock(&c->lock);
	file_free(last);
}

int opensyms_lookup_batch(struct opensyms *c, struct opensyms_file *f, const uint64_t *addrs,
			  size_t n, opensyms_emit_fn emit, void *ctx)
{
	struct symindex *idx = __atomic_load_n(&f->idx, __ATOMIC_ACQUIRE);
	struct sym_frame frames[MAX_FRAMES];

	(void)c;
	if (!idx)
		return -EINVAL; /* opensyms_get() hands out built entries only */
	for (size_t i = 0; i < n; i++) {
		int k = symindex_lookup(idx, addrs[i], frames, MAX_FRAMES);
		int rc = emit(ctx, i, addrs[i], frames, k);

		if (rc)
			return rc;
	}
	return 0;
}

const struct loadmap *opensyms_file_loadmap(const struct opensyms_file *f)
{
	return &f->lm;
}

const struct loadmap *opensyms_file_rebuilt(const struct opensyms_file *f,
					    enum loadrebuild_how *how)
{
	*how = f->how;
	return &f->rlm;
}

/* ---- building: one worker run per build ID (two for a dwz file) ---- */

/* Why a worker that did not answer "ok" failed, as a static string. */
static const char *signal_reason(int sig)
{
	switch (sig) {
	case SIGSEGV: return "the DWARF worker crashed (SIGSEGV) reading this file";
	case SIGBUS: return "the DWARF worker crashed (SIGBUS) reading this file";
	case SIGABRT: return "the DWARF worker aborted (SIGABRT) reading this file";
	case SIGILL: return "the DWARF worker crashed (SIGILL) reading this file";
	case SIGFPE: return "the DWARF worker crashed (SIGFPE) reading this file";
	case SIGSYS: return "the DWARF worker was stopped by its seccomp filter (SIGSYS)";
	case SIGXCPU: return "the DWARF worker ran out of CPU time (SIGXCPU) reading this file";
	case SIGXFSZ: return "the DWARF worker's index passed its file size limit (SIGXFSZ)";
	case SIGKILL: return "the DWARF worker was killed (SIGKILL: CPU limit or out of memory)";
	default: return "the DWARF worker was killed by a signal reading this file";
	}
}

static const char *failure_reason(const struct workerproc_result *r, int *code)
{
	const char *e;

	*code = 0;
	if (r->end == WORKERPROC_TIMEOUT)
		return "the DWARF worker ran past its deadline and was killed";
	if (r->end == WORKERPROC_SIGNALED)
		return signal_reason(r->code);
	if (r->code == 3 || strstr(r->err, "Cannot allocate memory") ||
	    strstr(r->err, "out of memory"))
		return "the DWARF worker ran out of memory reading this file";
	e = strstr(r->out, "\nerror ");
	if (r->code == 2 && (e || strncmp(r->out, "error ", 6) == 0)) {
		*code = -atoi((e ? e + 1 : r->out) + 6);
		return err_str(*code);
	}
	return "the DWARF worker failed on this file";
}

/* The line of OUT that starts with KEY (and a space), or NULL. */
static const char *answer_line(const char *out, const char *key)
{
	size_t k = strlen(key);

	for (const char *p = out; p && *p; p = strchr(p, '\n'), p = p ? p + 1 : NULL)
		if (strncmp(p, key, k) == 0 && (p[k] == ' ' || p[k] == '\n' || !p[k]))
			return p + k;
	return NULL;
}

/* Parse " USABLE N (OFF VADDR FILESZ){N}" into M; the worker is checked like any input. */
static int parse_map(const char *p, struct loadmap *m)
{
	char *end;
	unsigned long long v[3];

	memset(m, 0, sizeof(*m));
	if (!p)
		return -ERR_BADINPUT;
	m->usable = (int)strtol(p, &end, 10);
	m->nsegs = (int)strtol(end, &end, 10);
	if ((m->usable != 0 && m->usable != 1) || m->nsegs < 0 || m->nsegs > LOADMAP_MAX_SEGS)
		return -ERR_BADINPUT;
	for (int i = 0; i < m->nsegs; i++) {
		for (int k = 0; k < 3; k++) {
			const char *q = end;

			errno = 0;
			v[k] = strtoull(q, &end, 10);
			if (end == q || errno)
				return -ERR_BADINPUT;
		}
		m->segs[i] = (struct loadmap_seg){v[0], v[1], v[2]};
	}
	return *end == '\n' || !*end ? 0 : -ERR_BADINPUT;
}

static int parse_maps(const char *out, struct opensyms_file *f)
{
	const char *p = answer_line(out, "map rebuilt");
	char *end;
	long how;
	int err;

	err = parse_map(answer_line(out, "map exact"), &f->lm);
	if (err || !p)
		return err ? err : -ERR_BADINPUT;
	how = strtol(p, &end, 10);
	if (how < LOADREBUILD_NONE || how > LOADREBUILD_REBUILT)
		return -ERR_BADINPUT;
	f->how = (enum loadrebuild_how)how;
	return parse_map(end, &f->rlm);
}

struct job {
	struct opensyms *c;
	struct opensyms_file *f;
	int64_t deadline;
	int maps_only;
	char alt[4096];
	int no_alt;
	struct workerproc_result r;
};

/* The sandbox limits of every worker, as its arguments (the strings live here). */
struct limits {
	char mem[32], cpu[32], fsize[32], files[32], parent[16];
};

/* Append C's limits for a worker of SECS CPU seconds that may write FSIZE bytes (0: the
 * default) to ARGV at *N. */
static void add_limits(const struct opensyms *c, uint64_t secs, uint64_t fsize, struct limits *l,
		       const char **argv, int *n)
{
	snprintf(l->mem, sizeof(l->mem), "%" PRIu64,
		 c->opts.worker_memory ? c->opts.worker_memory : (uint64_t)DEFAULT_MEMORY);
	snprintf(l->cpu, sizeof(l->cpu), "%" PRIu64, secs);
	if (!fsize)
		fsize = c->opts.worker_fsize ? c->opts.worker_fsize : (uint64_t)DEFAULT_FSIZE;
	snprintf(l->fsize, sizeof(l->fsize), "%" PRIu64, fsize);
	snprintf(l->files, sizeof(l->files), "%d", WORKER_FILES);
	snprintf(l->parent, sizeof(l->parent), "%d", (int)getpid());
	argv[(*n)++] = "--max-memory";
	argv[(*n)++] = l->mem;
	argv[(*n)++] = "--max-cpu";
	argv[(*n)++] = l->cpu;
	argv[(*n)++] = "--max-fsize";
	argv[(*n)++] = l->fsize;
	argv[(*n)++] = "--max-files";
	argv[(*n)++] = l->files;
	argv[(*n)++] = "--parent"; /* a fleetsymd killed with SIGKILL takes its workers along */
	argv[(*n)++] = l->parent;
}

static int run_worker(struct job *j)
{
	struct opensyms *c = j->c;
	struct limits l;
	const char *argv[24];
	int n = 0;
	int64_t left = j->deadline - clock_mono_ms();

	argv[n++] = c->worker;
	argv[n++] = "--file";
	argv[n++] = j->f->path;
	argv[n++] = "--build-id";
	argv[n++] = j->f->build_id;
	argv[n++] = "--out";
	argv[n++] = j->f->build_dir;
	add_limits(c, (uint64_t)(left > 0 ? left : 0) / 1000 + 1, 0, &l, argv, &n);
	if (j->maps_only)
		argv[n++] = "--maps-only";
	if (j->alt[0]) {
		argv[n++] = "--alt";
		argv[n++] = j->alt;
	} else if (j->no_alt) {
		argv[n++] = "--no-alt";
	}
	argv[n] = NULL;
	if (left <= 0) {
		memset(&j->r, 0, sizeof(j->r));
		j->r.end = WORKERPROC_TIMEOUT;
		return 0;
	}
	return workerproc_run(argv, (int)left, &c->stop, &j->r);
}

/* A dwz file: the worker named the alt file's build ID; find the store's file for it. */
static void find_alt(struct job *j, const char *p)
{
	char bid[BUILDID_HEX_MAX];
	size_t n = strcspn(p, "\n");

	j->no_alt = 1;
	if (!j->c->opts.find_alt || buildid_normalize(p, n, bid) != 0)
		return;
	if (j->c->opts.find_alt(j->c->opts.find_alt_ctx, bid, j->alt, sizeof(j->alt)) != 0)
		j->alt[0] = '\0';
	log_msg(FS_LOG_INFO, "event=dwz_alt build_id=%s alt=%s found=%d", j->f->build_id, bid,
		j->alt[0] != 0);
}

/* Run the worker (twice for a dwz file) and take its answer. 0 with F's maps filled (and
 * F->idx opened from the private dir unless MAPS_ONLY). Else *BAD says whether the file is
 * to blame, and F->reason why. */
static int build_private(struct job *j, int *bad)
{
	struct opensyms_file *f = j->f;
	const char *p;
	char path[4096 + 80];
	int err, code;

	*bad = 0;
	for (int run = 0; run < 2; run++) {
		err = run_worker(j);
		if (err) {
			f->reason = "the DWARF worker could not be started";
			log_msg(FS_LOG_ERROR, "opensyms: %s: %s", j->c->worker, err_str(err));
			return err;
		}
		p = answer_line(j->r.out, "altlink");
		if (run > 0 || j->r.end != WORKERPROC_EXITED || j->r.code != 0 || !p)
			break;
		find_alt(j, p + 1);
	}
	p = answer_line(j->r.out, "sandbox");
	if (p && strstr(p, "landlock=0") &&
	    !__atomic_exchange_n(&j->c->warned, 1, __ATOMIC_RELAXED))
		log_msg(FS_LOG_WARN,
			"opensyms: this kernel has no Landlock: fleetsym-worker runs with "
			"rlimits, seccomp and a deadline, but may open paths a file names");
	if (j->r.end != WORKERPROC_EXITED || j->r.code != 0 || !answer_line(j->r.out, "ok")) {
		f->reason = failure_reason(&j->r, &code);
		/* a full disk under the index is not the file's fault: the next request builds
		 * again, once there is room, instead of a bad mark until a restart */
		*bad = code != -ENOSPC && code != -EDQUOT;
		return code ? code : -ERR_BADDEBUG;
	}
	err = parse_maps(j->r.out, f);
	if (err || j->maps_only) {
		f->reason = "the DWARF worker's answer was malformed";
		*bad = err != 0;
		return err;
	}
	snprintf(path, sizeof(path), "%s/%s.symidx", f->build_dir, f->build_id);
	err = symindex_open(path, f->build_id, &f->idx);
	if (err) {
		*bad = 1;
		f->reason = "the index the DWARF worker wrote failed verification";
	}
	return err;
}

int opensyms_check_elf(void *ctx, const char *path, int decompress, uint64_t max_inflated,
		       struct dstore_elf_facts *out)
{
	struct opensyms *c = ctx;
	struct workerproc_result *r = malloc(sizeof(*r));
	char dmax[32], bid[130];
	int timeout =
	    c->opts.worker_timeout_ms > 0 ? c->opts.worker_timeout_ms : DEFAULT_TIMEOUT_MS;
	const char *argv[24], *p, *why = NULL;
	unsigned long long inflated;
	struct limits l;
	struct stat st;
	int n = 0, code = 0, err;

	memset(out, 0, sizeof(*out));
	if (!r)
		return -ENOMEM;
	memset(r, 0, sizeof(*r));
	argv[n++] = c->worker;
	argv[n++] = "--check-elf";
	argv[n++] = "--file";
	argv[n++] = path;
	if (decompress) {
		snprintf(dmax, sizeof(dmax), "%" PRIu64, max_inflated);
		argv[n++] = "--decompress";
		argv[n++] = dmax;
	}
	/* inflated in place: the file may grow to the inflated sections plus what it had */
	add_limits(c, (uint64_t)timeout / 1000 + 1,
		   decompress && stat(path, &st) == 0
		       ? max_inflated + (uint64_t)st.st_size + (1 << 20)
		       : 0,
		   &l, argv, &n);
	argv[n] = NULL;
	err = workerproc_run(argv, timeout, &c->stop, r);
	if (err) {
		log_msg(FS_LOG_ERROR, "opensyms: %s: %s", c->worker, err_str(err));
		goto out;
	}
	p = answer_line(r->out, "elf");
	if (r->end != WORKERPROC_EXITED || r->code != 0 || !answer_line(r->out, "ok") || !p ||
	    sscanf(p, " %129s %u %d %llu", bid, &out->quality, &out->nzlib, &inflated) != 4 ||
	    buildid_normalize(bid, strlen(bid), out->build_id) != 0) {
		why = failure_reason(r, &code);
		/* a file that needs more memory to read than a worker has (its exit code 3: libelf
		 * or malloc said so under RLIMIT_AS) is too big; one that kills or outlasts the
		 * reader is a file no one can use */
		if (!code && r->end == WORKERPROC_EXITED && r->code == 3)
			code = -ERR_TOOBIG;
		err = code					    ? code
		      : r->end == WORKERPROC_EXITED && r->code == 0 ? -ERR_BADINPUT
								    : -ERR_BADELF;
		goto out;
	}
	out->inflated = inflated;
out:
	log_msg(err && err != -ERR_NOTELF ? FS_LOG_WARN : FS_LOG_INFO,
		"event=elf_check path=%s decompress=%d result=%s%s%s seconds=%.3f "
		"worker_maxrss_kb=%" PRIu64,
		path, decompress, err ? err_str(err) : "ok", why ? " reason=" : "", why ? why : "",
		r->seconds, r->maxrss_kb);
	free(r);
	return err;
}

/* The private dir and whatever a worker left in it (a killed one: a half-written temp). */
static void remove_build_dir(struct opensyms_file *f)
{
	DIR *d;
	struct dirent *de;

	if (!f->build_dir[0])
		return;
	d = opendir(f->build_dir);
	while (d && (de = readdir(d)))
		if (strcmp(de->d_name, ".") && strcmp(de->d_name, ".."))
			unlinkat(dirfd(d), de->d_name, 0);
	if (d)
		closedir(d);
	rmdir(f->build_dir);
	f->build_dir[0] = '\0';
}

static void record_build(struct opensyms *c, int ok, double secs)
{
	size_t b = 0;

	if (!ok) {
		c->st.index_failures++;
		return;
	}
	while (b + 1 < OPENSYMS_BUILD_BUCKETS && secs > opensyms_build_bounds[b])
		b++;
	c->st.index_builds++;
	c->st.build_buckets[b]++;
	c->st.build_usec_sum += (uint64_t)(secs * 1e6);
}

/* Under c->lock: rename the private index into place and switch F to it. */
static int publish_locked(struct opensyms *c, struct opensyms_file *f, int maps_only)
{
	char from[4096 + 80], to[4096];

	if (f->dead)
		return -ESTALE;
	if (!maps_only) {
		if (snprintf(from, sizeof(from), "%s/%s.symidx", f->build_dir, f->build_id) >=
			(int)sizeof(from) ||
		    index_path(c, f->build_id, to, sizeof(to)))
			return -ENAMETOOLONG;
		if (rename(from, to) < 0)
			return -errno;
		if (fsutil_fsync_parent(to) < 0)
			log_msg(FS_LOG_DEBUG, "opensyms: %s: fsync of the index dir failed", to);
	}
	f->published = 1;
	return 0;
}

/* An index published before (by an earlier run of the service) for this build ID: the worker
 * then only reads the maps. A damaged one is removed and rebuilt. */
static int reuse_published(struct opensyms *c, struct opensyms_file *f)
{
	char path[4096];
	int err;

	if (index_path(c, f->build_id, path, sizeof(path)))
		return 0;
	err = symindex_open(path, f->build_id, &f->idx);
	if (err == -ERR_BADINDEX) {
		log_msg(FS_LOG_WARN, "%s: removing damaged index; it will be rebuilt", path);
		unlink(path);
	}
	return err == 0;
}

static int make_build_dir(struct opensyms *c, struct opensyms_file *f)
{
	int n = snprintf(f->build_dir, sizeof(f->build_dir), "%s/symidx-XXXXXX", c->opts.tmp_dir);

	if (n < 0 || (size_t)n >= sizeof(f->build_dir) || !mkdtemp(f->build_dir)) {
		f->build_dir[0] = '\0';
		return n < 0 || (size_t)n >= sizeof(f->build_dir) ? -ENAMETOOLONG : -errno;
	}
	return 0;
}

/* The entry stays BUILD_RUNNING (and referenced) until everything about the build is done,
 * so that a waiter woken by c->built sees a settled entry. */
static void build_one(struct opensyms *c, struct opensyms_file *f)
{
	int timeout =
	    c->opts.worker_timeout_ms > 0 ? c->opts.worker_timeout_ms : DEFAULT_TIMEOUT_MS;
	struct job *j = calloc(1, sizeof(*j));
	struct opensyms_file *last, *gone = NULL;
	char bid[BUILDID_HEX_MAX];
	const char *reason;
	double t0 = clock_mono_s();
	int err, bad = 0;

	if (!j) {
		err = -ENOMEM;
		f->reason = "out of memory starting the DWARF worker";
		goto done;
	}
	*j = (struct job){.c = c, .f = f, .deadline = clock_mono_ms() + timeout};
	j->maps_only = reuse_published(c, f);
	err = make_build_dir(c, f);
	if (err)
		f->reason = "no private dir for the DWARF worker";
	else
		err = build_private(j, &bad);
done:
	pthread_mutex_lock(&c->lock);
	if (!err)
		err = publish_locked(c, f, j->maps_only);
	if (err == -ESTALE || c->stop)
		bad = 0; /* dropped meanwhile, or killed by the shutdown: not the file's fault */
	if (err != -ESTALE)
		record_build(c, !err, clock_mono_s() - t0);
	if (err) {
		symindex_close(f->idx);
		f->idx = NULL;
		f->is_bad = bad;
		if (!f->reason)
			f->reason = err_str(err);
		if (bad)
			mark_bad_locked(c, f);
		if (!f->dead)
			gone =
			    drop_locked(c, f); /* a later request starts over (or meets the mark) */
	} else {
		__atomic_store_n(&f->idx, f->idx, __ATOMIC_RELEASE);
	}
	/* the private dir goes before anyone is told: a few unlinks under the lock */
	remove_build_dir(f);
	f->build = err ? BUILD_FAILED : BUILD_DONE;
	snprintf(bid, sizeof(bid), "%s", f->build_id);
	reason = f->reason;
	/* the queue's reference goes with the news: a waiter sees the entry's final refcount */
	last = unref_locked(f);
	pthread_cond_broadcast(&c->built);
	pthread_mutex_unlock(&c->lock);
	if (err && err != -ESTALE)
		log_msg(FS_LOG_WARN,
			"event=index_bad build_id=%s bad=%d reason=\"%s\" seconds=%.3f "
			"worker_maxrss_kb=%" PRIu64,
			bid, bad, reason, clock_mono_s() - t0, j ? j->r.maxrss_kb : 0);
	else if (!err)
		log_msg(FS_LOG_INFO,
			"event=index_built build_id=%s seconds=%.3f reused=%d "
			"worker_maxrss_kb=%" PRIu64,
			bid, clock_mono_s() - t0, j->maps_only, j->r.maxrss_kb);
	free(j);
	file_free(gone);
	file_free(last);
}

static void *builder_main(void *arg)
{
	struct opensyms *c = arg;

	for (;;) {
		struct opensyms_file *f;

		pthread_mutex_lock(&c->lock);
		while (!c->stop && !c->qhead)
			pthread_cond_wait(&c->work, &c->lock);
		if (c->stop) {
			pthread_mutex_unlock(&c->lock);
			return NULL;
		}
		f = c->qhead;
		c->qhead = f->qnext;
		if (!c->qhead)
			c->qtail = NULL;
		f->qnext = NULL;
		f->build = BUILD_RUNNING;
		pthread_mutex_unlock(&c->lock);
		build_one(c, f);
	}
}

/* fleetsym-worker beside the running program, else in ../bin/ (unit tests run from tests/). */
static int find_worker(struct opensyms *c)
{
	char self[PATH_MAX], dir[PATH_MAX - 32];
	ssize_t n;

	if (c->opts.worker) {
		snprintf(c->worker, sizeof(c->worker), "%s", c->opts.worker);
		return 0;
	}
	n = readlink("/proc/self/exe", self, sizeof(self) - 1);
	if (n < 0)
		return -errno;
	self[n] = '\0';
	if (snprintf(dir, sizeof(dir), "%s", dirname(self)) >= (int)sizeof(dir))
		return -ENAMETOOLONG;
	snprintf(c->worker, sizeof(c->worker), "%s/fleetsym-worker", dir);
	if (access(c->worker, X_OK) == 0)
		return 0;
	snprintf(c->worker, sizeof(c->worker), "%s/../bin/fleetsym-worker", dir);
	return access(c->worker, X_OK) == 0 ? 0 : -ENOENT;
}

int opensyms_new(const struct opensyms_opts *opts, struct opensyms **out)
{
	struct opensyms *c;
	int nb, err;

	*out = NULL;
	if (!opts->index_dir || !opts->tmp_dir)
		return -EINVAL;
	c = calloc(1, sizeof(*c));
	if (!c)
		return -ENOMEM;
	c->opts = *opts;
	pthread_mutex_init(&c->lock, NULL);
	pthread_cond_init(&c->work, NULL);
	pthread_cond_init(&c->built, NULL);
	c->bad = calloc(MAX_BAD, sizeof(*c->bad));
	err = c->bad ? find_worker(c) : -ENOMEM;
	if (err == -ENOENT)
		log_msg(FS_LOG_ERROR, "opensyms: fleetsym-worker not found beside %s", c->worker);
	nb = opts->build_threads > 0 ? opts->build_threads : DEFAULT_BUILDERS;
	if (nb > MAX_BUILDERS)
		nb = MAX_BUILDERS;
	for (int i = 0; !err && i < nb; i++) {
		err = -pthread_create(&c->builders[i], NULL, builder_main, c);
		if (!err)
			c->nbuilders++;
	}
	if (err) {
		opensyms_free(c);
		return err;
	}
	*out = c;
	return 0;
}

void opensyms_stop(struct opensyms *c)
{
	if (!c)
		return;
	pthread_mutex_lock(&c->lock);
	__atomic_store_n(&c->stop, 1, __ATOMIC_RELEASE);
	pthread_cond_broadcast(&c->work);
	pthread_mutex_unlock(&c->lock);
	for (int i = 0; i < c->nbuilders; i++)
		pthread_join(c->builders[i], NULL);
	c->nbuilders = 0;
}

void opensyms_free(struct opensyms *c)
{
	struct opensyms_file *f, *list = NULL;

	if (!c)
		return;
	opensyms_stop(c);
	/* Queued builds that never ran hold a reference each. */
	while ((f = c->qhead)) {
		c->qhead = f->qnext;
		if (unref_locked(f)) {
			f->qnext = list;
			list = f;
		}
	}
	while ((f = c->head)) {
		unlink_table(c, f);
		if (unref_locked(f)) {
			f->qnext = list;
			list = f;
		}
	}
	free_list(list);
	free(c->bad);
	pthread_cond_destroy(&c->work);
	pthread_cond_destroy(&c->built);
	pthread_mutex_destroy(&c->lock);
	free(c);
}

void opensyms_stats(struct opensyms *c, struct opensyms_stats *st)
{
	pthread_mutex_lock(&c->lock);
	*st = c->st;
	st->open = c->count;
	st->indexed = 0;
	for (struct opensyms_file *f = c->head; f; f = f->next)
		st->indexed += f->build == BUILD_DONE;
	st->bad = 0;
	for (size_t i = 0; i < c->nbad; i++)
		st->bad += c->bad[i].build_id[0] != '\0';
	pthread_mutex_unlock(&c->lock);
}
