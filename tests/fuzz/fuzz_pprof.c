/*
 * fuzz_pprof - the store's ingest path (pstore_ingest(), symbolizer/store/profstore_ingest.c:
 * gunzip, protobuf decoding, validation, the write) on a POST /api/v1/ingest body. The input is
 * ingested as it is (raw or gzip'd seeds) and, when it is not gzip'd and of odd length, also
 * gzip'd, so that the mutations reach the decoder behind a valid gzip stream too. The store
 * lives in a tmpfs dir and is started afresh every FRESH_EVERY ingests to bound its size.
 */
#include "tests/fuzz/fuzz.h"

#include "symbolizer/store/profstore.h"

#include <ftw.h>
#include <zlib.h>

#define FRESH_EVERY 2000

static struct pstore *store;
static char dir[64];
static unsigned ingests;

static int rm_one(const char *p, const struct stat *st, int flag, struct FTW *ftw)
{
	return remove(p);
}

static void store_close(void)
{
	if (store)
		pstore_close(store);
	store = NULL;
	if (dir[0])
		nftw(dir, rm_one, 8, FTW_DEPTH | FTW_PHYS);
}

static void store_fresh(void)
{
	struct pstore_opts o = {.max_ingest_size = 8 << 20};

	store_close();
	snprintf(dir, sizeof(dir), "%s/fuzz_pprof.XXXXXX",
		 access("/dev/shm", W_OK) == 0 ? "/dev/shm" : "/tmp");
	if (!mkdtemp(dir) || (o.data_dir = dir, pstore_open(&o, &store) != 0))
		abort();
	ingests = 0;
}

static void ingest(const void *body, size_t len)
{
	static const struct pstore_label series[] = {{"service", "fuzz"}, {"host", "h"}};
	char err[256];

	if (!store || ingests++ >= FRESH_EVERY)
		store_fresh();
	(void)!pstore_ingest(store, series, 2, body, len, err, sizeof(err));
}

/* DATA gzip'd into a buffer the caller frees; NULL when zlib fails. */
static uint8_t *gzip(const uint8_t *data, size_t size, size_t *out_len)
{
	z_stream z = {0};
	size_t cap = size + size / 8 + 64;
	uint8_t *out = malloc(cap);

	if (!out || deflateInit2(&z, 6, Z_DEFLATED, 16 + 15, 8, Z_DEFAULT_STRATEGY) != Z_OK) {
		free(out);
		return NULL;
	}
	z.next_in = (uint8_t *)data;
	z.avail_in = (uInt)size;
	z.next_out = out;
	z.avail_out = (uInt)cap;
	if (deflate(&z, Z_FINISH) != Z_STREAM_END) {
		deflateEnd(&z);
		free(out);
		return NULL;
	}
	*out_len = z.total_out;
	deflateEnd(&z);
	return out;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static int once;
	uint8_t *gz;
	size_t gz_len;

	if (!once++)
		atexit(store_close);
	ingest(data, size);
	if (size % 2 && !(size >= 2 && data[0] == 0x1f && data[1] == 0x8b)) {
		gz = gzip(data, size, &gz_len);
		if (gz)
			ingest(gz, gz_len);
		free(gz);
	}
	return 0;
}
