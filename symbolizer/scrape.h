/*
 * scrape - fleetsymd pulls CPU profiles from Go services (net/http/pprof), as Parca and
 * Grafana Alloy do: every INTERVAL, GET URL/debug/pprof/profile?seconds=N, and store the
 * pprof under the target's series labels with pstore_ingest_ex(). One thread per target;
 * each fetch has a deadline (N + 30 s) and a size cap (the store's ingest cap); a failed
 * fetch is logged and retried at the next interval.
 *
 * A target is written "URL[,k=v...]": k=v are series labels, except interval=DURATION
 * (default 60s) and seconds=N (default 10, below the interval). The label instance is the
 * URL's host:port unless given; job defaults to "scrape".
 */
#ifndef FLEETSYM_SCRAPE_H
#define FLEETSYM_SCRAPE_H

#include <stddef.h>
#include <stdint.h>

#include "symbolizer/store/profstore.h"

struct scrape;

/* Check target SPEC; 0 or -EINVAL with the reason in ERRBUF. */
int scrape_check(const char *spec, char *errbuf, size_t errlen);

/* Start scraping the N targets of SPECS (checked; borrowed until scrape_stop()) into S, each
 * fetch at most MAX_BYTES. Sets *OUT. */
int scrape_start(struct pstore *s, const char *const *specs, size_t n, uint64_t max_bytes,
		 struct scrape **out) __attribute__((warn_unused_result));

/* Stop every target (a fetch under way is cut short) and free. NULL is a no-op. */
void scrape_stop(struct scrape *sc);

#endif
