/* tz: IANA time zones read from their TZif files, and conversions between instants and local
 * wall-clock time in a named zone, without the C library's process-wide TZ state.
 *
 * A zone is loaded once (tz_zone_open) and is immutable afterwards: any number of threads
 * may use one handle at once. Conversions are pure functions of the zone and their
 * arguments; nothing here reads or writes the environment, calls tzset() or takes a lock. */
#ifndef DOZEN_TZ_H
#define DOZEN_TZ_H

#include <stddef.h>
#include <stdint.h>

/* Longest zone name tz_zone_open accepts ("America/Argentina/ComodRivadavia" is 32). */
#define TZ_NAME_MAX 128

/* Where tz_zone_open looks for zone files (Debian's tzdata package). */
#define TZ_ZONEINFO_DIR "/usr/share/zoneinfo"

/* Instants the conversions accept, in seconds since the epoch: 0001-01-01T00:00:00Z to
 * 99999-12-31T23:59:59Z. Local times: years 1 to 99999. */
#define TZ_MIN_S INT64_C(-62135596800)
#define TZ_MAX_S INT64_C(3093527980799)
#define TZ_YEAR_MIN 1
#define TZ_YEAR_MAX 99999

/* A loaded zone (opaque, immutable). */
typedef struct tz_zone tz_zone_t;

/* A local wall-clock time (proleptic Gregorian calendar). Plain data. */
typedef struct tz_time {
    int year;      /* TZ_YEAR_MIN..TZ_YEAR_MAX (tz_utc_to_local may give one year beyond) */
    int month;     /* 1..12 */
    int day;       /* 1..31 */
    int hour;      /* 0..23 */
    int minute;    /* 0..59 */
    int second;    /* 0..59 (leap seconds are not counted) */
    int wday;      /* 0..6, 0 = Sunday; set by tz_utc_to_local, ignored by tz_local_to_utc */
    int32_t utoff; /* seconds east of UTC in effect; set by tz_utc_to_local, else ignored */
    int isdst;     /* 1 in daylight saving time; set by tz_utc_to_local, else ignored */
} tz_time_t;

/* Loads the IANA zone name ("Asia/Seoul", "America/New_York", "UTC") from
 * TZ_ZONEINFO_DIR/<name>, a TZif file of version 2 or later: its 64-bit transition table
 * and, for instants after its last transition, the POSIX TZ rule in its footer
 * ("CET-1CEST,M3.5.0,M10.5.0/3"). Names with an empty, "." or ".." part, a leading '/',
 * characters other than letters, digits and "._+-/", or under "right/" (leap seconds, which
 * the conversions do not count) are refused before any file is opened. Reads the file once;
 * does not read the environment. Returns a new handle that the caller owns and frees with
 * tz_zone_close, or NULL with errstr such as "unknown time zone 'Mars/Base' (no
 * /usr/share/zoneinfo/Mars/Base; is tzdata installed?)" or "time zone 'zone.tab':
 * /usr/share/zoneinfo/zone.tab is not a zone file". */
tz_zone_t *tz_zone_open(const char *name, char *errstr, size_t errstr_size);

/* Like tz_zone_open, but from TZif data in memory (len bytes, borrowed: not kept); name is
 * only recorded (any non-empty string up to TZ_NAME_MAX). For zones that are not files and
 * for tests. Returns a new handle for tz_zone_close, or NULL with errstr. */
tz_zone_t *tz_zone_from_tzif(const char *name, const unsigned char *data, size_t len,
                             char *errstr, size_t errstr_size);

/* Frees a zone handle. Accepts NULL. */
void tz_zone_close(tz_zone_t *z);

/* The zone's name as given when it was loaded. Borrowed: valid until tz_zone_close. */
const char *tz_zone_name(const tz_zone_t *z);

/* The local wall-clock time in z of instant t (seconds since the epoch, in
 * [TZ_MIN_S, TZ_MAX_S]), with its UTC offset, daylight saving flag and weekday. Returns 0
 * and fills *out, or -1 (NULL argument, t out of range; *out is untouched). */
int tz_utc_to_local(const tz_zone_t *z, int64_t t, tz_time_t *out);

/* The instant of local wall-clock time *local in z (its year..second fields; the others are
 * ignored): the first instant at which the zone's clock reads that time or later, so
 *  - a time that occurs twice (fall back, New York 2026-11-01 01:30) gives its first
 *    occurrence (01:30 EDT);
 *  - a time that does not exist (spring forward, New York 2026-03-08 02:30) gives the end
 *    of the gap, the first instant after the jump (03:00 EDT).
 * This assumes a zone changes its UTC offset at most once within 18 hours of a time, which
 * holds for every zone in modern tzdata. Returns 0 and *out (seconds since the epoch), or -1
 * (NULL argument or a field out of range, such as 2026-02-29; *out is untouched). */
int tz_local_to_utc(const tz_zone_t *z, const tz_time_t *local, int64_t *out);

/* Calendar arithmetic (proleptic Gregorian, no zone), for callers that step through days. */

/* Days from 1970-01-01 to y-m-d (negative before it). m is 1..12, d may be any value (it is
 * added to the first of the month). */
int64_t tz_days_from_civil(int64_t y, int m, int d);

/* Days in month m (1..12) of year y. */
int tz_days_in_month(int64_t y, int m);

#endif
