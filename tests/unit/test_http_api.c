/* Unit tests for libcommon/http.c and http_reply.c: /healthz, bearer tokens, answers and
 * errors, start and stop, query arguments, dropped answers (tests/unit/http_fixture.h). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "http_fixture.h"

static void test_healthz(void **state)
{
    struct reply *r = *state;

    atomic_store(&g_ctx.healthy, 1);
    get("/healthz", NULL, r);
    assert_int_equal(r->status, 200);
    assert_string_equal(json_str(r, "status"), "ok");
    reply_free(r);

    atomic_store(&g_ctx.healthy, 0);
    get("/healthz", NULL, r);
    assert_int_equal(r->status, 503);
    assert_string_equal(json_str(r, "status"), "unavailable");
    assert_string_equal(json_str(r, "error"), "database down");
    reply_free(r);

    atomic_store(&g_ctx.healthy, 1);
    get("/healthz", NULL, r);
    assert_int_equal(r->status, 200);
    reply_free(r);
}

static void test_bearer(void **state)
{
    struct reply *r = *state;
    static const char *const bad[] = {
        NULL,
        "Authorization: Bearer wrong",
        "Authorization: Bearer s3cret-toke",
        "Authorization: Bearer s3cret-tokenX",
        "Authorization: Bearer ",
        "Authorization: Basic czNjcmV0LXRva2Vu",
        "Authorization: s3cret-token",
        "Authorization: Bearers3cret-token",
    };
    char www[64];
    size_t i;

    for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        get("/admin", bad[i], r);
        if (r->status != 401)
            fail_msg("header '%s': status %ld", bad[i] ? bad[i] : "(none)", r->status);
        assert_string_equal(json_str(r, "error"), "missing or invalid admin token");
        assert_true(header_value(r, "WWW-Authenticate", www, sizeof(www)));
        assert_string_equal(www, "Bearer");
        reply_free(r);
    }

    get("/admin", "Authorization: Bearer " ADMIN_TOKEN, r);
    assert_int_equal(r->status, 200);
    assert_true(json_is_true(json_object_get(r->json, "admin")));
    assert_false(header_value(r, "WWW-Authenticate", www, sizeof(www)));
    reply_free(r);

    get("/admin", "Authorization: bearer " ADMIN_TOKEN, r); /* the scheme is case-blind */
    assert_int_equal(r->status, 200);
    reply_free(r);
}

static void test_empty_token_fails_closed(void **state)
{
    http_response_t res;
    http_request_t req;

    (void)state;
    memset(&res, 0, sizeof(res));
    memset(&req, 0, sizeof(req)); /* no connection: no headers */
    assert_int_equal(http_check_bearer(&req, &res, ""), 0);
    assert_int_equal(res.status, 401);
    assert_string_equal(res.www_authenticate, "Bearer");
    json_decref(res.body);
}

static void test_handler_sets_nothing(void **state)
{
    struct reply *r = *state;

    char v[64];

    get("/nothing", NULL, r);
    assert_int_equal(r->status, 500);
    assert_string_equal(json_str(r, "error"), "internal error");
    reply_free(r);

    get("/badstatus", NULL, r);
    assert_int_equal(r->status, 500);
    assert_string_equal(json_str(r, "error"), "internal error");
    reply_free(r);

    get("/badlocation/abc", NULL, r);
    assert_int_equal(r->status, 500);
    assert_false(header_value(r, "Location", v, sizeof(v)));
    assert_false(header_value(r, "Set-Cookie", v, sizeof(v)));
    reply_free(r);
}

static void test_http_error_and_header(void **state)
{
    struct reply *r = *state;

    get("/conflict", NULL, r);
    assert_int_equal(r->status, 409);
    assert_string_equal(json_str(r, "error"), "sku choc is 3 short");
    reply_free(r);

    get("/header", "X-Test-Header: hello", r);
    assert_int_equal(r->status, 200);
    assert_string_equal(json_str(r, "value"), "hello");
    reply_free(r);

    get("/header", NULL, r);
    assert_int_equal(r->status, 200);
    assert_true(json_is_null(json_object_get(r->json, "value")));
    reply_free(r);
}

static void test_http_json_replaces_body(void **state)
{
    http_response_t res;

    (void)state;
    memset(&res, 0, sizeof(res));
    http_error(&res, 400, "first");
    http_json(&res, 200, json_pack("{s:i}", "n", 1)); /* the first body is released */
    assert_int_equal(res.status, 200);
    assert_int_equal(json_integer_value(json_object_get(res.body, "n")), 1);
    /* invalid UTF-8 in a message is replaced, not dropped */
    http_error(&res, 400, "bad \xff byte");
    assert_string_equal(json_string_value(json_object_get(res.body, "error")), "bad ? byte");
    json_decref(res.body);
}

static void test_start_errors(void **state)
{
    char err[256] = "";
    http_server_t *srv;

    (void)state;
    srv = http_server_start("not-an-ip", 0, routes, 1, NULL, NULL, err, sizeof(err));
    assert_null(srv);
    assert_string_equal(err, "HTTP bind address 'not-an-ip' is not an IPv4 address");

    srv = http_server_start("::1", 0, routes, 1, NULL, NULL, err, sizeof(err));
    assert_null(srv);

    srv = http_server_start("127.0.0.1", 70000, routes, 1, NULL, NULL, err, sizeof(err));
    assert_null(srv);
    assert_string_equal(err, "HTTP port 70000 is out of range 0..65535");

    /* The port the test server holds is taken. */
    err[0] = '\0';
    srv = http_server_start("127.0.0.1", g_port, routes, 1, NULL, NULL, err, sizeof(err));
    assert_null(srv);
    assert_non_null(strstr(err, "cannot start the HTTP server on 127.0.0.1:"));

    http_server_stop(NULL); /* accepted */
    assert_int_equal(http_server_port(NULL), -1);
}

static void test_start_stop_again(void **state)
{
    char err[256] = "";
    http_server_t *srv;
    int port;

    (void)state;
    srv = http_server_start("127.0.0.1", 0, routes, sizeof(routes) / sizeof(routes[0]),
                            NULL, NULL, err, sizeof(err));
    assert_non_null(srv);
    port = http_server_port(srv);
    assert_true(port > 0 && port != g_port);
    http_server_stop(srv);
}

static void test_query(void **state)
{
    struct reply *r = *state;

    get("/query?sku=choc%20chip&x=1", NULL, r);
    assert_int_equal(r->status, 200);
    assert_string_equal(json_str(r, "sku"), "choc chip"); /* decoded */
    assert_true(json_is_null(json_object_get(r->json, "other")));
    reply_free(r);

    get("/query?other=&sku=a.b", NULL, r);
    assert_int_equal(r->status, 200);
    assert_string_equal(json_str(r, "sku"), "a.b");
    assert_string_equal(json_str(r, "other"), "");
    reply_free(r);

    get("/query", NULL, r);
    assert_int_equal(r->status, 200);
    assert_true(json_is_null(json_object_get(r->json, "sku")));
    reply_free(r);

    get("/query?sku", NULL, r); /* a name without a value */
    assert_int_equal(r->status, 200);
    assert_true(json_is_null(json_object_get(r->json, "sku")));
    reply_free(r);
}

static void test_drop(void **state)
{
    struct reply *r = *state;
    static const char body[] = "{\"a\": 1}";
    CURLcode rc;

    rc = request("POST", "/drop", BODY_LENGTH, body, sizeof(body) - 1, NULL, 0, r);
    /* closed without a status line: curl reports an empty reply (or a reset) */
    if (rc != CURLE_GOT_NOTHING && rc != CURLE_RECV_ERROR)
        fail_msg("POST /drop: curl result %d (%s), status %ld", (int)rc,
                 curl_easy_strerror(rc), r->status);
    assert_int_equal(r->status, 0);
    assert_int_equal(r->body_len, 0);
    reply_free(r);

    /* the server still answers afterwards */
    get("/orders/after-drop", NULL, r);
    assert_int_equal(r->status, 200);
    assert_string_equal(json_str(r, "id"), "after-drop");
    reply_free(r);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_healthz),
        cmocka_unit_test(test_bearer),
        cmocka_unit_test(test_empty_token_fails_closed),
        cmocka_unit_test(test_handler_sets_nothing),
        cmocka_unit_test(test_http_error_and_header),
        cmocka_unit_test(test_http_json_replaces_body),
        cmocka_unit_test(test_start_errors),
        cmocka_unit_test(test_start_stop_again),
        cmocka_unit_test(test_query),
        cmocka_unit_test(test_drop),
    };

    return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
