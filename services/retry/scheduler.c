/* scheduler: redelivers stored retry records when they are due, or gives them up.
 *
 * One thread. A round reads at most RETRY_BATCH due rows (ORDER BY due_at over an index,
 * so in time order across every partition), produces each row's records (a redelivery to
 * retry.<group>, or a dead letter plus a final notice to retry.<group>), waits for the
 * broker's acknowledgements (idempotent producer, acks=all), and only then deletes the
 * acknowledged rows. Between rounds it sleeps until the next due_at (SELECT min), at most
 * SLEEP_MAX_MS, or until the consumer stores a row due earlier (a condition variable): no
 * busy waiting, and nothing in memory but the round in hand and the next due time.
 *
 * A crash after an acknowledgement and before the DELETE sends that row's records again
 * after the restart: redeliveries are at least once, and consumers deduplicate by ce_id.
 * Instances sharing a database run one scheduler at a time (a session advisory lock). The
 * lock's session has a lease (DB_LEADER_LEASE, db.h): the active scheduler runs a
 * statement at least every third of it, and a scheduler that falls silent (paused, hung,
 * cut off) has its session ended by the server, so that a standby, asking every
 * STANDBY_RETRY_MS, takes over. What a resumed ex-leader can still do is written in
 * docs/reliability.md (leader failover). */
#include "retry_service.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "kafka.h"
#include "log.h"
#include "util.h"

#define SLEEP_MAX_MS 2000            /* also the backstop for rows another instance stored */
#define ERROR_BACKOFF_INITIAL_MS 250
#define ERROR_BACKOFF_MAX_MS 5000
#define STANDBY_RETRY_MS 1000        /* how often a standby scheduler asks for the lock */
#define REPORT_SLICE_MS 100          /* delivery reports are served this long between beats */
#define DELIVERY_RETRY_MS 5000       /* a row whose delivery failed is due again after this */
#define METADATA_MAX_AGE_MS 60000    /* a topic seen is trusted this long */
#define METADATA_MISS_MS 1000        /* a topic not seen is looked up again after this */

struct scheduler {
    struct retry *r;
    pthread_t thread;
    pthread_mutex_t mu;
    pthread_cond_t cond;        /* on CLOCK_MONOTONIC */
    int64_t kicked_due;         /* earliest due_at stored since the last look (mu) */
    int stop;                   /* (mu) */
    rd_kafka_t *producer;
    int outstanding;            /* delivery reports expected (scheduler thread only) */
    PGconn *conn;               /* its own connection: it holds the advisory lock */
    int locked;
    int64_t beat_ms;            /* when the lease was last renewed (monotonic) */
    int standby_logged;
    const struct rd_kafka_metadata *md;  /* the cluster's topics, or NULL */
    int64_t md_at;              /* when md was last fetched (monotonic ms) */
};

/* One row of a round and what became of it. */
struct plan {
    const char *give_up;        /* NULL: a redelivery; else the dead letter's reason */
    deliver_status_t st[2];     /* its records: [0] the redelivery or the dead letter,
                                 * [1] the final notice of a give-up */
    int nmsgs;
    int produce_failed;
    int64_t later_ms;           /* > 0: not sent, due again at this time */
};

static int stopping(struct scheduler *s)
{
    int stop;

    pthread_mutex_lock(&s->mu);
    stop = s->stop;
    pthread_mutex_unlock(&s->mu);
    return stop;
}

/* Sleeps until the wall-clock time until_ms, for at most max_ms, and less when stopped or
 * kicked with a due time earlier than the one slept for. */
static void sleep_until(struct scheduler *s, int64_t until_ms, int64_t max_ms)
{
    int64_t mono_end;

    /* The holder of the lock must not fall silent for its lease: it wakes up in time for
     * the next heartbeat (the loop's statements are the heartbeat). */
    if (s->locked && max_ms > db_lease_heartbeat_ms(s->r->cfg.svc.db_leader_lease_ms))
        max_ms = db_lease_heartbeat_ms(s->r->cfg.svc.db_leader_lease_ms);
    mono_end = util_mono_ms() + max_ms;

    pthread_mutex_lock(&s->mu);
    while (!s->stop) {
        int64_t target = until_ms < s->kicked_due ? until_ms : s->kicked_due;
        int64_t mono_now = util_mono_ms();
        int64_t wait = target - util_now_ms();
        int64_t end = wait < mono_end - mono_now ? mono_now + wait : mono_end;
        struct timespec ts;
        int rc;

        if (end <= mono_now)
            break;
        ts.tv_sec = (time_t)(end / 1000);
        ts.tv_nsec = (long)(end % 1000) * 1000000L;
        rc = pthread_cond_timedwait(&s->cond, &s->mu, &ts);
        if (rc != 0 && rc != ETIMEDOUT)
            break;
    }
    pthread_mutex_unlock(&s->mu);
}

/* Connects (again) if needed. Returns 0 with s->conn usable, or -1 (logged). */
static int ensure_conn(struct scheduler *s)
{
    char err[512];

    if (s->conn != NULL && PQstatus(s->conn) == CONNECTION_OK)
        return 0;
    if (s->conn != NULL) {
        PQfinish(s->conn); /* the advisory lock went with the session */
        s->conn = NULL;
        if (s->locked)
            log_warn("retry_scheduler_lock_lost reason=\"database connection lost\"");
        s->locked = 0;
    }
    s->conn = db_connect(s->r->cfg.database_url, store_stmts, store_nstmts, err, sizeof(err));
    if (s->conn == NULL) {
        log_warn("retry_scheduler_db_unavailable error=%s", LOG_Q(err));
        return -1;
    }
    return 0;
}

/* Takes the scheduler lock if not held. Returns 0 when held, -1 otherwise (standby or an
 * error, logged). */
static int ensure_lock(struct scheduler *s)
{
    char err[512];
    int rc;

    if (s->locked)
        return 0;
    rc = store_try_scheduler_lock(s->conn, err, sizeof(err));
    if (rc == 1) {
        int lease = db_lease_begin(s->conn, s->r->cfg.svc.db_leader_lease_ms, err,
                                   sizeof(err));

        if (lease < 0) {
            /* The lock must not be held without its lease: give it back. */
            log_warn("retry_scheduler_lease_failed error=%s", LOG_Q(err));
            PQfinish(s->conn);
            s->conn = NULL;
            return -1;
        }
        if (lease == 1)
            log_warn("retry_scheduler_no_lease error=%s reason=\"PostgreSQL before 14: a "
                     "paused scheduler keeps the lock\"", LOG_Q(err));
    }
    if (rc == 1) {
        s->locked = 1;
        s->beat_ms = util_mono_ms();
        s->standby_logged = 0;
        log_info("retry_scheduler_active");
        return 0;
    }
    if (rc == 0 && !s->standby_logged) {
        log_info("retry_scheduler_standby reason=\"another instance holds the scheduler "
                 "lock\"");
        s->standby_logged = 1;
    } else if (rc < 0) {
        log_warn("retry_scheduler_lock_failed error=%s", LOG_Q(err));
    }
    return -1;
}

/* Fetches the list of the cluster's topics (all of them: asking for one by name could
 * have the broker create it). Returns 0, or -1 keeping the previous list. */
static int metadata_refresh(struct scheduler *s)
{
    const struct rd_kafka_metadata *md = NULL;
    rd_kafka_resp_err_t err;

    s->md_at = util_mono_ms();
    err = rd_kafka_metadata(s->producer, 1, NULL, &md, 5000);
    if (err != RD_KAFKA_RESP_ERR_NO_ERROR) {
        log_warn("retry_metadata_failed err=%s", rd_kafka_err2name(err));
        return -1;
    }
    if (s->md != NULL)
        rd_kafka_metadata_destroy(s->md);
    s->md = md;
    return 0;
}

static int metadata_has(const struct rd_kafka_metadata *md, const char *topic)
{
    for (int i = 0; md != NULL && i < md->topic_cnt; i++) {
        if (strcmp(md->topics[i].topic, topic) == 0)
            return md->topics[i].err == RD_KAFKA_RESP_ERR_NO_ERROR &&
                   md->topics[i].partition_cnt > 0;
    }
    return 0;
}

/* Whether topic exists: 1 yes, 0 no (seen missing in a list fetched just now), -1 cannot
 * tell yet (the list is too fresh to fetch again, or the cluster did not answer). Keeps the
 * producer from sending to a topic that is not there, which a broker allowing automatic
 * creation would create with its defaults. */
static int topic_exists(struct scheduler *s, const char *topic)
{
    int64_t age = util_mono_ms() - s->md_at;

    if (s->md != NULL && age <= METADATA_MAX_AGE_MS && metadata_has(s->md, topic))
        return 1;
    /* At most one request a METADATA_MISS_MS, even with a round full of such rows or a
     * cluster that does not answer. */
    if (age < METADATA_MISS_MS || metadata_refresh(s) != 0)
        return -1;
    return metadata_has(s->md, topic);
}

/* Produces one record of row with headers of kind out. Returns 0, or -1 (logged). */
static int send_one(struct scheduler *s, const pending_row_t *row, const char *topic,
                    record_out_t out, const char *give_up, const char *error,
                    deliver_status_t *st)
{
    rd_kafka_headers_t *hdrs;
    char err[512];

    hdrs = record_headers_decode(row->headers, row->headers_len, err, sizeof(err));
    if (hdrs == NULL) {
        /* Never held up by its own bytes: sent with the dozen-* headers only. */
        log_error("retry_headers_unreadable id=%lld error=%s", (long long)row->id, LOG_Q(err));
        hdrs = rd_kafka_headers_new(12);
    }
    if (record_headers_add(hdrs, &row->rec, out, give_up, error, err, sizeof(err)) != 0 ||
        deliver_produce(s->producer, &s->outstanding, topic, row->key, row->key_len,
                        row->value, row->value_len, hdrs, st, err, sizeof(err)) != 0) {
        rd_kafka_headers_destroy(hdrs);
        st->pending = 0;
        st->err = RD_KAFKA_RESP_ERR__FAIL;
        log_error("retry_produce_failed id=%lld topic=%s error=%s", (long long)row->id,
                  topic, LOG_Q(err));
        return -1;
    }
    return 0;
}

/* Decides and sends one row's records. */
static void plan_row(struct scheduler *s, const pending_row_t *row, int64_t now,
                     struct plan *p)
{
    const retry_record_t *r = &row->rec;
    retry_action_t action = record_decide(r, now);
    char topic[RETRY_TOPIC_MAX + 8];
    char error[RETRY_ERROR_MAX + 2 * RETRY_TOPIC_MAX + 64]; /* cut to RETRY_ERROR_MAX when sent */
    int exists;

    memset(p, 0, sizeof(*p));
    p->give_up = record_action_reason(action);
    if (retry_redelivery_topic(r->info.group, topic, sizeof(topic)) != 0)
        topic[0] = '\0'; /* cannot happen: the group was checked when stored */
    exists = topic[0] != '\0' ? topic_exists(s, topic) : 0;
    if (exists < 0) {
        p->later_ms = now + METADATA_MISS_MS;
        return;
    }
    if (exists == 0) {
        /* Nobody would ever read a redelivery or a notice: dead-lettered now (as given up,
         * when it is), with what the owner said last. */
        if (p->give_up == NULL)
            p->give_up = RETRY_REASON_UNKNOWN_GROUP;
        snprintf(error, sizeof(error), "no topic '%s' for group '%s'; last error: %s", topic,
                 r->info.group, r->info.error);
        p->nmsgs = 1;
        p->produce_failed |= send_one(s, row, RETRY_DEAD_LETTER_TOPIC, OUT_DEAD_LETTER,
                                      p->give_up, error, &p->st[0]) != 0;
        return;
    }
    if (p->give_up == NULL) {
        p->nmsgs = 1;
        p->produce_failed |= send_one(s, row, topic, OUT_REDELIVERY, NULL, NULL,
                                      &p->st[0]) != 0;
        return;
    }
    p->nmsgs = 2;
    p->produce_failed |= send_one(s, row, RETRY_DEAD_LETTER_TOPIC, OUT_DEAD_LETTER,
                                  p->give_up, NULL, &p->st[0]) != 0;
    p->produce_failed |= send_one(s, row, topic, OUT_NOTICE, p->give_up, NULL,
                                  &p->st[1]) != 0;
}

/* Logs what became of a row whose records were all acknowledged. */
static void log_outcome(const pending_row_t *row, const struct plan *p, int64_t acked_at)
{
    const retry_record_t *r = &row->rec;
    const char *ce_id = r->ce_id[0] != '\0' ? r->ce_id : "-";

    if (p->give_up == NULL)
        log_info("retry_redelivered group=%s ce_id=%s attempt=%d max_attempts=%d "
                 "original=%s[%d]@%lld late_ms=%lld", r->info.group, ce_id, (int)r->info.attempt,
                 (int)r->info.max_attempts, r->info.original_topic, (int)r->info.original_partition,
                 (long long)r->info.original_offset, (long long)(acked_at - row->due_at_ms));
    else
        log_warn("retry_dead_lettered group=%s ce_id=%s reason=%s last_reason=%s attempt=%d "
                 "max_attempts=%d original=%s[%d]@%lld", r->info.group, ce_id, p->give_up,
                 r->info.reason, (int)r->info.attempt, (int)r->info.max_attempts,
                 r->info.original_topic,
                 (int)r->info.original_partition, (long long)r->info.original_offset);
}

/* Writes the outcome of a round, trying again while PostgreSQL fails (its records are out:
 * giving up here would send them again). Returns 0, or -1 when stopped first. */
static int finish_round(struct scheduler *s, const int64_t *done, size_t n_done,
                        const int64_t *gave_up, const char *const *reasons, size_t n_gave_up,
                        const int64_t *later, const int64_t *later_due, size_t n_later)
{
    int64_t backoff = ERROR_BACKOFF_INITIAL_MS;
    char err[512];

    for (;;) {
        if (ensure_conn(s) == 0) { /* ensure_conn logs its own failure */
            if (store_finish_round(s->conn, done, n_done, gave_up, reasons, n_gave_up, later,
                                   later_due, n_later, err, sizeof(err)) == 0)
                return 0;
            log_error("retry_round_finish_failed rows=%zu error=%s", n_done + n_later,
                      LOG_Q(err));
        }
        if (stopping(s))
            return -1;
        sleep_until(s, INT64_MAX, backoff);
        backoff = backoff * 2 > ERROR_BACKOFF_MAX_MS ? ERROR_BACKOFF_MAX_MS : backoff * 2;
    }
}

/* Renews the lease when a heartbeat is due (a failure is left for the next statement to
 * find). */
static void lease_beat(struct scheduler *s)
{
    char err[256];
    int64_t now = util_mono_ms();

    if (!s->locked || s->conn == NULL ||
        now - s->beat_ms < db_lease_heartbeat_ms(s->r->cfg.svc.db_leader_lease_ms))
        return;
    if (db_lease_renew(s->conn, err, sizeof(err)) == 0)
        s->beat_ms = now;
}

/* deliver_wait, keeping the lease while the broker takes its time. */
static void await_reports(struct scheduler *s)
{
    while (s->outstanding > 0) {
        lease_beat(s);
        rd_kafka_flush(s->producer, REPORT_SLICE_MS);
    }
}

/* One round. Returns the number of due rows it handled, or -1 on a database error. */
static int run_round(struct scheduler *s)
{
    int64_t now = util_now_ms(), acked_at;
    pending_row_t *rows = NULL;
    struct plan *plans = NULL;
    int64_t *done = NULL, *gave_up = NULL, *later = NULL, *later_due = NULL;
    const char **reasons = NULL;
    size_t n_done = 0, n_gave_up = 0, n_later = 0;
    char err[512];
    int n, i, ret = -1;
    int64_t selected_at;

    n = store_due(s->conn, now, s->r->cfg.batch, &rows, err, sizeof(err));
    selected_at = util_mono_ms();
    if (n < 0) {
        log_error("retry_due_failed error=%s", LOG_Q(err));
        return -1;
    }
    if (n == 0) {
        store_rows_free(rows, 0);
        return 0;
    }
    plans = calloc((size_t)n, sizeof(*plans));
    done = calloc((size_t)n, sizeof(*done));
    gave_up = calloc((size_t)n, sizeof(*gave_up));
    later = calloc((size_t)n, sizeof(*later));
    later_due = calloc((size_t)n, sizeof(*later_due));
    reasons = calloc((size_t)n, sizeof(*reasons));
    if (plans == NULL || done == NULL || gave_up == NULL || later == NULL ||
        later_due == NULL || reasons == NULL) {
        log_error("retry_round_failed error=\"out of memory\"");
        goto out;
    }

    for (i = 0; i < n; i++) {
        /* Paused (or starved) since the SELECT: the lease may have run out and a new active
         * scheduler may be sending these rows. The rest stays due as it was. */
        if (util_mono_ms() - selected_at >= s->r->cfg.svc.db_leader_lease_ms / 2) {
            plans[i].later_ms = rows[i].due_at_ms > 0 ? rows[i].due_at_ms : 1;
            continue;
        }
        plan_row(s, &rows[i], now, &plans[i]);
    }
    await_reports(s);
    acked_at = util_now_ms();

    for (i = 0; i < n; i++) {
        struct plan *p = &plans[i];
        int ok = p->later_ms == 0 && !p->produce_failed;

        for (int m = 0; ok && m < p->nmsgs; m++)
            ok = p->st[m].err == RD_KAFKA_RESP_ERR_NO_ERROR;
        if (ok) {
            done[n_done++] = rows[i].id;
            if (p->give_up != NULL) {
                gave_up[n_gave_up] = rows[i].id;
                reasons[n_gave_up++] = p->give_up;
            }
            log_outcome(&rows[i], p, acked_at);
            retry_metrics_outcome(s->r->metrics, rows[i].rec.info.group, p->give_up,
                                  rows[i].due_at_ms, acked_at);
            continue;
        }
        later[n_later] = rows[i].id;
        if (p->later_ms > 0) {
            later_due[n_later++] = p->later_ms;
            continue;
        }
        later_due[n_later++] = acked_at + DELIVERY_RETRY_MS;
        for (int m = 0; m < p->nmsgs; m++) {
            if (p->st[m].err != RD_KAFKA_RESP_ERR_NO_ERROR)
                log_warn("retry_delivery_failed id=%lld group=%s ce_id=%s err=%s "
                         "retry_in_ms=%d", (long long)rows[i].id, rows[i].rec.info.group,
                         rows[i].rec.ce_id[0] != '\0' ? rows[i].rec.ce_id : "-",
                         rd_kafka_err2name(p->st[m].err), DELIVERY_RETRY_MS);
        }
    }
    if (finish_round(s, done, n_done, gave_up, reasons, n_gave_up, later, later_due,
                     n_later) != 0)
        goto out;
    ret = n;
out:
    store_rows_free(rows, n);
    free(plans);
    free(done);
    free(gave_up);
    free(later);
    free(later_due);
    free(reasons);
    return ret;
}

static void *scheduler_thread(void *arg)
{
    struct scheduler *s = arg;
    int64_t backoff = ERROR_BACKOFF_INITIAL_MS;
    char err[512];

    while (!stopping(s)) {
        int64_t next = INT64_MAX;
        int n, rc;

        if (ensure_conn(s) != 0) {
            sleep_until(s, INT64_MAX, backoff);
            backoff = backoff * 2 > ERROR_BACKOFF_MAX_MS ? ERROR_BACKOFF_MAX_MS : backoff * 2;
            continue;
        }
        if (ensure_lock(s) != 0) {
            sleep_until(s, INT64_MAX, STANDBY_RETRY_MS);
            continue;
        }
        /* From here on, a row stored by the consumer is either seen by the queries below
         * or announced by a kick after this reset. */
        pthread_mutex_lock(&s->mu);
        s->kicked_due = INT64_MAX;
        pthread_mutex_unlock(&s->mu);

        n = run_round(s);
        if (n < 0) {
            sleep_until(s, INT64_MAX, backoff);
            backoff = backoff * 2 > ERROR_BACKOFF_MAX_MS ? ERROR_BACKOFF_MAX_MS : backoff * 2;
            continue;
        }
        backoff = ERROR_BACKOFF_INITIAL_MS;
        if (n >= s->r->cfg.batch)
            continue; /* more may be due already */
        rc = store_next_due(s->conn, &next, err, sizeof(err));
        if (rc < 0) {
            log_error("retry_next_due_failed error=%s", LOG_Q(err));
            sleep_until(s, INT64_MAX, backoff);
            continue;
        }
        sleep_until(s, rc == 1 ? next : INT64_MAX, SLEEP_MAX_MS);
    }
    return NULL;
}

struct scheduler *scheduler_start(struct retry *r, char *errstr, size_t errstr_size)
{
    struct scheduler *s = calloc(1, sizeof(*s)), *ret = NULL;
    int sync_ready = 0, err;

    if (s == NULL) {
        util_errf(errstr, errstr_size, "out of memory");
        goto done;
    }
    s->r = r;
    s->kicked_due = INT64_MAX;
    s->producer = kafka_producer_new(r->cfg.kafka_bootstrap, RETRY_SERVICE, deliver_report,
                                     &s->outstanding, errstr, errstr_size);
    if (s->producer == NULL)
        goto done;
    pthread_mutex_init(&s->mu, NULL);
    if (util_cond_init_monotonic(&s->cond) != 0) {
        pthread_mutex_destroy(&s->mu);
        util_errf(errstr, errstr_size, "cannot create a condition variable");
        goto done;
    }
    sync_ready = 1;
    err = pthread_create(&s->thread, NULL, scheduler_thread, s);
    if (err != 0) {
        util_errf(errstr, errstr_size, "pthread_create: %s", strerror(err));
        goto done;
    }
    ret = s;
    s = NULL; /* the caller's now (scheduler_stop) */
done:
    if (s != NULL) {
        kafka_producer_close(s->producer, 0);
        if (sync_ready) {
            pthread_cond_destroy(&s->cond);
            pthread_mutex_destroy(&s->mu);
        }
        free(s);
    }
    return ret;
}

void scheduler_kick(struct scheduler *s, int64_t due_ms)
{
    if (s == NULL)
        return;
    pthread_mutex_lock(&s->mu);
    if (due_ms < s->kicked_due) {
        s->kicked_due = due_ms;
        pthread_cond_signal(&s->cond);
    }
    pthread_mutex_unlock(&s->mu);
}

void scheduler_stop(struct scheduler *s)
{
    if (s == NULL)
        return;
    pthread_mutex_lock(&s->mu);
    s->stop = 1;
    pthread_cond_signal(&s->cond);
    pthread_mutex_unlock(&s->mu);
    pthread_join(s->thread, NULL);
    kafka_producer_close(s->producer, 10000);
    if (s->md != NULL)
        rd_kafka_metadata_destroy(s->md);
    if (s->conn != NULL)
        PQfinish(s->conn); /* releases the scheduler lock */
    pthread_cond_destroy(&s->cond);
    pthread_mutex_destroy(&s->mu);
    free(s);
}
