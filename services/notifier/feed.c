/* feed: the daily figures from the open-data feed: fetching them and deciding whether they
 * are fit to send, with a reason code for every way they are not. */
#include "feed.h"

#include <stdio.h>
#include <string.h>

#include <jansson.h>

#include "httpc.h"
#include "strbuf.h"

#define FEED_USER_AGENT "dozen-notifier"

/* ---------------------------------------------------------------------------------- */
/* Reason codes */

static const struct {
    feed_reason_t reason;
    const char *code;
    const char *words;    /* for the "unavailable" SMS: at most 60 characters */
} reasons[] = {
    { FEED_SOURCE_UNREACHABLE, "source_unreachable",
      "the data source could not be reached" },
    { FEED_NOT_PUBLISHED_YET, "not_published_yet",
      "today's figures have not been published yet" },
    { FEED_STALE_DATE, "stale_date", "the source published figures for the wrong date" },
    { FEED_ALL_ZERO, "all_zero", "the source published only zeros" },
    { FEED_INVALID_DATA, "invalid_data", "the source published invalid figures" },
    { FEED_DECREASING_TOTALS, "decreasing_totals", "the source's totals went down" },
    { FEED_SOURCE_REFUSED, "source_refused", "the data source refused our request" },
};
#define NREASONS (sizeof(reasons) / sizeof(reasons[0]))

static const char *const format_names[] = { "dozen-json", "datagokr-covid19" };

const char *feed_format_name(feed_format_t f)
{
    return (int)f >= 0 && (size_t)f < sizeof(format_names) / sizeof(format_names[0])
           ? format_names[f] : "unknown";
}

int feed_format_parse(const char *name, feed_format_t *out)
{
    size_t i;

    for (i = 0; name != NULL && i < sizeof(format_names) / sizeof(format_names[0]); i++) {
        if (strcmp(name, format_names[i]) == 0) {
            *out = (feed_format_t)i;
            return 0;
        }
    }
    return -1;
}

const char *feed_reason_code(feed_reason_t r)
{
    size_t i;

    if (r == FEED_OK)
        return "ok";
    for (i = 0; i < NREASONS; i++) {
        if (reasons[i].reason == r)
            return reasons[i].code;
    }
    return "unknown";
}

const char *feed_reason_words(const char *code)
{
    size_t i;

    for (i = 0; code != NULL && i < NREASONS; i++) {
        if (strcmp(reasons[i].code, code) == 0)
            return reasons[i].words;
    }
    return "the figures could not be checked";
}

/* ---------------------------------------------------------------------------------- */
/* Dates */

static int leap_year(int y)
{
    return (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
}

static int month_days(int y, int m)
{
    static const int days[12] = { 31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31 };

    return days[m - 1] + (m == 2 && leap_year(y));
}

/* Reads n digits at s into *out. Returns 0, or -1 if one is not a digit. */
static int read_digits(const char *s, int n, int *out)
{
    int v = 0, i;

    for (i = 0; i < n; i++) {
        if (s[i] < '0' || s[i] > '9')
            return -1;
        v = v * 10 + (s[i] - '0');
    }
    *out = v;
    return 0;
}

/* Reads s, exactly "YYYY-MM-DD" and a real date of years 1970..9999. Returns 0 and the
 * parts, or -1. */
static int date_parse(const char *s, int *y, int *m, int *d)
{
    if (s == NULL || strlen(s) != 10 || s[4] != '-' || s[7] != '-' ||
        read_digits(s, 4, y) != 0 || read_digits(s + 5, 2, m) != 0 ||
        read_digits(s + 8, 2, d) != 0)
        return -1;
    if (*y < 1970 || *m < 1 || *m > 12 || *d < 1 || *d > month_days(*y, *m))
        return -1;
    return 0;
}

int feed_date_valid(const char *s)
{
    int y, m, d;

    return date_parse(s, &y, &m, &d) == 0;
}

int feed_date_before(const char *date, char out[11])
{
    int y, m, d;

    if (date_parse(date, &y, &m, &d) != 0)
        return -1;
    if (--d == 0) {
        if (--m == 0) {
            m = 12;
            y--;
        }
        d = month_days(y, m);
    }
    /* 1969..9999: always ten characters */
    snprintf(out, 11, "%04d-%02d-%02d", y, m, d);
    return 0;
}

/* ---------------------------------------------------------------------------------- */
/* Validation */

/* Reads figure key of doc (borrowed) into *out. Returns 0, or -1 with err. */
static int read_figure(json_t *doc, const char *key, long long *out, char *err,
                       size_t err_size)
{
    json_t *v = json_object_get(doc, key);   /* borrowed */
    json_int_t n;

    if (v == NULL) {
        httpc_errf(err, err_size, "field '%s' is missing", key);
        return -1;
    }
    /* json_is_integer: a real such as 10423.0 or 1e4 is not an integer here */
    if (!json_is_integer(v)) {
        httpc_errf(err, err_size, "field '%s' is not an integer", key);
        return -1;
    }
    n = json_integer_value(v);
    if (n < 0) {
        httpc_errf(err, err_size, "field '%s' is negative (%lld)", key, (long long)n);
        return -1;
    }
    if (n > FEED_FIGURE_MAX) {
        httpc_errf(err, err_size, "field '%s' is above 10^15", key);
        return -1;
    }
    *out = (long long)n;
    return 0;
}

feed_reason_t feed_validate(const char *body, size_t len, const char *today,
                            const feed_figures_t *last, feed_figures_t *out,
                            char *err, size_t err_size)
{
    feed_reason_t ret = FEED_INVALID_DATA;
    feed_figures_t f;
    json_t *doc = NULL;   /* owned */
    json_t *date;         /* borrowed from doc */
    json_error_t jerr;
    char yesterday[11];

    memset(&f, 0, sizeof(f));
    httpc_errf(err, err_size, "%s", "");
    if (feed_date_before(today, yesterday) != 0) {
        /* a caller's bug, not the source's fault; still a reason code to show */
        httpc_errf(err, err_size, "today's date is not a valid date");
        goto done;
    }
    if (body == NULL || len == 0) {
        httpc_errf(err, err_size, "empty answer");
        goto done;
    }
    doc = json_loadb(body, len, JSON_REJECT_DUPLICATES | JSON_DECODE_ANY, &jerr);
    if (doc == NULL) {
        httpc_errf(err, err_size, "not JSON: %s at line %d column %d", jerr.text, jerr.line,
                jerr.column);
        goto done;
    }
    if (!json_is_object(doc)) {
        httpc_errf(err, err_size, "not a JSON object");
        goto done;
    }
    date = json_object_get(doc, "date");
    if (date == NULL) {
        httpc_errf(err, err_size, "field 'date' is missing");
        goto done;
    }
    if (!json_is_string(date) || !feed_date_valid(json_string_value(date))) {
        httpc_errf(err, err_size, "field 'date' is not a date YYYY-MM-DD");
        goto done;
    }
    snprintf(f.date, sizeof(f.date), "%s", json_string_value(date)); /* valid: fits */
    if (strcmp(f.date, yesterday) == 0) {
        ret = FEED_NOT_PUBLISHED_YET;
        httpc_errf(err, err_size, "date %s is yesterday", f.date);
        goto done;
    }
    if (strcmp(f.date, today) != 0) {
        ret = FEED_STALE_DATE;
        httpc_errf(err, err_size, "date %s is not today (%s)", f.date, today);
        goto done;
    }
    if (read_figure(doc, "confirmed", &f.confirmed, err, err_size) != 0 ||
        read_figure(doc, "recovered", &f.recovered, err, err_size) != 0 ||
        read_figure(doc, "in_treatment", &f.in_treatment, err, err_size) != 0 ||
        read_figure(doc, "deaths", &f.deaths, err, err_size) != 0)
        goto done;
    if (f.confirmed == 0 && f.recovered == 0 && f.in_treatment == 0 && f.deaths == 0) {
        ret = FEED_ALL_ZERO;
        httpc_errf(err, err_size, "all four figures are 0");
        goto done;
    }
    if (last != NULL) {
        static const struct {
            const char *name;
            size_t offset;
        } cumulative[] = {
            { "confirmed", offsetof(feed_figures_t, confirmed) },
            { "recovered", offsetof(feed_figures_t, recovered) },
            { "deaths", offsetof(feed_figures_t, deaths) },
        };
        size_t i;

        for (i = 0; i < sizeof(cumulative) / sizeof(cumulative[0]); i++) {
            long long now = *(const long long *)((const char *)&f + cumulative[i].offset);
            long long before = *(const long long *)((const char *)last +
                                                    cumulative[i].offset);

            if (now < before) {
                ret = FEED_DECREASING_TOTALS;
                /* last->date is the caller's: cut at its size, cleaned by httpc_errf */
                httpc_errf(err, err_size, "%s %lld < %lld on %.10s", cumulative[i].name, now,
                        before, last->date);
                goto done;
            }
        }
    }
    if (out != NULL)
        *out = f;
    ret = FEED_OK;
done:
    json_decref(doc);
    return ret;
}

/* ---------------------------------------------------------------------------------- */
/* Fetching */

int feed_request_url(const feed_source_t *src, const char *today, strbuf_t *url,
                     char *err, size_t err_size)
{
    char yesterday[11], from[9], to[9];
    strbuf_t query;   /* owned; holds the key */
    int ret = -1;

    strbuf_init(&query, url->max);
    strbuf_reset(url);
    if (src == NULL || src->url == NULL || feed_date_before(today, yesterday) != 0) {
        httpc_errf(err, err_size, "no source URL, or today's date is not a valid date");
        goto done;
    }
    if (strbuf_adds(url, src->url) != 0)
        goto toolong;
    if (src->format == FEED_FORMAT_DOZEN_JSON) {
        ret = 0;
        goto done;
    }
    snprintf(from, sizeof(from), "%.4s%.2s%.2s", yesterday, yesterday + 5, yesterday + 8);
    snprintf(to, sizeof(to), "%.4s%.2s%.2s", today, today + 5, today + 8);
    /* The portal hands out the key twice: "decoding" (raw base64) and "encoding" (already
     * %-escaped); a '%' says which one this is, and an escaped one goes as it is. */
    if (src->key != NULL && strchr(src->key, '%') != NULL) {
        if (strbuf_adds(&query, "serviceKey=") != 0 || strbuf_adds(&query, src->key) != 0)
            goto toolong;
    } else if (httpc_form_add(&query, "serviceKey", src->key) != 0) {
        goto toolong;
    }
    if (httpc_form_add(&query, "pageNo", "1") != 0 ||
        httpc_form_add(&query, "numOfRows", "10") != 0 ||
        httpc_form_add(&query, "startCreateDt", from) != 0 ||
        httpc_form_add(&query, "endCreateDt", to) != 0 ||
        strbuf_addch(url, strchr(src->url, '?') != NULL ? '&' : '?') != 0 ||
        strbuf_add(url, query.buf, query.len) != 0)
        goto toolong;
    ret = 0;
    goto done;
toolong:
    httpc_errf(err, err_size, "the request URL is too long");
    strbuf_reset(url);
done:
    strbuf_release(&query);
    return ret;
}

/* A datagokr answer that is the portal's refusal envelope, whatever the HTTP status. */
static int datagokr_refusal(const strbuf_t *body, const char *today, char *err,
                            size_t err_size)
{
    char why[512];

    if (body->len == 0 ||
        feed_validate_datagokr(body->buf, body->len, today, NULL, NULL, NULL, NULL, why,
                               sizeof(why)) != FEED_SOURCE_REFUSED)
        return 0;
    httpc_errf(err, err_size, "%s", why);
    return 1;
}

feed_reason_t feed_fetch(CURL *curl, const feed_source_t *src, long timeout_ms,
                         const char *today, const feed_figures_t *last, feed_figures_t *out,
                         feed_figures_t *prev, int *has_prev, char *err, size_t err_size)
{
    static const httpc_request_t get = { .user_agent = FEED_USER_AGENT };
    feed_reason_t ret = FEED_SOURCE_UNREACHABLE;
    httpc_request_t req = get;
    httpc_result_t res;
    strbuf_t body;          /* owned */
    strbuf_t url;           /* owned; holds the key: never in a message */

    if (has_prev != NULL)
        *has_prev = 0;
    strbuf_init(&body, FEED_BODY_MAX);
    strbuf_init(&url, 8192);
    if (curl == NULL || src == NULL || timeout_ms <= 0) {
        httpc_errf(err, err_size, "no curl handle, source or timeout");
        goto done;
    }
    if (feed_request_url(src, today, &url, err, err_size) != 0)
        goto done;
    req.url = url.buf;
    req.timeout_ms = timeout_ms;
    if (httpc_request(curl, &req, &body, &res, err, err_size) != 0)
        goto done;
    /* The status comes first: a non-2xx answer is unreachable whatever its body (but the
     * portal's refusal, which says why). A 2xx that was too long is the source's document,
     * and not a valid one. */
    if (res.status < 200 || res.status > 299) {
        if (src->format == FEED_FORMAT_DATAGOKR && !res.too_long &&
            datagokr_refusal(&body, today, err, err_size))
            ret = FEED_SOURCE_REFUSED;
        else
            httpc_errf(err, err_size, "HTTP %ld", res.status);
        goto done;
    }
    if (res.too_long) {
        ret = FEED_INVALID_DATA;
        httpc_errf(err, err_size, "answer longer than %d bytes", FEED_BODY_MAX);
        goto done;
    }
    if (src->format == FEED_FORMAT_DATAGOKR)
        ret = feed_validate_datagokr(body.buf, body.len, today, last, out, prev, has_prev,
                                     err, err_size);
    else
        ret = feed_validate(body.buf, body.len, today, last, out, err, err_size);
done:
    strbuf_release(&body);
    strbuf_release(&url);
    return ret;
}
