/* notifier: subscribers, the daily SMS bulletin and back-in-stock alerts. Private header;
 * prototypes grouped by source file. The design is in docs/notifier.md. */
#ifndef DOZEN_NOTIFIER_H
#define DOZEN_NOTIFIER_H

#include <pthread.h>
#include <stddef.h>
#include <stdint.h>

#include <curl/curl.h>
#include <jansson.h>
#include <libpq-fe.h>

#include "cron.h"
#include "db.h"
#include "metrics.h"
#include "feed.h"
#include "http.h"
#include "kafka.h"
#include "outbox.h"
#include "retry.h"
#include "router.h"
#include "signup.h"
#include "sms.h"
#include "svc.h"
#include "trace.h"

#define NOTIFIER_SERVICE "notifier"
#define NOTIFIER_GROUP "notifier"
#define NOTIFIER_SOURCE "/dozen/notifier"
#define NOTIFIER_SEGMENTS_MAX 10      /* the highest SMS_MAX_SEGMENTS (and the database's) */
#define NOTIFIER_BODY_MAX 4096        /* bytes of one message's UTF-8 text: 10 segments of
                                       * 2-byte GSM-7 or 3-byte UCS-2 characters fit */
#define BULLETIN_NREASONS 8           /* the reason codes with their own notice + generic */
#define NOTIFIER_NAME_MAX 100         /* characters of a subscriber's name */
#define NOTIFIER_SKUS_MAX 100         /* SKUs in one POST /subscribers */
#define NOTIFIER_KEY_MAX 96           /* bytes of a message key, with the NUL */

/* The messages' templates (bulletin.c), borrowed from the environment or the defaults. */
struct bulletin_texts {
    const char *daily;                          /* BULLETIN_TEMPLATE */
    const char *unavailable[BULLETIN_NREASONS]; /* BULLETIN_UNAVAILABLE_<REASON>, and
                                                 * BULLETIN_UNAVAILABLE_TEMPLATE last */
    const char *restock;                        /* BULLETIN_RESTOCK_TEMPLATE */
    int max_segments;                           /* SMS_MAX_SEGMENTS */
};

struct config {
    svc_config_t svc;               /* the common settings (svc_config_read) */
    long long db_wait_ms;           /* = svc.db_wait_ms, where the other files read it */
    const char *admin_token;
    /* The bulletin */
    const char *cron_text;          /* BULLETIN_CRON */
    cron_t cron;
    cron_zone_t *zone;              /* BULLETIN_TZ; owned */
    const char *source_url;         /* BULLETIN_SOURCE_URL (never holds the key) */
    const char *fallback_url;       /* BULLETIN_FALLBACK_URL; NULL: none */
    feed_source_t sources[2];       /* the two with BULLETIN_SOURCE_FORMAT and _KEY (the
                                     * fallback speaks the same); url NULL: none */
    struct bulletin_texts texts;
    long long retry_interval_ms;    /* BULLETIN_RETRY_INTERVAL */
    const char *deadline_text;      /* BULLETIN_DEADLINE */
    cron_deadline_t deadline;
    long long fetch_timeout_ms;     /* BULLETIN_FETCH_TIMEOUT */
    /* Sending */
    sms_config_t sms;
    int sms_concurrency;
    long long sms_lease_ms;
    int sms_max_attempts;
    retry_policy_t sms_backoff;     /* SMS_RETRY_INITIAL, x2, SMS_RETRY_MAX */
    long long sms_poll_ms;
    double sms_rate;                /* SMS_RATE: messages a second from sms.from */
    double sms_interval_ms;         /* 1000 / sms_rate */
    long long sms_find_margin_ms;   /* SMS_FIND_MARGIN: clock skew allowed to the gateway */
    const char *sms_callback_url;   /* SMS_STATUS_CALLBACK_URL; NULL: no StatusCallback */
    retry_policy_t retry;           /* RETRY_*: the consumer group's policy */
    struct signup_config signup;    /* SIGNUP_*: the public sign-up (signup.h) */
};

struct sender;

struct notifier {
    struct config cfg;
    db_pool_t *db;
    metrics_t *metrics;         /* served on GET /metrics (svc_run) */
    outbox_relay_t *relay;
    CURL *curl;                     /* the consumer thread's, for the feed */
    kafka_consumer_opts_t consumer_opts;
    router_t router;
    kafka_consumer_t *consumer;
    struct sender *sender;
    struct scheduler *scheduler;
};

/* store.c, store_delivery.c: SQL */

/* Runs a prepared statement whose result carries nothing needed; *rows (may be NULL) gets
 * the number of rows it touched. Returns 0, or -1 with errstr. */
int store_run(PGconn *conn, const char *stmt, int n, const char *const *p, long long *rows,
              char *errstr, size_t errstr_size);

/* A bigint column of res that must be there (0 when it is not a number). */
long long store_column_ll(const PGresult *res, int row, int col);

extern const db_stmt_t store_stmts[];
extern const size_t store_nstmts;

typedef enum store_result {
    STORE_OK = 0,
    STORE_NOT_FOUND,   /* no such row (or not in a state the call applies to) */
    STORE_CONFLICT,    /* a unique rule said no (a duplicate) */
    STORE_FAILED       /* database error (errstr) */
} store_result_t;

/* Subscribers. phone must be E.164, name at most NOTIFIER_NAME_MAX characters, skus an
 * array of valid SKUs (all checked by the caller). On STORE_OK *out is the new subscriber
 * (masked); on STORE_CONFLICT existing_id (37 bytes) is the active subscriber's id. */
store_result_t store_subscriber_add(PGconn *conn, const char *phone, const char *name,
                                    json_t *skus, json_t **out, char *existing_id,
                                    char *errstr, size_t errstr_size);
/* Active subscribers, oldest first, masked: a new JSON object {"subscribers", "total"}. */
json_t *store_subscriber_list(PGconn *conn, long long limit, long long offset,
                              char *errstr, size_t errstr_size);
store_result_t store_subscriber_get(PGconn *conn, const char *id, json_t **out,
                                    char *errstr, size_t errstr_size);
/* Opts out: marks the subscriber and cancels its pending deliveries, in one transaction. */
store_result_t store_subscriber_remove(PGconn *conn, const char *id, json_t **out,
                                       char *errstr, size_t errstr_size);
/* Adds (add = 1) or removes a SKU of an active subscriber; *out is {"id", "skus"}. Removing
 * a SKU the subscriber does not have is STORE_NOT_FOUND. */
store_result_t store_subscriber_sku(PGconn *conn, const char *id, const char *sku, int add,
                                    json_t **out, char *errstr, size_t errstr_size);

/* Bulletins. */

/* Creates the bulletin of day (state scheduled) and its bulletin.requested event in the
 * outbox, in one transaction, unless the day has one already. *created says which. *out is
 * the bulletin as GET /bulletins/{date} shows it (may be NULL). */
store_result_t store_bulletin_create(PGconn *conn, const char *day, const char *trigger,
                                     int64_t scheduled_ms, int64_t deadline_ms, int *created,
                                     json_t **out, char *errstr, size_t errstr_size);
/* The bulletin of day as a new JSON object (STORE_NOT_FOUND when there is none). */
store_result_t store_bulletin_get(PGconn *conn, const char *day, json_t **out,
                                  char *errstr, size_t errstr_size);

/* What the record handler needs to know about a day before it checks the feed. */
struct bulletin_view {
    char state[16];               /* scheduled, retrying, sent, unavailable */
    int attempts;
    char last_reason[64];         /* "" when none */
    int has_last;                 /* last is the last stored day before this one */
    feed_figures_t last;
};
store_result_t store_bulletin_view(PGconn *conn, const char *day, struct bulletin_view *v,
                                   char *errstr, size_t errstr_size);

/* One failed check of source (attempt = the bulletin's attempts after this check). */
struct bulletin_failure {
    const char *source;
    const char *reason;          /* a reason code */
    const char *error;
};
/* Records attempt number attempt: the failures (n may be 0) and, when f is not NULL, the
 * good figures from source: the day is sent and one 'day:<date>' bulletin delivery is
 * created for every active subscriber, all in one transaction. With f NULL the day is
 * retrying with the last failure's reason. A day already sent or unavailable is left as it
 * is (STORE_NOT_FOUND). *created receives the number of deliveries made. The deliveries
 * are in the thread's trace (trace_current: the bulletin run's record), as below. */
store_result_t store_bulletin_attempt(PGconn *conn, const char *day, int attempt,
                                      const struct bulletin_failure *fails, size_t n,
                                      const feed_figures_t *f, const char *source,
                                      const char *body, long long *created,
                                      char *errstr, size_t errstr_size);
/* Gives the day up: unavailable with reason, and one 'day:<date>' unavailable delivery
 * with body for every active subscriber, in one transaction (STORE_NOT_FOUND when the day
 * is already sent or unavailable). */
store_result_t store_bulletin_unavailable(PGconn *conn, const char *day, const char *reason,
                                          const char *body, long long *created,
                                          char *errstr, size_t errstr_size);

/* Back in stock: records event ce_id as processed and creates one 'restock:<ce_id>'
 * delivery for each active subscriber of sku, in one transaction, in the thread's trace
 * (trace_current: the record's), which its send continues. *created is the number made
 * (0 when the event was seen before). */
store_result_t store_restock(PGconn *conn, const char *ce_id, const char *sku,
                             const char *body, long long *created,
                             char *errstr, size_t errstr_size);

/* Deliveries, for the sender. */
struct delivery {
    long long id;
    char phone[24];
    char body[NOTIFIER_BODY_MAX + 1];
    long long since_ms;           /* its first claim (ms since the epoch): every try of it
                                   * started after */
    int attempts;                 /* including this one */
    int uncertain;                /* ask the gateway before sending */
    char token[37];               /* its StatusCallback URL's token */
    char traceparent[TRACE_PARENT_SIZE]; /* the trace it was created in; "": none (a longer
                                          * value is cut, so fails trace_parse) */
};
/* Claims at most max due deliveries (pending and due, or sending and claimed longer than
 * lease_ms ago, which become uncertain): they are 'sending', claimed now, in one commit.
 * Returns how many were written to out, or -1 with errstr. */
int store_claim(PGconn *conn, int max, long long lease_ms, struct delivery *out,
                char *errstr, size_t errstr_size);
/* The outcome of one claimed delivery: sent (sid may be ""), retry at now + delay_ms
 * (uncertain: ask the gateway first next time), or failed for good. Returns 0 or -1. */
int store_sent(PGconn *conn, long long id, const char *sid, char *errstr, size_t errstr_size);
int store_retry(PGconn *conn, long long id, long long delay_ms, int uncertain,
                const char *error, char *errstr, size_t errstr_size);
int store_failed(PGconn *conn, long long id, const char *error,
                 char *errstr, size_t errstr_size);
/* Gives back deliveries still 'sending' (ids, at most 64), unchanged otherwise, so they
 * are due again at once. Returns 0 or -1. */
int store_unclaim(PGconn *conn, const long long *ids, size_t n,
                  char *errstr, size_t errstr_size);
/* Renews the lease of deliveries still 'sending' (ids): due again lease_ms from now.
 * Returns 0 or -1. */
int store_renew(PGconn *conn, const long long *ids, size_t n, long long lease_ms,
                char *errstr, size_t errstr_size);

/* In the caller's transaction, before a send: locks the subscriber (FOR SHARE) and then
 * the delivery, and checks that the delivery is still 'sending' and the subscriber still
 * active. Returns 1 (sid gets the gateway SID a status callback recorded, or ""), 0 when
 * it is not (cancelled, opted out, taken over), -1 with errstr. The locks last until the
 * caller commits: an opt-out waits for the send and its outcome. */
int store_lock(PGconn *conn, long long id, char *sid, size_t sid_size,
               char *errstr, size_t errstr_size);
/* A 429: pending again delay_ms from now, the attempt not counted. Returns 0 or -1. */
int store_throttled(PGconn *conn, long long id, long long delay_ms, const char *error,
                    char *errstr, size_t errstr_size);
/* Reserves the next count send slots of sender (one every interval_ms, shared by every
 * sender thread and instance through sms_senders), none before the number's pause ends.
 * Returns the ms to wait for the first (the others follow interval_ms apart), or -1. */
long long store_slot(PGconn *conn, const char *sender, double interval_ms, int count,
                     char *errstr, size_t errstr_size);
/* Retry-After: sender sends nothing before ms from now, not even in slots reserved
 * earlier (their holders check store_paused before sending). Returns 0 or -1. */
int store_pause(PGconn *conn, const char *sender, long long ms, char *errstr,
                size_t errstr_size);
/* The ms left of sender's pause (0: not paused), or -1. */
long long store_paused(PGconn *conn, const char *sender, char *errstr, size_t errstr_size);
/* Sets other[i] when sids[i] is recorded as another delivery's than id (an older message
 * with the same text). Returns 0 or -1. */
int store_other_sids(PGconn *conn, long long id, char (*sids)[SMS_SID_MAX], size_t n,
                     int *other, char *errstr, size_t errstr_size);
/* A status callback for delivery id (text) with token: records the provider's status and
 * SID, and makes an open or uncertain-failed delivery sent. STORE_NOT_FOUND when id and
 * token do not match; on STORE_OK state gets the delivery's status. */
store_result_t store_status(PGconn *conn, const char *id, const char *token,
                            const char *status, const char *sid, char *state,
                            size_t state_size, char *errstr, size_t errstr_size);
/* When the last open message of key is expected to go out (RFC 3339 in out, "" when none is
 * open), for sender at interval_ms a message. Returns 0 or -1. */
int store_eta(PGconn *conn, const char *key, const char *sender, double interval_ms,
              char *out, size_t out_size, char *errstr, size_t errstr_size);

/* bulletin.c: the texts and the day's run */

/* Reads the templates (BULLETIN_TEMPLATE, BULLETIN_UNAVAILABLE_<REASON>,
 * BULLETIN_UNAVAILABLE_TEMPLATE, BULLETIN_RESTOCK_TEMPLATE; unset or "": the Korean
 * defaults) into *t and checks each: fields it may use ({date} {month} {day}, and
 * {confirmed} {deaths} {recovered} {in_treatment} with each's {x_change}, or {reason}, or
 * {sku}), and at most max_segments SMS segments with the largest values. Returns 0, or -1
 * with err naming the variable and the problem. At start only (getenv). */
int bulletin_texts_read(struct bulletin_texts *t, int max_segments, char *err,
                        size_t err_size);
/* Words for people (Korean) for a reason code; a generic phrase for NULL or unknown. */
const char *bulletin_reason_words(const char *code);
/* Writes the bulletin SMS for f into out: the figures with thousands separators and the
 * change since prev ("▲1,671", "▼3", "0"; "-" for every change when prev is NULL).
 * Returns 0, or -1 if it does not fit out or the segment budget. */
int bulletin_text(const struct bulletin_texts *t, const feed_figures_t *f,
                  const feed_figures_t *prev, char *out, size_t out_size);
/* The "unavailable today" SMS for day and reason code (its own template, or the generic
 * one for an unknown code). Returns 0 or -1 as above. */
int bulletin_unavailable_text(const struct bulletin_texts *t, const char *day,
                              const char *reason, char *out, size_t out_size);
/* The back-in-stock SMS for sku. Returns 0, or -1 for an invalid sku or as above. */
int bulletin_restock_text(const struct bulletin_texts *t, const char *sku, char *out,
                          size_t out_size);

/* Starts the bulletin of the run scheduled at run_ms (its local day in BULLETIN_TZ, the
 * deadline from BULLETIN_DEADLINE; a clock deadline already past gives one check only).
 * Returns STORE_OK with *created and *out as store_bulletin_create. */
store_result_t bulletin_start(struct notifier *n, PGconn *conn, int64_t run_ms,
                              const char *trigger, int *created, json_t **out,
                              char *errstr, size_t errstr_size);

/* scheduler.c: the BULLETIN_CRON clock */

struct scheduler;
/* Starts a thread that starts each scheduled run's bulletin when it falls due; at start it
 * also starts today's if its time has passed and its deadline has not (a notifier that was
 * down at 09:40). Returns NULL with errstr if the thread cannot start. */
struct scheduler *scheduler_start(struct notifier *n, char *errstr, size_t errstr_size);
/* The next scheduled run after now (ms), or -1. */
int64_t scheduler_next(const struct notifier *n);
void scheduler_stop(struct scheduler *s);  /* accepts NULL */

/* sender.c: the SMS senders */

/* Starts SMS_CONCURRENCY sender threads. NULL with errstr on failure. */
struct sender *sender_start(struct notifier *n, char *errstr, size_t errstr_size);
/* Wakes the senders: deliveries were just committed. */
void sender_wake(struct sender *s);
/* Stops the senders (each finishes the message it is sending) and frees them. */
void sender_stop(struct sender *s);  /* accepts NULL */

/* handlers.c: Kafka records */

/* The consumer's routes (bulletin.requested, stock.replenished); ctx is the struct
 * notifier. */
extern const router_route_t handlers_routes[];
extern const size_t handlers_nroutes;

/* metrics.c: the notifier's series */

/* Gauges read at scrape time: dozen_bulletin_state, dozen_bulletin_attempts,
 * dozen_subscribers_active, dozen_sms_deliveries_open. */
extern const metrics_sql_gauge_t notifier_metrics_gauges[];
extern const size_t notifier_metrics_ngauges;

/* Creates the SMS series at 0. */
void notifier_metrics_init(metrics_t *m);

/* Counts one gateway send: its outcome (from res and why, sms_send's text) and duration
 * (us microseconds). */
void notifier_metrics_sms(metrics_t *m, sms_result_t res, const char *why, int64_t us);

/* api.c: HTTP routes */

extern const http_route_t api_routes[];
extern const size_t api_nroutes;
/* Checks the fields of a POST /subscribers (or /signup) body: phone (E.164), name, skus
 * (NULL when absent), all borrowed from body. Returns 0, or -1 after a 400. */
int api_subscriber_fields(json_t *body, http_response_t *res, const char **phone,
                          const char **name, json_t **skus);
int api_health(void *ctx, char *errstr, size_t errstr_size);

#endif
