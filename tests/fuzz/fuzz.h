/* fuzz: what the libFuzzer targets under tests/fuzz/ share: turning the fuzzer's bytes into
 * C strings and Kafka headers, and a check that aborts (so libFuzzer keeps the input) when
 * a property of the code under test does not hold. Header-only, static functions. */
#ifndef DOZEN_FUZZ_H
#define DOZEN_FUZZ_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>
#include <librdkafka/rdkafka.h>

#include "http_int.h"

/* A property that must hold for every input: a failure aborts, which libFuzzer reports as
 * a crash and saves the input. */
#define FUZZ_CHECK(cond)                                                                 \
    do {                                                                                 \
        if (!(cond)) {                                                                   \
            fprintf(stderr, "%s:%d: property failed: %s\n", __FILE__, __LINE__, #cond);  \
            abort();                                                                     \
        }                                                                                \
    } while (0)

/* A new NUL-terminated copy of data (size bytes; a NUL inside cuts the C string there, as
 * a C caller would see it). Aborts when out of memory. The caller frees it. */
static inline char *fuzz_cstr(const uint8_t *data, size_t size)
{
    char *s = malloc(size + 1);

    FUZZ_CHECK(s != NULL);
    if (size > 0)
        memcpy(s, data, size);
    s[size] = '\0';
    return s;
}

/* Reads headers, then a value, from text that reads like an HTTP message:
 *
 *   name=value\n      one header (value: any bytes but '\n', NULs included)
 *   name\n            one header with a null value
 *   \n                end of headers: the rest of the input is the value
 *
 * Returns new headers (the caller owns them; never NULL), and sets *value / *value_len to
 * the value within data (NULL / 0 when there is no blank line). */
static inline rd_kafka_headers_t *fuzz_headers(const uint8_t *data, size_t size,
                                               const uint8_t **value, size_t *value_len)
{
    rd_kafka_headers_t *hdrs = rd_kafka_headers_new(8);
    size_t pos = 0;

    FUZZ_CHECK(hdrs != NULL);
    *value = NULL;
    *value_len = 0;
    while (pos < size) {
        const uint8_t *line = data + pos, *nl = memchr(line, '\n', size - pos);
        size_t len = nl != NULL ? (size_t)(nl - line) : size - pos;
        const uint8_t *eq = memchr(line, '=', len);

        pos += len + (nl != NULL);
        if (len == 0) {
            *value = data + pos;
            *value_len = size - pos;
            break;
        }
        if (eq != NULL)
            rd_kafka_header_add(hdrs, (const char *)line, (ssize_t)(eq - line), eq + 1,
                                (ssize_t)(len - (size_t)(eq - line) - 1));
        else
            rd_kafka_header_add(hdrs, (const char *)line, (ssize_t)len, NULL, 0);
    }
    return hdrs;
}

/* 1 if s (len bytes) is printable ASCII only. */
static inline int fuzz_printable(const char *s, size_t len)
{
    for (size_t i = 0; i < len; i++) {
        if ((unsigned char)s[i] < 0x20 || (unsigned char)s[i] > 0x7e)
            return 0;
    }
    return 1;
}

/* The JSON error answer that an error text makes (http_error_body: what http_error sends,
 * the text quoting whatever the input held) exists and serialises. */
static inline void fuzz_check_error_body(const char *why)
{
    json_t *body = http_error_body(why);
    char *text;

    FUZZ_CHECK(body != NULL);
    text = json_dumps(body, JSON_COMPACT);
    FUZZ_CHECK(text != NULL);
    free(text);
    json_decref(body);
}

#endif
