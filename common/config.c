/* SPDX-License-Identifier: MIT */
#include "config.h"

#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "util.h"

#define CONFIG_MAX_BYTES (1U << 20)

static char *trim(char *s)
{
	char *e;

	while (isspace((unsigned char)*s))
		s++;
	e = s + strlen(s);
	while (e > s && isspace((unsigned char)e[-1]))
		*--e = '\0';
	return s;
}

static int parse_line(char *line, const char *file, unsigned lineno, config_cb cb,
		      void *userdata, char *err, size_t err_len)
{
	char why[256] = "";
	char *eq, *key, *value, *hash = strchr(line, '#');
	int r;

	if (hash)
		*hash = '\0';
	line = trim(line);
	if (!*line)
		return 0;
	eq = strchr(line, '=');
	if (!eq) {
		snprintf(err, err_len, "%s:%u: expected 'key = value', got '%s'", file, lineno,
			 line);
		return -EINVAL;
	}
	*eq = '\0';
	key = trim(line);
	value = trim(eq + 1);
	if (!*key) {
		snprintf(err, err_len, "%s:%u: missing key before '='", file, lineno);
		return -EINVAL;
	}
	r = cb(userdata, key, value, why, sizeof(why));
	if (r < 0)
		snprintf(err, err_len, "%s:%u: %s: %s", file, lineno, key,
			 *why ? why : strerror(-r));
	return r;
}

int config_parse_text(const char *text, const char *file, config_cb cb, void *userdata,
		      char *err, size_t err_len)
{
	_cleanup_free_ char *copy = strdup(text);
	unsigned lineno = 0;

	if (!copy)
		return -ENOMEM;
	/* Walk lines by hand (not strtok) so blank lines keep numbers right. */
	for (char *line = copy; line;) {
		char *nl = strchr(line, '\n');
		int r;

		if (nl)
			*nl = '\0';
		r = parse_line(line, file, ++lineno, cb, userdata, err, err_len);
		if (r < 0)
			return r;
		line = nl ? nl + 1 : NULL;
	}
	return 0;
}

int config_parse_file(const char *path, config_cb cb, void *userdata, char *err,
		      size_t err_len)
{
	_cleanup_close_ int fd = open(path, O_RDONLY | O_CLOEXEC);
	_cleanup_free_ char *text = NULL;
	struct stat st;
	ssize_t n;

	if (fd < 0) {
		int r = -errno;

		snprintf(err, err_len, "%s: %s", path, strerror(errno));
		return r;
	}
	if (fstat(fd, &st) < 0 || st.st_size > CONFIG_MAX_BYTES) {
		snprintf(err, err_len, "%s: not a readable file under 1 MiB", path);
		return -EINVAL;
	}
	text = malloc((size_t)st.st_size + 1);
	if (!text)
		return -ENOMEM;
	n = read(fd, text, (size_t)st.st_size);
	if (n < 0) {
		int r = -errno;

		snprintf(err, err_len, "%s: %s", path, strerror(errno));
		return r;
	}
	text[n] = '\0';
	if (memchr(text, '\0', (size_t)n)) {
		snprintf(err, err_len, "%s: contains a NUL byte", path);
		return -EINVAL;
	}
	return config_parse_text(text, path, cb, userdata, err, err_len);
}

const char *env_get(const char *name)
{
	const char *v = getenv(name);

	return v && *v ? v : NULL;
}
