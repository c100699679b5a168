/* notifier: keeps the SMS subscribers, sends the daily bulletin from the open-data feed
 * (retried until a deadline, else an "unavailable today" notice) and back-in-stock alerts. */
#include "notifier.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <curl/curl.h>

#include "cfg.h"
#include "phone.h"
#include "svc.h"

static const svc_config_spec_t settings = {
    .port_var = "NOTIFIER_PORT", .port_def = 8083, .pool_def = 16, .pool_min = 4, .outbox = 1,
};

/* SMS_RATE: messages a second, 0.01..10000 (a decimal number), default 1. */
static void rate_read(struct config *c)
{
    const char *text;
    char err[256], *end;
    double v;

    if (cfg_str("SMS_RATE", "1", &text, err, sizeof(err)) != 0)
        svc_die(NOTIFIER_SERVICE, "%s", err);
    errno = 0;
    v = strtod(text, &end);
    if (errno != 0 || end == text || *end != '\0' || !(v >= 0.01 && v <= 10000))
        svc_die(NOTIFIER_SERVICE, "SMS_RATE: must be a number of messages a second from "
                "0.01 to 10000 (1 for a long code, 3 toll-free, 100 a short code), not "
                "'%.40s'", text);
    c->sms_rate = v;
    c->sms_interval_ms = 1000.0 / v;
}

static void config_read(struct config *c)
{
    char err[512];
    long long conc, attempts, initial, max, timeout, segments;
    const char *format, *key;

    if (svc_config_read(&settings, &c->svc, err, sizeof(err)) != 0 ||
        cfg_str("ADMIN_TOKEN", NULL, &c->admin_token, err, sizeof(err)) != 0 ||
        cfg_str("BULLETIN_CRON", "40 9 * * *", &c->cron_text, err, sizeof(err)) != 0 ||
        cfg_url("BULLETIN_SOURCE_URL", "http://127.0.0.1:9102/daily", &c->source_url,
                err, sizeof(err)) != 0 ||
        cfg_str("BULLETIN_SOURCE_FORMAT", "dozen-json", &format, err, sizeof(err)) != 0 ||
        cfg_str("BULLETIN_SOURCE_KEY", "", &key, err, sizeof(err)) != 0 ||
        cfg_int("SMS_MAX_SEGMENTS", 2, 1, NOTIFIER_SEGMENTS_MAX, &segments,
                err, sizeof(err)) != 0 ||
        cfg_str("BULLETIN_FALLBACK_URL", "", &c->fallback_url, err, sizeof(err)) != 0 ||
        (c->fallback_url[0] != '\0' &&
         cfg_url("BULLETIN_FALLBACK_URL", NULL, &c->fallback_url, err, sizeof(err)) != 0) ||
        cfg_duration_ms("BULLETIN_RETRY_INTERVAL", "10m", 100, 86400000LL,
                        &c->retry_interval_ms, err, sizeof(err)) != 0 ||
        cfg_str("BULLETIN_DEADLINE", "11:00", &c->deadline_text, err, sizeof(err)) != 0 ||
        cfg_duration_ms("BULLETIN_FETCH_TIMEOUT", "10s", 100, 300000, &c->fetch_timeout_ms,
                        err, sizeof(err)) != 0 ||
        cfg_url("SMS_GATEWAY_URL", "http://127.0.0.1:9103", &c->sms.gateway_url,
                err, sizeof(err)) != 0 ||
        cfg_str("SMS_ACCOUNT_SID", "ACtest", &c->sms.account_sid, err, sizeof(err)) != 0 ||
        cfg_str("SMS_AUTH_TOKEN", "test-token", &c->sms.auth_token, err, sizeof(err)) != 0 ||
        cfg_str("SMS_FROM", "+15005550006", &c->sms.from, err, sizeof(err)) != 0 ||
        cfg_int("SMS_CONCURRENCY", 8, 1, 64, &conc, err, sizeof(err)) != 0 ||
        cfg_duration_ms("SMS_TIMEOUT", "10s", 100, 120000, &timeout, err, sizeof(err)) != 0 ||
        cfg_duration_ms("SMS_SEND_LEASE", "30s", 1000, 3600000, &c->sms_lease_ms,
                        err, sizeof(err)) != 0 ||
        cfg_int("SMS_MAX_ATTEMPTS", 10, 1, 1000, &attempts, err, sizeof(err)) != 0 ||
        cfg_duration_ms("SMS_RETRY_INITIAL", "1s", 10, 3600000, &initial,
                        err, sizeof(err)) != 0 ||
        cfg_duration_ms("SMS_RETRY_MAX", "5m", 10, 86400000LL, &max, err, sizeof(err)) != 0 ||
        cfg_duration_ms("SMS_POLL_INTERVAL", "1s", 10, 60000, &c->sms_poll_ms,
                        err, sizeof(err)) != 0 ||
        cfg_duration_ms("SMS_FIND_MARGIN", "2s", 0, 600000, &c->sms_find_margin_ms,
                        err, sizeof(err)) != 0 ||
        cfg_str("SMS_STATUS_CALLBACK_URL", "", &c->sms_callback_url, err, sizeof(err)) != 0 ||
        (c->sms_callback_url[0] != '\0' &&
         cfg_url("SMS_STATUS_CALLBACK_URL", NULL, &c->sms_callback_url, err,
                 sizeof(err)) != 0))
        svc_die(NOTIFIER_SERVICE, "%s", err);
    if (retry_policy_from_env(&c->retry, err, sizeof(err)) != 0)
        svc_die(NOTIFIER_SERVICE, "%s", err);
    if (strlen(c->admin_token) < 16)
        svc_die(NOTIFIER_SERVICE, "ADMIN_TOKEN: must be at least 16 characters");
    if (signup_config_read(&c->signup, err, sizeof(err)) != 0)
        svc_die(NOTIFIER_SERVICE, "%s", err);
    if (c->fallback_url[0] == '\0')
        c->fallback_url = NULL;
    if (c->sms_callback_url[0] == '\0')
        c->sms_callback_url = NULL;
    else if (strlen(c->sms_callback_url) > 300 || strchr(c->sms_callback_url, '?') != NULL)
        svc_die(NOTIFIER_SERVICE, "SMS_STATUS_CALLBACK_URL: must be a base URL (no '?', at "
                "most 300 characters) such as https://notifier.example");
    rate_read(c);
    if (feed_format_parse(format, &c->sources[0].format) != 0)
        svc_die(NOTIFIER_SERVICE, "BULLETIN_SOURCE_FORMAT: '%s' is not one of dozen-json, "
                "datagokr-covid19", format);
    /* The key is a secret: never in a URL that is logged or shown. */
    if (strstr(c->source_url, "serviceKey=") != NULL ||
        (c->fallback_url != NULL && strstr(c->fallback_url, "serviceKey=") != NULL))
        svc_die(NOTIFIER_SERVICE, "BULLETIN_SOURCE_URL/BULLETIN_FALLBACK_URL: must not hold "
                "the service key (it would be logged); set BULLETIN_SOURCE_KEY instead");
    if (c->sources[0].format == FEED_FORMAT_DATAGOKR && key[0] == '\0')
        svc_die(NOTIFIER_SERVICE, "BULLETIN_SOURCE_KEY: required with "
                "BULLETIN_SOURCE_FORMAT=datagokr-covid19 (the portal's service key)");
    c->sources[0].url = c->source_url;
    c->sources[0].key = key;
    c->sources[1] = c->sources[0];
    c->sources[1].url = c->fallback_url;
    if (bulletin_texts_read(&c->texts, (int)segments, err, sizeof(err)) != 0)
        svc_die(NOTIFIER_SERVICE, "%s", err);
    if (c->sms_lease_ms <= timeout)
        svc_die(NOTIFIER_SERVICE, "SMS_SEND_LEASE (%lld ms) must be longer than SMS_TIMEOUT "
                "(%lld ms): a send still running must not look abandoned", c->sms_lease_ms,
                timeout);
    if (max < initial)
        svc_die(NOTIFIER_SERVICE, "SMS_RETRY_MAX must not be below SMS_RETRY_INITIAL");
    if (!phone_sender_valid(c->sms.from))
        svc_die(NOTIFIER_SERVICE, "SMS_FROM: must be an E.164 number or 1 to 11 letters, "
                "digits and spaces with a letter");
    if (c->svc.db_pool_size < conc + 3)
        svc_die(NOTIFIER_SERVICE, "DB_POOL_SIZE (%d) must be at least SMS_CONCURRENCY + 3 "
                "(%lld): each sender holds a connection", c->svc.db_pool_size, conc + 3);
    if (cron_parse(c->cron_text, &c->cron, err, sizeof(err)) != 0)
        svc_die(NOTIFIER_SERVICE, "BULLETIN_CRON: %s", err);
    if (cron_parse_deadline(c->deadline_text, &c->deadline, err, sizeof(err)) != 0)
        svc_die(NOTIFIER_SERVICE, "BULLETIN_DEADLINE: %s", err);
    c->db_wait_ms = c->svc.db_wait_ms;
    c->sms.timeout_ms = (long)timeout;
    c->sms_concurrency = (int)conc;
    c->sms_max_attempts = (int)attempts;
    c->sms_backoff.exponential = 1;
    c->sms_backoff.initial_ms = initial;
    c->sms_backoff.factor = 2.0;
    c->sms_backoff.max_ms = max;
    c->sms_backoff.max_attempts = (int)attempts;
}

/* BULLETIN_TZ, after the other settings: a zone handle to free. */
static void zone_open(struct config *c)
{
    const char *name;
    char err[512];

    if (cfg_str("BULLETIN_TZ", "Asia/Seoul", &name, err, sizeof(err)) != 0)
        svc_die(NOTIFIER_SERVICE, "%s", err);
    if ((c->zone = cron_zone_open(name, err, sizeof(err))) == NULL)
        svc_die(NOTIFIER_SERVICE, "BULLETIN_TZ: %s", err);
}

/* Before the consumer and stopped after it: the consumer thread's curl handle (for the
 * feed), then the senders. After the consumer and stopped before it: the BULLETIN_CRON
 * clock. */
static int curl_start(void *ctx, char *errstr, size_t errstr_size)
{
    struct notifier *n = ctx;

    if ((n->curl = curl_easy_init()) == NULL)
        snprintf(errstr, errstr_size, "curl_easy_init failed");
    return n->curl != NULL ? 0 : -1;
}

static void curl_stop(void *ctx)
{
    struct notifier *n = ctx;

    curl_easy_cleanup(n->curl);
    n->curl = NULL;
}

static int senders_start(void *ctx, char *errstr, size_t errstr_size)
{
    struct notifier *n = ctx;

    return (n->sender = sender_start(n, errstr, errstr_size)) != NULL ? 0 : -1;
}

static void senders_stop(void *ctx)
{
    struct notifier *n = ctx;

    sender_stop(n->sender);
    n->sender = NULL;
}

static int clock_start(void *ctx, char *errstr, size_t errstr_size)
{
    struct notifier *n = ctx;

    return (n->scheduler = scheduler_start(n, errstr, errstr_size)) != NULL ? 0 : -1;
}

static void clock_stop(void *ctx)
{
    struct notifier *n = ctx;

    scheduler_stop(n->scheduler);
    n->scheduler = NULL;
}

static void describe(void *ctx, strbuf_t *line)
{
    const struct notifier *n = ctx;

    strbuf_addf(line, " bulletin_cron=\"%s\" bulletin_tz=%s next_run=%lld deadline=%s "
                "retry_interval_ms=%lld source=%s source_format=%s source_key=%s fallback=%s "
                "sms_max_segments=%d sms_gateway=%s senders=%d",
                n->cfg.cron_text, cron_zone_name(n->cfg.zone), (long long)scheduler_next(n),
                n->cfg.deadline_text, n->cfg.retry_interval_ms, n->cfg.source_url,
                feed_format_name(n->cfg.sources[0].format),
                n->cfg.sources[0].key[0] != '\0' ? "set" : "none",
                n->cfg.fallback_url != NULL ? n->cfg.fallback_url : "none",
                n->cfg.texts.max_segments,
                n->cfg.sms.gateway_url, n->cfg.sms_concurrency);
}

int main(void)
{
    struct notifier n;
    char err[1024];

    memset(&n, 0, sizeof(n));
    svc_init(NOTIFIER_SERVICE);
    config_read(&n.cfg);
    if ((n.metrics = metrics_new()) == NULL)
        svc_die(NOTIFIER_SERVICE, "out of memory");
    notifier_metrics_init(n.metrics);
    zone_open(&n.cfg);
    if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK)
        svc_die(NOTIFIER_SERVICE, "curl_global_init failed");
    feed_global_init();

    n.consumer_opts.group = NOTIFIER_GROUP;
    if (router_bind(&n.router, handlers_routes, handlers_nroutes, &n, &n.consumer_opts,
                    err, sizeof(err)) != 0)
        svc_die(NOTIFIER_SERVICE, "consumer: %s", err);
    n.consumer_opts.policy = &n.cfg.retry;

    const svc_t sv = {
        .name = NOTIFIER_SERVICE, .metrics = n.metrics, .cfg = &n.cfg.svc, .ctx = &n, .describe = describe,
        .stmts = store_stmts, .nstmts = store_nstmts, .pool = &n.db, .relay = &n.relay,
        .before_consumer = { { NULL, curl_start, curl_stop },
                             { "sender", senders_start, senders_stop } },
        .consumer_opts = &n.consumer_opts, .consumer = &n.consumer,
        .after_consumer = { { "scheduler", clock_start, clock_stop } },
        .gauges = notifier_metrics_gauges, .ngauges = notifier_metrics_ngauges,
        .routes = api_routes, .nroutes = api_nroutes, .health = api_health,
    };
    if (svc_run(&sv, err, sizeof(err)) != 0)
        svc_die(NOTIFIER_SERVICE, "%s", err);
    metrics_free(n.metrics);
    cron_zone_close(n.cfg.zone);
    curl_global_cleanup();
    feed_global_cleanup();
    return 0;
}
