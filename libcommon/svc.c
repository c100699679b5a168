/* svc: the start-up and shutdown steps every service's main() shares. */
#include "svc.h"

#include <errno.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int svc_block_signals(char *errstr, size_t errstr_size)
{
    sigset_t set;
    int err;

    sigemptyset(&set);
    sigaddset(&set, SIGTERM);
    sigaddset(&set, SIGINT);
    err = pthread_sigmask(SIG_BLOCK, &set, NULL);
    if (err != 0) {
        snprintf(errstr, errstr_size, "pthread_sigmask: %s", strerror(err));
        return -1;
    }
    if (signal(SIGPIPE, SIG_IGN) == SIG_ERR) {
        snprintf(errstr, errstr_size, "signal(SIGPIPE): %s", strerror(errno));
        return -1;
    }
    return 0;
}

int svc_wait_signal(void)
{
    sigset_t set;
    int sig = 0;

    sigemptyset(&set);
    sigaddset(&set, SIGTERM);
    sigaddset(&set, SIGINT);
    while (sigwait(&set, &sig) != 0)
        ;
    return sig;
}

void svc_die(const char *service, const char *fmt, ...)
{
    va_list ap;

    fprintf(stderr, "%s: ", service);
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fputc('\n', stderr);
    exit(1);
}
