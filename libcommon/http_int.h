/* http_int: what the files of the HTTP server share (http.c, http_path.c, http_reply.c);
 * not for use outside libcommon/http*.c and their tests. */
#ifndef DOZEN_HTTP_INT_H
#define DOZEN_HTTP_INT_H

#include <stddef.h>
#include <jansson.h>

#include "http.h"

#define HTTP_MAX_SEGMENTS 16   /* longer paths match no route */
#define HTTP_ERROR_MAX    512  /* characters of an error message */

enum http_split_result { HTTP_SPLIT_OK, HTTP_SPLIT_TOO_MANY, HTTP_SPLIT_BAD };

/* Splits raw (which starts with '/') into percent-decoded segments written into buf
 * (strlen(raw) + 1 bytes; seg[] points into it, HTTP_MAX_SEGMENTS entries). "/" is one
 * empty segment, and a trailing slash gives a trailing empty segment, so "/orders/" does not
 * match "/orders". HTTP_SPLIT_BAD: a malformed escape, one that decodes to '/' or NUL, or a
 * raw space or control character; HTTP_SPLIT_TOO_MANY: more than HTTP_MAX_SEGMENTS. */
enum http_split_result http_path_split(const char *raw, char *buf, char **seg, size_t *nseg);

/* Returns 1 when the segments match pattern, filling params (HTTP_MAX_PARAMS entries,
 * pointing into seg) and *nparams, else 0. A "{..}" pattern segment matches one non-empty
 * segment; others must be equal. */
int http_path_match(const char *pattern, char *const *seg, size_t nseg, const char **params,
                    int *nparams);

/* A new JSON string for msg (bytes that are not UTF-8 become '?'), or NULL when out of
 * memory. */
json_t *http_safe_string(const char *msg);

/* A new {"error": msg} object, or NULL when out of memory. */
json_t *http_error_body(const char *msg);

#endif
