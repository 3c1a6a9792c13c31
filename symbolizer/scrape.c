/*
 * scrape - pull loops over libcurl, one thread per target, into the profile store.
 */
#include "symbolizer/scrape.h"

#include "lib/err.h"
#include "lib/log.h"
#include "lib/parse.h"

#include <curl/curl.h>
#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define MAX_SPEC	 4096
#define DEFAULT_INTERVAL (60LL * 1000000000)
#define DEFAULT_SECONDS	 10
#define GRACE_S		 30 /* past seconds=N, the deadline of one fetch */

struct target {
	char spec[MAX_SPEC + 1]; /* cut into the URL and label strings */
	char url[MAX_SPEC + 64];
	char instance[256];
	struct pstore_label l[PSTORE_MAX_SERIES_LABELS];
	size_t n;
	int64_t interval_ns;
	int seconds;
	pthread_t th;
	int started;
	struct scrape *sc;
};

struct scrape {
	struct pstore *ps;
	uint64_t max_bytes;
	atomic_int stop;
	pthread_mutex_t mu;
	pthread_cond_t cv;
	struct target *t;
	size_t n;
};

static int bad(char *errbuf, size_t errlen, const char *msg, const char *what)
{
	snprintf(errbuf, errlen, "%s: '%.200s'", msg, what);
	return -EINVAL;
}

/* Parse SPEC into T (T->spec holds the strings). */
static int parse_spec(const char *spec, struct target *t, char *errbuf, size_t errlen)
{
	char *p, *next, *host, *end;
	int have_instance = 0, have_job = 0;
	size_t hl;

	if (strlen(spec) > MAX_SPEC)
		return bad(errbuf, errlen, "scrape target too long", "");
	snprintf(t->spec, sizeof(t->spec), "%s", spec);
	t->interval_ns = DEFAULT_INTERVAL;
	t->seconds = DEFAULT_SECONDS;
	p = t->spec;
	next = strchr(p, ',');
	if (next)
		*next++ = '\0';
	if (strncmp(p, "http://", 7) && strncmp(p, "https://", 8))
		return bad(errbuf, errlen, "scrape target must start with http:// or https://", p);
	host = strstr(p, "://") + 3;
	hl = strcspn(host, "/?#");
	if (hl == 0 || hl >= sizeof(t->instance))
		return bad(errbuf, errlen, "scrape target has no host", p);
	memcpy(t->instance, host, hl);
	t->instance[hl] = '\0';
	end = p + strlen(p);
	while (end > host + hl && end[-1] == '/')
		*--end = '\0';
	for (p = next; p; p = next) {
		char *eq;

		next = strchr(p, ',');
		if (next)
			*next++ = '\0';
		eq = strchr(p, '=');
		if (!eq || eq == p)
			return bad(errbuf, errlen, "scrape label is not k=v", p);
		*eq = '\0';
		if (!strcmp(p, "interval")) {
			if (parse_duration(eq + 1, &t->interval_ns) ||
			    t->interval_ns < 1000000000LL)
				return bad(errbuf, errlen,
					   "scrape interval is not a duration >= 1s", eq + 1);
		} else if (!strcmp(p, "seconds")) {
			char *e;
			long v = strtol(eq + 1, &e, 10);

			if (*e || e == eq + 1 || v < 1 || v > 3600)
				return bad(errbuf, errlen, "scrape seconds is not 1..3600", eq + 1);
			t->seconds = (int)v;
		} else {
			if (strspn(p, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ_"
				      "0123456789") != strlen(p) ||
			    (*p >= '0' && *p <= '9') || strlen(p) > PSTORE_MAX_LABEL_NAME)
				return bad(errbuf, errlen,
					   "scrape label name is not [a-zA-Z_][a-zA-Z0-9_]*", p);
			if (t->n + 2 >= PSTORE_MAX_SERIES_LABELS)
				return bad(errbuf, errlen, "too many scrape labels", spec);
			have_instance |= !strcmp(p, "instance");
			have_job |= !strcmp(p, "job");
			t->l[t->n].name = p;
			t->l[t->n++].value = eq + 1;
		}
	}
	if ((int64_t)t->seconds * 1000000000 > t->interval_ns)
		return bad(errbuf, errlen, "scrape seconds must not pass the interval", spec);
	if (!have_instance) {
		t->l[t->n].name = "instance";
		t->l[t->n++].value = t->instance;
	}
	if (!have_job) {
		t->l[t->n].name = "job";
		t->l[t->n++].value = "scrape";
	}
	snprintf(t->url, sizeof(t->url), "%s/debug/pprof/profile?seconds=%d", t->spec, t->seconds);
	return 0;
}

int scrape_check(const char *spec, char *errbuf, size_t errlen)
{
	struct target *t = calloc(1, sizeof(*t));
	int err;

	if (!t)
		return -ENOMEM;
	err = parse_spec(spec, t, errbuf, errlen);
	free(t);
	return err;
}

/* ---- one fetch ---- */

struct buf {
	char *data;
	size_t len, max;
	int too_big;
};

static size_t on_data(char *p, size_t sz, size_t nm, void *cls)
{
	struct buf *b = cls;
	size_t n = sz * nm;
	char *nd;

	if (b->len + n > b->max) {
		b->too_big = 1;
		return 0;
	}
	nd = realloc(b->data, b->len + n);
	if (!nd)
		return 0;
	memcpy(nd + b->len, p, n);
	b->data = nd;
	b->len += n;
	return n;
}

static int on_progress(void *cls, curl_off_t a, curl_off_t b, curl_off_t c, curl_off_t d)
{
	struct scrape *sc = cls;

	return atomic_load(&sc->stop);
}

static void fetch_once(struct target *t)
{
	struct scrape *sc = t->sc;
	struct buf b = {.max = (size_t)sc->max_bytes};
	struct pstore_ingest_info info = {0};
	char msg[512] = "", cerr[CURL_ERROR_SIZE] = "";
	CURL *c = curl_easy_init();
	long code = 0;
	CURLcode rc;
	int err;

	if (!c)
		return;
	curl_easy_setopt(c, CURLOPT_URL, t->url);
	curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
	curl_easy_setopt(c, CURLOPT_TIMEOUT, (long)(t->seconds + GRACE_S));
	curl_easy_setopt(c, CURLOPT_CONNECTTIMEOUT, 10L);
	curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, on_data);
	curl_easy_setopt(c, CURLOPT_WRITEDATA, &b);
	curl_easy_setopt(c, CURLOPT_NOPROGRESS, 0L);
	curl_easy_setopt(c, CURLOPT_XFERINFOFUNCTION, on_progress);
	curl_easy_setopt(c, CURLOPT_XFERINFODATA, sc);
	curl_easy_setopt(c, CURLOPT_ERRORBUFFER, cerr);
	curl_easy_setopt(c, CURLOPT_PROTOCOLS_STR, "http,https");
	rc = curl_easy_perform(c);
	curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &code);
	curl_easy_cleanup(c);
	if (atomic_load(&sc->stop))
		goto out;
	if (rc != CURLE_OK || code != 200) {
		log_msg(FS_LOG_WARN, "event=scrape_failed url=%s status=%ld error=\"%s\"", t->url,
			code,
			b.too_big	 ? "larger than --max-ingest-size"
			: rc == CURLE_OK ? "the answer's status is not 200"
			: cerr[0]	 ? cerr
					 : curl_easy_strerror(rc));
		goto out;
	}
	err = pstore_ingest_ex(sc->ps, t->l, t->n, b.data ? b.data : "", b.len, &info, msg,
			       sizeof(msg));
	if (err)
		log_msg(FS_LOG_WARN, "event=scrape_refused url=%s error=\"%s\"", t->url,
			msg[0] ? msg : err_str(err));
	else
		log_msg(FS_LOG_INFO, "event=scraped url=%s bytes=%zu samples=%zu", t->url, b.len,
			info.samples);
out:
	free(b.data);
}

static void *loop(void *arg)
{
	struct target *t = arg;
	struct scrape *sc = t->sc;
	struct timespec next;

	clock_gettime(CLOCK_MONOTONIC, &next);
	while (!atomic_load(&sc->stop)) {
		fetch_once(t);
		next.tv_sec += (time_t)(t->interval_ns / 1000000000);
		next.tv_nsec += (long)(t->interval_ns % 1000000000);
		if (next.tv_nsec >= 1000000000) {
			next.tv_sec++;
			next.tv_nsec -= 1000000000;
		}
		pthread_mutex_lock(&sc->mu);
		while (!atomic_load(&sc->stop) &&
		       pthread_cond_timedwait(&sc->cv, &sc->mu, &next) != ETIMEDOUT)
			;
		pthread_mutex_unlock(&sc->mu);
	}
	return NULL;
}

int scrape_start(struct pstore *s, const char *const *specs, size_t n, uint64_t max_bytes,
		 struct scrape **out)
{
	struct scrape *sc = calloc(1, sizeof(*sc));
	pthread_condattr_t ca;
	char msg[300];
	int err = 0;

	*out = NULL;
	if (!sc)
		return -ENOMEM;
	sc->ps = s;
	sc->max_bytes = max_bytes;
	pthread_mutex_init(&sc->mu, NULL);
	pthread_condattr_init(&ca);
	pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
	pthread_cond_init(&sc->cv, &ca);
	pthread_condattr_destroy(&ca);
	sc->t = calloc(n ? n : 1, sizeof(*sc->t));
	if (!sc->t) {
		err = -ENOMEM;
		goto fail;
	}
	sc->n = n;
	for (size_t i = 0; i < n && !err; i++) {
		sc->t[i].sc = sc;
		err = parse_spec(specs[i], &sc->t[i], msg, sizeof(msg));
	}
	for (size_t i = 0; i < n && !err; i++) {
		err = -pthread_create(&sc->t[i].th, NULL, loop, &sc->t[i]);
		sc->t[i].started = !err;
	}
	if (err)
		goto fail;
	*out = sc;
	return 0;
fail:
	scrape_stop(sc);
	return err;
}

void scrape_stop(struct scrape *sc)
{
	if (!sc)
		return;
	pthread_mutex_lock(&sc->mu);
	atomic_store(&sc->stop, 1);
	pthread_cond_broadcast(&sc->cv);
	pthread_mutex_unlock(&sc->mu);
	for (size_t i = 0; i < sc->n; i++)
		if (sc->t[i].started)
			pthread_join(sc->t[i].th, NULL);
	pthread_cond_destroy(&sc->cv);
	pthread_mutex_destroy(&sc->mu);
	free(sc->t);
	free(sc);
}
