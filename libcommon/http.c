/* http: the JSON-over-HTTP server on libmicrohttpd: the daemon (epoll and a thread pool),
 * the request deadline, bounded headers and bodies, dispatch, /livez, /readyz (/healthz)
 * and /metrics. Paths are split and matched in http_path.c, answers and request helpers
 * are in http_reply.c. */
#include "http.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <time.h>

#include <microhttpd.h>

#include "http_int.h"
#include "log.h"
#include "trace.h"
#include "metrics.h"
#include "strbuf.h"
#include "util.h"

#define HTTP_LOG_PATH_MAX         200  /* characters of the path shown in log lines */
#define HTTP_CONNECTION_MEMORY    (64 * 1024) /* MHD's per-connection pool: room for
                                               * HTTP_MAX_HEADERS_BYTES and more, so that
                                               * oversize headers reach on_request and get
                                               * a JSON 431, not MHD's HTML page */
#define HTTP_MAX_CONNECTIONS_CAP  65536
#define HTTP_REAP_INTERVAL_MS     250  /* how often the deadline is checked */

/*
 * One open connection, for the request deadline. MHD's own connection timeout is an
 * inactivity timeout that every byte resets, so a client sending a header line every few
 * seconds would hold its connection (and, with enough of them, every slot) forever. Each
 * connection therefore records when its current request began; the reaper thread shuts
 * down the socket of any connection past its deadline, and MHD then closes it as it would
 * a connection the client dropped. Created by on_connection(STARTED) and stored in MHD's
 * socket context, linked in srv->conns, unlinked and freed by on_connection(CLOSED),
 * which MHD calls before it closes the descriptor, so the reaper (which holds conns_lock
 * from looking up fd to shutdown()) never touches a descriptor reused by someone else.
 * Every field is guarded by srv->conns_lock.
 */
struct conn_entry {
    int fd;
    int64_t start_ms;         /* when the current request (or answer) began */
    int busy;                 /* a handler is running: the deadline is not counted */
    int reaped;               /* shut down already */
    struct conn_entry *prev, *next;
};

struct http_server {
    struct MHD_Daemon *daemon;
    const http_route_t *routes;   /* borrowed */
    size_t nroutes;
    http_health_fn health;
    void *health_ctx;             /* borrowed, passed to health */
    void *ctx;                    /* borrowed, passed to handlers */
    metrics_t *metrics;           /* borrowed; NULL: no /metrics, nothing counted */
    metric_t *in_flight;
    metric_t *deadline_closed;    /* dozen_http_deadline_closed_total; NULL without metrics */
    int64_t deadline_ms;
    pthread_mutex_t conns_lock;   /* guards conns, stopping and every conn_entry */
    pthread_cond_t reaper_wake;   /* signalled by http_server_stop */
    struct conn_entry *conns;
    int stopping;
    volatile int running;         /* set once the daemon has started (see on_mhd_log) */
    pthread_t reaper;
    pthread_mutex_t err_lock;     /* guards last_error: MHD logs from any thread */
    char last_error[512];         /* last message from MHD, for start-up errors */
    /* Workers (opts.workers > 0): route handlers run on them, their connections suspended
     * meanwhile, so that a blocking handler holds a worker, not an I/O thread with the
     * other connections it serves. */
    pthread_t *workers;
    int nworkers;                 /* started */
    pthread_mutex_t jobs_lock;    /* guards the queue, jobs, jobs_closed, workers_stop */
    pthread_cond_t jobs_wake;     /* a job queued, or the workers are to stop */
    pthread_cond_t jobs_idle;     /* jobs fell to 0 */
    struct request_ctx *job_head, *job_tail;
    int jobs;                     /* queued or running, until its connection is resumed */
    int jobs_closed;              /* stopping: handlers run on the I/O threads again */
    int workers_stop;
};

/*
 * One request. MHD unescapes the path it hands to the access handler, so "%2F" becomes a
 * '/' that can no longer be told from a separator, and "%00" silently cuts the path short
 * ("/orders/a%00b" would reach /orders/{id} with id "a"). The context is therefore created
 * in the URI log callback, which sees the request target as sent, and the router splits
 * that raw path on '/' and percent-decodes each segment itself, refusing escapes that
 * decode to '/' or NUL. Query arguments are still decoded by MHD as usual.
 * Created by on_uri (owned by MHD's con_cls slot), freed by on_completed.
 */
struct request_ctx {
    char *raw_path;     /* request path as sent, without the query string; owned */
    int started;        /* the first access-handler call has been seen */
    int too_large;      /* the body exceeded HTTP_MAX_BODY and is being discarded */
    char *body;         /* HTTP_MAX_BODY + 1 bytes once data arrives, NUL-terminated */
    size_t body_len;
    /* A route's call on a worker: queued (JOB_QUEUED, its connection suspended), then
     * JOB_DONE with res filled; the access handler, called again after the resume,
     * answers. */
    enum { JOB_NONE, JOB_QUEUED, JOB_DONE, JOB_ANSWERED } job;
    const http_route_t *route;
    http_request_t req; /* req.conn: its connection */
    http_response_t res;
    char *segs;         /* the path's segments, which req.params point into; owned */
    enum MHD_Result answered; /* JOB_ANSWERED: what the answer's call returned */
    int64_t start_ms;
    struct request_ctx *next; /* in the job queue */
};

/* Copies s into out as a log value (LOG_Q: quoted, escaped, cut), so a client cannot break
 * the key=value format. */
static void log_safe(const char *s, char *out, size_t out_size)
{
    snprintf(out, out_size, "%s", LOG_Q(s != NULL ? s : "-"));
}

/* ---------------------------------------------------------------------------------- */
/* Responses */

/* Returns 1 when s may be sent as a header value: no control characters, so a handler
 * cannot split the response with a CR or LF. */
static int header_value_ok(const char *s)
{
    for (; *s != '\0'; s++) {
        if ((unsigned char)*s < 0x20 || *s == 0x7f)
            return 0;
    }
    return 1;
}

/* Serialises res (or a 500 when it has no body, a bad status or a bad header) and queues
 * it with Content-Type, Location, WWW-Authenticate and, when allow is not NULL, Allow.
 * Releases res->body. Returns MHD's verdict: MHD_NO closes the connection. */
static enum MHD_Result send_response(struct MHD_Connection *conn, const char *method,
                                     const char *log_path, http_response_t *res,
                                     const char *allow)
{
    static const char fallback[] = "{\"error\":\"internal error\"}";
    struct MHD_Response *mres = NULL;
    char *text = NULL;
    const char *data;
    size_t len;
    int status = res->status;
    enum MHD_Result ret = MHD_NO;

    if (res->body == NULL) {
        log_error("http_no_response method=%s path=%s", method, log_path);
    } else if (status < 200 || status > 599 || !header_value_ok(res->location) ||
               !header_value_ok(res->www_authenticate)) {
        log_error("http_bad_response method=%s path=%s status=%d", method, log_path,
                  status);
    } else if (res->text != NULL) {
        text = res->text;   /* http_text: sent as it is */
        res->text = NULL;
    } else {
        text = json_dumps(res->body, JSON_COMPACT); /* malloc'ed, freed below */
        if (text == NULL)
            log_error("http_json_dump_failed method=%s path=%s", method, log_path);
    }
    if (text == NULL) {
        res->location[0] = '\0';
        res->www_authenticate[0] = '\0';
        status = MHD_HTTP_INTERNAL_SERVER_ERROR;
        data = fallback;
        len = sizeof(fallback) - 1;
    } else {
        data = text;
        len = res->text_len > 0 ? res->text_len : strlen(text);
    }
    if (status == MHD_HTTP_NO_CONTENT || status == MHD_HTTP_NOT_MODIFIED)
        len = 0; /* these must not carry a body */

    mres = MHD_create_response_from_buffer(len, (void *)data, MHD_RESPMEM_MUST_COPY);
    if (mres == NULL) {
        log_error("http_response_alloc_failed method=%s path=%s", method, log_path);
        goto done;
    }
    if (len > 0 &&
        MHD_add_response_header(mres, MHD_HTTP_HEADER_CONTENT_TYPE,
                                text != NULL && res->content_type[0] != '\0'
                                ? res->content_type : "application/json") != MHD_YES)
        goto done;
    if (res->location[0] != '\0' &&
        MHD_add_response_header(mres, MHD_HTTP_HEADER_LOCATION, res->location) != MHD_YES)
        goto done;
    if (res->www_authenticate[0] != '\0' &&
        MHD_add_response_header(mres, MHD_HTTP_HEADER_WWW_AUTHENTICATE,
                                res->www_authenticate) != MHD_YES)
        goto done;
    if (allow != NULL && MHD_add_response_header(mres, MHD_HTTP_HEADER_ALLOW, allow) != MHD_YES)
        goto done;
    if (res->retry_after > 0) {
        char ra[24];

        snprintf(ra, sizeof(ra), "%ld", res->retry_after);
        if (MHD_add_response_header(mres, MHD_HTTP_HEADER_RETRY_AFTER, ra) != MHD_YES)
            goto done;
    }

    ret = MHD_queue_response(conn, (unsigned int)status, mres);
    if (status >= 500)
        log_warn("http_request_failed method=%s path=%s status=%d", method, log_path, status);
    else
        log_debug("http_request method=%s path=%s status=%d", method, log_path, status);

done:
    if (ret != MHD_YES)
        log_error("http_queue_failed method=%s path=%s status=%d", method, log_path, status);
    if (mres != NULL)
        MHD_destroy_response(mres); /* a queued response keeps its own reference */
    free(text);
    free(res->text);
    res->text = NULL;
    json_decref(res->body);
    res->body = NULL;
    return ret;
}

/* Queues {"error": msg} with the given status. */
static enum MHD_Result send_error(struct MHD_Connection *conn, const char *method,
                                  const char *log_path, int status, const char *msg,
                                  const char *allow)
{
    http_response_t res;

    memset(&res, 0, sizeof(res));
    http_json(&res, status, http_error_body(msg));
    return send_response(conn, method, log_path, &res, allow);
}

static enum MHD_Result send_too_large(struct MHD_Connection *conn, const char *method,
                                      const char *log_path)
{
    char msg[64];

    snprintf(msg, sizeof(msg), "request body is larger than %d bytes", HTTP_MAX_BODY);
    return send_error(conn, method, log_path, MHD_HTTP_CONTENT_TOO_LARGE, msg, NULL);
}

/* Appends method to the comma-separated list in allow unless it is there already. */
static void allow_add(char *allow, size_t allow_size, const char *method)
{
    const char *p = allow;
    size_t mlen = strlen(method), used = strlen(allow);

    while (*p != '\0') {
        const char *end = strstr(p, ", ");
        size_t len = end != NULL ? (size_t)(end - p) : strlen(p);

        if (len == mlen && memcmp(p, method, len) == 0)
            return;
        if (end == NULL)
            break;
        p = end + 2;
    }
    /* The list is built from the server's own route table; a cut list would only
     * understate it, but refuse rather than send half a method name. */
    if (used + (used > 0 ? 2 : 0) + mlen + 1 > allow_size)
        return;
    if (used > 0) {
        memcpy(allow + used, ", ", 2);
        used += 2;
    }
    memcpy(allow + used, method, mlen + 1);
}

/* GET /readyz and /healthz: 200 {"status": "ok"}, or 503 {"status": "unavailable",
 * "reason": why, "error": why} ("error" as every other error body has it). GET /livez
 * (live set) answers 200 {"status": "live"} without asking anything: the process runs and
 * serves HTTP. */
static enum MHD_Result serve_health(struct http_server *srv, struct MHD_Connection *conn,
                                    const char *method, const char *log_path, int live,
                                    int *status)
{
    http_response_t res;
    char err[256] = "";
    json_t *body;

    memset(&res, 0, sizeof(res));
    if (live) {
        http_json(&res, MHD_HTTP_OK, json_pack("{s:s}", "status", "live"));
    } else if (srv->health == NULL || srv->health(srv->health_ctx, err, sizeof(err)) == 0) {
        body = json_pack("{s:s}", "status", "ok");
        http_json(&res, MHD_HTTP_OK, body);
    } else {
        const char *why = err[0] != '\0' ? err : "not ready";

        body = json_object();
        /* json_object_set_new consumes the value even when it fails */
        if (body != NULL &&
            (json_object_set_new(body, "status", json_string("unavailable")) != 0 ||
             json_object_set_new(body, "reason", http_safe_string(why)) != 0 ||
             json_object_set_new(body, "error", http_safe_string(why)) != 0)) {
            json_decref(body);
            body = NULL;
        }
        http_json(&res, MHD_HTTP_SERVICE_UNAVAILABLE, body);
    }
    *status = res.status;
    return send_response(conn, method, log_path, &res, NULL);
}

/* Queues a non-JSON answer (GET /metrics). */
static enum MHD_Result send_text(struct MHD_Connection *conn, const char *method,
                                 const char *log_path, int status, const char *content_type,
                                 const char *data, size_t len)
{
    struct MHD_Response *mres;
    enum MHD_Result ret = MHD_NO;

    mres = MHD_create_response_from_buffer(len, (void *)data, MHD_RESPMEM_MUST_COPY);
    if (mres != NULL &&
        MHD_add_response_header(mres, MHD_HTTP_HEADER_CONTENT_TYPE, content_type) == MHD_YES)
        ret = MHD_queue_response(conn, (unsigned int)status, mres);
    if (ret != MHD_YES)
        log_error("http_queue_failed method=%s path=%s status=%d", method, log_path,
                  status);
    if (mres != NULL)
        MHD_destroy_response(mres);
    return ret;
}

static enum MHD_Result serve_metrics(struct http_server *srv, struct MHD_Connection *conn,
                                     const char *method, const char *log_path)
{
    strbuf_t text;
    enum MHD_Result ret;

    strbuf_init(&text, 0);
    if (metrics_render(srv->metrics, &text) != 0) {
        strbuf_release(&text);
        return send_error(conn, method, log_path, MHD_HTTP_INTERNAL_SERVER_ERROR,
                          "out of memory", NULL);
    }
    ret = send_text(conn, method, log_path, MHD_HTTP_OK, METRICS_CONTENT_TYPE, text.buf,
                    text.len);
    strbuf_release(&text);
    return ret;
}

/* Counts one answered request (when the server has a registry). */
static void count_request(struct http_server *srv, const char *route, const char *method,
                          int status, int64_t start_ms)
{
    static const char *const known[] = { "GET", "POST", "PUT", "DELETE", "PATCH", "HEAD" };
    char labels[HTTP_LOG_PATH_MAX + 96];
    const char *m = "other";
    size_t i;

    if (srv->metrics == NULL)
        return;
    for (i = 0; i < sizeof(known) / sizeof(known[0]); i++)
        if (strcmp(method, known[i]) == 0)
            m = known[i];
    snprintf(labels, sizeof(labels), "route=%s,method=%s,code=%dxx", route, m,
             status >= 100 && status <= 599 ? status / 100 : 5);
    metric_observe(metrics_histogram(srv->metrics, "dozen_http_request_duration_seconds",
                                     "Time from a complete request to its queued answer, by "
                                     "route template, method and status class.",
                                     labels, metrics_latency_buckets,
                                     metrics_latency_nbuckets),
                   (double)(util_mono_ms() - start_ms) / 1000.0);
}

/* Runs a route's handler in the request's span: in the caller's trace (a W3C traceparent
 * header) or a new one. */
static void call_route(struct http_server *srv, const http_route_t *route,
                       const http_request_t *req, http_response_t *res)
{
    const char *tp = MHD_lookup_connection_value(req->conn, MHD_HEADER_KIND, "traceparent");

    trace_begin(tp, tp != NULL ? strlen(tp) : 0);
    route->fn(req, res, srv->ctx);
    trace_end();
}

/* Sends what a route's handler left in res (or closes the connection when it asked to
 * drop it); *status gets the status counted. */
static enum MHD_Result route_answer(struct MHD_Connection *conn, const char *log_method,
                                    const char *log_path, http_response_t *res, int *status)
{
    *status = res->body != NULL ? res->status : MHD_HTTP_INTERNAL_SERVER_ERROR;
    if (res->drop) {
        /* MHD_NO from the access handler closes the connection without a response. */
        json_decref(res->body);
        res->body = NULL;
        free(res->text);
        res->text = NULL;
        log_debug("http_request_dropped method=%s path=%s", log_method, log_path);
        return MHD_NO;
    }
    /* the handler may have filled the fixed buffers to the brim */
    res->location[sizeof(res->location) - 1] = '\0';
    res->www_authenticate[sizeof(res->www_authenticate) - 1] = '\0';
    return send_response(conn, log_method, log_path, res, NULL);
}

/* With workers: suspends conn and queues its route's call (req copied, segs owned from
 * now on). Returns 1, or 0 when the call is to run here (no workers, or stopping). */
static int job_queue(struct http_server *srv, struct request_ctx *rctx,
                     const http_route_t *route, const http_request_t *req, char *segs,
                     int64_t start_ms)
{
    if (srv->nworkers == 0)
        return 0;
    pthread_mutex_lock(&srv->jobs_lock);
    if (srv->jobs_closed) {
        pthread_mutex_unlock(&srv->jobs_lock);
        return 0;
    }
    rctx->job = JOB_QUEUED;
    rctx->route = route;
    rctx->req = *req;
    memset(&rctx->res, 0, sizeof(rctx->res));
    rctx->segs = segs;
    rctx->start_ms = start_ms;
    rctx->next = NULL;
    /* suspended before a worker can see it, so that its resume never comes first */
    MHD_suspend_connection(req->conn);
    if (srv->job_tail != NULL)
        srv->job_tail->next = rctx;
    else
        srv->job_head = rctx;
    srv->job_tail = rctx;
    srv->jobs++;
    pthread_cond_signal(&srv->jobs_wake);
    pthread_mutex_unlock(&srv->jobs_lock);
    return 1;
}

static void *worker_main(void *arg)
{
    struct http_server *srv = arg;

    pthread_mutex_lock(&srv->jobs_lock);
    for (;;) {
        struct request_ctx *rctx;

        while (srv->job_head == NULL && !srv->workers_stop)
            pthread_cond_wait(&srv->jobs_wake, &srv->jobs_lock);
        if (srv->job_head == NULL)
            break; /* stopping, and nothing left */
        rctx = srv->job_head;
        srv->job_head = rctx->next;
        if (srv->job_head == NULL)
            srv->job_tail = NULL;
        pthread_mutex_unlock(&srv->jobs_lock);

        call_route(srv, rctx->route, &rctx->req, &rctx->res);
        __atomic_store_n(&rctx->job, JOB_DONE, __ATOMIC_RELEASE);
        /* From here MHD may call the access handler again on its own thread, which
         * answers and may free rctx: nothing of it is touched after the resume. */
        MHD_resume_connection(rctx->req.conn);

        pthread_mutex_lock(&srv->jobs_lock);
        if (--srv->jobs == 0)
            pthread_cond_broadcast(&srv->jobs_idle);
    }
    pthread_mutex_unlock(&srv->jobs_lock);
    return NULL;
}

/* The access handler's call after a worker ran the route: answers and counts it. */
static enum MHD_Result job_finish(struct http_server *srv, struct MHD_Connection *conn,
                                  struct request_ctx *rctx, const char *log_method,
                                  const char *log_path)
{
    int status;
    enum MHD_Result ret = route_answer(conn, log_method, log_path, &rctx->res, &status);

    count_request(srv, rctx->route->pattern, rctx->req.method, status, rctx->start_ms);
    metric_add(srv->in_flight, -1);
    free(rctx->segs);
    rctx->segs = NULL;
    rctx->job = JOB_ANSWERED; /* its handler never runs again (see on_request) */
    rctx->answered = ret;
    return ret;
}

/* Routes a complete request and queues the answer, or (*queued = 1) hands the route's
 * call to a worker (job_queue), job_finish answering later. */
static enum MHD_Result dispatch(struct http_server *srv, struct MHD_Connection *conn,
                                const char *method, struct request_ctx *rctx,
                                const char *log_method, const char *log_path, int *queued)
{
    char *seg[HTTP_MAX_SEGMENTS];
    char allow[128] = "";
    char *buf = NULL;
    size_t nseg = 0, i;
    http_request_t req;
    http_response_t res;
    const http_route_t *route = NULL;
    enum http_split_result split;
    enum MHD_Result ret = MHD_NO;

    int64_t start_ms = util_mono_ms();
    const char *route_label = "unmatched";
    int status = MHD_HTTP_NOT_FOUND;

    memset(&req, 0, sizeof(req));
    memset(&res, 0, sizeof(res));
    metric_add(srv->in_flight, 1);

    if (rctx->raw_path[0] != '/') {
        ret = send_error(conn, log_method, log_path, MHD_HTTP_NOT_FOUND, "not found", NULL);
        goto done;
    }
    buf = malloc(strlen(rctx->raw_path) + 1);
    if (buf == NULL) {
        status = MHD_HTTP_INTERNAL_SERVER_ERROR;
        ret = send_error(conn, log_method, log_path, MHD_HTTP_INTERNAL_SERVER_ERROR,
                         "internal error", NULL);
        goto done;
    }
    split = http_path_split(rctx->raw_path, buf, seg, &nseg);
    if (split == HTTP_SPLIT_BAD) {
        status = MHD_HTTP_BAD_REQUEST;
        ret = send_error(conn, log_method, log_path, MHD_HTTP_BAD_REQUEST,
                         "malformed path: bad percent-encoding, an encoded '/' or NUL, "
                         "or a raw space or control character",
                         NULL);
        goto done;
    }
    if (split == HTTP_SPLIT_TOO_MANY) {
        ret = send_error(conn, log_method, log_path, MHD_HTTP_NOT_FOUND, "not found", NULL);
        goto done;
    }

    if (http_path_match("/healthz", seg, nseg, req.params, &req.nparams) ||
        http_path_match("/readyz", seg, nseg, req.params, &req.nparams) ||
        http_path_match("/livez", seg, nseg, req.params, &req.nparams)) {
        int live = strcmp(seg[0], "livez") == 0;

        route_label = live ? "/livez" : strcmp(seg[0], "readyz") == 0 ? "/readyz" : "/healthz";
        status = MHD_HTTP_METHOD_NOT_ALLOWED;
        if (strcmp(method, "GET") == 0)
            ret = serve_health(srv, conn, log_method, log_path, live, &status);
        else
            ret = send_error(conn, log_method, log_path, MHD_HTTP_METHOD_NOT_ALLOWED,
                             "method not allowed", "GET");
        goto done;
    }
    if (srv->metrics != NULL && http_path_match("/metrics", seg, nseg, req.params,
                                              &req.nparams)) {
        route_label = "/metrics";
        status = MHD_HTTP_METHOD_NOT_ALLOWED;
        if (strcmp(method, "GET") == 0) {
            status = MHD_HTTP_OK;
            ret = serve_metrics(srv, conn, log_method, log_path);
        } else {
            ret = send_error(conn, log_method, log_path, MHD_HTTP_METHOD_NOT_ALLOWED,
                             "method not allowed", "GET");
        }
        goto done;
    }

    for (i = 0; i < srv->nroutes; i++) {
        const char *params[HTTP_MAX_PARAMS];
        int nparams = 0;

        if (!http_path_match(srv->routes[i].pattern, seg, nseg, params, &nparams))
            continue;
        if (strcmp(srv->routes[i].method, method) == 0) {
            route = &srv->routes[i];
            memcpy(req.params, params, sizeof(params));
            req.nparams = nparams;
            break;
        }
        allow_add(allow, sizeof(allow), srv->routes[i].method);
    }

    if (route == NULL) {
        if (allow[0] != '\0')
            status = MHD_HTTP_METHOD_NOT_ALLOWED;
        if (allow[0] != '\0')
            ret = send_error(conn, log_method, log_path, MHD_HTTP_METHOD_NOT_ALLOWED,
                             "method not allowed", allow);
        else
            ret = send_error(conn, log_method, log_path, MHD_HTTP_NOT_FOUND, "not found",
                             NULL);
        goto done;
    }

    req.method = method;
    req.path = rctx->raw_path;
    req.body = rctx->body != NULL ? rctx->body : "";
    req.body_len = rctx->body_len;
    req.conn = conn;
    route_label = route->pattern;
    if (job_queue(srv, rctx, route, &req, buf, start_ms)) {
        *queued = 1; /* answered by route_answer once a worker has run it */
        return MHD_YES;
    }
    call_route(srv, route, &req, &res);
    ret = route_answer(conn, log_method, log_path, &res, &status);

done:
    count_request(srv, route_label, method, status, start_ms);
    metric_add(srv->in_flight, -1);
    free(buf);
    return ret;
}

/* ---------------------------------------------------------------------------------- */
/* MHD callbacks */

/* Returns 1 when a Content-Length header announces more than HTTP_MAX_BODY bytes. MHD has
 * already rejected a malformed Content-Length, so a value that does not parse here is
 * left to MHD. */
static int content_length_too_large(struct MHD_Connection *conn)
{
    const char *cl = MHD_lookup_connection_value(conn, MHD_HEADER_KIND,
                                                 MHD_HTTP_HEADER_CONTENT_LENGTH);
    unsigned long long n;
    char *end = NULL;

    if (cl == NULL || cl[0] < '0' || cl[0] > '9')
        return 0;
    errno = 0;
    n = strtoull(cl, &end, 10);
    if (errno == ERANGE)
        return 1;
    return end != cl && n > HTTP_MAX_BODY;
}

struct header_sum {
    size_t bytes;
};

/* MHD_get_connection_values iterator: adds one header's name and value to the sum. */
static enum MHD_Result add_header_size(void *cls, enum MHD_ValueKind kind, const char *key,
                                       const char *value)
{
    struct header_sum *sum = cls;

    (void)kind;
    sum->bytes += (key != NULL ? strlen(key) : 0) + (value != NULL ? strlen(value) : 0) + 4;
    return MHD_YES;
}

/* Returns 1 when the request's headers together exceed HTTP_MAX_HEADERS_BYTES. */
static int headers_too_large(struct MHD_Connection *conn)
{
    struct header_sum sum = { 0 };

    MHD_get_connection_values(conn, MHD_HEADER_KIND, &add_header_size, &sum);
    return sum.bytes > HTTP_MAX_HEADERS_BYTES;
}

/* The conn_entry of conn (see struct conn_entry), or NULL. */
static struct conn_entry *conn_entry_of(struct MHD_Connection *conn)
{
    const union MHD_ConnectionInfo *info =
        MHD_get_connection_info(conn, MHD_CONNECTION_INFO_SOCKET_CONTEXT);

    return info != NULL ? info->socket_context : NULL;
}

/* Marks conn's handler as running (busy 1: the deadline stops) or finished (busy 0: the
 * answer's own deadline starts now). */
static void conn_set_busy(struct http_server *srv, struct MHD_Connection *conn, int busy)
{
    struct conn_entry *e = conn_entry_of(conn);

    if (e == NULL)
        return;
    pthread_mutex_lock(&srv->conns_lock);
    e->busy = busy;
    e->start_ms = util_mono_ms();
    pthread_mutex_unlock(&srv->conns_lock);
}

/* The MHD access handler: called once when the headers are in (check Content-Length),
 * then once per piece of body (collect it), then once more with no data (answer). */
static enum MHD_Result on_request(void *cls, struct MHD_Connection *conn, const char *url,
                                  const char *method, const char *version,
                                  const char *upload_data, size_t *upload_data_size,
                                  void **con_cls)
{
    struct http_server *srv = cls;
    struct request_ctx *rctx = *con_cls;
    char safe_method[LOG_VALUE_MAX], safe_path[LOG_VALUE_MAX];

    (void)url;     /* already unescaped by MHD: see struct request_ctx */

    if (rctx == NULL) {
        /* on_uri failed to allocate: nothing sensible can be sent; close. */
        log_error("http_request_ctx_missing");
        return MHD_NO;
    }
    log_safe(method, safe_method, sizeof(safe_method));
    log_safe(rctx->raw_path, safe_path, sizeof(safe_path));

    if (!rctx->started) {
        rctx->started = 1;
        /* RFC 9112 section 3.2: a server must answer 400 to an HTTP/1.1 request without
         * Host; libmicrohttpd 0.9.75 lets it through. */
        if (version != NULL && strcmp(version, MHD_HTTP_VERSION_1_1) == 0 &&
            MHD_lookup_connection_value(conn, MHD_HEADER_KIND, MHD_HTTP_HEADER_HOST) == NULL)
            return send_error(conn, safe_method, safe_path, MHD_HTTP_BAD_REQUEST,
                              "missing Host header", NULL);
        if (headers_too_large(conn)) {
            char msg[64];

            snprintf(msg, sizeof(msg), "request headers are larger than %d bytes",
                     HTTP_MAX_HEADERS_BYTES);
            return send_error(conn, safe_method, safe_path,
                              MHD_HTTP_REQUEST_HEADER_FIELDS_TOO_LARGE, msg, NULL);
        }
        /* Answer before the body is read (and without "100 Continue"): MHD closes the
         * connection afterwards rather than reading what it does not need. */
        if (content_length_too_large(conn))
            return send_too_large(conn, safe_method, safe_path);
        return MHD_YES;
    }

    if (*upload_data_size > 0) {
        size_t n = *upload_data_size;

        *upload_data_size = 0; /* everything is consumed, kept or not */
        if (rctx->too_large)
            return MHD_YES;
        if (n > HTTP_MAX_BODY - rctx->body_len) {
            /* Chunked bodies have no Content-Length: keep reading so the connection
             * stays usable, and answer 413 at the end. */
            rctx->too_large = 1;
            return MHD_YES;
        }
        if (rctx->body == NULL) {
            rctx->body = malloc(HTTP_MAX_BODY + 1);
            if (rctx->body == NULL) {
                log_error("http_body_alloc_failed method=%s path=%s", safe_method,
                          safe_path);
                return MHD_NO;
            }
        }
        memcpy(rctx->body + rctx->body_len, upload_data, n);
        rctx->body_len += n;
        rctx->body[rctx->body_len] = '\0';
        return MHD_YES;
    }

    if (rctx->too_large)
        return send_too_large(conn, safe_method, safe_path);
    if (rctx->job != JOB_NONE) {
        enum MHD_Result r;

        if (rctx->job == JOB_ANSWERED) {
            /* libmicrohttpd 0.9.75 may call once more after the answer is queued, when
             * the daemon stops: never run the handler twice; the answer queued, if it
             * was, goes on. */
            log_debug("http_request_called_after_answer method=%s path=%s", safe_method,
                      safe_path);
            return rctx->answered;
        }
        if (__atomic_load_n(&rctx->job, __ATOMIC_ACQUIRE) != JOB_DONE)
            return MHD_YES; /* not resumed by its worker yet: MHD calls again */
        r = job_finish(srv, conn, rctx, safe_method, safe_path);
        conn_set_busy(srv, conn, 0);
        return r;
    }
    {
        enum MHD_Result r;
        int queued = 0;

        conn_set_busy(srv, conn, 1);
        r = dispatch(srv, conn, method, rctx, safe_method, safe_path, &queued);
        if (!queued)
            conn_set_busy(srv, conn, 0); /* else when its answer goes (job_finish) */
        return r;
    }
}

/* MHD's URI log callback, called once per request with the request target as the client
 * sent it (before unescaping). Returns the new request context, which MHD stores in the
 * request's con_cls slot; on_completed frees it. NULL when out of memory. */
static void *on_uri(void *cls, const char *uri, struct MHD_Connection *conn)
{
    struct request_ctx *rctx;
    size_t len;

    (void)cls;
    (void)conn;
    if (uri == NULL)
        uri = "";
    rctx = calloc(1, sizeof(*rctx));
    if (rctx == NULL)
        return NULL;
    len = strcspn(uri, "?#");
    rctx->raw_path = strndup(uri, len);
    if (rctx->raw_path == NULL) {
        free(rctx);
        return NULL;
    }
    return rctx;
}

static void on_completed(void *cls, struct MHD_Connection *conn, void **con_cls,
                         enum MHD_RequestTerminationCode toe)
{
    struct http_server *srv = cls;
    struct request_ctx *rctx = *con_cls;
    struct conn_entry *e = conn_entry_of(conn);

    (void)toe;
    if (e != NULL) {
        /* the next request on a kept-alive connection gets a deadline of its own */
        pthread_mutex_lock(&srv->conns_lock);
        e->start_ms = util_mono_ms();
        e->busy = 0;
        pthread_mutex_unlock(&srv->conns_lock);
    }
    if (rctx == NULL)
        return;
    if (rctx->job == JOB_DONE) {
        /* answered never (the connection went first): what the handler left */
        json_decref(rctx->res.body);
        free(rctx->res.text);
    }
    free(rctx->segs);
    free(rctx->body);
    free(rctx->raw_path);
    free(rctx);
    *con_cls = NULL;
}

/* MHD's connection notifications: STARTED links a new conn_entry (stored in the socket
 * context), CLOSED unlinks and frees it; see struct conn_entry. Without memory the
 * connection simply has no deadline other than MHD's inactivity timeout. */
static void on_connection(void *cls, struct MHD_Connection *conn, void **socket_context,
                          enum MHD_ConnectionNotificationCode toe)
{
    struct http_server *srv = cls;
    struct conn_entry *e;

    if (toe == MHD_CONNECTION_NOTIFY_STARTED) {
        const union MHD_ConnectionInfo *info =
            MHD_get_connection_info(conn, MHD_CONNECTION_INFO_CONNECTION_FD);

        *socket_context = NULL;
        if (info == NULL)
            return;
        e = calloc(1, sizeof(*e));
        if (e == NULL) {
            log_warn("http_conn_alloc_failed");
            return;
        }
        e->fd = info->connect_fd;
        e->start_ms = util_mono_ms();
        pthread_mutex_lock(&srv->conns_lock);
        e->next = srv->conns;
        if (srv->conns != NULL)
            srv->conns->prev = e;
        srv->conns = e;
        pthread_mutex_unlock(&srv->conns_lock);
        *socket_context = e;
        return;
    }
    e = *socket_context;
    if (e == NULL)
        return;
    pthread_mutex_lock(&srv->conns_lock);
    if (e->prev != NULL)
        e->prev->next = e->next;
    else
        srv->conns = e->next;
    if (e->next != NULL)
        e->next->prev = e->prev;
    pthread_mutex_unlock(&srv->conns_lock);
    free(e);
    *socket_context = NULL;
}

/* The reaper thread: every HTTP_REAP_INTERVAL_MS, shuts down (both directions) the socket
 * of each connection whose request has run past the deadline; MHD sees the end of the
 * stream and closes the connection, releasing its slot. Ends when srv->stopping is set. */
static void *reaper_main(void *arg)
{
    struct http_server *srv = arg;
    struct timespec until;
    int64_t now;
    long closed = 0;
    struct conn_entry *e;

    pthread_mutex_lock(&srv->conns_lock);
    while (!srv->stopping) {
        clock_gettime(CLOCK_MONOTONIC, &until);
        until.tv_nsec += (long)HTTP_REAP_INTERVAL_MS * 1000000L;
        until.tv_sec += until.tv_nsec / 1000000000L;
        until.tv_nsec %= 1000000000L;
        pthread_cond_timedwait(&srv->reaper_wake, &srv->conns_lock, &until);
        if (srv->stopping)
            break;
        now = util_mono_ms();
        closed = 0;
        for (e = srv->conns; e != NULL; e = e->next) {
            if (e->busy || e->reaped || now - e->start_ms < srv->deadline_ms)
                continue;
            e->reaped = 1;
            shutdown(e->fd, SHUT_RDWR); /* an error means it is going away anyway */
            closed++;
        }
        if (closed > 0) {
            metric_add(srv->deadline_closed, (double)closed);
            log_debug("http_deadline_closed connections=%ld deadline_ms=%lld", closed,
                      (long long)srv->deadline_ms);
        }
    }
    pthread_mutex_unlock(&srv->conns_lock);
    return NULL;
}

/* Raises the soft RLIMIT_NOFILE to the hard limit and returns how many connections the
 * descriptors then allow (the limit less HTTP_FD_RESERVE, within 16 and
 * HTTP_MAX_CONNECTIONS_CAP). */
static int connections_allowed(void)
{
    struct rlimit rl;
    rlim_t n;

    if (getrlimit(RLIMIT_NOFILE, &rl) != 0)
        return 1024 - HTTP_FD_RESERVE;
    if (rl.rlim_cur < rl.rlim_max) {
        rlim_t old = rl.rlim_cur;

        rl.rlim_cur = rl.rlim_max;
        if (rl.rlim_cur > (rlim_t)HTTP_MAX_CONNECTIONS_CAP + HTTP_FD_RESERVE)
            rl.rlim_cur = (rlim_t)HTTP_MAX_CONNECTIONS_CAP + HTTP_FD_RESERVE;
        if (rl.rlim_cur <= old || setrlimit(RLIMIT_NOFILE, &rl) != 0)
            rl.rlim_cur = old;
    }
    n = rl.rlim_cur;
    if (n == RLIM_INFINITY || n > (rlim_t)HTTP_MAX_CONNECTIONS_CAP + HTTP_FD_RESERVE)
        n = (rlim_t)HTTP_MAX_CONNECTIONS_CAP + HTTP_FD_RESERVE;
    if (n < (rlim_t)HTTP_FD_RESERVE + 16)
        return 16;
    return (int)(n - HTTP_FD_RESERVE);
}

/* MHD's error log, routed to our log at warn; the last message is kept for start-up
 * errors. */
static void on_mhd_log(void *cls, const char *fmt, va_list ap)
{
    struct http_server *srv = cls;
    char msg[sizeof(srv->last_error)];
    size_t len;

    if (vsnprintf(msg, sizeof(msg), fmt, ap) < 0) /* cut is fine */
        snprintf(msg, sizeof(msg), "(unformattable MHD message)");
    len = strlen(msg);
    while (len > 0 && (msg[len - 1] == '\n' || msg[len - 1] == '\r'))
        msg[--len] = '\0';
    /* Once running, a client that goes away (or is closed by the deadline) is routine:
     * at warn, a thousand slow clients would flood the log. Refusals at a connection
     * limit stay visible. */
    if (!srv->running || strstr(msg, "limit") != NULL)
        log_warn("http_server_error msg=%s", LOG_Q(msg));
    else
        log_debug("http_server_error msg=%s", LOG_Q(msg));
    pthread_mutex_lock(&srv->err_lock);
    memcpy(srv->last_error, msg, len + 1);
    pthread_mutex_unlock(&srv->err_lock);
}

/* ---------------------------------------------------------------------------------- */
/* Server */

static void workers_stop(struct http_server *srv);

/* Starts n workers (the lock and conditions too). Returns 0, or -1 with errstr and nothing
 * left running. */
static int workers_start(struct http_server *srv, int n, char *errstr, size_t errstr_size)
{
    if (pthread_mutex_init(&srv->jobs_lock, NULL) != 0) {
        util_errf(errstr, errstr_size, "cannot create a mutex");
        return -1;
    }
    if (pthread_cond_init(&srv->jobs_wake, NULL) != 0) {
        pthread_mutex_destroy(&srv->jobs_lock);
        util_errf(errstr, errstr_size, "cannot create a condition variable");
        return -1;
    }
    if (pthread_cond_init(&srv->jobs_idle, NULL) != 0) {
        pthread_cond_destroy(&srv->jobs_wake);
        pthread_mutex_destroy(&srv->jobs_lock);
        util_errf(errstr, errstr_size, "cannot create a condition variable");
        return -1;
    }
    srv->workers = calloc((size_t)n, sizeof(*srv->workers));
    if (srv->workers == NULL) {
        util_errf(errstr, errstr_size, "out of memory");
    } else {
        for (; srv->nworkers < n; srv->nworkers++)
            if (pthread_create(&srv->workers[srv->nworkers], NULL, &worker_main, srv) != 0)
                break;
        if (srv->nworkers == n)
            return 0;
        util_errf(errstr, errstr_size, "cannot start HTTP worker %d of %d",
                  srv->nworkers + 1, n);
    }
    workers_stop(srv);
    return -1;
}

/* Ends the workers (none may have a job) and frees what workers_start made. */
static void workers_stop(struct http_server *srv)
{
    pthread_mutex_lock(&srv->jobs_lock);
    srv->workers_stop = 1;
    pthread_cond_broadcast(&srv->jobs_wake);
    pthread_mutex_unlock(&srv->jobs_lock);
    for (int i = 0; i < srv->nworkers; i++)
        pthread_join(srv->workers[i], NULL);
    free(srv->workers);
    srv->workers = NULL;
    srv->nworkers = 0;
    pthread_cond_destroy(&srv->jobs_idle);
    pthread_cond_destroy(&srv->jobs_wake);
    pthread_mutex_destroy(&srv->jobs_lock);
}

http_server_t *http_server_start(const char *bind_addr, int port,
                                 const http_route_t *routes, size_t nroutes,
                                 http_health_fn health, void *ctx,
                                 char *errstr, size_t errstr_size)
{
    http_server_opts_t o;

    memset(&o, 0, sizeof(o));
    o.bind_addr = bind_addr;
    o.port = port;
    o.routes = routes;
    o.nroutes = nroutes;
    o.health = health;
    o.ctx = ctx;
    o.thread_per_connection = 1;
    return http_server_start_opts(&o, errstr, errstr_size);
}

http_server_t *http_server_start_opts(const http_server_opts_t *opts,
                                      char *errstr, size_t errstr_size)
{
    const char *bind_addr = opts->bind_addr;
    int port = opts->port;
    const http_route_t *routes = opts->routes;
    size_t nroutes = opts->nroutes;
    struct http_server *srv = NULL;
    struct sockaddr_in sa;
    unsigned int flags;
    size_t i;
    int lock_ready = 0, conns_ready = 0, reaper_ready = 0;
    int threads = opts->threads > 0 ? opts->threads : HTTP_DEFAULT_THREADS;
    int max_conns = connections_allowed();
    int per_client;
    long long timeout_ms = opts->request_timeout_ms > 0 ? opts->request_timeout_ms
                                                        : HTTP_DEFAULT_REQUEST_TIMEOUT_MS;
    pthread_condattr_t cattr;
    http_server_t *ret = NULL;

    if (bind_addr == NULL) {
        util_errf(errstr, errstr_size, "HTTP bind address is missing");
        goto done;
    }
    memset(&sa, 0, sizeof(sa));
    sa.sin_family = AF_INET;
    if (inet_pton(AF_INET, bind_addr, &sa.sin_addr) != 1) {
        util_errf(errstr, errstr_size, "HTTP bind address '%s' is not an IPv4 address",
                bind_addr);
        goto done;
    }
    if (port < 0 || port > 65535) {
        util_errf(errstr, errstr_size, "HTTP port %d is out of range 0..65535", port);
        goto done;
    }
    sa.sin_port = htons((uint16_t)port);
    for (i = 0; i < nroutes; i++) {
        if (routes[i].method == NULL || routes[i].pattern == NULL ||
            routes[i].pattern[0] != '/' || routes[i].fn == NULL) {
            util_errf(errstr, errstr_size, "HTTP route %zu is incomplete", i);
            goto done;
        }
    }

    srv = calloc(1, sizeof(*srv));
    if (srv == NULL) {
        util_errf(errstr, errstr_size, "out of memory");
        goto done;
    }
    if (pthread_mutex_init(&srv->err_lock, NULL) != 0) {
        util_errf(errstr, errstr_size, "cannot create a mutex");
        goto done;
    }
    lock_ready = 1;
    if (pthread_mutex_init(&srv->conns_lock, NULL) != 0) {
        util_errf(errstr, errstr_size, "cannot create a mutex");
        goto done;
    }
    /* the reaper waits on the monotonic clock, as util_mono_ms counts */
    if (pthread_condattr_init(&cattr) != 0) {
        pthread_mutex_destroy(&srv->conns_lock);
        util_errf(errstr, errstr_size, "cannot create a condition variable");
        goto done;
    }
    pthread_condattr_setclock(&cattr, CLOCK_MONOTONIC);
    if (pthread_cond_init(&srv->reaper_wake, &cattr) != 0) {
        pthread_condattr_destroy(&cattr);
        pthread_mutex_destroy(&srv->conns_lock);
        util_errf(errstr, errstr_size, "cannot create a condition variable");
        goto done;
    }
    pthread_condattr_destroy(&cattr);
    conns_ready = 1;
    if (opts->max_connections > 0 && opts->max_connections < max_conns)
        max_conns = opts->max_connections;
    per_client = opts->max_per_client > 0 ? opts->max_per_client : max_conns / 2;
    if (per_client < 1)
        per_client = 1;
    if (per_client > max_conns)
        per_client = max_conns;
    if (threads > max_conns)
        threads = max_conns; /* libmicrohttpd splits the limit between the threads */
    srv->deadline_ms = timeout_ms;
    srv->routes = routes;
    srv->nroutes = nroutes;
    srv->health = opts->health;
    srv->health_ctx = opts->health_ctx != NULL ? opts->health_ctx : opts->ctx;
    srv->ctx = opts->ctx;
    srv->metrics = opts->metrics;
    if (srv->metrics != NULL)
        srv->in_flight = metrics_gauge(srv->metrics, "dozen_http_requests_in_flight",
                                       "Requests being handled now.", NULL);
    if (srv->metrics != NULL)
        srv->deadline_closed = metrics_counter(
            srv->metrics, "dozen_http_deadline_closed_total",
            "Connections closed because a request (or its answer) ran past the deadline.",
            NULL);

    if (pthread_create(&srv->reaper, NULL, &reaper_main, srv) != 0) {
        util_errf(errstr, errstr_size, "cannot start the HTTP deadline thread");
        goto done;
    }
    reaper_ready = 1;

    if (opts->thread_per_connection) {
        flags = MHD_USE_THREAD_PER_CONNECTION | MHD_USE_INTERNAL_POLLING_THREAD |
                MHD_USE_ERROR_LOG;
        /* poll() rather than select(): past FD_SETSIZE descriptors select() breaks. */
        if (MHD_is_feature_supported(MHD_FEATURE_POLL) == MHD_YES)
            flags |= MHD_USE_POLL;
        threads = 0;
    } else {
        /* epoll: no FD_SETSIZE bound, and a slow connection costs a descriptor and a few
         * KiB, not a thread. Handlers still block their pool thread while they run. */
        if (MHD_is_feature_supported(MHD_FEATURE_EPOLL) != MHD_YES) {
            util_errf(errstr, errstr_size, "libmicrohttpd was built without epoll");
            goto done;
        }
        flags = MHD_USE_EPOLL_INTERNAL_THREAD | MHD_USE_ERROR_LOG;
        if (opts->workers > 0)
            flags |= MHD_ALLOW_SUSPEND_RESUME;
    }

    /* Thread per connection has no pool, and one thread is the daemon's own: leave the
     * option out rather than pass 0 or 1, which libmicrohttpd answers with a warning. */
    struct MHD_OptionItem pool[] = {
        { threads > 1 ? MHD_OPTION_THREAD_POOL_SIZE : MHD_OPTION_END,
          (intptr_t)threads, NULL },
        { MHD_OPTION_END, 0, NULL },
    };

    /* The logger comes first so that errors in the other options reach it. The
     * inactivity timeout is the deadline too (in whole seconds): an idle connection is
     * closed by whichever comes first. */
    srv->daemon = MHD_start_daemon(
        flags, (uint16_t)port, NULL, NULL, &on_request, srv,
        MHD_OPTION_EXTERNAL_LOGGER, &on_mhd_log, srv,
        MHD_OPTION_SOCK_ADDR, (struct sockaddr *)&sa,
        MHD_OPTION_ARRAY, pool,
        MHD_OPTION_CONNECTION_TIMEOUT, (unsigned int)((timeout_ms + 999) / 1000),
        MHD_OPTION_CONNECTION_LIMIT, (unsigned int)max_conns,
        MHD_OPTION_PER_IP_CONNECTION_LIMIT, (unsigned int)per_client,
        MHD_OPTION_CONNECTION_MEMORY_LIMIT, (size_t)HTTP_CONNECTION_MEMORY,
        MHD_OPTION_URI_LOG_CALLBACK, &on_uri, srv,
        MHD_OPTION_NOTIFY_COMPLETED, &on_completed, srv,
        MHD_OPTION_NOTIFY_CONNECTION, &on_connection, srv,
        MHD_OPTION_END);
    if (srv->daemon == NULL) {
        /* No daemon threads exist now, so last_error can be read without the lock. */
        util_errf(errstr, errstr_size, "cannot start the HTTP server on %s:%d: %s",
                bind_addr, port, srv->last_error[0] != '\0' ? srv->last_error
                                                             : "unknown error");
        goto done;
    }
    srv->running = 1;
    if (!opts->thread_per_connection && opts->workers > 0 &&
        workers_start(srv, opts->workers > HTTP_MAX_WORKERS ? HTTP_MAX_WORKERS
                                                            : opts->workers,
                      errstr, errstr_size) != 0) {
        MHD_stop_daemon(srv->daemon); /* no job was queued: nothing is suspended */
        goto done;
    }
    log_info("http_server_listening bind=%s port=%d model=%s threads=%d workers=%d "
             "max_connections=%d max_per_client=%d request_timeout_ms=%lld", bind_addr,
             http_server_port(srv), opts->thread_per_connection ? "thread-per-connection"
                                                                : "epoll",
             threads, srv->nworkers, max_conns, per_client, timeout_ms);
    ret = srv;
    srv = NULL; /* ownership passed to the caller */

done:
    if (srv != NULL) {
        if (reaper_ready) {
            pthread_mutex_lock(&srv->conns_lock);
            srv->stopping = 1;
            pthread_cond_signal(&srv->reaper_wake);
            pthread_mutex_unlock(&srv->conns_lock);
            pthread_join(srv->reaper, NULL);
        }
        if (conns_ready) {
            pthread_cond_destroy(&srv->reaper_wake);
            pthread_mutex_destroy(&srv->conns_lock);
        }
        if (lock_ready)
            pthread_mutex_destroy(&srv->err_lock);
        free(srv);
    }
    return ret;
}

int http_server_port(const http_server_t *srv)
{
    const union MHD_DaemonInfo *info;

    if (srv == NULL || srv->daemon == NULL)
        return -1;
    info = MHD_get_daemon_info(srv->daemon, MHD_DAEMON_INFO_BIND_PORT);
    if (info == NULL || info->port == 0)
        return -1;
    return info->port;
}

void http_server_stop(http_server_t *srv)
{
    if (srv == NULL)
        return;
    /* With workers: no more jobs (handlers run on the I/O threads from now on), and the
     * ones queued or running end and resume their connections, before the daemon goes:
     * it would free the requests of suspended connections under their handlers. */
    if (srv->workers != NULL) {
        pthread_mutex_lock(&srv->jobs_lock);
        srv->jobs_closed = 1;
        while (srv->jobs > 0)
            pthread_cond_wait(&srv->jobs_idle, &srv->jobs_lock);
        pthread_mutex_unlock(&srv->jobs_lock);
    }
    /* Joins the listening thread and every connection (or pool) thread, so running
     * handlers end before this returns; every connection is closed (and unlinked) then. */
    MHD_stop_daemon(srv->daemon);
    if (srv->workers != NULL)
        workers_stop(srv);
    pthread_mutex_lock(&srv->conns_lock);
    srv->stopping = 1;
    pthread_cond_signal(&srv->reaper_wake);
    pthread_mutex_unlock(&srv->conns_lock);
    pthread_join(srv->reaper, NULL);
    pthread_cond_destroy(&srv->reaper_wake);
    pthread_mutex_destroy(&srv->conns_lock);
    pthread_mutex_destroy(&srv->err_lock);
    free(srv);
}

