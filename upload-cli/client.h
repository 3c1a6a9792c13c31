/*
 * client - fleetsymd's debug-info endpoints over HTTP (libcurl): ask what the server has for a
 * build ID, upload a file. Network errors and 5xx answers are retried with exponential backoff
 * and jitter (bounded in count and time); 4xx answers are final.
 */
#ifndef FLEETSYM_CLIENT_H
#define FLEETSYM_CLIENT_H

#include <stddef.h>
#include <stdint.h>

struct client;

struct client_opts {
	const char *server; /* base URL, e.g. http://127.0.0.1:7070 */
	const char *token;  /* bearer token or NULL */
	int retries;	    /* extra attempts after the first; 0 = none */
	long timeout_s;	    /* per attempt; 0 = 300 */
	/* Called as a large upload (past 4 MiB) goes out, with the bytes SENT of TOTAL, and once
	 * with TOTAL 0 when the attempt ends; NULL = none. The library itself never prints: the
	 * tool draws (upload_main.c's progress bar). LABEL is client_put()'s. */
	void (*progress)(void *ctx, const char *label, uint64_t sent, uint64_t total);
	void *progress_ctx;
};

int client_new(const struct client_opts *opts, struct client **out)
    __attribute__((warn_unused_result));
void client_free(struct client *c);

/* What the server holds for a build ID. QUALITY uses the debugstore bits (1 symtab, 2 DWARF,
 * 4 lines); 0 when absent. */
struct remote_status {
	int present;
	unsigned quality;
};

/* GET /api/v1/debuginfo/BUILD_ID. 0 on an answer (present or not); a negative errno when the
 * server could not be reached or answered 5xx after the retries, or a positive HTTP status for
 * another unexpected answer (401...). MSG gets a message a person can act on. */
int client_status(struct client *c, const char *build_id, struct remote_status *st, char *msg,
		  size_t msglen);

/* PUT the file at PATH as the debug info of BUILD_ID (?force=1 with FORCE), streaming it.
 * Returns the final HTTP status (201, 200, 409, 413, ...) or a negative errno when the server
 * could not be reached after the retries. MSG gets the server's error message, if any. LABEL
 * is handed to the progress callback. */
int client_put(struct client *c, const char *build_id, const char *path, int force,
	       const char *label, char *msg, size_t msglen);

#endif
