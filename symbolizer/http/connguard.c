/*
 * connguard - a doubly linked list of the open connections under one mutex, scanned by one
 * watchdog thread every quarter of a second (at most a few thousand entries: the connection
 * cap). An entry holds the connection's socket; the socket stays valid while the entry is
 * listed, because MHD calls the CLOSED notification before it closes the socket, and the
 * notification unlinks the entry under the same mutex as the scan that shuts sockets down.
 */
#include "symbolizer/http/connguard.h"

#include "lib/clock.h"
#include "lib/log.h"

#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <time.h>

#define SCAN_MS 250

struct cg_conn {
	int fd;
	int64_t since_ms; /* when the pending request began; 0: its headers are in */
	int shut;	  /* shut down once already */
	struct cg_conn *prev, *next;
};

struct connguard {
	int64_t timeout_ms;
	pthread_mutex_t lock;
	pthread_cond_t wake;
	int stopping;
	struct cg_conn *head;
	uint64_t open, expired;
	pthread_t thread;
};

static void scan_locked(struct connguard *g, int64_t now)
{
	for (struct cg_conn *c = g->head; c; c = c->next) {
		if (!c->since_ms || c->shut || now - c->since_ms < g->timeout_ms)
			continue;
		/* MHD reads the end of the stream and closes the connection on its own thread */
		shutdown(c->fd, SHUT_RDWR);
		c->shut = 1;
		g->expired++;
	}
}

static void *watchdog(void *arg)
{
	struct connguard *g = arg;
	struct timespec ts;

	pthread_mutex_lock(&g->lock);
	while (!g->stopping) {
		scan_locked(g, clock_mono_ms());
		clock_gettime(CLOCK_MONOTONIC, &ts);
		ts.tv_nsec += SCAN_MS * 1000000L;
		if (ts.tv_nsec >= 1000000000L) {
			ts.tv_sec++;
			ts.tv_nsec -= 1000000000L;
		}
		pthread_cond_timedwait(&g->wake, &g->lock, &ts);
	}
	pthread_mutex_unlock(&g->lock);
	return NULL;
}

int connguard_new(int header_timeout_ms, struct connguard **out)
{
	struct connguard *g;
	pthread_condattr_t ca;
	int err;

	*out = NULL;
	if (header_timeout_ms <= 0)
		return -EINVAL;
	g = calloc(1, sizeof(*g));
	if (!g)
		return -ENOMEM;
	g->timeout_ms = header_timeout_ms;
	pthread_mutex_init(&g->lock, NULL);
	pthread_condattr_init(&ca);
	pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
	pthread_cond_init(&g->wake, &ca);
	pthread_condattr_destroy(&ca);
	err = pthread_create(&g->thread, NULL, watchdog, g);
	if (err) {
		pthread_cond_destroy(&g->wake);
		pthread_mutex_destroy(&g->lock);
		free(g);
		return -err;
	}
	*out = g;
	return 0;
}

void connguard_free(struct connguard *g)
{
	if (!g)
		return;
	pthread_mutex_lock(&g->lock);
	g->stopping = 1;
	pthread_cond_signal(&g->wake);
	pthread_mutex_unlock(&g->lock);
	pthread_join(g->thread, NULL);
	while (g->head) {
		struct cg_conn *c = g->head;

		g->head = c->next;
		free(c);
	}
	pthread_cond_destroy(&g->wake);
	pthread_mutex_destroy(&g->lock);
	free(g);
}

void connguard_notify(void *cls, struct MHD_Connection *conn, void **socket_context,
		      enum MHD_ConnectionNotificationCode code)
{
	struct connguard *g = cls;
	struct cg_conn *c;
	const union MHD_ConnectionInfo *ci;

	if (code == MHD_CONNECTION_NOTIFY_STARTED) {
		ci = MHD_get_connection_info(conn, MHD_CONNECTION_INFO_CONNECTION_FD);
		c = ci ? calloc(1, sizeof(*c)) : NULL;
		*socket_context = c;
		if (!c) {
			log_msg(FS_LOG_WARN,
				"connguard: a connection goes without a header deadline");
			return;
		}
		c->fd = ci->connect_fd;
		c->since_ms = clock_mono_ms();
		pthread_mutex_lock(&g->lock);
		c->next = g->head;
		if (g->head)
			g->head->prev = c;
		g->head = c;
		g->open++;
		pthread_mutex_unlock(&g->lock);
		return;
	}
	c = *socket_context;
	*socket_context = NULL;
	if (!c)
		return;
	pthread_mutex_lock(&g->lock);
	if (c->prev)
		c->prev->next = c->next;
	else
		g->head = c->next;
	if (c->next)
		c->next->prev = c->prev;
	g->open--;
	pthread_mutex_unlock(&g->lock);
	free(c);
}

static void set_since(struct connguard *g, struct MHD_Connection *conn, int64_t since)
{
	const union MHD_ConnectionInfo *ci;
	struct cg_conn *c;

	if (!g)
		return;
	ci = MHD_get_connection_info(conn, MHD_CONNECTION_INFO_SOCKET_CONTEXT);
	c = ci ? ci->socket_context : NULL;
	if (!c)
		return;
	pthread_mutex_lock(&g->lock);
	c->since_ms = since;
	pthread_mutex_unlock(&g->lock);
}

void connguard_headers_done(struct connguard *g, struct MHD_Connection *conn)
{
	set_since(g, conn, 0);
}

void connguard_request_done(struct connguard *g, struct MHD_Connection *conn)
{
	set_since(g, conn, clock_mono_ms());
}

void connguard_counts(struct connguard *g, uint64_t *open, uint64_t *expired)
{
	*open = *expired = 0;
	if (!g)
		return;
	pthread_mutex_lock(&g->lock);
	*open = g->open;
	*expired = g->expired;
	pthread_mutex_unlock(&g->lock);
}
