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
#define FACTORY_DELIVERY_MAX EVENT_DELIVERY_MAX
#define FACTORY_ATTR_MAX 128       /* bytes of a factory id, product id, requester, group id */
#define FACTORY_TOKEN_BYTES 32     /* of CSPRNG output in a callback capability */
#define FACTORY_TOKEN_LEN (2 * FACTORY_TOKEN_BYTES) /* as lower-case hex */
#define FACTORY_ATTR_RULE "1 to 128 printable ASCII characters, no leading or trailing space"

struct config {
    svc_config_t svc;           /* the common settings (svc_config_read) */
    long long db_wait_ms;       /* = svc.db_wait_ms, where routes and handlers read it */
    const char *group;
    const char *legacy_url;     /* LEGACY_FACTORY_URL */
    const char *callback_url;   /* FACTORY_CALLBACK_URL: how the legacy factory reaches us */
    const char *factory_id;     /* LEGACY_FACTORY_ID: for products without their own */
    const char *requester;      /* LEGACY_FACTORY_REQUESTER */
    const char *group_id;       /* LEGACY_FACTORY_GROUP_ID */
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

/* callback.c: the legacy factory's delivery callback and request attributes (pure) */

/* What a delivery callback says. */
struct delivery_in {
    char product_id[FACTORY_ATTR_MAX + 1];  /* MessageAttributeProductId */
    long long count;                        /* MessageAttributeProductCnt, 1..DELIVERY_MAX */
};

/* Returns 1 if s is FACTORY_ATTR_RULE (what the factory's attributes and the inventory
 * columns of migration 0007 allow), else 0. NULL is not. */
int callback_attr_valid(const char *s);

/* Returns 1 if token has the form of a capability: FACTORY_TOKEN_LEN lower-case hex digits.
 * (Whether it is the right one is for the database to say.) */
int callback_token_form(const char *token);

/* Reads a callback body of len bytes, whatever its Content-Type: a JSON object, or a JSON
 * string whose text is a JSON object (some deployments double-encode, or send text/plain),
 * with at least MessageAttributeProductId (a string) and MessageAttributeProductCnt (an
 * integer, an integral number, or a string of decimal digits); other members are ignored.
 * Returns 0 and fills out, or -1 with a message for the factory in errstr. */
int callback_parse(const char *body, size_t len, struct delivery_in *out,
                   char *errstr, size_t errstr_size);

/* store.c: SQL */

extern const db_stmt_t store_stmts[];

/* sweeper.c: asks again for the production orders accepted longer than
 * FACTORY_DELIVERY_TIMEOUT ago and never delivered (their callback was lost), by raising
 * their SKU's depletion again. An svc_hook_t pair; ctx is the struct factory. */
int sweeper_start(void *ctx, char *errstr, size_t errstr_size);
void sweeper_stop_join(void *ctx);
extern const size_t store_nstmts;

/* A production order a depletion must call the legacy factory for. */
struct claim {
    char id[37];
    char sku[65];
    char factory_id[FACTORY_ATTR_MAX + 1];   /* the product's, or LEGACY_FACTORY_ID */
    char product_id[FACTORY_ATTR_MAX + 1];   /* the product's, or its SKU */
    char token[FACTORY_TOKEN_LEN + 1];       /* this call's capability; only its SHA-256
                                              * is stored */
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
 * over; an order given up before ('failed', after a replay) is reopened. For PLAN_CALL a new
 * capability is minted for this call (its SHA-256 committed with the plan, so that a
 * callback that comes before store_requested is accepted) and the product's factory id
 * (default_factory_id when it has none) and product id (its SKU when none) are filled in. */
store_plan_t store_plan(PGconn *conn, const char *ce_id, const char *sku,
                        const char *depleted_at, long long delivery_timeout_ms,
                        const char *default_factory_id, struct claim *c,
                        char *errstr, size_t errstr_size);

/* Records a successful call: the order is requested and the depletion ce_id processed, in
 * one transaction. Returns 0 or -1 with errstr. */
int store_requested(PGconn *conn, const char *id, const char *ce_id,
                    char *errstr, size_t errstr_size);

/* The factory refused the order for good (4xx): the pending order is closed as failed with
 * why (so that a later depletion, or a replay of this one, opens it again), and the
 * depletion is not recorded as processed (it goes to dead-letter). Returns 0 or -1. */
int store_rejected(PGconn *conn, const char *id, const char *why,
                   char *errstr, size_t errstr_size);

/* Records a failed call on the order (attempts, last_error). Returns 0 or -1. */
int store_call_failed(PGconn *conn, const char *id, const char *error,
                      char *errstr, size_t errstr_size);

/* The depletion ce_id was given up (why: max_attempts or deadline_exceeded): its pending
 * order is closed as failed, so that a later depletion may open a new one. Returns the
 * number of orders closed, or -1 with errstr. */
int store_give_up(PGconn *conn, const char *ce_id, const char *why,
                  char *errstr, size_t errstr_size);

typedef enum store_delivery {
    DELIVERY_APPLIED,          /* marked delivered, stock.replenished in the outbox */
    DELIVERY_REPEATED,         /* delivered before: nothing changed */
    DELIVERY_UNKNOWN,          /* no such order, or not one of its tokens */
    DELIVERY_INVALID,          /* the right capability with a body that is no delivery */
    DELIVERY_PRODUCT_MISMATCH, /* the callback names another product id than was sent */
    DELIVERY_FAILED            /* database error */
} store_delivery_t;

/* Applies a delivery callback to production order po in one transaction, when token (from
 * the callback URL) is one of the order's capabilities. in is the parsed body, or NULL when
 * it did not parse (then DELIVERY_INVALID for the right capability). *sku receives the
 * order's SKU (SKU_MAX + 1 bytes) once the capability is right. */
store_delivery_t store_deliver(PGconn *conn, const char *po, const char *token,
                               const struct delivery_in *in, char *sku,
                               char *errstr, size_t errstr_size);

/* Production orders, newest first, as a new JSON array (at most limit), filtered by sku
 * and status when not NULL; or one by id (*one: 1 found, 0 not). NULL/-1 with errstr. */
json_t *store_list(PGconn *conn, const char *sku, const char *status, int limit,
                   char *errstr, size_t errstr_size);
int store_get(PGconn *conn, const char *id, json_t **order, char *errstr, size_t errstr_size);

/* legacy.c: the call to the legacy factory */

/* The request body of the Legacy Factory API for c: a new JSON object, or NULL when out of
 * memory or when the callback URL would be longer than 2048 bytes (err says which). */
json_t *legacy_request(const struct config *cfg, const struct claim *c, char *err,
                       size_t err_size);

/* Calls POST {LEGACY_FACTORY_URL}/api/manufactures for c on curl (reused). Returns 0 when
 * the factory accepted it (2xx); -1 with a reason in err when the call failed in a way that
 * may pass (refused, timeout, 5xx, 3xx); -2 when the factory refused the order (4xx), err
 * then carrying its "message". */
int legacy_call(const struct config *cfg, CURL *curl, const struct claim *c,
                char *err, size_t err_size);

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
