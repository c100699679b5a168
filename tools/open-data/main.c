/* open-data: a stand-in for the upstream open-data feed of daily figures, with knobs for
 * late, wrong, spoilt and missing data, and a record of what it served. */
#include "open_data.h"

#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "cfg.h"
#include "log.h"
#include "svc.h"
#include "util.h"

/* Plausible, consistent base values: in_treatment = confirmed - recovered - deaths. */
#define OD_DEFAULT_CONFIRMED    10423
#define OD_DEFAULT_RECOVERED    6973
#define OD_DEFAULT_IN_TREATMENT 3246
#define OD_DEFAULT_DEATHS       204

static void config_read(struct config *c)
{
    char err[512];
    const char *mode, *date, *tzdir;
    struct od_figures *f = &c->mode.figures;

    if (cfg_str("HTTP_BIND", "127.0.0.1", &c->http_bind, err, sizeof(err)) != 0 ||
        cfg_port("OPEN_DATA_PORT", 9102, &c->port, err, sizeof(err)) != 0 ||
        cfg_int("OPEN_DATA_PUBLISH_AFTER", 0, 0, OD_PUBLISH_AFTER_MAX, &c->mode.publish_after,
                err, sizeof(err)) != 0 ||
        cfg_int("OPEN_DATA_SLOW_MS", 0, 0, STANDIN_SLOW_MS_MAX, &c->mode.slow_ms,
                err, sizeof(err)) != 0 ||
        cfg_int("OPEN_DATA_CONFIRMED", OD_DEFAULT_CONFIRMED, 0, OD_FIGURE_MAX, &f->confirmed,
                err, sizeof(err)) != 0 ||
        cfg_int("OPEN_DATA_RECOVERED", OD_DEFAULT_RECOVERED, 0, OD_FIGURE_MAX, &f->recovered,
                err, sizeof(err)) != 0 ||
        cfg_int("OPEN_DATA_IN_TREATMENT", OD_DEFAULT_IN_TREATMENT, 0, OD_FIGURE_MAX,
                &f->in_treatment, err, sizeof(err)) != 0 ||
        cfg_int("OPEN_DATA_DEATHS", OD_DEFAULT_DEATHS, 0, OD_FIGURE_MAX, &f->deaths,
                err, sizeof(err)) != 0 ||
        cfg_str("OPEN_DATA_MODE", "ok", &mode, err, sizeof(err)) != 0 ||
        cfg_str("OPEN_DATA_DATE", "", &date, err, sizeof(err)) != 0 ||
        cfg_str("OPEN_DATA_TZ", "Asia/Seoul", &c->tz, err, sizeof(err)) != 0 ||
        cfg_str("OPEN_DATA_SERVICE_KEY", "", &c->service_key, err, sizeof(err)) != 0 ||
        cfg_str("TZDIR", "/usr/share/zoneinfo", &tzdir, err, sizeof(err)) != 0)
        svc_die(OD_SERVICE, "%s", err);
    if (od_kind_parse(mode, &c->mode.kind) != 0)
        svc_die(OD_SERVICE, "OPEN_DATA_MODE: '%.64s' must be one of ok, not_published, "
                "wrong_date, all_zero, invalid, down, decreasing, refused", mode);
    if (date[0] != '\0' && !od_date_valid(date))
        svc_die(OD_SERVICE, "OPEN_DATA_DATE: '%.64s' is not a date written YYYY-MM-DD", date);
    snprintf(c->mode.date, sizeof(c->mode.date), "%s", date); /* valid or "": fits */
    if (od_tz_resolve(c->tz, tzdir, c->tz_effective, sizeof(c->tz_effective),
                      err, sizeof(err)) != 0)
        svc_die(OD_SERVICE, "OPEN_DATA_TZ: %s", err);
}

int main(void)
{
    struct feed f;
    http_server_t *http;
    char err[512], today[OD_DATE_LEN + 1];
    int sig;

    memset(&f, 0, sizeof(f));
    if (svc_block_signals(err, sizeof(err)) != 0)
        svc_die(OD_SERVICE, "%s", err);
    if (log_init(OD_SERVICE) != 0)
        svc_die(OD_SERVICE, "LOG_LEVEL: must be debug, info, warn or error");
    config_read(&f.cfg);
    /* "Today" is the local date of the feed's zone: set once, before any thread exists
     * (setenv is not thread-safe), and used by localtime_r from then on. The log's
     * timestamps are UTC and do not change. */
    if (setenv("TZ", f.cfg.tz_effective, 1) != 0)
        svc_die(OD_SERVICE, "cannot set TZ");
    tzset();
    if (od_today(f.cfg.mode.date, time(NULL), today, sizeof(today)) != 0)
        svc_die(OD_SERVICE, "cannot work out today's date in %s", f.cfg.tz_effective);

    f.state = state_new(&f.cfg.mode, err, sizeof(err));
    if (f.state == NULL)
        svc_die(OD_SERVICE, "%s", err);
    f.standin = state_standin(f.state);
    http = http_server_start(f.cfg.http_bind, f.cfg.port, api_routes, api_nroutes,
                             standin_health, &f, err, sizeof(err));
    if (http == NULL)
        svc_die(OD_SERVICE, "HTTP server on %s:%d: %s", f.cfg.http_bind, f.cfg.port, err);
    log_info("started port=%d bind=%s tz=%s tz_effective=%s today=%s", f.cfg.port,
             f.cfg.http_bind, f.cfg.tz, f.cfg.tz_effective, today);
    standin_log_mode(&od_standin, "mode", &f.cfg.mode);

    sig = svc_wait_signal();
    log_info("stopping signal=%s", sig == SIGTERM ? "SIGTERM" : "SIGINT");
    standin_stop(f.standin);    /* cuts slow_ms sleeps short, so handlers end soon */
    http_server_stop(http);     /* waits for running handlers */
    state_free(f.state);
    log_info("stopped");
    return 0;
}
