/* Unit tests for libcommon/topics.c that need no broker: the declaration itself (legal,
 * unique names; sane partitions, replication, retention and cleanup policy), topics_find,
 * and how topics_ensure and topics_service_ready fail without a cluster. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "topics.h"
#include "util.h"

/* Kafka's rule for a topic name: 1..249 of [a-zA-Z0-9._-], and not "." or "..". */
static int kafka_name_ok(const char *s)
{
    size_t i, len = strlen(s);

    if (len == 0 || len > 249 || strcmp(s, ".") == 0 || strcmp(s, "..") == 0)
        return 0;
    for (i = 0; i < len; i++) {
        char c = s[i];

        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
              c == '.' || c == '_' || c == '-'))
            return 0;
    }
    return 1;
}

static void test_every_declared_topic_is_sane(void **state)
{
    size_t i, j;

    (void)state;
    assert_true(topics_count > 0);
    for (i = 0; i < topics_count; i++) {
        const topic_spec_t *t = &topics_all[i];

        assert_non_null(t->name);
        if (!kafka_name_ok(t->name))
            fail_msg("topic '%s' is not a legal Kafka topic name", t->name);
        /* '.' and '_' collide in Kafka's metric names: a declaration must not hold both
         * spellings of one name. */
        for (j = i + 1; j < topics_count; j++) {
            const char *a = t->name, *b = topics_all[j].name;
            size_t k;

            if (strcmp(a, b) == 0)
                fail_msg("topic '%s' is declared twice", a);
            for (k = 0; a[k] != '\0' && b[k] != '\0'; k++) {
                if (a[k] != b[k] && !((a[k] == '.' || a[k] == '_') &&
                                      (b[k] == '.' || b[k] == '_')))
                    break;
            }
            if (a[k] == '\0' && b[k] == '\0')
                fail_msg("topics '%s' and '%s' collide ('.' vs '_')", a, b);
        }
        if (t->partitions < 1 || t->partitions > 64)
            fail_msg("topic '%s': %d partitions", t->name, t->partitions);
        if (t->replication_factor < 1 || t->replication_factor > 5)
            fail_msg("topic '%s': replication factor %d", t->name, t->replication_factor);
        /* -1 is the broker's default; otherwise at least an hour, at most a year. */
        if (t->retention_ms != -1 &&
            (t->retention_ms < 3600000LL || t->retention_ms > 366LL * 86400000LL))
            fail_msg("topic '%s': retention %lld ms", t->name, t->retention_ms);
        assert_non_null(t->cleanup_policy);
        if (strcmp(t->cleanup_policy, "delete") != 0 &&
            strcmp(t->cleanup_policy, "compact") != 0 &&
            strcmp(t->cleanup_policy, "compact,delete") != 0)
            fail_msg("topic '%s': cleanup policy '%s'", t->name, t->cleanup_policy);
    }
}

static void test_the_contract_topics_are_declared(void **state)
{
    static const char *const names[] = {
        "orders", "stock.depleted", "stock.replenished", "bulletins", "retry", "dead-letter",
    };
    const topic_spec_t *t;
    size_t i;

    (void)state;
    for (i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
        t = topics_find(names[i]);
        if (t == NULL)
            fail_msg("topic '%s' is not declared", names[i]);
        assert_string_equal(t->name, names[i]);
        /* The pointer is the table's entry, not a copy. */
        assert_true(t >= topics_all && t < topics_all + topics_count);
    }
    /* Dead letters are kept for inspection and replay: longer than the broker's default
     * of 7 days. */
    t = topics_find("dead-letter");
    assert_true(t->retention_ms > 7LL * 86400000LL);
}

static void test_find_is_exact(void **state)
{
    size_t i;

    (void)state;
    for (i = 0; i < topics_count; i++)
        assert_ptr_equal(topics_find(topics_all[i].name), &topics_all[i]);
    assert_null(topics_find(NULL));
    assert_null(topics_find(""));
    assert_null(topics_find("Orders"));
    assert_null(topics_find("order"));
    assert_null(topics_find("orders "));
    assert_null(topics_find("orders.x"));
    assert_null(topics_find("no-such-topic"));
}

/* Nothing listens on port 1: the cluster does not answer, and the error says where. */
static void test_ensure_without_a_cluster(void **state)
{
    static const char *const some[] = { "orders", NULL };
    char err[512] = "";
    int64_t t0 = util_mono_ms();

    (void)state;
    assert_int_equal(topics_ensure("127.0.0.1:1", some, 500, err, sizeof(err)), -1);
    if (strncmp(err, "Kafka at 127.0.0.1:1 did not answer: ", 37) != 0)
        fail_msg("unexpected error: %s", err);
    /* The wait is bounded (at least 1 s per metadata request, by topics_ensure's floor). */
    assert_true(util_mono_ms() - t0 < 15000);

    assert_int_equal(topics_ensure("", NULL, 500, err, sizeof(err)), -1);
    assert_string_equal(err, "kafka: no bootstrap servers given");
}

/* A bad KAFKA_* setting stops a service's start with the variable's name, before any
 * connection is tried. */
static void test_service_ready_names_a_bad_setting(void **state)
{
    char err[512] = "";

    (void)state;
    assert_int_equal(setenv("KAFKA_LINGER_MS", "soon", 1), 0);
    assert_int_equal(topics_service_ready("127.0.0.1:1", "test", 500, err, sizeof(err)), -1);
    assert_int_equal(unsetenv("KAFKA_LINGER_MS"), 0);
    if (strncmp(err, "KAFKA_LINGER_MS: ", 17) != 0)
        fail_msg("unexpected error: %s", err);
    assert_int_equal(topics_service_ready(NULL, "test", 500, err, sizeof(err)), -1);
    assert_string_equal(err, "kafka: no bootstrap servers given");
}

/* TOPIC_REPLICATION_FACTOR and TOPIC_MIN_INSYNC_REPLICAS: defaults that fit one broker,
 * values taken as given, and a message naming the variable for a bad one, including a
 * min.insync.replicas above the factor (every acks=all write would fail). */
static void test_replication_settings(void **state)
{
    char err[512] = "";
    int rf = 0, isr = 0;

    (void)state;
    assert_int_equal(topics_replication(&rf, &isr, err, sizeof(err)), 0);
    assert_int_equal(rf, 1);
    assert_int_equal(isr, 1);
    assert_int_equal(setenv("TOPIC_REPLICATION_FACTOR", "3", 1), 0);
    assert_int_equal(setenv("TOPIC_MIN_INSYNC_REPLICAS", "2", 1), 0);
    assert_int_equal(topics_replication(&rf, &isr, err, sizeof(err)), 0);
    assert_int_equal(rf, 3);
    assert_int_equal(isr, 2);
    assert_int_equal(setenv("TOPIC_MIN_INSYNC_REPLICAS", "4", 1), 0);
    assert_int_equal(topics_replication(&rf, &isr, err, sizeof(err)), -1);
    if (strstr(err, "TOPIC_MIN_INSYNC_REPLICAS") == NULL)
        fail_msg("unexpected error: %s", err);
    /* A service refuses to start on it, before any connection is tried. */
    assert_int_equal(topics_service_ready("127.0.0.1:1", "test", 500, err, sizeof(err)), -1);
    if (strstr(err, "TOPIC_MIN_INSYNC_REPLICAS") == NULL)
        fail_msg("unexpected error: %s", err);
    assert_int_equal(unsetenv("TOPIC_MIN_INSYNC_REPLICAS"), 0);
    assert_int_equal(setenv("TOPIC_REPLICATION_FACTOR", "0", 1), 0);
    assert_int_equal(topics_replication(&rf, &isr, err, sizeof(err)), -1);
    if (strncmp(err, "TOPIC_REPLICATION_FACTOR", 24) != 0)
        fail_msg("unexpected error: %s", err);
    assert_int_equal(setenv("TOPIC_REPLICATION_FACTOR", "three", 1), 0);
    assert_int_equal(topics_replication(&rf, &isr, err, sizeof(err)), -1);
    if (strncmp(err, "TOPIC_REPLICATION_FACTOR", 24) != 0)
        fail_msg("unexpected error: %s", err);
    assert_int_equal(unsetenv("TOPIC_REPLICATION_FACTOR"), 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_every_declared_topic_is_sane),
        cmocka_unit_test(test_the_contract_topics_are_declared),
        cmocka_unit_test(test_find_is_exact),
        cmocka_unit_test(test_ensure_without_a_cluster),
        cmocka_unit_test(test_service_ready_names_a_bad_setting),
        cmocka_unit_test(test_replication_settings),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
