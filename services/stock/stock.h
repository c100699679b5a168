/* stock: the inventory service. Private header; prototypes grouped by source file. */
#ifndef DOZEN_STOCK_H
#define DOZEN_STOCK_H

#include <stddef.h>
#include <jansson.h>
#include <libpq-fe.h>

#include "db.h"
#include "metrics.h"
#include "http.h"
#include "kafka.h"
#include "svc.h"
#include "router.h"

#define STOCK_SERVICE "stock"
#define STOCK_QUANTITY_MAX 1000000000LL

struct config {
    svc_config_t svc;           /* the common settings (svc_config_read) */
    long long db_wait_ms;       /* = svc.db_wait_ms, where routes and handlers read it */
    const char *admin_token;
    const char *group;
};

struct stock {
    struct config cfg;
    db_pool_t *db;
    metrics_t *metrics;         /* served on GET /metrics (svc_run) */
    kafka_consumer_opts_t consumer_opts;
    router_t router;
    kafka_consumer_t *consumer;
};

/* store.c: SQL */

extern const db_stmt_t store_stmts[];
extern const size_t store_nstmts;

/* All inventory rows as a new JSON array of {"sku", "quantity"}, or NULL with errstr. */
json_t *store_list(PGconn *conn, char *errstr, size_t errstr_size);

/* One row: returns 1 with a new reference in *item, 0 when the sku is unknown, -1 on error. */
int store_get(PGconn *conn, const char *sku, json_t **item, char *errstr, size_t errstr_size);

/* Sets the level of sku, creating the product if it is new. Returns 1 when it was created,
 * 0 when it existed, -1 with errstr. */
int store_set(PGconn *conn, const char *sku, long long quantity,
              char *errstr, size_t errstr_size);

/* Raises sku by quantity once for event ce_id, in one transaction with the record of the
 * event. Returns 1 when applied (*level is the new level), 0 when the event was applied
 * before, -2 when the sku is unknown (nothing changed), -1 with errstr on a database error
 * (one the consumer loop classifies: a level that would overflow is a data error). */
int store_replenish(PGconn *conn, const char *ce_id, const char *sku, long long quantity,
                    long long *level, char *errstr, size_t errstr_size);

/* handlers.c: Kafka records */

/* The consumer's routes (stock.replenished); ctx is the struct stock. */
extern const router_route_t handlers_routes[];
extern const size_t handlers_nroutes;

/* metrics.c: gauges read at scrape time (dozen_stock_quantity per SKU) */
extern const metrics_sql_gauge_t stock_metrics_gauges[];
extern const size_t stock_metrics_ngauges;

/* api.c: HTTP routes */

extern const http_route_t api_routes[];
extern const size_t api_nroutes;
int api_health(void *ctx, char *errstr, size_t errstr_size);

#endif
