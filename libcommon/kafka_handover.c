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

/* Produces a copy of msg (key, value, its non-dozen headers and info's dozen-* headers) to
 * topic and waits for the broker's acknowledgement. Returns 0 when acknowledged. */
static int handover(kafka_handover_t *h, const rd_kafka_message_t *msg, const char *topic,
                    const retry_info_t *info, char *errstr, size_t errstr_size)
{
    struct handover_ack ack = { 0, RD_KAFKA_RESP_ERR_NO_ERROR };
    rd_kafka_headers_t *hdrs = retry_headers_build(msg, info, NULL, NULL);
    int64_t deadline = util_mono_ms() + HANDOVER_TIMEOUT_MS;

    if (hdrs == NULL) {
        util_errf(errstr, errstr_size, "out of memory");
        return -1;
    }
    /* The key byte for byte (any length, any byte): it chose the partition, and the
     * redelivery must land where the original's successors do. */
    if (kafka_produce_bytes(h->producer, topic, msg->key, msg->key != NULL ? msg->key_len : 0,
                            msg->payload, msg->payload != NULL ? msg->len : 0, hdrs, &ack,
                            errstr, errstr_size) != 0) {
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
    if (ack.err != RD_KAFKA_RESP_ERR_NO_ERROR) {
        util_errf(errstr, errstr_size, "%s: %s", topic, rd_kafka_err2str(ack.err));
        return -1;
    }
    return 0;
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
    if (handover(h, msg, RETRY_DEAD_LETTER_TOPIC, info, err, sizeof(err)) != 0) {
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

    if (handover(h, msg, RETRY_TOPIC, info, err, sizeof(err)) != 0) {
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
