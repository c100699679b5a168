/* retry_service: the delayed-redelivery service (bin/retry). Private header; prototypes
 * grouped by source file. Not called retry.h: libcommon/retry.h is the consumers' side. */
#ifndef DOZEN_RETRY_SERVICE_H
#define DOZEN_RETRY_SERVICE_H

#include <pthread.h>
#include <stddef.h>
#include <stdint.h>
#include <jansson.h>
#include <libpq-fe.h>
#include <librdkafka/rdkafka.h>

#include "db.h"
#include "metrics.h"
#include "http.h"
#include "retry.h"
#include "svc.h"

#define RETRY_SERVICE "retry"
/* The contract (topics, dozen-* headers, reasons, limits) is libcommon/retry.h. */

struct config {
    svc_config_t svc;           /* the common settings (svc_config_read) */
    const char *database_url;   /* = svc.database_url, where the other files read it */
    const char *kafka_bootstrap; /* = svc.kafka_bootstrap, likewise */
    long long db_wait_ms;       /* = svc.db_wait_ms, likewise */
    const char *group;          /* RETRY_GROUP: this service's consumer group */
    int batch;                  /* RETRY_BATCH: records per consumer batch / scheduler round */
};

struct consumer;
struct scheduler;

struct retry {
    struct config cfg;
    db_pool_t *db;
    metrics_t *metrics;         /* served on GET /metrics (svc_run) */
    struct scheduler *scheduler;
    struct consumer *consumer;
};

/* record.c: a record on `retry` as the service keeps it, the give-up rule, the original
 * headers' encoding, the headers of what the service sends */

/* One record of `retry`, validated. */
typedef struct retry_record {
    retry_info_t info;          /* its dozen-* headers: attempt >= 1; error printable ASCII
                                 * only; last_reason and expired always "" */
    char ce_id[37];             /* the ce_id header when it is a UUID, else "" */
} retry_record_t;

/* What the scheduler does with a due record. */
typedef enum retry_action {
    RETRY_REDELIVER = 0,
    RETRY_GIVE_UP_MAX_ATTEMPTS,   /* attempt > max_attempts */
    RETRY_GIVE_UP_DEADLINE        /* not_before > deadline, or now >= deadline */
} retry_action_t;

/* Reads a record on `retry`: retry_info_parse with attempts from 1 (hdrs may be NULL: then
 * every header is missing), dozen-error made printable. Returns 0 with r filled, or -1 with
 * errstr naming the missing or bad header and quoting its value; r->ce_id is filled either
 * way. */
int record_parse(const rd_kafka_headers_t *hdrs, retry_record_t *r,
                 char *errstr, size_t errstr_size);

/* due_at of a record: not_before, or the deadline (RETRY_NO_DEADLINE: none) when that
 * comes first. */
int64_t record_due_at(int64_t not_before_ms, int64_t deadline_ms);

/* The give-up rule, applied when a record is due (now_ms >= its due_at). */
retry_action_t record_decide(const retry_record_t *r, int64_t now_ms);

/* The dozen-reason of a give-up ("max_attempts", "deadline_exceeded"); NULL for
 * RETRY_REDELIVER. */
const char *record_action_reason(retry_action_t a);

/* Encodes the headers of hdrs that do not start with "dozen-" (hdrs may be NULL) into a
 * new buffer *out of *out_len bytes, which the caller frees. Format (version 1): one byte
 * 0x01, then per header in order: the name's length (2 bytes, big-endian), the name, the
 * value's length (4 bytes, big-endian; 0xFFFFFFFF for a null value), the value. Returns 0,
 * or -1 with errstr (out of memory, a name longer than 65535 bytes). */
int record_headers_encode(const rd_kafka_headers_t *hdrs, unsigned char **out,
                          size_t *out_len, char *errstr, size_t errstr_size);

/* Decodes what record_headers_encode wrote into new headers (the caller owns them).
 * Returns NULL with errstr when buf is not such an encoding or out of memory. */
rd_kafka_headers_t *record_headers_decode(const unsigned char *buf, size_t len,
                                          char *errstr, size_t errstr_size);

/* What an outgoing record is. */
typedef enum record_out {
    OUT_REDELIVERY = 0,  /* to retry.<group>: the retry record's headers */
    OUT_NOTICE,          /* to retry.<group>: the same plus dozen-expired: <reason> */
    OUT_DEAD_LETTER      /* to dead-letter: dozen-reason <give-up reason>, dozen-last-reason */
} record_out_t;

/* Adds the dozen-* headers of r to hdrs (which must hold no dozen-* header yet) for an
 * outgoing record of kind out; give_up is the give-up reason for OUT_NOTICE and
 * OUT_DEAD_LETTER (ignored for OUT_REDELIVERY); error replaces r->error in dozen-error
 * when not NULL (made printable, cut). Returns 0, or -1 with errstr. */
int record_headers_add(rd_kafka_headers_t *hdrs, const retry_record_t *r, record_out_t out,
                       const char *give_up, const char *error, char *errstr,
                       size_t errstr_size);

/* The headers of an invalid retry record sent to dead-letter: the record's headers that do
 * not start with "dozen-" (in may be NULL), then dozen-original-topic/partition/offset =
 * where the record sits on `retry`, dozen-group = group (the retry service's own group:
 * the consumer that could not process it), dozen-reason invalid_record, dozen-error error
 * (made printable, cut), dozen-first-failed-at now_ms. Returns new headers the caller
 * owns, or NULL with errstr. */
rd_kafka_headers_t *record_invalid_headers(const rd_kafka_headers_t *in, const char *group,
                                           const char *topic, int32_t partition,
                                           int64_t offset, const char *error,
                                           int64_t now_ms, char *errstr, size_t errstr_size);


/* store.c: SQL */

extern const db_stmt_t store_stmts[];
extern const size_t store_nstmts;

/* One record to store: its validated headers and where it sits on `retry`. */
typedef struct store_row {
    retry_record_t rec;
    int32_t retry_partition;
    int64_t retry_offset;
    int64_t retry_timestamp;        /* its Kafka timestamp, ms; -1 if it has none */
    const void *key;                /* borrowed; NULL: no key */
    size_t key_len;
    const void *value;              /* borrowed; NULL: a null value */
    size_t value_len;
    unsigned char *headers;         /* the encoded non-dozen headers; owned (free) */
    size_t headers_len;
    int invalid;                    /* 1: dead-lettered, only counted */
    int refused;                    /* 1: PostgreSQL refuses its data (a data error):
                                     * dead-lettered, not stored at all */
    char invalid_error[RETRY_ERROR_MAX + 1];
} store_row_t;

/* Stores a consumer batch in one transaction: each valid row into retry_pending, each
 * invalid one into retry_dead_letters, a refused one nowhere, both ON CONFLICT DO NOTHING (a record seen again
 * after a crash is stored once). invalid_group is the group recorded for invalid rows.
 * *inserted counts new pending rows and *earliest_due is their smallest due_at (INT64_MAX
 * when none). Returns 0 once committed, or -1 with errstr and sqlstate (nothing kept). */
int store_batch(PGconn *conn, const store_row_t *rows, size_t n, const char *invalid_group,
                size_t *inserted, int64_t *earliest_due, char sqlstate[6],
                char *errstr, size_t errstr_size);

/* A due row read back for the scheduler. */
typedef struct pending_row {
    int64_t id;
    retry_record_t rec;
    unsigned char *key;        /* owned (PQfreemem); NULL: no key */
    size_t key_len;
    unsigned char *value;      /* owned (PQfreemem); NULL: a null value */
    size_t value_len;
    unsigned char *headers;    /* owned (PQfreemem) */
    size_t headers_len;
    int64_t due_at_ms;
} pending_row_t;

/* Reads at most limit rows with due_at <= now_ms, earliest first, into a new array *rows
 * (free with store_rows_free). Returns the number of rows, or -1 with errstr. */
int store_due(PGconn *conn, int64_t now_ms, int limit, pending_row_t **rows,
              char *errstr, size_t errstr_size);
void store_rows_free(pending_row_t *rows, int n);

/* The smallest due_at: 1 with *due_ms, 0 when nothing is pending, -1 with errstr. */
int store_next_due(PGconn *conn, int64_t *due_ms, char *errstr, size_t errstr_size);

/* Ends a round in one statement (atomic): deletes the rows in done (n_done ids),
 * recording those among them listed in gave_up (n_gave_up ids with their give-up reasons,
 * same order) in retry_dead_letters; and gives the rows in later (n_later ids) the new
 * due_at in later_due (same order). Returns 0, or -1 with errstr (nothing changed). */
int store_finish_round(PGconn *conn, const int64_t *done, size_t n_done,
                       const int64_t *gave_up, const char *const *gave_up_reasons,
                       size_t n_gave_up, const int64_t *later, const int64_t *later_due,
                       size_t n_later, char *errstr, size_t errstr_size);

/* Takes the session advisory lock that makes one scheduler active among instances sharing
 * the database: 1 taken, 0 held by another session, -1 with errstr. */
int store_try_scheduler_lock(PGconn *conn, char *errstr, size_t errstr_size);

/* The GET /stats body as a new JSON object, from one consistent snapshot; NULL with
 * errstr. */
json_t *store_stats(PGconn *conn, char *errstr, size_t errstr_size);

/* deliver.c: producing records and waiting for the broker's acknowledgements */

/* The fate of one produced record, filled in by its delivery report. */
typedef struct deliver_status {
    int pending;                /* 1 from deliver_produce until the report arrives */
    rd_kafka_resp_err_t err;    /* the report's error (NO_ERROR: acknowledged, acks=all) */
} deliver_status_t;

/* The delivery report callback to give kafka_producer_new, with as ctx an int counting the
 * reports still expected; the producer must be polled on one thread only. */
void deliver_report(void *ctx, void *msg_opaque, rd_kafka_resp_err_t err,
                    int32_t partition, int64_t offset);

/* Produces one record to topic (key: key_len bytes, NULL for none; value copied, NULL for a
 * null value) with st as its opaque and counts it in *outstanding (the producer's ctx).
 * Waits while the local queue is full, for at most 10 s. On success the headers belong to
 * librdkafka; on failure (-1 with errstr) the caller still owns them and st is not
 * pending. */
int deliver_produce(rd_kafka_t *rk, int *outstanding, const char *topic, const void *key,
                    size_t key_len, const void *value, size_t value_len,
                    rd_kafka_headers_t *hdrs, deliver_status_t *st,
                    char *errstr, size_t errstr_size);

/* Serves delivery reports until none is outstanding. Every record gets its report within
 * message.timeout.ms, so this returns in bounded time. */
void deliver_wait(rd_kafka_t *rk, const int *outstanding);

/* 1 when err means the record itself can never be produced (too large for the producer or
 * the broker, refused as invalid), 0 for errors that may pass. */
int deliver_permanent(rd_kafka_resp_err_t err);

/* consumer.c: the `retry` consumer */

/* Starts the consumer of `retry` on its own thread (its own loop, see consumer.c). It
 * borrows r, which must outlive it. Returns NULL with errstr. */
struct consumer *consumer_start(struct retry *r, char *errstr, size_t errstr_size);

/* 1 when the consumer's thread ended by itself (it could not create its client). */
int consumer_failed(struct consumer *c);

/* Stops the loop after the batch in hand (stored and its offsets committed), closes the
 * consumer (leaving the group) and frees it. Accepts NULL. */
void consumer_stop(struct consumer *c);

/* scheduler.c: redeliveries and give-ups when due */

/* Starts the scheduler thread (it connects to PostgreSQL by itself and waits for the
 * scheduler lock). Returns NULL with errstr. */
struct scheduler *scheduler_start(struct retry *r, char *errstr, size_t errstr_size);

/* Tells the scheduler a row due at due_ms was stored: it wakes if that is earlier than
 * what it sleeps for. Thread-safe; accepts NULL. */
void scheduler_kick(struct scheduler *s, int64_t due_ms);

/* Stops the scheduler after the round in flight (its deliveries acknowledged or failed,
 * its rows updated) and frees it. Accepts NULL. */
void scheduler_stop(struct scheduler *s);

/* metrics.c: the retry service's series */

/* Gauges read at scrape time: dozen_retry_pending, dozen_retry_overdue_seconds,
 * dozen_retry_dead_letters. */
extern const metrics_sql_gauge_t retry_metrics_gauges[];
extern const size_t retry_metrics_ngauges;

/* Counts one scheduled row whose records the broker acknowledged at acked_ms: its lateness
 * (acked_ms - due_ms) and a redelivery (give_up NULL) or a give-up with that reason. */
void retry_metrics_outcome(metrics_t *m, const char *group, const char *give_up,
                           int64_t due_ms, int64_t acked_ms);

/* api.c: HTTP routes */

extern const http_route_t api_routes[];
extern const size_t api_nroutes;
int api_health(void *ctx, char *errstr, size_t errstr_size);

#endif
