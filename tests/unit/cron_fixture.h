/* cron_fixture: helpers the unit tests of libcommon/cron.c share (times in ISO form, parsing,
 * the next run); static inline, so a test that uses only some of them builds. */
#ifndef DOZEN_TEST_CRON_FIXTURE_H
#define DOZEN_TEST_CRON_FIXTURE_H

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
static inline int64_t at(const char *iso)
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
static inline const char *iso(int64_t ms)
{
    static char bufs[4][32];
    static int next;
    char *b = bufs[next++ % 4];

    assert_int_equal(util_rfc3339(ms, b, sizeof(bufs[0])), 0);
    return b;
}

static inline cron_t parse_ok(const char *expr)
{
    char err[256] = "";
    cron_t c;

    if (cron_parse(expr, &c, err, sizeof(err)) != 0)
        fail_msg("cron_parse('%s'): %s", expr, err);
    return c;
}

/* The next run of expr in zone after the instant after_iso, as RFC 3339 UTC. */
static inline const char *next_of(const char *expr, const char *zone, const char *after_iso)
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

static inline int set_machine_tz(void **state)
{
    (void)state;
    assert_int_equal(setenv("TZ", MACHINE_TZ, 1), 0);
    tzset();
    return 0;
}

/* ------------------------------------------------------------------------------------ */

#endif
