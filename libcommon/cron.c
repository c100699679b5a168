/* cron: 5-field cron expressions, their next run in an IANA time zone (through tz.c), and
 * deadlines. */
#include "cron.h"

#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cfg.h"
#include "tz.h"
#include "util.h"

#define SECS_PER_DAY INT64_C(86400)

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
 * Zones: tz.c's, loaded once and immutable, so every conversion below is a pure function. */

cron_zone_t *cron_zone_open(const char *name, char *errstr, size_t errstr_size)
{
    if (name == NULL) {
        util_errf(errstr, errstr_size, "cron_zone_open: NULL name");
        return NULL;
    }
    return tz_zone_open(name, errstr, errstr_size);
}

void cron_zone_close(cron_zone_t *z)
{
    tz_zone_close(z);
}

const char *cron_zone_name(const cron_zone_t *z)
{
    return tz_zone_name(z);
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
    tz_time_t now, lt;
    int64_t after_s, local_after, day, L, t = 0;
    int y, m, d, wday, h, mi;
    long i;

    if (c == NULL || z == NULL || next_ms == NULL) {
        util_errf(errstr, errstr_size, "cron_next: NULL argument");
        return -1;
    }
    if (check_ms(after_ms, "cron_next: instant", errstr, errstr_size) != 0)
        return -1;
    after_s = after_ms / 1000; /* after_ms >= 0: this is the floor */
    if (tz_utc_to_local(z, after_s, &now) != 0) {
        util_errf(errstr, errstr_size, "cron_next: local time failed");
        return -1;
    }
    /* Local times up to the wall-clock reading of after_s first occur at or before it:
     * start with the next one. */
    local_after = after_s + now.utoff;
    y = now.year;
    m = now.month;
    d = now.day;
    wday = now.wday;
    day = tz_days_from_civil(y, m, d);

    for (i = 0; i <= CRON_SEARCH_DAYS; i++) {
        for (h = 0; h < 24; h++) {
            if (!(c->hours & (UINT32_C(1) << h)) || !day_matches(c, m, d, wday))
                continue;
            for (mi = 0; mi < 60; mi++) {
                L = day * SECS_PER_DAY + h * 3600 + mi * 60;
                if (!(c->minutes & (UINT64_C(1) << mi)) || L <= local_after)
                    continue;
                memset(&lt, 0, sizeof(lt));
                lt.year = y;
                lt.month = m;
                lt.day = d;
                lt.hour = h;
                lt.minute = mi;
                if (tz_local_to_utc(z, &lt, &t) != 0) {
                    util_errf(errstr, errstr_size, "cron_next: local time failed");
                    return -1;
                }
                /* Local times map to instants in order, so the first one past after_s is
                 * the answer. */
                if (t > after_s) {
                    *next_ms = t * 1000;
                    return 0;
                }
            }
        }
        day++;
        wday = (wday + 1) % 7;
        if (++d > tz_days_in_month(y, m)) {
            d = 1;
            if (++m > 12) {
                m = 1;
                y++;
            }
        }
    }
    util_errf(errstr, errstr_size, "no match within 400 years (is the day-of-month possible "
              "in the months given?)");
    return -1;
}

int cron_local_date(const cron_zone_t *z, int64_t at_ms, char out[11])
{
    tz_time_t lt;
    int n;

    if (out == NULL)
        return -1;
    out[0] = '\0';
    if (z == NULL || at_ms < CRON_MIN_MS || at_ms > CRON_MAX_MS ||
        tz_utc_to_local(z, at_ms / 1000, &lt) != 0)
        return -1;
    n = snprintf(out, 11, "%04d-%02d-%02d", lt.year, lt.month, lt.day);
    if (n < 0 || n >= 11) {
        out[0] = '\0';
        return -1;
    }
    return 0;
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
    if (v[0] < 1970 || v[1] < 1 || v[1] > 12 || v[2] < 1 ||
        v[2] > tz_days_in_month(v[0], v[1]))
        return -1;
    *y = v[0];
    *m = v[1];
    *d = v[2];
    return 0;
}

int cron_local_time_ms(const cron_zone_t *z, const char *date, int hour, int minute,
                       int64_t *out_ms, char *errstr, size_t errstr_size)
{
    tz_time_t lt;
    int64_t t = 0;

    if (z == NULL || date == NULL || out_ms == NULL) {
        util_errf(errstr, errstr_size, "cron_local_time_ms: NULL argument");
        return -1;
    }
    memset(&lt, 0, sizeof(lt));
    if (parse_date(date, &lt.year, &lt.month, &lt.day) != 0) {
        util_errf(errstr, errstr_size, "'%.16s' is not a date YYYY-MM-DD (1970..9999)", date);
        return -1;
    }
    if (hour < 0 || hour > 23 || minute < 0 || minute > 59) {
        util_errf(errstr, errstr_size, "%d:%d is not a time of day (00:00..23:59)", hour,
                  minute);
        return -1;
    }
    lt.hour = hour;
    lt.minute = minute;
    if (tz_local_to_utc(z, &lt, &t) != 0) {
        util_errf(errstr, errstr_size, "cron_local_time_ms: local time failed");
        return -1;
    }
    *out_ms = t * 1000;
    return 0;
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
    tz_time_t run;
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
        if (tz_utc_to_local(z, run_ms / 1000, &run) != 0)
            memset(&run, 0, sizeof(run));
        util_errf(errstr, errstr_size, "deadline %02d:%02d is not after the run at %s "
                  "%02d:%02d %s", d->hour, d->minute, date, run.hour, run.minute,
                  tz_zone_name(z));
        return -1;
    }
    *deadline_ms = at;
    return 0;
}
