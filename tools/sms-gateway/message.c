/* message: what a Twilio-style send must satisfy (credentials, To, From, Body), the pieces
 * of its answer (SID, dates, segments, the Message resource), and the checks and page URIs
 * of a list. Pure functions, but for the random SID. */
#include "sms_gateway.h"

#include <errno.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/random.h>
#include <time.h>

#include "util.h"

static int is_digit(char c)
{
    return c >= '0' && c <= '9';
}

/* ---------------------------------------------------------------------------------- */
/* Text */

int sg_utf8_chars(const char *s, size_t *nchars)
{
    const unsigned char *p = (const unsigned char *)s;
    size_t n = 0;

    while (*p != '\0') {
        unsigned int c = *p, need, i;
        unsigned long cp;

        if (c < 0x80) {
            p++;
            n++;
            continue;
        }
        if (c >= 0xc2 && c <= 0xdf) {
            need = 1;
            cp = c & 0x1f;
        } else if (c >= 0xe0 && c <= 0xef) {
            need = 2;
            cp = c & 0x0f;
        } else if (c >= 0xf0 && c <= 0xf4) {
            need = 3;
            cp = c & 0x07;
        } else {
            return -1; /* a continuation byte, an overlong lead (c0, c1) or above f4 */
        }
        for (i = 1; i <= need; i++) {
            if ((p[i] & 0xc0) != 0x80)
                return -1; /* also stops at the NUL */
            cp = (cp << 6) | (p[i] & 0x3f);
        }
        if ((need == 2 && cp < 0x800) || (need == 3 && cp < 0x10000) || cp > 0x10ffff ||
            (cp >= 0xd800 && cp <= 0xdfff))
            return -1;
        p += need + 1;
        n++;
    }
    *nchars = n;
    return 0;
}

int sg_segments(const char *body, size_t body_chars)
{
    const char *p;
    int gsm = 1;

    for (p = body; *p != '\0' && gsm; p++)
        gsm = (*p >= 0x20 && *p < 0x7f) || *p == '\n' || *p == '\r';
    if (gsm)
        return body_chars <= 160 ? 1 : (int)((body_chars + 152) / 153);
    return body_chars <= 70 ? 1 : (int)((body_chars + 66) / 67);
}

/* ---------------------------------------------------------------------------------- */
/* Credentials */

static int b64_value(char c)
{
    if (c >= 'A' && c <= 'Z')
        return c - 'A';
    if (c >= 'a' && c <= 'z')
        return c - 'a' + 26;
    if (c >= '0' && c <= '9')
        return c - '0' + 52;
    if (c == '+')
        return 62;
    if (c == '/')
        return 63;
    return -1;
}

/* Strict base64 (RFC 4648, with padding) of in[0..len) into out. Returns the decoded
 * length, or -1 for bad input or when out_size is too small. */
static long b64_decode(const char *in, size_t len, unsigned char *out, size_t out_size)
{
    size_t i, o = 0, pad = 0;

    if (len == 0 || len % 4 != 0)
        return -1;
    if (in[len - 1] == '=')
        pad = in[len - 2] == '=' ? 2 : 1;
    if ((len / 4) * 3 - pad > out_size)
        return -1;
    for (i = 0; i < len; i += 4) {
        int v[4], k;
        unsigned long w = 0;

        for (k = 0; k < 4; k++) {
            if (i + (size_t)k >= len - pad) {
                v[k] = 0; /* padding: only in the last group */
            } else if ((v[k] = b64_value(in[i + (size_t)k])) < 0) {
                return -1;
            }
            w = (w << 6) | (unsigned long)v[k];
        }
        out[o++] = (unsigned char)(w >> 16);
        if (i + 4 < len || pad < 2)
            out[o++] = (unsigned char)(w >> 8);
        if (i + 4 < len || pad < 1)
            out[o++] = (unsigned char)w;
    }
    return (long)o;
}

int sg_basic_auth_parse(const char *header, char *user, size_t user_size, char *pass,
                        size_t pass_size)
{
    unsigned char buf[SG_ACCOUNT_SID_MAX + SG_AUTH_TOKEN_MAX + 2];
    const char *p, *colon;
    size_t len, ulen, i;
    long n;

    if (header == NULL || strncasecmp(header, "Basic ", 6) != 0)
        return -1;
    for (p = header + 6; *p == ' '; p++)
        ;
    len = strlen(p);
    while (len > 0 && p[len - 1] == ' ')
        len--;
    n = b64_decode(p, len, buf, sizeof(buf) - 1);
    if (n < 0)
        return -1;
    for (i = 0; i < (size_t)n; i++) {
        if (buf[i] < 0x20 || buf[i] == 0x7f)
            return -1; /* also a NUL */
    }
    buf[n] = '\0';
    colon = strchr((const char *)buf, ':');
    if (colon == NULL)
        return -1;
    ulen = (size_t)(colon - (const char *)buf);
    if (ulen >= user_size || strlen(colon + 1) >= pass_size)
        return -1;
    memcpy(user, buf, ulen);
    user[ulen] = '\0';
    memcpy(pass, colon + 1, strlen(colon + 1) + 1);
    return 0;
}

/* ---------------------------------------------------------------------------------- */
/* A send */

/* Reads the one value of key: 0 and *out, or -1 with code and errstr when it is missing,
 * empty or given more than once. */
static int one_param(const form_t *form, const char *key, const char *missing,
                     int dup_code, const char **out, int *code, char *errstr,
                     size_t errstr_size)
{
    size_t count = 0;
    const char *v = form_get(form, key, &count);

    if (count > 1) {
        *code = dup_code;
        util_errf(errstr, errstr_size, "The '%s' parameter is given more than once.", key);
        return -1;
    }
    if (v == NULL || v[0] == '\0') {
        *code = SG_CODE_BAD_PARAM;
        util_errf(errstr, errstr_size, "%s", missing);
        return -1;
    }
    *out = v;
    return 0;
}

int sg_send_check(const form_t *form, struct sg_send *out, int *code, char *errstr,
                  size_t errstr_size)
{
    struct sg_send s;
    size_t count = 0;

    memset(&s, 0, sizeof(s));
    if (one_param(form, "To", "A 'To' phone number is required.", SG_CODE_BAD_PARAM, &s.to,
                  code, errstr, errstr_size) != 0)
        return -1;
    if (!phone_e164_valid(s.to)) {
        *code = SG_CODE_BAD_PARAM;
        util_errf(errstr, errstr_size, "The 'To' number is not a valid phone number: E.164 "
                  "expected, '+' then %d to %d digits, the first not 0.",
                  PHONE_E164_MIN_DIGITS, PHONE_E164_MAX_DIGITS);
        return -1;
    }
    if (one_param(form, "From", "A 'From' phone number is required.", SG_CODE_BAD_FROM,
                  &s.from, code, errstr, errstr_size) != 0)
        return -1;
    if (!phone_sender_valid(s.from)) {
        *code = SG_CODE_BAD_FROM;
        util_errf(errstr, errstr_size, "The 'From' number is not a valid phone number "
                  "(E.164) or alphanumeric sender ID (1 to %d letters, digits and spaces).",
                  PHONE_SENDER_ALNUM_MAX);
        return -1;
    }
    if (one_param(form, "Body", "A message body is required.", SG_CODE_BAD_PARAM, &s.body,
                  code, errstr, errstr_size) != 0)
        return -1;
    if (sg_utf8_chars(s.body, &s.body_chars) != 0) {
        *code = SG_CODE_BAD_PARAM;
        util_errf(errstr, errstr_size, "The message body is not valid UTF-8.");
        return -1;
    }
    if (s.body_chars > SG_BODY_MAX_CHARS) {
        *code = SG_CODE_TOO_LONG;
        util_errf(errstr, errstr_size, "The concatenated message body exceeds the %d "
                  "character limit.", SG_BODY_MAX_CHARS);
        return -1;
    }
    s.status_callback = form_get(form, "StatusCallback", &count);
    if (count > 1 || (s.status_callback != NULL && !sg_callback_ok(s.status_callback))) {
        *code = SG_CODE_CALLBACK;
        util_errf(errstr, errstr_size, "The StatusCallback must be an http:// or https:// "
                  "URL of at most %d printable characters.", SG_CALLBACK_MAX);
        return -1;
    }
    *out = s;
    return 0;
}

/* ---------------------------------------------------------------------------------- */
/* The answer */

int sg_sid_new(char *out)
{
    static const char hex[] = "0123456789abcdef";
    unsigned char raw[16];
    size_t got = 0, i;

    while (got < sizeof(raw)) {
        ssize_t n = getrandom(raw + got, sizeof(raw) - got, 0);

        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            return -1;
        got += (size_t)n;
    }
    out[0] = 'S';
    out[1] = 'M';
    for (i = 0; i < sizeof(raw); i++) {
        out[2 + 2 * i] = hex[raw[i] >> 4];
        out[3 + 2 * i] = hex[raw[i] & 0x0f];
    }
    out[SG_SID_LEN] = '\0';
    return 0;
}

int sg_rfc2822(int64_t epoch_ms, char *out, size_t out_size)
{
    time_t t = (time_t)(epoch_ms / 1000);
    struct tm tm;

    /* No setlocale() in this program, so %a and %b are the C locale's English names. */
    if (gmtime_r(&t, &tm) == NULL ||
        strftime(out, out_size, "%a, %d %b %Y %H:%M:%S +0000", &tm) == 0)
        return -1;
    return 0;
}

int sg_callback_ok(const char *url)
{
    size_t n = 0;

    if (url == NULL || (strncmp(url, "http://", 7) != 0 && strncmp(url, "https://", 8) != 0))
        return 0;
    for (; url[n] != '\0'; n++) {
        if (url[n] <= 0x20 || url[n] >= 0x7f)
            return 0;
    }
    return n <= SG_CALLBACK_MAX;
}

json_t *sg_message_json(const char *account_sid, const char *sid, const char *to,
                        const char *from, const char *body, int64_t at_ms,
                        const char *status, int64_t sent_ms)
{
    char sent_date[40];
    char date[40], uri[256], media[256], segs[16];
    size_t chars;
    json_t *sent;   /* new reference, stolen by json_pack's "o" */

    if (sg_rfc2822(at_ms, date, sizeof(date)) != 0)
        date[0] = '\0';
    if (sg_utf8_chars(body, &chars) != 0)
        chars = strlen(body); /* not reached for a checked body */
    /* The account SID is at most SG_ACCOUNT_SID_MAX and a SID SG_SID_LEN: these fit. */
    snprintf(uri, sizeof(uri), "/" SG_API_VERSION "/Accounts/%s/Messages/%s.json",
             account_sid, sid);
    snprintf(media, sizeof(media), "/" SG_API_VERSION "/Accounts/%s/Messages/%s/Media.json",
             account_sid, sid);
    snprintf(segs, sizeof(segs), "%d", sg_segments(body, chars));
    if (sent_ms >= 0 && sg_rfc2822(sent_ms, sent_date, sizeof(sent_date)) != 0)
        sent_date[0] = '\0';
    sent = sent_ms >= 0 ? json_string(sent_date) : json_null();
    if (sent == NULL)
        return NULL;
    return json_pack("{s:s, s:s, s:s, s:s, s:o, s:s, s:s, s:n, s:n, s:s, s:n, s:s, s:s, "
                     "s:n, s:s, s:s, s:s, s:{s:s}, s:s, s:s}",
                     "account_sid", account_sid,
                     "api_version", SG_API_VERSION,
                     "body", body,
                     "date_created", date,
                     "date_sent", sent,
                     "date_updated", date,
                     "direction", "outbound-api",
                     "error_code",
                     "error_message",
                     "from", from,
                     "messaging_service_sid",
                     "num_media", "0",
                     "num_segments", segs,
                     "price",
                     "price_unit", "USD",
                     "sid", sid,
                     "status", status,
                     "subresource_uris", "media", media,
                     "to", to,
                     "uri", uri);
}

/* ---------------------------------------------------------------------------------- */
/* A list */

/* Days from 1970-01-01 to y-m-d of the proleptic Gregorian calendar (H. Hinnant's
 * days_from_civil). */
static int64_t days_from_civil(int y, int m, int d)
{
    int64_t era, yoe, doy, doe;

    y -= m <= 2;
    era = (y >= 0 ? y : y - 399) / 400;
    yoe = y - era * 400;
    doy = (153 * (m > 2 ? m - 3 : m + 9) + 2) / 5 + d - 1;
    doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    return era * 146097 + doe - 719468;
}

/* Reads n digits at s into *out. Returns 0, or -1 if one is not a digit. */
static int read_digits(const char *s, int n, int *out)
{
    int v = 0, i;

    for (i = 0; i < n; i++) {
        if (!is_digit(s[i]))
            return -1;
        v = v * 10 + (s[i] - '0');
    }
    *out = v;
    return 0;
}

int sg_date_days(const char *s, int64_t *days)
{
    static const int mdays[12] = { 31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31 };
    int y, m, d, leap;

    if (s == NULL || strlen(s) != SG_DATE_LEN || s[4] != '-' || s[7] != '-' ||
        read_digits(s, 4, &y) != 0 || read_digits(s + 5, 2, &m) != 0 ||
        read_digits(s + 8, 2, &d) != 0)
        return -1;
    if (y < 1970 || m < 1 || m > 12 || d < 1)
        return -1;
    leap = (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
    if (d > mdays[m - 1] + (m == 2 && leap))
        return -1;
    *days = days_from_civil(y, m, d);
    return 0;
}

int64_t sg_day_of_ms(int64_t epoch_ms)
{
    const int64_t day_ms = 86400000;
    int64_t q = epoch_ms / day_ms;

    return (epoch_ms % day_ms < 0) ? q - 1 : q; /* floor, also before 1970 */
}

/* Reads s, only decimal digits (no sign, no spaces, at most 18), into *out within
 * [min, max]. Returns 0, or -1. */
static int read_count(const char *s, long long min, long long max, long long *out)
{
    size_t n = strlen(s), i;
    long long v;
    char *end;

    if (n == 0 || n > 18)
        return -1;
    for (i = 0; i < n; i++) {
        if (!is_digit(s[i]))
            return -1;
    }
    errno = 0;
    v = strtoll(s, &end, 10);
    if (errno != 0 || *end != '\0' || v < min || v > max)
        return -1;
    *out = v;
    return 0;
}

/* Returns 1 if s is a message SID as sg_sid_new writes them. */
static int sid_valid(const char *s)
{
    size_t i;

    if (strlen(s) != SG_SID_LEN || s[0] != 'S' || s[1] != 'M')
        return 0;
    for (i = 2; i < SG_SID_LEN; i++) {
        if (!is_digit(s[i]) && !(s[i] >= 'a' && s[i] <= 'f'))
            return 0;
    }
    return 1;
}

/* Checks one of the date filters: copies it to out and narrows [*from, *until]. */
static int list_date(const char *v, const char *name, int lower, int upper, char *out,
                     size_t out_size, int64_t *from, int64_t *until, char *errstr,
                     size_t errstr_size)
{
    int64_t day;

    if (v == NULL)
        return 0;
    if (sg_date_days(v, &day) != 0) {
        util_errf(errstr, errstr_size, "The '%s' query parameter must be a date "
                  "YYYY-MM-DD.", name);
        return -1;
    }
    snprintf(out, out_size, "%s", v); /* SG_DATE_LEN characters: fits */
    if (lower && day > *from)
        *from = day;
    if (upper && day < *until)
        *until = day;
    return 0;
}

int sg_list_check(const struct sg_list_args *a, struct sg_list_query *out, char *errstr,
                  size_t errstr_size)
{
    struct sg_list_query q;

    memset(&q, 0, sizeof(q));
    q.from_day = INT64_MIN;
    q.until_day = INT64_MAX;
    q.page_size = SG_PAGE_SIZE_DEFAULT;
    if (a->to != NULL) {
        if (strlen(a->to) >= sizeof(q.to)) {
            util_errf(errstr, errstr_size, "The 'To' query parameter must be an E.164 "
                      "number.");
            return -1;
        }
        snprintf(q.to, sizeof(q.to), "%s", a->to);
        if (q.to[0] == ' ')
            q.to[0] = '+';  /* an unescaped '+' in a query string decodes as a space */
        if (!phone_e164_valid(q.to)) {
            util_errf(errstr, errstr_size, "The 'To' query parameter must be an E.164 "
                      "number.");
            return -1;
        }
    }
    if (a->from != NULL) {
        if (strlen(a->from) >= sizeof(q.from)) {
            util_errf(errstr, errstr_size, "The 'From' query parameter must be an E.164 "
                      "number or a sender ID.");
            return -1;
        }
        snprintf(q.from, sizeof(q.from), "%s", a->from);
        if (q.from[0] == ' ')
            q.from[0] = '+';
        if (!phone_e164_valid(q.from) && !phone_sender_valid(q.from)) {
            util_errf(errstr, errstr_size, "The 'From' query parameter must be an E.164 "
                      "number or a sender ID.");
            return -1;
        }
    }
    if (list_date(a->date_sent, "DateSent", 1, 1, q.date_sent, sizeof(q.date_sent),
                  &q.from_day, &q.until_day, errstr, errstr_size) != 0 ||
        list_date(a->date_sent_ge, "DateSent>=", 1, 0, q.date_sent_ge,
                  sizeof(q.date_sent_ge), &q.from_day, &q.until_day, errstr,
                  errstr_size) != 0 ||
        list_date(a->date_sent_le, "DateSent<=", 0, 1, q.date_sent_le,
                  sizeof(q.date_sent_le), &q.from_day, &q.until_day, errstr,
                  errstr_size) != 0)
        return -1;
    if (a->page_size != NULL &&
        read_count(a->page_size, 1, SG_PAGE_SIZE_MAX, &q.page_size) != 0) {
        util_errf(errstr, errstr_size, "The 'PageSize' query parameter must be an integer "
                  "from 1 to %d.", SG_PAGE_SIZE_MAX);
        return -1;
    }
    if (a->page != NULL && read_count(a->page, 0, SG_PAGE_MAX, &q.page) != 0) {
        util_errf(errstr, errstr_size, "The 'Page' query parameter must be an integer "
                  "from 0 to %lld.", SG_PAGE_MAX);
        return -1;
    }
    if (a->page_token != NULL) {
        if (strncmp(a->page_token, "PA", 2) != 0 || !sid_valid(a->page_token + 2)) {
            util_errf(errstr, errstr_size, "The 'PageToken' query parameter is not one "
                      "this list gave.");
            return -1;
        }
        snprintf(q.after_sid, sizeof(q.after_sid), "%s", a->page_token + 2); /* fits */
    }
    *out = q;
    return 0;
}

/* Appends the formatted text at out + *len. Returns 0, or -1 when it does not fit. */
static int append(char *out, size_t out_size, size_t *len, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

static int append(char *out, size_t out_size, size_t *len, const char *fmt, ...)
{
    va_list ap;
    int n;

    if (*len >= out_size)
        return -1;
    va_start(ap, fmt);
    n = vsnprintf(out + *len, out_size - *len, fmt, ap);
    va_end(ap);
    if (n < 0 || (size_t)n >= out_size - *len)
        return -1;
    *len += (size_t)n;
    return 0;
}

/* Appends "From=<sender ID>&", its spaces as %20 (letters, digits and spaces: checked). */
static int from_escaped(const char *from, char *out, size_t out_size, size_t *len)
{
    if (append(out, out_size, len, "From=") != 0)
        return -1;
    for (; *from != '\0'; from++) {
        if (append(out, out_size, len, *from == ' ' ? "%%20" : "%c", *from) != 0)
            return -1;
    }
    return append(out, out_size, len, "&");
}

int sg_list_uri(const char *account_sid, const struct sg_list_query *q, long long page,
                const char *after_sid, char *out, size_t out_size)
{
    size_t len = 0;

    /* Every value was checked (digits, dates, a SID), so only To's '+' needs escaping,
     * and the '>' and '<' of the keys. */
    if (append(out, out_size, &len, "/" SG_API_VERSION "/Accounts/%s/Messages.json?",
               account_sid) != 0 ||
        (q->to[0] != '\0' && append(out, out_size, &len, "To=%%2B%s&", q->to + 1) != 0) ||
        (q->from[0] == '+' && append(out, out_size, &len, "From=%%2B%s&", q->from + 1) != 0) ||
        (q->from[0] != '\0' && q->from[0] != '+' && from_escaped(q->from, out, out_size,
                                                               &len) != 0) ||
        (q->date_sent[0] != '\0' &&
         append(out, out_size, &len, "DateSent=%s&", q->date_sent) != 0) ||
        (q->date_sent_ge[0] != '\0' &&
         append(out, out_size, &len, "DateSent%%3E=%s&", q->date_sent_ge) != 0) ||
        (q->date_sent_le[0] != '\0' &&
         append(out, out_size, &len, "DateSent%%3C=%s&", q->date_sent_le) != 0) ||
        append(out, out_size, &len, "PageSize=%lld&Page=%lld", q->page_size, page) != 0 ||
        (after_sid != NULL && after_sid[0] != '\0' &&
         append(out, out_size, &len, "&PageToken=PA%s", after_sid) != 0))
        return -1;
    return 0;
}
