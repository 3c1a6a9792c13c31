/*
 * Unit tests of symbolizer/engine/gopclntab: a Go program (tests/data/src/go/inl) built at test
 * time with the system's go, once normally and once with -ldflags='-s -w'. The stripped build,
 * read from .gopclntab alone, must answer as DWARF answers for the normal build (same .text,
 * checked) at every function entry and at random PCs inside every function, and as the program
 * itself reports through runtime.CallersFrames; damaged tables must give errors, never a crash.
 */
#include "tests/t.h"

#include "tests/unit/fixture.h"

#include "lib/err.h"
#include "lib/log.h"
#include "symbolizer/engine/gopclntab.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#define MAXF 64

__attribute__((constructor)) static void quiet(void)
{
	log_set_level(FS_LOG_ERROR);
}

/* Build both variants once. The DWARF build passes '-w=0 ', a no-op (DWARF on is the default)
 * exactly as long as "-s -w": Go 1.18+ records -ldflags in the binary's build info, so a
 * plain build's .rodata would differ in size from the stripped one, every later data address
 * would move and .text would differ in its RIP-relative operands. With equal lengths the two
 * .text sections are byte-identical (go_same_text checks it). GOCACHE stays the user's (a fresh one
 * recompiles the standard library: ~1 min on 2 cores) unless there is no HOME to put it under. */
/* inl-b: stripped, with a GNU build ID note, so that an index can be built for it */
#define GO_GNU_BID "60d1c0ffee0ddba11c0ffee0ddba11c0ffee0dd1"

static const char *go_fixture(void)
{
	const char *dir;

	if (system("command -v go >/dev/null") != 0)
		T_FAIL_("go is missing: make deps installs golang-go");
	dir = fixture_setup("test_gopclntab",
			    "cd %2$s/tests/data/src/go/inl && "
			    "{ [ -n \"$HOME\" ] || export GOCACHE=%1$s/gocache; } && "
			    "export GOFLAGS=-buildvcs=false GOPROXY=off GO111MODULE=on && "
			    "go build -ldflags='-w=0 ' -o %1$s/inl . && go build -ldflags='-s -w' "
			    "-o %1$s/inl-s . && "
			    "go build -ldflags='-s -w -B 0x" GO_GNU_BID "' -o %1$s/inl-b . && "
			    "go tool buildid %1$s/inl-s >%1$s/inl-s.buildid && "
			    "go env GOVERSION >%1$s/goversion");
	CHECK(dir);
	return dir;
}

static char *path_in(const char *dir, const char *name)
{
	static char buf[4][256];
	static int k;
	char *p = buf[k++ % 4];

	snprintf(p, sizeof(buf[0]), "%s/%s", dir, name);
	return p;
}

/* ---- reading sections with libelf, for the .text check and the mutations ---- */

struct sect {
	uint64_t addr, off, size;
};

static int find_sect(const char *path, const char *want, struct sect *out)
{
	int fd = open(path, O_RDONLY), found = -1;
	Elf_Scn *scn = NULL;
	size_t shstrndx;
	Elf *elf;

	if (fd < 0)
		return -1;
	elf_version(EV_CURRENT);
	elf = elf_begin(fd, ELF_C_READ, NULL);
	if (elf && elf_getshdrstrndx(elf, &shstrndx) == 0)
		while ((scn = elf_nextscn(elf, scn))) {
			GElf_Shdr sh;
			const char *n;

			if (gelf_getshdr(scn, &sh) && (n = elf_strptr(elf, shstrndx, sh.sh_name)) &&
			    strcmp(n, want) == 0) {
				*out = (struct sect){sh.sh_addr, sh.sh_offset, sh.sh_size};
				found = 0;
			}
		}
	elf_end(elf);
	close(fd);
	return found;
}

static char *slurp(const char *path, size_t *len)
{
	struct stat st;
	char *buf = NULL;
	int fd = open(path, O_RDONLY);

	if (fd >= 0 && fstat(fd, &st) == 0 && (buf = malloc((size_t)st.st_size + 1)) &&
	    read(fd, buf, (size_t)st.st_size) == st.st_size) {
		buf[st.st_size] = '\0';
		*len = (size_t)st.st_size;
	} else {
		free(buf);
		buf = NULL;
	}
	if (fd >= 0)
		close(fd);
	return buf;
}

static int spew(const char *path, const void *buf, size_t len)
{
	int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0644);
	int ok = fd >= 0 && write(fd, buf, len) == (ssize_t)len;

	if (fd >= 0)
		close(fd);
	return ok ? 0 : -1;
}

/* Same bytes (and, if SAME_ADDR, at the same address) in both files. */
static int same_section(const char *a, const char *b, const char *name, int same_addr)
{
	struct sect sa, sb;
	size_t la, lb;
	char *ba = slurp(a, &la), *bb = slurp(b, &lb);
	int same = ba && bb && find_sect(a, name, &sa) == 0 && find_sect(b, name, &sb) == 0 &&
		   (!same_addr || sa.addr == sb.addr) && sa.size == sb.size &&
		   sa.off + sa.size <= la && sb.off + sb.size <= lb &&
		   memcmp(ba + sa.off, bb + sb.off, sa.size) == 0;

	free(ba);
	free(bb);
	return same;
}

/* ---- the Go build ID ---- */

/* 19 for "go1.19.8" */
static int go_minor(const char *dir)
{
	size_t len;
	char *v = slurp(path_in(dir, "goversion"), &len);
	int major = 0, minor = 0;

	CHECK(v && sscanf(v, "go%d.%d", &major, &minor) == 2 && major == 1);
	free(v);
	return minor;
}

TEST(go_buildid)
{
	const char *dir = go_fixture();
	struct gopcln *g;
	size_t len;
	char *want = slurp(path_in(dir, "inl-s.buildid"), &len);

	CHECK(want);
	while (len && (want[len - 1] == '\n'))
		want[--len] = '\0';
	CHECK_INT(gopcln_open(path_in(dir, "inl-s"), &g), 0);
	CHECK_STR(gopcln_build_id(g), want);
	CHECK_INT(gopcln_version(g), go_minor(dir) >= 20 ? 120 : 118); /* Debian 12: go1.19 */
	CHECK(gopcln_has_inline(g));
	gopcln_close(g);
	free(want);
}

/* ---- what the program reports through runtime.CallersFrames ---- */

struct rframe {
	uint64_t pc;
	char func[256], file[512];
	unsigned line;
};

static int frame_eq(const struct gopcln_frame *a, const struct rframe *b)
{
	return a->function && strcmp(a->function, b->func) == 0 && a->file &&
	       strcmp(a->file, b->file) == 0 && a->line == b->line;
}

static void print_chain(const char *what, const struct gopcln_frame *f, int n)
{
	fprintf(stderr, "    %s:\n", what);
	for (int i = 0; i < n; i++)
		fprintf(stderr, "      %s %s:%u%s\n", f[i].function, f[i].file ? f[i].file : "??",
			f[i].line, f[i].inlined ? " (inlined)" : "");
}

/* An autogenerated wrapper as pclntab names it: the physical frame at <autogenerated>:1. */
static int is_wrapper(const struct gopcln_frame *f)
{
	return !f->inlined && f->file && strcmp(f->file, "<autogenerated>") == 0 && f->line == 1;
}

/* Each stack: from its first frame's PC the module gives the inline chain, which must equal
 * the next frames the runtime reported; the next physical frame follows. Each frame's own PC,
 * looked up alone, gives that frame innermost (that is how CallersFrames named it). The one
 * allowed difference: runtime.Callers drops the frames of autogenerated wrappers (a
 * pointer-receiver wrapper that inlined its value method: the runtime shows the method, the
 * module shows the method inlined into the wrapper); counted in *WRAPPERS. */
static void check_stack(const struct gopcln *g, struct rframe *fr, int n, int *inlined_seen,
			int *wrappers)
{
	for (int i = 0; i < n; i++) {
		struct gopcln_frame out[MAXF];
		int k = gopcln_lookup(g, fr[i].pc, out, MAXF);

		if (k < 1 || !frame_eq(&out[0], &fr[i])) {
			fprintf(stderr, "    frame %d pc %" PRIx64 ": runtime says %s %s:%u\n", i,
				fr[i].pc, fr[i].func, fr[i].file, fr[i].line);
			print_chain("gopclntab says", out, k);
			CHECK(0);
		}
	}
	for (int i = 0; i < n;) {
		struct gopcln_frame out[MAXF];
		int k = gopcln_lookup(g, fr[i].pc, out, MAXF);

		CHECK(k >= 1);
		if (k > 1 && is_wrapper(&out[k - 1]) &&
		    (i + k - 1 >= n || !frame_eq(&out[k - 1], &fr[i + k - 1]))) {
			k--; /* the runtime elided the wrapper */
			out[k - 1].inlined = 0;
			(*wrappers)++;
		}
		CHECK(i + k <= n);
		for (int j = 0; j < k; j++) {
			if (!frame_eq(&out[j], &fr[i + j])) {
				fprintf(
				    stderr,
				    "    chain at pc %" PRIx64 " frame %d: runtime says %s %s:%u\n",
				    fr[i].pc, j, fr[i + j].func, fr[i + j].file, fr[i + j].line);
				print_chain("gopclntab says", out, k);
				CHECK(0);
			}
			CHECK_INT(out[j].inlined, j < k - 1);
		}
		*inlined_seen += k - 1;
		i += k;
	}
}

TEST(go_callers_frames)
{
	const char *dir = go_fixture();
	static struct rframe fr[MAXF];
	char cmd[512], line[1024];
	struct gopcln *g;
	int n = 0, stacks = 0, inlined = 0, wrappers = 0;
	FILE *p;

	CHECK_INT(gopcln_open(path_in(dir, "inl-s"), &g), 0);
	snprintf(cmd, sizeof(cmd), "%s/inl-s alpha be c 2>/dev/null", dir);
	p = popen(cmd, "r");
	CHECK(p);
	while (fgets(line, sizeof(line), p)) {
		if (strncmp(line, "frame ", 6) == 0) {
			CHECK(n < MAXF);
			CHECK_INT(sscanf(line, "frame %" SCNx64 " %255s %511s %u", &fr[n].pc,
					 fr[n].func, fr[n].file, &fr[n].line),
				  4);
			n++;
		} else if (strcmp(line, "end\n") == 0) {
			check_stack(g, fr, n, &inlined, &wrappers);
			n = 0;
			stacks++;
		}
	}
	CHECK_INT(pclose(p), 0);
	gopcln_close(g);
	/* driver: top(1..4) reaches leaf's report three times, bump() twice, mid(7) once, the
	 * wrapper once */
	CHECK_INT(stacks, 7);
	CHECK(inlined >= 9);
	CHECK_INT(wrappers, 1);
	fprintf(
	    stderr,
	    "  %d stacks, %d inlined frames equal to runtime.CallersFrames, %d wrapper frame the "
	    "runtime elides\n",
	    stacks, inlined, wrappers);
}

/* ---- against DWARF ---- */

/* Reference answers, as "0xADDR" lines each followed by (function, file:line) line pairs, in
 * the GNU addr2line layout -a -f -i gives. Normalized to what pclntab can say:
 *  - "?? / ??:0" alone is no answer (padding between functions: no function there);
 *  - eu-addr2line's " inlined at F:L in G" tail and llvm's " (discriminator N)" are dropped;
 *  - leading "./" of a file is dropped (Go's DWARF has comp_dir "." and a bare
 *    "<autogenerated>" becomes "./<autogenerated>");
 *  - type arguments in names become "[...]": the linker writes generic and array-type
 *    instantiation names into pclntab that way (Go 1.18+), by design;
 *  - ".abi0" is dropped: llvm-symbolizer names assembly functions from the ELF symtab. */
static void normalize_name(char *s)
{
	char out[512], *w = out;
	int depth = 0;
	size_t n;

	for (const char *r = s; *r && w < out + sizeof(out) - 6; r++) {
		if (*r == '[') {
			if (depth++ == 0) {
				memcpy(w, "[...", 4);
				w += 4;
			}
		} else if (*r == ']' && depth > 0) {
			if (--depth == 0)
				*w++ = ']';
		} else if (depth == 0) {
			*w++ = *r;
		}
	}
	*w = '\0';
	n = strlen(out);
	if (n > 5 && strcmp(out + n - 5, ".abi0") == 0)
		out[n - 5] = '\0';
	strcpy(s, out); /* callers' buffers hold 256 bytes; names longer than that were cut */
}

struct ans {
	uint64_t addr;
	int n;
	char func[8][256], loc[8][512];
};

static void normalize_loc(char *s)
{
	char *d = strstr(s, " (discriminator");

	if (d)
		*d = '\0';
	while (strncmp(s, "./", 2) == 0)
		memmove(s, s + 2, strlen(s + 2) + 1);
}

/* Copy SRC into DST (CAP bytes), cut short if it must be. */
static void cpy(char *dst, size_t cap, const char *src)
{
	size_t n = strnlen(src, cap - 1);

	memcpy(dst, src, n);
	dst[n] = '\0';
}

static int read_ref(FILE *f, struct ans *a, size_t max)
{
	char line[1024];
	int n = -1;

	while (fgets(line, sizeof(line), f)) {
		char *in;

		line[strcspn(line, "\n")] = '\0';
		if (!line[0])
			continue;
		if (strncmp(line, "0x", 2) == 0) {
			if ((size_t)++n >= max)
				return -1;
			a[n].addr = strtoull(line, NULL, 16);
			a[n].n = 0;
			continue;
		}
		if (n < 0 || a[n].n >= 8)
			return -1;
		if ((in = strstr(line, " inlined at ")))
			*in = '\0';
		cpy(a[n].func[a[n].n], sizeof(a[n].func[0]), line);
		normalize_name(a[n].func[a[n].n]);
		if (!fgets(line, sizeof(line), f))
			return -1;
		line[strcspn(line, "\n")] = '\0';
		normalize_loc(line);
		cpy(a[n].loc[a[n].n], sizeof(a[n].loc[0]), line);
		a[n].n++;
	}
	for (int i = 0; i <= n; i++)
		if (a[i].n == 1 && strcmp(a[i].func[0], "??") == 0 &&
		    strcmp(a[i].loc[0], "??:0") == 0)
			a[i].n = 0;
	return n + 1;
}

static void our_ans(const struct gopcln *g, uint64_t addr, struct ans *a)
{
	struct gopcln_frame f[MAXF];
	int n = gopcln_lookup(g, addr, f, MAXF);

	a->addr = addr;
	a->n = 0;
	for (int i = 0; i < n && i < 8; i++) {
		cpy(a->func[i], sizeof(a->func[0]), f[i].function);
		normalize_name(a->func[i]);
		snprintf(a->loc[i], sizeof(a->loc[0]), "%s:%u", f[i].file ? f[i].file : "??",
			 f[i].line);
		a->n++;
	}
}

static int ans_eq(const struct ans *a, const struct ans *b)
{
	if (a->n != b->n)
		return 0;
	for (int i = 0; i < a->n; i++)
		if (strcmp(a->func[i], b->func[i]) != 0 || strcmp(a->loc[i], b->loc[i]) != 0)
			return 0;
	return 1;
}

/* The one known difference: in an autogenerated pointer-receiver wrapper that inlined the value
 * method, pclntab has the inline frame (and the runtime reports it) while Go's DWARF emits no
 * inlined subroutine for wrappers: DWARF says WRAPPER at the method's line. */
static int wrapper_case(const struct ans *ours, const struct ans *ref)
{
	return ours->n == 2 && ref->n == 1 && strcmp(ours->loc[1], "<autogenerated>:1") == 0 &&
	       strcmp(ours->func[1], ref->func[0]) == 0 && strcmp(ours->loc[0], ref->loc[0]) == 0;
}

static uint32_t rnd_state = 2026;

static uint32_t rnd(void)
{
	rnd_state = rnd_state * 1103515245u + 12345u;
	return rnd_state >> 4;
}

/* Look up every function entry and two random PCs in every function of DIR/STRIPPED with the
 * module, the same addresses in DIR/DWARF with TOOL_CMD, and compare. */
static void compare_with(const char *dir, const char *dwarf, const char *stripped,
			 const char *tool_cmd, const char *tool)
{
	struct gopcln *g;
	size_t nf, naddr = 0, nref, equal = 0, wrappers = 0, inl = 0, none = 0;
	struct ans *ref, mine;
	uint64_t *addrs;
	char cmd[1024];
	FILE *f;

	CHECK_INT(gopcln_open(path_in(dir, stripped), &g), 0);
	nf = gopcln_func_count(g);
	CHECK(nf > 1000);
	addrs = calloc(nf * 3, sizeof(*addrs));
	ref = calloc(nf * 3, sizeof(*ref));
	CHECK(addrs && ref);
	f = fopen(path_in(dir, "addrs"), "w");
	CHECK(f);
	for (size_t i = 0; i < nf; i++) {
		uint64_t entry, end;
		const char *name;

		CHECK_INT(gopcln_func_at(g, i, &entry, &end, &name), 0);
		CHECK(end > entry);
		addrs[naddr++] = entry;
		addrs[naddr++] = entry + rnd() % (end - entry);
		addrs[naddr++] = entry + rnd() % (end - entry);
	}
	for (size_t i = 0; i < naddr; i++)
		fprintf(f, "0x%" PRIx64 "\n", addrs[i]);
	CHECK_INT(fclose(f), 0);
	snprintf(cmd, sizeof(cmd), "%s %s/%s <%s/addrs", tool_cmd, dir, dwarf, dir);
	f = popen(cmd, "r");
	CHECK(f);
	nref = (size_t)read_ref(f, ref, naddr);
	CHECK_INT(pclose(f), 0);
	CHECK_INT(nref, naddr);
	for (size_t i = 0; i < naddr; i++) {
		CHECK(ref[i].addr == addrs[i]);
		our_ans(g, addrs[i], &mine);
		if (ans_eq(&mine, &ref[i])) {
			equal++;
			inl += mine.n > 1;
			none += mine.n == 0;
		} else if (wrapper_case(&mine, &ref[i])) {
			wrappers++;
		} else {
			fprintf(stderr, "  0x%" PRIx64 ": %s says", addrs[i], tool);
			for (int j = 0; j < ref[i].n; j++)
				fprintf(stderr, " [%s %s]", ref[i].func[j], ref[i].loc[j]);
			fprintf(stderr, "\n    gopclntab says");
			for (int j = 0; j < mine.n; j++)
				fprintf(stderr, " [%s %s]", mine.func[j], mine.loc[j]);
			fputc('\n', stderr);
		}
	}
	fprintf(
	    stderr,
	    "  %s, %s: %zu addresses (%zu functions): %zu equal (%zu with inline chains, %zu in "
	    "padding), %zu wrapper inline frames DWARF omits, %zu different\n",
	    tool, stripped, naddr, nf, equal, inl, none, wrappers, naddr - equal - wrappers);
	free(addrs);
	free(ref);
	gopcln_close(g);
	CHECK_INT(equal + wrappers, naddr);
	CHECK(inl > 100);
	CHECK(wrappers * 100 < naddr);
}

TEST(go_same_text)
{
	const char *dir = go_fixture();

	struct sect dbg;

	CHECK(same_section(path_in(dir, "inl"), path_in(dir, "inl-s"), ".text", 1));
	CHECK(find_sect(path_in(dir, "inl"), ".debug_info", &dbg) == 0 ||
	      find_sect(path_in(dir, "inl"), ".zdebug_info", &dbg) == 0);
	CHECK(find_sect(path_in(dir, "inl-s"), ".debug_info", &dbg) < 0 &&
	      find_sect(path_in(dir, "inl-s"), ".zdebug_info", &dbg) < 0);
	/* the tables themselves hold no data addresses: equal bytes, though the section moved */
	CHECK(same_section(path_in(dir, "inl"), path_in(dir, "inl-s"), ".gopclntab", 0));
}

TEST(go_equals_dwarf_llvm)
{
	const char *dir = go_fixture();

	CHECK(system("command -v llvm-symbolizer >/dev/null") == 0);
	compare_with(dir, "inl", "inl-s", "llvm-symbolizer -a -f -i --output-style=GNU --obj",
		     "llvm-symbolizer");
}

/* Our own DWARF engine too, when it has been built next to this test (make all). */
/* build/bin/fleetsym-symbolize beside this test's build/tests/ (make all builds it) */
static const char *symbolize_tool(void)
{
	static char tool[PATH_MAX + 64];
	char self[PATH_MAX], *slash;
	ssize_t n = readlink("/proc/self/exe", self, sizeof(self) - 1);

	CHECK(n > 0);
	self[n] = '\0';
	slash = strrchr(self, '/');
	CHECK(slash);
	*slash = '\0';
	snprintf(tool, sizeof(tool), "%s/../bin/fleetsym-symbolize", self);
	if (access(tool, X_OK) != 0)
		T_FAIL_("%s is missing: run make all first", tool);
	return tool;
}

TEST(go_equals_dwarf_fleetsym)
{
	const char *dir = go_fixture();
	char cmd[PATH_MAX + 128];

	snprintf(cmd, sizeof(cmd), "%s -a -f -i -e", symbolize_tool());
	compare_with(dir, "inl", "inl-s", cmd, "fleetsym-symbolize");
}

/* The stripped build through the whole engine (symfile picks the pclntab when there is no
 * DWARF): fleetsym-symbolize answers what gopcln_lookup() answers, at every function entry
 * and at random PCs. */
TEST(go_stripped_through_the_engine)
{
	const char *dir = go_fixture();
	char cmd[PATH_MAX + 128];

	snprintf(cmd, sizeof(cmd), "%s -a -f -i -e", symbolize_tool());
	compare_with(dir, "inl-s", "inl-s", cmd, "fleetsym-symbolize on the stripped build");
}

/* An index written from the pclntab answers as the pclntab did before it was built. */
TEST(go_index_equals_pclntab)
{
	const char *dir = go_fixture();
	char cmd[3 * PATH_MAX];
	FILE *f;

	struct gopcln *g;

	/* every function's entry and middle */
	CHECK_INT(gopcln_open(path_in(dir, "inl-b"), &g), 0);
	f = fopen(path_in(dir, "addrs-idx"), "w");
	CHECK(f);
	for (size_t i = 0; i < gopcln_func_count(g); i++) {
		uint64_t entry, end;
		const char *name;

		CHECK_INT(gopcln_func_at(g, i, &entry, &end, &name), 0);
		fprintf(f, "0x%" PRIx64 "\n0x%" PRIx64 "\n", entry, entry + (end - entry) / 2);
	}
	gopcln_close(g);
	CHECK_INT(fclose(f), 0);
	snprintf(
	    cmd, sizeof(cmd),
	    "cd %1$s && rm -rf idx && %2$s -a -f -i -e inl-b --index-dir idx <addrs-idx >cold && "
	    "test -s idx/" GO_GNU_BID ".symidx && "
	    "%2$s -a -f -i -e inl-b --index-dir idx <addrs-idx >warm && cmp cold warm && "
	    "grep -q 'main\\.' warm && wc -l <cold",
	    dir, symbolize_tool());
	f = popen(cmd, "r");
	CHECK(f);
	CHECK(fgets(cmd, sizeof(cmd), f));
	CHECK_INT(pclose(f), 0);
	fprintf(stderr, "  %ld answer lines equal, from the pclntab and from the index\n",
		strtol(cmd, NULL, 10));
}

/* ---- runs for an index ---- */

struct runs {
	const struct gopcln *g;
	uint64_t next; /* where the next run must start */
	size_t nruns, bytes, bad;
};

static int frames_eq(const struct gopcln_frame *a, const struct gopcln_frame *b, int n)
{
	for (int i = 0; i < n; i++)
		if (strcmp(a[i].function, b[i].function) != 0 || a[i].line != b[i].line ||
		    a[i].inlined != b[i].inlined || !a[i].file != !b[i].file ||
		    (a[i].file && strcmp(a[i].file, b[i].file) != 0))
			return 0;
	return 1;
}

static int on_run(void *ctx, uint64_t lo, uint64_t hi, const struct gopcln_frame *fr, int n)
{
	struct runs *r = ctx;

	if (lo != r->next || hi <= lo)
		r->bad++;
	for (uint64_t pc = lo; pc < hi; pc++) {
		struct gopcln_frame f[MAXF];
		int k = gopcln_lookup(r->g, pc, f, MAXF);

		if (k != n || !frames_eq(f, fr, n))
			r->bad++;
	}
	r->next = hi;
	r->nruns++;
	r->bytes += hi - lo;
	return 0;
}

/* Every byte of every function: the runs tile the code from the entry, each run's frames are
 * what a lookup anywhere in it gives, and after the last run (the padding) lookups give none. */
TEST(go_func_ranges)
{
	const char *dir = go_fixture();
	struct runs r = {0};
	struct gopcln *g;

	CHECK_INT(gopcln_open(path_in(dir, "inl-s"), &g), 0);
	r.g = g;
	for (size_t i = 0; i < gopcln_func_count(g); i++) {
		uint64_t e, end;
		const char *name;
		struct gopcln_frame f[MAXF];

		CHECK_INT(gopcln_func_at(g, i, &e, &end, &name), 0);
		r.next = e;
		CHECK_INT(gopcln_func_ranges(g, i, on_run, &r), 0);
		CHECK(r.next > e && r.next <= end);
		for (uint64_t pc = r.next; pc < end; pc++)
			CHECK_INT(gopcln_lookup(g, pc, f, MAXF), 0);
	}
	fprintf(stderr, "  %zu functions, %zu runs over %zu bytes of code, %zu wrong\n",
		gopcln_func_count(g), r.nruns, r.bytes, r.bad);
	CHECK_INT(r.bad, 0);
	CHECK_INT(gopcln_func_ranges(g, gopcln_func_count(g), on_run, &r), -ERANGE);
	gopcln_close(g);
}

/* The other shapes of the table: 32-bit pointers (386), big-endian with a 2-byte pc quantum
 * (s390x), a 4-byte quantum (arm64), and a PIE (the table in .data.rel.ro.gopclntab). Go
 * cross-compiles pure Go with no other toolchain; llvm-symbolizer reads DWARF of each. */
TEST(go_other_arches)
{
	const char *dir = go_fixture();
	static const char *const variants[][3] = {
	    /* name, GOARCH, extra go build flags */
	    {"386", "386", ""},
	    {"s390x", "s390x", ""},
	    {"arm64", "arm64", ""},
	    {"pie", "amd64", "-buildmode=pie"},
	};
	char cmd[2048], dw[64], st[64];

	for (size_t i = 0; i < sizeof(variants) / sizeof(variants[0]); i++) {
		snprintf(dw, sizeof(dw), "inl-%s", variants[i][0]);
		snprintf(st, sizeof(st), "inl-%s-s", variants[i][0]);
		snprintf(cmd, sizeof(cmd),
			 "cd %s/tests/data/src/go/inl && "
			 "{ [ -n \"$HOME\" ] || export GOCACHE=%s/gocache; } && "
			 "export GOFLAGS=-buildvcs=false GOPROXY=off GOARCH=%s && "
			 "go build %s -ldflags='-w=0 ' -o %s/%s . && "
			 "go build %s -ldflags='-s -w' -o %s/%s .",
			 getenv("FLEETSYM_TOP") ? getenv("FLEETSYM_TOP") : ".", dir, variants[i][1],
			 variants[i][2], dir, dw, variants[i][2], dir, st);
		if (system(cmd) != 0)
			T_FAIL_("cross build failed: %s", cmd);
		CHECK(same_section(path_in(dir, dw), path_in(dir, st), ".text", 1));
		compare_with(dir, dw, st, "llvm-symbolizer -a -f -i --output-style=GNU --obj",
			     "llvm-symbolizer");
	}
}

/* Without a section named .gopclntab the symbol table's runtime.pclntab finds it; without
 * either the file is not one we can read. */
TEST(go_symbol_fallback)
{
	const char *dir = go_fixture();
	const char *files[2] = {"inl", "inl-s"};

	for (int k = 0; k < 2; k++) {
		struct sect shstr;
		size_t len;
		char *buf = slurp(path_in(dir, files[k]), &len), *hit;
		struct gopcln *orig, *g = NULL;
		int err;

		CHECK(buf);
		CHECK_INT(find_sect(path_in(dir, files[k]), ".shstrtab", &shstr), 0);
		CHECK(shstr.off + shstr.size <= len);
		hit = memmem(buf + shstr.off, shstr.size, ".gopclntab", 11);
		CHECK(hit);
		hit[9] = 'X';
		CHECK_INT(spew(path_in(dir, "renamed"), buf, len), 0);
		free(buf);
		err = gopcln_open(path_in(dir, "renamed"), &g);
		if (k == 1) {
			CHECK_INT(err, -ENODATA);
			continue;
		}
		CHECK_INT(err, 0);
		CHECK_INT(gopcln_open(path_in(dir, files[k]), &orig), 0);
		CHECK_INT(gopcln_func_count(g), gopcln_func_count(orig));
		CHECK(gopcln_has_inline(g));
		for (size_t i = 0; i < gopcln_func_count(g); i += 3) {
			uint64_t e, end;
			const char *name;
			struct ans a, b;

			CHECK_INT(gopcln_func_at(orig, i, &e, &end, &name), 0);
			for (uint64_t pc = e; pc < end; pc += 1 + (end - e) / 4) {
				our_ans(orig, pc, &a);
				our_ans(g, pc, &b);
				CHECK(ans_eq(&a, &b));
			}
		}
		gopcln_close(orig);
		gopcln_close(g);
	}
}

/* Lookups per second on the Go compiler itself (Debian's is stripped and externally linked:
 * ~14k functions), and what the handle costs. The floor is far below what this machine does
 * (~3M/s) so that a loaded CI host passes; the numbers are printed. */
static double now_s(void)
{
	struct timespec t;

	clock_gettime(CLOCK_MONOTONIC, &t);
	return (double)t.tv_sec + (double)t.tv_nsec / 1e9;
}

TEST(go_lookup_rate)
{
	const char *bench = getenv("GOPCLN_BENCH_FILE");
	char path[PATH_MAX] = "";
	struct gopcln *g;
	FILE *p;
	size_t nf, n = 200000, frames = 0, inl = 0;
	uint64_t *addrs;
	double t0, t1, t2;

	if (bench) {
		snprintf(path, sizeof(path), "%s", bench);
	} else {
		p = popen("go env GOTOOLDIR", "r");
		CHECK(p && fgets(path, sizeof(path), p));
		pclose(p);
		path[strcspn(path, "\n")] = '\0';
		strncat(path, "/compile", sizeof(path) - strlen(path) - 1);
	}
	t0 = now_s();
	CHECK_INT(gopcln_open(path, &g), 0);
	t1 = now_s();
	nf = gopcln_func_count(g);
	addrs = malloc(n * sizeof(*addrs));
	CHECK(addrs);
	for (size_t i = 0; i < n; i++) {
		uint64_t e, end;
		const char *name;

		CHECK_INT(gopcln_func_at(g, (rnd() ^ rnd() << 16) % nf, &e, &end, &name), 0);
		addrs[i] = e + rnd() % (end - e);
	}
	t2 = now_s();
	for (size_t i = 0; i < n; i++) {
		struct gopcln_frame f[MAXF];
		int k = gopcln_lookup(g, addrs[i], f, MAXF);

		CHECK(k >= 0);
		frames += (size_t)k;
		inl += k > 1;
	}
	t2 = now_s() - t2;
	fprintf(stderr,
		"  %s: Go layout %d, %zu functions, open %.1f ms, %zu lookups in %.3f s = %.0f/s, "
		"%.2f frames each, %zu with inline chains; handle heap %zu B\n",
		path, gopcln_version(g), nf, (t1 - t0) * 1e3, n, t2, (double)n / t2,
		(double)frames / (double)n, inl, gopcln_heap_bytes(g));
	CHECK((double)n / t2 > 50000);
	CHECK(inl > n / 50);
	free(addrs);
	gopcln_close(g);
}

/* ---- damaged input ---- */

static void lookup_all(const struct gopcln *g, uint64_t lo, uint64_t hi, int step)
{
	struct gopcln_frame f[MAXF];

	for (uint64_t a = lo; a < hi; a += (uint64_t)step) {
		int n = gopcln_lookup(g, a, f, MAXF);

		CHECK(n >= -ERR_LAST_ && n <= MAXF);
		for (int i = 0; i < n; i++)
			CHECK(f[i].function && strlen(f[i].function) < (1u << 24));
	}
	for (size_t i = 0; i < gopcln_func_count(g); i += 7) {
		uint64_t e, end;
		const char *name;

		int err = gopcln_func_at(g, i, &e, &end, &name);

		CHECK(err == 0 || err == -ERR_BADINPUT);
	}
}

/* Random bytes, words and runs overwritten in .gopclntab, in the inline trees' section
 * (.rodata) and in the moduledata's (.noptrdata); truncations at random lengths. Every open
 * either fails with an error or gives lookups that stay in bounds (run under SAN=address to
 * see it). */
TEST(go_damaged)
{
	const char *dir = go_fixture();
	const char *names[3] = {".gopclntab", ".rodata", ".noptrdata"};
	struct sect s[3], text;
	size_t len;
	char *orig = slurp(path_in(dir, "inl-s"), &len), *buf;
	char *mut = path_in(dir, "mutant");
	int opened = 0, refused = 0, rounds = 0;
	time_t t0 = time(NULL);

	CHECK(orig);
	buf = malloc(len);
	CHECK(buf);
	CHECK_INT(find_sect(path_in(dir, "inl-s"), ".text", &text), 0);
	for (int i = 0; i < 3; i++)
		CHECK_INT(find_sect(path_in(dir, "inl-s"), names[i], &s[i]), 0);
	int max = getenv("GOPCLN_MUTANTS") ? atoi(getenv("GOPCLN_MUTANTS")) : 400;
	size_t md = 0;

	/* runtime.firstmoduledata: the word in .noptrdata that holds the pclntab's address */
	for (size_t off = s[2].off; off + 8 <= s[2].off + s[2].size && !md; off += 8) {
		uint64_t v;

		memcpy(&v, orig + off, 8);
		if (v == s[0].addr)
			md = off;
	}
	CHECK(md);

	for (int r = 0; r < max && time(NULL) - t0 < (max > 400 ? 3600 : 60); r++, rounds++) {
		const struct sect *t = &s[r % 10 < 6 ? 0 : r % 10 < 8 ? 1 : 2];
		size_t wlen = len;
		struct gopcln *g;
		int err, k = 1 + (int)(rnd() % 8);

		memcpy(buf, orig, len);
		if (r % 25 == 24) {
			wlen = rnd() % len;
		} else if (t == &s[2] && r % 2 == 0) {
			/* moduledata's gofunc (Go 1.18/1.19 layout: word 38) aimed anywhere in
			 * .rodata, so that inline trees are read from random bytes */
			uint64_t v = s[1].addr + rnd() % s[1].size;

			memcpy(buf + md + 38 * 8, &v, 8);
		} else if (r < 40 && t == &s[0]) {
			/* the header: each word in turn */
			size_t off = t->off + (size_t)(r % 9) * 8 + (rnd() % 4);

			buf[off] = (char)rnd();
		} else {
			for (int j = 0; j < k; j++) {
				size_t off = t->off + rnd() % t->size;
				size_t run = rnd() % 3 == 0 ? 1 + rnd() % 64 : 1;

				for (size_t q = 0; q < run && off + q < t->off + t->size; q++)
					buf[off + q] = (char)(rnd() % 5 == 0 ? 0xff : rnd());
			}
		}
		CHECK_INT(spew(mut, buf, wlen), 0);
		err = gopcln_open(mut, &g);
		if (err < 0) {
			refused++;
			CHECK(err == -ERR_BADINPUT || err == -ENODATA || err == -ERR_TOOBIG ||
			      err == -ERR_BADELF || err == -ERR_NOTELF);
			continue;
		}
		opened++;
		lookup_all(g, text.addr, text.addr + text.size + 64, 61 + (int)(rnd() % 64));
		gopcln_close(g);
	}
	fprintf(stderr, "  %d mutants: %d opened and looked up, %d refused\n", rounds, opened,
		refused);
	CHECK(opened > 0 && refused > 0);
	free(buf);
	free(orig);
}

/* Files that are not Go: a C program from the fixture compiler, and garbage. */
TEST(go_not_go)
{
	const char *dir = go_fixture();
	char *junk = path_in(dir, "junk");
	struct gopcln *g = NULL;
	static const char garbage[] = "\177ELF not really";

	CHECK_INT(gopcln_open("/bin/sh", &g), -ENODATA);
	CHECK(g == NULL);
	CHECK_INT(spew(junk, garbage, sizeof(garbage)), 0);
	CHECK(gopcln_open(junk, &g) < 0);
	CHECK_INT(gopcln_open(path_in(dir, "does-not-exist"), &g), -ENOENT);
}

/* A cgo binary without DWARF but with its symbol table (go build -ldflags=-w, then
 * objcopy --strip-debug): the C function is named from the ELF symbols, the Go one from the
 * pclntab, cold and from the index alike. */
TEST(go_cgo_c_code_named_from_symtab)
{
	const char *dir = go_fixture();
	char cmd[4 * PATH_MAX], out[512] = "";
	FILE *f;

	if (system("command -v gcc >/dev/null") != 0)
		T_FAIL_("gcc is missing: cgo needs it");
	snprintf(
	    cmd, sizeof(cmd),
	    "mkdir -p %1$s/cgo && cd %1$s/cgo && printf '%%s\\n' 'package main' '' '/*' "
	    "'__attribute__((noinline)) int fleetsym_c_spin(int n) { int x = 0; for (int i = 0; "
	    "i < n; i++) x += i * 7; return x; }' '*/' 'import \"C\"' 'import \"fmt\"' '' "
	    "'//go:noinline' 'func goSide() int { return int(C.fleetsym_c_spin(100)) }' '' "
	    "'func main() { fmt.Println(goSide()) }' >main.go && "
	    "{ [ -n \"$HOME\" ] || export GOCACHE=%1$s/gocache; } && "
	    "GOFLAGS=-buildvcs=false GO111MODULE=off GOPROXY=off go build -ldflags=-w -o cgo "
	    "main.go "
	    ">/dev/null && objcopy --strip-debug cgo cgo-nd && "
	    "c=$(nm cgo-nd | awk '$3 == \"fleetsym_c_spin\" {print \"0x\" $1}') && "
	    "g=$(nm cgo-nd | awk '$3 == \"main.goSide\" {print \"0x\" $1}') && "
	    "%2$s -f -e cgo-nd $c $g | paste -sd' ' && "
	    "%2$s -f -e cgo-nd --index-dir idx $c $g >/dev/null && "
	    "%2$s -f -e cgo-nd --index-dir idx $c $g | paste -sd' '",
	    dir, symbolize_tool());
	f = popen(cmd, "r");
	CHECK(f);
	while (fgets(out + strlen(out), (int)(sizeof(out) - strlen(out)), f))
		;
	CHECK_INT(pclose(f), 0);
	fprintf(stderr, "  %s", out);
	/* cold, then from the index: "fleetsym_c_spin ??:0 main.goSide FILE:LINE" twice */
	CHECK(strstr(out, "fleetsym_c_spin ??:0 main.goSide "));
	CHECK(strstr(strchr(out, '\n') + 1, "fleetsym_c_spin ??:0 main.goSide "));
}
