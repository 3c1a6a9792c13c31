/*
 * fleetsym-worker - reads one untrusted debug file for fleetsymd, in a sandbox, and writes its
 * symbol index. fleetsymd never runs libdw or libelf on uploaded or fetched files itself; it
 * starts this program (symbolizer/engine/opensyms.c), kills it at a deadline, validates the
 * index it wrote and reads its answer.
 *
 * Before opening the file it limits itself (symbolizer/engine/sandbox.h: address space, CPU,
 * file size, open files; Landlock: it can read only FILE and ALT and write only in OUT; seccomp:
 * no sockets, exec or signals to others). Then, on stdout, one fact per line:
 *   sandbox landlock=ABI seccomp=0|1 as=0|1
 *   altlink BUILDID            the file is dwz-compressed and no --alt/--no-alt was given: run
 *                              again with the store's file for BUILDID (nothing else is done)
 *   map exact USABLE N OFF VADDR FILESZ ...    the file's own PT_LOAD map (loadmap.h)
 *   map rebuilt HOW USABLE N OFF VADDR FILESZ ...   rebuilt as loadrebuild.h does
 *   index BUILDID              OUT/BUILDID.symidx was written
 *   ok
 * With --check-elf it reads an uploaded or fetched file for the debug store instead
 * (dstore_elf_check(): headers, build ID, symbols, section names; with --decompress MAX it
 * first inflates the file's zlib sections in place, at most MAX bytes) and answers
 *   elf BUILDID QUALITY NZLIB INFLATED
 *   ok
 * or "error CODE MESSAGE" and exit 2 (3: out of memory). A crash, a signal from an rlimit or
 * the parent's kill are told by the exit status.
 */
#include "symbolizer/engine/loadmap.h"
#include "symbolizer/engine/loadrebuild.h"
#include "symbolizer/engine/sandbox.h"
#include "symbolizer/engine/symfile.h"

#include "cache/debugstore.h"

#include "lib/buildid.h"
#include "lib/elfutil.h"
#include "lib/err.h"
#include "lib/log.h"
#include "lib/parse.h"
#include "lib/version.h"

#include <elfutils/libdw.h>
#include <elfutils/libdwelf.h>
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

struct job {
	const char *file, *alt, *out, *build_id;
	int no_alt, maps_only;
	int check_elf;		 /* --check-elf */
	uint64_t decompress_max; /* --decompress MAX; 0: read only */
	struct sandbox_opts sb;
};

static void usage(FILE *f)
{
	/* clang-format off */
	fputs("usage: fleetsym-worker --file PATH --build-id HEX --out DIR [--alt PATH | --no-alt]\n"
	      "                       [--maps-only] [LIMITS]\n"
	      "       fleetsym-worker --check-elf --file PATH [--decompress MAX] [LIMITS]\n"
	      "LIMITS: [--max-memory SIZE] [--max-cpu SECONDS] [--max-fsize SIZE] [--max-files N]\n"
	      "        [--parent PID]\n"
	      "Run by fleetsymd: reads one debug file in a sandbox and writes DIR/HEX.symidx, or\n"
	      "checks (and inflates) a file for its debug store.\n",
	      f);
	/* clang-format on */
}

static int fail(int err)
{
	printf("error %d %s\n", err < 0 ? -err : err, err_str(err));
	fflush(stdout);
	return err == -ENOMEM ? 3 : 2;
}

/* The build ID .gnu_debugaltlink names, "" when the file has none. libdw only parses the
 * section here; it opens nothing. */
static int altlink(const char *path, char hex[BUILDID_HEX_MAX])
{
	const char *name;
	const void *bid;
	Dwarf *dw = NULL;
	Elf *elf = NULL;
	ssize_t n = 0;
	int fd, err;

	hex[0] = '\0';
	err = elfutil_open(path, &fd, &elf);
	if (err)
		return err;
	dw = dwarf_begin_elf(elf, DWARF_C_READ, NULL);
	if (dw)
		n = dwelf_dwarf_gnu_debugaltlink(dw, &name, &bid);
	for (ssize_t k = 0; k < n && 2 * (size_t)k + 2 < BUILDID_HEX_MAX; k++)
		snprintf(hex + 2 * k, 3, "%02x", ((const unsigned char *)bid)[k]);
	if (dw)
		dwarf_end(dw);
	elfutil_close(fd, elf);
	return 0;
}

static void print_map(const struct loadmap *m)
{
	printf(" %d %d", m->usable, m->nsegs);
	for (int i = 0; i < m->nsegs; i++)
		printf(" %" PRIu64 " %" PRIu64 " %" PRIu64, m->segs[i].offset, m->segs[i].vaddr,
		       m->segs[i].filesz);
	printf("\n");
}

static int maps(const char *path)
{
	struct loadmap exact, rebuilt;
	enum loadrebuild_how how;
	Elf *elf = NULL;
	int fd, err;

	err = elfutil_open(path, &fd, &elf);
	if (err)
		return err;
	loadmap_from_elf(elf, &exact);
	how = loadrebuild_from_elf(elf, &rebuilt);
	elfutil_close(fd, elf);
	printf("map exact");
	print_map(&exact);
	printf("map rebuilt %d", (int)how);
	print_map(&rebuilt);
	return 0;
}

static int build_index(const struct job *j)
{
	static const char *const no_dirs[] = {NULL};
	struct symfile_opts so = {
	    .debug_dirs = no_dirs, .index_dir = j->out, .alt_path = j->alt, .alt_no_name = 1};
	struct symfile *sf = NULL;
	int err;

	err = symfile_open(j->file, &so, &sf);
	if (!err && strcmp(symfile_build_id(sf), j->build_id) != 0)
		err = -ERR_BUILDID_MISMATCH;
	if (!err)
		err = symfile_build_index(sf);
	if (!err)
		printf("index %s\n", j->build_id);
	symfile_close(sf);
	return err;
}

/* --check-elf: the debug store's reading (and inflating) of an outside file */
static int check_elf(const struct job *j)
{
	struct dstore_elf_facts f;
	int err = dstore_elf_check(j->file, j->decompress_max != 0, j->decompress_max, &f);

	if (err)
		return fail(err);
	printf("elf %s %u %d %" PRIu64 "\nok\n", f.build_id, f.quality, f.nzlib, f.inflated);
	return 0;
}

static int run(struct job *j)
{
	const char *files[3] = {j->file, j->alt, NULL};
	struct sandbox_report rep;
	char alt[BUILDID_HEX_MAX];
	int err;

	if (j->check_elf && j->decompress_max) /* rewritten in place: read and written */
		j->sb.rw_files = files;
	else
		j->sb.read_files = files;
	j->sb.write_dir = j->out;
	err = sandbox_enter(&j->sb, &rep);
	if (err)
		return fail(err);
	printf("sandbox landlock=%d seccomp=%d as=%d\n", rep.landlock_abi, rep.seccomp,
	       rep.as_limited);
	fflush(stdout);
	if (j->check_elf)
		return check_elf(j);
	if (!j->maps_only && !j->alt && !j->no_alt) {
		err = altlink(j->file, alt);
		if (err)
			return fail(err);
		if (alt[0]) {
			printf("altlink %s\n", alt);
			return 0;
		}
	}
	err = maps(j->file);
	if (!err && !j->maps_only)
		err = build_index(j);
	if (err)
		return fail(err);
	printf("ok\n");
	return 0;
}

enum {
	OPT_FILE = 256,
	OPT_ALT,
	OPT_NO_ALT,
	OPT_OUT,
	OPT_BUILD_ID,
	OPT_MAPS_ONLY,
	OPT_MEM,
	OPT_CPU,
	OPT_FSIZE,
	OPT_FILES,
	OPT_PARENT,
	OPT_CHECK_ELF,
	OPT_DECOMPRESS,
	OPT_VERSION,
	OPT_HELP
};

static int parse(int argc, char **argv, struct job *j)
{
	static const struct option opts[] = {
	    {"file", required_argument, NULL, OPT_FILE},
	    {"alt", required_argument, NULL, OPT_ALT},
	    {"no-alt", no_argument, NULL, OPT_NO_ALT},
	    {"out", required_argument, NULL, OPT_OUT},
	    {"build-id", required_argument, NULL, OPT_BUILD_ID},
	    {"maps-only", no_argument, NULL, OPT_MAPS_ONLY},
	    {"max-memory", required_argument, NULL, OPT_MEM},
	    {"max-cpu", required_argument, NULL, OPT_CPU},
	    {"max-fsize", required_argument, NULL, OPT_FSIZE},
	    {"max-files", required_argument, NULL, OPT_FILES},
	    {"parent", required_argument, NULL, OPT_PARENT},
	    {"check-elf", no_argument, NULL, OPT_CHECK_ELF},
	    {"decompress", required_argument, NULL, OPT_DECOMPRESS},
	    {"version", no_argument, NULL, OPT_VERSION},
	    {"help", no_argument, NULL, OPT_HELP},
	    {0},
	};
	uint64_t parent;
	int c;

	while ((c = getopt_long(argc, argv, "", opts, NULL)) != -1) {
		int err = 0;

		switch (c) {
		case OPT_FILE: j->file = optarg; break;
		case OPT_ALT: j->alt = optarg; break;
		case OPT_NO_ALT: j->no_alt = 1; break;
		case OPT_OUT: j->out = optarg; break;
		case OPT_BUILD_ID: j->build_id = optarg; break;
		case OPT_MAPS_ONLY: j->maps_only = 1; break;
		case OPT_CHECK_ELF: j->check_elf = 1; break;
		case OPT_DECOMPRESS: err = parse_size(optarg, &j->decompress_max); break;
		case OPT_MEM: err = parse_size(optarg, &j->sb.max_as); break;
		case OPT_CPU: err = parse_size(optarg, &j->sb.max_cpu_s); break;
		case OPT_FSIZE: err = parse_size(optarg, &j->sb.max_fsize); break;
		case OPT_FILES: err = parse_size(optarg, &j->sb.max_files); break;
		case OPT_PARENT:
			err = parse_size(optarg, &parent);
			j->sb.parent = (pid_t)parent;
			if (!err && (!parent || (uint64_t)j->sb.parent != parent))
				err = -EINVAL;
			break;
		case OPT_VERSION:
			version_print(stdout, "fleetsym-worker", VERSION_LIBS_SYMBOLIZE);
			exit(0);
		case OPT_HELP: usage(stdout); exit(0);
		default: return -EINVAL;
		}
		if (err)
			return err;
	}
	if (optind != argc || !j->file)
		return -EINVAL;
	if (j->check_elf)
		return j->out || j->build_id || j->alt ? -EINVAL : 0;
	if (j->decompress_max || !j->out || !j->build_id || !buildid_valid(j->build_id))
		return -EINVAL;
	return 0;
}

int main(int argc, char **argv)
{
	struct job j = {0};

	/* Whatever descriptors the service let slip are not the worker's business. */
	closefrom(3);
	log_set_level(FS_LOG_ERROR);
	if (parse(argc, argv, &j)) {
		usage(stderr);
		return 2;
	}
	return run(&j);
}
