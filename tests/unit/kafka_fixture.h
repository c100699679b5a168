/* kafka_fixture: what the unit tests of libcommon/kafka*.c share: librdkafka's in-process
 * mock cluster, started once per group, fresh topics, configuration checks. Static inline,
 * so a test that uses only some of it builds. */
#ifndef DOZEN_TEST_KAFKA_FIXTURE_H
#define DOZEN_TEST_KAFKA_FIXTURE_H

#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include <librdkafka/rdkafka.h>
#include <librdkafka/rdkafka_mock.h>

#include "event.h"
#include "kafka.h"
#include "mock_cluster.h"
#include "log.h"
#include "retry.h"
#include "util.h"

#define WAIT_MS 30000 /* deadline for anything that involves a group join */
#define MAX_SEEN 64

/* The mock cluster every test talks to (set up once for the group). */
static rd_kafka_t *mock_rk;
static rd_kafka_mock_cluster_t *mock;
static const char *bootstrap;
static int topic_seq;

static inline int group_setup(void **state)
{
    (void)state;
    if (mock_cluster_start("test_kafka", &mock_rk, &mock, &bootstrap) != 0)
        return -1;
    /* Where the consumer loop hands records over, and the groups' redelivery topics. */
    {
        static const char *const handover_topics[] = {
            "retry", "dead-letter", "retry.group-order", "retry.group-commit-eager",
            "retry.group-commit-coop", "retry.group-handover"
        };
        for (size_t i = 0; i < sizeof(handover_topics) / sizeof(handover_topics[0]); i++) {
            if (rd_kafka_mock_topic_create(mock, handover_topics[i], 1, 1) !=
                RD_KAFKA_RESP_ERR_NO_ERROR)
                return -1;
        }
    }
    return 0;
}

static inline int group_teardown(void **state)
{
    (void)state;
    mock_cluster_stop(mock_rk, mock);
    return 0;
}

/* Creates a fresh topic on the mock cluster and writes its name into out. */
static inline void new_topic(char *out, size_t out_size, int partitions)
{
    int n = snprintf(out, out_size, "test-kafka-%d", ++topic_seq);

    assert_true(n > 0 && (size_t)n < out_size);
    assert_int_equal(rd_kafka_mock_topic_create(mock, out, partitions, 1),
                     RD_KAFKA_RESP_ERR_NO_ERROR);
}

/* Reads a property back from a configuration; fails the test if it is not there. */
static inline void conf_expect(const rd_kafka_conf_t *conf, const char *prop, const char *want)
{
    char buf[512];
    size_t size = sizeof(buf);

    assert_int_equal(rd_kafka_conf_get(conf, prop, buf, &size), RD_KAFKA_CONF_OK);
    assert_string_equal(buf, want);
}

/* What the delivery report callback saw (producer thread = test thread: no lock). */
struct dr_log {
    int count;
    void *opaque[8];
    rd_kafka_resp_err_t err[8];
    int32_t partition[8];
    int64_t offset[8];
};

static inline void dr_record(void *ctx, void *msg_opaque, rd_kafka_resp_err_t err,
                             int32_t partition, int64_t offset)
{
    struct dr_log *log = ctx;

    if (log->count < 8) {
        log->opaque[log->count] = msg_opaque;
        log->err[log->count] = err;
        log->partition[log->count] = partition;
        log->offset[log->count] = offset;
    }
    log->count++;
}

/* Reads up to want records (at most max) of a one-partition topic from its beginning,
 * WAIT_MS at most. The caller destroys the messages and then *reader (librdkafka's destroy
 * waits for every message of the handle to be gone). */
static inline int read_all(const char *topic, rd_kafka_message_t **out, int max, int want,
                           rd_kafka_t **reader)
{
    rd_kafka_conf_t *conf = rd_kafka_conf_new();
    rd_kafka_topic_partition_list_t *parts = rd_kafka_topic_partition_list_new(1);
    char errstr[512];
    rd_kafka_t *rk;
    int n = 0;
    int64_t deadline = util_mono_ms() + WAIT_MS;

    rd_kafka_conf_set(conf, "bootstrap.servers", bootstrap, errstr, sizeof(errstr));
    rd_kafka_conf_set(conf, "group.id", "reader", errstr, sizeof(errstr));
    rk = rd_kafka_new(RD_KAFKA_CONSUMER, conf, errstr, sizeof(errstr));
    assert_non_null(rk);
    rd_kafka_topic_partition_list_add(parts, topic, 0)->offset = RD_KAFKA_OFFSET_BEGINNING;
    assert_int_equal(rd_kafka_assign(rk, parts), RD_KAFKA_RESP_ERR_NO_ERROR);
    while (n < want && n < max && util_mono_ms() < deadline) {
        rd_kafka_message_t *m = rd_kafka_consumer_poll(rk, 100);

        if (m == NULL)
            continue;
        if (m->err != RD_KAFKA_RESP_ERR_NO_ERROR)
            rd_kafka_message_destroy(m);
        else
            out[n++] = m;
    }
    rd_kafka_topic_partition_list_destroy(parts);
    rd_kafka_consumer_close(rk);
    *reader = rk;
    return n;
}

#endif
