/* api: the legacy factory's HTTP routes: the Legacy Factory API's POST /api/manufactures,
 * what it received, and the admin knobs. */
#include "legacy_factory.h"

#include <stdio.h>
#include <string.h>

#include "log.h"

/* The factory's answers carry {"message": ...}, never {"error": ...}. */
static void reply_message(http_response_t *res, int status, const char *msg)
{
    http_json(res, status, json_pack("{s:s}", "message", msg));
}

/*
 * POST /api/manufactures. In this order: "down" closes the connection without an answer;
 * then slow_ms passes (a shutdown meanwhile refuses the call too); then fail_next answers
 * 503, and so does a product id in fail_skus; then the body is validated (400 with the
 * factory's message naming the attribute); then reject_next answers 400 naming the factory
 * id; then the order is scheduled (200), unless LF_SCHEDULED_MAX are (503). Every call is
 * recorded with its outcome, whatever it is.
 */
static void post_manufacture(const http_request_t *req, http_response_t *res, void *ctx)
{
    struct factory *f = ctx;
    struct lf_order_in in;
    struct lf_mode mode;
    struct lf_job *job = NULL;
    json_t *body, *pid;
    char uuid[UTIL_UUID_LEN + 1], id[LF_ID_LEN + 1], err[512];
    uint64_t gen = 0, seq = 0;
    int reserved = 0;

    /* Parsed first so that every outcome can be recorded with the call's product id. New
     * reference, or NULL for a body that is not JSON. */
    body = json_loadb(req->body, req->body_len, 0, NULL);
    pid = json_object_get(body, "MessageAttributeProductId");

    standin_mode_get(f->standin, &mode);
    if (mode.down) {
        state_record_call(f->state, body, LF_CALL_REFUSED);
        log_info("manufacture_call outcome=refused reason=down");
        res->drop = 1;
        goto done;
    }
    if (standin_sleep(f->standin, mode.slow_ms) != 0) {
        /* Shutting down: the server closes connections now, so nobody would hear a 200
         * and its callback would be dropped; refuse rather than record an order. */
        state_record_call(f->state, body, LF_CALL_REFUSED);
        log_info("manufacture_call outcome=refused reason=shutdown");
        res->drop = 1;
        goto done;
    }
    if (state_gate(f->state, &mode)) {
        state_record_call(f->state, body, LF_CALL_UNAVAILABLE);
        log_info("manufacture_call outcome=unavailable reason=fail_next fail_next=%lld",
                 mode.fail_next);
        reply_message(res, 503, "Service Unavailable");
        goto done;
    }
    if (json_is_string(pid) && lf_mode_fails_sku(&mode, json_string_value(pid))) {
        state_record_call(f->state, body, LF_CALL_UNAVAILABLE);
        log_info("manufacture_call outcome=unavailable reason=fail_skus product_id=%s",
                 LOG_Q(json_string_value(pid)));
        reply_message(res, 503, "Service Unavailable");
        goto done;
    }
    if (lf_order_parse(body, &in, err, sizeof(err)) != 0) {
        state_record_call(f->state, body, LF_CALL_INVALID);
        log_info("manufacture_call outcome=invalid error=%s", LOG_Q(err));
        reply_message(res, 400, err);
        goto done;
    }
    if (state_reject_gate(f->state)) {
        state_record_call(f->state, body, LF_CALL_REJECTED);
        snprintf(err, sizeof(err), "The message attribute 'MessageAttributeFactoryId' must "
                 "contain non-empty message attribute value of a known factory.");
        log_info("manufacture_call outcome=rejected reason=reject_next");
        reply_message(res, 400, err);
        goto done;
    }

    if (util_uuid_v4(uuid) != 0) {
        state_record_call(f->state, body, LF_CALL_UNAVAILABLE);
        log_error("manufacture_call outcome=unavailable reason=no_random_source");
        reply_message(res, 503, "Service Unavailable");
        goto done;
    }
    snprintf(id, sizeof(id), "mf-%s", uuid); /* fits: LF_ID_LEN */
    job = deliver_job_new(id, &in, &mode);
    if (job == NULL) {
        state_record_call(f->state, body, LF_CALL_UNAVAILABLE);
        log_error("manufacture_call outcome=unavailable reason=out_of_memory");
        reply_message(res, 503, "Service Unavailable");
        goto done;
    }
    if (deliver_reserve(f->deliver, &gen) != 0) {
        state_record_call(f->state, body, LF_CALL_UNAVAILABLE);
        log_warn("manufacture_call outcome=unavailable reason=too_many_scheduled max=%d",
                 LF_SCHEDULED_MAX);
        reply_message(res, 503, "Service Unavailable: too many manufactures scheduled");
        goto done;
    }
    reserved = 1;
    /* Recorded before it is queued, so that the first attempt finds the record. */
    if (state_order_add(f->state, &in, id, &seq) != 0) {
        state_record_call(f->state, body, LF_CALL_UNAVAILABLE);
        log_error("manufacture_call outcome=unavailable reason=out_of_memory");
        reply_message(res, 503, "Service Unavailable");
        goto done;
    }
    deliver_push(f->deliver, gen, seq, job);
    job = NULL;     /* owned by the queue */
    reserved = 0;   /* used by deliver_push */
    /* The callback URL holds a capability: not logged. */
    log_info("manufacture_call outcome=accepted manufacture_id=%s product_id=%s count=%lld "
             "factory_id=%s delay_ms=%lld deliver_twice=%d callback_shape=%s", id,
             LOG_Q(in.product_id), in.count, LOG_Q(in.factory_id), mode.delay_ms,
             mode.deliver_twice, lf_shape_name(mode.callback_shape));
    http_json(res, 200, json_pack("{s:s, s:s}", "message", "Accepted", "MessageId", id));
done:
    if (reserved)
        deliver_release(f->deliver);
    deliver_job_free(job);
    json_decref(body);
}

/* GET /admin/manufactures[?product_id=P]: what the stand-in received. */
static void list_orders(const http_request_t *req, http_response_t *res, void *ctx)
{
    struct factory *f = ctx;
    const char *pid = http_query(req, "product_id");

    if (pid != NULL && (pid[0] == '\0' || strlen(pid) > LF_ATTR_MAX)) {
        http_error(res, 400, "query argument 'product_id' must be 1 to %d bytes", LF_ATTR_MAX);
        return;
    }
    standin_reply_json(res, state_list(f->state, pid));
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
    { "POST", "/api/manufactures", post_manufacture },
    { "GET", "/admin/manufactures", list_orders },
    STANDIN_MODE_ROUTES,
    { "POST", "/admin/reset", post_reset },
};
const size_t api_nroutes = sizeof(api_routes) / sizeof(api_routes[0]);
