/* state: the SMS gateway's knobs, its failure decision, and its memory of messages and
 * outcomes. */
#include "sms_gateway.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "httpc.h"
#include "phone.h"
#include "util.h"

/* One accepted message. */
struct msg_rec {
    char sid[SG_SID_LEN + 1];
    char to[PHONE_MAX + 1];
    int64_t at_ms;               /* wall clock: created (date_created) */
    int64_t sent_ms;             /* "sent" from then on (date_sent) */
    int64_t delivered_ms;        /* "delivered" from then on; -1: never */
    char *text;                  /* owned: From, a NUL, Body, a NUL[, StatusCallback, a
                                  * NUL] */
    size_t text_len;             /* bytes allocated for text */
    char traceparent[SG_TRACEPARENT_MAX]; /* printable; "": the send had none */
    int has_callback;
    int cb_stage;                /* the last status posted: 0 none, 1 sent, 2 delivered */
};

/*
 * Messages are a ring of SG_MESSAGES_MAX entries, oldest at head, so the newest are kept;
 * text_bytes is the sum of their text_len, kept under SG_TEXT_BYTES_MAX. A send takes the
 * lock once, for a decision and an append: no scan, no allocation.
 */
struct sg_state {
    standin_t *si;               /* owned: the lock, the stop flag and the mode */
    uint64_t prng;               /* SplitMix64 state, from mode.seed */
    unsigned long long counts[SG_NOUTCOMES];
    struct msg_rec *msgs;        /* SG_MESSAGES_MAX entries, owned */
    size_t head, len;
    size_t text_bytes;
    double tat_ms;               /* the rate's theoretical arrival time (wall clock ms) */
    struct {
        int64_t at_ms;           /* wall clock */
        long long retry_after;   /* seconds */
    } throttles[SG_THROTTLES_MAX]; /* a ring, oldest at th_head */
    size_t th_head, th_len;
    size_t cb_open;              /* kept messages whose callbacks are not all posted */
    unsigned long long cb_posted, cb_failed;
};

/* ---------------------------------------------------------------------------------- */
/* The mode */

static const char *const outcome_names[SG_NOUTCOMES] = {
    "accepted", "failed", "refused", "rejected", "throttled"
};

const char *sg_outcome_name(enum sg_outcome o)
{
    if ((int)o < 0 || (int)o >= SG_NOUTCOMES)
        return "unknown";
    return outcome_names[o];
}

uint64_t sg_prng_next(uint64_t *s)
{
    uint64_t z = (*s += 0x9e3779b97f4a7c15ULL);

    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
}

/* opted_out: "" or an E.164 number (a number that replied STOP to the sender). */
static int patch_opted_out(json_t *v, void *mode, char *errstr, size_t errstr_size)
{
    struct sg_mode *m = mode;
    const char *s = json_string_value(v);

    if (s == NULL || (s[0] != '\0' && !phone_e164_valid(s))) {
        snprintf(errstr, errstr_size, "opted_out must be \"\" or an E.164 number");
        return -1;
    }
    snprintf(m->opted_out, sizeof(m->opted_out), "%s", s);
    return 0;
}

static json_t *opted_out_json(const void *mode)
{
    return json_string(((const struct sg_mode *)mode)->opted_out);
}

static void opted_out_log(const void *mode, char *out, size_t out_size)
{
    char masked[PHONE_MASK_MAX];
    const struct sg_mode *m = mode;

    if (m->opted_out[0] == '\0')
        snprintf(out, out_size, "-");
    else {
        phone_mask(m->opted_out, masked, sizeof(masked));
        snprintf(out, out_size, "%s", masked);
    }
}

/* The knobs, in the order GET /admin/mode shows them and the log lines list them. */
static const struct standin_knob sg_knobs[] = {
    STANDIN_FAIL_NEXT(struct sg_mode),
    STANDIN_INT(struct sg_mode, fail_rate, 0, 100),
    STANDIN_INT(struct sg_mode, seed, 0, SG_SEED_MAX),
    STANDIN_DOWN(struct sg_mode),
    STANDIN_SLOW_MS(struct sg_mode),
    STANDIN_INT(struct sg_mode, rate, 0, 100000),
    STANDIN_INT(struct sg_mode, retry_after, 0, SG_RETRY_AFTER_MAX),
    STANDIN_INT(struct sg_mode, queue_ms, 0, 3600000),
    STANDIN_INT(struct sg_mode, deliver_ms, 0, 3600000),
    STANDIN_INT(struct sg_mode, hang_ms, 0, STANDIN_SLOW_MS_MAX),
    STANDIN_CUSTOM("opted_out", patch_opted_out, opted_out_json, opted_out_log),
    STANDIN_BOOL(struct sg_mode, callback_twice),
    STANDIN_END
};

static void patched(void *app, json_t *patch);
static void forget(void *app);

const struct standin_def sg_standin = { sg_knobs, sizeof(struct sg_mode), patched, forget };

/* ---------------------------------------------------------------------------------- */
/* The state */

sg_state_t *state_new(const struct sg_mode *defaults, char *errstr, size_t errstr_size)
{
    sg_state_t *st = NULL, *ret = NULL;

    st = calloc(1, sizeof(*st));
    if (st == NULL || (st->msgs = calloc(SG_MESSAGES_MAX, sizeof(*st->msgs))) == NULL) {
        util_errf(errstr, errstr_size, "out of memory");
        goto done;
    }
    st->si = standin_new(&sg_standin, defaults, st, errstr, errstr_size);
    if (st->si == NULL)
        goto done;
    st->prng = (uint64_t)defaults->seed;
    ret = st;
    st = NULL; /* ownership passed to the caller */
done:
    if (st != NULL) {
        free(st->msgs);
        free(st);
    }
    return ret;
}

/* Drops the oldest message. Lock held (or no other thread), len > 0. */
static void drop_oldest(sg_state_t *st)
{
    struct msg_rec *m = &st->msgs[st->head];

    st->text_bytes -= m->text_len;
    if (m->has_callback && m->cb_stage < (m->delivered_ms >= 0 ? 2 : 1))
        st->cb_open--;
    m->has_callback = 0;
    free(m->text);
    m->text = NULL;
    m->text_len = 0;
    st->head = (st->head + 1) % SG_MESSAGES_MAX;
    st->len--;
}

static void messages_clear(sg_state_t *st)
{
    while (st->len > 0)
        drop_oldest(st);
    st->head = 0;
}

void state_free(sg_state_t *st)
{
    if (st == NULL)
        return;
    messages_clear(st);
    standin_free(st->si);
    free(st->msgs);
    free(st);
}

standin_t *state_standin(sg_state_t *st)
{
    return st->si;
}

/* A "seed" in an admin patch restarts the PRNG. Lock held. */
static void patched(void *app, json_t *patch)
{
    sg_state_t *st = app;

    if (json_object_get(patch, "seed") != NULL)
        st->prng = (uint64_t)((struct sg_mode *)standin_mode_locked(st->si))->seed;
}

/* A reset restarts the PRNG from the defaults' seed and forgets the messages and counts.
 * Lock held, the mode already back to the defaults. */
static void forget(void *app)
{
    sg_state_t *st = app;

    st->prng = (uint64_t)((struct sg_mode *)standin_mode_locked(st->si))->seed;
    memset(st->counts, 0, sizeof(st->counts));
    st->cb_posted = st->cb_failed = 0;
    st->tat_ms = 0;
    st->th_head = st->th_len = 0;
    messages_clear(st);
}

void state_count(sg_state_t *st, enum sg_outcome o)
{
    standin_lock(st->si);
    st->counts[o]++;
    standin_unlock(st->si);
}

int state_send(sg_state_t *st, const char *sid, const struct sg_send *s, int64_t at_ms)
{
    size_t flen = strlen(s->from), blen = strlen(s->body);
    size_t clen = s->status_callback != NULL ? strlen(s->status_callback) + 1 : 0;
    size_t tlen = flen + blen + 2 + clen;
    char *text = malloc(tlen); /* owned here until the record takes it */
    struct msg_rec *m;
    struct sg_mode *mode;
    enum sg_outcome outcome;

    if (text == NULL)
        return -1;
    memcpy(text, s->from, flen + 1);
    memcpy(text + flen + 1, s->body, blen + 1);
    if (clen > 0)
        memcpy(text + flen + blen + 2, s->status_callback, clen);

    standin_lock(st->si);
    mode = standin_mode_locked(st->si);
    if (mode->opted_out[0] != '\0' && strcmp(mode->opted_out, s->to) == 0) {
        outcome = SG_REJECTED; /* the recipient replied STOP: Twilio's 21610 */
    } else if (mode->fail_next > 0) {
        mode->fail_next--;
        outcome = SG_FAILED;
    } else if (mode->fail_rate > 0 &&
               sg_prng_next(&st->prng) % 100 < (uint64_t)mode->fail_rate) {
        outcome = SG_FAILED;
    } else {
        while (st->len > 0 &&
               (st->len == SG_MESSAGES_MAX || st->text_bytes + tlen > SG_TEXT_BYTES_MAX))
            drop_oldest(st);
        m = &st->msgs[(st->head + st->len) % SG_MESSAGES_MAX];
        st->len++;
        snprintf(m->sid, sizeof(m->sid), "%s", sid);
        snprintf(m->to, sizeof(m->to), "%s", s->to); /* E.164: fits */
        m->at_ms = at_ms;
        m->sent_ms = at_ms + mode->queue_ms;
        m->delivered_ms = mode->deliver_ms > 0 ? m->sent_ms + mode->deliver_ms : -1;
        snprintf(m->traceparent, sizeof(m->traceparent), "%s",
                 s->traceparent != NULL ? s->traceparent : "");
        httpc_printable(m->traceparent);
        m->has_callback = clen > 0;
        m->cb_stage = 0;
        if (m->has_callback)
            st->cb_open++;
        m->text = text;
        m->text_len = tlen;
        text = NULL;
        st->text_bytes += tlen;
        outcome = SG_ACCEPTED;
    }
    st->counts[outcome]++;
    standin_unlock(st->si);
    free(text);
    return (int)outcome;
}

static json_t *msg_json(const struct msg_rec *m)
{
    char at[32];

    if (util_rfc3339(m->at_ms, at, sizeof(at)) != 0)
        at[0] = '\0';
    return json_pack("{s:s, s:s, s:s, s:s, s:s, s:s?}", "sid", m->sid, "to", m->to,
                     "from", m->text, "body", m->text + strlen(m->text) + 1, "at", at,
                     "traceparent", m->traceparent[0] != '\0' ? m->traceparent : NULL);
}

json_t *state_messages(sg_state_t *st, const char *to)
{
    json_t *list = json_array();
    size_t i;
    int oom = list == NULL;

    standin_lock(st->si);
    for (i = 0; i < st->len && !oom; i++) {
        const struct msg_rec *m = &st->msgs[(st->head + i) % SG_MESSAGES_MAX];

        /* json_array_append_new consumes the item even when it fails (NULL fails too) */
        if (to == NULL || strcmp(m->to, to) == 0)
            oom = json_array_append_new(list, msg_json(m)) != 0;
    }
    standin_unlock(st->si);
    return standin_listing("messages", list, oom);
}

/* The i-th newest message (0: the newest). Lock held, i < len. */
static const struct msg_rec *newest(const sg_state_t *st, size_t i)
{
    return &st->msgs[(st->head + st->len - 1 - i) % SG_MESSAGES_MAX];
}

/* The status of m at now_ms: 0 queued, 1 sent, 2 delivered. */
static int stage_of(const struct msg_rec *m, int64_t now_ms)
{
    if (now_ms < m->sent_ms)
        return 0;
    return m->delivered_ms >= 0 && now_ms >= m->delivered_ms ? 2 : 1;
}

static const char *const stage_names[3] = { "queued", "sent", "delivered" };

/* Returns 1 if m passes q's To, From and dates at now_ms. The dates are of date_sent, as
 * Twilio's: a message still queued has none, and no DateSent filter lets it through. */
static int list_match(const struct msg_rec *m, const struct sg_list_query *q, int64_t now_ms)
{
    int64_t day;
    int dated = q->date_sent[0] != '\0' || q->date_sent_ge[0] != '\0' ||
                q->date_sent_le[0] != '\0';

    if (q->to[0] != '\0' && strcmp(m->to, q->to) != 0)
        return 0;
    if (q->from[0] != '\0' && strcmp(m->text, q->from) != 0)
        return 0;
    if (!dated)
        return 1;
    if (stage_of(m, now_ms) == 0)
        return 0;
    day = sg_day_of_ms(m->sent_ms);
    return day >= q->from_day && day <= q->until_day;
}

json_t *state_list(sg_state_t *st, const struct sg_list_query *q, const char *account_sid,
                   int *more)
{
    json_t *list = json_array(), *ret = NULL, *item;
    size_t i, start = 0;                /* newest-first positions: 0 is the newest */
    long long skip = 0, listed = 0;
    int oom = list == NULL, found = q->after_sid[0] == '\0', stage;
    int64_t now = util_now_ms();

    *more = 0;
    standin_lock(st->si);
    if (!found) {
        for (i = 0; i < st->len && !found; i++) {
            if (strcmp(newest(st, i)->sid, q->after_sid) == 0) {
                found = 1;
                start = i + 1;
            }
        }
    } else {
        skip = q->page * q->page_size;
    }
    for (i = start; found && i < st->len && !oom; i++) {
        const struct msg_rec *m = newest(st, i);

        if (!list_match(m, q, now))
            continue;
        if (skip > 0) {
            skip--;
            continue;
        }
        if (listed == q->page_size) {
            *more = 1;
            break;
        }
        /* json_array_append_new consumes the item even when it fails (NULL fails too) */
        stage = stage_of(m, now);
        item = sg_message_json(account_sid, m->sid, m->to, m->text,
                               m->text + strlen(m->text) + 1, m->at_ms, stage_names[stage],
                               stage > 0 ? m->sent_ms : -1);
        oom = json_array_append_new(list, item) != 0;
        listed++;
    }
    standin_unlock(st->si);
    if (!oom) {
        ret = list;
        list = NULL; /* ownership passed to the caller */
    }
    json_decref(list);
    return ret;
}

json_t *state_stats(sg_state_t *st)
{
    unsigned long long c[SG_NOUTCOMES], posted, failed;

    standin_lock(st->si);
    memcpy(c, st->counts, sizeof(c));
    posted = st->cb_posted;
    failed = st->cb_failed;
    standin_unlock(st->si);
    return json_pack("{s:I, s:I, s:I, s:I, s:I, s:I, s:I}",
                     "accepted", (json_int_t)c[SG_ACCEPTED], "failed", (json_int_t)c[SG_FAILED],
                     "refused", (json_int_t)c[SG_REFUSED], "rejected", (json_int_t)c[SG_REJECTED],
                     "throttled", (json_int_t)c[SG_THROTTLED],
                     "callbacks_posted", (json_int_t)posted,
                     "callbacks_failed", (json_int_t)failed);
}

long long state_throttle(sg_state_t *st, int64_t now_ms)
{
    struct sg_mode *mode;
    double interval, now = (double)now_ms;
    long long wait = 0;
    size_t i;

    standin_lock(st->si);
    mode = standin_mode_locked(st->si);
    if (mode->rate > 0) {
        interval = 1000.0 / (double)mode->rate;
        if (st->tat_ms < now)
            st->tat_ms = now;
        /* one interval of slack: a client that paces itself at the rate is not refused
         * for a few ms of network jitter */
        if (st->tat_ms - now > interval) {
            wait = mode->retry_after > 0
                ? mode->retry_after
                : (long long)((st->tat_ms - now - interval) / 1000.0) + 1;
            st->counts[SG_THROTTLED]++;
            i = (st->th_head + st->th_len) % SG_THROTTLES_MAX;
            st->throttles[i].at_ms = now_ms;
            st->throttles[i].retry_after = wait;
            if (st->th_len < SG_THROTTLES_MAX)
                st->th_len++;
            else
                st->th_head = (st->th_head + 1) % SG_THROTTLES_MAX;
        } else {
            st->tat_ms += interval;
        }
    }
    standin_unlock(st->si);
    return wait;
}

json_t *state_throttles(sg_state_t *st)
{
    json_t *list = json_array();
    char at[32];
    size_t i, k;
    int oom = list == NULL;

    standin_lock(st->si);
    for (i = 0; i < st->th_len && !oom; i++) {
        k = (st->th_head + i) % SG_THROTTLES_MAX;
        if (util_rfc3339(st->throttles[k].at_ms, at, sizeof(at)) != 0)
            at[0] = '\0';
        /* json_array_append_new consumes the item even when it fails (NULL fails too) */
        oom = json_array_append_new(list, json_pack("{s:s, s:I}", "at", at, "retry_after",
                                    (json_int_t)st->throttles[k].retry_after)) != 0;
    }
    standin_unlock(st->si);
    return standin_listing("throttles", list, oom);
}

size_t state_callbacks_due(sg_state_t *st, int64_t now_ms, struct sg_callback *out,
                           size_t max)
{
    const struct sg_mode *mode;
    size_t i, n = 0, open_seen = 0;
    int stage, last;

    standin_lock(st->si);
    mode = standin_mode_locked(st->si);
    for (i = 0; i < st->len && n < max && open_seen < st->cb_open; i++) {
        struct msg_rec *m = &st->msgs[(st->head + i) % SG_MESSAGES_MAX];
        const char *body;

        if (!m->has_callback)
            continue;
        last = m->delivered_ms >= 0 ? 2 : 1;
        if (m->cb_stage >= last)
            continue;
        open_seen++;
        stage = stage_of(m, now_ms);
        if (stage <= m->cb_stage)
            continue;
        /* Twilio posts each status it passes through; here sent, then delivered */
        m->cb_stage++;
        if (m->cb_stage >= last)
            st->cb_open--;
        body = m->text + strlen(m->text) + 1;
        snprintf(out[n].sid, sizeof(out[n].sid), "%s", m->sid);
        snprintf(out[n].to, sizeof(out[n].to), "%s", m->to);
        snprintf(out[n].from, sizeof(out[n].from), "%.*s", PHONE_MAX, m->text);
        snprintf(out[n].status, sizeof(out[n].status), "%s", stage_names[m->cb_stage]);
        snprintf(out[n].url, sizeof(out[n].url), "%s", body + strlen(body) + 1);
        out[n].stage = m->cb_stage;
        out[n].twice = mode->callback_twice;
        n++;
    }
    standin_unlock(st->si);
    return n;
}

void state_callback_count(sg_state_t *st, int ok)
{
    standin_lock(st->si);
    if (ok)
        st->cb_posted++;
    else
        st->cb_failed++;
    standin_unlock(st->si);
}
