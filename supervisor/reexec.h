/* SPDX-License-Identifier: MIT */
/*
 * Re-executing the supervisor in place (glidectl upgrade --supervisor,
 * SIGHUP, systemd's reload): same pid, so systemd's MAINPID and our
 * workers' parent stay; the control socket crosses the exec as fd 3 the
 * way systemd passes it (LISTEN_FDS/LISTEN_PID); every other fd closes.
 * The new image learns the exports from the state directory and adopts
 * their running workers, which kept serving I/O all along.
 */
#ifndef GLIDEFS_REEXEC_H
#define GLIDEFS_REEXEC_H

#include "supervisor.h"

/* Remember how we were started; call first thing in main. */
void reexec_init(int argc, char **argv);

/*
 * Re-exec once no export is between states (waiting at most a bounded
 * time). Returns 0 when scheduled; a failed exec is logged and the
 * running image carries on.
 */
int reexec_request(struct supervisor *s);

#endif
