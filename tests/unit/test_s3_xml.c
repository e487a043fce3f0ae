/* SPDX-License-Identifier: MIT */
/*
 * Unit tests for common/store/xml.{h,c}: ListObjectsV2 pages, error
 * documents and InitiateMultipartUploadResult as S3 sends them; entity
 * and CDATA decoding; and refusal of what is malformed, truncated at any
 * byte, mutated, nested too deep or otherwise hostile. Every document is
 * handed over in a buffer of exactly its length, with no NUL after it,
 * so that a read past the end shows under AddressSanitizer.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "store/xml.h"

/* An exact-length copy, without the terminating NUL. */
static char *exact(const char *s, size_t len)
{
	char *p = malloc(len ? len : 1);

	assert_non_null(p);
	memcpy(p, s, len);
	return p;
}

static int list(const char *doc, struct s3_list_page *page)
{
	char *p = exact(doc, strlen(doc));
	int r = s3_xml_list(p, strlen(doc), page);

	free(p);
	return r;
}

static int error_doc(const char *doc, struct s3_error *err)
{
	char *p = exact(doc, strlen(doc));
	int r = s3_xml_error(p, strlen(doc), err);

	free(p);
	return r;
}

static int upload_id(const char *doc, char **id)
{
	char *p = exact(doc, strlen(doc));
	int r = s3_xml_upload_id(p, strlen(doc), id);

	free(p);
	return r;
}

static void expect_list_error(const char *doc)
{
	struct s3_list_page page;
	int r = list(doc, &page);

	if (r != -EBADMSG)
		fail_msg("want -EBADMSG, got %d for: %s", r, doc);
	assert_null(page.objects);
	assert_null(page.next_token);
}

/* A key wrapped as the one object of an otherwise plain page. */
static int list_one_key(const char *key_xml, struct s3_list_page *page)
{
	char doc[1024];

	snprintf(doc, sizeof(doc),
		 "<ListBucketResult><Contents><Key>%s</Key><Size>1</Size></Contents>"
		 "</ListBucketResult>",
		 key_xml);
	return list(doc, page);
}

static const char page1[] =
	"<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n"
	"<ListBucketResult xmlns=\"http://s3.amazonaws.com/doc/2006-03-01/\">"
	"<Name>bucket</Name><Prefix>vol0/packs/</Prefix><KeyCount>3</KeyCount>"
	"<MaxKeys>1000</MaxKeys><IsTruncated>true</IsTruncated>"
	"<ContinuationToken>1ueGcxLPRx1Tr/XYExHnhbYLgveDs2J/wm36Hy4vbOwM=</ContinuationToken>"
	"<NextContinuationToken>1ueGcxLPRx1Tr/XYExHnhbYLgveDs2J/wm36Hy4vbOwM=2"
	"</NextContinuationToken>\n"
	"  <Contents>\n"
	"    <Key>vol0/packs/0001</Key>\n"
	"    <LastModified>2024-05-01T10:00:00.000Z</LastModified>\n"
	"    <ETag>&quot;fba9dede5f27731c9771645a39863328&quot;</ETag>\n"
	"    <Size>4194304</Size>\n"
	"    <StorageClass>STANDARD</StorageClass>\n"
	"  </Contents>\n"
	"  <Contents><Key>vol0/packs/0002</Key><Size>0</Size>"
	"<Owner><ID>75aa57f09aa0c8caeab4f8c24e99d10f8e7faeebf76c078efc7c6caea54ba06a</ID>"
	"<DisplayName>me</DisplayName></Owner></Contents>"
	"<Contents><Size>18446744073709551615</Size><Key>vol0/packs/big</Key></Contents>"
	"</ListBucketResult>";

/* ---- ListObjectsV2 ---------------------------------------------------- */

static void test_list_page(void **state)
{
	struct s3_list_page page;

	assert_int_equal(list(page1, &page), 0);
	assert_int_equal(page.nobjects, 3);
	assert_string_equal(page.objects[0].key, "vol0/packs/0001");
	assert_int_equal(page.objects[0].size, 4194304);
	assert_string_equal(page.objects[1].key, "vol0/packs/0002");
	assert_int_equal(page.objects[1].size, 0);
	/* Size before Key is as good. */
	assert_string_equal(page.objects[2].key, "vol0/packs/big");
	assert_true(page.objects[2].size == UINT64_MAX);
	assert_true(page.truncated);
	assert_string_equal(page.next_token, "1ueGcxLPRx1Tr/XYExHnhbYLgveDs2J/wm36Hy4vbOwM=2");
	s3_list_page_free(&page);
	assert_null(page.objects);
}

static void test_list_last_and_empty_pages(void **state)
{
	struct s3_list_page page;

	assert_int_equal(list("<ListBucketResult><Name>b</Name><Prefix>x/</Prefix>"
			      "<KeyCount>1</KeyCount><IsTruncated>false</IsTruncated>"
			      "<Contents><Key>x/a</Key><Size>7</Size></Contents></ListBucketResult>",
			      &page),
			 0);
	assert_false(page.truncated);
	assert_null(page.next_token);
	assert_int_equal(page.nobjects, 1);
	s3_list_page_free(&page);

	assert_int_equal(list("<ListBucketResult><Name>b</Name><Prefix>nothing/</Prefix>"
			      "<KeyCount>0</KeyCount><MaxKeys>1000</MaxKeys>"
			      "<IsTruncated>false</IsTruncated></ListBucketResult>\r\n",
			      &page),
			 0);
	assert_int_equal(page.nobjects, 0);
	assert_null(page.objects);
	s3_list_page_free(&page);

	/* Self-closing and commented. */
	assert_int_equal(list("<!-- x --><ListBucketResult><Prefix/><IsTruncated>false"
			      "</IsTruncated><!-- <Contents> --></ListBucketResult ><!-- y -->",
			      &page),
			 0);
	assert_int_equal(page.nobjects, 0);
	s3_list_page_free(&page);
}

/* Many objects: the array grows past its first allocation. */
static void test_list_many(void **state)
{
	size_t n = 1000, cap = 100 + n * 80, len = 0;
	char *doc = malloc(cap);
	struct s3_list_page page;

	assert_non_null(doc);
	len += snprintf(doc + len, cap - len, "<ListBucketResult><KeyCount>%zu</KeyCount>", n);
	for (size_t i = 0; i < n; i++)
		len += snprintf(doc + len, cap - len,
				"<Contents><Key>k/%05zu</Key><Size>%zu</Size></Contents>", i, i * 3);
	len += snprintf(doc + len, cap - len, "</ListBucketResult>");
	assert_true(len < cap);

	assert_int_equal(list(doc, &page), 0);
	assert_int_equal(page.nobjects, n);
	for (size_t i = 0; i < n; i++) {
		char want[16];

		snprintf(want, sizeof(want), "k/%05zu", i);
		assert_string_equal(page.objects[i].key, want);
		assert_int_equal(page.objects[i].size, i * 3);
	}
	s3_list_page_free(&page);
	free(doc);
}

static void test_list_refusals(void **state)
{
	/* Contents missing a part, or with one twice. */
	expect_list_error("<ListBucketResult><Contents><Key>a</Key></Contents></ListBucketResult>");
	expect_list_error("<ListBucketResult><Contents><Size>1</Size></Contents></ListBucketResult>");
	expect_list_error("<ListBucketResult><Contents><Key>a</Key><Key>b</Key><Size>1</Size>"
			  "</Contents></ListBucketResult>");
	expect_list_error("<ListBucketResult><Contents><Key></Key><Size>1</Size></Contents>"
			  "</ListBucketResult>");
	/* Sizes that are not a uint64. */
	expect_list_error("<ListBucketResult><Contents><Key>a</Key><Size>18446744073709551616"
			  "</Size></Contents></ListBucketResult>");
	expect_list_error("<ListBucketResult><Contents><Key>a</Key><Size>-1</Size></Contents>"
			  "</ListBucketResult>");
	expect_list_error("<ListBucketResult><Contents><Key>a</Key><Size> 1</Size></Contents>"
			  "</ListBucketResult>");
	expect_list_error("<ListBucketResult><Contents><Key>a</Key><Size></Size></Contents>"
			  "</ListBucketResult>");
	/* A page that says more follow but not how to get them. */
	expect_list_error("<ListBucketResult><IsTruncated>true</IsTruncated></ListBucketResult>");
	expect_list_error("<ListBucketResult><IsTruncated>true</IsTruncated>"
			  "<NextContinuationToken></NextContinuationToken></ListBucketResult>");
	expect_list_error("<ListBucketResult><IsTruncated>yes</IsTruncated></ListBucketResult>");
	/* A count that does not match what came. */
	expect_list_error("<ListBucketResult><KeyCount>2</KeyCount><Contents><Key>a</Key>"
			  "<Size>1</Size></Contents></ListBucketResult>");
	/* Another document altogether. */
	expect_list_error("<Error><Code>NoSuchBucket</Code></Error>");
	expect_list_error("");
}

/* ---- Entities and CDATA ----------------------------------------------- */

static void test_entities(void **state)
{
	struct s3_list_page page;

	assert_int_equal(list_one_key("a&amp;b&lt;c&gt;d&quot;e&apos;f", &page), 0);
	assert_string_equal(page.objects[0].key, "a&b<c>d\"e'f");
	s3_list_page_free(&page);

	/* Character references, decimal and hex, to UTF-8 of each length. */
	assert_int_equal(list_one_key("&#65;&#x42;&#X43;&#xe9;&#233;&#x20AC;&#x1F600;&#1114111;", &page),
			 -EBADMSG); /* "&#X" is not a reference: the x is lower case */
	assert_int_equal(list_one_key("&#65;&#x42;&#xe9;&#233;&#x20AC;&#x1F600;&#1114111;", &page),
			 0);
	assert_string_equal(page.objects[0].key,
			    "AB\xc3\xa9\xc3\xa9\xe2\x82\xac\xf0\x9f\x98\x80\xf4\x8f\xbf\xbf");
	s3_list_page_free(&page);

	assert_int_equal(list_one_key("packs/&#x2F;x", &page), 0);
	assert_string_equal(page.objects[0].key, "packs//x");
	s3_list_page_free(&page);
}

static void test_bad_entities(void **state)
{
	static const char *bad[] = {
		"&foo;", "&amp",      "&",	    "a & b",	"&#;",	      "&#x;",
		"&#0;",	 "&#x0;",     "&#x110000;", "&#1114112;", "&#xD800;",   "&#57343;",
		"&#12a;", "&#x12g;", "&#99999999999999999999;", "&#x41",     "&AMP;",
	};
	struct s3_list_page page;

	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		int r = list_one_key(bad[i], &page);

		if (r != -EBADMSG)
			fail_msg("%s: got %d", bad[i], r);
	}
}

static void test_cdata(void **state)
{
	struct s3_list_page page;

	assert_int_equal(list_one_key("a<![CDATA[<&>]]>b", &page), 0);
	assert_string_equal(page.objects[0].key, "a<&>b");
	s3_list_page_free(&page);
	assert_int_equal(list_one_key("a<![CDATA[<&>", &page), -EBADMSG);
}

/* ---- Error documents -------------------------------------------------- */

static void test_error_document(void **state)
{
	struct s3_error err;

	assert_int_equal(error_doc("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n"
				   "<Error><Code>SlowDown</Code>"
				   "<Message>Please reduce your request rate.</Message>"
				   "<RequestId>4442587FB7D0A2F9</RequestId>"
				   "<HostId>+VHxdr7Ecq0Sz1pm8Y2nThI4Ml6NmKcNqQsMdN1m=</HostId></Error>",
				   &err),
			 0);
	assert_string_equal(err.code, "SlowDown");
	assert_string_equal(err.message, "Please reduce your request rate.");

	/* Entities decoded, a long message cut to fit. */
	char doc[1024], msg[400];

	memset(msg, 'm', sizeof(msg) - 1);
	msg[sizeof(msg) - 1] = '\0';
	snprintf(doc, sizeof(doc), "<Error><Code>Access&#68;enied</Code><Message>%s</Message></Error>",
		 msg);
	assert_int_equal(error_doc(doc, &err), 0);
	assert_string_equal(err.code, "AccessDenied");
	assert_int_equal(strlen(err.message), sizeof(err.message) - 1);

	/* Nested Codes are not the error's. */
	assert_int_equal(error_doc("<Error><Detail><Code>x</Code></Detail></Error>", &err), 0);
	assert_string_equal(err.code, "");

	/* A success document is not an error; garbage is not XML. */
	assert_int_equal(error_doc("<CompleteMultipartUploadResult><ETag>&quot;3858f62230ac3c915f300c664312c11f-9&quot;</ETag>"
				   "</CompleteMultipartUploadResult>",
				   &err),
			 -ENOMSG);
	assert_int_equal(error_doc("<html><body>502 Bad Gateway</body></html>", &err), -ENOMSG);
	assert_int_equal(error_doc("502 Bad Gateway", &err), -EBADMSG);
	assert_int_equal(error_doc("", &err), -EBADMSG);
	assert_int_equal(error_doc("<Error><Code>SlowDown</Code>", &err), -EBADMSG);
}

/*
 * CompleteMultipartUpload answers 200 at once and sends whitespace while it
 * works, so the document may start with blanks even before its declaration.
 */
static void test_error_after_keepalive_whitespace(void **state)
{
	struct s3_error err;

	assert_int_equal(error_doc("\n      \n<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n"
				   "<Error><Code>InternalError</Code><Message>We encountered an "
				   "internal error. Please try again.</Message></Error>",
				   &err),
			 0);
	assert_string_equal(err.code, "InternalError");
	assert_string_equal(err.message, "We encountered an internal error. Please try again.");
}

/* ---- InitiateMultipartUploadResult ------------------------------------- */

static void test_upload_id(void **state)
{
	char *id = NULL;

	assert_int_equal(upload_id("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n"
				   "<InitiateMultipartUploadResult "
				   "xmlns=\"http://s3.amazonaws.com/doc/2006-03-01/\">"
				   "<Bucket>example-bucket</Bucket><Key>example-object</Key>"
				   "<UploadId>VXBsb2FkIElEIGZvciA2aWWpbmcncyBteS1tb3ZpZS5tMnRzIHVwbG9hZA"
				   "</UploadId></InitiateMultipartUploadResult>",
				   &id),
			 0);
	assert_string_equal(id, "VXBsb2FkIElEIGZvciA2aWWpbmcncyBteS1tb3ZpZS5tMnRzIHVwbG9hZA");
	free(id);

	id = NULL;
	assert_int_equal(upload_id("<InitiateMultipartUploadResult><Bucket>b</Bucket>"
				   "</InitiateMultipartUploadResult>",
				   &id),
			 -EBADMSG);
	assert_int_equal(upload_id("<InitiateMultipartUploadResult><UploadId></UploadId>"
				   "</InitiateMultipartUploadResult>",
				   &id),
			 -EBADMSG);
	assert_int_equal(upload_id("<InitiateMultipartUploadResult><UploadId>a</UploadId>"
				   "<UploadId>b</UploadId></InitiateMultipartUploadResult>",
				   &id),
			 -EBADMSG);
	assert_int_equal(upload_id("<Error><Code>AccessDenied</Code></Error>", &id), -EBADMSG);
	assert_null(id);
}

/* ---- Malformed and hostile -------------------------------------------- */

static void test_malformed(void **state)
{
	static const char *bad[] = {
		"<ListBucketResult>",
		"<ListBucketResult></ListBucketResul>",
		"<ListBucketResult><a></b></ListBucketResult>",
		"<ListBucketResult><a></ListBucketResult></a>",
		"</ListBucketResult>",
		"<ListBucketResult/><ListBucketResult/>",
		"x<ListBucketResult/>",
		"<ListBucketResult/>x",
		"<ListBucketResult><!-- never closed </ListBucketResult>",
		"<?xml version=\"1.0\"<ListBucketResult/>",
		"<ListBucketResult a=\"1></ListBucketResult>",
		"<ListBucketResult a=1></ListBucketResult>",
		"<ListBucketResult a></ListBucketResult>",
		"<ListBucketResult a=\"<\"></ListBucketResult>",
		"<ListBucketResult / >",
		"<ListBucketResult><1a/></ListBucketResult>",
		"<ListBucketResult>< a/></ListBucketResult>",
		"<ListBucketResult><</ListBucketResult>",
		"<![CDATA[x]]><ListBucketResult/>",
		"<!DOCTYPE x [<!ENTITY a \"aaaa\">]><ListBucketResult/>",
		"<ListBucketResult><!ENTITY a \"b\"></ListBucketResult>",
	};

	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		expect_list_error(bad[i]);

	/* A '>' inside a quoted attribute value is fine. */
	struct s3_list_page page;

	assert_int_equal(list("<ListBucketResult a='x>y' b = \"2\"><IsTruncated>false"
			      "</IsTruncated></ListBucketResult>",
			      &page),
			 0);
	s3_list_page_free(&page);
}

static void test_nul_byte(void **state)
{
	static const char doc[] = "<ListBucketResult><Contents><Key>a\0b</Key><Size>1</Size>"
				  "</Contents></ListBucketResult>";
	struct s3_list_page page;
	char *p = exact(doc, sizeof(doc) - 1);

	assert_int_equal(s3_xml_list(p, sizeof(doc) - 1, &page), -EBADMSG);
	free(p);
}

static void test_depth_and_name_limits(void **state)
{
	char doc[2048];
	size_t len;
	struct s3_list_page page;

	/* The root and 15 more levels: the limit, accepted. */
	len = snprintf(doc, sizeof(doc), "<ListBucketResult>");
	for (int i = 0; i < 15; i++)
		len += snprintf(doc + len, sizeof(doc) - len, "<a>");
	for (int i = 0; i < 15; i++)
		len += snprintf(doc + len, sizeof(doc) - len, "</a>");
	snprintf(doc + len, sizeof(doc) - len, "</ListBucketResult>");
	assert_int_equal(list(doc, &page), 0);
	s3_list_page_free(&page);

	/* One more level. */
	len = snprintf(doc, sizeof(doc), "<ListBucketResult>");
	for (int i = 0; i < 16; i++)
		len += snprintf(doc + len, sizeof(doc) - len, "<a>");
	for (int i = 0; i < 16; i++)
		len += snprintf(doc + len, sizeof(doc) - len, "</a>");
	snprintf(doc + len, sizeof(doc) - len, "</ListBucketResult>");
	expect_list_error(doc);

	/* Names of 64 characters pass, 65 do not. */
	char name[66];

	memset(name, 'n', 64);
	name[64] = '\0';
	snprintf(doc, sizeof(doc), "<ListBucketResult><%s/></ListBucketResult>", name);
	assert_int_equal(list(doc, &page), 0);
	s3_list_page_free(&page);
	name[64] = 'n';
	name[65] = '\0';
	snprintf(doc, sizeof(doc), "<ListBucketResult><%s/></ListBucketResult>", name);
	expect_list_error(doc);
}

/* Every prefix of a good page is an incomplete document. */
static void test_truncated_everywhere(void **state)
{
	size_t len = strlen(page1);

	for (size_t cut = 0; cut < len; cut++) {
		struct s3_list_page page;
		char *p = exact(page1, cut);
		int r = s3_xml_list(p, cut, &page);

		free(p);
		if (r != -EBADMSG)
			fail_msg("cut at %zu: got %d", cut, r);
	}
}

/*
 * Each byte of a good page replaced by characters that matter to the
 * reader: whatever comes out is 0 or -EBADMSG, never a crash or a read
 * out of bounds (the ASan build checks the latter).
 */
static void test_mutations(void **state)
{
	static const char subst[] = { '<', '>', '&', '/', '"', ';', '#', 'x', ' ', '!', '?', '\x80' };
	size_t len = strlen(page1);
	unsigned ok = 0;

	for (size_t at = 0; at < len; at++) {
		for (size_t s = 0; s < sizeof(subst); s++) {
			struct s3_list_page page;
			char *p = exact(page1, len);
			int r;

			p[at] = subst[s];
			r = s3_xml_list(p, len, &page);
			free(p);
			if (r == 0) {
				ok++;
				s3_list_page_free(&page);
			} else if (r != -EBADMSG) {
				fail_msg("byte %zu to 0x%02x: got %d", at, (unsigned char)subst[s], r);
			}
		}
	}
	/* Changes inside text mostly leave a good document. */
	assert_true(ok > 0);
}

/* Bytes from a fixed pseudo-random sequence. */
static void test_garbage(void **state)
{
	/* Mostly markup characters, to get past the first byte. */
	static const char set[] = "<>/&;#x=\"' aZ!?-[]";
	uint64_t x = 0x9e3779b97f4a7c15ULL;

	for (int round = 0; round < 2000; round++) {
		size_t len = round % 200;
		char *p = malloc(len ? len : 1);
		struct s3_list_page page;
		struct s3_error err;
		char *id = NULL;

		assert_non_null(p);
		for (size_t i = 0; i < len; i++) {
			x ^= x << 13;
			x ^= x >> 7;
			x ^= x << 17;
			p[i] = set[x % (sizeof(set) - 1)];
		}
		assert_int_equal(s3_xml_list(p, len, &page), -EBADMSG);
		assert_true(s3_xml_error(p, len, &err) < 0);
		assert_int_equal(s3_xml_upload_id(p, len, &id), -EBADMSG);
		free(p);
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_list_page),
		cmocka_unit_test(test_list_last_and_empty_pages),
		cmocka_unit_test(test_list_many),
		cmocka_unit_test(test_list_refusals),
		cmocka_unit_test(test_entities),
		cmocka_unit_test(test_bad_entities),
		cmocka_unit_test(test_cdata),
		cmocka_unit_test(test_error_document),
		cmocka_unit_test(test_error_after_keepalive_whitespace),
		cmocka_unit_test(test_upload_id),
		cmocka_unit_test(test_malformed),
		cmocka_unit_test(test_nul_byte),
		cmocka_unit_test(test_depth_and_name_limits),
		cmocka_unit_test(test_truncated_everywhere),
		cmocka_unit_test(test_mutations),
		cmocka_unit_test(test_garbage),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
