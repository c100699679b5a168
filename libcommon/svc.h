/* svc: the start-up and shutdown steps every service's main() shares. */
#ifndef DOZEN_SVC_H
#define DOZEN_SVC_H

#include <stddef.h>

/* Blocks SIGTERM and SIGINT in the calling thread (and so in every thread it starts after
 * this) and ignores SIGPIPE. Call first in main(), before any library starts a thread.
 * Returns 0 or -1 with errstr. */
int svc_block_signals(char *errstr, size_t errstr_size);

/* Waits for SIGTERM or SIGINT (blocked by svc_block_signals) and returns its number. */
int svc_wait_signal(void);

/* Prints "<service>: <message>" to stderr and exits 1: for start-up failures in main() only. */
void svc_die(const char *service, const char *fmt, ...)
    __attribute__((format(printf, 2, 3), noreturn));

#endif
