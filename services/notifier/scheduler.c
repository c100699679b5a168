/* scheduler: starts the day's bulletin at BULLETIN_CRON in BULLETIN_TZ. */
#include "notifier.h"

#include <stdlib.h>
#include <string.h>

#include "log.h"
#include "util.h"

/* The longest single wait: the wall clock is read again at least this often, so that a
 * clock that was set (NTP, a suspended machine) moves the run with it. */
#define SCHEDULER_WAIT_MAX_MS 30000
/* After a failure to start a run (database down): try again after this long. */
#define SCHEDULER_RETRY_MS 5000

struct scheduler {
    struct notifier *n;
    pthread_t thread;
    pthread_mutex_t mutex;
    pthread_cond_t cond;
    int stop;
};

/* Waits up to ms or until stopped. Returns 1 when stopped. */
static int wait_ms(struct scheduler *s, int64_t ms)
{
    int stop;

    pthread_mutex_lock(&s->mutex);
    stop = util_cond_wait_ms(&s->cond, &s->mutex, &s->stop, ms);
    pthread_mutex_unlock(&s->mutex);
    return stop;
}

int64_t scheduler_next(const struct notifier *n)
{
    char err[256];
    int64_t next;

    if (cron_next(&n->cfg.cron, n->cfg.zone, util_now_ms(), &next, err, sizeof(err)) != 0)
        return -1;
    return next;
}

/* Starts the bulletin of the run at run_ms, trying again while the database is down and
 * the run's deadline has not passed. */
static void start_run(struct scheduler *s, int64_t run_ms)
{
    struct notifier *n = s->n;
    char err[512];
    int64_t deadline_ms;
    PGconn *conn;
    int created;

    if (cron_deadline_at(&n->cfg.deadline, n->cfg.zone, run_ms, &deadline_ms,
                         err, sizeof(err)) != 0)
        deadline_ms = run_ms + 1;
    for (;;) {
        conn = db_acquire(n->db, (int)n->cfg.db_wait_ms, err, sizeof(err));
        if (conn != NULL &&
            bulletin_start(n, conn, run_ms, "schedule", &created, NULL, err,
                           sizeof(err)) == STORE_OK) {
            db_release(n->db, conn);
            log_info("bulletin_scheduled_run run_at=%lld new=%s", (long long)run_ms,
                     created ? "yes" : "no (the day has its bulletin)");
            return;
        }
        db_release(n->db, conn);
        log_error("bulletin_start_failed run_at=%lld error=%s", (long long)run_ms, LOG_Q(err));
        if (util_now_ms() >= deadline_ms || wait_ms(s, SCHEDULER_RETRY_MS))
            return;
    }
}

/* At start: today's first run, if it has passed and its deadline has not (the notifier
 * was down at the scheduled time). The bulletin of a day is created once, so this is
 * harmless when the run happened. */
static void catch_up(struct scheduler *s)
{
    struct notifier *n = s->n;
    char day[11], err[256];
    int64_t now = util_now_ms(), midnight, first, deadline_ms;

    if (cron_local_date(n->cfg.zone, now, day) != 0 ||
        cron_local_time_ms(n->cfg.zone, day, 0, 0, &midnight, err, sizeof(err)) != 0 ||
        cron_next(&n->cfg.cron, n->cfg.zone, midnight - 1, &first, err, sizeof(err)) != 0)
        return;
    if (first > now ||
        cron_deadline_at(&n->cfg.deadline, n->cfg.zone, first, &deadline_ms,
                         err, sizeof(err)) != 0 || deadline_ms <= now)
        return;
    log_info("bulletin_catch_up day=%s run_at=%lld", day, (long long)first);
    start_run(s, first);
}

static void *scheduler_main(void *arg)
{
    struct scheduler *s = arg;
    char err[256];
    int64_t next, now;

    catch_up(s);
    for (;;) {
        now = util_now_ms();
        if (cron_next(&s->n->cfg.cron, s->n->cfg.zone, now, &next, err, sizeof(err)) != 0) {
            log_error("bulletin_schedule_failed error=%s", LOG_Q(err));
            return NULL;
        }
        /* Wait until the run, re-reading the clock now and then. */
        while (next > now) {
            if (wait_ms(s, next - now < SCHEDULER_WAIT_MAX_MS ? next - now
                                                              : SCHEDULER_WAIT_MAX_MS))
                return NULL;
            now = util_now_ms();
        }
        start_run(s, next);
        pthread_mutex_lock(&s->mutex);
        if (s->stop) {
            pthread_mutex_unlock(&s->mutex);
            return NULL;
        }
        pthread_mutex_unlock(&s->mutex);
    }
}

struct scheduler *scheduler_start(struct notifier *n, char *errstr, size_t errstr_size)
{
    struct scheduler *s = calloc(1, sizeof(*s));
    int rc;

    if (s == NULL) {
        util_errf(errstr, errstr_size, "out of memory");
        return NULL;
    }
    s->n = n;
    pthread_mutex_init(&s->mutex, NULL);
    if (util_cond_init_monotonic(&s->cond) != 0) {
        pthread_mutex_destroy(&s->mutex);
        free(s);
        util_errf(errstr, errstr_size, "cannot create a condition variable");
        return NULL;
    }
    if ((rc = pthread_create(&s->thread, NULL, scheduler_main, s)) != 0) {
        pthread_cond_destroy(&s->cond);
        pthread_mutex_destroy(&s->mutex);
        free(s);
        util_errf(errstr, errstr_size, "pthread_create: %s", strerror(rc));
        return NULL;
    }
    return s;
}

void scheduler_stop(struct scheduler *s)
{
    if (s == NULL)
        return;
    pthread_mutex_lock(&s->mutex);
    s->stop = 1;
    pthread_cond_broadcast(&s->cond);
    pthread_mutex_unlock(&s->mutex);
    pthread_join(s->thread, NULL);
    pthread_cond_destroy(&s->cond);
    pthread_mutex_destroy(&s->mutex);
    free(s);
}
