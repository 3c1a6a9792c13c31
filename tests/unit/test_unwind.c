/*
 * test_unwind - agent/unwtab.c: the rows built from .eh_frame against binutils' own reading of
 * the same CFI (readelf --debug-dump=frames-interp), on a fixture built here without frame
 * pointers and on Debian's libc; 200 recorded stack snapshots replayed through the tables and
 * the step rules, frame by frame against glibc's backtrace() at the same moment; bad input (garbage
 * or truncated .eh_frame, a truncated file, no CFI at all) gives an error or a table, never a crash
 * or a hang; and the step rules of bpf/unwind.h on a hand-made stack.
 */
#include "tests/t.h"
#include "tests/unit/fixture.h"

#include "agent/unwreplay.h"
#include "agent/unwtab.h"

#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

static const char *fixtures(void)
{
	const char *d = fixture_setup(
	    "test_unwind",
	    "cd %1$s && gcc -O2 -g -fomit-frame-pointer -o work %2$s/tests/data/src/unw_work.c && "
	    "gcc -O2 -fno-asynchronous-unwind-tables -fno-unwind-tables -nostartfiles -static "
	    "-Wl,--no-ld-generated-unwind-info -o nocfi -x c - <<'EOF'\n"
	    "void _start(void) { for (;;) ; }\nEOF\n"
	    "objcopy --remove-section .eh_frame --remove-section .eh_frame_hdr nocfi && "
	    "gcc -O2 -g -fomit-frame-pointer -o snap %2$s/tests/data/src/unw_snap.c && "
	    "./snap snaps.txt 200");

	if (!d)
		SKIP("gcc or objcopy missing");
	return d;
}

static struct unwtab *build_path(const char *path, int *err)
{
	struct unwtab *t = NULL;
	int fd = open(path, O_RDONLY | O_CLOEXEC);

	if (fd < 0) {
		*err = -errno;
		return NULL;
	}
	*err = unwtab_build_fd(fd, &t);
	close(fd);
	return t;
}

/* Every row readelf prints for PATH is the row unwtab finds at its address. */
static void compare_readelf(const char *path, int *rows_checked, int *mismatches)
{
	char cmd[512], line[1024];
	int rbp_col = -1, ra_col = -1, err;
	struct unwtab *t = build_path(path, &err);
	FILE *f;

	CHECK_INT(err, 0);
	snprintf(cmd, sizeof(cmd), "readelf --debug-dump=frames-interp '%s' 2>/dev/null", path);
	f = popen(cmd, "r");
	CHECK(f);
	*rows_checked = *mismatches = 0;
	while (fgets(line, sizeof(line), f)) {
		char *tok[32], *save = NULL, *p;
		int n = 0;

		for (p = strtok_r(line, " \t\n", &save); p && n < 32;
		     p = strtok_r(NULL, " \t\n", &save))
			if (p[0] != '(') /* "r10 (r10)": the name of a register rule's register */
				tok[n++] = p;
		if (n >= 2 && !strcmp(tok[0], "LOC") && !strcmp(tok[1], "CFA")) {
			rbp_col = ra_col = -1;
			for (int i = 2; i < n; i++) {
				if (!strcmp(tok[i], "rbp"))
					rbp_col = i;
				if (!strcmp(tok[i], "ra"))
					ra_col = i;
			}
			continue;
		}
		if (n < 2 || strlen(tok[0]) != 16 || strspn(tok[0], "0123456789abcdef") != 16 ||
		    ra_col < 0 || ra_col >= n)
			continue;
		uint64_t loc = strtoull(tok[0], NULL, 16);
		const struct unw_row *r = unwtab_find(t, loc);
		int want_kind, want_cfa = 0, want_rbp = 0;

		if (!loc)
			continue; /* a CIE's initial rows */
		if (!strcmp(tok[1], "exp")) {
			want_kind = -1; /* an expression: PLT, signal frame or bad, all explicit */
		} else if (!strcmp(tok[ra_col], "u")) {
			want_kind = UNW_ROW_STOP;
		} else if (strcmp(tok[ra_col], "c-8")) {
			want_kind =
			    UNW_ROW_BAD; /* return address in a register: explicit, counted */
		} else if (!strncmp(tok[1], "rsp+", 4) || !strncmp(tok[1], "rbp+", 4)) {
			want_kind = tok[1][1] == 's' ? UNW_ROW_CFA_RSP : UNW_ROW_CFA_RBP;
			want_cfa = atoi(tok[1] + 4);
			if (rbp_col >= 0 && rbp_col < n && tok[rbp_col][0] == 'c')
				want_rbp = atoi(tok[rbp_col] + 1);
			if (want_cfa % 8 || want_cfa / 8 > INT16_MAX || want_rbp % 8 ||
			    want_rbp / 8 < INT8_MIN)
				want_kind = UNW_ROW_BAD; /* beyond a row's fields: a counted stop */
		} else {
			want_kind = UNW_ROW_BAD;
		}
		(*rows_checked)++;
		if (!r ||
		    (want_kind >= 0 &&
		     (r->kind != want_kind ||
		      (want_kind != UNW_ROW_STOP && want_kind != UNW_ROW_BAD &&
		       (r->cfa_off8 * 8 != want_cfa || r->rbp_off8 * 8 != want_rbp)))) ||
		    (want_kind < 0 && r->kind != UNW_ROW_PLT && r->kind != UNW_ROW_SIGNAL &&
		     r->kind != UNW_ROW_BAD)) {
			if (*mismatches < 5)
				fprintf(stderr,
					"  %s %llx: readelf %s ra %s, row kind %d cfa %d rbp %d\n",
					path, (unsigned long long)loc, tok[1], tok[ra_col],
					r ? r->kind : -1, r ? r->cfa_off8 * 8 : 0,
					r ? r->rbp_off8 * 8 : 0);
			(*mismatches)++;
		}
	}
	pclose(f);
	unwtab_free(t);
}

TEST(rows_match_readelf_fixture)
{
	char path[128];
	int rows, bad;

	snprintf(path, sizeof(path), "%s/work", fixtures());
	compare_readelf(path, &rows, &bad);
	printf("  fixture: %d readelf rows, %d differ\n", rows, bad);
	CHECK(rows > 50);
	CHECK_INT(bad, 0);
}

TEST(rows_match_readelf_libc)
{
	const char *libc = "/lib/x86_64-linux-gnu/libc.so.6";
	struct unwtab_stats st;
	struct unwtab *t;
	int rows, bad, err;

	if (access(libc, R_OK))
		SKIP("no libc.so.6 here");
	compare_readelf(libc, &rows, &bad);
	printf("  libc: %d readelf rows, %d differ\n", rows, bad);
	CHECK(rows > 10000);
	CHECK_INT(bad, 0);
	t = build_path(libc, &err);
	CHECK(t);
	unwtab_get_stats(t, &st);
	printf("  libc: %llu FDEs, %llu rows (plt %llu, signal %llu, entry %llu, bad %llu)\n",
	       (unsigned long long)st.fdes, (unsigned long long)st.rows, (unsigned long long)st.plt,
	       (unsigned long long)st.signal, (unsigned long long)st.stop,
	       (unsigned long long)st.bad);
	CHECK(st.signal >= 1); /* __restore_rt */
	CHECK(st.plt >= 1);
	CHECK(st.stop >= 1); /* clone/clone3: the thread entry */
	unwtab_free(t);
}

TEST(no_cfi_is_enoent)
{
	char path[128];
	int err;
	struct unwtab *t;

	snprintf(path, sizeof(path), "%s/nocfi", fixtures());
	t = build_path(path, &err);
	CHECK(!t);
	CHECK_INT(err, -ENOENT);
}

/* The file offset and size of SECTION in the ELF at PATH. */
static int section_of(const char *path, const char *name, off_t *off, size_t *size)
{
	int fd = open(path, O_RDONLY), found = -1;
	size_t shstrndx;
	Elf_Scn *scn = NULL;
	Elf *elf;

	if (fd < 0)
		return -1;
	elf_version(EV_CURRENT);
	elf = elf_begin(fd, ELF_C_READ, NULL);
	if (elf && !elf_getshdrstrndx(elf, &shstrndx))
		while ((scn = elf_nextscn(elf, scn))) {
			GElf_Shdr sh;
			const char *n;

			if (!gelf_getshdr(scn, &sh))
				continue;
			n = elf_strptr(elf, shstrndx, sh.sh_name);
			if (n && !strcmp(n, name)) {
				*off = (off_t)sh.sh_offset;
				*size = sh.sh_size;
				found = 0;
				break;
			}
		}
	elf_end(elf);
	close(fd);
	return found;
}

/* Copy the fixture to DST with LEN bytes of .eh_frame from START overwritten (seeded
 * garbage), or the whole file cut at CUT bytes when CUT > 0. */
static void damaged_copy(const char *dst, size_t start_pct, size_t len_pct, unsigned seed,
			 off_t cut)
{
	char src[128], cmd[512];
	off_t off;
	size_t size;
	int fd;

	snprintf(src, sizeof(src), "%s/work", fixtures());
	snprintf(cmd, sizeof(cmd), "cp '%s' '%s'", src, dst);
	CHECK(system(cmd) == 0);
	if (cut > 0) {
		CHECK(truncate(dst, cut) == 0);
		return;
	}
	CHECK(section_of(src, ".eh_frame", &off, &size) == 0);
	fd = open(dst, O_WRONLY);
	CHECK(fd >= 0);
	srand(seed);
	for (size_t i = size * start_pct / 100; i < size * (start_pct + len_pct) / 100; i++) {
		unsigned char b = (unsigned char)rand();

		CHECK(pwrite(fd, &b, 1, off + (off_t)i) == 1);
	}
	close(fd);
}

TEST(garbage_eh_frame_never_crashes)
{
	char path[160];
	int err, built = 0, refused = 0;
	struct unwtab *t;

	snprintf(path, sizeof(path), "%s/bad", fixtures());
	for (unsigned seed = 1; seed <= 60; seed++) {
		/* a whole garbage section, its second half, or a few bytes somewhere */
		size_t start = seed % 3 == 0   ? 0
			       : seed % 3 == 1 ? 50
					       : seed % 97,
		       len = seed % 3 == 2 ? 1 : 100 - start;

		damaged_copy(path, start, len, seed, 0);
		t = build_path(path, &err);
		if (t) {
			const struct unw_row *rows;
			size_t n = unwtab_rows(t, &rows);

			for (size_t i = 1; i < n; i++)
				CHECK(rows[i].pc >
				      rows[i - 1].pc); /* sorted: the BPF side bisects */
			built++;
		} else {
			CHECK(err < 0);
			refused++;
		}
		unwtab_free(t);
	}
	printf("  60 damaged .eh_frame: %d tables, %d refused\n", built, refused);
}

TEST(truncated_file)
{
	char path[160];
	int err;
	struct unwtab *t;

	snprintf(path, sizeof(path), "%s/cut", fixtures());
	for (off_t cut = 64; cut < 20000; cut = cut * 3 / 2) {
		damaged_copy(path, 0, 0, 0, cut);
		t = build_path(path, &err);
		CHECK(t || err < 0);
		unwtab_free(t);
	}
}

TEST(replay_matches_backtrace)
{
	struct unwreplay_result r;
	char path[128];

	snprintf(path, sizeof(path), "%s/snaps.txt", fixtures());
	CHECK_INT(unwreplay_file(path, stderr, &r), 0);
	printf("  replay: %d snapshots, %d agree frame by frame; %d of %d reference frames\n",
	       r.snapshots, r.agree, r.frames_same, r.frames);
	CHECK_INT(r.snapshots, 200);
	CHECK_INT(r.agree, r.snapshots);
	CHECK(r.frames >= 8 * r.snapshots); /* chains through libc's qsort to _start */
}

/* bpf/unwind.h on a fake stack: reads come from this array, addresses are indexes * 8. */
static uint64_t fake_stack[64];

static int fake_read(__u64 *dst, __u64 addr)
{
	if (addr % 8 || addr / 8 >= 64)
		return -1;
	*dst = fake_stack[addr / 8];
	return 0;
}

#define UNW_READ(dst, addr) fake_read((dst), (addr))
#include "bpf/unwind.h"

TEST(step_rules)
{
	struct unw_regs r = {.pc = 0x1000, .sp = 8 * 4, .bp = 8 * 20, .exact = 1};

	/* CFA = rsp + 24, RA at CFA - 8, rbp saved at CFA - 16 */
	fake_stack[4 + 2] = 0x2000; /* RA */
	fake_stack[4 + 1] = 8 * 30; /* saved rbp */
	CHECK_INT(unw_step_row(UNW_ROW_CFA_RSP, 24, -16, &r), UNW_STEP_OK);
	CHECK_INT(r.pc, 0x2000);
	CHECK_INT(r.sp, 8 * 7);
	CHECK_INT(r.bp, 8 * 30);
	CHECK_INT(r.exact, 0);
	CHECK_INT(unw_lookup_pc(&r), 0x1fff);
	/* frame pointers: [rbp] = caller's rbp, [rbp + 8] = RA */
	fake_stack[30] = 8 * 40;
	fake_stack[31] = 0x3000;
	CHECK_INT(unw_step_row(UNW_ROW_NONE, 0, 0, &r), UNW_STEP_OK);
	CHECK_INT(r.pc, 0x3000);
	CHECK_INT(r.sp, 8 * 32);
	CHECK_INT(r.bp, 8 * 40);
	/* PLT: past the push (pc & 15 >= 11) the CFA is 8 further */
	r.pc = 0x401b;
	r.sp = 8 * 10;
	fake_stack[10 + 1] = 0x5000;
	CHECK_INT(unw_step_row(UNW_ROW_PLT, 8, 11, &r), UNW_STEP_OK);
	CHECK_INT(r.pc, 0x5000);
	CHECK_INT(r.sp, 8 * 12);
	/* the signal frame: registers from the ucontext at rsp */
	r.sp = 0;
	fake_stack[UNW_UC_RIP / 8] = 0x6000;
	fake_stack[UNW_UC_RSP / 8] = 8 * 50;
	fake_stack[UNW_UC_RBP / 8] = 8 * 51;
	CHECK_INT(unw_step_row(UNW_ROW_SIGNAL, 0, 0, &r), UNW_STEP_OK);
	CHECK_INT(r.pc, 0x6000);
	CHECK_INT(r.exact, 1);
	CHECK_INT(r.sp, 8 * 50);
	CHECK_INT(unw_step_row(UNW_ROW_STOP, 0, 0, &r), UNW_STEP_ENTRY);
	CHECK_INT(unw_step_row(UNW_ROW_BAD, 0, 0, &r), UNW_STEP_BAD);
	r.sp = 8 * 100; /* off the stack */
	CHECK_INT(unw_step_row(UNW_ROW_CFA_RSP, 8, 0, &r), UNW_STEP_READ);
	r.bp = 0;
	CHECK_INT(unw_step_row(UNW_ROW_NONE, 0, 0, &r), UNW_STEP_FP_END);
}
