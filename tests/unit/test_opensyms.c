/*
 * Unit tests of symbolizer/engine/opensyms (+ loadmap, lib/jsonw): the index the sandboxed
 * worker builds answers as the engine does in process (also while other threads keep asking),
 * its maps equal the file's, drops and replaced store entries remove what they published,
 * eviction keeps the cap, a file or worker that fails marks the build ID bad with the reason
 * (crash, deadline) and no worker runs for it again until a drop, offsets map through PT_LOAD,
 * and JSON output stays valid.
 * Fixtures are compiled at test time from tests/data/src/inline_c.c (skip without gcc).
 */
#include "tests/t.h"
#include "tests/unit/fixture.h"

#include "lib/err.h"
#include "lib/log.h"
#include "lib/jsonw.h"
#include "symbolizer/engine/loadmap.h"
#include "symbolizer/engine/opensyms.h"
#include "symbolizer/engine/symfile.h"

#include <dirent.h>
#include <limits.h>
#include <stdlib.h>
#include <errno.h>
#include <jansson.h>
#include <pthread.h>
#include <stdint.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#define NADDR 2000
#define MAXF  64

__attribute__((constructor)) static void quiet(void)
{
	log_set_level(FS_LOG_ERROR);
}

/* A temp dir with index/, tmp/ and the fixture binaries fx0 and fx1 (two build IDs), compiled
 * from the source tree ($FLEETSYM_TOP, default the current dir, as under make). NULL when the
 * tools are missing; a failed compile fails the test. */
static const char *setup(void)
{
	return fixture_setup(
	    "test_opensyms",
	    "cd %1$s && mkdir -p index tmp && gcc -O2 -g -o fx0 %2$s/tests/data/src/inline_c.c && "
	    "gcc -O2 -g -DVARIANT=1 -o fx1 %2$s/tests/data/src/inline_c.c && "
	    "objcopy --only-keep-debug fx0 fx0.debug");
}

static void entry_for(const char *file, struct dstore_entry *e)
{
	struct symfile *sf;
	struct stat st;

	memset(e, 0, sizeof(*e));
	snprintf(e->path, sizeof(e->path), "%s/%s", fixture_dir, file);
	CHECK_INT(stat(e->path, &st), 0);
	CHECK_INT(symfile_open(e->path, NULL, &sf), 0);
	snprintf(e->build_id, sizeof(e->build_id), "%s", symfile_build_id(sf));
	symfile_close(sf);
	e->size = (uint64_t)st.st_size;
	e->added = st.st_mtime;
	e->quality = DSTORE_Q_DWARF | DSTORE_Q_LINES | DSTORE_Q_SYMTAB;
}

/* A flat text rendering of frames, to compare answers. */
static void render(char *buf, size_t len, const struct sym_frame *f, int n)
{
	size_t off = 0;

	buf[0] = '\0';
	for (int i = 0; i < n && off < len; i++)
		off += (size_t)snprintf(
		    buf + off, len - off, "%s|%s|%s:%u:%u|%d|%d;",
		    f[i].function ? f[i].function : "?", f[i].linkage ? f[i].linkage : "?",
		    f[i].file ? f[i].file : "?", f[i].line, f[i].column, f[i].inlined, f[i].source);
}

struct answers {
	char (*text)[512];
	size_t mismatches;
	const char (*ref)[512];
};

static int collect(void *ctx, size_t i, uint64_t addr, const struct sym_frame *f, int n)
{
	struct answers *a = ctx;
	char buf[512];

	render(buf, sizeof(buf), f, n);
	if (a->ref && strcmp(a->ref[i], buf) != 0)
		a->mismatches++;
	if (a->text)
		snprintf(a->text[i], sizeof(a->text[i]), "%s", buf);
	return 0;
}

static uint64_t addrs[NADDR];
static char ref[NADDR][512];

/* Addresses spread over the text section of fx0, and the engine's own answers for them. */
static void make_reference(const char *path)
{
	struct symfile *sf;
	struct sym_frame f[MAXF];
	FILE *p;
	char cmd[600];
	unsigned long long lo = 0, size = 0;

	snprintf(cmd, sizeof(cmd), "readelf -SW %s | awk '$2==\".text\"{print $4, $6}'", path);
	p = popen(cmd, "r");
	CHECK(p);
	CHECK_INT(fscanf(p, "%llx %llx", &lo, &size), 2);
	pclose(p);
	for (size_t i = 0; i < NADDR; i++)
		addrs[i] = lo + (i * 7919) % size;
	CHECK_INT(symfile_open(path, NULL, &sf), 0);
	for (size_t i = 0; i < NADDR; i++) {
		int n = symfile_lookup(sf, addrs[i], f, MAXF);

		render(ref[i], sizeof(ref[i]), f, n);
	}
	symfile_close(sf);
}

static int count_files(const char *dir, const char *suffix)
{
	DIR *d = opendir(dir);
	struct dirent *de;
	int n = 0;

	if (!d)
		return -1;
	while ((de = readdir(d)))
		if (de->d_name[0] != '.' &&
		    (!suffix ||
		     (strlen(de->d_name) > strlen(suffix) &&
		      !strcmp(de->d_name + strlen(de->d_name) - strlen(suffix), suffix))))
			n++;
	closedir(d);
	return n;
}

static int map_of(const char *file, struct loadmap *m)
{
	char path[256];
	Elf *elf;
	FILE *fp;
	int fd;

	snprintf(path, sizeof(path), "%s/%s", fixture_dir, file);
	fp = fopen(path, "r");
	if (!fp)
		return -errno;
	fd = fileno(fp);
	elf_version(EV_CURRENT);
	elf = elf_begin(fd, ELF_C_READ, NULL);
	loadmap_from_elf(elf, m);
	elf_end(elf);
	fclose(fp);
	return 0;
}

/* The caches a test made and has not freed; the harness frees them when the test ends. */
static struct opensyms *live[4];
static int live_deferred;

static void caches_cleanup(void *unused)
{
	for (int i = 0; i < 4; i++) {
		opensyms_free(live[i]);
		live[i] = NULL;
	}
	live_deferred = 0;
}

static void cache_free(struct opensyms *c)
{
	for (int i = 0; i < 4; i++)
		if (live[i] == c)
			live[i] = NULL;
	opensyms_free(c);
}

static struct opensyms *new_cache_with(size_t max_entries, const char *worker, int timeout_ms)
{
	char idx[128], tmp[128];
	static char sidx[128], stmp[128];
	struct opensyms_opts o = {0};
	struct opensyms *c;

	snprintf(idx, sizeof(idx), "%s/index", fixture_dir);
	snprintf(tmp, sizeof(tmp), "%s/tmp", fixture_dir);
	memcpy(sidx, idx, sizeof(idx));
	memcpy(stmp, tmp, sizeof(tmp));
	o.index_dir = sidx;
	o.tmp_dir = stmp;
	o.max_entries = max_entries;
	o.worker = worker;
	o.worker_timeout_ms = timeout_ms;
	o.wait_ms = 60000;
	if (!live_deferred) {
		t_defer(caches_cleanup, NULL);
		live_deferred = 1;
	}
	CHECK_INT(opensyms_new(&o, &c), 0);
	for (int i = 0; i < 4; i++)
		if (!live[i]) {
			live[i] = c;
			return c;
		}
	T_FAIL_("more than 4 caches at once");
}

static struct opensyms *new_cache(size_t max_entries)
{
	return new_cache_with(max_entries, NULL, 0);
}

static int get(struct opensyms *c, const struct dstore_entry *e, struct opensyms_file **f)
{
	const char *reason;

	return opensyms_get(c, e, f, &reason);
}

static void clear_index(void)
{
	char cmd[160];

	snprintf(cmd, sizeof(cmd), "rm -f %s/index/*", fixture_dir);
	CHECK_INT(system(cmd), 0);
}

TEST(worker_index_same_answers)
{
	struct opensyms *c;
	struct opensyms_file *f;
	struct dstore_entry e;
	struct answers a = {.ref = (const char(*)[512])ref};
	struct opensyms_stats st;
	struct loadmap m;
	char dir[128];

	if (!setup())
		SKIP("gcc or objcopy missing");
	clear_index();
	entry_for("fx0", &e);
	make_reference(e.path);
	c = new_cache(0);
	CHECK_INT(get(c, &e, &f), 0);
	CHECK_INT(opensyms_lookup_batch(c, f, addrs, NADDR, collect, &a), 0);
	CHECK_INT(a.mismatches, 0);
	CHECK_INT(map_of("fx0", &m), 0);
	CHECK(memcmp(&m, opensyms_file_loadmap(f), sizeof(m)) == 0);
	snprintf(dir, sizeof(dir), "%s/index", fixture_dir);
	CHECK_INT(count_files(dir, ".symidx"), 1);
	snprintf(dir, sizeof(dir), "%s/tmp", fixture_dir);
	CHECK_INT(count_files(dir, NULL), 0); /* the private build dir is gone */
	opensyms_put(c, f);
	opensyms_stats(c, &st);
	CHECK_INT(st.index_builds, 1);
	CHECK_INT(st.misses, 1);
	CHECK_INT(st.indexed, 1);
	cache_free(c);

	/* a new cache opens the published index directly (its worker reads only the maps) */
	c = new_cache(0);
	CHECK_INT(get(c, &e, &f), 0);
	CHECK(memcmp(&m, opensyms_file_loadmap(f), sizeof(m)) == 0);
	a.mismatches = 0;
	CHECK_INT(opensyms_lookup_batch(c, f, addrs, NADDR, collect, &a), 0);
	CHECK_INT(a.mismatches, 0);
	opensyms_put(c, f);
	cache_free(c);
}

struct worker {
	struct opensyms *c;
	struct dstore_entry *e;
	size_t mismatches;
	int err;
};

static void *hammer(void *arg)
{
	struct worker *w = arg;

	for (int round = 0; round < 20; round++) {
		struct answers a = {.ref = (const char(*)[512])ref};
		struct opensyms_file *f;

		w->err = get(w->c, w->e, &f);
		if (w->err)
			return NULL;
		w->err = opensyms_lookup_batch(w->c, f, addrs, NADDR, collect, &a);
		w->mismatches += a.mismatches;
		opensyms_put(w->c, f);
	}
	return NULL;
}

TEST(concurrent_lookups_during_build)
{
	struct opensyms *c;
	struct dstore_entry e;
	struct worker w[6];
	pthread_t th[6];
	struct opensyms_stats st;
	int n;

	if (!setup())
		SKIP("gcc or objcopy missing");
	clear_index();
	entry_for("fx0", &e);
	make_reference(e.path);
	c = new_cache(0);
	for (n = 0; n < 6; n++) {
		w[n] = (struct worker){c, &e, 0, 0};
		if (pthread_create(&th[n], NULL, hammer, &w[n]))
			break;
	}
	for (int i = 0; i < n; i++)
		pthread_join(th[i], NULL);
	CHECK_INT(n, 6);
	for (int i = 0; i < 6; i++) {
		CHECK_INT(w[i].err, 0);
		CHECK_INT(w[i].mismatches, 0);
	}
	opensyms_stats(c, &st);
	CHECK_INT(st.misses, 1); /* one open for all threads */
	CHECK(st.index_builds <= 1);
	cache_free(c);
}

TEST(drop_removes_published_index)
{
	struct opensyms *c;
	struct opensyms_file *f, *g;
	struct dstore_entry e;
	struct answers a = {0};
	char path[256];

	if (!setup())
		SKIP("gcc or objcopy missing");
	clear_index();
	entry_for("fx0", &e);
	c = new_cache(0);
	CHECK_INT(get(c, &e, &f), 0);
	CHECK_INT(opensyms_lookup_batch(c, f, addrs, 1, collect, &a), 0);
	snprintf(path, sizeof(path), "%s/index/%s.symidx", fixture_dir, e.build_id);
	CHECK_INT(access(path, F_OK), 0);
	opensyms_drop(c, e.build_id);
	CHECK(access(path, F_OK) != 0);
	/* the holder keeps a working copy */
	CHECK_INT(opensyms_lookup_batch(c, f, addrs, 1, collect, &a), 0);
	CHECK_INT(get(c, &e, &g), 0);
	CHECK(g != f);
	CHECK_INT(access(path, F_OK), 0); /* built and published again */
	opensyms_put(c, f);
	opensyms_put(c, g);
	cache_free(c);
}

TEST(changed_store_entry_reopens)
{
	struct opensyms *c;
	struct opensyms_file *f, *g;
	struct dstore_entry e;
	struct opensyms_stats st;

	if (!setup())
		SKIP("gcc or objcopy missing");
	clear_index();
	entry_for("fx0", &e);
	c = new_cache(0);
	CHECK_INT(get(c, &e, &f), 0);
	opensyms_put(c, f);
	CHECK_INT(get(c, &e, &f), 0);
	opensyms_put(c, f);
	e.added += 1; /* the store replaced the file */
	CHECK_INT(get(c, &e, &g), 0);
	opensyms_put(c, g);
	opensyms_stats(c, &st);
	CHECK_INT(st.hits, 1);
	CHECK_INT(st.misses, 2);
	CHECK_INT(st.open, 1);
	cache_free(c);
}

TEST(eviction_keeps_cap)
{
	struct opensyms *c;
	struct opensyms_file *f0, *f1;
	struct dstore_entry e0, e1;
	struct opensyms_stats st;
	struct answers a = {0};

	if (!setup())
		SKIP("gcc or objcopy missing");
	clear_index();
	entry_for("fx0", &e0);
	entry_for("fx1", &e1);
	CHECK(strcmp(e0.build_id, e1.build_id) != 0);
	c = new_cache(1);
	CHECK_INT(get(c, &e0, &f0), 0);
	CHECK_INT(opensyms_lookup_batch(c, f0, addrs, 10, collect, &a), 0);
	opensyms_put(c, f0);
	CHECK_INT(get(c, &e1, &f1), 0);
	opensyms_stats(c, &st);
	CHECK_INT(st.open, 1);
	CHECK_INT(st.evictions, 1);
	/* held entries are not evicted: with f1 held, getting fx0 goes over the cap */
	CHECK_INT(get(c, &e0, &f0), 0);
	opensyms_stats(c, &st);
	CHECK_INT(st.evictions, 1);
	CHECK_INT(st.open, 2);
	opensyms_put(c, f0);
	opensyms_put(c, f1);
	cache_free(c);
}

TEST(bad_files_are_marked_bad_until_dropped)
{
	struct opensyms *c;
	struct opensyms_file *f;
	struct opensyms_stats st;
	struct dstore_entry e;
	const char *reason = NULL;
	char path[256];
	FILE *fp;

	if (!setup())
		SKIP("gcc or objcopy missing");
	entry_for("fx0", &e);
	snprintf(path, sizeof(path), "%s/notelf", fixture_dir);
	fp = fopen(path, "w");
	CHECK(fp);
	fputs("hello\n", fp);
	fclose(fp);
	snprintf(e.path, sizeof(e.path), "%s", path);
	c = new_cache(0);
	CHECK_INT(opensyms_get(c, &e, &f, &reason), -ERR_BADDEBUG);
	CHECK(reason && strstr(reason, "not an ELF file"));
	CHECK(opensyms_bad(c, e.build_id, &reason));
	/* answered from the mark: no second worker */
	CHECK_INT(opensyms_get(c, &e, &f, &reason), -ERR_BADDEBUG);
	opensyms_stats(c, &st);
	CHECK_INT(st.index_failures, 1);
	CHECK_INT(st.bad, 1);
	/* a new upload (the store's entry changed) gets its chance */
	e.added += 1;
	CHECK_INT(opensyms_get(c, &e, &f, &reason), -ERR_BADDEBUG);
	opensyms_stats(c, &st);
	CHECK_INT(st.index_failures, 2);
	opensyms_drop(c, e.build_id);
	CHECK(!opensyms_bad(c, e.build_id, &reason));
	snprintf(e.build_id, sizeof(e.build_id), "../../x");
	CHECK(opensyms_get(c, &e, &f, &reason) < 0);
	cache_free(c);
}

/* A stand-in worker: a shell script, so that the supervision (deadline, crash) is tested on
 * real processes whatever the file. */
static const char *script(const char *name, const char *body)
{
	static char path[4][256];
	static int k;
	char *p = path[k++ % 4];
	FILE *fp;

	snprintf(p, 256, "%s/%s", fixture_dir, name);
	fp = fopen(p, "w");
	CHECK(fp);
	fprintf(fp, "#!/bin/sh\n%s\n", body);
	fclose(fp);
	CHECK_INT(chmod(p, 0755), 0);
	return p;
}

TEST(worker_deadline_and_crash_mark_bad)
{
	struct opensyms *c;
	struct opensyms_file *f;
	struct dstore_entry e;
	const char *reason = NULL;
	struct timespec t0, t1;
	double secs;

	if (!setup())
		SKIP("gcc or objcopy missing");
	clear_index();
	entry_for("fx0", &e);
	c = new_cache_with(0, script("hang.sh", "exec sleep 60"), 500);
	clock_gettime(CLOCK_MONOTONIC, &t0);
	CHECK_INT(opensyms_get(c, &e, &f, &reason), -ERR_BADDEBUG);
	clock_gettime(CLOCK_MONOTONIC, &t1);
	secs = (double)(t1.tv_sec - t0.tv_sec) + (double)(t1.tv_nsec - t0.tv_nsec) / 1e9;
	CHECK(secs < 30);
	CHECK(reason && strstr(reason, "deadline"));
	cache_free(c);

	c = new_cache_with(0, script("segv.sh", "kill -SEGV $$"), 0);
	CHECK_INT(opensyms_get(c, &e, &f, &reason), -ERR_BADDEBUG);
	CHECK(reason && strstr(reason, "SIGSEGV"));
	cache_free(c);

	c = new_cache_with(0, script("oom.sh", "echo 'libdw: Cannot allocate memory' >&2; exit 1"),
			   0);
	CHECK_INT(opensyms_get(c, &e, &f, &reason), -ERR_BADDEBUG);
	CHECK(reason && strstr(reason, "out of memory"));
	cache_free(c);

	/* a worker that answers nonsense is not believed */
	c = new_cache_with(0, script("liar.sh", "echo 'map exact 1 99'; echo ok"), 0);
	CHECK_INT(opensyms_get(c, &e, &f, &reason), -ERR_BADDEBUG);
	CHECK(reason && strstr(reason, "malformed"));
	cache_free(c);
}

TEST(loadmap_offsets)
{
	struct loadmap m;
	uint64_t v = 0;

	if (!setup())
		SKIP("gcc or objcopy missing");
	CHECK_INT(map_of("fx0", &m), 0);
	CHECK(m.usable);
	CHECK(m.nsegs >= 2);
	for (int i = 0; i < m.nsegs; i++) {
		CHECK_INT(loadmap_offset_to_vaddr(&m, m.segs[i].offset + 5, &v), 0);
		CHECK_INT(v, m.segs[i].vaddr + 5);
	}
	CHECK_INT(loadmap_offset_to_vaddr(&m, 1ull << 40, &v), -ERANGE);
	CHECK_INT(map_of("fx0.debug", &m), 0);
	CHECK(!m.usable);
	CHECK_INT(loadmap_offset_to_vaddr(&m, 0x1000, &v), -ENODATA);
}

TEST(jsonw_escapes_and_caps)
{
	struct jsonw w = {0};
	json_error_t jerr;
	json_t *j;
	char *out;
	size_t len;

	jsonw_lit(&w, "[");
	jsonw_str(&w, "a\"b\\c\n\x01");
	jsonw_lit(&w, ",");
	jsonw_str(&w, "caf\xc3\xa9 \xff\xfe bad \xe0\x80\x80 overlong");
	jsonw_lit(&w, ",");
	jsonw_str(&w, NULL);
	jsonw_lit(&w, "]");
	CHECK_INT(jsonw_finish(&w, &out, &len), 0);
	j = json_loadb(out, len, 0, &jerr);
	CHECK(j);
	CHECK_STR(json_string_value(json_array_get(j, 0)), "a\"b\\c\n\x01");
	CHECK_STR(json_string_value(json_array_get(j, 1)),
		  "caf\xc3\xa9 \xef\xbf\xbd\xef\xbf\xbd bad \xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbd "
		  "overlong");
	CHECK(json_is_null(json_array_get(j, 2)));
	json_decref(j);
	free(out);

	w = (struct jsonw){.max = 100};
	for (int i = 0; i < 50; i++)
		jsonw_printf(&w, "%d,", i);
	CHECK_INT(jsonw_finish(&w, &out, &len), -E2BIG);
	CHECK(out == NULL);
}
