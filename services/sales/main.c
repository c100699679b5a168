/* sales: takes orders over HTTP; stock decrement, order row and events in one transaction. */
#include "sales.h"

#include <signal.h>
#include <stdio.h>
#include <string.h>

#include "cfg.h"
#include "http.h"
#include "log.h"
#include "svc.h"
#include "topics.h"

static void config_read(struct config *c)
{
    char err[256];
    long long n;

    if (cfg_str("DATABASE_URL", NULL, &c->database_url, err, sizeof(err)) != 0 ||
        cfg_str("KAFKA_BOOTSTRAP", NULL, &c->kafka_bootstrap, err, sizeof(err)) != 0 ||
        cfg_str("HTTP_BIND", "127.0.0.1", &c->http_bind, err, sizeof(err)) != 0 ||
        cfg_port("SALES_PORT", 8080, &c->port, err, sizeof(err)) != 0 ||
        cfg_int("DB_POOL_SIZE", 16, 1, 256, &n, err, sizeof(err)) != 0 ||
        cfg_duration_ms("DB_WAIT", "5s", 1, 60000, &c->db_wait_ms, err, sizeof(err)) != 0 ||
        cfg_duration_ms("OUTBOX_POLL_INTERVAL", "5s", 10, 3600000, &c->outbox_poll_ms,
                        err, sizeof(err)) != 0 ||
        cfg_duration_ms("TOPICS_WAIT", "30s", 1000, 600000, &c->topics_wait_ms,
                        err, sizeof(err)) != 0)
        svc_die(SALES_SERVICE, "%s", err);
    c->db_pool_size = (int)n;
}

int main(void)
{
    struct sales s;
    http_server_t *http = NULL;
    outbox_relay_opts_t ro;
    char err[512];
    int sig;

    memset(&s, 0, sizeof(s));
    if (svc_block_signals(err, sizeof(err)) != 0)
        svc_die(SALES_SERVICE, "%s", err);
    if (log_init(SALES_SERVICE) != 0)
        svc_die(SALES_SERVICE, "LOG_LEVEL: must be debug, info, warn or error");
    config_read(&s.cfg);

    s.db = db_pool_new(s.cfg.database_url, s.cfg.db_pool_size, store_stmts, store_nstmts,
                       err, sizeof(err));
    if (s.db == NULL)
        svc_die(SALES_SERVICE, "DATABASE_URL: %s", err);

    if (topics_service_ready(s.cfg.kafka_bootstrap, SALES_SERVICE,
                             (int)s.cfg.topics_wait_ms, err, sizeof(err)) != 0)
        svc_die(SALES_SERVICE, "%s", err);

    memset(&ro, 0, sizeof(ro));
    ro.conninfo = s.cfg.database_url;
    ro.bootstrap = s.cfg.kafka_bootstrap;
    ro.producer = SALES_SERVICE;
    ro.poll_ms = s.cfg.outbox_poll_ms;
    s.relay = outbox_relay_start(&ro, err, sizeof(err));
    if (s.relay == NULL)
        svc_die(SALES_SERVICE, "outbox relay: %s", err);

    http = http_server_start(s.cfg.http_bind, s.cfg.port, api_routes, api_nroutes,
                             api_health, &s, err, sizeof(err));
    if (http == NULL)
        svc_die(SALES_SERVICE, "HTTP server on %s:%d: %s", s.cfg.http_bind, s.cfg.port, err);
    log_info("started port=%d bind=%s db_pool=%d", s.cfg.port, s.cfg.http_bind,
             s.cfg.db_pool_size);

    sig = svc_wait_signal();
    log_info("stopping signal=%s", sig == SIGTERM ? "SIGTERM" : "SIGINT");

    /* Stop taking orders first, then let the relay publish what they wrote. */
    http_server_stop(http);
    outbox_relay_stop(s.relay);
    db_pool_free(s.db);
    log_info("stopped");
    return 0;
}
