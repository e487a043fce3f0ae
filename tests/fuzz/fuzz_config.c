/* SPDX-License-Identifier: MIT */
/*
 * libFuzzer target for the text files glidefs reads: the configuration
 * format (common/config.c) with the value parsers its keys use, and the
 * supervisor's export records (supervisor/record.c), which a crash, a full
 * disk or an operator's editor may leave in any state.
 *
 * Input: byte 0 picks the reader, the rest is the file's text. Beyond "no
 * crash, no leak, no overread", it checks that a refused file's message
 * names the file, and that a record it accepts formats and parses back to
 * the same record (what the supervisor saves it must be able to load).
 */
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "config.h"
#include "record.h"
#include "util.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define FILE_NAME "fuzz.conf"

/* Every value goes through the parsers the supervisor's keys use. */
static int any_key(void *userdata, const char *key, const char *value, char *why,
		   size_t why_len)
{
	uint64_t v;
	gid_t g;

	if (!*key)
		abort();
	(void)parse_size(value, &v);
	(void)parse_uint(value, 1, 4096, &v);
	(void)parse_group(value, &g);
	if (!strcmp(key, "refuse"))
		return snprintf(why, why_len, "'%s' refused", value), -EINVAL;
	return 0;
}

static void check_refusal(int r, const char *err)
{
	if (r < 0 && strncmp(err, FILE_NAME, strlen(FILE_NAME)) != 0)
		abort();
}

static void record_round_trip(const char *text)
{
	struct export_record rec, again;
	char err[512], buf[2048], buf2[2048];
	int r;

	r = record_parse(text, FILE_NAME, &rec, err, sizeof(err));
	check_refusal(r, err);
	if (r < 0)
		return;
	/* Compared as text: a struct's padding is no part of the record. */
	if (record_format(&rec, buf, sizeof(buf)) < 0 ||
	    record_parse(buf, FILE_NAME, &again, err, sizeof(err)) < 0 ||
	    record_format(&again, buf2, sizeof(buf2)) < 0 || strcmp(buf, buf2) != 0)
		abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char err[512];
	char *text;

	if (size < 1)
		return 0;
	text = malloc(size);
	if (!text)
		return 0;
	memcpy(text, data + 1, size - 1);
	text[size - 1] = '\0';
	if (data[0] & 1)
		record_round_trip(text);
	else
		check_refusal(config_parse_text(text, FILE_NAME, any_key, NULL, err, sizeof(err)),
			      err);
	free(text);
	return 0;
}
