/*
 * test_agent - the agent's modules that need no BPF: smap, elfid (build IDs through program
 * headers, on damaged input too), procmaps (this process's own mappings, the vDSO), mapfile
 * (what a process can put at its mapped file's path), ksyms.
 */
#include "tests/t.h"

#include "agent/elfid.h"
#include "agent/ksyms.h"
#include "agent/mapfile.h"
#include "agent/perfmap.h"
#include "agent/procmaps.h"
#include "agent/vdso.h"
#include "agent/smap.h"
#include "lib/buildid.h"
#include "lib/err.h"

#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/auxv.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <time.h>
#include <unistd.h>

static uint64_t now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000 + (uint64_t)ts.tv_nsec;
}

TEST(smap_basics)
{
	struct smap *m = NULL;
	const struct smap_ent *e;
	char key[32];

	CHECK_INT(smap_new(1000, &m), 0);
	CHECK(smap_get(m, "a") == NULL);
	CHECK_INT(smap_put(m, "a", 1, NULL), 0);
	CHECK_INT(smap_put(m, "b", 2, "two"), 0);
	e = smap_get(m, "b");
	CHECK(e && e->num == 2);
	CHECK_STR(e->str, "two");
	CHECK_INT(smap_put(m, "b", 3, NULL), 0);
	e = smap_get(m, "b");
	CHECK(e && e->num == 3 && e->str == NULL);
	for (int i = 0; i < 998; i++) {
		snprintf(key, sizeof(key), "k%d", i);
		CHECK_INT(smap_put(m, key, (uint64_t)i, key), 0);
	}
	CHECK_INT(smap_count(m), 1000);
	CHECK_INT(smap_put(m, "one-too-many", 0, NULL), -E2BIG);
	CHECK_INT(smap_put(m, "k5", 55, NULL), 0); /* replacing is fine when full */
	e = smap_get(m, "k997");
	CHECK(e && e->num == 997);
	CHECK_STR(e->str, "k997");
	smap_clear(m);
	CHECK_INT(smap_count(m), 0);
	CHECK(smap_get(m, "k5") == NULL);
	smap_free(m);
}

static int self_bytes(unsigned char **buf, size_t *len)
{
	struct stat st;
	int fd = open("/proc/self/exe", O_RDONLY);

	if (fd < 0 || fstat(fd, &st))
		return -1;
	*len = (size_t)st.st_size;
	*buf = malloc(*len);
	if (!*buf || read(fd, *buf, *len) != (ssize_t)*len)
		return -1;
	close(fd);
	return 0;
}

TEST(elfid_matches_libelf)
{
	char a[BUILDID_HEX_MAX] = "", b[BUILDID_HEX_MAX] = "";
	unsigned char *img = NULL;
	size_t len = 0;
	int fd = open("/proc/self/exe", O_RDONLY);

	CHECK(fd >= 0);
	CHECK_INT(elfid_from_fd(fd, a), 0);
	close(fd);
	CHECK_INT(buildid_from_path("/proc/self/exe", b), 0);
	CHECK_STR(a, b);
	CHECK_INT(self_bytes(&img, &len), 0);
	CHECK_INT(elfid_from_mem(img, len, b), 0);
	CHECK_STR(a, b);
	free(img);
}

TEST(elfid_bad_input)
{
	char hex[BUILDID_HEX_MAX];
	unsigned char *img = NULL;
	size_t len = 0;
	uint32_t r = 12345;
	int fd = open("/dev/null", O_RDONLY);

	CHECK_INT(elfid_from_fd(fd, hex), -ERR_NOTELF);
	close(fd);
	CHECK_INT(elfid_from_mem("hello", 5, hex), -ERR_NOTELF);
	CHECK_INT(self_bytes(&img, &len), 0);
	CHECK_INT(elfid_from_mem(img, 40, hex), -ERR_BADELF);
	CHECK_INT(elfid_from_mem(img, 64, hex), -ERR_BADELF); /* program headers cut off */
	/* damaged copies: any answer but a crash (run under ASan too) */
	for (int round = 0; round < 3000; round++) {
		unsigned char *copy = malloc(4096);
		size_t n = len < 4096 ? len : 4096;

		CHECK(copy != NULL);
		memcpy(copy, img, n);
		for (int k = 0; k < 8; k++) {
			r = r * 1103515245 + 12345;
			copy[(r >> 8) % n] = (unsigned char)(r >> 24);
		}
		(void)!elfid_from_mem(copy, n, hex);
		free(copy);
	}
	free(img);
}

__attribute__((noinline)) static int here(void)
{
	return 42;
}

TEST(procmaps_self)
{
	struct procmaps *pm = NULL;
	const struct pm_mapping *m = NULL;
	char bid[BUILDID_HEX_MAX], exe[4096];
	unsigned long vdso = getauxval(AT_SYSINFO_EHDR);
	uint64_t t = now_ns();
	ssize_t n = readlink("/proc/self/exe", exe, sizeof(exe) - 1);

	CHECK(n > 0);
	exe[n] = 0;
	CHECK_INT(buildid_from_path("/proc/self/exe", bid), 0);
	CHECK_INT(procmaps_new(4, &pm), 0);
	CHECK_INT(procmaps_lookup(pm, (uint32_t)getpid(), (uint64_t)(uintptr_t)here, t, &m), 0);
	CHECK_STR(m->path, exe);
	CHECK_STR(m->build_id, bid);
	CHECK(!m->special);
	CHECK(m->start <= (uint64_t)(uintptr_t)here && (uint64_t)(uintptr_t)here < m->end);
	CHECK_STR(procmaps_path_of(pm, bid), exe);
	CHECK_INT(procmaps_lookup(pm, (uint32_t)getpid(), 0x10, t, &m), -ENOENT);
	if (vdso) {
		CHECK_INT(procmaps_lookup(pm, (uint32_t)getpid(), vdso + 16, t, &m), 0);
		CHECK_STR(m->path, "[vdso]");
		CHECK(m->special);
		CHECK_INT(strlen(m->build_id) >= 2, 1);
	}
	/* exec invalidates, exit keeps the maps for a while, expiry forgets */
	procmaps_exec(pm, (uint32_t)getpid());
	CHECK_INT(procmaps_lookup(pm, (uint32_t)getpid(), (uint64_t)(uintptr_t)here, t, &m), 0);
	procmaps_exit(pm, (uint32_t)getpid(), t);
	procmaps_expire(pm, t + 1);
	CHECK_INT(procmaps_lookup(pm, (uint32_t)getpid(), (uint64_t)(uintptr_t)here, t + 2, &m), 0);
	procmaps_expire(pm, t + PROCMAPS_KEEP_EXITED_NS + 10);
	/* a process that does not exist: no mapping, no crash, counted */
	CHECK_INT(procmaps_lookup(pm, 0x7ffffff0u, 0x1000, t, &m), -ENOENT);
	CHECK_INT(procmaps_lookup(pm, 0x7ffffff0u, 0x1000, t + 1, &m), -ENOENT);
	{
		struct procmaps_stats st;

		procmaps_get_stats(pm, &st);
		CHECK_INT(st.read_errors, 1); /* the second lookup did not read again */
	}
	/* more processes than the cap: the least recently used one goes */
	for (uint32_t pid = 0x7ffffff1u; pid < 0x7ffffff9u; pid++)
		CHECK_INT(procmaps_lookup(pm, pid, 0x1000, t, &m), -ENOENT);
	{
		struct procmaps_stats st;

		procmaps_get_stats(pm, &st);
		CHECK(st.procs <= 4);
	}
	procmaps_free(pm);
	CHECK_INT(here(), 42);
}

TEST(ksyms_lookup)
{
	struct ksyms *k = NULL;
	char line[512], name[256], type;
	unsigned long long addr = 0, a;
	const char *mod = NULL, *got;
	FILE *f;
	int err = ksyms_load(&k);

	if (err == -EPERM || err == -EACCES || err == -ENOENT)
		SKIP("/proc/kallsyms shows no addresses here");
	CHECK_INT(err, 0);
	CHECK(ksyms_count(k) > 1000);
	f = fopen("/proc/kallsyms", "r");
	CHECK(f != NULL);
	while (fgets(line, sizeof(line), f))
		if (sscanf(line, "%llx %c %255s", &a, &type, name) == 3 && type == 'T' &&
		    !strcmp(name, "vfs_read")) {
			addr = a;
			break;
		}
	fclose(f);
	if (addr) {
		got = ksyms_lookup(k, addr + 1, &mod);
		CHECK_STR(got, "vfs_read");
		CHECK_STR(mod, "");
	}
	CHECK(ksyms_lookup(k, 16, &mod) == NULL);
	CHECK_INT(ksyms_refresh(&k) >= 0, 1);
	ksyms_free(k);
}

static char mf_dir[64];

static void mf_cleanup(void *unused)
{
	char cmd[128];

	alarm(0);
	snprintf(cmd, sizeof(cmd), "rm -rf %s", mf_dir);
	if (system(cmd) != 0)
		fprintf(stderr, "  could not remove %s\n", mf_dir);
}

/* A process maps a file, then puts something else at its path: a FIFO (whose blocking open
 * once stopped the agent's sampling thread for good), a symlink to another file, another
 * regular file. Through the path, each is refused at once; through map_files the mapped
 * file itself opens whatever the path holds now. An alarm fails the test instead of a hang. */
TEST(mapfile_refuses_what_was_put_in_place)
{
	char path[128], moved[128], buf[4096] = {0};
	struct mapfile_id id = {0};
	struct stat st;
	void *map;
	int fd;

	snprintf(mf_dir, sizeof(mf_dir), "/tmp/test_mapfile.XXXXXX");
	CHECK(mkdtemp(mf_dir));
	t_defer(mf_cleanup, NULL);
	snprintf(path, sizeof(path), "%s/lib.so", mf_dir);
	snprintf(moved, sizeof(moved), "%s/lib.so.moved", mf_dir);
	fd = open(path, O_RDWR | O_CREAT | O_TRUNC, 0644);
	CHECK(fd >= 0 && write(fd, buf, sizeof(buf)) == (ssize_t)sizeof(buf));
	map = mmap(NULL, sizeof(buf), PROT_READ, MAP_PRIVATE, fd, 0);
	CHECK(map != MAP_FAILED);
	CHECK_INT(fstat(fd, &st), 0);
	close(fd);
	id = (struct mapfile_id){.start = (uintptr_t)map,
				 .end = (uintptr_t)map + sizeof(buf),
				 .path = path,
				 .dev_major = major(st.st_dev),
				 .dev_minor = minor(st.st_dev),
				 .ino = st.st_ino};
	alarm(20);
	/* the file itself, through map_files or the path */
	fd = mapfile_open((uint32_t)getpid(), &id);
	CHECK(fd >= 0);
	close(fd);
	/* the path (map_files is out of reach: a range nothing maps) */
	id.start += 1 << 20;
	id.end += 1 << 20;
	fd = mapfile_open((uint32_t)getpid(), &id);
	CHECK(fd >= 0);
	close(fd);
	CHECK_INT(rename(path, moved), 0);
	CHECK_INT(mkfifo(path, 0644), 0);
	CHECK_INT(mapfile_open((uint32_t)getpid(), &id), -ENODEV);
	CHECK_INT(unlink(path), 0);
	CHECK_INT(symlink(moved, path), 0); /* even to the very file: no links followed */
	fd = mapfile_open((uint32_t)getpid(), &id);
	CHECK(fd == -ELOOP || fd == -ESTALE);
	CHECK_INT(unlink(path), 0);
	fd = open(path, O_WRONLY | O_CREAT, 0644);
	CHECK(fd >= 0);
	close(fd);
	CHECK_INT(mapfile_open((uint32_t)getpid(), &id), -ESTALE);
	/* map_files still reaches the mapped file, whatever the path holds */
	id.start -= 1 << 20;
	id.end -= 1 << 20;
	CHECK_INT(unlink(path), 0);
	CHECK_INT(mkfifo(path, 0644), 0);
	fd = mapfile_open((uint32_t)getpid(), &id);
	if (geteuid() == 0) { /* map_files needs CAP_SYS_ADMIN */
		CHECK(fd >= 0);
		CHECK_INT(fstat(fd, &st), 0);
		CHECK(S_ISREG(st.st_mode) && st.st_ino == id.ino);
		close(fd);
	} else {
		CHECK_INT(fd, -ENODEV);
	}
	munmap(map, sizeof(buf));
}

/* vDSO names against readelf's reading of the same image, dumped to a file: every function
 * symbol's start and middle give it or an alias at the same address (the global one first). */
TEST(vdso_names_match_readelf)
{
	char path[] = "/tmp/test_vdso.XXXXXX", cmd[256], line[512];
	struct vdso *v = NULL;
	uint64_t s, e, base = 0;
	size_t checked = 0;
	FILE *f;
	int fd;

	CHECK_INT(vdso_self_range(&s, &e), 0);
	CHECK_INT(vdso_open(&v), 0);
	fd = mkstemp(path);
	CHECK(fd >= 0);
	CHECK(write(fd, (const void *)(uintptr_t)s, e - s) == (ssize_t)(e - s));
	close(fd);
	/* the image's own link address: where its first byte sits (readelf's vaddr of offset 0) */
	snprintf(cmd, sizeof(cmd), "readelf -lW %s | awk '$1 == \"LOAD\" {print $3; exit}'", path);
	f = popen(cmd, "r");
	CHECK(f && fgets(line, sizeof(line), f));
	base = strtoull(line, NULL, 16);
	pclose(f);
	snprintf(cmd, sizeof(cmd), "readelf --dyn-syms -W %s", path);
	f = popen(cmd, "r");
	CHECK(f);
	while (fgets(line, sizeof(line), f)) {
		unsigned long long val, size;
		char type[16], bind[16], name[128];
		const char *got;

		if (sscanf(line, " %*d: %llx %llu %15s %15s %*s %*s %127s", &val, &size, type, bind,
			   name) != 5 ||
		    strcmp(type, "FUNC") || !size)
			continue;
		*strchrnul(name, '@') = '\0';
		got = vdso_lookup(v, val - base + size / 2);
		CHECK(got);
		/* aliases share an address: the global one is answered */
		if (strcmp(got, name) != 0)
			CHECK(strstr(got, name) || strstr(name, got) || !strcmp(bind, "WEAK"));
		checked++;
	}
	pclose(f);
	unlink(path);
	fprintf(stderr, "  %zu vDSO functions, e.g. %s\n", vdso_count(v),
		vdso_lookup(v, 0) ? vdso_lookup(v, 0) : "(none at 0)");
	CHECK(checked >= 4 && vdso_count(v) >= 4);
	CHECK(!vdso_lookup(v, e - s + 100));
	vdso_free(v);
}

/* The perf map parser on what JITs write and what they should not: unsorted lines, code
 * moved by a GC (a later line at an overlapping address wins), bad lines, an endless name, a
 * last line cut short, and a file past the entry cap. */
TEST(perfmap_parse_and_lookup)
{
	static const char text[] = "7f0000001000 100 JS:*hot /app.js:1\n"
				   "7f0000000000 40 LazyCompile:cold\n"
				   "\n"
				   "garbage line\n"
				   "7f00000010g0 10 bad hex\n"
				   "7f0000002000 0 zero size\n"
				   "7f0000001080 20 JS:*moved /app.js:9\n"
				   "7f0000003000 10 no-newline-at-end";
	struct perfmap_table *t = NULL;
	char *big;
	size_t bad = 0, n;

	CHECK_INT(perfmap_table_parse(text, sizeof(text) - 1, &t, &bad), 0);
	CHECK_INT(perfmap_table_count(t), 4);
	CHECK_INT(bad, 3);
	CHECK_STR(perfmap_table_lookup(t, 0x7f0000000020), "LazyCompile:cold");
	CHECK_STR(perfmap_table_lookup(t, 0x7f0000001000), "JS:*hot /app.js:1");
	CHECK_STR(perfmap_table_lookup(t, 0x7f0000001090), "JS:*moved /app.js:9");
	CHECK_STR(perfmap_table_lookup(t, 0x7f00000010a0), "JS:*hot /app.js:1");
	CHECK_STR(perfmap_table_lookup(t, 0x7f0000003005), "no-newline-at-end");
	CHECK(!perfmap_table_lookup(t, 0x7f0000000040));
	CHECK(!perfmap_table_lookup(t, 0x7f0000001100));
	CHECK(!perfmap_table_lookup(t, 0x1000));
	perfmap_table_free(t);
	/* a name of 100 KB is cut to 1 KB */
	big = malloc(200000);
	CHECK(big);
	n = (size_t)sprintf(big, "1000 10 ");
	memset(big + n, 'x', 100000);
	n += 100000;
	CHECK_INT(perfmap_table_parse(big, n, &t, &bad), 0);
	CHECK(perfmap_table_lookup(t, 0x1004) && strlen(perfmap_table_lookup(t, 0x1004)) == 1024);
	perfmap_table_free(t);
	free(big);
	/* more lines than the cap: refused, not grown without end */
	n = (size_t)PERFMAP_MAX_ENTRIES + 1;
	big = malloc(n * 8 + 1);
	CHECK(big);
	for (size_t i = 0; i < n; i++)
		memcpy(big + i * 8, "1 1 a\n\n\n", 8);
	CHECK_INT(perfmap_table_parse(big, n * 8, &t, &bad), -E2BIG);
	CHECK(!t);
	free(big);
}
