/* legacy-factory: a stand-in for the shop's slow, unreliable Legacy Factory API, with knobs
 * for delay, failures, refusals and the callback's shape, and a record of what it
 * received. */
#include "legacy_factory.h"

#include <signal.h>
#include <stdio.h>
#include <string.h>

#include <curl/curl.h>

#include "cfg.h"
#include "log.h"
#include "svc.h"

static void config_read(struct config *c)
{
    char err[256];
    long long down = 0, twice = 0, as_string = 0;
    const char *fail_skus, *shape;

    if (cfg_str("HTTP_BIND", "127.0.0.1", &c->http_bind, err, sizeof(err)) != 0 ||
        cfg_port("LEGACY_FACTORY_PORT", 9101, &c->port, err, sizeof(err)) != 0 ||
        cfg_int("FACTORY_DELAY_MS", 5000, 0, LF_DELAY_MS_MAX, &c->mode.delay_ms,
                err, sizeof(err)) != 0 ||
        cfg_int("LEGACY_FACTORY_FAIL_NEXT", 0, 0, STANDIN_FAIL_NEXT_MAX, &c->mode.fail_next,
                err, sizeof(err)) != 0 ||
        cfg_int("LEGACY_FACTORY_SLOW_MS", 0, 0, STANDIN_SLOW_MS_MAX, &c->mode.slow_ms,
                err, sizeof(err)) != 0 ||
        cfg_int("LEGACY_FACTORY_DOWN", 0, 0, 1, &down, err, sizeof(err)) != 0 ||
        cfg_int("LEGACY_FACTORY_DELIVER_TWICE", 0, 0, 1, &twice, err, sizeof(err)) != 0 ||
        cfg_int("LEGACY_FACTORY_REJECT_NEXT", 0, 0, STANDIN_FAIL_NEXT_MAX,
                &c->mode.reject_next, err, sizeof(err)) != 0 ||
        cfg_int("LEGACY_FACTORY_COUNT_AS_STRING", 0, 0, 1, &as_string, err, sizeof(err)) != 0 ||
        cfg_int("LEGACY_FACTORY_DELIVER_COUNT", 0, 0, LF_DELIVER_COUNT_MAX,
                &c->mode.deliver_count, err, sizeof(err)) != 0 ||
        cfg_str("LEGACY_FACTORY_CALLBACK_SHAPE", "object", &shape, err, sizeof(err)) != 0)
        svc_die(LF_SERVICE, "%s", err);
    if ((c->mode.callback_shape = lf_shape_parse(shape)) < 0)
        svc_die(LF_SERVICE, "LEGACY_FACTORY_CALLBACK_SHAPE: '%.64s' must be object, "
                "json_string or text_plain", shape);
    c->mode.count_as_string = (int)as_string;
    if (cfg_str("LEGACY_FACTORY_FAIL_SKUS", "", &fail_skus, err, sizeof(err)) != 0 ||
        lf_mode_set_fail_skus(&c->mode, fail_skus, err, sizeof(err)) != 0)
        svc_die(LF_SERVICE, "LEGACY_FACTORY_FAIL_SKUS: %s", err);
    c->mode.down = (int)down;
    c->mode.deliver_twice = (int)twice;
}

int main(void)
{
    struct factory f;
    http_server_t *http;
    char err[512];
    int sig;

    memset(&f, 0, sizeof(f));
    if (svc_block_signals(err, sizeof(err)) != 0)
        svc_die(LF_SERVICE, "%s", err);
    if (log_init(LF_SERVICE) != 0)
        svc_die(LF_SERVICE, "LOG_LEVEL: must be debug, info, warn or error");
    config_read(&f.cfg);
    /* Not thread-safe: before any thread exists. */
    if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK)
        svc_die(LF_SERVICE, "curl_global_init failed");

    f.state = state_new(&f.cfg.mode, err, sizeof(err));
    if (f.state == NULL)
        svc_die(LF_SERVICE, "%s", err);
    f.standin = state_standin(f.state);
    f.deliver = deliver_start(f.state, err, sizeof(err));
    if (f.deliver == NULL)
        svc_die(LF_SERVICE, "%s", err);
    http = http_server_start(f.cfg.http_bind, f.cfg.port, api_routes, api_nroutes,
                             standin_health, &f, err, sizeof(err));
    if (http == NULL)
        svc_die(LF_SERVICE, "HTTP server on %s:%d: %s", f.cfg.http_bind, f.cfg.port, err);
    log_info("started port=%d bind=%s", f.cfg.port, f.cfg.http_bind);
    standin_log_mode(&lf_standin, "mode", &f.cfg.mode);

    sig = svc_wait_signal();
    log_info("stopping signal=%s", sig == SIGTERM ? "SIGTERM" : "SIGINT");
    standin_stop(f.standin);     /* cuts slow_ms sleeps short, so handlers end soon */
    http_server_stop(http);     /* waits for running handlers */
    deliver_stop(f.deliver);    /* logs the callbacks it drops */
    state_free(f.state);
    curl_global_cleanup();
    log_info("stopped");
    return 0;
}
