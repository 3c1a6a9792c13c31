/*
 * httpd_ui - the web UI's files (symbolizer/webui/), built into fleetsymd, served at "/" (the
 * page) and "/ui/NAME" (its scripts, style and icon).
 *
 * The files become byte arrays at build time (symbolizer/webui/embed.c writes
 * $(BUILD)/gen/webui_assets.c), so the binary needs nothing beside it and the UI never fetches
 * anything from elsewhere. Every answer has a strong ETag computed at build time and
 * "Cache-Control: no-cache": browsers revalidate and get a 304 until the binary changes, so an
 * upgrade is seen at the next load without stale scripts. Responses carry a Content-Security-
 * Policy that allows only this origin.
 */
#ifndef FLEETSYM_HTTPD_UI_H
#define FLEETSYM_HTTPD_UI_H

#include <microhttpd.h>
#include <stddef.h>
#include <stdint.h>

#include "symbolizer/http/httpresp.h"

/* One embedded file. */
struct webui_asset {
	const char *path;	   /* "/ui/app.js" */
	const unsigned char *data; /* LEN bytes, then a NUL */
	size_t len;
	const char *etag; /* quoted, as sent: "\"0123456789abcdef\"" */
};

/* The generated table (webui_assets.c). */
extern const struct webui_asset webui_assets[];
extern const size_t webui_nassets;

/* The asset for URL ("/" and "/index.html" are "/ui/index.html"), or NULL. */
const struct webui_asset *httpd_ui_find(const char *url);

/* Whether URL belongs to the UI: "/", "/index.html", or anything under "/ui/" (a name that is
 * not there gets a 404 from httpd_ui_serve()). */
int httpd_ui_route(const char *url);

/*
 * Queue the answer for URL on CONN (a GET or HEAD): 200 with the file, 304 when the request's
 * If-None-Match names its ETag, 404 otherwise. Sets OUT's status and bytes when queued.
 * Returns MHD_YES, or MHD_NO when the answer could not be queued.
 */
enum MHD_Result httpd_ui_serve(struct MHD_Connection *conn, const char *url,
			       struct httpresp_outcome *out);

#endif
