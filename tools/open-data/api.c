/* api: the open-data feed's HTTP routes: the daily figures and the admin knobs. */
#include "open_data.h"

#include <string.h>

#include "log.h"
#include "util.h"

static void log_mode(const char *event, const struct od_mode *m)
{
    log_info("%s mode=%s publish_after=%lld slow_ms=%lld confirmed=%lld recovered=%lld "
             "in_treatment=%lld deaths=%lld date=%s", event, od_kind_name(m->kind),
             m->publish_after, m->slow_ms, m->figures.confirmed, m->figures.recovered,
             m->figures.in_treatment, m->figures.deaths,
             m->date[0] != '\0' ? m->date : "clock");
}

/* Sets a 200 response with the whole mode, or 500 when out of memory. */
static void reply_mode(http_response_t *res, const struct od_mode *m)
{
    json_t *body = od_mode_json(m); /* new reference, stolen by http_json */

    if (body == NULL)
        http_error(res, 500, "out of memory");
    else
        http_json(res, 200, body);
}

/* GET /daily: after slow_ms (a shutdown meanwhile closes the connection without an
 * answer), the answer state_daily decides: 503 for "down", else the document. */
static void get_daily(const http_request_t *req, http_response_t *res, void *ctx)
{
    struct feed *f = ctx;
    struct od_mode mode;
    struct od_answer a;
    json_t *body;

    (void)req;
    state_mode_get(f->state, &mode);
    if (state_sleep(f->state, mode.slow_ms) != 0) {
        log_info("daily outcome=refused reason=shutdown");
        res->drop = 1;
        return;
    }
    if (state_daily(f->state, util_now_ms(), &a) != 0) {
        log_error("daily outcome=error reason=\"cannot work out today's date\"");
        http_error(res, 500, "cannot work out today's date");
        return;
    }
    log_info("daily served=%s status=%d date=%s", od_kind_name(a.served), a.status,
             a.date[0] != '\0' ? a.date : "-");
    if (a.served == OD_DOWN) {
        http_error(res, 503, "the open data service is temporarily unavailable");
        return;
    }
    body = od_daily_json(&a); /* new reference, stolen by http_json */
    if (body == NULL)
        http_error(res, 500, "out of memory");
    else
        http_json(res, 200, body);
}

/* GET /admin/mode */
static void get_mode(const http_request_t *req, http_response_t *res, void *ctx)
{
    struct feed *f = ctx;
    struct od_mode m;

    (void)req;
    state_mode_get(f->state, &m);
    reply_mode(res, &m);
}

/* POST /admin/mode {any subset of the mode's fields} */
static void post_mode(const http_request_t *req, http_response_t *res, void *ctx)
{
    struct feed *f = ctx;
    struct od_mode m;
    json_t *body;
    char err[512];

    if ((body = http_body_object(req, res)) == NULL)
        return;
    if (state_mode_patch(f->state, body, &m, err, sizeof(err)) != 0) {
        http_error(res, 400, "%s", err);
    } else {
        log_mode("mode_changed", &m);
        reply_mode(res, &m);
    }
    json_decref(body);
}

/* POST /admin/reset: the mode from the environment again; recorded requests forgotten. */
static void post_reset(const http_request_t *req, http_response_t *res, void *ctx)
{
    struct feed *f = ctx;
    struct od_mode m;

    (void)req;
    state_reset(f->state);
    state_mode_get(f->state, &m);
    log_info("reset");
    log_mode("mode_changed", &m);
    reply_mode(res, &m);
}

/* GET /admin/requests */
static void get_requests(const http_request_t *req, http_response_t *res, void *ctx)
{
    struct feed *f = ctx;
    json_t *list;

    (void)req;
    list = state_requests(f->state);
    if (list == NULL)
        http_error(res, 500, "out of memory");
    else
        http_json(res, 200, list);
}

const http_route_t api_routes[] = {
    { "GET", "/daily", get_daily },
    { "GET", "/admin/mode", get_mode },
    { "POST", "/admin/mode", post_mode },
    { "POST", "/admin/reset", post_reset },
    { "GET", "/admin/requests", get_requests },
};
const size_t api_nroutes = sizeof(api_routes) / sizeof(api_routes[0]);

int api_health(void *ctx, char *errstr, size_t errstr_size)
{
    (void)ctx;
    (void)errstr;
    (void)errstr_size;
    return 0;
}
