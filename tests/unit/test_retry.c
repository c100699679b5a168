/* test_retry: the retry contract (libcommon/retry.c): the dozen-* headers read and
 * checked, written and copied, group names and the redelivery topic, the dozen-error limit,
 * and the backoff policy. The hand-over itself is tested through the consumer loop in
 * test_kafka. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "retry.h"

#include "retry_fixture.h"

static void unset_all(void)
{
    unsetenv("RETRY_BACKOFF");
    unsetenv("RETRY_INITIAL");
    unsetenv("RETRY_FACTOR");
    unsetenv("RETRY_MAX");
    unsetenv("RETRY_MAX_ATTEMPTS");
}

static void test_parse_valid(void **state)
{
    rd_kafka_headers_t *h = valid_headers();
    retry_info_t r;
    char err[256];

    (void)state;
    assert_int_equal(retry_info_parse(h, 1, &r, err, sizeof(err)), 0);
    assert_string_equal(r.original_topic, "stock.depleted");
    assert_int_equal(r.original_partition, 5);
    assert_true(r.original_offset == 9000000000LL);
    assert_string_equal(r.group, "factory");
    assert_int_equal(r.attempt, 2);
    assert_int_equal(r.max_attempts, 5);
    assert_true(r.not_before_ms == 1700000000000LL);
    assert_true(r.deadline_ms == RETRY_NO_DEADLINE);
    assert_string_equal(r.reason, "factory_unavailable");
    assert_string_equal(r.error, "HTTP 503");
    assert_true(r.first_failed_at_ms == 1699999999000LL);

    /* The last of repeated headers counts; a deadline is read; dozen-error is optional. */
    assert_int_equal(rd_kafka_header_add(h, "dozen-attempt", -1, "3", -1), 0);
    set_header(h, "dozen-deadline", "1700000005000", 13);
    set_header(h, "dozen-error", NULL, 0);
    assert_int_equal(retry_info_parse(h, 1, &r, err, sizeof(err)), 0);
    assert_int_equal(r.attempt, 3);
    assert_true(r.deadline_ms == 1700000005000LL);
    assert_string_equal(r.error, "");
    rd_kafka_headers_destroy(h);
}

/* Sets name to value (NULL: removed) on valid headers and expects an error with fragment. */
static void expect_invalid(const char *name, const char *value, size_t len,
                           const char *fragment)
{
    rd_kafka_headers_t *h = valid_headers();
    retry_info_t r;
    char err[256] = "";

    set_header(h, name, value, len);
    assert_int_equal(retry_info_parse(h, 1, &r, err, sizeof(err)), -1);
    if (strstr(err, fragment) == NULL)
        fail_msg("%s: error '%s' does not mention '%s'", name, err, fragment);
    rd_kafka_headers_destroy(h);
}

static void test_parse_invalid(void **state)
{
    char long_group[RETRY_GROUP_MAX + 2];
    retry_info_t r;
    char err[256];

    (void)state;
    expect_invalid("dozen-group", NULL, 0, "missing header 'dozen-group'");
    expect_invalid("dozen-first-failed-at", NULL, 0, "missing header 'dozen-first-failed-at'");
    expect_invalid("dozen-attempt", "0", 1, "'dozen-attempt': '0' is not an integer from 1");
    expect_invalid("dozen-attempt", "2147483648", 10, "'dozen-attempt'");
    expect_invalid("dozen-attempt", "+2", 2, "'dozen-attempt': '+2'");
    expect_invalid("dozen-attempt", " 2", 2, "'dozen-attempt'");
    expect_invalid("dozen-attempt", "2\0", 2, "'dozen-attempt': '2?'");
    expect_invalid("dozen-max-attempts", "-1", 2, "'dozen-max-attempts': '-1'");
    expect_invalid("dozen-original-offset", "9223372036854775808", 19, "'dozen-original-offset'");
    expect_invalid("dozen-original-offset", "99999999999999999999", 20,
                   "'dozen-original-offset'");
    expect_invalid("dozen-not-before", "", 0, "'dozen-not-before': ''");
    expect_invalid("dozen-not-before", "253402300800000", 15, "'dozen-not-before'");
    expect_invalid("dozen-deadline", "soon", 4, "'dozen-deadline': 'soon'");
    expect_invalid("dozen-group", "a b", 3, "'dozen-group': 'a b' must be 1 to 200");
    expect_invalid("dozen-original-topic", "x\xff", 2, "'dozen-original-topic': 'x?'");
    expect_invalid("dozen-reason", "", 0, "'dozen-reason': ''");

    memset(long_group, 'g', sizeof(long_group) - 1);
    long_group[sizeof(long_group) - 1] = '\0';
    expect_invalid("dozen-group", long_group, strlen(long_group), "'dozen-group'");

    /* No dozen-* header at all: a first delivery, and what a record on `retry` lacks. */
    assert_int_equal(retry_info_parse(NULL, 1, &r, err, sizeof(err)), 1);
    assert_non_null(strstr(err, "missing header 'dozen-original-topic'"));
}


/* Where a replayed record may come (retry.<group>, dead-letter) an attempt may be 0; the
 * first missing header is named for dozenctl. */
static void test_parse_where_replays_come(void **state)
{
    rd_kafka_headers_t *h = valid_headers();
    retry_info_t r;
    char err[256];

    (void)state;
    set_header(h, "dozen-attempt", "0", 1);
    assert_int_equal(retry_info_parse(h, 0, &r, err, sizeof(err)), 0);
    assert_int_equal(r.attempt, 0);
    assert_null(retry_info_first_missing(h));
    set_header(h, "dozen-not-before", NULL, 0);
    assert_string_equal(retry_info_first_missing(h), "dozen-not-before");
    assert_string_equal(retry_info_first_missing(NULL), "dozen-original-topic");
    /* "No deadline" is the absence of the header, never 0 on the wire. */
    set_header(h, "dozen-not-before", "1700000000000", 13);
    set_header(h, "dozen-deadline", "0", 1);
    assert_int_equal(retry_info_parse(h, 0, &r, err, sizeof(err)), -1);
    assert_non_null(strstr(err, "'dozen-deadline': '0'"));
    rd_kafka_headers_destroy(h);
}


/* What is written reads back the same; the copy drops the previous hop's dozen-*. */
static void test_write_copy_and_read_back(void **state)
{
    rd_kafka_headers_t *h = valid_headers(), *copy, *inv;
    retry_info_t in, back;
    const char *v;
    char err[256];

    (void)state;
    set_header(h, "dozen-deadline", "1700000005000", 13);
    assert_int_equal(retry_info_parse(h, 1, &in, err, sizeof(err)), 0);
    snprintf(in.last_reason, sizeof(in.last_reason), "factory_unavailable");
    snprintf(in.expired, sizeof(in.expired), "max_attempts");
    copy = retry_headers_copy(h);
    assert_non_null(copy);
    assert_int_equal(rd_kafka_header_cnt(copy), 2); /* ce_id, content-type */
    assert_int_equal(retry_headers_add(copy, &in, RETRY_HDRS_FULL), 0);
    assert_int_equal(retry_info_parse(copy, 1, &back, err, sizeof(err)), 0);
    assert_memory_equal(&in, &back, sizeof(in));
    rd_kafka_headers_destroy(copy);

    inv = retry_headers_copy(h);
    assert_int_equal(retry_headers_add(inv, &in, RETRY_HDRS_INVALID), 0);
    assert_int_equal(get(inv, "dozen-attempt", &v), -1);
    assert_int_equal(get(inv, "dozen-expired", &v), -1);
    assert_int_equal(rd_kafka_header_cnt(inv), 9);
    rd_kafka_headers_destroy(inv);
    rd_kafka_headers_destroy(h);
    assert_true(retry_header_is_ours("dozen-x"));
    assert_false(retry_header_is_ours("ce_id"));
}

static void test_group_valid(void **state)
{
    (void)state;
    assert_true(retry_group_valid("factory"));
    assert_true(retry_group_valid("a.b_c-1"));
    assert_false(retry_group_valid(""));
    assert_false(retry_group_valid("a/b"));
    assert_false(retry_group_valid(NULL));
}

static void test_defaults_are_1s_x2_60s_8(void **state)
{
    retry_policy_t p;
    char err[256];

    (void)state;
    unset_all();
    assert_int_equal(retry_policy_from_env(&p, err, sizeof(err)), 0);
    assert_int_equal(p.exponential, 1);
    assert_int_equal(p.max_attempts, 8);
    assert_int_equal(retry_policy_delay(&p, 1), 1000);
    assert_int_equal(retry_policy_delay(&p, 2), 2000);
    assert_int_equal(retry_policy_delay(&p, 4), 8000);
    assert_int_equal(retry_policy_delay(&p, 6), 32000);
    assert_int_equal(retry_policy_delay(&p, 7), 60000);
    assert_int_equal(retry_policy_delay(&p, 1000), 60000);
}

static void test_fixed_and_factor(void **state)
{
    retry_policy_t p;
    char err[256];

    (void)state;
    setenv("RETRY_BACKOFF", "fixed", 1);
    setenv("RETRY_INITIAL", "10m", 1);
    setenv("RETRY_MAX", "1h", 1);
    assert_int_equal(retry_policy_from_env(&p, err, sizeof(err)), 0);
    assert_int_equal(retry_policy_delay(&p, 1), 600000);
    assert_int_equal(retry_policy_delay(&p, 9), 600000);
    setenv("RETRY_BACKOFF", "exponential", 1);
    setenv("RETRY_INITIAL", "100ms", 1);
    setenv("RETRY_FACTOR", "1.5", 1);
    assert_int_equal(retry_policy_from_env(&p, err, sizeof(err)), 0);
    assert_int_equal(retry_policy_delay(&p, 3), 225);
    unset_all();
}

static void expect_env_error(const char *name, const char *value)
{
    retry_policy_t p;
    char err[256] = "";

    unset_all();
    setenv(name, value, 1);
    assert_int_equal(retry_policy_from_env(&p, err, sizeof(err)), -1);
    if (strstr(err, name) == NULL)
        fail_msg("%s=%s: error '%s' does not name the variable", name, value, err);
    unset_all();
}

static void test_bad_settings_name_the_variable(void **state)
{
    (void)state;
    expect_env_error("RETRY_BACKOFF", "linear");
    expect_env_error("RETRY_FACTOR", "0.5");
    expect_env_error("RETRY_FACTOR", "two");
    expect_env_error("RETRY_INITIAL", "soon");
    expect_env_error("RETRY_MAX_ATTEMPTS", "-1");
    {
        retry_policy_t p;
        char err[256] = "";

        setenv("RETRY_INITIAL", "2m", 1);
        setenv("RETRY_MAX", "1m", 1);
        assert_int_equal(retry_policy_from_env(&p, err, sizeof(err)), -1);
        assert_non_null(strstr(err, "RETRY_MAX"));
        unset_all();
    }
}

static void test_error_is_cut_at_512_bytes_on_a_character(void **state)
{
    retry_info_t info;
    char text[700];

    (void)state;
    memset(text, 'a', sizeof(text));
    text[sizeof(text) - 1] = '\0';
    retry_set_error(&info, text);
    assert_int_equal(strlen(info.error), RETRY_ERROR_MAX);
    /* A two-byte character straddling the limit is dropped whole. */
    text[RETRY_ERROR_MAX - 1] = (char)0xc3;
    text[RETRY_ERROR_MAX] = (char)0xa9;
    retry_set_error(&info, text);
    assert_int_equal(strlen(info.error), RETRY_ERROR_MAX - 1);
    retry_set_error(&info, NULL);
    assert_string_equal(info.error, "");
}

static void test_redelivery_topic(void **state)
{
    char buf[16];

    (void)state;
    assert_int_equal(retry_redelivery_topic("factory", buf, sizeof(buf)), 0);
    assert_string_equal(buf, "retry.factory");
    assert_int_equal(retry_redelivery_topic("a-very-long-group", buf, sizeof(buf)), -1);
    assert_int_equal(retry_redelivery_topic("stock", buf, sizeof(buf)), 0);
    assert_string_equal(buf, "retry.stock");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_parse_valid),
        cmocka_unit_test(test_parse_invalid),
        cmocka_unit_test(test_parse_where_replays_come),
        cmocka_unit_test(test_write_copy_and_read_back),
        cmocka_unit_test(test_group_valid),
        cmocka_unit_test(test_defaults_are_1s_x2_60s_8),
        cmocka_unit_test(test_fixed_and_factor),
        cmocka_unit_test(test_bad_settings_name_the_variable),
        cmocka_unit_test(test_error_is_cut_at_512_bytes_on_a_character),
        cmocka_unit_test(test_redelivery_topic),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
