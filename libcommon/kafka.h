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
    KAFKA_DONE = 0,  /* the effect is committed (or there is none): commit the offset */
    KAFKA_RETRY,     /* transient failure: the same record is handled again after a backoff */
    KAFKA_FAIL       /* the record can never be processed: logged with provenance, skipped */
} kafka_verdict_t;

/* Handles one record. It must commit its effect (for example a PostgreSQL transaction that
 * also records the record's ce_id) before returning KAFKA_DONE. errstr explains RETRY/FAIL. */
typedef kafka_verdict_t (*kafka_handler_fn)(const rd_kafka_message_t *msg, void *ctx,
                                            char *errstr, size_t errstr_size);

typedef struct kafka_consumer_opts {
    const char *bootstrap;
    const char *group;             /* group.id */
    const char *client_id;
    const char *const *topics;
    size_t ntopics;
    kafka_handler_fn handler;
    void *ctx;
    int64_t retry_initial_ms;      /* first backoff for KAFKA_RETRY (default 200 ms if 0) */
    int64_t retry_max_ms;          /* backoff cap (default 10 s if 0) */
} kafka_consumer_opts_t;

/* Runs a consumer group member until *stop becomes non-zero: polls, calls the handler for
 * each record in order, stores the offset only after KAFKA_DONE or KAFKA_FAIL, and commits
 * stored offsets (auto-commit of stored offsets, plus a synchronous commit on revoke and on
 * shutdown). KAFKA_RETRY seeks back to the record and waits with exponential backoff, so the
 * record is neither skipped nor committed. Returns 0 after a clean shutdown (consumer
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
