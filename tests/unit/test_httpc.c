/* Unit tests for libcommon/httpc.c against an HTTP stub started in the test: what a request
 * carries, the body limit, non-2xx answers, timeouts, refused and dropped connections, the
 * caller's mistakes and every error text; the text rule and the form builder. */
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
#include "httpc.h"
#include "log.h"
#include "strbuf.h"
#include "trace.h"
#include "util.h"

/* What the last request carried; under seen_lock. */
struct seen {
    int requests;
    char method[8];
    char auth[128];
    char agent[64];
    char content_type[128];
    char expect[64];
    char x_test[64];
    char traceparent[64];
    char body[256];
    int client_port;
};

static pthread_mutex_t seen_lock = PTHREAD_MUTEX_INITIALIZER;
static struct seen last;

static void echo(const http_request_t *req, http_response_t *res, void *ctx)
{
    stub_answer_t a = stub_answer();

    (void)ctx;
    pthread_mutex_lock(&seen_lock);
    last.requests++;
    stub_copy(last.method, sizeof(last.method), req->method);
    stub_copy(last.auth, sizeof(last.auth), http_header(req, "Authorization"));
    stub_copy(last.agent, sizeof(last.agent), http_header(req, "User-Agent"));
    stub_copy(last.content_type, sizeof(last.content_type), http_header(req, "Content-Type"));
    stub_copy(last.expect, sizeof(last.expect), http_header(req, "Expect"));
    stub_copy(last.x_test, sizeof(last.x_test), http_header(req, "X-Test"));
    stub_copy(last.traceparent, sizeof(last.traceparent), http_header(req, "traceparent"));
    stub_copy(last.body, sizeof(last.body), req->body);
    last.client_port = stub_client_port(req);
    pthread_mutex_unlock(&seen_lock);
    stub_reply(res, &a);
}

static struct seen seen(void)
{
    struct seen s;

    pthread_mutex_lock(&seen_lock);
    s = last;
    pthread_mutex_unlock(&seen_lock);
    return s;
}

static const http_route_t routes[] = {
    { "GET", "/echo", echo },
    { "POST", "/echo", echo },
    { "PUT", "/echo", echo },
};

static int start_server(void **state)
{
    (void)state;
    return stub_start(routes, sizeof(routes) / sizeof(routes[0]));
}

static int stop_server(void **state)
{
    (void)state;
    stub_stop();
    return 0;
}

/* Each request test's handle and answer buffer (1 KiB unless the test says otherwise). */
static CURL *curl;
static strbuf_t body;

static int setup_handle(void **state)
{
    (void)state;
    strbuf_init(&body, 1024);
    curl = curl_easy_init();
    return curl != NULL ? 0 : -1;
}

static int teardown_handle(void **state)
{
    (void)state;
    strbuf_release(&body);
    curl_easy_cleanup(curl);
    curl = NULL;
    return 0;
}

/* A GET of url with timeout_ms. */
static httpc_request_t get(const char *url, long timeout_ms)
{
    httpc_request_t req = { 0 };

    req.url = url;
    req.timeout_ms = timeout_ms;
    return req;
}

/* Fails the test if err holds a byte httpc_printable would have replaced. */
static void assert_printable(const char *err)
{
    size_t i;

    for (i = 0; err[i] != '\0'; i++) {
        unsigned char c = (unsigned char)err[i];

        if (c < 0x20 || c > 0x7e || c == '"' || c == '\\')
            fail_msg("unsafe byte 0x%02x in err '%s'", c, err);
    }
}

/* ---------------------------------------------------------------------------------- */
/* Answers */

static void test_get_ok(void **state)
{
    httpc_result_t res;
    httpc_request_t req;
    char u[128], err[256];

    (void)state;
    stub_set(200, "{\"a\": 1}", 0, 0, NULL);
    req = get(stub_url("/echo", u, sizeof(u)), 5000);
    memset(err, 'X', sizeof(err));
    assert_int_equal(httpc_request(curl, &req, &body, &res, err, sizeof(err)), 0);
    assert_string_equal(err, "");
    assert_int_equal(res.rc, CURLE_OK);
    assert_int_equal(res.status, 200);
    assert_int_equal(res.too_long, 0);
    assert_int_equal(res.sent, 1);
    assert_string_equal(body.buf, "{\"a\":1}");
    assert_int_equal(body.len, strlen("{\"a\":1}"));
    assert_string_equal(seen().method, "GET");
    assert_string_equal(seen().agent, "(none)");
    assert_string_equal(seen().auth, "(none)");

    /* the body is emptied for every request; errstr may be NULL */
    stub_set(201, "[]", 0, 0, NULL);
    assert_int_equal(httpc_request(curl, &req, &body, &res, NULL, 0), 0);
    assert_int_equal(res.status, 201);
    assert_string_equal(body.buf, "[]");
}

static void test_request_options(void **state)
{
    static const char *const headers[] = { "X-Test: yes", "Expect:", NULL };
    strbuf_t form;
    httpc_result_t res;
    httpc_request_t req = { 0 };
    char u[128], err[256];
    struct seen s;
    int port;

    (void)state;
    strbuf_init(&form, 0);
    assert_int_equal(httpc_form_add(&form, "To", "+82 10"), 0);
    assert_int_equal(httpc_form_add(&form, "Body", "a&b=c"), 0);
    stub_set(201, "{}", 0, 0, NULL);
    req.url = stub_url("/echo", u, sizeof(u));
    req.headers = headers;
    req.body = form.buf;
    req.body_len = form.len;
    req.username = "ACtest";
    req.password = "test-token";
    req.user_agent = "dozen-test";
    req.connect_timeout_ms = 1000;
    req.timeout_ms = 5000;
    assert_int_equal(httpc_request(curl, &req, &body, &res, err, sizeof(err)), 0);
    assert_int_equal(res.status, 201);
    s = seen();
    assert_string_equal(s.method, "POST");
    assert_string_equal(s.auth, "Basic QUN0ZXN0OnRlc3QtdG9rZW4=");  /* ACtest:test-token */
    assert_string_equal(s.agent, "dozen-test");
    assert_string_equal(s.content_type, "application/x-www-form-urlencoded");
    assert_string_equal(s.expect, "(none)");
    assert_string_equal(s.x_test, "yes");
    assert_string_equal(s.body, "To=%2B82%2010&Body=a%26b%3Dc");
    port = s.client_port;
    assert_true(port > 0);

    /* another method; the connection is kept alive; the options of the last request are
     * forgotten */
    req.method = "PUT";
    req.username = NULL;
    req.user_agent = NULL;
    req.headers = NULL;
    assert_int_equal(httpc_request(curl, &req, &body, &res, err, sizeof(err)), 0);
    s = seen();
    assert_string_equal(s.method, "PUT");
    assert_string_equal(s.auth, "(none)");
    assert_string_equal(s.x_test, "(none)");
    assert_string_equal(s.traceparent, "(none)"); /* outside a span: none */
    assert_int_equal(s.client_port, port);

    /* inside a span, the thread's traceparent goes with the request */
    trace_begin("00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01", 55);
    assert_int_equal(httpc_request(curl, &req, &body, &res, err, sizeof(err)), 0);
    assert_string_equal(seen().traceparent, trace_current());
    trace_end();

    /* a GET after a POST is a GET */
    req = get(u, 5000);
    assert_int_equal(httpc_request(curl, &req, &body, &res, err, sizeof(err)), 0);
    assert_string_equal(seen().method, "GET");
    strbuf_release(&form);
}

static void test_body_limit(void **state)
{
    httpc_result_t res;
    httpc_request_t req;
    char u[128], err[256];

    (void)state;
    body.max = 64 * 1024;
    req = get(stub_url("/echo", u, sizeof(u)), 5000);

    /* just under the limit: kept whole */
    stub_set(200, "{}", 64 * 1024 - 100, 0, NULL);
    assert_int_equal(httpc_request(curl, &req, &body, &res, err, sizeof(err)), 0);
    assert_int_equal(res.too_long, 0);
    assert_true(body.len > 64 * 1024 - 100 && body.len <= 64 * 1024);

    /* over it: still an answer, with its status, and cut */
    stub_set(200, "{}", 64 * 1024, 0, NULL);
    assert_int_equal(httpc_request(curl, &req, &body, &res, err, sizeof(err)), 0);
    assert_int_equal(res.too_long, 1);
    assert_int_equal(res.status, 200);
    assert_int_equal(res.rc, CURLE_WRITE_ERROR);
    assert_string_equal(err, "");
    assert_true(body.len < 64 * 1024);
    stub_set(503, "{}", 3 * 64 * 1024, 0, NULL);
    assert_int_equal(httpc_request(curl, &req, &body, &res, err, sizeof(err)), 0);
    assert_int_equal(res.too_long, 1);
    assert_int_equal(res.status, 503);

    /* and the next answer is whole again */
    stub_set(200, "{}", 0, 0, NULL);
    assert_int_equal(httpc_request(curl, &req, &body, &res, err, sizeof(err)), 0);
    assert_int_equal(res.too_long, 0);
    assert_string_equal(body.buf, "{}");
}

static void test_non_2xx(void **state)
{
    httpc_result_t res;
    httpc_request_t req;
    char u[128], target[128], err[256];

    (void)state;
    req = get(stub_url("/echo", u, sizeof(u)), 5000);
    /* an HTTP error is an answer: status and body for the caller to judge */
    stub_set(503, "{\"message\": \"busy\"}", 0, 0, NULL);
    assert_int_equal(httpc_request(curl, &req, &body, &res, err, sizeof(err)), 0);
    assert_int_equal(res.status, 503);
    assert_int_equal(res.rc, CURLE_OK);
    assert_string_equal(body.buf, "{\"message\":\"busy\"}");
    assert_string_equal(err, "");
    stub_set(400, "{}", 0, 0, NULL);
    assert_int_equal(httpc_request(curl, &req, &body, &res, err, sizeof(err)), 0);
    assert_int_equal(res.status, 400);

    /* a redirect is not followed */
    stub_set(302, "{}", 0, 0, stub_url("/echo", target, sizeof(target)));
    assert_int_equal(httpc_request(curl, &req, &body, &res, err, sizeof(err)), 0);
    assert_int_equal(res.status, 302);
    assert_int_equal(seen().requests > 0, 1);

    /* an unknown path */
    req = get(stub_url("/nope", u, sizeof(u)), 5000);
    assert_int_equal(httpc_request(curl, &req, &body, &res, err, sizeof(err)), 0);
    assert_int_equal(res.status, 404);
}

/* ---------------------------------------------------------------------------------- */
/* Failed transfers */

static void test_timeout(void **state)
{
    httpc_result_t res;
    httpc_request_t req;
    char u[128], err[256];
    int64_t t0;

    (void)state;
    stub_set(200, "{}", 0, 1500, NULL);
    req = get(stub_url("/echo", u, sizeof(u)), 200);
    t0 = util_mono_ms();
    assert_int_equal(httpc_request(curl, &req, &body, &res, err, sizeof(err)), -1);
    assert_true(util_mono_ms() - t0 < 1200);
    assert_int_equal(res.rc, CURLE_OPERATION_TIMEDOUT);
    assert_int_equal(res.status, 0);
    assert_int_equal(res.sent, 1);          /* connected: the request went */
    assert_non_null(strstr(err, "timed out"));
    assert_printable(err);

    /* the handle still works */
    stub_set(200, "{}", 0, 0, NULL);
    req.timeout_ms = 5000;
    assert_int_equal(httpc_request(curl, &req, &body, &res, err, sizeof(err)), 0);
    assert_int_equal(res.status, 200);
}

static void test_refused_and_dropped(void **state)
{
    httpc_result_t res;
    httpc_request_t req;
    char u[128], err[256];

    (void)state;
    /* refused: certainly not sent */
    assert_int_equal(stub_refused_url("/echo", u, sizeof(u)), 0);
    req = get(u, 2000);
    assert_int_equal(httpc_request(curl, &req, &body, &res, err, sizeof(err)), -1);
    assert_int_equal(res.rc, CURLE_COULDNT_CONNECT);
    assert_int_equal(res.sent, 0);
    assert_int_equal(res.status, 0);
    assert_non_null(strstr(err, "onnect"));
    assert_printable(err);

    /* a name that does not resolve: not sent either */
    req = get("http://nowhere.invalid/echo", 2000);
    assert_int_equal(httpc_request(curl, &req, &body, &res, err, sizeof(err)), -1);
    assert_int_equal(res.sent, 0);
    assert_true(err[0] != '\0');

    /* the connection closed without an answer: it may have gone */
    stub_set(0, "{}", 0, 0, NULL);
    req = get(stub_url("/echo", u, sizeof(u)), 2000);
    assert_int_equal(httpc_request(curl, &req, &body, &res, err, sizeof(err)), -1);
    assert_int_equal(res.rc, CURLE_GOT_NOTHING);
    assert_int_equal(res.sent, 1);
    assert_string_equal(err, "Empty reply from server");
}

static void test_bad_requests(void **state)
{
    strbuf_t unbounded = STRBUF_INIT;
    httpc_result_t res;
    httpc_request_t req;
    char u[128], err[256];
    int before = seen().requests;

    (void)state;
    /* only http and https; curl's words are made printable (it quotes the scheme) */
    req = get("file:///etc/hostname", 2000);
    assert_int_equal(httpc_request(curl, &req, &body, &res, err, sizeof(err)), -1);
    assert_int_equal(res.rc, CURLE_UNSUPPORTED_PROTOCOL);
    assert_int_equal(res.sent, 0);
    assert_non_null(strstr(err, "rotocol"));
    assert_printable(err);
    req = get("ftp://127.0.0.1/echo", 2000);
    assert_int_equal(httpc_request(curl, &req, &body, &res, err, sizeof(err)), -1);
    assert_non_null(strstr(err, "rotocol"));
    req = get("not a url", 2000);
    assert_int_equal(httpc_request(curl, &req, &body, &res, err, sizeof(err)), -1);
    assert_true(err[0] != '\0');

    /* the caller's mistakes: no request at all */
    req = get(stub_url("/echo", u, sizeof(u)), 2000);
    assert_int_equal(httpc_request(NULL, &req, &body, &res, err, sizeof(err)), -1);
    assert_string_equal(err, "no curl handle, URL, timeout or body limit");
    assert_int_equal(res.rc, CURLE_FAILED_INIT);
    assert_int_equal(res.sent, 0);
    assert_int_equal(httpc_request(curl, NULL, &body, &res, err, sizeof(err)), -1);
    assert_int_equal(httpc_request(curl, &req, NULL, &res, err, sizeof(err)), -1);
    assert_int_equal(httpc_request(curl, &req, &unbounded, &res, err, sizeof(err)), -1);
    req.timeout_ms = 0;
    assert_int_equal(httpc_request(curl, &req, &body, &res, err, sizeof(err)), -1);
    req = get(NULL, 2000);
    assert_int_equal(httpc_request(curl, &req, &body, &res, err, sizeof(err)), -1);
    assert_string_equal(err, "no curl handle, URL, timeout or body limit");
    assert_int_equal(seen().requests, before);

    /* and the handle still works after all that */
    stub_set(200, "{}", 0, 0, NULL);
    req = get(u, 5000);
    assert_int_equal(httpc_request(curl, &req, &body, &res, err, sizeof(err)), 0);
    assert_int_equal(res.status, 200);
}

/* ---------------------------------------------------------------------------------- */
/* Text and forms */

static void test_printable_and_errf(void **state)
{
    char text[] = "a\"b\\c\nd\te\x01\x7f\xc3\xa9 ok ~";
    char err[16], small[8];

    (void)state;
    httpc_printable(text);
    assert_string_equal(text, "a?b?c?d?e???? ok ~");
    httpc_printable(NULL);

    httpc_errf(err, sizeof(err), "x=%s n=%d", "\"q\"", 7);
    assert_string_equal(err, "x=?q? n=7");
    /* cut, never overrun; NULL and 0 are fine */
    memset(small, 'X', sizeof(small));
    httpc_errf(small, sizeof(small) - 1, "%s", "0123456789");
    assert_string_equal(small, "012345");
    assert_int_equal(small[sizeof(small) - 1], 'X');
    httpc_errf(NULL, 0, "%s", "nothing");
    httpc_errf(err, 0, "%s", "nothing");
    assert_string_equal(err, "x=?q? n=7");
}

static void test_form_add(void **state)
{
    strbuf_t form = STRBUF_INIT, small;

    (void)state;
    assert_int_equal(httpc_form_add(&form, "To", "+821012341234"), 0);
    assert_string_equal(form.buf, "To=%2B821012341234");
    assert_int_equal(httpc_form_add(&form, "DateSent>", "2026-11-22"), 0);
    assert_int_equal(httpc_form_add(&form, "Body", "a b&c=d%e/\xec\x95\x88 -._~"), 0);
    assert_int_equal(httpc_form_add(&form, "Empty", ""), 0);
    assert_int_equal(httpc_form_add(&form, "Null", NULL), 0);
    assert_string_equal(form.buf, "To=%2B821012341234&DateSent>=2026-11-22&Body=a%20b%26c%3Dd"
                        "%25e%2F%EC%95%88%20-._~&Empty=&Null=");
    strbuf_release(&form);

    /* over the buffer's max: -1 and failed, the content as it was */
    strbuf_init(&small, 12);
    assert_int_equal(httpc_form_add(&small, "To", "+8210"), 0);
    assert_int_equal(httpc_form_add(&small, "Body", "longer than that"), -1);
    assert_true(small.failed);
    strbuf_release(&small);
}

int main(void)
{
    const struct CMUnitTest pure[] = {
        cmocka_unit_test(test_printable_and_errf),
        cmocka_unit_test(test_form_add),
    };
    const struct CMUnitTest requests[] = {
        cmocka_unit_test_setup_teardown(test_get_ok, setup_handle, teardown_handle),
        cmocka_unit_test_setup_teardown(test_request_options, setup_handle, teardown_handle),
        cmocka_unit_test_setup_teardown(test_body_limit, setup_handle, teardown_handle),
        cmocka_unit_test_setup_teardown(test_non_2xx, setup_handle, teardown_handle),
        cmocka_unit_test_setup_teardown(test_timeout, setup_handle, teardown_handle),
        cmocka_unit_test_setup_teardown(test_refused_and_dropped, setup_handle, teardown_handle),
        cmocka_unit_test_setup_teardown(test_bad_requests, setup_handle, teardown_handle),
    };
    int failed;

    setenv("LOG_LEVEL", "error", 0);    /* the stub's request lines are noise */
    log_init("test_httpc");
    curl_global_init(CURL_GLOBAL_DEFAULT);
    failed = cmocka_run_group_tests_name("httpc text", pure, NULL, NULL);
    failed += cmocka_run_group_tests_name("httpc_request", requests, start_server,
                                          stop_server);
    curl_global_cleanup();
    return failed;
}
