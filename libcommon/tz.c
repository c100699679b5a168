/* tz: IANA zones from TZif files (RFC 8536) and their POSIX TZ footer rules, converted
 * without the C library's process-wide TZ state. */
#include "tz.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "util.h"

#define SECS_PER_DAY INT64_C(86400)

/* Larger than any UTC offset a zone has ever used (Asia/Manila's LMT, -15:56). */
#define MAX_OFFSET_S (18 * 3600)

/* Zone files are a few kilobytes; anything much larger is not one. */
#define TZIF_MAX_BYTES (1024 * 1024)

/* RFC 8536: a UTC offset is in -89999..93599 (-24:59:59..25:59:59). */
#define UTOFF_MIN (-89999)
#define UTOFF_MAX 93599

struct ttype {
    int32_t utoff; /* seconds east of UTC */
    int isdst;
};

/* One end of a POSIX TZ daylight saving rule: a day of the year and a local time. */
struct rule_day {
    char kind;    /* 'J': Julian day 1..365, Feb 29 never counted; 'D': day 0..365 counting
                   * Feb 29; 'M': day d of week w (5 = last) of month m */
    int n;        /* 'J', 'D' */
    int m, w, d;  /* 'M' */
    int32_t time; /* seconds after local midnight of that day, -167h..167h */
};

/* A POSIX TZ string such as "EST5EDT,M3.2.0,M11.1.0", with offsets east of UTC. */
struct posix_tz {
    struct ttype std, dst;
    int has_dst;
    struct rule_day start, end; /* DST starts at start (standard time), ends at end (DST) */
};

struct tz_zone {
    char name[TZ_NAME_MAX + 1];
    size_t timecnt;
    int64_t *trans;      /* owned; timecnt transition instants, ascending */
    unsigned char *idx;  /* owned; timecnt indexes into types */
    size_t typecnt;
    struct ttype *types; /* owned; typecnt >= 1 */
    int has_footer;      /* footer is used after the last transition */
    struct posix_tz footer;
};

/* ---------------------------------------------------------------------------------------
 * Calendar arithmetic (proleptic Gregorian, no time zone). */

static int is_leap(int64_t y)
{
    return (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
}

int tz_days_in_month(int64_t y, int m)
{
    static const int days[12] = { 31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31 };

    return (m == 2 && is_leap(y)) ? 29 : days[m - 1];
}

/* Howard Hinnant's days_from_civil. */
int64_t tz_days_from_civil(int64_t y, int m, int d)
{
    int64_t era, yoe, doy, doe;

    y -= m <= 2;
    era = (y >= 0 ? y : y - 399) / 400;
    yoe = y - era * 400;
    doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
    doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    return era * 146097 + doe - 719468;
}

/* The inverse: the date of day number days (Hinnant's civil_from_days). */
static void civil_from_days(int64_t days, int64_t *y, int *m, int *d)
{
    int64_t z = days + 719468, era, doe, yoe, doy, mp;

    era = (z >= 0 ? z : z - 146096) / 146097;
    doe = z - era * 146097;
    yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
    doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    mp = (5 * doy + 2) / 153;
    *d = (int)(doy - (153 * mp + 2) / 5 + 1);
    *m = (int)(mp < 10 ? mp + 3 : mp - 9);
    *y = yoe + era * 400 + (*m <= 2);
}

/* Day of week of a day number, 0 = Sunday (1970-01-01 was a Thursday). */
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
 * POSIX TZ strings (the TZif footer), with RFC 8536's extensions (rule times -167h..167h). */

static int is_digit(char c)
{
    return c >= '0' && c <= '9';
}

static int is_alpha(char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z');
}

/* Reads a number of at most max_digits digits in lo..hi at *p. Returns 0, or -1. */
static int posix_num(const char **p, int max_digits, int lo, int hi, int *out)
{
    int v = 0, n = 0;

    while (is_digit(**p) && n < max_digits) {
        v = v * 10 + (**p - '0');
        (*p)++;
        n++;
    }
    if (n == 0 || is_digit(**p) || v < lo || v > hi)
        return -1;
    *out = v;
    return 0;
}

/* Reads [+-]hh[:mm[:ss]] with hours up to max_h into *secs. Returns 0, or -1. */
static int posix_hms(const char **p, int max_h, int32_t *secs)
{
    int sign = 1, h, m = 0, s = 0;

    if (**p == '+' || **p == '-') {
        sign = **p == '-' ? -1 : 1;
        (*p)++;
    }
    if (posix_num(p, 3, 0, max_h, &h) != 0)
        return -1;
    if (**p == ':') {
        (*p)++;
        if (posix_num(p, 2, 0, 59, &m) != 0)
            return -1;
        if (**p == ':') {
            (*p)++;
            if (posix_num(p, 2, 0, 59, &s) != 0)
                return -1;
        }
    }
    *secs = sign * (h * 3600 + m * 60 + s);
    return 0;
}

/* Skips a zone abbreviation: 3 or more letters, or <...> of letters, digits, '+' and '-'. */
static int posix_abbr(const char **p)
{
    const char *s = *p;

    if (*s == '<') {
        s++;
        while (is_alpha(*s) || is_digit(*s) || *s == '+' || *s == '-')
            s++;
        if (*s != '>' || s - *p < 4)
            return -1;
        *p = s + 1;
        return 0;
    }
    while (is_alpha(*s))
        s++;
    if (s - *p < 3)
        return -1;
    *p = s;
    return 0;
}

/* Reads ",date[/time]" into *r. Returns 0, or -1. */
static int posix_rule_day(const char **p, struct rule_day *r)
{
    if (**p != ',')
        return -1;
    (*p)++;
    if (**p == 'M') {
        (*p)++;
        r->kind = 'M';
        if (posix_num(p, 2, 1, 12, &r->m) != 0 || *(*p)++ != '.' ||
            posix_num(p, 1, 1, 5, &r->w) != 0 || *(*p)++ != '.' ||
            posix_num(p, 1, 0, 6, &r->d) != 0)
            return -1;
    } else if (**p == 'J') {
        (*p)++;
        r->kind = 'J';
        if (posix_num(p, 3, 1, 365, &r->n) != 0)
            return -1;
    } else {
        r->kind = 'D';
        if (posix_num(p, 3, 0, 365, &r->n) != 0)
            return -1;
    }
    r->time = 2 * 3600;
    if (**p == '/') {
        (*p)++;
        if (posix_hms(p, 167, &r->time) != 0)
            return -1;
    }
    return 0;
}

/* Parses a whole POSIX TZ string s (such as "KST-9", "<+0530>-5:30" or
 * "CET-1CEST,M3.5.0,M10.5.0/3"). Returns 0, or -1. */
static int posix_parse(const char *s, struct posix_tz *out)
{
    struct posix_tz tz;
    int32_t off;

    memset(&tz, 0, sizeof(tz));
    if (posix_abbr(&s) != 0 || posix_hms(&s, 24, &off) != 0)
        return -1;
    tz.std.utoff = -off; /* POSIX offsets count west of UTC */
    if (*s != '\0') {
        tz.has_dst = 1;
        tz.dst.isdst = 1;
        if (posix_abbr(&s) != 0)
            return -1;
        tz.dst.utoff = tz.std.utoff + 3600;
        if (*s != ',' && *s != '\0') {
            if (posix_hms(&s, 24, &off) != 0)
                return -1;
            tz.dst.utoff = -off;
        }
        if (*s == '\0') {
            /* No rule: the United States' since 2007, as tzcode assumes. */
            const char *us = ",M3.2.0,M11.1.0";

            if (posix_rule_day(&us, &tz.start) != 0 || posix_rule_day(&us, &tz.end) != 0)
                return -1;
        } else if (posix_rule_day(&s, &tz.start) != 0 || posix_rule_day(&s, &tz.end) != 0 ||
                   *s != '\0') {
            return -1;
        }
    }
    *out = tz;
    return 0;
}

/* The instant (seconds since the epoch) of rule day r in year y, whose local time is read
 * with offset utoff (the one in effect just before the change). */
static int64_t rule_instant(const struct rule_day *r, int64_t y, int32_t utoff)
{
    int64_t jan1 = tz_days_from_civil(y, 1, 1), day, first;

    if (r->kind == 'J') {
        day = jan1 + r->n - 1 + (is_leap(y) && r->n >= 60);
    } else if (r->kind == 'D') {
        day = jan1 + r->n;
    } else {
        first = tz_days_from_civil(y, r->m, 1);
        day = first + (r->d - weekday_of(first) + 7) % 7 + (int64_t)(r->w - 1) * 7;
        while (day >= first + tz_days_in_month(y, r->m))
            day -= 7; /* week 5 is the last such weekday, which may be the 4th */
    }
    return day * SECS_PER_DAY + r->time - utoff;
}

/* The local time type of instant t under a POSIX TZ rule. */
static struct ttype posix_type_at(const struct posix_tz *tz, int64_t t)
{
    int64_t y, start, end;
    int m, d, in_dst;

    if (!tz->has_dst)
        return tz->std;
    civil_from_days(floor_div(t + tz->std.utoff, SECS_PER_DAY), &y, &m, &d);
    start = rule_instant(&tz->start, y, tz->std.utoff);
    end = rule_instant(&tz->end, y, tz->dst.utoff);
    if (start < end)
        in_dst = t >= start && t < end;    /* northern: DST inside the year */
    else
        in_dst = !(t >= end && t < start); /* southern: DST across the new year */
    return in_dst ? tz->dst : tz->std;
}

/* The local time type of instant t in z: the transition table up to its last entry, the
 * footer rule after it; type 0 before the first transition (RFC 8536, 3.2). */
static struct ttype type_at(const tz_zone_t *z, int64_t t)
{
    size_t lo, hi, mid;

    if (z->timecnt == 0 || t > z->trans[z->timecnt - 1]) {
        if (z->has_footer)
            return posix_type_at(&z->footer, t);
        return z->timecnt == 0 ? z->types[0] : z->types[z->idx[z->timecnt - 1]];
    }
    if (t < z->trans[0])
        return z->types[0];
    /* The last transition at or before t: trans[lo] <= t < trans[hi]. */
    lo = 0;
    hi = z->timecnt - 1;
    if (t >= z->trans[hi])
        return z->types[z->idx[hi]];
    while (hi - lo > 1) {
        mid = lo + (hi - lo) / 2;
        if (z->trans[mid] <= t)
            lo = mid;
        else
            hi = mid;
    }
    return z->types[z->idx[lo]];
}

/* ---------------------------------------------------------------------------------------
 * TZif files (RFC 8536). */

struct reader {
    const unsigned char *p;
    size_t left;
};

/* Takes the next n bytes. Returns a pointer to them, or NULL if fewer are left. */
static const unsigned char *take(struct reader *r, size_t n)
{
    const unsigned char *b = r->p;

    if (n > r->left)
        return NULL;
    r->p += n;
    r->left -= n;
    return b;
}

static uint32_t be32(const unsigned char *b)
{
    return (uint32_t)b[0] << 24 | (uint32_t)b[1] << 16 | (uint32_t)b[2] << 8 | b[3];
}

static int64_t be64(const unsigned char *b)
{
    return (int64_t)((uint64_t)be32(b) << 32 | be32(b + 4));
}

struct tzif_counts {
    uint32_t isut, isstd, leap, time, type, chars;
};

/* Reads a 44-byte header. Returns its version ('\0', '2', '3', ...), or -1 if r holds no
 * header. */
static int tzif_header(struct reader *r, struct tzif_counts *c)
{
    const unsigned char *h = take(r, 44);

    if (h == NULL || memcmp(h, "TZif", 4) != 0)
        return -1;
    c->isut = be32(h + 20);
    c->isstd = be32(h + 24);
    c->leap = be32(h + 28);
    c->time = be32(h + 32);
    c->type = be32(h + 36);
    c->chars = be32(h + 40);
    return h[4];
}

/* Fills z's tables from TZif data. Returns NULL, or why the data is not a usable zone file
 * (a static string that follows "is not a zone file"). */
static const char *tzif_parse(tz_zone_t *z, const unsigned char *data, size_t len)
{
    struct reader r = { data, len };
    struct tzif_counts c;
    const unsigned char *b, *nl;
    char footer[256];
    size_t i, flen;
    int version;

    version = tzif_header(&r, &c);
    if (version < 0)
        return "";
    if (version < '2')
        return " (version 1: no 64-bit data)";
    /* Skip the 32-bit data block to the 64-bit header. */
    if (take(&r, (size_t)c.time * 5 + (size_t)c.type * 6 + c.chars + (size_t)c.leap * 8 +
                 c.isstd + c.isut) == NULL || tzif_header(&r, &c) < 0)
        return " (truncated)";
    if (c.leap != 0)
        return " (it counts leap seconds)";
    if (c.type == 0 || c.type > 256 || c.chars == 0 || (c.isstd != 0 && c.isstd != c.type) ||
        (c.isut != 0 && c.isut != c.type))
        return " (bad header)";
    z->timecnt = c.time;
    z->typecnt = c.type;
    z->trans = calloc(c.time + 1, sizeof(*z->trans));
    z->idx = calloc(c.time + 1, 1);
    z->types = calloc(c.type, sizeof(*z->types));
    if (z->trans == NULL || z->idx == NULL || z->types == NULL)
        return " (out of memory)";
    if ((b = take(&r, (size_t)c.time * 8)) == NULL)
        return " (truncated)";
    for (i = 0; i < c.time; i++) {
        z->trans[i] = be64(b + i * 8);
        if (i > 0 && z->trans[i] <= z->trans[i - 1])
            return " (transitions out of order)";
    }
    if ((b = take(&r, c.time)) == NULL)
        return " (truncated)";
    for (i = 0; i < c.time; i++) {
        if (b[i] >= c.type)
            return " (bad transition type)";
        z->idx[i] = b[i];
    }
    if ((b = take(&r, (size_t)c.type * 6)) == NULL)
        return " (truncated)";
    for (i = 0; i < c.type; i++) {
        z->types[i].utoff = (int32_t)be32(b + i * 6);
        z->types[i].isdst = b[i * 6 + 4];
        if (z->types[i].utoff < UTOFF_MIN || z->types[i].utoff > UTOFF_MAX ||
            z->types[i].isdst > 1 || b[i * 6 + 5] >= c.chars)
            return " (bad local time type)";
    }
    if (take(&r, (size_t)c.chars + c.isstd + c.isut) == NULL)
        return " (truncated)";
    /* The footer: "\n" TZ-string "\n"; an empty string means no rule. */
    if (r.left < 2 || r.p[0] != '\n' || (nl = memchr(r.p + 1, '\n', r.left - 1)) == NULL)
        return " (no footer)";
    flen = (size_t)(nl - (r.p + 1));
    if (flen >= sizeof(footer) || memchr(r.p + 1, '\0', flen) != NULL)
        return " (bad footer)";
    memcpy(footer, r.p + 1, flen);
    footer[flen] = '\0';
    if (flen > 0) {
        if (posix_parse(footer, &z->footer) != 0)
            return " (bad POSIX TZ string in its footer)";
        z->has_footer = 1;
    }
    return NULL;
}

/* ---------------------------------------------------------------------------------------
 * Zones. */

/* Returns 1 if name is a zone name we are willing to turn into a path, else 0 with errstr. */
static int zone_name_ok(const char *name, char *errstr, size_t errstr_size)
{
    size_t len = strnlen(name, TZ_NAME_MAX + 1), i, part = 0;

    if (len == 0) {
        util_errf(errstr, errstr_size, "time zone name is empty");
        return 0;
    }
    if (len > TZ_NAME_MAX) {
        util_errf(errstr, errstr_size, "time zone name is longer than %d characters",
                  TZ_NAME_MAX);
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

/* A new zone from TZif data; where names the data in errors ("/usr/share/zoneinfo/UTC"). */
static tz_zone_t *zone_from(const char *name, const char *where, const unsigned char *data,
                            size_t len, char *errstr, size_t errstr_size)
{
    tz_zone_t *z = NULL, *ret = NULL;
    const char *why;
    int n;

    z = calloc(1, sizeof(*z));
    if (z == NULL) {
        util_errf(errstr, errstr_size, "out of memory");
        goto done;
    }
    n = snprintf(z->name, sizeof(z->name), "%s", name);
    if (n <= 0 || (size_t)n >= sizeof(z->name)) {
        util_errf(errstr, errstr_size, "time zone name is empty or too long");
        goto done;
    }
    why = tzif_parse(z, data, len);
    if (why != NULL) {
        util_errf(errstr, errstr_size, "time zone '%s': %s is not a zone file%s", name,
                  where, why);
        goto done;
    }
    ret = z;
    z = NULL; /* owned by the caller now */
done:
    tz_zone_close(z);
    return ret;
}

tz_zone_t *tz_zone_from_tzif(const char *name, const unsigned char *data, size_t len,
                             char *errstr, size_t errstr_size)
{
    if (name == NULL || data == NULL) {
        util_errf(errstr, errstr_size, "tz_zone_from_tzif: NULL argument");
        return NULL;
    }
    return zone_from(name, "data", data, len, errstr, errstr_size);
}

tz_zone_t *tz_zone_open(const char *name, char *errstr, size_t errstr_size)
{
    char path[sizeof(TZ_ZONEINFO_DIR) + TZ_NAME_MAX + 2];
    unsigned char *data = NULL;
    tz_zone_t *ret = NULL;
    struct stat st;
    size_t have = 0;
    ssize_t n;
    int fd = -1, len;

    if (name == NULL) {
        util_errf(errstr, errstr_size, "tz_zone_open: NULL name");
        goto done;
    }
    if (!zone_name_ok(name, errstr, errstr_size))
        goto done;
    len = snprintf(path, sizeof(path), "%s/%s", TZ_ZONEINFO_DIR, name);
    if (len < 0 || (size_t)len >= sizeof(path)) {
        util_errf(errstr, errstr_size, "time zone name is too long");
        goto done;
    }
    fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        if (errno == ENOENT || errno == ENOTDIR)
            util_errf(errstr, errstr_size, "unknown time zone '%s' (no %s; is tzdata "
                      "installed?)", name, path);
        else
            util_errf(errstr, errstr_size, "time zone '%s': %s: %s", name, path,
                      strerror(errno));
        goto done;
    }
    if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode) || st.st_size < 44 ||
        st.st_size > TZIF_MAX_BYTES) {
        util_errf(errstr, errstr_size, "time zone '%s': %s is not a zone file", name, path);
        goto done;
    }
    data = malloc((size_t)st.st_size);
    if (data == NULL) {
        util_errf(errstr, errstr_size, "out of memory");
        goto done;
    }
    while (have < (size_t)st.st_size) {
        n = read(fd, data + have, (size_t)st.st_size - have);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0) {
            util_errf(errstr, errstr_size, "time zone '%s': %s: %s", name, path,
                      strerror(errno));
            goto done;
        }
        if (n == 0)
            break; /* shorter than it was: parse what is there */
        have += (size_t)n;
    }
    ret = zone_from(name, path, data, have, errstr, errstr_size);
done:
    if (fd >= 0)
        close(fd);
    free(data);
    return ret;
}

void tz_zone_close(tz_zone_t *z)
{
    if (z == NULL)
        return;
    free(z->trans);
    free(z->idx);
    free(z->types);
    free(z);
}

const char *tz_zone_name(const tz_zone_t *z)
{
    return z->name;
}

/* ---------------------------------------------------------------------------------------
 * Conversions. */

int tz_utc_to_local(const tz_zone_t *z, int64_t t, tz_time_t *out)
{
    struct ttype ty;
    int64_t local, days, secs, y;
    int m, d;

    if (z == NULL || out == NULL || t < TZ_MIN_S || t > TZ_MAX_S)
        return -1;
    ty = type_at(z, t);
    local = t + ty.utoff;
    days = floor_div(local, SECS_PER_DAY);
    secs = local - days * SECS_PER_DAY;
    civil_from_days(days, &y, &m, &d);
    out->year = (int)y;
    out->month = m;
    out->day = d;
    out->hour = (int)(secs / 3600);
    out->minute = (int)(secs / 60 % 60);
    out->second = (int)(secs % 60);
    out->wday = weekday_of(days);
    out->utoff = ty.utoff;
    out->isdst = ty.isdst;
    return 0;
}

int tz_local_to_utc(const tz_zone_t *z, const tz_time_t *local, int64_t *out)
{
    int64_t L, lo, hi, mid, change, t1, t2;
    int32_t off_lo, off_hi;

    if (z == NULL || local == NULL || out == NULL || local->year < TZ_YEAR_MIN ||
        local->year > TZ_YEAR_MAX || local->month < 1 || local->month > 12 ||
        local->day < 1 || local->day > tz_days_in_month(local->year, local->month) ||
        local->hour < 0 || local->hour > 23 || local->minute < 0 || local->minute > 59 ||
        local->second < 0 || local->second > 59)
        return -1;
    /* L: the local fields read as if they were UTC. */
    L = tz_days_from_civil(local->year, local->month, local->day) * SECS_PER_DAY +
        local->hour * 3600 + local->minute * 60 + local->second;
    /* Every instant before lo reads earlier than L, every one after hi reads later. */
    lo = L - MAX_OFFSET_S;
    hi = L + MAX_OFFSET_S;
    off_lo = type_at(z, lo).utoff;
    off_hi = type_at(z, hi).utoff;
    if (off_lo == off_hi) {
        *out = L - off_lo;
        return 0;
    }
    /* One change in (lo, hi]: find its instant, the first second with the new offset. */
    while (hi - lo > 1) {
        mid = lo + (hi - lo) / 2;
        if (type_at(z, mid).utoff == off_lo)
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
