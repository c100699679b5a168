/* api: the stock service's HTTP routes. */
#include "stock.h"

#include <stdio.h>
#include <string.h>

#include "log.h"
#include "sku.h"

static PGconn *acquire(struct stock *s, http_response_t *res)
{
    char err[512];
    PGconn *conn = db_acquire(s->db, (int)s->cfg.db_wait_ms, err, sizeof(err));

    if (conn == NULL) {
        log_error("db_unavailable error=%s", LOG_Q(err));
        http_error(res, 503, "database unavailable, try again");
    }
    return conn;
}

/* GET /inventory */
static void list_inventory(const http_request_t *req, http_response_t *res, void *ctx)
{
    struct stock *s = ctx;
    PGconn *conn;
    json_t *items;
    char err[512];

    (void)req;
    if ((conn = acquire(s, res)) == NULL)
        return;
    items = store_list(conn, err, sizeof(err));
    if (items == NULL) {
        log_error("inventory_list_failed error=%s", LOG_Q(err));
        http_error(res, 503, "database unavailable, try again");
    } else {
        http_json(res, 200, json_pack("{s:o}", "inventory", items));
    }
    db_release(s->db, conn);
}

/* GET /inventory/{sku} */
static void get_inventory(const http_request_t *req, http_response_t *res, void *ctx)
{
    struct stock *s = ctx;
    const char *sku = req->params[0];
    PGconn *conn;
    json_t *item;
    char err[512];

    if (!sku_valid(sku)) {
        http_error(res, 400, "sku must be " SKU_RULE);
        return;
    }
    if ((conn = acquire(s, res)) == NULL)
        return;
    switch (store_get(conn, sku, &item, err, sizeof(err))) {
    case 1:
        http_json(res, 200, item);
        break;
    case 0:
        http_error(res, 404, "unknown sku '%s'", sku);
        break;
    default:
        log_error("inventory_get_failed sku=%s error=%s", sku, LOG_Q(err));
        http_error(res, 503, "database unavailable, try again");
        break;
    }
    db_release(s->db, conn);
}

/* PUT /inventory/{sku} {"quantity": n}: admin only. */
static void put_inventory(const http_request_t *req, http_response_t *res, void *ctx)
{
    struct stock *s = ctx;
    const char *sku = req->params[0];
    json_t *body = NULL, *qty;
    PGconn *conn = NULL;
    json_int_t q;
    char err[512];
    int created;

    if (!http_check_bearer(req, res, s->cfg.admin_token))
        goto done;
    if (!sku_valid(sku)) {
        http_error(res, 400, "sku must be " SKU_RULE);
        goto done;
    }
    if ((body = http_body_object(req, res)) == NULL)
        goto done;
    qty = json_object_get(body, "quantity");
    if (qty == NULL) {
        http_error(res, 400, "missing field 'quantity'");
        goto done;
    }
    if (!json_is_integer(qty)) {
        http_error(res, 400, "field 'quantity' must be an integer");
        goto done;
    }
    q = json_integer_value(qty);
    if (q < 0 || q > STOCK_QUANTITY_MAX) {
        http_error(res, 400, "field 'quantity' must be between 0 and %lld", STOCK_QUANTITY_MAX);
        goto done;
    }
    if ((conn = acquire(s, res)) == NULL)
        goto done;
    created = store_set(conn, sku, (long long)q, err, sizeof(err));
    if (created < 0) {
        log_error("inventory_set_failed sku=%s error=%s", sku, LOG_Q(err));
        http_error(res, 503, "database unavailable, try again");
        goto done;
    }
    log_info("inventory_set sku=%s quantity=%lld created=%d", sku, (long long)q, created);
    http_json(res, created ? 201 : 200,
              json_pack("{s:s, s:I}", "sku", sku, "quantity", q));
done:
    db_release(s->db, conn);
    json_decref(body);
}

const http_route_t api_routes[] = {
    { "GET", "/inventory", list_inventory },
    { "GET", "/inventory/{sku}", get_inventory },
    { "PUT", "/inventory/{sku}", put_inventory },
};
const size_t api_nroutes = sizeof(api_routes) / sizeof(api_routes[0]);

int api_health(void *ctx, char *errstr, size_t errstr_size)
{
    struct stock *s = ctx;

    if (kafka_consumer_failed(s->consumer)) {
        snprintf(errstr, errstr_size, "the stock.replenished consumer stopped");
        return -1;
    }
    return db_ping(s->db, 2000, errstr, errstr_size);
}
