/* kafka: librdkafka set-up written once: configuration, the idempotent producer and header
 * helpers. It includes the consumer verdict loop (kafka_consumer.h), so one include gives a
 * service all of it; the assign-only reader is kafka_reader.h and the retry/dead-letter
 * hand-over kafka_handover.h. */
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

/* Sets a default of ours unless the operator chose a value through KAFKA_<PROP>
 * ("linger.ms" -> KAFKA_LINGER_MS). Returns 0, or -1 with errstr naming the property. */
int kafka_conf_set_default(rd_kafka_conf_t *conf, const char *prop, const char *value,
                           char *errstr, size_t errstr_size);

/* Sets a property the guarantees of this module depend on whatever the environment says
 * (a KAFKA_<PROP> that differs is overridden with a warning in the log), so an operator
 * cannot turn off idempotence or offset-after-effect by accident. Returns 0, or -1 with
 * errstr naming the property. */
int kafka_conf_set_forced(rd_kafka_conf_t *conf, const char *prop, const char *value,
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

/* kafka_produce with exact bytes: a key of key_len bytes (any byte, NUL included; NULL: a
 * null key) and a value that may be NULL (a null value). err_out (may be NULL) gets
 * librdkafka's answer, so that a caller can tell a record too large to produce ever
 * (RD_KAFKA_RESP_ERR_MSG_SIZE_TOO_LARGE) from a passing failure. */
int kafka_produce_bytes(rd_kafka_t *rk, const char *topic, const void *key, size_t key_len,
                        const void *value, size_t value_len, rd_kafka_headers_t *hdrs,
                        void *msg_opaque, rd_kafka_resp_err_t *err_out, char *errstr,
                        size_t errstr_size);

/* 1 if err says a record can never be produced as it is (too large, or refused as
 * invalid by the broker), else 0. */
int kafka_err_permanent(rd_kafka_resp_err_t err);

/* Fetches the metadata of every topic once, so that the first record of each topic is not
 * held while the producer looks its leader up (about a second, or more on a fresh Apache
 * Kafka: every record produced meanwhile waits with it). Blocks up to timeout_ms; a broker
 * that does not answer in time only costs the warm-up (logged). For producers whose first
 * records are waited for: the outbox relay, the consumers' hand-over. */
void kafka_producer_warm(rd_kafka_t *rk, int timeout_ms);

/* Flushes for at most timeout_ms and destroys the producer. Accepts NULL. */
void kafka_producer_close(rd_kafka_t *rk, int timeout_ms);

/* Returns the value of the last header called name as a new NUL-terminated string the caller
 * frees, or NULL when it is absent. */
char *kafka_header_dup(const rd_kafka_message_t *msg, const char *name);

#include "kafka_consumer.h"

#endif
