/* api: the retry service's HTTP routes: GET /stats, and what GET /healthz checks. */
#include "retry_service.h"

#include <stdio.h>

#include "log.h"

/* GET /stats: what waits, per owner group and reason; when the next one is due; the dead
 * letters sent so far, by reason. Read from PostgreSQL, so it survives restarts. */
static void get_stats(const http_request_t *req, http_response_t *res, void *ctx)
{
    struct retry *r = ctx;
    PGconn *conn;
    json_t *stats;
    char err[512];

    (void)req;
    conn = db_acquire(r->db, (int)r->cfg.db_wait_ms, err, sizeof(err));
    if (conn == NULL) {
        log_error("db_unavailable error=%s", LOG_Q(err));
        http_error(res, 503, "database unavailable, try again");
        return;
    }
    stats = store_stats(conn, err, sizeof(err));
    db_release(r->db, conn);
    if (stats == NULL) {
        log_error("retry_stats_failed error=%s", LOG_Q(err));
        http_error(res, 503, "database unavailable, try again");
        return;
    }
    http_json(res, 200, stats);
}

const http_route_t api_routes[] = {
    { "GET", "/stats", get_stats },
};
const size_t api_nroutes = sizeof(api_routes) / sizeof(api_routes[0]);

int api_health(void *ctx, char *errstr, size_t errstr_size)
{
    struct retry *r = ctx;

    if (consumer_failed(r->consumer)) {
        snprintf(errstr, errstr_size, "the %s consumer stopped", RETRY_TOPIC);
        return -1;
    }
    return db_ping(r->db, 2000, errstr, errstr_size);
}
