/* http_stub: an HTTP server started inside a unit test (libcommon's, on a free port of
 * 127.0.0.1) that answers as the test last said: a status, a JSON document, padding, a
 * delay, a Location, or no answer at all. Header only, so that a test using it needs no
 * Makefile line; every function is static inline and the state lives in one function, so
 * a test that uses only part of it compiles without warnings. One server per test program;
 * stub_start before any request, stub_stop at the end. */
#ifndef DOZEN_TEST_HTTP_STUB_H
#define DOZEN_TEST_HTTP_STUB_H

#include <netinet/in.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include <jansson.h>
#include <microhttpd.h>

#include "http.h"
#include "util.h"

/* How the stub answers. */
typedef struct stub_answer {
    int status;             /* 0: drop the connection without an answer */
    const char *json;       /* the body, JSON text (any value); must outlive the request */
    size_t pad;             /* bytes of 'p' added as field "pad" to an object answer */
    long long slow_ms;      /* waits this long before answering */
    const char *location;   /* a Location header, or NULL */
} stub_answer_t;

struct http_stub {
    pthread_mutex_t lock;   /* guards answer: a slow handler may still read it */
    stub_answer_t answer;
    http_server_t *srv;
    char base[64];          /* "http://127.0.0.1:<port>" */
};

static inline struct http_stub *stub_state(void)
{
    static struct http_stub s = { PTHREAD_MUTEX_INITIALIZER, { 200, "{}", 0, 0, NULL },
                                  NULL, "" };

    return &s;
}

/* The next answers, until the next call. */
static inline void stub_set(int status, const char *json, size_t pad, long long slow_ms,
                            const char *location)
{
    struct http_stub *s = stub_state();

    pthread_mutex_lock(&s->lock);
    s->answer = (stub_answer_t){ status, json, pad, slow_ms, location };
    pthread_mutex_unlock(&s->lock);
}

/* A copy of the answer in force. */
static inline stub_answer_t stub_answer(void)
{
    struct http_stub *s = stub_state();
    stub_answer_t a;

    pthread_mutex_lock(&s->lock);
    a = s->answer;
    pthread_mutex_unlock(&s->lock);
    return a;
}

/* Answers res as a says. Runs on the server's thread: no cmocka assertion here. */
static inline void stub_reply(http_response_t *res, const stub_answer_t *a)
{
    json_t *doc;    /* owned until http_json takes it */

    if (a->slow_ms > 0)
        util_sleep_ms(a->slow_ms, NULL);
    if (a->status == 0) {
        res->drop = 1;
        return;
    }
    doc = json_loads(a->json != NULL ? a->json : "", JSON_DECODE_ANY, NULL);
    if (doc == NULL) {
        http_error(res, 500, "bad test document");
        return;
    }
    if (a->pad > 0 && json_is_object(doc)) {
        char *pad = malloc(a->pad + 1);

        if (pad == NULL) {
            json_decref(doc);
            http_error(res, 500, "out of memory");
            return;
        }
        memset(pad, 'p', a->pad);
        pad[a->pad] = '\0';
        json_object_set_new(doc, "pad", json_string(pad));
        free(pad);
    }
    if (a->location != NULL)
        snprintf(res->location, sizeof(res->location), "%s", a->location);
    http_json(res, a->status, doc);
}

/* For a handler that records what a request carried: copies s (a header, a query
 * parameter, the body; "(none)" when NULL) into out, cut to out_size. */
static inline void stub_copy(char *out, size_t out_size, const char *s)
{
    snprintf(out, out_size, "%s", s != NULL ? s : "(none)");
}

/* The client's TCP port of req's connection (to see a connection kept alive), or -1. */
static inline int stub_client_port(const http_request_t *req)
{
    const union MHD_ConnectionInfo *ci =
        MHD_get_connection_info(req->conn, MHD_CONNECTION_INFO_CLIENT_ADDRESS);

    return ci != NULL && ci->client_addr->sa_family == AF_INET
        ? ntohs(((const struct sockaddr_in *)(const void *)ci->client_addr)->sin_port) : -1;
}

/* A route handler that answers with the answer in force. */
static inline void stub_handler(const http_request_t *req, http_response_t *res, void *ctx)
{
    stub_answer_t a = stub_answer();

    (void)req;
    (void)ctx;
    stub_reply(res, &a);
}

/* Starts the stub with the test's routes (borrowed; they must outlive the stub). Returns 0,
 * or -1 after saying why on stderr (for a cmocka group setup). */
static inline int stub_start(const http_route_t *routes, size_t nroutes)
{
    struct http_stub *s = stub_state();
    char err[256] = "";

    s->srv = http_server_start("127.0.0.1", 0, routes, nroutes, NULL, NULL, err, sizeof(err));
    if (s->srv == NULL) {
        fprintf(stderr, "cannot start the test server: %s\n", err);
        return -1;
    }
    snprintf(s->base, sizeof(s->base), "http://127.0.0.1:%d", http_server_port(s->srv));
    return 0;
}

static inline void stub_stop(void)
{
    struct http_stub *s = stub_state();

    http_server_stop(s->srv);
    s->srv = NULL;
}

/* "http://127.0.0.1:<port>" of the running stub. */
static inline const char *stub_base(void)
{
    return stub_state()->base;
}

/* Writes base + path into out and returns out. */
static inline const char *stub_url(const char *path, char *out, size_t out_size)
{
    snprintf(out, out_size, "%s%s", stub_state()->base, path);
    return out;
}

/* Writes "http://127.0.0.1:<port><path>" for a port that was just given up (a connection
 * is refused there) into out. Returns 0, or -1 if no server could be started. */
static inline int stub_refused_url(const char *path, char *out, size_t out_size)
{
    static const http_route_t none[] = { { "GET", "/", stub_handler } };
    char err[256] = "";
    http_server_t *other = http_server_start("127.0.0.1", 0, none, 1, NULL, NULL, err,
                                             sizeof(err));

    if (other == NULL)
        return -1;
    snprintf(out, out_size, "http://127.0.0.1:%d%s", http_server_port(other), path);
    http_server_stop(other);
    return 0;
}

#endif
