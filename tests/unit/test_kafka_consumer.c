/* Unit tests for libcommon/kafka_consumer.c and kafka.c's header helper against the mock
 * cluster: the consumer loop's order, retries, offsets, hand-over (tests/unit/kafka_fixture.h). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <cmocka.h>

#include "kafka_fixture.h"

/* Produces values "0".."n-1" with one key (so in order to one partition) and waits for
 * every delivery report. */
static void produce_values(const char *topic, int n)
{
    struct dr_log log;
    char errstr[512] = "";
    rd_kafka_t *rk;
    int64_t deadline;
    int i;

    memset(&log, 0, sizeof(log));
    rk = kafka_producer_new(bootstrap, "tester", dr_record, &log, errstr, sizeof(errstr));
    assert_non_null(rk);
    for (i = 0; i < n; i++) {
        char value[16];

        event_meta_t meta;
        rd_kafka_headers_t *hdrs;

        snprintf(value, sizeof(value), "%d", i);
        assert_int_equal(event_meta_new(&meta, "test.value", "/test", errstr,
                                        sizeof(errstr)), 0);
        hdrs = event_headers_new(&meta);
        assert_non_null(hdrs);
        assert_int_equal(kafka_produce(rk, topic, "k", value, strlen(value), hdrs, NULL,
                                       errstr, sizeof(errstr)), 0);
    }
    deadline = util_mono_ms() + WAIT_MS;
    while (log.count < n && util_mono_ms() < deadline)
        rd_kafka_poll(rk, 50);
    assert_int_equal(log.count, n);
    for (i = 0; i < n && i < 8; i++)
        assert_int_equal(log.err[i], RD_KAFKA_RESP_ERR_NO_ERROR);
    kafka_producer_close(rk, 5000);
}

/* What the handler saw, shared between the consumer thread and the test. The handler
 * never asserts (cmocka's asserts belong to the test thread): it records, the test checks. */
struct seen_log {
    pthread_mutex_t mu;
    int n;
    int value[MAX_SEEN];
    int64_t offset[MAX_SEEN];
    int retry_value;      /* this value gets RETRY ... */
    int retry_times;      /* ... this many times, then DONE */
    int fail_value;       /* this value gets FAIL */
    int stop_value;       /* on this value: set *stop and answer RETRY */
    volatile int *stop;
};

static void seen_init(struct seen_log *s, volatile int *stop)
{
    memset(s, 0, sizeof(*s));
    pthread_mutex_init(&s->mu, NULL);
    s->retry_value = s->fail_value = s->stop_value = -1;
    s->stop = stop;
}

static int seen_count(struct seen_log *s)
{
    int n;

    pthread_mutex_lock(&s->mu);
    n = s->n;
    pthread_mutex_unlock(&s->mu);
    return n;
}

static kafka_verdict_t seen_handler(const kafka_record_t *rec, void *ctx, kafka_outcome_t *out)
{
    const rd_kafka_message_t *msg = rec->msg;
    char *errstr = out->error;
    size_t errstr_size = sizeof(out->error);
    struct seen_log *s = ctx;
    kafka_verdict_t verdict = KAFKA_DONE;
    char buf[16];
    size_t len = msg->len < sizeof(buf) - 1 ? msg->len : sizeof(buf) - 1;
    int value;

    memcpy(buf, msg->payload, len);
    buf[len] = '\0';
    value = (int)strtol(buf, NULL, 10);

    pthread_mutex_lock(&s->mu);
    if (s->n < MAX_SEEN) {
        s->value[s->n] = value;
        s->offset[s->n] = msg->offset;
    }
    s->n++;
    if (value == s->stop_value) {
        *s->stop = 1;
        snprintf(errstr, errstr_size, "interrupted");
        verdict = KAFKA_RETRY;
    } else if (value == s->retry_value && s->retry_times > 0) {
        s->retry_times--;
        snprintf(errstr, errstr_size, "transient \"failure\"");
        verdict = KAFKA_RETRY;
    } else if (value == s->fail_value) {
        snprintf(errstr, errstr_size, "bad record");
        verdict = KAFKA_FAIL;
    }
    pthread_mutex_unlock(&s->mu);
    return verdict;
}

struct consumer_thread {
    pthread_t tid;
    kafka_consumer_opts_t opts;
    const char *topics[1];
    volatile int stop;
    int rc;
    char errstr[512];
};

static void *consumer_main(void *arg)
{
    struct consumer_thread *ct = arg;

    ct->rc = kafka_consumer_run(&ct->opts, &ct->stop, ct->errstr, sizeof(ct->errstr));
    return NULL;
}

/* Starts kafka_consumer_run() on a thread. strategy, if not NULL, is passed as
 * KAFKA_PARTITION_ASSIGNMENT_STRATEGY. A short session timeout keeps the mock cluster's
 * rebalance delay short: after a member left, it waits a session timeout for a new one. */
static void consumer_start_with(struct consumer_thread *ct, const char *topic,
                                const char *group, kafka_handler_fn handler, void *ctx,
                                const char *strategy)
{
    assert_int_equal(setenv("KAFKA_SESSION_TIMEOUT_MS", "3000", 1), 0);
    assert_int_equal(setenv("KAFKA_HEARTBEAT_INTERVAL_MS", "500", 1), 0);
    if (strategy != NULL)
        assert_int_equal(setenv("KAFKA_PARTITION_ASSIGNMENT_STRATEGY", strategy, 1), 0);
    memset(&ct->opts, 0, sizeof(ct->opts));
    ct->topics[0] = topic;
    ct->opts.bootstrap = bootstrap;
    ct->opts.group = group;
    ct->opts.client_id = "tester";
    ct->opts.topics = ct->topics;
    ct->opts.ntopics = 1;
    ct->opts.handler = handler;
    ct->opts.ctx = ctx;
    ct->opts.retry_initial_ms = 20;
    ct->opts.retry_max_ms = 100;
    ct->rc = -2;
    ct->errstr[0] = '\0';
    assert_int_equal(pthread_create(&ct->tid, NULL, consumer_main, ct), 0);
}

static void consumer_start(struct consumer_thread *ct, const char *topic, const char *group,
                           struct seen_log *seen, const char *strategy)
{
    consumer_start_with(ct, topic, group, seen_handler, seen, strategy);
}

/* Stops and joins the consumer thread. Called before any assertion on what it saw, so a
 * failed test never leaves a thread writing into a finished test's memory. */
static void consumer_stop(struct consumer_thread *ct)
{
    ct->stop = 1;
    assert_int_equal(pthread_join(ct->tid, NULL), 0);
    /* The environment is touched only while no consumer thread reads it. */
    unsetenv("KAFKA_SESSION_TIMEOUT_MS");
    unsetenv("KAFKA_HEARTBEAT_INTERVAL_MS");
    unsetenv("KAFKA_PARTITION_ASSIGNMENT_STRATEGY");
    assert_int_equal(ct->rc, 0);
}

/* Waits until the handler saw at least n records; returns the count. */
static int wait_seen(struct seen_log *s, int n)
{
    int64_t deadline = util_mono_ms() + WAIT_MS;
    int got;

    while ((got = seen_count(s)) < n && util_mono_ms() < deadline)
        util_sleep_ms(20, NULL);
    return got;
}

static void test_consumer_order_retry_fail(void **state)
{
    static const int want[] = { 0, 1, 2, 3, 3, 3, 4, 5, 6, 7 };
    const int nwant = (int)(sizeof(want) / sizeof(want[0]));
    struct consumer_thread ct;
    struct seen_log seen;
    char topic[64];
    int i, got;

    (void)state;
    memset(&ct, 0, sizeof(ct));
    new_topic(topic, sizeof(topic), 1);
    produce_values(topic, 8);

    seen_init(&seen, &ct.stop);
    seen.retry_value = 3;
    seen.retry_times = 2;
    seen.fail_value = 5;
    consumer_start(&ct, topic, "group-order", &seen, NULL);
    got = wait_seen(&seen, nwant);
    /* Nothing more may come: a record seen again after DONE would show up here. */
    util_sleep_ms(300, NULL);
    consumer_stop(&ct);
    assert_int_equal(got, nwant);

    assert_int_equal(seen.n, nwant);
    for (i = 0; i < nwant; i++) {
        assert_int_equal(seen.value[i], want[i]);
        assert_int_equal(seen.offset[i], want[i]); /* value i was written at offset i */
    }
    pthread_mutex_destroy(&seen.mu);
}

/* Offsets are committed up to the last DONE: a new member of the group starts right
 * after it, and a record whose handling was cut short by the stop is seen again. */
static void run_commit_test(const char *group, const char *strategy)
{
    struct consumer_thread ct;
    struct seen_log seen;
    char topic[64];
    int64_t deadline;
    int i, reached, got;

    new_topic(topic, sizeof(topic), 1);
    produce_values(topic, 6);

    /* First member: DONE for 0, 1, 2; at 3 the stop comes while it answers RETRY. */
    memset(&ct, 0, sizeof(ct));
    seen_init(&seen, &ct.stop);
    seen.stop_value = 3;
    consumer_start(&ct, topic, group, &seen, strategy);
    deadline = util_mono_ms() + WAIT_MS;
    while (!ct.stop && util_mono_ms() < deadline)
        util_sleep_ms(20, NULL);
    reached = ct.stop; /* the handler reached record 3 */
    consumer_stop(&ct);
    assert_true(reached);
    assert_int_equal(seen.n, 4);
    for (i = 0; i < 4; i++)
        assert_int_equal(seen.value[i], i);
    pthread_mutex_destroy(&seen.mu);

    /* Second member of the same group: starts at 3, not at 0 and not at 4. */
    memset(&ct, 0, sizeof(ct));
    seen_init(&seen, &ct.stop);
    consumer_start(&ct, topic, group, &seen, strategy);
    got = wait_seen(&seen, 3);
    util_sleep_ms(300, NULL);
    consumer_stop(&ct);
    assert_int_equal(got, 3);
    assert_int_equal(seen.n, 3);
    for (i = 0; i < 3; i++)
        assert_int_equal(seen.value[i], 3 + i);
    pthread_mutex_destroy(&seen.mu);
}

static void test_consumer_commit_eager(void **state)
{
    (void)state;
    run_commit_test("group-commit-eager", NULL);
}

static void test_consumer_commit_cooperative(void **state)
{
    (void)state;
    run_commit_test("group-commit-coop", "cooperative-sticky");
}

static void test_consumer_bad_opts(void **state)
{
    kafka_consumer_opts_t opts;
    const char *topics[] = { "orders" };
    volatile int stop = 0;
    char errstr[512] = "";

    (void)state;
    memset(&opts, 0, sizeof(opts));
    opts.bootstrap = bootstrap;
    opts.group = "g";
    opts.topics = topics;
    opts.ntopics = 1;
    /* no handler */
    assert_int_equal(kafka_consumer_run(&opts, &stop, errstr, sizeof(errstr)), -1);
    assert_true(errstr[0] != '\0');

    opts.handler = seen_handler;
    opts.bootstrap = NULL;
    errstr[0] = '\0';
    assert_int_equal(kafka_consumer_run(&opts, &stop, errstr, sizeof(errstr)), -1);
    assert_true(errstr[0] != '\0');

    opts.bootstrap = bootstrap;
    assert_int_equal(setenv("KAFKA_ACKS", "banana", 1), 0);
    errstr[0] = '\0';
    assert_int_equal(kafka_consumer_run(&opts, &stop, errstr, sizeof(errstr)), -1);
    unsetenv("KAFKA_ACKS");
    assert_non_null(strstr(errstr, "KAFKA_ACKS"));
}

/* Returns a plain consumer (no group membership) assigned to partition 0 of topic from
 * the start. The caller destroys every message it got before the handle (librdkafka
 * waits for them in rd_kafka_destroy()). */
static rd_kafka_t *plain_consumer(const char *topic)
{
    rd_kafka_conf_t *conf;
    rd_kafka_t *rk;
    rd_kafka_topic_partition_list_t *parts;
    char errstr[512];

    conf = kafka_conf_new(bootstrap, "tester", errstr, sizeof(errstr));
    assert_non_null(conf);
    assert_int_equal(rd_kafka_conf_set(conf, "group.id", "test-plain", errstr,
                                       sizeof(errstr)), RD_KAFKA_CONF_OK);
    rk = rd_kafka_new(RD_KAFKA_CONSUMER, conf, errstr, sizeof(errstr));
    assert_non_null(rk);
    parts = rd_kafka_topic_partition_list_new(1);
    rd_kafka_topic_partition_list_add(parts, topic, 0)->offset = RD_KAFKA_OFFSET_BEGINNING;
    assert_int_equal(rd_kafka_assign(rk, parts), RD_KAFKA_RESP_ERR_NO_ERROR);
    rd_kafka_topic_partition_list_destroy(parts);
    return rk;
}

/* Returns the next record (the caller destroys it), or NULL after the deadline. */
static rd_kafka_message_t *poll_record(rd_kafka_t *rk)
{
    int64_t deadline = util_mono_ms() + WAIT_MS;

    while (util_mono_ms() < deadline) {
        rd_kafka_message_t *msg = rd_kafka_consumer_poll(rk, 100);

        if (msg != NULL && msg->err == RD_KAFKA_RESP_ERR_NO_ERROR)
            return msg;
        if (msg != NULL)
            rd_kafka_message_destroy(msg);
    }
    return NULL;
}

static void test_header_dup(void **state)
{
    static const char raw[] = { 'a', 'b', 'c' }; /* no NUL on the wire */
    struct dr_log log;
    rd_kafka_headers_t *hdrs;
    rd_kafka_message_t *msg;
    rd_kafka_t *rk, *crk;
    char topic[64], errstr[512];
    char *v;

    (void)state;
    memset(&log, 0, sizeof(log));
    new_topic(topic, sizeof(topic), 1);
    hdrs = rd_kafka_headers_new(4);
    assert_int_equal(rd_kafka_header_add(hdrs, "dup", -1, "first", -1), 0);
    assert_int_equal(rd_kafka_header_add(hdrs, "dup", -1, "last", -1), 0);
    assert_int_equal(rd_kafka_header_add(hdrs, "raw", -1, raw, sizeof(raw)), 0);
    assert_int_equal(rd_kafka_header_add(hdrs, "null", -1, NULL, 0), 0);
    rk = kafka_producer_new(bootstrap, "tester", dr_record, &log, errstr, sizeof(errstr));
    assert_non_null(rk);
    assert_int_equal(kafka_produce(rk, topic, NULL, "v", 1, hdrs, NULL, errstr,
                                   sizeof(errstr)), 0);
    kafka_producer_close(rk, 5000);
    assert_int_equal(log.count, 1);
    assert_int_equal(log.err[0], RD_KAFKA_RESP_ERR_NO_ERROR);

    crk = plain_consumer(topic);
    msg = poll_record(crk);
    assert_non_null(msg);
    assert_null(msg->key); /* a NULL key is produced as no key */
    v = kafka_header_dup(msg, "dup");
    assert_non_null(v);
    assert_string_equal(v, "last");
    free(v);
    v = kafka_header_dup(msg, "raw");
    assert_non_null(v);
    assert_string_equal(v, "abc");
    free(v);
    assert_null(kafka_header_dup(msg, "null"));
    assert_null(kafka_header_dup(msg, "absent"));
    assert_null(kafka_header_dup(NULL, "dup"));
    rd_kafka_message_destroy(msg);
    rd_kafka_consumer_close(crk);
    rd_kafka_destroy(crk);
}


/* What the hand-over test's handler saw of each record. */
struct handover_seen {
    pthread_mutex_t mu;
    int n;
    int value[16];
    int attempt[16];
    char topic[16][64];
    char expired[16][32];
};

/* Value 1: retry later (reason x_unavailable, 750 ms); 2: failed for good (reason bad);
 * anything else: done. */
static kafka_verdict_t handover_handler(const kafka_record_t *rec, void *ctx,
                                        kafka_outcome_t *out)
{
    struct handover_seen *h = ctx;
    char buf[16];
    size_t len = rec->msg->len < sizeof(buf) - 1 ? rec->msg->len : sizeof(buf) - 1;
    int value;

    memcpy(buf, rec->msg->payload, len);
    buf[len] = '\0';
    value = (int)strtol(buf, NULL, 10);
    pthread_mutex_lock(&h->mu);
    if (h->n < 16) {
        h->value[h->n] = value;
        h->attempt[h->n] = rec->attempt;
        snprintf(h->topic[h->n], sizeof(h->topic[0]), "%s", rec->topic);
        snprintf(h->expired[h->n], sizeof(h->expired[0]), "%s",
                 rec->expired != NULL ? rec->expired : "");
    }
    h->n++;
    pthread_mutex_unlock(&h->mu);
    if (value == 1 && rec->expired == NULL) {
        snprintf(out->reason, sizeof(out->reason), "x_unavailable");
        snprintf(out->error, sizeof(out->error), "the x is down");
        out->delay_ms = 750;
        return KAFKA_RETRY_LATER;
    }
    if (value == 2) {
        snprintf(out->reason, sizeof(out->reason), "bad");
        snprintf(out->error, sizeof(out->error), "value 2 is never acceptable");
        return KAFKA_FAIL;
    }
    return KAFKA_DONE;
}

/* Reads a header of m as text; "" when absent. */
static const char *hdr(const rd_kafka_message_t *m, const char *name, char *buf, size_t size)
{
    char *v = kafka_header_dup(m, name);

    snprintf(buf, size, "%s", v != NULL ? v : "");
    free(v);
    return buf;
}

static void test_consumer_handover(void **state)
{
    struct consumer_thread ct;
    struct handover_seen seen;
    rd_kafka_message_t *retried[4] = { 0 }, *dead[4] = { 0 }, *raw[4] = { 0 };
    rd_kafka_t *rk, *r1, *r2, *r3;
    retry_info_t info;
    char topic[64], errstr[512], b[600];
    int64_t before = util_now_ms();
    int nr, nd, i;

    (void)state;
    memset(&ct, 0, sizeof(ct));
    memset(&seen, 0, sizeof(seen));
    pthread_mutex_init(&seen.mu, NULL);
    new_topic(topic, sizeof(topic), 1);
    produce_values(topic, 3);  /* 0 done, 1 retry later, 2 dead */
    /* A record without CloudEvents headers never reaches the handler. */
    rk = kafka_producer_new(bootstrap, "tester", NULL, NULL, errstr, sizeof(errstr));
    assert_non_null(rk);
    assert_int_equal(kafka_produce(rk, topic, "k", "9", 1, NULL, NULL, errstr,
                                   sizeof(errstr)), 0);
    rd_kafka_flush(rk, 5000);

    consumer_start_with(&ct, topic, "group-handover", handover_handler, &seen, NULL);
    nr = read_all("retry", retried, 4, 1, &r1);
    /* dead-letter is shared with the earlier tests: read them too, keep this group's. */
    nd = read_all("dead-letter", dead, 4, 3, &r2);
    for (i = 0; i < nd;) {
        if (strcmp(hdr(dead[i], "dozen-group", b, sizeof(b)), "group-handover") != 0) {
            rd_kafka_message_destroy(dead[i]);
            dead[i] = dead[--nd];
        } else {
            i++;
        }
    }

    /* Value 1 once more, redelivered by hand as the retry service would: attempt 1. */
    assert_int_equal(nr, 1);
    assert_int_equal(retry_info_read(retried[0], &info, errstr, sizeof(errstr)), 0);
    assert_string_equal(info.original_topic, topic);
    assert_int_equal(info.original_partition, 0);
    assert_int_equal(info.original_offset, 1);
    assert_string_equal(info.group, "group-handover");
    assert_int_equal(info.attempt, 1);
    assert_int_equal(info.max_attempts, 8);
    assert_string_equal(info.reason, "x_unavailable");
    assert_string_equal(info.error, "the x is down");
    assert_true(info.not_before_ms >= before + 750 && info.not_before_ms < util_now_ms() + 750);
    assert_true(info.first_failed_at_ms >= before);
    assert_string_equal(hdr(retried[0], "ce_type", b, sizeof(b)), "test.value");
    snprintf(info.expired, sizeof(info.expired), "max_attempts");
    {
        rd_kafka_headers_t *h = retry_headers_build(retried[0], &info, NULL, NULL);
        assert_int_equal(kafka_produce(rk, "retry.group-handover", "k", "1", 1, h, NULL,
                                       errstr, sizeof(errstr)), 0);
        rd_kafka_flush(rk, 5000);
    }
    for (int64_t deadline = util_mono_ms() + WAIT_MS; util_mono_ms() < deadline;) {
        pthread_mutex_lock(&seen.mu);
        i = seen.n;
        pthread_mutex_unlock(&seen.mu);
        if (i >= 4)
            break;
        util_sleep_ms(20, NULL);
    }
    consumer_stop(&ct);
    kafka_producer_close(rk, 1000);

    /* The handler saw 0, 1, 2 and then the final notice of 1, as from the original topic;
     * never the record without headers. */
    assert_int_equal(seen.n, 4);
    assert_int_equal(seen.value[3], 1);
    assert_string_equal(seen.topic[3], topic);
    assert_int_equal(seen.attempt[3], 1);
    assert_string_equal(seen.expired[3], "max_attempts");

    assert_int_equal(nd, 2);
    for (i = 0; i < nd; i++) {
        assert_string_equal(hdr(dead[i], "dozen-group", b, sizeof(b)), "group-handover");
        assert_string_equal(hdr(dead[i], "dozen-original-topic", b, sizeof(b)), topic);
    }
    /* The record without headers (offset 3) and value 2 (offset 2), in either order. */
    for (i = 0; i < nd; i++) {
        hdr(dead[i], "dozen-original-offset", b, sizeof(b));
        if (strcmp(b, "2") == 0) {
            assert_string_equal(hdr(dead[i], "dozen-reason", b, sizeof(b)), "bad");
            assert_string_equal(hdr(dead[i], "dozen-error", b, sizeof(b)),
                                "value 2 is never acceptable");
        } else {
            assert_string_equal(b, "3");
            assert_string_equal(hdr(dead[i], "dozen-reason", b, sizeof(b)), "invalid_record");
            assert_non_null(strstr(hdr(dead[i], "dozen-error", b, sizeof(b)), "ce_"));
        }
    }
    /* Headers are replaced, never appended: one dozen-attempt however many hops. */
    assert_int_equal(read_all("retry", raw, 4, 1, &r3), 1);
    {
        rd_kafka_headers_t *h = NULL;
        const void *v;
        size_t sz, count = 0;
        rd_kafka_headers_t *built = retry_headers_build(raw[0], &info, NULL, NULL);
        for (size_t k = 0; rd_kafka_header_get(built, k, "dozen-attempt", &v, &sz) ==
                           RD_KAFKA_RESP_ERR_NO_ERROR; k++)
            count++;
        assert_int_equal(count, 1);
        rd_kafka_headers_destroy(built);
        (void)h;
    }
    for (i = 0; i < nr; i++)
        rd_kafka_message_destroy(retried[i]);
    for (i = 0; i < nd; i++)
        rd_kafka_message_destroy(dead[i]);
    rd_kafka_message_destroy(raw[0]);
    rd_kafka_destroy(r1);
    rd_kafka_destroy(r2);
    rd_kafka_destroy(r3);
    pthread_mutex_destroy(&seen.mu);
}

int main(void)
{
    /* The consumers' 6 s session (kafka_consumer_join's default) is too short under
     * valgrind, where heartbeats come late and the member is thrown out of its group before
     * it consumes anything; these tests are not about sessions. */
    setenv("KAFKA_SESSION_TIMEOUT_MS", "45000", 0);
    setenv("KAFKA_HEARTBEAT_INTERVAL_MS", "3000", 0);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_header_dup),
        cmocka_unit_test(test_consumer_bad_opts),
        cmocka_unit_test(test_consumer_commit_eager),
        cmocka_unit_test(test_consumer_order_retry_fail),
        cmocka_unit_test(test_consumer_commit_cooperative),
        cmocka_unit_test(test_consumer_handover),
    };

    return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
