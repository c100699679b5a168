/* Unit tests for services/notifier/sms.c against a fake Twilio started in the test
 * (libcommon's HTTP server on a free port of 127.0.0.1): what a send and a list request
 * carry, how every kind of answer is classified, and that err never holds the number. */
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include <curl/curl.h>

#include "http_stub.h"
#include "log.h"
#include "sms.h"
#include "util.h"

#define TO      "+821012341234"
#define SID     "SM0123456789abcdef0123456789abcdef"
#define AUTH    "Basic QUN0ZXN0OnRlc3QtdG9rZW4="     /* ACtest:test-token */
#define MSG_PATH "/2010-04-01/Accounts/ACtest/Messages.json"

/* What the last request carried; under fake_lock. */
struct fake {
    int requests;
    char method[8];
    char path_sid[64];
    char auth[128];
    char content_type[128];
    char body[2048];
    char q_to[64], q_from[64], q_since[64], q_page_size[16];
    int client_port;
};

static pthread_mutex_t fake_lock = PTHREAD_MUTEX_INITIALIZER;
static struct fake fake;
static long fake_retry_after;   /* under fake_lock: the Retry-After of the answers (0: none) */

/* The next answers of the fake: status (0: no answer), json, pad, slow_ms. */
static void set_answer(int status, const char *json, size_t pad, long long slow_ms)
{
    stub_set(status, json, pad, slow_ms, NULL);
}

static struct fake seen(void)
{
    struct fake f;

    pthread_mutex_lock(&fake_lock);
    f = fake;
    pthread_mutex_unlock(&fake_lock);
    return f;
}

static void messages(const http_request_t *req, http_response_t *res, void *ctx)
{
    stub_answer_t a = stub_answer();

    (void)ctx;
    pthread_mutex_lock(&fake_lock);
    fake.requests++;
    stub_copy(fake.method, sizeof(fake.method), req->method);
    stub_copy(fake.path_sid, sizeof(fake.path_sid), req->params[0]);
    stub_copy(fake.auth, sizeof(fake.auth), http_header(req, "Authorization"));
    stub_copy(fake.content_type, sizeof(fake.content_type), http_header(req, "Content-Type"));
    stub_copy(fake.body, sizeof(fake.body), req->body);
    stub_copy(fake.q_to, sizeof(fake.q_to), http_query(req, "To"));
    stub_copy(fake.q_since, sizeof(fake.q_since), http_query(req, "DateSent>"));
    stub_copy(fake.q_from, sizeof(fake.q_from), http_query(req, "From"));
    stub_copy(fake.q_page_size, sizeof(fake.q_page_size), http_query(req, "PageSize"));
    fake.client_port = stub_client_port(req);
    res->retry_after = fake_retry_after;
    pthread_mutex_unlock(&fake_lock);
    stub_reply(res, &a);
}

static const http_route_t routes[] = {
    { "POST", "/2010-04-01/Accounts/{sid}/Messages.json", messages },
    { "GET", "/2010-04-01/Accounts/{sid}/Messages.json", messages },
};

static int start_server(void **state)
{
    (void)state;
    return stub_start(routes, 2);
}

static int stop_server(void **state)
{
    (void)state;
    stub_stop();
    return 0;
}

/* A client of the fake with the given timeout; fails the test if it cannot be made. */
static sms_client_t *client(const char *url, long timeout_ms)
{
    sms_config_t cfg = { url, "ACtest", "test-token", "+15005550006", timeout_ms };
    char err[256] = "";
    sms_client_t *c = sms_client_new(&cfg, err, sizeof(err));

    if (c == NULL)
        fail_msg("sms_client_new: %s", err);
    return c;
}

/* Fails the test if err shows more than four digits of TO in a row. */
static void assert_discreet(const char *err)
{
    if (strstr(err, "1012341234") != NULL || strstr(err, "821012") != NULL ||
        strstr(err, "01234") != NULL)
        fail_msg("err shows the number: %s", err);
}

/* ---------------------------------------------------------------------------------- */
/* The client */

static void test_client_config(void **state)
{
    sms_config_t ok = { "http://127.0.0.1:9103", "ACtest", "test-token", "+15005550006",
                        1000 };
    sms_config_t c;
    char err[256];
    sms_client_t *cl;

    (void)state;
    cl = sms_client_new(&ok, err, sizeof(err));
    assert_non_null(cl);
    sms_client_free(cl);
    sms_client_free(NULL);

    assert_null(sms_client_new(NULL, err, sizeof(err)));
    c = ok;
    c.gateway_url = "ftp://127.0.0.1";
    assert_null(sms_client_new(&c, err, sizeof(err)));
    assert_non_null(strstr(err, "http://"));
    c = ok;
    c.gateway_url = NULL;
    assert_null(sms_client_new(&c, err, sizeof(err)));
    c = ok;
    c.account_sid = "AC/../x";                 /* it goes into the path */
    assert_null(sms_client_new(&c, err, sizeof(err)));
    assert_non_null(strstr(err, "account SID"));
    c = ok;
    c.account_sid = "";
    assert_null(sms_client_new(&c, err, sizeof(err)));
    c = ok;
    c.auth_token = "";
    assert_null(sms_client_new(&c, err, sizeof(err)));
    c = ok;
    c.from = "";
    assert_null(sms_client_new(&c, err, sizeof(err)));
    c = ok;
    c.timeout_ms = 0;
    assert_null(sms_client_new(&c, err, sizeof(err)));
}

/* ---------------------------------------------------------------------------------- */
/* Send */

static void test_send_request(void **state)
{
    sms_client_t *c;
    char url[80], sid[SMS_SID_MAX], err[256];
    struct fake f;
    int port;

    (void)state;
    stub_url("/", url, sizeof(url));   /* a trailing '/' is fine */
    c = client(url, 5000);
    set_answer(201, "{\"sid\": \"" SID "\", \"status\": \"queued\"}", 0, 0);
    assert_int_equal(sms_send(c, TO, "dozen 2026-11-22: a & b = 100% +1 \xec\x95\x88", NULL,
                              sid, sizeof(sid), NULL, err, sizeof(err)), SMS_SENT);
    assert_string_equal(sid, SID);
    assert_string_equal(err, "HTTP 201");
    f = seen();
    assert_string_equal(f.method, "POST");
    assert_string_equal(f.path_sid, "ACtest");
    assert_string_equal(f.auth, AUTH);
    assert_string_equal(f.content_type, "application/x-www-form-urlencoded");
    /* every reserved byte escaped: '+' is %2B, not a space */
    assert_string_equal(f.body, "To=%2B821012341234&From=%2B15005550006&Body=dozen%202026-"
                        "11-22%3A%20a%20%26%20b%20%3D%20100%25%20%2B1%20%EC%95%88");
    port = f.client_port;
    assert_true(port > 0);

    /* the connection is kept alive between sends */
    assert_int_equal(sms_send(c, TO, "again", NULL, sid, sizeof(sid), NULL, err,
                              sizeof(err)), SMS_SENT);
    assert_int_equal(seen().client_port, port);
    assert_string_equal(seen().body, "To=%2B821012341234&From=%2B15005550006&Body=again");
    sms_client_free(c);
}

/* Sends once with the fake answering status/json; checks the result and err. */
static void expect_send(sms_client_t *c, int status, const char *json, size_t pad,
                        sms_result_t want, const char *want_err)
{
    char sid[SMS_SID_MAX], err[256];
    sms_result_t r;

    set_answer(status, json, pad, 0);
    memset(sid, 'X', sizeof(sid));
    r = sms_send(c, TO, "body", NULL, sid, sizeof(sid), NULL, err, sizeof(err));
    if (r != want)
        fail_msg("status %d %s: result %d (%s), want %d", status, json, r, err, want);
    if (want_err != NULL && strstr(err, want_err) == NULL)
        fail_msg("status %d: err '%s' does not contain '%s'", status, err, want_err);
    if (want != SMS_SENT && sid[0] != '\0')
        fail_msg("status %d: sid '%s' set without SMS_SENT", status, sid);
    assert_discreet(err);
}

static void test_send_outcomes(void **state)
{
    sms_client_t *c = client(stub_base(), 5000);
    char sid[8], err[256];

    (void)state;
    /* 2xx without a sid we can keep: it was taken, so uncertain */
    expect_send(c, 201, "{\"status\": \"queued\"}", 0, SMS_UNCERTAIN, "without a readable sid");
    expect_send(c, 201, "{\"sid\": 12}", 0, SMS_UNCERTAIN, "sid");
    expect_send(c, 201, "{\"sid\": \"\"}", 0, SMS_UNCERTAIN, "sid");
    expect_send(c, 201, "{\"sid\": \"SM 1\"}", 0, SMS_UNCERTAIN, "sid");
    expect_send(c, 201, "[\"queued\"]", 0, SMS_UNCERTAIN, "sid");
    expect_send(c, 200, "{\"sid\": \"" SID "\"}", 0, SMS_SENT, "HTTP 200");
    expect_send(c, 201, "{\"sid\": \"" SID "\"}", 70 * 1024, SMS_UNCERTAIN, "over 65536 bytes");
    /* a sid longer than the caller's buffer is not cut: uncertain */
    set_answer(201, "{\"sid\": \"" SID "\"}", 0, 0);
    assert_int_equal(sms_send(c, TO, "x", NULL, sid, sizeof(sid), NULL, err,
                              sizeof(err)), SMS_UNCERTAIN);

    /* not taken, may pass later */
    expect_send(c, 500, "{\"code\": 20500, \"message\": \"Internal Server Error\", "
                "\"status\": 500}", 0, SMS_RETRY, "HTTP 500: Internal Server Error (20500)");
    expect_send(c, 503, "{\"error\": \"busy\"}", 0, SMS_RETRY, "HTTP 503");
    expect_send(c, 429, "{\"code\": 20429, \"message\": \"Too Many Requests\"}", 0, SMS_THROTTLED,
                "HTTP 429: Too Many Requests (20429)");
    expect_send(c, 302, "{}", 0, SMS_RETRY, "HTTP 302");
    /* refused for good */
    expect_send(c, 401, "{\"code\": 20003, \"message\": \"Authenticate\"}", 0, SMS_REJECTED,
                "HTTP 401: Authenticate (20003)");
    expect_send(c, 404, "{\"error\": \"not found\"}", 0, SMS_REJECTED, "HTTP 404");
    expect_send(c, 400, "{\"code\": 21211, \"message\": \"The 'To' number " TO " is not a "
                "valid phone number.\"}", 0, SMS_REJECTED,
                "HTTP 400: The 'To' number +********1234 is not a valid phone number. (21211)");
    /* numbers written other ways are masked too; short numbers are not */
    expect_send(c, 400, "{\"code\": 21211, \"message\": \"bad: 010-1234-1234 or "
                "(82) 10 1234 1234, max 1600\"}", 0, SMS_REJECTED,
                "bad: ***-****-1234 or (82) ** **** 1234, max 1600");
    /* the gateway's message is cut and made printable */
    expect_send(c, 400, "{\"message\": \"line\\nbreak \\\"quoted\\\" \\u00e9\"}", 0,
                SMS_REJECTED, "HTTP 400: line?break ?quoted? ??");
    sms_client_free(c);
}

static void test_send_transport(void **state)
{
    sms_client_t *c = client(stub_base(), 300);
    char url[80], sid[SMS_SID_MAX], err[256];
    int64_t t0;

    (void)state;
    /* no answer at all (the stand-in's "down"): it may have gone through */
    set_answer(0, "{}", 0, 0);
    assert_int_equal(sms_send(c, TO, "x", NULL, sid, sizeof(sid), NULL, err,
                              sizeof(err)), SMS_UNCERTAIN);
    assert_string_equal(err, "Empty reply from server");
    assert_string_equal(sid, "");

    /* a timeout once connected: uncertain, and bounded */
    set_answer(201, "{\"sid\": \"" SID "\"}", 0, 1500);
    t0 = util_mono_ms();
    assert_int_equal(sms_send(c, TO, "x", NULL, sid, sizeof(sid), NULL, err,
                              sizeof(err)), SMS_UNCERTAIN);
    assert_true(util_mono_ms() - t0 < 1200);
    assert_non_null(strstr(err, "timed out"));
    set_answer(201, "{\"sid\": \"" SID "\"}", 0, 0);
    assert_int_equal(sms_send(c, TO, "x", NULL, sid, sizeof(sid), NULL, err,
                              sizeof(err)), SMS_SENT);
    sms_client_free(c);

    /* refused: certainly not sent */
    assert_int_equal(stub_refused_url("", url, sizeof(url)), 0);
    c = client(url, 2000);
    assert_int_equal(sms_send(c, TO, "x", NULL, sid, sizeof(sid), NULL, err,
                              sizeof(err)), SMS_RETRY);
    assert_non_null(strstr(err, "onnect"));
    sms_client_free(c);

    /* a name that does not resolve */
    c = client("http://nowhere.invalid", 2000);
    assert_int_equal(sms_send(c, TO, "x", NULL, sid, sizeof(sid), NULL, err,
                              sizeof(err)), SMS_RETRY);
    sms_client_free(c);
}

/* ---------------------------------------------------------------------------------- */
/* Find */

#define LIST(items, next) "{\"messages\": [" items "], \"page\": 0, \"page_size\": 1000, " \
                          "\"next_page_uri\": " next ", \"previous_page_uri\": null}"
/* 2026-11-22 10:00:00 UTC is 1795341600000 ms */
#define SINCE 1795341600000LL
#define ITEM_AT(sid, to, body, created) "{\"sid\": \"" sid "\", \"to\": \"" to "\", " \
    "\"from\": \"+15005550006\", \"body\": \"" body "\", \"status\": \"queued\", " \
    "\"date_sent\": null, \"date_created\": \"" created "\"}"
#define ITEM(sid, to, body) ITEM_AT(sid, to, body, "Sun, 22 Nov 2026 10:00:05 +0000")
#define OLD(sid, to, body) ITEM_AT(sid, to, body, "Sun, 22 Nov 2026 09:59:59 +0000")

/* sms_find with the fake answering status/json; checks the result and err. */
static void expect_find(sms_client_t *c, int status, const char *json, size_t pad,
                        const char *body, int want, const char *want_sid,
                        const char *want_err)
{
    char sids[SMS_FIND_MAX][SMS_SID_MAX], err[256];
    int r;

    set_answer(status, json, pad, 0);
    memset(sids, 0, sizeof(sids));
    r = sms_find(c, TO, body, SINCE + 300, sids, err, sizeof(err));
    if (r != want)
        fail_msg("%s: result %d (%s), want %d", json, r, err, want);
    if (want_sid != NULL)
        assert_string_equal(sids[0], want_sid);
    if (want_err != NULL && strstr(err, want_err) == NULL)
        fail_msg("%s: err '%s' does not contain '%s'", json, err, want_err);
    assert_discreet(err);
}

static void test_find(void **state)
{
    sms_client_t *c = client(stub_base(), 20000); /* 4 MiB answers, also under valgrind */
    const char *body = "dozen 2026-11-22: confirmed 1 & more";
    struct fake f;
    char sids[SMS_FIND_MAX][SMS_SID_MAX], err[256];

    (void)state;
    /* the request: Twilio's list, filtered by To and From, without DateSent (a queued
     * message has none), pages of 1000 */
    expect_find(c, 200, LIST(ITEM(SID, TO, "dozen 2026-11-22: confirmed 1 & more"), "null"),
                0, body, 1, SID, "1 found");
    f = seen();
    assert_string_equal(f.method, "GET");
    assert_string_equal(f.path_sid, "ACtest");
    assert_string_equal(f.auth, AUTH);
    assert_string_equal(f.q_to, TO);
    assert_string_equal(f.q_from, "+15005550006");
    assert_string_equal(f.q_since, "(none)");
    assert_string_equal(f.q_page_size, "1000");

    /* To and Body must both match exactly */
    expect_find(c, 200, LIST(ITEM("SMffffffffffffffffffffffffffffffff", TO, "dozen"), "null"),
                0, body, 0, NULL, "0 found");
    expect_find(c, 200, LIST(ITEM(SID, "+821012341235", "dozen 2026-11-22: confirmed 1 & "
                                  "more"), "null"), 0, body, 0, NULL, "0 found");
    expect_find(c, 200, LIST(ITEM(SID, TO, "dozen 2026-11-22: confirmed 1 & more "), "null"),
                0, body, 0, NULL, "0 found");
    expect_find(c, 200, LIST("", "null"), 0, body, 0, NULL, "0 found");
    /* an identical message created before the claim (to the second) is not this one */
    expect_find(c, 200, LIST(OLD(SID, TO, "dozen 2026-11-22: confirmed 1 & more"), "null"),
                0, body, 0, NULL, "0 found");
    /* the second of the claim counts: date_created has no milliseconds */
    expect_find(c, 200, LIST(ITEM_AT(SID, TO, "dozen 2026-11-22: confirmed 1 & more",
                                     "Sun, 22 Nov 2026 10:00:00 +0000"), "null"),
                0, body, 1, SID, NULL);
    /* two candidates: both reported */
    expect_find(c, 200, LIST(ITEM(SID, TO, "dozen 2026-11-22: confirmed 1 & more") ", "
                             ITEM("SMffffffffffffffffffffffffffffffff", TO,
                                  "dozen 2026-11-22: confirmed 1 & more"), "null"),
                0, body, 2, SID, "2 found");

    /* a page that does not reach back to the claim: the next one is read, and without
     * an end in SMS_FIND_PAGES pages it cannot tell */
    expect_find(c, 200, LIST(ITEM(SID, TO, "other"), "\"" MSG_PATH "?To=x&PageToken=PA1\""),
                0, body, -1, NULL, "not all read");
    /* a page that reaches back ends it, even with a next page */
    expect_find(c, 200, LIST(ITEM(SID, TO, "other") ", " OLD(SID, TO, "older"),
                             "\"" MSG_PATH "?To=x&PageToken=PA1\""), 0, body, 0, NULL,
                "0 found");
    /* a next page elsewhere is not followed */
    expect_find(c, 200, LIST(ITEM(SID, TO, "other"), "\"/elsewhere?x\""), 0, body, -1, NULL,
                "next_page_uri");

    /* answers that do not tell */
    expect_find(c, 200, "{\"message\": []}", 0, body, -1, NULL, "messages");
    expect_find(c, 200, "[]", 0, body, -1, NULL, "messages");
    expect_find(c, 200, LIST("{\"sid\": \"" SID "\", \"to\": \"" TO "\", \"body\": \"x\", "
                             "\"date_created\": \"yesterday\"}", "null"), 0, body, -1, NULL,
                "date_created");
    expect_find(c, 200, LIST(ITEM_AT("S M", TO, "dozen 2026-11-22: confirmed 1 & more",
                                     "Sun, 22 Nov 2026 10:00:05 +0000"), "null"), 0, body, -1,
                NULL, "without a readable sid");
    expect_find(c, 500, "{\"code\": 20500, \"message\": \"Internal Server Error\"}", 0, body,
                -1, NULL, "list: HTTP 500: Internal Server Error (20500)");
    expect_find(c, 401, "{\"code\": 20003, \"message\": \"Authenticate\"}", 0, body, -1, NULL,
                "list: HTTP 401");
    expect_find(c, 0, "{}", 0, body, -1, NULL, "list: Empty reply from server");
    expect_find(c, 200, LIST("", "null"), 4 * 1024 * 1024, body, -1, NULL, "answer over");

    /* the caller's mistakes: no request */
    f = seen();
    assert_int_equal(sms_find(c, TO, body, 0, sids, err, sizeof(err)), -1);
    assert_int_equal(sms_find(c, NULL, body, SINCE, sids, err, sizeof(err)), -1);
    assert_int_equal(seen().requests, f.requests);
    sms_client_free(c);
}

static void test_send_callback(void **state)
{
    sms_client_t *c = client(stub_base(), 5000);
    char sid[SMS_SID_MAX], err[256];
    long long retry = -1;

    (void)state;
    set_answer(201, "{\"sid\": \"" SID "\", \"status\": \"queued\"}", 0, 0);
    assert_int_equal(sms_send(c, TO, "hi", "http://127.0.0.1:8083/sms/status/7?token=a-b",
                              sid, sizeof(sid), &retry, err, sizeof(err)), SMS_SENT);
    assert_int_equal(retry, 0);
    assert_string_equal(seen().body, "To=%2B821012341234&From=%2B15005550006&StatusCallback="
                        "http%3A%2F%2F127.0.0.1%3A8083%2Fsms%2Fstatus%2F7%3Ftoken%3Da-b"
                        "&Body=hi");
    /* a 429 without Retry-After: a second */
    set_answer(429, "{\"code\": 20429, \"message\": \"Too Many Requests\"}", 0, 0);
    assert_int_equal(sms_send(c, TO, "hi", NULL, sid, sizeof(sid), &retry, err, sizeof(err)),
                     SMS_THROTTLED);
    assert_int_equal(retry, 1000);
    sms_client_free(c);
}

/* A 429 with "Retry-After: 3" pauses the number for 3 s (the sender gives that to
 * store_pause as it is); the header only counts on a 429. */
static void test_send_retry_after(void **state)
{
    sms_client_t *c = client(stub_base(), 5000);
    char sid[SMS_SID_MAX], err[256];
    long long retry = -1;

    (void)state;
    pthread_mutex_lock(&fake_lock);
    fake_retry_after = 3;
    pthread_mutex_unlock(&fake_lock);
    set_answer(429, "{\"code\": 20429, \"message\": \"Too Many Requests\"}", 0, 0);
    assert_int_equal(sms_send(c, TO, "hi", NULL, sid, sizeof(sid), &retry, err, sizeof(err)),
                     SMS_THROTTLED);
    assert_int_equal(retry, 3000);
    /* a 503 with Retry-After is a retry on the backoff, not a pause */
    set_answer(503, "{\"error\": \"busy\"}", 0, 0);
    assert_int_equal(sms_send(c, TO, "hi", NULL, sid, sizeof(sid), &retry, err, sizeof(err)),
                     SMS_RETRY);
    assert_int_equal(retry, 0);
    pthread_mutex_lock(&fake_lock);
    fake_retry_after = 0;
    pthread_mutex_unlock(&fake_lock);
    sms_client_free(c);
}

static void test_date_parse(void **state)
{
    long long ms = 0;

    (void)state;
    assert_int_equal(sms_date_parse("Sun, 22 Nov 2026 10:00:00 +0000", &ms), 0);
    assert_true(ms == SINCE);
    assert_int_equal(sms_date_parse("Thu, 01 Jan 1970 00:00:01 +0000", &ms), 0);
    assert_true(ms == 1000);
    assert_int_equal(sms_date_parse("Sun, 22 Nov 2026 19:00:00 +0900", &ms), 0);
    assert_true(ms == SINCE);
    assert_int_equal(sms_date_parse("Thu, 29 Feb 2024 00:00:00 +0000", &ms), 0);
    assert_int_equal(sms_date_parse("Thu, 29 Feb 2025 00:00:00 +0000", &ms), -1);
    assert_int_equal(sms_date_parse("Sun, 22 Nov 2026 10:00:00", &ms), -1);
    assert_int_equal(sms_date_parse("Sun, 22 Foo 2026 10:00:00 +0000", &ms), -1);
    assert_int_equal(sms_date_parse("Sun, 32 Nov 2026 10:00:00 +0000", &ms), -1);
    assert_int_equal(sms_date_parse("Sun, 22 Nov 2026 24:00:00 +0000", &ms), -1);
    assert_int_equal(sms_date_parse("Sun, 22 Nov 2026 10:00:00 +0000 ", &ms), -1);
    assert_int_equal(sms_date_parse("2026-11-22T10:00:00Z", &ms), -1);
    assert_int_equal(sms_date_parse("", &ms), -1);
    assert_int_equal(sms_date_parse(NULL, &ms), -1);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_client_config),
        cmocka_unit_test(test_send_request),
        cmocka_unit_test(test_send_outcomes),
        cmocka_unit_test(test_send_transport),
        cmocka_unit_test(test_find),
        cmocka_unit_test(test_send_callback),
        cmocka_unit_test(test_send_retry_after),
        cmocka_unit_test(test_date_parse),
    };
    int failed;

    setenv("LOG_LEVEL", "error", 0);    /* the fake's request lines are noise */
    log_init("test_notifier_sms");
    curl_global_init(CURL_GLOBAL_DEFAULT);
    failed = cmocka_run_group_tests(tests, start_server, stop_server);
    curl_global_cleanup();
    return failed;
}
