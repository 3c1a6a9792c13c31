/*
 * httpresp - MHD_create_response_from_buffer + headers + MHD_queue_response, the JSON variant
 * with its "answer too large" fallback, and the small readers of a request every route needs.
 */
#include "symbolizer/http/httpresp.h"

#include "lib/jsonw.h"

#include "lib/err.h"
#include "lib/log.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

enum MHD_Result httpresp_queue(struct MHD_Connection *conn, unsigned status, char *buf, size_t len,
			       const char *ctype, const char *const *hdrs,
			       struct httpresp_outcome *out)
{
	struct MHD_Response *resp;
	enum MHD_Result ok;

	resp = MHD_create_response_from_buffer(len, buf, MHD_RESPMEM_MUST_FREE);
	if (!resp) {
		free(buf);
		return MHD_NO;
	}
	MHD_add_response_header(resp, MHD_HTTP_HEADER_CONTENT_TYPE, ctype);
	for (; hdrs && hdrs[0]; hdrs += 2)
		MHD_add_response_header(resp, hdrs[0], hdrs[1]);
	ok = MHD_queue_response(conn, status, resp);
	MHD_destroy_response(resp);
	if (ok == MHD_YES) {
		out->status = status;
		out->bytes_out = len;
	}
	return ok;
}

enum MHD_Result httpresp_json(struct MHD_Connection *conn, unsigned status, struct jsonw *w,
			      const char *too_large, const char *const *hdrs,
			      struct httpresp_outcome *out)
{
	struct jsonw e = {0};
	char *buf;
	size_t len;
	int err;

	jsonw_raw(w, "\n", 1);
	err = jsonw_finish(w, &buf, &len);
	if (!err)
		return httpresp_queue(conn, status, buf, len, "application/json", hdrs, out);
	log_msg(FS_LOG_WARN, "answer not built: %s", err_str(err));
	httpresp_error_body(&e, too_large, NULL);
	jsonw_lit(&e, "\n");
	if (jsonw_finish(&e, &buf, &len))
		return MHD_NO;
	return httpresp_queue(conn, err == -E2BIG ? 413 : 500, buf, len, "application/json", hdrs,
			      out);
}

void httpresp_error_body(struct jsonw *w, const char *msg, const char *build_id)
{
	jsonw_lit(w, "{");
	jsonw_key(w, "error");
	jsonw_str(w, msg);
	if (build_id && build_id[0]) {
		jsonw_lit(w, ",");
		jsonw_key(w, "build_id");
		jsonw_str(w, build_id);
	}
	jsonw_lit(w, "}");
}

void httpresp_error_vbody(struct jsonw *w, const char *build_id, struct httpresp_outcome *out,
			  const char *fmt, va_list ap)
{
	char msg[1024];

	vsnprintf(msg, sizeof(msg), fmt, ap);
	httpresp_error_body(w, msg, build_id);
	if (!out->result)
		out->result = "error";
}

const char *httpresp_arg(struct MHD_Connection *conn, const char *name)
{
	const char *v = MHD_lookup_connection_value(conn, MHD_GET_ARGUMENT_KIND, name);

	return v && *v ? v : NULL;
}

int httpresp_content_length(struct MHD_Connection *conn, uint64_t *len)
{
	const char *s =
	    MHD_lookup_connection_value(conn, MHD_HEADER_KIND, MHD_HTTP_HEADER_CONTENT_LENGTH);
	char *end;

	if (!s)
		return -ENOENT;
	errno = 0;
	*len = strtoull(s, &end, 10);
	return errno || end == s ? -EINVAL : 0;
}

int httpresp_body_append(struct httpresp_body *b, const char *data, size_t len, size_t max)
{
	if (len > max - b->len)
		return -E2BIG;
	if (b->len + len + 1 > b->cap) {
		size_t cap = b->cap ? b->cap : 4096;
		char *nb;

		while (cap < b->len + len + 1)
			cap *= 2;
		if (cap > max + 1)
			cap = max + 1;
		nb = realloc(b->data, cap);
		if (!nb)
			return -ENOMEM;
		b->data = nb;
		b->cap = cap;
	}
	memcpy(b->data + b->len, data, len);
	b->len += len;
	b->data[b->len] = '\0';
	return 0;
}

/* Constant-time in the contents of the expected token (only its length can leak). */
int httpresp_token_eq(const char *given, size_t len, const char *expected)
{
	size_t el = strlen(expected);
	unsigned char diff = 0;

	for (size_t i = 0; i < el; i++)
		diff |= (unsigned char)expected[i] ^ (unsigned char)(i < len ? given[i] : 0);
	return diff == 0 && len == el;
}

int httpresp_token_ok(struct MHD_Connection *conn, const char *expected)
{
	const char *auth =
	    MHD_lookup_connection_value(conn, MHD_HEADER_KIND, MHD_HTTP_HEADER_AUTHORIZATION);
	static const char scheme[] = "Bearer ";
	size_t gl;

	if (!auth || strncasecmp(auth, scheme, sizeof(scheme) - 1) != 0)
		return 0;
	auth += sizeof(scheme) - 1;
	while (*auth == ' ')
		auth++;
	gl = strlen(auth);
	while (gl > 0 && (auth[gl - 1] == ' ' || auth[gl - 1] == '\t'))
		gl--;
	return httpresp_token_eq(auth, gl, expected);
}
