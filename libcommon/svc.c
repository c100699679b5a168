/* svc: the service skeleton: common settings, start-up order, signals, shutdown order. */
#include "svc.h"

#include <errno.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cfg.h"
#include "log.h"
#include "topics.h"

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

int svc_config_read(const svc_config_spec_t *spec, svc_config_t *out,
                    char *errstr, size_t errstr_size)
{
    long long pool;

    memset(out, 0, sizeof(*out));
    if (cfg_str("DATABASE_URL", NULL, &out->database_url, errstr, errstr_size) != 0 ||
        cfg_str("KAFKA_BOOTSTRAP", NULL, &out->kafka_bootstrap, errstr, errstr_size) != 0 ||
        cfg_str("HTTP_BIND", "127.0.0.1", &out->http_bind, errstr, errstr_size) != 0 ||
        cfg_port(spec->port_var, spec->port_def, &out->port, errstr, errstr_size) != 0 ||
        cfg_int("DB_POOL_SIZE", spec->pool_def, spec->pool_min, SVC_POOL_MAX, &pool,
                errstr, errstr_size) != 0 ||
        cfg_duration_ms("DB_WAIT", "5s", 1, 60000, &out->db_wait_ms, errstr,
                        errstr_size) != 0 ||
        cfg_duration_ms("TOPICS_WAIT", "30s", 1000, 600000, &out->topics_wait_ms,
                        errstr, errstr_size) != 0 ||
        (spec->outbox &&
         cfg_duration_ms("OUTBOX_POLL_INTERVAL", "5s", 10, 3600000, &out->outbox_poll_ms,
                         errstr, errstr_size) != 0))
        return -1;
    out->db_pool_size = (int)pool;
    return 0;
}

/* How far svc_run's start-up got: each stage is stopped again, in reverse, by
 * stop_from(). */
enum svc_stage {
    STAGE_NONE = 0,
    STAGE_POOL,
    STAGE_RELAY,
    STAGE_BEFORE,
    STAGE_CONSUMER,
    STAGE_AFTER,
    STAGE_HTTP
};

/* Stops everything up to and including stage, in shutdown order. */
static void stop_from(const svc_t *s, enum svc_stage stage, http_server_t *http)
{
    if (stage >= STAGE_HTTP)
        http_server_stop(http);
    if (stage >= STAGE_AFTER && s->after_consumer.stop != NULL)
        s->after_consumer.stop(s->ctx);
    if (stage >= STAGE_CONSUMER && s->consumer_opts != NULL) {
        kafka_consumer_stop(*s->consumer);
        *s->consumer = NULL;
    }
    if (stage >= STAGE_BEFORE && s->before_consumer.stop != NULL)
        s->before_consumer.stop(s->ctx);
    if (stage >= STAGE_RELAY && s->relay != NULL) {
        outbox_relay_stop(*s->relay);
        *s->relay = NULL;
    }
    if (stage >= STAGE_POOL) {
        db_pool_free(*s->pool);
        *s->pool = NULL;
    }
}

/* Starts one hook (NULL start: nothing to do). */
static int hook_start(const svc_hook_t *h, void *ctx, char *errstr, size_t errstr_size)
{
    return h->start != NULL ? h->start(ctx, errstr, errstr_size) : 0;
}

/* The "started" line: port, bind and what the service describes. */
static void log_started(const svc_t *s)
{
    strbuf_t line = STRBUF_INIT;

    if (s->describe != NULL)
        s->describe(s->ctx, &line);
    log_info("started port=%d bind=%s%s", s->cfg->port, s->cfg->http_bind,
             line.failed ? " describe=failed" : line.buf);
    strbuf_release(&line);
}

int svc_run(const svc_t *s, char *errstr, size_t errstr_size)
{
    const svc_config_t *c = s->cfg;
    enum svc_stage stage = STAGE_NONE;
    http_server_t *http = NULL;
    outbox_relay_opts_t ro;
    char err[512];
    int ret = -1, sig;

    *s->pool = db_pool_new(c->database_url, c->db_pool_size, s->stmts, s->nstmts,
                           err, sizeof(err));
    if (*s->pool == NULL) {
        snprintf(errstr, errstr_size, "DATABASE_URL: %s", err);
        goto done;
    }
    stage = STAGE_POOL;
    if (topics_service_ready(c->kafka_bootstrap, s->name, (int)c->topics_wait_ms,
                             errstr, errstr_size) != 0)
        goto done;

    if (s->relay != NULL) {
        memset(&ro, 0, sizeof(ro));
        ro.conninfo = c->database_url;
        ro.bootstrap = c->kafka_bootstrap;
        ro.producer = s->name;
        ro.poll_ms = c->outbox_poll_ms;
        *s->relay = outbox_relay_start(&ro, err, sizeof(err));
        if (*s->relay == NULL) {
            snprintf(errstr, errstr_size, "outbox relay: %s", err);
            goto done;
        }
    }
    stage = STAGE_RELAY;
    if (hook_start(&s->before_consumer, s->ctx, errstr, errstr_size) != 0)
        goto done;
    stage = STAGE_BEFORE;

    if (s->consumer_opts != NULL) {
        if (s->consumer_opts->bootstrap == NULL)
            s->consumer_opts->bootstrap = c->kafka_bootstrap;
        if (s->consumer_opts->client_id == NULL)
            s->consumer_opts->client_id = s->name;
        *s->consumer = kafka_consumer_start(s->consumer_opts, err, sizeof(err));
        if (*s->consumer == NULL) {
            snprintf(errstr, errstr_size, "consumer: %s", err);
            goto done;
        }
    }
    stage = STAGE_CONSUMER;
    if (hook_start(&s->after_consumer, s->ctx, errstr, errstr_size) != 0)
        goto done;
    stage = STAGE_AFTER;

    http = http_server_start(c->http_bind, c->port, s->routes, s->nroutes, s->health, s->ctx,
                             err, sizeof(err));
    if (http == NULL) {
        snprintf(errstr, errstr_size, "HTTP server on %s:%d: %s", c->http_bind, c->port, err);
        goto done;
    }
    stage = STAGE_HTTP;
    log_started(s);

    sig = svc_wait_signal();
    log_info("stopping signal=%s", sig == SIGTERM ? "SIGTERM" : "SIGINT");
    ret = 0;

done:
    stop_from(s, stage, http);
    if (ret == 0)
        log_info("stopped");
    return ret;
}
