/* SPDX-License-Identifier: MIT */
#include "mount_ns.h"

#include <errno.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>

#include "log.h"
#include "util.h"

/* mountinfo escapes space, tab, newline and backslash as \ooo. */
static void unescape(char *s)
{
	char *out = s;

	for (; *s; s++) {
		if (s[0] == '\\' && s[1] >= '0' && s[1] <= '7' && s[2] >= '0' && s[2] <= '7' &&
		    s[3] >= '0' && s[3] <= '7') {
			*out++ = (char)((s[1] - '0') << 6 | (s[2] - '0') << 3 | (s[3] - '0'));
			s += 3;
		} else {
			*out++ = *s;
		}
	}
	*out = '\0';
}

/*
 * Fields: id parent major:minor root mountpoint options [optional...] -
 * fstype source superoptions. Returns the mount point of a mount whose
 * source is a ublk block device, or NULL.
 */
static char *ublk_mount_point(char *line)
{
	char *save = NULL, *field, *mnt = NULL;
	int i = 0;
	bool after_dash = false;

	for (field = strtok_r(line, " \n", &save); field; field = strtok_r(NULL, " \n", &save)) {
		if (i == 4)
			mnt = field;
		if (after_dash) {
			/* fstype first, then the source. */
			field = strtok_r(NULL, " \n", &save);
			if (!field || strncmp(field, "/dev/ublkb", 10))
				return NULL;
			unescape(mnt);
			return mnt;
		}
		if (i > 5 && !strcmp(field, "-"))
			after_dash = true;
		i++;
	}
	return NULL;
}

int mount_ns_isolate(void)
{
	_cleanup_free_ char *line = NULL;
	size_t cap = 0;
	FILE *f;
	int r = 0;

	if (unshare(CLONE_NEWNS) < 0)
		return log_error_errno(-errno, "unshare the mount namespace");
	if (mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL) < 0)
		return log_error_errno(-errno, "make the mount namespace private");
	f = fopen("/proc/self/mountinfo", "re");
	if (!f)
		return log_error_errno(-errno, "open /proc/self/mountinfo");
	while (getline(&line, &cap, f) > 0) {
		char *mnt = ublk_mount_point(line);

		/* Lazily: nothing in this namespace uses it, and it may be busy. */
		if (mnt && umount2(mnt, MNT_DETACH) < 0 && errno != EINVAL && errno != ENOENT) {
			r = log_error_errno(-errno, "detach the inherited mount %s", mnt);
			break;
		}
	}
	fclose(f);
	return r;
}
