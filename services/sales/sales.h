/* sales: the order service. Private header; prototypes grouped by source file. */
#ifndef DOZEN_SALES_H
#define DOZEN_SALES_H

#include <stddef.h>
#include <jansson.h>
#include <libpq-fe.h>

#include "db.h"
#include "http.h"
#include "outbox.h"
#include "sku.h"
#include "svc.h"

#define SALES_SERVICE "sales"
#define SALES_SOURCE "/dozen/sales"
#define CUSTOMER_MAX 200
#define IDEMPOTENCY_KEY_MAX 255
#define ORDER_QUANTITY_MAX 1000

struct config {
    svc_config_t svc;           /* the common settings (svc_config_read) */
    long long db_wait_ms;       /* = svc.db_wait_ms, where the routes read it */
};

struct sales {
    struct config cfg;
    db_pool_t *db;
    outbox_relay_t *relay;
};

/* order.c: validation of requests (pure, no I/O) */

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

/* store.c: SQL */

extern const db_stmt_t store_stmts[];
extern const size_t store_nstmts;

typedef enum store_outcome {
    STORE_ANSWERED = 0,   /* *status and *body hold the answer (new or replayed) */
    STORE_UNKNOWN_SKU,    /* nothing changed: 404 */
    STORE_KEY_REUSED,     /* Idempotency-Key seen with another request: 422 */
    STORE_FAILED          /* database error, errstr says which; nothing changed */
} store_outcome_t;

/* Places an order in one transaction on conn: conditional decrement, order row, outbox
 * events, and the stored answer when idem_key is not NULL. On STORE_ANSWERED, *status is the
 * HTTP status and *body a new JSON reference the caller owns. */
store_outcome_t store_place_order(PGconn *conn, const order_request_t *req,
                                  const char *idem_key, int *status, json_t **body,
                                  char *errstr, size_t errstr_size);

/* Looks an order up. Returns 1 and a new reference in *order, 0 when there is no such
 * order, -1 with errstr on a database error. */
int store_get_order(PGconn *conn, const char *id, json_t **order,
                    char *errstr, size_t errstr_size);

/* api.c: HTTP routes */

extern const http_route_t api_routes[];
extern const size_t api_nroutes;

/* /healthz: the database answers and the outbox relay is not failing. */
int api_health(void *ctx, char *errstr, size_t errstr_size);

#endif
