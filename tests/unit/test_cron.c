/* Unit tests for libcommon/cron.c: parsing, next run in real zones (DST gaps and overlaps,
 * leap days), local dates and times, deadlines, TZ restoration and concurrent use. */
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <cmocka.h>

#include "cron.h"
#include "util.h"

/* The results below must not depend on the machine's zone: run everything with TZ set to a
 * zone none of the tests use, and check at the end that it is still in force. */
#define MACHINE_TZ "UTC+3" /* POSIX TZ: 3 hours west of UTC */

/* Milliseconds since the epoch of "YYYY-MM-DDTHH:MM:SS[.mmm]Z". */
static int64_t at(const char *iso)
{
    struct tm tm;
    int y, mo, d, h, mi, s, ms = 0, n;
    char z = 0;

    n = sscanf(iso, "%4d-%2d-%2dT%2d:%2d:%2d.%3d%c", &y, &mo, &d, &h, &mi, &s, &ms, &z);
    if (n != 8) {
        ms = 0;
        n = sscanf(iso, "%4d-%2d-%2dT%2d:%2d:%2d%c", &y, &mo, &d, &h, &mi, &s, &z);
        assert_int_equal(n, 7);
    }
    assert_int_equal(z, 'Z');
    memset(&tm, 0, sizeof(tm));
    tm.tm_year = y - 1900;
    tm.tm_mon = mo - 1;
    tm.tm_mday = d;
    tm.tm_hour = h;
    tm.tm_min = mi;
    tm.tm_sec = s;
    return (int64_t)timegm(&tm) * 1000 + ms;
}

/* Formats ms as RFC 3339 UTC; each call uses the next of a few static buffers. */
static const char *iso(int64_t ms)
{
    static char bufs[4][32];
    static int next;
    char *b = bufs[next++ % 4];

    assert_int_equal(util_rfc3339(ms, b, sizeof(bufs[0])), 0);
    return b;
}

static cron_t parse_ok(const char *expr)
{
    char err[256] = "";
    cron_t c;

    if (cron_parse(expr, &c, err, sizeof(err)) != 0)
        fail_msg("cron_parse('%s'): %s", expr, err);
    return c;
}

/* The next run of expr in zone after the instant after_iso, as RFC 3339 UTC. */
static const char *next_of(const char *expr, const char *zone, const char *after_iso)
{
    char err[256] = "";
    cron_t c = parse_ok(expr);
    cron_zone_t *z = cron_zone_open(zone, err, sizeof(err));
    int64_t next = -1;
    int rc;

    if (z == NULL)
        fail_msg("cron_zone_open('%s'): %s", zone, err);
    rc = cron_next(&c, z, at(after_iso), &next, err, sizeof(err));
    cron_zone_close(z);
    if (rc != 0)
        fail_msg("cron_next('%s', %s, %s): %s", expr, zone, after_iso, err);
    return iso(next);
}

static int set_machine_tz(void **state)
{
    (void)state;
    assert_int_equal(setenv("TZ", MACHINE_TZ, 1), 0);
    tzset();
    return 0;
}

/* ------------------------------------------------------------------------------------ */

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

static void test_zone_open_errors(void **state)
{
    static const struct {
        const char *name;
        const char *err;
    } cases[] = {
        { "Mars/Olympus", "unknown time zone 'Mars/Olympus' (no /usr/share/zoneinfo/"
                          "Mars/Olympus; is tzdata installed?)" },
        { "", "time zone name is empty" },
        { "../../etc/passwd", "time zone name '../../etc/passwd' is not an IANA zone name "
                              "(such as Asia/Seoul)" },
        { "Asia/../../../etc/passwd", "time zone name 'Asia/../../../etc/passwd' is not an "
                                      "IANA zone name (such as Asia/Seoul)" },
        { "/etc/localtime", "time zone name '/etc/localtime' is not an IANA zone name (such as "
                            "Asia/Seoul)" },
        { "Asia//Seoul", "time zone name 'Asia//Seoul' is not an IANA zone name (such as "
                         "Asia/Seoul)" },
        { "Asia/Seoul/", "time zone name 'Asia/Seoul/' is not an IANA zone name (such as "
                         "Asia/Seoul)" },
        { "./UTC", "time zone name './UTC' is not an IANA zone name (such as Asia/Seoul)" },
        { "Asia/Seoul ", "time zone name 'Asia/Seoul ' has a bad character (allowed: letters, "
                         "digits and ._+-/)" },
        { "KST-9", "unknown time zone 'KST-9' (no /usr/share/zoneinfo/KST-9; is tzdata "
                   "installed?)" },
        { "right/UTC", "time zone 'right/UTC' counts leap seconds: use 'UTC'" },
        { "America", "time zone 'America': /usr/share/zoneinfo/America is not a zone file" },
        { "zone.tab", "time zone 'zone.tab': /usr/share/zoneinfo/zone.tab is not a zone "
                      "file" },
        { "Asia/Seoul/x", "unknown time zone 'Asia/Seoul/x' (no /usr/share/zoneinfo/Asia/"
                          "Seoul/x; is tzdata installed?)" },
    };
    char err[256];
    cron_zone_t *z;
    size_t i;

    (void)state;
    for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        err[0] = '\0';
        z = cron_zone_open(cases[i].name, err, sizeof(err));
        if (z != NULL) {
            cron_zone_close(z);
            fail_msg("zone '%s' was accepted", cases[i].name);
        }
        assert_string_equal(err, cases[i].err);
    }
    assert_null(cron_zone_open(NULL, err, sizeof(err)));
    assert_null(cron_zone_open("Nowhere/Else", NULL, 0));

    z = cron_zone_open("Etc/GMT+5", err, sizeof(err));
    assert_non_null(z);
    assert_string_equal(cron_zone_name(z), "Etc/GMT+5");
    cron_zone_close(z);
    cron_zone_close(NULL);
}

static void test_local_date(void **state)
{
    char err[256] = "", date[11];
    cron_zone_t *seoul = cron_zone_open("Asia/Seoul", err, sizeof(err));
    cron_zone_t *utc = cron_zone_open("UTC", err, sizeof(err));
    cron_zone_t *ny = cron_zone_open("America/New_York", err, sizeof(err));

    (void)state;
    assert_non_null(seoul);
    assert_non_null(utc);
    assert_non_null(ny);
    /* Seoul's midnight is 15:00Z the day before. */
    assert_int_equal(cron_local_date(seoul, at("2026-11-21T14:59:59.999Z"), date), 0);
    assert_string_equal(date, "2026-11-21");
    assert_int_equal(cron_local_date(seoul, at("2026-11-21T15:00:00Z"), date), 0);
    assert_string_equal(date, "2026-11-22");
    assert_int_equal(cron_local_date(utc, at("2026-11-21T15:00:00Z"), date), 0);
    assert_string_equal(date, "2026-11-21");
    assert_int_equal(cron_local_date(utc, at("2026-11-21T23:59:59.999Z"), date), 0);
    assert_string_equal(date, "2026-11-21");
    assert_int_equal(cron_local_date(utc, at("2026-11-22T00:00:00Z"), date), 0);
    assert_string_equal(date, "2026-11-22");
    assert_int_equal(cron_local_date(ny, at("2026-11-22T04:59:59Z"), date), 0);
    assert_string_equal(date, "2026-11-21");
    assert_int_equal(cron_local_date(ny, at("2026-11-22T05:00:00Z"), date), 0);
    assert_string_equal(date, "2026-11-22");
    assert_int_equal(cron_local_date(utc, 0, date), 0);
    assert_string_equal(date, "1970-01-01");

    assert_int_equal(cron_local_date(utc, -1, date), -1);
    assert_string_equal(date, "");
    assert_int_equal(cron_local_date(NULL, 0, date), -1);
    assert_int_equal(cron_local_date(utc, 0, NULL), -1);
    cron_zone_close(seoul);
    cron_zone_close(utc);
    cron_zone_close(ny);
}

static void test_local_time_ms(void **state)
{
    char err[256] = "";
    cron_zone_t *z = cron_zone_open("Asia/Seoul", err, sizeof(err));
    int64_t t = 7;

    (void)state;
    assert_non_null(z);
    assert_int_equal(cron_local_time_ms(z, "2026-11-22", 11, 0, &t, err, sizeof(err)), 0);
    assert_string_equal(iso(t), "2026-11-22T02:00:00.000Z");
    assert_int_equal(cron_local_time_ms(z, "2026-11-22", 0, 0, &t, err, sizeof(err)), 0);
    assert_string_equal(iso(t), "2026-11-21T15:00:00.000Z");
    assert_int_equal(cron_local_time_ms(z, "2028-02-29", 23, 59, &t, err, sizeof(err)), 0);
    assert_string_equal(iso(t), "2028-02-29T14:59:00.000Z");

    t = 7;
    assert_int_equal(cron_local_time_ms(z, "2026-02-29", 11, 0, &t, err, sizeof(err)), -1);
    assert_string_equal(err, "'2026-02-29' is not a date YYYY-MM-DD (1970..9999)");
    assert_int_equal(cron_local_time_ms(z, "2026-13-01", 11, 0, &t, err, sizeof(err)), -1);
    assert_int_equal(cron_local_time_ms(z, "2026-1-01", 11, 0, &t, err, sizeof(err)), -1);
    assert_int_equal(cron_local_time_ms(z, "2026-11-22x", 11, 0, &t, err, sizeof(err)), -1);
    assert_int_equal(cron_local_time_ms(z, "1969-12-31", 11, 0, &t, err, sizeof(err)), -1);
    assert_int_equal(cron_local_time_ms(z, "2026-11-22", 24, 0, &t, err, sizeof(err)), -1);
    assert_string_equal(err, "24:0 is not a time of day (00:00..23:59)");
    assert_int_equal(cron_local_time_ms(z, "2026-11-22", 11, 60, &t, err, sizeof(err)), -1);
    assert_int_equal(cron_local_time_ms(z, "2026-11-22", -1, 0, &t, err, sizeof(err)), -1);
    assert_int_equal(cron_local_time_ms(z, NULL, 11, 0, &t, err, sizeof(err)), -1);
    assert_int_equal(t, 7);
    cron_zone_close(z);
}

static void test_parse_deadline(void **state)
{
    static const struct {
        const char *text;
        const char *err;
    } bad[] = {
        { "24:00", "deadline '24:00' is not a time of day (00:00..23:59)" },
        { "11:60", "deadline '11:60' is not a time of day (00:00..23:59)" },
        { "11:0", "deadline '11:0' is not a time HH:MM or a duration (80m, 5s, 2h)" },
        { "111:00", "deadline '111:00' is not a time HH:MM or a duration (80m, 5s, 2h)" },
        { ":30", "deadline ':30' is not a time HH:MM or a duration (80m, 5s, 2h)" },
        { "11:00 ", "deadline '11:00 ' is not a time HH:MM or a duration (80m, 5s, 2h)" },
        { "1a:00", "deadline '1a:00' is not a time HH:MM or a duration (80m, 5s, 2h)" },
        { "0s", "deadline '0s' must be greater than 0" },
        { "-5m", "deadline: '-5m' is negative, nor a time HH:MM" },
        { "80x", "deadline: '80x' has an unknown unit 'x' (use ms, s, m or h), nor a time "
                 "HH:MM" },
        { "", "deadline: empty duration, nor a time HH:MM" },
    };
    char err[256];
    cron_deadline_t d, before;
    size_t i;

    (void)state;
    assert_int_equal(cron_parse_deadline("11:00", &d, err, sizeof(err)), 0);
    assert_int_equal(d.kind, CRON_DEADLINE_CLOCK);
    assert_int_equal(d.hour, 11);
    assert_int_equal(d.minute, 0);
    assert_int_equal(cron_parse_deadline("9:05", &d, err, sizeof(err)), 0);
    assert_int_equal(d.kind, CRON_DEADLINE_CLOCK);
    assert_int_equal(d.hour, 9);
    assert_int_equal(d.minute, 5);
    assert_int_equal(cron_parse_deadline("23:59", &d, err, sizeof(err)), 0);
    assert_int_equal(d.hour, 23);
    assert_int_equal(d.minute, 59);
    assert_int_equal(cron_parse_deadline("80m", &d, err, sizeof(err)), 0);
    assert_int_equal(d.kind, CRON_DEADLINE_AFTER);
    assert_int_equal(d.after_ms, 80 * 60 * 1000);
    assert_int_equal(cron_parse_deadline("5s", &d, err, sizeof(err)), 0);
    assert_int_equal(d.kind, CRON_DEADLINE_AFTER);
    assert_int_equal(d.after_ms, 5000);
    assert_int_equal(cron_parse_deadline("500ms", &d, err, sizeof(err)), 0);
    assert_int_equal(d.after_ms, 500);
    assert_int_equal(cron_parse_deadline("2h", &d, err, sizeof(err)), 0);
    assert_int_equal(d.after_ms, 2 * 3600 * 1000);

    for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        memset(&d, 0x5A, sizeof(d));
        before = d;
        err[0] = '\0';
        if (cron_parse_deadline(bad[i].text, &d, err, sizeof(err)) != -1)
            fail_msg("deadline '%s' was accepted", bad[i].text);
        assert_string_equal(err, bad[i].err);
        assert_memory_equal(&d, &before, sizeof(d));
    }
    assert_int_equal(cron_parse_deadline(NULL, &d, err, sizeof(err)), -1);
}

static void test_deadline_at(void **state)
{
    char err[256] = "";
    cron_zone_t *seoul = cron_zone_open("Asia/Seoul", err, sizeof(err));
    cron_zone_t *ny = cron_zone_open("America/New_York", err, sizeof(err));
    cron_deadline_t d;
    int64_t run = 0, dl = 0;
    cron_t c = parse_ok("40 9 * * *");

    (void)state;
    assert_non_null(seoul);
    assert_non_null(ny);
    /* The defaults: run at 09:40 KST, retry until 11:00 KST the same day. */
    assert_int_equal(cron_next(&c, seoul, at("2026-11-22T00:00:00Z"), &run, err, sizeof(err)),
                     0);
    assert_int_equal(cron_parse_deadline("11:00", &d, err, sizeof(err)), 0);
    assert_int_equal(cron_deadline_at(&d, seoul, run, &dl, err, sizeof(err)), 0);
    assert_string_equal(iso(dl), "2026-11-22T02:00:00.000Z");
    assert_int_equal(cron_parse_deadline("80m", &d, err, sizeof(err)), 0);
    assert_int_equal(cron_deadline_at(&d, seoul, run, &dl, err, sizeof(err)), 0);
    assert_string_equal(iso(dl), "2026-11-22T02:00:00.000Z");
    assert_int_equal(cron_parse_deadline("5s", &d, err, sizeof(err)), 0);
    assert_int_equal(cron_deadline_at(&d, seoul, run, &dl, err, sizeof(err)), 0);
    assert_string_equal(iso(dl), "2026-11-22T00:40:05.000Z");
    /* A duration is plain arithmetic and needs no zone. */
    assert_int_equal(cron_deadline_at(&d, NULL, run, &dl, err, sizeof(err)), 0);
    assert_string_equal(iso(dl), "2026-11-22T00:40:05.000Z");

    /* A run whose local day differs from its UTC day: 00:30 KST on the 23rd. */
    assert_int_equal(cron_parse_deadline("11:00", &d, err, sizeof(err)), 0);
    assert_int_equal(cron_deadline_at(&d, seoul, at("2026-11-22T15:30:00Z"), &dl, err,
                                      sizeof(err)), 0);
    assert_string_equal(iso(dl), "2026-11-23T02:00:00.000Z");

    /* A clock deadline not after the run is an error. */
    dl = 9;
    assert_int_equal(cron_deadline_at(&d, seoul, at("2026-11-22T02:40:00Z"), &dl, err,
                                      sizeof(err)), -1);
    assert_string_equal(err, "deadline 11:00 is not after the run at 2026-11-22 11:40 "
                             "Asia/Seoul");
    assert_int_equal(cron_deadline_at(&d, seoul, at("2026-11-22T02:00:00Z"), &dl, err,
                                      sizeof(err)), -1);
    assert_string_equal(err, "deadline 11:00 is not after the run at 2026-11-22 11:00 "
                             "Asia/Seoul");
    assert_int_equal(dl, 9);

    /* On a DST day the deadline follows the local clock: 03:00 EDT on 2026-03-08 is 07:00Z,
     * and 02:30 (in the gap) becomes the same instant. */
    assert_int_equal(cron_parse_deadline("03:00", &d, err, sizeof(err)), 0);
    assert_int_equal(cron_deadline_at(&d, ny, at("2026-03-08T06:00:00Z"), &dl, err,
                                      sizeof(err)), 0);
    assert_string_equal(iso(dl), "2026-03-08T07:00:00.000Z");
    assert_int_equal(cron_parse_deadline("02:30", &d, err, sizeof(err)), 0);
    assert_int_equal(cron_deadline_at(&d, ny, at("2026-03-08T06:00:00Z"), &dl, err,
                                      sizeof(err)), 0);
    assert_string_equal(iso(dl), "2026-03-08T07:00:00.000Z");

    /* Bad arguments. */
    assert_int_equal(cron_deadline_at(&d, NULL, run, &dl, err, sizeof(err)), -1);
    assert_int_equal(cron_deadline_at(NULL, seoul, run, &dl, err, sizeof(err)), -1);
    assert_int_equal(cron_deadline_at(&d, seoul, -5, &dl, err, sizeof(err)), -1);
    d.kind = CRON_DEADLINE_AFTER;
    d.after_ms = INT64_MAX;
    assert_int_equal(cron_deadline_at(&d, seoul, run, &dl, err, sizeof(err)), -1);
    cron_zone_close(seoul);
    cron_zone_close(ny);
}

static void test_tz_restored(void **state)
{
    char err[256] = "", date[11];
    cron_zone_t *z = cron_zone_open("Asia/Seoul", err, sizeof(err));
    cron_t c = parse_ok("40 9 * * *");
    int64_t next = 0;
    time_t t = 1000000000;
    struct tm tm;

    (void)state;
    assert_non_null(z);
    /* Set: the same value afterwards, and localtime() still uses it. */
    assert_int_equal(cron_next(&c, z, at("2026-11-22T00:00:00Z"), &next, err, sizeof(err)), 0);
    assert_int_equal(cron_local_date(z, next, date), 0);
    assert_non_null(getenv("TZ"));
    assert_string_equal(getenv("TZ"), MACHINE_TZ);
    assert_non_null(localtime_r(&t, &tm));
    assert_int_equal(tm.tm_gmtoff, -3 * 3600);

    /* Unset: unset afterwards. */
    assert_int_equal(unsetenv("TZ"), 0);
    assert_int_equal(cron_next(&c, z, at("2026-11-22T00:00:00Z"), &next, err, sizeof(err)), 0);
    assert_string_equal(iso(next), "2026-11-22T00:40:00.000Z");
    assert_null(getenv("TZ"));

    assert_int_equal(setenv("TZ", MACHINE_TZ, 1), 0);
    tzset();
    cron_zone_close(z);
}

/* Threads converting in different zones at once each get their own zone's answer. */
struct worker {
    const char *zone;
    const char *expr;
    int64_t after;
    int64_t expect;
    int failures;
};

static void *worker_run(void *arg)
{
    struct worker *w = arg;
    char err[256], date[11];
    cron_zone_t *z = cron_zone_open(w->zone, err, sizeof(err));
    cron_t c;
    int64_t next;
    int i;

    if (z == NULL || cron_parse(w->expr, &c, err, sizeof(err)) != 0) {
        w->failures++;
        cron_zone_close(z);
        return NULL;
    }
    for (i = 0; i < 300; i++) {
        next = 0;
        if (cron_next(&c, z, w->after, &next, err, sizeof(err)) != 0 || next != w->expect)
            w->failures++;
        if (cron_local_date(z, w->expect, date) != 0 || strcmp(date, "2026-11-22") != 0)
            w->failures++;
    }
    cron_zone_close(z);
    return NULL;
}

static void test_concurrent_zones(void **state)
{
    struct worker w[4] = {
        { "Asia/Seoul", "40 9 * * *", 0, 0, 0 },
        { "America/New_York", "40 9 * * *", 0, 0, 0 },
        { "Europe/London", "40 9 * * *", 0, 0, 0 },
        { "Pacific/Auckland", "40 9 * * *", 0, 0, 0 },
    };
    const char *expect[4] = {
        "2026-11-22T00:40:00.000Z", "2026-11-22T14:40:00.000Z",
        "2026-11-22T09:40:00.000Z", "2026-11-21T20:40:00.000Z",
    };
    const char *after[4] = {
        "2026-11-21T16:00:00Z", "2026-11-22T06:00:00Z",
        "2026-11-22T01:00:00Z", "2026-11-21T12:00:00Z",
    };
    pthread_t th[4];
    int i;

    (void)state;
    for (i = 0; i < 4; i++) {
        w[i].after = at(after[i]);
        w[i].expect = at(expect[i]);
    }
    for (i = 0; i < 4; i++)
        assert_int_equal(pthread_create(&th[i], NULL, worker_run, &w[i]), 0);
    for (i = 0; i < 4; i++)
        assert_int_equal(pthread_join(th[i], NULL), 0);
    for (i = 0; i < 4; i++)
        assert_int_equal(w[i].failures, 0);
    assert_string_equal(getenv("TZ"), MACHINE_TZ);
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
        cmocka_unit_test(test_zone_open_errors),
        cmocka_unit_test(test_local_date),
        cmocka_unit_test(test_local_time_ms),
        cmocka_unit_test(test_parse_deadline),
        cmocka_unit_test(test_deadline_at),
        cmocka_unit_test(test_tz_restored),
        cmocka_unit_test(test_concurrent_zones),
    };

    return cmocka_run_group_tests(tests, set_machine_tz, NULL);
}
