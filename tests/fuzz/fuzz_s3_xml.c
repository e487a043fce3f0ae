/* SPDX-License-Identifier: MIT */
/*
 * libFuzzer target for the reader of S3's XML answers (common/store/
 * xml.c), which come from the network. Every input goes through the three
 * readers: each returns 0 or its documented errors, and what is accepted
 * holds together (keys and tokens NUL-free and non-empty, texts cut to
 * their buffers).
 */
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "store/xml.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const char *doc = (const char *)data;
	struct s3_list_page page;
	struct s3_error err;
	char *id = NULL;
	int r;

	r = s3_xml_list(doc, size, &page);
	if (r != 0 && r != -EBADMSG)
		abort();
	if (r == 0) {
		for (size_t i = 0; i < page.nobjects; i++)
			if (!page.objects[i].key[0] || strlen(page.objects[i].key) >= size)
				abort();
		if (page.truncated && (!page.next_token || !page.next_token[0]))
			abort();
		s3_list_page_free(&page);
	}

	r = s3_xml_error(doc, size, &err);
	if (r != 0 && r != -ENOMSG && r != -EBADMSG)
		abort();
	if (strnlen(err.code, sizeof(err.code)) == sizeof(err.code) ||
	    strnlen(err.message, sizeof(err.message)) == sizeof(err.message))
		abort();

	r = s3_xml_upload_id(doc, size, &id);
	if (r != 0 && r != -EBADMSG)
		abort();
	if (r == 0 && (!id[0] || strlen(id) >= size))
		abort();
	free(id);
	return 0;
}
