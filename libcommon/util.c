/* util: UUIDs from the kernel's random source, wall and monotonic clocks, RFC 3339 times. */
#include "util.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>

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
