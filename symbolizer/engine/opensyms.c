/*
 * opensyms - a small hash-free table (a doubly linked LRU list: at most max_entries, 64 by
 * default, and each request does one walk) of refcounted entries, a queue of entries waiting
 * for an index, and builder threads.
 *
 * Locks: c->lock guards the table, the queue, refcounts, build states and the dead/published
 * flags; f->lock guards the cold symfile and is held while the file is being opened. Order:
 * c->lock before f->lock, never the other way. f->warm is written once under c->lock and read
 * without a lock (acquire/release).
 */
#include "symbolizer/engine/opensyms.h"

#include "symbolizer/engine/symfile.h"

#include "lib/clock.h"
#include "lib/elfutil.h"
#include "lib/err.h"
#include "lib/fsutil.h"
#include "lib/log.h"

#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define DEFAULT_MAX_ENTRIES 64
#define MAX_BUILDERS	    16
#define COLD_CHUNK	    256 /* addresses per hold of a cold file's lock */
#define MAX_FRAMES	    64

const double opensyms_build_bounds[OPENSYMS_BUILD_BUCKETS - 1] = {0.01, 0.05, 0.1, 0.5, 1,  2.5,
								  5,	10,   30,  60,	120};

enum build_state { BUILD_NONE, BUILD_QUEUED, BUILD_RUNNING, BUILD_DONE, BUILD_FAILED };

struct opensyms_file {
	struct opensyms_file *prev, *next; /* table (LRU order, most recent first) */
	struct opensyms_file *qnext;	   /* build queue */
	unsigned refs;
	int in_table;
	int dead;      /* dropped: its index must not be published */
	int published; /* its index was renamed into the index dir by us */
	enum build_state build;

	/* which store entry this is */
	char build_id[BUILDID_HEX_MAX];
	char path[sizeof(((struct dstore_entry *)0)->path)];
	uint64_t size;
	time_t added;
	unsigned quality;

	pthread_mutex_t lock;
	int open_err;
	struct symfile *cold;
	struct symfile *warm;
	struct loadmap lm;
	char build_dir[4096]; /* the private dir the index was built in */
};

struct opensyms {
	struct opensyms_opts opts;
	pthread_mutex_t lock;
	pthread_cond_t work, built;
	struct opensyms_file *head, *tail;
	size_t count;
	struct opensyms_file *qhead, *qtail;
	int stop;
	pthread_t builders[MAX_BUILDERS];
	int nbuilders;
	struct opensyms_stats st;
};

static void file_free(struct opensyms_file *f)
{
	if (!f)
		return;
	symfile_close(f->cold);
	symfile_close(f->warm);
	pthread_mutex_destroy(&f->lock);
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

static int index_path(const struct opensyms *c, const char *dir, const char *bid, char *buf,
		      size_t len)
{
	int n = snprintf(buf, len, "%s/%s.symidx", dir, bid);

	(void)c;
	return n < 0 || (size_t)n >= len ? -ENAMETOOLONG : 0;
}

/* Remove F from the table for good: no index of it may be published any more, and one it
 * published is removed (it describes a file the store no longer has). */
static struct opensyms_file *drop_locked(struct opensyms *c, struct opensyms_file *f)
{
	char path[4096];

	f->dead = 1;
	if (f->published && c->opts.index_dir &&
	    index_path(c, c->opts.index_dir, f->build_id, path, sizeof(path)) == 0)
		unlink(path);
	f->published = 0;
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

static int read_loadmap(const char *path, struct loadmap *lm)
{
	Elf *elf = NULL;
	int fd = -1, err;

	err = elfutil_open(path, &fd, &elf);
	if (!err)
		loadmap_from_elf(elf, lm);
	elfutil_close(fd, elf);
	return err;
}

static int open_file(struct opensyms *c, struct opensyms_file *f)
{
	struct symfile_opts so = {.debug_dirs = c->opts.debug_dirs, .index_dir = c->opts.index_dir};
	struct symfile *sf = NULL;
	int err;

	err = read_loadmap(f->path, &f->lm);
	if (err)
		return err;
	err = symfile_open(f->path, &so, &sf);
	if (err)
		return err;
	if (symfile_is_indexed(sf)) {
		pthread_mutex_lock(&c->lock);
		__atomic_store_n(&f->warm, sf, __ATOMIC_RELEASE);
		f->build = BUILD_DONE;
		pthread_mutex_unlock(&c->lock);
	} else {
		f->cold = sf;
	}
	return 0;
}

/* A hit: F (referenced for the caller) may still be opening on another thread, which holds
 * F's lock until it is open. Wait for that, and hand over F or the error it met. */
static int wait_open(struct opensyms *c, struct opensyms_file *f, struct opensyms_file **out)
{
	int err;

	pthread_mutex_lock(&f->lock);
	err = f->open_err;
	pthread_mutex_unlock(&f->lock);
	if (err) {
		opensyms_put(c, f);
		return err;
	}
	*out = f;
	return 0;
}

/* An entry for the store's entry E, referenced by the table and the caller. */
static struct opensyms_file *file_new(const struct dstore_entry *e)
{
	struct opensyms_file *f = calloc(1, sizeof(*f));

	if (!f)
		return NULL;
	pthread_mutex_init(&f->lock, NULL);
	snprintf(f->build_id, sizeof(f->build_id), "%s", e->build_id);
	snprintf(f->path, sizeof(f->path), "%s", e->path);
	f->size = e->size;
	f->added = e->added;
	f->quality = e->quality;
	f->refs = 2;
	return f;
}

/* A miss: F is in the table with its lock held, so threads asking for it meanwhile wait in
 * wait_open(). Open it, release the lock, then (under the table's lock) drop F if it failed
 * and evict past the cap. */
static int open_new(struct opensyms *c, struct opensyms_file *f, struct opensyms_file **out)
{
	struct opensyms_file *evicted;
	int err = open_file(c, f);

	f->open_err = err;
	pthread_mutex_unlock(&f->lock);

	pthread_mutex_lock(&c->lock);
	if (err && f->in_table)
		drop_locked(c, f); /* returns NULL: the caller's reference keeps F */
	evicted = evict_locked(c);
	pthread_mutex_unlock(&c->lock);
	free_list(evicted);
	if (err) {
		log_msg(FS_LOG_WARN, "opensyms: %s: %s", f->path, err_str(err));
		opensyms_put(c, f);
		return err;
	}
	*out = f;
	return 0;
}

int opensyms_get(struct opensyms *c, const struct dstore_entry *e, struct opensyms_file **out)
{
	struct opensyms_file *f, *stale = NULL;

	*out = NULL;
	if (!buildid_valid(e->build_id))
		return -ERR_BADBUILDID;
	pthread_mutex_lock(&c->lock);
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
		pthread_mutex_unlock(&c->lock);
		return wait_open(c, f, out);
	}
	f = file_new(e);
	if (f) {
		pthread_mutex_lock(&f->lock);
		push_front(c, f);
		c->st.misses++;
	}
	pthread_mutex_unlock(&c->lock);
	file_free(stale);
	return f ? open_new(c, f, out) : -ENOMEM;
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
	f = find_locked(c, build_id);
	if (f)
		last = drop_locked(c, f);
	pthread_mutex_unlock(&c->lock);
	file_free(last);
}

static void queue_build(struct opensyms *c, struct opensyms_file *f)
{
	if (!c->opts.index_dir || c->nbuilders == 0)
		return;
	pthread_mutex_lock(&c->lock);
	if (f->build == BUILD_NONE && !f->dead) {
		f->build = BUILD_QUEUED;
		f->refs++;
		f->qnext = NULL;
		if (c->qtail)
			c->qtail->qnext = f;
		else
			c->qhead = f;
		c->qtail = f;
		pthread_cond_signal(&c->work);
	}
	pthread_mutex_unlock(&c->lock);
}

static int emit_warm(struct symfile *w, const uint64_t *addrs, size_t from, size_t n,
		     opensyms_emit_fn emit, void *ctx)
{
	struct sym_frame frames[MAX_FRAMES];

	for (size_t i = from; i < n; i++) {
		int k = symfile_lookup(w, addrs[i], frames, MAX_FRAMES);
		int rc = emit(ctx, i, addrs[i], frames, k);

		if (rc)
			return rc;
	}
	return 0;
}

int opensyms_lookup_batch(struct opensyms *c, struct opensyms_file *f, const uint64_t *addrs,
			  size_t n, opensyms_emit_fn emit, void *ctx)
{
	struct sym_frame frames[MAX_FRAMES];
	struct symfile *w = __atomic_load_n(&f->warm, __ATOMIC_ACQUIRE);
	size_t i = 0;
	int rc = 0;

	if (w)
		return emit_warm(w, addrs, 0, n, emit, ctx);
	while (i < n && !rc) {
		size_t end = n - i > COLD_CHUNK ? i + COLD_CHUNK : n;

		pthread_mutex_lock(&f->lock);
		w = __atomic_load_n(&f->warm, __ATOMIC_ACQUIRE);
		if (w) {
			pthread_mutex_unlock(&f->lock);
			rc = emit_warm(w, addrs, i, n, emit, ctx);
			break;
		}
		for (; i < end && !rc; i++) {
			int k = symfile_lookup(f->cold, addrs[i], frames, MAX_FRAMES);

			rc = emit(ctx, i, addrs[i], frames, k);
		}
		pthread_mutex_unlock(&f->lock);
	}
	if (!w)
		queue_build(c, f);
	return rc;
}

const struct loadmap *opensyms_file_loadmap(const struct opensyms_file *f)
{
	return &f->lm;
}

int opensyms_file_is_indexed(const struct opensyms_file *f)
{
	return __atomic_load_n(&f->warm, __ATOMIC_ACQUIRE) != NULL;
}

/* Build F's index in a private dir from a symfile of its own. Sets *OUT (indexed). */
static int build_private(struct opensyms *c, struct opensyms_file *f, struct symfile **out)
{
	struct symfile_opts so = {.debug_dirs = c->opts.debug_dirs, .index_dir = f->build_dir};
	int n, err;

	*out = NULL;
	n = snprintf(f->build_dir, sizeof(f->build_dir), "%s/symidx-XXXXXX", c->opts.tmp_dir);
	if (n < 0 || (size_t)n >= sizeof(f->build_dir))
		return -ENAMETOOLONG;
	if (!mkdtemp(f->build_dir)) {
		f->build_dir[0] = '\0';
		return -errno;
	}
	err = symfile_open(f->path, &so, out);
	if (!err)
		err = symfile_build_index(*out);
	if (!err && !symfile_is_indexed(*out))
		err = -EINVAL;
	return err;
}

static void remove_build_dir(struct opensyms_file *f)
{
	char path[4096 + 80];

	if (!f->build_dir[0])
		return;
	if (snprintf(path, sizeof(path), "%s/%s.symidx", f->build_dir, f->build_id) <
	    (int)sizeof(path))
		unlink(path);
	rmdir(f->build_dir);
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
static int publish_locked(struct opensyms *c, struct opensyms_file *f, struct symfile *sf)
{
	char from[4096 + 80], to[4096];

	if (f->dead)
		return -ESTALE;
	if (snprintf(from, sizeof(from), "%s/%s.symidx", f->build_dir, f->build_id) >=
		(int)sizeof(from) ||
	    index_path(c, c->opts.index_dir, f->build_id, to, sizeof(to)))
		return -ENAMETOOLONG;
	if (rename(from, to) < 0)
		return -errno;
	if (fsutil_fsync_parent(to) < 0)
		log_msg(FS_LOG_DEBUG, "opensyms: %s: fsync of the index dir failed", to);
	f->published = 1;
	__atomic_store_n(&f->warm, sf, __ATOMIC_RELEASE);
	return 0;
}

/* The entry stays BUILD_RUNNING (and referenced) until everything about the build is done,
 * so that a waiter woken by c->built sees a settled entry. */
static void build_one(struct opensyms *c, struct opensyms_file *f)
{
	struct symfile *sf = NULL, *old = NULL;
	struct opensyms_file *last;
	double t0 = clock_mono_s();
	int err;

	err = build_private(c, f, &sf);
	pthread_mutex_lock(&c->lock);
	if (!err)
		err = publish_locked(c, f, sf);
	if (err != -ESTALE)
		record_build(c, !err, clock_mono_s() - t0);
	pthread_mutex_unlock(&c->lock);
	remove_build_dir(f);

	if (err) {
		if (err != -ESTALE)
			log_msg(FS_LOG_WARN, "opensyms: index of %s not built: %s", f->build_id,
				err_str(err));
		symfile_close(sf);
	} else {
		log_msg(FS_LOG_INFO, "event=index_built build_id=%s seconds=%.3f", f->build_id,
			clock_mono_s() - t0);
		pthread_mutex_lock(&f->lock);
		old = f->cold;
		f->cold = NULL;
		pthread_mutex_unlock(&f->lock);
		symfile_close(old);
	}
	pthread_mutex_lock(&c->lock);
	f->build = err ? BUILD_FAILED : BUILD_DONE;
	pthread_cond_broadcast(&c->built);
	last = unref_locked(f);
	pthread_mutex_unlock(&c->lock);
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

int opensyms_new(const struct opensyms_opts *opts, struct opensyms **out)
{
	struct opensyms *c;
	int nb, err = 0;

	*out = NULL;
	if (opts->index_dir && !opts->tmp_dir)
		return -EINVAL;
	c = calloc(1, sizeof(*c));
	if (!c)
		return -ENOMEM;
	c->opts = *opts;
	pthread_mutex_init(&c->lock, NULL);
	pthread_cond_init(&c->work, NULL);
	pthread_cond_init(&c->built, NULL);
	nb = opts->build_threads > 0 ? opts->build_threads : 1;
	if (nb > MAX_BUILDERS)
		nb = MAX_BUILDERS;
	for (int i = 0; opts->index_dir && i < nb; i++) {
		err = -pthread_create(&c->builders[i], NULL, builder_main, c);
		if (err)
			break;
		c->nbuilders++;
	}
	if (err) {
		opensyms_free(c);
		return err;
	}
	*out = c;
	return 0;
}

void opensyms_free(struct opensyms *c)
{
	struct opensyms_file *f, *list = NULL;

	if (!c)
		return;
	pthread_mutex_lock(&c->lock);
	c->stop = 1;
	pthread_cond_broadcast(&c->work);
	pthread_mutex_unlock(&c->lock);
	for (int i = 0; i < c->nbuilders; i++)
		pthread_join(c->builders[i], NULL);
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
	pthread_cond_destroy(&c->work);
	pthread_cond_destroy(&c->built);
	pthread_mutex_destroy(&c->lock);
	free(c);
}

int opensyms_wait_indexed(struct opensyms *c, struct opensyms_file *f, int timeout_ms)
{
	struct timespec ts;
	int indexed;

	clock_gettime(CLOCK_REALTIME, &ts);
	ts.tv_sec += timeout_ms / 1000;
	ts.tv_nsec += (long)(timeout_ms % 1000) * 1000000L;
	if (ts.tv_nsec >= 1000000000L) {
		ts.tv_sec++;
		ts.tv_nsec -= 1000000000L;
	}
	pthread_mutex_lock(&c->lock);
	while (f->build == BUILD_QUEUED || f->build == BUILD_RUNNING)
		if (pthread_cond_timedwait(&c->built, &c->lock, &ts) != 0)
			break;
	indexed = f->warm != NULL;
	pthread_mutex_unlock(&c->lock);
	return indexed;
}

void opensyms_stats(struct opensyms *c, struct opensyms_stats *st)
{
	pthread_mutex_lock(&c->lock);
	*st = c->st;
	st->open = c->count;
	st->indexed = 0;
	for (struct opensyms_file *f = c->head; f; f = f->next)
		st->indexed += f->warm != NULL;
	pthread_mutex_unlock(&c->lock);
}
