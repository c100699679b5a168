/* svc: the service skeleton: the settings every service shares, and svc_run, which owns
 * start-up order, the database pool, the outbox relay, the Kafka consumer, the HTTP server,
 * the signal wait and the shutdown order. A service's main() reads its configuration, fills
 * an svc_t with its routes and hooks, and calls svc_run. */
#ifndef DOZEN_SVC_H
#define DOZEN_SVC_H

#include <stddef.h>

#include "db.h"
#include "http.h"
#include "kafka.h"
#include "outbox.h"
#include "metrics.h"
#include "metrics_sql.h"
#include "strbuf.h"

/* Blocks SIGTERM and SIGINT in the calling thread (and so in every thread it starts after
 * this) and ignores SIGPIPE. Call first in main(), before any library starts a thread.
 * Returns 0 or -1 with errstr. */
int svc_block_signals(char *errstr, size_t errstr_size);

/* Waits for SIGTERM or SIGINT (blocked by svc_block_signals) and returns its number. */
int svc_wait_signal(void);

/* Prints "<service>: <message>" to stderr and exits 1: for start-up failures in main() only. */
void svc_die(const char *service, const char *fmt, ...)
    __attribute__((format(printf, 2, 3), noreturn));

/* The first step of a service's main(): svc_block_signals, then log_init(service). Dies
 * (svc_die) when either fails; call it before anything starts a thread. */
void svc_init(const char *service);

/* The settings every service reads the same way. Strings are borrowed from the
 * environment (or are the defaults). */
typedef struct svc_config {
    const char *database_url;    /* DATABASE_URL, required */
    const char *kafka_bootstrap; /* KAFKA_BOOTSTRAP, required */
    const char *http_bind;       /* HTTP_BIND, default 127.0.0.1 */
    int port;                    /* <SERVICE>_PORT (svc_config_spec_t.port_var) */
    int db_pool_size;            /* DB_POOL_SIZE, [pool_min, 256] */
    long long db_wait_ms;        /* DB_WAIT: how long a caller waits for a pooled
                                  * connection, default 5s, 1 ms to 60 s */
    long long topics_wait_ms;    /* TOPICS_WAIT: how long start-up waits for the cluster,
                                  * default 30s, 1 s to 10 min */
    long long outbox_poll_ms;    /* OUTBOX_POLL_INTERVAL (only with outbox set): the relay's
                                  * backstop poll, default 5s, 10 ms to 1 h; else 0 */
    const char *instance_id;     /* INSTANCE_ID: this process's stable name among the
                                  * instances of the service ("1", "2"), for static
                                  * consumer group membership; NULL when unset */
    long long db_statement_timeout_ms; /* DB_STATEMENT_TIMEOUT: every statement's limit on
                                  * every connection, default 30s, 0 (none) to 1 h */
    long long db_leader_lease_ms; /* DB_LEADER_LEASE: how long a silent leader (outbox
                                  * relay, retry scheduler) keeps its lock, default 3s,
                                  * 1 s to 60 s (db.h, leader leases) */
    int http_threads;            /* HTTP_THREADS: the HTTP server's pool, default 16, 1..256 */
    int http_workers;            /* HTTP_WORKERS: threads for the routes' handlers, 0..256
                                  * (http_server_opts_t.workers) */
    long long http_request_timeout_ms; /* HTTP_REQUEST_TIMEOUT: deadline for one whole
                                  * request (headers and body), default 10s, 100 ms..10 min */
    int http_max_connections;    /* HTTP_MAX_CONNECTIONS: 0 (default) = as many as file
                                  * descriptors allow */
    int http_max_per_client;     /* HTTP_MAX_CONNECTIONS_PER_CLIENT: connections from one
                                  * IP address; 0 (default) = half the connection limit */
} svc_config_t;

/* What differs between services in the common settings. */
typedef struct svc_config_spec {
    const char *port_var;        /* "SALES_PORT" */
    int port_def;                /* 8080 */
    int pool_def;                /* DB_POOL_SIZE default */
    int pool_min;                /* DB_POOL_SIZE minimum (at least 1) */
    int outbox;                  /* 1: the service has a relay, read OUTBOX_POLL_INTERVAL */
    int workers_def;             /* HTTP_WORKERS default (0: handlers on the pool) */
} svc_config_spec_t;

#define SVC_POOL_MAX 256

/* Reads the common settings into *out, in this order: DATABASE_URL, KAFKA_BOOTSTRAP,
 * HTTP_BIND, spec->port_var, DB_POOL_SIZE, DB_WAIT, TOPICS_WAIT, OUTBOX_POLL_INTERVAL,
 * INSTANCE_ID, DB_STATEMENT_TIMEOUT, DB_LEADER_LEASE, HTTP_THREADS, HTTP_WORKERS,
 * HTTP_REQUEST_TIMEOUT,
 * HTTP_MAX_CONNECTIONS, HTTP_MAX_CONNECTIONS_PER_CLIENT.
 * Returns 0, or -1 with errstr naming the first variable that is missing or bad (cfg.h's
 * messages: "SALES_PORT: 'eighty' is not an integer"). */
int svc_config_read(const svc_config_spec_t *spec, svc_config_t *out,
                    char *errstr, size_t errstr_size);

/* A service-specific worker started and stopped at a fixed place in svc_run's order. start
 * returns 0, or -1 with errstr having left nothing running; svc_run then reports
 * "<what>: <errstr>" (just errstr when what is NULL). stop is called only after a
 * successful start, and may be NULL. */
typedef struct svc_hook {
    const char *what;            /* "scheduler" */
    int (*start)(void *ctx, char *errstr, size_t errstr_size);
    void (*stop)(void *ctx);
} svc_hook_t;

/* Hooks in one place of the order: started first to last, stopped last to first; the list
 * ends at the first entry whose start is NULL. */
#define SVC_HOOKS_MAX 4

/* What a service gives svc_run. Everything is borrowed and must outlive svc_run. */
typedef struct svc {
    const char *name;            /* service name: Kafka client.id and outbox producer */
    const svc_config_t *cfg;
    const db_stmt_t *stmts;      /* prepared on every pooled connection */
    size_t nstmts;
    /* Where svc_run stores what it starts (fields of the service's struct, read by its
     * handlers, routes and health check); each is set before anything that may use it
     * starts and reset to NULL once stopped. */
    db_pool_t **pool;            /* required */
    outbox_relay_t **relay;      /* NULL: the service has no outbox relay */
    kafka_consumer_opts_t *consumer_opts; /* NULL: no libcommon consumer; svc_run sets
                                           * bootstrap and client_id when they are NULL */
    kafka_consumer_t **consumer; /* with consumer_opts */
    svc_hook_t before_consumer[SVC_HOOKS_MAX]; /* started after the relay, stopped after
                                                * the consumer */
    svc_hook_t after_consumer[SVC_HOOKS_MAX];  /* started after the consumer, stopped
                                                * before it */
    const http_route_t *routes;
    size_t nroutes;
    http_health_fn health;       /* the service's part of GET /readyz (and /healthz): its
                                  * database, relay, consumer thread; svc_run adds fresh
                                  * Kafka metadata and consumer group assignment; may be
                                  * NULL */
    /* The service's metrics registry, served on GET /metrics with the process_* series,
     * the HTTP server's and the relay's. Required: main() makes it (metrics_new) so that
     * its own series exist before anything runs, and frees it after svc_run. */
    struct metrics *metrics;
    /* Gauges read from PostgreSQL when /metrics is scraped (metrics_sql.h), besides the
     * outbox's (svc_run adds those when the service has a relay); may be NULL/0. */
    const metrics_sql_gauge_t *gauges;
    size_t ngauges;
    void *ctx;                   /* for routes, health, hooks and describe */
    /* Appends " key=value ..." for the "started" log line after port and bind; may be
     * NULL. */
    void (*describe)(void *ctx, strbuf_t *line);
} svc_t;

/* Runs a service until SIGTERM or SIGINT (svc_init must have blocked them).
 *
 * Start-up order: the statement timeout of every connection the process opens from then on
 * (db_set_statement_timeout), the pool (db_pool_new: a bad DATABASE_URL fails here), the Kafka
 * settings and declared topics (topics_service_ready), the outbox relay, before_consumer,
 * the consumer, after_consumer, the HTTP server, then the "started" log line.
 * Shutdown order, the reverse: the HTTP server first (no new requests; running ones
 * finish), after_consumer, the consumer (its record finished and committed),
 * before_consumer, the relay (publishing what was written until then), the pool last.
 *
 * Returns 0 after a clean shutdown (logged "stopping" and "stopped"), or -1 with errstr
 * ("DATABASE_URL: ...", "outbox relay: ...", "consumer: ...", "HTTP server on
 * <bind>:<port>: ...", or a hook's text) when start-up failed; what had started is stopped
 * again in shutdown order before it returns. May block for the whole life of the service. */
int svc_run(const svc_t *s, char *errstr, size_t errstr_size);

#endif
