/* api: the legacy factory's HTTP routes: production orders and the admin knobs. */
#include "legacy_factory.h"

#include <stdio.h>
#include <string.h>

#include "log.h"

/*
 * POST /production-orders. In this order: "down" closes the connection without an answer;
 * then slow_ms passes (a shutdown meanwhile refuses the call too); then fail_next answers
 * 503, and so does a SKU in fail_skus; then the body is validated (400); then the order is
 * scheduled (202), unless LF_SCHEDULED_MAX are (503). Every call is recorded with its
 * outcome, whatever it is.
 */
static void post_order(const http_request_t *req, http_response_t *res, void *ctx)
{
    struct factory *f = ctx;
    struct lf_order_in in;
    struct lf_mode mode;
    struct lf_job *job = NULL;
    json_t *body;
    char uuid[UTIL_UUID_LEN + 1], id[LF_ID_LEN + 1], err[512];
    uint64_t gen = 0, seq = 0;
    int reserved = 0;

    /* Parsed first so that every outcome can be recorded with the call's sku; when it
     * fails a 400 is set already, which the steps below may replace. New reference. */
    body = http_body_object(req, res);

    standin_mode_get(f->standin, &mode);
    if (mode.down) {
        state_record_call(f->state, body, LF_CALL_REFUSED);
        log_info("production_order_call outcome=refused reason=down");
        res->drop = 1;
        goto done;
    }
    if (standin_sleep(f->standin, mode.slow_ms) != 0) {
        /* Shutting down: the server closes connections now, so nobody would hear a 202
         * and its callback would be dropped; refuse rather than record an order. */
        state_record_call(f->state, body, LF_CALL_REFUSED);
        log_info("production_order_call outcome=refused reason=shutdown");
        res->drop = 1;
        goto done;
    }
    if (state_gate(f->state, &mode)) {
        state_record_call(f->state, body, LF_CALL_UNAVAILABLE);
        log_info("production_order_call outcome=unavailable reason=fail_next fail_next=%lld",
                 mode.fail_next);
        http_error(res, 503, "factory unavailable, try again later");
        goto done;
    }
    if (body != NULL && json_is_string(json_object_get(body, "sku")) &&
        lf_mode_fails_sku(&mode, json_string_value(json_object_get(body, "sku")))) {
        state_record_call(f->state, body, LF_CALL_UNAVAILABLE);
        log_info("production_order_call outcome=unavailable reason=fail_skus sku=%s",
                 json_string_value(json_object_get(body, "sku")));
        http_error(res, 503, "factory unavailable, try again later");
        goto done;
    }
    if (body == NULL) {
        state_record_call(f->state, NULL, LF_CALL_INVALID);
        log_info("production_order_call outcome=invalid error=\"malformed body\"");
        goto done; /* the 400 from http_body_object */
    }
    if (lf_order_parse(body, &in, err, sizeof(err)) != 0) {
        state_record_call(f->state, body, LF_CALL_INVALID);
        log_info("production_order_call outcome=invalid error=%s", LOG_Q(err));
        http_error(res, 400, "%s", err);
        goto done;
    }

    if (util_uuid_v4(uuid) != 0) {
        state_record_call(f->state, body, LF_CALL_UNAVAILABLE);
        log_error("production_order_call outcome=unavailable reason=no_random_source");
        http_error(res, 503, "factory unavailable, try again later");
        goto done;
    }
    snprintf(id, sizeof(id), "fo-%s", uuid); /* fits: LF_ID_LEN */
    job = deliver_job_new(id, &in, mode.delay_ms, mode.deliver_twice);
    if (job == NULL) {
        state_record_call(f->state, body, LF_CALL_UNAVAILABLE);
        log_error("production_order_call outcome=unavailable reason=out_of_memory");
        http_error(res, 503, "factory unavailable, try again later");
        goto done;
    }
    if (deliver_reserve(f->deliver, &gen) != 0) {
        state_record_call(f->state, body, LF_CALL_UNAVAILABLE);
        log_warn("production_order_call outcome=unavailable reason=too_many_scheduled "
                 "max=%d", LF_SCHEDULED_MAX);
        http_error(res, 503, "more than %d production orders are scheduled, try again later",
                   LF_SCHEDULED_MAX);
        goto done;
    }
    reserved = 1;
    /* Recorded before it is queued, so that the first attempt finds the record. */
    if (state_order_add(f->state, &in, id, &seq) != 0) {
        state_record_call(f->state, body, LF_CALL_UNAVAILABLE);
        log_error("production_order_call outcome=unavailable reason=out_of_memory");
        http_error(res, 503, "factory unavailable, try again later");
        goto done;
    }
    deliver_push(f->deliver, gen, seq, job);
    job = NULL;     /* owned by the queue */
    reserved = 0;   /* used by deliver_push */
    log_info("production_order_call outcome=accepted factory_order_id=%s sku=%s quantity=%lld "
             "callback_url=\"%s\" delay_ms=%lld deliver_twice=%d", id, in.sku, in.quantity,
             in.callback_url, mode.delay_ms, mode.deliver_twice);
    http_json(res, 202, json_pack("{s:s, s:s, s:I}", "factory_order_id", id, "sku", in.sku,
                                  "quantity", (json_int_t)in.quantity));
done:
    if (reserved)
        deliver_release(f->deliver);
    deliver_job_free(job);
    json_decref(body);
}

/* GET /production-orders[?sku=S] */
static void list_orders(const http_request_t *req, http_response_t *res, void *ctx)
{
    struct factory *f = ctx;
    const char *sku = http_query(req, "sku");

    if (sku != NULL && !sku_valid(sku)) {
        http_error(res, 400, "query argument 'sku' must be " SKU_RULE);
        return;
    }
    standin_reply_json(res, state_list(f->state, sku));
}

/* POST /admin/reset: the mode from the environment again; recorded calls and orders and
 * the callbacks not yet made are forgotten (an attempt in flight finishes, unrecorded). */
static void post_reset(const http_request_t *req, http_response_t *res, void *ctx)
{
    struct factory *f = ctx;
    size_t dropped;

    (void)req;
    dropped = deliver_cancel(f->deliver);
    standin_reset(f->standin);
    log_info("reset callbacks_dropped=%zu", dropped);
    standin_reply_mode(f->standin, res);
}

const http_route_t api_routes[] = {
    { "POST", "/production-orders", post_order },
    { "GET", "/production-orders", list_orders },
    STANDIN_MODE_ROUTES,
    { "POST", "/admin/reset", post_reset },
};
const size_t api_nroutes = sizeof(api_routes) / sizeof(api_routes[0]);
