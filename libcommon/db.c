/* db: PostgreSQL connections, a small pool, prepared statements, transactions, reconnects,
 * array parameters. */
#include "db.h"

#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "log.h"

/* What a connection gets when the conninfo does not say otherwise (db.h explains the
 * choice): connect_timeout in seconds, TCP keepalives (idle and interval in seconds, a
 * count of probes) and tcp_user_timeout in milliseconds. */
#define DB_CONNECT_TIMEOUT "5"
#define DB_KEEPALIVES_IDLE "5"
#define DB_KEEPALIVES_INTERVAL "2"
#define DB_KEEPALIVES_COUNT "3"
#define DB_TCP_USER_TIMEOUT "10000"

/* The statement_timeout of new connections, ms (0: the server's). Written once at start-up
 * by db_set_statement_timeout, before any thread connects; read by db_connect. */
static long long statement_timeout_ms;

/* One connection of the pool. conn is NULL until first use and after a broken connection
 * was closed; ready says the connection was seen healthy with every statement prepared. */
struct db_slot {
    PGconn *conn;
    int in_use;
    int ready;
};

struct db_pool {
    pthread_mutex_t mu;
    pthread_cond_t cv; /* signalled whenever a slot is given back */
    char *conninfo;
    const db_stmt_t *stmts; /* borrowed */
    size_t nstmts;
    int size;
    struct db_slot *slots;
};

/* Writes prefix and msg into errstr as one line: without the trailing newline libpq puts
 * on its messages, and with its indented continuation lines joined by spaces. */
static void set_err_trimmed(char *errstr, size_t errstr_size, const char *prefix,
                            const char *msg)
{
    char *p, *q;
    size_t len;

    if (errstr == NULL || errstr_size == 0)
        return;
    if (msg == NULL || msg[0] == '\0')
        msg = "unknown error";
    snprintf(errstr, errstr_size, "%s%s", prefix, msg);
    len = strlen(errstr);
    while (len > 0 && (errstr[len - 1] == '\n' || errstr[len - 1] == '\r' ||
                       errstr[len - 1] == ' '))
        errstr[--len] = '\0';
    for (p = errstr, q = errstr; *p != '\0'; p++) {
        if (*p == '\n' || *p == '\r' || *p == '\t') {
            if (q > errstr && q[-1] != ' ')
                *q++ = ' ';
        } else {
            *q++ = *p;
        }
    }
    *q = '\0';
}

/* Routes server notices (WARNING, NOTICE) to the log instead of libpq's default of printing
 * them on stderr. */
static void notice_processor(void *arg, const char *message)
{
    char buf[512];
    char *p;

    (void)arg;
    set_err_trimmed(buf, sizeof(buf), "", message);
    for (p = buf; *p != '\0'; p++)
        if (*p == '"')
            *p = '\''; /* keeps the quoted log value whole */
    log_debug("db_notice message=\"%s\"", buf);
}

/* Checks that conninfo parses (a key=value string or a URI). Returns 0, or -1 with errstr.
 * When options is not NULL, the conninfo's own `options` value is appended to it (nothing
 * when it has none); -1 with errstr when that runs out of memory. */
static int conninfo_check(const char *conninfo, strbuf_t *options, char *errstr,
                          size_t errstr_size)
{
    PQconninfoOption *opts, *o;
    char *perr = NULL;

    if (conninfo == NULL) {
        snprintf(errstr, errstr_size, "no connection string");
        return -1;
    }
    opts = PQconninfoParse(conninfo, &perr);
    if (opts == NULL) {
        /* The parser's message never contains the password, only the offending syntax. */
        set_err_trimmed(errstr, errstr_size, "bad connection string: ",
                        perr != NULL ? perr : "out of memory");
        PQfreemem(perr);
        return -1;
    }
    for (o = opts; options != NULL && o->keyword != NULL; o++) {
        if (strcmp(o->keyword, "options") == 0 && o->val != NULL)
            strbuf_adds(options, o->val);
    }
    PQconninfoFree(opts);
    if (options != NULL && options->failed) {
        snprintf(errstr, errstr_size, "out of memory");
        return -1;
    }
    return 0;
}

void db_set_statement_timeout(long long ms)
{
    statement_timeout_ms = ms > 0 ? ms : 0;
}

int db_options_merge(const char *user_options, long long stmt_timeout_ms, strbuf_t *out)
{
    if (stmt_timeout_ms > 0)
        strbuf_addf(out, "-c statement_timeout=%lld", stmt_timeout_ms);
    if (user_options != NULL && user_options[0] != '\0') {
        if (out->len > 0)
            strbuf_addch(out, ' ');
        strbuf_adds(out, user_options);
    }
    return out->failed ? -1 : 0;
}

/* The calling thread's last failure (db_error_last). */
static _Thread_local db_error_t last_error;
static _Thread_local int last_error_set;

void db_error_reset(void)
{
    last_error_set = 0;
}

int db_error_last(db_error_t *out)
{
    if (!last_error_set) {
        memset(out, 0, sizeof(*out));
        return 0;
    }
    *out = last_error;
    return 1;
}

db_error_class_t db_error_classify(const char *sqlstate, const char *constraint)
{
    if (sqlstate == NULL || strlen(sqlstate) != 5)
        return DB_ERROR_TRANSIENT;
    if (strncmp(sqlstate, "22", 2) == 0 || strncmp(sqlstate, "54", 2) == 0)
        return DB_ERROR_DATA;
    if (strncmp(sqlstate, "23", 2) == 0)
        return constraint != NULL && strcmp(constraint, DB_DEDUPE_CONSTRAINT) == 0
                   ? DB_ERROR_TRANSIENT : DB_ERROR_DATA;
    return DB_ERROR_TRANSIENT;
}

/* Writes "<SQLSTATE> <primary message>" of a failed command into out, or libpq's own
 * message when there is no SQLSTATE (the connection failed). res may be NULL. */
static void format_error(PGconn *conn, const PGresult *res, char *out, size_t out_size)
{
    const char *state = res != NULL ? PQresultErrorField(res, PG_DIAG_SQLSTATE) : NULL;
    const char *msg = res != NULL ? PQresultErrorField(res, PG_DIAG_MESSAGE_PRIMARY) : NULL;

    if (state != NULL && strlen(state) == 5) {
        char prefix[8];

        snprintf(prefix, sizeof(prefix), "%s ", state);
        set_err_trimmed(out, out_size, prefix, msg);
    } else if (res != NULL && PQresultErrorMessage(res)[0] != '\0') {
        set_err_trimmed(out, out_size, "", PQresultErrorMessage(res));
    } else if (res != NULL && PQresultStatus(res) != PGRES_FATAL_ERROR &&
               PQresultStatus(res) != PGRES_NONFATAL_ERROR) {
        snprintf(out, out_size, "unexpected result %s", PQresStatus(PQresultStatus(res)));
    } else {
        set_err_trimmed(out, out_size, "", PQerrorMessage(conn));
    }
}

/* Describes a failed command: errstr as format_error, sqlstate ("" when the connection
 * failed) if not NULL, and the calling thread's last failure for db_error_last. */
static void result_error(PGconn *conn, const PGresult *res, char sqlstate[6],
                         char *errstr, size_t errstr_size)
{
    const char *state = res != NULL ? PQresultErrorField(res, PG_DIAG_SQLSTATE) : NULL;
    const char *cons = res != NULL ? PQresultErrorField(res, PG_DIAG_CONSTRAINT_NAME) : NULL;

    if (state != NULL && strlen(state) != 5)
        state = NULL;
    if (sqlstate != NULL)
        snprintf(sqlstate, 6, "%s", state != NULL ? state : "");
    format_error(conn, res, errstr, errstr_size);
    memset(&last_error, 0, sizeof(last_error));
    snprintf(last_error.sqlstate, sizeof(last_error.sqlstate), "%s", state != NULL ? state : "");
    snprintf(last_error.constraint, sizeof(last_error.constraint), "%s",
             cons != NULL ? cons : "");
    format_error(conn, res, last_error.message, sizeof(last_error.message));
    last_error_set = 1;
}

/* Prepares every statement on conn. Returns 0, or -1 with errstr naming the statement. */
static int prepare_all(PGconn *conn, const db_stmt_t *stmts, size_t nstmts,
                       char *errstr, size_t errstr_size)
{
    size_t i;

    for (i = 0; i < nstmts; i++) {
        PGresult *res = PQprepare(conn, stmts[i].name, stmts[i].sql, stmts[i].nparams, NULL);
        int ok = res != NULL && PQresultStatus(res) == PGRES_COMMAND_OK;

        if (!ok) {
            char err[384];

            result_error(conn, res, NULL, err, sizeof(err));
            snprintf(errstr, errstr_size, "preparing %s: %s", stmts[i].name, err);
        }
        PQclear(res);
        if (!ok)
            return -1;
    }
    return 0;
}

PGconn *db_connect(const char *conninfo, const db_stmt_t *stmts, size_t nstmts,
                   char *errstr, size_t errstr_size)
{
    /* Array entries placed before the expanded dbname are overridden by the connection
     * string's own values, so each default applies only when conninfo has none. The
     * options entry after it overrides conninfo's, which is why it carries them too. */
    const char *keys[] = { "connect_timeout", "keepalives", "keepalives_idle",
                           "keepalives_interval", "keepalives_count", "tcp_user_timeout",
                           "dbname", NULL, NULL };
    const char *vals[] = { DB_CONNECT_TIMEOUT, "1", DB_KEEPALIVES_IDLE,
                           DB_KEEPALIVES_INTERVAL, DB_KEEPALIVES_COUNT, DB_TCP_USER_TIMEOUT,
                           conninfo, NULL, NULL };
    strbuf_t user = STRBUF_INIT, options = STRBUF_INIT;
    PGconn *conn = NULL;
    PGconn *ret = NULL;

    if (conninfo_check(conninfo, &user, errstr, errstr_size) != 0)
        goto done;
    if (statement_timeout_ms > 0) {
        /* libpq reads PGOPTIONS only when no options are given: ours would hide it. */
        const char *env = getenv("PGOPTIONS");

        if (db_options_merge(user.len > 0 ? user.buf : env, statement_timeout_ms,
                             &options) != 0) {
            snprintf(errstr, errstr_size, "out of memory");
            goto done;
        }
        keys[7] = "options";
        vals[7] = options.buf;
    }
    conn = PQconnectdbParams(keys, vals, 1);
    if (conn == NULL) {
        snprintf(errstr, errstr_size, "out of memory");
        goto done;
    }
    if (PQstatus(conn) != CONNECTION_OK) {
        set_err_trimmed(errstr, errstr_size, "", PQerrorMessage(conn));
        goto done;
    }
    PQsetNoticeProcessor(conn, notice_processor, NULL);
    if (prepare_all(conn, stmts, nstmts, errstr, errstr_size) != 0)
        goto done;
    ret = conn;
    conn = NULL; /* ownership passes to the caller */
done:
    PQfinish(conn);
    strbuf_release(&user);
    strbuf_release(&options);
    return ret;
}

db_pool_t *db_pool_new(const char *conninfo, int size, const db_stmt_t *stmts, size_t nstmts,
                       char *errstr, size_t errstr_size)
{
    db_pool_t *pool = NULL;
    pthread_condattr_t ca;
    int have_mu = 0, have_cv = 0, have_ca = 0;
    db_pool_t *ret = NULL;

    if (size <= 0) {
        snprintf(errstr, errstr_size, "pool size must be positive, not %d", size);
        goto done;
    }
    if (nstmts > 0 && stmts == NULL) {
        snprintf(errstr, errstr_size, "statements missing");
        goto done;
    }
    if (conninfo_check(conninfo, NULL, errstr, errstr_size) != 0)
        goto done;
    pool = calloc(1, sizeof(*pool));
    if (pool == NULL)
        goto oom;
    pool->conninfo = strdup(conninfo);
    pool->slots = calloc((size_t)size, sizeof(*pool->slots));
    if (pool->conninfo == NULL || pool->slots == NULL)
        goto oom;
    pool->size = size;
    pool->stmts = stmts;
    pool->nstmts = nstmts;
    if (pthread_mutex_init(&pool->mu, NULL) != 0)
        goto oom;
    have_mu = 1;
    /* Waits are measured on the monotonic clock so that a wall-clock step cannot stretch
     * or cut them. */
    if (pthread_condattr_init(&ca) != 0)
        goto oom;
    have_ca = 1;
    if (pthread_condattr_setclock(&ca, CLOCK_MONOTONIC) != 0 ||
        pthread_cond_init(&pool->cv, &ca) != 0)
        goto oom;
    have_cv = 1;
    ret = pool;
    pool = NULL;
    goto done;
oom:
    snprintf(errstr, errstr_size, "out of memory creating the database pool");
done:
    if (have_ca)
        pthread_condattr_destroy(&ca);
    if (pool != NULL) {
        if (have_cv)
            pthread_cond_destroy(&pool->cv);
        if (have_mu)
            pthread_mutex_destroy(&pool->mu);
        free(pool->slots);
        free(pool->conninfo);
        free(pool);
    }
    return ret;
}

void db_pool_free(db_pool_t *pool)
{
    int i;

    if (pool == NULL)
        return;
    for (i = 0; i < pool->size; i++)
        PQfinish(pool->slots[i].conn);
    pthread_cond_destroy(&pool->cv);
    pthread_mutex_destroy(&pool->mu);
    free(pool->slots);
    free(pool->conninfo);
    free(pool);
}

/* Returns 1 if an idle connection is known to be unusable. PQconsumeInput reads whatever
 * the server sent while the connection sat in the pool without blocking (libpq keeps its
 * socket non-blocking); a server that closed the connection (restart, idle timeout,
 * pg_terminate_backend) leaves it CONNECTION_BAD. Twice, because a read that returns the
 * server's parting FATAL message does not look further and see the end of the stream;
 * PQisBusy in between parses what was read (such a message goes to the notice
 * processor). */
static int conn_is_broken(PGconn *conn)
{
    int i;

    for (i = 0; i < 2; i++) {
        if (PQstatus(conn) != CONNECTION_OK || PQconsumeInput(conn) == 0)
            return 1;
        (void)PQisBusy(conn);
    }
    return PQstatus(conn) != CONNECTION_OK;
}

/* Makes the slot's connection usable: opens it the first time, resets a broken one and
 * prepares the statements again. Called without the pool lock, by the slot's holder;
 * slot->conn itself is only written under the lock, since db_release looks it up there. */
static int slot_open(db_pool_t *pool, struct db_slot *slot, char *errstr, size_t errstr_size)
{
    if (slot->conn == NULL) {
        PGconn *conn = db_connect(pool->conninfo, pool->stmts, pool->nstmts, errstr,
                                  errstr_size);

        if (conn == NULL)
            return -1;
        pthread_mutex_lock(&pool->mu);
        slot->conn = conn;
        slot->ready = 1;
        pthread_mutex_unlock(&pool->mu);
        return 0;
    }
    if (slot->ready && !conn_is_broken(slot->conn))
        return 0;
    slot->ready = 0;
    PQreset(slot->conn);
    if (PQstatus(slot->conn) != CONNECTION_OK) {
        set_err_trimmed(errstr, errstr_size, "", PQerrorMessage(slot->conn));
        return -1;
    }
    if (prepare_all(slot->conn, pool->stmts, pool->nstmts, errstr, errstr_size) != 0)
        return -1;
    slot->ready = 1;
    log_info("db_reconnected");
    return 0;
}

/* A deadline timeout_ms from now on the monotonic clock. */
static void deadline_after(struct timespec *ts, int timeout_ms)
{
    clock_gettime(CLOCK_MONOTONIC, ts);
    ts->tv_sec += timeout_ms / 1000;
    ts->tv_nsec += (long)(timeout_ms % 1000) * 1000000L;
    if (ts->tv_nsec >= 1000000000L) {
        ts->tv_sec++;
        ts->tv_nsec -= 1000000000L;
    }
}

/* Prefers a slot that already has a connection, so that the pool does not open new
 * connections while idle ones exist. Called with the lock held. Returns NULL if all are
 * taken. */
static struct db_slot *slot_take(db_pool_t *pool)
{
    struct db_slot *empty = NULL;
    int i;

    for (i = 0; i < pool->size; i++) {
        struct db_slot *s = &pool->slots[i];

        if (s->in_use)
            continue;
        if (s->conn != NULL) {
            s->in_use = 1;
            return s;
        }
        if (empty == NULL)
            empty = s;
    }
    if (empty != NULL)
        empty->in_use = 1;
    return empty;
}

/* A negative timeout_ms waits without limit. */
PGconn *db_acquire(db_pool_t *pool, int timeout_ms, char *errstr, size_t errstr_size)
{
    struct timespec deadline;
    struct db_slot *slot = NULL;
    int rc = 0;

    if (pool == NULL) {
        snprintf(errstr, errstr_size, "no database pool");
        return NULL;
    }
    if (timeout_ms >= 0)
        deadline_after(&deadline, timeout_ms);
    pthread_mutex_lock(&pool->mu);
    while ((slot = slot_take(pool)) == NULL && rc != ETIMEDOUT) {
        if (timeout_ms >= 0)
            rc = pthread_cond_timedwait(&pool->cv, &pool->mu, &deadline);
        else
            pthread_cond_wait(&pool->cv, &pool->mu);
    }
    pthread_mutex_unlock(&pool->mu);
    if (slot == NULL) {
        snprintf(errstr, errstr_size, "no free database connection within %d ms (pool of %d)",
                 timeout_ms, pool->size);
        return NULL;
    }

    /* The slot is ours now: connecting happens outside the lock so that one slow connect
     * does not hold up the other threads. */
    if (slot_open(pool, slot, errstr, errstr_size) != 0) {
        pthread_mutex_lock(&pool->mu);
        slot->in_use = 0;
        pthread_cond_signal(&pool->cv);
        pthread_mutex_unlock(&pool->mu);
        return NULL;
    }
    return slot->conn;
}

void db_release(db_pool_t *pool, PGconn *conn)
{
    struct db_slot *slot = NULL;
    int i, broken = 0;

    if (pool == NULL || conn == NULL)
        return;
    pthread_mutex_lock(&pool->mu);
    for (i = 0; i < pool->size; i++) {
        if (pool->slots[i].in_use && pool->slots[i].conn == conn) {
            slot = &pool->slots[i];
            break;
        }
    }
    pthread_mutex_unlock(&pool->mu);
    if (slot == NULL) {
        log_error("db_release_unknown_connection");
        return;
    }

    switch (PQtransactionStatus(conn)) {
    case PQTRANS_IDLE:
        break;
    case PQTRANS_INTRANS:
    case PQTRANS_INERROR:
        if (db_rollback(conn) != 0)
            broken = 1;
        break;
    default: /* a command still running, or the connection is gone */
        broken = 1;
        break;
    }
    if (PQstatus(conn) != CONNECTION_OK)
        broken = 1;
    if (broken)
        PQfinish(conn);

    pthread_mutex_lock(&pool->mu);
    if (broken) {
        slot->conn = NULL;
        slot->ready = 0;
    }
    slot->in_use = 0;
    pthread_cond_signal(&pool->cv);
    pthread_mutex_unlock(&pool->mu);
}

/* Turns a finished command into the db_exec/db_query contract: res itself when it
 * succeeded, else NULL with errstr "<SQLSTATE> <message>" and sqlstate filled. Takes
 * ownership of res. */
static PGresult *check_result(PGconn *conn, PGresult *res, char sqlstate[6],
                              char *errstr, size_t errstr_size)
{
    ExecStatusType st = res != NULL ? PQresultStatus(res) : PGRES_FATAL_ERROR;

    if (sqlstate != NULL)
        sqlstate[0] = '\0';
    if (st == PGRES_COMMAND_OK || st == PGRES_TUPLES_OK)
        return res;
    result_error(conn, res, sqlstate, errstr, errstr_size);
    PQclear(res);
    return NULL;
}

static int check_params(PGconn *conn, int nparams, const char *const *params,
                        char sqlstate[6], char *errstr, size_t errstr_size)
{
    if (sqlstate != NULL)
        sqlstate[0] = '\0';
    if (conn == NULL) {
        snprintf(errstr, errstr_size, "no database connection");
        return -1;
    }
    if (nparams < 0 || (nparams > 0 && params == NULL)) {
        snprintf(errstr, errstr_size, "bad parameter list");
        return -1;
    }
    return 0;
}

PGresult *db_exec(PGconn *conn, const char *stmt_name, int nparams,
                  const char *const *params, char sqlstate[6],
                  char *errstr, size_t errstr_size)
{
    if (check_params(conn, nparams, params, sqlstate, errstr, errstr_size) != 0)
        return NULL;
    if (stmt_name == NULL) {
        snprintf(errstr, errstr_size, "no statement name");
        return NULL;
    }
    return check_result(conn, PQexecPrepared(conn, stmt_name, nparams, params, NULL, NULL, 0),
                        sqlstate, errstr, errstr_size);
}

PGresult *db_query(PGconn *conn, const char *sql, int nparams,
                   const char *const *params, char sqlstate[6],
                   char *errstr, size_t errstr_size)
{
    if (check_params(conn, nparams, params, sqlstate, errstr, errstr_size) != 0)
        return NULL;
    if (sql == NULL) {
        snprintf(errstr, errstr_size, "no SQL");
        return NULL;
    }
    return check_result(conn, PQexecParams(conn, sql, nparams, NULL, params, NULL, NULL, 0),
                        sqlstate, errstr, errstr_size);
}

/* Runs a command without parameters (transaction control only). */
static int exec_simple(PGconn *conn, const char *sql, char *errstr, size_t errstr_size)
{
    PGresult *res = db_query(conn, sql, 0, NULL, NULL, errstr, errstr_size);

    if (res == NULL)
        return -1;
    PQclear(res);
    return 0;
}

static db_txn_hook_t txn_hook;

void db_set_txn_hook(db_txn_hook_t fn)
{
    __atomic_store_n(&txn_hook, fn, __ATOMIC_RELEASE);
}

static void txn_ended(int committed)
{
    db_txn_hook_t fn = __atomic_load_n(&txn_hook, __ATOMIC_ACQUIRE);

    if (fn != NULL)
        fn(committed);
}

int db_begin(PGconn *conn, char *errstr, size_t errstr_size)
{
    return exec_simple(conn, "BEGIN", errstr, errstr_size);
}

/* COMMIT of a transaction that already failed "succeeds" with the tag ROLLBACK: that is
 * reported as an error, since nothing was committed. */
int db_commit(PGconn *conn, char *errstr, size_t errstr_size)
{
    PGresult *res;
    int ret = -1;

    res = db_query(conn, "COMMIT", 0, NULL, NULL, errstr, errstr_size);
    if (res == NULL)
        goto done;
    if (strcmp(PQcmdStatus(res), "COMMIT") != 0) {
        snprintf(errstr, errstr_size, "transaction was rolled back (an earlier statement "
                 "failed)");
        goto done;
    }
    ret = 0;
done:
    PQclear(res);
    txn_ended(ret == 0);
    return ret;
}

int db_rollback(PGconn *conn)
{
    char err[256];

    txn_ended(0);
    if (conn == NULL)
        return -1;
    switch (PQtransactionStatus(conn)) {
    case PQTRANS_IDLE:
        return 0; /* nothing to roll back; also avoids the server's WARNING */
    case PQTRANS_INTRANS:
    case PQTRANS_INERROR:
        return exec_simple(conn, "ROLLBACK", err, sizeof(err));
    default:
        return -1;
    }
}

int db_ping(db_pool_t *pool, int timeout_ms, char *errstr, size_t errstr_size)
{
    PGconn *conn;
    PGresult *res = NULL;
    char err[512] = "";

    conn = db_acquire(pool, timeout_ms, err, sizeof(err));
    if (conn != NULL) {
        res = db_query(conn, "SELECT 1", 0, NULL, NULL, err, sizeof(err));
        db_release(pool, conn);
    }
    if (res == NULL) {
        /* for /readyz, whose reason must say what is not ready */
        snprintf(errstr, errstr_size, "PostgreSQL unreachable: %s", err);
        return -1;
    }
    PQclear(res);
    return 0;
}

/* ------------------------------------------------------------------------------------ */
/* Leader leases */

int db_lease_begin(PGconn *conn, long long lease_ms, char *errstr, size_t errstr_size)
{
    char ms[24], sqlstate[6];
    const char *params[1] = { ms };
    PGresult *res;

    if (lease_ms < DB_LEASE_MIN_MS || lease_ms > DB_LEASE_MAX_MS) {
        snprintf(errstr, errstr_size, "lease of %lld ms out of range %d..%d", lease_ms,
                 DB_LEASE_MIN_MS, DB_LEASE_MAX_MS);
        return -1;
    }
    snprintf(ms, sizeof(ms), "%lld", lease_ms);
    /* All three end the session on the server's side: idle between statements, idle
     * inside a transaction, or with sent data unacknowledged (a peer that stopped reading
     * its socket; ignored on a Unix-domain socket). */
    res = db_query(conn, "SELECT set_config('idle_session_timeout', $1, false), "
                   "set_config('idle_in_transaction_session_timeout', $1, false), "
                   "set_config('tcp_user_timeout', $1, false)", 1, params, sqlstate, errstr,
                   errstr_size);
    if (res == NULL && strcmp(sqlstate, "42704") == 0) {
        /* A server before 14 has no idle_session_timeout: keep what it has. */
        char err[256];

        res = db_query(conn, "SELECT set_config('idle_in_transaction_session_timeout', $1, "
                       "false)", 1, params, NULL, err, sizeof(err));
        if (res == NULL) {
            snprintf(errstr, errstr_size, "%s", err);
            return -1;
        }
        PQclear(res);
        return 1;
    }
    if (res == NULL)
        return -1;
    PQclear(res);
    return 0;
}

long long db_lease_heartbeat_ms(long long lease_ms)
{
    return lease_ms / 3 > 0 ? lease_ms / 3 : 1;
}

int db_lease_renew(PGconn *conn, char *errstr, size_t errstr_size)
{
    PGresult *res = db_query(conn, "SELECT 1", 0, NULL, NULL, errstr, errstr_size);

    if (res == NULL)
        return -1;
    PQclear(res);
    return 0;
}

/* ------------------------------------------------------------------------------------ */
/* Array parameters */

/* Opens the array before its first element, or separates this one from the last. */
static int array_sep(strbuf_t *sb)
{
    return strbuf_addch(sb, sb->len == 0 ? '{' : ',');
}

int db_array_add_int64(strbuf_t *sb, int64_t v)
{
    if (array_sep(sb) != 0)
        return -1;
    return strbuf_addf(sb, "%" PRId64, v);
}

int db_array_add_null(strbuf_t *sb)
{
    if (array_sep(sb) != 0)
        return -1;
    return strbuf_adds(sb, "NULL");
}

int db_array_add_text(strbuf_t *sb, const char *s)
{
    const char *p;

    if (s == NULL)
        return db_array_add_null(sb);
    if (array_sep(sb) != 0 || strbuf_addch(sb, '"') != 0)
        return -1;
    /* Inside double quotes only '"' and '\\' are special to the array parser. */
    for (p = s; *p != '\0'; p++) {
        size_t run = strcspn(p, "\"\\");

        if (strbuf_add(sb, p, run) != 0)
            return -1;
        p += run;
        if (*p == '\0')
            break;
        if (strbuf_addch(sb, '\\') != 0 || strbuf_addch(sb, *p) != 0)
            return -1;
    }
    return strbuf_addch(sb, '"');
}

int db_array_finish(strbuf_t *sb)
{
    if (sb->len == 0 && strbuf_addch(sb, '{') != 0)
        return -1;
    if (strbuf_addch(sb, '}') != 0)
        return -1;
    return sb->failed ? -1 : 0;
}
