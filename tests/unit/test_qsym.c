/*
 * Unit tests of symbolizer/query/qsym and engine/loadrebuild against a real debug store, resolver
 * (no debuginfod) and symbol cache, with fixtures compiled at test time from
 * tests/data/src/inline_c.c (-O2 -g, non-PIE so that file offsets and addresses differ):
 * - rebuilt program headers of objcopy --only-keep-debug files equal the executables' own
 *   (fixtures, and Debian's libc6-dbg when installed);
 * - a build ID without debug info stays unknown and nothing is cached; after an upload the
 *   next run resolves it (retroactive), answers equal to the engine on the executable;
 * - a second run is all cache hits; a replaced file (new identity) is symbolized again;
 * - named and build-ID-less locations pass through; out-of-segment offsets stay unknown;
 * - concurrent runs give identical answers.
 */
#include "tests/t.h"
#include "tests/unit/fixture.h"

#include "cache/debugstore.h"
#include "cache/resolver.h"
#include "lib/log.h"
#include "symbolizer/engine/loadrebuild.h"
#include "symbolizer/query/qsym.h"
#include "symbolizer/engine/opensyms.h"
#include "symbolizer/engine/symfile.h"

#include <errno.h>
#include <inttypes.h>
#include <limits.h>
#include <pthread.h>
#include <stdint.h>
#include <unistd.h>

#define NADDR 400
#define MAXF  64

__attribute__((constructor)) static void quiet(void)
{
	log_set_level(FS_LOG_ERROR);
}

static const char *setup(void)
{
	return fixture_setup(
	    "test_qsym",
	    "cd %1$s && mkdir -p data debugdir && "
	    "gcc -O2 -g -no-pie -o fx %2$s/tests/data/src/inline_c.c && "
	    "gcc -O2 -g -o fxpie %2$s/tests/data/src/inline_c.c && "
	    "gcc -O2 -g -shared -fPIC -DVARIANT=2 -o fx.so %2$s/tests/data/src/inline_c.c && "
	    "for f in fx fxpie fx.so; do objcopy --only-keep-debug $f $f.debug; done");
}

static void path_of(char *buf, size_t len, const char *file)
{
	snprintf(buf, len, "%s/%s", fixture_dir, file);
}

static void same_maps(const char *exe, const char *debug)
{
	struct loadmap a, b;
	enum loadrebuild_how ha, hb;

	CHECK_INT(loadrebuild_from_path(exe, &a, &ha), 0);
	CHECK_INT(loadrebuild_from_path(debug, &b, &hb), 0);
	CHECK_INT(ha, LOADREBUILD_EXACT);
	CHECK_INT(hb, LOADREBUILD_REBUILT);
	CHECK(a.nsegs >= 2);
	/* the rebuilt map may be longer for the writable segment (bss); the rest is equal */
	CHECK_INT(a.nsegs, b.nsegs);
	for (int i = 0; i < a.nsegs; i++) {
		CHECK_INT(a.segs[i].offset, b.segs[i].offset);
		CHECK_INT(a.segs[i].vaddr, b.segs[i].vaddr);
		if (i + 1 < a.nsegs)
			CHECK_INT(a.segs[i].filesz, b.segs[i].filesz);
	}
}

TEST(rebuilt_headers_equal_the_executables)
{
	const char *files[] = {"fx", "fxpie", "fx.so"};
	char exe[256], dbg[PATH_MAX], bid[BUILDID_HEX_MAX], libc[PATH_MAX];
	struct loadmap m;
	enum loadrebuild_how how;

	if (!setup())
		SKIP("gcc or objcopy missing");
	for (size_t i = 0; i < 3; i++) {
		path_of(exe, sizeof(exe), files[i]);
		snprintf(dbg, sizeof(dbg), "%s.debug", exe);
		same_maps(exe, dbg);
	}
	/* a debug file with intact headers (eu-strip -f) needs no rebuild */
	path_of(exe, sizeof(exe), "fx");
	CHECK_INT(loadrebuild_from_path(exe, &m, &how), 0);
	CHECK_INT(how, LOADREBUILD_EXACT);
	CHECK_INT(loadrebuild_from_path("/nonexistent", &m, &how), -ENOENT);
	/* Debian's libc and its libc6-dbg file, when installed */
	if (!realpath("/lib/x86_64-linux-gnu/libc.so.6", libc) || buildid_from_path(libc, bid))
		return;
	CHECK_INT(buildid_debug_path("/usr/lib/debug", bid, dbg, sizeof(dbg)), 0);
	if (access(dbg, R_OK) == 0)
		same_maps(libc, dbg);
}

/* The service's pieces over a store in fixture_dir/data. */
struct svc {
	struct dstore *store;
	struct resolver *res;
	struct opensyms *sc;
	struct qsym *q;
};

static void svc_cleanup(void *arg);

/* S must outlive the test (static): the harness closes it when the test ends. */
static void svc_open(struct svc *s)
{
	static char ddir[128], debugdir[128];
	static const char *dirs[2];
	struct dstore_opts so = {0};
	struct resolver_opts ro = {0};
	struct opensyms_opts co = {0};
	struct qsym_opts qo = {0};
	char cmd[256];

	t_defer(svc_cleanup, s);
	snprintf(cmd, sizeof(cmd), "rm -rf %s/data && mkdir -p %s/data", fixture_dir, fixture_dir);
	CHECK_INT(system(cmd), 0);
	snprintf(ddir, sizeof(ddir), "%s/data", fixture_dir);
	snprintf(debugdir, sizeof(debugdir), "%s/debugdir", fixture_dir);
	dirs[0] = debugdir;
	so.data_dir = ddir;
	CHECK_INT(dstore_open(&so, &s->store), 0);
	ro.store = s->store;
	ro.debug_dirs = dirs;
	CHECK_INT(resolver_new(&ro, &s->res), 0);
	co.wait_ms = 60000; /* the worker's index, not "pending" */
	co.index_dir = dstore_index_dir(s->store);
	co.tmp_dir = dstore_tmp_dir(s->store);
	CHECK_INT(opensyms_new(&co, &s->sc), 0);
	qo.resolver = s->res;
	qo.opensyms = s->sc;
	qo.wait_ms = 200;
	CHECK_INT(qsym_new(&qo, &s->q), 0);
}

static void svc_close(struct svc *s)
{
	qsym_free(s->q);
	opensyms_free(s->sc);
	resolver_free(s->res);
	dstore_close(s->store);
	memset(s, 0, sizeof(*s));
}

static void svc_cleanup(void *arg)
{
	svc_close(arg);
}

/* Upload FILE (copied into the store's tmp dir) for BID, as PUT does. */
static void upload(struct svc *s, const char *file, const char *bid, int force)
{
	char cmd[1024], tmp[512];
	enum dstore_put_result pr;

	snprintf(tmp, sizeof(tmp), "%s/up-%d", dstore_tmp_dir(s->store), rand());
	snprintf(cmd, sizeof(cmd), "cp %s/%s %s", fixture_dir, file, tmp);
	CHECK_INT(system(cmd), 0);
	CHECK_INT(dstore_put(s->store, bid, tmp, DSTORE_SRC_UPLOAD, force, &pr, NULL), 0);
	resolver_forget_negative(s->res, bid);
	opensyms_drop(s->sc, bid);
}

/* The raw locations: NADDR offsets over fx's .text, and the engine's answers at their
 * addresses. */
static uint64_t offs[NADDR];
static char ref[NADDR][1024];
static char fx_bid[BUILDID_HEX_MAX];

static void flat(char *buf, size_t len, const char *fn, const char *file, long line, int inl,
		 size_t *off)
{
	*off += (size_t)snprintf(buf + *off, len - *off, "%s|%s:%ld|%d;", fn, file ? file : "?",
				 line, inl);
	if (*off >= len)
		*off = len - 1;
}

static void make_reference(void)
{
	char exe[256], cmd[512];
	unsigned long long lo = 0, size = 0;
	struct loadmap m;
	enum loadrebuild_how how;
	struct symfile *sf;
	struct sym_frame f[MAXF];
	FILE *p;

	path_of(exe, sizeof(exe), "fx");
	CHECK_INT(buildid_from_path(exe, fx_bid), 0);
	snprintf(cmd, sizeof(cmd), "readelf -SW %s | awk '$2==\".text\"{print $4, $6}'", exe);
	p = popen(cmd, "r");
	CHECK(p);
	CHECK_INT(fscanf(p, "%llx %llx", &lo, &size), 2);
	pclose(p);
	CHECK_INT(loadrebuild_from_path(exe, &m, &how), 0);
	CHECK_INT(symfile_open(exe, NULL, &sf), 0);
	for (size_t i = 0; i < NADDR; i++) {
		uint64_t va = lo + (i * 7919) % size;
		size_t off = 0;
		int n, s;

		for (s = 0; s < m.nsegs; s++)
			if (va >= m.segs[s].vaddr && va - m.segs[s].vaddr < m.segs[s].filesz)
				break;
		CHECK(s < m.nsegs);
		offs[i] = va - m.segs[s].vaddr + m.segs[s].offset;
		CHECK(offs[i] != va); /* non-PIE: the translation matters */
		n = symfile_lookup(sf, va, f, MAXF);
		ref[i][0] = '\0';
		for (int k = 0; k < n; k++)
			flat(ref[i], sizeof(ref[i]),
			     f[k].function  ? f[k].function
			     : f[k].linkage ? f[k].linkage
					    : "??",
			     f[k].file, f[k].file ? (long)f[k].line : 0, f[k].inlined, &off);
		if (f[0].source == SYM_SRC_NONE)
			ref[i][0] = '\0';
	}
	symfile_close(sf);
}

/* NADDR raw locations of fx, one out-of-segment offset, one named, one without a build ID,
 * and a raw one whose producer also sent a name (the fallback while fx is unknown). */
#define NLOCS (NADDR + 4)
static struct pstore_loc locs[NLOCS];
static const struct pstore_named_frame named[] = {{"inl", "a.c", 3}, {"outer", "a.c", 9}};

static struct pstore_result input(void)
{
	struct pstore_result r = {.locs = locs, .nlocs = NLOCS};

	for (size_t i = 0; i < NADDR; i++)
		locs[i] = (struct pstore_loc){
		    .id = (int64_t)i + 1, .file_off = offs[i], .mapping_file = "/opt/fx"};
	for (size_t i = 0; i <= NADDR; i++)
		snprintf(locs[i].build_id, sizeof(locs[i].build_id), "%s", fx_bid);
	locs[NADDR].file_off = 0x7fffffff;
	locs[NADDR].mapping_file = "/opt/fx";
	locs[NADDR + 1] = (struct pstore_loc){.frames = named, .nframes = 2};
	locs[NADDR + 2] = (struct pstore_loc){.file_off = 0x10, .mapping_file = "[vdso]"};
	locs[NADDR + 3] = locs[0];
	locs[NADDR + 3].frames = named + 1;
	locs[NADDR + 3].nframes = 1;
	return r;
}

static void check_answers(const struct qsym_result *res)
{
	size_t bad = 0;

	for (size_t i = 0; i < NADDR; i++) {
		const struct qsym_loc *l = &res->locs[i];
		char got[1024] = "";
		size_t off = 0;

		for (uint32_t k = 0; k < l->nframes; k++)
			flat(got, sizeof(got), l->frames[k].function, l->frames[k].file,
			     (long)l->frames[k].line, l->frames[k].inlined, &off);
		if (strcmp(got, ref[i]) && bad++ < 3)
			fprintf(stderr, "  offset 0x%" PRIx64 ": got '%s', engine '%s'\n", offs[i],
				got, ref[i]);
		CHECK_INT(l->unknown, ref[i][0] == '\0');
	}
	CHECK_INT(bad, 0);
	CHECK(res->locs[NADDR].unknown);
	CHECK(res->locs[NADDR + 1].named && !res->locs[NADDR + 1].unknown);
	CHECK_INT(res->locs[NADDR + 1].nframes, 2);
	CHECK_STR(res->locs[NADDR + 1].frames[0].function, "inl");
	CHECK(res->locs[NADDR + 1].frames[0].inlined);
	CHECK(!res->locs[NADDR + 1].frames[1].inlined);
	CHECK_INT(res->locs[NADDR + 1].frames[1].line, 9);
	CHECK(res->locs[NADDR + 2].unknown);
	CHECK_INT(res->locs[NADDR + 2].bid, -1);
	CHECK(!res->locs[NADDR + 3].named && !res->locs[NADDR + 3].unknown);
	CHECK_STR(res->locs[NADDR + 3].frames[0].function, res->locs[0].frames[0].function);
}

TEST(missing_then_uploaded_then_cached_then_replaced)
{
	static struct svc s;
	struct pstore_result r;
	struct qsym_result *res;
	struct qsym_stats st;

	if (!setup())
		SKIP("gcc or objcopy missing");
	make_reference();
	r = input();
	svc_open(&s);

	/* no debug info: every raw location unknown, the build ID listed as missing */
	CHECK_INT(qsym_run(s.q, &r, &res), 0);
	CHECK_INT(res->nbids, 1);
	CHECK_STR(res->bids[0].build_id, fx_bid);
	CHECK_INT(res->bids[0].status, QSYM_MISSING);
	CHECK(res->bids[0].reason);
	CHECK_INT(res->bids[0].nlocs, NADDR + 2);
	CHECK_INT(res->bids[0].nunknown, NADDR + 1);
	CHECK(!res->partial);
	for (size_t i = 0; i < NADDR; i++)
		CHECK(res->locs[i].unknown);
	/* the producer's name stands in while the debug info is missing */
	CHECK(res->locs[NADDR + 3].named && !res->locs[NADDR + 3].unknown);
	CHECK_STR(res->locs[NADDR + 3].frames[0].function, "outer");
	qsym_result_free(res);
	qsym_stats(s.q, &st);
	CHECK_INT(st.cached, 0);

	/* the debug file arrives (zeroed headers, rebuilt): the next run resolves */
	upload(&s, "fx.debug", fx_bid, 0);
	CHECK_INT(qsym_run(s.q, &r, &res), 0);
	CHECK_INT(res->bids[0].status, QSYM_FOUND);
	CHECK_INT(res->bids[0].map, LOADREBUILD_REBUILT);
	CHECK_INT(res->symbolized, NADDR);
	CHECK_INT(res->cache_hits, 0);
	check_answers(res);
	qsym_result_free(res);

	/* again: all from the results cache, same answers */
	CHECK_INT(qsym_run(s.q, &r, &res), 0);
	CHECK_INT(res->symbolized, 0);
	CHECK_INT(res->cache_hits, NADDR + 1); /* offs[0] twice: one lookup */
	CHECK_INT(res->bids[0].map, LOADREBUILD_REBUILT);
	check_answers(res);
	qsym_result_free(res);
	qsym_stats(s.q, &st);
	CHECK_INT(st.cached, NADDR + 1); /* offs[0] twice: cached once */
	CHECK_INT(st.build_ids, 1);

	/* the executable replaces it: a new file, looked up afresh, through its own headers */
	upload(&s, "fx", fx_bid, 1);
	CHECK_INT(qsym_run(s.q, &r, &res), 0);
	CHECK_INT(res->cache_hits, 0);
	CHECK_INT(res->symbolized, NADDR);
	CHECK_INT(res->bids[0].map, LOADREBUILD_EXACT);
	check_answers(res);
	qsym_result_free(res);
	qsym_stats(s.q, &st);
	CHECK_INT(st.dropped, 1);
	CHECK_INT(st.cached, NADDR + 1);
	svc_close(&s);
}

TEST(cache_cap_evicts_whole_build_ids)
{
	static struct svc s;
	struct pstore_result r;
	struct qsym_result *res;
	struct qsym_stats st;
	struct qsym_opts qo = {0};

	if (!setup())
		SKIP("gcc or objcopy missing");
	make_reference();
	r = input();
	svc_open(&s);
	qsym_free(s.q);
	qo.resolver = s.res;
	qo.opensyms = s.sc;
	qo.max_cached = 10;
	CHECK_INT(qsym_new(&qo, &s.q), 0);
	upload(&s, "fx", fx_bid, 0);
	/* the only table is in use while it grows past the cap: kept for the run, evicted at
	 * the next one's insertions at the latest; answers are right either way */
	CHECK_INT(qsym_run(s.q, &r, &res), 0);
	check_answers(res);
	qsym_result_free(res);
	CHECK_INT(qsym_run(s.q, &r, &res), 0);
	check_answers(res);
	qsym_result_free(res);
	qsym_stats(s.q, &st);
	CHECK(st.cached <= NADDR + 1);
	svc_close(&s);
}

struct conc {
	struct svc *s;
	const struct pstore_result *r;
	int bad;
};

static void *conc_main(void *arg)
{
	struct conc *c = arg;

	for (int k = 0; k < 20; k++) {
		struct qsym_result *res;

		if (qsym_run(c->s->q, c->r, &res)) {
			c->bad++;
			continue;
		}
		for (size_t i = 0; i < NADDR; i++) {
			const struct qsym_loc *l = &res->locs[i];

			if (l->unknown != (ref[i][0] == '\0') ||
			    (l->nframes &&
			     strncmp(ref[i], l->frames[0].function, strlen(l->frames[0].function))))
				c->bad++;
		}
		qsym_result_free(res);
	}
	return NULL;
}

TEST(concurrent_runs_agree)
{
	static struct svc s;
	struct pstore_result r;
	struct conc c[4];
	pthread_t t[4];
	int n;

	if (!setup())
		SKIP("gcc or objcopy missing");
	make_reference();
	r = input();
	svc_open(&s);
	upload(&s, "fx.debug", fx_bid, 0);
	for (n = 0; n < 4; n++) {
		c[n] = (struct conc){&s, &r, 0};
		if (pthread_create(&t[n], NULL, conc_main, &c[n]))
			break;
	}
	for (int i = 0; i < n; i++)
		pthread_join(t[i], NULL);
	CHECK_INT(n, 4);
	for (int i = 0; i < 4; i++)
		CHECK_INT(c[i].bad, 0);
	svc_close(&s);
}
