/* fuzz_retry: the dozen-* header reader of libcommon/retry.c, as consumers (retry.<group>),
 * the retry service and dozenctl run it: retry_info_parse with attempts from 0 and from 1,
 * retry_info_first_missing, retry_headers_copy. The input is headers in fuzz.h's text
 * form ("dozen-attempt=1\n...").
 *
 * Properties: an accepted set is within the contract's limits, and written back with
 * retry_headers_add (over a copy without the dozen-* headers) reads back the same. */
#include <stdint.h>
#include <string.h>

#include "fuzz.h"
#include "retry.h"

static void check_info(const retry_info_t *info, int min_attempt)
{
    FUZZ_CHECK(retry_group_valid(info->group));
    FUZZ_CHECK(info->original_topic[0] != '\0' && info->reason[0] != '\0');
    FUZZ_CHECK(info->original_partition >= 0 && info->original_offset >= 0);
    FUZZ_CHECK(info->attempt >= min_attempt && info->max_attempts >= 0);
    FUZZ_CHECK(info->not_before_ms >= 0 && info->not_before_ms <= RETRY_EPOCH_MS_MAX);
    FUZZ_CHECK(info->deadline_ms >= 0 && info->deadline_ms <= RETRY_EPOCH_MS_MAX);
    FUZZ_CHECK(info->first_failed_at_ms >= 0 &&
               info->first_failed_at_ms <= RETRY_EPOCH_MS_MAX);
    FUZZ_CHECK(strlen(info->error) <= RETRY_ERROR_MAX);
}

static void check_roundtrip(const rd_kafka_headers_t *hdrs, const retry_info_t *info,
                            int min_attempt)
{
    rd_kafka_headers_t *copy = retry_headers_copy(hdrs);
    const char *name;
    const void *val;
    size_t size;
    retry_info_t again;
    char err[512];
    char topic[RETRY_TOPIC_MAX + 16];

    FUZZ_CHECK(copy != NULL);
    for (size_t i = 0; rd_kafka_header_get_all(copy, i, &name, &val, &size) ==
                       RD_KAFKA_RESP_ERR_NO_ERROR; i++)
        FUZZ_CHECK(!retry_header_is_ours(name));
    FUZZ_CHECK(retry_headers_add(copy, info, RETRY_HDRS_FULL) == 0);
    FUZZ_CHECK(retry_info_first_missing(copy) == NULL);
    FUZZ_CHECK(retry_info_parse(copy, min_attempt, &again, err, sizeof(err)) == 0);
    FUZZ_CHECK(memcmp(info, &again, sizeof(again)) == 0);
    FUZZ_CHECK(retry_redelivery_topic(info->group, topic, sizeof(topic)) == 0);
    rd_kafka_headers_destroy(copy);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const uint8_t *value;
    size_t value_len;
    rd_kafka_headers_t *hdrs = fuzz_headers(data, size, &value, &value_len);
    char printable[64];

    for (int min_attempt = 0; min_attempt <= 1; min_attempt++) {
        retry_info_t info;
        char err[512] = "";
        int rc = retry_info_parse(hdrs, min_attempt, &info, err, sizeof(err));

        FUZZ_CHECK(rc == 0 || rc == 1 || rc == -1);
        if (rc == 0) {
            FUZZ_CHECK(retry_info_first_missing(hdrs) == NULL);
            check_info(&info, min_attempt);
            check_roundtrip(hdrs, &info, min_attempt);
        } else {
            /* A refusal names what is wrong, in printable text (it goes to logs and to
             * dozen-error). */
            FUZZ_CHECK(err[0] != '\0' && fuzz_printable(err, strlen(err)));
        }
    }
    retry_printable((const char *)data, size, printable, sizeof(printable));
    FUZZ_CHECK(fuzz_printable(printable, strlen(printable)));
    rd_kafka_headers_destroy(hdrs);
    return 0;
}
