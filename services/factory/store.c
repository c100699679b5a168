/* store: the factory service's SQL. Every statement is prepared with $n parameters. */
#include "factory.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "inbox.h"
#include "trace.h"
#include "util.h"

#define ORDER_COLUMNS                                                                    \
    "id, sku, quantity, status, attempts, last_error, factory_id, factory_product_id, "  \
    "to_char(created_at AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS.MS\"Z\"'), "       \
    "to_char(next_attempt_at AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS.MS\"Z\"'), "  \
    "to_char(requested_at AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS.MS\"Z\"'), "     \
    "to_char(delivered_at AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS.MS\"Z\"'), "     \
    "delivered_quantity"

/* A state name as an SQL literal. The transitions the statements make are the ones of
 * po_transition (order_state.c): insert pending; pending -> requested (po_requested),
 * pending -> pending (po_failed), requested -> pending (po_takeover), pending -> failed
 * (po_give_up), failed -> pending (po_reopen), anything but delivered -> delivered. */
#define Q(name) "'" name "'"

const db_stmt_t store_stmts[] = {
    { "product_of",
      "SELECT restock_batch, factory_id, factory_product_id FROM inventory WHERE sku = $1", 1 },
    { "seen",
      "SELECT 1 FROM processed_events WHERE consumer = 'factory' AND ce_id = $1::uuid", 1 },
    /* The SKU's open order, locked: at most one (the partial unique index). */
    { "po_open_lock",
      "SELECT id, status, depletion_ce_id::text, quantity, "
      "(status = " Q(PO_REQUESTED_NAME) " AND requested_at < now() - "
      " make_interval(secs => $2::float8 / 1000)) "
      "FROM production_orders WHERE sku = $1 AND status IN (" Q(PO_PENDING_NAME) ", " Q(PO_REQUESTED_NAME) ") "
      "FOR UPDATE", 2 },
    /* A delivery newer than the depletion answered it already. */
    { "answered",
      "SELECT 1 FROM production_orders WHERE sku = $1 AND status = " Q(PO_DELIVERED_NAME) " "
      "AND delivered_at > $2::timestamptz LIMIT 1", 2 },
    { "po_reopen",
      "UPDATE production_orders SET status = " Q(PO_PENDING_NAME) ", last_error = NULL WHERE id = "
      "(SELECT id FROM production_orders WHERE depletion_ce_id = $1::uuid "
      " AND status = " Q(PO_FAILED_NAME) " ORDER BY created_at DESC LIMIT 1) "
      "RETURNING id, quantity", 1 },
    { "po_insert",
      "INSERT INTO production_orders (id, sku, quantity, status, depletion_ce_id, traceparent) "
      "VALUES ($1::uuid, $2, $3::int, " Q(PO_PENDING_NAME) ", $4::uuid, $5) "
      "ON CONFLICT (sku) WHERE status IN (" Q(PO_PENDING_NAME) ", " Q(PO_REQUESTED_NAME) ") "
      "DO NOTHING "
      "RETURNING id, quantity", 5 },
    /* What this call sends, and its capability's SHA-256 (the token itself is never
     * stored). */
    { "po_sent",
      "WITH t AS (INSERT INTO production_order_tokens (production_order_id, token_sha256) "
      "VALUES ($1::uuid, sha256(convert_to($2, 'UTF8')))) "
      "UPDATE production_orders SET factory_id = $3, factory_product_id = $4 "
      "WHERE id = $1::uuid", 4 },
    { "po_takeover",
      "UPDATE production_orders SET status = " Q(PO_PENDING_NAME) ", depletion_ce_id = $2::uuid "
      "WHERE id = $1::uuid", 2 },
    { "po_requested",
      "UPDATE production_orders SET status = " Q(PO_REQUESTED_NAME) ", "
      "requested_at = now(), attempts = attempts + 1, last_error = NULL "
      "WHERE id = $1::uuid AND status = " Q(PO_PENDING_NAME), 1 },
    { "po_rejected",
      "UPDATE production_orders SET status = " Q(PO_FAILED_NAME) ", attempts = attempts + 1, "
      "last_error = $2 WHERE id = $1::uuid AND status = " Q(PO_PENDING_NAME), 2 },
    { "po_failed",
      "UPDATE production_orders SET attempts = attempts + 1, last_error = $2 "
      "WHERE id = $1::uuid AND status = " Q(PO_PENDING_NAME), 2 },
    { "po_give_up",
      "UPDATE production_orders SET status = " Q(PO_FAILED_NAME) ", last_error = $2 "
      "WHERE depletion_ce_id = $1::uuid AND status = " Q(PO_PENDING_NAME), 2 },
    /* The order, locked, only for one of its capabilities. */
    { "po_lock_capability",
      "SELECT sku, status, COALESCE(factory_product_id, sku), traceparent FROM production_orders "
      "WHERE id = $1::uuid AND EXISTS (SELECT 1 FROM production_order_tokens "
      " WHERE production_order_id = $1::uuid AND token_sha256 = sha256(convert_to($2, 'UTF8'))) "
      "FOR UPDATE", 2 },
    { "po_delivered",
      "UPDATE production_orders SET status = " Q(PO_DELIVERED_NAME) ", delivered_at = now(), "
      "delivered_quantity = $2::int WHERE id = $1::uuid", 2 },
    { "po_list",
      "SELECT " ORDER_COLUMNS " FROM production_orders "
      "WHERE ($1::text IS NULL OR sku = $1) AND ($2::text IS NULL OR status = $2) "
      "ORDER BY created_at DESC LIMIT $3::int", 3 },
    { "po_get", "SELECT " ORDER_COLUMNS " FROM production_orders WHERE id = $1::uuid", 1 },
    /* sweeper.c: orders the factory accepted and never delivered, 100 a round. */
    { "po_stale",
      "SELECT sku FROM production_orders WHERE status = " Q(PO_REQUESTED_NAME) " "
      "AND requested_at < now() - $1::bigint * interval '1 millisecond' "
      "ORDER BY requested_at LIMIT 100 FOR UPDATE SKIP LOCKED", 1 },
    INBOX_DB_STMT,
    OUTBOX_DB_STMT,
};
const size_t store_nstmts = sizeof(store_stmts) / sizeof(store_stmts[0]);

/* Runs a statement whose result carries nothing we need. */
static int exec_only(PGconn *conn, const char *stmt, int n, const char *const *p,
                     char *errstr, size_t errstr_size)
{
    PGresult *res = db_exec(conn, stmt, n, p, NULL, errstr, errstr_size);

    if (res == NULL)
        return -1;
    PQclear(res);
    return 0;
}

/* Runs a statement and returns how many rows it returned, or -1. Columns 0 and 1 of the
 * first row go to c->id and c->quantity when c is not NULL. */
static int exec_claim(PGconn *conn, const char *stmt, int n, const char *const *p,
                      struct claim *c, char *errstr, size_t errstr_size)
{
    PGresult *res = db_exec(conn, stmt, n, p, NULL, errstr, errstr_size);
    int rows;

    if (res == NULL)
        return -1;
    rows = PQntuples(res);
    if (rows > 0 && c != NULL && PQnfields(res) >= 2) {
        snprintf(c->id, sizeof(c->id), "%s", PQgetvalue(res, 0, 0));
        c->quantity = (int)strtol(PQgetvalue(res, 0, 1), NULL, 10);
    }
    PQclear(res);
    return rows;
}

/* Column col of row 0, or def when it is NULL, into out. */
static void value_or(const PGresult *res, int col, const char *def, char *out, size_t size)
{
    snprintf(out, size, "%s", PQgetisnull(res, 0, col) ? def : PQgetvalue(res, 0, col));
}

store_plan_t store_plan(PGconn *conn, const char *ce_id, const char *sku,
                        const char *depleted_at, long long delivery_timeout_ms,
                        const char *default_factory_id, struct claim *c,
                        char *errstr, size_t errstr_size)
{
    store_plan_t plan = PLAN_FAILED;
    char id[UTIL_UUID_LEN + 1], batch[16], timeout[24];
    PGresult *res = NULL;
    int rows, committed = 0;

    memset(c, 0, sizeof(*c));
    snprintf(c->sku, sizeof(c->sku), "%s", sku);
    if (util_uuid_v4(id) != 0 || util_random_hex(c->token, FACTORY_TOKEN_BYTES) != 0) {
        snprintf(errstr, errstr_size, "no randomness");
        return PLAN_FAILED;
    }
    snprintf(timeout, sizeof(timeout), "%lld", delivery_timeout_ms);
    if (db_begin(conn, errstr, errstr_size) != 0)
        goto done;
    {
        const char *p[1] = { ce_id };
        if ((rows = exec_claim(conn, "seen", 1, p, NULL, errstr, errstr_size)) < 0)
            goto done;
        if (rows > 0) {
            plan = PLAN_COVERED;
            goto done; /* nothing written: the rollback below ends the transaction */
        }
    }
    {
        const char *p[1] = { sku };
        res = db_exec(conn, "product_of", 1, p, NULL, errstr, errstr_size);
        if (res == NULL)
            goto done;
        if (PQntuples(res) == 0) {
            snprintf(errstr, errstr_size, "unknown sku '%s'", sku);
            plan = PLAN_UNKNOWN;
            goto done;
        }
        snprintf(batch, sizeof(batch), "%s", PQgetvalue(res, 0, 0));
        value_or(res, 1, default_factory_id, c->factory_id, sizeof(c->factory_id));
        value_or(res, 2, sku, c->product_id, sizeof(c->product_id));
        PQclear(res);
        res = NULL;
    }
    {
        const char *p[2] = { sku, timeout };
        res = db_exec(conn, "po_open_lock", 2, p, NULL, errstr, errstr_size);
        if (res == NULL)
            goto done;
    }
    if (PQntuples(res) > 0) {
        po_state_t st = PO_REQUESTED, to;
        int mine = po_state_parse(PQgetvalue(res, 0, 1), &st) == 0 &&
                   po_transition(st, PO_EV_CALLED, &to) == 0 &&
                   strcmp(PQgetvalue(res, 0, 2), ce_id) == 0;
        int stale = PQgetvalue(res, 0, 4)[0] == 't';

        snprintf(c->id, sizeof(c->id), "%s", PQgetvalue(res, 0, 0));
        c->quantity = (int)strtol(PQgetvalue(res, 0, 3), NULL, 10);
        if (stale) {
            /* Requested long ago and never delivered: the factory lost it. Ask again; a
             * late delivery of the first request is still accepted, once. */
            const char *p[2] = { c->id, ce_id };
            if (exec_only(conn, "po_takeover", 2, p, errstr, errstr_size) != 0)
                goto done;
            plan = PLAN_CALL;
        } else {
            plan = mine ? PLAN_CALL : PLAN_COVERED;
        }
    } else {
        const char *p[2] = { sku, depleted_at };
        if ((rows = exec_claim(conn, "answered", 2, p, NULL, errstr, errstr_size)) < 0)
            goto done;
        if (rows > 0) {
            plan = PLAN_COVERED;
        } else {
            const char *r[1] = { ce_id };
            /* The trace of the depletion: the delivery, much later, continues it. */
            const char *q[5] = { id, sku, batch, ce_id, trace_current() };
            if ((rows = exec_claim(conn, "po_reopen", 1, r, c, errstr, errstr_size)) < 0)
                goto done;
            if (rows == 0 &&
                (rows = exec_claim(conn, "po_insert", 5, q, c, errstr, errstr_size)) < 0)
                goto done;
            plan = rows > 0 ? PLAN_CALL : PLAN_COVERED;
        }
    }
    if (plan == PLAN_CALL) {
        const char *p[4] = { c->id, c->token, c->factory_id, c->product_id };
        if (exec_only(conn, "po_sent", 4, p, errstr, errstr_size) != 0) {
            plan = PLAN_FAILED;
            goto done;
        }
    }
    if (plan == PLAN_COVERED && inbox_claim(conn, FACTORY_SERVICE, ce_id, errstr,
                                            errstr_size) < 0) {
        plan = PLAN_FAILED;
        goto done;
    }
    if (db_commit(conn, errstr, errstr_size) != 0) {
        plan = PLAN_FAILED;
        goto done;
    }
    committed = 1;
done:
    PQclear(res);
    if (!committed)
        db_rollback(conn);
    return plan;
}

int store_requested(PGconn *conn, const char *id, const char *ce_id,
                    char *errstr, size_t errstr_size)
{
    const char *p[1] = { id };

    if (db_begin(conn, errstr, errstr_size) != 0)
        return -1;
    if (exec_only(conn, "po_requested", 1, p, errstr, errstr_size) != 0 ||
        inbox_claim(conn, FACTORY_SERVICE, ce_id, errstr, errstr_size) < 0 ||
        db_commit(conn, errstr, errstr_size) != 0) {
        db_rollback(conn);
        return -1;
    }
    return 0;
}

int store_call_failed(PGconn *conn, const char *id, const char *error,
                      char *errstr, size_t errstr_size)
{
    const char *p[2] = { id, error };

    return exec_only(conn, "po_failed", 2, p, errstr, errstr_size);
}

int store_rejected(PGconn *conn, const char *id, const char *why,
                   char *errstr, size_t errstr_size)
{
    const char *p[2] = { id, why };

    return exec_only(conn, "po_rejected", 2, p, errstr, errstr_size);
}

int store_give_up(PGconn *conn, const char *ce_id, const char *why,
                  char *errstr, size_t errstr_size)
{
    const char *p[2] = { ce_id, why };
    PGresult *res = db_exec(conn, "po_give_up", 2, p, NULL, errstr, errstr_size);
    int n;

    if (res == NULL)
        return -1;
    n = (int)strtol(PQcmdTuples(res), NULL, 10);
    PQclear(res);
    return n;
}

store_delivery_t store_deliver(PGconn *conn, const char *po, const char *token,
                               const struct delivery_in *in, char *sku,
                               char *errstr, size_t errstr_size)
{
    store_delivery_t out = DELIVERY_FAILED;
    PGresult *res = NULL;
    event_stock_replenished_t ev;
    event_out_t out_ev = { 0 };
    po_state_t st;
    char qty[24];
    int committed = 0;

    sku[0] = '\0';
    if (db_begin(conn, errstr, errstr_size) != 0)
        goto done;
    {
        const char *p[2] = { po, token };
        res = db_exec(conn, "po_lock_capability", 2, p, NULL, errstr, errstr_size);
        if (res == NULL)
            goto done;
    }
    if (PQntuples(res) == 0) {
        out = DELIVERY_UNKNOWN;
        goto done;
    }
    snprintf(sku, SKU_MAX + 1, "%s", PQgetvalue(res, 0, 0));
    /* The callback comes from the factory, without our trace: the delivery and what
     * follows it (stock.replenished, the stock change, the alerts) go on in the trace of
     * the depletion that ordered it. */
    if (!PQgetisnull(res, 0, 3) &&
        trace_parse(PQgetvalue(res, 0, 3), (size_t)PQgetlength(res, 0, 3), NULL, NULL) == 0)
        trace_begin(PQgetvalue(res, 0, 3), (size_t)PQgetlength(res, 0, 3));
    if (po_state_parse(PQgetvalue(res, 0, 1), &st) != 0) {
        snprintf(errstr, errstr_size, "production order %s has no known state", po);
        goto done;
    }
    if (po_transition(st, PO_EV_DELIVERED, &st) != 0) {
        out = DELIVERY_REPEATED; /* delivered before, whatever this one says */
        goto done;
    }
    if (in == NULL) {
        out = DELIVERY_INVALID;
        goto done;
    }
    if (strcmp(PQgetvalue(res, 0, 2), in->product_id) != 0) {
        out = DELIVERY_PRODUCT_MISMATCH;
        goto done;
    }
    PQclear(res);
    res = NULL;

    snprintf(qty, sizeof(qty), "%lld", in->count);
    {
        const char *p[2] = { po, qty };
        if (exec_only(conn, "po_delivered", 2, p, errstr, errstr_size) != 0)
            goto done;
    }
    memset(&ev, 0, sizeof(ev));
    snprintf(ev.sku, sizeof(ev.sku), "%s", sku);
    ev.quantity = in->count;
    snprintf(ev.production_order_id, sizeof(ev.production_order_id), "%s", po);
    if (event_stock_replenished_pack(&ev, &out_ev, errstr, errstr_size) != 0 ||
        outbox_add(conn, FACTORY_SERVICE, out_ev.spec->topic, out_ev.key, out_ev.spec->type,
                   FACTORY_SOURCE, out_ev.text, NULL, errstr, errstr_size) != 0)
        goto done;
    if (db_commit(conn, errstr, errstr_size) != 0)
        goto done;
    committed = 1;
    out = DELIVERY_APPLIED;
done:
    if (!committed)
        db_rollback(conn);
    PQclear(res);
    event_out_clear(&out_ev);
    return out;
}

/* One row of ORDER_COLUMNS as a new JSON object (NULL columns left out). */
static json_t *order_json(const PGresult *res, int row)
{
    static const char *const names[] = { "production_order_id", "sku", "quantity", "status",
                                          "attempts", "last_error", "factory_id",
                                          "factory_product_id", "created_at",
                                          "next_attempt_at", "requested_at", "delivered_at",
                                          "delivered_quantity" };
    json_t *o = json_object();

    for (int i = 0; o != NULL && i < (int)(sizeof(names) / sizeof(names[0])); i++) {
        json_t *v;

        if (PQgetisnull(res, row, i))
            continue;
        if (i == 2 || i == 4 || i == 12)
            v = json_integer(strtoll(PQgetvalue(res, row, i), NULL, 10));
        else
            v = json_string(PQgetvalue(res, row, i));
        if (json_object_set_new(o, names[i], v) != 0) {
            json_decref(o);
            o = NULL;
        }
    }
    return o;
}

json_t *store_list(PGconn *conn, const char *sku, const char *status, int limit,
                   char *errstr, size_t errstr_size)
{
    char lim[16];
    const char *p[3] = { sku, status, lim };
    PGresult *res;
    json_t *list;

    snprintf(lim, sizeof(lim), "%d", limit);
    res = db_exec(conn, "po_list", 3, p, NULL, errstr, errstr_size);
    if (res == NULL)
        return NULL;
    list = json_array();
    for (int i = 0; list != NULL && i < PQntuples(res); i++) {
        if (json_array_append_new(list, order_json(res, i)) != 0) {
            json_decref(list);
            list = NULL;
        }
    }
    if (list == NULL)
        snprintf(errstr, errstr_size, "out of memory");
    PQclear(res);
    return list;
}

int store_get(PGconn *conn, const char *id, json_t **order, char *errstr, size_t errstr_size)
{
    const char *p[1] = { id };
    PGresult *res;
    int ret = 0;

    *order = NULL;
    res = db_exec(conn, "po_get", 1, p, NULL, errstr, errstr_size);
    if (res == NULL)
        return -1;
    if (PQntuples(res) == 1) {
        *order = order_json(res, 0);
        ret = *order != NULL ? 1 : -1;
        if (ret < 0)
            snprintf(errstr, errstr_size, "out of memory");
    }
    PQclear(res);
    return ret;
}
