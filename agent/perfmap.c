/*
 * perfmap - per-process tables of JIT symbols; see perfmap.h.
 *
 * A table is the file's text (owned, NUL-separated in place) and an array of entries sorted by
 * start address, then by line number; lookups find the last entry starting at or below the
 * address, walk back over the few that may overlap it, and take the latest line that covers
 * it. Processes live in a small array searched linearly (256 at most, touched once per
 * sample of JIT code).
 */
#include "agent/perfmap.h"

#include "agent/mapfile.h"

#include "lib/bsearch.h"
#include "lib/vec.h"

#include <errno.h>
#include <inttypes.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define REREAD_NS	 (1000ULL * 1000000)
#define OVERLAP_WALK	 8    /* entries looked back at for overlapping code */
#define PERFMAP_MAX_NAME 1024 /* bytes of a name kept */

struct pm_ent {
	uint64_t start, size;
	uint32_t line; /* order in the file: later lines win */
	uint32_t name; /* offset into the text */
};

struct perfmap_table {
	char *text;
	struct pm_ent *e;
	size_t n;
};

struct pm_proc {
	uint32_t pid;
	uint64_t used_ns, read_ns;
	off_t size; /* of the file when read; -1: no file */
	struct perfmap_table *t;
};

struct perfmaps {
	struct pm_proc p[PERFMAP_MAX_PROCS];
	size_t n;
	struct perfmaps_stats st;
};

static int by_start(const void *a, const void *b)
{
	const struct pm_ent *x = a, *y = b;

	if (x->start != y->start)
		return x->start < y->start ? -1 : 1;
	return x->line < y->line ? -1 : x->line > y->line;
}

/* One line "START SIZE name" (hex, hex, the rest); 0 when it is not one. */
static int parse_line(char *line, uint32_t off, struct pm_ent *e)
{
	char *end, *p = line;

	e->start = strtoull(p, &end, 16);
	if (end == p || *end != ' ')
		return 0;
	p = end + 1;
	e->size = strtoull(p, &end, 16);
	if (end == p || *end != ' ' || !e->size || e->start + e->size < e->start || !end[1])
		return 0;
	e->name = off + (uint32_t)(end + 1 - line);
	p = end + 1;
	if (strlen(p) > PERFMAP_MAX_NAME) { /* cut at a UTF-8 boundary */
		size_t k = PERFMAP_MAX_NAME;

		while (k && ((unsigned char)p[k] & 0xC0) == 0x80)
			k--;
		p[k] = '\0';
	}
	return 1;
}

void perfmap_table_free(struct perfmap_table *t)
{
	if (!t)
		return;
	free(t->text);
	free(t->e);
	free(t);
}

int perfmap_table_parse(const char *p, size_t len, struct perfmap_table **out, size_t *bad)
{
	struct perfmap_table *t = calloc(1, sizeof(*t));
	size_t cap = 0, line = 0;
	int err = 0;

	*out = NULL;
	*bad = 0;
	if (!t || len > PERFMAP_MAX_BYTES || !(t->text = malloc(len + 1))) {
		free(t);
		return t ? -E2BIG : -ENOMEM;
	}
	memcpy(t->text, p, len);
	t->text[len] = '\0';
	for (size_t off = 0; off < len && !err;) {
		char *s = t->text + off, *nl = memchr(s, '\n', len - off);
		struct pm_ent e = {.line = (uint32_t)line++};

		if (nl)
			*nl = '\0';
		if (!*s) {
			/* an empty line */
		} else if (!parse_line(s, (uint32_t)off, &e)) {
			(*bad)++;
		} else if (t->n == PERFMAP_MAX_ENTRIES) {
			err = -E2BIG;
		} else {
			err = VEC_PUSH(t->e, t->n, cap, e);
		}
		off = nl ? (size_t)(nl - t->text) + 1 : len;
	}
	if (err) {
		perfmap_table_free(t);
		return err;
	}
	qsort(t->e, t->n, sizeof(*t->e), by_start);
	*out = t;
	return 0;
}

const char *perfmap_table_lookup(const struct perfmap_table *t, uint64_t ip)
{
	long k = t ? bsearch_last_le(t->e, t->n, sizeof(*t->e), offsetof(struct pm_ent, start),
				     sizeof(t->e->start), ip)
		   : -1;
	const struct pm_ent *best = NULL;

	for (long i = k; i >= 0 && i > k - OVERLAP_WALK; i--) {
		const struct pm_ent *e = &t->e[i];

		if (ip - e->start < e->size && (!best || e->line > best->line))
			best = e;
	}
	return best ? t->text + best->name : NULL;
}

size_t perfmap_table_count(const struct perfmap_table *t)
{
	return t ? t->n : 0;
}

int perfmaps_new(struct perfmaps **out)
{
	*out = calloc(1, sizeof(**out));
	return *out ? 0 : -ENOMEM;
}

/* PID's pid in its own namespace (the last NSpid field), which names its perf map. */
static uint32_t ns_pid(uint32_t pid)
{
	char path[64], line[256];
	uint32_t ns = pid;
	FILE *f;

	snprintf(path, sizeof(path), "/proc/%" PRIu32 "/status", pid);
	f = fopen(path, "re");
	if (!f)
		return pid;
	while (fgets(line, sizeof(line), f))
		if (!strncmp(line, "NSpid:", 6)) {
			char *last = strrchr(line, '\t') ? strrchr(line, '\t') : line + 6;

			ns = (uint32_t)strtoul(last, NULL, 10);
			break;
		}
	fclose(f);
	return ns ? ns : pid;
}

/* Read PR's perf map again if it grew. */
static void refresh(struct perfmaps *pm, struct pm_proc *pr)
{
	struct perfmap_table *t = NULL;
	char path[64], *buf = NULL;
	struct stat st;
	size_t bad, got = 0;
	ssize_t n;
	int fd;

	snprintf(path, sizeof(path), "/tmp/perf-%" PRIu32 ".map", ns_pid(pr->pid));
	fd = mapfile_open_path(pr->pid, path);
	if (fd == -ENODEV)
		pm->st.refused++;
	if (fd < 0)
		return;
	if (fstat(fd, &st) < 0 || st.st_size == pr->size)
		goto out;
	if ((size_t)st.st_size > PERFMAP_MAX_BYTES) {
		pm->st.refused++;
		goto out;
	}
	buf = malloc((size_t)st.st_size + 1);
	while (buf && got < (size_t)st.st_size &&
	       (n = read(fd, buf + got, (size_t)st.st_size - got)) > 0)
		got += (size_t)n;
	/* a JIT may be writing the last line: keep whole lines only */
	while (got && buf[got - 1] != '\n')
		got--;
	if (buf && perfmap_table_parse(buf, got, &t, &bad) == 0) {
		perfmap_table_free(pr->t);
		pr->t = t;
		pr->size = (off_t)got == st.st_size ? st.st_size : -1; /* partial: read again */
		pm->st.reads++;
		pm->st.bad_lines += bad;
	} else {
		pm->st.refused++;
	}
out:
	free(buf);
	close(fd);
}

static struct pm_proc *proc_of(struct perfmaps *pm, uint32_t pid, uint64_t now_ns)
{
	struct pm_proc *pr = NULL;

	for (size_t i = 0; i < pm->n && !pr; i++)
		if (pm->p[i].pid == pid)
			pr = &pm->p[i];
	if (!pr) {
		if (pm->n < PERFMAP_MAX_PROCS) {
			pr = &pm->p[pm->n++];
		} else { /* the least recently used goes */
			pr = &pm->p[0];
			for (size_t i = 1; i < pm->n; i++)
				if (pm->p[i].used_ns < pr->used_ns)
					pr = &pm->p[i];
			perfmap_table_free(pr->t);
		}
		*pr = (struct pm_proc){.pid = pid, .size = -1};
	}
	pr->used_ns = now_ns;
	return pr;
}

const char *perfmaps_lookup(struct perfmaps *pm, uint32_t pid, uint64_t ip, uint64_t now_ns)
{
	struct pm_proc *pr = proc_of(pm, pid, now_ns);
	const char *name = perfmap_table_lookup(pr->t, ip);

	if (!name && (!pr->read_ns || now_ns - pr->read_ns >= REREAD_NS)) {
		pr->read_ns = now_ns;
		refresh(pm, pr);
		name = perfmap_table_lookup(pr->t, ip);
	}
	pm->st.named += name != NULL;
	return name;
}

void perfmaps_forget(struct perfmaps *pm, uint32_t pid)
{
	for (size_t i = 0; i < pm->n; i++)
		if (pm->p[i].pid == pid) {
			perfmap_table_free(pm->p[i].t);
			pm->p[i] = pm->p[--pm->n];
			return;
		}
}

void perfmaps_get_stats(const struct perfmaps *pm, struct perfmaps_stats *st)
{
	*st = pm->st;
}

void perfmaps_free(struct perfmaps *pm)
{
	if (!pm)
		return;
	for (size_t i = 0; i < pm->n; i++)
		perfmap_table_free(pm->p[i].t);
	free(pm);
}
