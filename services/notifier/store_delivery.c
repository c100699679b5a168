/* store_delivery: the sender threads' SQL: claiming due deliveries with a lease, and
 * writing each one's outcome (sent, retry, failed, given back, lease renewed). The
 * statements are prepared from store_stmts (store.c). */
#include "notifier.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "log.h"
#include "util.h"

int store_claim(PGconn *conn, int max, long long lease_ms, struct delivery *out,
                char *errstr, size_t errstr_size)
{
    char n[16], lease[24];
    const char *p[2] = { n, lease };
    PGresult *res;
    int i, rows;

    snprintf(n, sizeof(n), "%d", max);
    snprintf(lease, sizeof(lease), "%lld", lease_ms);
    if ((res = db_exec(conn, "d_claim", 2, p, NULL, errstr, errstr_size)) == NULL)
        return -1;
    rows = PQntuples(res);
    if (rows > max)
        rows = max;
    for (i = 0; i < rows; i++) {
        struct delivery *d = &out[i];

        memset(d, 0, sizeof(*d));
        d->id = store_column_ll(res, i, 0);
        snprintf(d->phone, sizeof(d->phone), "%s", PQgetvalue(res, i, 1));
        snprintf(d->body, sizeof(d->body), "%s", PQgetvalue(res, i, 2));
        d->since_ms = store_column_ll(res, i, 3);
        d->attempts = (int)store_column_ll(res, i, 4);
        d->uncertain = PQgetvalue(res, i, 5)[0] == 't';
        snprintf(d->token, sizeof(d->token), "%s", PQgetvalue(res, i, 6));
        snprintf(d->traceparent, sizeof(d->traceparent), "%s", PQgetvalue(res, i, 7));
    }
    PQclear(res);
    return rows;
}

int store_sent(PGconn *conn, long long id, const char *sid, char *errstr, size_t errstr_size)
{
    char ids[24];
    const char *p[2] = { ids, sid != NULL ? sid : "" };

    snprintf(ids, sizeof(ids), "%lld", id);
    return store_run(conn, "d_sent", 2, p, NULL, errstr, errstr_size);
}

int store_retry(PGconn *conn, long long id, long long delay_ms, int uncertain,
                const char *error, char *errstr, size_t errstr_size)
{
    char ids[24], delay[24];
    const char *p[4] = { ids, delay, uncertain ? "true" : "false", error };

    snprintf(ids, sizeof(ids), "%lld", id);
    snprintf(delay, sizeof(delay), "%lld", delay_ms);
    return store_run(conn, "d_retry", 4, p, NULL, errstr, errstr_size);
}

int store_failed(PGconn *conn, long long id, const char *error,
                 char *errstr, size_t errstr_size)
{
    char ids[24];
    const char *p[2] = { ids, error };

    snprintf(ids, sizeof(ids), "%lld", id);
    return store_run(conn, "d_failed", 2, p, NULL, errstr, errstr_size);
}

/* Writes ids as a PostgreSQL array literal ("{1,2,3}") into sb. Returns 0, or -1 with
 * errstr when out of memory. */
static int id_array(const long long *ids, size_t n, strbuf_t *sb, char *errstr,
                    size_t errstr_size)
{
    for (size_t i = 0; i < n; i++)
        db_array_add_int64(sb, ids[i]);
    if (db_array_finish(sb) != 0) {
        util_errf(errstr, errstr_size, "out of memory");
        return -1;
    }
    return 0;
}

int store_unclaim(PGconn *conn, const long long *ids, size_t n,
                  char *errstr, size_t errstr_size)
{
    strbuf_t buf = STRBUF_INIT;
    const char *p[1];
    int ret = -1;

    if (n == 0)
        return 0;
    if (id_array(ids, n, &buf, errstr, errstr_size) != 0)
        goto done;
    p[0] = buf.buf;
    ret = store_run(conn, "d_unclaim", 1, p, NULL, errstr, errstr_size);
done:
    strbuf_release(&buf);
    return ret;
}

int store_renew(PGconn *conn, const long long *ids, size_t n, long long lease_ms,
                char *errstr, size_t errstr_size)
{
    strbuf_t buf = STRBUF_INIT;
    char lease[24];
    const char *p[2] = { NULL, lease };
    int ret = -1;

    if (n == 0)
        return 0;
    if (id_array(ids, n, &buf, errstr, errstr_size) != 0)
        goto done;
    p[0] = buf.buf;
    snprintf(lease, sizeof(lease), "%lld", lease_ms);
    ret = store_run(conn, "d_renew", 2, p, NULL, errstr, errstr_size);
done:
    strbuf_release(&buf);
    return ret;
}

int store_lock(PGconn *conn, long long id, char *sid, size_t sid_size,
               char *errstr, size_t errstr_size)
{
    char ids[24];
    const char *p[1] = { ids };
    PGresult *res;
    int ret;

    snprintf(ids, sizeof(ids), "%lld", id);
    if ((res = db_exec(conn, "d_lock_sub", 1, p, NULL, errstr, errstr_size)) == NULL)
        return -1;
    ret = PQntuples(res) == 1;
    PQclear(res);
    if (!ret)
        return 0;
    if ((res = db_exec(conn, "d_lock", 1, p, NULL, errstr, errstr_size)) == NULL)
        return -1;
    ret = PQntuples(res) == 1;
    if (ret)
        snprintf(sid, sid_size, "%s", PQgetvalue(res, 0, 0));
    PQclear(res);
    return ret;
}

int store_throttled(PGconn *conn, long long id, long long delay_ms, const char *error,
                    char *errstr, size_t errstr_size)
{
    char ids[24], delay[24];
    const char *p[3] = { ids, delay, error };

    snprintf(ids, sizeof(ids), "%lld", id);
    snprintf(delay, sizeof(delay), "%lld", delay_ms);
    return store_run(conn, "d_throttled", 3, p, NULL, errstr, errstr_size);
}

long long store_slot(PGconn *conn, const char *sender, double interval_ms, int count,
                     char *errstr, size_t errstr_size)
{
    char iv[32], n[16];
    const char *p[3] = { sender, iv, n };
    PGresult *res;
    long long wait;

    snprintf(iv, sizeof(iv), "%.3f", interval_ms);
    snprintf(n, sizeof(n), "%d", count);
    if ((res = db_exec(conn, "d_slot", 3, p, NULL, errstr, errstr_size)) == NULL)
        return -1;
    wait = PQntuples(res) == 1 ? store_column_ll(res, 0, 0) : 0;
    PQclear(res);
    return wait < 0 ? 0 : wait;
}

int store_pause(PGconn *conn, const char *sender, long long ms, char *errstr,
                size_t errstr_size)
{
    char v[24];
    const char *p[2] = { sender, v };

    snprintf(v, sizeof(v), "%lld", ms);
    return store_run(conn, "d_pause", 2, p, NULL, errstr, errstr_size);
}

long long store_paused(PGconn *conn, const char *sender, char *errstr, size_t errstr_size)
{
    const char *p[1] = { sender };
    PGresult *res;
    long long left;

    if ((res = db_exec(conn, "d_paused", 1, p, NULL, errstr, errstr_size)) == NULL)
        return -1;
    left = PQntuples(res) == 1 ? store_column_ll(res, 0, 0) : 0;
    PQclear(res);
    return left < 0 ? 0 : left;
}

int store_other_sids(PGconn *conn, long long id, char (*sids)[SMS_SID_MAX], size_t n,
                     int *other, char *errstr, size_t errstr_size)
{
    strbuf_t buf = STRBUF_INIT;
    char ids[24];
    const char *p[2] = { NULL, ids };
    PGresult *res = NULL;
    size_t i;
    int ret = -1, r;

    for (i = 0; i < n; i++) {
        other[i] = 0;
        db_array_add_text(&buf, sids[i]);
    }
    if (db_array_finish(&buf) != 0) {
        util_errf(errstr, errstr_size, "out of memory");
        goto done;
    }
    p[0] = buf.buf;
    snprintf(ids, sizeof(ids), "%lld", id);
    if ((res = db_exec(conn, "d_other_sids", 2, p, NULL, errstr, errstr_size)) == NULL)
        goto done;
    for (r = 0; r < PQntuples(res); r++) {
        for (i = 0; i < n; i++) {
            if (strcmp(sids[i], PQgetvalue(res, r, 0)) == 0)
                other[i] = 1;
        }
    }
    ret = 0;
done:
    PQclear(res);
    strbuf_release(&buf);
    return ret;
}

store_result_t store_status(PGconn *conn, const char *id, const char *token,
                            const char *status, const char *sid, char *state,
                            size_t state_size, char *errstr, size_t errstr_size)
{
    const char *p[4] = { id, token, status, sid };
    PGresult *res;
    store_result_t r;

    if ((res = db_exec(conn, "d_status", 4, p, NULL, errstr, errstr_size)) == NULL)
        return STORE_FAILED;
    r = PQntuples(res) == 1 ? STORE_OK : STORE_NOT_FOUND;
    if (r == STORE_OK)
        snprintf(state, state_size, "%s", PQgetvalue(res, 0, 0));
    PQclear(res);
    return r;
}

int store_eta(PGconn *conn, const char *key, const char *sender, double interval_ms,
              char *out, size_t out_size, char *errstr, size_t errstr_size)
{
    char iv[32];
    const char *p[3] = { key, sender, iv };
    PGresult *res;

    out[0] = '\0';
    snprintf(iv, sizeof(iv), "%.3f", interval_ms);
    if ((res = db_exec(conn, "d_eta", 3, p, NULL, errstr, errstr_size)) == NULL)
        return -1;
    if (PQntuples(res) == 1 && !PQgetisnull(res, 0, 0))
        snprintf(out, out_size, "%s", PQgetvalue(res, 0, 0));
    PQclear(res);
    return 0;
}
