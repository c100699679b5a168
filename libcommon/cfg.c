/* cfg: typed reads of environment variables, with errors that name the variable and value. */
#include "cfg.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "util.h"

#define CFG_FILE_MAX 4096      /* bytes of a NAME_FILE secret */
#define CFG_FILES_MAX 32       /* NAME_FILE values kept (for the life of the process) */

/* Values read from NAME_FILE files, kept for the life of the process so that the pointers
 * cfg_str hands out stay valid (as the environment's do). */
static struct {
    char name[128];
    char *value;
} files[CFG_FILES_MAX];
static size_t nfiles;
static pthread_mutex_t files_mu = PTHREAD_MUTEX_INITIALIZER;

/* Reads the secret file path for variable var (named in messages) into a new string *out
 * the caller frees. Returns 0, or -1 with errstr. */
static int read_secret_file(const char *var, const char *path, char **out, char *errstr,
                            size_t errstr_size)
{
    struct stat st;
    char *buf = NULL;
    ssize_t n;
    size_t len = 0, i;
    int fd, ret = -1;

    *out = NULL;
    fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK);
    if (fd < 0) {
        util_errf(errstr, errstr_size, "%s: cannot open '%.200s': %s", var, path,
                  strerror(errno));
        return -1;
    }
    if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
        util_errf(errstr, errstr_size, "%s: '%.200s' is not a regular file", var, path);
        goto done;
    }
    /* A secret anyone else can rewrite is no secret: refuse it, as ssh does a key file. */
    if ((st.st_mode & (S_IWGRP | S_IWOTH)) != 0) {
        util_errf(errstr, errstr_size, "%s: '%.200s' is writable by group or others (mode "
                  "%04o): chmod go-w it", var, path, (unsigned)(st.st_mode & 07777));
        goto done;
    }
    if (st.st_size > CFG_FILE_MAX) {
        util_errf(errstr, errstr_size, "%s: '%.200s' is larger than %d bytes", var, path,
                  CFG_FILE_MAX);
        goto done;
    }
    buf = malloc(CFG_FILE_MAX + 2);
    if (buf == NULL) {
        util_errf(errstr, errstr_size, "%s: out of memory", var);
        goto done;
    }
    while (len < CFG_FILE_MAX + 1 &&
           (n = read(fd, buf + len, CFG_FILE_MAX + 1 - len)) != 0) {
        if (n < 0) {
            if (errno == EINTR)
                continue;
            util_errf(errstr, errstr_size, "%s: cannot read '%.200s': %s", var, path,
                      strerror(errno));
            goto done;
        }
        len += (size_t)n;
    }
    if (len > CFG_FILE_MAX) {
        util_errf(errstr, errstr_size, "%s: '%.200s' is larger than %d bytes", var, path,
                  CFG_FILE_MAX);
        goto done;
    }
    /* One line: the trailing newline an editor or `echo` adds is not part of the value. */
    if (len > 0 && buf[len - 1] == '\n')
        len--;
    if (len > 0 && buf[len - 1] == '\r')
        len--;
    buf[len] = '\0';
    for (i = 0; i < len; i++) {
        if ((unsigned char)buf[i] < 0x20 || buf[i] == 0x7f) {
            util_errf(errstr, errstr_size, "%s: '%.200s' must hold one line of text (a "
                      "control character at byte %zu)", var, path, i);
            goto done;
        }
    }
    if (len == 0) {
        util_errf(errstr, errstr_size, "%s: '%.200s' is empty", var, path);
        goto done;
    }
    *out = buf;
    buf = NULL;
    ret = 0;
done:
    free(buf);
    close(fd);
    return ret;
}

/* The value of name: the variable when set and not empty, else the contents of the file
 * that name_FILE names (read once, then kept). *out = NULL when neither is set. Returns 0,
 * or -1 with errstr when both are set or the file is not usable. */
static int env_value(const char *name, const char **out, char *errstr, size_t errstr_size)
{
    const char *v = getenv(name), *path;
    char var[160], *value = NULL;
    size_t i;
    int ret = -1;

    if (snprintf(var, sizeof(var), "%s_FILE", name) >= (int)sizeof(var)) {
        util_errf(errstr, errstr_size, "%s: name too long", name);
        return -1;
    }
    path = getenv(var);
    if (path != NULL && path[0] == '\0')
        path = NULL;
    if (v != NULL && v[0] != '\0') {
        if (path != NULL) {
            util_errf(errstr, errstr_size, "%s and %s are both set: use one", name, var);
            return -1;
        }
        *out = v;
        return 0;
    }
    *out = NULL;
    if (path == NULL)
        return 0;
    pthread_mutex_lock(&files_mu);
    for (i = 0; i < nfiles; i++) {
        if (strcmp(files[i].name, name) == 0) {
            *out = files[i].value;
            ret = 0;
            goto done;
        }
    }
    if (nfiles == CFG_FILES_MAX || strlen(name) >= sizeof(files[0].name)) {
        util_errf(errstr, errstr_size, "%s: too many *_FILE settings", var);
        goto done;
    }
    if (read_secret_file(var, path, &value, errstr, errstr_size) != 0)
        goto done;
    snprintf(files[nfiles].name, sizeof(files[nfiles].name), "%s", name);
    files[nfiles].value = value; /* kept until exit: cfg_str's callers borrow it */
    nfiles++;
    *out = value;
    ret = 0;
done:
    pthread_mutex_unlock(&files_mu);
    return ret;
}

static int is_digit(char c)
{
    return c >= '0' && c <= '9';
}

int cfg_str(const char *name, const char *def, const char **out,
            char *errstr, size_t errstr_size)
{
    const char *v;

    if (env_value(name, &v, errstr, errstr_size) != 0)
        return -1;
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
    const char *v;
    long long n = 0;
    int rc;

    if (env_value(name, &v, errstr, errstr_size) != 0)
        return -1;
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
    const char *v;
    char err[256];
    long long ms = 0;

    if (env_value(name, &v, errstr, errstr_size) != 0)
        return -1;
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
