/*
 * fuzz_elf - what an upload's bytes meet first: the build ID note and the header checks
 * (lib/buildid.c, lib/elfutil.c, from memory and from a path) and the debug store's
 * validation and install (dstore_inspect(), dstore_put(), cache/debugstore.c: quality,
 * build ID match, inflation of compressed debug sections) in a store on tmpfs, started afresh
 * every FRESH_EVERY installs. The input also goes to buildid_normalize() as a URL's build ID.
 */
#include "tests/fuzz/fuzz.h"

#include "cache/debugstore.h"
#include "lib/buildid.h"
#include "lib/elfutil.h"

#include <fcntl.h>
#include <ftw.h>
#include <gelf.h>

#define FRESH_EVERY 500

static struct dstore *store;
static char dir[64];
static unsigned puts_done;

static int rm_one(const char *p, const struct stat *st, int flag, struct FTW *ftw)
{
	return remove(p);
}

static void store_close(void)
{
	if (store)
		dstore_close(store);
	store = NULL;
	if (dir[0])
		nftw(dir, rm_one, 8, FTW_DEPTH | FTW_PHYS);
}

static void store_fresh(void)
{
	/* the caps fleetsymd sets for a 1 MiB upload limit, and no disk reserve */
	struct dstore_opts o = {.max_inflated = (1 << 20) * DSTORE_INFLATE_PER_UPLOAD};

	store_close();
	snprintf(dir, sizeof(dir), "%s/fuzz_elf.XXXXXX",
		 access("/dev/shm", W_OK) == 0 ? "/dev/shm" : "/tmp");
	if (!mkdtemp(dir) || (o.data_dir = dir, dstore_open(&o, &store) != 0))
		abort();
	puts_done = 0;
}

/* Install DATA as an upload the way httpd.c does: a temp file in the store's tmp dir, its
 * build ID from dstore_inspect() (or a fixed one, to reach the mismatch check). */
static void upload(const uint8_t *data, size_t size, const char *bid)
{
	char tmp[4200];
	enum dstore_put_result res;
	struct dstore_entry e;
	int fd;

	if (!store || puts_done++ >= FRESH_EVERY)
		store_fresh();
	snprintf(tmp, sizeof(tmp), "%s/upload.XXXXXX", dstore_tmp_dir(store));
	fd = mkstemp(tmp);
	if (fd < 0 || write(fd, data, size) != (ssize_t)size)
		abort();
	close(fd);
	if (dstore_put(store, bid, tmp, DSTORE_SRC_UPLOAD, puts_done % 2, &res, &e) == 0 &&
	    dstore_get(store, bid, &e) != 0) {
		fprintf(stderr, "installed %s is not found\n", bid);
		abort();
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static int once;
	char hex[BUILDID_HEX_MAX], hex2[BUILDID_HEX_MAX], path[32], *copy;
	unsigned quality;
	Elf *elf;
	int fd, efd = -1, rc;

	if (!once++) {
		elf_version(EV_CURRENT);
		atexit(store_close);
	}
	(void)!buildid_normalize((const char *)data, size, hex);
	copy = fuzz_str(data, size); /* libelf may write to its image */
	elf = elf_memory(copy, size);
	if (elf) {
		if (elfutil_check(elf, size) == 0)
			(void)!buildid_from_elf(elf, hex);
		elf_end(elf);
	}
	free(copy);
	fd = fuzz_memfd(data, size, path);
	(void)!buildid_from_path(path, hex);
	if (elfutil_open(path, &efd, &elf) == 0)
		elfutil_close(efd, elf);
	rc = dstore_inspect(path, hex2, &quality);
	close(fd);
	upload(data, size, rc == 0 ? hex2 : "0123456789abcdef");
	return 0;
}
