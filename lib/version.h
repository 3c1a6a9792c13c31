/*
 * version - which build this is: version, git commit and the versions of the libraries it was
 * compiled against, for --version and for the fleetsym_build_info gauge in /metrics.
 *
 * The figures are compile-time constants (the Makefile sets FLEETSYM_VERSION and
 * FLEETSYM_COMMIT for version.c only; the libraries' versions come from their headers' macros),
 * so asking for them links no library: the agent can name its libbpf without pulling in
 * sqlite. Each program passes the set of libraries it links (VERSION_LIBS_*).
 */
#ifndef FLEETSYM_VERSION_H
#define FLEETSYM_VERSION_H

#include <stddef.h>
#include <stdio.h>

enum version_lib {
	VERSION_LIBBPF = 1u << 0,
	VERSION_ELFUTILS = 1u << 1, /* libelf, libdw, libdebuginfod: one version */
	VERSION_LIBMICROHTTPD = 1u << 2,
	VERSION_SQLITE = 1u << 3,
	VERSION_ZLIB = 1u << 4,
	VERSION_CURL = 1u << 5,
	VERSION_PROTOBUF_C = 1u << 6,
	VERSION_JANSSON = 1u << 7,
};

/* What each program links (Makefile: LIBS, AGENT_LIBS). */
#define VERSION_LIBS_FLEETSYMD                                                                     \
	(VERSION_ELFUTILS | VERSION_LIBMICROHTTPD | VERSION_SQLITE | VERSION_ZLIB |                \
	 VERSION_PROTOBUF_C | VERSION_JANSSON)
#define VERSION_LIBS_AGENT                                                                         \
	(VERSION_LIBBPF | VERSION_ELFUTILS | VERSION_ZLIB | VERSION_CURL | VERSION_PROTOBUF_C)
#define VERSION_LIBS_UPLOAD    (VERSION_ELFUTILS | VERSION_CURL | VERSION_JANSSON)
#define VERSION_LIBS_SYMBOLIZE (VERSION_ELFUTILS | VERSION_JANSSON)

/* The version ("git describe --always --dirty", a VERSION file, or "unknown") and the full
 * commit ID ("unknown" outside a git checkout). Static strings. */
const char *version_string(void);
const char *version_commit(void);

/* The --version text for PROG, to F:
 *   PROG VERSION
 *   commit COMMIT
 *   built with LIB VERSION, LIB VERSION, ...   (the libraries in LIBS, enum version_lib)
 */
void version_print(FILE *f, const char *prog, unsigned int libs);

/* The fleetsym_build_info gauge (Prometheus text format 0.0.4, HELP and TYPE lines included,
 * ending in a newline) into BUF of SIZE bytes, NUL-terminated:
 *   fleetsym_build_info{version="...",commit="...",elfutils="0.188",...} 1
 * Returns its length, or -E2BIG if SIZE is too small (BUF then holds "" if SIZE > 0). 512
 * bytes are enough for every library. */
int version_prometheus(char *buf, size_t size, unsigned int libs);

#endif
