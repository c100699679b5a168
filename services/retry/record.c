/* record: the retry record of notes/retry-spec.md: its dozen-* headers read and checked,
 * the original headers kept in an encoding of ours, the headers written on the way out, and
 * the give-up rule. Pure logic, no I/O. */
#include "retry_service.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "util.h"

#define HDR_VALUE_MAX 1024   /* a dozen-* value longer than this is not ours */
#define QUOTE_MAX 64         /* how much of a bad value an error message quotes */
#define ENCODING_V1 0x01
#define NULL_VALUE_LEN 0xFFFFFFFFu

void record_printable(const char *in, size_t in_len, char *out, size_t out_size)
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

    record_printable(val, size < QUOTE_MAX ? size : QUOTE_MAX, buf, sizeof(buf));
    snprintf(out, out_size, "'%s%s'", buf, size > QUOTE_MAX ? "..." : "");
}

/* Finds the last header called name. Returns 1 with the value and its size, 0 when it is absent or
 * has a null value (which carries nothing). */
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
 * absent is an error; otherwise absent leaves *out = -1 and returns 0. */
static int header_int(const rd_kafka_headers_t *hdrs, const char *name, int required,
                      int64_t min, int64_t max, int64_t *out, char *errstr,
                      size_t errstr_size)
{
    const void *val;
    const unsigned char *p;
    size_t size, i;
    int64_t n = 0;
    char quoted[QUOTE_MAX + 8];

    *out = -1;
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

int record_group_valid(const char *s)
{
    return s != NULL && name_chars_ok((const unsigned char *)s, strlen(s), RS_GROUP_MAX);
}

/* Reads a required header made of 1..max characters of [A-Za-z0-9._-] into out
 * (max + 1 bytes). */
static int header_name(const rd_kafka_headers_t *hdrs, const char *name, size_t max,
                       char *out, char *errstr, size_t errstr_size)
{
    const void *val;
    size_t size;
    char quoted[QUOTE_MAX + 8];

    if (!header_get(hdrs, name, &val, &size)) {
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

int record_parse(const rd_kafka_headers_t *hdrs, retry_record_t *r,
                 char *errstr, size_t errstr_size)
{
    int64_t v;
    const void *val;
    size_t size;

    memset(r, 0, sizeof(*r));
    /* First, so that even a record found invalid below can be told by its event. */
    if (header_get(hdrs, "ce_id", &val, &size) && size == UTIL_UUID_LEN) {
        memcpy(r->ce_id, val, size);
        r->ce_id[size] = '\0';
        if (!util_is_uuid(r->ce_id))
            r->ce_id[0] = '\0';
    }
    if (header_name(hdrs, HDR_ORIGINAL_TOPIC, RS_TOPIC_MAX, r->original_topic, errstr,
                    errstr_size) != 0)
        return -1;
    if (header_int(hdrs, HDR_ORIGINAL_PARTITION, 1, 0, INT32_MAX, &v, errstr,
                   errstr_size) != 0)
        return -1;
    r->original_partition = (int32_t)v;
    if (header_int(hdrs, HDR_ORIGINAL_OFFSET, 1, 0, INT64_MAX, &r->original_offset, errstr,
                   errstr_size) != 0)
        return -1;
    if (header_name(hdrs, HDR_GROUP, RS_GROUP_MAX, r->group, errstr, errstr_size) != 0)
        return -1;
    if (header_int(hdrs, HDR_ATTEMPT, 1, 1, INT32_MAX, &v, errstr, errstr_size) != 0)
        return -1;
    r->attempt = (int32_t)v;
    if (header_int(hdrs, HDR_MAX_ATTEMPTS, 1, 0, INT32_MAX, &v, errstr, errstr_size) != 0)
        return -1;
    r->max_attempts = (int32_t)v;
    if (header_int(hdrs, HDR_NOT_BEFORE, 1, 0, RS_EPOCH_MS_MAX, &r->not_before_ms,
                   errstr, errstr_size) != 0 ||
        header_int(hdrs, HDR_DEADLINE, 0, 0, RS_EPOCH_MS_MAX, &r->deadline_ms,
                   errstr, errstr_size) != 0)
        return -1;
    if (header_name(hdrs, HDR_REASON, RS_REASON_MAX, r->reason, errstr, errstr_size) != 0)
        return -1;
    if (header_int(hdrs, HDR_FIRST_FAILED_AT, 1, 0, RS_EPOCH_MS_MAX,
                   &r->first_failed_at_ms, errstr, errstr_size) != 0)
        return -1;
    /* The error is text for people: kept even when odd, but printable and cut. */
    if (header_get(hdrs, HDR_ERROR, &val, &size))
        record_printable(val, size, r->error, sizeof(r->error));
    return 0;
}

int record_redelivery_topic(const char *group, char *out, size_t out_size)
{
    int n = snprintf(out, out_size, "%s%s", RS_REDELIVERY_PREFIX, group);

    return n < 0 || (size_t)n >= out_size ? -1 : 0;
}

int64_t record_due_at(int64_t not_before_ms, int64_t deadline_ms)
{
    return deadline_ms >= 0 && deadline_ms < not_before_ms ? deadline_ms : not_before_ms;
}

retry_action_t record_decide(const retry_record_t *r, int64_t now_ms)
{
    if (r->attempt > r->max_attempts)
        return RETRY_GIVE_UP_MAX_ATTEMPTS;
    if (r->deadline_ms >= 0 &&
        (r->not_before_ms > r->deadline_ms || now_ms >= r->deadline_ms))
        return RETRY_GIVE_UP_DEADLINE;
    return RETRY_REDELIVER;
}

const char *record_action_reason(retry_action_t a)
{
    switch (a) {
    case RETRY_GIVE_UP_MAX_ATTEMPTS:
        return REASON_MAX_ATTEMPTS;
    case RETRY_GIVE_UP_DEADLINE:
        return REASON_DEADLINE_EXCEEDED;
    default:
        return NULL;
    }
}

static int is_dozen_header(const char *name)
{
    return strncmp(name, HDR_PREFIX, sizeof(HDR_PREFIX) - 1) == 0;
}

static void put_be16(unsigned char *p, size_t v)
{
    p[0] = (unsigned char)(v >> 8);
    p[1] = (unsigned char)v;
}

static void put_be32(unsigned char *p, uint32_t v)
{
    p[0] = (unsigned char)(v >> 24);
    p[1] = (unsigned char)(v >> 16);
    p[2] = (unsigned char)(v >> 8);
    p[3] = (unsigned char)v;
}

int record_headers_encode(const rd_kafka_headers_t *hdrs, unsigned char **out,
                          size_t *out_len, char *errstr, size_t errstr_size)
{
    const char *name;
    const void *val;
    size_t size, total = 1, i, pos;
    unsigned char *buf;

    *out = NULL;
    *out_len = 0;
    /* First pass: the size, with every limit checked. */
    for (i = 0; hdrs != NULL &&
                rd_kafka_header_get_all(hdrs, i, &name, &val, &size) == RD_KAFKA_RESP_ERR_NO_ERROR;
         i++) {
        size_t nlen = strlen(name);

        if (is_dozen_header(name))
            continue;
        if (nlen > 0xFFFF || size >= NULL_VALUE_LEN) {
            util_errf(errstr, errstr_size, "header too large");
            return -1;
        }
        total += 2 + nlen + 4 + (val != NULL ? size : 0);
    }
    buf = malloc(total);
    if (buf == NULL) {
        util_errf(errstr, errstr_size, "out of memory");
        return -1;
    }
    buf[0] = ENCODING_V1;
    pos = 1;
    for (i = 0; hdrs != NULL &&
                rd_kafka_header_get_all(hdrs, i, &name, &val, &size) == RD_KAFKA_RESP_ERR_NO_ERROR;
         i++) {
        size_t nlen = strlen(name);

        if (is_dozen_header(name))
            continue;
        put_be16(buf + pos, nlen);
        memcpy(buf + pos + 2, name, nlen);
        pos += 2 + nlen;
        put_be32(buf + pos, val != NULL ? (uint32_t)size : NULL_VALUE_LEN);
        pos += 4;
        if (val != NULL && size > 0) {
            memcpy(buf + pos, val, size);
            pos += size;
        }
    }
    *out = buf;
    *out_len = pos;
    return 0;
}

rd_kafka_headers_t *record_headers_decode(const unsigned char *buf, size_t len,
                                          char *errstr, size_t errstr_size)
{
    rd_kafka_headers_t *hdrs = NULL, *ret = NULL;
    size_t pos = 1;

    if (buf == NULL || len < 1 || buf[0] != ENCODING_V1) {
        util_errf(errstr, errstr_size, "stored headers: unknown encoding");
        goto done;
    }
    hdrs = rd_kafka_headers_new(8);
    while (pos < len) {
        size_t nlen, vlen;
        uint32_t raw;
        const unsigned char *name, *val = NULL;

        if (len - pos < 2)
            goto bad;
        nlen = ((size_t)buf[pos] << 8) | buf[pos + 1];
        pos += 2;
        if (len - pos < nlen + 4 || memchr(buf + pos, '\0', nlen) != NULL)
            goto bad;
        name = buf + pos;
        pos += nlen;
        raw = ((uint32_t)buf[pos] << 24) | ((uint32_t)buf[pos + 1] << 16) |
              ((uint32_t)buf[pos + 2] << 8) | buf[pos + 3];
        pos += 4;
        vlen = 0;
        if (raw != NULL_VALUE_LEN) {
            vlen = raw;
            if (len - pos < vlen)
                goto bad;
            val = buf + pos;
            pos += vlen;
        }
        /* A null value stays null; an empty one stays empty (a non-NULL pointer). */
        if (rd_kafka_header_add(hdrs, (const char *)name, (ssize_t)nlen,
                                val != NULL ? (const void *)val : NULL,
                                (ssize_t)vlen) != RD_KAFKA_RESP_ERR_NO_ERROR)
            goto bad;
    }
    ret = hdrs;
    hdrs = NULL; /* the caller's now */
    goto done;
bad:
    util_errf(errstr, errstr_size, "stored headers: truncated or corrupt at byte %zu", pos);
done:
    if (hdrs != NULL)
        rd_kafka_headers_destroy(hdrs);
    return ret;
}

/* Adds name: the base-10 text of v. */
static int add_int(rd_kafka_headers_t *hdrs, const char *name, int64_t v)
{
    char buf[24];

    snprintf(buf, sizeof(buf), "%lld", (long long)v);
    return rd_kafka_header_add(hdrs, name, -1, buf, -1) == RD_KAFKA_RESP_ERR_NO_ERROR ? 0 : -1;
}

static int add_str(rd_kafka_headers_t *hdrs, const char *name, const char *v)
{
    return rd_kafka_header_add(hdrs, name, -1, v, -1) == RD_KAFKA_RESP_ERR_NO_ERROR ? 0 : -1;
}

/* The provenance part every outgoing record carries. */
static int add_provenance(rd_kafka_headers_t *hdrs, const char *topic, int32_t partition,
                          int64_t offset, const char *group)
{
    return add_str(hdrs, HDR_ORIGINAL_TOPIC, topic) != 0 ||
           add_int(hdrs, HDR_ORIGINAL_PARTITION, partition) != 0 ||
           add_int(hdrs, HDR_ORIGINAL_OFFSET, offset) != 0 ||
           add_str(hdrs, HDR_GROUP, group) != 0 ? -1 : 0;
}

int record_headers_add(rd_kafka_headers_t *hdrs, const retry_record_t *r, record_out_t out,
                       const char *give_up, const char *error, char *errstr,
                       size_t errstr_size)
{
    const char *reason = out == OUT_DEAD_LETTER ? give_up : r->reason;
    char text[RS_ERROR_MAX + 1];

    if ((out != OUT_REDELIVERY && give_up == NULL) || reason == NULL) {
        util_errf(errstr, errstr_size, "no give-up reason");
        return -1;
    }
    if (error == NULL)
        error = r->error;
    record_printable(error, strlen(error), text, sizeof(text));
    if (add_provenance(hdrs, r->original_topic, r->original_partition, r->original_offset,
                       r->group) != 0 ||
        add_int(hdrs, HDR_ATTEMPT, r->attempt) != 0 ||
        add_int(hdrs, HDR_MAX_ATTEMPTS, r->max_attempts) != 0 ||
        add_int(hdrs, HDR_NOT_BEFORE, r->not_before_ms) != 0 ||
        (r->deadline_ms >= 0 && add_int(hdrs, HDR_DEADLINE, r->deadline_ms) != 0) ||
        add_str(hdrs, HDR_REASON, reason) != 0 ||
        add_str(hdrs, HDR_ERROR, text) != 0 ||
        add_int(hdrs, HDR_FIRST_FAILED_AT, r->first_failed_at_ms) != 0 ||
        (out == OUT_DEAD_LETTER && add_str(hdrs, HDR_LAST_REASON, r->reason) != 0) ||
        (out == OUT_NOTICE && add_str(hdrs, HDR_EXPIRED, give_up) != 0)) {
        util_errf(errstr, errstr_size, "cannot add headers");
        return -1;
    }
    return 0;
}

rd_kafka_headers_t *record_invalid_headers(const rd_kafka_headers_t *in, const char *group,
                                           const char *topic, int32_t partition,
                                           int64_t offset, const char *error,
                                           int64_t now_ms, char *errstr, size_t errstr_size)
{
    rd_kafka_headers_t *hdrs = rd_kafka_headers_new(16), *ret = NULL;
    const char *name;
    const void *val;
    size_t size;
    char text[RS_ERROR_MAX + 1];

    for (size_t i = 0; in != NULL &&
                       rd_kafka_header_get_all(in, i, &name, &val, &size) == RD_KAFKA_RESP_ERR_NO_ERROR;
         i++) {
        if (is_dozen_header(name))
            continue;
        if (rd_kafka_header_add(hdrs, name, -1, val, val != NULL ? (ssize_t)size : 0) !=
            RD_KAFKA_RESP_ERR_NO_ERROR)
            goto done;
    }
    record_printable(error, strlen(error), text, sizeof(text));
    if (add_provenance(hdrs, topic, partition, offset, group) != 0 ||
        add_str(hdrs, HDR_REASON, REASON_INVALID_RECORD) != 0 ||
        add_str(hdrs, HDR_ERROR, text) != 0 ||
        add_int(hdrs, HDR_FIRST_FAILED_AT, now_ms) != 0)
        goto done;
    ret = hdrs;
    hdrs = NULL; /* the caller's now */
done:
    if (hdrs != NULL)
        rd_kafka_headers_destroy(hdrs);
    if (ret == NULL)
        util_errf(errstr, errstr_size, "cannot build headers");
    return ret;
}

void record_log_safe(char *s)
{
    for (; s != NULL && *s != '\0'; s++) {
        if (*s == '"')
            *s = '\'';
    }
}
