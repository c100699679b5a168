/* daily: the open-data feed's calendar (today in a time zone, days before it) and the
 * /daily document, good or spoilt. Pure functions. */
#include "open_data.h"

#include <stdio.h>
#include <string.h>
#include <sys/stat.h>

#include "util.h"

static const char *const kind_names[OD_NKINDS] = {
    "ok", "not_published", "wrong_date", "all_zero", "invalid", "down", "decreasing",
    "refused"
};

const char *od_kind_name(enum od_kind k)
{
    if ((int)k < 0 || (int)k >= OD_NKINDS)
        return "unknown";
    return kind_names[k];
}

int od_kind_parse(const char *name, enum od_kind *out)
{
    int i;

    if (name == NULL)
        return -1;
    for (i = 0; i < OD_NKINDS; i++) {
        if (strcmp(name, kind_names[i]) == 0) {
            *out = (enum od_kind)i;
            return 0;
        }
    }
    return -1;
}

/* ---------------------------------------------------------------------------------- */
/* Dates */

#define OD_YEAR_MIN 1900
#define OD_YEAR_MAX 9999

static int is_digit(char c)
{
    return c >= '0' && c <= '9';
}

static int is_leap(long y)
{
    return (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
}

static int days_in_month(long y, int m)
{
    static const int days[12] = { 31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31 };

    return m == 2 && is_leap(y) ? 29 : days[m - 1];
}

/* Reads "YYYY-MM-DD" (nothing before or after). Returns 0 for a real date in range. */
static int date_parse(const char *s, long *y, int *m, int *d)
{
    static const char shape[] = "dddd-dd-dd";
    size_t i;

    if (s == NULL || strlen(s) != OD_DATE_LEN)
        return -1;
    for (i = 0; i < OD_DATE_LEN; i++) {
        if (shape[i] == 'd' ? !is_digit(s[i]) : s[i] != shape[i])
            return -1;
    }
    *y = (s[0] - '0') * 1000L + (s[1] - '0') * 100L + (s[2] - '0') * 10L + (s[3] - '0');
    *m = (s[5] - '0') * 10 + (s[6] - '0');
    *d = (s[8] - '0') * 10 + (s[9] - '0');
    if (*y < OD_YEAR_MIN || *y > OD_YEAR_MAX || *m < 1 || *m > 12 || *d < 1 ||
        *d > days_in_month(*y, *m))
        return -1;
    return 0;
}

int od_date_valid(const char *s)
{
    long y;
    int m, d;

    return date_parse(s, &y, &m, &d) == 0;
}

/* Days since 1970-01-01 of a proleptic Gregorian date, and back (H. Hinnant's
 * days_from_civil / civil_from_days): integer arithmetic, no time_t or time zone. */
static long days_from_civil(long y, int m, int d)
{
    long era, yoe, doy, doe;

    y -= m <= 2;
    era = (y >= 0 ? y : y - 399) / 400;
    yoe = y - era * 400;
    doy = (153L * (m > 2 ? m - 3 : m + 9) + 2) / 5 + d - 1;
    doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    return era * 146097 + doe - 719468;
}

static void civil_from_days(long z, long *y, int *m, int *d)
{
    long era, doe, yoe, doy, mp;

    z += 719468;
    era = (z >= 0 ? z : z - 146096) / 146097;
    doe = z - era * 146097;
    yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
    doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    mp = (5 * doy + 2) / 153;
    *d = (int)(doy - (153 * mp + 2) / 5 + 1);
    *m = (int)(mp < 10 ? mp + 3 : mp - 9);
    *y = yoe + era * 400 + (*m <= 2);
}

/* Writes y-m-d into out. Returns 0, or -1 when the year is out of range or out too small. */
static int date_format(long y, int m, int d, char *out, size_t out_size)
{
    int n;

    if (y < OD_YEAR_MIN || y > OD_YEAR_MAX)
        return -1;
    n = snprintf(out, out_size, "%04ld-%02d-%02d", y, m, d);
    return n < 0 || (size_t)n >= out_size ? -1 : 0;
}

int od_date_add_days(const char *ymd, int days, char *out, size_t out_size)
{
    long y;
    int m, d;

    if (date_parse(ymd, &y, &m, &d) != 0)
        return -1;
    civil_from_days(days_from_civil(y, m, d) + days, &y, &m, &d);
    return date_format(y, m, d, out, out_size);
}

int od_today(const char *pinned, time_t now, char *out, size_t out_size)
{
    struct tm tm;
    int n;

    if (pinned != NULL && pinned[0] != '\0') {
        if (!od_date_valid(pinned))
            return -1;
        n = snprintf(out, out_size, "%s", pinned);
        return n < 0 || (size_t)n >= out_size ? -1 : 0;
    }
    if (localtime_r(&now, &tm) == NULL)
        return -1;
    return date_format(tm.tm_year + 1900L, tm.tm_mon + 1, tm.tm_mday, out, out_size);
}

/* ---------------------------------------------------------------------------------- */
/* Time zones */

static int is_alpha(char c)
{
    return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z');
}

/* Reads 1 or 2 digits in [0, max] at *p and moves past them. Returns 0 or -1. */
static int read_num(const char **p, int max)
{
    int v = 0, n = 0;

    while (n < 2 && is_digit(**p)) {
        v = v * 10 + (**p - '0');
        (*p)++;
        n++;
    }
    return n > 0 && v <= max ? 0 : -1;
}

/* Returns 1 for a POSIX TZ with a standard-time name and offset only ("KST-9", "UTC0",
 * "<+0530>-5:30"): no daylight-saving rules, which would need more checking than this
 * stand-in deserves. */
static int posix_fixed_tz(const char *s)
{
    const char *p = s;
    size_t n = 0;

    if (*p == '<') {
        for (p++; is_alpha(*p) || is_digit(*p) || *p == '+' || *p == '-'; p++)
            n++;
        if (*p != '>' || n < 3)
            return 0;
        p++;
    } else {
        for (; is_alpha(*p); p++)
            n++;
        if (n < 3)
            return 0;
    }
    if (*p == '+' || *p == '-')
        p++;
    if (read_num(&p, 24) != 0)
        return 0;
    if (*p == ':') {
        p++;
        if (read_num(&p, 59) != 0)
            return 0;
        if (*p == ':') {
            p++;
            if (read_num(&p, 59) != 0)
                return 0;
        }
    }
    return *p == '\0';
}

/* Returns 1 when name can only mean a file below the zoneinfo directory: letters, digits,
 * '_', '+', '-' and '/' separators, no empty, "." or ".." component. */
static int zone_name_ok(const char *name)
{
    const char *p;

    if (name[0] == '\0' || name[0] == '/' || strstr(name, "//") != NULL)
        return 0;
    for (p = name; *p != '\0'; p++) {
        if (!is_alpha(*p) && !is_digit(*p) && *p != '_' && *p != '+' && *p != '-' &&
            *p != '/')
            return 0;
    }
    return name[strlen(name) - 1] != '/';
}

/* Returns 1 when path is a regular file that starts like a compiled zone ("TZif"). */
static int is_tzif(const char *path)
{
    struct stat sb;
    char magic[4];
    FILE *f;
    int ok = 0;

    if (stat(path, &sb) != 0 || !S_ISREG(sb.st_mode))
        return 0;
    f = fopen(path, "rb");
    if (f == NULL)
        return 0;
    ok = fread(magic, 1, sizeof(magic), f) == sizeof(magic) &&
         memcmp(magic, "TZif", sizeof(magic)) == 0;
    fclose(f);
    return ok;
}

int od_tz_resolve(const char *name, const char *zoneinfo_dir, char *out, size_t out_size,
                  char *errstr, size_t errstr_size)
{
    /* Zones that have a fixed-offset equivalent, for machines without tzdata. Korea has
     * kept UTC+9 without daylight-saving time since 1988. */
    static const char *const aliases[][2] = {
        { "Asia/Seoul", "KST-9" }, { "UTC", "UTC0" }, { "Etc/UTC", "UTC0" },
    };
    const char *chosen = NULL;
    char path[512];
    size_t len = name != NULL ? strlen(name) : 0, i;
    int n;

    if (len == 0 || len > OD_TZ_MAX) {
        util_errf(errstr, errstr_size, "a time zone must be 1 to %d characters", OD_TZ_MAX);
        return -1;
    }
    if (zone_name_ok(name)) {
        n = snprintf(path, sizeof(path), "%s/%s", zoneinfo_dir, name);
        if (n > 0 && (size_t)n < sizeof(path) && is_tzif(path))
            chosen = name;
    }
    if (chosen == NULL && posix_fixed_tz(name))
        chosen = name;
    for (i = 0; chosen == NULL && i < sizeof(aliases) / sizeof(aliases[0]); i++) {
        if (strcmp(name, aliases[i][0]) == 0)
            chosen = aliases[i][1];
    }
    if (chosen == NULL) {
        util_errf(errstr, errstr_size,
                  "'%s' is not a time zone: no zone file of that name under %s (is tzdata "
                  "installed?) and not a fixed offset such as KST-9 or UTC0", name,
                  zoneinfo_dir);
        return -1;
    }
    n = snprintf(out, out_size, "%s", chosen);
    if (n < 0 || (size_t)n >= out_size) {
        util_errf(errstr, errstr_size, "time zone name too long");
        return -1;
    }
    return 0;
}

/* ---------------------------------------------------------------------------------- */
/* The document */

json_t *od_daily_json(const struct od_answer *a)
{
    struct od_figures f = a->figures;
    json_t *o;
    int rc = 0;

    if (a->served == OD_DOWN)
        return NULL;
    if (a->served == OD_ALL_ZERO)
        memset(&f, 0, sizeof(f));
    if (a->served == OD_DECREASING)
        f.confirmed = f.confirmed > OD_DECREASE ? f.confirmed - OD_DECREASE : 0;
    o = json_pack("{s:s, s:I, s:I, s:I, s:I}", "date", a->date,
                  "confirmed", (json_int_t)f.confirmed,
                  "recovered", (json_int_t)f.recovered,
                  "in_treatment", (json_int_t)f.in_treatment,
                  "deaths", (json_int_t)f.deaths);
    if (o == NULL || a->served != OD_INVALID)
        return o;
    /* One way of being wrong after another, so a client meets them all. The _new setters
     * consume the value even when they fail. */
    switch (a->invalid_seq % 4) {
    case 0:
        rc = json_object_del(o, "deaths");
        break;
    case 1:
        rc = json_object_set_new(o, "recovered", json_integer(-1));
        break;
    case 2:
        rc = json_object_set_new(o, "in_treatment", json_string("1234"));
        break;
    default:
        rc = json_object_set_new(o, "confirmed", json_real((double)f.confirmed + 0.5));
        break;
    }
    if (rc != 0) {
        json_decref(o);
        return NULL;
    }
    return o;
}

/* One item of the XML answer: the fields the portal sends, in its order. */
static void xml_item(strbuf_t *out, const char *date, const struct od_figures *f, int seq,
                     int spoil)
{
    char dt[9];

    snprintf(dt, sizeof(dt), "%.4s%.2s%.2s", date, date + 5, date + 8);
    strbuf_adds(out, "<item><accDefRate>1.23</accDefRate><accExamCnt>17000000</accExamCnt>");
    if (spoil == 2)
        strbuf_adds(out, "<careCnt>many</careCnt>");
    else
        strbuf_addf(out, "<careCnt>%lld</careCnt>", f->in_treatment);
    strbuf_addf(out, "<clearCnt>%lld</clearCnt><createDt>%s 09:38:52.383</createDt>",
                f->recovered, date);
    if (spoil == 1)
        strbuf_adds(out, "<deathCnt>-1</deathCnt>");
    else
        strbuf_addf(out, "<deathCnt>%lld</deathCnt>", f->deaths);
    if (spoil != 3)
        strbuf_addf(out, "<decideCnt>%lld</decideCnt>", f->confirmed);
    strbuf_addf(out, "<examCnt>12345</examCnt><resutlNegCnt>16000000</resutlNegCnt>"
                "<seq>%d</seq><stateDt>%s</stateDt><stateTime>00:00</stateTime>"
                "<updateDt>null</updateDt></item>", seq, dt);
}

int od_daily_xml(const struct od_answer *a, strbuf_t *out)
{
    struct od_figures f = a->figures, prev;
    char before[OD_DATE_LEN + 1];
    int spoil = 0;

    strbuf_reset(out);
    if (a->served == OD_DOWN)
        return -1;
    strbuf_adds(out, "<?xml version=\"1.0\" encoding=\"UTF-8\" standalone=\"yes\"?>");
    if (a->served == OD_REFUSED) {
        strbuf_adds(out, "<OpenAPI_ServiceResponse><cmmMsgHeader><errMsg>SERVICE ERROR"
                    "</errMsg><returnAuthMsg>SERVICE_KEY_IS_NOT_REGISTERED_ERROR"
                    "</returnAuthMsg><returnReasonCode>30</returnReasonCode></cmmMsgHeader>"
                    "</OpenAPI_ServiceResponse>");
        goto done;
    }
    if (a->served == OD_INVALID) {
        spoil = (int)(a->invalid_seq % 4) + 1;   /* 1 deathCnt, 2 careCnt, 3 decideCnt, 4 */
        if (spoil == 4) {
            strbuf_adds(out, "<response><header><resultCode>00</resultCode>");
            goto done;   /* cut short: not XML */
        }
    }
    prev = f;
    prev.confirmed = f.confirmed > OD_DAILY_CONFIRMED ? f.confirmed - OD_DAILY_CONFIRMED : 0;
    prev.recovered = f.recovered > OD_DAILY_RECOVERED ? f.recovered - OD_DAILY_RECOVERED : 0;
    prev.deaths = f.deaths > OD_DAILY_DEATHS ? f.deaths - OD_DAILY_DEATHS : 0;
    if (a->served == OD_ALL_ZERO)
        memset(&f, 0, sizeof(f));
    if (a->served == OD_DECREASING) {
        /* below the day before's, in the same answer */
        prev = f;
        f.confirmed = f.confirmed > OD_DECREASE ? f.confirmed - OD_DECREASE : 0;
    }
    if (od_date_add_days(a->date, -1, before, sizeof(before)) != 0)
        return -1;
    strbuf_adds(out, "<response><header><resultCode>00</resultCode><resultMsg>NORMAL SERVICE."
                "</resultMsg></header><body><items>");
    xml_item(out, a->date, &f, 802, spoil);
    xml_item(out, before, &prev, 801, 0);
    strbuf_adds(out, "</items><numOfRows>10</numOfRows><pageNo>1</pageNo>"
                "<totalCount>2</totalCount></body></response>");
done:
    if (out->failed) {
        strbuf_reset(out);
        return -1;
    }
    return 0;
}
