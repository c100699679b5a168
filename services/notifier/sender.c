/* sender: the threads that send the SMS the deliveries table holds, at most once each,
 * retrying a failed send without touching anyone else's. */
#include "notifier.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "log.h"
#include "phone.h"
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
        log_error("sms_rejected delivery=%lld to=%s attempt=%d error=%s", d->id, masked,
                  d->attempts, LOG_Q(why));
        break;
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
    struct notifier *n;
    sms_client_t *sms;
    PGconn *conn;
    struct delivery *d;
    int count;
    int next;             /* the delivery being sent */
    int64_t lease_from;   /* monotonic ms, taken before the claim (or renewal) was written */
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

/* One delivery: asks the gateway first when an earlier try may have gone through. Returns
 * 0, or -1 when the batch must stop (its lease could not be kept). */
static int deliver(struct batch *b, const struct delivery *d)
{
    char sid[SMS_SID_MAX], why[512];
    sms_result_t res;
    int64_t t0;
    int found;

    sid[0] = '\0';
    if (d->uncertain) {
        if (keep_lease(b) != 0)
            return -1;
        found = sms_find(b->sms, d->phone, d->body, d->since, sid, sizeof(sid), why,
                         sizeof(why));
        if (found == 1) {
            log_info("sms_found_sent delivery=%lld sid=%s (an earlier try went through)",
                     d->id, sid);
            settle(b->n, b->conn, d, SMS_SENT, sid, "");
            return 0;
        }
        if (found < 0) {
            /* Still uncertain: sending now could double it. */
            settle(b->n, b->conn, d, SMS_UNCERTAIN, "", why);
            return 0;
        }
    }
    if (keep_lease(b) != 0)
        return -1;
    t0 = util_mono_us();
    res = sms_send(b->sms, d->phone, d->body, sid, sizeof(sid), why, sizeof(why));
    notifier_metrics_sms(b->n->metrics, res, why, util_mono_us() - t0);
    settle(b->n, b->conn, d, res, sid, why);
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
    int i;

    memset(&b, 0, sizeof(b));
    b.n = w->s->n;
    b.sms = sms;
    b.d = deliveries;
    b.conn = db_acquire(b.n->db, (int)b.n->cfg.db_wait_ms, err, sizeof(err));
    if (b.conn == NULL) {
        log_error("sender_db_unavailable error=%s", LOG_Q(err));
        return -1;
    }
    b.lease_from = util_mono_ms();
    b.count = store_claim(b.conn, SENDER_BATCH, b.n->cfg.sms_lease_ms, deliveries,
                          err, sizeof(err));
    if (b.count < 0)
        log_error("sender_claim_failed error=%s", LOG_Q(err));
    for (b.next = 0; b.next < b.count; b.next++) {
        if (stopping(w->s)) {
            /* Give the rest back: due again at once for the next notifier. */
            for (i = b.next; i < b.count; i++)
                rest[nrest++] = deliveries[i].id;
            if (store_unclaim(b.conn, rest, nrest, err, sizeof(err)) != 0)
                log_error("sender_unclaim_failed error=%s", LOG_Q(err));
            break;
        }
        if (deliver(&b, &deliveries[b.next]) != 0)
            break;
    }
    db_release(b.n->db, b.conn);
    return b.count;
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
