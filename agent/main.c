/*
 * fleetsym-agent - samples on-CPU stacks of every process on the host with eBPF and ships them
 * as unsymbolized pprof (build IDs and file offsets) to fleetsymd, or writes one file.
 *
 * The main thread polls the ring buffer every ~150 ms and feeds the aggregator; every
 * --interval (jittered by +-10 %) the profile is encoded and handed to the shipping thread
 * (ship.c), which never makes sampling wait. With --output the profile instead accumulates over
 * the whole run and FILE is rewritten (atomically) at every interval and at the end.
 */
#include "agent/agg.h"
#include "agent/bpfprof.h"
#include "agent/cgnames.h"
#include "agent/ship.h"
#include "agent/unwind.h"
#include "agent/unwreplay.h"
#include "agent/unwtab.h"

#include "lib/err.h"
#include "lib/fsutil.h"
#include "lib/log.h"
#include "lib/parse.h"
#include "lib/version.h"

#include <curl/curl.h>
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <limits.h>
#include <math.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#define MAX_LABELS    32
#define MAX_SERVERS   8
#define MAX_LABEL_LEN 256
#define POLL_MS	      150
#define DRAIN_MS      5000

struct label {
	const char *key, *value;
};

struct opts {
	const char *servers[MAX_SERVERS]; /* --server, in order of preference */
	int nservers;
	const char *token_file, *output, *cgroup;
	unsigned int frequency;
	double interval_s, duration_s;
	uint32_t pid;
	size_t queue_size;
	bool no_kernel;
	size_t unwind_mb; /* 0: --no-unwind */
	int verbose;
	struct label labels[MAX_LABELS + 1];
	int nlabels;
	char host[256];
};

static volatile sig_atomic_t stop_requested;

static void on_signal(int sig)
{
	stop_requested = 1;
}

static void usage(FILE *f)
{
	fprintf(f,
		"usage: fleetsym-agent (--server URL | --output FILE) [options]\n"
		"Samples on-CPU stacks of every process with eBPF; ships unsymbolized pprof\n"
		"(build IDs + file offsets) to fleetsymd, or writes it to FILE.\n"
		"  --server URL        fleetsymd base URL; profiles go to URL/api/v1/ingest;\n"
		"                      repeatable (up to 8 replicas): a failed send moves on\n"
		"                      to the next URL\n"
		"  --token-file F      bearer token for the server (first line of F)\n"
		"  --output FILE       write one gzip'd pprof covering the whole run instead\n"
		"  --frequency HZ      samples per second per CPU (default 19)\n"
		"  --interval D        profile length, jittered +-10%% (default 10s)\n"
		"  --label K=V         series label (repeatable); host=HOSTNAME is automatic\n"
		"  --pid PID           only this process (stops when it exits)\n"
		"  --cgroup PATH       only tasks in this cgroup v2 directory or below\n"
		"  --duration D        stop after D (default: run until SIGINT/SIGTERM)\n"
		"  --queue-size N      profiles held while the server is away (default 16);\n"
		"                      the oldest is dropped first\n"
		"  --no-kernel         no kernel stacks\n"
		"  --unwind-memory MB  room for unwind tables (default 32; they are built\n"
		"                      from .eh_frame; least recently used evicted first)\n"
		"  --no-unwind         user stacks through frame pointers only\n"
		"  --unwind-table ELF  build ELF's unwind table, print its size, exit\n"
		"  --replay FILE       walk recorded stack snapshots (tests/data/src/unw_snap.c)\n"
		"                      with the tables, compare with their reference, exit\n"
		"  -v, --verbose       more log (twice: debug)\n"
		"  --version           version, commit and library versions, exit\n"
		"Durations: 500ms, 10s, 5m, 1h, 1d (plain numbers are seconds).\n");
}

/* A duration option in seconds, through the one parser (lib/parse.h: ms, s, m, h, d, w). */
static int opt_seconds(const char *s, double *out)
{
	int64_t ns;

	if (parse_duration(s, &ns))
		return -EINVAL;
	*out = (double)ns / 1e9;
	return 0;
}

static int parse_uint(const char *s, unsigned long max, unsigned long *out)
{
	char *end;
	unsigned long v;

	errno = 0;
	v = strtoul(s, &end, 10);
	if (end == s || *end || errno || v > max || s[0] == '-')
		return -EINVAL;
	*out = v;
	return 0;
}

static bool valid_key(const char *k, size_t n)
{
	if (!n || n > 64 ||
	    !(k[0] == '_' || (k[0] >= 'a' && k[0] <= 'z') || (k[0] >= 'A' && k[0] <= 'Z')))
		return false;
	for (size_t i = 1; i < n; i++)
		if (!(k[i] == '_' || (k[i] >= 'a' && k[i] <= 'z') || (k[i] >= 'A' && k[i] <= 'Z') ||
		      (k[i] >= '0' && k[i] <= '9')))
			return false;
	return true;
}

/* K=V into O's labels (pointing into ARG, which outlives them). */
static int add_label(struct opts *o, char *arg)
{
	char *eq = strchr(arg, '=');

	if (!eq || !valid_key(arg, (size_t)(eq - arg)) || !eq[1] ||
	    strlen(eq + 1) > MAX_LABEL_LEN) {
		fprintf(stderr,
			"fleetsym-agent: --label wants KEY=VALUE (KEY: letters, digits, _; "
			"VALUE: 1-%d bytes), not '%s'\n",
			MAX_LABEL_LEN, arg);
		return -EINVAL;
	}
	*eq = 0;
	for (int i = 0; i < o->nlabels; i++)
		if (!strcmp(o->labels[i].key, arg)) {
			o->labels[i].value = eq + 1; /* the last one wins */
			return 0;
		}
	if (o->nlabels >= MAX_LABELS) {
		fprintf(stderr, "fleetsym-agent: at most %d labels\n", MAX_LABELS);
		return -E2BIG;
	}
	o->labels[o->nlabels++] = (struct label){arg, eq + 1};
	return 0;
}

/* --unwind-table: what the worker would build for PATH, timed. */
static int table_info(const char *path)
{
	struct unwtab_stats st;
	struct unwtab *t = NULL;
	struct timespec a, b;
	int fd, err;

	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0) {
		fprintf(stderr, "fleetsym-agent: %s: %s\n", path, strerror(errno));
		return -errno;
	}
	clock_gettime(CLOCK_MONOTONIC, &a);
	err = unwtab_build_fd(fd, &t);
	clock_gettime(CLOCK_MONOTONIC, &b);
	close(fd);
	if (err) {
		fprintf(stderr, "fleetsym-agent: %s: no unwind table: %s\n", path, err_str(err));
		return err;
	}
	unwtab_get_stats(t, &st);
	printf("%s: %llu FDEs, %llu rows (plt %llu, signal %llu, entry %llu, bad %llu, no CFI "
	       "%llu), %llu bytes, built in %.1f ms%s\n",
	       path, (unsigned long long)st.fdes, (unsigned long long)st.rows,
	       (unsigned long long)st.plt, (unsigned long long)st.signal,
	       (unsigned long long)st.stop, (unsigned long long)st.bad, (unsigned long long)st.none,
	       (unsigned long long)(st.rows * sizeof(struct unw_row)),
	       (double)(b.tv_sec - a.tv_sec) * 1e3 + (double)(b.tv_nsec - a.tv_nsec) / 1e6,
	       st.debug_frame ? " (from .debug_frame)" : "");
	unwtab_free(t);
	return 0;
}

/* --replay: the unwinder on recorded snapshots, against their reference walks. */
static int replay(const char *path)
{
	struct unwreplay_result r;
	int err = unwreplay_file(path, stdout, &r);

	if (err) {
		fprintf(stderr, "fleetsym-agent: %s: %s\n", path, err_str(err));
		return err;
	}
	printf("replay: %d snapshots, %d agree with the reference frame by frame; %d of %d "
	       "reference frames matched\n",
	       r.snapshots, r.agree, r.frames_same, r.frames);
	return 0;
}

static int parse_args(int argc, char **argv, struct opts *o)
{
	static const struct option longopts[] = {
	    {"server", required_argument, NULL, 'S'},
	    {"token-file", required_argument, NULL, 'T'},
	    {"output", required_argument, NULL, 'o'},
	    {"frequency", required_argument, NULL, 'F'},
	    {"interval", required_argument, NULL, 'I'},
	    {"label", required_argument, NULL, 'L'},
	    {"pid", required_argument, NULL, 'p'},
	    {"cgroup", required_argument, NULL, 'C'},
	    {"duration", required_argument, NULL, 'd'},
	    {"queue-size", required_argument, NULL, 'Q'},
	    {"no-kernel", no_argument, NULL, 'K'},
	    {"unwind-memory", required_argument, NULL, 'U'},
	    {"no-unwind", no_argument, NULL, 'N'},
	    {"verbose", no_argument, NULL, 'v'},
	    {"unwind-table", required_argument, NULL, 'W'},
	    {"replay", required_argument, NULL, 'R'},
	    {"help", no_argument, NULL, 'h'},
	    {"version", no_argument, NULL, 'V'},
	    {0},
	};
	unsigned long v;
	int c, idx = 0;

	o->frequency = 19;
	o->interval_s = 10;
	o->queue_size = 16;
	o->unwind_mb = 32;
	while ((c = getopt_long(argc, argv, "vh", longopts, &idx)) != -1) {
		switch (c) {
		case 'S':
			if (o->nservers == MAX_SERVERS)
				goto bad;
			o->servers[o->nservers++] = optarg;
			break;
		case 'T': o->token_file = optarg; break;
		case 'o': o->output = optarg; break;
		case 'F':
			if (parse_uint(optarg, 100000, &v) || !v)
				goto bad;
			o->frequency = (unsigned int)v;
			break;
		case 'I':
			if (opt_seconds(optarg, &o->interval_s) || o->interval_s < 0.1 ||
			    o->interval_s > 3600)
				goto bad;
			break;
		case 'L':
			if (add_label(o, optarg))
				return -EINVAL;
			break;
		case 'p':
			if (parse_uint(optarg, INT_MAX, &v) || !v)
				goto bad;
			o->pid = (uint32_t)v;
			break;
		case 'C': o->cgroup = optarg; break;
		case 'd':
			if (opt_seconds(optarg, &o->duration_s) || o->duration_s <= 0)
				goto bad;
			break;
		case 'Q':
			if (parse_uint(optarg, 100000, &v) || !v)
				goto bad;
			o->queue_size = v;
			break;
		case 'K': o->no_kernel = true; break;
		case 'U':
			if (parse_uint(optarg, 4096, &v) || !v)
				goto bad;
			o->unwind_mb = v;
			break;
		case 'N': o->unwind_mb = 0; break;
		case 'v': o->verbose++; break;
		case 'W': exit(table_info(optarg) ? 1 : 0);
		case 'R': exit(replay(optarg) ? 1 : 0);
		case 'h': usage(stdout); exit(0);
		case 'V': version_print(stdout, "fleetsym-agent", VERSION_LIBS_AGENT); exit(0);
		default: usage(stderr); return -EINVAL;
		}
	}
	if (optind < argc) {
		fprintf(stderr, "fleetsym-agent: unexpected argument '%s'\n", argv[optind]);
		return -EINVAL;
	}
	if (!o->nservers == !o->output) {
		fprintf(stderr, "fleetsym-agent: give one of --server URL and --output FILE\n");
		return -EINVAL;
	}
	return 0;
bad:
	fprintf(stderr, "fleetsym-agent: bad value '%s' for --%s\n", optarg, longopts[idx].name);
	return -EINVAL;
}

/* SERVER/api/v1/ingest?k=v&... with host first. */
static int ingest_url(const struct opts *o, const char *server, char **out)
{
	size_t cap = strlen(server) + 64, len;
	CURL *curl = curl_easy_init();
	char *url = NULL;
	int err = 0;

	if (!curl)
		return -ENOMEM;
	for (int i = 0; i < o->nlabels; i++)
		cap += 3 * (strlen(o->labels[i].key) + strlen(o->labels[i].value)) + 2;
	url = malloc(cap);
	if (!url) {
		err = -ENOMEM;
		goto out;
	}
	len = (size_t)snprintf(url, cap, "%s", server);
	while (len && url[len - 1] == '/')
		url[--len] = 0;
	len += (size_t)snprintf(url + len, cap - len, "/api/v1/ingest");
	for (int i = 0; i < o->nlabels; i++) {
		char *k = curl_easy_escape(curl, o->labels[i].key, 0);
		char *v = curl_easy_escape(curl, o->labels[i].value, 0);

		if (k && v)
			len +=
			    (size_t)snprintf(url + len, cap - len, "%c%s=%s", i ? '&' : '?', k, v);
		else
			err = -ENOMEM;
		curl_free(k);
		curl_free(v);
	}
	if (len >= cap)
		err = -E2BIG;
out:
	curl_easy_cleanup(curl);
	if (err)
		free(url);
	else
		*out = url;
	return err;
}

static uint64_t mono_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000 + (uint64_t)ts.tv_nsec;
}

static int64_t real_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

/* INTERVAL_S seconds, +-10 % at random, so that a fleet does not send in step. */
static uint64_t jittered(double interval_s)
{
	uint32_t r = 0;

	if (getrandom(&r, sizeof(r), GRND_NONBLOCK) != sizeof(r))
		r = (uint32_t)mono_ns();
	return (uint64_t)(interval_s * 1e9 * (0.9 + 0.2 * (r / 4294967296.0)));
}

/* A regular file (or a new one) is written whole and renamed in, the directory synced: never a
 * half profile after a crash. Anything else that exists (/dev/stdout, a FIFO) is written in place
 * rather than replaced. */
static int write_output(const char *path, const uint8_t *buf, size_t len)
{
	struct stat st;
	int fd, err;

	if (stat(path, &st) || S_ISREG(st.st_mode))
		return fsutil_write_atomic(path, buf, len, 0644);
	fd = open(path, O_WRONLY | O_TRUNC | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	err = fsutil_write_all(fd, buf, len);
	if (close(fd) && !err)
		err = -errno;
	return err;
}

struct run {
	struct opts *o;
	struct agg *agg;
	struct bpfprof *bpf;
	struct ship *ship;
	struct unwind *unw;
	struct unwind_stats us; /* read before the unwinder stops */
	int64_t start_real;
	uint64_t profiles, empty_profiles;
	uint64_t counters[PROF_CNT_MAX]; /* the BPF side's, read before it is unloaded */
};

static int on_record(void *ctx, const void *data, size_t size)
{
	struct run *r = ctx;
	const struct prof_hdr *h = data;

	if (size >= sizeof(*h) && h->type == PROF_REC_UNW_NEED) {
		if (r->unw)
			unwind_need(r->unw, data, size);
		return 0;
	}
	return agg_record(r->agg, data, size, mono_ns());
}

/* Encode the profile so far and write or queue it. */
static int flush(struct run *r, int64_t *interval_start)
{
	int64_t now = real_ns();
	uint64_t nsamples;
	uint8_t *gz = NULL;
	size_t len = 0;
	int err;

	agg_pending(r->agg, &nsamples);
	if (r->ship && !nsamples) {
		r->empty_profiles++; /* nothing to say: do not send an empty profile */
		*interval_start = now;
		err = agg_flush(r->agg, now, now, true, &gz, &len); /* resets, drops caches */
		free(gz);
		return err;
	}
	err = agg_flush(r->agg, *interval_start, now, r->ship != NULL, &gz, &len);
	if (err) {
		free(gz);
		log_msg(FS_LOG_ERROR, "encoding a profile: %s", err_str(err));
		return err;
	}
	r->profiles++;
	log_msg(FS_LOG_INFO, "profile: %llu samples, %zu bytes gzip'd",
		(unsigned long long)nsamples, len);
	if (r->ship) {
		ship_push(r->ship, gz, len);
		*interval_start = now;
		return 0;
	}
	err = write_output(r->o->output, gz, len);
	free(gz);
	if (err)
		log_msg(FS_LOG_ERROR, "writing %s: %s", r->o->output, err_str(err));
	return err;
}

static bool target_gone(uint32_t pid)
{
	return pid && kill((pid_t)pid, 0) && errno == ESRCH;
}

static int run_loop(struct run *r)
{
	uint64_t now = mono_ns(), next_flush = now + jittered(r->o->interval_s), last_check = now;
	uint64_t deadline = r->o->duration_s ? now + (uint64_t)(r->o->duration_s * 1e9) : 0;
	int64_t interval_start = r->start_real;
	int n, err = 0;

	while (!stop_requested) {
		uint64_t wait = POLL_MS * 1000000ull;

		if (next_flush - now < wait)
			wait = next_flush - now;
		if (deadline && deadline - now < wait)
			wait = deadline - now;
		n = bpfprof_poll(r->bpf, (int)(wait / 1000000));
		if (n < 0) {
			log_msg(FS_LOG_ERROR, "reading the ring buffer: %s", err_str(n));
			err = n;
			break;
		}
		now = mono_ns();
		if (deadline && now >= deadline)
			break;
		if (now - last_check >= 1000000000ull) {
			last_check = now;
			if (target_gone(r->o->pid)) {
				log_msg(FS_LOG_INFO, "process %u exited", r->o->pid);
				break;
			}
		}
		if (now >= next_flush) {
			(void)flush(r, &interval_start);
			next_flush = now + jittered(r->o->interval_s);
		}
	}
	if (bpfprof_poll(r->bpf, 0) < 0)
		log_msg(FS_LOG_WARN, "reading the last records failed");
	return flush(r, &interval_start) ?: err;
}

static void print_stats(struct run *r, const struct ship_stats *ss)
{
	struct procmaps_stats ps;
	const struct unwind_stats us = r->us;
	struct agg_stats as;
	struct rusage ru;
	char line[2048];
	size_t len = 0;

	agg_get_stats(r->agg, &as, &ps);
	getrusage(RUSAGE_SELF, &ru);
	const struct {
		const char *k;
		unsigned long long v;
	} kv[] = {
	    {"records", as.records},
	    {"bad_records", as.bad_records},
	    {"profile_samples", as.samples},
	    {"empty", as.empty},
	    {"profile_full", as.profile_full},
	    {"frames_kernel", as.frames_kernel},
	    {"frames_kernel_unnamed", as.frames_kernel_unnamed},
	    {"frames_vdso", as.frames_vdso},
	    {"frames_jit", as.frames_jit},
	    {"jit_map_reads", as.jit_map_reads},
	    {"jit_map_refused", as.jit_map_refused},
	    {"frames_buildid", as.frames_buildid},
	    {"frames_mapped", as.frames_mapped},
	    {"frames_unresolved", as.frames_unresolved},
	    {"maps_reads", ps.reads},
	    {"maps_read_errors", ps.read_errors},
	    {"buildid_reads", ps.buildid_reads},
	    {"buildid_errors", ps.buildid_errors},
	    {"buildid_late", ps.buildid_late},
	    {"buildid_queue_full", ps.buildid_queue_full},
	    {"buildid_workers_added", ps.buildid_workers_added},
	    {"files_refused", ps.files_refused},
	    {"unw_tables", us.tables},
	    {"unw_tables_shared", us.tables_shared},
	    {"unw_tables_failed", us.tables_failed},
	    {"unw_tables_evicted", us.tables_evicted},
	    {"unw_tables_refused", us.tables_refused},
	    {"unw_open_errors", us.open_errors},
	    {"unw_requests", us.requests},
	    {"unw_requests_dropped", us.requests_dropped},
	    {"unw_build_ms", us.build_us / 1000},
	    {"unw_rows_used", us.rows_used},
	    {"unw_rows_max", us.rows_max},
	    {"ksyms", as.ksyms},
	    {"ksyms_reloads", as.ksyms_reloads},
	    {"profiles", r->profiles},
	    {"empty_profiles", r->empty_profiles},
	    {"pushed", ss->pushed},
	    {"sent", ss->sent},
	    {"attempts_failed", ss->attempts_failed},
	    {"dropped_full", ss->dropped_full},
	    {"rejected", ss->rejected},
	    {"dropped_exit", ss->dropped_exit},
	    {"cpu_ms", (unsigned long long)(ru.ru_utime.tv_sec + ru.ru_stime.tv_sec) * 1000 +
			   (unsigned long long)(ru.ru_utime.tv_usec + ru.ru_stime.tv_usec) / 1000},
	    {"maxrss_kb", (unsigned long long)ru.ru_maxrss},
	};

	for (int i = 0; i < PROF_CNT_MAX && len < sizeof(line); i++)
		len +=
		    (size_t)snprintf(line + len, sizeof(line) - len, " %s=%llu",
				     bpfprof_counter_name(i), (unsigned long long)r->counters[i]);
	for (size_t i = 0; i < sizeof(kv) / sizeof(kv[0]) && len < sizeof(line); i++)
		len +=
		    (size_t)snprintf(line + len, sizeof(line) - len, " %s=%llu", kv[i].k, kv[i].v);
	fprintf(stderr, "fleetsym-agent: stats%s\n", line);
}

static void log_to_stderr(enum log_level level, const char *line, void *ctx)
{
	static const char *const names[] = {"error", "warning", "info", "debug"};

	fprintf(stderr, "fleetsym-agent: %s: %s\n", names[level], line);
}

static int open_cgroup(const char *path)
{
	char root[PATH_MAX], full[2 * PATH_MAX];
	int fd = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);

	if (fd < 0 && path[0] == '/' && !cgnames_find_root(root, sizeof(root))) {
		snprintf(full, sizeof(full), "%s%s", root, path);
		fd = open(full, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	}
	return fd;
}

int main(int argc, char **argv)
{
	struct opts o = {0};
	struct run r = {.o = &o};
	struct bpfprof_opts bo = {0};
	struct agg_opts ao = {0};
	struct ship_stats ss = {0};
	struct sigaction sa = {.sa_handler = on_signal};
	char *urls[MAX_SERVERS] = {0};
	int cgfd = -1, err, rc = 1;
	bool have_host = false;

	if (parse_args(argc, argv, &o))
		return 2;
	log_set_sink(log_to_stderr, NULL);
	log_set_level(o.verbose >= 2 ? FS_LOG_DEBUG : o.verbose ? FS_LOG_INFO : FS_LOG_WARN);
	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGTERM, &sa, NULL);
	signal(SIGPIPE, SIG_IGN);
	curl_global_init(CURL_GLOBAL_DEFAULT);

	for (int i = 0; i < o.nlabels; i++)
		have_host |= !strcmp(o.labels[i].key, "host");
	if (!have_host) {
		if (gethostname(o.host, sizeof(o.host) - 1))
			snprintf(o.host, sizeof(o.host), "unknown");
		memmove(&o.labels[1], &o.labels[0], (size_t)o.nlabels * sizeof(o.labels[0]));
		o.labels[0] = (struct label){"host", o.host};
		o.nlabels++;
	}
	if (o.pid && target_gone(o.pid)) {
		fprintf(stderr, "fleetsym-agent: no process %u\n", o.pid);
		goto out;
	}
	if (o.cgroup) {
		cgfd = open_cgroup(o.cgroup);
		if (cgfd < 0) {
			fprintf(stderr, "fleetsym-agent: --cgroup %s: %s\n", o.cgroup,
				strerror(errno));
			goto out;
		}
	}
	if (o.nservers) {
		struct ship_opts so = {
		    .token_file = o.token_file,
		    .queue_size = o.queue_size,
		    /* no longer than an interval: a returning server gets the queue soon */
		    .max_backoff_ms =
			o.interval_s < 30 ? (unsigned int)(o.interval_s * 1000) : 30000,
		};

		for (int i = 0; i < o.nservers; i++) {
			err = ingest_url(&o, o.servers[i], &urls[i]);
			if (err) {
				fprintf(stderr, "fleetsym-agent: building the URL: %s\n",
					err_str(err));
				goto out;
			}
		}
		so.url = urls[0];
		so.more_urls = (const char *const *)urls + 1;
		so.nmore_urls = (size_t)o.nservers - 1;
		err = ship_new(&so, &r.ship);
		if (err) {
			fprintf(stderr, "fleetsym-agent: cannot start shipping: %s\n",
				err_str(err));
			goto out;
		}
	}
	ao.frequency = o.frequency;
	ao.no_kernel = o.no_kernel;
	err = agg_new(&ao, &r.agg);
	if (err) {
		fprintf(stderr, "fleetsym-agent: %s\n", err_str(err));
		goto out;
	}
	bo.frequency = o.frequency;
	bo.pid = o.pid;
	bo.cgroup_fd = cgfd;
	bo.no_kernel = o.no_kernel;
	bo.unwind_rows = (uint32_t)(o.unwind_mb * 1024 * 1024 / sizeof(struct unw_row));
	r.start_real = real_ns();
	err = bpfprof_open(&bo, on_record, &r, &r.bpf);
	if (err) {
		fprintf(stderr, "fleetsym-agent: cannot start sampling: %s\n", err_str(err));
		goto out;
	}
	if (o.unwind_mb) {
		int rows_fd, files_fd;

		err = bpfprof_unwind_maps(r.bpf, &rows_fd, &files_fd);
		if (!err)
			err = unwind_new(rows_fd, files_fd, bo.unwind_rows, &r.unw);
		if (err && err != -ENOTSUP)
			log_msg(FS_LOG_WARN, "table unwinding off: %s", err_str(err));
	}
	log_msg(FS_LOG_INFO, "sampling %d CPUs at %u Hz, ring buffer %zu KiB, %s %s",
		bpfprof_ncpus(r.bpf), o.frequency, bpfprof_ring_size(r.bpf) >> 10,
		o.output ? "writing" : "shipping to", o.output ? o.output : urls[0]);
	rc = run_loop(&r) ? 1 : 0;
out:
	if (r.bpf && bpfprof_counters(r.bpf, r.counters))
		log_msg(FS_LOG_WARN, "reading the BPF counters failed");
	if (r.unw)
		unwind_get_stats(r.unw, &r.us);
	unwind_free(r.unw); /* before the maps it writes go away */
	r.unw = NULL;
	bpfprof_close(r.bpf); /* stop sampling before draining the queue */
	r.bpf = NULL;
	ship_close(r.ship, DRAIN_MS, &ss);
	if (r.agg)
		print_stats(&r, &ss);
	agg_free(r.agg);
	if (cgfd >= 0)
		close(cgfd);
	for (int i = 0; i < o.nservers; i++)
		free(urls[i]);
	curl_global_cleanup();
	return rc;
}
