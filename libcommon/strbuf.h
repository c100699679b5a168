/* strbuf: a growable, always NUL-terminated byte string (after git's strbuf).
 *
 * What is always true of a strbuf_t sb that was initialised (STRBUF_INIT or strbuf_init):
 *   - sb.buf points to sb.len bytes followed by a NUL, so it can be used as a C string
 *     whenever the content has no NUL of its own;
 *   - sb.alloc is 0 while sb.buf is the shared static "" (nothing allocated yet), else the
 *     size of the heap block sb.buf points to, and sb.len < sb.alloc;
 *   - sb.max is 0 (no limit) or the largest sb.len the buffer accepts;
 *   - sb.failed is set, and stays set until strbuf_reset, once an add did not fit (out of
 *     memory, or over sb.max); a failed add leaves the content as it was, and later adds do
 *     nothing, so a caller may make several adds and check once.
 * Never write to sb.buf while sb.alloc is 0. */
#ifndef DOZEN_STRBUF_H
#define DOZEN_STRBUF_H

#include <stddef.h>

typedef struct strbuf {
    char *buf;
    size_t len;
    size_t alloc;
    size_t max;
    int failed;
} strbuf_t;

extern char strbuf_empty[];

#define STRBUF_INIT { strbuf_empty, 0, 0, 0, 0 }

/* Initialises sb empty, with nothing allocated, accepting at most max bytes (0: no limit). */
void strbuf_init(strbuf_t *sb, size_t max);

/* Makes room for at least extra more bytes (and the NUL). Returns 0, or -1 (and sets
 * sb->failed) when it would exceed sb->max or memory runs out. */
int strbuf_grow(strbuf_t *sb, size_t extra);

/* Appends n bytes of data (which may hold NULs). Returns 0, or -1 with sb->failed set. */
int strbuf_add(strbuf_t *sb, const void *data, size_t n);

/* Appends a C string. Returns 0, or -1 with sb->failed set. */
int strbuf_adds(strbuf_t *sb, const char *s);

/* Appends one byte. Returns 0, or -1 with sb->failed set. */
int strbuf_addch(strbuf_t *sb, char c);

/* Appends printf-formatted text. Returns 0, or -1 with sb->failed set. */
int strbuf_addf(strbuf_t *sb, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* Empties sb (len 0, failed cleared) and keeps its memory for reuse. */
void strbuf_reset(strbuf_t *sb);

/* Frees sb's memory and leaves it as strbuf_init(sb, sb->max) would. Accepts an sb that
 * never allocated. */
void strbuf_release(strbuf_t *sb);

/* Hands the content over as a malloc'd NUL-terminated string (the caller frees it; an empty
 * buffer gives a fresh ""), and leaves sb empty as strbuf_release does. NULL only if out of
 * memory (sb is then released all the same). */
char *strbuf_detach(strbuf_t *sb, size_t *len_out);

#endif
