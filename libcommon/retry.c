/* retry: dozen-* headers and the backoff policy shared by consumers, the retry service and
 * dozenctl. */
#include "retry.h"

#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cfg.h"
#include "util.h"

#define H_PREFIX "dozen-"

/* Copies header name's last value into out (NUL-terminated). Returns 1 when found, 0 when
 * absent, -1 when it does not fit or holds a NUL. */
static int header_text(const rd_kafka_message_t *msg, const char *name, char *out,
                       size_t out_size)
{
    rd_kafka_headers_t *hdrs = NULL;
    const void *val = NULL;
    size_t size = 0;

    if (rd_kafka_message_headers(msg, &hdrs) != RD_KAFKA_RESP_ERR_NO_ERROR ||
        rd_kafka_header_get_last(hdrs, name, &val, &size) != RD_KAFKA_RESP_ERR_NO_ERROR ||
        val == NULL)
        return 0;
    if (size >= out_size || memchr(val, '\0', size) != NULL)
        return -1;
    memcpy(out, val, size);
    out[size] = '\0';
    return 1;
}

/* Reads a required (or optional) integer header in [min, max]. */
static int header_int(const rd_kafka_message_t *msg, const char *name, int required,
                      int64_t min, int64_t max, int64_t *out, char *errstr, size_t errstr_size)
{
    char buf[32], *end;
    long long v;
    int found = header_text(msg, name, buf, sizeof(buf));

    if (found == 0 && !required) {
        *out = 0;
        return 0;
    }
    if (found <= 0) {
        util_errf(errstr, errstr_size, "header %s is %s", name, found == 0 ? "missing" : "too long");
        return -1;
    }
    errno = 0;
    v = strtoll(buf, &end, 10);
    if (errno != 0 || end == buf || *end != '\0' || v < min || v > max) {
        util_errf(errstr, errstr_size, "header %s: '%s' is not an integer in %" PRId64 "..%"
                  PRId64, name, buf, min, max);
        return -1;
    }
    *out = v;
    return 0;
}

static int header_str(const rd_kafka_message_t *msg, const char *name, int required,
                      char *out, size_t out_size, char *errstr, size_t errstr_size)
{
    int found = header_text(msg, name, out, out_size);

    if (found < 0 || (found == 0 && required) || (found == 1 && required && out[0] == '\0')) {
        util_errf(errstr, errstr_size, "header %s is %s", name,
                  found < 0 ? "too long" : "missing or empty");
        return -1;
    }
    if (found == 0)
        out[0] = '\0';
    return 0;
}

int retry_info_read(const rd_kafka_message_t *msg, retry_info_t *info,
                    char *errstr, size_t errstr_size)
{
    int64_t v;
    char probe[2];

    memset(info, 0, sizeof(*info));
    if (header_text(msg, H_PREFIX "group", probe, sizeof(probe)) == 0 &&
        header_text(msg, H_PREFIX "attempt", probe, sizeof(probe)) == 0 &&
        header_text(msg, H_PREFIX "original-topic", probe, sizeof(probe)) == 0)
        return 1;
    if (header_str(msg, H_PREFIX "original-topic", 1, info->original_topic,
                   sizeof(info->original_topic), errstr, errstr_size) != 0 ||
        header_str(msg, H_PREFIX "group", 1, info->group, sizeof(info->group),
                   errstr, errstr_size) != 0 ||
        header_str(msg, H_PREFIX "reason", 1, info->reason, sizeof(info->reason),
                   errstr, errstr_size) != 0 ||
        header_str(msg, H_PREFIX "last-reason", 0, info->last_reason,
                   sizeof(info->last_reason), errstr, errstr_size) != 0 ||
        header_str(msg, H_PREFIX "expired", 0, info->expired, sizeof(info->expired),
                   errstr, errstr_size) != 0 ||
        header_str(msg, H_PREFIX "error", 0, info->error, sizeof(info->error),
                   errstr, errstr_size) != 0)
        return -1;
    if (header_int(msg, H_PREFIX "original-partition", 1, 0, INT32_MAX, &v, errstr,
                   errstr_size) != 0)
        return -1;
    info->original_partition = (int32_t)v;
    if (header_int(msg, H_PREFIX "original-offset", 1, 0, INT64_MAX, &info->original_offset,
                   errstr, errstr_size) != 0 ||
        header_int(msg, H_PREFIX "not-before", 1, 0, INT64_MAX, &info->not_before_ms,
                   errstr, errstr_size) != 0 ||
        header_int(msg, H_PREFIX "deadline", 0, 0, INT64_MAX, &info->deadline_ms,
                   errstr, errstr_size) != 0 ||
        header_int(msg, H_PREFIX "first-failed-at", 1, 0, INT64_MAX,
                   &info->first_failed_at_ms, errstr, errstr_size) != 0)
        return -1;
    if (header_int(msg, H_PREFIX "attempt", 1, 0, 1000000, &v, errstr, errstr_size) != 0)
        return -1;
    info->attempt = (int)v;
    if (header_int(msg, H_PREFIX "max-attempts", 1, 0, 1000000, &v, errstr, errstr_size) != 0)
        return -1;
    info->max_attempts = (int)v;
    return 0;
}

void retry_set_error(retry_info_t *info, const char *text)
{
    size_t n = text != NULL ? strlen(text) : 0;

    if (n > RETRY_ERROR_MAX) {
        n = RETRY_ERROR_MAX;
        /* back off to the start of a UTF-8 character */
        while (n > 0 && ((unsigned char)text[n] & 0xC0) == 0x80)
            n--;
    }
    if (n > 0)
        memcpy(info->error, text, n);
    info->error[n] = '\0';
}

/* Adds name: the decimal value of v. */
static void add_int(rd_kafka_headers_t *h, const char *name, int64_t v)
{
    char buf[24];

    snprintf(buf, sizeof(buf), "%" PRId64, v);
    rd_kafka_header_add(h, name, -1, buf, -1);
}

rd_kafka_headers_t *retry_headers_build(const rd_kafka_message_t *msg, const retry_info_t *info,
                                        const char *extra_name, const char *extra_value)
{
    rd_kafka_headers_t *src = NULL, *h;
    const char *name;
    const void *val;
    size_t size, i;

    h = rd_kafka_headers_new(16);
    if (h == NULL)
        return NULL;
    if (rd_kafka_message_headers(msg, &src) == RD_KAFKA_RESP_ERR_NO_ERROR) {
        for (i = 0; rd_kafka_header_get_all(src, i, &name, &val, &size) ==
                    RD_KAFKA_RESP_ERR_NO_ERROR; i++) {
            if (strncmp(name, H_PREFIX, sizeof(H_PREFIX) - 1) != 0)
                rd_kafka_header_add(h, name, -1, val, (ssize_t)size);
        }
    }
    rd_kafka_header_add(h, H_PREFIX "original-topic", -1, info->original_topic, -1);
    add_int(h, H_PREFIX "original-partition", info->original_partition);
    add_int(h, H_PREFIX "original-offset", info->original_offset);
    rd_kafka_header_add(h, H_PREFIX "group", -1, info->group, -1);
    add_int(h, H_PREFIX "attempt", info->attempt);
    add_int(h, H_PREFIX "max-attempts", info->max_attempts);
    add_int(h, H_PREFIX "not-before", info->not_before_ms);
    if (info->deadline_ms > 0)
        add_int(h, H_PREFIX "deadline", info->deadline_ms);
    rd_kafka_header_add(h, H_PREFIX "reason", -1, info->reason, -1);
    if (info->last_reason[0] != '\0')
        rd_kafka_header_add(h, H_PREFIX "last-reason", -1, info->last_reason, -1);
    rd_kafka_header_add(h, H_PREFIX "error", -1, info->error, -1);
    add_int(h, H_PREFIX "first-failed-at", info->first_failed_at_ms);
    if (info->expired[0] != '\0')
        rd_kafka_header_add(h, H_PREFIX "expired", -1, info->expired, -1);
    if (extra_name != NULL && extra_value != NULL)
        rd_kafka_header_add(h, extra_name, -1, extra_value, -1);
    return h;
}

int retry_policy_from_env(retry_policy_t *p, char *errstr, size_t errstr_size)
{
    const char *kind, *factor;
    long long attempts, initial, max;
    char *end;

    memset(p, 0, sizeof(*p));
    if (cfg_str("RETRY_BACKOFF", "exponential", &kind, errstr, errstr_size) != 0)
        return -1;
    if (strcmp(kind, "exponential") == 0) {
        p->exponential = 1;
    } else if (strcmp(kind, "fixed") != 0) {
        util_errf(errstr, errstr_size, "RETRY_BACKOFF: '%s' must be fixed or exponential", kind);
        return -1;
    }
    if (cfg_duration_ms("RETRY_INITIAL", "1s", 1, 86400000LL, &initial, errstr,
                        errstr_size) != 0 ||
        cfg_duration_ms("RETRY_MAX", "60s", 1, 7 * 86400000LL, &max, errstr,
                        errstr_size) != 0 ||
        cfg_int("RETRY_MAX_ATTEMPTS", 8, 0, 100000, &attempts, errstr, errstr_size) != 0 ||
        cfg_str("RETRY_FACTOR", "2", &factor, errstr, errstr_size) != 0)
        return -1;
    p->initial_ms = initial;
    p->max_ms = max;
    errno = 0;
    p->factor = strtod(factor, &end);
    if (errno != 0 || end == factor || *end != '\0' || !(p->factor >= 1.0) ||
        p->factor > 100.0) {
        util_errf(errstr, errstr_size, "RETRY_FACTOR: '%s' must be a number from 1 to 100",
                  factor);
        return -1;
    }
    if (p->max_ms < p->initial_ms) {
        util_errf(errstr, errstr_size, "RETRY_MAX: must not be below RETRY_INITIAL");
        return -1;
    }
    p->max_attempts = (int)attempts;
    return 0;
}

int64_t retry_policy_delay(const retry_policy_t *p, int attempt)
{
    double d = (double)p->initial_ms;

    if (p->exponential) {
        for (int i = 1; i < attempt && d < (double)p->max_ms; i++)
            d *= p->factor;
    }
    return d < (double)p->max_ms ? (int64_t)d : p->max_ms;
}

int retry_redelivery_topic(const char *group, char *out, size_t out_size)
{
    int n = snprintf(out, out_size, "retry.%s", group);

    return n < 0 || (size_t)n >= out_size ? -1 : 0;
}
