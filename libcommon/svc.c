/* svc: what every program's main() does first: signals, the log, and dying at start-up.
 * The service skeleton (svc_config_read, svc_run) is in svc_run.c: the stand-ins and tools
 * link this file alone. */
#include "svc.h"

#include <errno.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "log.h"

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

void svc_init(const char *service)
{
    char err[256];

    if (svc_block_signals(err, sizeof(err)) != 0)
        svc_die(service, "%s", err);
    if (log_init(service) != 0)
        svc_die(service, "LOG_LEVEL: must be debug, info, warn or error");
}
