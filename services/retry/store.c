/* store: the retry service's SQL. Every statement is prepared with $n parameters; bytea
 * values travel as text in PostgreSQL's hex form ("\x0a1b..."). */
#include "retry_service.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "util.h"

/* The scheduler's session advisory lock: one active scheduler per database. */
#define SCHEDULER_LOCK_KEY "7236785430651733249" /* 0x646f7a656e525401, "dozenRT\1" */

#define PENDING_COLUMNS                                                                  \
    "id, group_id, original_topic, original_partition, original_offset, msg_key, "       \
    "msg_value, headers, COALESCE(ce_id::text, ''), attempt, max_attempts, not_before, " \
    "COALESCE(deadline, 0), reason, error, first_failed_at, due_at"

const db_stmt_t store_stmts[] = {
    { "rp_insert",
      "INSERT INTO retry_pending (group_id, original_topic, original_partition, "
      "original_offset, retry_partition, retry_offset, retry_timestamp, msg_key, msg_value, "
      "headers, ce_id, attempt, max_attempts, not_before, deadline, reason, error, "
      "first_failed_at, due_at) VALUES ($1, $2, $3::int, $4::bigint, $5::int, $6::bigint, "
      "$7::bigint, $8::bytea, $9::bytea, $10::bytea, $11::uuid, $12::int, $13::int, "
      "$14::bigint, $15::bigint, $16, $17, $18::bigint, $19::bigint) "
      "ON CONFLICT (retry_partition, retry_offset, retry_timestamp) DO NOTHING "
      "RETURNING due_at", 19 },
    /* An invalid record's provenance is its own place on `retry`, as in its dead letter. */
    { "dl_invalid",
      "INSERT INTO retry_dead_letters (group_id, reason, error, original_topic, "
      "original_partition, original_offset, retry_partition, retry_offset, retry_timestamp, "
      "ce_id) VALUES ($1, '" RETRY_REASON_INVALID_RECORD "', $2, '" RETRY_TOPIC "', $3::int, "
      "$4::bigint, $3::int, $4::bigint, $5::bigint, $6::uuid) "
      "ON CONFLICT (retry_partition, retry_offset, retry_timestamp) DO NOTHING", 6 },
    { "rp_due",
      "SELECT " PENDING_COLUMNS " FROM retry_pending WHERE due_at <= $1::bigint "
      "ORDER BY due_at, id LIMIT $2::int", 2 },
    { "rp_next_due", "SELECT min(due_at) FROM retry_pending", 0 },
    /* One statement, so atomic: delivered rows go, the given-up ones among them are
     * recorded as dead letters, and rows whose delivery failed get a later due_at. */
    { "rp_finish",
      "WITH gone AS (DELETE FROM retry_pending WHERE id = ANY($1::bigint[]) "
      "  RETURNING id, group_id, reason, error, original_topic, original_partition, "
      "  original_offset, retry_partition, retry_offset, retry_timestamp, ce_id), "
      "dead AS (INSERT INTO retry_dead_letters (group_id, reason, last_reason, error, "
      "  original_topic, original_partition, original_offset, retry_partition, "
      "  retry_offset, retry_timestamp, ce_id) "
      "  SELECT g.group_id, d.reason, g.reason, g.error, g.original_topic, "
      "  g.original_partition, g.original_offset, g.retry_partition, g.retry_offset, "
      "  g.retry_timestamp, g.ce_id "
      "  FROM gone g JOIN unnest($2::bigint[], $3::text[]) AS d (id, reason) ON d.id = g.id "
      "  ON CONFLICT (retry_partition, retry_offset, retry_timestamp) DO NOTHING) "
      "UPDATE retry_pending p SET due_at = f.due_at "
      "FROM unnest($4::bigint[], $5::bigint[]) AS f (id, due_at) WHERE p.id = f.id", 5 },
    { "sched_lock", "SELECT pg_try_advisory_lock(" SCHEDULER_LOCK_KEY ")", 0 },
    /* One statement: one snapshot for the whole answer. */
    { "stats",
      "SELECT 'p', group_id, reason, count(*), NULL::bigint FROM retry_pending "
      "  GROUP BY group_id, reason "
      "UNION ALL SELECT 'n', NULL, NULL, NULL, min(due_at) FROM retry_pending "
      "UNION ALL SELECT 'd', NULL, reason, count(*), NULL FROM retry_dead_letters "
      "  GROUP BY reason", 0 },
};
const size_t store_nstmts = sizeof(store_stmts) / sizeof(store_stmts[0]);

/* Returns bytes in PostgreSQL's hex text form for a bytea parameter, as a new string the
 * caller frees; NULL when out of memory. */
static char *hex_bytea(const void *bytes, size_t len)
{
    static const char digits[] = "0123456789abcdef";
    const unsigned char *p = bytes;
    char *out;

    if (len > (SIZE_MAX - 3) / 2)
        return NULL;
    out = malloc(2 * len + 3);
    if (out == NULL)
        return NULL;
    out[0] = '\\';
    out[1] = 'x';
    for (size_t i = 0; i < len; i++) {
        out[2 + 2 * i] = digits[p[i] >> 4];
        out[3 + 2 * i] = digits[p[i] & 0x0f];
    }
    out[2 * len + 2] = '\0';
    return out;
}

/* Inserts one valid row. Returns 1 when it is new (*due_at set), 0 when it was there, -1. */
static int insert_pending(PGconn *conn, const store_row_t *row, int64_t *due_at,
                          char sqlstate[6], char *errstr, size_t errstr_size)
{
    const retry_record_t *r = &row->rec;
    char opart[16], ooff[24], rpart[16], roff[24], rts[24], attempt[16], max[16], nb[24],
        dl[24], ffa[24], due[24];
    char *key = NULL, *value = NULL, *headers = NULL;
    PGresult *res = NULL;
    int ret = -1;

    if ((row->key != NULL && (key = hex_bytea(row->key, row->key_len)) == NULL) ||
        (row->value != NULL && (value = hex_bytea(row->value, row->value_len)) == NULL) ||
        (headers = hex_bytea(row->headers, row->headers_len)) == NULL) {
        util_errf(errstr, errstr_size, "out of memory");
        if (sqlstate != NULL)
            memcpy(sqlstate, "53200", 6); /* out_of_memory: may pass */
        goto done;
    }
    snprintf(opart, sizeof(opart), "%d", (int)r->info.original_partition);
    snprintf(ooff, sizeof(ooff), "%lld", (long long)r->info.original_offset);
    snprintf(rpart, sizeof(rpart), "%d", (int)row->retry_partition);
    snprintf(roff, sizeof(roff), "%lld", (long long)row->retry_offset);
    snprintf(rts, sizeof(rts), "%lld", (long long)row->retry_timestamp);
    snprintf(attempt, sizeof(attempt), "%d", (int)r->info.attempt);
    snprintf(max, sizeof(max), "%d", (int)r->info.max_attempts);
    snprintf(nb, sizeof(nb), "%lld", (long long)r->info.not_before_ms);
    snprintf(dl, sizeof(dl), "%lld", (long long)r->info.deadline_ms);
    snprintf(ffa, sizeof(ffa), "%lld", (long long)r->info.first_failed_at_ms);
    snprintf(due, sizeof(due), "%lld",
             (long long)record_due_at(r->info.not_before_ms, r->info.deadline_ms));
    {
        const char *p[19] = { r->info.group, r->info.original_topic, opart, ooff, rpart, roff, rts,
                              key, value, headers, r->ce_id[0] != '\0' ? r->ce_id : NULL,
                              attempt, max, nb,
                              r->info.deadline_ms != RETRY_NO_DEADLINE ? dl : NULL,
                              r->info.reason,
                              r->info.error, ffa, due };
        res = db_exec(conn, "rp_insert", 19, p, sqlstate, errstr, errstr_size);
    }
    if (res == NULL)
        goto done;
    ret = 0;
    if (PQntuples(res) == 1) {
        *due_at = strtoll(PQgetvalue(res, 0, 0), NULL, 10);
        ret = 1;
    }
done:
    PQclear(res);
    free(key);
    free(value);
    free(headers);
    return ret;
}

/* Counts one invalid record among the dead letters (once per place on `retry`). */
static int insert_invalid(PGconn *conn, const store_row_t *row, const char *group,
                          char sqlstate[6], char *errstr, size_t errstr_size)
{
    char part[16], off[24], ts[24];
    const char *p[6] = { group, row->invalid_error, part, off, ts,
                         row->rec.ce_id[0] != '\0' ? row->rec.ce_id : NULL };
    PGresult *res;

    snprintf(part, sizeof(part), "%d", (int)row->retry_partition);
    snprintf(off, sizeof(off), "%lld", (long long)row->retry_offset);
    snprintf(ts, sizeof(ts), "%lld", (long long)row->retry_timestamp);
    res = db_exec(conn, "dl_invalid", 6, p, sqlstate, errstr, errstr_size);
    if (res == NULL)
        return -1;
    PQclear(res);
    return 0;
}

int store_batch(PGconn *conn, const store_row_t *rows, size_t n, const char *invalid_group,
                size_t *inserted, int64_t *earliest_due, char sqlstate[6],
                char *errstr, size_t errstr_size)
{
    int ret = -1;
    size_t count = 0, i;
    int64_t earliest = INT64_MAX;

    *inserted = 0;
    *earliest_due = INT64_MAX;
    if (sqlstate != NULL)
        sqlstate[0] = '\0';
    if (db_begin(conn, errstr, errstr_size) != 0)
        goto done;
    for (i = 0; i < n; i++) {
        int64_t due = 0;
        int got;

        if (rows[i].refused)
            continue;
        if (rows[i].invalid) {
            if (insert_invalid(conn, &rows[i], invalid_group, sqlstate, errstr,
                               errstr_size) != 0)
                goto done;
            continue;
        }
        got = insert_pending(conn, &rows[i], &due, sqlstate, errstr, errstr_size);
        if (got < 0)
            goto done;
        if (got == 1) {
            count++;
            if (due < earliest)
                earliest = due;
        }
    }
    if (db_commit(conn, errstr, errstr_size) != 0)
        goto done;
    *inserted = count;
    *earliest_due = earliest;
    ret = 0;
done:
    if (ret != 0)
        db_rollback(conn);
    return ret;
}

/* Reads a bytea column into a new buffer (PQfreemem); NULL column: *out = NULL. Returns 0,
 * or -1 when out of memory. */
static int get_bytea(const PGresult *res, int row, int col, unsigned char **out, size_t *len)
{
    *out = NULL;
    *len = 0;
    if (PQgetisnull(res, row, col))
        return 0;
    *out = PQunescapeBytea((const unsigned char *)PQgetvalue(res, row, col), len);
    return *out != NULL ? 0 : -1;
}

void store_rows_free(pending_row_t *rows, int n)
{
    if (rows == NULL)
        return;
    for (int i = 0; i < n; i++) {
        PQfreemem(rows[i].key);
        PQfreemem(rows[i].value);
        PQfreemem(rows[i].headers);
    }
    free(rows);
}

int store_due(PGconn *conn, int64_t now_ms, int limit, pending_row_t **rows,
              char *errstr, size_t errstr_size)
{
    char now[24], lim[16];
    const char *p[2] = { now, lim };
    PGresult *res;
    pending_row_t *out = NULL;
    int n, i, ret = -1;

    *rows = NULL;
    snprintf(now, sizeof(now), "%lld", (long long)now_ms);
    snprintf(lim, sizeof(lim), "%d", limit);
    res = db_exec(conn, "rp_due", 2, p, NULL, errstr, errstr_size);
    if (res == NULL)
        return -1;
    n = PQntuples(res);
    out = calloc(n > 0 ? (size_t)n : 1, sizeof(*out));
    if (out == NULL) {
        util_errf(errstr, errstr_size, "out of memory");
        goto done;
    }
    for (i = 0; i < n; i++) {
        pending_row_t *row = &out[i];
        retry_record_t *r = &row->rec;

        row->id = strtoll(PQgetvalue(res, i, 0), NULL, 10);
        snprintf(r->info.group, sizeof(r->info.group), "%s", PQgetvalue(res, i, 1));
        snprintf(r->info.original_topic, sizeof(r->info.original_topic), "%s",
                 PQgetvalue(res, i, 2));
        r->info.original_partition = (int32_t)strtol(PQgetvalue(res, i, 3), NULL, 10);
        r->info.original_offset = strtoll(PQgetvalue(res, i, 4), NULL, 10);
        if (get_bytea(res, i, 5, &row->key, &row->key_len) != 0 ||
            get_bytea(res, i, 6, &row->value, &row->value_len) != 0 ||
            get_bytea(res, i, 7, &row->headers, &row->headers_len) != 0) {
            util_errf(errstr, errstr_size, "out of memory");
            store_rows_free(out, i + 1);
            out = NULL;
            goto done;
        }
        snprintf(r->ce_id, sizeof(r->ce_id), "%s", PQgetvalue(res, i, 8));
        r->info.attempt = (int32_t)strtol(PQgetvalue(res, i, 9), NULL, 10);
        r->info.max_attempts = (int32_t)strtol(PQgetvalue(res, i, 10), NULL, 10);
        r->info.not_before_ms = strtoll(PQgetvalue(res, i, 11), NULL, 10);
        r->info.deadline_ms = strtoll(PQgetvalue(res, i, 12), NULL, 10);
        snprintf(r->info.reason, sizeof(r->info.reason), "%s", PQgetvalue(res, i, 13));
        snprintf(r->info.error, sizeof(r->info.error), "%s", PQgetvalue(res, i, 14));
        r->info.first_failed_at_ms = strtoll(PQgetvalue(res, i, 15), NULL, 10);
        row->due_at_ms = strtoll(PQgetvalue(res, i, 16), NULL, 10);
    }
    *rows = out;
    out = NULL;
    ret = n;
done:
    PQclear(res);
    free(out);
    return ret;
}

int store_next_due(PGconn *conn, int64_t *due_ms, char *errstr, size_t errstr_size)
{
    PGresult *res = db_exec(conn, "rp_next_due", 0, NULL, NULL, errstr, errstr_size);
    int ret = 0;

    if (res == NULL)
        return -1;
    if (PQntuples(res) == 1 && !PQgetisnull(res, 0, 0)) {
        *due_ms = strtoll(PQgetvalue(res, 0, 0), NULL, 10);
        ret = 1;
    }
    PQclear(res);
    return ret;
}

int store_finish_round(PGconn *conn, const int64_t *done, size_t n_done,
                       const int64_t *gave_up, const char *const *gave_up_reasons,
                       size_t n_gave_up, const int64_t *later, const int64_t *later_due,
                       size_t n_later, char *errstr, size_t errstr_size)
{
    strbuf_t a_done = STRBUF_INIT, a_gave = STRBUF_INIT, a_reasons = STRBUF_INIT;
    strbuf_t a_later = STRBUF_INIT, a_due = STRBUF_INIT;
    PGresult *res = NULL;
    int ret = -1;

    for (size_t i = 0; i < n_done; i++)
        db_array_add_int64(&a_done, done[i]);
    for (size_t i = 0; i < n_gave_up; i++) {
        db_array_add_int64(&a_gave, gave_up[i]);
        db_array_add_text(&a_reasons, gave_up_reasons[i]);
    }
    for (size_t i = 0; i < n_later; i++) {
        db_array_add_int64(&a_later, later[i]);
        db_array_add_int64(&a_due, later_due[i]);
    }
    if (db_array_finish(&a_done) != 0 || db_array_finish(&a_gave) != 0 ||
        db_array_finish(&a_reasons) != 0 || db_array_finish(&a_later) != 0 ||
        db_array_finish(&a_due) != 0) {
        util_errf(errstr, errstr_size, "out of memory");
        goto out;
    }
    {
        const char *p[5] = { a_done.buf, a_gave.buf, a_reasons.buf, a_later.buf, a_due.buf };
        res = db_exec(conn, "rp_finish", 5, p, NULL, errstr, errstr_size);
    }
    if (res != NULL)
        ret = 0;
out:
    PQclear(res);
    strbuf_release(&a_done);
    strbuf_release(&a_gave);
    strbuf_release(&a_reasons);
    strbuf_release(&a_later);
    strbuf_release(&a_due);
    return ret;
}

int store_try_scheduler_lock(PGconn *conn, char *errstr, size_t errstr_size)
{
    PGresult *res = db_exec(conn, "sched_lock", 0, NULL, NULL, errstr, errstr_size);
    int ret;

    if (res == NULL)
        return -1;
    ret = PQntuples(res) == 1 && PQgetvalue(res, 0, 0)[0] == 't';
    PQclear(res);
    return ret;
}

/* Sets obj[name] to a new integer; -1 when out of memory. */
static int set_int(json_t *obj, const char *name, long long v)
{
    return json_object_set_new(obj, name, json_integer(v));
}

json_t *store_stats(PGconn *conn, char *errstr, size_t errstr_size)
{
    PGresult *res = db_exec(conn, "stats", 0, NULL, NULL, errstr, errstr_size);
    json_t *out = NULL, *pending = NULL, *by_reason = NULL, *next = NULL;
    long long pending_total = 0, dead_total = 0;
    int oom = 0;

    if (res == NULL)
        return NULL;
    pending = json_object();
    by_reason = json_object();
    next = json_null();
    if (pending == NULL || by_reason == NULL)
        oom = 1;
    for (int i = 0; !oom && i < PQntuples(res); i++) {
        const char *kind = PQgetvalue(res, i, 0);
        long long n = strtoll(PQgetvalue(res, i, 3), NULL, 10);

        if (kind[0] == 'p') {
            const char *group = PQgetvalue(res, i, 1);
            json_t *g = json_object_get(pending, group); /* borrowed */

            if (g == NULL && (json_object_set_new(pending, group, json_object()) != 0 ||
                              (g = json_object_get(pending, group)) == NULL)) {
                oom = 1;
                break;
            }
            oom |= set_int(g, PQgetvalue(res, i, 2), n) != 0;
            pending_total += n;
        } else if (kind[0] == 'd') {
            oom |= set_int(by_reason, PQgetvalue(res, i, 2), n) != 0;
            dead_total += n;
        } else if (!PQgetisnull(res, i, 4)) {
            char when[40];

            if (util_rfc3339(strtoll(PQgetvalue(res, i, 4), NULL, 10), when,
                             sizeof(when)) == 0) {
                json_decref(next);
                next = json_string(when);
                oom |= next == NULL;
            }
        }
    }
    if (!oom)
        out = json_pack("{s:O, s:I, s:O, s:{s:I, s:O}}", "pending", pending, "pending_total",
                        (json_int_t)pending_total, "next_due_at", next, "dead_letters",
                        "total", (json_int_t)dead_total, "by_reason", by_reason);
    if (out == NULL)
        util_errf(errstr, errstr_size, "out of memory");
    json_decref(pending);
    json_decref(by_reason);
    json_decref(next);
    PQclear(res);
    return out;
}
