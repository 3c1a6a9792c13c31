/*
 * unwreplay - a snapshot's walk: for each frame, the mapping of the lookup pc gives the file
 * offset, the file's table (built once per path) the row, and unw_step_row() the caller's
 * registers, reading the recorded stack bytes; a mapping without a table steps through frame
 * pointers, as in BPF. The BPF program's own walk differs only in where the mappings and rows
 * come from (maps), which the integration tests cover.
 */
#include "agent/unwreplay.h"

#include "agent/unwtab.h"

#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define MAX_MAPS   256
#define MAX_SNAPS  4096
#define MAX_FRAMES 256
#define MAX_LINE   (1 << 20)

struct rmap {
	uint64_t start, end, off;
	char *path;
	struct unwtab *t; /* NULL: no table (frame pointers) */
	int tried;
};

struct snap {
	uint64_t pc, sp, bp;
	uint64_t stack_addr;
	unsigned char *stack;
	size_t stack_len;
	uint64_t ref[MAX_FRAMES];
	int nref;
};

static const struct snap *cur; /* the snapshot UNW_READ reads from */

static int snap_read(__u64 *dst, __u64 addr)
{
	if (addr < cur->stack_addr || addr - cur->stack_addr + 8 > cur->stack_len)
		return -1;
	memcpy(dst, cur->stack + (addr - cur->stack_addr), 8);
	return 0;
}

#define UNW_READ(dst, addr) snap_read((dst), (addr))
#include "bpf/unwind.h"

static struct rmap *map_of(struct rmap *maps, int n, uint64_t pc)
{
	for (int i = 0; i < n; i++)
		if (pc >= maps[i].start && pc < maps[i].end)
			return &maps[i];
	return NULL;
}

/* The row for PC in M (building M's table on first use); kind NONE without one. */
static void row_of(struct rmap *m, uint64_t pc, struct unw_row *out)
{
	struct unw_file f = {0};
	const struct unw_row *r;
	uint64_t fo = pc - m->start + m->off;

	memset(out, 0, sizeof(*out));
	if (!m->tried) {
		int fd = open(m->path, O_RDONLY | O_CLOEXEC);

		m->tried = 1;
		if (fd >= 0) {
			if (unwtab_build_fd(fd, &m->t))
				m->t = NULL;
			close(fd);
		}
	}
	if (!m->t)
		return;
	unwtab_segments(m->t, &f);
	for (uint32_t i = 0; i < f.nsegs; i++)
		if (fo >= f.seg[i].lo && fo < f.seg[i].hi) {
			r = unwtab_find(m->t, fo + (uint64_t)f.seg[i].delta + unwtab_base(m->t));
			if (r)
				*out = *r;
			return;
		}
}

/* Walk S into PCS; returns the frame count. */
static int walk(const struct snap *s, struct rmap *maps, int nmaps, uint64_t *pcs)
{
	struct unw_regs r = {.pc = s->pc, .sp = s->sp, .bp = s->bp, .exact = 1};
	int n = 0;

	cur = s;
	while (n < MAX_FRAMES && r.pc) {
		struct rmap *m = map_of(maps, nmaps, unw_lookup_pc(&r));
		struct unw_row row = {0};

		pcs[n++] = r.pc;
		if (!m)
			break;
		row_of(m, unw_lookup_pc(&r), &row);
		if (unw_step_row(row.kind, row.cfa_off8 * 8, unw_row_rbp(row.kind, row.rbp_off8),
				 &r) != UNW_STEP_OK)
			break;
	}
	return n;
}

static int parse_hex(const char *p, unsigned char **out, size_t *len)
{
	size_t n = strcspn(p, " \n") / 2;
	unsigned char *b = malloc(n ? n : 1);

	if (!b)
		return -ENOMEM;
	for (size_t i = 0; i < n; i++) {
		unsigned int v;

		if (sscanf(p + 2 * i, "%2x", &v) != 1) {
			free(b);
			return -EINVAL;
		}
		b[i] = (unsigned char)v;
	}
	*out = b;
	*len = n;
	return 0;
}

static void compare(const struct snap *s, struct rmap *maps, int nmaps, FILE *log,
		    struct unwreplay_result *res)
{
	uint64_t pcs[MAX_FRAMES];
	int n = walk(s, maps, nmaps, pcs), same = 0;

	while (same < s->nref && same < n && pcs[same] == s->ref[same])
		same++;
	res->snapshots++;
	res->frames += s->nref;
	res->frames_same += same;
	if (same == s->nref) {
		res->agree++;
		return;
	}
	if (log)
		fprintf(log,
			"snapshot %d: frame %d differs: walk %llx, reference %llx (%d frames "
			"walked, %d in the reference)\n",
			res->snapshots, same, same < n ? (unsigned long long)pcs[same] : 0ULL,
			(unsigned long long)s->ref[same], n, s->nref);
}

int unwreplay_file(const char *path, FILE *log, struct unwreplay_result *res)
{
	struct rmap maps[MAX_MAPS];
	struct snap *snaps = NULL;
	int nmaps = 0, nsnaps = 0, err = 0;
	char *line = malloc(MAX_LINE);
	FILE *f = fopen(path, "re");

	memset(res, 0, sizeof(*res));
	memset(maps, 0, sizeof(maps));
	snaps = calloc(MAX_SNAPS, sizeof(*snaps));
	if (!f || !line || !snaps) {
		err = f ? -ENOMEM : -errno;
		goto out;
	}
	while (fgets(line, MAX_LINE, f)) {
		struct snap *s = nsnaps ? &snaps[nsnaps - 1] : NULL;
		unsigned long long a, b, c;
		char p[4096];
		int k;

		if (sscanf(line, "snap %llx %llx %llx", &a, &b, &c) == 3) {
			if (nsnaps == MAX_SNAPS)
				break;
			s = &snaps[nsnaps++];
			s->pc = a;
			s->sp = b;
			s->bp = c;
		} else if (s && sscanf(line, "stack %llx %n", &a, &k) == 1) {
			s->stack_addr = a;
			err = parse_hex(line + k, &s->stack, &s->stack_len);
			if (err)
				goto out;
		} else if (s && !strncmp(line, "ref", 3)) {
			char *q = line + 3, *e;

			while (s->nref < MAX_FRAMES) {
				a = strtoull(q, &e, 16);
				if (e == q)
					break;
				s->ref[s->nref++] = a;
				q = e;
			}
		} else if (sscanf(line, "map %llx %llx %llx %4095s", &a, &b, &c, p) == 4 &&
			   nmaps < MAX_MAPS) {
			maps[nmaps] =
			    (struct rmap){.start = a, .end = b, .off = c, .path = strdup(p)};
			if (!maps[nmaps].path) {
				err = -ENOMEM;
				goto out;
			}
			nmaps++;
		}
	}
	for (int i = 0; i < nsnaps; i++)
		if (snaps[i].nref)
			compare(&snaps[i], maps, nmaps, log, res);
	if (!res->snapshots)
		err = -EINVAL;
out:
	for (int i = 0; i < nmaps; i++) {
		unwtab_free(maps[i].t);
		free(maps[i].path);
	}
	for (int i = 0; snaps && i < nsnaps; i++)
		free(snaps[i].stack);
	free(snaps);
	free(line);
	if (f)
		fclose(f);
	return err;
}
