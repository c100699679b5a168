/* api: the factory service's HTTP routes: the delivery callback and the operators' view
 * (which never shows a capability: see docs/security.md). */
#include "factory.h"

#include <stdio.h>
#include <string.h>

#include "log.h"
#include "sku.h"
#include "util.h"

static PGconn *acquire(struct factory *f, http_response_t *res)
{
    char err[512];
    PGconn *conn = db_acquire(f->db, (int)f->cfg.db_wait_ms, err, sizeof(err));

    if (conn == NULL) {
        log_error("db_unavailable error=%s", LOG_Q(err));
        http_error(res, 503, "database unavailable, try again");
    }
    return conn;
}

/*
 * POST /deliveries/{production_order_id}?token=<capability>: the legacy factory's callback,
 * to the CallbackUrl this service sent it. Without one of the order's capabilities it is
 * 404, whatever the body (nothing tells a guesser whether the order exists). With one: a
 * body that is no delivery is 400, a product id other than the one sent is 409, a repeat is
 * 200 "already_delivered"; none of these changes anything. Else the order is delivered once
 * and stock.replenished, with the delivered count, is in the outbox.
 */
static void post_delivery(const http_request_t *req, http_response_t *res, void *ctx)
{
    struct factory *f = ctx;
    const char *po = req->params[0], *token = http_query(req, "token");
    struct delivery_in in;
    PGconn *conn = NULL;
    char err[512], why[256], sku[SKU_MAX + 1];
    int parsed;

    if (!util_is_uuid(po) || !callback_token_form(token)) {
        log_warn("delivery_refused reason=no_capability production_order_id=%s", LOG_Q(po));
        http_error(res, 404, "unknown delivery");
        return;
    }
    parsed = callback_parse(req->body, req->body_len, &in, why, sizeof(why)) == 0;
    if ((conn = acquire(f, res)) == NULL)
        return;
    switch (store_deliver(conn, po, token, parsed ? &in : NULL, sku, err, sizeof(err))) {
    case DELIVERY_APPLIED:
        log_info("delivery_applied production_order_id=%s sku=%s delivered=%lld", po, sku,
                 in.count);
        http_json(res, 200, json_pack("{s:s, s:s, s:I}", "status", "delivered",
                                      "production_order_id", po, "delivered",
                                      (json_int_t)in.count));
        break;
    case DELIVERY_REPEATED:
        log_info("delivery_repeated production_order_id=%s sku=%s", po, sku);
        http_json(res, 200, json_pack("{s:s, s:s}", "status", "already_delivered",
                                      "production_order_id", po));
        break;
    case DELIVERY_UNKNOWN:
        log_warn("delivery_refused reason=wrong_capability production_order_id=%s", po);
        http_error(res, 404, "unknown delivery");
        break;
    case DELIVERY_INVALID:
        log_warn("delivery_invalid production_order_id=%s error=%s", po, LOG_Q(why));
        http_error(res, 400, "%s", why);
        break;
    case DELIVERY_PRODUCT_MISMATCH:
        log_warn("delivery_product_mismatch production_order_id=%s product_id=%s", po,
                 LOG_Q(in.product_id));
        http_error(res, 409, "MessageAttributeProductId does not match the production order");
        break;
    case DELIVERY_FAILED:
        log_error("delivery_failed production_order_id=%s error=%s", po, LOG_Q(err));
        http_error(res, 503, "database unavailable, try again");
        break;
    }
    db_release(f->db, conn);
}

/* GET /production-orders[?sku=S][&status=pending|requested|delivered|failed] */
static void list_orders(const http_request_t *req, http_response_t *res, void *ctx)
{
    struct factory *f = ctx;
    const char *sku = http_query(req, "sku"), *status = http_query(req, "status");
    PGconn *conn;
    json_t *list;
    po_state_t st;
    char err[512];

    if (sku != NULL && !sku_valid(sku)) {
        http_error(res, 400, "sku must be " SKU_RULE);
        return;
    }
    if (status != NULL && po_state_parse(status, &st) != 0) {
        http_error(res, 400, "status must be pending, requested, delivered or failed");
        return;
    }
    if ((conn = acquire(f, res)) == NULL)
        return;
    list = store_list(conn, sku, status, 200, err, sizeof(err));
    if (list == NULL) {
        log_error("production_orders_list_failed error=%s", LOG_Q(err));
        http_error(res, 503, "database unavailable, try again");
    } else {
        http_json(res, 200, json_pack("{s:o}", "production_orders", list));
    }
    db_release(f->db, conn);
}

/* GET /production-orders/{id} */
static void get_order(const http_request_t *req, http_response_t *res, void *ctx)
{
    struct factory *f = ctx;
    json_t *order;
    PGconn *conn;
    char err[512];

    if (!util_is_uuid(req->params[0])) {
        http_error(res, 400, "production order id must be a UUID");
        return;
    }
    if ((conn = acquire(f, res)) == NULL)
        return;
    switch (store_get(conn, req->params[0], &order, err, sizeof(err))) {
    case 1:
        http_json(res, 200, order);
        break;
    case 0:
        http_error(res, 404, "no production order with id %s", req->params[0]);
        break;
    default:
        log_error("production_order_get_failed error=%s", LOG_Q(err));
        http_error(res, 503, "database unavailable, try again");
        break;
    }
    db_release(f->db, conn);
}

const http_route_t api_routes[] = {
    { "POST", "/deliveries/{id}", post_delivery },
    { "GET", "/production-orders", list_orders },
    { "GET", "/production-orders/{id}", get_order },
};
const size_t api_nroutes = sizeof(api_routes) / sizeof(api_routes[0]);

int api_health(void *ctx, char *errstr, size_t errstr_size)
{
    struct factory *f = ctx;

    if (kafka_consumer_failed(f->consumer)) {
        snprintf(errstr, errstr_size, "the stock.depleted consumer stopped");
        return -1;
    }
    /* svc_run adds the relay, Kafka and consumer group checks */
    return db_ping(f->db, 2000, errstr, errstr_size);
}
