/* api: the sales service's HTTP routes. */
#include "sales.h"

#include <stdio.h>
#include <string.h>

#include "http.h"
#include "log.h"
#include "util.h"

/* POST /orders */
static void post_order(const http_request_t *req, http_response_t *res, void *ctx)
{
    struct sales *s = ctx;
    order_request_t order;
    const char *key;
    json_t *body = NULL;
    order_outcome_t outcome = { 0 };
    PGconn *conn = NULL;
    char err[512];

    key = http_header(req, "Idempotency-Key");
    if (key != NULL && !order_idempotency_key_valid(key)) {
        http_error(res, 400, "Idempotency-Key must be 1 to %d visible ASCII characters",
                   IDEMPOTENCY_KEY_MAX);
        goto done;
    }
    body = http_body_object(req, res);
    if (body == NULL)
        goto done;
    if (order_parse(body, &order, err, sizeof(err)) != 0) {
        http_error(res, 400, "%s", err);
        goto done;
    }

    /* Without a key, concurrent orders of one SKU are placed together (combine.c); a key
     * needs its own transaction, which serialises requests carrying it. */
    if (key == NULL) {
        if (combine_place(s->combine, s->db, (int)s->cfg.db_wait_ms, &order, &outcome, err,
                          sizeof(err)) != 0) {
            log_error("order_failed sku=%s error=%s", order.sku, LOG_Q(err));
            http_error(res, 503, "database unavailable, try again");
            goto done;
        }
    } else if ((conn = db_acquire(s->db, (int)s->cfg.db_wait_ms, err, sizeof(err))) == NULL ||
               store_place_order(conn, &order, key, &outcome, err, sizeof(err)) != 0) {
        log_error("order_failed sku=%s error=%s", order.sku, LOG_Q(err));
        http_error(res, 503, "database unavailable, try again");
        goto done;
    }
    if (outcome.body == NULL) {
        http_error(res, outcome.status, "%s", outcome.error);
        goto done;
    }
    log_info("order_answered sku=%s quantity=%d status=%d order_id=%s", order.sku,
             order.quantity, outcome.status,
             json_string_value(json_object_get(outcome.body, "order_id")));
    sales_metrics_order(s->metrics, &outcome);
    http_json(res, outcome.status, outcome.body);
    outcome.body = NULL; /* http_json took it */
done:
    db_release(s->db, conn);
    json_decref(body);
    order_outcome_clear(&outcome);
}

/* GET /orders/{id} */
static void get_order(const http_request_t *req, http_response_t *res, void *ctx)
{
    struct sales *s = ctx;
    const char *id = req->params[0];
    json_t *order = NULL;
    PGconn *conn;
    char err[512];

    if (!util_is_uuid(id)) {
        http_error(res, 400, "order id must be a UUID");
        return;
    }
    conn = db_acquire(s->db, (int)s->cfg.db_wait_ms, err, sizeof(err));
    if (conn == NULL) {
        log_error("order_lookup_failed error=%s", LOG_Q(err));
        http_error(res, 503, "database unavailable, try again");
        return;
    }
    switch (store_get_order(conn, id, &order, err, sizeof(err))) {
    case 1:
        http_json(res, 200, order);
        break;
    case 0:
        http_error(res, 404, "no order with id %s", id);
        break;
    default:
        log_error("order_lookup_failed error=%s", LOG_Q(err));
        http_error(res, 503, "database unavailable, try again");
        break;
    }
    db_release(s->db, conn);
}

const http_route_t api_routes[] = {
    { "POST", "/orders", post_order },
    { "GET", "/orders/{id}", get_order },
};
const size_t api_nroutes = sizeof(api_routes) / sizeof(api_routes[0]);

int api_health(void *ctx, char *errstr, size_t errstr_size)
{
    struct sales *s = ctx;

    /* svc_run adds the relay, Kafka and consumer group checks */
    return db_ping(s->db, 2000, errstr, errstr_size);
}
