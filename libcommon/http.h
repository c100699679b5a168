/* http: an HTTP/JSON server on libmicrohttpd: routes by method and path, JSON bodies up to
 * 16 KiB, JSON errors, GET /livez, GET /readyz (and its alias /healthz), and GET /metrics
 * when given a metrics registry. Event-driven (epoll, a pool of threads), with a deadline
 * for each whole request and a per-client connection cap, so that slow clients cannot
 * take every slot. */
#ifndef DOZEN_HTTP_H
#define DOZEN_HTTP_H

#include <stddef.h>
#include <jansson.h>

#define HTTP_MAX_BODY (16 * 1024)
#define HTTP_MAX_PARAMS 4
#define HTTP_MAX_HEADERS_BYTES (16 * 1024) /* names and values of all request headers;
                                            * more: 431 */

/* Defaults of http_server_opts_t's limits (svc.c reads them from HTTP_* variables). */
#define HTTP_DEFAULT_THREADS         16
#define HTTP_MAX_WORKERS             256
#define HTTP_DEFAULT_REQUEST_TIMEOUT_MS 10000
#define HTTP_FD_RESERVE              256  /* descriptors kept for Kafka, PostgreSQL, files */

struct MHD_Connection;

typedef struct http_request {
    const char *method;                    /* "GET", "POST", ... */
    const char *path;                      /* without the query string */
    const char *params[HTTP_MAX_PARAMS];   /* values of the {..} segments, in order */
    int nparams;
    const char *body;                      /* NUL-terminated; "" when there is none */
    size_t body_len;
    struct MHD_Connection *conn;           /* for http_header() */
} http_request_t;

typedef struct http_response {
    int status;
    json_t *body;          /* owned by the response; the server sends and frees it */
    char location[256];    /* optional Location header; "" for none */
    char www_authenticate[64]; /* optional WWW-Authenticate header; "" for none
                                * (set by http_check_bearer) */
    long retry_after;      /* above 0: a Retry-After header of that many seconds */
    char *text;            /* NULL, or (http_text) text_len bytes sent as they are instead
                            * of body, with content_type; owned, freed by the server */
    size_t text_len;
    char content_type[64];
    int drop;              /* non-zero: close the connection without any answer (body is
                            * released, status ignored), so the client sees an empty reply
                            * or a reset: for stand-ins that must "refuse" a call */
} http_response_t;

/* A route handler fills res (see http_json / http_error). Everything in req is borrowed
 * for the duration of the call. It runs on one of the server's threads and may block. */
typedef void (*http_handler_fn)(const http_request_t *req, http_response_t *res, void *ctx);

/* Readiness callback for GET /readyz (and /healthz): returns 0 when ready, else -1 with
 * errstr saying why, which is sent in the 503 body as "reason". */
typedef int (*http_health_fn)(void *ctx, char *errstr, size_t errstr_size);

typedef struct http_route {
    const char *method;   /* "GET", "POST", "PUT", "DELETE" */
    const char *pattern;  /* "/orders", "/orders/{id}": a {..} segment matches one segment */
    http_handler_fn fn;
} http_route_t;

typedef struct http_server http_server_t;
struct metrics;

/* Everything http_server_start_opts takes; borrowed pointers must outlive the server. */
typedef struct http_server_opts {
    const char *bind_addr;
    int port;
    const http_route_t *routes;
    size_t nroutes;
    http_health_fn health;       /* /readyz and /healthz; may be NULL (always ready) */
    void *health_ctx;            /* passed to health; NULL: ctx */
    void *ctx;
    struct metrics *metrics;     /* NULL, or: GET /metrics renders it, and every request is
                                  * counted in dozen_http_request_duration_seconds{route,
                                  * method,code} (route: the matched pattern, "/healthz",
                                  * "/metrics" or "unmatched"; code: "2xx".."5xx") and
                                  * dozen_http_requests_in_flight */
    int thread_per_connection;   /* 1: one thread per connection (the stand-ins, whose
                                  * handlers sleep on purpose to play a slow system);
                                  * 0: epoll with a pool of `threads` threads */
    int threads;                 /* pool size; 0: HTTP_DEFAULT_THREADS */
    int workers;                 /* epoll only: 0, handlers run on the pool's threads (one
                                  * that blocks holds up the other connections its thread
                                  * serves); else that many threads (at most
                                  * HTTP_MAX_WORKERS) run the routes' handlers, in arrival
                                  * order, each connection suspended while its handler
                                  * runs. /livez, /readyz, /healthz and /metrics are always
                                  * answered on the pool's threads. */
    long long request_timeout_ms; /* deadline for a whole request, from its first byte (or
                                  * the end of the previous answer on the connection) to
                                  * the end of its body, and again for sending the answer;
                                  * a connection past it is closed. Time in a handler does
                                  * not count. 0: HTTP_DEFAULT_REQUEST_TIMEOUT_MS */
    int max_connections;         /* 0: as many as descriptors allow (the soft
                                  * RLIMIT_NOFILE, raised to the hard one, less
                                  * HTTP_FD_RESERVE); else at most that */
    int max_per_client;          /* connections from one IP address; 0: half of the
                                  * connection limit */
} http_server_opts_t;

/* http_server_start with every option; see there. */
http_server_t *http_server_start_opts(const http_server_opts_t *opts,
                                      char *errstr, size_t errstr_size);

/* Starts a server on bind_addr:port (an IPv4 address such as "127.0.0.1" or "0.0.0.0"),
 * one thread per connection (for the stand-ins), default limits. Unknown path: 404; known
 * path, wrong method: 405 with Allow; body over HTTP_MAX_BODY: 413; headers over
 * HTTP_MAX_HEADERS_BYTES: 431; GET /livez: 200; GET /readyz and /healthz call health (which
 * may be NULL): 200, or 503 with the reason. routes and ctx are borrowed and must outlive
 * the server. May raise the process's soft RLIMIT_NOFILE to the hard limit. Returns NULL
 * with errstr on failure. */
http_server_t *http_server_start(const char *bind_addr, int port,
                                 const http_route_t *routes, size_t nroutes,
                                 http_health_fn health, void *ctx,
                                 char *errstr, size_t errstr_size);

/* Returns the TCP port the server listens on (useful after starting on port 0), or -1. */
int http_server_port(const http_server_t *srv);

/* Stops accepting, waits for running handlers to finish, frees the server. Accepts NULL. */
void http_server_stop(http_server_t *srv);

/* Returns the value of a request header (case-insensitive name), or NULL. Borrowed. */
const char *http_header(const http_request_t *req, const char *name);

/* Writes the peer's IP address ("127.0.0.1", "::1") into out (at least 46 bytes: IPv6).
 * The socket's peer, not X-Forwarded-For (which any client can write). Returns 0, or -1
 * with out "" when it is not known. */
int http_client_ip(const http_request_t *req, char *out, size_t out_size);

/* Returns the (decoded) value of query-string argument name, or NULL when it is absent or
 * has no value ("?name"). Borrowed, valid for the duration of the handler call. */
const char *http_query(const http_request_t *req, const char *name);

/* Sets the response: status and len bytes of data (copied) of another type than JSON
 * (content_type, "application/xml;charset=UTF-8"), for stand-ins of systems that do not
 * speak JSON. Out of memory gives a 500. */
void http_text(http_response_t *res, int status, const char *content_type, const char *data,
               size_t len);

/* Sets the response: status and body. Steals the reference to body. */
void http_json(http_response_t *res, int status, json_t *body);

/* Sets an error response {"error": "<formatted text>"}. */
void http_error(http_response_t *res, int status, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* Parses the request body as a JSON object. Returns a new reference, or NULL after setting a
 * 400 response that says what is wrong (empty body, not JSON with line/column, not an
 * object). */
json_t *http_body_object(const http_request_t *req, http_response_t *res);

/* Compares a "Authorization: Bearer <token>" header against token in constant time.
 * Returns 1 when it matches, else 0 (and sets a 401 response). */
int http_check_bearer(const http_request_t *req, http_response_t *res, const char *token);

#endif
