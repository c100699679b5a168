/* form: a careful decoder of application/x-www-form-urlencoded bodies (the WHATWG URL
 * standard's rules: '&' between pairs, the first '=' between key and value, '+' a space,
 * %XX a byte). Pure functions. */
#include "form.h"

#include <stdlib.h>
#include <string.h>

#include "util.h"

/* Decodes in[0..len) into out, NUL-terminated; out needs len + 1 bytes. Returns the
 * decoded length, or -1 for a bad escape (one that is cut short, not hex, or NUL). */
static long decode(const char *in, size_t len, char *out)
{
    size_t i, o = 0;

    for (i = 0; i < len; i++) {
        if (in[i] == '+') {
            out[o++] = ' ';
        } else if (in[i] == '%') {
            int hi, lo;

            if (len - i < 3)
                return -1;
            hi = util_hex_value(in[i + 1]);
            lo = util_hex_value(in[i + 2]);
            if (hi < 0 || lo < 0 || (hi == 0 && lo == 0))
                return -1;
            out[o++] = (char)(hi * 16 + lo);
            i += 2;
        } else if (in[i] == '\0') {
            return -1; /* a raw NUL would cut the value short */
        } else {
            out[o++] = in[i];
        }
    }
    out[o] = '\0';
    return (long)o;
}

int form_parse(const char *body, size_t len, form_t *out, char *errstr,
               size_t errstr_size)
{
    form_t f = { NULL, 0, NULL };
    size_t i, npairs = 1, start, end;
    char *o;
    int ret = -1;

    memset(out, 0, sizeof(*out));
    for (i = 0; i < len; i++)
        npairs += body[i] == '&';
    f.pairs = calloc(npairs, sizeof(*f.pairs));
    /* Decoding never lengthens: every pair fits in its own length plus one NUL, and all
     * pairs but the last give up a '&' for it. */
    f.buf = malloc(len + 1);
    if (f.pairs == NULL || f.buf == NULL) {
        util_errf(errstr, errstr_size, "out of memory");
        goto done;
    }
    o = f.buf;
    for (start = 0; start <= len; start = end + 1) {
        const char *pair = body + start, *eq;
        size_t plen, klen;
        long n;

        for (end = start; end < len && body[end] != '&'; end++)
            ;
        plen = end - start;
        if (plen == 0)
            continue;
        eq = memchr(pair, '=', plen);
        klen = eq != NULL ? (size_t)(eq - pair) : plen;
        if ((n = decode(pair, klen, o)) < 0)
            goto bad_escape;
        f.pairs[f.n].key = o;
        o += n + 1;
        if (eq == NULL || klen + 1 == plen) {
            f.pairs[f.n].value = "";
        } else {
            if ((n = decode(eq + 1, plen - klen - 1, o)) < 0)
                goto bad_escape;
            f.pairs[f.n].value = o;
            o += n + 1;
        }
        f.n++;
    }
    *out = f;
    f.pairs = NULL; /* ownership passed to out */
    f.buf = NULL;
    ret = 0;
    goto done;
bad_escape:
    util_errf(errstr, errstr_size, "malformed form body: a '%%' must be followed by two hex "
              "digits, and %%00 is not allowed");
done:
    free(f.pairs);
    free(f.buf);
    return ret;
}

void form_free(form_t *f)
{
    if (f == NULL)
        return;
    free(f->pairs);
    free(f->buf);
    memset(f, 0, sizeof(*f));
}

const char *form_get(const form_t *f, const char *key, size_t *count)
{
    const char *first = NULL;
    size_t i, n = 0;

    for (i = 0; i < f->n; i++) {
        if (strcmp(f->pairs[i].key, key) == 0) {
            if (first == NULL)
                first = f->pairs[i].value;
            n++;
        }
    }
    if (count != NULL)
        *count = n;
    return first;
}
