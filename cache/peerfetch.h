/*
 * peerfetch - ask the other fleetsymd replicas for one build ID's debug file, all at once.
 *
 * Every peer gets GET URL/buildid/ID/debuginfo at the same time (one libcurl multi handle),
 * marked with the header PEERFETCH_HEADER so that the peer answers from its own store only and
 * never fetches on our behalf (no loops, whatever the peer lists: itself, or us). The first
 * complete 200 wins and the others are dropped. Each answer is written to its own temp file,
 * cut off past opts.max_bytes; the caller installs the winner (dstore_put() validates it).
 *
 * No state: which peers are down is the caller's to remember (peerfetch_get() says per peer).
 * Needs curl_global_init() done by the process before any thread starts.
 */
#ifndef FLEETSYM_PEERFETCH_H
#define FLEETSYM_PEERFETCH_H

#include <limits.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>

/* The mark of a request one replica sends another. */
#define PEERFETCH_HEADER "X-Fleetsym-Peer"

#define PEERFETCH_MAX_PEERS 32

struct peerfetch_opts {
	const char *const *urls; /* base URLs (http://host:port), NPEERS of them; borrowed */
	size_t npeers;		 /* at most PEERFETCH_MAX_PEERS */
	const char *token;	 /* sent as "Authorization: Bearer TOKEN"; NULL = none */
	const char *tmp_dir;	 /* where the answers are written (the store's tmp dir) */
	uint64_t max_bytes;	 /* an answer longer than this is dropped; 0 = 4 GiB */
	int timeout_ms;		 /* the whole round; 0 = 30 s */
	int stall_ms;		 /* a peer silent this long (connect, then any byte) is dropped */
	const atomic_int *stop;	 /* non-zero: give up at once (may be NULL) */
};

/* What one peer did with the request. */
enum peerfetch_answer {
	PEERFETCH_SKIPPED, /* not asked (ASK[i] was 0) */
	PEERFETCH_HIT,	   /* 200, complete */
	PEERFETCH_MISS,	   /* 404: it does not have it */
	PEERFETCH_ERROR,   /* unreachable, timed out, another status, or cut short */
	PEERFETCH_DROPPED, /* still answering when another peer's answer won */
	PEERFETCH_TOO_BIG, /* it has a file, longer than opts.max_bytes */
};

/*
 * Ask the peers I with ASK[I] set for BUILD_ID (normalized hex). Returns 1 when one had it:
 * TMP (PATH_MAX) names the file, under opts.tmp_dir, now the caller's (install or unlink it);
 * 0 when none had it; a negative errno when nothing could be asked (out of memory, tmp files).
 * ANSWERS[i] (npeers entries) says what each peer did.
 */
int peerfetch_get(const struct peerfetch_opts *o, const char *build_id, const int *ask,
		  char tmp[PATH_MAX], enum peerfetch_answer *answers)
    __attribute__((warn_unused_result));

#endif
