/* message: what a Twilio-style send must satisfy (credentials, To, From, Body), and the
 * pieces of its answer (SID, dates, segments); phone numbers masked for logs. Pure
 * functions, but for the random SID. */
#include "sms_gateway.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <sys/random.h>
#include <time.h>

#include "util.h"

static int is_digit(char c)
{
    return c >= '0' && c <= '9';
}

static int is_alpha(char c)
{
    return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z');
}

int sg_e164_valid(const char *s)
{
    size_t n = 0;

    if (s == NULL || s[0] != '+')
        return 0;
    for (s++; is_digit(*s); s++)
        n++;
    return *s == '\0' && n >= SG_E164_MIN_DIGITS && n <= SG_E164_MAX_DIGITS;
}

/* Returns 1 for an alphanumeric sender ID as Twilio takes them: 1..11 letters, digits and
 * spaces, with at least one letter. */
static int alnum_sender_valid(const char *s)
{
    size_t n = 0;
    int letters = 0;

    for (; *s != '\0'; s++, n++) {
        if (is_alpha(*s))
            letters++;
        else if (!is_digit(*s) && *s != ' ')
            return 0;
    }
    return letters > 0 && n <= SG_ALNUM_FROM_MAX;
}

/* ---------------------------------------------------------------------------------- */
/* Masking */

/* The length of the ITU-T E.164 country code at the start of digits (at least two digits
 * follow it in a valid number): 1 and 7 are one digit, a fixed set of two, the rest
 * three. */
static size_t country_code_len(const char *digits)
{
    static const int two[] = {
        20, 27, 30, 31, 32, 33, 34, 36, 39, 40, 41, 43, 44, 45, 46, 47, 48, 49,
        51, 52, 53, 54, 55, 56, 57, 58, 60, 61, 62, 63, 64, 65, 66, 81, 82, 84,
        86, 90, 91, 92, 93, 94, 95, 98,
    };
    int cc = (digits[0] - '0') * 10 + (digits[1] - '0');
    size_t i;

    if (digits[0] == '1' || digits[0] == '7')
        return 1;
    for (i = 0; i < sizeof(two) / sizeof(two[0]); i++) {
        if (two[i] == cc)
            return 2;
    }
    return 3;
}

void sg_phone_mask(const char *s, char *out, size_t out_size)
{
    enum { SHOWN_MAX = 24 };  /* input characters considered; longer input is cut */
    size_t len, ndigits = 0, keep = 0, seen = 0, i, o = 0;

    if (out_size == 0)
        return;
    if (s == NULL)
        s = "";
    len = strlen(s);
    for (i = 0; i < len; i++)
        ndigits += is_digit(s[i]);
    if (sg_e164_valid(s)) {
        size_t cc = country_code_len(s + 1);

        if (ndigits >= cc + 4 + 4)
            keep = cc;
    }
    for (i = 0; i < len && i < SHOWN_MAX && o + 1 < out_size; i++) {
        char c = s[i];

        if (is_digit(c)) {
            if (seen >= keep && seen + 4 < ndigits)
                c = '*';
            seen++;
        } else if (c != '+') {
            c = '?';
        }
        out[o++] = c;
    }
    if (len > SHOWN_MAX) {
        for (i = 0; i < 3 && o + 1 < out_size; i++)
            out[o++] = '.';
    }
    out[o] = '\0';
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
static int one_param(const sg_form_t *form, const char *key, const char *missing,
                     int dup_code, const char **out, int *code, char *errstr,
                     size_t errstr_size)
{
    size_t count = 0;
    const char *v = sg_form_get(form, key, &count);

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

int sg_send_check(const sg_form_t *form, struct sg_send *out, int *code, char *errstr,
                  size_t errstr_size)
{
    struct sg_send s;

    memset(&s, 0, sizeof(s));
    if (one_param(form, "To", "A 'To' phone number is required.", SG_CODE_BAD_PARAM, &s.to,
                  code, errstr, errstr_size) != 0)
        return -1;
    if (!sg_e164_valid(s.to)) {
        *code = SG_CODE_BAD_PARAM;
        util_errf(errstr, errstr_size, "The 'To' number is not a valid phone number: E.164 "
                  "expected, '+' then %d to %d digits.", SG_E164_MIN_DIGITS,
                  SG_E164_MAX_DIGITS);
        return -1;
    }
    if (one_param(form, "From", "A 'From' phone number is required.", SG_CODE_BAD_FROM,
                  &s.from, code, errstr, errstr_size) != 0)
        return -1;
    if (!sg_e164_valid(s.from) && !alnum_sender_valid(s.from)) {
        *code = SG_CODE_BAD_FROM;
        util_errf(errstr, errstr_size, "The 'From' number is not a valid phone number "
                  "(E.164) or alphanumeric sender ID (1 to %d letters, digits and spaces).",
                  SG_ALNUM_FROM_MAX);
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
