/* Unit tests for libcommon/cron.c: parsing schedules and their next run, DST edges included
 * (helpers in tests/unit/cron_fixture.h). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "cron_fixture.h"

static void test_parse_default(void **state)
{
    cron_t c = parse_ok("40 9 * * *");

    (void)state;
    assert_true(c.minutes == UINT64_C(1) << 40);
    assert_int_equal(c.hours, 1u << 9);
    assert_int_equal(c.days, 0xFFFFFFFEu); /* 1..31 */
    assert_int_equal(c.months, 0x1FFEu);   /* 1..12 */
    assert_int_equal(c.weekdays, 0x7Fu);   /* 0..6 */
    assert_int_equal(c.dom_star, 1);
    assert_int_equal(c.dow_star, 1);
}

static void test_parse_lists_ranges_steps_names(void **state)
{
    cron_t c;

    (void)state;
    c = parse_ok("*/15 9-17/4 1,15,31 jan-mar,DEC mon-fri");
    assert_true(c.minutes == ((UINT64_C(1) << 0) | (UINT64_C(1) << 15) |
                              (UINT64_C(1) << 30) | (UINT64_C(1) << 45)));
    assert_int_equal(c.hours, (1u << 9) | (1u << 13) | (1u << 17));
    assert_int_equal(c.days, (1u << 1) | (1u << 15) | (1u << 31));
    assert_int_equal(c.months, (1u << 1) | (1u << 2) | (1u << 3) | (1u << 12));
    assert_int_equal(c.weekdays, 0x3Eu); /* 1..5 */
    assert_int_equal(c.dom_star, 0);
    assert_int_equal(c.dow_star, 0);

    /* 7 is Sunday, like 0; ranges may end on it. */
    assert_int_equal(parse_ok("0 0 * * 7").weekdays, 1u);
    assert_int_equal(parse_ok("0 0 * * 0").weekdays, 1u);
    assert_int_equal(parse_ok("0 0 * * 5-7").weekdays, (1u << 5) | (1u << 6) | 1u);
    assert_int_equal(parse_ok("0 0 * * Sun,sat").weekdays, (1u << 6) | 1u);
    assert_int_equal(parse_ok("0 0 * * */2").weekdays, 0x55u); /* 0,2,4,6 */
    assert_int_equal(parse_ok("0 0 * * */2").dow_star, 1);

    /* Single-value range with a step, list of steps, and blanks around fields. */
    c = parse_ok("  5-5/3,50-59/5 \t 0  *  *  * ");
    assert_true(c.minutes == ((UINT64_C(1) << 5) | (UINT64_C(1) << 50) |
                              (UINT64_C(1) << 55)));
    assert_int_equal(parse_ok("0 0 */10 * *").days, (1u << 1) | (1u << 11) | (1u << 21) |
                                                    (1u << 31));
    assert_int_equal(parse_ok("0 0 * */5 *").months, (1u << 1) | (1u << 6) | (1u << 11));
    assert_true(parse_ok("59 23 31 12 6").minutes == UINT64_C(1) << 59);
}

static void test_parse_errors(void **state)
{
    static const struct {
        const char *expr;
        const char *err;
    } cases[] = {
        { "40 25 * * *", "field 2 (hour): 25 is out of range 0..23" },
        { "60 9 * * *", "field 1 (minute): 60 is out of range 0..59" },
        { "0 0 0 * *", "field 3 (day-of-month): 0 is out of range 1..31" },
        { "0 0 32 * *", "field 3 (day-of-month): 32 is out of range 1..31" },
        { "0 0 * 13 *", "field 4 (month): 13 is out of range 1..12" },
        { "0 0 * * 8", "field 5 (day-of-week): 8 is out of range 0..7" },
        { "0 99999999999999999999 * * *",
          "field 2 (hour): 99999999999999999999 is out of range 0..23" },
        { "0 0 * foo *", "field 4 (month): 'foo' is not a number or month name" },
        { "0 0 * * monday", "field 5 (day-of-week): 'monday' is not a number or day name" },
        { "0 0 * * jan", "field 5 (day-of-week): 'jan' is not a number or day name" },
        { "x 0 * * *", "field 1 (minute): 'x' is not a number" },
        { "0 -1 * * *", "field 2 (hour): unexpected '-'" },
        { "0 5-3 * * *", "field 2 (hour): range 5-3 is reversed (write the smaller value "
                         "first)" },
        { "*/0 * * * *", "field 1 (minute): step 0 is out of range 1..60" },
        { "*/61 * * * *", "field 1 (minute): step 61 is out of range 1..60" },
        { "5/10 * * * *", "field 1 (minute): step in '5/' needs '*' or a range (use */n or "
                          "a-b/n)" },
        { "*/ * * * *", "field 1 (minute): a step number is missing after '/'" },
        { "1,,2 * * * *", "field 1 (minute): empty list item in '1,,2'" },
        { "1, * * * *", "field 1 (minute): empty list item in '1,'" },
        { ",1 * * * *", "field 1 (minute): a number is missing" },
        { "1x * * * *", "field 1 (minute): unexpected 'x' in '1x'" },
        { "*-5 * * * *", "field 1 (minute): unexpected '-' in '*-5'" },
        { "0 0 * *", "'0 0 * *' has 4 fields, expected 5 (minute hour day-of-month month "
                     "day-of-week)" },
        { "", "'' has 0 fields, expected 5 (minute hour day-of-month month day-of-week)" },
        { "0 0 * * * *", "'0 0 * * * *' has more than 5 fields (minute hour day-of-month "
                         "month day-of-week)" },
        { "@daily", "field 1 (minute): unexpected '@'" },
    };
    char err[256];
    cron_t c, before;
    size_t i;

    (void)state;
    for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        memset(&c, 0xAB, sizeof(c));
        before = c;
        err[0] = '\0';
        if (cron_parse(cases[i].expr, &c, err, sizeof(err)) != -1)
            fail_msg("'%s' was accepted", cases[i].expr);
        assert_string_equal(err, cases[i].err);
        assert_memory_equal(&c, &before, sizeof(c)); /* untouched on error */
    }

    /* Too long, NULL, and no errstr. */
    {
        char big[CRON_EXPR_MAX + 2];

        memset(big, '1', sizeof(big) - 1);
        big[sizeof(big) - 1] = '\0';
        assert_int_equal(cron_parse(big, &c, err, sizeof(err)), -1);
        assert_string_equal(err, "cron expression is longer than 1024 characters");
    }
    assert_int_equal(cron_parse(NULL, &c, err, sizeof(err)), -1);
    assert_int_equal(cron_parse("0 0 * * *", NULL, err, sizeof(err)), -1);
    assert_int_equal(cron_parse("0 25 * * *", &c, NULL, 0), -1);
}

static void test_next_default_seoul(void **state)
{
    (void)state;
    /* Asia/Seoul is UTC+9 without DST: 09:40 KST is 00:40Z. */
    assert_string_equal(next_of("40 9 * * *", "Asia/Seoul", "2026-11-22T00:00:00Z"),
                        "2026-11-22T00:40:00.000Z");
    assert_string_equal(next_of("40 9 * * *", "Asia/Seoul", "2026-11-22T00:39:59.999Z"),
                        "2026-11-22T00:40:00.000Z");
    /* Strictly after: a run at exactly 00:40:00 is followed by the next day's. */
    assert_string_equal(next_of("40 9 * * *", "Asia/Seoul", "2026-11-22T00:40:00Z"),
                        "2026-11-23T00:40:00.000Z");
    assert_string_equal(next_of("40 9 * * *", "Asia/Seoul", "2026-11-22T00:40:00.001Z"),
                        "2026-11-23T00:40:00.000Z");
    /* Late on the UTC day, already the next day in Seoul. */
    assert_string_equal(next_of("40 9 * * *", "Asia/Seoul", "2026-11-21T23:00:00Z"),
                        "2026-11-22T00:40:00.000Z");
    /* Year end. */
    assert_string_equal(next_of("40 9 * * *", "Asia/Seoul", "2026-12-31T01:00:00Z"),
                        "2027-01-01T00:40:00.000Z");
    /* The same expression in UTC. */
    assert_string_equal(next_of("40 9 * * *", "UTC", "2026-11-22T00:00:00Z"),
                        "2026-11-22T09:40:00.000Z");
}

static void test_next_steps_ranges_lists_names(void **state)
{
    (void)state;
    assert_string_equal(next_of("*/20 10-11 * * *", "UTC", "2026-11-22T10:45:00Z"),
                        "2026-11-22T11:00:00.000Z");
    assert_string_equal(next_of("*/20 10-11 * * *", "UTC", "2026-11-22T11:40:00Z"),
                        "2026-11-23T10:00:00.000Z");
    assert_string_equal(next_of("5,35 */6 * * *", "UTC", "2026-11-22T06:05:00Z"),
                        "2026-11-22T06:35:00.000Z");
    assert_string_equal(next_of("5,35 */6 * * *", "UTC", "2026-11-22T06:35:00Z"),
                        "2026-11-22T12:05:00.000Z");
    /* 2026-11-22 is a Sunday: the next weekday run is Monday 09:00 KST. */
    assert_string_equal(next_of("0 9 * * mon-fri", "Asia/Seoul", "2026-11-20T00:00:00Z"),
                        "2026-11-23T00:00:00.000Z");
    assert_string_equal(next_of("0 9 * * sat,7", "Asia/Seoul", "2026-11-20T00:00:00Z"),
                        "2026-11-21T00:00:00.000Z");
    assert_string_equal(next_of("0 9 * * sun", "Asia/Seoul", "2026-11-21T00:00:00Z"),
                        "2026-11-22T00:00:00.000Z");
    /* Months by name and number; day 31 skips the short months. */
    assert_string_equal(next_of("0 0 1 feb,6 *", "UTC", "2026-11-22T00:00:00Z"),
                        "2027-02-01T00:00:00.000Z");
    assert_string_equal(next_of("0 0 31 * *", "UTC", "2026-11-01T00:00:00Z"),
                        "2026-12-31T00:00:00.000Z");
    assert_string_equal(next_of("* * * * *", "UTC", "2026-11-22T10:45:30Z"),
                        "2026-11-22T10:46:00.000Z");
}

static void test_next_dom_dow_rule(void **state)
{
    (void)state;
    /* From Sat 2026-11-07: the 10th is a Tuesday, the 13th a Friday. */
    assert_string_equal(next_of("0 12 10 * *", "UTC", "2026-11-07T00:00:00Z"),
                        "2026-11-10T12:00:00.000Z");
    assert_string_equal(next_of("0 12 * * fri", "UTC", "2026-11-07T00:00:00Z"),
                        "2026-11-13T12:00:00.000Z");
    /* Both restricted: either matches (the 10th, then Friday the 13th, then Friday 20th). */
    assert_string_equal(next_of("0 12 10 * fri", "UTC", "2026-11-07T00:00:00Z"),
                        "2026-11-10T12:00:00.000Z");
    assert_string_equal(next_of("0 12 10 * fri", "UTC", "2026-11-10T12:00:00Z"),
                        "2026-11-13T12:00:00.000Z");
    assert_string_equal(next_of("0 12 10 * fri", "UTC", "2026-11-13T12:00:00Z"),
                        "2026-11-20T12:00:00.000Z");
    /* A field starting with '*' counts as unrestricted, so both must match: Fridays on odd
     * days of the month (Fri 6th is even; Fri 13th is odd). */
    assert_string_equal(next_of("0 12 */2 * 5", "UTC", "2026-11-01T00:00:00Z"),
                        "2026-11-13T12:00:00.000Z");
}

static void test_next_dst_new_york_spring_forward(void **state)
{
    char err[256] = "";
    cron_zone_t *z;
    int64_t t = 0;

    (void)state;
    /* 2026-03-08 02:00 EST (07:00Z) the clock jumps to 03:00 EDT: 02:30 does not exist.
     * Chosen behaviour (cronie's): run at the end of the gap, 03:00 EDT = 07:00Z. */
    assert_string_equal(next_of("30 2 * * *", "America/New_York", "2026-03-07T12:00:00Z"),
                        "2026-03-08T07:00:00.000Z");
    assert_string_equal(next_of("30 2 * * *", "America/New_York", "2026-03-08T07:00:00Z"),
                        "2026-03-09T06:30:00.000Z"); /* 02:30 EDT */
    /* The day before, 02:30 EST. */
    assert_string_equal(next_of("30 2 * * *", "America/New_York", "2026-03-06T12:00:00Z"),
                        "2026-03-07T07:30:00.000Z");
    /* Several times in the gap run once, at the jump; a real 03:00 coincides with it. */
    assert_string_equal(next_of("*/15 2 * * *", "America/New_York", "2026-03-08T06:59:00Z"),
                        "2026-03-08T07:00:00.000Z");
    assert_string_equal(next_of("*/15 2 * * *", "America/New_York", "2026-03-08T07:00:00Z"),
                        "2026-03-09T06:00:00.000Z");
    assert_string_equal(next_of("0 3 * * *", "America/New_York", "2026-03-08T05:00:00Z"),
                        "2026-03-08T07:00:00.000Z");
    /* Times around the gap are unaffected. */
    assert_string_equal(next_of("30 1 * * *", "America/New_York", "2026-03-08T05:00:00Z"),
                        "2026-03-08T06:30:00.000Z"); /* 01:30 EST */
    assert_string_equal(next_of("30 3 * * *", "America/New_York", "2026-03-08T05:00:00Z"),
                        "2026-03-08T07:30:00.000Z"); /* 03:30 EDT */
    /* Hourly across the jump: 01:00 EST, then 03:00 EDT (02:00 is the gap), 04:00 EDT. */
    assert_string_equal(next_of("0 * * * *", "America/New_York", "2026-03-08T06:00:00Z"),
                        "2026-03-08T07:00:00.000Z");
    assert_string_equal(next_of("0 * * * *", "America/New_York", "2026-03-08T07:00:00Z"),
                        "2026-03-08T08:00:00.000Z");

    /* cron_local_time_ms agrees. */
    z = cron_zone_open("America/New_York", err, sizeof(err));
    assert_non_null(z);
    assert_int_equal(cron_local_time_ms(z, "2026-03-08", 2, 30, &t, err, sizeof(err)), 0);
    assert_string_equal(iso(t), "2026-03-08T07:00:00.000Z");
    assert_int_equal(cron_local_time_ms(z, "2026-03-08", 1, 59, &t, err, sizeof(err)), 0);
    assert_string_equal(iso(t), "2026-03-08T06:59:00.000Z");
    cron_zone_close(z);
}

static void test_next_dst_new_york_fall_back(void **state)
{
    char err[256] = "";
    cron_zone_t *z;
    int64_t t = 0;

    (void)state;
    /* 2026-11-01 02:00 EDT (06:00Z) the clock goes back to 01:00 EST: 01:30 happens at 05:30Z
     * and at 06:30Z. It runs once, at the first. */
    assert_string_equal(next_of("30 1 * * *", "America/New_York", "2026-11-01T00:00:00Z"),
                        "2026-11-01T05:30:00.000Z");
    assert_string_equal(next_of("30 1 * * *", "America/New_York", "2026-11-01T05:30:00Z"),
                        "2026-11-02T06:30:00.000Z");
    /* Even from inside the repeated hour, before the second 01:30. */
    assert_string_equal(next_of("30 1 * * *", "America/New_York", "2026-11-01T06:10:00Z"),
                        "2026-11-02T06:30:00.000Z");
    /* 02:30 exists once, EST. */
    assert_string_equal(next_of("30 2 * * *", "America/New_York", "2026-11-01T00:00:00Z"),
                        "2026-11-01T07:30:00.000Z");
    /* Every half hour: the repeated hour does not run again. */
    assert_string_equal(next_of("*/30 * * * *", "America/New_York", "2026-11-01T05:00:00Z"),
                        "2026-11-01T05:30:00.000Z"); /* 01:30 EDT */
    assert_string_equal(next_of("*/30 * * * *", "America/New_York", "2026-11-01T05:30:00Z"),
                        "2026-11-01T07:00:00.000Z"); /* 02:00 EST */

    z = cron_zone_open("America/New_York", err, sizeof(err));
    assert_non_null(z);
    assert_int_equal(cron_local_time_ms(z, "2026-11-01", 1, 30, &t, err, sizeof(err)), 0);
    assert_string_equal(iso(t), "2026-11-01T05:30:00.000Z");
    assert_int_equal(cron_local_time_ms(z, "2026-11-01", 2, 0, &t, err, sizeof(err)), 0);
    assert_string_equal(iso(t), "2026-11-01T07:00:00.000Z");
    cron_zone_close(z);
}

static void test_next_dst_london(void **state)
{
    (void)state;
    /* 2026-03-29 01:00 GMT -> 02:00 BST: 01:30 runs at the jump, 01:00Z. */
    assert_string_equal(next_of("30 1 * * *", "Europe/London", "2026-03-28T12:00:00Z"),
                        "2026-03-29T01:00:00.000Z");
    assert_string_equal(next_of("30 1 * * *", "Europe/London", "2026-03-29T01:00:00Z"),
                        "2026-03-30T00:30:00.000Z");
    /* 2026-10-25 02:00 BST -> 01:00 GMT: 01:30 runs at its BST occurrence, 00:30Z. */
    assert_string_equal(next_of("30 1 * * *", "Europe/London", "2026-10-24T12:00:00Z"),
                        "2026-10-25T00:30:00.000Z");
    assert_string_equal(next_of("30 1 * * *", "Europe/London", "2026-10-25T00:30:00Z"),
                        "2026-10-26T01:30:00.000Z");
}

static void test_next_leap_day_and_no_match(void **state)
{
    char err[256] = "";
    cron_zone_t *z;
    cron_t c;
    int64_t next = 42;

    (void)state;
    assert_string_equal(next_of("0 0 29 2 *", "UTC", "2026-11-22T00:00:00Z"),
                        "2028-02-29T00:00:00.000Z");
    assert_string_equal(next_of("0 0 29 2 *", "Asia/Seoul", "2026-11-22T00:00:00Z"),
                        "2028-02-28T15:00:00.000Z");
    assert_string_equal(next_of("0 0 29 2 *", "UTC", "2028-02-29T00:00:00Z"),
                        "2032-02-29T00:00:00.000Z");
    /* 2100 is not a leap year: eight years between 2096 and 2104. */
    assert_string_equal(next_of("0 0 29 2 *", "UTC", "2097-01-01T00:00:00Z"),
                        "2104-02-29T00:00:00.000Z");

    z = cron_zone_open("Asia/Seoul", err, sizeof(err));
    assert_non_null(z);
    c = parse_ok("0 0 31 2 *");
    assert_int_equal(cron_next(&c, z, at("2026-11-22T00:00:00Z"), &next, err, sizeof(err)), -1);
    assert_string_equal(err, "no match within 400 years (is the day-of-month possible in the "
                             "months given?)");
    assert_int_equal(next, 42); /* untouched */
    c = parse_ok("0 0 30,31 2 *");
    assert_int_equal(cron_next(&c, z, at("2026-11-22T00:00:00Z"), &next, err, sizeof(err)), -1);
    /* ...but with a day-of-week as well, the OR rule makes it possible. */
    c = parse_ok("0 0 31 2 mon");
    assert_int_equal(cron_next(&c, z, at("2026-11-22T00:00:00Z"), &next, err, sizeof(err)), 0);
    assert_string_equal(iso(next), "2027-01-31T15:00:00.000Z"); /* Mon 2027-02-01 KST */

    /* Out-of-range instants and NULL arguments. */
    c = parse_ok("0 0 * * *");
    assert_int_equal(cron_next(&c, z, -1, &next, err, sizeof(err)), -1);
    assert_string_equal(err, "cron_next: instant -1 is outside 1970..9999");
    assert_int_equal(cron_next(&c, z, CRON_MAX_MS + 1, &next, err, sizeof(err)), -1);
    assert_int_equal(cron_next(&c, z, CRON_MAX_MS, &next, err, sizeof(err)), 0);
    assert_string_equal(iso(next), "10000-01-01T15:00:00.000Z"); /* 00:00 KST, 2 Jan */
    assert_int_equal(cron_next(NULL, z, 0, &next, err, sizeof(err)), -1);
    assert_int_equal(cron_next(&c, NULL, 0, &next, err, sizeof(err)), -1);
    assert_int_equal(cron_next(&c, z, 0, NULL, err, sizeof(err)), -1);
    cron_zone_close(z);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_parse_default),
        cmocka_unit_test(test_parse_lists_ranges_steps_names),
        cmocka_unit_test(test_parse_errors),
        cmocka_unit_test(test_next_default_seoul),
        cmocka_unit_test(test_next_steps_ranges_lists_names),
        cmocka_unit_test(test_next_dom_dow_rule),
        cmocka_unit_test(test_next_dst_new_york_spring_forward),
        cmocka_unit_test(test_next_dst_new_york_fall_back),
        cmocka_unit_test(test_next_dst_london),
        cmocka_unit_test(test_next_leap_day_and_no_match),
    };

    return cmocka_run_group_tests(tests, set_machine_tz, NULL);
}
