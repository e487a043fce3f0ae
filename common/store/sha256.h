/* SPDX-License-Identifier: MIT */
/*
 * SHA-256 (FIPS 180-4) and HMAC-SHA256 (RFC 2104), what SigV4 signing
 * needs: incremental contexts for bodies fed in pieces, one-shot helpers,
 * and lower-case hex for digests. No allocation, no failure modes.
 */
#ifndef GLIDEFS_SHA256_H
#define GLIDEFS_SHA256_H

#include <stddef.h>
#include <stdint.h>

#define SHA256_LEN 32	     /* digest bytes */
#define SHA256_BLOCK 64	     /* bytes per compression block */
#define SHA256_HEX_SIZE 65   /* hex digest and its NUL */

struct sha256 {
	uint32_t h[8];
	uint64_t total; /* message bytes so far */
	uint8_t block[SHA256_BLOCK];
	size_t used; /* bytes waiting in block */
};

void sha256_init(struct sha256 *c);
void sha256_update(struct sha256 *c, const void *data, size_t len);
/* Writes the digest; c must be initialized again before reuse. */
void sha256_final(struct sha256 *c, uint8_t out[SHA256_LEN]);
void sha256(const void *data, size_t len, uint8_t out[SHA256_LEN]);

struct hmac_sha256 {
	struct sha256 inner;
	struct sha256 outer;
};

/* Keys of any length; those longer than a block are hashed first. */
void hmac_sha256_init(struct hmac_sha256 *c, const void *key, size_t key_len);
void hmac_sha256_update(struct hmac_sha256 *c, const void *data, size_t len);
void hmac_sha256_final(struct hmac_sha256 *c, uint8_t out[SHA256_LEN]);
void hmac_sha256(const void *key, size_t key_len, const void *data, size_t len,
		 uint8_t out[SHA256_LEN]);

/* Lower-case hex of a digest, NUL-terminated. */
void sha256_hex(const uint8_t digest[SHA256_LEN], char out[SHA256_HEX_SIZE]);

/* Hex of the SHA-256 of data, in one call. */
void sha256_hex_of(const void *data, size_t len, char out[SHA256_HEX_SIZE]);

#endif
