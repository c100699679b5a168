/* http_fixture: what the unit tests of libcommon/http*.c share: a real server on 127.0.0.1
 * with test routes, started once per group, and a libcurl client. Included by one test
 * file each (its functions are static inline: a test that uses only some of them builds). */
#ifndef DOZEN_TEST_HTTP_FIXTURE_H
#define DOZEN_TEST_HTTP_FIXTURE_H
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

static inline void h_get_order(const http_request_t *req, http_response_t *res, void *ctx)
{
    (void)ctx;
    http_json(res, 200, json_pack("{s:s, s:i, s:s}", "id", req->params[0],
                                  "nparams", req->nparams, "method", req->method));
}

static inline void h_delete_order(const http_request_t *req, http_response_t *res, void *ctx)
{
    (void)ctx;
    http_json(res, 200, json_pack("{s:s}", "deleted", req->params[0]));
}

static inline void h_post_order(const http_request_t *req, http_response_t *res, void *ctx)
{
    json_t *obj = http_body_object(req, res);

    (void)ctx;
    if (obj == NULL)
        return; /* 400 already set */
    snprintf(res->location, sizeof(res->location), "/orders/42");
    /* obj's reference is stolen by json_pack's "o" */
    http_json(res, 201, json_pack("{s:o}", "got", obj));
}

static inline void h_parts(const http_request_t *req, http_response_t *res, void *ctx)
{
    (void)ctx;
    http_json(res, 200, json_pack("{s:s, s:s, s:i}", "item", req->params[0],
                                  "part", req->params[1], "nparams", req->nparams));
}

static inline void h_upload(const http_request_t *req, http_response_t *res, void *ctx)
{
    size_t i, xs = 0;

    (void)ctx;
    for (i = 0; i < req->body_len; i++)
        xs += req->body[i] == 'x';
    http_json(res, 200, json_pack("{s:I, s:I, s:b}", "len", (json_int_t)req->body_len,
                                  "xs", (json_int_t)xs,
                                  "terminated", req->body[req->body_len] == '\0'));
}

static inline void h_nothing(const http_request_t *req, http_response_t *res, void *ctx)
{
    (void)req;
    (void)res;
    (void)ctx;
}

static inline void h_admin(const http_request_t *req, http_response_t *res, void *ctx)
{
    (void)ctx;
    if (!http_check_bearer(req, res, ADMIN_TOKEN))
        return;
    http_json(res, 200, json_pack("{s:b}", "admin", 1));
}

static inline void h_header(const http_request_t *req, http_response_t *res, void *ctx)
{
    const char *v = http_header(req, "x-test-header"); /* sent as X-Test-Header */

    (void)ctx;
    http_json(res, 200, json_pack("{s:s?}", "value", v));
}

static inline void h_error(const http_request_t *req, http_response_t *res, void *ctx)
{
    (void)req;
    (void)ctx;
    http_error(res, 409, "sku %s is %d short", "choc", 3);
}

static inline void h_bad_status(const http_request_t *req, http_response_t *res, void *ctx)
{
    (void)req;
    (void)ctx;
    http_json(res, 0, json_object()); /* forgot the status */
}

static inline void h_bad_location(const http_request_t *req, http_response_t *res, void *ctx)
{
    (void)ctx;
    /* a client-controlled value with a CR LF must not split the response */
    snprintf(res->location, sizeof(res->location), "/orders/%s\r\nSet-Cookie: x=1",
             req->params[0]);
    http_json(res, 201, json_object());
}

static inline void h_query(const http_request_t *req, http_response_t *res, void *ctx)
{
    (void)ctx;
    http_json(res, 200, json_pack("{s:s?, s:s?}", "sku", http_query(req, "sku"),
                                  "other", http_query(req, "other")));
}

static inline void h_drop(const http_request_t *req, http_response_t *res, void *ctx)
{
    (void)req;
    (void)ctx;
    /* a body set before dropping must be released, not sent (valgrind checks the first) */
    http_error(res, 503, "never sent");
    res->drop = 1;
}

static inline int health(void *ctx, char *errstr, size_t errstr_size)
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

static inline size_t on_body(char *ptr, size_t size, size_t nmemb, void *userdata)
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

static inline size_t on_header(char *ptr, size_t size, size_t nmemb, void *userdata)
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
static inline size_t on_read(char *buf, size_t size, size_t nitems, void *userdata)
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
static inline void get_raw_target(const char *target, struct reply *r)
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
static inline CURLcode request(const char *method, const char *path, enum body_mode mode,
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

static inline void reply_free(struct reply *r)
{
    json_decref(r->json);
    r->json = NULL;
}

/* Copies the value of response header name into out, or returns 0 when absent. */
static inline int header_value(const struct reply *r, const char *name, char *out, size_t out_size)
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

static inline const char *json_str(const struct reply *r, const char *key)
{
    assert_non_null(r->json);
    return json_string_value(json_object_get(r->json, key));
}

/* A simple GET with no body. */
static inline void get(const char *path, const char *extra, struct reply *r)
{
    assert_int_equal(request("GET", path, BODY_NONE, NULL, 0, extra, 0, r), CURLE_OK);
}

/* ---------------------------------------------------------------------------------- */
/* Tests */

/* ---------------------------------------------------------------------------------- */

static inline int group_setup(void **state)
{
    char err[256] = "";
    struct reply *r;

    (void)state;
    log_init("test_http");
    if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK)
        return -1;
    atomic_store(&g_ctx.healthy, 1);
    http_server_opts_t o;

    memset(&o, 0, sizeof(o));
    o.bind_addr = "127.0.0.1";
    o.routes = routes;
    o.nroutes = sizeof(routes) / sizeof(routes[0]);
    o.health = health;
    o.ctx = &g_ctx;
    o.threads = 4; /* the services' model: epoll and a pool */
    g_srv = http_server_start_opts(&o, err, sizeof(err));
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

static inline int group_teardown(void **state)
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


#endif
