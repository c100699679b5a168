/* retry: the dozen-* header contract (read with full validation, write, group names, the
 * redelivery topic) and the backoff policy, shared by consumers, the retry service and
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

#define QUOTE_MAX 64         /* how much of a bad value an error message quotes */

void retry_printable(const char *in, size_t in_len, char *out, size_t out_size)
{
    size_t i;

    if (out_size == 0)
        return;
    for (i = 0; in != NULL && i < in_len && i + 1 < out_size; i++) {
        unsigned char c = (unsigned char)in[i];
        out[i] = c >= 0x20 && c <= 0x7e ? (char)c : '?';
    }
    out[i] = '\0';
}

/* Quotes a bad header value for an error message: printable, cut to QUOTE_MAX. */
static void quote_value(const void *val, size_t size, char *out, size_t out_size)
{
    char buf[QUOTE_MAX + 4];

    retry_printable(val, size < QUOTE_MAX ? size : QUOTE_MAX, buf, sizeof(buf));
    snprintf(out, out_size, "'%s%s'", buf, size > QUOTE_MAX ? "..." : "");
}

/* Finds the last header called name. Returns 1 with the value and its size, 0 when it is
 * absent or has a null value (which carries nothing). */
static int header_get(const rd_kafka_headers_t *hdrs, const char *name, const void **val,
                      size_t *size)
{
    *val = NULL;
    *size = 0;
    if (hdrs == NULL ||
        rd_kafka_header_get_last(hdrs, name, val, size) != RD_KAFKA_RESP_ERR_NO_ERROR)
        return 0;
    return *val != NULL;
}

/* Reads header name as a base-10 integer in [min, max] (digits only, no sign). required:
 * absent is an error; otherwise absent leaves *out = absent and returns 0. */
static int header_int(const rd_kafka_headers_t *hdrs, const char *name, int required,
                      int64_t min, int64_t max, int64_t absent, int64_t *out, char *errstr,
                      size_t errstr_size)
{
    const void *val;
    const unsigned char *p;
    size_t size, i;
    int64_t n = 0;
    char quoted[QUOTE_MAX + 16];

    *out = absent;
    if (!header_get(hdrs, name, &val, &size)) {
        if (!required)
            return 0;
        util_errf(errstr, errstr_size, "missing header '%s'", name);
        return -1;
    }
    p = val;
    for (i = 0; i < size; i++) {
        int d = p[i] - '0';

        if (d < 0 || d > 9 || n > (INT64_MAX - d) / 10)
            break; /* not a digit, or past what an int64_t holds */
        n = n * 10 + d;
    }
    if (size == 0 || i < size || n < min || n > max) {
        quote_value(val, size, quoted, sizeof(quoted));
        util_errf(errstr, errstr_size, "header '%s': %s is not an integer from %lld to %lld",
                  name, quoted, (long long)min, (long long)max);
        return -1;
    }
    *out = n;
    return 0;
}

/* 1 if s[0..len) is 1..max characters of [A-Za-z0-9._-]. */
static int name_chars_ok(const unsigned char *s, size_t len, size_t max)
{
    if (len == 0 || len > max)
        return 0;
    for (size_t i = 0; i < len; i++) {
        unsigned char c = s[i];
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
              c == '.' || c == '_' || c == '-'))
            return 0;
    }
    return 1;
}

int retry_group_valid(const char *s)
{
    return s != NULL && name_chars_ok((const unsigned char *)s, strlen(s), RETRY_GROUP_MAX);
}

/* Reads a header made of 1..max characters of [A-Za-z0-9._-] into out (max + 1 bytes).
 * Absent: an error when required, else out = "". */
static int header_name(const rd_kafka_headers_t *hdrs, const char *name, int required,
                       size_t max, char *out, char *errstr, size_t errstr_size)
{
    const void *val;
    size_t size;
    char quoted[QUOTE_MAX + 16];

    out[0] = '\0';
    if (!header_get(hdrs, name, &val, &size)) {
        if (!required)
            return 0;
        util_errf(errstr, errstr_size, "missing header '%s'", name);
        return -1;
    }
    if (!name_chars_ok(val, size, max)) {
        quote_value(val, size, quoted, sizeof(quoted));
        util_errf(errstr, errstr_size, "header '%s': %s must be 1 to %zu characters of "
                  "letters, digits, '.', '_' or '-'", name, quoted, max);
        return -1;
    }
    memcpy(out, val, size);
    out[size] = '\0';
    return 0;
}

/* Copies n bytes of text into info->error, cut to RETRY_ERROR_MAX bytes without splitting
 * a UTF-8 character. */
static void set_error_n(retry_info_t *info, const char *text, size_t n)
{
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

void retry_set_error(retry_info_t *info, const char *text)
{
    set_error_n(info, text, text != NULL ? strlen(text) : 0);
}

/* The required headers, in the order retry_info_parse checks them. */
static const char *const required_headers[] = {
    RETRY_HDR_ORIGINAL_TOPIC, RETRY_HDR_ORIGINAL_PARTITION, RETRY_HDR_ORIGINAL_OFFSET,
    RETRY_HDR_GROUP, RETRY_HDR_ATTEMPT, RETRY_HDR_MAX_ATTEMPTS, RETRY_HDR_NOT_BEFORE,
    RETRY_HDR_REASON, RETRY_HDR_FIRST_FAILED_AT,
};

const char *retry_info_first_missing(const rd_kafka_headers_t *hdrs)
{
    const void *val;
    size_t size;

    for (size_t i = 0; i < sizeof(required_headers) / sizeof(required_headers[0]); i++) {
        if (!header_get(hdrs, required_headers[i], &val, &size))
            return required_headers[i];
    }
    return NULL;
}

int retry_info_parse(const rd_kafka_headers_t *hdrs, int min_attempt, retry_info_t *info,
                     char *errstr, size_t errstr_size)
{
    int64_t v;
    const void *val;
    size_t size;

    memset(info, 0, sizeof(*info));
    if (!header_get(hdrs, RETRY_HDR_ORIGINAL_TOPIC, &val, &size) &&
        !header_get(hdrs, RETRY_HDR_GROUP, &val, &size) &&
        !header_get(hdrs, RETRY_HDR_ATTEMPT, &val, &size)) {
        util_errf(errstr, errstr_size, "missing header '%s'", RETRY_HDR_ORIGINAL_TOPIC);
        return 1;
    }
    if (header_name(hdrs, RETRY_HDR_ORIGINAL_TOPIC, 1, RETRY_TOPIC_MAX, info->original_topic,
                    errstr, errstr_size) != 0)
        return -1;
    if (header_int(hdrs, RETRY_HDR_ORIGINAL_PARTITION, 1, 0, INT32_MAX, 0, &v, errstr,
                   errstr_size) != 0)
        return -1;
    info->original_partition = (int32_t)v;
    if (header_int(hdrs, RETRY_HDR_ORIGINAL_OFFSET, 1, 0, INT64_MAX, 0, &info->original_offset,
                   errstr, errstr_size) != 0)
        return -1;
    if (header_name(hdrs, RETRY_HDR_GROUP, 1, RETRY_GROUP_MAX, info->group, errstr,
                    errstr_size) != 0)
        return -1;
    if (header_int(hdrs, RETRY_HDR_ATTEMPT, 1, min_attempt, INT32_MAX, 0, &v, errstr,
                   errstr_size) != 0)
        return -1;
    info->attempt = (int)v;
    if (header_int(hdrs, RETRY_HDR_MAX_ATTEMPTS, 1, 0, INT32_MAX, 0, &v, errstr,
                   errstr_size) != 0)
        return -1;
    info->max_attempts = (int)v;
    if (header_int(hdrs, RETRY_HDR_NOT_BEFORE, 1, 0, RETRY_EPOCH_MS_MAX, 0,
                   &info->not_before_ms, errstr, errstr_size) != 0 ||
        header_int(hdrs, RETRY_HDR_DEADLINE, 0, 1, RETRY_EPOCH_MS_MAX, RETRY_NO_DEADLINE,
                   &info->deadline_ms, errstr, errstr_size) != 0)
        return -1;
    if (header_name(hdrs, RETRY_HDR_REASON, 1, RETRY_REASON_MAX, info->reason, errstr,
                    errstr_size) != 0)
        return -1;
    if (header_int(hdrs, RETRY_HDR_FIRST_FAILED_AT, 1, 0, RETRY_EPOCH_MS_MAX, 0,
                   &info->first_failed_at_ms, errstr, errstr_size) != 0)
        return -1;
    if (header_name(hdrs, RETRY_HDR_LAST_REASON, 0, RETRY_REASON_MAX, info->last_reason,
                    errstr, errstr_size) != 0 ||
        header_name(hdrs, RETRY_HDR_EXPIRED, 0, RETRY_EXPIRED_MAX, info->expired, errstr,
                    errstr_size) != 0)
        return -1;
    /* The error is text for people: kept even when odd (a NUL ends it), but cut. */
    if (header_get(hdrs, RETRY_HDR_ERROR, &val, &size)) {
        const char *nul = memchr(val, '\0', size);

        set_error_n(info, val, nul != NULL ? (size_t)(nul - (const char *)val) : size);
    }
    return 0;
}

int retry_info_read(const rd_kafka_message_t *msg, retry_info_t *info,
                    char *errstr, size_t errstr_size)
{
    rd_kafka_headers_t *hdrs = NULL;

    if (rd_kafka_message_headers(msg, &hdrs) != RD_KAFKA_RESP_ERR_NO_ERROR)
        hdrs = NULL;
    return retry_info_parse(hdrs, 0, info, errstr, errstr_size);
}

int retry_header_is_ours(const char *name)
{
    return strncmp(name, RETRY_HDR_PREFIX, sizeof(RETRY_HDR_PREFIX) - 1) == 0;
}

rd_kafka_headers_t *retry_headers_copy(const rd_kafka_headers_t *src)
{
    rd_kafka_headers_t *h = rd_kafka_headers_new(16), *ret = NULL;
    const char *name;
    const void *val;
    size_t size;

    if (h == NULL)
        goto done;
    for (size_t i = 0; src != NULL &&
                       rd_kafka_header_get_all(src, i, &name, &val, &size) ==
                       RD_KAFKA_RESP_ERR_NO_ERROR; i++) {
        if (retry_header_is_ours(name))
            continue;
        if (rd_kafka_header_add(h, name, -1, val, val != NULL ? (ssize_t)size : 0) !=
            RD_KAFKA_RESP_ERR_NO_ERROR)
            goto done;
    }
    ret = h;
    h = NULL; /* the caller's now */
done:
    if (h != NULL)
        rd_kafka_headers_destroy(h);
    return ret;
}

/* Adds name: the decimal value of v. */
static int add_int(rd_kafka_headers_t *h, const char *name, int64_t v)
{
    char buf[24];

    snprintf(buf, sizeof(buf), "%" PRId64, v);
    return rd_kafka_header_add(h, name, -1, buf, -1) == RD_KAFKA_RESP_ERR_NO_ERROR ? 0 : -1;
}

static int add_str(rd_kafka_headers_t *h, const char *name, const char *v)
{
    return rd_kafka_header_add(h, name, -1, v, -1) == RD_KAFKA_RESP_ERR_NO_ERROR ? 0 : -1;
}

int retry_headers_add(rd_kafka_headers_t *h, const retry_info_t *info, retry_hdrs_t which)
{
    int full = which == RETRY_HDRS_FULL;

    if (add_str(h, RETRY_HDR_ORIGINAL_TOPIC, info->original_topic) != 0 ||
        add_int(h, RETRY_HDR_ORIGINAL_PARTITION, info->original_partition) != 0 ||
        add_int(h, RETRY_HDR_ORIGINAL_OFFSET, info->original_offset) != 0 ||
        add_str(h, RETRY_HDR_GROUP, info->group) != 0)
        return -1;
    if (full && (add_int(h, RETRY_HDR_ATTEMPT, info->attempt) != 0 ||
                 add_int(h, RETRY_HDR_MAX_ATTEMPTS, info->max_attempts) != 0 ||
                 add_int(h, RETRY_HDR_NOT_BEFORE, info->not_before_ms) != 0 ||
                 (info->deadline_ms != RETRY_NO_DEADLINE &&
                  add_int(h, RETRY_HDR_DEADLINE, info->deadline_ms) != 0)))
        return -1;
    if (add_str(h, RETRY_HDR_REASON, info->reason) != 0 ||
        (full && info->last_reason[0] != '\0' &&
         add_str(h, RETRY_HDR_LAST_REASON, info->last_reason) != 0) ||
        add_str(h, RETRY_HDR_ERROR, info->error) != 0 ||
        add_int(h, RETRY_HDR_FIRST_FAILED_AT, info->first_failed_at_ms) != 0 ||
        (full && info->expired[0] != '\0' && add_str(h, RETRY_HDR_EXPIRED, info->expired) != 0))
        return -1;
    return 0;
}

rd_kafka_headers_t *retry_headers_build(const rd_kafka_message_t *msg, const retry_info_t *info,
                                        const char *extra_name, const char *extra_value)
{
    rd_kafka_headers_t *src = NULL, *h, *ret = NULL;

    if (rd_kafka_message_headers(msg, &src) != RD_KAFKA_RESP_ERR_NO_ERROR)
        src = NULL;
    h = retry_headers_copy(src);
    if (h == NULL)
        goto done;
    if (retry_headers_add(h, info, RETRY_HDRS_FULL) != 0 ||
        (extra_name != NULL && extra_value != NULL && add_str(h, extra_name, extra_value) != 0))
        goto done;
    ret = h;
    h = NULL; /* the caller's now */
done:
    if (h != NULL)
        rd_kafka_headers_destroy(h);
    return ret;
}

int retry_redelivery_topic(const char *group, char *out, size_t out_size)
{
    int n = snprintf(out, out_size, "%s%s", RETRY_REDELIVERY_PREFIX, group);

    return n < 0 || (size_t)n >= out_size ? -1 : 0;
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
