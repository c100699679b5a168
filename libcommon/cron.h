/* cron: 5-field cron expressions, IANA time zones and deadlines, for scheduled jobs such as
 * the notifier's daily bulletin. */
#ifndef DOZEN_CRON_H
#define DOZEN_CRON_H

#include <stddef.h>
#include <stdint.h>

#include "tz.h"

/* Longest expression cron_parse accepts, in characters. */
#define CRON_EXPR_MAX 1024

/* Longest zone name cron_zone_open accepts ("America/Argentina/ComodRivadavia" is 32). */
#define CRON_ZONE_NAME_MAX TZ_NAME_MAX

/* Where cron_zone_open looks for zone files (Debian's tzdata package). */
#define CRON_ZONEINFO_DIR TZ_ZONEINFO_DIR

/* cron_next searches this many days ahead: one 400-year Gregorian cycle, after which the
 * calendar repeats, so an expression with no match in it never matches. */
#define CRON_SEARCH_DAYS 146097

/* Instants accepted by cron_next and the other functions: 1970-01-01T00:00:00Z to
 * 9999-12-31T23:59:59.999Z, in milliseconds since the epoch. */
#define CRON_MIN_MS INT64_C(0)
#define CRON_MAX_MS INT64_C(253402300799999)

/* A parsed expression: one bit per allowed value. Plain data, no allocation; copy freely. */
typedef struct cron {
    uint64_t minutes;   /* bit n: minute n, 0..59 */
    uint32_t hours;     /* bit n: hour n, 0..23 */
    uint32_t days;      /* bit n: day of month n, 1..31 */
    uint16_t months;    /* bit n: month n, 1..12 */
    uint8_t weekdays;   /* bit n: day of week n, 0..6, 0 = Sunday (7 is stored as 0) */
    uint8_t dom_star;   /* 1 when the day-of-month field starts with '*' */
    uint8_t dow_star;   /* 1 when the day-of-week field starts with '*' */
} cron_t;

/* An IANA time zone: tz.c's zone (opaque), so a tz_zone_t from tz_zone_open may be passed
 * too. Immutable once open: one handle may be used by any number of threads at once. */
typedef struct tz_zone cron_zone_t;

enum cron_deadline_kind {
    CRON_DEADLINE_CLOCK, /* a local wall-clock time on the day of the run ("11:00") */
    CRON_DEADLINE_AFTER  /* a duration after the scheduled run ("80m") */
};

/* A parsed deadline (see cron_parse_deadline). Plain data. */
typedef struct cron_deadline {
    enum cron_deadline_kind kind;
    int hour;          /* CRON_DEADLINE_CLOCK: 0..23 */
    int minute;        /* CRON_DEADLINE_CLOCK: 0..59 */
    int64_t after_ms;  /* CRON_DEADLINE_AFTER: > 0 */
} cron_deadline_t;

/* Parses a 5-field cron expression "minute hour day-of-month month day-of-week", fields
 * separated by spaces or tabs. Ranges: minute 0-59, hour 0-23, day-of-month 1-31, month 1-12
 * or jan..dec, day-of-week 0-7 or sun..sat (0 and 7 are Sunday); names are 3 letters, any
 * case. Each field is a comma-separated list of items: `*`, `n`, `a-b`, `*\/n` or `a-b/n`
 * (a step needs `*` or a range; a range must not be reversed).
 *
 * Day matching follows Vixie cron and cronie (crontab(5)): when both the day-of-month and the
 * day-of-week fields are restricted (do not start with '*'), a day matches if EITHER does
 * ("0 0 1,15 * 1": the 1st, the 15th and every Monday); otherwise both must match ("0 0 * * 1":
 * Mondays; "0 0 *\/2 * 1": Mondays that are odd days of the month).
 *
 * Returns 0 and fills *out, or -1 with errstr such as "field 2 (hour): 25 is out of range
 * 0..23"; *out is untouched on error. An expression that is valid but can never match
 * ("0 0 31 2 *") is accepted here and reported by cron_next. */
int cron_parse(const char *expr, cron_t *out, char *errstr, size_t errstr_size);

/* Opens the IANA time zone name ("Asia/Seoul", "America/New_York", "UTC"): loads
 * CRON_ZONEINFO_DIR/<name>, a zone file (TZif), once (tz_zone_open). Names with an empty, "." or ".." part, a
 * leading '/', characters other than letters, digits and "._+-/", or under "right/" (leap
 * seconds, which cron arithmetic does not count) are refused. Does not read the environment.
 * Returns a new handle that the caller owns and frees with cron_zone_close, or NULL with
 * errstr such as "unknown time zone 'Mars/Base' (no /usr/share/zoneinfo/Mars/Base; is tzdata
 * installed?)". */
cron_zone_t *cron_zone_open(const char *name, char *errstr, size_t errstr_size);

/* Frees a zone handle (tz_zone_close). Accepts NULL. */
void cron_zone_close(cron_zone_t *z);

/* The zone's name as given to cron_zone_open. Borrowed: valid until cron_zone_close. */
const char *cron_zone_name(const cron_zone_t *z);

/* Conversions between instants and local time (cron_next, cron_local_date,
 * cron_local_time_ms, cron_deadline_at) use the zone's own data, read once by
 * cron_zone_open (tz.c): they are pure functions that take no lock and neither read nor
 * change the environment (TZ) or the C library's local time, so they may run in any number
 * of threads at once, next to code that uses localtime() or getenv().
 *
 * Daylight saving. A local time is run at the first instant at which the zone's wall clock
 * reads that time or later:
 *  - a time that occurs twice (fall back, New York 2026-11-01 01:30) runs once, at its first
 *    occurrence (01:30 EDT); the repeated hour does not match again, even for "*" fields;
 *  - a time that does not exist (spring forward, New York 2026-03-08 02:30) runs at the end
 *    of the gap, the first instant after the jump (03:00 EDT), as cronie does for jobs
 *    scheduled in the skipped hour (Vixie cron would skip them for that day). Several times
 *    in one gap ("*\/15 2 * * *") run once, at that instant.
 * This assumes a zone changes its UTC offset at most once within 18 hours of a time, which
 * holds for every zone in modern tzdata. */

/* Finds the first instant strictly after after_ms (ms since the epoch, in
 * [CRON_MIN_MS, CRON_MAX_MS]) whose local wall-clock time in z matches c, with seconds 0.
 * Returns 0 and *next_ms, or -1 with errstr: "no match within 400 years" for an expression
 * that can never match ("0 0 31 2 *"), or a range or zone error. Searching takes well under a
 * millisecond for expressions that match. */
int cron_next(const cron_t *c, const cron_zone_t *z, int64_t after_ms, int64_t *next_ms,
              char *errstr, size_t errstr_size);

/* Writes the local date "YYYY-MM-DD" of instant at_ms (in [CRON_MIN_MS, CRON_MAX_MS]) in z
 * into out (11 bytes with the NUL). Returns 0, or -1 (bad argument or zone conversion
 * failure; out is then ""). */
int cron_local_date(const cron_zone_t *z, int64_t at_ms, char out[11]);

/* The instant of local wall-clock time hour:minute (0..23, 0..59) on date "YYYY-MM-DD"
 * (years 1970..9999) in z. In a spring-forward gap it is the first instant after the gap;
 * a time that occurs twice gives its first occurrence (see above). Returns 0 and *out_ms, or
 * -1 with errstr. */
int cron_local_time_ms(const cron_zone_t *z, const char *date, int hour, int minute,
                       int64_t *out_ms, char *errstr, size_t errstr_size);

/* Parses a deadline: "HH:MM" (hour 0..23 in one or two digits, minute in two: a local time
 * on the day of the run) or a duration after the scheduled run as cfg_parse_duration_ms
 * reads it ("80m", "5s", "500ms", "2h"; greater than 0). Returns 0 and fills *out, or -1 with
 * errstr; *out is untouched on error. */
int cron_parse_deadline(const char *text, cron_deadline_t *out, char *errstr,
                        size_t errstr_size);

/* The absolute deadline of a run scheduled at run_ms (a cron_next result): run_ms plus the
 * duration, or the "HH:MM" local time in z on run_ms's local date. A clock deadline that is
 * not after the run is an error ("deadline 11:00 is not after the run at 2026-11-22 11:40
 * Asia/Seoul"): the caller should move the deadline or the schedule. Returns 0 and
 * *deadline_ms, or -1 with errstr. */
int cron_deadline_at(const cron_deadline_t *d, const cron_zone_t *z, int64_t run_ms,
                     int64_t *deadline_ms, char *errstr, size_t errstr_size);

#endif
