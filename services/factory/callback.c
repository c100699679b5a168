/* callback: reading the legacy factory's delivery callback, in every shape real deployments
 * of that factory send it, and the rule for the attributes the factory is sent. Pure. */
#include "factory.h"

#include <math.h>
#include <stdio.h>
#include <string.h>

#include "util.h"

#define ATTR_PRODUCT_ID "MessageAttributeProductId"
#define ATTR_PRODUCT_CNT "MessageAttributeProductCnt"

int callback_attr_valid(const char *s)
{
    size_t len, i;

    if (s == NULL || (len = strlen(s)) == 0 || len > FACTORY_ATTR_MAX)
        return 0;
    for (i = 0; i < len; i++) {
        unsigned char c = (unsigned char)s[i];

        if (c < 0x20 || c > 0x7e)
            return 0;
    }
    return s[0] != ' ' && s[len - 1] != ' ';
}

int callback_token_form(const char *token)
{
    size_t i;

    if (token == NULL || strlen(token) != FACTORY_TOKEN_LEN)
        return 0;
    for (i = 0; i < FACTORY_TOKEN_LEN; i++) {
        char c = token[i];

        if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f')))
            return 0;
    }
    return 1;
}

/* The count as a number, an integral real ("10.0" is how some JSON writers print 10), or a
 * string of 1..7 decimal digits. Returns 0 with *out in 1..FACTORY_DELIVERY_MAX, else -1. */
static int count_of(json_t *v, long long *out)
{
    long long n = -1;

    if (json_is_integer(v)) {
        n = (long long)json_integer_value(v);
    } else if (json_is_real(v)) {
        double d = json_real_value(v);

        if (d >= 1 && d <= FACTORY_DELIVERY_MAX && floor(d) == d)
            n = (long long)d;
    } else if (json_is_string(v)) {
        const char *s = json_string_value(v);
        size_t len = json_string_length(v), i;

        if (len == 0 || len > 7)
            return -1;
        for (i = 0, n = 0; i < len; i++) {
            if (s[i] < '0' || s[i] > '9')
                return -1;
            n = n * 10 + (s[i] - '0');
        }
    }
    if (n < 1 || n > FACTORY_DELIVERY_MAX)
        return -1;
    *out = n;
    return 0;
}

int callback_parse(const char *body, size_t len, struct delivery_in *out,
                   char *errstr, size_t errstr_size)
{
    json_t *doc = NULL, *inner = NULL, *obj, *pid, *cnt; /* doc, inner: new; the rest borrowed */
    json_error_t jerr;
    int ret = -1;

    memset(out, 0, sizeof(*out));
    doc = json_loadb(body, len, JSON_REJECT_DUPLICATES | JSON_DECODE_ANY, &jerr);
    if (doc == NULL) {
        util_errf(errstr, errstr_size, "body is not JSON: %s", jerr.text);
        goto done;
    }
    obj = doc;
    /* A JSON string holding the object: unwrapped once, never more. */
    if (json_is_string(doc)) {
        inner = json_loadb(json_string_value(doc), json_string_length(doc),
                           JSON_REJECT_DUPLICATES | JSON_DECODE_ANY, &jerr);
        if (inner == NULL) {
            util_errf(errstr, errstr_size, "body is a JSON string that is not JSON: %s",
                      jerr.text);
            goto done;
        }
        obj = inner;
    }
    if (!json_is_object(obj)) {
        util_errf(errstr, errstr_size, "body must be a JSON object, or a JSON string of one");
        goto done;
    }
    pid = json_object_get(obj, ATTR_PRODUCT_ID);
    cnt = json_object_get(obj, ATTR_PRODUCT_CNT);
    if (!callback_attr_valid(json_string_value(pid))) {
        util_errf(errstr, errstr_size, "'" ATTR_PRODUCT_ID "' must be %s", FACTORY_ATTR_RULE);
        goto done;
    }
    if (cnt == NULL || count_of(cnt, &out->count) != 0) {
        util_errf(errstr, errstr_size, "'" ATTR_PRODUCT_CNT "' must be a whole number from 1 "
                  "to %d, or a string of its digits", FACTORY_DELIVERY_MAX);
        goto done;
    }
    snprintf(out->product_id, sizeof(out->product_id), "%s", json_string_value(pid));
    ret = 0;
done:
    json_decref(inner);
    json_decref(doc);
    return ret;
}
