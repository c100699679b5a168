/* event: CloudEvents 1.0 in the Kafka binary binding (ce_* headers, JSON value). */
#include "event.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "retry.h"
#include "trace.h"
#include "util.h"

/* Copies a non-empty src into dst (dst_size bytes with the NUL); -1 if empty or too long. */
static int copy_field(char *dst, size_t dst_size, const char *src)
{
    size_t len;

    if (src == NULL)
        return -1;
    len = strlen(src);
    if (len == 0 || len >= dst_size)
        return -1;
    memcpy(dst, src, len + 1);
    return 0;
}

int event_meta_new(event_meta_t *m, const char *type, const char *source,
                   char *errstr, size_t errstr_size)
{
    if (m == NULL) {
        util_errf(errstr, errstr_size, "event_meta_new: no event");
        return -1;
    }
    memset(m, 0, sizeof(*m));
    if (copy_field(m->type, sizeof(m->type), type) != 0) {
        util_errf(errstr, errstr_size, "ce_type: empty or longer than %zu bytes",
                sizeof(m->type) - 1);
        return -1;
    }
    if (copy_field(m->source, sizeof(m->source), source) != 0) {
        util_errf(errstr, errstr_size, "ce_source: empty or longer than %zu bytes",
                sizeof(m->source) - 1);
        return -1;
    }
    if (util_uuid_v4(m->id) != 0) {
        util_errf(errstr, errstr_size, "ce_id: no randomness for a UUID");
        return -1;
    }
    if (util_rfc3339(util_now_ms(), m->time, sizeof(m->time)) != 0) {
        util_errf(errstr, errstr_size, "ce_time: cannot format the current time");
        return -1;
    }
    if (trace_current() != NULL)
        snprintf(m->traceparent, sizeof(m->traceparent), "%s", trace_current());
    return 0;
}

rd_kafka_headers_t *event_headers_new(const event_meta_t *m)
{
    rd_kafka_headers_t *hdrs = NULL;
    rd_kafka_headers_t *ret = NULL;

    if (m == NULL)
        goto done;
    hdrs = rd_kafka_headers_new(6);
    if (hdrs == NULL)
        goto done;
    /* Values are written without their NUL, as every other Kafka client expects. */
    if (rd_kafka_header_add(hdrs, "ce_specversion", -1, EVENT_SPECVERSION, -1) != 0 ||
        rd_kafka_header_add(hdrs, "ce_id", -1, m->id, -1) != 0 ||
        rd_kafka_header_add(hdrs, "ce_source", -1, m->source, -1) != 0 ||
        rd_kafka_header_add(hdrs, "ce_type", -1, m->type, -1) != 0 ||
        rd_kafka_header_add(hdrs, "ce_time", -1, m->time, -1) != 0 ||
        rd_kafka_header_add(hdrs, "content-type", -1, EVENT_CONTENT_TYPE, -1) != 0)
        goto done;
    if (m->traceparent[0] != '\0' &&
        (rd_kafka_header_add(hdrs, "ce_traceparent", -1, m->traceparent, -1) != 0 ||
         rd_kafka_header_add(hdrs, "traceparent", -1, m->traceparent, -1) != 0))
        goto done;

    ret = hdrs;
    hdrs = NULL; /* the caller owns them now */
done:
    if (hdrs != NULL)
        rd_kafka_headers_destroy(hdrs);
    return ret;
}

/* Copies the last header called name into dst as a C string. The value must be present,
 * non-empty, shorter than dst_size and free of NUL bytes (header values carry a length,
 * not a terminator, so a NUL inside would silently cut the value). */
static int read_header(const rd_kafka_headers_t *hdrs, const char *name, char *dst,
                       size_t dst_size, char *errstr, size_t errstr_size)
{
    const void *val = NULL;
    size_t size = 0;

    if (hdrs == NULL ||
        rd_kafka_header_get_last(hdrs, name, &val, &size) != RD_KAFKA_RESP_ERR_NO_ERROR) {
        util_errf(errstr, errstr_size, "%s: header missing", name);
        return -1;
    }
    if (val == NULL || size == 0) {
        util_errf(errstr, errstr_size, "%s: header empty", name);
        return -1;
    }
    if (size >= dst_size) {
        util_errf(errstr, errstr_size, "%s: header longer than %zu bytes", name, dst_size - 1);
        return -1;
    }
    if (memchr(val, '\0', size) != NULL) {
        util_errf(errstr, errstr_size, "%s: header contains a NUL byte", name);
        return -1;
    }
    if (!util_utf8_valid(val, size)) {
        util_errf(errstr, errstr_size, "%s: header is not valid UTF-8", name);
        return -1;
    }
    for (size_t i = 0; i < size; i++) {
        unsigned char c = ((const unsigned char *)val)[i];

        if (c < 0x20 || c == 0x7f) {
            util_errf(errstr, errstr_size, "%s: header contains a control character", name);
            return -1;
        }
    }
    memcpy(dst, val, size);
    dst[size] = '\0';
    return 0;
}

int event_meta_parse(const rd_kafka_headers_t *hdrs, event_meta_t *m,
                     char *errstr, size_t errstr_size)
{
    char specversion[8];

    if (m == NULL) {
        util_errf(errstr, errstr_size, "event_meta_parse: no result");
        return -1;
    }
    memset(m, 0, sizeof(*m));
    if (read_header(hdrs, "ce_specversion", specversion, sizeof(specversion),
                    errstr, errstr_size) != 0)
        goto fail;
    if (strcmp(specversion, EVENT_SPECVERSION) != 0) {
        util_errf(errstr, errstr_size, "ce_specversion: '%s' is not " EVENT_SPECVERSION,
                specversion);
        goto fail;
    }
    if (read_header(hdrs, "ce_id", m->id, sizeof(m->id), errstr, errstr_size) != 0)
        goto fail;
    if (!util_is_uuid(m->id)) {
        util_errf(errstr, errstr_size, "ce_id: '%s' is not a UUID", m->id);
        goto fail;
    }
    if (read_header(hdrs, "ce_source", m->source, sizeof(m->source), errstr,
                    errstr_size) != 0 ||
        read_header(hdrs, "ce_type", m->type, sizeof(m->type), errstr, errstr_size) != 0 ||
        read_header(hdrs, "ce_time", m->time, sizeof(m->time), errstr, errstr_size) != 0)
        goto fail;
    /* Handlers pass it to PostgreSQL as a timestamptz: anything else would be refused
     * there (SQLSTATE 22007), after the record had already cost a transaction. */
    if (util_rfc3339_parse(m->time, NULL) != 0) {
        char shown[sizeof(m->time)];

        retry_printable(m->time, strlen(m->time), shown, sizeof(shown));
        util_errf(errstr, errstr_size, "ce_time: '%s' is not an RFC 3339 date-time", shown);
        goto fail;
    }
    return 0;

fail:
    memset(m, 0, sizeof(*m)); /* never half a result */
    return -1;
}

/* The headers of msg (borrowed from it), or NULL when it has none. */
static const rd_kafka_headers_t *message_headers(const rd_kafka_message_t *msg)
{
    rd_kafka_headers_t *hdrs = NULL;

    if (rd_kafka_message_headers(msg, &hdrs) != RD_KAFKA_RESP_ERR_NO_ERROR)
        return NULL;
    return hdrs;
}

int event_meta_read(const rd_kafka_message_t *msg, event_meta_t *m,
                    char *errstr, size_t errstr_size)
{
    if (msg == NULL || m == NULL) {
        util_errf(errstr, errstr_size, "event_meta_read: no record");
        return -1;
    }
    /* A record without any header reads as "ce_specversion: header missing". */
    return event_meta_parse(message_headers(msg), m, errstr, errstr_size);
}

json_t *event_data_read(const rd_kafka_message_t *msg, const char *expected_type,
                        event_meta_t *m, char *errstr, size_t errstr_size)
{
    if (msg == NULL || m == NULL) {
        util_errf(errstr, errstr_size, "event_data_read: no record");
        return NULL;
    }
    return event_data_parse(message_headers(msg), msg->payload, msg->len, expected_type, m,
                            errstr, errstr_size);
}

json_t *event_data_parse(const rd_kafka_headers_t *hdrs, const void *payload, size_t len,
                         const char *expected_type, event_meta_t *m, char *errstr,
                         size_t errstr_size)
{
    json_error_t jerr;
    json_t *data;

    if (event_meta_parse(hdrs, m, errstr, errstr_size) != 0)
        return NULL;
    if (strcmp(m->type, expected_type) != 0) {
        util_errf(errstr, errstr_size, "ce_type is '%s', expected '%s'", m->type,
                  expected_type);
        return NULL;
    }
    if (payload == NULL || len == 0) {
        util_errf(errstr, errstr_size, "record has no value");
        return NULL;
    }
    data = json_loadb(payload, len, JSON_REJECT_DUPLICATES, &jerr);
    if (data == NULL) {
        util_errf(errstr, errstr_size, "value is not JSON: %s", jerr.text);
        return NULL;
    }
    if (!json_is_object(data)) {
        json_decref(data);
        util_errf(errstr, errstr_size, "value is not a JSON object");
        return NULL;
    }
    return data;
}
