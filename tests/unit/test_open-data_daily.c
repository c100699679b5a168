/* Unit tests for tools/open-data/daily.c: mode names, dates, "today" in a time zone or
 * pinned, time zone names, and the /daily document in every mode. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <cmocka.h>

#include "log.h"
#include "open_data.h"

static const struct od_figures base = { 10423, 6973, 3246, 204 };

/* 2024-03-01T15:30:00Z: already 2024-03-02 in Seoul, still 2024-03-01 in UTC. */
#define T_2024_03_01_1530Z ((time_t)1709307000)

static void use_tz(const char *tz)
{
    assert_int_equal(setenv("TZ", tz, 1), 0);
    tzset();
}

static void test_kind_names(void **state)
{
    static const char *const names[] = {
        "ok", "not_published", "wrong_date", "all_zero", "invalid", "down", "decreasing",
        "refused"
    };
    enum od_kind k;
    size_t i;

    (void)state;
    assert_int_equal(sizeof(names) / sizeof(names[0]), OD_NKINDS);
    for (i = 0; i < OD_NKINDS; i++) {
        assert_int_equal(od_kind_parse(names[i], &k), 0);
        assert_int_equal(k, (enum od_kind)i);
        assert_string_equal(od_kind_name(k), names[i]);
    }
    k = OD_DOWN;
    assert_int_equal(od_kind_parse("OK", &k), -1);
    assert_int_equal(od_kind_parse("", &k), -1);
    assert_int_equal(od_kind_parse("ok ", &k), -1);
    assert_int_equal(od_kind_parse(NULL, &k), -1);
    assert_int_equal(k, OD_DOWN); /* untouched */
    assert_string_equal(od_kind_name((enum od_kind)99), "unknown");
}

static void test_date_valid(void **state)
{
    static const char *const good[] = {
        "2024-03-01", "2024-02-29", "2000-02-29", "1999-12-31", "9999-12-31", "1900-01-01",
    };
    static const char *const bad[] = {
        "", "2024-3-01", "2024-03-1", "2024/03/01", "2024-03-01 ", " 2024-03-01",
        "2024-03-01T00", "2023-02-29", "1900-02-29", "2024-00-10", "2024-13-01",
        "2024-04-31", "2024-01-00", "2024-01-32", "0000-01-01", "1899-12-31", "２024-01-01",
        "2024-0a-01", "+024-01-01",
    };
    size_t i;

    (void)state;
    for (i = 0; i < sizeof(good) / sizeof(good[0]); i++) {
        if (!od_date_valid(good[i]))
            fail_msg("refused: %s", good[i]);
    }
    for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        if (od_date_valid(bad[i]))
            fail_msg("accepted: %s", bad[i]);
    }
    assert_false(od_date_valid(NULL));
}

static void expect_add(const char *from, int days, const char *want)
{
    char out[OD_DATE_LEN + 1] = "";

    if (od_date_add_days(from, days, out, sizeof(out)) != 0)
        fail_msg("%s %+d: failed", from, days);
    if (strcmp(out, want) != 0)
        fail_msg("%s %+d: got %s, want %s", from, days, out, want);
}

static void test_date_add_days(void **state)
{
    char out[OD_DATE_LEN + 1];

    (void)state;
    expect_add("2024-03-01", -1, "2024-02-29");    /* leap year */
    expect_add("2023-03-01", -1, "2023-02-28");
    expect_add("2100-03-01", -1, "2100-02-28");    /* not a leap year */
    expect_add("2000-03-01", -1, "2000-02-29");    /* a leap year */
    expect_add("2025-01-01", -1, "2024-12-31");
    expect_add("2025-01-05", -10, "2024-12-26");   /* "wrong_date" over a new year */
    expect_add("2024-03-10", -10, "2024-02-29");
    expect_add("2024-12-31", 1, "2025-01-01");
    expect_add("2024-06-15", 0, "2024-06-15");
    expect_add("1970-01-01", -1, "1969-12-31");
    expect_add("2024-01-01", 366, "2025-01-01");
    assert_int_equal(od_date_add_days("2024-02-30", -1, out, sizeof(out)), -1);
    assert_int_equal(od_date_add_days("1900-01-01", -1, out, sizeof(out)), -1);
    assert_int_equal(od_date_add_days("9999-12-31", 1, out, sizeof(out)), -1);
    assert_int_equal(od_date_add_days("2024-01-01", 1, out, OD_DATE_LEN), -1); /* too small */
}

static void test_today(void **state)
{
    char out[OD_DATE_LEN + 1];

    (void)state;
    /* pinned wins over the clock and the zone */
    assert_int_equal(od_today("2024-02-29", T_2024_03_01_1530Z, out, sizeof(out)), 0);
    assert_string_equal(out, "2024-02-29");
    assert_int_equal(od_today("2024-02-30", T_2024_03_01_1530Z, out, sizeof(out)), -1);

    use_tz("KST-9");
    assert_int_equal(od_today(NULL, T_2024_03_01_1530Z, out, sizeof(out)), 0);
    assert_string_equal(out, "2024-03-02");
    assert_int_equal(od_today("", T_2024_03_01_1530Z - 1800, out, sizeof(out)), 0);
    assert_string_equal(out, "2024-03-02");        /* 00:00 in Seoul */
    assert_int_equal(od_today("", T_2024_03_01_1530Z - 1801, out, sizeof(out)), 0);
    assert_string_equal(out, "2024-03-01");        /* 23:59:59 the day before */

    use_tz("UTC0");
    assert_int_equal(od_today(NULL, T_2024_03_01_1530Z, out, sizeof(out)), 0);
    assert_string_equal(out, "2024-03-01");

    use_tz("<-11>11");                             /* UTC-11 */
    assert_int_equal(od_today(NULL, T_2024_03_01_1530Z, out, sizeof(out)), 0);
    assert_string_equal(out, "2024-03-01");
    assert_int_equal(od_today(NULL, T_2024_03_01_1530Z - 16 * 3600, out, sizeof(out)), 0);
    assert_string_equal(out, "2024-02-29");
    assert_int_equal(od_today(NULL, T_2024_03_01_1530Z, out, OD_DATE_LEN), -1);
}

static void test_tz_resolve(void **state)
{
    static const char *const posix_ok[] = { "KST-9", "UTC0", "<+09>-9", "<-0330>3:30",
                                            "ABC+12:00:00" };
    static const char *const bad[] = { "Mars/Base", "../etc/passwd", "/etc/localtime",
                                       "Asia//Seoul", "Asia/", "zone.tab", "KST", "KS-9",
                                       "KST-25", "KST-9KDT", "UTC 0", "" };
    char out[OD_TZ_MAX + 1], err[512];
    char long_name[OD_TZ_MAX + 2];
    size_t i;

    (void)state;
    /* without tzdata: fixed offsets, and the aliases */
    for (i = 0; i < sizeof(posix_ok) / sizeof(posix_ok[0]); i++) {
        if (od_tz_resolve(posix_ok[i], "/nonexistent", out, sizeof(out), err,
                          sizeof(err)) != 0)
            fail_msg("refused %s: %s", posix_ok[i], err);
        assert_string_equal(out, posix_ok[i]);
    }
    assert_int_equal(od_tz_resolve("Asia/Seoul", "/nonexistent", out, sizeof(out), err,
                                   sizeof(err)), 0);
    assert_string_equal(out, "KST-9");
    assert_int_equal(od_tz_resolve("Etc/UTC", "/nonexistent", out, sizeof(out), err,
                                   sizeof(err)), 0);
    assert_string_equal(out, "UTC0");
    for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        err[0] = '\0';
        if (od_tz_resolve(bad[i], "/usr/share/zoneinfo", out, sizeof(out), err,
                          sizeof(err)) == 0)
            fail_msg("accepted: '%s' as '%s'", bad[i], out);
        assert_true(err[0] != '\0');
    }
    assert_int_equal(od_tz_resolve(NULL, "/nonexistent", out, sizeof(out), err,
                                   sizeof(err)), -1);
    memset(long_name, 'A', sizeof(long_name) - 1);
    long_name[sizeof(long_name) - 1] = '\0';
    assert_int_equal(od_tz_resolve(long_name, "/nonexistent", out, sizeof(out), err,
                                   sizeof(err)), -1);
    assert_non_null(strstr(err, "1 to 64 characters"));
    assert_int_equal(od_tz_resolve("Mars/Base", "/nonexistent", out, sizeof(out), err,
                                   sizeof(err)), -1);
    assert_non_null(strstr(err, "'Mars/Base' is not a time zone"));

    /* with tzdata (Debian's tzdata package; skipped where it is missing) */
    if (od_tz_resolve("Europe/Paris", "/usr/share/zoneinfo", out, sizeof(out), err,
                      sizeof(err)) == 0) {
        assert_string_equal(out, "Europe/Paris");
        assert_int_equal(od_tz_resolve("Asia/Seoul", "/usr/share/zoneinfo", out, sizeof(out),
                                       err, sizeof(err)), 0);
        assert_string_equal(out, "Asia/Seoul");
        use_tz(out);
        assert_int_equal(od_today(NULL, T_2024_03_01_1530Z, out, sizeof(out)), 0);
        assert_string_equal(out, "2024-03-02");
    } else {
        print_message("tzdata missing: zone-file checks skipped\n");
    }
}

/* The document for kind, with today 2024-03-02 and the base figures. */
static json_t *doc(enum od_kind kind, const char *date, uint64_t invalid_seq)
{
    struct od_answer a;

    memset(&a, 0, sizeof(a));
    a.served = kind;
    a.status = 200;
    snprintf(a.date, sizeof(a.date), "%s", date);
    a.figures = base;
    a.invalid_seq = invalid_seq;
    return od_daily_json(&a);
}

static json_int_t field(json_t *o, const char *key)
{
    json_t *v = json_object_get(o, key);

    if (!json_is_integer(v))
        fail_msg("field %s is not an integer", key);
    return json_integer_value(v);
}

static void test_daily_json(void **state)
{
    json_t *o;
    struct od_answer a;

    (void)state;
    o = doc(OD_OK, "2024-03-02", 0);
    assert_non_null(o);
    assert_int_equal(json_object_size(o), 5);
    assert_string_equal(json_string_value(json_object_get(o, "date")), "2024-03-02");
    assert_int_equal(field(o, "confirmed"), 10423);
    assert_int_equal(field(o, "recovered"), 6973);
    assert_int_equal(field(o, "in_treatment"), 3246);
    assert_int_equal(field(o, "deaths"), 204);
    json_decref(o);

    o = doc(OD_ALL_ZERO, "2024-03-02", 0);
    assert_int_equal(field(o, "confirmed") + field(o, "recovered") +
                     field(o, "in_treatment") + field(o, "deaths"), 0);
    json_decref(o);

    o = doc(OD_DECREASING, "2024-03-02", 0);
    assert_int_equal(field(o, "confirmed"), 10423 - OD_DECREASE);
    assert_int_equal(field(o, "deaths"), 204);
    json_decref(o);

    /* invalid: missing, negative, a string, a fraction, then again from the start */
    o = doc(OD_INVALID, "2024-03-02", 0);
    assert_null(json_object_get(o, "deaths"));
    assert_int_equal(field(o, "confirmed"), 10423);
    json_decref(o);
    o = doc(OD_INVALID, "2024-03-02", 1);
    assert_true(field(o, "recovered") < 0);
    json_decref(o);
    o = doc(OD_INVALID, "2024-03-02", 2);
    assert_true(json_is_string(json_object_get(o, "in_treatment")));
    json_decref(o);
    o = doc(OD_INVALID, "2024-03-02", 3);
    assert_true(json_is_real(json_object_get(o, "confirmed")));
    json_decref(o);
    o = doc(OD_INVALID, "2024-03-02", 4);
    assert_null(json_object_get(o, "deaths"));
    json_decref(o);

    memset(&a, 0, sizeof(a));
    a.served = OD_DOWN;
    assert_null(od_daily_json(&a));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_kind_names),
        cmocka_unit_test(test_date_valid),
        cmocka_unit_test(test_date_add_days),
        cmocka_unit_test(test_today),
        cmocka_unit_test(test_tz_resolve),
        cmocka_unit_test(test_daily_json),
    };

    log_init("test_open_data");
    return cmocka_run_group_tests(tests, NULL, NULL);
}
