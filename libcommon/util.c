/* util: UUIDs from the kernel's random source, wall and monotonic clocks, RFC 3339 times. */
#include "util.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>

#include "tz.h"

/* Fills buf with len random bytes from getrandom(2), retrying after EINTR and short reads
 * (a read of up to 256 bytes from an initialised pool is not short, but the man page does
 * not promise it). Blocks only until the pool is initialised at boot. Returns 0 or -1. */
int util_random_bytes(void *out, size_t len)
{
    unsigned char *buf = out;
    size_t got = 0;

    while (got < len) {
        ssize_t n = getrandom(buf + got, len - got, 0);
        if (n < 0) {
            if (errno == EINTR)
                continue;
            return -1;
        }
        got += (size_t)n;
    }
    return 0;
}

int util_uuid_v4(char *out)
{
    static const char hex[] = "0123456789abcdef";
    unsigned char b[16];
    size_t i, o = 0;

    if (util_random_bytes(b, sizeof(b)) != 0)
        return -1;

    /* RFC 9562 section 5.4: version 4 in the high nibble of byte 6, variant 10xx in
     * byte 8. */
    b[6] = (unsigned char)((b[6] & 0x0f) | 0x40);
    b[8] = (unsigned char)((b[8] & 0x3f) | 0x80);

    for (i = 0; i < sizeof(b); i++) {
        if (i == 4 || i == 6 || i == 8 || i == 10)
            out[o++] = '-';
        out[o++] = hex[b[i] >> 4];
        out[o++] = hex[b[i] & 0x0f];
    }
    out[o] = '\0';
    return 0;
}

int util_random_hex(char *out, size_t nbytes)
{
    static const char hex[] = "0123456789abcdef";
    unsigned char b[64];
    size_t i, o = 0;

    while (nbytes > 0) {
        size_t n = nbytes < sizeof(b) ? nbytes : sizeof(b);

        if (util_random_bytes(b, n) != 0)
            return -1;
        for (i = 0; i < n; i++) {
            out[o++] = hex[b[i] >> 4];
            out[o++] = hex[b[i] & 0x0f];
        }
        nbytes -= n;
    }
    out[o] = '\0';
    return 0;
}

int util_is_uuid(const char *s)
{
    size_t i;

    if (s == NULL)
        return 0;
    for (i = 0; i < UTIL_UUID_LEN; i++) {
        char c = s[i];

        if (i == 8 || i == 13 || i == 18 || i == 23) {
            if (c != '-')
                return 0;
        } else if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f') ||
                     (c >= 'A' && c <= 'F'))) {
            return 0; /* also stops at an early NUL */
        }
    }
    return s[UTIL_UUID_LEN] == '\0';
}

static int64_t clock_ms(clockid_t id)
{
    struct timespec ts;

    /* clock_gettime fails only for an invalid clock id, which these are not. */
    if (clock_gettime(id, &ts) != 0)
        return 0;
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

int64_t util_now_ms(void)
{
    return clock_ms(CLOCK_REALTIME);
}

int64_t util_mono_ms(void)
{
    return clock_ms(CLOCK_MONOTONIC);
}

int64_t util_mono_us(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

int util_rfc3339(int64_t epoch_ms, char *out, size_t out_size)
{
    int64_t secs = epoch_ms / 1000;
    int64_t ms = epoch_ms % 1000;
    struct tm tm;
    time_t t;
    int n;

    if (out == NULL || out_size == 0)
        return -1;
    out[0] = '\0';
    /* Floor division, so that -1 ms is 1969-12-31T23:59:59.999Z. */
    if (ms < 0) {
        ms += 1000;
        secs -= 1;
    }
    t = (time_t)secs;
    if (gmtime_r(&t, &tm) == NULL)
        return -1;
    n = snprintf(out, out_size, "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ",
                 tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday,
                 tm.tm_hour, tm.tm_min, tm.tm_sec, (int)ms);
    if (n < 0 || (size_t)n >= out_size) {
        out[0] = '\0';
        return -1;
    }
    return 0;
}

void util_sleep_ms(int64_t ms, const volatile int *stop)
{
    int64_t deadline = util_mono_ms() + ms;

    for (;;) {
        int64_t left;
        struct timespec ts;

        if (stop != NULL && *stop)
            return;
        left = deadline - util_mono_ms();
        if (left <= 0)
            return;
        if (left > 50)
            left = 50;
        ts.tv_sec = 0;
        ts.tv_nsec = (long)left * 1000000L;
        /* EINTR just means another round: the deadline is re-checked. */
        nanosleep(&ts, NULL);
    }
}

void util_errf(char *errstr, size_t errstr_size, const char *fmt, ...)
{
    va_list ap;

    if (errstr == NULL || errstr_size == 0)
        return;
    va_start(ap, fmt);
    if (vsnprintf(errstr, errstr_size, fmt, ap) < 0)
        errstr[0] = '\0';
    va_end(ap);
}

int util_streq_ct(const char *a, const char *b)
{
    size_t alen = strlen(a), blen = strlen(b), i;
    volatile unsigned char diff = (unsigned char)(alen != blen);

    for (i = 0; i < alen; i++)
        diff |= (unsigned char)(a[i] ^ (blen > 0 ? b[i % blen] : 0));
    return diff == 0;
}

int util_cond_init_monotonic(pthread_cond_t *cond)
{
    pthread_condattr_t attr;
    int ret = -1;

    if (pthread_condattr_init(&attr) != 0)
        return -1;
    if (pthread_condattr_setclock(&attr, CLOCK_MONOTONIC) == 0 &&
        pthread_cond_init(cond, &attr) == 0)
        ret = 0;
    pthread_condattr_destroy(&attr);
    return ret;
}

int util_cond_wait_ms(pthread_cond_t *cond, pthread_mutex_t *mutex, const int *flag,
                      long long ms)
{
    struct timespec deadline;

    clock_gettime(CLOCK_MONOTONIC, &deadline);
    deadline.tv_sec += (time_t)(ms / 1000);
    deadline.tv_nsec += (long)(ms % 1000) * 1000000L;
    if (deadline.tv_nsec >= 1000000000L) {
        deadline.tv_sec++;
        deadline.tv_nsec -= 1000000000L;
    }
    while (ms > 0 && !*flag) {
        if (pthread_cond_timedwait(cond, mutex, &deadline) == ETIMEDOUT)
            break;
    }
    return *flag;
}

int util_alnum_valid(const char *s, size_t max)
{
    size_t n = 0;

    for (; *s != '\0'; s++, n++) {
        if (!((*s >= 'A' && *s <= 'Z') || (*s >= 'a' && *s <= 'z') ||
              (*s >= '0' && *s <= '9')))
            return 0;
    }
    return n > 0 && n <= max;
}

int util_hex_value(char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

size_t util_utf8_seq(const unsigned char *p, size_t n)
{
    size_t len, i;
    unsigned int cp;

    if (p[0] < 0x80)
        return 1;
    if (p[0] >= 0xc2 && p[0] <= 0xdf) {
        len = 2;
        cp = p[0] & 0x1f;
    } else if (p[0] >= 0xe0 && p[0] <= 0xef) {
        len = 3;
        cp = p[0] & 0x0f;
    } else if (p[0] >= 0xf0 && p[0] <= 0xf4) {
        len = 4;
        cp = p[0] & 0x07;
    } else {
        return 0;
    }
    if (n < len)
        return 0;
    for (i = 1; i < len; i++) {
        if ((p[i] & 0xc0) != 0x80)
            return 0;
        cp = (cp << 6) | (p[i] & 0x3f);
    }
    if ((len == 3 && cp < 0x800) || (len == 4 && (cp < 0x10000 || cp > 0x10ffff)) ||
        (cp >= 0xd800 && cp <= 0xdfff))
        return 0;
    return len;
}

int util_utf8_valid(const void *s, size_t n)
{
    const unsigned char *p = s;
    size_t i = 0, len;

    if (s == NULL)
        return n == 0;
    while (i < n) {
        if (p[i] == '\0' || (len = util_utf8_seq(p + i, n - i)) == 0)
            return 0;
        i += len;
    }
    return 1;
}

/* Reads exactly n decimal digits at *p into *out and moves *p past them. */
static int digits(const char **p, int n, int *out)
{
    int v = 0;

    for (int i = 0; i < n; i++) {
        if ((*p)[i] < '0' || (*p)[i] > '9')
            return -1;
        v = v * 10 + ((*p)[i] - '0');
    }
    *p += n;
    *out = v;
    return 0;
}

int util_rfc3339_parse(const char *s, int64_t *epoch_ms)
{
    const char *p = s;
    int y, mo, d, h, mi, sec, oh = 0, om = 0, ms = 0, sign = 0;
    int64_t t;

    if (s == NULL)
        return -1;
    if (digits(&p, 4, &y) != 0 || *p++ != '-' || digits(&p, 2, &mo) != 0 || *p++ != '-' ||
        digits(&p, 2, &d) != 0 || (*p != 'T' && *p != 't') || (p++, digits(&p, 2, &h)) != 0 ||
        *p++ != ':' || digits(&p, 2, &mi) != 0 || *p++ != ':' || digits(&p, 2, &sec) != 0)
        return -1;
    if (y < 1 || mo < 1 || mo > 12 || d < 1 || d > tz_days_in_month(y, mo) || h > 23 ||
        mi > 59 || sec > 60)
        return -1;
    if (*p == '.') {
        int n = 0;

        for (p++; *p >= '0' && *p <= '9'; p++, n++) {
            if (n < 3)
                ms = ms * 10 + (*p - '0');
        }
        if (n == 0 || n > 9)
            return -1;
        for (; n < 3; n++)
            ms *= 10;
    }
    if (*p == 'Z' || *p == 'z') {
        p++;
    } else if (*p == '+' || *p == '-') {
        sign = *p++ == '-' ? -1 : 1;
        if (digits(&p, 2, &oh) != 0 || *p++ != ':' || digits(&p, 2, &om) != 0 || oh > 23 ||
            om > 59)
            return -1;
    } else {
        return -1;
    }
    if (*p != '\0')
        return -1;
    t = tz_days_from_civil(y, mo, d) * 86400 + (int64_t)h * 3600 + mi * 60 + sec -
        sign * ((int64_t)oh * 3600 + om * 60);
    if (epoch_ms != NULL)
        *epoch_ms = t * 1000 + ms;
    return 0;
}
