/*
 * buildid - the NT_GNU_BUILD_ID note of an ELF file, as lowercase hex, and the checks that keep
 * untrusted build IDs out of file paths.
 */
#ifndef FLEETSYM_BUILDID_H
#define FLEETSYM_BUILDID_H

#include <gelf.h>
#include <stddef.h>

/* 64 hex digits and a NUL. */
#define BUILDID_HEX_MAX 65

/* Is S a build ID we accept: 2-64 hex digits, nothing else? */
int buildid_valid(const char *s);

/* The build ID in the first LEN bytes of S (or all of S when LEN is BUILDID_WHOLE), lowercased
 * into HEX: 0, or -ERR_BADBUILDID (HEX is then "") when it is not 2-64 hex digits (or S is
 * NULL). The one
 * place untrusted build IDs (URLs, JSON, pprof mappings) take their canonical form. */
#define BUILDID_WHOLE ((size_t)-1)
int buildid_normalize(const char *s, size_t len, char hex[BUILDID_HEX_MAX])
    __attribute__((warn_unused_result));

/* Read ELF's build ID note into HEX (BUILDID_HEX_MAX bytes); a file without one but with a Go
 * build ID note gets the build ID derived from it (buildid_from_go()). -ERR_NOBUILDID when
 * there is neither. */
int buildid_from_elf(Elf *elf, char hex[BUILDID_HEX_MAX]) __attribute__((warn_unused_result));

/* The build ID of a Go binary without a GNU build ID note (Go's linker writes one only with
 * -B): the first 20 bytes of SHA-256 of its Go build ID (the LEN bytes at GO_ID, printable
 * ASCII, at most BUILDID_GO_MAX), as 40 hex digits in HEX. The agent and the server derive it
 * the same way, so such a binary is keyed like any other all the way through. 0, or
 * -ERR_BADBUILDID for an empty, overlong or non-printable Go build ID. */
#define BUILDID_GO_MAX 255
int buildid_from_go(const char *go_id, size_t len, char hex[BUILDID_HEX_MAX])
    __attribute__((warn_unused_result));

/* Same for the file at PATH. -ENOENT, -ERR_NOTELF, -ERR_BADELF, -ERR_NOBUILDID. */
int buildid_from_path(const char *path, char hex[BUILDID_HEX_MAX])
    __attribute__((warn_unused_result));

/* DIR/.build-id/xx/rest.debug into BUF; -ENAMETOOLONG or -ERR_BADBUILDID. */
int buildid_debug_path(const char *dir, const char *hex, char *buf, size_t len)
    __attribute__((warn_unused_result));

#endif
