/* Unit tests for libcommon/cron.c: zones, local dates and times, deadlines, and no TZ
 * switching (helpers in tests/unit/cron_fixture.h). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "cron_fixture.h"

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
