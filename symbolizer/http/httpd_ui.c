/*
 * httpd_ui - serving the embedded web UI (httpd_ui.h). The table is a handful of entries, so a
 * lookup is a linear scan; the bytes live in the binary's read-only data and are handed to MHD
 * without a copy.
 */
#include "symbolizer/http/httpd_ui.h"

#include <microhttpd.h>
#include <string.h>

/* Scripts and styles only from this origin; inline style attributes are how the flame graph
 * places its boxes; no frames, no plugins, no other hosts. */
#define UI_CSP                                                                                     \
	"default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; "                \
	"img-src 'self' data:; connect-src 'self'; object-src 'none'; base-uri 'self'; "           \
	"frame-ancestors 'none'; form-action 'self'"

static const char *content_type(const char *path)
{
	static const struct {
		const char *ext, *type;
	} types[] = {
	    {".html", "text/html; charset=utf-8"}, {".js", "text/javascript; charset=utf-8"},
	    {".css", "text/css; charset=utf-8"},   {".svg", "image/svg+xml"},
	    {".json", "application/json"},	   {".png", "image/png"},
	};
	const char *dot = strrchr(path, '.');

	for (size_t i = 0; dot && i < sizeof(types) / sizeof(types[0]); i++)
		if (!strcmp(dot, types[i].ext))
			return types[i].type;
	return "application/octet-stream";
}

const struct webui_asset *httpd_ui_find(const char *url)
{
	if (!strcmp(url, "/") || !strcmp(url, "/index.html"))
		url = "/ui/index.html";
	for (size_t i = 0; i < webui_nassets; i++)
		if (!strcmp(webui_assets[i].path, url))
			return &webui_assets[i];
	return NULL;
}

int httpd_ui_route(const char *url)
{
	return !strcmp(url, "/") || !strcmp(url, "/index.html") || !strncmp(url, "/ui/", 4);
}

/* If-None-Match: a list of entity tags, or "*"; weak comparison (RFC 9110 13.1.2). */
static int etag_matches(const char *header, const char *etag)
{
	size_t n = strlen(etag);
	const char *p = header;

	if (!header)
		return 0;
	if (!strcmp(header, "*"))
		return 1;
	while ((p = strstr(p, etag))) {
		char after = p[n];

		if (after == '\0' || after == ',' || after == ' ' || after == '\t')
			return 1;
		p += n;
	}
	return 0;
}

static void add_headers(struct MHD_Response *resp, const struct webui_asset *a)
{
	MHD_add_response_header(resp, MHD_HTTP_HEADER_ETAG, a->etag);
	MHD_add_response_header(resp, MHD_HTTP_HEADER_CACHE_CONTROL, "no-cache");
	MHD_add_response_header(resp, "X-Content-Type-Options", "nosniff");
	MHD_add_response_header(resp, "Referrer-Policy", "no-referrer");
	MHD_add_response_header(resp, "Content-Security-Policy", UI_CSP);
}

enum MHD_Result httpd_ui_serve(struct MHD_Connection *conn, const char *url,
			       struct httpresp_outcome *out)
{
	static const char not_found[] = "{\"error\":\"no such file in the web UI\"}\n";
	const struct webui_asset *a = httpd_ui_find(url);
	struct MHD_Response *resp;
	unsigned code;
	enum MHD_Result ok;
	size_t len;

	if (!a) {
		code = MHD_HTTP_NOT_FOUND;
		len = sizeof(not_found) - 1;
		resp =
		    MHD_create_response_from_buffer(len, (void *)not_found, MHD_RESPMEM_PERSISTENT);
		if (!resp)
			return MHD_NO;
		MHD_add_response_header(resp, MHD_HTTP_HEADER_CONTENT_TYPE, "application/json");
	} else if (etag_matches(MHD_lookup_connection_value(conn, MHD_HEADER_KIND,
							    MHD_HTTP_HEADER_IF_NONE_MATCH),
				a->etag)) {
		code = MHD_HTTP_NOT_MODIFIED;
		len = 0;
		resp = MHD_create_response_from_buffer(0, NULL, MHD_RESPMEM_PERSISTENT);
		if (!resp)
			return MHD_NO;
		add_headers(resp, a);
	} else {
		code = MHD_HTTP_OK;
		len = a->len;
		resp =
		    MHD_create_response_from_buffer(len, (void *)a->data, MHD_RESPMEM_PERSISTENT);
		if (!resp)
			return MHD_NO;
		MHD_add_response_header(resp, MHD_HTTP_HEADER_CONTENT_TYPE, content_type(a->path));
		add_headers(resp, a);
	}
	ok = MHD_queue_response(conn, code, resp);
	MHD_destroy_response(resp);
	if (ok == MHD_YES) {
		out->status = code;
		out->bytes_out = len;
	}
	return ok;
}
