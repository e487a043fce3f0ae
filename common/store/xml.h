/* SPDX-License-Identifier: MIT */
/*
 * The XML that S3 answers with, read into C: ListObjectsV2 pages, error
 * documents and InitiateMultipartUploadResult. Underneath is a small
 * checking reader, not a general parser: documents must be well formed,
 * DTDs are refused, entities are the five predefined ones and character
 * references, and nesting and name lengths are bounded. Input is bounded
 * by its length, never by a NUL; whatever is malformed, truncated or
 * over a limit is -EBADMSG, and nothing is read outside [doc, doc + len).
 */
#ifndef GLIDEFS_S3_XML_H
#define GLIDEFS_S3_XML_H

#include <stdbool.h>
#include <stddef.h>

#include "store.h"

struct s3_list_page {
	struct store_object *objects; /* full keys, as listed */
	size_t nobjects;
	bool truncated;	  /* IsTruncated: more pages follow */
	char *next_token; /* NextContinuationToken; set whenever truncated */
};

/*
 * A ListBucketResult (ListObjectsV2). 0, -EBADMSG (also for a Contents
 * without Key or Size, a KeyCount that does not match, or a truncated
 * page without a token) or -ENOMEM. Release with s3_list_page_free().
 */
int s3_xml_list(const char *doc, size_t len, struct s3_list_page *page);
void s3_list_page_free(struct s3_list_page *page);

struct s3_error {
	char code[64];	   /* "SlowDown", "NoSuchKey" ... */
	char message[128]; /* cut to fit */
};

/*
 * An <Error> document: 0 with err filled in, -ENOMSG for a document
 * whose root is something else, -EBADMSG for one that is not XML.
 */
int s3_xml_error(const char *doc, size_t len, struct s3_error *err);

/* The UploadId of an InitiateMultipartUploadResult: 0, -EBADMSG, -ENOMEM. */
int s3_xml_upload_id(const char *doc, size_t len, char **upload_id);

#endif
