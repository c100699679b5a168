/* sales: the order service. Private header; prototypes grouped by source file. */
#ifndef DOZEN_SALES_H
#define DOZEN_SALES_H

#include <stddef.h>
#include <jansson.h>
#include <libpq-fe.h>

#include "db.h"
#include "metrics.h"
#include "events.h"
#include "http.h"
#include "outbox.h"
#include "sku.h"
#include "svc.h"

#define SALES_SERVICE "sales"
#define SALES_SOURCE "/dozen/sales"
#define CUSTOMER_MAX EVENT_CUSTOMER_MAX
#define IDEMPOTENCY_KEY_MAX 255
#define ORDER_QUANTITY_MAX 1000
#define SALES_PRODUCTS_MAX_S "1000"   /* products GET /products lists, at most */

struct config {
    svc_config_t svc;           /* the common settings (svc_config_read) */
    int combine_statements;     /* COMBINE_STATEMENTS: see combine_new */
    long long db_wait_ms;       /* = svc.db_wait_ms, where the routes read it */
};

typedef struct combine combine_t;

struct sales {
    struct config cfg;
    db_pool_t *db;
    combine_t *combine;         /* orders without an Idempotency-Key go through it */
    metrics_t *metrics;         /* served on GET /metrics (svc_run) */
    outbox_relay_t *relay;
};

/* order.c: validation of requests and the decision on an order (pure, no I/O) */

typedef struct order_request {
    char sku[SKU_MAX + 1];
    int quantity;
    char customer[CUSTOMER_MAX + 1];
    int has_customer;
} order_request_t;

/* Fills req from a parsed JSON object (borrowed). Returns 0, or -1 with errstr saying what
 * is wrong, for a 400 answer. */
int order_parse(const json_t *body, order_request_t *req, char *errstr, size_t errstr_size);

/* 1 if an Idempotency-Key is 1..255 visible ASCII characters, else 0. */
int order_idempotency_key_valid(const char *key);

/* Canonical text of a request, compared when an Idempotency-Key is used again. Returns a new
 * string the caller frees, or NULL if out of memory. */
char *order_canonical(const order_request_t *req);

/* What the database said about one order (store.c finds it, order_decide reads it). */
typedef enum order_fact {
    ORDER_TAKEN = 0,      /* the quantity was taken from the level */
    ORDER_SHORT,          /* the level is lower than the quantity: nothing taken */
    ORDER_SKU_UNKNOWN,    /* no such sku: nothing changed */
    ORDER_KEY_REUSED      /* the Idempotency-Key came with another request: nothing changed */
} order_fact_t;

typedef struct order_facts {
    order_fact_t fact;
    char order_id[EVENT_UUID_SIZE];  /* TAKEN, SHORT: the new order's id */
    long long level;      /* TAKEN: the level after the order; SHORT: the level the refusal
                           * was decided on */
} order_facts_t;

#define ORDER_EVENTS_MAX 2

/* The outcome of an order: the answer, the order row's status and the events to write. */
typedef struct order_outcome {
    int status;                     /* the HTTP status */
    const char *state;              /* the order row's status; NULL: no row is written */
    int replayed;                   /* 1: the Idempotency-Key's stored answer, replayed */
    json_t *body;                   /* the answer (owned), or NULL when error is the answer */
    char error[160];                /* an error answer's text when body is NULL */
    char order_id[37];              /* with STORE_COMMIT_UNKNOWN: the order's id */
    int backend_pid;                /* with STORE_COMMIT_UNKNOWN: the server process of the
                                     * session that was committing it (0: not known) */
    size_t nevents;
    event_out_t events[ORDER_EVENTS_MAX]; /* owned */
} order_outcome_t;

/* Decides what an order req with facts leads to: 201 and order.completed when taken; 409,
 * order.rejected and stock.depleted when short; 404 for an unknown sku; 422 for a reused
 * Idempotency-Key. Fills out (free it with order_outcome_clear). Returns 0, or -1 with
 * errstr when out of memory. */
int order_decide(const order_request_t *req, const order_facts_t *facts,
                 order_outcome_t *out, char *errstr, size_t errstr_size);

/* Frees what out owns and empties it. Accepts NULL. */
void order_outcome_clear(order_outcome_t *out);

/* store.c: SQL */

extern const db_stmt_t store_stmts[];
extern const size_t store_nstmts;

/* Places an order in one transaction on conn: the Idempotency-Key's stored answer when
 * idem_key was used before; else the conditional decrement, then (after order_decide) the
 * order row, the outcome's events in the outbox and, when idem_key is not NULL, the stored
 * answer. Fills out (free it with order_outcome_clear): for a replay, status and body are
 * the stored ones. Returns 0, or -1 with errstr on a database error (nothing changed), or
 * STORE_COMMIT_UNKNOWN when the connection died with the COMMIT on its way: the order (id in
 * out->order_id, session in out->backend_pid) may or may not be committed, and out holds
 * the answer it would have. */
#define STORE_COMMIT_UNKNOWN (-2)
int store_place_order(PGconn *conn, const order_request_t *req, const char *idem_key,
                      order_outcome_t *out, char *errstr, size_t errstr_size);

/* A placeholder for the level in an order's prepared answer and event: a number no level
 * can be (inventory.quantity is an integer), replaced once the statement returns the
 * level. */
#define STORE_LEVEL_PLACEHOLDER 7777777777771LL
#define STORE_LEVEL_PLACEHOLDER_TEXT "7777777777771"

/* One order of a batch (combine.c): prepared by the requesting thread, placed by whichever
 * thread runs the batch. */
typedef struct store_batch_order {
    const order_request_t *req;  /* borrowed */
    order_outcome_t *out;        /* borrowed: the requester's; the batch fills it */
    event_meta_t meta;           /* its order.completed's ce_id, time and traceparent */
    int fast;                    /* 1: the placeholder is in the event exactly once */
    int ret;                     /* 0, or -1 with err (a database error: a 503), or
                                  * STORE_COMMIT_UNKNOWN with err (out->order_id set) */
    char err[256];
} store_batch_order_t;

/* Prepares o (req and out set) on the requesting thread, so that its event carries that
 * thread's trace: a new order id (also in out->order_id), the answer and event of a taken
 * order with the level left as STORE_LEVEL_PLACEHOLDER, the event's metadata. Returns 0,
 * or -1 with errstr. */
int store_prepare_order(store_batch_order_t *o, char *errstr, size_t errstr_size);

/* Places n prepared orders of one SKU, in their order, setting each one's ret, err and out
 * exactly as store_place_order would have alone, one after the other. Usually one
 * statement without a transaction block: the conditional decrement of their sum, every
 * order row and every event (one round trip, one commit). When the level does not cover
 * the sum (or the SKU is unknown, or an order is not fast), each order is placed with
 * store_place_order in turn, under its own trace. Wakes the relay after a commit. When the
 * connection dies with the one statement on its way, every order of the batch gets
 * STORE_COMMIT_UNKNOWN (its id in out->order_id, out kept, its level still the
 * placeholder): all of them or none are committed. So does an order whose answer could
 * not be finished after the commit (out of memory): its requester looks it up. */
void store_place_batch(PGconn *conn, store_batch_order_t *orders, size_t n);

/* Places n prepared orders of up to COMBINE_GROUP_MAX SKUs, each SKU's orders together and
 * in arrival order, no SKU's orders in two places, with the answers store_place_batch
 * would give each SKU's orders. When every order is fast, one statement for all of them
 * (order_group): the SKUs whose level covers their sum are taken in it, the others placed
 * one by one after it; when that statement fails and the connection still works (a
 * deadlock with another instance, say), SKU by SKU with store_place_batch. When the
 * connection dies with it on its way, every order gets STORE_COMMIT_UNKNOWN. */
void store_place_group(PGconn *conn, store_batch_order_t *orders, size_t n);

/* Looks an order up. Returns 1 and a new reference in *order, 0 when there is no such
 * order, -1 with errstr on a database error. */
int store_get_order(PGconn *conn, const char *id, json_t **order,
                    char *errstr, size_t errstr_size);

/* After STORE_COMMIT_UNKNOWN: whether order id, whose commit ran in the server process
 * pid (0: not known), is committed. Returns 1 committed (and a new reference to the stored
 * order in *order, as store_get_order), 0 not committed and never will be (no such order,
 * and that session has ended, so its transaction is over), 2 not yet known (no such order
 * while that session still runs: a statement waiting for a lock commits when it gets it,
 * even though its client is gone), -1 with errstr on a database error. */
int store_order_settled(PGconn *conn, const char *id, int pid, json_t **order,
                        char *errstr, size_t errstr_size);

/* The products and their levels, by sku, at most SALES_PRODUCTS_MAX_S: a new JSON object
 * {"products": [{"sku", "quantity"}]}, or NULL with errstr. */
json_t *store_list_products(PGconn *conn, char *errstr, size_t errstr_size);

/* combine.c: concurrent orders of one SKU, applied together (flat combining) */

#define COMBINE_BATCH_MAX 64  /* orders of one SKU applied in one statement, at most */
#define COMBINE_GROUP_MAX 64  /* orders (and so SKUs) in one statement of several SKUs */
#define COMBINE_STATEMENTS_DEFAULT 4

/* Returns a new combiner (free it with combine_free), or NULL if out of memory. With
 * metrics (borrowed, must outlive it) it keeps dozen_orders_batch_size and
 * dozen_orders_statement_skus there. statements: how many statements of several SKUs may
 * run at once (0: none, each SKU's batch is its own statement). */
combine_t *combine_new(metrics_t *metrics, int statements);

/* Frees c, which no thread may be using. Accepts NULL. */
void combine_free(combine_t *c);

/* Places one order without an Idempotency-Key. When no other order of its SKU is being
 * placed in this process, it is placed at once, on a connection from pool (waiting up to
 * wait_ms for one); otherwise it waits, and the orders that arrived while the one before
 * them ran are placed together, in arrival order, by the first of them. Fills out as
 * store_place_order does. Returns 0, -1 with errstr (no connection, database error:
 * nothing happened), or STORE_COMMIT_UNKNOWN with errstr as store_place_order (out holds
 * the answer it would have, out->order_id the order's id; a combined batch's answer still
 * has the level placeholder, the stored order has the level). Blocks for the orders ahead
 * of it. */
int combine_place(combine_t *c, db_pool_t *pool, int wait_ms, const order_request_t *req,
                  order_outcome_t *out, char *errstr, size_t errstr_size);

/* metrics.c: the orders' series (dozen_orders_total, dozen_orders_idempotent_replays_total) */

/* Creates the series at 0, so that a rate is defined before the first order. */
void sales_metrics_init(metrics_t *m);

/* Counts one answered order: a replay, else its row's status (completed / rejected). */
void sales_metrics_order(metrics_t *m, const order_outcome_t *o);

/* page.c: the shop page, built into the binary (GET /) */

void page_shop(const http_request_t *req, http_response_t *res, void *ctx);

/* api.c: HTTP routes */

extern const http_route_t api_routes[];
extern const size_t api_nroutes;

/* The service's part of /readyz: the database answers (svc_run adds the relay, Kafka
 * metadata and consumer checks). */
int api_health(void *ctx, char *errstr, size_t errstr_size);

#endif
