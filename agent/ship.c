/*
 * ship - a ring of queued profiles guarded by one mutex, a condition variable that wakes the
 * sender (new profile, close) and one libcurl easy handle reused across requests (keep-alive).
 *
 * The sender takes the oldest profile out of the queue while sending it; on a retryable
 * failure it goes back at the head, unless the queue filled up meanwhile, in which case it
 * is the oldest and is dropped. So at most queue_size + 1 profiles are held.
 */
#include "agent/ship.h"

#include "lib/err.h"
#include "lib/log.h"

#include <curl/curl.h>
#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>

#define SHIP_TOKEN_MAX	     4096
#define SHIP_BACKOFF_BASE_MS 500
#define SHIP_DEFAULT_QUEUE   16

struct item {
	uint8_t *buf;
	size_t len;
	/* sent as Idempotency-Key with every attempt: a retry after a lost answer is stored
	 * once (fleetsymd remembers keys for an hour) */
	char key[33];
};

struct ship {
	char **urls; /* [0] is ship_opts.url, then more_urls */
	size_t nurls, cur;
	char *token_file;
	char token[SHIP_TOKEN_MAX];
	unsigned int max_backoff_ms, timeout_ms;

	pthread_mutex_t mu;
	pthread_cond_t cv;
	pthread_t thread;
	bool started, closing;
	uint64_t deadline_ns; /* when closing: give up at this time */

	struct item *q;
	size_t cap, head, n;

	CURL *curl;
	uint64_t rng;
	unsigned int failures; /* in a row */
	long last_status;
	struct ship_stats st;
};

static uint64_t mono_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000 + (uint64_t)ts.tv_nsec;
}

static uint64_t rnd(struct ship *s)
{
	s->rng ^= s->rng << 13;
	s->rng ^= s->rng >> 7;
	s->rng ^= s->rng << 17;
	return s->rng;
}

static int read_token(struct ship *s)
{
	FILE *f;
	size_t n;

	if (!s->token_file)
		return 0;
	f = fopen(s->token_file, "re");
	if (!f)
		return -errno;
	n = fread(s->token, 1, sizeof(s->token) - 1, f);
	fclose(f);
	s->token[n] = 0;
	s->token[strcspn(s->token, "\r\n")] = 0;
	return 0;
}

/* Called with mu held. Appends, dropping the oldest when full. */
static void enqueue(struct ship *s, struct item it, bool at_head)
{
	if (s->n == s->cap) {
		if (at_head) {
			free(it.buf); /* the one coming back is the oldest */
			s->st.dropped_full++;
			return;
		}
		free(s->q[s->head].buf);
		s->head = (s->head + 1) % s->cap;
		s->n--;
		s->st.dropped_full++;
	}
	if (at_head) {
		s->head = (s->head + s->cap - 1) % s->cap;
		s->q[s->head] = it;
	} else {
		s->q[(s->head + s->n) % s->cap] = it;
	}
	s->n++;
}

void ship_push(struct ship *s, uint8_t *buf, size_t len)
{
	struct item it = {buf, len, ""};

	pthread_mutex_lock(&s->mu);
	snprintf(it.key, sizeof(it.key), "%016" PRIx64 "%016" PRIx64, rnd(s), rnd(s));
	s->st.pushed++;
	enqueue(s, it, false);
	pthread_cond_signal(&s->cv);
	pthread_mutex_unlock(&s->mu);
}

static int on_progress(void *ctx, curl_off_t dt, curl_off_t dn, curl_off_t ut, curl_off_t un)
{
	struct ship *s = ctx;
	bool give_up;

	pthread_mutex_lock(&s->mu);
	give_up = s->closing && mono_ns() >= s->deadline_ns;
	pthread_mutex_unlock(&s->mu);
	return give_up; /* non-zero aborts the transfer */
}

static size_t discard(char *p, size_t size, size_t n, void *ctx)
{
	return size * n;
}

/* One POST. Returns the HTTP status, or 0 when no answer came (the error is in ERRBUF). */
static long post(struct ship *s, const struct item *it, char *errbuf)
{
	struct curl_slist *h = NULL;
	char auth[SHIP_TOKEN_MAX + 32], key[64];
	long status = 0;
	CURLcode rc;

	h = curl_slist_append(h, "Content-Type: application/octet-stream");
	if (s->token[0]) {
		snprintf(auth, sizeof(auth), "Authorization: Bearer %s", s->token);
		h = curl_slist_append(h, auth);
	}
	h = curl_slist_append(h, "Expect:");
	snprintf(key, sizeof(key), "Idempotency-Key: %s", it->key);
	h = curl_slist_append(h, key);
	curl_easy_setopt(s->curl, CURLOPT_URL, s->urls[s->cur]);
	curl_easy_setopt(s->curl, CURLOPT_HTTPHEADER, h);
	curl_easy_setopt(s->curl, CURLOPT_POSTFIELDS, it->buf);
	curl_easy_setopt(s->curl, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)it->len);
	curl_easy_setopt(s->curl, CURLOPT_ERRORBUFFER, errbuf);
	errbuf[0] = 0;
	rc = curl_easy_perform(s->curl);
	if (rc == CURLE_OK)
		curl_easy_getinfo(s->curl, CURLINFO_RESPONSE_CODE, &status);
	else if (!errbuf[0])
		snprintf(errbuf, CURL_ERROR_SIZE, "%s", curl_easy_strerror(rc));
	curl_easy_setopt(s->curl, CURLOPT_HTTPHEADER, NULL);
	curl_slist_free_all(h);
	return status;
}

static uint64_t backoff_ns(struct ship *s)
{
	uint64_t ms = SHIP_BACKOFF_BASE_MS;
	unsigned int rounds = s->failures / (unsigned int)s->nurls; /* every URL failed */

	for (unsigned int i = 1; i < rounds && ms < s->max_backoff_ms; i++)
		ms *= 2;
	if (ms > s->max_backoff_ms)
		ms = s->max_backoff_ms;
	/* "equal jitter": half fixed, half random, so that a fleet does not retry in step */
	ms = ms / 2 + rnd(s) % (ms / 2 + 1);
	return ms * 1000000;
}

static void timed_wait(struct ship *s, uint64_t until_ns)
{
	struct timespec ts;

	ts.tv_sec = (time_t)(until_ns / 1000000000);
	ts.tv_nsec = (long)(until_ns % 1000000000);
	pthread_cond_timedwait(&s->cv, &s->mu, &ts);
}

/* Called with mu held, around an unlocked POST. */
static void send_one(struct ship *s, uint64_t *next_ns)
{
	char errbuf[CURL_ERROR_SIZE];
	struct item it = s->q[s->head];
	long status;

	s->head = (s->head + 1) % s->cap;
	s->n--;
	pthread_mutex_unlock(&s->mu);
	status = post(s, &it, errbuf);
	pthread_mutex_lock(&s->mu);
	if (status >= 200 && status < 300) {
		if (s->failures)
			log_msg(FS_LOG_INFO, "server reachable again after %u failed attempts",
				s->failures);
		s->failures = 0;
		s->st.sent++;
		s->st.bytes_sent += it.len;
		free(it.buf);
		return;
	}
	if (status >= 400 && status < 500 && status != 408 && status != 429 && status != 401 &&
	    status != 403) {
		if (status != s->last_status)
			log_msg(FS_LOG_WARN, "server refused a profile: HTTP %ld (dropped)",
				status);
		s->last_status = status;
		s->st.rejected++;
		free(it.buf);
		return;
	}
	if (status == 401 || status == 403) {
		log_msg(FS_LOG_WARN, "server answered HTTP %ld: re-reading the token file", status);
		if (read_token(s))
			log_msg(FS_LOG_WARN, "cannot read the token file %s", s->token_file);
	} else if (!s->failures) {
		if (status)
			log_msg(FS_LOG_WARN, "sending a profile: HTTP %ld; retrying with backoff",
				status);
		else
			log_msg(FS_LOG_WARN, "sending a profile: %s; retrying with backoff",
				errbuf);
	}
	s->last_status = status;
	s->failures++;
	s->st.attempts_failed++;
	enqueue(s, it, true);
	s->cur = (s->cur + 1) % s->nurls;
	/* the next URL at once; backoff only when the whole list failed in a row */
	*next_ns = s->failures % s->nurls ? mono_ns() : mono_ns() + backoff_ns(s);
	if (s->closing && !(s->failures % s->nurls))
		s->deadline_ns = 0; /* every server is away: one last round was enough */
}

static void *run(void *arg)
{
	struct ship *s = arg;
	uint64_t next_ns = 0, now;

	pthread_mutex_lock(&s->mu);
	for (;;) {
		now = mono_ns();
		if (s->closing && (!s->n || now >= s->deadline_ns))
			break;
		if (!s->n) {
			pthread_cond_wait(&s->cv, &s->mu);
			continue;
		}
		if (now < next_ns) {
			timed_wait(s, s->closing && s->deadline_ns < next_ns ? s->deadline_ns
									     : next_ns);
			continue;
		}
		send_one(s, &next_ns);
	}
	pthread_mutex_unlock(&s->mu);
	return NULL;
}

static void ship_free(struct ship *s)
{
	while (s->n) {
		free(s->q[s->head].buf);
		s->head = (s->head + 1) % s->cap;
		s->n--;
	}
	if (s->curl)
		curl_easy_cleanup(s->curl);
	pthread_cond_destroy(&s->cv);
	pthread_mutex_destroy(&s->mu);
	free(s->q);
	for (size_t i = 0; s->urls && i < s->nurls; i++)
		free(s->urls[i]);
	free(s->urls);
	free(s->token_file);
	free(s);
}

int ship_new(const struct ship_opts *o, struct ship **out)
{
	pthread_condattr_t ca;
	struct ship *s;
	int err;

	s = calloc(1, sizeof(*s));
	if (!s)
		return -ENOMEM;
	pthread_mutex_init(&s->mu, NULL);
	pthread_condattr_init(&ca);
	pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
	pthread_cond_init(&s->cv, &ca);
	pthread_condattr_destroy(&ca);
	s->cap = o->queue_size ? o->queue_size : SHIP_DEFAULT_QUEUE;
	s->max_backoff_ms = o->max_backoff_ms ? o->max_backoff_ms : 30000;
	s->timeout_ms = o->timeout_ms ? o->timeout_ms : 30000;
	s->q = calloc(s->cap, sizeof(*s->q));
	s->urls = calloc(1 + o->nmore_urls, sizeof(*s->urls));
	s->token_file = o->token_file ? strdup(o->token_file) : NULL;
	if (!s->q || !s->urls || (o->token_file && !s->token_file)) {
		err = -ENOMEM;
		goto out;
	}
	for (s->nurls = 0; s->nurls < 1 + o->nmore_urls; s->nurls++) {
		const char *u = s->nurls ? o->more_urls[s->nurls - 1] : o->url;

		s->urls[s->nurls] = strdup(u);
		if (!s->urls[s->nurls]) {
			err = -ENOMEM;
			goto out;
		}
	}
	if (getrandom(&s->rng, sizeof(s->rng), 0) != sizeof(s->rng) || !s->rng)
		s->rng = mono_ns() | 1;
	err = read_token(s);
	if (err) {
		log_msg(FS_LOG_ERROR, "cannot read the token file %s: %s", o->token_file,
			strerror(-err));
		goto out;
	}
	s->curl = curl_easy_init();
	if (!s->curl) {
		err = -ENOMEM;
		goto out;
	}
	curl_easy_setopt(s->curl, CURLOPT_NOSIGNAL, 1L);
	curl_easy_setopt(s->curl, CURLOPT_CONNECTTIMEOUT_MS, 5000L);
	curl_easy_setopt(s->curl, CURLOPT_TIMEOUT_MS, (long)s->timeout_ms);
	curl_easy_setopt(s->curl, CURLOPT_USERAGENT, "fleetsym-agent/0.1");
	curl_easy_setopt(s->curl, CURLOPT_WRITEFUNCTION, discard);
	curl_easy_setopt(s->curl, CURLOPT_NOPROGRESS, 0L);
	curl_easy_setopt(s->curl, CURLOPT_XFERINFOFUNCTION, on_progress);
	curl_easy_setopt(s->curl, CURLOPT_XFERINFODATA, s);
	curl_easy_setopt(s->curl, CURLOPT_PROTOCOLS_STR, "http,https");
	err = -pthread_create(&s->thread, NULL, run, s);
	if (err)
		goto out;
	s->started = true;
	*out = s;
	return 0;
out:
	ship_free(s);
	return err;
}

void ship_get_stats(struct ship *s, struct ship_stats *st)
{
	pthread_mutex_lock(&s->mu);
	*st = s->st;
	st->queued = s->n;
	pthread_mutex_unlock(&s->mu);
}

void ship_close(struct ship *s, unsigned int drain_ms, struct ship_stats *final)
{
	if (!s)
		return;
	pthread_mutex_lock(&s->mu);
	s->closing = true;
	s->deadline_ns = mono_ns() + (uint64_t)drain_ms * 1000000;
	pthread_cond_signal(&s->cv);
	pthread_mutex_unlock(&s->mu);
	if (s->started)
		pthread_join(s->thread, NULL);
	s->st.dropped_exit += s->n;
	if (final) {
		*final = s->st;
		final->queued = 0;
	}
	ship_free(s);
}
