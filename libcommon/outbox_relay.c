/* outbox_relay: the relay thread that publishes the outbox to Kafka: its connection, the
 * leader lock, LISTEN/NOTIFY, the loop and its status. A round of publishing is in
 * outbox_publish.c, the read-back after a crash in outbox_reconcile.c, the deletion of old
 * rows in outbox_prune.c.
 *
 * How the relay keeps "published exactly once" across crashes:
 *
 * - One publisher per producer. The relay holds a session advisory lock keyed on the
 *   producer name on its own connection; a relay that does not hold it stands by, asking
 *   again every second. Losing the connection loses the lock, and the relay must take it
 *   again. The lock's session has a lease (db_lease_begin, DB_LEADER_LEASE): the leader
 *   runs a statement at least every third of it (outbox_lease_beat), and the server ends
 *   the session of a leader that fell silent (paused, hung, cut off), so that a standby
 *   takes over; a round that finds itself half a lease past its SELECT stops producing.
 * - A row is marked sent (with the partition and offset the broker reported) only after its
 *   delivery report said the broker acknowledged it (idempotent producer, acks=all). The
 *   mark also moves outbox_position(producer, topic, partition).next_offset past the record.
 * - A relay can die between the acknowledgement and the mark (SIGKILL, power loss), leaving
 *   records on the topic whose rows are still unsent. So before its first publishing round
 *   after taking the lock, and after any round in which a delivery failed or could not be
 *   marked, the relay reconciles (outbox_reconcile.c): it reads the topics back from the
 *   stored positions and marks the unsent rows whose ce_id it found there. Only then does
 *   it publish; the relay never publishes on a guess.
 *
 * What this does not cover: a relay that lost its database session (and so its lock) but
 * keeps running, cut off from PostgreSQL yet not from Kafka, or paused between its SELECT
 * and its produce calls, can still deliver the round it had in flight while a new leader
 * publishes the same rows. Fencing that needs Kafka
 * transactions; here the window is one round of at most `batch` rows. Consumers deduplicate
 * on ce_id in any case.
 *
 * Test hook: with OUTBOX_DEBUG_CRASH_AFTER_ACK=1 in the environment when the relay starts,
 * the process _exit(137)s right after a round's delivery reports came back and before the
 * rows are marked sent: the state a SIGKILL at the worst moment leaves behind. The system
 * test of the relay uses it to check that a restart publishes nothing twice. */
#include "outbox.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <poll.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "kafka.h"
#include "log.h"
#include "metrics.h"
#include "outbox_int.h"
#include "util.h"

#define DEFAULT_POLL_MS 1000
#define DEFAULT_LEASE_MS 3000
#define STANDBY_RETRY_MS 1000 /* how often a standby asks for the lock, at most */
#define DEFAULT_BATCH 500
#define MAX_BATCH 100000
#define MAX_PRODUCER_LEN OUTBOX_PRODUCER_MAX

#define BACKOFF_MIN_MS 100
#define BACKOFF_MAX_MS 5000

/* First key of the relay's two-int advisory lock; the second is hashtext(producer). */
#define RELAY_LOCK_CLASS "1869574754"

#define NOTIFY_CHANNEL "dozen_outbox"

/* A standby passes its instance's commits on to the leader at most this often: one NOTIFY
 * per pass for every commit since the last, never one per row. */
#define FORWARD_MIN_MS 2

#define MAX_RELAYS 16 /* relays one process can run; more are started but not woken */

/* The relay's own statement; pg_open prepares it with those of the other outbox files. */
static const db_stmt_t relay_stmts[] = {
    { "relay_lock",
      "SELECT pg_try_advisory_lock(" RELAY_LOCK_CLASS ", hashtext($1))", 1 },
    /* A standby's wake for the leader, sent outside any order's transaction. */
    { "relay_forward", "SELECT pg_notify('" NOTIFY_CHANNEL "', $1)", 1 },
};
#define RELAY_NSTMTS (sizeof(relay_stmts) / sizeof(relay_stmts[0]))
#define ALL_NSTMTS (RELAY_NSTMTS + OUTBOX_PUBLISH_NSTMTS + OUTBOX_RECONCILE_NSTMTS + \
                    OUTBOX_PRUNE_NSTMTS)

/* ------------------------------------------------------------------------------------ */
/* Waking: the relays of this process, found by producer */

static pthread_mutex_t registry_mu = PTHREAD_MUTEX_INITIALIZER;
static outbox_relay_t *registry[MAX_RELAYS];

static void relay_register(outbox_relay_t *r)
{
    pthread_mutex_lock(&registry_mu);
    for (size_t i = 0; i < MAX_RELAYS; i++)
        if (registry[i] == NULL) {
            registry[i] = r;
            break;
        }
    pthread_mutex_unlock(&registry_mu);
    db_set_txn_hook(outbox_txn_end);
}

static void relay_unregister(outbox_relay_t *r)
{
    pthread_mutex_lock(&registry_mu);
    for (size_t i = 0; i < MAX_RELAYS; i++)
        if (registry[i] == r)
            registry[i] = NULL;
    pthread_mutex_unlock(&registry_mu);
}

/* Writes one byte to the self-pipe unless a kick is already pending. */
static void relay_kick(outbox_relay_t *r)
{
    ssize_t n;

    if (__atomic_exchange_n(&r->kicked, 1, __ATOMIC_ACQ_REL) != 0)
        return;
    do
        n = write(r->kick[1], "k", 1);
    while (n < 0 && errno == EINTR);
    /* EAGAIN: the pipe is full of earlier bytes, which wake the relay just as well. */
}

void outbox_wake(const char *producer)
{
    if (producer == NULL)
        return;
    pthread_mutex_lock(&registry_mu);
    for (size_t i = 0; i < MAX_RELAYS; i++)
        if (registry[i] != NULL && strcmp(registry[i]->producer, producer) == 0)
            relay_kick(registry[i]);
    pthread_mutex_unlock(&registry_mu);
}

int outbox_take_kick(outbox_relay_t *r)
{
    char buf[64];

    while (read(r->kick[0], buf, sizeof(buf)) > 0)
        ;
    return __atomic_exchange_n(&r->kicked, 0, __ATOMIC_ACQ_REL);
}

/* ------------------------------------------------------------------------------------ */
/* Status */

/* Records a failure for outbox_relay_status() and logs it when it differs from the last
 * one logged, so that a relay retrying every few seconds logs once per state change. */
static void relay_failed(outbox_relay_t *r, const char *err)
{
    pthread_mutex_lock(&r->mu);
    r->status_ok = 0;
    snprintf(r->status_err, sizeof(r->status_err), "%s", err);
    pthread_mutex_unlock(&r->mu);

    if (strcmp(r->logged_err, err) != 0) {
        snprintf(r->logged_err, sizeof(r->logged_err), "%s", err);
        log_error("outbox_relay_error producer=%s error=%s", r->producer, LOG_Q(err));
    }
}

static void relay_healthy(outbox_relay_t *r)
{
    pthread_mutex_lock(&r->mu);
    r->status_ok = 1;
    r->status_err[0] = '\0';
    pthread_mutex_unlock(&r->mu);

    if (r->logged_err[0] != '\0') {
        r->logged_err[0] = '\0';
        log_info("outbox_relay_recovered producer=%s", r->producer);
    }
}

/* A standby's turn with a kick: the commits it stands for wrote rows the leader (another
 * instance) publishes, and the leader's LISTEN hears this NOTIFY. Sent on the standby's
 * own session, so no order's commit takes PostgreSQL's notify lock. A failure is left for
 * the next statement to find: the leader's poll covers the rows meanwhile. */
static void standby_forward(outbox_relay_t *r)
{
    const char *params[1] = { r->producer };
    char err[256];
    PGresult *res;

    if (r->pg == NULL || r->leader)
        return;
    res = db_exec(r->pg, "relay_forward", 1, params, NULL, err, sizeof(err));
    PQclear(res);
}

/* Sleeps up to ms, returning early when the relay is told to stop. Kicks meanwhile are
 * passed on to the leader (a standby) or left for the next round (a relay backing off). */
static void relay_sleep(outbox_relay_t *r, int64_t ms)
{
    int64_t deadline = util_mono_ms() + ms;
    int64_t forward_at = 0; /* a kick waits for FORWARD_MIN_MS since the last forward */

    while (!outbox_stopping(r)) {
        struct pollfd pfd[2] = { { r->wake[0], POLLIN, 0 }, { -1, POLLIN, 0 } };
        int standby = !r->leader && r->pg != NULL;
        int64_t now = util_mono_ms();
        int64_t left = deadline - now;

        if (left <= 0)
            return;
        if (left > db_lease_heartbeat_ms(r->lease_ms))
            left = db_lease_heartbeat_ms(r->lease_ms);
        if (standby && __atomic_load_n(&r->kicked, __ATOMIC_ACQUIRE)) {
            if (now >= forward_at) {
                outbox_take_kick(r);
                standby_forward(r);
                forward_at = util_mono_ms() + FORWARD_MIN_MS;
                continue;
            }
            if (left > forward_at - now)
                left = forward_at - now;
        } else if (standby) {
            pfd[1].fd = r->kick[0];
        } /* backing off after a failure: a kick stays pending for the next round */
        if (poll(pfd, 2, (int)(left > 1000 ? 1000 : left)) > 0 && pfd[0].revents != 0)
            return; /* only outbox_relay_stop() writes to the pipe */
        outbox_lease_beat(r);
    }
}

void outbox_lease_beat(outbox_relay_t *r)
{
    char err[256];
    int64_t now = util_mono_ms();

    if (!r->leader || r->pg == NULL || now - r->beat_ms < db_lease_heartbeat_ms(r->lease_ms))
        return;
    if (db_lease_renew(r->pg, err, sizeof(err)) == 0)
        r->beat_ms = now;
}

int outbox_parse_ll(const char *s, long long min, long long max, long long *out)
{
    char *end;
    long long v;

    errno = 0;
    v = strtoll(s, &end, 10);
    if (errno != 0 || end == s || *end != '\0' || v < min || v > max)
        return -1;
    *out = v;
    return 0;
}

/* ------------------------------------------------------------------------------------ */
/* Connections */

static void pg_close(outbox_relay_t *r)
{
    PQfinish(r->pg);
    r->pg = NULL;
    if (r->leader && !outbox_stopping(r))
        log_info("outbox_relay_leadership_lost producer=%s", r->producer);
    r->leader = 0; /* the lock went with the session */
    metric_set(r->m_leader, 0);
}

/* Connects and prepares the statements of every outbox file. Returns 0, or -1 with errstr. */
static int pg_open(outbox_relay_t *r, char *errstr, size_t errstr_size)
{
    db_stmt_t stmts[ALL_NSTMTS];
    char err[256];
    size_t n = 0;

    memcpy(stmts + n, relay_stmts, sizeof(relay_stmts));
    n += RELAY_NSTMTS;
    memcpy(stmts + n, outbox_publish_stmts, sizeof(outbox_publish_stmts));
    n += OUTBOX_PUBLISH_NSTMTS;
    memcpy(stmts + n, outbox_reconcile_stmts, sizeof(outbox_reconcile_stmts));
    n += OUTBOX_RECONCILE_NSTMTS;
    memcpy(stmts + n, outbox_prune_stmts, sizeof(outbox_prune_stmts));
    n += OUTBOX_PRUNE_NSTMTS;
    r->pg = db_connect(r->conninfo, stmts, n, err, sizeof(err));
    if (r->pg == NULL) {
        snprintf(errstr, errstr_size, "database: %s", err);
        return -1;
    }
    /* The relay's own writes (marks, positions) need not wait for the WAL flush: one lost
     * in a crash of PostgreSQL leaves rows that look unsent, and the relay reconnects as a
     * new leader, whose first step is the reconciliation that finds them on the topic. The
     * orders' own commits stay durable: this is the relay's session only. */
    {
        PGresult *res = db_query(r->pg, "SET synchronous_commit TO off", 0, NULL, NULL, err,
                                 sizeof(err));

        if (res == NULL) {
            snprintf(errstr, errstr_size, "database: %s", err);
            PQfinish(r->pg);
            r->pg = NULL;
            return -1;
        }
        PQclear(res);
    }
    return 0;
}

/* Starts listening for new rows. Only the leader listens: a standby would collect
 * notifications it never reads. Returns 0, or -1 with errstr. */
static int pg_listen(outbox_relay_t *r, char *errstr, size_t errstr_size)
{
    char err[256];
    PGresult *res = db_query(r->pg, "LISTEN " NOTIFY_CHANNEL, 0, NULL, NULL, err,
                             sizeof(err));

    if (res == NULL) {
        snprintf(errstr, errstr_size, "database: LISTEN: %s", err);
        return -1;
    }
    PQclear(res);
    return 0;
}

/* Returns 1 when this relay holds the producer's lock now, 0 when another one does, -1
 * with errstr on failure. The lock is held until the session ends. */
static int leader_try(outbox_relay_t *r, char *errstr, size_t errstr_size)
{
    const char *params[1] = { r->producer };
    PGresult *res;
    int got;

    res = db_exec(r->pg, "relay_lock", 1, params, NULL, errstr, errstr_size);
    if (res == NULL)
        return -1;
    got = PQntuples(res) == 1 && strcmp(PQgetvalue(res, 0, 0), "t") == 0;
    PQclear(res);
    return got;
}


/* ------------------------------------------------------------------------------------ */
/* The relay thread */

/* Waits up to poll_ms for a kick from this process's commits, a notification naming our
 * producer (a standby's forward, or another writer's NOTIFY), or for stop. */
static void await_notify(outbox_relay_t *r)
{
    int64_t deadline = util_mono_ms() + r->poll_ms;

    for (;;) {
        struct pollfd pfd[3];
        PGnotify *nt;
        int ours = 0;
        int64_t left;

        /* Notifications may have arrived with the last query's results already. */
        while ((nt = PQnotifies(r->pg)) != NULL) {
            if (nt->extra != NULL && strcmp(nt->extra, r->producer) == 0)
                ours = 1;
            PQfreemem(nt);
        }
        left = deadline - util_mono_ms();
        if (ours || left <= 0 || outbox_stopping(r) ||
            __atomic_load_n(&r->kicked, __ATOMIC_ACQUIRE))
            return;
        outbox_lease_beat(r);
        if (PQstatus(r->pg) != CONNECTION_OK)
            return; /* the session ended (the lease ran out): the next step says so */
        if (left > db_lease_heartbeat_ms(r->lease_ms))
            left = db_lease_heartbeat_ms(r->lease_ms);
        pfd[0].fd = PQsocket(r->pg);
        pfd[0].events = POLLIN;
        pfd[0].revents = 0;
        pfd[1].fd = r->wake[0];
        pfd[1].events = POLLIN;
        pfd[1].revents = 0;
        pfd[2].fd = r->kick[0];
        pfd[2].events = POLLIN;
        pfd[2].revents = 0;
        if (pfd[0].fd < 0)
            return;
        if (poll(pfd, 3, (int)(left > 1000 ? 1000 : left)) < 0 && errno != EINTR)
            return;
        if (pfd[1].revents != 0 || pfd[2].revents != 0)
            return;
        if (pfd[0].revents != 0 && PQconsumeInput(r->pg) == 0)
            return; /* the connection broke: the next query says so */
    }
}

enum step { STEP_FAILED, STEP_STANDBY, STEP_IDLE, STEP_BUSY };

/* One pass of the relay loop: (re)connect, lead, reconcile, prune, publish. */
static enum step relay_step(outbox_relay_t *r, char *errstr, size_t errstr_size)
{
    int n;

    if (r->pg == NULL && pg_open(r, errstr, errstr_size) != 0)
        return STEP_FAILED;
    if (!r->leader) {
        n = leader_try(r, errstr, errstr_size);
        if (n < 0)
            return STEP_FAILED;
        if (n == 0) {
            if (!r->standby_logged)
                log_info("outbox_relay_standby producer=%s reason=\"another relay holds "
                         "the lock\"", r->producer);
            r->standby_logged = 1;
            return STEP_STANDBY;
        }
        /* The lease first: from here on the server ends this session, and the lock, when
         * the relay falls silent (paused, hung, cut off), so that a standby takes over.
         * LISTEN before the first SELECT, so that no row committed after it goes
         * unnoticed. If either fails, the lock goes with the connection. */
        n = db_lease_begin(r->pg, r->lease_ms, errstr, errstr_size);
        if (n == 1)
            log_warn("outbox_relay_no_lease producer=%s error=%s reason=\"PostgreSQL before "
                     "14: a paused leader keeps the lock\"", r->producer, LOG_Q(errstr));
        if (n < 0 || pg_listen(r, errstr, errstr_size) != 0) {
            pg_close(r);
            return STEP_FAILED;
        }
        r->beat_ms = util_mono_ms();
        r->leader = 1;
        metric_set(r->m_leader, 1);
        r->standby_logged = 0;
        r->need_reconcile = 1;
        log_info("outbox_relay_leader producer=%s", r->producer);
    }
    /* Only the leader needs a producer; a new one always starts with a reconciliation
     * (producer_close and a new leadership both ask for one). */
    if (r->rk == NULL && outbox_producer_open(r, errstr, errstr_size) != 0)
        return STEP_FAILED;
    if (r->need_reconcile) {
        if (outbox_reconcile(r, errstr, errstr_size) != 0)
            return STEP_FAILED;
        r->need_reconcile = 0;
    }
    if (util_mono_ms() >= r->next_prune_ms)
        outbox_prune(r);
    /* Before the SELECT: a commit that kicks from here on is seen by the next round. */
    outbox_take_kick(r);
    n = outbox_publish_round(r, errstr, errstr_size);
    if (n < 0)
        return STEP_FAILED;
    return n >= r->batch ? STEP_BUSY : STEP_IDLE;
}

static void *relay_main(void *arg)
{
    outbox_relay_t *r = arg;
    int64_t backoff = BACKOFF_MIN_MS;

    log_info("outbox_relay_started producer=%s batch=%d poll_ms=%" PRId64, r->producer,
             r->batch, r->poll_ms);
    r->next_prune_ms = util_mono_ms(); /* prune once at start */
    while (!outbox_stopping(r)) {
        char err[512];
        enum step st = relay_step(r, err, sizeof(err));

        switch (st) {
        case STEP_FAILED:
            relay_failed(r, err);
            if (r->pg != NULL && PQstatus(r->pg) != CONNECTION_OK)
                pg_close(r);
            relay_sleep(r, backoff);
            backoff = backoff * 2 > BACKOFF_MAX_MS ? BACKOFF_MAX_MS : backoff * 2;
            break;
        case STEP_STANDBY:
            relay_healthy(r);
            backoff = BACKOFF_MIN_MS;
            relay_sleep(r, r->poll_ms < STANDBY_RETRY_MS ? r->poll_ms : STANDBY_RETRY_MS);
            break;
        case STEP_IDLE:
            relay_healthy(r);
            backoff = BACKOFF_MIN_MS;
            await_notify(r);
            break;
        case STEP_BUSY:
            relay_healthy(r);
            backoff = BACKOFF_MIN_MS;
            break;
        }
    }

    /* Every round ended with its reports in (or gave up on them): nothing is in flight. */
    r->round_n = 0;
    kafka_producer_close(r->rk, 1000);
    r->rk = NULL;
    pg_close(r);
    log_info("outbox_relay_stopped producer=%s", r->producer);
    return NULL;
}

/* ------------------------------------------------------------------------------------ */
/* Life cycle */

static void relay_free(outbox_relay_t *r)
{
    if (r == NULL)
        return;
    if (r->wake[0] >= 0)
        close(r->wake[0]);
    if (r->wake[1] >= 0)
        close(r->wake[1]);
    if (r->kick[0] >= 0)
        close(r->kick[0]);
    if (r->kick[1] >= 0)
        close(r->kick[1]);
    pthread_mutex_destroy(&r->mu);
    free(r->rows);
    free(r->conninfo);
    free(r->bootstrap);
    free(r->producer);
    free(r);
}

const metrics_sql_gauge_t outbox_metrics_gauges[] = {
    { "dozen_outbox_backlog_rows",
      "Outbox rows written but not yet acknowledged by the broker.", "producer",
      "SELECT $1::text, count(*) FROM outbox WHERE producer = $1 AND sent_at IS NULL", 1 },
    { "dozen_outbox_oldest_unsent_age_seconds",
      "Age of the oldest outbox row not yet acknowledged by the broker (0 when none).",
      "producer",
      "SELECT $1::text, COALESCE(EXTRACT(EPOCH FROM now() - min(created_at)), 0) "
      "FROM outbox WHERE producer = $1 AND sent_at IS NULL", 1 },
};
const size_t outbox_metrics_ngauges =
    sizeof(outbox_metrics_gauges) / sizeof(outbox_metrics_gauges[0]);

/* The relay's series, labelled with its producer name. */
static void relay_metrics(outbox_relay_t *r, metrics_t *m)
{
    char labels[64 + MAX_PRODUCER_LEN];

    snprintf(labels, sizeof(labels), "producer=%s", r->producer != NULL ? r->producer : "");
    r->m_latency = metrics_histogram(m, "dozen_outbox_publish_latency_seconds",
                                     "From the writing transaction's start (outbox.created_at) "
                                     "to the broker's acknowledgement of the event.",
                                     labels, metrics_latency_buckets,
                                     metrics_latency_nbuckets);
    r->m_published = metrics_counter(m, "dozen_outbox_published_total",
                                     "Outbox rows the broker acknowledged.", labels);
    r->m_errors = metrics_counter(m, "dozen_outbox_publish_errors_total",
                                  "Outbox deliveries that failed or were not reported in time.",
                                  labels);
    r->m_leader = metrics_gauge(m, "dozen_outbox_relay_leader",
                                "1 while this instance's relay publishes (holds the lock), "
                                "0 while it stands by.", labels);
    metric_set(r->m_leader, 0);
}

outbox_relay_t *outbox_relay_start(const outbox_relay_opts_t *opts,
                                   char *errstr, size_t errstr_size)
{
    outbox_relay_t *r = NULL, *ret = NULL;
    PQconninfoOption *ci;
    const char *crash;
    char *perr = NULL;
    int rc;

    if (opts == NULL || opts->conninfo == NULL || opts->bootstrap == NULL ||
        opts->bootstrap[0] == '\0' || opts->producer == NULL) {
        snprintf(errstr, errstr_size, "outbox relay: conninfo, bootstrap and producer are "
                 "required");
        goto done;
    }
    if (opts->producer[0] == '\0' || strlen(opts->producer) > MAX_PRODUCER_LEN) {
        snprintf(errstr, errstr_size, "outbox relay: producer name must have 1 to %d bytes",
                 MAX_PRODUCER_LEN);
        goto done;
    }
    if (opts->poll_ms < 0 || opts->poll_ms > 24LL * 3600 * 1000) {
        snprintf(errstr, errstr_size, "outbox relay: poll interval %" PRId64 " ms out of "
                 "range", opts->poll_ms);
        goto done;
    }
    if (opts->lease_ms != 0 &&
        (opts->lease_ms < DB_LEASE_MIN_MS || opts->lease_ms > DB_LEASE_MAX_MS)) {
        snprintf(errstr, errstr_size, "outbox relay: lease %" PRId64 " ms out of range "
                 "%d..%d", opts->lease_ms, DB_LEASE_MIN_MS, DB_LEASE_MAX_MS);
        goto done;
    }
    if (opts->batch < 0 || opts->batch > MAX_BATCH) {
        snprintf(errstr, errstr_size, "outbox relay: batch %d out of range 1..%d",
                 opts->batch, MAX_BATCH);
        goto done;
    }
    ci = PQconninfoParse(opts->conninfo, &perr);
    if (ci == NULL) {
        snprintf(errstr, errstr_size, "outbox relay: bad connection string");
        PQfreemem(perr);
        goto done;
    }
    PQconninfoFree(ci);

    r = calloc(1, sizeof(*r));
    if (r == NULL)
        goto oom;
    r->wake[0] = r->wake[1] = r->kick[0] = r->kick[1] = -1;
    if (pthread_mutex_init(&r->mu, NULL) != 0) {
        free(r);
        r = NULL;
        goto oom;
    }
    r->poll_ms = opts->poll_ms > 0 ? opts->poll_ms : DEFAULT_POLL_MS;
    r->lease_ms = opts->lease_ms > 0 ? opts->lease_ms : DEFAULT_LEASE_MS;
    r->batch = opts->batch > 0 ? opts->batch : DEFAULT_BATCH;
    r->conninfo = strdup(opts->conninfo);
    r->bootstrap = strdup(opts->bootstrap);
    r->producer = strdup(opts->producer);
    if (opts->metrics != NULL && r->producer != NULL)
        relay_metrics(r, opts->metrics);
    r->rows = calloc((size_t)r->batch, sizeof(*r->rows));
    if (r->conninfo == NULL || r->bootstrap == NULL || r->producer == NULL || r->rows == NULL)
        goto oom;
    crash = getenv("OUTBOX_DEBUG_CRASH_AFTER_ACK");
    r->crash_after_ack = crash != NULL && strcmp(crash, "1") == 0;
    if (r->crash_after_ack)
        log_warn("outbox_debug_crash_armed producer=%s", r->producer);
    snprintf(r->status_err, sizeof(r->status_err), "relay starting");
    if (pipe2(r->wake, O_CLOEXEC | O_NONBLOCK) != 0 ||
        pipe2(r->kick, O_CLOEXEC | O_NONBLOCK) != 0) {
        snprintf(errstr, errstr_size, "outbox relay: pipe: %s", strerror(errno));
        goto done;
    }
    rc = pthread_create(&r->thread, NULL, relay_main, r);
    if (rc != 0) {
        snprintf(errstr, errstr_size, "outbox relay: thread: %s", strerror(rc));
        goto done;
    }
    relay_register(r);
    ret = r;
    r = NULL; /* the caller owns it; outbox_relay_stop() frees it */
    goto done;
oom:
    snprintf(errstr, errstr_size, "outbox relay: out of memory");
done:
    relay_free(r);
    return ret;
}

void outbox_relay_stop(outbox_relay_t *relay)
{
    ssize_t n;

    if (relay == NULL)
        return;
    relay_unregister(relay);
    __atomic_store_n(&relay->stop, 1, __ATOMIC_RELEASE);
    do
        n = write(relay->wake[1], "x", 1);
    while (n < 0 && errno == EINTR);
    pthread_join(relay->thread, NULL);
    relay_free(relay);
}

int outbox_relay_status(outbox_relay_t *relay, char *errstr, size_t errstr_size)
{
    int ok;

    if (relay == NULL) {
        snprintf(errstr, errstr_size, "outbox relay not running");
        return -1;
    }
    pthread_mutex_lock(&relay->mu);
    ok = relay->status_ok;
    if (!ok)
        snprintf(errstr, errstr_size, "outbox relay: %s", relay->status_err);
    pthread_mutex_unlock(&relay->mu);
    return ok ? 0 : -1;
}

