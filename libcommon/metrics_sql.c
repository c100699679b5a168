/* metrics_sql: gauges read from PostgreSQL at scrape time, with a short cache. Contract in
 * metrics_sql.h. */
#include "metrics_sql.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "log.h"
#include "util.h"

#define LABELS_MAX 512
#define LABEL_COLUMNS_MAX 8

/* The series one gauge set in its latest round, to zero those a later round omits. */
struct gauge_state {
    metric_t **set;
    size_t nset;
};

struct metrics_sql {
    pthread_mutex_t mu;          /* one round at a time; guards everything below */
    metrics_t *m;
    db_pool_t *pool;
    char *service;
    const metrics_sql_gauge_t *gauges;
    size_t n;
    struct gauge_state *state;   /* n entries */
    long long ttl_ms;
    int64_t next_ms;             /* monotonic: no round before this */
    int failing;                 /* the last round failed (logged once) */
    metric_t *errors;
};

int metrics_sql_labels(const char *keys, const char *const *values, size_t nvalues,
                       char *out, size_t out_size)
{
    const char *k = keys != NULL ? keys : "";
    size_t i = 0, len = 0;

    if (out_size == 0)
        return -1;
    out[0] = '\0';
    while (*k != '\0') {
        const char *end = strchr(k, ',');
        size_t klen = end != NULL ? (size_t)(end - k) : strlen(k);
        const char *v;

        if (i >= nvalues)
            return -1;
        v = values[i] != NULL ? values[i] : "";
        if (len + klen + 2 + strlen(v) + 1 > out_size)
            return -1;
        if (i > 0)
            out[len++] = ',';
        memcpy(out + len, k, klen);
        len += klen;
        out[len++] = '=';
        for (; *v != '\0'; v++)
            out[len++] = (*v == ',' || *v == '=') ? '_' : *v;
        out[len] = '\0';
        i++;
        k = end != NULL ? end + 1 : k + klen;
    }
    return i == nvalues ? 0 : -1;
}

/* Runs one gauge's query on conn and sets its series. Returns 0, or -1 with errstr
 * (nothing changed). */
static int gauge_round(metrics_sql_t *c, PGconn *conn, size_t gi, char *errstr,
                       size_t errstr_size)
{
    const metrics_sql_gauge_t *g = &c->gauges[gi];
    struct gauge_state *st = &c->state[gi];
    const char *params[1] = { c->service };
    const char *values[LABEL_COLUMNS_MAX];
    char labels[LABELS_MAX];
    metric_t **set = NULL;
    PGresult *res;
    size_t nset = 0, i, j;
    int rows, cols, r, ret = -1;

    res = db_query(conn, g->sql, g->with_service ? 1 : 0, g->with_service ? params : NULL,
                   NULL, errstr, errstr_size);
    if (res == NULL)
        goto done;
    rows = PQntuples(res);
    cols = PQnfields(res);
    if (rows > METRICS_SQL_ROWS_MAX)
        rows = METRICS_SQL_ROWS_MAX;
    if (cols < 1 || cols - 1 > LABEL_COLUMNS_MAX) {
        snprintf(errstr, errstr_size, "%s: %d columns", g->name, cols);
        goto done;
    }
    set = calloc((size_t)rows + 1, sizeof(*set));
    if (set == NULL) {
        snprintf(errstr, errstr_size, "out of memory");
        goto done;
    }
    for (r = 0; r < rows; r++) {
        metric_t *s;
        double v = 0;
        char *end = NULL;

        for (i = 0; i < (size_t)cols - 1; i++)
            values[i] = PQgetisnull(res, r, (int)i) ? "" : PQgetvalue(res, r, (int)i);
        if (metrics_sql_labels(g->labels, values, (size_t)cols - 1, labels,
                               sizeof(labels)) != 0) {
            snprintf(errstr, errstr_size, "%s: the columns do not match labels '%s'",
                     g->name, g->labels != NULL ? g->labels : "");
            goto done;
        }
        if (!PQgetisnull(res, r, cols - 1)) {
            v = strtod(PQgetvalue(res, r, cols - 1), &end);
            if (end == PQgetvalue(res, r, cols - 1) || *end != '\0') {
                snprintf(errstr, errstr_size, "%s: value '%.40s' is not a number", g->name,
                         PQgetvalue(res, r, cols - 1));
                goto done;
            }
        }
        s = metrics_gauge(c->m, g->name, g->help, labels[0] != '\0' ? labels : NULL);
        if (s == NULL)
            continue; /* a label the registry refuses: that series is left out */
        metric_set(s, v);
        set[nset++] = s;
    }
    for (i = 0; i < st->nset; i++) {
        for (j = 0; j < nset && set[j] != st->set[i]; j++)
            ;
        if (j == nset)
            metric_set(st->set[i], 0);
    }
    free(st->set);
    st->set = set;
    st->nset = nset;
    set = NULL;
    ret = 0;
done:
    free(set);
    PQclear(res);
    return ret;
}

/* Opens the round's read-only transaction with its statement timeout. Returns 0 or -1. */
static int tx_open(PGconn *conn, char *errstr, size_t errstr_size)
{
    PGresult *res;

    if (db_begin(conn, errstr, errstr_size) != 0)
        return -1;
    res = db_query(conn, "SET TRANSACTION READ ONLY", 0, NULL, NULL, errstr, errstr_size);
    if (res == NULL)
        return -1;
    PQclear(res);
    res = db_query(conn, "SET LOCAL statement_timeout = '" METRICS_SQL_STATEMENT_TIMEOUT "'",
                   0, NULL, NULL, errstr, errstr_size);
    if (res == NULL)
        return -1;
    PQclear(res);
    return 0;
}

/* One round: every gauge, in one read-only transaction. Returns 0, or -1 with errstr (the
 * first failure; the other gauges are still read). */
static int round_run(metrics_sql_t *c, char *errstr, size_t errstr_size)
{
    PGconn *conn;
    char err[512];
    size_t i;
    int ret = -1;

    conn = db_acquire(c->pool, METRICS_SQL_WAIT_MS, errstr, errstr_size);
    if (conn == NULL)
        return -1;
    if (tx_open(conn, errstr, errstr_size) != 0)
        goto done;
    ret = 0;
    for (i = 0; i < c->n; i++) {
        if (gauge_round(c, conn, i, err, sizeof(err)) == 0)
            continue;
        /* One bad query (a table a migration has not created yet) must not hide the
         * others, but it aborted the transaction: open another. */
        if (ret == 0)
            snprintf(errstr, errstr_size, "%s", err);
        ret = -1;
        db_rollback(conn);
        if (tx_open(conn, err, sizeof(err)) != 0)
            goto done;
    }
done:
    db_rollback(conn);
    db_release(c->pool, conn);
    return ret;
}

static void collect(metrics_t *m, void *ctx)
{
    metrics_sql_t *c = ctx;
    char err[512];

    (void)m;
    pthread_mutex_lock(&c->mu);
    if (util_mono_ms() >= c->next_ms) {
        if (round_run(c, err, sizeof(err)) != 0) {
            metric_inc(c->errors);
            if (!c->failing)
                log_warn("metrics_sql_failed error=%s", LOG_Q(err));
            c->failing = 1;
        } else if (c->failing) {
            log_info("metrics_sql_recovered");
            c->failing = 0;
        }
        /* A failed round is not tried again at once either: a scraper must not turn a
         * database outage into a query storm. */
        c->next_ms = util_mono_ms() + c->ttl_ms;
    }
    pthread_mutex_unlock(&c->mu);
}

metrics_sql_t *metrics_sql_start(metrics_t *m, db_pool_t *pool, const char *service,
                                 const metrics_sql_gauge_t *gauges, size_t n, long long ttl_ms,
                                 char *errstr, size_t errstr_size)
{
    metrics_sql_t *c = calloc(1, sizeof(*c));

    if (c == NULL || pthread_mutex_init(&c->mu, NULL) != 0) {
        free(c);
        snprintf(errstr, errstr_size, "out of memory");
        return NULL;
    }
    c->m = m;
    c->pool = pool;
    c->gauges = gauges;
    c->n = n;
    c->ttl_ms = ttl_ms > 0 ? ttl_ms : METRICS_SQL_TTL_MS;
    c->service = strdup(service != NULL ? service : "");
    c->state = calloc(n + 1, sizeof(*c->state));
    c->errors = metrics_counter(m, "dozen_metrics_sql_errors_total",
                                "Scrape-time database queries for gauges that failed (the "
                                "gauges keep their previous values).", NULL);
    if (c->service == NULL || c->state == NULL) {
        snprintf(errstr, errstr_size, "out of memory");
        goto fail;
    }
    if (metrics_add_collector(m, collect, c) != 0) {
        snprintf(errstr, errstr_size, "metrics: too many collectors");
        goto fail;
    }
    return c;
fail:
    pthread_mutex_destroy(&c->mu);
    free(c->state);
    free(c->service);
    free(c);
    return NULL;
}

void metrics_sql_stop(metrics_sql_t *c)
{
    size_t i;

    if (c == NULL)
        return;
    metrics_remove_collector(c->m, collect, c);
    for (i = 0; i < c->n; i++)
        free(c->state[i].set);
    free(c->state);
    free(c->service);
    pthread_mutex_destroy(&c->mu);
    free(c);
}
