/* strbuf: a growable, always NUL-terminated byte string. Contract in strbuf.h. */
#include "strbuf.h"

#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* The content of every buffer that has allocated nothing. Never written: strbuf_grow
 * replaces it before the first byte is stored. */
char strbuf_empty[1];

void strbuf_init(strbuf_t *sb, size_t max)
{
    sb->buf = strbuf_empty;
    sb->len = 0;
    sb->alloc = 0;
    sb->max = max;
    sb->failed = 0;
}

int strbuf_grow(strbuf_t *sb, size_t extra)
{
    size_t need, nalloc;
    char *p;

    if (sb->failed)
        return -1;
    if (extra > SIZE_MAX - 1 - sb->len || (sb->max > 0 && sb->len + extra > sb->max)) {
        sb->failed = 1;
        return -1;
    }
    need = sb->len + extra + 1;
    if (need <= sb->alloc)
        return 0;
    nalloc = sb->alloc < 64 ? 64 : sb->alloc;
    while (nalloc < need)
        nalloc = nalloc > SIZE_MAX / 2 ? need : nalloc * 2;
    p = realloc(sb->alloc == 0 ? NULL : sb->buf, nalloc);
    if (p == NULL) {
        sb->failed = 1;
        return -1;
    }
    if (sb->alloc == 0)
        p[0] = '\0';
    sb->buf = p;
    sb->alloc = nalloc;
    return 0;
}

int strbuf_add(strbuf_t *sb, const void *data, size_t n)
{
    if (strbuf_grow(sb, n) != 0)
        return -1;
    if (n > 0)
        memcpy(sb->buf + sb->len, data, n);
    sb->len += n;
    sb->buf[sb->len] = '\0';
    return 0;
}

int strbuf_adds(strbuf_t *sb, const char *s)
{
    return strbuf_add(sb, s, strlen(s));
}

int strbuf_addch(strbuf_t *sb, char c)
{
    return strbuf_add(sb, &c, 1);
}

int strbuf_addf(strbuf_t *sb, const char *fmt, ...)
{
    va_list ap;
    int n;

    if (sb->failed)
        return -1;
    va_start(ap, fmt);
    n = vsnprintf(NULL, 0, fmt, ap);
    va_end(ap);
    if (n < 0 || strbuf_grow(sb, (size_t)n) != 0) {
        sb->failed = 1;
        return -1;
    }
    va_start(ap, fmt);
    vsnprintf(sb->buf + sb->len, (size_t)n + 1, fmt, ap);
    va_end(ap);
    sb->len += (size_t)n;
    return 0;
}

void strbuf_reset(strbuf_t *sb)
{
    sb->len = 0;
    sb->failed = 0;
    if (sb->alloc > 0)
        sb->buf[0] = '\0';
}

void strbuf_release(strbuf_t *sb)
{
    if (sb->alloc > 0)
        free(sb->buf);
    strbuf_init(sb, sb->max);
}

char *strbuf_detach(strbuf_t *sb, size_t *len_out)
{
    char *out;
    size_t len = sb->len;

    if (sb->alloc > 0) {
        out = sb->buf;
        strbuf_init(sb, sb->max);
    } else {
        out = strdup("");
        strbuf_release(sb);
        len = 0;
    }
    if (len_out != NULL)
        *len_out = out != NULL ? len : 0;
    return out;
}
