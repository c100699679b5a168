/* test_kafka_reader: the assign-only reader (libcommon/kafka_reader.c) on librdkafka's mock
 * cluster: from the beginning or given offsets to the high watermark taken at the start,
 * bounds, a callback that ends the read, the stop flag, a topic that does not exist. */
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include <librdkafka/rdkafka.h>
#include <librdkafka/rdkafka_mock.h>

#include "kafka.h"
#include "mock_cluster.h"
#include "kafka_reader.h"
#include "log.h"

#define TOPIC "reader-topic"
#define PER_PARTITION 4

static rd_kafka_t *mock_rk;
static rd_kafka_mock_cluster_t *mock;
static const char *bootstrap;

/* A mock cluster with TOPIC (2 partitions) holding PER_PARTITION records "p<part>-<n>" in
 * each partition. */
static int group_setup(void **state)
{
    rd_kafka_t *p;
    char errstr[512];

    (void)state;
    if (mock_cluster_start("test_kafka_reader", &mock_rk, &mock, &bootstrap) != 0)
        return -1;
    if (rd_kafka_mock_topic_create(mock, TOPIC, 2, 1) != RD_KAFKA_RESP_ERR_NO_ERROR)
        return -1;
    p = kafka_producer_new(bootstrap, "tester", NULL, NULL, errstr, sizeof(errstr));
    if (p == NULL)
        return -1;
    for (int part = 0; part < 2; part++) {
        for (int n = 0; n < PER_PARTITION; n++) {
            char v[32];

            snprintf(v, sizeof(v), "p%d-%d", part, n);
            if (rd_kafka_producev(p, RD_KAFKA_V_TOPIC(TOPIC), RD_KAFKA_V_PARTITION(part),
                                  RD_KAFKA_V_VALUE(v, strlen(v)),
                                  RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY),
                                  RD_KAFKA_V_END) != RD_KAFKA_RESP_ERR_NO_ERROR)
                return -1;
        }
    }
    if (rd_kafka_flush(p, 10000) != RD_KAFKA_RESP_ERR_NO_ERROR)
        return -1;
    kafka_producer_close(p, 1000);
    return 0;
}

static int group_teardown(void **state)
{
    (void)state;
    mock_cluster_stop(mock_rk, mock);
    return 0;
}

/* What the callback saw. */
struct seen {
    int n;
    int per_part[2];
    int64_t last_offset[2];
    int in_order;
    int end_after;                 /* > 0: end the read after this many records */
    volatile sig_atomic_t *stop;   /* set after the first record when not NULL */
};

static int on_record(void *ctx, const rd_kafka_message_t *msg)
{
    struct seen *s = ctx;
    int part = (int)msg->partition;

    assert_true(part == 0 || part == 1);
    if (s->per_part[part] > 0 && msg->offset != s->last_offset[part] + 1)
        s->in_order = 0;
    s->last_offset[part] = msg->offset;
    s->per_part[part]++;
    s->n++;
    if (s->stop != NULL)
        *s->stop = 1;
    return s->end_after > 0 && s->n >= s->end_after;
}

static kafka_reader_opts_t opts_for(rd_kafka_t *rk, struct seen *s)
{
    kafka_reader_opts_t o;

    memset(&o, 0, sizeof(o));
    o.rk = rk;
    o.topic = TOPIC;
    o.start = RD_KAFKA_OFFSET_BEGINNING;
    o.idle_ms = 10000;
    o.ctx = s;
    return o;
}

static void test_reads_everything_then_stops(void **state)
{
    rd_kafka_t *rk;
    kafka_reader_opts_t o;
    kafka_reader_t *r;
    struct seen s = { 0, { 0, 0 }, { 0, 0 }, 1, 0, NULL };
    char errstr[512];
    int32_t id;
    int64_t lo, hi;

    (void)state;
    rk = kafka_reader_client_new(bootstrap, "test", errstr, sizeof(errstr));
    assert_non_null(rk);
    o = opts_for(rk, &s);
    r = kafka_reader_new(&o, errstr, sizeof(errstr));
    assert_non_null(r);
    assert_int_equal(kafka_reader_count(r), 2);
    for (size_t i = 0; i < 2; i++) {
        assert_int_equal(kafka_reader_partition(r, i, &id, &lo, &hi), 0);
        assert_int_equal(id, (int32_t)i); /* in id order */
        assert_int_equal(lo, 0);
        assert_int_equal(hi, PER_PARTITION);
    }
    assert_int_equal(kafka_reader_run(r, on_record, errstr, sizeof(errstr)), 0);
    assert_int_equal(s.n, 2 * PER_PARTITION);
    assert_int_equal(s.per_part[0], PER_PARTITION);
    assert_int_equal(s.per_part[1], PER_PARTITION);
    assert_true(s.in_order);
    kafka_reader_free(r);

    /* The same client serves the next reader: from given offsets of one partition. */
    {
        const int32_t parts[] = { 1 };
        const int64_t from[] = { 2 };
        struct seen t = { 0, { 0, 0 }, { 0, 0 }, 1, 0, NULL };

        o = opts_for(rk, &t);
        o.partitions = parts;
        o.npartitions = 1;
        o.from = from;
        r = kafka_reader_new(&o, errstr, sizeof(errstr));
        assert_non_null(r);
        assert_int_equal(kafka_reader_run(r, on_record, errstr, sizeof(errstr)), 0);
        assert_int_equal(t.n, PER_PARTITION - 2);
        assert_int_equal(t.per_part[1], PER_PARTITION - 2);
        assert_int_equal(t.last_offset[1], PER_PARTITION - 1);
        kafka_reader_free(r);
    }
    /* An offset the log does not have reads the partition from its start. */
    {
        const int32_t parts[] = { 0 };
        const int64_t from[] = { PER_PARTITION + 5 };
        struct seen t = { 0, { 0, 0 }, { 0, 0 }, 1, 0, NULL };

        o = opts_for(rk, &t);
        o.partitions = parts;
        o.npartitions = 1;
        o.from = from;
        o.timeout_ms = 20000;
        r = kafka_reader_new(&o, errstr, sizeof(errstr));
        assert_non_null(r);
        assert_int_equal(kafka_reader_run(r, on_record, errstr, sizeof(errstr)), 0);
        assert_int_equal(t.per_part[0], PER_PARTITION);
        kafka_reader_free(r);
    }
    /* From the end: nothing to read, done at once. */
    {
        struct seen t = { 0, { 0, 0 }, { 0, 0 }, 1, 0, NULL };

        o = opts_for(rk, &t);
        o.start = RD_KAFKA_OFFSET_END;
        r = kafka_reader_new(&o, errstr, sizeof(errstr));
        assert_non_null(r);
        assert_int_equal(kafka_reader_run(r, on_record, errstr, sizeof(errstr)), 0);
        assert_int_equal(t.n, 0);
        kafka_reader_free(r);
    }
    kafka_reader_client_free(rk);
}

static void test_callback_and_stop_end_the_read(void **state)
{
    rd_kafka_t *rk;
    kafka_reader_opts_t o;
    kafka_reader_t *r;
    struct seen s = { 0, { 0, 0 }, { 0, 0 }, 1, 3, NULL };
    volatile sig_atomic_t stop = 0;
    char errstr[512];

    (void)state;
    rk = kafka_reader_client_new(bootstrap, "test", errstr, sizeof(errstr));
    assert_non_null(rk);
    o = opts_for(rk, &s);
    r = kafka_reader_new(&o, errstr, sizeof(errstr));
    assert_int_equal(kafka_reader_run(r, on_record, errstr, sizeof(errstr)), 0);
    assert_int_equal(s.n, 3);
    kafka_reader_free(r);

    memset(&s, 0, sizeof(s));
    s.stop = &stop;
    o = opts_for(rk, &s);
    o.stop = &stop;
    r = kafka_reader_new(&o, errstr, sizeof(errstr));
    assert_int_equal(kafka_reader_run(r, on_record, errstr, sizeof(errstr)), 1);
    assert_int_equal(s.n, 1);
    kafka_reader_free(r);
    kafka_reader_client_free(rk);
}

static void test_bad_topic_and_partition(void **state)
{
    rd_kafka_t *rk;
    kafka_reader_opts_t o;
    struct seen s;
    const int32_t parts[] = { 7 };
    char errstr[512] = "";

    (void)state;
    rk = kafka_reader_client_new(bootstrap, "test", errstr, sizeof(errstr));
    assert_non_null(rk);
    o = opts_for(rk, &s);
    o.topic = "no-such-topic";
    assert_null(kafka_reader_new(&o, errstr, sizeof(errstr)));
    assert_non_null(strstr(errstr, "topic 'no-such-topic' does not exist"));
    /* Unless a missing topic is fine: then there is nothing to read. */
    o.missing_ok = 1;
    {
        kafka_reader_t *r = kafka_reader_new(&o, errstr, sizeof(errstr));

        assert_non_null(r);
        assert_int_equal(kafka_reader_count(r), 0);
        assert_int_equal(kafka_reader_run(r, on_record, errstr, sizeof(errstr)), 0);
        kafka_reader_free(r);
    }
    o = opts_for(rk, &s);
    o.partitions = parts;
    o.npartitions = 1;
    assert_null(kafka_reader_new(&o, errstr, sizeof(errstr)));
    assert_non_null(strstr(errstr, "no partition 7"));
    o = opts_for(rk, &s);
    o.topic = NULL;
    assert_null(kafka_reader_new(&o, errstr, sizeof(errstr)));
    kafka_reader_free(NULL);
    kafka_reader_client_free(rk);
    kafka_reader_client_free(NULL);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_reads_everything_then_stops),
        cmocka_unit_test(test_callback_and_stop_end_the_read),
        cmocka_unit_test(test_bad_topic_and_partition),
    };

    return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
