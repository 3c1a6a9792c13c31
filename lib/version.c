/*
 * version - the build's version, commit and library versions, from compile-time constants only.
 *
 * Headers are included for their version macros alone: nothing here calls a library, so a
 * program that prints these figures links exactly what it linked before. The libraries a
 * program names are chosen by its caller (VERSION_LIBS_* in version.h).
 */
#include "version.h"

#include <bpf/libbpf_version.h>
#include <curl/curlver.h>
#include <elfutils/version.h>
#include <errno.h>
#include <jansson.h>
#include <microhttpd.h>
#include <protobuf-c/protobuf-c.h>
#include <sqlite3.h>
#include <stdarg.h>
#include <zlib.h>

#ifndef FLEETSYM_VERSION
#define FLEETSYM_VERSION "unknown"
#endif
#ifndef FLEETSYM_COMMIT
#define FLEETSYM_COMMIT "unknown"
#endif

#define STR_(x) #x
#define STR(x)	STR_(x)

#define LIB_VERSION_MAX 32

static const struct {
	enum version_lib bit;
	const char *name; /* also the label name in fleetsym_build_info */
} libs_table[] = {
    {VERSION_LIBBPF, "libbpf"},
    {VERSION_ELFUTILS, "elfutils"},
    {VERSION_LIBMICROHTTPD, "libmicrohttpd"},
    {VERSION_SQLITE, "sqlite"},
    {VERSION_ZLIB, "zlib"},
    {VERSION_CURL, "libcurl"},
    {VERSION_PROTOBUF_C, "protobuf_c"},
    {VERSION_JANSSON, "jansson"},
};

const char *version_string(void)
{
	return FLEETSYM_VERSION;
}

const char *version_commit(void)
{
	return FLEETSYM_COMMIT;
}

/* BIT's version as the library spells it, into BUF (LIB_VERSION_MAX bytes). */
static const char *lib_version(enum version_lib bit, char *buf)
{
	switch (bit) {
	case VERSION_LIBBPF: return STR(LIBBPF_MAJOR_VERSION) "." STR(LIBBPF_MINOR_VERSION);
	case VERSION_ELFUTILS:
		/* 188 is 0.188 */
		snprintf(buf, LIB_VERSION_MAX, "%d.%d", _ELFUTILS_VERSION / 1000,
			 _ELFUTILS_VERSION % 1000);
		return buf;
	case VERSION_LIBMICROHTTPD:
		/* 0x00097500 is 0.9.75: one byte each, written in hex digits */
		snprintf(buf, LIB_VERSION_MAX, "%x.%x.%x", (MHD_VERSION >> 24) & 0xff,
			 (MHD_VERSION >> 16) & 0xff, (MHD_VERSION >> 8) & 0xff);
		return buf;
	case VERSION_SQLITE: return SQLITE_VERSION;
	case VERSION_ZLIB: return ZLIB_VERSION;
	case VERSION_CURL: return LIBCURL_VERSION;
	case VERSION_PROTOBUF_C: return PROTOBUF_C_VERSION;
	case VERSION_JANSSON: return JANSSON_VERSION;
	}
	return "unknown";
}

void version_print(FILE *f, const char *prog, unsigned int libs)
{
	char buf[LIB_VERSION_MAX];
	const char *sep = "built with ";

	fprintf(f, "%s %s\ncommit %s\n", prog, FLEETSYM_VERSION, FLEETSYM_COMMIT);
	for (size_t i = 0; i < sizeof(libs_table) / sizeof(libs_table[0]); i++) {
		if (!(libs & libs_table[i].bit))
			continue;
		fprintf(f, "%s%s %s", sep, libs_table[i].name, lib_version(libs_table[i].bit, buf));
		sep = ", ";
	}
	if (libs)
		fputc('\n', f);
}

struct out {
	char *buf;
	size_t size, len;
};

static void put(struct out *o, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void put(struct out *o, const char *fmt, ...)
{
	va_list ap;
	int n;

	va_start(ap, fmt);
	n = vsnprintf(o->buf + (o->len < o->size ? o->len : o->size),
		      o->len < o->size ? o->size - o->len : 0, fmt, ap);
	va_end(ap);
	o->len += n > 0 ? (size_t)n : 0;
}

/* A label value, escaped as the text format wants: \ " and newline. */
static void put_value(struct out *o, const char *s)
{
	put(o, "\"");
	for (; *s; s++) {
		if (*s == '\\' || *s == '"')
			put(o, "\\%c", *s);
		else if (*s == '\n')
			put(o, "\\n");
		else
			put(o, "%c", *s);
	}
	put(o, "\"");
}

int version_prometheus(char *buf, size_t size, unsigned int libs)
{
	struct out o = {.buf = buf, .size = size};
	char v[LIB_VERSION_MAX];

	put(&o, "# HELP fleetsym_build_info The running build: version, git commit and the "
		"versions of the libraries it was built with.\n"
		"# TYPE fleetsym_build_info gauge\n"
		"fleetsym_build_info{version=");
	put_value(&o, FLEETSYM_VERSION);
	put(&o, ",commit=");
	put_value(&o, FLEETSYM_COMMIT);
	for (size_t i = 0; i < sizeof(libs_table) / sizeof(libs_table[0]); i++) {
		if (!(libs & libs_table[i].bit))
			continue;
		put(&o, ",%s=", libs_table[i].name);
		put_value(&o, lib_version(libs_table[i].bit, v));
	}
	put(&o, "} 1\n");
	if (o.len >= size) {
		if (size)
			buf[0] = '\0';
		return -E2BIG;
	}
	return (int)o.len;
}
