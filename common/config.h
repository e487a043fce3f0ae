/* SPDX-License-Identifier: MIT */
/*
 * The configuration file format shared by every glidefs program:
 * `key = value` lines, `#` comments, blank lines ignored, no sections.
 * Errors name the file, the line and the key.
 */
#ifndef GLIDEFS_CONFIG_H
#define GLIDEFS_CONFIG_H

#include <stddef.h>

struct config_pos {
	const char *file;
	unsigned line;
};

/*
 * Called once per setting. Return 0, or a negative errno after writing a
 * one-line reason into why (the parser adds file, line and key).
 */
typedef int (*config_cb)(void *userdata, const char *key, const char *value, char *why,
			 size_t why_len);

/*
 * Parse text (file names it in messages). On error returns a negative
 * errno and writes "FILE:LINE: KEY: reason" into err.
 */
int config_parse_text(const char *text, const char *file, config_cb cb, void *userdata,
		      char *err, size_t err_len);

/* Read and parse a file; a missing file is -ENOENT with err set. */
int config_parse_file(const char *path, config_cb cb, void *userdata, char *err,
		      size_t err_len);

/* An environment variable, or NULL when unset or empty (empty is unset). */
const char *env_get(const char *name);

#endif
