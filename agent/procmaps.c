/*
 * procmaps - a chained hash of processes (pid -> sorted array of executable mappings), two
 * bounded string maps (file "dev:inode" -> build ID; build ID -> a path seen for it), and the
 * agent's own vDSO build ID. Caches are bounded: past their caps the file maps start over and
 * the least recently used process is dropped.
 */
#include "agent/procmaps.h"

#include "agent/elfid.h"
#include "agent/mapfile.h"
#include "agent/smap.h"
#include "agent/vdso.h"

#include "lib/bsearch.h"
#include "lib/log.h"
#include "lib/vec.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define PROCMAPS_BUCKETS     4096
#define PROCMAPS_DEFAULT_MAX 16384
#define PROCMAPS_MAX_MAPS    65536 /* executable mappings per process */
#define PROCMAPS_MAX_FILES   16384
/* At most one re-read per second on misses: most misses are garbage return addresses from
 * code without frame pointers, which no re-read resolves; exec is handled by its notice. */
#define PROCMAPS_REREAD_NS (1000ULL * 1000000)
/* Build IDs are read by a worker thread. The sampling thread waits for a new file's answer at
 * most this long (most files answer in microseconds, so their first frames keep the build ID),
 * and not at all while the worker is stuck on an earlier file (FUSE, NFS). */
#define PROCMAPS_BID_WAIT_NS  (20ULL * 1000000)
#define PROCMAPS_BID_STUCK_NS (1000ULL * 1000000)
#define PROCMAPS_BID_QUEUE    1024
/* Another worker is started when all are stuck, up to this many: one hung file does not keep
 * every later file's build ID unknown */
#define PROCMAPS_BID_WORKERS 4
/* procmaps_free() waits this long for a worker stuck in a read, then leaves it behind */
#define PROCMAPS_BID_JOIN_S 2

struct pm_entry {
	struct pm_mapping m;
	uint64_t dev, ino;
	bool bid_done;
	char bid[BUILDID_HEX_MAX];
};

struct pm_proc {
	struct pm_proc *next;
	uint32_t pid;
	bool read, stale, learned;
	uint64_t read_ns, used_ns, exit_ns;
	struct pm_entry *e;
	size_t n, cap;
};

/* One file whose build ID the worker reads; then its answer, on the done list. */
struct bid_job {
	struct bid_job *next;
	uint32_t pid;
	struct mapfile_id id;
	char *path; /* id.path's copy */
	char key[48];
	int err; /* 0, or from mapfile_open()/elfid_from_fd() */
	char bid[BUILDID_HEX_MAX];
};

/* Shared by the sampling thread and the workers (detached); freed by the last of them (a
 * worker may be left behind, stuck in a read, when the agent exits). */
struct bidq {
	pthread_mutex_t mu;
	pthread_cond_t job_cv, done_cv;
	struct bid_job *jobs, **jobs_tail, *done;
	size_t queued;
	bool stop;
	int nworkers, started, exited, idle;
	uint64_t busy_since_ns[PROCMAPS_BID_WORKERS]; /* by worker; 0: not on a file */
	int refs;
};

struct procmaps {
	struct pm_proc *b[PROCMAPS_BUCKETS];
	size_t n, max;
	struct smap *files;
	struct smap *paths;
	char vdso_bid[BUILDID_HEX_MAX];
	struct procmaps_stats st;
	struct bidq *q;
};

static void proc_clear(struct pm_proc *p)
{
	for (size_t i = 0; i < p->n; i++)
		free((char *)p->e[i].m.path);
	p->n = 0;
}

static void proc_free(struct pm_proc *p)
{
	proc_clear(p);
	free(p->e);
	free(p);
}

static void self_vdso(struct procmaps *pm)
{
	uint64_t s, e;

	if (vdso_self_range(&s, &e) ||
	    elfid_from_mem((const void *)(uintptr_t)s, e - s, pm->vdso_bid))
		pm->vdso_bid[0] = 0;
}

static uint64_t mono_now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ULL + (uint64_t)ts.tv_nsec;
}

static struct timespec mono_at(uint64_t ns)
{
	return (struct timespec){.tv_sec = (time_t)(ns / 1000000000ULL),
				 .tv_nsec = (long)(ns % 1000000000ULL)};
}

static void jobs_free(struct bid_job *j)
{
	while (j) {
		struct bid_job *next = j->next;

		free(j->path);
		free(j);
		j = next;
	}
}

static void bidq_unref(struct bidq *q)
{
	bool last;

	pthread_mutex_lock(&q->mu);
	last = --q->refs == 0;
	pthread_mutex_unlock(&q->mu);
	if (!last)
		return;
	jobs_free(q->jobs);
	jobs_free(q->done);
	pthread_cond_destroy(&q->job_cv);
	pthread_cond_destroy(&q->done_cv);
	pthread_mutex_destroy(&q->mu);
	free(q);
}

static void job_run(struct bid_job *j)
{
	int fd = mapfile_open(j->pid, &j->id);

	j->err = fd < 0 ? fd : elfid_from_fd(fd, j->bid);
	if (j->err)
		j->bid[0] = 0;
	if (fd >= 0)
		close(fd);
}

/* Every worker has been on one file for PROCMAPS_BID_STUCK_NS (with Q->mu held). */
static bool bidq_stuck(const struct bidq *q, uint64_t now)
{
	if (q->idle || q->started < q->nworkers)
		return false;
	for (int i = 0; i < q->started; i++)
		if (!q->busy_since_ns[i] || now - q->busy_since_ns[i] < PROCMAPS_BID_STUCK_NS)
			return false;
	return true;
}

/* A worker: opens and reads files in the order asked, the lock dropped while it does. */
static void *bid_worker(void *arg)
{
	struct bidq *q = arg;
	int me;

	pthread_mutex_lock(&q->mu);
	me = q->started++;
	for (;;) {
		struct bid_job *j;

		q->idle++;
		while (!q->jobs && !q->stop)
			pthread_cond_wait(&q->job_cv, &q->mu);
		q->idle--;
		if (q->stop)
			break;
		j = q->jobs;
		q->jobs = j->next;
		if (!q->jobs)
			q->jobs_tail = &q->jobs;
		q->busy_since_ns[me] = mono_now();
		pthread_mutex_unlock(&q->mu);
		job_run(j);
		pthread_mutex_lock(&q->mu);
		q->busy_since_ns[me] = 0;
		q->queued--;
		j->next = q->done;
		q->done = j;
		pthread_cond_broadcast(&q->done_cv);
	}
	q->exited++;
	pthread_cond_broadcast(&q->done_cv);
	pthread_mutex_unlock(&q->mu);
	bidq_unref(q);
	return NULL;
}

/* Start one more worker, detached, with all signals blocked (they stay with the agent's own
 * threads). */
static int bidq_spawn(struct bidq *q)
{
	pthread_attr_t attr;
	pthread_t t;
	sigset_t all, old;
	int err;

	pthread_mutex_lock(&q->mu);
	q->nworkers++;
	q->refs++;
	pthread_mutex_unlock(&q->mu);
	pthread_attr_init(&attr);
	pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
	sigfillset(&all);
	pthread_sigmask(SIG_SETMASK, &all, &old);
	err = -pthread_create(&t, &attr, bid_worker, q);
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	pthread_attr_destroy(&attr);
	if (err) {
		pthread_mutex_lock(&q->mu);
		q->nworkers--;
		q->refs--;
		pthread_mutex_unlock(&q->mu);
	}
	return err;
}

static int bidq_start(struct procmaps *pm)
{
	struct bidq *q = calloc(1, sizeof(*q));
	pthread_condattr_t ca;

	if (!q)
		return -ENOMEM;
	pthread_mutex_init(&q->mu, NULL);
	pthread_condattr_init(&ca);
	pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
	pthread_cond_init(&q->job_cv, &ca);
	pthread_cond_init(&q->done_cv, &ca);
	pthread_condattr_destroy(&ca);
	q->jobs_tail = &q->jobs;
	q->refs = 1;
	pm->q = q;
	return bidq_spawn(q);
}

/* Stop the workers: wait PROCMAPS_BID_JOIN_S at most for them to end, else leave them behind
 * (stuck in a read that never returns) with their share of the queue; the process exit ends
 * them. */
static void bidq_stop(struct procmaps *pm)
{
	struct bidq *q = pm->q;
	struct timespec until = mono_at(mono_now() + PROCMAPS_BID_JOIN_S * 1000000000ULL);

	if (!q)
		return;
	pthread_mutex_lock(&q->mu);
	q->stop = true;
	pthread_cond_broadcast(&q->job_cv);
	while (q->exited < q->nworkers &&
	       pthread_cond_timedwait(&q->done_cv, &q->mu, &until) != ETIMEDOUT)
		;
	pthread_mutex_unlock(&q->mu);
	bidq_unref(q);
	pm->q = NULL;
}

int procmaps_new(size_t max_procs, struct procmaps **out)
{
	struct procmaps *pm = calloc(1, sizeof(*pm));
	int err;

	if (!pm)
		return -ENOMEM;
	pm->max = max_procs ? max_procs : PROCMAPS_DEFAULT_MAX;
	err = smap_new(PROCMAPS_MAX_FILES, &pm->files) ?: smap_new(PROCMAPS_MAX_FILES, &pm->paths) ?:
	      bidq_start(pm);
	if (err) {
		procmaps_free(pm);
		return err;
	}
	self_vdso(pm);
	*out = pm;
	return 0;
}

void procmaps_free(struct procmaps *pm)
{
	if (!pm)
		return;
	bidq_stop(pm);
	for (size_t i = 0; i < PROCMAPS_BUCKETS; i++) {
		struct pm_proc *p = pm->b[i], *next;

		for (; p; p = next) {
			next = p->next;
			proc_free(p);
		}
	}
	smap_free(pm->files);
	smap_free(pm->paths);
	free(pm);
}

/* NUM 1 marks a file whose build ID is being read; 0 one read (STR the build ID, "" none). */
static void put_capped(struct smap *m, const char *key, uint64_t num, const char *str)
{
	if (smap_put(m, key, num, str) == -E2BIG) {
		smap_clear(m); /* a cache: start over rather than grow */
		(void)!smap_put(m, key, num, str);
	}
}

/* Take the workers' answers into the caches; one more worker when files wait behind stuck
 * ones. */
static void bid_drain(struct procmaps *pm)
{
	struct bidq *q = pm->q;
	struct bid_job *done;
	bool more;

	pthread_mutex_lock(&q->mu);
	done = q->done;
	q->done = NULL;
	more = q->jobs && q->nworkers < PROCMAPS_BID_WORKERS && bidq_stuck(q, mono_now());
	pthread_mutex_unlock(&q->mu);
	if (more && !bidq_spawn(q))
		pm->st.buildid_workers_added++;
	for (struct bid_job *j = done; j; j = j->next) {
		if (j->err == -ENODEV || j->err == -ESTALE)
			pm->st.files_refused++;
		if (j->err)
			pm->st.buildid_errors++;
		put_capped(pm->files, j->key, 0, j->bid);
		if (j->bid[0] && !smap_get(pm->paths, j->bid))
			put_capped(pm->paths, j->bid, 0, j->path);
	}
	jobs_free(done);
}

/* Ask the workers for E's build ID. -EAGAIN when the queue
 * is full (the workers are stuck), -ENOMEM. */
static int bid_ask(struct procmaps *pm, uint32_t pid, const struct pm_entry *e, const char *key)
{
	struct bidq *q = pm->q;
	struct bid_job *j = calloc(1, sizeof(*j));

	if (!j || !(j->path = strdup(e->m.path))) {
		free(j);
		return -ENOMEM;
	}
	j->pid = pid;
	j->id = (struct mapfile_id){.start = e->m.start,
				    .end = e->m.end,
				    .path = j->path,
				    .dev_major = (uint32_t)(e->dev >> 32),
				    .dev_minor = (uint32_t)e->dev,
				    .ino = e->ino};
	snprintf(j->key, sizeof(j->key), "%s", key);
	pthread_mutex_lock(&q->mu);
	if (q->queued >= PROCMAPS_BID_QUEUE) {
		pthread_mutex_unlock(&q->mu);
		jobs_free(j);
		pm->st.buildid_queue_full++;
		return -EAGAIN;
	}
	*q->jobs_tail = j;
	q->jobs_tail = &j->next;
	q->queued++;
	pthread_cond_signal(&q->job_cv);
	pthread_mutex_unlock(&q->mu);
	pm->st.buildid_reads++;
	put_capped(pm->files, key, 1, NULL);
	return 0;
}

/* E's build ID from the file cache: false when the file was not read yet. */
static bool bid_cached(struct procmaps *pm, const char *key, struct pm_entry *e)
{
	const struct smap_ent *c = smap_get(pm->files, key);

	if (!c || c->num)
		return false;
	snprintf(e->bid, sizeof(e->bid), "%s", c->str ? c->str : "");
	e->bid_done = true;
	return true;
}

/* Wait at most PROCMAPS_BID_WAIT_NS for E's build ID (KEY), and not at all while every worker
 * has been on one file for PROCMAPS_BID_STUCK_NS. True when it came. */
static bool bid_wait(struct procmaps *pm, const char *key, struct pm_entry *e)
{
	struct bidq *q = pm->q;
	uint64_t now = mono_now();
	struct timespec until = mono_at(now + PROCMAPS_BID_WAIT_NS);
	bool more;

	for (;;) {
		bid_drain(pm);
		if (bid_cached(pm, key, e))
			return true;
		pthread_mutex_lock(&q->mu);
		more = !q->done && !bidq_stuck(q, now) && q->exited < q->nworkers;
		if (more && pthread_cond_timedwait(&q->done_cv, &q->mu, &until) == ETIMEDOUT)
			more = false;
		pthread_mutex_unlock(&q->mu);
		if (!more) {
			bid_drain(pm);
			return bid_cached(pm, key, e);
		}
		now = mono_now();
	}
}

/* Fill E's build ID: the file cache, else ask the worker and wait a little for its answer.
 * Until it comes the build ID stays "" and E is looked at again on its next lookup. */
static void entry_buildid(struct procmaps *pm, uint32_t pid, struct pm_entry *e)
{
	char key[48];

	if (e->bid_done)
		return;
	e->bid[0] = 0;
	if (e->m.special) {
		e->bid_done = true;
		if (!strcmp(e->m.path, "[vdso]"))
			memcpy(e->bid, pm->vdso_bid, sizeof(e->bid));
		return;
	}
	snprintf(key, sizeof(key), "%" PRIx64 ":%" PRIu64, e->dev, e->ino);
	bid_drain(pm);
	if (bid_cached(pm, key, e) || smap_get(pm->files, key))
		return; /* known, or asked already */
	if (bid_ask(pm, pid, e, key))
		return;
	if (!bid_wait(pm, key, e))
		pm->st.buildid_late++;
}

/* Parse a number in BASE at *P and the separator SEP after it (0: none); advance *P. */
static bool num(char **p, int base, char sep, unsigned long long *v)
{
	char *end;

	*v = strtoull(*p, &end, base);
	if (end == *p || (sep && *end != sep))
		return false;
	*p = end + (sep != 0);
	return true;
}

/* One line of /proc/PID/maps ("start-end perms offset maj:min inode   path") into E if it is
 * executable. 1 if kept, 0 if not, negative on error. By hand: sscanf() was most of the
 * agent's CPU time on busy hosts. */
static int parse_line(char *line, struct pm_entry *e)
{
	unsigned long long start, end, off, maj, min, ino;
	char *p = line, *path;
	size_t len;

	if (!num(&p, 16, '-', &start) || !num(&p, 16, ' ', &end) || strlen(p) < 5 || p[4] != ' ')
		return 0;
	if (p[2] != 'x' || end <= start)
		return 0;
	p += 5;
	if (!num(&p, 16, ' ', &off) || !num(&p, 16, ':', &maj) || !num(&p, 16, ' ', &min) ||
	    !num(&p, 10, 0, &ino))
		return 0;
	path = p + strspn(p, " ");
	len = strcspn(path, "\n");
	path[len] = 0;
	*e = (struct pm_entry){.dev = (maj << 32) | min, .ino = ino};
	e->m.start = start;
	e->m.end = end;
	e->m.offset = off;
	e->m.build_id = e->bid;
	if (!len) {
		path = "[anon]"; /* JIT code and the like */
		e->m.special = true;
	} else if (path[0] == '[' || !strncmp(path, "/memfd:", 7) || !ino) {
		e->m.special = true;
	}
	e->m.path = strdup(path);
	return e->m.path ? 1 : -ENOMEM;
}

static int proc_read(struct procmaps *pm, struct pm_proc *p, uint64_t now_ns)
{
	char path[64], line[PATH_MAX + 128];
	struct pm_entry e;
	FILE *f;
	int err = 0, kept;

	p->read_ns = now_ns;
	snprintf(path, sizeof(path), "/proc/%u/maps", p->pid);
	pm->st.reads++;
	f = fopen(path, "re");
	if (!f) {
		err = -errno;
		pm->st.read_errors++;
		/* gone: keep what we had for queued samples, and do not try again */
		p->read = true;
		p->stale = false;
		if (!p->exit_ns)
			p->exit_ns = now_ns;
		return err;
	}
	proc_clear(p);
	p->read = true;
	p->stale = false;
	while (fgets(line, sizeof(line), f)) {
		if (!strchr(line, '\n') && !feof(f)) {
			int c;

			while ((c = fgetc(f)) != EOF && c != '\n')
				; /* a path longer than PATH_MAX: skip the line */
			continue;
		}
		kept = parse_line(line, &e);
		if (kept <= 0) {
			err = kept;
			if (err)
				break;
			continue;
		}
		if (p->n >= PROCMAPS_MAX_MAPS || VEC_PUSH(p->e, p->n, p->cap, e)) {
			free((char *)e.m.path);
			break;
		}
	}
	fclose(f);
	/* the entries moved when the array grew: point build_id at their own buffers again */
	for (size_t i = 0; i < p->n; i++)
		p->e[i].m.build_id = p->e[i].bid;
	return err;
}

/* Chained by hand, not a lib/u64map: processes are dropped one at a time (exit, least recently
 * used past the cap), and u64map has no deletion. */
static struct pm_proc **bucket(struct procmaps *pm, uint32_t pid)
{
	return &pm->b[(pid * 2654435761u) % PROCMAPS_BUCKETS];
}

static void evict_lru(struct procmaps *pm)
{
	struct pm_proc **victim = NULL;

	for (size_t i = 0; i < PROCMAPS_BUCKETS; i++)
		for (struct pm_proc **pp = &pm->b[i]; *pp; pp = &(*pp)->next)
			if (!victim || (*pp)->used_ns < (*victim)->used_ns)
				victim = pp;
	if (victim) {
		struct pm_proc *p = *victim;

		*victim = p->next;
		proc_free(p);
		pm->n--;
	}
}

static struct pm_proc *proc_get(struct procmaps *pm, uint32_t pid, uint64_t now_ns)
{
	struct pm_proc **head = bucket(pm, pid), *p;

	for (p = *head; p; p = p->next)
		if (p->pid == pid)
			break;
	if (!p) {
		if (pm->n >= pm->max)
			evict_lru(pm);
		p = calloc(1, sizeof(*p));
		if (!p)
			return NULL;
		p->pid = pid;
		p->next = *head;
		*head = p;
		pm->n++;
	}
	p->used_ns = now_ns;
	return p;
}

static struct pm_entry *proc_find(struct pm_proc *p, uint64_t ip)
{
	long i = bsearch_last_le(p->e, p->n, sizeof(*p->e), offsetof(struct pm_entry, m.start),
				 sizeof(p->e->m.start), ip);

	return i >= 0 && ip < p->e[i].m.end ? &p->e[i] : NULL;
}

int procmaps_lookup(struct procmaps *pm, uint32_t pid, uint64_t ip, uint64_t now_ns,
		    const struct pm_mapping **m)
{
	struct pm_proc *p = proc_get(pm, pid, now_ns);
	struct pm_entry *e = NULL;

	if (!p)
		return -ENOMEM;
	if (!p->read || p->stale)
		(void)proc_read(pm, p, now_ns);
	else
		e = proc_find(p, ip);
	if (!e && now_ns - p->read_ns >= PROCMAPS_REREAD_NS && !p->exit_ns)
		(void)proc_read(pm, p, now_ns); /* new mappings since (dlopen, JIT) */
	if (!e)
		e = proc_find(p, ip);
	if (!e)
		return -ENOENT;
	entry_buildid(pm, pid, e);
	*m = &e->m;
	return 0;
}

void procmaps_learn(struct procmaps *pm, uint32_t pid, uint64_t now_ns)
{
	struct pm_proc *p = proc_get(pm, pid, now_ns);

	if (!p || p->learned)
		return;
	p->learned = true;
	if ((!p->read || p->stale) && proc_read(pm, p, now_ns))
		return;
	for (size_t i = 0; i < p->n; i++)
		entry_buildid(pm, pid, &p->e[i]);
}

const char *procmaps_path_of(struct procmaps *pm, const char *hex)
{
	const struct smap_ent *e;

	bid_drain(pm);
	e = smap_get(pm->paths, hex);

	return e ? e->str : NULL;
}

static struct pm_proc *proc_peek(struct procmaps *pm, uint32_t pid)
{
	struct pm_proc *p = *bucket(pm, pid);

	for (; p; p = p->next)
		if (p->pid == pid)
			return p;
	return NULL;
}

void procmaps_exec(struct procmaps *pm, uint32_t pid)
{
	struct pm_proc *p = proc_peek(pm, pid);

	if (p) {
		p->stale = true;
		p->learned = false;
		p->exit_ns = 0;
	}
}

void procmaps_exit(struct procmaps *pm, uint32_t pid, uint64_t now_ns)
{
	struct pm_proc *p = proc_peek(pm, pid);

	if (p && !p->exit_ns)
		p->exit_ns = now_ns;
}

void procmaps_expire(struct procmaps *pm, uint64_t now_ns)
{
	for (size_t i = 0; i < PROCMAPS_BUCKETS; i++) {
		struct pm_proc **pp = &pm->b[i];

		while (*pp) {
			struct pm_proc *p = *pp;

			if ((p->exit_ns && now_ns - p->exit_ns > PROCMAPS_KEEP_EXITED_NS) ||
			    now_ns - p->used_ns > PROCMAPS_KEEP_IDLE_NS) {
				*pp = p->next;
				proc_free(p);
				pm->n--;
			} else {
				pp = &p->next;
			}
		}
	}
}

void procmaps_get_stats(const struct procmaps *pm, struct procmaps_stats *st)
{
	*st = pm->st;
	st->procs = pm->n;
}
