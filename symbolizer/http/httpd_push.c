/*
 * httpd_push - Pyroscope's push API: a PushRequest (binary or JSON) checked whole into a plan of
 * series and profiles, then each profile stored through pstore_ingest_ex().
 */
#include "symbolizer/http/httpd_push.h"

#include "lib/err.h"
#include "lib/vec.h"

#include "pushv1.pb-c.h"

#include <errno.h>
#include <inttypes.h>
#include <jansson.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#define MAX_LABELS PSTORE_MAX_SERIES_LABELS

struct pprofile {
	const uint8_t *data;
	size_t len;
	char key[130]; /* the idempotency key ("" for none) */
};

struct pseries {
	struct pstore_label l[MAX_LABELS];
	size_t nl;
	size_t first, n; /* its profiles in plan.profiles */
};

struct plan {
	struct pseries *series;
	size_t nseries, capseries;
	struct pprofile *profiles;
	size_t nprofiles, capprofiles;
	char **owned; /* label copies and decoded base64, freed with the plan */
	size_t nowned, capowned;
	json_t *json; /* the JSON document the plan points into */
	char *errbuf;
	size_t errlen;
};

static int bad(struct plan *p, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static int bad(struct plan *p, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(p->errbuf, p->errlen, fmt, ap);
	va_end(ap);
	return -ERR_BADINPUT;
}

static void plan_free(struct plan *p)
{
	for (size_t i = 0; i < p->nowned; i++)
		free(p->owned[i]);
	free(p->owned);
	free(p->series);
	free(p->profiles);
	json_decref(p->json);
}

/* N bytes owned by P (freed with it), or NULL. */
static void *own_alloc(struct plan *p, size_t n)
{
	char *c = malloc(n ? n : 1);

	if (!c || VEC_PUSH(p->owned, p->nowned, p->capowned, c)) {
		free(c);
		return NULL;
	}
	return c;
}

/* A copy of S (N bytes, then a NUL) owned by P, or NULL. */
static char *own(struct plan *p, const char *s, size_t n)
{
	char *c = own_alloc(p, n + 1);

	if (c) {
		memcpy(c, s, n);
		c[n] = '\0';
	}
	return c;
}

int httpd_push_codec(const char *ct)
{
	size_t n;

	if (!ct)
		return -1;
	n = strcspn(ct, "; \t");
	if (n == 17 && !strncasecmp(ct, "application/proto", n))
		return 0;
	if (n == 16 && !strncasecmp(ct, "application/json", n))
		return 1;
	return -1;
}

/* ---- the plan ---- */

static int series_begin(struct plan *p)
{
	struct pseries s = {.first = p->nprofiles};

	return VEC_PUSH(p->series, p->nseries, p->capseries, s);
}

/* Add the label NAME=VALUE to the last series (its name cleaned as /ingest cleans names). */
static int add_label(struct plan *p, const char *name, const char *value)
{
	struct pseries *s = &p->series[p->nseries - 1];
	size_t n = strlen(name);
	char *k;

	if (!strncmp(name, "__", 2) || !*value)
		return 0; /* Pyroscope's own (__name__, __delta__), or nothing to select on */
	if (n == 0 || n > PSTORE_MAX_LABEL_NAME)
		return bad(p, "series %zu: a label name is empty or longer than %d bytes",
			   p->nseries - 1, PSTORE_MAX_LABEL_NAME);
	if (strlen(value) > PSTORE_MAX_LABEL_VALUE)
		return bad(p, "series %zu: the value of label %.64s is longer than %d bytes",
			   p->nseries - 1, name, PSTORE_MAX_LABEL_VALUE);
	if (s->nl >= MAX_LABELS)
		return bad(p, "series %zu has more than %d labels", p->nseries - 1, MAX_LABELS);
	k = own(p, name, n);
	if (!k)
		return -ENOMEM;
	for (char *c = k; *c; c++) /* service.name -> service_name */
		if (!((*c >= 'a' && *c <= 'z') || (*c >= 'A' && *c <= 'Z') ||
		      (*c >= '0' && *c <= '9' && c > k)))
			*c = '_';
	for (size_t i = 0; i < s->nl; i++)
		if (!strcmp(s->l[i].name, k))
			return bad(p, "series %zu: label %.64s is given twice", p->nseries - 1, k);
	s->l[s->nl].name = k;
	s->l[s->nl++].value = value;
	return 0;
}

static int key_char(char c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
	       c == '.' || c == '_' || c == ':' || c == '-';
}

/* Add a profile of DATA (LEN bytes) with the ID ID to the last series. */
static int add_profile(struct plan *p, const uint8_t *data, size_t len, const char *id)
{
	struct pprofile pr = {.data = data, .len = len};
	size_t n = strlen(id), i;

	if (p->nprofiles >= HTTPD_PUSH_MAX_PROFILES)
		return bad(p, "more than %d profiles in one push", HTTPD_PUSH_MAX_PROFILES);
	if (len == 0)
		return bad(p, "series %zu: profile %zu has no raw_profile", p->nseries - 1,
			   p->series[p->nseries - 1].n);
	for (i = 0; i < n && key_char(id[i]); i++)
		;
	if (n && n <= 128 && i == n) {
		memcpy(pr.key, id, n + 1);
	} else if (n) { /* FNV-1a: any other ID still names its profile once */
		uint64_t h = 0xcbf29ce484222325ull;

		for (i = 0; i < n; i++)
			h = (h ^ (uint8_t)id[i]) * 0x100000001b3ull;
		snprintf(pr.key, sizeof(pr.key), "push-id:%016" PRIx64 ":%zu", h, n);
	}
	if (VEC_PUSH(p->profiles, p->nprofiles, p->capprofiles, pr))
		return -ENOMEM;
	p->series[p->nseries - 1].n++;
	return 0;
}

/* ---- binary ---- */

static int plan_proto(struct plan *p, const Push__V1__PushRequest *rq)
{
	int err = 0;

	for (size_t i = 0; !err && i < rq->n_series; i++) {
		const Push__V1__RawProfileSeries *s = rq->series[i];

		err = series_begin(p);
		for (size_t k = 0; !err && k < s->n_labels; k++)
			err = add_label(p, s->labels[k]->name, s->labels[k]->value);
		for (size_t k = 0; !err && k < s->n_samples; k++)
			err = add_profile(p, s->samples[k]->raw_profile.data,
					  s->samples[k]->raw_profile.len, s->samples[k]->id);
	}
	return err;
}

/* ---- JSON (protobuf's JSON mapping) ---- */

static int b64_value(int c)
{
	if (c >= 'A' && c <= 'Z')
		return c - 'A';
	if (c >= 'a' && c <= 'z')
		return c - 'a' + 26;
	if (c >= '0' && c <= '9')
		return c - '0' + 52;
	if (c == '+' || c == '-')
		return 62;
	if (c == '/' || c == '_')
		return 63;
	return -1;
}

/* Decode S (standard or URL-safe base64, padding optional, as protobuf's JSON allows) into a
 * buffer owned by P. */
static int unbase64(struct plan *p, const char *s, const uint8_t **out, size_t *outlen)
{
	size_t n = strlen(s), o = 0;
	uint32_t acc = 0;
	int bits = 0;
	uint8_t *buf;

	while (n && s[n - 1] == '=')
		n--;
	buf = own_alloc(p, n / 4 * 3 + 3);
	if (!buf)
		return -ENOMEM;
	for (size_t i = 0; i < n; i++) {
		int v = b64_value((unsigned char)s[i]);

		if (v < 0)
			return -ERR_BADINPUT;
		acc = acc << 6 | (uint32_t)v;
		bits += 6;
		if (bits >= 8) {
			bits -= 8;
			buf[o++] = (uint8_t)(acc >> bits);
		}
	}
	if (bits >= 6) /* one character left over: no byte is 6 bits */
		return -ERR_BADINPUT;
	*out = buf;
	*outlen = o;
	return 0;
}

/* OBJ's member under its JSON name JNAME or its proto name PNAME (protobuf's JSON takes both). */
static json_t *member(json_t *obj, const char *jname, const char *pname)
{
	json_t *v = json_object_get(obj, jname);

	return v ? v : json_object_get(obj, pname);
}

/* S: a string or absent (""); else NULL. */
static const char *string_or_empty(json_t *s)
{
	return !s || json_is_null(s) ? "" : json_string_value(s);
}

static int plan_json_series(struct plan *p, json_t *s, size_t i)
{
	json_t *labels = member(s, "labels", "labels"), *samples = member(s, "samples", "samples");
	json_t *v;
	size_t k;
	int err;

	if (!json_is_object(s) || (labels && !json_is_array(labels)) ||
	    (samples && !json_is_array(samples)))
		return bad(p, "series %zu is not {\"labels\":[...],\"samples\":[...]}", i);
	err = series_begin(p);
	if (err)
		return err;
	json_array_foreach(labels, k, v)
	{
		const char *name = string_or_empty(json_object_get(v, "name")),
			   *value = string_or_empty(json_object_get(v, "value"));

		if (!json_is_object(v) || !name || !value)
			return bad(p, "series %zu: label %zu is not {\"name\":...,\"value\":...}",
				   i, k);
		err = add_label(p, name, value);
		if (err)
			return err;
	}
	json_array_foreach(samples, k, v)
	{
		const char *raw = string_or_empty(member(v, "rawProfile", "raw_profile")),
			   *id = string_or_empty(member(v, "ID", "id"));
		const uint8_t *data;
		size_t len;

		if (!json_is_object(v) || !raw || !id)
			return bad(p,
				   "series %zu: sample %zu is not {\"rawProfile\":...,\"ID\":...}",
				   i, k);
		err = unbase64(p, raw, &data, &len);
		if (err == -ERR_BADINPUT)
			return bad(p, "series %zu: sample %zu: rawProfile is not base64", i, k);
		if (!err)
			err = add_profile(p, data, len, id);
		if (err)
			return err;
	}
	return err;
}

static int plan_json(struct plan *p, const char *body, size_t len)
{
	json_error_t jerr;
	json_t *series, *s;
	size_t i;
	int err = 0;

	/* the plan points into the document's strings: it goes with the plan */
	p->json = json_loadb(body, len, JSON_REJECT_DUPLICATES, &jerr);
	if (!p->json)
		return bad(p, "the body is not JSON: %s at line %d", jerr.text, jerr.line);
	series = json_object_get(p->json, "series");
	if (!json_is_object(p->json) || (series && !json_is_array(series)))
		return bad(p, "the body is not a PushRequest {\"series\":[...]}");
	json_array_foreach(series, i, s)
	{
		err = plan_json_series(p, s, i);
		if (err)
			break;
	}
	return err;
}

/* ---- storing ---- */

static int store(struct pstore *s, struct plan *p, struct httpd_push_result *res)
{
	for (size_t i = 0; i < p->nseries; i++) {
		const struct pseries *se = &p->series[i];

		for (size_t k = 0; k < se->n; k++) {
			const struct pprofile *pr = &p->profiles[se->first + k];
			struct pstore_ingest_info info = {.key = pr->key[0] ? pr->key : NULL};
			char msg[400] = "";
			int err = pstore_ingest_ex(s, se->l, se->nl, pr->data, pr->len, &info, msg,
						   sizeof(msg));

			if (err) {
				snprintf(p->errbuf, p->errlen,
					 "series %zu, profile %zu: %s (%zu of the push's %zu "
					 "profiles were stored before it; a resend with the same "
					 "IDs stores them once)",
					 i, k, msg[0] ? msg : err_str(err), res->profiles,
					 p->nprofiles);
				return err;
			}
			res->profiles++;
			res->duplicates += info.duplicate != 0;
			res->rows += info.profiles;
			res->samples += info.samples;
		}
	}
	return 0;
}

int httpd_push_ingest(struct pstore *s, const char *body, size_t len, int json,
		      struct httpd_push_result *res, char *errbuf, size_t errlen)
{
	struct plan p = {.errbuf = errbuf, .errlen = errlen};
	Push__V1__PushRequest *rq = NULL;
	int err;

	*res = (struct httpd_push_result){0};
	if (json) {
		err = plan_json(&p, body, len);
	} else {
		rq = push__v1__push_request__unpack(NULL, len, (const uint8_t *)body);
		err = rq ? plan_proto(&p, rq)
			 : bad(&p, "the body is not a protobuf PushRequest (push.v1)");
	}
	if (!err && p.nprofiles == 0)
		err = bad(&p, "the push has no profiles");
	if (!err)
		err = store(s, &p, res);
	plan_free(&p);
	if (rq)
		push__v1__push_request__free_unpacked(rq, NULL);
	return err;
}
