/*
 * Unit tests of cache/debugstore on real ELF files compiled here (gcc, objcopy, strip): installs,
 * identical and better/worse decisions, refusals, decompression (checked with eu-readelf, libdw,
 * eu-addr2line and by running a decompressed executable), LRU eviction under a tiny cap,
 * persistence across a reopen, no temp files left, and concurrent puts.
 */
#include "tests/t.h"
#include "tests/unit/fixture.h"

#include "cache/debugstore.h"
#include "lib/err.h"
#include "lib/log.h"

#include <elfutils/libdw.h>
#include <errno.h>
#include <fcntl.h>
#include <gelf.h>
#include <jansson.h>
#include <pthread.h>
#include <stdarg.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <unistd.h>

__attribute__((constructor)) static void quiet(void)
{
	log_set_level(FS_LOG_ERROR);
}

/* ---- fixtures, built once per run into a temp dir ---- */

#define NVARIANTS 9 /* p0 .. p8: the same program with -DVARIANT=i, so 9 build IDs */

static char fx[64];
static char bids[NVARIANTS][BUILDID_HEX_MAX];

static const char prog_src[] =
    "#include <stdio.h>\n"
    "__attribute__((noinline)) static int leaf(int x) { return x * 3 + VARIANT; }\n"
    "static inline int mid(int x) { return leaf(x) + 1; }\n"
    "int main(int argc, char **argv) {\n"
    "  (void)argv;\n"
    "  printf(\"result %d\\n\", mid(argc + 40));\n"
    "  return 0;\n"
    "}\n";

static int sh(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static int sh(const char *fmt, ...)
{
	char cmd[2048];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(cmd, sizeof(cmd), fmt, ap);
	va_end(ap);
	return system(cmd) == 0 ? 0 : -1;
}

static void cleanup_fixtures(void)
{
	if (fx[0])
		sh("rm -rf '%s'", fx);
}

static const char *fxp(const char *name)
{
	static char buf[8][256];
	static int k;

	k = (k + 1) % 8;
	snprintf(buf[k], sizeof(buf[k]), "%s/%s", fx, name);
	return buf[k];
}

/* Builds the fixtures or SKIPs when the tools are missing. */
static void fixtures(void)
{
	static int state; /* 0 not tried, 1 ok, -1 failed */
	FILE *f;

	if (state == 0) {
		state = -1;
		if (sh("command -v gcc objcopy strip eu-readelf eu-addr2line sha256sum >/dev/null"))
			goto done;
		snprintf(fx, sizeof(fx), "/tmp/fleetsym-dstore-fx.XXXXXX");
		if (!mkdtemp(fx)) {
			fx[0] = '\0';
			goto done;
		}
		atexit(cleanup_fixtures);
		f = fopen(fxp("p.c"), "w");
		if (!f)
			goto done;
		fputs(prog_src, f);
		fclose(f);
		for (int i = 0; i < NVARIANTS; i++)
			if (sh("cd %s && gcc -g -O2 -Wl,--build-id -DVARIANT=%d -o p%d p.c && "
			       "objcopy --only-keep-debug p%d p%d.debug",
			       fx, i, i, i, i))
				goto done;
		if (sh("cd %s && objcopy --compress-debug-sections=zlib p0.debug p0.debug.z && "
		       "objcopy --compress-debug-sections=zlib p0 p0.z && "
		       "strip --strip-debug -o p0.symtab p0 && "
		       "objcopy --remove-section=.debug_line p0.debug p0.nolines && "
		       "head -c 3000 p0.debug > p0.trunc && echo 'not an ELF file' > notelf && "
		       "gcc -O2 -Wl,--build-id=none -DVARIANT=0 -o nobid p.c && "
		       /* a bomb: 64 MB of zeros that zlib turns into about 64 KB */
		       "head -c 64000000 /dev/zero > zeros && "
		       "objcopy --add-section .debug_zeros=zeros p0.debug bomb.raw && "
		       "objcopy --compress-debug-sections=zlib bomb.raw bomb && rm zeros bomb.raw",
		       fx))
			goto done;
		for (int i = 0; i < NVARIANTS; i++) {
			char name[16];

			snprintf(name, sizeof(name), "p%d", i);
			if (buildid_from_path(fxp(name), bids[i]) != 0)
				goto done;
		}
		state = 1;
	}
done:
	if (state != 1)
		SKIP("cannot build fixtures (gcc, binutils, elfutils, coreutils needed)");
}

/* ---- helpers ---- */

struct tstore {
	char dir[128];
	struct dstore *s;
};

/* Close T's store; T can be opened again over the same dir. */
static void store_close(struct tstore *t)
{
	dstore_close(t->s);
	t->s = NULL;
}

/* Deferred by the first store_open(): the store closed and its dir removed. */
static void store_cleanup(void *arg)
{
	struct tstore *t = arg;

	store_close(t);
	if (t->dir[0] && sh("rm -rf '%s'", t->dir))
		fprintf(stderr, "  could not remove %s\n", t->dir);
	t->dir[0] = '\0';
}

/* Open T's store with options O (data_dir is filled in), in a new dir under the fixtures on
 * the first call. T must outlive the test (static): the harness cleans it up when the test
 * ends. */
static void store_open_opts(struct tstore *t, struct dstore_opts o)
{
	if (!t->dir[0]) {
		snprintf(t->dir, sizeof(t->dir), "%s/store.XXXXXX", fx);
		CHECK(mkdtemp(t->dir) != NULL);
		t_defer(store_cleanup, t);
	}
	o.data_dir = t->dir;
	CHECK_INT(dstore_open(&o, &t->s), 0);
}

/* store_open_opts() with a cache cap CAP and nothing else. */
static void store_open(struct tstore *t, uint64_t cap)
{
	store_open_opts(t, (struct dstore_opts){.cache_size = cap});
}

/* Copy fixture NAME into the store's temp dir, as an upload handler would; path into OUT. */
static void stage(struct tstore *t, const char *name, char out[4096])
{
	snprintf(out, 4096, "%s/upload-XXXXXX", dstore_tmp_dir(t->s));
	int fd = mkstemp(out);

	CHECK(fd >= 0);
	close(fd);
	CHECK_INT(sh("cp '%s' '%s'", fxp(name), out), 0);
}

static int put(struct tstore *t, const char *name, const char *bid, enum dstore_source src,
	       int force, enum dstore_put_result *res, struct dstore_entry *e)
{
	char tmp[4096];

	stage(t, name, tmp);
	return dstore_put(t->s, bid, tmp, src, force, res, e);
}

static int count_files(const char *dir)
{
	char cmd[512];
	int n = -1;
	FILE *p;

	snprintf(cmd, sizeof(cmd), "ls -A '%s' | wc -l", dir);
	p = popen(cmd, "r");
	if (!p)
		return -1;
	if (fscanf(p, "%d", &n) != 1)
		n = -1;
	pclose(p);
	return n;
}

static int exists(const char *dir, const char *bid, const char *suffix)
{
	char path[4096];

	snprintf(path, sizeof(path), "%s/%s%s", dir, bid, suffix);
	return access(path, F_OK) == 0;
}

static void touch_file(const char *dir, const char *bid, const char *suffix)
{
	char path[4096];
	int fd;

	snprintf(path, sizeof(path), "%s/%s%s", dir, bid, suffix);
	fd = open(path, O_WRONLY | O_CREAT, 0644);
	CHECK(fd >= 0);
	CHECK(write(fd, "index", 5) == 5);
	close(fd);
}

/* Sections whose flags in `eu-readelf -S` contain C (compressed); -1 if it failed. */
static int readelf_c_flags(const char *path)
{
	char cmd[4200], line[512];
	int n = 0, sections = 0;
	FILE *p;

	snprintf(cmd, sizeof(cmd), "eu-readelf -S '%s' 2>&1", path);
	p = popen(cmd, "r");
	if (!p)
		return -1;
	while (fgets(line, sizeof(line), p)) {
		char *rb = strchr(line, ']'), tok[8][64];
		int k;

		if (line[0] != '[' || !rb || strstr(line, "[Nr]"))
			continue;
		/* name type addr off size es [flags] lk inf al */
		k = sscanf(rb + 1, "%63s %63s %63s %63s %63s %63s %63s %63s", tok[0], tok[1],
			   tok[2], tok[3], tok[4], tok[5], tok[6], tok[7]);
		sections++;
		if (k == 8 && strchr(tok[6], 'C'))
			n++;
		/* one more token after al means flags were present in tok[6] */
	}
	if (pclose(p) != 0 || sections == 0)
		return -1;
	return n;
}

static char *run_out(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static char *run_out(const char *fmt, ...)
{
	char cmd[4096];
	static char out[8][4096];
	static int k;
	size_t n;
	va_list ap;
	FILE *p;

	va_start(ap, fmt);
	vsnprintf(cmd, sizeof(cmd), fmt, ap);
	va_end(ap);
	k = (k + 1) % 8;
	p = popen(cmd, "r");
	if (!p)
		return NULL;
	n = fread(out[k], 1, sizeof(out[k]) - 1, p);
	out[k][n] = '\0';
	if (pclose(p) != 0)
		return NULL;
	return out[k];
}

/* DWARF facts libdw reads: number of CUs and of line rows. */
static void dwarf_counts(const char *path, int *cus, size_t *lines)
{
	int fd = open(path, O_RDONLY);
	Dwarf_Off off = 0, next;
	size_t hsize;
	Dwarf *dw;

	*cus = -1;
	*lines = 0;
	if (fd < 0)
		return;
	dw = dwarf_begin(fd, DWARF_C_READ);
	if (dw) {
		*cus = 0;
		while (dwarf_nextcu(dw, off, &next, &hsize, NULL, NULL, NULL) == 0) {
			Dwarf_Die cu;
			Dwarf_Lines *l;
			size_t nl;

			if (dwarf_offdie(dw, off + hsize, &cu) &&
			    dwarf_getsrclines(&cu, &l, &nl) == 0)
				*lines += nl;
			(*cus)++;
			off = next;
		}
		dwarf_end(dw);
	}
	close(fd);
}

static json_t *load_meta(struct tstore *t, const char *bid)
{
	char path[4096];

	snprintf(path, sizeof(path), "%s/%s.meta.json", dstore_index_dir(t->s), bid);
	return json_load_file(path, 0, NULL);
}

/* ---- tests ---- */

TEST(quality_of_fixtures)
{
	char bid[BUILDID_HEX_MAX];
	unsigned q;

	fixtures();
	CHECK_INT(dstore_inspect(fxp("p0.debug"), bid, &q), 0);
	CHECK_STR(bid, bids[0]);
	CHECK_INT(q, DSTORE_Q_SYMTAB | DSTORE_Q_DWARF | DSTORE_Q_LINES);
	CHECK_INT(dstore_quality_rank(q), 4);
	CHECK_INT(dstore_inspect(fxp("p0"), bid, &q), 0);
	CHECK_INT(q, DSTORE_Q_SYMTAB | DSTORE_Q_DWARF | DSTORE_Q_LINES | DSTORE_Q_EXEC);
	CHECK_INT(dstore_inspect(fxp("p0.nolines"), bid, &q), 0);
	CHECK_INT(dstore_quality_rank(q), 3);
	CHECK_INT(dstore_inspect(fxp("p0.symtab"), bid, &q), 0);
	CHECK_INT(q, DSTORE_Q_SYMTAB | DSTORE_Q_EXEC);
	CHECK_INT(dstore_quality_rank(q), 1);
	CHECK_INT(dstore_inspect(fxp("notelf"), bid, &q), -ERR_NOTELF);
	CHECK_INT(dstore_inspect(fxp("p0.trunc"), bid, &q), -ERR_BADELF);
	CHECK_INT(dstore_inspect(fxp("nobid"), bid, &q), -ERR_NOBUILDID);
}

TEST(put_get_and_metadata)
{
	static struct tstore t;
	enum dstore_put_result res;
	struct dstore_entry e, g;
	struct dstore_stats st;
	char *sum;
	json_t *m;

	fixtures();
	store_open(&t, 0);
	CHECK_INT(dstore_get(t.s, bids[0], &g), -ENOENT);
	CHECK_INT(put(&t, "p0.debug", bids[0], DSTORE_SRC_DEBUGINFOD, 0, &res, &e), 0);
	CHECK_INT(res, DSTORE_PUT_CREATED);
	CHECK_STR(e.build_id, bids[0]);
	CHECK_INT(e.source, DSTORE_SRC_DEBUGINFOD);
	CHECK_INT(dstore_get(t.s, bids[0], &g), 0);
	CHECK_STR(g.path, e.path);
	CHECK_INT(g.size, e.size);
	CHECK_INT(g.quality, DSTORE_Q_SYMTAB | DSTORE_Q_DWARF | DSTORE_Q_LINES);
	CHECK_INT(sh("cmp -s '%s' '%s'", g.path, fxp("p0.debug")), 0);
	/* build IDs are case-insensitive on the way in */
	{
		char up[BUILDID_HEX_MAX];

		for (size_t i = 0; i <= strlen(bids[0]); i++)
			up[i] = (char)(bids[0][i] >= 'a' ? bids[0][i] - 32 : bids[0][i]);
		CHECK_INT(dstore_get(t.s, up, &g), 0);
	}
	CHECK_INT(dstore_get(t.s, "../../etc/passwd", &g), -ERR_BADBUILDID);
	/* the sidecar: the SHA-256 of the bytes received, as sha256sum computes it */
	m = load_meta(&t, bids[0]);
	CHECK(m != NULL);
	sum = run_out("sha256sum '%s' | cut -c1-64", fxp("p0.debug"));
	CHECK(sum != NULL);
	sum[64] = '\0';
	CHECK_STR(json_string_value(json_object_get(m, "sha256")), sum);
	CHECK_STR(json_string_value(json_object_get(m, "source")), "debuginfod");
	CHECK_INT(json_integer_value(json_object_get(m, "size")), e.size);
	json_decref(m);
	dstore_stats(t.s, &st);
	CHECK_INT(st.entries, 1);
	CHECK_INT(st.bytes, e.size);
	CHECK_INT(st.cached_bytes, e.size);
	CHECK_INT(count_files(dstore_tmp_dir(t.s)), 0);
}

TEST(identical_worse_better_force)
{
	static struct tstore t;
	enum dstore_put_result res;
	struct dstore_entry e;

	fixtures();
	store_open(&t, 0);
	CHECK_INT(put(&t, "p0.symtab", bids[0], DSTORE_SRC_LOCAL, 0, &res, &e), 0);
	CHECK_INT(res, DSTORE_PUT_CREATED);
	CHECK_INT(put(&t, "p0.symtab", bids[0], DSTORE_SRC_LOCAL, 0, &res, &e), 0);
	CHECK_INT(res, DSTORE_PUT_IDENTICAL);
	/* better replaces worse, and the old index goes with it */
	touch_file(dstore_index_dir(t.s), bids[0], ".symidx");
	CHECK_INT(put(&t, "p0.nolines", bids[0], DSTORE_SRC_LOCAL, 0, &res, &e), 0);
	CHECK_INT(res, DSTORE_PUT_REPLACED);
	CHECK(!exists(dstore_index_dir(t.s), bids[0], ".symidx"));
	CHECK_INT(dstore_quality_rank(e.quality), 3);
	CHECK_INT(put(&t, "p0.debug", bids[0], DSTORE_SRC_LOCAL, 0, &res, &e), 0);
	CHECK_INT(res, DSTORE_PUT_REPLACED);
	CHECK_INT(dstore_quality_rank(e.quality), 4);
	/* worse is refused and changes nothing */
	touch_file(dstore_index_dir(t.s), bids[0], ".symidx");
	CHECK_INT(put(&t, "p0.symtab", bids[0], DSTORE_SRC_LOCAL, 0, &res, &e), -EEXIST);
	CHECK_INT(put(&t, "p0.nolines", bids[0], DSTORE_SRC_UPLOAD, 0, &res, &e), -EEXIST);
	CHECK_INT(dstore_get(t.s, bids[0], &e), 0);
	CHECK_INT(dstore_quality_rank(e.quality), 4);
	CHECK(exists(dstore_index_dir(t.s), bids[0], ".symidx"));
	/* FORCE replaces anyway */
	CHECK_INT(put(&t, "p0.symtab", bids[0], DSTORE_SRC_UPLOAD, 1, &res, &e), 0);
	CHECK_INT(res, DSTORE_PUT_REPLACED);
	CHECK_INT(dstore_quality_rank(e.quality), 1);
	CHECK_INT(e.source, DSTORE_SRC_UPLOAD);
	CHECK(!exists(dstore_index_dir(t.s), bids[0], ".symidx"));
	CHECK_INT(count_files(dstore_tmp_dir(t.s)), 0);
}

TEST(upload_outranks_cache)
{
	static struct tstore t;
	enum dstore_put_result res;
	struct dstore_entry e;
	struct dstore_stats st;

	fixtures();
	store_open(&t, 0);
	/* equal rank, different bytes: an upload replaces a cached entry, not the other way */
	CHECK_INT(put(&t, "p0.debug", bids[0], DSTORE_SRC_DEBUGINFOD, 0, &res, &e), 0);
	CHECK_INT(put(&t, "p0", bids[0], DSTORE_SRC_UPLOAD, 0, &res, &e), 0);
	CHECK_INT(res, DSTORE_PUT_REPLACED);
	CHECK_INT(e.source, DSTORE_SRC_UPLOAD);
	CHECK_INT(put(&t, "p0.debug", bids[0], DSTORE_SRC_DEBUGINFOD, 0, &res, &e), -EEXIST);
	/* the same bytes uploaded over a cached entry pin it: still IDENTICAL */
	CHECK_INT(put(&t, "p1.debug", bids[1], DSTORE_SRC_DEBUGINFOD, 0, &res, &e), 0);
	dstore_stats(t.s, &st);
	CHECK_INT(st.cached_bytes, e.size);
	touch_file(dstore_index_dir(t.s), bids[1], ".symidx");
	CHECK_INT(put(&t, "p1.debug", bids[1], DSTORE_SRC_UPLOAD, 0, &res, &e), 0);
	CHECK_INT(res, DSTORE_PUT_IDENTICAL);
	CHECK_INT(e.source, DSTORE_SRC_UPLOAD);
	CHECK(exists(dstore_index_dir(t.s), bids[1], ".symidx")); /* same content: index stays */
	dstore_stats(t.s, &st);
	CHECK_INT(st.cached_bytes, 0);
	CHECK_INT(st.entries, 2);
}

TEST(bad_inputs_refused_and_consumed)
{
	static struct tstore t;
	enum dstore_put_result res;
	struct dstore_stats st;
	char tmp[4096];

	fixtures();
	store_open(&t, 0);
	CHECK_INT(put(&t, "notelf", bids[0], DSTORE_SRC_UPLOAD, 0, &res, NULL), -ERR_NOTELF);
	CHECK_INT(put(&t, "p0.trunc", bids[0], DSTORE_SRC_UPLOAD, 0, &res, NULL), -ERR_BADELF);
	CHECK_INT(put(&t, "p1.debug", bids[0], DSTORE_SRC_UPLOAD, 0, &res, NULL),
		  -ERR_BUILDID_MISMATCH);
	CHECK_INT(put(&t, "nobid", bids[0], DSTORE_SRC_UPLOAD, 0, &res, NULL), -ERR_NOBUILDID);
	CHECK_INT(put(&t, "p0.debug", "../../x", DSTORE_SRC_UPLOAD, 0, &res, NULL),
		  -ERR_BADBUILDID);
	CHECK_INT(put(&t, "p0.debug", "", DSTORE_SRC_UPLOAD, 0, &res, NULL), -ERR_BADBUILDID);
	CHECK_INT(count_files(dstore_tmp_dir(t.s)), 0);
	/* a path outside the temp dir is a caller's mistake: refused, and left alone */
	CHECK_INT(dstore_put(t.s, bids[0], fxp("p0.debug"), DSTORE_SRC_UPLOAD, 0, &res, NULL),
		  -EINVAL);
	CHECK(access(fxp("p0.debug"), F_OK) == 0);
	snprintf(tmp, sizeof(tmp), "%s/../x", dstore_tmp_dir(t.s));
	CHECK_INT(dstore_put(t.s, bids[0], tmp, DSTORE_SRC_UPLOAD, 0, &res, NULL), -EINVAL);
	dstore_stats(t.s, &st);
	CHECK_INT(st.entries, 0);
	CHECK_INT(count_files(dstore_index_dir(t.s)), 0);
}

/* Offset of the Elf64_Chdr of .debug_info in a compressed fixture. */
static long chdr_offset(const char *path)
{
	int fd = open(path, O_RDONLY);
	Elf_Scn *scn = NULL;
	size_t shstrndx;
	long off = -1;
	Elf *elf;

	elf_version(EV_CURRENT);
	elf = elf_begin(fd, ELF_C_READ, NULL);
	if (elf && elf_getshdrstrndx(elf, &shstrndx) == 0)
		while ((scn = elf_nextscn(elf, scn))) {
			GElf_Shdr sh;
			const char *name;

			if (gelf_getshdr(scn, &sh) &&
			    (name = elf_strptr(elf, shstrndx, sh.sh_name)) &&
			    strcmp(name, ".debug_info") == 0 && (sh.sh_flags & SHF_COMPRESSED))
				off = (long)sh.sh_offset;
		}
	elf_end(elf);
	close(fd);
	return off;
}

TEST(damaged_compressed_sections)
{
	static struct tstore t;
	enum dstore_put_result res;
	long off;
	uint64_t huge = (uint64_t)5 << 30;
	int fd;

	fixtures();
	store_open(&t, 0);
	off = chdr_offset(fxp("p0.debug.z"));
	CHECK(off > 0);
	/* zlib stream garbled: inflating fails */
	CHECK_INT(sh("cd %s && cp p0.debug.z bad1 && printf 'XXXXXXXXXXXXXXXX' | "
		     "dd of=bad1 bs=1 seek=%ld conv=notrunc status=none",
		     fx, off + 24 + 4),
		  0);
	CHECK_INT(put(&t, "bad1", bids[0], DSTORE_SRC_UPLOAD, 0, &res, NULL), -ERR_BADELF);
	/* a header claiming 5 GiB once inflated: refused before any allocation */
	CHECK_INT(sh("cp %s/p0.debug.z %s/bad2", fx, fx), 0);
	fd = open(fxp("bad2"), O_WRONLY);
	CHECK(fd >= 0);
	CHECK(pwrite(fd, &huge, sizeof(huge), off + 8) == (ssize_t)sizeof(huge));
	close(fd);
	CHECK_INT(put(&t, "bad2", bids[0], DSTORE_SRC_UPLOAD, 0, &res, NULL), -ERR_TOOBIG);
	CHECK_INT(count_files(dstore_tmp_dir(t.s)), 0);
	CHECK_INT(count_files(dstore_index_dir(t.s)), 0);
}

TEST(inflation_is_bounded_before_inflating)
{
	static struct tstore t, small, full;
	enum dstore_put_result res;
	struct stat st;

	fixtures();
	CHECK_INT(stat(fxp("bomb"), &st), 0);
	CHECK(st.st_size < 1000000);
	/* 64 MB from well under 1 MB: past DSTORE_INFLATE_RATIO times the bytes received */
	store_open(&t, 0);
	CHECK_INT(put(&t, "bomb", bids[0], DSTORE_SRC_UPLOAD, 0, &res, NULL), -ERR_TOOBIG);
	CHECK_INT(count_files(dstore_tmp_dir(t.s)), 0);
	CHECK_INT(dstore_get(t.s, bids[0], &(struct dstore_entry){0}), -ENOENT);
	/* an ordinary compressed file still goes in */
	CHECK_INT(put(&t, "p0.debug.z", bids[0], DSTORE_SRC_UPLOAD, 0, &res, NULL), 0);
	CHECK_INT(res, DSTORE_PUT_CREATED);
	/* the cap derived from the upload limit */
	store_open_opts(&small, (struct dstore_opts){.max_inflated = 1000});
	CHECK_INT(put(&small, "p0.debug.z", bids[0], DSTORE_SRC_UPLOAD, 0, &res, NULL),
		  -ERR_TOOBIG);
	CHECK_INT(count_files(dstore_tmp_dir(small.s)), 0);
	/* a reserve larger than any disk: refused with ENOSPC, nothing left behind */
	store_open_opts(&full, (struct dstore_opts){.reserve = UINT64_MAX / 2});
	CHECK_INT(put(&full, "p0.debug.z", bids[0], DSTORE_SRC_UPLOAD, 0, &res, NULL), -ENOSPC);
	CHECK_INT(put(&full, "p0.debug", bids[0], DSTORE_SRC_UPLOAD, 0, &res, NULL), -ENOSPC);
	CHECK_INT(count_files(dstore_tmp_dir(full.s)), 0);
	CHECK_INT(count_files(dstore_index_dir(full.s)), 0);
}

TEST(decompressed_debug_file_reads_the_same)
{
	static struct tstore t;
	enum dstore_put_result res;
	struct dstore_entry e;
	int cus0, cus1;
	size_t lines0, lines1;
	char *a0, *a1, *addrs;

	fixtures();
	store_open(&t, 0);
	CHECK(fixture_compressed_sections(fxp("p0.debug.z")) > 0);
	CHECK(readelf_c_flags(fxp("p0.debug.z")) > 0); /* the parser does see C flags */
	CHECK_INT(put(&t, "p0.debug.z", bids[0], DSTORE_SRC_DEBUGINFOD, 0, &res, &e), 0);
	CHECK_INT(fixture_compressed_sections(e.path), 0);
	CHECK_INT(readelf_c_flags(e.path), 0);
	CHECK(e.size > e.orig_size);
	CHECK_INT(e.quality, DSTORE_Q_SYMTAB | DSTORE_Q_DWARF | DSTORE_Q_LINES);
	/* eu-readelf dumps all DWARF without a complaint */
	CHECK(run_out("eu-readelf -w '%s' 2>&1 >/dev/null | wc -c | grep -qx 0 && echo ok",
		      e.path) != NULL);
	/* libdw reads the same CUs and line rows as from the uncompressed debug file */
	dwarf_counts(fxp("p0.debug"), &cus0, &lines0);
	dwarf_counts(e.path, &cus1, &lines1);
	CHECK(cus0 > 0 && lines0 > 0);
	CHECK_INT(cus1, cus0);
	CHECK_INT(lines1, lines0);
	/* and eu-addr2line answers the same for every function symbol */
	addrs = run_out("nm '%s' | awk '$2 ~ /^[tT]$/ {printf \"0x%%s \", $1}'", fxp("p0"));
	CHECK(addrs && addrs[0]);
	addrs = strdup(addrs);
	a0 = run_out("eu-addr2line -f -i -e '%s' %s", fxp("p0.debug"), addrs);
	a1 = run_out("eu-addr2line -f -i -e '%s' %s", e.path, addrs);
	free(addrs);
	CHECK(a0 && a1 && strstr(a0, "p.c:"));
	CHECK_STR(a1, a0);
}

/* What is served is what was received: the compressed original beside the inflated working
 * copy, kept across a restart and gone with the entry. */
TEST(served_bytes_are_the_bytes_received)
{
	static struct tstore t;
	enum dstore_put_result res;
	struct dstore_entry e;

	fixtures();
	store_open(&t, 0);
	CHECK_INT(put(&t, "p0.debug.z", bids[0], DSTORE_SRC_UPLOAD, 0, &res, &e), 0);
	CHECK(strcmp(e.served_path, e.path) != 0);
	CHECK_INT(sh("cmp -s '%s' '%s'", e.served_path, fxp("p0.debug.z")), 0);
	CHECK_INT(fixture_compressed_sections(e.path), 0);
	/* uncompressed: the file itself */
	CHECK_INT(put(&t, "p1.debug", bids[1], DSTORE_SRC_UPLOAD, 0, &res, &e), 0);
	CHECK_STR(e.served_path, e.path);
	CHECK_INT(sh("cmp -s '%s' '%s'", e.served_path, fxp("p1.debug")), 0);
	/* after a restart */
	store_close(&t);
	store_open(&t, 0);
	CHECK_INT(dstore_get(t.s, bids[0], &e), 0);
	CHECK_INT(sh("cmp -s '%s' '%s'", e.served_path, fxp("p0.debug.z")), 0);
	/* replaced by an uncompressed upload: the old original goes */
	CHECK_INT(put(&t, "p0.debug", bids[0], DSTORE_SRC_UPLOAD, 1, &res, &e), 0);
	CHECK_INT(res, DSTORE_PUT_REPLACED);
	CHECK_STR(e.served_path, e.path);
	CHECK_INT(exists(dstore_index_dir(t.s), bids[0], ".orig"), 0);
	CHECK_INT(count_files(dstore_tmp_dir(t.s)), 0);
}

TEST(decompressed_executable_still_runs)
{
	static struct tstore t;
	enum dstore_put_result res;
	struct dstore_entry e;
	char *want, *got;

	fixtures();
	store_open(&t, 0);
	CHECK(fixture_compressed_sections(fxp("p0.z")) > 0);
	CHECK_INT(put(&t, "p0.z", bids[0], DSTORE_SRC_UPLOAD, 0, &res, &e), 0);
	CHECK_INT(fixture_compressed_sections(e.path), 0);
	CHECK_INT(readelf_c_flags(e.path), 0);
	CHECK(e.quality & DSTORE_Q_EXEC);
	want = run_out("'%s'", fxp("p0"));
	CHECK(want && strstr(want, "result"));
	CHECK_INT(sh("cp '%s' %s/run.bin && chmod 755 %s/run.bin", e.path, fx, fx), 0);
	got = run_out("%s/run.bin", fx);
	CHECK(got != NULL);
	CHECK_STR(got, want);
}

TEST(lru_eviction_under_tiny_cap_keeps_uploads)
{
	static struct tstore t;
	enum dstore_put_result res;
	struct dstore_entry e;
	struct dstore_stats st;
	struct stat sb;
	const char *dir;

	fixtures();
	CHECK_INT(stat(fxp("p1.debug"), &sb), 0);
	/* room for two cached entries, not three */
	store_open(&t, (uint64_t)sb.st_size * 5 / 2);
	dir = dstore_index_dir(t.s);
	CHECK_INT(put(&t, "p0.debug", bids[0], DSTORE_SRC_UPLOAD, 0, &res, &e), 0);
	CHECK_INT(put(&t, "p1.debug", bids[1], DSTORE_SRC_DEBUGINFOD, 0, &res, &e), 0);
	CHECK_INT(put(&t, "p2.debug", bids[2], DSTORE_SRC_LOCAL, 0, &res, &e), 0);
	touch_file(dir, bids[1], ".symidx");
	touch_file(dir, bids[2], ".symidx");
	CHECK_INT(dstore_get(t.s, bids[1], &e), 0); /* p1 is now more recent than p2 */
	CHECK_INT(put(&t, "p3.debug", bids[3], DSTORE_SRC_DEBUGINFOD, 0, &res, &e), 0);
	CHECK_INT(dstore_get(t.s, bids[2], &e), -ENOENT);
	CHECK(!exists(dir, bids[2], ".debug"));
	CHECK(!exists(dir, bids[2], ".meta.json"));
	CHECK(!exists(dir, bids[2], ".symidx"));
	CHECK_INT(dstore_get(t.s, bids[1], &e), 0);
	CHECK(exists(dir, bids[1], ".symidx"));
	CHECK_INT(dstore_get(t.s, bids[3], &e), 0);
	dstore_stats(t.s, &st);
	CHECK_INT(st.evictions, 1);
	CHECK(st.cached_bytes <= (uint64_t)sb.st_size * 5 / 2);
	/* uploads are never evicted, however many come */
	for (int i = 4; i < NVARIANTS; i++) {
		char name[16];

		snprintf(name, sizeof(name), "p%d.debug", i);
		CHECK_INT(put(&t, name, bids[i], DSTORE_SRC_UPLOAD, 0, &res, &e), 0);
	}
	CHECK_INT(put(&t, "p2.debug", bids[2], DSTORE_SRC_LOCAL, 0, &res, &e), 0);
	/* the gets above touched p1, then p3: p1 is the coldest now */
	CHECK_INT(dstore_get(t.s, bids[1], &e), -ENOENT);
	CHECK(!exists(dir, bids[1], ".symidx"));
	CHECK_INT(dstore_get(t.s, bids[3], &e), 0);
	CHECK_INT(dstore_get(t.s, bids[0], &e), 0);
	for (int i = 4; i < NVARIANTS; i++)
		CHECK_INT(dstore_get(t.s, bids[i], &e), 0);
	dstore_stats(t.s, &st);
	CHECK_INT(st.evictions, 2);
	CHECK_INT(st.entries, 2 + 1 + NVARIANTS - 4);
	store_close(&t);
	/* a smaller cap at the next open evicts at once */
	store_open(&t, 1);
	dstore_stats(t.s, &st);
	CHECK_INT(st.cached_bytes, 0);
	CHECK_INT(st.entries, 1 + NVARIANTS - 4);
}

TEST(survives_restart_and_cleans_up)
{
	static struct tstore t;
	enum dstore_put_result res;
	struct dstore_entry e0, e1, g;
	struct dstore_stats st0, st;
	char path[4096];
	struct timeval tv[2] = {{1000000000, 0}, {1000000000, 0}};
	const char *orphan = "00112233445566778899aabbccddeeff00112233";
	int fd;

	fixtures();
	store_open(&t, 0);
	CHECK_INT(put(&t, "p0.debug.z", bids[0], DSTORE_SRC_UPLOAD, 0, &res, &e0), 0);
	CHECK_INT(put(&t, "p1.debug", bids[1], DSTORE_SRC_DEBUGINFOD, 0, &res, &e1), 0);
	CHECK_INT(put(&t, "p2.debug", bids[2], DSTORE_SRC_LOCAL, 0, &res, NULL), 0);
	touch_file(dstore_index_dir(t.s), bids[1], ".symidx");
	dstore_stats(t.s, &st0);
	/* what a crash could leave: temp files, an index being written, orphans */
	snprintf(path, sizeof(path), "%s/upload-stale1", dstore_tmp_dir(t.s));
	fd = open(path, O_WRONLY | O_CREAT, 0600);
	CHECK(fd >= 0);
	close(fd);
	touch_file(dstore_index_dir(t.s), bids[1], ".symidx.tmp.12345");
	/* a DWARF worker's private dir, with the index it was writing when fleetsymd was killed */
	snprintf(path, sizeof(path), "%s/symidx-stale1", dstore_tmp_dir(t.s));
	CHECK_INT(mkdir(path, 0700), 0);
	touch_file(path, bids[1], ".symidx");
	touch_file(dstore_index_dir(t.s), orphan, ".meta.json");
	touch_file(dstore_index_dir(t.s), orphan, ".symidx");
	/* a sidecar that no longer describes its file (crash between the two renames) */
	snprintf(path, sizeof(path), "%s/%s.debug", dstore_index_dir(t.s), bids[2]);
	CHECK_INT(utimes(path, tv), 0);
	store_close(&t);

	store_open(&t, 0);
	CHECK_INT(count_files(dstore_tmp_dir(t.s)), 0);
	snprintf(path, sizeof(path), "%s/symidx-stale1", dstore_tmp_dir(t.s));
	CHECK(access(path, F_OK) != 0);
	CHECK(!exists(dstore_index_dir(t.s), bids[1], ".symidx.tmp.12345"));
	CHECK(!exists(dstore_index_dir(t.s), orphan, ".meta.json"));
	CHECK(!exists(dstore_index_dir(t.s), orphan, ".symidx"));
	CHECK(exists(dstore_index_dir(t.s), bids[1], ".symidx"));
	dstore_stats(t.s, &st);
	CHECK_INT(st.entries, 3);
	CHECK_INT(st.bytes, st0.bytes);
	CHECK_INT(st.cached_bytes, st0.cached_bytes);
	CHECK_INT(dstore_get(t.s, bids[0], &g), 0);
	CHECK_INT(g.source, DSTORE_SRC_UPLOAD);
	CHECK_INT(g.size, e0.size);
	CHECK_INT(g.orig_size, e0.orig_size);
	CHECK_INT(g.quality, e0.quality);
	CHECK_INT(g.added, e0.added);
	CHECK_INT(dstore_get(t.s, bids[1], &g), 0);
	CHECK_INT(g.source, DSTORE_SRC_DEBUGINFOD);
	/* the hash survived: the same bytes again are IDENTICAL */
	CHECK_INT(put(&t, "p0.debug.z", bids[0], DSTORE_SRC_UPLOAD, 0, &res, NULL), 0);
	CHECK_INT(res, DSTORE_PUT_IDENTICAL);
	/* the rebuilt entry kept its source and describes its file */
	CHECK_INT(dstore_get(t.s, bids[2], &g), 0);
	CHECK_INT(g.source, DSTORE_SRC_LOCAL);
	CHECK_INT(g.quality, DSTORE_Q_SYMTAB | DSTORE_Q_DWARF | DSTORE_Q_LINES);
	/* a damaged sidecar is rebuilt too; an ELF file without one is adopted as an upload */
	snprintf(path, sizeof(path), "%s/%s.meta.json", dstore_index_dir(t.s), bids[1]);
	CHECK_INT(sh("echo '{broken' > '%s'", path), 0);
	snprintf(path, sizeof(path), "%s/%s.meta.json", dstore_index_dir(t.s), bids[2]);
	CHECK_INT(unlink(path), 0);
	store_close(&t);

	store_open(&t, 0);
	CHECK_INT(dstore_get(t.s, bids[1], &g), 0);
	CHECK_INT(g.size, e1.size);
	CHECK_INT(dstore_get(t.s, bids[2], &g), 0);
	CHECK_INT(g.source, DSTORE_SRC_UPLOAD);
	CHECK(exists(dstore_index_dir(t.s), bids[2], ".meta.json"));
	dstore_stats(t.s, &st);
	CHECK_INT(st.entries, 3);
}

struct racer {
	struct tstore *t;
	char tmp[4096];
	const char *bid;
	pthread_barrier_t *go;
	int err;
	enum dstore_put_result res;
};

static void *racer_main(void *arg)
{
	struct racer *r = arg;

	pthread_barrier_wait(r->go);
	r->err = dstore_put(r->t->s, r->bid, r->tmp, DSTORE_SRC_UPLOAD, 0, &r->res, NULL);
	return NULL;
}

static void race(struct tstore *t, int same)
{
	struct racer rc[8];
	pthread_t th[8];
	pthread_barrier_t go;
	int counts[3] = {0};

	pthread_barrier_init(&go, NULL, 8);
	for (int i = 0; i < 8; i++) {
		char name[16];

		snprintf(name, sizeof(name), "p%d.debug", same ? 0 : i + 1);
		rc[i] = (struct racer){t, "", bids[same ? 0 : i + 1], &go, 0, 0};
		stage(t, name, rc[i].tmp);
	}
	for (int i = 0; i < 8; i++)
		if (pthread_create(&th[i], NULL, racer_main, &rc[i]))
			abort(); /* the others wait at the barrier for ever: no cleanup can help */
	for (int i = 0; i < 8; i++)
		pthread_join(th[i], NULL);
	pthread_barrier_destroy(&go);
	for (int i = 0; i < 8; i++) {
		CHECK_INT(rc[i].err, 0);
		counts[rc[i].res]++;
	}
	CHECK_INT(counts[DSTORE_PUT_CREATED], same ? 1 : 8);
	CHECK_INT(counts[DSTORE_PUT_IDENTICAL], same ? 7 : 0);
}

TEST(concurrent_puts)
{
	static struct tstore t;
	struct dstore_stats st;

	fixtures();
	store_open(&t, 0);
	race(&t, 1);
	dstore_stats(t.s, &st);
	CHECK_INT(st.entries, 1);
	race(&t, 0);
	dstore_stats(t.s, &st);
	CHECK_INT(st.entries, 9);
	CHECK_INT(count_files(dstore_tmp_dir(t.s)), 0);
	/* one .debug and one .meta.json per entry, nothing else */
	CHECK_INT(count_files(dstore_index_dir(t.s)), 18);
}

TEST(damaged_entry_removed_at_open)
{
	static struct tstore t;
	enum dstore_put_result res;
	struct dstore_entry e;
	struct dstore_stats st;

	fixtures();
	store_open(&t, 0);
	CHECK_INT(put(&t, "p0.debug", bids[0], DSTORE_SRC_UPLOAD, 0, &res, &e), 0);
	CHECK_INT(put(&t, "p1.debug", bids[1], DSTORE_SRC_UPLOAD, 0, &res, NULL), 0);
	touch_file(dstore_index_dir(t.s), bids[0], ".symidx");
	store_close(&t);
	/* the disk lost half of one file */
	CHECK_INT(truncate(e.path, 2000), 0);
	store_open(&t, 0);
	CHECK_INT(dstore_get(t.s, bids[0], &e), -ENOENT);
	CHECK(!exists(dstore_index_dir(t.s), bids[0], ".debug"));
	CHECK(!exists(dstore_index_dir(t.s), bids[0], ".meta.json"));
	CHECK(!exists(dstore_index_dir(t.s), bids[0], ".symidx"));
	CHECK_INT(dstore_get(t.s, bids[1], &e), 0);
	dstore_stats(t.s, &st);
	CHECK_INT(st.entries, 1);
}
