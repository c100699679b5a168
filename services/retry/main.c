/* retry: stores the records consumers could not process yet and redelivers each to its
 * owner group when due, or gives it up to dead-letter (docs/retry.md). */
#include "retry_service.h"

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
    long long pool, batch;

    if (cfg_str("DATABASE_URL", NULL, &c->database_url, err, sizeof(err)) != 0 ||
        cfg_str("KAFKA_BOOTSTRAP", NULL, &c->kafka_bootstrap, err, sizeof(err)) != 0 ||
        cfg_str("HTTP_BIND", "127.0.0.1", &c->http_bind, err, sizeof(err)) != 0 ||
        cfg_str("RETRY_GROUP", "retry", &c->group, err, sizeof(err)) != 0 ||
        cfg_port("RETRY_PORT", 8084, &c->port, err, sizeof(err)) != 0 ||
        cfg_int("DB_POOL_SIZE", 4, 2, 256, &pool, err, sizeof(err)) != 0 ||
        cfg_int("RETRY_BATCH", 500, 1, 10000, &batch, err, sizeof(err)) != 0 ||
        cfg_duration_ms("DB_WAIT", "5s", 1, 60000, &c->db_wait_ms, err, sizeof(err)) != 0 ||
        cfg_duration_ms("TOPICS_WAIT", "30s", 1000, 600000, &c->topics_wait_ms,
                        err, sizeof(err)) != 0)
        svc_die(RETRY_SERVICE, "%s", err);
    if (!retry_group_valid(c->group))
        svc_die(RETRY_SERVICE, "RETRY_GROUP: '%s' must be 1 to %d characters of letters, "
                "digits, '.', '_' or '-'", c->group, RETRY_GROUP_MAX);
    c->db_pool_size = (int)pool;
    c->batch = (int)batch;
}

int main(void)
{
    struct retry r;
    http_server_t *http;
    char err[512];
    int sig;

    memset(&r, 0, sizeof(r));
    if (svc_block_signals(err, sizeof(err)) != 0)
        svc_die(RETRY_SERVICE, "%s", err);
    if (log_init(RETRY_SERVICE) != 0)
        svc_die(RETRY_SERVICE, "LOG_LEVEL: must be debug, info, warn or error");
    config_read(&r.cfg);

    r.db = db_pool_new(r.cfg.database_url, r.cfg.db_pool_size, store_stmts, store_nstmts,
                       err, sizeof(err));
    if (r.db == NULL)
        svc_die(RETRY_SERVICE, "DATABASE_URL: %s", err);
    if (topics_service_ready(r.cfg.kafka_bootstrap, RETRY_SERVICE, (int)r.cfg.topics_wait_ms,
                             err, sizeof(err)) != 0)
        svc_die(RETRY_SERVICE, "%s", err);

    /* The scheduler first: the consumer kicks it for every batch it stores. */
    r.scheduler = scheduler_start(&r, err, sizeof(err));
    if (r.scheduler == NULL)
        svc_die(RETRY_SERVICE, "scheduler: %s", err);
    r.consumer = consumer_start(&r, err, sizeof(err));
    if (r.consumer == NULL)
        svc_die(RETRY_SERVICE, "consumer: %s", err);

    http = http_server_start(r.cfg.http_bind, r.cfg.port, api_routes, api_nroutes, api_health,
                             &r, err, sizeof(err));
    if (http == NULL)
        svc_die(RETRY_SERVICE, "HTTP server on %s:%d: %s", r.cfg.http_bind, r.cfg.port, err);
    log_info("started port=%d bind=%s group=%s batch=%d", r.cfg.port, r.cfg.http_bind,
             r.cfg.group, r.cfg.batch);

    sig = svc_wait_signal();
    log_info("stopping signal=%s", sig == SIGTERM ? "SIGTERM" : "SIGINT");
    /* The consumer's batch is stored and committed, then the scheduler's round finishes:
     * what is left waits in PostgreSQL for the next start. */
    http_server_stop(http);
    consumer_stop(r.consumer);
    scheduler_stop(r.scheduler);
    db_pool_free(r.db);
    log_info("stopped");
    return 0;
}
