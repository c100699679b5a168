/* store: the sales service's SQL. Every statement is prepared with $n parameters. */
#include "sales.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "log.h"
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
    /* Batches of several SKUs in one statement (store_place_group): $1/$2 each SKU and the
     * sum of its orders, $3.. one element per order, its SKU first. Only the SKUs whose
     * level covers their sum are decremented, and only their orders written; the rows
     * returned say which. The rows are locked in SKU order first (k), so that two such
     * statements never wait for each other in a circle, and every order's rows go in in
     * arrival order (ordinality), so that a SKU's events keep the order of its levels. */
    { "order_group",
      "WITH s AS (SELECT * FROM unnest($1::text[], $2::int[]) AS s(sku, total)),"
      " k AS MATERIALIZED (SELECT i.sku FROM inventory i JOIN s ON s.sku = i.sku"
      " WHERE i.quantity >= s.total ORDER BY i.sku FOR UPDATE OF i),"
      " d AS (UPDATE inventory i SET quantity = i.quantity - s.total, updated_at = now()"
      " FROM s JOIN k ON k.sku = s.sku WHERE i.sku = s.sku AND i.quantity >= s.total"
      " RETURNING i.sku, i.quantity),"
      " u AS (SELECT * FROM unnest($3::text[], $4::uuid[], $5::int[], $6::text[],"
      " $7::bigint[], $8::uuid[], $9::timestamptz[], $10::text[], $11::text[])"
      " WITH ORDINALITY AS u(sku, id, q, customer, after, ce_id, ce_time, payload,"
      " traceparent, n)),"
      " o AS (INSERT INTO orders (id, sku, quantity, status, customer, remaining)"
      " SELECT u.id, u.sku, u.q, $17, u.customer, d.quantity + u.after"
      " FROM d JOIN u ON u.sku = d.sku ORDER BY u.n),"
      " e AS (INSERT INTO outbox (producer, topic, msg_key, ce_id, ce_type, ce_source,"
      " ce_time, payload, traceparent)"
      " SELECT $12, $13, u.sku, u.ce_id, $14, $15, u.ce_time,"
      " replace(u.payload, $16, (d.quantity + u.after)::text), u.traceparent"
      " FROM d JOIN u ON u.sku = d.sku ORDER BY u.n) "
      "SELECT sku, quantity FROM d", 17 },
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

/* The quantities of n orders. */
static long long quantity_sum(const store_batch_order_t *orders, size_t n)
{
    long long sum = 0;

    for (size_t i = 0; i < n; i++)
        sum += orders[i].req->quantity;
    return sum;
}

/* The per-order arrays of a batch, a[0..8]: SKU (only with_sku; else a[0] stays empty),
 * order id, quantity, customer, the quantities after it (of the later orders of its SKU:
 * the batch holds each SKU's orders together, in arrival order), ce_id, ce_time, event,
 * traceparent. Returns 0, or -1 out of memory. */
#define ORDER_ARRAYS 9
static int order_arrays(const store_batch_order_t *orders, size_t n, int with_sku,
                        strbuf_t *a)
{
    long long after = 0;
    int fail = 0;

    for (size_t i = 0; i < n; i++) {
        const store_batch_order_t *o = &orders[i];
        const char *tp = o->meta.traceparent;

        after = 0;
        for (size_t j = i + 1; j < n && strcmp(orders[j].req->sku, o->req->sku) == 0; j++)
            after += orders[j].req->quantity;
        if (with_sku)
            fail |= db_array_add_text(&a[0], o->req->sku);
        fail |= db_array_add_text(&a[1], json_string_value(json_object_get(o->out->body,
                                                                          "order_id")));
        fail |= db_array_add_int64(&a[2], o->req->quantity);
        fail |= db_array_add_text(&a[3], o->req->has_customer ? o->req->customer : NULL);
        fail |= db_array_add_int64(&a[4], after);
        fail |= db_array_add_text(&a[5], o->meta.id);
        fail |= db_array_add_text(&a[6], o->meta.time);
        fail |= db_array_add_text(&a[7], o->out->events[0].text);
        fail |= db_array_add_text(&a[8], tp[0] != '\0' ? tp : NULL);
    }
    for (size_t k = 0; k < ORDER_ARRAYS; k++)
        fail |= db_array_finish(&a[k]);
    return fail ? -1 : 0;
}

/* After the commit: each order's answer gets the level after it, as if it had been alone
 * (level: the SKU's level after the n orders, all of one SKU). */
static void finish_run(store_batch_order_t *orders, size_t n, long long level)
{
    long long after = quantity_sum(orders, n);

    for (size_t i = 0; i < n; i++) {
        after -= orders[i].req->quantity;
        if (json_object_set_new(orders[i].out->body, "remaining",
                                json_integer(level + after)) != 0) {
            /* out of memory after the commit: as a lost answer, looked up (and found) */
            orders[i].ret = STORE_COMMIT_UNKNOWN;
            snprintf(orders[i].err, sizeof(orders[i].err), "out of memory");
        }
    }
}

/* A batch statement went out and failed (res NULL): STORE_COMMIT_UNKNOWN, each order
 * carrying the server process pid (read before the statement: a dead connection forgets
 * it), when the connection died with it on its way (outside a transaction block the
 * statement is its own COMMIT, so all or none are committed), else -1 (nothing written). */
static int batch_failed(PGconn *conn, int pid, store_batch_order_t *orders, size_t n)
{
    if (PQstatus(conn) != CONNECTION_BAD)
        return -1;
    for (size_t i = 0; i < n; i++)
        orders[i].out->backend_pid = pid;
    return STORE_COMMIT_UNKNOWN;
}

/* The batch statements' last six parameters: the events' producer, topic, type and
 * source, the level placeholder, and the orders' status (one outcome for all: taken). */
#define EVENT_PARAMS 6
static void event_params(const store_batch_order_t *orders, const char **p)
{
    const event_out_t *ev0 = &orders[0].out->events[0];

    p[0] = SALES_SERVICE;
    p[1] = ev0->spec->topic;
    p[2] = ev0->spec->type;
    p[3] = SALES_SOURCE;
    p[4] = STORE_LEVEL_PLACEHOLDER_TEXT;
    p[5] = orders[0].out->state;
}

/* The one statement of one SKU (order_batch). Returns 1 when every order was taken (each
 * out completed), 0 when nothing was written (short, or no such SKU), -1 with errstr on a
 * database error (nothing written), or STORE_COMMIT_UNKNOWN with errstr (batch_failed). */
static int place_together(PGconn *conn, store_batch_order_t *orders, size_t n,
                          char *errstr, size_t errstr_size)
{
    strbuf_t a[ORDER_ARRAYS];
    const char *params[1 + ORDER_ARRAYS + EVENT_PARAMS];
    char total[24];
    PGresult *res = NULL;
    int ret = -1, pid = PQbackendPID(conn);

    for (size_t k = 0; k < ORDER_ARRAYS; k++)
        strbuf_init(&a[k], 0);
    if (order_arrays(orders, n, 0, a) != 0) {
        snprintf(errstr, errstr_size, "out of memory");
        goto done;
    }
    snprintf(total, sizeof(total), "%lld", quantity_sum(orders, n));
    params[0] = orders[0].req->sku; /* in place of the SKU array */
    params[1] = total;
    for (size_t k = 1; k < ORDER_ARRAYS; k++)
        params[1 + k] = a[k].buf;
    event_params(orders, &params[1 + ORDER_ARRAYS]);
    res = db_exec(conn, "order_batch", 1 + ORDER_ARRAYS + EVENT_PARAMS, params, NULL,
                  errstr, errstr_size);
    if (res == NULL) {
        ret = batch_failed(conn, pid, orders, n);
        goto done;
    }
    if (PQntuples(res) != 1) {
        ret = 0;
        goto done;
    }
    outbox_wake(SALES_SERVICE);
    finish_run(orders, n, strtoll(PQgetvalue(res, 0, 0), NULL, 10));
    ret = 1;
done:
    PQclear(res);
    for (size_t k = 0; k < ORDER_ARRAYS; k++)
        strbuf_release(&a[k]);
    return ret;
}

/* The one statement of several SKUs (order_group): runs[r] is where run r (the orders of
 * one SKU, no SKU in two runs) starts, runs[nruns] = n. Returns 1 with placed[r] = 1 for
 * each run whose orders were all taken (answers completed) and 0 for each run of which
 * nothing was written, or -1 / STORE_COMMIT_UNKNOWN with errstr as place_together. */
static int place_group(PGconn *conn, store_batch_order_t *orders, size_t n,
                       const size_t *runs, size_t nruns, int *placed,
                       char *errstr, size_t errstr_size)
{
    strbuf_t a[ORDER_ARRAYS], skus = STRBUF_INIT, sums = STRBUF_INIT;
    const char *params[2 + ORDER_ARRAYS + EVENT_PARAMS];
    PGresult *res = NULL;
    int ret = -1, fail, pid = PQbackendPID(conn);

    for (size_t k = 0; k < ORDER_ARRAYS; k++)
        strbuf_init(&a[k], 0);
    fail = order_arrays(orders, n, 1, a);
    for (size_t r = 0; r < nruns; r++) {
        fail |= db_array_add_text(&skus, orders[runs[r]].req->sku);
        fail |= db_array_add_int64(&sums, quantity_sum(&orders[runs[r]],
                                                       runs[r + 1] - runs[r]));
        placed[r] = 0;
    }
    fail |= db_array_finish(&skus);
    fail |= db_array_finish(&sums);
    if (fail) {
        snprintf(errstr, errstr_size, "out of memory");
        goto done;
    }
    params[0] = skus.buf;
    params[1] = sums.buf;
    for (size_t k = 0; k < ORDER_ARRAYS; k++)
        params[2 + k] = a[k].buf;
    event_params(orders, &params[2 + ORDER_ARRAYS]);
    res = db_exec(conn, "order_group", 2 + ORDER_ARRAYS + EVENT_PARAMS, params, NULL,
                  errstr, errstr_size);
    if (res == NULL) {
        ret = batch_failed(conn, pid, orders, n);
        goto done;
    }
    for (int row = 0; row < PQntuples(res); row++) {
        const char *sku = PQgetvalue(res, row, 0);

        for (size_t r = 0; r < nruns; r++)
            if (!placed[r] && strcmp(orders[runs[r]].req->sku, sku) == 0) {
                placed[r] = 1;
                finish_run(&orders[runs[r]], runs[r + 1] - runs[r],
                           strtoll(PQgetvalue(res, row, 1), NULL, 10));
                break;
            }
    }
    if (PQntuples(res) > 0)
        outbox_wake(SALES_SERVICE);
    ret = 1;
done:
    PQclear(res);
    strbuf_release(&skus);
    strbuf_release(&sums);
    for (size_t k = 0; k < ORDER_ARRAYS; k++)
        strbuf_release(&a[k]);
    return ret;
}

/* Every order of the batch gets ret (-1 or STORE_COMMIT_UNKNOWN) and err; after -1 nothing
 * happened, so the answers go. */
static void batch_fail_all(store_batch_order_t *orders, size_t n, int ret, const char *err)
{
    for (size_t i = 0; i < n; i++) {
        orders[i].ret = ret;
        snprintf(orders[i].err, sizeof(orders[i].err), "%s", err);
        if (ret != STORE_COMMIT_UNKNOWN)
            order_outcome_clear(orders[i].out);
    }
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
            batch_fail_all(orders, n, STORE_COMMIT_UNKNOWN, err);
            return;
        default:
            batch_fail_all(orders, n, -1, err);
            return;
        }
    }
    place_one_by_one(conn, orders, n);
}

void store_place_group(PGconn *conn, store_batch_order_t *orders, size_t n)
{
    size_t runs[COMBINE_GROUP_MAX + 1], nruns = 0;
    int placed[COMBINE_GROUP_MAX], fast = n > 0;
    char err[256];

    for (size_t i = 0; i < n; i++) {
        fast &= orders[i].fast;
        if (i == 0 || strcmp(orders[i].req->sku, orders[i - 1].req->sku) != 0) {
            if (nruns == COMBINE_GROUP_MAX) {
                fast = 0; /* more runs than the caller may give: each one alone */
                break;
            }
            runs[nruns++] = i;
        }
    }
    runs[nruns] = n;
    if (!fast || nruns < 2) {
        for (size_t r = 0; r < nruns; r++)
            store_place_batch(conn, &orders[runs[r]], runs[r + 1] - runs[r]);
        return;
    }
    switch (place_group(conn, orders, n, runs, nruns, placed, err, sizeof(err))) {
    case 1:
        /* the runs it could not take: short, or no such SKU; one by one says which */
        for (size_t r = 0; r < nruns; r++)
            if (!placed[r])
                place_one_by_one(conn, &orders[runs[r]], runs[r + 1] - runs[r]);
        return;
    case STORE_COMMIT_UNKNOWN:
        batch_fail_all(orders, n, STORE_COMMIT_UNKNOWN, err);
        return;
    default:
        /* nothing was written; on a live connection (a deadlock with another instance's
         * statement, say) each SKU goes its own way */
        if (PQstatus(conn) != CONNECTION_OK) {
            batch_fail_all(orders, n, -1, err);
            return;
        }
        log_warn("order_group_failed skus=%zu orders=%zu error=%s: placed SKU by SKU",
                 nruns, n, LOG_Q(err));
        for (size_t r = 0; r < nruns; r++)
            store_place_batch(conn, &orders[runs[r]], runs[r + 1] - runs[r]);
        return;
    }
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
