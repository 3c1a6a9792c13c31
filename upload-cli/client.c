/*
 * client - one curl easy handle reused across requests; responses are read into a capped
 * buffer (only JSON status and error bodies come back); uploads stream from the file.
 */
#include "upload-cli/client.h"

#include "cache/debugstore.h"

#include "lib/err.h"
#include "lib/log.h"

#include <curl/curl.h>
#include <errno.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#define BODY_MAX       (64 * 1024)
#define BACKOFF_MAX_MS 8000

struct client {
	struct client_opts opts;
	CURL *curl;
	char body[BODY_MAX + 1];
	size_t body_len;
	const char *label; /* for the progress callback */
	int bar_drawn;
};

static int curl_ready;

int client_new(const struct client_opts *opts, struct client **out)
{
	struct client *c;

	*out = NULL;
	if (!curl_ready) {
		if (curl_global_init(CURL_GLOBAL_DEFAULT) != 0)
			return -ENOMEM;
		curl_ready = 1;
	}
	c = calloc(1, sizeof(*c));
	if (!c)
		return -ENOMEM;
	c->opts = *opts;
	if (!c->opts.timeout_s)
		c->opts.timeout_s = 300;
	c->curl = curl_easy_init();
	if (!c->curl) {
		free(c);
		return -ENOMEM;
	}
	*out = c;
	return 0;
}

void client_free(struct client *c)
{
	if (!c)
		return;
	curl_easy_cleanup(c->curl);
	free(c);
}

static size_t on_body(char *p, size_t size, size_t n, void *arg)
{
	struct client *c = arg;
	size_t len = size * n, room = BODY_MAX - c->body_len;

	memcpy(c->body + c->body_len, p, len < room ? len : room);
	c->body_len += len < room ? len : room;
	c->body[c->body_len] = '\0';
	return len;
}

static int on_progress(void *arg, curl_off_t dltotal, curl_off_t dlnow, curl_off_t ultotal,
		       curl_off_t ulnow)
{
	struct client *c = arg;

	if (ultotal <= 0)
		return 0;
	c->opts.progress(c->opts.progress_ctx, c->label, (uint64_t)ulnow, (uint64_t)ultotal);
	c->bar_drawn = 1;
	return 0;
}

/* Pull {"error": "..."} (or the raw text) out of the last body into MSG. */
static void body_message(struct client *c, char *msg, size_t msglen)
{
	json_t *j = json_loads(c->body, 0, NULL);
	const char *e = j ? json_string_value(json_object_get(j, "error")) : NULL;

	if (msglen)
		snprintf(msg, msglen, "%s", e ? e : c->body);
	json_decref(j);
}

static int transient(CURLcode rc, long status)
{
	return rc != CURLE_OK || status >= 500;
}

/* Sleep before attempt number ATTEMPT (1-based): 250 ms doubling, capped, times 0.5-1.5. */
static void backoff(int attempt)
{
	long ms = 250L << (attempt - 1 < 5 ? attempt - 1 : 5);
	struct timespec ts;

	if (ms > BACKOFF_MAX_MS)
		ms = BACKOFF_MAX_MS;
	ms = ms / 2 + rand() % (ms + 1);
	ts.tv_sec = ms / 1000;
	ts.tv_nsec = (ms % 1000) * 1000000L;
	nanosleep(&ts, NULL);
}

static struct curl_slist *auth_headers(struct client *c, const char *content_type)
{
	struct curl_slist *h = NULL;
	char line[512];

	if (c->opts.token) {
		snprintf(line, sizeof(line), "Authorization: Bearer %s", c->opts.token);
		h = curl_slist_append(h, line);
	}
	if (content_type) {
		snprintf(line, sizeof(line), "Content-Type: %s", content_type);
		h = curl_slist_append(h, line);
	}
	return h;
}

/* One request with retries. FILE is rewound before each attempt of an upload. */
static int perform(struct client *c, const char *url, FILE *upload, curl_off_t size, long *status,
		   char *msg, size_t msglen)
{
	struct curl_slist *hdrs = auth_headers(c, upload ? "application/octet-stream" : NULL);
	CURLcode rc = CURLE_OK;
	char errbuf[CURL_ERROR_SIZE];

	for (int attempt = 0; attempt <= c->opts.retries; attempt++) {
		if (attempt)
			backoff(attempt);
		curl_easy_reset(c->curl);
		c->body_len = 0;
		c->body[0] = '\0';
		errbuf[0] = '\0';
		curl_easy_setopt(c->curl, CURLOPT_URL, url);
		curl_easy_setopt(c->curl, CURLOPT_HTTPHEADER, hdrs);
		curl_easy_setopt(c->curl, CURLOPT_WRITEFUNCTION, on_body);
		curl_easy_setopt(c->curl, CURLOPT_WRITEDATA, c);
		curl_easy_setopt(c->curl, CURLOPT_ERRORBUFFER, errbuf);
		curl_easy_setopt(c->curl, CURLOPT_TIMEOUT, c->opts.timeout_s);
		curl_easy_setopt(c->curl, CURLOPT_CONNECTTIMEOUT, 10L);
		curl_easy_setopt(c->curl, CURLOPT_NOSIGNAL, 1L);
		if (upload) {
			rewind(upload);
			curl_easy_setopt(c->curl, CURLOPT_UPLOAD, 1L);
			curl_easy_setopt(c->curl, CURLOPT_READDATA, upload);
			curl_easy_setopt(c->curl, CURLOPT_INFILESIZE_LARGE, size);
			if (c->opts.progress && size > (4 << 20)) {
				curl_easy_setopt(c->curl, CURLOPT_NOPROGRESS, 0L);
				curl_easy_setopt(c->curl, CURLOPT_XFERINFOFUNCTION, on_progress);
				curl_easy_setopt(c->curl, CURLOPT_XFERINFODATA, c);
			}
		}
		*status = 0;
		rc = curl_easy_perform(c->curl);
		if (c->bar_drawn) {
			c->opts.progress(c->opts.progress_ctx, c->label, 0, 0);
			c->bar_drawn = 0;
		}
		if (rc == CURLE_OK)
			curl_easy_getinfo(c->curl, CURLINFO_RESPONSE_CODE, status);
		if (!transient(rc, *status))
			break;
		log_msg(FS_LOG_INFO, "%s: %s (attempt %d of %d)", url,
			rc != CURLE_OK ? (errbuf[0] ? errbuf : curl_easy_strerror(rc))
				       : "server error",
			attempt + 1, c->opts.retries + 1);
	}
	curl_slist_free_all(hdrs);
	if (rc != CURLE_OK) {
		snprintf(msg, msglen, "server %s unreachable: %s", c->opts.server,
			 errbuf[0] ? errbuf : curl_easy_strerror(rc));
		return rc == CURLE_OPERATION_TIMEDOUT ? -ETIMEDOUT : -EHOSTUNREACH;
	}
	body_message(c, msg, msglen);
	return 0;
}

/* Quality bits (DSTORE_Q_*) from the status JSON: {"quality": {"dwarf": true, "lines": true,
 * "symtab": true, "pclntab": false}}. */
static unsigned parse_quality(json_t *q)
{
	unsigned bits = 0;

	if (json_is_true(json_object_get(q, "symtab")))
		bits |= DSTORE_Q_SYMTAB;
	if (json_is_true(json_object_get(q, "dwarf")))
		bits |= DSTORE_Q_DWARF;
	if (json_is_true(json_object_get(q, "lines")))
		bits |= DSTORE_Q_LINES;
	if (json_is_true(json_object_get(q, "pclntab")))
		bits |= DSTORE_Q_PCLNTAB;
	return bits;
}

int client_status(struct client *c, const char *build_id, struct remote_status *st, char *msg,
		  size_t msglen)
{
	char url[1024];
	long status;
	json_t *j;
	int err;

	memset(st, 0, sizeof(*st));
	snprintf(url, sizeof(url), "%s/api/v1/debuginfo/%s", c->opts.server, build_id);
	err = perform(c, url, NULL, 0, &status, msg, msglen);
	if (err)
		return err;
	if (status == 404)
		return 0;
	if (status != 200)
		return (int)status;
	j = json_loads(c->body, 0, NULL);
	if (!j) {
		snprintf(msg, msglen, "server answered with something that is not JSON");
		return -ERR_BADINPUT;
	}
	st->present = json_is_true(json_object_get(j, "present"));
	if (st->present)
		st->quality = parse_quality(json_object_get(j, "quality"));
	json_decref(j);
	return 0;
}

int client_put(struct client *c, const char *build_id, const char *path, int force,
	       const char *label, char *msg, size_t msglen)
{
	char url[1024];
	struct stat sb;
	long status;
	FILE *f;
	int err;

	f = fopen(path, "rb");
	if (!f)
		return -errno;
	if (fstat(fileno(f), &sb) < 0) {
		err = -errno;
		fclose(f);
		return err;
	}
	snprintf(url, sizeof(url), "%s/api/v1/debuginfo/%s%s", c->opts.server, build_id,
		 force ? "?force=1" : "");
	c->label = label;
	err = perform(c, url, f, (curl_off_t)sb.st_size, &status, msg, msglen);
	fclose(f);
	return err ? err : (int)status;
}
