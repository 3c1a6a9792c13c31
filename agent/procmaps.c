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

#include "lib/log.h"
#include "lib/vec.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define PROCMAPS_BUCKETS     4096
#define PROCMAPS_DEFAULT_MAX 16384
#define PROCMAPS_MAX_MAPS    65536 /* executable mappings per process */
#define PROCMAPS_MAX_FILES   16384
/* At most one re-read per second on misses: most misses are garbage return addresses from
 * code without frame pointers, which no re-read resolves; exec is handled by its notice. */
#define PROCMAPS_REREAD_NS (1000ULL * 1000000)

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

struct procmaps {
	struct pm_proc *b[PROCMAPS_BUCKETS];
	size_t n, max;
	struct smap *files;
	struct smap *paths;
	char vdso_bid[BUILDID_HEX_MAX];
	struct procmaps_stats st;
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

int procmaps_new(size_t max_procs, struct procmaps **out)
{
	struct procmaps *pm = calloc(1, sizeof(*pm));
	int err;

	if (!pm)
		return -ENOMEM;
	pm->max = max_procs ? max_procs : PROCMAPS_DEFAULT_MAX;
	err = smap_new(PROCMAPS_MAX_FILES, &pm->files) ?: smap_new(PROCMAPS_MAX_FILES, &pm->paths);
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

static void put_capped(struct smap *m, const char *key, const char *str)
{
	if (smap_put(m, key, 0, str) == -E2BIG) {
		smap_clear(m); /* a cache: start over rather than grow */
		(void)!smap_put(m, key, 0, str);
	}
}

static int open_file(uint32_t pid, const struct pm_entry *e)
{
	struct mapfile_id id = {.start = e->m.start,
				.end = e->m.end,
				.path = e->m.path,
				.dev_major = (uint32_t)(e->dev >> 32),
				.dev_minor = (uint32_t)e->dev,
				.ino = e->ino};

	return mapfile_open(pid, &id);
}

/* Fill E's build ID: the file cache, else the file itself. */
static void entry_buildid(struct procmaps *pm, uint32_t pid, struct pm_entry *e)
{
	const struct smap_ent *c;
	char key[48];
	int fd;

	if (e->bid_done)
		return;
	e->bid_done = true;
	e->bid[0] = 0;
	if (e->m.special) {
		if (!strcmp(e->m.path, "[vdso]"))
			memcpy(e->bid, pm->vdso_bid, sizeof(e->bid));
		return;
	}
	snprintf(key, sizeof(key), "%" PRIx64 ":%" PRIu64, e->dev, e->ino);
	c = smap_get(pm->files, key);
	if (c) {
		snprintf(e->bid, sizeof(e->bid), "%s", c->str ? c->str : "");
		return;
	}
	pm->st.buildid_reads++;
	fd = open_file(pid, e);
	if (fd == -ENODEV || fd == -ESTALE)
		pm->st.files_refused++;
	if (fd < 0 || elfid_from_fd(fd, e->bid) != 0) {
		pm->st.buildid_errors++;
		e->bid[0] = 0;
	}
	if (fd >= 0)
		close(fd);
	put_capped(pm->files, key, e->bid);
	if (e->bid[0] && !smap_get(pm->paths, e->bid))
		put_capped(pm->paths, e->bid, e->m.path);
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
	size_t lo = 0, hi = p->n;

	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;

		if (p->e[mid].m.start <= ip)
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo && ip < p->e[lo - 1].m.end ? &p->e[lo - 1] : NULL;
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
	const struct smap_ent *e = smap_get(pm->paths, hex);

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
