/* event: CloudEvents 1.0 in the Kafka binary binding (ce_* headers, JSON value). */
#ifndef DOZEN_EVENT_H
#define DOZEN_EVENT_H

#include <stddef.h>
#include <jansson.h>
#include <librdkafka/rdkafka.h>

#define EVENT_SPECVERSION "1.0"
#define EVENT_CONTENT_TYPE "application/json"

typedef struct event_meta {
    char id[37];       /* ce_id: a UUID, the deduplication key of every consumer */
    char type[64];     /* ce_type: "order.completed" */
    char source[128];  /* ce_source: "/dozen/sales" */
    char time[40];     /* ce_time: RFC 3339 UTC */
    char traceparent[56]; /* ce_traceparent (CloudEvents distributed tracing): a W3C
                           * traceparent, "" when the event carries none */
} event_meta_t;

/* Fills m with a fresh UUID, the current time, type and source, and the traceparent of the
 * thread's span (trace.h; "" outside one). Returns 0, or -1 with errstr (type or source
 * too long, no randomness). */
int event_meta_new(event_meta_t *m, const char *type, const char *source,
                   char *errstr, size_t errstr_size);

/* Returns new headers (the caller owns them until kafka_produce takes them): ce_specversion,
 * ce_id, ce_source, ce_type, ce_time and content-type; when m has a traceparent, it as
 * ce_traceparent (the CloudEvents extension, fixed for the event) and as traceparent (the
 * per-hop header of W3C Trace Context over Kafka). NULL only if out of memory. */
rd_kafka_headers_t *event_headers_new(const event_meta_t *m);

/* Reads and validates the CloudEvents headers of a record: every ce_* header present,
 * ce_specversion "1.0", ce_id a UUID, ce_time an RFC 3339 date-time (util_rfc3339_parse),
 * every value valid UTF-8 without NUL or control characters and within the struct's
 * sizes. Returns 0, or -1 with
 * errstr naming the missing or bad header. */
int event_meta_read(const rd_kafka_message_t *msg, event_meta_t *m,
                    char *errstr, size_t errstr_size);

/* event_meta_read of a record's headers alone (hdrs NULL: none), for code and tests that
 * hold headers but no record. */
int event_meta_parse(const rd_kafka_headers_t *hdrs, event_meta_t *m,
                     char *errstr, size_t errstr_size);

/* Reads a record as an event of type expected_type: valid CloudEvents headers (see
 * event_meta_read, filled into m), the right ce_type, and a value that is a JSON object.
 * Returns the object (a new reference), or NULL with errstr saying what is wrong. */
json_t *event_data_read(const rd_kafka_message_t *msg, const char *expected_type,
                        event_meta_t *m, char *errstr, size_t errstr_size);

/* event_data_read of a record's parts: its headers (NULL: none) and its value (len bytes,
 * not necessarily NUL-terminated; NULL or 0: no value). */
json_t *event_data_parse(const rd_kafka_headers_t *hdrs, const void *payload, size_t len,
                         const char *expected_type, event_meta_t *m, char *errstr,
                         size_t errstr_size);

#endif
