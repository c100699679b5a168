/* Unit tests for libcommon/util.c: UUIDs, RFC 3339 formatting, clocks and sleeping. */
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "util.h"

#define UUID_COUNT 1000

static int hex_digit(char c)
{
    return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f');
}

static void test_uuid_format(void **state)
{
    char u[UTIL_UUID_LEN + 1];
    size_t i;
    int round;

    (void)state;
    for (round = 0; round < 100; round++) {
        memset(u, 'X', sizeof(u));
        assert_int_equal(util_uuid_v4(u), 0);
        assert_int_equal(strlen(u), UTIL_UUID_LEN);
        for (i = 0; i < UTIL_UUID_LEN; i++) {
            if (i == 8 || i == 13 || i == 18 || i == 23)
                assert_int_equal(u[i], '-');
            else
                assert_true(hex_digit(u[i])); /* lower case only */
        }
        assert_int_equal(u[14], '4'); /* version 4 */
        assert_non_null(strchr("89ab", u[19])); /* RFC 9562 variant 10xx */
        assert_true(util_is_uuid(u));
    }
}

static int cmp_str(const void *a, const void *b)
{
    return strcmp((const char *)a, (const char *)b);
}

static void test_uuid_unique(void **state)
{
    char (*ids)[UTIL_UUID_LEN + 1] = calloc(UUID_COUNT, sizeof(*ids));
    size_t i;

    (void)state;
    assert_non_null(ids);
    for (i = 0; i < UUID_COUNT; i++)
        assert_int_equal(util_uuid_v4(ids[i]), 0);
    qsort(ids, UUID_COUNT, sizeof(*ids), cmp_str);
    for (i = 1; i < UUID_COUNT; i++)
        assert_string_not_equal(ids[i - 1], ids[i]);
    free(ids);
}

static void test_is_uuid(void **state)
{
    (void)state;
    assert_true(util_is_uuid("123e4567-e89b-42d3-a456-426614174000"));
    assert_true(util_is_uuid("123E4567-E89B-42D3-A456-426614174000"));
    assert_true(util_is_uuid("00000000-0000-0000-0000-000000000000"));

    assert_false(util_is_uuid(NULL));
    assert_false(util_is_uuid(""));
    assert_false(util_is_uuid("123e4567-e89b-42d3-a456-42661417400"));   /* short */
    assert_false(util_is_uuid("123e4567-e89b-42d3-a456-4266141740000")); /* long */
    assert_false(util_is_uuid("123e4567e89b-42d3-a456-426614174000-"));  /* dash moved */
    assert_false(util_is_uuid("123e4567-e89b-42d3-a456_426614174000"));  /* wrong separator */
    assert_false(util_is_uuid("123g4567-e89b-42d3-a456-426614174000"));  /* not hex */
    assert_false(util_is_uuid(" 123e4567-e89b-42d3-a456-42661417400"));  /* space */
    assert_false(util_is_uuid("{123e4567-e89b-42d3-a456-426614174000}"));
    assert_false(util_is_uuid("123e4567-e89b-42d3-a456-426614174000\n"));
}

static void test_rfc3339(void **state)
{
    char out[32];

    (void)state;
    assert_int_equal(util_rfc3339(0, out, sizeof(out)), 0);
    assert_string_equal(out, "1970-01-01T00:00:00.000Z");

    assert_int_equal(util_rfc3339(1700000000123LL, out, sizeof(out)), 0);
    assert_string_equal(out, "2023-11-14T22:13:20.123Z");

    /* A leap day and the last millisecond of a year. */
    assert_int_equal(util_rfc3339(951782400999LL, out, sizeof(out)), 0);
    assert_string_equal(out, "2000-02-29T00:00:00.999Z");
    assert_int_equal(util_rfc3339(1798761599999LL, out, sizeof(out)), 0);
    assert_string_equal(out, "2026-12-31T23:59:59.999Z");

    /* Before the epoch the milliseconds still count forwards within the second. */
    assert_int_equal(util_rfc3339(-1, out, sizeof(out)), 0);
    assert_string_equal(out, "1969-12-31T23:59:59.999Z");
}

static void test_rfc3339_small_buffer(void **state)
{
    char out[25];

    (void)state;
    /* 24 characters and the NUL fit exactly; one byte less does not. */
    assert_int_equal(util_rfc3339(0, out, sizeof(out)), 0);
    assert_string_equal(out, "1970-01-01T00:00:00.000Z");
    assert_int_equal(util_rfc3339(0, out, sizeof(out) - 1), -1);
    assert_int_equal(util_rfc3339(0, NULL, 0), -1);
}

static void test_clocks(void **state)
{
    int64_t now = util_now_ms();
    int64_t m1 = util_mono_ms(), m2;

    (void)state;
    /* After 2023-01-01 and before 2100-01-01. */
    assert_true(now > 1672531200000LL);
    assert_true(now < 4102444800000LL);
    m2 = util_mono_ms();
    assert_true(m2 >= m1);
}

static void *set_stop_later(void *arg)
{
    volatile int *stop = arg;

    util_sleep_ms(100, NULL);
    *stop = 1;
    return NULL;
}

static void test_sleep_stopped_by_other_thread(void **state)
{
    volatile int stop = 0;
    pthread_t th;
    int64_t t0, elapsed;

    (void)state;
    t0 = util_mono_ms();
    assert_int_equal(pthread_create(&th, NULL, set_stop_later, (void *)&stop), 0);
    util_sleep_ms(60000, &stop);
    elapsed = util_mono_ms() - t0;
    assert_int_equal(pthread_join(th, NULL), 0);
    assert_true(stop);
    assert_true(elapsed >= 100);
    assert_true(elapsed < 5000); /* the flag is checked every 50 ms */
}

static void test_sleep(void **state)
{
    volatile int stop = 0;
    int64_t t0, elapsed;

    (void)state;
    t0 = util_mono_ms();
    util_sleep_ms(120, NULL);
    elapsed = util_mono_ms() - t0;
    assert_true(elapsed >= 120);
    assert_true(elapsed < 2000);

    /* A stop flag already set returns at once, however long the sleep. */
    stop = 1;
    t0 = util_mono_ms();
    util_sleep_ms(60000, &stop);
    assert_true(util_mono_ms() - t0 < 1000);

    /* Zero and negative durations return at once. */
    t0 = util_mono_ms();
    util_sleep_ms(0, NULL);
    util_sleep_ms(-5, NULL);
    assert_true(util_mono_ms() - t0 < 1000);
}

static void test_alnum(void **state)
{
    (void)state;
    assert_true(util_alnum_valid("ACtest1", 7));
    assert_false(util_alnum_valid("ACtest1", 6));
    assert_false(util_alnum_valid("", 5));
    assert_false(util_alnum_valid("AC test", 64));
    assert_false(util_alnum_valid("AC-test", 64));
    assert_false(util_alnum_valid("AC\xc3\xa9", 64));
}

static void test_rfc3339_parse(void **state)
{
    static const char *const bad[] = {
        "", "yesterday", "2026-11-22", "2026-11-22T01:40:31", "2026-11-22 01:40:31Z",
        "2026-13-01T00:00:00Z", "2026-02-29T00:00:00Z", "2026-04-31T00:00:00Z",
        "2026-11-22T24:00:00Z", "2026-11-22T01:60:00Z", "2026-11-22T01:40:61Z",
        "0000-01-01T00:00:00Z", "2026-11-22T01:40:31.Z", "2026-11-22T01:40:31.1234567890Z",
        "2026-11-22T01:40:31+0100", "2026-11-22T01:40:31+24:00", "2026-11-22T01:40:31Zjunk",
        "+2026-11-22T01:40:31Z", "2026-1-22T01:40:31Z", "2026-11-22T01:40:31.123Z\n",
    };
    int64_t ms = 0;
    char out[32];

    (void)state;
    assert_int_equal(util_rfc3339_parse("2026-11-22T01:40:31.123Z", &ms), 0);
    assert_int_equal(util_rfc3339(ms, out, sizeof(out)), 0);
    assert_string_equal(out, "2026-11-22T01:40:31.123Z");
    assert_int_equal(util_rfc3339_parse("1970-01-01t01:00:00.5+01:00", &ms), 0);
    assert_int_equal(ms, 500);
    assert_int_equal(util_rfc3339_parse("1969-12-31T23:59:59.999999999-00:00", &ms), 0);
    assert_int_equal(ms, -1);
    assert_int_equal(util_rfc3339_parse("2024-02-29T23:59:60z", &ms), 0);
    assert_int_equal(util_rfc3339_parse("2000-02-29T00:00:00Z", NULL), 0);
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        if (util_rfc3339_parse(bad[i], &ms) != -1)
            fail_msg("'%s' was accepted", bad[i]);
    }
    assert_int_equal(util_rfc3339_parse(NULL, &ms), -1);
}

static void test_utf8_valid(void **state)
{
    (void)state;
    assert_true(util_utf8_valid("", 0));
    assert_true(util_utf8_valid("plain", 5));
    assert_true(util_utf8_valid("gr\xc3\xbc\xc3\x9f \xe2\x82\xac \xf0\x9f\x8d\xa9", 15));
    assert_false(util_utf8_valid("a\0b", 3));         /* NUL */
    assert_false(util_utf8_valid("\xff", 1));          /* never UTF-8 */
    assert_false(util_utf8_valid("\xc3", 1));          /* cut */
    assert_false(util_utf8_valid("\xc0\xaf", 2));      /* overlong */
    assert_false(util_utf8_valid("\xed\xa0\x80", 3));  /* surrogate */
    assert_false(util_utf8_valid("\xf4\x90\x80\x80", 4)); /* past U+10FFFF */
    assert_false(util_utf8_valid(NULL, 1));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_alnum),
        cmocka_unit_test(test_rfc3339_parse),
        cmocka_unit_test(test_utf8_valid),
        cmocka_unit_test(test_uuid_format),
        cmocka_unit_test(test_uuid_unique),
        cmocka_unit_test(test_is_uuid),
        cmocka_unit_test(test_rfc3339),
        cmocka_unit_test(test_rfc3339_small_buffer),
        cmocka_unit_test(test_clocks),
        cmocka_unit_test(test_sleep),
        cmocka_unit_test(test_sleep_stopped_by_other_thread),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
