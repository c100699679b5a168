/* deliver: producing records and waiting for the broker's acknowledgement of each. The
 * retry service sends exact bytes (a key may hold any byte, a value may be null), so it
 * calls rd_kafka_producev itself rather than kafka_produce, which takes a C-string key. */
#include "retry_service.h"

#include "kafka.h"
#include "util.h"

#define QUEUE_FULL_WAIT_MS 10000
#define FLUSH_SLICE_MS 500

void deliver_report(void *ctx, void *msg_opaque, rd_kafka_resp_err_t err,
                    int32_t partition, int64_t offset)
{
    int *outstanding = ctx;
    deliver_status_t *st = msg_opaque;

    (void)partition;
    (void)offset;
    if (st != NULL) {
        st->err = err;
        st->pending = 0;
    }
    if (outstanding != NULL && *outstanding > 0)
        (*outstanding)--;
}

int deliver_produce(rd_kafka_t *rk, int *outstanding, const char *topic, const void *key,
                    size_t key_len, const void *value, size_t value_len,
                    rd_kafka_headers_t *hdrs, deliver_status_t *st,
                    char *errstr, size_t errstr_size)
{
    int64_t deadline = util_mono_ms() + QUEUE_FULL_WAIT_MS;
    size_t klen = key != NULL ? key_len : 0, vlen = value != NULL ? value_len : 0;
    rd_kafka_resp_err_t err;

    st->pending = 1;
    st->err = RD_KAFKA_RESP_ERR_NO_ERROR;
    for (;;) {
        err = rd_kafka_producev(rk, RD_KAFKA_V_TOPIC(topic),
                                RD_KAFKA_V_KEY(key, klen),
                                RD_KAFKA_V_VALUE((void *)value, vlen),
                                RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY),
                                RD_KAFKA_V_HEADERS(hdrs), RD_KAFKA_V_OPAQUE(st),
                                RD_KAFKA_V_END);
        if (err != RD_KAFKA_RESP_ERR__QUEUE_FULL || util_mono_ms() >= deadline)
            break;
        rd_kafka_poll(rk, 100); /* serving reports is what makes room */
    }
    if (err != RD_KAFKA_RESP_ERR_NO_ERROR) {
        st->pending = 0;
        st->err = err;
        util_errf(errstr, errstr_size, "produce to %s: %s", topic, rd_kafka_err2str(err));
        return -1;
    }
    (*outstanding)++;
    return 0;
}

void deliver_wait(rd_kafka_t *rk, const int *outstanding)
{
    /* flush rather than poll: it sends at once instead of waiting for linger.ms. */
    while (*outstanding > 0)
        rd_kafka_flush(rk, FLUSH_SLICE_MS);
}

int deliver_permanent(rd_kafka_resp_err_t err)
{
    return kafka_err_permanent(err);
}
