/* retry: the dozen-* header contract a record carries through `retry`, `retry.<group>` and
 * `dead-letter` (names, limits, read with full validation, write, group names, the
 * redelivery topic name) and the backoff policy of a consumer group. Written once: used by
 * the consumers' hand-over (kafka_handover.c), the retry service and dozenctl. The
 * contract is described in docs/retry.md. */
#ifndef DOZEN_RETRY_H
#define DOZEN_RETRY_H

#include <stddef.h>
#include <stdint.h>
#include <librdkafka/rdkafka.h>

#define RETRY_TOPIC "retry"                /* what the retry service consumes */
#define RETRY_DEAD_LETTER_TOPIC "dead-letter"
#define RETRY_REDELIVERY_PREFIX "retry."   /* retry.<group>: one group's redeliveries */

/* The headers of the contract. Every header whose name starts with RETRY_HDR_PREFIX
 * belongs to it: a copy of a record never carries the previous hop's. */
#define RETRY_HDR_PREFIX "dozen-"
#define RETRY_HDR_ORIGINAL_TOPIC "dozen-original-topic"
#define RETRY_HDR_ORIGINAL_PARTITION "dozen-original-partition"
#define RETRY_HDR_ORIGINAL_OFFSET "dozen-original-offset"
#define RETRY_HDR_GROUP "dozen-group"
#define RETRY_HDR_ATTEMPT "dozen-attempt"
#define RETRY_HDR_MAX_ATTEMPTS "dozen-max-attempts"
#define RETRY_HDR_NOT_BEFORE "dozen-not-before"
#define RETRY_HDR_DEADLINE "dozen-deadline"
#define RETRY_HDR_REASON "dozen-reason"
#define RETRY_HDR_LAST_REASON "dozen-last-reason"
#define RETRY_HDR_ERROR "dozen-error"
#define RETRY_HDR_FIRST_FAILED_AT "dozen-first-failed-at"
#define RETRY_HDR_EXPIRED "dozen-expired"

/* Reason codes of the contract (dozen-reason, dozen-expired). */
#define RETRY_REASON_INVALID_RECORD "invalid_record"
#define RETRY_REASON_MAX_ATTEMPTS "max_attempts"
#define RETRY_REASON_DEADLINE_EXCEEDED "deadline_exceeded"
#define RETRY_REASON_UNKNOWN_GROUP "unknown_group"

/* Limits. Names (topic, group, reasons) are 1..max characters of [A-Za-z0-9._-]. */
#define RETRY_TOPIC_MAX 249      /* Kafka's limit on a topic name */
#define RETRY_GROUP_MAX 200      /* so that "retry.<group>" is a legal topic name */
#define RETRY_REASON_MAX 64
#define RETRY_EXPIRED_MAX 31
#define RETRY_ERROR_MAX 512      /* dozen-error is cut to this many bytes */
#define RETRY_EPOCH_MS_MAX 253402300799999LL /* 9999-12-31T23:59:59.999Z */

/* "No deadline", in retry_info_t.deadline_ms and everywhere a deadline is passed around:
 * 0 (the epoch itself is never a deadline). On the wire it is the absence of
 * dozen-deadline, which when present is 1..RETRY_EPOCH_MS_MAX. */
#define RETRY_NO_DEADLINE 0

/* What the dozen-* headers say about a record's failures. */
typedef struct retry_info {
    char original_topic[RETRY_TOPIC_MAX + 1];
    int32_t original_partition;
    int64_t original_offset;
    char group[RETRY_GROUP_MAX + 1];
    int attempt;              /* 1 for the first retry; 0 for a replayed record */
    int max_attempts;
    int64_t not_before_ms;
    int64_t deadline_ms;      /* RETRY_NO_DEADLINE: none */
    int64_t first_failed_at_ms;
    char reason[RETRY_REASON_MAX + 1];
    char last_reason[RETRY_REASON_MAX + 1]; /* on give-ups: the owner's last reason */
    char error[RETRY_ERROR_MAX + 1];        /* as sent (UTF-8 kept), cut; "" when absent */
    char expired[RETRY_EXPIRED_MAX + 1];    /* on a final notice: "max_attempts" or
                                             * "deadline_exceeded" */
} retry_info_t;

/* Reads and validates the dozen-* headers of hdrs (NULL: every header is missing) into
 * *info. Required: original-topic, original-partition (0..INT32_MAX), original-offset,
 * group, attempt (min_attempt..INT32_MAX: 1 on `retry`, 0 where a replayed record may
 * come), max-attempts, not-before, reason, first-failed-at; optional: deadline,
 * last-reason, expired, error (cut to RETRY_ERROR_MAX bytes on a character). Integers are
 * decimal digits only; times are ms since the epoch up to RETRY_EPOCH_MS_MAX. The last of
 * repeated headers counts. Returns 0 when valid; 1 when the record carries none of
 * dozen-original-topic, dozen-group and dozen-attempt (a first delivery; errstr says the
 * first one is missing); -1 with errstr naming the missing or bad header and quoting (cut,
 * made printable) its value. */
int retry_info_parse(const rd_kafka_headers_t *hdrs, int min_attempt, retry_info_t *info,
                     char *errstr, size_t errstr_size);

/* retry_info_parse of msg's headers with min_attempt 0 (redeliveries and dead letters). */
int retry_info_read(const rd_kafka_message_t *msg, retry_info_t *info,
                    char *errstr, size_t errstr_size);

/* The first required dozen-* header absent from hdrs (in the order retry_info_parse checks
 * them), or NULL when all are there. */
const char *retry_info_first_missing(const rd_kafka_headers_t *hdrs);

/* Which dozen-* headers retry_headers_add writes. */
typedef enum retry_hdrs {
    RETRY_HDRS_FULL = 0,   /* the whole contract; deadline only when set, last-reason and
                            * expired only when not empty */
    RETRY_HDRS_INVALID     /* a record that was not a valid retry record, on dead-letter:
                            * provenance, group, reason, error, first-failed-at */
} retry_hdrs_t;

/* Adds info's dozen-* headers to hdrs (which should hold none yet). Returns 0, or -1 if
 * librdkafka refused one. */
int retry_headers_add(rd_kafka_headers_t *hdrs, const retry_info_t *info, retry_hdrs_t which);

/* Returns new headers holding every header of src (NULL: none) except the dozen-* ones, in
 * order, null values kept null; NULL only if out of memory. The caller owns the result. */
rd_kafka_headers_t *retry_headers_copy(const rd_kafka_headers_t *src);

/* Returns new headers for a copy of msg: retry_headers_copy of msg's headers, then
 * info's headers (RETRY_HDRS_FULL). extra_name/extra_value add one more header when not
 * NULL. NULL only if out of memory. The caller owns the result. */
rd_kafka_headers_t *retry_headers_build(const rd_kafka_message_t *msg, const retry_info_t *info,
                                        const char *extra_name, const char *extra_value);

/* 1 if name is a header of the contract (starts with "dozen-"), else 0. */
int retry_header_is_ours(const char *name);

/* Copies text into info->error, cut to RETRY_ERROR_MAX bytes without splitting a UTF-8
 * character. */
void retry_set_error(retry_info_t *info, const char *text);

/* Copies in_len bytes of in (which may hold NULs) to out (out_size > 0) keeping printable
 * ASCII and replacing every other byte with '?'; cuts to out_size - 1 bytes. */
void retry_printable(const char *in, size_t in_len, char *out, size_t out_size);

/* 1 if s is a legal consumer group for this contract: 1..RETRY_GROUP_MAX characters of
 * [A-Za-z0-9._-] (so that "retry.<group>" is a legal topic name), else 0. */
int retry_group_valid(const char *s);

/* Writes the redelivery topic of a consumer group ("retry.<group>") into out. Returns 0, or
 * -1 if it does not fit. */
int retry_redelivery_topic(const char *group, char *out, size_t out_size);

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

#endif
