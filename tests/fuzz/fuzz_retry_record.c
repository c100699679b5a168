/* fuzz_retry_record: the retry service's own readers (services/retry/record.c): the stored
 * encoding of a record's original headers (record_headers_decode, what it reads back from
 * PostgreSQL), then those headers as a record on `retry` (record_parse) and what the
 * service builds from it (record_decide, record_headers_add, record_invalid_headers). The
 * input is the stored encoding: 0x01, then per header a 2-byte name length, the name, a
 * 4-byte value length (0xFFFFFFFF: null), the value.
 *
 * Properties: decoding then encoding gives the input back (when it holds no dozen-*
 * header, which encoding leaves out); what the service writes reads back. */
#include <stdint.h>
#include <string.h>

#include "fuzz.h"
#include "retry_service.h"

static int has_ours(const rd_kafka_headers_t *hdrs)
{
    const char *name;
    const void *val;
    size_t size;

    for (size_t i = 0; rd_kafka_header_get_all(hdrs, i, &name, &val, &size) ==
                       RD_KAFKA_RESP_ERR_NO_ERROR; i++) {
        if (retry_header_is_ours(name))
            return 1;
    }
    return 0;
}

/* What the service sends for a parsed record reads back as a valid retry record. */
static void check_outgoing(const rd_kafka_headers_t *hdrs, const retry_record_t *r)
{
    static const record_out_t outs[] = { OUT_REDELIVERY, OUT_NOTICE, OUT_DEAD_LETTER };
    char err[512];

    for (size_t i = 0; i < sizeof(outs) / sizeof(outs[0]); i++) {
        rd_kafka_headers_t *h = retry_headers_copy(hdrs);
        retry_info_t back;

        FUZZ_CHECK(h != NULL);
        FUZZ_CHECK(record_headers_add(h, r, outs[i], RETRY_REASON_MAX_ATTEMPTS, NULL, err,
                                      sizeof(err)) == 0);
        FUZZ_CHECK(retry_info_parse(h, 0, &back, err, sizeof(err)) == 0);
        FUZZ_CHECK(back.attempt == r->info.attempt && strcmp(back.group, r->info.group) == 0);
        FUZZ_CHECK(fuzz_printable(back.error, strlen(back.error)));
        rd_kafka_headers_destroy(h);
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char err[512] = "";
    rd_kafka_headers_t *hdrs = record_headers_decode(data, size, err, sizeof(err)), *inv;
    unsigned char *enc = NULL, *enc2 = NULL;
    size_t enc_len = 0, enc2_len = 0;
    retry_record_t r;

    if (hdrs == NULL) {
        FUZZ_CHECK(err[0] != '\0');
        return 0;
    }
    FUZZ_CHECK(record_headers_encode(hdrs, &enc, &enc_len, err, sizeof(err)) == 0);
    if (!has_ours(hdrs)) {
        FUZZ_CHECK(enc_len == size && memcmp(enc, data, size) == 0);
    } else {
        rd_kafka_headers_t *again = record_headers_decode(enc, enc_len, err, sizeof(err));

        FUZZ_CHECK(again != NULL && !has_ours(again));
        FUZZ_CHECK(record_headers_encode(again, &enc2, &enc2_len, err, sizeof(err)) == 0);
        FUZZ_CHECK(enc2_len == enc_len && memcmp(enc2, enc, enc_len) == 0);
        rd_kafka_headers_destroy(again);
    }

    if (record_parse(hdrs, &r, err, sizeof(err)) == 0) {
        retry_action_t a = record_decide(&r, 1795000000000LL);

        FUZZ_CHECK(r.info.attempt >= 1);
        FUZZ_CHECK(fuzz_printable(r.info.error, strlen(r.info.error)));
        FUZZ_CHECK((a == RETRY_REDELIVER) == (record_action_reason(a) == NULL));
        FUZZ_CHECK(record_due_at(r.info.not_before_ms, r.info.deadline_ms) <=
                   r.info.not_before_ms);
        check_outgoing(hdrs, &r);
    } else {
        /* An invalid record goes to dead-letter with headers that say why. */
        char err2[512];

        FUZZ_CHECK(err[0] != '\0');
        inv = record_invalid_headers(hdrs, "retry", RETRY_TOPIC, 0, 42, err, 1795000000000LL,
                                     err2, sizeof(err2));
        FUZZ_CHECK(inv != NULL);
        FUZZ_CHECK(retry_info_first_missing(inv) != NULL); /* no attempt: not a retry */
        rd_kafka_headers_destroy(inv);
    }
    free(enc);
    free(enc2);
    rd_kafka_headers_destroy(hdrs);
    return 0;
}
