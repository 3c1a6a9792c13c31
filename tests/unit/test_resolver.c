/*
 * Tests of cache/resolver against real servers on 127.0.0.1: elfutils' own `debuginfod` serving
 * a temp dir of debug files compiled here, a closed port, and a python3 HTTP server that sleeps
 * before answering. Shows: a fetch lands decompressed in the store; 8 concurrent callers cause
 * one fetch (our counter and debuginfod's /metrics agree); a dead server gives MISSING quickly
 * and is remembered for the TTL; a slow server gives PENDING within wait_ms and blocks nobody
 * else; forget_negative; free cancels fetches in flight promptly. Peers (other fleetsymd
 * replicas; the debuginfod server stands in for one, as it speaks the same protocol): a hit is
 * installed decompressed as source peer, a miss is remembered; a dead and a silent peer are
 * dropped (the silent one after the stall bound) and then left out of the next round.
 *
 * Servers are started with PR_SET_PDEATHSIG and killed at exit, so none outlives the test.
 */
#include "tests/t.h"
#include "tests/unit/fixture.h"

#include "cache/debugstore.h"
#include "cache/resolver.h"
#include "lib/err.h"
#include "lib/log.h"

#include <arpa/inet.h>
#include <curl/curl.h>
#include <errno.h>
#include <fcntl.h>
#include <gelf.h>
#include <netinet/in.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

__attribute__((constructor)) static void quiet(void)
{
	log_set_level(FS_LOG_ERROR);
	curl_global_init(CURL_GLOBAL_DEFAULT); /* the peers' client, before any thread */
}

#define NVARIANTS 6 /* p0..p2 served by debuginfod, p3..p5 not */

static char fx[64];
static char bids[NVARIANTS][BUILDID_HEX_MAX];

static const char prog_src[] =
    "#include <stdio.h>\n"
    "__attribute__((noinline)) static int leaf(int x) { return x * 3 + VARIANT; }\n"
    "int main(int argc, char **argv) { (void)argv; printf(\"%d\\n\", leaf(argc)); return 0; }\n";

/* ---- processes ---- */

#define MAX_CHILDREN 8
static pid_t children[MAX_CHILDREN];

static void stop_child(pid_t pid)
{
	int status;

	if (pid <= 0)
		return;
	kill(pid, SIGTERM);
	for (int i = 0; i < 50; i++) { /* 5 s, then no more asking */
		if (waitpid(pid, &status, WNOHANG) == pid)
			goto reaped;
		usleep(100000);
	}
	kill(pid, SIGKILL);
	waitpid(pid, &status, 0);
reaped:
	for (int i = 0; i < MAX_CHILDREN; i++)
		if (children[i] == pid)
			children[i] = 0;
}

static void stop_children(void)
{
	for (int i = 0; i < MAX_CHILDREN; i++)
		stop_child(children[i]);
}

static int sh(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static int sh(const char *fmt, ...)
{
	char cmd[2048];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(cmd, sizeof(cmd), fmt, ap);
	va_end(ap);
	return system(cmd) == 0 ? 0 : -1;
}

static void at_exit(void)
{
	stop_children();
	if (fx[0])
		sh("rm -rf '%s'", fx);
}

/* Start ARGV with output to LOG; it dies with us. */
static pid_t spawn(char *const argv[], const char *log)
{
	pid_t pid = fork();

	if (pid == 0) {
		int fd = open(log, O_WRONLY | O_CREAT | O_APPEND, 0644);

		prctl(PR_SET_PDEATHSIG, SIGKILL);
		if (fd >= 0) {
			dup2(fd, 1);
			dup2(fd, 2);
		}
		execvp(argv[0], argv);
		_exit(127);
	}
	for (int i = 0; pid > 0 && i < MAX_CHILDREN; i++)
		if (!children[i]) {
			children[i] = pid;
			break;
		}
	return pid;
}

static int free_port(void)
{
	struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
	socklen_t len = sizeof(a);
	int fd = socket(AF_INET, SOCK_STREAM, 0), port = -1;

	if (fd >= 0 && bind(fd, (struct sockaddr *)&a, sizeof(a)) == 0 &&
	    getsockname(fd, (struct sockaddr *)&a, &len) == 0)
		port = ntohs(a.sin_port);
	if (fd >= 0)
		close(fd);
	return port;
}

/* GET PATH from 127.0.0.1:PORT; the whole response (capped at 1 MiB) or NULL. Free it. */
static char *http_get(int port, const char *path)
{
	struct sockaddr_in a = {.sin_family = AF_INET,
				.sin_port = htons((uint16_t)port),
				.sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
	struct timeval tv = {2, 0};
	size_t cap = 1 << 20, len = 0;
	char req[512], *buf = NULL;
	int fd = socket(AF_INET, SOCK_STREAM, 0);
	ssize_t n;

	if (fd < 0)
		return NULL;
	setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
	setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
	if (connect(fd, (struct sockaddr *)&a, sizeof(a)) != 0)
		goto out;
	n = snprintf(req, sizeof(req), "GET %s HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n", path);
	if (write(fd, req, (size_t)n) != n || !(buf = malloc(cap)))
		goto out;
	while (len < cap - 1 && (n = read(fd, buf + len, cap - 1 - len)) > 0)
		len += (size_t)n;
	buf[len] = '\0';
out:
	close(fd);
	return buf;
}

/* Value of the Prometheus sample named exactly NAME (with labels), -1 if absent. */
static double metric(const char *text, const char *name)
{
	size_t n = strlen(name);

	for (const char *p = text; p && *p; p = strchr(p, '\n'), p = p ? p + 1 : NULL)
		if (strncmp(p, name, n) == 0 && p[n] == ' ')
			return atof(p + n + 1);
	return -1;
}

static double server_metric(int port, const char *name)
{
	char *m = http_get(port, "/metrics");
	double v = m ? metric(m, name) : -1;

	free(m);
	return v;
}

/* ---- fixtures and the debuginfod server, once per run ---- */

static int dport; /* debuginfod's port */

static const char *fxp(const char *name)
{
	static char buf[8][256];
	static int k;

	k = (k + 1) % 8;
	snprintf(buf[k], sizeof(buf[k]), "%s/%s", fx, name);
	return buf[k];
}

static void fixtures(void)
{
	static int state;
	FILE *f;

	if (state == 0) {
		state = -1;
		if (sh("command -v gcc objcopy >/dev/null"))
			goto done;
		snprintf(fx, sizeof(fx), "/tmp/fleetsym-resolver-fx.XXXXXX");
		if (!mkdtemp(fx)) {
			fx[0] = '\0';
			goto done;
		}
		atexit(at_exit);
		f = fopen(fxp("p.c"), "w");
		if (!f)
			goto done;
		fputs(prog_src, f);
		fclose(f);
		for (int i = 0; i < NVARIANTS; i++) {
			char name[16];

			if (sh("cd %s && gcc -g -O2 -Wl,--build-id -DVARIANT=%d -o p%d p.c && "
			       "objcopy --only-keep-debug p%d p%d.debug",
			       fx, i, i, i, i))
				goto done;
			snprintf(name, sizeof(name), "p%d", i);
			if (buildid_from_path(fxp(name), bids[i]) != 0)
				goto done;
		}
		/* what debuginfod serves: p0 compressed, p1 and p2 plain */
		if (sh("cd %s && mkdir srv && objcopy --compress-debug-sections=zlib p0.debug "
		       "srv/p0.debug && cp p1.debug p2.debug srv/",
		       fx))
			goto done;
		state = 1;
	}
done:
	if (state != 1)
		SKIP("cannot build fixtures (gcc and binutils needed)");
}

static void debuginfod_server(void)
{
	static int state;
	char port[16], db[256], srv[256];

	fixtures();
	if (state == 0) {
		char *argv[] = {"debuginfod", "-F", "-p", port, "-d", db,  "-t",
				"0",	      "-g", "0",  "-c", "1",  srv, NULL};

		state = -1;
		if (sh("command -v debuginfod >/dev/null"))
			goto done;
		dport = free_port();
		snprintf(port, sizeof(port), "%d", dport);
		snprintf(db, sizeof(db), "%s/debuginfod.sqlite", fx);
		snprintf(srv, sizeof(srv), "%s/srv", fx);
		if (spawn(argv, fxp("debuginfod.log")) < 0)
			goto done;
		/* ready when all three files are indexed: at most 20 s */
		for (int i = 0; i < 200; i++) {
			char *m = http_get(dport, "/metrics");
			int ok = m && metric(m, "found_debuginfo_total{source=\"files\"}") >= 3 &&
				 metric(m, "thread_work_pending{role=\"scan\"}") == 0;

			free(m);
			if (ok) {
				state = 1;
				break;
			}
			usleep(100000);
		}
	}
done:
	if (state != 1)
		SKIP("no debuginfod server (elfutils' debuginfod package) or it did not start");
}

/* ---- helpers ---- */

struct tres {
	char dir[128], url[64];
	struct dstore *s;
	struct resolver *r;
};

static int64_t ms_now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void tres_cleanup(void *arg);

/* A store in a fresh dir and a resolver over it. DIRS may be NULL (an empty dir is used).
 * T must outlive the test (static): the harness closes it when the test ends. The dir is
 * under the fixtures, removed at exit. */
static void tres_open(struct tres *t, const char *urls, const char *const *dirs,
		      struct resolver_opts o)
{
	struct dstore_opts so = {0};
	static char empty[160];
	static const char *none[2];

	t_defer(tres_cleanup, t);
	snprintf(t->dir, sizeof(t->dir), "%s/data.XXXXXX", fx);
	CHECK(mkdtemp(t->dir) != NULL);
	so.data_dir = t->dir;
	CHECK_INT(dstore_open(&so, &t->s), 0);
	if (!dirs) {
		snprintf(empty, sizeof(empty), "%s/empty-debug-dir", fx);
		mkdir(empty, 0755);
		none[0] = empty;
		dirs = none;
	}
	o.store = t->s;
	o.debug_dirs = dirs;
	o.debuginfod_urls = urls;
	/* the resolver keeps an operator's DEBUGINFOD_CACHE_PATH; each test wants its own */
	unsetenv("DEBUGINFOD_CACHE_PATH");
	CHECK_INT(resolver_new(&o, &t->r), 0);
}

static void tres_close(struct tres *t)
{
	resolver_free(t->r);
	dstore_close(t->s);
	t->r = NULL;
	t->s = NULL;
}

static void tres_cleanup(void *arg)
{
	tres_close(arg);
}

/* Put fixture NAME where a local debug dir DIR keeps build ID BID. */
static void place_local(const char *dir, const char *bid, const char *name)
{
	CHECK_INT(sh("mkdir -p %s/.build-id/%.2s && cp %s %s/.build-id/%.2s/%s.debug", dir, bid,
		     fxp(name), dir, bid, bid + 2),
		  0);
}

static int count_tmp(struct tres *t)
{
	char cmd[512];
	int n = -1;
	FILE *p;

	snprintf(cmd, sizeof(cmd), "ls -A '%s' | wc -l", dstore_tmp_dir(t->s));
	p = popen(cmd, "r");
	if (!p)
		return -1;
	if (fscanf(p, "%d", &n) != 1)
		n = -1;
	pclose(p);
	return n;
}

/* ---- tests ---- */

TEST(bad_build_id)
{
	static struct tres t;

	fixtures();
	tres_open(&t, NULL, NULL, (struct resolver_opts){0});
	CHECK_INT(resolver_resolve(t.r, "../etc/passwd", 100, NULL, NULL), -ERR_BADBUILDID);
	CHECK_INT(resolver_resolve(t.r, "a", 100, NULL, NULL), -ERR_BADBUILDID);
	CHECK_INT(resolver_resolve(t.r, "", 100, NULL, NULL), -ERR_BADBUILDID);
	CHECK_INT(resolver_resolve(
		      t.r, "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef0", 100,
		      NULL, NULL),
		  -ERR_BADBUILDID);
	tres_close(&t);
}

TEST(fetch_from_debuginfod)
{
	struct dstore_entry e;
	struct resolver_stats st;
	const char *reqs = "http_requests_total{type=\"debuginfo\"}", *reason = NULL;
	char path[512], url[64];
	static struct tres t;
	double before;
	int64_t t0;

	debuginfod_server();
	snprintf(url, sizeof(url), "http://127.0.0.1:%d", dport);
	tres_open(&t, url, NULL, (struct resolver_opts){0});
	t0 = ms_now();
	CHECK_INT(resolver_resolve(t.r, bids[0], 10000, &e, &reason), RESOLVER_FOUND);
	printf("  fetch of a %llu-byte compressed debug file: %lld ms, stored %llu bytes\n",
	       (unsigned long long)e.orig_size, (long long)(ms_now() - t0),
	       (unsigned long long)e.size);
	CHECK_STR(e.build_id, bids[0]);
	CHECK_INT(e.source, DSTORE_SRC_DEBUGINFOD);
	CHECK_INT(fixture_compressed_sections(e.path), 0); /* decompressed on the way in */
	CHECK(e.size > e.orig_size);
	/* moved out of libdebuginfod's cache, not copied */
	snprintf(path, sizeof(path), "%s/debuginfod-client/%s/debuginfo", t.dir, bids[0]);
	CHECK(access(path, F_OK) != 0);
	/* the next request is a store hit */
	CHECK_INT(resolver_resolve(t.r, bids[0], 10000, &e, &reason), RESOLVER_FOUND);
	resolver_stats(t.r, &st);
	CHECK_INT(st.fetches, 1);
	CHECK_INT(st.store_hits, 1);
	CHECK_INT(st.fetch_failures, 0);
	/* not on the server: MISSING with a reason, remembered */
	CHECK_INT(resolver_resolve(t.r, bids[3], 10000, &e, &reason), RESOLVER_MISSING);
	CHECK(reason && strstr(reason, "do not have it"));
	CHECK_INT(resolver_resolve(t.r, bids[3], 10000, &e, &reason), RESOLVER_MISSING);
	resolver_stats(t.r, &st);
	CHECK_INT(st.fetches, 2);
	CHECK_INT(st.fetch_failures, 1);
	CHECK_INT(st.negative_hits, 1);
	CHECK_INT(st.fetches_in_flight, 0);
	/* libdebuginfod keeps its own record of the miss; forgetting drops both, and the next
	 * resolve really asks the server again */
	snprintf(path, sizeof(path), "%s/debuginfod-client/%s/debuginfo", t.dir, bids[3]);
	CHECK(access(path, F_OK) == 0);
	before = server_metric(dport, reqs);
	resolver_forget_negative(t.r, bids[3]);
	CHECK(access(path, F_OK) != 0);
	CHECK_INT(resolver_resolve(t.r, bids[3], 10000, &e, &reason), RESOLVER_MISSING);
	CHECK_INT(server_metric(dport, reqs) - before, 1);
	resolver_stats(t.r, &st);
	CHECK_INT(st.fetches, 3);
	tres_close(&t);
}

struct caller {
	struct resolver *r;
	const char *bid;
	pthread_barrier_t *go;
	int st;
	struct dstore_entry e;
};

static void *caller_main(void *arg)
{
	struct caller *c = arg;

	pthread_barrier_wait(c->go);
	c->st = resolver_resolve(c->r, c->bid, 20000, &c->e, NULL);
	return NULL;
}

TEST(single_flight_8_callers_one_fetch)
{
	const char *reqs = "http_requests_total{type=\"debuginfo\"}";
	struct caller c[8];
	pthread_t th[8];
	pthread_barrier_t go;
	struct resolver_stats st;
	double before, after;
	char url[64];
	static struct tres t;
	int64_t t0;

	debuginfod_server();
	snprintf(url, sizeof(url), "http://127.0.0.1:%d", dport);
	tres_open(&t, url, NULL, (struct resolver_opts){0});
	before = server_metric(dport, reqs);
	pthread_barrier_init(&go, NULL, 8);
	t0 = ms_now();
	for (int i = 0; i < 8; i++) {
		c[i] = (struct caller){t.r, bids[1], &go, -1};
		CHECK_INT(pthread_create(&th[i], NULL, caller_main, &c[i]), 0);
	}
	for (int i = 0; i < 8; i++)
		pthread_join(th[i], NULL);
	pthread_barrier_destroy(&go);
	after = server_metric(dport, reqs);
	resolver_stats(t.r, &st);
	printf("  8 concurrent callers: %llu fetch(es), %g request(s) seen by debuginfod, %llu "
	       "answered by the store after the fetch, %lld ms\n",
	       (unsigned long long)st.fetches, after - (before < 0 ? 0 : before),
	       (unsigned long long)st.store_hits, (long long)(ms_now() - t0));
	for (int i = 0; i < 8; i++) {
		CHECK_INT(c[i].st, RESOLVER_FOUND);
		CHECK_STR(c[i].e.path, c[0].e.path);
	}
	CHECK_INT(st.fetches, 1);
	CHECK(after >= 1);
	CHECK_INT(after - (before < 0 ? 0 : before), 1);
	tres_close(&t);
}

TEST(dead_server_missing_fast_and_remembered)
{
	struct resolver_opts o = {.negative_ttl_s = 2};
	struct resolver_stats st;
	const char *reason = NULL;
	int64_t t0, dt;
	char url[64];
	static struct tres t;

	fixtures();
	snprintf(url, sizeof(url), "http://127.0.0.1:%d", free_port()); /* nobody listens */
	tres_open(&t, url, NULL, o);
	t0 = ms_now();
	CHECK_INT(resolver_resolve(t.r, bids[2], 10000, NULL, &reason), RESOLVER_MISSING);
	dt = ms_now() - t0;
	printf("  dead server: MISSING after %lld ms (%s)\n", (long long)dt, reason);
	CHECK(dt < 5000); /* at once, not after the 10 s it could wait */
	CHECK(reason && strstr(reason, "reached"));
	t0 = ms_now();
	CHECK_INT(resolver_resolve(t.r, bids[2], 10000, NULL, &reason), RESOLVER_MISSING);
	dt = ms_now() - t0;
	printf("  asked again: MISSING after %lld ms, remembered\n", (long long)dt);
	CHECK(dt < 5000);
	CHECK(reason && strstr(reason, "reached"));
	resolver_stats(t.r, &st);
	CHECK_INT(st.fetches, 1);
	CHECK_INT(st.negative_hits, 1);
	/* after the TTL it asks again */
	usleep(2100 * 1000);
	CHECK_INT(resolver_resolve(t.r, bids[2], 10000, NULL, &reason), RESOLVER_MISSING);
	resolver_stats(t.r, &st);
	CHECK_INT(st.fetches, 2);
	CHECK_INT(st.negative_hits, 1);
	tres_close(&t);
}

static const char slow_py[] =
    "import http.server, sys, time\n"
    "class H(http.server.BaseHTTPRequestHandler):\n"
    "    def do_GET(self):\n"
    "        time.sleep(30)\n"
    "        self.send_error(404)\n"
    "    def log_message(self, *a):\n"
    "        pass\n"
    "http.server.ThreadingHTTPServer.daemon_threads = True\n"
    "http.server.ThreadingHTTPServer(('127.0.0.1', int(sys.argv[1])), H).serve_forever()\n";

static void child_cleanup(void *arg)
{
	stop_child((pid_t)(intptr_t)arg);
}

/* A python3 HTTP server: SRC run with its port and ARG (may be NULL) as arguments; stopped when
 * the test ends. */
static void py_server(const char *src, const char *arg, int *port)
{
	char p[16];
	char *argv[] = {"python3", "-c", (char *)src, p, (char *)arg, NULL};
	pid_t pid;

	if (sh("command -v python3 >/dev/null"))
		SKIP("python3 not installed");
	*port = free_port();
	snprintf(p, sizeof(p), "%d", *port);
	pid = spawn(argv, fxp("py.log"));
	CHECK(pid > 0);
	t_defer(child_cleanup, (void *)(intptr_t)pid);
	for (int i = 0; i < 100; i++) { /* listening within 10 s */
		struct sockaddr_in a = {.sin_family = AF_INET,
					.sin_port = htons((uint16_t)*port),
					.sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
		int fd = socket(AF_INET, SOCK_STREAM, 0), ok;

		ok = connect(fd, (struct sockaddr *)&a, sizeof(a)) == 0;
		close(fd);
		if (ok)
			return;
		usleep(100000);
	}
	SKIP("the python3 server did not start");
}

/* A server that takes every connection and answers nothing for 30 s. */
static void slow_server(int *port)
{
	py_server(slow_py, NULL, port);
}

TEST(slow_server_pending_and_nobody_else_blocked)
{
	struct resolver_opts o = {.fetch_timeout_s = 2, .max_fetches = 1};
	const char *dirs[2] = {NULL, NULL}, *reason = NULL;
	struct resolver_stats st;
	struct dstore_entry e;
	char url[64], cache[512], local[160];
	int64_t t0, t1, dt;
	static struct tres t;
	int port, rc = -1;

	fixtures();
	slow_server(&port);
	snprintf(url, sizeof(url), "http://127.0.0.1:%d", port);
	snprintf(local, sizeof(local), "%s/local-slow", fx);
	place_local(local, bids[4], "p4.debug");
	dirs[0] = local;
	tres_open(&t, url, dirs, o);

	t0 = ms_now();
	CHECK_INT(resolver_resolve(t.r, bids[0], 300, NULL, &reason), RESOLVER_PENDING);
	dt = ms_now() - t0;
	printf("  slow server: PENDING after %lld ms (wait_ms 300)\n", (long long)dt);
	CHECK(dt >= 290); /* PENDING itself says it did not wait for the fetch's outcome */
	CHECK(reason && strstr(reason, "being fetched"));
	resolver_stats(t.r, &st);
	CHECK_INT(st.fetches_in_flight, 1);
	/* another build ID, in a local dir, while the only fetch slot hangs */
	t1 = ms_now();
	CHECK_INT(resolver_resolve(t.r, bids[4], 5000, &e, NULL), RESOLVER_FOUND);
	dt = ms_now() - t1;
	printf("  meanwhile a local-dir build ID: FOUND after %lld ms\n", (long long)dt);
	CHECK_INT(e.source, DSTORE_SRC_LOCAL);
	/* not behind the hanging fetch: that one is still in flight */
	resolver_stats(t.r, &st);
	CHECK_INT(st.fetches_in_flight, 1);
	/* and a third that needs debuginfod too waits its own wait_ms, no longer */
	t1 = ms_now();
	CHECK_INT(resolver_resolve(t.r, bids[1], 200, NULL, NULL), RESOLVER_PENDING);
	dt = ms_now() - t1;
	CHECK(dt >= 190);
	/* the hanging fetch ends at its deadline (2 s; the callback runs about once a second) */
	for (int i = 0; i < 100; i++) {
		rc = resolver_resolve(t.r, bids[0], 100, NULL, &reason);
		if (rc != RESOLVER_PENDING)
			break;
	}
	dt = ms_now() - t0;
	printf("  the slow fetch was cancelled; MISSING %lld ms after it started (%s)\n",
	       (long long)dt, reason);
	CHECK_INT(rc, RESOLVER_MISSING);
	CHECK(reason && strstr(reason, "timeout"));
	CHECK(dt >= 2000 && dt < 15000); /* at its deadline, long before the server's 30 s */
	/* libdebuginfod's own "miss" file from the cancellation is gone */
	snprintf(cache, sizeof(cache), "%s/debuginfod-client/%s/debuginfo", t.dir, bids[0]);
	CHECK(access(cache, F_OK) != 0);
	resolver_stats(t.r, &st);
	CHECK_INT(st.local_hits, 1);
	CHECK(st.fetch_failures >= 1);
	/* bids[1]'s fetch now hangs in turn, deep in libdebuginfod's 1 s poll: free cancels it */
	for (int i = 0; i < 100; i++) { /* it starts within 10 s */
		resolver_stats(t.r, &st);
		if (st.fetches_in_flight == 1)
			break;
		usleep(100000);
	}
	CHECK_INT(st.fetches_in_flight, 1);
	usleep(1500 * 1000);
	t1 = ms_now();
	tres_close(&t);
	dt = ms_now() - t1;
	printf("  resolver_free with a fetch in flight: %lld ms\n", (long long)dt);
	CHECK(dt < 10000); /* promptly, not after the server's 30 s */
}

TEST(job_cap_then_prompt_free)
{
	struct resolver_opts o = {.fetch_timeout_s = 30, .max_fetches = 2};
	char url[64], bid[BUILDID_HEX_MAX];
	int64_t t0, dt;
	static struct tres t;
	int port, n = 0, rc = 0;

	fixtures();
	slow_server(&port);
	snprintf(url, sizeof(url), "http://127.0.0.1:%d", port);
	tres_open(&t, url, NULL, o);
	/* distinct unknown build IDs until the resolver says it is busy */
	for (n = 0; n < 200; n++) {
		snprintf(bid, sizeof(bid), "%040x", n + 1);
		rc = resolver_resolve(t.r, bid, 0, NULL, NULL);
		if (rc != RESOLVER_PENDING)
			break;
	}
	printf("  %d build IDs in flight, then %s\n", n, err_str(rc));
	CHECK_INT(rc, -EAGAIN);
	CHECK(n >= 8 && n < 200);
	t0 = ms_now();
	tres_close(&t);
	dt = ms_now() - t0;
	printf("  resolver_free with 2 fetches hanging and %d queued: %lld ms\n", n - 2,
	       (long long)dt);
	CHECK(dt < 10000); /* promptly, not after the server's 30 s */
}

TEST(job_share_per_client)
{
	struct resolver_opts o = {.fetch_timeout_s = 30, .max_fetches = 2};
	const char *reason = NULL;
	char url[64], bid[BUILDID_HEX_MAX];
	struct resolver_stats st;
	static struct tres t;
	int port, n, rc = 0;

	fixtures();
	slow_server(&port);
	snprintf(url, sizeof(url), "http://127.0.0.1:%d", port);
	tres_open(&t, url, NULL, o);
	/* one client's distinct unknown build IDs until it is told it has its share */
	for (n = 0; n < 200; n++) {
		snprintf(bid, sizeof(bid), "%040x", n + 1);
		rc = resolver_resolve_as(t.r, "192.0.2.1", bid, 0, NULL, &reason);
		if (rc != RESOLVER_PENDING)
			break;
	}
	printf("  client A: %d build IDs in flight, then %s (%s)\n", n, err_str(rc), reason);
	CHECK_INT(rc, -EAGAIN);
	CHECK_INT(n, RESOLVER_JOBS_PER_CLIENT);
	CHECK(reason && strstr(reason, "this client"));
	/* its share taken, a build ID it already waits for still answers pending */
	snprintf(bid, sizeof(bid), "%040x", 1);
	CHECK_INT(resolver_resolve_as(t.r, "192.0.2.1", bid, 0, NULL, NULL), RESOLVER_PENDING);
	/* another client still starts lookups */
	snprintf(bid, sizeof(bid), "%040x", 1000);
	CHECK_INT(resolver_resolve_as(t.r, "192.0.2.2", bid, 0, NULL, &reason), RESOLVER_PENDING);
	CHECK(reason && strstr(reason, "being fetched"));
	/* the service itself (queries) is not bound by a client's share */
	snprintf(bid, sizeof(bid), "%040x", 1001);
	CHECK_INT(resolver_resolve(t.r, bid, 0, NULL, NULL), RESOLVER_PENDING);
	resolver_stats(t.r, &st);
	CHECK_INT(st.busy, 1);
	tres_close(&t);
}

TEST(forget_negative)
{
	char local[160];
	const char *dirs[2] = {NULL, NULL}, *reason = NULL;
	struct resolver_stats st;
	struct dstore_entry e;
	static struct tres t;

	fixtures();
	snprintf(local, sizeof(local), "%s/local-forget", fx);
	CHECK_INT(sh("mkdir -p %s", local), 0);
	dirs[0] = local;
	tres_open(&t, NULL, dirs, (struct resolver_opts){0});
	CHECK_INT(resolver_resolve(t.r, bids[3], 5000, &e, &reason), RESOLVER_MISSING);
	CHECK(reason && strstr(reason, "no debuginfod"));
	/* it appears, but the miss is remembered ... */
	place_local(local, bids[3], "p3.debug");
	CHECK_INT(resolver_resolve(t.r, bids[3], 5000, &e, &reason), RESOLVER_MISSING);
	resolver_stats(t.r, &st);
	CHECK_INT(st.negative_hits, 1);
	/* ... until an upload (or anyone) says to forget it */
	resolver_forget_negative(t.r, bids[3]);
	CHECK_INT(resolver_resolve(t.r, bids[3], 5000, &e, &reason), RESOLVER_FOUND);
	CHECK_INT(e.source, DSTORE_SRC_LOCAL);
	resolver_stats(t.r, &st);
	CHECK_INT(st.local_hits, 1);
	CHECK_INT(st.fetches, 0);
	tres_close(&t);
}

TEST(local_dirs_in_order_bad_file_skipped)
{
	char d1[160], d2[160], up[BUILDID_HEX_MAX];
	const char *dirs[3] = {d1, d2, NULL}, *reason = NULL;
	struct dstore_entry e;
	static struct tres t;

	fixtures();
	snprintf(d1, sizeof(d1), "%s/local-a", fx);
	snprintf(d2, sizeof(d2), "%s/local-b", fx);
	place_local(d1, bids[5], "p2.debug"); /* another build ID's file under bids[5]'s name */
	place_local(d2, bids[5], "p5.debug");
	place_local(d1, bids[4], "p3.debug");
	tres_open(&t, NULL, dirs, (struct resolver_opts){0});
	for (size_t i = 0; i <= strlen(bids[5]); i++)
		up[i] = (char)(bids[5][i] >= 'a' ? bids[5][i] - 32 : bids[5][i]);
	CHECK_INT(resolver_resolve(t.r, up, 5000, &e, &reason), RESOLVER_FOUND);
	CHECK_STR(e.build_id, bids[5]);
	CHECK_INT(resolver_resolve(t.r, bids[4], 5000, &e, &reason), RESOLVER_MISSING);
	CHECK_INT(count_tmp(&t), 0);
	tres_close(&t);
}

TEST(peer_hit_installed_miss_remembered)
{
	char url[64];
	const char *peers[2] = {url, NULL}, *reason = NULL;
	struct resolver_opts o = {.peers = peers, .peer_token = "tok"};
	struct resolver_stats st;
	struct dstore_entry e;
	static struct tres t;

	debuginfod_server();
	snprintf(url, sizeof(url), "http://127.0.0.1:%d/", dport); /* a trailing slash is fine */
	tres_open(&t, NULL, NULL, o);
	CHECK_INT(resolver_resolve(t.r, bids[0], 10000, &e, &reason), RESOLVER_FOUND);
	CHECK_INT(e.source, DSTORE_SRC_PEER);
	CHECK_INT(fixture_compressed_sections(e.path), 0); /* inflated like a fetched file */
	CHECK(e.size > e.orig_size);
	CHECK_INT(resolver_resolve(t.r, bids[3], 10000, &e, &reason), RESOLVER_MISSING);
	CHECK(reason && strstr(reason, "any peer replica"));
	CHECK_INT(resolver_resolve(t.r, bids[3], 10000, &e, &reason), RESOLVER_MISSING);
	resolver_stats(t.r, &st);
	CHECK_INT(st.peer_fetches, 2);
	CHECK_INT(st.peer_requests, 2);
	CHECK_INT(st.peer_hits, 1);
	CHECK_INT(st.peer_misses, 1);
	CHECK_INT(st.peer_errors, 0);
	CHECK_INT(st.negative_hits, 1);
	CHECK_INT(st.fetches, 0); /* no debuginfod configured: nothing else was asked */
	CHECK_INT(count_tmp(&t), 0);
	tres_close(&t);
}

TEST(dead_and_silent_peers_dropped_then_left_out)
{
	char dead[64], silent[64], good[64];
	const char *peers[4] = {dead, silent, good, NULL}, *reason = NULL;
	struct resolver_opts o = {.peers = peers, .peer_stall_ms = 1000, .fetch_timeout_s = 20};
	struct resolver_stats st;
	struct dstore_entry e;
	static struct tres t;
	int64_t t0, dt;
	int port;

	debuginfod_server();
	slow_server(&port);
	snprintf(dead, sizeof(dead), "http://127.0.0.1:%d", free_port()); /* nobody listens */
	snprintf(silent, sizeof(silent), "http://127.0.0.1:%d", port);
	snprintf(good, sizeof(good), "http://127.0.0.1:%d", dport);
	tres_open(&t, NULL, NULL, o);
	/* the good peer's answer wins at once: nobody waits for the silent one */
	t0 = ms_now();
	CHECK_INT(resolver_resolve(t.r, bids[1], 20000, &e, &reason), RESOLVER_FOUND);
	dt = ms_now() - t0;
	printf("  found on the one good peer of three after %lld ms\n", (long long)dt);
	CHECK_INT(e.source, DSTORE_SRC_PEER);
	resolver_stats(t.r, &st);
	CHECK_INT(st.peer_hits, 1);
	CHECK_INT(st.peer_errors, 1); /* the dead one; the silent one was dropped, not failed */
	/* a build ID nobody has: the dead peer is left out, the silent one is dropped after the
	 * stall bound (1 s), far before the round's 20 s */
	t0 = ms_now();
	CHECK_INT(resolver_resolve(t.r, bids[4], 20000, &e, &reason), RESOLVER_MISSING);
	dt = ms_now() - t0;
	printf("  missing with a silent peer after %lld ms (%s)\n", (long long)dt, reason);
	CHECK(dt >= 900 && dt < 10000);
	CHECK(reason && strstr(reason, "not every peer"));
	resolver_stats(t.r, &st);
	CHECK_INT(st.peer_skipped, 1);
	CHECK_INT(st.peer_errors, 2);
	CHECK_INT(st.peer_misses, 1);
	/* both are left out now: the next round asks the good peer alone */
	t0 = ms_now();
	CHECK_INT(resolver_resolve(t.r, bids[5], 20000, &e, &reason), RESOLVER_MISSING);
	dt = ms_now() - t0;
	printf("  next build ID with both left out: %lld ms\n", (long long)dt);
	resolver_stats(t.r, &st);
	CHECK_INT(st.peer_skipped, 3);
	CHECK_INT(st.peer_requests, 3 + 2 + 1); /* all three, then two, then the good one */
	CHECK_INT(st.peer_errors, 2);
	CHECK_INT(st.peer_misses, 2);
	CHECK_INT(count_tmp(&t), 0);
	tres_close(&t);
}

/* Answers every GET with the file named by its second argument. */
static const char liar_py[] =
    "import http.server, sys\n"
    "body = open(sys.argv[2], 'rb').read()\n"
    "class H(http.server.BaseHTTPRequestHandler):\n"
    "    def do_GET(self):\n"
    "        self.send_response(200)\n"
    "        self.send_header('Content-Length', str(len(body)))\n"
    "        self.end_headers()\n"
    "        self.wfile.write(body)\n"
    "    def log_message(self, *a):\n"
    "        pass\n"
    "http.server.ThreadingHTTPServer(('127.0.0.1', int(sys.argv[1])), H).serve_forever()\n";

TEST(peer_file_checked_like_a_fetch)
{
	char url[64];
	const char *peers[2] = {url, NULL}, *reason = NULL;
	struct resolver_opts o = {.peers = peers};
	struct resolver_stats st;
	struct dstore_entry e;
	static struct tres t, small;
	int port;

	fixtures();
	py_server(liar_py, fxp("p2.debug"), &port); /* p2's file, whatever is asked */
	snprintf(url, sizeof(url), "http://127.0.0.1:%d", port);
	tres_open(&t, NULL, NULL, o);
	CHECK_INT(resolver_resolve(t.r, bids[5], 10000, &e, &reason), RESOLVER_MISSING);
	CHECK(reason && strstr(reason, "not usable"));
	resolver_stats(t.r, &st);
	CHECK_INT(st.peer_hits, 1); /* the peer answered; the store refused what it sent */
	CHECK_INT(count_tmp(&t), 0);
	/* the right file is installed, but not past the size cap */
	CHECK_INT(resolver_resolve(t.r, bids[2], 10000, &e, &reason), RESOLVER_FOUND);
	CHECK_INT(e.source, DSTORE_SRC_PEER);
	tres_close(&t);
	o.peer_max_bytes = 100;
	tres_open(&small, NULL, NULL, o);
	CHECK_INT(resolver_resolve(small.r, bids[2], 10000, &e, &reason), RESOLVER_MISSING);
	CHECK(reason && strstr(reason, "size limit"));
	resolver_stats(small.r, &st);
	CHECK_INT(st.peer_errors, 1);
	/* the peer is not taken for down: the next build ID asks it again */
	CHECK_INT(resolver_resolve(small.r, bids[1], 10000, &e, &reason), RESOLVER_MISSING);
	resolver_stats(small.r, &st);
	CHECK_INT(st.peer_skipped, 0);
	CHECK_INT(st.peer_requests, 2);
	CHECK_INT(count_tmp(&small), 0);
	tres_close(&small);
}
