/* retry: stores the records consumers could not process yet and redelivers each to its
 * owner group when due, or gives it up to dead-letter (docs/retry.md). */
#include "retry_service.h"

#include <stdio.h>
#include <string.h>

#include "cfg.h"
#include "svc.h"

static const svc_config_spec_t settings = {
    .port_var = "RETRY_PORT", .port_def = 8084, .pool_def = 4, .pool_min = 2,
};

static void config_read(struct config *c)
{
    char err[256];
    long long batch;

    if (svc_config_read(&settings, &c->svc, err, sizeof(err)) != 0 ||
        cfg_str("RETRY_GROUP", "retry", &c->group, err, sizeof(err)) != 0 ||
        cfg_int("RETRY_BATCH", 500, 1, 10000, &batch, err, sizeof(err)) != 0)
        svc_die(RETRY_SERVICE, "%s", err);
    if (!retry_group_valid(c->group))
        svc_die(RETRY_SERVICE, "RETRY_GROUP: '%s' must be 1 to %d characters of letters, "
                "digits, '.', '_' or '-'", c->group, RETRY_GROUP_MAX);
    c->database_url = c->svc.database_url;
    c->kafka_bootstrap = c->svc.kafka_bootstrap;
    c->db_wait_ms = c->svc.db_wait_ms;
    c->batch = (int)batch;
}

/* The scheduler starts before the consumer (the consumer kicks it for every batch it
 * stores) and stops after it: the consumer's batch is stored and committed, then the
 * scheduler's round finishes; what is left waits in PostgreSQL for the next start. This
 * service's consumer is its own (consumer.c), started where svc_run's would be. */
static int scheduler_up(void *ctx, char *errstr, size_t errstr_size)
{
    struct retry *r = ctx;

    return (r->scheduler = scheduler_start(r, errstr, errstr_size)) != NULL ? 0 : -1;
}

static void scheduler_down(void *ctx)
{
    struct retry *r = ctx;

    scheduler_stop(r->scheduler);
    r->scheduler = NULL;
}

static int consumer_up(void *ctx, char *errstr, size_t errstr_size)
{
    struct retry *r = ctx;

    return (r->consumer = consumer_start(r, errstr, errstr_size)) != NULL ? 0 : -1;
}

static void consumer_down(void *ctx)
{
    struct retry *r = ctx;

    consumer_stop(r->consumer);
    r->consumer = NULL;
}

static void describe(void *ctx, strbuf_t *line)
{
    const struct retry *r = ctx;

    strbuf_addf(line, " group=%s batch=%d", r->cfg.group, r->cfg.batch);
}

int main(void)
{
    struct retry r;
    char err[1024];

    memset(&r, 0, sizeof(r));
    svc_init(RETRY_SERVICE);
    config_read(&r.cfg);
    if ((r.metrics = metrics_new()) == NULL)
        svc_die(RETRY_SERVICE, "out of memory");

    const svc_t sv = {
        .name = RETRY_SERVICE, .metrics = r.metrics, .cfg = &r.cfg.svc, .ctx = &r, .describe = describe,
        .stmts = store_stmts, .nstmts = store_nstmts, .pool = &r.db,
        .before_consumer = { { "scheduler", scheduler_up, scheduler_down } },
        .after_consumer = { { "consumer", consumer_up, consumer_down } },
        .gauges = retry_metrics_gauges, .ngauges = retry_metrics_ngauges,
        .routes = api_routes, .nroutes = api_nroutes, .health = api_health,
    };
    if (svc_run(&sv, err, sizeof(err)) != 0)
        svc_die(RETRY_SERVICE, "%s", err);
    metrics_free(r.metrics);
    return 0;
}
