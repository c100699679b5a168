/* log: one key=value line per event on stderr, written with a single write(2). */
#include "log.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include "util.h"

#define LOG_LINE_MAX 2048 /* longer lines are cut and end in "..." */

/* Set once by log_init() before threads start, read-only afterwards. */
static char log_service[64] = "-";
static enum log_level log_min_level = LOG_LEVEL_INFO;

static const char *const level_names[] = { "debug", "info", "warn", "error" };

int log_init(const char *service)
{
    const char *env = getenv("LOG_LEVEL");
    size_t i;

    if (service != NULL && service[0] != '\0') {
        int n = snprintf(log_service, sizeof(log_service), "%s", service);
        if (n < 0)
            snprintf(log_service, sizeof(log_service), "-");
        /* A longer name is cut: the line stays well-formed. */
    }

    log_min_level = LOG_LEVEL_INFO;
    if (env == NULL || env[0] == '\0')
        return 0;
    for (i = 0; i < sizeof(level_names) / sizeof(level_names[0]); i++) {
        if (strcasecmp(env, level_names[i]) == 0) {
            log_min_level = (enum log_level)i;
            return 0;
        }
    }
    return -1;
}

/* Writes all of buf to stderr, retrying after EINTR. A line up to LOG_LINE_MAX bytes is
 * below PIPE_BUF, so on a pipe the single write(2) is atomic and lines of concurrent
 * threads never interleave. */
static void write_all(const char *buf, size_t len)
{
    while (len > 0) {
        ssize_t n = write(STDERR_FILENO, buf, len);
        if (n < 0) {
            if (errno == EINTR)
                continue;
            return; /* nowhere left to report it */
        }
        buf += n;
        len -= (size_t)n;
    }
}

void log_msg(enum log_level level, const char *fmt, ...)
{
    char line[LOG_LINE_MAX];
    char ts[32];
    size_t len, room, i, start;
    int saved_errno = errno; /* callers may log and then inspect errno */
    int n;
    va_list ap;

    if ((int)level < (int)LOG_LEVEL_DEBUG || (int)level > (int)LOG_LEVEL_ERROR)
        level = LOG_LEVEL_ERROR;
    if (level < log_min_level)
        goto done;

    if (util_rfc3339(util_now_ms(), ts, sizeof(ts)) != 0)
        snprintf(ts, sizeof(ts), "-");

    /* One byte is kept back for the newline. */
    room = sizeof(line) - 1;
    n = snprintf(line, room, "ts=%s level=%s svc=%s ", ts, level_names[level], log_service);
    if (n < 0 || (size_t)n >= room)
        goto done; /* cannot happen: the prefix is far below the buffer size */
    start = (size_t)n;

    va_start(ap, fmt);
    n = vsnprintf(line + start, room - start, fmt, ap);
    va_end(ap);
    if (n < 0) {
        n = snprintf(line + start, room - start, "log_format_error fmt=\"%s\"", fmt);
        if (n < 0)
            n = 0;
    }
    if ((size_t)n >= room - start) {
        /* Truncated: vsnprintf wrote room - start - 1 characters and a NUL. */
        len = room - 1;
        memcpy(line + len - 3, "...", 3);
    } else {
        len = start + (size_t)n;
    }

    /* A trailing newline from the caller is dropped rather than turned into spaces. */
    while (len > start && (line[len - 1] == '\n' || line[len - 1] == '\r'))
        len--;
    for (i = start; i < len; i++) {
        if (line[i] == '\n' || line[i] == '\r')
            line[i] = ' ';
    }
    line[len++] = '\n';
    write_all(line, len);

done:
    errno = saved_errno;
}

/* Length of the valid UTF-8 sequence at p (at most n bytes), or 0 when the bytes there are
 * not one: overlong forms, surrogates and code points past U+10FFFF are refused. */
static size_t utf8_seq(const unsigned char *p, size_t n)
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

log_value_t log_qn(const void *in, size_t n)
{
    static const char hex[] = "0123456789abcdef";
    log_value_t v;
    const unsigned char *p = in;
    /* Room for the opening quote, and kept back: "..." + closing quote + NUL. */
    const size_t limit = sizeof(v.s) - 5;
    size_t o = 0, i = 0;

    if (in == NULL) {
        snprintf(v.s, sizeof(v.s), "-");
        return v;
    }
    v.s[o++] = '"';
    while (i < n) {
        char esc[4];
        size_t elen, seq = utf8_seq(p + i, n - i);

        if (seq == 1 && (p[i] == '"' || p[i] == '\\')) {
            esc[0] = '\\';
            esc[1] = (char)p[i];
            elen = 2;
        } else if (seq == 0 || (seq == 1 && (p[i] < 0x20 || p[i] == 0x7f))) {
            esc[0] = '\\';
            esc[1] = 'x';
            esc[2] = hex[p[i] >> 4];
            esc[3] = hex[p[i] & 0x0f];
            elen = 4;
            seq = 1;
        } else {
            elen = 0;
        }
        if (o + (elen > 0 ? elen : seq) > limit) {
            memcpy(v.s + o, "...", 3);
            o += 3;
            break;
        }
        if (elen > 0) {
            memcpy(v.s + o, esc, elen);
            o += elen;
        } else {
            memcpy(v.s + o, p + i, seq);
            o += seq;
        }
        i += seq;
    }
    v.s[o++] = '"';
    v.s[o] = '\0';
    return v;
}

log_value_t log_q(const char *in)
{
    return log_qn(in, in != NULL ? strlen(in) : 0);
}
