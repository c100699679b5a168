/* Unit tests for libcommon/kafka.c against librdkafka's in-process mock cluster:
 * configuration passthrough and the idempotent producer (tests/unit/kafka_fixture.h). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "kafka_fixture.h"

static void test_conf_env_passthrough(void **state)
{
    rd_kafka_conf_t *conf;
    char errstr[512] = "";

    (void)state;
    assert_int_equal(setenv("KAFKA_LINGER_MS", "7", 1), 0);
    assert_int_equal(setenv("KAFKA_HEAP_OPTS", "-Xmx1G", 1), 0); /* not librdkafka's */
    assert_int_equal(setenv("KAFKA_BOOTSTRAP", "elsewhere:9092", 1), 0); /* ours, skipped */

    conf = kafka_conf_new(bootstrap, "tester", errstr, sizeof(errstr));
    /* Cleaned up before anything can fail, so later tests see a clean environment. */
    unsetenv("KAFKA_LINGER_MS");
    unsetenv("KAFKA_HEAP_OPTS");
    unsetenv("KAFKA_BOOTSTRAP");

    assert_non_null(conf);
    conf_expect(conf, "linger.ms", "7");
    conf_expect(conf, "bootstrap.servers", bootstrap);
    conf_expect(conf, "client.id", "tester");
    rd_kafka_conf_destroy(conf);
}

static void test_conf_env_invalid(void **state)
{
    rd_kafka_conf_t *conf;
    char errstr[512] = "";

    (void)state;
    assert_int_equal(setenv("KAFKA_ACKS", "banana", 1), 0);
    conf = kafka_conf_new(bootstrap, "tester", errstr, sizeof(errstr));
    unsetenv("KAFKA_ACKS");
    assert_null(conf);
    assert_non_null(strstr(errstr, "KAFKA_ACKS"));

    conf = kafka_conf_new(NULL, "tester", errstr, sizeof(errstr));
    assert_null(conf);
    conf = kafka_conf_new("", "tester", errstr, sizeof(errstr));
    assert_null(conf);
}

/* The producer's defaults give way to KAFKA_*, its guarantees do not. */
static void test_producer_conf(void **state)
{
    rd_kafka_t *rk;
    char errstr[512] = "";

    (void)state;
    rk = kafka_producer_new(bootstrap, "tester", NULL, NULL, errstr, sizeof(errstr));
    assert_non_null(rk);
    conf_expect(rd_kafka_conf(rk), "enable.idempotence", "true");
    conf_expect(rd_kafka_conf(rk), "linger.ms", "0"); /* the default: no lingering */
    conf_expect(rd_kafka_conf(rk), "message.timeout.ms", "30000");
    kafka_producer_close(rk, 1000);

    assert_int_equal(setenv("KAFKA_LINGER_MS", "9", 1), 0);
    assert_int_equal(setenv("KAFKA_ENABLE_IDEMPOTENCE", "false", 1), 0);
    rk = kafka_producer_new(bootstrap, "tester", NULL, NULL, errstr, sizeof(errstr));
    unsetenv("KAFKA_LINGER_MS");
    unsetenv("KAFKA_ENABLE_IDEMPOTENCE");
    assert_non_null(rk);
    conf_expect(rd_kafka_conf(rk), "linger.ms", "9");
    conf_expect(rd_kafka_conf(rk), "enable.idempotence", "true");
    kafka_producer_close(rk, 1000);

    kafka_producer_close(NULL, 0); /* accepted */
}

static void test_producer_delivery(void **state)
{
    struct dr_log log;
    int markers[3];
    char topic[64], errstr[512] = "";
    rd_kafka_headers_t *hdrs;
    rd_kafka_t *rk;
    int64_t deadline;
    int i;

    (void)state;
    memset(&log, 0, sizeof(log));
    new_topic(topic, sizeof(topic), 1);
    rk = kafka_producer_new(bootstrap, "tester", dr_record, &log, errstr, sizeof(errstr));
    assert_non_null(rk);

    for (i = 0; i < 3; i++) {
        char value[16];

        snprintf(value, sizeof(value), "v%d", i);
        hdrs = NULL;
        if (i == 1) { /* one with headers, whose ownership passes on success */
            hdrs = rd_kafka_headers_new(1);
            assert_int_equal(rd_kafka_header_add(hdrs, "h", -1, "x", -1), 0);
        }
        assert_int_equal(kafka_produce(rk, topic, "k", value, strlen(value), hdrs,
                                       &markers[i], errstr, sizeof(errstr)), 0);
    }

    deadline = util_mono_ms() + WAIT_MS;
    while (log.count < 3 && util_mono_ms() < deadline)
        rd_kafka_poll(rk, 50);
    assert_int_equal(log.count, 3);
    for (i = 0; i < 3; i++) {
        assert_ptr_equal(log.opaque[i], &markers[i]);
        assert_int_equal(log.err[i], RD_KAFKA_RESP_ERR_NO_ERROR);
        assert_int_equal(log.partition[i], 0);
        assert_int_equal(log.offset[i], i); /* a fresh one-partition topic */
    }

    /* A local failure leaves the headers to the caller (valgrind sees a double free or a
     * leak otherwise). */
    {
        size_t big_len = 2 * 1024 * 1024; /* above message.max.bytes */
        char *big = calloc(1, big_len);

        assert_non_null(big);
        hdrs = rd_kafka_headers_new(1);
        assert_int_equal(rd_kafka_header_add(hdrs, "h", -1, "x", -1), 0);
        errstr[0] = '\0';
        assert_int_equal(kafka_produce(rk, topic, "k", big, big_len, hdrs, NULL, errstr,
                                       sizeof(errstr)), -1);
        assert_non_null(strstr(errstr, topic));
        rd_kafka_headers_destroy(hdrs);
        free(big);
    }
    assert_int_equal(kafka_produce(rk, NULL, "k", "v", 1, NULL, NULL, errstr,
                                   sizeof(errstr)), -1);
    assert_int_equal(kafka_produce(rk, topic, "k", NULL, 3, NULL, NULL, errstr,
                                   sizeof(errstr)), -1);

    kafka_producer_close(rk, 5000);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_conf_env_passthrough),
        cmocka_unit_test(test_conf_env_invalid),
        cmocka_unit_test(test_producer_conf),
        cmocka_unit_test(test_producer_delivery),
    };

    return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
