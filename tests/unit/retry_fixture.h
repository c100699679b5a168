/* retry_fixture: what the unit tests of the retry contract share (test_retry,
 * test_retry_record): a valid retry record's headers and header helpers. Static, for
 * inclusion in one test program each; include it after cmocka.h and librdkafka. */
#ifndef DOZEN_RETRY_FIXTURE_H
#define DOZEN_RETRY_FIXTURE_H

#define CE_ID "0b6c7a52-8f4e-4d8e-9a53-3c1f1a0e2b11"

/* A valid retry record's headers, in the contract's order, after two headers of the
 * original. The caller destroys them. */
static rd_kafka_headers_t *valid_headers(void)
{
    rd_kafka_headers_t *h = rd_kafka_headers_new(16);
    static const char *const kv[][2] = {
        { "ce_id", CE_ID },
        { "content-type", "application/json" },
        { "dozen-original-topic", "stock.depleted" },
        { "dozen-original-partition", "5" },
        { "dozen-original-offset", "9000000000" },
        { "dozen-group", "factory" },
        { "dozen-attempt", "2" },
        { "dozen-max-attempts", "5" },
        { "dozen-not-before", "1700000000000" },
        { "dozen-reason", "factory_unavailable" },
        { "dozen-error", "HTTP 503" },
        { "dozen-first-failed-at", "1699999999000" },
    };

    for (size_t i = 0; i < sizeof(kv) / sizeof(kv[0]); i++)
        assert_int_equal(rd_kafka_header_add(h, kv[i][0], -1, kv[i][1], -1), 0);
    return h;
}

/* Replaces (or, with value NULL, removes) header name. */
static void set_header(rd_kafka_headers_t *h, const char *name, const char *value, size_t len)
{
    rd_kafka_header_remove(h, name);
    if (value != NULL)
        assert_int_equal(rd_kafka_header_add(h, name, -1, value, (ssize_t)len), 0);
}

/* Finds header name in h: its value and size, or -1 when absent. */
static ssize_t get(const rd_kafka_headers_t *h, const char *name, const char **val)
{
    const void *v = NULL;
    size_t size = 0;

    if (rd_kafka_header_get_last(h, name, &v, &size) != RD_KAFKA_RESP_ERR_NO_ERROR)
        return -1;
    *val = v;
    return (ssize_t)size;
}

#endif
