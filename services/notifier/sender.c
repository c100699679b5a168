/* sender: the threads that send the SMS the deliveries table holds, at most once each,
 * retrying a failed send without touching anyone else's. */
#include "notifier.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "log.h"
#include "phone.h"
#include "signup.h"
#include "util.h"

/* Deliveries one thread claims at a time. Small, so that a claim is sent well within its
 * lease and the other threads find work too. */
#define SENDER_BATCH 16

struct worker {
    struct sender *s;
    pthread_t thread;
    int started;
    int woken;          /* under s->mutex: work may be waiting (or stop) */
};

struct sender {
    struct notifier *n;
    pthread_mutex_t mutex;
    pthread_cond_t cond;
    int stop;           /* under mutex; also read without it as a hint */
    int nworkers;
    struct worker *workers;
};

static int stopping(struct sender *s)
{
    int stop;

    pthread_mutex_lock(&s->mutex);
    stop = s->stop;
    pthread_mutex_unlock(&s->mutex);
    return stop;
}

/* Sleeps until woken, stopped or ms passed; then clears the wake-up. */
static void idle(struct worker *w, long long ms)
{
    struct sender *s = w->s;

    pthread_mutex_lock(&s->mutex);
    util_cond_wait_ms(&s->cond, &s->mutex, &w->woken, ms);
    w->woken = 0;
    pthread_mutex_unlock(&s->mutex);
}

/* Records a send's outcome; a database error is only logged: the row stays 'sending' and
 * is taken up again, as uncertain, when its lease runs out. */
static void settle(struct notifier *n, PGconn *conn, const struct delivery *d,
                   sms_result_t res, const char *sid, const char *why)
{
    char err[512], masked[PHONE_MASK_MAX];
    int rc = 0;
    long long delay;

    phone_mask(d->phone, masked, sizeof(masked));
    switch (res) {
    case SMS_SENT:
        rc = store_sent(conn, d->id, sid, err, sizeof(err));
        log_debug("sms_sent delivery=%lld to=%s attempt=%d sid=%s", d->id, masked,
                  d->attempts, sid);
        break;
    case SMS_REJECTED:
        rc = store_failed(conn, d->id, why, err, sizeof(err));
        if (rc == 0 && signup_is_opted_out_error(why)) {
            /* 21610: the number replied STOP to the provider; nothing more is sent to it. */
            rc = signup_store_opt_out_in(conn, d->phone, "provider", err, sizeof(err)) < 0;
            log_warn("sms_opted_out_at_provider delivery=%lld to=%s", d->id, masked);
            break;
        }
        log_error("sms_rejected delivery=%lld to=%s attempt=%d error=%s", d->id, masked,
                  d->attempts, LOG_Q(why));
        break;
    case SMS_THROTTLED:     /* handled by the caller; here only if it was not */
    case SMS_RETRY:
    case SMS_UNCERTAIN:
        if (d->attempts >= n->cfg.sms_max_attempts) {
            rc = store_failed(conn, d->id, why, err, sizeof(err));
            log_error("sms_given_up delivery=%lld to=%s attempts=%d uncertain=%s "
                      "error=%s", d->id, masked, d->attempts,
                      res == SMS_UNCERTAIN ? "yes" : "no", LOG_Q(why));
            break;
        }
        delay = (long long)retry_policy_delay(&n->cfg.sms_backoff, d->attempts);
        rc = store_retry(conn, d->id, delay, res == SMS_UNCERTAIN, why, err, sizeof(err));
        log_warn("sms_retry delivery=%lld to=%s attempt=%d in_ms=%lld uncertain=%s "
                 "error=%s", d->id, masked, d->attempts, delay,
                 res == SMS_UNCERTAIN ? "yes" : "no", LOG_Q(why));
        break;
    }
    if (rc != 0)
        log_error("sms_outcome_not_recorded delivery=%lld error=%s", d->id, LOG_Q(err));
}

/* A claimed batch on its way out. The claim's lease is renewed before any request that
 * could otherwise outlive it, so that no other sender takes over a message while this one
 * may still be sending it. */
struct batch {
    struct worker *w;
    struct notifier *n;
    sms_client_t *sms;
    PGconn *conn;
    struct delivery *d;
    int count;
    int next;             /* the delivery being sent */
    int64_t lease_from;   /* monotonic ms, taken before the claim (or renewal) was written */
    int64_t slots_from;   /* monotonic ms of the send slot of d[slots_next]; 0: none */
    int slots_next;       /* the delivery the batch's slots were reserved from */
};

/* Before a gateway request: renews the lease of the batch's unsent deliveries when less
 * than one request (SMS_TIMEOUT) and a margin is left. Returns 0, or -1 when the lease
 * could not be renewed (the caller sends nothing more; the rows fall due after the lease,
 * as uncertain, and are checked with the gateway then). */
static int keep_lease(struct batch *b)
{
    const struct config *cfg = &b->n->cfg;
    long long margin = (cfg->sms_lease_ms - cfg->sms.timeout_ms) / 2, ids[SENDER_BATCH];
    char err[512];
    size_t k = 0;
    int i;
    int64_t t;

    if (margin > 1000)
        margin = 1000;
    if (util_mono_ms() - b->lease_from + cfg->sms.timeout_ms + margin < cfg->sms_lease_ms)
        return 0;
    for (i = b->next; i < b->count; i++)
        ids[k++] = b->d[i].id;
    t = util_mono_ms();
    if (store_renew(b->conn, ids, k, cfg->sms_lease_ms, err, sizeof(err)) != 0) {
        log_error("sender_lease_not_renewed error=%s", LOG_Q(err));
        return -1;
    }
    b->lease_from = t;
    return 0;
}

/* Reserves send slots for the batch's deliveries from b->next on (SMS_RATE, shared with
 * every thread and instance through PostgreSQL: one UPDATE of the number's row for them
 * all, rather than one per message; none before the number's pause ends). Returns 0, or
 * -1 after an error (logged). */
static int reserve_slots(struct batch *b)
{
    const struct config *cfg = &b->n->cfg;
    char err[512];
    long long wait;

    wait = store_slot(b->conn, cfg->sms.from, cfg->sms_interval_ms, b->count - b->next,
                      err, sizeof(err));
    if (wait < 0) {
        log_error("sender_slot_failed error=%s", LOG_Q(err));
        return -1;
    }
    b->slots_from = util_mono_ms() + wait;
    b->slots_next = b->next;
    return 0;
}

/*
 * Waits for the send slot of the batch's current delivery, keeping the batch's lease
 * meanwhile. A slot reserved before another sender's 429 paused the number must not be
 * used: unless the slot was reserved just now and was due at once, the pause is read
 * again when the slot comes, and if the number is paused the rest of the batch gets new
 * slots, after the pause and SMS_RATE apart. Returns 0 when the slot has come, 1 when the
 * notifier is stopping (nothing sent: give the rest back), -1 after an error (logged).
 */
static int wait_slot(struct batch *b)
{
    const struct config *cfg = &b->n->cfg;
    char err[512];
    long long paused;
    int64_t until, now;
    int fresh = 0;

    if (b->slots_from == 0) {
        if (reserve_slots(b) != 0)
            return -1;
        fresh = 1;
    }
    for (;;) {
        until = b->slots_from + (int64_t)((b->next - b->slots_next) * cfg->sms_interval_ms);
        if (fresh && until <= util_mono_ms())
            return 0;   /* the reservation itself saw no pause */
        while ((now = util_mono_ms()) < until) {
            if (stopping(b->w->s))
                return 1;
            if (keep_lease(b) != 0)
                return -1;
            idle(b->w, until - now < 250 ? until - now : 250);
        }
        if ((paused = store_paused(b->conn, cfg->sms.from, err, sizeof(err))) < 0) {
            log_error("sender_slot_failed error=%s", LOG_Q(err));
            return -1;
        }
        if (paused == 0)
            return 0;
        log_info("sender_paused in_ms=%lld rest=%d", paused, b->count - b->next);
        if (reserve_slots(b) != 0)
            return -1;
        fresh = 0;      /* the new slots are after the pause: checked again then */
    }
}

/* The StatusCallback URL of d into out, or NULL when SMS_STATUS_CALLBACK_URL is unset. */
static const char *callback_url(const struct config *cfg, const struct delivery *d,
                                char *out, size_t out_size)
{
    int n;

    if (cfg->sms_callback_url == NULL)
        return NULL;
    n = snprintf(out, out_size, "%s/sms/status/%lld?token=%s", cfg->sms_callback_url,
                 d->id, d->token);
    return n > 0 && (size_t)n < out_size ? out : NULL;
}

/*
 * After an uncertain try: is one of the gateway's messages this delivery's? Returns 1 with
 * sid (found), 0 (certainly not: send), or -1 with why (cannot tell: do not send). A
 * message created before the first claim (less SMS_FIND_MARGIN for the clocks) is not
 * this one's, nor one already recorded for another delivery (an older identical alert).
 */
static int find_sent(struct batch *b, const struct delivery *d, char *sid, size_t sid_size,
                     char *why, size_t why_size)
{
    char sids[SMS_FIND_MAX][SMS_SID_MAX], err[512];
    int other[SMS_FIND_MAX], n, i, left = 0;

    n = sms_find(b->sms, d->phone, d->body, d->since_ms - b->n->cfg.sms_find_margin_ms,
                 sids, why, why_size);
    if (n <= 0)
        return n;
    if (store_other_sids(b->conn, d->id, sids, (size_t)n, other, err, sizeof(err)) != 0) {
        util_errf(why, why_size, "database: %s", err);
        return -1;
    }
    for (i = 0; i < n; i++) {
        if (!other[i]) {
            if (left++ == 0 && sid_size >= SMS_SID_MAX)
                memcpy(sid, sids[i], SMS_SID_MAX);  /* NUL-terminated by sms_find */
        }
    }
    if (left > 1) {
        util_errf(why, why_size, "%d messages of the gateway could be this one", left);
        return -1;
    }
    return left;
}

/*
 * One delivery: waits for a send slot, then in one transaction checks under lock that it
 * is still to be sent to an active subscriber (an opt-out waits for this transaction, or
 * came first and is seen), asks the gateway first when an earlier try may have gone
 * through, sends, and writes the outcome. Returns 0, 1 when the notifier is stopping
 * (this delivery and the rest are to be given back), or -1 when the batch must stop.
 */
static int deliver(struct batch *b, const struct delivery *d)
{
    const struct config *cfg = &b->n->cfg;
    char sid[SMS_SID_MAX], why[512], err[512], cb[512], masked[PHONE_MASK_MAX];
    sms_result_t res;
    long long retry_ms = 0;
    int64_t t0;
    int r, found;

    sid[0] = '\0';
    if ((r = wait_slot(b)) != 0)
        return r;
    if (keep_lease(b) != 0)
        return -1;
    if (db_begin(b->conn, err, sizeof(err)) != 0) {
        log_error("sender_db_failed error=%s", LOG_Q(err));
        return -1;
    }
    r = store_lock(b->conn, d->id, sid, sizeof(sid), err, sizeof(err));
    if (r <= 0) {
        if (r < 0)
            log_error("sender_lock_failed delivery=%lld error=%s", d->id, LOG_Q(err));
        else
            log_info("sms_skipped delivery=%lld (cancelled or opted out)", d->id);
        db_rollback(b->conn);
        return r < 0 ? -1 : 0;
    }
    if (sid[0] != '\0') {
        /* a status callback came for it: the gateway has it */
        log_info("sms_found_sent delivery=%lld sid=%s (status callback)", d->id, sid);
        settle(b->n, b->conn, d, SMS_SENT, sid, "");
        goto commit;
    }
    if (d->uncertain) {
        found = find_sent(b, d, sid, sizeof(sid), why, sizeof(why));
        if (found == 1) {
            log_info("sms_found_sent delivery=%lld sid=%s (an earlier try went through)",
                     d->id, sid);
            settle(b->n, b->conn, d, SMS_SENT, sid, "");
            goto commit;
        }
        if (found < 0) {
            /* Still uncertain: sending now could double it. */
            settle(b->n, b->conn, d, SMS_UNCERTAIN, "", why);
            goto commit;
        }
    }
    t0 = util_mono_us();
    res = sms_send(b->sms, d->phone, d->body, callback_url(cfg, d, cb, sizeof(cb)), sid,
                   sizeof(sid), &retry_ms, why, sizeof(why));
    notifier_metrics_sms(b->n->metrics, res, why, util_mono_us() - t0);
    if (res == SMS_THROTTLED) {
        phone_mask(d->phone, masked, sizeof(masked));
        log_warn("sms_throttled delivery=%lld to=%s retry_after_ms=%lld", d->id, masked,
                 retry_ms);
        if (store_pause(b->conn, cfg->sms.from, retry_ms, err, sizeof(err)) != 0 ||
            store_throttled(b->conn, d->id, retry_ms, why, err, sizeof(err)) != 0)
            log_error("sms_outcome_not_recorded delivery=%lld error=%s", d->id, LOG_Q(err));
    } else {
        settle(b->n, b->conn, d, res, sid, why);
    }
commit:
    if (db_commit(b->conn, err, sizeof(err)) != 0) {
        /* the row stays 'sending' and falls due, uncertain, after its lease */
        log_error("sms_outcome_not_recorded delivery=%lld error=%s", d->id, LOG_Q(err));
        db_rollback(b->conn);
    }
    return 0;
}

/* Claims, sends and settles one batch. Returns the number claimed, or -1 after an error
 * (logged). */
static int one_batch(struct worker *w, sms_client_t *sms, struct delivery *deliveries)
{
    struct batch b;
    long long rest[SENDER_BATCH];
    char err[512];
    size_t nrest = 0;
    int i, r, max;

    memset(&b, 0, sizeof(b));
    b.w = w;
    b.n = w->s->n;
    b.sms = sms;
    b.d = deliveries;
    /* No more than about two seconds of sends at SMS_RATE: other instances get theirs. */
    max = b.n->cfg.sms_rate * 2 < SENDER_BATCH ? (int)(b.n->cfg.sms_rate * 2) : SENDER_BATCH;
    if (max < 1)
        max = 1;
    b.conn = db_acquire(b.n->db, (int)b.n->cfg.db_wait_ms, err, sizeof(err));
    if (b.conn == NULL) {
        log_error("sender_db_unavailable error=%s", LOG_Q(err));
        return -1;
    }
    b.lease_from = util_mono_ms();
    b.count = store_claim(b.conn, max, b.n->cfg.sms_lease_ms, deliveries, err, sizeof(err));
    if (b.count < 0)
        log_error("sender_claim_failed error=%s", LOG_Q(err));
    for (b.next = 0; b.next < b.count; b.next++) {
        /* Each send continues the trace its delivery was created in (or starts one): the
         * gateway request carries it (httpc.c) and so does every line logged meanwhile. */
        trace_begin(deliveries[b.next].traceparent, strlen(deliveries[b.next].traceparent));
        r = stopping(w->s) ? 1 : deliver(&b, &deliveries[b.next]);
        trace_end();
        if (r == 1) {
            /* Give the rest back: due again at once for the next notifier. */
            for (i = b.next; i < b.count; i++)
                rest[nrest++] = deliveries[i].id;
            if (store_unclaim(b.conn, rest, nrest, err, sizeof(err)) != 0)
                log_error("sender_unclaim_failed error=%s", LOG_Q(err));
            break;
        }
        if (r < 0)
            break;
    }
    db_release(b.n->db, b.conn);
    return b.count < 0 ? -1 : (b.count < max ? 0 : SENDER_BATCH);
}

static void *worker_main(void *arg)
{
    struct worker *w = arg;
    struct notifier *n = w->s->n;
    struct delivery *batch = calloc(SENDER_BATCH, sizeof(*batch));
    sms_client_t *sms = NULL;
    char err[256];
    int count;

    if (batch == NULL || (sms = sms_client_new(&n->cfg.sms, err, sizeof(err))) == NULL) {
        log_error("sender_start_failed error=%s", LOG_Q(batch == NULL ? "out of memory" : err));
        goto done;
    }
    while (!stopping(w->s)) {
        count = one_batch(w, sms, batch);
        if (count < 0)
            idle(w, n->cfg.db_wait_ms);
        else if (count < SENDER_BATCH)
            idle(w, n->cfg.sms_poll_ms);
    }
done:
    sms_client_free(sms);
    free(batch);
    return NULL;
}

void sender_wake(struct sender *s)
{
    int i;

    if (s == NULL)
        return;
    pthread_mutex_lock(&s->mutex);
    for (i = 0; i < s->nworkers; i++)
        s->workers[i].woken = 1;
    pthread_cond_broadcast(&s->cond);
    pthread_mutex_unlock(&s->mutex);
}

struct sender *sender_start(struct notifier *n, char *errstr, size_t errstr_size)
{
    struct sender *s = calloc(1, sizeof(*s));
    int i, rc;

    if (s == NULL || (s->workers = calloc((size_t)n->cfg.sms_concurrency,
                                          sizeof(*s->workers))) == NULL) {
        free(s);
        util_errf(errstr, errstr_size, "out of memory");
        return NULL;
    }
    s->n = n;
    s->nworkers = n->cfg.sms_concurrency;
    pthread_mutex_init(&s->mutex, NULL);
    if (util_cond_init_monotonic(&s->cond) != 0) {
        pthread_mutex_destroy(&s->mutex);
        free(s->workers);
        free(s);
        util_errf(errstr, errstr_size, "cannot create a condition variable");
        return NULL;
    }
    for (i = 0; i < s->nworkers; i++) {
        s->workers[i].s = s;
        s->workers[i].woken = 1;
        rc = pthread_create(&s->workers[i].thread, NULL, worker_main, &s->workers[i]);
        if (rc != 0) {
            util_errf(errstr, errstr_size, "pthread_create: %s", strerror(rc));
            sender_stop(s);
            return NULL;
        }
        s->workers[i].started = 1;
    }
    return s;
}

void sender_stop(struct sender *s)
{
    int i;

    if (s == NULL)
        return;
    pthread_mutex_lock(&s->mutex);
    s->stop = 1;
    for (i = 0; i < s->nworkers; i++)
        s->workers[i].woken = 1;
    pthread_cond_broadcast(&s->cond);
    pthread_mutex_unlock(&s->mutex);
    for (i = 0; i < s->nworkers; i++) {
        if (s->workers[i].started)
            pthread_join(s->workers[i].thread, NULL);
    }
    pthread_cond_destroy(&s->cond);
    pthread_mutex_destroy(&s->mutex);
    free(s->workers);
    free(s);
}
