/* notifier: keeps the SMS subscribers, sends the daily bulletin from the open-data feed
 * (retried until a deadline, else an "unavailable today" notice) and back-in-stock alerts. */
#include "notifier.h"

#include <signal.h>
#include <stdio.h>
#include <string.h>

#include <curl/curl.h>

#include "cfg.h"
#include "log.h"
#include "phone.h"
#include "svc.h"
#include "topics.h"

static void config_read(struct config *c)
{
    char err[512];
    long long pool, conc, attempts, initial, max, timeout;

    if (cfg_str("DATABASE_URL", NULL, &c->database_url, err, sizeof(err)) != 0 ||
        cfg_str("KAFKA_BOOTSTRAP", NULL, &c->kafka_bootstrap, err, sizeof(err)) != 0 ||
        cfg_str("ADMIN_TOKEN", NULL, &c->admin_token, err, sizeof(err)) != 0 ||
        cfg_str("HTTP_BIND", "127.0.0.1", &c->http_bind, err, sizeof(err)) != 0 ||
        cfg_port("NOTIFIER_PORT", 8083, &c->port, err, sizeof(err)) != 0 ||
        cfg_int("DB_POOL_SIZE", 16, 4, 256, &pool, err, sizeof(err)) != 0 ||
        cfg_duration_ms("DB_WAIT", "5s", 1, 60000, &c->db_wait_ms, err, sizeof(err)) != 0 ||
        cfg_duration_ms("TOPICS_WAIT", "30s", 1000, 600000, &c->topics_wait_ms,
                        err, sizeof(err)) != 0 ||
        cfg_duration_ms("OUTBOX_POLL_INTERVAL", "5s", 10, 3600000, &c->outbox_poll_ms,
                        err, sizeof(err)) != 0 ||
        cfg_str("BULLETIN_CRON", "40 9 * * *", &c->cron_text, err, sizeof(err)) != 0 ||
        cfg_url("BULLETIN_SOURCE_URL", "http://127.0.0.1:9102/daily", &c->source_url,
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
                        err, sizeof(err)) != 0)
        svc_die(NOTIFIER_SERVICE, "%s", err);
    if (retry_policy_from_env(&c->retry, err, sizeof(err)) != 0)
        svc_die(NOTIFIER_SERVICE, "%s", err);
    if (strlen(c->admin_token) < 16)
        svc_die(NOTIFIER_SERVICE, "ADMIN_TOKEN: must be at least 16 characters");
    if (c->fallback_url[0] == '\0')
        c->fallback_url = NULL;
    if (c->sms_lease_ms <= timeout)
        svc_die(NOTIFIER_SERVICE, "SMS_SEND_LEASE (%lld ms) must be longer than SMS_TIMEOUT "
                "(%lld ms): a send still running must not look abandoned", c->sms_lease_ms,
                timeout);
    if (max < initial)
        svc_die(NOTIFIER_SERVICE, "SMS_RETRY_MAX must not be below SMS_RETRY_INITIAL");
    if (!phone_sender_valid(c->sms.from))
        svc_die(NOTIFIER_SERVICE, "SMS_FROM: must be an E.164 number or 1 to 11 letters, "
                "digits and spaces with a letter");
    if (pool < conc + 3)
        svc_die(NOTIFIER_SERVICE, "DB_POOL_SIZE (%lld) must be at least SMS_CONCURRENCY + 3 "
                "(%lld): each sender holds a connection", pool, conc + 3);
    if (cron_parse(c->cron_text, &c->cron, err, sizeof(err)) != 0)
        svc_die(NOTIFIER_SERVICE, "BULLETIN_CRON: %s", err);
    if (cron_parse_deadline(c->deadline_text, &c->deadline, err, sizeof(err)) != 0)
        svc_die(NOTIFIER_SERVICE, "BULLETIN_DEADLINE: %s", err);
    c->db_pool_size = (int)pool;
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

int main(void)
{
    struct notifier n;
    http_server_t *http;
    outbox_relay_opts_t ro;
    char err[512];
    int sig;

    memset(&n, 0, sizeof(n));
    if (svc_block_signals(err, sizeof(err)) != 0)
        svc_die(NOTIFIER_SERVICE, "%s", err);
    if (log_init(NOTIFIER_SERVICE) != 0)
        svc_die(NOTIFIER_SERVICE, "LOG_LEVEL: must be debug, info, warn or error");
    config_read(&n.cfg);
    zone_open(&n.cfg);
    if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK)
        svc_die(NOTIFIER_SERVICE, "curl_global_init failed");

    n.db = db_pool_new(n.cfg.database_url, n.cfg.db_pool_size, store_stmts, store_nstmts,
                       err, sizeof(err));
    if (n.db == NULL)
        svc_die(NOTIFIER_SERVICE, "DATABASE_URL: %s", err);
    if (topics_service_ready(n.cfg.kafka_bootstrap, NOTIFIER_SERVICE,
                             (int)n.cfg.topics_wait_ms, err, sizeof(err)) != 0)
        svc_die(NOTIFIER_SERVICE, "%s", err);

    memset(&ro, 0, sizeof(ro));
    ro.conninfo = n.cfg.database_url;
    ro.bootstrap = n.cfg.kafka_bootstrap;
    ro.producer = NOTIFIER_SERVICE;
    ro.poll_ms = n.cfg.outbox_poll_ms;
    n.relay = outbox_relay_start(&ro, err, sizeof(err));
    if (n.relay == NULL)
        svc_die(NOTIFIER_SERVICE, "outbox relay: %s", err);
    if ((n.curl = curl_easy_init()) == NULL)
        svc_die(NOTIFIER_SERVICE, "curl_easy_init failed");
    if ((n.sender = sender_start(&n, err, sizeof(err))) == NULL)
        svc_die(NOTIFIER_SERVICE, "sender: %s", err);

    n.consumer_opts.bootstrap = n.cfg.kafka_bootstrap;
    n.consumer_opts.group = NOTIFIER_GROUP;
    n.consumer_opts.client_id = NOTIFIER_SERVICE;
    if (router_bind(&n.router, handlers_routes, handlers_nroutes, &n, &n.consumer_opts,
                    err, sizeof(err)) != 0)
        svc_die(NOTIFIER_SERVICE, "consumer: %s", err);
    n.consumer_opts.policy = &n.cfg.retry;
    n.consumer = kafka_consumer_start(&n.consumer_opts, err, sizeof(err));
    if (n.consumer == NULL)
        svc_die(NOTIFIER_SERVICE, "consumer: %s", err);
    if ((n.scheduler = scheduler_start(&n, err, sizeof(err))) == NULL)
        svc_die(NOTIFIER_SERVICE, "scheduler: %s", err);

    http = http_server_start(n.cfg.http_bind, n.cfg.port, api_routes, api_nroutes, api_health,
                             &n, err, sizeof(err));
    if (http == NULL)
        svc_die(NOTIFIER_SERVICE, "HTTP server on %s:%d: %s", n.cfg.http_bind, n.cfg.port, err);
    log_info("started port=%d bind=%s bulletin_cron=\"%s\" bulletin_tz=%s next_run=%lld "
             "deadline=%s retry_interval_ms=%lld source=%s fallback=%s sms_gateway=%s "
             "senders=%d", n.cfg.port, n.cfg.http_bind, n.cfg.cron_text,
             cron_zone_name(n.cfg.zone), (long long)scheduler_next(&n), n.cfg.deadline_text,
             n.cfg.retry_interval_ms, n.cfg.source_url,
             n.cfg.fallback_url != NULL ? n.cfg.fallback_url : "none", n.cfg.sms.gateway_url,
             n.cfg.sms_concurrency);

    sig = svc_wait_signal();
    log_info("stopping signal=%s", sig == SIGTERM ? "SIGTERM" : "SIGINT");
    http_server_stop(http);
    scheduler_stop(n.scheduler);
    kafka_consumer_stop(n.consumer);
    sender_stop(n.sender);
    curl_easy_cleanup(n.curl);
    outbox_relay_stop(n.relay);
    db_pool_free(n.db);
    cron_zone_close(n.cfg.zone);
    curl_global_cleanup();
    log_info("stopped");
    return 0;
}
