/*
 * fleetsymd - the central symbolization service: build ID → debug info (uploads, local debug
 * dirs, debuginfod) and symbols over HTTP (docs/api.md).
 *
 * main() only parses flags, wires the modules together (store → resolver → symbol cache →
 * HTTP) and waits for SIGINT/SIGTERM, which every other thread has blocked, so shutdown runs
 * here in order: stop taking requests, stop index builds, cancel fetches, close the store.
 */
#include "symbolizer/http/httpd.h"
#include "symbolizer/http/metrics.h"
#include "symbolizer/store/profstore.h"
#include "symbolizer/store/selector.h"
#include "symbolizer/engine/opensyms.h"
#include "symbolizer/scrape.h"

#include "cache/debugstore.h"
#include "cache/resolver.h"
#include "lib/err.h"
#include "lib/fsutil.h"
#include "lib/log.h"
#include "lib/parse.h"
#include "lib/version.h"

#include <ctype.h>
#include <errno.h>
#include <curl/curl.h>
#include <getopt.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>

#define MAX_DEBUG_DIRS 32
#define TOKEN_MAX      4096
#define MAX_SCRAPES    64

struct config {
	const char *listen;
	const char *data_dir;
	const char *store_url, *store_auth_file;
	const char *debug_dirs[MAX_DEBUG_DIRS + 1];
	int ndebug_dirs;
	const char *debuginfod_urls;
	uint64_t cache_size;
	int negative_ttl_s;
	int request_timeout_ms;
	int fetch_timeout_s;
	int max_fetches;
	uint64_t max_upload, disk_reserve;
	int64_t retention_s;
	uint64_t max_ingest;
	const char *token_file;
	const char *port_file;
	int threads;
	int max_connections, max_per_ip;
	int header_timeout_ms, query_timeout_ms;
	int max_heavy_queries;
	uint64_t ingest_memory;
	int opensyms_entries;
	int index_threads;
	const char *worker;
	int worker_timeout_ms;
	uint64_t worker_memory;
	enum log_level level;
	const char *scrapes[MAX_SCRAPES];
	size_t nscrapes;
	const char *peers[PEERFETCH_MAX_PEERS + 1];
	size_t npeers;
};

static void usage(FILE *f)
{
	fprintf(
	    f,
	    "usage: fleetsymd --data-dir DIR [options]\n"
	    "  --listen HOST:PORT       address to serve on (default 127.0.0.1:7070; port 0 = "
	    "any)\n"
	    "  --data-dir DIR           debug store, symbol indexes, debuginfod client cache\n"
	    "  --store URL              where profiles live: sqlite: (default; "
	    "DATA_DIR/profiles.db)\n"
	    "                           or clickhouse://HOST:PORT/DB (ClickHouse's HTTP port)\n"
	    "  --store-auth-file FILE   ClickHouse user and password, one line USER:PASSWORD\n"
	    "  --debug-dir DIR          local debug dir with .build-id/xx/rest.debug (repeatable;\n"
	    "                           default /usr/lib/debug)\n"
	    "  --debuginfod-urls URLS   space-separated debuginfod servers (default "
	    "$DEBUGINFOD_URLS)\n"
	    "  --cache-size SIZE        cap on fetched/copied debug files, e.g. 10G (default 10G;\n"
	    "                           uploads are never evicted)\n"
	    "  --negative-ttl DURATION  how long a missing build ID stays missing (default 10m)\n"
	    "  --request-timeout DUR    longest a request waits for a fetch (default 5s)\n"
	    "  --fetch-timeout DUR      longest one debuginfod fetch may take (default 30s)\n"
	    "  --max-fetches N          concurrent debuginfod fetches (default 4)\n"
	    "  --peer URL               another fleetsymd replica (http://HOST:PORT) to ask for\n"
	    "                           build IDs not in this one's store, before debuginfod;\n"
	    "                           with the --token-file token; repeatable\n"
	    "  --max-upload-size SIZE   largest upload (default 1G); a file's compressed debug\n"
	    "                           sections may inflate to 8 times this, at most 4G\n"
	    "  --disk-reserve SIZE      free space that uploads and ingests leave on the data "
	    "dir's\n"
	    "                           file system; below it they answer 507 (default 256M)\n"
	    "  --retention DURATION     keep ingested profiles this long (default 7d; s, m, h, d, "
	    "w)\n"
	    "  --max-ingest-size SIZE   largest ingested profile, compressed or not (default 64M)\n"
	    "  --token-file FILE        uploads need 'Authorization: Bearer <contents of FILE>'\n"
	    "  --threads N              HTTP worker threads (default 2 per CPU, at least 4)\n"
	    "  --max-connections N      connections open at once (default 4096)\n"
	    "  --max-connections-per-ip N  of those, from one address (default 256)\n"
	    "  --header-timeout DUR     a request's line and headers, and an idle kept-alive\n"
	    "                           connection's next request, are due within this however\n"
	    "                           slowly they trickle in (default 10s)\n"
	    "  --max-heavy-queries N    /query, /diff, /missing running at once; more get 503\n"
	    "                           (default 2 per CPU, at least 8)\n"
	    "  --query-timeout DUR      longest a query may spend in the store (default 30s)\n"
	    "  --ingest-memory SIZE     memory all ingests in progress may decode into; past it\n"
	    "                           503 with Retry-After (default 256M)\n"
	    "  --symcache-entries N     build IDs kept open for symbolization (default 64)\n"
	    "  --index-threads N        sandboxed index workers at once (default 2)\n"
	    "  --worker PATH            the DWARF worker (default: fleetsym-worker beside "
	    "fleetsymd)\n"
	    "  --worker-timeout DURATION  a worker is killed after this (default 5m); the build\n"
	    "                           ID is then marked bad until a new upload or a restart\n"
	    "  --worker-memory SIZE     a worker's address space limit (default 4G)\n"
	    "  --port-file FILE         write the bound port here once serving\n"
	    "  --log-level LEVEL        error, warn, info (default; one line per request), "
	    "debug\n"
	    "  --scrape URL[,k=v...]    pull URL/debug/pprof/profile (Go net/http/pprof) into\n"
	    "                           the store, labels k=v; interval=DUR (60s), seconds=N\n"
	    "                           (10); repeatable\n"
	    "  --version                version, commit and library versions\n");
}

/* A duration option (lib/parse.h: ms, s, m, h, d, w) of at least MIN_MS and at most INT_MAX
 * milliseconds, in milliseconds. */
static int parse_duration_ms(const char *s, int64_t min_ms, int64_t *out)
{
	int64_t ns;

	if (parse_duration(s, &ns) || ns / 1000000 < min_ms || ns / 1000000 > INT_MAX)
		return -EINVAL;
	*out = ns / 1000000;
	return 0;
}

static int parse_int(const char *s, int min, int max, int *out)
{
	char *end;
	long v;

	errno = 0;
	v = strtol(s, &end, 10);
	if (errno || end == s || *end || v < min || v > max)
		return -EINVAL;
	*out = (int)v;
	return 0;
}

enum {
	OPT_LISTEN = 256,
	OPT_DATA_DIR,
	OPT_STORE,
	OPT_STORE_AUTH,
	OPT_DEBUG_DIR,
	OPT_URLS,
	OPT_CACHE_SIZE,
	OPT_NEG_TTL,
	OPT_REQ_TIMEOUT,
	OPT_FETCH_TIMEOUT,
	OPT_MAX_FETCHES,
	OPT_MAX_UPLOAD,
	OPT_DISK_RESERVE,
	OPT_TOKEN_FILE,
	OPT_THREADS,
	OPT_MAX_CONNS,
	OPT_MAX_PER_IP,
	OPT_HEADER_TIMEOUT,
	OPT_MAX_HEAVY,
	OPT_QUERY_TIMEOUT,
	OPT_INGEST_MEMORY,
	OPT_OPENSYMS,
	OPT_INDEX_THREADS,
	OPT_WORKER,
	OPT_WORKER_TIMEOUT,
	OPT_WORKER_MEMORY,
	OPT_PORT_FILE,
	OPT_LOG_LEVEL,
	OPT_RETENTION,
	OPT_MAX_INGEST,
	OPT_SCRAPE,
	OPT_PEER,
	OPT_HELP,
	OPT_VERSION,
};

static int parse_one(struct config *c, int opt, const char *arg)
{
	int64_t ms, ns;

	switch (opt) {
	case OPT_LISTEN: c->listen = arg; return 0;
	case OPT_DATA_DIR: c->data_dir = arg; return 0;
	case OPT_STORE: c->store_url = arg; return 0;
	case OPT_STORE_AUTH: c->store_auth_file = arg; return 0;
	case OPT_DEBUG_DIR:
		if (c->ndebug_dirs >= MAX_DEBUG_DIRS)
			return -E2BIG;
		c->debug_dirs[c->ndebug_dirs++] = arg;
		return 0;
	case OPT_URLS: c->debuginfod_urls = arg; return 0;
	case OPT_CACHE_SIZE: return parse_size(arg, &c->cache_size) ? -EINVAL : 0;
	case OPT_MAX_UPLOAD: return parse_size(arg, &c->max_upload) ? -EINVAL : 0;
	case OPT_DISK_RESERVE: return parse_size(arg, &c->disk_reserve) ? -EINVAL : 0;
	case OPT_MAX_INGEST:
		if (parse_size(arg, &c->max_ingest) || c->max_ingest < 1024 ||
		    c->max_ingest > ((uint64_t)1 << 30))
			return -EINVAL;
		return 0;
	case OPT_RETENTION:
		if (parse_duration(arg, &ns) || ns < 60LL * 1000000000)
			return -EINVAL;
		c->retention_s = ns / 1000000000;
		return 0;
	case OPT_NEG_TTL:
		if (parse_duration_ms(arg, 1000, &ms))
			return -EINVAL;
		c->negative_ttl_s = (int)(ms / 1000);
		return 0;
	case OPT_REQ_TIMEOUT:
		if (parse_duration_ms(arg, 1, &ms))
			return -EINVAL;
		c->request_timeout_ms = (int)ms;
		return 0;
	case OPT_FETCH_TIMEOUT:
		if (parse_duration_ms(arg, 1000, &ms))
			return -EINVAL;
		c->fetch_timeout_s = (int)(ms / 1000);
		return 0;
	case OPT_MAX_FETCHES: return parse_int(arg, 1, 256, &c->max_fetches);
	case OPT_TOKEN_FILE: c->token_file = arg; return 0;
	case OPT_PEER:
		if (c->npeers >= PEERFETCH_MAX_PEERS)
			return -E2BIG;
		if (strncmp(arg, "http://", 7) != 0 && strncmp(arg, "https://", 8) != 0)
			return -EINVAL;
		c->peers[c->npeers++] = arg;
		return 0;
	case OPT_SCRAPE: {
		char msg[300];

		if (c->nscrapes >= MAX_SCRAPES)
			return -E2BIG;
		if (scrape_check(arg, msg, sizeof(msg))) {
			fprintf(stderr, "fleetsymd: %s\n", msg);
			return -EINVAL;
		}
		c->scrapes[c->nscrapes++] = arg;
		return 0;
	}
	case OPT_THREADS: return parse_int(arg, 1, 1024, &c->threads);
	case OPT_MAX_CONNS: return parse_int(arg, 16, 1000000, &c->max_connections);
	case OPT_MAX_PER_IP: return parse_int(arg, 1, 1000000, &c->max_per_ip);
	case OPT_MAX_HEAVY: return parse_int(arg, 1, 1024, &c->max_heavy_queries);
	case OPT_HEADER_TIMEOUT:
		if (parse_duration_ms(arg, 100, &ms))
			return -EINVAL;
		c->header_timeout_ms = (int)ms;
		return 0;
	case OPT_QUERY_TIMEOUT:
		if (parse_duration_ms(arg, 100, &ms))
			return -EINVAL;
		c->query_timeout_ms = (int)ms;
		return 0;
	case OPT_INGEST_MEMORY:
		return parse_size(arg, &c->ingest_memory) || c->ingest_memory < ((uint64_t)1 << 20)
			   ? -EINVAL
			   : 0;
	case OPT_OPENSYMS: return parse_int(arg, 1, 100000, &c->opensyms_entries);
	case OPT_INDEX_THREADS: return parse_int(arg, 1, 16, &c->index_threads);
	case OPT_WORKER: c->worker = arg; return 0;
	case OPT_WORKER_TIMEOUT:
		if (parse_duration_ms(arg, 100, &ms))
			return -EINVAL;
		c->worker_timeout_ms = (int)ms;
		return 0;
	case OPT_WORKER_MEMORY:
		return parse_size(arg, &c->worker_memory) || c->worker_memory < (64ULL << 20)
			   ? -EINVAL
			   : 0;
	case OPT_PORT_FILE: c->port_file = arg; return 0;
	case OPT_LOG_LEVEL:
		if (!strcmp(arg, "error"))
			c->level = FS_LOG_ERROR;
		else if (!strcmp(arg, "warn"))
			c->level = FS_LOG_WARN;
		else if (!strcmp(arg, "info"))
			c->level = FS_LOG_INFO;
		else if (!strcmp(arg, "debug"))
			c->level = FS_LOG_DEBUG;
		else
			return -EINVAL;
		return 0;
	}
	return -EINVAL;
}

static int parse_args(int argc, char **argv, struct config *c)
{
	static const struct option opts[] = {
	    {"listen", required_argument, NULL, OPT_LISTEN},
	    {"data-dir", required_argument, NULL, OPT_DATA_DIR},
	    {"store", required_argument, NULL, OPT_STORE},
	    {"store-auth-file", required_argument, NULL, OPT_STORE_AUTH},
	    {"debug-dir", required_argument, NULL, OPT_DEBUG_DIR},
	    {"debuginfod-urls", required_argument, NULL, OPT_URLS},
	    {"cache-size", required_argument, NULL, OPT_CACHE_SIZE},
	    {"negative-ttl", required_argument, NULL, OPT_NEG_TTL},
	    {"request-timeout", required_argument, NULL, OPT_REQ_TIMEOUT},
	    {"fetch-timeout", required_argument, NULL, OPT_FETCH_TIMEOUT},
	    {"max-fetches", required_argument, NULL, OPT_MAX_FETCHES},
	    {"max-upload-size", required_argument, NULL, OPT_MAX_UPLOAD},
	    {"disk-reserve", required_argument, NULL, OPT_DISK_RESERVE},
	    {"token-file", required_argument, NULL, OPT_TOKEN_FILE},
	    {"threads", required_argument, NULL, OPT_THREADS},
	    {"max-connections", required_argument, NULL, OPT_MAX_CONNS},
	    {"max-connections-per-ip", required_argument, NULL, OPT_MAX_PER_IP},
	    {"header-timeout", required_argument, NULL, OPT_HEADER_TIMEOUT},
	    {"max-heavy-queries", required_argument, NULL, OPT_MAX_HEAVY},
	    {"query-timeout", required_argument, NULL, OPT_QUERY_TIMEOUT},
	    {"ingest-memory", required_argument, NULL, OPT_INGEST_MEMORY},
	    {"symcache-entries", required_argument, NULL, OPT_OPENSYMS},
	    {"index-threads", required_argument, NULL, OPT_INDEX_THREADS},
	    {"worker", required_argument, NULL, OPT_WORKER},
	    {"worker-timeout", required_argument, NULL, OPT_WORKER_TIMEOUT},
	    {"worker-memory", required_argument, NULL, OPT_WORKER_MEMORY},
	    {"port-file", required_argument, NULL, OPT_PORT_FILE},
	    {"log-level", required_argument, NULL, OPT_LOG_LEVEL},
	    {"retention", required_argument, NULL, OPT_RETENTION},
	    {"max-ingest-size", required_argument, NULL, OPT_MAX_INGEST},
	    {"scrape", required_argument, NULL, OPT_SCRAPE},
	    {"peer", required_argument, NULL, OPT_PEER},
	    {"help", no_argument, NULL, OPT_HELP},
	    {"version", no_argument, NULL, OPT_VERSION},
	    {NULL, 0, NULL, 0},
	};
	int opt;

	while ((opt = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
		if (opt == 'h' || opt == OPT_HELP) {
			usage(stdout);
			exit(0);
		}
		if (opt == OPT_VERSION) {
			version_print(stdout, "fleetsymd", VERSION_LIBS_FLEETSYMD);
			exit(0);
		}
		if (opt == '?' || parse_one(c, opt, optarg)) {
			if (opt != '?')
				fprintf(stderr, "fleetsymd: bad value for --%s: '%s'\n",
					opts[opt - OPT_LISTEN].name, optarg);
			usage(stderr);
			return -EINVAL;
		}
	}
	if (optind < argc || !c->data_dir) {
		fprintf(stderr, "fleetsymd: %s\n",
			optind < argc ? "unexpected arguments" : "--data-dir is required");
		usage(stderr);
		return -EINVAL;
	}
	return 0;
}

/* The token: the file's first line, surrounding blanks trimmed. Sets *OUT (free()). */
static int read_token(const char *path, char **out)
{
	char buf[TOKEN_MAX + 2];
	size_t n, b = 0;
	FILE *f;

	*out = NULL;
	f = fopen(path, "re");
	if (!f)
		return -errno;
	n = fread(buf, 1, sizeof(buf) - 1, f);
	fclose(f);
	if (n > TOKEN_MAX)
		return -E2BIG;
	buf[n] = '\0';
	buf[strcspn(buf, "\r\n")] = '\0';
	n = strlen(buf);
	while (n > 0 && isspace((unsigned char)buf[n - 1]))
		buf[--n] = '\0';
	while (isspace((unsigned char)buf[b]))
		b++;
	if (!buf[b])
		return -ENODATA;
	*out = strdup(buf + b);
	return *out ? 0 : -ENOMEM;
}

static int write_port_file(const char *path, int port)
{
	char buf[16];
	int n = snprintf(buf, sizeof(buf), "%d\n", port);

	return fsutil_write_atomic(path, buf, (size_t)n, 0644);
}

/* Open files: one per connection and per symbolized build ID. The soft limit (often 1024)
 * goes up to the hard one, so that --max-connections is what caps connections. */
static void raise_nofile(void)
{
	struct rlimit rl;

	if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
		rl.rlim_cur = rl.rlim_max;
		if (setrlimit(RLIMIT_NOFILE, &rl) != 0)
			log_msg(FS_LOG_WARN, "could not raise the open-file limit: %s",
				strerror(errno));
	}
}

/* A dwz file's alt file, by the build ID it names: the store's file for it (uploaded, from
 * the debug dirs or debuginfod), never the path the file names. Waits for a fetch a while:
 * this runs in an index builder thread, not a request. */
static int find_alt(void *ctx, const char *build_id, char *path, size_t len)
{
	struct dstore_entry e;
	const char *reason;
	int st = resolver_resolve(ctx, build_id, 10000, &e, &reason);

	if (st != RESOLVER_FOUND)
		return -ENOENT;
	return snprintf(path, len, "%s", e.path) < (int)len ? 0 : -ENAMETOOLONG;
}

static int serve(struct config *c, const char *token)
{
	struct dstore_opts so = {.data_dir = c->data_dir,
				 .cache_size = c->cache_size,
				 .max_inflated = c->max_upload * DSTORE_INFLATE_PER_UPLOAD,
				 .reserve = c->disk_reserve};
	struct resolver_opts ro = {
	    .debug_dirs = c->ndebug_dirs ? c->debug_dirs : NULL,
	    .debuginfod_urls = c->debuginfod_urls,
	    .max_fetches = c->max_fetches,
	    .fetch_timeout_s = c->fetch_timeout_s,
	    .negative_ttl_s = c->negative_ttl_s,
	    .peers = c->npeers ? c->peers : NULL,
	    .peer_token = token,
	};
	struct opensyms_opts co = {.max_entries = (size_t)c->opensyms_entries,
				   .build_threads = c->index_threads,
				   .worker = c->worker,
				   .worker_timeout_ms = c->worker_timeout_ms,
				   .worker_memory = c->worker_memory,
				   .find_alt = find_alt};
	struct httpd_opts ho = {.listen = c->listen,
				.threads = c->threads,
				.max_connections = (unsigned)c->max_connections,
				.max_per_ip = (unsigned)c->max_per_ip,
				.header_timeout_ms = c->header_timeout_ms,
				.max_heavy_queries = c->max_heavy_queries,
				.query_timeout_ms = c->query_timeout_ms,
				.ingest_memory = c->ingest_memory,
				.max_upload = c->max_upload,
				.request_timeout_ms = c->request_timeout_ms,
				.token = token,
				.max_ingest = c->max_ingest};
	struct pstore_opts po = {.data_dir = c->data_dir,
				 .retention_s = c->retention_s,
				 .max_ingest_size = (size_t)c->max_ingest,
				 .decode_budget = c->ingest_memory,
				 .reserve = c->disk_reserve,
				 .store_url = c->store_url,
				 .store_auth_file = c->store_auth_file,
				 .retain_interval_s = 600};
	struct pstore *ps = NULL;
	struct dstore *store = NULL;
	struct resolver *res = NULL;
	struct opensyms *sc = NULL;
	struct metrics *m = NULL;
	struct httpd *h = NULL;
	struct scrape *scr = NULL;
	sigset_t sigs;
	int err, sig = 0;

	err = dstore_open(&so, &store);
	if (err) {
		fprintf(stderr, "fleetsymd: store in %s: %s\n", c->data_dir, err_str(err));
		goto out;
	}
	ro.store = store;
	ro.peer_max_bytes = so.max_inflated; /* what an upload may inflate to, at most */
	err = resolver_new(&ro, &res);
	if (err) {
		fprintf(stderr, "fleetsymd: resolver: %s\n", err_str(err));
		goto out;
	}
	co.index_dir = dstore_index_dir(store);
	co.find_alt_ctx = res;
	co.tmp_dir = dstore_tmp_dir(store);
	err = opensyms_new(&co, &sc);
	if (!err) /* uploaded and fetched files are read by sandboxed workers, not here */
		dstore_set_elf_checker(store, opensyms_check_elf, sc);
	if (!err)
		err = metrics_new(&m);
	if (err) {
		fprintf(stderr, "fleetsymd: %s\n", err_str(err));
		goto out;
	}
	err = pstore_open(&po, &ps);
	if (err) {
		if (c->store_url && strcmp(c->store_url, "sqlite:"))
			fprintf(stderr, "fleetsymd: profile store %s: %s\n", c->store_url,
				err_str(err));
		else
			fprintf(stderr, "fleetsymd: profile store %s/profiles.db: %s\n",
				c->data_dir, err_str(err));
		goto out;
	}
	ho.pstore = ps;
	ho.store = store;
	ho.resolver = res;
	ho.opensyms = sc;
	ho.metrics = m;
	err = httpd_start(&ho, &h);
	if (err) {
		fprintf(stderr, "fleetsymd: cannot serve on %s: %s\n", c->listen, err_str(err));
		goto out;
	}
	log_msg(FS_LOG_INFO,
		"event=listening listen=%s port=%d data_dir=%s debuginfod=\"%s\" peers=%zu",
		c->listen, httpd_port(h), c->data_dir, c->debuginfod_urls ? c->debuginfod_urls : "",
		c->npeers);
	if (c->port_file && (err = write_port_file(c->port_file, httpd_port(h)))) {
		fprintf(stderr, "fleetsymd: %s: %s\n", c->port_file, err_str(err));
		goto out;
	}
	if (c->nscrapes && (err = scrape_start(ps, c->scrapes, c->nscrapes, c->max_ingest, &scr))) {
		fprintf(stderr, "fleetsymd: scraping: %s\n", err_str(err));
		goto out;
	}
	sigemptyset(&sigs);
	sigaddset(&sigs, SIGINT);
	sigaddset(&sigs, SIGTERM);
	sigwait(&sigs, &sig);
	log_msg(FS_LOG_INFO, "event=stopping signal=%d", sig);
out:
	scrape_stop(scr);
	httpd_stop(h);
	pstore_close(ps);
	/* builders call the resolver and fetches call the workers' ELF check: stop the builders,
	 * then the fetches, then free the workers' side */
	opensyms_stop(sc);
	resolver_free(res);
	opensyms_free(sc);
	dstore_close(store);
	metrics_free(m);
	return err;
}

int main(int argc, char **argv)
{
	struct config c = {.listen = "127.0.0.1:7070",
			   .cache_size = (uint64_t)10 << 30,
			   .retention_s = 7 * 86400,
			   .max_ingest = (uint64_t)64 << 20,
			   .disk_reserve = (uint64_t)256 << 20,
			   .ingest_memory = (uint64_t)256 << 20,
			   .level = FS_LOG_INFO};
	char *token = NULL;
	sigset_t sigs;
	int err;

	if (parse_args(argc, argv, &c))
		return 2;
	if (!c.debuginfod_urls)
		c.debuginfod_urls = getenv("DEBUGINFOD_URLS");
	log_set_level(c.level);
	if (c.token_file && (err = read_token(c.token_file, &token))) {
		fprintf(stderr, "fleetsymd: token file %s: %s\n", c.token_file,
			err == -ENODATA ? "empty" : err_str(err));
		return 1;
	}
	/* Block the stop signals in every thread; main() takes them with sigwait(). The resolver
	 * sets libdebuginfod's environment when it is made, before any thread exists. */
	sigemptyset(&sigs);
	sigaddset(&sigs, SIGINT);
	sigaddset(&sigs, SIGTERM);
	pthread_sigmask(SIG_BLOCK, &sigs, NULL);
	signal(SIGPIPE, SIG_IGN);
	/* before any thread: scraping and the peers use libcurl */
	curl_global_init(CURL_GLOBAL_DEFAULT);
	raise_nofile();
	err = serve(&c, token);
	free(token);
	return err ? 1 : 0;
}
