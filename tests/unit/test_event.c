/* Unit tests for libcommon/event.c: CloudEvents metadata, and its headers round-tripped
 * through records on librdkafka's in-process mock cluster. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <cmocka.h>

#include <librdkafka/rdkafka.h>
#include <librdkafka/rdkafka_mock.h>

#include "event.h"
#include "kafka.h"
#include "mock_cluster.h"
#include "log.h"
#include "util.h"

#define WAIT_MS 30000
#define TOPIC "test-event"

/* The records the round-trip tests read: produced once, in this order, to partition 0. */
enum {
    REC_GOOD = 0,     /* event_headers_new() */
    REC_NO_HEADERS,   /* no headers at all */
    REC_NO_ID,        /* every ce_* header but ce_id */
    REC_BAD_ID,       /* ce_id "not-a-uuid" */
    REC_BAD_VERSION,  /* ce_specversion "0.3" */
    REC_LONG_TYPE,    /* ce_type of 64 bytes: one more than event_meta_t holds */
    REC_NUL_SOURCE,   /* ce_source with a NUL byte inside */
    REC_DUP_ID,       /* ce_id twice: the last one counts */
    REC_BAD_TIME,     /* ce_time "yesterday": not RFC 3339, refused by event_meta_parse */
    REC_UTF8_TYPE,    /* ce_type with a byte that is not UTF-8 */
    REC_CTRL_SOURCE,  /* ce_source with a newline */
    REC_COUNT
};

static rd_kafka_t *mock_rk;
static rd_kafka_mock_cluster_t *mock;
static const char *bootstrap;

static event_meta_t good_meta;                 /* what REC_GOOD carries */
static rd_kafka_t *consumer;                   /* owns the records below */
static rd_kafka_message_t *records[REC_COUNT]; /* by offset */

/* Adds a header whose value is a C string (without its NUL). */
static void hdr(rd_kafka_headers_t *h, const char *name, const char *value)
{
    assert_int_equal(rd_kafka_header_add(h, name, -1, value, -1), RD_KAFKA_RESP_ERR_NO_ERROR);
}

/* Headers like event_headers_new() writes, with one of them left out (skip) or replaced
 * (replace_name -> replace_value). */
static rd_kafka_headers_t *headers_but(const char *skip, const char *replace_name,
                                       const char *replace_value)
{
    static const char *const names[] = { "ce_specversion", "ce_id", "ce_source", "ce_type",
                                         "ce_time" };
    const char *values[] = { EVENT_SPECVERSION, "6f1c2d3e-4b5a-4c6d-8e7f-0a1b2c3d4e5f",
                             "/dozen/test", "test.happened", "2026-11-22T01:40:31.123Z" };
    rd_kafka_headers_t *h = rd_kafka_headers_new(6);
    size_t i;

    for (i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
        if (skip != NULL && strcmp(names[i], skip) == 0)
            continue;
        if (replace_name != NULL && strcmp(names[i], replace_name) == 0)
            hdr(h, names[i], replace_value);
        else
            hdr(h, names[i], values[i]);
    }
    return h;
}

static void produce_all(void)
{
    rd_kafka_headers_t *h[REC_COUNT];
    char errstr[512] = "", long_type[65];
    rd_kafka_t *rk;
    int i;

    assert_int_equal(event_meta_new(&good_meta, "test.happened", "/dozen/test", errstr,
                                    sizeof(errstr)), 0);
    h[REC_GOOD] = event_headers_new(&good_meta);
    assert_non_null(h[REC_GOOD]);
    h[REC_NO_HEADERS] = NULL;
    h[REC_NO_ID] = headers_but("ce_id", NULL, NULL);
    h[REC_BAD_ID] = headers_but(NULL, "ce_id", "not-a-uuid");
    h[REC_BAD_VERSION] = headers_but(NULL, "ce_specversion", "0.3");
    memset(long_type, 't', 64);
    long_type[64] = '\0';
    h[REC_LONG_TYPE] = headers_but(NULL, "ce_type", long_type);
    h[REC_NUL_SOURCE] = headers_but("ce_source", NULL, NULL);
    assert_int_equal(rd_kafka_header_add(h[REC_NUL_SOURCE], "ce_source", -1, "/dozen\0x", 8),
                     RD_KAFKA_RESP_ERR_NO_ERROR);
    h[REC_DUP_ID] = headers_but(NULL, "ce_id", "00000000-0000-4000-8000-000000000000");
    hdr(h[REC_DUP_ID], "ce_id", "11111111-1111-4111-8111-111111111111");
    h[REC_BAD_TIME] = headers_but(NULL, "ce_time", "yesterday");
    h[REC_UTF8_TYPE] = headers_but(NULL, "ce_type", "test.\xff");
    h[REC_CTRL_SOURCE] = headers_but(NULL, "ce_source", "/dozen\nlevel=error");

    rk = kafka_producer_new(bootstrap, "test-event", NULL, NULL, errstr, sizeof(errstr));
    assert_non_null(rk);
    for (i = 0; i < REC_COUNT; i++)
        assert_int_equal(kafka_produce(rk, TOPIC, "sku-1", "{}", 2, h[i], NULL, errstr,
                                       sizeof(errstr)), 0);
    kafka_producer_close(rk, 10000);
}

static void consume_all(void)
{
    rd_kafka_conf_t *conf;
    rd_kafka_topic_partition_list_t *parts;
    char errstr[512];
    int64_t deadline;
    int got = 0;

    conf = kafka_conf_new(bootstrap, "test-event", errstr, sizeof(errstr));
    assert_non_null(conf);
    /* Needed by rd_kafka_assign(); never joined, nothing committed. */
    assert_int_equal(rd_kafka_conf_set(conf, "group.id", "test-event", errstr,
                                       sizeof(errstr)), RD_KAFKA_CONF_OK);
    consumer = rd_kafka_new(RD_KAFKA_CONSUMER, conf, errstr, sizeof(errstr));
    assert_non_null(consumer);
    parts = rd_kafka_topic_partition_list_new(1);
    rd_kafka_topic_partition_list_add(parts, TOPIC, 0)->offset = RD_KAFKA_OFFSET_BEGINNING;
    assert_int_equal(rd_kafka_assign(consumer, parts), RD_KAFKA_RESP_ERR_NO_ERROR);
    rd_kafka_topic_partition_list_destroy(parts);

    deadline = util_mono_ms() + WAIT_MS;
    while (got < REC_COUNT && util_mono_ms() < deadline) {
        rd_kafka_message_t *msg = rd_kafka_consumer_poll(consumer, 100);

        if (msg == NULL)
            continue;
        if (msg->err == RD_KAFKA_RESP_ERR_NO_ERROR && msg->offset >= 0 &&
            msg->offset < REC_COUNT && records[msg->offset] == NULL) {
            records[msg->offset] = msg;
            got++;
        } else {
            rd_kafka_message_destroy(msg);
        }
    }
    assert_int_equal(got, REC_COUNT);
}

static int group_setup(void **state)
{
    (void)state;
    if (mock_cluster_start("test_event", &mock_rk, &mock, &bootstrap) != 0)
        return -1;
    if (rd_kafka_mock_topic_create(mock, TOPIC, 1, 1) != RD_KAFKA_RESP_ERR_NO_ERROR)
        return -1;
    return 0;
}

static int group_teardown(void **state)
{
    int i;

    (void)state;
    /* Records first: rd_kafka_destroy() waits for every message of its handle. */
    for (i = 0; i < REC_COUNT; i++) {
        if (records[i] != NULL)
            rd_kafka_message_destroy(records[i]);
    }
    if (consumer != NULL) {
        rd_kafka_consumer_close(consumer);
        rd_kafka_destroy(consumer);
    }
    mock_cluster_stop(mock_rk, mock);
    return 0;
}

static void test_meta_new(void **state)
{
    event_meta_t m, m2;
    char errstr[256] = "";
    struct tm tm;
    const char *rest;
    time_t t;
    int64_t now_s = util_now_ms() / 1000;

    (void)state;
    assert_int_equal(event_meta_new(&m, "order.completed", "/dozen/sales", errstr,
                                    sizeof(errstr)), 0);
    assert_true(util_is_uuid(m.id));
    assert_int_equal(m.id[14], '4'); /* a version 4 (random) UUID */
    assert_string_equal(m.type, "order.completed");
    assert_string_equal(m.source, "/dozen/sales");

    /* RFC 3339 UTC with milliseconds, and now. */
    assert_int_equal(strlen(m.time), 24);
    memset(&tm, 0, sizeof(tm));
    rest = strptime(m.time, "%Y-%m-%dT%H:%M:%S", &tm);
    assert_non_null(rest);
    assert_true(rest[0] == '.' && rest[1] >= '0' && rest[1] <= '9' && rest[2] >= '0' &&
                rest[2] <= '9' && rest[3] >= '0' && rest[3] <= '9' && rest[4] == 'Z' &&
                rest[5] == '\0');
    t = timegm(&tm);
    assert_true(t >= now_s - 5 && t <= now_s + 5);

    assert_int_equal(event_meta_new(&m2, "order.completed", "/dozen/sales", errstr,
                                    sizeof(errstr)), 0);
    assert_string_not_equal(m.id, m2.id);
}

static void test_meta_new_rejects(void **state)
{
    event_meta_t m;
    char errstr[256] = "", long_type[65], source_max[128];

    (void)state;
    memset(long_type, 'x', 64);
    long_type[64] = '\0';
    assert_int_equal(event_meta_new(&m, long_type, "/dozen/sales", errstr, sizeof(errstr)),
                     -1);
    assert_non_null(strstr(errstr, "ce_type"));

    errstr[0] = '\0';
    assert_int_equal(event_meta_new(&m, "order.completed", "", errstr, sizeof(errstr)), -1);
    assert_non_null(strstr(errstr, "ce_source"));
    assert_int_equal(event_meta_new(&m, NULL, "/dozen/sales", errstr, sizeof(errstr)), -1);

    /* The longest source that fits is accepted whole. */
    memset(source_max, 's', 127);
    source_max[127] = '\0';
    assert_int_equal(event_meta_new(&m, "t", source_max, errstr, sizeof(errstr)), 0);
    assert_string_equal(m.source, source_max);
}

static void test_headers_new(void **state)
{
    event_meta_t m;
    rd_kafka_headers_t *h;
    const void *val;
    size_t size;
    char errstr[256];

    (void)state;
    assert_int_equal(event_meta_new(&m, "stock.depleted", "/dozen/sales", errstr,
                                    sizeof(errstr)), 0);
    h = event_headers_new(&m);
    assert_non_null(h);
    assert_int_equal(rd_kafka_header_cnt(h), 6);
    assert_int_equal(rd_kafka_header_get_last(h, "content-type", &val, &size), 0);
    assert_int_equal(size, strlen(EVENT_CONTENT_TYPE));
    assert_memory_equal(val, EVENT_CONTENT_TYPE, size);
    assert_int_equal(rd_kafka_header_get_last(h, "ce_id", &val, &size), 0);
    assert_int_equal(size, UTIL_UUID_LEN); /* no NUL on the wire */
    assert_memory_equal(val, m.id, size);
    rd_kafka_headers_destroy(h);

    assert_null(event_headers_new(NULL));
}

static void test_roundtrip(void **state)
{
    event_meta_t m;
    char errstr[256] = "";
    char *ct;

    (void)state;
    assert_int_equal(event_meta_read(records[REC_GOOD], &m, errstr, sizeof(errstr)), 0);
    assert_string_equal(m.id, good_meta.id);
    assert_string_equal(m.type, good_meta.type);
    assert_string_equal(m.source, good_meta.source);
    assert_string_equal(m.time, good_meta.time);

    ct = kafka_header_dup(records[REC_GOOD], "content-type");
    assert_non_null(ct);
    assert_string_equal(ct, EVENT_CONTENT_TYPE);
    free(ct);
}

/* Checks that event_meta_read() refuses record i with an error naming header, and leaves
 * no half-read result behind. */
static void expect_reject(int i, const char *header)
{
    event_meta_t m;
    char errstr[256] = "";

    memset(&m, 'x', sizeof(m));
    assert_int_equal(event_meta_read(records[i], &m, errstr, sizeof(errstr)), -1);
    assert_non_null(strstr(errstr, header));
    assert_int_equal(m.id[0], '\0');
    assert_int_equal(m.type[0], '\0');
}

static void test_read_rejects(void **state)
{
    (void)state;
    expect_reject(REC_NO_HEADERS, "ce_specversion");
    expect_reject(REC_NO_ID, "ce_id");
    expect_reject(REC_BAD_ID, "ce_id");
    expect_reject(REC_BAD_VERSION, "ce_specversion");
    expect_reject(REC_LONG_TYPE, "ce_type");
    expect_reject(REC_NUL_SOURCE, "ce_source");
    expect_reject(REC_BAD_TIME, "ce_time");
    expect_reject(REC_UTF8_TYPE, "ce_type");
    expect_reject(REC_CTRL_SOURCE, "ce_source");
}

static void test_read_last_header_wins(void **state)
{
    event_meta_t m;
    char errstr[256] = "";

    (void)state;
    assert_int_equal(event_meta_read(records[REC_DUP_ID], &m, errstr, sizeof(errstr)), 0);
    assert_string_equal(m.id, "11111111-1111-4111-8111-111111111111");
    assert_string_equal(m.type, "test.happened");
}

/* event_meta_parse and event_data_parse read headers and a value without a record (the
 * fuzz targets' way in): the same checks as through a consumed record. */
static void test_parse_without_record(void **state)
{
    event_meta_t m, back;
    rd_kafka_headers_t *h;
    json_t *data;
    char errstr[256] = "";
    static const char value[] = "{\"sku\":\"glazed\"}trailing"; /* 16 bytes are JSON */

    (void)state;
    assert_int_equal(event_meta_new(&m, "stock.depleted", "/dozen/sales", errstr,
                                    sizeof(errstr)), 0);
    h = event_headers_new(&m);
    assert_non_null(h);
    assert_int_equal(event_meta_parse(h, &back, errstr, sizeof(errstr)), 0);
    assert_memory_equal(&m, &back, sizeof(m));

    data = event_data_parse(h, value, 16, "stock.depleted", &back, errstr, sizeof(errstr));
    assert_non_null(data);
    assert_string_equal(json_string_value(json_object_get(data, "sku")), "glazed");
    json_decref(data);
    assert_null(event_data_parse(h, value, 16, "order.completed", &back, errstr,
                                 sizeof(errstr)));
    assert_string_equal(errstr, "ce_type is 'stock.depleted', expected 'order.completed'");
    assert_null(event_data_parse(h, NULL, 0, "stock.depleted", &back, errstr,
                                 sizeof(errstr)));
    assert_string_equal(errstr, "record has no value");
    rd_kafka_headers_destroy(h);

    memset(&back, 'x', sizeof(back));
    assert_int_equal(event_meta_parse(NULL, &back, errstr, sizeof(errstr)), -1);
    assert_string_equal(errstr, "ce_specversion: header missing");
    assert_int_equal(back.id[0], '\0');
}

/* Produces and consumes the records every round-trip test reads. */
static int records_setup(void **state)
{
    (void)state;
    if (records[REC_COUNT - 1] == NULL) {
        produce_all();
        consume_all();
    }
    return 0;
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_meta_new),
        cmocka_unit_test(test_meta_new_rejects),
        cmocka_unit_test(test_headers_new),
        cmocka_unit_test(test_parse_without_record),
        cmocka_unit_test_setup(test_roundtrip, records_setup),
        cmocka_unit_test_setup(test_read_rejects, records_setup),
        cmocka_unit_test_setup(test_read_last_header_wins, records_setup),
    };

    return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
