/*
 * fuzz_dwarf - the symbol engine on a mutated debug file (symbolizer/engine/symfile.c and
 * dwarfsym.c over libdw; libdw itself is not instrumented): open, cold lookups from DWARF, the
 * index built from what was read and reopened, warm lookups. Cold and warm answers must agree
 * on the number of frames and the innermost function (symindex.h: "cold and warm answers
 * cannot differ"). Debug dirs and the index dir are an empty tmpfs dir, removed at exit.
 */
#include "tests/fuzz/fuzz.h"

#include "symbolizer/engine/symfile.h"

#include <ftw.h>

#define NADDR 48

static char dir[64];

static int rm_one(const char *p, const struct stat *st, int flag, struct FTW *ftw)
{
	return remove(p);
}

static void remove_dir(void)
{
	nftw(dir, rm_one, 8, FTW_DEPTH | FTW_PHYS);
}

static uint64_t addr_at(const uint8_t *data, size_t size, int i)
{
	uint64_t a = 0x1000 + (uint64_t)i * 0x40; /* the text of the seed */

	if (i >= NADDR - 4 && size >= 32) /* the input's last bytes name the rest */
		memcpy(&a, data + size - 8 * (size_t)(NADDR - i), sizeof(a));
	return a;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const char *dirs[2];
	struct symfile_opts o = {.debug_dirs = dirs, .index_dir = dir};
	struct sym_frame f[16];
	char path[32], fn[NADDR][128], idx[128];
	int n[NADDR], fd;
	struct symfile *sf;

	if (!dir[0]) {
		snprintf(dir, sizeof(dir), "%s/fuzz_dwarf.XXXXXX",
			 access("/dev/shm", W_OK) == 0 ? "/dev/shm" : "/tmp");
		if (!mkdtemp(dir))
			abort();
		dirs[0] = dir;
		atexit(remove_dir);
	}
	fd = fuzz_memfd(data, size, path);
	if (symfile_open(path, &o, &sf) == 0) {
		for (int i = 0; i < NADDR; i++) {
			n[i] = symfile_lookup(sf, addr_at(data, size, i), f, 16);
			snprintf(fn[i], sizeof(fn[i]), "%s", f[0].function ? f[0].function : "");
			symfile_lookup_symtab(sf, addr_at(data, size, i), f);
		}
		if (symfile_build_index(sf) == 0 && symfile_is_indexed(sf)) {
			for (int i = 0; i < NADDR; i++) {
				int m = symfile_lookup(sf, addr_at(data, size, i), f, 16);

				if (m != n[i] || strncmp(fn[i], f[0].function ? f[0].function : "",
							 sizeof(fn[i]) - 1)) {
					fprintf(stderr,
						"at %llx cold %d frames (%s), warm %d (%s)\n",
						(unsigned long long)addr_at(data, size, i), n[i],
						fn[i], m, f[0].function ? f[0].function : "");
					abort();
				}
			}
		}
		if (symfile_build_id(sf)[0]) {
			snprintf(idx, sizeof(idx), "%s/%s.symidx", dir, symfile_build_id(sf));
			unlink(idx);
		}
		symfile_close(sf);
	}
	close(fd);
	return 0;
}
