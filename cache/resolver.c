/*
 * resolver - build ID → debug file: the store, local debug dirs, debuginfod; one job per ID.
 *
 * A job is a thread that owns the resolution of one build ID from start to end: it looks in the
 * local dirs, then asks the peer replicas (one round, every peer at once, peerfetch.c), then
 * (holding one of max_fetches slots and the libdebuginfod handle that goes with
 * the slot) asks debuginfod, and puts what it finds into the store. Callers of that build ID find
 * the job in the in-flight list and wait on the condition variable, each for at most its own
 * wait_ms; the job does not care who waits or who gave up. A thread per job rather than a fixed
 * pool, so that a local copy never queues behind slow downloads; jobs are capped in number.
 *
 * libdebuginfod 0.188 as this is built around it (notes/symbolization-facts.md): blocking calls;
 * one handle per thread at a time; settings read with getenv() on every query; cancellation only
 * by a non-zero return from the progress callback, which it calls about once a second; and a
 * cancelled query comes back as -ENOENT with a zero-length "miss" file left in its cache, which
 * we remove so that the next attempt really asks the server.
 */
#include "cache/resolver.h"

#include "lib/clock.h"
#include "lib/err.h"
#include "lib/fsutil.h"
#include "lib/log.h"

#include <elfutils/debuginfod.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#define CLIENT_MAX  64	  /* bytes of a client key */
#define NEG_MAX	    65536 /* remembered misses */
#define NEG_BUCKETS 4096
#define JOB_STACK   (1 << 20)

#define DEFAULT_PEER_NEG_TTL_S 60

static const char R_PENDING[] = "debug info is being fetched; ask again shortly";
static const char R_NOWHERE[] =
    "not uploaded and not in the local debug dirs (no debuginfod server configured); upload it";
static const char R_NOT_FOUND[] =
    "not uploaded, not in the local debug dirs, and the debuginfod servers do not have it; "
    "upload it";
static const char R_UNREACHABLE[] = "no debuginfod server could be reached; check the URLs";
static const char R_TIMEOUT[] = "the debuginfod fetch did not finish within the fetch timeout";
static const char R_TOO_BIG[] = "debuginfod has it, but over the size limit (DEBUGINFOD_MAXSIZE)";
static const char R_BAD_FILE[] =
    "debuginfod sent a file that is not usable (damaged, or of another build ID)";
static const char R_FAILED[] = "the debuginfod query failed";
static const char R_PEERS_NOT_FOUND[] =
    "not uploaded here or to any peer replica, and not in the local debug dirs (no debuginfod "
    "server configured); upload it";
static const char R_PEERS_DOWN[] =
    "not uploaded here, not in the local debug dirs, and not every peer replica could be asked "
    "(no debuginfod server configured); ask again later";
static const char R_PEER_TOO_BIG[] =
    "a peer replica has it, but over the size limit (8 times --max-upload-size)";
static const char R_PEER_BAD_FILE[] =
    "a peer replica sent a file that is not usable (damaged, or of another build ID)";
static const char R_STORE[] = "storing the debug file failed (out of memory or disk space?)";
static const char R_STOPPING[] = "the resolver is shutting down";
static const char R_BUSY[] = "too many build IDs are being resolved at once; ask again shortly";
static const char R_BUSY_CLIENT[] =
    "this client has too many build IDs being resolved at once; ask again shortly";

struct job {
	struct resolver *r;
	char bid[BUILDID_HEX_MAX];
	char client[CLIENT_MAX]; /* who started it; "" = the service */
	pthread_t thread;
	int refs; /* the thread's own, plus one per waiter; under r->lock */
	int done;
	int status; /* enum resolver_status */
	const char *reason;
	struct dstore_entry e;
	struct job *next; /* in r->jobs while running, in r->zombies once finished */
};

struct neg {
	char bid[BUILDID_HEX_MAX];
	time_t expires;
	const char *reason;
	struct neg *next;
};

/* User data of a libdebuginfod handle for the length of one query. */
struct fetch {
	struct resolver *r;
	int64_t deadline_ms;
	int timed_out, cancelled;
};

struct resolver {
	struct dstore *store;
	char **dirs;
	char *urls; /* NULL: no debuginfod */
	char cache_dir[PATH_MAX];
	int max_fetches, timeout_s, ttl_s;
	pthread_mutex_t lock;
	pthread_cond_t cond; /* a job finished, or a fetch slot came free */
	struct job *jobs, *zombies;
	int njobs, active;
	debuginfod_client **idle; /* handles of free slots, at most max_fetches */
	int nidle;
	struct neg *neg[NEG_BUCKETS];
	size_t nneg;
	atomic_int stopping;
	struct resolver_stats st;
	char **peers; /* NULL-terminated; NULL = none */
	size_t npeers;
	char *peer_token;
	uint64_t peer_max_bytes;
	int peer_stall_ms, peer_ttl_s;
	int64_t peer_down_until[PEERFETCH_MAX_PEERS]; /* clock_mono_ms(); under lock */
};

/* The negative cache is chained by hand, not a lib/u64map: its keys are build-ID strings and an
 * entry is removed on its own (expiry, resolver_forget_negative()), which u64map does not do. */
static size_t bid_hash(const char *bid)
{
	uint64_t h = 1469598103934665603ull;

	for (; *bid; bid++)
		h = (h ^ (uint8_t)*bid) * 1099511628211ull;
	return (size_t)(h % NEG_BUCKETS);
}

static void drop_client_miss(struct resolver *r, const char *bid);

/* ---- negative cache ---- */

static void neg_sweep_locked(struct resolver *r, time_t now)
{
	for (size_t b = 0; b < NEG_BUCKETS; b++)
		for (struct neg **pp = &r->neg[b]; *pp;) {
			struct neg *n = *pp;

			if (n->expires <= now) {
				*pp = n->next;
				free(n);
				r->nneg--;
			} else {
				pp = &n->next;
			}
		}
}

static struct neg *neg_find_locked(struct resolver *r, const char *bid, time_t now)
{
	for (struct neg **pp = &r->neg[bid_hash(bid)]; *pp; pp = &(*pp)->next) {
		struct neg *n = *pp;

		if (strcmp(n->bid, bid) != 0)
			continue;
		if (n->expires > now)
			return n;
		*pp = n->next;
		free(n);
		r->nneg--;
		return NULL;
	}
	return NULL;
}

static void neg_insert_locked(struct resolver *r, const char *bid, const char *reason, int ttl_s)
{
	time_t now = time(NULL);
	struct neg *n = neg_find_locked(r, bid, now);
	size_t b = bid_hash(bid);

	if (!n) {
		if (r->nneg >= NEG_MAX)
			neg_sweep_locked(r, now);
		if (r->nneg >= NEG_MAX || !(n = calloc(1, sizeof(*n)))) {
			log_msg(FS_LOG_DEBUG, "resolver: negative cache full; %s not remembered",
				bid);
			return;
		}
		memcpy(n->bid, bid, strlen(bid) + 1);
		n->next = r->neg[b];
		r->neg[b] = n;
		r->nneg++;
	}
	n->expires = now + ttl_s;
	n->reason = reason;
}

void resolver_forget_negative(struct resolver *r, const char *build_id)
{
	char bid[BUILDID_HEX_MAX];

	if (buildid_normalize(build_id, BUILDID_WHOLE, bid) != 0)
		return;
	pthread_mutex_lock(&r->lock);
	for (struct neg **pp = &r->neg[bid_hash(bid)]; *pp; pp = &(*pp)->next)
		if (strcmp((*pp)->bid, bid) == 0) {
			struct neg *n = *pp;

			*pp = n->next;
			free(n);
			r->nneg--;
			break;
		}
	pthread_mutex_unlock(&r->lock);
	/* libdebuginfod remembers misses too: without this, a re-ask would not reach the server */
	if (r->urls)
		drop_client_miss(r, bid);
}

/* ---- copying into the store ---- */

static int make_tmp(struct resolver *r, const char *what, char path[PATH_MAX])
{
	int fd;

	if (snprintf(path, PATH_MAX, "%s/%s-XXXXXX", dstore_tmp_dir(r->store), what) >= PATH_MAX)
		return -ENAMETOOLONG;
	fd = mkstemp(path);
	if (fd < 0)
		return -errno;
	return fd;
}

/* Put TMP (consumed) into the store. A better entry that landed meanwhile is as good a result. */
static int store_tmp(struct resolver *r, const char *tmp, const char *bid, enum dstore_source src,
		     struct dstore_entry *e)
{
	enum dstore_put_result res;
	int err = dstore_put(r->store, bid, tmp, src, 0, &res, e);

	if (err == -EEXIST)
		err = dstore_get(r->store, bid, e);
	return err;
}

static int try_local(struct resolver *r, const char *bid, struct dstore_entry *e)
{
	for (size_t i = 0; r->dirs[i]; i++) {
		char path[PATH_MAX], tmp[PATH_MAX];
		struct stat st;
		int in, out, err;

		if (buildid_debug_path(r->dirs[i], bid, path, sizeof(path)) != 0)
			continue;
		in = open(path, O_RDONLY | O_CLOEXEC);
		if (in < 0)
			continue;
		if (fstat(in, &st) < 0 || !S_ISREG(st.st_mode)) {
			close(in);
			continue;
		}
		out = make_tmp(r, "local", tmp);
		err = out < 0 ? out : fsutil_copy_fd(in, out);
		close(in);
		if (out >= 0 && close(out) < 0 && !err)
			err = -errno;
		if (out >= 0 && err)
			unlink(tmp);
		if (!err)
			err = store_tmp(r, tmp, bid, DSTORE_SRC_LOCAL, e);
		if (!err)
			return 1;
		log_msg(FS_LOG_WARN, "resolver: %s: %s", path, err_str(err));
	}
	return 0;
}

/* ---- debuginfod ---- */

static int progress_cb(debuginfod_client *c, long a, long b)
{
	struct fetch *f = debuginfod_get_user_data(c);

	if (!f)
		return 0;
	if (clock_mono_ms() >= f->deadline_ms)
		f->timed_out = 1;
	f->cancelled = f->timed_out || atomic_load(&f->r->stopping);
	return f->cancelled;
}

static debuginfod_client *client_new(void)
{
	debuginfod_client *c = debuginfod_begin();

	if (!c)
		return NULL;
	debuginfod_set_verbose_fd(c, -1); /* libraries never print, DEBUGINFOD_VERBOSE or not */
	debuginfod_set_progressfn(c, progress_cb);
	return c;
}

/* Wait for a fetch slot; NULL *C means the slot has no handle yet. -ECANCELED when stopping. */
static int slot_take(struct resolver *r, debuginfod_client **c)
{
	pthread_mutex_lock(&r->lock);
	while (r->active >= r->max_fetches && !atomic_load(&r->stopping))
		pthread_cond_wait(&r->cond, &r->lock);
	if (atomic_load(&r->stopping)) {
		pthread_mutex_unlock(&r->lock);
		return -ECANCELED;
	}
	r->active++;
	r->st.fetches++;
	r->st.fetches_in_flight = (uint64_t)r->active;
	*c = r->nidle ? r->idle[--r->nidle] : NULL;
	pthread_mutex_unlock(&r->lock);
	return 0;
}

static void slot_give(struct resolver *r, debuginfod_client *c, int64_t ms, int ok)
{
	pthread_mutex_lock(&r->lock);
	r->active--;
	r->st.fetches_in_flight = (uint64_t)r->active;
	r->st.fetch_ms_total += (uint64_t)(ms > 0 ? ms : 0);
	if (!ok)
		r->st.fetch_failures++;
	if (c)
		r->idle[r->nidle++] = c;
	pthread_cond_broadcast(&r->cond);
	pthread_mutex_unlock(&r->lock);
}

/* Remove libdebuginfod's record of a miss ("000" zero-length file) for BID; after our deadline
 * cancelled a query, 0.188 records one too. */
static void drop_client_miss(struct resolver *r, const char *bid)
{
	char path[PATH_MAX];
	struct stat st;

	if (snprintf(path, sizeof(path), "%s/%s/debuginfo", r->cache_dir, bid) >= PATH_MAX)
		return;
	if (stat(path, &st) == 0 && S_ISREG(st.st_mode) && st.st_size == 0)
		unlink(path);
}

/* Move the file libdebuginfod returned (FD, at PATH in its cache) into the store: a rename when
 * both are on one file system, so its cache does not keep a second copy; else a copy. */
static int take_fetched(struct resolver *r, int fd, const char *path, const char *bid,
			struct dstore_entry *e)
{
	char tmp[PATH_MAX], dir[PATH_MAX];
	int out, err = 0;

	out = make_tmp(r, "fetch", tmp);
	if (out < 0)
		return out;
	if (path && rename(path, tmp) == 0) {
		const char *slash = strrchr(path, '/');

		/* nothing else of this build ID is left there: best effort */
		if (slash &&
		    snprintf(dir, sizeof(dir), "%.*s", (int)(slash - path), path) < PATH_MAX)
			rmdir(dir);
	} else {
		if (lseek(fd, 0, SEEK_SET) < 0)
			err = -errno;
		if (!err)
			err = fsutil_copy_fd(fd, out);
	}
	if (close(out) < 0 && !err)
		err = -errno;
	if (err) {
		unlink(tmp);
		return err;
	}
	/* the client made its file read-only; the store rewrites it in place when decompressing */
	if (chmod(tmp, 0600) < 0) {
		unlink(tmp);
		return -errno;
	}
	return store_tmp(r, tmp, bid, DSTORE_SRC_DEBUGINFOD, e);
}

static const char *fetch_reason(int rc, const struct fetch *f, int *cache)
{
	*cache = 1;
	if (atomic_load(&f->r->stopping)) {
		*cache = 0;
		return R_STOPPING;
	}
	if (f->timed_out || rc == -ETIME)
		return R_TIMEOUT;
	switch (rc) {
	case -ENOENT: return R_NOT_FOUND;
	case -ECONNREFUSED:
	case -EHOSTUNREACH:
	case -ENETUNREACH:
	case -ECONNRESET: return R_UNREACHABLE;
	case -EFBIG: return R_TOO_BIG;
	case -ENOMEM: *cache = 0; return R_STORE;
	default: return R_FAILED;
	}
}

static int try_debuginfod(struct resolver *r, const char *bid, struct dstore_entry *e,
			  const char **reason, int *cache)
{
	struct fetch f = {r, 0, 0, 0};
	debuginfod_client *c = NULL;
	char *path = NULL;
	int64_t t0;
	int fd, err;

	*cache = 0;
	if (slot_take(r, &c) != 0) {
		*reason = R_STOPPING;
		return RESOLVER_MISSING;
	}
	if (!c)
		c = client_new();
	t0 = clock_mono_ms();
	f.deadline_ms = t0 + (int64_t)r->timeout_s * 1000;
	fd = -ENOMEM;
	if (c) {
		debuginfod_set_user_data(c, &f);
		fd = debuginfod_find_debuginfo(c, (const unsigned char *)bid, 0, &path);
		debuginfod_set_user_data(c, NULL);
	}
	slot_give(r, c, clock_mono_ms() - t0, fd >= 0);
	err = fd < 0 ? fd : take_fetched(r, fd, path, bid, e);
	if (fd >= 0)
		close(fd);
	free(path);
	if (fd < 0) {
		*reason = fetch_reason(fd, &f, cache);
		if (f.cancelled)
			drop_client_miss(r, bid);
		log_msg(FS_LOG_INFO, "resolver: debuginfod %s: %s (%s)", bid, err_str(fd), *reason);
		return RESOLVER_MISSING;
	}
	if (err) {
		log_msg(FS_LOG_WARN, "resolver: debuginfod %s: %s", bid, err_str(err));
		pthread_mutex_lock(&r->lock);
		r->st.fetch_failures++;
		pthread_mutex_unlock(&r->lock);
		*cache = err != -ENOMEM && err != -ENOSPC && err != -EIO;
		*reason = *cache ? R_BAD_FILE : R_STORE;
		return RESOLVER_MISSING;
	}
	return RESOLVER_FOUND;
}

/* ---- peers ---- */

/* Count one round's ANSWERS and leave the peers that did not answer out for a while. */
static void peers_account(struct resolver *r, const enum peerfetch_answer *answers)
{
	int64_t now = clock_mono_ms();
	int asked = 0;

	pthread_mutex_lock(&r->lock);
	for (size_t i = 0; i < r->npeers; i++) {
		switch (answers[i]) {
		case PEERFETCH_SKIPPED: r->st.peer_skipped++; continue;
		case PEERFETCH_HIT: r->st.peer_hits++; break;
		case PEERFETCH_MISS: r->st.peer_misses++; break;
		case PEERFETCH_ERROR:
			r->st.peer_errors++;
			r->peer_down_until[i] = now + RESOLVER_PEER_RETRY_S * 1000LL;
			break;
		case PEERFETCH_TOO_BIG: r->st.peer_errors++; break; /* the peer itself is fine */
		case PEERFETCH_DROPPED: break;
		}
		r->st.peer_requests++;
		asked = 1;
	}
	r->st.peer_fetches += (uint64_t)asked;
	pthread_mutex_unlock(&r->lock);
}

/* One round over the peers. 1: found, *E filled; 0: not found, *ALL_ASKED says whether every
 * peer answered (a miss is then final until an upload somewhere), *WHY (else NULL) that a peer
 * had a file but it was too big or refused by the store; a negative errno when this side
 * failed (memory, disk). */
static int try_peers(struct resolver *r, const char *bid, struct dstore_entry *e, int *all_asked,
		     const char **why)
{
	struct peerfetch_opts o = {.urls = (const char *const *)r->peers,
				   .npeers = r->npeers,
				   .token = r->peer_token,
				   .tmp_dir = dstore_tmp_dir(r->store),
				   .max_bytes = r->peer_max_bytes,
				   .timeout_ms = r->timeout_s * 1000,
				   .stall_ms = r->peer_stall_ms,
				   .stop = &r->stopping};
	enum peerfetch_answer answers[PEERFETCH_MAX_PEERS];
	int ask[PEERFETCH_MAX_PEERS], nask = 0, found = 0, err;
	char tmp[PATH_MAX];
	int64_t now = clock_mono_ms();

	*why = NULL;
	pthread_mutex_lock(&r->lock);
	for (size_t i = 0; i < r->npeers; i++) {
		ask[i] = now >= r->peer_down_until[i];
		answers[i] = PEERFETCH_SKIPPED;
		nask += ask[i];
	}
	pthread_mutex_unlock(&r->lock);
	if (nask)
		found = peerfetch_get(&o, bid, ask, tmp, answers);
	if (found < 0) {
		log_msg(FS_LOG_WARN, "resolver: asking the peers for %s: %s", bid, err_str(found));
		return found;
	}
	peers_account(r, answers);
	*all_asked = 1;
	for (size_t i = 0; i < r->npeers; i++)
		if (answers[i] == PEERFETCH_TOO_BIG)
			*why = R_PEER_TOO_BIG;
		else if (answers[i] != PEERFETCH_HIT && answers[i] != PEERFETCH_MISS)
			*all_asked = 0;
	if (!found)
		return 0;
	err = store_tmp(r, tmp, bid, DSTORE_SRC_PEER, e);
	if (!err)
		return 1;
	log_msg(FS_LOG_WARN, "resolver: file of %s from a peer: %s", bid, err_str(err));
	if (err == -ENOMEM || err == -ENOSPC || err == -EIO)
		return err;
	*why = R_PEER_BAD_FILE;
	return 0;
}

/* ---- jobs ---- */

static int job_work(struct resolver *r, const char *bid, struct dstore_entry *e,
		    const char **reason, int *cache)
{
	*cache = 0;
	/* the store may have it by now: an upload, or a job that just finished */
	if (dstore_get(r->store, bid, e) == 0)
		return RESOLVER_FOUND;
	if (try_local(r, bid, e)) {
		pthread_mutex_lock(&r->lock);
		r->st.local_hits++;
		pthread_mutex_unlock(&r->lock);
		return RESOLVER_FOUND;
	}
	if (r->npeers) {
		const char *why = NULL;
		int all = 0, got = try_peers(r, bid, e, &all, &why);

		if (got > 0)
			return RESOLVER_FOUND;
		if (got < 0) {
			*reason = R_STORE; /* ours, not the peers': not remembered */
			return RESOLVER_MISSING;
		}
		if (!r->urls) {
			*reason = why ? why : all ? R_PEERS_NOT_FOUND : R_PEERS_DOWN;
			*cache = 1;
			return RESOLVER_MISSING;
		}
	}
	if (!r->urls) {
		*reason = R_NOWHERE;
		*cache = 1;
		return RESOLVER_MISSING;
	}
	return try_debuginfod(r, bid, e, reason, cache);
}

static void *job_main(void *arg)
{
	struct job *j = arg;
	struct resolver *r = j->r;
	struct dstore_entry e;
	const char *reason = NULL;
	int cache, st;

	st = job_work(r, j->bid, &e, &reason, &cache);
	pthread_mutex_lock(&r->lock);
	j->status = st;
	j->reason = reason;
	if (st == RESOLVER_FOUND)
		j->e = e;
	j->done = 1;
	for (struct job **pp = &r->jobs; *pp; pp = &(*pp)->next)
		if (*pp == j) {
			*pp = j->next;
			break;
		}
	r->njobs--;
	if (st == RESOLVER_MISSING && cache)
		neg_insert_locked(r, j->bid, reason,
				  r->npeers && r->peer_ttl_s < r->ttl_s ? r->peer_ttl_s : r->ttl_s);
	j->next = r->zombies; /* the thread's reference goes with it, dropped once joined */
	r->zombies = j;
	pthread_cond_broadcast(&r->cond);
	pthread_mutex_unlock(&r->lock);
	return NULL;
}

static void job_unref_locked(struct job *j)
{
	if (--j->refs == 0)
		free(j);
}

/* Jobs in flight started for CLIENT. */
static int client_jobs_locked(struct resolver *r, const char *client)
{
	int n = 0;

	for (struct job *j = r->jobs; j; j = j->next)
		n += !strcmp(j->client, client);
	return n;
}

static int job_start_locked(struct resolver *r, const char *client, const char *bid,
			    struct job **out, const char **reason)
{
	pthread_attr_t attr;
	struct job *j;
	int err;

	if (r->njobs >= RESOLVER_MAX_JOBS) {
		*reason = R_BUSY;
		return -EAGAIN;
	}
	if (client && client_jobs_locked(r, client) >= RESOLVER_JOBS_PER_CLIENT) {
		*reason = R_BUSY_CLIENT;
		return -EAGAIN;
	}
	j = calloc(1, sizeof(*j));
	if (!j)
		return -ENOMEM;
	j->r = r;
	j->refs = 1;
	memcpy(j->bid, bid, strlen(bid) + 1);
	if (client)
		snprintf(j->client, sizeof(j->client), "%s", client);
	pthread_attr_init(&attr);
	pthread_attr_setstacksize(&attr, JOB_STACK);
	err = pthread_create(&j->thread, &attr, job_main, j);
	pthread_attr_destroy(&attr);
	if (err) {
		free(j);
		return -err;
	}
	j->next = r->jobs;
	r->jobs = j;
	r->njobs++;
	*out = j;
	return 0;
}

/* Join the threads of finished jobs (outside the lock: joining waits for the thread's exit). */
static void reap(struct resolver *r)
{
	struct job *list;

	pthread_mutex_lock(&r->lock);
	list = r->zombies;
	r->zombies = NULL;
	pthread_mutex_unlock(&r->lock);
	for (struct job *j = list; j; j = j->next)
		pthread_join(j->thread, NULL);
	pthread_mutex_lock(&r->lock);
	while (list) {
		struct job *j = list;

		list = j->next;
		job_unref_locked(j);
	}
	pthread_mutex_unlock(&r->lock);
}

static void deadline_ts(int wait_ms, struct timespec *ts)
{
	clock_gettime(CLOCK_MONOTONIC, ts);
	ts->tv_sec += wait_ms / 1000;
	ts->tv_nsec += (long)(wait_ms % 1000) * 1000000;
	if (ts->tv_nsec >= 1000000000) {
		ts->tv_sec++;
		ts->tv_nsec -= 1000000000;
	}
}

int resolver_resolve(struct resolver *r, const char *build_id, int wait_ms, struct dstore_entry *e,
		     const char **reason)
{
	return resolver_resolve_as(r, NULL, build_id, wait_ms, e, reason);
}

int resolver_resolve_as(struct resolver *r, const char *client, const char *build_id, int wait_ms,
			struct dstore_entry *e, const char **reason)
{
	const char *why = NULL;
	char bid[BUILDID_HEX_MAX];
	struct dstore_entry scratch;
	struct timespec until;
	struct job *j = NULL;
	struct neg *n;
	int st, err;

	if (reason)
		*reason = NULL;
	if (!e)
		e = &scratch;
	err = buildid_normalize(build_id, BUILDID_WHOLE, bid);
	if (err)
		return err;
	reap(r);
	if (dstore_get(r->store, bid, e) == 0) {
		pthread_mutex_lock(&r->lock);
		r->st.store_hits++;
		pthread_mutex_unlock(&r->lock);
		return RESOLVER_FOUND;
	}
	deadline_ts(wait_ms > 0 ? wait_ms : 0, &until);
	pthread_mutex_lock(&r->lock);
	n = neg_find_locked(r, bid, time(NULL));
	if (n) {
		r->st.negative_hits++;
		if (reason)
			*reason = n->reason;
		pthread_mutex_unlock(&r->lock);
		return RESOLVER_MISSING;
	}
	for (j = r->jobs; j && strcmp(j->bid, bid) != 0; j = j->next)
		;
	if (!j && (err = job_start_locked(r, client, bid, &j, &why)) != 0) {
		if (err == -EAGAIN)
			r->st.busy++;
		pthread_mutex_unlock(&r->lock);
		if (reason)
			*reason = why;
		if (err != -EAGAIN)
			log_msg(FS_LOG_WARN, "resolver: cannot start resolving %s: %s", bid,
				err_str(err));
		return err;
	}
	j->refs++;
	while (!j->done && wait_ms > 0)
		if (pthread_cond_timedwait(&r->cond, &r->lock, &until) == ETIMEDOUT)
			break;
	if (j->done) {
		st = j->status;
		if (st == RESOLVER_FOUND)
			*e = j->e;
		else if (reason)
			*reason = j->reason;
	} else {
		st = RESOLVER_PENDING;
		if (reason)
			*reason = R_PENDING;
	}
	job_unref_locked(j);
	pthread_mutex_unlock(&r->lock);
	return st;
}

void resolver_stats(struct resolver *r, struct resolver_stats *st)
{
	pthread_mutex_lock(&r->lock);
	*st = r->st;
	pthread_mutex_unlock(&r->lock);
}

/* ---- life cycle ---- */

/* The client's own negative cache would outlive ours: make it last as long (only in a cache dir
 * of our own; an operator's shared one is left as configured). */
static void set_client_miss_ttl(const char *dir, int ttl_s)
{
	char path[PATH_MAX], buf[32];
	int fd, n;

	if (snprintf(path, sizeof(path), "%s/cache_miss_s", dir) >= PATH_MAX)
		return;
	fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
	if (fd < 0)
		return;
	n = snprintf(buf, sizeof(buf), "%d\n", ttl_s);
	if (write(fd, buf, (size_t)n) != n)
		log_msg(FS_LOG_WARN, "resolver: writing %s failed", path);
	close(fd);
}

/* libdebuginfod reads these with getenv() on every query, so they are set here, before any
 * thread of ours exists (and, per the header, before the caller starts any). */
static int setup_debuginfod(struct resolver *r)
{
	const char *cache = getenv(DEBUGINFOD_CACHE_PATH_ENV_VAR);
	char ours[PATH_MAX], num[16];
	int own, err;

	if (snprintf(ours, sizeof(ours), "%s/debuginfod-client", dstore_data_dir(r->store)) >=
	    PATH_MAX)
		return -ENAMETOOLONG;
	own = !cache || !cache[0] || strcmp(cache, ours) == 0;
	if (snprintf(r->cache_dir, sizeof(r->cache_dir), "%s", own ? ours : cache) >= PATH_MAX)
		return -ENAMETOOLONG;
	err = fsutil_mkdir_p(r->cache_dir, 0700);
	if (err)
		return err;
	if (own) {
		set_client_miss_ttl(r->cache_dir, r->ttl_s);
		if (setenv(DEBUGINFOD_CACHE_PATH_ENV_VAR, r->cache_dir, 1) != 0)
			return -errno;
	}
	snprintf(num, sizeof(num), "%d", r->timeout_s);
	if (setenv(DEBUGINFOD_URLS_ENV_VAR, r->urls, 1) != 0 ||
	    setenv(DEBUGINFOD_TIMEOUT_ENV_VAR, num, 1) != 0)
		return -errno;
	return 0;
}

static int copy_peers(struct resolver *r, const struct resolver_opts *o)
{
	size_t n = 0;

	while (o->peers && o->peers[n])
		n++;
	if (n > PEERFETCH_MAX_PEERS)
		return -E2BIG;
	r->peers = calloc(n + 1, sizeof(*r->peers));
	if (!r->peers)
		return -ENOMEM;
	for (size_t i = 0; i < n; i++)
		if (!(r->peers[i] = strdup(o->peers[i])))
			return -ENOMEM;
	r->npeers = n;
	if (o->peer_token && !(r->peer_token = strdup(o->peer_token)))
		return -ENOMEM;
	r->peer_max_bytes = o->peer_max_bytes;
	r->peer_stall_ms = o->peer_stall_ms;
	r->peer_ttl_s =
	    o->peer_negative_ttl_s > 0 ? o->peer_negative_ttl_s : DEFAULT_PEER_NEG_TTL_S;
	return 0;
}

static int copy_opts(struct resolver *r, const struct resolver_opts *o)
{
	static const char *const def_dirs[] = {"/usr/lib/debug", NULL};
	const char *const *dirs = o->debug_dirs ? o->debug_dirs : def_dirs;
	const char *u = o->debuginfod_urls;
	size_t n = 0;

	while (dirs[n])
		n++;
	r->dirs = calloc(n + 1, sizeof(*r->dirs));
	if (!r->dirs)
		return -ENOMEM;
	for (size_t i = 0; i < n; i++)
		if (!(r->dirs[i] = strdup(dirs[i])))
			return -ENOMEM;
	while (u && *u == ' ')
		u++;
	if (u && *u && !(r->urls = strdup(u)))
		return -ENOMEM;
	r->max_fetches = o->max_fetches > 0 ? o->max_fetches : 4;
	if (r->max_fetches > RESOLVER_MAX_JOBS)
		r->max_fetches = RESOLVER_MAX_JOBS;
	r->timeout_s = o->fetch_timeout_s > 0 ? o->fetch_timeout_s : 30;
	r->ttl_s = o->negative_ttl_s > 0 ? o->negative_ttl_s : 600;
	return copy_peers(r, o);
}

int resolver_new(const struct resolver_opts *opts, struct resolver **out)
{
	pthread_condattr_t ca;
	struct resolver *r;
	int err;

	*out = NULL;
	if (!opts || !opts->store)
		return -EINVAL;
	r = calloc(1, sizeof(*r));
	if (!r)
		return -ENOMEM;
	pthread_mutex_init(&r->lock, NULL);
	pthread_condattr_init(&ca);
	pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
	pthread_cond_init(&r->cond, &ca);
	pthread_condattr_destroy(&ca);
	r->store = opts->store;
	err = copy_opts(r, opts);
	if (!err && !(r->idle = calloc((size_t)r->max_fetches, sizeof(*r->idle))))
		err = -ENOMEM;
	if (!err && r->urls)
		err = setup_debuginfod(r);
	if (err) {
		resolver_free(r);
		return err;
	}
	*out = r;
	return 0;
}

void resolver_free(struct resolver *r)
{
	if (!r)
		return;
	atomic_store(&r->stopping, 1);
	pthread_mutex_lock(&r->lock);
	pthread_cond_broadcast(&r->cond);
	while (r->njobs > 0)
		pthread_cond_wait(&r->cond, &r->lock);
	pthread_mutex_unlock(&r->lock);
	reap(r);
	for (int i = 0; i < r->nidle; i++)
		debuginfod_end(r->idle[i]);
	free(r->idle);
	pthread_mutex_lock(&r->lock);
	neg_sweep_locked(r, (time_t)INT64_MAX);
	pthread_mutex_unlock(&r->lock);
	for (size_t i = 0; r->dirs && r->dirs[i]; i++)
		free(r->dirs[i]);
	free(r->dirs);
	for (size_t i = 0; r->peers && r->peers[i]; i++)
		free(r->peers[i]);
	free(r->peers);
	free(r->peer_token);
	free(r->urls);
	pthread_cond_destroy(&r->cond);
	pthread_mutex_destroy(&r->lock);
	free(r);
}
