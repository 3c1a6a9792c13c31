/*
 * fuzz_httpd - request bodies and query parameters as fleetsymd receives them: a real httpd
 * (symbolizer/http/) on 127.0.0.1 with a debug store, a profile store, the resolver and the
 * symbol cache, started once in a tmpfs dir, holding the ELF seed of fuzz_elf (so that
 * symbolize requests reach the symbols) and the pprof seed of fuzz_pprof (so that queries find
 * profiles), when the harness runs from the repository root as make fuzz does.
 *
 * Input: byte 0 picks the request (KINDS below); the rest is QUERY '\n' BODY. QUERY goes into
 * the URL (bytes outside [A-Za-z0-9=&._~+-] percent-encoded, so the fuzzer controls the
 * parameter structure), BODY is the request body. The answer must be a complete HTTP
 * response, and never a 5xx other than 503 and 507 (load and disk refusals): a 500 is a bug.
 */
#include "tests/fuzz/fuzz.h"

#include "cache/debugstore.h"
#include "cache/resolver.h"
#include "symbolizer/engine/opensyms.h"
#include "symbolizer/http/httpd.h"
#include "symbolizer/http/metrics.h"
#include "symbolizer/store/profstore.h"

#include <arpa/inet.h>
#include <errno.h>
#include <ftw.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

static const struct {
	const char *method, *path, *ctype; /* ctype NULL: application/octet-stream */
} KINDS[] = {
    {"POST", "/api/v1/symbolize", "application/json"},
    {"GET", "/api/v1/query"},
    {"GET", "/api/v1/series"},
    {"GET", "/api/v1/timeline"},
    {"GET", "/api/v1/diff"},
    {"GET", "/api/v1/missing"},
    {"GET", "/api/v1/labels"},
    {"POST", "/ingest"},
    {"POST", "/api/v1/ingest"},
    {"GET", "/api/v1/types"},
    {"GET", "/api/v1/labels/comm/values"},
    {"POST", "/push.v1.PusherService/Push", "application/proto"},
    {"POST", "/push.v1.PusherService/Push", "application/json"},
};
#define NKINDS (sizeof(KINDS) / sizeof(KINDS[0]))

static int port;
static char dir[64];

static int rm_one(const char *p, const struct stat *st, int flag, struct FTW *ftw)
{
	return remove(p);
}

/* At exit: the service's files go (the service itself is not stopped: the OS ends it). */
static void remove_dir(void)
{
	nftw(dir, rm_one, 8, FTW_DEPTH | FTW_PHYS);
}

__attribute__((noreturn)) static void die(const char *what, int err)
{
	fprintf(stderr, "fuzz_httpd: %s: %d\n", what, err);
	abort();
}

static void seed_debug_file(struct dstore *st)
{
	char tmp[4200], bid[BUILDID_HEX_MAX], buf[65536];
	unsigned q;
	FILE *in = fopen("tests/fuzz/fuzz_elf/inline", "rb");
	size_t n;
	int fd;

	if (!in)
		return; /* not run from the repository root: symbolize finds no symbols */
	snprintf(tmp, sizeof(tmp), "%s/seed.XXXXXX", dstore_tmp_dir(st));
	fd = mkstemp(tmp);
	if (fd < 0)
		die("mkstemp", -errno);
	while ((n = fread(buf, 1, sizeof(buf), in)) > 0)
		if (write(fd, buf, n) != (ssize_t)n)
			die("write", -errno);
	fclose(in);
	close(fd);
	if (dstore_inspect(tmp, bid, &q) ||
	    dstore_put(st, bid, tmp, DSTORE_SRC_UPLOAD, 0, NULL, NULL))
		die("installing the ELF seed", -1);
}

static void seed_profile(struct pstore *ps)
{
	static const struct pstore_label series[] = {{"service", "fuzz"}};
	char buf[65536], err[256];
	FILE *in = fopen("tests/fuzz/fuzz_pprof/agent.pb.gz", "rb");
	size_t n;

	if (!in)
		return;
	n = fread(buf, 1, sizeof(buf), in);
	fclose(in);
	if (pstore_ingest(ps, series, 1, buf, n, err, sizeof(err)))
		die(err, -1);
}

/* The service, once per process; it lives until exit (the OS reclaims it). */
static void start(void)
{
	struct dstore_opts so = {.max_inflated = 64 << 20};
	struct resolver_opts ro = {0};
	struct opensyms_opts co = {0};
	struct pstore_opts po = {0};
	struct httpd_opts ho = {.listen = "127.0.0.1:0",
				.threads = 2,
				.max_upload = 1 << 20,
				.request_timeout_ms = 2000,
				.max_body = 1 << 20,
				.max_ingest = 1 << 20};
	struct dstore *st;
	struct resolver *res;
	struct opensyms *sc;
	struct metrics *m;
	struct pstore *ps;
	struct httpd *h;
	int err;

	snprintf(dir, sizeof(dir), "%s/fuzz_httpd.XXXXXX",
		 access("/dev/shm", W_OK) == 0 ? "/dev/shm" : "/tmp");
	if (!mkdtemp(dir))
		die("mkdtemp", -errno);
	atexit(remove_dir);
	so.data_dir = po.data_dir = dir;
	if ((err = dstore_open(&so, &st)))
		die("dstore_open", err);
	ro.store = st;
	if ((err = resolver_new(&ro, &res)))
		die("resolver_new", err);
	co.index_dir = dstore_index_dir(st);
	co.tmp_dir = dstore_tmp_dir(st);
	/* symbol indexes are built by the worker program: the regular build's (make fuzz builds
	 * it; tests/fuzz/run.sh runs from the top of the tree) */
	co.worker = "build/bin/fleetsym-worker";
	if ((err = opensyms_new(&co, &sc)) || (err = metrics_new(&m)) ||
	    (err = pstore_open(&po, &ps)))
		die("opensyms/metrics/pstore", err);
	seed_debug_file(st);
	seed_profile(ps);
	ho.store = st, ho.resolver = res, ho.opensyms = sc, ho.metrics = m, ho.pstore = ps;
	if ((err = httpd_start(&ho, &h)))
		die("httpd_start", err);
	port = httpd_port(h);
}

static void put(char **p, size_t *len, size_t *cap, const void *s, size_t n)
{
	if (*len + n > *cap) {
		*cap = (*len + n) * 2;
		*p = realloc(*p, *cap);
		if (!*p)
			abort();
	}
	memcpy(*p + *len, s, n);
	*len += n;
}

/* One request over a fresh connection; the status code of its answer. */
static int request(const char *req, size_t len)
{
	struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
	struct timeval tv = {.tv_sec = 60};
	char buf[16384];
	size_t got = 0;
	ssize_t n;
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0), status = -1;

	sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	if (fd < 0)
		die("socket", -errno);
	/* libFuzzer's -timeout alarm interrupts connect() too; the connection goes on, and asking
	 * again says how it went (EALREADY: still going, EISCONN: done) */
	while (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) != 0 && errno != EISCONN) {
		if (errno != EINTR && errno != EALREADY)
			die("connect", -errno);
		usleep(1000);
	}
	setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
	for (size_t off = 0; off < len; off += (size_t)n) {
		do /* libFuzzer's -timeout alarm interrupts calls that wait */
			n = send(fd, req + off, len - off, MSG_NOSIGNAL);
		while (n < 0 && errno == EINTR);
		if (n <= 0)
			break; /* the server may answer (413) and close before the body is sent */
	}
	/* read to the end; keep the first bytes for the status line */
	while ((n = recv(fd, got < sizeof(buf) - 1 ? buf + got : buf + sizeof(buf) - 1,
			 got < sizeof(buf) - 1 ? sizeof(buf) - 1 - got : 1, 0)) > 0 ||
	       (n < 0 && errno == EINTR))
		if (n > 0 && got < sizeof(buf) - 1)
			got += (size_t)n;
	if (n < 0 && errno == EAGAIN)
		die("no answer in 60 s", -ETIMEDOUT);
	buf[got] = 0;
	if (sscanf(buf, "HTTP/1.%*d %d", &status) != 1) {
		fprintf(stderr,
			"fuzz_httpd: no status line (recv %zd, errno %d) in %zu bytes: %.200s\n", n,
			n < 0 ? errno : 0, got, buf);
		status = -1;
	} else if (status >= 500) {
		fprintf(stderr, "fuzz_httpd: %.600s\n", buf);
	}
	close(fd);
	return status;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const char safe[] = "=&._~+-";
	char *req = NULL, hdr[256];
	size_t len = 0, cap = 0, qlen, blen;
	const uint8_t *nl, *body;
	int status;

	if (!port)
		start();
	if (size < 1)
		return 0;
	unsigned k = data[0] % NKINDS;
	data++, size--;
	nl = memchr(data, '\n', size);
	qlen = nl ? (size_t)(nl - data) : size;
	body = nl ? nl + 1 : data + size;
	blen = nl ? size - qlen - 1 : 0;

	put(&req, &len, &cap, KINDS[k].method, strlen(KINDS[k].method));
	put(&req, &len, &cap, " ", 1);
	put(&req, &len, &cap, KINDS[k].path, strlen(KINDS[k].path));
	if (qlen)
		put(&req, &len, &cap, "?", 1);
	for (size_t i = 0; i < qlen; i++) {
		char e[4];
		unsigned char c = data[i];

		if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
		    (c && strchr(safe, c)))
			put(&req, &len, &cap, &c, 1);
		else
			put(&req, &len, &cap, e, (size_t)snprintf(e, sizeof(e), "%%%02X", c));
	}
	int hl = snprintf(hdr, sizeof(hdr),
			  " HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n"
			  "Content-Type: %s\r\nContent-Length: %zu\r\n\r\n",
			  KINDS[k].ctype ? KINDS[k].ctype : "application/octet-stream", blen);
	put(&req, &len, &cap, hdr, (size_t)hl);
	put(&req, &len, &cap, body, blen);
	status = request(req, len);
	if (status < 100 || (status >= 500 && status != 503 && status != 507)) {
		fprintf(stderr, "fuzz_httpd: %s %s answered %d; the request: %.*s\n",
			KINDS[k].method, KINDS[k].path, status, (int)(len < 600 ? len : 600), req);
		abort();
	}
	free(req);
	return 0;
}
