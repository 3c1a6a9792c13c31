/*
 * httpd_pyro - Grafana Pyroscope's ingest API over the profile store (docs/api.md):
 *   POST /ingest?name=APP{k=v,...}&from=&until=&format=&sampleRate=&spyName=&units=
 *               &aggregationType=
 * format: pprof (the raw body, gzip'd or not, or multipart/form-data with a `profile` part and
 * an optional `sample_type_config`), folded ("a;b;c N" lines) or lines (one stack a line,
 * counted once); jfr is refused. The application name becomes the series label service_name
 * (a trailing Pyroscope type suffix such as ".cpu" dropped), each {k=v} a series label of its
 * own (characters outside [A-Za-z0-9_] become _, as Prometheus names them: otel.scope.name is
 * otel_scope_name), spyName the label pyroscope_spy. Folded and lines bodies become a pprof
 * (lib/pprof_builder) whose sample types follow units and aggregationType as Pyroscope names them,
 * so they are kept apart as our own types are. httpd_ingest.c buffers the body and answers; this
 * module only converts and stores.
 */
#ifndef FLEETSYM_HTTPD_PYRO_H
#define FLEETSYM_HTTPD_PYRO_H

#include <microhttpd.h>
#include <stddef.h>

#include "symbolizer/store/profstore.h"

/* 1 when CONN carries TOKEN as Pyroscope clients send it: 'Authorization: Bearer TOKEN', or
 * basic auth with TOKEN as the password (any user name). */
int httpd_pyro_token_ok(struct MHD_Connection *conn, const char *token);

/* Store the Pyroscope ingest of CONN (its query string and Content-Type) with body BODY (LEN
 * bytes) into S. 0, or a negative errno (-ERR_BADINPUT for bad input, -EPROTONOSUPPORT for
 * jfr) with the reason in ERRBUF. */
int httpd_pyro_ingest(struct pstore *s, struct MHD_Connection *conn, const char *body, size_t len,
		      struct pstore_ingest_info *info, char *errbuf, size_t errlen)
    __attribute__((warn_unused_result));

#endif
