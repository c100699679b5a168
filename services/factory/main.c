/* factory: turns depletions into production orders at the legacy factory, and the factory's
 * deliveries into stock.replenished events. */
#include "factory.h"

#include <signal.h>
#include <stdio.h>
#include <string.h>

#include <curl/curl.h>

#include "cfg.h"
#include "log.h"
#include "svc.h"
#include "topics.h"

static void config_read(struct config *c)
{
    char err[256];
    long long pool;

    if (cfg_str("DATABASE_URL", NULL, &c->database_url, err, sizeof(err)) != 0 ||
        cfg_str("KAFKA_BOOTSTRAP", NULL, &c->kafka_bootstrap, err, sizeof(err)) != 0 ||
        cfg_str("HTTP_BIND", "127.0.0.1", &c->http_bind, err, sizeof(err)) != 0 ||
        cfg_str("FACTORY_GROUP", "factory", &c->group, err, sizeof(err)) != 0 ||
        cfg_port("FACTORY_PORT", 8082, &c->port, err, sizeof(err)) != 0 ||
        cfg_int("DB_POOL_SIZE", 8, 2, 256, &pool, err, sizeof(err)) != 0 ||
        cfg_duration_ms("DB_WAIT", "5s", 1, 60000, &c->db_wait_ms, err, sizeof(err)) != 0 ||
        cfg_duration_ms("TOPICS_WAIT", "30s", 1000, 600000, &c->topics_wait_ms,
                        err, sizeof(err)) != 0 ||
        cfg_duration_ms("OUTBOX_POLL_INTERVAL", "5s", 10, 3600000, &c->outbox_poll_ms,
                        err, sizeof(err)) != 0 ||
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
                err, sizeof(err)) != 0)
        svc_die(FACTORY_SERVICE, "%s", err);
    if (retry_policy_from_env(&c->retry, err, sizeof(err)) != 0)
        svc_die(FACTORY_SERVICE, "%s", err);
    c->db_pool_size = (int)pool;
}

int main(void)
{
    struct factory f;
    http_server_t *http;
    outbox_relay_opts_t ro;
    char err[512];
    int sig;

    memset(&f, 0, sizeof(f));
    if (svc_block_signals(err, sizeof(err)) != 0)
        svc_die(FACTORY_SERVICE, "%s", err);
    if (log_init(FACTORY_SERVICE) != 0)
        svc_die(FACTORY_SERVICE, "LOG_LEVEL: must be debug, info, warn or error");
    config_read(&f.cfg);
    if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK)
        svc_die(FACTORY_SERVICE, "curl_global_init failed");

    f.db = db_pool_new(f.cfg.database_url, f.cfg.db_pool_size, store_stmts, store_nstmts,
                       err, sizeof(err));
    if (f.db == NULL)
        svc_die(FACTORY_SERVICE, "DATABASE_URL: %s", err);
    if (topics_service_ready(f.cfg.kafka_bootstrap, FACTORY_SERVICE,
                             (int)f.cfg.topics_wait_ms, err, sizeof(err)) != 0)
        svc_die(FACTORY_SERVICE, "%s", err);

    memset(&ro, 0, sizeof(ro));
    ro.conninfo = f.cfg.database_url;
    ro.bootstrap = f.cfg.kafka_bootstrap;
    ro.producer = FACTORY_SERVICE;
    ro.poll_ms = f.cfg.outbox_poll_ms;
    f.relay = outbox_relay_start(&ro, err, sizeof(err));
    if (f.relay == NULL)
        svc_die(FACTORY_SERVICE, "outbox relay: %s", err);
    f.curl = curl_easy_init();
    if (f.curl == NULL)
        svc_die(FACTORY_SERVICE, "curl_easy_init failed");

    f.consumer_opts.bootstrap = f.cfg.kafka_bootstrap;
    f.consumer_opts.group = f.cfg.group;
    f.consumer_opts.client_id = FACTORY_SERVICE;
    if (router_bind(&f.router, handlers_routes, handlers_nroutes, &f, &f.consumer_opts,
                    err, sizeof(err)) != 0)
        svc_die(FACTORY_SERVICE, "consumer: %s", err);
    f.consumer_opts.policy = &f.cfg.retry;
    f.consumer = kafka_consumer_start(&f.consumer_opts, err, sizeof(err));
    if (f.consumer == NULL)
        svc_die(FACTORY_SERVICE, "consumer: %s", err);

    http = http_server_start(f.cfg.http_bind, f.cfg.port, api_routes, api_nroutes, api_health,
                             &f, err, sizeof(err));
    if (http == NULL)
        svc_die(FACTORY_SERVICE, "HTTP server on %s:%d: %s", f.cfg.http_bind, f.cfg.port, err);
    log_info("started port=%d bind=%s legacy_factory=%s retry_initial_ms=%lld "
             "retry_max_attempts=%d", f.cfg.port, f.cfg.http_bind, f.cfg.legacy_url,
             (long long)f.cfg.retry.initial_ms, f.cfg.retry.max_attempts);

    sig = svc_wait_signal();
    log_info("stopping signal=%s", sig == SIGTERM ? "SIGTERM" : "SIGINT");
    /* Deliveries first (their events go through the relay), then the consumer. */
    http_server_stop(http);
    kafka_consumer_stop(f.consumer);
    curl_easy_cleanup(f.curl);
    outbox_relay_stop(f.relay);
    db_pool_free(f.db);
    curl_global_cleanup();
    log_info("stopped");
    return 0;
}
