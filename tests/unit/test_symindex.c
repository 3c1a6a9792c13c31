/*
 * Unit tests of cache/symindex: the packed index answers exactly as the plain tables it was
 * written from, and every kind of damaged file is refused with -ERR_BADINDEX.
 */
#include "tests/t.h"

#include "cache/symindex.h"
#include "lib/err.h"
#include "lib/log.h"

#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <sys/stat.h>
#include <sys/xattr.h>
#include <unistd.h>

#define BID "0123456789abcdef0123456789abcdef01234567"

/* Refusals are logged as warnings; the tests check the return codes instead. */
__attribute__((constructor)) static void quiet(void)
{
	log_set_level(FS_LOG_ERROR);
}

struct fixture {
	struct symview v;
	struct symidx_range *ranges;
	struct symidx_node *nodes;
	struct symidx_func *funcs;
	struct symidx_line *lines;
	struct symidx_sym *syms;
	char *strs;
	char dir[64];
	char path[128];
};

static uint32_t rnd_state = 12345;

static uint32_t rnd(uint32_t n)
{
	rnd_state = rnd_state * 1103515245u + 12345u;
	return (rnd_state >> 8) % n;
}

static void free_fixture(void *arg);

/* Random but well-formed tables: NR range entries (some gaps), NN nodes with inline parents,
 * NL line rows (some gaps), a few symbols, over about NR * 24 bytes of address space. */
static void make_fixture(struct fixture *f, size_t nr, size_t nn, size_t nl)
{
	static const char strtab[] = "\0main.c\0lib/h.h\0foo\0_Z3barv\0bar()\0baz\0";
	uint32_t addr = 0;

	memset(f, 0, sizeof(*f));
	f->strs = malloc(sizeof(strtab));
	memcpy(f->strs, strtab, sizeof(strtab));
	f->funcs = calloc(3, sizeof(*f->funcs));
	f->funcs[0] = (struct symidx_func){16, 16}; /* foo */
	f->funcs[1] = (struct symidx_func){20, 28}; /* _Z3barv / bar() */
	f->funcs[2] = (struct symidx_func){34, 34}; /* baz */
	f->nodes = calloc(nn, sizeof(*f->nodes));
	for (size_t i = 0; i < nn; i++) {
		struct symidx_node *n = &f->nodes[i];

		n->func = rnd(3);
		n->parent = SYMIDX_NONE;
		n->call_file = SYMIDX_NONE;
		if (i && rnd(3)) {
			n->parent = (uint32_t)(i - 1 - rnd((uint32_t)(i < 20 ? i : 20)));
			n->flags = SYMIDX_NODE_INLINED;
			n->call_file = rnd(2) ? 1 : 8;
			n->call_line = rnd(100000);
			n->call_col = (uint16_t)rnd(200);
		}
	}
	f->ranges = calloc(nr, sizeof(*f->ranges));
	for (size_t i = 0; i < nr; i++) {
		addr += 1 + rnd(40);
		f->ranges[i].addr = addr;
		f->ranges[i].node = rnd(5) == 0 ? SYMIDX_NONE : rnd((uint32_t)nn);
		if (i && f->ranges[i].node == f->ranges[i - 1].node)
			f->ranges[i].node = SYMIDX_NONE;
	}
	f->lines = calloc(nl, sizeof(*f->lines));
	addr = 0;
	for (size_t i = 0; i < nl; i++) {
		addr += 1 + rnd(30);
		f->lines[i] = (struct symidx_line){addr, rnd(6) ? (rnd(2) ? 1 : 8) : SYMIDX_NONE,
						   rnd(70000), rnd(90)};
		if (f->lines[i].file == SYMIDX_NONE)
			f->lines[i].line = f->lines[i].col = 0;
	}
	f->syms = calloc(2, sizeof(*f->syms));
	f->syms[0] = (struct symidx_sym){5, 100, 2, 3};
	f->syms[1] = (struct symidx_sym){200, 0, 0, 1};
	f->v = (struct symview){0x400000, f->ranges, nr,      f->nodes, nn,	 f->funcs,	3,
				f->lines, nl,	     f->syms, 2,	f->strs, sizeof(strtab)};
	t_defer(free_fixture, f);
	strcpy(f->dir, "/tmp/test_symindex.XXXXXX");
	CHECK(mkdtemp(f->dir) != NULL);
	snprintf(f->path, sizeof(f->path), "%s/" BID ".symidx", f->dir);
}

/* Deferred by make_fixture(): runs when the test ends, however it ends. */
static void free_fixture(void *arg)
{
	struct fixture *f = arg;
	char cmd[300];

	if (f->dir[0]) { /* if mkdtemp failed, its template names nothing: harmless */
		snprintf(cmd, sizeof(cmd), "rm -rf '%s'", f->dir);
		if (system(cmd) != 0)
			fprintf(stderr, "  could not remove %s\n", f->dir);
	}
	free(f->ranges);
	free(f->nodes);
	free(f->funcs);
	free(f->lines);
	free(f->syms);
	free(f->strs);
	memset(f, 0, sizeof(*f));
}

static int same_str(const char *a, const char *b)
{
	return (!a && !b) || (a && b && strcmp(a, b) == 0);
}

/* Every address of the fixture, plain vs packed, frame by frame. */
static void check_same_answers(struct fixture *f, struct symindex *idx)
{
	uint32_t end = f->v.nranges ? f->ranges[f->v.nranges - 1].addr + 50 : 100;

	for (uint64_t a = f->v.base - 3; a < f->v.base + end; a++) {
		struct sym_frame x[16], y[16];
		int nx = symview_lookup(&f->v, a, x, 16);
		int ny = symindex_lookup(idx, a, y, 16);

		CHECK_INT(nx, ny);
		for (int i = 0; i < nx; i++) {
			if (!same_str(x[i].function, y[i].function) ||
			    !same_str(x[i].file, y[i].file) ||
			    !same_str(x[i].linkage, y[i].linkage) || x[i].line != y[i].line ||
			    x[i].column != y[i].column || x[i].inlined != y[i].inlined ||
			    x[i].source != y[i].source)
				T_FAIL_("address 0x%llx frame %d differs", (unsigned long long)a,
					i);
		}
	}
}

TEST(round_trip_small)
{
	static struct fixture f;
	struct symindex *idx;

	make_fixture(&f, 40, 10, 50);
	CHECK_INT(symindex_write(&f.v, BID, f.path), 0);
	CHECK_INT(symindex_open(f.path, BID, &idx), 0);
	check_same_answers(&f, idx);
	symindex_close(idx);
}

TEST(round_trip_many_blocks)
{
	static struct fixture f;
	struct symindex *idx;
	size_t nr, nn, nl;

	make_fixture(&f, 20000, 3000, 30000);
	CHECK_INT(symindex_write(&f.v, BID, f.path), 0);
	CHECK_INT(symindex_open(f.path, BID, &idx), 0);
	symindex_counts(idx, &nr, &nn, &nl);
	CHECK_INT(nr, 20000);
	CHECK_INT(nn, 3000);
	CHECK_INT(nl, 30000);
	check_same_answers(&f, idx);
	symindex_close(idx);
}

TEST(lookup_semantics)
{
	static struct fixture f;
	struct sym_frame fr[4];

	make_fixture(&f, 1, 1, 1);
	f.ranges[0] = (struct symidx_range){10, 0};
	f.nodes[0] = (struct symidx_node){1, SYMIDX_NONE, SYMIDX_NONE, 0, 0, 0};
	f.lines[0] = (struct symidx_line){8, 1, 42, 7};
	/* inside the function: DWARF name, file:line:col from the line table */
	CHECK_INT(symview_lookup(&f.v, 0x400000 + 12, fr, 4), 1);
	CHECK_INT(fr[0].source, SYM_SRC_DWARF);
	CHECK_STR(fr[0].function, "bar()");
	CHECK_STR(fr[0].linkage, "_Z3barv");
	CHECK_STR(fr[0].file, "main.c");
	CHECK_INT(fr[0].line, 42);
	CHECK_INT(fr[0].column, 7);
	/* before the function: the symbol table's sized symbol */
	CHECK_INT(symview_lookup(&f.v, 0x400000 + 6, fr, 4), 1);
	CHECK_INT(fr[0].source, SYM_SRC_SYMTAB);
	CHECK_STR(fr[0].function, "baz");
	CHECK(fr[0].file == NULL);
	/* below the base: nothing, but one frame */
	CHECK_INT(symview_lookup(&f.v, 0x1000, fr, 4), 1);
	CHECK_INT(fr[0].source, SYM_SRC_NONE);
	CHECK(fr[0].function == NULL);
}

/* Index files keep a demangled name only where demangle() would not make it from the linkage
 * name (ceph-osd: 120 -> 52 MB); the others are made on first use, once per open index, and
 * answers stay those of the plain tables. */
TEST(demangled_names_made_on_use)
{
	static const char strs[] = "\0x.cc\0_Z3barv\0bar()\0_Z3bazv\0custom baz\0";
	static struct fixture f;
	struct symidx_func funcs[2] = {{6, 14}, {20, 28}}; /* remade by demangle(); kept */
	struct symidx_node nodes[2] = {{0, SYMIDX_NONE, SYMIDX_NONE, 0, 0, 0},
				       {1, SYMIDX_NONE, SYMIDX_NONE, 0, 0, 0}};
	struct symidx_range ranges[3] = {{16, 0}, {32, 1}, {48, SYMIDX_NONE}};
	struct symidx_line lines[1] = {{16, 1, 3, 1}};
	struct symview v = {.base = 0x1000,
			    .ranges = ranges,
			    .nranges = 3,
			    .nodes = nodes,
			    .nnodes = 2,
			    .funcs = funcs,
			    .nfuncs = 2,
			    .lines = lines,
			    .nlines = 1,
			    .strs = strs,
			    .strs_size = sizeof(strs)};
	struct sym_frame a[2], b[2];
	struct symindex *idx;
	char buf[4096];
	ssize_t n;
	int fd;

	make_fixture(&f, 1, 1, 1); /* for its temp dir */
	CHECK_INT(symindex_write(&v, BID, f.path), 0);
	fd = open(f.path, O_RDONLY);
	CHECK(fd >= 0);
	n = read(fd, buf, sizeof(buf));
	close(fd);
	CHECK(n > 0 && n < (ssize_t)sizeof(buf));
	CHECK(memmem(buf, (size_t)n, "bar()", 5) == NULL);
	CHECK(memmem(buf, (size_t)n, "_Z3barv", 7) != NULL);
	CHECK(memmem(buf, (size_t)n, "custom baz", 10) != NULL);
	CHECK_INT(symindex_open(f.path, BID, &idx), 0);
	CHECK_INT(symindex_lookup(idx, 0x1000 + 20, a, 2), 1);
	CHECK_STR(a[0].function, "bar()");
	CHECK_STR(a[0].linkage, "_Z3barv");
	CHECK_STR(a[0].file, "x.cc");
	CHECK_INT(symindex_lookup(idx, 0x1000 + 17, b, 2), 1);
	CHECK(a[0].function == b[0].function); /* made once, kept */
	CHECK_INT(symindex_lookup(idx, 0x1000 + 40, a, 2), 1);
	CHECK_STR(a[0].function, "custom baz");
	CHECK_STR(a[0].linkage, "_Z3bazv");
	symindex_close(idx);
}

static void write_bytes(const char *path, long off, const void *buf, size_t len)
{
	int fd = open(path, O_WRONLY);

	CHECK(fd >= 0);
	CHECK(pwrite(fd, buf, len, off) == (ssize_t)len);
	close(fd);
}

static off_t file_size(const char *path)
{
	struct stat st;

	CHECK(stat(path, &st) == 0);
	return st.st_size;
}

TEST(refuses_damaged_files)
{
	static struct fixture f;
	struct symindex *idx = NULL;
	uint32_t other_version = SYMIDX_VERSION + 1;
	off_t size;

	make_fixture(&f, 500, 50, 500);
	CHECK_INT(symindex_open(f.path, BID, &idx), -ENOENT);

	/* another version */
	CHECK_INT(symindex_write(&f.v, BID, f.path), 0);
	write_bytes(f.path, 8, &other_version, sizeof(other_version));
	CHECK_INT(symindex_open(f.path, BID, &idx), -ERR_BADINDEX);

	/* truncated, at several points */
	for (int cut = 1; cut <= 4; cut++) {
		CHECK_INT(symindex_write(&f.v, BID, f.path), 0);
		size = file_size(f.path);
		CHECK(truncate(f.path, size * cut / 5) == 0);
		CHECK_INT(symindex_open(f.path, BID, &idx), -ERR_BADINDEX);
	}
	CHECK(truncate(f.path, 0) == 0);
	CHECK_INT(symindex_open(f.path, BID, &idx), -ERR_BADINDEX);

	/* one flipped byte anywhere in the body or the header */
	CHECK_INT(symindex_write(&f.v, BID, f.path), 0);
	size = file_size(f.path);
	for (long off = 0; off < size; off += size / 37 + 1) {
		unsigned char b;
		int fd;

		CHECK_INT(symindex_write(&f.v, BID, f.path), 0);
		fd = open(f.path, O_RDONLY);
		CHECK(pread(fd, &b, 1, off) == 1);
		close(fd);
		b ^= 0x5a;
		write_bytes(f.path, off, &b, 1);
		if (symindex_open(f.path, BID, &idx) == 0) {
			/* only bytes nobody reads (header padding) may differ and still open */
			check_same_answers(&f, idx);
			symindex_close(idx);
			idx = NULL;
		}
	}

	/* the right file for another build ID */
	CHECK_INT(symindex_write(&f.v, BID, f.path), 0);
	CHECK_INT(symindex_open(f.path, "ffff", &idx), -ERR_BADINDEX);
	/* and garbage */
	write_bytes(f.path, 0, "not an index at all, just text", 30);
	CHECK_INT(symindex_open(f.path, BID, &idx), -ERR_BADINDEX);
}

TEST(write_is_atomic)
{
	static struct fixture f;
	char tmp[160];

	make_fixture(&f, 100, 10, 100);
	CHECK_INT(symindex_write(&f.v, BID, f.path), 0);
	snprintf(tmp, sizeof(tmp), "%s.tmp.%d", f.path, (int)getpid());
	CHECK(access(tmp, F_OK) != 0); /* no temp file left behind */
	/* a directory that does not exist: an error, nothing half-written */
	CHECK(symindex_write(&f.v, BID, "/nonexistent-dir/x.symidx") < 0);
}

/* Verified once: the first open stamps the file, and later opens trust the stamp only while
 * the file is unchanged; a byte written into the payload since is caught again. */
TEST(verified_once_then_stamped)
{
	static struct fixture f;
	struct symindex *idx = NULL;
	unsigned char b = 0x5a;
	char stamp[128];

	make_fixture(&f, 500, 50, 500);
	CHECK_INT(symindex_write(&f.v, BID, f.path), 0);
	CHECK_INT(symindex_open(f.path, BID, &idx), 0);
	symindex_close(idx);
	idx = NULL;
	/* where the file system keeps no user xattrs every open verifies: the rest holds too */
	fprintf(stderr, "  stamp: %s\n",
		getxattr(f.path, "user.fleetsym.verified", stamp, sizeof(stamp)) > 0
		    ? "kept"
		    : "not supported here, every open verifies");
	CHECK_INT(symindex_open(f.path, BID, &idx), 0);
	check_same_answers(&f, idx);
	symindex_close(idx);
	idx = NULL;
	write_bytes(f.path, file_size(f.path) - 1, &b, 1);
	CHECK_INT(symindex_open(f.path, BID, &idx), -ERR_BADINDEX);
}
