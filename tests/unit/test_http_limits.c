/* Unit tests for the HTTP server's limits (libcommon/http.c): the deadline for a whole
 * request that a trickling client cannot extend, the per-client connection cap, oversize
 * headers answered with a JSON 431, /livez and /readyz (with the reason when not ready),
 * and workers: a blocked handler does not hold up the other connections of its I/O
 * thread. Plain sockets, so that the client can be as slow or as rude as it likes. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "http.h"
#include "log.h"
#include "util.h"

static int g_ready = 1;

static void h_ok(const http_request_t *req, http_response_t *res, void *ctx)
{
    (void)req;
    (void)ctx;
    http_json(res, 200, json_pack("{s:s}", "hello", "world"));
}

static int ready(void *ctx, char *errstr, size_t errstr_size)
{
    (void)ctx;
    if (g_ready)
        return 0;
    snprintf(errstr, errstr_size, "PostgreSQL: connection refused");
    return -1;
}

static const http_route_t routes[] = { { "GET", "/hello", h_ok } };

/* GET /block: waits until released (test_workers_*). */
static pthread_mutex_t g_mu = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t g_cv = PTHREAD_COND_INITIALIZER;
static int g_blocked, g_released;

static void h_block(const http_request_t *req, http_response_t *res, void *ctx)
{
    (void)req;
    (void)ctx;
    pthread_mutex_lock(&g_mu);
    g_blocked++;
    pthread_cond_broadcast(&g_cv);
    while (!g_released)
        pthread_cond_wait(&g_cv, &g_mu);
    pthread_mutex_unlock(&g_mu);
    http_json(res, 200, json_pack("{s:s}", "blocked", "no more"));
}

static void release(int released)
{
    pthread_mutex_lock(&g_mu);
    g_released = released;
    pthread_cond_broadcast(&g_cv);
    pthread_mutex_unlock(&g_mu);
}

/* Waits (5 s at most) until n handlers of GET /block are waiting: each arrival signals
 * g_cv. */
static void wait_blocked(int n)
{
    struct timespec until;

    clock_gettime(CLOCK_REALTIME, &until); /* g_cv's clock */
    until.tv_sec += 5;
    pthread_mutex_lock(&g_mu);
    while (g_blocked < n && pthread_cond_timedwait(&g_cv, &g_mu, &until) == 0)
        ;
    assert_int_equal(g_blocked, n);
    pthread_mutex_unlock(&g_mu);
}

static const http_route_t block_routes[] = {
    { "GET", "/hello", h_ok },
    { "GET", "/block", h_block },
};

/* Starts a server on 127.0.0.1 with o (its bind address set here), or fails the test. */
static http_server_t *start_opts(http_server_opts_t *o)
{
    char err[256] = "";
    http_server_t *srv;

    o->bind_addr = "127.0.0.1";
    srv = http_server_start_opts(o, err, sizeof(err));
    if (srv == NULL)
        fail_msg("http_server_start_opts: %s", err);
    return srv;
}

static http_server_t *start(long long timeout_ms, int per_client)
{
    http_server_opts_t o;

    memset(&o, 0, sizeof(o));
    o.routes = routes;
    o.nroutes = 1;
    o.health = ready;
    o.threads = 2;
    o.request_timeout_ms = timeout_ms;
    o.max_per_client = per_client;
    return start_opts(&o);
}

static int dial(int port)
{
    struct sockaddr_in sa;
    int fd = socket(AF_INET, SOCK_STREAM, 0);

    assert_true(fd >= 0);
    memset(&sa, 0, sizeof(sa));
    sa.sin_family = AF_INET;
    sa.sin_port = htons((uint16_t)port);
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    assert_int_equal(connect(fd, (struct sockaddr *)&sa, sizeof(sa)), 0);
    return fd;
}

static void send_all(int fd, const char *s, size_t len)
{
    while (len > 0) {
        ssize_t n = send(fd, s, len, MSG_NOSIGNAL);

        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            return; /* the server closed: the caller's read says so */
        s += n;
        len -= (size_t)n;
    }
}

/* Reads until the peer closes or timeout_ms passes. Returns the bytes read (NUL-terminated
 * in buf), or -1 when the peer did not close within the time. */
static long read_until_close(int fd, char *buf, size_t size, int timeout_ms)
{
    int64_t until = util_mono_ms() + timeout_ms;
    size_t used = 0;

    buf[0] = '\0';
    for (;;) {
        struct pollfd p = { fd, POLLIN, 0 };
        int64_t left = until - util_mono_ms();
        ssize_t n;

        if (left <= 0)
            return -1;
        if (poll(&p, 1, (int)left) <= 0)
            continue;
        n = recv(fd, buf + used, size - 1 - used, 0);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0 || used + (size_t)n >= size - 1) {
            if (n > 0)
                used += (size_t)n;
            buf[used] = '\0';
            return (long)used;
        }
        used += (size_t)n;
        buf[used] = '\0';
    }
}

/* The status code of the HTTP answer in buf, or -1. */
static int atoi_status(const char *buf)
{
    char *end = NULL;
    long v;

    if (strncmp(buf, "HTTP/1.", 7) != 0 || strlen(buf) < 12)
        return -1;
    v = strtol(buf + 9, &end, 10);
    return end == buf + 12 ? (int)v : -1;
}

/* One request on a fresh connection (Connection: close); the answer is in buf. */
static int exchange(int port, const char *request, char *buf, size_t size)
{
    int fd = dial(port);
    long n;

    send_all(fd, request, strlen(request));
    n = read_until_close(fd, buf, size, 5000);
    close(fd);
    if (n < 0)
        fail_msg("no answer to %.40s", request);
    return atoi_status(buf);
}

static void test_deadline_cannot_be_extended(void **state)
{
    http_server_t *srv = start(600, 0);
    int port = http_server_port(srv);
    int fd = dial(port);
    int64_t t0 = util_mono_ms(), closed_at = 0;
    char buf[4096];
    int i;

    (void)state;
    send_all(fd, "GET /hello HTTP/1.1\r\nHost: x\r\n", 30);
    /* A header line every 100 ms: MHD's inactivity timeout would never fire. */
    for (i = 0; i < 40 && closed_at == 0; i++) {
        struct pollfd p = { fd, POLLIN, 0 };

        send_all(fd, "X-Slow: yes\r\n", 13);
        if (poll(&p, 1, 100) > 0 && recv(fd, buf, sizeof(buf), 0) <= 0)
            closed_at = util_mono_ms();
    }
    close(fd);
    if (closed_at == 0)
        fail_msg("a trickling client kept its connection for 4 s past a 600 ms deadline");
    assert_true(closed_at - t0 >= 500);
    assert_true(closed_at - t0 < 2500);

    /* a prompt client is still served */
    assert_int_equal(exchange(port, "GET /hello HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
                              buf, sizeof(buf)), 200);
    http_server_stop(srv);
}

static void test_per_client_cap(void **state)
{
    http_server_t *srv = start(5000, 3);
    int port = http_server_port(srv);
    int fds[3], extra, i;
    char buf[4096];
    long n;

    (void)state;
    for (i = 0; i < 3; i++)
        fds[i] = dial(port);
    /* the fourth from the same address is accepted by the kernel and closed by MHD */
    extra = dial(port);
    send_all(extra, "GET /hello HTTP/1.1\r\nHost: x\r\n\r\n", 32);
    n = read_until_close(extra, buf, sizeof(buf), 3000);
    close(extra);
    assert_int_equal(n, 0);

    close(fds[0]);
    /* the slot comes back once MHD has seen the close */
    for (i = 0; i < 50; i++) {
        int fd = dial(port);

        send_all(fd, "GET /hello HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n", 51);
        n = read_until_close(fd, buf, sizeof(buf), 3000);
        close(fd);
        if (n > 0)
            break;
        util_sleep_ms(50, NULL);
    }
    assert_true(n > 0);
    assert_int_equal(atoi_status(buf), 200);
    close(fds[1]);
    close(fds[2]);
    http_server_stop(srv);
}

static void test_oversize_headers_get_json_431(void **state)
{
    http_server_t *srv = start(5000, 0);
    static const char head[] = "GET /hello HTTP/1.1\r\nHost: x\r\nConnection: close\r\n"
                               "X-Big: ";
    size_t big = HTTP_MAX_HEADERS_BYTES + 100, hl = sizeof(head) - 1;
    char *req = malloc(hl + big + 5);
    char buf[4096];

    (void)state;
    assert_non_null(req);
    memcpy(req, head, hl);
    memset(req + hl, 'a', big);
    memcpy(req + hl + big, "\r\n\r\n", 5);
    assert_int_equal(exchange(http_server_port(srv), req, buf, sizeof(buf)), 431);
    assert_non_null(strstr(buf, "application/json"));
    assert_non_null(strstr(buf, "request headers are larger than"));
    free(req);
    http_server_stop(srv);
}

static void test_livez_readyz(void **state)
{
    http_server_t *srv = start(5000, 0);
    int port = http_server_port(srv);
    char buf[4096];

    (void)state;
    g_ready = 0;
    assert_int_equal(exchange(port, "GET /livez HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
                              buf, sizeof(buf)), 200);
    assert_non_null(strstr(buf, "\"status\":\"live\""));
    assert_int_equal(exchange(port, "GET /readyz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
                              buf, sizeof(buf)), 503);
    assert_non_null(strstr(buf, "\"reason\":\"PostgreSQL: connection refused\""));
    assert_int_equal(exchange(port, "GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
                              buf, sizeof(buf)), 503);
    g_ready = 1;
    assert_int_equal(exchange(port, "GET /readyz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
                              buf, sizeof(buf)), 200);
    assert_int_equal(exchange(port, "POST /livez HTTP/1.1\r\nHost: x\r\nConnection: close\r\n"
                                    "Content-Length: 0\r\n\r\n", buf, sizeof(buf)), 405);
    http_server_stop(srv);
}

static void test_small_limit_with_more_threads(void **state)
{
    http_server_opts_t o;
    char buf[4096];
    http_server_t *srv;

    (void)state;
    memset(&o, 0, sizeof(o));
    o.routes = routes;
    o.nroutes = 1;
    o.threads = 8;
    o.max_connections = 2;
    srv = start_opts(&o);
    assert_int_equal(exchange(http_server_port(srv),
                              "GET /hello HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
                              buf, sizeof(buf)), 200);
    http_server_stop(srv);
}

static http_server_t *start_workers(int workers)
{
    http_server_opts_t o;

    memset(&o, 0, sizeof(o));
    o.routes = block_routes;
    o.nroutes = 2;
    o.threads = 1; /* one I/O thread: every connection is its */
    o.workers = workers;
    return start_opts(&o);
}

static const char block_req[] = "GET /block HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n";
static const char hello_req[] = "GET /hello HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n";

static void test_workers_free_the_io_thread(void **state)
{
    http_server_t *srv;
    char buf[4096];
    int blocked_fd;

    (void)state;
    g_blocked = 0;
    release(0);
    srv = start_workers(2);
    blocked_fd = dial(http_server_port(srv));
    send_all(blocked_fd, block_req, strlen(block_req));
    wait_blocked(1);
    /* The one I/O thread is free: another connection is answered meanwhile, and so are
     * the probes. Without workers this would wait for the blocked handler. */
    assert_int_equal(exchange(http_server_port(srv), hello_req, buf, sizeof(buf)), 200);
    assert_non_null(strstr(buf, "world"));
    assert_int_equal(exchange(http_server_port(srv), "GET /livez HTTP/1.1\r\nHost: x\r\n"
                              "Connection: close\r\n\r\n", buf, sizeof(buf)), 200);
    release(1);
    /* ... and the blocked one gets its own answer once its handler returns. */
    assert_true(read_until_close(blocked_fd, buf, sizeof(buf), 5000) > 0);
    assert_int_equal(atoi_status(buf), 200);
    assert_non_null(strstr(buf, "no more"));
    close(blocked_fd);
    http_server_stop(srv);
}

static void *release_later(void *arg)
{
    (void)arg;
    poll(NULL, 0, 200);
    release(1);
    return NULL;
}

static void test_workers_stop_waits_for_running_handlers(void **state)
{
    http_server_t *srv;
    pthread_t t;
    char buf[4096];
    int fds[3];

    (void)state;
    g_blocked = 0;
    release(0);
    srv = start_workers(2);
    /* two handlers running, one request queued behind them */
    for (int i = 0; i < 3; i++) {
        fds[i] = dial(http_server_port(srv));
        send_all(fds[i], block_req, strlen(block_req));
    }
    wait_blocked(2);
    assert_int_equal(pthread_create(&t, NULL, &release_later, NULL), 0);
    http_server_stop(srv); /* returns once every handler has (ASan: no request freed under
                            * a handler) */
    pthread_join(t, NULL);
    assert_int_equal(g_blocked, 3);
    for (int i = 0; i < 3; i++) {
        read_until_close(fds[i], buf, sizeof(buf), 5000);
        close(fds[i]);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_deadline_cannot_be_extended),
        cmocka_unit_test(test_per_client_cap),
        cmocka_unit_test(test_oversize_headers_get_json_431),
        cmocka_unit_test(test_livez_readyz),
        cmocka_unit_test(test_small_limit_with_more_threads),
        cmocka_unit_test(test_workers_free_the_io_thread),
        cmocka_unit_test(test_workers_stop_waits_for_running_handlers),
    };

    log_init("test_http_limits");
    return cmocka_run_group_tests(tests, NULL, NULL);
}
