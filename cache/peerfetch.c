/*
 * peerfetch - one round of asking the replicas for a build ID (see peerfetch.h).
 *
 * One easy handle per peer asked, all in one multi handle, driven by this thread alone until
 * the first complete 200, the end of every transfer, the round's deadline or the stop flag.
 * A stopped peer (SIGSTOP, a hung host) accepts the connection in its kernel and then says
 * nothing: the low-speed limit (less than a byte a second for stall_ms) drops it long before
 * the round's deadline.
 */
#include "cache/peerfetch.h"

#include "lib/clock.h"
#include "lib/log.h"

#include <curl/curl.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define DEFAULT_MAX_BYTES  ((uint64_t)4 << 30)
#define DEFAULT_TIMEOUT_MS 30000
#define DEFAULT_STALL_MS   5000
#define POLL_MS		   100
#define HDR_MAX		   (4096 + 64)

/* One peer's transfer. */
struct xfer {
	CURL *c;
	int fd;
	char path[PATH_MAX];
	uint64_t bytes, max;
	int too_big;
};

static size_t on_data(char *p, size_t size, size_t n, void *arg)
{
	struct xfer *x = arg;
	size_t len = size * n, done = 0;

	if (x->bytes + len > x->max) {
		x->too_big = 1;
		return 0; /* curl ends the transfer with CURLE_WRITE_ERROR */
	}
	while (done < len) {
		ssize_t w = write(x->fd, p + done, len - done);

		if (w < 0 && errno == EINTR)
			continue;
		if (w <= 0)
			return 0;
		done += (size_t)w;
	}
	x->bytes += len;
	return len;
}

static int xfer_open(struct xfer *x, const struct peerfetch_opts *o, const char *base,
		     const char *bid, struct curl_slist *hdrs)
{
	char url[2048];
	size_t blen = strlen(base);
	int stall_ms = o->stall_ms > 0 ? o->stall_ms : DEFAULT_STALL_MS;

	while (blen > 0 && base[blen - 1] == '/')
		blen--;
	if (snprintf(url, sizeof(url), "%.*s/buildid/%s/debuginfo", (int)blen, base, bid) >=
	    (int)sizeof(url))
		return -ENAMETOOLONG;
	if (snprintf(x->path, sizeof(x->path), "%s/peer-XXXXXX", o->tmp_dir) >= PATH_MAX)
		return -ENAMETOOLONG;
	x->fd = mkstemp(x->path);
	if (x->fd < 0) {
		x->path[0] = '\0';
		return -errno;
	}
	x->max = o->max_bytes ? o->max_bytes : DEFAULT_MAX_BYTES;
	x->c = curl_easy_init();
	if (!x->c)
		return -ENOMEM;
	curl_easy_setopt(x->c, CURLOPT_URL, url);
	curl_easy_setopt(x->c, CURLOPT_PROTOCOLS_STR, "http,https");
	curl_easy_setopt(x->c, CURLOPT_NOSIGNAL, 1L);
	curl_easy_setopt(x->c, CURLOPT_HTTPHEADER, hdrs);
	curl_easy_setopt(x->c, CURLOPT_WRITEFUNCTION, on_data);
	curl_easy_setopt(x->c, CURLOPT_WRITEDATA, x);
	curl_easy_setopt(x->c, CURLOPT_MAXFILESIZE_LARGE, (curl_off_t)x->max);
	curl_easy_setopt(x->c, CURLOPT_TIMEOUT_MS,
			 (long)(o->timeout_ms > 0 ? o->timeout_ms : DEFAULT_TIMEOUT_MS));
	curl_easy_setopt(x->c, CURLOPT_CONNECTTIMEOUT_MS, (long)stall_ms);
	curl_easy_setopt(x->c, CURLOPT_LOW_SPEED_LIMIT, 1L);
	curl_easy_setopt(x->c, CURLOPT_LOW_SPEED_TIME, (long)((stall_ms + 999) / 1000));
	curl_easy_setopt(x->c, CURLOPT_PRIVATE, x);
	return 0;
}

/* Close X; its file is unlinked unless KEEP. */
static void xfer_close(struct xfer *x, CURLM *m, int keep)
{
	if (x->c) {
		curl_multi_remove_handle(m, x->c);
		curl_easy_cleanup(x->c);
	}
	if (x->fd >= 0)
		close(x->fd);
	if (x->path[0] && !keep)
		unlink(x->path);
}

/* What transfer X, just finished with RC, says. */
static enum peerfetch_answer xfer_answer(struct xfer *x, CURLcode rc, const char *base,
					 const char *bid)
{
	long code = 0;

	curl_easy_getinfo(x->c, CURLINFO_RESPONSE_CODE, &code);
	if (rc == CURLE_OK && code == 200)
		return PEERFETCH_HIT;
	if (rc == CURLE_OK && code == 404)
		return PEERFETCH_MISS;
	log_msg(FS_LOG_INFO, "peerfetch: %s for %s: %s%s (HTTP %ld)", base, bid,
		curl_easy_strerror(rc), x->too_big ? ", over the size limit" : "", code);
	if (x->too_big || rc == CURLE_FILESIZE_EXCEEDED)
		return PEERFETCH_TOO_BIG;
	return PEERFETCH_ERROR;
}

/* Drive M until a hit (its index), no transfer left (-1), or the deadline or stop (-1). */
static int drive(CURLM *m, struct xfer *xs, const struct peerfetch_opts *o, const char *bid,
		 enum peerfetch_answer *answers, int64_t deadline)
{
	int running = 1;

	while (running) {
		CURLMsg *msg;
		int left;

		if (curl_multi_perform(m, &running) != CURLM_OK)
			return -1;
		while ((msg = curl_multi_info_read(m, &left))) {
			struct xfer *x = NULL;
			size_t i;

			if (msg->msg != CURLMSG_DONE)
				continue;
			curl_easy_getinfo(msg->easy_handle, CURLINFO_PRIVATE, (char **)&x);
			i = (size_t)(x - xs);
			answers[i] = xfer_answer(x, msg->data.result, o->urls[i], bid);
			if (answers[i] == PEERFETCH_HIT)
				return (int)i;
		}
		if (!running || clock_mono_ms() >= deadline || (o->stop && atomic_load(o->stop)))
			break;
		curl_multi_poll(m, NULL, 0, POLL_MS, NULL);
	}
	return -1;
}

static struct curl_slist *make_headers(const char *token)
{
	struct curl_slist *h = curl_slist_append(NULL, PEERFETCH_HEADER ": 1"), *t;
	char auth[HDR_MAX];

	if (!h || !token)
		return h;
	if (snprintf(auth, sizeof(auth), "Authorization: Bearer %s", token) >= (int)sizeof(auth) ||
	    !(t = curl_slist_append(h, auth))) {
		curl_slist_free_all(h);
		return NULL;
	}
	return t;
}

int peerfetch_get(const struct peerfetch_opts *o, const char *build_id, const int *ask,
		  char tmp[PATH_MAX], enum peerfetch_answer *answers)
{
	struct xfer xs[PEERFETCH_MAX_PEERS];
	struct curl_slist *hdrs = NULL;
	CURLM *m = NULL;
	size_t n = o->npeers < PEERFETCH_MAX_PEERS ? o->npeers : PEERFETCH_MAX_PEERS;
	int64_t deadline;
	int err = 0, won = -1;

	memset(xs, 0, sizeof(xs));
	for (size_t i = 0; i < n; i++) {
		xs[i].fd = -1;
		answers[i] = PEERFETCH_SKIPPED;
	}
	deadline = clock_mono_ms() + (o->timeout_ms > 0 ? o->timeout_ms : DEFAULT_TIMEOUT_MS);
	m = curl_multi_init();
	hdrs = make_headers(o->token);
	if (!m || !hdrs) {
		err = -ENOMEM;
		goto out;
	}
	for (size_t i = 0; i < n; i++) {
		if (!ask[i])
			continue;
		err = xfer_open(&xs[i], o, o->urls[i], build_id, hdrs);
		if (!err && curl_multi_add_handle(m, xs[i].c) != CURLM_OK)
			err = -ENOMEM;
		if (err)
			goto out;
		answers[i] = PEERFETCH_DROPPED; /* until it finishes */
	}
	won = drive(m, xs, o, build_id, answers, deadline);
	for (size_t i = 0; i < n; i++)
		if (answers[i] == PEERFETCH_DROPPED && (int)i != won && clock_mono_ms() >= deadline)
			answers[i] = PEERFETCH_ERROR; /* out of time: as good as down */
	if (won >= 0)
		snprintf(tmp, PATH_MAX, "%s", xs[won].path);
out:
	for (size_t i = 0; i < n; i++)
		xfer_close(&xs[i], m, (int)i == won);
	curl_multi_cleanup(m);
	curl_slist_free_all(hdrs);
	if (err)
		return err;
	return won >= 0;
}
