/* factory: turns depletions into production orders at the legacy factory, and the factory's
 * deliveries into stock.replenished events. */
#include "factory.h"

#include <stdio.h>
#include <string.h>

#include <curl/curl.h>

#include "cfg.h"
#include "log.h"
#include "svc.h"

static const svc_config_spec_t settings = {
    .port_var = "FACTORY_PORT", .port_def = 8082, .pool_def = 8, .pool_min = 2, .outbox = 1,
};

/* An attribute the Legacy Factory API is sent as it is: FACTORY_ATTR_RULE. Returns 0, or
 * -1 with errstr naming the variable. */
static int attr_check(const char *name, const char *value, char *errstr, size_t errstr_size)
{
    if (callback_attr_valid(value))
        return 0;
    snprintf(errstr, errstr_size, "%s: '%.64s' must be %s", name, value, FACTORY_ATTR_RULE);
    return -1;
}

static void config_read(struct config *c)
{
    char err[256];

    if (svc_config_read(&settings, &c->svc, err, sizeof(err)) != 0 ||
        cfg_str("FACTORY_GROUP", "factory", &c->group, err, sizeof(err)) != 0 ||
        cfg_duration_ms("FACTORY_CONNECT_TIMEOUT", "2s", 10, 60000, &c->connect_timeout_ms,
                        err, sizeof(err)) != 0 ||
        cfg_duration_ms("FACTORY_TIMEOUT", "10s", 10, 300000, &c->call_timeout_ms,
                        err, sizeof(err)) != 0 ||
        cfg_duration_ms("FACTORY_DELIVERY_TIMEOUT", "10m", 1000, 604800000,
                        &c->delivery_timeout_ms, err, sizeof(err)) != 0 ||
        cfg_duration_ms("FACTORY_RETRY_DEADLINE", "0", 0, 604800000LL, &c->retry_deadline_ms,
                        err, sizeof(err)) != 0 ||
        cfg_url("LEGACY_FACTORY_URL", "http://127.0.0.1:9101", &c->legacy_url,
                err, sizeof(err)) != 0 ||
        cfg_url("FACTORY_CALLBACK_URL", "http://127.0.0.1:8082", &c->callback_url,
                err, sizeof(err)) != 0 ||
        cfg_str("LEGACY_FACTORY_ID", "FF-500293", &c->factory_id, err, sizeof(err)) != 0 ||
        attr_check("LEGACY_FACTORY_ID", c->factory_id, err, sizeof(err)) != 0 ||
        cfg_str("LEGACY_FACTORY_REQUESTER", "dozen", &c->requester, err, sizeof(err)) != 0 ||
        attr_check("LEGACY_FACTORY_REQUESTER", c->requester, err, sizeof(err)) != 0 ||
        cfg_str("LEGACY_FACTORY_GROUP_ID", "stock-arrival-group", &c->group_id,
                err, sizeof(err)) != 0 ||
        attr_check("LEGACY_FACTORY_GROUP_ID", c->group_id, err, sizeof(err)) != 0)
        svc_die(FACTORY_SERVICE, "%s", err);
    if (retry_policy_from_env(&c->retry, err, sizeof(err)) != 0)
        svc_die(FACTORY_SERVICE, "%s", err);
    c->db_wait_ms = c->svc.db_wait_ms;
}

/* The consumer thread's curl handle, for legacy_call: made before the consumer starts,
 * cleaned up after it stopped. */
static int curl_start(void *ctx, char *errstr, size_t errstr_size)
{
    struct factory *f = ctx;

    if ((f->curl = curl_easy_init()) == NULL)
        snprintf(errstr, errstr_size, "curl_easy_init failed");
    return f->curl != NULL ? 0 : -1;
}

static void curl_stop(void *ctx)
{
    struct factory *f = ctx;

    curl_easy_cleanup(f->curl);
    f->curl = NULL;
}

static void describe(void *ctx, strbuf_t *line)
{
    const struct factory *f = ctx;

    strbuf_addf(line, " legacy_factory=%s factory_id=%s requester=%s group_id=%s "
                "retry_initial_ms=%lld retry_max_attempts=%d", f->cfg.legacy_url,
                LOG_Q(f->cfg.factory_id), LOG_Q(f->cfg.requester), LOG_Q(f->cfg.group_id),
                (long long)f->cfg.retry.initial_ms, f->cfg.retry.max_attempts);
}

int main(void)
{
    struct factory f;
    char err[1024];

    memset(&f, 0, sizeof(f));
    svc_init(FACTORY_SERVICE);
    config_read(&f.cfg);
    if ((f.metrics = metrics_new()) == NULL)
        svc_die(FACTORY_SERVICE, "out of memory");
    factory_metrics_init(f.metrics);
    if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK)
        svc_die(FACTORY_SERVICE, "curl_global_init failed");

    f.consumer_opts.group = f.cfg.group;
    if (router_bind(&f.router, handlers_routes, handlers_nroutes, &f, &f.consumer_opts,
                    err, sizeof(err)) != 0)
        svc_die(FACTORY_SERVICE, "consumer: %s", err);
    f.consumer_opts.policy = &f.cfg.retry;

    /* Deliveries stop first (their events go through the relay), then the consumer. */
    const svc_t sv = {
        .name = FACTORY_SERVICE, .metrics = f.metrics, .cfg = &f.cfg.svc, .ctx = &f, .describe = describe,
        .stmts = store_stmts, .nstmts = store_nstmts, .pool = &f.db, .relay = &f.relay,
        .before_consumer = { { NULL, curl_start, curl_stop } },
        .consumer_opts = &f.consumer_opts, .consumer = &f.consumer,
        .after_consumer = { { "production order sweeper", sweeper_start, sweeper_stop_join } },
        .gauges = factory_metrics_gauges, .ngauges = factory_metrics_ngauges,
        .routes = api_routes, .nroutes = api_nroutes, .health = api_health,
    };
    if (svc_run(&sv, err, sizeof(err)) != 0)
        svc_die(FACTORY_SERVICE, "%s", err);
    metrics_free(f.metrics);
    curl_global_cleanup();
    return 0;
}
