/*
 * unwind - two worker threads and a bounded request queue (the main thread only pushes; the
 * workers take small files first, one of them only small ones, see take()). A table is built
 * without the lock; the cache, the row allocator and the stats change under it.
 * Tables are cached per build ID (per device:inode for files without one) in a small array
 * scanned linearly: a host maps a few hundred distinct binaries, and each scan is far cheaper
 * than the build it may save. Each cached table remembers the unw_files keys that point at its
 * rows so that evicting it can unhook them first.
 *
 * Eviction reuses rows that a BPF walk on another CPU may be reading at that moment: such a
 * walk can take one wrong step, which ends it or gives one bad frame; it never faults (every
 * stack read is bpf_probe_read_user) and the window is one sample.
 */
#include "agent/unwind.h"

#include "agent/elfid.h"
#include "agent/mapfile.h"
#include "agent/vdso.h"
#include "agent/unwtab.h"

#include "lib/err.h"
#include "lib/log.h"

#include <bpf/bpf.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <malloc.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>

#define QUEUE_MAX	   4096
#define TABLES_MAX	   8192
#define KEYS_MAX	   64 /* unw_files keys remembered per table (more: not unhooked, see evict) */
#define UNWIND_STOP_WAIT_S 2	      /* unwind_free() waits this long for its workers */
#define SMALL_MAPPING	   (4u << 20) /* worker_small's limit */

struct table {
	char id[BUILDID_HEX_MAX + 8]; /* build ID hex, or "dev:ino" */
	uint32_t row_start, row_count;
	struct unw_file file; /* segments and build ID, READY */
	uint64_t last_used;   /* CLOCK_MONOTONIC ns of the last request */
	struct unw_file_key keys[KEYS_MAX];
	int nkeys;
};

struct range {
	uint32_t start, len;
};

struct unwind {
	int rows_fd, files_fd;
	uint32_t max_rows;
	struct range *free; /* free row ranges, sorted by start */
	size_t nfree;
	struct table *tables;
	size_t ntables;

	pthread_t threads[2]; /* worker_any, worker_small */
	int nthreads, exited;
	bool stopping;
	pthread_mutex_t lock;
	pthread_cond_t cond;
	struct unw_need queue[QUEUE_MAX];
	size_t qhead, qlen;
	uint64_t picks;
	struct unwind_stats st;
};

static uint64_t mono_us(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000 + (uint64_t)ts.tv_nsec / 1000;
}

/* First fit; -ENOSPC when no free range is long enough. */
static int rows_alloc(struct unwind *u, uint32_t n, uint32_t *start)
{
	for (size_t i = 0; i < u->nfree; i++) {
		if (u->free[i].len < n)
			continue;
		*start = u->free[i].start;
		u->free[i].start += n;
		u->free[i].len -= n;
		if (!u->free[i].len) {
			memmove(&u->free[i], &u->free[i + 1],
				(u->nfree - i - 1) * sizeof(*u->free));
			u->nfree--;
		}
		return 0;
	}
	return -ENOSPC;
}

/* Give [START, START + N) back, merging with its neighbours. The free list has room: it can
 * never hold more ranges than there are tables plus one. */
static void rows_release(struct unwind *u, uint32_t start, uint32_t n)
{
	size_t i = 0;

	while (i < u->nfree && u->free[i].start < start)
		i++;
	memmove(&u->free[i + 1], &u->free[i], (u->nfree - i) * sizeof(*u->free));
	u->free[i] = (struct range){start, n};
	u->nfree++;
	if (i + 1 < u->nfree && u->free[i].start + u->free[i].len == u->free[i + 1].start) {
		u->free[i].len += u->free[i + 1].len;
		memmove(&u->free[i + 1], &u->free[i + 2], (u->nfree - i - 2) * sizeof(*u->free));
		u->nfree--;
	}
	if (i > 0 && u->free[i - 1].start + u->free[i - 1].len == u->free[i].start) {
		u->free[i - 1].len += u->free[i].len;
		memmove(&u->free[i], &u->free[i + 1], (u->nfree - i - 1) * sizeof(*u->free));
		u->nfree--;
	}
}

static void unhook(struct unwind *u, struct table *t)
{
	for (int i = 0; i < t->nkeys; i++)
		bpf_map_delete_elem(u->files_fd, &t->keys[i]);
	t->nkeys = 0;
}

/* When T was last walked through (the BPF side stamps its files' entries), else when it was
 * last asked for, on the same clock (CLOCK_MONOTONIC is bpf_ktime_get_ns()'s). */
static uint64_t last_use(struct unwind *u, const struct table *t)
{
	uint64_t last = t->last_used;
	struct unw_file f;

	for (int i = 0; i < t->nkeys; i++)
		if (!bpf_map_lookup_elem(u->files_fd, &t->keys[i], &f) && f.last_use_ns > last)
			last = f.last_use_ns;
	return last;
}

/* Evict the least recently used table. -ENOENT if there is none. */
static int evict_one(struct unwind *u)
{
	uint64_t best = UINT64_MAX, t;
	size_t lru = 0;

	if (!u->ntables)
		return -ENOENT;
	for (size_t i = 0; i < u->ntables; i++) {
		t = last_use(u, &u->tables[i]);
		if (t < best) {
			best = t;
			lru = i;
		}
	}
	unhook(u, &u->tables[lru]);
	rows_release(u, u->tables[lru].row_start, u->tables[lru].row_count);
	u->st.rows_used -= u->tables[lru].row_count;
	u->tables[lru] = u->tables[--u->ntables];
	u->st.tables_evicted++;
	return 0;
}

static struct table *find_table(struct unwind *u, const char *id)
{
	for (size_t i = 0; i < u->ntables; i++)
		if (!strcmp(u->tables[i].id, id))
			return &u->tables[i];
	return NULL;
}

/* Copy N rows to [START, START + N) of the row array through a mapping of just those pages:
 * a mapping of the whole array would put all of it in the agent's RSS (the kernel maps every
 * page of an mmap'ed array map at once). */
static int write_rows(struct unwind *u, uint32_t start, const struct unw_row *rows, size_t n)
{
	size_t page = (size_t)sysconf(_SC_PAGESIZE), off = (size_t)start * sizeof(*rows);
	size_t base = off & ~(page - 1), len = off + n * sizeof(*rows) - base;
	char *p;

	if (!n)
		return 0;
	p = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_SHARED, u->rows_fd, (off_t)base);
	if (p == MAP_FAILED)
		return -errno;
	memcpy(p + (off - base), rows, n * sizeof(*rows));
	munmap(p, len);
	return 0;
}

/* Copy T's rows into the row array and cache it under ID. */
static int add_table(struct unwind *u, const char *id, const struct unwtab *t,
		     const unsigned char *bid, bool has_bid, struct table **out)
{
	const struct unw_row *rows;
	size_t n = unwtab_rows(t, &rows);
	struct table *e;
	uint32_t start;
	int err;

	if (n > u->max_rows) {
		u->st.tables_refused++;
		return -E2BIG;
	}
	if (u->ntables == TABLES_MAX)
		(void)evict_one(u);
	while ((err = rows_alloc(u, (uint32_t)n, &start)) == -ENOSPC)
		if (evict_one(u))
			break;
	if (err) {
		u->st.tables_refused++;
		return err;
	}
	err = write_rows(u, start, rows, n);
	if (err) {
		rows_release(u, start, (uint32_t)n);
		return err;
	}
	e = &u->tables[u->ntables++];
	memset(e, 0, sizeof(*e));
	snprintf(e->id, sizeof(e->id), "%s", id);
	e->row_start = start;
	e->row_count = (uint32_t)n;
	e->file.state = UNW_FILE_READY;
	e->file.row_start = start;
	e->file.row_count = (uint32_t)n;
	unwtab_segments(t, &e->file);
	e->file.has_build_id = has_bid;
	memcpy(e->file.build_id, bid, UNW_BUILD_ID);
	u->st.rows_used += n;
	*out = e;
	return 0;
}

static int hex_to_bytes(const char *hex, unsigned char out[UNW_BUILD_ID])
{
	size_t n = strlen(hex);

	memset(out, 0, UNW_BUILD_ID);
	if (n < 2 || n > 2 * UNW_BUILD_ID || (n & 1))
		return -EINVAL;
	for (size_t i = 0; i < n / 2; i++) {
		unsigned int b;

		if (sscanf(hex + 2 * i, "%2x", &b) != 1)
			return -EINVAL;
		out[i] = (unsigned char)b;
	}
	return 0;
}

/* Open the file that PID maps at [START, END), as mapfile_open() does: map_files, the mapped
 * file itself, needs nothing from /proc/PID/maps; only without it are the path, device and
 * inode read from there. */
static int open_mapped(uint32_t pid, uint64_t start, uint64_t end)
{
	struct mapfile_id id = {.start = start, .end = end};
	char path[64], line[PATH_MAX + 128];
	unsigned long s, e, ino;
	unsigned int maj, min;
	FILE *f;
	int fd = mapfile_open(pid, &id), n;

	if (fd != -ENOENT)
		return fd;
	snprintf(path, sizeof(path), "/proc/%" PRIu32 "/maps", pid);
	f = fopen(path, "re");
	if (!f)
		return -errno;
	while (fgets(line, sizeof(line), f)) {
		if (sscanf(line, "%lx-%lx %*s %*s %x:%x %lu %n", &s, &e, &maj, &min, &ino, &n) <
			5 ||
		    s != start)
			continue;
		line[strcspn(line, "\n")] = 0;
		id.path = line + n;
		id.dev_major = maj;
		id.dev_minor = min;
		id.ino = ino;
		fd = mapfile_open(pid, &id);
		break;
	}
	fclose(f);
	return fd;
}

static void set_file(struct unwind *u, const struct unw_file_key *key, const struct unw_file *f)
{
	if (bpf_map_update_elem(u->files_fd, key, f, BPF_ANY))
		log_msg(FS_LOG_DEBUG, "unwind: updating a file entry: %s", strerror(errno));
}

/* Point KEY's entry at E (under the lock). */
static void hook(struct unwind *u, struct table *e, const struct unw_file_key *key)
{
	e->last_used = mono_us() * 1000;
	if (e->nkeys < KEYS_MAX)
		e->keys[e->nkeys++] = *key;
	set_file(u, key, &e->file);
}

/* Answer one request (a worker, called and returning without the lock: the table is built
 * unlocked, the cache and the row array change under it). */
static void serve(struct unwind *u, const struct unw_need *nd)
{
	char hex[BUILDID_HEX_MAX] = "", id[BUILDID_HEX_MAX + 8];
	unsigned char bid[UNW_BUILD_ID] = {0};
	struct unw_file none = {.state = UNW_FILE_NO_TABLE};
	struct unwtab *t = NULL;
	struct table *e;
	bool has_bid;
	uint64_t t0;
	int fd, err;

	fd = open_mapped(nd->h.pid, nd->vm_start, nd->vm_end);
	if (fd < 0) {
		bpf_map_delete_elem(u->files_fd, &nd->key); /* ask again on a later sample */
		pthread_mutex_lock(&u->lock);
		u->st.open_errors++;
		pthread_mutex_unlock(&u->lock);
		return;
	}
	has_bid = !elfid_from_fd(fd, hex) && !hex_to_bytes(hex, bid);
	if (has_bid)
		snprintf(id, sizeof(id), "%s", hex);
	else
		snprintf(id, sizeof(id), "%llx:%llu", (unsigned long long)nd->key.dev,
			 (unsigned long long)nd->key.ino);
	pthread_mutex_lock(&u->lock);
	e = find_table(u, id);
	if (e) {
		u->st.tables_shared++;
		hook(u, e, &nd->key);
		pthread_mutex_unlock(&u->lock);
		close(fd);
		return;
	}
	pthread_mutex_unlock(&u->lock);

	t0 = mono_us();
	err = unwtab_build_fd(fd, &t);
	pthread_mutex_lock(&u->lock);
	u->st.build_us += mono_us() - t0;
	e = find_table(u, id); /* the other worker may have built it meanwhile */
	if (!e && !err) {
		err = add_table(u, id, t, bid, has_bid, &e);
		if (!err)
			u->st.tables++;
	}
	if (e) {
		hook(u, e, &nd->key);
	} else {
		log_msg(FS_LOG_INFO, "unwind: no table for %s (pid %" PRIu32 "): %s", id, nd->h.pid,
			err_str(err));
		u->st.tables_failed++;
		none.has_build_id = has_bid;
		memcpy(none.build_id, bid, sizeof(bid));
		set_file(u, &nd->key, &none);
	}
	pthread_mutex_unlock(&u->lock);
	unwtab_free(t);
	close(fd);
	if (t)
		malloc_trim(0); /* libdw's state and the file's pages: back to the system */
}

static uint64_t need_size(const struct unw_need *n)
{
	return n->vm_end - n->vm_start;
}

/* The next request for a worker (under the lock), false if none fits SMALL_ONLY. The smallest
 * mapping first: a small file's table is built in a millisecond, a compiler's can take a
 * second, and a program's own binary should not wait behind every big one on the host. The
 * worker that takes any size picks the oldest every 4th time, so that big files never starve;
 * the other takes only mappings up to SMALL_MAPPING, so a big build never blocks small ones. */
static bool take(struct unwind *u, bool small_only, struct unw_need *nd)
{
	size_t best = SIZE_MAX;

	if (!small_only && u->qlen && ++u->picks % 4 == 0)
		best = 0;
	for (size_t i = 0; best && i < u->qlen; i++) {
		const struct unw_need *a = &u->queue[(u->qhead + i) % QUEUE_MAX];

		if (small_only && need_size(a) > SMALL_MAPPING)
			continue;
		if (best == SIZE_MAX ||
		    need_size(a) < need_size(&u->queue[(u->qhead + best) % QUEUE_MAX]))
			best = i;
	}
	if (best == SIZE_MAX)
		return false;
	*nd = u->queue[(u->qhead + best) % QUEUE_MAX];
	/* close the gap: the entries before BEST move up by one */
	for (size_t i = best; i > 0; i--)
		u->queue[(u->qhead + i) % QUEUE_MAX] = u->queue[(u->qhead + i - 1) % QUEUE_MAX];
	u->qhead = (u->qhead + 1) % QUEUE_MAX;
	u->qlen--;
	return true;
}

static void *run_worker(struct unwind *u, bool small_only)
{
	struct unw_need nd;

	pthread_mutex_lock(&u->lock);
	for (;;) {
		while (!u->stopping && !take(u, small_only, &nd))
			pthread_cond_wait(&u->cond, &u->lock);
		if (u->stopping)
			break;
		pthread_mutex_unlock(&u->lock);
		serve(u, &nd);
		pthread_mutex_lock(&u->lock);
	}
	u->exited++;
	pthread_cond_broadcast(&u->cond);
	pthread_mutex_unlock(&u->lock);
	return NULL;
}

static void *worker_any(void *arg)
{
	return run_worker(arg, false);
}

static void *worker_small(void *arg)
{
	return run_worker(arg, true);
}

/* The vDSO's table from the agent's own copy (the same image in every process). Its frames
 * stay raw IPs, resolved by procmaps as before. */
static void add_vdso(struct unwind *u)
{
	struct unw_file_key key = {.ino = 0, .dev = UNW_DEV_VDSO};
	unsigned char bid[UNW_BUILD_ID] = {0};
	struct unwtab *t = NULL;
	struct table *te;
	uint64_t s, e;

	if (vdso_self_range(&s, &e))
		return;
	if (!unwtab_build_mem((const void *)(uintptr_t)s, e - s, &t) &&
	    !add_table(u, "[vdso]", t, bid, false, &te)) {
		te->keys[te->nkeys++] = key;
		set_file(u, &key, &te->file);
		u->st.tables++;
	}
	unwtab_free(t);
}

int unwind_new(int rows_fd, int files_fd, uint32_t max_rows, struct unwind **out)
{
	struct unwind *u;
	int err;

	u = calloc(1, sizeof(*u));
	if (!u)
		return -ENOMEM;
	u->rows_fd = rows_fd;
	u->files_fd = files_fd;
	u->max_rows = max_rows;
	u->st.rows_max = max_rows;
	pthread_mutex_init(&u->lock, NULL);
	pthread_cond_init(&u->cond, NULL);
	u->tables = calloc(TABLES_MAX, sizeof(*u->tables));
	u->free = calloc(TABLES_MAX + 2, sizeof(*u->free));
	if (!u->tables || !u->free) {
		err = -ENOMEM;
		goto out;
	}
	u->free[0] = (struct range){0, max_rows};
	u->nfree = 1;
	add_vdso(u);
	err = -pthread_create(&u->threads[0], NULL, worker_any, u);
	if (err)
		goto out;
	u->nthreads++;
	err = -pthread_create(&u->threads[1], NULL, worker_small, u);
	if (err)
		goto out;
	u->nthreads++;
	/* named, so that their CPU (table building, once per binary) can be told apart */
	pthread_setname_np(u->threads[0], "unw-build");
	pthread_setname_np(u->threads[1], "unw-build");
	*out = u;
	return 0;
out:
	unwind_free(u);
	return err;
}

void unwind_free(struct unwind *u)
{
	if (!u)
		return;
	struct timespec until;
	bool all;

	clock_gettime(CLOCK_REALTIME, &until);
	until.tv_sec += UNWIND_STOP_WAIT_S;
	pthread_mutex_lock(&u->lock);
	u->stopping = true;
	pthread_cond_broadcast(&u->cond);
	while (u->exited < u->nthreads &&
	       pthread_cond_timedwait(&u->cond, &u->lock, &until) != ETIMEDOUT)
		;
	all = u->exited == u->nthreads;
	pthread_mutex_unlock(&u->lock);
	if (!all) {
		/* a worker is stuck opening or reading a file that never answers (a hung FUSE or
		 * NFS server): leave it and U behind rather than hang the agent's exit */
		for (int i = 0; i < u->nthreads; i++)
			pthread_detach(u->threads[i]);
		return;
	}
	for (int i = 0; i < u->nthreads; i++)
		pthread_join(u->threads[i], NULL);
	pthread_mutex_destroy(&u->lock);
	pthread_cond_destroy(&u->cond);
	free(u->tables);
	free(u->free);
	free(u);
}

void unwind_need(struct unwind *u, const void *rec, size_t size)
{
	if (size < sizeof(struct unw_need))
		return;
	pthread_mutex_lock(&u->lock);
	u->st.requests++;
	if (u->qlen == QUEUE_MAX) {
		u->st.requests_dropped++;
	} else {
		memcpy(&u->queue[(u->qhead + u->qlen) % QUEUE_MAX], rec, sizeof(struct unw_need));
		u->qlen++;
		pthread_cond_broadcast(&u->cond);
	}
	pthread_mutex_unlock(&u->lock);
}

void unwind_get_stats(struct unwind *u, struct unwind_stats *st)
{
	pthread_mutex_lock(&u->lock);
	*st = u->st;
	st->tables_cached = u->ntables;
	pthread_mutex_unlock(&u->lock);
}
