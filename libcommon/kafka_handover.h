/* kafka_handover: hands a record over to `retry` (to be redelivered later on
 * `retry.<group>`) or to `dead-letter`, as a copy of its key, value and headers plus the
 * dozen-* headers of retry.h, and waits for the broker's acknowledgement. Used by the
 * consumer verdict loop (kafka_consumer.c). */
#ifndef DOZEN_KAFKA_HANDOVER_H
#define DOZEN_KAFKA_HANDOVER_H

#include <stddef.h>
#include <librdkafka/rdkafka.h>

#include "retry.h"

typedef struct kafka_handover kafka_handover_t;

/* Creates a hand-over for consumer group group (copied; written as dozen-group) with its
 * own idempotent producer. Returns it (free with kafka_handover_free), or NULL with
 * errstr. */
kafka_handover_t *kafka_handover_new(const char *bootstrap, const char *client_id,
                                     const char *group, char *errstr, size_t errstr_size);

/* Frees h, flushing its producer for at most 5 s. Accepts NULL. */
void kafka_handover_free(kafka_handover_t *h);

/* Fills the provenance of a first failure in info: msg's own topic, partition and offset,
 * and first-failed-at = now. */
void kafka_handover_provenance(retry_info_t *info, const rd_kafka_message_t *msg);

/* Produces a copy of msg with info's headers to `retry` and waits (at most 30 s, then for
 * the delivery report) for the acknowledgement. The key is copied byte for byte. Returns 0
 * when acknowledged (and logs record_retry_later), or -1 with errstr. A copy too large to
 * produce ever goes to `dead-letter` instead (reason too_large; 0 once acknowledged). */
int kafka_handover_retry(kafka_handover_t *h, const rd_kafka_message_t *msg,
                         const retry_info_t *info, char *errstr, size_t errstr_size);

/* Sends a copy of msg to `dead-letter` with info's headers, dozen-group = h's group and
 * the given reason and error (not_before set to now when 0). A copy too large to produce
 * is sent without the value (then without key and original headers too), dozen-error
 * saying so. Returns 0 when acknowledged
 * (logged as record_dead_lettered), -1 when not (logged as dead_letter_failed). */
int kafka_handover_dead_letter(kafka_handover_t *h, const rd_kafka_message_t *msg,
                               retry_info_t *info, const char *reason, const char *error);

#endif
