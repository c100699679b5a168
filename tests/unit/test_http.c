/* Unit tests for libcommon/http.c: a real server on 127.0.0.1, called with libcurl. */
#include <setjmp.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <cmocka.h>

#include <curl/curl.h>
#include <jansson.h>

#include "http.h"
#include "log.h"

#define ADMIN_TOKEN "s3cret-token"
#define REPLY_MAX   (64 * 1024)

struct test_ctx {
    atomic_int healthy;
};

static struct test_ctx g_ctx;
static http_server_t *g_srv;
static int g_port;

/* ---------------------------------------------------------------------------------- */
/* Route handlers */

static void h_get_order(const http_request_t *req, http_response_t *res, void *ctx)
{
    (void)ctx;
    http_json(res, 200, json_pack("{s:s, s:i, s:s}", "id", req->params[0],
                                  "nparams", req->nparams, "method", req->method));
}

static void h_delete_order(const http_request_t *req, http_response_t *res, void *ctx)
{
    (void)ctx;
    http_json(res, 200, json_pack("{s:s}", "deleted", req->params[0]));
}

static void h_post_order(const http_request_t *req, http_response_t *res, void *ctx)
{
    json_t *obj = http_body_object(req, res);

    (void)ctx;
    if (obj == NULL)
        return; /* 400 already set */
    snprintf(res->location, sizeof(res->location), "/orders/42");
    /* obj's reference is stolen by json_pack's "o" */
    http_json(res, 201, json_pack("{s:o}", "got", obj));
}

static void h_parts(const http_request_t *req, http_response_t *res, void *ctx)
{
    (void)ctx;
    http_json(res, 200, json_pack("{s:s, s:s, s:i}", "item", req->params[0],
                                  "part", req->params[1], "nparams", req->nparams));
}

static void h_upload(const http_request_t *req, http_response_t *res, void *ctx)
{
    size_t i, xs = 0;

    (void)ctx;
    for (i = 0; i < req->body_len; i++)
        xs += req->body[i] == 'x';
    http_json(res, 200, json_pack("{s:I, s:I, s:b}", "len", (json_int_t)req->body_len,
                                  "xs", (json_int_t)xs,
                                  "terminated", req->body[req->body_len] == '\0'));
}

static void h_nothing(const http_request_t *req, http_response_t *res, void *ctx)
{
    (void)req;
    (void)res;
    (void)ctx;
}

static void h_admin(const http_request_t *req, http_response_t *res, void *ctx)
{
    (void)ctx;
    if (!http_check_bearer(req, res, ADMIN_TOKEN))
        return;
    http_json(res, 200, json_pack("{s:b}", "admin", 1));
}

static void h_header(const http_request_t *req, http_response_t *res, void *ctx)
{
    const char *v = http_header(req, "x-test-header"); /* sent as X-Test-Header */

    (void)ctx;
    http_json(res, 200, json_pack("{s:s?}", "value", v));
}

static void h_error(const http_request_t *req, http_response_t *res, void *ctx)
{
    (void)req;
    (void)ctx;
    http_error(res, 409, "sku %s is %d short", "choc", 3);
}

static void h_bad_status(const http_request_t *req, http_response_t *res, void *ctx)
{
    (void)req;
    (void)ctx;
    http_json(res, 0, json_object()); /* forgot the status */
}

static void h_bad_location(const http_request_t *req, http_response_t *res, void *ctx)
{
    (void)ctx;
    /* a client-controlled value with a CR LF must not split the response */
    snprintf(res->location, sizeof(res->location), "/orders/%s\r\nSet-Cookie: x=1",
             req->params[0]);
    http_json(res, 201, json_object());
}

static void h_query(const http_request_t *req, http_response_t *res, void *ctx)
{
    (void)ctx;
    http_json(res, 200, json_pack("{s:s?, s:s?}", "sku", http_query(req, "sku"),
                                  "other", http_query(req, "other")));
}

static void h_drop(const http_request_t *req, http_response_t *res, void *ctx)
{
    (void)req;
    (void)ctx;
    /* a body set before dropping must be released, not sent (valgrind checks the first) */
    http_error(res, 503, "never sent");
    res->drop = 1;
}

static int health(void *ctx, char *errstr, size_t errstr_size)
{
    struct test_ctx *t = ctx;

    if (atomic_load(&t->healthy))
        return 0;
    snprintf(errstr, errstr_size, "database down");
    return -1;
}

static const http_route_t routes[] = {
    { "GET", "/orders/{id}", h_get_order },
    { "DELETE", "/orders/{id}", h_delete_order },
    { "POST", "/orders", h_post_order },
    { "GET", "/items/{item}/parts/{part}", h_parts },
    { "POST", "/upload", h_upload },
    { "PUT", "/upload", h_upload },
    { "GET", "/nothing", h_nothing },
    { "GET", "/admin", h_admin },
    { "GET", "/header", h_header },
    { "GET", "/conflict", h_error },
    { "GET", "/", h_header },
    { "GET", "/badstatus", h_bad_status },
    { "GET", "/badlocation/{x}", h_bad_location },
    { "GET", "/query", h_query },
    { "POST", "/drop", h_drop },
};

/* ---------------------------------------------------------------------------------- */
/* Client */

struct reply {
    long status;
    char body[REPLY_MAX];
    size_t body_len;
    char headers[8192];
    size_t headers_len;
    json_t *json; /* parsed body, or NULL */
};

struct upload {
    const char *data;
    size_t len;
    size_t off;
};

static size_t on_body(char *ptr, size_t size, size_t nmemb, void *userdata)
{
    struct reply *r = userdata;
    size_t n = size * nmemb;

    if (n > sizeof(r->body) - 1 - r->body_len)
        return 0; /* makes curl fail: the test then fails */
    memcpy(r->body + r->body_len, ptr, n);
    r->body_len += n;
    r->body[r->body_len] = '\0';
    return n;
}

static size_t on_header(char *ptr, size_t size, size_t nmemb, void *userdata)
{
    struct reply *r = userdata;
    size_t n = size * nmemb;

    if (n > sizeof(r->headers) - 1 - r->headers_len)
        return 0;
    memcpy(r->headers + r->headers_len, ptr, n);
    r->headers_len += n;
    r->headers[r->headers_len] = '\0';
    return n;
}

/* Sends the body in pieces of at most 1000 bytes, for chunked uploads. */
static size_t on_read(char *buf, size_t size, size_t nitems, void *userdata)
{
    struct upload *u = userdata;
    size_t n = size * nitems;

    if (n > 1000)
        n = 1000;
    if (n > u->len - u->off)
        n = u->len - u->off;
    memcpy(buf, u->data + u->off, n);
    u->off += n;
    return n;
}

enum body_mode { BODY_NONE, BODY_LENGTH, BODY_CHUNKED };

/* Sends "GET <target> HTTP/1.1" with the request target exactly as given, which curl
 * would otherwise refuse or normalise. */
static void get_raw_target(const char *target, struct reply *r)
{
    char url[64];
    CURL *c = curl_easy_init();

    assert_non_null(c);
    memset(r, 0, sizeof(*r));
    snprintf(url, sizeof(url), "http://127.0.0.1:%d/", g_port);
    curl_easy_setopt(c, CURLOPT_URL, url);
    curl_easy_setopt(c, CURLOPT_REQUEST_TARGET, target);
    curl_easy_setopt(c, CURLOPT_TIMEOUT_MS, 10000L);
    curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, on_body);
    curl_easy_setopt(c, CURLOPT_WRITEDATA, r);
    assert_int_equal(curl_easy_perform(c), CURLE_OK);
    curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &r->status);
    if (r->body_len > 0)
        r->json = json_loadb(r->body, r->body_len, 0, NULL);
    curl_easy_cleanup(c);
}

/* Performs one request against the test server and fills r (r->json is a new reference
 * the caller frees with reply_free). extra is one extra request header or NULL;
 * no_expect suppresses curl's "Expect: 100-continue". Returns the CURLcode. */
static CURLcode request(const char *method, const char *path, enum body_mode mode,
                        const char *body, size_t body_len, const char *extra,
                        int no_expect, struct reply *r)
{
    char url[512];
    struct curl_slist *hdrs = NULL;
    struct upload up = { body, body_len, 0 };
    CURLcode rc;
    CURL *c = curl_easy_init();

    assert_non_null(c);
    memset(r, 0, sizeof(*r));
    assert_true(snprintf(url, sizeof(url), "http://127.0.0.1:%d%s", g_port, path) <
                (int)sizeof(url));
    curl_easy_setopt(c, CURLOPT_URL, url);
    curl_easy_setopt(c, CURLOPT_CUSTOMREQUEST, method);
    curl_easy_setopt(c, CURLOPT_TIMEOUT_MS, 10000L);
    curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, on_body);
    curl_easy_setopt(c, CURLOPT_WRITEDATA, r);
    curl_easy_setopt(c, CURLOPT_HEADERFUNCTION, on_header);
    curl_easy_setopt(c, CURLOPT_HEADERDATA, r);
    if (mode == BODY_LENGTH) {
        curl_easy_setopt(c, CURLOPT_POSTFIELDS, body);
        curl_easy_setopt(c, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)body_len);
    } else if (mode == BODY_CHUNKED) {
        curl_easy_setopt(c, CURLOPT_POST, 1L);
        curl_easy_setopt(c, CURLOPT_READFUNCTION, on_read);
        curl_easy_setopt(c, CURLOPT_READDATA, &up);
        hdrs = curl_slist_append(hdrs, "Transfer-Encoding: chunked");
    }
    if (no_expect)
        hdrs = curl_slist_append(hdrs, "Expect:");
    if (extra != NULL)
        hdrs = curl_slist_append(hdrs, extra);
    curl_easy_setopt(c, CURLOPT_HTTPHEADER, hdrs);

    rc = curl_easy_perform(c);
    curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &r->status);
    if (r->body_len > 0)
        r->json = json_loadb(r->body, r->body_len, 0, NULL);
    curl_slist_free_all(hdrs);
    curl_easy_cleanup(c);
    return rc;
}

static void reply_free(struct reply *r)
{
    json_decref(r->json);
    r->json = NULL;
}

/* Copies the value of response header name into out, or returns 0 when absent. */
static int header_value(const struct reply *r, const char *name, char *out, size_t out_size)
{
    const char *line = r->headers;
    size_t nlen = strlen(name);

    while (*line != '\0') {
        const char *eol = strstr(line, "\r\n");
        size_t len = eol != NULL ? (size_t)(eol - line) : strlen(line);

        if (len > nlen && strncasecmp(line, name, nlen) == 0 && line[nlen] == ':') {
            const char *v = line + nlen + 1;
            size_t vlen;

            while (*v == ' ')
                v++;
            vlen = len - (size_t)(v - line);
            if (vlen >= out_size)
                vlen = out_size - 1;
            memcpy(out, v, vlen);
            out[vlen] = '\0';
            return 1;
        }
        if (eol == NULL)
            break;
        line = eol + 2;
    }
    return 0;
}

static const char *json_str(const struct reply *r, const char *key)
{
    assert_non_null(r->json);
    return json_string_value(json_object_get(r->json, key));
}

/* A simple GET with no body. */
static void get(const char *path, const char *extra, struct reply *r)
{
    assert_int_equal(request("GET", path, BODY_NONE, NULL, 0, extra, 0, r), CURLE_OK);
}

/* ---------------------------------------------------------------------------------- */
/* Tests */

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

/* ---------------------------------------------------------------------------------- */

static int group_setup(void **state)
{
    char err[256] = "";
    struct reply *r;

    (void)state;
    log_init("test_http");
    if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK)
        return -1;
    atomic_store(&g_ctx.healthy, 1);
    g_srv = http_server_start("127.0.0.1", 0, routes, sizeof(routes) / sizeof(routes[0]),
                              health, &g_ctx, err, sizeof(err));
    if (g_srv == NULL) {
        fprintf(stderr, "http_server_start: %s\n", err);
        return -1;
    }
    g_port = http_server_port(g_srv);
    if (g_port <= 0)
        return -1;
    r = calloc(1, sizeof(*r));
    if (r == NULL)
        return -1;
    *state = r;
    return 0;
}

static int group_teardown(void **state)
{
    struct reply *r = *state;

    if (r != NULL)
        reply_free(r);
    free(r);
    http_server_stop(g_srv);
    g_srv = NULL;
    curl_global_cleanup();
    return 0;
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
