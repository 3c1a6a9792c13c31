/*
 * httpd_push - Grafana Pyroscope's push API over the profile store (docs/api.md):
 *   POST /push.v1.PusherService/Push   (the Connect protocol, unary)
 * as Grafana Alloy's pyroscope.write sends it. The body is a PushRequest (lib/pushv1.proto) in
 * the protobuf binary form (Content-Type application/proto) or in protobuf's JSON mapping
 * (application/json). Each series' labels become series labels: names starting "__" are
 * Pyroscope's own (__name__, __delta__) and are dropped, other names keep [A-Za-z0-9_] and get _
 * for anything else, as /ingest names them; empty values are dropped. Each raw sample is a pprof
 * (gzip'd or not) stored through pstore_ingest_ex() as /api/v1/ingest stores it, its ID the
 * idempotency key (a key of this store's charset as is, any other ID by a hash of it), so a
 * push resent after a lost answer stores nothing twice.
 * The whole request is checked (counts, labels, base64) before the first profile is stored; a
 * profile the store refuses stops the push, and the message says how many were stored before.
 * httpd_ingest.c buffers the body, checks the token and writes the Connect answers.
 */
#ifndef FLEETSYM_HTTPD_PUSH_H
#define FLEETSYM_HTTPD_PUSH_H

#include <stddef.h>

#include "symbolizer/store/profstore.h"

/* The most profiles (raw samples over all series) one push may carry. */
#define HTTPD_PUSH_MAX_PROFILES 1024

/* What a push stored. */
struct httpd_push_result {
	size_t profiles;   /* raw samples stored (or already stored: duplicates) */
	size_t duplicates; /* of those, the ones whose ID was already stored */
	size_t rows;	   /* profile rows stored: one per sample type of each */
	size_t samples;	   /* pprof samples over all of them */
};

/* 1 when CONTENT_TYPE names the JSON codec, 0 for the binary one, -1 for neither. */
int httpd_push_codec(const char *content_type);

/* Store the push BODY (LEN bytes, JSON when JSON is set) into S. 0, or a negative errno with the
 * reason in ERRBUF: -ERR_BADINPUT for a malformed request, or what pstore_ingest_ex() returned
 * for the profile that stopped it. RES says what was stored either way. */
int httpd_push_ingest(struct pstore *s, const char *body, size_t len, int json,
		      struct httpd_push_result *res, char *errbuf, size_t errlen)
    __attribute__((warn_unused_result));

#endif
