/* kafka: librdkafka set-up written once: configuration, the idempotent producer and the
 * consumer loop that commits an offset only after the record's effect is committed. */
#ifndef DOZEN_KAFKA_H
#define DOZEN_KAFKA_H

#include <stddef.h>
#include <stdint.h>
#include <librdkafka/rdkafka.h>

/* Returns a new configuration (the caller owns it until it passes it to rd_kafka_new) with
 * bootstrap.servers and client.id set, then every environment variable KAFKA_<NAME> other
 * than KAFKA_BOOTSTRAP applied as the librdkafka property <name> (lower case, '_' -> '.'),
 * as kcat's -X does: KAFKA_SECURITY_PROTOCOL=ssl sets security.protocol. A variable that is
 * not a librdkafka property is skipped with a warning in the log (Kafka's own tooling uses
 * KAFKA_HEAP_OPTS and the like); a bad value for a real property is an error naming the
 * variable. Returns NULL with errstr on error. */
rd_kafka_conf_t *kafka_conf_new(const char *bootstrap, const char *client_id,
                                char *errstr, size_t errstr_size);

/* Delivery report: called once per produced message, from rd_kafka_poll()/rd_kafka_flush()
 * on the polling thread. err is RD_KAFKA_RESP_ERR_NO_ERROR when the broker acknowledged the
 * message with acks=all; partition/offset are then where it was written. */
typedef void (*kafka_dr_fn)(void *ctx, void *msg_opaque, rd_kafka_resp_err_t err,
                            int32_t partition, int64_t offset);

/* Creates an idempotent producer (enable.idempotence=true, acks=all). dr may be NULL. The
 * caller polls it (rd_kafka_poll) and destroys it (kafka_producer_close). Returns NULL with
 * errstr on failure. */
rd_kafka_t *kafka_producer_new(const char *bootstrap, const char *client_id,
                               kafka_dr_fn dr, void *ctx, char *errstr, size_t errstr_size);

/* Produces one message (value copied). On success the headers' ownership passes to
 * librdkafka; on failure (-1, errstr) the caller still owns hdrs. Blocks while the local
 * queue is full (polling the producer meanwhile) for at most 10 s. */
int kafka_produce(rd_kafka_t *rk, const char *topic, const char *key,
                  const char *value, size_t value_len, rd_kafka_headers_t *hdrs,
                  void *msg_opaque, char *errstr, size_t errstr_size);

/* Flushes for at most timeout_ms and destroys the producer. Accepts NULL. */
void kafka_producer_close(rd_kafka_t *rk, int timeout_ms);

/* What a record handler decided. */
typedef enum kafka_verdict {
    KAFKA_DONE = 0,     /* the effect is committed (or there is none): commit the offset */
    KAFKA_RETRY,        /* the consumer itself cannot work now (its database is down): the
                         * same record again, in place, after a backoff */
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
} kafka_consumer_opts_t;

/* Runs a consumer group member until *stop becomes non-zero: subscribes to opts->topics and
 * to `retry.<group>`, calls the handler for each record in order, and stores the offset only
 * after the record is dealt with: KAFKA_DONE; KAFKA_RETRY_LATER once the `retry` topic has
 * acknowledged the handed-over copy; KAFKA_FAIL once `dead-letter` has. Stored offsets are
 * committed (auto-commit of stored offsets, plus a synchronous commit on revoke and on
 * shutdown). KAFKA_RETRY, or a hand-over the broker did not acknowledge, seeks back to the
 * record and waits with exponential backoff, so the record is neither skipped nor lost. Returns 0 after a clean shutdown (consumer
 * closed, group left), or -1 with errstr if the consumer could not be created. */
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

/* Returns the value of the last header called name as a new NUL-terminated string the caller
 * frees, or NULL when it is absent. */
char *kafka_header_dup(const rd_kafka_message_t *msg, const char *name);

#endif
