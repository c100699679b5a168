/* sweeper: a production order the factory accepted but never delivered (its callback was
 * lost: the factory service was down, or the network) is asked for again. Every so often the
 * orders requested longer than FACTORY_DELIVERY_TIMEOUT ago get a fresh stock.depleted event
 * of their SKU through the outbox; the depletion handler then takes the stale order over and
 * calls the factory again (store_plan), with the retry contract of any other depletion. Without
 * this, only a new order for the same SKU would raise the depletion again, and a sold-out
 * product that nobody orders any more would never come back. */
#include "factory.h"

#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "events.h"
#include "log.h"
#include "outbox.h"

#define SWEEP_MIN_MS 1000
#define SWEEP_MAX_MS 60000

static pthread_t sweeper_thread;
static pthread_mutex_t sweeper_mu = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t sweeper_cv = PTHREAD_COND_INITIALIZER;
static int sweeper_stop;

/* One round: returns how many depletions it raised, or -1 with errstr. */
static int sweep(struct factory *f, char *errstr, size_t errstr_size)
{
    char timeout[24];
    const char *p[1] = { timeout };
    PGconn *conn = db_acquire(f->db, (int)f->cfg.db_wait_ms, errstr, errstr_size);
    PGresult *res = NULL;
    int i, n = -1;

    if (conn == NULL)
        return -1;
    snprintf(timeout, sizeof(timeout), "%lld", f->cfg.delivery_timeout_ms);
    if (db_begin(conn, errstr, errstr_size) != 0)
        goto done;
    res = db_exec(conn, "po_stale", 1, p, NULL, errstr, errstr_size);
    if (res == NULL)
        goto done;
    for (i = 0; i < PQntuples(res); i++) {
        event_stock_depleted_t ev;
        event_out_t out = { 0 };
        int r;

        memset(&ev, 0, sizeof(ev));
        snprintf(ev.sku, sizeof(ev.sku), "%s", PQgetvalue(res, i, 0));
        r = event_stock_depleted_pack(&ev, &out, errstr, errstr_size) != 0 ||
            outbox_add(conn, FACTORY_SERVICE, out.spec->topic, out.key, out.spec->type,
                       FACTORY_SOURCE, out.text, NULL, errstr, errstr_size) != 0;
        event_out_clear(&out);
        if (r)
            goto done;
        log_warn("production_order_undelivered sku=%s action=depletion_raised_again "
                 "delivery_timeout_ms=%lld", LOG_Q(ev.sku), f->cfg.delivery_timeout_ms);
    }
    if (db_commit(conn, errstr, errstr_size) != 0)
        goto done;
    n = i;
done:
    PQclear(res);
    if (n < 0)
        db_rollback(conn);
    db_release(f->db, conn);
    return n;
}

static void *sweeper_main(void *arg)
{
    struct factory *f = arg;
    long long every = f->cfg.delivery_timeout_ms / 4;
    char err[512];

    if (every < SWEEP_MIN_MS)
        every = SWEEP_MIN_MS;
    if (every > SWEEP_MAX_MS)
        every = SWEEP_MAX_MS;
    pthread_mutex_lock(&sweeper_mu);
    while (!sweeper_stop) {
        struct timespec until;

        clock_gettime(CLOCK_REALTIME, &until);
        until.tv_sec += every / 1000;
        until.tv_nsec += (every % 1000) * 1000000L;
        if (until.tv_nsec >= 1000000000L) {
            until.tv_sec++;
            until.tv_nsec -= 1000000000L;
        }
        while (!sweeper_stop &&
               pthread_cond_timedwait(&sweeper_cv, &sweeper_mu, &until) != ETIMEDOUT)
            ;
        if (sweeper_stop)
            break;
        pthread_mutex_unlock(&sweeper_mu);
        if (sweep(f, err, sizeof(err)) < 0)
            log_warn("production_order_sweep_failed error=%s", LOG_Q(err));
        pthread_mutex_lock(&sweeper_mu);
    }
    pthread_mutex_unlock(&sweeper_mu);
    return NULL;
}

int sweeper_start(void *ctx, char *errstr, size_t errstr_size)
{
    int rc;

    sweeper_stop = 0;
    rc = pthread_create(&sweeper_thread, NULL, sweeper_main, ctx);
    if (rc != 0)
        snprintf(errstr, errstr_size, "production order sweeper: %s", strerror(rc));
    return rc != 0 ? -1 : 0;
}

void sweeper_stop_join(void *ctx)
{
    (void)ctx;
    pthread_mutex_lock(&sweeper_mu);
    sweeper_stop = 1;
    pthread_cond_signal(&sweeper_cv);
    pthread_mutex_unlock(&sweeper_mu);
    pthread_join(sweeper_thread, NULL);
}
