/* standin: the stand-ins' shared lock, stop flag, stoppable sleep, table-driven mode and
 * admin routes. */
#include "standin.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "log.h"
#include "strbuf.h"
#include "util.h"

struct standin {
    pthread_mutex_t lock;
    pthread_cond_t wake;         /* CLOCK_MONOTONIC; broadcast by standin_stop */
    int stopping;
    const struct standin_def *def;
    void *app;                   /* borrowed: what the hooks get */
    void *mode;                  /* owned, def->mode_size bytes */
    void *defaults;              /* owned, def->mode_size bytes */
};

/* ---------------------------------------------------------------------------------- */
/* The mode as data */

#define FIELD(base, knob, type) ((type *)(void *)((char *)(base) + (knob)->offset))
#define CFIELD(base, knob, type) \
    ((const type *)(const void *)((const char *)(base) + (knob)->offset))

/* "a, b, c": the names of a table, for the message about an unknown key. */
static void known_names(const struct standin_knob *t, char *out, size_t out_size)
{
    size_t used = 0;
    int n;

    out[0] = '\0';
    for (; t->name != NULL; t++) {
        n = snprintf(out + used, out_size - used, "%s%s", used > 0 ? ", " : "", t->name);
        if (n < 0 || (size_t)n >= out_size - used)
            return; /* cut: the tables are short, this does not happen */
        used += (size_t)n;
    }
}

static const struct standin_knob *knob_find(const struct standin_knob *t, const char *key)
{
    for (; t->name != NULL; t++) {
        if (strcmp(t->name, key) == 0)
            return t;
    }
    return NULL;
}

/* Patches the struct at base, described by table, from the object v. prefix is "" at the
 * top, or "figures." for the keys of an OBJECT knob named "figures". Returns 0, or -1 with
 * errstr (base may be changed then: the caller patches a copy). */
static int patch_table(const struct standin_knob *table, const char *prefix, void *base,
                       json_t *v, char *errstr, size_t errstr_size)
{
    const struct standin_knob *k;
    const char *key;
    json_t *item;   /* borrowed */
    char name[96], known[256];
    json_int_t n;

    if (!json_is_object(v)) {
        if (prefix[0] == '\0')
            util_errf(errstr, errstr_size, "request body must be a JSON object");
        else
            util_errf(errstr, errstr_size, "field '%.*s' must be an object",
                      (int)strlen(prefix) - 1, prefix);
        return -1;
    }
    json_object_foreach(v, key, item) {
        k = knob_find(table, key);
        if (k == NULL) {
            /* the name is the client's: cut, and made UTF-8-safe by http_error */
            known_names(table, known, sizeof(known));
            util_errf(errstr, errstr_size, "unknown field '%s%.64s' (known: %s)", prefix, key,
                      known);
            return -1;
        }
        snprintf(name, sizeof(name), "%s%s", prefix, key); /* known names: fits */
        switch (k->type) {
        case STANDIN_KNOB_INT:
            if (!json_is_integer(item)) {
                util_errf(errstr, errstr_size, "field '%s' must be an integer", name);
                return -1;
            }
            n = json_integer_value(item);
            if (n < k->min || n > k->max) {
                util_errf(errstr, errstr_size, "field '%s' must be between %lld and %lld",
                          name, k->min, k->max);
                return -1;
            }
            *FIELD(base, k, long long) = (long long)n;
            break;
        case STANDIN_KNOB_BOOL:
            if (!json_is_boolean(item)) {
                util_errf(errstr, errstr_size, "field '%s' must be true or false", name);
                return -1;
            }
            *FIELD(base, k, int) = json_is_true(item);
            break;
        case STANDIN_KNOB_OBJECT:
            snprintf(name, sizeof(name), "%s%s.", prefix, key); /* fits */
            if (patch_table(k->sub, name, FIELD(base, k, char), item, errstr,
                            errstr_size) != 0)
                return -1;
            break;
        case STANDIN_KNOB_CUSTOM:
            if (k->patch(item, base, errstr, errstr_size) != 0)
                return -1;
            break;
        }
    }
    return 0;
}

int standin_mode_patch(const struct standin_def *def, const void *cur, json_t *patch,
                       void *out, char *errstr, size_t errstr_size)
{
    void *m = malloc(def->mode_size);
    int ret = -1;

    if (m == NULL) {
        util_errf(errstr, errstr_size, "out of memory");
        goto done;
    }
    memcpy(m, cur, def->mode_size);
    if (patch_table(def->knobs, "", m, patch, errstr, errstr_size) != 0)
        goto done;
    memcpy(out, m, def->mode_size);
    ret = 0;
done:
    free(m);
    return ret;
}

/* The struct at base as a new JSON object, or NULL when out of memory. */
static json_t *table_json(const struct standin_knob *t, const void *base)
{
    json_t *o = json_object(), *v;

    for (; o != NULL && t->name != NULL; t++) {
        switch (t->type) {
        case STANDIN_KNOB_INT:
            v = json_integer((json_int_t)*CFIELD(base, t, long long));
            break;
        case STANDIN_KNOB_BOOL:
            v = json_boolean(*CFIELD(base, t, int));
            break;
        case STANDIN_KNOB_OBJECT:
            v = table_json(t->sub, CFIELD(base, t, char));
            break;
        default:
            v = t->json(base);
            break;
        }
        /* json_object_set_new consumes v, also when it fails (NULL fails too) */
        if (json_object_set_new(o, t->name, v) != 0) {
            json_decref(o);
            o = NULL;
        }
    }
    return o;
}

json_t *standin_mode_json(const struct standin_def *def, const void *mode)
{
    return table_json(def->knobs, mode);
}

static void table_log(const struct standin_knob *t, const void *base, strbuf_t *sb)
{
    char v[256];

    for (; t->name != NULL; t++) {
        switch (t->type) {
        case STANDIN_KNOB_INT:
            strbuf_addf(sb, " %s=%lld", t->name, *CFIELD(base, t, long long));
            break;
        case STANDIN_KNOB_BOOL:
            strbuf_addf(sb, " %s=%d", t->name, *CFIELD(base, t, int));
            break;
        case STANDIN_KNOB_OBJECT:
            table_log(t->sub, CFIELD(base, t, char), sb);
            break;
        default:
            if (t->log != NULL) {
                t->log(base, v, sizeof(v));
                strbuf_addf(sb, " %s=%s", t->name, v);
            }
            break;
        }
    }
}

void standin_log_mode(const struct standin_def *def, const char *event, const void *mode)
{
    strbuf_t sb = STRBUF_INIT;

    table_log(def->knobs, mode, &sb);
    if (sb.failed)
        log_info("%s (out of memory)", event);
    else
        log_info("%s%s", event, sb.buf);
    strbuf_release(&sb);
}

/* ---------------------------------------------------------------------------------- */
/* The shared state */

standin_t *standin_new(const struct standin_def *def, const void *defaults, void *app,
                       char *errstr, size_t errstr_size)
{
    standin_t *si = NULL, *ret = NULL;
    int lock_ready = 0, cond_ready = 0;

    si = calloc(1, sizeof(*si));
    if (si == NULL || (si->mode = malloc(def->mode_size)) == NULL ||
        (si->defaults = malloc(def->mode_size)) == NULL) {
        util_errf(errstr, errstr_size, "out of memory");
        goto done;
    }
    if (pthread_mutex_init(&si->lock, NULL) != 0) {
        util_errf(errstr, errstr_size, "cannot create a mutex");
        goto done;
    }
    lock_ready = 1;
    if (util_cond_init_monotonic(&si->wake) != 0) {
        util_errf(errstr, errstr_size, "cannot create a condition variable");
        goto done;
    }
    cond_ready = 1;
    si->def = def;
    si->app = app;
    memcpy(si->defaults, defaults, def->mode_size);
    memcpy(si->mode, defaults, def->mode_size);
    ret = si;
    si = NULL; /* ownership passed to the caller */
done:
    if (si != NULL) {
        if (cond_ready)
            pthread_cond_destroy(&si->wake);
        if (lock_ready)
            pthread_mutex_destroy(&si->lock);
        free(si->mode);
        free(si->defaults);
        free(si);
    }
    return ret;
}

void standin_free(standin_t *si)
{
    if (si == NULL)
        return;
    pthread_cond_destroy(&si->wake);
    pthread_mutex_destroy(&si->lock);
    free(si->mode);
    free(si->defaults);
    free(si);
}

void standin_lock(standin_t *si)
{
    pthread_mutex_lock(&si->lock);
}

void standin_unlock(standin_t *si)
{
    pthread_mutex_unlock(&si->lock);
}

void *standin_mode_locked(standin_t *si)
{
    return si->mode;
}

void standin_mode_get(standin_t *si, void *out)
{
    pthread_mutex_lock(&si->lock);
    memcpy(out, si->mode, si->def->mode_size);
    pthread_mutex_unlock(&si->lock);
}

int standin_patch(standin_t *si, json_t *patch, void *out, char *errstr,
                  size_t errstr_size)
{
    int rc;

    pthread_mutex_lock(&si->lock);
    rc = standin_mode_patch(si->def, si->mode, patch, si->mode, errstr, errstr_size);
    if (rc == 0 && si->def->patched != NULL)
        si->def->patched(si->app, patch);
    if (out != NULL)
        memcpy(out, si->mode, si->def->mode_size);
    pthread_mutex_unlock(&si->lock);
    return rc;
}

void standin_reset(standin_t *si)
{
    pthread_mutex_lock(&si->lock);
    memcpy(si->mode, si->defaults, si->def->mode_size);
    if (si->def->forget != NULL)
        si->def->forget(si->app);
    pthread_mutex_unlock(&si->lock);
}

void standin_stop(standin_t *si)
{
    pthread_mutex_lock(&si->lock);
    si->stopping = 1;
    pthread_cond_broadcast(&si->wake);
    pthread_mutex_unlock(&si->lock);
}

int standin_sleep(standin_t *si, long long ms)
{
    int stopped;

    pthread_mutex_lock(&si->lock);
    stopped = util_cond_wait_ms(&si->wake, &si->lock, &si->stopping, ms);
    pthread_mutex_unlock(&si->lock);
    return stopped ? -1 : 0;
}

/* ---------------------------------------------------------------------------------- */
/* The admin routes */

static standin_t *standin_of(void *ctx)
{
    return *(standin_t **)ctx;
}

json_t *standin_listing(const char *name, json_t *list, int oom)
{
    if (oom) {
        json_decref(list);
        return NULL;
    }
    return json_pack("{s:o}", name, list); /* "o" steals list, also on failure */
}

void standin_reply_json(http_response_t *res, json_t *body)
{
    if (body == NULL)
        http_error(res, 500, "out of memory");
    else
        http_json(res, 200, body);
}

int standin_health(void *ctx, char *errstr, size_t errstr_size)
{
    (void)ctx;
    (void)errstr;
    (void)errstr_size;
    return 0;
}

/* Sets a 200 response with mode, or 500 when out of memory. */
static void reply(const struct standin_def *def, http_response_t *res, const void *mode)
{
    standin_reply_json(res, standin_mode_json(def, mode));
}

/* Sets a 200 with the current mode, logged as "mode_changed ..." when changed, or a 500. */
static void reply_current(standin_t *si, http_response_t *res, int changed)
{
    void *m = malloc(si->def->mode_size);

    if (m == NULL) {
        http_error(res, 500, "out of memory");
        return;
    }
    standin_mode_get(si, m);
    if (changed)
        standin_log_mode(si->def, "mode_changed", m);
    reply(si->def, res, m);
    free(m);
}

void standin_get_mode(const http_request_t *req, http_response_t *res, void *ctx)
{
    (void)req;
    reply_current(standin_of(ctx), res, 0);
}

void standin_post_mode(const http_request_t *req, http_response_t *res, void *ctx)
{
    standin_t *si = standin_of(ctx);
    void *m = NULL;
    json_t *body;
    char err[512];

    if ((body = http_body_object(req, res)) == NULL)
        goto done;
    if ((m = malloc(si->def->mode_size)) == NULL) {
        http_error(res, 500, "out of memory");
        goto done;
    }
    if (standin_patch(si, body, m, err, sizeof(err)) != 0) {
        http_error(res, 400, "%s", err);
    } else {
        standin_log_mode(si->def, "mode_changed", m);
        reply(si->def, res, m);
    }
done:
    free(m);
    json_decref(body);
}

void standin_reply_mode(standin_t *si, http_response_t *res)
{
    reply_current(si, res, 1);
}

void standin_post_reset(const http_request_t *req, http_response_t *res, void *ctx)
{
    standin_t *si = standin_of(ctx);

    (void)req;
    standin_reset(si);
    log_info("reset");
    standin_reply_mode(si, res);
}
