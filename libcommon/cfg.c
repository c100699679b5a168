/* cfg: typed reads of environment variables, with errors that name the variable and value. */
#include "cfg.h"

#include <errno.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "util.h"

/* Returns the variable's value, or NULL when it is unset or empty. Borrowed. */
static const char *env_value(const char *name)
{
    const char *v = getenv(name);

    return (v == NULL || v[0] == '\0') ? NULL : v;
}

static int is_digit(char c)
{
    return c >= '0' && c <= '9';
}

int cfg_str(const char *name, const char *def, const char **out,
            char *errstr, size_t errstr_size)
{
    const char *v = env_value(name);

    if (v == NULL)
        v = def;
    if (v == NULL) {
        util_errf(errstr, errstr_size, "%s is required", name);
        return -1;
    }
    *out = v;
    return 0;
}

/* Parses all of text as a base-10 long long with an optional sign and no surrounding
 * spaces. Returns 0, 1 when the number does not fit in a long long, or -1 when text is
 * not an integer at all. */
static int parse_ll(const char *text, long long *out)
{
    const char *p = text;
    char *end = NULL;
    long long v;

    if (*p == '+' || *p == '-')
        p++;
    if (!is_digit(*p))
        return -1; /* empty number part, leading space, or junk */
    errno = 0;
    v = strtoll(text, &end, 10);
    if (end == text || *end != '\0')
        return -1;
    if (errno == ERANGE)
        return 1;
    *out = v;
    return 0;
}

int cfg_int(const char *name, long long def, long long min, long long max,
            long long *out, char *errstr, size_t errstr_size)
{
    const char *v = env_value(name);
    long long n = 0;
    int rc;

    if (v == NULL) {
        *out = def;
        return 0;
    }
    rc = parse_ll(v, &n);
    if (rc < 0) {
        util_errf(errstr, errstr_size, "%s: '%s' is not an integer", name, v);
        return -1;
    }
    if (rc > 0) {
        util_errf(errstr, errstr_size, "%s: '%s' is out of range %lld..%lld", name, v, min, max);
        return -1;
    }
    if (n < min || n > max) {
        util_errf(errstr, errstr_size, "%s: %lld is out of range %lld..%lld", name, n, min, max);
        return -1;
    }
    *out = n;
    return 0;
}

int cfg_port(const char *name, int def, int *out, char *errstr, size_t errstr_size)
{
    long long v = 0;

    if (cfg_int(name, def, 1, 65535, &v, errstr, errstr_size) != 0)
        return -1;
    *out = (int)v;
    return 0;
}

int cfg_parse_duration_ms(const char *text, long long *out_ms,
                          char *errstr, size_t errstr_size)
{
    char *end = NULL;
    long long n, mult;

    if (text == NULL || text[0] == '\0') {
        util_errf(errstr, errstr_size, "empty duration");
        return -1;
    }
    if (text[0] == '-') {
        util_errf(errstr, errstr_size, "'%s' is negative", text);
        return -1;
    }
    /* strtoll would accept leading spaces and a sign: require a digit first. */
    if (!is_digit(text[0])) {
        util_errf(errstr, errstr_size,
                "'%s' is not a duration (expected e.g. 500ms, 5s, 10m, 2h)", text);
        return -1;
    }
    errno = 0;
    n = strtoll(text, &end, 10);
    if (errno == ERANGE) {
        util_errf(errstr, errstr_size, "'%s' is too large", text);
        return -1;
    }

    if (*end == '\0' || strcmp(end, "ms") == 0) {
        mult = 1;
    } else if (strcmp(end, "s") == 0) {
        mult = 1000;
    } else if (strcmp(end, "m") == 0) {
        mult = 60 * 1000;
    } else if (strcmp(end, "h") == 0) {
        mult = 60 * 60 * 1000;
    } else {
        util_errf(errstr, errstr_size, "'%s' has an unknown unit '%s' (use ms, s, m or h)",
                text, end);
        return -1;
    }
    if (n > LLONG_MAX / mult) {
        util_errf(errstr, errstr_size, "'%s' is too large", text);
        return -1;
    }
    *out_ms = n * mult;
    return 0;
}

int cfg_duration_ms(const char *name, const char *def, long long min_ms, long long max_ms,
                    long long *out_ms, char *errstr, size_t errstr_size)
{
    const char *v = env_value(name);
    char err[256];
    long long ms = 0;

    if (v == NULL)
        v = def;
    if (v == NULL) {
        util_errf(errstr, errstr_size, "%s is required", name);
        return -1;
    }
    if (cfg_parse_duration_ms(v, &ms, err, sizeof(err)) != 0) {
        util_errf(errstr, errstr_size, "%s: %s", name, err);
        return -1;
    }
    if (ms < min_ms || ms > max_ms) {
        util_errf(errstr, errstr_size, "%s: '%s' is out of range %lld..%lld ms",
                name, v, min_ms, max_ms);
        return -1;
    }
    *out_ms = ms;
    return 0;
}

int cfg_url(const char *name, const char *def, const char **out,
            char *errstr, size_t errstr_size)
{
    const char *u, *host;
    size_t len;

    if (cfg_str(name, def, out, errstr, errstr_size) != 0)
        return -1;
    u = *out;
    len = strlen(u);
    host = strncmp(u, "http://", 7) == 0 ? u + 7 : strncmp(u, "https://", 8) == 0 ? u + 8 : NULL;
    if (host == NULL || host[0] == '\0' || host[0] == '/' || len > 512 || u[len - 1] == '/') {
        util_errf(errstr, errstr_size, "%s: '%.80s' must be an http:// or https:// URL of at "
                  "most 512 characters without a trailing '/'", name, u);
        return -1;
    }
    for (size_t i = 0; i < len; i++) {
        if ((unsigned char)u[i] <= 0x20 || (unsigned char)u[i] >= 0x7f) {
            util_errf(errstr, errstr_size, "%s: the URL contains a space or a control "
                      "character", name);
            return -1;
        }
    }
    return 0;
}
