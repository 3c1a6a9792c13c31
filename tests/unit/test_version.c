/*
 * test_version - the --version text and the fleetsym_build_info gauge: the program, version,
 * commit and exactly the libraries asked for, label values escaped, a short buffer refused.
 */
#include "tests/t.h"

#include "lib/version.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

/* version_print() into a string (open_memstream: no temp file). Free with free(). */
static char *printed(const char *prog, unsigned int libs)
{
	char *text = NULL;
	size_t len = 0;
	FILE *f = open_memstream(&text, &len);

	if (!f)
		return NULL;
	version_print(f, prog, libs);
	fclose(f);
	return text;
}

TEST(print_names_program_version_commit)
{
	char *text = printed("fleetsymd", VERSION_LIBS_FLEETSYMD);
	char first[256];

	CHECK(text != NULL);
	t_defer(free, text);
	snprintf(first, sizeof(first), "fleetsymd %s\ncommit %s\nbuilt with ", version_string(),
		 version_commit());
	CHECK(!strncmp(text, first, strlen(first)));
	CHECK(strcmp(version_string(), "") != 0);
	CHECK(strcmp(version_commit(), "") != 0);
	CHECK(strstr(text, "elfutils 0.") != NULL);
	CHECK(strstr(text, "libmicrohttpd ") != NULL);
	CHECK(strstr(text, "sqlite 3.") != NULL);
	CHECK(strstr(text, "zlib ") != NULL);
	CHECK(strstr(text, "libbpf") == NULL); /* fleetsymd does not link it */
	CHECK(text[strlen(text) - 1] == '\n');
}

TEST(print_only_the_libraries_asked_for)
{
	char *agent = printed("fleetsym-agent", VERSION_LIBS_AGENT);
	char *bare = printed("x", 0);
	char want[256];

	CHECK(agent && bare);
	t_defer(free, agent);
	t_defer(free, bare);
	CHECK(strstr(agent, "libbpf 1.") != NULL || strstr(agent, "libbpf 0.") != NULL);
	CHECK(strstr(agent, "libcurl ") != NULL);
	CHECK(strstr(agent, "sqlite") == NULL);
	CHECK(strstr(agent, "libmicrohttpd") == NULL);
	CHECK(strstr(agent, "jansson") == NULL);
	snprintf(want, sizeof(want), "x %s\ncommit %s\n", version_string(), version_commit());
	CHECK_STR(bare, want);
}

TEST(prometheus_gauge)
{
	char buf[512], want[256];
	int n = version_prometheus(buf, sizeof(buf), VERSION_LIBS_FLEETSYMD);
	const char *line;

	CHECK(n > 0);
	CHECK_INT((int)strlen(buf), n);
	CHECK(strstr(buf, "# TYPE fleetsym_build_info gauge\n") != NULL);
	line = strstr(buf, "\nfleetsym_build_info{");
	CHECK(line != NULL);
	snprintf(want, sizeof(want), "{version=\"%s\",commit=\"%s\",elfutils=\"0.",
		 version_string(), version_commit());
	CHECK(strstr(line, want) != NULL);
	CHECK(strstr(line, ",sqlite=\"3.") != NULL);
	CHECK(strstr(line, ",libmicrohttpd=\"") != NULL);
	CHECK(strstr(line, "libbpf") == NULL);
	CHECK(!strcmp(buf + n - 4, "} 1\n"));
	/* every library fits in the 512 bytes the header promises */
	CHECK(version_prometheus(buf, sizeof(buf), ~0u) > 0);
	CHECK(strstr(buf, "libbpf=\"") != NULL && strstr(buf, "libcurl=\"") != NULL);
}

TEST(prometheus_short_buffer)
{
	char buf[64];
	int n;

	memset(buf, 'x', sizeof(buf));
	CHECK_INT(version_prometheus(buf, sizeof(buf), VERSION_LIBS_AGENT), -E2BIG);
	CHECK_STR(buf, "");
	CHECK_INT(version_prometheus(NULL, 0, 0), -E2BIG);
	n = version_prometheus(NULL, 0, 0);
	CHECK(n < 0);
}
