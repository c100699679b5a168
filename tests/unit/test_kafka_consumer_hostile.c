/* Unit tests for libcommon/kafka_consumer.c and kafka_handover.c against records that no
 * producer of this project writes (issue 11): keys of any length and byte, a redelivery
 * without the dozen-* contract, a handler that fails transiently for ever. Each must leave
 * the partition moving, the record in `retry` or `dead-letter` byte for byte. */
#include "kafka_fixture.h"

#define GROUP "group-hostile"
#define TRANSIENT_VALUE "5"
#define BIG_KEY_LEN 2000
#define HUGE_VALUE_LEN 1000100 /* over the hand-over producer's message.max.bytes */

/* What the handler saw (the consumer thread writes, the test reads after joining it). */
struct hostile_seen {
    pthread_mutex_t mu;
    int done;          /* records answered DONE */
    int transient;     /* times TRANSIENT_VALUE was answered RETRY */
};

/* TRANSIENT_VALUE: RETRY for ever, with no database error behind it (so, transient);
 * anything else: DONE. */
static kafka_verdict_t hostile_handler(const kafka_record_t *rec, void *ctx,
                                       kafka_outcome_t *out)
{
    struct hostile_seen *s = ctx;
    int transient = rec->msg->len == 1 && memcmp(rec->msg->payload, TRANSIENT_VALUE, 1) == 0;

    pthread_mutex_lock(&s->mu);
    if (transient)
        s->transient++;
    else
        s->done++;
    pthread_mutex_unlock(&s->mu);
    if (transient) {
        snprintf(out->error, sizeof(out->error), "the database is far away");
        return KAFKA_RETRY;
    }
    return KAFKA_DONE;
}

struct hostile_consumer {
    pthread_t tid;
    kafka_consumer_opts_t opts;
    const char *topics[1];
    volatile int stop;
    int rc;
    char errstr[512];
};

static void *hostile_main(void *arg)
{
    struct hostile_consumer *c = arg;

    c->rc = kafka_consumer_run(&c->opts, &c->stop, c->errstr, sizeof(c->errstr));
    return NULL;
}

/* Produces one record with exact key bytes; headers (owned by the call) may be NULL. */
static void produce_raw(rd_kafka_t *rk, const char *topic, const void *key, size_t key_len,
                        const char *value, rd_kafka_headers_t *hdrs)
{
    char errstr[512];

    assert_int_equal(kafka_produce_bytes(rk, topic, key, key_len, value, strlen(value), hdrs,
                                         NULL, NULL, errstr, sizeof(errstr)), 0);
}

static rd_kafka_headers_t *ce_headers(void)
{
    event_meta_t meta;
    char errstr[512];

    assert_int_equal(event_meta_new(&meta, "test.value", "/test", errstr, sizeof(errstr)), 0);
    return event_headers_new(&meta);
}

static const char *header(const rd_kafka_message_t *m, const char *name, char *buf,
                          size_t size)
{
    char *v = kafka_header_dup(m, name);

    snprintf(buf, size, "%s", v != NULL ? v : "");
    free(v);
    return buf;
}

static void test_hostile_records(void **state)
{
    struct hostile_consumer c;
    struct hostile_seen seen;
    rd_kafka_message_t *dead[4] = { 0 }, *retried[4] = { 0 };
    rd_kafka_t *rk, *r1, *r2;
    char topic[64], errstr[512], b[700], big_key[BIG_KEY_LEN], nul_key[5] = "a\0b\0c";
    int nd, nr, i, done = 0;

    (void)state;
    for (i = 0; i < BIG_KEY_LEN; i++)
        big_key[i] = (char)(i % 251); /* every byte value but a few, NULs included */
    memset(&seen, 0, sizeof(seen));
    pthread_mutex_init(&seen.mu, NULL);
    new_topic(topic, sizeof(topic), 1);
    assert_int_equal(rd_kafka_mock_topic_create(mock, "retry." GROUP, 1, 1),
                     RD_KAFKA_RESP_ERR_NO_ERROR);
    rk = kafka_producer_new(bootstrap, "tester", NULL, NULL, errstr, sizeof(errstr));
    assert_non_null(rk);
    /* 0: no CloudEvents headers and a 2000-byte key: dead-letter, key unchanged. */
    produce_raw(rk, topic, big_key, sizeof(big_key), "x", NULL);
    /* 1: fails transiently for ever: to retry after the in-place bound, key unchanged. */
    produce_raw(rk, topic, nul_key, sizeof(nul_key), TRANSIENT_VALUE, ce_headers());
    {
        /* 1b: a value too large for any copy (with CloudEvents headers, a type no route
         * takes: dead-letter, without its value, not retried for ever). */
        rd_kafka_conf_t *conf = rd_kafka_conf_new();
        rd_kafka_t *big;
        char *value = malloc(HUGE_VALUE_LEN + 1);

        assert_non_null(value);
        memset(value, '7', HUGE_VALUE_LEN);
        value[HUGE_VALUE_LEN] = '\0';
        assert_int_equal(rd_kafka_conf_set(conf, "bootstrap.servers", bootstrap, errstr,
                                           sizeof(errstr)), RD_KAFKA_CONF_OK);
        assert_int_equal(rd_kafka_conf_set(conf, "message.max.bytes", "2000000", errstr,
                                           sizeof(errstr)), RD_KAFKA_CONF_OK);
        big = rd_kafka_new(RD_KAFKA_PRODUCER, conf, errstr, sizeof(errstr));
        assert_non_null(big);
        rd_kafka_flush(rk, 5000); /* 0 and 1 first */
        produce_raw(big, topic, "huge", 4, value, NULL);
        assert_int_equal(rd_kafka_flush(big, 10000), RD_KAFKA_RESP_ERR_NO_ERROR);
        rd_kafka_destroy(big);
        free(value);
    }
    /* 3: valid, and must be reached. */
    produce_raw(rk, topic, "k", 1, "0", ce_headers());
    /* A redelivery with ce_* headers and no dozen-* ones (issue 11, defect 3). */
    produce_raw(rk, "retry." GROUP, "k", 1, "0", ce_headers());
    rd_kafka_flush(rk, 5000);
    kafka_producer_close(rk, 1000);

    memset(&c, 0, sizeof(c));
    c.topics[0] = topic;
    c.opts.bootstrap = bootstrap;
    c.opts.group = GROUP;
    c.opts.client_id = "tester";
    c.opts.topics = c.topics;
    c.opts.ntopics = 1;
    c.opts.handler = hostile_handler;
    c.opts.ctx = &seen;
    c.opts.retry_initial_ms = 20;
    c.opts.retry_max_ms = 100;
    c.opts.retry_in_place_ms = 500;
    c.rc = -2;
    assert_int_equal(pthread_create(&c.tid, NULL, hostile_main, &c), 0);
    for (int64_t deadline = util_mono_ms() + WAIT_MS; util_mono_ms() < deadline;) {
        pthread_mutex_lock(&seen.mu);
        done = seen.done;
        pthread_mutex_unlock(&seen.mu);
        if (done >= 1)
            break;
        util_sleep_ms(20, NULL);
    }
    nd = read_all("dead-letter", dead, 4, 3, &r1);
    nr = read_all("retry", retried, 4, 1, &r2);
    c.stop = 1;
    assert_int_equal(pthread_join(c.tid, NULL), 0);
    assert_int_equal(c.rc, 0);

    /* The valid record after the transient one was reached, past a bounded wait. */
    assert_int_equal(done, 1);
    assert_true(seen.transient >= 2);

    assert_int_equal(nr, 1);
    assert_int_equal(retried[0]->key_len, sizeof(nul_key));
    assert_memory_equal(retried[0]->key, nul_key, sizeof(nul_key));
    assert_string_equal(header(retried[0], "dozen-reason", b, sizeof(b)), "transient_error");
    assert_string_equal(header(retried[0], "dozen-error", b, sizeof(b)),
                        "the database is far away");
    assert_string_equal(header(retried[0], "dozen-original-offset", b, sizeof(b)), "1");

    assert_int_equal(nd, 3);
    for (i = 0; i < nd; i++) {
        const char *err;

        assert_string_equal(header(dead[i], "dozen-reason", b, sizeof(b)), "invalid_record");
        err = header(dead[i], "dozen-error", b, sizeof(b));
        /* A readable reason, never stack bytes. */
        assert_true(strlen(err) > 0);
        for (size_t k = 0; err[k] != '\0'; k++)
            assert_true(err[k] >= 0x20 && err[k] < 0x7f);
        if (dead[i]->key_len == 4) {
            /* Too large to copy whole: kept without its value, and says so. */
            assert_memory_equal(dead[i]->key, "huge", 4);
            assert_null(dead[i]->payload);
            assert_non_null(strstr(err, "not kept, too large for dead-letter"));
            assert_string_equal(header(dead[i], "dozen-original-offset", b, sizeof(b)), "2");
        } else if (dead[i]->key_len == sizeof(big_key)) {
            assert_memory_equal(dead[i]->key, big_key, sizeof(big_key));
            assert_non_null(strstr(err, "ce_specversion"));
        } else {
            assert_int_equal(dead[i]->key_len, 1);
            assert_non_null(strstr(err, "dozen-original-topic"));
            assert_string_equal(header(dead[i], "dozen-original-topic", b, sizeof(b)),
                                "retry." GROUP);
        }
    }
    for (i = 0; i < nd; i++)
        rd_kafka_message_destroy(dead[i]);
    for (i = 0; i < nr; i++)
        rd_kafka_message_destroy(retried[i]);
    rd_kafka_destroy(r1);
    rd_kafka_destroy(r2);
    pthread_mutex_destroy(&seen.mu);
}

int main(void)
{
    /* As test_kafka_consumer: sessions long enough for valgrind. */
    setenv("KAFKA_SESSION_TIMEOUT_MS", "45000", 0);
    setenv("KAFKA_HEARTBEAT_INTERVAL_MS", "3000", 0);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_hostile_records),
    };

    return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
