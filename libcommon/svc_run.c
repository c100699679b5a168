/* svc_run: the service skeleton: the settings every service shares (svc_config_read) and
 * svc_run, which owns start-up order, the pool, relay, consumer, HTTP server, signals and
 * shutdown order. Contract in svc.h. */
#include "svc.h"

#include <signal.h>
#include <stdio.h>
#include <string.h>

#include "cfg.h"
#include "health.h"
#include "log.h"
#include "topics.h"

int svc_config_read(const svc_config_spec_t *spec, svc_config_t *out,
                    char *errstr, size_t errstr_size)
{
    long long pool, threads, workers, max_conns, per_client;

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
         cfg_duration_ms("OUTBOX_POLL_INTERVAL", "1s", 10, 3600000, &out->outbox_poll_ms,
                         errstr, errstr_size) != 0) ||
        cfg_str("INSTANCE_ID", "", &out->instance_id, errstr, errstr_size) != 0 ||
        cfg_duration_ms("DB_STATEMENT_TIMEOUT", "30s", 0, 3600000,
                        &out->db_statement_timeout_ms, errstr, errstr_size) != 0 ||
        cfg_duration_ms("DB_LEADER_LEASE", "3s", 1000, 60000, &out->db_leader_lease_ms,
                        errstr, errstr_size) != 0 ||
        cfg_int("HTTP_THREADS", HTTP_DEFAULT_THREADS, 1, 256, &threads, errstr,
                errstr_size) != 0 ||
        cfg_int("HTTP_WORKERS", spec->workers_def, 0, HTTP_MAX_WORKERS, &workers, errstr,
                errstr_size) != 0 ||
        cfg_duration_ms("HTTP_REQUEST_TIMEOUT", "10s", 100, 600000,
                        &out->http_request_timeout_ms, errstr, errstr_size) != 0 ||
        cfg_int("HTTP_MAX_CONNECTIONS", 0, 0, 1000000, &max_conns, errstr,
                errstr_size) != 0 ||
        cfg_int("HTTP_MAX_CONNECTIONS_PER_CLIENT", 0, 0, 1000000, &per_client, errstr,
                errstr_size) != 0)
        return -1;
    out->http_threads = (int)threads;
    out->http_workers = (int)workers;
    out->http_max_connections = (int)max_conns;
    out->http_max_per_client = (int)per_client;
    if (out->instance_id[0] == '\0') {
        out->instance_id = NULL;
    } else if (!kafka_instance_id_valid(out->instance_id)) {
        snprintf(errstr, errstr_size, "INSTANCE_ID: '%.80s' must be 1 to %d characters of "
                 "letters, digits, '.', '_' or '-'", out->instance_id, KAFKA_INSTANCE_ID_MAX);
        return -1;
    }
    out->db_pool_size = (int)pool;
    return 0;
}

/* How far svc_run's start-up got: each stage is stopped again, in reverse, by
 * stop_all(). */
enum svc_stage {
    STAGE_NONE = 0,
    STAGE_POOL,
    STAGE_RELAY,
    STAGE_BEFORE,
    STAGE_CONSUMER,
    STAGE_AFTER,
    STAGE_HTTP
};

/* Starts hooks in order; *started counts those running (stop_all stops them). Returns 0,
 * or -1 with errstr ("<what>: ...") at the first that fails. */
static int hooks_start(const svc_hook_t *h, void *ctx, size_t *started,
                       char *errstr, size_t errstr_size)
{
    char err[512];

    for (*started = 0; *started < SVC_HOOKS_MAX && h[*started].start != NULL; (*started)++) {
        err[0] = '\0';
        if (h[*started].start(ctx, err, sizeof(err)) != 0) {
            if (h[*started].what != NULL)
                snprintf(errstr, errstr_size, "%s: %s", h[*started].what, err);
            else
                snprintf(errstr, errstr_size, "%s", err);
            return -1;
        }
    }
    return 0;
}

/* Stops the first n hooks, last to first. */
static void hooks_stop(const svc_hook_t *h, void *ctx, size_t n)
{
    while (n > 0) {
        n--;
        if (h[n].stop != NULL)
            h[n].stop(ctx);
    }
}

/* What is running: the stage reached and how many hooks of each place started. */
struct svc_progress {
    enum svc_stage stage;
    size_t nbefore, nafter;
    http_server_t *http;
    metrics_sql_t *sql[2];       /* the outbox's gauges, the service's */
    health_kafka_t *kafka_health; /* from STAGE_POOL on */
    const svc_t *s;
};

/* GET /readyz: the service's own check (PostgreSQL, its consumer thread), the outbox
 * relay where the service has one, fresh Kafka metadata, then every consumer group member
 * of the process assigned. */
static int svc_ready(void *ctx, char *errstr, size_t errstr_size)
{
    const struct svc_progress *p = ctx;

    if (p->s->health != NULL && p->s->health(p->s->ctx, errstr, errstr_size) != 0)
        return -1;
    if (p->s->relay != NULL && outbox_relay_status(*p->s->relay, errstr, errstr_size) != 0)
        return -1;
    if (health_kafka_status(p->kafka_health, errstr, errstr_size) != 0)
        return -1;
    return health_consumers_ready(errstr, errstr_size);
}

/* Stops everything p says is running, in shutdown order. */
static void stop_all(const svc_t *s, const struct svc_progress *p)
{
    if (p->stage >= STAGE_HTTP)
        http_server_stop(p->http);
    metrics_sql_stop(p->sql[0]); /* nothing renders the registry any more */
    metrics_sql_stop(p->sql[1]);
    hooks_stop(s->after_consumer, s->ctx, p->nafter);
    if (p->stage >= STAGE_CONSUMER && s->consumer_opts != NULL) {
        kafka_consumer_stop(*s->consumer);
        *s->consumer = NULL;
    }
    hooks_stop(s->before_consumer, s->ctx, p->nbefore);
    health_kafka_stop(p->kafka_health);
    if (p->stage >= STAGE_RELAY && s->relay != NULL) {
        outbox_relay_stop(*s->relay);
        *s->relay = NULL;
    }
    if (p->stage >= STAGE_POOL) {
        db_pool_free(*s->pool);
        *s->pool = NULL;
    }
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
    struct svc_progress p = { STAGE_NONE, 0, 0, NULL, { NULL, NULL }, NULL, s };
    outbox_relay_opts_t ro;
    char err[512];
    int ret = -1, sig;
    http_server_opts_t ho;

    if (s->metrics == NULL) {
        snprintf(errstr, errstr_size, "metrics: no registry");
        goto done;
    }
    if (metrics_add_collector(s->metrics, metrics_process_collect, NULL) != 0) {
        snprintf(errstr, errstr_size, "metrics: too many collectors");
        goto done;
    }
    db_set_statement_timeout(c->db_statement_timeout_ms);
    *s->pool = db_pool_new(c->database_url, c->db_pool_size, s->stmts, s->nstmts,
                           err, sizeof(err));
    if (*s->pool == NULL) {
        snprintf(errstr, errstr_size, "DATABASE_URL: %s", err);
        goto done;
    }
    p.stage = STAGE_POOL;
    if ((s->relay != NULL &&
         (p.sql[0] = metrics_sql_start(s->metrics, *s->pool, s->name, outbox_metrics_gauges,
                                       outbox_metrics_ngauges, 0, err, sizeof(err))) == NULL) ||
        (s->ngauges > 0 &&
         (p.sql[1] = metrics_sql_start(s->metrics, *s->pool, s->name, s->gauges, s->ngauges,
                                       0, err, sizeof(err))) == NULL)) {
        snprintf(errstr, errstr_size, "metrics: %s", err);
        goto done;
    }
    if (topics_service_ready(c->kafka_bootstrap, s->name, (int)c->topics_wait_ms,
                             errstr, errstr_size) != 0)
        goto done;
    p.kafka_health = health_kafka_start(c->kafka_bootstrap, s->name, err, sizeof(err));
    if (p.kafka_health == NULL) {
        snprintf(errstr, errstr_size, "Kafka health: %s", err);
        goto done;
    }

    if (s->relay != NULL) {
        memset(&ro, 0, sizeof(ro));
        ro.conninfo = c->database_url;
        ro.bootstrap = c->kafka_bootstrap;
        ro.producer = s->name;
        ro.poll_ms = c->outbox_poll_ms;
        ro.lease_ms = c->db_leader_lease_ms;
        ro.metrics = s->metrics;
        *s->relay = outbox_relay_start(&ro, err, sizeof(err));
        if (*s->relay == NULL) {
            snprintf(errstr, errstr_size, "outbox relay: %s", err);
            goto done;
        }
    }
    p.stage = STAGE_RELAY;
    if (hooks_start(s->before_consumer, s->ctx, &p.nbefore, errstr, errstr_size) != 0)
        goto done;
    p.stage = STAGE_BEFORE;

    if (s->consumer_opts != NULL) {
        if (s->consumer_opts->bootstrap == NULL)
            s->consumer_opts->bootstrap = c->kafka_bootstrap;
        if (s->consumer_opts->client_id == NULL)
            s->consumer_opts->client_id = s->name;
        if (s->consumer_opts->instance_id == NULL)
            s->consumer_opts->instance_id = c->instance_id;
        if (s->consumer_opts->metrics == NULL)
            s->consumer_opts->metrics = s->metrics;
        *s->consumer = kafka_consumer_start(s->consumer_opts, err, sizeof(err));
        if (*s->consumer == NULL) {
            snprintf(errstr, errstr_size, "consumer: %s", err);
            goto done;
        }
    }
    p.stage = STAGE_CONSUMER;
    if (hooks_start(s->after_consumer, s->ctx, &p.nafter, errstr, errstr_size) != 0)
        goto done;
    p.stage = STAGE_AFTER;

    memset(&ho, 0, sizeof(ho));
    ho.bind_addr = c->http_bind;
    ho.port = c->port;
    ho.routes = s->routes;
    ho.nroutes = s->nroutes;
    ho.health = svc_ready;
    ho.health_ctx = &p;
    ho.ctx = s->ctx;
    ho.metrics = s->metrics;
    ho.threads = c->http_threads;
    ho.workers = c->http_workers;
    ho.request_timeout_ms = c->http_request_timeout_ms;
    ho.max_connections = c->http_max_connections;
    ho.max_per_client = c->http_max_per_client;
    p.http = http_server_start_opts(&ho, err, sizeof(err));
    if (p.http == NULL) {
        snprintf(errstr, errstr_size, "HTTP server on %s:%d: %s", c->http_bind, c->port,
                 err);
        goto done;
    }
    p.stage = STAGE_HTTP;
    log_started(s);

    sig = svc_wait_signal();
    log_info("stopping signal=%s", sig == SIGTERM ? "SIGTERM" : "SIGINT");
    ret = 0;

done:
    stop_all(s, &p);
    if (ret == 0)
        log_info("stopped");
    return ret;
}
