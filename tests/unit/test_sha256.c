/* SPDX-License-Identifier: MIT */
/*
 * Unit tests for common/store/sha256.{h,c}: the FIPS 180-2 example
 * messages, messages around the padding boundaries, the RFC 4231
 * HMAC-SHA256 test cases, and incremental hashing split at odd points
 * giving the one-shot digest.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdlib.h>
#include <string.h>

#include "store/sha256.h"

static void expect_digest(const uint8_t d[SHA256_LEN], const char *want)
{
	char hex[SHA256_HEX_SIZE];

	sha256_hex(d, hex);
	assert_string_equal(hex, want);
}

static void expect_sha256(const void *data, size_t len, const char *want)
{
	uint8_t d[SHA256_LEN];

	sha256(data, len, d);
	expect_digest(d, want);
}

/* ---- SHA-256 ---------------------------------------------------------- */

static void test_fips_vectors(void **state)
{
	expect_sha256("abc", 3,
		      "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
	expect_sha256("", 0, "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");

	/* The 448-bit message: padding spills into a second block. */
	const char *m448 = "abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq";
	expect_sha256(m448, strlen(m448),
		      "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1");

	const char *m896 = "abcdefghbcdefghicdefghijdefghijkefghijklfghijklmghijklmn"
			   "hijklmnoijklmnopjklmnopqklmnopqrlmnopqrsmnopqrstnopqrstu";
	expect_sha256(m896, strlen(m896),
		      "cf5b16a778af8380036ce59e7b0492370b249b11e8f07a51afac45037afee9d1");
}

static void test_million_a(void **state)
{
	size_t n = 1000000;
	char *m = malloc(n);
	struct sha256 c;
	uint8_t d[SHA256_LEN];
	const char *want = "cdc76e5c9914fb9281a1c7e284d73e67f1809a48a497200e046d39ccc7112cd0";

	assert_non_null(m);
	memset(m, 'a', n);
	expect_sha256(m, n, want);

	/* Fed in 1000-byte pieces, which never line up with the 64-byte blocks. */
	sha256_init(&c);
	for (size_t off = 0; off < n; off += 1000)
		sha256_update(&c, m + off, 1000);
	sha256_final(&c, d);
	expect_digest(d, want);
	free(m);
}

/*
 * Lengths on each side of the padding boundaries (55 bytes fit the length
 * field in the same block, 56 do not; 64 is a whole block). Expected
 * values from Python's hashlib, an independent implementation.
 */
static void test_padding_boundaries(void **state)
{
	static const struct {
		size_t len;
		const char *hex;
	} cases[] = {
		{ 55, "9f4390f8d30c2dd92ec9f095b65e2b9ae9b0a925a5258e241c9f1e910f734318" },
		{ 56, "b35439a4ac6f0948b6d6f9e3c6af0f5f590ce20f1bde7090ef7970686ec6738a" },
		{ 63, "7d3e74a05d7db15bce4ad9ec0658ea98e3f06eeecf16b4c6fff2da457ddc2f34" },
		{ 64, "ffe054fe7ae0cb6dc65c3af9b61d5209f439851db43d0ba5997337df154668eb" },
		{ 119, "31eba51c313a5c08226adf18d4a359cfdfd8d2e816b13f4af952f7ea6584dcfb" },
		{ 120, "2f3d335432c70b580af0e8e1b3674a7c020d683aa5f73aaaedfdc55af904c21c" },
	};
	char m[128];

	memset(m, 'a', sizeof(m));
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++)
		expect_sha256(m, cases[i].len, cases[i].hex);
}

/* Every split of a 300-byte message into three pieces at odd points. */
static void test_incremental_matches_one_shot(void **state)
{
	uint8_t m[300], whole[SHA256_LEN], parts[SHA256_LEN];

	for (size_t i = 0; i < sizeof(m); i++)
		m[i] = (uint8_t)(i * 7 + 3);
	sha256(m, sizeof(m), whole);

	for (size_t a = 0; a <= sizeof(m); a += 7) {
		for (size_t b = a; b <= sizeof(m); b += 13) {
			struct sha256 c;

			sha256_init(&c);
			sha256_update(&c, m, a);
			sha256_update(&c, m + a, b - a);
			sha256_update(&c, m + b, sizeof(m) - b);
			sha256_final(&c, parts);
			if (memcmp(whole, parts, SHA256_LEN))
				fail_msg("split at %zu and %zu differs", a, b);
		}
	}

	/* One byte at a time. */
	struct sha256 c;

	sha256_init(&c);
	for (size_t i = 0; i < sizeof(m); i++)
		sha256_update(&c, m + i, 1);
	sha256_final(&c, parts);
	assert_memory_equal(whole, parts, SHA256_LEN);
}

static void test_hex_of(void **state)
{
	char hex[SHA256_HEX_SIZE];

	sha256_hex_of("abc", 3, hex);
	assert_string_equal(hex, "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
}

/* ---- HMAC-SHA256, RFC 4231 ------------------------------------------- */

static void expect_hmac(const void *key, size_t key_len, const void *data, size_t len,
			const char *want)
{
	uint8_t d[SHA256_LEN];
	struct hmac_sha256 c;

	hmac_sha256(key, key_len, data, len, d);
	expect_digest(d, want);

	/* Incrementally, split at an odd point. */
	hmac_sha256_init(&c, key, key_len);
	hmac_sha256_update(&c, data, len / 3);
	hmac_sha256_update(&c, (const uint8_t *)data + len / 3, len - len / 3);
	hmac_sha256_final(&c, d);
	expect_digest(d, want);
}

static void test_rfc4231_case1(void **state)
{
	uint8_t key[20];

	memset(key, 0x0b, sizeof(key));
	expect_hmac(key, sizeof(key), "Hi There", 8,
		    "b0344c61d8db38535ca8afceaf0bf12b881dc200c9833da726e9376c2e32cff7");
}

/* A key shorter than the digest. */
static void test_rfc4231_case2(void **state)
{
	const char *data = "what do ya want for nothing?";

	expect_hmac("Jefe", 4, data, strlen(data),
		    "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843");
}

static void test_rfc4231_case3(void **state)
{
	uint8_t key[20], data[50];

	memset(key, 0xaa, sizeof(key));
	memset(data, 0xdd, sizeof(data));
	expect_hmac(key, sizeof(key), data, sizeof(data),
		    "773ea91e36800e46854db8ebd09181a72959098b3ef8c122d9635514ced565fe");
}

static void test_rfc4231_case4(void **state)
{
	uint8_t key[25], data[50];

	for (unsigned i = 0; i < sizeof(key); i++)
		key[i] = i + 1;
	memset(data, 0xcd, sizeof(data));
	expect_hmac(key, sizeof(key), data, sizeof(data),
		    "82558a389a443c0ea4cc819899f2083a85f0faa3e578f8077a2e3ff46729665b");
}

/* Keys longer than a block are hashed first. */
static void test_rfc4231_case6(void **state)
{
	uint8_t key[131];
	const char *data = "Test Using Larger Than Block-Size Key - Hash Key First";

	memset(key, 0xaa, sizeof(key));
	expect_hmac(key, sizeof(key), data, strlen(data),
		    "60e431591ee0b67f0d8a26aacbf5b77f8e0bc6213728c5140546040f0ee37f54");
}

static void test_rfc4231_case7(void **state)
{
	uint8_t key[131];
	const char *data = "This is a test using a larger than block-size key and a larger "
			   "than block-size data. The key needs to be hashed before being "
			   "used by the HMAC algorithm.";

	memset(key, 0xaa, sizeof(key));
	expect_hmac(key, sizeof(key), data, strlen(data),
		    "9b09ffa71b942fcb27635fbcd5b0e944bfdc63644f0713938a7f51535c3a35e2");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_fips_vectors),
		cmocka_unit_test(test_million_a),
		cmocka_unit_test(test_padding_boundaries),
		cmocka_unit_test(test_incremental_matches_one_shot),
		cmocka_unit_test(test_hex_of),
		cmocka_unit_test(test_rfc4231_case1),
		cmocka_unit_test(test_rfc4231_case2),
		cmocka_unit_test(test_rfc4231_case3),
		cmocka_unit_test(test_rfc4231_case4),
		cmocka_unit_test(test_rfc4231_case6),
		cmocka_unit_test(test_rfc4231_case7),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
