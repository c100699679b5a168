/* Unit tests for libcommon/http.c: routing, percent-decoding, methods and bodies, on a real
 * server on 127.0.0.1 called with libcurl (tests/unit/http_fixture.h). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "http_fixture.h"

static void test_routing_and_params(void **state)
{
    struct reply *r = *state;
    char v[128];

    get("/orders/abc-123", NULL, r);
    assert_int_equal(r->status, 200);
    assert_string_equal(json_str(r, "id"), "abc-123");
    assert_string_equal(json_str(r, "method"), "GET");
    assert_int_equal(json_integer_value(json_object_get(r->json, "nparams")), 1);
    assert_true(header_value(r, "Content-Type", v, sizeof(v)));
    assert_string_equal(v, "application/json");
    reply_free(r);

    assert_int_equal(request("DELETE", "/orders/xyz", BODY_NONE, NULL, 0, NULL, 0, r),
                     CURLE_OK);
    assert_int_equal(r->status, 200);
    assert_string_equal(json_str(r, "deleted"), "xyz");
    reply_free(r);

    get("/items/i1/parts/p2?ignored=1", NULL, r);
    assert_int_equal(r->status, 200);
    assert_string_equal(json_str(r, "item"), "i1");
    assert_string_equal(json_str(r, "part"), "p2");
    assert_int_equal(json_integer_value(json_object_get(r->json, "nparams")), 2);
    reply_free(r);

    get("/", NULL, r); /* the root pattern */
    assert_int_equal(r->status, 200);
    reply_free(r);
}

static void test_percent_decoding(void **state)
{
    struct reply *r = *state;

    get("/orders/a%20b%C3%A9", NULL, r);
    assert_int_equal(r->status, 200);
    assert_string_equal(json_str(r, "id"), "a b\xc3\xa9");
    reply_free(r);

    get("/%6Frders/x", NULL, r); /* literal segments compare decoded */
    assert_int_equal(r->status, 200);
    assert_string_equal(json_str(r, "id"), "x");
    reply_free(r);

    /* An encoded '/' or NUL, and a broken escape, are refused rather than guessed at. */
    get("/orders/a%2Fb", NULL, r);
    assert_int_equal(r->status, 400);
    assert_non_null(strstr(json_str(r, "error"), "malformed path"));
    reply_free(r);

    get("/orders/a%2fb", NULL, r);
    assert_int_equal(r->status, 400);
    reply_free(r);

    get("/orders/ab%00cd", NULL, r);
    assert_int_equal(r->status, 400);
    reply_free(r);

    get("/orders/%zz", NULL, r);
    assert_int_equal(r->status, 400);
    reply_free(r);

    get("/orders/abc%2", NULL, r);
    assert_int_equal(r->status, 400);
    reply_free(r);

    /* Raw spaces and control characters are not valid in a request target. */
    get_raw_target("/orders/a b", r);
    assert_int_equal(r->status, 400);
    assert_non_null(strstr(json_str(r, "error"), "malformed path"));
    reply_free(r);

    get_raw_target("/orders/a\x01b", r);
    assert_int_equal(r->status, 400);
    reply_free(r);

    get_raw_target("/orders/plain", r);
    assert_int_equal(r->status, 200);
    assert_string_equal(json_str(r, "id"), "plain");
    reply_free(r);
}

static void test_not_found(void **state)
{
    struct reply *r = *state;
    static const char *const paths[] = {
        "/nope", "/orders/", "/orders/abc/", "/orders//", "/items/i1/parts/", "/orders/a/b",
        "//orders/a", "/a/b/c/d/e/f/g/h/i/j/k/l/m/n/o/p/q/r/s/t/u/v/w/x/y/z",
    };
    size_t i;

    for (i = 0; i < sizeof(paths) / sizeof(paths[0]); i++) {
        get(paths[i], NULL, r);
        if (r->status != 404)
            fail_msg("%s: status %ld", paths[i], r->status);
        assert_string_equal(json_str(r, "error"), "not found");
        reply_free(r);
    }
}

static void test_body_to_unknown_route(void **state)
{
    struct reply *r = *state;
    static const char body[] = "{\"a\": 1}";
    char *big = malloc(HTTP_MAX_BODY);

    assert_non_null(big);
    memset(big, 'x', HTTP_MAX_BODY);
    assert_int_equal(request("POST", "/nope", BODY_LENGTH, body, sizeof(body) - 1, NULL, 0, r),
                     CURLE_OK);
    assert_int_equal(r->status, 404);
    assert_string_equal(json_str(r, "error"), "not found");
    reply_free(r);

    assert_int_equal(request("POST", "/nope", BODY_CHUNKED, big, HTTP_MAX_BODY, NULL, 0, r),
                     CURLE_OK);
    assert_int_equal(r->status, 404);
    reply_free(r);

    assert_int_equal(request("POST", "/nope", BODY_LENGTH, big, HTTP_MAX_BODY, NULL, 1, r),
                     CURLE_OK);
    assert_int_equal(r->status, 404);
    reply_free(r);
    free(big);
}

static void test_method_not_allowed(void **state)
{
    struct reply *r = *state;
    char allow[128];

    assert_int_equal(request("PUT", "/orders/abc", BODY_NONE, NULL, 0, NULL, 0, r), CURLE_OK);
    assert_int_equal(r->status, 405);
    assert_true(header_value(r, "Allow", allow, sizeof(allow)));
    assert_string_equal(allow, "GET, DELETE");
    assert_string_equal(json_str(r, "error"), "method not allowed");
    reply_free(r);

    get("/orders", NULL, r);
    assert_int_equal(r->status, 405);
    assert_true(header_value(r, "Allow", allow, sizeof(allow)));
    assert_string_equal(allow, "POST");
    reply_free(r);

    get("/upload", NULL, r);
    assert_int_equal(r->status, 405);
    assert_true(header_value(r, "Allow", allow, sizeof(allow)));
    assert_string_equal(allow, "POST, PUT");
    reply_free(r);

    assert_int_equal(request("POST", "/healthz", BODY_NONE, NULL, 0, NULL, 0, r), CURLE_OK);
    assert_int_equal(r->status, 405);
    assert_true(header_value(r, "Allow", allow, sizeof(allow)));
    assert_string_equal(allow, "GET");
    reply_free(r);

    /* A 404 carries no Allow header. */
    get("/nope", NULL, r);
    assert_int_equal(r->status, 404);
    assert_false(header_value(r, "Allow", allow, sizeof(allow)));
    reply_free(r);
}

static void test_body_too_large(void **state)
{
    struct reply *r = *state;
    size_t len = 17 * 1024;
    char *big = malloc(len);

    assert_non_null(big);
    memset(big, 'x', len);

    /* With Content-Length, answered before the body is read: the client that asks first
     * is told 413 instead of "100 Continue", and the connection is not kept. */
    assert_int_equal(request("POST", "/upload", BODY_LENGTH, big, len,
                             "Expect: 100-continue", 0, r), CURLE_OK);
    assert_int_equal(r->status, 413);
    assert_string_equal(json_str(r, "error"), "request body is larger than 16384 bytes");
    assert_null(strstr(r->headers, " 100 Continue"));
    reply_free(r);

    /* ...which is the early answer: 16 KiB is asked for and continued. */
    assert_int_equal(request("POST", "/upload", BODY_LENGTH, big, HTTP_MAX_BODY,
                             "Expect: 100-continue", 0, r), CURLE_OK);
    assert_int_equal(r->status, 200);
    assert_non_null(strstr(r->headers, " 100 Continue"));
    reply_free(r);

    /* The body is already on its way without "Expect". */

    assert_int_equal(request("POST", "/upload", BODY_LENGTH, big, len, NULL, 1, r), CURLE_OK);
    assert_int_equal(r->status, 413);
    reply_free(r);

    /* Chunked: no Content-Length, so it is counted as it arrives. */
    assert_int_equal(request("POST", "/upload", BODY_CHUNKED, big, len, NULL, 0, r), CURLE_OK);
    assert_int_equal(r->status, 413);
    assert_string_equal(json_str(r, "error"), "request body is larger than 16384 bytes");
    reply_free(r);

    /* One byte over. */
    assert_int_equal(request("POST", "/upload", BODY_CHUNKED, big, HTTP_MAX_BODY + 1, NULL, 1,
                             r), CURLE_OK);
    assert_int_equal(r->status, 413);
    reply_free(r);
    assert_int_equal(request("PUT", "/upload", BODY_LENGTH, big, HTTP_MAX_BODY + 1, NULL, 1,
                             r), CURLE_OK);
    assert_int_equal(r->status, 413);
    reply_free(r);

    /* The server still answers afterwards. */
    get("/orders/still-up", NULL, r);
    assert_int_equal(r->status, 200);
    reply_free(r);
    free(big);
}

static void test_body_at_limit(void **state)
{
    struct reply *r = *state;
    char *big = malloc(HTTP_MAX_BODY);

    assert_non_null(big);
    memset(big, 'x', HTTP_MAX_BODY);

    assert_int_equal(request("POST", "/upload", BODY_LENGTH, big, HTTP_MAX_BODY, NULL, 0, r),
                     CURLE_OK);
    assert_int_equal(r->status, 200);
    assert_int_equal(json_integer_value(json_object_get(r->json, "len")), HTTP_MAX_BODY);
    assert_int_equal(json_integer_value(json_object_get(r->json, "xs")), HTTP_MAX_BODY);
    assert_true(json_is_true(json_object_get(r->json, "terminated")));
    reply_free(r);

    assert_int_equal(request("POST", "/upload", BODY_CHUNKED, big, HTTP_MAX_BODY, NULL, 0, r),
                     CURLE_OK);
    assert_int_equal(r->status, 200);
    assert_int_equal(json_integer_value(json_object_get(r->json, "len")), HTTP_MAX_BODY);
    assert_int_equal(json_integer_value(json_object_get(r->json, "xs")), HTTP_MAX_BODY);
    reply_free(r);

    /* No body at all: "" and length 0. */
    assert_int_equal(request("POST", "/upload", BODY_NONE, NULL, 0, NULL, 0, r), CURLE_OK);
    assert_int_equal(r->status, 200);
    assert_int_equal(json_integer_value(json_object_get(r->json, "len")), 0);
    assert_true(json_is_true(json_object_get(r->json, "terminated")));
    reply_free(r);
    free(big);
}

static void expect_bad_body(struct reply *r, const char *body, const char *want_prefix)
{
    const char *err;

    assert_int_equal(request("POST", "/orders", BODY_LENGTH, body, strlen(body), NULL, 0, r),
                     CURLE_OK);
    assert_int_equal(r->status, 400);
    err = json_str(r, "error");
    assert_non_null(err);
    if (strncmp(err, want_prefix, strlen(want_prefix)) != 0)
        fail_msg("body '%s': error '%s' does not start with '%s'", body, err, want_prefix);
    reply_free(r);
}

static void test_json_bodies(void **state)
{
    struct reply *r = *state;
    static const char good[] = "{\"sku\": \"choc\", \"qty\": 2}";
    char loc[128];
    const char *err;

    assert_int_equal(request("POST", "/orders", BODY_LENGTH, good, sizeof(good) - 1, NULL, 0,
                             r), CURLE_OK);
    assert_int_equal(r->status, 201);
    assert_string_equal(json_string_value(json_object_get(json_object_get(r->json, "got"),
                                                          "sku")), "choc");
    assert_true(header_value(r, "Location", loc, sizeof(loc)));
    assert_string_equal(loc, "/orders/42");
    reply_free(r);

    assert_int_equal(request("POST", "/orders", BODY_NONE, NULL, 0, NULL, 0, r), CURLE_OK);
    assert_int_equal(r->status, 400);
    assert_string_equal(json_str(r, "error"), "request body is empty");
    reply_free(r);

    assert_int_equal(request("POST", "/orders", BODY_LENGTH, "{\"sku\": \n  ", 11, NULL, 0, r),
                     CURLE_OK);
    assert_int_equal(r->status, 400);
    err = json_str(r, "error");
    assert_non_null(err);
    assert_int_equal(strncmp(err, "malformed JSON: ", 16), 0);
    assert_non_null(strstr(err, " at line 2 column "));
    reply_free(r);

    expect_bad_body(r, "{\"a\": 1, \"a\": 2}", "malformed JSON: duplicate object key");
    expect_bad_body(r, "{\"a\": 1} trailing", "malformed JSON: ");
    expect_bad_body(r, "{\"a\": \"\xff\"}", "malformed JSON: ");
    expect_bad_body(r, "\xff\xfe", "malformed JSON: ");
    expect_bad_body(r, "[1, 2]", "request body must be a JSON object");
    expect_bad_body(r, "\"text\"", "request body must be a JSON object");
    expect_bad_body(r, "42", "request body must be a JSON object");
    expect_bad_body(r, "null", "request body must be a JSON object");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_routing_and_params),
        cmocka_unit_test(test_percent_decoding),
        cmocka_unit_test(test_not_found),
        cmocka_unit_test(test_body_to_unknown_route),
        cmocka_unit_test(test_method_not_allowed),
        cmocka_unit_test(test_body_too_large),
        cmocka_unit_test(test_body_at_limit),
        cmocka_unit_test(test_json_bodies),
    };

    return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
