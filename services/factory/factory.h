/* factory: the restock service. Private header; prototypes grouped by source file. */
#ifndef DOZEN_FACTORY_H
#define DOZEN_FACTORY_H

#include <pthread.h>
#include <stddef.h>
#include <stdint.h>
#include <jansson.h>
#include <libpq-fe.h>

#include "db.h"
#include "http.h"
#include "kafka.h"
#include "outbox.h"

#define FACTORY_SERVICE "factory"
#define FACTORY_SOURCE "/dozen/factory"
#define FACTORY_ORDER_ID_MAX 128
#define FACTORY_DELIVERY_MAX 1000000

struct config {
    const char *database_url;
    const char *kafka_bootstrap;
    const char *http_bind;
    const char *group;
    const char *legacy_url;     /* LEGACY_FACTORY_URL */
    const char *callback_url;   /* FACTORY_CALLBACK_URL: how the legacy factory reaches us */
    int port;
    int db_pool_size;
    int workers;
    long long db_wait_ms;
    long long topics_wait_ms;
    long long outbox_poll_ms;
    long long connect_timeout_ms;
    long long call_timeout_ms;
    long long retry_initial_ms;
    long long retry_max_ms;
    long long delivery_timeout_ms;
};

struct caller;

struct factory {
    struct config cfg;
    db_pool_t *db;
    outbox_relay_t *relay;
    struct caller *caller;
    kafka_consumer_opts_t consumer_opts;
    kafka_consumer_t *consumer;
};

/* store.c: SQL */

extern const db_stmt_t store_stmts[];
extern const size_t store_nstmts;

/* Opens a production order for a depletion, once per event: nothing when the event was seen
 * before, when an order for the SKU is open, or when a delivery newer than the depletion
 * (depleted_at, RFC 3339) answered it already. Returns 1 when an order was opened, 0 when
 * not, -2 for an unknown sku, -1 with errstr on a database error. */
int store_open_order(PGconn *conn, const char *ce_id, const char *sku,
                     const char *depleted_at, char *errstr, size_t errstr_size);

/* A production order claimed for one call to the legacy factory. */
struct claim {
    char id[37];
    char sku[65];
    char token[37];
    int quantity;
    int attempt;
};

/* Claims the most overdue order that needs a call (pending and due, or requested and not
 * delivered within delivery_timeout_ms) for lease_ms. Returns 1 with *c filled, 0 when
 * nothing is due, -1 with errstr. */
int store_claim(PGconn *conn, long long lease_ms, long long delivery_timeout_ms,
                struct claim *c, char *errstr, size_t errstr_size);

/* Records the outcome of a call: the factory's order id, or the error and when to try
 * again. Returns 0 or -1 with errstr. */
int store_requested(PGconn *conn, const char *id, const char *factory_order_id,
                    char *errstr, size_t errstr_size);
int store_call_failed(PGconn *conn, const char *id, const char *error, long long retry_ms,
                      char *errstr, size_t errstr_size);

typedef enum store_delivery {
    DELIVERY_APPLIED,      /* marked delivered, stock.replenished in the outbox */
    DELIVERY_REPEATED,     /* delivered before: nothing changed */
    DELIVERY_UNKNOWN,      /* no such order (or a wrong token) */
    DELIVERY_SKU_MISMATCH, /* the callback names another sku */
    DELIVERY_FAILED        /* database error */
} store_delivery_t;

/* Applies a delivery callback in one transaction. po and token come from the callback URL
 * (po may be NULL: then the order is found by factory_order_id). *order_id receives the
 * production order's id (37 bytes). */
store_delivery_t store_deliver(PGconn *conn, const char *po, const char *token,
                               const char *factory_order_id, const char *sku,
                               long long quantity, char *order_id,
                               char *errstr, size_t errstr_size);

/* Production orders, newest first, as a new JSON array (at most limit), filtered by sku
 * and status when not NULL; or one by id (*one: 1 found, 0 not). NULL/-1 with errstr. */
json_t *store_list(PGconn *conn, const char *sku, const char *status, int limit,
                   char *errstr, size_t errstr_size);
int store_get(PGconn *conn, const char *id, json_t **order, char *errstr, size_t errstr_size);

/* caller.c: calls to the legacy factory, on worker threads */

/* Starts cfg.workers threads that call the legacy factory for due production orders.
 * Returns NULL with errstr on failure. */
struct caller *caller_start(struct factory *f, char *errstr, size_t errstr_size);

/* Wakes the workers: a new order is due now. */
void caller_kick(struct caller *c);

/* Stops the workers (a call in flight finishes or times out) and frees them. Accepts NULL. */
void caller_stop(struct caller *c);

/* Backoff before attempt n+1 after n failed attempts: initial * 2^(n-1), capped. */
long long caller_backoff_ms(long long initial_ms, long long max_ms, int failed_attempts);

/* handlers.c: Kafka records */

kafka_verdict_t handlers_depleted(const rd_kafka_message_t *msg, void *ctx,
                                  char *errstr, size_t errstr_size);

/* api.c: HTTP routes */

extern const http_route_t api_routes[];
extern const size_t api_nroutes;
int api_health(void *ctx, char *errstr, size_t errstr_size);

#endif
