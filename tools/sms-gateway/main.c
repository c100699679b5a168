/* sms-gateway: a stand-in for Twilio's Messages API, with knobs for failures, refusals and
 * slowness, and a record of what it accepted. */
#include "sms_gateway.h"

#include <signal.h>
#include <stdio.h>
#include <string.h>

#include <curl/curl.h>

#include "cfg.h"
#include "log.h"
#include "svc.h"
#include "util.h"

/* Returns 1 if s is 1..max characters of printable ASCII. */
static int token_ok(const char *s, size_t max)
{
    size_t n = 0;

    for (; *s != '\0'; s++, n++) {
        if (*s < 0x21 || *s > 0x7e)
            return 0;
    }
    return n > 0 && n <= max;
}

static void config_read(struct config *c)
{
    char err[256];
    long long down = 0, twice = 0;

    if (cfg_str("HTTP_BIND", "127.0.0.1", &c->http_bind, err, sizeof(err)) != 0 ||
        cfg_port("SMS_GATEWAY_PORT", 9103, &c->port, err, sizeof(err)) != 0 ||
        cfg_str("SMS_ACCOUNT_SID", "ACtest", &c->account_sid, err, sizeof(err)) != 0 ||
        cfg_str("SMS_AUTH_TOKEN", "test-token", &c->auth_token, err, sizeof(err)) != 0 ||
        cfg_int("SMS_GATEWAY_FAIL_NEXT", 0, 0, STANDIN_FAIL_NEXT_MAX, &c->mode.fail_next,
                err, sizeof(err)) != 0 ||
        cfg_int("SMS_GATEWAY_FAIL_RATE", 0, 0, 100, &c->mode.fail_rate,
                err, sizeof(err)) != 0 ||
        cfg_int("SMS_GATEWAY_SEED", 1, 0, SG_SEED_MAX, &c->mode.seed,
                err, sizeof(err)) != 0 ||
        cfg_int("SMS_GATEWAY_SLOW_MS", 0, 0, STANDIN_SLOW_MS_MAX, &c->mode.slow_ms,
                err, sizeof(err)) != 0 ||
        cfg_int("SMS_GATEWAY_DOWN", 0, 0, 1, &down, err, sizeof(err)) != 0 ||
        cfg_int("SMS_GATEWAY_RATE", 0, 0, 100000, &c->mode.rate, err, sizeof(err)) != 0 ||
        cfg_int("SMS_GATEWAY_RETRY_AFTER", 0, 0, SG_RETRY_AFTER_MAX, &c->mode.retry_after,
                err, sizeof(err)) != 0 ||
        cfg_int("SMS_GATEWAY_QUEUE_MS", 500, 0, 3600000, &c->mode.queue_ms,
                err, sizeof(err)) != 0 ||
        cfg_int("SMS_GATEWAY_DELIVER_MS", 1000, 0, 3600000, &c->mode.deliver_ms,
                err, sizeof(err)) != 0 ||
        cfg_int("SMS_GATEWAY_HANG_MS", 0, 0, STANDIN_SLOW_MS_MAX, &c->mode.hang_ms,
                err, sizeof(err)) != 0 ||
        cfg_int("SMS_GATEWAY_CALLBACK_TWICE", 0, 0, 1, &twice, err, sizeof(err)) != 0)
        svc_die(SG_SERVICE, "%s", err);
    /* The values are secrets or nearly: named, not shown. */
    if (!util_alnum_valid(c->account_sid, SG_ACCOUNT_SID_MAX))
        svc_die(SG_SERVICE, "SMS_ACCOUNT_SID: must be 1 to %d letters and digits",
                SG_ACCOUNT_SID_MAX);
    if (!token_ok(c->auth_token, SG_AUTH_TOKEN_MAX))
        svc_die(SG_SERVICE, "SMS_AUTH_TOKEN: must be 1 to %d printable ASCII characters "
                "without spaces", SG_AUTH_TOKEN_MAX);
    c->mode.down = (int)down;
    c->mode.callback_twice = (int)twice;
}

int main(void)
{
    struct gateway g;
    http_server_t *http;
    struct sg_callbacks *callbacks;
    char err[512];
    int sig;

    memset(&g, 0, sizeof(g));
    if (svc_block_signals(err, sizeof(err)) != 0)
        svc_die(SG_SERVICE, "%s", err);
    if (log_init(SG_SERVICE) != 0)
        svc_die(SG_SERVICE, "LOG_LEVEL: must be debug, info, warn or error");
    config_read(&g.cfg);
    if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK)
        svc_die(SG_SERVICE, "curl_global_init failed");

    g.state = state_new(&g.cfg.mode, err, sizeof(err));
    if (g.state == NULL)
        svc_die(SG_SERVICE, "%s", err);
    g.standin = state_standin(g.state);
    callbacks = callbacks_start(g.state, g.cfg.account_sid, err, sizeof(err));
    if (callbacks == NULL)
        svc_die(SG_SERVICE, "status callbacks: %s", err);
    http = http_server_start(g.cfg.http_bind, g.cfg.port, api_routes, api_nroutes,
                             standin_health, &g, err, sizeof(err));
    if (http == NULL)
        svc_die(SG_SERVICE, "HTTP server on %s:%d: %s", g.cfg.http_bind, g.cfg.port, err);
    log_info("started port=%d bind=%s account_sid=%s", g.cfg.port, g.cfg.http_bind,
             g.cfg.account_sid);
    standin_log_mode(&sg_standin, "mode", &g.cfg.mode);

    sig = svc_wait_signal();
    log_info("stopping signal=%s", sig == SIGTERM ? "SIGTERM" : "SIGINT");
    standin_stop(g.standin);    /* cuts slow_ms sleeps short, so handlers end soon */
    http_server_stop(http);     /* waits for running handlers */
    callbacks_stop(callbacks);  /* its sleeps were cut short too */
    state_free(g.state);
    curl_global_cleanup();
    log_info("stopped");
    return 0;
}
