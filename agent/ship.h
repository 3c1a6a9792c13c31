/*
 * ship - sends finished profiles to fleetsymd (POST, the gzip'd pprof as the body) from a
 * thread of its own, so that sampling never waits on the network.
 *
 * A bounded queue: pushing onto a full queue drops the oldest profile (counted). Failed
 * sends (no connection, timeouts, 5xx, 408, 429) are retried with exponential backoff and
 * jitter, forever: the agent never stops or exits because the server is away. A 4xx other
 * than those is the server refusing this profile for good: it is dropped (counted).
 * With several URLs, a retryable failure moves on to the next one at once; backoff starts
 * only when every URL failed in a row.
 */
#ifndef FLEETSYM_AGENT_SHIP_H
#define FLEETSYM_AGENT_SHIP_H

#include <stddef.h>
#include <stdint.h>

struct ship;

/* Zero-init means defaults. */
struct ship_opts {
	const char *url;	      /* the whole URL, query included; copied */
	const char *const *more_urls; /* further URLs tried in turn after a retryable failure
				       * (failover between replicas); copied; may be NULL */
	size_t nmore_urls;
	const char *token_file;	     /* bearer token (first line); NULL: none */
	size_t queue_size;	     /* profiles held; 0: 16 */
	unsigned int max_backoff_ms; /* 0: 30000 */
	unsigned int timeout_ms;     /* per request; 0: 30000 */
};

struct ship_stats {
	uint64_t pushed; /* profiles handed over */
	uint64_t sent;	 /* accepted by the server (2xx) */
	uint64_t bytes_sent;
	uint64_t attempts_failed; /* attempts that will be retried */
	uint64_t dropped_full;	  /* dropped: the queue was full (oldest first) */
	uint64_t rejected;	  /* dropped: the server answered 4xx */
	uint64_t dropped_exit;	  /* still queued when the agent stopped */
	size_t queued;		  /* waiting now */
};

/* Start the sending thread. Reads the token file once here (-errno if unreadable) and again
 * after a 401 or 403. Sets *OUT (stop with ship_close()). */
int ship_new(const struct ship_opts *o, struct ship **out) __attribute__((warn_unused_result));

/* Queue BUF (LEN bytes; ownership is transferred, freed with free()). Never blocks on I/O. */
void ship_push(struct ship *s, uint8_t *buf, size_t len);

void ship_get_stats(struct ship *s, struct ship_stats *st);

/* Keep sending for up to DRAIN_MS while anything is queued, then stop the thread and free S;
 * what is left is dropped (counted in dropped_exit). The last stats go to *FINAL (may be
 * NULL). Accepts NULL. */
void ship_close(struct ship *s, unsigned int drain_ms, struct ship_stats *final);

#endif
