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
    if (a.served == OD_REFUSED) {
        http_error(res, 401, "service key refused");
        return;
    }
    standin_reply_json(res, od_daily_json(&a));
}

/* Copies query argument name of req (cut to out_size) into out; "" when absent. */
static void query_copy(const http_request_t *req, const char *name, char *out,
                       size_t out_size)
{
    const char *v = http_query(req, name);

    snprintf(out, out_size, "%s", v != NULL ? v : "");
}

/* GET /openapi/service/rest/Covid19/getCovid19InfStateJson: the data portal's service, as
 * XML. The serviceKey is checked and never logged or kept. */
static void get_covid19(const http_request_t *req, http_response_t *res, void *ctx)
{
    struct feed *f = ctx;
    struct od_mode mode;
    struct od_answer a;
    struct od_request rq;
    const char *key = http_query(req, "serviceKey");
    strbuf_t body;   /* owned */

    memset(&rq, 0, sizeof(rq));
    rq.xml = 1;
    rq.key_ok = key != NULL && key[0] != '\0' &&
                (f->cfg.service_key[0] == '\0' || util_streq_ct(key, f->cfg.service_key));
    query_copy(req, "startCreateDt", rq.start, sizeof(rq.start));
    query_copy(req, "endCreateDt", rq.end, sizeof(rq.end));
    query_copy(req, "pageNo", rq.page, sizeof(rq.page));
    query_copy(req, "numOfRows", rq.rows, sizeof(rq.rows));
    standin_mode_get(f->standin, &mode);
    if (standin_sleep(f->standin, mode.slow_ms) != 0) {
        log_info("covid19 outcome=refused reason=shutdown");
        res->drop = 1;
        return;
    }
    if (state_daily_request(f->state, util_now_ms(), &rq, &a) != 0) {
        log_error("covid19 outcome=error reason=\"cannot work out today's date\"");
        http_error(res, 500, "cannot work out today's date");
        return;
    }
    log_info("covid19 served=%s status=%d date=%s key_ok=%s", od_kind_name(a.served),
             a.status, a.date[0] != '\0' ? a.date : "-", rq.key_ok ? "yes" : "no");
    if (a.served == OD_DOWN) {
        http_error(res, 503, "the open data service is temporarily unavailable");
        return;
    }
    strbuf_init(&body, 0);
    if (od_daily_xml(&a, &body) != 0) {
        strbuf_release(&body);
        http_error(res, 500, "out of memory");
        return;
    }
    http_text(res, a.status, "application/xml;charset=UTF-8", body.buf, body.len);
    strbuf_release(&body);
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
    { "GET", "/openapi/service/rest/Covid19/getCovid19InfStateJson", get_covid19 },
    STANDIN_MODE_ROUTES,
    { "POST", "/admin/reset", standin_post_reset },
    { "GET", "/admin/requests", get_requests },
};
const size_t api_nroutes = sizeof(api_routes) / sizeof(api_routes[0]);
