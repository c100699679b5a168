/* cron: 5-field cron expressions, IANA time zones through the C library, and deadlines. */
#include "cron.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "cfg.h"
#include "util.h"

#define SECS_PER_DAY INT64_C(86400)

/* Larger than any UTC offset a zone has ever used (Asia/Manila's LMT, -15:56). */
#define MAX_OFFSET_S (18 * 3600)

struct cron_zone {
    char name[CRON_ZONE_NAME_MAX + 1];
    /* The TZ value: ':' and the absolute path of the zone file, so that the C library loads
     * exactly the file cron_zone_open checked. */
    char tz[sizeof(CRON_ZONEINFO_DIR) + CRON_ZONE_NAME_MAX + 2];
};

/* ---------------------------------------------------------------------------------------
 * Calendar arithmetic (proleptic Gregorian, no time zone). */

static int is_leap(int64_t y)
{
    return (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
}

static int days_in_month(int64_t y, int m)
{
    static const int days[12] = { 31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31 };

    return (m == 2 && is_leap(y)) ? 29 : days[m - 1];
}

/* Days from 1970-01-01 to y-m-d (Howard Hinnant's days_from_civil). */
static int64_t days_from_civil(int64_t y, int m, int d)
{
    int64_t era, yoe, doy, doe;

    y -= m <= 2;
    era = (y >= 0 ? y : y - 399) / 400;
    yoe = y - era * 400;
    doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
    doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    return era * 146097 + doe - 719468;
}

/* Day of week of a day number from days_from_civil, 0 = Sunday (1970-01-01 was a Thursday). */
static int weekday_of(int64_t days)
{
    int64_t w = (days + 4) % 7;

    return (int)(w < 0 ? w + 7 : w);
}

static int64_t floor_div(int64_t a, int64_t b)
{
    int64_t q = a / b;

    return (a % b != 0 && (a < 0) != (b < 0)) ? q - 1 : q;
}

/* ---------------------------------------------------------------------------------------
 * Parsing. */

struct field_def {
    const char *name;
    int lo, hi;                /* allowed values */
    int step_max;
    const char *const *names;  /* 3-letter names of lo, lo + 1, ..., or NULL */
    const char *name_kind;     /* "month" or "day", for errors */
};

static const char *const month_names[] = {
    "jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec", NULL
};
static const char *const day_names[] = {
    "sun", "mon", "tue", "wed", "thu", "fri", "sat", NULL
};

static const struct field_def fields[5] = {
    { "minute", 0, 59, 60, NULL, NULL },
    { "hour", 0, 23, 24, NULL, NULL },
    { "day-of-month", 1, 31, 31, NULL, NULL },
    { "month", 1, 12, 12, month_names, "month" },
    { "day-of-week", 0, 7, 7, day_names, "day" },
};

static int is_digit(char c)
{
    return c >= '0' && c <= '9';
}

static int is_alpha(char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z');
}

static int is_blank(char c)
{
    return c == ' ' || c == '\t';
}

static char lower(char c)
{
    return (c >= 'A' && c <= 'Z') ? (char)(c - 'A' + 'a') : c;
}

/* Reads a number or (where the field has them) a name at *p and moves *p past it. Returns 0
 * and *out within the field's range, or -1 with errstr. fno is the 0-based field index. */
static int parse_value(int fno, const char **p, int *out, char *errstr, size_t errstr_size)
{
    const struct field_def *f = &fields[fno];
    const char *s = *p, *e = s;
    char *end = NULL;
    long v;
    int i;

    if (is_digit(*s)) {
        while (is_digit(*e))
            e++;
        /* At most 9 digits always fits a long; more is out of range anyway. */
        if (e - s > 9) {
            util_errf(errstr, errstr_size, "field %d (%s): %.*s is out of range %d..%d",
                      fno + 1, f->name, (int)(e - s), s, f->lo, f->hi);
            return -1;
        }
        errno = 0;
        v = strtol(s, &end, 10);
        if (errno != 0 || end != e) {
            util_errf(errstr, errstr_size, "field %d (%s): '%.*s' is not a number",
                      fno + 1, f->name, (int)(e - s), s);
            return -1;
        }
        if (v < f->lo || v > f->hi) {
            util_errf(errstr, errstr_size, "field %d (%s): %ld is out of range %d..%d",
                      fno + 1, f->name, v, f->lo, f->hi);
            return -1;
        }
        *out = (int)v;
        *p = e;
        return 0;
    }
    while (is_alpha(*e))
        e++;
    if (e == s) {
        if (*s == '\0' || *s == ',' || is_blank(*s))
            util_errf(errstr, errstr_size, "field %d (%s): a number is missing",
                      fno + 1, f->name);
        else
            util_errf(errstr, errstr_size, "field %d (%s): unexpected '%c'",
                      fno + 1, f->name, *s);
        return -1;
    }
    if (f->names != NULL && e - s == 3) {
        for (i = 0; f->names[i] != NULL; i++) {
            if (lower(s[0]) == f->names[i][0] && lower(s[1]) == f->names[i][1] &&
                lower(s[2]) == f->names[i][2]) {
                *out = f->lo + i;
                *p = e;
                return 0;
            }
        }
    }
    if (f->names != NULL)
        util_errf(errstr, errstr_size, "field %d (%s): '%.*s' is not a number or %s name",
                  fno + 1, f->name, (int)(e - s), s, f->name_kind);
    else
        util_errf(errstr, errstr_size, "field %d (%s): '%.*s' is not a number",
                  fno + 1, f->name, (int)(e - s), s);
    return -1;
}

/* Parses one field, [s, s + len), into *mask (bit n for value n; day-of-week 7 becomes 0).
 * Returns 0, or -1 with errstr. */
static int parse_field(int fno, const char *s, size_t len, uint64_t *mask,
                       char *errstr, size_t errstr_size)
{
    const struct field_def *f = &fields[fno];
    const char *p = s, *end = s + len, *item;
    uint64_t m = 0;
    int a, b, step, v, ranged;

    for (;;) {
        item = p;
        step = 1;
        ranged = 1;
        if (*p == '*') {
            a = f->lo;
            b = f->hi;
            p++;
        } else {
            if (parse_value(fno, &p, &a, errstr, errstr_size) != 0)
                return -1;
            b = a;
            ranged = *p == '-';
            if (ranged) {
                p++;
                if (parse_value(fno, &p, &b, errstr, errstr_size) != 0)
                    return -1;
                if (b < a) {
                    util_errf(errstr, errstr_size,
                              "field %d (%s): range %.*s is reversed (write the smaller "
                              "value first)", fno + 1, f->name, (int)(p - item), item);
                    return -1;
                }
            }
        }
        if (*p == '/') {
            if (!ranged) {
                util_errf(errstr, errstr_size,
                          "field %d (%s): step in '%.*s' needs '*' or a range (use */n or "
                          "a-b/n)", fno + 1, f->name, (int)(p - item + 1), item);
                return -1;
            }
            p++;
            if (!is_digit(*p)) {
                util_errf(errstr, errstr_size, "field %d (%s): a step number is missing "
                          "after '/'", fno + 1, f->name);
                return -1;
            }
            {
                const char *q = p;
                long n;

                while (is_digit(*q))
                    q++;
                errno = 0;
                /* More than 9 digits is out of range anyway and might not fit a long. */
                n = (q - p > 9) ? LONG_MAX : strtol(p, NULL, 10);
                if (errno != 0 || n < 1 || n > f->step_max) {
                    util_errf(errstr, errstr_size,
                              "field %d (%s): step %.*s is out of range 1..%d",
                              fno + 1, f->name, (int)(q - p), p, f->step_max);
                    return -1;
                }
                step = (int)n;
                p = q;
            }
        }
        for (v = a; v <= b; v += step)
            m |= UINT64_C(1) << v;
        if (p == end)
            break;
        if (*p != ',') {
            util_errf(errstr, errstr_size, "field %d (%s): unexpected '%c' in '%.*s'",
                      fno + 1, f->name, *p, (int)len, s);
            return -1;
        }
        p++;
        if (p == end || *p == ',') {
            util_errf(errstr, errstr_size, "field %d (%s): empty list item in '%.*s'",
                      fno + 1, f->name, (int)len, s);
            return -1;
        }
    }
    if (fno == 4 && (m & (UINT64_C(1) << 7))) /* 7 is Sunday too */
        m = (m & ~(UINT64_C(1) << 7)) | 1;
    *mask = m;
    return 0;
}

int cron_parse(const char *expr, cron_t *out, char *errstr, size_t errstr_size)
{
    uint64_t masks[5] = { 0 };
    const char *starts[5] = { NULL };
    const char *p;
    size_t len, flen;
    int n = 0;
    cron_t c;

    if (expr == NULL || out == NULL) {
        util_errf(errstr, errstr_size, "cron_parse: NULL argument");
        return -1;
    }
    len = strnlen(expr, CRON_EXPR_MAX + 1);
    if (len > CRON_EXPR_MAX) {
        util_errf(errstr, errstr_size, "cron expression is longer than %d characters",
                  CRON_EXPR_MAX);
        return -1;
    }
    p = expr;
    for (;;) {
        while (is_blank(*p))
            p++;
        if (*p == '\0')
            break;
        flen = 0;
        while (p[flen] != '\0' && !is_blank(p[flen]))
            flen++;
        if (n == 5) {
            util_errf(errstr, errstr_size, "'%s' has more than 5 fields (minute hour "
                      "day-of-month month day-of-week)", expr);
            return -1;
        }
        /* A field is a NUL- or blank-terminated run; parse_field stops at its end. */
        starts[n] = p;
        if (parse_field(n, p, flen, &masks[n], errstr, errstr_size) != 0)
            return -1;
        n++;
        p += flen;
    }
    if (n != 5) {
        util_errf(errstr, errstr_size, "'%s' has %d field%s, expected 5 (minute hour "
                  "day-of-month month day-of-week)", expr, n, n == 1 ? "" : "s");
        return -1;
    }
    memset(&c, 0, sizeof(c));
    c.minutes = masks[0];
    c.hours = (uint32_t)masks[1];
    c.days = (uint32_t)masks[2];
    c.months = (uint16_t)masks[3];
    c.weekdays = (uint8_t)masks[4];
    c.dom_star = starts[2][0] == '*';
    c.dow_star = starts[4][0] == '*';
    *out = c;
    return 0;
}

/* ---------------------------------------------------------------------------------------
 * Zones. */

/* Returns 1 if name is a zone name we are willing to turn into a path, else 0 with errstr. */
static int zone_name_ok(const char *name, char *errstr, size_t errstr_size)
{
    size_t len = strnlen(name, CRON_ZONE_NAME_MAX + 1), i, part = 0;

    if (len == 0) {
        util_errf(errstr, errstr_size, "time zone name is empty");
        return 0;
    }
    if (len > CRON_ZONE_NAME_MAX) {
        util_errf(errstr, errstr_size, "time zone name is longer than %d characters",
                  CRON_ZONE_NAME_MAX);
        return 0;
    }
    for (i = 0; i < len; i++) {
        char c = name[i];

        if (!is_alpha(c) && !is_digit(c) && c != '_' && c != '-' && c != '+' && c != '.' &&
            c != '/') {
            util_errf(errstr, errstr_size, "time zone name '%s' has a bad character "
                      "(allowed: letters, digits and ._+-/)", name);
            return 0;
        }
    }
    /* Every '/'-separated part must be non-empty and neither "." nor "..": no absolute
     * paths, no climbing out of the zoneinfo directory. */
    for (i = 0; i <= len; i++) {
        if (i < len && name[i] != '/')
            continue;
        if (i == part || (i - part == 1 && name[part] == '.') ||
            (i - part == 2 && name[part] == '.' && name[part + 1] == '.')) {
            util_errf(errstr, errstr_size, "time zone name '%s' is not an IANA zone name "
                      "(such as Asia/Seoul)", name);
            return 0;
        }
        part = i + 1;
    }
    if (strncmp(name, "right/", 6) == 0) {
        util_errf(errstr, errstr_size, "time zone '%s' counts leap seconds: use '%s'",
                  name, name + 6);
        return 0;
    }
    return 1;
}

cron_zone_t *cron_zone_open(const char *name, char *errstr, size_t errstr_size)
{
    cron_zone_t *z = NULL, *ret = NULL;
    char magic[4];
    ssize_t n;
    int fd = -1, len;

    if (name == NULL) {
        util_errf(errstr, errstr_size, "cron_zone_open: NULL name");
        goto done;
    }
    if (!zone_name_ok(name, errstr, errstr_size))
        goto done;
    z = calloc(1, sizeof(*z));
    if (z == NULL) {
        util_errf(errstr, errstr_size, "out of memory");
        goto done;
    }
    len = snprintf(z->name, sizeof(z->name), "%s", name);
    if (len < 0 || (size_t)len >= sizeof(z->name)) {
        util_errf(errstr, errstr_size, "time zone name is too long");
        goto done;
    }
    len = snprintf(z->tz, sizeof(z->tz), ":%s/%s", CRON_ZONEINFO_DIR, name);
    if (len < 0 || (size_t)len >= sizeof(z->tz)) {
        util_errf(errstr, errstr_size, "time zone name is too long");
        goto done;
    }
    /* The C library silently falls back to UTC when it cannot load TZ's file: check it
     * here, where the caller can still refuse to start. */
    fd = open(z->tz + 1, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        if (errno == ENOENT || errno == ENOTDIR)
            util_errf(errstr, errstr_size, "unknown time zone '%s' (no %s; is tzdata "
                      "installed?)", name, z->tz + 1);
        else
            util_errf(errstr, errstr_size, "time zone '%s': %s: %s", name, z->tz + 1,
                      strerror(errno));
        goto done;
    }
    do {
        n = read(fd, magic, sizeof(magic));
    } while (n < 0 && errno == EINTR);
    if (n != (ssize_t)sizeof(magic) || memcmp(magic, "TZif", 4) != 0) {
        util_errf(errstr, errstr_size, "time zone '%s': %s is not a zone file", name,
                  z->tz + 1);
        goto done;
    }
    ret = z;
    z = NULL; /* owned by the caller now */
done:
    if (fd >= 0)
        close(fd);
    free(z);
    return ret;
}

void cron_zone_close(cron_zone_t *z)
{
    free(z);
}

const char *cron_zone_name(const cron_zone_t *z)
{
    return z->name;
}

/* One lock for TZ: the C library's local time is process-wide state. */
static pthread_mutex_t tz_lock = PTHREAD_MUTEX_INITIALIZER;

/* What zone_enter replaced. */
struct tz_saved {
    int was_set;
    char *value; /* owned; the previous TZ when was_set */
};

/* Takes tz_lock and makes z the C library's local zone. On success the caller must call
 * zone_leave(saved). Returns 0, or -1 with errstr (and the lock released). */
static int zone_enter(const cron_zone_t *z, struct tz_saved *saved,
                      char *errstr, size_t errstr_size)
{
    const char *old;

    saved->was_set = 0;
    saved->value = NULL;
    if (pthread_mutex_lock(&tz_lock) != 0) {
        util_errf(errstr, errstr_size, "time zone lock failed");
        return -1;
    }
    old = getenv("TZ");
    if (old != NULL) {
        saved->value = strdup(old);
        if (saved->value == NULL)
            goto fail;
        saved->was_set = 1;
    }
    if (setenv("TZ", z->tz, 1) != 0)
        goto fail;
    tzset();
    return 0;
fail:
    free(saved->value);
    saved->value = NULL;
    pthread_mutex_unlock(&tz_lock);
    util_errf(errstr, errstr_size, "time zone %s: out of memory", z->name);
    return -1;
}

/* Restores the TZ that zone_enter replaced and releases the lock. Returns 0, or -1 with
 * errstr if TZ could not be restored. */
static int zone_leave(struct tz_saved *saved, char *errstr, size_t errstr_size)
{
    int rc, err;

    rc = saved->was_set ? setenv("TZ", saved->value, 1) : unsetenv("TZ");
    err = errno;
    tzset();
    free(saved->value);
    saved->value = NULL;
    pthread_mutex_unlock(&tz_lock);
    if (rc != 0) {
        util_errf(errstr, errstr_size, "could not restore TZ: %s", strerror(err));
        return -1;
    }
    return 0;
}

/* UTC offset in seconds of the current zone at instant t. Returns 0, or -1. Caller holds
 * the zone (zone_enter). */
static int utc_offset(int64_t t, long *off)
{
    time_t tt = (time_t)t;
    struct tm tm;

    if (localtime_r(&tt, &tm) == NULL)
        return -1;
    *off = tm.tm_gmtoff;
    return 0;
}

/* Converts local wall-clock time L (seconds since 1970-01-01T00:00 local, i.e. the local
 * fields read as if they were UTC) to the first instant at which the wall clock reads L or
 * later: L's only occurrence, its first one in a fall-back overlap, or the end of a
 * spring-forward gap. Assumes at most one offset change within MAX_OFFSET_S of L. Returns 0
 * and *out (seconds since the epoch), or -1. Caller holds the zone. */
static int local_to_instant(int64_t L, int64_t *out)
{
    int64_t lo = L - MAX_OFFSET_S, hi = L + MAX_OFFSET_S, mid, change, t1, t2;
    long off_lo, off_hi, off_mid;

    /* Every instant before lo reads earlier than L, every one after hi reads later. */
    if (utc_offset(lo, &off_lo) != 0 || utc_offset(hi, &off_hi) != 0)
        return -1;
    if (off_lo == off_hi) {
        *out = L - off_lo;
        return 0;
    }
    /* One change in (lo, hi]: find its instant, the first second with the new offset. */
    while (hi - lo > 1) {
        mid = lo + (hi - lo) / 2;
        if (utc_offset(mid, &off_mid) != 0)
            return -1;
        if (off_mid == off_lo)
            lo = mid;
        else
            hi = mid;
    }
    change = hi;
    t1 = L - off_lo; /* L under the old offset */
    t2 = L - off_hi; /* L under the new offset */
    if (t1 < change)
        *out = t1;     /* before the change (first occurrence if the clock goes back) */
    else if (t2 >= change)
        *out = t2;     /* after the change */
    else
        *out = change; /* in the gap the clock jumped over */
    return 0;
}

static int day_matches(const cron_t *c, int month, int mday, int wday)
{
    int dom, dow;

    if (!(c->months & (1u << month)))
        return 0;
    dom = (c->days >> mday) & 1u;
    dow = (c->weekdays >> wday) & 1u;
    if (c->dom_star || c->dow_star)
        return dom && dow;
    return dom || dow;
}

static int check_ms(int64_t ms, const char *what, char *errstr, size_t errstr_size)
{
    if (ms < CRON_MIN_MS || ms > CRON_MAX_MS) {
        util_errf(errstr, errstr_size, "%s %lld is outside 1970..9999", what, (long long)ms);
        return -1;
    }
    return 0;
}

int cron_next(const cron_t *c, const cron_zone_t *z, int64_t after_ms, int64_t *next_ms,
              char *errstr, size_t errstr_size)
{
    struct tz_saved saved;
    struct tm tm;
    time_t tt;
    int64_t after_s, local_after, day, t = 0;
    int64_t y;
    int m, d, wday, h, mi, found = 0, ret = -1;
    long i;

    if (c == NULL || z == NULL || next_ms == NULL) {
        util_errf(errstr, errstr_size, "cron_next: NULL argument");
        return -1;
    }
    if (check_ms(after_ms, "cron_next: instant", errstr, errstr_size) != 0)
        return -1;
    after_s = floor_div(after_ms, 1000);
    if (zone_enter(z, &saved, errstr, errstr_size) != 0)
        return -1;

    tt = (time_t)after_s;
    if (localtime_r(&tt, &tm) == NULL) {
        util_errf(errstr, errstr_size, "cron_next: localtime failed");
        goto done;
    }
    /* Local times up to the wall-clock reading of after_s first occur at or before it:
     * start with the next one. */
    local_after = after_s + tm.tm_gmtoff;
    y = (int64_t)tm.tm_year + 1900;
    m = tm.tm_mon + 1;
    d = tm.tm_mday;
    day = days_from_civil(y, m, d);
    wday = weekday_of(day);

    for (i = 0; i <= CRON_SEARCH_DAYS && !found; i++) {
        if (day_matches(c, m, d, wday)) {
            for (h = 0; h < 24 && !found; h++) {
                if (!(c->hours & (UINT32_C(1) << h)))
                    continue;
                for (mi = 0; mi < 60; mi++) {
                    int64_t L = day * SECS_PER_DAY + h * 3600 + mi * 60;

                    if (!(c->minutes & (UINT64_C(1) << mi)) || L <= local_after)
                        continue;
                    if (local_to_instant(L, &t) != 0) {
                        util_errf(errstr, errstr_size, "cron_next: localtime failed");
                        goto done;
                    }
                    /* Local times map to instants in order, so the first one past after_s
                     * is the answer. */
                    if (t > after_s) {
                        found = 1;
                        break;
                    }
                }
            }
        }
        day++;
        wday = (wday + 1) % 7;
        if (++d > days_in_month(y, m)) {
            d = 1;
            if (++m > 12) {
                m = 1;
                y++;
            }
        }
    }
    if (!found) {
        util_errf(errstr, errstr_size, "no match within 400 years (is the day-of-month "
                  "possible in the months given?)");
        goto done;
    }
    *next_ms = t * 1000;
    ret = 0;
done:
    if (zone_leave(&saved, errstr, errstr_size) != 0)
        ret = -1;
    return ret;
}

int cron_local_date(const cron_zone_t *z, int64_t at_ms, char out[11])
{
    struct tz_saved saved;
    struct tm tm;
    time_t tt;
    int n, ret = -1;

    if (out == NULL)
        return -1;
    out[0] = '\0';
    if (z == NULL || at_ms < CRON_MIN_MS || at_ms > CRON_MAX_MS)
        return -1;
    if (zone_enter(z, &saved, NULL, 0) != 0)
        return -1;
    tt = (time_t)floor_div(at_ms, 1000);
    if (localtime_r(&tt, &tm) == NULL)
        goto done;
    n = snprintf(out, 11, "%04d-%02d-%02d", tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday);
    if (n < 0 || n >= 11) {
        out[0] = '\0';
        goto done;
    }
    ret = 0;
done:
    if (zone_leave(&saved, NULL, 0) != 0) {
        out[0] = '\0';
        ret = -1;
    }
    return ret;
}

/* Parses exactly "YYYY-MM-DD" (a real date, years 1970..9999). Returns 0, or -1. */
static int parse_date(const char *s, int *y, int *m, int *d)
{
    int i, v[3] = { 0, 0, 0 }, k = 0;

    if (strnlen(s, 11) != 10 || s[4] != '-' || s[7] != '-')
        return -1;
    for (i = 0; i < 10; i++) {
        if (i == 4 || i == 7) {
            k++;
            continue;
        }
        if (!is_digit(s[i]))
            return -1;
        v[k] = v[k] * 10 + (s[i] - '0');
    }
    if (v[0] < 1970 || v[1] < 1 || v[1] > 12 || v[2] < 1 || v[2] > days_in_month(v[0], v[1]))
        return -1;
    *y = v[0];
    *m = v[1];
    *d = v[2];
    return 0;
}

int cron_local_time_ms(const cron_zone_t *z, const char *date, int hour, int minute,
                       int64_t *out_ms, char *errstr, size_t errstr_size)
{
    struct tz_saved saved;
    int64_t t = 0;
    int y, m, d, ret = -1;

    if (z == NULL || date == NULL || out_ms == NULL) {
        util_errf(errstr, errstr_size, "cron_local_time_ms: NULL argument");
        return -1;
    }
    if (parse_date(date, &y, &m, &d) != 0) {
        util_errf(errstr, errstr_size, "'%.16s' is not a date YYYY-MM-DD (1970..9999)", date);
        return -1;
    }
    if (hour < 0 || hour > 23 || minute < 0 || minute > 59) {
        util_errf(errstr, errstr_size, "%d:%d is not a time of day (00:00..23:59)", hour,
                  minute);
        return -1;
    }
    if (zone_enter(z, &saved, errstr, errstr_size) != 0)
        return -1;
    if (local_to_instant(days_from_civil(y, m, d) * SECS_PER_DAY + hour * 3600 + minute * 60,
                         &t) != 0) {
        util_errf(errstr, errstr_size, "cron_local_time_ms: localtime failed");
        goto done;
    }
    *out_ms = t * 1000;
    ret = 0;
done:
    if (zone_leave(&saved, errstr, errstr_size) != 0)
        ret = -1;
    return ret;
}

/* ---------------------------------------------------------------------------------------
 * Deadlines. */

int cron_parse_deadline(const char *text, cron_deadline_t *out, char *errstr,
                        size_t errstr_size)
{
    cron_deadline_t dl;
    char err[160] = "";
    long long ms = 0;
    size_t len, hlen;

    if (text == NULL || out == NULL) {
        util_errf(errstr, errstr_size, "cron_parse_deadline: NULL argument");
        return -1;
    }
    memset(&dl, 0, sizeof(dl));
    len = strnlen(text, 64);
    if (memchr(text, ':', len) != NULL) {
        /* "H:MM" or "HH:MM" */
        hlen = (size_t)((const char *)memchr(text, ':', len) - text);
        if ((hlen != 1 && hlen != 2) || len != hlen + 3 || !is_digit(text[0]) ||
            (hlen == 2 && !is_digit(text[1])) || !is_digit(text[hlen + 1]) ||
            !is_digit(text[hlen + 2])) {
            util_errf(errstr, errstr_size, "deadline '%.64s' is not a time HH:MM or a "
                      "duration (80m, 5s, 2h)", text);
            return -1;
        }
        dl.kind = CRON_DEADLINE_CLOCK;
        dl.hour = hlen == 2 ? (text[0] - '0') * 10 + (text[1] - '0') : text[0] - '0';
        dl.minute = (text[hlen + 1] - '0') * 10 + (text[hlen + 2] - '0');
        if (dl.hour > 23 || dl.minute > 59) {
            util_errf(errstr, errstr_size, "deadline '%s' is not a time of day "
                      "(00:00..23:59)", text);
            return -1;
        }
    } else {
        if (cfg_parse_duration_ms(text, &ms, err, sizeof(err)) != 0) {
            util_errf(errstr, errstr_size, "deadline: %s, nor a time HH:MM", err);
            return -1;
        }
        if (ms <= 0) {
            util_errf(errstr, errstr_size, "deadline '%s' must be greater than 0", text);
            return -1;
        }
        dl.kind = CRON_DEADLINE_AFTER;
        dl.after_ms = ms;
    }
    *out = dl;
    return 0;
}

int cron_deadline_at(const cron_deadline_t *d, const cron_zone_t *z, int64_t run_ms,
                     int64_t *deadline_ms, char *errstr, size_t errstr_size)
{
    struct tz_saved saved;
    struct tm tm;
    time_t tt;
    char date[11];
    int64_t at = 0;

    if (d == NULL || deadline_ms == NULL || (d->kind == CRON_DEADLINE_CLOCK && z == NULL)) {
        util_errf(errstr, errstr_size, "cron_deadline_at: NULL argument");
        return -1;
    }
    if (check_ms(run_ms, "cron_deadline_at: run", errstr, errstr_size) != 0)
        return -1;
    if (d->kind == CRON_DEADLINE_AFTER) {
        if (d->after_ms <= 0 || d->after_ms > CRON_MAX_MS - run_ms) {
            util_errf(errstr, errstr_size, "deadline %lld ms after the run is out of range",
                      (long long)d->after_ms);
            return -1;
        }
        *deadline_ms = run_ms + d->after_ms;
        return 0;
    }
    if (d->kind != CRON_DEADLINE_CLOCK) {
        util_errf(errstr, errstr_size, "cron_deadline_at: bad deadline kind");
        return -1;
    }
    if (cron_local_date(z, run_ms, date) != 0) {
        util_errf(errstr, errstr_size, "cron_deadline_at: local date failed");
        return -1;
    }
    if (cron_local_time_ms(z, date, d->hour, d->minute, &at, errstr, errstr_size) != 0)
        return -1;
    if (at <= run_ms) {
        /* The run's local time, for the message. */
        if (zone_enter(z, &saved, errstr, errstr_size) != 0)
            return -1;
        tt = (time_t)floor_div(run_ms, 1000);
        if (localtime_r(&tt, &tm) == NULL)
            memset(&tm, 0, sizeof(tm));
        if (zone_leave(&saved, errstr, errstr_size) != 0)
            return -1;
        util_errf(errstr, errstr_size, "deadline %02d:%02d is not after the run at %s "
                  "%02d:%02d %s", d->hour, d->minute, date, tm.tm_hour, tm.tm_min, z->name);
        return -1;
    }
    *deadline_ms = at;
    return 0;
}
