/* record: what the retry service does with the retry contract of libcommon/retry.h (the
 * contract itself is docs/retry.md): a record on `retry` read into a retry_record_t, the
 * give-up rule, the original headers kept in an encoding of ours, and the headers of what
 * it sends. Pure logic, no I/O. */
#include "retry_service.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "util.h"

#define ENCODING_V1 0x01
#define NULL_VALUE_LEN 0xFFFFFFFFu

/* Copies text, made printable, into info->error (cut to RETRY_ERROR_MAX): the service
 * keeps and sends errors as printable ASCII only. */
static void set_printable_error(retry_info_t *info, const char *text)
{
    char buf[RETRY_ERROR_MAX + 1];

    retry_printable(text, text != NULL ? strlen(text) : 0, buf, sizeof(buf));
    retry_set_error(info, buf);
}

int record_parse(const rd_kafka_headers_t *hdrs, retry_record_t *r,
                 char *errstr, size_t errstr_size)
{
    const void *val = NULL;
    size_t size = 0;
    char error[RETRY_ERROR_MAX + 1];

    memset(r, 0, sizeof(*r));
    /* First, so that even a record found invalid below can be told by its event. */
    if (hdrs != NULL && rd_kafka_header_get_last(hdrs, "ce_id", &val, &size) ==
                            RD_KAFKA_RESP_ERR_NO_ERROR &&
        val != NULL && size == UTIL_UUID_LEN) {
        memcpy(r->ce_id, val, size);
        r->ce_id[size] = '\0';
        if (!util_is_uuid(r->ce_id))
            r->ce_id[0] = '\0';
    }
    /* On `retry` an attempt is at least 1: only a consumer's hand-over puts records there. */
    if (retry_info_parse(hdrs, 1, &r->info, errstr, errstr_size) != 0)
        return -1;
    /* A record on `retry` is never a notice or a give-up: what those headers would say is
     * decided here, on the way out. */
    r->info.last_reason[0] = '\0';
    r->info.expired[0] = '\0';
    snprintf(error, sizeof(error), "%s", r->info.error);
    set_printable_error(&r->info, error);
    return 0;
}

int64_t record_due_at(int64_t not_before_ms, int64_t deadline_ms)
{
    return deadline_ms != RETRY_NO_DEADLINE && deadline_ms < not_before_ms ? deadline_ms
                                                                           : not_before_ms;
}

retry_action_t record_decide(const retry_record_t *r, int64_t now_ms)
{
    const retry_info_t *i = &r->info;

    if (i->attempt > i->max_attempts)
        return RETRY_GIVE_UP_MAX_ATTEMPTS;
    if (i->deadline_ms != RETRY_NO_DEADLINE &&
        (i->not_before_ms > i->deadline_ms || now_ms >= i->deadline_ms))
        return RETRY_GIVE_UP_DEADLINE;
    return RETRY_REDELIVER;
}

const char *record_action_reason(retry_action_t a)
{
    switch (a) {
    case RETRY_GIVE_UP_MAX_ATTEMPTS:
        return RETRY_REASON_MAX_ATTEMPTS;
    case RETRY_GIVE_UP_DEADLINE:
        return RETRY_REASON_DEADLINE_EXCEEDED;
    default:
        return NULL;
    }
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

        if (retry_header_is_ours(name))
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

        if (retry_header_is_ours(name))
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

int record_headers_add(rd_kafka_headers_t *hdrs, const retry_record_t *r, record_out_t out,
                       const char *give_up, const char *error, char *errstr,
                       size_t errstr_size)
{
    retry_info_t info = r->info;

    if (out != OUT_REDELIVERY && give_up == NULL) {
        util_errf(errstr, errstr_size, "no give-up reason");
        return -1;
    }
    set_printable_error(&info, error != NULL ? error : r->info.error);
    info.last_reason[0] = '\0';
    info.expired[0] = '\0';
    if (out == OUT_DEAD_LETTER) {
        snprintf(info.reason, sizeof(info.reason), "%s", give_up);
        snprintf(info.last_reason, sizeof(info.last_reason), "%s", r->info.reason);
    } else if (out == OUT_NOTICE) {
        snprintf(info.expired, sizeof(info.expired), "%s", give_up);
    }
    if (retry_headers_add(hdrs, &info, RETRY_HDRS_FULL) != 0) {
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
    rd_kafka_headers_t *hdrs = retry_headers_copy(in), *ret = NULL;
    retry_info_t info;

    memset(&info, 0, sizeof(info));
    snprintf(info.original_topic, sizeof(info.original_topic), "%s", topic);
    info.original_partition = partition;
    info.original_offset = offset;
    snprintf(info.group, sizeof(info.group), "%s", group);
    snprintf(info.reason, sizeof(info.reason), "%s", RETRY_REASON_INVALID_RECORD);
    set_printable_error(&info, error);
    info.first_failed_at_ms = now_ms;
    if (hdrs == NULL || retry_headers_add(hdrs, &info, RETRY_HDRS_INVALID) != 0)
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
