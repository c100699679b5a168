/* signup_api: the public sign-up routes: a code by SMS, its confirmation, and Twilio's
 * inbound-message webhook for STOP replies. No admin token: holding the number is the proof,
 * and the limits (per number, per client address, per code) keep guessing and SMS bombing
 * out. */
#include "notifier.h"
#include "signup.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "asset.h"
#include "log.h"
#include "phone.h"
#include "strbuf.h"
#include "util.h"

ASSET_EMBED(signup_html, "services/notifier/web/signup.html");

void signup_get_page(const http_request_t *req, http_response_t *res, void *ctx)
{
    (void)req;
    (void)ctx;
    asset_serve(res, signup_html_start, signup_html_end, "text/html; charset=utf-8");
}

/* GET /signup/products: what the page offers as back-in-stock alerts. */
void signup_get_products(const http_request_t *req, http_response_t *res, void *ctx)
{
    struct notifier *n = ctx;
    json_t *list = NULL;
    PGconn *conn;
    char err[512];

    (void)req;
    conn = db_acquire(n->db, (int)n->cfg.db_wait_ms, err, sizeof(err));
    if (conn != NULL)
        list = signup_store_products(conn, err, sizeof(err));
    if (list == NULL) {
        log_error("signup_products_failed error=%s", LOG_Q(err));
        http_error(res, 503, "database unavailable, try again");
    } else {
        http_json(res, 200, list);
    }
    db_release(n->db, conn);
}

/* The 422 for SKUs that are not products: {"error": "...", "unknown_skus": [...]}; takes
 * unknown. */
static void unknown_skus(http_response_t *res, json_t *unknown)
{
    strbuf_t sb;
    json_t *sku, *body;
    size_t i;

    strbuf_init(&sb, 0);
    strbuf_adds(&sb, json_array_size(unknown) == 1 ? "no such product: " : "no such products: ");
    json_array_foreach(unknown, i, sku)
        strbuf_addf(&sb, "%s%s", i > 0 ? ", " : "", json_string_value(sku));
    strbuf_adds(&sb, " (GET /signup/products lists them)");
    body = sb.failed ? NULL : json_pack("{s:s, s:o}", "error", sb.buf, "unknown_skus", unknown);
    if (body == NULL)   /* json_pack's "o" took unknown even when it failed */
        http_error(res, 500, "out of memory");
    else
        http_json(res, 422, body);
    if (sb.failed)
        json_decref(unknown);
    strbuf_release(&sb);
}

static enum signup_purpose purpose_of(const http_request_t *req)
{
    return strncmp(req->path, "/unsubscribe", 12) == 0 ? SIGNUP_UNSUBSCRIBE : SIGNUP_SUBSCRIBE;
}

static void client_of(const http_request_t *req, char *out, size_t out_size)
{
    if (http_client_ip(req, out, out_size) != 0)
        snprintf(out, out_size, "unknown");
}

/* POST /signup {phone, name?, skus?}, POST /unsubscribe {phone}: sends a code. Every SKU
 * must be in `inventory` (else a 422 naming the others, and no code); repeats count once. */
void signup_post_code(const http_request_t *req, http_response_t *res, void *ctx)
{
    struct notifier *n = ctx;
    const struct signup_config *c = &n->cfg.signup;
    enum signup_purpose purpose = purpose_of(req);
    json_t *body = NULL, *skus = NULL, *unique = NULL, *unknown = NULL;
    const char *phone = NULL, *name = "";
    char *skus_text = NULL, client[SIGNUP_CLIENT_MAX], masked[PHONE_MASK_MAX];
    char code[SIGNUP_CODE_DIGITS + 1], salt[2 * SIGNUP_SALT_BYTES + 1], hash[SIGNUP_HASH_HEX];
    char text[200], sid[SMS_SID_MAX], why[256], err[512];
    long long by_phone = 0, by_client = 0, retry_after_ms = 0;
    sms_client_t *sms = NULL;
    PGconn *conn = NULL;
    sms_result_t sent;
    int limited;

    if ((body = http_body_object(req, res)) == NULL)
        goto done;
    if (purpose == SIGNUP_SUBSCRIBE) {
        if (api_subscriber_fields(body, res, &phone, &name, &skus) != 0)
            goto done;
    } else {
        phone = json_string_value(json_object_get(body, "phone"));
        if (json_object_size(body) != 1 || phone == NULL || !phone_e164_valid(phone)) {
            http_error(res, 400, "the body must be {\"phone\": an E.164 number such as "
                       "+821012345678}");
            goto done;
        }
    }
    if (skus != NULL && (unique = signup_skus_unique(skus)) == NULL) {
        http_error(res, 500, "out of memory");
        goto done;
    }
    skus_text = unique != NULL ? json_dumps(unique, JSON_COMPACT) : strdup("[]");
    if (skus_text == NULL) {
        http_error(res, 500, "out of memory");
        goto done;
    }
    client_of(req, client, sizeof(client));
    phone_mask(phone, masked, sizeof(masked));
    if (signup_code_new(code, sizeof(code)) != 0 || signup_salt_new(salt, sizeof(salt)) != 0) {
        http_error(res, 500, "no randomness for a code");
        goto done;
    }
    signup_code_hash(salt, code, hash);
    /* the limits are counted and the request stored in one transaction (see there) */
    conn = db_acquire(n->db, (int)n->cfg.db_wait_ms, err, sizeof(err));
    if (conn == NULL)
        goto db_failed;
    /* before the limits: a typo costs no code from the number's hourly allowance */
    if (json_array_size(unique) > 0) {
        if (signup_store_unknown_skus(conn, skus_text, &unknown, err, sizeof(err)) != 0)
            goto db_failed;
        if (json_array_size(unknown) > 0) {
            log_info("signup_unknown_skus phone=%s client=%s unknown=%zu", masked, client,
                     json_array_size(unknown));
            unknown_skus(res, unknown);
            unknown = NULL;
            goto done;
        }
    }
    limited = signup_store_code_put(conn, phone, purpose, salt, hash, c->code_ttl_ms, name,
                                    skus_text, client, c, &by_phone, &by_client, err,
                                    sizeof(err));
    if (limited < 0)
        goto db_failed;
    if (limited != SIGNUP_ALLOWED) {
        log_warn("signup_limited phone=%s client=%s by_phone=%lld by_client=%lld", masked,
                 client, by_phone, by_client);
        http_error(res, 429, limited == SIGNUP_LIMIT_NUMBER
                   ? "too many codes for this number in the last hour; try again later"
                   : "too many requests from this address in the last hour; try again later");
        goto done;
    }
    db_release(n->db, conn);
    conn = NULL;

    snprintf(text, sizeof(text), "dozen: %s is your code to %s. It expires in %lld min.",
             code, purpose == SIGNUP_SUBSCRIBE ? "subscribe" : "unsubscribe",
             (c->code_ttl_ms + 59999) / 60000);
    if ((sms = sms_client_new(&n->cfg.sms, err, sizeof(err))) == NULL) {
        log_error("signup_sms_failed phone=%s error=%s", masked, LOG_Q(err));
        http_error(res, 503, "the code could not be sent; try again in a minute");
        goto done;
    }
    sent = sms_send(sms, phone, text, NULL, sid, sizeof(sid), &retry_after_ms, why, sizeof(why));
    if (sent != SMS_SENT) {
        log_warn("signup_sms_failed phone=%s error=%s", masked, LOG_Q(why));
        http_error(res, sent == SMS_REJECTED ? 422 : 503, sent == SMS_REJECTED
                   ? "the SMS provider refused this number"
                   : "the code could not be sent; try again in a minute");
        goto done;
    }
    log_info("signup_code_sent phone=%s purpose=%s client=%s", masked,
             purpose == SIGNUP_SUBSCRIBE ? "subscribe" : "unsubscribe", client);
    http_json(res, 202, json_pack("{s:s, s:s, s:I}", "status", "code_sent", "phone", masked,
                                  "expires_in_s", (json_int_t)(c->code_ttl_ms / 1000)));
    goto done;
db_failed:
    log_error("signup_failed error=%s", LOG_Q(err));
    http_error(res, 503, "database unavailable, try again");
done:
    sms_client_free(sms);
    db_release(n->db, conn);
    free(skus_text);
    json_decref(unknown);
    json_decref(unique);
    json_decref(body);
}

/* POST /signup/confirm, POST /unsubscribe/confirm {phone, code} */
void signup_post_confirm(const http_request_t *req, http_response_t *res, void *ctx)
{
    struct notifier *n = ctx;
    const struct signup_config *c = &n->cfg.signup;
    enum signup_purpose purpose = purpose_of(req);
    json_t *body = NULL, *out = NULL;
    const char *phone, *code;
    char client[SIGNUP_CLIENT_MAX], masked[PHONE_MASK_MAX], err[512];
    long long left = 0;
    PGconn *conn = NULL;
    int verdict;

    if ((body = http_body_object(req, res)) == NULL)
        goto done;
    phone = json_string_value(json_object_get(body, "phone"));
    code = json_string_value(json_object_get(body, "code"));
    if (json_object_size(body) != 2 || phone == NULL || !phone_e164_valid(phone) ||
        code == NULL) {
        http_error(res, 400, "the body must be {\"phone\": an E.164 number, \"code\": the "
                   "%d digits of the SMS}", SIGNUP_CODE_DIGITS);
        goto done;
    }
    if (!signup_code_valid(code)) {
        http_error(res, 400, "the code is the %d digits of the SMS", SIGNUP_CODE_DIGITS);
        goto done;
    }
    client_of(req, client, sizeof(client));
    phone_mask(phone, masked, sizeof(masked));
    conn = db_acquire(n->db, (int)n->cfg.db_wait_ms, err, sizeof(err));
    if (conn == NULL)
        goto db_failed;
    verdict = signup_store_confirm(conn, phone, purpose, code, c->max_attempts, client, c,
                                   &out, &left, err, sizeof(err));
    switch (verdict) {
    case SIGNUP_CLIENT_LIMITED:
        log_warn("signup_limited phone=%s client=%s confirm=1", masked, client);
        http_error(res, 429, "too many requests from this address in the last hour; "
                   "try again later");
        break;
    case SIGNUP_OK:
        log_info("signup_confirmed phone=%s purpose=%s", masked,
                 purpose == SIGNUP_SUBSCRIBE ? "subscribe" : "unsubscribe");
        http_json(res, purpose == SIGNUP_SUBSCRIBE ? 201 : 200, out);
        out = NULL;
        break;
    case SIGNUP_WRONG:
        log_warn("signup_wrong_code phone=%s client=%s left=%lld", masked, client, left);
        if (left > 0)
            http_error(res, 400, "wrong code; %lld more %s", left, left == 1 ? "try" : "tries");
        else
            http_error(res, 400, "wrong code; that was the last try, ask for a new code");
        break;
    case SIGNUP_LOCKED:
        http_error(res, 429, "too many wrong codes; ask for a new code");
        break;
    case SIGNUP_NO_CODE:
        http_error(res, 410, "no valid code for this number (it may have expired); "
                   "ask for a new code");
        break;
    default:
        goto db_failed;
    }
    goto done;
db_failed:
    log_error("signup_failed error=%s", LOG_Q(err));
    http_error(res, 503, "database unavailable, try again");
done:
    db_release(n->db, conn);
    json_decref(out);
    json_decref(body);
}

/* The empty TwiML answer: "received, no reply". */
static void twiml_empty(http_response_t *res, int status)
{
    static const char xml[] = "<?xml version=\"1.0\" encoding=\"UTF-8\"?><Response></Response>";

    http_text(res, status, "text/xml; charset=utf-8", xml, sizeof(xml) - 1);
}

/* POST /sms/inbound: Twilio's inbound-message webhook (form From, Body, ..., signed with the
 * account's auth token in X-Twilio-Signature). A STOP reply opts the number out. */
void signup_post_inbound(const http_request_t *req, http_response_t *res, void *ctx)
{
    struct notifier *n = ctx;
    form_t form = { 0 };
    const char *sig = http_header(req, "X-Twilio-Signature"), *from, *text, *host;
    char url[600], want[64], masked[PHONE_MASK_MAX], err[512];
    size_t count;
    PGconn *conn = NULL;
    int r;

    if (form_parse(req->body, req->body_len, &form, err, sizeof(err)) != 0) {
        http_error(res, 400, "%s", err);
        goto done;
    }
    /* the URL the provider signed: the configured one, else this request's own */
    host = http_header(req, "Host");
    if (n->cfg.signup.webhook_url[0] != '\0')
        snprintf(url, sizeof(url), "%s", n->cfg.signup.webhook_url);
    else
        snprintf(url, sizeof(url), "http://%.200s%s", host != NULL ? host : "", req->path);
    if (sig == NULL || n->cfg.sms.auth_token == NULL ||
        signup_twilio_signature(n->cfg.sms.auth_token, url, &form, want, sizeof(want)) != 0 ||
        !signup_equal(sig, want)) {
        log_warn("sms_inbound_refused reason=signature");
        http_error(res, 403, "missing or wrong X-Twilio-Signature");
        goto done;
    }
    from = form_get(&form, "From", &count);
    text = form_get(&form, "Body", &count);
    if (from == NULL || !phone_e164_valid(from)) {
        http_error(res, 400, "form field From must be an E.164 number");
        goto done;
    }
    phone_mask(from, masked, sizeof(masked));
    if (text == NULL || !signup_is_stop(text)) {
        log_info("sms_inbound phone=%s stop=0", masked);
        twiml_empty(res, 200);
        goto done;
    }
    conn = db_acquire(n->db, (int)n->cfg.db_wait_ms, err, sizeof(err));
    if (conn == NULL || (r = signup_store_opt_out(conn, from, "stop", err, sizeof(err))) < 0) {
        /* a 5xx: Twilio tries the webhook again */
        log_error("sms_inbound_failed phone=%s error=%s", masked, LOG_Q(err));
        http_error(res, 503, "database unavailable, try again");
        goto done;
    }
    log_info("sms_inbound phone=%s stop=1 opted_out=%d", masked, r);
    twiml_empty(res, 200);
done:
    db_release(n->db, conn);
    form_free(&form);
}
