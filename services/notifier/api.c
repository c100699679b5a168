/* api: the notifier's HTTP routes: subscribers (admin), running and reading bulletins. */
#include "notifier.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "form.h"
#include "log.h"
#include "signup.h"
#include "phone.h"
#include "sku.h"
#include "util.h"

#define LIST_LIMIT_DEFAULT 1000
#define LIST_LIMIT_MAX 10000

static PGconn *acquire(struct notifier *n, http_response_t *res)
{
    char err[512];
    PGconn *conn = db_acquire(n->db, (int)n->cfg.db_wait_ms, err, sizeof(err));

    if (conn == NULL) {
        log_error("db_unavailable error=%s", LOG_Q(err));
        http_error(res, 503, "database unavailable, try again");
    }
    return conn;
}

static void db_failed(http_response_t *res, const char *what, const char *err)
{
    log_error("%s_failed error=%s", what, LOG_Q(err));
    http_error(res, 503, "database unavailable, try again");
}

/* Counts the characters (code points) of UTF-8 text (jansson strings are valid UTF-8). */
static size_t utf8_chars(const char *s)
{
    size_t n = 0;

    for (; *s != '\0'; s++) {
        if (((unsigned char)*s & 0xC0) != 0x80)
            n++;
    }
    return n;
}

/* Returns 1 if s holds a control character (names end up in lists and logs). */
static int has_control(const char *s)
{
    for (; *s != '\0'; s++) {
        if ((unsigned char)*s < 0x20 || *s == 0x7F)
            return 1;
    }
    return 0;
}

int api_subscriber_fields(json_t *body, http_response_t *res, const char **phone,
                             const char **name, json_t **skus)
{
    const char *key;
    json_t *v;
    size_t i;

    json_object_foreach(body, key, v) {
        if (strcmp(key, "phone") != 0 && strcmp(key, "name") != 0 &&
            strcmp(key, "skus") != 0) {
            http_error(res, 400, "unknown field '%.64s' (fields: phone, name, skus)", key);
            return -1;
        }
    }
    *phone = json_string_value(json_object_get(body, "phone"));
    if (*phone == NULL || !phone_e164_valid(*phone)) {
        http_error(res, 400, "field 'phone' must be an E.164 number: '+', then 8 to 15 "
                   "digits, the first not 0 (such as +821012345678)");
        return -1;
    }
    v = json_object_get(body, "name");
    *name = "";
    if (v != NULL && !json_is_null(v)) {
        if (!json_is_string(v) || utf8_chars(json_string_value(v)) > NOTIFIER_NAME_MAX ||
            has_control(json_string_value(v))) {
            http_error(res, 400, "field 'name' must be a string of at most %d characters "
                       "without control characters", NOTIFIER_NAME_MAX);
            return -1;
        }
        *name = json_string_value(v);
    }
    *skus = json_object_get(body, "skus");
    if (*skus == NULL || json_is_null(*skus)) {
        *skus = NULL;
        return 0;
    }
    if (!json_is_array(*skus) || json_array_size(*skus) > NOTIFIER_SKUS_MAX) {
        http_error(res, 400, "field 'skus' must be an array of at most %d SKUs",
                   NOTIFIER_SKUS_MAX);
        return -1;
    }
    json_array_foreach(*skus, i, v) {
        if (!json_is_string(v) || !sku_valid(json_string_value(v))) {
            http_error(res, 400, "skus[%zu] must be " SKU_RULE, i);
            return -1;
        }
    }
    return 0;
}

/* POST /subscribers */
static void add_subscriber(const http_request_t *req, http_response_t *res, void *ctx)
{
    struct notifier *n = ctx;
    json_t *body = NULL, *skus, *empty = NULL, *sub = NULL;
    const char *phone, *name;
    char err[512], existing[37], masked[PHONE_MASK_MAX];
    PGconn *conn = NULL;

    if (!http_check_bearer(req, res, n->cfg.admin_token))
        goto done;
    if ((body = http_body_object(req, res)) == NULL ||
        api_subscriber_fields(body, res, &phone, &name, &skus) != 0)
        goto done;
    if (skus == NULL && (skus = empty = json_array()) == NULL) {
        http_error(res, 500, "out of memory");
        goto done;
    }
    if ((conn = acquire(n, res)) == NULL)
        goto done;
    phone_mask(phone, masked, sizeof(masked));
    switch (store_subscriber_add(conn, phone, name, skus, &sub, existing, err, sizeof(err))) {
    case STORE_OK:
        log_info("subscriber_added id=%s phone=%s skus=%zu",
                 json_string_value(json_object_get(sub, "id")), masked, json_array_size(skus));
        snprintf(res->location, sizeof(res->location), "/subscribers/%s",
                 json_string_value(json_object_get(sub, "id")));
        http_json(res, 201, sub);
        break;
    case STORE_CONFLICT:
        http_json(res, 409, json_pack("{s:s,s:s}", "error",
                                      "this number is subscribed already", "id", existing));
        break;
    default:
        db_failed(res, "subscriber_add", err);
        break;
    }
done:
    db_release(n->db, conn);
    json_decref(body);
    json_decref(empty);
}

/* Reads an optional non-negative integer query argument. -1 after a 400. */
static int query_int(const http_request_t *req, http_response_t *res, const char *name,
                     long long def, long long max, long long *out)
{
    const char *v = http_query(req, name);
    char *end;

    *out = def;
    if (v == NULL)
        return 0;
    errno = 0;
    *out = strtoll(v, &end, 10);
    if (errno != 0 || end == v || *end != '\0' || *out < 0 || *out > max) {
        http_error(res, 400, "query '%s' must be an integer from 0 to %lld", name, max);
        return -1;
    }
    return 0;
}

/* GET /subscribers */
static void list_subscribers(const http_request_t *req, http_response_t *res, void *ctx)
{
    struct notifier *n = ctx;
    long long limit, offset;
    PGconn *conn;
    json_t *list;
    char err[512];

    if (!http_check_bearer(req, res, n->cfg.admin_token) ||
        query_int(req, res, "limit", LIST_LIMIT_DEFAULT, LIST_LIMIT_MAX, &limit) != 0 ||
        query_int(req, res, "offset", 0, 1000000000LL, &offset) != 0 ||
        (conn = acquire(n, res)) == NULL)
        return;
    list = store_subscriber_list(conn, limit, offset, err, sizeof(err));
    if (list == NULL)
        db_failed(res, "subscriber_list", err);
    else
        http_json(res, 200, list);
    db_release(n->db, conn);
}

/* The {id} of a subscriber route: a UUID, or a 404. */
static int subscriber_id(const http_request_t *req, http_response_t *res)
{
    if (!util_is_uuid(req->params[0])) {
        http_error(res, 404, "no such subscriber");
        return -1;
    }
    return 0;
}

/* Answers a store call on one subscriber: 200 with out, 404, or 503. */
static void answer(http_response_t *res, store_result_t r, json_t *out, const char *what,
                   const char *missing, const char *err)
{
    switch (r) {
    case STORE_OK:
        http_json(res, 200, out);
        break;
    case STORE_NOT_FOUND:
        http_error(res, 404, "%s", missing);
        break;
    default:
        db_failed(res, what, err);
        break;
    }
}

/* GET /subscribers/{id} */
static void get_subscriber(const http_request_t *req, http_response_t *res, void *ctx)
{
    struct notifier *n = ctx;
    PGconn *conn;
    json_t *sub = NULL;
    char err[512];
    store_result_t r;

    if (!http_check_bearer(req, res, n->cfg.admin_token) || subscriber_id(req, res) != 0 ||
        (conn = acquire(n, res)) == NULL)
        return;
    r = store_subscriber_get(conn, req->params[0], &sub, err, sizeof(err));
    answer(res, r, sub, "subscriber_get", "no such subscriber", err);
    db_release(n->db, conn);
}

/* DELETE /subscribers/{id}: opts out. */
static void remove_subscriber(const http_request_t *req, http_response_t *res, void *ctx)
{
    struct notifier *n = ctx;
    PGconn *conn;
    json_t *out = NULL;
    char err[512];
    store_result_t r;

    if (!http_check_bearer(req, res, n->cfg.admin_token) || subscriber_id(req, res) != 0 ||
        (conn = acquire(n, res)) == NULL)
        return;
    r = store_subscriber_remove(conn, req->params[0], &out, err, sizeof(err));
    if (r == STORE_OK)
        log_info("subscriber_opted_out id=%s", req->params[0]);
    answer(res, r, out, "subscriber_remove", "no such subscriber (or opted out already)",
           err);
    db_release(n->db, conn);
}

/* PUT and DELETE /subscribers/{id}/skus/{sku} */
static void subscriber_sku(const http_request_t *req, http_response_t *res, void *ctx,
                           int add)
{
    struct notifier *n = ctx;
    PGconn *conn;
    json_t *out = NULL;
    char err[512];
    store_result_t r;

    if (!http_check_bearer(req, res, n->cfg.admin_token) || subscriber_id(req, res) != 0)
        return;
    if (!sku_valid(req->params[1])) {
        http_error(res, 400, "sku must be " SKU_RULE);
        return;
    }
    if ((conn = acquire(n, res)) == NULL)
        return;
    r = store_subscriber_sku(conn, req->params[0], req->params[1], add, &out, err,
                             sizeof(err));
    answer(res, r, out, "subscriber_sku",
           add ? "no such subscriber" : "no such subscriber, or not subscribed to that sku",
           err);
    db_release(n->db, conn);
}

static void put_sku(const http_request_t *req, http_response_t *res, void *ctx)
{
    subscriber_sku(req, res, ctx, 1);
}

static void delete_sku(const http_request_t *req, http_response_t *res, void *ctx)
{
    subscriber_sku(req, res, ctx, 0);
}

/* POST /bulletins/run: today's bulletin, now. */
static void run_bulletin(const http_request_t *req, http_response_t *res, void *ctx)
{
    struct notifier *n = ctx;
    PGconn *conn;
    json_t *b = NULL;
    char err[512];
    int created;

    if (!http_check_bearer(req, res, n->cfg.admin_token) || (conn = acquire(n, res)) == NULL)
        return;
    if (bulletin_start(n, conn, util_now_ms(), "manual", &created, &b, err,
                       sizeof(err)) != STORE_OK) {
        db_failed(res, "bulletin_run", err);
    } else {
        log_info("bulletin_run date=%s new=%s", json_string_value(json_object_get(b, "date")),
                 created ? "yes" : "no");
        http_json(res, created ? 202 : 200,
                  json_pack("{s:b,s:o}", "started", created, "bulletin", b));
    }
    db_release(n->db, conn);
}

/* GET /bulletins/{date} */
static void get_bulletin(const http_request_t *req, http_response_t *res, void *ctx)
{
    struct notifier *n = ctx;
    const char *day = req->params[0];
    PGconn *conn;
    json_t *b = NULL;
    char err[512];
    store_result_t r;

    if (!feed_date_valid(day)) {
        http_error(res, 400, "date must be YYYY-MM-DD");
        return;
    }
    if ((conn = acquire(n, res)) == NULL)
        return;
    r = store_bulletin_get(conn, day, &b, err, sizeof(err));
    if (r == STORE_OK) {
        char key[NOTIFIER_KEY_MAX], eta[40];

        snprintf(key, sizeof(key), "day:%s", day);
        if (store_eta(conn, key, n->cfg.sms.from, n->cfg.sms_interval_ms, eta, sizeof(eta),
                      err, sizeof(err)) != 0) {
            json_decref(b);
            b = NULL;
            r = STORE_FAILED;
        } else {
            /* null when none of the day's messages is still to go */
            json_object_set_new(b, "expected_done_at",
                                eta[0] != '\0' ? json_string(eta) : json_null());
        }
    }
    answer(res, r, b, "bulletin_get", "no bulletin for that date", err);
    db_release(n->db, conn);
}

/* Twilio's statuses a callback may carry. */
static int provider_status_ok(const char *s)
{
    static const char *const known[] = { "accepted", "queued", "sending", "sent",
                                         "delivered", "undelivered", "failed" };
    size_t i;

    for (i = 0; s != NULL && i < sizeof(known) / sizeof(known[0]); i++) {
        if (strcmp(s, known[i]) == 0)
            return 1;
    }
    return 0;
}

/*
 * POST /sms/status/{delivery}?token=...: the provider's status callback for one delivery
 * (Twilio POSTs a form: MessageSid, MessageStatus, ...). The URL is a capability: without
 * the delivery's token it is a 404 and changes nothing. Twilio wants a 2xx, else it may
 * try again; the answer carries nothing it reads.
 */
static void sms_status(const http_request_t *req, http_response_t *res, void *ctx)
{
    struct notifier *n = ctx;
    const char *id = req->params[0], *token = http_query(req, "token");
    const char *status, *sid;
    form_t form = { NULL, 0, NULL };
    char err[512], state[16], *end;
    PGconn *conn;
    store_result_t r;
    long long v;
    size_t count = 0, scount = 0;

    errno = 0;
    v = strtoll(id, &end, 10);
    if (errno != 0 || end == id || *end != '\0' || v <= 0 || token == NULL ||
        strlen(token) != 36) {
        http_error(res, 404, "no such delivery");
        return;
    }
    if (form_parse(req->body != NULL ? req->body : "", req->body_len, &form, err,
                   sizeof(err)) != 0) {
        http_error(res, 400, "the body must be a form: %s", err);
        goto done;
    }
    status = form_get(&form, "MessageStatus", &count);
    sid = form_get(&form, "MessageSid", &scount);
    if (count != 1 || !provider_status_ok(status)) {
        http_error(res, 400, "field 'MessageStatus' must be one of accepted, queued, "
                   "sending, sent, delivered, undelivered, failed");
        goto done;
    }
    if (scount != 1 || !util_alnum_valid(sid, SMS_SID_MAX - 1)) {
        http_error(res, 400, "field 'MessageSid' must be 1 to %d letters and digits",
                   SMS_SID_MAX - 1);
        goto done;
    }
    if ((conn = acquire(n, res)) == NULL)
        goto done;
    /* a token that is not a UUID is a database error (22P02) without this check */
    r = util_is_uuid(token) ? store_status(conn, id, token, status, sid, state,
                                              sizeof(state), err, sizeof(err))
                               : STORE_NOT_FOUND;
    db_release(n->db, conn);
    if (r == STORE_FAILED) {
        db_failed(res, "sms_status", err);
    } else if (r == STORE_NOT_FOUND) {
        log_warn("sms_status_refused delivery=%lld (no such delivery or a wrong token)", v);
        http_error(res, 404, "no such delivery");
    } else {
        log_info("sms_status delivery=%lld sid=%s provider_status=%s status=%s", v, sid,
                 status, state);
        http_json(res, 200, json_pack("{s:s,s:s}", "status", state, "provider_status",
                                      status));
    }
done:
    form_free(&form);
}

const http_route_t api_routes[] = {
    { "POST", "/sms/status/{id}", sms_status },
    { "POST", "/subscribers", add_subscriber },
    { "GET", "/subscribers", list_subscribers },
    { "GET", "/subscribers/{id}", get_subscriber },
    { "DELETE", "/subscribers/{id}", remove_subscriber },
    { "PUT", "/subscribers/{id}/skus/{sku}", put_sku },
    { "DELETE", "/subscribers/{id}/skus/{sku}", delete_sku },
    { "POST", "/bulletins/run", run_bulletin },
    { "GET", "/bulletins/{date}", get_bulletin },
    /* the public sign-up (signup_api.c): no admin token, the SMS code is the proof */
    { "GET", "/signup", signup_get_page },
    { "GET", "/signup/products", signup_get_products },
    { "POST", "/signup", signup_post_code },
    { "POST", "/signup/confirm", signup_post_confirm },
    { "POST", "/unsubscribe", signup_post_code },
    { "POST", "/unsubscribe/confirm", signup_post_confirm },
    { "POST", "/sms/inbound", signup_post_inbound },
};
const size_t api_nroutes = sizeof(api_routes) / sizeof(api_routes[0]);

int api_health(void *ctx, char *errstr, size_t errstr_size)
{
    struct notifier *n = ctx;

    if (kafka_consumer_failed(n->consumer)) {
        snprintf(errstr, errstr_size, "the consumer stopped");
        return -1;
    }
    return db_ping(n->db, 2000, errstr, errstr_size);
}
