/* api: the factory service's HTTP routes: the delivery callback and the operators' view. */
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

/* POST /deliveries?po=<id>&token=<t> {"factory_order_id", "sku", "quantity"}: the legacy
 * factory's callback. Applied once; a repeat answers 200 and changes nothing. */
static void post_delivery(const http_request_t *req, http_response_t *res, void *ctx)
{
    struct factory *f = ctx;
    const char *po = http_query(req, "po"), *token = http_query(req, "token");
    const char *fo, *sku;
    json_t *body = NULL, *qty;
    json_int_t q = 0;
    PGconn *conn = NULL;
    char err[512], order_id[UTIL_UUID_LEN + 1];

    if (po != NULL && !util_is_uuid(po)) {
        http_error(res, 404, "unknown production order");
        goto done;
    }
    if ((body = http_body_object(req, res)) == NULL)
        goto done;
    fo = json_string_value(json_object_get(body, "factory_order_id"));
    sku = json_string_value(json_object_get(body, "sku"));
    qty = json_object_get(body, "quantity");
    if (fo == NULL || fo[0] == '\0' || strlen(fo) > FACTORY_ORDER_ID_MAX) {
        http_error(res, 400, "field 'factory_order_id' must be a string of 1 to %d bytes",
                   FACTORY_ORDER_ID_MAX);
        goto done;
    }
    if (sku == NULL || !sku_valid(sku)) {
        http_error(res, 400, "field 'sku' must be " SKU_RULE);
        goto done;
    }
    if (!json_is_integer(qty) || (q = json_integer_value(qty)) < 1 || q > FACTORY_DELIVERY_MAX) {
        http_error(res, 400, "field 'quantity' must be an integer from 1 to %d",
                   FACTORY_DELIVERY_MAX);
        goto done;
    }
    if ((conn = acquire(f, res)) == NULL)
        goto done;
    switch (store_deliver(conn, po, token, fo, sku, (long long)q, order_id, err, sizeof(err))) {
    case DELIVERY_APPLIED:
        log_info("delivery_applied production_order_id=%s factory_order_id=%s sku=%s "
                 "quantity=%lld", order_id, LOG_Q(fo), sku, (long long)q);
        http_json(res, 200, json_pack("{s:s, s:s}", "status", "delivered",
                                      "production_order_id", order_id));
        break;
    case DELIVERY_REPEATED:
        log_info("delivery_repeated production_order_id=%s factory_order_id=%s", order_id,
                 LOG_Q(fo));
        http_json(res, 200, json_pack("{s:s, s:s}", "status", "already_delivered",
                                      "production_order_id", order_id));
        break;
    case DELIVERY_UNKNOWN:
        log_warn("delivery_unknown factory_order_id=%s sku=%s", LOG_Q(fo), sku);
        http_error(res, 404, "unknown production order");
        break;
    case DELIVERY_SKU_MISMATCH:
        log_warn("delivery_sku_mismatch production_order_id=%s sku=%s", order_id, sku);
        http_error(res, 409, "sku '%s' does not match the production order", sku);
        break;
    case DELIVERY_FAILED:
        log_error("delivery_failed factory_order_id=%s error=%s", LOG_Q(fo), LOG_Q(err));
        http_error(res, 503, "database unavailable, try again");
        break;
    }
done:
    db_release(f->db, conn);
    json_decref(body);
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
    { "POST", "/deliveries", post_delivery },
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
