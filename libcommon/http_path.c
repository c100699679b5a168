/* http_path: splitting a raw request path into percent-decoded segments, and matching
 * them against route patterns; pure functions. */
#include "http_int.h"

#include <stddef.h>
#include <string.h>

#include "util.h"

/* Splits raw (which starts with '/') into percent-decoded segments written into buf
 * (strlen(raw) + 1 bytes; segments point into it). "/" is one empty segment, and a
 * trailing slash gives a trailing empty segment, so "/orders/" does not match "/orders".
 * HTTP_SPLIT_BAD: a malformed escape, one that decodes to '/' or NUL, or a raw space or
 * control character (MHD lets those through). */
enum http_split_result http_path_split(const char *raw, char *buf, char **seg, size_t *nseg)
{
    const char *p = raw + 1;
    char *o = buf;
    size_t n = 0;

    seg[n++] = o;
    for (; *p != '\0'; p++) {
        if (*p == '/') {
            *o++ = '\0';
            if (n == HTTP_MAX_SEGMENTS)
                return HTTP_SPLIT_TOO_MANY;
            seg[n++] = o;
        } else if (*p == '%') {
            int hi = util_hex_value(p[1]), lo = hi < 0 ? -1 : util_hex_value(p[2]);
            int c = hi * 16 + lo;

            if (hi < 0 || lo < 0 || c == '/' || c == 0)
                return HTTP_SPLIT_BAD;
            *o++ = (char)c;
            p += 2;
        } else if ((unsigned char)*p <= 0x20 || *p == 0x7f) {
            return HTTP_SPLIT_BAD; /* not allowed unescaped in a request target */
        } else {
            *o++ = *p;
        }
    }
    *o = '\0';
    *nseg = n;
    return HTTP_SPLIT_OK;
}

/* Returns 1 when the segments match pattern, filling params/nparams, else 0. A "{..}"
 * pattern segment matches one non-empty segment; others must be equal. */
int http_path_match(const char *pattern, char *const *seg, size_t nseg,
                         const char **params, int *nparams)
{
    const char *p = pattern;
    size_t i = 0;
    int np = 0;

    if (p == NULL || *p != '/')
        return 0;
    p++;
    for (;;) {
        const char *end = strchr(p, '/');
        size_t len;

        if (end == NULL)
            end = p + strlen(p);
        len = (size_t)(end - p);
        if (i >= nseg)
            return 0;
        if (len >= 2 && p[0] == '{' && p[len - 1] == '}') {
            if (seg[i][0] == '\0' || np >= HTTP_MAX_PARAMS)
                return 0;
            params[np++] = seg[i];
        } else if (strlen(seg[i]) != len || memcmp(seg[i], p, len) != 0) {
            return 0;
        }
        i++;
        if (*end == '\0')
            break;
        p = end + 1;
    }
    if (i != nseg)
        return 0;
    *nparams = np;
    return 1;
}
