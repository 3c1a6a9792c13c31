/*
 * test_httpd_ui - the embedded web UI: routing, lookup, the generated table (every asset the
 * page references is embedded, ETags are quoted 64-bit hashes, text assets are NUL-terminated),
 * and that the embedded bytes are the files of symbolizer/webui/ (a stale build would serve an
 * old UI). The HTTP side (Content-Type, 304, 404, 405) is checked by tests/run-webui.sh.
 */
#include "tests/t.h"

#include "symbolizer/http/httpd_ui.h"

#include <ctype.h>

#ifndef WEBUI_DIR
#define WEBUI_DIR "symbolizer/webui"
#endif

TEST(routes)
{
	CHECK(httpd_ui_route("/"));
	CHECK(httpd_ui_route("/index.html"));
	CHECK(httpd_ui_route("/ui/app.js"));
	CHECK(httpd_ui_route("/ui/nothing"));
	CHECK(!httpd_ui_route("/ui"));
	CHECK(!httpd_ui_route("/api/v1/query"));
	CHECK(!httpd_ui_route("/metrics"));
	CHECK(!httpd_ui_route(""));
}

TEST(find)
{
	const struct webui_asset *a = httpd_ui_find("/");

	CHECK(a != NULL);
	CHECK_STR(a->path, "/ui/index.html");
	CHECK(httpd_ui_find("/index.html") == a);
	CHECK(httpd_ui_find("/ui/index.html") == a);
	CHECK(httpd_ui_find("/ui/app.js") != NULL);
	CHECK(httpd_ui_find("/ui/flame.js") != NULL);
	CHECK(httpd_ui_find("/ui/app.css") != NULL);
	CHECK(httpd_ui_find("/ui/favicon.svg") != NULL);
	CHECK(httpd_ui_find("/ui/") == NULL);
	CHECK(httpd_ui_find("/ui/../Makefile") == NULL);
	CHECK(httpd_ui_find("/ui/embed.c") == NULL); /* the generator is not served */
	CHECK(httpd_ui_find("/ui/APP.JS") == NULL);
}

TEST(table)
{
	CHECK(webui_nassets >= 5);
	for (size_t i = 0; i < webui_nassets; i++) {
		const struct webui_asset *a = &webui_assets[i];

		CHECK(!strncmp(a->path, "/ui/", 4));
		CHECK(a->len > 0);
		CHECK_INT(a->data[a->len], 0);
		CHECK_INT(strlen(a->etag), 18);
		CHECK(a->etag[0] == '"' && a->etag[17] == '"');
		for (int k = 1; k < 17; k++)
			CHECK(isxdigit((unsigned char)a->etag[k]));
		for (size_t j = 0; j < i; j++)
			CHECK(strcmp(webui_assets[j].etag, a->etag) != 0);
	}
}

/* Every "ui/NAME" the page loads is embedded. */
TEST(page_references)
{
	const struct webui_asset *page = httpd_ui_find("/");
	const char *p = (const char *)page->data;
	int n = 0;

	while ((p = strstr(p, "\"ui/"))) {
		char path[128] = "/";
		size_t len = strcspn(p + 1, "\"");

		CHECK(len < sizeof(path) - 1);
		memcpy(path + 1, p + 1, len);
		path[len + 1] = '\0';
		if (!httpd_ui_find(path))
			T_FAIL_("index.html loads %s, which is not embedded", path);
		n++;
		p += len + 1;
	}
	CHECK(n >= 4);
}

/* The binary serves the files as they are in the source tree. */
TEST(same_as_source)
{
	for (size_t i = 0; i < webui_nassets; i++) {
		const struct webui_asset *a = &webui_assets[i];
		char path[512], *buf;
		FILE *f;
		long len;

		snprintf(path, sizeof(path), "%s/%s", WEBUI_DIR, a->path + 4);
		f = fopen(path, "rb");
		if (!f)
			T_FAIL_("%s: not found (run from the top of the tree)", path);
		fseek(f, 0, SEEK_END);
		len = ftell(f);
		rewind(f);
		buf = malloc((size_t)len + 1);
		CHECK(buf && fread(buf, 1, (size_t)len, f) == (size_t)len);
		fclose(f);
		if ((size_t)len != a->len || memcmp(buf, a->data, a->len)) {
			free(buf);
			T_FAIL_("%s differs from the embedded copy: rebuild (make)", path);
		}
		free(buf);
	}
}
