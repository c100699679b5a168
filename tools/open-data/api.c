/* api: the open-data feed's HTTP routes: the daily figures and the admin knobs. */
#include "open_data.h"

#include <string.h>

#include "log.h"
#include "util.h"

/* GET /daily: after slow_ms (a shutdown meanwhile closes the connection without an
 * answer), the answer state_daily decides: 503 for "down", else the document. */
static void get_daily(const http_request_t *req, http_response_t *res, void *ctx)
{
    struct feed *f = ctx;
    struct od_mode mode;
    struct od_answer a;

    (void)req;
    standin_mode_get(f->standin, &mode);
    if (standin_sleep(f->standin, mode.slow_ms) != 0) {
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
    standin_reply_json(res, od_daily_json(&a));
}

/* GET /admin/requests */
static void get_requests(const http_request_t *req, http_response_t *res, void *ctx)
{
    struct feed *f = ctx;

    (void)req;
    standin_reply_json(res, state_requests(f->state));
}

const http_route_t api_routes[] = {
    { "GET", "/daily", get_daily },
    STANDIN_MODE_ROUTES,
    { "POST", "/admin/reset", standin_post_reset },
    { "GET", "/admin/requests", get_requests },
};
const size_t api_nroutes = sizeof(api_routes) / sizeof(api_routes[0]);
