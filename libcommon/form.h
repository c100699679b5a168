/* form: application/x-www-form-urlencoded bodies, decoded carefully (the WHATWG URL
 * standard's rules). Pure functions: the SMS stand-in reads Twilio sends with them, the
 * notifier Twilio's status callbacks. */
#ifndef DOZEN_FORM_H
#define DOZEN_FORM_H

#include <stddef.h>

/* A form body, decoded. */
struct form_pair {
    const char *key;
    const char *value;    /* "" for "key" or "key=" */
};

typedef struct form {
    struct form_pair *pairs;     /* owned; in body order */
    size_t n;
    char *buf;                   /* owned; the decoded keys and values point into it */
} form_t;

/*
 * Decodes body (len bytes, need not be NUL-terminated) into out: pairs split on '&', key
 * from value on the first '=', '+' as a space and %XX as that byte in both; empty pairs
 * ("a=1&&b=2") are skipped. A '%' not followed by two hex digits, or an escape that
 * decodes to NUL, is an error. Returns 0 and fills out (free it with form_free), or -1
 * with errstr (out is then empty, and safe to free).
 */
int form_parse(const char *body, size_t len, form_t *out, char *errstr,
               size_t errstr_size);

/* Frees what form_parse allocated and empties f. Accepts NULL and empty forms. */
void form_free(form_t *f);

/* Returns the value of the first pair named key (borrowed from f), or NULL; *count (when
 * not NULL) gets how many pairs have that name. */
const char *form_get(const form_t *f, const char *key, size_t *count);

#endif
