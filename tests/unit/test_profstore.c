/*
 * test_profstore - the profile store: ingest of hand-built pprof (lib/pprof_builder), raw,
 * named and unknown locations, merging by stack, time windows, types, series and sample-label
 * selectors, listings, the timeline, garbage/truncated/oversized input (refused, nothing
 * stored), deep stacks, retention with orphans, and reopening.
 */
#include "tests/t.h"

#include "lib/err.h"
#include "lib/pprof_builder.h"
#include "symbolizer/store/profstore.h"
#include "symbolizer/store/selector.h"
#include "profile.pb-c.h"

#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <sqlite3.h>
#include <stdint.h>
#include <time.h>
#include <unistd.h>
#include <zlib.h>

#define BID  "aabbccddeeff00112233445566778899aabbccdd"
#define SEC  1000000000LL
#define HOUR (3600 * SEC)
#define DAY  (24 * HOUR)

static char dir[256];

static int64_t now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return (int64_t)ts.tv_sec * SEC + ts.tv_nsec;
}

static struct pstore *store; /* the test's store: closed, and DIR removed, when the test ends */

static void store_cleanup(void *unused)
{
	char cmd[300];

	pstore_close(store);
	store = NULL;
	snprintf(cmd, sizeof(cmd), "rm -rf %s", dir);
	if (system(cmd) != 0)
		fprintf(stderr, "  cleanup of %s failed\n", dir);
}

static struct pstore *open_store(void)
{
	struct pstore_opts o = {.data_dir = dir};

	snprintf(dir, sizeof(dir), "/tmp/test_profstore.XXXXXX");
	if (!mkdtemp(dir))
		return NULL;
	t_defer(store_cleanup, NULL);
	if (pstore_open(&o, &store))
		store = NULL;
	return store;
}

/* Close the test's store and open it again over the same dir with O. */
static struct pstore *reopen_opts(struct pstore_opts o)
{
	pstore_close(store);
	store = NULL;
	o.data_dir = dir;
	if (pstore_open(&o, &store))
		store = NULL;
	return store;
}

static struct pstore *reopen(struct pstore *s, int64_t retention_s)
{
	(void)s;
	return reopen_opts((struct pstore_opts){.retention_s = retention_s});
}

static int64_t count(const char *table)
{
	char path[300], sql[128];
	sqlite3 *db = NULL;
	sqlite3_stmt *st = NULL;
	int64_t n = -1;

	snprintf(path, sizeof(path), "%s/profiles.db", dir);
	snprintf(sql, sizeof(sql), "SELECT count(*) FROM %s", table);
	if (sqlite3_open_v2(path, &db, SQLITE_OPEN_READONLY, NULL) == SQLITE_OK &&
	    sqlite3_prepare_v2(db, sql, -1, &st, NULL) == SQLITE_OK &&
	    sqlite3_step(st) == SQLITE_ROW)
		n = sqlite3_column_int64(st, 0);
	sqlite3_finalize(st);
	sqlite3_close(db);
	return n;
}

/* ---- a small profile: agent-like (raw frames with a build ID, kernel frames by name) ---- */

struct prof {
	struct pprofb *b;
	uint64_t map_app, map_kernel, map_anon;
};

static void prof_new(struct prof *p, int64_t time, int two_types)
{
	struct pprofb_mapping app = {.memory_start = 0x400000,
				     .memory_limit = 0x500000,
				     .file_offset = 0x1000,
				     .filename = "/usr/bin/app",
				     .build_id = BID};
	struct pprofb_mapping k = {.filename = "[kernel.kallsyms]"};
	struct pprofb_mapping anon = {
	    .memory_start = 0x7f0000, .memory_limit = 0x800000, .filename = "[anon]"};

	memset(p, 0, sizeof(*p));
	if (pprofb_new(NULL, &p->b) || pprofb_add_sample_type(p->b, "cpu", "nanoseconds") ||
	    (two_types && pprofb_add_sample_type(p->b, "alloc_space", "bytes")) ||
	    pprofb_set_period(p->b, "cpu", "nanoseconds", 52631578) ||
	    pprofb_add_mapping(p->b, &app, &p->map_app) ||
	    pprofb_add_mapping(p->b, &k, &p->map_kernel) ||
	    pprofb_add_mapping(p->b, &anon, &p->map_anon))
		abort();
	pprofb_set_time(p->b, time, 10 * SEC);
}

/* A user frame at address A of the app. */
static uint64_t loc_app(struct prof *p, uint64_t a)
{
	uint64_t id;

	if (pprofb_location(p->b, p->map_app, a, NULL, 0, &id))
		abort();
	return id;
}

static uint64_t loc_kernel(struct prof *p, const char *fn)
{
	struct pprofb_line line = {0};
	uint64_t id;

	if (pprofb_function(p->b, fn, fn, "", 0, &line.function_id) ||
	    pprofb_location(p->b, p->map_kernel, 0, &line, 1, &id))
		abort();
	return id;
}

static void sample(struct prof *p, const uint64_t *locs, size_t n, int64_t v, int64_t v2,
		   int64_t pid, const char *comm)
{
	struct pprofb_label lab[2] = {{.key = "pid", .num = pid}, {.key = "comm", .str = comm}};
	int64_t vals[2] = {v, v2};

	if (pprofb_add_sample(p->b, locs, n, vals, lab, comm ? 2 : 0))
		abort();
}

static int prof_ingest(struct pstore *s, struct prof *p, const char *service, const char *host,
		       int gz)
{
	struct pstore_label lab[2] = {{"service", service}, {"host", host}};
	uint8_t *buf = NULL, *z = NULL;
	size_t len = 0, zlen = 0;
	char err[256];
	int rc;

	if (pprofb_encode(p->b, &buf, &len))
		abort();
	pprofb_free(p->b);
	p->b = NULL;
	if (gz) {
		if (pprofb_gzip(buf, len, len + 1024, &z, &zlen))
			abort();
		free(buf);
		buf = z;
		len = zlen;
	}
	rc = pstore_ingest(s, lab, 2, buf, len, err, sizeof(err));
	if (rc)
		fprintf(stderr, "  ingest: %s\n", err);
	free(buf);
	return rc;
}

static struct selector *sel(const char *text)
{
	struct selector *x = NULL;
	char err[256];

	if (selector_parse(text, &x, err, sizeof(err))) {
		fprintf(stderr, "  %s\n", err);
		abort();
	}
	return x;
}

/* The value of the stack whose locations are (as file offsets or kernel names) LEAF..ROOT. */
static int64_t stack_value(const struct pstore_result *r, const char *want)
{
	for (size_t i = 0; i < r->nstacks; i++) {
		char buf[1024] = "";
		size_t off = 0;

		for (size_t k = 0; k < r->stacks[i].nlocs; k++) {
			const struct pstore_loc *l = &r->locs[r->stacks[i].locs[k]];

			if (l->build_id[0])
				off +=
				    (size_t)snprintf(buf + off, sizeof(buf) - off, "%s0x%llx",
						     k ? ";" : "", (unsigned long long)l->file_off);
			else if (l->frames)
				off += (size_t)snprintf(buf + off, sizeof(buf) - off, "%s%s",
							k ? ";" : "", l->frames[0].function);
			else
				off += (size_t)snprintf(buf + off, sizeof(buf) - off, "%s%s+0x%llx",
							k ? ";" : "", l->mapping_file,
							(unsigned long long)l->file_off);
		}
		if (!strcmp(buf, want))
			return r->stacks[i].value;
	}
	return -1;
}

TEST(ingest_and_query)
{
	struct pstore *s = open_store();
	struct pstore_result *r = NULL;
	struct prof p;
	int64_t t = now_ns() - HOUR;
	uint64_t st1[3], st2[2];

	CHECK(s);
	prof_new(&p, t, 0);
	st1[0] = loc_kernel(&p, "do_syscall_64");
	st1[1] = loc_app(&p, 0x401234);
	st1[2] = loc_app(&p, 0x400100);
	st2[0] = loc_app(&p, 0x7f0010 - 0x7f0000 + 0x401000); /* app again, other address */
	st2[1] = loc_app(&p, 0x400100);
	sample(&p, st1, 3, 10, 0, 42, "app");
	sample(&p, st2, 2, 5, 0, 42, "app");
	sample(&p, st2, 2, 7, 0, 43, "worker");
	CHECK_INT(prof_ingest(s, &p, "checkout", "web-1", 1), 0);

	CHECK_INT(pstore_query(s, NULL, t - HOUR, t + HOUR, NULL, 0, &r), 0);
	CHECK_STR(r->sample_type, "cpu");
	CHECK_STR(r->sample_unit, "nanoseconds");
	CHECK_INT(r->period, 52631578);
	CHECK_INT(r->nprofiles, 1);
	CHECK_INT(r->total, 22);
	CHECK_INT(r->nstacks, 2); /* the two label sets of st2 merged */
	CHECK_INT(r->nlocs, 4);
	/* file_off = address - memory_start + file_offset */
	CHECK_INT(stack_value(r, "do_syscall_64;0x2234;0x1100"), 10);
	CHECK_INT(stack_value(r, "0x2010;0x1100"), 12);
	for (size_t i = 0; i < r->nlocs; i++) {
		const struct pstore_loc *l = &r->locs[i];

		if (l->kernel) {
			CHECK_STR(l->build_id, "");
			CHECK_INT(l->nframes, 1);
			CHECK_STR(l->frames[0].function, "do_syscall_64");
			CHECK_STR(l->mapping_file, "[kernel.kallsyms]");
		} else {
			CHECK_STR(l->build_id, BID);
			CHECK(l->frames == NULL);
			CHECK_STR(l->mapping_file, "/usr/bin/app");
		}
	}
	pstore_result_free(r);
}

TEST(merge_window_type)
{
	struct pstore *s = open_store();
	struct pstore_result *r = NULL;
	struct prof p;
	int64_t t0 = now_ns() - 2 * HOUR;
	uint64_t a[2], b[2];

	CHECK(s);
	for (int i = 0; i < 3; i++) {
		prof_new(&p, t0 + i * 10 * SEC, 1);
		a[0] = loc_app(&p, 0x401000);
		a[1] = loc_app(&p, 0x400100);
		b[0] = loc_app(&p, 0x402000);
		b[1] = loc_app(&p, 0x400100);
		sample(&p, a, 2, 100 + i, 1000, 1, "x");
		if (i != 1)
			sample(&p, b, 2, 10, 0, 1, "x"); /* alloc 0: absent from that type */
		CHECK_INT(prof_ingest(s, &p, "checkout", "web-1", i & 1), 0);
	}
	CHECK_INT(count("profiles"), 6); /* 3 pprofs x 2 sample types */
	CHECK_INT(count("stacks"), 2);
	CHECK_INT(count("locations"), 3);

	/* all three: overlapping stacks summed */
	CHECK_INT(pstore_query(s, NULL, t0, t0 + 30 * SEC, "cpu", 0, &r), 0);
	CHECK_INT(r->nprofiles, 3);
	CHECK_INT(stack_value(r, "0x2000;0x1100"), 303);
	CHECK_INT(stack_value(r, "0x3000;0x1100"), 20);
	CHECK_INT(r->total, 323);
	pstore_result_free(r);

	/* [t0 + 10 s, t0 + 20 s): only the second */
	CHECK_INT(pstore_query(s, NULL, t0 + 10 * SEC, t0 + 20 * SEC, "cpu", 0, &r), 0);
	CHECK_INT(r->nprofiles, 1);
	CHECK_INT(r->total, 101);
	CHECK_INT(r->nstacks, 1);
	pstore_result_free(r);

	/* the other type, never summed with cpu */
	CHECK_INT(pstore_query(s, NULL, t0, t0 + 30 * SEC, "alloc_space", 0, &r), 0);
	CHECK_STR(r->sample_unit, "bytes");
	CHECK_INT(r->total, 3000);
	CHECK_INT(r->nstacks, 1);
	CHECK_INT(r->period, 0); /* the period is of cpu */
	pstore_result_free(r);
	CHECK_INT(pstore_query(s, NULL, t0, t0 + 30 * SEC, "alloc_space:bytes", 0, &r), 0);
	CHECK_INT(r->total, 3000);
	pstore_result_free(r);

	/* an unknown type: empty, not an error */
	CHECK_INT(pstore_query(s, NULL, t0, t0 + 30 * SEC, "inuse_space", 0, &r), 0);
	CHECK_INT(r->nstacks, 0);
	CHECK_INT(r->nprofiles, 0);
	pstore_result_free(r);

	/* max_stacks */
	CHECK_INT(pstore_query(s, NULL, t0, t0 + 30 * SEC, "cpu", 1, &r), -E2BIG);
	CHECK(r == NULL);
}

/* The store returns data; these write it as the text the assertions below compare (the API's
 * JSON shapes, without escaping: test values are plain). *OUT is malloc'd. */
static char *text_of(size_t n, void (*item)(FILE *f, size_t i, const void *ctx), const void *ctx)
{
	char *buf = NULL;
	size_t len = 0;
	FILE *f = open_memstream(&buf, &len);

	fputc('[', f);
	for (size_t i = 0; i < n; i++) {
		if (i)
			fputc(',', f);
		item(f, i, ctx);
	}
	fputc(']', f);
	fclose(f);
	return buf;
}

static void string_item(FILE *f, size_t i, const void *ctx)
{
	fprintf(f, "\"%s\"", ((const struct pstore_strings *)ctx)->v[i]);
}

static void type_item(FILE *f, size_t i, const void *ctx)
{
	const struct pstore_strings *l = ctx;

	fprintf(f, "{\"name\":\"%s\",\"unit\":\"%s\"}", l->v[2 * i], l->v[2 * i + 1]);
}

static void series_item(FILE *f, size_t i, const void *ctx)
{
	const struct pstore_strings *lb = &((const struct pstore_series_list *)ctx)->v[i].labels;

	fputc('{', f);
	for (size_t k = 0; k + 1 < lb->n; k += 2)
		fprintf(f, "%s\"%s\":\"%s\"", k ? "," : "", lb->v[k], lb->v[k + 1]);
	fputc('}', f);
}

static int labels_text(struct pstore *s, char **out)
{
	struct pstore_strings l = {0};
	int err = pstore_labels(s, &l);

	*out = err ? NULL : text_of(l.n, string_item, &l);
	pstore_strings_free(&l);
	return err;
}

static int label_values_text(struct pstore *s, const char *name, char **out)
{
	struct pstore_strings l = {0};
	int err = pstore_label_values(s, name, &l);

	*out = err ? NULL : text_of(l.n, string_item, &l);
	pstore_strings_free(&l);
	return err;
}

static int types_text(struct pstore *s, char **out)
{
	struct pstore_strings l = {0};
	int err = pstore_types(s, &l);

	*out = err ? NULL : text_of(l.n / 2, type_item, &l);
	pstore_strings_free(&l);
	return err;
}

static int series_text(struct pstore *s, const struct selector *sel, int64_t from, int64_t to,
		       char **out)
{
	struct pstore_series_list l = {0};
	int err = pstore_series(s, sel, from, to, &l);

	*out = err ? NULL : text_of(l.n, series_item, &l);
	pstore_series_list_free(&l);
	return err;
}

static void point_item(FILE *f, size_t i, const void *ctx)
{
	const int64_t *v = ctx; /* v[0] from (s), v[1] step (s), then the values */

	fprintf(f, "[%lld,%lld]", (long long)(v[0] + (int64_t)i * v[1]), (long long)v[2 + i]);
}

/* Whole-second windows and steps only. */
static int timeline_text(struct pstore *s, const struct selector *sel, int64_t from, int64_t to,
			 int64_t step, const char *type, char **out)
{
	int64_t *values = NULL, *v;
	size_t n = 0;
	int err = pstore_timeline(s, sel, from, to, step, type, &values, &n);

	*out = NULL;
	if (err)
		return err;
	v = calloc(n + 2, sizeof(*v));
	v[0] = from / SEC;
	v[1] = step / SEC;
	memcpy(v + 2, values, n * sizeof(*v));
	*out = text_of(n, point_item, v);
	free(v);
	free(values);
	return 0;
}

TEST(selectors_series_and_sample_labels)
{
	struct pstore *s = open_store();
	struct pstore_result *r = NULL;
	struct selector *x;
	struct prof p;
	int64_t t = now_ns() - HOUR;
	uint64_t a[1], b[1];
	char *json = NULL;

	CHECK(s);
	for (int i = 0; i < 3; i++) {
		static const char *const svc[] = {"checkout", "checkout", "search"};
		static const char *const host[] = {"web-1", "web-2", "web-1"};

		prof_new(&p, t + i * SEC, 0);
		a[0] = loc_app(&p, 0x401000);
		b[0] = loc_app(&p, 0x402000);
		sample(&p, a, 1, 1 + i, 0, 100, "app");
		sample(&p, b, 1, 10 * (1 + i), 0, 200, "gc");
		CHECK_INT(prof_ingest(s, &p, svc[i], host[i], 0), 0);
	}
	x = sel("{service=\"checkout\"}");
	CHECK_INT(pstore_query(s, x, t - HOUR, t + HOUR, NULL, 0, &r), 0);
	CHECK_INT(r->nprofiles, 2);
	CHECK_INT(r->total, 33);
	pstore_result_free(r);
	selector_free(x);

	x = sel("{service=~\"check.*\",host!=\"web-2\"}");
	CHECK_INT(pstore_query(s, x, t - HOUR, t + HOUR, NULL, 0, &r), 0);
	CHECK_INT(r->nprofiles, 1);
	CHECK_INT(r->total, 11);
	pstore_result_free(r);
	selector_free(x);

	/* sample labels: pid, comm */
	x = sel("{pid=\"200\"}");
	CHECK_INT(pstore_query(s, x, t - HOUR, t + HOUR, NULL, 0, &r), 0);
	CHECK_INT(r->total, 60);
	CHECK_INT(r->nstacks, 1);
	CHECK_INT(stack_value(r, "0x3000"), 60);
	pstore_result_free(r);
	selector_free(x);

	x = sel("{service=\"search\",comm!~\"g.*\"}");
	CHECK_INT(pstore_query(s, x, t - HOUR, t + HOUR, NULL, 0, &r), 0);
	CHECK_INT(r->total, 3);
	pstore_result_free(r);
	selector_free(x);

	/* a sample-label matcher that only the absent value passes */
	x = sel("{span_id=\"\"}");
	CHECK_INT(pstore_query(s, x, t - HOUR, t + HOUR, NULL, 0, &r), 0);
	CHECK_INT(r->total, 66);
	pstore_result_free(r);
	selector_free(x);

	x = sel("{nope=\"1\"}");
	CHECK_INT(pstore_query(s, x, t - HOUR, t + HOUR, NULL, 0, &r), 0);
	CHECK_INT(r->total, 0);
	CHECK_INT(r->nstacks, 0);
	pstore_result_free(r);
	CHECK_INT(series_text(s, x, t - HOUR, t + HOUR, &json), 0);
	CHECK_STR(json, "[]");
	free(json);
	selector_free(x);

	/* listings */
	CHECK_INT(labels_text(s, &json), 0);
	CHECK_STR(json, "[\"comm\",\"host\",\"pid\",\"service\"]");
	free(json);
	CHECK_INT(label_values_text(s, "host", &json), 0);
	CHECK_STR(json, "[\"web-1\",\"web-2\"]");
	free(json);
	CHECK_INT(label_values_text(s, "comm", &json), 0);
	CHECK_STR(json, "[\"app\",\"gc\"]");
	free(json);
	CHECK_INT(label_values_text(s, "nope", &json), 0);
	CHECK_STR(json, "[]");
	free(json);
	CHECK_INT(types_text(s, &json), 0);
	CHECK_STR(json, "[{\"name\":\"cpu\",\"unit\":\"nanoseconds\"}]");
	free(json);
	x = sel("{host=\"web-1\"}");
	CHECK_INT(series_text(s, x, t - HOUR, t + HOUR, &json), 0);
	CHECK(strstr(json, "{\"host\":\"web-1\",\"service\":\"checkout\"}"));
	CHECK(strstr(json, "{\"host\":\"web-1\",\"service\":\"search\"}"));
	CHECK(!strstr(json, "web-2"));
	free(json);
	/* outside the window: nothing */
	CHECK_INT(series_text(s, x, t + HOUR, t + 2 * HOUR, &json), 0);
	CHECK_STR(json, "[]");
	free(json);
	selector_free(x);
	/* series by a sample label: only those with such samples */
	x = sel("{comm=\"gc\",host=\"web-2\"}");
	CHECK_INT(series_text(s, x, t - HOUR, t + HOUR, &json), 0);
	CHECK(strstr(json, "web-2") && !strstr(json, "web-1"));
	free(json);
	selector_free(x);
}

TEST(timeline)
{
	struct pstore *s = open_store();
	struct selector *x;
	struct prof p;
	int64_t t0 = (now_ns() / SEC - 3600) / 60 * 60 * SEC; /* a whole minute */
	uint64_t a[1];
	char *json = NULL, want[512];

	CHECK(s);
	for (int i = 0; i < 4; i++) {
		prof_new(&p, t0 + i * 20 * SEC, 0);
		a[0] = loc_app(&p, 0x401000);
		sample(&p, a, 1, 5, 0, 1, "a");
		sample(&p, a, 1, 1, 0, 2, "b");
		CHECK_INT(prof_ingest(s, &p, "checkout", "web-1", 0), 0);
	}
	/* 30 s steps: profiles at 0, 20 | 40 | 60 */
	CHECK_INT(timeline_text(s, NULL, t0, t0 + 90 * SEC, 30 * SEC, NULL, &json), 0);
	snprintf(want, sizeof(want), "[[%lld,12],[%lld,6],[%lld,6]]", t0 / SEC, t0 / SEC + 30,
		 t0 / SEC + 60);
	CHECK_STR(json, want);
	free(json);
	/* by a sample label: the blobs are read */
	x = sel("{comm=\"b\"}");
	CHECK_INT(timeline_text(s, x, t0, t0 + 90 * SEC, 30 * SEC, "cpu", &json), 0);
	snprintf(want, sizeof(want), "[[%lld,2],[%lld,1],[%lld,1]]", t0 / SEC, t0 / SEC + 30,
		 t0 / SEC + 60);
	CHECK_STR(json, want);
	free(json);
	selector_free(x);
	CHECK_INT(timeline_text(s, NULL, t0, t0 + 90 * SEC, 0, NULL, &json), -EINVAL);
	CHECK_INT(timeline_text(s, NULL, t0 + SEC, t0, SEC, NULL, &json), -EINVAL);
	CHECK_INT(timeline_text(s, NULL, t0, t0 + DAY, 1000000, NULL, &json), -E2BIG);
}

/* A Go-like symbolized profile: no build ID, functions with files and lines, inline frames. */
TEST(named_locations)
{
	struct pstore *s = open_store();
	struct pstore_result *r = NULL;
	struct pprofb *b = NULL;
	struct pprofb_mapping m = {.memory_start = 0x400000,
				   .memory_limit = 0x600000,
				   .filename = "/tmp/burn",
				   .has_functions = true};
	struct pprofb_line lines[2] = {{0}};
	struct pstore_label lab[1] = {{"service", "go"}};
	uint64_t mid, l[3];
	int64_t v[2] = {3, 30000000};
	uint8_t *buf;
	size_t len;
	char err[256];

	CHECK(s);
	CHECK_INT(pprofb_new(NULL, &b), 0);
	CHECK_INT(pprofb_add_sample_type(b, "samples", "count"), 0);
	CHECK_INT(pprofb_add_sample_type(b, "cpu", "nanoseconds"), 0);
	CHECK_INT(pprofb_set_period(b, "cpu", "nanoseconds", 10000000), 0);
	CHECK_INT(pprofb_add_mapping(b, &m, &mid), 0);
	CHECK_INT(
	    pprofb_function(b, "main.mix", "main.mix", "/src/burn.go", 10, &lines[0].function_id),
	    0);
	CHECK_INT(
	    pprofb_function(b, "main.burn", "main.burn", "/src/burn.go", 20, &lines[1].function_id),
	    0);
	lines[0].line = 12;
	lines[1].line = 25;
	CHECK_INT(pprofb_location(b, mid, 0x401000, lines, 2, &l[0]), 0); /* mix inlined in burn */
	CHECK_INT(pprofb_function(b, "main.main", "", "/src/burn.go", 30, &lines[0].function_id),
		  0);
	lines[0].line = 33;
	CHECK_INT(pprofb_location(b, mid, 0x402000, lines, 1, &l[1]), 0);
	CHECK_INT(pprofb_location(b, mid, 0x403000, NULL, 0, &l[2]), 0); /* no name: file+off */
	CHECK_INT(pprofb_add_sample(b, l, 3, v, NULL, 0), 0);
	pprofb_set_time(b, now_ns() - HOUR, 1);
	CHECK_INT(pprofb_encode(b, &buf, &len), 0);
	pprofb_free(b);
	CHECK_INT(pstore_ingest(s, lab, 1, buf, len, err, sizeof(err)), 0);
	free(buf);
	CHECK_INT(count("profiles"), 2);
	CHECK_INT(pstore_query(s, NULL, now_ns() - 2 * HOUR, now_ns(), NULL, 0, &r), 0);
	CHECK_STR(r->sample_type, "cpu"); /* cpu preferred over samples */
	CHECK_INT(r->total, 30000000);
	CHECK_INT(r->period, 10000000);
	CHECK_INT(r->nstacks, 1);
	CHECK_INT(r->stacks[0].nlocs, 3);
	{
		const struct pstore_loc *a = &r->locs[r->stacks[0].locs[0]];
		const struct pstore_loc *c = &r->locs[r->stacks[0].locs[2]];

		CHECK_INT(a->nframes, 2);
		CHECK_STR(a->frames[0].function, "main.mix");
		CHECK_STR(a->frames[0].file, "/src/burn.go");
		CHECK_INT(a->frames[0].line, 12);
		CHECK_STR(a->frames[1].function, "main.burn");
		CHECK_INT(a->frames[1].line, 25);
		CHECK_STR(a->build_id, "");
		CHECK(c->frames == NULL);
		CHECK_STR(c->mapping_file, "/tmp/burn");
		CHECK_INT(c->file_off, 0x3000);
	}
	pstore_result_free(r);
	CHECK_INT(pstore_query(s, NULL, now_ns() - 2 * HOUR, now_ns(), "samples", 0, &r), 0);
	CHECK_INT(r->total, 3);
	CHECK_INT(r->period, 0);
	pstore_result_free(r);
}

TEST(deep_stack_truncated)
{
	struct pstore *s = open_store();
	struct pstore_result *r = NULL;
	struct pstore_ingest_info info = {0};
	struct pstore_label lab[1] = {{"service", "deep"}};
	struct prof p;
	uint64_t *locs = calloc(PSTORE_MAX_DEPTH + 100, sizeof(*locs));
	uint8_t *buf;
	size_t len;
	char err[256];
	int64_t t = now_ns() - HOUR;

	CHECK(s && locs);
	prof_new(&p, t, 0);
	for (int i = 0; i < PSTORE_MAX_DEPTH + 100; i++)
		locs[i] = loc_app(&p, 0x401000 + (uint64_t)i * 4);
	sample(&p, locs, PSTORE_MAX_DEPTH + 100, 1, 0, 1, NULL);
	CHECK_INT(pprofb_encode(p.b, &buf, &len), 0);
	pprofb_free(p.b);
	CHECK_INT(pstore_ingest_ex(s, lab, 1, buf, len, &info, err, sizeof(err)), 0);
	free(buf);
	free(locs);
	CHECK_INT(info.truncated, 1);
	CHECK_INT(info.profiles, 1);
	CHECK_INT(info.samples, 1);
	CHECK_INT(pstore_query(s, NULL, t - HOUR, t + HOUR, NULL, 0, &r), 0);
	CHECK_INT(r->nstacks, 1);
	CHECK_INT(r->stacks[0].nlocs, PSTORE_MAX_DEPTH);
	CHECK_STR(r->locs[r->stacks[0].locs[PSTORE_MAX_DEPTH - 1]].frames[0].function,
		  "[truncated]");
	CHECK_INT(r->locs[r->stacks[0].locs[0]].file_off, 0x2000);
	pstore_result_free(r);
}

/* ---- bad input: refused with a message, nothing stored ---- */

static void refused(struct pstore *s, const void *body, size_t len, int want, const char *msg)
{
	struct pstore_label lab[1] = {{"service", "x"}};
	char err[256] = "";
	int rc = pstore_ingest(s, lab, 1, body, len, err, sizeof(err));

	if (rc != want || !strstr(err, msg)) {
		fprintf(stderr, "  rc %d (%s), want %d and '%s'\n", rc, err, want, msg);
		T_FAIL_("bad input not refused as expected");
	}
	CHECK_INT(count("profiles"), 0);
	CHECK_INT(count("series"), 0);
	CHECK_INT(count("stacks"), 0);
	CHECK_INT(count("locations"), 0);
}

static uint8_t *gz(const void *in, size_t n, size_t *out)
{
	uint8_t *z = NULL;

	if (pprofb_gzip(in, n, n + 4096, &z, out))
		abort();
	return z;
}

static uint8_t *packed(Perftools__Profiles__Profile *pr, size_t *len)
{
	uint8_t *b;

	*len = perftools__profiles__profile__get_packed_size(pr);
	b = malloc(*len + 1);
	perftools__profiles__profile__pack(pr, b);
	return b;
}

/* The shared decode budget: a profile that alone needs more is refused (and says which flag),
 * and every ingest gives back what it took, refused or stored. */
TEST(decode_budget)
{
	struct pstore_label lab[1] = {{"service", "budget"}};
	struct prof p;
	uint64_t locs[2];
	uint8_t *buf = NULL;
	size_t len = 0;
	char err[256] = "";
	int rc = 0, i;

	CHECK(open_store() != NULL);
	CHECK(reopen_opts((struct pstore_opts){.decode_budget = 4 << 20}) != NULL);
	prof_new(&p, now_ns(), 0);
	for (i = 0; i < 40000; i++) {
		locs[0] = loc_app(&p, 0x401000 + 16 * (uint64_t)i);
		locs[1] = loc_app(&p, 0x402000);
		sample(&p, locs, 2, 1, 0, i, "big");
	}
	if (pprofb_encode(p.b, &buf, &len))
		abort();
	pprofb_free(p.b);
	rc = pstore_ingest(store, lab, 1, buf, len, err, sizeof(err));
	printf("  %zu-byte profile, budget 4 MiB: %s (%s)\n", len, err_str(rc), err);
	CHECK_INT(rc, -ERR_TOOBIG);
	CHECK(strstr(err, "--ingest-memory") != NULL);
	free(buf);
	rc = 0;
	/* 200 small ingests in a row take ~64 KiB each while decoding: more than the budget in
	 * all, so a leak of the accounting would end in -EBUSY */
	for (i = 0; i < 200 && !rc; i++) {
		prof_new(&p, now_ns(), 0);
		locs[0] = loc_app(&p, 0x401000 + 16 * (uint64_t)i);
		sample(&p, locs, 1, 1, 0, 1, "small");
		rc = prof_ingest(store, &p, "budget", "h", i & 1);
	}
	CHECK_INT(rc, 0);
	CHECK_INT(count("profiles"), 200);
}

TEST(garbage)
{
	struct pstore_opts o = {.max_ingest_size = 1 << 20};
	struct pstore *s = open_store();
	struct prof p;
	uint8_t junk[512], *buf, *z, *bomb;
	size_t len, zlen;
	uint64_t a[1];

	CHECK(s);
	for (size_t i = 0; i < sizeof(junk); i++)
		junk[i] = (uint8_t)(i * 7 + 3);
	refused(s, junk, sizeof(junk), -ERR_BADINPUT, "not a pprof profile");
	refused(s, "", 0, -ERR_BADINPUT, "empty body");
	refused(s, "\x1f\x8b", 2, -ERR_BADINPUT, "gzip");

	prof_new(&p, now_ns(), 0);
	a[0] = loc_app(&p, 0x401000);
	sample(&p, a, 1, 1, 0, 1, "x");
	CHECK_INT(pprofb_encode(p.b, &buf, &len), 0);
	pprofb_free(p.b);
	/* truncated pprof, truncated gzip, gzip with garbage after it */
	refused(s, buf, len - 3, -ERR_BADINPUT, "not a pprof profile");
	z = gz(buf, len, &zlen);
	refused(s, z, zlen - 5, -ERR_BADINPUT, "truncated gzip");
	z[20] ^= 0xff;
	refused(s, z, zlen, -ERR_BADINPUT, "gzip");
	free(z);
	z = gz(buf, len, &zlen);
	z = realloc(z, zlen + 3);
	memcpy(z + zlen, "abc", 3);
	refused(s, z, zlen + 3, -ERR_BADINPUT, "garbage after the gzip data");
	free(z);

	/* a gzip bomb over the cap: 1 MiB cap, 2 MiB of zeros in a few KiB */
	s = reopen_opts(o);
	CHECK(s);
	bomb = calloc(1, 2 << 20);
	z = gz(bomb, 2 << 20, &zlen);
	CHECK(zlen < 8192);
	refused(s, z, zlen, -ERR_TOOBIG, "decompresses to more than 1048576 bytes");
	free(z);
	refused(s, bomb, (1 << 20) + 1, -ERR_TOOBIG, "at most 1048576");
	free(bomb);
	free(buf);
}

/* Hand-packed profiles with references out of range. */
TEST(bad_references)
{
	struct pstore *s = open_store();
	char *strings[] = {"", "cpu", "nanoseconds", "f", "/bin/x"};
	Perftools__Profiles__ValueType vt = PERFTOOLS__PROFILES__VALUE_TYPE__INIT, *vts[1] = {&vt};
	Perftools__Profiles__Function fn = PERFTOOLS__PROFILES__FUNCTION__INIT, *fns[1] = {&fn};
	Perftools__Profiles__Line line = PERFTOOLS__PROFILES__LINE__INIT, *lines[1] = {&line};
	Perftools__Profiles__Location loc = PERFTOOLS__PROFILES__LOCATION__INIT, *locs[1] = {&loc};
	Perftools__Profiles__Mapping map = PERFTOOLS__PROFILES__MAPPING__INIT, *maps[1] = {&map};
	Perftools__Profiles__Sample smp = PERFTOOLS__PROFILES__SAMPLE__INIT, *smps[1] = {&smp};
	Perftools__Profiles__Label lab = PERFTOOLS__PROFILES__LABEL__INIT, *labs[1] = {&lab};
	Perftools__Profiles__Profile pr = PERFTOOLS__PROFILES__PROFILE__INIT;
	uint64_t locid[1] = {1};
	int64_t val[1] = {5};
	uint8_t *b;
	size_t len;

	CHECK(s);
	vt.type = 1, vt.unit = 2;
	fn.id = 1, fn.name = 3;
	line.function_id = 1;
	loc.id = 1, loc.mapping_id = 1, loc.address = 0x10, loc.n_line = 1, loc.line = lines;
	map.id = 1, map.filename = 4;
	smp.n_location_id = 1, smp.location_id = locid, smp.n_value = 1, smp.value = val;
	lab.key = 3, lab.str = 4;
	smp.n_label = 1, smp.label = labs;
	pr.n_sample_type = 1, pr.sample_type = vts;
	pr.n_function = 1, pr.function = fns;
	pr.n_location = 1, pr.location = locs;
	pr.n_mapping = 1, pr.mapping = maps;
	pr.n_sample = 1, pr.sample = smps;
	pr.n_string_table = 5, pr.string_table = strings;
	pr.time_nanos = now_ns();

#define TRY(mutate, undo, want, msg)                                                               \
	do {                                                                                       \
		mutate;                                                                            \
		b = packed(&pr, &len);                                                             \
		refused(s, b, len, want, msg);                                                     \
		free(b);                                                                           \
		undo;                                                                              \
	} while (0)

	TRY(vt.type = 99, vt.type = 1, -ERR_BADINPUT, "sample_type[0] has a string index");
	TRY(fn.name = -1, fn.name = 3, -ERR_BADINPUT, "function[0] has a string index");
	TRY(map.filename = 5, map.filename = 4, -ERR_BADINPUT, "mapping[0] has a string index");
	TRY(line.function_id = 7, line.function_id = 1, -ERR_BADINPUT, "function id 7");
	TRY(loc.mapping_id = 3, loc.mapping_id = 1, -ERR_BADINPUT, "mapping id 3");
	TRY(locid[0] = 2, locid[0] = 1, -ERR_BADINPUT, "location id 2");
	TRY(lab.str = 50, lab.str = 4, -ERR_BADINPUT, "label with a string index");
	TRY(smp.n_value = 0, smp.n_value = 1, -ERR_BADINPUT, "0 values for 1 sample types");
	TRY(pr.n_sample_type = 0, pr.n_sample_type = 1, -ERR_BADINPUT, "no sample_type");
	TRY(fn.id = 0, fn.id = 1, -ERR_BADINPUT, "id is 0 or used twice");
	TRY(pr.time_nanos = now_ns() + 3 * DAY, pr.time_nanos = now_ns(), -ERR_BADINPUT,
	    "in the future");
#undef TRY
	/* and the untouched one is fine */
	b = packed(&pr, &len);
	{
		struct pstore_label sl[2] = {{"service", "x"}, {"1bad", "y"}};
		char err[256];

		CHECK_INT(pstore_ingest(s, sl, 2, b, len, err, sizeof(err)), -ERR_BADINPUT);
		CHECK(strstr(err, "series label name '1bad'"));
		sl[1].name = "service";
		CHECK_INT(pstore_ingest(s, sl, 2, b, len, err, sizeof(err)), -ERR_BADINPUT);
		CHECK(strstr(err, "given twice"));
		CHECK_INT(count("profiles"), 0);
		CHECK_INT(pstore_ingest(s, sl, 1, b, len, err, sizeof(err)), 0);
		CHECK_INT(count("profiles"), 1);
	}
	free(b);
}

/* Random mutations of a valid profile: refused or stored, never a crash (ASan runs this). */
TEST(mutations)
{
	struct pstore *s = open_store();
	struct pstore_label lab[1] = {{"service", "m"}};
	struct prof p;
	uint64_t a[3];
	uint8_t *buf, *m;
	size_t len;
	unsigned x = 7;
	int stored = 0, refusedn = 0;

	CHECK(s);
	prof_new(&p, now_ns() - HOUR, 1);
	a[0] = loc_kernel(&p, "schedule");
	a[1] = loc_app(&p, 0x401000);
	a[2] = loc_app(&p, 0x400100);
	sample(&p, a, 3, 1, 2, 1, "x");
	sample(&p, a + 1, 2, 3, 4, 2, "y");
	CHECK_INT(pprofb_encode(p.b, &buf, &len), 0);
	pprofb_free(p.b);
	m = malloc(len);
	for (int i = 0; i < 3000; i++) {
		char err[256];
		int rc;

		memcpy(m, buf, len);
		for (int k = 0; k < 1 + i % 4; k++) {
			x = x * 1103515245 + 12345;
			m[(x >> 8) % len] = (uint8_t)(x >> 24);
		}
		rc = pstore_ingest(s, lab, 1, m, len - (i % 7 == 0 ? (x >> 4) % len : 0), err,
				   sizeof(err));
		CHECK(rc == 0 || rc == -ERR_BADINPUT || rc == -ERR_TOOBIG);
		if (rc)
			CHECK(err[0]);
		stored += rc == 0;
		refusedn += rc != 0;
	}
	fprintf(stderr, "  mutations: %d stored, %d refused\n", stored, refusedn);
	CHECK(refusedn > 0);
	free(m);
	free(buf);
}

TEST(retention_and_orphans)
{
	struct pstore *s = open_store();
	struct pstore_result *r = NULL;
	struct prof p;
	int64_t now = now_ns();
	uint64_t a[2], b[2];
	char *json = NULL;

	CHECK(s);
	/* an old profile (9 days) of its own series, with a stack only it uses */
	prof_new(&p, now - 9 * DAY, 0);
	a[0] = loc_app(&p, 0x401000);
	a[1] = loc_app(&p, 0x400100);
	b[0] = loc_app(&p, 0x40f000);
	b[1] = loc_kernel(&p, "old_kernel_fn");
	sample(&p, a, 2, 1, 0, 1, "shared");
	sample(&p, b, 2, 1, 0, 99, "old-only");
	CHECK_INT(prof_ingest(s, &p, "old", "h", 0), 0);
	/* a recent one sharing one stack */
	prof_new(&p, now - HOUR, 0);
	a[0] = loc_app(&p, 0x401000);
	a[1] = loc_app(&p, 0x400100);
	sample(&p, a, 2, 1, 0, 1, "shared");
	CHECK_INT(prof_ingest(s, &p, "new", "h", 0), 0);
	CHECK_INT(count("profiles"), 2);
	CHECK_INT(count("series"), 2);
	CHECK_INT(count("stacks"), 2);
	CHECK_INT(count("locations"), 4);
	CHECK_INT(count("labelsets"), 2);

	s = reopen(s, 7 * 86400);
	CHECK(s);
	CHECK_INT(pstore_retain(s), 0);
	CHECK_INT(count("profiles"), 1);
	CHECK_INT(count("series"), 1);
	CHECK_INT(count("stacks"), 1);
	CHECK_INT(count("locations"), 2);
	CHECK_INT(count("labelsets"), 1);
	CHECK_INT(label_values_text(s, "comm", &json), 0);
	CHECK_STR(json, "[\"shared\"]");
	free(json);
	CHECK_INT(label_values_text(s, "service", &json), 0);
	CHECK_STR(json, "[\"new\"]");
	free(json);
	CHECK_INT(pstore_query(s, NULL, 0, now, NULL, 0, &r), 0);
	CHECK_INT(r->nprofiles, 1);
	CHECK_INT(r->total, 1);
	CHECK_INT(stack_value(r, "0x2000;0x1100"), 1);
	pstore_result_free(r);

	/* the same stack comes back after its rows were deleted: new rows, same answers */
	prof_new(&p, now - 60 * SEC, 0);
	b[0] = loc_app(&p, 0x40f000);
	b[1] = loc_kernel(&p, "old_kernel_fn");
	sample(&p, b, 2, 4, 0, 99, "old-only");
	CHECK_INT(prof_ingest(s, &p, "old", "h", 0), 0);
	CHECK_INT(pstore_query(s, NULL, 0, now, NULL, 0, &r), 0);
	CHECK_INT(r->total, 5);
	CHECK_INT(stack_value(r, "0x10000;old_kernel_fn"), 4);
	pstore_result_free(r);
	{
		struct pstore_stats st;

		pstore_stats(s, &st);
		CHECK_INT(st.retain_runs, 1);
		CHECK_INT(st.retained_profiles, 1);
		CHECK_INT(st.ingests, 1);
	}
}

TEST(reopen_keeps_everything)
{
	struct pstore *s = open_store();
	struct pstore_result *r = NULL;
	struct prof p;
	int64_t t = now_ns() - HOUR;
	uint64_t a[2];

	CHECK(s);
	prof_new(&p, t, 0);
	a[0] = loc_app(&p, 0x401000);
	a[1] = loc_app(&p, 0x400100);
	sample(&p, a, 2, 7, 0, 1, "x");
	CHECK_INT(prof_ingest(s, &p, "svc", "h", 0), 0);
	s = reopen(s, 0);
	CHECK(s);
	/* the same stack again after a restart: found in the DB (cache empty), not duplicated */
	prof_new(&p, t + SEC, 0);
	a[0] = loc_app(&p, 0x401000);
	a[1] = loc_app(&p, 0x400100);
	sample(&p, a, 2, 3, 0, 1, "x");
	CHECK_INT(prof_ingest(s, &p, "svc", "h", 0), 0);
	CHECK_INT(count("stacks"), 1);
	CHECK_INT(count("locations"), 2);
	CHECK_INT(count("series"), 1);
	CHECK_INT(count("labelsets"), 1);
	CHECK_INT(pstore_query(s, NULL, t - HOUR, t + HOUR, NULL, 0, &r), 0);
	CHECK_INT(r->total, 10);
	CHECK_INT(r->nprofiles, 2);
	pstore_result_free(r);
}

/* ---- sample blobs: read here from the format's description, not with the store's reader ---- */

static int vget(const uint8_t **p, const uint8_t *end, uint64_t *v)
{
	*v = 0;
	for (int sh = 0; *p < end && sh < 64; sh += 7) {
		uint8_t b = *(*p)++;

		*v |= (uint64_t)(b & 0x7f) << sh;
		if (!(b & 0x80))
			return 0;
	}
	return -1;
}

static size_t vput(uint8_t *p, uint64_t v)
{
	size_t n = 0;

	for (; v >= 0x80; v >>= 7)
		p[n++] = (uint8_t)(v | 0x80);
	p[n++] = (uint8_t)v;
	return n;
}

/* The version 2 blob B as a version 1 blob in OUT (stack-sorted (stack, labelset, zigzag value)
 * triples after the scale); its length, or 0 when B is not a well-formed version 2 blob. */
static size_t blob_v2_to_v1(const uint8_t *b, size_t n, uint8_t *out)
{
	const uint8_t *p = b, *end = b + n;
	uint64_t zero, ver, scale, ls = 0, cnt, d, v, tri[64][3], prev = 0;
	size_t nt = 0, o = 0;

	if (vget(&p, end, &zero) || zero || vget(&p, end, &ver) || ver != 2 ||
	    vget(&p, end, &scale))
		return 0;
	while (p < end) {
		uint64_t stack = 0;

		if (vget(&p, end, &d) || vget(&p, end, &cnt))
			return 0;
		ls += d;
		while (cnt--) {
			if (vget(&p, end, &d) || nt == 64)
				return 0;
			v = (d & 3) * 2; /* zigzag of the value 1 to 3 the entry holds */
			if (!(d & 3) && vget(&p, end, &v))
				return 0;
			stack += d >> 2;
			tri[nt][0] = stack;
			tri[nt][1] = ls;
			tri[nt++][2] = v;
		}
	}
	for (size_t i = 1; i < nt; i++) /* insertion sort by stack, then labelset */
		for (size_t j = i;
		     j > 0 && (tri[j - 1][0] > tri[j][0] ||
			       (tri[j - 1][0] == tri[j][0] && tri[j - 1][1] > tri[j][1]));
		     j--)
			for (int k = 0; k < 3; k++) {
				uint64_t x = tri[j][k];

				tri[j][k] = tri[j - 1][k];
				tri[j - 1][k] = x;
			}
	o += vput(out, scale);
	for (size_t i = 0; i < nt; i++) {
		o += vput(out + o, tri[i][0] - prev);
		o += vput(out + o, tri[i][1]);
		o += vput(out + o, tri[i][2]);
		prev = tri[i][0];
	}
	return o;
}

/* Run SQL with BLOB bound to ?1 (when given) on the test's DB, the store closed. */
static int db_exec_blob(const char *sql, const void *blob, size_t len)
{
	char path[300];
	sqlite3 *db = NULL;
	sqlite3_stmt *st = NULL;
	int rc;

	snprintf(path, sizeof(path), "%s/profiles.db", dir);
	rc = sqlite3_open_v2(path, &db, SQLITE_OPEN_READWRITE, NULL);
	if (rc == SQLITE_OK)
		rc = sqlite3_prepare_v2(db, sql, -1, &st, NULL);
	if (rc == SQLITE_OK && blob)
		rc = sqlite3_bind_blob(st, 1, blob, (int)len, SQLITE_TRANSIENT);
	if (rc == SQLITE_OK)
		rc = sqlite3_step(st) == SQLITE_DONE ? SQLITE_OK : SQLITE_ERROR;
	sqlite3_finalize(st);
	sqlite3_close(db);
	return rc;
}

TEST(sample_blobs_old_format_and_damage)
{
	struct pstore *s = open_store();
	struct pstore_result *r = NULL;
	struct prof p;
	int64_t t = now_ns() - HOUR;
	uint64_t st1[3], st2[2];
	uint8_t v2[1024], v1[1024];
	size_t n2 = 0, n1;
	char path[300];
	sqlite3 *db = NULL;
	sqlite3_stmt *st = NULL;

	CHECK(s);
	prof_new(&p, t, 0);
	st1[0] = loc_kernel(&p, "do_syscall_64");
	st1[1] = loc_app(&p, 0x401234);
	st1[2] = loc_app(&p, 0x400100);
	st2[0] = loc_app(&p, 0x401010);
	st2[1] = loc_app(&p, 0x400100);
	sample(&p, st1, 3, 10, 0, 42, "app");
	sample(&p, st2, 2, 1, 0, 42, "app");
	sample(&p, st2, 2, 7, 0, 43, "worker");
	sample(&p, st1, 3, 1, 0, 44, "worker");
	CHECK_INT(prof_ingest(s, &p, "checkout", "web-1", 1), 0);
	pstore_close(store);
	store = NULL;

	snprintf(path, sizeof(path), "%s/profiles.db", dir);
	CHECK_INT(sqlite3_open_v2(path, &db, SQLITE_OPEN_READONLY, NULL), SQLITE_OK);
	CHECK_INT(sqlite3_prepare_v2(db, "SELECT samples FROM profiles", -1, &st, NULL), SQLITE_OK);
	if (sqlite3_step(st) == SQLITE_ROW) {
		n2 = (size_t)sqlite3_column_bytes(st, 0);
		if (n2 <= sizeof(v2))
			memcpy(v2, sqlite3_column_blob(st, 0), n2);
	}
	sqlite3_finalize(st);
	sqlite3_close(db);
	/* 4 entries in 3 label-set groups: header 3 + 3 group heads of 2 + 4 entries, values 10
	 * and 7 taking a second byte, 1 none */
	CHECK(n2 > 0 && n2 <= 3 + 3 * 2 + 4 * 2);
	n1 = blob_v2_to_v1(v2, n2, v1);
	CHECK(n1 > 0);

	/* a store written by the previous version reads the same */
	CHECK_INT(db_exec_blob("UPDATE profiles SET samples = ?1", v1, n1), SQLITE_OK);
	s = reopen(NULL, 0);
	CHECK(s);
	CHECK_INT(pstore_query(s, NULL, t - HOUR, t + HOUR, NULL, 0, &r), 0);
	CHECK_INT(r->total, 19);
	CHECK_INT(stack_value(r, "do_syscall_64;0x2234;0x1100"), 11);
	CHECK_INT(stack_value(r, "0x2010;0x1100"), 8);
	pstore_result_free(r);
	r = NULL;

	/* damaged blobs are an error of the query, never a crash or a wrong sum */
	static const struct {
		uint8_t b[6];
		size_t n;
	} bad[] = {
	    {{0, 3, 1}, 3},		/* an unknown version */
	    {{0, 2, 1, 0, 0}, 5},	/* an empty group */
	    {{0, 2, 1, 0, 2, 3}, 6},	/* a group that ends early */
	    {{0, 2, 0x80}, 3},		/* a truncated varint */
	    {{0, 2, 1, 0, 1, 0x80}, 6}, /* an entry's truncated varint */
	};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		pstore_close(store);
		store = NULL;
		CHECK_INT(db_exec_blob("UPDATE profiles SET samples = ?1", bad[i].b, bad[i].n),
			  SQLITE_OK);
		s = reopen(NULL, 0);
		CHECK(s);
		CHECK(pstore_query(s, NULL, t - HOUR, t + HOUR, NULL, 0, &r) < 0);
		pstore_result_free(r);
		r = NULL;
	}
}

/* ---- group commit: concurrent ingests share transactions, and each is stored once ---- */

#define GC_THREADS  8
#define GC_PROFILES 40

struct gc_arg {
	struct pstore *s;
	int64_t t;
	int i, failed;
};

static void *gc_thread(void *p)
{
	struct gc_arg *a = p;
	char svc[16];

	snprintf(svc, sizeof(svc), "svc%d", a->i);
	for (int k = 0; k < GC_PROFILES; k++) {
		struct prof pr;
		uint64_t st[2];

		prof_new(&pr, a->t + k * SEC, 0);
		st[0] = loc_app(&pr, 0x401000 + (uint64_t)(a->i * 64 + k));
		st[1] = loc_app(&pr, 0x400100);
		sample(&pr, st, 2, k + 1, 0, a->i, "w");
		a->failed += prof_ingest(a->s, &pr, svc, "h", k & 1) != 0;
	}
	return NULL;
}

TEST(group_commit_concurrent_ingests)
{
	struct pstore *s = open_store();
	struct pstore_result *r = NULL;
	struct pstore_stats st;
	struct gc_arg a[GC_THREADS];
	pthread_t th[GC_THREADS];
	int64_t t = now_ns() - HOUR;
	int failed = 0;

	CHECK(s);
	for (int i = 0; i < GC_THREADS; i++) {
		a[i] = (struct gc_arg){.s = s, .t = t, .i = i};
		CHECK_INT(pthread_create(&th[i], NULL, gc_thread, &a[i]), 0);
	}
	for (int i = 0; i < GC_THREADS; i++) {
		pthread_join(th[i], NULL);
		failed += a[i].failed;
	}
	CHECK_INT(failed, 0);
	pstore_stats(s, &st);
	fprintf(stderr, "  %d ingests from %d threads in %" PRIu64 " commits\n",
		GC_THREADS * GC_PROFILES, GC_THREADS, st.ingest_commits);
	CHECK_INT(st.ingests, GC_THREADS * GC_PROFILES);
	CHECK(st.ingest_commits >= 1 && st.ingest_commits <= st.ingests);
	CHECK_INT(count("profiles"), GC_THREADS * GC_PROFILES);
	CHECK_INT(count("stacks"), GC_THREADS * GC_PROFILES);
	CHECK_INT(pstore_query(s, NULL, t - HOUR, t + HOUR, NULL, 0, &r), 0);
	CHECK_INT(r->nprofiles, GC_THREADS * GC_PROFILES);
	CHECK_INT(r->total, GC_THREADS * (GC_PROFILES * (GC_PROFILES + 1) / 2));
	pstore_result_free(r);
	/* after a restart every acknowledged profile is there */
	s = reopen(NULL, 0);
	CHECK(s);
	CHECK_INT(pstore_query(s, NULL, t - HOUR, t + HOUR, NULL, 0, &r), 0);
	CHECK_INT(r->nprofiles, GC_THREADS * GC_PROFILES);
	pstore_result_free(r);
}

/* Sample values are outside numbers: sums that pass 64 bits are refused at ingest (one profile)
 * or at query (many), never wrapped (two INT64_MAX values once made a total of -2). */
TEST(value_sums_never_wrap)
{
	struct pstore *s = open_store();
	struct pstore_result *r = NULL;
	struct prof p;
	int64_t t = now_ns() - HOUR;
	uint64_t a[2], b[2];

	CHECK(s);
	for (int same = 0; same < 2; same++) {
		/* the same stack and labels, the labels in another order: two pprof samples that
		 * the store's canonical label sets make one entry */
		struct pprofb_label l2[2] = {{.key = "comm", .str = "x"}, {.key = "pid", .num = 1}};
		int64_t vals[1] = {INT64_MAX};

		prof_new(&p, t, 0);
		a[0] = loc_app(&p, 0x401000);
		a[1] = loc_app(&p, 0x400100);
		b[0] = loc_app(&p, 0x401010);
		b[1] = loc_app(&p, 0x400100);
		sample(&p, a, 2, INT64_MAX, 0, 1, "x");
		if (same)
			CHECK_INT(pprofb_add_sample(p.b, a, 2, vals, l2, 2), 0);
		else
			sample(&p, b, 2, INT64_MAX, 0, 2, "x");
		CHECK_INT(prof_ingest(s, &p, "svc", "h", 0), -ERR_BADINPUT);
	}
	CHECK_INT(count("profiles"), 0);
	/* each fits; together they pass the answer's bound */
	for (int i = 0; i < 3; i++) {
		prof_new(&p, t + i * SEC, 0);
		a[0] = loc_app(&p, 0x401000 + (uint64_t)i * 16);
		a[1] = loc_app(&p, 0x400100);
		sample(&p, a, 2, INT64_MAX / 2, 0, 1, "x");
		CHECK_INT(prof_ingest(s, &p, "svc", "h", 0), 0);
	}
	CHECK_INT(pstore_query(s, NULL, t - HOUR, t + HOUR, NULL, 0, &r), -ERANGE);
	pstore_result_free(r);
	r = NULL;
	/* and the same stack three times: the merge's own sum passes 64 bits */
	for (int i = 0; i < 3; i++) {
		prof_new(&p, t + (10 + i) * SEC, 0);
		a[0] = loc_app(&p, 0x402000);
		a[1] = loc_app(&p, 0x400100);
		sample(&p, a, 2, INT64_MAX / 2, 0, 1, "x");
		CHECK_INT(prof_ingest(s, &p, "svc2", "h", 0), 0);
	}
	CHECK_INT(pstore_query(s, NULL, t + 10 * SEC, t + HOUR, NULL, 0, &r), -ERANGE);
	pstore_result_free(r);
}

/* A producer's retry of a profile whose answer was lost carries the same idempotency key: it
 * is stored once. Other keys, and no key, store every time; a malformed key is bad input. */
TEST(idempotency_key_stores_once)
{
	struct pstore *s = open_store();
	struct pstore_label lab[1] = {{"service", "idem"}};
	int64_t t = now_ns() - HOUR;
	uint8_t *buf = NULL;
	size_t len = 0;
	struct prof p;
	uint64_t a[2];
	char err[256];
	struct {
		const char *key;
		int rc, duplicate, stored;
	} steps[] = {
	    {"agent-1:0001", 0, 0, 1}, {"agent-1:0001", 0, 1, 1}, {"agent-1:0002", 0, 0, 2},
	    {NULL, 0, 0, 3},	       {NULL, 0, 0, 4},		  {"bad key!", -ERR_BADINPUT, 0, 4},
	    {"", -ERR_BADINPUT, 0, 4},
	};

	CHECK(s);
	prof_new(&p, t, 0);
	a[0] = loc_app(&p, 0x401000);
	a[1] = loc_app(&p, 0x400100);
	sample(&p, a, 2, 7, 0, 1, "x");
	CHECK_INT(pprofb_encode(p.b, &buf, &len), 0);
	pprofb_free(p.b);
	for (size_t i = 0; i < sizeof(steps) / sizeof(steps[0]); i++) {
		struct pstore_ingest_info info = {.key = steps[i].key};

		CHECK_INT(pstore_ingest_ex(s, lab, 1, buf, len, &info, err, sizeof(err)),
			  steps[i].rc);
		CHECK_INT(info.duplicate, steps[i].duplicate);
		CHECK_INT(count("profiles"), steps[i].stored);
	}
	/* remembered across a restart */
	s = reopen(NULL, 0);
	CHECK(s);
	{
		struct pstore_ingest_info info = {.key = "agent-1:0002"};

		CHECK_INT(pstore_ingest_ex(s, lab, 1, buf, len, &info, err, sizeof(err)), 0);
		CHECK_INT(info.duplicate, 1);
		CHECK_INT(count("profiles"), 4);
	}
	free(buf);
}

/* Below opts.reserve free bytes an ingest is refused with -ENOSPC and a message naming the
 * reserve, before anything is written; with room again it is stored. */
TEST(disk_reserve_refuses_before_writing)
{
	struct pstore *s = open_store();
	struct pstore_label lab[1] = {{"service", "full"}};
	uint8_t *buf = NULL;
	size_t len = 0;
	struct prof p;
	uint64_t a[1];
	char err[256];

	CHECK(s);
	prof_new(&p, now_ns() - HOUR, 0);
	a[0] = loc_app(&p, 0x401000);
	sample(&p, a, 1, 7, 0, 1, "x");
	CHECK_INT(pprofb_encode(p.b, &buf, &len), 0);
	pprofb_free(p.b);
	CHECK_INT(pstore_ingest(s, lab, 1, buf, len, err, sizeof(err)), 0);
	s = reopen_opts((struct pstore_opts){.reserve = UINT64_MAX / 2});
	CHECK(s);
	CHECK_INT(pstore_read_only(s), 0);
	CHECK_INT(pstore_ingest(s, lab, 1, buf, len, err, sizeof(err)), -ENOSPC);
	CHECK(strstr(err, "--disk-reserve") != NULL);
	CHECK_INT(count("profiles"), 1);
	s = reopen_opts((struct pstore_opts){.reserve = 1});
	CHECK(s);
	CHECK_INT(pstore_ingest(s, lab, 1, buf, len, err, sizeof(err)), 0);
	CHECK_INT(count("profiles"), 2);
	free(buf);
}
