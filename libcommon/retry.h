/* retry: the headers a record carries through the retry and dead-letter topics, and the
 * backoff policy of a consumer group. The contract is in docs/retry.md. */
#ifndef DOZEN_RETRY_H
#define DOZEN_RETRY_H

#include <stddef.h>
#include <stdint.h>
#include <librdkafka/rdkafka.h>

#define RETRY_TOPIC "retry"
#define RETRY_DEAD_LETTER_TOPIC "dead-letter"
#define RETRY_ERROR_MAX 512   /* dozen-error is cut to this many bytes */
#define RETRY_REASON_MAX 63

/* What the dozen-* headers say about a record's failures. */
typedef struct retry_info {
    char original_topic[250];
    int32_t original_partition;
    int64_t original_offset;
    char group[128];
    int attempt;              /* 1 for the first retry; 0 for a replayed record */
    int max_attempts;
    int64_t not_before_ms;
    int64_t deadline_ms;      /* 0: none */
    int64_t first_failed_at_ms;
    char reason[RETRY_REASON_MAX + 1];
    char last_reason[RETRY_REASON_MAX + 1]; /* on give-ups: the owner's last reason */
    char error[RETRY_ERROR_MAX + 1];
    char expired[32];         /* on a final notice: "max_attempts" or "deadline_exceeded" */
} retry_info_t;

/* Reads the dozen-* headers of msg. Returns 1 when the record carries none (a first
 * delivery), 0 when they are all there and valid (*info filled), -1 with errstr naming the
 * missing or bad header. */
int retry_info_read(const rd_kafka_message_t *msg, retry_info_t *info,
                    char *errstr, size_t errstr_size);

/* Returns new headers for a copy of msg: every header of msg except the dozen-* ones (so they
 * never pile up across hops), then the dozen-* headers from info (dozen-deadline only when
 * set, dozen-expired and dozen-last-reason only when not empty). extra_name/extra_value add
 * one more header when not NULL. NULL only if out of memory. The caller owns the result. */
rd_kafka_headers_t *retry_headers_build(const rd_kafka_message_t *msg, const retry_info_t *info,
                                        const char *extra_name, const char *extra_value);

/* Copies text into info->error, cut to RETRY_ERROR_MAX bytes without splitting a UTF-8
 * character. */
void retry_set_error(retry_info_t *info, const char *text);

/* How a consumer group spaces its retries. */
typedef struct retry_policy {
    int exponential;     /* 0: fixed delay (initial_ms every time) */
    int64_t initial_ms;
    double factor;       /* >= 1 */
    int64_t max_ms;      /* cap */
    int max_attempts;    /* retries allowed before max_attempts */
} retry_policy_t;

/* Reads RETRY_BACKOFF (fixed|exponential, default exponential), RETRY_INITIAL (1s),
 * RETRY_FACTOR (2), RETRY_MAX (60s), RETRY_MAX_ATTEMPTS (8). Returns 0 or -1 with errstr
 * naming the variable. */
int retry_policy_from_env(retry_policy_t *p, char *errstr, size_t errstr_size);

/* The delay before retry number attempt (1-based): initial * factor^(attempt-1), capped. */
int64_t retry_policy_delay(const retry_policy_t *p, int attempt);

/* Writes the redelivery topic of a consumer group ("retry.<group>") into out. Returns 0, or
 * -1 if it does not fit. */
int retry_redelivery_topic(const char *group, char *out, size_t out_size);

#endif
