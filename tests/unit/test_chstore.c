/*
 * test_chstore - the ClickHouse backend's parts that need no server: the store URL, the auth
 * file, the row buffers (hex, decimals, growth), the day of a partition, and that an
 * unreachable server is -EBUSY within the connect deadline (what the HTTP layer turns into
 * 503). The rest runs against a real clickhouse-server in tests/run-clickhouse.sh.
 */
#include "tests/t.h"

#include "lib/clock.h"
#include "symbolizer/store/chstore.h"

#include <errno.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

TEST(urls)
{
	struct chstore *c = (struct chstore *)1;

	CHECK(chstore_is_url("clickhouse://127.0.0.1:8123/db"));
	CHECK(!chstore_is_url("sqlite:"));
	CHECK(!chstore_is_url(NULL));
	CHECK_INT(chstore_open("sqlite:", NULL, &c), -EINVAL);
	CHECK(c == NULL);
	CHECK_INT(chstore_open("clickhouse://127.0.0.1:8123", NULL, &c), -EINVAL);
	CHECK_INT(chstore_open("clickhouse://127.0.0.1:8123/", NULL, &c), -EINVAL);
	CHECK_INT(chstore_open("clickhouse:///db", NULL, &c), -EINVAL);
	/* the database name goes into SQL: identifiers only */
	CHECK_INT(chstore_open("clickhouse://127.0.0.1:8123/a;DROP", NULL, &c), -EINVAL);
	CHECK_INT(chstore_open("clickhouse://127.0.0.1:8123/a.b", NULL, &c), -EINVAL);
}

/* A port nothing listens on: bound, then closed. */
static int dead_port(void)
{
	struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
	socklen_t n = sizeof(a);
	int fd = socket(AF_INET, SOCK_STREAM, 0), port;

	if (fd < 0 || bind(fd, (struct sockaddr *)&a, sizeof(a)) ||
	    getsockname(fd, (struct sockaddr *)&a, &n))
		return -1;
	port = ntohs(a.sin_port);
	close(fd);
	return port;
}

TEST(unreachable_is_busy_and_bounded)
{
	char url[128], path[] = "/tmp/test_chstore.XXXXXX";
	struct chstore *c = NULL;
	int port = dead_port(), fd;
	int64_t t0;

	CHECK(port > 0);
	snprintf(url, sizeof(url), "clickhouse://127.0.0.1:%d/db", port);
	t0 = clock_mono_ms();
	CHECK_INT(chstore_open(url, NULL, &c), -EBUSY);
	/* refused at once; in any case within the connect deadline and some slack for load */
	CHECK(clock_mono_ms() - t0 < CHSTORE_CONNECT_MS + 10000);
	CHECK(c == NULL);
	/* an auth file that is missing, or empty */
	CHECK_INT(chstore_open(url, "/nonexistent/auth", &c), -ENOENT);
	fd = mkstemp(path);
	CHECK(fd >= 0);
	close(fd);
	CHECK_INT(chstore_open(url, path, &c), -EINVAL);
	unlink(path);
}

TEST(row_buffers)
{
	struct chbuf b = {0};
	char day[16];
	size_t n;

	chbuf_hex(&b, "A\0\xff", 3);
	chbuf_printf(&b, "\t%d\t", 42);
	chbuf_i64(&b, 0, '\t');
	chbuf_i64(&b, -9223372036854775807LL - 1, '\t');
	chbuf_i64(&b, 9223372036854775807LL, '\n');
	CHECK(!b.err);
	CHECK_STR(b.p, "4100ff\t42\t0\t-9223372036854775808\t9223372036854775807\n");
	n = strlen(b.p);
	CHECK_INT(b.n, n);
	for (int i = 0; i < 10000; i++) /* growth */
		chbuf_raw(&b, "0123456789", 10);
	CHECK(!b.err);
	CHECK_INT(b.n, n + 100000);
	chbuf_free(&b);
	CHECK(b.p == NULL && b.n == 0);
	chstore_day(0, day);
	CHECK_STR(day, "1970-01-01");
	chstore_day((int64_t)1717252200 * 1000000000, day);
	CHECK_STR(day, "2024-06-01");
	chstore_day(-5, day); /* before the epoch: the first day, not garbage */
	CHECK_STR(day, "1970-01-01");
}
