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
#define LOG_JSON_MAX 4096 /* PIPE_BUF: a JSON line too is one atomic write */

/* Set once by log_init() before threads start, read-only afterwards. */
static char log_service[64] = "-";
static enum log_level log_min_level = LOG_LEVEL_INFO;
static int log_json; /* LOG_FORMAT=json */

/* The trace id of what this thread handles (trace.c sets it), "" when none. */
static _Thread_local char log_trace[40];

static const char *const level_names[] = { "debug", "info", "warn", "error" };

void log_trace_id_set(const char *trace_id)
{
    if (trace_id == NULL)
        log_trace[0] = '\0';
    else
        snprintf(log_trace, sizeof(log_trace), "%s", trace_id);
}

int log_init(const char *service)
{
    const char *env = getenv("LOG_LEVEL");
    const char *format = getenv("LOG_FORMAT");
    size_t i;
    int ret = 0;

    if (service != NULL && service[0] != '\0') {
        int n = snprintf(log_service, sizeof(log_service), "%s", service);
        if (n < 0)
            snprintf(log_service, sizeof(log_service), "-");
        /* A longer name is cut: the line stays well-formed. */
    }

    log_json = 0;
    if (format != NULL && strcmp(format, "json") == 0)
        log_json = 1;
    else if (format != NULL && format[0] != '\0' && strcmp(format, "text") != 0)
        ret = -1;

    log_min_level = LOG_LEVEL_INFO;
    if (env == NULL || env[0] == '\0')
        return ret;
    for (i = 0; i < sizeof(level_names) / sizeof(level_names[0]); i++) {
        if (strcasecmp(env, level_names[i]) == 0) {
            log_min_level = (enum log_level)i;
            return ret;
        }
    }
    return -1;
}

/* A JSON line being written into a fixed buffer; once something does not fit, `full` is
 * set and the fields written so far are kept. */
struct jline {
    char *buf;
    size_t len, cap;
    int full;
};

static void j_raw(struct jline *j, const char *s, size_t n)
{
    if (j->full || j->len + n > j->cap) {
        j->full = 1;
        return;
    }
    memcpy(j->buf + j->len, s, n);
    j->len += n;
}

/* A JSON string of n bytes of s: '"', '\\' and control bytes escaped; a byte that is not
 * part of valid UTF-8 is written as the code point of the same number (\u00NN). */
static void j_str(struct jline *j, const char *s, size_t n)
{
    static const char hex[] = "0123456789abcdef";
    const unsigned char *p = (const unsigned char *)s;
    size_t i = 0;

    j_raw(j, "\"", 1);
    while (i < n && !j->full) {
        size_t seq = util_utf8_seq(p + i, n - i);

        if (seq == 1 && (p[i] == '"' || p[i] == '\\')) {
            char e[2] = { '\\', (char)p[i] };
            j_raw(j, e, 2);
        } else if (seq == 0 || (seq == 1 && (p[i] < 0x20 || p[i] == 0x7f))) {
            char e[6] = { '\\', 'u', '0', '0', hex[p[i] >> 4], hex[p[i] & 0x0f] };
            j_raw(j, e, 6);
            seq = 1;
        } else {
            j_raw(j, s + i, seq);
        }
        i += seq;
    }
    j_raw(j, "\"", 1);
}

/* One field: ,"key":"value"; the field is left out whole when it does not fit. */
static void j_field(struct jline *j, const char *key, size_t klen, const char *val, size_t vlen)
{
    size_t mark = j->len;

    j_raw(j, ",", 1);
    j_str(j, key, klen);
    j_raw(j, ":", 1);
    j_str(j, val, vlen);
    if (j->full)
        j->len = mark;
}

static int key_char(char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
           c == '_' || c == '.' || c == '-';
}

/* Turns a key=value message (the text format's, values quoted by log_q) into JSON fields:
 * the first word without '=' is "event", key=value pairs are fields with the quotes and the
 * \" and \\\\ escapes of log_q taken off (its \xNN stay as they are, so nothing is lost),
 * and any other word goes into "text". Writes the whole line into out. */
static size_t json_line(char *out, size_t cap, const char *ts, const char *level,
                        const char *msg, size_t mlen)
{
    struct jline j = { out, 0, cap - 1, 0 }; /* one byte kept for the newline */
    char text[LOG_LINE_MAX];
    size_t tlen = 0, i = 0;
    int first = 1;

    j_raw(&j, "{\"ts\":", 6);
    j_str(&j, ts, strlen(ts));
    j_field(&j, "level", 5, level, strlen(level));
    j_field(&j, "svc", 3, log_service, strlen(log_service));
    while (i < mlen) {
        size_t k0, k1, v0, v1;
        char val[LOG_LINE_MAX];
        size_t vlen = 0;

        while (i < mlen && msg[i] == ' ')
            i++;
        if (i >= mlen)
            break;
        k0 = i;
        while (i < mlen && key_char(msg[i]))
            i++;
        k1 = i;
        if (k1 > k0 && i < mlen && msg[i] == '=') {
            i++;
            if (i < mlen && msg[i] == '"') {
                i++;
                while (i < mlen && msg[i] != '"') {
                    if (msg[i] == '\\' && i + 1 < mlen &&
                        (msg[i + 1] == '"' || msg[i + 1] == '\\'))
                        i++;
                    val[vlen++] = msg[i++];
                }
                if (i < mlen)
                    i++; /* the closing quote */
            } else {
                v0 = i;
                while (i < mlen && msg[i] != ' ')
                    i++;
                v1 = i;
                memcpy(val, msg + v0, v1 - v0);
                vlen = v1 - v0;
            }
            j_field(&j, msg + k0, k1 - k0, val, vlen);
            first = 0;
            continue;
        }
        /* A word that is no key=value. */
        while (i < mlen && msg[i] != ' ')
            i++;
        if (first && k1 == i) {
            j_field(&j, "event", 5, msg + k0, i - k0);
        } else {
            if (tlen > 0)
                text[tlen++] = ' ';
            memcpy(text + tlen, msg + k0, i - k0);
            tlen += i - k0;
        }
        first = 0;
    }
    if (tlen > 0)
        j_field(&j, "text", 4, text, tlen);
    if (log_trace[0] != '\0')
        j_field(&j, "trace_id", 8, log_trace, strlen(log_trace));
    if (j.full) {
        /* Room is kept for this: cap is far above what the fixed fields need. */
        j.full = 0;
        if (j.len + 19 > j.cap)
            j.len = j.cap - 19;
        j_raw(&j, ",\"truncated\":true", 17);
    }
    j.full = 0;
    j_raw(&j, "}", 1);
    out[j.len++] = '\n';
    return j.len;
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
    if (log_trace[0] != '\0' && !log_json) {
        int t = snprintf(line + len, sizeof(line) - 1 - len, " trace_id=%s", log_trace);
        if (t > 0 && (size_t)t < sizeof(line) - 1 - len)
            len += (size_t)t;
    }
    if (log_json) {
        char json[LOG_JSON_MAX];

        len = json_line(json, sizeof(json), ts, level_names[level], line + start, len - start);
        write_all(json, len);
        goto done;
    }
    line[len++] = '\n';
    write_all(line, len);

done:
    errno = saved_errno;
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
        size_t elen, seq = util_utf8_seq(p + i, n - i);

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
