/* factory: the restock service. Private header; prototypes grouped by source file. */
#ifndef DOZEN_FACTORY_H
#define DOZEN_FACTORY_H

#include <stddef.h>
#include <stdint.h>
#include <jansson.h>
#include <libpq-fe.h>

#include "db.h"
#include "metrics.h"
#include "http.h"
#include "events.h"
#include "kafka.h"
#include "outbox.h"
#include "retry.h"
#include "svc.h"
#include "router.h"

#include <curl/curl.h>

#define FACTORY_SERVICE "factory"
#define FACTORY_SOURCE "/dozen/factory"
#define FACTORY_ORDER_ID_MAX EVENT_FACTORY_ORDER_ID_MAX
#define FACTORY_DELIVERY_MAX EVENT_DELIVERY_MAX

struct config {
    svc_config_t svc;           /* the common settings (svc_config_read) */
    long long db_wait_ms;       /* = svc.db_wait_ms, where routes and handlers read it */
    const char *group;
    const char *legacy_url;     /* LEGACY_FACTORY_URL */
    const char *callback_url;   /* FACTORY_CALLBACK_URL: how the legacy factory reaches us */
    long long connect_timeout_ms;
    long long call_timeout_ms;
    long long delivery_timeout_ms;
    long long retry_deadline_ms; /* FACTORY_RETRY_DEADLINE: give up this long after the
                                  * first failed call (0: only max attempts) */
    retry_policy_t retry;       /* RETRY_*: how failed calls are spaced, how many */
};

struct factory {
    struct config cfg;
    db_pool_t *db;
    metrics_t *metrics;         /* served on GET /metrics (svc_run) */
    outbox_relay_t *relay;
    CURL *curl;                 /* the consumer thread's, for legacy_call */
    kafka_consumer_opts_t consumer_opts;
    router_t router;
    kafka_consumer_t *consumer;
};

/* order_state.c: the production order's state machine (pure) */

/* The states' names, as the production_orders.status column stores them (store.c's SQL
 * uses these macros). */
#define PO_PENDING_NAME "pending"
#define PO_REQUESTED_NAME "requested"
#define PO_DELIVERED_NAME "delivered"
#define PO_FAILED_NAME "failed"

typedef enum po_state {
    PO_PENDING = 0,   /* to be called (or being called) for its depletion */
    PO_REQUESTED,     /* the legacy factory accepted it; a delivery is awaited */
    PO_DELIVERED,     /* delivered once; final */
    PO_FAILED,        /* given up; a replayed depletion may reopen it */
    PO_STATE_COUNT
} po_state_t;

typedef enum po_event {
    PO_EV_CALLED,      /* the legacy factory accepted the order */
    PO_EV_CALL_FAILED, /* a call failed: the order stays pending (attempts + 1) */
    PO_EV_TAKEN_OVER,  /* requested longer than FACTORY_DELIVERY_TIMEOUT ago: ask again */
    PO_EV_GIVEN_UP,    /* the retry service gave up on the depletion */
    PO_EV_REOPENED,    /* the given-up depletion came again (a replay) */
    PO_EV_DELIVERED    /* the delivery callback */
} po_event_t;

/* The name of a state, or NULL for a value out of range. */
const char *po_state_name(po_state_t s);
/* Reads a state name into *s. Returns 0, or -1 when name is no state. */
int po_state_parse(const char *name, po_state_t *s);
/* The one transition function: the state an order in from moves to on ev. Returns 0 with
 * *to, or -1 when ev does not apply to an order in from (*to unchanged). */
int po_transition(po_state_t from, po_event_t ev, po_state_t *to);

/* store.c: SQL */

extern const db_stmt_t store_stmts[];
extern const size_t store_nstmts;

/* A production order a depletion must call the legacy factory for. */
struct claim {
    char id[37];
    char sku[65];
    char token[37];
    int quantity;
};

typedef enum store_plan {
    PLAN_CALL,      /* *c is the order to call the factory for (committed as pending) */
    PLAN_COVERED,   /* nothing to do: seen before, an open order covers it, or a newer
                     * delivery answered it (recorded as processed) */
    PLAN_UNKNOWN,   /* no such sku */
    PLAN_FAILED     /* database error */
} store_plan_t;

/* Decides, in one transaction, what depletion ce_id of sku (depleted at depleted_at, RFC
 * 3339) needs: at most one open production order per SKU, owned by the depletion that opened
 * it; an order requested longer than delivery_timeout_ms ago without a delivery is taken
 * over; an order given up before ('failed', after a replay) is reopened. */
store_plan_t store_plan(PGconn *conn, const char *ce_id, const char *sku,
                        const char *depleted_at, long long delivery_timeout_ms,
                        struct claim *c, char *errstr, size_t errstr_size);

/* Records a successful call: the order is requested under factory_order_id and the
 * depletion ce_id processed, in one transaction. Returns 0 or -1 with errstr. */
int store_requested(PGconn *conn, const char *id, const char *ce_id,
                    const char *factory_order_id, char *errstr, size_t errstr_size);

/* Records a failed call on the order (attempts, last_error). Returns 0 or -1. */
int store_call_failed(PGconn *conn, const char *id, const char *error,
                      char *errstr, size_t errstr_size);

/* The depletion ce_id was given up (why: max_attempts or deadline_exceeded): its pending
 * order is closed as failed, so that a later depletion may open a new one. Returns the
 * number of orders closed, or -1 with errstr. */
int store_give_up(PGconn *conn, const char *ce_id, const char *why,
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

/* legacy.c: the call to the legacy factory */

/* Calls POST {legacy}/production-orders for c on curl (reused). Returns 0 with the factory's
 * order id in fo_id; -1 with a reason in err when the call failed in a way that may pass
 * (refused, timeout, 5xx, a bad answer); -2 when the factory refused the order (4xx). */
int legacy_call(const struct config *cfg, CURL *curl, const struct claim *c, char *fo_id,
                size_t fo_size, char *err, size_t err_size);

/* handlers.c: Kafka records */

/* The consumer's routes (stock.depleted); ctx is the struct factory. */
extern const router_route_t handlers_routes[];
extern const size_t handlers_nroutes;

/* metrics.c: the factory's series */

/* Gauges read at scrape time: dozen_production_orders by state. */
extern const metrics_sql_gauge_t factory_metrics_gauges[];
extern const size_t factory_metrics_ngauges;

/* Creates the legacy call series empty. */
void factory_metrics_init(metrics_t *m);

/* Counts one legacy_call that returned called after us microseconds. */
void factory_metrics_legacy_call(metrics_t *m, int called, int64_t us);

/* api.c: HTTP routes */

extern const http_route_t api_routes[];
extern const size_t api_nroutes;
int api_health(void *ctx, char *errstr, size_t errstr_size);

#endif
