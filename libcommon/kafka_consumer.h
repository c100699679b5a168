/* kafka_consumer: the consumer group verdict loop: each record goes to a handler, whose
 * verdict decides whether the offset is stored now, the record is tried again in place, or
 * it is handed over to `retry` or `dead-letter` (kafka_handover.h) first. An offset is
 * committed only after the record's effect is committed. */
#ifndef DOZEN_KAFKA_CONSUMER_H
#define DOZEN_KAFKA_CONSUMER_H

#include <stddef.h>
#include <stdint.h>
#include <librdkafka/rdkafka.h>

/* What a record handler decided. */
typedef enum kafka_verdict {
    KAFKA_DONE = 0,     /* the effect is committed (or there is none): commit the offset */
    KAFKA_RETRY,        /* something failed (typically a statement): the loop classifies
                         * it from db_error_last. A data error (db_error_classify:
                         * DB_ERROR_DATA) sends the record to `dead-letter` at once as
                         * invalid_record with the database's message; anything else is
                         * transient: the same record again, in place, after a backoff,
                         * for at most retry_in_place_ms, then to `retry` (reason
                         * "transient_error" unless the outcome set one); a final
                         * notice (expired) is retried in place until it passes */
    KAFKA_RETRY_LATER,  /* this record cannot be processed now: hand it to the `retry` topic
                         * with the outcome's reason (and delay, deadline) and move on */
    KAFKA_FAIL          /* this record can never be processed: to `dead-letter` with the
                         * outcome's reason, and move on */
} kafka_verdict_t;

/* A handler's explanation of RETRY_LATER and FAIL (and of RETRY, for the log). */
typedef struct kafka_outcome {
    char reason[64];       /* short code: "factory_unavailable"; FAIL defaults to "failed" */
    char error[512];       /* what went wrong, for people */
    int64_t delay_ms;      /* RETRY_LATER: 0 = the group's backoff for this attempt */
    int64_t deadline_ms;   /* RETRY_LATER: absolute ms since epoch; 0 = keep the record's */
    int max_attempts;      /* RETRY_LATER: retries allowed; 0 = the group's policy (a record
                            * retried until a deadline sets enough for the deadline) */
} kafka_outcome_t;

/* A record as the handler sees it. For a redelivery from `retry.<group>`, topic is the
 * original topic and attempt the number of earlier retries; expired is set (to
 * "max_attempts" or "deadline_exceeded") on the one final notice the retry service sends
 * when it gives up: the handler reacts to the give-up and should return KAFKA_DONE. */
typedef struct kafka_record {
    const rd_kafka_message_t *msg;  /* key, value and headers as received */
    const char *topic;
    int attempt;                    /* 0 on a first delivery */
    const char *expired;            /* NULL, or why the record was given up */
    int64_t deadline_ms;            /* the record's deadline, 0 when none */
    const char *last_reason;        /* reason of the previous failure, "" on a first delivery */
} kafka_record_t;

/* Handles one record. It must commit its effect (for example a PostgreSQL transaction that
 * also records the record's ce_id) before returning KAFKA_DONE, and fill out for anything
 * else. Records whose CloudEvents headers are missing or invalid never reach the handler:
 * they go to `dead-letter` with reason `invalid_record`. */
typedef kafka_verdict_t (*kafka_handler_fn)(const kafka_record_t *rec, void *ctx,
                                            kafka_outcome_t *out);

struct retry_policy;

typedef struct kafka_consumer_opts {
    const char *bootstrap;
    const char *group;             /* group.id; redeliveries come on `retry.<group>` */
    const char *client_id;
    const char *const *topics;
    size_t ntopics;
    kafka_handler_fn handler;
    void *ctx;
    const struct retry_policy *policy; /* RETRY_LATER spacing and limit (NULL: defaults) */
    int64_t retry_initial_ms;      /* first in-place backoff for KAFKA_RETRY (default 200 ms) */
    int64_t retry_max_ms;          /* in-place backoff cap (default 10 s if 0) */
    int64_t retry_in_place_ms;     /* how long a record is retried in place after a
                                    * transient failure before it is handed to `retry`
                                    * (default 30 s if 0) */
    const char *instance_id;       /* NULL or "": a dynamic group member; else this
                                    * process's stable name (INSTANCE_ID), see
                                    * kafka_consumer_join_t.instance_id */
    struct metrics *metrics;       /* NULL, or where the loop counts its records
                                    * (dozen_consumer_*; borrowed) */
} kafka_consumer_opts_t;

/* Runs a consumer group member until *stop becomes non-zero: subscribes to opts->topics and
 * to `retry.<group>`, calls the handler for each record in order, and stores the offset only
 * after the record is dealt with: KAFKA_DONE; KAFKA_RETRY_LATER once the `retry` topic has
 * acknowledged the handed-over copy; KAFKA_FAIL once `dead-letter` has. Stored offsets are
 * committed (auto-commit of stored offsets, plus a synchronous commit on revoke and on
 * shutdown). A transient KAFKA_RETRY (for at most retry_in_place_ms, see kafka_verdict_t),
 * or a hand-over the broker did not acknowledge, seeks back to the record and waits with
 * exponential backoff, so the record is neither skipped nor lost.
 * Returns 0 after a clean shutdown (consumer closed, group left), or -1 with errstr if the
 * consumer could not be created. */
int kafka_consumer_run(const kafka_consumer_opts_t *opts, const volatile int *stop,
                       char *errstr, size_t errstr_size);

/* A consumer loop on its own thread, for services that also serve HTTP. */
typedef struct kafka_consumer kafka_consumer_t;

/* Starts kafka_consumer_run(opts) on a new thread. opts and everything it points to are
 * borrowed and must outlive the consumer. Returns the consumer, or NULL with errstr if the
 * thread cannot start. A consumer that cannot be created on its thread logs why and
 * kafka_consumer_failed() says so. */
kafka_consumer_t *kafka_consumer_start(const kafka_consumer_opts_t *opts,
                                       char *errstr, size_t errstr_size);

/* 1 when the loop ended by itself (it could not create its consumer), else 0. */
int kafka_consumer_failed(kafka_consumer_t *c);

/* Asks the loop to stop, waits for its clean shutdown (offsets committed, group left) and
 * frees it. Accepts NULL. */
void kafka_consumer_stop(kafka_consumer_t *c);

/* A loop run on a thread of its own by kafka_consumer_spawn: runs until *stop becomes
 * non-zero; returns 0 after a clean stop, or -1 with errstr when it could not start. */
typedef int (*kafka_consumer_loop_fn)(void *ctx, const volatile int *stop, char *errstr,
                                      size_t errstr_size);

/* Starts loop(ctx) on a new thread, for a consumer whose loop is its own (the retry
 * service's batches); kafka_consumer_start is this for kafka_consumer_run. ctx and name
 * (the group, for the log line when the loop fails) are borrowed and must outlive it.
 * kafka_consumer_failed and kafka_consumer_stop apply. Returns NULL with errstr if the
 * thread cannot start. */
kafka_consumer_t *kafka_consumer_spawn(kafka_consumer_loop_fn loop, void *ctx,
                                       const char *name, char *errstr, size_t errstr_size);

/* How kafka_consumer_join makes a consumer group member. */
typedef struct kafka_consumer_join {
    const char *bootstrap;
    const char *client_id;
    const char *group;               /* group.id */
    const char *const *topics;       /* subscribed */
    size_t ntopics;
    int auto_commit;                 /* 1: librdkafka commits the stored offsets (and they
                                      * are committed before partitions are revoked);
                                      * 0: the caller commits by itself */
    int ensure_redelivery;           /* 1: make retry.<group> exist before subscribing
                                      * (topics_ensure_redelivery; a failure is logged) */
    const char *const (*defaults)[2]; /* more { property, value } defaults, each unless
                                       * its KAFKA_<PROPERTY> is set; may be NULL */
    size_t ndefaults;
    const char *instance_id;         /* NULL or "": dynamic membership. Else static
                                      * membership: group.instance.id "<client_id>-<id>"
                                      * (unless KAFKA_GROUP_INSTANCE_ID is set), so that a
                                      * restarted process rejoins as the same member and
                                      * gets its partitions back at once, with no
                                      * rebalance; two live processes must never share it */
} kafka_consumer_join_t;

/* Checks an INSTANCE_ID: 1..KAFKA_INSTANCE_ID_MAX of [A-Za-z0-9._-]. */
#define KAFKA_INSTANCE_ID_MAX 64
int kafka_instance_id_valid(const char *s);

/* The consumer group member every loop uses, written once: kafka_conf_new, then
 * auto.offset.reset=earliest (a new group reads what was written before it existed),
 * session.timeout.ms=6000 and heartbeat.interval.ms=1000 (a crashed member's partitions
 * move after 6 s, not librdkafka's 45), group.instance.id from j->instance_id, and
 * j->defaults unless KAFKA_* chose, then forced group.id, enable.auto.commit per
 * j->auto_commit and enable.auto.offset.store=false (only offsets the loop stores are
 * committed), retry.<group> when j->ensure_redelivery, the rebalance callback (logs kafka_partitions_assigned/revoked and applies
 * eager or cooperative assignments) and the subscription. Rebalances and errors are served
 * by rd_kafka_consumer_poll. Returns the client (close it with kafka_consumer_leave), or
 * NULL with errstr. */
rd_kafka_t *kafka_consumer_join(const kafka_consumer_join_t *j, char *errstr,
                                size_t errstr_size);

/* Closes a client of kafka_consumer_join (revokes its partitions, leaves the group, so they
 * move to another member at once) and destroys it. Accepts NULL. */
void kafka_consumer_leave(rd_kafka_t *rk);

/* After a fatal error (librdkafka's _FATAL: say a static member fenced by the
 * coordinator, FENCED_INSTANCE_ID, after its session timed out during a broker's restart)
 * the client is of no more use and the member would stay out of the group for ever. Logs
 * kafka_consumer_fatal with librdkafka's reason, closes *rk and joins again with j, once a
 * second until it succeeds or *stop. What was processed but not committed is delivered
 * again (at least once). Returns 0 with the new client in *rk, or -1 when stopped (*rk
 * NULL). */
int kafka_consumer_rejoin(rd_kafka_t **rk, const kafka_consumer_join_t *j,
                          const volatile int *stop);

/* Logs an error the consumer reported instead of a record (kafka_consume_error); reaching
 * the end of a partition is not one. */
void kafka_consumer_log_error(const char *group, const rd_kafka_message_t *msg);

#endif
