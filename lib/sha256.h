/*
 * sha256 - SHA-256 (FIPS 180-4), streamed: "the same bytes as stored" checks of the debug store,
 * and the build IDs derived from Go build IDs (lib/buildid.h). Small and dependency-free
 * because nothing else the project links offers a hash.
 */
#ifndef FLEETSYM_SHA256_H
#define FLEETSYM_SHA256_H

#include <stddef.h>
#include <stdint.h>

/* 64 hex digits and a NUL */
#define SHA256_HEX 65

/* Plain data; start with sha256_init(). */
struct sha256 {
	uint32_t h[8];
	uint64_t len;
	uint8_t buf[64];
	size_t nbuf;
};

void sha256_init(struct sha256 *c);
void sha256_update(struct sha256 *c, const uint8_t *p, size_t n);

/* The digest as lowercase hex. C is used up. */
void sha256_final(struct sha256 *c, char hex[SHA256_HEX]);

#endif
