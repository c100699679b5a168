/* state: the open-data feed's knobs, what each GET /daily is answered, and the record of
 * those answers. */
#include "open_data.h"

#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "util.h"

/* One GET /daily as it was answered. */
struct req_rec {
    int64_t at_ms;               /* wall clock */
    enum od_kind served;
    int status;
    char date[OD_DATE_LEN + 1];  /* "" for "down" */
};

/* The record is a ring of OD_RECORDS_MAX entries, oldest at head, so the newest are kept. */
struct od_state {
    pthread_mutex_t lock;
    pthread_cond_t wake;         /* CLOCK_MONOTONIC; broadcast by state_stop */
    int stopping;
    struct od_mode defaults;
    struct od_mode mode;
    uint64_t invalid_served;     /* "invalid" answers since the start or the last reset */
    struct req_rec *reqs;        /* OD_RECORDS_MAX entries, owned */
    size_t reqs_head, reqs_len;
};

/* ---------------------------------------------------------------------------------- */
/* The mode */

/* Reads an integer field in [min, max]. Returns 0, or -1 with errstr. */
static int patch_int(const char *key, json_t *v, long long min, long long max,
                     long long *out, char *errstr, size_t errstr_size)
{
    json_int_t n;

    if (!json_is_integer(v)) {
        util_errf(errstr, errstr_size, "field '%s' must be an integer", key);
        return -1;
    }
    n = json_integer_value(v);
    if (n < min || n > max) {
        util_errf(errstr, errstr_size, "field '%s' must be between %lld and %lld", key, min,
                  max);
        return -1;
    }
    *out = (long long)n;
    return 0;
}

/* "figures": an object with any subset of the four base values. */
static int patch_figures(json_t *v, struct od_figures *f, char *errstr, size_t errstr_size)
{
    const char *key;
    json_t *item;   /* borrowed */
    long long *dst;
    char name[96];

    if (!json_is_object(v)) {
        util_errf(errstr, errstr_size, "field 'figures' must be an object");
        return -1;
    }
    json_object_foreach(v, key, item) {
        if (strcmp(key, "confirmed") == 0)
            dst = &f->confirmed;
        else if (strcmp(key, "recovered") == 0)
            dst = &f->recovered;
        else if (strcmp(key, "in_treatment") == 0)
            dst = &f->in_treatment;
        else if (strcmp(key, "deaths") == 0)
            dst = &f->deaths;
        else {
            /* the name is the client's: cut, and made UTF-8-safe by http_error */
            util_errf(errstr, errstr_size, "unknown field 'figures.%.64s' (known: confirmed, "
                      "recovered, in_treatment, deaths)", key);
            return -1;
        }
        snprintf(name, sizeof(name), "figures.%s", key); /* a known key: fits */
        if (patch_int(name, item, 0, OD_FIGURE_MAX, dst, errstr, errstr_size) != 0)
            return -1;
    }
    return 0;
}

int od_mode_patch(const struct od_mode *cur, json_t *patch, struct od_mode *out,
                  char *errstr, size_t errstr_size)
{
    struct od_mode m = *cur;
    const char *key;
    json_t *v;   /* borrowed */
    int rc;

    if (!json_is_object(patch)) {
        util_errf(errstr, errstr_size, "request body must be a JSON object");
        return -1;
    }
    json_object_foreach(patch, key, v) {
        rc = 0;
        if (strcmp(key, "mode") == 0) {
            if (od_kind_parse(json_string_value(v), &m.kind) != 0) {
                util_errf(errstr, errstr_size, "field 'mode' must be one of ok, "
                          "not_published, wrong_date, all_zero, invalid, down, decreasing");
                rc = -1;
            }
        } else if (strcmp(key, "publish_after") == 0) {
            rc = patch_int(key, v, 0, OD_PUBLISH_AFTER_MAX, &m.publish_after, errstr,
                           errstr_size);
        } else if (strcmp(key, "slow_ms") == 0) {
            rc = patch_int(key, v, 0, OD_SLOW_MS_MAX, &m.slow_ms, errstr, errstr_size);
        } else if (strcmp(key, "figures") == 0) {
            rc = patch_figures(v, &m.figures, errstr, errstr_size);
        } else if (strcmp(key, "date") == 0) {
            if (json_is_null(v)) {
                m.date[0] = '\0';
            } else if (json_is_string(v) && od_date_valid(json_string_value(v))) {
                memcpy(m.date, json_string_value(v), OD_DATE_LEN + 1);
            } else {
                util_errf(errstr, errstr_size, "field 'date' must be a date written "
                          "YYYY-MM-DD, or null to follow the clock");
                rc = -1;
            }
        } else {
            util_errf(errstr, errstr_size, "unknown field '%.64s' (known: mode, "
                      "publish_after, slow_ms, figures, date)", key);
            rc = -1;
        }
        if (rc != 0)
            return -1;
    }
    *out = m;
    return 0;
}

json_t *od_mode_json(const struct od_mode *m)
{
    /* "s?" packs null for a NULL string */
    return json_pack("{s:s, s:I, s:I, s:{s:I, s:I, s:I, s:I}, s:s?}",
                     "mode", od_kind_name(m->kind),
                     "publish_after", (json_int_t)m->publish_after,
                     "slow_ms", (json_int_t)m->slow_ms,
                     "figures",
                     "confirmed", (json_int_t)m->figures.confirmed,
                     "recovered", (json_int_t)m->figures.recovered,
                     "in_treatment", (json_int_t)m->figures.in_treatment,
                     "deaths", (json_int_t)m->figures.deaths,
                     "date", m->date[0] != '\0' ? m->date : NULL);
}

/* ---------------------------------------------------------------------------------- */
/* The state */

od_state_t *state_new(const struct od_mode *defaults, char *errstr, size_t errstr_size)
{
    od_state_t *st = NULL, *ret = NULL;
    int lock_ready = 0, cond_ready = 0;

    st = calloc(1, sizeof(*st));
    if (st == NULL || (st->reqs = calloc(OD_RECORDS_MAX, sizeof(*st->reqs))) == NULL) {
        util_errf(errstr, errstr_size, "out of memory");
        goto done;
    }
    if (pthread_mutex_init(&st->lock, NULL) != 0) {
        util_errf(errstr, errstr_size, "cannot create a mutex");
        goto done;
    }
    lock_ready = 1;
    if (util_cond_init_monotonic(&st->wake) != 0) {
        util_errf(errstr, errstr_size, "cannot create a condition variable");
        goto done;
    }
    cond_ready = 1;
    st->defaults = *defaults;
    st->mode = *defaults;
    ret = st;
    st = NULL; /* ownership passed to the caller */
done:
    if (st != NULL) {
        if (cond_ready)
            pthread_cond_destroy(&st->wake);
        if (lock_ready)
            pthread_mutex_destroy(&st->lock);
        free(st->reqs);
        free(st);
    }
    return ret;
}

void state_free(od_state_t *st)
{
    if (st == NULL)
        return;
    pthread_cond_destroy(&st->wake);
    pthread_mutex_destroy(&st->lock);
    free(st->reqs);
    free(st);
}

void state_stop(od_state_t *st)
{
    pthread_mutex_lock(&st->lock);
    st->stopping = 1;
    pthread_cond_broadcast(&st->wake);
    pthread_mutex_unlock(&st->lock);
}

int state_sleep(od_state_t *st, long long ms)
{
    int stopped;

    pthread_mutex_lock(&st->lock);
    stopped = util_cond_wait_ms(&st->wake, &st->lock, &st->stopping, ms);
    pthread_mutex_unlock(&st->lock);
    return stopped ? -1 : 0;
}

void state_mode_get(od_state_t *st, struct od_mode *out)
{
    pthread_mutex_lock(&st->lock);
    *out = st->mode;
    pthread_mutex_unlock(&st->lock);
}

int state_mode_patch(od_state_t *st, json_t *patch, struct od_mode *out,
                     char *errstr, size_t errstr_size)
{
    int rc;

    pthread_mutex_lock(&st->lock);
    rc = od_mode_patch(&st->mode, patch, &st->mode, errstr, errstr_size);
    *out = st->mode;
    pthread_mutex_unlock(&st->lock);
    return rc;
}

void state_reset(od_state_t *st)
{
    pthread_mutex_lock(&st->lock);
    st->mode = st->defaults;
    st->invalid_served = 0;
    st->reqs_head = 0;
    st->reqs_len = 0;
    pthread_mutex_unlock(&st->lock);
}

int state_daily(od_state_t *st, int64_t now_ms, struct od_answer *a)
{
    char today[OD_DATE_LEN + 1];
    int ret = -1;
    struct req_rec *r;

    memset(a, 0, sizeof(*a));
    pthread_mutex_lock(&st->lock);
    if (od_today(st->mode.date, (time_t)(now_ms / 1000), today, sizeof(today)) != 0)
        goto done;
    a->served = st->mode.publish_after > 0 ? OD_NOT_PUBLISHED : st->mode.kind;
    a->status = a->served == OD_DOWN ? 503 : 200;
    a->figures = st->mode.figures;
    switch (a->served) {
    case OD_DOWN:
        break;
    case OD_NOT_PUBLISHED:
        if (od_date_add_days(today, -1, a->date, sizeof(a->date)) != 0)
            goto done;
        break;
    case OD_WRONG_DATE:
        if (od_date_add_days(today, -OD_WRONG_DATE_DAYS, a->date, sizeof(a->date)) != 0)
            goto done;
        break;
    default:
        memcpy(a->date, today, sizeof(today));
        break;
    }
    /* Only now that the answer is settled do the counters move. */
    if (st->mode.publish_after > 0)
        st->mode.publish_after--;
    if (a->served == OD_INVALID)
        a->invalid_seq = st->invalid_served++;

    if (st->reqs_len == OD_RECORDS_MAX) {
        st->reqs_head = (st->reqs_head + 1) % OD_RECORDS_MAX;
        st->reqs_len--;
    }
    r = &st->reqs[(st->reqs_head + st->reqs_len) % OD_RECORDS_MAX];
    st->reqs_len++;
    r->at_ms = now_ms;
    r->served = a->served;
    r->status = a->status;
    memcpy(r->date, a->date, sizeof(r->date));
    ret = 0;
done:
    pthread_mutex_unlock(&st->lock);
    return ret;
}

static json_t *req_json(const struct req_rec *r)
{
    char at[32];

    if (util_rfc3339(r->at_ms, at, sizeof(at)) != 0)
        at[0] = '\0';
    return json_pack("{s:s, s:s, s:i, s:s?}", "at", at, "served", od_kind_name(r->served),
                     "status", r->status, "date", r->date[0] != '\0' ? r->date : NULL);
}

json_t *state_requests(od_state_t *st)
{
    json_t *list = json_array(), *ret = NULL;
    size_t i;
    int oom = list == NULL;

    pthread_mutex_lock(&st->lock);
    for (i = 0; i < st->reqs_len && !oom; i++) {
        /* json_array_append_new consumes the item even when it fails (NULL fails too) */
        oom = json_array_append_new(list,
                                    req_json(&st->reqs[(st->reqs_head + i) % OD_RECORDS_MAX]))
              != 0;
    }
    pthread_mutex_unlock(&st->lock);
    if (!oom) {
        ret = json_pack("{s:o}", "requests", list); /* "o" steals list, also on failure */
        list = NULL;
    }
    json_decref(list);
    return ret;
}
