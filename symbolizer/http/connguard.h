/*
 * connguard - a deadline on request headers, which libmicrohttpd 0.9.75 does not have.
 *
 * MHD's connection timeout restarts on every byte, so a client that trickles one header line
 * every few seconds holds its connection for ever (slowloris). connguard keeps every
 * connection (from MHD_OPTION_NOTIFY_CONNECTION) with the time its current request began: when
 * it was accepted, or when its previous request on a kept-alive connection ended. A watchdog
 * thread shuts down the socket of any connection whose headers are not complete within the
 * deadline; MHD then sees the end of the stream and closes the connection itself. So an idle
 * kept-alive connection also ends after the deadline. Bodies and answers are not limited here.
 */
#ifndef FLEETSYM_CONNGUARD_H
#define FLEETSYM_CONNGUARD_H

#include <microhttpd.h>
#include <stdint.h>

struct connguard;

/* Start the watchdog; HEADER_TIMEOUT_MS > 0. Sets *OUT (free with connguard_free()). */
int connguard_new(int header_timeout_ms, struct connguard **out)
    __attribute__((warn_unused_result));

/* Stop the watchdog and free. Call after MHD_stop_daemon() (every connection closed). */
void connguard_free(struct connguard *g);

/* MHD's MHD_OPTION_NOTIFY_CONNECTION callback; CLS is the connguard. */
void connguard_notify(void *cls, struct MHD_Connection *conn, void **socket_context,
		      enum MHD_ConnectionNotificationCode code);

/* CONN's request headers are complete (the access handler's first call): no deadline. */
void connguard_headers_done(struct connguard *g, struct MHD_Connection *conn);

/* CONN's request ended: the next request's headers are due within the deadline from now. */
void connguard_request_done(struct connguard *g, struct MHD_Connection *conn);

/* Connections tracked now; connections closed for a late header (since start). */
void connguard_counts(struct connguard *g, uint64_t *open, uint64_t *expired);

#endif
