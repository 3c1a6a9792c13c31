/*
 * Unit tests of symbolizer/engine/symaddr (NAME[+-OFF] resolved and described through the symbol
 * table) and debuglink (the .gnu_debuglink file found along a debuginfo path), on a small
 * program compiled at test time (-O0 -g, non-PIE), its objcopy --only-keep-debug file and a
 * stripped copy that links to it:
 * - resolve: plain names, hex/decimal/octal offsets, minus, blanks; malformed text and
 *   unknown names refused; the stripped file finds its symbols in the .dynsym or not at all;
 * - describe: NAME, NAME+0xOFF, " (.text)" with the section, "??" outside every symbol, or
 *   "()+0xOFF" inside a PIE's loaded range;
 * - debuglink: the file's dir, a relative element, an absolute one with the file's dir under
 *   it, a wrong CRC passed over with '+' (the default) and taken with '-', no link -ENOENT.
 */
#include "tests/t.h"
#include "tests/unit/fixture.h"

#include "lib/err.h"
#include "symbolizer/engine/debuglink.h"
#include "symbolizer/engine/symaddr.h"

#include <errno.h>
#include <inttypes.h>
#include <limits.h>
#include <stdint.h>
#include <stdio.h>

static const char *setup(void)
{
	return fixture_setup(
	    "test_symaddr",
	    "cd %1$s && mkdir -p sub/.debug abs && "
	    "printf 'int g_data = 5;\\n"
	    "__attribute__((noinline)) int fx_add(int a) { return a * 3 + g_data; }\\n"
	    "int main(void) { return fx_add(g_data); }\\n' > fx.c && "
	    "gcc -O0 -g -no-pie -o fx fx.c && gcc -O0 -g -pie -fPIE -o fxpie fx.c && "
	    "nm fx | grep ' fx_add$' | cut -d' ' -f1 > fx_add.nm && "
	    "objcopy --only-keep-debug fx fx.debug && "
	    "strip -o sub/fxs fx && objcopy --add-gnu-debuglink=fx.debug sub/fxs && "
	    "strip -o nolink fx");
}

/* fx_add's st_value, as nm printed it */
static uint64_t fx_add_value(void)
{
	char path[PATH_MAX];
	uint64_t v = 0;
	FILE *f;

	snprintf(path, sizeof(path), "%s/fx_add.nm", fixture_dir);
	f = fopen(path, "r");
	CHECK(f != NULL);
	CHECK_INT(fscanf(f, "%" SCNx64, &v), 1);
	fclose(f);
	CHECK(v != 0);
	return v;
}

static void close_sa(void *sa)
{
	symaddr_close(sa);
}

static struct symaddr *open_fixture(const char *file)
{
	char path[PATH_MAX];
	struct symaddr *sa = NULL;

	snprintf(path, sizeof(path), "%s/%s", fixture_dir, file);
	CHECK_INT(symaddr_open(path, NULL, &sa), 0);
	t_defer(close_sa, sa);
	return sa;
}

TEST(resolve_names_and_offsets)
{
	struct symaddr *sa;
	uint64_t v, a = 0;

	if (!setup())
		SKIP("no gcc/objcopy");
	v = fx_add_value();
	sa = open_fixture("fx");
	CHECK_INT(symaddr_resolve(sa, "fx_add", &a), 0);
	CHECK_INT(a, v);
	CHECK_INT(symaddr_resolve(sa, "fx_add+0x10", &a), 0);
	CHECK_INT(a, v + 0x10);
	CHECK_INT(symaddr_resolve(sa, "fx_add+16", &a), 0);
	CHECK_INT(a, v + 16);
	CHECK_INT(symaddr_resolve(sa, "fx_add-010", &a), 0);
	CHECK_INT(a, v - 8);
	CHECK_INT(symaddr_resolve(sa, "  fx_add+0x4 \n", &a), 0);
	CHECK_INT(a, v + 4);
}

TEST(resolve_refuses_malformed_and_unknown)
{
	struct symaddr *sa;
	uint64_t a = 0;

	if (!setup())
		SKIP("no gcc/objcopy");
	sa = open_fixture("fx");
	CHECK_INT(symaddr_resolve(sa, "", &a), -ERR_BADINPUT);
	CHECK_INT(symaddr_resolve(sa, "+0x10", &a), -ERR_BADINPUT);
	CHECK_INT(symaddr_resolve(sa, "fx_add+", &a), -ERR_BADINPUT);
	CHECK_INT(symaddr_resolve(sa, "fx_add+zz", &a), -ERR_BADINPUT);
	CHECK_INT(symaddr_resolve(sa, "fx_add+4 main", &a), -ERR_BADINPUT);
	CHECK_INT(symaddr_resolve(sa, "no_such_symbol", &a), -ENOENT);
	/* stripped, no debug file by build ID under the default dirs: fx_add is in no table */
	sa = open_fixture("nolink");
	CHECK_INT(symaddr_resolve(sa, "fx_add", &a), -ENOENT);
}

TEST(describe_name_offset_section)
{
	struct symaddr *sa;
	uint64_t v;
	char buf[256];

	if (!setup())
		SKIP("no gcc/objcopy");
	v = fx_add_value();
	sa = open_fixture("fx");
	CHECK_INT(symaddr_describe(sa, v, 0, buf, sizeof(buf)), 0);
	CHECK_STR(buf, "fx_add");
	CHECK_INT(symaddr_describe(sa, v + 4, 0, buf, sizeof(buf)), 0);
	CHECK_STR(buf, "fx_add+0x4");
	CHECK_INT(symaddr_describe(sa, v + 4, 1, buf, sizeof(buf)), 0);
	CHECK_STR(buf, "fx_add+0x4 (.text)");
	CHECK_INT(symaddr_describe(sa, 0x10, 1, buf, sizeof(buf)), -ENOENT);
	CHECK_STR(buf, "??");
	/* a PIE: its loaded range starts at 0; past it nothing */
	sa = open_fixture("fxpie");
	CHECK_INT(symaddr_describe(sa, 0, 1, buf, sizeof(buf)), -ENOENT);
	CHECK_STR(buf, "()+0");
	CHECK_INT(symaddr_describe(sa, 0x10, 1, buf, sizeof(buf)), -ENOENT);
	CHECK_STR(buf, "()+0x10");
	CHECK_INT(symaddr_describe(sa, 0x10000000, 1, buf, sizeof(buf)), -ENOENT);
	CHECK_STR(buf, "??");
}

/* debuglink_find on sub/fxs along DIPATH: 0 and the found file's name relative to the fixture
 * dir in OUT, or the error */
static int find(const char *dipath, char *out, size_t len)
{
	char path[PATH_MAX], found[PATH_MAX];
	size_t n = strlen(fixture_dir);
	int err;

	snprintf(path, sizeof(path), "%s/sub/fxs", fixture_dir);
	err = debuglink_find(path, dipath, found, sizeof(found));
	if (err)
		return err;
	if (strncmp(found, fixture_dir, n) || found[n] != '/')
		return -EINVAL;
	snprintf(out, len, "%s", found + n + 1);
	return 0;
}

static void run(const char *cmd_fmt)
{
	char cmd[1024];

	snprintf(cmd, sizeof(cmd), cmd_fmt, fixture_dir);
	CHECK_INT(system(cmd), 0);
}

/* One test: the files are moved between the candidates in order. */
TEST(debuglink_search_order_and_crc)
{
	char got[PATH_MAX], dipath[PATH_MAX], path[PATH_MAX];

	if (!setup())
		SKIP("no gcc/objcopy");
	/* nothing in sub/, sub/.debug or /usr/lib/debug<dir> */
	CHECK_INT(find(NULL, got, sizeof(got)), -ENOENT);
	/* an empty element: the file's dir */
	run("cp %1$s/fx.debug %1$s/sub/fx.debug");
	CHECK_INT(find(NULL, got, sizeof(got)), 0);
	CHECK_STR(got, "sub/fx.debug");
	/* a relative element: a subdirectory of the file's dir (after the file's dir here) */
	run("mv %1$s/sub/fx.debug %1$s/sub/.debug/fx.debug");
	CHECK_INT(find(NULL, got, sizeof(got)), 0);
	CHECK_STR(got, "sub/.debug/fx.debug");
	CHECK_INT(find(":/nonexistent", got, sizeof(got)), -ENOENT);
	/* an absolute element: ABS/<file's dir>, then with components dropped, then ABS */
	run("mkdir -p %1$s/abs%1$s/sub && cp %1$s/fx.debug %1$s/abs%1$s/sub/fx.debug");
	snprintf(dipath, sizeof(dipath), "%s/abs", fixture_dir);
	CHECK_INT(find(dipath, got, sizeof(got)), 0);
	snprintf(path, sizeof(path), "abs%s/sub/fx.debug", fixture_dir);
	CHECK_STR(got, path);
	run("rm -r %1$s/abs/tmp && cp %1$s/fx.debug %1$s/abs/fx.debug");
	CHECK_INT(find(dipath, got, sizeof(got)), 0);
	CHECK_STR(got, "abs/fx.debug");
	/* a file whose CRC differs: passed over when checked (the default, '+'), taken with '-' */
	run("printf x >> %1$s/abs/fx.debug");
	CHECK_INT(find(dipath, got, sizeof(got)), -ENOENT);
	snprintf(dipath, sizeof(dipath), "+%s/abs", fixture_dir);
	CHECK_INT(find(dipath, got, sizeof(got)), -ENOENT);
	snprintf(dipath, sizeof(dipath), "-%s/abs", fixture_dir);
	CHECK_INT(find(dipath, got, sizeof(got)), 0);
	CHECK_STR(got, "abs/fx.debug");
	snprintf(dipath, sizeof(dipath), "-/nonexistent:+%s/abs", fixture_dir);
	CHECK_INT(find(dipath, got, sizeof(got)), -ENOENT);
	/* no .gnu_debuglink at all */
	snprintf(path, sizeof(path), "%s/nolink", fixture_dir);
	CHECK_INT(debuglink_find(path, NULL, got, sizeof(got)), -ENOENT);
}
