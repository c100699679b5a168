/* state: the open-data feed's knobs, what each GET /daily is answered, and the record of
 * those answers. */
#include "open_data.h"

#include <errno.h>
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
    int has_request;             /* the XML service: rq is what it was asked */
    struct od_request rq;
};

/* The record is a ring of OD_RECORDS_MAX entries, oldest at head, so the newest are kept. */
struct od_state {
    standin_t *si;               /* owned: the lock, the stop flag and the mode */
    uint64_t invalid_served;     /* "invalid" answers since the start or the last reset */
    struct req_rec *reqs;        /* OD_RECORDS_MAX entries, owned */
    size_t reqs_head, reqs_len;
};

/* ---------------------------------------------------------------------------------- */
/* The mode */

/* "mode": the name of what GET /daily serves. */
static int patch_kind(json_t *v, void *mode, char *errstr, size_t errstr_size)
{
    struct od_mode *m = mode;

    if (od_kind_parse(json_string_value(v), &m->kind) != 0) {
        util_errf(errstr, errstr_size, "field 'mode' must be one of ok, not_published, "
                  "wrong_date, all_zero, invalid, down, decreasing, refused");
        return -1;
    }
    return 0;
}

static json_t *kind_json(const void *mode)
{
    return json_string(od_kind_name(((const struct od_mode *)mode)->kind));
}

static void kind_log(const void *mode, char *out, size_t out_size)
{
    snprintf(out, out_size, "%s", od_kind_name(((const struct od_mode *)mode)->kind));
}

/* "date": YYYY-MM-DD, or null to follow the clock. */
static int patch_date(json_t *v, void *mode, char *errstr, size_t errstr_size)
{
    struct od_mode *m = mode;

    if (json_is_null(v)) {
        m->date[0] = '\0';
    } else if (json_is_string(v) && od_date_valid(json_string_value(v))) {
        memcpy(m->date, json_string_value(v), OD_DATE_LEN + 1);
    } else {
        util_errf(errstr, errstr_size, "field 'date' must be a date written YYYY-MM-DD, or "
                  "null to follow the clock");
        return -1;
    }
    return 0;
}

static json_t *date_json(const void *mode)
{
    const struct od_mode *m = mode;

    return m->date[0] != '\0' ? json_string(m->date) : json_null();
}

static void date_log(const void *mode, char *out, size_t out_size)
{
    const struct od_mode *m = mode;

    snprintf(out, out_size, "%s", m->date[0] != '\0' ? m->date : "clock");
}

static const struct standin_knob figure_knobs[] = {
    STANDIN_INT(struct od_figures, confirmed, 0, OD_FIGURE_MAX),
    STANDIN_INT(struct od_figures, recovered, 0, OD_FIGURE_MAX),
    STANDIN_INT(struct od_figures, in_treatment, 0, OD_FIGURE_MAX),
    STANDIN_INT(struct od_figures, deaths, 0, OD_FIGURE_MAX),
    STANDIN_END
};

/* The knobs, in the order GET /admin/mode shows them and the log lines list them. */
static const struct standin_knob od_knobs[] = {
    STANDIN_CUSTOM("mode", patch_kind, kind_json, kind_log),
    STANDIN_INT(struct od_mode, publish_after, 0, OD_PUBLISH_AFTER_MAX),
    STANDIN_SLOW_MS(struct od_mode),
    STANDIN_OBJECT(struct od_mode, figures, figure_knobs),
    STANDIN_CUSTOM("date", patch_date, date_json, date_log),
    STANDIN_END
};

static void forget(void *app);

const struct standin_def od_standin = { od_knobs, sizeof(struct od_mode), NULL, forget };

/* ---------------------------------------------------------------------------------- */
/* The state */

od_state_t *state_new(const struct od_mode *defaults, char *errstr, size_t errstr_size)
{
    od_state_t *st = NULL, *ret = NULL;

    st = calloc(1, sizeof(*st));
    if (st == NULL || (st->reqs = calloc(OD_RECORDS_MAX, sizeof(*st->reqs))) == NULL) {
        util_errf(errstr, errstr_size, "out of memory");
        goto done;
    }
    st->si = standin_new(&od_standin, defaults, st, errstr, errstr_size);
    if (st->si == NULL)
        goto done;
    ret = st;
    st = NULL; /* ownership passed to the caller */
done:
    if (st != NULL) {
        free(st->reqs);
        free(st);
    }
    return ret;
}

void state_free(od_state_t *st)
{
    if (st == NULL)
        return;
    standin_free(st->si);
    free(st->reqs);
    free(st);
}

standin_t *state_standin(od_state_t *st)
{
    return st->si;
}

/* The record and the numbering are forgotten with the mode's reset, under the lock. */
static void forget(void *app)
{
    od_state_t *st = app;

    st->invalid_served = 0;
    st->reqs_head = 0;
    st->reqs_len = 0;
}

int state_daily(od_state_t *st, int64_t now_ms, struct od_answer *a)
{
    return state_daily_request(st, now_ms, NULL, a);
}

int state_daily_request(od_state_t *st, int64_t now_ms, const struct od_request *rq,
                        struct od_answer *a)
{
    char today[OD_DATE_LEN + 1];
    int ret = -1;
    struct req_rec *r;
    struct od_mode *m;

    memset(a, 0, sizeof(*a));
    standin_lock(st->si);
    m = standin_mode_locked(st->si);
    if (od_today(m->date, (time_t)(now_ms / 1000), today, sizeof(today)) != 0)
        goto done;
    if (rq != NULL && rq->xml && !rq->key_ok)
        a->served = OD_REFUSED;
    else
        a->served = m->publish_after > 0 ? OD_NOT_PUBLISHED : m->kind;
    /* The portal answers a refused key with its envelope and 200; the JSON feed has no key
     * and says 401. */
    a->status = a->served == OD_DOWN ? 503
              : a->served == OD_REFUSED && (rq == NULL || !rq->xml) ? 401 : 200;
    a->figures = m->figures;
    switch (a->served) {
    case OD_DOWN:
    case OD_REFUSED:
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
    if (m->publish_after > 0 && !(rq != NULL && rq->xml && !rq->key_ok))
        m->publish_after--;
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
    r->has_request = rq != NULL && rq->xml;
    if (r->has_request)
        r->rq = *rq;
    ret = 0;
done:
    standin_unlock(st->si);
    return ret;
}

static json_t *req_json(const struct req_rec *r)
{
    char at[32];

    if (util_rfc3339(r->at_ms, at, sizeof(at)) != 0)
        at[0] = '\0';
    if (r->has_request)
        return json_pack("{s:s, s:s, s:i, s:s?, s:s, s:b, s:s, s:s, s:s, s:s}", "at", at,
                         "served", od_kind_name(r->served), "status", r->status,
                         "date", r->date[0] != '\0' ? r->date : NULL, "format", "xml",
                         "key_ok", r->rq.key_ok, "startCreateDt", r->rq.start,
                         "endCreateDt", r->rq.end, "pageNo", r->rq.page,
                         "numOfRows", r->rq.rows);
    return json_pack("{s:s, s:s, s:i, s:s?, s:s}", "at", at, "served",
                     od_kind_name(r->served), "status", r->status,
                     "date", r->date[0] != '\0' ? r->date : NULL, "format", "json");
}

json_t *state_requests(od_state_t *st)
{
    json_t *list = json_array();
    size_t i;
    int oom = list == NULL;

    standin_lock(st->si);
    for (i = 0; i < st->reqs_len && !oom; i++) {
        /* json_array_append_new consumes the item even when it fails (NULL fails too) */
        oom = json_array_append_new(list,
                                    req_json(&st->reqs[(st->reqs_head + i) % OD_RECORDS_MAX]))
              != 0;
    }
    standin_unlock(st->si);
    return standin_listing("requests", list, oom);
}
