/* kafka_handover: a record a consumer cannot process now (or ever) handed to `retry` or
 * `dead-letter` as a copy carrying the dozen-* headers of libcommon/retry.h, and the
 * broker's acknowledgement awaited, so the consumer stores its offset only once the copy
 * is safe. */
#include "kafka_handover.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "kafka.h"
#include "log.h"
#include "util.h"

#define HANDOVER_TIMEOUT_MS 30000 /* a hand-over to retry/dead-letter waits this long */

struct kafka_handover {
    rd_kafka_t *producer;
    char group[sizeof(((retry_info_t *)0)->group)]; /* dozen-group of what it sends */
};

/* The delivery report of one hand-over. */
struct handover_ack {
    volatile int done;
    rd_kafka_resp_err_t err;
};

static void handover_dr(void *ctx, void *msg_opaque, rd_kafka_resp_err_t err,
                        int32_t partition, int64_t offset)
{
    struct handover_ack *ack = msg_opaque;

    (void)ctx;
    (void)partition;
    (void)offset;
    ack->err = err;
    ack->done = 1;
}

/* Produces key, value and hdrs (owned: always taken) to topic and waits for the broker's
 * acknowledgement. Returns 0 when acknowledged, else -1 with errstr and *code. */
static int send_copy(kafka_handover_t *h, const char *topic, const void *key, size_t key_len,
                     const void *value, size_t value_len, rd_kafka_headers_t *hdrs,
                     rd_kafka_resp_err_t *code, char *errstr, size_t errstr_size)
{
    struct handover_ack ack = { 0, RD_KAFKA_RESP_ERR_NO_ERROR };
    int64_t deadline = util_mono_ms() + HANDOVER_TIMEOUT_MS;

    if (hdrs == NULL) {
        *code = RD_KAFKA_RESP_ERR__FAIL;
        util_errf(errstr, errstr_size, "out of memory");
        return -1;
    }
    if (kafka_produce_bytes(h->producer, topic, key, key_len, value, value_len, hdrs, &ack,
                            code, errstr, errstr_size) != 0) {
        rd_kafka_headers_destroy(hdrs);
        return -1;
    }
    while (!ack.done && util_mono_ms() < deadline)
        rd_kafka_poll(h->producer, 100);
    if (!ack.done) {
        util_errf(errstr, errstr_size, "%s did not acknowledge within %d ms", topic,
                  HANDOVER_TIMEOUT_MS);
        /* The message may still be delivered later; ack lives on this stack frame, so wait
         * for the report before returning (bounded by message.timeout.ms). */
        while (!ack.done)
            rd_kafka_poll(h->producer, 100);
    }
    *code = ack.err;
    if (ack.err != RD_KAFKA_RESP_ERR_NO_ERROR) {
        util_errf(errstr, errstr_size, "%s: %s", topic, rd_kafka_err2str(ack.err));
        return -1;
    }
    return 0;
}

/* Produces a copy of msg (key, value, its non-dozen headers and info's dozen-* headers) to
 * topic and waits for the broker's acknowledgement. The key is kept byte for byte (any
 * length, any byte): it chose the partition, and a redelivery must land where the
 * original's successors do. A copy that can never be produced (too large) is, with trim,
 * sent without the value, and then without the key and the original headers too, with
 * dozen-error saying so: a record too large for dead-letter must not stop its partition.
 * Returns 0 when acknowledged, 1 when too large (without trim), -1 with errstr. */
static int handover(kafka_handover_t *h, const rd_kafka_message_t *msg, const char *topic,
                    const retry_info_t *info, int trim, char *errstr, size_t errstr_size)
{
    rd_kafka_resp_err_t code = RD_KAFKA_RESP_ERR_NO_ERROR;
    retry_info_t cut;
    char note[RETRY_ERROR_MAX + 1];

    if (send_copy(h, topic, msg->key, msg->key != NULL ? msg->key_len : 0, msg->payload,
                  msg->payload != NULL ? msg->len : 0, retry_headers_build(msg, info, NULL, NULL),
                  &code, errstr, errstr_size) == 0)
        return 0;
    if (!kafka_err_permanent(code))
        return -1;
    if (!trim)
        return 1;
    cut = *info;
    snprintf(note, sizeof(note), "%.300s (not kept, too large for %s: the value of %zu bytes)",
             info->error, topic, msg->len);
    retry_set_error(&cut, note);
    log_warn("handover_trimmed group=%s topic=%s partition=%d offset=%lld value_bytes=%zu "
             "key_bytes=%zu", h->group, rd_kafka_topic_name(msg->rkt), (int)msg->partition,
             (long long)msg->offset, msg->len, msg->key_len);
    if (send_copy(h, topic, msg->key, msg->key != NULL ? msg->key_len : 0, NULL, 0,
                  retry_headers_build(msg, &cut, NULL, NULL), &code, errstr,
                  errstr_size) == 0)
        return 0;
    if (!kafka_err_permanent(code))
        return -1;
    {
        rd_kafka_headers_t *hdrs = rd_kafka_headers_new(16);

        snprintf(note, sizeof(note), "%.300s (not kept, too large for %s: the value of %zu "
                 "bytes, the key of %zu bytes and the headers)", info->error, topic, msg->len,
                 msg->key_len);
        retry_set_error(&cut, note);
        if (hdrs != NULL && retry_headers_add(hdrs, &cut, RETRY_HDRS_FULL) != 0) {
            rd_kafka_headers_destroy(hdrs);
            hdrs = NULL;
        }
        return send_copy(h, topic, NULL, 0, NULL, 0, hdrs, &code, errstr, errstr_size);
    }
}

void kafka_handover_provenance(retry_info_t *info, const rd_kafka_message_t *msg)
{
    snprintf(info->original_topic, sizeof(info->original_topic), "%s",
             rd_kafka_topic_name(msg->rkt));
    info->original_partition = msg->partition;
    info->original_offset = msg->offset;
    info->first_failed_at_ms = util_now_ms();
}

int kafka_handover_dead_letter(kafka_handover_t *h, const rd_kafka_message_t *msg,
                               retry_info_t *info, const char *reason, const char *error)
{
    char err[512];

    snprintf(info->group, sizeof(info->group), "%s", h->group);
    snprintf(info->reason, sizeof(info->reason), "%s", reason);
    info->expired[0] = '\0';
    retry_set_error(info, error);
    if (info->not_before_ms == 0)
        info->not_before_ms = util_now_ms();
    if (handover(h, msg, RETRY_DEAD_LETTER_TOPIC, info, 1, err, sizeof(err)) != 0) {
        log_error("dead_letter_failed group=%s topic=%s partition=%d offset=%lld error=%s",
                  h->group, rd_kafka_topic_name(msg->rkt), (int)msg->partition,
                  (long long)msg->offset, LOG_Q(err));
        return -1;
    }
    log_error("record_dead_lettered group=%s topic=%s partition=%d offset=%lld reason=%s "
              "attempt=%d error=%s", h->group, info->original_topic,
              (int)info->original_partition, (long long)info->original_offset, reason,
              info->attempt, LOG_Q(error));
    return 0;
}
int kafka_handover_retry(kafka_handover_t *h, const rd_kafka_message_t *msg,
                         const retry_info_t *info, char *errstr, size_t errstr_size)
{
    char err[512];

    int rc = handover(h, msg, RETRY_TOPIC, info, 0, err, sizeof(err));

    if (rc == 1) {
        /* It can never be retried: to dead-letter, which keeps what fits. */
        retry_info_t dead = *info;
        char why[RETRY_ERROR_MAX + 1];

        snprintf(why, sizeof(why), "too large for retry (%.200s); %.200s", err, info->error);
        if (kafka_handover_dead_letter(h, msg, &dead, "too_large", why) != 0) {
            util_errf(errstr, errstr_size, "hand-over to dead-letter failed");
            return -1;
        }
        return 0;
    }
    if (rc != 0) {
        util_errf(errstr, errstr_size, "hand-over to retry failed: %s", err);
        return -1;
    }
    log_warn("record_retry_later group=%s topic=%s partition=%d offset=%lld attempt=%d "
             "reason=%s not_before=%lld error=%s", h->group, info->original_topic,
             (int)info->original_partition, (long long)info->original_offset,
             info->attempt, info->reason, (long long)info->not_before_ms, LOG_Q(info->error));
    return 0;
}

#define HANDOVER_WARM_MS 2000

kafka_handover_t *kafka_handover_new(const char *bootstrap, const char *client_id,
                                     const char *group, char *errstr, size_t errstr_size)
{
    kafka_handover_t *h = NULL, *ret = NULL;

    if (group == NULL || group[0] == '\0' || strlen(group) >= sizeof(h->group)) {
        util_errf(errstr, errstr_size, "kafka hand-over: bad group name");
        goto done;
    }
    h = calloc(1, sizeof(*h));
    if (h == NULL) {
        util_errf(errstr, errstr_size, "out of memory");
        goto done;
    }
    snprintf(h->group, sizeof(h->group), "%s", group);
    h->producer = kafka_producer_new(bootstrap, client_id, handover_dr, NULL, errstr,
                                     errstr_size);
    if (h->producer == NULL)
        goto done;
    /* The first hand-over must not stall the consumer while the producer looks up the
     * leaders of retry and dead-letter (seen: a redelivery waited 2.9 s behind it). */
    kafka_producer_warm(h->producer, HANDOVER_WARM_MS);
    ret = h;
    h = NULL; /* the caller's now */
done:
    kafka_handover_free(h);
    return ret;
}

void kafka_handover_free(kafka_handover_t *h)
{
    if (h == NULL)
        return;
    kafka_producer_close(h->producer, 5000);
    free(h);
}
