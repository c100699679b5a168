/* stock: inventory levels over HTTP, and the admin's way to set them. */
#include "stock.h"

#include <signal.h>
#include <stdio.h>
#include <string.h>

#include "cfg.h"
#include "log.h"
#include "svc.h"
#include "topics.h"

static void config_read(struct config *c)
{
    char err[256];
    long long n;

    if (cfg_str("DATABASE_URL", NULL, &c->database_url, err, sizeof(err)) != 0 ||
        cfg_str("ADMIN_TOKEN", NULL, &c->admin_token, err, sizeof(err)) != 0 ||
        cfg_str("KAFKA_BOOTSTRAP", NULL, &c->kafka_bootstrap, err, sizeof(err)) != 0 ||
        cfg_str("STOCK_GROUP", "stock", &c->group, err, sizeof(err)) != 0 ||
        cfg_str("HTTP_BIND", "127.0.0.1", &c->http_bind, err, sizeof(err)) != 0 ||
        cfg_port("STOCK_PORT", 8081, &c->port, err, sizeof(err)) != 0 ||
        cfg_int("DB_POOL_SIZE", 4, 1, 256, &n, err, sizeof(err)) != 0 ||
        cfg_duration_ms("DB_WAIT", "5s", 1, 60000, &c->db_wait_ms, err, sizeof(err)) != 0 ||
        cfg_duration_ms("TOPICS_WAIT", "30s", 1000, 600000, &c->topics_wait_ms,
                        err, sizeof(err)) != 0)
        svc_die(STOCK_SERVICE, "%s", err);
    if (strlen(c->admin_token) < 16)
        svc_die(STOCK_SERVICE, "ADMIN_TOKEN: must be at least 16 characters");
    c->db_pool_size = (int)n;
}

int main(void)
{
    struct stock s;
    http_server_t *http;
    char err[512];
    int sig;

    memset(&s, 0, sizeof(s));
    if (svc_block_signals(err, sizeof(err)) != 0)
        svc_die(STOCK_SERVICE, "%s", err);
    if (log_init(STOCK_SERVICE) != 0)
        svc_die(STOCK_SERVICE, "LOG_LEVEL: must be debug, info, warn or error");
    config_read(&s.cfg);

    s.db = db_pool_new(s.cfg.database_url, s.cfg.db_pool_size, store_stmts, store_nstmts,
                       err, sizeof(err));
    if (s.db == NULL)
        svc_die(STOCK_SERVICE, "DATABASE_URL: %s", err);

    if (topics_service_ready(s.cfg.kafka_bootstrap, STOCK_SERVICE,
                             (int)s.cfg.topics_wait_ms, err, sizeof(err)) != 0)
        svc_die(STOCK_SERVICE, "%s", err);
    s.consumer_opts.bootstrap = s.cfg.kafka_bootstrap;
    s.consumer_opts.group = s.cfg.group;
    s.consumer_opts.client_id = STOCK_SERVICE;
    if (router_bind(&s.router, handlers_routes, handlers_nroutes, &s, &s.consumer_opts,
                    err, sizeof(err)) != 0)
        svc_die(STOCK_SERVICE, "consumer: %s", err);
    s.consumer = kafka_consumer_start(&s.consumer_opts, err, sizeof(err));
    if (s.consumer == NULL)
        svc_die(STOCK_SERVICE, "consumer: %s", err);

    http = http_server_start(s.cfg.http_bind, s.cfg.port, api_routes, api_nroutes,
                             api_health, &s, err, sizeof(err));
    if (http == NULL)
        svc_die(STOCK_SERVICE, "HTTP server on %s:%d: %s", s.cfg.http_bind, s.cfg.port, err);
    log_info("started port=%d bind=%s", s.cfg.port, s.cfg.http_bind);

    sig = svc_wait_signal();
    log_info("stopping signal=%s", sig == SIGTERM ? "SIGTERM" : "SIGINT");
    http_server_stop(http);
    kafka_consumer_stop(s.consumer);
    db_pool_free(s.db);
    log_info("stopped");
    return 0;
}
