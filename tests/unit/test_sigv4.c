/* SPDX-License-Identifier: MIT */
/*
 * Unit tests for common/store/sigv4.{h,c} against AWS's published
 * examples: the four worked examples of the S3 API reference ("Signature
 * Calculations for the Authorization Header", bucket examplebucket) and
 * cases from the aws-sig-v4-test-suite (service "service"). Each checks
 * the canonical request, the string to sign and the signature exactly.
 * Also: S3 path and query encoding, the headers the signer adds, the
 * date format, and refused input.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "store/sigv4.h"

#define EMPTY_SHA256 "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"

/* The S3 reference's example account. */
static const struct sigv4_credentials s3_example = {
	.access_key = "AKIAIOSFODNN7EXAMPLE",
	.secret_key = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY",
	.region = "us-east-1",
	.service = "s3",
};

/* The test suite's. */
static const struct sigv4_credentials suite = {
	.access_key = "AKIDEXAMPLE",
	.secret_key = "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY",
	.region = "us-east-1",
	.service = "service",
};

#define SUITE_AUTH_PREFIX                                                                          \
	"Authorization: AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20150830/us-east-1/service/"      \
	"aws4_request, "

static const struct sigv4_pair suite_host[] = { { "Host", "example.amazonaws.com" } };

static void sign_ok(const struct sigv4_credentials *c, const struct sigv4_request *req,
		    struct sigv4_result *out)
{
	int r = sigv4_sign(c, req, out);

	if (r != 0)
		fail_msg("sigv4_sign: %d", r);
}

/* The Authorization line, which the signer always puts last. */
static const char *authorization(const struct sigv4_result *out)
{
	assert_true(out->nadd >= 2);
	return out->add[out->nadd - 1];
}

/* ---- The S3 API reference's examples ---------------------------------- */

static void test_s3_get_object(void **state)
{
	const struct sigv4_pair headers[] = {
		{ "Host", "examplebucket.s3.amazonaws.com" },
		{ "Range", "bytes=0-9" },
	};
	const struct sigv4_request req = {
		.method = "GET",
		.path = "/test.txt",
		.headers = headers,
		.nheaders = 2,
		.payload_hash = EMPTY_SHA256,
		.amz_date = "20130524T000000Z",
	};
	struct sigv4_result out;

	sign_ok(&s3_example, &req, &out);
	assert_string_equal(out.canonical_request,
			    "GET\n"
			    "/test.txt\n"
			    "\n"
			    "host:examplebucket.s3.amazonaws.com\n"
			    "range:bytes=0-9\n"
			    "x-amz-content-sha256:" EMPTY_SHA256 "\n"
			    "x-amz-date:20130524T000000Z\n"
			    "\n"
			    "host;range;x-amz-content-sha256;x-amz-date\n" EMPTY_SHA256);
	assert_string_equal(out.string_to_sign,
			    "AWS4-HMAC-SHA256\n"
			    "20130524T000000Z\n"
			    "20130524/us-east-1/s3/aws4_request\n"
			    "7344ae5b7ee6c3e7e6b0fe0640412a37625d1fbfff95c48bbb2dc43964946972");
	assert_string_equal(out.signature,
			    "f0e8bdb87c964420e857bd35b5d6ed310bd44f0170aba48dd91039c6036bdb41");
	assert_string_equal(out.signed_headers, "host;range;x-amz-content-sha256;x-amz-date");
	assert_string_equal(out.uri, "/test.txt");
	assert_string_equal(out.query, "");

	/* What goes on the wire besides the caller's own headers. */
	assert_int_equal(out.nadd, 3);
	assert_string_equal(out.add[0], "x-amz-date: 20130524T000000Z");
	assert_string_equal(out.add[1], "x-amz-content-sha256: " EMPTY_SHA256);
	assert_string_equal(authorization(&out),
			    "Authorization: AWS4-HMAC-SHA256 "
			    "Credential=AKIAIOSFODNN7EXAMPLE/20130524/us-east-1/s3/aws4_request, "
			    "SignedHeaders=host;range;x-amz-content-sha256;x-amz-date, "
			    "Signature=f0e8bdb87c964420e857bd35b5d6ed310bd44f0170aba48dd91039c6036bdb41");
	sigv4_result_free(&out);
}

static void test_s3_put_object(void **state)
{
	const char *body = "Welcome to Amazon S3.";
	char hash[SHA256_HEX_SIZE];
	const struct sigv4_pair headers[] = {
		{ "Host", "examplebucket.s3.amazonaws.com" },
		{ "Date", "Fri, 24 May 2013 00:00:00 GMT" },
		{ "x-amz-storage-class", "REDUCED_REDUNDANCY" },
	};
	struct sigv4_request req = {
		.method = "PUT",
		.path = "/test$file.text",
		.headers = headers,
		.nheaders = 3,
		.payload_hash = hash,
		.amz_date = "20130524T000000Z",
	};
	struct sigv4_result out;

	sha256_hex_of(body, strlen(body), hash);
	assert_string_equal(hash, "44ce7dd67c959e0d3524ffac1771dfbba87d2b6b4b4e99e42034a8b803f8b072");

	sign_ok(&s3_example, &req, &out);
	assert_string_equal(out.canonical_request,
			    "PUT\n"
			    "/test%24file.text\n"
			    "\n"
			    "date:Fri, 24 May 2013 00:00:00 GMT\n"
			    "host:examplebucket.s3.amazonaws.com\n"
			    "x-amz-content-sha256:"
			    "44ce7dd67c959e0d3524ffac1771dfbba87d2b6b4b4e99e42034a8b803f8b072\n"
			    "x-amz-date:20130524T000000Z\n"
			    "x-amz-storage-class:REDUCED_REDUNDANCY\n"
			    "\n"
			    "date;host;x-amz-content-sha256;x-amz-date;x-amz-storage-class\n"
			    "44ce7dd67c959e0d3524ffac1771dfbba87d2b6b4b4e99e42034a8b803f8b072");
	assert_string_equal(out.string_to_sign,
			    "AWS4-HMAC-SHA256\n"
			    "20130524T000000Z\n"
			    "20130524/us-east-1/s3/aws4_request\n"
			    "9e0e90d9c76de8fa5b200d8c849cd5b8dc7a3be3951ddb7f6a76b4158342019d");
	assert_string_equal(out.signature,
			    "98ad721746da40c64f1a55b78f14c238d841ea1380cd77a1b5971af0ece108bd");
	assert_string_equal(out.uri, "/test%24file.text");
	sigv4_result_free(&out);
}

static void test_s3_get_bucket_lifecycle(void **state)
{
	const struct sigv4_pair headers[] = { { "Host", "examplebucket.s3.amazonaws.com" } };
	const struct sigv4_pair query[] = { { "lifecycle", NULL } };
	const struct sigv4_request req = {
		.method = "GET",
		.path = "/",
		.query = query,
		.nquery = 1,
		.headers = headers,
		.nheaders = 1,
		.payload_hash = EMPTY_SHA256,
		.amz_date = "20130524T000000Z",
	};
	struct sigv4_result out;

	sign_ok(&s3_example, &req, &out);
	assert_string_equal(out.canonical_request,
			    "GET\n"
			    "/\n"
			    "lifecycle=\n"
			    "host:examplebucket.s3.amazonaws.com\n"
			    "x-amz-content-sha256:" EMPTY_SHA256 "\n"
			    "x-amz-date:20130524T000000Z\n"
			    "\n"
			    "host;x-amz-content-sha256;x-amz-date\n" EMPTY_SHA256);
	assert_string_equal(out.string_to_sign,
			    "AWS4-HMAC-SHA256\n"
			    "20130524T000000Z\n"
			    "20130524/us-east-1/s3/aws4_request\n"
			    "9766c798316ff2757b517bc739a67f6213b4ab36dd5da2f94eaebf79c77395ca");
	assert_string_equal(out.signature,
			    "fea454ca298b7da1c68078a5d1bdbfbbe0d65c699e0f91ac7a200a0136783543");
	assert_string_equal(out.query, "lifecycle=");
	sigv4_result_free(&out);
}

static void test_s3_list_objects(void **state)
{
	const struct sigv4_pair headers[] = { { "Host", "examplebucket.s3.amazonaws.com" } };
	/* Given out of order: the canonical form sorts them. */
	const struct sigv4_pair query[] = { { "prefix", "J" }, { "max-keys", "2" } };
	const struct sigv4_request req = {
		.method = "GET",
		.path = "/",
		.query = query,
		.nquery = 2,
		.headers = headers,
		.nheaders = 1,
		.payload_hash = EMPTY_SHA256,
		.amz_date = "20130524T000000Z",
	};
	struct sigv4_result out;

	sign_ok(&s3_example, &req, &out);
	assert_string_equal(out.canonical_request,
			    "GET\n"
			    "/\n"
			    "max-keys=2&prefix=J\n"
			    "host:examplebucket.s3.amazonaws.com\n"
			    "x-amz-content-sha256:" EMPTY_SHA256 "\n"
			    "x-amz-date:20130524T000000Z\n"
			    "\n"
			    "host;x-amz-content-sha256;x-amz-date\n" EMPTY_SHA256);
	assert_string_equal(out.string_to_sign,
			    "AWS4-HMAC-SHA256\n"
			    "20130524T000000Z\n"
			    "20130524/us-east-1/s3/aws4_request\n"
			    "df57d21db20da04d7fa30298dd4488ba3a2b47ca3a489c74750e0f1e7df1b9b7");
	assert_string_equal(out.signature,
			    "34b48302e7b5fa45bde8084f4b7868a86f0a534bc59db6670ed5711ef69dc6f7");
	sigv4_result_free(&out);
}

/* ---- aws-sig-v4-test-suite -------------------------------------------- */

static void suite_sign(const char *method, const char *path, const struct sigv4_pair *query,
		       size_t nquery, const struct sigv4_pair *headers, size_t nheaders,
		       const struct sigv4_credentials *cred, struct sigv4_result *out)
{
	const struct sigv4_request req = {
		.method = method,
		.path = path,
		.query = query,
		.nquery = nquery,
		.headers = headers,
		.nheaders = nheaders,
		.payload_hash = EMPTY_SHA256,
		.amz_date = "20150830T123600Z",
	};

	sign_ok(cred, &req, out);
}

static void test_suite_get_vanilla(void **state)
{
	struct sigv4_result out;

	suite_sign("GET", "/", NULL, 0, suite_host, 1, &suite, &out);
	assert_string_equal(out.canonical_request, "GET\n/\n\n"
						   "host:example.amazonaws.com\n"
						   "x-amz-date:20150830T123600Z\n"
						   "\n"
						   "host;x-amz-date\n" EMPTY_SHA256);
	assert_string_equal(out.string_to_sign,
			    "AWS4-HMAC-SHA256\n"
			    "20150830T123600Z\n"
			    "20150830/us-east-1/service/aws4_request\n"
			    "bb579772317eb040ac9ed261061d46c1f17a8133879d6129b6e1c25292927e63");
	/* Not S3: no x-amz-content-sha256 is added. */
	assert_int_equal(out.nadd, 2);
	assert_string_equal(out.add[0], "x-amz-date: 20150830T123600Z");
	assert_string_equal(authorization(&out),
			    SUITE_AUTH_PREFIX "SignedHeaders=host;x-amz-date, "
					      "Signature=5fa00fa31553b73ebf1942676e86291e8372ff2a2260956d9b8aae1d763fbf31");
	sigv4_result_free(&out);
}

static void test_suite_query_order_key_case(void **state)
{
	const struct sigv4_pair query[] = { { "Param2", "value2" }, { "Param1", "value1" } };
	struct sigv4_result out;

	suite_sign("GET", "/", query, 2, suite_host, 1, &suite, &out);
	assert_string_equal(out.query, "Param1=value1&Param2=value2");
	assert_string_equal(out.signature,
			    "b97d918cfa904a5beff61c982a1b6f458b799221646efd99d3219ec94cdf2500");
	sigv4_result_free(&out);
}

static void test_suite_get_utf8(void **state)
{
	struct sigv4_result out;

	suite_sign("GET", "/\xe1\x88\xb4", NULL, 0, suite_host, 1, &suite, &out);
	assert_string_equal(out.uri, "/%E1%88%B4");
	assert_string_equal(out.string_to_sign,
			    "AWS4-HMAC-SHA256\n"
			    "20150830T123600Z\n"
			    "20150830/us-east-1/service/aws4_request\n"
			    "2a0a97d02205e45ce2e994789806b19270cfbbb0921b278ccf58f5249ac42102");
	assert_string_equal(out.signature,
			    "8318018e0b0f223aa2bbf98705b62bb787dc9c0e678f255a891fd03141be5d85");
	sigv4_result_free(&out);
}

static void test_suite_get_unreserved(void **state)
{
	const char *path = "/-._~0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";
	struct sigv4_result out;

	suite_sign("GET", path, NULL, 0, suite_host, 1, &suite, &out);
	assert_string_equal(out.uri, path);
	assert_string_equal(out.signature,
			    "07ef7494c76fa4850883e2b006601f940f8a34d404d0cfa977f52a65bbf5f24f");
	sigv4_result_free(&out);
}

static void test_suite_header_value_trim(void **state)
{
	const struct sigv4_pair headers[] = {
		{ "Host", "example.amazonaws.com" },
		{ "My-Header1", " value1" },
		{ "My-Header2", " \"a   b   c\"" },
	};
	struct sigv4_result out;

	suite_sign("GET", "/", NULL, 0, headers, 3, &suite, &out);
	assert_string_equal(out.canonical_request, "GET\n/\n\n"
						   "host:example.amazonaws.com\n"
						   "my-header1:value1\n"
						   "my-header2:\"a b c\"\n"
						   "x-amz-date:20150830T123600Z\n"
						   "\n"
						   "host;my-header1;my-header2;x-amz-date\n" EMPTY_SHA256);
	assert_string_equal(authorization(&out),
			    SUITE_AUTH_PREFIX "SignedHeaders=host;my-header1;my-header2;x-amz-date, "
					      "Signature=acc3ed3afb60bb290fc8d2dd0098b9911fcaa05412b367055dee359757a9c736");
	sigv4_result_free(&out);
}

/* A repeated header keeps its values in the order given, comma-joined. */
static void test_suite_header_value_order(void **state)
{
	const struct sigv4_pair headers[] = {
		{ "Host", "example.amazonaws.com" }, { "My-Header1", "value4" },
		{ "My-Header1", "value1" },	     { "My-Header1", "value3" },
		{ "My-Header1", "value2" },
	};
	struct sigv4_result out;

	suite_sign("GET", "/", NULL, 0, headers, 5, &suite, &out);
	assert_string_equal(out.canonical_request, "GET\n/\n\n"
						   "host:example.amazonaws.com\n"
						   "my-header1:value4,value1,value3,value2\n"
						   "x-amz-date:20150830T123600Z\n"
						   "\n"
						   "host;my-header1;x-amz-date\n" EMPTY_SHA256);
	assert_string_equal(out.string_to_sign,
			    "AWS4-HMAC-SHA256\n"
			    "20150830T123600Z\n"
			    "20150830/us-east-1/service/aws4_request\n"
			    "31ce73cd3f3d9f66977ad3dd957dc47af14df92fcd8509f59b349e9137c58b86");
	assert_string_equal(out.signature,
			    "08c7e5a9acfcfeb3ab6b2185e75ce8b1deb5e634ec47601a50643f830c755c01");
	sigv4_result_free(&out);
}

static void test_suite_post_vanilla(void **state)
{
	struct sigv4_result out;

	suite_sign("POST", "/", NULL, 0, suite_host, 1, &suite, &out);
	assert_string_equal(out.signature,
			    "5da7c1a2acd57cee7505fc6676e4e544621c30862966e37dddb68e92efbe5d6b");
	sigv4_result_free(&out);
}

/* post-sts-header-before: the session token is signed. */
static void test_suite_session_token(void **state)
{
	const char *token =
		"AQoDYXdzEPT//////////wEXAMPLEtc764bNrC9SAPBSM22wDOk4x4HIZ8j4FZTwdQWLWsKWHGBuFqwAeMicRXmx"
		"fpSPfIeoIYRqTflfKD8YUuwthAx7mSEI/qkPpKPi/kMcGdQrmGdeehM4IC1NtBmUpp2wUE8phUZampKsburEDy0"
		"KPkyQDYwT7WZ0wq5VSXDvp75YU9HFvlRd8Tx6q6fE8YQcHNVXAkiY9q6d+xo0rKwT38xVqr7ZD0u0iPPkUL64lI"
		"ZbqBAz+scqKmlzm8FDrypNC9Yjc8fPOLn9FX9KSYvKTr4rvx3iSIlTJabIQwj2ICCR/oLxBA==";
	struct sigv4_credentials cred = suite;
	struct sigv4_result out;
	char line[1024];

	cred.session_token = token;
	suite_sign("POST", "/", NULL, 0, suite_host, 1, &cred, &out);
	assert_string_equal(out.signed_headers, "host;x-amz-date;x-amz-security-token");
	assert_string_equal(out.string_to_sign,
			    "AWS4-HMAC-SHA256\n"
			    "20150830T123600Z\n"
			    "20150830/us-east-1/service/aws4_request\n"
			    "c237e1b440d4c63c32ca95b5b99481081cb7b13c7e40434868e71567c1a882f6");
	assert_string_equal(out.signature,
			    "85d96828115b5dc0cfc3bd16ad9e210dd772bbebba041836c64533a82be05ead");
	assert_int_equal(out.nadd, 3);
	snprintf(line, sizeof(line), "x-amz-security-token: %s", token);
	assert_string_equal(out.add[1], line);
	sigv4_result_free(&out);

	/* An empty token is no token. */
	cred.session_token = "";
	suite_sign("POST", "/", NULL, 0, suite_host, 1, &cred, &out);
	assert_string_equal(out.signature,
			    "5da7c1a2acd57cee7505fc6676e4e544621c30862966e37dddb68e92efbe5d6b");
	sigv4_result_free(&out);
}

/* ---- Encoding the S3 way ---------------------------------------------- */

static void test_s3_path_encoding(void **state)
{
	const struct sigv4_pair headers[] = { { "host", "b.s3.amazonaws.com" } };
	/* Dots, double slashes and a trailing slash stay: S3 does not normalize. */
	const struct sigv4_request req = {
		.method = "GET",
		.path = "/a b/./c+d%e//../f=g&h?/",
		.headers = headers,
		.nheaders = 1,
		.payload_hash = EMPTY_SHA256,
		.amz_date = "20130524T000000Z",
	};
	struct sigv4_result out;

	sign_ok(&s3_example, &req, &out);
	assert_string_equal(out.uri, "/a%20b/./c%2Bd%25e//../f%3Dg%26h%3F/");
	assert_true(strncmp(out.canonical_request, "GET\n/a%20b/./c%2Bd%25e//../f%3Dg%26h%3F/\n",
			    strlen("GET\n/a%20b/./c%2Bd%25e//../f%3Dg%26h%3F/\n")) == 0);
	sigv4_result_free(&out);
}

static void test_s3_query_encoding(void **state)
{
	const struct sigv4_pair headers[] = { { "host", "b.s3.amazonaws.com" } };
	/* Slashes and '=' inside values are encoded; names sort after encoding. */
	const struct sigv4_pair query[] = {
		{ "prefix", "vol/packs a=b" },
		{ "list-type", "2" },
		{ "continuation-token", "1/x+y==" },
	};
	const struct sigv4_request req = {
		.method = "GET",
		.path = "/",
		.query = query,
		.nquery = 3,
		.headers = headers,
		.nheaders = 1,
		.payload_hash = EMPTY_SHA256,
		.amz_date = "20130524T000000Z",
	};
	struct sigv4_result out;

	sign_ok(&s3_example, &req, &out);
	assert_string_equal(out.query,
			    "continuation-token=1%2Fx%2By%3D%3D&list-type=2&prefix=vol%2Fpacks%20a%3Db");
	sigv4_result_free(&out);
}

/* Same name: sorted by value. */
static void test_query_same_name_sorts_by_value(void **state)
{
	const struct sigv4_pair query[] = { { "foo", "Zoo" }, { "foo", "aha" }, { "Foo", "b" } };
	struct sigv4_result out;

	suite_sign("GET", "/", query, 3, suite_host, 1, &suite, &out);
	assert_string_equal(out.query, "Foo=b&foo=Zoo&foo=aha");
	sigv4_result_free(&out);
}

/* ---- Dates and refusals ----------------------------------------------- */

static void test_amz_date(void **state)
{
	char d[SIGV4_DATE_SIZE];

	sigv4_amz_date(1369353600, d);
	assert_string_equal(d, "20130524T000000Z");
	sigv4_amz_date(1440938160, d);
	assert_string_equal(d, "20150830T123600Z");
}

static void test_refusals(void **state)
{
	const struct sigv4_pair no_host[] = { { "Range", "bytes=0-1" } };
	const struct sigv4_pair long_name[] = {
		{ "Host", "h" },
		{ "X-0123456789012345678901234567890123456789012345678901234567890123", "v" },
	};
	struct sigv4_request req = {
		.method = "GET",
		.path = "/",
		.headers = suite_host,
		.nheaders = 1,
		.payload_hash = EMPTY_SHA256,
		.amz_date = "20150830T123600Z",
	};
	struct sigv4_result out;

	req.headers = no_host;
	assert_int_equal(sigv4_sign(&suite, &req, &out), -EINVAL);
	req.headers = long_name;
	req.nheaders = 2;
	assert_int_equal(sigv4_sign(&suite, &req, &out), -EINVAL);
	req.headers = suite_host;
	req.nheaders = 1;

	req.amz_date = "2015-08-30T12:36:00Z";
	assert_int_equal(sigv4_sign(&suite, &req, &out), -EINVAL);
	req.amz_date = "20150830T1236000";
	assert_int_equal(sigv4_sign(&suite, &req, &out), -EINVAL);
	req.amz_date = "20150830T123600Z";

	req.path = "relative";
	assert_int_equal(sigv4_sign(&suite, &req, &out), -EINVAL);
	req.path = "/";

	/* And the same request, fixed, signs. */
	assert_int_equal(sigv4_sign(&suite, &req, &out), 0);
	assert_string_equal(out.signature,
			    "5fa00fa31553b73ebf1942676e86291e8372ff2a2260956d9b8aae1d763fbf31");
	sigv4_result_free(&out);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_s3_get_object),
		cmocka_unit_test(test_s3_put_object),
		cmocka_unit_test(test_s3_get_bucket_lifecycle),
		cmocka_unit_test(test_s3_list_objects),
		cmocka_unit_test(test_suite_get_vanilla),
		cmocka_unit_test(test_suite_query_order_key_case),
		cmocka_unit_test(test_suite_get_utf8),
		cmocka_unit_test(test_suite_get_unreserved),
		cmocka_unit_test(test_suite_header_value_trim),
		cmocka_unit_test(test_suite_header_value_order),
		cmocka_unit_test(test_suite_post_vanilla),
		cmocka_unit_test(test_suite_session_token),
		cmocka_unit_test(test_s3_path_encoding),
		cmocka_unit_test(test_s3_query_encoding),
		cmocka_unit_test(test_query_same_name_sorts_by_value),
		cmocka_unit_test(test_amz_date),
		cmocka_unit_test(test_refusals),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
