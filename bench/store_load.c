/*
 * store_load - synthetic fleet profiles for bench/store.sh, and a keep-alive HTTP client that
 * posts them to fleetsymd's POST /api/v1/ingest.
 *
 *   store_load gen OUT SHARD NSHARDS ELF...   (env: see struct genopts)
 *   store_load post HOST PORT CONNS LIMIT SHARDFILE...
 *
 * gen: agent-like unsymbolized CPU profiles (lib/pprof_builder, gzip'd like agent/agg.c): one
 * mapping per build ID with memory_start 0 and file_offset 0, so a location's address is the
 * file offset in that ELF; no functions, no lines. The ELFs are real files (bench/store.sh
 * compiles them), so the pool of offsets points into their functions and the same data can be
 * symbolized once their debug info is uploaded. The first NSERVICES ELFs are the services'
 * executables (one per service), the rest shared libraries every service uses.
 *   - stacks: per service STACKS/NSERVICES distinct stacks, 20-60 frames, grown as a call tree
 *     (each new stack copies a prefix of an earlier one of its service and adds its own tail),
 *     root frames in the executable, inner frames mixing executable and libraries, leaves
 *     often in libraries; frames drawn from a fixed pool of offsets per ELF with a Zipf-like
 *     bias (hot functions recur);
 *   - a Zipf (s = 1) mix of the service's stacks; each sampled event also picks one of the
 *     host's PIDS worker processes (labels pid = number, comm = the service's name);
 *   - series: NSERIES hosts (labels service, host), NSERVICES services; one profile per series
 *     every 10 s from T0_NS (time_nanos), duration 10 s, PROFILES per series; a host's events
 *     per profile: EVENTS x its load (0.5-1.5) x a slow +-20% wave, each event one period of
 *     19 Hz (value 52631578 ns), aggregated into distinct (stack, labels) samples as the
 *     agent does.
 * Profile i (time order: i / NSERIES is the 10 s step, i % NSERIES the series) goes to shard
 * i % NSHARDS, so shards can be made in parallel. A shard file is a sequence of records:
 * u32 qlen, u32 blen, u32 nsamples, u32 0, the query string, the gzip'd body.
 *
 * post: CONNS threads, each with one keep-alive HTTP/1.1 connection, take the records in
 * time order (interleaving the shards) and post them; every answer must be 200 with
 * "samples":nsamples. LIMIT > 0 posts only the first LIMIT. Prints key=value lines: profiles,
 * samples, bytes, wall seconds, client CPU seconds.
 */
#include "lib/buildid.h"
#include "lib/pprof_builder.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <gelf.h>
#include <libelf.h>
#include <math.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <sys/uio.h>
#include <time.h>
#include <unistd.h>

#define PERIOD_NS 52631578LL /* 19 Hz */
#define MAX_ELFS  16
#define POOL	  1000 /* offsets per ELF */
#define NPIDS_MAX 16

static void die(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	fprintf(stderr, "store_load: ");
	vfprintf(stderr, fmt, ap);
	fprintf(stderr, "\n");
	va_end(ap);
	exit(1);
}

static long envl(const char *name, long def)
{
	const char *s = getenv(name);

	return s && *s ? strtol(s, NULL, 0) : def;
}

/* ---- PRNG (splitmix64) ---- */

static uint64_t rnd_next(uint64_t *s)
{
	uint64_t z = (*s += 0x9e3779b97f4a7c15ULL);

	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
	return z ^ (z >> 31);
}

static double rnd_unit(uint64_t *s)
{
	return (rnd_next(s) >> 11) * (1.0 / 9007199254740992.0);
}

static uint32_t rnd_below(uint64_t *s, uint32_t n)
{
	return (uint32_t)(rnd_unit(s) * n);
}

/* ---- the ELFs: build ID and a pool of offsets inside their functions ---- */

struct elfinfo {
	char path[4096];
	char bid[BUILDID_HEX_MAX];
	uint64_t off[POOL];
};

static void load_elf(struct elfinfo *e, const char *path, uint64_t *rs)
{
	struct {
		uint64_t start, size;
	} *fn = NULL;
	size_t nfn = 0, capfn = 0;
	GElf_Phdr ph[64];
	size_t nph = 0, n;
	Elf_Scn *scn = NULL;
	Elf *elf;
	int fd;

	snprintf(e->path, sizeof(e->path), "%s", path);
	if (buildid_from_path(path, e->bid))
		die("%s: no build ID", path);
	fd = open(path, O_RDONLY);
	if (fd < 0)
		die("%s: %s", path, strerror(errno));
	elf = elf_begin(fd, ELF_C_READ, NULL);
	if (!elf || elf_getphdrnum(elf, &n))
		die("%s: not ELF", path);
	for (size_t i = 0; i < n && nph < 64; i++)
		if (gelf_getphdr(elf, (int)i, &ph[nph]) && ph[nph].p_type == PT_LOAD &&
		    (ph[nph].p_flags & PF_X))
			nph++;
	while ((scn = elf_nextscn(elf, scn))) {
		GElf_Shdr sh;
		Elf_Data *d;

		if (!gelf_getshdr(scn, &sh) || sh.sh_type != SHT_SYMTAB)
			continue;
		d = elf_getdata(scn, NULL);
		for (size_t i = 0; d && i < sh.sh_size / sh.sh_entsize; i++) {
			GElf_Sym sym;

			if (!gelf_getsym(d, (int)i, &sym) ||
			    GELF_ST_TYPE(sym.st_info) != STT_FUNC || sym.st_size < 16 ||
			    sym.st_shndx == SHN_UNDEF)
				continue;
			for (size_t k = 0; k < nph; k++) {
				if (sym.st_value < ph[k].p_vaddr ||
				    sym.st_value + sym.st_size > ph[k].p_vaddr + ph[k].p_filesz)
					continue;
				if (nfn == capfn) {
					capfn = capfn ? capfn * 2 : 256;
					fn = realloc(fn, capfn * sizeof(*fn));
					if (!fn)
						die("out of memory");
				}
				fn[nfn].start = sym.st_value - ph[k].p_vaddr + ph[k].p_offset;
				fn[nfn++].size = sym.st_size;
				break;
			}
		}
	}
	if (nfn < 20)
		die("%s: only %zu functions in its symbol table", path, nfn);
	/* sites inside functions, as return addresses and sampled instructions would be */
	for (size_t i = 0; i < POOL; i++) {
		uint32_t f = rnd_below(rs, (uint32_t)nfn);

		e->off[i] = fn[f].start + 1 + rnd_below(rs, (uint32_t)fn[f].size - 1);
	}
	free(fn);
	elf_end(elf);
	close(fd);
}

/* ---- gen ---- */

struct frame {
	uint16_t elf, site;
};

struct stack {
	struct frame *f; /* root first */
	uint32_t n;
};

struct genopts {
	long nseries, nservices, profiles, events, stacks, npids;
	long long t0_ns;
	uint64_t seed;
};

static struct frame draw_frame(uint64_t *rs, int svc, size_t nelfs, size_t nsvc, int leafish)
{
	struct frame f;
	/* the executable for most inner frames; a library more often near the leaf */
	int lib = nelfs > nsvc && rnd_unit(rs) < (leafish ? 0.6 : 0.25);
	double u = rnd_unit(rs);

	f.elf = lib ? (uint16_t)(nsvc + rnd_below(rs, (uint32_t)(nelfs - nsvc))) : (uint16_t)svc;
	/* Zipf-ish over the pool half of the time (a few hot functions), uniform otherwise */
	if (rnd_unit(rs) < 0.5) {
		double p = pow(1.0 - u, -1.0 / 0.7); /* pareto(0.7) >= 1 */

		f.site = (uint16_t)(p - 1 < POOL - 1 ? p - 1 : POOL - 1);
	} else {
		f.site = (uint16_t)rnd_below(rs, POOL);
	}
	return f;
}

static void make_stacks(const struct genopts *o, size_t nelfs, struct stack **out_st,
			size_t *per_svc)
{
	size_t per = (size_t)(o->stacks / o->nservices);
	struct stack *st = calloc((size_t)o->nservices * per, sizeof(*st));
	uint64_t rs = o->seed * 7919 + 17;

	if (!st || per < 2)
		die("bad STACKS");
	for (long s = 0; s < o->nservices; s++) {
		struct stack *ss = st + s * per;

		for (size_t i = 0; i < per; i++) {
			uint32_t depth = 20 + rnd_below(&rs, 41), keep = 0;

			ss[i].f = malloc(depth * sizeof(struct frame));
			if (!ss[i].f)
				die("out of memory");
			if (i == 0) {
				/* _start / __libc_start_main / main: the first frames of every
				 * stack */
				ss[i].f[0] = (struct frame){(uint16_t)s, 0};
				ss[i].f[1] = (struct frame){
				    (uint16_t)(nelfs > (size_t)o->nservices ? o->nservices : s), 1};
				ss[i].f[2] = (struct frame){(uint16_t)s, 2};
				keep = 3;
			} else {
				const struct stack *p = &ss[rnd_below(&rs, (uint32_t)i)];
				uint32_t hi = (p->n < depth ? p->n : depth) - 1;

				keep = 3 + rnd_below(&rs, hi - 3); /* 3 .. hi - 1: hi >= 19 */
				memcpy(ss[i].f, p->f, keep * sizeof(struct frame));
			}
			for (uint32_t k = keep; k < depth; k++)
				ss[i].f[k] = draw_frame(&rs, (int)s, nelfs, (size_t)o->nservices,
							k + 4 >= depth);
			ss[i].n = depth;
		}
	}
	*out_st = st;
	*per_svc = per;
}

static void put_u32(FILE *f, uint32_t v)
{
	if (fwrite(&v, 4, 1, f) != 1)
		die("write: %s", strerror(errno));
}

static int gen(int argc, char **argv)
{
	struct genopts o = {
	    .nseries = envl("NSERIES", 100),
	    .nservices = envl("NSERVICES", 4),
	    .profiles = envl("PROFILES", 360),
	    .events = envl("EVENTS", 600),
	    .stacks = envl("STACKS", 3000),
	    .npids = envl("PIDS", 4),
	    .t0_ns = (long long)envl("T0_NS", 0),
	    .seed = (uint64_t)envl("SEED", 1),
	};
	static struct elfinfo elfs[MAX_ELFS];
	size_t nelfs = (size_t)argc - 4, per, total = (size_t)(o.nseries * o.profiles);
	long shard, nshards;
	double *cdf, norm = 0;
	uint32_t *cnt;
	uint64_t *locid;
	struct stack *st;
	uint64_t rs = o.seed;
	FILE *out;
	size_t nsamples = 0, nbytes = 0, nprof = 0;

	if (argc < 5)
		die("usage: store_load gen OUT SHARD NSHARDS ELF...");
	shard = strtol(argv[2], NULL, 0);
	nshards = strtol(argv[3], NULL, 0);
	if (nelfs > MAX_ELFS || (long)nelfs < o.nservices || o.nservices < 1 || o.nseries < 1 ||
	    o.npids < 1 || o.npids > NPIDS_MAX || nshards < 1 || shard < 0 || shard >= nshards)
		die("bad arguments");
	if (!o.t0_ns)
		o.t0_ns = ((long long)time(NULL) / 10 * 10 - 3900) * 1000000000LL;
	elf_version(EV_CURRENT);
	for (size_t i = 0; i < nelfs; i++)
		load_elf(&elfs[i], argv[4 + i], &rs);
	make_stacks(&o, nelfs, &st, &per);
	cdf = malloc(per * sizeof(*cdf));
	cnt = malloc(per * (size_t)o.npids * sizeof(*cnt));
	locid = malloc(nelfs * POOL * sizeof(*locid));
	if (!cdf || !cnt || !locid)
		die("out of memory");
	for (size_t i = 0; i < per; i++)
		cdf[i] = (norm += 1.0 / (double)(i + 1));
	for (size_t i = 0; i < per; i++)
		cdf[i] /= norm;
	out = fopen(argv[1], "w");
	if (!out)
		die("%s: %s", argv[1], strerror(errno));

	for (size_t i = (size_t)shard; i < total; i += (size_t)nshards) {
		long ser = (long)(i % (size_t)o.nseries), step = (long)(i / (size_t)o.nseries);
		long svc = ser % o.nservices;
		uint64_t hs = o.seed * 1000003 + (uint64_t)ser, ps = hs * 31 + (uint64_t)step + 1;
		double load = 0.5 + rnd_unit(&hs), phase = 6.283 * rnd_unit(&hs);
		double wave = 1 + 0.2 * sin(6.283 * (double)step / 360.0 + phase);
		long nev = lround((double)o.events * load * wave), mids[MAX_ELFS] = {0};
		struct pprofb *b;
		uint8_t *raw, *gz;
		size_t rawlen, gzlen;
		char query[256], comm[32], mfile[4200];
		int err;

		snprintf(comm, sizeof(comm), "svc%ld", svc);
		snprintf(query, sizeof(query), "service=svc%ld&host=svc%ld-h%02ld", svc, svc,
			 ser / o.nservices);
		if (pprofb_new(NULL, &b) || pprofb_add_sample_type(b, "cpu", "nanoseconds") ||
		    pprofb_set_period(b, "cpu", "nanoseconds", PERIOD_NS))
			die("pprofb_new");
		pprofb_set_time(b, o.t0_ns + step * 10000000000LL, 10000000000LL);
		/* events -> counts per (stack, pid), then one pprof sample per distinct pair, with
		 * the locations interned once per profile (what the agent's builder ends up with)
		 */
		memset(cnt, 0, per * (size_t)o.npids * sizeof(*cnt));
		memset(locid, 0, nelfs * POOL * sizeof(*locid));
		for (long e = 0; e < nev; e++) {
			double u = rnd_unit(&ps);
			size_t lo = 0, hi = per - 1;

			while (lo < hi) {
				size_t mid = (lo + hi) / 2;

				if (cdf[mid] < u)
					lo = mid + 1;
				else
					hi = mid;
			}
			cnt[lo * (size_t)o.npids + rnd_below(&ps, (uint32_t)o.npids)]++;
		}
		for (size_t j = 0; j < per * (size_t)o.npids; j++) {
			const struct stack *sk = &st[svc * (long)per + (long)(j / (size_t)o.npids)];
			struct pprofb_label lab[2];
			uint64_t locs[64];
			int64_t value = PERIOD_NS * cnt[j];

			if (!cnt[j])
				continue;
			for (uint32_t k = 0; k < sk->n; k++) {
				const struct frame *f = &sk->f[sk->n - 1 - k]; /* leaf first */
				uint64_t addr = elfs[f->elf].off[f->site], *lid;

				if (!mids[f->elf]) {
					const char *base = strrchr(elfs[f->elf].path, '/');
					struct pprofb_mapping m = {.build_id = elfs[f->elf].bid};
					uint64_t id;

					snprintf(mfile, sizeof(mfile), "%s%s",
						 f->elf < o.nservices ? "/usr/bin" : "/usr/lib",
						 base ? base : "/x");
					m.filename = mfile;
					if (pprofb_add_mapping(b, &m, &id))
						die("pprofb_add_mapping");
					mids[f->elf] = (long)id;
				}
				lid = &locid[f->elf * POOL + f->site];
				if (!*lid) {
					err = pprofb_extend_mapping(b, (uint64_t)mids[f->elf],
								    (addr | 0xfff) + 1)
						  ?: pprofb_location(b, (uint64_t)mids[f->elf],
								     addr, NULL, 0, lid);
					if (err)
						die("pprofb_location: %d", err);
				}
				locs[k] = *lid;
			}
			lab[0] = (struct pprofb_label){
			    .key = "pid", .num = 1000 + ser * 37 + (long)(j % (size_t)o.npids)};
			lab[1] = (struct pprofb_label){.key = "comm", .str = comm};
			if (pprofb_add_sample(b, locs, sk->n, &value, lab, 2))
				die("pprofb_add_sample");
		}
		if (pprofb_encode(b, &raw, &rawlen) ||
		    pprofb_gzip(raw, rawlen, (size_t)64 << 20, &gz, &gzlen))
			die("encode");
		put_u32(out, (uint32_t)strlen(query));
		put_u32(out, (uint32_t)gzlen);
		put_u32(out, (uint32_t)pprofb_sample_count(b));
		put_u32(out, 0);
		if (fwrite(query, strlen(query), 1, out) != 1 || fwrite(gz, gzlen, 1, out) != 1)
			die("write: %s", strerror(errno));
		nsamples += pprofb_sample_count(b);
		nbytes += gzlen;
		nprof++;
		free(raw);
		free(gz);
		pprofb_free(b);
	}
	if (fclose(out))
		die("%s: %s", argv[1], strerror(errno));
	if (shard == 0)
		for (size_t i = 0; i < nelfs; i++)
			fprintf(stderr, "elf %s %s\n", elfs[i].bid, elfs[i].path);
	printf("profiles=%zu samples=%zu bytes=%zu t0_ns=%lld\n", nprof, nsamples, nbytes, o.t0_ns);
	return 0;
}

/* ---- post ---- */

struct rec {
	const char *query, *body;
	uint32_t qlen, blen, nsamples;
};

static struct {
	struct rec *r;
	size_t n, next;
	pthread_mutex_t mu;
	struct sockaddr_in sa;
	const char *host;
	size_t samples, profiles, bytes;
	int failed;
} P = {.mu = PTHREAD_MUTEX_INITIALIZER};

static int connect_to(void)
{
	int fd = socket(AF_INET, SOCK_STREAM, 0), one = 1;
	struct timeval tv = {.tv_sec = 120};

	if (fd < 0)
		die("socket: %s", strerror(errno));
	setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
	setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
	if (connect(fd, (struct sockaddr *)&P.sa, sizeof(P.sa)))
		die("connect: %s", strerror(errno));
	return fd;
}

static int write_all(int fd, struct iovec *iov, int n)
{
	while (n > 0) {
		ssize_t w = writev(fd, iov, n);

		if (w < 0) {
			if (errno == EINTR)
				continue;
			return -1;
		}
		while (n > 0 && (size_t)w >= iov->iov_len) {
			w -= (ssize_t)iov->iov_len;
			iov++;
			n--;
		}
		if (n > 0) {
			iov->iov_base = (char *)iov->iov_base + w;
			iov->iov_len -= (size_t)w;
		}
	}
	return 0;
}

/* Read one answer: status, and the body into BUF (NUL-terminated, cut at CAP - 1). */
static int read_answer(int fd, char *buf, size_t cap, int *status, int *close_after)
{
	static __thread char in[65536];
	static __thread size_t have;
	char *eoh, *cl;
	size_t hlen, blen, got;

	for (;;) {
		in[have] = 0;
		eoh = strstr(in, "\r\n\r\n");
		if (eoh)
			break;
		if (have >= sizeof(in) - 1)
			return -1;
		ssize_t r = read(fd, in + have, sizeof(in) - 1 - have);

		if (r <= 0)
			return -1;
		have += (size_t)r;
	}
	hlen = (size_t)(eoh - in) + 4;
	*status = atoi(in + 9);
	cl = strcasestr(in, "\r\ncontent-length:");
	if (!cl || cl > eoh)
		return -1; /* fleetsymd answers with Content-Length */
	blen = strtoul(cl + 17, NULL, 10);
	*eoh = 0;
	*close_after = !!strcasestr(in, "\r\nconnection: close");
	*eoh = '\r';
	while (have < hlen + blen) {
		if (have >= sizeof(in) - 1)
			return -1;
		ssize_t r = read(fd, in + have, sizeof(in) - 1 - have);

		if (r <= 0)
			return -1;
		have += (size_t)r;
	}
	got = blen < cap - 1 ? blen : cap - 1;
	memcpy(buf, in + hlen, got);
	buf[got] = 0;
	memmove(in, in + hlen + blen, have - hlen - blen);
	have -= hlen + blen;
	return 0;
}

static void *poster(void *arg)
{
	int fd = connect_to();
	size_t samples = 0, profiles = 0, bytes = 0;

	(void)arg;
	for (;;) {
		struct rec *r;
		char hdr[1024], ans[4096], want[64];
		struct iovec iov[2];
		int status, close_after;
		size_t i;

		pthread_mutex_lock(&P.mu);
		i = P.next < P.n && !P.failed ? P.next++ : (size_t)-1;
		pthread_mutex_unlock(&P.mu);
		if (i == (size_t)-1)
			break;
		r = &P.r[i];
		iov[0].iov_base = hdr;
		iov[0].iov_len = (size_t)snprintf(
		    hdr, sizeof(hdr),
		    "POST /api/v1/ingest?%.*s HTTP/1.1\r\nHost: %s\r\n"
		    "Content-Type: application/octet-stream\r\nContent-Length: %u\r\n\r\n",
		    (int)r->qlen, r->query, P.host, r->blen);
		iov[1].iov_base = (void *)r->body;
		iov[1].iov_len = r->blen;
		if (write_all(fd, iov, 2) ||
		    read_answer(fd, ans, sizeof(ans), &status, &close_after))
			die("record %zu: connection failed (%s)", i, strerror(errno));
		snprintf(want, sizeof(want), "\"samples\":%u", r->nsamples);
		if (status != 200 || !strstr(ans, want)) {
			fprintf(stderr, "store_load: record %zu: status %d: %s (wanted %s)\n", i,
				status, ans, want);
			pthread_mutex_lock(&P.mu);
			P.failed = 1;
			pthread_mutex_unlock(&P.mu);
			break;
		}
		samples += r->nsamples;
		profiles++;
		bytes += r->blen;
		if (close_after) {
			close(fd);
			fd = connect_to();
		}
	}
	close(fd);
	pthread_mutex_lock(&P.mu);
	P.samples += samples;
	P.profiles += profiles;
	P.bytes += bytes;
	pthread_mutex_unlock(&P.mu);
	return NULL;
}

static double now_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + ts.tv_nsec / 1e9;
}

static int post(int argc, char **argv)
{
	int nconns, nsh = argc - 5;
	long limit;
	struct {
		const char *p, *end;
	} sh[64];
	pthread_t th[64];
	size_t cap = 0;
	struct rusage ru;
	double t0, t1, c0;

	if (argc < 6 || nsh > 64)
		die("usage: store_load post HOST PORT CONNS LIMIT SHARDFILE...");
	P.host = argv[1];
	P.sa.sin_family = AF_INET;
	P.sa.sin_port = htons((uint16_t)atoi(argv[2]));
	if (inet_pton(AF_INET, argv[1], &P.sa.sin_addr) != 1)
		die("%s: not an IPv4 address", argv[1]);
	nconns = atoi(argv[3]);
	limit = strtol(argv[4], NULL, 0);
	if (nconns < 1 || nconns > 64)
		die("bad CONNS");
	for (int i = 0; i < nsh; i++) {
		int fd = open(argv[5 + i], O_RDONLY);
		struct stat stt;

		if (fd < 0 || fstat(fd, &stt))
			die("%s: %s", argv[5 + i], strerror(errno));
		sh[i].p = stt.st_size
			      ? mmap(NULL, (size_t)stt.st_size, PROT_READ, MAP_PRIVATE, fd, 0)
			      : NULL;
		if (sh[i].p == MAP_FAILED)
			die("mmap: %s", strerror(errno));
		sh[i].end = sh[i].p + stt.st_size;
		close(fd);
	}
	/* interleave the shards back into time order: record k of shard s is profile k*nsh+s */
	for (int live = 1; live;) {
		live = 0;
		for (int i = 0; i < nsh; i++) {
			uint32_t h[4];

			if (!sh[i].p || sh[i].p + 16 > sh[i].end)
				continue;
			memcpy(h, sh[i].p, 16);
			if (sh[i].p + 16 + h[0] + h[1] > sh[i].end)
				die("%s: truncated", argv[5 + i]);
			if (P.n == cap) {
				cap = cap ? cap * 2 : 4096;
				P.r = realloc(P.r, cap * sizeof(*P.r));
				if (!P.r)
					die("out of memory");
			}
			P.r[P.n++] = (struct rec){.query = sh[i].p + 16,
						  .body = sh[i].p + 16 + h[0],
						  .qlen = h[0],
						  .blen = h[1],
						  .nsamples = h[2]};
			sh[i].p += 16 + h[0] + h[1];
			live = 1;
		}
	}
	if (limit > 0 && (size_t)limit < P.n)
		P.n = (size_t)limit;
	/* touch every page first: the timed part posts from memory, not from the disk */
	{
		volatile char sink = 0;

		for (size_t i = 0; i < P.n; i++)
			for (uint32_t k = 0; k < P.r[i].blen; k += 4096)
				sink ^= P.r[i].body[k];
		(void)sink;
	}
	getrusage(RUSAGE_SELF, &ru);
	c0 = (double)ru.ru_utime.tv_sec + ru.ru_utime.tv_usec / 1e6 + (double)ru.ru_stime.tv_sec +
	     ru.ru_stime.tv_usec / 1e6;
	t0 = now_s();
	for (int i = 0; i < nconns; i++)
		if (pthread_create(&th[i], NULL, poster, NULL))
			die("pthread_create");
	for (int i = 0; i < nconns; i++)
		pthread_join(th[i], NULL);
	t1 = now_s();
	getrusage(RUSAGE_SELF, &ru);
	printf("profiles=%zu samples=%zu bytes=%zu wall_s=%.3f client_cpu_s=%.3f failed=%d\n",
	       P.profiles, P.samples, P.bytes, t1 - t0,
	       (double)ru.ru_utime.tv_sec + ru.ru_utime.tv_usec / 1e6 + (double)ru.ru_stime.tv_sec +
		   ru.ru_stime.tv_usec / 1e6 - c0,
	       P.failed);
	return P.failed;
}

int main(int argc, char **argv)
{
	if (argc > 1 && !strcmp(argv[1], "gen"))
		return gen(argc - 1, argv + 1);
	if (argc > 1 && !strcmp(argv[1], "post"))
		return post(argc - 1, argv + 1);
	die("usage: store_load gen OUT SHARD NSHARDS ELF... | post HOST PORT CONNS LIMIT SHARD...");
	return 1;
}
