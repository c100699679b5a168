/* store: the sales service's SQL. Every statement is prepared with $n parameters. */
#include "sales.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "trace.h"
#include "util.h"

const db_stmt_t store_stmts[] = {
    /* The conditional decrement: never below zero, and the row lock orders concurrent
     * orders of one SKU. */
    { "inv_decrement",
      "UPDATE inventory SET quantity = quantity - $2::int, updated_at = now() "
      "WHERE sku = $1 AND quantity >= $2::int RETURNING quantity", 2 },
    /* After a failed decrement: lock the row so that the level we report as available is
     * the one the decision was taken on. */
    { "inv_lock", "SELECT quantity FROM inventory WHERE sku = $1 FOR UPDATE", 1 },
    { "order_insert",
      "INSERT INTO orders (id, sku, quantity, status, customer, remaining, available) "
      "VALUES ($1::uuid, $2, $3::int, $4, $5, $6::int, $7::int)", 7 },
    { "order_get",
      "SELECT id, sku, quantity, status, customer, remaining, available, "
      "to_char(created_at AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS.MS\"Z\"') "
      "FROM orders WHERE id = $1::uuid", 1 },
    /* Serialises requests carrying the same key; released at commit or rollback. */
    { "idem_lock", "SELECT pg_advisory_xact_lock(1685024340, hashtext($1))", 1 },
    { "idem_get",
      "SELECT request, status_code, response FROM idempotency_keys WHERE key = $1", 1 },
    { "idem_put",
      "INSERT INTO idempotency_keys (key, request, status_code, response) "
      "VALUES ($1, $2, $3::int, $4)", 4 },
    /* A batch of taken orders of one SKU in one statement (store_place_batch): the
     * conditional decrement of their sum ($2), then each order's row and event, with the
     * level after each order (the level after the batch plus the quantities after it,
     * $6) put in place of the event's placeholder ($15). No row at all when the level does
     * not cover the sum or there is no such SKU. */
    { "order_batch",
      "WITH d AS ("
      " UPDATE inventory SET quantity = quantity - $2::int, updated_at = now()"
      " WHERE sku = $1 AND quantity >= $2::int RETURNING quantity),"
      " u AS (SELECT * FROM unnest($3::uuid[], $4::int[], $5::text[], $6::bigint[],"
      " $7::uuid[], $8::timestamptz[], $9::text[], $10::text[])"
      " AS u(id, q, customer, after, ce_id, ce_time, payload, traceparent)),"
      " o AS (INSERT INTO orders (id, sku, quantity, status, customer, remaining)"
      " SELECT u.id, $1, u.q, $16, u.customer, d.quantity + u.after FROM d, u),"
      " e AS (INSERT INTO outbox (producer, topic, msg_key, ce_id, ce_type, ce_source,"
      " ce_time, payload, traceparent)"
      " SELECT $11, $12, $1, u.ce_id, $13, $14, u.ce_time,"
      " replace(u.payload, $15, (d.quantity + u.after)::text), u.traceparent FROM d, u) "
      "SELECT quantity FROM d", 16 },
    /* Whether a server process still runs (store_order_settled). */
    { "session_alive", "SELECT 1 FROM pg_stat_activity WHERE pid = $1::int", 1 },
    /* The shop page's list: sales owns the decrement, so it reads the same rows. */
    { "products_list",
      "SELECT sku, quantity FROM inventory ORDER BY sku LIMIT " SALES_PRODUCTS_MAX_S, 0 },
    OUTBOX_DB_STMT,
};
const size_t store_nstmts = sizeof(store_stmts) / sizeof(store_stmts[0]);

/* Runs one statement and keeps only whether it worked and how many rows it returned or
 * touched. Returns the row count, or -1 with errstr. *first gets a copy of column 0 of row
 * 0 when first is not NULL and there is such a value. */
static int exec_count(PGconn *conn, const char *stmt, int n, const char *const *params,
                      char *first, size_t first_size, char *errstr, size_t errstr_size)
{
    PGresult *res;
    int rows;

    res = db_exec(conn, stmt, n, params, NULL, errstr, errstr_size);
    if (res == NULL)
        return -1;
    if (PQresultStatus(res) == PGRES_TUPLES_OK)
        rows = PQntuples(res);
    else
        rows = (int)strtol(PQcmdTuples(res), NULL, 10);
    if (first != NULL && first_size > 0) {
        first[0] = '\0';
        if (PQresultStatus(res) == PGRES_TUPLES_OK && PQntuples(res) > 0 &&
            PQnfields(res) > 0 && !PQgetisnull(res, 0, 0))
            snprintf(first, first_size, "%s", PQgetvalue(res, 0, 0));
    }
    PQclear(res);
    return rows;
}

/* Looks up a stored answer for key. Returns 1 with the stored status and body set (or with
 * *reused = 1 when the request differs), 0 when the key is new, -1 on error. */
static int idem_lookup(PGconn *conn, const char *key, const char *canonical, int *status,
                       json_t **body, int *reused, char *errstr, size_t errstr_size)
{
    const char *params[1] = { key };
    PGresult *res;
    json_error_t jerr;
    int ret = -1;

    res = db_exec(conn, "idem_get", 1, params, NULL, errstr, errstr_size);
    if (res == NULL)
        goto done;
    if (PQntuples(res) == 0) {
        ret = 0;
        goto done;
    }
    if (strcmp(PQgetvalue(res, 0, 0), canonical) != 0) {
        *reused = 1;
        ret = 1;
        goto done;
    }
    *status = (int)strtol(PQgetvalue(res, 0, 1), NULL, 10);
    *body = json_loads(PQgetvalue(res, 0, 2), 0, &jerr);
    if (*body == NULL) {
        snprintf(errstr, errstr_size, "stored answer for key is not JSON: %s", jerr.text);
        goto done;
    }
    ret = 1;
done:
    PQclear(res);
    return ret;
}

/* Takes req's quantity from its SKU's level if the level covers it, deciding for good with
 * the row locked. Fills facts (fact and level). Returns 0, or -1 with errstr. */
static int take_stock(PGconn *conn, const order_request_t *req, const char *qty,
                      order_facts_t *facts, char *errstr, size_t errstr_size)
{
    const char *p[2] = { req->sku, qty };
    char level[32];
    int rows;

    rows = exec_count(conn, "inv_decrement", 2, p, level, sizeof(level), errstr, errstr_size);
    if (rows < 0)
        return -1;
    if (rows == 0) {
        rows = exec_count(conn, "inv_lock", 1, p, level, sizeof(level), errstr, errstr_size);
        if (rows < 0)
            return -1;
        if (rows == 0) {
            facts->fact = ORDER_SKU_UNKNOWN;
            return 0;
        }
        /* The level may have risen between the two statements; with the row now locked,
         * a second decrement decides for good. */
        rows = 0;
        if (strtoll(level, NULL, 10) >= req->quantity) {
            rows = exec_count(conn, "inv_decrement", 2, p, level, sizeof(level),
                              errstr, errstr_size);
            if (rows < 0)
                return -1;
        }
    }
    facts->fact = rows > 0 ? ORDER_TAKEN : ORDER_SHORT;
    facts->level = strtoll(level, NULL, 10);
    return 0;
}

/* Writes the order row, the outcome's events and (with idem_key) the stored answer. */
static int record_outcome(PGconn *conn, const order_request_t *req, const char *qty,
                          const char *idem_key, const char *canonical,
                          const order_facts_t *facts, const order_outcome_t *out,
                          char *errstr, size_t errstr_size)
{
    const char *customer = req->has_customer ? req->customer : NULL;
    char level[32], code[8];
    char *answer = NULL;
    int ret = -1;

    snprintf(level, sizeof(level), "%lld", facts->level);
    {
        int taken = facts->fact == ORDER_TAKEN;
        const char *p[7] = { facts->order_id, req->sku, qty, out->state, customer,
                             taken ? level : NULL, taken ? NULL : level };
        if (exec_count(conn, "order_insert", 7, p, NULL, 0, errstr, errstr_size) < 0)
            goto done;
    }
    for (size_t i = 0; i < out->nevents; i++) {
        const event_out_t *ev = &out->events[i];

        if (outbox_add(conn, SALES_SERVICE, ev->spec->topic, ev->key, ev->spec->type,
                       SALES_SOURCE, ev->text, NULL, errstr, errstr_size) != 0)
            goto done;
    }
    if (idem_key != NULL) {
        const char *p[4] = { idem_key, canonical, code, NULL };

        snprintf(code, sizeof(code), "%d", out->status);
        if ((answer = json_dumps(out->body, JSON_COMPACT)) == NULL) {
            snprintf(errstr, errstr_size, "out of memory");
            goto done;
        }
        p[3] = answer;
        if (exec_count(conn, "idem_put", 4, p, NULL, 0, errstr, errstr_size) < 0)
            goto done;
    }
    ret = 0;
done:
    free(answer);
    return ret;
}

int store_place_order(PGconn *conn, const order_request_t *req, const char *idem_key,
                      order_outcome_t *out, char *errstr, size_t errstr_size)
{
    order_facts_t facts;
    char qty[16];
    char *canonical = NULL;
    int reused = 0, committed = 0, ret = -1;
    int pid = PQbackendPID(conn);

    memset(out, 0, sizeof(*out));
    memset(&facts, 0, sizeof(facts));
    if (util_uuid_v4(facts.order_id) != 0) {
        snprintf(errstr, errstr_size, "no randomness for an order id");
        return -1;
    }
    snprintf(qty, sizeof(qty), "%d", req->quantity);

    if (db_begin(conn, errstr, errstr_size) != 0)
        goto done;

    if (idem_key != NULL) {
        const char *p[1] = { idem_key };
        canonical = order_canonical(req);
        if (canonical == NULL) {
            snprintf(errstr, errstr_size, "out of memory");
            goto done;
        }
        if (exec_count(conn, "idem_lock", 1, p, NULL, 0, errstr, errstr_size) < 0)
            goto done;
        switch (idem_lookup(conn, idem_key, canonical, &out->status, &out->body, &reused,
                            errstr, errstr_size)) {
        case -1:
            goto done;
        case 1:
            if (reused) {
                facts.fact = ORDER_KEY_REUSED;
                ret = order_decide(req, &facts, out, errstr, errstr_size);
            } else {
                out->replayed = 1;
                ret = 0; /* the stored answer, replayed */
            }
            goto done;
        default:
            break;
        }
    }

    if (take_stock(conn, req, qty, &facts, errstr, errstr_size) != 0 ||
        order_decide(req, &facts, out, errstr, errstr_size) != 0)
        goto done;
    if (out->state == NULL) {
        ret = 0; /* nothing to write: the rollback below ends the transaction */
        goto done;
    }
    if (record_outcome(conn, req, qty, idem_key, canonical, &facts, out, errstr,
                       errstr_size) != 0)
        goto done;
    if (db_commit(conn, errstr, errstr_size) != 0) {
        /* The COMMIT went out and no answer came back (a crash, a lost connection): the
         * order may be committed. The caller finds out; out keeps the answer it would be. */
        if (PQstatus(conn) == CONNECTION_BAD) {
            committed = 1; /* nothing to roll back on a dead connection */
            ret = STORE_COMMIT_UNKNOWN;
            snprintf(out->order_id, sizeof(out->order_id), "%s", facts.order_id);
            out->backend_pid = pid;
        }
        goto done;
    }
    committed = 1;
    ret = 0;

done:
    if (!committed)
        db_rollback(conn); /* also ends a replay, which wrote nothing */
    if (ret != 0 && ret != STORE_COMMIT_UNKNOWN)
        order_outcome_clear(out);
    free(canonical);
    return ret;
}

int store_get_order(PGconn *conn, const char *id, json_t **order,
                    char *errstr, size_t errstr_size)
{
    const char *params[1] = { id };
    PGresult *res;
    json_t *o;
    int ret = -1;

    *order = NULL;
    res = db_exec(conn, "order_get", 1, params, NULL, errstr, errstr_size);
    if (res == NULL)
        goto done;
    if (PQntuples(res) == 0) {
        ret = 0;
        goto done;
    }
    o = json_pack("{s:s, s:s, s:s, s:I}", "order_id", PQgetvalue(res, 0, 0),
                  "status", PQgetvalue(res, 0, 3), "sku", PQgetvalue(res, 0, 1),
                  "quantity", (json_int_t)strtoll(PQgetvalue(res, 0, 2), NULL, 10));
    if (o == NULL) {
        snprintf(errstr, errstr_size, "out of memory");
        goto done;
    }
    if (!PQgetisnull(res, 0, 4))
        json_object_set_new(o, "customer", json_string(PQgetvalue(res, 0, 4)));
    if (!PQgetisnull(res, 0, 5))
        json_object_set_new(o, "remaining",
                            json_integer(strtoll(PQgetvalue(res, 0, 5), NULL, 10)));
    if (!PQgetisnull(res, 0, 6))
        json_object_set_new(o, "available",
                            json_integer(strtoll(PQgetvalue(res, 0, 6), NULL, 10)));
    json_object_set_new(o, "created_at", json_string(PQgetvalue(res, 0, 7)));
    *order = o;
    ret = 1;
done:
    PQclear(res);
    return ret;
}

/* ------------------------------------------------------------------------------------ */
/* Batches (combine.c) */

/* 1 if needle occurs exactly once in hay. */
static int occurs_once(const char *hay, const char *needle)
{
    const char *p = strstr(hay, needle);

    return p != NULL && strstr(p + 1, needle) == NULL;
}

int store_prepare_order(store_batch_order_t *o, char *errstr, size_t errstr_size)
{
    order_facts_t facts;

    memset(&facts, 0, sizeof(facts));
    o->fast = 0;
    o->ret = 0;
    o->err[0] = '\0';
    if (util_uuid_v4(facts.order_id) != 0) {
        snprintf(errstr, errstr_size, "no randomness for an order id");
        return -1;
    }
    facts.fact = ORDER_TAKEN;
    facts.level = STORE_LEVEL_PLACEHOLDER;
    if (order_decide(o->req, &facts, o->out, errstr, errstr_size) != 0)
        return -1;
    snprintf(o->out->order_id, sizeof(o->out->order_id), "%s", facts.order_id);
    if (o->out->nevents != 1 ||
        event_meta_new(&o->meta, o->out->events[0].spec->type, SALES_SOURCE, errstr,
                       errstr_size) != 0) {
        order_outcome_clear(o->out);
        if (errstr[0] == '\0')
            snprintf(errstr, errstr_size, "unexpected outcome");
        return -1;
    }
    /* A customer could spell the placeholder; such an order goes the long way. */
    o->fast = occurs_once(o->out->events[0].text, STORE_LEVEL_PLACEHOLDER_TEXT);
    return 0;
}

/* Places the batch's orders one at a time, each under its own trace. */
static void place_one_by_one(PGconn *conn, store_batch_order_t *orders, size_t n)
{
    char mine[TRACE_PARENT_SIZE] = "";
    const char *cur = trace_current();

    if (cur != NULL)
        snprintf(mine, sizeof(mine), "%s", cur);
    for (size_t i = 0; i < n; i++) {
        store_batch_order_t *o = &orders[i];
        const char *tp = o->meta.traceparent;

        order_outcome_clear(o->out);
        trace_begin(tp[0] != '\0' ? tp : NULL, strlen(tp));
        o->ret = store_place_order(conn, o->req, NULL, o->out, o->err, sizeof(o->err));
    }
    trace_begin(mine[0] != '\0' ? mine : NULL, strlen(mine));
}

/* The one statement. Returns 1 when every order was taken (each out completed), 0 when
 * nothing was written, -1 with errstr on a database error (nothing written), or
 * STORE_COMMIT_UNKNOWN with errstr when the connection died with the statement on its way:
 * outside a transaction block the statement is its own COMMIT, so every order of the batch
 * may or may not be committed (each out keeps the answer it would have, level aside). */
static int place_together(PGconn *conn, store_batch_order_t *orders, size_t n,
                          char *errstr, size_t errstr_size)
{
    strbuf_t a[8] = { STRBUF_INIT, STRBUF_INIT, STRBUF_INIT, STRBUF_INIT,
                      STRBUF_INIT, STRBUF_INIT, STRBUF_INIT, STRBUF_INIT };
    const event_out_t *ev0 = &orders[0].out->events[0];
    const char *params[16];
    char total[16];
    PGresult *res = NULL;
    long long sum = 0, after = 0, level;
    int ret = -1, fail = 0, pid = PQbackendPID(conn);

    for (size_t i = 0; i < n; i++)
        sum += orders[i].req->quantity;
    for (size_t i = 0; i < n; i++) {
        const store_batch_order_t *o = &orders[i];
        const char *tp = o->meta.traceparent;

        after = 0;
        for (size_t j = i + 1; j < n; j++)
            after += orders[j].req->quantity;
        fail |= db_array_add_text(&a[0], json_string_value(json_object_get(o->out->body,
                                                                          "order_id")));
        fail |= db_array_add_int64(&a[1], o->req->quantity);
        fail |= db_array_add_text(&a[2], o->req->has_customer ? o->req->customer : NULL);
        fail |= db_array_add_int64(&a[3], after);
        fail |= db_array_add_text(&a[4], o->meta.id);
        fail |= db_array_add_text(&a[5], o->meta.time);
        fail |= db_array_add_text(&a[6], o->out->events[0].text);
        fail |= db_array_add_text(&a[7], tp[0] != '\0' ? tp : NULL);
    }
    for (size_t k = 0; k < 8; k++)
        fail |= db_array_finish(&a[k]);
    if (fail) {
        snprintf(errstr, errstr_size, "out of memory");
        goto done;
    }
    snprintf(total, sizeof(total), "%lld", sum);
    params[0] = orders[0].req->sku;
    params[1] = total;
    for (size_t k = 0; k < 8; k++)
        params[2 + k] = a[k].buf;
    params[10] = SALES_SERVICE;
    params[11] = ev0->spec->topic;
    params[12] = ev0->spec->type;
    params[13] = SALES_SOURCE;
    params[14] = STORE_LEVEL_PLACEHOLDER_TEXT;
    params[15] = orders[0].out->state;
    res = db_exec(conn, "order_batch", 16, params, NULL, errstr, errstr_size);
    if (res == NULL) {
        if (PQstatus(conn) == CONNECTION_BAD) {
            ret = STORE_COMMIT_UNKNOWN;
            for (size_t i = 0; i < n; i++)
                orders[i].out->backend_pid = pid;
        }
        goto done;
    }
    if (PQntuples(res) != 1) {
        ret = 0;
        goto done;
    }
    outbox_wake(SALES_SERVICE);
    level = strtoll(PQgetvalue(res, 0, 0), NULL, 10);
    after = sum;
    for (size_t i = 0; i < n; i++) {
        after -= orders[i].req->quantity;
        /* the answer's level: the one after this order, as if it had been alone */
        if (json_object_set_new(orders[i].out->body, "remaining",
                                json_integer(level + after)) != 0) {
            /* out of memory after the commit: as a lost answer, looked up (and found) */
            orders[i].ret = STORE_COMMIT_UNKNOWN;
            snprintf(orders[i].err, sizeof(orders[i].err), "out of memory");
        }
    }
    ret = 1;
done:
    PQclear(res);
    for (size_t k = 0; k < 8; k++)
        strbuf_release(&a[k]);
    return ret;
}

void store_place_batch(PGconn *conn, store_batch_order_t *orders, size_t n)
{
    char err[256];
    int fast = n > 0;

    for (size_t i = 0; i < n; i++)
        fast &= orders[i].fast;
    if (fast) {
        switch (place_together(conn, orders, n, err, sizeof(err))) {
        case 1:
            return;
        case 0:
            break; /* short, or no such SKU: one by one says which */
        case STORE_COMMIT_UNKNOWN:
            /* each order is looked up by its requester (out->order_id, out kept) */
            for (size_t i = 0; i < n; i++) {
                orders[i].ret = STORE_COMMIT_UNKNOWN;
                snprintf(orders[i].err, sizeof(orders[i].err), "%s", err);
            }
            return;
        default:
            for (size_t i = 0; i < n; i++) {
                orders[i].ret = -1;
                snprintf(orders[i].err, sizeof(orders[i].err), "%s", err);
                order_outcome_clear(orders[i].out);
            }
            return;
        }
    }
    place_one_by_one(conn, orders, n);
}

int store_order_settled(PGconn *conn, const char *id, int pid, json_t **order,
                        char *errstr, size_t errstr_size)
{
    char spid[16];
    const char *p[1] = { spid };
    int alive = 0, r;

    *order = NULL;
    /* The session first: once it has ended, what the lookup finds is final. */
    if (pid > 0) {
        snprintf(spid, sizeof(spid), "%d", pid);
        if ((alive = exec_count(conn, "session_alive", 1, p, NULL, 0, errstr,
                                errstr_size)) < 0)
            return -1;
    }
    r = store_get_order(conn, id, order, errstr, errstr_size);
    if (r == 0 && alive > 0)
        return 2;
    return r;
}

json_t *store_list_products(PGconn *conn, char *errstr, size_t errstr_size)
{
    PGresult *res;
    json_t *list = NULL, *out = NULL;

    res = db_exec(conn, "products_list", 0, NULL, NULL, errstr, errstr_size);
    if (res == NULL)
        goto done;
    if ((list = json_array()) == NULL)
        goto oom;
    for (int i = 0; i < PQntuples(res); i++) {
        json_t *p = json_pack("{s:s, s:I}", "sku", PQgetvalue(res, i, 0), "quantity",
                              (json_int_t)strtoll(PQgetvalue(res, i, 1), NULL, 10));
        if (p == NULL || json_array_append_new(list, p) != 0)
            goto oom;
    }
    out = json_pack("{s:o}", "products", list); /* steals list */
    list = NULL;
    if (out == NULL)
        goto oom;
    goto done;
oom:
    snprintf(errstr, errstr_size, "out of memory");
done:
    json_decref(list);
    PQclear(res);
    return out;
}
