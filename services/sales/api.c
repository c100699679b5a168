/* api: the sales service's HTTP routes. */
#include "sales.h"

#include <stdio.h>
#include <string.h>

#include "http.h"
#include "log.h"
#include "util.h"

/* How long a request whose COMMIT got no answer looks for its order before it gives up. */
#define COMMIT_CHECK_MS 10000

/* After STORE_COMMIT_UNKNOWN: whether the order with that id (committed by server process
 * pid) was committed, asked on fresh connections until PostgreSQL answers for good or
 * COMMIT_CHECK_MS pass. Returns 1 committed (and a new reference to the stored order in
 * *stored), 0 not, -1 still unknown. */
static int order_committed(struct sales *s, const char *id, int pid, json_t **stored)
{
    int64_t deadline = util_mono_ms() + COMMIT_CHECK_MS;
    char err[512];

    *stored = NULL;
    for (;;) {
        PGconn *conn = db_acquire(s->db, (int)s->cfg.db_wait_ms, err, sizeof(err));
        int r = conn != NULL ? store_order_settled(conn, id, pid, stored, err, sizeof(err))
                             : -1;

        db_release(s->db, conn);
        if (r == 0 || r == 1)
            return r;
        if (util_mono_ms() >= deadline)
            return -1;
        util_sleep_ms(200, NULL);
    }
}

/* The one answer to an order whose commit went unanswered (STORE_COMMIT_UNKNOWN from
 * store_place_order's COMMIT, or from the one statement of a combined batch, where every
 * order of the batch gets it): a 5xx must mean "nothing happened", so the order
 * (out->order_id) is looked up first. Committed: out becomes the answer it has, with the
 * level of the stored row (a batch's answer still has the placeholder), and returns 0.
 * Not committed: returns -1, a 503 "try again" for the caller. Still unknown: answers res
 * with a 503 that names the order, and returns 1. err is why the commit went unanswered.
 * Blocks up to COMMIT_CHECK_MS. */
static int commit_unknown_resolve(struct sales *s, const order_request_t *order,
                                  order_outcome_t *out, const char *err,
                                  http_response_t *res)
{
    json_t *stored = NULL, *remaining;
    int ret;

    log_warn("order_commit_unknown sku=%s order_id=%s backend_pid=%d error=%s", order->sku,
             out->order_id, out->backend_pid, LOG_Q(err));
    switch (order_committed(s, out->order_id, out->backend_pid, &stored)) {
    case 1:
        /* committed: the answer it has; its commit's own wake of the relay never came */
        outbox_wake(SALES_SERVICE);
        remaining = json_object_get(stored, "remaining"); /* borrowed */
        if (out->body != NULL && json_object_get(out->body, "remaining") != NULL &&
            (remaining == NULL || json_object_set(out->body, "remaining", remaining) != 0))
            json_object_del(out->body, "remaining"); /* never the placeholder */
        ret = 0;
        break;
    case 0:
        ret = -1; /* not committed: nothing happened, try again */
        break;
    default:
        log_error("order_outcome_unknown sku=%s order_id=%s", order->sku, out->order_id);
        http_json(res, 503, json_pack("{s:s, s:s}", "error",
                                      "the database went away while committing this "
                                      "order: GET /orders/{order_id} says whether it was "
                                      "placed", "order_id", out->order_id));
        ret = 1;
        break;
    }
    json_decref(stored);
    return ret;
}

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
    int placed;

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
    if (key == NULL)
        placed = combine_place(s->combine, s->db, (int)s->cfg.db_wait_ms, &order, &outcome,
                               err, sizeof(err));
    else if ((conn = db_acquire(s->db, (int)s->cfg.db_wait_ms, err, sizeof(err))) == NULL)
        placed = -1;
    else
        placed = store_place_order(conn, &order, key, &outcome, err, sizeof(err));
    if (placed == STORE_COMMIT_UNKNOWN) {
        db_release(s->db, conn);
        conn = NULL;
        placed = commit_unknown_resolve(s, &order, &outcome, err, res);
        if (placed > 0)
            goto done; /* answered */
    }
    if (placed != 0) {
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

/* GET /products: what the shop page shows (docs/decisions.md: why sales answers it). */
static void get_products(const http_request_t *req, http_response_t *res, void *ctx)
{
    struct sales *s = ctx;
    json_t *list = NULL;
    PGconn *conn;
    char err[512];

    (void)req;
    conn = db_acquire(s->db, (int)s->cfg.db_wait_ms, err, sizeof(err));
    if (conn != NULL)
        list = store_list_products(conn, err, sizeof(err));
    if (list == NULL) {
        log_error("products_failed error=%s", LOG_Q(err));
        http_error(res, 503, "database unavailable, try again");
    } else {
        http_json(res, 200, list);
    }
    db_release(s->db, conn);
}

const http_route_t api_routes[] = {
    { "GET", "/", page_shop },
    { "GET", "/products", get_products },
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
