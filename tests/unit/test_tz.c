/* Unit tests for libcommon/tz.c: zones read from TZif files, their transitions, the POSIX
 * footer rule past the last transition, the DST rules of tz_local_to_utc, bad zone names,
 * missing and malformed files, and agreement with the C library's own reading. */
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

#include "tz.h"
#include "util.h"

/* Seconds since the epoch of "YYYY-MM-DDTHH:MM:SSZ" (timegm: no zone involved). */
static int64_t at(const char *iso)
{
    struct tm tm;
    int y, mo, d, h, mi, s;
    char z = 0;

    assert_int_equal(sscanf(iso, "%d-%2d-%2dT%2d:%2d:%2d%c", &y, &mo, &d, &h, &mi, &s, &z), 7);
    assert_int_equal(z, 'Z');
    memset(&tm, 0, sizeof(tm));
    tm.tm_year = y - 1900;
    tm.tm_mon = mo - 1;
    tm.tm_mday = d;
    tm.tm_hour = h;
    tm.tm_min = mi;
    tm.tm_sec = s;
    return (int64_t)timegm(&tm);
}

static tz_zone_t *open_ok(const char *name)
{
    char err[256] = "";
    tz_zone_t *z = tz_zone_open(name, err, sizeof(err));

    if (z == NULL)
        fail_msg("tz_zone_open('%s'): %s", name, err);
    return z;
}

/* The local time of instant iso in z as "YYYY-MM-DD HH:MM:SS +offset dst". */
static const char *local_of(const tz_zone_t *z, const char *iso)
{
    static char bufs[4][64];
    static int next;
    char *b = bufs[next++ % 4];
    tz_time_t lt;

    assert_int_equal(tz_utc_to_local(z, at(iso), &lt), 0);
    snprintf(b, sizeof(bufs[0]), "%04d-%02d-%02d %02d:%02d:%02d %+d%s", lt.year, lt.month,
             lt.day, lt.hour, lt.minute, lt.second, lt.utoff, lt.isdst ? " dst" : "");
    return b;
}

/* The instant of local time y-m-d h:mi in z, as seconds since the epoch. */
static int64_t instant_of(const tz_zone_t *z, int y, int m, int d, int h, int mi)
{
    tz_time_t lt;
    int64_t t = -1;

    memset(&lt, 0, sizeof(lt));
    lt.year = y;
    lt.month = m;
    lt.day = d;
    lt.hour = h;
    lt.minute = mi;
    if (tz_local_to_utc(z, &lt, &t) != 0)
        fail_msg("tz_local_to_utc(%s, %04d-%02d-%02d %02d:%02d) failed", tz_zone_name(z), y,
                 m, d, h, mi);
    return t;
}

/* ------------------------------------------------------------------------------------ */

static void test_seoul(void **state)
{
    tz_zone_t *z = open_ok("Asia/Seoul");

    (void)state;
    assert_string_equal(tz_zone_name(z), "Asia/Seoul");
    assert_string_equal(local_of(z, "2026-11-22T00:40:00Z"), "2026-11-22 09:40:00 +32400");
    assert_string_equal(local_of(z, "2026-11-21T15:00:00Z"), "2026-11-22 00:00:00 +32400");
    /* Korea kept daylight saving time in 1987 and 1988 (KDT, +10). */
    assert_string_equal(local_of(z, "1988-07-01T00:00:00Z"), "1988-07-01 10:00:00 +36000 dst");
    /* Past the table: the footer "KST-9". */
    assert_string_equal(local_of(z, "2500-07-01T00:00:00Z"), "2500-07-01 09:00:00 +32400");
    assert_int_equal(instant_of(z, 2026, 11, 22, 11, 0), at("2026-11-22T02:00:00Z"));
    assert_int_equal(instant_of(z, 9999, 12, 31, 23, 59), at("9999-12-31T14:59:00Z"));
    tz_zone_close(z);
}

static void test_berlin(void **state)
{
    tz_zone_t *z = open_ok("Europe/Berlin");

    (void)state;
    /* 2026-03-29 01:00Z: 02:00 CET becomes 03:00 CEST; 2026-10-25 01:00Z: back to 02:00. */
    assert_string_equal(local_of(z, "2026-03-29T00:59:59Z"), "2026-03-29 01:59:59 +3600");
    assert_string_equal(local_of(z, "2026-03-29T01:00:00Z"), "2026-03-29 03:00:00 +7200 dst");
    assert_string_equal(local_of(z, "2026-10-25T00:59:59Z"), "2026-10-25 02:59:59 +7200 dst");
    assert_string_equal(local_of(z, "2026-10-25T01:00:00Z"), "2026-10-25 02:00:00 +3600");
    /* 2100 is past the file's last transition (2037): the footer
     * "CET-1CEST,M3.5.0,M10.5.0/3" decides, with the same answers. */
    assert_string_equal(local_of(z, "2100-03-28T00:59:59Z"), "2100-03-28 01:59:59 +3600");
    assert_string_equal(local_of(z, "2100-03-28T01:00:00Z"), "2100-03-28 03:00:00 +7200 dst");
    assert_string_equal(local_of(z, "2100-10-31T00:59:59Z"), "2100-10-31 02:59:59 +7200 dst");
    assert_string_equal(local_of(z, "2100-10-31T01:00:00Z"), "2100-10-31 02:00:00 +3600");
    /* The gap runs at its end, the repeated hour at its first occurrence. */
    assert_int_equal(instant_of(z, 2026, 3, 29, 2, 30), at("2026-03-29T01:00:00Z"));
    assert_int_equal(instant_of(z, 2026, 10, 25, 2, 30), at("2026-10-25T00:30:00Z"));
    assert_int_equal(instant_of(z, 2100, 3, 28, 2, 30), at("2100-03-28T01:00:00Z"));
    assert_int_equal(instant_of(z, 2100, 10, 31, 2, 30), at("2100-10-31T00:30:00Z"));
    assert_int_equal(instant_of(z, 2100, 10, 31, 3, 0), at("2100-10-31T02:00:00Z"));
    tz_zone_close(z);
}

static void test_new_york(void **state)
{
    tz_zone_t *z = open_ok("America/New_York");

    (void)state;
    assert_string_equal(local_of(z, "2026-03-08T06:59:59Z"), "2026-03-08 01:59:59 -18000");
    assert_string_equal(local_of(z, "2026-03-08T07:00:00Z"), "2026-03-08 03:00:00 -14400 dst");
    assert_string_equal(local_of(z, "2026-11-01T05:59:59Z"), "2026-11-01 01:59:59 -14400 dst");
    assert_string_equal(local_of(z, "2026-11-01T06:00:00Z"), "2026-11-01 01:00:00 -18000");
    assert_int_equal(instant_of(z, 2026, 3, 8, 2, 30), at("2026-03-08T07:00:00Z"));
    assert_int_equal(instant_of(z, 2026, 3, 8, 1, 59), at("2026-03-08T06:59:00Z"));
    assert_int_equal(instant_of(z, 2026, 11, 1, 1, 30), at("2026-11-01T05:30:00Z"));
    assert_int_equal(instant_of(z, 2026, 11, 1, 2, 0), at("2026-11-01T07:00:00Z"));
    /* 2200, from the footer "EST5EDT,M3.2.0,M11.1.0": March 1st and November 1st are
     * Saturdays, so the changes are on the 9th and the 2nd. */
    assert_string_equal(local_of(z, "2200-03-09T06:59:59Z"), "2200-03-09 01:59:59 -18000");
    assert_string_equal(local_of(z, "2200-03-09T07:00:00Z"), "2200-03-09 03:00:00 -14400 dst");
    assert_string_equal(local_of(z, "2200-11-02T05:59:59Z"), "2200-11-02 01:59:59 -14400 dst");
    assert_string_equal(local_of(z, "2200-11-02T06:00:00Z"), "2200-11-02 01:00:00 -18000");
    assert_string_equal(local_of(z, "2200-11-01T06:00:00Z"), "2200-11-01 02:00:00 -14400 dst");
    assert_int_equal(instant_of(z, 2200, 3, 9, 2, 30), at("2200-03-09T07:00:00Z"));
    assert_int_equal(instant_of(z, 2200, 11, 2, 1, 30), at("2200-11-02T05:30:00Z"));
    tz_zone_close(z);
}

static void test_utc_and_ranges(void **state)
{
    tz_zone_t *z = open_ok("UTC");
    tz_time_t lt, before;
    int64_t t = 42;

    (void)state;
    assert_string_equal(local_of(z, "1970-01-01T00:00:00Z"), "1970-01-01 00:00:00 +0");
    assert_string_equal(local_of(z, "2026-11-22T23:59:59Z"), "2026-11-22 23:59:59 +0");
    assert_int_equal(tz_utc_to_local(z, 0, &lt), 0);
    assert_int_equal(lt.wday, 4); /* a Thursday */
    assert_int_equal(tz_utc_to_local(z, TZ_MAX_S, &lt), 0);
    assert_int_equal(lt.year, 99999);
    assert_int_equal(lt.month, 12);
    assert_int_equal(lt.day, 31);
    assert_int_equal(lt.second, 59);
    assert_int_equal(tz_utc_to_local(z, TZ_MIN_S, &lt), 0);
    assert_int_equal(lt.year, 1);
    assert_int_equal(lt.wday, 1); /* 0001-01-01 was a Monday (proleptic) */

    memset(&before, 0x5A, sizeof(before));
    lt = before;
    assert_int_equal(tz_utc_to_local(z, TZ_MAX_S + 1, &lt), -1);
    assert_int_equal(tz_utc_to_local(z, TZ_MIN_S - 1, &lt), -1);
    assert_int_equal(tz_utc_to_local(NULL, 0, &lt), -1);
    assert_memory_equal(&lt, &before, sizeof(lt));
    assert_int_equal(tz_utc_to_local(z, 0, NULL), -1);

    memset(&lt, 0, sizeof(lt));
    lt.year = 2026;
    lt.month = 2;
    lt.day = 29; /* not a leap year */
    assert_int_equal(tz_local_to_utc(z, &lt, &t), -1);
    lt.day = 28;
    lt.hour = 24;
    assert_int_equal(tz_local_to_utc(z, &lt, &t), -1);
    lt.hour = 0;
    lt.second = 60;
    assert_int_equal(tz_local_to_utc(z, &lt, &t), -1);
    lt.second = 0;
    lt.month = 13;
    assert_int_equal(tz_local_to_utc(z, &lt, &t), -1);
    lt.month = 2;
    lt.year = 0;
    assert_int_equal(tz_local_to_utc(z, &lt, &t), -1);
    lt.year = 2028;
    lt.day = 29;
    assert_int_equal(t, 42); /* untouched by the failures */
    assert_int_equal(tz_local_to_utc(z, &lt, &t), 0);
    assert_int_equal(t, at("2028-02-29T00:00:00Z"));
    assert_int_equal(tz_local_to_utc(NULL, &lt, &t), -1);
    assert_int_equal(tz_local_to_utc(z, NULL, &t), -1);
    assert_int_equal(tz_local_to_utc(z, &lt, NULL), -1);

    assert_int_equal(tz_days_from_civil(1970, 1, 1), 0);
    assert_int_equal(tz_days_from_civil(2000, 3, 1), 11017);
    assert_int_equal(tz_days_in_month(2100, 2), 28);
    assert_int_equal(tz_days_in_month(2000, 2), 29);
    tz_zone_close(z);
}

static void test_bad_names_and_files(void **state)
{
    static const struct {
        const char *name;
        const char *err;
    } cases[] = {
        { "Mars/Olympus", "unknown time zone 'Mars/Olympus' (no /usr/share/zoneinfo/"
                          "Mars/Olympus; is tzdata installed?)" },
        { "", "time zone name is empty" },
        { "../etc/passwd", "time zone name '../etc/passwd' is not an IANA zone name (such as "
                           "Asia/Seoul)" },
        { "Europe/../../etc/passwd", "time zone name 'Europe/../../etc/passwd' is not an IANA "
                                     "zone name (such as Asia/Seoul)" },
        { "/usr/share/zoneinfo/UTC", "time zone name '/usr/share/zoneinfo/UTC' is not an IANA "
                                     "zone name (such as Asia/Seoul)" },
        { "Asia/Seoul;rm", "time zone name 'Asia/Seoul;rm' has a bad character (allowed: "
                           "letters, digits and ._+-/)" },
        { "Asia\\Seoul", "time zone name 'Asia\\Seoul' has a bad character (allowed: letters, "
                         "digits and ._+-/)" },
        { "right/Asia/Seoul", "time zone 'right/Asia/Seoul' counts leap seconds: use "
                              "'Asia/Seoul'" },
        { "Europe", "time zone 'Europe': /usr/share/zoneinfo/Europe is not a zone file" },
        { "iso3166.tab", "time zone 'iso3166.tab': /usr/share/zoneinfo/iso3166.tab is not a "
                         "zone file" },
        { "UTC/x", "unknown time zone 'UTC/x' (no /usr/share/zoneinfo/UTC/x; is tzdata "
                   "installed?)" },
    };
    char err[256], longname[TZ_NAME_MAX + 2];
    tz_zone_t *z;
    size_t i;

    (void)state;
    for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        err[0] = '\0';
        z = tz_zone_open(cases[i].name, err, sizeof(err));
        if (z != NULL) {
            tz_zone_close(z);
            fail_msg("zone '%s' was accepted", cases[i].name);
        }
        assert_string_equal(err, cases[i].err);
    }
    memset(longname, 'A', sizeof(longname) - 1);
    longname[sizeof(longname) - 1] = '\0';
    assert_null(tz_zone_open(longname, err, sizeof(err)));
    assert_string_equal(err, "time zone name is longer than 128 characters");
    assert_null(tz_zone_open(NULL, err, sizeof(err)));
    assert_null(tz_zone_open("Nowhere/Else", NULL, 0));
    tz_zone_close(NULL);
    /* Names with '+', '-' and '_' exist. */
    z = open_ok("Etc/GMT-14");
    assert_string_equal(local_of(z, "2026-01-01T00:00:00Z"), "2026-01-01 14:00:00 +50400");
    tz_zone_close(z);
    z = open_ok("America/Port-au-Prince");
    tz_zone_close(z);
}

/* ------------------------------------------------------------------------------------
 * Zones from TZif data built here: the footer alone, and malformed files. */

struct tzif {
    unsigned char b[512];
    size_t len;
};

static void put32(struct tzif *f, uint32_t v)
{
    f->b[f->len++] = (unsigned char)(v >> 24);
    f->b[f->len++] = (unsigned char)(v >> 16);
    f->b[f->len++] = (unsigned char)(v >> 8);
    f->b[f->len++] = (unsigned char)v;
}

static void put_header(struct tzif *f, char version, uint32_t leap, uint32_t time,
                       uint32_t type, uint32_t chars)
{
    memcpy(f->b + f->len, "TZif", 4);
    f->b[f->len + 4] = (unsigned char)version;
    memset(f->b + f->len + 5, 0, 15);
    f->len += 20;
    put32(f, 0);     /* isutcnt */
    put32(f, 0);     /* isstdcnt */
    put32(f, leap);
    put32(f, time);
    put32(f, type);
    put32(f, chars);
}

/* A version 2 file: an empty 32-bit block, then ntrans transitions at trans[] (each to type
 * i % ntypes), types of offsets utoff[] (DST when odd index), one designation "X", and the
 * footer. */
static struct tzif build(size_t ntrans, const int64_t *trans, size_t ntypes,
                         const int32_t *utoff, const char *footer)
{
    struct tzif f;
    size_t i;

    memset(&f, 0, sizeof(f));
    put_header(&f, '2', 0, 0, 1, 1);
    put32(&f, 0); /* the v1 block: one type of offset 0, one designation byte */
    f.b[f.len++] = 0;
    f.b[f.len++] = 0;
    f.b[f.len++] = 0;
    put_header(&f, '2', 0, (uint32_t)ntrans, (uint32_t)ntypes, 2);
    for (i = 0; i < ntrans; i++) {
        put32(&f, (uint32_t)((uint64_t)trans[i] >> 32));
        put32(&f, (uint32_t)trans[i]);
    }
    for (i = 0; i < ntrans; i++)
        f.b[f.len++] = (unsigned char)(i % ntypes);
    for (i = 0; i < ntypes; i++) {
        put32(&f, (uint32_t)utoff[i]);
        f.b[f.len++] = (unsigned char)(i % 2);
        f.b[f.len++] = 0;
    }
    f.b[f.len++] = 'X';
    f.b[f.len++] = '\0';
    f.b[f.len++] = '\n';
    memcpy(f.b + f.len, footer, strlen(footer));
    f.len += strlen(footer);
    f.b[f.len++] = '\n';
    return f;
}

static tz_zone_t *from_ok(const struct tzif *f)
{
    char err[256] = "";
    tz_zone_t *z = tz_zone_from_tzif("test", f->b, f->len, err, sizeof(err));

    if (z == NULL)
        fail_msg("tz_zone_from_tzif: %s", err);
    return z;
}

static void test_footer_rules(void **state)
{
    static const int32_t std_only[1] = { 0 };
    struct tzif f;
    tz_zone_t *z;

    (void)state;
    /* No transitions at all: the footer decides every instant. */
    f = build(0, NULL, 1, std_only, "KST-9");
    z = from_ok(&f);
    assert_string_equal(tz_zone_name(z), "test");
    assert_string_equal(local_of(z, "1980-06-01T00:00:00Z"), "1980-06-01 09:00:00 +32400");
    tz_zone_close(z);

    f = build(0, NULL, 1, std_only, "<-03>3");
    z = from_ok(&f);
    assert_string_equal(local_of(z, "2026-06-01T00:00:00Z"), "2026-05-31 21:00:00 -10800");
    tz_zone_close(z);

    f = build(0, NULL, 1, std_only, "<+0545>-5:45");
    z = from_ok(&f);
    assert_string_equal(local_of(z, "2026-06-01T00:00:00Z"), "2026-06-01 05:45:00 +20700");
    tz_zone_close(z);

    /* Northern rule, also for years the file never listed. */
    f = build(0, NULL, 1, std_only, "EST5EDT,M3.2.0,M11.1.0");
    z = from_ok(&f);
    assert_string_equal(local_of(z, "1975-03-09T07:00:00Z"), "1975-03-09 03:00:00 -14400 dst");
    assert_string_equal(local_of(z, "2026-11-01T06:00:00Z"), "2026-11-01 01:00:00 -18000");
    assert_int_equal(instant_of(z, 2026, 3, 8, 2, 30), at("2026-03-08T07:00:00Z"));
    tz_zone_close(z);

    /* Southern rule: DST across the new year (Auckland). */
    f = build(0, NULL, 1, std_only, "NZST-12NZDT,M9.5.0,M4.1.0/3");
    z = from_ok(&f);
    assert_string_equal(local_of(z, "2300-01-15T00:00:00Z"), "2300-01-15 13:00:00 +46800 dst");
    assert_string_equal(local_of(z, "2300-07-15T00:00:00Z"), "2300-07-15 12:00:00 +43200");
    assert_string_equal(local_of(z, "2026-12-31T11:30:00Z"), "2027-01-01 00:30:00 +46800 dst");
    tz_zone_close(z);

    /* Julian days and explicit DST offsets: J60 is always March 1st; 'D' counts Feb 29. */
    f = build(0, NULL, 1, std_only, "AAA-1BBB-3,J60/0,250/0");
    z = from_ok(&f);
    assert_string_equal(local_of(z, "2028-02-29T22:59:59Z"), "2028-02-29 23:59:59 +3600");
    assert_string_equal(local_of(z, "2028-02-29T23:00:00Z"), "2028-03-01 02:00:00 +10800 dst");
    tz_zone_close(z);

    /* An empty footer: the last transition's type stays in force. */
    {
        static const int64_t trans[2] = { 0, 86400 };
        static const int32_t offs[2] = { 3600, 7200 };

        f = build(2, trans, 2, offs, "");
        z = from_ok(&f);
        assert_string_equal(local_of(z, "1970-01-01T12:00:00Z"), "1970-01-01 13:00:00 +3600");
        assert_string_equal(local_of(z, "2500-01-01T00:00:00Z"), "2500-01-01 02:00:00 +7200 dst");
        tz_zone_close(z);
    }
}

static void test_malformed_data(void **state)
{
    static const int32_t one[1] = { 0 };
    static const int64_t backwards[2] = { 100, 50 };
    static const struct {
        const char *footer;
    } bad_footers[] = {
        { "K-9" }, { "KST" }, { "KST-9x" }, { "EST5EDT,M13.1.0,M11.1.0" },
        { "EST5EDT,M3.2.0" }, { "EST5EDT,M3.6.0,M11.1.0" }, { "EST5EDT,J366,J1" },
        { "<+09-9" }, { "KST-25" }, { "EST5EDT,M3.2.0/168,M11.1.0" },
    };
    char err[256];
    struct tzif f;
    tz_zone_t *z;
    size_t i;

    (void)state;
    for (i = 0; i < sizeof(bad_footers) / sizeof(bad_footers[0]); i++) {
        f = build(0, NULL, 1, one, bad_footers[i].footer);
        err[0] = '\0';
        z = tz_zone_from_tzif("bad", f.b, f.len, err, sizeof(err));
        if (z != NULL) {
            tz_zone_close(z);
            fail_msg("footer '%s' was accepted", bad_footers[i].footer);
        }
        assert_string_equal(err, "time zone 'bad': data is not a zone file (bad POSIX TZ "
                                 "string in its footer)");
    }

    f = build(0, NULL, 1, one, "UTC0");
    assert_null(tz_zone_from_tzif("t", f.b, f.len - 1, err, sizeof(err)));
    assert_string_equal(err, "time zone 't': data is not a zone file (no footer)");
    assert_null(tz_zone_from_tzif("t", f.b, 60, err, sizeof(err)));
    assert_string_equal(err, "time zone 't': data is not a zone file (truncated)");
    assert_null(tz_zone_from_tzif("t", f.b, 10, err, sizeof(err)));
    assert_string_equal(err, "time zone 't': data is not a zone file");
    f.b[4] = '\0';
    assert_null(tz_zone_from_tzif("t", f.b, f.len, err, sizeof(err)));
    assert_string_equal(err, "time zone 't': data is not a zone file (version 1: no 64-bit "
                             "data)");
    f.b[0] = 'X';
    assert_null(tz_zone_from_tzif("t", f.b, f.len, err, sizeof(err)));
    assert_string_equal(err, "time zone 't': data is not a zone file");

    f = build(2, backwards, 1, one, "UTC0");
    assert_null(tz_zone_from_tzif("t", f.b, f.len, err, sizeof(err)));
    assert_string_equal(err, "time zone 't': data is not a zone file (transitions out of "
                         "order)");

    /* A leap second count in the 64-bit header (offset 44 + 7 + 44 + 28). */
    f = build(0, NULL, 1, one, "UTC0");
    f.b[51 + 28 + 3] = 1;
    assert_null(tz_zone_from_tzif("t", f.b, f.len, err, sizeof(err)));
    assert_string_equal(err, "time zone 't': data is not a zone file (it counts leap "
                             "seconds)");

    assert_null(tz_zone_from_tzif(NULL, f.b, f.len, err, sizeof(err)));
    assert_null(tz_zone_from_tzif("t", NULL, 0, err, sizeof(err)));
    assert_null(tz_zone_from_tzif("", f.b, f.len, err, sizeof(err)));
}

/* The C library reads the same files: for a sample of instants from 1970 to 2200 (past every
 * table, so the footers are checked too), both must give the same local time. This test
 * alone sets TZ, in a single thread, to ask the C library. */
static void test_agrees_with_libc(void **state)
{
    static const char *zones[] = {
        "Asia/Seoul", "Europe/Berlin", "America/New_York", "UTC", "Pacific/Auckland",
        "Australia/Lord_Howe", "America/Sao_Paulo", "Asia/Tehran", "Africa/Casablanca",
    };
    char tzval[sizeof(TZ_ZONEINFO_DIR) + TZ_NAME_MAX + 2];
    const char *saved = getenv("TZ");
    char *old = saved != NULL ? strdup(saved) : NULL;
    size_t i;
    int64_t t, back;
    long mismatches = 0;

    (void)state;
    for (i = 0; i < sizeof(zones) / sizeof(zones[0]); i++) {
        tz_zone_t *z = open_ok(zones[i]);

        snprintf(tzval, sizeof(tzval), ":%s/%s", TZ_ZONEINFO_DIR, zones[i]);
        assert_int_equal(setenv("TZ", tzval, 1), 0);
        tzset();
        for (t = 0; t < at("2200-01-01T00:00:00Z"); t += 5 * 86400 + 3 * 3600 + 7 * 60 + 11) {
            time_t tt = (time_t)t;
            struct tm tm;
            tz_time_t lt;

            assert_non_null(localtime_r(&tt, &tm));
            assert_int_equal(tz_utc_to_local(z, t, &lt), 0);
            if (tm.tm_gmtoff != lt.utoff || tm.tm_isdst != lt.isdst ||
                tm.tm_year + 1900 != lt.year || tm.tm_mon + 1 != lt.month ||
                tm.tm_mday != lt.day || tm.tm_hour != lt.hour || tm.tm_min != lt.minute ||
                tm.tm_sec != lt.second || tm.tm_wday != lt.wday) {
                if (mismatches++ < 5)
                    print_error("%s at %lld: libc %+ld%s, tz %+d%s\n", zones[i],
                                (long long)t, tm.tm_gmtoff, tm.tm_isdst ? " dst" : "",
                                lt.utoff, lt.isdst ? " dst" : "");
            }
            /* The first instant reading lt is t itself or, in a repeated hour, earlier. */
            assert_int_equal(tz_local_to_utc(z, &lt, &back), 0);
            if (back > t || t - back > 3 * 3600)
                mismatches++;
        }
        tz_zone_close(z);
    }
    if (old != NULL)
        assert_int_equal(setenv("TZ", old, 1), 0);
    else
        assert_int_equal(unsetenv("TZ"), 0);
    tzset();
    free(old);
    assert_int_equal(mismatches, 0);
}

/* One handle shared by threads: conversions are pure, so each thread gets its answers. */
static tz_zone_t *shared;

static void *convert_many(void *arg)
{
    long *failures = arg;
    tz_time_t lt;
    int i;

    for (i = 0; i < 2000; i++) {
        int64_t t = at("2026-03-08T07:00:00Z") + (i % 2 ? -1 : 0);

        if (tz_utc_to_local(shared, t, &lt) != 0 || lt.isdst != (i % 2 ? 0 : 1))
            (*failures)++;
        if (instant_of(shared, 2026, 3, 8, 2, 30) != at("2026-03-08T07:00:00Z"))
            (*failures)++;
    }
    return NULL;
}

static void test_shared_handle_threads(void **state)
{
    pthread_t th[4];
    long failures[4] = { 0, 0, 0, 0 };
    int i;

    (void)state;
    shared = open_ok("America/New_York");
    for (i = 0; i < 4; i++)
        assert_int_equal(pthread_create(&th[i], NULL, convert_many, &failures[i]), 0);
    for (i = 0; i < 4; i++)
        assert_int_equal(pthread_join(th[i], NULL), 0);
    for (i = 0; i < 4; i++)
        assert_int_equal(failures[i], 0);
    tz_zone_close(shared);
    shared = NULL;
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_seoul),
        cmocka_unit_test(test_berlin),
        cmocka_unit_test(test_new_york),
        cmocka_unit_test(test_utc_and_ranges),
        cmocka_unit_test(test_bad_names_and_files),
        cmocka_unit_test(test_footer_rules),
        cmocka_unit_test(test_malformed_data),
        cmocka_unit_test(test_agrees_with_libc),
        cmocka_unit_test(test_shared_handle_threads),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
