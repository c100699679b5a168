/* api: the SMS gateway's HTTP routes: Twilio's Messages API, what was sent, and the admin
 * knobs. */
#include "sms_gateway.h"

#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "log.h"
#include "util.h"

#define SG_MORE_INFO "https://www.twilio.com/docs/errors/"

/* Sets a Twilio error answer: {"code", "message", "more_info", "status"}. message is ours
 * (ASCII), never the client's text. */
static void twilio_error(http_response_t *res, int status, int code, const char *message)
{
    char more[64];

    snprintf(more, sizeof(more), SG_MORE_INFO "%d", code); /* fits */
    http_json(res, status, json_pack("{s:i, s:s, s:s, s:i}", "code", code, "message", message,
                                     "more_info", more, "status", status));
}

/* Returns 1 when the request carries the configured account's credentials (HTTP Basic,
 * user = account SID, password = auth token) and the path names that account. */
static int authorized(const struct gateway *g, const http_request_t *req)
{
    char user[SG_ACCOUNT_SID_MAX + 1], pass[SG_AUTH_TOKEN_MAX + 1];
    int ok;

    if (sg_basic_auth_parse(http_header(req, "Authorization"), user, sizeof(user), pass,
                            sizeof(pass)) != 0)
        return 0;
    /* Each compared in full, whatever the others give, in constant time. */
    ok = util_streq_ct(user, g->cfg.account_sid);
    ok &= util_streq_ct(pass, g->cfg.auth_token);
    ok &= util_streq_ct(req->params[0], g->cfg.account_sid);
    return ok;
}

/* Returns 1 when a Content-Type is absent or says application/x-www-form-urlencoded (any
 * parameters such as charset after ';'). */
static int form_content_type(const http_request_t *req)
{
    static const char form[] = "application/x-www-form-urlencoded";
    const char *ct = http_header(req, "Content-Type");
    size_t n = sizeof(form) - 1;

    if (ct == NULL)
        return 1;
    while (*ct == ' ')
        ct++;
    if (strncasecmp(ct, form, n) != 0)
        return 0;
    ct += n;
    while (*ct == ' ')
        ct++;
    return *ct == '\0' || *ct == ';';
}

/* Decodes and checks the form of a send into form (the caller frees it, also after a
 * failure) and s (borrowing from form). Returns 0, or -1 with Twilio's error code and a
 * message for the client. */
static int read_send(const http_request_t *req, form_t *form, struct sg_send *s,
                     int *code, char *err, size_t err_size)
{
    if (!form_content_type(req)) {
        *code = SG_CODE_BAD_PARAM;
        util_errf(err, err_size, "The request body must be "
                  "application/x-www-form-urlencoded.");
        return -1;
    }
    if (form_parse(req->body, req->body_len, form, err, err_size) != 0) {
        *code = SG_CODE_BAD_PARAM;
        return -1;
    }
    return sg_send_check(form, s, code, err, err_size);
}

/* The From number for a log line: masked when it is a phone number, quoted when it is a
 * sender ID (letters, digits and spaces only: checked). */
static void log_from(const char *from, char *out, size_t out_size)
{
    char masked[PHONE_MASK_MAX];

    if (phone_e164_valid(from)) {
        phone_mask(from, masked, sizeof(masked));
        snprintf(out, out_size, "%s", masked);
    } else {
        snprintf(out, out_size, "\"%s\"", from); /* at most PHONE_SENDER_ALNUM_MAX: fits */
    }
}

/*
 * POST /2010-04-01/Accounts/{sid}/Messages.json. In this order: "down" closes the
 * connection without an answer; slow_ms passes (a shutdown meanwhile refuses too); wrong
 * credentials get 401; a bad form, To, From or Body 400; then fail_next or fail_rate 500;
 * else 201 and the message is kept. Every outcome is counted.
 */
static void post_message(const http_request_t *req, http_response_t *res, void *ctx)
{
    struct gateway *g = ctx;
    struct sg_mode mode;
    struct sg_send s;
    form_t form = { NULL, 0, NULL };
    char err[256], sid[SG_SID_LEN + 1], to[PHONE_MASK_MAX], from[PHONE_MASK_MAX + 4];
    int code = 0, outcome;
    long long retry_after;
    int64_t now;

    standin_mode_get(g->standin, &mode);
    if (mode.down || standin_sleep(g->standin, mode.slow_ms) != 0) {
        state_count(g->state, SG_REFUSED);
        log_info("sms_send outcome=refused reason=%s", mode.down ? "down" : "shutdown");
        res->drop = 1;
        goto done;
    }
    if (!authorized(g, req)) {
        state_count(g->state, SG_REJECTED);
        log_info("sms_send outcome=rejected status=401 code=%d", SG_CODE_AUTH);
        twilio_error(res, 401, SG_CODE_AUTH, "Authenticate");
        snprintf(res->www_authenticate, sizeof(res->www_authenticate),
                 "Basic realm=\"Twilio API\"");
        goto done;
    }
    if (read_send(req, &form, &s, &code, err, sizeof(err)) != 0) {
        state_count(g->state, SG_REJECTED);
        phone_mask(form_get(&form, "To", NULL), to, sizeof(to));
        log_info("sms_send outcome=rejected status=400 code=%d to=%s error=%s", code,
                 to[0] != '\0' ? to : "-", LOG_Q(err));
        twilio_error(res, 400, code, err);
        goto done;
    }
    s.traceparent = http_header(req, "traceparent");

    now = util_now_ms();
    phone_mask(s.to, to, sizeof(to));
    log_from(s.from, from, sizeof(from));
    if ((retry_after = state_throttle(g->state, now)) > 0) {
        log_info("sms_send outcome=throttled status=429 to=%s retry_after=%lld", to,
                 retry_after);
        twilio_error(res, 429, SG_CODE_TOO_MANY, "Too Many Requests");
        res->retry_after = (long)retry_after;
        goto done;
    }
    if (sg_sid_new(sid) != 0) {
        state_count(g->state, SG_FAILED);
        log_error("sms_send outcome=failed reason=no_random_source to=%s", to);
        twilio_error(res, 500, SG_CODE_INTERNAL, "Internal Server Error");
        goto done;
    }
    outcome = state_send(g->state, sid, &s, now);
    if (outcome < 0) {
        state_count(g->state, SG_FAILED);
        log_error("sms_send outcome=failed reason=out_of_memory to=%s", to);
        twilio_error(res, 500, SG_CODE_INTERNAL, "Internal Server Error");
        goto done;
    }
    if (outcome == SG_REJECTED) {
        log_info("sms_send outcome=rejected status=400 code=%d to=%s", SG_CODE_OPTED_OUT, to);
        twilio_error(res, 400, SG_CODE_OPTED_OUT, "Attempt to send to unsubscribed recipient");
        goto done;
    }
    if (outcome == SG_FAILED) {
        log_info("sms_send outcome=failed reason=injected to=%s from=%s", to, from);
        twilio_error(res, 500, SG_CODE_INTERNAL, "Internal Server Error");
        goto done;
    }
    log_info("sms_send outcome=accepted sid=%s to=%s from=%s chars=%zu callback=%s", sid,
             to, from, s.body_chars, s.status_callback != NULL ? "yes" : "no");
    /* hang_ms: taken, but the answer comes late (or, past the client's timeout, never) */
    if (mode.hang_ms > 0 && standin_sleep(g->standin, mode.hang_ms) != 0) {
        res->drop = 1;
        goto done;
    }
    http_json(res, 201, sg_message_json(g->cfg.account_sid, sid, s.to, s.from, s.body, now,
                                        "queued", -1));
done:
    form_free(&form);
}

/* Sets the 200 of a list: Twilio's page {"messages", "page", "page_size", "uri",
 * "first_page_uri", "next_page_uri", "previous_page_uri", "start", "end"}, or a 500. list
 * (a new reference) is stolen. */
static void reply_list(http_response_t *res, const struct gateway *g,
                       const struct sg_list_query *q, json_t *list, int more)
{
    char uri[SG_URI_MAX], first[SG_URI_MAX], next[SG_URI_MAX];
    const char *last_sid;
    size_t n = json_array_size(list);
    long long start = q->page * q->page_size;
    json_t *body;

    last_sid = n > 0 ? json_string_value(json_object_get(json_array_get(list, n - 1),
                                                         "sid")) : NULL;
    if (sg_list_uri(g->cfg.account_sid, q, q->page, q->after_sid, uri, sizeof(uri)) != 0 ||
        sg_list_uri(g->cfg.account_sid, q, 0, NULL, first, sizeof(first)) != 0 ||
        (more && sg_list_uri(g->cfg.account_sid, q, q->page + 1, last_sid, next,
                             sizeof(next)) != 0)) {
        json_decref(list);
        twilio_error(res, 500, SG_CODE_INTERNAL, "Internal Server Error");
        return;
    }
    /* "o" steals list, also when json_pack fails */
    body = json_pack("{s:o, s:I, s:I, s:s, s:s, s:s?, s:n, s:I, s:I}",
                     "messages", list,
                     "page", (json_int_t)q->page,
                     "page_size", (json_int_t)q->page_size,
                     "uri", uri,
                     "first_page_uri", first,
                     "next_page_uri", more ? next : NULL,
                     "previous_page_uri",
                     "start", (json_int_t)start,
                     "end", (json_int_t)(n > 0 ? start + (long long)n - 1 : start));
    if (body == NULL)
        twilio_error(res, 500, SG_CODE_INTERNAL, "Internal Server Error");
    else
        http_json(res, 200, body);
}

/*
 * GET /2010-04-01/Accounts/{sid}/Messages.json[?To=&DateSent>=&DateSent<=&DateSent=&
 * PageSize=&Page=&PageToken=]: Twilio's list of messages, newest first. "down" closes the
 * connection as it does for a send; then wrong credentials get 401, a bad parameter 400.
 * Nothing is counted: the counts are of sends.
 */
static void list_twilio(const http_request_t *req, http_response_t *res, void *ctx)
{
    struct gateway *g = ctx;
    struct sg_mode mode;
    struct sg_list_args a;
    struct sg_list_query q;
    char err[256], to[PHONE_MASK_MAX];
    json_t *list;
    int more = 0;

    standin_mode_get(g->standin, &mode);
    if (mode.down) {
        log_info("sms_list outcome=refused reason=down");
        res->drop = 1;
        return;
    }
    if (!authorized(g, req)) {
        log_info("sms_list outcome=rejected status=401 code=%d", SG_CODE_AUTH);
        twilio_error(res, 401, SG_CODE_AUTH, "Authenticate");
        snprintf(res->www_authenticate, sizeof(res->www_authenticate),
                 "Basic realm=\"Twilio API\"");
        return;
    }
    /* MHD decodes the keys too: "DateSent%3E=..." is the argument "DateSent>". */
    a.to = http_query(req, "To");
    a.from = http_query(req, "From");
    a.date_sent = http_query(req, "DateSent");
    a.date_sent_ge = http_query(req, "DateSent>");
    a.date_sent_le = http_query(req, "DateSent<");
    a.page_size = http_query(req, "PageSize");
    a.page = http_query(req, "Page");
    a.page_token = http_query(req, "PageToken");
    if (sg_list_check(&a, &q, err, sizeof(err)) != 0) {
        log_info("sms_list outcome=rejected status=400 code=%d error=%s",
                 SG_CODE_BAD_PARAM, LOG_Q(err));
        twilio_error(res, 400, SG_CODE_BAD_PARAM, err);
        return;
    }
    list = state_list(g->state, &q, g->cfg.account_sid, &more);
    if (list == NULL) {
        log_error("sms_list outcome=failed reason=out_of_memory");
        twilio_error(res, 500, SG_CODE_INTERNAL, "Internal Server Error");
        return;
    }
    phone_mask(q.to, to, sizeof(to));
    log_info("sms_list outcome=listed to=%s count=%zu more=%d", to[0] != '\0' ? to : "-",
             json_array_size(list), more);
    reply_list(res, g, &q, list, more);
}

/* GET /messages[?to=+8210...]. An unescaped '+' in a query string means a space, so a
 * leading space is read as the '+' the caller meant. */
static void list_messages(const http_request_t *req, http_response_t *res, void *ctx)
{
    struct gateway *g = ctx;
    const char *q = http_query(req, "to");
    char to[PHONE_MAX + 2];

    if (q != NULL) {
        if (strlen(q) >= sizeof(to)) {
            http_error(res, 400, "query argument 'to' must be an E.164 number");
            return;
        }
        snprintf(to, sizeof(to), "%s", q);
        if (to[0] == ' ')
            to[0] = '+';
        if (!phone_e164_valid(to)) {
            http_error(res, 400, "query argument 'to' must be an E.164 number");
            return;
        }
    }
    standin_reply_json(res, state_messages(g->state, q != NULL ? to : NULL));
}

/* GET /throttles: when the 429s were answered, and what their Retry-After said. */
static void list_throttles(const http_request_t *req, http_response_t *res, void *ctx)
{
    struct gateway *g = ctx;

    (void)req;
    standin_reply_json(res, state_throttles(g->state));
}

/* GET /admin/stats */
static void get_stats(const http_request_t *req, http_response_t *res, void *ctx)
{
    struct gateway *g = ctx;

    (void)req;
    standin_reply_json(res, state_stats(g->state));
}

const http_route_t api_routes[] = {
    { "POST", "/" SG_API_VERSION "/Accounts/{sid}/Messages.json", post_message },
    { "GET", "/" SG_API_VERSION "/Accounts/{sid}/Messages.json", list_twilio },
    { "GET", "/messages", list_messages },
    { "GET", "/throttles", list_throttles },
    { "GET", "/admin/stats", get_stats },
    STANDIN_MODE_ROUTES,
    { "POST", "/admin/reset", standin_post_reset },
};
const size_t api_nroutes = sizeof(api_routes) / sizeof(api_routes[0]);
